//! The server's own disk full. The database sits on a small real tmpfs when this process may
//! mount one (root, as in CI); otherwise the writer's connection is capped with SQLite's
//! `max_page_count`, which fails writes with the same SQLITE_FULL. The test prints which one
//! ran. Signed batches are pushed until one does not fit; it must be refused whole with a
//! retryable 503 `storage_full`, reads must go on, and once space is freed (a filler file
//! removed, or a filler table dropped) the same operations must be applied exactly once,
//! without a restart.

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

use super::{answer, cli, launch_morning, Answer, Term};
use palpal_central::store::{published_policies, Backend, SqliteBackend, SqliteStore, Store};
use points_core::PolicySet;
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error>;

/// The size of the tmpfs, and of the room given back once it is full.
const DISK: &str = "size=1m";
const FILLER_BYTES: usize = 256 * 1024;
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

fn mount_tmpfs(at: &Path) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", DISK, "tmpfs"])
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
    let dir = tempfile::tempdir()?;
    let small = dir.path().join("small");
    std::fs::create_dir(&small)?;
    let real = mount_tmpfs(&small);
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
        }
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(scenario(&small.join("central.db"), &disk));
    drop(runtime);
    outcome
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

/// The database as the operator would look at it: read only.
fn read_only(db: &Path) -> Result<rusqlite::Connection, Error> {
    Ok(rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?)
}

fn count(db: &Path, sql: &str, params: impl rusqlite::Params) -> Result<i64, Error> {
    Ok(read_only(db)?.query_row(sql, params, |row| row.get(0))?)
}

/// How many times each operation is in the database: in `operations`, as a member or as a
/// step report; and its ledger entries.
fn applied(db: &Path, op_id: &str) -> Result<(i64, i64, i64), Error> {
    let conn = read_only(db)?;
    let one = |sql: &str| -> Result<i64, rusqlite::Error> {
        conn.query_row(sql, [op_id], |row| row.get(0))
    };
    Ok((
        one("SELECT count(*) FROM operations WHERE op_id = ?1")?,
        one("SELECT (SELECT count(*) FROM members WHERE op_id = ?1)
                  + (SELECT count(*) FROM step_reports WHERE op_id = ?1)")?,
        one("SELECT count(*) FROM ledger_entries WHERE op_id = ?1")?,
    ))
}

/// Nothing of a refused request is in the database: none of its operations, members, step
/// reports or ledger entries, and not its nonce.
fn assert_nothing_kept(db: &Path, operations: &[Value], nonce: &str) -> Result<(), Error> {
    for op_id in op_ids(operations) {
        assert_eq!(applied(db, &op_id)?, (0, 0, 0), "{op_id}");
    }
    let nonces = count(db, "SELECT count(*) FROM nonces WHERE nonce = ?1", [nonce])?;
    assert_eq!(nonces, 0, "nonce {nonce}");
    Ok(())
}

async fn scenario(db: &Path, disk: &Disk) -> Result<(), Error> {
    let policies = Arc::new(published_policies()?);
    let kiosk_code = cli(&[
        "terminal",
        "add",
        "--db",
        db.to_str().ok_or("path")?,
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
    let backend: Arc<dyn Backend> = match disk {
        Disk::Tmpfs { .. } => Arc::new(SqliteBackend::new(db, Arc::clone(&policies))),
        Disk::PageCap => {
            let conn = rusqlite::Connection::open(db)?;
            conn.execute_batch(&format!(
                "CREATE TABLE filler (b BLOB); INSERT INTO filler VALUES (zeroblob({FILLER_BYTES}));"
            ))?;
            let pages: u32 = conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
            Arc::new(CappedBackend {
                path: db.to_owned(),
                policies: Arc::clone(&policies),
                cap: pages + CAP_SLACK_PAGES,
            })
        }
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
        Disk::Tmpfs { mount, filler } => {
            std::fs::remove_file(filler)?;
            eprintln!("freed {FILLER_BYTES} bytes on {}", mount.display());
        }
        Disk::PageCap => {
            rusqlite::Connection::open(db)?.execute_batch("DROP TABLE filler")?;
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
    assert_eq!(count(db, "SELECT count(*) FROM operations", ())?, total_ops);
    assert_eq!(
        count(db, "SELECT count(*) FROM members", ())?,
        i64::try_from(MEMBERS + 1)?
    );
    assert_eq!(
        count(db, "SELECT count(*) FROM step_reports", ())?,
        i64::try_from(next)?
    );
    assert_eq!(
        count(
            db,
            "SELECT COALESCE(SUM(points), 0) FROM ledger_entries",
            ()
        )?,
        credited
    );
    assert_eq!(
        count(db, "SELECT COALESCE(SUM(credited), 0) FROM balances", ())?,
        credited
    );
    assert!(credited > 0);
    let verdict: String =
        read_only(db)?.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    assert_eq!(verdict, "ok");
    eprintln!(
        "{} operations applied once each, {credited} points in the ledger and the balances",
        accepted_ops.len()
    );
    Ok(())
}
