//! The central server's rules, pure: an operation and the state it reads come in, a result
//! and the changes to write go out. No IO and no clock (`now` is an argument), like
//! `points-core`; the server's stores (SQLite today) load what a rule reads, call it, and
//! persist what it returns, so that a second store or the seeded simulation applies the very
//! same rules.
//!
//! An operation in a terminal's batch goes through [`admit`] (its id, its kind, the role that
//! may send it, its payload), or, when its id was applied before, [`answer_again`]; then
//! through its kind's module: [`enroll`], [`steps`], [`pairing`], [`holds`], [`cards`].

pub mod cards;
pub mod enroll;
pub mod holds;
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
