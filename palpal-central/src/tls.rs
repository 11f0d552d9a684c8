//! TLS for the terminals' listener (`serve --tls-cert --tls-key`): rustls with the ring
//! provider, HTTP/1.1. Terminals do not trust certificate authorities for this server: they
//! pin its key ([`sync_protocol::server_key::ServerKey`]) at provisioning, so the certificate
//! may be self-signed ([`generate`]); `terminal add --tls-cert` prints the key to pin.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sync_protocol::server_key::ServerKey;

/// Makes ring the process's TLS provider, for HTTP clients built without a TLS configuration
/// of their own (tests, benches and the replay talk plain HTTP on loopback; their HTTP client
/// still wants a provider). Harmless when one is already set.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The certificates of a PEM file, leaf first.
fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .with_context(|| {
            format!("인증서 파일을 읽지 못했습니다 / reading the certificate file {path:?}")
        })?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!("인증서 파일이 PEM이 아닙니다 / the certificate file {path:?} is not PEM")
        })?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "인증서 파일에 인증서가 없습니다 / there is no certificate in {path:?}"
    );
    Ok(certificates)
}

/// The server configuration from a certificate chain and its private key (PEM files).
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain = certificates(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!("개인 키 파일을 읽지 못했습니다 / reading the private key file {key:?}")
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("choosing TLS versions")?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context(
        "인증서와 개인 키가 맞지 않습니다 / the certificate and the private key do not match",
    )?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The key terminals pin for the certificate in `cert` (its leaf's).
pub fn server_key_of(cert: &Path) -> anyhow::Result<ServerKey> {
    let chain = certificates(cert)?;
    ServerKey::of_certificate(&chain[0]).with_context(|| {
        format!("인증서를 해석하지 못했습니다 / the certificate in {cert:?} could not be read")
    })
}

/// A self-signed certificate for `names` (host names or IP addresses) and its private key,
/// both PEM: for a pilot, the demo and tests. Terminals pin the key, so no authority signs it.
pub fn generate(names: &[String]) -> anyhow::Result<(String, String)> {
    let certified = rcgen::generate_simple_self_signed(names.to_vec())
        .context("인증서를 만들지 못했습니다 / making the certificate")?;
    Ok((certified.cert.pem(), certified.signing_key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_serves_and_gives_its_key() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (cert, key) = generate(&["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        std::fs::write(dir.path().join("cert.pem"), &cert)?;
        std::fs::write(dir.path().join("key.pem"), &key)?;
        server_config(&dir.path().join("cert.pem"), &dir.path().join("key.pem"))?;
        let pinned = server_key_of(&dir.path().join("cert.pem"))?;
        assert_eq!(ServerKey::parse(&pinned.to_string()), Some(pinned));
        // Another certificate has another key; a key that is not the certificate's is refused.
        let (other, other_key) = generate(&["127.0.0.1".to_owned()])?;
        std::fs::write(dir.path().join("other.pem"), &other)?;
        std::fs::write(dir.path().join("other-key.pem"), &other_key)?;
        assert_ne!(server_key_of(&dir.path().join("other.pem"))?, pinned);
        assert!(server_config(
            &dir.path().join("cert.pem"),
            &dir.path().join("other-key.pem")
        )
        .is_err());
        assert!(server_key_of(&dir.path().join("key.pem")).is_err());
        Ok(())
    }
}
