//! The points policies in the SQLite store: the `policies` table (migration 16, seeded with
//! the published files), its version (raised by every change, so that each connection reads
//! the set again only when it changed), publishing and cancelling, each audited in its own
//! transaction. The rules are `crate::policies`'; `postgres::policies` is the same in
//! PostgreSQL's SQL.

use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension as _};

use super::console::{audit, json_of, parse_stamp, stamp, write_tx, Actor, AuditAction, NewAudit};
use crate::policies::{self, Candidate, InForce, PolicyRefusal, PolicyRow};

/// Migration 16's SQL (the seed rows follow it, [`seed`]).
pub const SQLITE_MIGRATION: &str = "CREATE TABLE policies (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        text TEXT NOT NULL,
        effective_from TEXT NOT NULL,
        effective_until TEXT,
        published_at TEXT,
        published_by TEXT,
        cancelled_at TEXT,
        cancelled_by TEXT
    );
    CREATE UNIQUE INDEX policies_live_name ON policies (name) WHERE cancelled_at IS NULL;
    CREATE TABLE policy_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    );
    INSERT INTO policy_version (id, version) VALUES (1, 0);";

const COLUMNS: &str = "id, name, text, effective_from, effective_until, published_at, \
                       published_by, cancelled_at, cancelled_by";

/// Migration 16's own step: the published files, when the table is empty.
pub fn seed(tx: &Connection) -> anyhow::Result<()> {
    let rows: i64 = tx.query_row("SELECT count(*) FROM policies", [], |row| row.get(0))?;
    if rows > 0 {
        return Ok(());
    }
    for row in policies::seed_rows()? {
        tx.execute(
            "INSERT INTO policies (name, text, effective_from, effective_until)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                row.name,
                row.text,
                policies::ymd(row.effective_from),
                row.effective_until.map(policies::ymd)
            ],
        )?;
    }
    Ok(())
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        id: row.get(0)?,
        name: row.get(1)?,
        text: row.get(2)?,
        effective_from: row.get(3)?,
        effective_until: row.get(4)?,
        published_at: row.get(5)?,
        published_by: row.get(6)?,
        cancelled_at: row.get(7)?,
        cancelled_by: row.get(8)?,
    })
}

/// A row as both engines store it (text columns).
pub(crate) struct RawRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) text: String,
    pub(crate) effective_from: String,
    pub(crate) effective_until: Option<String>,
    pub(crate) published_at: Option<String>,
    pub(crate) published_by: Option<String>,
    pub(crate) cancelled_at: Option<String>,
    pub(crate) cancelled_by: Option<String>,
}

impl RawRow {
    pub(crate) fn parse(self) -> anyhow::Result<PolicyRow> {
        let day = |text: &str| super::parse_ymd(text);
        Ok(PolicyRow {
            id: self.id,
            name: self.name,
            text: self.text,
            effective_from: day(&self.effective_from)?,
            effective_until: self.effective_until.as_deref().map(day).transpose()?,
            published_at: self.published_at.as_deref().map(parse_stamp).transpose()?,
            published_by: self.published_by,
            cancelled_at: self.cancelled_at.as_deref().map(parse_stamp).transpose()?,
            cancelled_by: self.cancelled_by,
        })
    }
}

/// Every policy, cancelled ones too, in the order published.
pub fn rows(conn: &Connection) -> anyhow::Result<Vec<PolicyRow>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM policies ORDER BY id"))?;
    let raw = stmt
        .query_map([], read_row)?
        .collect::<Result<Vec<_>, _>>()?;
    raw.into_iter().map(RawRow::parse).collect()
}

fn version(conn: &Connection) -> anyhow::Result<i64> {
    Ok(conn
        .prepare_cached("SELECT version FROM policy_version WHERE id = 1")?
        .query_row([], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The set in force: `cached` if the table's version is still its own, else read again (and
/// kept in `cached`).
pub fn refresh(conn: &Connection, cached: &mut Arc<InForce>) -> anyhow::Result<Arc<InForce>> {
    let now = version(conn).context("reading the policies' version")?;
    if now != cached.version {
        *cached = Arc::new(InForce::from_rows(now, &rows(conn)?)?);
    }
    Ok(Arc::clone(cached))
}

/// The set in force, as a list for an audit entry: `name (from..until)`, by first day.
pub(crate) fn listed(rows: &[PolicyRow]) -> String {
    let mut live: Vec<&PolicyRow> = rows.iter().filter(|r| r.cancelled_at.is_none()).collect();
    live.sort_by_key(|r| r.effective_from);
    live.iter()
        .map(|r| {
            format!(
                "{} ({}..{})",
                r.name,
                policies::ymd(r.effective_from),
                r.effective_until.map(policies::ymd).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The audit entry's after of a publish: the set then, the policy and its file's SHA-256.
pub(crate) fn published_after(all: &[PolicyRow], row: &PolicyRow) -> String {
    use sha2::Digest as _;
    let sha = crate::signing::hex(&sha2::Sha256::digest(row.text.as_bytes()));
    json_of(&[
        ("policies", &listed(all)),
        ("name", &row.name),
        ("effective_from", &policies::ymd(row.effective_from)),
        (
            "effective_until",
            &row.effective_until.map(policies::ymd).unwrap_or_default(),
        ),
        ("sha256", &sha),
    ])
}

/// Publishes `candidate` if the rules allow it on `now`'s day (Asia/Seoul); audited as `by`'s.
pub fn publish(
    conn: &mut Connection,
    candidate: &Candidate,
    by: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<Result<PolicyRow, PolicyRefusal>> {
    let tx = write_tx(conn)?;
    let before = rows(&tx)?;
    let today = points_core::kst_day(now);
    if let Err(refusal) = policies::check_publish(&before, &candidate.policy, today) {
        return Ok(Err(refusal));
    }
    let policy = &candidate.policy;
    tx.execute(
        "INSERT INTO policies (name, text, effective_from, effective_until, published_at,
                               published_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            policy.name(),
            candidate.text,
            policies::ymd(policy.effective_from()),
            policy.effective_until().map(policies::ymd),
            stamp(now),
            by.name
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "UPDATE policy_version SET version = version + 1 WHERE id = 1",
        [],
    )?;
    let after = rows(&tx)?;
    let row = after
        .iter()
        .find(|r| r.id == id)
        .cloned()
        .context("the policy just published")?;
    audit(
        &tx,
        &NewAudit {
            actor: by,
            action: AuditAction::PolicyPublished,
            target: &row.name,
            before: Some(json_of(&[("policies", &listed(&before))])),
            after: Some(published_after(&after, &row)),
        },
        now,
    )?;
    tx.commit()?;
    Ok(Ok(row))
}

/// Cancels the policy in force named `name` if it has not started on `now`'s day; audited.
pub fn cancel(
    conn: &mut Connection,
    name: &str,
    by: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<Result<PolicyRow, PolicyRefusal>> {
    let tx = write_tx(conn)?;
    let before = rows(&tx)?;
    let row = match policies::check_cancel(&before, name, points_core::kst_day(now)) {
        Ok(row) => row.clone(),
        Err(refusal) => return Ok(Err(refusal)),
    };
    tx.execute(
        "UPDATE policies SET cancelled_at = ?1, cancelled_by = ?2 WHERE id = ?3",
        params![stamp(now), by.name, row.id],
    )?;
    tx.execute(
        "UPDATE policy_version SET version = version + 1 WHERE id = 1",
        [],
    )?;
    let after = rows(&tx)?;
    let cancelled = after
        .iter()
        .find(|r| r.id == row.id)
        .cloned()
        .context("the policy just cancelled")?;
    audit(
        &tx,
        &NewAudit {
            actor: by,
            action: AuditAction::PolicyCancelled,
            target: &row.name,
            before: Some(published_after(&before, &row)),
            after: Some(json_of(&[
                ("policies", &listed(&after)),
                ("cancelled_at", &stamp(now)),
            ])),
        },
        now,
    )?;
    tx.commit()?;
    Ok(Ok(cancelled))
}
