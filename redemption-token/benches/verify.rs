//! Tokens verified per second on one core, and what a card's PIN check costs. Prints a table;
//! run with `cargo bench -p redemption-token`.
#![allow(clippy::print_stdout, clippy::unwrap_used)]
// A benchmark measures time: the clock is its input, unlike the crate it measures.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use redemption_token::{
    verify, CardSpec, IssuerKey, KeySet, MemberNo, Revocations, SeenTokens, DEFAULT_PIN_COST,
};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 1, 0, 0).unwrap()
}

/// Runs `f` over `inputs` round-robin for at least `at_least`, returns operations per second.
fn rate<T>(inputs: &[T], at_least: Duration, mut f: impl FnMut(&T)) -> (u64, f64) {
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        for input in inputs {
            f(input);
        }
        n += inputs.len() as u64;
        if start.elapsed() >= at_least {
            break;
        }
    }
    (n, n as f64 / start.elapsed().as_secs_f64())
}

fn main() {
    let issuer = IssuerKey::from_seed(1, [7; 32]);
    let retired = IssuerKey::from_seed(2, [8; 32]);
    let keys = KeySet::new(&[
        retired.published(now() - chrono::Duration::days(400)),
        issuer.published(now() - chrono::Duration::days(30)),
    ])
    .unwrap();
    let mut revocations = Revocations::default();
    for m in 0..10_000u64 {
        revocations.members.insert(MemberNo(1_000_000 + m));
    }
    let texts: Vec<String> = (0..4096u64)
        .map(|i| {
            let mut nonce = [0u8; 8];
            nonce.copy_from_slice(&i.to_be_bytes());
            issuer
                .issue_dynamic(MemberNo(i % 500 + 1), now(), 120, nonce)
                .unwrap()
                .to_text()
        })
        .collect();

    println!("redemption-token verify benchmark (one thread)");
    println!("{:<46} {:>10} {:>14}", "operation", "count", "per second");
    let (n, per_s) = rate(&texts, Duration::from_secs(3), |t| {
        black_box(verify(black_box(t), &keys, &revocations, None, now()).unwrap());
    });
    println!(
        "{:<46} {:>10} {:>14.0}",
        "verify dynamic token (text to claims)", n, per_s
    );

    let (n, per_s) = rate(&texts, Duration::from_secs(3), |t| {
        let mut seen = SeenTokens::new(4096);
        let claims = verify(black_box(t), &keys, &revocations, None, now()).unwrap();
        seen.admit(black_box(&claims), now()).unwrap();
        black_box(&seen);
    });
    println!(
        "{:<46} {:>10} {:>14.0}",
        "verify + admit to an empty SeenTokens", n, per_s
    );

    let mut seen = SeenTokens::new(texts.len());
    let start = Instant::now();
    for t in &texts {
        let claims = verify(t, &keys, &revocations, None, now()).unwrap();
        seen.admit(&claims, now()).unwrap();
    }
    let per_s = texts.len() as f64 / start.elapsed().as_secs_f64();
    println!(
        "{:<46} {:>10} {:>14.0}",
        "verify + admit, SeenTokens filling to 4,096",
        texts.len(),
        per_s
    );

    for cost in [8, DEFAULT_PIN_COST] {
        let card = CardSpec {
            member: MemberNo(42),
            serial: 1,
            issued_at: now(),
            expires_at: now() + chrono::Duration::days(365),
            pin_cost: cost,
            salt: [3; 8],
        };
        let text = issuer.issue_card(&card, "123456").unwrap().to_text();
        let (n, per_s) = rate(&[text], Duration::from_secs(2), |t| {
            black_box(verify(t, &keys, &revocations, Some("123456"), now()).unwrap());
        });
        let label = format!("verify card + PIN, Argon2id 2^{cost} KiB x3");
        println!("{label:<46} {n:>10} {per_s:>14.1}");
        if cost == DEFAULT_PIN_COST {
            println!(
                "  -> grinding all 10^6 PINs of one card from its QR code: {:.1} core-hours",
                1e6 / per_s / 3600.0
            );
        }
    }
}
