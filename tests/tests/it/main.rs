//! The workspace's integration tests.
//!
//! `e2e` drives the real app through tauri-driver and WebKitWebDriver; it runs when
//! `PALPAL_E2E=1` (as `make test` sets it, under Xvfb) and says it was skipped otherwise.
//! `watch_bench` gives it simulated watches: a private dbus-daemon with `watch-sim` on it.

mod e2e;
mod watch_bench;
