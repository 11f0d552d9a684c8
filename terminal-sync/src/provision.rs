//! Provisioning: a terminal makes its Ed25519 key, enrolls it with the central server using a
//! one-time code, and stores the identity in its database. `palpal provision` and the app's
//! setup screen both go through here, with the code and the server typed or read from the
//! operator console's enrollment QR code ([`EnrollmentOffer`]).
//!
//! It is done in three steps so that a caller holding other locks may do the network's part
//! without its database: [`check_unprovisioned`], [`Provisioning::enroll`] (the one request,
//! nothing stored), [`save`]. [`provision`] does the three in a row. Nothing is stored unless
//! the server enrolled the terminal; a refused or unanswered request leaves the code unused.

use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use ed25519_dalek::SigningKey;
use sync_protocol::enrollment::EnrollmentOffer;
use sync_protocol::server_key::ServerKey;
use sync_protocol::signing;
use sync_protocol::wire::EnrollRequest;
use terminal_store::{Store, TerminalIdentity};

use crate::central::{Central, EnrollError};
use crate::tls::AddressRefusal;

/// Why a terminal was not provisioned. Nothing was stored, and the code is unused unless the
/// error says otherwise ([`ProvisionError::NotSaved`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum ProvisionError {
    /// The text read is not what an enrollment QR code holds.
    NotAnOffer,
    /// Neither the offer nor the caller names a server.
    NoServer,
    /// A server address this terminal may not use.
    BadAddress {
        /// The address.
        address: String,
        /// Why.
        refusal: AddressRefusal,
    },
    /// The server key is not a `sha256:...` value.
    BadServerKey(String),
    /// The terminal is provisioned already.
    AlreadyProvisioned {
        /// Its id.
        terminal_id: String,
        /// Its server.
        server_url: String,
    },
    /// A server showed another key than the one pinned: someone may be in between.
    WrongServerKey {
        /// The server's address.
        server: String,
        /// The key it showed.
        shown: String,
    },
    /// No server answered.
    Unreachable {
        /// The server's addresses.
        server: String,
        /// What failed, for the log.
        detail: String,
    },
    /// The server does not know the code, or it was used already.
    BadCode {
        /// The server's message, Korean.
        message: String,
        /// The server's message, English.
        message_en: String,
    },
    /// The server refused the enrollment for another reason.
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's reason code.
        code: String,
        /// The server's message, Korean.
        message: String,
        /// The server's message, English.
        message_en: String,
    },
    /// Enrolled, but the identity could not be stored: the code is used up.
    NotSaved(anyhow::Error),
    /// The terminal's own failure before anything was sent (its database, its randomness).
    Local(anyhow::Error),
}

impl ProvisionError {
    /// A stable reason code from a closed set.
    pub fn code(&self) -> &'static str {
        match self {
            ProvisionError::NotAnOffer => "not_an_offer",
            ProvisionError::NoServer => "no_server",
            ProvisionError::BadAddress { .. } => "bad_address",
            ProvisionError::BadServerKey(_) => "bad_server_key",
            ProvisionError::AlreadyProvisioned { .. } => "already_provisioned",
            ProvisionError::WrongServerKey { .. } => "wrong_server_key",
            ProvisionError::Unreachable { .. } => "server_unreachable",
            ProvisionError::BadCode { .. } => "bad_code",
            ProvisionError::Refused { .. } => "enrollment_refused",
            ProvisionError::NotSaved(_) => "identity_not_saved",
            ProvisionError::Local(_) => "local_failure",
        }
    }

    /// Every code [`ProvisionError::code`] returns.
    pub const CODES: [&'static str; 11] = [
        "not_an_offer",
        "no_server",
        "bad_address",
        "bad_server_key",
        "already_provisioned",
        "wrong_server_key",
        "server_unreachable",
        "bad_code",
        "enrollment_refused",
        "identity_not_saved",
        "local_failure",
    ];

    /// Whether the input was wrong (rather than the network, the server or the terminal).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            ProvisionError::NotAnOffer
                | ProvisionError::NoServer
                | ProvisionError::BadAddress { .. }
                | ProvisionError::BadServerKey(_)
                | ProvisionError::AlreadyProvisioned { .. }
                | ProvisionError::WrongServerKey { .. }
                | ProvisionError::BadCode { .. }
        )
    }

    /// What to tell the operator, in Korean, saying what to do next.
    pub fn ko(&self) -> String {
        match self {
            ProvisionError::NotAnOffer => "등록 QR 코드의 내용이 아닙니다. 운영 콘솔의 단말기 화면에서 \
                 새로 만든 코드를 다시 읽어 주세요."
                .to_owned(),
            ProvisionError::NoServer => "이 QR 코드에는 서버 주소가 없습니다. 운영 콘솔이 서버 주소를 \
                 알도록 설정한 뒤(serve --terminal-url) 새 코드를 만들거나, 서버 주소를 함께 주세요."
                .to_owned(),
            ProvisionError::BadAddress { address, refusal } => {
                format!("{address}: {}.", refusal.ko())
            }
            ProvisionError::BadServerKey(text) => format!(
                "서버 키는 관리자가 준 sha256:로 시작하는 값입니다: {text:?}. 다시 확인해 주세요."
            ),
            ProvisionError::AlreadyProvisioned {
                terminal_id,
                server_url,
            } => format!(
                "이 단말기는 이미 {terminal_id}(으)로 등록되어 있습니다 ({server_url}). 다시 \
                 등록하려면 새 데이터베이스 파일을 쓰세요."
            ),
            ProvisionError::WrongServerKey { server, shown } => format!(
                "서버({server})가 등록 코드와 함께 받은 키와 다른 키({shown})를 보였습니다. 중간에서 \
                 가로채는 서버일 수 있어 연결하지 않았습니다. 등록 코드는 아직 사용되지 않았습니다. \
                 관리자에게 알려 주세요."
            ),
            ProvisionError::Unreachable { server, .. } => format!(
                "중앙 서버({server})에 연결할 수 없습니다. 주소와 네트워크를 확인한 뒤 다시 시도해 \
                 주세요. 등록 코드는 아직 사용되지 않았습니다."
            ),
            ProvisionError::BadCode { message, .. } => message.clone(),
            ProvisionError::Refused { code, message, .. } => format!(
                "중앙 서버가 등록을 거절했습니다 ({code}): {message}"
            ),
            ProvisionError::NotSaved(_) => "등록은 되었지만 단말기 정보를 저장하지 못했습니다. \
                 관리자에게 새 코드를 받아 다시 등록해 주세요."
                .to_owned(),
            ProvisionError::Local(_) => "단말기에서 등록을 준비하지 못했습니다. 아무것도 보내지 \
                 않았고 등록 코드는 아직 사용되지 않았습니다. 다시 시도하고, 계속되면 관리자에게 \
                 연락하세요."
                .to_owned(),
        }
    }

    /// What to tell the operator, in English, saying what to do next.
    pub fn en(&self) -> String {
        match self {
            ProvisionError::NotAnOffer => {
                "This is not what a terminal's enrollment QR code holds; \
                 scan the code the operator console's Terminals page made again."
                    .to_owned()
            }
            ProvisionError::NoServer => "The QR code names no server: have the console know the \
                 server's address (serve --terminal-url) and make a new code, or give the server's \
                 address with it."
                .to_owned(),
            ProvisionError::BadAddress { address, refusal } => {
                format!("{address}: {}.", refusal.en())
            }
            ProvisionError::BadServerKey(text) => format!(
                "The server key is the sha256:... value the operator gave: {text:?}. Check it."
            ),
            ProvisionError::AlreadyProvisioned {
                terminal_id,
                server_url,
            } => format!(
                "This terminal is already provisioned as {terminal_id} with {server_url}; use a \
                 new database file to provision again."
            ),
            ProvisionError::WrongServerKey { server, shown } => format!(
                "The server at {server} showed another key ({shown}) than the one given with the \
                 code; it may be someone in between, so the terminal did not talk to it. The code \
                 was not used. Tell the operator."
            ),
            ProvisionError::Unreachable { server, .. } => format!(
                "Cannot reach the central server at {server}; check the address and the network, \
                 then try again. The code was not used."
            ),
            ProvisionError::BadCode { message_en, .. } => message_en.clone(),
            ProvisionError::Refused {
                code, message_en, ..
            } => format!("The central server refused the enrollment ({code}): {message_en}"),
            ProvisionError::NotSaved(_) => "Enrolled, but the identity could not be stored; get \
                 a new code and provision again."
                .to_owned(),
            ProvisionError::Local(_) => "The terminal could not prepare the enrollment. Nothing \
                 was sent and the code is unused; try again, and call the administrator if it \
                 goes on."
                .to_owned(),
        }
    }
}

impl std::fmt::Display for ProvisionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.ko(), self.en())?;
        match self {
            ProvisionError::Unreachable { detail, .. } => write!(f, " ({detail})"),
            ProvisionError::NotSaved(e) | ProvisionError::Local(e) => write!(f, " ({e:#})"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for ProvisionError {}

/// What a terminal enrolls with: the server's addresses, the key it pins and the code,
/// checked before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioning {
    /// The server's addresses, joined as the identity stores them (`a, b`).
    pub server: String,
    /// The key the terminal pins, if any (`http://` to this machine needs none).
    pub server_key: Option<ServerKey>,
    /// The one-time enrollment code.
    pub code: String,
}

impl Provisioning {
    /// From the text an enrollment QR code holds.
    pub fn from_offer(text: &str) -> Result<Provisioning, ProvisionError> {
        let offer = EnrollmentOffer::parse(text).ok_or(ProvisionError::NotAnOffer)?;
        Provisioning::new(
            offer.server.as_deref(),
            offer.server_key.as_deref(),
            &offer.code,
        )
    }

    /// From a server (addresses separated by commas), a server key and a code, as typed.
    pub fn new(
        server: Option<&str>,
        server_key: Option<&str>,
        code: &str,
    ) -> Result<Provisioning, ProvisionError> {
        let addresses = crate::central::addresses(server.unwrap_or_default());
        if addresses.is_empty() {
            return Err(ProvisionError::NoServer);
        }
        let server_key = match server_key.map(str::trim) {
            None => None,
            Some(text) => Some(
                ServerKey::parse(text)
                    .ok_or_else(|| ProvisionError::BadServerKey(text.to_owned()))?,
            ),
        };
        for address in &addresses {
            crate::tls::check_address(address, server_key).map_err(|refusal| {
                ProvisionError::BadAddress {
                    address: address.clone(),
                    refusal,
                }
            })?;
        }
        Ok(Provisioning {
            server: addresses.join(", "),
            server_key,
            code: code.trim().to_owned(),
        })
    }

    /// Enrolls a new key under `name` with the server: one request, nothing stored. The
    /// identity returned is stored with [`save`].
    pub fn enroll(
        &self,
        name: &str,
        timeout: Duration,
        now: DateTime<FixedOffset>,
    ) -> Result<TerminalIdentity, ProvisionError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| {
            ProvisionError::Local(anyhow::anyhow!("getting randomness for the key: {e}"))
        })?;
        let key = SigningKey::from_bytes(&seed);
        let central =
            Central::new(&self.server, self.server_key, timeout).map_err(ProvisionError::Local)?;
        let request = EnrollRequest {
            code: self.code.clone(),
            public_key: signing::encode_public_key(&key.verifying_key()),
            name: name.trim().to_owned(),
        };
        let enrolled = match central.enroll(&request) {
            Ok(enrolled) => enrolled,
            Err(EnrollError::Unreachable(failure)) => {
                return Err(match central.refused_server_key() {
                    Some(shown) => ProvisionError::WrongServerKey {
                        server: central.base().to_owned(),
                        shown,
                    },
                    None => ProvisionError::Unreachable {
                        server: self.server.clone(),
                        detail: format!("{failure:?}"),
                    },
                })
            }
            Err(EnrollError::Refused { body, .. }) if body.code == "bad_code" => {
                return Err(ProvisionError::BadCode {
                    message: body.message,
                    message_en: body.message_en,
                })
            }
            Err(EnrollError::Refused { status, body }) => {
                return Err(ProvisionError::Refused {
                    status,
                    code: body.code,
                    message: body.message,
                    message_en: body.message_en,
                })
            }
        };
        Ok(TerminalIdentity {
            terminal_id: enrolled.terminal_id,
            site: enrolled.site,
            role: enrolled.role.as_str().to_owned(),
            name: enrolled.name,
            server_url: self.server.clone(),
            server_key: self.server_key.map(|k| k.to_string()),
            secret_key: seed,
            provisioned_at: now,
        })
    }
}

/// Refuses a terminal that is provisioned already.
pub fn check_unprovisioned(store: &Store) -> Result<(), ProvisionError> {
    match store.identity().map_err(ProvisionError::Local)? {
        None => Ok(()),
        Some(identity) => Err(ProvisionError::AlreadyProvisioned {
            terminal_id: identity.terminal_id,
            server_url: identity.server_url,
        }),
    }
}

/// Stores the identity [`Provisioning::enroll`] returned.
pub fn save(store: &Store, identity: &TerminalIdentity) -> Result<(), ProvisionError> {
    check_unprovisioned(store)?;
    store
        .save_identity(identity)
        .map_err(ProvisionError::NotSaved)
}

/// Checks, enrolls and stores: the terminal in `store` provisioned with `provisioning`.
pub fn provision(
    store: &Store,
    provisioning: &Provisioning,
    name: &str,
    timeout: Duration,
    now: DateTime<FixedOffset>,
) -> Result<TerminalIdentity, ProvisionError> {
    check_unprovisioned(store)?;
    let identity = provisioning.enroll(name, timeout, now)?;
    save(store, &identity)?;
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(server: Option<&str>, key: Option<&str>, expect: Result<&str, &str>) {
        let got = Provisioning::new(server, key, " CODE ");
        match (got, expect) {
            (Ok(p), Ok(server)) => {
                assert_eq!(p.server, server);
                assert_eq!(p.code, "CODE");
            }
            (Err(e), Err(code)) => assert_eq!(e.code(), code, "{e}"),
            (got, expect) => panic!("{server:?} {key:?}: {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn what_is_checked_before_anything_is_sent() {
        let key = "sha256:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
        check(
            Some("http://127.0.0.1:8088/"),
            None,
            Ok("http://127.0.0.1:8088"),
        );
        check(
            Some("https://a.example:8443,https://b.example:8443"),
            Some(key),
            Ok("https://a.example:8443, https://b.example:8443"),
        );
        check(None, None, Err("no_server"));
        check(Some(" , "), None, Err("no_server"));
        check(Some("https://a.example"), None, Err("bad_address"));
        check(Some("http://192.0.2.10:8088"), None, Err("bad_address"));
        check(Some("ftp://a.example"), Some(key), Err("bad_address"));
        check(
            Some("https://a.example"),
            Some("md5:xx"),
            Err("bad_server_key"),
        );
        assert_eq!(
            Provisioning::from_offer("PP1:ABCDEF").unwrap_err().code(),
            "not_an_offer"
        );
        let offer = EnrollmentOffer::new("C", None, None).to_text();
        assert_eq!(
            Provisioning::from_offer(&offer).unwrap_err().code(),
            "no_server"
        );
    }

    #[test]
    fn every_error_has_its_own_code_and_both_languages() {
        let errors = [
            ProvisionError::NotAnOffer,
            ProvisionError::NoServer,
            ProvisionError::BadAddress {
                address: "x".into(),
                refusal: AddressRefusal::Scheme,
            },
            ProvisionError::BadServerKey("x".into()),
            ProvisionError::AlreadyProvisioned {
                terminal_id: "T-1".into(),
                server_url: "x".into(),
            },
            ProvisionError::WrongServerKey {
                server: "x".into(),
                shown: "y".into(),
            },
            ProvisionError::Unreachable {
                server: "x".into(),
                detail: "y".into(),
            },
            ProvisionError::BadCode {
                message: "코드".into(),
                message_en: "code".into(),
            },
            ProvisionError::Refused {
                status: 403,
                code: "x".into(),
                message: "거절".into(),
                message_en: "refused".into(),
            },
            ProvisionError::NotSaved(anyhow::anyhow!("x")),
            ProvisionError::Local(anyhow::anyhow!("x")),
        ];
        let codes: Vec<_> = errors.iter().map(ProvisionError::code).collect();
        assert_eq!(codes, ProvisionError::CODES);
        for e in &errors {
            assert!(!e.ko().is_empty() && !e.en().is_empty(), "{e:?}");
            assert_ne!(e.ko(), e.en(), "{e:?}");
        }
    }
}
