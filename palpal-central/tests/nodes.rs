//! Several `palpal-central serve` processes on one PostgreSQL database, as a city runs them
//! (`docs/deploy-central.md`), with a real kiosk (`palpal`) that knows both addresses: one
//! process killed with SIGKILL in the middle of the kiosk's drain, again and again.
//!
//! `palpal` is another package's binary, looked for next to `palpal-central` in the same
//! target folder: build it first (`cargo build --workspace --bins`, as `make test` does).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn central_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_palpal-central"))
}

fn palpal_bin() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let path = central_bin().with_file_name(format!("palpal{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        return Err(format!(
            "{} is missing: build it first with `cargo build --workspace --bins`",
            path.display()
        )
        .into());
    }
    Ok(path)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `palpal-central serve` process on `db`; killed (SIGKILL) when dropped.
struct Node {
    child: Child,
    url: String,
}

impl Node {
    fn start(db: &str, key: &Path, listen: &str) -> Result<Node, Box<dyn std::error::Error>> {
        let mut child = Command::new(central_bin())
            .args([
                "serve",
                "--db",
                db,
                "--listen",
                listen,
                "--writer-cpu",
                "off",
            ])
            .arg("--data-key-file")
            .arg(key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line {line:?}"))?
            .to_owned();
        Ok(Node { child, url })
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A figure of `palpal sync`'s summary, such as `remaining: 0`.
fn summary(out: &Output, name: &str) -> u64 {
    text(&out.stdout)
        .lines()
        .find_map(|line| {
            line.split_once(&format!("{name}: "))
                .and_then(|(_, v)| v.trim().parse().ok())
        })
        .unwrap_or(u64::MAX)
}

/// Two server processes on one database; a kiosk provisioned with both addresses confirms
/// 400 sign-ups and drains them with `palpal sync` while, eight times over, one of the
/// processes is killed with SIGKILL at a varied moment and started again on its address.
/// Afterwards every sign-up is on the server exactly once and none was turned away.
#[test]
fn a_server_process_killed_mid_drain_again_and_again_loses_nothing_and_doubles_nothing(
) -> TestResult {
    let cluster = test_postgres::Cluster::start()?;
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("data.key");
    let db = cluster.url();
    let mut nodes = [
        Node::start(&db, &key, "127.0.0.1:0")?,
        Node::start(&db, &key, "127.0.0.1:0")?,
    ];
    let added = Command::new(central_bin())
        .args([
            "terminal",
            "add",
            "--db",
            &db,
            "--site",
            "성북구 보건소",
            "--role",
            "kiosk",
        ])
        .arg("--data-key-file")
        .arg(&key)
        .output()?;
    assert!(added.status.success(), "{}", text(&added.stderr));
    let code = text(&added.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("code: ").map(str::to_owned))
        .ok_or("no code")?;
    let kiosk = dir.path().join("kiosk.sqlite");
    let kiosk_path = kiosk.to_str().ok_or("a UTF-8 path")?;
    let servers = format!("{},{}", nodes[0].url, nodes[1].url);
    let provisioned = Command::new(palpal_bin()?)
        .args([
            "provision",
            "--db",
            kiosk_path,
            "--server",
            &servers,
            "--code",
            &code,
        ])
        .output()?;
    assert!(
        provisioned.status.success(),
        "{}",
        text(&provisioned.stderr)
    );

    let mut store = terminal_store::Store::open(&kiosk)?;
    let seoul = points_core::KST;
    let mut op_ids = Vec::new();
    for i in 0..400 {
        let op_id = format!("op-{i:04}");
        let enrollment = kiosk_core::Enrollment {
            name: format!("회원{i}"),
            birth_date: "1950-04-01".parse()?,
            phone: format!("010{i:08}"),
            residency: kiosk_core::Residency::Lives,
            age: 75,
        };
        store.record_enrollment(
            &op_id,
            "성북구 보건소",
            &enrollment,
            chrono::Utc::now().with_timezone(&seoul),
        )?;
        op_ids.push(op_id);
    }
    drop(store);

    let sync = || {
        Command::new(palpal_bin()?)
            .args([
                "sync",
                "--db",
                kiosk_path,
                "--batch-ops",
                "5",
                "--timeout",
                "2",
            ])
            .args(["--max-wait", "5"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(Into::<Box<dyn std::error::Error>>::into)
    };
    for round in 0..8u64 {
        let drain = sync()?;
        std::thread::sleep(std::time::Duration::from_millis(40 + 35 * round));
        let victim = usize::try_from(round % 2)?;
        let address = nodes[victim].url.trim_start_matches("http://").to_owned();
        nodes[victim].kill();
        let out = drain.wait_with_output()?;
        assert_eq!(summary(&out, "rejected"), 0, "{}", text(&out.stdout));
        nodes[victim] = Node::start(&db, &key, &address)?;
    }
    let mut rounds = 0;
    loop {
        rounds += 1;
        let out = sync()?.wait_with_output()?;
        assert_eq!(summary(&out, "rejected"), 0, "{}", text(&out.stdout));
        if out.status.success() && summary(&out, "remaining") == 0 {
            break;
        }
        assert!(rounds < 20, "not drained: {}", text(&out.stdout));
    }
    let counted = cluster.psql(
        "palpal",
        "SELECT count(*), count(DISTINCT op_id) FROM members",
    )?;
    assert_eq!(counted.trim(), "400|400");
    let listed = op_ids
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    let found = cluster.psql(
        "palpal",
        &format!("SELECT count(*) FROM members WHERE op_id IN ({listed})"),
    )?;
    assert_eq!(found.trim(), "400");
    let store = terminal_store::Store::open(&kiosk)?;
    let counts = store.outbox_counts()?;
    assert_eq!((counts.done, counts.rejected), (400, 0));
    Ok(())
}

/// A pull never passes a change that commits later: while a transaction that numbered a
/// change is still running, a pull from another connection leaves its cursor below it, even
/// though a change numbered after it has already committed; once it commits, the next pull
/// from that cursor brings both. (Writers do not wait for each other to number changes.)
#[test]
fn a_pull_never_passes_a_change_that_commits_later() -> TestResult {
    use palpal_central::store::postgres::{number_changes, PgStore};
    use palpal_central::store::{Store as _, Terminal};
    let cluster = test_postgres::Cluster::start()?;
    let dir = tempfile::tempdir()?;
    let policies = std::sync::Arc::new(palpal_central::store::published_policies()?);
    let mut store = PgStore::open(&cluster.url(), policies, &dir.path().join("data.key"))?;
    let counter = Terminal {
        id: 1,
        site: "성북구 약국".to_owned(),
        role: sync_protocol::wire::Role::Counter,
        name: None,
        public_key: None,
        revoked: false,
    };
    let today = chrono::NaiveDate::from_ymd_opt(2025, 12, 4).ok_or("a date")?;
    let start = store.pull(&counter, 0, 100, today)?;

    let mut late = postgres::Client::connect(&cluster.url(), postgres::NoTls)?;
    let mut running = late.transaction()?;
    number_changes(&mut running, &[("member", 41)])?;
    let now = chrono::Utc::now();
    let key_id = store.add_redemption_key(&[7; 32], now)?;

    let before = store.pull(&counter, start.cursor, 100, today)?;
    assert!(
        before.redemption_keys.is_empty(),
        "{:?}",
        before.redemption_keys
    );
    assert!(before.revoked_members.is_empty());
    assert!(!before.more);

    running.commit()?;
    let after = store.pull(&counter, before.cursor, 100, today)?;
    assert_eq!(after.revoked_members, vec!["PP-00000041".to_owned()]);
    assert_eq!(
        after
            .redemption_keys
            .iter()
            .map(|k| k.key_id)
            .collect::<Vec<_>>(),
        vec![key_id]
    );
    let again = store.pull(&counter, after.cursor, 100, today)?;
    assert!(again.redemption_keys.is_empty() && again.revoked_members.is_empty());
    Ok(())
}

/// A policy published on a PostgreSQL database by another process (`palpal-central policy
/// add`, as the console of any of them would) reaches the terminals of both server processes
/// at their next sync, and its cancellation does too: each process reads the set again once
/// its version changed.
#[test]
fn a_policy_published_by_another_process_is_pulled_from_every_server_process() -> TestResult {
    let cluster = test_postgres::Cluster::start()?;
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("data.key");
    let db = cluster.url();
    let nodes = [
        Node::start(&db, &key, "127.0.0.1:0")?,
        Node::start(&db, &key, "127.0.0.1:0")?,
    ];
    let central = |args: &[&str]| -> Result<String, Box<dyn std::error::Error>> {
        let out = Command::new(central_bin())
            .args(args)
            .arg("--db")
            .arg(&db)
            .arg("--data-key-file")
            .arg(&key)
            .output()?;
        if !out.status.success() {
            return Err(format!("palpal-central {args:?}: {}", text(&out.stderr)).into());
        }
        Ok(text(&out.stdout))
    };
    let palpal = |args: &[&str]| -> Result<String, Box<dyn std::error::Error>> {
        let out = Command::new(palpal_bin()?).args(args).output()?;
        if !out.status.success() {
            return Err(format!("palpal {args:?}: {}", text(&out.stderr)).into());
        }
        Ok(text(&out.stdout))
    };
    let mut counters = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let added = central(&[
            "terminal",
            "add",
            "--site",
            "성북구 보건소",
            "--role",
            "counter",
        ])?;
        let code = added
            .lines()
            .find_map(|l| l.strip_prefix("code: ").map(str::to_owned))
            .ok_or("no code")?;
        let counter = dir.path().join(format!("counter-{i}.sqlite"));
        let counter = counter.to_str().ok_or("a UTF-8 path")?.to_owned();
        palpal(&[
            "provision",
            "--db",
            &counter,
            "--server",
            &node.url,
            "--code",
            &code,
        ])?;
        counters.push(counter);
    }
    let status = |counter: &str| -> Result<String, Box<dyn std::error::Error>> {
        palpal(&["sync", "--db", counter])?;
        palpal(&["status", "--db", counter])
    };
    for counter in &counters {
        let before = status(counter)?;
        assert!(before.contains("정책 policies: 3"), "{before}");
    }
    // The example event moved to 2099: the command line runs on the machine's clock.
    let event = include_str!("../../policies/example-event.toml")
        .replace("name = \"example-event\"", "name = \"event-2099\"")
        .replace("2025-12-15", "2099-12-15")
        .replace("2025-12-28", "2099-12-28")
        .replace("2026-09-09", "2100-09-09");
    let file = dir.path().join("event.toml");
    std::fs::write(&file, event)?;
    let file = file.to_str().ok_or("a UTF-8 path")?;
    central(&[
        "policy",
        "add",
        "--file",
        file,
        "--effective-from",
        "2099-12-01",
    ])?;
    for counter in &counters {
        let after = status(counter)?;
        assert!(
            after.contains("정책 policies: 4") && after.contains("  event-2099 2099-12-01.."),
            "{after}"
        );
    }
    central(&["policy", "cancel", "event-2099"])?;
    for counter in &counters {
        let cancelled = status(counter)?;
        assert!(
            cancelled.contains("정책 policies: 3") && !cancelled.contains("event-2099"),
            "{cancelled}"
        );
    }
    Ok(())
}
