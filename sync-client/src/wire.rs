//! The JSON bodies of the sync API as the terminal reads and writes them. They mirror
//! `palpal-central`'s `wire` module (the server's source of truth, with `docs/sync-api.yaml`);
//! the client reads only the fields it needs and ignores the rest, so the server may add
//! fields without breaking terminals.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The path of the sync endpoint.
pub const SYNC_PATH: &str = "/v1/sync";
/// The path of the enrollment endpoint.
pub const ENROLL_PATH: &str = "/v1/terminals/enroll";
/// The path of the pull endpoint.
pub const PULL_PATH: &str = "/v1/pull";

/// `POST /v1/terminals/enroll`.
#[derive(Debug, Clone, Serialize)]
pub struct EnrollRequest {
    /// The one-time code from `palpal-central terminal add`.
    pub code: String,
    /// The terminal's public key, standard base64.
    pub public_key: String,
    /// A name for people.
    pub name: String,
}

/// The answer to a successful enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EnrollResponse {
    /// The id to sign requests as, such as `T-000001`.
    pub terminal_id: String,
    /// The site the terminal belongs to.
    pub site: String,
    /// `kiosk` or `counter`.
    pub role: String,
    /// The name it enrolled with.
    pub name: String,
}

/// Every refusal's body: `code` is a closed set the terminal switches on.
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

/// What became of one operation, as the server says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    /// Applied now.
    Accepted,
    /// Applied before; nothing changed.
    Duplicate,
    /// Not applied, and sending it again will not help.
    Rejected,
}

/// One operation's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpResult {
    /// The operation's id, as sent.
    pub op_id: String,
    /// Accepted, duplicate or rejected.
    pub status: OpStatus,
    /// For a rejection, the reason code (`role`, `invalid_payload`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a rejection, what to tell the operator (Korean, then English).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For an enrollment, the member's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_number: Option<String>,
}

/// The answer to `POST /v1/sync`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncResponse {
    /// One result per operation.
    pub results: Vec<OpResult>,
}

/// `POST /v1/pull`: what changed since `cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// The `cursor` of the previous answer; absent for everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Most changes in the answer (1 to 1,000; the server's default 500 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
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
    /// Kiosks only: the admission schedule from the server's today on, whole on every page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<kiosk_core::admission::AdmissionSchedule>,
    /// Kiosks only: the site's quota leases from the server's today on, whole on every page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quota_leases: Vec<kiosk_core::admission::QuotaLease>,
}

/// One operation as sent.
#[derive(Serialize)]
pub(crate) struct WireOp<'a> {
    pub op_id: &'a str,
    pub kind: &'a str,
    pub payload: &'a Value,
}

/// The fields of each kind that go on the wire. The outbox keeps what the terminal confirmed
/// (an enrollment also holds the residency and age the kiosk checked); the server takes only
/// the fields of its payload and refuses unknown ones.
pub fn wire_payload(kind: &str, stored: Value) -> Value {
    match (kind, stored) {
        ("enrollment", Value::Object(mut fields)) => {
            let mut out = serde_json::Map::new();
            // `day`: the day the kiosk admitted the person under its lease, so that a sign-up
            // confirmed offline before midnight counts against that day's places.
            for key in ["name", "birth_date", "phone", "day"] {
                if let Some(value) = fields.remove(key) {
                    out.insert(key.to_owned(), value);
                }
            }
            Value::Object(out)
        }
        (_, other) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_enrollment_keeps_only_the_servers_fields() {
        let stored = json!({"name": "김영희", "birth_date": "1950-03-01", "phone": "01012345678",
                            "residency": "lives", "age": 75});
        assert_eq!(
            wire_payload("enrollment", stored),
            json!({"name": "김영희", "birth_date": "1950-03-01", "phone": "01012345678"})
        );
        let admitted = json!({"name": "김영희", "birth_date": "1950-03-01", "phone": "01012345678",
                              "day": "2025-12-03", "sealed_personal_data": true});
        assert_eq!(
            wire_payload("enrollment", admitted),
            json!({"name": "김영희", "birth_date": "1950-03-01", "phone": "01012345678",
                   "day": "2025-12-03"})
        );
        let steps = json!({"member_number": "PP-00000001", "steps": 1});
        assert_eq!(wire_payload("step_report", steps.clone()), steps);
        // The terminal stores a pairing as the server takes it.
        let pairing = json!({"serial": "PW-0007", "enrollment_op_id": "op-1"});
        assert_eq!(wire_payload("watch_pairing", pairing.clone()), pairing);
    }

    #[test]
    fn results_read_the_servers_shape_and_ignore_extra_fields() {
        let body = r#"{"results":[{"op_id":"a","status":"accepted","member_number":"PP-00000001"},
            {"op_id":"b","status":"rejected","reason":"role","message":"m","points":3}]}"#;
        let parsed: SyncResponse = serde_json::from_str(body).unwrap();
        assert_eq!(parsed.results[0].status, OpStatus::Accepted);
        assert_eq!(parsed.results[1].reason.as_deref(), Some("role"));
    }
}
