//! The terminal's setup: a terminal whose database holds no identity reads the operator
//! console's enrollment QR code (from the camera, a keyboard-wedge scanner or typed), shows
//! what it will do, and provisions itself with it (`terminal_sync::provision`, the same path
//! as `palpal provision --offer`). A provisioned terminal refuses a second provisioning.

use std::time::Duration;

use serde::Serialize;
use terminal_sync::provision::{self, ProvisionError, Provisioning};

use crate::config::Role;
use crate::error::{CommandError, ErrorCode, Lang};
use crate::sync::BackgroundSync;
use crate::terminal::{AppState, Terminal};

/// How long the enrollment request waits for the server.
const ENROLL_TIMEOUT: Duration = Duration::from_secs(15);

/// What an enrollment offer will do, shown before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct OfferRead {
    /// The server's addresses the terminal will talk to.
    pub server: String,
    /// The server key it will pin (`sha256:...`); `null` for a server on this machine.
    pub server_key: Option<String>,
    /// The end of the one-time code, so that the operator can tell it from another.
    pub code_end: String,
}

/// The terminal as the server enrolled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct Provisioned {
    pub terminal_id: String,
    pub site: String,
    /// `kiosk` or `counter`, as the server knows the terminal.
    pub role: String,
    pub name: String,
    pub server: String,
    pub server_key: Option<String>,
    /// What to tell the operator when the server's site or role is not the configuration's
    /// (the terminal is provisioned all the same), in the terminal's language.
    pub warning: Option<String>,
}

/// The error of a refused provisioning: its own reason code, its message in `lang`.
fn refused(lang: Lang, error: &ProvisionError) -> CommandError {
    if matches!(
        error,
        ProvisionError::Local(_) | ProvisionError::NotSaved(_)
    ) {
        crate::error::log(&anyhow::anyhow!("provisioning: {error}"));
    }
    CommandError::new(
        ErrorCode::Refused(error.code()),
        lang,
        error.ko(),
        error.en(),
    )
}

fn unprovisioned(t: &Terminal, lang: Lang) -> Result<(), CommandError> {
    provision::check_unprovisioned(&*t.store()?).map_err(|e| refused(lang, &e))
}

/// Reads a scanned or typed enrollment offer and says what provisioning with it will do;
/// nothing is sent or stored.
pub fn read_enrollment_offer(state: &AppState, text: String) -> Result<OfferRead, CommandError> {
    let lang = state.lang();
    let t = state.terminal()?;
    unprovisioned(t, lang)?;
    let provisioning = Provisioning::from_offer(&text).map_err(|e| refused(lang, &e))?;
    Ok(offer_read(&provisioning))
}

fn offer_read(p: &Provisioning) -> OfferRead {
    let chars: Vec<char> = p.code.chars().collect();
    OfferRead {
        server: p.server.clone(),
        server_key: p.server_key.map(|k| k.to_string()),
        code_end: chars[chars.len().saturating_sub(4)..].iter().collect(),
    }
}

/// Provisions this terminal with the enrollment offer `text`: checks it, enrolls a new key
/// with the server (off the store: other commands go on meanwhile), stores the identity, and
/// asks the background sync for a first sync. Refused, nothing is stored and the code stays
/// unused.
pub fn provision_terminal(
    state: &AppState,
    sync: Option<&BackgroundSync>,
    text: String,
) -> Result<Provisioned, CommandError> {
    let lang = state.lang();
    let t = state.terminal()?;
    let _one = state.one_change_at_a_time();
    unprovisioned(t, lang)?;
    let provisioning = Provisioning::from_offer(&text).map_err(|e| refused(lang, &e))?;
    let role_word = match t.config.role {
        Role::Kiosk => "키오스크",
        Role::Counter => "매장 단말기",
    };
    let name = format!("{} {role_word}", t.config.site_name);
    let identity = provisioning
        .enroll(&name, ENROLL_TIMEOUT, t.now())
        .map_err(|e| refused(lang, &e))?;
    provision::save(&*t.store()?, &identity).map_err(|e| refused(lang, &e))?;
    if let Some(sync) = sync {
        sync.send_soon();
    }
    let configured = match t.config.role {
        Role::Kiosk => "kiosk",
        Role::Counter => "counter",
    };
    let warning = (identity.role != configured || identity.site != t.config.site).then(|| {
        lang.pick(
            format!(
                "등록되었지만 서버가 정한 지점·역할({}, {})이 설정 파일({}, {configured})과 다릅니다. \
                 설정 파일을 고친 뒤 앱을 다시 시작하세요.",
                identity.site, identity.role, t.config.site
            ),
            format!(
                "Provisioned, but the server's site and role ({}, {}) are not the configuration's \
                 ({}, {configured}). Fix the configuration file, then restart the app.",
                identity.site, identity.role, t.config.site
            ),
        )
    });
    Ok(Provisioned {
        terminal_id: identity.terminal_id,
        site: identity.site,
        role: identity.role,
        name: identity.name,
        server: identity.server_url,
        server_key: identity.server_key,
        warning,
    })
}
