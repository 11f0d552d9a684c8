//! `palpal-central`, the reference central server of Palpal: terminal enrollment with
//! one-time codes, signed sync of terminal operations (member enrollments and step reports)
//! applied exactly once by operation id, the points ledger rated with `points-core`, and load
//! shedding with 429 + `Retry-After`. It is an adapter: axum over SQLite behind the [`store`]
//! interface, with a single writer thread that commits in groups.
//!
//! It is not a core: the rules live in `points-core`, and this crate only stores and applies
//! them. It does not yet hand out sign-up quotas, settle redemptions or pull deltas to
//! terminals. The wire format is in `docs/sync-api.yaml`; [`signing`] and [`wire`] are the
//! pieces a terminal's sync client shares with the server.

pub mod clock;
pub mod code;
pub mod error;
pub mod http;
pub mod metrics;
pub mod signing;
pub mod store;
pub mod wire;
mod writer;
