//! Errors as they cross the IPC boundary: `{ "code": "...", "message": "..." }`.
//!
//! `code` is one of a closed set the UI switches on; `message` is for the person at the
//! terminal, in the language they chose, and says what to do next.

use serde::{Deserialize, Serialize};

/// The language the terminal speaks to its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The terminal has no usable configuration file.
    NotConfigured,
    /// The terminal's database could not be opened or written.
    Storage,
    /// This terminal's role does not allow the operation.
    WrongRole,
    /// Something typed in is malformed.
    InvalidInput,
    /// No member with that number is known here.
    MemberNotFound,
    /// The applicant's name is empty.
    NameMissing,
    /// The birth date is after today.
    BirthDateInvalid,
    /// The applicant is under the minimum age.
    UnderAge,
    /// The phone number is not a Korean mobile number.
    PhoneInvalid,
    /// The applicant neither lives, works nor studies in Seoul.
    OutsideSeoul,
}

/// A command's error, as the UI receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

    /// The database failed. The detail goes to the log, not to the person at the terminal.
    pub fn storage(lang: Lang, err: &anyhow::Error) -> Self {
        log_error(err);
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
            R::BornInFuture(_) => ErrorCode::BirthDateInvalid,
            R::UnderAge { .. } => ErrorCode::UnderAge,
            R::BadPhone(_) => ErrorCode::PhoneInvalid,
            R::OutsideSeoul => ErrorCode::OutsideSeoul,
            _ => ErrorCode::InvalidInput,
        };
        CommandError::new(code, lang, refusal.ko(), refusal.en())
    }
}

#[allow(clippy::print_stderr)]
fn log_error(err: &anyhow::Error) {
    eprintln!("palpal: {err:#}");
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_refusal_maps_to_its_own_code() {
        use kiosk_core::Refusal as R;
        let codes: Vec<_> = [
            R::NameMissing,
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
                "birth_date_invalid",
                "under_age",
                "phone_invalid",
                "outside_seoul"
            ]
        );
    }
}
