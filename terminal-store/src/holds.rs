//! The counter's redemptions on disk: holds and voids with their outbox operations, the
//! dynamic tokens already accepted, wrong card PINs, and the server's data the counter reads
//! (published keys, revoked members, balances) to rebuild `merchant-core`'s
//! [`RedemptionBook`] for each decision.
//!
//! A hold is written with its `redemption_hold` operation and its token in one transaction
//! (`synchronous=FULL`), and a void with its `void` operation likewise, so that what the clerk
//! is told is done is on disk and queued exactly once. The outbox's [`Store::settle`] writes
//! the server's answer to a hold or void back here in the same transaction.
//!
//! It decides nothing: the book decides, this module stores what it returned and gives it
//! back after a restart.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use merchant_core::redemption::{
    Balance, Hold, HoldId, OfflineLimits, Outcome, RedemptionBook, Void,
};
use redemption_token::{
    Claims, KeySet, MemberNo, PublishedKey, Revocations, RevokedCard, SeenTokens, TokenId,
    TokenKind,
};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use sync_protocol::wire::{
    OpPayload, RedemptionHoldPayload, VoidPayload, WrongPinPayload, PIN_LOCK_FAILURES,
};

use crate::{Member, Store};

/// A hold as stored, with what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredHold {
    /// The hold as the book made it.
    pub hold: Hold,
    /// The server's answer, once it came.
    pub outcome: Option<Outcome>,
    /// The void, if the hold was voided here.
    pub void: Option<Void>,
    /// The void's operation id.
    pub void_op_id: Option<String>,
}

/// Whether a member card may be tried again at this counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardLock {
    /// Wrong PINs for the card today, here or (by the server's lock) at any counters.
    pub failures: u32,
}

/// A time as stored: RFC 3339 in UTC with seconds, so that text order is time order.
fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("reading the stored time {text:?}"))?
        .to_utc())
}

fn kind_name(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Dynamic => "dynamic",
        TokenKind::Card => "card",
    }
}

/// SQL matching a stored member number to a scanned one by its digits, so that `PP-0042`
/// (the demo's) and `PP-00000042` (the server's) are the same member.
const SAME_MEMBER: &str = "(member_no LIKE 'PP-%' AND CAST(substr(member_no, 4) AS INTEGER) = ?1 \
                           AND substr(member_no, 4) NOT GLOB '*[^0-9]*')";

const HOLD_COLUMNS: &str = "hold_id, member_no, amount, kind, token_id, card_serial, created_at, \
                            offline, remaining, status, reason, voided_at, void_op_id";

type HoldRow = (
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<i64>,
    String,
    bool,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HoldRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
    ))
}

fn to_stored(row: HoldRow) -> Result<StoredHold> {
    let (id, member, amount, kind, token_id, serial, created, offline, remaining, status) = (
        row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9,
    );
    let (reason, voided_at, void_op_id) = (row.10, row.11, row.12);
    let member: MemberNo = member
        .parse()
        .map_err(|e| anyhow!("stored hold {id}: {e}"))?;
    let kind = match kind.as_str() {
        "dynamic" => TokenKind::Dynamic,
        "card" => TokenKind::Card,
        other => bail!("stored hold {id}: unknown kind {other:?}"),
    };
    let amount = u64::try_from(amount)?;
    let hold = Hold {
        id: HoldId(id.clone()),
        member,
        amount,
        kind,
        token_id,
        card_serial: serial.map(u16::try_from).transpose()?,
        created_at: parse_time(&created)?,
        offline,
        remaining: u64::try_from(remaining)?,
    };
    let outcome = match status.as_str() {
        "pending" => None,
        "posted" => Some(Outcome::Posted),
        "rejected" => Some(Outcome::Rejected {
            reason: reason.unwrap_or_default(),
        }),
        other => bail!("stored hold {id}: unknown status {other:?}"),
    };
    let void = voided_at
        .map(|at| -> Result<Void> {
            Ok(Void {
                hold_id: HoldId(id.clone()),
                member,
                amount,
                at: parse_time(&at)?,
            })
        })
        .transpose()?;
    Ok(StoredHold {
        hold,
        outcome,
        void,
        void_op_id,
    })
}

/// Writes the server's answer to a hold or a void, inside the outbox's settling transaction.
/// Only a pending hold (or void) takes it: the first answer is final.
pub(crate) fn settle_redemption(
    tx: &Transaction<'_>,
    op_id: &str,
    rejected: Option<&str>,
) -> Result<()> {
    let (status, reason) = match rejected {
        None => ("posted", None),
        Some(reason) => ("rejected", Some(reason)),
    };
    tx.prepare_cached(
        "UPDATE holds SET status = ?2, reason = ?3 WHERE hold_id = ?1 AND status = 'pending'",
    )?
    .execute(params![op_id, status, reason])?;
    tx.prepare_cached(
        "UPDATE holds SET void_status = ?2, void_reason = ?3
         WHERE void_op_id = ?1 AND void_status = 'pending'",
    )?
    .execute(params![op_id, status, reason])?;
    // Answered, the hold's token is of no more use here: a copy of this database must not
    // hold members' cards to spend again.
    tx.prepare_cached(
        "UPDATE outbox SET payload = json_remove(payload, '$.token')
         WHERE op_id = ?1 AND kind = 'redemption_hold'",
    )?
    .execute([op_id])?;
    Ok(())
}

impl Store {
    /// Records a hold the book made, its `redemption_hold` operation for the server (`token`
    /// is the member's token as scanned, which the server verifies; `terminal` is this
    /// terminal's id there) and, for a dynamic token, the token as seen until it expires, in
    /// one transaction. Refused if the hold id or the token is already stored: nothing is
    /// written then. The token leaves the outbox once the server has answered.
    pub fn record_hold(
        &mut self,
        hold: &Hold,
        terminal: &str,
        token: &str,
        token_expires_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let created = stamp(hold.created_at);
        tx.prepare_cached(
            "INSERT INTO holds(hold_id, member_no, amount, kind, token_id, card_serial, created_at,
                               day, offline, remaining)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            hold.id.0,
            hold.member.to_string(),
            i64::try_from(hold.amount)?,
            kind_name(hold.kind),
            hold.token_id,
            hold.card_serial,
            created,
            points_core::kst_day(hold.created_at).to_string(),
            hold.offline,
            i64::try_from(hold.remaining)?,
        ])
        .with_context(|| format!("storing hold {}", hold.id))?;
        let payload = OpPayload::RedemptionHold(RedemptionHoldPayload {
            member_no: hold.member.to_string(),
            amount: hold.amount,
            token: token.to_owned(),
            held_at: created.clone(),
            terminal: terminal.to_owned(),
        });
        let added = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO outbox(op_id, kind, payload, created_at)
                 VALUES (?1, 'redemption_hold', ?2, ?3)",
            )?
            .execute(params![hold.id.0, payload.to_json(), created])?;
        if added != 1 {
            bail!("the operation id {} is already in the outbox", hold.id);
        }
        if let (Some(token_id), Some(expires)) = (&hold.token_id, token_expires_at) {
            tx.prepare_cached("INSERT INTO seen_tokens(token_id, expires_at) VALUES (?1, ?2)")?
                .execute(params![token_id, stamp(expires)])
                .context("remembering the token")?;
        }
        tx.commit().context("committing the hold")?;
        Ok(())
    }

    /// Records a void the book made and its `void` operation (`op_id`), in one transaction.
    pub fn record_void(&mut self, void: &Void, op_id: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        let at = stamp(void.at);
        let n = tx
            .prepare_cached(
                "UPDATE holds SET voided_at = ?2, void_op_id = ?3, void_status = 'pending'
                 WHERE hold_id = ?1 AND voided_at IS NULL",
            )?
            .execute(params![void.hold_id.0, at, op_id])?;
        if n != 1 {
            bail!("hold {} is not stored, or already voided", void.hold_id);
        }
        let payload = OpPayload::Void(VoidPayload {
            hold_op_id: void.hold_id.0.clone(),
            voided_at: at.clone(),
        });
        let added = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO outbox(op_id, kind, payload, created_at)
                 VALUES (?1, 'void', ?2, ?3)",
            )?
            .execute(params![op_id, payload.to_json(), at])?;
        if added != 1 {
            bail!("the operation id {op_id} is already in the outbox");
        }
        tx.commit().context("committing the void")?;
        Ok(())
    }

    /// One stored hold.
    pub fn stored_hold(&self, hold_id: &str) -> Result<Option<StoredHold>> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {HOLD_COLUMNS} FROM holds WHERE hold_id = ?1"),
                [hold_id],
                read_row,
            )
            .optional()?;
        row.map(to_stored).transpose()
    }

    fn holds_where(
        &self,
        condition: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<StoredHold>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {HOLD_COLUMNS} FROM holds WHERE {condition} ORDER BY created_at, hold_id"
        ))?;
        let rows = stmt
            .query_map(args, read_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(to_stored).collect()
    }

    /// The holds made on `day` (Asia/Seoul), in the order they were made: the day's
    /// settlement.
    pub fn holds_on(&self, day: NaiveDate) -> Result<Vec<StoredHold>> {
        self.holds_where("day = ?1", &[&day.to_string()])
    }

    /// The counter's book at `now` for a decision about `member`: the server's balance for
    /// the member and whether they are revoked, the last good sync, and the holds the
    /// decision reads: those the server has not answered for (the terminal's outstanding
    /// figures), and the member's made today or since their balance (available points, the
    /// daily limit). A replayed token is refused by the stored seen tokens and the holds'
    /// unique token ids, not by this book.
    pub fn redemption_book(
        &self,
        limits: OfflineLimits,
        member: Option<MemberNo>,
        now: DateTime<Utc>,
    ) -> Result<RedemptionBook> {
        let mut book = RedemptionBook::new(limits);
        if let Some(at) = self.last_good_sync()? {
            book.synced(at);
        }
        let today = points_core::kst_day(now).to_string();
        let holds = match member {
            Some(member) => {
                let balance = self.balance_of(member)?;
                if let Some(balance) = balance {
                    book.set_balance(member, balance);
                }
                if self.member_revoked(member)? {
                    book.set_revoked([member].into_iter().collect());
                }
                // Without a balance, no hold of the member's before today matters.
                let since = balance.map_or_else(|| stamp(now), |b| stamp(b.as_of));
                self.holds_where(
                    "status = 'pending' OR (member_no = ?1 AND (day >= ?2 OR created_at >= ?3))",
                    &[&member.to_string(), &today, &since],
                )?
            }
            None => self.holds_where("status = 'pending'", &[])?,
        };
        for stored in holds {
            let void = stored.void.clone();
            book.restore_hold(stored.hold, stored.outcome);
            if let Some(void) = void {
                book.restore_void(&void);
            }
        }
        Ok(book)
    }

    /// The dynamic tokens accepted here that are still alive at `now`, as
    /// `redemption-token`'s [`SeenTokens`] (at most `capacity`).
    pub fn seen_tokens(&self, capacity: usize, now: DateTime<Utc>) -> Result<SeenTokens> {
        let mut seen = SeenTokens::new(capacity);
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.token_id, s.expires_at, h.member_no FROM seen_tokens s
             JOIN holds h ON h.token_id = s.token_id
             WHERE s.expires_at > ?1 ORDER BY s.expires_at",
        )?;
        let rows = stmt
            .query_map([stamp(now)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (token_id, expires, member) in rows {
            let id = unhex16(&token_id)
                .ok_or_else(|| anyhow!("stored token id {token_id:?} is not 32 hex digits"))?;
            let expires_at = parse_time(&expires)?;
            let claims = Claims {
                kind: TokenKind::Dynamic,
                member: member.parse().map_err(|e| anyhow!("{e}"))?,
                key_id: 0,
                issued_at: now,
                expires_at,
                token_id: Some(TokenId(id)),
                card_serial: None,
            };
            // Live and distinct by construction; a full set refuses the rest, which then are
            // refused as too many scans rather than forgotten.
            let _ = seen.admit(&claims, now);
        }
        Ok(seen)
    }

    /// The published keys the counter trusts. A retired key stays in the set with a period
    /// that covers no token, so that its tokens are refused as signed with the wrong key.
    pub fn redemption_key_set(&self) -> Result<KeySet> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT key_id, public_key, retired FROM redemption_keys ORDER BY key_id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, u16>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        let mut published = Vec::with_capacity(rows.len());
        for (key_id, public_key, retired) in rows {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(public_key.trim())
                .with_context(|| format!("redemption key {key_id} is not base64"))?;
            published.push(PublishedKey {
                key_id,
                public_key: bytes.iter().map(|b| format!("{b:02x}")).collect(),
                not_before: epoch,
                not_after: retired.then_some(epoch + chrono::Duration::seconds(1)),
            });
        }
        KeySet::new(&published).map_err(|e| anyhow!("the stored redemption keys: {e}"))
    }

    /// Whether the server's revocation list names `member`.
    pub fn member_revoked(&self, member: MemberNo) -> Result<bool> {
        let n = i64::try_from(member.0)?;
        Ok(self.conn.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM revoked_members WHERE {SAME_MEMBER})"),
            [n],
            |r| r.get(0),
        )?)
    }

    /// The revocation list as `redemption-token` reads it, for the member scanned: the member,
    /// and the member's cards, as the server last told.
    pub fn revocations_for(&self, member: MemberNo) -> Result<Revocations> {
        let mut r = Revocations::default();
        if self.member_revoked(member)? {
            r.members.insert(member);
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT serial FROM card_states WHERE member = ?1 AND revoked = 1")?;
        for serial in stmt.query_map([i64::try_from(member.0)?], |row| row.get::<_, u16>(0))? {
            r.cards.insert(RevokedCard {
                member,
                serial: serial?,
            });
        }
        Ok(r)
    }

    /// The server's last balance for `member`, if the counter has one.
    pub fn balance_of(&self, member: MemberNo) -> Result<Option<Balance>> {
        let n = i64::try_from(member.0)?;
        let row: Option<(i64, String)> = self
            .conn
            .query_row(
                &format!(
                    "SELECT balance, as_of FROM balances WHERE {SAME_MEMBER}
                     ORDER BY as_of DESC LIMIT 1"
                ),
                [n],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(points, as_of)| {
            Ok(Balance {
                points: u64::try_from(points.max(0))?,
                as_of: parse_time(&as_of)?,
            })
        })
        .transpose()
    }

    /// The cached member a scanned member number names (`PP-0042` or `PP-00000042`).
    pub fn member_by_number(&self, member: MemberNo) -> Result<Option<Member>> {
        let n = i64::try_from(member.0)?;
        let no: Option<String> = self
            .conn
            .query_row(
                &format!("SELECT member_no FROM members WHERE {SAME_MEMBER} LIMIT 1"),
                [n],
                |r| r.get(0),
            )
            .optional()?;
        match no {
            Some(no) => self.member(&no),
            None => Ok(None),
        }
    }

    /// When the counter last heard from the server, for its offline limits: the later of the
    /// last good sync (the sync log) and the last pull of balances, keys and revocations.
    pub fn last_good_sync(&self) -> Result<Option<DateTime<Utc>>> {
        let synced = self
            .sync_log()?
            .last_good_sync
            .map(|t| parse_time(&t))
            .transpose()?;
        let pulled = self.last_pull()?.map(|t| t.to_utc());
        Ok(synced.max(pulled))
    }

    /// Wrong PINs for a card today (Asia/Seoul, the day of `now`) at this counter, or at
    /// least [`PIN_LOCK_FAILURES`] when the server said the card is locked today after wrong
    /// PINs at any counters. A sync resets nothing.
    pub fn card_lock(&self, member: MemberNo, serial: u16, now: DateTime<Utc>) -> Result<CardLock> {
        let today = points_core::kst_day(now);
        // The day's first instant: 00:00 in Seoul is 15:00 UTC the day before.
        let start = today
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc() - chrono::Duration::hours(9))
            .context("midnight")?;
        let here: u32 = self.conn.query_row(
            "SELECT count(*) FROM pin_failures WHERE member_no = ?1 AND serial = ?2 AND at >= ?3",
            params![member.to_string(), serial, stamp(start)],
            |r| r.get(0),
        )?;
        let locked: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM card_states
                            WHERE member = ?1 AND serial = ?2 AND locked_on = ?3)",
            params![i64::try_from(member.0)?, serial, today.to_string()],
            |r| r.get(0),
        )?;
        let failures = if locked {
            here.max(PIN_LOCK_FAILURES)
        } else {
            here
        };
        Ok(CardLock { failures })
    }

    /// Records a wrong PIN for a card and queues it for the server as a `wrong_pin` operation
    /// under `op_id`, in one transaction: the server counts them across counters.
    pub fn record_pin_failure(
        &mut self,
        member: MemberNo,
        serial: u16,
        at: DateTime<Utc>,
        op_id: &str,
    ) -> Result<()> {
        self.in_transaction(|s| {
            s.conn.execute(
                "INSERT INTO pin_failures(member_no, serial, at) VALUES (?1, ?2, ?3)",
                params![member.to_string(), serial, stamp(at)],
            )?;
            let payload = OpPayload::WrongPin(WrongPinPayload {
                member_number: member.to_string(),
                serial,
                at: at.to_rfc3339(),
            });
            s.queue_operation(op_id, &payload, at.fixed_offset())?;
            Ok(())
        })
    }

    /// Forgets a card's wrong PINs after the right one.
    pub fn clear_pin_failures(&self, member: MemberNo, serial: u16) -> Result<()> {
        self.conn.execute(
            "DELETE FROM pin_failures WHERE member_no = ?1 AND serial = ?2",
            params![member.to_string(), serial],
        )?;
        Ok(())
    }

    /// The hold counts by server status, for tests and status screens: (pending, posted,
    /// rejected, voided).
    pub fn hold_counts(&self) -> Result<BTreeMap<String, i64>> {
        let mut stmt = self.conn.prepare(
            "SELECT CASE WHEN voided_at IS NOT NULL THEN 'voided' ELSE status END, count(*)
             FROM holds GROUP BY 1",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
        Ok(rows)
    }
}

fn unhex16(text: &str) -> Option<[u8; 16]> {
    let text = text.as_bytes();
    if text.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in text.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
#[path = "holds_tests.rs"]
mod tests;
