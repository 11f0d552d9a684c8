//! Camera frames decoded per second on one core: a 640x480 grayscale frame as `camera.ts` sends
//! it, parsed and decoded as `decode_frame` does (without the IPC). Prints a table; run with
//! `cargo bench -p src-tauri --bench camera`.
#![allow(clippy::print_stdout, clippy::unwrap_used)]
// A benchmark measures time: the clock is its input.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use palpal_app::camera::Frame;

#[path = "../tests/common/frames.rs"]
mod frames;
use frames::*;

/// Decodes `body` for at least `at_least`: frames and frames per second.
fn rate(body: &[u8], at_least: Duration, expect: Option<&str>) -> (u64, f64) {
    let start = Instant::now();
    let mut n = 0u64;
    while n == 0 || start.elapsed() < at_least {
        let found = Frame::parse(black_box(body)).unwrap().decode();
        assert_eq!(found.as_deref(), expect);
        n += 1;
    }
    (n, n as f64 / start.elapsed().as_secs_f64())
}

fn main() {
    let token = dynamic_token(2, 1);
    let card = card_token(7);
    let body = |g: &Gray| Frame::new(&g.pixels, g.width, g.height).unwrap().to_body();
    let cases: Vec<(&str, Gray, Option<&str>)> = vec![
        (
            "app code, 4 px a module, on clutter",
            in_scene(&qr(&token, 4), 640, 480, 1),
            Some(&token),
        ),
        (
            "member card code, 4 px a module, on clutter",
            in_scene(&qr(&card, 4), 640, 480, 2),
            Some(&card),
        ),
        (
            "app code, 5 px a module, turned 25 degrees",
            rotate(&in_scene(&qr(&token, 5), 640, 480, 3), 25.0, 150),
            Some(&token),
        ),
        (
            "app code inverted (second pass)",
            invert(&in_scene(&qr(&token, 4), 640, 480, 4)),
            Some(&token),
        ),
        ("no code: clutter (both passes)", clutter(640, 480, 5), None),
        (
            "no code: blank wall (both passes)",
            Gray::filled(640, 480, 180),
            None,
        ),
    ];

    println!("camera decode benchmark: 640x480 grayscale frames, one thread");
    println!(
        "{:<46} {:>8} {:>12} {:>10}",
        "frame", "count", "frames/s", "ms/frame"
    );
    for (label, frame, expect) in &cases {
        let (n, per_s) = rate(&body(frame), Duration::from_secs(2), *expect);
        println!("{label:<46} {n:>8} {per_s:>12.1} {:>10.2}", 1000.0 / per_s);
    }
    println!("(the UI sends one frame every 200 ms: 5 frames/s is the rate needed)");
}
