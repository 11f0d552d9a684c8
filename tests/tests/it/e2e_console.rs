//! End-to-end: the operator console of the real `palpal-central serve --console-listen` in
//! Debian's Chromium through chromedriver, as an operator uses it: setup with the code
//! `palpal-central operator add` printed, sign-in, each page in Korean and in English
//! (photographed into `target/screenshots/console-*.png`, each checked by axe-core), an
//! operator added in the console, sign-out, the lockout after failed logins, and a policy
//! file uploaded, refused with its line, previewed, published and cancelled.

use std::io::BufRead as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use fantoccini::{Client, ClientBuilder, Locator};

use crate::e2e::{click, debug_binary, enabled, keep_screenshot, text_of, type_into};

const PASSWORD: &str = "한강 산책 매일 만 보";

/// A process in a group of its own (chromedriver and the Chromium it starts, or the
/// server), ended with its group when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            if pid > 1 {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn central(args: &[&str]) -> Result<String> {
    let out = Command::new(debug_binary("palpal-central"))
        .args(args)
        .output()
        .context("running palpal-central (cargo build -p palpal-central --bins)")?;
    if !out.status.success() {
        bail!(
            "palpal-central {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// `serve` with the console on a free loopback port; the server, the terminals' API's address
/// and the console's.
fn serve(db: &str) -> Result<(Running, String, String)> {
    let mut child = Command::new(debug_binary("palpal-central"))
        .args([
            "serve",
            "--db",
            db,
            "--listen",
            "127.0.0.1:0",
            "--console-listen",
            "127.0.0.1:0",
            "--writer-cpu",
            "off",
        ])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting palpal-central serve")?;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let running = Running(child);
    let mut api = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(url) = line.strip_prefix("listening on ") {
            api = Some(url.to_owned());
        }
        if let Some(url) = line.strip_prefix("console on ") {
            let origin = url.strip_suffix("/console/").unwrap_or(url);
            let api = api.context("the server printed no API address")?;
            return Ok((running, api, origin.to_owned()));
        }
    }
    bail!("the server printed no console address")
}

/// chromedriver on a free port, Chromium headless (`--no-sandbox`: the tests run as root).
async fn browser() -> Result<(Running, Client)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting chromedriver (apt-get install chromium chromium-driver)")?;
    let driver = Running(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("chromedriver did not listen on port {port} within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--lang=ko-KR",
                     "--window-size=1280,900", "--disable-gpu", "--disable-dev-shm-usage"],
        }),
    );
    let client = ClientBuilder::native()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .context("a Chromium session through chromedriver")?;
    Ok((driver, client))
}

/// Photographs the page in Korean and in English (each checked by axe-core), then leaves
/// it in Korean.
async fn both_languages(c: &Client, url: &str, name: &str) -> Result<()> {
    c.goto(&format!("{url}?lang=en")).await?;
    keep_screenshot(c, &format!("console-{name}-en")).await?;
    c.goto(&format!("{url}?lang=ko")).await?;
    keep_screenshot(c, &format!("console-{name}-ko")).await
}

/// Clicks the button at `css`, which submits a form, and waits for the next page: the old
/// page's root goes stale once it is replaced (reading the old page meanwhile would find its
/// elements and then lose them).
async fn submit(c: &Client, css: &str) -> Result<()> {
    let old = c.find(Locator::Css("html")).await?;
    click(c, css).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if old.tag_name().await.is_err() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("no new page after clicking {css}")
}

async fn sign_in(c: &Client, console: &str, name: &str, password: &str) -> Result<()> {
    c.goto(&format!("{console}/console/login")).await?;
    type_into(c, "#name", name).await?;
    type_into(c, "#password", password).await?;
    submit(c, "main button[type=submit]").await
}

async fn set_up(c: &Client, console: &str, name: &str, code: &str) -> Result<()> {
    c.goto(&format!("{console}/console/setup")).await?;
    type_into(c, "#name", name).await?;
    type_into(c, "#code", code).await?;
    type_into(c, "#password", PASSWORD).await?;
    type_into(c, "#password_again", PASSWORD).await?;
    submit(c, "main button[type=submit]").await
}

/// The example event moved to 2099 (the server runs on the machine's clock, and a policy
/// starts after today).
fn event_2099() -> String {
    include_str!("../../../policies/example-event.toml")
        .replace("name = \"example-event\"", "name = \"event-2099\"")
        .replace("effective_from = 2025-12-01", "effective_from = 2099-12-01")
        .replace("2025-12-15", "2099-12-15")
        .replace("2025-12-28", "2099-12-28")
        .replace("2026-09-09", "2100-09-09")
}

/// The Policies page: a file with a misspelt field refused with its line, the right file
/// previewed against the policies in force, published, then cancelled.
async fn policies_flow(
    c: &Client,
    console: &str,
    dir: &std::path::Path,
    terminal: &Terminal,
) -> Result<()> {
    let status = terminal.sync_status()?;
    assert!(status.contains("정책 policies: 3"), "{status}");
    both_languages(c, &format!("{console}/console/policies"), "policies").await?;
    type_into(c, "#text", "name = \"x\"\neffective_fro = 2099-12-01\n").await?;
    submit(c, "button[value=preview]").await?;
    let problem = text_of(c, "#policy-problem").await?;
    assert!(
        problem.contains("정책 파일 2번째 줄 1번째 글자"),
        "{problem}"
    );
    c.execute(
        "document.querySelector('#policy-problem').scrollIntoView({block: 'center'});",
        vec![],
    )
    .await?;
    keep_screenshot(c, "console-policy-error-ko").await?;

    let file = dir.join("event-2099.toml");
    std::fs::write(&file, event_2099())?;
    type_into(c, "#text", "").await?;
    c.find(Locator::Css("#file"))
        .await?
        .send_keys(file.to_str().context("a UTF-8 path")?)
        .await?;
    submit(c, "button[value=preview]").await?;
    assert_eq!(
        text_of(c, ".notice.ok").await?,
        "정책 파일에 오류가 없습니다. 미리보기를 확인하고 게시하세요."
    );
    c.execute(
        "document.querySelector('#preview').scrollIntoView();",
        vec![],
    )
    .await?;
    keep_screenshot(c, "console-policy-preview-ko").await?;
    submit(c, "button[value=publish]").await?;
    assert_eq!(
        text_of(c, ".notice.ok").await?,
        "정책을 게시했습니다. 단말기는 다음 동기화 때 받습니다."
    );
    let row = text_of(c, "#in-force + table tbody tr:last-child").await?;
    assert!(row.contains("event-2099") && row.contains("예정"), "{row}");
    both_languages(
        c,
        &format!("{console}/console/policies"),
        "policy-published",
    )
    .await?;
    // A counter's next sync pulls it.
    let status = terminal.sync_status()?;
    assert!(
        status.contains("정책 policies: 4") && status.contains("  event-2099 2099-12-01.."),
        "{status}"
    );
    submit(c, "button[aria-label='정책 취소 event-2099']").await?;
    assert_eq!(
        text_of(c, ".notice.ok").await?,
        "예정된 정책을 취소했습니다."
    );
    keep_screenshot(c, "console-policy-cancelled-ko").await?;
    let status = terminal.sync_status()?;
    assert!(
        status.contains("정책 policies: 3") && !status.contains("event-2099"),
        "{status}"
    );
    Ok(())
}

/// A counter (`palpal`, the headless terminal) on the server's API.
struct Terminal {
    db: String,
    api: String,
}

impl Terminal {
    /// Added with `palpal-central terminal add`, then `palpal provision`.
    fn provision(&self, central_db: &str) -> Result<()> {
        let added = central(&[
            "terminal",
            "add",
            "--db",
            central_db,
            "--site",
            "성북구 보건소",
            "--role",
            "counter",
        ])?;
        let code = added
            .lines()
            .find_map(|l| l.strip_prefix("code: "))
            .context("no enrollment code printed")?;
        palpal(&[
            "provision",
            "--db",
            &self.db,
            "--server",
            &self.api,
            "--code",
            code,
        ])?;
        Ok(())
    }

    /// `palpal sync`, then what `palpal status` says.
    fn sync_status(&self) -> Result<String> {
        palpal(&["sync", "--db", &self.db])?;
        palpal(&["status", "--db", &self.db])
    }
}

fn palpal(args: &[&str]) -> Result<String> {
    let out = Command::new(debug_binary("palpal"))
        .args(args)
        .output()
        .context("running palpal (cargo build -p palpal --bins)")?;
    if !out.status.success() {
        bail!("palpal {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

async fn console_flow(
    c: &Client,
    console: &str,
    db: &str,
    dir: &std::path::Path,
    terminal: &Terminal,
) -> Result<()> {
    let added = central(&[
        "operator",
        "add",
        "--db",
        db,
        "--name",
        "김관리",
        "--role",
        "admin",
    ])?;
    let code = added
        .lines()
        .find_map(|l| l.strip_prefix("code: "))
        .context("no setup code printed")?
        .to_owned();

    // Not signed in: the start page sends to sign-in.
    c.goto(&format!("{console}/")).await?;
    text_of(c, "#name").await?;
    both_languages(c, &format!("{console}/console/login"), "login").await?;
    both_languages(c, &format!("{console}/console/setup"), "setup").await?;

    set_up(c, console, "김관리", &code).await?;
    let done = text_of(c, ".notice.ok").await?;
    assert_eq!(done, "비밀번호를 설정했습니다. 이제 로그인하세요.");
    keep_screenshot(c, "console-setup-done-ko").await?;

    sign_in(c, console, "김관리", PASSWORD).await?;
    assert_eq!(text_of(c, "h1").await?, "오늘");
    assert!(text_of(c, ".who").await?.contains("김관리"));
    both_languages(c, &format!("{console}/console/"), "today").await?;
    both_languages(c, &format!("{console}/console/audit"), "audit").await?;
    both_languages(
        c,
        &format!("{console}/console/reconciliation"),
        "reconciliation",
    )
    .await?;
    both_languages(c, &format!("{console}/console/operators"), "operators").await?;

    // An operator added in the console; the code is shown once.
    type_into(c, "#name", "박조회").await?;
    c.find(Locator::Css("#role option[value=viewer]"))
        .await?
        .click()
        .await?;
    submit(c, "form.stack button[type=submit]").await?;
    let new_code = text_of(c, "p.code").await?;
    assert_eq!(new_code.len(), 19, "{new_code}");
    keep_screenshot(c, "console-operator-added-ko").await?;

    // Sign out (a form with the session's token).
    submit(c, "header form button").await?;
    assert_eq!(text_of(c, ".notice.ok").await?, "로그아웃했습니다.");

    // The new operator sets up, then mistypes five times: the account is locked.
    set_up(c, console, "박조회", &new_code).await?;
    text_of(c, ".notice.ok").await?;
    for _ in 0..4 {
        sign_in(c, console, "박조회", "틀린 비밀번호입니다 정말로").await?;
        assert_eq!(
            text_of(c, ".notice.error").await?,
            "이름 또는 비밀번호가 맞지 않습니다. 다시 입력해 주세요."
        );
    }
    keep_screenshot(c, "console-wrong-password-ko").await?;
    sign_in(c, console, "박조회", "틀린 비밀번호입니다 정말로").await?;
    let locked = text_of(c, ".notice.error").await?;
    assert!(locked.contains("15분 동안 잠겼습니다"), "{locked}");
    sign_in(c, console, "박조회", PASSWORD).await?;
    assert!(text_of(c, ".notice.error").await?.contains("잠겼습니다"));
    keep_screenshot(c, "console-locked-ko").await?;

    // The administrator sees the lock in the audit log, filtered.
    sign_in(c, console, "김관리", PASSWORD).await?;
    c.goto(&format!("{console}/console/audit?action=account_locked"))
        .await?;
    let row = text_of(c, "tbody tr").await?;
    assert!(row.contains("계정 잠김") && row.contains("박조회"), "{row}");
    keep_screenshot(c, "console-audit-locked-ko").await?;
    terminal.provision(db)?;
    policies_flow(c, console, dir, terminal).await?;
    submit(c, "header form button").await?;
    text_of(c, ".notice.ok").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_console() -> Result<()> {
    if !enabled("e2e_console") {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("central.sqlite");
    let db = db.to_str().context("a UTF-8 path")?;
    // The database made before the server starts (operator add), as an operator would.
    central(&["operator", "list", "--db", db])?;
    let (_server, api, console) = serve(db)?;
    let terminal = dir.path().join("counter.sqlite");
    let terminal = Terminal {
        db: terminal.to_str().context("a UTF-8 path")?.to_owned(),
        api,
    };
    let (_driver, c) = browser().await?;
    let outcome = console_flow(&c, &console, db, dir.path(), &terminal).await;
    let _ = c.close().await;
    outcome
}
