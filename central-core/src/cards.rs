//! Member cards: a kiosk gets the first card of a member it signed up, the same card again
//! for the same request; any kiosk gets the replacement the operators allowed (`issue`); and wrong PINs typed at counters, counted across counters by the
//! card's day, lock the card for the rest of that day everywhere at the
//! [`PIN_LOCK_FAILURES`]th.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use sync_protocol::member::parse_member_number;
pub use sync_protocol::wire::PIN_LOCK_FAILURES;
use sync_protocol::wire::{RejectReason, WrongPinPayload};

/// How long a member card is valid: five years.
pub const CARD_VALIDITY_DAYS: i64 = 5 * 365;

/// A card recorded by the server, with the dates it is signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardRecord {
    /// When it was issued, Unix seconds.
    pub issued_at: i64,
    /// From when it is no longer accepted, Unix seconds.
    pub expires_at: i64,
}

/// Why a card was not issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardRefusal {
    /// No such member (or the enrollment has not reached the server).
    UnknownMember,
    /// The member was not enrolled by this kiosk, was revoked, or the card is not the first:
    /// kiosks issue only the first card of members they signed up.
    NotAllowed,
    /// This card was issued before with another PIN check.
    Exists,
}

/// A card's PIN check as the kiosk computed it, and the card's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinCheck<'a> {
    /// The card's number for the member (1 for the first).
    pub serial: u16,
    /// Argon2id memory cost, log2 of KiB.
    pub pin_cost: u8,
    /// The card's salt.
    pub salt: &'a [u8],
    /// The PIN check's bytes.
    pub pin_tag: &'a [u8],
}

/// What a card request comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    /// The same card as before, for the same request sent again: nothing is written.
    Again(CardRecord),
    /// A new card, to record.
    New(CardRecord),
}

/// Decides a card request by `kiosk` for a member, given the member as the store found them
/// (`None`: no such member; else the kiosk that enrolled them and whether they are revoked),
/// the replacement card the operators allowed for them, if any (its number), and the card
/// recorded with this number before, if any. The first card is the enrolling kiosk's to
/// ask for; a replacement (card 2 and on, the lost one revoked when it was allowed) any
/// kiosk's the member visits, and only the number allowed.
pub fn issue(
    kiosk: i64,
    ask: &PinCheck<'_>,
    member: Option<(i64, bool)>,
    replacement: Option<u16>,
    existing: Option<(&PinCheck<'_>, CardRecord)>,
    now: DateTime<Utc>,
) -> Result<Issue, CardRefusal> {
    let (enrolled_by, revoked) = member.ok_or(CardRefusal::UnknownMember)?;
    let allowed = match ask.serial {
        1 => enrolled_by == kiosk,
        serial => replacement == Some(serial),
    };
    if revoked || !allowed {
        return Err(CardRefusal::NotAllowed);
    }
    if let Some((before, record)) = existing {
        return if before == ask {
            Ok(Issue::Again(record))
        } else {
            Err(CardRefusal::Exists)
        };
    }
    Ok(Issue::New(CardRecord {
        issued_at: now.timestamp(),
        expires_at: now.timestamp() + CARD_VALIDITY_DAYS * 86_400,
    }))
}

/// The replacement card any kiosk may have signed for a member, as a kiosk's member lookup
/// tells it: the number the operators allowed, unless the member is revoked (`member`: whether
/// they are revoked; `None`, no such member). The same rule [`issue`] applies to a card 2 and on.
pub fn replacement_allowed(member: Option<bool>, replacement: Option<u16>) -> Option<u16> {
    match member {
        Some(false) => replacement.filter(|serial| *serial >= 2),
        _ => None,
    }
}

/// A wrong PIN as a counter reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongPin {
    /// The member's id, if the number is one.
    pub member: Option<i64>,
    /// The card's number.
    pub serial: u16,
    /// When it was typed.
    pub at: DateTime<FixedOffset>,
    /// The card's day it counts against (Asia/Seoul).
    pub day: NaiveDate,
}

/// Reads a wrong PIN received at `now`: a time that does not parse or is ahead of the
/// server's clock (beyond the token skew), or card number 0, is `invalid_payload`.
pub fn read_wrong_pin(
    payload: &WrongPinPayload,
    now: DateTime<Utc>,
) -> Result<WrongPin, RejectReason> {
    let at = DateTime::parse_from_rfc3339(payload.at.trim())
        .map_err(|_| RejectReason::InvalidPayload)?;
    let skew = chrono::Duration::seconds(redemption_token::CLOCK_SKEW_SECS);
    if payload.serial == 0 || at.to_utc() > now + skew {
        return Err(RejectReason::InvalidPayload);
    }
    Ok(WrongPin {
        member: parse_member_number(&payload.member_number),
        serial: payload.serial,
        at,
        day: points_core::kst_day(at),
    })
}

/// Whether the card's day, now at `failures` wrong PINs counting this one, has just become
/// locked (counters then learn it by pull).
pub fn locks_now(failures: u32) -> bool {
    failures == PIN_LOCK_FAILURES
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn a_kiosk_gets_the_first_card_of_its_own_members_once() {
        let now = Utc.with_ymd_and_hms(2025, 12, 3, 1, 0, 0).unwrap();
        let ask = PinCheck {
            serial: 1,
            pin_cost: 14,
            salt: &[1; 8],
            pin_tag: &[2, 3],
        };
        let Ok(Issue::New(record)) = issue(7, &ask, Some((7, false)), None, None, now) else {
            panic!("a new card");
        };
        assert_eq!(
            record.expires_at - record.issued_at,
            CARD_VALIDITY_DAYS * 86_400
        );
        assert_eq!(
            issue(7, &ask, Some((7, false)), None, Some((&ask, record)), now),
            Ok(Issue::Again(record))
        );
        let other = PinCheck {
            pin_tag: &[9, 9],
            ..ask
        };
        assert_eq!(
            issue(7, &other, Some((7, false)), None, Some((&ask, record)), now),
            Err(CardRefusal::Exists)
        );
        assert_eq!(
            issue(7, &ask, None, None, None, now),
            Err(CardRefusal::UnknownMember)
        );
        assert_eq!(
            issue(7, &ask, Some((8, false)), None, None, now),
            Err(CardRefusal::NotAllowed)
        );
        assert_eq!(
            issue(7, &ask, Some((7, true)), None, None, now),
            Err(CardRefusal::NotAllowed)
        );
        let second = PinCheck { serial: 2, ..ask };
        assert_eq!(
            issue(7, &second, Some((7, false)), None, None, now),
            Err(CardRefusal::NotAllowed)
        );
    }

    #[test]
    fn a_replacement_is_the_number_allowed_at_any_kiosk() {
        let now = Utc.with_ymd_and_hms(2025, 12, 3, 1, 0, 0).unwrap();
        let card = |serial| PinCheck {
            serial,
            pin_cost: 14,
            salt: &[1; 8],
            pin_tag: &[2, 3],
        };
        let (second, third) = (card(2), card(3));
        // Another kiosk than the one that enrolled the member: card 2 once allowed.
        let Ok(Issue::New(record)) = issue(8, &second, Some((7, false)), Some(2), None, now) else {
            panic!("the replacement");
        };
        assert_eq!(
            issue(
                9,
                &second,
                Some((7, false)),
                Some(2),
                Some((&second, record)),
                now
            ),
            Ok(Issue::Again(record))
        );
        let check = |ask: &PinCheck<'_>, member, allowed| {
            issue(8, ask, Some(member), allowed, None, now).map(|_| ())
        };
        assert_eq!(
            check(&third, (7, false), Some(2)),
            Err(CardRefusal::NotAllowed)
        );
        assert_eq!(
            check(&second, (7, false), None),
            Err(CardRefusal::NotAllowed)
        );
        assert_eq!(
            check(&second, (7, true), Some(2)),
            Err(CardRefusal::NotAllowed)
        );
        // The first card stays the enrolling kiosk's, replacement or not.
        assert_eq!(
            check(&card(1), (7, false), Some(2)),
            Err(CardRefusal::NotAllowed)
        );
        assert_eq!(check(&third, (7, false), Some(3)), Ok(()));
        // What a kiosk's member lookup tells: the number issue() would sign, and no other.
        for (member, allowed, told) in [
            (Some(false), Some(2), Some(2)),
            (Some(false), None, None),
            (Some(true), Some(2), None),
            (None, Some(2), None),
            (Some(false), Some(1), None),
        ] {
            assert_eq!(
                replacement_allowed(member, allowed),
                told,
                "{member:?} {allowed:?}"
            );
            if let (Some(revoked), Some(serial)) = (member, told) {
                assert_eq!(check(&card(serial), (7, revoked), allowed), Ok(()));
            }
        }
    }

    #[test]
    fn wrong_pins_are_dated_by_the_counter_but_never_ahead_of_the_server() {
        let now = Utc.with_ymd_and_hms(2025, 12, 3, 1, 0, 0).unwrap();
        let payload = |at: &str, serial| WrongPinPayload {
            member_number: "PP-00000001".to_owned(),
            serial,
            at: at.to_owned(),
        };
        let read = read_wrong_pin(&payload("2025-12-02T23:30:00+09:00", 1), now).unwrap();
        assert_eq!(
            (read.member, read.day.to_string()),
            (Some(1), "2025-12-02".to_owned())
        );
        for bad in [
            payload("2025-12-03T11:00:00+09:00", 1),
            payload("2025-12-03T09:00:00+09:00", 0),
            payload("noon", 1),
        ] {
            assert_eq!(
                read_wrong_pin(&bad, now),
                Err(RejectReason::InvalidPayload),
                "{bad:?}"
            );
        }
        assert!(!locks_now(PIN_LOCK_FAILURES - 1) && locks_now(PIN_LOCK_FAILURES));
        assert!(!locks_now(PIN_LOCK_FAILURES + 1));
    }
}
