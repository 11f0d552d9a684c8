//! Checking a token offline: signature under a published key, revocation, time, PIN.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize, Serializer};

use crate::format::{to_time, Body, MemberNo, Token, TokenKind};
use crate::keys::{hex, pin_tag, pin_well_formed, KeySet};
use crate::refusal::Refusal;
use crate::CLOCK_SKEW_SECS;

/// A member card that may no longer be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RevokedCard {
    /// The member.
    pub member: MemberNo,
    /// The card's serial.
    pub serial: u16,
}

/// The revocation list the server publishes with its keys: members who may not spend points
/// and member cards reported lost or replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocations {
    /// Members who may not spend points, whatever they show.
    #[serde(default)]
    pub members: BTreeSet<MemberNo>,
    /// Cards that may not be used; the member's other cards and app still may.
    #[serde(default)]
    pub cards: BTreeSet<RevokedCard>,
}

/// What makes a dynamic token unique: its member and nonce. The counter remembers it
/// ([`crate::SeenTokens`]) and a hold carries it, so that the server refuses a second use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(type = "string"))]
pub struct TokenId(pub [u8; 16]);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl Serialize for TokenId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Claims {
    /// Dynamic or card: the counter's rules set the offline limit by it.
    pub kind: TokenKind,
    /// The member who spends.
    pub member: MemberNo,
    /// The key that signed it.
    pub key_id: u16,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// From when it is no longer accepted.
    pub expires_at: DateTime<Utc>,
    /// A dynamic token's id; `None` for a card, which is shown again and again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub token_id: Option<TokenId>,
    /// A card's serial; `None` for a dynamic token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub card_serial: Option<u16>,
}

impl Claims {
    /// The claims of a token whose checks have passed.
    fn of(token: &Token) -> Claims {
        let (token_id, card_serial) = match token.body {
            Body::Dynamic { nonce, .. } => {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&token.member.0.to_be_bytes());
                id[8..].copy_from_slice(&nonce);
                (Some(TokenId(id)), None)
            }
            Body::Card { serial, .. } => (None, Some(serial)),
        };
        Claims {
            kind: token.kind(),
            member: token.member,
            key_id: token.key_id,
            issued_at: to_time(token.issued_at),
            expires_at: to_time(token.expires_at()),
            token_id,
            card_serial,
        }
    }
}

/// Verifies a scanned token at `now` against the published `keys` and `revocations`; `pin` is
/// what the member entered, needed for a card and ignored for a dynamic token.
///
/// Checks run cheapest first and each refusal names the first check that failed: the text
/// ([`Refusal::Malformed`]), the key id, the signature, the key's period, revocation, time, and
/// last the PIN (Argon2id, tens of milliseconds). This function remembers nothing: pass a
/// dynamic token's claims to [`crate::SeenTokens::admit`] to refuse a second use.
pub fn verify(
    text: &str,
    keys: &KeySet,
    revocations: &Revocations,
    pin: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Claims, Refusal> {
    let token = Token::parse(text)?;
    verify_token(&token, keys, revocations, pin, now)
}

/// Verifies a token a hold carries, as the server does when the counter's hold reaches it:
/// every check of [`verify`] at `held_at` (the time the counter says it took the hold, which
/// the caller bounds by its own clock) except the PIN, which only the counter that saw the
/// member can check. A card's PIN check stays in the token and is not re-run.
pub fn verify_carried(
    text: &str,
    keys: &KeySet,
    revocations: &Revocations,
    held_at: DateTime<Utc>,
) -> Result<Claims, Refusal> {
    let token = Token::parse(text)?;
    check_token(&token, keys, revocations, held_at)?;
    Ok(Claims::of(&token))
}

/// [`verify`] for a token already parsed.
pub(crate) fn verify_token(
    token: &Token,
    keys: &KeySet,
    revocations: &Revocations,
    pin: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Claims, Refusal> {
    check_token(token, keys, revocations, now)?;
    if let Body::Card {
        serial, pin: check, ..
    } = token.body
    {
        let member = token.member;
        let pin = pin.ok_or(Refusal::PinRequired)?;
        if !pin_well_formed(pin) {
            return Err(Refusal::WrongPin);
        }
        let tag =
            pin_tag(pin, check.cost, &check.salt, member, serial).ok_or(Refusal::Malformed {
                reason: "PIN cost out of range",
            })?;
        if tag != check.tag {
            return Err(Refusal::WrongPin);
        }
    }
    Ok(Claims::of(token))
}

/// Every check but the PIN: key, signature, the key's period, revocation, time.
fn check_token(
    token: &Token,
    keys: &KeySet,
    revocations: &Revocations,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let key_id = token.key_id;
    let trusted = keys
        .keys
        .get(&key_id)
        .ok_or(Refusal::UnknownKeyId { key_id })?;
    let message = token.message();
    let signature = Signature::from_bytes(&token.signature);
    if trusted.key.verify_strict(&message, &signature).is_err() {
        let other_key_signed = keys
            .keys
            .iter()
            .any(|(id, k)| *id != key_id && k.key.verify_strict(&message, &signature).is_ok());
        return Err(if other_key_signed {
            Refusal::WrongKey { key_id }
        } else {
            Refusal::Tampered
        });
    }
    let issued_at = i64::from(token.issued_at);
    if issued_at < trusted.not_before || trusted.not_after.is_some_and(|end| issued_at >= end) {
        return Err(Refusal::WrongKey { key_id });
    }
    let member = token.member;
    if revocations.members.contains(&member) {
        return Err(Refusal::RevokedMember { member });
    }
    if let Body::Card { serial, .. } = token.body {
        if revocations.cards.contains(&RevokedCard { member, serial }) {
            return Err(Refusal::RevokedCard { member, serial });
        }
    }
    let now_secs = now.timestamp();
    if issued_at > now_secs + CLOCK_SKEW_SECS {
        return Err(Refusal::NotYetValid {
            issued_at: to_time(token.issued_at),
        });
    }
    if now_secs >= i64::from(token.expires_at()) {
        return Err(Refusal::Expired {
            kind: token.kind(),
            expires_at: to_time(token.expires_at()),
        });
    }
    Ok(())
}
