//! The server's own disk full. On SQLite the database sits on a small real tmpfs when this
//! process may mount one (root, as in CI); otherwise the writer's connection is capped with
//! SQLite's `max_page_count`, which fails writes with the same SQLITE_FULL. On PostgreSQL
//! (`PALPAL_TEST_DB=postgres`) the tables and indexes are in a tablespace on a small real
//! tmpfs, filled up to a little room by a filler file, so that a table that cannot grow fails
//! with `disk_full` (53100); mounting needs root there. The test prints which one ran. Signed
//! batches are pushed until one does not fit; it must be refused whole with a retryable 503
//! `storage_full`, reads must go on, and once space is freed (a filler file removed, or a
//! filler table dropped) the same operations must be applied exactly once, without a restart.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use ed25519_dalek::SigningKey;
use palpal_central::clock::{Clock as _, FixedClock};
use palpal_central::http::{self, Config};
use sync_protocol::signing;

use super::{answer, cli, launch_morning, on_postgres, postgres_data_key, Answer, Term, TestDb};
use palpal_central::store::postgres::PostgresBackend;
use palpal_central::store::{published_policies, Backend, SqliteBackend, SqliteStore, Store};
use points_core::PolicySet;
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error>;

/// The size of the tmpfs, and of the room given back once it is full.
const DISK: &str = "size=1m";
const FILLER_BYTES: usize = 256 * 1024;
/// PostgreSQL's tablespace: the tmpfs (its empty tables and indexes take about 1 MiB), and the
/// room left beside the filler file once the schema is in it.
const TABLESPACE_DISK: &str = "size=4m";
const TABLESPACE_ROOM: u64 = 320 * 1024;
/// With `max_page_count`: pages the database may grow by, and the filler table's pages.
const CAP_SLACK_PAGES: u32 = 24;
/// Step reports per request while filling the disk.
const BATCH: usize = 25;
const MEMBERS: usize = 10;

/// Where the full disk comes from, and how room is given back.
enum Disk {
    /// A real tmpfs mounted at `mount`, with a filler file on it.
    Tmpfs { mount: PathBuf, filler: PathBuf },
    /// SQLite's `max_page_count` on every connection the server opens, with a filler table
    /// inside the database (its pages become free pages when it is dropped).
    PageCap,
    /// PostgreSQL's tables and indexes in a tablespace on a real tmpfs at `mount`; `filler`
    /// takes all but [`TABLESPACE_ROOM`] of it once the schema is made.
    Tablespace { mount: PathBuf, filler: PathBuf },
}

/// Unmounts the tmpfs however the test ends: once the server's runtime is gone the writer
/// thread closes its connection just after, so an unmount that finds the disk busy is tried
/// again, and lazily as a last resort.
struct Mounted(Option<PathBuf>);

impl Drop for Mounted {
    fn drop(&mut self) {
        let Some(mount) = self.0.take() else {
            return;
        };
        for _ in 0..50 {
            if umount(&mount, false) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let lazy = umount(&mount, true);
        eprintln!("tmpfs {} unmounted lazily: {lazy}", mount.display());
    }
}

fn umount(mount: &Path, lazy: bool) -> bool {
    let mut command = Command::new("umount");
    if lazy {
        command.arg("-l");
    }
    command
        .arg(mount)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn mount_tmpfs(at: &Path, size: &str) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", size, "tmpfs"])
        .arg(at)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Opens the server's stores with the database capped at `cap` pages.
struct CappedBackend {
    path: PathBuf,
    policies: Arc<PolicySet>,
    cap: u32,
}

impl Backend for CappedBackend {
    fn open(&self) -> anyhow::Result<Box<dyn Store>> {
        let mut store = SqliteStore::open(&self.path, Arc::clone(&self.policies))?;
        store.set_max_page_count(self.cap)?;
        Ok(Box::new(store))
    }
}

#[test]
fn a_full_disk_refuses_the_batch_whole_and_the_retry_after_space_is_freed_applies_once(
) -> Result<(), Error> {
    if on_postgres() {
        return on_a_full_tablespace();
    }
    let dir = tempfile::tempdir()?;
    let small = dir.path().join("small");
    std::fs::create_dir(&small)?;
    let real = mount_tmpfs(&small, DISK);
    // Declared before the runtime, so dropped after it (and after the server) on every path.
    let _mounted = Mounted(real.then(|| small.clone()));
    let disk = if real {
        let filler = small.join("filler");
        std::fs::write(&filler, vec![0u8; FILLER_BYTES])?;
        Disk::Tmpfs {
            mount: small.clone(),
            filler,
        }
    } else {
        Disk::PageCap
    };
    eprintln!(
        "full disk: {}",
        match &disk {
            Disk::Tmpfs { .. } => format!("a real tmpfs ({DISK}) with a {FILLER_BYTES}-byte filler file"),
            Disk::PageCap => format!(
                "SQLite max_page_count (page count + {CAP_SLACK_PAGES}) with a filler table; no tmpfs could be mounted"
            ),
            Disk::Tablespace { .. } => unreachable!("SQLite has no tablespace"),
        }
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(scenario(&TestDb::Sqlite(small.join("central.db")), &disk));
    drop(runtime);
    outcome
}

/// The same on PostgreSQL: a cluster of its own whose database makes its tables and indexes
/// in a tablespace on a small tmpfs.
fn on_a_full_tablespace() -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let small = dir.path().join("small");
    std::fs::create_dir(&small)?;
    if !mount_tmpfs(&small, TABLESPACE_DISK) {
        return Err(
            "the PostgreSQL full-disk test mounts a tmpfs for a tablespace, which needs \
                    root (as in CI): run it as root"
                .into(),
        );
    }
    // Declared before the cluster, so unmounted after PostgreSQL has stopped.
    let _mounted = Mounted(Some(small.clone()));
    let cluster = test_postgres::Cluster::start()?;
    let location = small.join("tablespace");
    std::fs::create_dir(&location)?;
    test_postgres::hand_over(&location)?;
    cluster.psql(
        "postgres",
        &format!("CREATE TABLESPACE small LOCATION '{}'", location.display()),
    )?;
    cluster.psql(
        "postgres",
        "ALTER DATABASE palpal SET default_tablespace = small",
    )?;
    eprintln!(
        "full disk: a PostgreSQL tablespace on a real tmpfs ({TABLESPACE_DISK}), a filler file \
         leaving {TABLESPACE_ROOM} bytes"
    );
    let disk = Disk::Tablespace {
        filler: small.join("filler"),
        mount: small,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(scenario(&TestDb::Postgres(cluster), &disk));
    drop(runtime);
    outcome
}

/// Fills the disk `filler` is on: the file grows until the disk refuses it, then gives back
/// `room` bytes.
fn fill(filler: &Path, room: u64) -> Result<(), Error> {
    use std::io::Write as _;
    let mut file = std::fs::File::create(filler)?;
    let block = vec![0u8; 64 * 1024];
    loop {
        match file.write_all(&block) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => return Err(e.into()),
        }
    }
    let len = file.metadata()?.len();
    file.set_len(len.saturating_sub(room))?;
    eprintln!("filler file of {} bytes", len.saturating_sub(room));
    Ok(())
}

struct Server {
    base: String,
    clock: Arc<FixedClock>,
    client: reqwest::Client,
    nonces: AtomicU64,
}

impl Server {
    async fn send(
        &self,
        term: Option<&Term>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(Answer, String), Error> {
        let nonce = format!("nonce-{:016}", self.nonces.fetch_add(1, Ordering::Relaxed));
        let url = format!("{}{path}", self.base);
        let mut request = match method {
            "GET" => self.client.get(url),
            _ => self.client.post(url),
        }
        .body(body.to_vec());
        if let Some(term) = term {
            let now = self.clock.now().timestamp();
            let headers = signing::sign(&term.key, method, path, &term.id, now, &nonce, body);
            for (name, value) in headers.pairs() {
                request = request.header(name, value);
            }
        }
        Ok((answer(request.send().await?).await?, nonce))
    }

    /// Sends `operations` as a fresh, signed sync request; returns the answer and its nonce.
    async fn sync(&self, term: &Term, operations: &[Value]) -> Result<(Answer, String), Error> {
        let body = serde_json::to_vec(&json!({ "operations": operations }))?;
        self.send(Some(term), "POST", "/v1/sync", &body).await
    }

    async fn metric(&self, name: &str) -> Result<Option<f64>, Error> {
        let (answer, _) = self.send(None, "GET", "/metrics", b"").await?;
        assert_eq!(answer.status, 200);
        let text = answer.body.as_str().unwrap_or_default().to_owned();
        Ok(text.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(' ')?;
            value.parse().ok()
        }))
    }
}

fn enrollment(op_id: &str, index: usize) -> Value {
    json!({
        "op_id": op_id,
        "kind": "enrollment",
        "payload": {
            "name": format!("김영희{index}"),
            "birth_date": "1950-04-01",
            "phone": format!("010-1234-{index:04}"),
        },
    })
}

/// The `k`-th step report: members in turn, each a day further back, so every report is a
/// new member-day.
fn step_report(k: usize) -> Value {
    let member = format!("PP-{:08}", k % MEMBERS + 1);
    let back = u64::try_from(k / MEMBERS).unwrap_or(0);
    let day = NaiveDate::from_ymd_opt(2025, 12, 2)
        .and_then(|d| d.checked_sub_days(chrono::Days::new(back)))
        .unwrap_or_default();
    json!({
        "op_id": format!("steps-{k:05}"),
        "kind": "step_report",
        "payload": {
            "member_number": member,
            "day": day.format("%Y-%m-%d").to_string(),
            "steps": 9000 + k,
            "reported_at": format!("{}T21:00:00+09:00", day.format("%Y-%m-%d")),
        },
    })
}

fn op_ids(operations: &[Value]) -> Vec<String> {
    operations
        .iter()
        .map(|op| op["op_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn statuses(answer: &Answer) -> Vec<String> {
    answer.body["results"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .map(|r| r["status"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn points(answer: &Answer) -> i64 {
    answer.body["results"]
        .as_array()
        .map(|results| results.iter().filter_map(|r| r["points"].as_i64()).sum())
        .unwrap_or(0)
}

/// The first number `sql` finds, read as the operator would.
fn count(db: &TestDb, sql: &str) -> Result<i64, Error> {
    db.row(sql)?.first().copied().ok_or_else(|| "no row".into())
}

/// `text` as an SQL string literal (the tests' own op ids and nonces).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// How many times each operation is in the database: in `operations`, as a member or as a
/// step report; and its ledger entries.
fn applied(db: &TestDb, op_id: &str) -> Result<(i64, i64, i64), Error> {
    let id = literal(op_id);
    let row = db.row(&format!(
        "SELECT (SELECT count(*) FROM operations WHERE op_id = {id}),
                (SELECT count(*) FROM members WHERE op_id = {id})
                  + (SELECT count(*) FROM step_reports WHERE op_id = {id}),
                (SELECT count(*) FROM ledger_entries WHERE op_id = {id})"
    ))?;
    match row[..] {
        [operations, rows, ledger] => Ok((operations, rows, ledger)),
        _ => Err(format!("three counts expected, got {row:?}").into()),
    }
}

/// Nothing of a refused request is in the database: none of its operations, members, step
/// reports or ledger entries, and not its nonce.
fn assert_nothing_kept(db: &TestDb, operations: &[Value], nonce: &str) -> Result<(), Error> {
    for op_id in op_ids(operations) {
        assert_eq!(applied(db, &op_id)?, (0, 0, 0), "{op_id}");
    }
    let nonces = count(
        db,
        &format!(
            "SELECT count(*) FROM nonces WHERE nonce = {}",
            literal(nonce)
        ),
    )?;
    assert_eq!(nonces, 0, "nonce {nonce}");
    Ok(())
}

async fn scenario(db: &TestDb, disk: &Disk) -> Result<(), Error> {
    let policies = Arc::new(published_policies()?);
    let kiosk_code = cli(&[
        "terminal",
        "add",
        "--db",
        &db.arg(),
        "--site",
        "성북구 보건소",
        "--role",
        "kiosk",
    ])?;
    let kiosk_code = kiosk_code
        .lines()
        .find_map(|line| line.strip_prefix("code: "))
        .ok_or("no code printed")?
        .to_owned();
    let backend: Arc<dyn Backend> = match (db, disk) {
        (TestDb::Sqlite(path), Disk::Tmpfs { .. }) => {
            Arc::new(SqliteBackend::new(path, Arc::clone(&policies)))
        }
        (TestDb::Sqlite(path), Disk::PageCap) => {
            let conn = rusqlite::Connection::open(path)?;
            conn.execute_batch(&format!(
                "CREATE TABLE filler (b BLOB); INSERT INTO filler VALUES (zeroblob({FILLER_BYTES}));"
            ))?;
            let pages: u32 = conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
            Arc::new(CappedBackend {
                path: path.to_owned(),
                policies: Arc::clone(&policies),
                cap: pages + CAP_SLACK_PAGES,
            })
        }
        (TestDb::Postgres(_), Disk::Tablespace { filler, .. }) => {
            // The schema is made (by `terminal add`); now only a little room is left.
            fill(filler, TABLESPACE_ROOM)?;
            Arc::new(PostgresBackend::new(
                &db.arg(),
                Arc::clone(&policies),
                postgres_data_key(),
            ))
        }
        _ => return Err("this engine has no such full disk".into()),
    };
    let clock = Arc::new(FixedClock::new(launch_morning()));
    let router = http::router(backend, Config::default(), clock.clone())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = Server {
        base: format!("http://{}", listener.local_addr()?),
        clock,
        client: {
            palpal_central::tls::install_default_provider();
            reqwest::Client::new()
        },
        nonces: AtomicU64::new(0),
    };
    tokio::spawn(http::serve(listener, router));

    let key = SigningKey::from_bytes(&[7; 32]);
    let (enrolled, _) = server
        .send(
            None,
            "POST",
            "/v1/terminals/enroll",
            &serde_json::to_vec(&json!({
                "code": kiosk_code,
                "public_key": signing::encode_public_key(&key.verifying_key()),
                "name": "1번 키오스크",
            }))?,
        )
        .await?;
    assert_eq!(enrolled.status, 200, "{:?}", enrolled.body);
    let kiosk = Term {
        id: enrolled.body["terminal_id"]
            .as_str()
            .ok_or("no terminal id")?
            .to_owned(),
        key,
    };

    let members: Vec<Value> = (0..MEMBERS)
        .map(|i| enrollment(&format!("enroll-{i:03}"), i))
        .collect();
    let (answer, _) = server.sync(&kiosk, &members).await?;
    assert_eq!(statuses(&answer), vec!["accepted"; MEMBERS], "{:?}", answer);

    // Push step reports until a batch does not fit.
    let mut accepted_ops = op_ids(&members);
    let mut credited = 0i64;
    let mut next = 0usize;
    let (refused, refused_ops, refused_nonce) = loop {
        let batch: Vec<Value> = (next..next + BATCH).map(step_report).collect();
        next += BATCH;
        let (answer, nonce) = server.sync(&kiosk, &batch).await?;
        if answer.status != 200 {
            break (answer, batch, nonce);
        }
        assert_eq!(statuses(&answer), vec!["accepted"; BATCH], "{answer:?}");
        accepted_ops.extend(op_ids(&batch));
        credited += points(&answer);
        assert!(next < 20_000, "the disk never filled");
    };
    eprintln!(
        "the disk filled after {} step reports in batches of {BATCH}",
        next - BATCH
    );
    assert!(next > 2 * BATCH, "the disk filled too soon: {next}");

    // Refused whole, retryably, with the reason and what happens next.
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.body["code"], "storage_full", "{refused:?}");
    assert_eq!(refused.retry_after.as_deref(), Some("30"));
    assert!(refused.body["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("서버 저장 공간이 가득 차서")));
    assert!(refused.body["message_en"]
        .as_str()
        .is_some_and(|m| m.contains("freed space")));
    // Nothing of the refused batch is in the database, not even its nonce.
    assert_nothing_kept(db, &refused_ops, &refused_nonce)?;

    // Still full: the terminal's retry is refused the same way, and nothing of it is kept
    // either; one episode, two refusals.
    let (again, again_nonce) = server.sync(&kiosk, &refused_ops).await?;
    assert_eq!(
        (again.status, again.body["code"].clone()),
        (503, json!("storage_full")),
        "{again:?}"
    );
    assert_eq!(again.retry_after.as_deref(), Some("30"));
    assert_nothing_kept(db, &refused_ops, &again_nonce)?;
    assert_eq!(server.metric("palpal_storage_full").await?, Some(1.0));
    assert_eq!(
        server.metric("palpal_storage_full_refusals_total").await?,
        Some(2.0)
    );
    assert_eq!(
        server.metric("palpal_storage_full_episodes_total").await?,
        Some(1.0)
    );
    assert_eq!(
        server
            .metric("palpal_refusals_total{code=\"storage_full\"}")
            .await?,
        Some(2.0)
    );

    // Reads go on while the disk is full.
    let (health, _) = server.send(None, "GET", "/v1/health", b"").await?;
    assert_eq!(health.status, 200, "{health:?}");
    let (pulled, _) = server.send(Some(&kiosk), "POST", "/v1/pull", b"{}").await?;
    assert_eq!(pulled.status, 200, "{pulled:?}");
    let pulled_credit: i64 = pulled.body["balances"]
        .as_array()
        .ok_or("no balances")?
        .iter()
        .filter_map(|b| b["credited"].as_i64())
        .sum();
    assert_eq!(pulled_credit, credited);

    // The operator frees space; no restart.
    match disk {
        Disk::Tmpfs { mount, filler } | Disk::Tablespace { mount, filler } => {
            let freed = std::fs::metadata(filler)?.len();
            std::fs::remove_file(filler)?;
            eprintln!("freed {freed} bytes on {}", mount.display());
        }
        Disk::PageCap => {
            db.execute("DROP TABLE filler")?;
            eprintln!("dropped the filler table");
        }
    }

    // The terminal sends the refused batch again (a new request, as sync-client does): every
    // operation is applied, once; sent once more, every one is a duplicate.
    let (retried, _) = server.sync(&kiosk, &refused_ops).await?;
    assert_eq!(retried.status, 200, "{retried:?}");
    assert_eq!(statuses(&retried), vec!["accepted"; BATCH], "{retried:?}");
    credited += points(&retried);
    accepted_ops.extend(op_ids(&refused_ops));
    let (twice, _) = server.sync(&kiosk, &refused_ops).await?;
    assert_eq!(statuses(&twice), vec!["duplicate"; BATCH], "{twice:?}");
    let late = [enrollment("enroll-late", 99)];
    let (late_answer, _) = server.sync(&kiosk, &late).await?;
    assert_eq!(statuses(&late_answer), vec!["accepted"], "{late_answer:?}");
    accepted_ops.push("enroll-late".to_owned());
    assert_eq!(server.metric("palpal_storage_full").await?, Some(0.0));
    assert_eq!(
        server.metric("palpal_storage_full_episodes_total").await?,
        Some(1.0)
    );

    // Every accepted operation exactly once; the ledger and the balances agree with the
    // points the server answered.
    for op_id in &accepted_ops {
        let (ops, rows, _) = applied(db, op_id)?;
        assert_eq!((ops, rows), (1, 1), "{op_id}");
    }
    let total_ops = i64::try_from(accepted_ops.len())?;
    assert_eq!(count(db, "SELECT count(*) FROM operations")?, total_ops);
    assert_eq!(
        count(db, "SELECT count(*) FROM members")?,
        i64::try_from(MEMBERS + 1)?
    );
    assert_eq!(
        count(db, "SELECT count(*) FROM step_reports")?,
        i64::try_from(next)?
    );
    assert_eq!(
        count(
            db,
            "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM ledger_entries"
        )?,
        credited
    );
    assert_eq!(
        count(
            db,
            "SELECT CAST(COALESCE(SUM(credited), 0) AS BIGINT) FROM balances"
        )?,
        credited
    );
    assert!(credited > 0);
    if let TestDb::Sqlite(path) = db {
        let verdict: String =
            rusqlite::Connection::open(path)?
                .query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
        assert_eq!(verdict, "ok");
    }
    eprintln!(
        "{} operations applied once each, {credited} points in the ledger and the balances",
        accepted_ops.len()
    );
    Ok(())
}
