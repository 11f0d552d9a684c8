//! What the operator console keeps: operators (a password's Argon2id hash, or the SHA-256 of
//! a one-time setup code until one is set), console sessions (the SHA-256 of each session's
//! token, never the token) and the audit log. The types both stores answer with, and the
//! SQLite store's SQL; `postgres::console` is the same in PostgreSQL's.
//!
//! Each change is one transaction with its audit entry, so an entry exists exactly when the
//! change does. The rules (lockout, session lifetimes, a setup code's expiry) are
//! `crate::console::rules`'; the store loads what they read and writes what they return.

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension as _, TransactionBehavior};

use crate::console::rules::{self, LoginState, Role, SessionVerdict};
use crate::personal::DataKey;
use crate::store::{card_key, member_number, terminal_label, touch, Terminal, TERMINAL_COLUMNS};
use crate::wire::Role as TerminalRole;

/// The SQLite schema of migration 12 (PostgreSQL's is the same in its types).
pub const SQLITE_MIGRATION: &str = "CREATE TABLE operators (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        password_hash TEXT,
        setup_code_hash BLOB UNIQUE,
        setup_expires_at TEXT,
        failed_logins INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT,
        disabled_at TEXT,
        last_login_at TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE console_sessions (
        token_hash BLOB PRIMARY KEY,
        operator_id INTEGER NOT NULL REFERENCES operators (id),
        csrf TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL
    );
    CREATE INDEX console_sessions_operator ON console_sessions (operator_id);
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        operator_id INTEGER,
        operator_name TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        before TEXT,
        after TEXT
    );
    CREATE INDEX audit_log_action ON audit_log (action, id);";

/// An operator, as the operators page lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The operator's number.
    pub id: i64,
    /// The name they sign in with.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Whether they have set their password.
    pub set_up: bool,
    /// Failed logins in a row and the lock.
    pub login: LoginState,
    /// Whether they were disabled.
    pub disabled: bool,
    /// Their last successful login.
    pub last_login: Option<DateTime<Utc>>,
    /// When they were added.
    pub created: DateTime<Utc>,
}

/// What a login checks, for the operator with the name typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorLogin {
    /// The operator's number.
    pub id: i64,
    /// Their name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// The Argon2id hash of their password (PHC string), once set up.
    pub password_hash: Option<String>,
    /// Failed logins in a row and the lock.
    pub login: LoginState,
    /// Whether they were disabled.
    pub disabled: bool,
}

/// Who made a change: an operator, or the command line (no id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The operator's number; `None` for the command line or an unknown name.
    pub id: Option<i64>,
    /// The name recorded.
    pub name: String,
}

impl Actor {
    /// The `palpal-central` command line, run on the server.
    pub fn command_line() -> Actor {
        Actor {
            id: None,
            name: "palpal-central (command line)".to_owned(),
        }
    }
}

/// A session being opened: the SHA-256 of its token and its CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// SHA-256 of the token in the cookie.
    pub token_hash: [u8; 32],
    /// The token every form of the session carries.
    pub csrf: String,
}

/// A live session and who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The operator's number.
    pub operator: i64,
    /// Their name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// The session's CSRF token.
    pub csrf: String,
}

/// What became of a session asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resumed {
    /// It goes on (its last use is now).
    Live(Session),
    /// It was over (idle, too old, or its operator disabled) and is now deleted.
    Ended(SessionVerdict),
    /// No session has this token.
    Unknown,
}

/// The closed set of actions the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// An operator was added (with a setup code).
    OperatorAdded,
    /// An operator set their password with their setup code.
    OperatorSetUp,
    /// An operator was disabled (their sessions ended).
    OperatorDisabled,
    /// A login succeeded.
    LoginSucceeded,
    /// A login failed (wrong name or password, locked, disabled, not set up).
    LoginFailed,
    /// Failed logins locked an account.
    AccountLocked,
    /// An operator signed out.
    SignedOut,
    /// A points policy was published (to start on a later day).
    PolicyPublished,
    /// A policy that had not started was cancelled.
    PolicyCancelled,
    /// A policy in force was corrected and every member re-rated.
    PolicyRerated,
    /// A day's sign-up rule was set.
    ScheduleSet,
    /// A site's sign-up places on a day were set.
    QuotaSet,
    /// A terminal was made, waiting for enrollment (its code is never recorded).
    TerminalProvisioned,
    /// A terminal was revoked.
    TerminalRevoked,
    /// A member card was revoked.
    CardRevoked,
    /// A watch's pairing with a member was ended.
    WatchUnpaired,
    /// A lost card was revoked and its replacement allowed.
    CardReplaced,
    /// A member was revoked (every card of theirs refused from then on).
    MemberRevoked,
}

impl AuditAction {
    /// Every action, in the order the audit page offers them.
    pub const ALL: [AuditAction; 18] = [
        AuditAction::OperatorAdded,
        AuditAction::OperatorSetUp,
        AuditAction::OperatorDisabled,
        AuditAction::LoginSucceeded,
        AuditAction::LoginFailed,
        AuditAction::AccountLocked,
        AuditAction::SignedOut,
        AuditAction::PolicyPublished,
        AuditAction::PolicyCancelled,
        AuditAction::PolicyRerated,
        AuditAction::ScheduleSet,
        AuditAction::QuotaSet,
        AuditAction::TerminalProvisioned,
        AuditAction::TerminalRevoked,
        AuditAction::CardRevoked,
        AuditAction::WatchUnpaired,
        AuditAction::CardReplaced,
        AuditAction::MemberRevoked,
    ];

    /// The action as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::OperatorAdded => "operator_added",
            AuditAction::OperatorSetUp => "operator_set_up",
            AuditAction::OperatorDisabled => "operator_disabled",
            AuditAction::LoginSucceeded => "login_succeeded",
            AuditAction::LoginFailed => "login_failed",
            AuditAction::AccountLocked => "account_locked",
            AuditAction::SignedOut => "signed_out",
            AuditAction::PolicyPublished => "policy_published",
            AuditAction::PolicyCancelled => "policy_cancelled",
            AuditAction::PolicyRerated => "policy_rerated",
            AuditAction::ScheduleSet => "schedule_set",
            AuditAction::QuotaSet => "quota_set",
            AuditAction::TerminalProvisioned => "terminal_provisioned",
            AuditAction::TerminalRevoked => "terminal_revoked",
            AuditAction::CardRevoked => "card_revoked",
            AuditAction::WatchUnpaired => "watch_unpaired",
            AuditAction::CardReplaced => "card_replaced",
            AuditAction::MemberRevoked => "member_revoked",
        }
    }

    /// The action stored as `text`.
    pub fn parse(text: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its number, in the order recorded.
    pub id: i64,
    /// When (the server's clock).
    pub at: DateTime<Utc>,
    /// Who: an operator's number, or none (the command line, an unknown name).
    pub operator_id: Option<i64>,
    /// Who, by name.
    pub operator_name: String,
    /// What ([`AuditAction::as_str`]).
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// The state before, as JSON text.
    pub before: Option<String>,
    /// The state after, as JSON text.
    pub after: Option<String>,
}

/// Which entries of the audit log to read, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Entries to skip.
    pub offset: u32,
    /// Entries at most.
    pub limit: u32,
}

/// A failed login to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedLogin {
    /// The operator the name is, if it is one.
    pub operator: Option<i64>,
    /// The name typed (checked to be a possible name), or empty.
    pub name: String,
    /// Why, as recorded (`wrong_password`, `unknown_name`, `locked`, ...).
    pub reason: &'static str,
    /// The address the attempt came from.
    pub address: String,
}

/// How an instant is stored: UTC, milliseconds, so that text order is time order.
pub fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An instant as stored.
pub fn parse_stamp(text: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("a stored time {text:?}"))?
        .to_utc())
}

fn parse_role(text: &str) -> anyhow::Result<Role> {
    Role::parse(text).with_context(|| format!("a stored role {text:?}"))
}

/// A JSON object of `pairs` (values as strings), for an audit entry's before and after.
pub fn json_of(pairs: &[(&str, &str)]) -> String {
    let object: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
        .collect();
    serde_json::Value::Object(object).to_string()
}

/// An audit entry being recorded.
pub struct NewAudit<'a> {
    /// Who.
    pub actor: &'a Actor,
    /// What.
    pub action: AuditAction,
    /// To what.
    pub target: &'a str,
    /// Before, JSON.
    pub before: Option<String>,
    /// After, JSON.
    pub after: Option<String>,
}

pub(crate) fn audit(
    tx: &Connection,
    entry: &NewAudit<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit_log (at, operator_id, operator_name, action, target, before, after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        stamp(now),
        entry.actor.id,
        entry.actor.name,
        entry.action.as_str(),
        entry.target,
        entry.before,
        entry.after
    ])
    .context("recording the audit entry")?;
    Ok(())
}

fn login_state(failures: i64, locked_until: Option<String>) -> anyhow::Result<LoginState> {
    Ok(LoginState {
        failures: u32::try_from(failures).unwrap_or(0),
        locked_until: locked_until.as_deref().map(parse_stamp).transpose()?,
    })
}

pub(crate) fn write_tx(conn: &mut Connection) -> anyhow::Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .context("starting a console write")
}

/// Adds an operator waiting for setup with the code hashing to `code_hash`; `None` if the
/// name is taken.
pub fn add_operator(
    conn: &mut Connection,
    name: &str,
    role: Role,
    code_hash: &[u8; 32],
    by: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Operator>> {
    let tx = write_tx(conn)?;
    let taken: Option<i64> = tx
        .query_row("SELECT id FROM operators WHERE name = ?1", [name], |row| {
            row.get(0)
        })
        .optional()?;
    if taken.is_some() {
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO operators (name, role, setup_code_hash, setup_expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            name,
            role.as_str(),
            &code_hash[..],
            stamp(now + rules::SETUP_CODE_VALIDITY),
            stamp(now)
        ],
    )?;
    let id = tx.last_insert_rowid();
    audit(
        &tx,
        &NewAudit {
            actor: by,
            action: AuditAction::OperatorAdded,
            target: name,
            before: None,
            after: Some(json_of(&[("name", name), ("role", role.as_str())])),
        },
        now,
    )?;
    tx.commit()?;
    Ok(Some(Operator {
        id,
        name: name.to_owned(),
        role,
        set_up: false,
        login: LoginState::default(),
        disabled: false,
        last_login: None,
        created: now,
    }))
}

/// Every operator, by number.
pub fn operators(conn: &Connection) -> anyhow::Result<Vec<Operator>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, role, password_hash IS NOT NULL, failed_logins, locked_until,
                disabled_at IS NOT NULL, last_login_at, created_at
         FROM operators ORDER BY id",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, bool>(3)?,
            row.get::<_, i64>(4)?,
            row.get::<_, Option<String>>(5)?,
            row.get::<_, bool>(6)?,
            row.get::<_, Option<String>>(7)?,
            row.get::<_, String>(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, name, role, set_up, failures, locked, disabled, last, created) = row?;
        out.push(Operator {
            id,
            name,
            role: parse_role(&role)?,
            set_up,
            login: login_state(failures, locked)?,
            disabled,
            last_login: last.as_deref().map(parse_stamp).transpose()?,
            created: parse_stamp(&created)?,
        });
    }
    Ok(out)
}

/// The operator named `name`, for a login.
pub fn operator_login(conn: &Connection, name: &str) -> anyhow::Result<Option<OperatorLogin>> {
    let row = conn
        .prepare_cached(
            "SELECT id, name, role, password_hash, failed_logins, locked_until,
                    disabled_at IS NOT NULL
             FROM operators WHERE name = ?1",
        )?
        .query_row([name], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, bool>(6)?,
            ))
        })
        .optional()?;
    row.map(
        |(id, name, role, password_hash, failures, locked, disabled)| {
            Ok(OperatorLogin {
                id,
                name,
                role: parse_role(&role)?,
                password_hash,
                login: login_state(failures, locked)?,
                disabled,
            })
        },
    )
    .transpose()
}

/// Sets the password (its hash) of the operator `name` if `code_hash` is their setup code's
/// and it still works; the code then no longer does. Whether it was set.
pub fn set_up_operator(
    conn: &mut Connection,
    name: &str,
    code_hash: &[u8; 32],
    password_hash: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let tx = write_tx(conn)?;
    let row: Option<(i64, Option<Vec<u8>>, Option<String>)> = tx
        .query_row(
            "SELECT id, setup_code_hash, setup_expires_at FROM operators
             WHERE name = ?1 AND disabled_at IS NULL",
            [name],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let Some((id, Some(stored), Some(expires))) = row else {
        return Ok(false);
    };
    if !codes_match(&stored, code_hash) || !rules::setup_code_works(parse_stamp(&expires)?, now) {
        return Ok(false);
    }
    tx.execute(
        "UPDATE operators SET password_hash = ?2, setup_code_hash = NULL,
                setup_expires_at = NULL, failed_logins = 0, locked_until = NULL
         WHERE id = ?1",
        params![id, password_hash],
    )?;
    audit(
        &tx,
        &NewAudit {
            actor: &Actor {
                id: Some(id),
                name: name.to_owned(),
            },
            action: AuditAction::OperatorSetUp,
            target: name,
            before: Some(json_of(&[("password", "not set")])),
            after: Some(json_of(&[("password", "set")])),
        },
        now,
    )?;
    tx.commit()?;
    Ok(true)
}

/// Whether a stored code hash is `given` (in constant time).
pub fn codes_match(stored: &[u8], given: &[u8; 32]) -> bool {
    use subtle::ConstantTimeEq as _;
    stored.len() == 32 && bool::from(stored.ct_eq(&given[..]))
}

/// Records a failed login (and counts it against the operator, locking them after
/// [`rules::FAILURES_BEFORE_LOCK`]); the operator's login state after it.
pub fn record_login_failure(
    conn: &mut Connection,
    failed: &FailedLogin,
    now: DateTime<Utc>,
) -> anyhow::Result<LoginState> {
    let tx = write_tx(conn)?;
    let mut after = LoginState::default();
    let mut locked = false;
    if let Some(id) = failed.operator {
        let row: Option<(i64, Option<String>)> = tx
            .query_row(
                "SELECT failed_logins, locked_until FROM operators WHERE id = ?1",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        if let Some((failures, until)) = row {
            let before = login_state(failures, until)?;
            after = before.after_failure(now);
            locked = before.locks(&after, now);
            tx.execute(
                "UPDATE operators SET failed_logins = ?2, locked_until = ?3 WHERE id = ?1",
                params![id, i64::from(after.failures), after.locked_until.map(stamp)],
            )?;
        }
    }
    record_failure_entries(&tx, failed, &after, locked, now)?;
    tx.commit()?;
    Ok(after)
}

fn record_failure_entries(
    tx: &Connection,
    failed: &FailedLogin,
    after: &LoginState,
    locked: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let actor = Actor {
        id: failed.operator,
        name: failed.name.clone(),
    };
    for entry in failure_entries(&actor, failed, after, locked) {
        audit(tx, &entry, now)?;
    }
    Ok(())
}

/// The audit entries of a failed login: the failure, and the lock if it locked.
pub fn failure_entries<'a>(
    actor: &'a Actor,
    failed: &'a FailedLogin,
    after: &LoginState,
    locked: bool,
) -> Vec<NewAudit<'a>> {
    let failures = after.failures.to_string();
    let mut entries = vec![NewAudit {
        actor,
        action: AuditAction::LoginFailed,
        target: &failed.name,
        before: None,
        after: Some(json_of(&[
            ("reason", failed.reason),
            ("address", &failed.address),
            ("failures_in_a_row", &failures),
        ])),
    }];
    if locked {
        let until = after.locked_until.map(stamp).unwrap_or_default();
        entries.push(NewAudit {
            actor,
            action: AuditAction::AccountLocked,
            target: &failed.name,
            before: Some(json_of(&[("locked", "no")])),
            after: Some(json_of(&[("locked_until", &until)])),
        });
    }
    entries
}

/// Opens a session for `operator` (a login that succeeded): their failed logins forgotten,
/// their last login now, the entry recorded.
pub fn open_session(
    conn: &mut Connection,
    operator: &OperatorLogin,
    session: &NewSession,
    address: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let tx = write_tx(conn)?;
    tx.execute(
        "INSERT INTO console_sessions (token_hash, operator_id, csrf, created_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![
            &session.token_hash[..],
            operator.id,
            session.csrf,
            stamp(now)
        ],
    )?;
    tx.execute(
        "UPDATE operators SET failed_logins = 0, locked_until = NULL, last_login_at = ?2
         WHERE id = ?1",
        params![operator.id, stamp(now)],
    )?;
    audit(
        &tx,
        &NewAudit {
            actor: &Actor {
                id: Some(operator.id),
                name: operator.name.clone(),
            },
            action: AuditAction::LoginSucceeded,
            target: &operator.name,
            before: None,
            after: Some(json_of(&[("address", address)])),
        },
        now,
    )?;
    tx.commit()?;
    Ok(())
}

/// The session whose token hashes to `token_hash`, if it may go on at `now` (its last use
/// then set to now); an ended one is deleted.
pub fn resume_session(
    conn: &mut Connection,
    token_hash: &[u8; 32],
    now: DateTime<Utc>,
) -> anyhow::Result<Resumed> {
    let tx = write_tx(conn)?;
    let row: Option<(i64, String, String, String, String, String, bool)> = tx
        .prepare_cached(
            "SELECT s.operator_id, o.name, o.role, s.csrf, s.created_at, s.last_seen_at,
                    o.disabled_at IS NOT NULL
             FROM console_sessions s JOIN operators o ON o.id = s.operator_id
             WHERE s.token_hash = ?1",
        )?
        .query_row([&token_hash[..]], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
            ))
        })
        .optional()?;
    let Some((operator, name, role, csrf, created, last_seen, disabled)) = row else {
        return Ok(Resumed::Unknown);
    };
    let verdict = if disabled {
        SessionVerdict::TooOld
    } else {
        rules::session(parse_stamp(&created)?, parse_stamp(&last_seen)?, now)
    };
    let resumed = if verdict == SessionVerdict::Live {
        tx.prepare_cached("UPDATE console_sessions SET last_seen_at = ?2 WHERE token_hash = ?1")?
            .execute(params![&token_hash[..], stamp(now)])?;
        Resumed::Live(Session {
            operator,
            name,
            role: parse_role(&role)?,
            csrf,
        })
    } else {
        tx.execute(
            "DELETE FROM console_sessions WHERE token_hash = ?1",
            [&token_hash[..]],
        )?;
        Resumed::Ended(verdict)
    };
    tx.commit()?;
    Ok(resumed)
}

/// Ends the session (sign-out), recording it.
pub fn end_session(
    conn: &mut Connection,
    token_hash: &[u8; 32],
    session: &Session,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let tx = write_tx(conn)?;
    let deleted = tx.execute(
        "DELETE FROM console_sessions WHERE token_hash = ?1",
        [&token_hash[..]],
    )?;
    if deleted > 0 {
        audit(
            &tx,
            &NewAudit {
                actor: &Actor {
                    id: Some(session.operator),
                    name: session.name.clone(),
                },
                action: AuditAction::SignedOut,
                target: &session.name,
                before: None,
                after: None,
            },
            now,
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Disables operator `id` and ends their sessions; `false` if there is no such operator or
/// they were disabled already.
pub fn disable_operator(
    conn: &mut Connection,
    id: i64,
    by: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let tx = write_tx(conn)?;
    let name: Option<String> = tx
        .query_row(
            "SELECT name FROM operators WHERE id = ?1 AND disabled_at IS NULL",
            [id],
            |row| row.get(0),
        )
        .optional()?;
    let Some(name) = name else {
        return Ok(false);
    };
    tx.execute(
        "UPDATE operators SET disabled_at = ?2, setup_code_hash = NULL, setup_expires_at = NULL
         WHERE id = ?1",
        params![id, stamp(now)],
    )?;
    let sessions = tx.execute("DELETE FROM console_sessions WHERE operator_id = ?1", [id])?;
    audit(
        &tx,
        &NewAudit {
            actor: by,
            action: AuditAction::OperatorDisabled,
            target: &name,
            before: Some(json_of(&[("disabled", "no")])),
            after: Some(json_of(&[
                ("disabled", "yes"),
                ("sessions_ended", &sessions.to_string()),
            ])),
        },
        now,
    )?;
    tx.commit()?;
    Ok(true)
}

/// Entries of the audit log, newest first.
pub fn audit_log(conn: &Connection, query: &AuditQuery) -> anyhow::Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, operator_id, operator_name, action, target, before, after
         FROM audit_log WHERE (?1 IS NULL OR action = ?1)
         ORDER BY id DESC LIMIT ?2 OFFSET ?3",
    )?;
    let rows = stmt.query_map(
        params![
            query.action.map(AuditAction::as_str),
            i64::from(query.limit),
            i64::from(query.offset)
        ],
        |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<i64>>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, Option<String>>(6)?,
                row.get::<_, Option<String>>(7)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (id, at, operator_id, operator_name, action, target, before, after) = row?;
        out.push(AuditEntry {
            id,
            at: parse_stamp(&at)?,
            operator_id,
            operator_name,
            action,
            target,
            before,
            after,
        });
    }
    Ok(out)
}

/// What a console change to a terminal, a card or a watch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Done (and audited).
    Done,
    /// It was so already; nothing changed, nothing recorded.
    Already,
    /// There is no such terminal, card or pairing; nothing changed.
    Unknown,
}

/// A terminal's state as the console says it (and the audit log records it).
pub fn terminal_state(terminal: &Terminal) -> &'static str {
    if terminal.revoked {
        "revoked"
    } else if terminal.public_key.is_some() {
        "enrolled"
    } else {
        "waiting"
    }
}

/// A member as the console shows them: personal data masked, never in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberOverview {
    /// The number behind `PP-00000001`.
    pub id: i64,
    /// The name, masked (`김*수`).
    pub masked_name: String,
    /// The phone, masked (`010-****-5678`).
    pub masked_phone: String,
    /// When the server recorded the sign-up.
    pub signed_up: DateTime<Utc>,
    /// The site of the kiosk that signed them up.
    pub site: String,
    /// Whether the member was revoked.
    pub revoked: bool,
    /// Points credited less points spent.
    pub balance: i64,
    /// Their cards, by serial.
    pub cards: Vec<MemberCard>,
    /// Their watch pairings, newest first.
    pub watches: Vec<MemberWatch>,
    /// The replacement card allowed and not yet signed (its number), if any.
    pub replacement: Option<u16>,
}

/// A member card the server signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberCard {
    /// The card's number for the member (1 for the first).
    pub serial: u16,
    /// When it was signed.
    pub issued: DateTime<Utc>,
    /// When it expires.
    pub expires: DateTime<Utc>,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A watch paired with a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberWatch {
    /// The watch's serial.
    pub serial: String,
    /// When it was paired.
    pub paired: DateTime<Utc>,
    /// When the pairing ended, if it did.
    pub ended: Option<DateTime<Utc>>,
}

/// An instant stored as RFC 3339 text (the terminals' tables' form).
pub fn parse_rfc3339(text: &str) -> anyhow::Result<DateTime<Utc>> {
    parse_stamp(text)
}

/// An instant stored as Unix seconds.
pub fn from_unix(seconds: i64) -> anyhow::Result<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0).with_context(|| format!("a stored time {seconds}"))
}

/// The masked name and phone of a member's sealed personal data: opened, masked at once,
/// and the clear text dropped.
pub fn masked_person(
    key: &DataKey,
    identity: &[u8],
    sealed: &[u8],
) -> anyhow::Result<(String, String)> {
    let person = key.open(identity, sealed)?;
    Ok((
        kiosk_core::card::mask_name(&person.name),
        kiosk_core::card::mask_phone(&person.phone),
    ))
}

/// The audit entry of a terminal provisioned: its label, site and role, never the code.
pub fn provisioned_entry<'a>(by: &'a Actor, terminal: &Terminal, label: &'a str) -> NewAudit<'a> {
    NewAudit {
        actor: by,
        action: AuditAction::TerminalProvisioned,
        target: label,
        before: None,
        after: Some(json_of(&[
            ("site", &terminal.site),
            ("role", terminal.role.as_str()),
            ("state", "waiting"),
        ])),
    }
}

/// Console: makes a terminal waiting for enrollment with the code hashing to `code_hash`,
/// audited.
pub fn provision_terminal(
    conn: &mut Connection,
    site: &str,
    role: TerminalRole,
    code_hash: &[u8; 32],
    by: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<Terminal> {
    let tx = write_tx(conn)?;
    tx.execute(
        "INSERT INTO terminals (site, role, code_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![site, role.as_str(), &code_hash[..], now.to_rfc3339()],
    )?;
    let terminal = Terminal {
        id: tx.last_insert_rowid(),
        site: site.to_owned(),
        role,
        name: None,
        public_key: None,
        revoked: false,
    };
    let label = terminal.label();
    audit(&tx, &provisioned_entry(by, &terminal, &label), now)?;
    tx.commit()?;
    Ok(terminal)
}

/// The audit entry of a terminal revoked, from its state before.
pub fn revoked_entry<'a>(by: &'a Actor, before: &Terminal, label: &'a str) -> NewAudit<'a> {
    NewAudit {
        actor: by,
        action: AuditAction::TerminalRevoked,
        target: label,
        before: Some(json_of(&[
            ("site", &before.site),
            ("role", before.role.as_str()),
            ("state", terminal_state(before)),
        ])),
        after: Some(json_of(&[("state", "revoked")])),
    }
}

/// Console: revokes terminal `id` (its next request is refused), audited.
pub fn revoke_terminal(
    conn: &mut Connection,
    id: i64,
    by: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<Change> {
    let tx = write_tx(conn)?;
    let before = tx
        .query_row(
            &format!("SELECT {TERMINAL_COLUMNS} FROM terminals WHERE id = ?1"),
            [id],
            crate::store::read_terminal,
        )
        .optional()?;
    let Some(before) = before else {
        return Ok(Change::Unknown);
    };
    if before.revoked {
        return Ok(Change::Already);
    }
    tx.execute(
        "UPDATE terminals SET revoked_at = ?2, code_hash = NULL WHERE id = ?1",
        params![id, now.to_rfc3339()],
    )?;
    let label = terminal_label(id);
    audit(&tx, &revoked_entry(by, &before, &label), now)?;
    tx.commit()?;
    Ok(Change::Done)
}

/// A member's row: identity, sealed data, sign-up time, revocation, site.
type StoredMember = (Vec<u8>, Vec<u8>, String, Option<String>, String);

/// Console: member `id` as the console shows them, personal data masked.
pub fn member_overview(
    conn: &Connection,
    key: &DataKey,
    id: i64,
) -> anyhow::Result<Option<MemberOverview>> {
    let row: Option<StoredMember> = conn
        .query_row(
            "SELECT m.identity, m.sealed, m.created_at, m.revoked_at, t.site
             FROM members m JOIN terminals t ON t.id = m.terminal_id WHERE m.id = ?1",
            [id],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            },
        )
        .optional()?;
    let Some((identity, sealed, created, revoked, site)) = row else {
        return Ok(None);
    };
    let (masked_name, masked_phone) = masked_person(key, &identity, &sealed)?;
    let balance: i64 = conn
        .query_row(
            "SELECT credited - spent FROM balances WHERE member_id = ?1",
            [id],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let mut cards = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT c.serial, c.issued_at, c.expires_at,
                EXISTS (SELECT 1 FROM revoked_cards r
                        WHERE r.member_id = c.member_id AND r.serial = c.serial)
         FROM cards c WHERE c.member_id = ?1 ORDER BY c.serial",
    )?;
    let rows = stmt.query_map([id], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, bool>(3)?,
        ))
    })?;
    for row in rows {
        let (serial, issued, expires, revoked) = row?;
        cards.push(MemberCard {
            serial: u16::try_from(serial)?,
            issued: from_unix(issued)?,
            expires: from_unix(expires)?,
            revoked,
        });
    }
    let mut watches = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT serial, paired_at, ended_at FROM watch_pairings
         WHERE member_id = ?1 ORDER BY id DESC",
    )?;
    let rows = stmt.query_map([id], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, Option<String>>(2)?,
        ))
    })?;
    for row in rows {
        let (serial, paired, ended) = row?;
        watches.push(MemberWatch {
            serial,
            paired: parse_rfc3339(&paired)?,
            ended: ended.as_deref().map(parse_rfc3339).transpose()?,
        });
    }
    let allowed: Option<u16> = conn
        .query_row(
            "SELECT serial FROM card_replacements WHERE member_id = ?1",
            [id],
            |row| row.get(0),
        )
        .optional()?;
    let replacement = pending_replacement(allowed, &cards);
    Ok(Some(MemberOverview {
        id,
        masked_name,
        masked_phone,
        signed_up: parse_rfc3339(&created)?,
        site,
        revoked: revoked.is_some(),
        balance,
        cards,
        watches,
        replacement,
    }))
}

/// The replacement allowed that no card has yet.
pub fn pending_replacement(allowed: Option<u16>, cards: &[MemberCard]) -> Option<u16> {
    allowed.filter(|serial| cards.iter().all(|card| card.serial != *serial))
}

/// The number of the replacement for a member whose highest card (signed or allowed) is
/// `highest`; `None` past the last number a card can have.
pub fn next_serial(highest: i64) -> Option<u16> {
    u16::try_from(highest + 1)
        .ok()
        .filter(|serial| *serial >= 2)
}

/// The audit entry of a lost card replaced.
pub fn replaced_entry<'a>(by: &'a Actor, target: &'a str, next: u16) -> NewAudit<'a> {
    NewAudit {
        actor: by,
        action: AuditAction::CardReplaced,
        target,
        before: Some(json_of(&[("state", "active")])),
        after: Some(json_of(&[
            ("state", "revoked"),
            ("replacement", &next.to_string()),
        ])),
    }
}

/// Console: a lost card replaced: member `member`'s card `serial` (in force, of a member
/// not revoked) revoked and the next number allowed to any kiosk the member visits, in one
/// transaction, audited. The number allowed, or `None` when there is no such card.
pub fn replace_card(
    conn: &mut Connection,
    member: i64,
    serial: u16,
    by: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<u16>> {
    let tx = write_tx(conn)?;
    let in_force: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM cards c JOIN members m ON m.id = c.member_id
                        WHERE c.member_id = ?1 AND c.serial = ?2 AND m.revoked_at IS NULL
                          AND NOT EXISTS (SELECT 1 FROM revoked_cards r
                                          WHERE r.member_id = ?1 AND r.serial = ?2))",
        params![member, serial],
        |row| row.get(0),
    )?;
    if !in_force {
        return Ok(None);
    }
    let highest: i64 = tx.query_row(
        "SELECT MAX(serial) FROM (SELECT serial FROM cards WHERE member_id = ?1
                                  UNION ALL
                                  SELECT serial FROM card_replacements WHERE member_id = ?1)",
        [member],
        |row| row.get(0),
    )?;
    let Some(next) = next_serial(highest) else {
        return Ok(None);
    };
    tx.execute(
        "INSERT INTO revoked_cards (member_id, serial, revoked_at) VALUES (?1, ?2, ?3)",
        params![member, serial, now.to_rfc3339()],
    )?;
    touch(&tx, "card", card_key(member, serial))?;
    tx.execute(
        "INSERT INTO card_replacements (member_id, serial, allowed_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (member_id) DO UPDATE SET serial = excluded.serial,
                                               allowed_at = excluded.allowed_at",
        params![member, next, now.to_rfc3339()],
    )?;
    let target = card_target(member, serial);
    audit(&tx, &replaced_entry(by, &target, next), now)?;
    tx.commit()?;
    Ok(Some(next))
}

/// The audit entry of a card revoked.
pub fn card_revoked_entry<'a>(by: &'a Actor, target: &'a str) -> NewAudit<'a> {
    NewAudit {
        actor: by,
        action: AuditAction::CardRevoked,
        target,
        before: Some(json_of(&[("state", "active")])),
        after: Some(json_of(&[("state", "revoked")])),
    }
}

/// The audit entry of a member revoked.
pub fn member_revoked_entry<'a>(by: &'a Actor, target: &'a str) -> NewAudit<'a> {
    NewAudit {
        actor: by,
        action: AuditAction::MemberRevoked,
        target,
        before: Some(json_of(&[("state", "active")])),
        after: Some(json_of(&[("state", "revoked")])),
    }
}

/// How a card is named in the audit log: `PP-00000001 card 2`.
pub fn card_target(member: i64, serial: u16) -> String {
    format!("{} card {serial}", member_number(member))
}

/// How a pairing is named in the audit log: `PP-00000001 watch PW-0001`.
pub fn watch_target(member: i64, serial: &str) -> String {
    format!("{} watch {serial}", member_number(member))
}

/// Console: revokes member `member`'s card `serial` (one the server signed), audited;
/// counters learn it at their next pull.
pub fn revoke_card(
    conn: &mut Connection,
    member: i64,
    serial: u16,
    by: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<Change> {
    let tx = write_tx(conn)?;
    let state: Option<bool> = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM revoked_cards WHERE member_id = ?1 AND serial = ?2)
             FROM cards WHERE member_id = ?1 AND serial = ?2",
            params![member, serial],
            |row| row.get(0),
        )
        .optional()?;
    match state {
        None => return Ok(Change::Unknown),
        Some(true) => return Ok(Change::Already),
        Some(false) => {}
    }
    tx.execute(
        "INSERT INTO revoked_cards (member_id, serial, revoked_at) VALUES (?1, ?2, ?3)",
        params![member, serial, now.to_rfc3339()],
    )?;
    touch(&tx, "card", card_key(member, serial))?;
    let target = card_target(member, serial);
    audit(&tx, &card_revoked_entry(by, &target), now)?;
    tx.commit()?;
    Ok(Change::Done)
}

/// The audit entry of a pairing ended.
pub fn unpaired_entry<'a>(by: &'a Actor, target: &'a str, paired: &str) -> NewAudit<'a> {
    NewAudit {
        actor: by,
        action: AuditAction::WatchUnpaired,
        target,
        before: Some(json_of(&[("state", "paired"), ("paired_at", paired)])),
        after: Some(json_of(&[("state", "ended")])),
    }
}

/// Console: ends the pairing in force of watch `serial` with member `member` (a lost
/// watch), audited; terminals learn it at their next pull.
pub fn unpair_watch(
    conn: &mut Connection,
    member: i64,
    serial: &str,
    by: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<Change> {
    let tx = write_tx(conn)?;
    let row: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, paired_at FROM watch_pairings
             WHERE member_id = ?1 AND serial = ?2 AND ended_at IS NULL",
            params![member, serial],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let Some((pairing, paired)) = row else {
        return Ok(Change::Unknown);
    };
    tx.execute(
        "UPDATE watch_pairings SET ended_at = ?2 WHERE id = ?1",
        params![pairing, now.to_rfc3339()],
    )?;
    touch(&tx, "watch", pairing)?;
    let target = watch_target(member, serial);
    audit(&tx, &unpaired_entry(by, &target, &paired), now)?;
    tx.commit()?;
    Ok(Change::Done)
}
