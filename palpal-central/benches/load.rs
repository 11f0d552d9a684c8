//! Load on the real `palpal-central` process: many terminals, each a tokio task signing its own
//! requests, sending batches of step reports over HTTP on 127.0.0.1.
//!
//! 1. Capacity: 200 concurrent terminals send back to back; durable operations per second
//!    (accepted, committed with `synchronous=FULL`) and request latency percentiles.
//! 2. Paced at the goal: the same terminals each send a batch on a timer so that together they
//!    offer 20,000 operations per second; achieved rate and latency percentiles.
//! 3. Overload: ten times as many terminals on timers that together offer ten times the
//!    requests per second of phase 1, sending a refused batch again at their next tick
//!    (ignoring `Retry-After`, to hold the load); goodput against phase 1, every 429 checked
//!    for `Retry-After`, and the server's RSS from `/proc` sampled each second.
//! 4. Capacity again, as in 1, on the database the overload left: each phase adds rows and a
//!    write costs more on a larger database, so goodput is given against both capacities.
//!
//! Between 2 and 3, hostile: 200 connections from another address (127.0.0.2) that stall
//! (a declared 1 MiB body of an enrolled terminal never sent, a chunked body stopped after its
//! first chunk, headers dribbled a byte a second), each reconnecting as soon as the server
//! cuts it, while the terminals send paced at 20,000 operations a second as in 2; their
//! latency and refusals, and how many stalled requests the server cut.
//!
//! Each phase also prints the server's side, from `/proc` and from `/metrics` every 100 ms:
//! its CPU seconds (the writer thread's, and how long the writer was runnable but waiting for
//! a CPU), the requests in flight against the admission limit, the write groups and their
//! size, and how the writer spent its time (idle, lingering for more writes, writing).
//!
//! Without `LOAD_DB` each engine runs in a process of its own, SQLite then PostgreSQL (a
//! cluster of its own with `synchronous_commit=on`, `LOAD_NODES` server processes on it, 1
//! unless given), and a table compares their figures side by side; `LOAD_DB=sqlite` or
//! `LOAD_DB=postgres` runs one.
//!
//! Figures are printed, never asserted. Run with
//! `cargo bench -p palpal-central --bench load` (environment: `LOAD_SECONDS`, default 10 per
//! phase; `LOAD_TERMINALS`, default 200; `LOAD_BATCH`, default 50 operations per request;
//! `LOAD_MEMBERS`, default 2,000, the members the reports are spread over, in 500s;
//! `LOAD_MAX_IN_FLIGHT`, the server's `--max-in-flight`, default the server's own;
//! `LOAD_LATENCY_TARGET_MS`, the server's `--latency-target-ms` (0: a fixed limit);
//! `LOAD_SERVE_OPTIONS`, more options for `serve`, separated by spaces;
//! `LOAD_NICE`, how the generator is kept off the server's CPU: `idle` (the default,
//! SCHED_IDLE), a nice value such as `19`, or `0` for the server's equal;
//! `LOAD_PIN=1` runs the server on CPU 0 and this load generator on CPU 1 with `taskset`, as
//! if the server had a machine of its own, so that the generator's work does not come out of
//! the server's share). The server keeps a CPU for its writer by itself (`serve --writer-cpu`;
//! `LOAD_SERVE_OPTIONS="--writer-cpu off"` shares).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use sync_protocol::signing;

// The load generator's own allocations (2,000 HTTP clients' buffers, request and answer
// bodies) went through glibc's allocator at a quarter of its CPU; mimalloc makes them cheap,
// leaving more of the shared cores to the server and letting the generator offer more.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Term {
    id: String,
    key: SigningKey,
}

#[derive(Default)]
struct Tally {
    accepted: AtomicU64,
    requests_ok: AtomicU64,
    refused_429: AtomicU64,
    refused_without_retry_after: AtomicU64,
    other_status: AtomicU64,
    other_codes: std::sync::Mutex<std::collections::BTreeMap<u16, u64>>,
    transport_errors: AtomicU64,
    /// The server's view, from `/metrics` every 100 ms: (requests in flight, their limit).
    server_samples: std::sync::Mutex<Vec<(f64, f64)>>,
    /// The server's write groups and the writes in them over the phase.
    groups: std::sync::Mutex<(f64, f64)>,
    /// The writer's seconds idle, lingering and writing over the phase.
    writer: std::sync::Mutex<[f64; 3]>,
}

/// The value of the first `name` sample (no labels) in a Prometheus text page.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// One hostile connection after another from 127.0.0.2 until `stop`: each stalls as `kind`
/// says (0: a declared body never sent, 1: a chunked body stopped, 2: headers dribbled a
/// byte a second) until the server closes it.
async fn stall(addr: std::net::SocketAddr, kind: usize, headers: String, stop: Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    while stop.load(Ordering::Relaxed) == 0 {
        let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
            return;
        };
        if socket.bind("127.0.0.2:0".parse().unwrap()).is_err() {
            return;
        }
        let Ok(mut stream) = socket.connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let _ = match kind {
            0 => {
                let head = format!(
                    "POST /v1/sync HTTP/1.1\r\nhost: x\r\ncontent-length: 1048576\r\n{headers}\r\n{{\"operations\""
                );
                stream.write_all(head.as_bytes()).await
            }
            1 => {
                let head = format!(
                    "POST /v1/sync HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n{headers}\r\n10\r\n{{\"operations\": [\r\n"
                );
                stream.write_all(head.as_bytes()).await
            }
            _ => {
                let head = b"POST /v1/sync HTTP/1.1\r\nhost: x\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                let mut sent = Ok(());
                for byte in head {
                    sent = stream.write_all(&[*byte]).await;
                    if sent.is_err() || stop.load(Ordering::Relaxed) != 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                sent
            }
        };
        let mut rest = [0u8; 4096];
        while let Ok(n) = stream.read(&mut rest).await {
            if n == 0 || stop.load(Ordering::Relaxed) != 0 {
                break;
            }
        }
    }
}

/// `/metrics` from the server's own metrics address (`serve --metrics-listen`).
async fn scrape(client: &reqwest::Client, metrics: &str) -> String {
    match client.get(metrics).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// User plus system CPU seconds of a process so far (`/proc/PID/stat`, 100 ticks a second).
fn cpu_seconds(pid: &str) -> f64 {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// Seconds the server's threads named `name` have spent runnable, waiting for a CPU
/// (`/proc/PID/task/TID/schedstat`, second field, nanoseconds).
fn thread_run_delay_seconds(pid: &str, name: &str) -> f64 {
    threads_named(pid, name)
        .filter_map(|task| {
            let text = std::fs::read_to_string(task.join("schedstat")).ok()?;
            text.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .sum::<f64>()
        / 1e9
}

fn threads_named(pid: &str, name: &str) -> impl Iterator<Item = std::path::PathBuf> {
    let name = name.to_owned();
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|task| task.path())
        .filter(move |task| {
            std::fs::read_to_string(task.join("comm")).is_ok_and(|c| c.trim() == name)
        })
}

/// User plus system CPU seconds so far of the server's threads named `name`.
fn thread_cpu_seconds(pid: &str, name: &str) -> f64 {
    threads_named(pid, name)
        .map(|task| stat_cpu_seconds(&task.join("stat").to_string_lossy()))
        .sum()
}

fn stat_cpu_seconds(path: &str) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / 100.0)
        })
        .unwrap_or(0.0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A batch's bytes, their digest, and once sent, the whole signed request. A refused request is
/// sent again as it was, nonce and all: the server refuses before it checks a signature or
/// records a nonce, so the same request is as new to it, and the terminals spend no CPU signing
/// again what is refused ten times in eleven.
#[derive(Clone)]
struct Batch {
    body: Vec<u8>,
    digest: String,
    request: Option<Vec<u8>>,
}

impl Batch {
    fn new(body: Vec<u8>) -> Batch {
        Batch {
            digest: sync_protocol::signing::body_digest(&body),
            body,
            request: None,
        }
    }
}

/// An answer: status, `Retry-After`, body.
type Answer = (u16, Option<String>, Vec<u8>);

/// A terminal's HTTP/1.1 connection to the server, spoken by hand: a request's bytes are built
/// once, and of an answer only the status, `Retry-After` and the body are read. reqwest cost
/// the terminals about twice the CPU a request, and here they share the server's cores.
struct Conn {
    addr: String,
    stream: Option<tokio::net::TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    fn new(base: &str) -> Conn {
        Conn {
            addr: base.trim_start_matches("http://").to_owned(),
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends `batch` to /v1/sync, signed with `nonce` unless it was signed before.
    async fn post(
        &mut self,
        term: &Term,
        nonce: &str,
        batch: &mut Batch,
    ) -> std::io::Result<Answer> {
        let addr = &self.addr;
        let request = batch.request.get_or_insert_with(|| {
            let now = chrono::Utc::now().timestamp();
            let signed = sync_protocol::signing::sign_with_digest(
                &term.key,
                "POST",
                "/v1/sync",
                &term.id,
                now,
                nonce,
                &batch.digest,
            );
            let mut head = format!(
                "POST /v1/sync HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                batch.body.len()
            );
            for (name, value) in signed.pairs() {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(&batch.body);
            bytes
        });
        // A kept connection the server has closed meanwhile fails before anything is
        // answered; that is tried once more on a new one.
        let kept = self.stream.is_some();
        match self.exchange(request).await {
            Err(error) if kept && error.kind() == std::io::ErrorKind::ConnectionAborted => {
                self.exchange(request).await
            }
            answer => answer,
        }
    }

    async fn exchange(&mut self, request: &[u8]) -> std::io::Result<Answer> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let invalid =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        if self.stream.is_none() {
            let stream = tokio::net::TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(invalid("no connection"));
        };
        let buf = &mut self.buf;
        let outcome = async {
            if stream.write_all(request).await.is_err() {
                return Err(std::io::Error::from(std::io::ErrorKind::ConnectionAborted));
            }
            buf.clear();
            let head_end = loop {
                if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
                if stream.read_buf(buf).await? == 0 {
                    return Err(if buf.is_empty() {
                        std::io::Error::from(std::io::ErrorKind::ConnectionAborted)
                    } else {
                        invalid("the connection ended in an answer's head")
                    });
                }
            };
            let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| invalid("head"))?;
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| invalid("status"))?;
            let header = |name: &str| {
                head.lines().find_map(|line| {
                    let (n, v) = line.split_once(':')?;
                    n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
            };
            let length: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
            let retry_after = header("retry-after");
            while buf.len() < head_end + length {
                if stream.read_buf(buf).await? == 0 {
                    return Err(invalid("the connection ended in an answer's body"));
                }
            }
            Ok((
                status,
                retry_after,
                buf[head_end..head_end + length].to_vec(),
                close,
            ))
        };
        match tokio::time::timeout(Duration::from_secs(30), outcome).await {
            Ok(Ok((status, retry_after, body, close))) => {
                if close {
                    self.stream = None;
                }
                Ok((status, retry_after, body))
            }
            Ok(Err(error)) => {
                self.stream = None;
                Err(error)
            }
            Err(_) => {
                self.stream = None;
                Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
            }
        }
    }
}

/// The members' watches in the signed phase: member `n` wears watch `PW-n`, certified by
/// the demonstration authority, and every proof it signs has a counter never used before.
struct Watches {
    keys: Vec<watch_protocol::WatchKey>,
    certificates: Vec<String>,
    counter: std::sync::atomic::AtomicU32,
}

impl Watches {
    fn new(members: u64) -> Watches {
        let ca = watch_protocol::WatchCa::demo();
        let (keys, certificates) = (1..=members)
            .map(|n| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&n.to_le_bytes());
                let key = watch_protocol::WatchKey::from_seed(seed);
                let certificate = ca
                    .certify(&format!("PW-{n}"), key.public_key())
                    .and_then(|c| c.encode())
                    .unwrap();
                (key, watch_protocol::proof::hex(&certificate))
            })
            .unzip();
        Watches {
            keys,
            certificates,
            counter: std::sync::atomic::AtomicU32::new(1),
        }
    }

    /// The `watch` of a step report of `member` for `day`, signed now.
    fn proof(&self, member: u64, day: chrono::NaiveDate, steps: u32) -> Value {
        let serial = format!("PW-{member}");
        let counter = self.counter.fetch_add(1, Ordering::Relaxed);
        let at = u32::try_from(chrono::Utc::now().timestamp()).unwrap();
        let index = usize::try_from(member - 1).unwrap();
        let proof = self.keys[index]
            .sign_day(&serial, day, steps, counter, at)
            .unwrap();
        json!({
            "serial": serial,
            "certificate": self.certificates[index],
            "counter": counter,
            "signed_at": at,
            "signature": watch_protocol::proof::hex(&proof.signature),
        })
    }
}

fn step_ops(
    terminal: usize,
    serial: &mut u64,
    members: u64,
    batch: u64,
    watches: Option<&Watches>,
) -> Value {
    let today = chrono::Utc::now().date_naive();
    let ops: Vec<Value> = (0..batch)
        .map(|_| {
            *serial += 1;
            let s = *serial;
            let member = 1 + (s.wrapping_mul(2_654_435_761) + terminal as u64) % members;
            let day = today - chrono::Days::new(1 + s % 5);
            let steps = 3000 + (s % 9000) as u32;
            let mut payload = json!({
                "member_number": format!("PP-{member:08}"),
                "day": day.format("%Y-%m-%d").to_string(),
                "steps": steps,
                "reported_at": chrono::Utc::now().fixed_offset().to_rfc3339(),
            });
            if let Some(watches) = watches {
                payload["watch"] = watches.proof(member, day, steps);
            }
            json!({
                "op_id": format!("b{terminal}-{s}"),
                "kind": "step_report",
                "payload": payload,
            })
        })
        .collect();
    json!({ "operations": ops })
}

/// How a terminal offers its batches.
#[derive(Clone, Copy)]
enum Offer {
    /// The next batch as soon as the last is answered; after a 429, wait `Retry-After`.
    BackToBack,
    /// One batch every `interval` (open loop, as terminals syncing on a timer).
    Paced(Duration),
}

/// Runs `clients` terminals for `seconds`; returns (tally, request latencies in µs, elapsed).
/// What every phase shares.
struct Setup {
    /// The server processes' addresses; terminal `c` talks to `bases[c % len]`.
    bases: Vec<String>,
    /// The URL of `/metrics`.
    metrics: String,
    terms: Arc<Vec<Term>>,
    seconds: u64,
    members: u64,
    batch: u64,
    /// The members' watches, once reports are signed.
    watches: Option<Arc<Watches>>,
}

async fn phase(
    setup: &Setup,
    clients: usize,
    offer: Offer,
    tag: &'static str,
) -> (Arc<Tally>, Vec<u64>, Duration) {
    let Setup {
        bases,
        metrics,
        terms,
        seconds,
        members,
        batch,
        watches,
    } = setup;
    let (seconds, members, batch) = (*seconds, *members, *batch);
    let tally = Arc::new(Tally::default());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let terms = Arc::clone(terms);
        let tally = Arc::clone(&tally);
        let base = bases[c % bases.len()].clone();
        let watches = watches.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(&base);
            let term = &terms[c % terms.len()];
            let mut serial = ((c as u64) << 32) | (u64::from(tag.as_bytes()[0]) << 24);
            let mut latencies = Vec::new();
            let mut nonce = 0u64;
            let mut pending: Option<Batch> = None;
            if let Offer::Paced(interval) = offer {
                // Spread the terminals' timers over one interval.
                let offset = interval.as_micros() as u64 * c as u64 / clients.max(1) as u64;
                tokio::time::sleep(Duration::from_micros(offset)).await;
            }
            let mut next_at = tokio::time::Instant::now();
            while Instant::now() < deadline {
                if let Offer::Paced(interval) = offer {
                    tokio::time::sleep_until(next_at).await;
                    next_at += interval;
                }
                let mut body = pending.take().unwrap_or_else(|| {
                    Batch::new(
                        serde_json::to_vec(&step_ops(
                            c,
                            &mut serial,
                            members,
                            batch,
                            watches.as_deref(),
                        ))
                        .unwrap(),
                    )
                });
                nonce += 1;
                let sent = Instant::now();
                match conn
                    .post(term, &format!("{tag}-{c:05}-{nonce:012}"), &mut body)
                    .await
                {
                    Ok((200, _, bytes)) => {
                        latencies.push(sent.elapsed().as_micros() as u64);
                        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        let accepted = answer["results"]
                            .as_array()
                            .map(|r| r.iter().filter(|r| r["status"] == "accepted").count())
                            .unwrap_or(0);
                        tally.accepted.fetch_add(accepted as u64, Ordering::Relaxed);
                        tally.requests_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok((429, retry_after, _)) => {
                        tally.refused_429.fetch_add(1, Ordering::Relaxed);
                        let seconds = retry_after.as_deref().and_then(|v| v.parse::<u64>().ok());
                        if seconds.is_none() {
                            tally
                                .refused_without_retry_after
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        pending = Some(body);
                        // Paced terminals offer again at their next tick, whatever the
                        // answer, so the offered load stays what the phase says.
                        if let Offer::BackToBack = offer {
                            tokio::time::sleep(Duration::from_secs(seconds.unwrap_or(1))).await;
                        }
                    }
                    Ok((status, _, _)) => {
                        tally.other_status.fetch_add(1, Ordering::Relaxed);
                        *tally.other_codes.lock().unwrap().entry(status).or_default() += 1;
                    }
                    Err(_) => {
                        tally.transport_errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            latencies
        }));
    }
    let watcher = {
        let tally = Arc::clone(&tally);
        let metrics = metrics.to_owned();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let groups = |t: &str| {
                (
                    metric(t, "palpal_write_batches_total"),
                    metric(t, "palpal_write_batch_size_sum"),
                )
            };
            let writer = |t: &str| {
                ["idle", "lingering", "writing"].map(|state| {
                    metric(
                        t,
                        &format!("palpal_writer_seconds_total{{state=\"{state}\"}}"),
                    )
                })
            };
            let text = scrape(&client, &metrics).await;
            let (first, first_writer) = (groups(&text), writer(&text));
            let (mut last, mut last_writer) = (first, first_writer);
            while Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let text = scrape(&client, &metrics).await;
                if text.is_empty() {
                    continue;
                }
                last = groups(&text);
                last_writer = writer(&text);
                tally.server_samples.lock().unwrap().push((
                    metric(&text, "palpal_http_in_flight"),
                    metric(&text, "palpal_http_in_flight_limit"),
                ));
            }
            *tally.groups.lock().unwrap() = (last.0 - first.0, last.1 - first.1);
            *tally.writer.lock().unwrap() =
                std::array::from_fn(|i| last_writer[i] - first_writer[i]);
        })
    };
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    watcher.await.unwrap();
    (tally, latencies, start.elapsed())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn report(
    name: &str,
    tally: &Tally,
    mut latencies: Vec<u64>,
    elapsed: Duration,
    cpu: (f64, f64, f64, f64),
) -> (f64, f64) {
    latencies.sort_unstable();
    let secs = elapsed.as_secs_f64();
    let ops = tally.accepted.load(Ordering::Relaxed) as f64 / secs;
    println!(
        "{name:<10} durable ops/s {ops:>9.0} | answered {:.0} requests/s | requests ok {:>6} ({:.0}/s) | 429 {:>6} (without Retry-After {}) | other {} {:?} | transport errors {} | latency ms p50 {:.1} p99 {:.1} max {:.1}",
        (tally.requests_ok.load(Ordering::Relaxed)
            + tally.refused_429.load(Ordering::Relaxed)
            + tally.other_status.load(Ordering::Relaxed)) as f64
            / secs,
        tally.requests_ok.load(Ordering::Relaxed),
        tally.requests_ok.load(Ordering::Relaxed) as f64 / secs,
        tally.refused_429.load(Ordering::Relaxed),
        tally.refused_without_retry_after.load(Ordering::Relaxed),
        tally.other_status.load(Ordering::Relaxed),
        tally.other_codes.lock().unwrap(),
        tally.transport_errors.load(Ordering::Relaxed),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    let samples = tally.server_samples.lock().unwrap();
    let mean = |f: fn(&(f64, f64)) -> f64| {
        samples.iter().map(f).sum::<f64>() / samples.len().max(1) as f64
    };
    let (groups, writes) = *tally.groups.lock().unwrap();
    let writer = *tally.writer.lock().unwrap();
    let share = |i: usize| writer[i] / writer.iter().sum::<f64>().max(1e-9) * 100.0;
    println!(
        "{name:<10} CPU seconds over {:.1} s: server {:.1} (its writer {:.1}, and {:.1} waiting for a CPU), load generator {:.1} | server: in flight mean {:.1} of a limit of mean {:.1} (lowest {:.0}), {:.0} write groups/s of mean {:.1} writes; writer idle {:.0}%, lingering {:.0}%, writing {:.0}%",
        secs,
        cpu.0,
        cpu.2,
        cpu.3,
        cpu.1,
        mean(|s| s.0),
        mean(|s| s.1),
        samples.iter().map(|s| s.1).fold(f64::INFINITY, f64::min),
        groups / secs,
        writes / groups.max(1.0),
        share(0),
        share(1),
        share(2),
    );
    (ops, percentile(&latencies, 0.99))
}

/// The figures the side-by-side table compares, as one engine's run prints them last.
#[derive(Debug, Default, Clone)]
struct Figures {
    capacity: f64,
    paced_p99: f64,
    hostile_p99: f64,
    goodput_percent: f64,
    overload_rss_max_mib: f64,
    signed: f64,
}

impl Figures {
    fn line(&self) -> String {
        format!(
            "figures capacity={:.0} paced_p99={:.1} hostile_p99={:.1} goodput_percent={:.0} overload_rss_max_mib={:.1} signed={:.0}",
            self.capacity, self.paced_p99, self.hostile_p99, self.goodput_percent, self.overload_rss_max_mib, self.signed
        )
    }

    fn parse(line: &str) -> Option<Figures> {
        let rest = line.strip_prefix("figures ")?;
        let mut f = Figures::default();
        for pair in rest.split_whitespace() {
            let (name, value) = pair.split_once('=')?;
            let value: f64 = value.parse().ok()?;
            match name {
                "capacity" => f.capacity = value,
                "paced_p99" => f.paced_p99 = value,
                "hostile_p99" => f.hostile_p99 = value,
                "goodput_percent" => f.goodput_percent = value,
                "overload_rss_max_mib" => f.overload_rss_max_mib = value,
                "signed" => f.signed = value,
                _ => {}
            }
        }
        Some(f)
    }
}

/// `LOAD_DB=sqlite` or `LOAD_DB=postgres` runs the phases on that engine; without it, each
/// engine runs in a process of its own (so each starts from the same priorities) and a table
/// compares them side by side.
fn main() {
    if let Ok(engine) = std::env::var("LOAD_DB") {
        let figures = run(&engine);
        println!("{}", figures.line());
        return;
    }
    let mut table = Vec::new();
    for engine in ["sqlite", "postgres"] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("LOAD_DB", engine)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut figures = None;
        for line in out.lines() {
            let line = line.unwrap();
            match Figures::parse(&line) {
                Some(f) => figures = Some(f),
                None => println!("{line}"),
            }
        }
        assert!(child.wait().unwrap().success(), "the {engine} run failed");
        table.push((engine, figures.unwrap_or_default()));
    }
    let nodes = env_or("LOAD_NODES", 1);
    println!("\nside by side ({} s a phase; PostgreSQL with {nodes} server process(es), synchronous_commit=on)", env_or("LOAD_SECONDS", 10));
    println!("{:<42}{:>14}{:>14}", "", table[0].0, table[1].0);
    let row = |name: &str, get: fn(&Figures) -> f64, digits: usize| {
        println!(
            "{name:<42}{:>14.digits$}{:>14.digits$}",
            get(&table[0].1),
            get(&table[1].1),
        );
    };
    row("durable operations/s, back to back", |f| f.capacity, 0);
    row("p99 ms, paced at 20,000 operations/s", |f| f.paced_p99, 1);
    row(
        "p99 ms, paced with 200 stalled connections",
        |f| f.hostile_p99,
        1,
    );
    row("overload goodput, % of capacity", |f| f.goodput_percent, 0);
    row(
        "server RSS MiB during overload, most",
        |f| f.overload_rss_max_mib,
        1,
    );
    row("signed step reports/s", |f| f.signed, 0);
}

/// The phases on `engine` (`sqlite` or `postgres`).
fn run(engine: &str) -> Figures {
    let mut figures = Figures::default();
    let seconds = env_or("LOAD_SECONDS", 10);
    let terminals = env_or("LOAD_TERMINALS", 200) as usize;
    let batch = env_or("LOAD_BATCH", 50);
    let members = env_or("LOAD_MEMBERS", 2_000).max(500) / 500 * 500;
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_palpal-central");
    // PostgreSQL: a cluster of its own, durable commits (synchronous_commit=on, fsync on),
    // started before this process lowers its priority (its processes would inherit it).
    let cluster = (engine == "postgres").then(|| {
        test_postgres::Cluster::start_with(&[
            "synchronous_commit = on",
            "fsync = on",
            "max_connections = 400",
            "shared_buffers = 256MB",
            // What the database spends its time on, printed after the phases.
            "shared_preload_libraries = 'pg_stat_statements'",
        ])
        .unwrap()
    });
    if let Some(cluster) = &cluster {
        cluster
            .psql(
                "palpal",
                "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
            )
            .unwrap();
    }
    let db: String = match &cluster {
        Some(cluster) => cluster.url(),
        None => dir.path().join("central.db").to_string_lossy().into_owned(),
    };
    // Every command on the database, the server's included, uses this data key.
    let key_file = dir.path().join("data.key");
    let nodes = if cluster.is_some() {
        env_or("LOAD_NODES", 1).max(1)
    } else {
        1
    };

    // "1": the server on CPU 0, this generator on CPU 1.
    let pin = std::env::var("LOAD_PIN").unwrap_or_default();
    let taskset = |args: &[&str]| {
        let done = Command::new("taskset")
            .args(args)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(done, "LOAD_PIN needs taskset (util-linux) and two CPUs");
    };
    if pin == "1" {
        // This thread's CPU set; the runtime's threads, made later, inherit it.
        taskset(&["-p", "-c", "1", &std::process::id().to_string()]);
    }
    let mut servers = Vec::new();
    for _ in 0..nodes {
        let mut serve = if pin == "1" {
            let mut c = Command::new("taskset");
            c.args(["-c", "0", bin]);
            c
        } else {
            Command::new(bin)
        };
        serve
            .args(["serve", "--db", &db, "--data-key-file"])
            .arg(&key_file)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                // The city's terminals come from many addresses; the bench's all share 127.0.0.1.
                "--max-connections-per-address",
                "100000",
            ]);
        if let Ok(limit) = std::env::var("LOAD_MAX_IN_FLIGHT") {
            serve.args(["--max-in-flight", &limit]);
        }
        if let Ok(options) = std::env::var("LOAD_SERVE_OPTIONS") {
            serve.args(options.split_whitespace());
        }
        if let Ok(target) = std::env::var("LOAD_LATENCY_TARGET_MS") {
            serve.args(["--latency-target-ms", &target]);
        }
        let mut child = serve
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_owned();
        line.clear();
        out.read_line(&mut line).unwrap();
        let metrics = line.trim().strip_prefix("metrics on ").unwrap().to_owned();
        servers.push((child, base, metrics));
    }
    // The first process's figures stand for the server's (its writer, its metrics); CPU is
    // summed over all of them.
    let pid = servers[0].0.id();
    let pids: Vec<String> = servers.iter().map(|s| s.0.id().to_string()).collect();
    let bases: Vec<String> = servers.iter().map(|s| s.1.clone()).collect();
    let base = bases[0].clone();
    let metrics = servers[0].2.clone();
    // The terminals are elsewhere in the city; here they share the server's two cores. They
    // run under SCHED_IDLE (inherited by the runtime's threads made below): they take only the
    // CPU the server leaves, and any server thread that wakes takes the CPU from them at once
    // (at nice 19 alone a waking server thread may wait for the terminals' time slice to end).
    // The offered and answered request rates are printed, so a generator that could not keep
    // up would show. LOAD_NICE=0 runs it as the server's equal, LOAD_NICE=19 at nice 19
    // without SCHED_IDLE.
    let nice = std::env::var("LOAD_NICE").unwrap_or_else(|_| "idle".to_owned());
    let me = std::process::id().to_string();
    let (program, args): (&str, Vec<&str>) = match nice.as_str() {
        "idle" => ("chrt", vec!["--idle", "-p", "0", &me]),
        "0" => ("true", vec![]),
        n => ("renice", vec!["-n", n, "-p", &me]),
    };
    let lowered = Command::new(program)
        .args(&args)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(lowered, "LOAD_NICE needs {program} (util-linux)");
    palpal_central::tls::install_default_provider();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Terminals: kiosks, enrolled with their one-time codes.
        let client = reqwest::Client::new();
        let mut terms = Vec::new();
        for i in 0..terminals {
            let out = Command::new(bin)
                .args(["terminal", "add", "--db", &db, "--data-key-file"])
                .arg(&key_file)
                .args(["--site", &format!("site-{}", i % 25), "--role", "kiosk"])
                .output()
                .unwrap();
            let code = String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("code: ").map(str::to_owned))
                .unwrap();
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            let key = SigningKey::from_bytes(&seed);
            let body = json!({
                "code": code,
                "public_key": signing::encode_public_key(&key.verifying_key()),
                "name": format!("bench {i}"),
            });
            let bytes = client
                .post(format!("{base}/v1/terminals/enroll"))
                .body(serde_json::to_vec(&body).unwrap())
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let answer: Value = serde_json::from_slice(&bytes).unwrap();
            terms.push(Term {
                id: answer["terminal_id"].as_str().unwrap().to_owned(),
                key,
            });
        }
        // Members.
        for chunk in 0..(members / 500) {
            let ops: Vec<Value> = (0..500)
                .map(|i| {
                    let n = chunk * 500 + i;
                    json!({
                        "op_id": format!("m-{n}"),
                        "kind": "enrollment",
                        "payload": {
                            "name": format!("회원{n}"),
                            "birth_date": "1950-04-01",
                            "phone": format!("010{n:08}"),
                        },
                    })
                })
                .collect();
            let body = serde_json::to_vec(&json!({ "operations": ops })).unwrap();
            let (status, _, _) = Conn::new(&base).post(&terms[0], &format!("seed-members-{chunk:08}"), &mut Batch::new(body))
                .await
                .unwrap();
            assert_eq!(status, 200);
        }
        let mut setup = Setup {
            bases: bases.clone(),
            metrics: metrics.clone(),
            terms: Arc::new(terms),
            seconds,
            members,
            batch,
            watches: None,
        };
        println!(
            "palpal-central load: {terminals} terminals, {batch} step reports per request, {members} members, {seconds} s per phase, {} CPUs{}",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            match pin.as_str() {
                "1" => ", server pinned to CPU 0 and load generator to CPU 1",
                _ => "",
            }
        );
        let rss_before = rss_kib(pid);

        let server = pid.to_string();
        let _ = &server;
        let cpu_mark = || {
            (
                pids.iter().map(|pid| cpu_seconds(pid)).sum::<f64>(),
                cpu_seconds("self"),
                thread_cpu_seconds(&server, "palpal-writer"),
                thread_run_delay_seconds(&server, "palpal-writer"),
            )
        };
        let since = |mark: (f64, f64, f64, f64)| {
            let now = cpu_mark();
            (now.0 - mark.0, now.1 - mark.1, now.2 - mark.2, now.3 - mark.3)
        };
        let mark = cpu_mark();
        let (tally, latencies, elapsed) =
            phase(&setup, terminals, Offer::BackToBack, "capacity").await;
        let peak_requests = tally.requests_ok.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64();
        let (peak, _) = report("capacity", &tally, latencies, elapsed, since(mark));
        figures.capacity = peak;
        // Paced at the goal: 20,000 operations per second across the terminals.
        let per_terminal = 20_000.0 / terminals as f64;
        let interval = Duration::from_secs_f64(batch as f64 / per_terminal);
        let mark = cpu_mark();
        let (tally, latencies, elapsed) =
            phase(&setup, terminals, Offer::Paced(interval), "paced").await;
        figures.paced_p99 = report("paced 20k", &tally, latencies, elapsed, since(mark)).1;
        let rss_after_capacity = rss_kib(pid);

        // Hostile: 200 stalled connections while the terminals send paced as above.
        let stop = Arc::new(AtomicU64::new(0));
        let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
        let victim = &setup.terms[0];
        let headers: String = signing::sign(
            &victim.key, "POST", "/v1/sync", &victim.id, chrono::Utc::now().timestamp(),
            "hostile-nonce-00001", b"",
        )
        .pairs()
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
        let stalls: Vec<_> = (0..200)
            .map(|i| tokio::spawn(stall(addr, i % 3, headers.clone(), Arc::clone(&stop))))
            .collect();
        let cut_before = metric(&scrape(&client, &metrics).await, "palpal_refusals_total{code=\"request_too_slow\"}");
        let mark = cpu_mark();
        let (tally, latencies, elapsed) =
            phase(&setup, terminals, Offer::Paced(interval), "hostile").await;
        figures.hostile_p99 = report("hostile", &tally, latencies, elapsed, since(mark)).1;
        let page = scrape(&client, &metrics).await;
        println!(
            "hostile    200 stalled connections from 127.0.0.2 (declared bodies, chunked bodies, headers a byte a second); stalled bodies cut: {:.0}; connections refused: {:.0} per address, {:.0} not naming a terminal",
            metric(&page, "palpal_refusals_total{code=\"request_too_slow\"}") - cut_before,
            metric(&page, "palpal_refusals_total{code=\"connections_per_address\"}"),
            metric(&page, "palpal_refusals_total{code=\"unknown_connections\"}"),
        );
        stop.store(1, Ordering::Relaxed);
        for task in stalls {
            task.abort();
        }

        let sampling = Arc::new(AtomicU64::new(1));
        let samples = {
            let sampling = Arc::clone(&sampling);
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while sampling.load(Ordering::Relaxed) == 1 {
                    samples.push(rss_kib(pid));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                samples
            })
        };
        // Ten times the capacity: ten times the terminals, together offering ten times the
        // requests per second the capacity phase served.
        let overload_interval =
            Duration::from_secs_f64((terminals * 10) as f64 / (10.0 * peak_requests.max(1.0)));
        println!(
            "overload   offering {:.0} requests/s ({} terminals, one batch every {} ms each)",
            10.0 * peak_requests,
            terminals * 10,
            overload_interval.as_millis()
        );
        let mark = cpu_mark();
        let (tally, latencies, elapsed) = phase(&setup, terminals * 10, Offer::Paced(overload_interval),
            "overload",
        )
        .await;
        sampling.store(0, Ordering::Relaxed);
        let (goodput, _) = report("overload", &tally, latencies, elapsed, since(mark));
        let samples = samples.await.unwrap();
        // Capacity again, on the database as the overload left it: every phase adds rows, and
        // a write costs more on a larger database, so the overload is also compared with the
        // capacity measured right after it.
        let mark = cpu_mark();
        let (tally, latencies, elapsed) =
            phase(&setup, terminals, Offer::BackToBack, "after").await;
        let (peak_after, _) = report("cap. after", &tally, latencies, elapsed, since(mark));
        let percent = |of: f64| if of > 0.0 { goodput / of * 100.0 } else { 0.0 };
        figures.goodput_percent = percent(peak);
        figures.overload_rss_max_mib =
            samples.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
        println!(
            "overload   goodput {:.0}% of capacity ({:.0}% of the capacity after) | server RSS MiB: before {:.1}, after capacity {:.1}, during overload {:?}",
            percent(peak),
            percent(peak_after),
            rss_before as f64 / 1024.0,
            rss_after_capacity as f64 / 1024.0,
            samples
                .iter()
                .map(|k| (*k as f64 / 1024.0 * 10.0).round() / 10.0)
                .collect::<Vec<_>>(),
        );

        // Signed: the program trusts the watch authority, each member wears a certified watch
        // (paired at the kiosk that signed them up), and every report carries the watch's
        // proof, which the server checks before the writer (the signature) and in it (the
        // authority, the pairing, a proof seen before). The terminals sign as they go, on
        // the same two cores.
        let trusted = Command::new(bin)
            .args(["watch-ca", "add", "--db", &db, "--data-key-file"])
            .arg(&key_file)
            .arg("--demo")
            .output()
            .unwrap();
        assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
        for chunk in 0..(members / 500) {
            let ops: Vec<Value> = (0..500)
                .map(|i| {
                    let n = chunk * 500 + i;
                    json!({
                        "op_id": format!("w-{n}"),
                        "kind": "watch_pairing",
                        "payload": { "serial": format!("PW-{}", n + 1), "enrollment_op_id": format!("m-{n}") },
                    })
                })
                .collect();
            let body = serde_json::to_vec(&json!({ "operations": ops })).unwrap();
            let (status, _, answer) = Conn::new(&base)
                .post(&setup.terms[0], &format!("seed-watches-{chunk:08}"), &mut Batch::new(body))
                .await
                .unwrap();
            assert_eq!(status, 200);
            assert!(!String::from_utf8_lossy(&answer).contains("rejected"), "pairing refused");
        }
        setup.watches = Some(Arc::new(Watches::new(members)));
        let refused_before = metric(&scrape(&client, &metrics).await, "palpal_operations_total{kind=\"step_report\",status=\"rejected\"}");
        let mark = cpu_mark();
        let (tally, latencies, elapsed) =
            phase(&setup, terminals, Offer::BackToBack, "signed").await;
        figures.signed = report("signed", &tally, latencies, elapsed, since(mark)).0;
        let refused = metric(&scrape(&client, &metrics).await, "palpal_operations_total{kind=\"step_report\",status=\"rejected\"}") - refused_before;
        println!("signed     every report with a certified watch's proof, checked; step reports refused: {refused:.0}");
    });
    if cluster.is_none() {
        let size = |name: &str| std::fs::metadata(dir.path().join(name)).map_or(0, |m| m.len());
        println!(
            "files      database {:.0} MiB, write-ahead log {:.1} MiB (its file's longest; the log starts over once copied)",
            size("central.db") as f64 / 1_048_576.0,
            size("central.db-wal") as f64 / 1_048_576.0
        );
    }
    for (mut child, _, _) in servers {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some(cluster) = &cluster {
        // Where PostgreSQL's time went over all the phases (pg_stat_statements), the
        // statements that took most of it first.
        let top = cluster
            .psql(
                "palpal",
                "SELECT calls, round(total_exec_time)::bigint, \
                        round((total_exec_time / calls * 1000)::numeric, 0), rows / calls, \
                        left(regexp_replace(query, '\\s+', ' ', 'g'), 80) \
                 FROM pg_stat_statements WHERE calls > 0 \
                 ORDER BY total_exec_time DESC LIMIT 12",
            )
            .unwrap_or_default();
        println!("postgres   statements by time (pg_stat_statements): calls | total ms | mean µs | rows/call | statement");
        for line in top.lines().filter(|l| !l.trim().is_empty()) {
            println!("postgres   {line}");
        }
    }
    drop(cluster);
    figures
}
