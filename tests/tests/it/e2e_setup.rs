//! End-to-end setup of a terminal not provisioned, in the real app through WebKitWebDriver and
//! the real `palpal-central`: the operator adds the terminal (`palpal-central terminal add`),
//! the console's enrollment QR code is read by a keyboard-wedge scanner into the setup screen,
//! a text that is not an offer and an unknown code are refused with their messages and nothing
//! provisioned, and the right offer provisions the kiosk, which then opens on its sign-up
//! screen and syncs.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fantoccini::{Client, Locator};
use sync_protocol::enrollment::EnrollmentOffer;
use terminal_store::Store;

use crate::e2e::{
    click, debug_binary, enabled, error_code, keep_screenshot, session, text_of, type_into,
    wait_text, Driver, Terminal,
};
use crate::e2e_counter::wedge_scan;

const KIOSK: &str = r#"
setup_screen = true
role = "kiosk"
site = "jongno-cc"
site_name = "종로구 보건소"
"#;

/// A `palpal-central serve` process; killed when dropped.
struct Central(Child);

impl Drop for Central {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn central(args: &[&str]) -> Result<String> {
    let out = Command::new(debug_binary("palpal-central"))
        .args(args)
        .output()
        .context("running palpal-central (cargo build --workspace --bins)")?;
    if !out.status.success() {
        bail!(
            "palpal-central {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Waits until the element at `css` has the attribute `name` equal to `want`.
async fn wait_attr(c: &Client, css: &str, name: &str, want: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = match c.find(Locator::Css(css)).await {
            Ok(el) => el.attr(name).await?.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if got == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{css} [{name}]: expected {want:?}, found {got:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn setup_flow(driver: &Driver) -> Result<()> {
    let terminal = Terminal::new(KIOSK)?;
    let dir = terminal.dir.path();
    let central_db = dir.join("central.sqlite");
    let central_db = central_db.to_str().context("a UTF-8 path")?;
    let mut child = Command::new(debug_binary("palpal-central"))
        .args(["serve", "--db", central_db, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("the server's stdout")?)
        .read_line(&mut line)?;
    let _central = Central(child);
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("the server did not start: {line:?}"))?
        .to_owned();
    let added = central(&[
        "terminal",
        "add",
        "--db",
        central_db,
        "--site",
        "jongno-cc",
        "--role",
        "kiosk",
    ])?;
    let code = added
        .lines()
        .find_map(|l| l.strip_prefix("code: "))
        .context("no enrollment code printed")?;
    let offer = EnrollmentOffer::new(code, Some(&url), None).to_text();
    let unknown = EnrollmentOffer::new("0000-0000-0000-0000", Some(&url), None).to_text();
    let provisioned =
        || -> Result<bool> { Ok(Store::open(&terminal.database())?.identity()?.is_some()) };

    let c = session(driver, &terminal).await?;
    let result = async {
        wait_text(&c, "h1", "단말기 설정").await?;
        keep_screenshot(&c, "setup-ko").await?;

        // Typed text that is not an offer: refused, the text kept, nothing provisioned.
        type_into(&c, "#setup-offer", "PP1:ABCDEF").await?;
        click(&c, "#setup-read").await?;
        wait_attr(&c, "#setup-body", "data-state", "refused").await?;
        assert_eq!(
            error_code(&c, "#setup-note #error-code").await?,
            "not_an_offer"
        );
        let said = text_of(&c, "#setup-note [role=alert]").await?;
        assert!(said.contains("등록 QR 코드의 내용이 아닙니다"), "{said}");
        keep_screenshot(&c, "setup-refused-ko").await?;

        // An offer with a code the server does not know, read by the scanner: what it will do
        // is shown, and the server refuses it.
        wedge_scan(&c, "#setup-offer", &unknown).await?;
        wait_attr(&c, "#setup-body", "data-state", "confirm").await?;
        assert_eq!(text_of(&c, "#setup-server").await?, url);
        click(&c, "#setup-provision").await?;
        wait_attr(&c, "#setup-body", "data-state", "refused").await?;
        assert_eq!(error_code(&c, "#setup-note #error-code").await?, "bad_code");
        assert!(!provisioned()?, "nothing is provisioned by a refused code");

        // The console's offer, read by the scanner from anywhere on the screen.
        click(&c, "#setup-cancel").await?;
        wedge_scan(&c, "#setup-offer", &offer).await?;
        wait_attr(&c, "#setup-body", "data-state", "confirm").await?;
        assert_eq!(text_of(&c, "#setup-server").await?, url);
        assert_eq!(
            text_of(&c, "#setup-code").await?,
            format!("…{}", &code[code.len() - 4..])
        );
        keep_screenshot(&c, "setup-confirm-ko").await?;
        click(&c, "#setup-provision").await?;
        wait_attr(&c, "#setup-body", "data-state", "done").await?;
        assert_eq!(text_of(&c, "#setup-role").await?, "가입 키오스크");
        assert_eq!(text_of(&c, "#setup-site").await?, "jongno-cc");
        keep_screenshot(&c, "setup-done-ko").await?;
        click(&c, "#setup-continue").await?;
        wait_text(&c, "h1", "새 회원 가입").await?;
        // The status bar: provisioned, and the background sync reached the server.
        wait_attr(&c, "#sync-text", "data-state", "online").await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    c.close().await?;
    result?;
    let identity = Store::open(&terminal.database())?
        .identity()?
        .context("the kiosk is provisioned")?;
    assert_eq!(
        (identity.site.as_str(), identity.role.as_str()),
        ("jongno-cc", "kiosk")
    );
    assert_eq!(identity.server_url, url);

    // Started again, a provisioned kiosk opens on its sign-up screen, never the setup.
    let c = session(driver, &terminal).await?;
    let again = wait_text(&c, "h1", "새 회원 가입").await;
    c.close().await?;
    again
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_setup_provisions_a_kiosk_from_the_consoles_enrollment_code() -> Result<()> {
    if !enabled("e2e_setup_provisions_a_kiosk_from_the_consoles_enrollment_code") {
        return Ok(());
    }
    let driver = Driver::start()?;
    setup_flow(&driver)
        .await
        .context("setup by the enrollment code")
}
