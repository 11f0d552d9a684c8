//! The verdicts, read from the server's database after the day: every confirmed registration
//! there once, points equal to a recomputation from the raw step reports with the policy core,
//! every hold and void answered for.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use anyhow::Context as _;

use points_core::{Ledger, PolicySet, StepReport};
use rusqlite::Connection;

use crate::database::Target;
use crate::day::Day;
use crate::terminal::DriverRecord;

#[derive(Debug, Default, Clone)]
pub struct Verdicts {
    pub registrations_confirmed: u64,
    pub registrations_on_server: u64,
    pub registrations_lost: u64,
    pub registrations_duplicated: u64,
    pub turned_away: BTreeMap<String, u64>,
    pub members_checked: u64,
    pub points_mismatched_members: u64,
    pub points_server: i64,
    pub points_recomputed: u64,
    pub reports_made: u64,
    pub holds_made: u64,
    pub holds_by_status: BTreeMap<String, u64>,
    pub holds_lost: u64,
    pub voids_made: u64,
    pub voids_applied: u64,
    pub redemptions_refused: BTreeMap<String, u64>,
}

/// What the verdicts read from the server's database, the same queries on either engine.
#[derive(Default)]
struct Rows {
    /// The enrollment op id of every member.
    member_ops: HashSet<String>,
    /// Every member's identity and sealed personal data.
    sealed: Vec<(Vec<u8>, Vec<u8>)>,
    /// Points on each member's ledger.
    points: HashMap<u64, i64>,
    /// Every hold: its status and the void that voided it, by op id.
    holds: HashMap<String, (String, Option<String>)>,
}

const MEMBER_OPS: &str = "SELECT op_id FROM members";
const SEALED: &str = "SELECT identity, sealed FROM members";
const POINTS: &str =
    "SELECT member_id, CAST(SUM(points) AS BIGINT) FROM ledger_entries GROUP BY member_id";
const HOLDS: &str = "SELECT op_id, status, void_op_id FROM holds";

fn read_sqlite(db: &Path) -> anyhow::Result<Rows> {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut rows = Rows {
        member_ops: conn
            .prepare(MEMBER_OPS)?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?,
        ..Rows::default()
    };
    for row in conn
        .prepare(SEALED)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
    {
        rows.sealed.push(row?);
    }
    for row in conn
        .prepare(POINTS)?
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
    {
        let (id, points) = row?;
        rows.points.insert(u64::try_from(id).unwrap_or(0), points);
    }
    for row in conn
        .prepare(HOLDS)?
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
    {
        let (op_id, hold) = row?;
        rows.holds.insert(op_id, hold);
    }
    Ok(rows)
}

fn read_postgres(url: &str) -> anyhow::Result<Rows> {
    palpal_central::store::postgres::off_runtime(|| {
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        let mut rows = Rows::default();
        for row in client.query(MEMBER_OPS, &[])? {
            rows.member_ops.insert(row.get(0));
        }
        for row in client.query(SEALED, &[])? {
            rows.sealed.push((row.get(0), row.get(1)));
        }
        for row in client.query(POINTS, &[])? {
            let (id, points): (i64, i64) = (row.get(0), row.get(1));
            rows.points.insert(u64::try_from(id).unwrap_or(0), points);
        }
        for row in client.query(HOLDS, &[])? {
            rows.holds.insert(row.get(0), (row.get(1), row.get(2)));
        }
        Ok(rows)
    })
}

/// Reads the day's outcome from the server's database `target` and judges it.
pub fn check(
    target: &Target,
    day: &Day,
    member_numbers: &[u64],
    records: &[DriverRecord],
    policies: &PolicySet,
) -> anyhow::Result<Verdicts> {
    let rows = if target.postgres {
        read_postgres(&target.db)?
    } else {
        read_sqlite(Path::new(&target.db))?
    };
    let mut v = Verdicts::default();
    let member_ops = &rows.member_ops;
    // The same phone on two members is the same person signed up twice: the phones are
    // read from the sealed records, under the server's data key.
    let key = palpal_central::personal::DataKey::read(&target.data_key)?
        .with_context(|| format!("the data key {} is missing", target.data_key.display()))?;
    let mut phones: HashMap<String, u64> = HashMap::new();
    for (identity, sealed) in &rows.sealed {
        *phones.entry(key.open(identity, sealed)?.phone).or_default() += 1;
    }
    v.registrations_duplicated = phones.values().map(|n| n - 1).sum();
    for record in records {
        for (op_id, _) in &record.confirmed {
            v.registrations_confirmed += 1;
            if member_ops.contains(op_id) {
                v.registrations_on_server += 1;
            } else {
                v.registrations_lost += 1;
            }
        }
        for (reason, n) in &record.turned_away {
            *v.turned_away.entry(reason.clone()).or_default() += n;
        }
        for (code, n) in &record.refused {
            *v.redemptions_refused.entry(code.clone()).or_default() += n;
        }
    }

    // Points: the server's ledger against the policy core over the same raw reports.
    let server_points = &rows.points;
    let mut reports: Vec<Vec<StepReport>> = vec![Vec::new(); day.existing.len()];
    for seed in &day.history {
        reports[seed.member].push(StepReport {
            reported_at: seed.reported_at,
            day: seed.day,
            steps: seed.steps,
        });
    }
    for record in records {
        for (member, report) in &record.reports {
            v.reports_made += 1;
            reports[*member].push(*report);
        }
    }
    for (m, member_reports) in reports.iter().enumerate() {
        let mut ledger = Ledger::new(day.existing[m].birth_date);
        for report in member_reports {
            ledger.apply(policies, report);
        }
        let server = server_points.get(&member_numbers[m]).copied().unwrap_or(0);
        v.members_checked += 1;
        v.points_recomputed += ledger.total();
        v.points_server += server;
        if i64::try_from(ledger.total()).unwrap_or(-1) != server {
            v.points_mismatched_members += 1;
        }
    }

    // Holds and voids.
    let holds = &rows.holds;
    let voids_on_server: HashSet<&str> = holds
        .values()
        .filter_map(|(_, void)| void.as_deref())
        .collect();
    for record in records {
        for op_id in &record.holds {
            v.holds_made += 1;
            match holds.get(op_id) {
                Some((status, _)) => *v.holds_by_status.entry(status.clone()).or_default() += 1,
                None => v.holds_lost += 1,
            }
        }
        for op_id in &record.voids {
            v.voids_made += 1;
            if voids_on_server.contains(op_id.as_str()) {
                v.voids_applied += 1;
            }
        }
    }
    Ok(v)
}
