//! Signing a request exactly as `docs/sync-api.yaml` ("Signing") describes: Ed25519 over a
//! seven-line signing string that binds the method, the path, the terminal, the time, the
//! nonce and the SHA-256 of the body bytes. No IO and no clock: the caller passes the time
//! and the nonce.

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

/// Signs a request; returns the four headers as (name, value) pairs.
pub fn sign(
    key: &SigningKey,
    method: &str,
    path: &str,
    terminal: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> [(&'static str, String); 4] {
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
) -> [(&'static str, String); 4] {
    let text = signing_string_with_digest(method, path, terminal, timestamp, nonce, digest);
    let signature = key.sign(text.as_bytes());
    [
        (TERMINAL_HEADER, terminal.to_owned()),
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (NONCE_HEADER, nonce.to_owned()),
        (
            SIGNATURE_HEADER,
            base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        ),
    ]
}

/// The public key as the enrollment request sends it: standard base64 of the 32 bytes.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
}

/// A nonce from 16 random bytes the caller supplies: 32 lowercase hex characters.
pub fn nonce_from(random: [u8; 16]) -> String {
    hex(&random)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example in `docs/sync-api.yaml`.
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
            headers,
            [
                (TERMINAL_HEADER, "T-000001".to_owned()),
                (TIMESTAMP_HEADER, "1764723600".to_owned()),
                (NONCE_HEADER, "3f9c1d2e8a7b4c6d".to_owned()),
                (SIGNATURE_HEADER, "32fGRzYpi2qrA4XTSd6+109q33vpTo4Sbyj3WssZPfKBLpHXOfT3teUejUO2S55ihLiNKPwJbWLWhvoWsRCxBQ==".to_owned()),
            ]
        );
    }

    #[test]
    fn nonces_are_32_hex_characters() {
        assert_eq!(nonce_from([0xab; 16]), "ab".repeat(16));
    }
}
