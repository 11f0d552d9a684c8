//! The red team: the real `palpal-central` binary over TLS, attacked as a thief with a stolen
//! terminal would attack it (`docs/threat-model.md`).
//!
//! Each terminal is provisioned for real (`palpal-central terminal add`, `palpal provision`).
//! The thief then reads what a copy of the terminal's disk holds: its id and pinned server key
//! from its database, its signing key from `<database>.secrets/signing.key`. From there on it
//! speaks the sync API directly, building bodies with `sync-protocol`'s types and signing them
//! as the terminal does. Every attack is sent alone and must be refused with its own reason;
//! the server's database is read before and after, and the two must be equal. In each group
//! the same request done right is accepted, so that no refusal is vacuous.
//!
//! The server runs on the real clock, so every time is built from now. Build the binaries
//! first: `cargo build --workspace --bins` (make test does).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Days, FixedOffset, NaiveDate, TimeDelta, Utc};
use ed25519_dalek::SigningKey;
use redemption_token::{IssuerKey, MemberNo, Token};
use serde_json::Value;
use sync_protocol::server_key::ServerKey;
use sync_protocol::signing;
use sync_protocol::wire::{
    CardRequest, EnrollmentPayload, OpPayload, Operation, PullRequest, RedemptionHoldPayload,
    StepReportPayload, SyncRequest, VoidPayload, WatchPairingPayload, WatchProof, CARDS_PATH,
    PULL_PATH, SYNC_PATH,
};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::client::TlsStream;
use watch_protocol::{WatchCa, WatchKey};

use crate::e2e::{debug_binary, workspace_root};

/// The site of the tests' kiosks.
const CENTER: &str = "성북구 보건소";
/// The site of the tests' counters.
const PHARMACY: &str = "온누리약국";

/// A binary of the workspace's debug build, which must exist.
fn binary(name: &str) -> PathBuf {
    let path = debug_binary(name);
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins` (make test does)",
        path.display()
    );
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Runs a binary of the workspace to its end.
fn run(name: &str, args: &[&str]) -> Output {
    Command::new(binary(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"))
}

/// The value of a `name: value` line.
fn field<'a>(printed: &'a str, name: &str) -> Option<&'a str> {
    printed
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

/// A figure of `palpal sync`'s summary, such as `접수 accepted: 20`.
fn summary(out: &Output, name: &str) -> u64 {
    text(&out.stdout)
        .lines()
        .find_map(|line| {
            line.split_once(&format!("{name}: "))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} in {}", text(&out.stdout)))
        .parse()
        .expect("a number")
}

/// A figure of the published policy in force (`policies/seoul-2025-12.toml`), such as
/// `offline_per_member_day_card`, so that the limits attacked are the ones the server applies.
fn policy_figure(name: &str) -> u64 {
    let path = workspace_root().join("policies/seoul-2025-12.toml");
    let policy = std::fs::read_to_string(&path).expect("the published policy");
    policy
        .lines()
        .find_map(|line| line.trim().strip_prefix(name)?.trim().strip_prefix('='))
        .and_then(|value| value.trim().replace('_', "").parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {}", path.display()))
}

/// Now, as the server's clock reads it, in Asia/Seoul.
fn now() -> DateTime<FixedOffset> {
    Utc::now().with_timezone(&points_core::KST)
}

fn today() -> NaiveDate {
    now().date_naive()
}

fn days_ago(days: u64) -> NaiveDate {
    today() - Days::new(days)
}

/// `day` at `hour`:00 in Asia/Seoul.
fn at_hour(day: NaiveDate, hour: u32) -> DateTime<FixedOffset> {
    day.and_hms_opt(hour, 0, 0)
        .and_then(|t| t.and_local_timezone(points_core::KST).single())
        .expect("a time")
}

/// Different for every request and token of the run.
fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn nonce() -> String {
    format!("red-team-{}-{:016}", std::process::id(), unique())
}

/// A self-signed certificate by `palpal-central tls generate`: the files and the key to pin.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    let out = run(
        "palpal-central",
        &[
            "tls",
            "generate",
            "--cert-out",
            utf8(&cert),
            "--key-out",
            utf8(&key),
            "--name",
            "127.0.0.1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let server_key = field(&text(&out.stdout), "server_key")
        .expect("a server key")
        .to_owned();
    (cert, key, server_key)
}

/// An HTTP client that talks TLS only to the server holding `server_key`, as a terminal's
/// does (`terminal_sync::tls`); plain HTTP it speaks to anyone (the operator's metrics).
fn pinned_client(server_key: &str) -> reqwest::Client {
    let key = ServerKey::parse(server_key).expect("a server key");
    let verifier = Arc::new(terminal_sync::tls::PinnedKey::new(Some(key)));
    let config = terminal_sync::tls::client_config(verifier).expect("a TLS configuration");
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// A TLS connection to the server at `addr` that holds `server_key`, for requests written by
/// hand.
async fn tls_connection(addr: &str, server_key: &str) -> TlsStream<tokio::net::TcpStream> {
    let key = ServerKey::parse(server_key).expect("a server key");
    let verifier = Arc::new(terminal_sync::tls::PinnedKey::new(Some(key)));
    let config = terminal_sync::tls::client_config(verifier).expect("a TLS configuration");
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    let name =
        tokio_rustls::rustls::pki_types::ServerName::try_from("127.0.0.1").expect("a server name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("a TLS handshake with the pinned key")
}

/// Reads what the server sends until it closes the connection. `limit` guards against a
/// server that never does; it is not a measure.
async fn until_closed(stream: &mut (impl AsyncRead + Unpin), limit: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the server never closed the connection; it sent {:?}",
                text(&got)
            ),
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            // Reset, or closed without TLS's close_notify: closed all the same.
            Ok(Err(_)) => break,
        }
    }
    text(&got)
}

/// The tables of the central database that hold what an attack could change, each read whole
/// and in a fixed order. Members' personal data is left out (only ids, origins and dates are
/// read), and so are the nonces, which an answered request consumes by design.
const TABLES: &[(&str, &str)] = &[
    (
        "members",
        "SELECT id, terminal_id, op_id, created_at, revoked_at FROM members ORDER BY id",
    ),
    ("balances", "SELECT * FROM balances ORDER BY member_id"),
    ("ledger_entries", "SELECT * FROM ledger_entries ORDER BY id"),
    ("step_reports", "SELECT * FROM step_reports ORDER BY id"),
    ("operations", "SELECT * FROM operations ORDER BY op_id"),
    ("holds", "SELECT * FROM holds ORDER BY op_id"),
    ("quota_leases", "SELECT * FROM quota_leases ORDER BY id"),
    ("watch_pairings", "SELECT * FROM watch_pairings ORDER BY id"),
    (
        "watch_proofs",
        "SELECT * FROM watch_proofs ORDER BY serial, counter",
    ),
    ("cards", "SELECT * FROM cards ORDER BY member_id, serial"),
    (
        "revoked_cards",
        "SELECT * FROM revoked_cards ORDER BY member_id, serial",
    ),
    (
        "card_pin_failures",
        "SELECT * FROM card_pin_failures ORDER BY rowid",
    ),
    (
        "terminals",
        "SELECT id, site, role, public_key, enrolled_at, revoked_at FROM terminals ORDER BY id",
    ),
    (
        "terminal_contacts",
        "SELECT * FROM terminal_contacts ORDER BY terminal_id, day",
    ),
    ("changes", "SELECT * FROM changes ORDER BY seq"),
];

/// The central database as [`TABLES`] reads it.
type Snapshot = Vec<(&'static str, Vec<Vec<rusqlite::types::Value>>)>;

/// A `palpal-central serve` process over TLS on 127.0.0.1, with its database, certificate and
/// card key in a folder of its own; killed when dropped.
struct Central {
    child: Child,
    dir: tempfile::TempDir,
    db: PathBuf,
    cert: PathBuf,
    url: String,
    addr: String,
    server_key: String,
    /// The operator's `/metrics` (`serve --metrics-listen`), when asked for.
    metrics_url: Option<String>,
    /// The redemption key (`key add`) that makes members' tokens, as their phones do; it also
    /// signs cards (`serve --card-key`).
    issuer: IssuerKey,
    http: reqwest::Client,
}

impl Central {
    /// Starts the server with a fresh database, a certificate of its own, a redemption key, and
    /// `extra` options for `serve`.
    fn start(extra: &[&str]) -> Central {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let db = dir.path().join("central.sqlite");
        let (cert, key, server_key) = certificate(dir.path(), "server");
        let secret = dir.path().join("card-key.hex");
        let added = central_cli(&[
            "key",
            "add",
            "--db",
            utf8(&db),
            "--secret-out",
            utf8(&secret),
        ]);
        let key_id: u16 = field(&added, "key_id")
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no key id in {added}"));
        let seed = std::fs::read_to_string(&secret).expect("the key's secret");
        let issuer = IssuerKey::from_seed_hex(key_id, seed.trim()).expect("an issuing key");
        let log = dir.path().join("serve.log");
        let mut child = Command::new(binary("palpal-central"))
            .args(["serve", "--db", utf8(&db), "--listen", "127.0.0.1:0"])
            .args(["--tls-cert", utf8(&cert), "--tls-key", utf8(&key)])
            .args(["--card-key", utf8(&secret)])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("the server's log"))
            .spawn()
            .expect("start palpal-central serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("its stdout"));
        let mut line = || {
            let mut line = String::new();
            stdout
                .read_line(&mut line)
                .expect("read the server's output");
            line.trim().to_owned()
        };
        let first = line();
        let Some(url) = first.strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the server did not start: {first:?}; it said: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let url = url.to_owned();
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
        let metrics_url = extra.contains(&"--metrics-listen").then(|| {
            let second = line();
            second
                .strip_prefix("metrics on ")
                .unwrap_or_else(|| panic!("unexpected line {second:?}"))
                .to_owned()
        });
        Central {
            child,
            addr: url.trim_start_matches("https://").to_owned(),
            url,
            http: pinned_client(&server_key),
            dir,
            db,
            cert,
            server_key,
            metrics_url,
            issuer,
        }
    }

    fn db(&self) -> &str {
        utf8(&self.db)
    }

    /// A one-time code for a terminal of `role` at `site`, and the server key printed with it.
    fn code(&self, site: &str, role: &str) -> (String, String) {
        let out = central_cli(&[
            "terminal",
            "add",
            "--db",
            self.db(),
            "--site",
            site,
            "--role",
            role,
            "--tls-cert",
            utf8(&self.cert),
        ]);
        (
            field(&out, "code").expect("a code").to_owned(),
            field(&out, "server_key").expect("a server key").to_owned(),
        )
    }

    /// A terminal of `role` at `site` provisioned with the real `palpal provision`; returns its
    /// database.
    fn provision(&self, name: &str, site: &str, role: &str) -> PathBuf {
        let db = self.dir.path().join(format!("{name}.sqlite"));
        let (code, server_key) = self.code(site, role);
        assert_eq!(server_key, self.server_key);
        let out = run(
            "palpal",
            &[
                "provision",
                "--db",
                utf8(&db),
                "--server",
                &self.url,
                "--code",
                &code,
                "--server-key",
                &server_key,
                "--name",
                name,
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        db
    }

    /// Provisions a terminal and steals it at once.
    fn stolen(&self, name: &str, site: &str, role: &str) -> Terminal {
        Terminal::steal(&self.provision(name, site, role))
    }

    fn snapshot(&self) -> Snapshot {
        let conn = rusqlite::Connection::open_with_flags(
            &self.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the server's database");
        TABLES
            .iter()
            .map(|(table, sql)| {
                let mut stmt = conn
                    .prepare(sql)
                    .unwrap_or_else(|e| panic!("reading {table}: {e}"));
                let columns = stmt.column_count();
                let rows = stmt
                    .query_map([], |row| (0..columns).map(|i| row.get(i)).collect())
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Vec<_>>>>())
                    .unwrap_or_else(|e| panic!("reading {table}: {e}"));
                (*table, rows)
            })
            .collect()
    }

    /// The tables that differ from `before`, but `except`, with their row counts.
    fn changes_since(&self, before: &Snapshot, except: &[&str]) -> Vec<String> {
        before
            .iter()
            .zip(self.snapshot())
            .filter(|((table, old), (_, new))| !except.contains(table) && old != new)
            .map(|((table, old), (_, new))| {
                format!("{table}: {} rows before, {} after", old.len(), new.len())
            })
            .collect()
    }

    /// Fails unless the server's database is as it was in `before`.
    fn unchanged(&self, before: &Snapshot, attack: &str) {
        let changed = self.changes_since(before, &[]);
        assert!(
            changed.is_empty(),
            "{attack} changed the server: {changed:?}"
        );
    }

    /// Rows of `table` now, as [`TABLES`] reads it.
    fn rows(&self, table: &str) -> Vec<Vec<rusqlite::types::Value>> {
        self.snapshot()
            .into_iter()
            .find(|(name, _)| *name == table)
            .map(|(_, rows)| rows)
            .unwrap_or_else(|| panic!("no table {table}"))
    }

    /// `palpal-central` run on this server's database.
    fn cli(&self, args: &[&str]) -> String {
        let mut all = vec![args[0], args[1], "--db", self.db()];
        all.extend_from_slice(&args[2..]);
        central_cli(&all)
    }

    /// The operator's `/metrics` (`serve --metrics-listen`).
    async fn metrics(&self) -> (u16, String) {
        let url = self.metrics_url.as_deref().expect("a metrics address");
        let response = self.http.get(url).send().await.expect("ask for metrics");
        let status = response.status().as_u16();
        (status, response.text().await.expect("the metrics"))
    }

    /// Polls the operator's `/metrics` until it has `line`; fails after many tries, never on
    /// timing alone.
    async fn wait_for_metric(&self, line: &str) {
        for _ in 0..1000 {
            if self.metrics().await.1.contains(line) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the metrics never showed {line:?}");
    }
}

impl Drop for Central {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `palpal-central`, which must succeed; returns what it printed.
fn central_cli(args: &[&str]) -> String {
    let out = run("palpal-central", args);
    assert!(
        out.status.success(),
        "palpal-central {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// What a copy of a terminal's disk gives a thief: its id, its signing key, the server's
/// address and the key it pinned.
#[derive(Clone)]
struct Terminal {
    id: String,
    key: SigningKey,
    url: String,
    server_key: String,
    http: reqwest::Client,
}

/// An answer of the server: status and JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    /// The refusal's code (`unknown_terminal`, ...).
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    /// Each operation's status and reason, in order.
    fn outcomes(&self) -> Vec<(String, String)> {
        self.body["results"]
            .as_array()
            .map(|results| {
                results
                    .iter()
                    .map(|r| {
                        (
                            r["status"].as_str().unwrap_or_default().to_owned(),
                            r["reason"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The only operation's result, which must be `accepted`.
    fn accepted(&self) -> &Value {
        assert_eq!(
            (self.status, self.outcomes()),
            (200, vec![("accepted".to_owned(), String::new())]),
            "{}",
            self.body
        );
        &self.body["results"][0]
    }
}

impl Terminal {
    /// Reads a provisioned terminal's identity the way a thief with a copy of its disk would:
    /// the database for its id, address and pinned key; the secrets folder for its key.
    fn steal(db: &Path) -> Terminal {
        let conn =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("open the terminal's database");
        let (id, url, server_key): (String, String, String) = conn
            .query_row(
                "SELECT terminal_id, server_url, server_key FROM terminal_identity",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .expect("a provisioned terminal");
        let path = terminal_store::secrets::secret_path(db, terminal_store::secrets::SIGNING_KEY);
        let seed: [u8; 32] = std::fs::read(&path)
            .expect("the signing key file")
            .try_into()
            .expect("a 32-byte key");
        Terminal {
            id,
            key: SigningKey::from_bytes(&seed),
            http: pinned_client(&server_key),
            url,
            server_key,
        }
    }

    /// The four signature headers over `body`, signed now with a fresh nonce.
    fn headers(&self, method: &str, path: &str, body: &[u8]) -> signing::SignedHeaders {
        signing::sign(
            &self.key,
            method,
            path,
            &self.id,
            Utc::now().timestamp(),
            &nonce(),
            body,
        )
    }

    /// Sends `body` to `path` with `headers` (signed or not) as they are.
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        headers: Option<&signing::SignedHeaders>,
    ) -> Answer {
        let url = format!("{}{path}", self.url);
        let mut request = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).body(body),
        };
        for (name, value) in headers.map(|h| h.pairs()).into_iter().flatten() {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("an answer from the server");
        let status = response.status().as_u16();
        let body = response.text().await.expect("the answer's body");
        Answer {
            status,
            body: serde_json::from_str(&body).unwrap_or(Value::String(body)),
        }
    }

    /// `method path` with `body`, signed now.
    async fn signed(&self, method: &str, path: &str, body: Vec<u8>) -> Answer {
        let headers = self.headers(method, path, &body);
        self.send(method, path, body, Some(&headers)).await
    }

    async fn sync(&self, operations: Vec<Operation>) -> Answer {
        let body = serde_json::to_vec(&SyncRequest { operations }).expect("a sync body");
        self.signed("POST", SYNC_PATH, body).await
    }

    /// Pulls, telling `sequence` as the highest number it gave its operations so far.
    async fn pull(&self, sequence: u64) -> Answer {
        let request = PullRequest {
            sequence: Some(sequence),
            ..PullRequest::default()
        };
        let body = serde_json::to_vec(&request).expect("a pull body");
        self.signed("POST", PULL_PATH, body).await
    }
}

/// Sends `op` alone from `thief`: it must be rejected for `reason`, and the server's database
/// must be as it was.
async fn refused(central: &Central, thief: &Terminal, op: Operation, reason: &str) {
    let before = central.snapshot();
    let answer = thief.sync(vec![op.clone()]).await;
    assert_eq!(
        (answer.status, answer.outcomes()),
        (200, vec![("rejected".to_owned(), reason.to_owned())]),
        "{} {}: {}",
        op.kind,
        op.op_id,
        answer.body
    );
    central.unchanged(&before, &format!("{} {}", op.kind, op.op_id));
}

/// Sends `op` alone from `terminal`; it must be accepted. Returns its result.
async fn accepted(terminal: &Terminal, op: Operation) -> Value {
    terminal.sync(vec![op]).await.accepted().clone()
}

fn operation(op_id: &str, payload: OpPayload) -> Operation {
    Operation::new(op_id, &payload)
}

fn enrollment(op_id: &str, name: &str, phone: &str, day: Option<NaiveDate>) -> Operation {
    operation(
        op_id,
        OpPayload::Enrollment(EnrollmentPayload {
            name: name.to_owned(),
            birth_date: "1950-04-01".to_owned(),
            phone: phone.to_owned(),
            day: day.map(|d| d.to_string()),
        }),
    )
}

fn step_report(
    op_id: &str,
    member: &str,
    day: NaiveDate,
    steps: u32,
    watch: Option<WatchProof>,
) -> Operation {
    operation(
        op_id,
        OpPayload::StepReport(StepReportPayload {
            member_number: member.to_owned(),
            day: day.to_string(),
            steps,
            reported_at: now().to_rfc3339(),
            watch,
        }),
    )
}

fn hold(
    op_id: &str,
    member: &str,
    amount: u64,
    token: &str,
    at: DateTime<FixedOffset>,
    counter: &Terminal,
) -> Operation {
    operation(
        op_id,
        OpPayload::RedemptionHold(RedemptionHoldPayload {
            member_no: member.to_owned(),
            amount,
            token: token.to_owned(),
            held_at: at.to_rfc3339(),
            terminal: counter.id.clone(),
        }),
    )
}

fn void(op_id: &str, hold_op_id: &str, at: DateTime<FixedOffset>) -> Operation {
    operation(
        op_id,
        OpPayload::Void(VoidPayload {
            hold_op_id: hold_op_id.to_owned(),
            voided_at: at.to_rfc3339(),
        }),
    )
}

/// A watch paired at a counter by member number, with the member's token shown at `at`.
fn pairing(
    op_id: &str,
    serial: &str,
    member: &str,
    token: Option<&str>,
    at: DateTime<FixedOffset>,
) -> Operation {
    operation(
        op_id,
        OpPayload::WatchPairing(WatchPairingPayload {
            serial: serial.to_owned(),
            member_number: Some(member.to_owned()),
            enrollment_op_id: None,
            token: token.map(str::to_owned),
            paired_at: token.map(|_| at.to_rfc3339()),
        }),
    )
}

/// A watch handed over at the kiosk with the sign-up `enrollment`.
fn pairing_at_sign_up(op_id: &str, serial: &str, enrollment: &str) -> Operation {
    operation(
        op_id,
        OpPayload::WatchPairing(WatchPairingPayload {
            serial: serial.to_owned(),
            member_number: None,
            enrollment_op_id: Some(enrollment.to_owned()),
            token: None,
            paired_at: None,
        }),
    )
}

fn member_no(member: &str) -> MemberNo {
    let id = sync_protocol::member::parse_member_number(member).expect("a member number");
    MemberNo(u64::try_from(id).expect("a positive number"))
}

/// A dynamic token of `member` made by `key` at `issued`, living two minutes.
fn token_at(key: &IssuerKey, member: &str, issued: DateTime<FixedOffset>) -> String {
    key.issue_dynamic(
        member_no(member),
        issued.to_utc(),
        120,
        unique().to_be_bytes(),
    )
    .expect("a token")
    .to_text()
}

/// The token `member`'s phone shows for a hold or a pairing at `at`: made ten seconds before.
fn shown(key: &IssuerKey, member: &str, at: DateTime<FixedOffset>) -> String {
    token_at(key, member, at - TimeDelta::seconds(10))
}

/// Signs up one person per name at `kiosk`; returns their member numbers.
async fn sign_up(kiosk: &Terminal, names: &[&str]) -> Vec<String> {
    let ops = names
        .iter()
        .enumerate()
        .map(|(i, name)| enrollment(&format!("e-{i}"), name, &format!("010-5555-{i:04}"), None))
        .collect();
    let answer = kiosk.sync(ops).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    (0..names.len())
        .map(|i| {
            let result = &answer.body["results"][i];
            assert_eq!(result["status"], "accepted", "{}", answer.body);
            result["member_number"]
                .as_str()
                .expect("a member number")
                .to_owned()
        })
        .collect()
}

/// Credits `member` a goal day (9,000 steps) for each of the last `days` days, as a counter
/// syncing an unsigned watch does while no watch authority is trusted; returns the points.
async fn walk(counter: &Terminal, member: &str, days: u64) -> i64 {
    let ops = (1..=days)
        .map(|back| {
            step_report(
                &format!("walk-{member}-{back}"),
                member,
                days_ago(back),
                9_000,
                None,
            )
        })
        .collect();
    let answer = counter.sync(ops).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let results = answer.body["results"].as_array().expect("results");
    assert!(
        results.iter().all(|r| r["status"] == "accepted"),
        "{}",
        answer.body
    );
    let points: i64 = results.iter().filter_map(|r| r["points"].as_i64()).sum();
    assert!(points > 0, "{}", answer.body);
    points
}

/// A watch certified by `ca` for `serial`.
struct Watch {
    serial: String,
    key: WatchKey,
    certificate: String,
}

impl Watch {
    fn new(serial: &str, seed: u8, ca: &WatchCa) -> Watch {
        let key = WatchKey::from_seed([seed; 32]);
        let certificate = ca
            .certify(serial, key.public_key())
            .and_then(|c| c.encode())
            .map(|bytes| watch_protocol::proof::hex(&bytes))
            .expect("a certificate");
        Watch {
            serial: serial.to_owned(),
            key,
            certificate,
        }
    }

    /// The watch's signature over `steps` on `day`, its `counter`-th, made at `signed_at` by
    /// its clock.
    fn proof(
        &self,
        day: NaiveDate,
        steps: u32,
        counter: u32,
        signed_at: DateTime<FixedOffset>,
    ) -> WatchProof {
        let at = u32::try_from(signed_at.timestamp()).expect("a time the watch can tell");
        let proof = self
            .key
            .sign_day(&self.serial, day, steps, counter, at)
            .expect("a signed day");
        WatchProof {
            serial: self.serial.clone(),
            certificate: self.certificate.clone(),
            counter,
            signed_at: at,
            signature: watch_protocol::proof::hex(&proof.signature),
        }
    }
}

/// A kiosk's request for member `member`'s first card, with the PIN check made at `cost`.
fn card_request(member: &str, pin: &str, cost: u8) -> Vec<u8> {
    let salt = unique().to_le_bytes();
    let check = redemption_token::card_pin_check(pin, cost, salt, member_no(member), 1)
        .expect("a PIN check");
    serde_json::to_vec(&CardRequest {
        member_number: member.to_owned(),
        serial: 1,
        pin_cost: cost,
        salt: signing::hex(&salt),
        pin_tag: signing::hex(&check.tag),
    })
    .expect("a card request")
}

/// Sends each attack alone from `thief`, as [`refused`] does.
async fn all_refused(central: &Central, thief: &Terminal, attacks: Vec<(Operation, &str)>) {
    for (op, reason) in attacks {
        refused(central, thief, op, reason).await;
    }
}

/// A stolen counter spends nothing without a token the member showed: made up, missing,
/// another member's, altered, signed by the thief's own key, out of its time, beyond the
/// policy's amount, a revoked member's; a card asked for with a PIN check cheap to grind, a
/// card over its day limit, a card reported lost. The member's own token is taken, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_counter_spends_no_points_without_the_members_own_token() {
    let central = Central::start(&[]);
    let kiosk = central.stolen("kiosk-1", CENTER, "kiosk");
    let counter = central.stolen("counter-1", PHARMACY, "counter");
    let members = sign_up(&kiosk, &["김영희", "박철수", "이순자"]).await;
    let (member, other, leaver) = (&members[0], &members[1], &members[2]);
    let earned = walk(&counter, member, 3).await;
    walk(&counter, other, 1).await;
    central.cli(&["member", "revoke", "--member", leaver]);
    let issuer = &central.issuer;
    let held = now() - TimeDelta::seconds(60);
    let (ahead, long_ago) = (now() + TimeDelta::minutes(10), now() - TimeDelta::days(8));
    let theirs = shown(issuer, other, held);
    let relabelled = Token {
        member: member_no(member),
        ..Token::parse(&theirs).expect("a token")
    };
    let mut flipped = Token::parse(&shown(issuer, member, held)).expect("a token");
    flipped.signature[0] ^= 1;
    let forger = IssuerKey::from_seed(issuer.key_id(), [0x66; 32]);
    let unknown = IssuerKey::from_seed(issuer.key_id().wrapping_add(100), [0x99; 32]);
    let mut missing = hold("x-missing", member, 50, "", held, &counter);
    missing
        .payload
        .as_object_mut()
        .expect("a payload object")
        .remove("token");
    let spend = |op_id, token: &str| hold(op_id, member, 50, token, held, &counter);
    all_refused(
        &central,
        &counter,
        vec![
            // A made-up token id, as the attack that started this; no token; an empty one.
            (spend("x-made-up", "tok-made-up"), "token_malformed"),
            (missing, "invalid_payload"),
            (spend("x-empty", ""), "invalid_payload"),
            // Another member's real token (seen at the counter), as it is and relabelled.
            (spend("x-theirs", &theirs), "token_member_mismatch"),
            (
                spend("x-relabelled", &relabelled.to_text()),
                "token_tampered",
            ),
            // The member's real token with a bit of its signature flipped.
            (spend("x-flipped", &flipped.to_text()), "token_tampered"),
            // Signed by a key of the thief's own, under the server's key id or another.
            (
                spend("x-forged", &shown(&forger, member, held)),
                "token_tampered",
            ),
            (
                spend("x-unknown-key", &shown(&unknown, member, held)),
                "token_unknown_key",
            ),
            // The member's real token after it expired, or before it was made.
            (
                spend(
                    "x-expired",
                    &token_at(issuer, member, held - TimeDelta::minutes(10)),
                ),
                "token_expired",
            ),
            (
                spend(
                    "x-early",
                    &token_at(issuer, member, held + TimeDelta::minutes(5)),
                ),
                "token_not_yet_valid",
            ),
            // Dated ahead of the server's clock, or longer ago than a counter may hold
            // offline, each with a token valid then.
            (
                hold(
                    "x-ahead",
                    member,
                    50,
                    &shown(issuer, member, ahead),
                    ahead,
                    &counter,
                ),
                "hold_time_out_of_window",
            ),
            (
                hold(
                    "x-long-ago",
                    member,
                    50,
                    &shown(issuer, member, long_ago),
                    long_ago,
                    &counter,
                ),
                "hold_time_out_of_window",
            ),
            // More than the policy allows in one redemption.
            (
                hold(
                    "x-too-much",
                    member,
                    policy_figure("max_amount") + 1,
                    &shown(issuer, member, held),
                    held,
                    &counter,
                ),
                "amount_over_limit",
            ),
            // A member the operator revoked, with their own real token.
            (
                hold(
                    "x-revoked",
                    leaver,
                    1,
                    &shown(issuer, leaver, held),
                    held,
                    &counter,
                ),
                "member_revoked",
            ),
        ],
    )
    .await;

    // The member's own token, shown at the counter: taken.
    let real = shown(issuer, member, held);
    let taken = accepted(&counter, spend("h-1", &real)).await;
    assert_eq!(taken["balance"], earned - 50, "{taken}");
    // Shown again for a second hold: refused and kept as evidence of the attempt; nothing else
    // changes, nothing is spent.
    let before = central.snapshot();
    let again = counter.sync(vec![spend("x-reused", &real)]).await;
    assert_eq!(
        again.outcomes(),
        vec![("rejected".to_owned(), "token_reused".to_owned())],
        "{}",
        again.body
    );
    assert_eq!(
        central.changes_since(&before, &["holds"]),
        Vec::<String>::new()
    );
    let holds = central.rows("holds");
    assert_eq!(holds.len(), 2, "the hold and the evidence of its reuse");
    let reused = rusqlite::types::Value::Text("token_reused".to_owned());
    assert!(holds.iter().any(|row| row.contains(&reused)));

    // Cards. The kiosk asks for a card whose PIN check is cheap to grind from its text:
    // refused, nothing recorded.
    let before = central.snapshot();
    let weak = kiosk
        .signed("POST", CARDS_PATH, card_request(member, "482915", 8))
        .await;
    assert_eq!(
        (weak.status, weak.code()),
        (400, "weak_pin_check"),
        "{}",
        weak.body
    );
    central.unchanged(&before, "a card with a weak PIN check");
    // At the cost the server asks, the kiosk that signed the member up gets the card.
    let cost = redemption_token::MIN_ISSUE_PIN_COST;
    let issued = kiosk
        .signed("POST", CARDS_PATH, card_request(member, "482915", cost))
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let card = issued.body["token"]
        .as_str()
        .expect("the card's token")
        .to_owned();
    // The server never sees the PIN, so a card spends at most the policy's card limit a day,
    // whatever the counter says it checked.
    let limit = policy_figure("offline_per_member_day_card");
    accepted(&counter, hold("c-1", member, 100, &card, now(), &counter)).await;
    refused(
        &central,
        &counter,
        hold("x-card-limit", member, limit - 99, &card, now(), &counter),
        "card_day_limit",
    )
    .await;
    // The member reports the card lost: refused from then on.
    central.cli(&["member", "revoke-card", "--member", member, "--serial", "1"]);
    refused(
        &central,
        &counter,
        hold("x-lost-card", member, 10, &card, now(), &counter),
        "card_revoked",
    )
    .await;
}

/// Once the program trusts a watch authority, a stolen counter credits no steps the member's
/// own certified, paired watch did not sign: unsigned, altered, counterfeit, another watch's
/// certificate, another member's watch, a proof replayed, a proof signed far ahead of the
/// server's clock or before its day began. The member's own watch is credited; a day ten
/// months past that it signed now is late and earns nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_counter_credits_no_steps_the_members_own_watch_did_not_sign() {
    let central = Central::start(&[]);
    let kiosk = central.stolen("kiosk-1", CENTER, "kiosk");
    let counter = central.stolen("counter-1", PHARMACY, "counter");
    let signed_up = kiosk
        .sync(vec![
            enrollment("e-1", "김영희", "010-5555-0001", None),
            pairing_at_sign_up("w-1", "PW-0042", "e-1"),
            enrollment("e-2", "박철수", "010-5555-0002", None),
            pairing_at_sign_up("w-2", "PW-0007", "e-2"),
        ])
        .await;
    assert_eq!(
        signed_up.outcomes(),
        vec![("accepted".to_owned(), String::new()); 4],
        "{}",
        signed_up.body
    );
    let member = signed_up.body["results"][0]["member_number"]
        .as_str()
        .expect("a member number")
        .to_owned();
    let added = central.cli(&["watch-ca", "add", "--demo"]);
    assert!(added.contains("added"), "{added}");
    let ca = WatchCa::demo();
    let watch = Watch::new("PW-0042", 42, &ca);
    let theirs = Watch::new("PW-0007", 7, &ca);
    let counterfeit = Watch::new("PW-0042", 42, &WatchCa::from_seed([9; 32]));
    let signed = now() - TimeDelta::seconds(60);
    let (yesterday, day) = (days_ago(1), days_ago(2));

    // The member's own watch, yesterday's total signed a minute ago: credited.
    let proof = watch.proof(yesterday, 9_000, 1, signed);
    let report = |op_id, day, steps, proof| step_report(op_id, &member, day, steps, proof);
    let credited = accepted(
        &counter,
        report("s-1", yesterday, 9_000, Some(proof.clone())),
    )
    .await;
    assert!(credited["points"].as_u64() > Some(0), "{credited}");

    let mut borrowed = theirs.proof(day, 9_000, 4, signed);
    borrowed.serial = watch.serial.clone();
    let ten_months = TimeDelta::days(300);
    let ahead = today() + Days::new(300);
    all_refused(
        &central,
        &counter,
        vec![
            (report("x-unsigned", day, 9_000, None), "steps_unsigned"),
            // More steps than the watch signed.
            (
                report(
                    "x-altered",
                    day,
                    20_000,
                    Some(watch.proof(day, 3_000, 2, signed)),
                ),
                "steps_signature_invalid",
            ),
            // A watch certified by an authority of the thief's own.
            (
                report(
                    "x-counterfeit",
                    day,
                    9_000,
                    Some(counterfeit.proof(day, 9_000, 3, signed)),
                ),
                "watch_not_certified",
            ),
            // Another watch's real certificate under this watch's serial.
            (
                report("x-borrowed", day, 9_000, Some(borrowed)),
                "watch_not_certified",
            ),
            // Another member's watch, really signed.
            (
                report(
                    "x-their-watch",
                    day,
                    9_000,
                    Some(theirs.proof(day, 9_000, 5, signed)),
                ),
                "watch_not_paired",
            ),
            // The proof credited above, sent again under a new operation.
            (
                report("x-replayed", yesterday, 9_000, Some(proof)),
                "steps_replayed",
            ),
            // Ten months out: a total signed ten months ahead of the server's clock, a day ten
            // months ahead, a day signed ten months before it began.
            (
                report(
                    "x-signed-ahead",
                    day,
                    9_000,
                    Some(watch.proof(day, 9_000, 6, now() + ten_months)),
                ),
                "steps_time_out_of_window",
            ),
            (
                report(
                    "x-day-ahead",
                    ahead,
                    9_000,
                    Some(watch.proof(ahead, 9_000, 7, signed)),
                ),
                "steps_time_out_of_window",
            ),
            (
                report(
                    "x-signed-before",
                    day,
                    9_000,
                    Some(watch.proof(day, 9_000, 8, now() - ten_months)),
                ),
                "steps_time_out_of_window",
            ),
        ],
    )
    .await;

    // A day ten months past, signed now: late by the watch's own time. The report is kept, as
    // every late one is, and earns nothing: no ledger entry, the balance as it was.
    let past = days_ago(300);
    let before = central.snapshot();
    let late = accepted(
        &counter,
        report(
            "s-late",
            past,
            9_000,
            Some(watch.proof(past, 9_000, 9, signed)),
        ),
    )
    .await;
    assert_eq!(
        (late["points"].as_u64(), late["ignored"].as_str()),
        (Some(0), Some("late")),
        "{late}"
    );
    assert_eq!(
        central.changes_since(&before, &["step_reports", "operations", "watch_proofs"]),
        Vec::<String>::new()
    );

    // The member's own watch with its clock set back ten months, signing another day of
    // then "at its end": the server takes a report as read at most a week before it arrived,
    // so it is late all the same and earns nothing.
    let then = days_ago(301);
    let before = central.snapshot();
    let set_back = accepted(
        &counter,
        report(
            "s-set-back",
            then,
            9_000,
            Some(watch.proof(then, 9_000, 10, at_hour(then, 23))),
        ),
    )
    .await;
    assert_eq!(
        (set_back["points"].as_u64(), set_back["ignored"].as_str()),
        (Some(0), Some("late")),
        "{set_back}"
    );
    assert_eq!(
        central.changes_since(&before, &["step_reports", "operations", "watch_proofs"]),
        Vec::<String>::new()
    );
}

/// A stolen kiosk cannot move a sign-up to a day of its choosing to pass today's full lease:
/// not to a day its site had no lease while sign-up was under quota, nor outside the days an
/// offline kiosk may date one; and a stolen counter signs up nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_kiosk_signs_up_nobody_beyond_its_lease_and_a_counter_nobody_at_all() {
    let central = Central::start(&[]);
    let kiosk = central.stolen("kiosk-1", CENTER, "kiosk");
    let counter = central.stolen("counter-1", PHARMACY, "counter");
    // One place today and one tomorrow (should the server's day turn during the test).
    for day in [today(), today() + Days::new(1)] {
        let day = day.to_string();
        central.cli(&[
            "quota", "set", "--day", &day, "--site", CENTER, "--places", "1",
        ]);
    }
    // Today's place, taken.
    let person = |op_id, day| enrollment(op_id, "박철수", "010-5555-0002", Some(day));
    accepted(
        &kiosk,
        enrollment("e-1", "김영희", "010-5555-0001", Some(today())),
    )
    .await;
    all_refused(
        &central,
        &kiosk,
        vec![
            // The lease is full; moved to a day without one, or outside the window: refused.
            (person("x-full", today()), "quota_exceeded"),
            (person("x-no-lease", days_ago(3)), "no_lease"),
            (person("x-week-ago", days_ago(8)), "day_out_of_window"),
            (person("x-months-ago", days_ago(300)), "day_out_of_window"),
            (
                person("x-ahead", today() + Days::new(3)),
                "day_out_of_window",
            ),
        ],
    )
    .await;
    // A counter may not sign anybody up.
    refused(
        &central,
        &counter,
        enrollment("x-counter", "이순자", "010-5555-0003", None),
        "role",
    )
    .await;
}

/// A stolen counter pairs no watch of its own to a member without the member's token, shown
/// in its time; and, with its clock set back, voids no sale of an earlier day and takes no hold
/// "that day" once it has told the server a later number. Done right, both are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_counter_pairs_no_watch_without_the_members_token_and_voids_nothing_late() {
    let central = Central::start(&[]);
    let kiosk = central.stolen("kiosk-1", CENTER, "kiosk");
    let counter = central.stolen("counter-1", PHARMACY, "counter");
    let members = sign_up(&kiosk, &["김영희", "박철수"]).await;
    let (member, other) = (&members[0], &members[1]);
    let earned = walk(&counter, member, 2).await;
    let issuer = &central.issuer;

    // Pairing an invented watch: no token, another member's, an altered one, an expired one,
    // one of more than a week ago.
    let at = now() - TimeDelta::seconds(60);
    let long_ago = now() - TimeDelta::days(8);
    let mut altered = Token::parse(&shown(issuer, member, at)).expect("a token");
    altered.signature[10] ^= 0x40;
    let stale = token_at(issuer, member, at - TimeDelta::minutes(10));
    let pair = |op_id, token: Option<&str>, at| pairing(op_id, "PW-9999", member, token, at);
    all_refused(
        &central,
        &counter,
        vec![
            (pair("x-no-token", None, at), "pairing_needs_token"),
            (
                pair("x-theirs", Some(&shown(issuer, other, at)), at),
                "token_member_mismatch",
            ),
            (
                pair("x-altered", Some(&altered.to_text()), at),
                "token_tampered",
            ),
            (pair("x-expired", Some(&stale), at), "token_expired"),
            (
                pair(
                    "x-long-ago",
                    Some(&shown(issuer, member, long_ago)),
                    long_ago,
                ),
                "pairing_time_out_of_window",
            ),
        ],
    )
    .await;
    // With the member's own token, shown now: paired.
    accepted(&counter, pair("p-1", Some(&shown(issuer, member, at)), at)).await;

    // Two sales two days ago, numbered 10 and 11; the counter then pulls today, telling 12.
    let sale_day = days_ago(2);
    let (sold, later, evening) = (
        at_hour(sale_day, 12),
        at_hour(sale_day, 13),
        at_hour(sale_day, 20),
    );
    let sale = |op_id, at| hold(op_id, member, 10, &shown(issuer, member, at), at, &counter);
    for (op_id, seq) in [("h-1", 10), ("h-2", 11)] {
        accepted(&counter, sale(op_id, sold).numbered(Some(seq))).await;
    }
    let told = counter.pull(12).await;
    assert_eq!(told.status, 200, "{}", told.body);
    // With the clock set back to the sale's day: a void numbered after what it told today, an
    // unnumbered one, and a hold "that day" numbered after it. All were made today.
    all_refused(
        &central,
        &counter,
        vec![
            (
                void("x-void-13", "h-1", evening).numbered(Some(13)),
                "void_too_late",
            ),
            (void("x-void-unnumbered", "h-1", evening), "void_too_late"),
            (
                sale("x-hold-14", later).numbered(Some(14)),
                "hold_time_out_of_window",
            ),
        ],
    )
    .await;
    // A void it made that evening offline, numbered 12 before it told the server: taken, the
    // points back.
    let voided = accepted(&counter, void("v-12", "h-2", evening).numbered(Some(12))).await;
    assert_eq!(voided["balance"], earned - 10, "{voided}");
}

/// A request replayed, signed with a key that is not the terminal's, signed long ago, naming a
/// made-up terminal or a revoked one: refused, nothing changed; the last two from their
/// headers, before any of the body is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_forged_and_unknown_requests_are_refused_and_change_nothing() {
    let central = Central::start(&[]);
    let thief = central.stolen("kiosk-1", CENTER, "kiosk");
    let revoked = central.stolen("kiosk-2", CENTER, "kiosk");
    let body = serde_json::to_vec(&SyncRequest {
        operations: vec![enrollment("e-1", "김영희", "010-5555-0001", None)],
    })
    .expect("a body");

    // Signed by the stolen key: taken.
    let headers = thief.headers("POST", SYNC_PATH, &body);
    let first = thief
        .send("POST", SYNC_PATH, body.clone(), Some(&headers))
        .await;
    first.accepted();
    let before = central.snapshot();
    // The same request again, byte for byte.
    let replayed = thief
        .send("POST", SYNC_PATH, body.clone(), Some(&headers))
        .await;
    assert_eq!(
        (replayed.status, replayed.code()),
        (401, "replayed_nonce"),
        "{}",
        replayed.body
    );
    // The terminal's id with a key of the thief's own (a copy of the database without its
    // secrets folder).
    let keyless = Terminal {
        key: SigningKey::from_bytes(&[0x42; 32]),
        ..thief.clone()
    };
    let forged = keyless
        .sync(vec![enrollment("e-2", "박철수", "010-5555-0002", None)])
        .await;
    assert_eq!(
        (forged.status, forged.code()),
        (401, "bad_signature"),
        "{}",
        forged.body
    );
    // Signed ten minutes ago.
    let old = signing::sign(
        &thief.key,
        "POST",
        SYNC_PATH,
        &thief.id,
        Utc::now().timestamp() - 600,
        &nonce(),
        &body,
    );
    let stale = thief
        .send("POST", SYNC_PATH, body.clone(), Some(&old))
        .await;
    assert_eq!(
        (stale.status, stale.code()),
        (401, "stale_timestamp"),
        "{}",
        stale.body
    );
    // No signature at all.
    let unsigned = thief.send("POST", SYNC_PATH, body.clone(), None).await;
    assert_eq!(
        (unsigned.status, unsigned.code()),
        (401, "unauthenticated"),
        "{}",
        unsigned.body
    );
    // A made-up terminal: over a connection that declares a 1 MiB body and never sends it,
    // answered from the headers and closed.
    let made_up = Terminal {
        id: "T-999999".to_owned(),
        ..thief.clone()
    };
    let answer = headers_only(&central, &made_up).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("unknown_terminal"), "{answer}");
    central.unchanged(&before, "replayed, forged, stale and unknown requests");

    // A stolen terminal the operator revoked: its requests are refused, from their headers.
    let answer = revoked
        .sync(vec![enrollment("e-3", "이순자", "010-5555-0003", None)])
        .await;
    answer.accepted();
    let revoked_out = central.cli(&["terminal", "revoke", "--terminal", &revoked.id]);
    assert!(revoked_out.contains(&revoked.id), "{revoked_out}");
    let before = central.snapshot();
    let locked_out = revoked
        .sync(vec![enrollment("e-4", "최민수", "010-5555-0004", None)])
        .await;
    assert_eq!(
        (locked_out.status, locked_out.code()),
        (403, "revoked_terminal"),
        "{}",
        locked_out.body
    );
    let answer = headers_only(&central, &revoked).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("revoked_terminal"), "{answer}");
    central.unchanged(&before, "a revoked terminal's requests");
}

/// The head of a sync request signed by `terminal` that declares a 1 MiB body.
fn declared_head(terminal: &Terminal) -> String {
    let signed: String = terminal
        .headers("POST", SYNC_PATH, b"")
        .pairs()
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    format!(
        "POST {SYNC_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 1048576\r\n{signed}\r\n"
    )
}

/// Sends [`declared_head`] and none of the body; returns what the server answered before it
/// closed the connection.
async fn headers_only(central: &Central, terminal: &Terminal) -> String {
    let mut connection = tls_connection(&central.addr, &terminal.server_key).await;
    connection
        .write_all(declared_head(terminal).as_bytes())
        .await
        .expect("send the headers");
    connection.flush().await.expect("send the headers");
    until_closed(&mut connection, Duration::from_secs(60)).await
}

/// Confirms `count` sign-ups at the kiosk whose database is `db`, as its clerk would.
fn queue_sign_ups(db: &Path, count: usize) -> Vec<String> {
    let mut store = terminal_store::Store::open(db).expect("open the kiosk's database");
    (0..count)
        .map(|i| {
            let op_id = format!("honest-{i:04}");
            let person = kiosk_core::Enrollment {
                name: format!("회원{i}"),
                birth_date: "1950-04-01".parse().expect("a date"),
                phone: format!("010{i:08}"),
                residency: kiosk_core::Residency::Lives,
                age: 76,
            };
            store
                .record_enrollment(&op_id, CENTER, &person, now())
                .expect("confirm a sign-up");
            op_id
        })
        .collect()
}

/// The flooding client, over TLS: a stolen terminal's connection declares a 1 MiB body and
/// stalls, another dribbles its headers a byte at a time. Meanwhile an honest kiosk's
/// `palpal sync` goes through in one request; then both connections are cut, and nothing of
/// theirs is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_dribbling_connections_are_cut_while_an_honest_kiosk_syncs() {
    let central = Central::start(&["--metrics-listen", "127.0.0.1:0"]);
    let thief = central.stolen("kiosk-stolen", CENTER, "kiosk");
    let honest = central.provision("kiosk-honest", CENTER, "kiosk");
    let queued = queue_sign_ups(&honest, 20);

    // 14 bytes of a body declared 1 MiB, then nothing.
    let mut stalled = tls_connection(&central.addr, &thief.server_key).await;
    let head = declared_head(&thief);
    stalled
        .write_all(head.as_bytes())
        .await
        .expect("send the headers");
    stalled
        .write_all(b"{\"operations\"")
        .await
        .expect("send a piece");
    stalled.flush().await.expect("send a piece");
    central.wait_for_metric("palpal_http_reading 1\n").await;
    // Headers a byte at a time, a few a second.
    let dribbling = {
        let (addr, key) = (central.addr.clone(), thief.server_key.clone());
        let head = head.into_bytes();
        tokio::spawn(async move {
            let mut connection = tls_connection(&addr, &key).await;
            let mut whole = true;
            for byte in head {
                let sent = connection.write_all(&[byte]).await;
                if sent.is_err() || connection.flush().await.is_err() {
                    whole = false;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            (
                whole,
                until_closed(&mut connection, Duration::from_secs(60)).await,
            )
        })
    };

    // The honest kiosk syncs with the real command line: one request, all taken.
    let db = honest.clone();
    let out = tokio::task::spawn_blocking(move || run("palpal", &["sync", "--db", utf8(&db)]))
        .await
        .expect("palpal sync ran");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out, "accepted"), 20);
    assert_eq!(summary(&out, "requests"), 1, "nothing refused it for load");

    // The stalled body is cut, and its connection closed.
    let cut = until_closed(&mut stalled, Duration::from_secs(60)).await;
    assert!(cut.starts_with("HTTP/1.1 408"), "{cut}");
    assert!(cut.contains("request_too_slow"), "{cut}");
    // So are the dribbled headers, before they were whole (with a 408, or without a word).
    let (whole, dribbled) = dribbling.await.expect("the dribbling connection");
    assert!(!whole, "the dribbled headers were taken whole: {dribbled}");
    assert!(
        dribbled.is_empty() || dribbled.starts_with("HTTP/1.1 408"),
        "{dribbled}"
    );
    central.wait_for_metric("palpal_http_reading 0\n").await;
    let (_, metrics) = central.metrics().await;
    assert!(
        metrics.contains("palpal_refusals_total{code=\"request_too_slow\"}"),
        "{metrics}"
    );
    // The members are the honest kiosk's sign-ups, each once.
    let members = central.rows("members");
    assert_eq!(members.len(), queued.len());
    for op_id in &queued {
        let text = rusqlite::types::Value::Text(op_id.clone());
        assert_eq!(members.iter().filter(|m| m.contains(&text)).count(), 1);
    }
}

/// Someone in between with another key: `palpal provision` pinned to the key the operator
/// gave refuses a server that shows another, says so and which key it showed, and the code
/// stays unused; with the server's own key the same code provisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_refuses_a_server_with_another_key_and_keeps_the_code() {
    let central = Central::start(&[]);
    let (code, server_key) = central.code(CENTER, "kiosk");
    let (_, _, other_key) = certificate(central.dir.path(), "impostor");
    assert_ne!(other_key, server_key);
    let provision = |db: &Path, key: &str| {
        run(
            "palpal",
            &[
                "provision",
                "--db",
                utf8(db),
                "--server",
                &central.url,
                "--code",
                &code,
                "--server-key",
                key,
            ],
        )
    };
    let before = central.snapshot();
    let db = central.dir.path().join("kiosk.sqlite");
    let refused = provision(&db, &other_key);
    assert!(!refused.status.success());
    let said = text(&refused.stderr);
    assert!(
        said.contains("다른 키")
            && said.contains("another key")
            && said.contains(&server_key)
            && said.contains("The code was not used"),
        "{said}"
    );
    central.unchanged(&before, "a provisioning refused for the server's key");
    let taken = provision(&central.dir.path().join("kiosk-2.sqlite"), &server_key);
    assert!(taken.status.success(), "{}", text(&taken.stderr));
    let enrolled = text(&taken.stdout);
    let id = field(&enrolled, "terminal").expect("a terminal id");
    let kiosk = Terminal::steal(&central.dir.path().join("kiosk-2.sqlite"));
    assert_eq!(kiosk.id, id);
    accepted(&kiosk, enrollment("e-1", "김영희", "010-5555-0001", None)).await;
}

/// `/metrics` is the operator's, on an address of its own: the terminals' address does not
/// serve it, to a stolen terminal's signed request or to a guessed bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_not_served_on_the_terminals_address() {
    let central = Central::start(&["--metrics-listen", "127.0.0.1:0"]);
    let thief = central.stolen("kiosk-1", CENTER, "kiosk");
    let plain = thief.send("GET", "/metrics", Vec::new(), None).await;
    assert_eq!(
        (plain.status, plain.code()),
        (404, "metrics_not_here"),
        "{}",
        plain.body
    );
    let signed = thief.signed("GET", "/metrics", Vec::new()).await;
    assert_eq!(
        (signed.status, signed.code()),
        (404, "metrics_not_here"),
        "{}",
        signed.body
    );
    let guessed = thief
        .http
        .get(format!("{}/metrics", thief.url))
        .bearer_auth("0123456789abcdef0123")
        .send()
        .await
        .expect("an answer");
    assert_eq!(guessed.status().as_u16(), 404);
    // The terminals' address serves the terminals; the operator's serves the metrics.
    let health = thief.send("GET", "/v1/health", Vec::new(), None).await;
    assert_eq!(health.status, 200, "{}", health.body);
    let (status, metrics) = central.metrics().await;
    assert_eq!(status, 200);
    assert!(metrics.contains("palpal_http_in_flight"), "{metrics}");
}
