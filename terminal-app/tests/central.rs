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
use terminal_app::terminal::Terminal;
use terminal_app::{commands, setup, AppState};
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

/// A kiosk not provisioned, in its own folder.
fn kiosk(dir: &Path) -> AppState {
    let config = TerminalConfig::parse(
        &format!("role = \"kiosk\"\nsite = \"{SITE}\"\nsite_name = \"종로구 보건소\"\n"),
        dir,
    )
    .unwrap();
    AppState::ready(Terminal::open(config).unwrap())
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
