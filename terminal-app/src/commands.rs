//! The commands the UI invokes. Each parses its input, calls a core or the store, and maps the
//! error; nothing is decided here.

use serde::{Deserialize, Serialize};
use terminal_store::ConfirmedEnrollment;

use merchant_core::watch_sync::{
    check_pairing, fetch_from, last_seq_after, new_records, new_step_reports, reportable_totals,
    signed_totals, WatchOwner,
};
use terminal_store::WatchSync;

use crate::config::Role;
use crate::error::{CommandError, ErrorCode, Lang};
use crate::terminal::{AppState, Terminal};
use crate::watch::{Reading, WatchChoice, WatchRadio};

/// What the UI shows in its header.
#[derive(Debug, Serialize, ts_rs::TS)]
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
    /// The terminal is not provisioned and opens on the setup screen.
    pub setup: bool,
}

pub fn terminal_info(state: &AppState) -> Result<TerminalInfo, CommandError> {
    let lang = state.lang();
    let t = state.terminal()?;
    let (queued, provisioned) = {
        let store = t.store()?;
        let read = || -> anyhow::Result<(i64, bool)> {
            Ok((store.outbox_queued()?, store.identity()?.is_some()))
        };
        read().map_err(|e| CommandError::storage(lang, &e))?
    };
    Ok(TerminalInfo {
        role: t.config.role,
        site: t.config.site.clone(),
        site_name: t.config.site_name.clone(),
        language: lang,
        queued,
        today: t.today().to_string(),
        sizes: t.config.screen.map(|s| s.sizes()),
        setup: t.config.setup_screen && !provisioned,
    })
}

/// Switches the language of the terminal's messages, and remembers it across restarts.
pub fn set_language(state: &AppState, language: Lang) -> Result<Lang, CommandError> {
    state.set_lang(language);
    if let Ok(t) = state.terminal() {
        t.store()?
            .set_setting("language", language.as_str())
            .map_err(|e| CommandError::storage(language, &e))?;
    }
    Ok(language)
}

/// What the clerk typed for a walk-in applicant.
#[derive(Debug, Deserialize, ts_rs::TS)]
pub struct ApplicantInput {
    pub name: String,
    /// `YYYY-MM-DD`, or eight digits `YYYYMMDD` as typed on the keypad.
    pub birth_date: String,
    pub phone: String,
    pub residency: kiosk_core::Residency,
}

pub(crate) fn parse_birth_date(raw: &str, lang: Lang) -> Result<chrono::NaiveDate, CommandError> {
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

/// The enrollments this kiosk confirmed today, newest first.
pub fn list_enrollments_today(state: &AppState) -> Result<Vec<ConfirmedEnrollment>, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    t.store()?
        .enrollments_on(t.today())
        .map_err(|e| CommandError::storage(lang, &e))
}

/// What the counter shows for a member.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct MemberView {
    pub member_no: String,
    pub name: String,
    #[serde(flatten)]
    pub week: merchant_core::MemberWeek,
    /// Minutes of moderate to vigorous activity and resting heart rate, from the watch.
    pub heart: merchant_core::watch_sync::HeartWeek,
}

fn member_not_found(lang: Lang, wanted: &str) -> CommandError {
    CommandError::new(
        ErrorCode::MemberNotFound,
        lang,
        format!(
            "회원번호 '{wanted}'인 회원을 찾지 못했습니다. 회원 카드의 번호를 다시 확인해 주세요."
        ),
        format!(
            "No member numbered '{wanted}' is known here. Check the number on the member card."
        ),
    )
}

/// The member numbered `member_no` (as typed), or why not.
fn member(
    t: &Terminal,
    lang: Lang,
    member_no: &str,
) -> Result<terminal_store::Member, CommandError> {
    let wanted = member_no.trim().to_uppercase();
    t.store()?
        .member(&wanted)
        .map_err(|e| CommandError::storage(lang, &e))?
        .ok_or_else(|| member_not_found(lang, &wanted))
}

/// Rates a member's step reports for this week's view, with their heart-rate figures.
pub(crate) fn member_view(
    t: &Terminal,
    lang: Lang,
    member: terminal_store::Member,
) -> Result<MemberView, CommandError> {
    let store = t.store()?;
    let storage = |e: anyhow::Error| CommandError::storage(lang, &e);
    let reports: Vec<points_core::StepReport> = store
        .step_reports(&member.member_no)
        .map_err(storage)?
        .into_iter()
        .map(|r| points_core::StepReport {
            reported_at: r.reported_at,
            day: r.day,
            steps: r.steps,
        })
        .collect();
    let today = t.today();
    let week = merchant_core::member_week(member.birth_date, &reports, &t.policies, today);
    let start = merchant_core::week_start(today);
    let end = start + chrono::Days::new(6);
    let samples = store
        .heart_rate_samples(&member.member_no, start, end)
        .map_err(storage)?;
    let hours = store
        .hour_steps(&member.member_no, start, end)
        .map_err(storage)?;
    let heart = merchant_core::watch_sync::heart_week(&samples, &hours, week.age, start);
    Ok(MemberView {
        member_no: member.member_no,
        name: member.name,
        week,
        heart,
    })
}

/// Finds a member by number and rates their step reports for this week's view.
pub fn find_member(state: &AppState, member_no: String) -> Result<MemberView, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Counter)?;
    let member = member(t, lang, &member_no)?;
    member_view(t, lang, member)
}

/// Scans for watches nearby, nearest first.
pub async fn scan_watches(
    state: &AppState,
    radio: &WatchRadio,
) -> Result<Vec<WatchChoice>, CommandError> {
    let lang = state.lang();
    state.terminal()?;
    radio
        .scan()
        .await
        .map_err(|e| CommandError::from_link(lang, &e))
}

/// A warning from the watch (clock far off, battery low): the sync or pairing still happened.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct WatchWarning {
    pub code: &'static str,
    pub message: String,
}

fn warnings(lang: Lang, reading: &Reading) -> Vec<WatchWarning> {
    reading
        .warnings
        .iter()
        .map(|w| WatchWarning {
            code: w.code(),
            message: lang.pick(w.ko(), w.en()),
        })
        .collect()
}

/// What a watch sync did, and the member's week after it.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct WatchSynced {
    pub serial: String,
    /// New records stored from the watch.
    pub records: usize,
    /// Step reports stored and queued for the central server.
    pub step_reports: usize,
    pub warnings: Vec<WatchWarning>,
    pub member: MemberView,
}

/// Syncs the member's watch picked from the last scan: refuses a watch paired to someone
/// else, sets its clock, fetches the history after the last record stored, stores it, and
/// queues the new day totals as step reports. What arrived before a transfer failed is kept.
/// A watch new here is paired to the member only with the member's `token` (their QR code,
/// scanned at this counter), the proof of presence the central server asks for.
pub async fn sync_watch(
    state: &AppState,
    radio: &WatchRadio,
    member_no: String,
    address: String,
    token: Option<String>,
) -> Result<WatchSynced, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Counter)?;
    let member = member(t, lang, &member_no)?;
    let owner = WatchOwner::Member(member.member_no.clone());
    let storage = |e: anyhow::Error| CommandError::storage(lang, &e);
    let now = t.now();
    if let Some(token) = &token {
        crate::counter::check_members_token(t, lang, token, &member.member_no, now.to_utc())?;
    }
    let reading = radio
        .read(lang, &address, now.to_utc(), |info| {
            let known = t.store()?.watch(&info.serial).map_err(storage)?;
            check_pairing(&info.serial, &owner, known.as_ref().map(|w| &w.owner))
                .map_err(|r| CommandError::from_pairing(lang, &r))?;
            if known.is_none() && token.is_none() {
                return Err(needs_member_token(lang));
            }
            Ok(Some(fetch_from(known.and_then(|w| w.last_seq))))
        })
        .await?;
    let serial = reading.info.serial.clone();
    let (records, step_reports) = {
        let mut store = t.store()?;
        let last = store
            .watch(&serial)
            .map_err(storage)?
            .and_then(|w| w.last_seq);
        let new = new_records(&reading.records, last);
        let known = store.step_days(&member.member_no).map_err(storage)?;
        // A day the watch signed reports its signed total, with the watch's proof: the only
        // steps the central server credits.
        let signed = signed_totals(&new);
        let reports: Vec<_> = new_step_reports(&reportable_totals(&new), &known, now)
            .into_iter()
            .map(|r| {
                let proof = signed
                    .get(&r.day)
                    .filter(|(steps, _)| *steps == r.steps)
                    .map(|(_, proof)| *proof);
                (uuid::Uuid::new_v4().to_string(), r, proof)
            })
            .collect();
        let pairing_op_id = uuid::Uuid::new_v4().to_string();
        store
            .record_watch_sync(&WatchSync {
                serial: &serial,
                member_no: &member.member_no,
                records: &new,
                last_seq: last_seq_after(last, &new),
                reports: &reports,
                pairing_op_id: &pairing_op_id,
                token: token.as_deref(),
                certificate: reading.info.certificate.as_deref(),
                at: now,
            })
            .map_err(storage)?;
        (new.len(), reports.len())
    };
    if let Some(Err(e)) = &reading.fetch {
        return Err(CommandError::from_link(lang, e));
    }
    Ok(WatchSynced {
        serial,
        records,
        step_reports,
        warnings: warnings(lang, &reading),
        member: member_view(t, lang, member)?,
    })
}

fn needs_member_token(lang: Lang) -> CommandError {
    CommandError::new(
        ErrorCode::NeedsMemberToken,
        lang,
        "이 단말기에서 처음 연결하는 워치입니다. 회원의 QR 코드(앱 또는 카드)를 먼저 스캔한 뒤 워치를 다시 연결해 주세요.",
        "This watch is new at this counter. Scan the member's QR code (app or card) first, then sync the watch again.",
    )
}

/// A watch paired at the kiosk.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct PairedWatch {
    pub serial: String,
    pub warnings: Vec<WatchWarning>,
}

/// Pairs the watch picked from the last scan to an enrollment confirmed here, and sets its
/// clock; refuses a watch paired to someone else. The pairing is queued for the central server
/// behind the sign-up, as a `watch_pairing` naming the enrollment's op id.
pub async fn pair_watch(
    state: &AppState,
    radio: &WatchRadio,
    op_id: String,
    address: String,
) -> Result<PairedWatch, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    let storage = |e: anyhow::Error| CommandError::storage(lang, &e);
    let known = t
        .store()?
        .enrollments_on(t.today())
        .map_err(storage)?
        .iter()
        .any(|e| e.op_id == op_id);
    if !known {
        return Err(CommandError::new(
            ErrorCode::EnrollmentNotFound,
            lang,
            "오늘 이 키오스크에서 접수한 가입이 아닙니다. 가입을 먼저 접수한 뒤 워치를 연결해 주세요.",
            "This is not a sign-up confirmed at this kiosk today. Confirm the sign-up first, then pair the watch.",
        ));
    }
    let owner = WatchOwner::Enrollment(op_id);
    let now = t.now();
    let reading = radio
        .read(lang, &address, now.to_utc(), |info| {
            let known = t.store()?.watch(&info.serial).map_err(storage)?;
            check_pairing(&info.serial, &owner, known.as_ref().map(|w| &w.owner))
                .map_err(|r| CommandError::from_pairing(lang, &r))?;
            Ok(None)
        })
        .await?;
    t.store()?
        .record_watch_pairing(
            &reading.info.serial,
            &owner,
            &uuid::Uuid::new_v4().to_string(),
            now,
        )
        .map_err(storage)?;
    Ok(PairedWatch {
        serial: reading.info.serial.clone(),
        warnings: warnings(lang, &reading),
    })
}
