//! A seeded demo data set: members and a few weeks of step reports, the same for the same
//! seed and day, so the demo and the end-to-end tests see the same screens.

use anyhow::Result;
use chrono::{Datelike, Days, NaiveDate, NaiveTime};
use splitmix::SplitMix64;

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

/// The member numbers the demo creates: `PP-0001` and on.
pub fn demo_member_no(i: usize) -> String {
    format!("PP-{:04}", i + 1)
}

/// The key id of the demo's token issuing key.
pub const DEMO_KEY_ID: u16 = 1;

/// The demo issuer's Ed25519 seed, as 64 hex digits: the worked example's key of
/// `docs/redemption-token.md`. Public on purpose: it signs demo and test tokens only
/// (`palpal token issue --key` with `{"key_id": 1, "seed": ..., "not_before": ...}`).
pub fn demo_issuer_seed_hex() -> &'static str {
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
}

/// Its public key, standard base64, as the server publishes keys.
const DEMO_PUBLIC_KEY: &str = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
/// A retired key (id 0, seed 32 bytes of 0x42): its tokens are refused as the wrong key.
const RETIRED_PUBLIC_KEY: &str = "IVL40Zt5HSRFMkLhXy6rbLfP+ntqXtMAl5YOBpiB2xI=";

/// The demo member who may not spend points: `PP-0016`.
pub const DEMO_REVOKED: usize = 15;

/// What a counter pulls from the server, for the demo: the issuing keys, the members'
/// balances as of `today`'s midnight (Asia/Seoul) and one revoked member, as pulled then.
fn seed_counter(s: &Store, today: NaiveDate, seed: u64) -> Result<()> {
    let kst = points_core::KST;
    let midnight = today
        .and_time(NaiveTime::MIN)
        .and_local_timezone(kst)
        .single()
        .ok_or_else(|| anyhow::anyhow!("demo midnight"))?;
    let as_of = midnight
        .to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    s.conn.execute(
        "INSERT OR REPLACE INTO redemption_keys(key_id, public_key, retired) VALUES (?1, ?2, 0), (0, ?3, 1)",
        rusqlite::params![DEMO_KEY_ID, DEMO_PUBLIC_KEY, RETIRED_PUBLIC_KEY],
    )?;
    let mut rng = SplitMix64::new(seed ^ 0x0c0_4e7e8);
    for i in 0..NAMES.len() {
        let balance = 3_000 + 100 * rng.below(800) as i64;
        s.conn.execute(
            "INSERT OR REPLACE INTO balances(member_no, credited, spent, balance, as_of)
             VALUES (?1, ?2, 0, ?2, ?3)",
            rusqlite::params![demo_member_no(i), balance, as_of],
        )?;
    }
    s.conn.execute(
        "INSERT OR IGNORE INTO revoked_members(member_no) VALUES (?1)",
        [demo_member_no(DEMO_REVOKED)],
    )?;
    // The data above stands for a pull at that midnight (no cursor: a real pull starts over).
    s.conn.execute(
        "INSERT INTO pull_state(only_row, cursor, last_pull) VALUES (1, NULL, ?1)
         ON CONFLICT(only_row) DO NOTHING",
        [midnight.to_rfc3339()],
    )?;
    Ok(())
}

/// Fills an empty store with `NAMES.len()` members and `weeks` weeks of step reports ending on
/// `today`. Does nothing when members are already there. Returns the number of members added.
pub fn seed_demo(store: &mut Store, today: NaiveDate, weeks: u32, seed: u64) -> Result<usize> {
    if store.member_count()? > 0 {
        return Ok(0);
    }
    let kst = points_core::KST;
    let mut rng = SplitMix64::new(seed);
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
        seed_counter(s, today, seed)?;
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
