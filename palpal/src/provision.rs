//! `palpal provision`: makes the terminal's Ed25519 key, enrolls it with the central server
//! using a one-time code, and stores the identity in the terminal's database.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use sync_protocol::enrollment::EnrollmentOffer;
use sync_protocol::server_key::ServerKey;
use sync_protocol::signing;
use sync_protocol::wire::EnrollRequest;
use terminal_store::{Store, TerminalIdentity};
use terminal_sync::central::{Central, EnrollError};

use crate::BadInput;

/// Enroll this terminal with the central server
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The terminal's database file (created if missing)
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// The central server's address: https://... (with --server-key), or http:// to this
    /// machine only (such as http://127.0.0.1:8088). Several server processes: their
    /// addresses separated by commas; the terminal stays with one while it answers and moves
    /// to the next when it does not
    #[arg(long, value_name = "URL[,URL...]", required_unless_present = "offer")]
    server: Option<String>,
    /// The server's key, as `palpal-central terminal add --tls-cert` printed it with the code
    /// (`sha256:...`); the terminal talks only to a server that holds it
    #[arg(long, value_name = "KEY", conflicts_with = "offer")]
    server_key: Option<String>,
    /// The one-time enrollment code from `palpal-central terminal add`
    #[arg(long, required_unless_present = "offer", conflicts_with = "offer")]
    code: Option<String>,
    /// What the operator console's QR code for a new terminal holds (its text, as a scanner
    /// reads it): the code and, when the console knows them, the server's address and key.
    /// `--server` is still needed when the offer names no server
    #[arg(long, value_name = "TEXT")]
    offer: Option<String>,
    /// A name for people, such as "성북구 보건소 1번 키오스크"
    #[arg(long, default_value = "팔팔 단말기")]
    name: String,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let offer = match args.offer.as_deref() {
        None => None,
        Some(text) => Some(EnrollmentOffer::parse(text).ok_or_else(|| {
            BadInput(
                "등록 QR 코드의 내용이 아닙니다. 운영 콘솔의 단말기 화면에서 새로 만든 코드를 \
                 다시 읽어 주세요. / This is not what a terminal's enrollment QR code holds; \
                 scan the code the operator console's Terminals page made again."
                    .to_owned(),
            )
        })?),
    };
    let server_arg = args
        .server
        .clone()
        .or_else(|| offer.as_ref().and_then(|o| o.server.clone()))
        .ok_or_else(|| {
            BadInput(
                "이 QR 코드에는 서버 주소가 없습니다. --server 로 주세요. / The QR code names no \
                 server: give --server."
                    .to_owned(),
            )
        })?;
    let code = args
        .code
        .clone()
        .or_else(|| offer.as_ref().map(|o| o.code.clone()))
        .unwrap_or_default();
    let server_key_arg = args
        .server_key
        .clone()
        .or_else(|| offer.as_ref().and_then(|o| o.server_key.clone()));
    let addresses = terminal_sync::central::addresses(&server_arg);
    if addresses.is_empty() {
        return Err(BadInput(
            "서버 주소를 주세요 (--server) / give the server's address (--server)".to_owned(),
        )
        .into());
    }
    for address in &addresses {
        if !(address.starts_with("http://") || address.starts_with("https://")) {
            return Err(BadInput(format!(
                "서버 주소는 http:// 또는 https://로 시작해야 합니다: {address:?} / \
                 the server address must start with http:// or https://"
            ))
            .into());
        }
    }
    let server = addresses.join(", ");
    let store = Store::open(&args.db)?;
    if let Some(identity) = store.identity()? {
        return Err(BadInput(format!(
            "이 단말기는 이미 {}(으)로 등록되어 있습니다 ({}). 다시 등록하려면 새 데이터베이스 \
             파일을 쓰세요. / This terminal is already provisioned as {} with {}; use a new \
             database file to provision again.",
            identity.terminal_id, identity.server_url, identity.terminal_id, identity.server_url
        ))
        .into());
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("키를 만들 난수를 얻지 못했습니다 / getting randomness for the key")?;
    let key = SigningKey::from_bytes(&seed);
    let server_key = match server_key_arg.as_deref().map(str::trim) {
        None => None,
        Some(text) => Some(ServerKey::parse(text).ok_or_else(|| {
            BadInput(format!(
                "서버 키는 관리자가 준 sha256:로 시작하는 값입니다: {text:?} / the server key is the \
                 sha256:... value the operator gave: {text:?}"
            ))
        })?),
    };
    for address in &addresses {
        if let Err(refusal) = terminal_sync::tls::check_address(address, server_key) {
            return Err(BadInput(format!("{address}: {refusal}")).into());
        }
    }
    let central = Central::new(&server, server_key, Duration::from_secs(30))?;
    let request = EnrollRequest {
        code: code.clone(),
        public_key: signing::encode_public_key(&key.verifying_key()),
        name: args.name.trim().to_owned(),
    };
    let enrolled = match central.enroll(&request) {
        Ok(enrolled) => enrolled,
        Err(EnrollError::Unreachable(_)) if central.refused_server_key().is_some() => {
            let shown = central.refused_server_key().unwrap_or_default();
            return Err(BadInput(format!(
                "{} 등록 코드는 아직 사용되지 않았습니다. / The code was not used.",
                central.wrong_key_message(&shown)
            ))
            .into());
        }
        Err(EnrollError::Unreachable(failure)) => anyhow::bail!(
            "중앙 서버({server})에 연결할 수 없습니다. 주소와 네트워크를 확인한 뒤 다시 시도해 \
             주세요. 등록 코드는 아직 사용되지 않았습니다. / Cannot reach the central server at \
             {server} ({failure:?}); check the address and the network, then try again. The code \
             was not used."
        ),
        Err(EnrollError::Refused { status, body }) if body.code == "bad_code" => {
            return Err(BadInput(format!(
                "{} / {} (HTTP {status})",
                body.message, body.message_en
            ))
            .into())
        }
        Err(EnrollError::Refused { status, body }) => anyhow::bail!(
            "중앙 서버가 등록을 거절했습니다 (HTTP {status} {}): {} / The central server refused \
             the enrollment: {}",
            body.code,
            body.message,
            body.message_en
        ),
    };
    let identity = TerminalIdentity {
        terminal_id: enrolled.terminal_id,
        site: enrolled.site,
        role: enrolled.role.as_str().to_owned(),
        name: enrolled.name,
        server_url: server,
        server_key: server_key.map(|k| k.to_string()),
        secret_key: seed,
        provisioned_at: chrono::Utc::now().fixed_offset(),
    };
    store.save_identity(&identity).context(
        "등록은 되었지만 단말기 정보를 저장하지 못했습니다. 관리자에게 새 코드를 받아 다시 등록해 \
         주세요. / Enrolled, but the identity could not be stored; get a new code and provision again",
    )?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "등록되었습니다 / provisioned\nterminal: {}\nsite: {}\nrole: {}\nserver: {}",
        identity.terminal_id, identity.site, identity.role, identity.server_url
    )?;
    Ok(())
}
