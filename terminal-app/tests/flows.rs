//! The flows as plain functions, without a window: a terminal in a temporary folder, its real
//! SQLite store on disk, and the flows called as the app's commands call them, from more than
//! one thread at once where the app's commands may now overlap.

#![allow(clippy::unwrap_used)] // a test file: a failed unwrap is a failed test

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use redemption_token::{IssuerKey, MemberNo};
use terminal_app::config::TerminalConfig;
use terminal_app::kiosk::{ConsentInput, ContactInput};
use terminal_app::sync::BackgroundSync;
use terminal_app::terminal::Terminal;
use terminal_app::{commands, counter, kiosk, AppState};
use terminal_store::{demo_issuer_seed_hex, Store, TerminalIdentity, DEMO_KEY_ID};

const KIOSK: &str = r#"
role = "kiosk"
site = "jongno-cc"
site_name = "종로구 보건소"
fixed_now = "2025-12-03T10:15:00+09:00"
"#;

const COUNTER: &str = r#"
role = "counter"
site = "onnuri"
site_name = "온누리약국"
demo = true
fixed_now = "2025-12-03T15:00:00+09:00"
"#;

fn terminal(dir: &std::path::Path, config: &str) -> AppState {
    let config = TerminalConfig::parse(config, dir).unwrap();
    AppState::ready(Terminal::open(config).unwrap())
}

fn applicant(phone: &str) -> commands::ApplicantInput {
    commands::ApplicantInput {
        name: "김영희".into(),
        birth_date: "19500301".into(),
        phone: phone.into(),
        residency: kiosk_core::Residency::Lives,
    }
}

fn consents() -> Vec<ConsentInput> {
    ["personal-data", "health-data"]
        .into_iter()
        .map(|id| ConsentInput {
            id: id.into(),
            version: "2025-12".into(),
            agreed: true,
        })
        .collect()
}

fn queued(state: &AppState) -> i64 {
    commands::terminal_info(state).unwrap().queued
}

#[test]
fn a_sign_up_is_checked_recorded_and_queued_without_a_window() {
    let dir = tempfile::tempdir().unwrap();
    let state = terminal(dir.path(), KIOSK);
    let checked = kiosk::check_identity(&state, None, applicant("010-1234-5678")).unwrap();
    assert_eq!(checked.age, 75);
    assert_eq!(checked.masked_name, "김*희");
    let done = kiosk::register(&state, applicant("010-1234-5678"), consents(), None).unwrap();
    assert_eq!(done.enrollment.local_no, 1);
    assert!(!done.card.signed);
    assert_eq!(queued(&state), 1);
    // The same person again: refused as a duplicate, nothing more queued.
    let again = kiosk::register(&state, applicant("01012345678"), consents(), None).unwrap_err();
    assert_eq!(serde_json::to_value(again.code).unwrap(), "already_member");
    assert_eq!(queued(&state), 1);
}

#[test]
fn a_wrong_guardian_number_is_refused_with_kiosk_cores_rule_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let state = terminal(dir.path(), KIOSK);
    let contact = ContactInput {
        guardian_phone: "010-5555".into(),
    };
    let refused = kiosk::register(
        &state,
        applicant("010-1234-5678"),
        consents(),
        Some(contact),
    )
    .unwrap_err();
    assert_eq!(serde_json::to_value(refused.code).unwrap(), "phone_invalid");
    assert!(refused.message.contains("010-5555"), "{}", refused.message);
    assert_eq!(queued(&state), 0);
    // Left empty, the guardian's number is simply not given.
    let empty = ContactInput {
        guardian_phone: " ".into(),
    };
    kiosk::register(&state, applicant("010-1234-5678"), consents(), Some(empty)).unwrap();
    assert_eq!(queued(&state), 1);
}

#[test]
fn one_dynamic_code_redeemed_from_two_threads_at_once_makes_one_hold() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(terminal(dir.path(), COUNTER));
    let now: DateTime<Utc> = "2025-12-03T06:00:00Z".parse().unwrap();
    let issuer = IssuerKey::from_seed_hex(DEMO_KEY_ID, demo_issuer_seed_hex()).unwrap();
    let token = issuer
        .issue_dynamic(MemberNo(2), now, 120, [5; 8])
        .unwrap()
        .to_text();
    let answers: Vec<_> = (0..2)
        .map(|_| {
            let state = Arc::clone(&state);
            let token = token.clone();
            std::thread::spawn(move || counter::redeem(&state, token, 500, None))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let held = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(held, 1, "{answers:?}");
    let refused = answers.iter().find_map(|a| a.as_ref().err()).unwrap();
    assert_eq!(serde_json::to_value(refused.code).unwrap(), "replayed");
    let store = Store::open(&dir.path().join("terminal.sqlite")).unwrap();
    assert_eq!(store.outbox_counts().unwrap().queued, 1);
}

/// A server that accepts connections and never answers, for as long as it lives.
fn hanging() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

#[test]
fn the_card_is_for_later_within_seconds_when_the_server_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let state = terminal(dir.path(), KIOSK);
    let (_listener, url) = hanging();
    let store = Store::open(&dir.path().join("terminal.sqlite")).unwrap();
    store
        .save_identity(&TerminalIdentity {
            terminal_id: "T-000001".into(),
            site: "jongno-cc".into(),
            role: "kiosk".into(),
            name: "jongno kiosk".into(),
            server_url: url,
            server_key: None,
            secret_key: [7; 32],
            provisioned_at: "2025-12-01T09:00:00+09:00".parse().unwrap(),
        })
        .unwrap();
    drop(store);
    let done = kiosk::register(&state, applicant("010-1234-5678"), consents(), None).unwrap();
    // The background sync is there but not running: the card pushes the sign-up itself,
    // one request that the server never answers.
    let sync = BackgroundSync::new(&state);
    let started = Instant::now();
    let later = kiosk::issue_member_card(
        &state,
        Some(&sync),
        done.card.op_id.clone(),
        "802417".into(),
        "802417".into(),
    )
    .unwrap_err();
    eprintln!("the card answered after {:?}", started.elapsed());
    assert_eq!(serde_json::to_value(later.code).unwrap(), "card_not_yet");
    assert!(
        later.message.starts_with("가입은 완료되었습니다."),
        "{}",
        later.message
    );
    // The sign-up stands, waiting for the server (sent once, its answer unknown: it is sent
    // again at the next sync).
    let counts = Store::open(&dir.path().join("terminal.sqlite"))
        .unwrap()
        .outbox_counts()
        .unwrap();
    assert_eq!(counts.queued + counts.in_flight, 1);
}
