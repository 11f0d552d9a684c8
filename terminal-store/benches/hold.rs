//! Scan to durable hold, excluding the UI: what the counter's `redeem` command does between
//! the scanned text and "done". Parse and verify the token with the stored keys and revocation
//! list, refuse a replay against the stored seen tokens, rebuild the redemption book from the
//! store, decide the hold, and commit it with its outbox operation and the seen token
//! (`synchronous=FULL`, WAL) on this disk. Prints p50, p99 and the worst of each run; the
//! issue's goal is a p99 under 15 ms.
//!
//! `cargo bench -p terminal-store --bench hold` (the database goes in the target folder, on
//! the same disk as the app's, unless `PALPAL_BENCH_DIR` names another folder).

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark: a failure ends it

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use merchant_core::redemption::{Connectivity, HoldId, OfflineLimits};
use redemption_token::{verify, IssuerKey, MemberNo, Token};
use terminal_store::{demo_issuer_seed_hex, seed_demo, Store, DEMO_KEY_ID};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let base = std::env::var_os("PALPAL_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .join("target")
        });
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    let path = dir.path().join("counter.sqlite");
    let mut store = Store::open(&path).unwrap();
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339("2025-12-03T00:30:00Z")
        .unwrap()
        .to_utc();
    seed_demo(&mut store, "2025-12-03".parse().unwrap(), 1, 9988).unwrap();
    let issuer = IssuerKey::from_seed_hex(DEMO_KEY_ID, demo_issuer_seed_hex()).unwrap();
    let limits = OfflineLimits {
        max_stored_holds: u32::MAX,
        terminal_outstanding: u64::MAX,
        per_member_day: merchant_core::redemption::ByKind {
            dynamic: u64::MAX / 4,
            card: u64::MAX / 4,
        },
        ..OfflineLimits::example()
    };
    println!("scan to durable hold (verify, replay check, book, commit with synchronous=FULL)");
    println!("database: {}", path.display());
    for (round, holds) in [(0u32, 200u32), (1, 1_000)] {
        let mut times = Vec::with_capacity(holds as usize);
        for i in 0..holds {
            // The fifteen demo members who may spend, in turn; 100 points each.
            let member = MemberNo(u64::from(1 + (i % 15)));
            let now = start + chrono::Duration::seconds(i64::from(round * 10_000 + i));
            let nonce = (u64::from(round) << 32 | u64::from(i)).to_be_bytes();
            let text = issuer
                .issue_dynamic(member, now, 120, nonce)
                .unwrap()
                .to_text();
            let t0 = Instant::now();
            let token = Token::parse(&text).unwrap();
            let keys = store.redemption_key_set().unwrap();
            let revocations = store.revocations_for(token.member).unwrap();
            let claims = verify(&text, &keys, &revocations, None, now).unwrap();
            store
                .seen_tokens(4_096, now)
                .unwrap()
                .admit(&claims, now)
                .unwrap();
            let mut book = store
                .redemption_book(limits.clone(), Some(member), now)
                .unwrap();
            // The demo's balances are a few thousand points; this run spends more.
            let as_of = store.balance_of(member).unwrap().unwrap().as_of;
            book.set_balance(
                member,
                merchant_core::redemption::Balance {
                    points: 1_000_000_000,
                    as_of,
                },
            );
            let hold = book
                .request_hold(
                    HoldId(format!("H-{round}-{i:06}")),
                    &claims,
                    100,
                    now,
                    Connectivity::Offline,
                )
                .unwrap();
            store
                .record_hold(&hold, "T-000001", &text, Some(claims.expires_at))
                .unwrap();
            times.push(t0.elapsed());
            // The server answers every 50 holds, as a counter that syncs would see: offline
            // holds awaiting it stay under `max_stored_holds`. Not timed.
            if i % 50 == 49 {
                let answers: Vec<_> = store
                    .outbox_pending()
                    .unwrap()
                    .into_iter()
                    .map(|p| terminal_store::FinalAnswer::Done {
                        op_id: p.op_id,
                        duplicate: false,
                        member_number: None,
                    })
                    .collect();
                store.settle(&answers, now.fixed_offset()).unwrap();
                store.record_sync(now.fixed_offset(), None).unwrap();
            }
        }
        times.sort();
        let stored = store.hold_counts().unwrap().values().sum::<i64>();
        println!(
            "run {round}: {holds} holds ({stored} stored): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(*times.last().unwrap()),
        );
    }
}
