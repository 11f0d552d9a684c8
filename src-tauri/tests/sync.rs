//! The background sync as the UI sees it: `sync_status` through Tauri's IPC (mock runtime, no
//! display), the real store on disk, and for the last test the real `palpal-central` on
//! 127.0.0.1 with the terminal provisioned by the real `palpal provision`. Each test runs one
//! sync on its own thread (`BackgroundSync::sync_now`) instead of waiting for the timer.
//!
//! `palpal` and `palpal-central` are other packages' binaries, looked for next to
//! `palpal-app` in the same target folder: build them first (`cargo build --workspace --bins`,
//! as `make test` does).

#![allow(clippy::unwrap_used)] // a test file: a failed unwrap is a failed test

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use palpal_app::config::TerminalConfig;
use palpal_app::sync::BackgroundSync;
use palpal_app::terminal::Terminal;
use palpal_app::AppState;
use serde_json::{json, Value};
use sync_protocol::wire::{EnrollmentPayload, OpPayload};
use tauri::test::{mock_builder, mock_context, noop_assets};
use tauri::Manager as _;
use terminal_store::{Store, TerminalIdentity};

mod common;
use common::{call, Window};

fn app(dir: &Path, config: &str) -> Window {
    let config = TerminalConfig::parse(config, dir).unwrap();
    let state = AppState::ready(Terminal::open(config).unwrap());
    let background = BackgroundSync::new(&state);
    let app = mock_builder()
        .manage(state)
        .manage(background)
        .invoke_handler(palpal_app::invoke_handler())
        .build(mock_context(noop_assets()))
        .unwrap();
    tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap()
}

fn sync_status(w: &Window) -> Value {
    call(w, "sync_status", json!({})).unwrap()
}

fn sync_now(w: &Window) -> bool {
    w.state::<BackgroundSync>().sync_now()
}

const KIOSK: &str = r#"
role = "kiosk"
site = "성북구 보건소"
database = "kiosk.sqlite"
"#;

fn queue_one(db: &Path) {
    let store = Store::open(db).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2025-12-03T10:00:00+09:00").unwrap();
    let payload = OpPayload::Enrollment(EnrollmentPayload {
        name: "김영희".to_owned(),
        birth_date: "1950-04-01".to_owned(),
        phone: "01012345678".to_owned(),
        day: None,
    });
    store.queue_operation("op-1", &payload, at).unwrap();
}

#[test]
fn an_unprovisioned_terminal_never_syncs_and_says_online_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let w = app(dir.path(), KIOSK);
    queue_one(&dir.path().join("kiosk.sqlite"));
    assert!(!sync_now(&w));
    assert_eq!(
        sync_status(&w),
        json!({ "role": "kiosk", "provisioned": false, "online": null, "queued": 1, "in_flight": 0,
                "rejected": 0, "last_good_sync": null, "last_error": null, "last_pull": null })
    );
}

#[test]
fn a_server_that_does_not_answer_shows_offline_and_the_work_stays() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kiosk.sqlite");
    // Port 9 (discard) on 127.0.0.1: nothing listens there.
    Store::open(&db)
        .unwrap()
        .save_identity(&TerminalIdentity {
            terminal_id: "T-000001".to_owned(),
            site: "성북구 보건소".to_owned(),
            role: "kiosk".to_owned(),
            name: "키오스크".to_owned(),
            server_url: "http://127.0.0.1:9".to_owned(),
            server_key: None,
            secret_key: [7; 32],
            provisioned_at: chrono::Utc::now().fixed_offset(),
        })
        .unwrap();
    queue_one(&db);
    let w = app(dir.path(), KIOSK);
    assert_eq!(sync_status(&w)["online"], Value::Null);
    assert!(sync_now(&w));
    let status = sync_status(&w);
    assert_eq!(status["provisioned"], true);
    assert_eq!(status["online"], false);
    assert_eq!(
        status["queued"].as_u64().unwrap() + status["in_flight"].as_u64().unwrap(),
        1
    );
    assert_eq!(status["last_good_sync"], Value::Null);
    let error = status["last_error"].as_str().unwrap();
    assert!(
        error.contains("연결할 수 없") && error.contains("cannot be reached"),
        "{error}"
    );
}

/// Another package's binary, next to `palpal-app`.
fn sibling(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_palpal-app")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins`",
        path.display()
    );
    path
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `palpal-central` with `args`; returns what it printed.
fn central_cli(args: &[&str]) -> String {
    let out = Command::new(sibling("palpal-central"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "palpal-central {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The real `palpal-central` on 127.0.0.1:0 over a database in `dir` (with `serve_args`
/// added), and a kiosk database `kiosk.sqlite` provisioned against it by the real
/// `palpal provision`. Returns the server (killed when dropped) and the kiosk's database.
fn central_and_kiosk(dir: &Path, serve_args: &[&str]) -> (Server, PathBuf) {
    let central_db = dir.join("central.sqlite");
    let central_db = central_db.to_str().unwrap();
    let mut child = Command::new(sibling("palpal-central"))
        .args(["serve", "--db", central_db, "--listen", "127.0.0.1:0"])
        .args(serve_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server(child);
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the server did not start: {line:?}"))
        .to_owned();
    let stdout = central_cli(&[
        "terminal",
        "add",
        "--db",
        central_db,
        "--site",
        "성북구 보건소",
        "--role",
        "kiosk",
    ]);
    let code = stdout
        .lines()
        .find_map(|l| l.strip_prefix("code: "))
        .unwrap();
    let db = dir.join("kiosk.sqlite");
    let out = Command::new(sibling("palpal"))
        .args(["provision", "--db", db.to_str().unwrap(), "--server", &url])
        .args(["--code", code])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (server, db)
}

#[test]
fn a_provisioned_terminal_syncs_in_the_background_and_shows_online() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, db) = central_and_kiosk(dir.path(), &[]);
    queue_one(&db);

    let w = app(dir.path(), KIOSK);
    assert!(sync_now(&w));
    let status = sync_status(&w);
    assert_eq!(status["online"], true, "{status}");
    assert_eq!(
        (&status["queued"], &status["in_flight"], &status["rejected"]),
        (&json!(0), &json!(0), &json!(0))
    );
    assert_eq!(status["last_error"], Value::Null);
    assert!(status["last_good_sync"].is_string(), "{status}");
    assert!(status["last_pull"].is_string(), "{status}");
    // What was pulled is in the terminal's database for the kiosk to read.
    let store = Store::open(&db).unwrap();
    assert_eq!(store.cached_policies().unwrap().len(), 3);
    assert!(store.admission_schedule().unwrap().is_some());

    // Online, the kiosk asks the server whether a person is already a member: 김영희 is (the
    // server has her from the sync above, this kiosk's own list does not), so she is told at
    // the first step, with her member number.
    let refused = call(
        &w,
        "check_identity",
        json!({ "applicant": {
            "name": "김영희", "birth_date": "19500401", "phone": "010-1234-5678",
            "residency": "lives",
        }}),
    )
    .unwrap_err();
    assert_eq!(refused["code"], "already_member", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("PP-00000001"),
        "{refused}"
    );
}

fn sign_up(w: &Window, name: &str, birth: &str, phone: &str) -> Value {
    call(
        w,
        "register",
        json!({
            "applicant": { "name": name, "birth_date": birth, "phone": phone, "residency": "lives" },
            "consents": [
                { "id": "personal-data", "version": "2025-12", "agreed": true },
                { "id": "health-data", "version": "2025-12", "agreed": true },
            ],
            "contact": null,
        }),
    )
    .unwrap()
}

fn issue_card(w: &Window, op_id: &str, pin: &str, again: &str) -> Result<Value, Value> {
    call(
        w,
        "issue_member_card",
        json!({ "opId": op_id, "pin": pin, "pinAgain": again }),
    )
}

/// The member card: the new member picks a PIN on the kiosk's keypad, the kiosk sends only
/// the PIN's check, the real server signs the card, and a counter takes it offline with the
/// server's published key and that PIN only. Offline, the kiosk says the card comes later and
/// the sign-up stands with its receipt.
#[test]
fn a_new_member_gets_a_card_the_server_signed_that_a_counter_takes_with_the_pin() {
    let dir = tempfile::tempdir().unwrap();
    let central_db = dir.path().join("central.sqlite");
    let secret = dir.path().join("card-key.hex");
    let db = central_db.to_str().unwrap();
    central_cli(&[
        "key",
        "add",
        "--db",
        db,
        "--secret-out",
        secret.to_str().unwrap(),
    ]);
    // Today (Asia/Seoul) is open for sign-ups, with places for this site.
    let today = (chrono::Utc::now() + chrono::Duration::hours(9))
        .date_naive()
        .to_string();
    central_cli(&[
        "schedule", "set", "--db", db, "--day", &today, "--rule", "open",
    ]);
    central_cli(&[
        "quota",
        "set",
        "--db",
        db,
        "--day",
        &today,
        "--site",
        "성북구 보건소",
        "--places",
        "10",
    ]);
    let (server, _db) = central_and_kiosk(dir.path(), &["--card-key", secret.to_str().unwrap()]);
    let w = app(dir.path(), KIOSK);

    let registered = sign_up(&w, "박정숙", "19480215", "010-2222-3333");
    let op_id = registered["enrollment"]["op_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Until the server signs a card, what the kiosk shows is the sign-up receipt.
    let receipt = &registered["card"];
    assert_eq!(receipt["signed"], false);
    assert!(receipt["page_html"]
        .as_str()
        .unwrap()
        .contains("팔팔 가입 접수증"));
    assert_eq!(receipt["qr_content"], json!(op_id));

    // PINs the kiosk refuses, each with what to do next, before anything is sent.
    for (pin, again, code, words) in [
        ("802417", "802471", "pin_mismatch", "서로 다릅니다"),
        ("123456", "123456", "pin_too_easy", "이어지는 숫자"),
        ("8024", "8024", "pin_invalid", "숫자 6자리"),
    ] {
        let e = issue_card(&w, &op_id, pin, again).unwrap_err();
        assert_eq!(e["code"], code, "{e}");
        assert!(e["message"].as_str().unwrap().contains(words), "{e}");
    }

    // The sign-up is sent first (the command syncs when the member number is not known yet).
    let card = issue_card(&w, &op_id, "802417", "802417").unwrap();
    assert_eq!(card["signed"], true);
    assert!(card["page_html"]
        .as_str()
        .unwrap()
        .contains("팔팔 회원 카드"));
    assert_eq!(card["member_no"], "PP-00000001");
    let token = card["qr_content"].as_str().unwrap().to_owned();
    assert!(token.starts_with("PP1:"), "{token}");
    assert!(card["page_html"].as_str().unwrap().contains("비밀번호"));

    // A counter with the server's published key takes it with the PIN, and only with it.
    let seed = std::fs::read_to_string(&secret).unwrap();
    let issuer = redemption_token::IssuerKey::from_seed_hex(1, seed.trim()).unwrap();
    let issued: chrono::NaiveDate = card["issued"].as_str().unwrap().parse().unwrap();
    let at_counter = (issued + chrono::Days::new(1))
        .and_hms_opt(9, 0, 0)
        .unwrap()
        .and_utc();
    let keys =
        redemption_token::KeySet::new(&[issuer.published(at_counter - chrono::Duration::days(2))])
            .unwrap();
    let none = redemption_token::Revocations::default();
    let claims =
        redemption_token::verify(&token, &keys, &none, Some("802417"), at_counter).unwrap();
    assert_eq!(claims.member.to_string(), "PP-00000001");
    let wrong = redemption_token::verify(&token, &keys, &none, Some("802418"), at_counter);
    assert_eq!(wrong.map_err(|r| r.code()).err(), Some("wrong_pin"));

    // The same PIN again shows the same card; another PIN is not this card's; reprinting
    // needs no PIN.
    let again = issue_card(&w, &op_id, "802417", "802417").unwrap();
    assert_eq!(again["qr_content"], json!(token));
    let other = issue_card(&w, &op_id, "135792", "135792").unwrap_err();
    assert_eq!(other["code"], "card_exists", "{other}");
    assert!(
        other["message"]
            .as_str()
            .unwrap()
            .contains("처음 정한 비밀번호"),
        "{other}"
    );
    let shown = call(&w, "member_card", json!({ "opId": op_id })).unwrap();
    assert_eq!(
        (&shown["signed"], &shown["qr_content"]),
        (&json!(true), &json!(token))
    );

    // The server goes away: the next sign-up is confirmed all the same, and its card is
    // promised for later, not refused.
    drop(server);
    let offline = sign_up(&w, "이말순", "19500707", "010-4444-5555");
    let offline_op = offline["enrollment"]["op_id"].as_str().unwrap();
    let e = issue_card(&w, offline_op, "802417", "802417").unwrap_err();
    assert_eq!(e["code"], "card_not_yet", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("가입은 완료되었습니다"),
        "{e}"
    );
    let shown = call(&w, "member_card", json!({ "opId": offline_op })).unwrap();
    assert_eq!(shown["signed"], false);
}
