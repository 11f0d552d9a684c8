//! The terminal's flows, with no window in them: the sign-up kiosk's (check identity, consent,
//! register, ticket, the member card and its printing, pairing a watch, spoken guidance) and
//! a lost card replaced at the kiosk, the counter's (find a member, sync a watch, scan, redeem, void, the day's settlement), the
//! setup of a terminal not yet provisioned (its enrollment QR code), and the background sync, over the terminal's store (`terminal-store`), the central server
//! (`terminal-sync`) and a clock.
//!
//! Each flow is a plain function that takes the terminal ([`AppState`]) and what the person
//! typed, lets the cores decide (`kiosk-core`, `merchant-core`, `points-core`,
//! `redemption-token`), stores what they returned, and answers the domain's result or an
//! [`error::CommandError`] (a code from a closed set and a message in the terminal's
//! language). The app (`src-tauri`) wraps each in a thin async command; its tests and these run
//! with plain `cargo test`.

pub mod commands;
pub mod config;
pub mod counter;
pub mod error;
pub mod kiosk;
pub mod replace;
pub mod setup;
pub mod sync;
pub mod terminal;
pub mod watch;

pub use terminal::AppState;
