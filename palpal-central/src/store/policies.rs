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

/// A member with step reports, as a re-rating reads them: their sealed record, balance and
/// stored ledger.
pub(crate) struct StoredMember {
    pub(crate) id: i64,
    pub(crate) identity: Vec<u8>,
    pub(crate) sealed: Vec<u8>,
    pub(crate) available: i64,
    pub(crate) ledger: Option<Vec<u8>>,
}

/// What a re-rating found, in its transaction: the report, and each member whose points or
/// ledger change (with whether the ledger does).
pub(crate) struct Rerating {
    pub(crate) report: policies::RerateReport,
    pub(crate) members: Vec<(policies::Rerated, bool)>,
    pub(crate) corrected: Candidate,
}

/// What a re-rating's figures lead to: a preview to show, or an apply confirmed by the
/// preview's digest, for the store to write.
pub(crate) enum Rated {
    Preview(Box<policies::RerateReport>),
    Confirmed(Box<Rerating>),
}

/// Rates every member of `members` (with their `reports`, each in the order received) under
/// the set in force (`rows` at `version`) and with `candidate` in place of its namesake.
/// Without `confirm`, the preview; with it, the re-rating to apply if `confirm` is the
/// digest of these figures, and otherwise [`PolicyRefusal::Stale`] (something changed since
/// the preview).
pub(crate) fn rate_all(
    key: &crate::personal::DataKey,
    version: i64,
    rows: &[PolicyRow],
    candidate: &Candidate,
    members: Vec<StoredMember>,
    reports: std::collections::BTreeMap<i64, Vec<points_core::StepReport>>,
    confirm: Option<&str>,
) -> anyhow::Result<Result<Rated, PolicyRefusal>> {
    let rerating = match rerate_all(key, version, rows, candidate, members, reports)? {
        Ok(rerating) => rerating,
        Err(refusal) => return Ok(Err(refusal)),
    };
    Ok(match confirm {
        None => Ok(Rated::Preview(Box::new(rerating.report))),
        Some(confirm) if confirm == rerating.report.digest => {
            Ok(Rated::Confirmed(Box::new(rerating)))
        }
        Some(_) => Err(PolicyRefusal::Stale),
    })
}

fn rerate_all(
    key: &crate::personal::DataKey,
    version: i64,
    rows: &[PolicyRow],
    candidate: &Candidate,
    members: Vec<StoredMember>,
    mut reports: std::collections::BTreeMap<i64, Vec<points_core::StepReport>>,
) -> anyhow::Result<Result<Rerating, PolicyRefusal>> {
    let (old, corrected) = match policies::check_correction(rows, &candidate.policy) {
        Ok(found) => found,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let in_force = InForce::from_rows(version, rows)?;
    let mut summary = policies::RerateSummary::default();
    let mut changed = Vec::new();
    for member in members {
        let Some(reports) = reports.remove(&member.id) else {
            continue;
        };
        let birth_date = key
            .open(&member.identity, &member.sealed)
            .with_context(|| format!("opening member {}'s sealed record", member.id))?
            .birth_date;
        let history = policies::MemberReports {
            member: member.id,
            birth_date,
            reports,
            available: member.available,
        };
        let rerated = policies::rerate_member(&in_force.set, &corrected, &history);
        summary.add(&rerated, history.reports.len());
        let ledger_changed = member.ledger.as_deref() != Some(&rerated.ledger[..]);
        if rerated.change() != 0 || ledger_changed {
            changed.push((rerated, ledger_changed));
        }
    }
    let points_changed: Vec<policies::Rerated> = changed
        .iter()
        .filter(|(r, _)| r.change() != 0)
        .map(|(r, _)| r.clone())
        .collect();
    let digest = policies::rerate_digest(version, &candidate.text, &summary, &points_changed);
    Ok(Ok(Rerating {
        report: policies::RerateReport {
            name: old.name.clone(),
            old,
            version,
            summary,
            digest,
            applied: false,
        },
        members: changed,
        corrected: candidate.clone(),
    }))
}

/// The audit entry's after of a re-rating: the set then, the corrected policy and its
/// file's SHA-256, and the figures.
pub(crate) fn rerated_after(
    all: &[PolicyRow],
    row: &PolicyRow,
    report: &policies::RerateReport,
) -> String {
    use sha2::Digest as _;
    let sha = crate::signing::hex(&sha2::Sha256::digest(row.text.as_bytes()));
    let s = &report.summary;
    json_of(&[
        ("policies", &listed(all)),
        ("name", &row.name),
        ("effective_from", &policies::ymd(row.effective_from)),
        (
            "effective_until",
            &row.effective_until.map(policies::ymd).unwrap_or_default(),
        ),
        ("sha256", &sha),
        ("members", &s.members.to_string()),
        ("reports", &s.reports.to_string()),
        ("members_changed", &s.changed.to_string()),
        ("increase", &s.increase.to_string()),
        ("decrease", &s.decrease.to_string()),
        ("total_change", &s.total().to_string()),
        ("applied_change", &s.applied().to_string()),
        ("members_short", &s.short.to_string()),
        ("not_recovered", &s.not_recovered.to_string()),
    ])
}

/// The ledger entry kind of a re-rating's adjustments.
pub const RERATE_KIND: &str = "rerate";

/// The operation id of a re-rating's ledger entries: the policies' version it made.
pub(crate) fn rerate_op_id(version: i64) -> String {
    format!("rerate-{version}")
}

/// Previews (`confirm` is `None`: stores nothing) or applies the correction `candidate` of
/// a policy in force, re-rating every member. An apply must bring the preview's digest:
/// if the figures changed since, it is refused and nothing changes. Audited as `by`'s.
pub fn rerate(
    conn: &mut Connection,
    key: &crate::personal::DataKey,
    candidate: &Candidate,
    confirm: Option<&str>,
    by: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<Result<policies::RerateReport, PolicyRefusal>> {
    let tx = write_tx(conn)?;
    let before = rows(&tx)?;
    let version = version(&tx)?;
    let members = tx
        .prepare(
            "SELECT m.id, m.identity, m.sealed, b.credited - b.spent, b.ledger
             FROM members m JOIN balances b ON b.member_id = m.id ORDER BY m.id",
        )?
        .query_map([], |row| {
            Ok(StoredMember {
                id: row.get(0)?,
                identity: row.get(1)?,
                sealed: row.get(2)?,
                available: row.get(3)?,
                ledger: row.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut reports: std::collections::BTreeMap<i64, Vec<points_core::StepReport>> =
        std::collections::BTreeMap::new();
    {
        let mut stmt = tx.prepare(
            "SELECT member_id, day, steps, reported_at FROM step_reports ORDER BY member_id, id",
        )?;
        let mut found = stmt.query([])?;
        while let Some(row) = found.next()? {
            let day: String = row.get(1)?;
            let at: String = row.get(3)?;
            reports
                .entry(row.get(0)?)
                .or_default()
                .push(points_core::StepReport {
                    day: super::parse_ymd(&day)?,
                    steps: row.get(2)?,
                    reported_at: DateTime::parse_from_rfc3339(&at)
                        .with_context(|| format!("stored report time {at:?}"))?,
                });
        }
    }
    let rerating = match rate_all(key, version, &before, candidate, members, reports, confirm)? {
        Ok(Rated::Confirmed(rerating)) => rerating,
        Ok(Rated::Preview(report)) => return Ok(Ok(*report)),
        Err(refusal) => return Ok(Err(refusal)),
    };
    let old = &rerating.report.old.clone();
    tx.execute(
        "UPDATE policies SET cancelled_at = ?1, cancelled_by = ?2 WHERE id = ?3",
        params![stamp(now), by.name, old.id],
    )?;
    let policy = &rerating.corrected.policy;
    tx.execute(
        "INSERT INTO policies (name, text, effective_from, effective_until, published_at,
                               published_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            policy.name(),
            rerating.corrected.text,
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
    let op_id = rerate_op_id(version + 1);
    let today = policies::ymd(points_core::kst_day(now));
    for (member, _) in &rerating.members {
        let adjustment = member.adjustment();
        if adjustment != 0 {
            tx.prepare_cached(
                "INSERT INTO ledger_entries (member_id, kind, day, points, op_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                member.member,
                RERATE_KIND,
                today,
                adjustment,
                op_id
            ])?;
        }
        tx.prepare_cached(
            "UPDATE balances SET credited = credited + ?2, ledger = ?3 WHERE member_id = ?1",
        )?
        .execute(params![member.member, adjustment, member.ledger])?;
        if adjustment != 0 {
            super::touch(&tx, "balance", member.member)?;
        }
    }
    let after = rows(&tx)?;
    let row = after
        .iter()
        .find(|r| r.id == id)
        .cloned()
        .context("the corrected policy")?;
    let mut report = rerating.report;
    report.applied = true;
    audit(
        &tx,
        &NewAudit {
            actor: by,
            action: AuditAction::PolicyRerated,
            target: &row.name,
            before: Some(published_after(&before, old)),
            after: Some(rerated_after(&after, &row, &report)),
        },
        now,
    )?;
    tx.commit()?;
    Ok(Ok(report))
}
