//! A seeded demo data set: members and a few weeks of step reports, the same for the same
//! seed and day, so the demo and the end-to-end tests see the same screens.

use anyhow::Result;
use chrono::{Datelike, Days, FixedOffset, NaiveDate, NaiveTime};

use crate::{Member, Store, StoredStepReport};

const NAMES: &[&str] = &[
    "김영희",
    "박철수",
    "이순자",
    "최민호",
    "정옥순",
    "강대식",
    "조미숙",
    "윤상철",
    "장영자",
    "임동수",
    "한정숙",
    "오세훈",
    "서말순",
    "신용호",
    "권복순",
    "황재민",
];

/// SplitMix64: small, fast and fully determined by its seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The member numbers the demo creates: `PP-0001` and on.
pub fn demo_member_no(i: usize) -> String {
    format!("PP-{:04}", i + 1)
}

/// Fills an empty store with `NAMES.len()` members and `weeks` weeks of step reports ending on
/// `today`. Does nothing when members are already there. Returns the number of members added.
pub fn seed_demo(store: &mut Store, today: NaiveDate, weeks: u32, seed: u64) -> Result<usize> {
    if store.member_count()? > 0 {
        return Ok(0);
    }
    let kst = FixedOffset::east_opt(9 * 3600).ok_or_else(|| anyhow::anyhow!("KST offset"))?;
    let mut rng = SplitMix(seed);
    store.in_transaction(|s| {
        for (i, name) in NAMES.iter().enumerate() {
            // Ages from about 55 to 85, so both daily goals (8,000 and 5,000) appear.
            let age = 55 + rng.below(31) as i32;
            let birth = NaiveDate::from_ymd_opt(
                today.year() - age,
                1 + rng.below(12) as u32,
                1 + rng.below(28) as u32,
            )
            .ok_or_else(|| anyhow::anyhow!("demo birth date"))?;
            let member_no = demo_member_no(i);
            s.put_member(&Member {
                member_no: member_no.clone(),
                name: (*name).to_owned(),
                birth_date: birth,
                phone: format!("010{:08}", rng.below(100_000_000)),
            })?;
            // How active this member is: a typical day's steps.
            let typical = 3_000 + rng.below(9_000);
            for back in (0..u64::from(weeks * 7)).rev() {
                let day = today - Days::new(back);
                let steps_today = (typical / 2 + rng.below(typical)) as u32;
                // A watch reports the day's running total a few times, the last in the evening.
                let reports = 1 + rng.below(3);
                for k in 0..reports {
                    let hour = 12 + (k as u32) * 4;
                    let at = day
                        .and_time(NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or_default())
                        .and_local_timezone(kst)
                        .single()
                        .ok_or_else(|| anyhow::anyhow!("demo report time"))?;
                    let share = (k + 1) as u32 * steps_today / reports as u32;
                    s.add_step_report(
                        &member_no,
                        &StoredStepReport {
                            day,
                            reported_at: at,
                            steps: share,
                        },
                    )?;
                }
            }
        }
        Ok(NAMES.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_members_and_steps() {
        let today: NaiveDate = "2025-12-10".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut a = Store::open(&dir.path().join("a.sqlite")).unwrap();
        let mut b = Store::open(&dir.path().join("b.sqlite")).unwrap();
        assert_eq!(seed_demo(&mut a, today, 3, 7).unwrap(), NAMES.len());
        assert_eq!(seed_demo(&mut b, today, 3, 7).unwrap(), NAMES.len());
        let no = demo_member_no(3);
        assert_eq!(a.member(&no).unwrap(), b.member(&no).unwrap());
        assert_eq!(a.step_reports(&no).unwrap(), b.step_reports(&no).unwrap());
        let days = a.step_days(&no).unwrap();
        assert_eq!(days.len(), 21);
        assert_eq!(days.keys().last(), Some(&today));
        // Seeding again leaves the data alone.
        assert_eq!(seed_demo(&mut a, today, 3, 7).unwrap(), 0);
    }
}
