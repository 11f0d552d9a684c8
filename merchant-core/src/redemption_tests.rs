//! The redemption rules as scripts of counter events, each line answered by the book, and
//! property tests of the book's invariants.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use expect_test::{expect, Expect};
use proptest::prelude::*;
use redemption_token::{Claims, MemberNo, TokenId, TokenKind};

use super::*;

/// `12-03T10:00` (Asia/Seoul, 2025) as UTC.
fn kst(at: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("2025-{at}:00+09:00"))
        .unwrap()
        .with_timezone(&Utc)
}

/// A verified token: `dyn7` (dynamic, nonce 7) or `card1` (card serial 1), issued at `at`
/// unless it says `@12-03T09:00`.
fn claims(token: &str, member: u64, at: DateTime<Utc>) -> Claims {
    let (name, issued_at) = match token.split_once('@') {
        Some((name, when)) => (name, kst(when)),
        None => (token, at),
    };
    if let Some(nonce) = name.strip_prefix("dyn") {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&member.to_be_bytes());
        id[8..].copy_from_slice(&nonce.parse::<u64>().unwrap().to_be_bytes());
        Claims {
            kind: TokenKind::Dynamic,
            member: MemberNo(member),
            key_id: 1,
            issued_at,
            expires_at: issued_at + Duration::seconds(120),
            token_id: Some(TokenId(id)),
            card_serial: None,
        }
    } else {
        Claims {
            kind: TokenKind::Card,
            member: MemberNo(member),
            key_id: 1,
            issued_at,
            expires_at: kst("12-31T23:59") + Duration::days(365 * 3),
            token_id: None,
            card_serial: Some(name.strip_prefix("card").unwrap().parse().unwrap()),
        }
    }
}

/// Runs a script against a book under [`OfflineLimits::example`] and writes each answer:
///
/// - `sync AT`: a good sync at AT
/// - `balance MEMBER POINTS AT`: the server's balance
/// - `revoke MEMBER`
/// - `hold ID TOKEN MEMBER AMOUNT AT online|offline`
/// - `void ID AT`
/// - `posted ID` / `rejected ID REASON`: the server's outcome
/// - `state MEMBER`: available points, outstanding, stored holds
fn run(script: &str) -> String {
    let mut book = RedemptionBook::new(OfflineLimits::example());
    let mut out = String::new();
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let answer = match w[0] {
            "sync" => {
                book.synced(kst(w[1]));
                continue;
            }
            "balance" => {
                let balance = Balance {
                    points: w[2].parse().unwrap(),
                    as_of: kst(w[3]),
                };
                book.set_balance(MemberNo(w[1].parse().unwrap()), balance);
                continue;
            }
            "revoke" => {
                book.set_revoked(BTreeSet::from([MemberNo(w[1].parse().unwrap())]));
                continue;
            }
            "posted" => {
                book.settle(&HoldId(w[1].into()), Outcome::Posted);
                continue;
            }
            "rejected" => {
                let reason = w[2].into();
                book.settle(&HoldId(w[1].into()), Outcome::Rejected { reason });
                continue;
            }
            "hold" => {
                let at = kst(w[5]);
                let connectivity = match w[6] {
                    "online" => Connectivity::Online,
                    _ => Connectivity::Offline,
                };
                let claims = claims(w[2], w[3].parse().unwrap(), at);
                match book.request_hold(
                    HoldId(w[1].into()),
                    &claims,
                    w[4].parse().unwrap(),
                    at,
                    connectivity,
                ) {
                    Ok(h) => format!("held {} remaining {}", h.amount, h.remaining),
                    Err(r) => format!("refused {}", r.code()),
                }
            }
            "void" => match book.void(&HoldId(w[1].into()), kst(w[2])) {
                Ok(v) => format!("voided {}", v.amount),
                Err(r) => format!("refused {}", r.code()),
            },
            "state" => {
                let available = book.available(MemberNo(w[1].parse().unwrap()));
                format!(
                    "available {available:?} outstanding {} stored {}",
                    book.outstanding(),
                    book.stored_holds()
                )
            }
            other => panic!("unknown step {other}"),
        };
        writeln!(out, "{line:<52} => {answer}").unwrap();
    }
    out
}

fn check(script: &str, expect: Expect) {
    expect.assert_eq(&run(script));
}

#[test]
fn available_points_are_the_balance_minus_holds_since() {
    check(
        "sync 12-03T09:00
         balance 42 50000 12-03T09:00
         hold a dyn1 42 5000 12-03T10:00 offline
         state 42
         balance 42 45000 12-03T10:30
         state 42
         hold b dyn2 42 1000 12-03T11:00 online
         state 42
         posted b
         state 42",
        expect![[r#"
            hold a dyn1 42 5000 12-03T10:00 offline              => held 5000 remaining 45000
            state 42                                             => available Some(45000) outstanding 5000 stored 1
            state 42                                             => available Some(45000) outstanding 5000 stored 1
            hold b dyn2 42 1000 12-03T11:00 online               => held 1000 remaining 44000
            state 42                                             => available Some(44000) outstanding 5000 stored 1
            state 42                                             => available Some(44000) outstanding 5000 stored 1
        "#]],
    );
}

#[test]
fn amounts_between_the_policy_minimum_and_maximum() {
    check(
        "sync 12-03T09:00
         balance 42 500000 12-03T09:00
         hold a dyn1 42 99 12-03T10:00 online
         hold b dyn2 42 100 12-03T10:00 online
         hold c dyn3 42 100001 12-03T10:00 online
         hold d dyn4 42 100000 12-03T10:00 online
         hold e dyn5 42 0 12-03T10:00 offline",
        expect![[r#"
            hold a dyn1 42 99 12-03T10:00 online                 => refused below_minimum
            hold b dyn2 42 100 12-03T10:00 online                => held 100 remaining 499900
            hold c dyn3 42 100001 12-03T10:00 online             => refused above_maximum
            hold d dyn4 42 100000 12-03T10:00 online             => held 100000 remaining 399900
            hold e dyn5 42 0 12-03T10:00 offline                 => refused below_minimum
        "#]],
    );
}

#[test]
fn insufficient_points_and_no_balance() {
    check(
        "sync 12-03T09:00
         balance 42 3000 12-03T09:00
         hold a dyn1 42 3001 12-03T10:00 online
         hold b dyn2 42 3000 12-03T10:00 offline
         hold c dyn3 42 100 12-03T10:01 offline
         void b 12-03T10:02
         hold d dyn4 42 3000 12-03T10:03 offline
         hold e dyn5 7 100 12-03T10:04 online",
        expect![[r#"
            hold a dyn1 42 3001 12-03T10:00 online               => refused insufficient_points
            hold b dyn2 42 3000 12-03T10:00 offline              => held 3000 remaining 0
            hold c dyn3 42 100 12-03T10:01 offline               => refused insufficient_points
            void b 12-03T10:02                                   => voided 3000
            hold d dyn4 42 3000 12-03T10:03 offline              => held 3000 remaining 0
            hold e dyn5 7 100 12-03T10:04 online                 => refused no_balance
        "#]],
    );
}

#[test]
fn offline_per_transaction_limit_is_lower_for_cards() {
    check(
        "sync 12-03T09:00
         balance 42 500000 12-03T09:00
         hold a dyn1 42 30000 12-03T10:00 offline
         hold b dyn2 42 30001 12-03T10:00 offline
         hold c card1 42 10001 12-03T10:00 offline
         hold d card1 42 10000 12-03T10:00 offline
         hold e card1 42 10001 12-03T10:00 online",
        expect![[r#"
            hold a dyn1 42 30000 12-03T10:00 offline             => held 30000 remaining 470000
            hold b dyn2 42 30001 12-03T10:00 offline             => refused over_transaction_limit
            hold c card1 42 10001 12-03T10:00 offline            => refused over_transaction_limit
            hold d card1 42 10000 12-03T10:00 offline            => held 10000 remaining 460000
            hold e card1 42 10001 12-03T10:00 online             => held 10001 remaining 449999
        "#]],
    );
}

#[test]
fn offline_member_daily_limit_by_kind_and_seoul_day() {
    // Card: 20,000 a day; all kinds: 50,000. 12-03T23:59 and 12-04T00:00 are different days
    // in Seoul (14:59 and 15:00 UTC).
    check(
        "sync 12-03T09:00
         balance 42 500000 12-03T09:00
         hold a card1 42 10000 12-03T10:00 offline
         hold b card1 42 10000 12-03T11:00 offline
         hold c card1 42 100 12-03T12:00 offline
         hold d dyn1 42 30000 12-03T12:00 offline
         hold e dyn2 42 101 12-03T12:01 offline
         hold f dyn3 42 100 12-03T12:02 online
         void a 12-03T13:00
         hold g card1 42 10000 12-03T23:59 offline
         sync 12-04T00:00
         hold h card1 42 10000 12-04T00:00 offline
         hold i card1 42 10000 12-04T00:01 offline",
        expect![[r#"
            hold a card1 42 10000 12-03T10:00 offline            => held 10000 remaining 490000
            hold b card1 42 10000 12-03T11:00 offline            => held 10000 remaining 480000
            hold c card1 42 100 12-03T12:00 offline              => refused over_daily_limit
            hold d dyn1 42 30000 12-03T12:00 offline             => held 30000 remaining 450000
            hold e dyn2 42 101 12-03T12:01 offline               => refused over_daily_limit
            hold f dyn3 42 100 12-03T12:02 online                => held 100 remaining 449900
            void a 12-03T13:00                                   => voided 10000
            hold g card1 42 10000 12-03T23:59 offline            => held 10000 remaining 449900
            hold h card1 42 10000 12-04T00:00 offline            => held 10000 remaining 439900
            hold i card1 42 10000 12-04T00:01 offline            => held 10000 remaining 429900
        "#]],
    );
}

#[test]
fn terminal_outstanding_and_stored_holds_until_the_server_answers() {
    // 300,000 outstanding at most: ten members at 30,000 fill it exactly.
    let mut script = String::from("sync 12-03T09:00\n");
    for m in 1..=11 {
        writeln!(script, "balance {m} 100000 12-03T09:00").unwrap();
    }
    for m in 1..=10 {
        writeln!(script, "hold h{m} dyn{m} {m} 30000 12-03T10:{m:02} offline").unwrap();
    }
    script.push_str(
        "hold x dyn99 11 100 12-03T11:00 offline
         hold y dyn98 11 100 12-03T11:00 online
         posted h1
         rejected h2 overspent
         state 2
         hold z dyn97 11 30000 12-03T11:01 offline
         hold zz dyn96 11 30001 12-03T11:01 offline",
    );
    let out = run(&script);
    let tail: Vec<&str> = out.lines().skip(9).collect();
    expect![[r#"
        hold h10 dyn10 10 30000 12-03T10:10 offline          => held 30000 remaining 70000
        hold x dyn99 11 100 12-03T11:00 offline              => refused over_terminal_outstanding
        hold y dyn98 11 100 12-03T11:00 online               => held 100 remaining 99900
        state 2                                              => available Some(100000) outstanding 240000 stored 8
        hold z dyn97 11 30000 12-03T11:01 offline            => held 30000 remaining 69900
        hold zz dyn96 11 30001 12-03T11:01 offline           => refused over_transaction_limit"#]]
    .assert_eq(&tail.join("\n"));

    // 50 stored holds at most, whatever their points.
    let mut script = String::from("sync 12-03T09:00\nbalance 1 100000 12-03T09:00\n");
    for i in 0..51 {
        writeln!(script, "hold h{i} card1 1 100 12-03T10:{:02} offline", i).unwrap();
    }
    let out = run(&script);
    expect![[r#"
        hold h49 card1 1 100 12-03T10:49 offline             => held 100 remaining 95000
        hold h50 card1 1 100 12-03T10:50 offline             => refused too_many_stored_holds"#]]
    .assert_eq(&out.lines().skip(49).collect::<Vec<_>>().join("\n"));
}

#[test]
fn stale_terminal_stops_offline_redemption_only() {
    // 24 hours since the last good sync at most.
    check(
        "balance 42 50000 12-03T09:00
         hold a dyn1 42 100 12-03T10:00 offline
         sync 12-03T09:00
         hold b dyn2 42 100 12-04T09:00 offline
         hold c dyn3 42 100 12-04T09:01 offline
         hold d dyn4 42 100 12-04T09:01 online",
        expect![[r#"
            hold a dyn1 42 100 12-03T10:00 offline               => refused stale_terminal
            hold b dyn2 42 100 12-04T09:00 offline               => held 100 remaining 49900
            hold c dyn3 42 100 12-04T09:01 offline               => refused stale_terminal
            hold d dyn4 42 100 12-04T09:01 online                => held 100 remaining 49800
        "#]],
    );
}

#[test]
fn tokens_revoked_expired_or_used() {
    check(
        "sync 12-03T09:00
         balance 42 50000 12-03T09:00
         balance 43 50000 12-03T09:00
         hold a dyn1@12-03T09:58 42 100 12-03T10:00 online
         hold b dyn2@12-03T09:58 42 100 12-03T09:59 online
         hold c dyn1 42 5000000 12-03T10:01 offline
         hold d dyn1 42 100 12-03T10:01 offline
         hold e dyn1 42 100 12-03T10:01 offline
         hold f card1 42 100 12-03T10:02 offline
         hold g card1 42 100 12-03T10:03 offline
         revoke 43
         hold h dyn5 43 100 12-03T10:04 online",
        expect![[r#"
            hold a dyn1@12-03T09:58 42 100 12-03T10:00 online    => refused token_expired
            hold b dyn2@12-03T09:58 42 100 12-03T09:59 online    => held 100 remaining 49900
            hold c dyn1 42 5000000 12-03T10:01 offline           => refused above_maximum
            hold d dyn1 42 100 12-03T10:01 offline               => held 100 remaining 49800
            hold e dyn1 42 100 12-03T10:01 offline               => refused token_used
            hold f card1 42 100 12-03T10:02 offline              => held 100 remaining 49700
            hold g card1 42 100 12-03T10:03 offline              => held 100 remaining 49600
            hold h dyn5 43 100 12-03T10:04 online                => refused revoked_member
        "#]],
    );
}

#[test]
fn voids_same_seoul_day_once() {
    check(
        "sync 12-03T09:00
         balance 42 50000 12-03T09:00
         hold a dyn1 42 5000 12-03T23:50 offline
         hold b dyn2 42 5000 12-03T23:51 offline
         void a 12-03T23:59
         void a 12-03T23:59
         void b 12-04T00:00
         void nope 12-03T23:59
         state 42",
        expect![[r#"
            hold a dyn1 42 5000 12-03T23:50 offline              => held 5000 remaining 45000
            hold b dyn2 42 5000 12-03T23:51 offline              => held 5000 remaining 40000
            void a 12-03T23:59                                   => voided 5000
            void a 12-03T23:59                                   => refused already_voided
            void b 12-04T00:00                                   => refused void_other_day
            void nope 12-03T23:59                                => refused unknown_hold
            state 42                                             => available Some(45000) outstanding 5000 stored 1
        "#]],
    );
}

#[test]
fn every_refusal_has_a_code_and_both_languages() {
    let member = MemberNo(42);
    let day = kst("12-03T10:00").date_naive();
    let all = [
        Refusal::RevokedMember { member },
        Refusal::TokenExpired {
            expires_at: kst("12-03T10:00"),
        },
        Refusal::TokenUsed,
        Refusal::StaleTerminal { last_sync: None },
        Refusal::BelowMinimum {
            amount: 1,
            min: 100,
        },
        Refusal::AboveMaximum {
            amount: 1,
            max: 100_000,
        },
        Refusal::NoBalance { member },
        Refusal::InsufficientPoints {
            amount: 10,
            available: 1,
        },
        Refusal::OverTransactionLimit {
            amount: 1,
            limit: 10_000,
            kind: TokenKind::Card,
        },
        Refusal::OverDailyLimit {
            amount: 1,
            used: 15_000,
            limit: 20_000,
        },
        Refusal::OverTerminalOutstanding {
            amount: 1,
            outstanding: 1,
            limit: 1,
        },
        Refusal::TooManyStoredHolds { limit: 50 },
        Refusal::VoidOtherDay { hold_day: day },
        Refusal::UnknownHold {
            hold_id: HoldId("x".into()),
        },
        Refusal::AlreadyVoided {
            hold_id: HoldId("x".into()),
        },
        Refusal::CardLocked { failures: 3 },
    ];
    let codes: BTreeSet<&str> = all.iter().map(Refusal::code).collect();
    assert_eq!(codes.len(), all.len(), "codes are distinct");
    for r in &all {
        let ko = r.ko();
        assert!(ko.chars().any(|c| ('가'..='힣').contains(&c)), "{ko}");
        assert!(
            ko.ends_with('.') && r.en().ends_with('.'),
            "{ko} / {}",
            r.en()
        );
        assert!(!r.to_string().ends_with('.'));
    }
    expect!["오프라인 상태에서 이 회원이 오늘 쓸 수 있는 한도(20,000원)를 넘습니다. 오늘 이미 15,000원을 썼습니다. 금액을 5,000원 이하로 줄이거나 서버에 연결된 뒤 다시 시도해 주세요."]
    .assert_eq(&all[9].ko());
    expect!["Offline, a member card may pay at most 10,000 won at a time. Enter a smaller amount, or try again once the server is reachable."]
    .assert_eq(&all[8].en());
}

#[test]
fn grouped_thousands() {
    let cases = [
        (0, "0"),
        (999, "999"),
        (1000, "1,000"),
        (1234567, "1,234,567"),
    ];
    for (n, text) in cases {
        assert_eq!(grouped(n), text);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Hold {
        member: u64,
        card: bool,
        amount: u64,
        online: bool,
    },
    Void(usize),
    Answer(usize, bool),
    Wait(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..4, any::<bool>(), 0u64..40_000, any::<bool>()).prop_map(
            |(member, card, amount, online)| Op::Hold { member, card, amount, online }
        ),
        1 => (0usize..64).prop_map(Op::Void),
        1 => (0usize..64, any::<bool>()).prop_map(|(i, ok)| Op::Answer(i, ok)),
        1 => (0u32..20_000).prop_map(Op::Wait),
    ]
}

proptest! {
    #[test]
    fn book_invariants(ops in proptest::collection::vec(op(), 1..120)) {
        let limits = OfflineLimits::example();
        let start = kst("12-03T08:00");
        let mut book = RedemptionBook::new(limits.clone());
        book.synced(start);
        for m in 0..4 {
            book.set_balance(MemberNo(m), Balance { points: 60_000, as_of: start });
        }
        let mut now = start;
        let mut ids: Vec<HoldId> = Vec::new();
        for (n, op) in ops.into_iter().enumerate() {
            now += Duration::seconds(1);
            match op {
                Op::Hold { member, card, amount, online } => {
                    let token = if card { "card1".to_owned() } else { format!("dyn{n}") };
                    let c = claims(&token, member, now);
                    let before = book.available(MemberNo(member)).unwrap();
                    let id = HoldId(format!("h{n}"));
                    let connectivity = if online { Connectivity::Online } else { Connectivity::Offline };
                    if let Ok(hold) = book.request_hold(id.clone(), &c, amount, now, connectivity) {
                        prop_assert_eq!(hold.remaining, before - amount);
                        ids.push(id);
                    } else {
                        prop_assert_eq!(book.available(MemberNo(member)).unwrap(), before);
                    }
                }
                Op::Void(i) => {
                    if let Some(id) = ids.get(i % ids.len().max(1)) {
                        let member = book.holds[id].hold.member;
                        let amount = book.holds[id].hold.amount;
                        let before = book.available(member).unwrap();
                        let rejected = matches!(book.holds[id].outcome, Some(Outcome::Rejected { .. }));
                        if book.void(id, now).is_ok() {
                            let gain = if rejected { 0 } else { amount };
                            prop_assert_eq!(book.available(member).unwrap(), before + gain);
                        }
                    }
                }
                Op::Answer(i, ok) => {
                    if let Some(id) = ids.get(i % ids.len().max(1)) {
                        let outcome = if ok { Outcome::Posted } else { Outcome::Rejected { reason: "overspent".into() } };
                        book.settle(id, outcome);
                    }
                }
                Op::Wait(secs) => now += Duration::seconds(i64::from(secs)),
            }
            prop_assert!(book.outstanding() <= limits.terminal_outstanding);
            prop_assert!(book.stored_holds() <= limits.max_stored_holds as usize);
            for m in 0..4 {
                // Never negative: the holds since the balance never exceed it (no saturation).
                let held: u64 = book
                    .holds
                    .values()
                    .filter(|e| e.hold.member == MemberNo(m) && !e.voided
                        && !matches!(e.outcome, Some(Outcome::Rejected { .. })))
                    .map(|e| e.hold.amount)
                    .sum();
                prop_assert!(held <= 60_000);
                prop_assert_eq!(book.available(MemberNo(m)).unwrap(), 60_000 - held);
            }
        }
    }
}

#[test]
fn a_card_locks_after_three_wrong_pins() {
    assert_eq!(check_card_pin_failures(0), Ok(()));
    assert_eq!(check_card_pin_failures(MAX_PIN_FAILURES - 1), Ok(()));
    let locked = check_card_pin_failures(MAX_PIN_FAILURES).unwrap_err();
    assert_eq!(locked.code(), "card_locked");
    expect!["비밀번호가 3번 틀려 이 회원카드는 오늘 하루 잠겼습니다(다른 약국과 편의점에도 알려집니다). 내일 다시 쓸 수 있습니다. 회원에게 앱의 QR 코드를 쓰도록 안내해 주세요."]
    .assert_eq(&locked.ko());
}

#[test]
fn limits_come_from_the_policy_in_force() {
    let current =
        points_core::PointsPolicy::from_toml_str(include_str!("../../policies/seoul-2025-12.toml"))
            .unwrap();
    let older =
        points_core::PointsPolicy::from_toml_str(include_str!("../../policies/seoul-2025-03.toml"))
            .unwrap();
    let set = points_core::PolicySet::new(vec![older, current]).unwrap();
    let day = |s: &str| s.parse::<NaiveDate>().unwrap();
    let now = OfflineLimits::in_force(&set, day("2025-12-05"));
    assert_eq!(now.per_transaction.card, 10_000);
    assert_eq!(now.max_since_sync_secs, 24 * 3600);
    // Before the policy with a [redemption] section: the built-in figures.
    assert_eq!(
        OfflineLimits::in_force(&set, day("2025-06-01")),
        OfflineLimits::example()
    );
    let mut rules = *set
        .in_force(day("2025-12-05"))
        .unwrap()
        .redemption()
        .unwrap();
    rules.offline_per_transaction = 5_000;
    rules.offline_max_hours_since_sync = 2;
    let limits = OfflineLimits::from_rules(&rules);
    assert_eq!(limits.per_transaction.dynamic, 5_000);
    assert_eq!(limits.max_since_sync_secs, 7_200);
}

#[test]
fn every_refusal_code_is_in_the_closed_list_once() {
    let member = MemberNo(1);
    let hold_id = HoldId("H-1".to_owned());
    let at = DateTime::<Utc>::UNIX_EPOCH;
    let all = [
        Refusal::RevokedMember { member },
        Refusal::TokenExpired { expires_at: at },
        Refusal::TokenUsed,
        Refusal::StaleTerminal { last_sync: None },
        Refusal::BelowMinimum { amount: 1, min: 2 },
        Refusal::AboveMaximum { amount: 2, max: 1 },
        Refusal::NoBalance { member },
        Refusal::InsufficientPoints {
            amount: 2,
            available: 1,
        },
        Refusal::OverTransactionLimit {
            amount: 2,
            limit: 1,
            kind: TokenKind::Card,
        },
        Refusal::OverDailyLimit {
            amount: 2,
            used: 1,
            limit: 2,
        },
        Refusal::OverTerminalOutstanding {
            amount: 2,
            outstanding: 1,
            limit: 2,
        },
        Refusal::TooManyStoredHolds { limit: 1 },
        Refusal::VoidOtherDay {
            hold_day: at.date_naive(),
        },
        Refusal::UnknownHold {
            hold_id: hold_id.clone(),
        },
        Refusal::AlreadyVoided { hold_id },
        Refusal::CardLocked { failures: 3 },
    ];
    let codes: Vec<&str> = all.iter().map(Refusal::code).collect();
    assert_eq!(codes, Refusal::CODES);
}
