//! The real server on 127.0.0.1:0 over SQLite on disk, driven over HTTP; terminals are
//! provisioned and revoked with the real `palpal-central` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, TimeZone as _, Utc};
use ed25519_dalek::SigningKey;
use palpal_central::clock::{Clock as _, FixedClock};
use palpal_central::http::{self, Config};
use palpal_central::store::postgres::{is_url as postgres_url, PostgresBackend};
use palpal_central::store::{published_policies, Backend, SqliteBackend};
use redemption_token::{IssuerKey, MemberNo};
use serde_json::{json, Value};
use sync_protocol::signing;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The server's own disk full, on a real tmpfs where this process may mount one.
#[path = "server/disk_full.rs"]
mod disk_full;

/// The in-memory server the simulation runs on answers as the store does.
#[path = "server/memory.rs"]
mod memory;

/// The operator console on its own listener, beside the terminals' API.
#[path = "server/console.rs"]
mod console;

fn launch_morning() -> DateTime<Utc> {
    // 2025-12-03 10:00 in Seoul.
    Utc.with_ymd_and_hms(2025, 12, 3, 1, 0, 0)
        .single()
        .unwrap_or_default()
}

struct Harness {
    _dir: tempfile::TempDir,
    /// What `--db` takes (a path or a URL).
    db: PathBuf,
    test_db: TestDb,
    base: String,
    /// The operator console's listener (`serve --console-listen`).
    console: String,
    clock: Arc<FixedClock>,
    client: reqwest::Client,
    nonces: AtomicU64,
}

struct Term {
    id: String,
    key: SigningKey,
}

#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<String>,
}

/// The database the tests' servers run on: a SQLite file, or with `PALPAL_TEST_DB=postgres`
/// (as `make test` runs this suite a second time) a PostgreSQL cluster of the test's own.
/// Either way the same tests, against the same rules.
enum TestDb {
    Sqlite(PathBuf),
    Postgres(test_postgres::Cluster),
    /// A PostgreSQL database another harness's cluster holds (a second server on it).
    PostgresAt(String),
}

fn on_postgres() -> bool {
    std::env::var("PALPAL_TEST_DB").is_ok_and(|engine| engine == "postgres")
}

/// The data key file of this test process's PostgreSQL databases (one for all of them; each
/// database records it), given to the server and to every command.
fn postgres_data_key() -> PathBuf {
    std::env::temp_dir().join(format!("palpal-test-data-{}.key", std::process::id()))
}

/// Runs `f` (which blocks on PostgreSQL's synchronous client) on a thread of its own: the
/// tests are async, and that client may not block a runtime's thread.
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(f)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn pg_client(url: &str) -> Result<postgres::Client, postgres::Error> {
    postgres::Client::connect(url, postgres::NoTls)
}

impl TestDb {
    /// What `--db` takes.
    fn arg(&self) -> String {
        match self {
            TestDb::Sqlite(path) => path.to_string_lossy().into_owned(),
            TestDb::Postgres(cluster) => cluster.url(),
            TestDb::PostgresAt(url) => url.clone(),
        }
    }

    /// The first row of `sql` (SQL both engines read), as integers.
    fn row(&self, sql: &str) -> Result<Vec<i64>, Box<dyn std::error::Error>> {
        Ok(match self {
            TestDb::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path)?;
                let mut stmt = conn.prepare(sql)?;
                let width = stmt.column_count();
                stmt.query_row([], |row| {
                    (0..width)
                        .map(|i| row.get::<_, Option<i64>>(i).map(Option::unwrap_or_default))
                        .collect::<rusqlite::Result<Vec<i64>>>()
                })?
            }
            TestDb::Postgres(_) | TestDb::PostgresAt(_) => blocking(|| {
                let row = pg_client(&self.arg())?.query_one(sql, &[])?;
                Ok::<_, postgres::Error>(
                    (0..row.len())
                        .map(|i| row.get::<_, Option<i64>>(i).unwrap_or_default())
                        .collect(),
                )
            })?,
        })
    }

    /// Runs `sql`, changing what it changes.
    fn execute(&self, sql: &str) -> Result<(), Box<dyn std::error::Error>> {
        match self {
            TestDb::Sqlite(path) => rusqlite::Connection::open(path)?.execute_batch(sql)?,
            TestDb::Postgres(_) | TestDb::PostgresAt(_) => {
                blocking(|| pg_client(&self.arg())?.batch_execute(sql))?
            }
        }
        Ok(())
    }

    /// Another connection that holds the database's writes until released (SQLite's write
    /// lock; on PostgreSQL the table every write group starts with).
    fn hold_writes(&self) -> Result<WriteLock, Box<dyn std::error::Error>> {
        Ok(match self {
            TestDb::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path)?;
                conn.execute_batch("BEGIN IMMEDIATE")?;
                WriteLock::Sqlite(conn)
            }
            TestDb::Postgres(_) | TestDb::PostgresAt(_) => WriteLock::Postgres(blocking(|| {
                let mut client = pg_client(&self.arg())?;
                client.batch_execute("BEGIN; LOCK TABLE nonces IN ACCESS EXCLUSIVE MODE")?;
                Ok::<_, postgres::Error>(client)
            })?),
        })
    }

    /// The rows of `sql` selecting a text, an integer and a boolean.
    fn rows3(&self, sql: &str) -> Result<Vec<StoredPairing>, Box<dyn std::error::Error>> {
        Ok(match self {
            TestDb::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path)?;
                let mut stmt = conn.prepare(sql)?;
                let rows = stmt
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                rows
            }
            TestDb::Postgres(_) | TestDb::PostgresAt(_) => blocking(|| {
                Ok::<_, postgres::Error>(
                    pg_client(&self.arg())?
                        .query(sql, &[])?
                        .iter()
                        .map(|row| (row.get(0), row.get(1), row.get(2)))
                        .collect(),
                )
            })?,
        })
    }
}

/// A connection holding a database's writes ([`TestDb::hold_writes`]).
enum WriteLock {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

impl WriteLock {
    fn release(self) -> Result<(), Box<dyn std::error::Error>> {
        match self {
            WriteLock::Sqlite(conn) => conn.execute_batch("ROLLBACK")?,
            // Closed on that thread too (closing blocks as well).
            WriteLock::Postgres(mut client) => blocking(move || client.batch_execute("ROLLBACK"))?,
        }
        Ok(())
    }
}

async fn start(config: Config) -> Result<Harness, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let test_db = if on_postgres() {
        TestDb::Postgres(tokio::task::spawn_blocking(test_postgres::Cluster::start).await??)
    } else {
        TestDb::Sqlite(dir.path().join("central.db"))
    };
    start_on(config, test_db, dir).await
}

/// A server on `test_db`, its files in `dir`.
async fn start_on(
    config: Config,
    test_db: TestDb,
    dir: tempfile::TempDir,
) -> Result<Harness, Box<dyn std::error::Error>> {
    let clock = Arc::new(FixedClock::new(launch_morning()));
    let policies = Arc::new(published_policies()?);
    let backend: Arc<dyn Backend> = match &test_db {
        TestDb::Sqlite(db) => Arc::new(SqliteBackend::new(db, policies)),
        TestDb::Postgres(_) | TestDb::PostgresAt(_) => Arc::new(PostgresBackend::new(
            &test_db.arg(),
            policies,
            postgres_data_key(),
        )),
    };
    let db = PathBuf::from(test_db.arg());
    let router = http::router(Arc::clone(&backend), config, clock.clone())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let console = palpal_central::console::router(
        backend,
        clock.clone(),
        palpal_central::console::ConsoleConfig {
            terminal_url: Some(base.clone()),
            ..palpal_central::console::ConsoleConfig::default()
        },
    );
    tokio::spawn(http::serve(listener, router));
    let console_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let console_base = format!("http://{}", console_listener.local_addr()?);
    tokio::spawn(http::serve_console(console_listener, console, None));
    Ok(Harness {
        _dir: dir,
        db,
        test_db,
        base,
        console: console_base,
        clock,
        client: {
            palpal_central::tls::install_default_provider();
            reqwest::Client::new()
        },
        nonces: AtomicU64::new(0),
    })
}

/// The real `palpal-central` with `args`, given the PostgreSQL test databases' data key
/// when `--db` is one of them.
fn central_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_palpal-central"));
    if args.iter().any(|arg| postgres_url(arg)) {
        command.env("PALPAL_DATA_KEY_FILE", postgres_data_key());
    }
    command.args(args);
    command
}

fn cli(args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let output = central_command(args).output()?;
    if !output.status.success() {
        return Err(format!(
            "palpal-central {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// Runs the real `palpal-central` expecting it to fail; returns what it said on stderr.
fn cli_fails(args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let output = central_command(args).output()?;
    if output.status.success() {
        return Err(format!("palpal-central {args:?} succeeded").into());
    }
    Ok(String::from_utf8(output.stderr)?)
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

async fn answer(response: reqwest::Response) -> Result<Answer, Box<dyn std::error::Error>> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // JSON, or the text as it came (`/metrics`).
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Answer {
        status,
        body,
        retry_after,
    })
}

impl Harness {
    fn db(&self) -> &str {
        self.db.to_str().unwrap_or_default()
    }

    fn add_terminal(&self, role: &str) -> Result<String, Box<dyn std::error::Error>> {
        let out = cli(&[
            "terminal",
            "add",
            "--db",
            self.db(),
            "--site",
            "성북구 보건소",
            "--role",
            role,
        ])?;
        Ok(field(&out, "code").ok_or("no code printed")?.to_owned())
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> Result<Answer, Box<dyn std::error::Error>> {
        answer(
            self.client
                .post(format!("{}{path}", self.base))
                .body(body)
                .send()
                .await?,
        )
        .await
    }

    async fn get(&self, path: &str) -> Result<Answer, Box<dyn std::error::Error>> {
        answer(
            self.client
                .get(format!("{}{path}", self.base))
                .send()
                .await?,
        )
        .await
    }

    async fn metrics(&self) -> Result<String, Box<dyn std::error::Error>> {
        Ok(self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?)
    }

    async fn enroll(&self, code: &str, seed: u8) -> Result<Term, Box<dyn std::error::Error>> {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let body = json!({
            "code": code,
            "public_key": signing::encode_public_key(&key.verifying_key()),
            "name": format!("단말기 {seed}"),
        });
        let answer = self
            .post("/v1/terminals/enroll", serde_json::to_vec(&body)?)
            .await?;
        if answer.status != 200 {
            return Err(format!("enrollment failed: {} {}", answer.status, answer.body).into());
        }
        let id = answer.body["terminal_id"]
            .as_str()
            .ok_or("no terminal id")?
            .to_owned();
        Ok(Term { id, key })
    }

    async fn terminal(&self, role: &str, seed: u8) -> Result<Term, Box<dyn std::error::Error>> {
        let code = self.add_terminal(role)?;
        self.enroll(&code, seed).await
    }

    fn nonce(&self) -> String {
        format!("nonce-{:016}", self.nonces.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends `body` to /v1/sync signed by `term` at `timestamp` with `nonce`.
    async fn send_signed(
        &self,
        term: &Term,
        body: &[u8],
        timestamp: i64,
        nonce: &str,
    ) -> Result<Answer, Box<dyn std::error::Error>> {
        let headers = signing::sign(
            &term.key, "POST", "/v1/sync", &term.id, timestamp, nonce, body,
        );
        let mut request = self
            .client
            .post(format!("{}/v1/sync", self.base))
            .body(body.to_vec());
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        answer(request.send().await?).await
    }

    /// Sends `operations` as a fresh, correctly signed sync request.
    async fn sync(
        &self,
        term: &Term,
        operations: Value,
    ) -> Result<Answer, Box<dyn std::error::Error>> {
        let body = serde_json::to_vec(&json!({ "operations": operations }))?;
        let now = self.clock.now().timestamp();
        self.send_signed(term, &body, now, &self.nonce()).await
    }

    fn count(&self, table: &str) -> Result<i64, Box<dyn std::error::Error>> {
        Ok(self.test_db.row(&format!("SELECT count(*) FROM {table}"))?[0])
    }
}

fn enrollment(op_id: &str, name: &str) -> Value {
    json!({
        "op_id": op_id,
        "kind": "enrollment",
        "payload": { "name": name, "birth_date": "1950-04-01", "phone": "010-1234-5678" },
    })
}

fn step_report(op_id: &str, member: &str, steps: u32) -> Value {
    json!({
        "op_id": op_id,
        "kind": "step_report",
        "payload": {
            "member_number": member,
            "day": "2025-12-02",
            "steps": steps,
            "reported_at": "2025-12-02T21:00:00+09:00",
        },
    })
}

fn result(answer: &Answer, index: usize) -> &Value {
    &answer.body["results"][index]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrollment_code_works_once() -> TestResult {
    let h = start(Config::default()).await?;
    let code = h.add_terminal("kiosk")?;
    let key = SigningKey::from_bytes(&[1; 32]);
    let hex: String = key
        .verifying_key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let body = json!({ "code": code.to_lowercase(), "public_key": hex, "name": "1번 키오스크" });
    let first = h
        .post("/v1/terminals/enroll", serde_json::to_vec(&body)?)
        .await?;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["terminal_id"], "T-000001");
    assert_eq!(first.body["site"], "성북구 보건소");
    assert_eq!(first.body["role"], "kiosk");

    let again = h
        .post("/v1/terminals/enroll", serde_json::to_vec(&body)?)
        .await?;
    assert_eq!(again.status, 403);
    assert_eq!(again.body["code"], "bad_code");
    assert!(again.body["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("등록 코드가")));
    assert!(again.body["message_en"].as_str().is_some());

    let wrong = json!({ "code": "0000-0000-0000-0000", "public_key": hex, "name": "x" });
    let wrong = h
        .post("/v1/terminals/enroll", serde_json::to_vec(&wrong)?)
        .await?;
    assert_eq!(
        (wrong.status, wrong.body["code"].clone()),
        (403, json!("bad_code"))
    );

    let malformed = h
        .post("/v1/terminals/enroll", b"{\"code\":".to_vec())
        .await?;
    assert_eq!(
        (malformed.status, malformed.body["code"].clone()),
        (400, json!("invalid_request"))
    );
    let bad_key = json!({ "code": h.add_terminal("kiosk")?, "public_key": "AAAA", "name": "x" });
    let bad_key = h
        .post("/v1/terminals/enroll", serde_json::to_vec(&bad_key)?)
        .await?;
    assert_eq!(bad_key.status, 400);

    let listed = cli(&["terminal", "list", "--db", h.db()])?;
    assert!(listed.starts_with("terminal\tsite\trole\tstate\tname\tlast seen\t"));
    assert!(listed.contains("T-000001\t성북구 보건소\tkiosk\tenrolled\t1번 키오스크\t"));
    assert!(listed.contains("T-000002\t성북구 보건소\tkiosk\twaiting\t\t-\t-\t-\t-\t-"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operation_is_applied_once() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.terminal("kiosk", 1).await?;

    let first = h
        .sync(&kiosk, json!([enrollment("op-1", "김영희")]))
        .await?;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(result(&first, 0)["status"], "accepted");
    assert_eq!(result(&first, 0)["member_number"], "PP-00000001");

    let again = h
        .sync(&kiosk, json!([enrollment("op-1", "김영희")]))
        .await?;
    assert_eq!(result(&again, 0)["status"], "duplicate");
    assert_eq!(result(&again, 0)["member_number"], "PP-00000001");

    // The same person signed up again under a new operation id: still one member.
    let same_person = h
        .sync(&kiosk, json!([enrollment("op-2", "김영희")]))
        .await?;
    assert_eq!(result(&same_person, 0)["status"], "duplicate");
    assert_eq!(result(&same_person, 0)["member_number"], "PP-00000001");
    assert_eq!(h.count("members")?, 1);

    let steps = h
        .sync(&kiosk, json!([step_report("op-3", "PP-00000001", 9000)]))
        .await?;
    assert_eq!(result(&steps, 0)["status"], "accepted", "{}", steps.body);
    assert_eq!(result(&steps, 0)["points"], 100);
    let resent = h
        .sync(
            &kiosk,
            json!([
                step_report("op-3", "PP-00000001", 9000),
                step_report("op-3", "PP-00000001", 9000)
            ]),
        )
        .await?;
    assert_eq!(result(&resent, 0)["status"], "duplicate");
    assert_eq!(result(&resent, 1)["status"], "duplicate");
    // A higher count for the same day from a new operation earns nothing more.
    let higher = h
        .sync(&kiosk, json!([step_report("op-4", "PP-00000001", 12000)]))
        .await?;
    assert_eq!(result(&higher, 0)["status"], "accepted");
    assert_eq!(result(&higher, 0)["points"], 0);

    assert_eq!(h.count("step_reports")?, 2);
    assert_eq!(h.count("ledger_entries")?, 1);
    assert_eq!(h.count("operations")?, 4);
    Ok(())
}

/// The same operations sent by `term` to `a` and `b` at the same moment.
async fn both(
    a: &Harness,
    b: &Harness,
    term: &Term,
    ops: Vec<Value>,
) -> Result<(Answer, Answer), Box<dyn std::error::Error>> {
    let (first, second) = tokio::join!(a.sync(term, json!(ops)), b.sync(term, json!(ops)));
    Ok((first?, second?))
}

/// A server, and on PostgreSQL a second one on the same database, as a second process would
/// be (on SQLite, with its one writer, none: the tests send to the first twice).
async fn second_server() -> Result<(Harness, Option<Harness>), Box<dyn std::error::Error>> {
    let a = start(Config::default()).await?;
    let b = match &a.test_db {
        TestDb::Sqlite(_) => None,
        db => Some(
            start_on(
                Config::default(),
                TestDb::PostgresAt(db.arg()),
                tempfile::tempdir()?,
            )
            .await?,
        ),
    };
    // A terminal's nonces are its own whichever server it sends to.
    if let Some(b) = &b {
        b.nonces.store(1_000_000, Ordering::Relaxed);
    }
    Ok((a, b))
}

/// Two server processes on one PostgreSQL database behave as one: the same batches sent to
/// both at the same moment (a terminal retrying on the other after a timeout) are applied
/// once each, every operation accepted by one and answered `duplicate` by the other, and
/// every member's ledger is what points-core computes over their reports. (Each server has
/// its own writer and connections, as a process of its own has.) On SQLite, which has one
/// writer, the same batches sent to one server twice at once are checked the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_apply_each_operation_once() -> TestResult {
    let (a, b) = second_server().await?;
    let b = b.as_ref().unwrap_or(&a);
    let kiosk = a.terminal("kiosk", 1).await?;
    let counter = a.terminal("counter", 2).await?;
    let members: i64 = 12;
    let once = |first: &Answer, second: &Answer, n: usize| {
        assert_eq!(
            (first.status, second.status),
            (200, 200),
            "{} {}",
            first.body,
            second.body
        );
        for i in 0..n {
            let mut statuses = [
                result(first, i)["status"].as_str().unwrap_or_default(),
                result(second, i)["status"].as_str().unwrap_or_default(),
            ];
            statuses.sort_unstable();
            assert_eq!(
                statuses,
                ["accepted", "duplicate"],
                "{} {}",
                first.body,
                second.body
            );
        }
    };
    let sign_ups: Vec<Value> = (0..members)
        .map(|i| enrollment(&format!("e-{i}"), &format!("회원{i}")))
        .collect();
    let (first, second) = both(&a, b, &kiosk, sign_ups.clone()).await?;
    once(&first, &second, sign_ups.len());
    assert_eq!(a.count("members")?, members);
    // The member numbers given (a sign-up tried again after meeting the other server's may
    // leave a number unused: numbers are unique, not consecutive).
    let numbers: Vec<i64> = (0..usize::try_from(members)?)
        .map(|i| {
            result(&first, i)["member_number"]
                .as_str()
                .and_then(|n| n.strip_prefix("PP-"))
                .and_then(|n| n.parse().ok())
                .unwrap_or_default()
        })
        .collect();

    // Six days of steps for each member, in batches that both servers get at once.
    let days = [
        "2025-11-27",
        "2025-11-28",
        "2025-11-29",
        "2025-11-30",
        "2025-12-01",
        "2025-12-02",
    ];
    let mut reports = Vec::new();
    for (d, day) in days.iter().enumerate() {
        for (i, m) in numbers.iter().enumerate() {
            let steps = 6_000 + 1_000 * u32::try_from((i + d) % 5)?;
            reports.push((*m, *day, steps));
        }
    }
    for chunk in reports.chunks(18) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|(m, day, steps)| {
                json!({
                    "op_id": format!("s-{m}-{day}"),
                    "kind": "step_report",
                    "payload": {
                        "member_number": format!("PP-{m:08}"), "day": day, "steps": steps,
                        "reported_at": format!("{day}T21:00:00+09:00"),
                    },
                })
            })
            .collect();
        let (first, second) = both(&a, b, &counter, ops).await?;
        once(&first, &second, chunk.len());
    }
    assert_eq!(a.count("step_reports")?, i64::try_from(reports.len())?);
    let policies = published_policies()?;
    for &m in &numbers {
        let mut ledger = points_core::Ledger::new("1950-04-01".parse()?);
        let mut expected = 0i64;
        for (_, day, steps) in reports.iter().filter(|(n, _, _)| *n == m) {
            let report = points_core::StepReport {
                reported_at: DateTime::parse_from_rfc3339(&format!("{day}T21:00:00+09:00"))?,
                day: day.parse()?,
                steps: *steps,
            };
            for entry in ledger.apply(&policies, &report).entries() {
                expected += i64::from(entry.points);
            }
        }
        let stored = a.test_db.row(&format!(
            "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT),
                    (SELECT credited FROM balances WHERE member_id = {m})
             FROM ledger_entries WHERE member_id = {m}"
        ))?;
        assert!(expected > 0);
        assert_eq!(stored, vec![expected, expected], "member {m}");
    }
    Ok(())
}

/// A counter pulling by cursor from either of two server processes while both commit step
/// reports at the same moment sees every change: a change is numbered by its transaction's
/// id and a pull reads only the changes of transactions older than any still running, so no
/// change that commits later gets a lower number than one a pull already passed. At the end the balances the counter pulled are
/// the database's, member by member. (On SQLite, one server, pulls racing its one writer.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_racing_commits_on_two_servers_miss_no_change() -> TestResult {
    let (a, b) = second_server().await?;
    let b = b.as_ref().unwrap_or(&a);
    let kiosk = a.terminal("kiosk", 1).await?;
    let counter = a.terminal("counter", 2).await?;
    let reader = a.terminal("counter", 3).await?;
    let members: usize = 16;
    let sign_ups: Vec<Value> = (0..members)
        .map(|i| enrollment(&format!("e-{i}"), &format!("회원{i}")))
        .collect();
    let signed_up = a.sync(&kiosk, json!(sign_ups)).await?;
    assert_eq!(signed_up.status, 200, "{}", signed_up.body);
    let numbers: Vec<String> = (0..members)
        .map(|i| {
            result(&signed_up, i)["member_number"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();

    // Writers: 20 rounds, each a batch of reports to each server at once, every member
    // earning more in every round.
    let writing = async {
        for round in 0..20u32 {
            let batch = |half: usize| -> Vec<Value> {
                numbers
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 2 == half)
                    .map(|(_, number)| {
                        let day = chrono::NaiveDate::from_ymd_opt(2025, 11, 1).unwrap_or_default()
                            + chrono::Days::new(u64::from(round));
                        json!({
                            "op_id": format!("s-{number}-{round}"),
                            "kind": "step_report",
                            "payload": {
                                "member_number": number, "day": day.to_string(),
                                "steps": 8_000 + round,
                                "reported_at": format!("{day}T21:00:00+09:00"),
                            },
                        })
                    })
                    .collect()
            };
            let (first, second) = tokio::join!(
                a.sync(&counter, json!(batch(0))),
                b.sync(&counter, json!(batch(1)))
            );
            for answer in [first?, second?] {
                assert_eq!(answer.status, 200, "{}", answer.body);
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    // The reader: pulls again and again, from one server then the other, with its cursor.
    let done = std::sync::atomic::AtomicBool::new(false);
    let reading = async {
        let mut cursor = Value::Null;
        let mut seen: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
        let mut pulls = 0u32;
        loop {
            let finished = done.load(Ordering::Relaxed);
            let server = if pulls.is_multiple_of(2) { &a } else { b };
            pulls += 1;
            let page = server
                .pull(&reader, json!({ "cursor": cursor, "limit": 7 }))
                .await?;
            assert_eq!(page.status, 200, "{}", page.body);
            for balance in page.body["balances"].as_array().into_iter().flatten() {
                seen.insert(
                    balance["member_number"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    balance["balance"].as_i64().unwrap_or(-1),
                );
            }
            cursor = page.body["cursor"].clone();
            // After the writers are done, read until a page says there is no more.
            if finished && page.body["more"] == false {
                return Ok::<_, Box<dyn std::error::Error>>((seen, pulls));
            }
        }
    };
    let (wrote, read) = tokio::join!(
        async {
            let wrote = writing.await;
            done.store(true, Ordering::Relaxed);
            wrote
        },
        reading
    );
    wrote?;
    let (seen, pulls) = read?;
    assert!(pulls > 4, "the reader pulled only {pulls} times");
    for number in &numbers {
        let id = number.trim_start_matches("PP-").parse::<i64>()?;
        let stored = a.test_db.row(&format!(
            "SELECT credited - spent FROM balances WHERE member_id = {id}"
        ))?;
        assert!(stored[0] > 0);
        assert_eq!(seen.get(number), Some(&stored[0]), "member {number}");
    }
    Ok(())
}

/// PostgreSQL stopped as a crash would (`pg_ctl stop -m immediate`) in the middle of a
/// kiosk's drain, then started again: the server answers with errors meanwhile (the kiosk
/// keeps its work and sends it again), makes its connections again by itself, and every
/// sign-up is on the server exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_drain_loses_nothing_and_doubles_nothing() -> TestResult {
    let cluster = tokio::task::spawn_blocking(test_postgres::Cluster::start).await??;
    let mut h = start_on(
        Config::default(),
        TestDb::Postgres(cluster),
        tempfile::tempdir()?,
    )
    .await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let batches: Vec<Vec<Value>> = (0..12)
        .map(|b| {
            (0..10)
                .map(|i| enrollment(&format!("e-{b}-{i}"), &format!("회원{b}-{i}")))
                .collect()
        })
        .collect();
    let mut refused = 0;
    for (b, batch) in batches.iter().enumerate() {
        if b == 5 {
            let TestDb::Postgres(cluster) = &mut h.test_db else {
                return Err("a PostgreSQL harness".into());
            };
            blocking(|| cluster.stop_immediate())?;
            // While it is down a batch is refused as the database out of reach, to be sent
            // again shortly, and nothing is taken.
            let answer = h.sync(&kiosk, json!(batch)).await?;
            assert_eq!(answer.status, 503, "{}", answer.body);
            assert_eq!(answer.body["code"], "database_unavailable");
            assert_eq!(answer.retry_after.as_deref(), Some("2"));
            refused += 1;
            let TestDb::Postgres(cluster) = &mut h.test_db else {
                return Err("a PostgreSQL harness".into());
            };
            blocking(|| cluster.start_again())?;
        }
        // The terminal sends a batch again until it is answered, as its outbox does.
        let mut tries = 0;
        loop {
            tries += 1;
            let answer = h.sync(&kiosk, json!(batch)).await?;
            if answer.status == 200 {
                break;
            }
            assert!(
                tries < 50,
                "not answered: {} {}",
                answer.status,
                answer.body
            );
            refused += 1;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    assert!(refused >= 1);
    let counted = h
        .test_db
        .row("SELECT count(*), count(DISTINCT op_id) FROM members")?;
    assert_eq!(counted, vec![120, 120]);
    Ok(())
}

/// The PostgreSQL primary lost in the middle of a drain, its synchronous standby promoted:
/// the server, given both hosts with `target_session_attrs=read-write`, finds the new primary
/// by itself, every sign-up a kiosk was told was accepted before the loss is there, and every
/// sign-up is on it exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_promoted_mid_drain_has_every_accepted_operation() -> TestResult {
    let (mut primary, standby) = tokio::task::spawn_blocking(|| {
        let primary = test_postgres::Cluster::start()?;
        let standby = primary.start_standby()?;
        anyhow::Ok((primary, standby))
    })
    .await??;
    let url = format!(
        "postgres://{}@127.0.0.1:{},127.0.0.1:{}/palpal?target_session_attrs=read-write",
        test_postgres::USER,
        primary.port(),
        standby.port()
    );
    let h = start_on(
        Config::default(),
        TestDb::PostgresAt(url),
        tempfile::tempdir()?,
    )
    .await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let mut accepted = Vec::new();
    for b in 0..12 {
        if b == 5 {
            blocking(|| primary.stop_immediate())?;
            blocking(|| standby.promote())?;
        }
        let batch: Vec<Value> = (0..10)
            .map(|i| enrollment(&format!("e-{b}-{i}"), &format!("회원{b}-{i}")))
            .collect();
        let mut tries = 0;
        let answer = loop {
            tries += 1;
            let answer = h.sync(&kiosk, json!(batch)).await?;
            if answer.status == 200 {
                break answer;
            }
            assert!(
                tries < 100,
                "not answered: {} {}",
                answer.status,
                answer.body
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        for i in 0..batch.len() {
            if result(&answer, i)["status"] == "accepted" {
                accepted.push(format!("e-{b}-{i}"));
            }
        }
    }
    let counted = h
        .test_db
        .row("SELECT count(*), count(DISTINCT op_id) FROM members")?;
    assert_eq!(counted, vec![120, 120]);
    for op_id in &accepted {
        let on_new_primary = h.test_db.row(&format!(
            "SELECT count(*) FROM members WHERE op_id = '{op_id}'"
        ))?;
        assert_eq!(on_new_primary, vec![1], "{op_id}");
    }
    assert!(accepted.len() >= 50, "{}", accepted.len());
    drop(standby);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_id_given_to_two_kinds_in_one_request_is_refused_the_second_time() -> TestResult
{
    let h = start(Config::default()).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    // A sign-up and a step report of one id, each way round, in one request: the second of
    // each pair is refused as a reuse, the rest applied, the request answered. Ids are
    // checked against those applied earlier in the request, not only those stored before.
    let batch = json!([
        enrollment("op-1", "박철수"),
        step_report("op-1", "PP-00000001", 9000),
        step_report("op-2", "PP-00000001", 9000),
        enrollment("op-2", "김영희"),
        enrollment("op-1", "박철수"),
    ]);
    let statuses = |answer: &Answer| -> Vec<(String, String)> {
        (0..5)
            .map(|i| {
                (
                    result(answer, i)["status"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                    result(answer, i)["reason"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                )
            })
            .collect()
    };
    let pair = |status: &str, reason: &str| (status.to_owned(), reason.to_owned());
    let first = h.sync(&kiosk, batch.clone()).await?;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        statuses(&first),
        vec![
            pair("accepted", ""),
            pair("rejected", "op_id_reused"),
            pair("accepted", ""),
            pair("rejected", "op_id_reused"),
            pair("duplicate", ""),
        ]
    );
    // The same request again (a retry): the stored answers, the same refusals.
    let again = h.sync(&kiosk, batch).await?;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        statuses(&again),
        vec![
            pair("duplicate", ""),
            pair("rejected", "op_id_reused"),
            pair("duplicate", ""),
            pair("rejected", "op_id_reused"),
            pair("duplicate", ""),
        ]
    );
    assert_eq!(
        (
            h.count("members")?,
            h.count("step_reports")?,
            h.count("operations")?
        ),
        (1, 1, 2)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_that_make_no_sense_are_rejected_one_by_one() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let answer = h
        .sync(
            &kiosk,
            json!([
                enrollment("op-1", "박철수"),
                { "op_id": "op-2", "kind": "redemption", "payload": {} },
                { "op_id": "op-3", "kind": "enrollment", "payload": { "name": "" } },
                step_report("op-4", "PP-00000099", 9000),
                { "op_id": "op-1", "kind": "enrollment",
                  "payload": { "name": "다른 사람", "birth_date": "1960-01-01", "phone": "01011112222" } },
                { "op_id": "op-5", "kind": "enrollment",
                  "payload": { "name": "미래", "birth_date": "2030-01-01", "phone": "01011112222" } },
            ]),
        )
        .await?;
    assert_eq!(answer.status, 200);
    let statuses: Vec<(&str, &str)> = (0..6)
        .map(|i| {
            (
                result(&answer, i)["status"].as_str().unwrap_or(""),
                result(&answer, i)["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("accepted", ""),
            ("rejected", "unknown_kind"),
            ("rejected", "invalid_payload"),
            ("rejected", "unknown_member"),
            ("rejected", "op_id_reused"),
            ("rejected", "invalid_payload"),
        ]
    );
    assert!(result(&answer, 1)["message"].as_str().is_some());
    assert_eq!(h.count("members")?, 1);
    // A name that reorders or hides text (shown as another name on a screen or receipt), or
    // runs past the documented length, and a phone field stuffed around its digits: refused.
    let hostile = [
        ("n-1", "김영\u{202E}희", "01011112222"),
        ("n-2", "김\u{2066}영희\u{2069}", "01011112222"),
        ("n-3", "김영희\n관리자", "01011112222"),
        ("n-4", &"가".repeat(51), "01011112222"),
        ("n-5", "최민수", &format!("010{}11112222", " ".repeat(40))),
    ];
    let ops: Vec<Value> = hostile
        .iter()
        .map(|(op_id, name, phone)| {
            json!({ "op_id": op_id, "kind": "enrollment",
                    "payload": { "name": name, "birth_date": "1950-01-01", "phone": phone } })
        })
        .collect();
    let answer = h.sync(&kiosk, Value::Array(ops)).await?;
    assert_eq!(
        crate::statuses(&answer),
        vec![pair("rejected", "invalid_payload"); hostile.len()],
        "{}",
        answer.body
    );
    assert_eq!(h.count("members")?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_cannot_register_members() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let counter = h.terminal("counter", 2).await?;
    h.sync(&kiosk, json!([enrollment("op-1", "이순자")]))
        .await?;

    let answer = h
        .sync(
            &counter,
            json!([
                enrollment("op-2", "최민수"),
                step_report("op-3", "PP-00000001", 6000)
            ]),
        )
        .await?;
    assert_eq!(answer.status, 200);
    assert_eq!(result(&answer, 0)["status"], "rejected");
    assert_eq!(result(&answer, 0)["reason"], "role");
    // The counter may sync a watch: a 75-year-old's goal is 5,000 steps.
    assert_eq!(result(&answer, 1)["status"], "accepted");
    assert_eq!(result(&answer, 1)["points"], 100);
    assert_eq!(h.count("members")?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_can_ask_whether_a_person_is_already_a_member() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let other_kiosk = h.terminal("kiosk", 3).await?;
    let counter = h.terminal("counter", 2).await?;
    h.sync(&kiosk, json!([enrollment("op-1", "이순자")]))
        .await?;
    let lookup = |term, body| h.post_json(term, "/v1/members/lookup", body);
    // Another kiosk finds the member, written as a clerk might type it.
    let found = lookup(
        &other_kiosk,
        json!({"name": " 이순자 ", "birth_date": "1950-04-01", "phone": "01012345678"}),
    )
    .await?;
    assert_eq!(
        (found.status, &found.body["member_number"]),
        (200, &json!("PP-00000001"))
    );
    let nobody = lookup(
        &other_kiosk,
        json!({"name": "이순자", "birth_date": "1950-04-02", "phone": "01012345678"}),
    )
    .await?;
    assert_eq!(
        (nobody.status, &nobody.body["member_number"]),
        (200, &Value::Null)
    );
    // A counter may not ask; bad input is a clear 400; nothing is changed.
    let refused = lookup(
        &counter,
        json!({"name": "이순자", "birth_date": "1950-04-01", "phone": "01012345678"}),
    )
    .await?;
    assert_eq!(
        (refused.status, refused.body["code"].as_str()),
        (403, Some("role_not_allowed"))
    );
    for bad in [
        json!({"name": "", "birth_date": "1950-04-01", "phone": "0"}),
        json!({"name": "이순자", "birth_date": "1950/04/01", "phone": "0"}),
        json!({"name": "이순자", "birth_date": "1950-04-01"}),
        json!({"name": "이순자", "birth_date": "1950-04-01", "phone": "0", "extra": 1}),
    ] {
        let answer = lookup(&other_kiosk, bad.clone()).await?;
        assert_eq!(
            (answer.status, answer.body["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
    assert_eq!(h.count("members")?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_are_refused_and_change_nothing() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let body = serde_json::to_vec(&json!({ "operations": [enrollment("op-1", "정다은")] }))?;
    let now = h.clock.now().timestamp();

    let impostor = Term {
        id: kiosk.id.clone(),
        key: SigningKey::from_bytes(&[66; 32]),
    };
    let bad = h.send_signed(&impostor, &body, now, &h.nonce()).await?;
    assert_eq!(
        (bad.status, bad.body["code"].clone()),
        (401, json!("bad_signature"))
    );

    let stale = h.send_signed(&kiosk, &body, now - 301, &h.nonce()).await?;
    assert_eq!(
        (stale.status, stale.body["code"].clone()),
        (401, json!("stale_timestamp"))
    );
    let early = h.send_signed(&kiosk, &body, now + 301, &h.nonce()).await?;
    assert_eq!(early.status, 401);

    let unknown = Term {
        id: "T-000099".to_owned(),
        key: SigningKey::from_bytes(&[1; 32]),
    };
    let unknown = h.send_signed(&unknown, &body, now, &h.nonce()).await?;
    assert_eq!(
        (unknown.status, unknown.body["code"].clone()),
        (401, json!("unknown_terminal"))
    );

    let unsigned = h.post("/v1/sync", body.clone()).await?;
    assert_eq!(
        (unsigned.status, unsigned.body["code"].clone()),
        (401, json!("unauthenticated"))
    );

    // Signed for another body: the digest no longer matches.
    let headers = signing::sign(
        &kiosk.key,
        "POST",
        "/v1/sync",
        &kiosk.id,
        now,
        &h.nonce(),
        b"{}",
    );
    let mut tampered = h
        .client
        .post(format!("{}/v1/sync", h.base))
        .body(body.clone());
    for (name, value) in headers.pairs() {
        tampered = tampered.header(name, value);
    }
    let tampered = answer(tampered.send().await?).await?;
    assert_eq!(tampered.status, 401);

    assert_eq!(h.count("members")?, 0);
    assert_eq!(h.count("nonces")?, 0);

    let nonce = h.nonce();
    let first = h.send_signed(&kiosk, &body, now, &nonce).await?;
    assert_eq!(first.status, 200);
    let replay = h.send_signed(&kiosk, &body, now, &nonce).await?;
    assert_eq!(
        (replay.status, replay.body["code"].clone()),
        (401, json!("replayed_nonce"))
    );

    // The clock moves on past the allowed skew: the old signature is stale.
    h.clock
        .set(launch_morning() + chrono::TimeDelta::seconds(400));
    let later = h.send_signed(&kiosk, &body, now, &h.nonce()).await?;
    assert_eq!(later.body["code"], "stale_timestamp");
    assert_eq!(h.count("members")?, 1);
    assert_eq!(h.count("operations")?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_terminal_is_locked_out() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let before = h
        .sync(&kiosk, json!([enrollment("op-1", "한지민")]))
        .await?;
    assert_eq!(before.status, 200);

    let out = cli(&[
        "terminal",
        "revoke",
        "--db",
        h.db(),
        "--terminal",
        &kiosk.id,
    ])?;
    assert_eq!(out.trim(), "revoked: T-000001");
    let after = h
        .sync(&kiosk, json!([enrollment("op-2", "오세훈")]))
        .await?;
    assert_eq!(
        (after.status, after.body["code"].clone()),
        (403, json!("revoked_terminal"))
    );
    assert_eq!(h.count("members")?, 1);

    assert!(cli(&[
        "terminal",
        "revoke",
        "--db",
        h.db(),
        "--terminal",
        "T-000042"
    ])
    .is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_clear_4xx() -> TestResult {
    let config = Config {
        max_body_bytes: 4096,
        max_operations: 3,
        ..Config::default()
    };
    let h = start(config).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let now = h.clock.now().timestamp();

    let malformed = h
        .send_signed(&kiosk, b"{\"operations\": [", now, &h.nonce())
        .await?;
    assert_eq!(
        (malformed.status, malformed.body["code"].clone()),
        (400, json!("invalid_request"))
    );
    let wrong_shape = h
        .send_signed(&kiosk, b"{\"operations\": 7}", now, &h.nonce())
        .await?;
    assert_eq!(wrong_shape.status, 400);

    let big = vec![b' '; 5000];
    let oversize = h.send_signed(&kiosk, &big, now, &h.nonce()).await?;
    assert_eq!(
        (oversize.status, oversize.body["code"].clone()),
        (413, json!("payload_too_large"))
    );

    let four: Vec<Value> = (0..4)
        .map(|i| enrollment(&format!("op-{i}"), &format!("회원{i}")))
        .collect();
    let too_many = h.sync(&kiosk, Value::Array(four)).await?;
    assert_eq!(
        (too_many.status, too_many.body["code"].clone()),
        (413, json!("batch_too_large"))
    );
    assert_eq!(h.count("members")?, 0);

    let missing = h.get("/v1/nothing-here").await?;
    assert_eq!(
        (missing.status, missing.body["code"].clone()),
        (404, json!("not_found"))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_in_flight_limit_the_server_answers_429() -> TestResult {
    let config = Config {
        max_in_flight: 1,
        ..Config::default()
    };
    let h = Arc::new(start(config).await?);
    let kiosk = Arc::new(h.terminal("kiosk", 1).await?);
    // Another connection holds the database's write lock: the writer cannot commit, and an
    // admitted sync keeps the only work permit until the lock goes.
    let lock = h.test_db.hold_writes()?;
    let held = {
        let (h, kiosk) = (Arc::clone(&h), Arc::clone(&kiosk));
        tokio::spawn(async move {
            let ops = json!([enrollment("op-1", "김영희")]);
            h.sync(&kiosk, ops).await.map(|a| a.status).unwrap_or(0)
        })
    };
    wait_for_metric(&h, "palpal_http_in_flight 1\n").await?;

    let refused = h.post("/v1/sync", b"{}".to_vec()).await?;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
    assert_eq!(refused.body["code"], "overloaded");
    let enroll = h.post("/v1/terminals/enroll", b"{}".to_vec()).await?;
    assert_eq!(enroll.status, 429);
    // Health and metrics stay answerable under load.
    assert_eq!(h.get("/v1/health").await?.status, 200);
    let metrics = h.metrics().await?;
    assert!(metrics.contains("palpal_refusals_total{code=\"overloaded\"} 2\n"));
    assert!(metrics.contains("palpal_http_requests_total{route=\"/v1/sync\",status=\"429\"} 1\n"));

    // The lock goes: the held sync is committed and its permit comes back.
    lock.release()?;
    assert_eq!(held.await?, 200);
    assert_eq!(h.count("members")?, 1);
    let served = h.post("/v1/sync", b"{}".to_vec()).await?;
    assert_eq!(served.status, 401);
    Ok(())
}

/// A terminal slow to send its body (a weak network, or one starved of CPU) holds its body's
/// bytes, not a work permit: with one permit, a request whose body never finishes leaves it to
/// the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_still_arriving_holds_no_work_permit() -> TestResult {
    let config = Config {
        max_in_flight: 1,
        ..Config::default()
    };
    let h = start(config).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let slow = h.terminal("kiosk", 2).await?;
    let stuck = hold_a_request(&h, &slow, 100, 14).await?;
    assert!(h.metrics().await?.contains("palpal_http_in_flight 0\n"));

    let served = h
        .sync(&kiosk, json!([enrollment("op-1", "김영희")]))
        .await?;
    assert_eq!(served.status, 200);
    assert_eq!(h.count("members")?, 1);

    let_go(&h, stuck).await?;
    assert_eq!(
        h.count("members")?,
        1,
        "the unfinished request changed nothing"
    );
    Ok(())
}

/// The bodies in flight are bounded too, by the bytes that have arrived: a large request
/// being read leaves room for small ones, not for another large one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_bytes_in_flight_the_server_answers_429() -> TestResult {
    let config = Config {
        max_in_flight_bytes: 64 * 1024,
        ..Config::default()
    };
    let h = start(config).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let slow = h.terminal("kiosk", 2).await?;
    // 59,000 bytes of a 60,000-byte body sent, the rest not: they hold 58 of the 64 KiB.
    let stuck = hold_a_request(&h, &slow, 60_000, 59_000).await?;
    wait_for_metric(&h, "palpal_http_body_kib 58\n").await?;

    let now = h.clock.now().timestamp();
    let large = h
        .send_signed(&kiosk, &vec![b' '; 10 * 1024], now, &h.nonce())
        .await?;
    assert_eq!(
        (large.status, large.body["code"].clone()),
        (429, json!("overloaded"))
    );
    assert_eq!(large.retry_after.as_deref(), Some("1"));
    // A small one fits beside it and is judged on its merits.
    let small = h.send_signed(&kiosk, b"{}", now, &h.nonce()).await?;
    assert_eq!(small.status, 400);
    assert_eq!(h.get("/v1/health").await?.status, 200);

    let_go(&h, stuck).await?;
    let large = h
        .send_signed(&kiosk, &vec![b' '; 10 * 1024], now, &h.nonce())
        .await?;
    assert_eq!(large.status, 400, "the room came back");
    Ok(())
}

/// The signature headers of an enrolled terminal (`term`), with a signature over nothing it
/// sends: enough to be read, not to be applied.
fn terminal_headers(term: &Term, now: i64) -> String {
    let headers = signing::sign(
        &term.key,
        "POST",
        "/v1/sync",
        &term.id,
        now,
        "slow-nonce-0001",
        b"",
    );
    headers
        .pairs()
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect()
}

/// Starts a sync request from `term` that says its body is `content_length` bytes and sends
/// only its first `sent`, so that the server keeps reading it; returns once the server counts
/// it.
async fn hold_a_request(
    h: &Harness,
    term: &Term,
    content_length: usize,
    sent: usize,
) -> Result<tokio::net::TcpStream, Box<dyn std::error::Error>> {
    let addr = h.base.trim_start_matches("http://");
    let mut stuck = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST /v1/sync HTTP/1.1\r\nhost: x\r\ncontent-length: {content_length}\r\n{}\r\n",
        terminal_headers(term, h.clock.now().timestamp())
    );
    stuck.write_all(head.as_bytes()).await?;
    let mut body = b"{\"operations\"".to_vec();
    body.resize(sent.max(body.len()), b' ');
    stuck.write_all(&body[..sent]).await?;
    wait_for_metric(h, "palpal_http_reading 1\n").await?;
    Ok(stuck)
}

/// The client of [`hold_a_request`] goes away; returns once the server counts no request
/// reading its body.
async fn let_go(h: &Harness, mut stuck: tokio::net::TcpStream) -> TestResult {
    stuck.shutdown().await?;
    let mut rest = Vec::new();
    let _ = stuck.read_to_end(&mut rest).await;
    drop(stuck);
    wait_for_metric(h, "palpal_http_reading 0\n").await
}

/// Reads what the server sends on `stream` until it closes it, or fails after `limit` (a
/// guard against hanging, not a measure).
async fn until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut got = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut got))
        .await
        .map_err(|_| "the server never closed the connection")?
    {
        // Closed, or reset: closed all the same.
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => return Err(e.into()),
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// The first attack: a connection that declared a 1 MiB body and stalled made the server
/// answer 429 to every terminal. Now a declared body holds nothing until its bytes arrive, a
/// body that stops is cut (408, connection closed), and a request naming no enrolled terminal
/// is refused from its headers, its body never read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_holds_nothing_and_is_cut() -> TestResult {
    let config = Config {
        max_in_flight_bytes: 64 * 1024,
        body_grace: Duration::from_millis(300),
        body_idle_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let h = start(config).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let slow = h.terminal("kiosk", 2).await?;
    // Declared 1 MiB, sent 14 bytes: 1 KiB held.
    let mut stalled = hold_a_request(&h, &slow, 1024 * 1024, 14).await?;
    let served = h
        .sync(&kiosk, json!([enrollment("op-1", "김영희")]))
        .await?;
    assert_eq!(served.status, 200, "{}", served.body);
    // The stalled body is cut, and its connection closed.
    let answer = until_closed(&mut stalled, Duration::from_secs(30)).await?;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_too_slow"), "{answer}");
    wait_for_metric(&h, "palpal_http_reading 0\n").await?;
    wait_for_metric(&h, "palpal_http_body_kib 0\n").await?;
    // A body dribbled below the rate is cut too, even though bytes keep coming.
    let addr = h.base.trim_start_matches("http://").to_owned();
    let mut dribble = tokio::net::TcpStream::connect(&addr).await?;
    let head = format!(
        "POST /v1/sync HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n{}\r\n",
        terminal_headers(&slow, h.clock.now().timestamp())
    );
    dribble.write_all(head.as_bytes()).await?;
    let cut = async {
        for _ in 0..600 {
            if dribble.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    cut.await;
    let answer = until_closed(&mut dribble, Duration::from_secs(30)).await?;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // An unknown terminal's request with a declared 1 MiB body: refused from its headers.
    let mut unknown = tokio::net::TcpStream::connect(&addr).await?;
    let forged = Term {
        id: "T-000099".to_owned(),
        key: SigningKey::from_bytes(&[9; 32]),
    };
    let head = format!(
        "POST /v1/sync HTTP/1.1\r\nhost: x\r\ncontent-length: 1048576\r\n{}\r\n",
        terminal_headers(&forged, h.clock.now().timestamp())
    );
    unknown.write_all(head.as_bytes()).await?;
    let answer = until_closed(&mut unknown, Duration::from_secs(30)).await?;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("unknown_terminal"), "{answer}");
    // No headers of a terminal at all: the same, `unauthenticated`.
    let mut anonymous = tokio::net::TcpStream::connect(&addr).await?;
    anonymous
        .write_all(b"POST /v1/sync HTTP/1.1\r\nhost: x\r\ncontent-length: 1048576\r\n\r\n")
        .await?;
    let answer = until_closed(&mut anonymous, Duration::from_secs(30)).await?;
    assert!(answer.contains("unauthenticated"), "{answer}");
    let metrics = h.metrics().await?;
    assert!(
        metrics.contains("palpal_refusals_total{code=\"request_too_slow\"} 2\n"),
        "{metrics}"
    );
    assert_eq!(h.count("members")?, 1, "only the honest sign-up");
    Ok(())
}

/// Headers dribbled a byte at a time are cut at the header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_dribbled_a_byte_at_a_time_are_cut() -> TestResult {
    let config = Config {
        header_timeout: Duration::from_millis(500),
        ..Config::default()
    };
    let h = start(config).await?;
    let addr = h.base.trim_start_matches("http://").to_owned();
    let mut dribble = tokio::net::TcpStream::connect(&addr).await?;
    let head = b"POST /v1/sync HTTP/1.1\r\nhost: x\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for byte in head {
        if dribble.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Closed by the server (with a 408, or without a word): the read ends.
    until_closed(&mut dribble, Duration::from_secs(30)).await?;
    assert_eq!(h.get("/v1/health").await?.status, 200);
    Ok(())
}

/// Beyond the connections allowed from one address, or not yet naming an enrolled terminal,
/// a new connection is closed at once; the others go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_their_bounds_are_closed_at_once() -> TestResult {
    let h = start(Config {
        max_connections_per_address: 3,
        ..Config::default()
    })
    .await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let addr = h.base.trim_start_matches("http://").to_owned();
    // The harness's own client may hold a kept-alive connection: count from what is refused.
    let mut open = Vec::new();
    let mut refused = None;
    for _ in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await?;
        let sent = stream
            .write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await;
        let mut first = [0u8; 12];
        let read = match sent {
            Ok(()) => {
                tokio::time::timeout(Duration::from_secs(30), stream.read(&mut first)).await?
            }
            Err(e) => Err(e),
        };
        match read {
            Ok(0) | Err(_) => {
                refused = Some(stream);
                break;
            }
            Ok(_) => open.push(stream),
        }
    }
    assert!(
        refused.is_some(),
        "a connection beyond the bound was served"
    );
    assert!(open.len() <= 3);
    // The refusal is counted once room is made below.
    drop(open);
    let mut served = None;
    for _ in 0..100 {
        if let Ok(answer) = h.sync(&kiosk, json!([enrollment("op-1", "김영희")])).await {
            served = Some(answer.status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(served, Some(200), "room came back once connections closed");
    assert!(h
        .metrics()
        .await?
        .contains("palpal_refusals_total{code=\"connections_per_address\"}"));

    let h = start(Config {
        max_unknown_connections: 2,
        ..Config::default()
    })
    .await?;
    let addr = h.base.trim_start_matches("http://").to_owned();
    let idle: Vec<tokio::net::TcpStream> = vec![
        tokio::net::TcpStream::connect(&addr).await?,
        tokio::net::TcpStream::connect(&addr).await?,
    ];
    let mut third = tokio::net::TcpStream::connect(&addr).await?;
    // The write may already find the connection closed.
    let _ = third
        .write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let answer = until_closed(&mut third, Duration::from_secs(30)).await?;
    assert!(answer.is_empty(), "closed without an answer: {answer}");
    drop(idle);
    let mut health = None;
    for _ in 0..100 {
        if let Ok(answer) = h.get("/v1/health").await {
            health = Some(answer.status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(health, Some(200));
    Ok(())
}

/// `/metrics` is not the terminals' business: hidden, or behind a bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_hidden_or_need_their_token() -> TestResult {
    let hidden = start(Config {
        metrics: http::MetricsAccess::Hidden,
        ..Config::default()
    })
    .await?;
    let answer = hidden.get("/metrics").await?;
    assert_eq!(
        (answer.status, answer.body["code"].clone()),
        (404, json!("metrics_not_here"))
    );
    let token = start(Config {
        metrics: http::MetricsAccess::Token("s3cret-token".to_owned()),
        ..Config::default()
    })
    .await?;
    assert_eq!(token.get("/metrics").await?.status, 404);
    let with = |bearer: &'static str| {
        token
            .client
            .get(format!("{}/metrics", token.base))
            .bearer_auth(bearer)
            .send()
    };
    assert_eq!(with("guess").await?.status().as_u16(), 404);
    let right = with("s3cret-token").await?;
    assert_eq!(right.status().as_u16(), 200);
    assert!(right.text().await?.contains("palpal_http_in_flight"));
    Ok(())
}

/// Polls /metrics until it contains `line`; fails after many tries, never on timing alone.
async fn wait_for_metric(h: &Harness, line: &str) -> TestResult {
    for _ in 0..1000 {
        if h.metrics().await?.contains(line) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("metrics never showed {line:?}").into())
}

/// A batch far larger than a connection's read buffer (`READ_BUFFER_BYTES`) is read in pieces
/// and taken whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_the_read_buffer_is_taken_whole() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let signed_up = h
        .sync(&kiosk, json!([enrollment("op-0", "김영희")]))
        .await?;
    assert_eq!(signed_up.status, 200);
    let reports: Vec<Value> = (1..=1000)
        .map(|i| step_report(&format!("op-{i}"), "PP-00000001", 3000 + i))
        .collect();
    let body = serde_json::to_vec(&json!({ "operations": reports }))?;
    assert!(
        body.len() > 4 * http::READ_BUFFER_BYTES,
        "{} bytes",
        body.len()
    );
    let now = h.clock.now().timestamp();
    let answer = h.send_signed(&kiosk, &body, now, &h.nonce()).await?;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let results = answer.body["results"].as_array().ok_or("no results")?;
    assert_eq!(results.len(), 1000);
    assert!(
        results.iter().all(|r| r["status"] == "accepted"),
        "{results:?}"
    );
    assert_eq!(h.count("step_reports")?, 1000);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_are_committed_in_groups() -> TestResult {
    let h = Arc::new(start(Config::default()).await?);
    let kiosk = Arc::new(h.terminal("kiosk", 1).await?);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (h, kiosk) = (Arc::clone(&h), Arc::clone(&kiosk));
        tasks.push(tokio::spawn(async move {
            let ops = json!([enrollment(&format!("op-{i}"), &format!("회원{i}"))]);
            h.sync(&kiosk, ops).await.map(|a| a.status).unwrap_or(0)
        }));
    }
    for task in tasks {
        assert_eq!(task.await?, 200);
    }
    assert_eq!(h.count("members")?, 20);
    let metrics = h.metrics().await?;
    // One enrollment of the terminal plus twenty syncs went through the writer.
    assert!(
        metrics.contains("palpal_write_batch_size_sum 21\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("palpal_operations_total{kind=\"enrollment\",status=\"accepted\"} 20\n")
    );
    let health = h.get("/v1/health").await?;
    assert_eq!(
        health.body,
        json!({ "status": "ok", "schema_version": palpal_central::store::SCHEMA_VERSION })
    );
    Ok(())
}

/// The connections the server under test holds to its database now: PostgreSQL's client
/// backends on it (but the one asking), or the file descriptors of this process (where the
/// server runs) open on the SQLite file.
fn database_connections(
    db: &str,
    pg: Option<&mut postgres::Client>,
) -> Result<usize, Box<dyn std::error::Error>> {
    if let Some(client) = pg {
        let row = client.query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )?;
        return Ok(usize::try_from(row.get::<_, i64>(0))?);
    }
    let file = std::fs::canonicalize(db)?;
    let mut open = 0;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        // A descriptor closed between the listing and the read is simply not counted.
        if std::fs::read_link(entry?.path()).is_ok_and(|target| target == file) {
            open += 1;
        }
    }
    Ok(open)
}

/// Reads beyond the pool wait for one of its connections instead of opening more: under a
/// hundred concurrent pulls the server never holds more than `read_connections` readers
/// beside the connections it had before, which is how docs/deploy-central.md sizes
/// PostgreSQL's `max_connections`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_beyond_the_pool_wait_for_its_connections() -> TestResult {
    const READERS: usize = 2;
    let h = Arc::new(
        start(Config {
            read_connections: READERS,
            ..Config::default()
        })
        .await?,
    );
    let counter = Arc::new(h.terminal("counter", 1).await?);
    // The writers connected and the pool empty again: what the server holds at rest.
    assert_eq!(h.pull(&counter, json!({})).await?.status, 200);
    let db = h.db().to_owned();
    let postgres = on_postgres();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (db, done) = (db.clone(), Arc::clone(&done));
        std::thread::spawn(move || -> Result<(usize, usize), String> {
            let mut pg = postgres
                .then(|| pg_client(&db))
                .transpose()
                .map_err(|e| e.to_string())?;
            let count = |pg: &mut Option<postgres::Client>| {
                database_connections(&db, pg.as_mut()).map_err(|e| e.to_string())
            };
            let before = count(&mut pg)?;
            let mut peak = before;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(count(&mut pg)?);
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok((before, peak))
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut pulls = Vec::new();
    for _ in 0..100 {
        let (h, counter) = (Arc::clone(&h), Arc::clone(&counter));
        pulls.push(tokio::spawn(async move {
            h.pull(&counter, json!({}))
                .await
                .map(|a| a.status)
                .unwrap_or(0)
        }));
    }
    let mut answered = 0;
    for pull in pulls {
        let status = pull.await?;
        assert!(status == 200 || status == 429, "a pull answered {status}");
        answered += usize::from(status == 200);
    }
    done.store(true, Ordering::Relaxed);
    let (before, peak) = sampler.join().map_err(|_| "the sampler panicked")??;
    assert!(answered >= 50, "{answered} of 100 pulls answered");
    assert!(
        peak <= before + READERS,
        "{peak} connections at the peak, {before} before the pulls, {READERS} readers allowed"
    );
    Ok(())
}

/// The CPUs a thread may run on, from `Cpus_allowed_list` ("0-3,6") of its status file.
fn cpus_allowed(status_file: &Path) -> Result<Vec<usize>, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string(status_file)?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .ok_or("no Cpus_allowed_list")?;
    let mut cpus = Vec::new();
    for part in list.trim().split(',') {
        match part.split_once('-') {
            Some((from, to)) => cpus.extend(from.parse::<usize>()?..=to.parse::<usize>()?),
            None => cpus.push(part.parse()?),
        }
    }
    Ok(cpus)
}

/// One thread of a running server.
#[derive(Debug)]
struct ThreadState {
    name: String,
    nice: i64,
    cpus: Vec<usize>,
}

/// Each of a process's threads, from `/proc`.
fn threads_of(pid: u32) -> Result<Vec<ThreadState>, Box<dyn std::error::Error>> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = task?.path();
        let name = std::fs::read_to_string(task.join("comm"))?
            .trim()
            .to_owned();
        let stat = std::fs::read_to_string(task.join("stat"))?;
        // After the name in parentheses: state is the first field, nice the seventeenth.
        let nice = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(16))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("no nice value in {stat:?}"))?;
        let cpus = cpus_allowed(&task.join("status"))?;
        threads.push(ThreadState { name, nice, cpus });
    }
    Ok(threads)
}

/// Starts `serve` with `options`, waits (up to 5 s) until its writer, checkpointer and lane
/// threads have their names, and returns its threads; the server is stopped.
fn serve_threads(
    db: &Path,
    options: &[&str],
) -> Result<Vec<ThreadState>, Box<dyn std::error::Error>> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palpal-central"))
        .args(["serve", "--db"])
        .arg(db)
        .args(["--listen", "127.0.0.1:0"])
        .args(options)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)?;
    }
    let named = |threads: &[ThreadState]| {
        ["palpal-writer", "palpal-checkpoi", "palpal-work"]
            .iter()
            .all(|name| threads.iter().any(|t| t.name == *name))
    };
    let mut threads = threads_of(child.id());
    for _ in 0..250 {
        if matches!(&threads, Ok(t) if named(t)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        threads = threads_of(child.id());
    }
    child.kill()?;
    child.wait()?;
    assert!(line.starts_with("listening on "), "{line:?}");
    threads
}

/// `serve` with `options` fails, saying `what`.
fn serve_refuses(db: &Path, options: &[&str], what: &[&str]) -> TestResult {
    let refused = Command::new(env!("CARGO_BIN_EXE_palpal-central"))
        .args(["serve", "--db"])
        .arg(db)
        .args(options)
        .output()?;
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    for part in what {
        assert!(said.contains(part), "{said}");
    }
    Ok(())
}

/// Under overload the writer must not lose CPU to the threads that parse, refuse and answer
/// requests: `serve` runs its HTTP threads (those reading and refusing requests and those
/// working on admitted ones) ten nice steps below the writer and checkpointer
/// (`--http-nice`), and `--http-nice 0` keeps them level.
#[test]
fn the_http_threads_run_below_the_writer() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("central.db");
    let cases: [(&[&str], i64); 3] = [
        (&[], 10),
        (&["--http-nice", "0"], 0),
        (&["--http-nice", "4"], 4),
    ];
    for (options, below) in cases {
        let threads = serve_threads(&db, options)?;
        let of = |name: &str| -> Vec<i64> {
            threads
                .iter()
                .filter(|t| t.name == name)
                .map(|t| t.nice)
                .collect()
        };
        let writer = of("palpal-writer");
        assert_eq!(writer.len(), 1, "{threads:?}");
        assert_eq!(of("palpal-checkpoi"), writer, "{threads:?}");
        for name in ["tokio-rt-worker", "palpal-work"] {
            let found = of(name);
            assert!(!found.is_empty(), "{name}: {threads:?}");
            assert!(
                found.iter().all(|nice| *nice == writer[0] + below),
                "{options:?} {name}: {threads:?}"
            );
        }
    }
    serve_refuses(&db, &["--http-nice", "25"], &["--http-nice"])
}

/// The writer keeps a CPU to itself when there are two or more (`--writer-cpu auto`, the
/// last one), every other thread running on the rest; `off` shares; a CPU the process may
/// not use is refused with the CPUs it may.
#[test]
fn the_writer_has_a_cpu_of_its_own() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("central.db");
    let allowed = cpus_allowed(Path::new("/proc/self/status"))?;
    let check = |options: &[&str], writer: Vec<usize>, others: Vec<usize>| -> TestResult {
        let threads = serve_threads(&db, options)?;
        assert!(threads.len() >= 4, "{threads:?}");
        for thread in &threads {
            let expected = if thread.name == "palpal-writer" {
                &writer
            } else {
                &others
            };
            assert_eq!(&thread.cpus, expected, "{options:?}: {threads:?}");
        }
        Ok(())
    };
    match allowed.as_slice() {
        [first, .., last] => {
            let rest = |mine: usize| allowed.iter().copied().filter(|&c| c != mine).collect();
            check(&[], vec![*last], rest(*last))?;
            check(
                &["--writer-cpu", &first.to_string()],
                vec![*first],
                rest(*first),
            )?;
        }
        // One CPU: shared, whatever auto says.
        _ => check(&[], allowed.clone(), allowed.clone())?,
    }
    check(&["--writer-cpu", "off"], allowed.clone(), allowed.clone())?;
    serve_refuses(
        &db,
        &["--writer-cpu", "100000"],
        &["--writer-cpu 100000", "is not one this process may use"],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_on_the_address_it_prints() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("central.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_palpal-central"))
        .args(["serve", "--db"])
        .arg(&db)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).map(|_| line)
    })
    .await??;
    let outcome = async {
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line {line:?}"))?;
        let health = answer(reqwest::get(format!("{base}/v1/health")).await?).await?;
        assert_eq!(health.status, 200);
        assert_eq!(
            health.body["schema_version"],
            palpal_central::store::SCHEMA_VERSION
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    }
    .await;
    child.kill()?;
    child.wait()?;
    outcome
}

/// `serve --data-key-file` makes the key file (0600) for a database that has none and
/// records it; given another key, or none where the database's was, it refuses to start and
/// says which option to give, and makes no key in the missing one's place.
#[test]
fn the_binary_serves_only_with_its_databases_data_key() -> TestResult {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("central.db");
    let key = dir.path().join("keys").join("data.key");
    let key_arg = key.to_str().ok_or("a UTF-8 path")?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_palpal-central"))
        .args(["serve", "--db"])
        .arg(&db)
        .args(["--listen", "127.0.0.1:0", "--data-key-file", key_arg])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
    child.kill()?;
    child.wait()?;
    assert!(line.starts_with("listening on "), "{line:?}");
    assert_eq!(std::fs::metadata(&key)?.permissions().mode() & 0o777, 0o600);
    assert!(!palpal_central::personal::default_file(&db).exists());

    let other = dir.path().join("other.key");
    std::fs::write(&other, [7u8; 32])?;
    let other_arg = other.to_str().ok_or("a UTF-8 path")?;
    serve_refuses(
        &db,
        &["--data-key-file", other_arg],
        &["--data-key-file", "is not the key this database"],
    )?;
    serve_refuses(&db, &[], &["does not exist", "--data-key-file"])?;
    assert!(!palpal_central::personal::default_file(&db).exists());
    Ok(())
}

/// `--db postgres://...` serves on PostgreSQL; what the operator must fix before it can
/// start (a server that does not answer, a user it does not know, no data key file, a
/// database of a newer program) stops it with exit code 2 and a message saying what to do,
/// having written nothing.
#[test]
fn the_binary_serves_on_postgres_and_refuses_what_it_cannot_use() -> TestResult {
    let cluster = test_postgres::Cluster::start()?;
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("data.key");
    let key = key.to_str().ok_or("a UTF-8 path")?;
    let url = cluster.url();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_palpal-central"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
    };
    let added = run(&[
        "terminal",
        "add",
        "--db",
        &url,
        "--data-key-file",
        key,
        "--site",
        "s",
        "--role",
        "kiosk",
    ])?;
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_palpal-central"))
        .args([
            "serve",
            "--db",
            &url,
            "--data-key-file",
            key,
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
    child.kill()?;
    child.wait()?;
    assert!(
        line.starts_with("listening on http://127.0.0.1:"),
        "{line:?}"
    );
    let terminals = cluster.psql("palpal", "SELECT count(*) FROM terminals")?;
    assert_eq!(terminals.trim(), "1");

    let refused = |args: &[&str], what: &[&str]| -> TestResult {
        let out = run(args)?;
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{said}");
        for part in what {
            assert!(said.contains(part), "{part:?} not in {said}");
        }
        Ok(())
    };
    let nobody = format!(
        "postgres://palpal@127.0.0.1:{}/palpal",
        test_postgres::free_port()?
    );
    refused(
        &["serve", "--db", &nobody, "--data-key-file", key],
        &["연결할 수 없습니다", "could not connect"],
    )?;
    let stranger = url.replace("palpal@", "stranger@");
    refused(
        &["serve", "--db", &stranger, "--data-key-file", key],
        &["could not connect", "stranger"],
    )?;
    refused(&["serve", "--db", &url], &["--data-key-file"])?;
    refused(
        &[
            "serve",
            "--db",
            "postgres://palpal@127.0.0.1:notaport/x",
            "--data-key-file",
            key,
        ],
        &["does not read"],
    )?;
    cluster.psql("palpal", "UPDATE schema_version SET version = 99")?;
    refused(
        &["serve", "--db", &url, "--data-key-file", key],
        &["newer", "update the server"],
    )?;
    assert_eq!(
        cluster
            .psql("palpal", "SELECT version FROM schema_version")?
            .trim(),
        "99"
    );
    Ok(())
}

#[test]
fn the_binary_refuses_a_damaged_database_and_leaves_it_as_it_is() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("central.db");
    // A real database, then a page in the middle overwritten, as a failing disk would.
    cli(&[
        "terminal",
        "add",
        "--db",
        db.to_str().ok_or("path")?,
        "--site",
        "성북구",
        "--role",
        "kiosk",
    ])?;
    {
        let conn = rusqlite::Connection::open(&db)?;
        conn.execute_batch(
            "CREATE TABLE filler (x TEXT); PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;",
        )?;
        for _ in 0..300 {
            conn.execute("INSERT INTO filler VALUES (?1)", [&"x".repeat(400)])?;
        }
    }
    let mut bytes = std::fs::read(&db)?;
    let page = 4096;
    assert!(bytes.len() > page * 12, "{} bytes", bytes.len());
    let middle = bytes.len() / page / 2 * page;
    bytes[middle..middle + page].fill(0xA5);
    std::fs::write(&db, &bytes)?;
    for file in [db.clone(), dir.path().join("garbage.db")] {
        if file != db {
            std::fs::write(&file, [0x42u8; 8192])?;
        }
        let before = std::fs::read(&file)?;
        let out = Command::new(env!("CARGO_BIN_EXE_palpal-central"))
            .args(["serve", "--db"])
            .arg(&file)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("RUST_BACKTRACE")
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("데이터베이스 파일이 손상되었습니다"),
            "{stderr}"
        );
        assert!(stderr.contains("restore it from a backup"), "{stderr}");
        assert_eq!(
            std::fs::read(&file)?,
            before,
            "the damaged file was written to"
        );
    }
    Ok(())
}

impl Harness {
    /// Sends a correctly signed request with `body` to `path` (the query is not signed).
    async fn signed(
        &self,
        term: &Term,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<Answer, Box<dyn std::error::Error>> {
        let path = path_and_query.split('?').next().unwrap_or_default();
        let now = self.clock.now().timestamp();
        let headers = signing::sign(&term.key, method, path, &term.id, now, &self.nonce(), body);
        let url = format!("{}{path_and_query}", self.base);
        let mut request = match method {
            "GET" => self.client.get(url),
            _ => self.client.post(url),
        }
        .body(body.to_vec());
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        answer(request.send().await?).await
    }

    /// `POST path` with `body` as JSON, signed by `term`.
    async fn post_json(
        &self,
        term: &Term,
        path: &str,
        body: Value,
    ) -> Result<Answer, Box<dyn std::error::Error>> {
        self.signed(term, "POST", path, &serde_json::to_vec(&body)?)
            .await
    }

    async fn pull(&self, term: &Term, body: Value) -> Result<Answer, Box<dyn std::error::Error>> {
        self.signed(term, "POST", "/v1/pull", &serde_json::to_vec(&body)?)
            .await
    }

    async fn add_terminal_at(
        &self,
        site: &str,
        role: &str,
        seed: u8,
    ) -> Result<Term, Box<dyn std::error::Error>> {
        let out = cli(&[
            "terminal",
            "add",
            "--db",
            self.db(),
            "--site",
            site,
            "--role",
            role,
        ])?;
        let code = field(&out, "code").ok_or("no code printed")?.to_owned();
        self.enroll(&code, seed).await
    }
}

/// When the tests' holds are taken: half an hour before the server's clock.
const HELD_AT: &str = "2025-12-03T09:30:00+09:00";

fn hold_op(op_id: &str, member: &str, amount: u64, token: &str, terminal: &str) -> Value {
    json!({
        "op_id": op_id,
        "kind": "redemption_hold",
        "payload": {
            "member_no": member,
            "amount": amount,
            "token": token,
            "held_at": HELD_AT,
            "terminal": terminal,
        },
    })
}

impl Harness {
    /// Adds a redemption key with the real `key add` and returns its issuer, which makes the
    /// tokens members show (as the app's backend does with the secret file).
    fn issuer(&self) -> Result<IssuerKey, Box<dyn std::error::Error>> {
        let secret = self
            ._dir
            .path()
            .join(format!("key-{}.hex", self.nonces.load(Ordering::Relaxed)));
        let out = cli(&[
            "key",
            "add",
            "--db",
            self.db(),
            "--secret-out",
            secret.to_str().unwrap_or_default(),
        ])?;
        let key_id: u16 = field(&out, "key_id").ok_or("no key id")?.parse()?;
        let seed = std::fs::read_to_string(&secret)?;
        Ok(IssuerKey::from_seed_hex(key_id, seed.trim())?)
    }
}

/// A dynamic token of member `number` (as the member's phone makes it), issued ten seconds
/// before the tests' holds; `nonce` tells tokens apart.
fn token(issuer: &IssuerKey, number: u64, nonce: u8) -> String {
    let issued = DateTime::parse_from_rfc3339(HELD_AT)
        .map(|t| t.to_utc())
        .unwrap_or_default()
        - chrono::Duration::seconds(10);
    issuer
        .issue_dynamic(MemberNo(number), issued, 120, [nonce; 8])
        .map(|t| t.to_text())
        .unwrap_or_default()
}

fn void_op(op_id: &str, hold: &str, at: &str) -> Value {
    json!({
        "op_id": op_id,
        "kind": "void",
        "payload": { "hold_op_id": hold, "voided_at": at },
    })
}

fn statuses(answer: &Answer) -> Vec<(String, String)> {
    answer.body["results"]
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

fn pair(status: &str, reason: &str) -> (String, String) {
    (status.to_owned(), reason.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_offline_for_days_without_a_quota_has_its_sign_ups_taken() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.add_terminal_at("성북구 보건소", "kiosk", 1).await?;
    // No site's sign-up is under quota: a kiosk admits everyone, and its sign-ups dated by
    // the days it was offline (and, clock a little fast, tomorrow) are taken.
    let mut ops = Vec::new();
    for (i, day) in ["2025-11-26", "2025-12-01", "2025-12-03", "2025-12-04"]
        .into_iter()
        .enumerate()
    {
        let mut op = enrollment(&format!("e-{i}"), &format!("회원{i}"));
        op["payload"]["day"] = json!(day);
        ops.push(op);
    }
    let answer = h.sync(&kiosk, Value::Array(ops)).await?;
    assert_eq!(
        statuses(&answer),
        vec![pair("accepted", ""); 4],
        "{}",
        answer.body
    );
    assert_eq!(h.count("members")?, 4);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_beyond_a_sites_lease_are_refused_and_kiosks_pull_their_own_lease() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.add_terminal_at("성북구 보건소", "kiosk", 1).await?;
    let other = h.add_terminal_at("종로구 보건소", "kiosk", 2).await?;
    let counter = h.add_terminal_at("온누리약국", "counter", 3).await?;
    cli(&[
        "schedule",
        "set",
        "--db",
        h.db(),
        "--day",
        "2025-12-03",
        "--rule",
        "age_band:65-120",
    ])?;
    cli(&[
        "schedule",
        "set",
        "--db",
        h.db(),
        "--day",
        "2025-12-04",
        "--rule",
        "odd_birth_years",
    ])?;
    let split = cli(&[
        "quota",
        "set",
        "--db",
        h.db(),
        "--day",
        "2025-12-03",
        "--total",
        "3",
        "--sites",
        "성북구 보건소,종로구 보건소",
    ])?;
    assert!(split.contains("성북구 보건소\tplaces=2"), "{split}");
    assert!(split.contains("종로구 보건소\tplaces=1"), "{split}");
    // A bad rule is refused by the command line, and changes nothing.
    assert!(cli(&[
        "schedule",
        "set",
        "--db",
        h.db(),
        "--day",
        "2025-12-05",
        "--rule",
        "age_band:9"
    ])
    .is_err());

    let answer = h
        .sync(
            &kiosk,
            json!([
                enrollment("e-1", "김영희"),
                enrollment("e-2", "박철수"),
                enrollment("e-3", "이순자"),
                enrollment("e-4", "김영희"),
            ]),
        )
        .await?;
    assert_eq!(
        statuses(&answer),
        vec![
            pair("accepted", ""),
            pair("accepted", ""),
            pair("rejected", "quota_exceeded"),
            // The same person again takes no second place.
            pair("duplicate", ""),
        ],
        "{}",
        answer.body
    );
    assert!(result(&answer, 2)["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("이 센터의 오늘 가입 정원")));
    assert_eq!(h.count("members")?, 2);
    // Another day with leases for other sites only: this site has no place.
    cli(&[
        "quota",
        "set",
        "--db",
        h.db(),
        "--day",
        "2025-12-04",
        "--site",
        "종로구 보건소",
        "--places",
        "5",
    ])?;
    let mut late = enrollment("e-5", "최민수");
    late["payload"]["day"] = json!("2025-12-04");
    let answer = h.sync(&kiosk, json!([late])).await?;
    assert_eq!(statuses(&answer), vec![pair("rejected", "quota_exceeded")]);
    let mut bad_day = enrollment("e-6", "최민수");
    bad_day["payload"]["day"] = json!("12/04");
    let answer = h.sync(&kiosk, json!([bad_day])).await?;
    assert_eq!(statuses(&answer), vec![pair("rejected", "invalid_payload")]);
    // A kiosk cannot move a sign-up to a day of its choosing to pass today's full lease: not
    // to a day without places while sign-up has been under quota since, nor outside the days
    // an offline kiosk may date one (by the server's clock, 2025-12-03).
    for (op_id, day, reason) in [
        ("e-7", "2025-12-01", "no_lease"),
        ("e-8", "2025-11-26", "no_lease"),
        ("e-9", "2025-11-25", "day_out_of_window"),
        ("e-10", "2025-02-03", "day_out_of_window"),
        ("e-11", "2025-12-05", "day_out_of_window"),
    ] {
        let mut moved = enrollment(op_id, "정미경");
        moved["payload"]["day"] = json!(day);
        let answer = h.sync(&kiosk, json!([moved])).await?;
        assert_eq!(statuses(&answer), vec![pair("rejected", reason)], "{day}");
    }
    assert_eq!(h.count("members")?, 2, "a refused sign-up makes no member");

    let pulled = h.pull(&kiosk, json!({})).await?;
    assert_eq!(pulled.status, 200, "{}", pulled.body);
    assert_eq!(
        pulled.body["quota_leases"],
        json!([{ "lease_id": "Q-000001", "site": "성북구 보건소", "day": "2025-12-03", "places": 2, "used": 2 }])
    );
    assert_eq!(
        pulled.body["admission"]["days"],
        json!({
            "2025-12-03": { "rule": "age_band", "min_age": 65, "max_age": 120 },
            "2025-12-04": { "rule": "odd_birth_years" },
        })
    );
    assert_eq!(pulled.body["policies"].as_array().map(Vec::len), Some(3));
    assert_eq!(pulled.body["policies"][2]["effective_from"], "2025-12-01");
    let theirs = h.pull(&other, json!({})).await?;
    assert_eq!(theirs.body["quota_leases"][0]["site"], "종로구 보건소");
    assert_eq!(
        theirs.body["quota_leases"].as_array().map(Vec::len),
        Some(2)
    );
    let counter_view = h.pull(&counter, json!({})).await?;
    assert_eq!(counter_view.status, 200);
    assert!(counter_view.body.get("admission").is_none());
    assert!(counter_view.body.get("quota_leases").is_none());
    Ok(())
}

/// A watch of the tests: its serial, key and certificate (by `ca`).
struct TestWatch {
    serial: &'static str,
    key: watch_protocol::WatchKey,
    certificate: String,
}

impl TestWatch {
    fn new(serial: &'static str, seed: u8, ca: &watch_protocol::WatchCa) -> TestWatch {
        let key = watch_protocol::WatchKey::from_seed([seed; 32]);
        let certificate = ca
            .certify(serial, key.public_key())
            .and_then(|c| c.encode())
            .map(|bytes| watch_protocol::proof::hex(&bytes))
            .unwrap_or_default();
        TestWatch {
            serial,
            key,
            certificate,
        }
    }

    /// A step report of `member` for `day` whose total this watch signed (`signed` steps,
    /// counter `counter`, at `signed_at`), sent claiming `steps`.
    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        op_id: &str,
        member: &str,
        day: &str,
        steps: u32,
        signed: u32,
        counter: u32,
        signed_at: &str,
    ) -> Value {
        let date: chrono::NaiveDate = day.parse().unwrap_or_default();
        let at = DateTime::parse_from_rfc3339(signed_at)
            .map(|t| u32::try_from(t.timestamp()).unwrap_or_default())
            .unwrap_or_default();
        let proof = self
            .key
            .sign_day(self.serial, date, signed, counter, at)
            .map(|p| watch_protocol::proof::hex(&p.signature))
            .unwrap_or_default();
        json!({
            "op_id": op_id,
            "kind": "step_report",
            "payload": {
                "member_number": member,
                "day": day,
                "steps": steps,
                // What the terminal says; the server goes by the watch's time.
                "reported_at": "2025-12-03T09:00:00+09:00",
                "watch": {
                    "serial": self.serial,
                    "certificate": self.certificate,
                    "counter": counter,
                    "signed_at": at,
                    "signature": proof,
                },
            },
        })
    }
}

/// Once the program trusts a watch authority, a counter (stolen, or run by a dishonest clerk)
/// cannot credit steps the member's own certified watch did not sign: every forgery is
/// refused with its own reason and credits nothing; lateness goes by the watch's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_count_only_as_a_certified_watch_paired_to_the_member_signed_them() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.add_terminal_at("성북구 보건소", "kiosk", 1).await?;
    let counter = h.add_terminal_at("온누리약국", "counter", 2).await?;
    let signup = h
        .sync(
            &kiosk,
            json!([
                enrollment("e-1", "김영희"),
                pairing_by_enrollment("w-1", "PW-0042", "e-1"),
                enrollment("e-2", "박철수"),
            ]),
        )
        .await?;
    assert_eq!(
        statuses(&signup),
        vec![pair("accepted", ""); 3],
        "{}",
        signup.body
    );

    // Before any authority is trusted, steps are taken as the terminal reports them.
    let before = h
        .sync(&counter, json!([step_report("s-0", "PP-00000002", 10_000)]))
        .await?;
    assert_eq!(result(&before, 0)["points"], 100, "{}", before.body);
    let added = cli(&["watch-ca", "add", "--db", h.db(), "--demo"])?;
    assert!(added.contains("added"), "{added}");
    let again = cli(&["watch-ca", "add", "--db", h.db(), "--demo"])?;
    assert!(again.contains("already trusted"), "{again}");
    let bad_key = cli_fails(&["watch-ca", "add", "--db", h.db(), "--public-key", "abc"])?;
    assert!(bad_key.contains("64 hex digits"), "{bad_key}");

    let ca = watch_protocol::WatchCa::demo();
    let watch = TestWatch::new("PW-0042", 7, &ca);
    let counterfeit = TestWatch::new("PW-0042", 7, &watch_protocol::WatchCa::from_seed([9; 32]));
    let mut other_serial = watch.report(
        "s-6",
        "PP-00000001",
        "2025-12-02",
        5_000,
        5_000,
        6,
        "2025-12-02T23:59:59+09:00",
    );
    other_serial["payload"]["watch"]["serial"] = json!("PW-0099");
    let answer = h
        .sync(
            &counter,
            json!([
                // The member's own watch, signed at the day's end: credited.
                watch.report(
                    "s-1",
                    "PP-00000001",
                    "2025-12-02",
                    10_000,
                    10_000,
                    1,
                    "2025-12-02T23:59:59+09:00"
                ),
                // No signature at all.
                step_report("s-2", "PP-00000001", 20_000),
                // More steps than the watch signed.
                watch.report(
                    "s-3",
                    "PP-00000001",
                    "2025-12-01",
                    20_000,
                    8_000,
                    2,
                    "2025-12-01T23:59:59+09:00"
                ),
                // A watch certified by an authority the program does not trust.
                counterfeit.report(
                    "s-4",
                    "PP-00000001",
                    "2025-12-01",
                    8_000,
                    8_000,
                    3,
                    "2025-12-01T23:59:59+09:00"
                ),
                // The certificate of one watch for another's serial.
                other_serial,
                // The member's watch, for a member it is not paired to.
                watch.report(
                    "s-7",
                    "PP-00000002",
                    "2025-12-01",
                    9_000,
                    9_000,
                    7,
                    "2025-12-01T23:59:59+09:00"
                ),
                // The first proof again, under a new operation.
                watch.report(
                    "s-8",
                    "PP-00000001",
                    "2025-12-02",
                    10_000,
                    10_000,
                    1,
                    "2025-12-02T23:59:59+09:00"
                ),
                // Signed an hour ahead of the server's clock, and a day signed before it began.
                watch.report(
                    "s-9",
                    "PP-00000001",
                    "2025-12-01",
                    9_000,
                    9_000,
                    9,
                    "2025-12-03T11:00:00+09:00"
                ),
                watch.report(
                    "s-10",
                    "PP-00000001",
                    "2025-12-03",
                    9_000,
                    9_000,
                    10,
                    "2025-12-02T23:00:00+09:00"
                ),
                // Late by the watch's time, whatever the terminal says: kept, not credited.
                watch.report(
                    "s-11",
                    "PP-00000001",
                    "2025-11-20",
                    9_000,
                    9_000,
                    11,
                    "2025-11-30T12:00:00+09:00"
                ),
                // The watch's clock set back ten months to sign that day "at its end": read
                // at most a week before the server got it, so it arrives late.
                watch.report(
                    "s-12",
                    "PP-00000001",
                    "2025-04-10",
                    9_000,
                    9_000,
                    12,
                    "2025-04-10T23:00:00+09:00"
                ),
            ]),
        )
        .await?;
    assert_eq!(
        statuses(&answer),
        vec![
            pair("accepted", ""),
            pair("rejected", "steps_unsigned"),
            pair("rejected", "steps_signature_invalid"),
            pair("rejected", "watch_not_certified"),
            pair("rejected", "watch_not_certified"),
            pair("rejected", "watch_not_paired"),
            pair("rejected", "steps_replayed"),
            pair("rejected", "steps_time_out_of_window"),
            pair("rejected", "steps_time_out_of_window"),
            pair("accepted", ""),
            pair("accepted", ""),
        ],
        "{}",
        answer.body
    );
    assert_eq!(result(&answer, 0)["points"], 100);
    assert_eq!(result(&answer, 9)["ignored"], "late", "{}", answer.body);
    assert_eq!(result(&answer, 10)["ignored"], "late", "{}", answer.body);
    // Nothing refused was recorded: the member has the one credited day and the late ones.
    assert_eq!(h.count("step_reports WHERE member_id = 1")?, 3);
    assert_eq!(h.count("watch_proofs")?, 3);
    assert_eq!(h.count("ledger_entries WHERE member_id = 1")?, 1);
    Ok(())
}

/// Before any watch authority is trusted, a step report's time is the terminal's word, but
/// only within the server's own bounds: a day not begun yet is refused, and a report dated
/// long ago or ahead is taken as read at most a week before the server got it, and no later
/// than that: a stolen counter cannot earn goal days for days ten months past or to come.
#[tokio::test]
async fn unsigned_steps_are_dated_only_within_the_servers_own_bounds() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.add_terminal_at("성북구 보건소", "kiosk", 1).await?;
    let counter = h.add_terminal_at("온누리약국", "counter", 2).await?;
    h.sync(&kiosk, json!([enrollment("e-1", "김영희")])).await?;
    let report = |op_id: &str, day: &str, reported_at: &str| {
        json!({
            "op_id": op_id,
            "kind": "step_report",
            "payload": {
                "member_number": "PP-00000001", "day": day, "steps": 12_000,
                "reported_at": reported_at,
            },
        })
    };
    let answer = h
        .sync(
            &counter,
            json!([
                report("s-1", "2025-04-10", "2025-04-10T21:00:00+09:00"),
                report("s-2", "2025-12-20", "2025-12-20T21:00:00+09:00"),
                report("s-3", "2025-11-10", "2025-11-11T09:00:00+09:00"),
                report("s-4", "2025-12-02", "2025-12-02T21:00:00+09:00"),
            ]),
        )
        .await?;
    assert_eq!(
        statuses(&answer),
        vec![
            pair("accepted", ""),
            pair("rejected", "steps_time_out_of_window"),
            pair("accepted", ""),
            pair("accepted", ""),
        ],
        "{}",
        answer.body
    );
    assert_eq!(result(&answer, 0)["ignored"], "late", "{}", answer.body);
    assert_eq!(result(&answer, 2)["ignored"], "late", "{}", answer.body);
    assert_eq!(result(&answer, 3)["points"], 100, "{}", answer.body);
    assert_eq!(h.count("ledger_entries WHERE member_id = 1")?, 1);
    Ok(())
}

fn wrong_pin_op(op_id: &str, member: &str, serial: u16, at: &str) -> Value {
    json!({
        "op_id": op_id,
        "kind": "wrong_pin",
        "payload": { "member_number": member, "serial": serial, "at": at },
    })
}

/// A card locked at one counter is locked at all of them: wrong PINs are reported with each
/// sync and counted across counters by day; the lock and a revocation reach every counter by
/// pull. Syncing does not reset anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pins_add_up_across_counters_and_lock_the_card_everywhere() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.add_terminal_at("성북구 보건소", "kiosk", 1).await?;
    let a = h.add_terminal_at("온누리약국", "counter", 2).await?;
    let b = h.add_terminal_at("행복편의점", "counter", 3).await?;
    h.sync(&kiosk, json!([enrollment("e-1", "김영희")])).await?;
    let first = h.pull(&b, json!({})).await?;
    let cursor = first.body["cursor"].clone();
    assert_eq!(first.body.get("cards"), None, "{}", first.body);

    // Two wrong PINs at A (synced), then one at B: the third of the day locks the card.
    let at_a = h
        .sync(
            &a,
            json!([
                wrong_pin_op("p-1", "PP-00000001", 1, "2025-12-03T09:00:00+09:00"),
                wrong_pin_op("p-2", "PP-00000001", 1, "2025-12-03T09:01:00+09:00"),
                // Another card of the member, and yesterday's: counted apart.
                wrong_pin_op("p-3", "PP-00000001", 2, "2025-12-03T09:02:00+09:00"),
                wrong_pin_op("p-4", "PP-00000001", 1, "2025-12-02T20:00:00+09:00"),
            ]),
        )
        .await?;
    assert_eq!(
        statuses(&at_a),
        vec![pair("accepted", ""); 4],
        "{}",
        at_a.body
    );
    let quiet = h.pull(&b, json!({ "cursor": cursor })).await?;
    assert_eq!(quiet.body.get("cards"), None, "{}", quiet.body);
    let at_b = h
        .sync(
            &b,
            json!([wrong_pin_op(
                "p-5",
                "PP-00000001",
                1,
                "2025-12-03T09:30:00+09:00"
            )]),
        )
        .await?;
    assert_eq!(statuses(&at_b), vec![pair("accepted", "")]);
    let locked = h.pull(&a, json!({ "cursor": cursor })).await?;
    assert_eq!(
        locked.body["cards"],
        json!([{ "member_number": "PP-00000001", "serial": 1, "revoked": false,
                 "locked_on": "2025-12-03" }]),
        "{}",
        locked.body
    );

    // A lost card revoked by the operator reaches the counters the same way.
    cli(&[
        "member",
        "revoke-card",
        "--db",
        h.db(),
        "--member",
        "PP-00000001",
        "--serial",
        "2",
    ])?;
    let revoked = h
        .pull(&b, json!({ "cursor": locked.body["cursor"] }))
        .await?;
    assert_eq!(
        revoked.body["cards"],
        json!([{ "member_number": "PP-00000001", "serial": 2, "revoked": true }]),
        "{}",
        revoked.body
    );

    // What makes no sense is refused and recorded nowhere.
    let bad = h
        .sync(
            &a,
            json!([
                wrong_pin_op("p-6", "PP-00000099", 1, "2025-12-03T09:00:00+09:00"),
                wrong_pin_op("p-7", "PP-00000001", 1, "2025-12-03T12:00:00+09:00"),
                wrong_pin_op("p-8", "PP-00000001", 0, "2025-12-03T09:00:00+09:00"),
                { "op_id": "p-9", "kind": "wrong_pin", "payload": { "member_number": "PP-00000001" } },
            ]),
        )
        .await?;
    assert_eq!(
        statuses(&bad),
        vec![
            pair("rejected", "unknown_member"),
            pair("rejected", "invalid_payload"),
            pair("rejected", "invalid_payload"),
            pair("rejected", "invalid_payload"),
        ]
    );
    let from_kiosk = h
        .sync(
            &kiosk,
            json!([wrong_pin_op(
                "p-10",
                "PP-00000001",
                1,
                "2025-12-03T09:00:00+09:00"
            )]),
        )
        .await?;
    assert_eq!(statuses(&from_kiosk), vec![pair("rejected", "role")]);
    assert_eq!(h.count("card_pin_failures")?, 5);
    Ok(())
}

/// `op` numbered `seq` by its terminal, as a terminal's outbox numbers its operations.
fn numbered(mut op: Value, seq: u64) -> Value {
    op["seq"] = json!(seq);
    op
}

/// A clerk who sets the counter's clock back cannot void yesterday's sale, nor take a hold
/// "yesterday": the server places a counter's operations by its own clock and the counter's
/// numbering of its operations, which the counter tells with each pull.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voids_and_holds_are_placed_by_the_counters_order_of_events_not_its_clock() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.add_terminal_at("성북구 보건소", "kiosk", 1).await?;
    let a = h.add_terminal_at("온누리약국", "counter", 2).await?;
    let b = h.add_terminal_at("행복편의점", "counter", 3).await?;
    let issuer = h.issuer()?;
    let tok = |nonce| token(&issuer, 1, nonce);
    h.sync(&kiosk, json!([enrollment("e-1", "김영희")])).await?;
    let steps = h
        .sync(&a, json!([step_report("s-1", "PP-00000001", 10_000)]))
        .await?;
    assert_eq!(result(&steps, 0)["points"], 100, "{}", steps.body);

    // 3 December: three sales, numbered 10 to 12; the counter pulls, telling 12.
    let sales = h
        .sync(
            &a,
            json!([
                numbered(hold_op("h-1", "PP-00000001", 10, &tok(1), &a.id), 10),
                numbered(hold_op("h-2", "PP-00000001", 10, &tok(2), &a.id), 11),
                numbered(hold_op("h-3", "PP-00000001", 10, &tok(3), &a.id), 12),
            ]),
        )
        .await?;
    assert_eq!(
        statuses(&sales),
        vec![pair("accepted", ""); 3],
        "{}",
        sales.body
    );
    let told = h.pull(&a, json!({ "sequence": 12 })).await?;
    assert_eq!(told.status, 200, "{}", told.body);
    // Counter B takes one sale and then says nothing for days.
    let quiet = h
        .sync(
            &b,
            json!([numbered(
                hold_op("h-b", "PP-00000001", 10, &tok(4), &b.id),
                1
            )]),
        )
        .await?;
    assert_eq!(statuses(&quiet), vec![pair("accepted", "")]);

    // That evening, offline, counter A voids sale 2 (operation 13). The next morning, by the
    // server's clock, it pulls before it could push, telling 13.
    h.clock.set(launch_morning() + chrono::TimeDelta::days(1));
    let morning = h.pull(&a, json!({ "sequence": 13 })).await?;
    assert_eq!(morning.status, 200, "{}", morning.body);
    // Later that day the clerk sets the counter's clock back to the 3rd and voids sale 1
    // (operation 14), takes a "3 December" sale (15), and an unnumbered void of sale 3 comes
    // too, as does one numbered before the sale it voids.
    let held_yesterday = HELD_AT;
    let answer = h
        .sync(
            &a,
            json!([
                numbered(void_op("v-13", "h-2", "2025-12-03T20:00:00+09:00"), 13),
                numbered(void_op("v-14", "h-1", "2025-12-03T21:00:00+09:00"), 14),
                numbered(
                    json!({
                        "op_id": "h-15",
                        "kind": "redemption_hold",
                        "payload": {
                            "member_no": "PP-00000001",
                            "amount": 10,
                            "token": tok(5),
                            "held_at": held_yesterday,
                            "terminal": a.id,
                        },
                    }),
                    15
                ),
                void_op("v-none", "h-3", "2025-12-03T21:30:00+09:00"),
                numbered(void_op("v-9", "h-3", "2025-12-03T21:40:00+09:00"), 9),
            ]),
        )
        .await?;
    assert_eq!(
        statuses(&answer),
        vec![
            pair("accepted", ""),
            pair("rejected", "void_too_late"),
            pair("rejected", "hold_time_out_of_window"),
            pair("rejected", "void_too_late"),
            pair("rejected", "invalid_payload"),
        ],
        "{}",
        answer.body
    );
    // Only sale 2 came back: 100 - 40 + 10.
    assert_eq!(result(&answer, 0)["balance"], 70);

    // Counter B, silent since, voids its sale nine days later: past any offline window.
    h.clock.set(launch_morning() + chrono::TimeDelta::days(9));
    let late = h
        .sync(
            &b,
            json!([numbered(
                void_op("v-b", "h-b", "2025-12-03T12:00:00+09:00"),
                2
            )]),
        )
        .await?;
    assert_eq!(statuses(&late), vec![pair("rejected", "void_too_late")]);

    // Nothing refused changed anything: three sales stand, one is voided, no new hold.
    assert_eq!(h.count("holds")?, 4);
    assert_eq!(h.count("holds WHERE status = 'voided'")?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_are_settled_against_the_balance_and_overspending_is_reported() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.add_terminal_at("성북구 보건소", "kiosk", 1).await?;
    let a = h.add_terminal_at("온누리약국", "counter", 2).await?;
    let b = h.add_terminal_at("행복편의점", "counter", 3).await?;
    let issuer = h.issuer()?;
    let tok = |nonce| token(&issuer, 1, nonce);
    let enrolled = h.sync(&kiosk, json!([enrollment("e-1", "김영희")])).await?;
    assert_eq!(result(&enrolled, 0)["member_number"], "PP-00000001");
    let steps = h
        .sync(&a, json!([step_report("s-1", "PP-00000001", 10_000)]))
        .await?;
    assert_eq!(result(&steps, 0)["points"], 100, "{}", steps.body);

    // Counter A posts 80 of 100 points; counter B, offline at the time, took 50 more.
    let first = h
        .sync(
            &a,
            json!([hold_op("h-a1", "PP-00000001", 80, &tok(1), &a.id)]),
        )
        .await?;
    assert_eq!(statuses(&first), vec![pair("accepted", "")]);
    assert_eq!(result(&first, 0)["balance"], 20);
    let second = h
        .sync(
            &b,
            json!([
                hold_op("h-b1", "PP-00000001", 50, &tok(2), &b.id),
                hold_op("h-b2", "PP-00000001", 10, &tok(1), &b.id),
                hold_op("h-b3", "PP-00000001", 10, &tok(3), &a.id),
                hold_op("h-b4", "PP-99999999", 10, &tok(4), &b.id),
                void_op("v-b1", "h-a1", "2025-12-03T10:00:00+09:00"),
            ]),
        )
        .await?;
    assert_eq!(
        statuses(&second),
        vec![
            pair("rejected", "insufficient_points"),
            pair("rejected", "token_reused"),
            pair("rejected", "invalid_payload"),
            pair("rejected", "unknown_member"),
            pair("rejected", "unknown_hold"),
        ],
        "{}",
        second.body
    );
    // Sent again (the terminal did not hear the answer): the same refusals, no new rows.
    let again = h
        .sync(
            &b,
            json!([hold_op("h-b1", "PP-00000001", 50, &tok(2), &b.id)]),
        )
        .await?;
    assert_eq!(
        statuses(&again),
        vec![pair("rejected", "insufficient_points")]
    );
    assert_eq!(h.count("holds")?, 3);
    // A kiosk may not hold points.
    let kiosk_hold = h
        .sync(
            &kiosk,
            json!([hold_op("h-k1", "PP-00000001", 1, &tok(9), &kiosk.id)]),
        )
        .await?;
    assert_eq!(statuses(&kiosk_hold), vec![pair("rejected", "role")]);

    let report = h
        .signed(&b, "GET", "/v1/reports/reconciliation?day=2025-12-03", b"")
        .await?;
    assert_eq!(report.status, 200, "{}", report.body);
    assert_eq!(report.body["terminal"], b.id.as_str());
    assert_eq!(
        report.body["insufficient"],
        json!({ "count": 1, "points": 50 })
    );
    assert_eq!(
        report.body["token_reused"],
        json!({ "count": 1, "points": 10 })
    );
    assert_eq!(report.body["posted"], json!({ "count": 0, "points": 0 }));
    assert_eq!(report.body["holds"][0]["balance_before"], 20);

    let listed = cli(&["report", "overspend", "--db", h.db(), "--day", "2025-12-03"])?;
    assert!(
        listed.contains(&format!("PP-00000001\t{}\t80\tposted", a.id)),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("PP-00000001\t{}\t50\tinsufficient", b.id)),
        "{listed}"
    );
    assert!(
        listed.contains("# PP-00000001: 60 points not covered"),
        "{listed}"
    );
    let quiet = cli(&["report", "overspend", "--db", h.db(), "--day", "2025-12-02"])?;
    assert!(quiet.contains("no overspending"), "{quiet}");

    // A void the next day is too late; the same day it gives the points back.
    let late = h
        .sync(
            &a,
            json!([void_op("v-a0", "h-a1", "2025-12-04T09:00:00+09:00")]),
        )
        .await?;
    assert_eq!(statuses(&late), vec![pair("rejected", "void_too_late")]);
    let voided = h
        .sync(
            &a,
            json!([void_op("v-a1", "h-a1", "2025-12-03T11:00:00+09:00")]),
        )
        .await?;
    assert_eq!(statuses(&voided), vec![pair("accepted", "")]);
    assert_eq!(result(&voided, 0)["balance"], 100);
    let twice = h
        .sync(
            &a,
            json!([void_op("v-a2", "h-a1", "2025-12-03T11:00:00+09:00")]),
        )
        .await?;
    assert_eq!(statuses(&twice), vec![pair("rejected", "unknown_hold")]);

    // Pull: balances, revoked members and keys arrive as deltas by cursor, in pages.
    cli(&[
        "member",
        "revoke",
        "--db",
        h.db(),
        "--member",
        "PP-00000001",
    ])?;
    let first = h.pull(&a, json!({ "limit": 1 })).await?;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["more"], true);
    // The key was added first, so it is the first change.
    assert_eq!(first.body["redemption_keys"][0]["key_id"], 1);
    assert_eq!(
        first.body["redemption_keys"][0]["public_key"],
        base64::engine::general_purpose::STANDARD.encode(issuer.public_key())
    );
    assert_eq!(first.body["balances"], json!([]));
    let cursor = first.body["cursor"].clone();
    let rest = h.pull(&a, json!({ "cursor": cursor })).await?;
    assert_eq!(rest.body["more"], false);
    assert!(
        rest.body.get("policies").is_none(),
        "unchanged policies are not sent again"
    );
    assert_eq!(
        rest.body["balances"],
        json!([{ "member_number": "PP-00000001", "credited": 100, "spent": 0, "balance": 100 }])
    );
    assert_eq!(rest.body["revoked_members"], json!(["PP-00000001"]));
    assert_eq!(rest.body["redemption_keys"], json!([]));
    let done = h.pull(&a, json!({ "cursor": rest.body["cursor"] })).await?;
    assert_eq!(done.body["balances"], json!([]));
    assert_eq!(done.body["cursor"], rest.body["cursor"]);
    let revoked = h
        .sync(
            &a,
            json!([hold_op("h-a9", "PP-00000001", 1, &tok(8), &a.id)]),
        )
        .await?;
    assert_eq!(statuses(&revoked), vec![pair("rejected", "member_revoked")]);
    Ok(())
}

/// A counter's database copied: its key signs requests, but without a token the member showed
/// (signed by the server's key, of that member, in its time, not revoked) it spends nothing,
/// and each refusal has its own reason and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_counter_cannot_spend_points_without_the_members_token() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.add_terminal_at("성북구 보건소", "kiosk", 1).await?;
    let stolen = h.add_terminal_at("온누리약국", "counter", 2).await?;
    let issuer = h.issuer()?;
    h.sync(
        &kiosk,
        json!([enrollment("e-1", "김영희"), enrollment("e-2", "박철수")]),
    )
    .await?;
    // Enough points that the balance is never what stops a hold.
    h.test_db.execute("UPDATE balances SET credited = 100000")?;

    let held = DateTime::parse_from_rfc3339(HELD_AT)?.to_utc();
    let dynamic = |key: &IssuerKey, member: u64, issued: DateTime<Utc>, nonce: u8| {
        key.issue_dynamic(MemberNo(member), issued, 120, [nonce; 8])
            .map(|t| t.to_text())
    };
    let attacker = IssuerKey::from_seed(issuer.key_id(), [0x66; 32]);
    let unknown = IssuerKey::from_seed(9, [0x99; 32]);
    let mut in_future = hold_op("x-8", "PP-00000001", 100, &token(&issuer, 1, 8), &stolen.id);
    in_future["payload"]["held_at"] = json!("2025-12-03T11:00:00+09:00");
    let mut long_ago = hold_op("x-9", "PP-00000001", 100, &token(&issuer, 1, 9), &stolen.id);
    long_ago["payload"]["held_at"] = json!("2025-11-20T10:00:00+09:00");
    let attacks = json!([
        // A made-up token id, as the attack first found.
        hold_op("x-1", "PP-00000001", 5000, "tok-made-up", &stolen.id),
        // Another member's token (seen at the counter) for this member's points.
        hold_op(
            "x-2",
            "PP-00000001",
            5000,
            &token(&issuer, 2, 2),
            &stolen.id
        ),
        // A token signed by a key of the attacker's, under the server's key id or another.
        hold_op(
            "x-3",
            "PP-00000001",
            5000,
            &dynamic(&attacker, 1, held, 3)?,
            &stolen.id
        ),
        hold_op(
            "x-4",
            "PP-00000001",
            5000,
            &dynamic(&unknown, 1, held, 4)?,
            &stolen.id
        ),
        // A real token of the member, used after it expired, or dated before it was made.
        hold_op(
            "x-5",
            "PP-00000001",
            5000,
            &dynamic(&issuer, 1, held - chrono::Duration::minutes(10), 5)?,
            &stolen.id
        ),
        hold_op(
            "x-6",
            "PP-00000001",
            5000,
            &dynamic(&issuer, 1, held + chrono::Duration::minutes(5), 6)?,
            &stolen.id
        ),
        // A real token, bytes altered.
        hold_op(
            "x-7",
            "PP-00000001",
            5000,
            &token(&issuer, 1, 7).replacen("PP1:", "PP1:0", 1),
            &stolen.id
        ),
        // Dated after the server's clock, or longer ago than a counter may hold offline.
        in_future,
        long_ago,
        // More than one redemption may be (100,000 points under the policy in force).
        hold_op(
            "x-10",
            "PP-00000001",
            100_001,
            &token(&issuer, 1, 10),
            &stolen.id
        ),
    ]);
    let answer = h.sync(&stolen, attacks).await?;
    assert_eq!(
        statuses(&answer),
        vec![
            pair("rejected", "token_malformed"),
            pair("rejected", "token_member_mismatch"),
            pair("rejected", "token_tampered"),
            pair("rejected", "token_unknown_key"),
            pair("rejected", "token_expired"),
            pair("rejected", "token_not_yet_valid"),
            pair("rejected", "token_malformed"),
            pair("rejected", "hold_time_out_of_window"),
            pair("rejected", "hold_time_out_of_window"),
            pair("rejected", "amount_over_limit"),
        ],
        "{}",
        answer.body
    );
    let untouched = || -> Result<(i64, i64, i64), Box<dyn std::error::Error>> {
        let row = h.test_db.row(
            "SELECT (SELECT COUNT(*) FROM holds), CAST((SELECT SUM(spent) FROM balances) AS BIGINT),
                    (SELECT COUNT(*) FROM operations)",
        )?;
        Ok((row[0], row[1], row[2]))
    };
    assert_eq!(untouched()?, (0, 0, 2), "nothing held, nothing spent");

    // A printed card: the counter alone checks its PIN, so the server bounds what a card
    // spends in a day by the policy's limit for cards (20,000 points), whatever counters say.
    let card = |member: u64, serial: u16| {
        issuer
            .issue_card(
                &redemption_token::CardSpec {
                    member: MemberNo(member),
                    serial,
                    issued_at: held - chrono::Duration::days(30),
                    expires_at: held + chrono::Duration::days(1000),
                    pin_cost: redemption_token::DEFAULT_PIN_COST,
                    salt: [7; 8],
                },
                "482915",
            )
            .map(|t| t.to_text())
    };
    let card_1 = card(1, 1)?;
    let answer = h
        .sync(
            &stolen,
            json!([
                hold_op("c-1", "PP-00000001", 10_000, &card_1, &stolen.id),
                hold_op("c-2", "PP-00000001", 10_000, &card_1, &stolen.id),
                hold_op("c-3", "PP-00000001", 100, &card_1, &stolen.id),
            ]),
        )
        .await?;
    assert_eq!(
        statuses(&answer),
        vec![
            pair("accepted", ""),
            pair("accepted", ""),
            pair("rejected", "card_day_limit"),
        ],
        "{}",
        answer.body
    );
    // A card revoked (lost) is refused from then on.
    let card_2 = card(2, 1)?;
    cli(&[
        "member",
        "revoke-card",
        "--db",
        h.db(),
        "--member",
        "PP-00000002",
        "--serial",
        "1",
    ])?;
    let answer = h
        .sync(
            &stolen,
            json!([hold_op("c-4", "PP-00000002", 100, &card_2, &stolen.id)]),
        )
        .await?;
    assert_eq!(statuses(&answer), vec![pair("rejected", "card_revoked")]);
    assert_eq!(untouched()?, (2, 20_000, 4));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_pull_and_reports_gets_clear_4xx() -> TestResult {
    let h = start(Config::default()).await?;
    let counter = h.add_terminal_at("온누리약국", "counter", 2).await?;
    let kiosk = h.add_terminal_at("성북구 보건소", "kiosk", 1).await?;
    h.sync(&kiosk, json!([enrollment("e-1", "김영희")])).await?;
    let checks: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("POST", "/v1/pull", b"{\"cursor\":".to_vec(), 400),
        ("POST", "/v1/pull", b"[1]".to_vec(), 400),
        ("POST", "/v1/pull", br#"{"cursor":"x"}"#.to_vec(), 400),
        (
            "POST",
            "/v1/pull",
            br#"{"cursor":"1.zzzzzzzzzzzzzzzz.1"}"#.to_vec(),
            400,
        ),
        (
            "POST",
            "/v1/pull",
            br#"{"cursor":"1.0123456789abcdef.-1"}"#.to_vec(),
            400,
        ),
        ("POST", "/v1/pull", br#"{"limit":0}"#.to_vec(), 400),
        ("POST", "/v1/pull", br#"{"limit":1001}"#.to_vec(), 400),
        ("POST", "/v1/pull", br#"{"limit":-1}"#.to_vec(), 400),
        ("POST", "/v1/pull", br#"{"extra":1}"#.to_vec(), 400),
        ("GET", "/v1/reports/reconciliation", Vec::new(), 400),
        (
            "GET",
            "/v1/reports/reconciliation?day=2025-13-01",
            Vec::new(),
            400,
        ),
        ("GET", "/v1/reports/reconciliation?day=", Vec::new(), 400),
        ("GET", "/v1/pull", Vec::new(), 405),
    ];
    for (method, path, body, status) in checks {
        let answer = h.signed(&counter, method, path, &body).await?;
        assert_eq!(
            answer.status,
            status,
            "{method} {path} {:?}: {}",
            String::from_utf8_lossy(&body),
            answer.body
        );
        if status != 405 {
            assert_eq!(answer.body["code"], "invalid_request");
        }
    }
    // Unsigned, or signed by someone else.
    let unsigned = h.post("/v1/pull", b"{}".to_vec()).await?;
    assert_eq!(
        (unsigned.status, unsigned.body["code"].clone()),
        (401, json!("unauthenticated"))
    );
    let unsigned = h.get("/v1/reports/reconciliation?day=2025-12-03").await?;
    assert_eq!(unsigned.status, 401);
    let forged = Term {
        id: counter.id.clone(),
        key: SigningKey::from_bytes(&[9; 32]),
    };
    let forged = h.pull(&forged, json!({})).await?;
    assert_eq!(
        (forged.status, forged.body["code"].clone()),
        (401, json!("bad_signature"))
    );
    cli(&[
        "terminal",
        "revoke",
        "--db",
        h.db(),
        "--terminal",
        &counter.id,
    ])?;
    let revoked = h.pull(&counter, json!({})).await?;
    assert_eq!(revoked.status, 403);

    // Malformed holds and voids: rejected one by one, nothing held, the balance untouched.
    let other = h.add_terminal_at("행복편의점", "counter", 3).await?;
    let mut missing = hold_op("h-1", "PP-00000001", 10, "tok-1", &other.id);
    missing["payload"]
        .as_object_mut()
        .map(|p| p.remove("token"));
    let mut extra = hold_op("h-2", "PP-00000001", 10, "tok-2", &other.id);
    extra["payload"]["pin"] = json!("1234");
    let mut negative = hold_op("h-3", "PP-00000001", 10, "tok-3", &other.id);
    negative["payload"]["amount"] = json!(-5);
    let mut bad_time = hold_op("h-5", "PP-00000001", 10, "tok-5", &other.id);
    bad_time["payload"]["held_at"] = json!("yesterday");
    let answer = h
        .sync(
            &other,
            json!([
                missing,
                extra,
                negative,
                hold_op("h-4", "PP-00000001", 0, "tok-4", &other.id),
                bad_time,
                hold_op("h-6", "PP-00000001", 10, "", &other.id),
                hold_op("h-7", "PP-00000001", 2_000_000, "tok-7", &other.id),
                { "op_id": "v-1", "kind": "void", "payload": { "hold_op_id": 5 } },
                void_op("v-2", "h-1", "not a time"),
            ]),
        )
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        statuses(&answer)
            .iter()
            .all(|s| *s == pair("rejected", "invalid_payload")),
        "{}",
        answer.body
    );
    assert_eq!(h.count("holds")?, 0);
    assert_eq!(h.count("operations")?, 1);
    Ok(())
}

/// A pairing by member number, with the member's `token` shown at [`HELD_AT`].
fn pairing_op(op_id: &str, serial: &str, member: &str, token: &str) -> Value {
    json!({
        "op_id": op_id,
        "kind": "watch_pairing",
        "payload": { "serial": serial, "member_number": member, "token": token,
                     "paired_at": HELD_AT },
    })
}

fn pairing_by_enrollment(op_id: &str, serial: &str, enrollment: &str) -> Value {
    json!({
        "op_id": op_id,
        "kind": "watch_pairing",
        "payload": { "serial": serial, "enrollment_op_id": enrollment },
    })
}

/// A pairing as stored: serial, member id, whether it ended.
type StoredPairing = (String, i64, bool);

fn pairings(h: &Harness) -> Result<Vec<StoredPairing>, Box<dyn std::error::Error>> {
    h.test_db
        .rows3("SELECT serial, member_id, ended_at IS NOT NULL FROM watch_pairings ORDER BY id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_are_paired_to_one_member_at_a_time() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let counter = h.terminal("counter", 2).await?;
    let issuer = h.issuer()?;
    let tok = |member, nonce| token(&issuer, member, nonce);

    // A kiosk signs a person up and pairs the watch by the enrollment's op id, in one batch:
    // the enrollment first, then the pairing.
    let signup = h
        .sync(
            &kiosk,
            json!([
                enrollment("e-1", "김영희"),
                pairing_by_enrollment("w-1", "PW-0001", "e-1"),
                pairing_by_enrollment("w-2", "PW-0009", "e-unknown"),
            ]),
        )
        .await?;
    assert_eq!(signup.status, 200, "{}", signup.body);
    assert_eq!(
        statuses(&signup),
        vec![
            pair("accepted", ""),
            pair("accepted", ""),
            pair("rejected", "unknown_enrollment")
        ]
    );
    assert_eq!(result(&signup, 1)["member_number"], "PP-00000001");
    assert!(result(&signup, 2)["message"].as_str().is_some());

    // The same op again is a duplicate; the same watch and member under a new op too.
    let again = h
        .sync(
            &kiosk,
            json!([
                pairing_by_enrollment("w-1", "PW-0001", "e-1"),
                pairing_op("w-3", "PW-0001", "PP-00000001", &tok(1, 1)),
            ]),
        )
        .await?;
    assert_eq!(
        statuses(&again),
        vec![pair("duplicate", ""), pair("duplicate", "")]
    );
    let same = h
        .sync(
            &counter,
            json!([pairing_op("w-4", "PW-0001", "PP-00000001", &tok(1, 2))]),
        )
        .await?;
    assert_eq!(statuses(&same), vec![pair("duplicate", "")]);
    assert_eq!(result(&same, 0)["member_number"], "PP-00000001");

    // A second member: the first watch is taken, a counter's first sync pairs another one.
    h.sync(&kiosk, json!([enrollment("e-2", "박철수")])).await?;
    let other = h
        .sync(
            &counter,
            json!([
                pairing_op("w-5", "PW-0001", "PP-00000002", &tok(2, 1)),
                pairing_op("w-6", "PW-0002", "PP-00000002", &tok(2, 2)),
                pairing_op("w-7", "PW-0003", "PP-00000099", &tok(99, 1)),
            ]),
        )
        .await?;
    assert_eq!(
        statuses(&other),
        vec![
            pair("rejected", "watch_paired_elsewhere"),
            pair("accepted", ""),
            pair("rejected", "unknown_member")
        ]
    );

    // A member with a new watch: the old pairing ends, and the old watch is free again.
    let replaced = h
        .sync(
            &counter,
            json!([pairing_op("w-8", "PW-0004", "PP-00000001", &tok(1, 3))]),
        )
        .await?;
    assert_eq!(statuses(&replaced), vec![pair("accepted", "")]);
    assert_eq!(
        pairings(&h)?,
        vec![
            ("PW-0001".to_owned(), 1, true),
            ("PW-0002".to_owned(), 2, false),
            ("PW-0004".to_owned(), 1, false),
        ]
    );

    // Terminals pull the pairings: serial to member number, and which ended.
    let pulled = h.pull(&counter, json!({})).await?;
    assert_eq!(pulled.status, 200, "{}", pulled.body);
    assert_eq!(
        pulled.body["watch_pairings"],
        json!([
            { "serial": "PW-0002", "member_number": "PP-00000002", "ended": false },
            { "serial": "PW-0001", "member_number": "PP-00000001", "ended": true },
            { "serial": "PW-0004", "member_number": "PP-00000001", "ended": false },
        ])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_watch_pairings_are_rejected_one_by_one_and_change_nothing() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    h.sync(&kiosk, json!([enrollment("e-1", "김영희")])).await?;
    let long = "W".repeat(65);
    let answer = h
        .sync(
            &kiosk,
            json!([
                { "op_id": "w-1", "kind": "watch_pairing", "payload": { "serial": "PW-1" } },
                { "op_id": "w-2", "kind": "watch_pairing",
                  "payload": { "serial": "PW-1", "member_number": "PP-00000001",
                               "enrollment_op_id": "e-1" } },
                { "op_id": "w-3", "kind": "watch_pairing",
                  "payload": { "serial": " ", "member_number": "PP-00000001" } },
                { "op_id": "w-4", "kind": "watch_pairing",
                  "payload": { "serial": long, "member_number": "PP-00000001" } },
                { "op_id": "w-5", "kind": "watch_pairing",
                  "payload": { "serial": "PW-1", "member_number": "PP-00000001", "color": "red" } },
                { "op_id": "w-6", "kind": "watch_pairing", "payload": "PW-1" },
                { "op_id": "w-7", "kind": "watch_pairing",
                  "payload": { "serial": "PW-1", "member_number": "nobody" } },
            ]),
        )
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let mut expected = vec![pair("rejected", "invalid_payload"); 6];
    expected.push(pair("rejected", "unknown_member"));
    assert_eq!(statuses(&answer), expected);

    // A counter (stolen, or a dishonest clerk) pairs a watch of its own to a member without the
    // member there: by number alone, with another member's token, with one it made itself, or
    // dated back to when an old token was valid.
    let counter = h.terminal("counter", 2).await?;
    h.sync(&kiosk, json!([enrollment("e-2", "박철수")])).await?;
    let issuer = h.issuer()?;
    // Made by the counter itself under the server's key id.
    let tampered = token(&IssuerKey::from_seed(issuer.key_id(), [0x66; 32]), 1, 9);
    let mut old = pairing_op("w-11", "PW-1", "PP-00000001", &token(&issuer, 1, 4));
    old["payload"]["paired_at"] = json!("2025-11-20T09:30:00+09:00");
    let forged = h
        .sync(
            &counter,
            json!([
                { "op_id": "w-8", "kind": "watch_pairing",
                  "payload": { "serial": "PW-1", "member_number": "PP-00000001" } },
                pairing_op("w-9", "PW-1", "PP-00000001", &token(&issuer, 2, 1)),
                pairing_op("w-10", "PW-1", "PP-00000001", &tampered),
                old,
            ]),
        )
        .await?;
    assert_eq!(
        statuses(&forged),
        vec![
            pair("rejected", "pairing_needs_token"),
            pair("rejected", "token_member_mismatch"),
            pair("rejected", "token_tampered"),
            pair("rejected", "pairing_time_out_of_window"),
        ],
        "{}",
        forged.body
    );
    assert_eq!(h.count("watch_pairings")?, 0);
    assert_eq!(h.count("operations")?, 2);
    // Rejections are not remembered: the op id can still carry a good pairing.
    let good = h
        .sync(
            &kiosk,
            json!([pairing_op(
                "w-1",
                "PW-1",
                "PP-00000001",
                &token(&issuer, 1, 1)
            )]),
        )
        .await?;
    assert_eq!(statuses(&good), vec![pair("accepted", "")]);
    assert_eq!(h.count("watch_pairings")?, 1);
    Ok(())
}

/// A card-signing key for the harness, published under key id 1.
fn card_key() -> redemption_token::IssuerKey {
    redemption_token::IssuerKey::from_seed(1, [7; 32])
}

fn card_ask(member: &str, pin: &str, salt: [u8; 8]) -> Value {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let member_no: redemption_token::MemberNo =
        member.parse().unwrap_or(redemption_token::MemberNo(0));
    let cost = redemption_token::MIN_ISSUE_PIN_COST;
    let check = redemption_token::card_pin_check(pin, cost, salt, member_no, 1)
        .map(|c| hex(&c.tag))
        .unwrap_or_default();
    json!({ "member_number": member, "serial": 1, "pin_cost": cost,
            "salt": hex(&salt), "pin_tag": check })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_gets_the_first_card_of_its_own_members_signed_and_never_a_second() -> TestResult {
    let h = start(Config {
        card_key: Some(card_key()),
        ..Config::default()
    })
    .await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let other_kiosk = h.terminal("kiosk", 3).await?;
    let counter = h.terminal("counter", 2).await?;
    h.sync(&kiosk, json!([enrollment("op-1", "이순자")]))
        .await?;
    let ask = |term, body| h.post_json(term, "/v1/cards", body);
    let salt = [9, 8, 7, 6, 5, 4, 3, 2];
    let card = ask(&kiosk, card_ask("PP-00000001", "802417", salt)).await?;
    assert_eq!(card.status, 200, "{}", card.body);
    let token = card.body["token"].as_str().ok_or("no token")?.to_owned();
    assert_eq!(
        (
            &card.body["member_number"],
            &card.body["serial"],
            &card.body["key_id"]
        ),
        (&json!("PP-00000001"), &json!(1), &json!(1))
    );
    // A counter verifies it offline with the published key and the member's PIN only.
    let keys = redemption_token::KeySet::new(&[card_key().published(launch_morning())])?;
    let none = redemption_token::Revocations::default();
    let now = launch_morning() + chrono::Duration::minutes(5);
    let claims = redemption_token::verify(&token, &keys, &none, Some("802417"), now)
        .map_err(|r| r.code())?;
    assert_eq!(claims.member.to_string(), "PP-00000001");
    assert_eq!(
        redemption_token::verify(&token, &keys, &none, Some("802418"), now)
            .map_err(|r| r.code())
            .err(),
        Some("wrong_pin")
    );
    // The same request again (an answer lost on the way) gets the very same card.
    let again = ask(&kiosk, card_ask("PP-00000001", "802417", salt)).await?;
    assert_eq!(
        (again.status, again.body["token"].as_str()),
        (200, Some(token.as_str()))
    );
    // Another PIN for the same card is refused; so is another kiosk, a counter, a member
    // nobody enrolled, a second card, and a card for a server with no card key.
    let refusals = [
        (
            &kiosk,
            card_ask("PP-00000001", "135792", [1; 8]),
            409,
            "card_exists",
        ),
        (
            &other_kiosk,
            card_ask("PP-00000001", "802417", salt),
            403,
            "card_not_allowed",
        ),
        (
            &counter,
            card_ask("PP-00000001", "802417", salt),
            403,
            "role_not_allowed",
        ),
        (
            &kiosk,
            card_ask("PP-00000099", "802417", salt),
            404,
            "unknown_member",
        ),
    ];
    for (term, body, status, code) in refusals {
        let answer = ask(term, body.clone()).await?;
        assert_eq!(
            (answer.status, answer.body["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        assert!(answer.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let mut second = card_ask("PP-00000001", "802417", salt);
    second["serial"] = json!(2);
    let answer = ask(&kiosk, second).await?;
    assert_eq!(answer.body["code"].as_str(), Some("card_not_allowed"));
    for bad in [
        json!({"member_number": "PP-00000001", "serial": 1, "pin_cost": 8, "salt": "00", "pin_tag": "abcd"}),
        json!({"member_number": "PP-00000001", "serial": 1, "pin_cost": 8, "salt": "0001020304050607", "pin_tag": "abc"}),
        json!({"member_number": "PP-00000001", "serial": 1, "pin_cost": 40, "salt": "0001020304050607", "pin_tag": "abcd"}),
        json!({"member_number": "PP-00000001", "serial": 0, "pin_cost": 8, "salt": "0001020304050607", "pin_tag": "abcd"}),
        json!({"member_number": "someone", "serial": 1, "pin_cost": 8, "salt": "0001020304050607", "pin_tag": "abcd"}),
        json!({"member_number": "PP-00000001", "serial": 1, "pin_cost": 8, "salt": "zz01020304050607", "pin_tag": "abcd"}),
        json!({"member_number": "PP-00000001", "serial": 1, "pin_cost": 8, "salt": "0001020304050607"}),
    ] {
        let answer = ask(&kiosk, bad.clone()).await?;
        assert_eq!(
            (answer.status, answer.body["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
    // A PIN check a stolen kiosk's copy of the card's text could grind in a minute is not
    // signed, whatever the kiosk asks.
    let mut weak = card_ask("PP-00000001", "802417", salt);
    weak["pin_cost"] = json!(8);
    let answer = ask(&kiosk, weak).await?;
    assert_eq!(
        (answer.status, answer.body["code"].as_str()),
        (400, Some("weak_pin_check"))
    );
    assert_eq!(h.count("cards")?, 1);

    // A server started without a card key says so, and records nothing.
    let plain = start(Config::default()).await?;
    let kiosk = plain.terminal("kiosk", 1).await?;
    plain
        .sync(&kiosk, json!([enrollment("op-1", "이순자")]))
        .await?;
    let body = serde_json::to_vec(&card_ask("PP-00000001", "802417", salt))?;
    let answer = plain.signed(&kiosk, "POST", "/v1/cards", &body).await?;
    assert_eq!(
        (answer.status, answer.body["code"].as_str()),
        (403, Some("cards_not_issued"))
    );
    assert_eq!(plain.count("cards")?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminals_tell_how_they_are_doing_with_each_pull() -> TestResult {
    let config = Config {
        sightings_every: std::time::Duration::from_millis(20),
        ..Config::default()
    };
    let h = start(config).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let counter = h.terminal("counter", 2).await?;
    let report = json!({
        "app_version": "0.3.1",
        "waiting": 4,
        "oldest_waiting_s": 95,
        "clock_offset_s": -3
    });
    let pulled = h.pull(&kiosk, json!({ "report": report })).await?;
    assert_eq!(pulled.status, 200, "{}", pulled.body);
    // A push is a sighting too, without a report.
    let pushed = h.sync(&counter, json!([])).await?;
    assert_eq!(pushed.status, 200, "{}", pushed.body);

    // Every process writes down what it heard on its own time: wait for it.
    let row = |listed: &str, label: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(label))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let mut listed = String::new();
    for _ in 0..250 {
        listed = cli(&["terminal", "list", "--db", h.db()])?;
        if !row(&listed, &counter.id).ends_with("\t-\t-\t-\t-\t-")
            && row(&listed, &kiosk.id).contains("0.3.1")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let seen = launch_morning().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(
        row(&listed, &kiosk.id).ends_with(&format!("\t{seen}\t0.3.1\t4\t95\t-3")),
        "{listed}"
    );
    assert!(
        row(&listed, &counter.id).ends_with(&format!("\t{seen}\t-\t-\t-\t-")),
        "{listed}"
    );

    // A later pull without a report moves the time seen on and keeps the last report.
    h.clock
        .set(launch_morning() + chrono::TimeDelta::minutes(10));
    let quiet = h.pull(&kiosk, json!({})).await?;
    assert_eq!(quiet.status, 200, "{}", quiet.body);
    let later = (launch_morning() + chrono::TimeDelta::minutes(10))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for _ in 0..250 {
        listed = cli(&["terminal", "list", "--db", h.db()])?;
        if row(&listed, &kiosk.id).contains(&later) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        row(&listed, &kiosk.id).ends_with(&format!("\t{later}\t0.3.1\t4\t95\t-3")),
        "{listed}"
    );

    // A report that cannot be true is refused with the pull, and nothing of it is kept.
    for bad in [
        json!({ "app_version": "", "waiting": 0 }),
        json!({ "app_version": "x".repeat(33), "waiting": 0 }),
        json!({ "app_version": "1\n2", "waiting": 0 }),
        json!({ "app_version": "1", "waiting": 0, "oldest_waiting_s": 5 }),
        json!({ "app_version": "1", "waiting": -1 }),
        json!({ "app_version": "1", "waiting": 0, "clock_offset_s": 400_000_000_i64 }),
        json!({ "app_version": "1", "waiting": 0, "extra": true }),
    ] {
        let refused = h.pull(&kiosk, json!({ "report": bad })).await?;
        assert_eq!(
            (refused.status, refused.body["code"].clone()),
            (400, json!("invalid_request")),
            "{bad}"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let listed = cli(&["terminal", "list", "--db", h.db()])?;
    assert!(
        row(&listed, &kiosk.id).ends_with(&format!("\t{later}\t0.3.1\t4\t95\t-3")),
        "{listed}"
    );
    Ok(())
}
