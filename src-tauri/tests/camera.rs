//! Camera scanning: real redemption tokens drawn as QR codes the way the counter's codes are,
//! spoiled the ways a camera spoils them, decoded by the function `decode_frame` uses; then the
//! command itself through Tauri's IPC with a raw body, and its text through `scan_token`, the
//! path a keyboard-wedge scan takes.

#![allow(clippy::unwrap_used)] // a test file: a failed unwrap is a failed test

use palpal_app::camera::{decode_qr, Frame, HEADER_LEN};
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, INVOKE_KEY};
use tauri::webview::InvokeRequest;

mod common;
#[path = "common/frames.rs"]
mod frames;
use common::{call, Window};
use frames::*;

/// The frame decodes to `expect` (or to nothing); says which case failed otherwise.
fn check(case: &str, frame: &Gray, expect: Option<&str>) {
    let got = decode_qr(&frame.pixels, frame.width, frame.height);
    assert_eq!(
        got.as_deref(),
        expect,
        "{case} ({}x{})",
        frame.width,
        frame.height
    );
}

#[test]
fn tokens_decode_at_every_scale_on_a_cluttered_counter() {
    let dynamic = dynamic_token(2, 1);
    let card = card_token(7);
    assert!(dynamic.starts_with("PP1:") && card.starts_with("PP1:"));
    for (kind, text) in [("dynamic", &dynamic), ("card", &card)] {
        for module in [2, 3, 4, 6, 8] {
            let code = qr(text, module);
            let (w, h) = (code.width.max(640) + 40, code.height.max(480) + 40);
            check(
                &format!("{kind}, {module} px a module, on clutter"),
                &in_scene(&code, w, h, module as u64),
                Some(text),
            );
        }
        // Modules not a whole number of pixels: drawn at 12, resampled. Below about 3 pixels a
        // module, codes square to the frame stop decoding (docs/counter-redemption.md, Camera).
        let big = qr(text, 12);
        for module in [3.0, 3.3, 4.3, 5.6, 7.5] {
            let side = (big.width as f64 * module / 12.0).round() as usize;
            check(
                &format!("{kind}, resampled to {module} px a module"),
                &in_scene(&resize(&big, side, side), 640, 480, 11),
                Some(text),
            );
        }
        let side = (big.width as f64 * 2.5 / 12.0).round() as usize;
        check(
            &format!("{kind}, resampled to 2.5 px a module: too small"),
            &in_scene(&resize(&big, side, side), 640, 480, 11),
            None,
        );
    }
}

#[test]
fn tokens_decode_from_frames_a_camera_spoils() {
    let text = dynamic_token(3, 2);
    let code = qr(&text, 5);
    let scene = in_scene(&code, 640, 480, 5);
    check("as drawn", &scene, Some(&text));

    let mut noisy = scene.clone();
    add_noise(&mut noisy, 40, 9);
    check("noise +-40", &noisy, Some(&text));
    check("blur radius 1", &blur(&scene, 1), Some(&text));
    check("blur radius 2", &blur(&scene, 2), Some(&text));
    let mut soft_and_noisy = blur(&scene, 1);
    add_noise(&mut soft_and_noisy, 15, 10);
    check("blur radius 1 and noise +-15", &soft_and_noisy, Some(&text));

    check("turned 90 degrees", &rotate90(&scene), Some(&text));
    check("upside down", &rotate180(&scene), Some(&text));
    check(
        "turned 270 degrees",
        &rotate90(&rotate180(&scene)),
        Some(&text),
    );
    for degrees in [10.0, 25.0, 45.0] {
        check(
            &format!("tilted {degrees} degrees"),
            &rotate(&scene, degrees, 150),
            Some(&text),
        );
    }

    check("inverted (dark mode)", &invert(&scene), Some(&text));
    check(
        "low contrast 90..170",
        &squeeze(&scene, 90, 170),
        Some(&text),
    );
    check("dim 0..60", &squeeze(&scene, 0, 60), Some(&text));
    let mut dim_noisy = squeeze(&scene, 100, 160);
    add_noise(&mut dim_noisy, 8, 12);
    check("low contrast 100..160 and noise", &dim_noisy, Some(&text));
    check(
        "inverted and low contrast",
        &squeeze(&invert(&scene), 80, 180),
        Some(&text),
    );
}

/// A code held a little askew, the way a hand turns it frame after frame: 0 to 15 degrees by
/// one. `rqrr` misses the odd single angle (5 px a module at 8 degrees, say); the camera sends
/// five frames a second, so what matters is that a turning hand is read within a frame or two.
#[test]
fn a_code_turning_in_the_hand_is_read_frame_after_frame() {
    let text = card_token(8);
    for module in [4, 5, 6, 8] {
        let scene = in_scene(&qr(&text, module), 640, 480, module as u64);
        let read: Vec<bool> = (0..=15)
            .map(|degrees| {
                let frame = rotate(&scene, f64::from(degrees), 150);
                decode_qr(&frame.pixels, frame.width, frame.height).as_deref() == Some(&text)
            })
            .collect();
        let longest_miss = read.split(|ok| *ok).map(<[bool]>::len).max().unwrap_or(0);
        let hits = read.iter().filter(|ok| **ok).count();
        assert!(
            hits >= 12 && longest_miss <= 2,
            "{module} px a module: {hits} of 16 angles read, {longest_miss} missed in a row: {read:?}"
        );
    }
}

#[test]
fn frames_without_a_whole_code_give_none() {
    check("blank white", &Gray::filled(640, 480, 255), None);
    check("blank black", &Gray::filled(640, 480, 0), None);
    check("clutter", &clutter(640, 480, 1), None);
    check("clutter, inverted", &invert(&clutter(640, 480, 2)), None);
    let mut noise = Gray::filled(640, 480, 128);
    add_noise(&mut noise, 127, 3);
    check("noise", &noise, None);

    // Half a code: the camera sees only its left half.
    let code = qr(&dynamic_token(4, 3), 5);
    let mut half = clutter(640, 480, 4);
    let left = Gray {
        width: code.width / 2,
        height: code.height,
        pixels: (0..code.height)
            .flat_map(|y| (0..code.width / 2).map(move |x| (x, y)))
            .map(|(x, y)| code.at(x, y))
            .collect(),
    };
    place(&mut half, &left, 100, 50);
    check("the left half of a code", &half, None);

    // Too small to read: under one pixel a module.
    let tiny = resize(&qr(&dynamic_token(4, 4), 4), 40, 40);
    check("a code 40 px wide", &in_scene(&tiny, 640, 480, 6), None);

    // Bytes that are not width * height: no frame, no code.
    assert_eq!(decode_qr(&[255; 100], 640, 480), None);
}

const NOW: &str = "2025-12-03T15:00:00+09:00";

fn counter() -> (tempfile::TempDir, Window) {
    common::app(&format!(
        "role = \"counter\"\nsite = \"onnuri\"\nsite_name = \"온누리약국\"\ndemo = true\n\
         fixed_now = \"{NOW}\"\n"
    ))
}

/// `decode_frame` with `body`, as `camera.ts` invokes it.
fn decode_frame(w: &Window, body: InvokeBody) -> Result<Value, Value> {
    get_ipc_response(
        w,
        InvokeRequest {
            cmd: "decode_frame".into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body,
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|b| b.deserialize::<Value>().unwrap())
}

fn body_of(frame: &Gray) -> InvokeBody {
    InvokeBody::Raw(
        Frame::new(&frame.pixels, frame.width, frame.height)
            .unwrap()
            .to_body(),
    )
}

#[test]
fn a_camera_frame_goes_the_way_a_wedge_scan_goes() {
    assert_eq!(frames::now().to_rfc3339(), "2025-12-03T06:00:00+00:00");
    let (_dir, w) = counter();
    let token = dynamic_token(2, 5);
    let frame = in_scene(&qr(&token, 4), 640, 480, 8);
    let text = decode_frame(&w, body_of(&frame)).unwrap();
    assert_eq!(text, json!(token));

    let scanned = call(&w, "scan_token", json!({ "token": text })).unwrap();
    assert_eq!(scanned["member_no"], "PP-0002");
    assert_eq!(scanned["kind"], "dynamic");
    assert_eq!(scanned["token"], json!(token));

    let redeemed = call(&w, "redeem", json!({ "token": text, "amount": 1500 })).unwrap();
    assert_eq!(redeemed["amount"], 1500);

    // The same code read again by the camera: refused, as the same wedge scan would be.
    let again = decode_frame(&w, body_of(&rotate90(&frame))).unwrap();
    let err = call(&w, "scan_token", json!({ "token": again })).unwrap_err();
    assert_eq!(err["code"], "replayed", "{err}");

    // The same frame as a JSON array of bytes, as Tauri's postMessage IPC carries it.
    let as_json = Frame::new(&frame.pixels, frame.width, frame.height)
        .unwrap()
        .to_body();
    assert_eq!(
        decode_frame(&w, InvokeBody::Json(json!(as_json))).unwrap(),
        json!(token)
    );

    // A frame without a code: null, and the camera goes on.
    let empty = clutter(640, 480, 9);
    assert_eq!(decode_frame(&w, body_of(&empty)).unwrap(), Value::Null);
}

#[test]
fn a_body_that_is_not_a_frame_is_refused_with_what_to_do() {
    let (_dir, w) = counter();
    let frame = clutter(64, 48, 1);
    let mut short = Frame::new(&frame.pixels, 64, 48).unwrap().to_body();
    short.pop();
    for body in [
        InvokeBody::Raw(short),
        InvokeBody::Raw(vec![0; HEADER_LEN - 1]),
        InvokeBody::Json(json!({ "width": 64, "height": 48 })),
        InvokeBody::Json(json!([0, 0, 0, 1, 0, 0, 0, 1, 300])),
    ] {
        let err = decode_frame(&w, body).unwrap_err();
        assert_eq!(
            err,
            json!({
                "code": "invalid_input",
                "message": "카메라 화면을 받지 못했습니다. 카메라 스캔을 다시 시작하거나 바코드 스캐너로 찍어 주세요.",
            })
        );
    }
}
