//! Whatever the server (or anything between) answers to a sync request, the terminal's sync
//! client neither panics nor settles an operation twice nor settles one it was not sent.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use sync_client::{Client, Config, Event, Op, Response, Time};

fuzz_target!(|data: &[u8]| {
    let (status, rest) = match data {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]) % 600, rest),
        _ => return,
    };
    let (retry_after, body) = match rest.split_first() {
        Some((n, tail)) if (*n as usize) <= tail.len() && n % 2 == 0 => (
            Some(String::from_utf8_lossy(&tail[..*n as usize]).into_owned()),
            tail[*n as usize..].to_vec(),
        ),
        _ => (None, rest.to_vec()),
    };
    let mut client = Client::new(Config::default(), 7);
    let queued: BTreeSet<String> = (0..3).map(|i| format!("op-{i}")).collect();
    for op_id in &queued {
        client.enqueue(
            Op::from_outbox(
                op_id,
                "void",
                r#"{"hold_op_id":"h","voided_at":"2025-12-02T10:00:00+09:00"}"#,
            )
            .expect("a void's payload"),
        );
    }
    let now = Time::from_millis(1_000);
    let Some(transmit) = client.poll_transmit(now) else {
        return;
    };
    client.handle_response(
        now,
        transmit.seq,
        Response {
            status,
            retry_after,
            body,
        },
    );
    let mut settled = BTreeSet::new();
    while let Some(event) = client.poll_event() {
        if let Event::Settled { op_id, .. } = event {
            assert!(queued.contains(&op_id), "settled an unknown op {op_id}");
            assert!(settled.insert(op_id), "settled an op twice");
        }
    }
    assert_eq!(client.unsettled() + settled.len(), queued.len());
    let _ = client.poll_timeout();
});
