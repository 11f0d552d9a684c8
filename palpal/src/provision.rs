//! `palpal provision`: makes the terminal's Ed25519 key, enrolls it with the central server
//! using a one-time code, and stores the identity in the terminal's database
//! (`terminal_sync::provision`, as the app's setup screen does).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use sync_protocol::enrollment::EnrollmentOffer;
use terminal_store::Store;
use terminal_sync::provision::{ProvisionError, Provisioning};

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
    let outcome = provision(args);
    let identity =
        match outcome {
            Ok(identity) => identity,
            Err(ProvisionError::NoServer) if args.offer.is_some() => return Err(BadInput(
                "이 QR 코드에는 서버 주소가 없습니다. --server 로 주세요. / The QR code names no \
                 server: give --server."
                    .to_owned(),
            )
            .into()),
            Err(e) if e.is_bad_input() => return Err(BadInput(e.to_string()).into()),
            Err(e) => return Err(e.into()),
        };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "등록되었습니다 / provisioned\nterminal: {}\nsite: {}\nrole: {}\nserver: {}",
        identity.terminal_id, identity.site, identity.role, identity.server_url
    )?;
    Ok(())
}

fn provision(args: &Args) -> Result<terminal_store::TerminalIdentity, ProvisionError> {
    let offer = match args.offer.as_deref() {
        None => None,
        Some(text) => Some(EnrollmentOffer::parse(text).ok_or(ProvisionError::NotAnOffer)?),
    };
    let server = args
        .server
        .clone()
        .or_else(|| offer.as_ref().and_then(|o| o.server.clone()));
    let server_key = args
        .server_key
        .clone()
        .or_else(|| offer.as_ref().and_then(|o| o.server_key.clone()));
    let code = args
        .code
        .clone()
        .or_else(|| offer.as_ref().map(|o| o.code.clone()))
        .unwrap_or_default();
    let provisioning = Provisioning::new(server.as_deref(), server_key.as_deref(), &code)?;
    let store = Store::open(&args.db).map_err(ProvisionError::Local)?;
    terminal_sync::provision::provision(
        &store,
        &provisioning,
        &args.name,
        Duration::from_secs(30),
        chrono::Utc::now().fixed_offset(),
    )
}
