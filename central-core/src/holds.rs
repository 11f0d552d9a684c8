//! Redemption holds and their voids: points spent only against a token the member showed,
//! verified as a counter verifies it (but the card PIN, which only the counter can check), at
//! a time the server bounds by its own clock and the counter's numbering of its operations,
//! then settled against the balance.
//!
//! A store reads the claim ([`read`]), checks the member and the token ([`member`],
//! [`token`]) with the keys and revocations it loads, loads what settling reads
//! ([`Spending`]) and writes what [`settle`] returns. A void is decided by [`void`] with the
//! posted hold it names.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use merchant_core::redemption::OfflineLimits;
use redemption_token::{verify_carried, Claims, KeySet, PublishedKey, Revocations};
use sync_protocol::member::parse_member_number;
use sync_protocol::wire::{RedemptionHoldPayload, RejectReason};

/// How long before the server's clock a counter may date a hold (or a pairing) it took
/// offline.
pub const HOLD_DAYS_BACK: i64 = 7;

/// The largest amount a hold may name at all (the policy's limit is lower).
pub const MAX_HOLD_POINTS: u64 = 1_000_000;

/// The longest token text a hold may carry.
pub const MAX_TOKEN_CHARS: usize = 256;

/// A hold as its payload states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldClaim {
    /// When the counter took it.
    pub held_at: DateTime<FixedOffset>,
    /// Its day in Asia/Seoul.
    pub day: NaiveDate,
    /// The points.
    pub amount: u64,
    /// The member's id, if the member number is one.
    pub member: Option<i64>,
}

/// Whether a time a terminal reports is within what an offline terminal may honestly report,
/// by the server's clock: from [`HOLD_DAYS_BACK`] days before to the token clock skew after.
pub fn within_offline_window(at: DateTime<FixedOffset>, now: DateTime<Utc>) -> bool {
    let skew = chrono::Duration::seconds(redemption_token::CLOCK_SKEW_SECS);
    at.to_utc() <= now + skew && at.to_utc() >= now - chrono::Duration::days(HOLD_DAYS_BACK)
}

/// Whether an operation numbered `seq` was made after `day`: the terminal told the server a
/// lower number on a later day (`told_after`, the lowest it told on any day after).
pub fn made_after_day(seq: u64, told_after: Option<i64>) -> bool {
    told_after.is_some_and(|told| i64::try_from(seq).map_or(true, |seq| seq > told))
}

/// Reads a hold from `terminal_label` received at `now`: a time that does not parse, an
/// amount of 0 or over [`MAX_HOLD_POINTS`], an empty or overlong token, or another terminal's
/// name is `invalid_payload`; a time outside the offline window is
/// `hold_time_out_of_window`.
pub fn read(
    payload: &RedemptionHoldPayload,
    terminal_label: &str,
    now: DateTime<Utc>,
) -> Result<HoldClaim, RejectReason> {
    let held_at = DateTime::parse_from_rfc3339(payload.held_at.trim()).ok();
    let (Some(held_at), 1..=MAX_HOLD_POINTS, 1..=MAX_TOKEN_CHARS, true) = (
        held_at,
        payload.amount,
        payload.token.len(),
        payload.terminal.trim() == terminal_label,
    ) else {
        return Err(RejectReason::InvalidPayload);
    };
    // The hold's time is the terminal's word: it is taken only within what an offline counter
    // may honestly hold, by the server's clock.
    if !within_offline_window(held_at, now) {
        return Err(RejectReason::HoldTimeOutOfWindow);
    }
    Ok(HoldClaim {
        held_at,
        day: points_core::kst_day(held_at),
        amount: payload.amount,
        member: parse_member_number(&payload.member_no),
    })
}

/// A redemption key the server published, as it trusts the key for the tokens holds carry:
/// for every token issued before the key was retired (`retired_at`), if it was.
pub fn published_key(
    key_id: u16,
    public_key: &[u8],
    retired_at: Option<DateTime<Utc>>,
) -> PublishedKey {
    PublishedKey {
        key_id,
        public_key: sync_protocol::signing::hex(public_key),
        not_before: DateTime::<Utc>::UNIX_EPOCH,
        not_after: retired_at,
    }
}

/// A member as the store found them: `None` when there is no such member, else whether they
/// are revoked.
pub fn member(id: Option<i64>, revoked: Option<bool>) -> Result<i64, RejectReason> {
    match (id, revoked) {
        (Some(id), Some(false)) => Ok(id),
        (Some(_), Some(true)) => Err(RejectReason::MemberRevoked),
        _ => Err(RejectReason::UnknownMember),
    }
}

/// The claims of `token` if it is `member`'s and valid at `at`, checked as a counter checks it
/// but the card PIN, against the published keys and the revocations; otherwise why not.
pub fn token(
    token: &str,
    member: i64,
    keys: &KeySet,
    revocations: &Revocations,
    at: DateTime<Utc>,
) -> Result<Claims, RejectReason> {
    use redemption_token::Refusal as R;
    let claims = verify_carried(token, keys, revocations, at).map_err(|refusal| match refusal {
        R::UnknownKeyId { .. } => RejectReason::TokenUnknownKey,
        R::WrongKey { .. } => RejectReason::TokenWrongKey,
        R::Tampered => RejectReason::TokenTampered,
        R::NotYetValid { .. } => RejectReason::TokenNotYetValid,
        R::Expired { .. } => RejectReason::TokenExpired,
        R::RevokedMember { .. } => RejectReason::MemberRevoked,
        R::RevokedCard { .. } => RejectReason::CardRevoked,
        _ => RejectReason::TokenMalformed,
    })?;
    if i64::try_from(claims.member.0).ok() != Some(member) {
        return Err(RejectReason::TokenMemberMismatch);
    }
    Ok(claims)
}

/// The id the server records a hold's token by: a dynamic token's own id, used once; for a
/// card, shown again and again, the card and the hold (as the counter spells it).
pub fn token_id(claims: &Claims, member_number: &str, op_id: &str) -> String {
    match (claims.token_id, claims.card_serial) {
        (Some(id), _) => id.to_string(),
        (None, serial) => format!("card:{member_number}:{}:{op_id}", serial.unwrap_or(0)),
    }
}

/// How a hold is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldStatus {
    /// Spent: the balance goes down by the amount.
    Posted,
    /// Voided by the counter on its day: the amount came back.
    Voided,
    /// Refused for want of points; kept as evidence of overspending.
    Insufficient,
    /// Refused as a second use of the token; kept as evidence.
    TokenReused,
}

impl HoldStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Posted => "posted",
            HoldStatus::Voided => "voided",
            HoldStatus::Insufficient => "insufficient",
            HoldStatus::TokenReused => "token_reused",
        }
    }

    /// The refusal a hold so recorded answers: `insufficient_points` or `token_reused` for a
    /// hold kept as evidence, none for a hold that spent.
    pub fn refusal(self) -> Option<RejectReason> {
        match self {
            HoldStatus::Insufficient => Some(RejectReason::InsufficientPoints),
            HoldStatus::TokenReused => Some(RejectReason::TokenReused),
            HoldStatus::Posted | HoldStatus::Voided => None,
        }
    }

    /// The status of its stored spelling.
    pub fn parse(text: &str) -> Option<HoldStatus> {
        [
            HoldStatus::Posted,
            HoldStatus::Voided,
            HoldStatus::Insufficient,
            HoldStatus::TokenReused,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// What settling a hold reads, loaded by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spending {
    /// How this very operation was recorded before, if it was.
    pub earlier: Option<HoldStatus>,
    /// What the member's cards spent in posted holds on the hold's day.
    pub card_spent_today: u64,
    /// Whether the token was already spent (a posted or voided hold with its id).
    pub token_used: bool,
    /// The member's balance (credited less spent).
    pub balance: i64,
}

/// What settling a hold comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Refused with nothing recorded.
    Refused(RejectReason),
    /// Recorded with this status and the balance before it; a posted hold spends its amount,
    /// the others are refused (`insufficient_points`, `token_reused`) and kept as evidence.
    Recorded {
        /// How it is recorded.
        status: HoldStatus,
        /// The member's balance before it.
        balance_before: i64,
    },
}

/// Settles a hold of `claim` made with `claims`, under the policy's `limits`: over the most
/// for one redemption (`amount_over_limit`); the same operation again gets its first refusal;
/// a card's holds of a day bounded by the policy's card limit (`card_day_limit`, for the
/// server never sees the PIN); then a second use of the token or a balance too low is
/// recorded and refused, and otherwise the hold is posted.
pub fn settle(
    claim: &HoldClaim,
    claims: &Claims,
    limits: &OfflineLimits,
    spending: &Spending,
) -> Settled {
    if claim.amount > limits.max_amount {
        return Settled::Refused(RejectReason::AmountOverLimit);
    }
    if let Some(reason) = spending.earlier.and_then(HoldStatus::refusal) {
        return Settled::Refused(reason);
    }
    if claims.card_serial.is_some()
        && spending.card_spent_today.saturating_add(claim.amount) > limits.per_member_day.card
    {
        return Settled::Refused(RejectReason::CardDayLimit);
    }
    let amount = i64::try_from(claim.amount).unwrap_or(i64::MAX);
    let status = if spending.token_used {
        HoldStatus::TokenReused
    } else if spending.balance < amount {
        HoldStatus::Insufficient
    } else {
        HoldStatus::Posted
    };
    Settled::Recorded {
        status,
        balance_before: spending.balance,
    }
}

/// A posted hold a void names, as the store found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostedHold {
    /// Its day in Asia/Seoul.
    pub day: NaiveDate,
    /// The counter's number for it, if it numbered it.
    pub seq: Option<i64>,
}

/// Decides a void received at `now`, numbered `seq` by the counter, of `hold` (`None`: no
/// posted hold of this counter has that id, `unknown_hold`). It is judged by what the server
/// can know, not the counter's wall clock: it must be made on the hold's day, which the server
/// takes from the counter's order of events. A void numbered above what the counter told the
/// server on a later day (`told_after`, the lowest number it told after the hold's day) was
/// made on that later day; one the counter does not number must reach the server on the
/// hold's day by the server's clock; none is taken more than the offline window after that
/// day (`void_too_late`). A void numbered before its hold is `invalid_payload`.
pub fn void(
    voided_at: &str,
    seq: Option<u64>,
    hold: Option<PostedHold>,
    told_after: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), RejectReason> {
    let voided_at =
        DateTime::parse_from_rfc3339(voided_at.trim()).map_err(|_| RejectReason::InvalidPayload)?;
    let hold = hold.ok_or(RejectReason::UnknownHold)?;
    if let (Some(hold_seq), Some(seq)) = (hold.seq, seq) {
        if i64::try_from(seq).is_ok_and(|seq| seq <= hold_seq) {
            return Err(RejectReason::InvalidPayload);
        }
    }
    let today = points_core::kst_day(now);
    let window_end = hold.day + chrono::Duration::days(HOLD_DAYS_BACK);
    let late = points_core::kst_day(voided_at) != hold.day
        || today > window_end
        || match seq {
            Some(seq) => made_after_day(seq, told_after),
            None => today != hold.day,
        };
    if late {
        return Err(RejectReason::VoidTooLate);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use redemption_token::{MemberNo, TokenKind};

    use super::*;

    fn now() -> DateTime<Utc> {
        // 2025-12-03 10:00 in Seoul.
        Utc.with_ymd_and_hms(2025, 12, 3, 1, 0, 0).unwrap()
    }

    fn claims(card: bool) -> Claims {
        Claims {
            kind: if card {
                TokenKind::Card
            } else {
                TokenKind::Dynamic
            },
            member: MemberNo(1),
            key_id: 1,
            issued_at: now(),
            expires_at: now(),
            token_id: None,
            card_serial: card.then_some(1),
        }
    }

    fn claim(amount: u64) -> HoldClaim {
        HoldClaim {
            held_at: now().fixed_offset(),
            day: points_core::kst_day(now()),
            amount,
            member: Some(1),
        }
    }

    #[test]
    fn a_hold_is_settled_against_the_limits_and_the_balance() {
        let limits = OfflineLimits::example();
        let spending = |earlier, card_spent_today, token_used, balance| Spending {
            earlier,
            card_spent_today,
            token_used,
            balance,
        };
        let posted = |balance_before| Settled::Recorded {
            status: HoldStatus::Posted,
            balance_before,
        };
        let fresh = spending(None, 0, false, 5_000);
        assert_eq!(
            settle(&claim(1_000), &claims(false), &limits, &fresh),
            posted(5_000)
        );
        assert_eq!(
            settle(
                &claim(limits.max_amount + 1),
                &claims(false),
                &limits,
                &fresh
            ),
            Settled::Refused(RejectReason::AmountOverLimit)
        );
        assert_eq!(
            settle(&claim(6_000), &claims(false), &limits, &fresh),
            Settled::Recorded {
                status: HoldStatus::Insufficient,
                balance_before: 5_000
            }
        );
        assert_eq!(
            settle(
                &claim(1_000),
                &claims(false),
                &limits,
                &spending(None, 0, true, 5_000)
            ),
            Settled::Recorded {
                status: HoldStatus::TokenReused,
                balance_before: 5_000
            }
        );
        // The same operation again: its first refusal, nothing recorded twice.
        for (earlier, reason) in [
            (HoldStatus::Insufficient, RejectReason::InsufficientPoints),
            (HoldStatus::TokenReused, RejectReason::TokenReused),
        ] {
            assert_eq!(
                settle(
                    &claim(1_000),
                    &claims(false),
                    &limits,
                    &spending(Some(earlier), 0, false, 9_000)
                ),
                Settled::Refused(reason)
            );
        }
        // A card: bounded by the policy's card limit for the day, whatever the balance.
        let card_limit = limits.per_member_day.card;
        let spent = spending(None, card_limit - 100, false, 1_000_000);
        assert_eq!(
            settle(&claim(100), &claims(true), &limits, &spent),
            posted(1_000_000)
        );
        assert_eq!(
            settle(&claim(101), &claims(true), &limits, &spent),
            Settled::Refused(RejectReason::CardDayLimit)
        );
        assert_eq!(
            settle(&claim(101), &claims(false), &limits, &spent),
            posted(1_000_000)
        );
    }

    #[test]
    fn a_void_is_placed_by_the_servers_clock_and_the_counters_numbering() {
        let day = NaiveDate::from_ymd_opt(2025, 12, 3).unwrap();
        let hold = |day, seq| Some(PostedHold { day, seq });
        let today = "2025-12-03T09:30:00+09:00";
        assert_eq!(
            void(today, Some(11), hold(day, Some(10)), None, now()),
            Ok(())
        );
        assert_eq!(void(today, None, hold(day, Some(10)), None, now()), Ok(()));
        assert_eq!(
            void("soon", None, hold(day, None), None, now()),
            Err(RejectReason::InvalidPayload)
        );
        assert_eq!(
            void(today, None, None, None, now()),
            Err(RejectReason::UnknownHold)
        );
        assert_eq!(
            void(today, Some(9), hold(day, Some(10)), None, now()),
            Err(RejectReason::InvalidPayload)
        );
        // Dated on another day than the hold's.
        assert_eq!(
            void(
                "2025-12-04T09:30:00+09:00",
                Some(11),
                hold(day, Some(10)),
                None,
                now()
            ),
            Err(RejectReason::VoidTooLate)
        );
        // The hold was two days ago: numbered after what the counter told since, or not
        // numbered at all, the void is late; numbered before, it was made on the hold's day.
        let before = NaiveDate::from_ymd_opt(2025, 12, 1).unwrap();
        let then = "2025-12-01T18:00:00+09:00";
        assert_eq!(
            void(then, Some(12), hold(before, Some(10)), Some(12), now()),
            Ok(())
        );
        assert_eq!(
            void(then, Some(13), hold(before, Some(10)), Some(12), now()),
            Err(RejectReason::VoidTooLate)
        );
        assert_eq!(
            void(then, None, hold(before, Some(10)), Some(12), now()),
            Err(RejectReason::VoidTooLate)
        );
        // Beyond the offline window after the hold's day, never.
        let long_ago = NaiveDate::from_ymd_opt(2025, 11, 20).unwrap();
        assert_eq!(
            void(
                "2025-11-20T18:00:00+09:00",
                Some(11),
                hold(long_ago, Some(10)),
                None,
                now()
            ),
            Err(RejectReason::VoidTooLate)
        );
    }
}
