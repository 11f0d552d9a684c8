//! `palpal-central`, the reference central server of Palpal: terminal enrollment with
//! one-time codes, signed sync of terminal operations (member enrollments, step reports,
//! redemption holds and voids) applied exactly once by operation id, the points ledger rated
//! with `points-core`, sign-up quota leases per site and day (with the admission schedule,
//! `kiosk-core`'s types), redemption settlement with overspend detection and a reconciliation
//! report per terminal, pull of deltas by cursor, and load shedding with 429 + `Retry-After`.
//! It is an adapter: axum over SQLite behind the [`store`] interface, with a single writer
//! thread that commits in groups. The `fault-proxy` binary beside it injects network faults
//! between a terminal and the server for tests.
//!
//! It is not a core: the rules live in `points-core` and `kiosk-core`, and this crate only
//! stores and applies them. It does not issue redemption tokens (it publishes the public keys
//! the operator adds). The wire format is `sync-protocol`'s, the one definition terminals use
//! too (`docs/sync-api.yaml`).

pub mod clock;
pub mod code;
pub mod console;
pub mod cpu;
pub mod error;
pub mod http;
pub mod limit;
pub mod metrics;
pub mod personal;
pub mod policies;
pub mod store;
pub mod tls;
mod writer;

// The protocol's modules under the names the server's modules use.
use sync_protocol::{signing, wire};
