//! The day to replay, made from a seed: who already is a member, who signs up at which kiosk
//! and when, which member visits which counter and when, and what they redeem.
//!
//! Times are seconds of simulated time from 09:55 (Asia/Seoul): the 10:00 sign-up surge runs
//! from 300 s to 900 s, the central outage from 2,100 s to 3,900 s (10:30 to 11:00), and the
//! day ends at 7,200 s (11:55).

use chrono::{DateTime, Days, FixedOffset, NaiveDate, TimeZone as _};

/// A person as a kiosk clerk types them in.
#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub birth_date: NaiveDate,
    /// Digits only.
    pub phone: String,
}

/// A step report of the week before, for an existing member.
#[derive(Debug, Clone)]
pub struct SeedReport {
    /// Index into [`Day::existing`].
    pub member: usize,
    pub day: NaiveDate,
    pub steps: u32,
    pub reported_at: DateTime<FixedOffset>,
}

/// A sign-up at a kiosk.
#[derive(Debug, Clone, Copy)]
pub struct SignUp {
    pub at: u32,
    /// Index into [`Day::new_people`].
    pub person: usize,
}

/// A member at a counter: the watch is synced, and maybe points are spent.
#[derive(Debug, Clone, Copy)]
pub struct Visit {
    pub at: u32,
    /// Index into [`Day::existing`].
    pub member: usize,
    /// Points to redeem, if any.
    pub redeem: Option<u64>,
    /// Whether the clerk voids that redemption a minute later.
    pub void: bool,
}

/// The counts, before scaling.
pub const EXISTING: f64 = 330_000.0;
pub const NEW: f64 = 50_000.0;
pub const SURGE_SIGN_UPS: f64 = 20_000.0;
pub const KIOSKS: f64 = 500.0;
pub const COUNTERS: f64 = 2_000.0;
/// Members served by each counter in the two hours.
pub const VISITS_PER_COUNTER: usize = 120;

/// Days of step reports each existing member has before the day.
pub const HISTORY_DAYS: u64 = 7;

/// 09:55, where the simulated morning starts, in seconds of the day.
pub const START: u32 = (9 * 60 + 55) * 60;

/// The simulated window, in seconds from 09:55.
pub const WINDOW: u32 = 7_200;
pub const SURGE: (u32, u32) = (300, 900);
pub const OUTAGE: (u32, u32) = (2_100, 3_900);

/// The whole day.
pub struct Day {
    pub seed: u64,
    /// The calendar day (Asia/Seoul) of the replay.
    pub today: NaiveDate,
    pub existing: Vec<Person>,
    pub history: Vec<SeedReport>,
    pub new_people: Vec<Person>,
    /// Per kiosk, in time order.
    pub kiosk_plans: Vec<Vec<SignUp>>,
    /// Per kiosk: its site's quota lease for the day (`None`: no lease, as naive terminals have).
    pub lease_places: Vec<Option<u32>>,
    pub counters: usize,
    /// Per counter, in time order.
    pub counter_plans: Vec<Vec<Visit>>,
    /// Each existing member's walking pace, steps an hour.
    pub pace: Vec<u32>,
}

const SURNAMES: [&str; 12] = [
    "김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오",
];
const GIVEN: [&str; 12] = [
    "영희", "철수", "순자", "영수", "정숙", "민수", "옥순", "상철", "말순", "동욱", "복남", "춘자",
];

fn scaled(count: f64, scale: f64) -> usize {
    ((count * scale).round() as usize).max(1)
}

impl Day {
    /// The day at `scale` (1.0: the launch-day counts), from `seed`, on `today`. `leases`:
    /// whether kiosks get quota leases (smart terminals) or not (naive).
    pub fn new(seed: u64, scale: f64, today: NaiveDate, leases: bool) -> Day {
        let mut rng = fastrand::Rng::with_seed(seed);
        let person = |rng: &mut fastrand::Rng, phone: u64, years: (i32, i32)| Person {
            name: format!(
                "{}{}",
                SURNAMES[rng.usize(..SURNAMES.len())],
                GIVEN[rng.usize(..GIVEN.len())]
            ),
            birth_date: NaiveDate::from_ymd_opt(
                rng.i32(years.0..=years.1),
                rng.u32(1..=12),
                rng.u32(1..=28),
            )
            .unwrap_or_default(),
            phone: format!("010{phone:08}"),
        };
        let existing: Vec<Person> = (0..scaled(EXISTING, scale))
            .map(|i| person(&mut rng, 10_000_000 + i as u64, (1935, 2000)))
            .collect();
        // A week of history, so that members have points to spend.
        let mut history = Vec::with_capacity(existing.len() * HISTORY_DAYS as usize);
        for back in 1..=HISTORY_DAYS {
            let day = today.checked_sub_days(Days::new(back)).unwrap_or(today);
            let evening = points_core::KST
                .from_local_datetime(&day.and_hms_opt(21, 0, 0).unwrap_or_default())
                .single()
                .unwrap_or_else(|| unreachable!("a fixed offset has no gaps"));
            for member in 0..existing.len() {
                history.push(SeedReport {
                    member,
                    day,
                    steps: rng.u32(3_000..=15_000),
                    reported_at: evening,
                });
            }
        }
        let pace = (0..existing.len()).map(|_| rng.u32(500..=1_500)).collect();

        let kiosks = scaled(KIOSKS, scale);
        let new_count = scaled(NEW, scale);
        let surge = scaled(SURGE_SIGN_UPS, scale).min(new_count);
        let new_people: Vec<Person> = (0..new_count)
            .map(|n| person(&mut rng, 60_000_000 + n as u64, (1940, 1975)))
            .collect();
        let mut kiosk_plans = vec![Vec::new(); kiosks];
        for n in 0..new_count {
            let at = if n < surge {
                rng.u32(SURGE.0..SURGE.1)
            } else {
                rng.u32(SURGE.1..WINDOW - 300)
            };
            kiosk_plans[n % kiosks].push(SignUp { at, person: n });
        }
        for plan in &mut kiosk_plans {
            plan.sort_by_key(|s| s.at);
        }
        let lease_places = kiosk_plans
            .iter()
            .map(|plan| leases.then(|| u32::try_from(plan.len()).unwrap_or(u32::MAX)))
            .collect();

        let counters = scaled(COUNTERS, scale);
        let counter_plans = (0..counters)
            .map(|_| {
                let mut plan: Vec<Visit> = (0..VISITS_PER_COUNTER)
                    .map(|_| {
                        let redeem = rng.bool() && rng.u8(..5) < 4;
                        Visit {
                            at: rng.u32(0..WINDOW),
                            member: rng.usize(..existing.len()),
                            redeem: redeem.then(|| u64::from(rng.u32(1..=8)) * 100),
                            void: redeem && rng.u8(..100) < 3,
                        }
                    })
                    .collect();
                plan.sort_by_key(|v| v.at);
                plan
            })
            .collect();
        Day {
            seed,
            today,
            existing,
            history,
            new_people,
            kiosk_plans,
            lease_places,
            counters,
            counter_plans,
            pace,
        }
    }

    /// The site name of kiosk `k`.
    pub fn kiosk_site(k: usize) -> String {
        format!("주민센터-{k:03}")
    }

    /// Member `m`'s cumulative steps at simulated second `at` (09:55 + `at`).
    pub fn steps_at(&self, member: usize, at: u32) -> u32 {
        let hours = f64::from(START + at) / 3600.0;
        (f64::from(self.pace[member]) * hours) as u32
    }
}

/// A time in Asia/Seoul.
pub fn seoul_time(at: DateTime<chrono::Utc>) -> DateTime<FixedOffset> {
    at.with_timezone(&points_core::KST)
}
