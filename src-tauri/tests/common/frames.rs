//! Camera frames for the camera tests and benchmark: real redemption tokens drawn as QR codes
//! (the `qrcode` crate at level M, as the counter's member cards are), put on a cluttered
//! ground, and spoiled the ways a camera spoils them (scale, blur, noise, rotation, low
//! contrast, inversion). One byte of luma a pixel, row by row, as `ui/src/camera.ts` sends.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test
#![allow(dead_code)] // each test target uses its own part

use chrono::{DateTime, TimeZone, Utc};
use qrcode::{Color, EcLevel, QrCode};
use redemption_token::{CardSpec, IssuerKey, MemberNo};
use terminal_store::{demo_issuer_seed_hex, DEMO_KEY_ID};

/// A grayscale image.
#[derive(Clone, Debug)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Gray {
    pub fn filled(width: usize, height: usize, tone: u8) -> Gray {
        Gray {
            width,
            height,
            pixels: vec![tone; width * height],
        }
    }

    pub fn at(&self, x: usize, y: usize) -> u8 {
        self.pixels[y * self.width + x]
    }

    fn set(&mut self, x: usize, y: usize, v: u8) {
        self.pixels[y * self.width + x] = v;
    }

    /// Bilinear sample at (x, y) in pixel centres; `outside` beyond the edges.
    fn sample(&self, x: f64, y: f64, outside: u8) -> u8 {
        let (x, y) = (x - 0.5, y - 0.5);
        if x < -0.5 || y < -0.5 || x > self.width as f64 - 0.5 || y > self.height as f64 - 0.5 {
            return outside;
        }
        let x0 = x.floor().clamp(0.0, (self.width - 1) as f64);
        let y0 = y.floor().clamp(0.0, (self.height - 1) as f64);
        let (fx, fy) = ((x - x0).clamp(0.0, 1.0), (y - y0).clamp(0.0, 1.0));
        let (x0, y0) = (x0 as usize, y0 as usize);
        let x1 = (x0 + 1).min(self.width - 1);
        let y1 = (y0 + 1).min(self.height - 1);
        let p = |x, y| f64::from(self.at(x, y));
        let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
        let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
        (top * (1.0 - fy) + bottom * fy).round() as u8
    }
}

/// 2025-12-03 15:00 in Seoul.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 12, 3, 6, 0, 0).unwrap()
}

/// The demo's issuing key, which a demo counter trusts.
fn issuer() -> IssuerKey {
    IssuerKey::from_seed_hex(DEMO_KEY_ID, demo_issuer_seed_hex()).unwrap()
}

/// A dynamic token, as a member's phone or watch shows it, issued at `now()`.
pub fn dynamic_token(member: u64, nonce: u8) -> String {
    issuer()
        .issue_dynamic(MemberNo(member), now(), 120, [nonce; 8])
        .unwrap()
        .to_text()
}

/// A printed member card's token.
pub fn card_token(member: u64) -> String {
    let card = CardSpec {
        member: MemberNo(member),
        serial: 1,
        issued_at: now(),
        expires_at: now() + chrono::Duration::days(365),
        pin_cost: 8,
        salt: [3; 8],
    };
    issuer().issue_card(&card, "123456").unwrap().to_text()
}

/// `text` as a QR code at level M: `module` pixels a module, a quiet zone of four modules,
/// black on white.
pub fn qr(text: &str, module: usize) -> Gray {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).unwrap();
    let n = code.width();
    let colors = code.to_colors();
    let side = (n + 8) * module;
    let mut img = Gray::filled(side, side, 255);
    for y in 0..side {
        for x in 0..side {
            let (mx, my) = ((x / module) as isize - 4, (y / module) as isize - 4);
            let inside = mx >= 0 && my >= 0 && (mx as usize) < n && (my as usize) < n;
            if inside && colors[my as usize * n + mx as usize] == Color::Dark {
                img.set(x, y, 0);
            }
        }
    }
    img
}

/// A small deterministic generator (no `rand` in this crate's tests).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.next() as usize % n.max(1)
    }
}

/// A counter seen by a camera: a mid-grey ground with noise, and dark and light blocks and
/// stripes (a till, a hand, printed matter).
pub fn clutter(width: usize, height: usize, seed: u64) -> Gray {
    let mut rng = Lcg(seed);
    let mut img = Gray::filled(width, height, 150);
    for _ in 0..40 {
        let (w, h) = (8 + rng.below(width / 5), 4 + rng.below(height / 6));
        let (x0, y0) = (rng.below(width), rng.below(height));
        let tone = [20u8, 60, 200, 240][rng.below(4)];
        for y in y0..(y0 + h).min(height) {
            for x in x0..(x0 + w).min(width) {
                img.set(x, y, tone);
            }
        }
    }
    // Printed text: short dark dashes in rows.
    for row in 0..6 {
        let y = height / 8 * (row + 1);
        let mut x = rng.below(width / 4);
        while x + 12 < width {
            let len = 3 + rng.below(9);
            for dy in 0..3 {
                for dx in 0..len {
                    if y + dy < height {
                        img.set(x + dx, y + dy, 30);
                    }
                }
            }
            x += len + 2 + rng.below(6);
        }
    }
    add_noise(&mut img, 12, seed ^ 0x5eed);
    img
}

/// Copies `code` onto `ground` with its top-left corner at (x, y).
pub fn place(ground: &mut Gray, code: &Gray, x: usize, y: usize) {
    for cy in 0..code.height {
        for cx in 0..code.width {
            if x + cx < ground.width && y + cy < ground.height {
                ground.set(x + cx, y + cy, code.at(cx, cy));
            }
        }
    }
}

/// `code` in the middle of a cluttered `width` x `height` frame.
pub fn in_scene(code: &Gray, width: usize, height: usize, seed: u64) -> Gray {
    let mut scene = clutter(width, height, seed);
    place(
        &mut scene,
        code,
        (width.saturating_sub(code.width)) / 2,
        (height.saturating_sub(code.height)) / 2,
    );
    scene
}

/// Adds uniform noise of +-`amplitude` to every pixel.
pub fn add_noise(img: &mut Gray, amplitude: i32, seed: u64) {
    let mut rng = Lcg(seed);
    for p in &mut img.pixels {
        let d = rng.below((2 * amplitude + 1) as usize) as i32 - amplitude;
        *p = (i32::from(*p) + d).clamp(0, 255) as u8;
    }
}

/// A box blur of the given radius (a camera slightly out of focus).
pub fn blur(img: &Gray, radius: usize) -> Gray {
    let mut out = img.clone();
    let r = radius as isize;
    for y in 0..img.height {
        for x in 0..img.width {
            let (mut sum, mut n) = (0u32, 0u32);
            for dy in -r..=r {
                for dx in -r..=r {
                    let (sx, sy) = (x as isize + dx, y as isize + dy);
                    if sx >= 0 && sy >= 0 && (sx as usize) < img.width && (sy as usize) < img.height
                    {
                        sum += u32::from(img.at(sx as usize, sy as usize));
                        n += 1;
                    }
                }
            }
            out.set(x, y, (sum / n) as u8);
        }
    }
    out
}

/// Resampled to `width` x `height` (bilinear): modules no longer whole pixels.
pub fn resize(img: &Gray, width: usize, height: usize) -> Gray {
    let (sx, sy) = (
        img.width as f64 / width as f64,
        img.height as f64 / height as f64,
    );
    let mut out = Gray::filled(width, height, 0);
    for y in 0..height {
        for x in 0..width {
            let v = img.sample((x as f64 + 0.5) * sx, (y as f64 + 0.5) * sy, 255);
            out.set(x, y, v);
        }
    }
    out
}

/// Turned a quarter to the right.
pub fn rotate90(img: &Gray) -> Gray {
    let mut out = Gray::filled(img.height, img.width, 0);
    for y in 0..img.height {
        for x in 0..img.width {
            out.set(img.height - 1 - y, x, img.at(x, y));
        }
    }
    out
}

/// Upside down.
pub fn rotate180(img: &Gray) -> Gray {
    let mut out = img.clone();
    out.pixels.reverse();
    out
}

/// Turned by `degrees` about its centre on the same canvas, `ground` where nothing was.
pub fn rotate(img: &Gray, degrees: f64, ground: u8) -> Gray {
    let (s, c) = degrees.to_radians().sin_cos();
    let (cx, cy) = (img.width as f64 / 2.0, img.height as f64 / 2.0);
    let mut out = Gray::filled(img.width, img.height, ground);
    for y in 0..img.height {
        for x in 0..img.width {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            let (ux, uy) = (c * dx + s * dy + cx, -s * dx + c * dy + cy);
            out.set(x, y, img.sample(ux, uy, ground));
        }
    }
    out
}

/// Light on dark.
pub fn invert(img: &Gray) -> Gray {
    let mut out = img.clone();
    for p in &mut out.pixels {
        *p = 255 - *p;
    }
    out
}

/// Every tone squeezed into `low..=high` (a dim screen, a glare).
pub fn squeeze(img: &Gray, low: u8, high: u8) -> Gray {
    let mut out = img.clone();
    let span = u32::from(high - low);
    for p in &mut out.pixels {
        *p = low + (u32::from(*p) * span / 255) as u8;
    }
    out
}
