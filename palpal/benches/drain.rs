//! Drain after a week offline: N queued operations (100,000 unless `PALPAL_DRAIN_OPS` says
//! otherwise) sent by the real `palpal sync` to the real `palpal-central` on 127.0.0.1, both
//! built with the bench profile. Prints figures; asserts no timings.
//!
//! ```text
//! cargo build --release -p palpal-central && cargo bench -p palpal --bench drain
//! ```

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context as _};
use sync_protocol::wire::{EnrollmentPayload, OpPayload};
use terminal_store::Store;

fn main() -> anyhow::Result<()> {
    let ops: usize = std::env::var("PALPAL_DRAIN_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let palpal = PathBuf::from(env!("CARGO_BIN_EXE_palpal"));
    let central = palpal.with_file_name("palpal-central");
    if !central.exists() {
        bail!(
            "{} is missing: run `cargo build --release -p palpal-central` first",
            central.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let central_db = dir.path().join("central.sqlite");
    let mut server = Command::new(&central)
        .args(["serve", "--db"])
        .arg(&central_db)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting palpal-central")?;
    let mut line = String::new();
    BufReader::new(server.stdout.take().context("server stdout")?).read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .context("the server's first line")?
        .to_owned();

    let added = Command::new(&central)
        .args([
            "terminal", "add", "--site", "bench", "--role", "kiosk", "--db",
        ])
        .arg(&central_db)
        .output()?;
    let code = String::from_utf8(added.stdout)?
        .lines()
        .find_map(|l| l.strip_prefix("code: ").map(str::to_owned))
        .context("a code")?;
    let db = dir.path().join("terminal.sqlite");
    let provisioned = Command::new(&palpal)
        .args(["provision", "--server", &url, "--code", &code, "--db"])
        .arg(&db)
        .output()?;
    if !provisioned.status.success() {
        bail!(
            "provision: {}",
            String::from_utf8_lossy(&provisioned.stderr)
        );
    }

    let started = Instant::now();
    let mut store = Store::open(&db)?;
    let at = chrono::DateTime::parse_from_rfc3339("2025-12-03T10:00:00+09:00")?;
    store.in_transaction(|s| {
        for i in 0..ops {
            let payload = OpPayload::Enrollment(EnrollmentPayload {
                name: format!("회원{i}"),
                birth_date: "1950-04-01".to_owned(),
                phone: format!("010{i:08}"),
                day: None,
            });
            s.queue_operation(&format!("op-{i:08}"), &payload, at)?;
        }
        Ok(())
    })?;
    drop(store);
    let queued_in = started.elapsed();

    let started = Instant::now();
    let out = Command::new(&palpal)
        .args(["sync", "--db"])
        .arg(&db)
        .output()?;
    let took = started.elapsed();
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "sync failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let field = |name: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| {
                l.split_once(&format!("{name}: "))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let requests = field("requests");
    let accepted = field("accepted");
    let secs = took.as_secs_f64();
    eprintln!(
        "queued {ops} operations in {:.2} s",
        queued_in.as_secs_f64()
    );
    eprintln!("| operations | accepted | HTTP requests | requests per 500 ops | drain s | ops/s |");
    eprintln!("|-----------:|---------:|--------------:|---------------------:|--------:|------:|");
    eprintln!(
        "| {ops} | {accepted} | {requests} | {:.2} | {secs:.2} | {:.0} |",
        requests * 500.0 / ops as f64,
        ops as f64 / secs
    );
    Ok(())
}
