//! Telling a USB keyboard-wedge scanner from a person typing. A wedge scanner is a keyboard to
//! the computer: it types what it read as a burst of keys a few milliseconds apart and ends
//! with Enter. A person types a key every hundred milliseconds or more.
//!
//! Pure: the key events carry their own timestamps (milliseconds, from any monotonic clock,
//! such as the browser's `KeyboardEvent.timeStamp`).
//!
//! The text is returned as typed. Letter case is left alone: a scanner with Caps Lock on
//! types a token in lower case, and `redemption_token::Token::parse` folds it back (Base45 has
//! no lower case, so folding is unambiguous). Shift and Caps Lock themselves are ignored.

use serde::{Deserialize, Serialize};

/// A key as the detector sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Key {
    /// A key that types a character (after Shift and Caps Lock).
    Char(char),
    /// Enter: a scanner's end of code.
    Enter,
    /// Shift, Caps Lock, Control, Alt: ignored, a scanner sends Shift for capitals.
    Modifier,
    /// Any other key (Backspace, Tab, arrows): a person editing, so no burst.
    Other,
}

/// A key and when it went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEvent {
    /// The key.
    pub key: Key,
    /// Milliseconds on a monotonic clock.
    pub at_ms: u64,
}

/// What makes a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WedgeConfig {
    /// The longest gap between two keys of a burst, Enter included. Scanners type a key
    /// every 1 to 20 ms; fast typists rarely go under 60 ms between keys.
    pub max_gap_ms: u64,
    /// The fewest characters a scan has: shorter bursts are typing (a fast "ok" and Enter).
    pub min_len: usize,
}

impl Default for WedgeConfig {
    fn default() -> WedgeConfig {
        WedgeConfig {
            max_gap_ms: 40,
            min_len: 8,
        }
    }
}

/// A code a scanner typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scan {
    /// The characters, without the Enter.
    pub text: String,
    /// When the first character came.
    pub started_at_ms: u64,
    /// When Enter came.
    pub ended_at_ms: u64,
}

/// Watches the key events of the counter's screen and reports each scanner burst.
#[derive(Debug, Clone, Default)]
pub struct WedgeDetector {
    config: WedgeConfig,
    burst: String,
    started_at_ms: u64,
    last_at_ms: Option<u64>,
}

impl WedgeDetector {
    /// A detector with `config`.
    pub fn new(config: WedgeConfig) -> WedgeDetector {
        WedgeDetector {
            config,
            ..WedgeDetector::default()
        }
    }

    /// The characters of the burst under way (possibly typing).
    pub fn pending(&self) -> &str {
        &self.burst
    }

    fn fast(&self, at_ms: u64) -> bool {
        self.last_at_ms
            .is_some_and(|last| at_ms.saturating_sub(last) <= self.config.max_gap_ms)
    }

    fn reset(&mut self) {
        self.burst.clear();
        self.last_at_ms = None;
    }

    /// Takes the next key. Returns the scan when Enter ends a burst of at least `min_len`
    /// characters, each within `max_gap_ms` of the one before; a slow key starts a new burst.
    pub fn push(&mut self, event: KeyEvent) -> Option<Scan> {
        match event.key {
            Key::Modifier => None,
            Key::Other => {
                self.reset();
                None
            }
            Key::Char(c) => {
                if !self.fast(event.at_ms) {
                    self.burst.clear();
                    self.started_at_ms = event.at_ms;
                }
                self.burst.push(c);
                self.last_at_ms = Some(event.at_ms);
                None
            }
            Key::Enter => {
                let scan = (self.fast(event.at_ms)
                    && self.burst.chars().count() >= self.config.min_len)
                    .then(|| Scan {
                        text: self.burst.clone(),
                        started_at_ms: self.started_at_ms,
                        ended_at_ms: event.at_ms,
                    });
                self.reset();
                scan
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use redemption_token::{IssuerKey, MemberNo, Token};

    use super::*;

    /// Types `keys` (`text` as characters; `⏎` Enter, `⇧` Shift, `⇪` Caps Lock, `⌫` Backspace;
    /// `|N|` waits N ms instead of the step) with `step` ms between keys, and writes each
    /// scan reported.
    fn run(keys: &str, step: u64) -> Vec<String> {
        let mut d = WedgeDetector::new(WedgeConfig::default());
        let mut at = 1_000;
        let mut scans = Vec::new();
        let mut chars = keys.chars();
        while let Some(c) = chars.next() {
            if c == '|' {
                let wait: String = chars.by_ref().take_while(|c| *c != '|').collect();
                at += wait.parse::<u64>().unwrap();
                continue;
            }
            let key = match c {
                '⏎' => Key::Enter,
                '⇧' | '⇪' => Key::Modifier,
                '⌫' => Key::Other,
                c => Key::Char(c),
            };
            if let Some(scan) = d.push(KeyEvent { key, at_ms: at }) {
                scans.push(format!(
                    "{} ({}..{} ms)",
                    scan.text, scan.started_at_ms, scan.ended_at_ms
                ));
            }
            at += step;
        }
        scans
    }

    fn check(keys: &str, step: u64, expect: &[&str]) {
        assert_eq!(run(keys, step), expect, "{keys:?} every {step} ms");
    }

    #[test]
    fn bursts_and_typing() {
        // A scanner: 5 ms a key, Enter at the end.
        check("PP1:ABC123⏎", 5, &["PP1:ABC123 (1000..1050 ms)"]);
        // The same at the limit (40 ms) and just over it (41 ms).
        check("PP1:ABC123⏎", 40, &["PP1:ABC123 (1000..1400 ms)"]);
        check("PP1:ABC123⏎", 41, &[]);
        // A person typing the same, 120 ms a key.
        check("PP1:ABC123⏎", 120, &[]);
        // Too short to be a code.
        check("1234567⏎", 5, &[]);
        check("12345678⏎", 5, &["12345678 (1000..1040 ms)"]);
        // No Enter: nothing yet.
        check("PP1:ABC123", 5, &[]);
        // Two scans in a row, and a product barcode (EAN-13).
        check(
            "PP1:AAAAAA⏎|500|8801234567893⏎",
            5,
            &[
                "PP1:AAAAAA (1000..1050 ms)",
                "8801234567893 (1555..1620 ms)",
            ],
        );
    }

    #[test]
    fn a_slow_key_breaks_the_burst() {
        // A pause inside: the burst restarts after it, too short to be a scan.
        check("PP1:AB|200|C1⏎", 5, &[]);
        // The clerk typed "12", paused, then scanned: only the scan is reported.
        check("12|300|PP1:ABC123⏎", 5, &["PP1:ABC123 (1310..1360 ms)"]);
        // Enter a while after the burst: typing.
        check("PP1:ABC123|100|⏎", 5, &[]);
        // Backspace is a person editing.
        check("PP1:AB⌫C123⏎", 5, &[]);
    }

    #[test]
    fn shift_and_caps_lock_are_noise() {
        // Shift before each capital, as a scanner sends it.
        check("⇧P⇧P1:⇧A⇧B⇧C123⏎", 5, &["PP1:ABC123 (1005..1075 ms)"]);
        // Caps Lock on: lower case comes through as typed.
        check("⇪pp1:abc123⏎", 5, &["pp1:abc123 (1005..1055 ms)"]);
    }

    proptest::proptest! {
        /// Whatever a scanner types, fast enough and long enough, comes back as typed; the
        /// same keys typed slowly never make a scan.
        #[test]
        fn fast_bursts_come_back_verbatim(
            text in "[ -~가-힣]{8,80}",
            gaps in proptest::collection::vec(0u64..=40, 81),
        ) {
            let config = WedgeConfig::default();
            let mut fast = WedgeDetector::new(config);
            let mut slow = WedgeDetector::new(config);
            let mut at = 0;
            let mut slow_at = 0;
            for (c, gap) in text.chars().zip(&gaps) {
                at += gap;
                slow_at += 41 + gap;
                proptest::prop_assert_eq!(fast.push(KeyEvent { key: Key::Char(c), at_ms: at }), None);
                proptest::prop_assert_eq!(slow.push(KeyEvent { key: Key::Char(c), at_ms: slow_at }), None);
            }
            let scan = fast.push(KeyEvent { key: Key::Enter, at_ms: at + gaps[80] });
            proptest::prop_assert_eq!(scan.map(|s| s.text), Some(text));
            proptest::prop_assert_eq!(slow.push(KeyEvent { key: Key::Enter, at_ms: slow_at + 41 }), None);
            proptest::prop_assert_eq!(fast.pending(), "");
        }
    }

    #[test]
    fn a_token_scanned_with_caps_lock_on_still_parses() {
        let key = IssuerKey::from_seed(1, [7; 32]);
        let now = DateTime::parse_from_rfc3339("2025-12-03T10:00:00+09:00")
            .unwrap()
            .to_utc();
        let token = key
            .issue_dynamic(MemberNo(42), now, 120, [1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap();
        let typed = format!("{}⏎", token.to_text().to_lowercase());
        let scans = run(&typed, 3);
        assert_eq!(scans.len(), 1);
        let text = scans[0].split(" (").next().unwrap();
        assert_eq!(Token::parse(text).unwrap(), token);
    }
}
