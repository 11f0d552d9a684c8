//! A member's ledger: the incremental state that turns step reports into ledger entries.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeDelta, TimeZone};

use crate::{CapPeriod, PointsPolicy, PolicySet};

/// Korea Standard Time's offset from UTC, in seconds. Korea has kept no daylight saving time
/// since 1988, so a fixed offset is exact.
const KST_SECONDS: i32 = 9 * 3600;

/// Korea Standard Time (Asia/Seoul, UTC+9 all year): the one time zone of the program, whose
/// midnight ends a member's day. The watch protocol states the same offset for the watch's
/// clock (`watch_protocol::current_time::KST_OFFSET_SECONDS`), which it must not depend on.
pub const KST: FixedOffset = match FixedOffset::east_opt(KST_SECONDS) {
    Some(offset) => offset,
    None => panic!("UTC+9 is a valid offset"),
};

/// One report from a watch: the cumulative step count of a member's day, as sent at
/// `reported_at`. A watch sends many for the same day; the highest counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepReport {
    /// When the report was made, with the offset it was made in.
    pub reported_at: DateTime<FixedOffset>,
    /// The member's day (a calendar date in Asia/Seoul) the steps belong to.
    pub day: NaiveDate,
    /// The day's cumulative step count.
    pub steps: u32,
}

/// What a ledger entry pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    /// The daily goal was met.
    Daily,
    /// The weekly condition was met; the entry's day is the day that completed it.
    WeeklyBonus,
    /// The extra daily points of a multiplier event (the base stays in the `Daily` entry).
    Event,
    /// The flat bonus of a special day whose goal was met.
    SpecialDay,
}

impl EntryKind {
    /// The name used on the wire and in the command line's output.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Daily => "daily",
            EntryKind::WeeklyBonus => "weekly_bonus",
            EntryKind::Event => "event",
            EntryKind::SpecialDay => "special_day",
        }
    }
}

/// Points newly credited to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerEntry {
    /// What the points pay for.
    pub kind: EntryKind,
    /// The day earned (for a weekly bonus, the day that completed the week's condition); its
    /// cap period is the one the points count against.
    pub day: NaiveDate,
    /// Points credited, after the cap.
    pub points: u32,
    /// The `reported_at` of the report that earned them.
    pub reported_at: DateTime<FixedOffset>,
}

/// Why a report earned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Ignored {
    /// Reported more than the late window after its day; kept as history, never credited.
    Late,
    /// Above the plausibility limit; held for review, not credited, not counted.
    Held,
    /// Lower than the day's count so far.
    Lower,
    /// The same count as before, or the day was already credited.
    Duplicate,
    /// The goal was met but the cap period is full.
    Capped,
    /// No policy is in force on the report's day.
    NoPolicy,
}

impl Ignored {
    /// The name used on the wire and in the command line's output.
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::Late => "late",
            Ignored::Held => "held",
            Ignored::Lower => "lower",
            Ignored::Duplicate => "duplicate",
            Ignored::Capped => "capped",
            Ignored::NoPolicy => "no_policy",
        }
    }
}

/// What one report did: the entries it newly earned, or why it was ignored, or neither (it
/// raised the day's count without reaching the goal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    entries: [Option<LedgerEntry>; 4],
    ignored: Option<Ignored>,
}

impl Outcome {
    fn ignored_because(reason: Ignored) -> Outcome {
        Outcome {
            ignored: Some(reason),
            ..Outcome::default()
        }
    }

    /// The entries newly earned, in the order they were credited.
    pub fn entries(&self) -> impl Iterator<Item = &LedgerEntry> + '_ {
        self.entries.iter().flatten()
    }

    /// Why the report earned nothing, if it was ignored.
    pub fn ignored(&self) -> Option<Ignored> {
        self.ignored
    }

    /// The points newly earned.
    pub fn points(&self) -> u64 {
        self.entries().map(|entry| u64::from(entry.points)).sum()
    }
}

const SEEN: u8 = 1;
const GOAL_MET: u8 = 2;
/// Set on a week's Monday once the week's bonus is credited.
const WEEK_BONUS: u8 = 4;

#[derive(Debug, Clone, Copy, Default)]
struct DayState {
    /// The highest accepted count (only meaningful with `SEEN`).
    max_steps: u32,
    flags: u8,
}

type YearDays = [DayState; 366];

/// A member's incremental points state: the day's highest accepted count, the days whose goal
/// was met, the weeks whose bonus was credited and the points per cap period. Feed it reports
/// with [`Ledger::apply`] in any order; it returns only what is newly earned.
#[derive(Debug, Clone)]
pub struct Ledger {
    birth_date: NaiveDate,
    /// Day states per year, indexed by the day's ordinal.
    years: BTreeMap<i32, Box<YearDays>>,
    cap_totals: BTreeMap<CapPeriod, u32>,
    total: u64,
}

impl Ledger {
    /// An empty ledger for a member born on `birth_date`.
    pub fn new(birth_date: NaiveDate) -> Ledger {
        Ledger {
            birth_date,
            years: BTreeMap::new(),
            cap_totals: BTreeMap::new(),
            total: 0,
        }
    }

    /// The member's birth date.
    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// All points credited so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The points credited so far in a cap period.
    pub fn cap_total(&self, period: CapPeriod) -> u32 {
        self.cap_totals.get(&period).copied().unwrap_or(0)
    }

    /// The points credited so far, per cap period, in period order.
    pub fn cap_totals(&self) -> impl Iterator<Item = (CapPeriod, u32)> + '_ {
        self.cap_totals
            .iter()
            .map(|(period, points)| (*period, *points))
    }

    /// The highest accepted count for `day`, if any report for it was accepted.
    pub fn day_steps(&self, day: NaiveDate) -> Option<u32> {
        let state = self.day(day);
        (state.flags & SEEN != 0).then_some(state.max_steps)
    }

    /// Rates one report and returns what it newly earned.
    pub fn apply(&mut self, policies: &PolicySet, report: &StepReport) -> Outcome {
        let day = report.day;
        let Some(policy) = policies.in_force(day) else {
            return Outcome::ignored_because(Ignored::NoPolicy);
        };
        let days_late = kst_day(report.reported_at).num_days_from_ce() - day.num_days_from_ce();
        if days_late > i32::try_from(policy.late_window_days).unwrap_or(i32::MAX) {
            return Outcome::ignored_because(Ignored::Late);
        }
        if report.steps > policy.plausible_max_steps {
            return Outcome::ignored_because(Ignored::Held);
        }

        let goal = policy.goal_steps(self.birth_date, day);
        let state = self.day_mut(day);
        if state.flags & SEEN != 0 {
            if report.steps < state.max_steps {
                return Outcome::ignored_because(Ignored::Lower);
            }
            if report.steps == state.max_steps {
                return Outcome::ignored_because(Ignored::Duplicate);
            }
        }
        state.max_steps = report.steps;
        state.flags |= SEEN;
        if state.flags & GOAL_MET != 0 {
            return Outcome::ignored_because(Ignored::Duplicate);
        }
        if report.steps < goal {
            return Outcome::default();
        }
        state.flags |= GOAL_MET;

        let mut earned = Earned::new(report.reported_at);
        let daily = policy.daily.points;
        earned.push(self, policy, EntryKind::Daily, day, daily);
        let multiplier = policy.multiplier(day);
        earned.push(
            self,
            policy,
            EntryKind::Event,
            day,
            daily.saturating_mul(multiplier.saturating_sub(1)),
        );
        earned.push(
            self,
            policy,
            EntryKind::SpecialDay,
            day,
            policy.special_day_points(day),
        );
        if let Some((completed, bonus_policy, points)) = self.complete_week(policies, day) {
            earned.push(
                self,
                bonus_policy,
                EntryKind::WeeklyBonus,
                completed,
                points,
            );
        }
        earned.finish()
    }

    /// If `day`'s week has not had its bonus and now meets a weekly condition, marks the bonus
    /// credited and returns the completing day (the first goal day on which the condition
    /// held, judged by the policy in force on it), that policy and the bonus.
    fn complete_week<'p>(
        &mut self,
        policies: &'p PolicySet,
        day: NaiveDate,
    ) -> Option<(NaiveDate, &'p PointsPolicy, u32)> {
        let monday = day - TimeDelta::days(i64::from(day.weekday().num_days_from_monday()));
        if self.day(monday).flags & WEEK_BONUS != 0 {
            return None;
        }
        let mut goal_days = 0;
        let mut weekend = false;
        for offset in 0..7 {
            let candidate = monday + TimeDelta::days(offset);
            if self.day(candidate).flags & GOAL_MET == 0 {
                continue;
            }
            goal_days += 1;
            weekend |= offset >= 5;
            let Some(policy) = policies.in_force(candidate) else {
                continue;
            };
            let Some(rule) = policy.weekly_bonus else {
                continue;
            };
            if goal_days >= rule.min_goal_days && (weekend || !rule.require_weekend_day) {
                self.day_mut(monday).flags |= WEEK_BONUS;
                return Some((candidate, policy, rule.points));
            }
        }
        None
    }

    /// Credits up to `points` in the cap period of `day` under `policy`; returns what fit.
    fn credit(&mut self, policy: &PointsPolicy, day: NaiveDate, points: u32) -> u32 {
        let used = self.cap_totals.entry(policy.cap_period(day)).or_insert(0);
        let fits = points.min(policy.cap.points.saturating_sub(*used));
        *used += fits;
        self.total += u64::from(fits);
        fits
    }

    fn day(&self, day: NaiveDate) -> DayState {
        self.years
            .get(&day.year())
            .map_or_else(DayState::default, |days| days[day.ordinal0() as usize])
    }

    fn day_mut(&mut self, day: NaiveDate) -> &mut DayState {
        let days = self
            .years
            .entry(day.year())
            .or_insert_with(|| Box::new([DayState::default(); 366]));
        &mut days[day.ordinal0() as usize]
    }
}

/// The entries one report earns, cut to the cap as they are added.
struct Earned {
    reported_at: DateTime<FixedOffset>,
    outcome: Outcome,
    len: usize,
    /// Points the policy granted before the cap.
    granted: u64,
}

impl Earned {
    fn new(reported_at: DateTime<FixedOffset>) -> Earned {
        Earned {
            reported_at,
            outcome: Outcome::default(),
            len: 0,
            granted: 0,
        }
    }

    fn push(
        &mut self,
        ledger: &mut Ledger,
        policy: &PointsPolicy,
        kind: EntryKind,
        day: NaiveDate,
        points: u32,
    ) {
        if points == 0 {
            return;
        }
        self.granted += u64::from(points);
        let fits = ledger.credit(policy, day, points);
        if fits > 0 {
            self.outcome.entries[self.len] = Some(LedgerEntry {
                kind,
                day,
                points: fits,
                reported_at: self.reported_at,
            });
            self.len += 1;
        }
    }

    fn finish(mut self) -> Outcome {
        if self.granted > 0 && self.len == 0 {
            self.outcome.ignored = Some(Ignored::Capped);
        }
        self.outcome
    }
}

/// Why bytes are not a ledger snapshot made by [`Ledger::to_snapshot`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a ledger snapshot: {0}")]
pub struct SnapshotError(&'static str);

/// The snapshot format's version, its first byte.
const SNAPSHOT_VERSION: u8 = 1;

impl Ledger {
    /// The ledger's state as bytes, for a store to keep instead of every report: a version
    /// byte, the total (u64), the cap periods with their points (u16 count; kind, year, half,
    /// points) and the days with any state (u32 count; day as days from the Common Era, highest
    /// count, flags), integers little-endian, in date order. The birth date is not included.
    /// Equal ledgers give equal bytes.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let days: Vec<(i32, DayState)> = self
            .years
            .iter()
            .flat_map(|(year, days)| {
                days.iter()
                    .enumerate()
                    .filter(|(_, state)| state.flags != 0 || state.max_steps != 0)
                    .filter_map(move |(ordinal0, state)| {
                        let ordinal = u32::try_from(ordinal0).ok()? + 1;
                        let day = NaiveDate::from_yo_opt(*year, ordinal)?;
                        Some((day.num_days_from_ce(), *state))
                    })
            })
            .collect();
        let mut out =
            Vec::with_capacity(1 + 8 + 2 + self.cap_totals.len() * 10 + 4 + days.len() * 9);
        out.push(SNAPSHOT_VERSION);
        out.extend_from_slice(&self.total.to_le_bytes());
        let caps = u16::try_from(self.cap_totals.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&caps.to_le_bytes());
        for (period, points) in self.cap_totals.iter().take(usize::from(caps)) {
            let (kind, year, half) = match *period {
                CapPeriod::Year(year) => (0u8, year, 0u8),
                CapPeriod::HalfYear(year, half) => (1u8, year, half),
            };
            out.push(kind);
            out.extend_from_slice(&year.to_le_bytes());
            out.push(half);
            out.extend_from_slice(&points.to_le_bytes());
        }
        let count = u32::try_from(days.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for (day, state) in days {
            out.extend_from_slice(&day.to_le_bytes());
            out.extend_from_slice(&state.max_steps.to_le_bytes());
            out.push(state.flags);
        }
        out
    }

    /// The ledger of a member born on `birth_date` whose state [`Ledger::to_snapshot`] gave.
    pub fn from_snapshot(birth_date: NaiveDate, bytes: &[u8]) -> Result<Ledger, SnapshotError> {
        let mut rest = bytes;
        let mut take = |n: usize| -> Result<&[u8], SnapshotError> {
            if rest.len() < n {
                return Err(SnapshotError("too short"));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
            let mut out = [0; N];
            out.copy_from_slice(bytes);
            out
        }
        if take(1)?[0] != SNAPSHOT_VERSION {
            return Err(SnapshotError("unknown version"));
        }
        let mut ledger = Ledger::new(birth_date);
        ledger.total = u64::from_le_bytes(array(take(8)?));
        let caps = u16::from_le_bytes(array(take(2)?));
        for _ in 0..caps {
            let kind = take(1)?[0];
            let year = i32::from_le_bytes(array(take(4)?));
            let half = take(1)?[0];
            let points = u32::from_le_bytes(array(take(4)?));
            let period = match (kind, half) {
                (0, 0) => CapPeriod::Year(year),
                (1, 1 | 2) => CapPeriod::HalfYear(year, half),
                _ => return Err(SnapshotError("bad cap period")),
            };
            ledger.cap_totals.insert(period, points);
        }
        let days = u32::from_le_bytes(array(take(4)?));
        for _ in 0..days {
            let day = i32::from_le_bytes(array(take(4)?));
            let max_steps = u32::from_le_bytes(array(take(4)?));
            let flags = take(1)?[0];
            let day = NaiveDate::from_num_days_from_ce_opt(day).ok_or(SnapshotError("bad day"))?;
            *ledger.day_mut(day) = DayState { max_steps, flags };
        }
        if !rest.is_empty() {
            return Err(SnapshotError("bytes after the end"));
        }
        Ok(ledger)
    }
}

/// The member's day (the calendar date in Asia/Seoul) of an instant, in whatever zone it is
/// written.
pub fn kst_day<Tz: TimeZone>(at: DateTime<Tz>) -> NaiveDate {
    (at.naive_utc() + TimeDelta::seconds(i64::from(KST_SECONDS))).date()
}

/// A member's age in full years on `day`. A birthday on February 29 turns over on March 1 in
/// years without one.
pub fn age_on(birth_date: NaiveDate, day: NaiveDate) -> i32 {
    let had_birthday = (day.month(), day.day()) >= (birth_date.month(), birth_date.day());
    day.year() - birth_date.year() - i32::from(!had_birthday)
}
