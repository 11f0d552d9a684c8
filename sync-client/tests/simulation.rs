//! Deterministic simulation: a terminal's [`Client`] and a model of the central server exchange
//! messages through a test network that drops, duplicates, delays and reorders them, under a
//! fake clock, with server outages, 429 + `Retry-After`, 503s and terminal restarts (a new
//! client over what the outbox still holds, as after `kill -9`). Many seeds; for each: every
//! good operation applied on the server exactly once, every operation settled on the terminal
//! exactly once, and the terminal's results agree with the server.
//!
//! The model server follows `palpal-central`'s rules (`docs/sync-api.yaml`, "Exactly once"): an
//! op id is applied at most once and answered `duplicate` afterwards; a rejected operation is
//! not remembered; a refused request (429, 503) applies nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};
use sync_client::{Client, Config, Event, Failure, Op, Outcome, Response, Time, Transmit};
use sync_protocol::wire::{OpPayload, VoidPayload};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What travels on the network, with the client generation it belongs to (a restarted
/// terminal never sees answers meant for the process that died).
enum Message {
    ToServer {
        generation: u32,
        seq: u64,
        body: Vec<u8>,
    },
    ToClient {
        generation: u32,
        seq: u64,
        answer: Result<Response, Failure>,
    },
}

#[derive(Default)]
struct ModelServer {
    /// op id -> times applied (must end at 1 for every good op).
    applied: BTreeMap<String, u32>,
    /// Outage windows, in ms.
    down: Vec<(u64, u64)>,
    requests: u64,
}

impl ModelServer {
    fn is_down(&self, at: u64) -> bool {
        self.down
            .iter()
            .any(|(from, to)| (*from..*to).contains(&at))
    }

    fn handle(&mut self, rng: &mut Rng, body: &[u8]) -> Response {
        self.requests += 1;
        if rng.chance(8) {
            return Response {
                status: 429,
                retry_after: Some("1".to_owned()),
                body: r#"{"code":"overloaded","message":"혼잡","message_en":"busy"}"#
                    .as_bytes()
                    .to_vec(),
            };
        }
        if rng.chance(4) {
            return Response {
                status: 503,
                retry_after: None,
                body: Vec::new(),
            };
        }
        let request: Value = serde_json::from_slice(body).expect("the client sends JSON");
        let operations = request["operations"].as_array().expect("operations");
        assert!(
            !operations.is_empty(),
            "the client never sends an empty batch"
        );
        let mut results = Vec::new();
        for op in operations {
            let id = op["op_id"].as_str().expect("op_id").to_owned();
            let hold = op["payload"]["hold_op_id"].as_str().unwrap_or_default();
            if hold.starts_with("bad") {
                results.push(json!({"op_id": id, "status": "rejected",
                                    "reason": "invalid_payload", "message": "잘못됨 / invalid"}));
                continue;
            }
            let count = self.applied.entry(id.clone()).or_insert(0);
            let status = if *count == 0 { "accepted" } else { "duplicate" };
            if *count == 0 {
                *count = 1;
            }
            results.push(json!({"op_id": id, "status": status}));
        }
        Response {
            status: 200,
            retry_after: None,
            body: serde_json::to_vec(&json!({ "results": results })).expect("json"),
        }
    }
}

/// An operation the model server tells apart by its hold id: `bad...` is rejected.
fn void(op_id: String, hold_op_id: String) -> Op {
    Op {
        op_id,
        payload: OpPayload::Void(VoidPayload {
            hold_op_id,
            voided_at: "2025-12-02T10:00:00+09:00".to_owned(),
        }),
        seq: None,
    }
}

struct Outcomes {
    /// op id -> every final result the terminal recorded.
    settled: BTreeMap<String, Vec<Outcome>>,
}

fn config(rng: &mut Rng) -> Config {
    Config {
        max_batch_ops: 1 + rng.below(40) as usize,
        max_batch_bytes: 400 + rng.below(4000) as usize,
        request_timeout: Duration::from_millis(2_000),
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_millis(5_000),
        breaker_threshold: 4,
        breaker_cooldown: Duration::from_millis(10_000),
        probe_max_ops: 3,
        max_retry_after: Duration::from_secs(60),
    }
}

fn simulate(seed: u64) {
    let mut rng = Rng(seed);
    let op_count = 1 + rng.below(150) as usize;
    let ops: Vec<Op> = (0..op_count)
        .map(|i| {
            let mark = if rng.chance(5) { "bad" } else { "ok" };
            // At most 400 bytes an operation with its envelope: every one fits the smallest batch.
            let pad = "x".repeat(rng.below(250) as usize);
            void(format!("op-{seed}-{i}"), format!("{mark}-{pad}"))
        })
        .collect();
    let bad: BTreeSet<String> = ops
        .iter()
        .filter(|op| matches!(&op.payload, OpPayload::Void(v) if v.hold_op_id.starts_with("bad")))
        .map(|op| op.op_id.clone())
        .collect();
    let mut server = ModelServer::default();
    for _ in 0..rng.below(3) {
        let from = rng.below(60_000);
        server.down.push((from, from + rng.below(30_000)));
    }
    let drop_percent = rng.below(30);
    let dup_percent = rng.below(20);

    let mut outcomes = Outcomes {
        settled: BTreeMap::new(),
    };
    let mut generation = 0u32;
    let config = config(&mut rng);
    let mut client = Client::new(config.clone(), rng.next());
    for op in &ops {
        client.enqueue(op.clone());
    }
    // (deliver at, tie-breaker, message)
    let mut network: BTreeMap<(u64, u64), Message> = BTreeMap::new();
    let mut tie = 0u64;
    let mut now = 0u64;
    let mut send =
        |network: &mut BTreeMap<(u64, u64), Message>, rng: &mut Rng, at: u64, message: Message| {
            if rng.chance(drop_percent) {
                return;
            }
            let copies = if rng.chance(dup_percent) { 2 } else { 1 };
            let mut message = Some(message);
            for copy in 0..copies {
                tie += 1;
                let delay = 1 + rng.below(3_000);
                let m = if copy + 1 == copies {
                    message.take()
                } else {
                    message.as_ref().map(clone_message)
                };
                if let Some(m) = m {
                    network.insert((at + delay, tie), m);
                }
            }
        };

    let mut steps = 0u64;
    loop {
        steps += 1;
        assert!(
            steps < 1_000_000,
            "seed {seed}: the simulation does not end"
        );
        while let Some(event) = client.poll_event() {
            match event {
                Event::Settled { op_id, outcome } => {
                    outcomes.settled.entry(op_id).or_default().push(outcome);
                }
                Event::Halted(halt) => panic!("seed {seed}: halted {halt:?}"),
            }
        }
        let all_settled = ops
            .iter()
            .all(|op| outcomes.settled.contains_key(&op.op_id));
        if all_settled {
            break;
        }
        if let Some(Transmit { seq, body, .. }) = client.poll_transmit(Time::from_millis(now)) {
            send(
                &mut network,
                &mut rng,
                now,
                Message::ToServer {
                    generation,
                    seq,
                    body,
                },
            );
            continue;
        }
        // A terminal restart now and then: the outbox keeps what is not settled.
        if rng.chance(1) && generation < 5 {
            generation += 1;
            client = Client::new(config.clone(), rng.next());
            for op in &ops {
                if !outcomes.settled.contains_key(&op.op_id) {
                    client.enqueue(op.clone());
                }
            }
            continue;
        }
        let next_net = network.keys().next().map(|(at, _)| *at);
        let next_timer = client.poll_timeout().map(Time::as_millis);
        let next = match (next_net, next_timer) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => panic!("seed {seed}: nothing to wait for, yet not all settled"),
        };
        now = now.max(next);
        while let Some(entry) = network.first_entry() {
            if entry.key().0 > now {
                break;
            }
            match entry.remove() {
                Message::ToServer {
                    generation: g,
                    seq,
                    body,
                } => {
                    let answer = if server.is_down(now) {
                        Err(Failure::Connect)
                    } else {
                        Ok(server.handle(&mut rng, &body))
                    };
                    send(
                        &mut network,
                        &mut rng,
                        now,
                        Message::ToClient {
                            generation: g,
                            seq,
                            answer,
                        },
                    );
                }
                Message::ToClient {
                    generation: g,
                    seq,
                    answer,
                } => {
                    if g != generation {
                        continue;
                    }
                    match answer {
                        Ok(response) => {
                            client.handle_response(Time::from_millis(now), seq, response)
                        }
                        Err(failure) => client.handle_failure(Time::from_millis(now), seq, failure),
                    }
                }
            }
        }
        client.handle_timeout(Time::from_millis(now));
    }

    for op in &ops {
        let results = &outcomes.settled[&op.op_id];
        assert_eq!(
            results.len(),
            1,
            "seed {seed}: {} settled {results:?}",
            op.op_id
        );
        if bad.contains(&op.op_id) {
            assert!(
                matches!(results[0], Outcome::Rejected { .. }),
                "seed {seed}: {} should be rejected",
                op.op_id
            );
            assert!(!server.applied.contains_key(&op.op_id));
        } else {
            assert_eq!(
                server.applied.get(&op.op_id),
                Some(&1),
                "seed {seed}: {} not applied exactly once",
                op.op_id
            );
            assert!(
                matches!(
                    results[0],
                    Outcome::Accepted { .. } | Outcome::Duplicate { .. }
                ),
                "seed {seed}: {} settled as {:?}",
                op.op_id,
                results[0]
            );
        }
    }
    assert_eq!(server.applied.len(), op_count - bad.len(), "seed {seed}");
}

fn clone_message(message: &Message) -> Message {
    match message {
        Message::ToServer {
            generation,
            seq,
            body,
        } => Message::ToServer {
            generation: *generation,
            seq: *seq,
            body: body.clone(),
        },
        Message::ToClient {
            generation,
            seq,
            answer,
        } => Message::ToClient {
            generation: *generation,
            seq: *seq,
            answer: answer.clone(),
        },
    }
}

#[test]
fn every_accepted_operation_is_applied_exactly_once_over_many_seeds() {
    let seeds: u64 = std::env::var("PALPAL_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    for seed in 0..seeds {
        simulate(seed);
    }
}

#[test]
fn the_same_seed_replays_the_same_run() {
    // Determinism: the client's choices depend only on its inputs.
    let run = |seed| {
        let mut rng = Rng(seed);
        let mut client = Client::new(config(&mut rng), 42);
        for i in 0..30 {
            client.enqueue(void(format!("op-{i}"), format!("ok-{i}")));
        }
        let mut trace = Vec::new();
        let mut now = Time::default();
        for _ in 0..20 {
            match client.poll_transmit(now) {
                Some(t) => {
                    trace.push((now.as_millis(), t.op_ids.len()));
                    client.handle_failure(now, t.seq, Failure::Connect);
                }
                None => now = client.poll_timeout().unwrap_or(now),
            }
        }
        trace
    };
    assert_eq!(run(9), run(9));
    assert!(run(9).len() > 3);
}
