//! What the terminal pulls from the central server, cached for offline use: the pull cursor,
//! the policy files in force, the redemption-token public keys, revoked member cards, member
//! balances, the server's watch pairings and, for a kiosk, the admission schedule and the
//! site's quota leases (migration 4).
//!
//! [`Store::apply_pull_page`] writes one page of a pull and its cursor in one transaction, so
//! a terminal that stops between pages resumes from the last page it stored and converges to
//! the same state. What the counter and the kiosk read: [`Store::pull_cursor`],
//! [`Store::last_pull`], [`Store::cached_policies`], [`Store::redemption_keys`],
//! [`Store::revoked_members`] and [`Store::is_revoked`], [`Store::balance`],
//! [`Store::server_pairing`], [`Store::quota_leases_on`] and [`Store::pulled_counts`]; the
//! kiosk's `Store::admission_schedule` and `Store::quota_lease` (module `kiosk`) read the same
//! tables. The tables' shapes are stable:
//!
//! | table | one row per | columns |
//! |---|---|---|
//! | `pull_state` | (one row) | `cursor`, `last_pull` (RFC 3339), `admission` (JSON of `AdmissionSchedule`) |
//! | `policies` | policy file in force | `name`, `effective_from`, `effective_until`, `text` (TOML) |
//! | `redemption_keys` | key | `key_id`, `public_key` (standard base64 of 32 bytes), `retired` (0/1) |
//! | `revoked_members` | revoked card | `member_no` |
//! | `balances` | member | `member_no`, `credited`, `spent`, `balance`, `as_of` (RFC 3339) |
//! | `server_pairings` | watch | `serial`, `member_no`, `ended` (0/1) |
//! | `quota_leases` | lease | `lease_id`, `site`, `day`, `places`, `used` |
//!
//! It decides nothing: the page was checked by the sync shell before it gets here.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use chrono::{DateTime, FixedOffset, NaiveDate};
use kiosk_core::admission::{AdmissionSchedule, QuotaLease};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::Store;

/// One policy file the server has in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CachedPolicy {
    /// The policy's name.
    pub name: String,
    /// The first day it is in force.
    pub effective_from: NaiveDate,
    /// The last day it is in force, if the file names one.
    pub effective_until: Option<NaiveDate>,
    /// The policy file's TOML text (`docs/points-policy.md`), byte for byte.
    pub text: String,
}

/// One of the server's redemption-token public keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CachedKey {
    /// The `key_id` tokens name.
    pub key_id: u16,
    /// The Ed25519 public key.
    pub public_key: [u8; 32],
    /// Whether tokens signed with it are refused.
    pub retired: bool,
}

/// A member's balance as the server last said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CachedBalance {
    /// The member number.
    pub member_no: String,
    /// Points credited, ever.
    pub credited: i64,
    /// Points taken by posted holds.
    pub spent: i64,
    /// `credited - spent`.
    pub balance: i64,
    /// When the server said so: the time of the pull answer that carried it.
    pub as_of: DateTime<FixedOffset>,
}

/// A watch's pairing to a member, as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerPairing {
    /// The watch's serial number.
    pub serial: String,
    /// The member it is (or was) paired to.
    pub member_no: String,
    /// Whether the pairing ended.
    pub ended: bool,
}

/// A balance in a page, before it is stamped with the page's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceChange {
    /// The member number.
    pub member_no: String,
    /// Points credited, ever.
    pub credited: i64,
    /// Points taken by posted holds.
    pub spent: i64,
    /// `credited - spent`.
    pub balance: i64,
}

/// One page of a pull, as the store applies it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PulledPage {
    /// The cursor after this page; the next pull starts from it.
    pub cursor: String,
    /// The whole policy set in force, when it changed; it replaces the cached one.
    pub policies: Option<Vec<CachedPolicy>>,
    /// Keys added or retired.
    pub redemption_keys: Vec<CachedKey>,
    /// Member cards revoked.
    pub revoked_members: Vec<String>,
    /// Balances changed.
    pub balances: Vec<BalanceChange>,
    /// Watch pairings made or ended.
    pub watch_pairings: Vec<ServerPairing>,
    /// Member cards revoked, or locked after wrong PINs.
    pub cards: Vec<PulledCard>,
    /// Kiosks: the whole admission schedule; it replaces the cached one, and `quota_leases`
    /// replace the cached leases. `None` (a counter) leaves both alone.
    pub admission: Option<AdmissionSchedule>,
    /// Kiosks: the site's leases from the server's today on.
    pub quota_leases: Vec<QuotaLease>,
}

/// A member card's state as the server last told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PulledCard {
    /// The card's member.
    pub member: redemption_token::MemberNo,
    /// The card's serial.
    pub serial: u16,
    /// Revoked: refused from now on.
    pub revoked: bool,
    /// Locked after wrong PINs at any counters, for the rest of this day (Asia/Seoul).
    pub locked_on: Option<NaiveDate>,
}

/// How many rows of each kind the terminal holds, for `palpal status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PulledCounts {
    /// Policy files.
    pub policies: u64,
    /// Redemption keys (retired ones included).
    pub redemption_keys: u64,
    /// Revoked member cards.
    pub revoked_members: u64,
    /// Member balances.
    pub balances: u64,
    /// Watch pairings.
    pub server_pairings: u64,
    /// Quota leases.
    pub quota_leases: u64,
    /// Days in the admission schedule.
    pub admission_days: u64,
}

impl Store {
    /// Applies one page of a pull received at `at`, and saves its cursor and `at` as the last
    /// pull, in one transaction: all of it or nothing. Balances are stamped `as_of = at`.
    pub fn apply_pull_page(&mut self, page: &PulledPage, at: DateTime<FixedOffset>) -> Result<()> {
        let at = at.to_rfc3339();
        let tx = self.conn.transaction()?;
        if let Some(policies) = &page.policies {
            tx.execute("DELETE FROM policies", [])?;
            let mut stmt = tx.prepare_cached(
                "INSERT INTO policies(name, effective_from, effective_until, text)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for p in policies {
                stmt.execute(params![
                    p.name,
                    p.effective_from.to_string(),
                    p.effective_until.map(|d| d.to_string()),
                    p.text
                ])
                .with_context(|| format!("storing the policy {}", p.name))?;
            }
        }
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO redemption_keys(key_id, public_key, retired) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key_id) DO UPDATE SET public_key = excluded.public_key,
                     retired = excluded.retired",
            )?;
            for k in &page.redemption_keys {
                stmt.execute(params![k.key_id, base64_encode(&k.public_key), k.retired])?;
            }
        }
        {
            let mut stmt =
                tx.prepare_cached("INSERT OR IGNORE INTO revoked_members(member_no) VALUES (?1)")?;
            for m in &page.revoked_members {
                stmt.execute([m])?;
            }
        }
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO balances(member_no, credited, spent, balance, as_of)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(member_no) DO UPDATE SET credited = excluded.credited,
                     spent = excluded.spent, balance = excluded.balance, as_of = excluded.as_of",
            )?;
            for b in &page.balances {
                stmt.execute(params![b.member_no, b.credited, b.spent, b.balance, at])?;
            }
        }
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO card_states(member, serial, revoked, locked_on) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(member, serial) DO UPDATE SET revoked = excluded.revoked,
                     locked_on = excluded.locked_on",
            )?;
            for c in &page.cards {
                stmt.execute(params![
                    i64::try_from(c.member.0)?,
                    c.serial,
                    c.revoked,
                    c.locked_on.map(|d| d.to_string())
                ])?;
            }
        }
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO server_pairings(serial, member_no, ended) VALUES (?1, ?2, ?3)
                 ON CONFLICT(serial) DO UPDATE SET member_no = excluded.member_no,
                     ended = excluded.ended",
            )?;
            for p in &page.watch_pairings {
                stmt.execute(params![p.serial, p.member_no, p.ended])?;
            }
        }
        let admission = match &page.admission {
            Some(schedule) => {
                tx.execute("DELETE FROM quota_leases", [])?;
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO quota_leases(lease_id, site, day, places, used)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for l in &page.quota_leases {
                    stmt.execute(params![
                        l.lease_id,
                        l.site,
                        l.day.to_string(),
                        l.places,
                        l.used
                    ])
                    .with_context(|| format!("storing the quota lease {}", l.lease_id))?;
                }
                Some(serde_json::to_string(schedule)?)
            }
            None => None,
        };
        tx.execute(
            "INSERT INTO pull_state(only_row, cursor, last_pull, admission) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT(only_row) DO UPDATE SET cursor = excluded.cursor,
                 last_pull = excluded.last_pull,
                 admission = COALESCE(excluded.admission, admission)",
            params![page.cursor, at, admission],
        )?;
        tx.commit()
            .context("storing what was pulled from the server")?;
        Ok(())
    }

    /// The cursor to pull from next (`None`: never pulled, pull everything).
    pub fn pull_cursor(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT cursor FROM pull_state WHERE only_row = 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// When the last page was stored (`None`: never pulled).
    pub fn last_pull(&self) -> Result<Option<DateTime<FixedOffset>>> {
        let at: Option<String> = self
            .conn
            .query_row(
                "SELECT last_pull FROM pull_state WHERE only_row = 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        at.map(|t| DateTime::parse_from_rfc3339(&t).context("reading the last pull time"))
            .transpose()
    }

    /// The policy files the server has in force, oldest first (empty: never pulled).
    pub fn cached_policies(&self) -> Result<Vec<CachedPolicy>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, effective_from, effective_until, text FROM policies
             ORDER BY effective_from, name",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(name, from, until, text)| {
                Ok(CachedPolicy {
                    effective_from: from.parse().context("reading a policy's first day")?,
                    effective_until: until
                        .map(|d| d.parse())
                        .transpose()
                        .context("reading a policy's last day")?,
                    name,
                    text,
                })
            })
            .collect()
    }

    /// The server's redemption-token public keys, retired ones included, by `key_id`.
    pub fn redemption_keys(&self) -> Result<Vec<CachedKey>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key_id, public_key, retired FROM redemption_keys ORDER BY key_id")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, u16>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(key_id, text, retired)| {
                let public_key = base64_decode(&text)
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .with_context(|| format!("the stored key {key_id} is not 32 bytes"))?;
                Ok(CachedKey {
                    key_id,
                    public_key,
                    retired,
                })
            })
            .collect()
    }

    /// The member numbers whose cards the server revoked.
    pub fn revoked_members(&self) -> Result<BTreeSet<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT member_no FROM revoked_members ORDER BY member_no")?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<BTreeSet<_>>>()?;
        Ok(rows)
    }

    /// Whether the server revoked `member_no`'s card.
    pub fn is_revoked(&self, member_no: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM revoked_members WHERE member_no = ?1",
                [member_no],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// A member's balance as the server last said (`None`: none pulled for them).
    pub fn balance(&self, member_no: &str) -> Result<Option<CachedBalance>> {
        let row = self
            .conn
            .query_row(
                "SELECT member_no, credited, spent, balance, as_of FROM balances
                 WHERE member_no = ?1",
                [member_no],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(member_no, credited, spent, balance, as_of)| {
            Ok(CachedBalance {
                member_no,
                credited,
                spent,
                balance,
                as_of: DateTime::parse_from_rfc3339(&as_of).context("reading a balance's time")?,
            })
        })
        .transpose()
    }

    /// The server's pairing of the watch `serial` (`None`: the server named none).
    pub fn server_pairing(&self, serial: &str) -> Result<Option<ServerPairing>> {
        Ok(self
            .conn
            .query_row(
                "SELECT serial, member_no, ended FROM server_pairings WHERE serial = ?1",
                [serial],
                |r| {
                    Ok(ServerPairing {
                        serial: r.get(0)?,
                        member_no: r.get(1)?,
                        ended: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// The admission schedule the server last sent (`None`: never pulled as a kiosk). The
    /// kiosk reads it with `Store::admission_schedule` (module `kiosk`); this one is for the
    /// counts and the tests here.
    fn pulled_admission(&self) -> Result<Option<AdmissionSchedule>> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT admission FROM pull_state WHERE only_row = 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        text.map(|t| serde_json::from_str(&t).context("reading the stored admission schedule"))
            .transpose()
    }

    /// The quota leases of `day` the server last sent (at most one per site).
    pub fn quota_leases_on(&self, day: NaiveDate) -> Result<Vec<QuotaLease>> {
        let mut stmt = self.conn.prepare(
            "SELECT lease_id, site, day, places, used FROM quota_leases WHERE day = ?1
             ORDER BY site, lease_id",
        )?;
        let rows = stmt
            .query_map([day.to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, u32>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(lease_id, site, day, places, used)| {
                Ok(QuotaLease {
                    lease_id,
                    site,
                    day: day.parse().context("reading a lease's day")?,
                    places,
                    used,
                })
            })
            .collect()
    }

    /// How many rows of each kind were pulled.
    pub fn pulled_counts(&self) -> Result<PulledCounts> {
        let count = |table: &str| -> Result<u64> {
            let n: i64 =
                self.conn
                    .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        Ok(PulledCounts {
            policies: count("policies")?,
            redemption_keys: count("redemption_keys")?,
            revoked_members: count("revoked_members")?,
            balances: count("balances")?,
            server_pairings: count("server_pairings")?,
            quota_leases: count("quota_leases")?,
            admission_days: self
                .pulled_admission()?
                .map_or(0, |s| u64::try_from(s.days.len()).unwrap_or(0)),
        })
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as the sync API writes keys.
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in text.bytes() {
        let v = BASE64.iter().position(|&b| b == c)?;
        acc = (acc << 6) | u32::try_from(v).ok()?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiosk_core::admission::DayRule;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn lease(id: &str, d: &str, places: u32, used: u32) -> QuotaLease {
        QuotaLease {
            lease_id: id.to_owned(),
            site: "성북구 보건소".to_owned(),
            day: day(d),
            places,
            used,
        }
    }

    fn first_page() -> PulledPage {
        PulledPage {
            cursor: "1.ed0cfe4797745701.2".to_owned(),
            policies: Some(vec![CachedPolicy {
                name: "seoul-2025-12".to_owned(),
                effective_from: day("2025-12-01"),
                effective_until: None,
                text: "name = \"seoul-2025-12\"".to_owned(),
            }]),
            redemption_keys: vec![CachedKey {
                key_id: 1,
                public_key: [7; 32],
                retired: false,
            }],
            revoked_members: vec!["PP-00000007".to_owned()],
            balances: vec![BalanceChange {
                member_no: "PP-00000001".to_owned(),
                credited: 1200,
                spent: 300,
                balance: 900,
            }],
            watch_pairings: vec![ServerPairing {
                serial: "PW-0042".to_owned(),
                member_no: "PP-00000001".to_owned(),
                ended: false,
            }],
            cards: Vec::new(),
            admission: Some(AdmissionSchedule {
                days: [(day("2025-12-03"), DayRule::OddBirthYears)].into(),
            }),
            quota_leases: vec![lease("Q-000001", "2025-12-03", 200, 12)],
        }
    }

    #[test]
    fn a_page_is_stored_whole_with_its_cursor_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.sqlite")).unwrap();
        assert_eq!(s.pull_cursor().unwrap(), None);
        assert_eq!(s.last_pull().unwrap(), None);
        assert_eq!(s.pulled_admission().unwrap(), None);
        assert_eq!(s.pulled_counts().unwrap(), PulledCounts::default());

        let t1 = at("2025-12-03T10:00:00+09:00");
        s.apply_pull_page(&first_page(), t1).unwrap();
        assert_eq!(
            s.pull_cursor().unwrap().as_deref(),
            Some("1.ed0cfe4797745701.2")
        );
        assert_eq!(s.last_pull().unwrap(), Some(t1));
        assert_eq!(s.cached_policies().unwrap()[0].name, "seoul-2025-12");
        assert_eq!(s.redemption_keys().unwrap()[0].public_key, [7; 32]);
        assert!(s.is_revoked("PP-00000007").unwrap());
        assert!(!s.is_revoked("PP-00000001").unwrap());
        let b = s.balance("PP-00000001").unwrap().unwrap();
        assert_eq!((b.balance, b.as_of), (900, t1));
        assert_eq!(s.balance("PP-00000002").unwrap(), None);
        assert_eq!(
            s.pulled_admission()
                .unwrap()
                .unwrap()
                .rule_on(day("2025-12-03")),
            DayRule::OddBirthYears
        );
        assert_eq!(s.quota_leases_on(day("2025-12-03")).unwrap()[0].used, 12);
        assert!(!s.server_pairing("PW-0042").unwrap().unwrap().ended);

        // A later page: balances move, a key retires, leases and schedule are replaced; a
        // page without policies or admission (a counter's, or a later page) keeps them.
        let t2 = at("2025-12-03T10:05:00+09:00");
        let mut second = PulledPage {
            cursor: "1.ed0cfe4797745701.5".to_owned(),
            balances: vec![BalanceChange {
                member_no: "PP-00000001".to_owned(),
                credited: 1200,
                spent: 500,
                balance: 700,
            }],
            redemption_keys: vec![CachedKey {
                key_id: 1,
                public_key: [7; 32],
                retired: true,
            }],
            ..PulledPage::default()
        };
        s.apply_pull_page(&second, t2).unwrap();
        let b = s.balance("PP-00000001").unwrap().unwrap();
        assert_eq!((b.spent, b.balance, b.as_of), (500, 700, t2));
        assert!(s.redemption_keys().unwrap()[0].retired);
        assert_eq!(s.cached_policies().unwrap().len(), 1);
        assert_eq!(s.quota_leases_on(day("2025-12-03")).unwrap().len(), 1);
        assert!(s.pulled_admission().unwrap().is_some());

        second.cursor = "1.ed0cfe4797745701.6".to_owned();
        second.admission = Some(AdmissionSchedule::default());
        second.quota_leases = vec![lease("Q-000002", "2025-12-04", 50, 0)];
        s.apply_pull_page(&second, t2).unwrap();
        assert!(s.quota_leases_on(day("2025-12-03")).unwrap().is_empty());
        assert_eq!(s.quota_leases_on(day("2025-12-04")).unwrap().len(), 1);
        assert_eq!(s.pulled_counts().unwrap().admission_days, 0);
        let counts = s.pulled_counts().unwrap();
        assert_eq!(
            (
                counts.policies,
                counts.redemption_keys,
                counts.revoked_members
            ),
            (1, 1, 1)
        );
    }

    #[test]
    fn a_page_that_cannot_be_stored_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.sqlite")).unwrap();
        let t1 = at("2025-12-03T10:00:00+09:00");
        s.apply_pull_page(&first_page(), t1).unwrap();
        // Two policies with one name break the primary key half-way through the page.
        let mut bad = first_page();
        bad.cursor = "1.ed0cfe4797745701.9".to_owned();
        bad.balances[0].balance = 1;
        let policies = bad.policies.as_mut().unwrap();
        policies.push(policies[0].clone());
        assert!(s
            .apply_pull_page(&bad, at("2025-12-03T11:00:00+09:00"))
            .is_err());
        assert_eq!(
            s.pull_cursor().unwrap().as_deref(),
            Some("1.ed0cfe4797745701.2")
        );
        assert_eq!(s.balance("PP-00000001").unwrap().unwrap().balance, 900);
        assert_eq!(s.last_pull().unwrap(), Some(t1));
    }

    #[test]
    fn keys_round_trip_through_base64() {
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&bytes)).unwrap(), bytes);
        }
        assert_eq!(
            base64_encode(&[3, 161, 7, 191, 243, 206, 16, 190]),
            "A6EHv/POEL4="
        );
    }
}
