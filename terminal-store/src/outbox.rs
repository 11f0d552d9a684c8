//! The outbox's life (queued, in flight, done, rejected), the terminal's identity and the sync
//! log. Each write that records what the server answered is one transaction.

use std::fmt;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, FixedOffset};
use rusqlite::{params, OptionalExtension};

use sync_protocol::wire::{OpKind, OpPayload};

use crate::Store;

/// Where an outbox operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OutboxState {
    /// Waiting to be sent.
    Queued,
    /// Sent; the answer is not known yet (or the terminal stopped before it came). It is sent
    /// again; the server answers `duplicate` if it had applied it.
    InFlight,
    /// The server applied it (now or before).
    Done,
    /// The server refused it for good; `reason` and `message` say why. Kept for the operator.
    Rejected,
}

impl OutboxState {
    /// The name in the database and in exports.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::InFlight => "in_flight",
            OutboxState::Done => "done",
            OutboxState::Rejected => "rejected",
        }
    }

    fn parse(text: &str) -> Result<OutboxState> {
        Ok(match text {
            "queued" => OutboxState::Queued,
            "in_flight" => OutboxState::InFlight,
            "done" => OutboxState::Done,
            "rejected" => OutboxState::Rejected,
            other => bail!("unknown outbox state {other:?}"),
        })
    }
}

/// An operation still to be sent (queued or in flight), in the order it was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOp {
    /// The id that makes it idempotent.
    pub op_id: String,
    /// `enrollment`, `step_report`, ... ([`OpKind`]).
    pub kind: String,
    /// The payload as the server takes it (JSON text of the kind's [`OpPayload`]); a sign-up's
    /// personal data unsealed for sending.
    pub payload: String,
    /// The terminal's number for the operation: its row in the outbox, which only grows
    /// (rows are never deleted), so operations are numbered in the order they were made.
    pub seq: u64,
}

/// The server's final answer to an operation, written back to its outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalAnswer {
    /// Accepted now (`duplicate == false`) or before (`duplicate == true`).
    Done {
        /// The operation.
        op_id: String,
        /// Whether the server had it before.
        duplicate: bool,
        /// For an enrollment, the member's number.
        member_number: Option<String>,
    },
    /// Refused for good.
    Rejected {
        /// The operation.
        op_id: String,
        /// The reason code.
        reason: String,
        /// What to tell the operator.
        message: String,
    },
}

/// One outbox row, for status and export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The operation's id.
    pub op_id: String,
    /// Its kind.
    pub kind: String,
    /// Where it is.
    pub state: OutboxState,
    /// When it was queued (RFC 3339).
    pub created_at: String,
    /// Times it was sent.
    pub attempts: u32,
    /// When it was last sent.
    pub sent_at: Option<String>,
    /// When its final answer was written.
    pub settled_at: Option<String>,
    /// `accepted`, `duplicate` or `rejected`.
    pub result: Option<String>,
    /// For a rejection, the reason code.
    pub reason: Option<String>,
    /// For a rejection, what to tell the operator.
    pub message: Option<String>,
    /// For an enrollment, the member's number.
    pub member_number: Option<String>,
}

/// How many operations are in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxCounts {
    /// Waiting to be sent.
    pub queued: u64,
    /// Sent, answer not known.
    pub in_flight: u64,
    /// Applied by the server.
    pub done: u64,
    /// Refused for good.
    pub rejected: u64,
}

/// When the terminal last synced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncLog {
    /// The end of the last sync that reached the server and left nothing unsent.
    pub last_good_sync: Option<String>,
    /// The end of the last attempt, good or not.
    pub last_attempt: Option<String>,
    /// What went wrong in the last attempt, if it failed.
    pub last_error: Option<String>,
}

/// Who this terminal is to the central server. The secret key lives in the database file,
/// which is created readable by its owner only.
#[derive(Clone, PartialEq, Eq)]
pub struct TerminalIdentity {
    /// Such as `T-000001`.
    pub terminal_id: String,
    /// The site it belongs to.
    pub site: String,
    /// `kiosk` or `counter`.
    pub role: String,
    /// The name it enrolled with.
    pub name: String,
    /// The central server's base URL.
    pub server_url: String,
    /// The server's key pinned at provisioning (`sha256:...`), for an `https://` server.
    pub server_key: Option<String>,
    /// The Ed25519 secret key (seed).
    pub secret_key: [u8; 32],
    /// When it was provisioned.
    pub provisioned_at: DateTime<FixedOffset>,
}

impl fmt::Debug for TerminalIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerminalIdentity")
            .field("terminal_id", &self.terminal_id)
            .field("site", &self.site)
            .field("role", &self.role)
            .field("name", &self.name)
            .field("server_url", &self.server_url)
            .field("server_key", &self.server_key)
            .field("secret_key", &"<redacted>")
            .field("provisioned_at", &self.provisioned_at)
            .finish()
    }
}

impl Store {
    /// Queues an operation (for kinds other than enrollment, which
    /// [`Store::record_enrollment`] queues with its record). Queuing an `op_id` again writes
    /// nothing. Returns whether it was new.
    pub fn queue_operation(
        &self,
        op_id: &str,
        payload: &OpPayload,
        created_at: DateTime<FixedOffset>,
    ) -> Result<bool> {
        let added = self.conn.execute(
            "INSERT OR IGNORE INTO outbox(op_id, kind, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                op_id,
                payload.kind().as_str(),
                payload.to_json(),
                created_at.to_rfc3339()
            ],
        )?;
        Ok(added == 1)
    }

    /// The operations still to be sent (queued or in flight), oldest first.
    pub fn outbox_pending(&self) -> Result<Vec<PendingOp>> {
        let mut stmt = self.conn.prepare(
            "SELECT op_id, kind, payload, rowid FROM outbox
             WHERE state IN ('queued', 'in_flight') ORDER BY rowid",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(PendingOp {
                    op_id: r.get(0)?,
                    kind: r.get(1)?,
                    payload: r.get(2)?,
                    seq: r.get::<_, i64>(3)?.unsigned_abs(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        // A kiosk's sign-ups keep their personal data sealed; open it only to send it.
        rows.into_iter()
            .map(|mut op| {
                // One that cannot be made (its personal data gone) is left as stored, and the
                // sync shell rejects it for the operator to see.
                if op.kind == OpKind::Enrollment.as_str() {
                    if let Ok(payload) = self.enrollment_payload(&op.op_id, &op.payload) {
                        op.payload = payload.to_json();
                    }
                }
                Ok(op)
            })
            .collect()
    }

    /// When the oldest operation still to be sent (queued or in flight) was made; `None`
    /// when none wait.
    pub fn outbox_oldest_waiting(&self) -> Result<Option<DateTime<FixedOffset>>> {
        let created: Option<String> = self
            .conn
            .query_row(
                "SELECT created_at FROM outbox WHERE state IN ('queued', 'in_flight')
                 ORDER BY rowid LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        created
            .map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .with_context(|| format!("reading the stored time {text:?}"))
            })
            .transpose()
    }

    /// The highest number given to an operation so far ([`PendingOp::seq`]; 0 before the
    /// first). The server is told it with each pull.
    pub fn sequence(&self) -> Result<u64> {
        let last: i64 =
            self.conn
                .query_row("SELECT COALESCE(MAX(rowid), 0) FROM outbox", [], |r| {
                    r.get(0)
                })?;
        Ok(last.unsigned_abs())
    }

    /// Marks operations as sent, in one transaction. Settled operations are left alone.
    pub fn mark_in_flight(&mut self, op_ids: &[String], at: DateTime<FixedOffset>) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET state = 'in_flight', attempts = attempts + 1, sent_at = ?2
                 WHERE op_id = ?1 AND state IN ('queued', 'in_flight')",
            )?;
            let at = at.to_rfc3339();
            for op_id in op_ids {
                stmt.execute(params![op_id, at])?;
            }
        }
        tx.commit().context("marking operations as sent")?;
        Ok(())
    }

    /// Writes final answers, in one transaction. An operation already settled keeps its first
    /// answer. Returns how many rows changed.
    pub fn settle(&mut self, answers: &[FinalAnswer], at: DateTime<FixedOffset>) -> Result<u64> {
        let tx = self.conn.transaction()?;
        let mut changed = 0u64;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET state = ?2, result = ?3, reason = ?4, message = ?5,
                     member_number = ?6, settled_at = ?7
                 WHERE op_id = ?1 AND state IN ('queued', 'in_flight')",
            )?;
            let at = at.to_rfc3339();
            for s in answers {
                let n = match s {
                    FinalAnswer::Done {
                        op_id,
                        duplicate,
                        member_number,
                    } => stmt.execute(params![
                        op_id,
                        OutboxState::Done.as_str(),
                        if *duplicate { "duplicate" } else { "accepted" },
                        None::<String>,
                        None::<String>,
                        member_number,
                        at
                    ])?,
                    FinalAnswer::Rejected {
                        op_id,
                        reason,
                        message,
                    } => stmt.execute(params![
                        op_id,
                        OutboxState::Rejected.as_str(),
                        "rejected",
                        reason,
                        message,
                        None::<String>,
                        at
                    ])?,
                };
                if n == 1 {
                    // A redemption hold or void takes the same first answer.
                    let (op_id, rejected) = match s {
                        FinalAnswer::Done { op_id, .. } => (op_id, None),
                        FinalAnswer::Rejected { op_id, reason, .. } => {
                            (op_id, Some(reason.as_str()))
                        }
                    };
                    crate::holds::settle_redemption(&tx, op_id, rejected)?;
                    // A sign-up the server has is kept here without its personal data, in
                    // the same transaction, whichever shell synced it.
                    if rejected.is_none() {
                        crate::kiosk::erase_personal_data(&tx, op_id, &at)?;
                    }
                }
                changed += n as u64;
            }
        }
        tx.commit().context("recording the server's answers")?;
        Ok(changed)
    }

    /// How many operations are in each state.
    pub fn outbox_counts(&self) -> Result<OutboxCounts> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, count(*) FROM outbox GROUP BY state")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut counts = OutboxCounts::default();
        for (state, n) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            match OutboxState::parse(&state)? {
                OutboxState::Queued => counts.queued = n,
                OutboxState::InFlight => counts.in_flight = n,
                OutboxState::Done => counts.done = n,
                OutboxState::Rejected => counts.rejected = n,
            }
        }
        Ok(counts)
    }

    /// Every outbox row, oldest first; only rejected ones when `rejected_only`.
    pub fn outbox_entries(&self, rejected_only: bool) -> Result<Vec<OutboxEntry>> {
        let sql = format!(
            "SELECT op_id, kind, state, created_at, attempts, sent_at, settled_at, result, reason,
                    message, member_number
             FROM outbox {} ORDER BY rowid",
            if rejected_only {
                "WHERE state = 'rejected'"
            } else {
                ""
            }
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(2)?,
                    OutboxEntry {
                        op_id: r.get(0)?,
                        kind: r.get(1)?,
                        state: OutboxState::Queued,
                        created_at: r.get(3)?,
                        attempts: r.get(4)?,
                        sent_at: r.get(5)?,
                        settled_at: r.get(6)?,
                        result: r.get(7)?,
                        reason: r.get(8)?,
                        message: r.get(9)?,
                        member_number: r.get(10)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(state, mut entry)| {
                entry.state = OutboxState::parse(&state)?;
                Ok(entry)
            })
            .collect()
    }

    /// When the terminal last synced.
    pub fn sync_log(&self) -> Result<SyncLog> {
        Ok(self
            .conn
            .query_row(
                "SELECT last_good_sync, last_attempt, last_error FROM sync_log WHERE only_row = 1",
                [],
                |r| {
                    Ok(SyncLog {
                        last_good_sync: r.get(0)?,
                        last_attempt: r.get(1)?,
                        last_error: r.get(2)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }

    /// Records the end of a sync attempt: good (`error` is `None`) or failed.
    pub fn record_sync(&self, at: DateTime<FixedOffset>, error: Option<&str>) -> Result<()> {
        let at = at.to_rfc3339();
        self.conn.execute(
            "INSERT INTO sync_log(only_row, last_good_sync, last_attempt, last_error)
             VALUES (1, CASE WHEN ?2 IS NULL THEN ?1 END, ?1, ?2)
             ON CONFLICT(only_row) DO UPDATE SET
                 last_good_sync = CASE WHEN ?2 IS NULL THEN ?1 ELSE last_good_sync END,
                 last_attempt = ?1, last_error = ?2",
            params![at, error],
        )?;
        Ok(())
    }

    /// The terminal's identity, if it was provisioned.
    pub fn identity(&self) -> Result<Option<TerminalIdentity>> {
        let row = self
            .conn
            .query_row(
                "SELECT terminal_id, site, role, name, server_url, provisioned_at, server_key
                 FROM terminal_identity WHERE only_row = 1",
                [],
                |r| {
                    Ok((
                        (
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ),
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                },
            )
            .optional()?;
        row.map(
            |((terminal_id, site, role, name), server_url, at, server_key)| {
                let secret_key = crate::secrets::read(&self.path, crate::secrets::SIGNING_KEY)?
                    .with_context(|| {
                        let path =
                            crate::secrets::secret_path(&self.path, crate::secrets::SIGNING_KEY);
                        format!(
                        "단말기의 서명 키 파일 {0}이(가) 없습니다. 파일을 되살리거나 단말기를 다시 \
                         등록해 주세요 / the terminal's signing key file {0} is missing; restore \
                         it or provision the terminal again",
                        path.display()
                    )
                    })?;
                Ok(TerminalIdentity {
                    terminal_id,
                    site,
                    role,
                    name,
                    server_url,
                    server_key,
                    secret_key,
                    provisioned_at: DateTime::parse_from_rfc3339(&at)?,
                })
            },
        )
        .transpose()
    }

    /// Stores the terminal's identity once; a second call fails and changes nothing. The
    /// database file and its WAL are set readable by the owner only (0600 on Unix); the
    /// signing key goes to its own file ([`crate::secrets`]).
    pub fn save_identity(&self, identity: &TerminalIdentity) -> Result<()> {
        restrict_permissions(&self.path)?;
        let provisioned: bool =
            self.conn
                .query_row("SELECT EXISTS (SELECT 1 FROM terminal_identity)", [], |r| {
                    r.get(0)
                })?;
        if provisioned {
            bail!("this terminal is already provisioned");
        }
        // The key first: a terminal stopped in between is simply provisioned again.
        crate::secrets::write(
            &self.path,
            crate::secrets::SIGNING_KEY,
            &identity.secret_key,
            true,
        )?;
        let added = self.conn.execute(
            "INSERT OR IGNORE INTO terminal_identity
                 (only_row, terminal_id, site, role, name, server_url, provisioned_at, server_key)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                identity.terminal_id,
                identity.site,
                identity.role,
                identity.name,
                identity.server_url,
                identity.provisioned_at.to_rfc3339(),
                identity.server_key
            ],
        )?;
        if added == 0 {
            bail!("this terminal is already provisioned");
        }
        Ok(())
    }

    /// Checks the database file (`PRAGMA integrity_check`); returns SQLite's answer, `ok` when
    /// all is well.
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

fn restrict_permissions(path: &std::path::Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mut names = vec![path.to_owned()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            names.push(name.into());
        }
        for name in names.iter().filter(|n| n.exists()) {
            std::fs::set_permissions(name, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting access to {}", name.display()))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn steps() -> OpPayload {
        OpPayload::StepReport(sync_protocol::wire::StepReportPayload {
            member_number: "PP-00000001".to_owned(),
            day: "2025-12-01".to_owned(),
            steps: 8_000,
            reported_at: "2025-12-01T21:00:00+09:00".to_owned(),
            watch: None,
        })
    }

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_oldest_waiting_operation_is_the_oldest_not_yet_answered() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.sqlite")).unwrap();
        assert_eq!(s.outbox_oldest_waiting().unwrap(), None);
        s.queue_operation("a", &steps(), at("2025-12-01T10:00:00+09:00"))
            .unwrap();
        s.queue_operation("b", &steps(), at("2025-12-01T10:05:00+09:00"))
            .unwrap();
        s.mark_in_flight(&ids(&["a"]), at("2025-12-01T10:06:00+09:00"))
            .unwrap();
        assert_eq!(
            s.outbox_oldest_waiting().unwrap(),
            Some(at("2025-12-01T10:00:00+09:00"))
        );
        s.settle(
            &[FinalAnswer::Done {
                op_id: "a".into(),
                duplicate: false,
                member_number: None,
            }],
            at("2025-12-01T10:07:00+09:00"),
        )
        .unwrap();
        assert_eq!(
            s.outbox_oldest_waiting().unwrap(),
            Some(at("2025-12-01T10:05:00+09:00"))
        );
    }

    #[test]
    fn an_operation_moves_from_queued_to_in_flight_to_one_final_answer() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.sqlite")).unwrap();
        let when = at("2025-12-01T10:00:00+09:00");
        for id in ["a", "b", "c"] {
            assert!(s.queue_operation(id, &steps(), when).unwrap());
        }
        assert!(!s.queue_operation("a", &steps(), when).unwrap());
        s.mark_in_flight(&ids(&["a", "b"]), when).unwrap();
        assert_eq!(
            s.outbox_counts().unwrap(),
            OutboxCounts {
                queued: 1,
                in_flight: 2,
                done: 0,
                rejected: 0
            }
        );
        let answers = [
            FinalAnswer::Done {
                op_id: "a".into(),
                duplicate: false,
                member_number: Some("PP-00000001".into()),
            },
            FinalAnswer::Rejected {
                op_id: "b".into(),
                reason: "role".into(),
                message: "역할 / role".into(),
            },
        ];
        assert_eq!(s.settle(&answers, when).unwrap(), 2);
        // A late duplicate answer does not overwrite the first one.
        let late = [FinalAnswer::Done {
            op_id: "b".into(),
            duplicate: true,
            member_number: None,
        }];
        assert_eq!(s.settle(&late, when).unwrap(), 0);
        let pending: Vec<String> = s
            .outbox_pending()
            .unwrap()
            .into_iter()
            .map(|p| p.op_id)
            .collect();
        assert_eq!(pending, ids(&["c"]));
        let rejected = s.outbox_entries(true).unwrap();
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].reason.as_deref(), Some("role"));
        assert_eq!(rejected[0].attempts, 1);
        let all = s.outbox_entries(false).unwrap();
        assert_eq!(all[0].member_number.as_deref(), Some("PP-00000001"));
        assert_eq!(all[0].result.as_deref(), Some("accepted"));
        assert_eq!(all[2].state, OutboxState::Queued);
    }

    #[test]
    fn the_sync_log_keeps_the_last_good_sync_through_failures() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.sqlite")).unwrap();
        assert_eq!(s.sync_log().unwrap(), SyncLog::default());
        s.record_sync(at("2025-12-01T10:00:00+09:00"), None)
            .unwrap();
        s.record_sync(at("2025-12-01T11:00:00+09:00"), Some("down"))
            .unwrap();
        let log = s.sync_log().unwrap();
        assert_eq!(
            log.last_good_sync.as_deref(),
            Some("2025-12-01T10:00:00+09:00")
        );
        assert_eq!(
            log.last_attempt.as_deref(),
            Some("2025-12-01T11:00:00+09:00")
        );
        assert_eq!(log.last_error.as_deref(), Some("down"));
    }

    #[test]
    fn the_identity_is_saved_once_privately_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let s = Store::open(&path).unwrap();
        assert!(s.identity().unwrap().is_none());
        let identity = TerminalIdentity {
            terminal_id: "T-000001".into(),
            site: "성북구 보건소".into(),
            role: "kiosk".into(),
            name: "1번 키오스크".into(),
            server_url: "http://127.0.0.1:8088".into(),
            server_key: None,
            secret_key: [42; 32],
            provisioned_at: at("2025-12-01T10:00:00+09:00"),
        };
        s.save_identity(&identity).unwrap();
        let mut other = identity.clone();
        other.terminal_id = "T-000002".into();
        assert!(s.save_identity(&other).is_err());
        assert_eq!(s.identity().unwrap(), Some(identity.clone()));
        assert!(!format!("{identity:?}").contains("42"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode(&path) & 0o777, 0o600);
            let secrets = crate::secrets::secrets_dir(&path);
            assert_eq!(mode(&secrets) & 0o777, 0o700);
            let key = crate::secrets::secret_path(&path, crate::secrets::SIGNING_KEY);
            assert_eq!(mode(&key) & 0o777, 0o600);
            assert_eq!(std::fs::read(&key).unwrap(), [42; 32]);
        }
        // The key is not in the database: a copy of it does not sign as the terminal.
        s.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(32).any(|w| w == [42; 32]));
        assert_eq!(s.integrity_check().unwrap(), "ok");
        // Without its key file, the identity says what to do.
        std::fs::remove_file(crate::secrets::secret_path(
            &path,
            crate::secrets::SIGNING_KEY,
        ))
        .unwrap();
        let missing = s.identity().unwrap_err().to_string();
        assert!(
            missing.contains("다시 등록") && missing.contains("provision"),
            "{missing}"
        );
    }

    #[test]
    fn a_version_7_database_moves_its_signing_key_to_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            for sql in &crate::MIGRATIONS[..7] {
                c.execute_batch(sql).unwrap();
            }
            c.execute(
                "INSERT INTO terminal_identity VALUES (1, 'T-000009', 's', 'counter', 'n',
                 'http://127.0.0.1:1', ?1, '2025-12-01T10:00:00+09:00')",
                [&[7u8; 32][..]],
            )
            .unwrap();
            c.pragma_update(None, "user_version", 7).unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), crate::SCHEMA_VERSION);
        let identity = s.identity().unwrap().unwrap();
        assert_eq!(
            (identity.terminal_id.as_str(), identity.secret_key),
            ("T-000009", [7; 32])
        );
        s.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(32).any(|w| w == [7; 32]),
            "the key left the database"
        );
    }

    #[test]
    fn a_version_1_outbox_is_carried_forward_as_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(crate::MIGRATIONS[0]).unwrap();
            c.execute(
                "INSERT INTO outbox(op_id, kind, payload, created_at) VALUES ('old', 'enrollment', '{}', 'x')",
                [],
            )
            .unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), crate::SCHEMA_VERSION);
        assert_eq!(s.outbox_counts().unwrap().queued, 1);
        assert_eq!(s.outbox_pending().unwrap()[0].op_id, "old");
    }

    #[test]
    fn a_sign_up_stored_in_the_clear_is_sent_with_the_servers_fields_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.sqlite")).unwrap();
        s.conn
            .execute(
                "INSERT INTO outbox(op_id, kind, payload, created_at) VALUES ('e', 'enrollment', ?1, 'x')",
                [r#"{"name":"김영희","birth_date":"1950-03-01","phone":"01012345678","residency":"lives","age":75,"day":"2025-12-03"}"#],
            )
            .unwrap();
        let pending = s.outbox_pending().unwrap();
        assert_eq!(
            OpPayload::from_json(OpKind::Enrollment, &pending[0].payload).unwrap(),
            OpPayload::Enrollment(sync_protocol::wire::EnrollmentPayload {
                name: "김영희".to_owned(),
                birth_date: "1950-03-01".to_owned(),
                phone: "01012345678".to_owned(),
                day: Some("2025-12-03".to_owned()),
            })
        );
    }
}
