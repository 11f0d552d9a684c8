//! Data-driven scripts around one `check` function, and proptest invariants.

use std::fmt::Write as _;

use proptest::prelude::*;
use serde_json::json;

use super::*;

/// An operation whose payload is `size` bytes of padding in a void's hold id.
fn padded(id: &str, size: usize) -> Op {
    Op {
        op_id: id.to_owned(),
        payload: OpPayload::Void(wire::VoidPayload {
            hold_op_id: "x".repeat(size),
            voided_at: "2025-12-02T10:00:00+09:00".to_owned(),
        }),
        seq: None,
    }
}

fn op(id: &str) -> Op {
    padded(id, 1)
}

fn results_body(spec: &[&str]) -> Vec<u8> {
    let results: Vec<serde_json::Value> = spec
        .iter()
        .map(|s| {
            let mut parts = s.split(':');
            let id = parts.next().unwrap_or_default();
            let status = parts.next().unwrap_or("accepted");
            match parts.next() {
                Some(reason) => json!({"op_id": id, "status": status, "reason": reason,
                                       "message": format!("{reason} message")}),
                None => json!({"op_id": id, "status": status}),
            }
        })
        .collect();
    serde_json::to_vec(&json!({ "results": results })).unwrap()
}

/// Runs a script against a client with small limits and returns the transcript.
///
/// Steps, one a line: `enqueue ID...`, `poll MS`, `ok MS SEQ ID[:status[:reason]]...`,
/// `refuse MS SEQ STATUS CODE [RETRY_AFTER]`, `fail MS SEQ`, `timeout MS`, `wake`, `phase MS`.
fn run(config: Config, script: &str) -> String {
    let mut client = Client::new(config, 7);
    let mut out = String::new();
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let ms = |i: usize| Time::from_millis(words[i].parse().unwrap());
        match words[0] {
            "enqueue" => {
                for id in &words[1..] {
                    client.enqueue(op(id));
                }
            }
            "poll" => match client.poll_transmit(ms(1)) {
                Some(t) => writeln!(out, "send #{} [{}]", t.seq, t.op_ids.join(" ")).unwrap(),
                None => writeln!(out, "nothing ({:?})", client.phase(ms(1))).unwrap(),
            },
            "ok" => {
                let body = results_body(&words[3..]);
                let response = Response {
                    status: 200,
                    retry_after: None,
                    body,
                };
                client.handle_response(ms(1), words[2].parse().unwrap(), response);
            }
            "refuse" => {
                let body = serde_json::to_vec(&json!({"code": words[4], "message": "메시지",
                                               "message_en": "message"}))
                .unwrap();
                let response = Response {
                    status: words[3].parse().unwrap(),
                    retry_after: words.get(5).map(|s| (*s).to_owned()),
                    body,
                };
                client.handle_response(ms(1), words[2].parse().unwrap(), response);
            }
            "fail" => client.handle_failure(ms(1), words[2].parse().unwrap(), Failure::Connect),
            "timeout" => client.handle_timeout(ms(1)),
            "wake" => {
                writeln!(out, "wake {:?}", client.poll_timeout().map(Time::as_millis)).unwrap()
            }
            "phase" => writeln!(out, "{:?}", client.phase(ms(1))).unwrap(),
            other => panic!("unknown step {other}"),
        }
        while let Some(event) = client.poll_event() {
            match event {
                Event::Settled { op_id, outcome } => {
                    writeln!(out, "  {op_id}: {outcome:?}").unwrap();
                }
                Event::Halted(halt) => writeln!(out, "  halted: {halt:?}").unwrap(),
            }
        }
    }
    out
}

fn small() -> Config {
    Config {
        max_batch_ops: 2,
        max_batch_bytes: 10_000,
        request_timeout: Duration::from_millis(1000),
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_millis(400),
        breaker_threshold: 3,
        breaker_cooldown: Duration::from_millis(5000),
        probe_max_ops: 1,
        max_retry_after: Duration::from_secs(60),
    }
}

/// Compares line by line, ignoring indentation (settled events are indented in `run`).
#[track_caller]
fn check(script: &str, expect: &str) {
    assert_lines_eq(&run(small(), script), expect);
}

/// `got` and `expect` as the same lines, each trimmed, blank lines ignored.
#[track_caller]
pub(crate) fn assert_lines_eq(got: &str, expect: &str) {
    let norm = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(norm(got), norm(expect), "\n--- got ---\n{got}");
}

#[test]
fn batches_go_out_one_at_a_time_and_results_settle_them() {
    check(
        "enqueue a b c
         poll 0
         poll 0
         ok 10 1 a b:duplicate
         poll 10
         ok 20 2 c:rejected:role
         poll 20",
        "send #1 [a b]
         nothing (InFlight)
           a: Accepted { member_number: None }
           b: Duplicate { member_number: None }
         send #2 [c]
           c: Rejected { reason: \"role\", message: \"role message\" }
         nothing (Idle)",
    );
}

#[test]
fn an_operation_without_a_result_is_sent_again() {
    check(
        "enqueue a b
         poll 0
         ok 10 1 a
         poll 10",
        "send #1 [a b]
           a: Accepted { member_number: None }
         send #2 [b]",
    );
}

#[test]
fn retry_after_is_a_floor_and_jitter_is_added() {
    // Retry-After 2 s; the jittered wait after one failure adds at most 100 ms (27 with seed 7).
    check(
        "enqueue a
         poll 0
         refuse 0 1 429 overloaded 2
         poll 1999
         wake",
        "send #1 [a]
         nothing (BackingOff)
         wake Some(2027)",
    );
}

#[test]
fn the_circuit_opens_after_consecutive_failures_and_probes_after_the_cool_down() {
    check(
        "enqueue a b c
         poll 0
         fail 0 1
         wake
         poll 1000
         refuse 1000 2 503 unavailable
         wake
         poll 2000
         fail 2000 3
         phase 2000
         wake
         poll 7000
         poll 7499
         ok 7500 4 a
         poll 7500",
        "send #1 [a b]
         wake Some(27)
         send #2 [a b]
         wake Some(1018)
         send #3 [a b]
         CircuitOpen
         wake Some(7382)
         nothing (CircuitOpen)
         send #4 [a]
           a: Accepted { member_number: None }
         send #5 [b c]",
    );
}

#[test]
fn a_failed_probe_opens_the_circuit_again() {
    check(
        "enqueue a
         poll 0
         fail 0 1
         poll 1000
         fail 1000 2
         poll 2000
         fail 2000 3
         poll 9000
         fail 9000 4
         phase 9000",
        "send #1 [a]
         send #2 [a]
         send #3 [a]
         send #4 [a]
         CircuitOpen",
    );
}

#[test]
fn a_refusal_retrying_cannot_fix_halts_and_keeps_the_operations() {
    check(
        "enqueue a
         poll 0
         refuse 0 1 403 revoked_terminal
         poll 100000
         wake",
        "send #1 [a]
           halted: Halt { status: 403, code: \"revoked_terminal\", message: \"메시지 / message\" }
         nothing (Halted)
         wake None",
    );
}

#[test]
fn a_replayed_nonce_is_retried() {
    check(
        "enqueue a
         poll 0
         refuse 0 1 401 replayed_nonce
         phase 0
         poll 5000",
        "send #1 [a]
         BackingOff
         send #2 [a]",
    );
}

#[test]
fn a_stale_timestamp_is_retried_once_the_shell_knows_the_servers_clock() {
    check(
        "enqueue a
         poll 0
         refuse 0 1 401 stale_timestamp
         phase 0
         poll 5000",
        "send #1 [a]
         BackingOff
         send #2 [a]",
    );
}

#[test]
fn too_large_halves_the_batch_and_a_lone_operation_is_rejected() {
    check(
        "enqueue a b
         poll 0
         refuse 0 1 413 payload_too_large
         poll 0
         refuse 0 2 413 payload_too_large
         poll 0",
        "send #1 [a b]
         send #2 [a]
           a: Rejected { reason: \"too_large\", message: \"작업이 너무 커서 서버로 보낼 수 없습니다. 관리자에게 문의해 주세요. / The operation is too large to send to the server; contact the operator.\" }
         send #3 [b]",
    );
}

#[test]
fn a_timed_out_request_is_resent_and_its_late_answer_still_counts() {
    check(
        "enqueue a b c d
         poll 0
         wake
         timeout 1000
         poll 2000
         ok 2100 1 a b
         ok 2200 2 a b",
        "send #1 [a b]
         wake Some(1000)
         send #2 [a b]
           a: Accepted { member_number: None }
           b: Accepted { member_number: None }",
    );
    // The late answer to #1 never settles what is in flight again (a and b above, settled once
    // by #2); it does settle what is still waiting in the queue (c here).
    check(
        "enqueue a b c d
         poll 0
         timeout 1000
         poll 2000
         ok 2100 1 a b c
         ok 2200 2 a b",
        "send #1 [a b]
         send #2 [a b]
           c: Accepted { member_number: None }
           a: Accepted { member_number: None }
           b: Accepted { member_number: None }",
    );
}

#[test]
fn enqueueing_twice_queues_once() {
    check(
        "enqueue a a
         poll 0",
        "send #1 [a]",
    );
}

#[test]
fn the_body_is_the_documented_envelope() {
    let mut client = Client::new(Config::default(), 1);
    client.enqueue(
        Op::from_outbox(
            "op-1",
            "enrollment",
            r#"{"name":"김영희","birth_date":"1950-04-01","phone":"010-1234-5678"}"#,
        )
        .unwrap(),
    );
    let t = client.poll_transmit(Time::default()).unwrap();
    assert_eq!(
        String::from_utf8(t.body).unwrap(),
        r#"{"operations":[{"op_id":"op-1","kind":"enrollment","payload":{"birth_date":"1950-04-01","name":"김영희","phone":"010-1234-5678"}}]}"#
    );
}

#[test]
fn an_outbox_entry_that_is_not_its_kinds_payload_is_not_queued() {
    let extra = r#"{"name":"김영희","birth_date":"1950-04-01","phone":"010","age":75}"#;
    assert!(matches!(
        Op::from_outbox("op-1", "enrollment", extra),
        Err(OpError::Payload { .. })
    ));
    assert!(matches!(
        Op::from_outbox("op-1", "teleport", "{}"),
        Err(OpError::Kind { .. })
    ));
    assert!(matches!(
        Op::from_outbox("op-1", "void", "not json"),
        Err(OpError::Payload { .. })
    ));
}

#[test]
fn retry_after_reads_seconds_only() {
    assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
    assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
}

proptest! {
    /// Whatever the sizes, no request exceeds the configured limits, and every operation is
    /// settled exactly once when the server accepts everything.
    #[test]
    fn batches_never_exceed_limits(
        sizes in proptest::collection::vec(0usize..400, 1..120),
        max_ops in 1usize..50,
        max_bytes in 200usize..4000,
    ) {
        let config = Config { max_batch_ops: max_ops, max_batch_bytes: max_bytes, ..Config::default() };
        let mut client = Client::new(config, 3);
        for (i, size) in sizes.iter().enumerate() {
            client.enqueue(padded(&format!("op-{i}"), *size));
        }
        let mut settled = BTreeMap::new();
        let mut now = Time::default();
        while let Some(t) = client.poll_transmit(now) {
            prop_assert!(t.body.len() <= max_bytes, "{} > {max_bytes}", t.body.len());
            prop_assert!(t.op_ids.len() <= max_ops);
            prop_assert!(!t.op_ids.is_empty());
            let ids: Vec<String> = t.op_ids.iter().map(|id| format!("{id}:accepted")).collect();
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            now = now.saturating_add(Duration::from_millis(1));
            client.handle_response(now, t.seq, Response { status: 200, retry_after: None, body: results_body(&ids) });
            while let Some(Event::Settled { op_id, .. }) = client.poll_event() {
                *settled.entry(op_id).or_insert(0) += 1;
            }
        }
        while let Some(Event::Settled { op_id, .. }) = client.poll_event() {
            *settled.entry(op_id).or_insert(0) += 1;
        }
        prop_assert_eq!(settled.len(), sizes.len());
        prop_assert!(settled.values().all(|n| *n == 1));
        prop_assert_eq!(client.unsettled(), 0);
    }

    /// After k consecutive failures the wait is within [Retry-After, Retry-After + ceiling(k)],
    /// and nothing is sent before it ends.
    #[test]
    fn backoff_is_within_bounds_and_retry_after_is_respected(
        seed in any::<u64>(),
        retry_after in proptest::option::of(0u64..120),
        failures in 1u32..10,
    ) {
        let config = Config { breaker_threshold: 100, ..Config::default() };
        let mut client = Client::new(config.clone(), seed);
        client.enqueue(op("a"));
        let mut now = Time::from_millis(1_000);
        for k in 1..=failures {
            let t = client.poll_transmit(now).expect("a request is due");
            let response = Response {
                status: 429,
                retry_after: retry_after.map(|s| s.to_string()),
                body: br#"{"code":"overloaded"}"#.to_vec(),
            };
            client.handle_response(now, t.seq, response);
            let wake = client.poll_timeout().expect("a wake-up");
            let wait = wake.since(now);
            let floor = Duration::from_secs(retry_after.unwrap_or(0));
            prop_assert!(wait >= floor);
            prop_assert!(wait <= floor + backoff_ceiling(&config, k), "{wait:?} after {k}");
            if wake > now {
                prop_assert!(client.poll_transmit(Time::from_millis(wake.as_millis() - 1)).is_none());
            }
            now = wake;
        }
    }

    /// Under any mix of answers (results, missing results, refusals, failures, timeouts, late
    /// answers), each operation is settled at most once, and all are once the server behaves.
    #[test]
    fn every_operation_gets_exactly_one_final_result(
        seed in any::<u64>(),
        count in 1usize..60,
        script in proptest::collection::vec(0u8..8, 0..80),
    ) {
        let config = Config { max_batch_ops: 7, breaker_threshold: 3, ..Config::default() };
        let mut client = Client::new(config, seed);
        for i in 0..count {
            client.enqueue(op(&format!("op-{i}")));
        }
        let mut settled: BTreeMap<String, u32> = BTreeMap::new();
        let mut now = Time::default();
        let mut old: Vec<Transmit> = Vec::new();
        let mut steps = script.into_iter().chain(std::iter::repeat(0));
        for _ in 0..10_000 {
            if client.unsettled() == 0 {
                break;
            }
            let Some(t) = client.poll_transmit(now) else {
                now = client.poll_timeout().unwrap_or(now).max(now);
                client.handle_timeout(now);
                continue;
            };
            now = now.saturating_add(Duration::from_millis(5));
            let answer = |ids: &[String], skip_first: bool| {
                let spec: Vec<String> = ids.iter().skip(usize::from(skip_first)).map(|id| {
                    // Every fifth operation (ids ending in 0 or 5) is one the server rejects.
                    if id.ends_with('0') || id.ends_with('5') { format!("{id}:rejected:invalid_payload") } else { format!("{id}:accepted") }
                }).collect();
                let spec: Vec<&str> = spec.iter().map(String::as_str).collect();
                Response { status: 200, retry_after: None, body: results_body(&spec) }
            };
            match steps.next().unwrap_or(0) {
                0 | 1 => client.handle_response(now, t.seq, answer(&t.op_ids, false)),
                2 => client.handle_response(now, t.seq, answer(&t.op_ids, true)),
                3 => client.handle_failure(now, t.seq, Failure::Broken),
                4 => client.handle_response(now, t.seq, Response { status: 503, retry_after: Some("1".into()), body: vec![] }),
                5 => { now = now.saturating_add(Duration::from_secs(31)); client.handle_timeout(now); old.push(t); }
                6 => {
                    client.handle_response(now, t.seq, Response { status: 413, retry_after: None, body: vec![] });
                }
                _ => {
                    if let Some(late) = old.pop() {
                        client.handle_response(now, late.seq, answer(&late.op_ids, false));
                    }
                    client.handle_response(now, t.seq, answer(&t.op_ids, false));
                }
            }
            while let Some(event) = client.poll_event() {
                if let Event::Settled { op_id, .. } = event {
                    *settled.entry(op_id).or_insert(0) += 1;
                }
            }
        }
        prop_assert_eq!(client.unsettled(), 0);
        prop_assert_eq!(settled.len(), count);
        prop_assert!(settled.values().all(|n| *n == 1), "{settled:?}");
    }
}
