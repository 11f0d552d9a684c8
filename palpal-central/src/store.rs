//! The server's storage: the [`Store`] interface the HTTP layer and the writer use, and
//! [`SqliteStore`], its SQLite implementation (WAL, `synchronous=FULL`, migrations by
//! `PRAGMA user_version`). All SQL lives in this module, so that a PostgreSQL store can follow
//! by implementing the same trait.
//!
//! Writes arrive in groups ([`Store::commit_group`]): one transaction per group, one savepoint
//! per request inside it, so a refused request leaves nothing behind and the whole group is
//! made durable by a single commit.

use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use points_core::{Ledger, PolicySet, StepReport};
use rusqlite::{params, Connection, DropBehavior, OptionalExtension as _};
use sha2::{Digest as _, Sha256};

use crate::wire::{
    EnrollmentPayload, OpResult, OpStatus, Operation, RejectReason, Role, StepReportPayload,
};

/// The schema version this server writes.
pub const SCHEMA_VERSION: u32 = 1;

/// How long a seen nonce is remembered, in seconds. It must be at least twice the allowed clock
/// skew so that a request cannot be replayed while its timestamp is still acceptable.
pub const NONCE_RETENTION_SECONDS: i64 = 900;

const MIGRATIONS: &[&str] = &[
    // 1: terminals, nonces, operations, members, step reports, ledger entries.
    "CREATE TABLE terminals (
        id INTEGER PRIMARY KEY,
        site TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('kiosk', 'counter')),
        code_hash BLOB UNIQUE,
        name TEXT,
        public_key BLOB,
        created_at TEXT NOT NULL,
        enrolled_at TEXT,
        revoked_at TEXT
    );
    CREATE TABLE nonces (
        terminal_id INTEGER NOT NULL,
        nonce TEXT NOT NULL,
        seen_at INTEGER NOT NULL,
        PRIMARY KEY (terminal_id, nonce)
    ) WITHOUT ROWID;
    CREATE INDEX nonces_seen_at ON nonces (seen_at);
    CREATE TABLE operations (
        op_id TEXT PRIMARY KEY,
        terminal_id INTEGER NOT NULL REFERENCES terminals (id),
        kind TEXT NOT NULL,
        payload_sha256 BLOB NOT NULL,
        result TEXT NOT NULL,
        received_at TEXT NOT NULL
    );
    CREATE TABLE members (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        birth_date TEXT NOT NULL,
        phone TEXT NOT NULL,
        terminal_id INTEGER NOT NULL REFERENCES terminals (id),
        op_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (name, birth_date, phone)
    );
    CREATE TABLE step_reports (
        id INTEGER PRIMARY KEY,
        member_id INTEGER NOT NULL REFERENCES members (id),
        day TEXT NOT NULL,
        steps INTEGER NOT NULL,
        reported_at TEXT NOT NULL,
        terminal_id INTEGER NOT NULL REFERENCES terminals (id),
        op_id TEXT NOT NULL UNIQUE
    );
    CREATE INDEX step_reports_member ON step_reports (member_id, id);
    CREATE TABLE ledger_entries (
        id INTEGER PRIMARY KEY,
        member_id INTEGER NOT NULL REFERENCES members (id),
        kind TEXT NOT NULL,
        day TEXT NOT NULL,
        points INTEGER NOT NULL,
        op_id TEXT NOT NULL
    );
    CREATE INDEX ledger_entries_member ON ledger_entries (member_id);",
];

/// A terminal as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    /// The number behind the `T-000001` label.
    pub id: i64,
    /// The site it belongs to.
    pub site: String,
    /// What it may do.
    pub role: Role,
    /// The name it enrolled with; `None` until enrolled.
    pub name: Option<String>,
    /// Its Ed25519 public key; `None` until enrolled.
    pub public_key: Option<[u8; 32]>,
    /// Whether `terminal revoke` locked it out.
    pub revoked: bool,
}

impl Terminal {
    /// The label used on the wire and in the command line, such as `T-000001`.
    pub fn label(&self) -> String {
        terminal_label(self.id)
    }
}

/// The label of terminal number `id`.
pub fn terminal_label(id: i64) -> String {
    format!("T-{id:06}")
}

/// The number behind a label such as `T-000001`.
pub fn parse_terminal_label(label: &str) -> Option<i64> {
    let digits = label.trim().strip_prefix("T-")?;
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The member number of member `id`, such as `PP-00000001`.
pub fn member_number(id: i64) -> String {
    format!("PP-{id:08}")
}

fn parse_member_number(number: &str) -> Option<i64> {
    let digits = number.trim().strip_prefix("PP-")?;
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One request for the writer.
#[derive(Debug, Clone)]
pub enum Write {
    /// Bind a public key to the terminal whose one-time code hashes to `code_hash`.
    Enroll {
        /// SHA-256 of the normalised code.
        code_hash: [u8; 32],
        /// The terminal's Ed25519 public key.
        public_key: [u8; 32],
        /// The terminal's name.
        name: String,
    },
    /// Apply a signed batch from an authenticated terminal.
    Sync {
        /// The terminal (its signature was already checked).
        terminal: i64,
        /// The request's nonce, remembered to refuse a replay.
        nonce: String,
        /// The operations, in order.
        operations: Vec<Operation>,
    },
}

/// What the writer did with one [`Write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteReply {
    /// The terminal is enrolled.
    Enrolled(Terminal),
    /// The batch was applied; one result per operation.
    Synced(Vec<OpResult>),
    /// Nothing was applied.
    Refused(Refusal),
}

/// Why a whole request was refused by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No terminal has this enrollment code, or it was used already.
    BadCode,
    /// The terminal does not exist or never enrolled.
    UnknownTerminal,
    /// The terminal was revoked.
    RevokedTerminal,
    /// The nonce was seen before.
    ReplayedNonce,
}

/// The server's storage, as the writer and the request handlers see it.
pub trait Store: Send {
    /// The schema version of the database.
    fn schema_version(&mut self) -> anyhow::Result<u32>;
    /// A terminal by number.
    fn terminal(&mut self, id: i64) -> anyhow::Result<Option<Terminal>>;
    /// All terminals, by number.
    fn terminals(&mut self) -> anyhow::Result<Vec<Terminal>>;
    /// Creates a terminal waiting for enrollment with the code that hashes to `code_hash`.
    fn add_terminal(
        &mut self,
        site: &str,
        role: Role,
        code_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Terminal>;
    /// Locks a terminal out; `false` if there is no such terminal.
    fn revoke_terminal(&mut self, id: i64, now: DateTime<Utc>) -> anyhow::Result<bool>;
    /// Applies a group of writes in one transaction, each write all or nothing, and returns a
    /// reply per write in order. An error means nothing of the group was committed.
    fn commit_group(
        &mut self,
        writes: &[Write],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<WriteReply>>;
}

/// Opens stores on the same database: one for the writer, more for concurrent reads.
pub trait Backend: Send + Sync + 'static {
    /// A new connection to the database.
    fn open(&self) -> anyhow::Result<Box<dyn Store>>;
}

/// SQLite databases in a file.
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    path: std::path::PathBuf,
    policies: Arc<PolicySet>,
}

impl SqliteBackend {
    /// The database at `path`, rated with `policies`.
    pub fn new(path: impl Into<std::path::PathBuf>, policies: Arc<PolicySet>) -> SqliteBackend {
        SqliteBackend {
            path: path.into(),
            policies,
        }
    }
}

impl Backend for SqliteBackend {
    fn open(&self) -> anyhow::Result<Box<dyn Store>> {
        Ok(Box::new(SqliteStore::open(
            &self.path,
            Arc::clone(&self.policies),
        )?))
    }
}

/// The policies published in `policies/`, compiled in.
pub fn published_policies() -> anyhow::Result<PolicySet> {
    let texts = [
        include_str!("../../policies/seoul-2023.toml"),
        include_str!("../../policies/seoul-2025-03.toml"),
        include_str!("../../policies/seoul-2025-12.toml"),
    ];
    let policies = texts
        .iter()
        .map(|text| points_core::PointsPolicy::from_toml_str(text))
        .collect::<Result<Vec<_>, _>>()
        .context("정책 파일을 읽지 못했습니다 / could not read a published policy")?;
    PolicySet::new(policies).context("정책이 겹칩니다 / the published policies overlap")
}

/// A connection to the server's SQLite database.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    policies: Arc<PolicySet>,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &std::path::Path, policies: Arc<PolicySet>) -> anyhow::Result<SqliteStore> {
        let conn = Connection::open(path)
            .with_context(|| format!("데이터베이스를 열지 못했습니다 / could not open {path:?}"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .context("setting busy_timeout")?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .context("switching to WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")
            .context("setting synchronous=FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .context("enabling foreign keys")?;
        let mut store = SqliteStore { conn, policies };
        store.migrate().context("migrating the database")?;
        Ok(store)
    }

    fn migrate(&mut self) -> anyhow::Result<()> {
        let latest = u32::try_from(MIGRATIONS.len())?;
        let current: u32 = self
            .conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if current == latest {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: u32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version > latest {
            anyhow::bail!(
                "데이터베이스가 이 서버보다 새 버전입니다 (스키마 {version}). 서버를 업데이트해 주세요. / \
                 the database has schema {version}, newer than this server's {latest}; update the server"
            );
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)
                .with_context(|| format!("applying migration {}", index + 1))?;
            tx.pragma_update(None, "user_version", i64::try_from(index + 1)?)?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn read_terminal(row: &rusqlite::Row<'_>) -> rusqlite::Result<Terminal> {
    let role: String = row.get("role")?;
    let key: Option<Vec<u8>> = row.get("public_key")?;
    let revoked: Option<String> = row.get("revoked_at")?;
    Ok(Terminal {
        id: row.get("id")?,
        site: row.get("site")?,
        role: Role::parse(&role).unwrap_or(Role::Counter),
        name: row.get("name")?,
        public_key: key.and_then(|k| k.try_into().ok()),
        revoked: revoked.is_some(),
    })
}

const TERMINAL_COLUMNS: &str = "id, site, role, name, public_key, revoked_at";

fn terminal_in(conn: &Connection, id: i64) -> rusqlite::Result<Option<Terminal>> {
    conn.query_row(
        &format!("SELECT {TERMINAL_COLUMNS} FROM terminals WHERE id = ?1"),
        [id],
        read_terminal,
    )
    .optional()
}

impl Store for SqliteStore {
    fn schema_version(&mut self) -> anyhow::Result<u32> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))?)
    }

    fn terminal(&mut self, id: i64) -> anyhow::Result<Option<Terminal>> {
        Ok(terminal_in(&self.conn, id)?)
    }

    fn terminals(&mut self) -> anyhow::Result<Vec<Terminal>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {TERMINAL_COLUMNS} FROM terminals ORDER BY id"
        ))?;
        let rows = stmt.query_map([], read_terminal)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn add_terminal(
        &mut self,
        site: &str,
        role: Role,
        code_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Terminal> {
        self.conn.execute(
            "INSERT INTO terminals (site, role, code_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![site, role.as_str(), &code_hash[..], now.to_rfc3339()],
        )?;
        let id = self.conn.last_insert_rowid();
        Ok(Terminal {
            id,
            site: site.to_owned(),
            role,
            name: None,
            public_key: None,
            revoked: false,
        })
    }

    fn revoke_terminal(&mut self, id: i64, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let changed = self.conn.execute(
            "UPDATE terminals SET revoked_at = COALESCE(revoked_at, ?2), code_hash = NULL
             WHERE id = ?1",
            params![id, now.to_rfc3339()],
        )?;
        Ok(changed == 1)
    }

    fn commit_group(
        &mut self,
        writes: &[Write],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<WriteReply>> {
        let policies = Arc::clone(&self.policies);
        let mut tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .context("starting a write transaction")?;
        tx.execute(
            "DELETE FROM nonces WHERE seen_at < ?1",
            [now.timestamp() - NONCE_RETENTION_SECONDS],
        )
        .context("forgetting old nonces")?;
        let mut replies = Vec::with_capacity(writes.len());
        for write in writes {
            let mut sp = tx.savepoint().context("starting a savepoint")?;
            let reply = match write {
                Write::Enroll {
                    code_hash,
                    public_key,
                    name,
                } => enroll(&sp, code_hash, public_key, name, now),
                Write::Sync {
                    terminal,
                    nonce,
                    operations,
                } => sync(&sp, &policies, *terminal, nonce, operations, now),
            }?;
            if matches!(reply, WriteReply::Refused(_)) {
                sp.set_drop_behavior(DropBehavior::Rollback);
                sp.finish().context("rolling back a refused request")?;
            } else {
                sp.commit().context("releasing a savepoint")?;
            }
            replies.push(reply);
        }
        tx.commit().context("committing a write group")?;
        Ok(replies)
    }
}

fn enroll(
    tx: &Connection,
    code_hash: &[u8; 32],
    public_key: &[u8; 32],
    name: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<WriteReply> {
    let found: Option<i64> = tx
        .query_row(
            "SELECT id FROM terminals
             WHERE code_hash = ?1 AND enrolled_at IS NULL AND revoked_at IS NULL",
            [&code_hash[..]],
            |row| row.get(0),
        )
        .optional()?;
    let Some(id) = found else {
        return Ok(WriteReply::Refused(Refusal::BadCode));
    };
    tx.execute(
        "UPDATE terminals SET code_hash = NULL, public_key = ?2, name = ?3, enrolled_at = ?4
         WHERE id = ?1",
        params![id, &public_key[..], name, now.to_rfc3339()],
    )?;
    match terminal_in(tx, id)? {
        Some(terminal) => Ok(WriteReply::Enrolled(terminal)),
        None => anyhow::bail!("terminal {id} vanished while enrolling"),
    }
}

fn sync(
    tx: &Connection,
    policies: &PolicySet,
    terminal: i64,
    nonce: &str,
    operations: &[Operation],
    now: DateTime<Utc>,
) -> anyhow::Result<WriteReply> {
    let Some(terminal) = terminal_in(tx, terminal)? else {
        return Ok(WriteReply::Refused(Refusal::UnknownTerminal));
    };
    if terminal.public_key.is_none() {
        return Ok(WriteReply::Refused(Refusal::UnknownTerminal));
    }
    if terminal.revoked {
        return Ok(WriteReply::Refused(Refusal::RevokedTerminal));
    }
    let fresh = tx.execute(
        "INSERT OR IGNORE INTO nonces (terminal_id, nonce, seen_at) VALUES (?1, ?2, ?3)",
        params![terminal.id, nonce, now.timestamp()],
    )?;
    if fresh == 0 {
        return Ok(WriteReply::Refused(Refusal::ReplayedNonce));
    }
    let mut results = Vec::with_capacity(operations.len());
    for op in operations {
        results.push(
            apply_operation(tx, policies, &terminal, op, now)
                .with_context(|| format!("applying operation {:?}", op.op_id))?,
        );
    }
    Ok(WriteReply::Synced(results))
}

fn payload_hash(op: &Operation) -> anyhow::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    hasher.update(op.kind.as_bytes());
    hasher.update(b"\n");
    // serde_json's maps are ordered by key, so equal payloads serialize to equal bytes.
    hasher.update(serde_json::to_vec(&op.payload)?);
    Ok(hasher.finalize().into())
}

fn apply_operation(
    tx: &Connection,
    policies: &PolicySet,
    terminal: &Terminal,
    op: &Operation,
    now: DateTime<Utc>,
) -> anyhow::Result<OpResult> {
    if op.op_id.is_empty() || op.op_id.len() > 128 {
        return Ok(OpResult::rejected(&op.op_id, RejectReason::InvalidPayload));
    }
    let hash = payload_hash(op)?;
    let earlier: Option<(i64, Vec<u8>, String)> = tx
        .query_row(
            "SELECT terminal_id, payload_sha256, result FROM operations WHERE op_id = ?1",
            [&op.op_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    if let Some((earlier_terminal, earlier_hash, result)) = earlier {
        if earlier_terminal != terminal.id || earlier_hash[..] != hash[..] {
            return Ok(OpResult::rejected(&op.op_id, RejectReason::OpIdReused));
        }
        let mut result: OpResult =
            serde_json::from_str(&result).context("reading a stored operation result")?;
        result.status = OpStatus::Duplicate;
        result.points = None;
        result.ignored = None;
        return Ok(result);
    }
    let result = match op.kind.as_str() {
        "enrollment" if terminal.role != Role::Kiosk => {
            OpResult::rejected(&op.op_id, RejectReason::Role)
        }
        "enrollment" => match serde_json::from_value::<EnrollmentPayload>(op.payload.clone()) {
            Ok(payload) => enroll_member(tx, terminal, &op.op_id, &payload, now)?,
            Err(_) => OpResult::rejected(&op.op_id, RejectReason::InvalidPayload),
        },
        "step_report" => match serde_json::from_value::<StepReportPayload>(op.payload.clone()) {
            Ok(payload) => record_steps(tx, policies, terminal, &op.op_id, &payload)?,
            Err(_) => OpResult::rejected(&op.op_id, RejectReason::InvalidPayload),
        },
        _ => OpResult::rejected(&op.op_id, RejectReason::UnknownKind),
    };
    if result.status != OpStatus::Rejected {
        // Rejections are not remembered: the same operation sent again is judged again and,
        // being the same, rejected again.
        tx.execute(
            "INSERT INTO operations (op_id, terminal_id, kind, payload_sha256, result, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                op.op_id,
                terminal.id,
                op.kind,
                &hash[..],
                serde_json::to_string(&result)?,
                now.to_rfc3339()
            ],
        )?;
    }
    Ok(result)
}

fn kst_today(now: DateTime<Utc>) -> NaiveDate {
    points_core::kst_day(now.fixed_offset())
}

fn enroll_member(
    tx: &Connection,
    terminal: &Terminal,
    op_id: &str,
    payload: &EnrollmentPayload,
    now: DateTime<Utc>,
) -> anyhow::Result<OpResult> {
    let name = payload.name.trim();
    let phone: String = payload.phone.chars().filter(char::is_ascii_digit).collect();
    let birth = NaiveDate::parse_from_str(payload.birth_date.trim(), "%Y-%m-%d").ok();
    let valid_birth = birth.filter(|b| {
        *b <= kst_today(now) && *b >= NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(*b)
    });
    let (Some(birth), false, 9..=11) = (valid_birth, name.is_empty(), phone.len()) else {
        return Ok(OpResult::rejected(op_id, RejectReason::InvalidPayload));
    };
    if name.chars().count() > 100 {
        return Ok(OpResult::rejected(op_id, RejectReason::InvalidPayload));
    }
    let birth = birth.format("%Y-%m-%d").to_string();
    let existing: Option<i64> = tx
        .query_row(
            "SELECT id FROM members WHERE name = ?1 AND birth_date = ?2 AND phone = ?3",
            params![name, birth, phone],
            |row| row.get(0),
        )
        .optional()?;
    let (id, status) = match existing {
        Some(id) => (id, OpStatus::Duplicate),
        None => {
            tx.execute(
                "INSERT INTO members (name, birth_date, phone, terminal_id, op_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, birth, phone, terminal.id, op_id, now.to_rfc3339()],
            )?;
            (tx.last_insert_rowid(), OpStatus::Accepted)
        }
    };
    let mut result = OpResult::accepted(op_id);
    result.status = status;
    result.member_number = Some(member_number(id));
    Ok(result)
}

fn record_steps(
    tx: &Connection,
    policies: &PolicySet,
    terminal: &Terminal,
    op_id: &str,
    payload: &StepReportPayload,
) -> anyhow::Result<OpResult> {
    let day = NaiveDate::parse_from_str(payload.day.trim(), "%Y-%m-%d").ok();
    let reported_at = DateTime::<FixedOffset>::parse_from_rfc3339(payload.reported_at.trim()).ok();
    let (Some(day), Some(reported_at)) = (day, reported_at) else {
        return Ok(OpResult::rejected(op_id, RejectReason::InvalidPayload));
    };
    let member = match parse_member_number(&payload.member_number) {
        Some(id) => tx
            .query_row(
                "SELECT id, birth_date FROM members WHERE id = ?1",
                [id],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()?,
        None => None,
    };
    let Some((member_id, birth_date)) = member else {
        return Ok(OpResult::rejected(op_id, RejectReason::UnknownMember));
    };
    let birth_date = NaiveDate::parse_from_str(&birth_date, "%Y-%m-%d")
        .with_context(|| format!("member {member_id} has birth date {birth_date:?}"))?;

    // The ledger is a pure function of the member's reports in the order received, so it is
    // rebuilt from them; the new report then yields exactly the entries it newly earns.
    let mut ledger = Ledger::new(birth_date);
    {
        let mut stmt = tx.prepare_cached(
            "SELECT day, steps, reported_at FROM step_reports WHERE member_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([member_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, u32>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (day, steps, at) = row?;
            let report = StepReport {
                day: NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                    .with_context(|| format!("stored step day {day:?}"))?,
                steps,
                reported_at: DateTime::parse_from_rfc3339(&at)
                    .with_context(|| format!("stored report time {at:?}"))?,
            };
            ledger.apply(policies, &report);
        }
    }
    let report = StepReport {
        reported_at,
        day,
        steps: payload.steps,
    };
    let outcome = ledger.apply(policies, &report);
    tx.execute(
        "INSERT INTO step_reports (member_id, day, steps, reported_at, terminal_id, op_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            member_id,
            day.format("%Y-%m-%d").to_string(),
            payload.steps,
            reported_at.to_rfc3339(),
            terminal.id,
            op_id
        ],
    )?;
    let mut points = 0u64;
    for entry in outcome.entries() {
        tx.execute(
            "INSERT INTO ledger_entries (member_id, kind, day, points, op_id)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                member_id,
                entry.kind.as_str(),
                entry.day.format("%Y-%m-%d").to_string(),
                entry.points,
                op_id
            ],
        )?;
        points += u64::from(entry.points);
    }
    let mut result = OpResult::accepted(op_id);
    result.member_number = Some(member_number(member_id));
    result.points = Some(points);
    result.ignored = outcome.ignored().map(|i| i.as_str().to_owned());
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        assert_eq!(terminal_label(1), "T-000001");
        assert_eq!(parse_terminal_label("T-000001"), Some(1));
        assert_eq!(parse_terminal_label("T-"), None);
        assert_eq!(parse_terminal_label("X-1"), None);
        assert_eq!(member_number(42), "PP-00000042");
        assert_eq!(parse_member_number("PP-00000042"), Some(42));
        assert_eq!(parse_member_number("PP-4x"), None);
    }

    #[test]
    fn the_published_policies_load() -> anyhow::Result<()> {
        let set = published_policies()?;
        assert_eq!(set.policies().len(), 3);
        Ok(())
    }

    #[test]
    fn a_fresh_database_is_at_the_latest_schema() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("central.db");
        let policies = Arc::new(published_policies()?);
        let mut store = SqliteStore::open(&path, Arc::clone(&policies))?;
        assert_eq!(store.schema_version()?, SCHEMA_VERSION);
        drop(store);
        let mut again = SqliteStore::open(&path, policies)?;
        assert_eq!(again.schema_version()?, SCHEMA_VERSION);
        Ok(())
    }
}
