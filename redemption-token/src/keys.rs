//! The issuing key (the server's, or the reference issuer's), the public keys a counter trusts,
//! and the PIN hash a card carries.

use std::collections::BTreeMap;

use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::format::{Body, MemberNo, PinCheck, Token};
use crate::refusal::Invalid;
use crate::{MAX_TTL_SECS, PIN_COST_RANGE, PIN_DIGITS};

/// Argon2id passes over memory; the memory itself is the card's `cost`.
const PIN_PASSES: u32 = 3;

/// A key that signs tokens, with the id counters know it by.
#[derive(Clone)]
pub struct IssuerKey {
    key_id: u16,
    signing: SigningKey,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("IssuerKey")
            .field("key_id", &self.key_id)
            .field("public_key", &hex(self.signing.verifying_key().as_bytes()))
            .finish()
    }
}

/// What the server knows about a member card when it prints one. `salt` comes from the
/// operating system's random source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardSpec {
    /// The member.
    pub member: MemberNo,
    /// The card's number for this member (1 for the first card, 2 after a loss, ...).
    pub serial: u16,
    /// When the card was printed.
    pub issued_at: DateTime<Utc>,
    /// From when it is no longer accepted.
    pub expires_at: DateTime<Utc>,
    /// Argon2id memory cost, log2 of KiB, in [`PIN_COST_RANGE`].
    pub pin_cost: u8,
    /// Random per card.
    pub salt: [u8; 8],
}

fn unix_secs(time: DateTime<Utc>) -> Result<u32, Invalid> {
    u32::try_from(time.timestamp()).map_err(|_| Invalid::Time(time))
}

impl IssuerKey {
    /// The key whose Ed25519 seed is `seed` (32 random bytes from the operating system).
    pub fn from_seed(key_id: u16, seed: [u8; 32]) -> IssuerKey {
        IssuerKey {
            key_id,
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The key whose seed is written as 64 hex digits (see [`IssuerKey::seed_hex`]).
    pub fn from_seed_hex(key_id: u16, seed: &str) -> Result<IssuerKey, Invalid> {
        let seed = unhex32(seed).ok_or(Invalid::SecretKey)?;
        Ok(IssuerKey::from_seed(key_id, seed))
    }

    /// The Ed25519 seed as 64 hex digits, to store the key.
    pub fn seed_hex(&self) -> String {
        hex(&self.seed())
    }

    /// The key's id.
    pub fn key_id(&self) -> u16 {
        self.key_id
    }

    /// The Ed25519 seed, to store the key.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The Ed25519 public key counters verify with.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The entry counters put in their [`KeySet`], in force from `not_before`.
    pub fn published(&self, not_before: DateTime<Utc>) -> PublishedKey {
        PublishedKey {
            key_id: self.key_id,
            public_key: hex(self.signing.verifying_key().as_bytes()),
            not_before,
            not_after: None,
        }
    }

    pub(crate) fn sign(&self, mut token: Token) -> Token {
        token.signature = self.signing.sign(&token.message()).to_bytes();
        token
    }

    /// A dynamic token for `member`, made at `now`, living `ttl` seconds (1 to
    /// [`MAX_TTL_SECS`]), with a random `nonce`.
    pub fn issue_dynamic(
        &self,
        member: MemberNo,
        now: DateTime<Utc>,
        ttl: u8,
        nonce: [u8; 8],
    ) -> Result<Token, Invalid> {
        if ttl == 0 || ttl > MAX_TTL_SECS {
            return Err(Invalid::Ttl(ttl));
        }
        Ok(self.sign(Token {
            key_id: self.key_id,
            member,
            issued_at: unix_secs(now)?,
            body: Body::Dynamic { ttl, nonce },
            signature: [0; 64],
        }))
    }

    /// A member card's token, bound to `pin` (exactly [`PIN_DIGITS`] digits).
    pub fn issue_card(&self, card: &CardSpec, pin: &str) -> Result<Token, Invalid> {
        let check = card_pin_check(pin, card.pin_cost, card.salt, card.member, card.serial)?;
        self.sign_card(card, check.tag)
    }

    /// A member card's token carrying the PIN `tag` that [`card_pin_check`] computed where
    /// the PIN was typed (the kiosk): the signer never sees the PIN itself.
    pub fn sign_card(&self, card: &CardSpec, tag: [u8; 2]) -> Result<Token, Invalid> {
        let issued_at = unix_secs(card.issued_at)?;
        let expires_at = unix_secs(card.expires_at)?;
        if expires_at <= issued_at {
            return Err(Invalid::CardValidity);
        }
        if !PIN_COST_RANGE.contains(&card.pin_cost) {
            return Err(Invalid::PinCost(card.pin_cost));
        }
        Ok(self.sign(Token {
            key_id: self.key_id,
            member: card.member,
            issued_at,
            body: Body::Card {
                serial: card.serial,
                expires_at,
                pin: PinCheck {
                    cost: card.pin_cost,
                    salt: card.salt,
                    tag,
                },
            },
            signature: [0; 64],
        }))
    }
}

/// The PIN check a card carries for `pin` (exactly [`PIN_DIGITS`] digits): computed where the
/// member types the PIN (the kiosk), so that only the two-byte tag leaves it and the server
/// signs the card without learning the PIN. `salt` comes from the operating system's random
/// source; `member` and `serial` are bound in, so a tag does not move to another card.
pub fn card_pin_check(
    pin: &str,
    cost: u8,
    salt: [u8; 8],
    member: MemberNo,
    serial: u16,
) -> Result<PinCheck, Invalid> {
    if !PIN_COST_RANGE.contains(&cost) {
        return Err(Invalid::PinCost(cost));
    }
    if !pin_well_formed(pin) {
        return Err(Invalid::Pin);
    }
    let tag = pin_tag(pin, cost, &salt, member, serial).ok_or(Invalid::PinCost(cost))?;
    Ok(PinCheck { cost, salt, tag })
}

pub(crate) fn pin_well_formed(pin: &str) -> bool {
    pin.len() == PIN_DIGITS && pin.bytes().all(|b| b.is_ascii_digit())
}

/// The first two bytes of Argon2id(PIN; salt ‖ member ‖ serial), memory 2^cost KiB, 3 passes,
/// one lane. `None` only for a cost Argon2 refuses.
pub(crate) fn pin_tag(
    pin: &str,
    cost: u8,
    salt: &[u8; 8],
    member: MemberNo,
    serial: u16,
) -> Option<[u8; 2]> {
    let memory_kib = 1u32.checked_shl(u32::from(cost))?;
    let params = Params::new(memory_kib, PIN_PASSES, 1, Some(32)).ok()?;
    let mut full_salt = [0u8; 18];
    full_salt[..8].copy_from_slice(salt);
    full_salt[8..16].copy_from_slice(&member.0.to_be_bytes());
    full_salt[16..].copy_from_slice(&serial.to_be_bytes());
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pin.as_bytes(), &full_salt, &mut out)
        .ok()?;
    Some([out[0], out[1]])
}

/// One public key as the server publishes it (JSON), with the period in which it may sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedKey {
    /// The id tokens name it by.
    pub key_id: u16,
    /// The Ed25519 public key, 64 hex digits.
    pub public_key: String,
    /// Tokens issued before this time are not accepted under this key.
    pub not_before: DateTime<Utc>,
    /// Tokens issued from this time on are not accepted under this key (a retired key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub(crate) struct TrustedKey {
    pub(crate) key: VerifyingKey,
    pub(crate) not_before: i64,
    pub(crate) not_after: Option<i64>,
}

/// The public keys a counter trusts, by key id.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub(crate) keys: BTreeMap<u16, TrustedKey>,
}

impl KeySet {
    /// Reads published keys; refuses a key that is not a valid Ed25519 public key and two keys
    /// with the same id.
    pub fn new(published: &[PublishedKey]) -> Result<KeySet, Invalid> {
        let mut keys = BTreeMap::new();
        for p in published {
            let bytes = unhex32(&p.public_key).ok_or(Invalid::PublicKey(p.key_id))?;
            let key = VerifyingKey::from_bytes(&bytes).map_err(|_| Invalid::PublicKey(p.key_id))?;
            if key.is_weak() {
                return Err(Invalid::PublicKey(p.key_id));
            }
            let trusted = TrustedKey {
                key,
                not_before: p.not_before.timestamp(),
                not_after: p.not_after.map(|t| t.timestamp()),
            };
            if keys.insert(p.key_id, trusted).is_some() {
                return Err(Invalid::DuplicateKeyId(p.key_id));
            }
        }
        Ok(KeySet { keys })
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes from 64 hex digits.
pub(crate) fn unhex32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim().as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}
