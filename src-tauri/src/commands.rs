//! The commands the UI invokes. Each parses its input, calls a core or the store, and maps the
//! error; nothing is decided here.

use serde::{Deserialize, Serialize};
use tauri::State;
use terminal_store::ConfirmedEnrollment;

use crate::config::Role;
use crate::error::{CommandError, ErrorCode, Lang};
use crate::terminal::AppState;

/// What the UI shows in its header.
#[derive(Debug, Serialize)]
pub struct TerminalInfo {
    pub role: Role,
    pub site: String,
    pub site_name: String,
    pub language: Lang,
    /// Operations waiting to reach the central server.
    pub queued: i64,
    pub today: String,
    /// Text and touch-target sizes for the configured screen, if one is configured.
    pub sizes: Option<kiosk_core::screen::Sizes>,
}

#[tauri::command]
pub fn terminal_info(state: State<'_, AppState>) -> Result<TerminalInfo, CommandError> {
    let lang = state.lang();
    let t = state.terminal()?;
    let queued = t
        .store()?
        .outbox_queued()
        .map_err(|e| CommandError::storage(lang, &e))?;
    Ok(TerminalInfo {
        role: t.config.role,
        site: t.config.site.clone(),
        site_name: t.config.site_name.clone(),
        language: lang,
        queued,
        today: t.today().to_string(),
        sizes: t.config.screen.map(|s| s.sizes()),
    })
}

/// Switches the language of the terminal's messages, and remembers it across restarts.
#[tauri::command]
pub fn set_language(state: State<'_, AppState>, language: Lang) -> Result<Lang, CommandError> {
    state.set_lang(language);
    if let Ok(t) = state.terminal() {
        t.store()?
            .set_setting("language", language.as_str())
            .map_err(|e| CommandError::storage(language, &e))?;
    }
    Ok(language)
}

/// What the clerk typed for a walk-in applicant.
#[derive(Debug, Deserialize)]
pub struct ApplicantInput {
    pub name: String,
    /// `YYYY-MM-DD`, or eight digits `YYYYMMDD` as typed on the keypad.
    pub birth_date: String,
    pub phone: String,
    pub residency: kiosk_core::Residency,
}

fn parse_birth_date(raw: &str, lang: Lang) -> Result<chrono::NaiveDate, CommandError> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    chrono::NaiveDate::parse_from_str(&digits, "%Y%m%d")
        .ok()
        .filter(|_| digits.len() == 8)
        .ok_or_else(|| {
            CommandError::new(
                ErrorCode::InvalidInput,
                lang,
                format!("생년월일 '{raw}'을(를) 알아볼 수 없습니다. 19500301처럼 8자리 숫자로 입력하세요."),
                format!("The birth date '{raw}' is not a date. Type it as 8 digits, like 19500301."),
            )
        })
}

/// Checks an applicant and, when eligible, records the enrollment durably and queues it.
#[tauri::command]
pub fn enroll_applicant(
    state: State<'_, AppState>,
    applicant: ApplicantInput,
) -> Result<ConfirmedEnrollment, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    let applicant = kiosk_core::Applicant {
        birth_date: parse_birth_date(&applicant.birth_date, lang)?,
        name: applicant.name,
        phone: applicant.phone,
        residency: applicant.residency,
    };
    let now = t.now();
    let enrollment = kiosk_core::check_applicant(&applicant, now.date_naive())
        .map_err(|r| CommandError::from_refusal(lang, &r))?;
    let op_id = uuid::Uuid::new_v4().to_string();
    t.store()?
        .record_enrollment(&op_id, &t.config.site, &enrollment, now)
        .map_err(|e| CommandError::storage(lang, &e))
}

/// The enrollments this kiosk confirmed today, newest first.
#[tauri::command]
pub fn list_enrollments_today(
    state: State<'_, AppState>,
) -> Result<Vec<ConfirmedEnrollment>, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    t.store()?
        .enrollments_on(t.today())
        .map_err(|e| CommandError::storage(lang, &e))
}

/// What the counter shows for a member.
#[derive(Debug, Serialize)]
pub struct MemberView {
    pub member_no: String,
    pub name: String,
    #[serde(flatten)]
    pub week: merchant_core::MemberWeek,
}

/// Finds a member by number and rates their step reports for this week's view.
#[tauri::command]
pub fn find_member(
    state: State<'_, AppState>,
    member_no: String,
) -> Result<MemberView, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Counter)?;
    let wanted = member_no.trim().to_uppercase();
    let store = t.store()?;
    let member = store
        .member(&wanted)
        .map_err(|e| CommandError::storage(lang, &e))?
        .ok_or_else(|| {
            CommandError::new(
                ErrorCode::MemberNotFound,
                lang,
                format!("회원번호 '{wanted}'인 회원을 찾지 못했습니다. 회원 카드의 번호를 다시 확인해 주세요."),
                format!("No member numbered '{wanted}' is known here. Check the number on the member card."),
            )
        })?;
    let reports: Vec<points_core::StepReport> = store
        .step_reports(&member.member_no)
        .map_err(|e| CommandError::storage(lang, &e))?
        .into_iter()
        .map(|r| points_core::StepReport {
            reported_at: r.reported_at,
            day: r.day,
            steps: r.steps,
        })
        .collect();
    let week = merchant_core::member_week(member.birth_date, &reports, &t.policies, t.today());
    Ok(MemberView {
        member_no: member.member_no,
        name: member.name,
        week,
    })
}
