//! The commands as the UI calls them: through Tauri's IPC, with Tauri's mock runtime (no
//! display), the real store on disk. Pins the `{code, message}` shape errors cross IPC in.

#![allow(clippy::unwrap_used)] // a test file: a failed unwrap is a failed test

use serde_json::json;

mod common;
use common::{app, call};

const KIOSK: &str = r#"
role = "kiosk"
site = "jongno-cc"
fixed_now = "2025-12-03T10:15:00+09:00"
"#;

fn consents() -> serde_json::Value {
    json!([
        { "id": "personal-data", "version": "2025-12", "agreed": true },
        { "id": "health-data", "version": "2025-12", "agreed": true },
    ])
}

#[test]
fn a_sign_up_through_ipc_is_recorded_and_queued() {
    let (_dir, w) = app(KIOSK);
    let done = call(
        &w,
        "register",
        json!({ "applicant": { "name": "김영희", "birth_date": "1950-03-01",
                               "phone": "010-1234-5678", "residency": "lives" },
                "consents": consents(), "contact": null }),
    )
    .unwrap();
    assert_eq!(done["enrollment"]["local_no"], 1);
    assert_eq!(done["enrollment"]["age"], 75);
    let info = call(&w, "terminal_info", json!({})).unwrap();
    assert_eq!(info["queued"], 1);
    assert_eq!(info["role"], "kiosk");
    assert_eq!(info["today"], "2025-12-03");
}

#[test]
fn refusals_cross_ipc_as_code_and_message_in_the_chosen_language() {
    let (_dir, w) = app(KIOSK);
    let applicant = json!({ "applicant": { "name": "이하늘", "birth_date": "20071204",
                                           "phone": "01099998888", "residency": "lives" } });
    let err = call(&w, "check_identity", applicant.clone()).unwrap_err();
    assert_eq!(
        err,
        json!({ "code": "under_age",
                "message": "만 19세 이상부터 가입할 수 있습니다 (현재 만 17세). 만 19세가 되는 날 이후에 다시 오세요." })
    );
    call(&w, "set_language", json!({ "language": "en" })).unwrap();
    let mut with_consents = applicant;
    with_consents["consents"] = consents();
    with_consents["contact"] = json!(null);
    let err = call(&w, "register", with_consents).unwrap_err();
    assert_eq!(err["code"], "under_age");
    assert_eq!(
        err["message"],
        "Members must be 19 or older (now 17). Please come back on or after the 19th birthday."
    );
    // Nothing was recorded for a refusal.
    assert_eq!(call(&w, "terminal_info", json!({})).unwrap()["queued"], 0);
}

#[test]
fn a_kiosk_cannot_look_up_members_and_says_so() {
    let (_dir, w) = app(KIOSK);
    let err = call(&w, "find_member", json!({ "memberNo": "PP-0001" })).unwrap_err();
    assert_eq!(err["code"], "wrong_role");
    assert_eq!(err.as_object().unwrap().len(), 2, "{err}");
}

#[test]
fn a_counter_finds_a_demo_member_and_refuses_an_unknown_one() {
    let (_dir, w) = app(r#"
role = "counter"
site = "onnuri"
demo = true
fixed_now = "2025-12-03T15:00:00+09:00"
"#);
    let view = call(&w, "find_member", json!({ "memberNo": " pp-0001 " })).unwrap();
    assert_eq!(view["member_no"], "PP-0001");
    assert_eq!(view["week"]["days"].as_array().unwrap().len(), 7);
    let err = call(&w, "find_member", json!({ "memberNo": "PP-9999" })).unwrap_err();
    assert_eq!(err["code"], "member_not_found");
    let err = call(
        &w,
        "register",
        json!({ "applicant": { "name": "a", "birth_date": "19500301", "phone": "01012345678",
                               "residency": "lives" },
                "consents": consents(), "contact": null }),
    )
    .unwrap_err();
    assert_eq!(err["code"], "wrong_role");
}

/// Every command `ui/src/api.ts` names is one the app answers: the UI's one list of commands
/// and the app's agree (a name the app does not know would fail only when pressed).
#[test]
fn every_command_the_ui_names_is_one_the_app_has() {
    let api = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/api.ts"),
    )
    .unwrap();
    let names: Vec<&str> = api
        .split("(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    assert!(names.len() >= 20, "{names:?}");
    let (_dir, w) = app(KIOSK);
    let unknown = |name: &str| {
        let answer = call(&w, name, json!({}));
        let unknown = answer
            .as_ref()
            .err()
            .and_then(|e| e.as_str())
            .is_some_and(|text| text.contains("not found"));
        (unknown, answer)
    };
    assert!(unknown("no_such_command").0);
    for name in names {
        // Called without its arguments: refused for them (or answered), never unknown.
        let (unknown, answer) = unknown(name);
        assert!(!unknown, "{name}: {answer:?}");
    }
}
