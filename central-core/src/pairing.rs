//! Watch pairings: which member a watch's signed steps are credited to. A kiosk pairs a watch
//! to a person it signed up (naming the sign-up); a counter pairs one by member number only
//! with the member's token as proof of presence, at a time within the offline window and not
//! on a day the counter had already left behind. A watch has one member at a time, a member
//! one watch: pairing a member to a new watch ends the old pairing.
//!
//! A store reads the claim ([`read`]), finds the member it names (for a kiosk's, by the
//! sign-up's result), checks a counter's proof ([`check_time`], then the token with
//! `holds::token`), and asks [`decide`] with the watch's current holder.

use chrono::{DateTime, FixedOffset, Utc};
use sync_protocol::member::parse_member_number;
use sync_protocol::wire::{RejectReason, WatchPairingPayload};

use crate::holds::{made_after_day, within_offline_window, MAX_TOKEN_CHARS};

/// The longest watch serial.
pub const MAX_SERIAL_CHARS: usize = 64;

/// Whom a pairing names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    /// A member by number (`None` when the number is no member's), with the member's token
    /// and the time of the pairing, checked by [`check_time`] and the token rule.
    Member {
        /// The member's id.
        member: Option<i64>,
        /// The member's token (the QR code's text) and when the counter paired.
        proof: Option<(String, DateTime<FixedOffset>)>,
    },
    /// The person a kiosk signed up, by the sign-up's operation id.
    Enrollment(String),
}

/// A pairing as its payload states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingClaim {
    /// The watch's serial, trimmed.
    pub serial: String,
    /// Whom it names.
    pub names: Names,
}

/// Reads a pairing: a serial empty, overlong or with control characters, both or neither of
/// member number and sign-up, a time that does not parse or an overlong token is
/// `invalid_payload`; a pairing by member number without the member's token and its time is
/// `pairing_needs_token`.
pub fn read(payload: &WatchPairingPayload) -> Result<PairingClaim, RejectReason> {
    let serial = payload.serial.trim();
    if serial.is_empty()
        || serial.chars().count() > MAX_SERIAL_CHARS
        || serial.chars().any(char::is_control)
    {
        return Err(RejectReason::InvalidPayload);
    }
    let names = match (&payload.member_number, &payload.enrollment_op_id) {
        (Some(number), None) => Names::Member {
            member: parse_member_number(number),
            proof: match (&payload.token, &payload.paired_at) {
                (Some(token), Some(paired_at)) => {
                    let paired_at = DateTime::parse_from_rfc3339(paired_at.trim())
                        .map_err(|_| RejectReason::InvalidPayload)?;
                    if token.len() > MAX_TOKEN_CHARS {
                        return Err(RejectReason::InvalidPayload);
                    }
                    Some((token.clone(), paired_at))
                }
                _ => None,
            },
        },
        (None, Some(enrollment)) => Names::Enrollment(enrollment.trim().to_owned()),
        _ => return Err(RejectReason::InvalidPayload),
    };
    Ok(PairingClaim {
        serial: serial.to_owned(),
        names,
    })
}

/// Checks a counter's pairing time received at `now`, numbered `seq`: within the offline
/// window and, by the counter's numbering, not after the pairing's day (`told_after`, the
/// lowest number the counter told on a later day); otherwise `pairing_time_out_of_window`.
pub fn check_time(
    paired_at: DateTime<FixedOffset>,
    seq: Option<u64>,
    told_after: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), RejectReason> {
    let left_behind = seq.is_some_and(|seq| made_after_day(seq, told_after));
    if !within_offline_window(paired_at, now) || left_behind {
        return Err(RejectReason::PairingTimeOutOfWindow);
    }
    Ok(())
}

/// What a pairing of a watch to `member` does, given the member the watch is paired to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// Already so: nothing changes (`duplicate`).
    Already,
    /// Paired now (ending the member's pairing to another watch, if any).
    Paired,
}

/// Decides a pairing of a watch to `member` whose current holder is `holder`: a watch paired
/// to someone else is `watch_paired_elsewhere` (it must be unpaired first).
pub fn decide(member: i64, holder: Option<i64>) -> Result<Pairing, RejectReason> {
    match holder {
        Some(holder) if holder == member => Ok(Pairing::Already),
        Some(_) => Err(RejectReason::WatchPairedElsewhere),
        None => Ok(Pairing::Paired),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn payload(
        serial: &str,
        member: Option<&str>,
        enrollment: Option<&str>,
    ) -> WatchPairingPayload {
        WatchPairingPayload {
            serial: serial.to_owned(),
            member_number: member.map(str::to_owned),
            enrollment_op_id: enrollment.map(str::to_owned),
            token: member.map(|_| "token".to_owned()),
            paired_at: member.map(|_| "2025-12-03T09:00:00+09:00".to_owned()),
        }
    }

    #[test]
    fn a_pairing_names_one_member_one_way_with_proof_when_by_number() {
        let by_number = read(&payload(" PW-1 ", Some("PP-00000001"), None)).unwrap();
        assert_eq!(by_number.serial, "PW-1");
        assert!(matches!(
            by_number.names,
            Names::Member {
                member: Some(1),
                proof: Some(_)
            }
        ));
        let mut bare = payload("PW-1", Some("PP-00000001"), None);
        bare.token = None;
        assert!(matches!(
            read(&bare).unwrap().names,
            Names::Member { proof: None, .. }
        ));
        assert_eq!(
            read(&payload("PW-1", None, Some("e-1"))).unwrap().names,
            Names::Enrollment("e-1".to_owned())
        );
        for bad in [
            payload("", Some("PP-00000001"), None),
            payload(&"P".repeat(65), Some("PP-00000001"), None),
            payload("PW\n1", Some("PP-00000001"), None),
            payload("PW-1", Some("PP-00000001"), Some("e-1")),
            payload("PW-1", None, None),
        ] {
            assert_eq!(read(&bad), Err(RejectReason::InvalidPayload), "{bad:?}");
        }
        let mut long_token = payload("PW-1", Some("PP-00000001"), None);
        long_token.token = Some("t".repeat(MAX_TOKEN_CHARS + 1));
        assert_eq!(read(&long_token), Err(RejectReason::InvalidPayload));
    }

    #[test]
    fn a_counters_pairing_is_timed_by_the_servers_clock_and_its_numbering() {
        let now = Utc.with_ymd_and_hms(2025, 12, 3, 1, 0, 0).unwrap();
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap();
        assert_eq!(
            check_time(at("2025-12-03T09:00:00+09:00"), Some(7), None, now),
            Ok(())
        );
        assert_eq!(
            check_time(at("2025-12-03T09:00:00+09:00"), Some(7), Some(8), now),
            Ok(())
        );
        let late = Err(RejectReason::PairingTimeOutOfWindow);
        assert_eq!(
            check_time(at("2025-12-03T09:00:00+09:00"), Some(9), Some(8), now),
            late
        );
        assert_eq!(
            check_time(at("2025-11-25T09:00:00+09:00"), None, None, now),
            late
        );
        assert_eq!(
            check_time(at("2025-12-03T11:00:00+09:00"), None, None, now),
            late
        );
        assert_eq!(decide(1, None), Ok(Pairing::Paired));
        assert_eq!(decide(1, Some(1)), Ok(Pairing::Already));
        assert_eq!(decide(1, Some(2)), Err(RejectReason::WatchPairedElsewhere));
    }
}
