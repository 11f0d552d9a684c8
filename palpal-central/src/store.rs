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
use central_core::holds::{self, HoldStatus};
use central_core::pairing::{self, Names, Pairing};
use central_core::steps::{self, CertifiedWatches};
use central_core::{cards, enroll};
use chrono::{DateTime, NaiveDate, Utc};
use merchant_core::redemption::OfflineLimits;
use points_core::{Ledger, PolicySet, StepReport};
use redemption_token::{KeySet, MemberNo, Revocations, RevokedCard};
use rusqlite::{config::DbConfig, params, Connection, OptionalExtension as _};
use sha2::{Digest as _, Sha256};

use crate::personal::{self, DataKey, Person};

use kiosk_core::admission::{AdmissionSchedule, DayRule, QuotaLease};

use crate::wire::{
    BalanceSnapshot, CardState, EnrollmentPayload, HoldLine, HoldTotals, OpPayload, OpResult,
    OpStatus, Operation, ReconciliationReport, RedemptionHoldPayload, RedemptionKey, RejectReason,
    Role, StepReportPayload, TerminalReport, VoidPayload, WatchPairing, WatchPairingPayload,
    WrongPinPayload, PIN_LOCK_FAILURES,
};

pub mod console;
pub mod policies;
pub mod postgres;

use crate::console::rules::{LoginState, Role as OperatorRole};
use console::{
    Actor, AuditEntry, AuditQuery, Change, FailedLogin, MemberOverview, NewSession, Operator,
    OperatorLogin, Resumed, Session,
};

/// The schema version this server writes.
pub const SCHEMA_VERSION: u32 = 17;

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
    // 2: admission schedule, quota leases, balances, redemption holds, redemption keys,
    // revoked members, and the change log that pull cursors walk.
    "CREATE TABLE admission_days (
        day TEXT PRIMARY KEY,
        rule TEXT NOT NULL
    );
    CREATE TABLE quota_leases (
        id INTEGER PRIMARY KEY,
        day TEXT NOT NULL,
        site TEXT NOT NULL,
        places INTEGER NOT NULL CHECK (places >= 0),
        used INTEGER NOT NULL DEFAULT 0,
        UNIQUE (day, site)
    );
    ALTER TABLE members ADD COLUMN revoked_at TEXT;
    CREATE TABLE balances (
        member_id INTEGER PRIMARY KEY REFERENCES members (id),
        credited INTEGER NOT NULL DEFAULT 0,
        spent INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO balances (member_id, credited)
        SELECT m.id, COALESCE((SELECT SUM(points) FROM ledger_entries e WHERE e.member_id = m.id), 0)
        FROM members m;
    CREATE TABLE holds (
        op_id TEXT PRIMARY KEY,
        member_id INTEGER NOT NULL REFERENCES members (id),
        amount INTEGER NOT NULL,
        token_id TEXT NOT NULL,
        held_at TEXT NOT NULL,
        day TEXT NOT NULL,
        terminal_id INTEGER NOT NULL REFERENCES terminals (id),
        status TEXT NOT NULL
            CHECK (status IN ('posted', 'voided', 'insufficient', 'token_reused')),
        balance_before INTEGER NOT NULL,
        void_op_id TEXT
    );
    CREATE UNIQUE INDEX holds_token ON holds (token_id) WHERE status IN ('posted', 'voided');
    CREATE INDEX holds_day ON holds (day, terminal_id);
    CREATE TABLE redemption_keys (
        key_id INTEGER PRIMARY KEY CHECK (key_id BETWEEN 0 AND 65535),
        public_key BLOB NOT NULL,
        created_at TEXT NOT NULL,
        retired_at TEXT
    );
    CREATE TABLE changes (
        kind TEXT NOT NULL,
        key INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (kind, key)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX changes_seq ON changes (seq);
    INSERT INTO changes (kind, key, seq) SELECT 'balance', member_id, member_id FROM balances;",
    // 3: watch pairings: which member each watch belongs to. A watch has at most one pairing
    // in force, and so has a member; pairing a member to a new watch ends the old pairing.
    "CREATE TABLE watch_pairings (
        id INTEGER PRIMARY KEY,
        serial TEXT NOT NULL,
        member_id INTEGER NOT NULL REFERENCES members (id),
        terminal_id INTEGER NOT NULL REFERENCES terminals (id),
        op_id TEXT NOT NULL UNIQUE,
        paired_at TEXT NOT NULL,
        ended_at TEXT
    );
    CREATE UNIQUE INDEX watch_pairings_serial ON watch_pairings (serial) WHERE ended_at IS NULL;
    CREATE UNIQUE INDEX watch_pairings_member ON watch_pairings (member_id)
        WHERE ended_at IS NULL;",
    // 4: member cards the server signed: the PIN check the kiosk computed (never the PIN),
    // and the card's dates, so that a retried request gets the very same card.
    "CREATE TABLE cards (
        member_id INTEGER NOT NULL REFERENCES members (id),
        serial INTEGER NOT NULL CHECK (serial BETWEEN 1 AND 65535),
        pin_cost INTEGER NOT NULL,
        salt BLOB NOT NULL,
        pin_tag BLOB NOT NULL,
        issued_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        terminal_id INTEGER NOT NULL REFERENCES terminals (id),
        PRIMARY KEY (member_id, serial)
    ) WITHOUT ROWID;",
    // 5: fewer B-trees written for each operation. An operation's id is held once, in
    // `operations` (now clustered on it): `step_reports` no longer keeps its own unique index
    // of op ids, which `operations` already makes unique, and nothing reads ledger entries by
    // member but whole-table sums.
    "CREATE TABLE operations_5 (
        op_id TEXT PRIMARY KEY,
        terminal_id INTEGER NOT NULL REFERENCES terminals (id),
        kind TEXT NOT NULL,
        payload_sha256 BLOB NOT NULL,
        result TEXT NOT NULL,
        received_at TEXT NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO operations_5 SELECT op_id, terminal_id, kind, payload_sha256, result, received_at
        FROM operations;
    DROP TABLE operations;
    ALTER TABLE operations_5 RENAME TO operations;
    CREATE TABLE step_reports_5 (
        id INTEGER PRIMARY KEY,
        member_id INTEGER NOT NULL REFERENCES members (id),
        day TEXT NOT NULL,
        steps INTEGER NOT NULL,
        reported_at TEXT NOT NULL,
        terminal_id INTEGER NOT NULL REFERENCES terminals (id),
        op_id TEXT NOT NULL
    );
    INSERT INTO step_reports_5 SELECT id, member_id, day, steps, reported_at, terminal_id, op_id
        FROM step_reports;
    DROP TABLE step_reports;
    ALTER TABLE step_reports_5 RENAME TO step_reports;
    CREATE INDEX step_reports_member ON step_reports (member_id, id);
    DROP INDEX ledger_entries_member;",
    // 6: each member's points ledger kept as a snapshot in their balance row (see
    // `points_core::Ledger::to_snapshot`), so that a step report reads one row instead of the
    // member's every report. The snapshots of existing members are made from their reports
    // (`snapshot_ledgers`), after which the index by member that doing so needed is dropped.
    "ALTER TABLE balances ADD COLUMN ledger BLOB;",
    // 7: holds carry the member's token, which the server verifies: a card's serial is kept
    // so that a card's holds of a day can be summed against the policy's limit for cards;
    // cards are revoked one by one.
    "ALTER TABLE holds ADD COLUMN card_serial INTEGER;
    CREATE INDEX holds_member_day ON holds (member_id, day);
    CREATE TABLE revoked_cards (
        member_id INTEGER NOT NULL REFERENCES members (id),
        serial INTEGER NOT NULL,
        revoked_at TEXT NOT NULL,
        PRIMARY KEY (member_id, serial)
    ) WITHOUT ROWID;",
    // 8: the order of a terminal's events, by its own numbering of its operations: the first
    // sequence number each terminal told in a pull each day (by the server's clock), and the
    // number of each hold. A hold or a void numbered above what the terminal told on a later
    // day than the one it claims was made on that later day, whatever its time says.
    "ALTER TABLE holds ADD COLUMN seq INTEGER;
    CREATE TABLE terminal_contacts (
        terminal_id INTEGER NOT NULL REFERENCES terminals (id),
        day TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        PRIMARY KEY (terminal_id, day)
    ) WITHOUT ROWID;",
    // 9: steps signed by the watch. The watch certificate authorities the program trusts
    // (none: steps are taken unsigned, as before), and each watch proof credited, by the
    // watch's serial and counter, so that none is credited twice.
    "CREATE TABLE watch_authorities (
        public_key BLOB PRIMARY KEY,
        added_at TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE watch_proofs (
        serial TEXT NOT NULL,
        counter INTEGER NOT NULL,
        op_id TEXT NOT NULL,
        PRIMARY KEY (serial, counter)
    ) WITHOUT ROWID;",
    // 10: wrong card PINs the counters report, counted across counters by the card's day:
    // at `PIN_LOCK_FAILURES` the card is locked for the rest of that day everywhere.
    "CREATE TABLE card_pin_failures (
        member_id INTEGER NOT NULL REFERENCES members (id),
        serial INTEGER NOT NULL,
        day TEXT NOT NULL,
        at TEXT NOT NULL,
        terminal_id INTEGER NOT NULL REFERENCES terminals (id),
        op_id TEXT NOT NULL
    );
    CREATE INDEX card_pin_failures_by_card ON card_pin_failures (member_id, serial, day);",
    // 11: members' personal data sealed under the server's data key (`personal`): each
    // member's name, birth date and phone in one sealed value, found again by a keyed hash
    // of the three (`identity`). The rows are moved by `seal_members`, which drops the old
    // table and renames this one in its place; `data_key` keeps the check value of the key
    // the database's members are sealed under.
    "CREATE TABLE members_11 (
        id INTEGER PRIMARY KEY,
        identity BLOB NOT NULL UNIQUE,
        sealed BLOB NOT NULL,
        terminal_id INTEGER NOT NULL REFERENCES terminals (id),
        op_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE TABLE data_key (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        key_check BLOB NOT NULL
    );",
    // 12: the operator console's operators, sessions and audit log (`console`).
    console::SQLITE_MIGRATION,
    // 13: when each terminal was last heard and what it last told of itself (a pull's
    // `report`), times in Unix milliseconds.
    "CREATE TABLE terminal_seen (
        terminal_id INTEGER PRIMARY KEY REFERENCES terminals (id),
        seen_ms INTEGER NOT NULL,
        reported_ms INTEGER,
        app_version TEXT,
        waiting INTEGER,
        oldest_waiting_s INTEGER,
        clock_offset_s INTEGER
    );",
    // 14: nothing here; the PostgreSQL store's change numbers come from transaction ids.
    "-- no change",
    // 15: what every server process counted, minute by minute (the console's Today page).
    "CREATE TABLE activity (
        minute TEXT NOT NULL,
        figure TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (minute, figure)
    ) WITHOUT ROWID;",
    // 16: the points policies, seeded with the published files (`policies`).
    policies::SQLITE_MIGRATION,
    // 17: replacement cards the operators allowed: for each member, the number of the card
    // a kiosk may have signed next (the lost one was revoked when it was allowed).
    "CREATE TABLE card_replacements (
        member_id INTEGER PRIMARY KEY REFERENCES members (id),
        serial INTEGER NOT NULL CHECK (serial BETWEEN 2 AND 65535),
        allowed_at TEXT NOT NULL
    );",
];

/// The migration after whose SQL [`policies::seed`] runs.
const SEEDED_POLICIES: usize = 16;

/// The migration after whose SQL [`seal_members`] runs.
const SEALED_MEMBERS: usize = 11;

/// The migration after whose SQL [`snapshot_ledgers`] runs.
const LEDGER_SNAPSHOTS: usize = 6;

/// Migration 6's own step: rebuilds every member's ledger from their step reports, in the
/// order received, stores it as a snapshot, and drops the index of reports by member.
fn snapshot_ledgers(tx: &Connection, policies: &PolicySet) -> anyhow::Result<()> {
    let mut reports = tx.prepare(
        "SELECT r.member_id, m.birth_date, r.day, r.steps, r.reported_at
         FROM step_reports r JOIN members m ON m.id = r.member_id
         ORDER BY r.member_id, r.id",
    )?;
    let mut store = tx.prepare(
        "INSERT INTO balances (member_id, ledger) VALUES (?1, ?2)
         ON CONFLICT (member_id) DO UPDATE SET ledger = excluded.ledger",
    )?;
    let mut current: Option<(i64, Ledger)> = None;
    let mut rows = reports.query([])?;
    while let Some(row) = rows.next()? {
        let member: i64 = row.get(0)?;
        if current.as_ref().is_none_or(|(id, _)| *id != member) {
            if let Some((id, ledger)) = current.take() {
                store.execute(params![id, ledger.to_snapshot()])?;
            }
            let birth: String = row.get(1)?;
            let birth = NaiveDate::parse_from_str(&birth, "%Y-%m-%d")
                .with_context(|| format!("member {member} has birth date {birth:?}"))?;
            current = Some((member, Ledger::new(birth)));
        }
        let day: String = row.get(2)?;
        let at: String = row.get(4)?;
        let report = StepReport {
            day: NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .with_context(|| format!("stored step day {day:?}"))?,
            steps: row.get(3)?,
            reported_at: DateTime::parse_from_rfc3339(&at)
                .with_context(|| format!("stored report time {at:?}"))?,
        };
        if let Some((_, ledger)) = current.as_mut() {
            ledger.apply(policies, &report);
        }
    }
    if let Some((id, ledger)) = current {
        store.execute(params![id, ledger.to_snapshot()])?;
    }
    tx.execute_batch("DROP INDEX step_reports_member;")?;
    Ok(())
}

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

pub use sync_protocol::member::{
    member_number, parse_member_number, parse_terminal_label, terminal_label,
};

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
        /// For each operation, whether it is a step report whose watch proof was already
        /// found to verify under its own certificate's key ([`precheck_day_proofs`]), so
        /// that the writer does not spend a signature check on it; empty when none was.
        prechecked: Vec<bool>,
    },
    /// Record a member card a kiosk asks for; the server signs it once this is committed.
    IssueCard(CardRequest),
    /// Remember the operation sequence number a terminal told (in a pull) on `day`, if it is
    /// the first it told that day.
    Contact {
        /// The terminal (its signature was already checked).
        terminal: i64,
        /// The server's day, in Asia/Seoul.
        day: NaiveDate,
        /// The terminal's highest operation number at the time.
        sequence: u64,
    },
    /// Remember when terminals were last heard and what they last told of themselves; a
    /// later sighting already recorded (by another server process) is kept.
    Seen(Vec<Sighting>),
    /// Add what this process counted to the minutes' figures every process adds to, and
    /// forget the figures of minutes older than `keep_from`.
    Activity {
        /// The counts, by minute and figure.
        counts: Vec<ActivityCount>,
        /// The oldest minute kept (as [`ActivityCount::minute`]).
        keep_from: String,
    },
}

/// How many of something one server process counted in one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityCount {
    /// The minute, by the server's clock in UTC: `2026-12-04T10:03`.
    pub minute: String,
    /// What was counted (`crate::metrics::Metrics::take_activity` names them).
    pub figure: String,
    /// How many.
    pub count: i64,
}

/// A site's places on a day, as an operator sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaChange {
    pub day: NaiveDate,
    pub site: String,
    pub places: u32,
}

/// Why places were not set: the `index`-th change would leave fewer places than the `used`
/// already taken that day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaRefusal {
    pub index: usize,
    pub used: u32,
}

/// A site's places as the audit log keeps them.
pub(crate) fn quota_json(places: u32, used: u32) -> String {
    serde_json::json!({ "places": places, "used": used }).to_string()
}

/// A stored admission day and its rule.
pub(crate) fn read_day_rule(day: &str, rule: &str) -> anyhow::Result<(NaiveDate, DayRule)> {
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .with_context(|| format!("stored admission day {day:?}"))?;
    let rule: DayRule =
        serde_json::from_str(rule).with_context(|| format!("stored admission rule {rule:?}"))?;
    Ok((day, rule))
}

/// The holds of one terminal and one status on a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldCount {
    /// The terminal.
    pub terminal: i64,
    /// `posted`, `voided`, `insufficient` or `token_reused`.
    pub status: String,
    /// How many.
    pub count: i64,
    /// Their points.
    pub points: i64,
}

/// The minute of `at` as [`ActivityCount::minute`] writes it.
pub fn minute_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M").to_string()
}

/// A terminal heard from: when, and what it told of itself (with a pull).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// The terminal (its signature was already checked).
    pub terminal: i64,
    /// When a request of its was last accepted, by the server's clock.
    pub seen_at: DateTime<Utc>,
    /// Its last report and when the server had it.
    pub report: Option<(DateTime<Utc>, TerminalReport)>,
}

impl Sighting {
    /// `self` with the later parts of `other` (both of the same terminal).
    pub fn merge(mut self, other: Sighting) -> Sighting {
        self.seen_at = self.seen_at.max(other.seen_at);
        match (&self.report, other.report) {
            (Some((mine, _)), Some((theirs, report))) if theirs > *mine => {
                self.report = Some((theirs, report));
            }
            (None, Some(report)) => self.report = Some(report),
            _ => {}
        }
        self
    }
}

/// A kiosk's request for a member card: the PIN check it computed where the member typed
/// the PIN (`redemption_token::card_pin_check`), never the PIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRequest {
    /// The kiosk asking (its signature was already checked).
    pub terminal: i64,
    /// The member's id.
    pub member: i64,
    /// The card's number for this member (1 for the first).
    pub serial: u16,
    /// Argon2id memory cost of the PIN check, log2 of KiB.
    pub pin_cost: u8,
    /// The card's random salt.
    pub salt: [u8; 8],
    /// The PIN check's two bytes.
    pub pin_tag: [u8; 2],
}

pub use central_core::cards::{CardRecord, CardRefusal, CARD_VALIDITY_DAYS};

/// What the writer did with one [`Write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteReply {
    /// The terminal is enrolled.
    Enrolled(Terminal),
    /// The batch was applied; one result per operation.
    Synced(Vec<OpResult>),
    /// Nothing was applied.
    Refused(Refusal),
    /// The card is recorded (now, or by an identical request before).
    Card(CardRecord),
    /// No card was recorded.
    CardRefused(CardRefusal),
    /// The contact is remembered (now, or an earlier one of the same day is), or the
    /// sightings are.
    Contacted,
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
    /// When each terminal heard from was last heard, and what it last told of itself.
    fn sightings(&mut self) -> anyhow::Result<Vec<Sighting>>;
    /// Every process's counts added up, minute by minute, from `from` (a minute as
    /// [`minute_of`] writes it) on, in minute order.
    fn activity(&mut self, from: &str) -> anyhow::Result<Vec<ActivityCount>>;
    /// The sign-up places of every site on `day`, by site.
    fn leases_on(&mut self, day: NaiveDate) -> anyhow::Result<Vec<QuotaLease>>;
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
    /// Sets who may sign up on `day`.
    fn set_admission(&mut self, day: NaiveDate, rule: DayRule) -> anyhow::Result<()>;
    /// Sets `site`'s sign-up places on `day`; places already used stay counted.
    fn set_quota(&mut self, day: NaiveDate, site: &str, places: u32) -> anyhow::Result<QuotaLease>;
    /// The sign-up rule of each day from `from` to `to` that has one (others are closed).
    fn admission_days(
        &mut self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> anyhow::Result<std::collections::BTreeMap<NaiveDate, DayRule>>;
    /// Sets the rule of each day, all in one transaction, each day audited as `by`'s with the
    /// rule before and after.
    fn set_schedule(
        &mut self,
        days: &[(NaiveDate, DayRule)],
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()>;
    /// Sets sites' places, all or none in one transaction, each audited as `by`'s: refused
    /// (nothing stored) when one would be below the places already taken that day.
    fn set_quotas(
        &mut self,
        quotas: &[QuotaChange],
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<(), QuotaRefusal>>;
    /// Revokes a member (every card of theirs); `false` if there is no such member. Audited
    /// as `by`'s when it was not revoked already.
    fn revoke_member(&mut self, id: i64, by: &Actor, now: DateTime<Utc>) -> anyhow::Result<bool>;
    /// Revokes one member card (lost or replaced), signed by the server or not: holds carrying
    /// it are refused from then on. `false` when there is no such member. Audited as `by`'s
    /// when it was not revoked already.
    fn revoke_card(
        &mut self,
        id: i64,
        serial: u16,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;
    /// Trusts a watch certificate authority's public key: from then on a step report is
    /// credited only with a proof from a watch it certified. Returns whether it was new.
    fn add_watch_authority(
        &mut self,
        public_key: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;
    /// Publishes a redemption public key; returns its key id.
    fn add_redemption_key(
        &mut self,
        public_key: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<u16>;
    /// The id of the published, unretired redemption key with this public key.
    fn redemption_key_id(&mut self, public_key: &[u8; 32]) -> anyhow::Result<Option<u16>>;
    /// The changes after `cursor` (a change sequence number), at most `limit`, as seen by
    /// `terminal` on `today`.
    fn pull(
        &mut self,
        terminal: &Terminal,
        cursor: i64,
        limit: u32,
        today: NaiveDate,
    ) -> anyhow::Result<PullPage>;
    /// [`Store::pull`], and the points policies in force as [`Store::policies`] gives them,
    /// both as one read (a store may answer both with fewer round trips).
    fn pull_with_policies(
        &mut self,
        terminal: &Terminal,
        cursor: i64,
        limit: u32,
        today: NaiveDate,
    ) -> anyhow::Result<(PullPage, Arc<crate::policies::InForce>)> {
        let page = self.pull(terminal, cursor, limit, today)?;
        Ok((page, self.policies()?))
    }
    /// The member with this name, birth date and phone (normalised as an enrollment is).
    fn find_member(
        &mut self,
        name: &str,
        birth_date: NaiveDate,
        phone: &str,
    ) -> anyhow::Result<Option<i64>>;
    /// The replacement card a kiosk may have signed for `member` (`central_core::cards::
    /// replacement_allowed`): the number the operators allowed, if the member is not revoked.
    fn card_serial_allowed(&mut self, member: i64) -> anyhow::Result<Option<u16>>;
    /// The holds `terminal` took on `day`.
    fn reconciliation(
        &mut self,
        terminal: &Terminal,
        day: NaiveDate,
    ) -> anyhow::Result<ReconciliationReport>;
    /// How many holds each terminal took on `day` and their points, by status (`posted`,
    /// `voided`, `insufficient`, `token_reused`), in terminal order.
    fn hold_totals(&mut self, day: NaiveDate) -> anyhow::Result<Vec<HoldCount>>;
    /// The holds of members who were overspent on `day` (a hold their balance did not cover,
    /// or a token used twice), by member, then in the order received.
    fn overspend(&mut self, day: NaiveDate) -> anyhow::Result<Vec<HoldLine>>;
    /// Applies a group of writes in one transaction, each write all or nothing, and returns a
    /// reply per write in order. An error means nothing of the group was committed.
    fn commit_group(
        &mut self,
        writes: &[Write],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<WriteReply>>;
    /// Stops (`false`) or resumes this connection's own checkpoints after its commits, for
    /// stores with a write-ahead log that another connection can checkpoint; others do nothing.
    fn checkpoint_on_commit(&mut self, on: bool) -> anyhow::Result<()>;
    /// Copies what the write-ahead log holds into the database, waiting for no one (a passive
    /// checkpoint). Returns the log's length and how much of it is now copied, in pages; `None`
    /// when the store has no such log or another checkpoint is running.
    fn checkpoint(&mut self) -> anyhow::Result<Option<WalPages>>;
    /// Reads (or makes) the key members' personal data is sealed under and checks it is this
    /// database's, so that a server given another key stops before it serves.
    fn check_data_key(&mut self) -> anyhow::Result<()>;
    /// Console: adds an operator waiting for setup with the one-time code hashing to
    /// `code_hash` (valid [`crate::console::rules::SETUP_CODE_VALIDITY`]), audited as `by`'s;
    /// `None` if the name is taken.
    fn add_operator(
        &mut self,
        name: &str,
        role: OperatorRole,
        code_hash: &[u8; 32],
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<Operator>>;
    /// Console: every operator, by number.
    fn operators(&mut self) -> anyhow::Result<Vec<Operator>>;
    /// Console: what a login checks for the operator named `name`.
    fn operator_login(&mut self, name: &str) -> anyhow::Result<Option<OperatorLogin>>;
    /// Console: sets the password hash of operator `name` if `code_hash` is their setup
    /// code's and it still works (then it no longer does); whether it was set. Audited.
    fn set_up_operator(
        &mut self,
        name: &str,
        code_hash: &[u8; 32],
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;
    /// Console: records a failed login, counted against the operator it names (locking
    /// them by the rules); their login state after it. Audited.
    fn record_login_failure(
        &mut self,
        failed: &FailedLogin,
        now: DateTime<Utc>,
    ) -> anyhow::Result<LoginState>;
    /// Console: opens a session for an operator whose login succeeded (their failures
    /// forgotten, their last login now). Audited.
    fn open_session(
        &mut self,
        operator: &OperatorLogin,
        session: &NewSession,
        address: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()>;
    /// Console: the session whose token hashes to `token_hash`, if it may go on at `now`
    /// (its last use then now); one that is over is deleted.
    fn resume_session(
        &mut self,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Resumed>;
    /// Console: ends a session (sign-out). Audited.
    fn end_session(
        &mut self,
        token_hash: &[u8; 32],
        session: &Session,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()>;
    /// Console: disables operator `id` and ends their sessions; `false` if there is no such
    /// operator or they were disabled already. Audited as `by`'s.
    fn disable_operator(&mut self, id: i64, by: &Actor, now: DateTime<Utc>)
        -> anyhow::Result<bool>;
    /// Console: entries of the audit log, newest first.
    fn audit_log(&mut self, query: &AuditQuery) -> anyhow::Result<Vec<AuditEntry>>;
    /// The points policies in force, read again only when their version changed since this
    /// connection last read them (a cheap read of one row otherwise).
    fn policies(&mut self) -> anyhow::Result<Arc<crate::policies::InForce>>;
    /// Every points policy, cancelled ones too, in the order published.
    fn policy_rows(&mut self) -> anyhow::Result<Vec<crate::policies::PolicyRow>>;
    /// Publishes a policy if `crate::policies::check_publish` allows it on `now`'s day
    /// (Asia/Seoul). Audited as `by`'s, in the same transaction.
    fn publish_policy(
        &mut self,
        candidate: &crate::policies::Candidate,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<crate::policies::PolicyRow, crate::policies::PolicyRefusal>>;
    /// Re-rates every member with `candidate` in place of the policy in force of its name:
    /// a preview when `confirm` is `None` (stores nothing), else applied in one transaction
    /// if `confirm` is the preview's digest and the figures are still the same
    /// (`PolicyRefusal::Stale` otherwise, nothing changed). Audited as `by`'s.
    fn rerate_policy(
        &mut self,
        candidate: &crate::policies::Candidate,
        confirm: Option<&str>,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<crate::policies::RerateReport, crate::policies::PolicyRefusal>>;
    /// Cancels the policy in force named `name` if it has not started on `now`'s day.
    /// Audited as `by`'s, in the same transaction.
    fn cancel_policy(
        &mut self,
        name: &str,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<crate::policies::PolicyRow, crate::policies::PolicyRefusal>>;
    /// Console: creates a terminal waiting for enrollment with the code hashing to
    /// `code_hash` (as [`Store::add_terminal`]). Audited as `by`'s, without the code.
    fn provision_terminal(
        &mut self,
        site: &str,
        role: Role,
        code_hash: &[u8; 32],
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Terminal>;
    /// Console: revokes terminal `id`: its next request is refused. Audited with its state
    /// before.
    fn revoke_terminal_as(
        &mut self,
        id: i64,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Change>;
    /// Console: member `id` with their personal data masked, their balance, cards and
    /// watches; `None` if there is no such member.
    fn member_overview(&mut self, id: i64) -> anyhow::Result<Option<MemberOverview>>;
    /// Console: revokes member `member`'s card `serial`, one the server signed (as
    /// [`Store::revoke_card`]). Audited.
    fn revoke_card_as(
        &mut self,
        member: i64,
        serial: u16,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Change>;
    /// Console: a lost card replaced: member `member`'s card `serial` (in force) revoked and
    /// the next number allowed to any kiosk the member visits (`POST /v1/cards`), in one
    /// transaction. Audited. The number allowed, or `None` when there is no such card.
    fn replace_card(
        &mut self,
        member: i64,
        serial: u16,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<u16>>;
    /// Console: ends the pairing in force of watch `serial` with member `member`; terminals
    /// learn it at their next pull. Audited.
    fn unpair_watch(
        &mut self,
        member: i64,
        serial: &str,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Change>;
}

/// A write-ahead log's length and how much of it is copied into the database, in pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalPages {
    /// Pages in the log.
    pub logged: u32,
    /// Pages of the log copied into the database.
    pub copied: u32,
}

/// One page of changes for a pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullPage {
    /// The sequence number of the last change in the page (the cursor given when empty).
    pub cursor: i64,
    /// Whether more changes wait after this page.
    pub more: bool,
    /// Redemption keys added or retired.
    pub redemption_keys: Vec<RedemptionKey>,
    /// Member numbers revoked.
    pub revoked_members: Vec<String>,
    /// Balances changed.
    pub balances: Vec<BalanceSnapshot>,
    /// Watch pairings made or ended.
    pub watch_pairings: Vec<WatchPairing>,
    /// Member cards revoked or locked.
    pub cards: Vec<CardState>,
    /// Kiosks: the schedule from today on.
    pub admission: Option<AdmissionSchedule>,
    /// Kiosks: the site's leases from today on.
    pub quota_leases: Vec<QuotaLease>,
}

/// Opens stores on the same database: one for the writer, more for concurrent reads.
pub trait Backend: Send + Sync + 'static {
    /// A new connection to the database.
    fn open(&self) -> anyhow::Result<Box<dyn Store>>;
    /// Whether several connections may commit write groups side by side (each write group is
    /// then one of several transactions, which the database keeps apart): PostgreSQL, not
    /// SQLite, which has one writer.
    fn concurrent_writers(&self) -> bool {
        false
    }
}

/// SQLite databases in a file.
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    path: std::path::PathBuf,
    policies: Arc<PolicySet>,
    data_key_file: std::path::PathBuf,
}

impl SqliteBackend {
    /// The database at `path`, rated with `policies`, its personal data sealed under the key
    /// in `<database>.secrets/data.key` ([`personal::default_file`]).
    pub fn new(path: impl Into<std::path::PathBuf>, policies: Arc<PolicySet>) -> SqliteBackend {
        let path = path.into();
        SqliteBackend {
            data_key_file: personal::default_file(&path),
            path,
            policies,
        }
    }

    /// The same, with the data key in `file`.
    pub fn with_data_key_file(self, file: impl Into<std::path::PathBuf>) -> SqliteBackend {
        SqliteBackend {
            data_key_file: file.into(),
            ..self
        }
    }
}

impl Backend for SqliteBackend {
    fn open(&self) -> anyhow::Result<Box<dyn Store>> {
        Ok(Box::new(SqliteStore::open_with_data_key(
            &self.path,
            Arc::clone(&self.policies),
            &self.data_key_file,
        )?))
    }
}

/// The text of the policy files published in `policies/`, compiled in, oldest first: the
/// seed of a new database's policies (the server rates with the database's).
pub const PUBLISHED_POLICY_TEXTS: [&str; 3] = crate::policies::SEED_TEXTS;

/// The policies published in `policies/`, compiled in: the seed's set, which migration 6
/// rates old reports with and terminals and tests start from.
pub fn published_policies() -> anyhow::Result<PolicySet> {
    let policies = PUBLISHED_POLICY_TEXTS
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
    /// The published files' set, which migration 6 rates old reports with.
    policies: Arc<PolicySet>,
    /// The policies in force as this connection last read them (`policies::refresh`).
    in_force: Arc<crate::policies::InForce>,
    data_key_file: std::path::PathBuf,
    data_key: Option<Arc<DataKey>>,
    certified: CertifiedWatches,
}

/// Checks, before the server starts, that an existing database file is an intact SQLite
/// database (`PRAGMA quick_check`, read only). A damaged file is refused with a message that
/// says what to do, and is not written to, so that it can be examined or restored.
pub fn check_intact(path: &std::path::Path) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let verdict = Connection::open_with_flags(path, flags)
        .map_err(|error| error.to_string())
        .and_then(|conn| sqlite_file::quick_check(&conn));
    let Err(detail) = verdict else {
        return Ok(());
    };
    anyhow::bail!(
        "데이터베이스 파일이 손상되었습니다({}). 파일은 그대로 두었습니다. 서버를 시작하지 마시고 \
         백업에서 복원하세요. / the database {} is damaged ({detail}); it was left untouched. \
         Do not start the server on it; restore it from a backup.",
        path.display(),
        path.display()
    )
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`, its personal data
    /// sealed under the key in `<database>.secrets/data.key`.
    pub fn open(path: &std::path::Path, policies: Arc<PolicySet>) -> anyhow::Result<SqliteStore> {
        SqliteStore::open_with_data_key(path, policies, &personal::default_file(path))
    }

    /// The same, with the data key in `data_key_file`. The key is read when personal data is
    /// first sealed or opened (or [`SqliteStore::data_key`] asks for it); a key file that does
    /// not exist is made then, unless the database's members are sealed under a key already.
    pub fn open_with_data_key(
        path: &std::path::Path,
        policies: Arc<PolicySet>,
        data_key_file: &std::path::Path,
    ) -> anyhow::Result<SqliteStore> {
        create_private(path)?;
        let conn = Connection::open(path)
            .with_context(|| format!("데이터베이스를 열지 못했습니다 / could not open {path:?}"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .context("setting busy_timeout")?;
        // The writer's hot path prepares about 20 statements; keep them all.
        conn.set_prepared_statement_cache_capacity(64);
        // Plans fixed when a statement is prepared (the query planner stability guarantee).
        // Without it SQLite marks a statement whose plan a bound value might change (`id = ?1`
        // may be bound to 0 or 1) to be prepared again after its bindings are cleared, and
        // rusqlite's statement cache clears them each time a statement goes back: every member
        // read was compiled again, 18% of the writer's time under load.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .context("enabling the query planner stability guarantee")?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .context("switching to WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")
            .context("setting synchronous=FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .context("enabling foreign keys")?;
        // Statement and savepoint journals in memory: a write group's savepoints would
        // otherwise spill each request's changed pages to a temporary file.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .context("setting temp_store")?;
        // A write group changes a few thousand pages; a cache that holds them does not spill
        // them to the WAL before the commit. 16 MiB, taken only as pages are used: the load
        // bench measured more with 2 MiB (SQLite's default) and with 64 MiB (a larger cache
        // costs more to trim at each commit).
        conn.pragma_update(None, "cache_size", -16_384)
            .context("setting cache_size")?;
        let mut store = SqliteStore {
            conn,
            policies,
            in_force: Arc::new(crate::policies::InForce::seed()?.unread()),
            data_key_file: data_key_file.to_owned(),
            data_key: None,
            certified: CertifiedWatches::default(),
        };
        store.migrate().context("migrating the database")?;
        Ok(store)
    }

    /// The key members' personal data is sealed under: read from its file (made if there is
    /// none and nothing is sealed yet) and checked against the database's check value, which
    /// the first reading records. A key that is not the database's is refused.
    pub fn data_key(&mut self) -> anyhow::Result<Arc<DataKey>> {
        if let Some(key) = &self.data_key {
            return Ok(Arc::clone(key));
        }
        let key = Arc::new(load_data_key(&self.conn, &self.data_key_file)?);
        self.data_key = Some(Arc::clone(&key));
        Ok(key)
    }

    fn migrate(&mut self) -> anyhow::Result<()> {
        let latest = u32::try_from(MIGRATIONS.len())?;
        let current: u32 = self
            .conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if current == latest {
            return Ok(());
        }
        // Migration 11 replaces the members table, which other tables refer to: SQLite's way
        // is with foreign keys off for the transaction (they cannot be switched inside one),
        // checked before it commits.
        // The old table's pages are overwritten as they are freed (`secure_delete`), so that
        // no name or phone in clear stays behind in the file's free pages.
        let rebuilds = current < u32::try_from(SEALED_MEMBERS)?;
        if rebuilds {
            self.conn.pragma_update(None, "foreign_keys", "OFF")?;
            self.conn.pragma_update(None, "secure_delete", "ON")?;
        }
        let migrated = self.migrate_from(latest);
        if rebuilds {
            self.conn.pragma_update(None, "foreign_keys", "ON")?;
            self.conn.pragma_update(None, "secure_delete", "OFF")?;
        }
        migrated
    }

    fn migrate_from(&mut self, latest: u32) -> anyhow::Result<()> {
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
            if index + 1 == LEDGER_SNAPSHOTS {
                snapshot_ledgers(&tx, &self.policies)
                    .context("making the ledger snapshots of migration 6")?;
            }
            if index + 1 == SEEDED_POLICIES {
                policies::seed(&tx).context("seeding the policies (migration 16)")?;
            }
            if index + 1 == SEALED_MEMBERS {
                seal_members(&tx, &self.data_key_file)
                    .context("sealing members' personal data (migration 11)")?;
            }
            tx.pragma_update(None, "user_version", i64::try_from(index + 1)?)?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Reads the data key from `file` (making it when there is none and no member is sealed yet)
/// and checks it against the one the database's members are sealed under, recording it when
/// the database has none yet.
fn load_data_key(conn: &Connection, file: &std::path::Path) -> anyhow::Result<DataKey> {
    let recorded = |conn: &Connection| -> rusqlite::Result<Option<Vec<u8>>> {
        conn.query_row("SELECT key_check FROM data_key WHERE id = 1", [], |row| {
            row.get(0)
        })
        .optional()
    };
    let key = match (DataKey::read(file)?, recorded(conn)?) {
        (Some(key), _) => key,
        (None, None) => DataKey::create(file)?,
        (None, Some(_)) => anyhow::bail!(
            "개인정보 키 파일 {}이(가) 없습니다. 이 데이터베이스의 회원 정보는 다른 키로 봉인되어 있습니다: \
             그 키 파일을 --data-key-file 로 주세요. / the data key file {} does not exist, and this \
             database's members are sealed under a key kept elsewhere: give that key's file with \
             --data-key-file.",
            file.display(),
            file.display()
        ),
    };
    conn.execute(
        "INSERT OR IGNORE INTO data_key (id, key_check) VALUES (1, ?1)",
        [&key.check()[..]],
    )?;
    if recorded(conn)?.as_deref() != Some(&key.check()[..]) {
        anyhow::bail!(
            "개인정보 키 파일 {}의 키는 이 데이터베이스의 키가 아닙니다. 회원 정보를 봉인한 키 파일을 \
             --data-key-file 로 주세요. / the data key in {} is not the key this database's members \
             are sealed under; give the right key's file with --data-key-file.",
            file.display(),
            file.display()
        );
    }
    Ok(key)
}

/// Twelve fresh random bytes for sealing.
fn fresh_nonce() -> anyhow::Result<[u8; 12]> {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(nonce)
}

/// Migration 11's own step: seals every member's personal data into the new table (with the
/// same ids), then puts it in the old one's place and checks every reference to it.
fn seal_members(tx: &Connection, data_key_file: &std::path::Path) -> anyhow::Result<()> {
    let members: i64 = tx.query_row("SELECT count(*) FROM members", [], |row| row.get(0))?;
    if members > 0 {
        let key = load_data_key(tx, data_key_file)?;
        let mut insert = tx.prepare(
            "INSERT INTO members_11 (id, identity, sealed, terminal_id, op_id, created_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut select = tx.prepare(
            "SELECT id, name, birth_date, phone, terminal_id, op_id, created_at, revoked_at
             FROM members ORDER BY id",
        )?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let person = Person {
                name: row.get::<_, String>(1)?.trim().to_owned(),
                birth_date: parse_ymd(&row.get::<_, String>(2)?)?,
                phone: row.get(3)?,
            };
            let identity = key.identity(&person.name, person.birth_date, &person.phone);
            let sealed = key.seal(&identity, &person, fresh_nonce()?);
            insert
                .execute(params![
                    id,
                    &identity[..],
                    sealed,
                    row.get::<_, i64>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, Option<String>>(7)?,
                ])
                .with_context(|| format!("sealing member {id}"))?;
        }
    }
    tx.execute_batch("DROP TABLE members; ALTER TABLE members_11 RENAME TO members;")?;
    let mut check = tx.prepare("PRAGMA foreign_key_check")?;
    let mut broken = check.query([])?;
    if let Some(row) = broken.next()? {
        let table: String = row.get(0)?;
        anyhow::bail!("after sealing members, {table} refers to a row that is not there");
    }
    Ok(())
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
    conn.prepare_cached(&format!(
        "SELECT {TERMINAL_COLUMNS} FROM terminals WHERE id = ?1"
    ))?
    .query_row([id], read_terminal)
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

    fn activity(&mut self, from: &str) -> anyhow::Result<Vec<ActivityCount>> {
        let mut stmt = self.conn.prepare(
            "SELECT minute, figure, count FROM activity WHERE minute >= ?1
             ORDER BY minute, figure",
        )?;
        let rows = stmt.query_map([from], |r| {
            Ok(ActivityCount {
                minute: r.get(0)?,
                figure: r.get(1)?,
                count: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn leases_on(&mut self, day: NaiveDate) -> anyhow::Result<Vec<QuotaLease>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, day, site, places, used FROM quota_leases WHERE day = ?1 ORDER BY site",
        )?;
        let rows = stmt.query_map([ymd(day)], read_lease)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn sightings(&mut self) -> anyhow::Result<Vec<Sighting>> {
        let mut stmt = self.conn.prepare(
            "SELECT terminal_id, seen_ms, reported_ms, app_version, waiting, oldest_waiting_s,
                    clock_offset_s
             FROM terminal_seen ORDER BY terminal_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(SeenRow {
                seen_ms: r.get(1)?,
                reported_ms: r.get(2)?,
                app_version: r.get(3)?,
                waiting: r.get(4)?,
                oldest_waiting_s: r.get(5)?,
                clock_offset_s: r.get(6)?,
            }
            .sighting(r.get(0)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
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

    fn admission_days(
        &mut self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> anyhow::Result<std::collections::BTreeMap<NaiveDate, DayRule>> {
        let mut stmt = self.conn.prepare(
            "SELECT day, rule FROM admission_days WHERE day >= ?1 AND day <= ?2 ORDER BY day",
        )?;
        let rows = stmt.query_map(params![ymd(from), ymd(to)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (day, rule) = row?;
            read_day_rule(&day, &rule)
        })
        .collect()
    }

    fn set_schedule(
        &mut self,
        days: &[(NaiveDate, DayRule)],
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let tx = console::write_tx(&mut self.conn)?;
        for (day, rule) in days {
            let before: Option<String> = tx
                .query_row(
                    "SELECT rule FROM admission_days WHERE day = ?1",
                    [ymd(*day)],
                    |r| r.get(0),
                )
                .optional()?;
            let after = serde_json::to_string(rule)?;
            tx.execute(
                "INSERT INTO admission_days (day, rule) VALUES (?1, ?2)
                 ON CONFLICT (day) DO UPDATE SET rule = excluded.rule",
                params![ymd(*day), after],
            )?;
            console::audit(
                &tx,
                &console::NewAudit {
                    actor: by,
                    action: console::AuditAction::ScheduleSet,
                    target: &ymd(*day),
                    before,
                    after: Some(after),
                },
                now,
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn set_quotas(
        &mut self,
        quotas: &[QuotaChange],
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<(), QuotaRefusal>> {
        let tx = console::write_tx(&mut self.conn)?;
        for (index, q) in quotas.iter().enumerate() {
            let before: Option<(u32, u32)> = tx
                .query_row(
                    "SELECT places, used FROM quota_leases WHERE day = ?1 AND site = ?2",
                    params![ymd(q.day), q.site],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((_, used)) = before.filter(|(_, used)| *used > q.places) {
                return Ok(Err(QuotaRefusal { index, used }));
            }
            tx.execute(
                "INSERT INTO quota_leases (day, site, places) VALUES (?1, ?2, ?3)
                 ON CONFLICT (day, site) DO UPDATE SET places = excluded.places",
                params![ymd(q.day), q.site, q.places],
            )?;
            console::audit(
                &tx,
                &console::NewAudit {
                    actor: by,
                    action: console::AuditAction::QuotaSet,
                    target: &format!("{} {}", ymd(q.day), q.site),
                    before: before.map(|(places, used)| quota_json(places, used)),
                    after: Some(quota_json(q.places, before.map_or(0, |(_, used)| used))),
                },
                now,
            )?;
        }
        tx.commit()?;
        Ok(Ok(()))
    }

    fn set_admission(&mut self, day: NaiveDate, rule: DayRule) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO admission_days (day, rule) VALUES (?1, ?2)
             ON CONFLICT (day) DO UPDATE SET rule = excluded.rule",
            params![ymd(day), serde_json::to_string(&rule)?],
        )?;
        Ok(())
    }

    fn set_quota(&mut self, day: NaiveDate, site: &str, places: u32) -> anyhow::Result<QuotaLease> {
        self.conn.execute(
            "INSERT INTO quota_leases (day, site, places) VALUES (?1, ?2, ?3)
             ON CONFLICT (day, site) DO UPDATE SET places = excluded.places",
            params![ymd(day), site, places],
        )?;
        let lease = self.conn.query_row(
            "SELECT id, day, site, places, used FROM quota_leases WHERE day = ?1 AND site = ?2",
            params![ymd(day), site],
            read_lease,
        )?;
        Ok(lease)
    }

    fn revoke_member(&mut self, id: i64, by: &Actor, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let revoked: Option<Option<String>> = tx
            .query_row(
                "SELECT revoked_at FROM members WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()?;
        let Some(revoked) = revoked else {
            return Ok(false);
        };
        if revoked.is_none() {
            tx.execute(
                "UPDATE members SET revoked_at = ?2 WHERE id = ?1",
                params![id, now.to_rfc3339()],
            )?;
            touch(&tx, "member", id)?;
            let target = member_number(id);
            console::audit(&tx, &console::member_revoked_entry(by, &target), now)?;
        }
        tx.commit()?;
        Ok(true)
    }

    fn revoke_card(
        &mut self,
        id: i64,
        serial: u16,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let known: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM members WHERE id = ?1)",
            [id],
            |row| row.get(0),
        )?;
        if known {
            let revoked = tx.execute(
                "INSERT OR IGNORE INTO revoked_cards (member_id, serial, revoked_at)
                 VALUES (?1, ?2, ?3)",
                params![id, serial, now.to_rfc3339()],
            )?;
            if revoked == 1 {
                // Counters learn it at their next pull.
                touch(&tx, "card", card_key(id, serial))?;
                let target = console::card_target(id, serial);
                console::audit(&tx, &console::card_revoked_entry(by, &target), now)?;
            }
        }
        tx.commit()?;
        Ok(known)
    }

    fn redemption_key_id(&mut self, public_key: &[u8; 32]) -> anyhow::Result<Option<u16>> {
        let found: Option<i64> = self
            .conn
            .query_row(
                "SELECT key_id FROM redemption_keys WHERE public_key = ?1 AND retired_at IS NULL",
                [&public_key[..]],
                |row| row.get(0),
            )
            .optional()?;
        found.map(u16::try_from).transpose().map_err(Into::into)
    }

    fn add_watch_authority(
        &mut self,
        public_key: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let added = self.conn.execute(
            "INSERT OR IGNORE INTO watch_authorities (public_key, added_at) VALUES (?1, ?2)",
            params![&public_key[..], now.to_rfc3339()],
        )?;
        Ok(added == 1)
    }

    fn add_redemption_key(
        &mut self,
        public_key: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<u16> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let next: i64 = tx.query_row(
            "SELECT COALESCE(MAX(key_id) + 1, 1) FROM redemption_keys",
            [],
            |row| row.get(0),
        )?;
        let key_id = u16::try_from(next).context("every redemption key id is used")?;
        tx.execute(
            "INSERT INTO redemption_keys (key_id, public_key, created_at) VALUES (?1, ?2, ?3)",
            params![key_id, &public_key[..], now.to_rfc3339()],
        )?;
        touch(&tx, "key", i64::from(key_id))?;
        tx.commit()?;
        Ok(key_id)
    }

    fn pull(
        &mut self,
        terminal: &Terminal,
        cursor: i64,
        limit: u32,
        today: NaiveDate,
    ) -> anyhow::Result<PullPage> {
        pull_page(&self.conn, terminal, cursor, limit, today)
    }

    fn find_member(
        &mut self,
        name: &str,
        birth_date: NaiveDate,
        phone: &str,
    ) -> anyhow::Result<Option<i64>> {
        let phone: String = phone.chars().filter(char::is_ascii_digit).collect();
        let identity = self.data_key()?.identity(name, birth_date, &phone);
        Ok(self
            .conn
            .prepare_cached("SELECT id FROM members WHERE identity = ?1")?
            .query_row([&identity[..]], |row| row.get(0))
            .optional()?)
    }

    fn card_serial_allowed(&mut self, member: i64) -> anyhow::Result<Option<u16>> {
        let found: Option<(bool, Option<u16>)> = self
            .conn
            .prepare_cached(
                "SELECT m.revoked_at IS NOT NULL, r.serial FROM members m
                 LEFT JOIN card_replacements r ON r.member_id = m.id WHERE m.id = ?1",
            )?
            .query_row([member], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        Ok(central_core::cards::replacement_allowed(
            found.map(|(revoked, _)| revoked),
            found.and_then(|(_, serial)| serial),
        ))
    }

    fn reconciliation(
        &mut self,
        terminal: &Terminal,
        day: NaiveDate,
    ) -> anyhow::Result<ReconciliationReport> {
        reconciliation_report(&self.conn, terminal, day)
    }

    fn hold_totals(&mut self, day: NaiveDate) -> anyhow::Result<Vec<HoldCount>> {
        let mut stmt = self.conn.prepare(
            "SELECT terminal_id, status, count(*), COALESCE(SUM(amount), 0) FROM holds
             WHERE day = ?1 GROUP BY terminal_id, status ORDER BY terminal_id, status",
        )?;
        let rows = stmt.query_map([ymd(day)], |r| {
            Ok(HoldCount {
                terminal: r.get(0)?,
                status: r.get(1)?,
                count: r.get(2)?,
                points: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn overspend(&mut self, day: NaiveDate) -> anyhow::Result<Vec<HoldLine>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {HOLD_COLUMNS} FROM holds h
             WHERE h.member_id IN (SELECT member_id FROM holds
                                   WHERE day = ?1 AND status IN ('insufficient', 'token_reused'))
               AND h.day = ?1
             ORDER BY h.member_id, h.rowid"
        ))?;
        let rows = stmt.query_map([ymd(day)], read_hold)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn commit_group(
        &mut self,
        writes: &[Write],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<WriteReply>> {
        let key = self.data_key()?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .context("starting a write transaction")?;
        // The set in force as this transaction sees it: read again only when its version
        // changed (a publish or a cancel, by any process), so a group never rates with a
        // stale one.
        let in_force = policies::refresh(&tx, &mut self.in_force)?;
        let mut rules = Rules {
            policies: &in_force.set,
            key: &key,
            certified: &mut self.certified,
        };
        tx.prepare_cached("DELETE FROM nonces WHERE seen_at < ?1")?
            .execute([now.timestamp() - NONCE_RETENTION_SECONDS])
            .context("forgetting old nonces")?;
        let mut replies = Vec::with_capacity(writes.len());
        for write in writes {
            // Savepoints by cached statements: `Transaction::savepoint` parses its SQL anew
            // for every write. An error leaves the savepoint open; the transaction is then
            // dropped, which rolls everything back.
            tx.prepare_cached("SAVEPOINT write")?
                .execute([])
                .context("starting a savepoint")?;
            let reply = match write {
                Write::Enroll {
                    code_hash,
                    public_key,
                    name,
                } => enroll(&tx, code_hash, public_key, name, now),
                Write::Sync {
                    terminal,
                    nonce,
                    operations,
                    prechecked,
                } => sync(
                    &tx, &mut rules, *terminal, nonce, operations, prechecked, now,
                ),
                Write::IssueCard(request) => issue_card(&tx, request, now),
                Write::Contact {
                    terminal,
                    day,
                    sequence,
                } => record_contact(&tx, *terminal, *day, *sequence),
                Write::Seen(sightings) => record_sightings(&tx, sightings),
                Write::Activity { counts, keep_from } => record_activity(&tx, counts, keep_from),
            }?;
            if matches!(reply, WriteReply::Refused(_)) {
                tx.prepare_cached("ROLLBACK TO write")?
                    .execute([])
                    .context("rolling back a refused request")?;
            }
            tx.prepare_cached("RELEASE write")?
                .execute([])
                .context("releasing a savepoint")?;
            replies.push(reply);
        }
        tx.commit().context("committing a write group")?;
        Ok(replies)
    }

    fn checkpoint_on_commit(&mut self, on: bool) -> anyhow::Result<()> {
        // SQLite's default: a checkpoint by the committing connection at 1,000 pages.
        self.conn
            .pragma_update(None, "wal_autocheckpoint", if on { 1000 } else { 0 })
            .context("setting wal_autocheckpoint")
    }

    fn check_data_key(&mut self) -> anyhow::Result<()> {
        self.data_key().map(|_| ())
    }

    fn add_operator(
        &mut self,
        name: &str,
        role: OperatorRole,
        code_hash: &[u8; 32],
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<Operator>> {
        console::add_operator(&mut self.conn, name, role, code_hash, by, now)
    }

    fn operators(&mut self) -> anyhow::Result<Vec<Operator>> {
        console::operators(&self.conn)
    }

    fn operator_login(&mut self, name: &str) -> anyhow::Result<Option<OperatorLogin>> {
        console::operator_login(&self.conn, name)
    }

    fn set_up_operator(
        &mut self,
        name: &str,
        code_hash: &[u8; 32],
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        console::set_up_operator(&mut self.conn, name, code_hash, password_hash, now)
    }

    fn record_login_failure(
        &mut self,
        failed: &FailedLogin,
        now: DateTime<Utc>,
    ) -> anyhow::Result<LoginState> {
        console::record_login_failure(&mut self.conn, failed, now)
    }

    fn open_session(
        &mut self,
        operator: &OperatorLogin,
        session: &NewSession,
        address: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        console::open_session(&mut self.conn, operator, session, address, now)
    }

    fn resume_session(
        &mut self,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Resumed> {
        console::resume_session(&mut self.conn, token_hash, now)
    }

    fn end_session(
        &mut self,
        token_hash: &[u8; 32],
        session: &Session,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        console::end_session(&mut self.conn, token_hash, session, now)
    }

    fn disable_operator(
        &mut self,
        id: i64,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        console::disable_operator(&mut self.conn, id, by, now)
    }

    fn audit_log(&mut self, query: &AuditQuery) -> anyhow::Result<Vec<AuditEntry>> {
        console::audit_log(&self.conn, query)
    }

    fn policies(&mut self) -> anyhow::Result<Arc<crate::policies::InForce>> {
        policies::refresh(&self.conn, &mut self.in_force)
    }

    fn policy_rows(&mut self) -> anyhow::Result<Vec<crate::policies::PolicyRow>> {
        policies::rows(&self.conn)
    }

    fn publish_policy(
        &mut self,
        candidate: &crate::policies::Candidate,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<crate::policies::PolicyRow, crate::policies::PolicyRefusal>> {
        policies::publish(&mut self.conn, candidate, by, now)
    }

    fn rerate_policy(
        &mut self,
        candidate: &crate::policies::Candidate,
        confirm: Option<&str>,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<crate::policies::RerateReport, crate::policies::PolicyRefusal>> {
        let key = self.data_key()?;
        policies::rerate(&mut self.conn, &key, candidate, confirm, by, now)
    }

    fn cancel_policy(
        &mut self,
        name: &str,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<crate::policies::PolicyRow, crate::policies::PolicyRefusal>> {
        policies::cancel(&mut self.conn, name, by, now)
    }

    fn provision_terminal(
        &mut self,
        site: &str,
        role: Role,
        code_hash: &[u8; 32],
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Terminal> {
        console::provision_terminal(&mut self.conn, site, role, code_hash, by, now)
    }

    fn revoke_terminal_as(
        &mut self,
        id: i64,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Change> {
        console::revoke_terminal(&mut self.conn, id, by, now)
    }

    fn member_overview(&mut self, id: i64) -> anyhow::Result<Option<MemberOverview>> {
        let key = self.data_key()?;
        console::member_overview(&self.conn, &key, id)
    }

    fn revoke_card_as(
        &mut self,
        member: i64,
        serial: u16,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Change> {
        console::revoke_card(&mut self.conn, member, serial, by, now)
    }

    fn replace_card(
        &mut self,
        member: i64,
        serial: u16,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<u16>> {
        console::replace_card(&mut self.conn, member, serial, by, now)
    }

    fn unpair_watch(
        &mut self,
        member: i64,
        serial: &str,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Change> {
        console::unpair_watch(&mut self.conn, member, serial, by, now)
    }

    fn checkpoint(&mut self) -> anyhow::Result<Option<WalPages>> {
        match self
            .conn
            .wal_checkpoint_v2(None::<&str>, rusqlite::wal::CheckpointMode::PASSIVE)
        {
            Ok((logged, copied)) => Ok(match (u32::try_from(logged), u32::try_from(copied)) {
                (Ok(logged), Ok(copied)) => Some(WalPages { logged, copied }),
                _ => None,
            }),
            Err(error)
                if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    || error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseLocked) =>
            {
                Ok(None)
            }
            Err(error) => Err(anyhow::Error::new(error).context("checkpointing the WAL")),
        }
    }
}

/// Records the first card of a member this kiosk signed up, or finds the same card recorded
/// by an identical request before (a retry after a lost answer gets the same card).
fn issue_card(
    tx: &Connection,
    request: &CardRequest,
    now: DateTime<Utc>,
) -> anyhow::Result<WriteReply> {
    let member: Option<(i64, bool)> = tx
        .prepare_cached("SELECT terminal_id, revoked_at IS NOT NULL FROM members WHERE id = ?1")?
        .query_row([request.member], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    /// PIN cost, salt, PIN tag, issued at, expires at.
    type CardRow = (u8, Vec<u8>, Vec<u8>, i64, i64);
    let existing: Option<CardRow> = tx
        .prepare_cached(
            "SELECT pin_cost, salt, pin_tag, issued_at, expires_at FROM cards
             WHERE member_id = ?1 AND serial = ?2",
        )?
        .query_row(params![request.member, request.serial], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .optional()?;
    let replacement: Option<u16> = tx
        .prepare_cached("SELECT serial FROM card_replacements WHERE member_id = ?1")?
        .query_row([request.member], |row| row.get(0))
        .optional()?;
    let ask = cards::PinCheck {
        serial: request.serial,
        pin_cost: request.pin_cost,
        salt: &request.salt,
        pin_tag: &request.pin_tag,
    };
    let before = existing
        .as_ref()
        .map(|(cost, salt, tag, issued_at, expires_at)| {
            (
                cards::PinCheck {
                    serial: request.serial,
                    pin_cost: *cost,
                    salt,
                    pin_tag: tag,
                },
                CardRecord {
                    issued_at: *issued_at,
                    expires_at: *expires_at,
                },
            )
        });
    let record = match cards::issue(
        request.terminal,
        &ask,
        member,
        replacement,
        before.as_ref().map(|(check, record)| (check, *record)),
        now,
    ) {
        Ok(cards::Issue::Again(record)) => return Ok(WriteReply::Card(record)),
        Ok(cards::Issue::New(record)) => record,
        Err(refusal) => return Ok(WriteReply::CardRefused(refusal)),
    };
    tx.prepare_cached(
        "INSERT INTO cards (member_id, serial, pin_cost, salt, pin_tag, issued_at, expires_at,
                            terminal_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        request.member,
        request.serial,
        request.pin_cost,
        &request.salt[..],
        &request.pin_tag[..],
        record.issued_at,
        record.expires_at,
        request.terminal
    ])?;
    Ok(WriteReply::Card(record))
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

/// What applying operations needs besides the database: the points policies and the key
/// personal data is sealed under.
struct Rules<'a> {
    policies: &'a PolicySet,
    key: &'a DataKey,
    certified: &'a mut CertifiedWatches,
}

fn sync(
    tx: &Connection,
    rules: &mut Rules<'_>,
    terminal: i64,
    nonce: &str,
    operations: &[Operation],
    prechecked: &[bool],
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
    let fresh = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO nonces (terminal_id, nonce, seen_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![terminal.id, nonce, now.timestamp()])?;
    if fresh == 0 {
        return Ok(WriteReply::Refused(Refusal::ReplayedNonce));
    }
    let mut results = Vec::with_capacity(operations.len());
    for (index, op) in operations.iter().enumerate() {
        let checked = prechecked.get(index).copied().unwrap_or(false);
        results.push(
            apply_operation(tx, rules, &terminal, op, checked, now)
                .with_context(|| format!("applying operation {:?}", op.op_id))?,
        );
    }
    Ok(WriteReply::Synced(results))
}

fn payload_hash(op: &Operation) -> anyhow::Result<[u8; 32]> {
    Ok(Sha256::digest(central_core::payload_bytes(op)).into())
}

fn apply_operation(
    tx: &Connection,
    rules: &mut Rules<'_>,
    terminal: &Terminal,
    op: &Operation,
    prechecked: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<OpResult> {
    if op.op_id.is_empty() || op.op_id.len() > central_core::MAX_OP_ID_CHARS {
        return Ok(OpResult::rejected(&op.op_id, RejectReason::InvalidPayload));
    }
    let hash = payload_hash(op)?;
    let earlier: Option<(i64, Vec<u8>, String)> = tx
        .prepare_cached(
            "SELECT terminal_id, payload_sha256, result FROM operations WHERE op_id = ?1",
        )?
        .query_row([&op.op_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    if let Some((earlier_terminal, earlier_hash, result)) = earlier {
        let result: OpResult =
            serde_json::from_str(&result).context("reading a stored operation result")?;
        return Ok(central_core::answer_again(
            &op.op_id,
            terminal.id,
            &hash,
            (earlier_terminal, &earlier_hash, result),
        ));
    }
    let op_id = op.op_id.as_str();
    let result = match central_core::admit(op, terminal.role) {
        Err(reason) => OpResult::rejected(op_id, reason),
        Ok(OpPayload::Enrollment(payload)) => {
            enroll_member(tx, rules.key, terminal, op_id, &payload, now)?
        }
        Ok(OpPayload::StepReport(payload)) => {
            record_steps(tx, rules, terminal, op_id, &payload, prechecked, now)?
        }
        Ok(OpPayload::RedemptionHold(payload)) => {
            hold(tx, rules.policies, terminal, op, &payload, now)?
        }
        Ok(OpPayload::Void(payload)) => void(tx, terminal, op_id, &payload, op.seq, now)?,
        Ok(OpPayload::WrongPin(payload)) => wrong_pin(tx, terminal, op_id, &payload, now)?,
        Ok(OpPayload::WatchPairing(payload)) => pair_watch(tx, terminal, op, &payload, now)?,
    };
    if result.status != OpStatus::Rejected {
        // Rejections are not remembered: the same operation sent again is judged again and,
        // being the same, rejected again.
        tx.prepare_cached(
            "INSERT INTO operations (op_id, terminal_id, kind, payload_sha256, result, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            op.op_id,
            terminal.id,
            op.kind,
            &hash[..],
            serde_json::to_string(&result)?,
            now.to_rfc3339()
        ])?;
    }
    Ok(result)
}

/// The member an applied `enrollment` of `terminal` created (or found, for a person already
/// a member).
fn enrolled_member(
    tx: &Connection,
    terminal: &Terminal,
    op_id: &str,
) -> anyhow::Result<Option<i64>> {
    let result: Option<String> = tx
        .prepare_cached(
            "SELECT result FROM operations
             WHERE op_id = ?1 AND terminal_id = ?2 AND kind = 'enrollment'",
        )?
        .query_row(params![op_id, terminal.id], |row| row.get(0))
        .optional()?;
    let Some(result) = result else {
        return Ok(None);
    };
    let result: OpResult =
        serde_json::from_str(&result).context("reading a stored enrollment result")?;
    Ok(result
        .member_number
        .as_deref()
        .and_then(parse_member_number))
}

/// Pairs a watch to a member. A kiosk names its own sign-up; any other pairing names the
/// member by number and carries the member's token as proof that the member was there
/// (checked at `paired_at`, which must be within the offline window and, by the terminal's
/// numbering, not on a day the terminal had already left behind).
fn pair_watch(
    tx: &Connection,
    terminal: &Terminal,
    op: &Operation,
    payload: &WatchPairingPayload,
    now: DateTime<Utc>,
) -> anyhow::Result<OpResult> {
    let op_id = op.op_id.as_str();
    let rejected = |reason| Ok(OpResult::rejected(op_id, reason));
    let claim = match pairing::read(payload) {
        Ok(claim) => claim,
        Err(reason) => return rejected(reason),
    };
    let serial = claim.serial.as_str();
    let wanted = match &claim.names {
        Names::Member { member, .. } => *member,
        Names::Enrollment(enrollment) => match enrolled_member(tx, terminal, enrollment)? {
            Some(id) => Some(id),
            None => return rejected(RejectReason::UnknownEnrollment),
        },
    };
    let member_id = match holds::member(wanted, member_revoked(tx, wanted)?) {
        Ok(id) => id,
        Err(reason) => return rejected(reason),
    };
    if let Names::Member { proof, .. } = &claim.names {
        let Some((token, paired_at)) = proof else {
            return rejected(RejectReason::PairingNeedsToken);
        };
        let day = ymd(points_core::kst_day(*paired_at));
        let told = match op.seq {
            Some(_) => told_after(tx, terminal.id, &day)?,
            None => None,
        };
        if let Err(reason) = pairing::check_time(*paired_at, op.seq, told, now) {
            return rejected(reason);
        }
        if let Err(reason) = holds::token(
            token,
            member_id,
            &redemption_key_set(tx)?,
            &revocations_of(tx, member_id)?,
            paired_at.to_utc(),
        ) {
            return rejected(reason);
        }
    }
    let holder: Option<i64> = tx
        .prepare_cached(
            "SELECT member_id FROM watch_pairings WHERE serial = ?1 AND ended_at IS NULL",
        )?
        .query_row([serial], |row| row.get(0))
        .optional()?;
    let mut result = OpResult::accepted(op_id);
    result.member_number = Some(member_number(member_id));
    match pairing::decide(member_id, holder) {
        Ok(Pairing::Already) => {
            result.status = OpStatus::Duplicate;
            return Ok(result);
        }
        Ok(Pairing::Paired) => {}
        Err(reason) => return rejected(reason),
    }
    let at = now.to_rfc3339();
    let previous: Option<i64> = tx
        .prepare_cached("SELECT id FROM watch_pairings WHERE member_id = ?1 AND ended_at IS NULL")?
        .query_row([member_id], |row| row.get(0))
        .optional()?;
    if let Some(previous) = previous {
        tx.prepare_cached("UPDATE watch_pairings SET ended_at = ?2 WHERE id = ?1")?
            .execute(params![previous, at])?;
        touch(tx, "watch", previous)?;
    }
    tx.prepare_cached(
        "INSERT INTO watch_pairings (serial, member_id, terminal_id, op_id, paired_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![serial, member_id, terminal.id, op_id, at])?;
    touch(tx, "watch", tx.last_insert_rowid())?;
    Ok(result)
}

fn enroll_member(
    tx: &Connection,
    key: &DataKey,
    terminal: &Terminal,
    op_id: &str,
    payload: &EnrollmentPayload,
    now: DateTime<Utc>,
) -> anyhow::Result<OpResult> {
    let claim = match enroll::read(payload, now) {
        Ok(claim) => claim,
        Err(reason) => return Ok(OpResult::rejected(op_id, reason)),
    };
    let identity = key.identity(&claim.name, claim.birth_date, &claim.phone);
    let existing: Option<i64> = tx
        .prepare_cached("SELECT id FROM members WHERE identity = ?1")?
        .query_row([&identity[..]], |row| row.get(0))
        .optional()?;
    let (id, status) = match existing {
        Some(id) => (id, OpStatus::Duplicate),
        None => {
            let facts = lease_facts(tx, &terminal.site, claim.day, now)?;
            match enroll::place(&facts) {
                Ok(enroll::Place::FromLease) => {
                    tx.prepare_cached(
                        "UPDATE quota_leases SET used = used + 1 WHERE day = ?1 AND site = ?2",
                    )?
                    .execute(params![ymd(claim.day), terminal.site])?;
                }
                Ok(enroll::Place::Free) => {}
                Err(reason) => return Ok(OpResult::rejected(op_id, reason)),
            }
            let person = Person {
                name: claim.name,
                birth_date: claim.birth_date,
                phone: claim.phone,
            };
            let sealed = key.seal(&identity, &person, fresh_nonce()?);
            tx.prepare_cached(
                "INSERT INTO members (identity, sealed, terminal_id, op_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                &identity[..],
                sealed,
                terminal.id,
                op_id,
                now.to_rfc3339()
            ])?;
            let id = tx.last_insert_rowid();
            tx.execute("INSERT INTO balances (member_id) VALUES (?1)", [id])?;
            (id, OpStatus::Accepted)
        }
    };
    let mut result = OpResult::accepted(op_id);
    result.status = status;
    result.member_number = Some(member_number(id));
    Ok(result)
}

/// A member's sealed identity and ledger snapshot, read for each step report.
const MEMBER_AND_LEDGER: &str = "SELECT m.identity, m.sealed, b.ledger FROM members m
     LEFT JOIN balances b ON b.member_id = m.id WHERE m.id = ?1";

fn record_steps(
    tx: &Connection,
    rules: &mut Rules<'_>,
    terminal: &Terminal,
    op_id: &str,
    payload: &StepReportPayload,
    prechecked: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<OpResult> {
    let claim = match steps::read(payload) {
        Ok(claim) => claim,
        Err(reason) => return Ok(OpResult::rejected(op_id, reason)),
    };
    // The ledger is a pure function of the member's reports in the order received; the
    // member's balance row keeps it as a snapshot, so the new report yields exactly the
    // entries it newly earns without reading any earlier report.
    let member = tx
        .prepare_cached(MEMBER_AND_LEDGER)?
        .query_row([claim.member], |row| {
            Ok((
                row.get::<_, Vec<u8>>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, Option<Vec<u8>>>(2)?,
            ))
        })
        .optional()?;
    let Some((identity, sealed, snapshot)) = member else {
        return Ok(OpResult::rejected(op_id, RejectReason::UnknownMember));
    };
    let member_id = claim.member;
    // The ledger needs the birth date (a senior's goal), which only the sealed record holds.
    let birth_date = rules
        .key
        .open(&identity, &sealed)
        .with_context(|| format!("opening member {member_id}'s sealed record"))?
        .birth_date;
    let ledger = match &snapshot {
        Some(bytes) => Ledger::from_snapshot(birth_date, bytes)
            .with_context(|| format!("member {member_id}'s stored ledger"))?,
        None => Ledger::new(birth_date),
    };
    let authorities = watch_authorities(tx)?;
    let (paired, proof_seen) = match (&claim.watch, authorities.is_empty()) {
        (Some((serial, counter)), false) => watch_facts(tx, serial, *counter, member_id)?,
        _ => (false, false),
    };
    let state = steps::StepState {
        ledger,
        snapshot: snapshot.as_deref(),
        authorities: &authorities,
        paired,
        proof_seen,
    };
    let credit = match steps::decide(
        payload,
        &claim,
        state,
        rules.policies,
        rules.certified,
        prechecked,
        now,
    ) {
        Ok(credit) => credit,
        Err(reason) => return Ok(OpResult::rejected(op_id, reason)),
    };
    if let Some((serial, counter)) = &credit.proof {
        tx.prepare_cached("INSERT INTO watch_proofs (serial, counter, op_id) VALUES (?1, ?2, ?3)")?
            .execute(params![serial, counter, op_id])?;
    }
    tx.prepare_cached(
        "INSERT INTO step_reports (member_id, day, steps, reported_at, terminal_id, op_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        member_id,
        ymd(claim.day),
        claim.steps,
        credit.reported_at.to_rfc3339(),
        terminal.id,
        op_id
    ])?;
    for entry in &credit.entries {
        tx.prepare_cached(
            "INSERT INTO ledger_entries (member_id, kind, day, points, op_id)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            member_id,
            entry.kind.as_str(),
            ymd(entry.day),
            entry.points,
            op_id
        ])?;
    }
    if credit.points > 0 || credit.ledger_changed {
        tx.prepare_cached(
            "INSERT INTO balances (member_id, credited, ledger) VALUES (?1, ?2, ?3)
             ON CONFLICT (member_id) DO UPDATE
             SET credited = credited + excluded.credited, ledger = excluded.ledger",
        )?
        .execute(params![
            member_id,
            i64::try_from(credit.points)?,
            credit.ledger
        ])?;
    }
    if credit.points > 0 {
        touch(tx, "balance", member_id)?;
    }
    let mut result = OpResult::accepted(op_id);
    result.member_number = Some(member_number(member_id));
    result.points = Some(credit.points);
    result.ignored = credit.ignored.map(|i| i.as_str().to_owned());
    Ok(result)
}

/// The public keys of the watch authorities the program trusts.
fn watch_authorities(tx: &Connection) -> anyhow::Result<Vec<[u8; 32]>> {
    Ok(tx
        .prepare_cached("SELECT public_key FROM watch_authorities")?
        .query_map([], |row| row.get::<_, Vec<u8>>(0))?
        .filter_map(|key| key.ok().and_then(|k| <[u8; 32]>::try_from(k).ok()))
        .collect())
}

/// Whether watch `serial` is paired to `member_id` now, and whether its proof `counter` was
/// credited before.
fn watch_facts(
    tx: &Connection,
    serial: &str,
    counter: u32,
    member_id: i64,
) -> anyhow::Result<(bool, bool)> {
    let paired: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM watch_pairings
                            WHERE serial = ?1 AND member_id = ?2 AND ended_at IS NULL)",
        )?
        .query_row(params![serial, member_id], |row| row.get(0))?;
    let seen: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM watch_proofs WHERE serial = ?1 AND counter = ?2)",
        )?
        .query_row(params![serial, counter], |row| row.get(0))?;
    Ok((paired, seen))
}

/// Creates the database file readable and writable by its owner alone (0600) if it does not
/// exist yet: it holds members' personal data. SQLite gives its `-wal` and `-shm` files the
/// database file's permissions. An existing file's permissions are the operator's.
fn create_private(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| {
            format!("데이터베이스 파일을 만들지 못했습니다 / could not create {path:?}")
        }),
    }
}

pub(crate) fn parse_ymd(day: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(day, "%Y-%m-%d").with_context(|| format!("a stored day {day:?}"))
}

fn ymd(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// Records that `(kind, key)` changed, giving it the next change sequence number.
pub(crate) fn touch(tx: &Connection, kind: &str, key: i64) -> anyhow::Result<()> {
    tx.prepare_cached(
        "INSERT INTO changes (kind, key, seq)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM changes))
         ON CONFLICT (kind, key) DO UPDATE SET seq = excluded.seq",
    )?
    .execute(params![kind, key])?;
    Ok(())
}

/// What the quota leases say of a sign-up at `site` on `day` (`enroll::LeaseFacts`), made at
/// `now`.
fn lease_facts(
    tx: &Connection,
    site: &str,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> anyhow::Result<enroll::LeaseFacts> {
    let today = points_core::kst_day(now);
    let lease: Option<(i64, i64)> = tx
        .prepare_cached("SELECT places, used FROM quota_leases WHERE day = ?1 AND site = ?2")?
        .query_row(params![ymd(day), site], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let day_under_quota: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM quota_leases WHERE day = ?1)")?
        .query_row([ymd(day)], |row| row.get(0))?;
    let (from, to) = enroll::quota_since_days(day, today).into_inner();
    let quota_since: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM quota_leases WHERE day >= ?1 AND day <= ?2)")?
        .query_row([ymd(from), ymd(to)], |row| row.get(0))?;
    Ok(enroll::LeaseFacts {
        lease,
        day_under_quota,
        quota_since,
    })
}

fn read_lease(row: &rusqlite::Row<'_>) -> rusqlite::Result<QuotaLease> {
    let day: String = row.get(1)?;
    Ok(QuotaLease {
        lease_id: format!("Q-{:06}", row.get::<_, i64>(0)?),
        site: row.get(2)?,
        day: NaiveDate::parse_from_str(&day, "%Y-%m-%d").unwrap_or_default(),
        places: row.get(3)?,
        used: row.get(4)?,
    })
}

fn balance_of(tx: &Connection, member_id: i64) -> anyhow::Result<(i64, i64)> {
    Ok(tx
        .prepare_cached("SELECT credited, spent FROM balances WHERE member_id = ?1")?
        .query_row([member_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?
        .unwrap_or((0, 0)))
}

/// The published redemption keys as a counter trusts them: a retired key covers the tokens
/// issued before it was retired.
fn redemption_key_set(tx: &Connection) -> anyhow::Result<KeySet> {
    let mut stmt =
        tx.prepare_cached("SELECT key_id, public_key, retired_at FROM redemption_keys")?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, u16>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, Option<String>>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut published = Vec::with_capacity(rows.len());
    for (key_id, public_key, retired_at) in rows {
        let not_after = retired_at
            .map(|at| DateTime::parse_from_rfc3339(&at).map(|at| at.to_utc()))
            .transpose()
            .with_context(|| format!("redemption key {key_id}'s retirement time"))?;
        published.push(holds::published_key(key_id, &public_key, not_after));
    }
    KeySet::new(&published).map_err(|e| anyhow::anyhow!("the stored redemption keys: {e}"))
}

/// What revokes `member`'s token: the member, or one of their cards.
fn revocations_of(tx: &Connection, member_id: i64) -> anyhow::Result<Revocations> {
    let mut revocations = Revocations::default();
    let member = MemberNo(u64::try_from(member_id)?);
    let revoked: bool = tx
        .prepare_cached("SELECT revoked_at IS NOT NULL FROM members WHERE id = ?1")?
        .query_row([member_id], |row| row.get(0))
        .optional()?
        .unwrap_or(false);
    if revoked {
        revocations.members.insert(member);
    }
    let mut stmt = tx.prepare_cached("SELECT serial FROM revoked_cards WHERE member_id = ?1")?;
    for serial in stmt.query_map([member_id], |row| row.get::<_, u16>(0))? {
        revocations.cards.insert(RevokedCard {
            member,
            serial: serial?,
        });
    }
    Ok(revocations)
}

fn hold(
    tx: &Connection,
    policies: &PolicySet,
    terminal: &Terminal,
    op: &Operation,
    payload: &RedemptionHoldPayload,
    now: DateTime<Utc>,
) -> anyhow::Result<OpResult> {
    let op_id = op.op_id.as_str();
    let rejected = |reason| Ok(OpResult::rejected(op_id, reason));
    let claim = match holds::read(payload, &terminal.label(), now) {
        Ok(claim) => claim,
        Err(reason) => return rejected(reason),
    };
    // ... and not on a day the terminal had already left behind by its own numbering.
    let day = ymd(claim.day);
    if let Some(seq) = op.seq {
        if holds::made_after_day(seq, told_after(tx, terminal.id, &day)?) {
            return rejected(RejectReason::HoldTimeOutOfWindow);
        }
    }
    let member_id = match holds::member(claim.member, member_revoked(tx, claim.member)?) {
        Ok(id) => id,
        Err(reason) => return rejected(reason),
    };
    // The member's token, checked as a counter checks it (but the card PIN) at the hold's
    // time: a terminal cannot spend points without something the member showed.
    let claims = match holds::token(
        &payload.token,
        member_id,
        &redemption_key_set(tx)?,
        &revocations_of(tx, member_id)?,
        claim.held_at.to_utc(),
    ) {
        Ok(claims) => claims,
        Err(reason) => return rejected(reason),
    };
    let token = holds::token_id(&claims, &member_number(member_id), op_id);
    let limits = OfflineLimits::in_force(policies, claim.day);
    // A refused hold is remembered (it is evidence of overspending), and the same operation
    // sent again gets the same refusal without a second row.
    let earlier: Option<String> = tx
        .prepare_cached("SELECT status FROM holds WHERE op_id = ?1")?
        .query_row([op_id], |row| row.get(0))
        .optional()?;
    let earlier = match earlier.as_deref().map(HoldStatus::parse) {
        Some(Some(HoldStatus::Posted | HoldStatus::Voided)) => {
            anyhow::bail!("hold {op_id:?} is recorded but has no operation")
        }
        Some(None) => anyhow::bail!("hold {op_id:?} has a status this server does not know"),
        Some(status) => status,
        None => None,
    };
    let card_spent_today: i64 = tx
        .prepare_cached(
            "SELECT COALESCE(SUM(amount), 0) FROM holds
             WHERE member_id = ?1 AND day = ?2 AND card_serial IS NOT NULL
               AND status = 'posted'",
        )?
        .query_row(params![member_id, day], |row| row.get(0))?;
    let token_used: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM holds
                            WHERE token_id = ?1 AND status IN ('posted', 'voided'))",
        )?
        .query_row([&token], |row| row.get(0))?;
    let (credited, spent) = balance_of(tx, member_id)?;
    let spending = holds::Spending {
        earlier,
        card_spent_today: u64::try_from(card_spent_today)?,
        token_used,
        balance: credited - spent,
    };
    let (status, before) = match holds::settle(&claim, &claims, &limits, &spending) {
        holds::Settled::Refused(reason) => return rejected(reason),
        holds::Settled::Recorded {
            status,
            balance_before,
        } => (status, balance_before),
    };
    let amount = i64::try_from(claim.amount)?;
    tx.prepare_cached(
        "INSERT INTO holds (op_id, member_id, amount, token_id, held_at, day, terminal_id,
                            status, balance_before, card_serial, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        op_id,
        member_id,
        amount,
        token,
        claim.held_at.to_rfc3339(),
        day,
        terminal.id,
        status.as_str(),
        before,
        claims.card_serial,
        op.seq.and_then(|seq| i64::try_from(seq).ok())
    ])?;
    if let Some(reason) = status.refusal() {
        return rejected(reason);
    }
    tx.prepare_cached("UPDATE balances SET spent = spent + ?2 WHERE member_id = ?1")?
        .execute(params![member_id, amount])?;
    touch(tx, "balance", member_id)?;
    let mut result = OpResult::accepted(op_id);
    result.member_number = Some(member_number(member_id));
    result.balance = Some(before - amount);
    Ok(result)
}

/// Whether member `id` is revoked; `None` when there is no such member.
fn member_revoked(tx: &Connection, id: Option<i64>) -> anyhow::Result<Option<bool>> {
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(tx
        .prepare_cached("SELECT revoked_at IS NOT NULL FROM members WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?)
}

/// A void, decided by `holds::void` with the posted hold it names.
fn void(
    tx: &Connection,
    terminal: &Terminal,
    op_id: &str,
    payload: &VoidPayload,
    seq: Option<u64>,
    now: DateTime<Utc>,
) -> anyhow::Result<OpResult> {
    let found: Option<(i64, i64, String, Option<i64>)> = tx
        .prepare_cached(
            "SELECT member_id, amount, day, seq FROM holds
             WHERE op_id = ?1 AND terminal_id = ?2 AND status = 'posted'",
        )?
        .query_row(params![payload.hold_op_id, terminal.id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()?;
    let (posted, told) = match &found {
        Some((_, _, day, seq)) => (
            Some(holds::PostedHold {
                day: parse_ymd(day)?,
                seq: *seq,
            }),
            told_after(tx, terminal.id, day)?,
        ),
        None => (None, None),
    };
    if let Err(reason) = holds::void(&payload.voided_at, seq, posted, told, now) {
        return Ok(OpResult::rejected(op_id, reason));
    }
    let Some((member_id, amount, _, _)) = found else {
        anyhow::bail!("a void of no hold was taken");
    };
    tx.prepare_cached("UPDATE holds SET status = 'voided', void_op_id = ?2 WHERE op_id = ?1")?
        .execute(params![payload.hold_op_id, op_id])?;
    tx.prepare_cached("UPDATE balances SET spent = spent - ?2 WHERE member_id = ?1")?
        .execute(params![member_id, amount])?;
    touch(tx, "balance", member_id)?;
    let (credited, spent) = balance_of(tx, member_id)?;
    let mut result = OpResult::accepted(op_id);
    result.member_number = Some(member_number(member_id));
    result.balance = Some(credited - spent);
    Ok(result)
}

/// For each operation, whether it is a step report carrying a watch proof that verifies
/// under the key of the certificate it carries, for [`Write::Sync`]'s `prechecked`
/// (`central_core::steps::precheck`). The HTTP side runs it before the writer.
pub fn precheck_day_proofs(operations: &[Operation]) -> Vec<bool> {
    operations
        .iter()
        .map(|op| {
            op.kind == "step_report"
                && serde_json::from_value::<StepReportPayload>(op.payload.clone())
                    .is_ok_and(|payload| steps::precheck(&payload))
        })
        .collect()
}

/// The key of a member card in the change log: the member's id and the card's serial.
fn card_key(member_id: i64, serial: u16) -> i64 {
    member_id * 65_536 + i64::from(serial)
}

/// Records a wrong PIN a counter saw for a card, on the day it was typed (Asia/Seoul). The
/// failure that brings the card's day to [`PIN_LOCK_FAILURES`] locks it for the rest of that
/// day at every counter (they learn it by pull).
fn wrong_pin(
    tx: &Connection,
    terminal: &Terminal,
    op_id: &str,
    payload: &WrongPinPayload,
    now: DateTime<Utc>,
) -> anyhow::Result<OpResult> {
    let failure = match cards::read_wrong_pin(payload, now) {
        Ok(failure) => failure,
        Err(reason) => return Ok(OpResult::rejected(op_id, reason)),
    };
    let member_id = match failure.member {
        Some(id) if member_exists(tx, id)? => id,
        _ => return Ok(OpResult::rejected(op_id, RejectReason::UnknownMember)),
    };
    let (day, at) = (ymd(failure.day), failure.at);
    tx.prepare_cached(
        "INSERT INTO card_pin_failures (member_id, serial, day, at, terminal_id, op_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        member_id,
        payload.serial,
        day,
        at.to_rfc3339(),
        terminal.id,
        op_id
    ])?;
    let failures: u32 = tx
        .prepare_cached(
            "SELECT count(*) FROM card_pin_failures WHERE member_id = ?1 AND serial = ?2 AND day = ?3",
        )?
        .query_row(params![member_id, payload.serial, day], |row| row.get(0))?;
    if cards::locks_now(failures) {
        touch(tx, "card", card_key(member_id, payload.serial))?;
    }
    let mut result = OpResult::accepted(op_id);
    result.member_number = Some(member_number(member_id));
    Ok(result)
}

fn member_exists(tx: &Connection, id: i64) -> anyhow::Result<bool> {
    Ok(tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM members WHERE id = ?1)")?
        .query_row([id], |row| row.get(0))?)
}

/// Remembers the operation number a terminal told on `day`, if it is the first of that day.
fn record_contact(
    tx: &Connection,
    terminal: i64,
    day: NaiveDate,
    sequence: u64,
) -> anyhow::Result<WriteReply> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO terminal_contacts (terminal_id, day, sequence)
         VALUES (?1, ?2, ?3)",
    )?
    .execute(params![
        terminal,
        ymd(day),
        i64::try_from(sequence).unwrap_or(i64::MAX)
    ])?;
    Ok(WriteReply::Contacted)
}

/// Records sightings, keeping for each terminal the latest time seen and the latest report.
fn record_sightings(tx: &Connection, sightings: &[Sighting]) -> anyhow::Result<WriteReply> {
    // Heard: the latest time wins. The report: the latest report wins, whatever order the
    // processes write them in.
    let mut heard = tx.prepare_cached(
        "INSERT INTO terminal_seen (terminal_id, seen_ms) VALUES (?1, ?2)
         ON CONFLICT (terminal_id) DO UPDATE SET seen_ms = max(seen_ms, excluded.seen_ms)",
    )?;
    let mut report = tx.prepare_cached(
        "UPDATE terminal_seen SET reported_ms = ?2, app_version = ?3, waiting = ?4,
                                  oldest_waiting_s = ?5, clock_offset_s = ?6
         WHERE terminal_id = ?1 AND ?2 > coalesce(reported_ms, -1)",
    )?;
    for seen in sightings {
        let row = SeenRow::from(seen);
        heard.execute(params![seen.terminal, row.seen_ms])?;
        report.execute(params![
            seen.terminal,
            row.reported_ms,
            row.app_version,
            row.waiting,
            row.oldest_waiting_s,
            row.clock_offset_s,
        ])?;
    }
    Ok(WriteReply::Contacted)
}

/// Adds counts to the minutes' figures and forgets minutes before `keep_from`.
fn record_activity(
    tx: &Connection,
    counts: &[ActivityCount],
    keep_from: &str,
) -> anyhow::Result<WriteReply> {
    let mut add = tx.prepare_cached(
        "INSERT INTO activity (minute, figure, count) VALUES (?1, ?2, ?3)
         ON CONFLICT (minute, figure) DO UPDATE SET count = count + excluded.count",
    )?;
    for c in counts {
        add.execute(params![c.minute, c.figure, c.count])?;
    }
    tx.prepare_cached("DELETE FROM activity WHERE minute < ?1")?
        .execute([keep_from])?;
    Ok(WriteReply::Contacted)
}

/// A [`Sighting`] as both stores keep it: times in Unix milliseconds, counts as integers.
pub(crate) struct SeenRow {
    pub seen_ms: i64,
    pub reported_ms: Option<i64>,
    pub app_version: Option<String>,
    pub waiting: Option<i64>,
    pub oldest_waiting_s: Option<i64>,
    pub clock_offset_s: Option<i64>,
}

impl From<&Sighting> for SeenRow {
    fn from(seen: &Sighting) -> SeenRow {
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let report = seen.report.as_ref();
        SeenRow {
            seen_ms: seen.seen_at.timestamp_millis(),
            reported_ms: report.map(|(at, _)| at.timestamp_millis()),
            app_version: report.map(|(_, r)| r.app_version.clone()),
            waiting: report.map(|(_, r)| int(r.waiting)),
            oldest_waiting_s: report.and_then(|(_, r)| r.oldest_waiting_s).map(int),
            clock_offset_s: report.and_then(|(_, r)| r.clock_offset_s),
        }
    }
}

impl SeenRow {
    /// The sighting of `terminal` this row keeps.
    pub(crate) fn sighting(self, terminal: i64) -> Sighting {
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        let report = match (self.reported_ms, self.app_version) {
            (Some(ms), Some(app_version)) => Some((
                at(ms),
                TerminalReport {
                    app_version,
                    waiting: self
                        .waiting
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0),
                    oldest_waiting_s: self.oldest_waiting_s.and_then(|n| u64::try_from(n).ok()),
                    clock_offset_s: self.clock_offset_s,
                },
            )),
            _ => None,
        };
        Sighting {
            terminal,
            seen_at: at(self.seen_ms),
            report,
        }
    }
}

/// The lowest operation number `terminal` told the server on any day after `day`.
fn told_after(tx: &Connection, terminal: i64, day: &str) -> anyhow::Result<Option<i64>> {
    Ok(tx
        .prepare_cached(
            "SELECT MIN(sequence) FROM terminal_contacts WHERE terminal_id = ?1 AND day > ?2",
        )?
        .query_row(params![terminal, day], |row| row.get(0))?)
}

const HOLD_COLUMNS: &str = "h.op_id, h.member_id, h.amount, h.token_id, h.held_at, h.status, \
                            h.balance_before, h.terminal_id";

fn read_hold(row: &rusqlite::Row<'_>) -> rusqlite::Result<HoldLine> {
    Ok(HoldLine {
        op_id: row.get(0)?,
        member_number: member_number(row.get(1)?),
        amount: row.get(2)?,
        token_id: row.get(3)?,
        held_at: row.get(4)?,
        status: row.get(5)?,
        balance_before: row.get(6)?,
        terminal: terminal_label(row.get(7)?),
    })
}

const MAX_REPORT_HOLDS: usize = 10_000;

fn reconciliation_report(
    conn: &Connection,
    terminal: &Terminal,
    day: NaiveDate,
) -> anyhow::Result<ReconciliationReport> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {HOLD_COLUMNS} FROM holds h WHERE h.day = ?1 AND h.terminal_id = ?2
         ORDER BY h.rowid LIMIT ?3"
    ))?;
    let mut holds: Vec<HoldLine> = stmt
        .query_map(
            params![ymd(day), terminal.id, i64::try_from(MAX_REPORT_HOLDS + 1)?],
            read_hold,
        )?
        .collect::<Result<_, _>>()?;
    let truncated = holds.len() > MAX_REPORT_HOLDS;
    holds.truncate(MAX_REPORT_HOLDS);
    let mut report = ReconciliationReport {
        terminal: terminal.label(),
        site: terminal.site.clone(),
        day: ymd(day),
        posted: HoldTotals::default(),
        voided: HoldTotals::default(),
        insufficient: HoldTotals::default(),
        token_reused: HoldTotals::default(),
        holds: Vec::new(),
        truncated,
    };
    let mut totals = conn.prepare(
        "SELECT status, COUNT(*), SUM(amount) FROM holds
         WHERE day = ?1 AND terminal_id = ?2 GROUP BY status",
    )?;
    let rows = totals.query_map(params![ymd(day), terminal.id], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (status, count, points) = row?;
        let slot = match status.as_str() {
            "posted" => &mut report.posted,
            "voided" => &mut report.voided,
            "insufficient" => &mut report.insufficient,
            _ => &mut report.token_reused,
        };
        *slot = HoldTotals {
            count: u64::try_from(count)?,
            points,
        };
    }
    report.holds = holds;
    Ok(report)
}

/// How many days ahead a kiosk is told the schedule and its leases.
const DAYS_AHEAD: u64 = 31;

fn pull_page(
    conn: &Connection,
    terminal: &Terminal,
    cursor: i64,
    limit: u32,
    today: NaiveDate,
) -> anyhow::Result<PullPage> {
    let limit = limit.clamp(1, 1000);
    let mut page = PullPage {
        cursor,
        ..PullPage::default()
    };
    let mut stmt = conn.prepare_cached(
        "SELECT kind, key, seq FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let changes: Vec<(String, i64, i64)> = stmt
        .query_map(params![cursor, i64::from(limit) + 1], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    page.more = changes.len() > limit as usize;
    for (kind, key, seq) in changes.into_iter().take(limit as usize) {
        page.cursor = seq;
        match kind.as_str() {
            "balance" => {
                let (credited, spent) = balance_of(conn, key)?;
                page.balances.push(BalanceSnapshot {
                    member_number: member_number(key),
                    credited,
                    spent,
                    balance: credited - spent,
                });
            }
            "member" => page.revoked_members.push(member_number(key)),
            "watch" => {
                let row: Option<(String, i64, bool)> = conn
                    .prepare_cached(
                        "SELECT serial, member_id, ended_at IS NOT NULL FROM watch_pairings
                         WHERE id = ?1",
                    )?
                    .query_row([key], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                    .optional()?;
                if let Some((serial, member_id, ended)) = row {
                    page.watch_pairings.push(WatchPairing {
                        serial,
                        member_number: member_number(member_id),
                        ended,
                    });
                }
            }
            "key" => {
                let row: Option<(Vec<u8>, bool)> = conn
                    .query_row(
                        "SELECT public_key, retired_at IS NOT NULL FROM redemption_keys
                         WHERE key_id = ?1",
                        [key],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional()?;
                if let Some((public_key, retired)) = row {
                    use base64::Engine as _;
                    page.redemption_keys.push(RedemptionKey {
                        key_id: u16::try_from(key)?,
                        public_key: base64::engine::general_purpose::STANDARD.encode(public_key),
                        retired,
                    });
                }
            }
            "card" => {
                let (member_id, serial) = (key / 65_536, u16::try_from(key % 65_536)?);
                let revoked: bool = conn
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM revoked_cards
                                        WHERE member_id = ?1 AND serial = ?2)",
                    )?
                    .query_row(params![member_id, serial], |row| row.get(0))?;
                let locked_on: Option<String> = conn
                    .prepare_cached(
                        "SELECT day FROM card_pin_failures WHERE member_id = ?1 AND serial = ?2
                         GROUP BY day HAVING count(*) >= ?3 ORDER BY day DESC LIMIT 1",
                    )?
                    .query_row(params![member_id, serial, PIN_LOCK_FAILURES], |row| {
                        row.get(0)
                    })
                    .optional()?;
                page.cards.push(CardState {
                    member_number: member_number(member_id),
                    serial,
                    revoked,
                    locked_on,
                });
            }
            other => anyhow::bail!("unknown change kind {other:?}"),
        }
    }
    if terminal.role == Role::Kiosk {
        let until = today
            .checked_add_days(chrono::Days::new(DAYS_AHEAD))
            .unwrap_or(today);
        let mut schedule = AdmissionSchedule::default();
        let mut stmt = conn.prepare_cached(
            "SELECT day, rule FROM admission_days WHERE day >= ?1 AND day <= ?2 ORDER BY day",
        )?;
        let rows = stmt.query_map(params![ymd(today), ymd(until)], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (day, rule) = row?;
            let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .with_context(|| format!("stored admission day {day:?}"))?;
            let rule: DayRule = serde_json::from_str(&rule)
                .with_context(|| format!("stored admission rule {rule:?}"))?;
            schedule.days.insert(day, rule);
        }
        page.admission = Some(schedule);
        let mut stmt = conn.prepare_cached(
            "SELECT id, day, site, places, used FROM quota_leases
             WHERE site = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day",
        )?;
        page.quota_leases = stmt
            .query_map(params![terminal.site, ymd(today), ymd(until)], read_lease)?
            .collect::<Result<_, _>>()?;
    }
    Ok(page)
}

impl SqliteStore {
    /// Caps this connection's database at `pages` pages (SQLite's `max_page_count`, never below
    /// its size now) and returns the cap in force: a write that needs more fails with
    /// SQLITE_FULL, as on a full disk. For tests where no small disk can be mounted.
    pub fn set_max_page_count(&mut self, pages: u32) -> anyhow::Result<u64> {
        let cap: i64 = self
            .conn
            .pragma_update_and_check(None, "max_page_count", pages, |row| row.get(0))
            .context("setting max_page_count")?;
        Ok(u64::try_from(cap)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_policies_load() -> anyhow::Result<()> {
        let set = published_policies()?;
        assert_eq!(set.policies().len(), 3);
        Ok(())
    }

    /// Two connections to a new database, the second opened once the first has made it.
    fn two_stores() -> anyhow::Result<(tempfile::TempDir, SqliteStore, SqliteStore)> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("central.db");
        let policies = Arc::new(published_policies()?);
        let first = SqliteStore::open(&path, Arc::clone(&policies))?;
        let second = SqliteStore::open(&path, policies)?;
        Ok((dir, first, second))
    }

    #[test]
    fn a_cached_statement_is_compiled_once_whatever_is_bound_to_it() -> anyhow::Result<()> {
        // SQLite would compile the member read again after each use (its plan might differ
        // for `id = 0` or `1`, and the statement cache clears bindings), unless plans are
        // fixed at prepare time; SQLite counts each time it did.
        let (_dir, store, _second) = two_stores()?;
        for member in [0_i64, 1, 2, 1, 7, 0] {
            let mut statement = store.conn.prepare_cached(MEMBER_AND_LEDGER)?;
            statement.query([member])?.next()?;
        }
        let statement = store.conn.prepare_cached(MEMBER_AND_LEDGER)?;
        assert_eq!(
            statement.get_status(rusqlite::StatementStatus::RePrepare),
            0
        );
        Ok(())
    }

    #[test]
    fn a_new_database_and_its_log_are_the_owners_alone() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let (dir, _store, _again) = two_stores()?;
        for name in ["central.db", "central.db-wal", "central.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(name))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
        }
        Ok(())
    }

    #[test]
    fn a_fresh_database_is_at_the_latest_schema() -> anyhow::Result<()> {
        let (_dir, mut store, mut again) = two_stores()?;
        assert_eq!(store.schema_version()?, SCHEMA_VERSION);
        assert_eq!(again.schema_version()?, SCHEMA_VERSION);
        Ok(())
    }

    /// A database at schema 4 (operations with a row id, step reports with their own unique
    /// op-id index, ledgers only as reports) keeps every row through migrations 5 and 6, an
    /// operation it holds is still recognised when sent again, and the member's ledger is
    /// made from their reports: the day already credited earns nothing again.
    #[test]
    fn migrations_5_and_6_keep_operations_reports_and_ledgers() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("central.db");
        let enrollment = op(
            "e-1",
            "enrollment",
            serde_json::json!({ "name": "김영희", "birth_date": "1950-04-01", "phone": "01012345678" }),
        );
        {
            let conn = Connection::open(&path)?;
            for sql in &MIGRATIONS[..4] {
                conn.execute_batch(sql)?;
            }
            conn.pragma_update(None, "user_version", 4)?;
            let at = "2025-12-01T12:00:00+00:00";
            conn.execute(
                "INSERT INTO terminals (id, site, role, public_key, created_at, enrolled_at)
                 VALUES (1, 'site', 'kiosk', ?1, ?2, ?2)",
                params![&[1u8; 32][..], at],
            )?;
            conn.execute(
                "INSERT INTO members (id, name, birth_date, phone, terminal_id, op_id, created_at)
                 VALUES (1, '김영희', '1950-04-01', '01012345678', 1, 'e-1', ?1)",
                [at],
            )?;
            conn.execute(
                "INSERT INTO balances (member_id, credited) VALUES (1, 100)",
                [],
            )?;
            let insert_op = "INSERT INTO operations
                (op_id, terminal_id, kind, payload_sha256, result, received_at)
                VALUES (?1, 1, ?2, ?3, ?4, ?5)";
            conn.execute(
                insert_op,
                params![
                    "e-1",
                    "enrollment",
                    &payload_hash(&enrollment)?[..],
                    r#"{"op_id":"e-1","status":"accepted","member_number":"PP-00000001"}"#,
                    at
                ],
            )?;
            conn.execute(
                insert_op,
                params![
                    "s-1",
                    "step_report",
                    &payload_hash(&steps("s-1", 1, 9000))?[..],
                    r#"{"op_id":"s-1","status":"accepted","member_number":"PP-00000001","points":100}"#,
                    at
                ],
            )?;
            conn.execute(
                "INSERT INTO step_reports (member_id, day, steps, reported_at, terminal_id, op_id)
                 VALUES (1, '2025-12-01', 9000, '2025-12-01T21:00:00+09:00', 1, 's-1')",
                [],
            )?;
            conn.execute(
                "INSERT INTO ledger_entries (member_id, kind, day, points, op_id)
                 VALUES (1, 'daily', '2025-12-01', 100, 's-1')",
                [],
            )?;
        }
        let mut store = SqliteStore::open(&path, Arc::new(published_policies()?))?;
        assert_eq!(store.schema_version()?, SCHEMA_VERSION);
        let count = |store: &SqliteStore, table: &str| -> rusqlite::Result<i64> {
            store
                .conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        };
        assert_eq!(count(&store, "operations")?, 2);
        assert_eq!(count(&store, "step_reports")?, 1);
        assert_eq!(count(&store, "ledger_entries")?, 1);
        let schema: Vec<String> = store
            .conn
            .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        assert!(schema
            .iter()
            .any(|sql| sql.starts_with("CREATE TABLE \"operations\"")
                && sql.ends_with("WITHOUT ROWID")));
        assert!(!schema
            .iter()
            .any(|sql| sql.contains("ledger_entries_member")));
        assert!(!schema.iter().any(|sql| sql.contains("step_reports_member")));
        let snapshot: Vec<u8> =
            store
                .conn
                .query_row("SELECT ledger FROM balances WHERE member_id = 1", [], |r| {
                    r.get(0)
                })?;
        let ledger = Ledger::from_snapshot("1950-04-01".parse()?, &snapshot)?;
        assert_eq!(ledger.total(), 100);
        assert_eq!(ledger.day_steps("2025-12-01".parse()?), Some(9000));
        let integrity: String = store
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!(integrity, "ok");
        let now = DateTime::parse_from_rfc3339("2025-12-03T12:00:00+09:00")?.with_timezone(&Utc);
        let replies = store.commit_group(
            &[Write::Sync {
                terminal: 1,
                nonce: "nonce-after-migration".to_owned(),
                operations: vec![steps("s-1", 1, 9000), steps("s-2", 2, 9000)],
                prechecked: Vec::new(),
            }],
            now,
        )?;
        let WriteReply::Synced(results) = &replies[0] else {
            panic!("not synced: {replies:?}");
        };
        assert_eq!(results[0].status, OpStatus::Duplicate);
        assert_eq!(results[1].status, OpStatus::Accepted);
        assert_eq!(results[1].points, Some(100));
        let replies = store.commit_group(
            &[Write::Sync {
                terminal: 1,
                nonce: "nonce-after-migration-2".to_owned(),
                operations: vec![steps("s-1b", 1, 9500)],
                prechecked: Vec::new(),
            }],
            now,
        )?;
        assert_eq!(
            points(&replies),
            vec![0],
            "day 1 was credited before the migration"
        );
        assert_eq!(count(&store, "step_reports")?, 3);
        // Migration 11 sealed the member: nothing of them is left in clear in the file, the
        // sealed record opens under the key beside the database, and the same person signing
        // up again is found through the keyed hash.
        drop(store);
        let bytes = std::fs::read(&path)?;
        for clear in ["김영희".as_bytes(), b"01012345678", b"1950-04-01"] {
            assert!(!bytes.windows(clear.len()).any(|w| w == clear));
        }
        let mut store = SqliteStore::open(&path, Arc::new(published_policies()?))?;
        let (identity, sealed): (Vec<u8>, Vec<u8>) = store.conn.query_row(
            "SELECT identity, sealed FROM members WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let person = store.data_key()?.open(&identity, &sealed)?;
        assert_eq!(
            (person.name.as_str(), person.phone.as_str()),
            ("김영희", "01012345678")
        );
        assert_eq!(
            store.find_member("김영희", "1950-04-01".parse()?, "010-1234-5678")?,
            Some(1)
        );
        Ok(())
    }

    /// A member's name, birth date and phone are kept only sealed under the data key; the
    /// same person is found again by the keyed hash; a database opened with another key, or
    /// without its key file, is refused, and a missing key file is made only for a database
    /// with nothing sealed yet.
    #[test]
    fn personal_data_is_sealed_and_found_only_with_the_databases_key() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("central.db");
        let key_file = dir.path().join("keys").join("data.key");
        let policies = Arc::new(published_policies()?);
        let now = DateTime::parse_from_rfc3339("2025-12-03T12:00:00+09:00")?.with_timezone(&Utc);
        let mut store = SqliteStore::open_with_data_key(&path, Arc::clone(&policies), &key_file)?;
        // Nothing sealed yet, so the key file is made, beside nothing of the database.
        store.data_key()?;
        assert!(key_file.exists());
        assert!(!personal::default_file(&path).exists());
        store.conn.execute(
            "INSERT INTO terminals (id, site, role, public_key, created_at, enrolled_at)
             VALUES (1, 'site', 'kiosk', ?1, ?2, ?2)",
            params![&[1u8; 32][..], now.to_rfc3339()],
        )?;
        let sign_up = |store: &mut SqliteStore, op_id: &str, phone: &str| {
            let replies = store.commit_group(
                &[Write::Sync {
                    terminal: 1,
                    nonce: format!("nonce-{op_id}"),
                    operations: vec![op(
                        op_id,
                        "enrollment",
                        serde_json::json!({ "name": " 박순자 ", "birth_date": "1948-02-29", "phone": phone }),
                    )],
                    prechecked: Vec::new(),
                }],
                now,
            )?;
            let WriteReply::Synced(results) = &replies[0] else {
                anyhow::bail!("not synced: {replies:?}");
            };
            anyhow::Ok((results[0].status, results[0].member_number.clone()))
        };
        let (status, number) = sign_up(&mut store, "e-1", "010-9876-5432")?;
        assert_eq!(status, OpStatus::Accepted);
        let (again, same) = sign_up(&mut store, "e-2", "01098765432")?;
        assert_eq!((again, same.clone()), (OpStatus::Duplicate, number));
        let (other, _) = sign_up(&mut store, "e-3", "01098765433")?;
        assert_eq!(other, OpStatus::Accepted);
        drop(store);
        std::fs::copy(&path, dir.path().join("copy.db"))?;
        let file = std::fs::read(dir.path().join("copy.db"))?;
        for clear in ["박순자".as_bytes(), b"98765432", b"1948-02-29"] {
            assert!(!file.windows(clear.len()).any(|w| w == clear));
        }

        // Another key: refused, before and at the first use of the key.
        let wrong = dir.path().join("wrong.key");
        std::fs::write(&wrong, [9u8; 32])?;
        let mut store = SqliteStore::open_with_data_key(&path, Arc::clone(&policies), &wrong)?;
        let refused = store.data_key().err().context("another key is refused")?;
        assert!(
            format!("{refused}").contains("--data-key-file"),
            "{refused}"
        );
        // The key file missing: refused, and no new key made in its place.
        let missing = dir.path().join("missing.key");
        let mut store = SqliteStore::open_with_data_key(&path, Arc::clone(&policies), &missing)?;
        let refused = store.data_key().err().context("a missing key is refused")?;
        assert!(format!("{refused}").contains("does not exist"), "{refused}");
        assert!(!missing.exists());
        assert!(store.commit_group(&[], now).is_err());
        // The right key finds the member.
        let mut store = SqliteStore::open_with_data_key(&path, policies, &key_file)?;
        assert_eq!(
            store
                .find_member("박순자", "1948-02-29".parse()?, "010 9876 5432")?
                .map(member_number),
            same
        );
        assert_eq!(
            store.find_member("박순자", "1948-02-28".parse()?, "01098765432")?,
            None
        );
        Ok(())
    }

    /// The check made before the writer: a step report whose proof verifies under its own
    /// certificate is marked, a changed total, another watch's certificate, an unsigned
    /// report or another kind of operation is not (the writer checks those itself).
    #[test]
    fn day_proofs_are_prechecked_under_their_own_certificate() -> anyhow::Result<()> {
        let ca = watch_protocol::WatchCa::from_seed([3; 32]);
        let key = watch_protocol::WatchKey::from_seed([4; 32]);
        let certificate = |serial: &str| -> anyhow::Result<String> {
            let cert = ca.certify(serial, key.public_key())?;
            Ok(watch_protocol::proof::hex(&cert.encode()?))
        };
        let day: NaiveDate = "2025-12-02".parse()?;
        let proof = key.sign_day("PW-1", day, 8000, 7, 1_764_700_000)?;
        let report = |steps: u32, cert: &str| {
            op(
                "s",
                "step_report",
                serde_json::json!({
                    "member_number": "PP-00000001", "day": "2025-12-02", "steps": steps,
                    "reported_at": "2025-12-03T09:00:00+09:00",
                    "watch": { "serial": "PW-1", "certificate": cert, "counter": 7,
                               "signed_at": 1_764_700_000u32,
                               "signature": watch_protocol::proof::hex(&proof.signature) },
                }),
            )
        };
        let ops = [
            report(8000, &certificate("PW-1")?),
            report(9000, &certificate("PW-1")?),
            report(8000, &certificate("PW-2")?),
            steps("s-unsigned", 2, 8000),
            op("e", "enrollment", serde_json::json!({})),
        ];
        assert_eq!(
            precheck_day_proofs(&ops),
            vec![true, false, false, false, false]
        );
        Ok(())
    }

    /// Why the writer copies the log's tail itself: a log checkpointed by another connection
    /// while the writer has a group open is never wholly copied when the writer next begins,
    /// so it never starts over and grows with every group; one checkpoint between two groups
    /// (a moment only the writer knows) lets the next commit start the log over.
    #[test]
    fn the_log_starts_over_only_after_a_checkpoint_between_groups() -> anyhow::Result<()> {
        let (_dir, mut writer, mut other) = two_stores()?;
        writer.checkpoint_on_commit(false)?;
        let group = |writer: &mut SqliteStore, other: Option<&mut SqliteStore>, n: i64| {
            let tx = writer.conn.transaction()?;
            for i in 0..50 {
                tx.execute(
                    "INSERT INTO nonces (terminal_id, nonce, seen_at) VALUES (?1, ?2, 0)",
                    params![n, format!("nonce-{n}-{i}-{}", "x".repeat(200))],
                )?;
            }
            // The other connection checkpoints while the group is open.
            let copied = match other {
                Some(other) => other.checkpoint()?,
                None => None,
            };
            tx.commit()?;
            anyhow::Ok(copied)
        };
        let mut logged = Vec::new();
        for n in 0..20 {
            if let Some(pages) = group(&mut writer, Some(&mut other), n)? {
                logged.push(pages.logged);
            }
        }
        assert!(
            logged.windows(2).all(|w| w[1] > w[0]),
            "the log grows with every group: {logged:?}"
        );
        let long = *logged.last().unwrap_or(&0);
        let tail = writer
            .checkpoint()?
            .ok_or_else(|| anyhow::anyhow!("no checkpoint"))?;
        assert_eq!(tail.copied, tail.logged, "the writer copies the whole log");
        group(&mut writer, None, 20)?;
        let after = other
            .checkpoint()?
            .ok_or_else(|| anyhow::anyhow!("no checkpoint"))?;
        assert!(
            after.logged < long / 4,
            "the log started over: {} pages after, {long} before",
            after.logged
        );
        Ok(())
    }

    fn op(op_id: &str, kind: &str, payload: serde_json::Value) -> Operation {
        Operation {
            op_id: op_id.to_owned(),
            kind: kind.to_owned(),
            payload,
            seq: None,
        }
    }

    fn steps(op_id: &str, day: u32, steps: u32) -> Operation {
        op(
            op_id,
            "step_report",
            serde_json::json!({
                "member_number": "PP-00000001",
                "day": format!("2025-12-{day:02}"),
                "steps": steps,
                "reported_at": format!("2025-12-{day:02}T21:00:00+09:00"),
            }),
        )
    }

    fn points(replies: &[WriteReply]) -> Vec<u64> {
        replies
            .iter()
            .flat_map(|reply| match reply {
                WriteReply::Synced(results) => {
                    results.iter().map(|r| r.points.unwrap_or(0)).collect()
                }
                _ => Vec::new(),
            })
            .collect()
    }

    /// Two connections writing one member's reports in turn rate them as one would: each
    /// reads the ledger the other stored (a second report for the day the other connection
    /// credited earns nothing).
    #[test]
    fn connections_taking_turns_rate_as_one() -> anyhow::Result<()> {
        let (_dir, mut warm, mut cold) = two_stores()?;
        let now = DateTime::parse_from_rfc3339("2025-12-08T12:00:00+09:00")?.with_timezone(&Utc);
        warm.add_terminal("site", Role::Kiosk, &[7; 32], now)?;
        let mut nonce = 0;
        let mut sync = |store: &mut SqliteStore, ops: Vec<Operation>| {
            nonce += 1;
            store.commit_group(
                &[Write::Sync {
                    terminal: 1,
                    nonce: format!("nonce-{nonce:012}"),
                    operations: ops,
                    prechecked: Vec::new(),
                }],
                now,
            )
        };
        warm.commit_group(
            &[Write::Enroll {
                code_hash: [7; 32],
                public_key: [1; 32],
                name: "k".to_owned(),
            }],
            now,
        )?;
        let enrolled = sync(
            &mut warm,
            vec![op(
                "e-1",
                "enrollment",
                serde_json::json!({ "name": "김영희", "birth_date": "1950-04-01", "phone": "01012345678" }),
            )],
        )?;
        assert!(matches!(&enrolled[0], WriteReply::Synced(r) if r[0].status == OpStatus::Accepted));
        // Monday 2025-12-01 to Sunday 2025-12-07: goal met every day, weekly bonus on the fifth
        // goal day that includes a weekend day (Saturday the 6th).
        let mut got = Vec::new();
        got.extend(points(&sync(
            &mut warm,
            vec![steps("s-1", 1, 9000), steps("s-2", 2, 9000)],
        )?));
        got.extend(points(&sync(&mut warm, vec![steps("s-3", 3, 9000)])?));
        got.extend(points(&sync(&mut cold, vec![steps("s-4", 4, 9000)])?));
        got.extend(points(&sync(&mut warm, vec![steps("s-4b", 4, 9500)])?));
        got.extend(points(&sync(
            &mut warm,
            vec![steps("s-5", 5, 9000), steps("s-5b", 5, 3000)],
        )?));
        got.extend(points(&sync(
            &mut warm,
            vec![steps("s-6", 6, 9000), steps("s-7", 7, 9000)],
        )?));
        assert_eq!(got, vec![100, 100, 100, 100, 0, 100, 0, 600, 100]);
        let credited: i64 = warm.conn.query_row(
            "SELECT credited FROM balances WHERE member_id = 1",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(
            credited, 1200,
            "the city's own example: 7 goal days = 1,200 points"
        );
        Ok(())
    }
}
