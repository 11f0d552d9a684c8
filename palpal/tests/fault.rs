//! Real processes on 127.0.0.1 with faults between them: the `palpal-central` server, the
//! `fault-proxy` in front of it (resets before and after the server saw a request, hangs
//! longer than the terminal's timeout, duplicated requests, 500, 503 and 429 with
//! `Retry-After`, chosen by a seed), and the `palpal` binary syncing through the proxy until
//! its outbox is drained. Every operation must reach the server exactly once, none may be
//! lost, and the terminal's database must pass SQLite's integrity check.
//!
//! `palpal-central` and `fault-proxy` are another package's binaries, looked for next to
//! `palpal` in the same target folder: build them first (`cargo build --workspace --bins`, as
//! `make test` does).

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use terminal_store::Store;

mod common;
use common::{enroll, palpal_bin, sibling_bin, summary, text};

/// A child process that printed `listening on http://ADDR` first; killed when dropped.
struct Listening {
    child: Child,
    url: String,
}

impl Listening {
    fn start(bin: &Path, args: &[&str], stderr: Stdio) -> Listening {
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the first line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Listening { child, url }
    }

    fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Provisions a kiosk through a proxy that injects nothing, then replaces the proxy with a
/// faulty one on the same address, and syncs until the outbox is drained. Returns the
/// proxy's log: one line per request with the fault it got.
fn drain_through_faults(seed: u64, count: usize) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let central_db = dir.path().join("central.sqlite");
    let central_path = central_db.to_str().expect("a UTF-8 path");
    let server = Listening::start(
        &sibling_bin("palpal-central"),
        &["serve", "--db", central_path, "--listen", "127.0.0.1:0"],
        Stdio::null(),
    );
    let proxy_bin = sibling_bin("fault-proxy");
    let clean = Listening::start(
        &proxy_bin,
        &["--upstream", server.addr(), "--listen", "127.0.0.1:0"],
        Stdio::null(),
    );
    let out = Command::new(sibling_bin("palpal-central"))
        .args([
            "terminal",
            "add",
            "--db",
            central_path,
            "--site",
            "성북구 보건소",
            "--role",
            "kiosk",
        ])
        .output()
        .expect("run palpal-central");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let code = text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("code: ").map(str::to_owned))
        .expect("a code");
    let db = dir.path().join("kiosk.sqlite");
    let db_path = db.to_str().expect("a UTF-8 path");
    let out = Command::new(palpal_bin())
        .args([
            "provision",
            "--db",
            db_path,
            "--server",
            &clean.url,
            "--code",
            &code,
            "--name",
            "키오스크",
        ])
        .output()
        .expect("run palpal");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let addr = clean.addr().to_owned();
    drop(clean);

    let op_ids = enroll(&db, 0, count);
    let log = dir.path().join("proxy.log");
    let seed_text = seed.to_string();
    let _faulty = Listening::start(
        &proxy_bin,
        &[
            "--upstream",
            server.addr(),
            "--listen",
            &addr,
            "--seed",
            &seed_text,
            "--reset",
            "0.1",
            "--hang",
            "0.05",
            "--duplicate",
            "0.1",
            "--error500",
            "0.1",
            "--error503",
            "0.05",
            "--throttle",
            "0.1",
            "--hang-ms",
            "1500",
        ],
        Stdio::from(std::fs::File::create(&log).expect("create the proxy log")),
    );

    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 60, "not drained after 60 rounds of palpal sync");
        let out = Command::new(palpal_bin())
            .args([
                "sync",
                "--db",
                db_path,
                "--batch-ops",
                "10",
                "--timeout",
                "1",
                "--attempts",
                "8",
                "--max-wait",
                "5",
            ])
            .output()
            .expect("run palpal sync");
        assert_eq!(summary(&out, "rejected"), 0, "{}", text(&out.stdout));
        if out.status.success() && summary(&out, "remaining") == 0 {
            break;
        }
    }

    // Exactly once on the server, nothing lost.
    let central = rusqlite::Connection::open_with_flags(
        &central_db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the server's database");
    let (members, distinct): (i64, i64) = central
        .query_row(
            "SELECT count(*), count(DISTINCT op_id) FROM members",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("count members");
    assert_eq!((members, distinct), (count as i64, count as i64));
    let mut missing = Vec::new();
    for op_id in &op_ids {
        let n: i64 = central
            .query_row(
                "SELECT count(*) FROM members WHERE op_id = ?1",
                [op_id],
                |r| r.get(0),
            )
            .expect("count");
        if n != 1 {
            missing.push((op_id.clone(), n));
        }
    }
    assert_eq!(missing, Vec::new(), "operations not applied exactly once");

    // The terminal: everything settled, its database intact.
    let store = Store::open(&db).expect("open the terminal database");
    let counts = store.outbox_counts().expect("outbox counts");
    assert_eq!(
        (
            counts.queued,
            counts.in_flight,
            counts.done,
            counts.rejected
        ),
        (0, 0, count as u64, 0)
    );
    drop(store);
    let conn = rusqlite::Connection::open(&db).expect("open the terminal database");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok");

    std::fs::read_to_string(&log).expect("read the proxy log")
}

#[test]
fn every_operation_arrives_exactly_once_through_faults() {
    let mut log = String::new();
    for seed in [1, 7] {
        log.push_str(&drain_through_faults(seed, 200));
    }
    // Every kind of fault did happen.
    for fault in ["pass", "reset", "hang", "duplicate", "500", "503", "429"] {
        assert!(
            log.lines()
                .any(|l| l.starts_with(&format!("fault-proxy: {fault} "))),
            "no {fault} injected:\n{log}"
        );
    }
}

/// A terminal given several addresses of the server moves to the next one when an address
/// does not answer (nothing listening) or answers 5xx (a proxy answering 503 to everything),
/// and stays with the one that answers: the next sync goes straight to it. Every sign-up
/// reaches the server once.
#[test]
fn a_terminal_moves_to_the_next_address_and_stays_with_the_one_that_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let central_db = dir.path().join("central.sqlite");
    let central_path = central_db.to_str().expect("a UTF-8 path");
    let server = Listening::start(
        &sibling_bin("palpal-central"),
        &["serve", "--db", central_path, "--listen", "127.0.0.1:0"],
        Stdio::null(),
    );
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        format!("http://{}", listener.local_addr().expect("its address"))
    };
    let log = dir.path().join("proxy.log");
    let failing = Listening::start(
        &sibling_bin("fault-proxy"),
        &[
            "--upstream",
            server.addr(),
            "--listen",
            "127.0.0.1:0",
            "--error503",
            "1.0",
        ],
        Stdio::from(std::fs::File::create(&log).expect("create the proxy log")),
    );
    let out = Command::new(sibling_bin("palpal-central"))
        .args(["terminal", "add", "--db", central_path])
        .args(["--site", "성북구 보건소", "--role", "kiosk"])
        .output()
        .expect("run palpal-central");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let code = text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("code: ").map(str::to_owned))
        .expect("a code");
    let db = dir.path().join("kiosk.sqlite");
    let db_path = db.to_str().expect("a UTF-8 path");
    let servers = format!("{dead}, {}/,{}", failing.url, server.url);
    let out = Command::new(palpal_bin())
        .args(["provision", "--db", db_path, "--server", &servers])
        .args(["--code", &code, "--name", "키오스크"])
        .output()
        .expect("run palpal provision");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("server: {dead}, {}, {}", failing.url, server.url)),
        "{}",
        text(&out.stdout)
    );
    let requests = || {
        std::fs::read_to_string(&log)
            .expect("read the proxy log")
            .lines()
            .filter(|l| l.starts_with("fault-proxy: 503 "))
            .count()
    };
    let sync = || {
        let out = Command::new(palpal_bin())
            .args([
                "sync",
                "--db",
                db_path,
                "--batch-ops",
                "10",
                "--max-wait",
                "5",
            ])
            .output()
            .expect("run palpal sync");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(summary(&out, "remaining"), 0, "{}", text(&out.stdout));
        assert_eq!(summary(&out, "rejected"), 0, "{}", text(&out.stdout));
    };

    let mut op_ids = enroll(&db, 0, 30);
    sync();
    let after_first = requests();
    assert!(after_first >= 1, "the failing address was tried");
    op_ids.extend(enroll(&db, 30, 20));
    sync();
    assert_eq!(
        requests(),
        after_first,
        "the next sync stayed with the address that answered"
    );

    let central = rusqlite::Connection::open_with_flags(
        &central_db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the server's database");
    for op_id in &op_ids {
        let n: i64 = central
            .query_row(
                "SELECT count(*) FROM members WHERE op_id = ?1",
                [op_id],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(n, 1, "{op_id}");
    }
}
