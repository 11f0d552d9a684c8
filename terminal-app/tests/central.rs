//! The flows that need the central server, against a real one: a `palpal-central serve`
//! process on 127.0.0.1 over SQLite on disk, the terminal's own store on disk, and the flows
//! called as the app's commands call them.
//!
//! `palpal-central` is another package's binary, looked for in the same target folder as this
//! test: build it first (`cargo build --workspace --bins`, as `make test` does).

#![allow(clippy::unwrap_used)] // a test file: a failed unwrap is a failed test

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sync_protocol::enrollment::EnrollmentOffer;
use terminal_app::config::TerminalConfig;
use terminal_app::error::CommandError;
use terminal_app::kiosk::ConsentInput;
use terminal_app::sync::BackgroundSync;
use terminal_app::terminal::Terminal;
use terminal_app::{commands, kiosk, replace, setup, AppState};
use terminal_store::Store;

const SITE: &str = "jongno-cc";

fn central_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join(format!("palpal-central{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins`",
        path.display()
    );
    path
}

fn central(args: &[&str]) -> String {
    let out = Command::new(central_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `palpal-central serve` process and its database; killed when dropped.
struct Central {
    dir: tempfile::TempDir,
    child: Child,
    url: String,
    /// The TLS certificate it serves and the key terminals pin, if over TLS.
    tls: Option<(String, String)>,
}

impl Central {
    fn start(tls: bool) -> Central {
        Central::start_with(tls, false)
    }

    /// A server that signs member cards (`--card-key`), today open for sign-ups at the site.
    fn signing_cards() -> Central {
        Central::start_with(false, true)
    }

    fn start_with(tls: bool, cards: bool) -> Central {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("central.sqlite");
        let mut args = vec![
            "serve".to_owned(),
            "--db".to_owned(),
            db.to_str().unwrap().to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
        ];
        let tls = tls.then(|| {
            let cert = dir.path().join("server.pem");
            let key = dir.path().join("server-key.pem");
            let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
            let out = central(&[
                "tls",
                "generate",
                "--cert-out",
                cert,
                "--key-out",
                key,
                "--name",
                "127.0.0.1",
            ]);
            let pinned = out
                .lines()
                .find_map(|l| l.strip_prefix("server_key: "))
                .unwrap()
                .to_owned();
            args.extend([
                "--tls-cert".into(),
                cert.into(),
                "--tls-key".into(),
                key.into(),
            ]);
            (cert.to_owned(), pinned)
        });
        if cards {
            let db = db.to_str().unwrap();
            let secret = dir.path().join("card-key.hex");
            let secret = secret.to_str().unwrap();
            central(&["key", "add", "--db", db, "--secret-out", secret]);
            let today = chrono::Utc::now()
                .with_timezone(&points_core::KST)
                .date_naive()
                .to_string();
            central(&[
                "schedule", "set", "--db", db, "--day", &today, "--rule", "open",
            ]);
            central(&[
                "quota", "set", "--db", db, "--day", &today, "--site", SITE, "--places", "5",
            ]);
            args.extend(["--card-key".to_owned(), secret.to_owned()]);
        }
        let mut child = Command::new(central_bin())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_owned();
        Central {
            dir,
            child,
            url,
            tls,
        }
    }

    fn db(&self) -> String {
        self.dir
            .path()
            .join("central.sqlite")
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// A new one-time code for a terminal of `role` at the site (`palpal-central terminal add`).
    fn code(&self, role: &str) -> String {
        let db = self.db();
        let mut args = vec![
            "terminal", "add", "--db", &db, "--site", SITE, "--role", role,
        ];
        if let Some((cert, _)) = &self.tls {
            args.extend(["--tls-cert", cert]);
        }
        central(&args)
            .lines()
            .find_map(|l| l.strip_prefix("code: "))
            .unwrap()
            .to_owned()
    }
}

impl Drop for Central {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kiosk not provisioned, in its own folder, printing to `printer.bin` there.
fn kiosk(dir: &Path) -> AppState {
    let config = TerminalConfig::parse(
        &format!(
            "role = \"kiosk\"\nsite = \"{SITE}\"\nsite_name = \"종로구 보건소\"\n\
             [kiosk]\nprinter = \"printer.bin\"\n"
        ),
        dir,
    )
    .unwrap();
    AppState::ready(Terminal::open(config).unwrap())
}

/// A kiosk provisioned with the server through its setup.
fn provisioned_kiosk(central: &Central, dir: &Path) -> AppState {
    let state = kiosk(dir);
    let offer = EnrollmentOffer::new(&central.code("kiosk"), Some(&central.url), None).to_text();
    setup::provision_terminal(&state, None, offer).unwrap();
    state
}

fn code_of(e: &CommandError) -> String {
    serde_json::to_value(e.code)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

fn provisioned(dir: &Path) -> bool {
    Store::open(&dir.join("terminal.sqlite"))
        .unwrap()
        .identity()
        .unwrap()
        .is_some()
}

/// A kiosk not provisioned opens on its setup; each bad offer is refused with its own code and
/// message and nothing is stored; the console's offer provisions it, after which it never
/// shows the setup and refuses a second provisioning without using up the second code.
#[test]
fn a_kiosk_is_set_up_with_the_consoles_enrollment_offer_and_only_once() {
    let central = Central::start(false);
    let dir = tempfile::tempdir().unwrap();
    let state = kiosk(dir.path());
    assert!(commands::terminal_info(&state).unwrap().setup);

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let unused = central.code("kiosk");
    let bad = [
        (
            "PP1:ABCDEF".to_owned(),
            "not_an_offer",
            "등록 QR 코드의 내용이 아닙니다",
        ),
        (
            EnrollmentOffer::new(&central.code("kiosk"), None, None).to_text(),
            "no_server",
            "서버 주소가 없습니다",
        ),
        (
            EnrollmentOffer::new("0000-0000-0000-0000", Some(&central.url), None).to_text(),
            "bad_code",
            "등록 코드가 올바르지 않거나",
        ),
        (
            EnrollmentOffer::new(&unused, Some(&closed), None).to_text(),
            "server_unreachable",
            "연결할 수 없습니다",
        ),
        (
            EnrollmentOffer::new(&unused, Some("http://192.0.2.10:8088"), None).to_text(),
            "bad_address",
            "http://",
        ),
    ];
    for (text, code, says) in &bad {
        let refused = setup::provision_terminal(&state, None, text.clone()).unwrap_err();
        assert_eq!(code_of(&refused), *code, "{text}: {}", refused.message);
        assert!(
            refused.message.contains(says),
            "{text}: {}",
            refused.message
        );
        assert!(!provisioned(dir.path()), "{text}");
    }
    // Read first: what it will do, nothing sent.
    let refused = setup::read_enrollment_offer(&state, "not a code".into()).unwrap_err();
    assert_eq!(code_of(&refused), "not_an_offer");
    state.set_lang(terminal_app::error::Lang::En);
    let refused = setup::read_enrollment_offer(&state, "not a code".into()).unwrap_err();
    assert!(
        refused
            .message
            .starts_with("This is not what a terminal's enrollment QR code holds"),
        "{}",
        refused.message
    );
    state.set_lang(terminal_app::error::Lang::Ko);

    let offer = EnrollmentOffer::new(&unused, Some(&central.url), None).to_text();
    let read = setup::read_enrollment_offer(&state, offer.clone()).unwrap();
    assert_eq!(read.server, central.url);
    assert_eq!(read.server_key, None);
    assert_eq!(read.code_end, unused[unused.len() - 4..]);
    assert!(!provisioned(dir.path()));

    // The code the unreachable and refused tries named is still unused: it provisions.
    let done = setup::provision_terminal(&state, None, offer.clone()).unwrap();
    assert_eq!(
        (
            done.terminal_id.as_str(),
            done.site.as_str(),
            done.role.as_str()
        ),
        ("T-000001", SITE, "kiosk")
    );
    assert_eq!(done.server, central.url);
    assert_eq!(done.warning, None);
    assert!(provisioned(dir.path()));
    assert!(!commands::terminal_info(&state).unwrap().setup);

    // Provisioned: a second offer is refused before anything is sent; its code stays unused.
    let second = central.code("kiosk");
    let again = EnrollmentOffer::new(&second, Some(&central.url), None).to_text();
    for refused in [
        setup::read_enrollment_offer(&state, again.clone()).unwrap_err(),
        setup::provision_terminal(&state, None, again.clone()).unwrap_err(),
    ] {
        assert_eq!(
            code_of(&refused),
            "already_provisioned",
            "{}",
            refused.message
        );
        assert!(refused.message.contains("T-000001"), "{}", refused.message);
    }
    let identity = Store::open(&dir.path().join("terminal.sqlite"))
        .unwrap()
        .identity()
        .unwrap()
        .unwrap();
    assert_eq!(identity.terminal_id, "T-000001");

    // The used code provisions nothing more; the second one provisions another kiosk.
    let other_dir = tempfile::tempdir().unwrap();
    let other = kiosk(other_dir.path());
    let used = setup::provision_terminal(&other, None, offer).unwrap_err();
    assert_eq!(code_of(&used), "bad_code", "{}", used.message);
    assert!(!provisioned(other_dir.path()));
    let done = setup::provision_terminal(&other, None, again).unwrap();
    assert_ne!(done.terminal_id, "T-000001");
    assert!(provisioned(other_dir.path()));
}

/// Over TLS the offer's pinned key is the only one the terminal talks to: an offer naming
/// another key is refused before the code is sent (it then provisions with the right key), and
/// a counter's code taken by a kiosk provisions it with a warning to fix the configuration.
#[test]
fn a_setup_offer_with_another_servers_key_is_refused_and_the_code_kept() {
    let central = Central::start(true);
    assert!(central.url.starts_with("https://"), "{}", central.url);
    let (_, pinned) = central.tls.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = kiosk(dir.path());
    let code = central.code("counter");
    let wrong = EnrollmentOffer::new(
        &code,
        Some(&central.url),
        Some("sha256:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="),
    )
    .to_text();
    let refused = setup::provision_terminal(&state, None, wrong).unwrap_err();
    assert_eq!(code_of(&refused), "wrong_server_key", "{}", refused.message);
    assert!(refused.message.contains(&pinned), "{}", refused.message);
    assert!(!provisioned(dir.path()));
    let keyless = EnrollmentOffer::new(&code, Some(&central.url), None).to_text();
    let refused = setup::provision_terminal(&state, None, keyless).unwrap_err();
    assert_eq!(code_of(&refused), "bad_address", "{}", refused.message);

    let right = EnrollmentOffer::new(&code, Some(&central.url), Some(&pinned)).to_text();
    let read = setup::read_enrollment_offer(&state, right.clone()).unwrap();
    assert_eq!(read.server_key.as_deref(), Some(pinned.as_str()));
    let done = setup::provision_terminal(&state, None, right).unwrap();
    assert_eq!(done.role, "counter");
    assert_eq!(done.server_key.as_deref(), Some(pinned.as_str()));
    let warning = done.warning.unwrap();
    assert!(warning.contains("설정 파일"), "{warning}");
}

fn person(name: &str, birth_date: &str, phone: &str) -> commands::ApplicantInput {
    commands::ApplicantInput {
        name: name.into(),
        birth_date: birth_date.into(),
        phone: phone.into(),
        residency: kiosk_core::Residency::Lives,
    }
}

fn member() -> commands::ApplicantInput {
    person("김영희", "19500301", "010-1234-5678")
}

/// The card's token, checked as a counter does with the server's card key and `pin`.
fn verify(central: &Central, token: &str, pin: &str) -> Result<(String, Option<u16>), String> {
    let seed = std::fs::read_to_string(central.dir.path().join("card-key.hex")).unwrap();
    let issuer = redemption_token::IssuerKey::from_seed_hex(1, seed.trim()).unwrap();
    let now = chrono::Utc::now() + chrono::Duration::minutes(1);
    let keys = redemption_token::KeySet::new(&[issuer.published(now - chrono::Duration::days(1))])
        .unwrap();
    redemption_token::verify(
        token,
        &keys,
        &redemption_token::Revocations::default(),
        Some(pin),
        now,
    )
    .map(|claims| (claims.member.to_string(), claims.card_serial))
    .map_err(|r| r.code().to_owned())
}

/// What the operator's "replace a lost card" does to the server's database: card 1 revoked,
/// card 2 allowed (`card_replacements`).
fn replace_in_console(central: &Central) {
    let db = rusqlite::Connection::open(central.dir.path().join("central.sqlite")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let at = chrono::Utc::now().to_rfc3339();
    db.execute(
        "INSERT INTO revoked_cards (member_id, serial, revoked_at) VALUES (1, 1, ?1)",
        [&at],
    )
    .unwrap();
    db.execute(
        "INSERT INTO card_replacements (member_id, serial, allowed_at) VALUES (1, 2, ?1)",
        [&at],
    )
    .unwrap();
}

/// A member signed up at kiosk A with card 1 loses it; once the operator replaced it, any
/// kiosk finds the member by name, birth date and phone and gets card 2 signed for the PIN
/// the member picks, shows it again for the same PIN and refuses another, and prints it once.
/// Before the replacement, for a stranger, for a kiosk that cannot reach the server or is not
/// provisioned, each refusal has its own code and nothing is kept.
#[test]
fn a_lost_card_is_replaced_at_any_kiosk_once_the_operator_allowed_it() {
    let central = Central::signing_cards();
    let dir_a = tempfile::tempdir().unwrap();
    let a = provisioned_kiosk(&central, dir_a.path());
    let consents: Vec<ConsentInput> = ["personal-data", "health-data"]
        .into_iter()
        .map(|id| ConsentInput {
            id: id.into(),
            version: "2025-12".into(),
            agreed: true,
        })
        .collect();
    let done = kiosk::register(&a, member(), consents, None).unwrap();
    let sync_a = BackgroundSync::new(&a);
    let first = kiosk::issue_member_card(
        &a,
        Some(&sync_a),
        done.card.op_id.clone(),
        "802417".into(),
        "802417".into(),
    )
    .unwrap();
    assert_eq!(first.member_no.as_deref(), Some("PP-00000001"));

    let dir_b = tempfile::tempdir().unwrap();
    let b = provisioned_kiosk(&central, dir_b.path());
    let refused = replace::find_card_replacement(&b, member()).unwrap_err();
    assert_eq!(code_of(&refused), "no_replacement", "{}", refused.message);
    assert!(refused.message.contains("주민센터"), "{}", refused.message);
    let stranger = || person("김영희", "19500302", "010-1234-5678");
    let refused = replace::find_card_replacement(&b, stranger()).unwrap_err();
    assert_eq!(code_of(&refused), "not_a_member", "{}", refused.message);
    let refused =
        replace::replace_lost_card(&b, member(), "135792".into(), "135792".into()).unwrap_err();
    assert_eq!(code_of(&refused), "no_replacement");

    replace_in_console(&central);
    let allowed = replace::find_card_replacement(&b, member()).unwrap();
    assert_eq!(
        (
            allowed.member_no.as_str(),
            allowed.serial,
            allowed.masked_name.as_str()
        ),
        ("PP-00000001", 2, "김*희")
    );
    let refused = replace::find_card_replacement(&b, stranger()).unwrap_err();
    assert_eq!(code_of(&refused), "not_a_member");
    let refused =
        replace::replace_lost_card(&b, stranger(), "135792".into(), "135792".into()).unwrap_err();
    assert_eq!(code_of(&refused), "not_a_member");
    for (pin, again, code) in [
        ("135792", "135793", "pin_mismatch"),
        ("111111", "111111", "pin_too_easy"),
    ] {
        let refused =
            replace::replace_lost_card(&b, member(), pin.into(), again.into()).unwrap_err();
        assert_eq!(code_of(&refused), code, "{}", refused.message);
    }

    let card = replace::replace_lost_card(&b, member(), "135792".into(), "135792".into()).unwrap();
    assert!(card.signed);
    assert_eq!(card.member_no.as_deref(), Some("PP-00000001"));
    assert_eq!(
        verify(&central, &card.qr_content, "135792"),
        Ok(("PP-00000001".to_owned(), Some(2)))
    );
    assert!(verify(&central, &card.qr_content, "802417").is_err());
    // The same PIN shows the same card again; another PIN is refused, here and elsewhere.
    let again = replace::replace_lost_card(&b, member(), "135792".into(), "135792".into()).unwrap();
    assert_eq!(again.qr_content, card.qr_content);
    let refused =
        replace::replace_lost_card(&b, member(), "246801".into(), "246801".into()).unwrap_err();
    assert_eq!(code_of(&refused), "card_exists", "{}", refused.message);
    let refused =
        replace::replace_lost_card(&a, member(), "246801".into(), "246801".into()).unwrap_err();
    assert_eq!(code_of(&refused), "card_exists", "{}", refused.message);
    assert!(refused.message.contains("이미 발급"), "{}", refused.message);

    // Printed once; then the kiosk holds it no more.
    let printed = replace::print_replacement_card(&b, "PP-00000001".into()).unwrap();
    let bytes = std::fs::read(dir_b.path().join("printer.bin")).unwrap();
    assert_eq!(bytes.len(), printed.bytes);
    assert!(
        bytes
            .windows(card.qr_content.len())
            .any(|w| w == card.qr_content.as_bytes()),
        "the printed card holds the signed token"
    );
    let refused = replace::print_replacement_card(&b, "PP-00000001".into()).unwrap_err();
    assert_eq!(code_of(&refused), "card_printed");

    // A kiosk whose server does not answer, and one not provisioned: try again later, nothing
    // kept (nothing to print).
    let dir_c = tempfile::tempdir().unwrap();
    let c = kiosk(dir_c.path());
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let refused = replace::find_card_replacement(&c, member()).unwrap_err();
    assert_eq!(code_of(&refused), "server_needed", "{}", refused.message);
    Store::open(&dir_c.path().join("terminal.sqlite"))
        .unwrap()
        .save_identity(&terminal_store::TerminalIdentity {
            terminal_id: "T-000009".into(),
            site: SITE.into(),
            role: "kiosk".into(),
            name: "offline kiosk".into(),
            server_url: closed,
            server_key: None,
            secret_key: [7; 32],
            provisioned_at: "2025-12-01T09:00:00+09:00".parse().unwrap(),
        })
        .unwrap();
    let refused =
        replace::replace_lost_card(&c, member(), "135792".into(), "135792".into()).unwrap_err();
    assert_eq!(code_of(&refused), "server_needed", "{}", refused.message);
    assert!(refused.message.contains("다시 시도"), "{}", refused.message);
    let refused = replace::print_replacement_card(&c, "PP-00000001".into()).unwrap_err();
    assert_eq!(code_of(&refused), "card_printed");
    assert!(!dir_c.path().join("printer.bin").exists());
}
