//! `fault-proxy`: an HTTP/1.1 proxy on 127.0.0.1 that sits between a terminal and the central
//! server and, per request, injects a fault chosen by a seeded generator: a connection reset
//! (before or after the server saw the request), a hang, a duplicated request (sent upstream
//! twice, one answer returned), or an answer of 500, 503 or 429 with `Retry-After`. Everything
//! else is passed through untouched.
//!
//! It is a test tool, not a production proxy: one request per connection (`Connection: close`
//! both ways), bodies by `Content-Length` only, and a fault sequence that depends on the order
//! requests arrive in (deterministic for one terminal at a time).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use splitmix::SplitMix64;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "fault-proxy",
    about = "장애 주입 프록시 / a proxy that injects faults between a terminal and the server"
)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The server, such as 127.0.0.1:8088.
    #[arg(long)]
    upstream: String,
    /// Seed of the fault sequence.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of requests whose connection is reset (half before, half after the server).
    #[arg(long, default_value_t = 0.0)]
    reset: f64,
    /// Share of requests that hang for `--hang-ms` and are then cut (half after the server).
    #[arg(long, default_value_t = 0.0)]
    hang: f64,
    /// Share of requests sent upstream twice; the first answer is returned.
    #[arg(long, default_value_t = 0.0)]
    duplicate: f64,
    /// Share answered 500 (half after the server applied the request).
    #[arg(long, default_value_t = 0.0)]
    error500: f64,
    /// Share answered 503 without reaching the server.
    #[arg(long, default_value_t = 0.0)]
    error503: f64,
    /// Share answered 429 with `Retry-After` without reaching the server.
    #[arg(long, default_value_t = 0.0)]
    throttle: f64,
    /// How long a hang lasts, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    hang_ms: u64,
    /// The `Retry-After` of a 429, in seconds.
    #[arg(long, default_value_t = 1)]
    retry_after: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Pass,
    Reset { after_server: bool },
    Hang { after_server: bool },
    Duplicate,
    Error500 { after_server: bool },
    Error503,
    Throttle,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Pass => "pass",
            Fault::Reset { .. } => "reset",
            Fault::Hang { .. } => "hang",
            Fault::Duplicate => "duplicate",
            Fault::Error500 { .. } => "500",
            Fault::Error503 => "503",
            Fault::Throttle => "429",
        }
    }
}

/// Picks faults from a seeded generator, so a seed gives the same faults.
struct Dice(SplitMix64);

impl Dice {
    fn pick(&mut self, args: &Args) -> Fault {
        let roll = self.0.unit();
        let half = self.0.next_u64() & 1 == 1;
        let mut edge = 0.0;
        let table = [
            (args.reset, Fault::Reset { after_server: half }),
            (args.hang, Fault::Hang { after_server: half }),
            (args.duplicate, Fault::Duplicate),
            (args.error500, Fault::Error500 { after_server: half }),
            (args.error503, Fault::Error503),
            (args.throttle, Fault::Throttle),
        ];
        for (share, fault) in table {
            edge += share.max(0.0);
            if roll < edge {
                return fault;
            }
        }
        Fault::Pass
    }
}

struct Proxy {
    args: Args,
    dice: Mutex<Dice>,
    counts: [AtomicU64; 7],
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(&args.listen).await.with_context(|| {
        format!(
            "{}에서 기다릴 수 없습니다 / listening on {}",
            args.listen, args.listen
        )
    })?;
    let addr = listener.local_addr().context("reading the bound address")?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}").context("writing to stdout")?;
        out.flush().context("writing to stdout")?;
    }
    let proxy = Arc::new(Proxy {
        dice: Mutex::new(Dice(SplitMix64::new(args.seed))),
        args,
        counts: Default::default(),
    });
    loop {
        let (client, _) = listener.accept().await.context("accepting a connection")?;
        let proxy = Arc::clone(&proxy);
        tokio::spawn(async move {
            if let Err(error) = proxy.handle(client).await {
                eprintln!("fault-proxy: {error:#}");
            }
        });
    }
}

/// Reads one request: head and a `Content-Length` body.
async fn read_request(stream: &mut TcpStream) -> anyhow::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        anyhow::ensure!(buf.len() < 64 * 1024, "request head too large");
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    anyhow::ensure!(length <= 64 * 1024 * 1024, "request body too large");
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "the client closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.truncate(head_end + length);
    // One request per connection: ask the server to close after answering.
    let mut out = Vec::with_capacity(buf.len() + 19);
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim();
        if !name.eq_ignore_ascii_case("connection") && !name.eq_ignore_ascii_case("keep-alive") {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&buf[head_end..]);
    Ok(Some(out))
}

fn canned(status: &str, extra: &str) -> Vec<u8> {
    let body =
        r#"{"code":"fault","message":"장애 주입 / injected fault","message_en":"injected fault"}"#;
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl Proxy {
    async fn upstream(&self, request: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut server = TcpStream::connect(&self.args.upstream)
            .await
            .context("connecting upstream")?;
        server.write_all(request).await?;
        let mut response = Vec::new();
        server.read_to_end(&mut response).await?;
        Ok(response)
    }

    async fn handle(&self, mut client: TcpStream) -> anyhow::Result<()> {
        let Some(request) = read_request(&mut client).await? else {
            return Ok(());
        };
        let fault = self
            .dice
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pick(&self.args);
        let index = match fault {
            Fault::Pass => 0,
            Fault::Reset { .. } => 1,
            Fault::Hang { .. } => 2,
            Fault::Duplicate => 3,
            Fault::Error500 { .. } => 4,
            Fault::Error503 => 5,
            Fault::Throttle => 6,
        };
        let seen = self.counts[index].fetch_add(1, Ordering::Relaxed) + 1;
        eprintln!("fault-proxy: {} (#{seen})", fault.name());
        match fault {
            Fault::Pass => {
                let response = self.upstream(&request).await?;
                client.write_all(&response).await?;
            }
            Fault::Reset { after_server } => {
                if after_server {
                    self.upstream(&request).await?;
                }
                // A zero linger turns the close into a reset (RST), as a dropped link does;
                // with a zero timeout the close does not block (why tokio deprecates it).
                #[allow(deprecated)]
                client.set_linger(Some(Duration::ZERO))?;
                return Ok(());
            }
            Fault::Hang { after_server } => {
                if after_server {
                    self.upstream(&request).await?;
                }
                tokio::time::sleep(Duration::from_millis(self.args.hang_ms)).await;
            }
            Fault::Duplicate => {
                let first = self.upstream(&request).await?;
                // The copy is answered too (as a replay or a duplicate); the terminal hears one.
                self.upstream(&request).await?;
                client.write_all(&first).await?;
            }
            Fault::Error500 { after_server } => {
                if after_server {
                    self.upstream(&request).await?;
                }
                client
                    .write_all(&canned("500 Internal Server Error", ""))
                    .await?;
            }
            Fault::Error503 => {
                client
                    .write_all(&canned("503 Service Unavailable", "retry-after: 1\r\n"))
                    .await?;
            }
            Fault::Throttle => {
                let extra = format!("retry-after: {}\r\n", self.args.retry_after);
                client
                    .write_all(&canned("429 Too Many Requests", &extra))
                    .await?;
            }
        }
        let _ = client.shutdown().await;
        Ok(())
    }
}
