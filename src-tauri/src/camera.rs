//! Camera scanning at the counter: one grayscale frame in, the text of the QR code in it out.
//!
//! The UI (`ui/src/camera.ts`) draws the camera's preview a few times a second onto a canvas,
//! turns it into one byte of luma a pixel, and sends it as the raw body of `decode_frame`:
//! an 8-byte header (width, then height, each a big-endian `u32`) and `width * height` bytes,
//! row by row (or the same bytes as a JSON array, where Tauri's IPC falls back to
//! `postMessage`, as it does in WebKitGTK here). The text found goes to `scan_token`, exactly
//! as a keyboard-wedge scan does: this module decodes pixels and decides nothing about tokens.
//!
//! Decoding is `rqrr` (pure Rust): dark modules on a light ground first, and if none is found,
//! the frame inverted (a phone in dark mode shows light modules on black).

use std::borrow::Cow;

use tauri::ipc::{InvokeBody, Request};
use tauri::State;

use crate::error::{CommandError, ErrorCode, Lang};
use crate::terminal::AppState;

/// The header before the pixels: width and height, each a big-endian `u32`.
pub const HEADER_LEN: usize = 8;

/// The widest or tallest frame accepted (the UI sends about 640 pixels wide).
pub const MAX_SIDE: usize = 4096;

/// One grayscale frame: `width * height` bytes of luma, row by row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub width: usize,
    pub height: usize,
    pub pixels: &'a [u8],
}

/// Why a body is not a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than the header.
    NoHeader,
    /// A side is zero or larger than `MAX_SIDE`.
    Size { width: usize, height: usize },
    /// The pixels are not `width * height` bytes.
    Length { expected: usize, got: usize },
}

impl<'a> Frame<'a> {
    /// A frame of `pixels`, if they are `width * height` bytes and the sides are sensible.
    pub fn new(pixels: &'a [u8], width: usize, height: usize) -> Result<Self, FrameError> {
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(FrameError::Size { width, height });
        }
        let expected = width * height;
        if pixels.len() != expected {
            return Err(FrameError::Length {
                expected,
                got: pixels.len(),
            });
        }
        Ok(Frame {
            width,
            height,
            pixels,
        })
    }

    /// A frame as the UI sends it: the header, then the pixels.
    pub fn parse(body: &'a [u8]) -> Result<Self, FrameError> {
        let (Some(w), Some(h), Some(pixels)) = (
            body.get(0..4),
            body.get(4..HEADER_LEN),
            body.get(HEADER_LEN..),
        ) else {
            return Err(FrameError::NoHeader);
        };
        let side = |b: &[u8]| {
            let mut be = [0u8; 4];
            be.copy_from_slice(b);
            u32::from_be_bytes(be) as usize
        };
        Frame::new(pixels, side(w), side(h))
    }

    /// The header and pixels, as the UI sends them.
    pub fn to_body(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(HEADER_LEN + self.pixels.len());
        for side in [self.width, self.height] {
            body.extend_from_slice(&(side as u32).to_be_bytes());
        }
        body.extend_from_slice(self.pixels);
        body
    }

    /// The text of the first QR code that decodes: dark on light, else light on dark.
    pub fn decode(&self) -> Option<String> {
        self.decode_with(|p| p)
            .or_else(|| self.decode_with(|p| 255 - p))
    }

    fn decode_with(&self, tone: impl Fn(u8) -> u8) -> Option<String> {
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(self.width, self.height, |x, y| {
                tone(self.pixels[y * self.width + x])
            });
        image
            .detect_grids()
            .iter()
            .find_map(|grid| grid.decode().ok().map(|(_meta, text)| text))
    }
}

/// The text of the first QR code in a grayscale frame (`width * height` bytes, row by row), or
/// `None` when there is none, it does not decode, or the bytes are not such a frame.
pub fn decode_qr(pixels: &[u8], width: usize, height: usize) -> Option<String> {
    Frame::new(pixels, width, height).ok()?.decode()
}

/// The body's bytes: the raw body, or the same bytes as a JSON array of numbers, which is how
/// Tauri's postMessage IPC carries a `Uint8Array` (WebKitGTK's webview uses it when the `ipc:`
/// custom protocol is not available to the page).
pub fn body_bytes(body: &InvokeBody) -> Option<Cow<'_, [u8]>> {
    match body {
        InvokeBody::Raw(bytes) => Some(Cow::Borrowed(bytes)),
        InvokeBody::Json(serde_json::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
            .collect::<Option<Vec<u8>>>()
            .map(Cow::Owned),
        InvokeBody::Json(_) => None,
    }
}

fn bad_frame(lang: Lang) -> CommandError {
    CommandError::new(
        ErrorCode::InvalidInput,
        lang,
        "카메라 화면을 받지 못했습니다. 카메라 스캔을 다시 시작하거나 바코드 스캐너로 찍어 주세요.",
        "The camera picture did not arrive. Start the camera scan again, or use the barcode scanner.",
    )
}

/// Looks for a QR code in one camera frame (the raw body: `HEADER_LEN` bytes of width and
/// height, then the pixels). Answers the code's text, or `null` when the frame holds none; the
/// UI then sends the text to `scan_token` as it would a wedge scan.
#[tauri::command]
pub async fn decode_frame(
    state: State<'_, AppState>,
    request: Request<'_>,
) -> Result<Option<String>, CommandError> {
    let lang = state.lang();
    let body = body_bytes(request.body()).ok_or_else(|| bad_frame(lang))?;
    Frame::parse(&body).map_err(|_| bad_frame(lang))?;
    let body = body.into_owned();
    // A few milliseconds of work: off the main thread and off the async workers (the frame is
    // parsed again there, which costs nothing beside the decoding).
    let found =
        tauri::async_runtime::spawn_blocking(move || Frame::parse(&body).ok()?.decode()).await;
    Ok(found.unwrap_or_else(|e| {
        // The decoder failed on this frame (it panicked): no code in it; the next frame follows.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("palpal: decode_frame: {e}");
        }
        None
    }))
}

/// Lets the app's webviews use a camera. WebKitGTK ships with media streams off and refuses
/// every permission request nobody answers: this turns `getUserMedia` on and allows requests
/// for a camera alone (never a microphone, never the screen). With `PALPAL_MOCK_CAMERA=1`,
/// WebKit also offers its mock camera (a test pattern), for tests on machines without one.
pub fn allow_camera<R: tauri::Runtime>(app: &tauri::App<R>) {
    #[cfg(target_os = "linux")]
    {
        use tauri::Manager as _;
        let mock = std::env::var("PALPAL_MOCK_CAMERA").is_ok_and(|v| v == "1");
        for window in app.webview_windows().values() {
            if let Err(e) = window.with_webview(move |w| allow_camera_in(&w.inner(), mock)) {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("palpal: the camera stays off, the webview was not reached: {e}");
                }
            }
        }
    }
    // Other systems' webviews ask the system for the camera themselves.
    #[cfg(not(target_os = "linux"))]
    let _ = app;
}

#[cfg(target_os = "linux")]
fn allow_camera_in(webview: &webkit2gtk::WebView, mock: bool) {
    use webkit2gtk::glib::Cast as _;
    use webkit2gtk::{
        PermissionRequestExt as _, SettingsExt as _, UserMediaPermissionRequest,
        UserMediaPermissionRequestExt as _, WebViewExt as _,
    };
    if let Some(settings) = webview.settings() {
        settings.set_enable_media_stream(true);
        settings.set_enable_mock_capture_devices(mock);
    }
    webview.connect_permission_request(|_, request| {
        let Some(media) = request.downcast_ref::<UserMediaPermissionRequest>() else {
            return false; // not a camera or microphone: WebKit's own answer
        };
        if media.is_for_video_device() && !media.is_for_audio_device() {
            request.allow();
        } else {
            request.deny();
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_a_header_and_width_times_height_pixels() {
        let pixels = [7u8; 6];
        let frame = Frame::new(&pixels, 3, 2).unwrap();
        let body = frame.to_body();
        assert_eq!(&body[..HEADER_LEN], &[0, 0, 0, 3, 0, 0, 0, 2]);
        assert_eq!(Frame::parse(&body), Ok(frame));

        assert_eq!(Frame::parse(&body[..7]), Err(FrameError::NoHeader));
        assert_eq!(
            Frame::parse(&body[..body.len() - 1]),
            Err(FrameError::Length {
                expected: 6,
                got: 5
            })
        );
        assert_eq!(
            Frame::parse(&[0, 0, 0, 0, 0, 0, 0, 2]),
            Err(FrameError::Size {
                width: 0,
                height: 2
            })
        );
        let huge = [0, 0, 0x10, 1, 0, 0, 0, 1];
        assert_eq!(
            Frame::parse(&huge),
            Err(FrameError::Size {
                width: 4097,
                height: 1
            })
        );
        assert_eq!(decode_qr(&pixels, 4, 2), None);
    }

    #[test]
    fn a_frame_arrives_raw_or_as_a_json_array_of_bytes() {
        let raw = InvokeBody::Raw(vec![0, 0, 0, 1, 0, 0, 0, 1, 200]);
        assert_eq!(
            body_bytes(&raw).as_deref(),
            Some(&[0, 0, 0, 1, 0, 0, 0, 1, 200][..])
        );
        let json = InvokeBody::Json(serde_json::json!([0, 0, 0, 1, 0, 0, 0, 1, 200]));
        assert_eq!(
            body_bytes(&json).as_deref(),
            Some(&[0, 0, 0, 1, 0, 0, 0, 1, 200][..])
        );
        for not_bytes in [
            serde_json::json!([0, 256]),
            serde_json::json!([0, -1]),
            serde_json::json!([0, "1"]),
            serde_json::json!({ "width": 1 }),
        ] {
            assert_eq!(body_bytes(&InvokeBody::Json(not_bytes)), None);
        }
    }

    #[test]
    fn blank_and_noisy_frames_hold_no_code() {
        assert_eq!(decode_qr(&[255; 64 * 48], 64, 48), None);
        assert_eq!(decode_qr(&[0; 64 * 48], 64, 48), None);
        let mut seed = 1u32;
        let noise: Vec<u8> = (0..320 * 240)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 24) as u8
            })
            .collect();
        assert_eq!(decode_qr(&noise, 320, 240), None);
    }
}
