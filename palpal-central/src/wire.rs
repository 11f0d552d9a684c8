//! The JSON bodies of the sync API, shared by the server and the terminal's sync client. The
//! OpenAPI description is `docs/sync-api.yaml`.

use serde::{Deserialize, Serialize};

/// The pull answer's parts are the terminal's types, the same on both ends.
pub use sync_client::wire::{BalanceSnapshot, PolicyText, RedemptionKey, WatchPairing};

/// What a terminal may do; fixed when the enrollment code is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A community-center sign-up kiosk: registers members, syncs watches.
    Kiosk,
    /// A pharmacy or store counter: syncs watches and redeems points; cannot register members.
    Counter,
}

impl Role {
    /// The name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Kiosk => "kiosk",
            Role::Counter => "counter",
        }
    }

    /// The role with this wire name.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "kiosk" => Some(Role::Kiosk),
            "counter" => Some(Role::Counter),
            _ => None,
        }
    }
}

/// `POST /v1/terminals/enroll`: a new terminal registers its public key with a one-time code.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The code printed by `palpal-central terminal add`, with or without dashes.
    pub code: String,
    /// The terminal's Ed25519 public key: standard base64 (44 characters) or hex (64).
    pub public_key: String,
    /// A name for people, such as "성북구 보건소 1번 키오스크".
    pub name: String,
}

/// The answer to a successful enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The id to send in `x-palpal-terminal`, such as `T-000001`.
    pub terminal_id: String,
    /// The site the terminal belongs to.
    pub site: String,
    /// What the terminal may do.
    pub role: Role,
    /// The name it enrolled with.
    pub name: String,
}

/// `POST /v1/sync`: a batch of operations from a terminal's outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncRequest {
    /// The operations, applied in order; at most the server's batch limit (1,000 by default).
    pub operations: Vec<Operation>,
}

/// One operation from a terminal's outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Operation {
    /// The terminal-chosen id (a UUID or similar, 1 to 128 characters) that makes the
    /// operation idempotent: the server applies an id at most once.
    pub op_id: String,
    /// `enrollment`, `step_report`, `watch_pairing`, `redemption_hold` or `void`; other kinds
    /// are rejected with `unknown_kind`.
    pub kind: String,
    /// The kind's fields: [`EnrollmentPayload`], [`StepReportPayload`],
    /// [`WatchPairingPayload`], [`RedemptionHoldPayload`] or [`VoidPayload`].
    pub payload: serde_json::Value,
}

/// The payload of an `enrollment` operation: a person signing up at a kiosk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentPayload {
    /// The person's name as on their ID.
    pub name: String,
    /// Birth date, `YYYY-MM-DD`.
    pub birth_date: String,
    /// Mobile phone number; only the digits count.
    pub phone: String,
    /// The day the kiosk admitted the person under its quota lease, `YYYY-MM-DD`; when absent,
    /// the day (Asia/Seoul) the server receives the operation. The place is counted against
    /// the site's lease for that day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
}

/// The payload of a `step_report` operation: a watch's cumulative count for a member's day.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepReportPayload {
    /// The member number the server assigned, such as `PP-00000001`.
    pub member_number: String,
    /// The member's day (calendar date in Asia/Seoul), `YYYY-MM-DD`.
    pub day: String,
    /// The day's cumulative step count.
    pub steps: u32,
    /// When the watch reported it, RFC 3339 with offset.
    pub reported_at: String,
}

/// The payload of a `watch_pairing` operation: a watch handed to a member at a kiosk, or first
/// synced for a member at a counter. Names the member either by `member_number` or, from a
/// kiosk that does not know the number yet, by the `op_id` of the `enrollment` that created
/// the member (sent before it by the same terminal, in the same batch or an earlier one);
/// exactly one of the two.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchPairingPayload {
    /// The watch's serial number (1 to 64 characters).
    pub serial: String,
    /// The member number, such as `PP-00000001`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_number: Option<String>,
    /// The `op_id` of this terminal's applied `enrollment` of the member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_op_id: Option<String>,
}

/// The payload of a `redemption_hold` operation: points a counter took from a member for a
/// purchase, offline or online. Only counters may send it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedemptionHoldPayload {
    /// The member number, such as `PP-00000001`.
    pub member_no: String,
    /// Points (1 point = 1 won), 1 to 1,000,000.
    pub amount: u64,
    /// The id of the redemption token the member showed (1 to 128 characters); a token is
    /// used at most once.
    pub token_id: String,
    /// When the counter took the hold, RFC 3339 with offset; its day in Asia/Seoul is the
    /// hold's day.
    pub held_at: String,
    /// The terminal that took the hold: the sender's own id, such as `T-000002`.
    pub terminal: String,
}

/// The payload of a `void` operation: cancels a posted hold of the same terminal on the same
/// day (Asia/Seoul), giving the points back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoidPayload {
    /// The `op_id` of the `redemption_hold` to cancel.
    pub hold_op_id: String,
    /// When the counter voided it, RFC 3339 with offset.
    pub voided_at: String,
}

/// The answer to `POST /v1/sync`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncResponse {
    /// One result per operation, in the order sent.
    pub results: Vec<OpResult>,
}

/// What became of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    /// Applied now.
    Accepted,
    /// Applied before (same op id), or the same person is already a member; nothing changed.
    Duplicate,
    /// Not applied, and sending it again will not help; `reason` says why.
    Rejected,
}

/// Why an operation was rejected. A closed set: the terminal switches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The terminal's role does not allow this kind (a counter sending an enrollment).
    Role,
    /// The kind is not one the server knows.
    UnknownKind,
    /// The payload is missing fields or has values that make no sense.
    InvalidPayload,
    /// A step report names a member number the server does not know.
    UnknownMember,
    /// The op id was already used for a different operation (another payload or terminal).
    OpIdReused,
    /// The site's sign-up quota lease for the day is used up (or the site has no lease on a
    /// day that is under quota).
    QuotaExceeded,
    /// The member's balance does not cover the hold; recorded for the overspend report.
    InsufficientPoints,
    /// The hold's token was already used by another hold; recorded for the overspend report.
    TokenReused,
    /// The member's card was revoked.
    MemberRevoked,
    /// A void names no posted hold of this terminal.
    UnknownHold,
    /// A void came on a later day than its hold.
    VoidTooLate,
    /// A watch pairing names an enrollment this terminal never had applied (unknown, or
    /// rejected).
    UnknownEnrollment,
    /// A watch pairing names a watch that is paired to another member.
    WatchPairedElsewhere,
}

impl RejectReason {
    /// The message for the operator, Korean first, then English.
    pub fn message(self) -> &'static str {
        match self {
            RejectReason::Role => {
                "이 단말기의 역할로는 할 수 없는 작업입니다. 키오스크에서 처리해 주세요. / \
                 This terminal's role does not allow this operation; use a kiosk."
            }
            RejectReason::UnknownKind => {
                "서버가 알지 못하는 작업 종류입니다. 단말기 소프트웨어를 확인해 주세요. / \
                 The server does not know this kind of operation; check the terminal software."
            }
            RejectReason::InvalidPayload => {
                "작업 내용이 올바르지 않습니다. 입력 내용을 확인해 다시 등록해 주세요. / \
                 The operation's data is not valid; check it and enter it again."
            }
            RejectReason::UnknownMember => {
                "등록되지 않은 회원 번호입니다. 회원 카드를 확인해 주세요. / \
                 The member number is not registered; check the member card."
            }
            RejectReason::OpIdReused => {
                "같은 작업 번호가 다른 내용으로 이미 쓰였습니다. 관리자에게 문의해 주세요. / \
                 This operation id was already used for different data; contact the operator."
            }
            RejectReason::QuotaExceeded => {
                "이 센터의 오늘 가입 정원이 모두 찼습니다. 다른 날 다시 방문하도록 안내해 주세요. / \
                 This site's sign-up places for the day are used up; ask the person to come back another day."
            }
            RejectReason::InsufficientPoints => {
                "회원의 포인트가 부족합니다. 정산 보고서에 기록되었으니 관리자에게 알려 주세요. / \
                 The member's points do not cover this redemption; it is in the reconciliation report, tell the operator."
            }
            RejectReason::TokenReused => {
                "이미 사용된 결제 코드입니다. 정산 보고서에 기록되었으니 관리자에게 알려 주세요. / \
                 This redemption token was already used; it is in the reconciliation report, tell the operator."
            }
            RejectReason::MemberRevoked => {
                "사용이 중지된 회원 카드입니다. 회원에게 센터 방문을 안내해 주세요. / \
                 This member card was revoked; ask the member to visit a community center."
            }
            RejectReason::UnknownHold => {
                "취소할 결제를 찾을 수 없습니다. 이 단말기에서 한 결제인지 확인해 주세요. / \
                 There is no redemption to void; check it was made on this terminal."
            }
            RejectReason::VoidTooLate => {
                "결제 취소는 결제한 날에만 할 수 있습니다. 관리자에게 문의해 주세요. / \
                 A redemption can be voided only on the day it was made; contact the operator."
            }
            RejectReason::UnknownEnrollment => {
                "워치를 연결할 가입을 서버가 알지 못합니다. 가입이 거절되었는지 확인해 주세요. / \
                 The server does not know the sign-up this watch was paired to; check whether it was rejected."
            }
            RejectReason::WatchPairedElsewhere => {
                "이 워치는 다른 회원에게 연결되어 있습니다. 센터에 워치 확인을 요청해 주세요. / \
                 This watch is paired to another member; ask a community center to check the watch."
            }
        }
    }
}

/// The result of one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpResult {
    /// The operation's id, as sent.
    pub op_id: String,
    /// Accepted, duplicate or rejected.
    pub status: OpStatus,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    /// For a rejection, what to tell the operator (Korean, then English).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For an enrollment: the member's number (the existing one for a duplicate person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_number: Option<String>,
    /// For a step report: points newly credited by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<u64>,
    /// For a step report that earned nothing: why (`late`, `held`, `lower`, `duplicate`,
    /// `capped`, `no_policy`), as in points-core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// For a redemption hold or void: the member's balance after it (points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<i64>,
}

impl OpResult {
    /// A rejection with its reason and message.
    pub fn rejected(op_id: &str, reason: RejectReason) -> OpResult {
        OpResult {
            op_id: op_id.to_owned(),
            status: OpStatus::Rejected,
            reason: Some(reason),
            message: Some(reason.message().to_owned()),
            member_number: None,
            points: None,
            ignored: None,
            balance: None,
        }
    }

    /// An acceptance with no details yet.
    pub fn accepted(op_id: &str) -> OpResult {
        OpResult {
            op_id: op_id.to_owned(),
            status: OpStatus::Accepted,
            reason: None,
            message: None,
            member_number: None,
            points: None,
            ignored: None,
            balance: None,
        }
    }
}

/// `GET /v1/health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// `ok` when the database answers.
    pub status: String,
    /// The database's schema version (`PRAGMA user_version`).
    pub schema_version: u32,
}

/// `POST /v1/pull`: what the terminal already has, as the cursor of its last pull.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// The `cursor` of the previous answer; absent or empty for everything.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Most changes in the answer (1 to 1,000; 500 when absent).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The answer to `POST /v1/pull`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullResponse {
    /// Send it back in the next pull.
    pub cursor: String,
    /// Whether more changes wait; pull again at once with the new cursor.
    pub more: bool,
    /// The policy set in force, when it changed since the cursor (always on a first pull).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<PolicyText>>,
    /// Redemption keys added or retired since the cursor.
    pub redemption_keys: Vec<RedemptionKey>,
    /// Member numbers revoked since the cursor.
    pub revoked_members: Vec<String>,
    /// Balances changed since the cursor.
    pub balances: Vec<BalanceSnapshot>,
    /// Watch pairings made or ended since the cursor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch_pairings: Vec<WatchPairing>,
    /// Kiosks only: the admission schedule from today on (days not listed are closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<kiosk_core::admission::AdmissionSchedule>,
    /// Kiosks only: this site's quota leases from today on; `used` counts the enrollments the
    /// server has applied against it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quota_leases: Vec<kiosk_core::admission::QuotaLease>,
}

/// Totals of one kind of hold in a reconciliation report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldTotals {
    /// How many holds.
    pub count: u64,
    /// Their points.
    pub points: i64,
}

/// One hold in a reconciliation report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldLine {
    /// The hold's operation id.
    pub op_id: String,
    /// The member number.
    pub member_number: String,
    /// Points.
    pub amount: i64,
    /// The token used.
    pub token_id: String,
    /// When the counter took it.
    pub held_at: String,
    /// `posted`, `voided`, `insufficient` (overspent) or `token_reused`.
    pub status: String,
    /// The member's balance on the server just before it arrived.
    pub balance_before: i64,
    /// The terminal that took it.
    pub terminal: String,
}

/// `GET /v1/reports/reconciliation?day=YYYY-MM-DD`: the signing terminal's holds of one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationReport {
    /// The terminal.
    pub terminal: String,
    /// Its site.
    pub site: String,
    /// The day (Asia/Seoul).
    pub day: String,
    /// Holds posted and still standing.
    pub posted: HoldTotals,
    /// Holds voided.
    pub voided: HoldTotals,
    /// Holds refused because the balance did not cover them (overspending).
    pub insufficient: HoldTotals,
    /// Holds refused because their token was used before.
    pub token_reused: HoldTotals,
    /// Every hold, in the order received (at most 10,000).
    pub holds: Vec<HoldLine>,
    /// Whether `holds` was cut at 10,000.
    pub truncated: bool,
}

/// `POST /v1/members/lookup` (kiosks only): is this person already a member? The same
/// normalisation as an enrollment (name trimmed, phone digits only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberLookupRequest {
    /// The person's name as on their ID.
    pub name: String,
    /// Birth date, `YYYY-MM-DD`.
    pub birth_date: String,
    /// Mobile phone number; only the digits count.
    pub phone: String,
}

/// The answer to `POST /v1/members/lookup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLookupResponse {
    /// The member's number, or `null` when the person is not a member.
    pub member_number: Option<String>,
}

/// `POST /v1/cards` (kiosks only): sign the first member card of a member this kiosk signed
/// up. The kiosk computed the PIN check where the member typed the PIN; the PIN itself never
/// leaves the kiosk. The same request again gets the same card.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardRequest {
    /// The member's number, such as `PP-00000042`.
    pub member_number: String,
    /// The card's number for this member (kiosks issue 1, the first card).
    pub serial: u16,
    /// Argon2id memory cost of the PIN check, log2 of KiB (8 to 18).
    pub pin_cost: u8,
    /// The card's random salt, 16 hex digits.
    pub salt: String,
    /// The PIN check's two bytes, 4 hex digits.
    pub pin_tag: String,
}

/// The answer to `POST /v1/cards`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardResponse {
    /// The card's token as its QR code holds it (`PP1:...`).
    pub token: String,
    /// The member's number.
    pub member_number: String,
    /// The card's number for this member.
    pub serial: u16,
    /// The id of the key that signed it.
    pub key_id: u16,
    /// When it was issued, RFC 3339.
    pub issued_at: String,
    /// From when it is no longer accepted, RFC 3339.
    pub expires_at: String,
}
