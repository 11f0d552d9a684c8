//! How a terminal signs a request to the central server, and how the server checks it.
//!
//! Every request after enrollment carries four headers: the terminal's id, the time it was
//! signed (Unix seconds), a nonce used once, and an Ed25519 signature (standard base64 of the
//! 64 signature bytes) over the [`signing_string`]. The string binds the method, the path, the
//! terminal, the time, the nonce and the SHA-256 of the exact body bytes, one per line:
//!
//! ```text
//! PALPAL-SIG-V1
//! POST
//! /v1/sync
//! T-000001
//! 1764723600
//! 3q2-7w_nonce-0001
//! <lowercase hex SHA-256 of the body>
//! ```
//!
//! This module does no IO and reads no clock: the caller passes the time and the nonce, so the
//! terminal's sync client can sign with it and tests can fix both.

use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};

// The format is the terminal's: one implementation, in the pure sync client, serves both sides.
pub use sync_client::signing::{
    body_digest, encode_public_key, signing_string, NONCE_HEADER, SIGNATURE_HEADER,
    SIGNATURE_VERSION, TERMINAL_HEADER, TIMESTAMP_HEADER,
};

/// The four headers of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// Value of [`TERMINAL_HEADER`].
    pub terminal: String,
    /// Value of [`TIMESTAMP_HEADER`].
    pub timestamp: i64,
    /// Value of [`NONCE_HEADER`].
    pub nonce: String,
    /// Value of [`SIGNATURE_HEADER`].
    pub signature: String,
}

impl SignedHeaders {
    /// The headers as (name, value) pairs, ready to add to a request.
    pub fn pairs(&self) -> [(&'static str, String); 4] {
        [
            (TERMINAL_HEADER, self.terminal.clone()),
            (TIMESTAMP_HEADER, self.timestamp.to_string()),
            (NONCE_HEADER, self.nonce.clone()),
            (SIGNATURE_HEADER, self.signature.clone()),
        ]
    }
}

/// Signs a request with the terminal's key, as the terminal's sync client does, and returns
/// the headers as named fields. The caller picks the time and a fresh nonce.
pub fn sign(
    key: &SigningKey,
    method: &str,
    path: &str,
    terminal: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> SignedHeaders {
    let [.., (_, signature)] =
        sync_client::signing::sign(key, method, path, terminal, timestamp, nonce, body);
    SignedHeaders {
        terminal: terminal.to_owned(),
        timestamp,
        nonce: nonce.to_owned(),
        signature,
    }
}

/// Whether `signature` (standard base64) is the key's signature over `signing_string`.
pub fn verify(key: &VerifyingKey, signing_string: &str, signature: &str) -> bool {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(signature) = ed25519_dalek::Signature::from_slice(&bytes) else {
        return false;
    };
    key.verify_strict(signing_string.as_bytes(), &signature)
        .is_ok()
}

/// Whether a nonce has an acceptable shape: 16 to 64 characters of `A-Z a-z 0-9 - _`.
pub fn nonce_is_valid(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads a terminal's Ed25519 public key from standard base64 (44 characters) or hex (64).
pub fn parse_public_key(text: &str) -> Option<VerifyingKey> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?
    };
    let bytes: [u8; 32] = bytes.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_string_is_pinned() {
        let text = signing_string("post", "/v1/sync", "T-000001", 1_764_723_600, "n", b"");
        assert_eq!(
            text,
            "PALPAL-SIG-V1\nPOST\n/v1/sync\nT-000001\n1764723600\nn\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// The worked example in `docs/sync-api.yaml`; change both together.
    #[test]
    fn the_documented_example_signs_as_documented() {
        let seed: [u8; 32] = std::array::from_fn(|i| u8::try_from(i).unwrap_or(0));
        let key = SigningKey::from_bytes(&seed);
        let body = r#"{"operations":[{"op_id":"op-1","kind":"enrollment","payload":{"name":"김영희","birth_date":"1950-04-01","phone":"010-1234-5678"}}]}"#;
        assert_eq!(
            body_digest(body.as_bytes()),
            "b4a701ca7e5536d7cf265aa56135bade270f353847b34eb08f0a8629f7842416"
        );
        let headers = sign(
            &key,
            "POST",
            "/v1/sync",
            "T-000001",
            1_764_723_600,
            "3f9c1d2e8a7b4c6d",
            body.as_bytes(),
        );
        assert_eq!(
            encode_public_key(&key.verifying_key()),
            "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
        );
        assert_eq!(headers.signature, "32fGRzYpi2qrA4XTSd6+109q33vpTo4Sbyj3WssZPfKBLpHXOfT3teUejUO2S55ihLiNKPwJbWLWhvoWsRCxBQ==");
    }

    #[test]
    fn a_signature_verifies_only_for_its_own_request() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let headers = sign(&key, "POST", "/v1/sync", "T-000001", 10, "nonce", b"{}");
        let good = signing_string("POST", "/v1/sync", "T-000001", 10, "nonce", b"{}");
        let other_body = signing_string("POST", "/v1/sync", "T-000001", 10, "nonce", b"{ }");
        let other_time = signing_string("POST", "/v1/sync", "T-000001", 11, "nonce", b"{}");
        assert!(verify(&key.verifying_key(), &good, &headers.signature));
        assert!(!verify(
            &key.verifying_key(),
            &other_body,
            &headers.signature
        ));
        assert!(!verify(
            &key.verifying_key(),
            &other_time,
            &headers.signature
        ));
        assert!(!verify(&key.verifying_key(), &good, "not base64"));
    }

    #[test]
    fn public_keys_parse_from_base64_and_hex() {
        let key = SigningKey::from_bytes(&[9; 32]).verifying_key();
        let b64 = encode_public_key(&key);
        let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_public_key(&b64), Some(key));
        assert_eq!(parse_public_key(&hex), Some(key));
        assert_eq!(parse_public_key("AAAA"), None);
    }

    #[test]
    fn nonces_have_a_shape() {
        assert!(nonce_is_valid("abcdefgh-_123456"));
        assert!(!nonce_is_valid("short"));
        assert!(!nonce_is_valid("has space in it 123"));
    }
}
