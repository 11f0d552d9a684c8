//! Errors as they cross the IPC boundary: `{ "code": "...", "message": "..." }`.
//!
//! `code` is one of a closed set the UI switches on; `message` is for the person at the
//! terminal, in the language they chose, and says what to do next.

use serde::{Deserialize, Serialize};

/// The language the terminal speaks to its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    Ko,
    En,
}

impl Lang {
    pub fn pick(self, ko: String, en: String) -> String {
        match self {
            Lang::Ko => ko,
            Lang::En => en,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Ko => "ko",
            Lang::En => "en",
        }
    }
}

/// Every code a command may fail with. The UI switches on these, never on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The terminal has no usable configuration file.
    NotConfigured,
    /// The terminal's database could not be opened or written.
    Storage,
    /// The terminal's disk is full: nothing new can be recorded until room is made.
    DiskFull,
    /// This terminal's role does not allow the operation.
    WrongRole,
    /// Something typed in is malformed.
    InvalidInput,
    /// No member with that number is known here.
    MemberNotFound,
    /// The applicant's name is empty.
    NameMissing,
    /// The applicant's name is longer than the program takes.
    NameTooLong,
    /// The applicant's name has control or text-direction characters.
    NameInvalid,
    /// The birth date is after today.
    BirthDateInvalid,
    /// The applicant is under the minimum age.
    UnderAge,
    /// The phone number is not a Korean mobile number.
    PhoneInvalid,
    /// The applicant neither lives, works nor studies in Seoul.
    OutsideSeoul,
    /// The terminal has no Bluetooth adapter (or no BlueZ).
    NoAdapter,
    /// The Bluetooth adapter is off and could not be turned on.
    AdapterOff,
    /// The watch picked is no longer seen nearby; scan again.
    WatchNotFound,
    /// The watch was seen but would not connect.
    WatchOutOfRange,
    /// The device picked is not a Palpal watch.
    NotAWatch,
    /// The history transfer stopped; what arrived is stored, a new sync resumes.
    TransferInterrupted,
    /// A corrupt record came from the watch; a new sync fetches it again.
    CorruptRecord,
    /// The watch sent a value its profile does not allow.
    WatchProtocol,
    /// Any other Bluetooth failure.
    Bluetooth,
    /// The watch is paired to another member or enrollment here.
    WatchPairedElsewhere,
    /// The enrollment to pair a watch to is not known here.
    EnrollmentNotFound,
    /// A watch new here is paired to a member only once the member's QR code is scanned.
    NeedsMemberToken,
    /// The QR code scanned is another member's.
    TokenOfAnotherMember,
    /// The member card was printed already and its token erased here.
    CardPrinted,
    /// The same person (name, birth date, phone) is already a member or signed up.
    AlreadyMember,
    /// Today is not this person's sign-up day; the message says when to come back.
    NotToday,
    /// Today's places at this site are used up; the message says when to come back.
    QuotaUsedUp,
    /// This site holds no places for today.
    NoQuota,
    /// A required consent was not given.
    ConsentMissing,
    /// A consent answered a text version no longer in force.
    ConsentOutdated,
    /// The receipt printer could not be written to.
    PrinterFailed,
    /// The member card cannot be made yet: the sign-up has not reached the server (offline,
    /// or not provisioned). The sign-up itself is complete.
    CardNotYet,
    /// A replacement card needs the central server, which did not answer (offline, or not
    /// provisioned): nothing was kept; try again later.
    ServerNeeded,
    /// No member has that name, birth date and phone.
    NotAMember,
    /// No replacement card is allowed for this member: the community-center desk or the
    /// program's call center replaces a lost card first.
    NoReplacement,
    /// The app itself failed (a flow stopped unexpectedly); nothing was changed by it.
    Internal,
    /// A refusal with its own stable code from a closed set defined elsewhere: a redemption
    /// refused by `redemption-token` or `merchant-core` (`replayed`, `over_daily_limit`, ...),
    /// a card PIN refused by `kiosk-core` (`pin_invalid`, `pin_mismatch`, `pin_too_easy`), or a
    /// card refused by the server (`cards_not_issued`, `card_exists`, `card_not_allowed`,
    /// `unknown_member`), or a provisioning refused by `terminal-sync` (`not_an_offer`,
    /// `bad_code`, `server_unreachable`, `already_provisioned`, ...).
    #[serde(untagged)]
    Refused(#[ts(as = "RefusedCode")] &'static str),
}

/// The codes a [`ErrorCode::Refused`] carries: those of `redemption-token`'s and
/// `merchant-core`'s refusals, of `kiosk-core`'s card PIN and card refusals and of
/// `terminal-sync`'s provisioning refusals. Its TypeScript
/// type is their union, so the UI's error codes are a closed set.
pub struct RefusedCode;

impl RefusedCode {
    /// Every code, each once.
    pub fn all() -> Vec<&'static str> {
        let mut codes: Vec<&'static str> = redemption_token::Refusal::CODES
            .iter()
            .chain(&merchant_core::redemption::Refusal::CODES)
            .chain(&kiosk_core::card::PinRefusal::CODES)
            .chain(&kiosk_core::card::CardRefusal::CODES)
            .chain(&terminal_sync::provision::ProvisionError::CODES)
            .copied()
            .collect();
        codes.sort_unstable();
        codes.dedup();
        codes
    }
}

impl ts_rs::TS for RefusedCode {
    type WithoutGenerics = RefusedCode;
    type OptionInnerType = RefusedCode;

    fn name(_: &ts_rs::Config) -> String {
        "RefusedCode".to_owned()
    }

    fn inline(_: &ts_rs::Config) -> String {
        RefusedCode::all()
            .iter()
            .map(|code| format!("\"{code}\""))
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn decl(cfg: &ts_rs::Config) -> String {
        format!("type RefusedCode = {};", Self::inline(cfg))
    }

    fn decl_concrete(cfg: &ts_rs::Config) -> String {
        Self::decl(cfg)
    }

    fn output_path() -> Option<std::path::PathBuf> {
        Some(std::path::PathBuf::from("RefusedCode.ts"))
    }
}

/// A command's error, as the UI receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
}

impl CommandError {
    pub fn new(code: ErrorCode, lang: Lang, ko: impl Into<String>, en: impl Into<String>) -> Self {
        CommandError {
            code,
            message: lang.pick(ko.into(), en.into()),
        }
    }

    /// A flow stopped unexpectedly (`detail` goes to the log). Whatever it stored before
    /// stands; the person tries again.
    pub fn internal(lang: Lang, detail: &str) -> Self {
        log(&anyhow::anyhow!("a flow stopped unexpectedly: {detail}"));
        CommandError::new(
            ErrorCode::Internal,
            lang,
            "단말기 앱에 문제가 생겨 요청을 끝내지 못했습니다. 다시 시도해 주시고, 계속되면 관리자에게 연락하세요.",
            "The terminal app ran into a problem and could not finish. Try again, and call the administrator if it goes on.",
        )
    }

    /// The database failed. The detail goes to the log, not to the person at the terminal.
    pub fn storage(lang: Lang, err: &anyhow::Error) -> Self {
        log(err);
        if terminal_store::is_disk_full(err) {
            return CommandError::new(
                ErrorCode::DiskFull,
                lang,
                "단말기 저장 공간이 가득 차서 이번 내용은 기록되지 않았습니다. 이미 접수된 내용은 보존됩니다. 관리자에게 연락해 공간을 확보한 뒤 다시 시도하세요.",
                "The terminal's disk is full, so this was not recorded. Everything already confirmed is kept. Call the administrator to make room, then try again.",
            );
        }
        CommandError::new(
            ErrorCode::Storage,
            lang,
            "단말기 저장소에 기록하지 못했습니다. 앱을 다시 시작하고, 계속되면 관리자에게 연락하세요. 이미 접수된 내용은 보존됩니다.",
            "The terminal could not write to its storage. Restart the app; if it goes on, call the administrator. Everything already confirmed is kept.",
        )
    }

    pub fn wrong_role(lang: Lang, needed: &str) -> Self {
        CommandError::new(
            ErrorCode::WrongRole,
            lang,
            format!("이 단말기에서는 할 수 없는 작업입니다 ({needed} 전용). 알맞은 단말기를 이용하세요."),
            format!("This terminal cannot do that (it needs a {needed} terminal). Use the right terminal."),
        )
    }

    pub fn from_refusal(lang: Lang, refusal: &kiosk_core::Refusal) -> Self {
        use kiosk_core::Refusal as R;
        let code = match refusal {
            R::NameMissing => ErrorCode::NameMissing,
            R::NameTooLong => ErrorCode::NameTooLong,
            R::NameInvalid => ErrorCode::NameInvalid,
            R::BornInFuture(_) => ErrorCode::BirthDateInvalid,
            R::UnderAge { .. } => ErrorCode::UnderAge,
            R::BadPhone(_) => ErrorCode::PhoneInvalid,
            R::OutsideSeoul => ErrorCode::OutsideSeoul,
            _ => ErrorCode::InvalidInput,
        };
        CommandError::new(code, lang, refusal.ko(), refusal.en())
    }

    /// A Bluetooth failure, in the clerk's words.
    pub fn from_link(lang: Lang, error: &watch_link::LinkError) -> Self {
        use watch_link::LinkError as L;
        let code = match error {
            L::NoAdapter { .. } => ErrorCode::NoAdapter,
            L::AdapterOff => ErrorCode::AdapterOff,
            L::WatchNotFound { .. } => ErrorCode::WatchNotFound,
            L::WatchOutOfRange { .. } => ErrorCode::WatchOutOfRange,
            L::NotAWatch { .. } => ErrorCode::NotAWatch,
            L::TransferInterrupted { .. } => ErrorCode::TransferInterrupted,
            L::CorruptRecord { .. } => ErrorCode::CorruptRecord,
            L::Protocol { .. } => ErrorCode::WatchProtocol,
            _ => ErrorCode::Bluetooth,
        };
        if code == ErrorCode::Bluetooth {
            log(&anyhow::anyhow!("{error}"));
        }
        CommandError::new(code, lang, error.ko(), error.en())
    }

    pub fn from_pairing(lang: Lang, refusal: &merchant_core::watch_sync::PairingRefusal) -> Self {
        CommandError::new(
            ErrorCode::WatchPairedElsewhere,
            lang,
            refusal.ko(),
            refusal.en(),
        )
    }
}

/// [`CommandError::storage`] as a closure for `map_err`, in `lang`.
pub fn storage(lang: Lang) -> impl Fn(anyhow::Error) -> CommandError {
    move |e| CommandError::storage(lang, &e)
}

#[allow(clippy::print_stderr)]
pub(crate) fn log(err: &anyhow::Error) {
    eprintln!("palpal: {err:#}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_says_so_and_that_nothing_confirmed_is_lost() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error {
                code: rusqlite::ErrorCode::DiskFull,
                extended_code: 13,
            },
            None,
        );
        let err = anyhow::Error::from(full).context("recording a hold");
        let e = CommandError::storage(Lang::Ko, &err);
        assert_eq!(e.code, ErrorCode::DiskFull);
        assert!(
            e.message.starts_with("단말기 저장 공간이 가득 차서"),
            "{}",
            e.message
        );
        assert!(e.message.contains("이미 접수된 내용은 보존됩니다"));
        let other = anyhow::anyhow!("no such table");
        assert_eq!(
            CommandError::storage(Lang::En, &other).code,
            ErrorCode::Storage
        );
    }

    #[test]
    fn errors_cross_ipc_as_code_and_message_only() {
        let e = CommandError::new(ErrorCode::UnderAge, Lang::En, "한국어", "English");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({ "code": "under_age", "message": "English" })
        );
        let e = CommandError::new(ErrorCode::MemberNotFound, Lang::Ko, "한국어", "English");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"member_not_found","message":"한국어"}"#
        );
    }

    #[test]
    fn every_link_error_maps_to_its_own_code_and_message() {
        use watch_link::LinkError as L;
        let errors = [
            L::NoAdapter { detail: "x".into() },
            L::AdapterOff,
            L::WatchNotFound {
                wanted: "0042".into(),
            },
            L::WatchOutOfRange {
                watch: "Palpal-0042".into(),
                attempts: 3,
            },
            L::NotAWatch {
                watch: "X".into(),
                detail: "y".into(),
            },
            L::TransferInterrupted {
                resume_from: 7,
                reason: "z".into(),
            },
            L::CorruptRecord { resume_from: 7 },
            L::Protocol {
                doing: "reading",
                detail: "d".into(),
            },
            L::Bluetooth {
                doing: "reading",
                detail: "d".into(),
            },
        ];
        for e in &errors {
            let ko = CommandError::from_link(Lang::Ko, e);
            let en = CommandError::from_link(Lang::En, e);
            // The app's code is the link's own, so the UI and the link agree on names.
            assert_eq!(serde_json::to_value(ko.code).unwrap(), e.code(), "{e:?}");
            assert_eq!((ko.message, en.message), (e.ko(), e.en()));
        }
    }

    #[test]
    fn every_refusal_maps_to_its_own_code() {
        use kiosk_core::Refusal as R;
        let codes: Vec<_> = [
            R::NameMissing,
            R::NameTooLong,
            R::NameInvalid,
            R::BornInFuture("2100-01-01".parse().unwrap()),
            R::UnderAge { age: 10 },
            R::BadPhone("1".into()),
            R::OutsideSeoul,
        ]
        .iter()
        .map(|r| {
            let e = CommandError::from_refusal(Lang::Ko, r);
            assert_eq!(e.message, r.ko());
            serde_json::to_value(e.code).unwrap()
        })
        .collect();
        assert_eq!(
            codes,
            [
                "name_missing",
                "name_too_long",
                "name_invalid",
                "birth_date_invalid",
                "under_age",
                "phone_invalid",
                "outside_seoul"
            ]
        );
    }
}
