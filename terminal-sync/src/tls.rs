//! How a terminal reaches its server: over TLS to a server that proves it holds the key pinned
//! at provisioning ([`ServerKey`]), whatever certificate it shows and whoever signed it; in
//! plain HTTP only to a loopback address (a server on the same machine: tests, a demo).

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sync_protocol::server_key::ServerKey;

/// Why a server address is not one a terminal may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressRefusal {
    /// Plain HTTP to an address that is not this machine's.
    PlainOverNetwork,
    /// HTTPS without a pinned server key.
    NoServerKey,
    /// Neither `http://` nor `https://`.
    Scheme,
}

impl AddressRefusal {
    /// What to tell the operator, in Korean.
    pub fn ko(&self) -> &'static str {
        match self {
            AddressRefusal::PlainOverNetwork => {
                "암호화되지 않은 http:// 주소는 이 컴퓨터(127.0.0.1, localhost)에만 쓸 수 있습니다. \
                 https:// 주소와 서버 키로 등록해 주세요"
            }
            AddressRefusal::NoServerKey => {
                "https:// 서버에는 서버 키(sha256:...)가 필요합니다. 관리자가 단말기 등록 코드와 함께 준 \
                 서버 키를 입력해 주세요"
            }
            AddressRefusal::Scheme => "서버 주소는 https:// 로 시작해야 합니다",
        }
    }

    /// What to tell the operator, in English.
    pub fn en(&self) -> &'static str {
        match self {
            AddressRefusal::PlainOverNetwork => {
                "a plain http:// address may only be this machine's (127.0.0.1, localhost); \
                 provision with the https:// address and the server key"
            }
            AddressRefusal::NoServerKey => {
                "an https:// server needs its server key (sha256:...); enter the server key the \
                 operator gave with the enrollment code"
            }
            AddressRefusal::Scheme => "the server address must start with https://",
        }
    }
}

impl std::fmt::Display for AddressRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.ko(), self.en())
    }
}

/// Whether `host` (as in a URL) is this machine.
fn loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks a server address against the key pinned for it: `https://` needs one, `http://`
/// is taken only for a loopback host.
pub fn check_address(base: &str, key: Option<ServerKey>) -> Result<(), AddressRefusal> {
    let (scheme, rest) = base.split_once("://").ok_or(AddressRefusal::Scheme)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.rfind(':') {
        Some(colon) if !authority[colon..].contains(']') => &authority[..colon],
        _ => authority,
    };
    match (scheme.to_ascii_lowercase().as_str(), key) {
        ("https", Some(_)) => Ok(()),
        ("https", None) => Err(AddressRefusal::NoServerKey),
        ("http", _) if loopback(host) => Ok(()),
        ("http", _) => Err(AddressRefusal::PlainOverNetwork),
        _ => Err(AddressRefusal::Scheme),
    }
}

/// Takes a server whose certificate carries the pinned key, and checks that it holds it (its
/// handshake signature), as TLS does; it trusts no certificate authority. The key of a
/// server that showed another is kept for the message the terminal shows.
#[derive(Debug)]
pub struct PinnedKey {
    /// `None`: no server is taken.
    key: Option<ServerKey>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    /// The key a server showed instead of the pinned one (`unreadable` for a certificate
    /// that is not X.509).
    pub refused: Mutex<Option<String>>,
}

impl PinnedKey {
    /// A verifier for `key`; with none, every server is refused.
    pub fn new(key: Option<ServerKey>) -> PinnedKey {
        PinnedKey {
            key,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            refused: Mutex::new(None),
        }
    }
}

impl ServerCertVerifier for PinnedKey {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match ServerKey::of_certificate(end_entity) {
            Some(shown) if Some(shown) == self.key => Ok(ServerCertVerified::assertion()),
            shown => {
                *self.refused.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(shown.map_or_else(|| "unreadable".to_owned(), |k| k.to_string()));
                Err(rustls::Error::General(
                    "the server's key is not the one pinned at provisioning".to_owned(),
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS configuration of a terminal pinned to `verifier`'s key.
pub fn client_config(verifier: Arc<PinnedKey>) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .dangerous()
    .with_custom_certificate_verifier(verifier)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_this_machine_and_https_only_with_a_key() {
        let key = Some(ServerKey([1; 32]));
        let check = |base: &str, key| check_address(base, key).err();
        assert_eq!(check("http://127.0.0.1:8088", None), None);
        assert_eq!(check("http://localhost:8088/", None), None);
        assert_eq!(check("http://[::1]:8088", None), None);
        assert_eq!(check("http://127.9.9.9", None), None);
        assert_eq!(check("https://central.example:443", key), None);
        assert_eq!(check("HTTPS://10.0.0.5", key), None);
        assert_eq!(
            check("http://10.0.0.5:8088", key),
            Some(AddressRefusal::PlainOverNetwork)
        );
        assert_eq!(
            check("http://127.0.0.1.evil.example", None),
            Some(AddressRefusal::PlainOverNetwork)
        );
        assert_eq!(
            check("http://localhost.evil.example:80", None),
            Some(AddressRefusal::PlainOverNetwork)
        );
        assert_eq!(
            check("https://central.example", None),
            Some(AddressRefusal::NoServerKey)
        );
        assert_eq!(check("ftp://x", key), Some(AddressRefusal::Scheme));
        assert_eq!(check("127.0.0.1:8088", None), Some(AddressRefusal::Scheme));
        for refusal in [
            AddressRefusal::PlainOverNetwork,
            AddressRefusal::NoServerKey,
            AddressRefusal::Scheme,
        ] {
            assert!(refusal.to_string().contains(" / "));
        }
    }
}
