//! Sign-ups: a kiosk's enrollment of a person, taken on a day the server decides from its own
//! clock and the site's quota leases, never from a day the kiosk chose freely.
//!
//! A store reads the claim ([`read`]), finds the person by their keyed identity (a duplicate
//! is answered with the member found), and otherwise loads the site's lease facts for the day
//! ([`LeaseFacts`]) and asks [`place`] whether a place is taken from a lease, taken without
//! one, or refused.

use std::ops::RangeInclusive;

use chrono::{DateTime, Days, NaiveDate, Utc};
use sync_protocol::wire::{EnrollmentPayload, RejectReason};

/// How many days before the server's day a kiosk may say it admitted a person (a kiosk
/// offline for up to a week); one day after is taken for a kiosk's clock near midnight.
pub const SIGN_UP_DAYS_BACK: u64 = 7;

/// The most characters of a phone number as typed (digits, spaces, dashes).
pub const MAX_PHONE_CHARS: usize = 20;

/// A sign-up as its payload states it, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollClaim {
    /// The name, as the kiosk's name rule leaves it (trimmed).
    pub name: String,
    /// The birth date.
    pub birth_date: NaiveDate,
    /// The phone number's digits.
    pub phone: String,
    /// The day the kiosk admitted the person, within the server's window.
    pub day: NaiveDate,
}

/// Reads and checks a sign-up received at `now`: a name the kiosk's rule refuses, a birth
/// date that is not a date from 1900 to today, a phone of other than 9 to 11 digits (or over
/// [`MAX_PHONE_CHARS`] as typed), or a day that does not parse is `invalid_payload`; a day
/// outside the window is `day_out_of_window`.
pub fn read(payload: &EnrollmentPayload, now: DateTime<Utc>) -> Result<EnrollClaim, RejectReason> {
    let today = points_core::kst_day(now);
    // The kiosk's own rule for names (length, no control or text-direction characters).
    let name = kiosk_core::check_name(&payload.name).ok();
    let phone: String = payload.phone.chars().filter(char::is_ascii_digit).collect();
    let birth = NaiveDate::parse_from_str(payload.birth_date.trim(), "%Y-%m-%d").ok();
    let valid_birth = birth.filter(|b| {
        *b <= today && NaiveDate::from_ymd_opt(1900, 1, 1).is_some_and(|first| *b >= first)
    });
    let (Some(birth_date), Some(name), 9..=11, 0..=MAX_PHONE_CHARS) = (
        valid_birth,
        name,
        phone.len(),
        payload.phone.chars().count(),
    ) else {
        return Err(RejectReason::InvalidPayload);
    };
    let day = match payload.day.as_deref() {
        None => today,
        Some(text) => NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map_err(|_| RejectReason::InvalidPayload)?,
    };
    // The kiosk says which day it admitted the person; the server takes that only within
    // the days an offline kiosk may honestly have been away, by the server's clock.
    let earliest = today.checked_sub_days(Days::new(SIGN_UP_DAYS_BACK));
    let latest = today.checked_add_days(Days::new(1));
    if earliest.is_some_and(|e| day < e) || latest.is_some_and(|l| day > l) {
        return Err(RejectReason::DayOutOfWindow);
    }
    Ok(EnrollClaim {
        name: name.to_owned(),
        birth_date,
        phone,
        day,
    })
}

/// What a store knows of quota leases for a sign-up of a site on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseFacts {
    /// The site's lease for the day: its places and how many are used.
    pub lease: Option<(i64, i64)>,
    /// Whether any site has a lease for the day (sign-up that day was under quota).
    pub day_under_quota: bool,
    /// Whether any site had a lease on a day from the sign-up's day to today (either way:
    /// [`quota_since_days`]).
    pub quota_since: bool,
}

/// The days whose leases tell whether quota began since a sign-up's `day`
/// ([`LeaseFacts::quota_since`]): from the earlier of it and `today` to the later.
pub fn quota_since_days(day: NaiveDate, today: NaiveDate) -> RangeInclusive<NaiveDate> {
    day.min(today)..=day.max(today)
}

/// Where a new member's place comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// One place of the site's lease for the day: its `used` goes up by one.
    FromLease,
    /// No quota applied on that day or since: no lease is touched.
    Free,
}

/// Whether a new member may take a place, given the lease facts: from the site's lease while
/// it has places; refused when it is full (`quota_exceeded`), when the day was under quota for
/// other sites only (`quota_exceeded`), or when quota began since that day (`no_lease`: the
/// kiosk dates a sign-up it should have had a lease for); free when no quota applied.
pub fn place(facts: &LeaseFacts) -> Result<Place, RejectReason> {
    match facts.lease {
        Some((places, used)) if used >= places => Err(RejectReason::QuotaExceeded),
        Some(_) => Ok(Place::FromLease),
        None if facts.day_under_quota => Err(RejectReason::QuotaExceeded),
        None if facts.quota_since => Err(RejectReason::NoLease),
        None => Ok(Place::Free),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    /// 2025-12-03 10:00 in Seoul.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, 3, 1, 0, 0).unwrap()
    }

    fn payload(name: &str, birth: &str, phone: &str, day: Option<&str>) -> EnrollmentPayload {
        EnrollmentPayload {
            name: name.to_owned(),
            birth_date: birth.to_owned(),
            phone: phone.to_owned(),
            day: day.map(str::to_owned),
        }
    }

    fn check(p: EnrollmentPayload, expect: Result<&str, RejectReason>) {
        let got =
            read(&p, now()).map(|c| format!("{} {} {} {}", c.name, c.birth_date, c.phone, c.day));
        assert_eq!(got.as_deref().map_err(|r| *r), expect, "{p:?}");
    }

    #[test]
    fn a_sign_up_is_read_and_dated_within_the_window() {
        use RejectReason::{DayOutOfWindow, InvalidPayload};
        let ok = "김영희 1950-04-01 01012345678";
        check(
            payload(" 김영희 ", "1950-04-01", "010-1234-5678", None),
            Ok(&format!("{ok} 2025-12-03")),
        );
        check(
            payload("김영희", "1950-04-01", "01012345678", Some("2025-11-26")),
            Ok(&format!("{ok} 2025-11-26")),
        );
        check(
            payload("김영희", "1950-04-01", "01012345678", Some("2025-12-04")),
            Ok(&format!("{ok} 2025-12-04")),
        );
        check(
            payload("김영희", "1950-04-01", "01012345678", Some("2025-11-25")),
            Err(DayOutOfWindow),
        );
        check(
            payload("김영희", "1950-04-01", "01012345678", Some("2025-12-05")),
            Err(DayOutOfWindow),
        );
        check(
            payload("김영희", "1950-04-01", "01012345678", Some("tomorrow")),
            Err(InvalidPayload),
        );
        check(
            payload("김\u{202E}영희", "1950-04-01", "01012345678", None),
            Err(InvalidPayload),
        );
        check(
            payload("", "1950-04-01", "01012345678", None),
            Err(InvalidPayload),
        );
        check(
            payload("김영희", "1899-12-31", "01012345678", None),
            Err(InvalidPayload),
        );
        check(
            payload("김영희", "2025-12-04", "01012345678", None),
            Err(InvalidPayload),
        );
        check(
            payload("김영희", "1950-04-01", "0101234", None),
            Err(InvalidPayload),
        );
        check(
            payload("김영희", "1950-04-01", "010 - 1234 - 5678 - 00", None),
            Err(InvalidPayload),
        );
    }

    #[test]
    fn a_place_comes_from_the_sites_lease_or_from_no_quota_at_all() {
        let facts = |lease, day_under_quota, quota_since| LeaseFacts {
            lease,
            day_under_quota,
            quota_since,
        };
        assert_eq!(
            place(&facts(Some((10, 9)), true, true)),
            Ok(Place::FromLease)
        );
        assert_eq!(
            place(&facts(Some((10, 10)), true, true)),
            Err(RejectReason::QuotaExceeded)
        );
        assert_eq!(
            place(&facts(None, true, true)),
            Err(RejectReason::QuotaExceeded)
        );
        assert_eq!(place(&facts(None, false, true)), Err(RejectReason::NoLease));
        assert_eq!(place(&facts(None, false, false)), Ok(Place::Free));
    }
}
