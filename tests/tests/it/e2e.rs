//! End-to-end: the real `palpal-app` binary, driven through tauri-driver (WebDriver) as a clerk
//! would use it, with its SQLite database on disk checked afterwards.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fantoccini::{Client, ClientBuilder, Locator};
use terminal_store::Store;

use crate::watch_bench::WatchBench;

/// The slow suite runs only when asked: `PALPAL_E2E=1`.
pub(crate) fn enabled(test: &str) -> bool {
    let on = std::env::var("PALPAL_E2E").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("{test}: skipped; set PALPAL_E2E=1 (make test does) to drive the real app");
    }
    on
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// A binary of the workspace's debug build (`cargo build --workspace --bins`; make test does).
pub(crate) fn debug_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    target.join("debug").join(name)
}

/// The app binary under test: `PALPAL_APP`, or the debug build.
fn app_binary() -> PathBuf {
    std::env::var_os("PALPAL_APP").map_or_else(|| debug_binary("palpal-app"), PathBuf::from)
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A tauri-driver process, killed when dropped.
pub(crate) struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub(crate) fn start() -> Result<Driver> {
        Driver::start_with_env(&[])
    }

    /// Starts tauri-driver with `env` added to its environment, which reaches the app.
    pub(crate) fn start_with_env(env: &[(&str, &str)]) -> Result<Driver> {
        let port = free_port()?;
        let native = free_port()?;
        let log_dir = workspace_root().join("target");
        std::fs::create_dir_all(&log_dir)?;
        let log = std::fs::File::create(log_dir.join("tauri-driver.log"))?;
        // Its own process group, so that WebKitWebDriver, which it starts, goes with it, and
        // no pipe of the test runner stays open after the test.
        let child = Command::new("tauri-driver")
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .envs(env.iter().copied())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting tauri-driver (cargo install tauri-driver; make test installs it)")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("tauri-driver did not listen on port {port} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Driver { child, port })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: tauri-driver and the WebKitWebDriver it started. The group id is
        // tauri-driver's own pid (it was started with `process_group(0)`), never 0 or 1.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            if pid > 1 {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One terminal under test: its configuration and database in a temporary folder.
pub(crate) struct Terminal {
    pub(crate) dir: tempfile::TempDir,
    config: PathBuf,
}

impl Terminal {
    /// A terminal configured with `config_toml`. Unless it says otherwise, one not
    /// provisioned opens on its usual screen rather than the setup (`setup_screen = false`),
    /// as the flows it tests work offline.
    pub(crate) fn new(config_toml: &str) -> Result<Terminal> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("terminal.toml");
        let config_toml = if config_toml.contains("setup_screen") {
            config_toml.to_owned()
        } else {
            format!("setup_screen = false\n{config_toml}")
        };
        std::fs::write(&config, config_toml)?;
        Ok(Terminal { dir, config })
    }

    pub(crate) fn database(&self) -> PathBuf {
        self.dir.path().join("terminal.sqlite")
    }
}

pub(crate) async fn session(driver: &Driver, terminal: &Terminal) -> Result<Client> {
    let app = app_binary();
    if !app.exists() {
        bail!(
            "{} is missing: build it first (cargo build -p src-tauri; make test does)",
            app.display()
        );
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "tauri:options".to_owned(),
        serde_json::json!({
            "application": app,
            "args": ["--config", terminal.config],
        }),
    );
    Ok(ClientBuilder::native()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await?)
}

/// Waits for an element and returns its text.
pub(crate) async fn text_of(c: &Client, css: &str) -> Result<String> {
    let el = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .with_context(|| format!("waiting for {css}"))?;
    Ok(el.text().await?)
}

/// Waits until the element's text is `want` (it may be re-rendered meanwhile).
/// The machine-readable code of the refusal shown (the text of the `#error-code` at `css`).
pub(crate) async fn error_code(c: &Client, css: &str) -> Result<String> {
    Ok(c.find(Locator::Css(css))
        .await?
        .prop("textContent")
        .await?
        .unwrap_or_default())
}

pub(crate) async fn wait_text(c: &Client, css: &str, want: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = match c.find(Locator::Css(css)).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if got == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{css}: expected {want:?}, found {got:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn type_into(c: &Client, css: &str, text: &str) -> Result<()> {
    let el = c.find(Locator::Css(css)).await?;
    el.clear().await?;
    el.send_keys(text).await?;
    Ok(())
}

/// Clicks `css` after scrolling it to the middle of the window, clear of bars fixed at an edge.
pub(crate) async fn click(c: &Client, css: &str) -> Result<()> {
    let el = c.find(Locator::Css(css)).await?;
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

/// Keeps a screenshot of the screen under `target/screenshots/` for people to look at.
pub(crate) async fn keep_screenshot(c: &Client, name: &str) -> Result<()> {
    // Let the web view paint what the DOM already shows: two animation frames, then a moment
    // (the first screen of a fresh window was once captured blank).
    let _ = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
            Vec::new(),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let png = c.screenshot().await?;
    let dir = workspace_root().join("target").join("screenshots");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{name}.png")), png)?;
    assert_accessible(c, name).await
}

/// The WCAG 2.2 A and AA rules axe-core checks (`ui/node_modules/axe-core`, a dev dependency
/// of the UI), run in the web view on the screen as it is: any violation fails, listed with
/// the elements it was found on.
pub(crate) async fn assert_accessible(c: &Client, screen: &str) -> Result<()> {
    let loaded = c
        .execute("return typeof window.axe !== 'undefined';", vec![])
        .await?
        .as_bool()
        .unwrap_or(false);
    if !loaded {
        let path = workspace_root()
            .join("ui")
            .join("node_modules")
            .join("axe-core")
            .join("axe.min.js");
        let source = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (cd ui && npm ci installs it)", path.display()))?;
        c.execute(&format!("{source}\nreturn true;"), vec![])
            .await?;
    }
    let found = c
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               window.axe.run(document, {
                 runOnly: { type: "tag",
                            values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] },
                 resultTypes: ["violations"],
               }).then((r) => done({
                   passed: r.passes.length,
                   violations: r.violations.map((v) =>
                     `${v.id} (${v.impact}): ${v.help} at ` +
                     v.nodes.slice(0, 4).map((n) => n.target.join(" ")).join(", ")),
                 }))
                 .catch((e) => done({ passed: 0, violations: [`axe-core did not run: ${e}`] }));"#,
            vec![],
        )
        .await?;
    let violations: Vec<String> = serde_json::from_value(found["violations"].clone())?;
    let passed = found["passed"].as_u64().unwrap_or(0);
    if passed == 0 && violations.is_empty() {
        bail!("{screen}: axe-core checked no rule at all: {found}");
    }
    if !violations.is_empty() {
        bail!(
            "{screen}: {} accessibility violation(s):\n{}",
            violations.len(),
            violations.join("\n")
        );
    }
    Ok(())
}

const KIOSK: &str = r#"
role = "kiosk"
site = "jongno-cc"
site_name = "종로구 보건소"
fixed_now = "2025-12-03T10:15:00+09:00"
"#;

async fn kiosk_flow(driver: &Driver) -> Result<()> {
    let terminal = Terminal::new(KIOSK)?;
    let c = session(driver, &terminal).await?;
    let result = async {
        assert_eq!(text_of(&c, "h1").await?, "새 회원 가입");
        assert_eq!(text_of(&c, "#site").await?, "종로구 보건소 · 가입 키오스크");
        wait_text(&c, "#sync-queued", "보낼 등록 0건").await?;
        keep_screenshot(&c, "kiosk-ko").await?;

        // A 75-year-old who lives in Seoul: confirmed and queued.
        type_into(&c, "#name", "김영희").await?;
        type_into(&c, "#birth-date", "19500301").await?;
        type_into(&c, "#phone", "010-1234-5678").await?;
        crate::e2e_kiosk::consent_contact_and_enroll(&c).await?;
        wait_text(&c, "#receipt-no", "접수번호 0001").await?;
        wait_text(&c, "#sync-queued", "보낼 등록 1건").await?;
        wait_text(&c, "#today-list li", "0001 · 김*희 · 만 75세").await?;
        keep_screenshot(&c, "kiosk-enrolled").await?;

        // An 18-year-old: refused with the reason and what to do, nothing recorded.
        click(&c, "#new-applicant").await?;
        type_into(&c, "#name", "이하늘").await?;
        type_into(&c, "#birth-date", "20071204").await?;
        click(&c, "#next-identity").await?;
        wait_text(&c, "#error-code", "").await.ok();
        let alert = text_of(&c, "[role=alert]").await?;
        assert_eq!(
            alert,
            "만 19세 이상부터 가입할 수 있습니다 (현재 만 17세). 만 19세가 되는 날 이후에 다시 오세요."
        );
        assert_eq!(error_code(&c, "#error-code").await?, "under_age");
        assert_eq!(
            c.find(Locator::Css("#name")).await?.prop("value").await?.as_deref(),
            Some("이하늘"),
            "what was typed stays"
        );

        // A birth date that is not a date: refused, told how to type it.
        type_into(&c, "#birth-date", "1950-13-40").await?;
        click(&c, "#next-identity").await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let t = text_of(&c, "[role=alert]").await?;
            if t.contains("1950-13-40") {
                assert_eq!(
                    t,
                    "생년월일 '1950-13-40'을(를) 알아볼 수 없습니다. 19500301처럼 8자리 숫자로 입력하세요."
                );
                break;
            }
            if Instant::now() > deadline {
                bail!("no message for a malformed birth date; last: {t}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // English, through Rust: the refusal comes back in English.
        click(&c, "#lang-toggle").await?;
        wait_text(&c, "h1", "New member sign-up").await?;
        type_into(&c, "#name", "Lee Haneul").await?;
        type_into(&c, "#birth-date", "20071204").await?;
        type_into(&c, "#phone", "01099998888").await?;
        click(&c, "#next-identity").await?;
        wait_text(
            &c,
            "[role=alert]",
            "Members must be 19 or older (now 17). Please come back on or after the 19th birthday.",
        )
        .await?;
        keep_screenshot(&c, "kiosk-en-refused").await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    c.close().await?;
    result?;

    // What the screen said is what is on disk: one enrollment, queued once.
    let store = Store::open(&terminal.database())?;
    let day = "2025-12-03".parse()?;
    let list = store.enrollments_on(day)?;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        list[0].name, "김*희",
        "only the masked name is kept in the clear"
    );
    assert_eq!(store.outbox_queued()?, 1);
    assert_eq!(store.setting("language")?.as_deref(), Some("en"));
    Ok(())
}

/// A 15.6-inch 1280x800 kiosk screen: 3.81 px per mm.
const KIOSK_SIZED: &str = r#"
role = "kiosk"
site = "jongno-cc"
site_name = "종로구 보건소"
fixed_now = "2025-12-03T10:15:00+09:00"

[screen]
diagonal_inches = 15.6
width_px = 1280
height_px = 800
"#;

/// Reads a computed style property (in px) of the first element matching `css`.
pub(crate) async fn computed_px(c: &Client, css: &str, property: &str) -> Result<f64> {
    let v = c
        .execute(
            "const el = document.querySelector(arguments[0]);\
             return el ? parseFloat(getComputedStyle(el).getPropertyValue(arguments[1])) : null;",
            vec![css.into(), property.into()],
        )
        .await?;
    v.as_f64().with_context(|| format!("{css} {property}: {v}"))
}

async fn sized_kiosk_flow(driver: &Driver) -> Result<()> {
    let terminal = Terminal::new(KIOSK_SIZED)?;
    let c = session(driver, &terminal).await?;
    let result = async {
        wait_text(&c, "h1", "새 회원 가입").await?;
        let px_per_mm = (1280f64.powi(2) + 800f64.powi(2)).sqrt() / (15.6 * 25.4);
        // Body text: Hangul glyphs (0.88 em in Noto Sans CJK KR) at least 12 mm high.
        for css in ["label", "#residency-lives", "#today-list li"] {
            let font = computed_px(&c, css, "font-size").await?;
            let glyph_mm = font * 0.88 / px_per_mm;
            assert!(glyph_mm >= 12.0, "{css}: {glyph_mm:.2} mm");
        }
        // Touch targets at least 15 mm high.
        for css in [
            "#next-identity",
            "#clear",
            ".key[data-key='5']",
            "#volume-up",
            "#residency-works",
            "#lang-toggle",
            "#zoom",
        ] {
            let h = computed_px(&c, css, "height").await?;
            assert!(h / px_per_mm >= 15.0, "{css}: {:.1} mm", h / px_per_mm);
        }
        keep_screenshot(&c, "kiosk-sized").await?;
        // Everything zooms to 200%: text and buttons twice the size.
        let label = computed_px(&c, "label", "font-size").await?;
        let button = computed_px(&c, "#next-identity", "height").await?;
        click(&c, "#zoom").await?;
        wait_text(&c, "#zoom", "글자 크게 150%").await?;
        click(&c, "#zoom").await?;
        wait_text(&c, "#zoom", "글자 크게 200%").await?;
        assert_eq!(computed_px(&c, "label", "font-size").await?, 2.0 * label);
        assert!(computed_px(&c, "#next-identity", "height").await? >= 2.0 * button - 1.0);
        keep_screenshot(&c, "kiosk-zoom-200").await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    c.close().await?;
    result
}

async fn broken_config_flow(driver: &Driver) -> Result<()> {
    let terminal = Terminal::new("role = \"atm\"\nsite = \"x\"\n")?;
    let c = session(driver, &terminal).await?;
    let result = async {
        wait_text(&c, "h1", "단말기를 시작하지 못했습니다").await?;
        assert_eq!(error_code(&c, "#error-code").await?, "not_configured");
        let alert = text_of(&c, "[role=alert]").await?;
        assert!(
            alert.starts_with("단말기 설정을 읽지 못했습니다"),
            "{alert}"
        );
        assert!(alert.contains("atm"), "names what is wrong: {alert}");
        Ok::<_, anyhow::Error>(())
    }
    .await;
    c.close().await?;
    result
}

const COUNTER: &str = r#"
role = "counter"
site = "onnuri-pharmacy"
site_name = "온누리약국"
demo = true
fixed_now = "2025-12-03T15:00:00+09:00"
"#;

/// The points of a member's reports as `palpal points` rates them from a CSV file.
fn cli_total(terminal: &Terminal, member_no: &str) -> Result<u64> {
    let store = Store::open(&terminal.database())?;
    let member = store.member(member_no)?.context("demo member")?;
    let mut csv = String::from("reported_at,day,steps\n");
    for r in store.step_reports(member_no)? {
        csv.push_str(&format!(
            "{},{},{}\n",
            r.reported_at.to_rfc3339(),
            r.day,
            r.steps
        ));
    }
    let path = terminal.dir.path().join("reports.csv");
    std::fs::write(&path, csv)?;
    let root = workspace_root();
    let out = Command::new(debug_binary("palpal"))
        .arg("points")
        .args([
            "--policy",
            &root.join("policies/seoul-2025-03.toml").to_string_lossy(),
        ])
        .args([
            "--policy",
            &root.join("policies/seoul-2025-12.toml").to_string_lossy(),
        ])
        .args(["--birth-date", &member.birth_date.to_string()])
        .args(["--reports", &path.to_string_lossy()])
        .output()?;
    if !out.status.success() {
        bail!(
            "palpal points failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8(out.stdout)?;
    let last = stdout.lines().last().context("no output")?;
    let v: serde_json::Value = serde_json::from_str(last)?;
    v["total"].as_u64().context("no total")
}

async fn counter_flow(driver: &Driver) -> Result<()> {
    let terminal = Terminal::new(COUNTER)?;
    let c = session(driver, &terminal).await?;
    let result = async {
        assert_eq!(text_of(&c, "h1").await?, "회원 조회");
        assert_eq!(text_of(&c, "#site").await?, "온누리약국 · 매장 단말기");
        keep_screenshot(&c, "counter-ko").await?;

        // An unknown number: told so, and what to check.
        type_into(&c, "#member-no", "PP-9999").await?;
        click(&c, "#find").await?;
        wait_text(
            &c,
            "[role=alert]",
            "회원번호 'PP-9999'인 회원을 찾지 못했습니다. 회원 카드의 번호를 다시 확인해 주세요.",
        )
        .await?;

        // A demo member, typed in lower case as a clerk might: their week, rated by Rust.
        type_into(&c, "#member-no", "pp-0002").await?;
        c.find(Locator::Css("#member-no"))
            .await?
            .send_keys("\u{E007}")
            .await?; // Enter
        let name = text_of(&c, "#member-name").await?;
        let year = text_of(&c, "#year-points").await?;
        let bars = c.find_all(Locator::Css(".week .day")).await?.len();
        keep_screenshot(&c, "counter-member").await?;
        Ok::<_, anyhow::Error>((name, year, bars))
    }
    .await;
    c.close().await?;
    let (name, year, bars) = result?;

    let store = Store::open(&terminal.database())?;
    let member = store.member("PP-0002")?.context("demo member PP-0002")?;
    assert_eq!(bars, 7);
    assert!(
        name.starts_with(&format!("{} (PP-0002)", member.name)),
        "{name}"
    );
    // The screen's figure is what the command-line rating of the same reports gives.
    let total = cli_total(&terminal, "PP-0002")?;
    assert_eq!(year.replace(',', ""), total.to_string());
    Ok(())
}

/// The simulated watches: two healthy ones at different distances, one out of range.
pub(crate) const WATCHES: &str = r#"
[[watch]]
serial = "PW-0042"
rssi = -45
days = 14
seed = 42
[[watch]]
serial = "PW-0007"
rssi = -62
days = 3
seed = 7
[[watch]]
serial = "PW-0099"
rssi = -70
[watch.faults]
out_of_range = true
"#;

/// A counter on the demo data, on the real clock (the simulated watches keep the real time).
pub(crate) const COUNTER_LIVE: &str = r#"
role = "counter"
site = "onnuri-pharmacy"
site_name = "온누리약국"
demo = true
"#;

const KIOSK_LIVE: &str = r#"
role = "kiosk"
site = "jongno-cc"
site_name = "종로구 보건소"
"#;

/// Waits until `css` matches at least `n` elements and returns their texts, up to 30 s as
/// [`slow_text`]: the watches listed are a Bluetooth scan's, which took over 15 s while the
/// other tests of `make test` ran beside it on two CPUs.
pub(crate) async fn texts_of_all(c: &Client, css: &str, n: usize) -> Result<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let els = c.find_all(Locator::Css(css)).await?;
        if els.len() >= n {
            let mut out = Vec::new();
            for el in els {
                out.push(el.text().await?);
            }
            return Ok(out);
        }
        if Instant::now() > deadline {
            bail!("{css}: expected {n} elements, found {}", els.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the text of `css` up to 30 s (a scan and a connection with retries take seconds).
pub(crate) async fn slow_text(c: &Client, css: &str) -> Result<String> {
    let el = c
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .with_context(|| format!("waiting for {css}"))?;
    Ok(el.text().await?)
}

/// The steps the chart shows per day, for the days up to today.
async fn chart(c: &Client) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for day in c.find_all(Locator::Css("#member .day")).await? {
        let date = day.attr("data-day").await?.unwrap_or_default();
        let steps = day.find(Locator::Css(".steps")).await?.text().await?;
        if steps != "–" {
            out.push((date, steps));
        }
    }
    Ok(out)
}

pub(crate) async fn find_member(c: &Client, member_no: &str) -> Result<()> {
    type_into(c, "#member-no", member_no).await?;
    click(c, "#find").await?;
    wait_for_member(c, member_no).await
}

pub(crate) async fn wait_for_member(c: &Client, member_no: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c
        .find(Locator::Css(&format!("#member[data-member='{member_no}']")))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("member {member_no} not shown");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn counter_watch_flow(driver: &Driver) -> Result<()> {
    let terminal = Terminal::new(COUNTER_LIVE)?;
    let c = session(driver, &terminal).await?;
    let result = async {
        wait_text(&c, "h1", "회원 조회").await?;
        find_member(&c, "PP-0002").await?;
        let before = chart(&c).await?;
        click(&c, "#sync-watch").await?;
        // Nearest first, with the code each watch face shows.
        let listed = texts_of_all(&c, ".watch-choice .code", 3).await?;
        assert_eq!(listed, ["0042", "0007", "0099"]);
        keep_screenshot(&c, "counter-watch-list").await?;

        // A watch seen but out of range: the link's message, word for word.
        click(&c, ".watch-choice[data-code='0099']").await?;
        let alert = slow_text(&c, "#watch-status [role=alert]").await?;
        assert_eq!(
            alert,
            "워치 Palpal-0099에 연결할 수 없습니다. 워치를 단말기에 더 가까이 두고 배터리가 있는지 확인한 뒤 다시 시도해 주세요."
        );
        assert_eq!(error_code(&c, "#error-code").await?, "watch_out_of_range");
        keep_screenshot(&c, "counter-watch-out-of-range").await?;

        // The member's own watch, new at this counter: found by number alone, the member is
        // not proven present, and the watch is not paired.
        click(&c, ".watch-choice[data-code='0042']").await?;
        let alert = slow_text(&c, "#watch-status [role=alert]").await?;
        assert_eq!(
            alert,
            "이 단말기에서 처음 연결하는 워치입니다. 회원의 QR 코드(앱 또는 카드)를 먼저 스캔한 뒤 워치를 다시 연결해 주세요."
        );
        assert_eq!(error_code(&c, "#error-code").await?, "needs_member_token");
        keep_screenshot(&c, "counter-watch-needs-token").await?;

        // The member shows their code; the scanner reads it. Now the watch pairs: 14 days of
        // history, stored, the week redrawn.
        let now = chrono::Utc::now().to_rfc3339();
        let token = crate::e2e_counter::issue_at(&terminal, "PP-00000002", &now, None)?;
        crate::e2e_counter::wedge_scan(&c, "#member-no", &token).await?;
        // The redemption panel shows the scan once the member is shown again with the code.
        text_of(&c, "#scanned-member").await?;
        wait_for_member(&c, "PP-0002").await?;
        click(&c, "#sync-watch").await?;
        texts_of_all(&c, ".watch-choice .code", 3).await?;
        click(&c, ".watch-choice[data-code='0042']").await?;
        let synced = slow_text(&c, "#sync-result").await?;
        assert!(
            synced.starts_with("워치 PW-0042에서 새 기록 686건을 받아 저장했습니다."),
            "{synced}"
        );
        let after = chart(&c).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let queued = loop {
            let q = text_of(&c, "#sync-queued").await?;
            if q != "보낼 거래 0건" || Instant::now() > deadline {
                break q;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        keep_screenshot(&c, "counter-watch-synced").await?;

        // The same watch for another member: refused.
        find_member(&c, "PP-0003").await?;
        click(&c, "#sync-watch").await?;
        texts_of_all(&c, ".watch-choice .code", 3).await?;
        click(&c, ".watch-choice[data-code='0042']").await?;
        let refused = slow_text(&c, "#watch-status [role=alert]").await?;
        assert_eq!(
            refused,
            "이 워치(PW-0042)는 다른 회원에게 등록되어 있습니다. 회원 본인의 워치인지 확인해 주세요. 워치 주인이 바뀌었다면 보건소에서 등록을 옮겨야 합니다."
        );
        keep_screenshot(&c, "counter-watch-paired-elsewhere").await?;
        Ok::<_, anyhow::Error>((synced, before, after, queued, token))
    }
    .await;
    c.close().await?;
    let (synced, before, after, queued, token) = result?;

    // On disk: the watch is the member's, its records are stored, the pairing and the new day
    // totals (step reports) are each queued once for the central server, the pairing first;
    // the chart shows what is on disk.
    let store = Store::open(&terminal.database())?;
    let watch = store.watch("PW-0042")?.context("watch stored")?;
    assert_eq!(
        watch.owner,
        merchant_core::watch_sync::WatchOwner::Member("PP-0002".into())
    );
    assert_eq!(watch.last_seq, Some(14 * 49 - 1));
    let pending = store.outbox_pending()?;
    assert!(pending.len() > 1);
    assert_eq!(pending[0].kind, "watch_pairing");
    let pairing: serde_json::Value = serde_json::from_str(&pending[0].payload)?;
    assert_eq!(pairing["serial"], "PW-0042");
    assert_eq!(pairing["member_number"], "PP-0002");
    // With the code the member showed, the proof the central server asks for.
    assert_eq!(pairing["token"], token.as_str());
    assert!(pairing["paired_at"].as_str().is_some(), "{pairing}");
    let pending = &pending[1..];
    assert!(pending.iter().all(|p| p.kind == "step_report"));
    let reports = pending.len();
    assert!(
        synced.contains(&format!("걸음 보고 {reports}건")),
        "{synced} / {reports}"
    );
    assert_eq!(queued, format!("보낼 거래 {}건", reports + 1));
    let days = store.step_days("PP-0002")?;
    for (day, steps) in &after {
        let on_disk = days.get(&day.parse()?).copied().unwrap_or(0);
        assert_eq!(steps.replace(',', ""), on_disk.to_string(), "{day}");
    }
    let payload: serde_json::Value = serde_json::from_str(&pending[0].payload)?;
    assert_eq!(payload["member_number"], "PP-0002");
    // Each report carries the watch's proof, read over BlueZ, which checks out under the
    // certificate the watch presented and the demonstration authority.
    for p in pending {
        let report: sync_protocol::wire::StepReportPayload = serde_json::from_str(&p.payload)?;
        let proof = report.watch.context("a signed report")?;
        let unhex = |t: &str| watch_protocol::proof::unhex(t).context("hex");
        let certificate = watch_protocol::WatchCertificate::decode(&unhex(&proof.certificate)?)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        certificate
            .verify(&[watch_protocol::WatchCa::demo().public_key()])
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let signature: [u8; 64] = unhex(&proof.signature)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("64 bytes"))?;
        certificate
            .verify_day(
                &proof.serial,
                report.day.parse()?,
                report.steps,
                &watch_protocol::DayProof {
                    counter: proof.counter,
                    signed_at: proof.signed_at,
                    signature,
                },
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    // The chart shows the new steps: no day went down, and the watch raised some.
    let count = |s: &str| s.replace(',', "").parse::<u32>().unwrap_or(0);
    assert_eq!(before.len(), after.len());
    assert!(
        before
            .iter()
            .zip(&after)
            .all(|(b, a)| b.0 == a.0 && count(&a.1) >= count(&b.1)),
        "{before:?} -> {after:?}"
    );
    assert_ne!(before, after, "the watch's steps reached the chart");
    Ok(())
}

async fn kiosk_watch_flow(driver: &Driver) -> Result<()> {
    let terminal = Terminal::new(KIOSK_LIVE)?;
    let c = session(driver, &terminal).await?;
    let result = async {
        wait_text(&c, "h1", "새 회원 가입").await?;
        type_into(&c, "#name", "김영희").await?;
        type_into(&c, "#birth-date", "19500301").await?;
        type_into(&c, "#phone", "010-1234-5678").await?;
        crate::e2e_kiosk::consent_contact_and_enroll(&c).await?;
        wait_text(&c, "#receipt-no", "접수번호 0001").await?;
        click(&c, "#pair-start").await?;
        texts_of_all(&c, ".watch-choice .code", 3).await?;
        keep_screenshot(&c, "kiosk-watch-list").await?;
        click(&c, ".watch-choice[data-code='0007']").await?;
        let paired = slow_text(&c, "#paired").await?;
        assert_eq!(
            paired,
            "워치 PW-0007이(가) 김영희 님에게 연결되었습니다. 워치 시계를 맞췄습니다."
        );
        keep_screenshot(&c, "kiosk-watch-paired").await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    c.close().await?;
    result?;

    let store = Store::open(&terminal.database())?;
    let today = store.enrollments_on(
        chrono::Utc::now()
            .with_timezone(&points_core::KST)
            .date_naive(),
    )?;
    let op_id = today.first().context("the enrollment")?.op_id.clone();
    let watch = store.watch("PW-0007")?.context("watch paired")?;
    assert_eq!(
        watch.owner,
        merchant_core::watch_sync::WatchOwner::Enrollment(op_id.clone())
    );
    assert_eq!(store.watches_of_enrollment(&op_id)?, ["PW-0007"]);
    // Queued for the central server: the enrollment, then the pairing naming it.
    let pending = store.outbox_pending()?;
    let kinds: Vec<(&str, &str)> = pending
        .iter()
        .map(|p| (p.op_id.as_str(), p.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (op_id.as_str(), "enrollment"),
            (pending[1].op_id.as_str(), "watch_pairing")
        ]
    );
    let pairing: serde_json::Value = serde_json::from_str(&pending[1].payload)?;
    assert_eq!(
        pairing,
        serde_json::json!({ "serial": "PW-0007", "enrollment_op_id": op_id })
    );
    Ok(())
}

/// The watch flows: a private bus with simulated watches, and a driver whose app sees it.
async fn watch_flows() -> Result<()> {
    let bench = WatchBench::start(&debug_binary("watch-sim"), WATCHES)?;
    let driver = Driver::start_with_env(&[("DBUS_SYSTEM_BUS_ADDRESS", bench.address())])?;
    counter_watch_flow(&driver)
        .await
        .context("counter syncs a watch")?;
    kiosk_watch_flow(&driver)
        .await
        .context("kiosk pairs a watch")?;
    drop(driver);
    drop(bench);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_app_through_webdriver() -> Result<()> {
    if !enabled("real_app_through_webdriver") {
        return Ok(());
    }
    let driver = Driver::start()?;
    kiosk_flow(&driver).await.context("kiosk")?;
    counter_flow(&driver).await.context("counter")?;
    sized_kiosk_flow(&driver)
        .await
        .context("kiosk sized for its screen")?;
    broken_config_flow(&driver)
        .await
        .context("broken configuration")?;
    drop(driver);
    watch_flows().await.context("watches")?;
    Ok(())
}
