//! The counter's rules: what a pharmacy or convenience-store terminal shows and decides for a
//! member standing at the counter.
//!
//! Pure: no IO, no clock; `today` (the date in Asia/Seoul) is an argument. Today it builds the
//! member's week (steps per day, Monday to Sunday) from the step days the terminal knows; the
//! redemption rules (holds, offline limits) come next. Points are not computed here: that is
//! `points-core`'s job, and this crate only places its figures on the week.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use serde::Serialize;

/// The Monday of the week (Monday to Sunday) holding `day`.
pub fn week_start(day: NaiveDate) -> NaiveDate {
    let back = u64::from(day.weekday().num_days_from_monday());
    day - Days::new(back)
}

/// One day of the member's week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
}
