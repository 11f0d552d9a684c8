//! The server's key as a terminal pins it: the SHA-256 of the server certificate's
//! SubjectPublicKeyInfo, written `sha256:` and standard base64 (as HTTP public-key pinning
//! wrote it). `palpal-central terminal add` prints it with the one-time code and
//! `palpal provision` keeps it; from then on the terminal talks only to a server that proves
//! it holds that key, whatever certificate authorities say. The certificate may be renewed
//! with the same key.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// The pinned key: SHA-256 of a SubjectPublicKeyInfo.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerKey(pub [u8; 32]);

const PREFIX: &str = "sha256:";

impl ServerKey {
    /// The key of a DER certificate; `None` when the bytes are not an X.509 certificate.
    pub fn of_certificate(der: &[u8]) -> Option<ServerKey> {
        spki(der).map(|spki| ServerKey(Sha256::digest(spki).into()))
    }

    /// Reads `sha256:<base64>`.
    pub fn parse(text: &str) -> Option<ServerKey> {
        let encoded = text.trim().strip_prefix(PREFIX)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        Some(ServerKey(bytes.try_into().ok()?))
    }
}

impl fmt::Display for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One DER element: its tag, the whole element, its contents, and the bytes after it.
type Element<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// The DER element at the start of `bytes`.
fn element(bytes: &[u8]) -> Option<Element<'_>> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return None;
    }
    let header = bytes.len() - rest.len();
    Some((
        tag,
        &bytes[..header + length],
        &rest[..length],
        &rest[length..],
    ))
}

/// The SubjectPublicKeyInfo element of a DER certificate:
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }`.
fn spki(der: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    let (tag, _, certificate, _) = element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, _, mut fields, _) = element(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    // An explicit version comes first when present.
    if fields.first() == Some(&0xa0) {
        fields = element(fields)?.3;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        fields = element(fields)?.3;
    }
    let (tag, whole, _, _) = element(fields)?;
    (tag == SEQUENCE).then_some(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_and_nonsense_is_not_a_certificate() {
        let key = ServerKey([7; 32]);
        assert_eq!(ServerKey::parse(&key.to_string()), Some(key));
        assert_eq!(
            key.to_string(),
            "sha256:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="
        );
        for bad in ["", "sha256:", "sha1:AAAA", "sha256:AAAA", "BwcH"] {
            assert_eq!(ServerKey::parse(bad), None, "{bad:?}");
        }
        assert_eq!(ServerKey::of_certificate(b""), None);
        assert_eq!(
            ServerKey::of_certificate(&[0x30, 0x03, 0x02, 0x01, 0x01]),
            None
        );
        assert_eq!(
            ServerKey::of_certificate(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            None
        );
    }

    /// A certificate made by hand: the key is the hash of exactly its SubjectPublicKeyInfo.
    #[test]
    fn the_key_is_the_hash_of_the_subject_public_key_info() {
        let seq = |inner: &[u8]| {
            let mut out = vec![0x30, u8::try_from(inner.len()).unwrap()];
            out.extend_from_slice(inner);
            out
        };
        let spki = seq(&[
            0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x03, 0x00, 0xaa, 0xbb,
        ]);
        let mut tbs = vec![0xa0, 0x03, 0x02, 0x01, 0x02]; // version 3
        tbs.extend_from_slice(&[0x02, 0x01, 0x01]); // serial
        tbs.extend_from_slice(&seq(&[0x06, 0x03, 0x2b, 0x65, 0x70])); // signature
        tbs.extend_from_slice(&seq(&[])); // issuer
        tbs.extend_from_slice(&seq(&[])); // validity
        tbs.extend_from_slice(&seq(&[])); // subject
        tbs.extend_from_slice(&spki);
        let mut certificate = seq(&tbs);
        certificate.extend_from_slice(&seq(&[0x06, 0x03, 0x2b, 0x65, 0x70]));
        certificate.extend_from_slice(&[0x03, 0x02, 0x00, 0x01]);
        let certificate = seq(&certificate);
        assert_eq!(
            ServerKey::of_certificate(&certificate),
            Some(ServerKey(Sha256::digest(&spki).into()))
        );
    }
}
