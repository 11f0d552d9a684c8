//! Step reports: a member's day total, credited only within the server's bounds of time and,
//! once the program trusts a watch authority, only as the member's own certified watch signed
//! it (`docs/watch-gatt.md`, "Signed steps").
//!
//! A store reads the claim ([`read`]), loads what it names ([`StepState`]: the member's birth
//! date and ledger snapshot, the trusted authorities, and for a signed claim the watch's
//! pairing and whether its proof was credited before), calls [`decide`], and writes the
//! [`StepCredit`] it returns: the report, its ledger entries, the new snapshot and the proof.

use std::collections::BTreeSet;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use points_core::{Ignored, Ledger, LedgerEntry, PolicySet, StepReport};
use sync_protocol::member::parse_member_number;
use sync_protocol::wire::{RejectReason, StepReportPayload};
use watch_protocol::{DayProof, WatchCertificate};

/// How far a watch's clock may run ahead of the server's, in seconds.
pub const WATCH_CLOCK_AHEAD_SECS: i64 = 300;

/// How long before the server received a step report it may have been read from the watch:
/// a counter kept off the network for up to a week (as for holds). A report dated earlier is
/// taken as read this long before it arrived.
pub const STEPS_DAYS_BACK: i64 = 7;

/// A step report as its payload states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepClaim {
    /// The member's id, from the member number.
    pub member: i64,
    /// The member's day.
    pub day: NaiveDate,
    /// The day's cumulative steps.
    pub steps: u32,
    /// When the terminal says it read the watch.
    pub reported_at: DateTime<FixedOffset>,
    /// The watch's serial and proof counter, when the report carries a proof: the keys by
    /// which a store finds the watch's pairing and the proofs it credited.
    pub watch: Option<(String, u32)>,
}

/// Reads a step report's payload. A payload whose day or time does not parse is
/// `invalid_payload`; a member number that is no member's is `unknown_member`.
pub fn read(payload: &StepReportPayload) -> Result<StepClaim, RejectReason> {
    let day = NaiveDate::parse_from_str(payload.day.trim(), "%Y-%m-%d");
    let reported_at = DateTime::parse_from_rfc3339(payload.reported_at.trim());
    let (Ok(day), Ok(reported_at)) = (day, reported_at) else {
        return Err(RejectReason::InvalidPayload);
    };
    let member = parse_member_number(&payload.member_number).ok_or(RejectReason::UnknownMember)?;
    Ok(StepClaim {
        member,
        day,
        steps: payload.steps,
        reported_at,
        watch: payload
            .watch
            .as_ref()
            .map(|watch| (watch.serial.clone(), watch.counter)),
    })
}

/// What deciding a step report reads, loaded by the store for the claim.
#[derive(Debug, Clone)]
pub struct StepState<'a> {
    /// The member's ledger, made from their snapshot (or new, for their birth date, before
    /// their first report).
    pub ledger: Ledger,
    /// The snapshot it was made from (`points_core::Ledger::to_snapshot`), if any.
    pub snapshot: Option<&'a [u8]>,
    /// The public keys of the watch certificate authorities the program trusts; none: steps
    /// are taken unsigned.
    pub authorities: &'a [[u8; 32]],
    /// Whether the claim's watch is paired to the member now (`false` without a watch).
    pub paired: bool,
    /// Whether the claim's watch proof (serial and counter) was credited before.
    pub proof_seen: bool,
}

/// What a credited step report writes.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCredit {
    /// The time the report is taken at: the watch's signing time (or, unsigned, the
    /// terminal's), within the server's bounds.
    pub reported_at: DateTime<FixedOffset>,
    /// The ledger entries it newly earns.
    pub entries: Vec<LedgerEntry>,
    /// Their points.
    pub points: u64,
    /// Why it earns nothing, if it does not.
    pub ignored: Option<Ignored>,
    /// The member's ledger snapshot after it.
    pub ledger: Vec<u8>,
    /// Whether the snapshot differs from the one loaded.
    pub ledger_changed: bool,
    /// The watch proof (serial and counter) to remember as credited.
    pub proof: Option<(String, u32)>,
}

/// The certificates found made by a trusted authority, so that a watch syncing many days
/// with the same certificate costs one check: a store keeps one per connection.
#[derive(Debug, Default)]
pub struct CertifiedWatches {
    checked: BTreeSet<Vec<u8>>,
}

impl CertifiedWatches {
    /// Whether a trusted authority made `certificate`.
    pub fn certified(
        &mut self,
        certificate: &WatchCertificate,
        encoded: &str,
        authorities: &[[u8; 32]],
    ) -> bool {
        let mut id = encoded.as_bytes().to_vec();
        for key in authorities {
            id.extend_from_slice(key);
        }
        if self.checked.contains(&id) {
            return true;
        }
        let ok = certificate.verify(authorities).is_ok();
        if ok {
            if self.checked.len() >= 65_536 {
                self.checked.clear();
            }
            self.checked.insert(id);
        }
        ok
    }
}

/// Decides a step report of `claim` (from `payload`) received at `now`, with what the store
/// loaded. `prechecked`: the proof's signature was already found to verify under its own
/// certificate's key ([`precheck`]). A refusal writes nothing.
pub fn decide(
    payload: &StepReportPayload,
    claim: &StepClaim,
    state: StepState<'_>,
    policies: &PolicySet,
    certified: &mut CertifiedWatches,
    prechecked: bool,
    now: DateTime<Utc>,
) -> Result<StepCredit, RejectReason> {
    // A day that has not begun by the server's clock (a watch's clock may run a little
    // ahead) is nobody's steps yet.
    let ahead = now + chrono::Duration::seconds(WATCH_CLOCK_AHEAD_SECS);
    if claim.day > points_core::kst_day(ahead) {
        return Err(RejectReason::StepsTimeOutOfWindow);
    }
    // Once the program trusts a watch authority, steps count only as a certified watch
    // paired to the member signed them, and lateness is judged by the watch's signed time.
    let signed_at = watch_verdict(payload, claim, &state, certified, prechecked, now)?;
    let reported_at = signed_at.unwrap_or(claim.reported_at);
    // Whatever time the report carries (the watch's, whose clock can be set back, or the
    // terminal's), it was read at most `STEPS_DAYS_BACK` days before the server received it
    // and not after: a day long past arrives late, however it is dated.
    let earliest = now - chrono::Duration::days(STEPS_DAYS_BACK);
    let reported_at = if reported_at.to_utc() < earliest {
        earliest.with_timezone(reported_at.offset())
    } else if reported_at.to_utc() > now {
        now.with_timezone(reported_at.offset())
    } else {
        reported_at
    };
    let mut ledger = state.ledger;
    let outcome = ledger.apply(
        policies,
        &StepReport {
            reported_at,
            day: claim.day,
            steps: claim.steps,
        },
    );
    let entries: Vec<LedgerEntry> = outcome.entries().cloned().collect();
    let points = entries.iter().map(|e| u64::from(e.points)).sum();
    let after = ledger.to_snapshot();
    Ok(StepCredit {
        reported_at,
        points,
        ignored: outcome.ignored(),
        ledger_changed: state.snapshot != Some(&after[..]),
        ledger: after,
        entries,
        proof: signed_at.and(claim.watch.clone()),
    })
}

/// The watch's signing time when the report is signed as it must be, `None` when no
/// authority is trusted (steps are taken unsigned), or why it is refused.
fn watch_verdict(
    payload: &StepReportPayload,
    claim: &StepClaim,
    state: &StepState<'_>,
    certified: &mut CertifiedWatches,
    prechecked: bool,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<FixedOffset>>, RejectReason> {
    if state.authorities.is_empty() {
        return Ok(None);
    }
    let Some(watch) = &payload.watch else {
        return Err(RejectReason::StepsUnsigned);
    };
    let Some(certificate) = watch_protocol::proof::unhex(&watch.certificate)
        .and_then(|bytes| WatchCertificate::decode(&bytes).ok())
    else {
        return Err(RejectReason::WatchNotCertified);
    };
    if certificate.serial != watch.serial
        || !certified.certified(&certificate, &watch.certificate, state.authorities)
    {
        return Err(RejectReason::WatchNotCertified);
    }
    if !prechecked {
        match proof_verifies(payload, &certificate, claim.day) {
            Some(true) => {}
            Some(false) => return Err(RejectReason::StepsSignatureInvalid),
            None => return Err(RejectReason::InvalidPayload),
        }
    }
    if !state.paired {
        return Err(RejectReason::WatchNotPaired);
    }
    let signed_at = DateTime::from_timestamp(i64::from(watch.signed_at), 0)
        .unwrap_or_default()
        .fixed_offset();
    if signed_at.to_utc() > now + chrono::Duration::seconds(WATCH_CLOCK_AHEAD_SECS)
        || claim.day > points_core::kst_day(signed_at)
    {
        return Err(RejectReason::StepsTimeOutOfWindow);
    }
    if state.proof_seen {
        return Err(RejectReason::StepsReplayed);
    }
    Ok(Some(signed_at))
}

/// Whether the watch proof of a step report for `day` verifies under `certificate`'s key
/// (`None`: the signature is not 64 bytes of hex).
fn proof_verifies(
    payload: &StepReportPayload,
    certificate: &WatchCertificate,
    day: NaiveDate,
) -> Option<bool> {
    let watch = payload.watch.as_ref()?;
    let signature = watch_protocol::proof::unhex(&watch.signature)
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())?;
    let proof = DayProof {
        counter: watch.counter,
        signed_at: watch.signed_at,
        signature,
    };
    Some(
        certificate
            .verify_day(&watch.serial, day, payload.steps, &proof)
            .is_ok(),
    )
}

/// Whether a step report carries a watch proof that verifies under the key of the
/// certificate it carries (not whether a trusted authority made that certificate). Run
/// before the writer, so that the one writer does not spend a signature check (some 70 µs)
/// on each report; [`decide`] takes its answer as `prechecked`.
pub fn precheck(payload: &StepReportPayload) -> bool {
    let (Some(watch), Ok(day)) = (
        &payload.watch,
        NaiveDate::parse_from_str(payload.day.trim(), "%Y-%m-%d"),
    ) else {
        return false;
    };
    watch_protocol::proof::unhex(&watch.certificate)
        .and_then(|bytes| WatchCertificate::decode(&bytes).ok())
        .is_some_and(|certificate| {
            certificate.serial == watch.serial
                && proof_verifies(payload, &certificate, day) == Some(true)
        })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use points_core::PointsPolicy;
    use sync_protocol::wire::WatchProof;
    use watch_protocol::{WatchCa, WatchKey};

    use super::*;

    fn policies() -> PolicySet {
        let texts = [
            include_str!("../../policies/seoul-2023.toml"),
            include_str!("../../policies/seoul-2025-03.toml"),
            include_str!("../../policies/seoul-2025-12.toml"),
        ];
        let policies = texts.map(|text| PointsPolicy::from_toml_str(text).unwrap());
        PolicySet::new(policies.to_vec()).unwrap()
    }

    /// 2025-12-03 10:00 in Seoul.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, 3, 1, 0, 0).unwrap()
    }

    fn kst(at: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(&format!("{at}+09:00")).unwrap()
    }

    /// A report of 9,000 steps for `day`, as the terminal dates it, signed by `key` (certified
    /// by `ca` as PW-1) at `signed_at` when given.
    fn report(
        day: &str,
        at: &str,
        signed: Option<(&WatchCa, &WatchKey, &str)>,
    ) -> StepReportPayload {
        let watch = signed.map(|(ca, key, signed_at)| {
            let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
            let signed_at = u32::try_from(kst(signed_at).timestamp()).unwrap();
            let proof = key.sign_day("PW-1", date, 9_000, 5, signed_at).unwrap();
            let certificate = ca.certify("PW-1", key.public_key()).unwrap();
            WatchProof {
                serial: "PW-1".to_owned(),
                certificate: watch_protocol::proof::hex(&certificate.encode().unwrap()),
                counter: 5,
                signed_at,
                signature: watch_protocol::proof::hex(&proof.signature),
            }
        });
        StepReportPayload {
            member_number: "PP-00000001".to_owned(),
            day: day.to_owned(),
            steps: 9_000,
            reported_at: format!("{at}+09:00"),
            watch,
        }
    }

    /// Decides `payload` for a member born in 1950 with no ledger yet; `authorities` trusted,
    /// the watch `paired` or not and its proof `seen` or not.
    fn decide_for(
        payload: &StepReportPayload,
        authorities: &[[u8; 32]],
        paired: bool,
        seen: bool,
    ) -> Result<StepCredit, RejectReason> {
        let claim = read(payload)?;
        let state = StepState {
            ledger: Ledger::new(NaiveDate::from_ymd_opt(1950, 4, 1).unwrap()),
            snapshot: None,
            authorities,
            paired,
            proof_seen: seen,
        };
        let prechecked = precheck(payload);
        decide(
            payload,
            &claim,
            state,
            &policies(),
            &mut CertifiedWatches::default(),
            prechecked,
            now(),
        )
    }

    #[test]
    fn unsigned_reports_are_dated_within_the_servers_bounds() {
        // On time, as the terminal dates it.
        let credit = decide_for(
            &report("2025-12-02", "2025-12-02T21:00:00", None),
            &[],
            false,
            false,
        );
        let credit = credit.unwrap();
        assert_eq!((credit.points, credit.ignored), (100, None));
        assert_eq!(credit.reported_at, kst("2025-12-02T21:00:00"));
        assert!(credit.ledger_changed && credit.proof.is_none());
        // Dated long ago: taken as read a week before it arrived, so late.
        let old = decide_for(
            &report("2025-10-01", "2025-10-01T21:00:00", None),
            &[],
            false,
            false,
        )
        .unwrap();
        assert_eq!((old.points, old.ignored), (0, Some(Ignored::Late)));
        assert_eq!(old.reported_at, kst("2025-11-26T10:00:00"));
        // Dated ahead: taken as read now.
        let ahead = decide_for(
            &report("2025-12-02", "2026-01-01T00:00:00", None),
            &[],
            false,
            false,
        )
        .unwrap();
        assert_eq!(ahead.reported_at, kst("2025-12-03T10:00:00"));
        // A day that has not begun.
        assert_eq!(
            decide_for(
                &report("2025-12-04", "2025-12-04T21:00:00", None),
                &[],
                false,
                false
            ),
            Err(RejectReason::StepsTimeOutOfWindow)
        );
        // What does not parse.
        let mut bad = report("2025-12-02", "2025-12-02T21:00:00", None);
        bad.day = "yesterday".to_owned();
        assert_eq!(
            decide_for(&bad, &[], false, false),
            Err(RejectReason::InvalidPayload)
        );
        bad = report("2025-12-02", "2025-12-02T21:00:00", None);
        bad.member_number = "someone".to_owned();
        assert_eq!(
            decide_for(&bad, &[], false, false),
            Err(RejectReason::UnknownMember)
        );
    }

    #[test]
    fn signed_reports_count_only_from_the_members_certified_watch() {
        let ca = WatchCa::from_seed([1; 32]);
        let key = WatchKey::from_seed([2; 32]);
        let trusted = [ca.public_key()];
        let signed = |day, at| report(day, "2025-12-03T09:00:00", Some((&ca, &key, at)));
        let good = signed("2025-12-02", "2025-12-02T23:59:59");
        let credit = decide_for(&good, &trusted, true, false).unwrap();
        assert_eq!(credit.points, 100);
        assert_eq!(credit.reported_at, kst("2025-12-02T23:59:59"));
        assert_eq!(credit.proof, Some(("PW-1".to_owned(), 5)));

        let mut altered = good.clone();
        altered.steps = 20_000;
        let mut unsigned = good.clone();
        unsigned.watch = None;
        let stranger = WatchCa::from_seed([9; 32]);
        let counterfeit = report(
            "2025-12-02",
            "2025-12-03T09:00:00",
            Some((&stranger, &key, "2025-12-02T23:59:59")),
        );
        let cases = [
            (unsigned, true, false, RejectReason::StepsUnsigned),
            (counterfeit, true, false, RejectReason::WatchNotCertified),
            (altered, true, false, RejectReason::StepsSignatureInvalid),
            (good.clone(), false, false, RejectReason::WatchNotPaired),
            (good.clone(), true, true, RejectReason::StepsReplayed),
            (
                signed("2025-12-02", "2025-12-03T11:00:00"),
                true,
                false,
                RejectReason::StepsTimeOutOfWindow,
            ),
            (
                signed("2025-12-02", "2025-12-01T23:00:00"),
                true,
                false,
                RejectReason::StepsTimeOutOfWindow,
            ),
        ];
        for (payload, paired, seen, reason) in cases {
            assert_eq!(
                decide_for(&payload, &trusted, paired, seen),
                Err(reason),
                "{payload:?}"
            );
        }
        // The watch's clock set back ten months: late, whatever it signed.
        let set_back = decide_for(
            &signed("2025-04-10", "2025-04-10T23:00:00"),
            &trusted,
            true,
            false,
        )
        .unwrap();
        assert_eq!(
            (set_back.points, set_back.ignored),
            (0, Some(Ignored::Late))
        );
    }
}
