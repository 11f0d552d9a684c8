//! The workspace's integration tests.
//!
//! `e2e` drives the real app through tauri-driver and WebKitWebDriver; it runs when
//! `PALPAL_E2E=1` (as `make test` sets it, under Xvfb) and says it was skipped otherwise.
//! `e2e_counter` redeems points at the counter from a keyboard-wedge scan to the settlement.
//! `e2e_camera` scans at the counter with WebKit's mock camera and a real code's picture.
//! `e2e_kiosk` registers seniors at the kiosk step by step, and each refusal.
//! `e2e_keyboard` walks both roles with Tab, Enter and typing only.
//! `e2e_console` drives the operator console of the real `palpal-central` in Chromium
//! (chromedriver): setup, sign-in, each page in both languages, sign-out and the lockout.
//! `e2e_setup` provisions a new kiosk from the console's enrollment code on its setup screen.
//! `e2e_responsive` keeps the window painting while the server hangs or is gone.
//! `watch_bench` gives it simulated watches: a private dbus-daemon with `watch-sim` on it.
//! `red_team` attacks the real `palpal-central` over TLS with a stolen terminal's key; it runs
//! in every `cargo test` (build the binaries first: `cargo build --workspace --bins`).

mod e2e;
mod e2e_camera;
mod e2e_console;
mod e2e_counter;
mod e2e_keyboard;
mod e2e_kiosk;
mod e2e_responsive;
mod e2e_setup;
mod red_team;
mod watch_bench;
