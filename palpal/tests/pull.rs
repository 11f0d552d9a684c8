//! `palpal sync` pulls what changed on the server and caches it: real `palpal-central` and
//! `palpal` processes on 127.0.0.1, SQLite on disk. A kiosk and a counter work against the
//! server (enrollments, step reports, redemption holds; the operator sets the schedule and the
//! quota, revokes a card and adds a redemption key), then each pulls and the caches are read
//! back; a pull killed between pages and resumed ends in the same state as one run through;
//! a server answering nonsense gets a clear error and changes nothing.
//!
//! `palpal-central` is another package's binary, looked for next to `palpal` in the same
//! target folder: build it first (`cargo build --workspace --bins`, as `make test` does).

#![allow(clippy::unwrap_used)] // a test file: a failed unwrap is a failed test

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use kiosk_core::admission::DayRule;
use sync_protocol::wire::{OpPayload, RedemptionHoldPayload, StepReportPayload};
use terminal_store::Store;

mod common;
use common::{enroll, palpal_bin, sibling_bin, summary, text};

const SITE: &str = "성북구 보건소";
/// Members signed up: enough that a pull of one change a page takes a while to kill.
const MEMBERS: usize = 150;

fn central(args: &[&str]) -> String {
    let out = Command::new(sibling_bin("palpal-central"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn palpal(args: &[&str]) -> Output {
    Command::new(palpal_bin()).args(args).output().unwrap()
}

/// A `palpal-central serve` process; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(db: &Path) -> Server {
        let mut child = Command::new(sibling_bin("palpal-central"))
            .args([
                "serve",
                "--db",
                db.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_owned();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct World {
    dir: tempfile::TempDir,
    db: PathBuf,
    server: Server,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("central.sqlite");
        let server = Server::start(&db);
        World { dir, db, server }
    }

    fn db(&self) -> &str {
        self.db.to_str().unwrap()
    }

    fn terminal(&self, name: &str, role: &str) -> PathBuf {
        let out = central(&[
            "terminal",
            "add",
            "--db",
            self.db(),
            "--site",
            SITE,
            "--role",
            role,
        ]);
        let code = out.lines().find_map(|l| l.strip_prefix("code: ")).unwrap();
        let db = self.dir.path().join(format!("{name}.sqlite"));
        let out = palpal(&[
            "provision",
            "--db",
            db.to_str().unwrap(),
            "--server",
            &self.server.url,
            "--code",
            code,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        db
    }
}

fn sync(db: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["sync", "--db", db.to_str().unwrap()];
    args.extend_from_slice(extra);
    palpal(&args)
}

/// Today in Asia/Seoul, as the server sees it.
fn seoul_today() -> NaiveDate {
    Utc::now().with_timezone(&points_core::KST).date_naive()
}

/// Everything pulled, as text, without the times of the pulls (`as_of`, `last_pull`).
fn pulled(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut out = String::new();
    for sql in [
        "SELECT cursor, admission FROM pull_state",
        "SELECT name, effective_from, effective_until, length(text) FROM policies ORDER BY name",
        "SELECT key_id, public_key, retired FROM redemption_keys ORDER BY key_id",
        "SELECT member_no FROM revoked_members ORDER BY member_no",
        "SELECT member_no, credited, spent, balance FROM balances ORDER BY member_no",
        "SELECT serial, member_no, ended FROM server_pairings ORDER BY serial",
        "SELECT lease_id, site, day, places, used FROM quota_leases ORDER BY lease_id",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        for row in rows {
            out.push_str(&row.unwrap().join("|"));
            out.push('\n');
        }
        out.push_str("--\n");
    }
    out
}

#[test]
fn sync_caches_what_the_server_knows_and_a_killed_pull_resumes_to_the_same_state() {
    let world = World::new();
    let today = seoul_today();
    let tomorrow = today.checked_add_days(Days::new(1)).unwrap();
    central(&[
        "schedule",
        "set",
        "--db",
        world.db(),
        "--day",
        &today.to_string(),
        "--rule",
        "odd_birth_years",
    ]);
    central(&[
        "schedule",
        "set",
        "--db",
        world.db(),
        "--day",
        &tomorrow.to_string(),
        "--rule",
        "age_band:65-120",
    ]);
    central(&[
        "quota",
        "set",
        "--db",
        world.db(),
        "--day",
        &today.to_string(),
        "--site",
        SITE,
        "--places",
        "400",
    ]);
    let key_out = central(&[
        "key",
        "add",
        "--db",
        world.db(),
        "--secret-out",
        world.dir.path().join("issuer.key").to_str().unwrap(),
    ]);
    let public_key = key_out
        .lines()
        .find_map(|l| l.strip_prefix("public_key: "))
        .unwrap()
        .to_owned();

    // The kiosk signs up people, and pulls the schedule and its lease.
    let kiosk = world.terminal("kiosk", "kiosk");
    enroll(&kiosk, 0, MEMBERS);
    let out = sync(&kiosk, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out, "accepted"), MEMBERS as u64);
    let store = Store::open(&kiosk).unwrap();
    let schedule = store.admission_schedule().unwrap().unwrap();
    assert_eq!(schedule.rule_on(today), DayRule::OddBirthYears);
    assert_eq!(
        schedule.rule_on(tomorrow),
        DayRule::AgeBand {
            min_age: 65,
            max_age: 120
        }
    );
    let leases = store.quota_leases_on(today).unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!((leases[0].site.as_str(), leases[0].places), (SITE, 400));
    assert_eq!(store.cached_policies().unwrap().len(), 3);
    let members: Vec<String> = store
        .outbox_entries(false)
        .unwrap()
        .into_iter()
        .map(|e| e.member_number.unwrap())
        .collect();
    assert_eq!(members.len(), MEMBERS);
    drop(store);

    // The counter reports a day's steps for each member and takes a hold from the first.
    let counter = world.terminal("counter", "counter");
    {
        let store = Store::open(&counter).unwrap();
        let terminal = store.identity().unwrap().unwrap().terminal_id;
        let now = Utc::now().fixed_offset();
        let yesterday = today.checked_sub_days(Days::new(1)).unwrap();
        for (i, member) in members.iter().enumerate() {
            let payload = OpPayload::StepReport(StepReportPayload {
                member_number: member.clone(),
                day: yesterday.to_string(),
                steps: 9000,
                reported_at: now.to_rfc3339(),
                watch: None,
            });
            store
                .queue_operation(&format!("steps-{i}"), &payload, now)
                .unwrap();
        }
        // The member's phone shows a token made with the key the server published.
        let seed = std::fs::read_to_string(world.dir.path().join("issuer.key")).unwrap();
        let issuer = redemption_token::IssuerKey::from_seed_hex(1, seed.trim()).unwrap();
        let token = issuer
            .issue_dynamic(members[0].parse().unwrap(), now.to_utc(), 120, [1; 8])
            .unwrap();
        let hold = OpPayload::RedemptionHold(RedemptionHoldPayload {
            member_no: members[0].clone(),
            amount: 30,
            token: token.to_text(),
            held_at: now.to_rfc3339(),
            terminal,
        });
        store.queue_operation("hold-1", &hold, now).unwrap();
    }
    central(&[
        "member",
        "revoke",
        "--db",
        world.db(),
        "--member",
        &members[11],
    ]);
    let changes = MEMBERS as u64 + 2; // every balance, one revoked member, one key

    let out = sync(&counter, &["--pull-limit", "3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out, "accepted"), MEMBERS as u64 + 1);
    assert_eq!(summary(&out, "changes"), changes);
    assert_eq!(summary(&out, "pages"), changes.div_ceil(3));
    let store = Store::open(&counter).unwrap();
    let first = store.balance(&members[0]).unwrap().unwrap();
    assert_eq!((first.credited, first.spent, first.balance), (100, 30, 70));
    assert!(first.as_of <= Utc::now().fixed_offset());
    assert_eq!(store.balance(&members[5]).unwrap().unwrap().balance, 100);
    assert!(store.is_revoked(&members[11]).unwrap());
    assert!(!store.is_revoked(&members[0]).unwrap());
    let keys = store.redemption_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].retired);
    assert_eq!(
        store.redemption_keys().unwrap()[0].public_key.to_vec(),
        decode_base64(&public_key)
    );
    assert_eq!(store.cached_policies().unwrap().len(), 3);
    // A counter gets no schedule and no leases.
    assert_eq!(store.admission_schedule().unwrap(), None);
    assert!(store.quota_leases_on(today).unwrap().is_empty());
    let counts = store.pulled_counts().unwrap();
    assert_eq!(
        (counts.balances, counts.revoked_members),
        (MEMBERS as u64, 1)
    );
    assert!(store.last_pull().unwrap().is_some());
    drop(store);

    let status = text(&palpal(&["status", "--db", counter.to_str().unwrap()]).stdout);
    assert!(
        status.contains(&format!("잔액 balances: {MEMBERS}")),
        "{status}"
    );
    assert!(status.contains("정지 회원 revoked members: 1"), "{status}");
    assert!(status.contains("교환 키 redemption keys: 1"), "{status}");
    assert!(status.contains("받기 위치 cursor: 1."), "{status}");
    assert!(!status.contains("마지막 받기 last pull: 없음"), "{status}");
    let status = text(&palpal(&["status", "--db", kiosk.to_str().unwrap()]).stdout);
    assert!(status.contains("가입 일정 admission days: 2"), "{status}");
    assert!(status.contains("가입 정원 quota leases: 1"), "{status}");

    // A second counter pulls one change a page and is killed again and again on the way;
    // resumed, it holds exactly what the first counter holds.
    let second = world.terminal("counter-2", "counter");
    for cycle in 0..8u64 {
        let mut child = Command::new(palpal_bin())
            .args([
                "sync",
                "--db",
                second.to_str().unwrap(),
                "--pull-limit",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(30 + (cycle * 41) % 120));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // Diagnostic only: how far the killed runs got depends on the machine's speed.
    eprintln!(
        "after the kills: {:?}",
        Store::open(&second).unwrap().pull_cursor().unwrap()
    );
    let out = sync(&second, &["--pull-limit", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(pulled(&second), pulled(&counter));
    assert_eq!(
        Store::open(&second).unwrap().integrity_check().unwrap(),
        "ok"
    );
    // Nothing changed since: a pull gets an empty page and the same state.
    let out = sync(&counter, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out, "changes"), 0);
    assert_eq!(pulled(&second), pulled(&counter));
}

fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        acc = (acc << 6) | ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// A server that answers every request with `status` and `body`, on 127.0.0.1.
fn answering(status: u16, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut request_body = vec![0; length];
            let _ = reader.read_exact(&mut request_body);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn a_bad_answer_to_a_pull_is_explained_and_changes_nothing() {
    let world = World::new();
    let counter = world.terminal("counter", "counter");
    let out = sync(&counter, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let before = pulled(&counter);
    assert!(before.contains("seoul-2025-12"), "{before}");
    let last_pull = Store::open(&counter).unwrap().last_pull().unwrap();

    let bad_policy = r#"{"cursor":"1.0123456789abcdef.99","more":false,"redemption_keys":[],
        "revoked_members":["PP-00000001"],"balances":[],
        "policies":[{"name":"broken","effective_from":"2026-01-01","text":"this is not a policy"}]}"#;
    let wrong_sum = r#"{"cursor":"1.0123456789abcdef.99","more":false,"redemption_keys":[],
        "revoked_members":[],
        "balances":[{"member_number":"PP-00000001","credited":100,"spent":0,"balance":5000}]}"#;
    for (status, body, expect) in [
        (200, "<html>proxy error</html>", "읽을 수 없어"),
        (200, bad_policy, "broken"),
        (200, wrong_sum, "credited minus spent"),
        (
            403,
            r#"{"code":"revoked_terminal","message":"이 단말기는 사용이 중지되었습니다","message_en":"This terminal was revoked"}"#,
            "revoked_terminal",
        ),
    ] {
        let url = answering(status, body);
        rusqlite::Connection::open(&counter)
            .unwrap()
            .execute("UPDATE terminal_identity SET server_url = ?1", [&url])
            .unwrap();
        let out = sync(&counter, &["--attempts", "1"]);
        assert_eq!(out.status.code(), Some(1), "{body}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(expect)
                && stderr.contains("다음 동기화")
                && stderr.contains("next sync"),
            "{body}: {stderr}"
        );
        assert_eq!(pulled(&counter), before, "{body}");
        let store = Store::open(&counter).unwrap();
        assert_eq!(store.last_pull().unwrap(), last_pull);
        assert!(store.sync_log().unwrap().last_error.is_some());
    }
}

#[test]
fn each_sync_tells_the_server_how_the_terminal_is_doing() {
    let world = World::new();
    let kiosk = world.terminal("kiosk", "kiosk");
    enroll(&kiosk, 0, 3);
    // The kiosk's clock runs two minutes fast: the push's answer tells it so, and its pull
    // tells the server.
    let out = sync(&kiosk, &["--clock-error", "120"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The server writes down what it heard every few seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let row = loop {
        let listed = central(&["terminal", "list", "--db", world.db()]);
        let row = listed
            .lines()
            .find(|l| l.starts_with("T-000001"))
            .unwrap()
            .to_owned();
        if !row.ends_with("\t-\t-\t-\t-\t-") || std::time::Instant::now() > deadline {
            break row;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let fields: Vec<&str> = row.split('\t').collect();
    assert_eq!(fields.len(), 10, "{row}");
    assert!(fields[5].starts_with("20"), "last seen: {row}");
    assert_eq!(
        &fields[6..9],
        [env!("CARGO_PKG_VERSION"), "0", "-"],
        "version, waiting, oldest waiting: {row}"
    );
    let offset: i64 = fields[9].parse().unwrap();
    assert!((119..=121).contains(&offset), "clock offset: {row}");
}

/// A terminal provisioned with what the console's QR code holds (the enrollment offer's
/// text) instead of the code and address typed; a text that is not an offer, or one naming
/// no server without `--server`, is refused with a clear message and nothing provisioned.
#[test]
fn a_terminal_is_provisioned_with_the_text_of_its_enrollment_qr_code() {
    let world = World::new();
    let code = |world: &World| {
        let out = central(&[
            "terminal",
            "add",
            "--db",
            world.db(),
            "--site",
            SITE,
            "--role",
            "counter",
        ]);
        out.lines()
            .find_map(|l| l.strip_prefix("code: "))
            .unwrap()
            .to_owned()
    };
    let db = world.dir.path().join("offered.sqlite");
    let offer = sync_protocol::enrollment::EnrollmentOffer::new(
        &code(&world),
        Some(&world.server.url),
        None,
    );
    let out = palpal(&[
        "provision",
        "--db",
        db.to_str().unwrap(),
        "--offer",
        &offer.to_text(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("terminal: T-000001"),
        "{}",
        text(&out.stdout)
    );
    let synced = sync(&db, &[]);
    assert!(synced.status.success(), "{}", text(&synced.stderr));

    for (bad, says) in [
        ("PP1:ABCDEF".to_owned(), "등록 QR 코드의 내용이 아닙니다"),
        (
            sync_protocol::enrollment::EnrollmentOffer::new(&code(&world), None, None).to_text(),
            "서버 주소가 없습니다",
        ),
    ] {
        let db = world.dir.path().join("refused.sqlite");
        let out = palpal(&["provision", "--db", db.to_str().unwrap(), "--offer", &bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            text(&out.stderr).contains(says),
            "{bad}: {}",
            text(&out.stderr)
        );
        let store = terminal_store::Store::open(&db).unwrap();
        assert!(store.identity().unwrap().is_none(), "{bad}");
    }
}
