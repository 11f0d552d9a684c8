//! Data-driven tests of the rules (one `check` per scenario) and property tests of the
//! ledger's invariants.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, TimeDelta};
use proptest::prelude::*;

use crate::{
    age_on, kst_day, CapPeriod, EntryKind, Error, Ledger, LedgerEntry, PointsPolicy, PolicySet,
    StepReport,
};

const SEOUL_2025_12: &str = include_str!("../../policies/seoul-2025-12.toml");
const SEOUL_2025_03: &str = include_str!("../../policies/seoul-2025-03.toml");
const SEOUL_2023: &str = include_str!("../../policies/seoul-2023.toml");
const EXAMPLE_EVENT: &str = include_str!("../../policies/example-event.toml");

fn policy_set(policies: &[&str]) -> PolicySet {
    let policies = policies
        .iter()
        .map(|text| PointsPolicy::from_toml_str(text).unwrap())
        .collect();
    PolicySet::new(policies).unwrap()
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// A policy like the 2025-12 one with its own cap, for scenarios where the cap binds.
fn capped_policy(cap_period: &str, cap: u32, daily: u32, weekly: &str) -> String {
    format!(
        r#"
name = "test-cap-{cap}"
effective_from = 2023-01-01
late_window_days = 7
plausible_max_steps = 70000

[daily]
goal_steps = 8000
points = {daily}

{weekly}

[cap]
period = "{cap_period}"
points = {cap}
"#
    )
}

const WEEKLY_5_WITH_WEEKEND: &str = "[weekly_bonus]
min_goal_days = 5
require_weekend_day = true
points = 500";

const WEEKLY_3: &str = "[weekly_bonus]
min_goal_days = 3
require_weekend_day = false
points = 500";

/// Runs a script through one member's ledger and compares it with what the script expects.
///
/// Each line is `DAY STEPS [@REPORTED_AT] => OUTCOME`; without `@`, the report is made at
/// 21:00 KST on its day. OUTCOME is `-` (nothing earned, nothing ignored), `ignored REASON`,
/// or the entries as `KIND POINTS` (a weekly bonus also names its completing day). The last
/// line is `total N (PERIOD POINTS, ...)`.
#[track_caller]
fn check(policies: &[&str], birth_date: &str, script: &str) {
    let policies = policy_set(policies);
    let mut ledger = Ledger::new(date(birth_date));
    let mut expect = String::new();
    let mut actual = String::new();
    for line in script
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        let Some((input, outcome)) = line.split_once("=>") else {
            writeln!(expect, "{line}").unwrap();
            continue;
        };
        let input = input.trim();
        writeln!(expect, "{input} => {}", outcome.trim()).unwrap();
        let report = parse_report(input);
        let outcome = ledger.apply(&policies, &report);
        let mut rendered: Vec<String> = outcome
            .entries()
            .map(|entry| match entry.kind {
                EntryKind::WeeklyBonus => format!("weekly_bonus {} {}", entry.day, entry.points),
                kind => {
                    assert_eq!(entry.day, report.day);
                    format!("{} {}", kind.as_str(), entry.points)
                }
            })
            .collect();
        if let Some(reason) = outcome.ignored() {
            assert!(rendered.is_empty(), "an ignored report earned points");
            rendered.push(format!("ignored {}", reason.as_str()));
        }
        if rendered.is_empty() {
            rendered.push("-".to_owned());
        }
        writeln!(actual, "{input} => {}", rendered.join(", ")).unwrap();
    }
    let periods: Vec<String> = ledger
        .cap_totals()
        .map(|(period, points)| format!("{period} {points}"))
        .collect();
    writeln!(actual, "total {} ({})", ledger.total(), periods.join(", ")).unwrap();
    assert_eq!(expect, actual, "\nexpected:\n{expect}\nactual:\n{actual}");
}

fn parse_report(input: &str) -> StepReport {
    let mut parts = input.split_whitespace();
    let day = date(parts.next().unwrap());
    let steps = parts.next().unwrap().parse().unwrap();
    let reported_at = match parts.next() {
        Some(at) => DateTime::parse_from_rfc3339(at.strip_prefix('@').unwrap()).unwrap(),
        None => DateTime::parse_from_rfc3339(&format!("{day}T21:00:00+09:00")).unwrap(),
    };
    StepReport {
        reported_at,
        day,
        steps,
    }
}

#[test]
fn the_current_policy_sets_redemption_limits_and_bad_ones_are_refused() {
    let current = PointsPolicy::from_toml_str(SEOUL_2025_12).unwrap();
    let rules = current.redemption().copied().unwrap();
    assert_eq!((rules.min_amount, rules.max_amount), (100, 100_000));
    assert_eq!(rules.offline_per_transaction_card, 10_000);
    assert_eq!(rules.offline_max_hours_since_sync, 24);
    // The older policies set none.
    assert!(PointsPolicy::from_toml_str(SEOUL_2025_03)
        .unwrap()
        .redemption()
        .is_none());
    for (from, to) in [
        ("min_amount = 100\n", "min_amount = 0\n"),
        ("min_amount = 100\n", "min_amount = 200000\n"),
        (
            "offline_max_hours_since_sync = 24",
            "offline_max_hours_since_sync = 0",
        ),
        (
            "offline_max_stored_holds = 50",
            "offline_max_stored_hold = 50",
        ),
    ] {
        let bad = SEOUL_2025_12.replace(from, to);
        assert_ne!(bad, SEOUL_2025_12, "{from}");
        assert!(PointsPolicy::from_toml_str(&bad).is_err(), "{to}");
    }
}

#[test]
fn daily_goal_met_once() {
    check(
        &[SEOUL_2025_12],
        "1980-01-01",
        "
        2025-12-01 7999 => -
        2025-12-01 8000 => daily 100
        2025-12-02 12000 => daily 100
        total 200 (2025 200)
        ",
    );
}

#[test]
fn late_window_day_7_accepted_day_8_late() {
    check(
        &[SEOUL_2025_12],
        "1980-01-01",
        "
        2025-12-01 9000 @2025-12-09T00:00:00+09:00 => ignored late
        2025-12-01 9000 @2025-12-08T23:59:59+09:00 => daily 100
        2025-12-02 9000 @2025-12-09T23:59:59+09:00 => daily 100
        2025-12-03 9000 @2025-12-11T08:00:00+09:00 => ignored late
        2025-12-04 9000 @2025-12-03T23:00:00+09:00 => daily 100
        total 300 (2025 300)
        ",
    );
}

#[test]
fn late_window_counts_member_days_at_midnight_kst() {
    // 2025-12-01T15:00:00Z is already 2025-12-02 in Seoul: day 8 for 2025-11-24.
    check(
        &[SEOUL_2025_03, SEOUL_2025_12],
        "1980-01-01",
        "
        2025-11-24 9000 @2025-12-01T15:00:00Z => ignored late
        2025-11-24 9000 @2025-12-01T23:59:59+09:00 => daily 200
        2025-11-25 9000 @2025-12-02T14:59:59Z => daily 200
        2025-11-26 9000 @2025-12-03T15:00:00Z => ignored late
        total 400 (2025 400)
        ",
    );
}

#[test]
fn kst_day_turns_at_midnight_in_seoul() {
    for (at, day) in [
        ("2025-12-01T23:59:59+09:00", "2025-12-01"),
        ("2025-12-01T14:59:59Z", "2025-12-01"),
        ("2025-12-01T15:00:00Z", "2025-12-02"),
        ("2025-12-01T10:00:00-05:00", "2025-12-02"),
        ("2025-12-31T15:00:00+00:00", "2026-01-01"),
    ] {
        let at = DateTime::parse_from_rfc3339(at).unwrap();
        assert_eq!(kst_day(at), date(day), "{at}");
    }
}

#[test]
fn held_reports_do_not_count() {
    check(
        &[SEOUL_2025_12],
        "1980-01-01",
        "
        2025-12-01 70001 => ignored held
        2025-12-01 9000 => daily 100
        2025-12-02 70000 => daily 100
        2025-12-02 80000 => ignored held
        2025-12-03 90000 => ignored held
        2025-12-03 300 => -
        total 200 (2025 200)
        ",
    );
}

#[test]
fn lower_and_duplicate_reports() {
    check(
        &[SEOUL_2025_12],
        "1980-01-01",
        "
        2025-12-01 5000 => -
        2025-12-01 4000 => ignored lower
        2025-12-01 5000 => ignored duplicate
        2025-12-01 6000 => -
        2025-12-01 9000 => daily 100
        2025-12-01 9000 => ignored duplicate
        2025-12-01 12000 => ignored duplicate
        2025-12-01 3000 => ignored lower
        2025-12-02 0 => -
        2025-12-02 0 => ignored duplicate
        total 100 (2025 100)
        ",
    );
}

#[test]
fn weekly_bonus_7_days_1200() {
    check(
        &[SEOUL_2025_12],
        "1980-01-01",
        "
        2025-12-01 8000 => daily 100
        2025-12-02 8000 => daily 100
        2025-12-03 8000 => daily 100
        2025-12-04 8000 => daily 100
        2025-12-05 8000 => daily 100
        2025-12-06 8000 => daily 100, weekly_bonus 2025-12-06 500
        2025-12-07 8000 => daily 100
        total 1200 (2025 1200)
        ",
    );
}

#[test]
fn weekly_bonus_6_days_1100() {
    check(
        &[SEOUL_2025_12],
        "1980-01-01",
        "
        2025-12-01 8000 => daily 100
        2025-12-02 8000 => daily 100
        2025-12-03 2000 => -
        2025-12-04 8000 => daily 100
        2025-12-05 8000 => daily 100
        2025-12-06 8000 => daily 100, weekly_bonus 2025-12-06 500
        2025-12-07 8000 => daily 100
        total 1100 (2025 1100)
        ",
    );
}

#[test]
fn weekly_bonus_5_days_with_sunday_1000() {
    check(
        &[SEOUL_2025_12],
        "1980-01-01",
        "
        2025-12-01 8000 => daily 100
        2025-12-02 8000 => daily 100
        2025-12-03 8000 => daily 100
        2025-12-04 8000 => daily 100
        2025-12-07 8000 => daily 100, weekly_bonus 2025-12-07 500
        total 1000 (2025 1000)
        ",
    );
}

#[test]
fn weekly_bonus_needs_a_weekend_day() {
    check(
        &[SEOUL_2025_12],
        "1980-01-01",
        "
        2025-12-01 8000 => daily 100
        2025-12-02 8000 => daily 100
        2025-12-03 8000 => daily 100
        2025-12-04 8000 => daily 100
        2025-12-05 8000 => daily 100
        2025-12-06 7999 => -
        2025-12-07 100 => -
        total 500 (2025 500)
        ",
    );
}

#[test]
fn weekly_bonus_reported_backwards_names_the_completing_day() {
    check(
        &[SEOUL_2025_12],
        "1980-01-01",
        "
        2025-12-07 8000 @2025-12-08T09:00:00+09:00 => daily 100
        2025-12-06 8000 @2025-12-08T09:00:00+09:00 => daily 100
        2025-12-05 8000 @2025-12-08T09:00:00+09:00 => daily 100
        2025-12-04 8000 @2025-12-08T09:00:00+09:00 => daily 100
        2025-12-03 8000 @2025-12-08T09:00:00+09:00 => daily 100, weekly_bonus 2025-12-07 500
        2025-12-02 8000 @2025-12-08T09:00:00+09:00 => daily 100
        2025-12-01 8000 @2025-12-08T09:00:00+09:00 => daily 100
        total 1200 (2025 1200)
        ",
    );
}

#[test]
fn seventieth_birthday_inside_a_week_changes_the_goal() {
    // Born 1955-12-04: 69 until Wednesday 2025-12-03, 70 from Thursday 2025-12-04.
    check(
        &[SEOUL_2025_12],
        "1955-12-04",
        "
        2025-12-01 8000 => daily 100
        2025-12-02 7999 => -
        2025-12-03 5000 => -
        2025-12-04 5000 => daily 100
        2025-12-05 5000 => daily 100
        2025-12-06 4999 => -
        2025-12-07 5000 => daily 100
        2025-12-02 8000 @2025-12-08T09:00:00+09:00 => daily 100, weekly_bonus 2025-12-07 500
        total 1000 (2025 1000)
        ",
    );
}

#[test]
fn february_29_birthday_turns_over_on_march_1() {
    check(
        &[SEOUL_2025_12],
        "1956-02-29",
        "
        2026-02-28 6000 => -
        2026-03-01 6000 => daily 100
        total 100 (2026 100)
        ",
    );
}

#[test]
fn age_in_full_years() {
    for (birth, day, age) in [
        ("1955-12-04", "2025-12-03", 69),
        ("1955-12-04", "2025-12-04", 70),
        ("1956-02-29", "2026-02-28", 69),
        ("1956-02-29", "2026-03-01", 70),
        ("1956-02-29", "2028-02-28", 71),
        ("1956-02-29", "2028-02-29", 72),
        ("1980-01-01", "1980-01-01", 0),
    ] {
        assert_eq!(age_on(date(birth), date(day)), age, "{birth} on {day}");
    }
}

#[test]
fn weekly_bonus_across_a_year_boundary_belongs_to_the_completing_day() {
    check(
        &[SEOUL_2025_12],
        "1980-01-01",
        "
        2025-12-29 8000 => daily 100
        2025-12-30 8000 => daily 100
        2025-12-31 8000 => daily 100
        2026-01-01 8000 => daily 100
        2026-01-02 8000 => daily 100
        2026-01-03 8000 => daily 100, weekly_bonus 2026-01-03 500
        total 1100 (2025 300, 2026 800)
        ",
    );
}

#[test]
fn cap_crossed_by_a_weekly_bonus() {
    check(
        &[&capped_policy("year", 700, 100, WEEKLY_5_WITH_WEEKEND)],
        "1980-01-01",
        "
        2025-12-29 8000 => daily 100
        2025-12-30 8000 => daily 100
        2025-12-31 8000 => daily 100
        2026-01-01 8000 => daily 100
        2026-01-02 8000 => daily 100
        2026-01-03 8000 => daily 100, weekly_bonus 2026-01-03 400
        2026-01-04 8000 => ignored capped
        2026-01-05 9000 => ignored capped
        2026-01-05 9500 => ignored duplicate
        total 1000 (2025 300, 2026 700)
        ",
    );
}

#[test]
fn cap_crossed_by_a_daily_entry() {
    check(
        &[&capped_policy("year", 250, 100, "")],
        "1980-01-01",
        "
        2025-12-01 8000 => daily 100
        2025-12-02 8000 => daily 100
        2025-12-03 8000 => daily 50
        2025-12-04 8000 => ignored capped
        2026-01-01 8000 => daily 100
        total 350 (2025 250, 2026 100)
        ",
    );
}

#[test]
fn policy_2025_03_pays_200_without_weekly_bonus() {
    check(
        &[SEOUL_2025_03, SEOUL_2025_12],
        "1980-01-01",
        "
        2025-02-28 9000 => ignored no_policy
        2025-11-24 8000 => daily 200
        2025-11-25 8000 => daily 200
        2025-11-26 8000 => daily 200
        2025-11-27 8000 => daily 200
        2025-11-28 8000 => daily 200
        2025-11-29 8000 => daily 200
        2025-11-30 8000 => daily 200
        2025-12-01 8000 => daily 100
        total 1500 (2025 1500)
        ",
    );
}

#[test]
fn policy_2025_03_senior_goal() {
    check(
        &[SEOUL_2025_03],
        "1950-01-01",
        "
        2025-06-02 4999 => -
        2025-06-02 5000 => daily 200
        total 200 (2025 200)
        ",
    );
}

#[test]
fn policy_2023_three_goal_days_half_year() {
    // The week of 2023-06-26 straddles the half years; the bonus goes to the second half,
    // where the day that completed it is. 2023 has no separate goal for seniors.
    check(
        &[SEOUL_2023],
        "1940-01-01",
        "
        2023-06-19 8000 => daily 200
        2023-06-20 8000 => daily 200
        2023-06-21 8000 => daily 200, weekly_bonus 2023-06-21 500
        2023-06-22 8000 => daily 200
        2023-06-26 8000 => daily 200
        2023-06-27 8000 => daily 200
        2023-06-29 5000 => -
        2023-07-01 8000 => daily 200, weekly_bonus 2023-07-01 500
        2023-07-02 8000 => daily 200
        total 2600 (2023-H1 1700, 2023-H2 900)
        ",
    );
}

#[test]
fn half_year_cap() {
    check(
        &[&capped_policy("half_year", 300, 200, "")],
        "1980-01-01",
        "
        2023-06-29 8000 => daily 200
        2023-06-30 8000 => daily 100
        2023-06-25 8000 => ignored capped
        2023-07-01 8000 => daily 200
        2023-07-02 8000 => daily 100
        total 600 (2023-H1 300, 2023-H2 300)
        ",
    );
}

#[test]
fn event_triples_daily_points_not_the_weekly_bonus() {
    check(
        &[EXAMPLE_EVENT],
        "1980-01-01",
        "
        2025-12-14 8000 => daily 100
        2025-12-15 8000 => daily 100, event 200
        2025-12-16 8000 => daily 100, event 200
        2025-12-17 8000 => daily 100, event 200
        2025-12-18 8000 => daily 100, event 200
        2025-12-19 8000 => daily 100, event 200
        2025-12-20 8000 => daily 100, event 200, weekly_bonus 2025-12-20 500
        2025-12-21 8000 => daily 100, event 200
        2025-12-28 9000 => daily 100, event 200
        2025-12-29 9000 => daily 100
        total 3100 (2025 3100)
        ",
    );
}

#[test]
fn special_day_bonus_when_the_goal_is_met() {
    check(
        &[EXAMPLE_EVENT],
        "1980-01-01",
        "
        2026-09-09 7999 => -
        2026-09-09 8000 => daily 100, special_day 1000
        2026-09-09 9000 => ignored duplicate
        2026-09-10 8000 => daily 100
        total 1200 (2026 1200)
        ",
    );
}

#[test]
fn event_points_are_cut_by_the_cap_after_the_daily_points() {
    let policy = EXAMPLE_EVENT.replace("points = 75000", "points = 500");
    check(
        &[&policy],
        "1980-01-01",
        "
        2025-12-15 8000 => daily 100, event 200
        2025-12-16 8000 => daily 100, event 100
        2025-12-17 8000 => ignored capped
        total 500 (2025 500)
        ",
    );
}

/// The one order dependence (docs/points-policy.md): a week straddling two cap periods whose
/// bonus can be completed in either, with the cap full. Same reports, two orders.
#[test]
fn order_dependence_only_for_a_straddling_week_with_the_cap_full() {
    let policy = capped_policy("half_year", 400, 200, WEEKLY_3);
    check(
        &[&policy],
        "1980-01-01",
        "
        2023-06-26 8000 @2023-07-02T09:00:00+09:00 => daily 200
        2023-06-27 8000 @2023-07-02T09:00:00+09:00 => daily 200
        2023-06-29 8000 @2023-07-02T09:00:00+09:00 => ignored capped
        2023-07-01 8000 @2023-07-02T09:00:00+09:00 => daily 200
        total 600 (2023-H1 400, 2023-H2 200)
        ",
    );
    check(
        &[&policy],
        "1980-01-01",
        "
        2023-06-26 8000 @2023-07-02T09:00:00+09:00 => daily 200
        2023-06-27 8000 @2023-07-02T09:00:00+09:00 => daily 200
        2023-07-01 8000 @2023-07-02T09:00:00+09:00 => daily 200, weekly_bonus 2023-07-01 200
        2023-06-29 8000 @2023-07-02T09:00:00+09:00 => ignored capped
        total 800 (2023-H1 400, 2023-H2 400)
        ",
    );
}

#[test]
fn policy_in_force_by_effective_date() {
    let policies = policy_set(&[SEOUL_2025_12, SEOUL_2023, SEOUL_2025_03]);
    for (day, name) in [
        ("2022-12-31", None),
        ("2023-01-01", Some("seoul-2023")),
        ("2023-12-31", Some("seoul-2023")),
        ("2024-06-01", None),
        ("2025-03-01", Some("seoul-2025-03")),
        ("2025-11-30", Some("seoul-2025-03")),
        ("2025-12-01", Some("seoul-2025-12")),
        ("2031-01-01", Some("seoul-2025-12")),
    ] {
        let found = policies.in_force(date(day)).map(PointsPolicy::name);
        assert_eq!(found, name, "{day}");
    }
}

/// Parses `text` as a policy (or, with `also`, a set of two) and compares the first line of
/// the error.
#[track_caller]
fn check_policy_error(text: &str, also: Option<&str>, expect: &str) {
    let result = PointsPolicy::from_toml_str(text).and_then(|policy| {
        let mut policies = vec![policy];
        if let Some(other) = also {
            policies.push(PointsPolicy::from_toml_str(other)?);
        }
        PolicySet::new(policies)
    });
    let error = result
        .expect_err("the policy should be refused")
        .to_string();
    assert_eq!(
        error.lines().next(),
        Some(expect),
        "\nwhole error:\n{error}"
    );
}

#[test]
fn policy_errors() {
    let with = |from: &str, to: &str| {
        assert!(SEOUL_2025_12.contains(from), "{from}");
        SEOUL_2025_12.replace(from, to)
    };
    check_policy_error(
        &with("effective_from = 2025-12-01", "effective_from = 2025-12-01T00:00:00"),
        None,
        "policy seoul-2025-12: effective_from must be a date like 2025-12-01, not 2025-12-01T00:00:00",
    );
    check_policy_error(
        &with(
            "effective_from = 2025-12-01",
            "effective_from = 2025-12-01\neffective_until = 2025-11-30",
        ),
        None,
        "policy seoul-2025-12: effective_until is before effective_from",
    );
    check_policy_error(
        &with("senior_goal_steps = 5000\n", ""),
        None,
        "policy seoul-2025-12: daily.senior_age and daily.senior_goal_steps go together",
    );
    check_policy_error(
        &with("min_goal_days = 5", "min_goal_days = 8"),
        None,
        "policy seoul-2025-12: weekly_bonus.min_goal_days must be 1 to 7, not 8",
    );
    check_policy_error(
        &with("plausible_max_steps = 70000", "plausible_max_steps = 0"),
        None,
        "policy seoul-2025-12: plausible_max_steps must be above 0",
    );
    check_policy_error(
        &EXAMPLE_EVENT.replace("from = 2025-12-15", "from = 2025-11-15"),
        None,
        "policy example-event: multiplier event \"launch: triple step points\" must run forward inside the policy's dates",
    );
    check_policy_error(
        &EXAMPLE_EVENT.replace("multiplier = 3", "multiplier = 0"),
        None,
        "policy example-event: multiplier event \"launch: triple step points\" must have a multiplier of at least 1",
    );
    check_policy_error(
        &format!(
            "{EXAMPLE_EVENT}\n[[special_days]]\nname = \"again\"\nday = 2026-09-09\npoints = 1\n"
        ),
        None,
        "policy example-event: 2026-09-09 is listed twice in special_days",
    );
    check_policy_error(
        &EXAMPLE_EVENT.replace("day = 2026-09-09", "day = 2025-11-09"),
        None,
        "policy example-event: special day \"9988 day\" (2025-11-09) is outside the policy's dates",
    );
    check_policy_error(
        &with("goal_steps = 8000", "goal_step = 8000"),
        None,
        "policy is not valid: TOML parse error at line 10, column 1",
    );
    check_policy_error(
        &with("period = \"year\"", "period = \"month\""),
        None,
        "policy is not valid: TOML parse error at line 21, column 10",
    );
    check_policy_error(
        SEOUL_2025_12,
        Some(EXAMPLE_EVENT),
        "policies seoul-2025-12 and example-event are both in force on 2025-12-01",
    );
    check_policy_error(
        SEOUL_2025_12,
        Some(&SEOUL_2025_03.replace("2025-11-30", "2025-12-01")),
        "policies seoul-2025-03 and seoul-2025-12 are both in force on 2025-12-01",
    );
    assert!(matches!(PolicySet::new(Vec::new()), Err(Error::NoPolicy)));
}

// Property tests.

/// Rates `reports` in order on a fresh ledger; returns the total and the entries.
fn rate(
    policies: &PolicySet,
    birth_date: NaiveDate,
    reports: &[StepReport],
) -> (Ledger, Vec<LedgerEntry>) {
    let mut ledger = Ledger::new(birth_date);
    let mut entries = Vec::new();
    for report in reports {
        let outcome = ledger.apply(policies, report);
        entries.extend(outcome.entries().copied());
    }
    (ledger, entries)
}

/// The invariants that hold in any order: entries add up to the total, no cap period goes
/// over its cap, a day gets its daily entry at most once, and replaying everything again
/// earns nothing.
fn assert_invariants(
    policies: &PolicySet,
    reports: &[StepReport],
    ledger: &mut Ledger,
    entries: &[LedgerEntry],
) -> Result<(), TestCaseError> {
    let sum: u64 = entries.iter().map(|entry| u64::from(entry.points)).sum();
    prop_assert_eq!(sum, ledger.total());
    let mut per_period: BTreeMap<CapPeriod, (u64, u32)> = BTreeMap::new();
    let mut daily_days = BTreeMap::new();
    for entry in entries {
        prop_assert!(entry.points > 0);
        let policy = policies.in_force(entry.day).unwrap();
        let period = per_period
            .entry(policy.cap_period(entry.day))
            .or_insert((0, policy.cap_points()));
        period.0 += u64::from(entry.points);
        if entry.kind == EntryKind::Daily {
            *daily_days.entry(entry.day).or_insert(0) += 1;
        }
    }
    for (period, (points, cap)) in per_period {
        prop_assert!(points <= u64::from(cap), "{period}: {points} > {cap}");
        prop_assert_eq!(u64::from(ledger.cap_total(period)), points);
    }
    prop_assert!(daily_days.values().all(|count| *count == 1));
    for report in reports {
        let again = ledger.apply(policies, report);
        prop_assert_eq!(again.points(), 0);
    }
    Ok(())
}

fn steps() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0),
        1_000..9_000u32,
        Just(5_000),
        Just(8_000),
        8_000..12_000u32,
        69_990..70_010u32,
    ]
}

/// Reports for days from `first` (up to `days` of them), made up to 9 days after their day so
/// that some are late.
fn reports(first: NaiveDate, days: i64, max: usize) -> impl Strategy<Value = Vec<StepReport>> {
    prop::collection::vec((0..days, steps(), 0..10i64, 0..24u32), 0..max).prop_map(move |rows| {
        rows.into_iter()
            .map(|(day, steps, late, hour)| {
                let day = first + TimeDelta::days(day);
                let reported_at = (day + TimeDelta::days(late))
                    .and_hms_opt(hour, 30, 0)
                    .unwrap()
                    .and_local_timezone(crate::KST)
                    .unwrap();
                StepReport {
                    reported_at,
                    day,
                    steps,
                }
            })
            .collect()
    })
}

/// The same reports, some of them repeated, in any order.
fn reordered(reports: Vec<StepReport>) -> impl Strategy<Value = Vec<StepReport>> {
    let count = reports.len();
    prop::collection::vec(any::<prop::sample::Index>(), 0..=count).prop_flat_map(move |repeats| {
        let mut all = reports.clone();
        if !reports.is_empty() {
            all.extend(
                repeats
                    .iter()
                    .map(|index| reports[index.index(reports.len())]),
            );
        }
        Just(all).prop_shuffle()
    })
}

fn reports_and_reordered(
    first: NaiveDate,
    days: i64,
    max: usize,
) -> impl Strategy<Value = (Vec<StepReport>, Vec<StepReport>)> {
    reports(first, days, max).prop_flat_map(|reports| (Just(reports.clone()), reordered(reports)))
}

fn birth_dates() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        Just(date("1990-06-15")),
        Just(date("1955-12-20")),
        Just(date("1956-01-03")),
        Just(date("1953-06-28")),
    ]
}

/// Same set of reports, any order and repetition: same total, equal to re-rating the reports
/// from scratch in day order; invariants hold.
fn assert_order_independent(
    policies: &PolicySet,
    birth_date: NaiveDate,
    reports: &[StepReport],
    reordered: &[StepReport],
) -> Result<(), TestCaseError> {
    let (_, first_entries) = rate(policies, birth_date, reports);
    let (mut ledger, entries) = rate(policies, birth_date, reordered);
    let mut by_day = reports.to_vec();
    by_day.sort_by_key(|report| (report.day, report.reported_at, report.steps));
    let (rerated, _) = rate(policies, birth_date, &by_day);
    let first_total: u64 = first_entries.iter().map(|e| u64::from(e.points)).sum();
    prop_assert_eq!(ledger.total(), first_total);
    prop_assert_eq!(ledger.total(), rerated.total());
    assert_invariants(policies, reordered, &mut ledger, &entries)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// One policy with a weekend rule, an event, a special day and a cap that binds, across
    /// a year boundary (2025-12-31 is a Wednesday, so no bonus can straddle it).
    #[test]
    fn single_policy_is_order_independent(
        birth_date in birth_dates(),
        (reports, reordered) in reports_and_reordered(date("2025-12-01"), 63, 120),
    ) {
        let policy = EXAMPLE_EVENT
            .replace("points = 75000", "points = 2500")
            .replace("until = 2025-12-28", "until = 2026-01-11")
            .replace("day = 2026-09-09", "day = 2026-01-07");
        let policies = policy_set(&[&policy]);
        assert_order_independent(&policies, birth_date, &reports, &reordered)?;
    }

    /// The 2023 shape (3 goal days, no weekend day needed) with a half-year cap that binds,
    /// inside one half year.
    #[test]
    fn half_year_policy_is_order_independent_inside_a_period(
        birth_date in birth_dates(),
        (reports, reordered) in reports_and_reordered(date("2023-01-02"), 150, 150),
    ) {
        let policies = policy_set(&[&capped_policy("half_year", 3000, 200, WEEKLY_3)]);
        assert_order_independent(&policies, birth_date, &reports, &reordered)?;
    }

    /// The published policies across the change on 2025-12-01 and the year boundary.
    #[test]
    fn published_policies_are_order_independent(
        birth_date in birth_dates(),
        (reports, reordered) in reports_and_reordered(date("2025-11-01"), 92, 150),
    ) {
        let policies = policy_set(&[SEOUL_2025_03, SEOUL_2025_12, SEOUL_2023]);
        assert_order_independent(&policies, birth_date, &reports, &reordered)?;
    }

    /// A ledger stored as its snapshot after every report (as the server keeps it) rates
    /// every report exactly as one kept in memory, under year and half-year caps, and ends
    /// with the same snapshot.
    #[test]
    fn a_ledger_kept_as_snapshots_rates_as_one_kept_in_memory(
        birth_date in birth_dates(),
        reports in reports(date("2025-11-01"), 92, 150),
    ) {
        let half_year = capped_policy("half_year", 1500, 200, WEEKLY_3);
        for policies in [
            policy_set(&[SEOUL_2025_03, SEOUL_2025_12, SEOUL_2023]),
            policy_set(&[&half_year]),
        ] {
            let mut kept = Ledger::new(birth_date);
            let mut stored = Ledger::new(birth_date).to_snapshot();
            for report in &reports {
                let mut ledger = Ledger::from_snapshot(birth_date, &stored).unwrap();
                prop_assert_eq!(ledger.apply(&policies, report), kept.apply(&policies, report));
                stored = ledger.to_snapshot();
                prop_assert_eq!(&stored, &kept.to_snapshot());
            }
            let restored = Ledger::from_snapshot(birth_date, &stored).unwrap();
            prop_assert_eq!(restored.total(), kept.total());
            prop_assert_eq!(
                restored.cap_totals().collect::<Vec<_>>(),
                kept.cap_totals().collect::<Vec<_>>()
            );
            for report in &reports {
                prop_assert_eq!(restored.day_steps(report.day), kept.day_steps(report.day));
            }
        }
    }

    /// Where order can matter (a week straddling two half years with the cap full), the caps,
    /// the once-per-day rule and idempotence still hold.
    #[test]
    fn caps_hold_in_any_order(
        birth_date in birth_dates(),
        reports in reports(date("2023-06-01"), 61, 120).prop_flat_map(reordered),
    ) {
        let policies = policy_set(&[&capped_policy("half_year", 1500, 200, WEEKLY_3)]);
        let (mut ledger, entries) = rate(&policies, birth_date, &reports);
        assert_invariants(&policies, &reports, &mut ledger, &entries)?;
    }
}

/// Bytes that are not a snapshot are refused, never read as some other ledger.
#[test]
fn a_damaged_snapshot_is_refused() {
    let policies = policy_set(&[SEOUL_2025_12]);
    let birth = date("1950-04-01");
    let mut ledger = Ledger::new(birth);
    for day in 1..=7 {
        let day = date("2025-12-01") + TimeDelta::days(day - 1);
        let reported_at = day
            .and_hms_opt(21, 0, 0)
            .unwrap()
            .and_local_timezone(crate::KST)
            .unwrap();
        ledger.apply(
            &policies,
            &StepReport {
                reported_at,
                day,
                steps: 9000,
            },
        );
    }
    let good = ledger.to_snapshot();
    assert_eq!(ledger.total(), 1200);
    assert_eq!(
        Ledger::from_snapshot(birth, &good).unwrap().to_snapshot(),
        good
    );
    let refused = |bytes: &[u8]| Ledger::from_snapshot(birth, bytes).unwrap_err().to_string();
    assert_eq!(refused(&[]), "not a ledger snapshot: too short");
    let mut version = good.clone();
    version[0] = 2;
    assert_eq!(refused(&version), "not a ledger snapshot: unknown version");
    assert_eq!(
        refused(&good[..good.len() - 1]),
        "not a ledger snapshot: too short"
    );
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(
        refused(&longer),
        "not a ledger snapshot: bytes after the end"
    );
    // The first cap period's kind (after version, total and count).
    let mut kind = good.clone();
    kind[11] = 7;
    assert_eq!(refused(&kind), "not a ledger snapshot: bad cap period");
    // The first day, after the one cap period (10 bytes) and the day count.
    let mut day = good.clone();
    day[25..29].copy_from_slice(&i32::MAX.to_le_bytes());
    assert_eq!(refused(&day), "not a ledger snapshot: bad day");
}

/// Checks that `text` is refused with an error at `line:column` (or at no position, `None`)
/// whose reason contains `reason`.
fn check_refusal(text: &str, position: Option<(usize, usize)>, reason: &str) {
    let error = PointsPolicy::from_toml_str(text).expect_err("the policy should be refused");
    let at = error.position(text).map(|p| (p.line, p.column));
    assert_eq!(at, position, "{error}");
    assert!(
        error.reason().contains(reason),
        "{:?} should contain {reason:?}",
        error.reason()
    );
}

#[test]
fn refusals_name_their_line_and_column() {
    let published = include_str!("../../policies/seoul-2025-12.toml");
    check_refusal("name = \"x\"\neffective_from = = 2025\n", Some((2, 18)), "");
    check_refusal(
        &published.replace("goal_steps = 8000", "goal_stepz = 8000"),
        Some((10, 1)),
        "goal_stepz",
    );
    check_refusal(
        &published.replace("points = 100\n", "points = \"백\"\n"),
        Some((11, 10)),
        "expected u32",
    );
    check_refusal(
        &published.replace("plausible_max_steps = 70000", "plausible_max_steps = 0"),
        None,
        "plausible_max_steps must be above 0",
    );
}
