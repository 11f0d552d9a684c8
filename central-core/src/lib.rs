//! The central server's rules, pure: an operation and the state it reads come in, a result
//! and the changes to write go out. No IO and no clock (`now` is an argument), like
//! `points-core`; the server's stores (SQLite today) load what a rule reads, call it, and
//! persist what it returns, so that a second store or the seeded simulation applies the very
//! same rules.

pub mod enroll;
pub mod holds;
pub mod pairing;
pub mod steps;
