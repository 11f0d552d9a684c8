//! Consent: the items an applicant is asked to agree to, each with the version of its text,
//! and the check that no registration goes ahead without the required ones.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

/// One consent item as shown on the kiosk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentItem {
    /// A stable id, e.g. `personal-data`.
    pub id: String,
    /// The version of the text shown, e.g. `2025-12`.
    pub version: String,
    pub required: bool,
    pub title_ko: String,
    pub title_en: String,
}

/// What the applicant answered to one item, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentAnswer {
    pub id: String,
    pub version: String,
    pub agreed: bool,
    pub at: DateTime<FixedOffset>,
}

/// The consents recorded with a registration: one answer per item shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub answers: Vec<ConsentAnswer>,
}

/// Required items not agreed to (by id), or answers to a text version not shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsentMissing {
    #[error("required consent not given: {0:?}")]
    Required(Vec<String>),
    #[error("answer to consent {id} version {answered}, but version {shown} is in force")]
    WrongVersion {
        id: String,
        answered: String,
        shown: String,
    },
}

impl ConsentMissing {
    pub fn code(&self) -> &'static str {
        match self {
            ConsentMissing::Required(_) => "consent_missing",
            ConsentMissing::WrongVersion { .. } => "consent_outdated",
        }
    }

    pub fn ko(&self, items: &[ConsentItem]) -> String {
        match self {
            ConsentMissing::Required(ids) => format!(
                "필수 동의 항목에 동의해야 가입할 수 있습니다: {}. 내용을 듣거나 읽은 뒤 '동의'를 눌러 주세요.",
                titles(items, ids, |i| &i.title_ko)
            ),
            ConsentMissing::WrongVersion { .. } => {
                "동의서 내용이 바뀌었습니다. 새 동의서를 다시 확인해 주세요.".to_owned()
            }
        }
    }

    pub fn en(&self, items: &[ConsentItem]) -> String {
        match self {
            ConsentMissing::Required(ids) => format!(
                "Sign-up needs agreement to the required items: {}. Read or listen to them, then press 'Agree'.",
                titles(items, ids, |i| &i.title_en)
            ),
            ConsentMissing::WrongVersion { .. } => {
                "The consent text has changed. Please review the new text.".to_owned()
            }
        }
    }
}

fn titles(
    items: &[ConsentItem],
    ids: &[String],
    title: impl Fn(&ConsentItem) -> &String,
) -> String {
    ids.iter()
        .map(|id| {
            items
                .iter()
                .find(|i| &i.id == id)
                .map_or(id.as_str(), |i| title(i).as_str())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The version of the consent texts this build shows.
pub const CONSENT_VERSION: &str = "2025-12";

/// The items the kiosk asks for, required first. Each text's version is [`CONSENT_VERSION`].
pub fn current_items() -> Vec<ConsentItem> {
    let item = |id: &str, required, ko: &str, en: &str| ConsentItem {
        id: id.to_owned(),
        version: CONSENT_VERSION.to_owned(),
        required,
        title_ko: ko.to_owned(),
        title_en: en.to_owned(),
    };
    vec![
        item(
            "personal-data",
            true,
            "개인정보 수집·이용 (이름, 생년월일, 휴대전화)",
            "Collection and use of personal data (name, birth date, mobile number)",
        ),
        item(
            "health-data",
            true,
            "건강정보(걸음·심박) 수집",
            "Collection of health data (steps, heart rate)",
        ),
        item(
            "sms-news",
            false,
            "문자로 사업 소식 받기 (선택)",
            "Program news by text message (optional)",
        ),
        item(
            "research",
            false,
            "건강 연구에 익명으로 활용 (선택)",
            "Anonymous use in health research (optional)",
        ),
    ]
}

/// Checks the answers against the items shown: every required item agreed to, each answer
/// for the version in force. Returns the record to keep with the registration.
pub fn check_consents(
    items: &[ConsentItem],
    answers: &[ConsentAnswer],
) -> Result<ConsentRecord, ConsentMissing> {
    for a in answers {
        if let Some(item) = items.iter().find(|i| i.id == a.id) {
            if item.version != a.version {
                return Err(ConsentMissing::WrongVersion {
                    id: a.id.clone(),
                    answered: a.version.clone(),
                    shown: item.version.clone(),
                });
            }
        }
    }
    let missing: Vec<String> = items
        .iter()
        .filter(|i| i.required)
        .filter(|i| !answers.iter().any(|a| a.id == i.id && a.agreed))
        .map(|i| i.id.clone())
        .collect();
    if !missing.is_empty() {
        return Err(ConsentMissing::Required(missing));
    }
    Ok(ConsentRecord {
        answers: items
            .iter()
            .filter_map(|i| answers.iter().rev().find(|a| a.id == i.id).cloned())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<ConsentItem> {
        let item = |id: &str, required, ko: &str, en: &str| ConsentItem {
            id: id.into(),
            version: "2025-12".into(),
            required,
            title_ko: ko.into(),
            title_en: en.into(),
        };
        vec![
            item(
                "personal-data",
                true,
                "개인정보 수집·이용",
                "Collection and use of personal data",
            ),
            item(
                "health-data",
                true,
                "건강정보(걸음·심박) 수집",
                "Collection of health data (steps, heart rate)",
            ),
            item("news", false, "소식 받기", "Program news"),
        ]
    }

    fn answer(id: &str, version: &str, agreed: bool) -> ConsentAnswer {
        ConsentAnswer {
            id: id.into(),
            version: version.into(),
            agreed,
            at: "2025-12-03T10:00:00+09:00".parse().unwrap(),
        }
    }

    #[test]
    fn required_items_must_be_agreed_optional_ones_need_not() {
        let ok = check_consents(
            &items(),
            &[
                answer("personal-data", "2025-12", true),
                answer("health-data", "2025-12", true),
                answer("news", "2025-12", false),
            ],
        )
        .unwrap();
        assert_eq!(ok.answers.len(), 3);
        assert!(!ok.answers[2].agreed);

        let e = check_consents(&items(), &[answer("personal-data", "2025-12", true)]).unwrap_err();
        assert_eq!(e, ConsentMissing::Required(vec!["health-data".into()]));
        assert_eq!(e.code(), "consent_missing");
        assert_eq!(
            e.ko(&items()),
            "필수 동의 항목에 동의해야 가입할 수 있습니다: 건강정보(걸음·심박) 수집. 내용을 듣거나 읽은 뒤 '동의'를 눌러 주세요."
        );

        let e = check_consents(&items(), &[]).unwrap_err();
        assert_eq!(
            e,
            ConsentMissing::Required(vec!["personal-data".into(), "health-data".into()])
        );
    }

    #[test]
    fn the_current_items_ask_required_ones_first_all_in_force() {
        let items = current_items();
        assert!(items.iter().all(|i| i.version == CONSENT_VERSION));
        let required: Vec<_> = items.iter().map(|i| i.required).collect();
        assert_eq!(required, [true, true, false, false]);
        let only_optional: Vec<_> = items
            .iter()
            .filter(|i| !i.required)
            .map(|i| answer(&i.id, CONSENT_VERSION, true))
            .collect();
        let e = check_consents(&items, &only_optional).unwrap_err();
        assert_eq!(
            e.ko(&items),
            "필수 동의 항목에 동의해야 가입할 수 있습니다: 개인정보 수집·이용 (이름, 생년월일, 휴대전화), 건강정보(걸음·심박) 수집. 내용을 듣거나 읽은 뒤 '동의'를 눌러 주세요."
        );
    }

    #[test]
    fn a_refusal_then_agreement_keeps_the_last_answer_and_old_versions_are_refused() {
        let ok = check_consents(
            &items(),
            &[
                answer("personal-data", "2025-12", true),
                answer("health-data", "2025-12", false),
                answer("health-data", "2025-12", true),
            ],
        )
        .unwrap();
        assert!(ok.answers.iter().all(|a| a.agreed));
        let e = check_consents(
            &items(),
            &[
                answer("personal-data", "2025-03", true),
                answer("health-data", "2025-12", true),
            ],
        )
        .unwrap_err();
        assert_eq!(e.code(), "consent_outdated");
    }
}
