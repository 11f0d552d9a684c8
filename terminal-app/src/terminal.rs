//! The running terminal: its configuration, its database and its clock, as the commands see them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use points_core::{PointsPolicy, PolicySet};
use terminal_store::Store;

use crate::config::{Role, TerminalConfig};
use crate::error::{CommandError, ErrorCode, Lang};

/// What the app holds between commands.
pub struct AppState {
    terminal: Result<Terminal, StartupFailure>,
    lang: Mutex<Lang>,
    /// Held by each flow that changes what the terminal holds, for the whole flow.
    changing: Mutex<()>,
    /// Replacement cards signed at this kiosk since it started, by member number.
    pub(crate) replaced: Mutex<BTreeMap<String, crate::replace::Replaced>>,
}

/// Why the terminal could not start: kept so that every command can say it.
#[derive(Debug, Clone)]
pub struct StartupFailure {
    pub code: ErrorCode,
    pub ko: String,
    pub en: String,
}

pub struct Terminal {
    pub config: TerminalConfig,
    /// The points policies this terminal rates steps with.
    pub policies: PolicySet,
    store: Mutex<Store>,
}

/// The published Seoul policies, built in until the central server hands out its own.
pub fn published_policies() -> anyhow::Result<PolicySet> {
    let policies = [
        include_str!("../../policies/seoul-2025-03.toml"),
        include_str!("../../policies/seoul-2025-12.toml"),
    ]
    .into_iter()
    .map(PointsPolicy::from_toml_str)
    .collect::<Result<Vec<_>, _>>()?;
    Ok(PolicySet::new(policies)?)
}

impl AppState {
    /// Starts from the configuration file at `path`, opening (and, for a demo, seeding) the
    /// database. Failure is kept and reported by every command rather than crashing the window.
    pub fn start(path: PathBuf) -> AppState {
        let config = match TerminalConfig::load(&path) {
            Ok(c) => c,
            Err(e) => {
                return AppState::failed(StartupFailure {
                    code: ErrorCode::NotConfigured,
                    ko: format!(
                        "단말기 설정을 읽지 못했습니다: {e:#}. 설정 파일({})을 확인하고 앱을 다시 시작하세요.",
                        path.display()
                    ),
                    en: format!(
                        "Could not read the terminal's configuration: {e:#}. Check the file ({}) and restart the app.",
                        path.display()
                    ),
                })
            }
        };
        match Terminal::open(config) {
            Ok(t) => AppState::ready(t),
            Err(e) => AppState::failed(StartupFailure {
                code: ErrorCode::Storage,
                ko: format!(
                    "단말기 저장소를 열지 못했습니다: {e:#}. 파일은 그대로 두었습니다. 관리자에게 연락하세요."
                ),
                en: format!(
                    "Could not open the terminal's storage: {e:#}. The file was left as it is. Call the administrator."
                ),
            }),
        }
    }

    pub fn ready(terminal: Terminal) -> AppState {
        let lang = terminal
            .store()
            .ok()
            .and_then(|s| s.setting("language").ok().flatten())
            .map_or(Lang::Ko, |l| if l == "en" { Lang::En } else { Lang::Ko });
        AppState {
            terminal: Ok(terminal),
            lang: Mutex::new(lang),
            changing: Mutex::new(()),
            replaced: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn failed(failure: StartupFailure) -> AppState {
        AppState {
            terminal: Err(failure),
            lang: Mutex::new(Lang::Ko),
            changing: Mutex::new(()),
            replaced: Mutex::new(BTreeMap::new()),
        }
    }

    /// Taken by every flow that changes what the terminal holds (register, ticket, card, print,
    /// redeem, void, receipt, export), for the whole flow: the commands run off the window's
    /// thread and may overlap, and such a flow reads, decides and writes in more than one step
    /// (asking the server between them, or printing), so two of them run one after the other,
    /// as a clerk's two taps were served before. Flows that only read do not wait for it.
    pub fn one_change_at_a_time(&self) -> MutexGuard<'_, ()> {
        self.changing.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn lang(&self) -> Lang {
        *self.lang.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_lang(&self, lang: Lang) {
        *self.lang.lock().unwrap_or_else(|p| p.into_inner()) = lang;
    }

    /// The terminal, or the reason it could not start, in the current language.
    pub fn terminal(&self) -> Result<&Terminal, CommandError> {
        let lang = self.lang();
        self.terminal.as_ref().map_err(|f| CommandError {
            code: f.code,
            message: lang.pick(f.ko.clone(), f.en.clone()),
        })
    }

    /// The terminal, if its role is `role`.
    pub fn terminal_as(&self, role: Role) -> Result<&Terminal, CommandError> {
        let t = self.terminal()?;
        if t.config.role != role {
            let needed = match (role, self.lang()) {
                (Role::Kiosk, Lang::Ko) => "가입 키오스크",
                (Role::Counter, Lang::Ko) => "매장 단말기",
                (Role::Kiosk, Lang::En) => "sign-up kiosk",
                (Role::Counter, Lang::En) => "counter",
            };
            return Err(CommandError::wrong_role(self.lang(), needed));
        }
        Ok(t)
    }
}

impl Terminal {
    pub fn open(config: TerminalConfig) -> anyhow::Result<Terminal> {
        let mut store = Store::open(&config.database)?;
        if config.demo {
            let today = now_for(&config).date_naive();
            terminal_store::seed_demo(&mut store, today, 4, 9988)?;
        }
        Ok(Terminal {
            config,
            policies: published_policies()?,
            store: Mutex::new(store),
        })
    }

    pub fn store(&self) -> Result<MutexGuard<'_, Store>, CommandError> {
        Ok(self.store.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The time now, in Seoul: the configured fixed clock, or the system's.
    pub fn now(&self) -> DateTime<FixedOffset> {
        now_for(&self.config)
    }

    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}

fn now_for(config: &TerminalConfig) -> DateTime<FixedOffset> {
    now_in_seoul(config.fixed_now)
}

/// The time now in Seoul: `fixed_now` when the configuration fixes the clock (tests, demos),
/// else the system's. The one place the terminal reads its clock.
pub(crate) fn now_in_seoul(fixed_now: Option<DateTime<FixedOffset>>) -> DateTime<FixedOffset> {
    fixed_now
        .map(|t| t.with_timezone(&points_core::KST))
        .unwrap_or_else(|| Utc::now().with_timezone(&points_core::KST))
}
