//! The token's bytes and its text. Every token is canonical: [`Token::decode`] accepts exactly
//! the bytes [`Token::encode`] writes, so `decode(b)` succeeding means `encode() == b`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::refusal::Refusal;
use crate::{base45, MAX_TTL_SECS, PIN_COST_RANGE, TEXT_PREFIX};

/// The format version, the token's first byte.
pub(crate) const VERSION: u8 = 1;
const KIND_DYNAMIC: u8 = 1;
const KIND_CARD: u8 = 2;
/// Bytes before the kind-specific part: version, kind, key id, member, issued at.
const HEADER_LEN: usize = 16;
pub(crate) const SIGNATURE_LEN: usize = 64;
/// Total length of a dynamic token.
pub const DYNAMIC_LEN: usize = HEADER_LEN + 1 + 8 + SIGNATURE_LEN;
/// Total length of a card token.
pub const CARD_LEN: usize = HEADER_LEN + 2 + 4 + 1 + 8 + 2 + SIGNATURE_LEN;
/// Prepended to the signed bytes, so that an issuing key's signature over anything else can
/// never pass for a token.
pub const SIGNING_DOMAIN: &[u8] = b"palpal redemption token v1\n";

/// A member number, `PP-` and digits, as the central server writes it (`PP-00000042`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(type = "string"))]
pub struct MemberNo(pub u64);

impl fmt::Display for MemberNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PP-{:08}", self.0)
    }
}

impl FromStr for MemberNo {
    type Err = crate::Invalid;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || crate::Invalid::MemberNo(text.to_owned());
        let digits = text
            .trim()
            .strip_prefix("PP-")
            .or_else(|| text.trim().strip_prefix("pp-"))
            .ok_or_else(bad)?;
        if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        digits.parse().map(MemberNo).map_err(|_| bad())
    }
}

impl Serialize for MemberNo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MemberNo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Which kind of token this is; the counter's rules give a card a lower offline limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Made by the phone app or the watch face; lives at most two minutes, used once.
    Dynamic,
    /// A printed member card: static, needs the member's PIN.
    Card,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenKind::Dynamic => "dynamic",
            TokenKind::Card => "card",
        })
    }
}

/// What a card carries to check its PIN: Argon2id's cost, a per-card salt and the first two
/// bytes of the hash. Two bytes on purpose: see `docs/redemption-token.md`, "The PIN".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinCheck {
    /// Argon2id memory cost, as log2 of KiB (14 is 16 MiB).
    pub cost: u8,
    /// Random per card, so that no table of PIN hashes serves two cards.
    pub salt: [u8; 8],
    /// The first two bytes of the Argon2id hash of the PIN.
    pub tag: [u8; 2],
}

/// The part of a token that depends on its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// A dynamic token.
    Dynamic {
        /// Seconds from `issued_at` to expiry, 1 to [`MAX_TTL_SECS`].
        ttl: u8,
        /// Random per token: what the counter and the server remember to refuse a second use.
        nonce: [u8; 8],
    },
    /// A member card.
    Card {
        /// The card's number for this member; a lost card is revoked by it.
        serial: u16,
        /// Seconds since the Unix epoch from which the card is no longer accepted.
        expires_at: u32,
        /// The PIN check.
        pin: PinCheck,
    },
}

/// A token as read, not yet verified: decoding proves only that its bytes are well formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// Which published key signed it.
    pub key_id: u16,
    /// The member who spends.
    pub member: MemberNo,
    /// Seconds since the Unix epoch.
    pub issued_at: u32,
    /// Kind-specific fields.
    pub body: Body,
    /// Ed25519 over [`SIGNING_DOMAIN`] and every byte before the signature.
    pub signature: [u8; SIGNATURE_LEN],
}

fn malformed(reason: &'static str) -> Refusal {
    Refusal::Malformed { reason }
}

/// Reads fixed-size fields off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        // The caller checked the total length first.
        let (head, rest) = self.0.split_at(N.min(self.0.len()));
        out[..head.len()].copy_from_slice(head);
        self.0 = rest;
        out
    }
}

impl Token {
    /// The kind of token.
    pub fn kind(&self) -> TokenKind {
        match self.body {
            Body::Dynamic { .. } => TokenKind::Dynamic,
            Body::Card { .. } => TokenKind::Card,
        }
    }

    /// The bytes the signature covers: the token without its signature.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CARD_LEN);
        out.push(VERSION);
        out.push(match self.body {
            Body::Dynamic { .. } => KIND_DYNAMIC,
            Body::Card { .. } => KIND_CARD,
        });
        out.extend_from_slice(&self.key_id.to_be_bytes());
        out.extend_from_slice(&self.member.0.to_be_bytes());
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        match self.body {
            Body::Dynamic { ttl, nonce } => {
                out.push(ttl);
                out.extend_from_slice(&nonce);
            }
            Body::Card {
                serial,
                expires_at,
                pin,
            } => {
                out.extend_from_slice(&serial.to_be_bytes());
                out.extend_from_slice(&expires_at.to_be_bytes());
                out.push(pin.cost);
                out.extend_from_slice(&pin.salt);
                out.extend_from_slice(&pin.tag);
            }
        }
        out
    }

    /// The message Ed25519 signs: [`SIGNING_DOMAIN`] then [`Token::signed_bytes`].
    pub(crate) fn message(&self) -> Vec<u8> {
        let mut out = SIGNING_DOMAIN.to_vec();
        out.extend_from_slice(&self.signed_bytes());
        out
    }

    /// The token's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signed_bytes();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Reads a token's bytes; [`Refusal::Malformed`] unless they are exactly what
    /// [`Token::encode`] would write for some token.
    pub fn decode(bytes: &[u8]) -> Result<Token, Refusal> {
        let (&version, rest) = bytes.split_first().ok_or(malformed("empty"))?;
        if version != VERSION {
            return Err(malformed("unknown version"));
        }
        let kind = *rest.first().ok_or(malformed("too short"))?;
        let expected = match kind {
            KIND_DYNAMIC => DYNAMIC_LEN,
            KIND_CARD => CARD_LEN,
            _ => return Err(malformed("unknown kind")),
        };
        if bytes.len() != expected {
            return Err(malformed("wrong length"));
        }
        let mut r = Reader(&bytes[2..]);
        let key_id = u16::from_be_bytes(r.take());
        let member = MemberNo(u64::from_be_bytes(r.take()));
        let issued_at = u32::from_be_bytes(r.take());
        let body = if kind == KIND_DYNAMIC {
            let [ttl] = r.take();
            if ttl == 0 || ttl > MAX_TTL_SECS {
                return Err(malformed("lifetime out of range"));
            }
            Body::Dynamic {
                ttl,
                nonce: r.take(),
            }
        } else {
            let serial = u16::from_be_bytes(r.take());
            let expires_at = u32::from_be_bytes(r.take());
            if expires_at <= issued_at {
                return Err(malformed("card expires before it is issued"));
            }
            let [cost] = r.take();
            if !PIN_COST_RANGE.contains(&cost) {
                return Err(malformed("PIN cost out of range"));
            }
            Body::Card {
                serial,
                expires_at,
                pin: PinCheck {
                    cost,
                    salt: r.take(),
                    tag: r.take(),
                },
            }
        };
        Ok(Token {
            key_id,
            member,
            issued_at,
            body,
            signature: r.take(),
        })
    }

    /// The token as QR text: [`TEXT_PREFIX`] then Base45 of its bytes.
    pub fn to_text(&self) -> String {
        let mut out = TEXT_PREFIX.to_owned();
        out.push_str(&base45::encode(&self.encode()));
        out
    }

    /// Reads a token's text as a scanner delivers it. A trailing line break (a keyboard-wedge
    /// scanner's Enter) is ignored, and so is letter case (Caps Lock).
    pub fn parse(text: &str) -> Result<Token, Refusal> {
        let text = text.trim_end_matches(['\r', '\n']);
        let prefix = text
            .get(..TEXT_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(TEXT_PREFIX))
            .ok_or(malformed("not a Palpal token"))?;
        let bytes = base45::decode(&text[prefix.len()..]).ok_or(malformed("not Base45"))?;
        Token::decode(&bytes)
    }

    /// When the token stops being accepted, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> u32 {
        match self.body {
            Body::Dynamic { ttl, .. } => self.issued_at.saturating_add(u32::from(ttl)),
            Body::Card { expires_at, .. } => expires_at,
        }
    }
}

/// Seconds since the Unix epoch as a time.
pub(crate) fn to_time(secs: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(secs), 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}
