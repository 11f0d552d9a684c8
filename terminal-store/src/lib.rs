//! The terminal's SQLite database on disk: what a kiosk or counter knows and what it has done.
//!
//! An adapter, not a core: it does IO and nothing else. It holds the terminal's settings, the
//! members and step reports it has cached, the enrollments it confirmed, and the outbox of
//! operations waiting to reach the central server. Anything a person is told is done is
//! written with `synchronous=FULL` in WAL mode before the call returns. The schema moves
//! forward only, by numbered migrations recorded in `PRAGMA user_version`.
//!
//! The outbox moves each operation from queued to in flight to one final answer (done, or
//! rejected with the server's reason, kept for the operator); [`Store::outbox_pending`],
//! [`Store::mark_in_flight`] and [`Store::settle`] are what the sync shell calls around the
//! `sync-client` state machine. The terminal's identity (its id, site, role, server) lives in
//! the same file, which is created readable by its owner only; its secrets (the Ed25519 key it
//! signs with, the key a kiosk seals personal data with) live in files of their own
//! ([`secrets`]), never in the database.
//!
//! It decides nothing: eligibility, points, limits and when to sync belong to the cores.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, FixedOffset, NaiveDate};
use kiosk_core::{Enrollment, Residency};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

mod demo;
mod holds;
mod kiosk;
mod outbox;
mod pull;
pub mod secrets;
mod watches;
pub use demo::{demo_issuer_seed_hex, demo_member_no, seed_demo, DEMO_KEY_ID};
pub use holds::{CardLock, StoredHold};
pub use kiosk::{key_path, CardCheck, EnrollmentCard, KioskEnrollment, KnownPerson, PersonalData};
pub use outbox::{
    FinalAnswer, OutboxCounts, OutboxEntry, OutboxState, PendingOp, SyncLog, TerminalIdentity,
};
pub use pull::{
    BalanceChange, CachedBalance, CachedKey, CachedPolicy, PulledCard, PulledCounts, PulledPage,
    ServerPairing,
};
pub use watches::{StoredWatch, WatchSync};

/// Each entry moves the schema one version forward. Never edit a landed entry; add one.
const MIGRATIONS: &[&str] = &[
    // 1: the walking skeleton.
    "CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;
    CREATE TABLE members (
        member_no  TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        birth_date TEXT NOT NULL,
        phone      TEXT NOT NULL
    ) STRICT;
    CREATE TABLE step_reports (
        member_no   TEXT NOT NULL REFERENCES members(member_no),
        day         TEXT NOT NULL,
        reported_at TEXT NOT NULL,
        steps       INTEGER NOT NULL CHECK (steps >= 0),
        PRIMARY KEY (member_no, day, reported_at)
    ) STRICT;
    CREATE TABLE enrollments (
        local_no   INTEGER PRIMARY KEY AUTOINCREMENT,
        op_id      TEXT NOT NULL UNIQUE,
        site       TEXT NOT NULL,
        day        TEXT NOT NULL,
        created_at TEXT NOT NULL,
        name       TEXT NOT NULL,
        birth_date TEXT NOT NULL,
        phone      TEXT NOT NULL,
        residency  TEXT NOT NULL
    ) STRICT;
    CREATE INDEX enrollments_by_day ON enrollments(day);
    CREATE TABLE outbox (
        op_id      TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,
        payload    TEXT NOT NULL,
        created_at TEXT NOT NULL,
        state      TEXT NOT NULL DEFAULT 'queued'
    ) STRICT;",
    // 2: outbox states and results, the terminal's identity, the sync log.
    "ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN sent_at TEXT;
    ALTER TABLE outbox ADD COLUMN settled_at TEXT;
    ALTER TABLE outbox ADD COLUMN result TEXT;
    ALTER TABLE outbox ADD COLUMN reason TEXT;
    ALTER TABLE outbox ADD COLUMN message TEXT;
    ALTER TABLE outbox ADD COLUMN member_number TEXT;
    CREATE INDEX outbox_by_state ON outbox(state);
    CREATE TABLE terminal_identity (
        only_row       INTEGER PRIMARY KEY CHECK (only_row = 1),
        terminal_id    TEXT NOT NULL,
        site           TEXT NOT NULL,
        role           TEXT NOT NULL,
        name           TEXT NOT NULL,
        server_url     TEXT NOT NULL,
        secret_key     BLOB NOT NULL CHECK (length(secret_key) = 32),
        provisioned_at TEXT NOT NULL
    ) STRICT;
    CREATE TABLE sync_log (
        only_row       INTEGER PRIMARY KEY CHECK (only_row = 1),
        last_good_sync TEXT,
        last_attempt   TEXT,
        last_error     TEXT
    ) STRICT;",
    // 3: watches (paired to a member or a kiosk enrollment) and the history read from them.
    "CREATE TABLE watches (
        serial         TEXT PRIMARY KEY,
        member_no      TEXT REFERENCES members(member_no),
        enrollment_op  TEXT REFERENCES enrollments(op_id),
        last_seq       INTEGER CHECK (last_seq >= 0),
        last_synced_at TEXT,
        paired_at      TEXT NOT NULL,
        CHECK ((member_no IS NULL) <> (enrollment_op IS NULL))
    ) STRICT;
    CREATE INDEX watches_by_member ON watches(member_no);
    CREATE TABLE watch_records (
        serial TEXT NOT NULL REFERENCES watches(serial),
        seq    INTEGER NOT NULL CHECK (seq >= 0),
        kind   TEXT NOT NULL CHECK (kind IN ('day_steps', 'hour_steps', 'heart_rate')),
        day    TEXT NOT NULL,
        hour   INTEGER,
        at     TEXT,
        value  INTEGER NOT NULL CHECK (value >= 0),
        PRIMARY KEY (serial, seq)
    ) STRICT;
    CREATE INDEX watch_records_by_day ON watch_records(kind, day);",
    // 4: what the terminal pulls from the server (module `pull`): the cursor, the policy
    // files, redemption keys, revoked member cards, balances, the server's watch pairings and,
    // for kiosks, the admission schedule and the site's quota leases.
    "CREATE TABLE pull_state (
        only_row        INTEGER PRIMARY KEY CHECK (only_row = 1),
        cursor          TEXT,
        last_pull       TEXT,
        admission       TEXT
    ) STRICT;
    CREATE TABLE policies (
        name            TEXT PRIMARY KEY,
        effective_from  TEXT NOT NULL,
        effective_until TEXT,
        text            TEXT NOT NULL
    ) STRICT;
    CREATE TABLE redemption_keys (
        key_id     INTEGER PRIMARY KEY CHECK (key_id BETWEEN 0 AND 65535),
        public_key TEXT NOT NULL,
        retired    INTEGER NOT NULL CHECK (retired IN (0, 1))
    ) STRICT;
    CREATE TABLE revoked_members (
        member_no TEXT PRIMARY KEY
    ) STRICT;
    CREATE TABLE balances (
        member_no TEXT PRIMARY KEY,
        credited  INTEGER NOT NULL,
        spent     INTEGER NOT NULL,
        balance   INTEGER NOT NULL,
        as_of     TEXT NOT NULL
    ) STRICT;
    CREATE TABLE server_pairings (
        serial    TEXT PRIMARY KEY,
        member_no TEXT NOT NULL,
        ended     INTEGER NOT NULL CHECK (ended IN (0, 1))
    ) STRICT;
    CREATE TABLE quota_leases (
        lease_id TEXT PRIMARY KEY,
        site     TEXT NOT NULL,
        day      TEXT NOT NULL,
        places   INTEGER NOT NULL CHECK (places >= 0),
        used     INTEGER NOT NULL CHECK (used >= 0)
    ) STRICT;
    CREATE INDEX quota_leases_by_day ON quota_leases(day);",
    // 5: the counter's redemption holds and voids (module `holds`), the dynamic tokens it
    // has seen, so that none is accepted twice, and wrong card PINs, so that a card locks.
    "CREATE TABLE holds (
        hold_id     TEXT PRIMARY KEY,
        member_no   TEXT NOT NULL,
        amount      INTEGER NOT NULL CHECK (amount > 0),
        kind        TEXT NOT NULL CHECK (kind IN ('dynamic', 'card')),
        token_id    TEXT UNIQUE,
        card_serial INTEGER,
        created_at  TEXT NOT NULL,
        day         TEXT NOT NULL,
        offline     INTEGER NOT NULL CHECK (offline IN (0, 1)),
        remaining   INTEGER NOT NULL CHECK (remaining >= 0),
        status      TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'posted', 'rejected')),
        reason      TEXT,
        voided_at   TEXT,
        void_op_id  TEXT UNIQUE,
        void_status TEXT CHECK (void_status IN ('pending', 'posted', 'rejected')),
        void_reason TEXT,
        CHECK ((voided_at IS NULL) = (void_op_id IS NULL))
    ) STRICT;
    CREATE INDEX holds_by_day ON holds(day);
    CREATE INDEX holds_by_member ON holds(member_no, day);
    CREATE INDEX holds_by_status ON holds(status);
    CREATE TABLE seen_tokens (
        token_id   TEXT PRIMARY KEY,
        expires_at TEXT NOT NULL
    ) STRICT;
    CREATE INDEX seen_tokens_by_expiry ON seen_tokens(expires_at);
    CREATE TABLE pin_failures (
        member_no TEXT NOT NULL,
        serial    INTEGER NOT NULL,
        at        TEXT NOT NULL
    ) STRICT;
    CREATE INDEX pin_failures_by_card ON pin_failures(member_no, serial);",
    // 6: the kiosk's sign-ups (module `kiosk`): personal data sealed (`sealed`, under the key
    // in `<database>.key`) instead of in the clear, a keyed hash of the person for duplicate
    // checks, the age and consents, the place taken in the quota lease, when the personal
    // data was erased (after the server acknowledged it), and numbered tickets for later days.
    "ALTER TABLE enrollments ADD COLUMN sealed BLOB;
    ALTER TABLE enrollments ADD COLUMN person_key TEXT;
    ALTER TABLE enrollments ADD COLUMN age INTEGER;
    ALTER TABLE enrollments ADD COLUMN consents TEXT;
    ALTER TABLE enrollments ADD COLUMN lease_id TEXT;
    ALTER TABLE enrollments ADD COLUMN place INTEGER;
    ALTER TABLE enrollments ADD COLUMN erased_at TEXT;
    CREATE INDEX enrollments_by_person ON enrollments(person_key);
    CREATE TABLE admission_tickets (
        site       TEXT NOT NULL,
        day        TEXT NOT NULL,
        number     INTEGER NOT NULL CHECK (number > 0),
        person_key TEXT NOT NULL,
        issued_at  TEXT NOT NULL,
        PRIMARY KEY (site, day, number),
        UNIQUE (site, day, person_key)
    ) STRICT;",
    // 7: the member card the server signed for a sign-up (module `kiosk`): the PIN check the
    // kiosk computed (cost, salt, two-byte tag; never the PIN), kept from before the request
    // so that a retry asks for the same card, and the signed token once it came back.
    "ALTER TABLE enrollments ADD COLUMN card_serial INTEGER;
    ALTER TABLE enrollments ADD COLUMN card_cost INTEGER;
    ALTER TABLE enrollments ADD COLUMN card_salt BLOB;
    ALTER TABLE enrollments ADD COLUMN card_tag BLOB;
    ALTER TABLE enrollments ADD COLUMN card_token TEXT;",
    // 8: the terminal's signing key leaves the database for a file of its own (module
    // `secrets`; moved there by `Store::prepare` before this runs).
    "ALTER TABLE terminal_identity DROP COLUMN secret_key;",
    // 9: the server's key pinned at provisioning (`sha256:...`), for an https:// server.
    "ALTER TABLE terminal_identity ADD COLUMN server_key TEXT;",
    // 10: when a sign-up's member card was printed; its token, salt and PIN check are erased
    // then (module `kiosk`).
    "ALTER TABLE enrollments ADD COLUMN card_printed_at TEXT;",
    // 11: member cards as the server last told (module `pull`): revoked, or locked for a day
    // after wrong PINs at any counters.
    "CREATE TABLE card_states (
        member     INTEGER NOT NULL,
        serial     INTEGER NOT NULL,
        revoked    INTEGER NOT NULL CHECK (revoked IN (0, 1)),
        locked_on  TEXT,
        PRIMARY KEY (member, serial)
    ) STRICT;",
];

/// The migration before which the signing key is moved to its file.
const SECRETS_MOVED: usize = 8;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// A member as the terminal caches them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub member_no: String,
    pub name: String,
    pub birth_date: NaiveDate,
    pub phone: String,
}

/// One step report as stored: the watch's cumulative count for `day` at `reported_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredStepReport {
    pub day: NaiveDate,
    pub reported_at: DateTime<FixedOffset>,
    pub steps: u32,
}

/// An enrollment this kiosk confirmed, as shown on the day's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConfirmedEnrollment {
    pub local_no: i64,
    pub op_id: String,
    pub name: String,
    pub age: u32,
    pub created_at: DateTime<FixedOffset>,
}

/// The terminal's database.
pub struct Store {
    conn: Connection,
    path: std::path::PathBuf,
    /// The key sealing kiosk sign-ups' personal data, read from its file once.
    personal_key: std::cell::OnceCell<[u8; 32]>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the folder {}", dir.display()))?;
        }
        create_private(path)?;
        let conn = Connection::open(path)
            .with_context(|| format!("opening the database {}", path.display()))?;
        check_intact(&conn, path)?;
        let mut store = Store {
            personal_key: std::cell::OnceCell::new(),
            conn,
            path: path.to_owned(),
        };
        store
            .prepare()
            .with_context(|| format!("preparing the database {}", path.display()))?;
        Ok(store)
    }

    fn prepare(&mut self) -> Result<()> {
        self.conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!("the database would not switch to WAL mode (it is in {mode} mode)");
        }
        self.conn
            .execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        // Erased personal data and tokens are overwritten on disk, not merely unlinked.
        self.conn.pragma_update(None, "secure_delete", "ON")?;
        // Plans fixed when a statement is prepared: otherwise a cached statement whose plan a
        // bound value might change is compiled again each time it is used.
        self.conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        let version: u32 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            bail!(
                "the database has schema version {version}, newer than this program's {SCHEMA_VERSION}; \
                 install the newer Palpal that wrote it"
            );
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction()?;
            if i + 1 == SECRETS_MOVED {
                move_signing_key(&tx, &self.path)?;
            }
            tx.execute_batch(sql)
                .with_context(|| format!("applying migration {}", i + 1))?;
            tx.pragma_update(None, "user_version", i as u32 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The schema version on disk.
    pub fn schema_version(&self) -> Result<u32> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO settings(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Records a confirmed enrollment with no consents or contact recorded (tools and tests;
    /// the kiosk records its sign-ups with [`Store::record_kiosk_enrollment`]) and queues it
    /// for the central server, in one transaction, the personal data sealed as the kiosk's.
    /// Calling it again with the same `op_id` returns the first record and writes nothing.
    pub fn record_enrollment(
        &mut self,
        op_id: &str,
        site: &str,
        enrollment: &Enrollment,
        created_at: DateTime<FixedOffset>,
    ) -> Result<ConfirmedEnrollment> {
        self.record_kiosk_enrollment(&KioskEnrollment {
            op_id,
            site,
            enrollment,
            consents: &kiosk_core::consent::ConsentRecord {
                answers: Vec::new(),
            },
            guardian_phone: None,
            place: None,
            at: created_at,
        })
    }

    fn enrollment(&self, local_no: i64) -> Result<ConfirmedEnrollment> {
        let (op_id, name, birth, created, age): (String, String, String, String, Option<u32>) =
            self.conn.query_row(
                "SELECT op_id, name, birth_date, created_at, age FROM enrollments WHERE local_no = ?1",
                [local_no],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?;
        let created_at = DateTime::parse_from_rfc3339(&created)?;
        // Kiosk sign-ups (migration 6) keep the age, not the birth date, in the clear.
        let age = match age {
            Some(age) => age,
            None => kiosk_core::age_on(birth.parse()?, created_at.date_naive()),
        };
        Ok(ConfirmedEnrollment {
            local_no,
            op_id,
            name,
            age,
            created_at,
        })
    }

    /// The enrollments confirmed here on `day`, newest first.
    pub fn enrollments_on(&self, day: NaiveDate) -> Result<Vec<ConfirmedEnrollment>> {
        let mut stmt = self
            .conn
            .prepare("SELECT local_no FROM enrollments WHERE day = ?1 ORDER BY local_no DESC")?;
        let nos = stmt
            .query_map([day.to_string()], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        nos.into_iter().map(|n| self.enrollment(n)).collect()
    }

    /// Operations waiting to reach the central server.
    pub fn outbox_queued(&self) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM outbox WHERE state = 'queued'",
            [],
            |r| r.get(0),
        )?)
    }

    /// Adds or replaces a cached member.
    pub fn put_member(&self, member: &Member) -> Result<()> {
        self.conn.execute(
            "INSERT INTO members(member_no, name, birth_date, phone) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(member_no) DO UPDATE SET name = excluded.name,
                 birth_date = excluded.birth_date, phone = excluded.phone",
            params![
                member.member_no,
                member.name,
                member.birth_date.to_string(),
                member.phone
            ],
        )?;
        Ok(())
    }

    pub fn member(&self, member_no: &str) -> Result<Option<Member>> {
        let row: Option<(String, String, String, String)> = self
            .conn
            .query_row(
                "SELECT member_no, name, birth_date, phone FROM members WHERE member_no = ?1",
                [member_no],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        row.map(|(member_no, name, birth, phone)| {
            Ok(Member {
                member_no,
                name,
                birth_date: birth.parse()?,
                phone,
            })
        })
        .transpose()
    }

    pub fn member_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM members", [], |r| r.get(0))?)
    }

    /// Stores a step report; the same (member, day, reported_at) twice is kept once.
    pub fn add_step_report(&self, member_no: &str, report: &StoredStepReport) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO step_reports(member_no, day, reported_at, steps) VALUES (?1, ?2, ?3, ?4)",
            params![
                member_no,
                report.day.to_string(),
                report.reported_at.to_rfc3339(),
                report.steps
            ],
        )?;
        Ok(())
    }

    /// All of a member's step reports, in the order they were reported.
    pub fn step_reports(&self, member_no: &str) -> Result<Vec<StoredStepReport>> {
        let mut stmt = self.conn.prepare(
            "SELECT day, reported_at, steps FROM step_reports WHERE member_no = ?1
             ORDER BY reported_at, day",
        )?;
        let rows = stmt
            .query_map([member_no], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(day, at, steps)| {
                Ok(StoredStepReport {
                    day: day.parse()?,
                    reported_at: DateTime::parse_from_rfc3339(&at)?,
                    steps,
                })
            })
            .collect()
    }

    /// Each day's count (the highest report) for a member.
    pub fn step_days(&self, member_no: &str) -> Result<BTreeMap<NaiveDate, u32>> {
        let mut out = BTreeMap::new();
        for r in self.step_reports(member_no)? {
            let e = out.entry(r.day).or_insert(0);
            *e = (*e).max(r.steps);
        }
        Ok(out)
    }

    /// Runs `f` inside one transaction (for bulk loads such as the demo data).
    pub fn in_transaction<T>(&mut self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match f(self) {
            Ok(v) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                self.conn.execute_batch("ROLLBACK")?;
                Err(e)
            }
        }
    }
}

/// Creates a missing database file readable and writable by its owner only (0600 on Unix):
/// it will hold the terminal's secret key. SQLite gives the WAL and shared-memory files the
/// same permissions.
/// A database file that is not an intact SQLite database: refused at start, and left exactly
/// as it is so that it can be examined or restored.
#[derive(Debug, thiserror::Error)]
#[error(
    "단말기 데이터베이스 파일이 손상되었습니다({path}). 파일은 그대로 두었습니다. 단말기를 \
     쓰지 마시고 팔팔 지원팀에 연락해 백업에서 복원하세요. / the terminal database {path} is \
     damaged ({detail}); it was left untouched. Stop using this terminal and call Palpal \
     support to restore it from a backup."
)]
pub struct DamagedDatabase {
    /// The file.
    pub path: String,
    /// What SQLite found.
    pub detail: String,
}

/// Whether `error` (from any [`Store`] call) is the disk, or the database, being full: the
/// write was not made, what was committed before stands, and it works again once there is
/// room. The same check as the central server's SQLite store.
pub use sqlite_file::is_disk_full;

/// `PRAGMA quick_check` before anything is written: a file that is not SQLite, or whose pages
/// are damaged, is refused with [`DamagedDatabase`] instead of being migrated or written to.
fn check_intact(conn: &Connection, path: &Path) -> Result<()> {
    sqlite_file::quick_check(conn).map_err(|detail| {
        DamagedDatabase {
            path: path.display().to_string(),
            detail,
        }
        .into()
    })
}

/// Migration 8's own step: the signing key of a provisioned terminal goes to its file before
/// its column is dropped (the database overwrites the dropped bytes: `secure_delete`).
fn move_signing_key(tx: &rusqlite::Transaction<'_>, db: &Path) -> Result<()> {
    let key: Option<Vec<u8>> = tx
        .query_row(
            "SELECT secret_key FROM terminal_identity WHERE only_row = 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(key) = key {
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| anyhow::anyhow!("the stored secret key is not 32 bytes"))?;
        secrets::write(db, secrets::SIGNING_KEY, &key, false)
            .context("moving the terminal's signing key to its own file")?;
    }
    Ok(())
}

fn create_private(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating the database {}", path.display())),
    }
}

fn residency_name(r: Residency) -> &'static str {
    match r {
        Residency::Lives => "lives",
        Residency::Works => "works",
        Residency::Studies => "studies",
        Residency::Outside => "outside",
    }
}

#[cfg(test)]
mod tests {
    /// A real full disk: a 1 MiB tmpfs, when this process may mount one (root, as in CI);
    /// otherwise SQLite's `max_page_count`, which fails writes with the same SQLITE_FULL.
    #[test]
    fn a_full_disk_refuses_the_new_write_and_keeps_everything_before() {
        struct Mounted(std::path::PathBuf, bool);
        impl Drop for Mounted {
            fn drop(&mut self) {
                if self.1 {
                    let _ = std::process::Command::new("umount").arg(&self.0).status();
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::create_dir(&small).unwrap();
        let real = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&small)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let _mounted = Mounted(small.clone(), real);
        eprintln!(
            "full disk: {}",
            if real {
                "a 1 MiB tmpfs"
            } else {
                "max_page_count"
            }
        );
        // Room to give back later: a filler file on the same small disk.
        let filler = small.join("filler");
        std::fs::write(&filler, vec![0u8; 200 * 1024]).unwrap();
        let path = small.join("t.sqlite");
        let store = Store::open(&path).unwrap();
        if !real {
            store
                .conn
                .pragma_update(None, "max_page_count", 200)
                .unwrap();
        }
        let at = DateTime::parse_from_rfc3339("2025-12-03T10:00:00+09:00").unwrap();
        let payload = sync_protocol::wire::OpPayload::Void(sync_protocol::wire::VoidPayload {
            hold_op_id: "걸".repeat(600),
            voided_at: "2025-12-03T10:00:00+09:00".to_owned(),
        });
        let mut accepted = 0usize;
        let error = loop {
            match store.queue_operation(&format!("op-{accepted:06}"), &payload, at) {
                Ok(_) => accepted += 1,
                Err(e) => break e,
            }
            assert!(accepted < 100_000, "the disk never filled");
        };
        assert!(is_disk_full(&error), "{error:#}");
        assert!(accepted > 10, "{accepted}");
        // Nothing accepted before is lost, and the file is sound.
        assert_eq!(store.outbox_queued().unwrap(), accepted as i64);
        assert_eq!(store.integrity_check().unwrap(), "ok");
        // Room again: the write goes through, and everything is there after reopening.
        if real {
            std::fs::remove_file(&filler).unwrap();
        } else {
            store
                .conn
                .pragma_update(None, "max_page_count", 100_000)
                .unwrap();
        }
        store.queue_operation("op-after", &payload, at).unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.outbox_queued().unwrap(), accepted as i64 + 1);
        assert_eq!(store.integrity_check().unwrap(), "ok");
    }

    #[test]
    fn a_damaged_file_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        // Not a database at all.
        let garbage = dir.path().join("garbage.sqlite");
        let bytes: Vec<u8> = (0..8192u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(&garbage, &bytes).unwrap();
        let error = Store::open(&garbage).err().unwrap();
        assert!(
            error.downcast_ref::<DamagedDatabase>().is_some(),
            "{error:#}"
        );
        assert!(error
            .to_string()
            .starts_with("단말기 데이터베이스 파일이 손상되었습니다"));
        assert_eq!(std::fs::read(&garbage).unwrap(), bytes);
        assert!(!dir.path().join("garbage.sqlite-wal").exists());

        // A real database with a page overwritten in the middle.
        let damaged = dir.path().join("damaged.sqlite");
        {
            let mut store = Store::open(&damaged).unwrap();
            store
                .in_transaction(|s| {
                    for i in 0..400 {
                        s.set_setting(&format!("key-{i}"), &"x".repeat(300))?;
                    }
                    Ok(())
                })
                .unwrap();
            store
                .conn
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;")
                .unwrap();
        }
        let mut before = std::fs::read(&damaged).unwrap();
        assert!(before.len() > 4096 * 8, "{} bytes", before.len());
        before[4096 * 5..4096 * 6].fill(0xA5);
        std::fs::write(&damaged, &before).unwrap();
        let error = Store::open(&damaged).err().unwrap();
        assert!(
            error.downcast_ref::<DamagedDatabase>().is_some(),
            "{error:#}"
        );
        assert_eq!(std::fs::read(&damaged).unwrap(), before);
    }

    use super::*;

    fn enrollment() -> Enrollment {
        Enrollment {
            name: "김영희".to_owned(),
            birth_date: "1950-03-01".parse().unwrap(),
            phone: "01012345678".to_owned(),
            residency: Residency::Lives,
            age: 75,
        }
    }

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn enrollment_is_durable_queued_once_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("terminal.sqlite");
        let when = at("2025-12-01T10:00:00+09:00");
        {
            let mut s = Store::open(&path).unwrap();
            let a = s
                .record_enrollment("op-1", "jongno", &enrollment(), when)
                .unwrap();
            let again = s
                .record_enrollment("op-1", "jongno", &enrollment(), when)
                .unwrap();
            assert_eq!(a, again);
            assert_eq!(a.local_no, 1);
            assert_eq!(a.age, 75);
            assert_eq!(s.outbox_queued().unwrap(), 1);
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(s.outbox_queued().unwrap(), 1);
        let list = s.enrollments_on("2025-12-01".parse().unwrap()).unwrap();
        assert_eq!(list.len(), 1);
        // Only the masked name in the clear; the rest is sealed until the server has it.
        assert_eq!(list[0].name, "김*희");
        let personal = s.personal_data("op-1").unwrap().unwrap();
        assert_eq!(
            (personal.name.as_str(), personal.phone.as_str()),
            ("김영희", "01012345678")
        );
        assert!(s
            .enrollments_on("2025-12-02".parse().unwrap())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_database_from_a_newer_program_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("terminal.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = Store::open(&path).err().unwrap();
        assert!(format!("{err:#}").contains("newer"), "{err:#}");
        let c = Connection::open(&path).unwrap();
        let v: u32 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION + 1);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("terminal.sqlite");
        std::fs::write(&path, b"this is not sqlite, and it must survive").unwrap();
        assert!(Store::open(&path).is_err());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"this is not sqlite, and it must survive"
        );
    }

    #[test]
    fn step_days_take_the_highest_report_and_ignore_resends() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.sqlite")).unwrap();
        s.put_member(&Member {
            member_no: "M1".to_owned(),
            name: "박철수".to_owned(),
            birth_date: "1952-05-05".parse().unwrap(),
            phone: "01000000000".to_owned(),
        })
        .unwrap();
        let day: NaiveDate = "2025-12-01".parse().unwrap();
        for (t, steps) in [
            ("2025-12-01T12:00:00+09:00", 6_000),
            ("2025-12-01T20:00:00+09:00", 9_000),
            ("2025-12-01T20:00:00+09:00", 9_000),
            ("2025-12-01T18:00:00+09:00", 7_000),
        ] {
            s.add_step_report(
                "M1",
                &StoredStepReport {
                    day,
                    reported_at: at(t),
                    steps,
                },
            )
            .unwrap();
        }
        assert_eq!(s.step_reports("M1").unwrap().len(), 3);
        assert_eq!(s.step_days("M1").unwrap()[&day], 9_000);
        assert_eq!(s.member("M1").unwrap().unwrap().name, "박철수");
        assert!(s.member("M2").unwrap().is_none());
    }
}
