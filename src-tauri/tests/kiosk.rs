//! The sign-up kiosk's commands through Tauri's IPC (mock runtime), on a real store: each
//! step, each refusal with its code and exact message, the card, printing and speech.

#![allow(clippy::unwrap_used)] // a test file: a failed unwrap is a failed test

use serde_json::{json, Value};

mod common;
use common::{call, Window};

fn app(config: &str, seed: impl FnOnce(&rusqlite::Connection)) -> (tempfile::TempDir, Window) {
    let (dir, w) = common::app(config);
    seed(&rusqlite::Connection::open(dir.path().join("terminal.sqlite")).unwrap());
    (dir, w)
}

const KIOSK: &str = r#"
role = "kiosk"
site = "jongno-cc"
site_name = "종로구 보건소"
fixed_now = "2025-12-03T10:15:00+09:00"
[kiosk]
printer = "printer.bin"
speech = "/nonexistent/espeak-ng"
warn_after_s = 30
"#;

fn applicant(name: &str, birth: &str, phone: &str, residency: &str) -> Value {
    json!({ "name": name, "birth_date": birth, "phone": phone, "residency": residency })
}

fn all_required() -> Value {
    json!([
        { "id": "personal-data", "version": "2025-12", "agreed": true },
        { "id": "health-data", "version": "2025-12", "agreed": true },
        { "id": "sms-news", "version": "2025-12", "agreed": false },
    ])
}

fn register(w: &Window, who: Value) -> Result<Value, Value> {
    call(
        w,
        "register",
        json!({ "applicant": who, "consents": all_required(),
                "contact": { "guardian_phone": "010-9999-0000" } }),
    )
}

fn refusal(r: Result<Value, Value>) -> (String, String) {
    let e = r.unwrap_err();
    (
        e["code"].as_str().unwrap().to_owned(),
        e["message"].as_str().unwrap().to_owned(),
    )
}

/// 2025-12-03 is for odd birth years, 12-05 for everyone; the site holds `places` today.
fn schedule(places: u32, used: u32) -> impl FnOnce(&rusqlite::Connection) {
    move |c| {
        c.execute(
            "INSERT INTO pull_state(only_row, admission) VALUES (1, ?1)",
            [r#"{"days":{"2025-12-03":{"rule":"odd_birth_years"},"2025-12-05":{"rule":"open"}}}"#],
        )
        .unwrap();
        c.execute(
            "INSERT INTO quota_leases VALUES ('L-7', 'jongno-cc', '2025-12-03', ?1, ?2)",
            [places, used],
        )
        .unwrap();
    }
}

#[test]
fn a_senior_registers_step_by_step_and_gets_a_card() {
    let (dir, w) = app(KIOSK, |_| {});
    let setup = call(&w, "kiosk_setup", json!({})).unwrap();
    assert_eq!(setup["warn_after_s"], 30);
    assert_eq!(setup["clear_after_s"], 120);
    assert_eq!(setup["printer"], true);
    assert_eq!(setup["admission"]["schedule"], false);
    assert_eq!(setup["consents"][0]["required"], true);
    let who = applicant("김영희", "19500301", "010-1234-5678", "lives");
    let checked = call(&w, "check_identity", json!({ "applicant": who })).unwrap();
    assert_eq!(checked["masked_name"], "김*희");
    assert_eq!(checked["admitted_by"], "no_schedule");
    call(&w, "check_consent", json!({ "consents": all_required() })).unwrap();

    let done = register(&w, who.clone()).unwrap();
    assert_eq!(done["enrollment"]["local_no"], 1);
    assert_eq!(done["enrollment"]["name"], "김*희");
    assert_eq!(done["admitted_by"], "no_schedule");
    let op_id = done["enrollment"]["op_id"].as_str().unwrap().to_owned();
    assert_eq!(done["card"]["qr_content"], op_id.as_str());
    assert!(done["card"]["qr_svg"]
        .as_str()
        .unwrap()
        .starts_with("<?xml"));
    assert!(done["card"]["page_html"]
        .as_str()
        .unwrap()
        .contains("김*희"));
    let info = call(&w, "terminal_info", json!({})).unwrap();
    assert_eq!(info["queued"], 1);

    // Printed: ESC/POS bytes appended to the configured file, with the QR data.
    let printed = call(&w, "print_card", json!({ "opId": op_id })).unwrap();
    let bytes = std::fs::read(dir.path().join("printer.bin")).unwrap();
    assert_eq!(printed["bytes"], bytes.len());
    assert!(bytes.starts_with(b"\x1b@\x1c&"));
    assert!(bytes.windows(op_id.len()).any(|w| w == op_id.as_bytes()));

    // Listed with the masked name; the same person again is already a member.
    let today = call(&w, "kiosk_today", json!({})).unwrap();
    assert_eq!(today[0]["name"], "김*희");
    assert_eq!(
        refusal(call(
            &w,
            "check_identity",
            json!({ "applicant": applicant("김 영희", "1950-03-01", "01012345678", "works") })
        )),
        (
            "already_member".to_owned(),
            "이미 가입된 분입니다 (2025년 12월 3일 접수번호 0001). 다시 가입하지 않아도 됩니다. 회원 카드를 잃어버렸다면 직원에게 말씀해 주세요.".to_owned()
        )
    );
    assert_eq!(refusal(register(&w, who)).0, "already_member");
    // The speech program is missing: no error, just not spoken.
    let spoken = call(
        &w,
        "speak",
        json!({ "text": "안녕하세요", "volume": 100, "speed": 140 }),
    )
    .unwrap();
    assert_eq!(spoken["spoken"], false);
}

#[test]
fn refusals_carry_their_code_and_exact_message() {
    let (_dir, w) = app(KIOSK, |_| {});
    let check = |who: Value| refusal(call(&w, "check_identity", json!({ "applicant": who })));
    assert_eq!(
        check(applicant("이하늘", "20071204", "01011112222", "lives")),
        (
            "under_age".to_owned(),
            "만 19세 이상부터 가입할 수 있습니다 (현재 만 17세). 만 19세가 되는 날 이후에 다시 오세요.".to_owned()
        )
    );
    assert_eq!(
        check(applicant("박서연", "19600101", "01011112222", "outside")),
        (
            "outside_seoul".to_owned(),
            "서울에 살거나, 서울에서 일하거나 공부하는 분만 가입할 수 있습니다. 재직·재학 증명서가 있으면 직원에게 보여 주세요.".to_owned()
        )
    );
    let none = call(
        &w,
        "register",
        json!({ "applicant": applicant("김영희", "19500301", "01012345678", "lives"),
                "consents": [{ "id": "personal-data", "version": "2025-12", "agreed": true }] }),
    );
    assert_eq!(
        refusal(none),
        (
            "consent_missing".to_owned(),
            "필수 동의 항목에 동의해야 가입할 수 있습니다: 건강정보(걸음·심박) 수집. 내용을 듣거나 읽은 뒤 '동의'를 눌러 주세요.".to_owned()
        )
    );
    let outdated = call(
        &w,
        "check_consent",
        json!({ "consents": [{ "id": "personal-data", "version": "2025-03", "agreed": true }] }),
    );
    assert_eq!(refusal(outdated).0, "consent_outdated");
    let bad_guardian = call(
        &w,
        "register",
        json!({ "applicant": applicant("김영희", "19500301", "01012345678", "lives"),
                "consents": all_required(), "contact": { "guardian_phone": "02-123" } }),
    );
    assert_eq!(refusal(bad_guardian).0, "phone_invalid");
    let info = call(&w, "terminal_info", json!({})).unwrap();
    assert_eq!(info["queued"], 0, "a refusal records nothing");
}

#[test]
fn the_schedule_and_lease_admit_count_places_and_send_others_to_their_day() {
    let (_dir, w) = app(KIOSK, schedule(2, 0));
    let setup = call(&w, "kiosk_setup", json!({})).unwrap();
    assert_eq!(setup["admission"]["schedule"], true);
    assert_eq!(setup["admission"]["remaining"], 2);
    // Born in an even year: not today; told the day, and given a numbered ticket for it.
    let even = applicant("최민수", "19500505", "01022223333", "lives");
    assert_eq!(
        refusal(call(&w, "check_identity", json!({ "applicant": even }))),
        (
            "not_today".to_owned(),
            "오늘은 해당 출생연도(나이)의 가입일이 아닙니다. 2025년 12월 5일(금)에 다시 오세요. 번호표를 받으실 수 있습니다.".to_owned()
        )
    );
    let ticket = call(&w, "issue_ticket", json!({ "applicant": even })).unwrap();
    assert_eq!(ticket["number"], 1);
    assert_eq!(ticket["day"], "2025-12-05");
    assert_eq!(
        ticket["message"],
        "번호표 1번: 2025년 12월 5일(금) 이곳에서 가입하실 수 있습니다. 번호표와 신분증을 가져오세요."
    );
    // Odd years: the two places, then used up.
    let first = register(&w, applicant("김영희", "19510301", "01012345678", "lives")).unwrap();
    assert_eq!(
        (first["place"].clone(), first["admitted_by"].clone()),
        (json!(1), json!("lease"))
    );
    let second = register(&w, applicant("이영수", "19530301", "01012345679", "lives")).unwrap();
    assert_eq!(second["place"], 2);
    let third = applicant("박영자", "19550301", "01012345670", "lives");
    assert_eq!(
        refusal(call(&w, "check_identity", json!({ "applicant": third }))),
        (
            "quota_used_up".to_owned(),
            "오늘 이곳의 가입 인원이 모두 찼습니다. 2025년 12월 5일(금)에 다시 오세요. 번호표를 받으실 수 있습니다.".to_owned()
        )
    );
    assert_eq!(refusal(register(&w, third)).0, "quota_used_up");
    let setup = call(&w, "kiosk_setup", json!({})).unwrap();
    assert_eq!(setup["admission"]["remaining"], 0);
}

#[test]
fn no_printer_configured_is_said_not_crashed() {
    let (_dir, w) = app(
        "role = \"kiosk\"\nsite = \"x\"\nfixed_now = \"2025-12-03T10:15:00+09:00\"\n",
        |_| {},
    );
    let done = register(&w, applicant("김영희", "19500301", "01012345678", "lives")).unwrap();
    assert_eq!(done["card"]["printer"], false);
    let (code, message) = refusal(call(
        &w,
        "print_card",
        json!({ "opId": done["enrollment"]["op_id"] }),
    ));
    assert_eq!(code, "printer_failed");
    assert!(message.contains("인쇄용 화면"), "{message}");
}
