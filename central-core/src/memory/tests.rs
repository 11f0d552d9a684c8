//! The in-memory server, driven as terminals drive a server: each script line is one batch
//! of one operation at a time of day, with the answer it must get, written compactly
//! (`render`): the status, the reason of a rejection, the member (`#1`), the points a report
//! credited (`+100`) and why none (`(lower)`), the balance after a hold or void.

use chrono::{DateTime, NaiveDate, Utc};
use points_core::{PointsPolicy, PolicySet};
use redemption_token::{IssuerKey, MemberNo};
use serde_json::json;
use sync_protocol::member::parse_member_number;
use sync_protocol::wire::{OpResult, OpStatus, Operation, Role};
use watch_protocol::{WatchCa, WatchKey};

use super::*;

fn policies() -> PolicySet {
    let texts = [
        include_str!("../../../policies/seoul-2023.toml"),
        include_str!("../../../policies/seoul-2025-03.toml"),
        include_str!("../../../policies/seoul-2025-12.toml"),
    ];
    let policies = texts.map(|text| PointsPolicy::from_toml_str(text).unwrap());
    PolicySet::new(policies.to_vec()).unwrap()
}

/// A time in Seoul, `2025-12-03T10:00` or with seconds.
fn kst(at: &str) -> DateTime<Utc> {
    let at = if at.len() == 16 {
        format!("{at}:00")
    } else {
        at.to_owned()
    };
    DateTime::parse_from_rfc3339(&format!("{at}+09:00"))
        .unwrap()
        .to_utc()
}

fn rfc(at: &str) -> String {
    kst(at).with_timezone(&points_core::KST).to_rfc3339()
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn op(op_id: &str, kind: &str, payload: serde_json::Value, seq: Option<u64>) -> Operation {
    Operation {
        op_id: op_id.to_owned(),
        kind: kind.to_owned(),
        payload,
        seq,
    }
}

fn sign_up(op_id: &str, name: &str, phone: &str, on: Option<&str>) -> Operation {
    let mut payload = json!({ "name": name, "birth_date": "1950-04-01", "phone": phone });
    if let Some(on) = on {
        payload["day"] = json!(on);
    }
    op(op_id, "enrollment", payload, None)
}

fn steps(op_id: &str, member: i64, on: &str, count: u32, at: &str) -> Operation {
    op(
        op_id,
        "step_report",
        json!({
            "member_number": member_number(member),
            "day": on,
            "steps": count,
            "reported_at": rfc(at),
        }),
        None,
    )
}

fn void(op_id: &str, hold: &str, at: &str, seq: u64) -> Operation {
    op(
        op_id,
        "void",
        json!({ "hold_op_id": hold, "voided_at": rfc(at) }),
        Some(seq),
    )
}

fn wrong_pin(op_id: &str, member: i64, at: &str) -> Operation {
    op(
        op_id,
        "wrong_pin",
        json!({ "member_number": member_number(member), "serial": 1, "at": rfc(at) }),
        None,
    )
}

/// The answer, compactly.
fn render(result: &OpResult) -> String {
    let mut out = match result.status {
        OpStatus::Accepted => "accepted".to_owned(),
        OpStatus::Duplicate => "duplicate".to_owned(),
        OpStatus::Rejected => format!(
            "rejected {}",
            result.reason.map_or("?", RejectReason::as_str)
        ),
    };
    if let Some(member) = result.member_number.as_deref() {
        let id = parse_member_number(member).unwrap();
        out.push_str(&format!(" #{id}"));
    }
    if let Some(points) = result.points {
        out.push_str(&format!(" +{points}"));
    }
    if let Some(ignored) = &result.ignored {
        out.push_str(&format!(" ({ignored})"));
    }
    if let Some(balance) = result.balance {
        out.push_str(&format!(" balance={balance}"));
    }
    out
}

/// A server with a kiosk and a counter at site `east`, a kiosk at `west`, and a published
/// redemption key.
struct World {
    central: Central,
    kiosk: i64,
    counter: i64,
    west: i64,
    issuer: IssuerKey,
}

impl World {
    fn new() -> World {
        let mut central = Central::new(policies());
        let kiosk = central.add_terminal(Role::Kiosk, "east");
        let counter = central.add_terminal(Role::Counter, "east");
        let west = central.add_terminal(Role::Kiosk, "west");
        let seed = [7; 32];
        let key_id = central
            .add_redemption_key(&IssuerKey::from_seed(1, seed).public_key())
            .unwrap();
        World {
            central,
            kiosk,
            counter,
            west,
            issuer: IssuerKey::from_seed(key_id, seed),
        }
    }

    /// A dynamic token of `member` shown at `at`, told apart by `nonce`.
    fn token(&self, member: i64, at: &str, nonce: u8) -> String {
        let member = MemberNo(u64::try_from(member).unwrap());
        self.issuer
            .issue_dynamic(member, kst(at), 120, [nonce; 8])
            .unwrap()
            .to_text()
    }

    /// A hold of `amount` from `member` with `token`, held at `at` by terminal `by`.
    fn hold(&self, op_id: &str, member: i64, amount: u64, token: &str, at: &str) -> Operation {
        op(
            op_id,
            "redemption_hold",
            json!({
                "member_no": member_number(member),
                "amount": amount,
                "token": token,
                "held_at": rfc(at),
                "terminal": terminal_label(self.counter),
            }),
            None,
        )
    }

    /// Sends each operation alone, at its time, from its terminal, and checks its answer.
    fn check(&mut self, script: &[(&str, i64, Operation, &str)]) {
        for (at, terminal, op, expect) in script {
            let results = self
                .central
                .apply(*terminal, std::slice::from_ref(op), kst(at))
                .unwrap();
            assert_eq!(results.len(), 1);
            assert_eq!(render(&results[0]), *expect, "{op:?} at {at}");
        }
    }

    /// Members #1 (김영희) and #2 (이철수), signed up by the kiosk, with `points` each (up to
    /// 300) from reports of the days from 2025-12-01 (100 a day).
    fn with_members(points: u32) -> World {
        let mut world = World::new();
        let kiosk = world.kiosk;
        world.check(&[
            (
                "2025-12-03T09:00",
                kiosk,
                sign_up("e-1", "김영희", "01012345678", None),
                "accepted #1",
            ),
            (
                "2025-12-03T09:00",
                kiosk,
                sign_up("e-2", "이철수", "01087654321", None),
                "accepted #2",
            ),
        ]);
        for member in [1, 2] {
            for n in 1..=points / 100 {
                let on = day("2025-12-01") + chrono::Days::new(u64::from(n - 1));
                let report = steps(
                    &format!("s-{member}-{n}"),
                    member,
                    &on.to_string(),
                    9_000,
                    "2025-12-03T09:00",
                );
                world.check(&[(
                    "2025-12-03T09:00",
                    kiosk,
                    report,
                    &format!("accepted #{member} +100"),
                )]);
            }
        }
        world
    }
}

#[test]
fn a_sign_up_finds_the_person_again_and_takes_a_place_from_the_sites_lease() {
    let mut world = World::new();
    let (kiosk, counter, west) = (world.kiosk, world.counter, world.west);
    world.central.set_quota(day("2025-12-03"), "east", 2);
    let at = "2025-12-03T10:00";
    world.check(&[
        (
            at,
            kiosk,
            sign_up("e-1", "김영희", "010-1234-5678", None),
            "accepted #1",
        ),
        // The same person again, however the phone is written: the member found.
        (
            at,
            kiosk,
            sign_up("e-2", " 김영희 ", "01012345678", None),
            "duplicate #1",
        ),
        // The same operation sent again; its id with other content, or from another kiosk.
        (
            at,
            kiosk,
            sign_up("e-1", "김영희", "010-1234-5678", None),
            "duplicate #1",
        ),
        (
            at,
            kiosk,
            sign_up("e-1", "이철수", "01087654321", None),
            "rejected op_id_reused",
        ),
        (
            at,
            west,
            sign_up("e-1", "김영희", "010-1234-5678", None),
            "rejected op_id_reused",
        ),
        (
            at,
            counter,
            sign_up("e-3", "이철수", "01087654321", None),
            "rejected role",
        ),
        (
            at,
            kiosk,
            sign_up("e-4", "이철수", "01087654321", None),
            "accepted #2",
        ),
        // The lease is full; a refusal is judged again, not remembered.
        (
            at,
            kiosk,
            sign_up("e-5", "박민수", "01011112222", None),
            "rejected quota_exceeded",
        ),
        (
            at,
            kiosk,
            sign_up("e-5", "박민수", "01011112222", None),
            "rejected quota_exceeded",
        ),
        // The day is under quota for another site only; a day quota began after.
        (
            at,
            west,
            sign_up("e-6", "최지우", "01033334444", None),
            "rejected quota_exceeded",
        ),
        (
            at,
            kiosk,
            sign_up("e-7", "정하나", "01055556666", Some("2025-12-01")),
            "rejected no_lease",
        ),
        (
            at,
            kiosk,
            sign_up("e-8", "정하나", "01055556666", Some("2025-11-20")),
            "rejected day_out_of_window",
        ),
        (
            at,
            kiosk,
            sign_up("e-9", "정하나", "0105555", None),
            "rejected invalid_payload",
        ),
        (
            at,
            kiosk,
            sign_up("", "정하나", "01055556666", None),
            "rejected invalid_payload",
        ),
        (
            at,
            kiosk,
            op("e-10", "gift", json!({}), None),
            "rejected unknown_kind",
        ),
    ]);
    let central = &world.central;
    assert_eq!(central.journal(), ["e-1", "e-2", "e-4"]);
    assert_eq!(central.times_applied("e-1"), 1);
    assert_eq!(central.times_applied("e-5"), 0);
    assert_eq!(central.members().count(), 2);
    assert_eq!(
        central.lease(day("2025-12-03"), "east"),
        Some(Lease { places: 2, used: 2 })
    );
    assert_eq!(
        central.find_member("이철수", day("1950-04-01"), "010 8765 4321"),
        Some(2)
    );
    assert_eq!(central.member(1).map(|m| m.op_id.as_str()), Some("e-1"));

    // Without any lease, no quota applies.
    let mut free = World::new();
    let kiosk = free.kiosk;
    free.check(&[(
        at,
        kiosk,
        sign_up("e-1", "김영희", "01012345678", Some("2025-11-30")),
        "accepted #1",
    )]);
}

#[test]
fn step_reports_credit_the_members_ledger_once() {
    let mut world = World::with_members(0);
    let (kiosk, counter) = (world.kiosk, world.counter);
    let at = "2025-12-03T10:00";
    world.check(&[
        (
            at,
            counter,
            steps("s-1", 1, "2025-12-02", 9_000, "2025-12-02T21:00"),
            "accepted #1 +100",
        ),
        (
            at,
            kiosk,
            steps("s-2", 1, "2025-12-02", 4_000, "2025-12-02T22:00"),
            "accepted #1 +0 (lower)",
        ),
        (
            at,
            kiosk,
            steps("s-3", 1, "2025-12-02", 9_500, "2025-12-02T23:00"),
            "accepted #1 +0 (duplicate)",
        ),
        // Sent again: the first answer, without the points, which were credited once.
        (
            at,
            counter,
            steps("s-1", 1, "2025-12-02", 9_000, "2025-12-02T21:00"),
            "duplicate #1",
        ),
        (
            at,
            counter,
            steps("s-4", 9, "2025-12-02", 9_000, "2025-12-02T21:00"),
            "rejected unknown_member",
        ),
        (
            at,
            counter,
            steps("s-5", 1, "2025-12-04", 9_000, "2025-12-03T09:00"),
            "rejected steps_time_out_of_window",
        ),
        // Born in 1950: a senior's goal (5,000).
        (
            at,
            counter,
            steps("s-6", 1, "2025-12-03", 6_000, "2025-12-03T10:00"),
            "accepted #1 +100",
        ),
        (
            at,
            counter,
            steps("s-7", 2, "2025-12-03", 4_000, "2025-12-03T10:00"),
            "accepted #2 +0",
        ),
    ]);
    let central = &world.central;
    assert_eq!(central.balance(1), Some(200));
    assert_eq!(central.ledger_total(1), Ok(Some(200)));
    assert_eq!(central.balance(2), Some(0));
    let taken: Vec<(&str, u64)> = central
        .step_reports()
        .iter()
        .map(|r| (r.op_id.as_str(), r.points))
        .collect();
    assert_eq!(
        taken,
        [
            ("s-1", 100),
            ("s-2", 0),
            ("s-3", 0),
            ("s-6", 100),
            ("s-7", 0)
        ]
    );
}

#[test]
fn a_hold_spends_only_against_the_members_token_and_balance_and_a_void_gives_it_back() {
    let mut world = World::with_members(200);
    let (kiosk, counter) = (world.kiosk, world.counter);
    let at = "2025-12-03T10:00";
    let token = |n| world.token(1, at, n);
    let script = [
        (
            at,
            counter,
            world.hold("h-1", 1, 150, &token(1), at).numbered(Some(1)),
            "accepted #1 balance=50",
        ),
        // Too little left: refused, and kept as evidence of overspending.
        (
            at,
            counter,
            world.hold("h-2", 1, 100, &token(2), at).numbered(Some(2)),
            "rejected insufficient_points",
        ),
        (
            at,
            counter,
            world.hold("h-2", 1, 100, &token(2), at).numbered(Some(2)),
            "rejected insufficient_points",
        ),
        (
            at,
            counter,
            world.hold("h-3", 1, 10, &token(1), at).numbered(Some(3)),
            "rejected token_reused",
        ),
        (
            at,
            counter,
            world
                .hold("h-4", 1, 10, &world.token(2, at, 3), at)
                .numbered(Some(4)),
            "rejected token_member_mismatch",
        ),
        (
            at,
            counter,
            world.hold("h-5", 1, 100_001, &token(4), at),
            "rejected amount_over_limit",
        ),
        (
            at,
            counter,
            world.hold("h-6", 1, 10, &token(5), "2025-11-20T10:00"),
            "rejected hold_time_out_of_window",
        ),
        (
            at,
            counter,
            world.hold("h-7", 9, 10, &token(6), at),
            "rejected unknown_member",
        ),
        (
            at,
            counter,
            world.hold("h-8", 1, 10, "PP1:nonsense", at),
            "rejected token_malformed",
        ),
        (
            at,
            kiosk,
            world.hold("h-9", 1, 10, &token(7), at),
            "rejected role",
        ),
        (
            "2025-12-03T10:05",
            counter,
            void("v-1", "h-1", "2025-12-03T10:05", 5),
            "accepted #1 balance=200",
        ),
        (
            "2025-12-03T10:06",
            counter,
            void("v-2", "h-1", "2025-12-03T10:06", 6),
            "rejected unknown_hold",
        ),
        (
            "2025-12-03T10:06",
            counter,
            void("v-3", "h-2", "2025-12-03T10:06", 7),
            "rejected unknown_hold",
        ),
        (
            "2025-12-03T10:06",
            counter,
            world.hold("h-10", 1, 50, &token(8), at).numbered(Some(10)),
            "accepted #1 balance=150",
        ),
        (
            "2025-12-03T10:07",
            counter,
            void("v-4", "h-10", "2025-12-03T10:07", 9),
            "rejected invalid_payload",
        ),
        (
            "2025-12-03T10:07",
            counter,
            void("v-5", "h-10", "2025-12-04T10:07", 11),
            "rejected void_too_late",
        ),
    ];
    world.check(&script);
    // Another counter's hold cannot be voided here.
    let other = world.central.add_terminal(Role::Counter, "east");
    world.check(&[(
        "2025-12-03T10:08",
        other,
        void("v-6", "h-10", "2025-12-03T10:08", 1),
        "rejected unknown_hold",
    )]);
    // A revoked member spends nothing, whatever they show.
    assert!(world.central.revoke_member(2));
    let token = world.token(2, at, 9);
    world.check(&[(
        at,
        counter,
        world.hold("h-11", 2, 10, &token, at),
        "rejected member_revoked",
    )]);

    let central = &world.central;
    let recorded: Vec<(&str, HoldStatus, Option<&str>)> = central
        .holds()
        .map(|h| (h.op_id.as_str(), h.status, h.void_op_id.as_deref()))
        .collect();
    assert_eq!(
        recorded,
        [
            ("h-1", HoldStatus::Voided, Some("v-1")),
            ("h-10", HoldStatus::Posted, None),
            ("h-2", HoldStatus::Insufficient, None),
            ("h-3", HoldStatus::TokenReused, None),
        ]
    );
    assert_eq!(central.balance(1), Some(150));
    assert_eq!(
        central.member(1).map(|m| (m.credited, m.spent)),
        Some((200, 50))
    );
    assert_eq!(
        central
            .journal()
            .iter()
            .filter(|id| id.starts_with("h-"))
            .count(),
        2
    );
}

#[test]
fn the_counters_numbering_places_holds_voids_and_pairings_on_their_day() {
    let mut world = World::with_members(300);
    let counter = world.counter;
    let evening = "2025-12-03T20:00";
    let (first, second) = (world.token(1, evening, 1), world.token(1, evening, 2));
    world.check(&[
        (
            evening,
            counter,
            world.hold("h-1", 1, 100, &first, evening).numbered(Some(5)),
            "accepted #1 balance=200",
        ),
        (
            evening,
            counter,
            world
                .hold("h-2", 1, 100, &second, evening)
                .numbered(Some(6)),
            "accepted #1 balance=100",
        ),
    ]);
    // The counter's first pull of the next day tells its number 7: what it numbers above was
    // made on that day or later, whatever time it writes.
    world.central.contact(counter, day("2025-12-04"), 7);
    world.central.contact(counter, day("2025-12-04"), 30);
    let morning = "2025-12-04T09:00";
    let (late, today, pairing) = (
        world.token(1, "2025-12-03T21:00", 3),
        world.token(1, morning, 4),
        world.token(2, "2025-12-03T21:00", 5),
    );
    let pair = op(
        "p-1",
        "watch_pairing",
        json!({
            "serial": "PW-1",
            "member_number": member_number(2),
            "token": pairing,
            "paired_at": rfc("2025-12-03T21:00"),
        }),
        Some(11),
    );
    world.check(&[
        (
            morning,
            counter,
            void("v-1", "h-1", "2025-12-03T20:30", 7),
            "accepted #1 balance=200",
        ),
        (
            morning,
            counter,
            void("v-2", "h-2", "2025-12-03T20:40", 8),
            "rejected void_too_late",
        ),
        (
            morning,
            counter,
            world
                .hold("h-3", 1, 100, &late, "2025-12-03T21:00")
                .numbered(Some(9)),
            "rejected hold_time_out_of_window",
        ),
        (
            morning,
            counter,
            world
                .hold("h-4", 1, 100, &today, morning)
                .numbered(Some(10)),
            "accepted #1 balance=100",
        ),
        (
            morning,
            counter,
            pair,
            "rejected pairing_time_out_of_window",
        ),
    ]);
}

#[test]
fn a_watch_is_paired_to_one_member_and_signs_the_steps_credited_to_them() {
    let mut world = World::with_members(0);
    let (kiosk, counter) = (world.kiosk, world.counter);
    let ca = WatchCa::from_seed([1; 32]);
    let watch = WatchKey::from_seed([2; 32]);
    assert!(world.central.trust_watch_authority(ca.public_key()));
    assert!(!world.central.trust_watch_authority(ca.public_key()));
    let at = "2025-12-03T10:00";
    let by_enrollment = |op_id: &str, serial: &str, enrollment: &str| {
        op(
            op_id,
            "watch_pairing",
            json!({ "serial": serial, "enrollment_op_id": enrollment }),
            None,
        )
    };
    let by_number = |op_id: &str, serial: &str, member: i64, token: Option<String>| {
        let mut payload = json!({ "serial": serial, "member_number": member_number(member) });
        if let Some(token) = token {
            payload["token"] = json!(token);
            payload["paired_at"] = json!(rfc(at));
        }
        op(op_id, "watch_pairing", payload, None)
    };
    let signed = |op_id: &str, member: i64, counter_value: u32| {
        let on = day("2025-12-02");
        let signed_at = u32::try_from(kst("2025-12-02T23:00").timestamp()).unwrap();
        let proof = watch
            .sign_day("PW-1", on, 9_000, counter_value, signed_at)
            .unwrap();
        let certificate = ca.certify("PW-1", watch.public_key()).unwrap();
        let mut report = steps(op_id, member, "2025-12-02", 9_000, "2025-12-03T09:00");
        report.payload["watch"] = json!({
            "serial": "PW-1",
            "certificate": watch_protocol::proof::hex(&certificate.encode().unwrap()),
            "counter": counter_value,
            "signed_at": signed_at,
            "signature": watch_protocol::proof::hex(&proof.signature),
        });
        report
    };
    world.check(&[
        (
            at,
            kiosk,
            by_enrollment("p-1", "PW-1", "e-1"),
            "accepted #1",
        ),
        (
            at,
            kiosk,
            by_enrollment("p-1", "PW-1", "e-1"),
            "duplicate #1",
        ),
        (
            at,
            kiosk,
            by_enrollment("p-2", "PW-1", "e-2"),
            "rejected watch_paired_elsewhere",
        ),
        (
            at,
            kiosk,
            by_enrollment("p-3", "PW-2", "e-9"),
            "rejected unknown_enrollment",
        ),
        (
            at,
            counter,
            by_enrollment("p-4", "PW-2", "e-2"),
            "rejected unknown_enrollment",
        ),
        (
            at,
            counter,
            by_number("p-5", "PW-2", 2, None),
            "rejected pairing_needs_token",
        ),
        (
            at,
            counter,
            by_number("p-6", "PW-2", 2, Some(world.token(2, at, 1))),
            "accepted #2",
        ),
        (
            at,
            counter,
            by_number("p-7", "PW-3", 2, Some(world.token(2, at, 2))),
            "accepted #2",
        ),
        (at, counter, signed("s-1", 1, 1), "accepted #1 +100"),
        (at, counter, signed("s-2", 1, 1), "rejected steps_replayed"),
        (
            at,
            counter,
            steps("s-3", 1, "2025-12-01", 9_000, at),
            "rejected steps_unsigned",
        ),
        (
            at,
            counter,
            signed("s-4", 2, 2),
            "rejected watch_not_paired",
        ),
    ]);
    let central = &world.central;
    assert_eq!(central.watch_holder("PW-1"), Some(1));
    assert_eq!(central.watch_holder("PW-2"), None);
    assert_eq!(central.watch_holder("PW-3"), Some(2));
}

#[test]
fn wrong_pins_lock_a_card_for_the_day_at_the_third() {
    let mut world = World::with_members(0);
    let counter = world.counter;
    let at = "2025-12-03T10:00";
    world.check(&[
        (
            at,
            counter,
            wrong_pin("w-1", 1, "2025-12-03T09:58"),
            "accepted #1",
        ),
        (
            at,
            counter,
            wrong_pin("w-2", 1, "2025-12-03T09:59"),
            "accepted #1",
        ),
    ]);
    assert_eq!(
        world.central.wrong_pins(1, 1, day("2025-12-03")),
        (2, false)
    );
    world.check(&[
        (
            at,
            counter,
            wrong_pin("w-3", 1, "2025-12-03T10:00"),
            "accepted #1",
        ),
        (
            at,
            counter,
            wrong_pin("w-3", 1, "2025-12-03T10:00"),
            "duplicate #1",
        ),
        (
            at,
            counter,
            wrong_pin("w-4", 9, "2025-12-03T10:00"),
            "rejected unknown_member",
        ),
        (
            at,
            counter,
            wrong_pin("w-5", 1, "2025-12-03T11:00"),
            "rejected invalid_payload",
        ),
    ]);
    assert_eq!(world.central.wrong_pins(1, 1, day("2025-12-03")), (3, true));
    assert_eq!(
        world.central.wrong_pins(1, 1, day("2025-12-04")),
        (0, false)
    );
}

#[test]
fn a_batch_is_applied_in_order_and_one_from_no_terminal_changes_nothing() {
    let mut world = World::new();
    let kiosk = world.kiosk;
    let now = kst("2025-12-03T10:00");
    let pairing = op(
        "p-1",
        "watch_pairing",
        json!({ "serial": "PW-1", "enrollment_op_id": "e-1" }),
        None,
    );
    let batch = [
        sign_up("e-1", "김영희", "01012345678", None),
        pairing,
        steps("s-1", 1, "2025-12-02", 9_000, "2025-12-02T21:00"),
    ];
    assert_eq!(
        world.central.apply(99, &batch, now),
        Err(Error::UnknownTerminal(99))
    );
    assert!(world.central.journal().is_empty());
    let results = world.central.apply(kiosk, &batch, now).unwrap();
    let rendered: Vec<String> = results.iter().map(render).collect();
    assert_eq!(rendered, ["accepted #1", "accepted #1", "accepted #1 +100"]);
    assert_eq!(world.central.journal(), ["e-1", "p-1", "s-1"]);
}

#[test]
fn redemption_keys_are_numbered_and_checked_as_published() {
    let mut central = Central::new(policies());
    let first = IssuerKey::from_seed(1, [1; 32]);
    let second = IssuerKey::from_seed(2, [2; 32]);
    assert_eq!(central.add_redemption_key(&first.public_key()), Ok(1));
    assert_eq!(central.add_redemption_key(&second.public_key()), Ok(2));
    // The curve's identity point is a weak key, refused, and takes no number.
    let mut identity = [0; 32];
    identity[0] = 1;
    assert_eq!(
        central.add_redemption_key(&identity),
        Err(Error::InvalidRedemptionKey(3))
    );
    let third = IssuerKey::from_seed(3, [3; 32]);
    assert_eq!(central.add_redemption_key(&third.public_key()), Ok(3));
}
