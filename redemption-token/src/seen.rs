//! The dynamic tokens a counter has accepted and that are still alive.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::format::TokenKind;
use crate::refusal::Refusal;
use crate::verify::{Claims, TokenId};

/// The dynamic tokens this counter accepted that have not expired yet, so that a token is
/// accepted once. Memory is bounded: an entry is forgotten once its token has expired (a
/// replay then fails as expired), and at most `capacity` live tokens are kept; beyond that a
/// new token is refused ([`Refusal::TooManyScans`]) rather than an old one forgotten early.
///
/// Invariant: a token this structure has forgotten is refused as expired, even if the clock
/// it is given goes backwards.
#[derive(Debug, Clone)]
pub struct SeenTokens {
    capacity: usize,
    by_id: BTreeMap<TokenId, i64>,
    by_expiry: BTreeSet<(i64, TokenId)>,
    /// The latest expiry of any forgotten token.
    forgotten_up_to: i64,
}

impl SeenTokens {
    /// Remembers at most `capacity` live tokens. A counter scans perhaps a few per minute and a
    /// token lives two minutes, so a few thousand is plenty.
    pub fn new(capacity: usize) -> SeenTokens {
        SeenTokens {
            capacity,
            by_id: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            forgotten_up_to: i64::MIN,
        }
    }

    /// Accepts a verified token for use: a dynamic token once, a card always (a card is shown
    /// again and again; its limit is the counter's rules). Call it after [`crate::verify`],
    /// with the same `now`, and before recording the hold.
    pub fn admit(&mut self, claims: &Claims, now: DateTime<Utc>) -> Result<(), Refusal> {
        let Some(id) = claims.token_id else {
            debug_assert_eq!(claims.kind, TokenKind::Card);
            return Ok(());
        };
        self.forget_expired(now);
        let expires_at = claims.expires_at.timestamp();
        if self.by_id.contains_key(&id) {
            return Err(Refusal::Replayed);
        }
        if expires_at <= self.forgotten_up_to || expires_at <= now.timestamp() {
            return Err(Refusal::Expired {
                kind: claims.kind,
                expires_at: claims.expires_at,
            });
        }
        if self.by_id.len() >= self.capacity {
            return Err(Refusal::TooManyScans);
        }
        self.by_id.insert(id, expires_at);
        self.by_expiry.insert((expires_at, id));
        Ok(())
    }

    /// Forgets the tokens that have expired at `now`.
    pub fn forget_expired(&mut self, now: DateTime<Utc>) {
        let now = now.timestamp();
        while let Some(&(expires_at, id)) = self.by_expiry.first() {
            if expires_at > now {
                break;
            }
            self.by_expiry.pop_first();
            self.by_id.remove(&id);
            self.forgotten_up_to = self.forgotten_up_to.max(expires_at);
        }
    }

    /// The number of live tokens remembered.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
