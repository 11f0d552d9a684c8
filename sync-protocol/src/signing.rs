//! Signing a request exactly as `docs/sync-api.yaml` ("Signing") describes, and checking it.
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
//! No IO and no clock: the caller passes the time and the nonce, so a terminal signs with it,
//! the server checks with it, and tests fix both.

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// The header that names the terminal, such as `T-000001`.
pub const TERMINAL_HEADER: &str = "x-palpal-terminal";
/// The header with the signing time in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-palpal-timestamp";
/// The header with the request's nonce: 16 to 64 characters of `A-Z a-z 0-9 - _`.
pub const NONCE_HEADER: &str = "x-palpal-nonce";
/// The header with the signature, standard base64 with padding.
pub const SIGNATURE_HEADER: &str = "x-palpal-signature";
/// The first line of the signing string.
pub const SIGNATURE_VERSION: &str = "PALPAL-SIG-V1";

/// The lowercase hex SHA-256 of a request body.
pub fn body_digest(body: &[u8]) -> String {
    hex(&Sha256::digest(body))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// The exact text a terminal signs, lines joined by `\n` with no newline at the end.
pub fn signing_string(
    method: &str,
    path: &str,
    terminal: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    signing_string_with_digest(method, path, terminal, timestamp, nonce, &body_digest(body))
}

/// [`signing_string`] for a body whose [`body_digest`] is already known (a batch sent again
/// after a refusal has the same bytes).
pub fn signing_string_with_digest(
    method: &str,
    path: &str,
    terminal: &str,
    timestamp: i64,
    nonce: &str,
    digest: &str,
) -> String {
    format!(
        "{SIGNATURE_VERSION}\n{}\n{path}\n{terminal}\n{timestamp}\n{nonce}\n{digest}",
        method.to_ascii_uppercase(),
    )
}

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

/// Signs a request with the terminal's key. The caller picks the time and a fresh nonce.
pub fn sign(
    key: &SigningKey,
    method: &str,
    path: &str,
    terminal: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> SignedHeaders {
    sign_with_digest(
        key,
        method,
        path,
        terminal,
        timestamp,
        nonce,
        &body_digest(body),
    )
}

/// [`sign`] for a body whose [`body_digest`] is already known.
pub fn sign_with_digest(
    key: &SigningKey,
    method: &str,
    path: &str,
    terminal: &str,
    timestamp: i64,
    nonce: &str,
    digest: &str,
) -> SignedHeaders {
    let text = signing_string_with_digest(method, path, terminal, timestamp, nonce, digest);
    let signature = key.sign(text.as_bytes());
    SignedHeaders {
        terminal: terminal.to_owned(),
        timestamp,
        nonce: nonce.to_owned(),
        signature: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
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

/// A nonce from 16 random bytes the caller supplies: 32 lowercase hex characters.
pub fn nonce_from(random: [u8; 16]) -> String {
    hex(&random)
}

/// The public key as the enrollment request sends it: standard base64 of the 32 bytes.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
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

    /// The worked example in `docs/sync-api.yaml`; change both together.
    #[test]
    fn the_documented_example_signs_as_documented() {
        let seed: [u8; 32] = std::array::from_fn(|i| u8::try_from(i).unwrap());
        let key = SigningKey::from_bytes(&seed);
        let body = r#"{"operations":[{"op_id":"op-1","kind":"enrollment","payload":{"name":"김영희","birth_date":"1950-04-01","phone":"010-1234-5678"}}]}"#;
        assert_eq!(
            body_digest(body.as_bytes()),
            "b4a701ca7e5536d7cf265aa56135bade270f353847b34eb08f0a8629f7842416"
        );
        assert_eq!(
            signing_string(
                "post",
                "/v1/sync",
                "T-000001",
                1_764_723_600,
                "3f9c1d2e8a7b4c6d",
                body.as_bytes()
            ),
            "PALPAL-SIG-V1\nPOST\n/v1/sync\nT-000001\n1764723600\n3f9c1d2e8a7b4c6d\n\
             b4a701ca7e5536d7cf265aa56135bade270f353847b34eb08f0a8629f7842416"
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
        assert_eq!(
            headers.pairs(),
            [
                (TERMINAL_HEADER, "T-000001".to_owned()),
                (TIMESTAMP_HEADER, "1764723600".to_owned()),
                (NONCE_HEADER, "3f9c1d2e8a7b4c6d".to_owned()),
                (SIGNATURE_HEADER, "32fGRzYpi2qrA4XTSd6+109q33vpTo4Sbyj3WssZPfKBLpHXOfT3teUejUO2S55ihLiNKPwJbWLWhvoWsRCxBQ==".to_owned()),
            ]
        );
    }

    #[test]
    fn a_signature_verifies_only_for_its_own_request() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let headers = sign(&key, "POST", "/v1/sync", "T-000001", 10, "nonce", b"{}");
        let good = signing_string("POST", "/v1/sync", "T-000001", 10, "nonce", b"{}");
        let other_body = signing_string("POST", "/v1/sync", "T-000001", 10, "nonce", b"{ }");
        let other_time = signing_string("POST", "/v1/sync", "T-000001", 11, "nonce", b"{}");
        let other_key = SigningKey::from_bytes(&[8; 32]).verifying_key();
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
        assert!(!verify(&other_key, &good, &headers.signature));
        assert!(!verify(&key.verifying_key(), &good, "not base64"));
    }

    #[test]
    fn public_keys_parse_from_base64_and_hex() {
        let key = SigningKey::from_bytes(&[9; 32]).verifying_key();
        let b64 = encode_public_key(&key);
        assert_eq!(parse_public_key(&b64), Some(key));
        assert_eq!(parse_public_key(&hex(key.as_bytes())), Some(key));
        assert_eq!(parse_public_key("AAAA"), None);
    }

    #[test]
    fn nonces_have_a_shape() {
        assert_eq!(nonce_from([0xab; 16]), "ab".repeat(16));
        assert!(nonce_is_valid(&nonce_from([0; 16])));
        assert!(nonce_is_valid("abcdefgh-_123456"));
        assert!(!nonce_is_valid("short"));
        assert!(!nonce_is_valid("has space in it 123"));
    }
}
