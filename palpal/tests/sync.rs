//! Real processes on 127.0.0.1: the `palpal-central` binary over SQLite on disk, and the
//! `palpal` binary provisioning, syncing, reporting and being killed with SIGKILL mid-drain.
//!
//! `palpal-central` is another package's binary: it is looked for next to `palpal` in the
//! same target folder, so build it first (`cargo build --workspace --bins`, as `make test`
//! does, or `cargo build -p palpal-central`).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use terminal_store::Store;

mod common;
use common::{enroll, palpal_bin, sibling_bin, summary, text};

fn central_bin() -> PathBuf {
    sibling_bin("palpal-central")
}

fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().expect("run a binary")
}

fn palpal(args: &[&str]) -> Output {
    run(&palpal_bin(), args)
}

/// A `palpal-central serve` process; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(db: &Path, listen: &str) -> Server {
        Server::start_with(db, listen, &[])
    }

    /// With more options for `serve`.
    fn start_with(db: &Path, listen: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(central_bin())
            .args([
                "serve",
                "--db",
                db.to_str().expect("a UTF-8 path"),
                "--listen",
                listen,
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start palpal-central");
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
        Server { child, url }
    }

    fn addr(&self) -> &str {
        self.url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

struct World {
    dir: tempfile::TempDir,
    central_db: PathBuf,
    server: Server,
    /// Over TLS: the certificate and key files the server serves with, and the key its
    /// terminals pin (see [`certificate`]).
    tls: Option<(String, String, String)>,
}

impl World {
    /// A server speaking plain HTTP on 127.0.0.1.
    fn new() -> World {
        World::start(false)
    }

    /// A server speaking TLS with a certificate made for 127.0.0.1; its terminals are
    /// provisioned with its key.
    fn tls() -> World {
        World::start(true)
    }

    fn start(tls: bool) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let central_db = dir.path().join("central.sqlite");
        let tls = tls.then(|| certificate(dir.path(), "server"));
        let server = Server::start_with(&central_db, "127.0.0.1:0", &World::serve_args(&tls));
        World {
            dir,
            central_db,
            server,
            tls,
        }
    }

    fn serve_args(tls: &Option<(String, String, String)>) -> Vec<&str> {
        match tls {
            Some((cert, key, _)) => vec!["--tls-cert", cert, "--tls-key", key],
            None => Vec::new(),
        }
    }

    /// Starts the server again on `addr`, as it was started (after [`Server::stop`]).
    fn restart(&mut self, addr: &str) {
        self.server = Server::start_with(&self.central_db, addr, &World::serve_args(&self.tls));
    }

    /// Runs `palpal-central` with `args` and `--db` the server's database; returns what it
    /// printed.
    fn central_cli(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--db", self.central_db.to_str().expect("a UTF-8 path")]);
        let out = run(&central_bin(), &all);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    fn code(&self, role: &str) -> String {
        let out = run(
            &central_bin(),
            &[
                "terminal",
                "add",
                "--db",
                self.central_db.to_str().expect("a UTF-8 path"),
                "--site",
                "성북구 보건소",
                "--role",
                role,
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("code: "))
            .expect("a code")
            .to_owned()
    }

    /// A provisioned terminal database.
    fn terminal(&self, name: &str, role: &str) -> PathBuf {
        let db = self.dir.path().join(format!("{name}.sqlite"));
        let code = self.code(role);
        let mut args = vec![
            "provision",
            "--db",
            db.to_str().expect("a UTF-8 path"),
            "--server",
            &self.server.url,
            "--code",
            &code,
            "--name",
            name,
        ];
        if let Some((_, _, server_key)) = &self.tls {
            args.extend(["--server-key", server_key]);
        }
        let out = palpal(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("terminal: T-"));
        db
    }

    fn central(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            &self.central_db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the server's database")
    }

    /// (members, distinct op ids among them)
    fn members(&self) -> (i64, i64) {
        self.central()
            .query_row(
                "SELECT count(*), count(DISTINCT op_id) FROM members",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("count members")
    }

    fn member_ops(&self, op_ids: &[String]) -> Vec<i64> {
        let conn = self.central();
        op_ids
            .iter()
            .map(|id| {
                conn.query_row("SELECT count(*) FROM members WHERE op_id = ?1", [id], |r| {
                    r.get(0)
                })
                .expect("count")
            })
            .collect()
    }
}

fn sync(db: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["sync", "--db", db.to_str().expect("a UTF-8 path")];
    args.extend_from_slice(extra);
    palpal(&args)
}

#[test]
fn sync_drains_once_resends_as_duplicates_and_survives_an_outage() {
    let mut world = World::new();
    let db = world.terminal("kiosk-1", "kiosk");
    let first = enroll(&db, 0, 120);
    // What the first 30 sign-ups are before their answers arrive (the answer erases their
    // personal data), to lose those answers below.
    let before: Vec<(String, String, Vec<u8>)> = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT o.op_id, o.payload, e.sealed FROM outbox o JOIN enrollments e USING (op_id)
                 WHERE o.op_id <= 'op-000029'",
            )
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows
    };
    assert_eq!(before.len(), 30);

    let out = sync(&db, &["--batch-ops", "50"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out, "requests"), 3);
    assert_eq!(summary(&out, "accepted"), 120);
    assert_eq!(summary(&out, "remaining"), 0);
    assert_eq!(world.members(), (120, 120));
    assert!(world.member_ops(&first).iter().all(|n| *n == 1));
    // `palpal sync` is a sync like the app's: acknowledged, the personal data is gone.
    let kept: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM enrollments WHERE sealed IS NOT NULL OR erased_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        kept, 0,
        "personal data kept after the server acknowledged it"
    );

    // Nothing queued: nothing sent.
    let out = sync(&db, &[]);
    assert!(out.status.success());
    assert_eq!(summary(&out, "sent"), 0);

    // Answers lost (as if the terminal died before writing them): sent again, duplicates.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        for (op_id, payload, sealed) in &before {
            conn.execute(
                "UPDATE outbox SET state = 'in_flight', payload = ?2 WHERE op_id = ?1",
                rusqlite::params![op_id, payload],
            )
            .unwrap();
            conn.execute(
                "UPDATE enrollments SET sealed = ?2, erased_at = NULL WHERE op_id = ?1",
                rusqlite::params![op_id, sealed],
            )
            .unwrap();
        }
    }
    let out = sync(&db, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out, "duplicate"), 30);
    assert_eq!(summary(&out, "accepted"), 0);
    assert_eq!(world.members(), (120, 120));

    // Status and export.
    let out = palpal(&["status", "--db", db.to_str().expect("a UTF-8 path")]);
    let status = text(&out.stdout);
    assert!(status.contains("대기 queued: 0"), "{status}");
    assert!(status.contains("완료 done: 120"), "{status}");
    assert!(!status.contains("없음 never"), "{status}");
    let out = palpal(&["export", "--db", db.to_str().expect("a UTF-8 path")]);
    let csv = text(&out.stdout);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("op_id,kind,state,created_at,attempts,sent_at,settled_at,result,reason,member_number,message")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 120);
    assert!(
        rows[0].starts_with("op-000000,enrollment,done,"),
        "{}",
        rows[0]
    );
    assert!(rows[0].contains(",duplicate,,PP-"), "{}", rows[0]);
    assert!(rows[119].contains(",accepted,,PP-"), "{}", rows[119]);

    // The server goes away: the sync fails, says so Korean first, and keeps the work.
    let addr = world.server.addr().to_owned();
    world.server.stop();
    let second = enroll(&db, 120, 40);
    let out = sync(&db, &["--attempts", "2"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("작업 40건은 이 단말기에 안전하게 저장되어") && stderr.contains("kept"),
        "{stderr}"
    );
    assert_eq!(summary(&out, "remaining"), 40);
    let store = Store::open(&db).unwrap();
    assert_eq!(store.outbox_pending().unwrap().len(), 40);
    let status = text(&palpal(&["status", "--db", db.to_str().expect("a UTF-8 path")]).stdout);
    assert!(status.contains("마지막 오류 last error"), "{status}");

    // Back again at the same address: drained, each once.
    world.server = Server::start(&world.central_db, &addr);
    let out = sync(&db, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out, "accepted"), 40);
    assert_eq!(world.members(), (160, 160));
    assert!(world.member_ops(&second).iter().all(|n| *n == 1));
}

/// Terminals whose clocks are ten minutes fast or slow: the server refuses a timestamp more
/// than five minutes off, answers with its own time in `Date`, and the terminal signs again
/// with it. Everything arrives once.
#[test]
fn terminals_with_clocks_ten_minutes_off_still_sync() {
    let world = World::new();
    for (n, error) in [(0, "-600"), (1, "600"), (2, "-3600")] {
        let db = world.terminal(&format!("kiosk-clock-{n}"), "kiosk");
        let ops = enroll(&db, 1000 * (n + 1), 30);
        let out = sync(&db, &["--clock-error", error]);
        assert!(out.status.success(), "clock {error}: {}", text(&out.stderr));
        assert_eq!(summary(&out, "accepted"), 30, "clock {error}");
        assert_eq!(summary(&out, "remaining"), 0, "clock {error}");
        // The first request is refused as stale and teaches the terminal the server's time.
        assert_eq!(summary(&out, "requests"), 2, "clock {error}");
        assert!(world.member_ops(&ops).iter().all(|k| *k == 1));
        // Sent again from the start: duplicates, nothing twice.
        let out = sync(&db, &["--clock-error", error]);
        assert!(out.status.success(), "clock {error}: {}", text(&out.stderr));
    }
    assert_eq!(world.members(), (90, 90));
}

#[test]
fn a_rejected_operation_is_kept_and_shown_not_dropped() {
    let world = World::new();
    // A counter may not register members: the server rejects with `role`.
    let db = world.terminal("counter-1", "counter");
    enroll(&db, 0, 2);
    let out = sync(&db, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out, "rejected"), 2);
    assert!(text(&out.stdout).contains("op-000000 role:"));
    let status = text(&palpal(&["status", "--db", db.to_str().expect("a UTF-8 path")]).stdout);
    assert!(status.contains("거부 rejected: 2"), "{status}");
    assert!(status.contains("op-000001 enrollment role:"), "{status}");
    assert_eq!(world.members(), (0, 0));
    // Sending again does not happen: a rejection is final.
    let out = sync(&db, &[]);
    assert_eq!(summary(&out, "sent"), 0);
}

#[test]
fn provisioning_explains_a_bad_code_a_second_try_and_a_missing_server() {
    let world = World::new();
    let db = world.dir.path().join("t.sqlite");
    let dbs = db.to_str().expect("a UTF-8 path");
    let url = world.server.url.clone();

    let out = palpal(&[
        "provision",
        "--db",
        dbs,
        "--server",
        &url,
        "--code",
        "0000-0000-0000-0000",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("등록 코드가 올바르지 않거나") && stderr.contains("code"),
        "{stderr}"
    );

    let code = world.code("kiosk");
    let out = palpal(&["provision", "--db", dbs, "--server", &url, "--code", &code]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&db).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let code = world.code("kiosk");
    let out = palpal(&["provision", "--db", dbs, "--server", &url, "--code", &code]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("이미") && text(&out.stderr).contains("already"));

    let other = world.dir.path().join("other.sqlite");
    let out = palpal(&[
        "provision",
        "--db",
        other.to_str().unwrap(),
        "--server",
        "http://127.0.0.1:9",
        "--code",
        &code,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("연결할 수 없습니다") && stderr.contains("Cannot reach"),
        "{stderr}"
    );

    let out = sync(&other, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("provision"));
}

#[test]
fn kill_9_mid_drain_many_times_loses_nothing_and_doubles_nothing() {
    let world = World::new();
    let db = world.terminal("kiosk-kill", "kiosk");
    let ops = enroll(&db, 0, 1500);
    for cycle in 0..20u64 {
        let mut child = Command::new(palpal_bin())
            .args([
                "sync",
                "--db",
                db.to_str().expect("a UTF-8 path"),
                "--batch-ops",
                "7",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start palpal sync");
        // Varied, deterministic moments: early, mid-request, mid-write.
        std::thread::sleep(Duration::from_millis(20 + (cycle * 37) % 150));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }
    let killed = Store::open(&db).unwrap().outbox_counts().unwrap();
    // Diagnostic only (how far the killed runs got depends on the machine's speed).
    eprintln!("after the kills: {killed:?}");
    let out = sync(&db, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out, "remaining"), 0);
    assert_eq!(world.members(), (1500, 1500));
    assert!(world.member_ops(&ops).iter().all(|n| *n == 1));
    let store = Store::open(&db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let counts = store.outbox_counts().unwrap();
    assert_eq!((counts.done, counts.rejected), (1500, 0));
}

/// A member whose watch the chaos test's counter synced: the reports it queued for them, in
/// the order it queued them.
struct Watched {
    member_no: String,
    reports: Vec<points_core::StepReport>,
}

/// The day every member of these tests was born (see [`enroll`]).
const BORN: &str = "1950-04-01";

/// Queues at the counter `db` what a counter queues when it syncs each member's certified
/// watch for the first time (`Store::record_watch_sync`, as the app does): the watch's
/// pairing to the member, with the member's dynamic token from `issuer` as scanned there,
/// then the watch's day totals of the `days` days before today, oldest first, each signed by
/// the watch (certified by the demonstration authority) at the day's end. `members`: each
/// member's number and the number [`enroll`] signed them up under.
fn sync_watches_at_counter(
    db: &Path,
    members: &[(String, usize)],
    days: u64,
    issuer: &redemption_token::IssuerKey,
) -> Vec<Watched> {
    let mut store = Store::open(db).expect("open the counter's database");
    let ca = watch_protocol::WatchCa::demo();
    let at = common::when();
    let today = points_core::kst_day(at);
    let kst = at.offset();
    members
        .iter()
        .enumerate()
        .map(|(i, (member_no, signed_up))| {
            // The member as the counter looked them up.
            store
                .put_member(&terminal_store::Member {
                    member_no: member_no.clone(),
                    name: format!("회원{signed_up}"),
                    birth_date: BORN.parse().expect("a date"),
                    phone: format!("010{signed_up:08}"),
                })
                .expect("keep the member");
            let serial = format!("PW-C{i:04}");
            let mut seed = [0x5a; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let key = watch_protocol::WatchKey::from_seed(seed);
            let certificate = ca
                .certify(&serial, key.public_key())
                .and_then(|c| c.encode())
                .expect("a watch certificate");
            let number = sync_protocol::member::parse_member_number(member_no)
                .and_then(|n| u64::try_from(n).ok())
                .expect("a member number");
            let token = issuer
                .issue_dynamic(
                    redemption_token::MemberNo(number),
                    at.to_utc(),
                    120,
                    (i as u64).to_le_bytes(),
                )
                .expect("a token")
                .to_text();
            let reports: Vec<_> = (1..=days)
                .rev()
                .map(|back| {
                    let day = today - chrono::Days::new(back);
                    // Some days short of the goal, most over it.
                    let steps = 3_000 + ((i as u32 * 7_919 + back as u32 * 104_729) % 9_000);
                    let signed = day
                        .and_hms_opt(23, 59, 59)
                        .and_then(|t| t.and_local_timezone(*kst).single())
                        .expect("the day's end");
                    let proof = key
                        .sign_day(
                            &serial,
                            day,
                            steps,
                            back as u32,
                            u32::try_from(signed.timestamp()).expect("a time"),
                        )
                        .expect("a signature");
                    let report = points_core::StepReport {
                        reported_at: signed,
                        day,
                        steps,
                    };
                    (format!("steps-{i}-{day}"), report, Some(proof))
                })
                .collect();
            store
                .record_watch_sync(&terminal_store::WatchSync {
                    serial: &serial,
                    member_no,
                    records: &[],
                    last_seq: None,
                    reports: &reports,
                    certificate: Some(&certificate),
                    pairing_op_id: &format!("pairing-{i}"),
                    token: Some(&token),
                    at,
                })
                .expect("record the watch's sync");
            Watched {
                member_no: member_no.clone(),
                reports: reports.into_iter().map(|(_, r, _)| r).collect(),
            }
        })
        .collect()
}

/// The reliability harness's `kill -9` cycles, over TLS: three kiosks (2,000 sealed sign-ups
/// each, one a request) and a counter (members' certified watches paired with their tokens,
/// and the step reports the watches signed) syncing at once while, at varied moments, the
/// server, the terminals or all of them are killed with SIGKILL, 300 times over, the server
/// started again on the same address with the same certificate each time. Afterwards every
/// sign-up is on the server exactly once, every step report credited exactly once (each
/// member's points are what `points-core` makes of the reports, none refused), and every
/// database passes SQLite's integrity check.
#[test]
fn server_and_terminals_killed_at_random_moments_300_times_lose_nothing_and_double_nothing() {
    let mut world = World::tls();
    let addr = world.server.addr().to_owned();
    // The program trusts the demonstration watch authority: steps count only as a watch it
    // certified, paired to the member, signed them.
    let said = world.central_cli(&["watch-ca", "add", "--demo"]);
    assert!(said.contains("added"), "{said}");
    let key_file = world.dir.path().join("issuer.hex");
    let said = world.central_cli(&[
        "key",
        "add",
        "--secret-out",
        key_file.to_str().expect("a UTF-8 path"),
    ]);
    let key_id: u16 = said
        .lines()
        .find_map(|l| l.strip_prefix("key_id: "))
        .and_then(|id| id.trim().parse().ok())
        .unwrap_or_else(|| panic!("no key id in {said:?}"));
    let seed = std::fs::read_to_string(&key_file).expect("read the issuing key");
    let issuer =
        redemption_token::IssuerKey::from_seed_hex(key_id, seed.trim()).expect("an issuing key");

    // The counter's members, signed up before the day at a kiosk of their own.
    const WATCHED: usize = 120;
    const DAYS: u64 = 5;
    let signups = world.terminal("kiosk-watched", "kiosk");
    let signup_ops = enroll(&signups, 50_000, WATCHED);
    let out = sync(&signups, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out, "accepted"), WATCHED as u64);
    let numbers: Vec<(String, usize)> = {
        let entries = Store::open(&signups)
            .unwrap()
            .outbox_entries(false)
            .unwrap();
        signup_ops
            .iter()
            .zip(50_000..)
            .map(|(op, signed_up)| {
                let number = entries
                    .iter()
                    .find(|e| &e.op_id == op)
                    .and_then(|e| e.member_number.clone())
                    .expect("the member's number");
                (number, signed_up)
            })
            .collect()
    };
    let counter = world.terminal("counter-chaos", "counter");
    let watched = sync_watches_at_counter(&counter, &numbers, DAYS, &issuer);
    // A pairing and `DAYS` reports a member.
    let counter_ops = (WATCHED * (1 + DAYS as usize)) as u64;

    let terminals: Vec<(PathBuf, Vec<String>)> = (0..3)
        .map(|n| {
            let db = world.terminal(&format!("kiosk-chaos-{n}"), "kiosk");
            let ops = enroll(&db, 10_000 * (n + 1), 2000);
            (db, ops)
        })
        .collect();
    let mut rng = 0x9988_u64;
    let mut next = |below: u64| {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (rng >> 33) % below
    };
    for cycle in 0..300u64 {
        // One operation a request. The kiosks' syncs run at a lower priority (`nice` execs the
        // sync, so the kill reaches it): before its first request a kiosk's sync opens its
        // store and unseals its 2,000 pending sign-ups, some 100 ms on a fast machine but
        // half a second of CPU on a slow one, where the three of them would otherwise starve
        // the counter and the server for the whole of each cycle.
        let mut children: Vec<Child> = terminals
            .iter()
            .map(|(db, _)| (db, "10"))
            .chain([(&counter, "0")])
            .map(|(db, niceness)| {
                Command::new("nice")
                    .args(["-n", niceness])
                    .arg(palpal_bin())
                    .args(["sync", "--db", db.to_str().expect("a UTF-8 path")])
                    .args(["--batch-ops", "1", "--attempts", "2", "--max-wait", "1"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start palpal sync")
            })
            .collect();
        // Anywhere from before the first request to well into the drain (on a slow machine
        // the kiosks' first requests may come only after the kill).
        std::thread::sleep(Duration::from_millis(5 + next(220)));
        let what = cycle % 3;
        if what != 1 {
            world.server.stop();
        }
        for child in &mut children {
            if what != 0 {
                let _ = child.kill();
            }
        }
        for child in &mut children {
            // A terminal whose server died gives up within its limits; make sure.
            std::thread::sleep(Duration::from_millis(1));
            let _ = child.kill();
            let _ = child.wait();
        }
        if what != 1 {
            world.restart(&addr);
        }
        if cycle % 100 == 99 {
            // Diagnostic only (how far the drains got depends on the machine's speed).
            eprintln!(
                "after cycle {cycle}: members on the server {:?}, the counter's outbox {:?}",
                world.members(),
                Store::open(&counter).unwrap().outbox_counts().unwrap()
            );
        }
    }
    for (db, ops) in &terminals {
        let out = sync(db, &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(summary(&out, "remaining"), 0);
        assert!(world.member_ops(ops).iter().all(|n| *n == 1));
        let store = Store::open(db).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok");
        let counts = store.outbox_counts().unwrap();
        assert_eq!((counts.done, counts.rejected), (2000, 0));
    }
    assert_eq!(
        world.members(),
        (6000 + WATCHED as i64, 6000 + WATCHED as i64)
    );

    // The counter: every pairing and report applied, none refused; then pulled, each
    // member's points are what the policy core makes of the reports the watch signed.
    let out = sync(&counter, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out, "remaining"), 0);
    assert_eq!(summary(&out, "rejected"), 0);
    let store = Store::open(&counter).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let counts = store.outbox_counts().unwrap();
    assert_eq!((counts.done, counts.rejected), (counter_ops, 0));
    let policies = points_core::PolicySet::new(
        store
            .cached_policies()
            .unwrap()
            .iter()
            .map(|p| points_core::PointsPolicy::from_toml_str(&p.text).expect("a policy"))
            .collect(),
    )
    .expect("the published policies");
    let central = world.central();
    let born = BORN.parse().expect("a date");
    let mut credited = 0;
    for member in &watched {
        let mut ledger = points_core::Ledger::new(born);
        for report in &member.reports {
            ledger.apply(&policies, report);
        }
        // As the server's ledger has them, and as the counter pulled them.
        let on_server: i64 = central
            .query_row(
                "SELECT coalesce(sum(points), 0) FROM ledger_entries WHERE member_id = ?1",
                [sync_protocol::member::parse_member_number(
                    &member.member_no,
                )],
                |r| r.get(0),
            )
            .unwrap();
        let pulled = store
            .balance(&member.member_no)
            .unwrap()
            .unwrap_or_else(|| panic!("no balance pulled for {}", member.member_no));
        assert_eq!(
            (
                u64::try_from(on_server).ok(),
                u64::try_from(pulled.credited).ok()
            ),
            (Some(ledger.total()), Some(ledger.total())),
            "{}",
            member.member_no
        );
        credited += ledger.total();
    }
    assert!(credited > 0, "the watches' steps earn points");
    // On the server: each report once, each watch proof credited once, each watch paired.
    let count = |sql: &str| -> i64 { central.query_row(sql, [], |r| r.get(0)).unwrap() };
    let reports = WATCHED as i64 * DAYS as i64;
    assert_eq!(
        count("SELECT count(*) FROM step_reports WHERE op_id LIKE 'steps-%'"),
        reports
    );
    assert_eq!(
        count("SELECT count(DISTINCT op_id) FROM step_reports WHERE op_id LIKE 'steps-%'"),
        reports
    );
    assert_eq!(
        count("SELECT count(*) FROM watch_proofs WHERE serial LIKE 'PW-C%'"),
        reports
    );
    assert_eq!(
        count("SELECT count(*) FROM watch_pairings WHERE serial LIKE 'PW-C%' AND ended_at IS NULL"),
        WATCHED as i64
    );
    let check: String = central
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// A self-signed certificate and key made by `palpal-central tls generate`; returns the files
/// and the key terminals pin.
fn certificate(dir: &Path, name: &str) -> (String, String, String) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    let out = run(
        &central_bin(),
        &[
            "tls",
            "generate",
            "--cert-out",
            cert.to_str().expect("a UTF-8 path"),
            "--key-out",
            key.to_str().expect("a UTF-8 path"),
            "--name",
            "127.0.0.1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let server_key = text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("server_key: "))
        .expect("a server key")
        .to_owned();
    (
        cert.to_str().expect("a UTF-8 path").to_owned(),
        key.to_str().expect("a UTF-8 path").to_owned(),
        server_key,
    )
}

/// Over TLS, a terminal talks only to a server that holds the key it pinned at provisioning:
/// a server with another key (someone in between) is refused, by `palpal provision` and by
/// every sync after, with the work kept; plain HTTP goes only to this machine.
#[test]
fn a_terminal_talks_tls_only_to_the_key_it_pinned() {
    let dir = tempfile::tempdir().expect("temp dir");
    let central_db = dir.path().join("central.sqlite");
    let (cert, key, pinned) = certificate(dir.path(), "server");
    let (other_cert, other_key, other) = certificate(dir.path(), "impostor");
    assert_ne!(pinned, other);
    let mut server = Server::start_with(
        &central_db,
        "127.0.0.1:0",
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let db_path = |name: &str| dir.path().join(format!("{name}.sqlite"));
    let add = run(
        &central_bin(),
        &[
            "terminal",
            "add",
            "--db",
            central_db.to_str().expect("a UTF-8 path"),
            "--site",
            "성북구 보건소",
            "--role",
            "kiosk",
            "--tls-cert",
            &cert,
        ],
    );
    assert!(add.status.success(), "{}", text(&add.stderr));
    let printed = text(&add.stdout);
    let code = printed
        .lines()
        .find_map(|l| l.strip_prefix("code: "))
        .expect("a code")
        .to_owned();
    assert!(
        printed.contains(&format!("server_key: {pinned}")),
        "{printed}"
    );

    let provision = |db: &Path, server: &str, key: Option<&str>| {
        let mut args = vec![
            "provision",
            "--db",
            db.to_str().expect("a UTF-8 path"),
            "--server",
            server,
            "--code",
            &code,
        ];
        if let Some(key) = key {
            args.extend(["--server-key", key]);
        }
        palpal(&args)
    };
    // The wrong key: refused before anything is sent, the code still unused.
    let wrong = provision(&db_path("wrong"), &server.url, Some(&other));
    assert!(!wrong.status.success());
    let said = text(&wrong.stderr);
    assert!(
        said.contains("다른 키") && said.contains("another key") && said.contains(&pinned),
        "{said}"
    );
    // No key for https, plain http over the network: refused, saying what to do.
    let keyless = provision(&db_path("keyless"), &server.url, None);
    assert!(
        text(&keyless.stderr).contains("서버 키"),
        "{}",
        text(&keyless.stderr)
    );
    let plain = provision(&db_path("plain"), "http://192.0.2.10:8088", None);
    assert!(
        text(&plain.stderr).contains("http://"),
        "{}",
        text(&plain.stderr)
    );

    // The right key: provisioned, and sign-ups sync over TLS.
    let db = db_path("kiosk");
    let out = provision(&db, &server.url, Some(&pinned));
    assert!(out.status.success(), "{}", text(&out.stderr));
    enroll(&db, 0, 5);
    let out = palpal(&["sync", "--db", db.to_str().expect("a UTF-8 path")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out, "accepted"), 5);

    // Someone in between: another server on the same address with another key.
    let addr = server.addr().to_owned();
    server.stop();
    let _impostor = Server::start_with(
        &central_db,
        &addr,
        &["--tls-cert", &other_cert, "--tls-key", &other_key],
    );
    enroll(&db, 5, 2);
    let out = palpal(&[
        "sync",
        "--db",
        db.to_str().expect("a UTF-8 path"),
        "--attempts",
        "1",
    ]);
    assert!(!out.status.success());
    let said = text(&out.stderr) + &text(&out.stdout);
    assert!(said.contains("다른 키") && said.contains(&other), "{said}");
    assert_eq!(summary(&out, "remaining"), 2, "the work is kept");
}
