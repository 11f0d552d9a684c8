//! The central server's rules, pure: an operation and the state it reads come in, a result
//! and the changes to write go out. No IO and no clock (`now` is an argument), like
//! `points-core`; the server's stores (SQLite today) load what a rule reads, call it, and
//! persist what it returns, so that a second store or the seeded simulation applies the very
//! same rules.
//!
//! An operation in a terminal's batch goes through [`admit`] (its id, its kind, the role that
//! may send it, its payload), or, when its id was applied before (its content compared by
//! [`payload_bytes`]), [`answer_again`]; then through its kind's module: [`enroll`],
//! [`steps`], [`pairing`], [`holds`], [`cards`]. [`memory::Central`] is a whole server held in
//! ordered maps, applying a batch through these rules as the stores do, for the seeded
//! simulation and tests.

pub mod cards;
pub mod enroll;
pub mod holds;
pub mod memory;
pub mod pairing;
pub mod steps;

use sync_protocol::wire::{OpKind, OpPayload, OpResult, OpStatus, Operation, RejectReason, Role};

/// The longest operation id.
pub const MAX_OP_ID_CHARS: usize = 128;

/// The typed payload of an operation that `role` may send: an empty or overlong id or a
/// payload that does not read is `invalid_payload`, a kind this program does not know
/// `unknown_kind`, a kind of the other role's (sign-ups are the kiosk's; holds, voids and
/// wrong PINs the counter's) `role`.
pub fn admit(op: &Operation, role: Role) -> Result<OpPayload, RejectReason> {
    if op.op_id.is_empty() || op.op_id.len() > MAX_OP_ID_CHARS {
        return Err(RejectReason::InvalidPayload);
    }
    let kind = OpKind::parse(&op.kind).ok_or(RejectReason::UnknownKind)?;
    let allowed = match kind {
        OpKind::Enrollment => role == Role::Kiosk,
        OpKind::RedemptionHold | OpKind::Void | OpKind::WrongPin => role == Role::Counter,
        OpKind::StepReport | OpKind::WatchPairing => true,
    };
    if !allowed {
        return Err(RejectReason::Role);
    }
    op.typed()
}

/// The bytes that identify an operation's content: its kind, a newline, and its payload's JSON
/// (compact, object keys in order, so equal payloads give equal bytes). An id applied before
/// is the same operation sent again only when these are equal; a store keeps their SHA-256.
pub fn payload_bytes(op: &Operation) -> Vec<u8> {
    format!("{}\n{}", op.kind, op.payload).into_bytes()
}

/// Why [`memory::Central`] could not do what it was asked (not a refusal of an operation,
/// which is an [`OpResult`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No terminal has this number.
    #[error("no terminal has number {0}")]
    UnknownTerminal(i64),
    /// A redemption key that is not a valid Ed25519 public key.
    #[error("redemption key {0} is not a valid Ed25519 public key")]
    InvalidRedemptionKey(u16),
    /// Every redemption key id is used.
    #[error("every redemption key id is used")]
    KeyIdsExhausted,
    /// The state contradicts itself (a stored ledger that does not read, a hold recorded
    /// without its operation): a fault of the server's own, not of what it was sent.
    #[error("the server's state contradicts itself: {0}")]
    Inconsistent(String),
}

/// The answer to an operation whose id was applied before: the same terminal with the same
/// payload (by its hash) gets the first result again as a `duplicate` (without the points,
/// which were credited once); any other reuse of the id is `op_id_reused`. `earlier` is the
/// terminal, payload hash and result recorded the first time.
pub fn answer_again(
    op_id: &str,
    terminal: i64,
    payload_hash: &[u8],
    earlier: (i64, &[u8], OpResult),
) -> OpResult {
    let (earlier_terminal, earlier_hash, mut result) = earlier;
    if earlier_terminal != terminal || earlier_hash != payload_hash {
        return OpResult::rejected(op_id, RejectReason::OpIdReused);
    }
    result.status = OpStatus::Duplicate;
    result.points = None;
    result.ignored = None;
    result
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(op_id: &str, kind: &str, payload: serde_json::Value) -> Operation {
        Operation {
            op_id: op_id.to_owned(),
            kind: kind.to_owned(),
            payload,
            seq: None,
        }
    }

    #[test]
    fn each_kind_is_admitted_from_its_own_role_only() {
        let void = op(
            "v-1",
            "void",
            json!({ "hold_op_id": "h-1", "voided_at": "2025-12-03T09:00:00+09:00" }),
        );
        assert!(matches!(
            admit(&void, Role::Counter),
            Ok(OpPayload::Void(_))
        ));
        assert_eq!(admit(&void, Role::Kiosk), Err(RejectReason::Role));
        let sign_up = op(
            "e-1",
            "enrollment",
            json!({ "name": "김영희", "birth_date": "1950-04-01", "phone": "01012345678" }),
        );
        assert!(admit(&sign_up, Role::Kiosk).is_ok());
        assert_eq!(admit(&sign_up, Role::Counter), Err(RejectReason::Role));
        assert_eq!(
            admit(&op("x", "gift", json!({})), Role::Counter),
            Err(RejectReason::UnknownKind)
        );
        assert_eq!(
            admit(&op("x", "void", json!({ "hold": 1 })), Role::Counter),
            Err(RejectReason::InvalidPayload)
        );
        assert_eq!(
            admit(&op("", "void", json!({})), Role::Counter),
            Err(RejectReason::InvalidPayload)
        );
        let long = "o".repeat(MAX_OP_ID_CHARS + 1);
        assert_eq!(
            admit(&op(&long, "void", json!({})), Role::Counter),
            Err(RejectReason::InvalidPayload)
        );
    }

    #[test]
    fn an_operations_content_is_its_kind_and_its_payload_with_keys_in_order() {
        // As the terminal wrote it, keys in another order: the same content.
        let sent: Operation = serde_json::from_str(
            r#"{"op_id":"v-1","kind":"void","payload":{"voided_at":"2025-12-03T09:00:00+09:00","hold_op_id":"h-1"}}"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(payload_bytes(&sent)).unwrap(),
            "void\n{\"hold_op_id\":\"h-1\",\"voided_at\":\"2025-12-03T09:00:00+09:00\"}"
        );
        let typed = Operation::new("v-2", &admit(&sent, Role::Counter).unwrap());
        assert_eq!(payload_bytes(&typed), payload_bytes(&sent));
        let mut other = sent.clone();
        other.kind = "wrong_pin".to_owned();
        assert_ne!(payload_bytes(&other), payload_bytes(&sent));
    }

    #[test]
    fn an_operation_sent_again_gets_its_first_answer_and_a_reused_id_is_refused() {
        let mut first = OpResult::accepted("s-1");
        first.points = Some(100);
        let again = answer_again("s-1", 1, b"hash", (1, b"hash", first.clone()));
        assert_eq!((again.status, again.points), (OpStatus::Duplicate, None));
        for (terminal, hash) in [(2, &b"hash"[..]), (1, &b"other"[..])] {
            let reused = answer_again("s-1", terminal, hash, (1, b"hash", first.clone()));
            assert_eq!(reused.reason, Some(RejectReason::OpIdReused));
        }
    }
}
