//! End-to-end: the operator console of the real `palpal-central serve --console-listen` in
//! Debian's Chromium through chromedriver, as an operator uses it: setup with the code
//! `palpal-central operator add` printed, sign-in, each page in Korean and in English
//! (photographed into `target/screenshots/console-*.png`, each checked by axe-core), an
//! operator added in the console, sign-out, and the lockout after failed logins; a terminal
//! provisioned in the console and enrolled with what its QR code holds (read from the
//! screenshot by `zbarimg`), its pull's figures in the terminals' table, another revoked;
//! a member looked up (masked) and their watch unpaired; a policy file uploaded, refused
//! with its line, previewed, published (a counter's `palpal sync` then shows it) and
//! cancelled.

use std::io::BufRead as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use fantoccini::{Client, ClientBuilder, Locator};

use crate::e2e::{
    click, debug_binary, enabled, keep_screenshot, text_of, type_into, wait_text, workspace_root,
};

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

/// `serve` with the console on a free loopback port, signing member cards with the key in
/// `card_key`; the server, the console's address and the terminals'.
fn serve(db: &str, card_key: &str) -> Result<(Running, String, String)> {
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
            "--card-key",
            card_key,
        ])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting palpal-central serve")?;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let running = Running(child);
    let mut terminals = String::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(url) = line.strip_prefix("listening on ") {
            url.clone_into(&mut terminals);
        }
        if let Some(url) = line.strip_prefix("console on ") {
            let origin = url.strip_suffix("/console/").unwrap_or(url);
            return Ok((running, origin.to_owned(), terminals));
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
    let join = if url.contains('?') { '&' } else { '?' };
    c.goto(&format!("{url}{join}lang=en")).await?;
    keep_screenshot(c, &format!("console-{name}-en")).await?;
    c.goto(&format!("{url}{join}lang=ko")).await?;
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

/// The QR codes `zbarimg` reads in the screenshot kept as `name`.
fn qr_codes_in(name: &str) -> Result<Vec<String>> {
    let path = workspace_root()
        .join("target")
        .join("screenshots")
        .join(format!("{name}.png"));
    let out = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&path)
        .output()
        .context("running zbarimg (Debian package zbar-tools)")?;
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .map(str::to_owned)
        .collect())
}

/// A terminal of the tests: its label and key.
struct Terminal {
    id: String,
    key: ed25519_dalek::SigningKey,
}

/// Enrolls a terminal as its setup would with a scanned offer.
async fn enroll(
    http: &reqwest::Client,
    offer: &sync_protocol::enrollment::EnrollmentOffer,
) -> Result<Terminal> {
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let server = offer
        .server
        .as_deref()
        .context("the offer names the server")?;
    let body = serde_json::json!({
        "code": offer.code,
        "public_key": sync_protocol::signing::encode_public_key(&key.verifying_key()),
        "name": "성북구 보건소 1번 키오스크",
    });
    let answer = http
        .post(format!("{server}/v1/terminals/enroll"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body)?)
        .send()
        .await?;
    let status = answer.status();
    let answer: serde_json::Value = serde_json::from_str(&answer.text().await?)?;
    if !status.is_success() {
        bail!("enrollment refused: {status} {answer}");
    }
    let id = answer["terminal_id"].as_str().context("no terminal id")?;
    Ok(Terminal {
        id: id.to_owned(),
        key,
    })
}

/// A signed `POST` of `body` to `path` as `terminal`; the answer's JSON.
async fn signed_post(
    http: &reqwest::Client,
    server: &str,
    terminal: &Terminal,
    path: &str,
    body: &serde_json::Value,
    nonce: &str,
) -> Result<serde_json::Value> {
    let body = serde_json::to_vec(body)?;
    let headers = sync_protocol::signing::sign(
        &terminal.key,
        "POST",
        path,
        &terminal.id,
        chrono::Utc::now().timestamp(),
        nonce,
        &body,
    );
    let mut request = http
        .post(format!("{server}{path}"))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers.pairs() {
        request = request.header(name, value);
    }
    let answer = request.send().await?;
    let status = answer.status();
    let json: serde_json::Value = serde_json::from_str(&answer.text().await?)?;
    if !status.is_success() {
        bail!("{path} refused: {status} {json}");
    }
    Ok(json)
}

/// A kiosk's request for card `serial` of PP-00000001 with the PIN 802417.
fn card_request(serial: u16, salt: [u8; 8]) -> Result<serde_json::Value> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let cost = redemption_token::MIN_ISSUE_PIN_COST;
    let check = redemption_token::card_pin_check(
        "802417",
        cost,
        salt,
        redemption_token::MemberNo(1),
        serial,
    )
    .map_err(|e| anyhow::anyhow!("the card's PIN check: {e:?}"))?;
    Ok(
        serde_json::json!({ "member_number": "PP-00000001", "serial": serial,
                           "pin_cost": cost, "salt": hex(&salt), "pin_tag": hex(&check.tag) }),
    )
}

/// The Terminals and Members pages, as an operator uses them.
async fn terminals_and_members(c: &Client, console: &str, db: &str, server: &str) -> Result<()> {
    // Another site's counter, waiting for enrollment, and one with a hostile name.
    central(&[
        "terminal",
        "add",
        "--db",
        db,
        "--site",
        "종로 약국",
        "--role",
        "counter",
    ])?;
    central(&[
        "terminal",
        "add",
        "--db",
        db,
        "--site",
        "<script>alert(1)</script>",
        "--role",
        "counter",
    ])?;
    c.goto(&format!("{console}/console/terminals")).await?;
    type_into(c, "#site", "성북구 보건소").await?;
    c.find(Locator::Css("#role option[value=kiosk]"))
        .await?
        .click()
        .await?;
    click(c, "form.stack button[type=submit]").await?;
    assert!(text_of(c, ".notice.ok")
        .await?
        .contains("단말기를 추가했습니다"));
    let code = text_of(c, "p.code").await?;
    c.execute(
        "document.querySelector('figure.qr')?.scrollIntoView({block: 'center'});",
        vec![],
    )
    .await?;
    keep_screenshot(c, "console-terminal-provisioned-ko").await?;
    let scanned = qr_codes_in("console-terminal-provisioned-ko")?;
    let offer = scanned
        .iter()
        .find_map(|text| sync_protocol::enrollment::EnrollmentOffer::parse(text))
        .with_context(|| format!("no enrollment offer in the QR codes read: {scanned:?}"))?;
    assert_eq!(
        (offer.code.as_str(), offer.server.as_deref()),
        (code.as_str(), Some(server))
    );

    // The kiosk enrolls with what it scanned, signs a member up with their watch, and pulls,
    // telling how it is doing.
    let verifier = std::sync::Arc::new(terminal_sync::tls::PinnedKey::new(None));
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(terminal_sync::tls::client_config(verifier)?)
        .timeout(Duration::from_secs(30))
        .build()?;
    let kiosk = enroll(&http, &offer).await?;
    let operations = serde_json::json!({ "operations": [
        { "op_id": "e2e-e-1", "kind": "enrollment",
          "payload": { "name": "김영수", "birth_date": "1950-04-01", "phone": "010-2468-1357" } },
        { "op_id": "e2e-w-1", "kind": "watch_pairing",
          "payload": { "serial": "PW-0001", "enrollment_op_id": "e2e-e-1" } },
    ]});
    let synced = signed_post(
        &http,
        server,
        &kiosk,
        "/v1/sync",
        &operations,
        "e2e-console-nonce-0001",
    )
    .await?;
    assert_eq!(
        synced["results"][1]["member_number"], "PP-00000001",
        "{synced}"
    );
    // The member chooses a PIN; the kiosk has card 1 signed.
    let card = card_request(1, [1; 8])?;
    signed_post(
        &http,
        server,
        &kiosk,
        "/v1/cards",
        &card,
        "e2e-console-nonce-0003",
    )
    .await?;
    let report = serde_json::json!({ "report": {
        "app_version": "0.5.0", "waiting": 3, "oldest_waiting_s": 5_000, "clock_offset_s": 2 } });
    signed_post(
        &http,
        server,
        &kiosk,
        "/v1/pull",
        &report,
        "e2e-console-nonce-0002",
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        c.goto(&format!("{console}/console/terminals")).await?;
        if text_of(c, "table.terminals").await?.contains("0.5.0") {
            break;
        }
        if Instant::now() > deadline {
            bail!("the kiosk's report never reached the terminals' table");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let table = text_of(c, "table.terminals").await?;
    assert!(table.contains("작업이 1시간 넘게 밀림"), "{table}");
    assert!(
        table.contains("<script>alert(1)</script>"),
        "shown as text: {table}"
    );
    both_languages(c, &format!("{console}/console/terminals"), "terminals").await?;

    // The counter that never enrolled is revoked, after a confirmation.
    click(c, "a[href='/console/terminals/T-000001/revoke']").await?;
    assert_eq!(text_of(c, "h1").await?, "확인해 주세요");
    keep_screenshot(c, "console-terminal-revoke-ko").await?;
    click(c, "button.danger").await?;
    assert_eq!(
        text_of(c, ".notice.ok").await?,
        "단말기를 사용 중지했습니다. 다음 요청부터 거절됩니다."
    );
    c.goto(&format!("{console}/console/terminals?state=revoked"))
        .await?;
    assert!(text_of(c, "table.terminals").await?.contains("종로 약국"));

    // Members: a malformed number, then the member, masked; the lost watch unpaired.
    both_languages(c, &format!("{console}/console/members"), "members").await?;
    type_into(c, "#number", "PP-12").await?;
    click(c, "main form button[type=submit]").await?;
    assert_eq!(
        text_of(c, ".notice.error").await?,
        "회원 번호는 PP-00000001 형식입니다. 다시 입력해 주세요."
    );
    keep_screenshot(c, "console-member-malformed-ko").await?;
    c.goto(&format!("{console}/console/members")).await?;
    type_into(c, "#number", "PP-00000001").await?;
    click(c, "main form button[type=submit]").await?;
    let facts = text_of(c, "table.facts").await?;
    assert!(
        facts.contains("김*수") && facts.contains("010-****-1357"),
        "{facts}"
    );
    assert!(!facts.contains("김영수"));
    both_languages(
        c,
        &format!("{console}/console/members?number=PP-00000001"),
        "member",
    )
    .await?;

    // The card is lost: replaced, after a confirmation; the next kiosk visit signs card 2.
    click(c, "a[href$='/cards/1/replace']").await?;
    keep_screenshot(c, "console-card-replace-ko").await?;
    click(c, "button.danger").await?;
    assert!(text_of(c, ".notice.ok")
        .await?
        .contains("새 카드를 허용했습니다"));
    assert!(text_of(c, "p.pending").await?.ends_with(": 2"));
    keep_screenshot(c, "console-card-replaced-ko").await?;
    let card = card_request(2, [2; 8])?;
    let signed = signed_post(
        &http,
        server,
        &kiosk,
        "/v1/cards",
        &card,
        "e2e-console-nonce-0004",
    )
    .await?;
    assert_eq!(signed["serial"], 2, "{signed}");
    c.goto(&format!("{console}/console/members?number=PP-00000001"))
        .await?;
    let tables = c.find_all(Locator::Css("main table")).await?;
    let cards = tables.get(1).context("the cards' table")?;
    let text = cards.text().await?;
    assert!(
        text.contains("1 중지됨") && text.contains("2 사용 중"),
        "{text}"
    );
    c.execute(
        "arguments[0].scrollIntoView({block: 'start'});",
        vec![serde_json::to_value(cards)?],
    )
    .await?;
    keep_screenshot(c, "console-member-cards-ko").await?;
    click(c, "a[href$='/watches/PW-0001/unpair']").await?;
    keep_screenshot(c, "console-watch-unpair-ko").await?;
    click(c, "button.danger").await?;
    assert!(text_of(c, ".notice.ok")
        .await?
        .contains("시계 연결을 해제했습니다"));
    keep_screenshot(c, "console-watch-unpaired-ko").await?;

    // Each change is in the audit log.
    c.goto(&format!("{console}/console/audit")).await?;
    let log = text_of(c, "table").await?;
    for action in [
        "단말기 추가",
        "단말기 사용 중지",
        "회원 카드 재발급",
        "시계 연결 해제",
    ] {
        assert!(log.contains(action), "{action} not in {log}");
    }
    assert!(
        !log.contains(&code),
        "the enrollment code is not in the audit log"
    );
    both_languages(c, &format!("{console}/console/audit"), "audit-changes").await?;
    Ok(())
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
    terminal: &CliTerminal,
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

    // The policy in force corrected (an administrator's re-rating): its figures previewed,
    // nothing changed until applied with them; then the counter pulls the corrected text.
    let corrected = include_str!("../../../policies/seoul-2025-12.toml").replace(
        "goal_steps = 8000\npoints = 100",
        "goal_steps = 8000\npoints = 120",
    );
    assert!(corrected.contains("points = 120"));
    let file = dir.join("seoul-2025-12-corrected.toml");
    std::fs::write(&file, corrected)?;
    c.goto(&format!("{console}/console/policies")).await?;
    c.find(Locator::Css("#rerate-file"))
        .await?
        .send_keys(file.to_str().context("a UTF-8 path")?)
        .await?;
    submit(
        c,
        "form[action='/console/policies/rerate'] button[value=preview]",
    )
    .await?;
    let caption = text_of(c, "#rerate-figures-caption").await?;
    assert!(caption.contains("seoul-2025-12"), "{caption}");
    text_of(c, "#rerate-changed").await?;
    c.execute(
        "document.querySelector('#rerate').scrollIntoView();",
        vec![],
    )
    .await?;
    keep_screenshot(c, "console-rerate-preview-ko").await?;
    submit(c, "button[value=apply]").await?;
    assert_eq!(
        text_of(c, ".notice.ok").await?,
        "정책을 고치고 회원 포인트를 다시 계산했습니다. 단말기는 다음 동기화 때 받습니다."
    );
    both_languages(
        c,
        &format!("{console}/console/audit?action=policy_rerated"),
        "audit-rerated",
    )
    .await?;
    let status = terminal.sync_status()?;
    assert!(status.contains("정책 policies: 3"), "{status}");
    Ok(())
}

/// A counter (`palpal`, the headless terminal) on the server's API.
struct CliTerminal {
    db: String,
    api: String,
}

impl CliTerminal {
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
    terminals: &str,
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
    both_languages(c, &format!("{console}/console/schedule"), "schedule").await?;
    both_languages(c, &format!("{console}/console/operators"), "operators").await?;

    // An operator added in the console; the code is shown once.
    type_into(c, "#name", "박조회").await?;
    c.find(Locator::Css("#role option[value=viewer]"))
        .await?
        .click()
        .await?;
    click(c, "form.stack button[type=submit]").await?;
    let new_code = text_of(c, "p.code").await?;
    assert_eq!(new_code.len(), 19, "{new_code}");
    keep_screenshot(c, "console-operator-added-ko").await?;

    // Sign out (a form with the session's token).
    click(c, "header form button").await?;
    // The page before has a notice of its own: wait for the new one.
    wait_text(c, ".notice.ok", "로그아웃했습니다.").await?;

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
    terminals_and_members(c, console, db, terminals).await?;
    let counter = CliTerminal {
        db: dir
            .join("counter.sqlite")
            .to_str()
            .context("a UTF-8 path")?
            .to_owned(),
        api: terminals.to_owned(),
    };
    counter.provision(db)?;
    policies_flow(c, console, dir, &counter).await?;
    click(c, "header form button").await?;
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
    let card_key = dir.path().join("card.key");
    let card_key = card_key.to_str().context("a UTF-8 path")?;
    central(&["key", "add", "--db", db, "--secret-out", card_key])?;
    let (_server, console, terminals) = serve(db, card_key)?;
    let (_driver, c) = browser().await?;
    let outcome = console_flow(&c, &console, db, dir.path(), &terminals).await;
    let _ = c.close().await;
    outcome
}
