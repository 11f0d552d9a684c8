//! Rates a year of daily step reports for many members on one core and prints how many
//! member-days it rates per second. Run with `cargo bench -p points-core`; set
//! `PALPAL_BENCH_MEMBERS` to change the number of members (10,000 by default).
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeDelta};
use points_core::{Ledger, PointsPolicy, PolicySet, StepReport};

const POLICY: &str = include_str!("../../policies/example-event.toml");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let members: u64 = match std::env::var("PALPAL_BENCH_MEMBERS") {
        Ok(text) => text.parse()?,
        Err(_) => 10_000,
    };
    let policies = PolicySet::from(PointsPolicy::from_toml_str(POLICY)?);
    let kst = points_core::KST;
    let first = NaiveDate::from_ymd_opt(2026, 1, 1).ok_or("bad date")?;
    let birth_first = NaiveDate::from_ymd_opt(1940, 1, 1).ok_or("bad date")?;

    // A small xorshift generator: deterministic step counts without a dependency.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };

    let mut reports = Vec::with_capacity(366);
    let mut rating = Duration::ZERO;
    let mut member_days: u64 = 0;
    let mut reports_rated: u64 = 0;
    let mut points: u64 = 0;
    for _ in 0..members {
        let birth_date = birth_first + TimeDelta::days((next() % 18_000) as i64);
        reports.clear();
        for offset in 0..365 {
            let day = first + TimeDelta::days(offset);
            let reported_at = (day + TimeDelta::days((next() % 3) as i64))
                .and_hms_opt(21, 0, 0)
                .ok_or("bad time")?
                .and_local_timezone(kst)
                .single()
                .ok_or("bad time")?;
            let steps = (next() % 14_000) as u32;
            reports.push(StepReport {
                reported_at,
                day,
                steps,
            });
        }
        let started = Instant::now();
        let mut ledger = Ledger::new(birth_date);
        for report in &reports {
            ledger.apply(&policies, report);
        }
        rating += started.elapsed();
        member_days += 365;
        reports_rated += reports.len() as u64;
        points += ledger.total();
    }

    let seconds = rating.as_secs_f64();
    println!("members          {members}");
    println!("member-days      {member_days}");
    println!("reports rated    {reports_rated}");
    println!("points credited  {points}");
    println!("rating time      {:.3} s", seconds);
    println!(
        "member-days/s    {:.0}",
        member_days as f64 / seconds.max(f64::MIN_POSITIVE)
    );
    Ok(())
}
