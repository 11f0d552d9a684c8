//! What a terminal decides when it reads a watch: which records are new, whether the watch may
//! be paired to this person, which day totals become step reports, and the heart-rate figures
//! of the member's week.
//!
//! Pure: the records arrive as values (the BLE link read them), `reported_at` and the week are
//! arguments. Nothing here talks to a radio or a database.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, FixedOffset, NaiveDate, NaiveDateTime};
use points_core::StepReport;
use serde::Serialize;
use watch_protocol::DayProof;

/// What one watch record holds (the watch's history, without Bluetooth framing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sample {
    /// The day's cumulative step count so far; the highest of a day counts. `proof` is the
    /// watch's signature over it, which the central server needs to credit it.
    DaySteps {
        date: NaiveDate,
        steps: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        proof: Option<DayProof>,
    },
    /// Steps counted in one hour of a day.
    HourSteps {
        date: NaiveDate,
        hour: u8,
        steps: u32,
    },
    /// One heart-rate sample, KST.
    HeartRate { at: NaiveDateTime, bpm: u8 },
}

impl Sample {
    /// The day the sample belongs to.
    pub fn date(&self) -> NaiveDate {
        match self {
            Sample::DaySteps { date, .. } | Sample::HourSteps { date, .. } => *date,
            Sample::HeartRate { at, .. } => at.date(),
        }
    }
}

/// One record of a watch's history with its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WatchRecord {
    pub seq: u32,
    pub sample: Sample,
}

/// The first sequence number to ask a watch for, given the last one stored for it.
pub fn fetch_from(last_seq: Option<u32>) -> u32 {
    last_seq.map_or(0, |s| s.saturating_add(1))
}

/// The records after `last_seq`, each sequence number once, in order.
pub fn new_records(records: &[WatchRecord], last_seq: Option<u32>) -> Vec<WatchRecord> {
    let from = fetch_from(last_seq);
    let mut by_seq = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r.seq >= from && last_seq != Some(u32::MAX))
    {
        by_seq.entry(r.seq).or_insert(*r);
    }
    by_seq.into_values().collect()
}

/// The last sequence number stored once `new` is stored on top of `last_seq`.
pub fn last_seq_after(last_seq: Option<u32>, new: &[WatchRecord]) -> Option<u32> {
    new.iter().map(|r| r.seq).max().max(last_seq)
}

/// Who a watch is paired to: a member (at the counter) or a kiosk enrollment not yet given a
/// member number by the central server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum WatchOwner {
    Member(String),
    Enrollment(String),
}

/// Whether pairing the watch changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// The watch was unknown here: it becomes this person's.
    New,
    /// The watch is already this person's.
    Same,
}

/// Why a watch may not be paired.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PairingRefusal {
    /// The watch is paired to someone else here.
    PairedElsewhere { serial: String },
}

impl std::error::Error for PairingRefusal {}

impl std::fmt::Display for PairingRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PairingRefusal::PairedElsewhere { serial } => {
                write!(f, "watch {serial} is paired to another member")
            }
        }
    }
}

impl PairingRefusal {
    /// The stable code the UI switches on.
    pub fn code(&self) -> &'static str {
        match self {
            PairingRefusal::PairedElsewhere { .. } => "watch_paired_elsewhere",
        }
    }

    /// The message in Korean, saying what to do next.
    pub fn ko(&self) -> String {
        match self {
            PairingRefusal::PairedElsewhere { serial } => format!(
                "이 워치({serial})는 다른 회원에게 등록되어 있습니다. 회원 본인의 워치인지 확인해 주세요. 워치 주인이 바뀌었다면 보건소에서 등록을 옮겨야 합니다."
            ),
        }
    }

    /// The message in English, saying what to do next.
    pub fn en(&self) -> String {
        match self {
            PairingRefusal::PairedElsewhere { serial } => format!(
                "This watch ({serial}) is registered to another member. Check that it is the member's own watch; if it changed hands, the registration must be moved at a community center."
            ),
        }
    }
}

/// Checks pairing the watch `serial` to `wanted`, given who it is paired to now (if anyone).
pub fn check_pairing(
    serial: &str,
    wanted: &WatchOwner,
    current: Option<&WatchOwner>,
) -> Result<Pairing, PairingRefusal> {
    match current {
        None => Ok(Pairing::New),
        Some(owner) if owner == wanted => Ok(Pairing::Same),
        Some(_) => Err(PairingRefusal::PairedElsewhere {
            serial: serial.to_owned(),
        }),
    }
}

/// Each day's step total in `records`: the highest day total reported, or the sum of the
/// hours when that is higher (a day whose total record was not written yet).
pub fn day_totals(records: &[WatchRecord]) -> BTreeMap<NaiveDate, u32> {
    let mut totals: BTreeMap<NaiveDate, u32> = BTreeMap::new();
    let mut hours: BTreeMap<(NaiveDate, u8), u32> = BTreeMap::new();
    for r in records {
        match r.sample {
            Sample::DaySteps { date, steps, .. } => {
                let t = totals.entry(date).or_insert(0);
                *t = (*t).max(steps);
            }
            Sample::HourSteps { date, hour, steps } => {
                let h = hours.entry((date, hour)).or_insert(0);
                *h = (*h).max(steps);
            }
            Sample::HeartRate { .. } => {}
        }
    }
    let mut summed: BTreeMap<NaiveDate, u32> = BTreeMap::new();
    for ((date, _), steps) in hours {
        let s = summed.entry(date).or_insert(0);
        *s = s.saturating_add(steps);
    }
    for (date, steps) in summed {
        let t = totals.entry(date).or_insert(0);
        *t = (*t).max(steps);
    }
    totals
}

/// Each day's highest total the watch signed, with its proof: what the central server will
/// credit. A day the watch did not sign is absent.
pub fn signed_totals(records: &[WatchRecord]) -> BTreeMap<NaiveDate, (u32, DayProof)> {
    let mut out: BTreeMap<NaiveDate, (u32, DayProof)> = BTreeMap::new();
    for r in records {
        if let Sample::DaySteps {
            date,
            steps,
            proof: Some(proof),
        } = r.sample
        {
            let best = out.entry(date).or_insert((steps, proof));
            if steps > best.0 {
                *best = (steps, proof);
            }
        }
    }
    out
}

/// The totals to report: a day the watch signed reports its signed total (the only one the
/// server credits, even when the hours add up to more); another day its highest total.
pub fn reportable_totals(records: &[WatchRecord]) -> BTreeMap<NaiveDate, u32> {
    let mut totals = day_totals(records);
    for (day, (steps, _)) in signed_totals(records) {
        totals.insert(day, steps);
    }
    totals
}

/// The step reports to store and queue: one per day whose total is above what the terminal
/// already knows for that day (a lower or equal count changes nothing, so it is not sent).
pub fn new_step_reports(
    totals: &BTreeMap<NaiveDate, u32>,
    known: &BTreeMap<NaiveDate, u32>,
    reported_at: DateTime<FixedOffset>,
) -> Vec<StepReport> {
    totals
        .iter()
        .filter(|(day, steps)| !matches!(known.get(day), Some(k) if *k >= **steps))
        .map(|(day, steps)| StepReport {
            reported_at,
            day: *day,
            steps: *steps,
        })
        .collect()
}

/// One day of heart-rate figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HeartDay {
    pub day: NaiveDate,
    /// Minutes of moderate to vigorous activity (see [`heart_week`]).
    pub mvpa_minutes: u32,
    /// The day's lowest sample, if any.
    pub resting_bpm: Option<u8>,
}

/// The heart-rate figures of the week the counter shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HeartWeek {
    pub days: Vec<HeartDay>,
    pub mvpa_minutes: u32,
    /// The average of the days' lowest samples, rounded; none without samples.
    pub resting_bpm: Option<u32>,
}

/// The heart rate from which activity counts as moderate: 64% of the age-predicted maximum
/// (220 minus age), the lower bound of the moderate zone.
pub fn moderate_threshold(age: u32) -> u32 {
    (220u32.saturating_sub(age) * 64).div_ceil(100)
}

/// Steps a minute from which walking counts as moderate intensity (the usual cadence
/// threshold for adults).
pub const MODERATE_CADENCE: u32 = 100;

/// The week of seven days from `week_start`, from heart-rate samples and hourly step counts
/// (any order).
///
/// The watch samples the heart rate about hourly, too coarse to time activity by itself. An
/// hour counts as moderate to vigorous when a sample in it is at or above
/// [`moderate_threshold`] for `age`; its minutes are then those its steps could have been
/// walked at [`MODERATE_CADENCE`] (at most 60). The resting rate is the day's lowest sample.
pub fn heart_week(
    samples: &[(NaiveDateTime, u8)],
    hour_steps: &[(NaiveDate, u8, u32)],
    age: u32,
    week_start: NaiveDate,
) -> HeartWeek {
    let threshold = moderate_threshold(age);
    let mut steps: BTreeMap<(NaiveDate, u32), u32> = BTreeMap::new();
    for (date, hour, n) in hour_steps {
        let e = steps.entry((*date, u32::from(*hour))).or_insert(0);
        *e = (*e).max(*n);
    }
    let mut lowest: BTreeMap<NaiveDate, u8> = BTreeMap::new();
    let mut active: BTreeMap<(NaiveDate, u32), ()> = BTreeMap::new();
    for (at, bpm) in samples {
        let low = lowest.entry(at.date()).or_insert(*bpm);
        *low = (*low).min(*bpm);
        if u32::from(*bpm) >= threshold {
            active.insert((at.date(), chrono::Timelike::hour(at)), ());
        }
    }
    let days: Vec<HeartDay> = (0..7u64)
        .map(|i| {
            let day = week_start + Days::new(i);
            let mvpa_minutes = active
                .range((day, 0)..=(day, 23))
                .map(|(key, ())| (steps.get(key).copied().unwrap_or(0) / MODERATE_CADENCE).min(60))
                .sum();
            HeartDay {
                day,
                mvpa_minutes,
                resting_bpm: lowest.get(&day).copied(),
            }
        })
        .collect();
    let lows: Vec<u32> = days
        .iter()
        .filter_map(|d| d.resting_bpm.map(u32::from))
        .collect();
    let resting_bpm = (!lows.is_empty()).then(|| {
        let n = u32::try_from(lows.len()).unwrap_or(1);
        (lows.iter().sum::<u32>() + n / 2) / n
    });
    HeartWeek {
        mvpa_minutes: days.iter().map(|d| d.mvpa_minutes).sum(),
        resting_bpm,
        days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn day(seq: u32, date: &str, steps: u32) -> WatchRecord {
        WatchRecord {
            seq,
            sample: Sample::DaySteps {
                date: d(date),
                steps,
                proof: None,
            },
        }
    }

    /// A day total the watch `PW-1` signed with `counter`.
    fn signed_day(seq: u32, date: &str, steps: u32, counter: u32) -> WatchRecord {
        let key = watch_protocol::WatchKey::from_seed([5; 32]);
        WatchRecord {
            seq,
            sample: Sample::DaySteps {
                date: d(date),
                steps,
                proof: Some(key.sign_day("PW-1", d(date), steps, counter, 0).unwrap()),
            },
        }
    }

    fn hour(seq: u32, date: &str, hour: u8, steps: u32) -> WatchRecord {
        WatchRecord {
            seq,
            sample: Sample::HourSteps {
                date: d(date),
                hour,
                steps,
            },
        }
    }

    #[test]
    fn new_records_are_those_after_the_last_stored() {
        fn check(last: Option<u32>, seqs: &[u32], want: &[u32]) {
            let records: Vec<WatchRecord> =
                seqs.iter().map(|s| day(*s, "2025-12-01", 100)).collect();
            let got: Vec<u32> = new_records(&records, last).iter().map(|r| r.seq).collect();
            assert_eq!(got, want, "last {last:?}, seqs {seqs:?}");
        }
        check(None, &[0, 1, 2], &[0, 1, 2]);
        check(Some(1), &[0, 1, 2, 3], &[2, 3]);
        check(Some(5), &[3, 4, 5], &[]);
        check(None, &[2, 1, 2, 1], &[1, 2]);
        check(Some(u32::MAX), &[u32::MAX], &[]);
        assert_eq!(fetch_from(None), 0);
        assert_eq!(fetch_from(Some(48)), 49);
        assert_eq!(last_seq_after(Some(3), &[day(7, "2025-12-01", 1)]), Some(7));
        assert_eq!(last_seq_after(Some(3), &[]), Some(3));
        assert_eq!(last_seq_after(None, &[]), None);
    }

    #[test]
    fn a_watch_paired_to_someone_else_is_refused() {
        let a = WatchOwner::Member("PP-0001".into());
        let b = WatchOwner::Member("PP-0002".into());
        let e = WatchOwner::Enrollment("op-1".into());
        assert_eq!(check_pairing("PW-1", &a, None), Ok(Pairing::New));
        assert_eq!(check_pairing("PW-1", &a, Some(&a)), Ok(Pairing::Same));
        for (wanted, current) in [(&a, &b), (&e, &a), (&a, &e)] {
            let refusal = check_pairing("PW-1", wanted, Some(current)).unwrap_err();
            assert_eq!(refusal.code(), "watch_paired_elsewhere");
            assert!(refusal.ko().contains("PW-1"));
            assert!(refusal.en().starts_with("This watch (PW-1)"));
        }
    }

    #[test]
    fn day_totals_take_the_highest_total_or_the_sum_of_hours() {
        let records = [
            day(0, "2025-12-01", 4000),
            day(1, "2025-12-01", 9000),
            day(2, "2025-12-01", 7000),
            hour(3, "2025-12-02", 8, 1200),
            hour(4, "2025-12-02", 9, 800),
            hour(5, "2025-12-02", 9, 300),
            day(6, "2025-12-02", 1500),
            WatchRecord {
                seq: 7,
                sample: Sample::HeartRate {
                    at: at("2025-12-03 10:00"),
                    bpm: 70,
                },
            },
        ];
        let totals = day_totals(&records);
        assert_eq!(
            totals.into_iter().collect::<Vec<_>>(),
            [(d("2025-12-01"), 9000), (d("2025-12-02"), 2000)]
        );
    }

    #[test]
    fn a_signed_day_reports_its_signed_total_and_only_that() {
        let records = [
            signed_day(0, "2025-12-01", 4000, 1),
            signed_day(1, "2025-12-01", 9000, 2),
            day(2, "2025-12-01", 9500),
            // The hours say more than the watch signed: the signed total is what is reported.
            hour(3, "2025-12-02", 8, 1200),
            hour(4, "2025-12-02", 9, 800),
            signed_day(5, "2025-12-02", 1500, 3),
            // A day the watch did not sign reports its highest total, without proof.
            day(6, "2025-12-03", 700),
        ];
        let signed = signed_totals(&records);
        assert_eq!(
            signed
                .iter()
                .map(|(d, (s, p))| (*d, *s, p.counter))
                .collect::<Vec<_>>(),
            [(d("2025-12-01"), 9000, 2), (d("2025-12-02"), 1500, 3)]
        );
        assert_eq!(
            reportable_totals(&records).into_iter().collect::<Vec<_>>(),
            [
                (d("2025-12-01"), 9000),
                (d("2025-12-02"), 1500),
                (d("2025-12-03"), 700)
            ]
        );
    }

    #[test]
    fn only_days_above_what_is_known_become_step_reports() {
        let now = DateTime::parse_from_rfc3339("2025-12-03T15:00:00+09:00").unwrap();
        let totals = BTreeMap::from([
            (d("2025-12-01"), 9000),
            (d("2025-12-02"), 5000),
            (d("2025-12-03"), 3000),
        ]);
        let known = BTreeMap::from([(d("2025-12-01"), 9000), (d("2025-12-02"), 4000)]);
        let reports = new_step_reports(&totals, &known, now);
        let got: Vec<(NaiveDate, u32)> = reports.iter().map(|r| (r.day, r.steps)).collect();
        assert_eq!(got, [(d("2025-12-02"), 5000), (d("2025-12-03"), 3000)]);
        assert!(reports.iter().all(|r| r.reported_at == now));
        // Syncing the same watch again reports nothing more.
        let mut known = known;
        known.extend(got);
        assert!(new_step_reports(&totals, &known, now).is_empty());
    }

    #[test]
    fn heart_week_counts_brisk_minutes_in_moderate_hours_and_the_resting_rate() {
        // Age 70: maximum 150, moderate from 96.
        assert_eq!(moderate_threshold(70), 96);
        assert_eq!(moderate_threshold(20), 128);
        let samples = [
            (at("2025-12-01 09:10"), 100),
            (at("2025-12-01 10:00"), 90),
            (at("2025-12-01 03:00"), 55),
            (at("2025-12-02 23:30"), 120),
            (at("2025-12-02 04:00"), 61),
            (at("2025-11-30 12:00"), 140),
        ];
        let hours = [
            (d("2025-12-01"), 9, 4_250),  // moderate heart rate: 42 brisk minutes
            (d("2025-12-01"), 10, 5_000), // heart rate below the zone: none
            (d("2025-12-02"), 23, 9_000), // capped at the hour
            (d("2025-11-30"), 12, 3_000), // outside the week
        ];
        let week = heart_week(&samples, &hours, 70, d("2025-12-01"));
        assert_eq!(week.days.len(), 7);
        let first: Vec<(u32, Option<u8>)> = week
            .days
            .iter()
            .take(3)
            .map(|h| (h.mvpa_minutes, h.resting_bpm))
            .collect();
        assert_eq!(first, [(42, Some(55)), (60, Some(61)), (0, None)]);
        assert_eq!(week.mvpa_minutes, 102);
        assert_eq!(week.resting_bpm, Some(58));
        assert_eq!(heart_week(&[], &hours, 70, d("2025-12-01")).mvpa_minutes, 0);
        assert_eq!(heart_week(&[], &[], 70, d("2025-12-01")).resting_bpm, None);
    }
}
