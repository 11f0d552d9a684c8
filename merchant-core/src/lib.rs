//! The counter's rules: what a pharmacy or convenience-store terminal shows and decides for a
//! member standing at the counter.
//!
//! Pure: no IO, no clock; `today` (the date in Asia/Seoul) is an argument. Today it builds the
//! member's week (steps per day, Monday to Sunday, points earned) from the step reports the
//! terminal knows; [`redemption`] decides holds and voids under the server's offline limits,
//! [`receipt`] and [`settlement`] render what the counter prints, and [`scanner`] tells a
//! keyboard-wedge scanner from typing. Points are rated by `points-core`'s ledger, the same
//! code the central server runs; this crate only places the figures on the week.

pub mod watch_sync;

pub mod receipt;
pub mod redemption;
pub mod scanner;
pub mod settlement;

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use points_core::{Ledger, PolicySet, StepReport};
use serde::Serialize;

/// The Monday of the week (Monday to Sunday) holding `day`.
pub fn week_start(day: NaiveDate) -> NaiveDate {
    let back = u64::from(day.weekday().num_days_from_monday());
    day - Days::new(back)
}

/// One day of the member's week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WeekDay {
    pub day: NaiveDate,
    /// The day's count: the highest cumulative count reported, 0 when nothing was reported.
    pub steps: u32,
    /// Points earned for that day (daily and any bonus completed that day).
    pub points: u32,
    /// A day after `today`: nothing to show yet.
    pub future: bool,
}

/// The member's week as the counter shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Week {
    pub days: Vec<WeekDay>,
    pub total_steps: u64,
    pub total_points: u64,
}

/// Builds the week holding `today` from per-day step counts and points, keyed by day.
/// Days outside the week are ignored.
pub fn week_of(
    today: NaiveDate,
    steps: &BTreeMap<NaiveDate, u32>,
    points: &BTreeMap<NaiveDate, u32>,
) -> Week {
    let start = week_start(today);
    let days: Vec<WeekDay> = (0..7u64)
        .map(|i| {
            let day = start + Days::new(i);
            WeekDay {
                day,
                steps: steps.get(&day).copied().unwrap_or(0),
                points: points.get(&day).copied().unwrap_or(0),
                future: day > today,
            }
        })
        .collect();
    Week {
        total_steps: days.iter().map(|d| u64::from(d.steps)).sum(),
        total_points: days.iter().map(|d| u64::from(d.points)).sum(),
        days,
    }
}

/// What the counter shows about a member: their week and this year's points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MemberWeek {
    /// Age in full years today.
    pub age: u32,
    /// Today's daily step goal under the policy in force (0 when no policy covers today).
    pub goal: u32,
    pub week: Week,
    /// Points credited for days of today's calendar year.
    pub year_points: u64,
}

/// Rates a member's step reports (in the order they were reported) under `policies` and
/// builds the week holding `today`.
pub fn member_week(
    birth_date: NaiveDate,
    reports: &[StepReport],
    policies: &PolicySet,
    today: NaiveDate,
) -> MemberWeek {
    let mut ledger = Ledger::new(birth_date);
    let mut steps: BTreeMap<NaiveDate, u32> = BTreeMap::new();
    let mut points: BTreeMap<NaiveDate, u32> = BTreeMap::new();
    let mut year_points = 0u64;
    for report in reports {
        let day_max = steps.entry(report.day).or_insert(0);
        *day_max = (*day_max).max(report.steps);
        for entry in ledger.apply(policies, report).entries() {
            *points.entry(entry.day).or_insert(0) += entry.points;
            if entry.day.year() == today.year() {
                year_points += u64::from(entry.points);
            }
        }
    }
    MemberWeek {
        age: u32::try_from(points_core::age_on(birth_date, today)).unwrap_or(0),
        goal: policies
            .in_force(today)
            .map_or(0, |p| p.goal_steps(birth_date, today)),
        week: week_of(today, &steps, &points),
        year_points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn week_runs_monday_to_sunday() {
        // 2025-12-03 is a Wednesday; 2025-12-07 a Sunday; 2025-12-08 a Monday.
        assert_eq!(week_start(d("2025-12-03")), d("2025-12-01"));
        assert_eq!(week_start(d("2025-12-07")), d("2025-12-01"));
        assert_eq!(week_start(d("2025-12-08")), d("2025-12-08"));
        // A week crossing the year boundary.
        assert_eq!(week_start(d("2026-01-01")), d("2025-12-29"));
    }

    #[test]
    fn week_places_steps_and_points_and_marks_future_days() {
        let steps = BTreeMap::from([
            (d("2025-11-30"), 20_000), // Sunday before: not this week
            (d("2025-12-01"), 9_000),
            (d("2025-12-03"), 4_000),
        ]);
        let points = BTreeMap::from([(d("2025-12-01"), 100)]);
        let w = week_of(d("2025-12-03"), &steps, &points);
        assert_eq!(w.days.len(), 7);
        assert_eq!(w.days[0].steps, 9_000);
        assert_eq!(w.days[0].points, 100);
        assert_eq!(w.days[1].steps, 0);
        assert_eq!(w.days[2].steps, 4_000);
        assert!(!w.days[2].future);
        assert!(w.days[3].future);
        assert_eq!(w.total_steps, 13_000);
        assert_eq!(w.total_points, 100);
    }

    fn seoul_2025_12() -> PolicySet {
        PolicySet::from(
            points_core::PointsPolicy::from_toml_str(include_str!(
                "../../policies/seoul-2025-12.toml"
            ))
            .unwrap(),
        )
    }

    fn report(day: &str, hour: u32, steps: u32) -> StepReport {
        StepReport {
            reported_at: chrono::DateTime::parse_from_rfc3339(&format!(
                "{day}T{hour:02}:00:00+09:00"
            ))
            .unwrap(),
            day: d(day),
            steps,
        }
    }

    #[test]
    fn member_week_rates_reports_with_the_policy_core() {
        // Born 1955-12-03: 69 until 2025-12-02, 70 from 2025-12-03 (goal 8,000 then 5,000).
        let birth = d("1955-12-03");
        let reports = [
            report("2025-11-30", 20, 9_000), // last week, this year
            report("2025-12-01", 12, 4_000),
            report("2025-12-01", 20, 8_500), // goal met: 100
            report("2025-12-02", 20, 6_000), // 69: goal 8,000, not met
            report("2025-12-03", 12, 5_200), // 70 today: goal 5,000 met
            report("2025-12-01", 21, 8_000), // lower, ignored
        ];
        let w = member_week(birth, &reports, &seoul_2025_12(), d("2025-12-03"));
        assert_eq!(w.age, 70);
        assert_eq!(w.goal, 5_000);
        let days: Vec<(u32, u32)> = w.week.days.iter().map(|d| (d.steps, d.points)).collect();
        assert_eq!(
            days,
            [
                (8_500, 100),
                (6_000, 0),
                (5_200, 100),
                (0, 0),
                (0, 0),
                (0, 0),
                (0, 0)
            ]
        );
        assert_eq!(w.week.total_points, 200);
        // 2025-11-30 falls under no policy in this set, so it earns nothing.
        assert_eq!(w.year_points, 200);
    }
}
