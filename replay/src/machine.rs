//! How fast this machine's CPUs are at the moment of a run: the same program gives very
//! different figures on a host that is slower (or busier with other guests) that day, and a
//! report that says how fast its machine was lets runs of different days be compared.

use std::time::{Duration, Instant};

use ed25519_dalek::{Signer as _, SigningKey};

/// Ed25519 signatures of a 256-byte message that one CPU makes in a second, over about
/// `over` of signing (a terminal's signed request costs one).
pub fn signatures_per_second(over: Duration) -> f64 {
    let key = SigningKey::from_bytes(&[7; 32]);
    let mut message = [0u8; 256];
    let started = Instant::now();
    let mut made = 0u64;
    while made == 0 || started.elapsed() < over {
        for _ in 0..64 {
            message[0] = message[0].wrapping_add(1);
            std::hint::black_box(key.sign(std::hint::black_box(&message)));
            made += 1;
        }
    }
    made as f64 / started.elapsed().as_secs_f64()
}

/// `figure` rounded to three significant digits, with thousands separated: 14,200.
pub fn shown(figure: f64) -> String {
    let digits = figure.max(1.0).log10().floor() as i32;
    let step = 10f64.powi((digits - 2).max(0));
    merchant_core::redemption::grouped(((figure / step).round() * step) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_signs_at_some_rate_and_it_is_shown_to_three_digits() {
        let rate = signatures_per_second(Duration::from_millis(20));
        assert!(rate.is_finite() && rate > 0.0, "{rate}");
        assert_eq!(shown(14_237.4), "14,200");
        assert_eq!(shown(987.6), "988");
        assert_eq!(shown(1_234_567.0), "1,230,000");
        assert_eq!(shown(42.0), "42");
    }
}
