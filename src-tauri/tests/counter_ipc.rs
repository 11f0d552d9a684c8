//! The counter's redemption commands through Tauri's IPC (mock runtime, real store on disk):
//! a scan, a redemption, its receipt, a void and the day's settlement; and every refusal with
//! its code and message, and nothing recorded.

#![allow(clippy::unwrap_used)] // a test file: a failed unwrap is a failed test

use chrono::{DateTime, Duration, Utc};
use redemption_token::{CardSpec, IssuerKey, MemberNo, Refusal as TokenRefusal};
use serde_json::{json, Value};
use terminal_store::{demo_issuer_seed_hex, Store, DEMO_KEY_ID};

mod common;
use common::{call, window, Window};

const NOW: &str = "2025-12-03T15:00:00+09:00";

fn counter_config(now: &str) -> String {
    format!(
        "role = \"counter\"\nsite = \"onnuri\"\nsite_name = \"온누리약국\"\ndemo = true\n\
         fixed_now = \"{now}\"\n[counter]\nprinter = \"printer.bin\"\n"
    )
}

fn app() -> (tempfile::TempDir, Window) {
    let dir = tempfile::tempdir().unwrap();
    let w = window(dir.path(), &counter_config(NOW));
    (dir, w)
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(NOW).unwrap().to_utc()
}

fn issuer() -> IssuerKey {
    IssuerKey::from_seed_hex(DEMO_KEY_ID, demo_issuer_seed_hex()).unwrap()
}

fn dynamic_with(key: &IssuerKey, member: u64, at: DateTime<Utc>, nonce: u8) -> String {
    key.issue_dynamic(MemberNo(member), at, 120, [nonce; 8])
        .unwrap()
        .to_text()
}

fn dynamic(member: u64, nonce: u8) -> String {
    dynamic_with(&issuer(), member, now(), nonce)
}

fn card(member: u64, pin: &str) -> String {
    issuer()
        .issue_card(
            &CardSpec {
                member: MemberNo(member),
                serial: 1,
                issued_at: now() - Duration::days(30),
                expires_at: now() + Duration::days(365),
                pin_cost: 8,
                salt: [9; 8],
            },
            pin,
        )
        .unwrap()
        .to_text()
}

fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("terminal.sqlite")).unwrap()
}

/// Nothing was recorded: no hold, nothing queued.
fn nothing_recorded(dir: &tempfile::TempDir) {
    let s = store(dir);
    assert!(s.hold_counts().unwrap().is_empty());
    assert!(s.outbox_pending().unwrap().is_empty());
}

/// A demo member whose balance covers `points`.
fn member_with(dir: &tempfile::TempDir, points: u64) -> u64 {
    let s = store(dir);
    (1..=15)
        .find(|n| s.balance_of(MemberNo(*n)).unwrap().unwrap().points >= points)
        .expect("a demo member with enough points")
}

#[test]
fn scan_redeem_receipt_void_and_settlement() {
    let (dir, w) = app();
    let token = dynamic(2, 1);
    let scanned = call(
        &w,
        "scan_token",
        json!({ "token": format!("{}\r\n", token.to_lowercase()) }),
    )
    .unwrap();
    let balance = store(&dir).balance_of(MemberNo(2)).unwrap().unwrap().points;
    assert_eq!(scanned["member_no"], "PP-0002");
    assert_eq!(scanned["kind"], "dynamic");
    assert_eq!(scanned["available"], balance);
    assert_eq!(scanned["needs_pin"], false);
    assert_eq!(scanned["claims"]["member"], "PP-00000002");
    assert_eq!(scanned["claims"]["expires_at"], "2025-12-03T06:02:00Z");
    assert_eq!(scanned["limits"]["per_transaction"], 30_000);
    assert_eq!(
        scanned["member"]["week"]["days"].as_array().unwrap().len(),
        7
    );
    // Scanning records nothing: the member may still change their mind.
    nothing_recorded(&dir);

    let done = call(
        &w,
        "redeem",
        json!({ "token": scanned["token"], "amount": 1200 }),
    )
    .unwrap();
    let hold_id = done["hold_id"].as_str().unwrap().to_owned();
    assert!(
        hold_id.starts_with("H-") && hold_id.len() == 14,
        "{hold_id}"
    );
    assert_eq!(done["remaining"], balance - 1200);
    assert_eq!(done["offline"], true);
    assert_eq!(done["printed"], true);
    assert!(done["receipt_html"].as_str().unwrap().contains("1,200P"));
    // The printer got the receipt's ESC/POS bytes.
    let printed = std::fs::read(dir.path().join("printer.bin")).unwrap();
    assert!(printed.starts_with(b"\x1b@\x1c&"));
    assert!(printed.ends_with(b"\x1dVB\x00"));

    // On disk: the hold and its operation, once.
    let s = store(&dir);
    let stored = s.stored_hold(&hold_id).unwrap().unwrap();
    assert_eq!(stored.hold.amount, 1200);
    let pending = s.outbox_pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].op_id.as_str(), pending[0].kind.as_str()),
        (hold_id.as_str(), "redemption_hold")
    );

    // The same code again: refused, at the scan and at the redemption.
    let err = call(&w, "scan_token", json!({ "token": token })).unwrap_err();
    assert_eq!(
        err,
        json!({ "code": "replayed", "message": TokenRefusal::Replayed.ko() })
    );
    let err = call(&w, "redeem", json!({ "token": token, "amount": 100 })).unwrap_err();
    assert_eq!(err["code"], "replayed");

    let receipt = call(
        &w,
        "hold_receipt",
        json!({ "holdId": hold_id.to_lowercase(), "print": false }),
    )
    .unwrap();
    assert_eq!(receipt["html"], done["receipt_html"]);

    let voided = call(&w, "void_hold", json!({ "holdId": hold_id })).unwrap();
    assert_eq!(voided["amount"], 1200);
    assert_eq!(voided["available"], balance);
    let err = call(&w, "void_hold", json!({ "holdId": hold_id })).unwrap_err();
    assert_eq!(err["code"], "already_voided");
    let err = call(&w, "void_hold", json!({ "holdId": "H-000000000000" })).unwrap_err();
    assert_eq!(err["code"], "unknown_hold");

    let day = call(&w, "day_settlement", json!({})).unwrap();
    assert_eq!(day["day"], "2025-12-03");
    assert_eq!(day["redemptions"], json!({ "count": 1, "points": 1200 }));
    assert_eq!(day["voids"], json!({ "count": 1, "points": 1200 }));
    assert!(day["html"].as_str().unwrap().contains(&hold_id));
    let exported = call(&w, "export_settlement", json!({ "day": "2025-12-03" })).unwrap();
    let path = exported["path"].as_str().unwrap();
    assert!(
        path.ends_with("settlements/settlement-onnuri-2025-12-03.csv"),
        "{path}"
    );
    let csv = std::fs::read_to_string(path).unwrap();
    assert!(csv.starts_with("store,day,figure,count,points\n"), "{csv}");
    assert!(csv.contains(&format!("{hold_id},")), "{csv}");
    let s = store(&dir);
    let kinds: Vec<_> = s
        .outbox_pending()
        .unwrap()
        .into_iter()
        .map(|p| p.kind)
        .collect();
    assert_eq!(kinds, ["redemption_hold", "void"]);
}

/// Checks a refusal's code and Korean message, then that nothing was recorded.
fn refused(dir: &tempfile::TempDir, got: Result<Value, Value>, code: &str, message: &str) {
    let err = got.unwrap_err();
    assert_eq!(err, json!({ "code": code, "message": message }));
    nothing_recorded(dir);
}

#[test]
fn token_refusals_say_why_and_record_nothing() {
    let (dir, w) = app();
    let scan = |text: &str| call(&w, "scan_token", json!({ "token": text }));
    let redeem = |text: &str| call(&w, "redeem", json!({ "token": text, "amount": 500 }));

    // Tampered: one bit of the signature.
    let mut token = issuer()
        .issue_dynamic(MemberNo(1), now(), 120, [1; 8])
        .unwrap();
    token.signature[10] ^= 1;
    let tampered = token.to_text();
    refused(
        &dir,
        scan(&tampered),
        "tampered",
        &TokenRefusal::Tampered.ko(),
    );
    refused(
        &dir,
        redeem(&tampered),
        "tampered",
        &TokenRefusal::Tampered.ko(),
    );

    // Expired: issued three minutes ago, lived two.
    let old = dynamic_with(&issuer(), 1, now() - Duration::minutes(3), 2);
    let expired = TokenRefusal::Expired {
        kind: redemption_token::TokenKind::Dynamic,
        expires_at: now(),
    };
    refused(&dir, scan(&old), "expired", &expired.ko());
    refused(&dir, redeem(&old), "expired", &expired.ko());

    // The wrong key: signed with the retired key 0, or naming key 1 but signed by key 0.
    let retired = IssuerKey::from_seed(0, [0x42; 32]);
    let wrong = TokenRefusal::WrongKey { key_id: 0 }.ko();
    refused(
        &dir,
        scan(&dynamic_with(&retired, 1, now(), 3)),
        "wrong_key",
        &wrong,
    );
    let impostor = IssuerKey::from_seed(DEMO_KEY_ID, [0x42; 32]);
    refused(
        &dir,
        redeem(&dynamic_with(&impostor, 1, now(), 4)),
        "wrong_key",
        &wrong,
    );

    // A key id this counter does not know.
    let unknown = IssuerKey::from_seed(7, [7; 32]);
    refused(
        &dir,
        scan(&dynamic_with(&unknown, 1, now(), 5)),
        "unknown_key_id",
        &TokenRefusal::UnknownKeyId { key_id: 7 }.ko(),
    );

    // A revoked member (the demo's PP-0016).
    let revoked = TokenRefusal::RevokedMember {
        member: MemberNo(16),
    }
    .ko();
    refused(&dir, scan(&dynamic(16, 6)), "revoked_member", &revoked);
    refused(&dir, redeem(&dynamic(16, 6)), "revoked_member", &revoked);

    // Not a token at all (a product barcode).
    refused(
        &dir,
        scan("8801234567893"),
        "malformed",
        &TokenRefusal::Malformed { reason: "" }.ko(),
    );

    // In English when the terminal speaks English.
    call(&w, "set_language", json!({ "language": "en" })).unwrap();
    refused(
        &dir,
        scan(&tampered),
        "tampered",
        &TokenRefusal::Tampered.en(),
    );
}

#[test]
fn amount_refusals_say_why_and_record_nothing() {
    use merchant_core::redemption::Refusal as R;
    let (dir, w) = app();
    let rich = member_with(&dir, 31_000);
    let balance = store(&dir)
        .balance_of(MemberNo(rich))
        .unwrap()
        .unwrap()
        .points;
    let redeem = |amount: u64| {
        call(
            &w,
            "redeem",
            json!({ "token": dynamic(rich, 1), "amount": amount }),
        )
    };
    refused(
        &dir,
        redeem(50),
        "below_minimum",
        &R::BelowMinimum {
            amount: 50,
            min: 100,
        }
        .ko(),
    );
    // Too large: over the policy's maximum, over the member's points.
    refused(
        &dir,
        redeem(100_001),
        "above_maximum",
        &R::AboveMaximum {
            amount: 100_001,
            max: 100_000,
        }
        .ko(),
    );
    let poor = (1..=15)
        .min_by_key(|n| {
            store(&dir)
                .balance_of(MemberNo(*n))
                .unwrap()
                .unwrap()
                .points
        })
        .unwrap();
    let little = store(&dir)
        .balance_of(MemberNo(poor))
        .unwrap()
        .unwrap()
        .points;
    refused(
        &dir,
        call(
            &w,
            "redeem",
            json!({ "token": dynamic(poor, 2), "amount": little + 100 }),
        ),
        "insufficient_points",
        &R::InsufficientPoints {
            amount: little + 100,
            available: little,
        }
        .ko(),
    );
    // Over the offline limit for one redemption with an app code.
    refused(
        &dir,
        redeem(30_100),
        "over_transaction_limit",
        &R::OverTransactionLimit {
            amount: 30_100,
            limit: 30_000,
            kind: redemption_token::TokenKind::Dynamic,
        }
        .ko(),
    );
    assert!(balance >= 31_000);
}

#[test]
fn over_the_daily_limit_is_refused_and_the_earlier_holds_stand() {
    let (dir, w) = app();
    let rich = member_with(&dir, 50_000);
    for (i, amount) in [(1u8, 25_000u64), (2, 20_000)] {
        call(
            &w,
            "redeem",
            json!({ "token": dynamic(rich, i), "amount": amount }),
        )
        .unwrap();
    }
    let err = call(
        &w,
        "redeem",
        json!({ "token": dynamic(rich, 3), "amount": 6_000 }),
    )
    .unwrap_err();
    let want = merchant_core::redemption::Refusal::OverDailyLimit {
        amount: 6_000,
        used: 45_000,
        limit: 50_000,
    };
    assert_eq!(
        err,
        json!({ "code": "over_daily_limit", "message": want.ko() })
    );
    assert!(want.ko().contains("5,000원 이하"));
    let s = store(&dir);
    assert_eq!(s.hold_counts().unwrap().get("pending"), Some(&2));
    assert_eq!(s.outbox_pending().unwrap().len(), 2);
}

#[test]
fn a_stale_terminal_stops_redeeming_offline() {
    let dir = tempfile::tempdir().unwrap();
    // Seeded (and last synced) on 2025-12-03 at midnight; reopened a day and a half later.
    drop(window(dir.path(), &counter_config(NOW)));
    let later = "2025-12-04T12:00:01+09:00";
    let w = window(dir.path(), &counter_config(later));
    let at = DateTime::parse_from_rfc3339(later).unwrap().to_utc();
    let token = dynamic_with(&issuer(), 1, at, 1);
    // The scan still shows the member; the redemption is refused.
    call(&w, "scan_token", json!({ "token": token })).unwrap();
    let last_sync = store(&dir).last_good_sync().unwrap();
    refused(
        &dir,
        call(&w, "redeem", json!({ "token": token, "amount": 500 })),
        "stale_terminal",
        &merchant_core::redemption::Refusal::StaleTerminal { last_sync }.ko(),
    );
}

#[test]
fn a_card_needs_its_pin_and_locks_after_three_wrong_ones() {
    let (dir, w) = app();
    let token = card(3, "123456");
    let scanned = call(&w, "scan_token", json!({ "token": token })).unwrap();
    assert_eq!(scanned["needs_pin"], true);
    assert_eq!(scanned["claims"], Value::Null);
    assert_eq!(scanned["limits"]["per_transaction"], 10_000);
    let redeem = |pin: Option<&str>| {
        call(
            &w,
            "redeem",
            json!({ "token": token, "amount": 500, "pin": pin }),
        )
    };
    refused(
        &dir,
        redeem(None),
        "pin_required",
        &TokenRefusal::PinRequired.ko(),
    );
    let wrong = TokenRefusal::WrongPin.ko();
    // Two wrong PINs are told as such; the third locks the card for the rest of the day.
    for pin in ["000000", "111111"] {
        let err = redeem(Some(pin)).unwrap_err();
        assert_eq!(err, json!({ "code": "wrong_pin", "message": wrong }));
    }
    let locked = merchant_core::redemption::Refusal::CardLocked { failures: 3 }.ko();
    let err = redeem(Some("222222")).unwrap_err();
    assert_eq!(err, json!({ "code": "card_locked", "message": locked }));
    // Even the right PIN now, and the scan says so too.
    let err = redeem(Some("123456")).unwrap_err();
    assert_eq!(err["code"], "card_locked");
    let err = call(&w, "scan_token", json!({ "token": token })).unwrap_err();
    assert_eq!(err["code"], "card_locked");
    // No hold; the three wrong PINs wait for the server, which counts them across counters.
    let s = store(&dir);
    assert!(s.hold_counts().unwrap().is_empty());
    let kinds: Vec<String> = s
        .outbox_pending()
        .unwrap()
        .into_iter()
        .map(|p| p.kind)
        .collect();
    assert_eq!(kinds, ["wrong_pin"; 3]);
    // A good sync unlocks nothing.
    s.record_sync(
        DateTime::parse_from_rfc3339(NOW).unwrap() + Duration::seconds(1),
        None,
    )
    .unwrap();
    let err = redeem(Some("123456")).unwrap_err();
    assert_eq!(err["code"], "card_locked", "a sync does not unlock");
    // The next day the card works with its PIN, under the card's limits.
    let next = "2025-12-04T15:00:00+09:00";
    s.record_sync(
        DateTime::parse_from_rfc3339(next).unwrap() - Duration::seconds(1),
        None,
    )
    .unwrap();
    let w = window(dir.path(), &counter_config(next));
    let done = call(
        &w,
        "redeem",
        json!({ "token": token, "amount": 500, "pin": "123456" }),
    )
    .unwrap();
    assert_eq!(done["amount"], 500);
    let err = call(
        &w,
        "redeem",
        json!({ "token": token, "amount": 10_100, "pin": "123456" }),
    )
    .unwrap_err();
    assert_eq!(err["code"], "over_transaction_limit");
}

#[test]
fn the_offline_limits_are_the_ones_the_server_policy_sets() {
    use merchant_core::redemption::Refusal as R;
    let (dir, w) = app();
    let rich = member_with(&dir, 5_000);
    // The server's policy in force lowers the offline limit per transaction to 1,000 points.
    let text = include_str!("../../policies/seoul-2025-12.toml").replace(
        "offline_per_transaction = 30000",
        "offline_per_transaction = 1000",
    );
    let policy = points_core::PointsPolicy::from_toml_str(&text).unwrap();
    store(&dir)
        .apply_pull_page(
            &terminal_store::PulledPage {
                cursor: "1.test.1".into(),
                policies: Some(vec![terminal_store::CachedPolicy {
                    name: policy.name().to_owned(),
                    effective_from: policy.effective_from(),
                    effective_until: None,
                    text,
                }]),
                redemption_keys: Vec::new(),
                revoked_members: Vec::new(),
                balances: Vec::new(),
                watch_pairings: Vec::new(),
                cards: Vec::new(),
                admission: None,
                quota_leases: Vec::new(),
            },
            now().fixed_offset(),
        )
        .unwrap();
    refused(
        &dir,
        call(
            &w,
            "redeem",
            json!({ "token": dynamic(rich, 9), "amount": 1_500 }),
        ),
        "over_transaction_limit",
        &R::OverTransactionLimit {
            amount: 1_500,
            limit: 1_000,
            kind: redemption_token::TokenKind::Dynamic,
        }
        .ko(),
    );
    // Within the server's limit it goes through.
    let held = call(
        &w,
        "redeem",
        json!({ "token": dynamic(rich, 10), "amount": 1_000 }),
    )
    .unwrap();
    assert_eq!(held["amount"], 1_000, "{held}");
}
