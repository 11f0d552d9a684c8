//! End-to-end camera scanning at the counter, in the real app through WebKitWebDriver.
//!
//! With `PALPAL_MOCK_CAMERA=1` the app turns on WebKit's mock capture devices: the camera
//! button shows, the preview plays WebKit's test pattern, frames go to `decode_frame` (the
//! screen counts them) and the stop button turns it off. Then the camera's stream is replaced
//! by a canvas showing a real member's QR code (`palpal token issue --qr`), and the code goes
//! from the preview through `decode_frame` to `scan_token`, the wedge scan's path, to the
//! member's available points. Without the mock, and no camera on the machine, the button
//! stays hidden and nothing is said.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

use crate::e2e::{click, enabled, keep_screenshot, session, text_of, wait_text, Driver, Terminal};

const COUNTER: &str = r#"
role = "counter"
site = "onnuri-pharmacy"
site_name = "온누리약국"
demo = true
fixed_now = "2025-12-03T15:00:00+09:00"
"#;

/// A dynamic token for `member` and its QR code as a PNG (4 pixels a module), from
/// `palpal token issue --qr`.
fn issue_with_qr(terminal: &Terminal, member: &str) -> Result<(String, Vec<u8>)> {
    let png = terminal.dir.path().join("token.png");
    let token = crate::e2e_counter::issue(terminal, member, Some(&png))?;
    Ok((token, std::fs::read(&png)?))
}

/// What the page says about the camera: its state, frames sent, and the preview's size.
async fn camera_state(c: &Client) -> Result<Value> {
    Ok(c.execute(
        "const cam = document.getElementById('camera');
         const video = document.getElementById('camera-preview');
         return cam && {
           hidden: cam.hidden,
           state: cam.dataset.state,
           frames: Number(cam.dataset.frames || 0),
           videoWidth: video ? video.videoWidth : 0,
           live: !!(video && video.srcObject &&
                    video.srcObject.getTracks().some(t => t.readyState === 'live')),
           error: document.querySelector('#redeem .message.error') ?
                  document.querySelector('#redeem .message.error').textContent : null,
         };",
        Vec::new(),
    )
    .await?)
}

/// Waits until the camera's state satisfies `ok`, and returns it.
async fn wait_camera(c: &Client, what: &str, ok: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let state = camera_state(c).await?;
        if ok(&state) {
            return Ok(state);
        }
        if Instant::now() > deadline {
            bail!("camera: {what}: not so after 15 s, found {state}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn mock_camera_flow(driver: &Driver) -> Result<()> {
    let terminal = Terminal::new(COUNTER)?;
    let (_token, png) = issue_with_qr(&terminal, "PP-00000002")?;
    let c = session(driver, &terminal).await?;
    let result = async {
        wait_text(&c, "h1", "회원 조회").await?;
        let shown = wait_camera(&c, "the button shows", |s| s["hidden"] == false).await?;
        assert_eq!(shown["state"], "off", "{shown}");
        assert_eq!(text_of(&c, "#camera-start").await?, "카메라로 스캔");

        // WebKit's mock camera: the preview plays, frames reach decode_frame and come back
        // without a code, one after another, until the clerk stops it.
        click(&c, "#camera-start").await?;
        let scanning = wait_camera(&c, "frames are decoded", |s| {
            s["state"] == "scanning" && s["frames"].as_u64().unwrap_or(0) >= 4
        })
        .await?;
        assert!(
            scanning["videoWidth"].as_u64().unwrap_or(0) > 0,
            "{scanning}"
        );
        assert_eq!(scanning["live"], true, "{scanning}");
        assert_eq!(scanning["error"], Value::Null, "{scanning}");
        // How fast frames go round in the real app (printed, not asserted): Tauri's IPC here
        // carries the frame as a JSON array (`camera::body_bytes`).
        let before = scanning["frames"].as_u64().unwrap_or(0);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let later = camera_state(&c).await?["frames"].as_u64().unwrap_or(0);
        eprintln!(
            "camera e2e: {:.1} frames/s through decode_frame (the UI aims at 5)",
            (later - before) as f64 / started.elapsed().as_secs_f64()
        );
        let status = text_of(&c, "#camera-status").await?;
        assert!(status.starts_with("QR 코드를 찾는 중입니다."), "{status}");
        keep_screenshot(&c, "counter-camera-mock").await?;
        click(&c, "#camera-stop").await?;
        let stopped = wait_camera(&c, "it stops", |s| s["state"] == "off").await?;
        assert_eq!(stopped["live"], false, "{stopped}");
        tokio::time::sleep(Duration::from_millis(600)).await;
        let after = camera_state(&c).await?;
        assert_eq!(after["state"], "off", "no frame after the stop: {after}");

        // The camera shows a member's code: a canvas with the QR code from `palpal token
        // issue --qr` stands in for the camera's stream; everything after it is the app's.
        let ready = c
            .execute_async(
                "const [bytes, done] = [arguments[0], arguments[arguments.length - 1]];
                 (async () => {
                   const png = new Blob([new Uint8Array(bytes)], { type: 'image/png' });
                   const code = await createImageBitmap(png);
                   const canvas = document.createElement('canvas');
                   canvas.width = 1280; canvas.height = 720;
                   const ctx = canvas.getContext('2d');
                   const draw = () => {
                     ctx.fillStyle = '#8a8a8a';
                     ctx.fillRect(0, 0, canvas.width, canvas.height);
                     ctx.drawImage(code, 200, 80, code.width * 1.5, code.height * 1.5);
                   };
                   draw();
                   setInterval(draw, 100);
                   const stream = canvas.captureStream(10);
                   window.palpalTestStream = stream;
                   navigator.mediaDevices.getUserMedia = async () => stream;
                   done(true);
                 })().catch((e) => done(String(e)));",
                vec![json!(png)],
            )
            .await?;
        assert_eq!(ready, json!(true), "the canvas stream: {ready}");
        click(&c, "#camera-start").await?;
        let member = text_of(&c, "#scanned-member").await?;
        assert!(member.contains("(PP-0002) · 앱 QR 코드"), "{member}");
        let available = text_of(&c, "#available").await?;
        assert!(!available.is_empty());
        let ended = c
            .execute(
                "return window.palpalTestStream.getTracks()
                   .every((t) => t.readyState === 'ended');",
                Vec::new(),
            )
            .await?;
        assert_eq!(
            ended,
            json!(true),
            "the camera is off once the code is read"
        );
        keep_screenshot(&c, "counter-camera-scanned").await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    c.close().await?;
    result
}

async fn no_camera_flow(driver: &Driver) -> Result<()> {
    let terminal = Terminal::new(COUNTER)?;
    let c = session(driver, &terminal).await?;
    let result = async {
        wait_text(&c, "h1", "회원 조회").await?;
        // Long enough for enumerateDevices to have answered.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let state = camera_state(&c).await?;
        assert_eq!(state["hidden"], true, "no camera, no button: {state}");
        assert_eq!(state["error"], Value::Null, "and nothing said: {state}");
        let buttons = c.find_all(Locator::Css("#camera-start")).await?.len();
        assert_eq!(buttons, 1, "the button is there, hidden");
        assert!(
            !c.find(Locator::Css("#camera-start"))
                .await?
                .is_displayed()
                .await?
        );
        Ok::<_, anyhow::Error>(())
    }
    .await;
    c.close().await?;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_scans_with_a_camera() -> Result<()> {
    if !enabled("counter_scans_with_a_camera") {
        return Ok(());
    }
    let driver = Driver::start_with_env(&[("PALPAL_MOCK_CAMERA", "1")])?;
    mock_camera_flow(&driver)
        .await
        .context("counter with WebKit's mock camera")?;
    drop(driver);
    let driver = Driver::start()?;
    no_camera_flow(&driver)
        .await
        .context("counter without a camera")?;
    drop(driver);
    Ok(())
}
