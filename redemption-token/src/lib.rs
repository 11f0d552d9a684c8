//! `redemption-token`: the QR codes a member shows at a store counter to spend points, and how
//! a counter checks them offline. A token is a few dozen bytes signed with Ed25519 by the
//! central server's issuing key (named by a key id, so keys rotate), written as Base45 text
//! that fits a QR code of version 6 at error correction M. There are two kinds: a **dynamic**
//! token, made by the phone app or the watch face, that lives at most two minutes and carries a
//! nonce so that it is accepted once ([`SeenTokens`] on the counter, the server at
//! reconciliation); and a printed member **card**, static, that needs the member's PIN and
//! whose [`TokenKind`] lets the counter's rules give it a lower offline limit. The byte layout,
//! worked examples and the threat model are in `docs/redemption-token.md`.
//!
//! This crate is pure: no IO, no clock, no random numbers. `now`, nonces, salts and key seeds
//! are arguments; the shell (the `palpal` command line, the app) reads the clock and the
//! operating system's random source. It does not decide how much a member may spend: limits
//! belong to `merchant-core`, which reads [`Claims::kind`].

mod base45;
mod format;
mod keys;
mod refusal;
mod seen;
mod verify;

#[cfg(test)]
mod tests;

pub use format::{
    Body, MemberNo, PinCheck, Token, TokenKind, CARD_LEN, DYNAMIC_LEN, SIGNING_DOMAIN,
};
pub use keys::{card_pin_check, CardSpec, IssuerKey, KeySet, PublishedKey};
pub use refusal::{Invalid, Refusal};
pub use seen::SeenTokens;
pub use verify::{verify, verify_carried, Claims, Revocations, RevokedCard, TokenId};

/// The longest a dynamic token may live, in seconds: its `ttl` byte is at most this.
pub const MAX_TTL_SECS: u8 = 120;

/// How far a token's issue time may be ahead of the counter's clock and still be accepted, in
/// seconds. It covers a phone and a counter whose clocks disagree. It never extends a token's
/// expiry: a phone whose clock is behind makes tokens that expire early on the counter, which
/// fails safe (the app shows a new code).
pub const CLOCK_SKEW_SECS: i64 = 30;

/// The number of digits of a member card's PIN.
pub const PIN_DIGITS: usize = 6;

/// The Argon2id memory cost a card carries by default: 2^14 KiB = 16 MiB, with 3 passes.
pub const DEFAULT_PIN_COST: u8 = 14;

/// The smallest Argon2id memory cost the server signs a new card with: at 2^14 KiB a PIN's
/// 10^6 values cost hours to try from a card's text, where at 2^8 two PINs that pass were
/// found in about a minute. Cards already issued cheaper still verify ([`PIN_COST_RANGE`]).
pub const MIN_ISSUE_PIN_COST: u8 = 14;

/// The smallest and largest Argon2id memory costs (log2 of KiB) a card may carry. Below 8
/// (256 KiB) the PIN is too cheap to grind; above 18 (256 MiB) a counter could run out of
/// memory.
pub const PIN_COST_RANGE: std::ops::RangeInclusive<u8> = 8..=18;

/// The prefix of a token's text: it tells a token apart from a product barcode scanned at the
/// same counter, and names the format's version.
pub const TEXT_PREFIX: &str = "PP1:";
