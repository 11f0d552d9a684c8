//! The sign-up kiosk's rules: who may enroll and what an applicant must give.
//!
//! Pure: no IO, no clock. The day of enrollment (in Asia/Seoul) is an argument, so every
//! decision can be replayed. This crate decides; it does not store, send or show anything.
//! Messages a person sees come in Korean first ([`Refusal::ko`]) with English available
//! ([`Refusal::en`]), and each says what to do next.
//!
//! - eligibility: [`check_applicant`] (age 19 and over in Asia/Seoul, a tie to Seoul);
//! - consent: [`consent::check_consents`] (required items, text versions);
//! - admission: [`admission::admit`] (the day's schedule and the site's quota lease).
//! - screen sizes: [`screen::Screen::sizes`] (text and touch targets in millimetres).
//! - duplicates: [`same_person`] and [`AlreadyMember`] (name, birth date and phone);
//! - the member card: [`card::MemberCard`] (QR code, printable page, ESC/POS).

pub mod admission;
pub mod card;
pub mod consent;
pub mod screen;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Minimum age, in full years on the day of enrollment.
pub const MIN_AGE: u32 = 19;

/// Why the applicant may take part in Seoul's program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Residency {
    /// Lives in Seoul (resident registration address).
    Lives,
    /// Works in Seoul (proof of employment shown to the clerk).
    Works,
    /// Studies in Seoul (proof of enrollment shown to the clerk).
    Studies,
    /// None of the above.
    Outside,
}

/// What the clerk types in for a walk-in applicant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applicant {
    pub name: String,
    pub birth_date: NaiveDate,
    /// Digits only after normalisation, e.g. `01012345678`.
    pub phone: String,
    pub residency: Residency,
}

/// An applicant the kiosk may enroll, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub name: String,
    pub birth_date: NaiveDate,
    pub phone: String,
    pub residency: Residency,
    /// Age in full years on the day of enrollment.
    pub age: u32,
}

/// Why the kiosk cannot enroll this applicant now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("name is empty")]
    NameMissing,
    #[error("name has more than {MAX_NAME_CHARS} characters")]
    NameTooLong,
    #[error("name has control or text-direction characters")]
    NameInvalid,
    #[error("birth date {0} is in the future")]
    BornInFuture(NaiveDate),
    #[error("applicant is {age}, the minimum age is {MIN_AGE}")]
    UnderAge { age: u32 },
    #[error("phone number {0:?} is not a Korean mobile number")]
    BadPhone(String),
    #[error("applicant neither lives, works nor studies in Seoul")]
    OutsideSeoul,
}

impl Refusal {
    /// A stable code the UI can switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NameMissing => "name_missing",
            Refusal::NameTooLong => "name_too_long",
            Refusal::NameInvalid => "name_invalid",
            Refusal::BornInFuture(_) => "birth_date_invalid",
            Refusal::UnderAge { .. } => "under_age",
            Refusal::BadPhone(_) => "phone_invalid",
            Refusal::OutsideSeoul => "outside_seoul",
        }
    }

    /// The message in Korean, saying what to do next.
    pub fn ko(&self) -> String {
        match self {
            Refusal::NameMissing => "이름을 입력해 주세요.".to_owned(),
            Refusal::NameTooLong => format!(
                "이름이 너무 깁니다. 신분증에 적힌 이름을 {MAX_NAME_CHARS}자 이내로 입력해 주세요."
            ),
            Refusal::NameInvalid => "이름에 쓸 수 없는 문자가 들어 있습니다. 신분증에 적힌 이름을 다시 입력해 주세요.".to_owned(),
            Refusal::BornInFuture(d) => {
                format!("생년월일 {d}이(가) 오늘 이후입니다. 생년월일을 다시 확인해 주세요.")
            }
            Refusal::UnderAge { age } => format!(
                "만 {MIN_AGE}세 이상부터 가입할 수 있습니다 (현재 만 {age}세). 만 {MIN_AGE}세가 되는 날 이후에 다시 오세요."
            ),
            Refusal::BadPhone(p) => format!(
                "휴대전화 번호 '{p}'을(를) 확인해 주세요. 010으로 시작하는 11자리 숫자를 입력하세요."
            ),
            Refusal::OutsideSeoul => "서울에 살거나, 서울에서 일하거나 공부하는 분만 가입할 수 있습니다. 재직·재학 증명서가 있으면 직원에게 보여 주세요.".to_owned(),
        }
    }

    /// The message in English, saying what to do next.
    pub fn en(&self) -> String {
        match self {
            Refusal::NameMissing => "Please enter the name.".to_owned(),
            Refusal::NameTooLong => format!(
                "The name is too long. Please enter the name on the ID, at most {MAX_NAME_CHARS} characters."
            ),
            Refusal::NameInvalid => "The name has characters that cannot be used. Please enter the name on the ID again.".to_owned(),
            Refusal::BornInFuture(d) => {
                format!("The birth date {d} is after today. Please check the birth date.")
            }
            Refusal::UnderAge { age } => format!(
                "Members must be {MIN_AGE} or older (now {age}). Please come back on or after the {MIN_AGE}th birthday."
            ),
            Refusal::BadPhone(p) => format!(
                "Please check the mobile number '{p}': 11 digits starting with 010."
            ),
            Refusal::OutsideSeoul => "Only people who live, work or study in Seoul can join. If you have proof of work or study, show it to the clerk.".to_owned(),
        }
    }
}

/// Age in full years on `day` (0 before birth), counted as `points-core` counts it for the
/// daily goal: a 29 February birthday turns over on 1 March in common years.
pub fn age_on(birth_date: NaiveDate, day: NaiveDate) -> u32 {
    u32::try_from(points_core::age_on(birth_date, day)).unwrap_or(0)
}

/// Keeps the digits of a phone number as typed (`010-1234-5678`, `010 1234 5678`).
pub fn normalize_phone(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_digit).collect()
}

/// A Korean mobile number as typed (`010-1234-5678`, spaces and dashes allowed), as its 11
/// digits starting with 010; anything else is [`Refusal::BadPhone`] with what was typed.
pub fn check_mobile(raw: &str) -> Result<String, Refusal> {
    let phone = normalize_phone(raw);
    if phone.len() != 11 || !phone.starts_with("010") {
        return Err(Refusal::BadPhone(raw.to_owned()));
    }
    Ok(phone)
}

/// The guardian's mobile number, which the contact step may leave empty: `None` when
/// nothing was typed, else the number as [`check_mobile`] reads it.
pub fn check_guardian_phone(raw: &str) -> Result<Option<String>, Refusal> {
    if normalize_phone(raw).is_empty() {
        return Ok(None);
    }
    check_mobile(raw).map(Some)
}

/// The most characters a name may have, at the kiosk and on the server.
pub const MAX_NAME_CHARS: usize = 50;

/// A person's name as typed, trimmed; refused when empty, longer than [`MAX_NAME_CHARS`], or
/// holding control characters or the invisible characters that reorder or hide text
/// (bidirectional overrides and isolates, direction marks, zero-width characters), which
/// would make one name look like another on a screen or a receipt.
pub fn check_name(name: &str) -> Result<&str, Refusal> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Refusal::NameMissing);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Refusal::NameTooLong);
    }
    if name
        .chars()
        .any(|c| c.is_control() || is_format_character(c))
    {
        return Err(Refusal::NameInvalid);
    }
    Ok(name)
}

/// Unicode's invisible formatting characters that matter in a name: direction marks,
/// embeddings, overrides and isolates, zero-width spaces and joiners, the word joiner and the
/// byte-order mark.
fn is_format_character(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Checks an applicant on `today` (the date in Asia/Seoul) and returns the enrollment to record.
pub fn check_applicant(applicant: &Applicant, today: NaiveDate) -> Result<Enrollment, Refusal> {
    let name = check_name(&applicant.name)?;
    if applicant.birth_date > today {
        return Err(Refusal::BornInFuture(applicant.birth_date));
    }
    let age = age_on(applicant.birth_date, today);
    if age < MIN_AGE {
        return Err(Refusal::UnderAge { age });
    }
    let phone = check_mobile(&applicant.phone)?;
    if applicant.residency == Residency::Outside {
        return Err(Refusal::OutsideSeoul);
    }
    Ok(Enrollment {
        name: name.to_owned(),
        birth_date: applicant.birth_date,
        phone,
        residency: applicant.residency,
        age,
    })
}

/// The canonical form of a person for duplicate checks: the name without spaces, the birth
/// date, the phone's digits. Two applicants are the same person when these are equal.
pub fn person_fingerprint(name: &str, birth_date: NaiveDate, phone: &str) -> String {
    let name: String = name.chars().filter(|c| !c.is_whitespace()).collect();
    format!("{name}|{birth_date}|{}", normalize_phone(phone))
}

/// Whether an enrollment and an applicant are the same person (name, birth date, phone).
pub fn same_person(enrolled: &Enrollment, applicant: &Applicant) -> bool {
    person_fingerprint(&enrolled.name, enrolled.birth_date, &enrolled.phone)
        == person_fingerprint(&applicant.name, applicant.birth_date, &applicant.phone)
}

/// The applicant is already a member (or already signed up, waiting for the server): they are
/// shown their existing registration, never registered twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("already a member (member {member_no:?}, receipt {receipt_no:?})")]
pub struct AlreadyMember {
    /// The member number, once the server assigned one.
    pub member_no: Option<String>,
    /// The receipt number at this kiosk, when signed up here.
    pub receipt_no: Option<String>,
    /// The day of the earlier sign-up here.
    pub day: Option<NaiveDate>,
}

impl AlreadyMember {
    pub fn code(&self) -> &'static str {
        "already_member"
    }

    pub fn ko(&self) -> String {
        let which = match (&self.member_no, &self.receipt_no, self.day) {
            (Some(no), _, _) => format!("회원번호 {no}"),
            (None, Some(r), Some(d)) => format!(
                "{}년 {}월 {}일 접수번호 {r}",
                chrono::Datelike::year(&d),
                chrono::Datelike::month(&d),
                chrono::Datelike::day(&d)
            ),
            _ => "기존 가입".to_owned(),
        };
        format!("이미 가입된 분입니다 ({which}). 다시 가입하지 않아도 됩니다. 회원 카드를 잃어버렸다면 직원에게 말씀해 주세요.")
    }

    pub fn en(&self) -> String {
        let which = match (&self.member_no, &self.receipt_no, self.day) {
            (Some(no), _, _) => format!("member no. {no}"),
            (None, Some(r), Some(d)) => format!("receipt no. {r} on {d}"),
            _ => "an earlier sign-up".to_owned(),
        };
        format!("You are already a member ({which}). There is no need to sign up again. If you lost your member card, please tell the clerk.")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_mobile_number_is_eleven_digits_from_010_however_it_is_typed() {
        use super::{check_guardian_phone, check_mobile, Refusal};
        assert_eq!(check_mobile("010-1234-5678"), Ok("01012345678".to_owned()));
        assert_eq!(
            check_mobile(" 010 1234 5678 "),
            Ok("01012345678".to_owned())
        );
        for bad in [
            "02-123-4567",
            "010-1234-567",
            "011-1234-5678",
            "010123456789",
            "",
        ] {
            assert_eq!(
                check_mobile(bad),
                Err(Refusal::BadPhone(bad.to_owned())),
                "{bad}"
            );
        }
        assert_eq!(check_guardian_phone(""), Ok(None));
        assert_eq!(check_guardian_phone(" - "), Ok(None));
        assert_eq!(
            check_guardian_phone("010-5555-6666"),
            Ok(Some("01055556666".to_owned()))
        );
        assert_eq!(
            check_guardian_phone("010-5555"),
            Err(Refusal::BadPhone("010-5555".to_owned()))
        );
    }

    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn applicant(birth: &str, phone: &str, residency: Residency) -> Applicant {
        Applicant {
            name: " 김영희 ".to_owned(),
            birth_date: d(birth),
            phone: phone.to_owned(),
            residency,
        }
    }

    /// One row: birth date, today, phone, residency, and the expected code or age.
    fn check(
        birth: &str,
        today: &str,
        phone: &str,
        residency: Residency,
        expect: Result<u32, &str>,
    ) {
        let got = check_applicant(&applicant(birth, phone, residency), d(today));
        match (got, expect) {
            (Ok(e), Ok(age)) => {
                assert_eq!(e.age, age, "{birth} on {today}");
                assert_eq!(e.name, "김영희");
                assert_eq!(e.phone.len(), 11);
            }
            (Err(r), Err(code)) => assert_eq!(r.code(), code, "{birth} on {today}"),
            (got, expect) => panic!("{birth} on {today}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn eligibility_table() {
        use Residency::*;
        check("1950-03-01", "2025-12-01", "010-1234-5678", Lives, Ok(75));
        // The 19th birthday itself is the first eligible day.
        check("2006-12-01", "2025-12-01", "01012345678", Lives, Ok(19));
        check(
            "2006-12-02",
            "2025-12-01",
            "01012345678",
            Lives,
            Err("under_age"),
        );
        check("2000-01-01", "2025-12-01", "010 1234 5678", Works, Ok(25));
        check("2000-01-01", "2025-12-01", "01012345678", Studies, Ok(25));
        check(
            "2000-01-01",
            "2025-12-01",
            "01012345678",
            Outside,
            Err("outside_seoul"),
        );
        check(
            "2000-01-01",
            "2025-12-01",
            "0212345678",
            Lives,
            Err("phone_invalid"),
        );
        check(
            "2000-01-01",
            "2025-12-01",
            "0101234567",
            Lives,
            Err("phone_invalid"),
        );
        check(
            "2030-01-01",
            "2025-12-01",
            "01012345678",
            Lives,
            Err("birth_date_invalid"),
        );
    }

    #[test]
    fn the_same_person_ignores_spaces_and_phone_punctuation_only() {
        let a = applicant("1950-03-01", "010-1234-5678", Residency::Lives);
        let e = check_applicant(&a, d("2025-12-01")).unwrap();
        let mut again = applicant("1950-03-01", "010 1234 5678", Residency::Works);
        again.name = "김 영희".to_owned();
        assert!(same_person(&e, &again));
        again.birth_date = d("1950-03-02");
        assert!(!same_person(&e, &again));
        let mut other_phone = applicant("1950-03-01", "01012345679", Residency::Lives);
        assert!(!same_person(&e, &other_phone));
        other_phone.phone = "01012345678".to_owned();
        other_phone.name = "김영수".to_owned();
        assert!(!same_person(&e, &other_phone));
    }

    #[test]
    fn already_a_member_names_the_earlier_sign_up() {
        let here = AlreadyMember {
            member_no: None,
            receipt_no: Some("0001".into()),
            day: Some(d("2025-12-03")),
        };
        assert_eq!(here.code(), "already_member");
        assert_eq!(
            here.ko(),
            "이미 가입된 분입니다 (2025년 12월 3일 접수번호 0001). 다시 가입하지 않아도 됩니다. 회원 카드를 잃어버렸다면 직원에게 말씀해 주세요."
        );
        let member = AlreadyMember {
            member_no: Some("PP-0042".into()),
            receipt_no: None,
            day: None,
        };
        assert!(member
            .en()
            .starts_with("You are already a member (member no. PP-0042)."));
    }

    #[test]
    fn leap_day_birthday_turns_over_on_first_of_march() {
        assert_eq!(age_on(d("2004-02-29"), d("2023-02-28")), 18);
        assert_eq!(age_on(d("2004-02-29"), d("2023-03-01")), 19);
        assert_eq!(age_on(d("2004-02-29"), d("2024-02-29")), 20);
    }

    #[test]
    fn names_that_hide_or_reorder_text_or_run_long_are_refused() {
        fn check(name: &str) -> Result<String, &'static str> {
            check_name(name).map(str::to_owned).map_err(|r| r.code())
        }
        assert_eq!(check(" 김영희 "), Ok("김영희".to_owned()));
        assert_eq!(check("Kim Young-hee"), Ok("Kim Young-hee".to_owned()));
        assert_eq!(check("김영\u{202E}희"), Err("name_invalid"));
        assert_eq!(check("김\u{2066}영희\u{2069}"), Err("name_invalid"));
        assert_eq!(check("김영\u{200B}희"), Err("name_invalid"));
        assert_eq!(check("김영희\n관리자"), Err("name_invalid"));
        assert_eq!(check("김\u{7}영희"), Err("name_invalid"));
        assert_eq!(
            check(&"가".repeat(MAX_NAME_CHARS)).map(|n| n.chars().count()),
            Ok(MAX_NAME_CHARS)
        );
        assert_eq!(
            check(&"가".repeat(MAX_NAME_CHARS + 1)),
            Err("name_too_long")
        );
        for refusal in [Refusal::NameTooLong, Refusal::NameInvalid] {
            assert!(refusal.ko().contains("이름") && refusal.en().contains("name"));
        }
    }

    #[test]
    fn empty_name_is_refused_with_advice_in_both_languages() {
        let mut a = applicant("1950-03-01", "01012345678", Residency::Lives);
        a.name = "  ".to_owned();
        let r = check_applicant(&a, d("2025-12-01")).unwrap_err();
        assert_eq!(r, Refusal::NameMissing);
        assert!(r.ko().contains("이름"));
        assert!(r.en().contains("name"));
    }

    #[test]
    fn every_refusal_says_what_to_do_in_korean_and_english() {
        let all = [
            Refusal::NameMissing,
            Refusal::BornInFuture(d("2030-01-01")),
            Refusal::UnderAge { age: 18 },
            Refusal::BadPhone("02".to_owned()),
            Refusal::OutsideSeoul,
        ];
        for r in all {
            assert!(r.ko().chars().any(|c| ('가'..='힣').contains(&c)), "{r:?}");
            assert!(r.en().is_ascii(), "{r:?}");
            assert!(!r.to_string().ends_with('.'), "{r:?}");
        }
    }
}
