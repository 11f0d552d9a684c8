//! Link efficiency and decode speed of the history service.
//!
//! Prints, for a day (and 30 days) of history streamed at several ATT MTUs, the bytes on the
//! link against the payload minimum, and how fast the terminal decodes notifications.
//! Run with `cargo bench -p watch-protocol --bench link`.
#![allow(clippy::print_stdout, clippy::unwrap_used)]
// A benchmark measures wall-clock time; the library itself never reads the clock.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::Instant;

use chrono::{Days, NaiveDate};
use watch_protocol::{
    fixed_width_len, HistoryNotification, HistoryRecord, HistoryTransfer, WatchCa, WatchHistory,
    WatchKey, MIN_MTU_SIGNED,
};

/// A plausible day: 24 hourly step counts, 24 hourly heart-rate samples, the day's total
/// (signed by the watch when `signed`).
fn history(days: u32, signed: bool) -> Vec<HistoryRecord> {
    let key = WatchKey::from_seed([42; 32]);
    let first = NaiveDate::from_ymd_opt(2025, 12, 1).unwrap();
    let mut out = Vec::new();
    for d in 0..days {
        let day = first + Days::new(d.into());
        let mut total = 0;
        for hour in 0..24u32 {
            let steps = match hour {
                0..=5 => 0,
                6..=8 => 300 + 250 * (hour - 5) + 13 * d,
                9..=17 => 450 + 61 * hour + 7 * d,
                18..=20 => 1500 - 90 * (hour - 18),
                _ => 80 + 9 * hour,
            };
            total += steps;
            out.push(HistoryRecord::HourSteps {
                date: day,
                hour: hour as u8,
                steps,
            });
            out.push(HistoryRecord::HeartRate {
                at: day.and_hms_opt(hour, (13 * hour + d) % 60, 7).unwrap(),
                bpm: (55 + (hour * 7 + d) % 60) as u8,
            });
        }
        let proof = signed.then(|| {
            key.sign_day("PW-0042", day, total, d + 1, 1_764_600_000 + 86_400 * d)
                .unwrap()
        });
        out.push(HistoryRecord::DaySteps {
            date: day,
            steps: total,
            proof,
        });
    }
    out
}

/// ATT bytes of one transfer: the RACP write request and its response, each notification,
/// the completion indication and its confirmation. Returns (ATT bytes, PDUs, notifications).
fn transfer_bytes(records: &[HistoryRecord], mtu: u16) -> (usize, usize, usize) {
    let mut watch = WatchHistory::starting_at(0);
    for r in records {
        watch.push(r.clone()).unwrap();
    }
    let mut terminal = HistoryTransfer::new();
    let request = terminal.start(0);
    let reply = watch.on_control_point(&request, mtu);
    let mut att = 3 + request.len() + 1; // Write Request, Write Response
    for p in &reply.notifications {
        att += 3 + p.len(); // Handle Value Notification
        terminal.on_notification(p).unwrap();
    }
    att += 3 + reply.indication.len() + 1; // Handle Value Indication, Confirmation
    terminal.on_indication(&reply.indication).unwrap();
    let pdus = 4 + reply.notifications.len();
    (att, pdus, reply.notifications.len())
}

fn main() {
    println!("History over the link (ATT PDUs incl. the RACP request, response, indication, confirmation)");
    println!("payload minimum = fixed-width fields: seq 4 + day steps 6 / hour steps 5 / heart rate 5 bytes");
    println!();
    println!(
        "{:>6} {:>5} {:>4} {:>7} {:>7} {:>6} {:>8} {:>8} {:>10} {:>11} {:>10}",
        "signed",
        "days",
        "MTU",
        "records",
        "notifs",
        "min B",
        "ATT B",
        "ATT/min",
        "+L2CAP/min",
        "data-only B",
        "ATT/data"
    );
    // Unsigned: the format's own overhead; signed: what a day's proof (72 bytes) costs, at the
    // MTUs a signed record fits (from MIN_MTU_SIGNED up).
    for (signed, mtus) in [
        (false, [23u16, 185, 247]),
        (true, [MIN_MTU_SIGNED, 185, 247]),
    ] {
        for days in [1u32, 30] {
            let records = history(days, signed);
            let minimum: usize = records.iter().map(fixed_width_len).sum();
            // The same minimum without the 4-byte sequence numbers.
            let data_only = minimum - 4 * records.len();
            for mtu in mtus {
                let (att, pdus, notifs) = transfer_bytes(&records, mtu);
                let l2cap = att + 4 * pdus;
                println!(
                    "{:>6} {:>5} {:>4} {:>7} {:>7} {:>6} {:>8} {:>8.3} {:>10.3} {:>11} {:>10.3}",
                    if signed { "yes" } else { "no" },
                    days,
                    mtu,
                    records.len(),
                    notifs,
                    minimum,
                    att,
                    att as f64 / minimum as f64,
                    l2cap as f64 / minimum as f64,
                    data_only,
                    att as f64 / data_only as f64,
                );
            }
        }
    }

    println!();
    println!("Signed steps (the central server checks each report's proof; a certificate once per watch)");
    let ca = WatchCa::demo();
    let key = WatchKey::from_seed([42; 32]);
    let certificate = ca.certify("PW-0042", key.public_key()).unwrap();
    let day = NaiveDate::from_ymd_opt(2025, 12, 1).unwrap();
    let proofs: Vec<_> = (0..2_000u32)
        .map(|i| {
            key.sign_day("PW-0042", day, 8_000 + i, i, 1_764_600_000)
                .unwrap()
        })
        .collect();
    let start = Instant::now();
    for (i, p) in proofs.iter().enumerate() {
        assert!(black_box(
            certificate
                .verify_day("PW-0042", day, 8_000 + i as u32, black_box(p))
                .is_ok()
        ));
    }
    let per_day = start.elapsed().as_secs_f64() / proofs.len() as f64;
    let start = Instant::now();
    for _ in 0..2_000 {
        assert!(black_box(certificate.verify(&[ca.public_key()]).is_ok()));
    }
    let per_cert = start.elapsed().as_secs_f64() / 2_000.0;
    println!(
        "day proof: {:.1} µs to verify ({:.0} a second on one core); certificate: {:.1} µs",
        per_day * 1e6,
        1.0 / per_day,
        per_cert * 1e6,
    );

    println!();
    println!("Decode throughput (terminal side, HistoryNotification::decode)");
    let records = history(30, true);
    let mut watch = WatchHistory::starting_at(0);
    for r in &records {
        watch.push(r.clone()).unwrap();
    }
    for mtu in [MIN_MTU_SIGNED, 247] {
        let payloads = watch.notifications(0, mtu).unwrap();
        let bytes: usize = payloads.iter().map(Vec::len).sum();
        let rounds = 2_000;
        let start = Instant::now();
        let mut decoded = 0usize;
        for _ in 0..rounds {
            for p in &payloads {
                decoded += black_box(HistoryNotification::decode(black_box(p)).unwrap())
                    .records
                    .len();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "MTU {:>3}: {:>6.2} M records/s, {:>6.1} MB/s ({} records in {} notifications, x{rounds})",
            mtu,
            decoded as f64 / secs / 1e6,
            (bytes * rounds) as f64 / secs / 1e6,
            records.len(),
            payloads.len(),
        );
    }
}
