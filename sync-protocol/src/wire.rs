//! The JSON bodies of the sync API, the same types on both ends. The OpenAPI description is
//! `docs/sync-api.yaml`. Requests the server takes refuse unknown fields; answers the
//! terminal reads ignore fields it does not know, so the server may add fields without
//! breaking terminals.
//!
//! An operation crosses the wire as [`Operation`] (`op_id`, `kind`, `payload`); its content is
//! typed as [`OpPayload`], one struct per kind. The server reads the envelope first, so that a
//! kind it does not know or a payload it cannot read rejects that operation alone
//! ([`Operation::typed`]), never the batch.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The path of the enrollment endpoint.
pub const ENROLL_PATH: &str = "/v1/terminals/enroll";
/// The path of the sync endpoint.
pub const SYNC_PATH: &str = "/v1/sync";
/// The path of the pull endpoint.
pub const PULL_PATH: &str = "/v1/pull";
/// The path of the kiosks' member lookup.
pub const MEMBER_LOOKUP_PATH: &str = "/v1/members/lookup";
/// The path of the kiosks' member cards.
pub const CARDS_PATH: &str = "/v1/cards";
/// The path of the reconciliation report.
pub const RECONCILIATION_PATH: &str = "/v1/reports/reconciliation";

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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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

/// Every refusal's body as a terminal reads it: `code` is from a closed set the terminal
/// switches on (the server's `ErrorCode`), read as text so that a code added later still reads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct ErrorBody {
    /// Such as `overloaded`, `revoked_terminal`, `bad_code`.
    pub code: String,
    /// Korean.
    #[serde(default)]
    pub message: String,
    /// English.
    #[serde(default)]
    pub message_en: String,
}

/// `POST /v1/sync`: a batch of operations from a terminal's outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncRequest {
    /// The operations, applied in order; at most the server's batch limit (1,000 by default).
    pub operations: Vec<Operation>,
}

/// One operation as it crosses the wire: the envelope the server reads first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// The terminal-chosen id (a UUID or similar, 1 to 128 characters) that makes the
    /// operation idempotent: the server applies an id at most once.
    pub op_id: String,
    /// `enrollment`, `step_report`, `watch_pairing`, `redemption_hold` or `void`; other kinds
    /// are rejected with `unknown_kind`.
    pub kind: String,
    /// The kind's fields: [`EnrollmentPayload`], [`StepReportPayload`],
    /// [`WatchPairingPayload`], [`RedemptionHoldPayload`] or [`VoidPayload`].
    pub payload: Value,
    /// The terminal's own number for the operation: 1 and up, in the order the terminal made
    /// its operations, never reused. With [`PullRequest::sequence`] it lets the server tell
    /// when a hold or a void was made by the terminal's order of events rather than by its
    /// wall clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl Operation {
    /// The envelope of a typed operation.
    pub fn new(op_id: impl Into<String>, payload: &OpPayload) -> Operation {
        Operation {
            op_id: op_id.into(),
            kind: payload.kind().as_str().to_owned(),
            payload: payload.to_value(),
            seq: None,
        }
    }

    /// The same operation, numbered `seq` by the terminal (see [`Operation::seq`]).
    pub fn numbered(mut self, seq: Option<u64>) -> Operation {
        self.seq = seq;
        self
    }

    /// The typed content: `unknown_kind` for a kind this program does not know,
    /// `invalid_payload` for fields it cannot read (missing, unknown or of the wrong type).
    pub fn typed(&self) -> Result<OpPayload, RejectReason> {
        let kind = OpKind::parse(&self.kind).ok_or(RejectReason::UnknownKind)?;
        OpPayload::from_value(kind, &self.payload).map_err(|_| RejectReason::InvalidPayload)
    }
}

/// The kinds of operation, as the `kind` field names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// A person signing up at a kiosk.
    Enrollment,
    /// A watch's count for a member's day.
    StepReport,
    /// A watch handed to, or first synced for, a member.
    WatchPairing,
    /// Points a counter took for a purchase.
    RedemptionHold,
    /// A hold cancelled on its day.
    Void,
    /// A wrong PIN typed for a member card at a counter.
    WrongPin,
}

impl OpKind {
    /// Every kind, in the order the API lists them.
    pub const ALL: [OpKind; 6] = [
        OpKind::Enrollment,
        OpKind::StepReport,
        OpKind::WatchPairing,
        OpKind::RedemptionHold,
        OpKind::Void,
        OpKind::WrongPin,
    ];

    /// The name on the wire and in the terminal's outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Enrollment => "enrollment",
            OpKind::StepReport => "step_report",
            OpKind::WatchPairing => "watch_pairing",
            OpKind::RedemptionHold => "redemption_hold",
            OpKind::Void => "void",
            OpKind::WrongPin => "wrong_pin",
        }
    }

    /// The kind with this wire name.
    pub fn parse(text: &str) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// An operation's content, typed by its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpPayload {
    /// `enrollment`.
    Enrollment(EnrollmentPayload),
    /// `step_report`.
    StepReport(StepReportPayload),
    /// `watch_pairing`.
    WatchPairing(WatchPairingPayload),
    /// `redemption_hold`.
    RedemptionHold(RedemptionHoldPayload),
    /// `void`.
    Void(VoidPayload),
    /// `wrong_pin`.
    WrongPin(WrongPinPayload),
}

impl OpPayload {
    /// Its kind.
    pub fn kind(&self) -> OpKind {
        match self {
            OpPayload::Enrollment(_) => OpKind::Enrollment,
            OpPayload::StepReport(_) => OpKind::StepReport,
            OpPayload::WatchPairing(_) => OpKind::WatchPairing,
            OpPayload::RedemptionHold(_) => OpKind::RedemptionHold,
            OpPayload::Void(_) => OpKind::Void,
            OpPayload::WrongPin(_) => OpKind::WrongPin,
        }
    }

    /// The payload's JSON object, keys in order (what the server hashes to know an operation
    /// sent again).
    pub fn to_value(&self) -> Value {
        let value = match self {
            OpPayload::Enrollment(p) => serde_json::to_value(p),
            OpPayload::StepReport(p) => serde_json::to_value(p),
            OpPayload::WatchPairing(p) => serde_json::to_value(p),
            OpPayload::RedemptionHold(p) => serde_json::to_value(p),
            OpPayload::Void(p) => serde_json::to_value(p),
            OpPayload::WrongPin(p) => serde_json::to_value(p),
        };
        // Structs of strings and numbers always serialize.
        value.unwrap_or(Value::Null)
    }

    /// The payload's JSON text, as a terminal's outbox keeps it.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// The payload of `kind` from its JSON object.
    pub fn from_value(kind: OpKind, value: &Value) -> Result<OpPayload, serde_json::Error> {
        Ok(match kind {
            OpKind::Enrollment => OpPayload::Enrollment(Deserialize::deserialize(value)?),
            OpKind::StepReport => OpPayload::StepReport(Deserialize::deserialize(value)?),
            OpKind::WatchPairing => OpPayload::WatchPairing(Deserialize::deserialize(value)?),
            OpKind::RedemptionHold => OpPayload::RedemptionHold(Deserialize::deserialize(value)?),
            OpKind::Void => OpPayload::Void(Deserialize::deserialize(value)?),
            OpKind::WrongPin => OpPayload::WrongPin(Deserialize::deserialize(value)?),
        })
    }

    /// The payload of `kind` from its JSON text.
    pub fn from_json(kind: OpKind, text: &str) -> Result<OpPayload, serde_json::Error> {
        OpPayload::from_value(kind, &serde_json::from_str(text)?)
    }
}

/// The payload of an `enrollment` operation: a person signing up at a kiosk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentPayload {
    /// The person's name as on their ID.
    pub name: String,
    /// Birth date, `YYYY-MM-DD`.
    pub birth_date: String,
    /// Mobile phone number; only the digits count.
    pub phone: String,
    /// The day the kiosk admitted the person under its quota lease, `YYYY-MM-DD`; when absent,
    /// the day (Asia/Seoul) the server receives the operation. The server takes it only from
    /// seven days before its own day to the day after, and only as a day of the site's lease
    /// (the place is counted against it) or, with no lease, a day when no site's sign-up was
    /// under quota and none has been since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
}

/// The payload of a `step_report` operation: a watch's cumulative count for a member's day.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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
    /// The watch's signature over the day's steps and its certificate: the server credits
    /// steps only with it (`docs/watch-gatt.md`, "Signed steps").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchProof>,
}

/// A watch's proof of a day's steps, as the terminal read it from the watch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WatchProof {
    /// The watch's serial number, as its certificate names it.
    pub serial: String,
    /// The Watch Certificate characteristic's bytes, lowercase hex.
    pub certificate: String,
    /// The watch's counter for this proof.
    pub counter: u32,
    /// The watch's clock when it signed, Unix seconds.
    pub signed_at: u32,
    /// The watch's Ed25519 signature, lowercase hex (128 digits).
    pub signature: String,
}

/// The payload of a `watch_pairing` operation: a watch handed to a member at a kiosk, or first
/// synced for a member at a counter. Names the member either by `member_number` or, from a
/// kiosk that does not know the number yet, by the `op_id` of the `enrollment` that created
/// the member (sent before it by the same terminal, in the same batch or an earlier one);
/// exactly one of the two.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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
    /// With `member_number`: the member's redemption token as its QR code reads (`PP1:...`),
    /// the proof that the member was there. The server checks it as it checks a hold's, at
    /// `paired_at`; a pairing by member number without it is `pairing_needs_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// With `token`: when the watch was paired, RFC 3339 with offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired_at: Option<String>,
}

/// The payload of a `redemption_hold` operation: points a counter took from a member for a
/// purchase, offline or online. Only counters may send it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RedemptionHoldPayload {
    /// The member number, such as `PP-00000001`.
    pub member_no: String,
    /// Points (1 point = 1 won), 1 to 1,000,000.
    pub amount: u64,
    /// The redemption token the member showed, as its QR code reads (`PP1:...`, at most 256
    /// characters). The server verifies it as a counter does, except the card PIN: signed by
    /// one of its keys within the key's period, of this member, not revoked, valid at
    /// `held_at`; it derives the token's id itself, and a dynamic token is used at most once.
    pub token: String,
    /// When the counter took the hold, RFC 3339 with offset; its day in Asia/Seoul is the
    /// hold's day.
    pub held_at: String,
    /// The terminal that took the hold: the sender's own id, such as `T-000002`.
    pub terminal: String,
}

/// The payload of a `void` operation: cancels a posted hold of the same terminal on the same
/// day (Asia/Seoul), giving the points back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VoidPayload {
    /// The `op_id` of the `redemption_hold` to cancel.
    pub hold_op_id: String,
    /// When the counter voided it, RFC 3339 with offset.
    pub voided_at: String,
}

/// The payload of a `wrong_pin` operation: a wrong PIN typed for a member card at a counter.
/// The server counts them across counters; at [`PIN_LOCK_FAILURES`] in a day (Asia/Seoul) the
/// card is locked for the rest of that day at every counter, which learns it by pull.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WrongPinPayload {
    /// The card's member number, such as `PP-00000001`.
    pub member_number: String,
    /// The card's serial (1 for a member's first card).
    pub serial: u16,
    /// When the PIN was typed, RFC 3339 with offset.
    pub at: String,
}

/// Wrong PINs in a day, at any counters, that lock a card for the rest of the day.
pub const PIN_LOCK_FAILURES: u32 = 3;

/// A member card's state as the server knows it, sent by pull when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardState {
    /// The card's member number.
    pub member_number: String,
    /// The card's serial.
    pub serial: u16,
    /// Reported lost or replaced: refused from now on (`revoked_card`).
    pub revoked: bool,
    /// The day (`YYYY-MM-DD`, Asia/Seoul) on which the card is locked after wrong PINs, if
    /// any: refused at every counter for the rest of that day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_on: Option<String>,
}

/// The answer to `POST /v1/sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// A sign-up is dated more than a week before the server's day, or after its next day.
    DayOutOfWindow,
    /// A hold's token is not a redemption token (not `PP1:`, not Base45, wrong length).
    TokenMalformed,
    /// A hold's token names a key id the server never published.
    TokenUnknownKey,
    /// A hold's token was signed by a key whose period does not cover it, or by another key.
    TokenWrongKey,
    /// A hold's token does not verify: it was altered or made up.
    TokenTampered,
    /// A hold's token was issued after the hold's time.
    TokenNotYetValid,
    /// A hold's token had expired at the hold's time.
    TokenExpired,
    /// A hold's token is another member's.
    TokenMemberMismatch,
    /// A hold's token is a member card that was revoked (lost or replaced).
    CardRevoked,
    /// A hold is dated after the server's clock, or longer ago than a counter may hold
    /// redemptions offline.
    HoldTimeOutOfWindow,
    /// A member card's holds of the day would pass the policy's per-day limit for cards.
    CardDayLimit,
    /// A hold is larger than the policy in force allows in one transaction.
    AmountOverLimit,
    /// A sign-up is dated a day on which this site held no places while sign-up was under
    /// quota then or since.
    NoLease,
    /// A reason this program does not know (a newer server's); the answer's `message` says
    /// what to do. The server never sends it.
    /// A watch paired by member number without the member's token.
    PairingNeedsToken,
    /// A pairing's time is outside what an offline terminal may honestly report.
    PairingTimeOutOfWindow,
    /// Steps without the watch's signature, where the program requires it.
    StepsUnsigned,
    /// The watch's certificate is not one a trusted authority made, or is another watch's.
    WatchNotCertified,
    /// The watch's signature does not cover these steps: altered, or not this watch's.
    StepsSignatureInvalid,
    /// The watch is not paired to this member.
    WatchNotPaired,
    /// This proof of the watch was credited before.
    StepsReplayed,
    /// The watch signed at a time the server cannot take: ahead of its clock, or before the
    /// day it signed for.
    StepsTimeOutOfWindow,
    #[serde(other)]
    Unknown,
}

impl RejectReason {
    /// The code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Role => "role",
            RejectReason::UnknownKind => "unknown_kind",
            RejectReason::InvalidPayload => "invalid_payload",
            RejectReason::UnknownMember => "unknown_member",
            RejectReason::OpIdReused => "op_id_reused",
            RejectReason::QuotaExceeded => "quota_exceeded",
            RejectReason::InsufficientPoints => "insufficient_points",
            RejectReason::TokenReused => "token_reused",
            RejectReason::MemberRevoked => "member_revoked",
            RejectReason::UnknownHold => "unknown_hold",
            RejectReason::VoidTooLate => "void_too_late",
            RejectReason::UnknownEnrollment => "unknown_enrollment",
            RejectReason::WatchPairedElsewhere => "watch_paired_elsewhere",
            RejectReason::DayOutOfWindow => "day_out_of_window",
            RejectReason::TokenMalformed => "token_malformed",
            RejectReason::TokenUnknownKey => "token_unknown_key",
            RejectReason::TokenWrongKey => "token_wrong_key",
            RejectReason::TokenTampered => "token_tampered",
            RejectReason::TokenNotYetValid => "token_not_yet_valid",
            RejectReason::TokenExpired => "token_expired",
            RejectReason::TokenMemberMismatch => "token_member_mismatch",
            RejectReason::CardRevoked => "card_revoked",
            RejectReason::HoldTimeOutOfWindow => "hold_time_out_of_window",
            RejectReason::CardDayLimit => "card_day_limit",
            RejectReason::AmountOverLimit => "amount_over_limit",
            RejectReason::NoLease => "no_lease",
            RejectReason::PairingNeedsToken => "pairing_needs_token",
            RejectReason::PairingTimeOutOfWindow => "pairing_time_out_of_window",
            RejectReason::StepsUnsigned => "steps_unsigned",
            RejectReason::WatchNotCertified => "watch_not_certified",
            RejectReason::StepsSignatureInvalid => "steps_signature_invalid",
            RejectReason::WatchNotPaired => "watch_not_paired",
            RejectReason::StepsReplayed => "steps_replayed",
            RejectReason::StepsTimeOutOfWindow => "steps_time_out_of_window",
            RejectReason::Unknown => "unknown",
        }
    }

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
            RejectReason::DayOutOfWindow => {
                "가입 날짜가 키오스크가 정할 수 있는 기간을 벗어났습니다. 단말기의 날짜와 시간을 확인하고 관리자에게 알려 주세요. / \
                 The sign-up is dated outside the days a kiosk may date it; check the terminal's date and time and tell the operator."
            }
            RejectReason::TokenMalformed => {
                "결제 코드를 읽을 수 없습니다. 관리자에게 알려 주세요. / \
                 The redemption token cannot be read; tell the operator."
            }
            RejectReason::TokenUnknownKey => {
                "서버가 발급하지 않은 키로 만든 결제 코드입니다. 관리자에게 알려 주세요. / \
                 The redemption token names a key the server never published; tell the operator."
            }
            RejectReason::TokenWrongKey => {
                "사용 기간이 지난 키로 서명된 결제 코드입니다. 회원에게 새 코드를 받도록 안내하고 관리자에게 알려 주세요. / \
                 The redemption token was signed with a key not valid for it; tell the operator."
            }
            RejectReason::TokenTampered => {
                "위조되었거나 바뀐 결제 코드입니다. 관리자에게 즉시 알려 주세요. / \
                 The redemption token was altered or made up; tell the operator at once."
            }
            RejectReason::TokenNotYetValid => {
                "결제 시각보다 나중에 만든 결제 코드입니다. 단말기의 시계를 확인하고 관리자에게 알려 주세요. / \
                 The redemption token was made after the hold's time; check the terminal's clock and tell the operator."
            }
            RejectReason::TokenExpired => {
                "결제 시각에 이미 만료된 결제 코드입니다. 관리자에게 알려 주세요. / \
                 The redemption token had expired at the hold's time; tell the operator."
            }
            RejectReason::TokenMemberMismatch => {
                "결제 코드의 회원과 결제한 회원이 다릅니다. 관리자에게 즉시 알려 주세요. / \
                 The redemption token belongs to another member; tell the operator at once."
            }
            RejectReason::CardRevoked => {
                "분실 또는 재발급으로 사용이 중지된 회원 카드입니다. 회원에게 센터 방문을 안내해 주세요. / \
                 This member card was revoked (lost or replaced); ask the member to visit a community center."
            }
            RejectReason::HoldTimeOutOfWindow => {
                "결제 시각이 서버가 받을 수 있는 기간을 벗어났습니다. 단말기의 날짜와 시간을 확인하고 관리자에게 알려 주세요. / \
                 The hold is dated outside the time a counter may hold redemptions; check the terminal's date and time and tell the operator."
            }
            RejectReason::CardDayLimit => {
                "회원 카드의 하루 사용 한도를 넘었습니다. 정산 보고서를 확인하고 관리자에게 알려 주세요. / \
                 The member card's daily limit is used up; check the reconciliation report and tell the operator."
            }
            RejectReason::AmountOverLimit => {
                "한 번에 쓸 수 있는 포인트 한도를 넘었습니다. 관리자에게 알려 주세요. / \
                 The hold is larger than one redemption may be; tell the operator."
            }
            RejectReason::NoLease => {
                "이 센터는 그날 가입 정원을 받지 않았습니다. 관리자에게 알려 주세요. / \
                 This site held no sign-up places for that day; tell the operator."
            }
            RejectReason::PairingNeedsToken => {
                "회원 번호만으로는 워치를 연결할 수 없습니다. 회원의 QR 코드를 스캔한 뒤 다시 연결해 주세요. / \
                 A watch cannot be paired by member number alone; scan the member's QR code, then pair it again."
            }
            RejectReason::PairingTimeOutOfWindow => {
                "워치 연결 시각이 서버가 받을 수 있는 기간을 벗어났습니다. 단말기의 날짜와 시간을 확인하고 관리자에게 알려 주세요. / \
                 The pairing is dated outside the time a terminal may report; check the terminal's date and time and tell the operator."
            }
            RejectReason::StepsUnsigned => {
                "워치의 서명이 없는 걸음 기록은 포인트로 바꿀 수 없습니다. 팔팔 워치로 다시 동기화하고, 계속되면 보건소에 워치 교체를 문의해 주세요. / \
                 Steps without the watch's signature earn no points; sync with a Palpal watch again, and if this goes on ask a health center for a new watch."
            }
            RejectReason::WatchNotCertified => {
                "인증되지 않은 워치의 기록입니다. 팔팔 워치인지 확인하고 관리자에게 알려 주세요. / \
                 The record comes from a watch the program did not certify; check it is a Palpal watch and tell the operator."
            }
            RejectReason::StepsSignatureInvalid => {
                "걸음 기록이 워치가 서명한 내용과 다릅니다. 기록이 바뀌었을 수 있으니 관리자에게 즉시 알려 주세요. / \
                 The steps differ from what the watch signed; the record may have been altered. Tell the operator at once."
            }
            RejectReason::WatchNotPaired => {
                "이 워치는 이 회원에게 연결되어 있지 않습니다. 회원의 QR 코드를 스캔해 워치를 연결한 뒤 다시 동기화해 주세요. / \
                 This watch is not paired to this member; scan the member's QR code, pair the watch, then sync again."
            }
            RejectReason::StepsReplayed => {
                "이미 반영된 워치 기록입니다. 다시 보낼 필요가 없습니다. / \
                 This watch record was credited already; there is nothing to send again."
            }
            RejectReason::StepsTimeOutOfWindow => {
                "워치가 서명한 시각을 받을 수 없습니다. 워치의 시계를 맞춘 뒤 다시 동기화하고, 계속되면 관리자에게 알려 주세요. / \
                 The watch signed at a time the server cannot take; set the watch's clock by syncing again, and tell the operator if this goes on."
            }
            RejectReason::Unknown => {
                "서버가 이 작업을 거절했습니다. 단말기 소프트웨어를 최신으로 바꾸고 관리자에게 알려 주세요. / \
                 The server refused this operation for a reason this terminal does not know; update the terminal software and tell the operator."
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
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// The `cursor` of the previous answer; absent or empty for everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Most changes in the answer (1 to 1,000; 500 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The highest operation sequence number ([`Operation::seq`]) the terminal has given so
    /// far. The server keeps the first one it hears each day (by its own clock): an
    /// operation numbered above it was made after that contact, whatever its time says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// How the terminal is doing, for the operators' table of terminals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<TerminalReport>,
}

/// What a terminal tells about itself with each pull: the operators see from it which
/// terminals lag behind. The server adds when it heard the terminal.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TerminalReport {
    /// The app's version, 1 to [`MAX_APP_VERSION_CHARS`] printable characters.
    pub app_version: String,
    /// Operations waiting in the terminal's outbox.
    pub waiting: u64,
    /// How long the oldest of them has waited, in seconds by the terminal's clock; absent
    /// when none wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_waiting_s: Option<u64>,
    /// How many seconds the terminal's own clock is ahead of the server's (negative:
    /// behind), as the terminal last measured it from an answer's `Date`; absent before it
    /// has heard the server. The terminal signs with the corrected time, so this is the
    /// error of its clock, not of its requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_s: Option<i64>,
}

/// The largest [`TerminalReport::clock_offset_s`] either way: ten years.
pub const MAX_CLOCK_OFFSET_S: u64 = 10 * 366 * 86_400;

/// The longest [`TerminalReport::app_version`].
pub const MAX_APP_VERSION_CHARS: usize = 32;

impl TerminalReport {
    /// Whether the server may keep it: a version of printable characters within the bound.
    pub fn is_valid(&self) -> bool {
        let chars = self.app_version.chars().count();
        (1..=MAX_APP_VERSION_CHARS).contains(&chars)
            && self.app_version.chars().all(|c| !c.is_control())
            && self.oldest_waiting_s.is_none_or(|_| self.waiting > 0)
            && self
                .clock_offset_s
                .is_none_or(|s| s.unsigned_abs() <= MAX_CLOCK_OFFSET_S)
    }
}

/// The answer to `POST /v1/pull`: one page of changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullResponse {
    /// Send it back in the next pull.
    pub cursor: String,
    /// Whether more changes wait; pull again at once with the new cursor.
    pub more: bool,
    /// The policy set in force, when it changed since the cursor (always on a first pull).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<PolicyText>>,
    /// Redemption keys added or retired since the cursor.
    #[serde(default)]
    pub redemption_keys: Vec<RedemptionKey>,
    /// Member numbers revoked since the cursor.
    #[serde(default)]
    pub revoked_members: Vec<String>,
    /// Balances changed since the cursor.
    #[serde(default)]
    pub balances: Vec<BalanceSnapshot>,
    /// Watch pairings made or ended since the cursor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch_pairings: Vec<WatchPairing>,
    /// Member cards revoked, or locked after wrong PINs, since the cursor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cards: Vec<CardState>,
    /// Kiosks only: the admission schedule from today on (days not listed are closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<kiosk_core::admission::AdmissionSchedule>,
    /// Kiosks only: this site's quota leases from today on; `used` counts the enrollments the
    /// server has applied against it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quota_leases: Vec<kiosk_core::admission::QuotaLease>,
}

/// One policy file in force, as the server publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyText {
    /// The policy's name.
    pub name: String,
    /// The first day it is in force, `YYYY-MM-DD`.
    pub effective_from: String,
    /// The last day it is in force, if the file names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_until: Option<String>,
    /// The policy file's TOML text, byte for byte.
    pub text: String,
}

/// One of the server's redemption-token public keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedemptionKey {
    /// The `key_id` tokens name.
    pub key_id: u16,
    /// The Ed25519 public key, standard base64.
    pub public_key: String,
    /// Whether tokens signed with it are refused from now on.
    pub retired: bool,
}

/// A member's balance as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceSnapshot {
    /// The member number.
    pub member_number: String,
    /// Points credited by the ledger, ever.
    pub credited: i64,
    /// Points taken by posted holds (voids give them back).
    pub spent: i64,
    /// `credited - spent`.
    pub balance: i64,
}

/// A watch's pairing to a member, as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchPairing {
    /// The watch's serial number.
    pub serial: String,
    /// The member it is (or was) paired to.
    pub member_number: String,
    /// Whether the pairing ended.
    pub ended: bool,
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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
    /// The number of the replacement card any kiosk may have signed for the member
    /// (`POST /v1/cards` with this `serial`), once an operator replaced a lost card; absent
    /// otherwise, and from a server that predates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_serial_allowed: Option<u16>,
}

/// `POST /v1/cards` (kiosks only): sign the first member card of a member this kiosk signed
/// up. The kiosk computed the PIN check where the member typed the PIN; the PIN itself never
/// leaves the kiosk. The same request again gets the same card.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_lookup_answer_without_a_replacement_reads_as_before() {
        let old: MemberLookupResponse =
            serde_json::from_value(json!({ "member_number": "PP-00000001" })).unwrap();
        assert_eq!(old.card_serial_allowed, None);
        assert_eq!(
            serde_json::to_value(&old).unwrap(),
            json!({ "member_number": "PP-00000001" })
        );
        let replaced = MemberLookupResponse {
            member_number: Some("PP-00000001".to_owned()),
            card_serial_allowed: Some(2),
        };
        assert_eq!(
            serde_json::to_value(&replaced).unwrap(),
            json!({ "member_number": "PP-00000001", "card_serial_allowed": 2 })
        );
    }

    fn samples() -> Vec<OpPayload> {
        vec![
            OpPayload::Enrollment(EnrollmentPayload {
                name: "김영희".to_owned(),
                birth_date: "1950-03-01".to_owned(),
                phone: "01012345678".to_owned(),
                day: Some("2025-12-03".to_owned()),
            }),
            OpPayload::StepReport(StepReportPayload {
                member_number: "PP-00000001".to_owned(),
                day: "2025-12-02".to_owned(),
                steps: 8_421,
                reported_at: "2025-12-02T21:00:00+09:00".to_owned(),
                watch: None,
            }),
            OpPayload::WatchPairing(WatchPairingPayload {
                serial: "PW-0007".to_owned(),
                member_number: None,
                enrollment_op_id: Some("op-1".to_owned()),
                token: None,
                paired_at: None,
            }),
            OpPayload::WatchPairing(WatchPairingPayload {
                serial: "PW-0008".to_owned(),
                member_number: Some("PP-00000001".to_owned()),
                enrollment_op_id: None,
                token: Some("PP1:TOKEN".to_owned()),
                paired_at: Some("2025-12-02T10:00:00+09:00".to_owned()),
            }),
            OpPayload::RedemptionHold(RedemptionHoldPayload {
                member_no: "PP-00000001".to_owned(),
                amount: 3_000,
                token: "PP1:TOKEN".to_owned(),
                held_at: "2025-12-02T10:00:00+09:00".to_owned(),
                terminal: "T-000002".to_owned(),
            }),
            OpPayload::Void(VoidPayload {
                hold_op_id: "op-9".to_owned(),
                voided_at: "2025-12-02T10:05:00+09:00".to_owned(),
            }),
        ]
    }

    #[test]
    fn every_kind_goes_through_the_envelope_and_back() {
        for payload in samples() {
            let op = Operation::new("op-x", &payload);
            assert_eq!(op.kind, payload.kind().as_str());
            assert_eq!(op.typed(), Ok(payload.clone()));
            let text = serde_json::to_string(&op).unwrap();
            let read: Operation = serde_json::from_str(&text).unwrap();
            assert_eq!(read.typed(), Ok(payload.clone()));
            assert_eq!(
                OpPayload::from_json(payload.kind(), &payload.to_json()).unwrap(),
                payload
            );
        }
        for kind in OpKind::ALL {
            assert_eq!(OpKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    #[test]
    fn the_payloads_are_the_documented_objects() {
        let values: Vec<Value> = samples().iter().map(OpPayload::to_value).collect();
        assert_eq!(
            values[0],
            json!({"name": "김영희", "birth_date": "1950-03-01", "phone": "01012345678",
                   "day": "2025-12-03"})
        );
        assert_eq!(
            values[2],
            json!({"serial": "PW-0007", "enrollment_op_id": "op-1"})
        );
        assert_eq!(
            values[3],
            json!({"serial": "PW-0008", "member_number": "PP-00000001", "token": "PP1:TOKEN",
                   "paired_at": "2025-12-02T10:00:00+09:00"})
        );
        assert_eq!(
            values[5],
            json!({"hold_op_id": "op-9", "voided_at": "2025-12-02T10:05:00+09:00"})
        );
        // A numbered operation carries its number; an unnumbered one says nothing of it.
        let void = &samples()[5];
        let numbered =
            serde_json::to_value(Operation::new("op-v", void).numbered(Some(42))).unwrap();
        assert_eq!(numbered["seq"], 42);
        let plain = serde_json::to_value(Operation::new("op-v", void)).unwrap();
        assert!(plain.get("seq").is_none(), "{plain}");
    }

    #[test]
    fn a_bad_operation_is_rejected_alone_with_its_reason() {
        let op = |kind: &str, payload: Value| Operation {
            op_id: "op".to_owned(),
            kind: kind.to_owned(),
            payload,
            seq: None,
        };
        assert_eq!(
            op("teleport", json!({})).typed(),
            Err(RejectReason::UnknownKind)
        );
        assert_eq!(
            op("void", json!({"hold_op_id": "a"})).typed(),
            Err(RejectReason::InvalidPayload)
        );
        assert_eq!(
            op(
                "void",
                json!({"hold_op_id": "a", "voided_at": "x", "extra": 1})
            )
            .typed(),
            Err(RejectReason::InvalidPayload)
        );
        assert_eq!(
            op(
                "step_report",
                json!({"member_number": "PP-1", "day": "d", "steps": -1,
                                     "reported_at": "t"})
            )
            .typed(),
            Err(RejectReason::InvalidPayload)
        );
        // A batch with a bad operation still reads as a batch.
        let batch: SyncRequest = serde_json::from_value(json!({"operations": [
            {"op_id": "a", "kind": "teleport", "payload": {"x": 1}},
            {"op_id": "b", "kind": "void", "payload": "not an object"}
        ]}))
        .unwrap();
        assert_eq!(batch.operations.len(), 2);
    }

    #[test]
    fn reject_reasons_are_spelled_as_serialized() {
        let all = [
            RejectReason::Role,
            RejectReason::UnknownKind,
            RejectReason::InvalidPayload,
            RejectReason::UnknownMember,
            RejectReason::OpIdReused,
            RejectReason::QuotaExceeded,
            RejectReason::InsufficientPoints,
            RejectReason::TokenReused,
            RejectReason::MemberRevoked,
            RejectReason::UnknownHold,
            RejectReason::VoidTooLate,
            RejectReason::UnknownEnrollment,
            RejectReason::WatchPairedElsewhere,
            RejectReason::DayOutOfWindow,
            RejectReason::TokenMalformed,
            RejectReason::TokenUnknownKey,
            RejectReason::TokenWrongKey,
            RejectReason::TokenTampered,
            RejectReason::TokenNotYetValid,
            RejectReason::TokenExpired,
            RejectReason::TokenMemberMismatch,
            RejectReason::CardRevoked,
            RejectReason::HoldTimeOutOfWindow,
            RejectReason::CardDayLimit,
            RejectReason::AmountOverLimit,
            RejectReason::NoLease,
            RejectReason::PairingNeedsToken,
            RejectReason::PairingTimeOutOfWindow,
            RejectReason::StepsUnsigned,
            RejectReason::WatchNotCertified,
            RejectReason::StepsSignatureInvalid,
            RejectReason::WatchNotPaired,
            RejectReason::StepsReplayed,
            RejectReason::StepsTimeOutOfWindow,
            RejectReason::Unknown,
        ];
        for reason in all {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
            assert!(
                reason.message().contains(" / "),
                "{reason:?}: Korean, then English"
            );
        }
    }

    #[test]
    fn results_read_the_servers_shape_and_ignore_what_they_do_not_know() {
        let body = r#"{"results":[{"op_id":"a","status":"accepted","member_number":"PP-00000001"},
            {"op_id":"b","status":"rejected","reason":"role","message":"m","points":3},
            {"op_id":"c","status":"rejected","reason":"a_reason_from_the_future","message":"m",
             "new_field":true}]}"#;
        let parsed: SyncResponse = serde_json::from_str(body).unwrap();
        assert_eq!(parsed.results[0].status, OpStatus::Accepted);
        assert_eq!(parsed.results[1].reason, Some(RejectReason::Role));
        assert_eq!(parsed.results[2].reason, Some(RejectReason::Unknown));
        let page: PullResponse = serde_json::from_str(r#"{"cursor":"c","more":false}"#).unwrap();
        assert!(page.balances.is_empty() && page.policies.is_none());
    }
}
