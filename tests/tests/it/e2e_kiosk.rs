//! End-to-end at the sign-up kiosk: the real app through WebDriver, a senior registered step
//! by step (identity on the number pad, consent, contact, the card with its QR code decoded
//! from the screen, printed as ESC/POS and as a page), in Korean and English, and each refusal
//! with the exact message shown. Screenshots of every step land in `target/screenshots/`.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fantoccini::{Client, Locator};
use terminal_store::{Store, TerminalIdentity};

use crate::e2e::{
    computed_px, enabled, keep_screenshot as screenshot, session, type_into, wait_text,
    workspace_root, Driver, Terminal,
};

/// Keeps a screenshot with what matters on this screen scrolled to the middle of the window.
async fn keep_screenshot(c: &Client, name: &str) -> Result<()> {
    c.execute(
        "const first = ['#ticket-no', '#error-message', '#idle-question', \
         '#card-page:not([hidden])', '#card', '#admitted', '.consent', '#guardian-phone']\
         .map((css) => document.querySelector(css)).find((el) => el);\
         if (first) first.scrollIntoView({block: 'center'}); else window.scrollTo(0, 0);",
        vec![],
    )
    .await?;
    screenshot(c, name).await?;
    assert_contrast(c, name).await
}

/// The barrier-free rules' contrast, measured on what the web view rendered: every piece of
/// text at least 4.5:1 against the background it stands on, body text (not headings, buttons
/// or the title bar) at least 7:1. Disabled controls are exempt, as WCAG exempts them.
const CONTRAST_JS: &str = r#"
const parse = (s) => { const m = s.match(/rgba?\(([^)]+)\)/); if (!m) return null;
  const p = m[1].split(',').map((x) => parseFloat(x)); return { rgb: p.slice(0, 3), a: p.length > 3 ? p[3] : 1 }; };
const lum = (rgb) => { const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
const backdrop = (el) => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
  if (c && c.a > 0.99) return c.rgb; } return [255, 255, 255]; };
const out = []; let checked = 0, lowest = 21;
for (const el of document.querySelectorAll('body *')) {
  const st = getComputedStyle(el);
  if (st.display === 'none' || st.visibility === 'hidden' || el.closest('[hidden]')) continue;
  if (!Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
  if (el.closest('button:disabled, input:disabled')) continue;
  const fg = parse(st.color); if (!fg) continue;
  const a = lum(fg.rgb), b = lum(backdrop(el));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const body = !el.closest('h1, h2, h3, button, header, [role=status], .status-bar');
  const need = body ? 7 : 4.5;
  checked += 1; lowest = Math.min(lowest, ratio);
  if (ratio < need) out.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} "${el.textContent.trim().slice(0, 24)}" ${ratio.toFixed(2)}:1 < ${need}:1`);
}
return { checked, lowest, low: out };
"#;

async fn assert_contrast(c: &Client, screen: &str) -> Result<()> {
    let found = c.execute(CONTRAST_JS, vec![]).await?;
    let low: Vec<String> = serde_json::from_value(found["low"].clone())?;
    let checked = found["checked"].as_u64().unwrap_or(0);
    eprintln!(
        "{screen}: contrast of {checked} texts, lowest {:.2}:1",
        found["lowest"].as_f64().unwrap_or(0.0)
    );
    if checked == 0 {
        bail!("{screen}: no text found to measure");
    }
    if !low.is_empty() {
        bail!("{screen}: text below the contrast rules: {low:#?}");
    }
    Ok(())
}

/// Scrolls the element to the middle of the window (clear of any bar fixed at an edge), then
/// clicks it as a finger would.
pub(crate) async fn click(c: &Client, css: &str) -> Result<()> {
    let el = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .with_context(|| format!("waiting for {css}"))?;
    c.execute(
        "arguments[0].scrollIntoView({block: 'center', inline: 'center'});",
        vec![serde_json::to_value(&el)?],
    )
    .await?;
    el.click()
        .await
        .with_context(|| format!("clicking {css}"))?;
    Ok(())
}

/// Waits for an element to be there.
pub(crate) async fn wait_for(c: &Client, css: &str) -> Result<()> {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .with_context(|| format!("waiting for {css}"))?;
    Ok(())
}

/// From a filled first screen: next, agree to everything, next, confirm the sign-up.
pub(crate) async fn consent_contact_and_enroll(c: &Client) -> Result<()> {
    click(c, "#next-identity").await?;
    wait_for(c, "#agree-all").await?;
    click(c, "#agree-all").await?;
    click(c, "#next-consent").await?;
    wait_for(c, "#enroll").await?;
    click(c, "#enroll").await?;
    Ok(())
}

/// Presses digits on the on-screen number pad.
pub(crate) async fn keypad(c: &Client, digits: &str) -> Result<()> {
    for d in digits.chars() {
        click(c, &format!(".key[data-key='{d}']")).await?;
    }
    Ok(())
}

async fn value_of(c: &Client, css: &str) -> Result<String> {
    Ok(c.find(Locator::Css(css))
        .await?
        .prop("value")
        .await?
        .unwrap_or_default())
}

/// The QR codes zbarimg finds in a screenshot of the whole window.
async fn decode_qr(c: &Client, name: &str) -> Result<Vec<String>> {
    c.execute(
        "document.querySelector('#card-qr')?.scrollIntoView({block: 'center'});",
        vec![],
    )
    .await?;
    // Painted first, as every kept screenshot is.
    screenshot(c, name).await?;
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

/// The card's QR code as the screen shows it: its `data-content`, checked against what
/// `zbarimg` reads from a screenshot named `name`.
async fn qr_on_screen(c: &Client, name: &str) -> Result<String> {
    let content = c
        .find(Locator::Css("#card-qr"))
        .await?
        .attr("data-content")
        .await?
        .context("the QR's content")?;
    // As a scanner tries again: the screen may still be scrolling the code into view.
    let mut decoded = decode_qr(c, name).await?;
    for _ in 0..10 {
        if !decoded.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        decoded = decode_qr(c, name).await?;
    }
    assert_eq!(
        decoded,
        std::slice::from_ref(&content),
        "the QR code on screen holds {content}"
    );
    Ok(content)
}

/// Types the card PIN twice on the number pad.
pub(crate) async fn enter_pin(c: &Client, pin: &str) -> Result<()> {
    click(c, "#card-pin").await?;
    keypad(c, pin).await?;
    click(c, "#card-pin-again").await?;
    keypad(c, pin).await
}

/// A kiosk whose sign-up day (2025-12-03) is for odd birth years, with `places` leased, and
/// whose central server is down (nothing listens at its address): registrations inside the
/// lease are still confirmed. Speech goes to a script that logs what it was asked to say.
fn kiosk(places: u32, extra: &str) -> Result<(Terminal, std::path::PathBuf)> {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    kiosk_at(places, extra, &format!("http://127.0.0.1:{dead}"))
}

/// [`kiosk`], provisioned for the central server at `server_url`.
pub(crate) fn kiosk_at(
    places: u32,
    extra: &str,
    server_url: &str,
) -> Result<(Terminal, std::path::PathBuf)> {
    let probe = Terminal::new("")?;
    let dir = probe.dir.path().to_owned();
    let spoken = dir.join("spoken.log");
    let speech = dir.join("say.sh");
    std::fs::write(
        &speech,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n",
            spoken.display()
        ),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&speech, std::fs::Permissions::from_mode(0o755))?;
    }
    let config = format!(
        r#"
role = "kiosk"
site = "jongno-cc"
site_name = "종로구 보건소"
fixed_now = "2025-12-03T10:15:00+09:00"
[kiosk]
printer = "printer.bin"
speech = "{}"
{extra}
"#,
        speech.display()
    );
    std::fs::write(probe.dir.path().join("terminal.toml"), config)?;
    let store = Store::open(&probe.database())?;
    store.save_identity(&TerminalIdentity {
        terminal_id: "T-000001".into(),
        site: "jongno-cc".into(),
        role: "kiosk".into(),
        name: "jongno kiosk".into(),
        server_url: server_url.to_owned(),
        server_key: None,
        secret_key: [7; 32],
        provisioned_at: "2025-12-01T09:00:00+09:00".parse()?,
    })?;
    drop(store);
    let db = rusqlite::Connection::open(probe.database())?;
    db.execute(
        "INSERT INTO pull_state(only_row, admission) VALUES (1, ?1)",
        [r#"{"days":{"2025-12-03":{"rule":"odd_birth_years"},"2025-12-05":{"rule":"open"}}}"#],
    )?;
    db.execute(
        "INSERT INTO quota_leases VALUES ('L-1', 'jongno-cc', '2025-12-03', ?1, 0)",
        [places],
    )?;
    Ok((probe, spoken))
}

async fn register_senior_flow(driver: &Driver) -> Result<()> {
    let (terminal, spoken) = kiosk(3, "")?;
    let c = session(driver, &terminal).await?;
    let result = async {
        wait_text(&c, "h1", "새 회원 가입").await?;
        wait_text(&c, "#steps [aria-current=step]", "본인 확인").await?;
        keep_screenshot(&c, "kiosk-step1-identity-ko").await?;
        type_into(&c, "#name", "김영수").await?;
        click(&c, "#birth-date").await?;
        keypad(&c, "19510301").await?;
        click(&c, "#phone").await?;
        keypad(&c, "01012345678").await?;
        assert_eq!(value_of(&c, "#birth-date").await?, "19510301");
        assert_eq!(value_of(&c, "#phone").await?, "01012345678");
        click(&c, "#next-identity").await?;
        wait_text(&c, "#steps [aria-current=step]", "동의").await?;
        keep_screenshot(&c, "kiosk-step2-consent-ko").await?;
        // Everything zooms to 200%, the consent text included.
        let title = computed_px(&c, ".consent-title", "font-size").await?;
        click(&c, "#zoom").await?;
        click(&c, "#zoom").await?;
        wait_text(&c, "#zoom", "글자 크게 200%").await?;
        assert_eq!(
            computed_px(&c, ".consent-title", "font-size").await?,
            2.0 * title
        );
        keep_screenshot(&c, "kiosk-step2-consent-zoom-200-ko").await?;
        click(&c, "#zoom").await?;
        wait_text(&c, "#zoom", "글자 크게 100%").await?;
        click(&c, "#consent-personal-data-yes").await?;
        click(&c, "#consent-health-data-yes").await?;
        click(&c, "#consent-sms-news-yes").await?;
        click(&c, "#consent-research-no").await?;
        click(&c, "#next-consent").await?;
        wait_text(&c, "#steps [aria-current=step]", "연락처").await?;
        type_into(&c, "#guardian-phone", "010-5555-6666").await?;
        keep_screenshot(&c, "kiosk-step3-contact-ko").await?;
        click(&c, "#enroll").await?;
        // Confirmed inside the lease, with the server down.
        wait_text(&c, "#receipt-no", "접수번호 0001").await?;
        wait_text(
            &c,
            "#admitted",
            "오늘 이곳의 1번째 가입으로 확정되었습니다.",
        )
        .await?;
        wait_text(&c, "#today-list li", "0001 · 김*수 · 만 74세").await?;
        keep_screenshot(&c, "kiosk-step4-confirmed-ko").await?;
        click(&c, "#to-card").await?;
        wait_for(&c, "#card-qr svg").await?;
        wait_text(
            &c,
            "#card-number",
            "회원번호는 서버 확인 후 정해집니다. QR 코드로 조회됩니다.",
        )
        .await?;
        wait_text(&c, "#card-name", "김*수").await?;
        wait_text(&c, "#card-title", "팔팔 가입 접수증").await?;
        // The server is down: the PIN is asked, and the card is promised for later while the
        // sign-up stands with its receipt.
        enter_pin(&c, "802417").await?;
        keep_screenshot(&c, "kiosk-step5-pin-ko").await?;
        click(&c, "#make-card").await?;
        wait_text(
            &c,
            "#pin-error",
            "가입은 완료되었습니다. 서버에 연결되지 않아 회원 카드는 아직 만들 수 없습니다. \
             접수증을 받아 두시고, 인터넷이 연결되면 이 키오스크에서 카드를 받으세요.",
        )
        .await?;
        assert_eq!(value_of(&c, "#card-pin").await?, "", "the PIN is not kept");
        let content = qr_on_screen(&c, "kiosk-step5-card-ko").await?;
        click(&c, "#print-card").await?;
        wait_text(&c, "#printed", "영수증 프린터로 보냈습니다.").await?;
        click(&c, "#print-page").await?;
        wait_for(&c, "#card-page:not([hidden])").await?;
        keep_screenshot(&c, "kiosk-step5-print-page-ko").await?;

        // English: the same card, then the next person through every step.
        click(&c, "#lang-toggle").await?;
        wait_text(&c, "h1", "New member sign-up").await?;
        wait_text(&c, "#steps [aria-current=step]", "Member card").await?;
        keep_screenshot(&c, "kiosk-step5-card-en").await?;
        click(&c, "#new-applicant").await?;
        wait_text(&c, "#steps [aria-current=step]", "Identity").await?;
        assert_eq!(
            value_of(&c, "#name").await?,
            "",
            "the last person's data is gone"
        );
        keep_screenshot(&c, "kiosk-step1-identity-en").await?;
        type_into(&c, "#name", "Lee Sunja").await?;
        type_into(&c, "#birth-date", "19530707").await?;
        type_into(&c, "#phone", "01077778888").await?;
        click(&c, "#residency-works").await?;
        wait_text(
            &c,
            "#proof-hint",
            "Show the clerk your proof of work or study (or staff or student card).",
        )
        .await?;
        click(&c, "#next-identity").await?;
        wait_text(&c, "#steps [aria-current=step]", "Consent").await?;
        keep_screenshot(&c, "kiosk-step2-consent-en").await?;
        click(&c, "#agree-all").await?;
        click(&c, "#next-consent").await?;
        wait_text(&c, "#steps [aria-current=step]", "Contact").await?;
        keep_screenshot(&c, "kiosk-step3-contact-en").await?;
        click(&c, "#enroll").await?;
        wait_text(&c, "#receipt-no", "Receipt no. 0002").await?;
        wait_text(&c, "#admitted", "Confirmed: sign-up no. 2 here today.").await?;
        keep_screenshot(&c, "kiosk-step4-confirmed-en").await?;
        click(&c, "#to-card").await?;
        wait_for(&c, "#card-qr svg").await?;
        let content2 = qr_on_screen(&c, "kiosk-step5-card-en-2").await?;
        click(&c, "#print-page").await?;
        wait_for(&c, "#card-page:not([hidden])").await?;
        keep_screenshot(&c, "kiosk-step5-print-page-en").await?;
        // The accessibility check itself: a picture without a text alternative is caught.
        c.execute(
            "const i = document.createElement('img'); i.id = 'probe-no-alt'; \
             i.src = 'data:image/gif;base64,R0lGODlhAQABAAAAACw='; document.body.append(i);",
            vec![],
        )
        .await?;
        let caught = crate::e2e::assert_accessible(&c, "probe").await;
        c.execute("document.getElementById('probe-no-alt').remove();", vec![])
            .await?;
        let caught = caught.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(caught.contains("image-alt"), "{caught}");
        Ok::<_, anyhow::Error>((content, content2))
    }
    .await;
    c.close().await?;
    let (op1, op2) = result?;

    // On disk: two sign-ups, masked, sealed, queued (the server is down), two places taken.
    let store = Store::open(&terminal.database())?;
    let list = store.enrollments_on("2025-12-03".parse()?)?;
    let names: Vec<&str> = list.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["L*******a", "김*수"]);
    assert_eq!(list[1].op_id, op1);
    assert_eq!(list[0].op_id, op2);
    let personal = store.personal_data(&op1)?.context("sealed personal data")?;
    assert_eq!(personal.name, "김영수");
    assert_eq!(personal.guardian_phone.as_deref(), Some("01055556666"));
    assert_eq!(
        store
            .quota_lease("jongno-cc", "2025-12-03".parse()?)?
            .context("lease")?
            .used,
        2
    );
    let pending = store.outbox_pending()?;
    assert_eq!(pending.len(), 2, "nothing reached the server: {pending:?}");
    assert!(pending.iter().all(|p| p.kind == "enrollment"));
    // The receipt printer got ESC/POS with the QR data of the first card.
    let printed = std::fs::read(terminal.dir.path().join("printer.bin"))?;
    assert!(printed.starts_with(b"\x1b@\x1c&"));
    assert!(printed.windows(op1.len()).any(|w| w == op1.as_bytes()));
    // Each step was spoken, in the language on screen.
    let said = std::fs::read_to_string(spoken)?;
    assert!(
        said.lines()
            // `--` before the text: it is never read as an option of the speech program.
            .any(|l| l.starts_with("-v ko -a 100 -s 140 -- 이름, 생년월일")),
        "{said}"
    );
    assert!(
        said.lines()
            .any(|l| l.starts_with("-v en") && l.contains("Choose a 6-digit card PIN")),
        "{said}"
    );
    Ok(())
}

/// Runs `palpal-central` (or `palpal`) with `args` and returns what it printed.
fn run(binary: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(crate::e2e::debug_binary(binary))
        .args(args)
        .output()
        .with_context(|| format!("running {binary} (cargo build --workspace --bins)"))?;
    if !out.status.success() {
        bail!(
            "{binary} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The real `palpal-central`, killed when dropped.
/// A kiosk with a printer, and the real `palpal-central` signing member cards (sign-up open
/// today at `jongno-cc`, five places), as the card flows start.
struct KioskAndCentral {
    terminal: Terminal,
    central_db: String,
    /// The card key's secret, as `key add` wrote it.
    secret: std::path::PathBuf,
    url: String,
    _central: Central,
}

impl KioskAndCentral {
    fn start() -> Result<KioskAndCentral> {
        use std::io::BufRead as _;
        let terminal = Terminal::new(
            "role = \"kiosk\"\nsite = \"jongno-cc\"\nsite_name = \"종로구 보건소\"\n\n[kiosk]\nprinter = \"printer.bin\"\n",
        )?;
        let central_db = terminal.dir.path().join("central.sqlite");
        let central_db = central_db.to_str().context("a UTF-8 path")?.to_owned();
        let secret = terminal.dir.path().join("card-key.hex");
        let db = central_db.as_str();
        run(
            "palpal-central",
            &[
                "key",
                "add",
                "--db",
                db,
                "--secret-out",
                secret.to_str().context("path")?,
            ],
        )?;
        let today = (chrono::Utc::now() + chrono::Duration::hours(9))
            .date_naive()
            .to_string();
        run(
            "palpal-central",
            &[
                "schedule", "set", "--db", db, "--day", &today, "--rule", "open",
            ],
        )?;
        run(
            "palpal-central",
            &[
                "quota",
                "set",
                "--db",
                db,
                "--day",
                &today,
                "--site",
                "jongno-cc",
                "--places",
                "5",
            ],
        )?;
        let mut child = Command::new(crate::e2e::debug_binary("palpal-central"))
            .args(["serve", "--db", db, "--listen", "127.0.0.1:0", "--card-key"])
            .arg(&secret)
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("the server's stdout")?)
            .read_line(&mut line)?;
        let central = Central(child);
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("the server did not start: {line:?}"))?
            .to_owned();
        Ok(KioskAndCentral {
            terminal,
            central_db,
            secret,
            url,
            _central: central,
        })
    }

    /// Provisions the terminal database `db` as a kiosk of `jongno-cc` on this server.
    fn provision(&self, db: &std::path::Path) -> Result<()> {
        let added = run(
            "palpal-central",
            &[
                "terminal",
                "add",
                "--db",
                &self.central_db,
                "--site",
                "jongno-cc",
                "--role",
                "kiosk",
            ],
        )?;
        let code = added
            .lines()
            .find_map(|l| l.strip_prefix("code: "))
            .context("no enrollment code printed")?;
        run(
            "palpal",
            &[
                "provision",
                "--db",
                db.to_str().context("path")?,
                "--server",
                &self.url,
                "--code",
                code,
            ],
        )?;
        Ok(())
    }
}

struct Central(std::process::Child);

impl Drop for Central {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Online, with the real `palpal-central` (a card-signing key, today open, places for the
/// site) and the kiosk provisioned by the real `palpal provision`: a senior signs up, chooses
/// a card PIN on the keypad, and gets the member card the server signed. The QR code read
/// from the screen is a token a counter takes with that PIN only.
async fn card_online_flow(driver: &Driver) -> Result<()> {
    let kiosk = KioskAndCentral::start()?;
    let (terminal, secret) = (&kiosk.terminal, &kiosk.secret);
    let db = terminal.database();
    kiosk.provision(&db)?;
    let today = (chrono::Utc::now() + chrono::Duration::hours(9))
        .date_naive()
        .to_string();

    let c = session(driver, terminal).await?;
    let result = async {
        wait_text(&c, "h1", "새 회원 가입").await?;
        type_into(&c, "#name", "박정숙").await?;
        click(&c, "#birth-date").await?;
        keypad(&c, "19480215").await?;
        click(&c, "#phone").await?;
        keypad(&c, "01022223333").await?;
        click(&c, "#next-identity").await?;
        wait_text(&c, "#steps [aria-current=step]", "동의").await?;
        click(&c, "#agree-all").await?;
        click(&c, "#next-consent").await?;
        wait_text(&c, "#steps [aria-current=step]", "연락처").await?;
        click(&c, "#enroll").await?;
        wait_text(&c, "#receipt-no", "접수번호 0001").await?;
        click(&c, "#to-card").await?;
        wait_text(&c, "#card-title", "팔팔 가입 접수증").await?;
        enter_pin(&c, "802417").await?;
        click(&c, "#make-card").await?;
        wait_text(&c, "#card-title", "팔팔 회원 카드").await?;
        wait_text(&c, "#card-number", "회원번호 PP-00000001").await?;
        let content = qr_on_screen(&c, "kiosk-step5-signed-card-ko").await?;
        click(&c, "#print-page").await?;
        wait_for(&c, "#card-page:not([hidden])").await?;
        keep_screenshot(&c, "kiosk-step5-signed-card-page-ko").await?;
        click(&c, "#lang-toggle").await?;
        wait_text(&c, "#card-title", "Palpal member card").await?;
        keep_screenshot(&c, "kiosk-step5-signed-card-en").await?;
        // Printed on the receipt printer: the card is the member's now, and a second print is
        // refused (the kiosk no longer has it).
        click(&c, "#print-card").await?;
        wait_text(&c, "#printed", "Sent to the receipt printer.").await?;
        click(&c, "#print-card").await?;
        wait_text(
            &c,
            "#print-status [role=alert]",
            "The member card was already printed and erased from this kiosk. If it is lost, ask the health center for a new one.",
        )
        .await?;
        assert_eq!(
            crate::e2e::error_code(&c, "#print-status #error-code").await?,
            "card_printed"
        );
        keep_screenshot(&c, "kiosk-step5-card-printed-en").await?;
        Ok::<_, anyhow::Error>(content)
    }
    .await;
    c.close().await?;
    let token = result?;

    // What a counter does with it: the server's published key and the member's PIN.
    let seed = std::fs::read_to_string(secret)?;
    let issuer = redemption_token::IssuerKey::from_seed_hex(1, seed.trim())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = chrono::Utc::now() + chrono::Duration::minutes(1);
    let keys = redemption_token::KeySet::new(&[issuer.published(now - chrono::Duration::days(1))])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let none = redemption_token::Revocations::default();
    let claims = redemption_token::verify(&token, &keys, &none, Some("802417"), now)
        .map_err(|r| anyhow::anyhow!("the card was refused: {}", r.code()))?;
    assert_eq!(claims.member.to_string(), "PP-00000001");
    let wrong = redemption_token::verify(&token, &keys, &none, Some("802418"), now);
    assert_eq!(wrong.map_err(|r| r.code()).err(), Some("wrong_pin"));
    // The printer got the card; the kiosk kept the PIN's check for a retry until the card was
    // printed, never the PIN, and erased the card's token and PIN check once it was.
    let printed = std::fs::read(terminal.dir.path().join("printer.bin"))?;
    assert!(printed.windows(token.len()).any(|w| w == token.as_bytes()));
    let store = Store::open(&db)?;
    let op = &store.enrollments_on(today.parse()?)?[0].op_id;
    assert!(store.card_check(op)?.is_none());
    let card = store.enrollment_card(op)?.context("the sign-up")?;
    assert!(card.card_printed && card.card_token.is_none());
    drop(store);
    let raw = rusqlite::Connection::open(&db)?;
    raw.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    drop(raw);
    let file = std::fs::read(&db)?;
    assert!(
        !file.windows(token.len()).any(|w| w == token.as_bytes()),
        "the card's token is gone from the kiosk's file"
    );
    assert!(
        !file.windows(6).any(|w| w == b"802417"),
        "the PIN is stored nowhere"
    );
    Ok(())
}

/// Waits for the refusal shown and returns (code, message).
async fn refusal(c: &Client, code: &str, message: &str) -> Result<()> {
    wait_text(c, "#error-message", message).await?;
    let got = c
        .find(Locator::Css("#error-code"))
        .await?
        .prop("textContent")
        .await?;
    assert_eq!(got.as_deref(), Some(code));
    Ok(())
}

async fn fill(c: &Client, name: &str, birth: &str, phone: &str) -> Result<()> {
    type_into(c, "#name", name).await?;
    type_into(c, "#birth-date", birth).await?;
    type_into(c, "#phone", phone).await?;
    Ok(())
}

async fn refusals_flow(driver: &Driver) -> Result<()> {
    let (terminal, _) = kiosk(1, "")?;
    let c = session(driver, &terminal).await?;
    let result = async {
        wait_text(&c, "h1", "새 회원 가입").await?;
        // Under 19.
        fill(&c, "이하늘", "20071204", "01011112222").await?;
        click(&c, "#next-identity").await?;
        refusal(
            &c,
            "under_age",
            "만 19세 이상부터 가입할 수 있습니다 (현재 만 17세). 만 19세가 되는 날 이후에 다시 오세요.",
        )
        .await?;
        keep_screenshot(&c, "kiosk-refused-under-age-ko").await?;
        // Outside Seoul without proof.
        fill(&c, "박서연", "19610101", "01022223333").await?;
        click(&c, "#residency-outside").await?;
        click(&c, "#next-identity").await?;
        refusal(
            &c,
            "outside_seoul",
            "서울에 살거나, 서울에서 일하거나 공부하는 분만 가입할 수 있습니다. 재직·재학 증명서가 있으면 직원에게 보여 주세요.",
        )
        .await?;
        keep_screenshot(&c, "kiosk-refused-outside-seoul-ko").await?;
        // Not today (an even birth year): told the day, and a numbered ticket for it.
        click(&c, "#residency-lives").await?;
        fill(&c, "최민수", "19500505", "01033334444").await?;
        click(&c, "#next-identity").await?;
        refusal(
            &c,
            "not_today",
            "오늘은 해당 출생연도(나이)의 가입일이 아닙니다. 2025년 12월 5일(금)에 다시 오세요. 번호표를 받으실 수 있습니다.",
        )
        .await?;
        click(&c, "#ticket").await?;
        wait_text(
            &c,
            "#ticket-no",
            "번호표 1번: 2025년 12월 5일(금) 이곳에서 가입하실 수 있습니다. 번호표와 신분증을 가져오세요.",
        )
        .await?;
        keep_screenshot(&c, "kiosk-refused-not-today-ko").await?;
        // No consent: the required items, named.
        fill(&c, "김영수", "19510301", "01012345678").await?;
        click(&c, "#next-identity").await?;
        wait_for(&c, "#next-consent").await?;
        click(&c, "#consent-sms-news-yes").await?;
        click(&c, "#next-consent").await?;
        refusal(
            &c,
            "consent_missing",
            "필수 동의 항목에 동의해야 가입할 수 있습니다: 개인정보 수집·이용 (이름, 생년월일, 휴대전화), 건강정보(걸음·심박) 수집. 내용을 듣거나 읽은 뒤 '동의'를 눌러 주세요.",
        )
        .await?;
        keep_screenshot(&c, "kiosk-refused-no-consent-ko").await?;
        // Agreed: registered, the one place taken.
        click(&c, "#agree-all").await?;
        click(&c, "#next-consent").await?;
        wait_for(&c, "#enroll").await?;
        click(&c, "#enroll").await?;
        wait_text(&c, "#receipt-no", "접수번호 0001").await?;
        // Already a member: the same person again.
        click(&c, "#new-applicant").await?;
        fill(&c, "김 영수", "1951-03-01", "010-1234-5678").await?;
        click(&c, "#next-identity").await?;
        refusal(
            &c,
            "already_member",
            "이미 가입된 분입니다 (2025년 12월 3일 접수번호 0001). 다시 가입하지 않아도 됩니다. 회원 카드를 잃어버렸다면 직원에게 말씀해 주세요.",
        )
        .await?;
        keep_screenshot(&c, "kiosk-refused-already-member-ko").await?;
        // Quota used up: the lease's one place is taken.
        fill(&c, "이영자", "19530303", "01044445555").await?;
        click(&c, "#next-identity").await?;
        refusal(
            &c,
            "quota_used_up",
            "오늘 이곳의 가입 인원이 모두 찼습니다. 2025년 12월 5일(금)에 다시 오세요. 번호표를 받으실 수 있습니다.",
        )
        .await?;
        wait_for(&c, "#ticket").await?;
        keep_screenshot(&c, "kiosk-refused-quota-ko").await?;
        // The same refusals in English.
        click(&c, "#lang-toggle").await?;
        wait_text(&c, "h1", "New member sign-up").await?;
        click(&c, "#next-identity").await?;
        refusal(
            &c,
            "quota_used_up",
            "Today's places at this site are all taken. Please come back on 2025-12-05 (Friday); you can take a numbered ticket for that day.",
        )
        .await?;
        keep_screenshot(&c, "kiosk-refused-quota-en").await?;
        fill(&c, "Kim Minho", "19500505", "01066667777").await?;
        click(&c, "#next-identity").await?;
        refusal(
            &c,
            "not_today",
            "Today is not the sign-up day for your birth year (age). Please come back on 2025-12-05 (Friday); you can take a numbered ticket for that day.",
        )
        .await?;
        keep_screenshot(&c, "kiosk-refused-not-today-en").await?;
        fill(&c, "Kim Minho", "20071204", "01066667777").await?;
        click(&c, "#next-identity").await?;
        refusal(
            &c,
            "under_age",
            "Members must be 19 or older (now 17). Please come back on or after the 19th birthday.",
        )
        .await?;
        keep_screenshot(&c, "kiosk-refused-under-age-en").await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    c.close().await?;
    result?;
    let store = Store::open(&terminal.database())?;
    assert_eq!(store.enrollments_on("2025-12-03".parse()?)?.len(), 1);
    assert_eq!(store.outbox_pending()?.len(), 1, "refusals record nothing");
    Ok(())
}

/// Inactivity: asked first, cleared only after the second wait (short waits configured).
async fn idle_flow(driver: &Driver) -> Result<()> {
    // Ten seconds between the question and the clearing: a loaded machine takes seconds to
    // check the dialog and keep its screenshot, and the clearing must not come first.
    let (terminal, _) = kiosk(1, "warn_after_s = 2\nclear_after_s = 10")?;
    let c = session(driver, &terminal).await?;
    let result = async {
        wait_text(&c, "h1", "새 회원 가입").await?;
        type_into(&c, "#name", "김영수").await?;
        wait_for(&c, "#idle-dialog:not([hidden])").await?;
        wait_text(&c, "#idle-question", "계속하시겠습니까?").await?;
        assert_eq!(
            value_of(&c, "#name").await?,
            "김영수",
            "asked before clearing"
        );
        keep_screenshot(&c, "kiosk-idle-question-ko").await?;
        // A real modal dialog: the rest of the page is inert, and Escape answers "continue".
        let modal = c
            .execute(
                "const d = document.getElementById('idle-dialog'); \
                 return [d.matches(':modal'), document.activeElement.id];",
                vec![],
            )
            .await?;
        assert_eq!(modal, serde_json::json!([true, "idle-continue"]), "{modal}");
        c.active_element().await?.send_keys("\u{E00C}").await?;
        wait_for(&c, "#idle-dialog[hidden]").await?;
        assert_eq!(value_of(&c, "#name").await?, "김영수");
        // Asked again, and this time answered with the button.
        wait_for(&c, "#idle-dialog:not([hidden])").await?;
        click(&c, "#idle-continue").await?;
        assert_eq!(value_of(&c, "#name").await?, "김영수");
        // Left alone again: asked again, then cleared. The field is read anew each time: the
        // clearing replaces it, and a read that meets the old one mid-change is tried again.
        let deadline = Instant::now() + Duration::from_secs(40);
        while !matches!(value_of(&c, "#name").await.as_deref(), Ok("")) {
            if Instant::now() > deadline {
                bail!("the screen was never cleared");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        wait_text(&c, "#steps [aria-current=step]", "본인 확인").await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    c.close().await?;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_sign_up_through_webdriver() -> Result<()> {
    if !enabled("kiosk_sign_up_through_webdriver") {
        return Ok(());
    }
    let driver = Driver::start()?;
    register_senior_flow(&driver)
        .await
        .context("a senior registers")?;
    card_online_flow(&driver)
        .await
        .context("a member card signed by the server")?;
    refusals_flow(&driver).await.context("refusals")?;
    idle_flow(&driver).await.context("inactivity")?;
    drop(driver);
    Ok(())
}

/// A lost card replaced at a kiosk other than the one that signed the member up: the real
/// `palpal-central` signing cards, the member signed up and synced by another kiosk, the
/// operator's replacement as the console stores it (`card_replacements`: card 2 allowed).
/// A stranger is refused; the member is found, picks a PIN on the keypad, and the card the
/// server signed is shown, read from the screen with `zbarimg` as a counter's scanner would,
/// taken by a counter with that PIN only, and printed.
async fn replacement_flow(driver: &Driver) -> Result<()> {
    let kiosk = KioskAndCentral::start()?;
    let (terminal, central_db, secret) =
        (&kiosk.terminal, kiosk.central_db.as_str(), &kiosk.secret);
    let dir = terminal.dir.path();
    let provision = |db: &std::path::Path| kiosk.provision(db);
    // The member signed up at another kiosk, which synced.
    let other = dir.join("other-kiosk.sqlite");
    provision(&other)?;
    {
        let mut store = Store::open(&other)?;
        let enrollment = kiosk_core::Enrollment {
            name: "박정숙".into(),
            birth_date: "1948-02-15".parse()?,
            phone: "01022223333".into(),
            residency: kiosk_core::Residency::Lives,
            age: 77,
        };
        let now = chrono::Utc::now().with_timezone(&points_core::KST);
        store.record_enrollment("op-lost-card", "jongno-cc", &enrollment, now)?;
    }
    run("palpal", &["sync", "--db", other.to_str().context("path")?])?;
    // The operator replaced the lost card 1: card 2 allowed.
    {
        let db = rusqlite::Connection::open(central_db)?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        let at = chrono::Utc::now().to_rfc3339();
        db.execute(
            "INSERT INTO card_replacements (member_id, serial, allowed_at) VALUES (1, 2, ?1)",
            [&at],
        )?;
    }
    provision(&terminal.database())?;

    let c = session(driver, terminal).await?;
    let result = async {
        wait_text(&c, "h1", "새 회원 가입").await?;
        click(&c, "#replace-card").await?;
        wait_text(&c, "#replace-heading", "잃어버린 카드 재발급").await?;
        keep_screenshot(&c, "kiosk-replace-find-ko").await?;
        // Someone the server does not know.
        type_into(&c, "#replace-name", "박정숙").await?;
        click(&c, "#replace-birth").await?;
        keypad(&c, "19480216").await?;
        click(&c, "#replace-phone").await?;
        keypad(&c, "01022223333").await?;
        click(&c, "#replace-find").await?;
        wait_for(&c, "#replace-result #error-code").await?;
        assert_eq!(
            crate::e2e::error_code(&c, "#replace-result #error-code").await?,
            "not_a_member"
        );
        keep_screenshot(&c, "kiosk-replace-not-a-member-ko").await?;
        // The member, as at sign-up.
        click(&c, "#replace-birth").await?;
        click(&c, "[data-key=back]").await?;
        keypad(&c, "5").await?;
        click(&c, "#replace-find").await?;
        wait_text(&c, "#replace-found", "박*숙 님 (PP-00000001): 새 카드 2번").await?;
        enter_pin(&c, "246810").await?;
        keep_screenshot(&c, "kiosk-replace-pin-ko").await?;
        click(&c, "#replace-make").await?;
        wait_text(&c, "#card-title", "팔팔 회원 카드").await?;
        wait_text(&c, "#card-number", "회원번호 PP-00000001").await?;
        let token = qr_on_screen(&c, "kiosk-replace-card-ko").await?;
        click(&c, "#print-card").await?;
        wait_text(&c, "#printed", "영수증 프린터로 보냈습니다.").await?;
        Ok::<_, anyhow::Error>(token)
    }
    .await;
    c.close().await?;
    let token = result?;

    // What a counter does with it: the server's published key and the member's new PIN.
    let seed = std::fs::read_to_string(secret)?;
    let issuer = redemption_token::IssuerKey::from_seed_hex(1, seed.trim())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = chrono::Utc::now() + chrono::Duration::minutes(1);
    let keys = redemption_token::KeySet::new(&[issuer.published(now - chrono::Duration::days(1))])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let none = redemption_token::Revocations::default();
    let claims = redemption_token::verify(&token, &keys, &none, Some("246810"), now)
        .map_err(|r| anyhow::anyhow!("the card was refused: {}", r.code()))?;
    assert_eq!(claims.member.to_string(), "PP-00000001");
    assert_eq!(claims.card_serial, Some(2));
    assert!(redemption_token::verify(&token, &keys, &none, Some("135790"), now).is_err());
    let printed = std::fs::read(dir.join("printer.bin"))?;
    assert!(
        printed.windows(token.len()).any(|w| w == token.as_bytes()),
        "the printed card holds the token"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_replaces_a_lost_card() -> Result<()> {
    if !enabled("kiosk_replaces_a_lost_card") {
        return Ok(());
    }
    let driver = Driver::start()?;
    replacement_flow(&driver)
        .await
        .context("a lost card replaced")?;
    drop(driver);
    Ok(())
}
