//! What a new terminal needs to enroll, as one text a QR code carries: the one-time code
//! and, when the console knows them, the server's address and the key the terminal pins.
//! The operator console shows it as a QR code beside the code; `palpal provision` takes
//! the same three as options.
//!
//! The text is JSON with a fixed tag, so that a scanner tells it from any other QR code:
//! `{"palpal_enroll":1,"code":"7KQ2-M9XD-0RTA-4VHE","server":"https://central.example:8088",
//! "server_key":"sha256:..."}` (`server` and `server_key` are left out when unknown).

use serde::{Deserialize, Serialize};

/// The version this module writes and reads.
pub const VERSION: u32 = 1;

/// A terminal's enrollment offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentOffer {
    /// Always [`VERSION`].
    pub palpal_enroll: u32,
    /// The one-time enrollment code, as printed (`7KQ2-M9XD-0RTA-4VHE`).
    pub code: String,
    /// The server's address for terminals (`https://...`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The server's key to pin (`sha256:...`), if served over TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_key: Option<String>,
}

impl EnrollmentOffer {
    /// An offer of `code`.
    pub fn new(code: &str, server: Option<&str>, server_key: Option<&str>) -> EnrollmentOffer {
        EnrollmentOffer {
            palpal_enroll: VERSION,
            code: code.to_owned(),
            server: server.map(str::to_owned),
            server_key: server_key.map(str::to_owned),
        }
    }

    /// The text a QR code carries.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a scanned text; `None` when it is not an offer this version reads.
    pub fn parse(text: &str) -> Option<EnrollmentOffer> {
        serde_json::from_str::<EnrollmentOffer>(text.trim())
            .ok()
            .filter(|offer| offer.palpal_enroll == VERSION && !offer.code.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_round_trip_and_strangers_are_refused() {
        let full = EnrollmentOffer::new(
            "7KQ2-M9XD-0RTA-4VHE",
            Some("https://central.example:8088"),
            Some("sha256:AAAA"),
        );
        assert_eq!(
            full.to_text(),
            r#"{"palpal_enroll":1,"code":"7KQ2-M9XD-0RTA-4VHE","server":"https://central.example:8088","server_key":"sha256:AAAA"}"#
        );
        assert_eq!(EnrollmentOffer::parse(&full.to_text()), Some(full));
        let bare = EnrollmentOffer::new("7KQ2-M9XD-0RTA-4VHE", None, None);
        assert_eq!(
            bare.to_text(),
            r#"{"palpal_enroll":1,"code":"7KQ2-M9XD-0RTA-4VHE"}"#
        );
        assert_eq!(EnrollmentOffer::parse(&bare.to_text()), Some(bare));
        for stranger in [
            "PP1:ABCDEF",
            r#"{"palpal_enroll":2,"code":"X"}"#,
            r#"{"palpal_enroll":1,"code":""}"#,
            r#"{"code":"7KQ2-M9XD-0RTA-4VHE"}"#,
        ] {
            assert_eq!(EnrollmentOffer::parse(stranger), None, "{stranger}");
        }
    }
}
