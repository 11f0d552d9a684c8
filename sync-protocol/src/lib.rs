//! `sync-protocol`: the one definition of what terminals and the central server say to each
//! other, as `docs/sync-api.yaml` describes it. [`wire`] holds every request and answer body,
//! with one typed payload per kind of operation ([`wire::OpPayload`]); [`signing`] signs a
//! request and checks a signature; [`member`] spells member numbers and terminal labels;
//! [`enrollment`] is what a provisioning QR code carries.
//!
//! Both ends use it: `sync-client` and `terminal-sync` (the terminal), `terminal-store` (what
//! its outbox keeps), `palpal-central` (the server) and the replay. It is not a client or a
//! server: no IO, no clock and no entropy (the time and nonce of a signature are arguments).

pub mod enrollment;
pub mod member;
pub mod server_key;
pub mod signing;
pub mod wire;
