//! Sizes on the kiosk's screen in millimetres, as Korea's barrier-free kiosk rules
//! (장벽없는 키오스크 고시) state them, turned into the screen's pixels.
//!
//! The rules ask for text at least 12 mm high (7.25 mm on screens of 11 inches or less) and
//! touch targets at least 15 mm. Pixels per millimetre follow from the configured diagonal and
//! resolution, so the same app is readable on a 32-inch standing kiosk and a 10-inch tablet.

use serde::{Deserialize, Serialize};

/// Millimetres per inch.
const MM_PER_INCH: f64 = 25.4;

/// The height of a Hangul syllable (and of capitals) in Noto Sans CJK KR, as a fraction of the
/// font size. Text "12 mm high" means the glyphs, so the font size is larger by this factor.
pub const GLYPH_HEIGHT_EM: f64 = 0.88;

/// The kiosk's physical screen, from its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Screen {
    /// The visible diagonal in inches.
    pub diagonal_inches: f64,
    pub width_px: u32,
    pub height_px: u32,
}

/// CSS pixel sizes that meet the rules on a given screen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Sizes {
    pub px_per_mm: f64,
    /// The minimum glyph height the rules ask for on this screen, in millimetres.
    pub min_text_mm: f64,
    /// The body font size in pixels that gives glyphs of `min_text_mm`.
    pub body_font_px: f64,
    /// The smallest touch target side in pixels (15 mm).
    pub min_target_px: f64,
}

impl Screen {
    pub fn px_per_mm(&self) -> f64 {
        let w = f64::from(self.width_px);
        let h = f64::from(self.height_px);
        (w * w + h * h).sqrt() / (self.diagonal_inches * MM_PER_INCH)
    }

    /// 12 mm, or 7.25 mm on screens of 11 inches or less.
    pub fn min_text_mm(&self) -> f64 {
        if self.diagonal_inches <= 11.0 {
            7.25
        } else {
            12.0
        }
    }

    pub fn sizes(&self) -> Sizes {
        let px_per_mm = self.px_per_mm();
        let min_text_mm = self.min_text_mm();
        Sizes {
            px_per_mm,
            min_text_mm,
            body_font_px: (min_text_mm * px_per_mm / GLYPH_HEIGHT_EM).ceil(),
            min_target_px: (15.0 * px_per_mm).ceil(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(diag: f64, w: u32, h: u32, expect_font: f64, expect_target: f64) {
        let s = Screen {
            diagonal_inches: diag,
            width_px: w,
            height_px: h,
        }
        .sizes();
        assert_eq!(
            (s.body_font_px, s.min_target_px),
            (expect_font, expect_target),
            "{diag}\" {w}x{h}"
        );
        // The glyphs the font size gives are at least the minimum height.
        assert!(s.body_font_px * GLYPH_HEIGHT_EM / s.px_per_mm >= s.min_text_mm);
    }

    #[test]
    fn sizes_follow_the_screen() {
        // A 32-inch portrait standing kiosk, Full HD: 2.71 px/mm.
        check(32.0, 1080, 1920, 37.0, 41.0);
        // A 15.6-inch counter-top screen, 1280x800: 3.81 px/mm.
        check(15.6, 1280, 800, 52.0, 58.0);
        // A 10.1-inch tablet, 1280x800: 5.88 px/mm, the 7.25 mm rule.
        check(10.1, 1280, 800, 49.0, 89.0);
        // 11 inches exactly is still the small-screen rule.
        assert_eq!(
            Screen {
                diagonal_inches: 11.0,
                width_px: 1,
                height_px: 1
            }
            .min_text_mm(),
            7.25
        );
    }
}
