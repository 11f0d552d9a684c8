//! The JSON bodies of the sync API, shared by the server and the terminal's sync client. The
//! OpenAPI description is `docs/sync-api.yaml`.

use serde::{Deserialize, Serialize};

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
    /// `enrollment` or `step_report`; other kinds are rejected with `unknown_kind`.
    pub kind: String,
    /// The kind's fields: [`EnrollmentPayload`] or [`StepReportPayload`].
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
