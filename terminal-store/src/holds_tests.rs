use chrono::{DateTime, Utc};
use merchant_core::redemption::{Connectivity, HoldId, OfflineLimits, Outcome, Refusal};
use redemption_token::{verify, IssuerKey, MemberNo};

use super::*;
use crate::{demo_issuer_seed_hex, seed_demo, FinalAnswer, DEMO_KEY_ID};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// A counter's store on the demo data of 2025-12-03 (balances as of midnight, synced then).
fn demo_store(dir: &tempfile::TempDir) -> Store {
    let mut s = Store::open(&dir.path().join("counter.sqlite")).unwrap();
    seed_demo(&mut s, "2025-12-03".parse().unwrap(), 1, 9988).unwrap();
    s
}

fn issuer() -> IssuerKey {
    IssuerKey::from_seed_hex(DEMO_KEY_ID, demo_issuer_seed_hex()).unwrap()
}

/// Scans a dynamic token for `member` issued at `now` as the counter does: verify with the
/// stored keys and revocations, then admit to the stored seen tokens.
fn scan(s: &Store, text: &str, now: DateTime<Utc>) -> Result<Claims, redemption_token::Refusal> {
    let keys = s.redemption_key_set().unwrap();
    let token = redemption_token::Token::parse(text)?;
    let revocations = s.revocations_for(token.member).unwrap();
    let claims = verify(text, &keys, &revocations, None, now)?;
    s.seen_tokens(4096, now).unwrap().admit(&claims, now)?;
    Ok(claims)
}

fn dynamic(member: u64, now: DateTime<Utc>, nonce: u8) -> String {
    issuer()
        .issue_dynamic(MemberNo(member), now, 120, [nonce; 8])
        .unwrap()
        .to_text()
}

#[test]
fn the_demo_data_gives_keys_balances_and_revocations() {
    let dir = tempfile::tempdir().unwrap();
    let s = demo_store(&dir);
    assert_eq!(s.redemption_key_set().unwrap().len(), 2);
    let b = s.balance_of(MemberNo(1)).unwrap().unwrap();
    assert_eq!(b.as_of, at("2025-12-02T15:00:00Z"));
    assert!(b.points >= 3_000);
    assert!(s.balance_of(MemberNo(99)).unwrap().is_none());
    assert!(s.member_revoked(MemberNo(16)).unwrap());
    assert!(!s.member_revoked(MemberNo(1)).unwrap());
    assert_eq!(
        s.member_by_number(MemberNo(2)).unwrap().unwrap().member_no,
        "PP-0002"
    );
    assert_eq!(
        s.last_good_sync().unwrap(),
        Some(at("2025-12-02T15:00:00Z"))
    );
}

#[test]
fn a_restart_restores_the_book_and_the_same_token_is_refused_again() {
    let dir = tempfile::tempdir().unwrap();
    let now = at("2025-12-03T06:00:00Z");
    let text = dynamic(1, now, 7);
    let (balance, hold) = {
        let mut s = demo_store(&dir);
        let claims = scan(&s, &text, now).unwrap();
        let limits = OfflineLimits::example();
        let mut book = s.redemption_book(limits, Some(claims.member), now).unwrap();
        let balance = book.available(claims.member).unwrap();
        let hold = book
            .request_hold(
                HoldId("H-1".into()),
                &claims,
                1_500,
                now,
                Connectivity::Offline,
            )
            .unwrap();
        s.record_hold(&hold, "T-000002", &text, Some(claims.expires_at))
            .unwrap();
        (balance, hold)
    };
    // A new process: the same file.
    let later = at("2025-12-03T06:00:30Z");
    let s = Store::open(&dir.path().join("counter.sqlite")).unwrap();
    let err = scan(&s, &text, later).unwrap_err();
    assert_eq!(err, redemption_token::Refusal::Replayed);
    let book = s
        .redemption_book(OfflineLimits::example(), Some(MemberNo(1)), later)
        .unwrap();
    assert_eq!(book.available(MemberNo(1)), Some(balance - 1_500));
    assert_eq!(book.outstanding(), 1_500);
    assert_eq!(book.stored_holds(), 1);
    let stored = s.stored_hold("H-1").unwrap().unwrap();
    assert_eq!(stored.hold, hold);
    assert_eq!(stored.outcome, None);
    // Queued once for the server, in its format.
    let pending = s.outbox_pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].kind, "redemption_hold");
    let payload: serde_json::Value = serde_json::from_str(&pending[0].payload).unwrap();
    assert_eq!(
        payload,
        serde_json::json!({
            "member_no": "PP-00000001",
            "amount": 1500,
            "token": text,
            "held_at": "2025-12-03T06:00:00Z",
            "terminal": "T-000002",
        })
    );
    // Even if the book were asked (it would be after the token expired), the store refuses
    // a second hold with the same token and writes nothing.
    let mut s = s;
    let mut again = hold.clone();
    again.id = HoldId("H-2".into());
    assert!(s.record_hold(&again, "T-000002", &text, None).is_err());
    assert_eq!(s.outbox_pending().unwrap().len(), 1);
    assert!(s.stored_hold("H-2").unwrap().is_none());
}

#[test]
fn voids_and_the_servers_answers_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let now = at("2025-12-03T06:00:00Z");
    let path = dir.path().join("counter.sqlite");
    {
        let mut s = demo_store(&dir);
        for (i, amount) in [(1u8, 1_000u64), (2, 2_000), (3, 3_000)] {
            let text = dynamic(2, now, i);
            let claims = scan(&s, &text, now).unwrap();
            let mut book = s
                .redemption_book(OfflineLimits::example(), Some(claims.member), now)
                .unwrap();
            let hold = book
                .request_hold(
                    HoldId(format!("H-{i}")),
                    &claims,
                    amount,
                    now,
                    Connectivity::Offline,
                )
                .unwrap();
            s.record_hold(&hold, "T-1", &text, Some(claims.expires_at))
                .unwrap();
        }
        let mut book = s
            .redemption_book(OfflineLimits::example(), Some(MemberNo(2)), now)
            .unwrap();
        let void = book.void(&HoldId("H-2".into()), now).unwrap();
        s.record_void(&void, "V-2").unwrap();
        // A second void of the same hold is refused by the store too.
        assert!(s.record_void(&void, "V-3").is_err());
        let answers = [
            FinalAnswer::Done {
                op_id: "H-1".into(),
                duplicate: false,
                member_number: None,
            },
            FinalAnswer::Rejected {
                op_id: "H-3".into(),
                reason: "insufficient_points".into(),
                message: "…".into(),
            },
        ];
        s.settle(&answers, now.fixed_offset()).unwrap();
        // A retried answer changes nothing: the first is final.
        s.settle(
            &[FinalAnswer::Done {
                op_id: "H-3".into(),
                duplicate: true,
                member_number: None,
            }],
            now.fixed_offset(),
        )
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    let day = s.holds_on("2025-12-03".parse().unwrap()).unwrap();
    let summary: Vec<_> = day
        .iter()
        .map(|h| (h.hold.id.0.as_str(), h.outcome.clone(), h.void.is_some()))
        .collect();
    assert_eq!(
        summary,
        [
            ("H-1", Some(Outcome::Posted), false),
            ("H-2", None, true),
            (
                "H-3",
                Some(Outcome::Rejected {
                    reason: "insufficient_points".into()
                }),
                false
            ),
        ]
    );
    let book = s
        .redemption_book(OfflineLimits::example(), Some(MemberNo(2)), now)
        .unwrap();
    // Posted counts against the balance, voided and rejected do not; nothing is outstanding
    // but nothing either: H-1 posted, H-2 voided, H-3 rejected.
    let balance = s.balance_of(MemberNo(2)).unwrap().unwrap().points;
    assert_eq!(book.available(MemberNo(2)), Some(balance - 1_000));
    assert_eq!(book.outstanding(), 0);
    let mut book = book;
    assert_eq!(
        book.void(&HoldId("H-2".into()), now).unwrap_err(),
        Refusal::AlreadyVoided {
            hold_id: HoldId("H-2".into())
        }
    );
    let kinds: Vec<_> = s
        .outbox_entries(false)
        .unwrap()
        .into_iter()
        .map(|e| (e.op_id, e.kind))
        .collect();
    assert_eq!(
        kinds.last().unwrap(),
        &("V-2".to_owned(), "void".to_owned())
    );
    let pending = s.outbox_pending().unwrap();
    let void = pending.iter().find(|p| p.op_id == "V-2").unwrap();
    let hold = pending.iter().find(|p| p.op_id == "H-2").unwrap();
    // Numbered in the order made; the terminal's sequence is the last number given.
    assert!(hold.seq < void.seq, "{pending:?}");
    assert_eq!(s.sequence().unwrap(), void.seq);
    let payload: serde_json::Value = serde_json::from_str(&void.payload).unwrap();
    assert_eq!(
        payload,
        serde_json::json!({ "hold_op_id": "H-2", "voided_at": "2025-12-03T06:00:00Z" })
    );
    let counts = s.hold_counts().unwrap();
    assert_eq!(counts.get("posted"), Some(&1));
    assert_eq!(counts.get("voided"), Some(&1));
    assert_eq!(counts.get("rejected"), Some(&1));
}

#[test]
fn wrong_pins_lock_a_card_for_the_day_here_and_as_the_server_says() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = demo_store(&dir);
    // 15:00 in Seoul.
    let now = at("2025-12-03T06:00:00Z");
    for i in 0..3 {
        assert_eq!(s.card_lock(MemberNo(5), 1, now).unwrap().failures, i);
        s.record_pin_failure(MemberNo(5), 1, now, &format!("pin-{i}"))
            .unwrap();
    }
    assert_eq!(s.card_lock(MemberNo(5), 1, now).unwrap().failures, 3);
    assert_eq!(s.card_lock(MemberNo(5), 2, now).unwrap().failures, 0);
    // A sync resets nothing; the next day in Seoul (00:00 is 15:00 UTC) starts afresh.
    s.record_sync(at("2025-12-03T06:05:00Z").fixed_offset(), None)
        .unwrap();
    assert_eq!(s.card_lock(MemberNo(5), 1, now).unwrap().failures, 3);
    let tomorrow = at("2025-12-03T15:00:00Z");
    assert_eq!(s.card_lock(MemberNo(5), 1, tomorrow).unwrap().failures, 0);
    // Each wrong PIN is queued for the server, which counts them across counters.
    let pending = s.outbox_pending().unwrap();
    let kinds: Vec<&str> = pending.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, ["wrong_pin"; 3]);
    let sent: serde_json::Value = serde_json::from_str(&pending[0].payload).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({ "member_number": "PP-00000005", "serial": 1,
                            "at": "2025-12-03T06:00:00+00:00" })
    );
    // Locked at other counters: the server says so by pull, and this counter refuses it too,
    // for that day only; a revoked card is in the member's revocations.
    s.apply_pull_page(
        &crate::PulledPage {
            cursor: "1.x.9".to_owned(),
            cards: vec![
                crate::PulledCard {
                    member: MemberNo(5),
                    serial: 2,
                    revoked: false,
                    locked_on: Some("2025-12-04".parse().unwrap()),
                },
                crate::PulledCard {
                    member: MemberNo(5),
                    serial: 3,
                    revoked: true,
                    locked_on: None,
                },
            ],
            ..crate::PulledPage::default()
        },
        tomorrow.fixed_offset(),
    )
    .unwrap();
    assert_eq!(s.card_lock(MemberNo(5), 2, tomorrow).unwrap().failures, 3);
    assert_eq!(s.card_lock(MemberNo(5), 2, now).unwrap().failures, 0);
    let revoked = s.revocations_for(MemberNo(5)).unwrap();
    assert_eq!(
        revoked.cards.iter().map(|c| c.serial).collect::<Vec<_>>(),
        [3]
    );
}

#[test]
fn a_card_hold_carries_the_card_until_the_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = demo_store(&dir);
    let hold = Hold {
        id: HoldId("H-9".into()),
        member: MemberNo(3),
        amount: 500,
        kind: TokenKind::Card,
        token_id: None,
        card_serial: Some(2),
        created_at: at("2025-12-03T06:00:00Z"),
        offline: true,
        remaining: 100,
    };
    s.record_hold(&hold, "T-1", "PP1:CARD", None).unwrap();
    let mut second = hold.clone();
    second.id = HoldId("H-10".into());
    s.record_hold(&second, "T-1", "PP1:CARD", None).unwrap();
    let tokens = |s: &Store| -> Vec<Option<String>> {
        let rows: Vec<String> = s
            .conn
            .prepare("SELECT payload FROM outbox ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        rows.iter()
            .map(|p| {
                serde_json::from_str::<serde_json::Value>(p).unwrap()["token"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    };
    assert_eq!(
        tokens(&s),
        [Some("PP1:CARD".into()), Some("PP1:CARD".into())]
    );
    assert_eq!(s.stored_hold("H-10").unwrap().unwrap().hold, second);
    // Answered, the card's token is no longer kept: a copy of the database cannot spend it.
    let answer = crate::FinalAnswer::Done {
        op_id: "H-9".into(),
        duplicate: false,
        member_number: None,
    };
    s.settle(&[answer], at("2025-12-03T06:01:00Z").fixed_offset())
        .unwrap();
    assert_eq!(tokens(&s), [None, Some("PP1:CARD".into())]);
}
