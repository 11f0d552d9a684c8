//! The Sign-up schedule and quotas page: who may sign up which day (everyone, birth year odd
//! or even, an age band, nobody) shown as a four-week calendar with who that is, set for a day
//! or a run of days; and each site's places on a day, set one by one or from a CSV file whose
//! every bad row is reported with nothing applied.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use chrono::{Datelike as _, Days, NaiveDate};
use kiosk_core::admission::{DayRule, QuotaLease};
use maud::{html, Markup};

use super::pages::{Nav, Notice};
use super::rules::Permission;
use super::text::{Lang, T};
use super::{check_change, see_other, session_for, signed_page, Console, Ctx, Form, Refusal};
use crate::store::QuotaChange;

/// Days the calendar shows.
pub const CALENDAR_DAYS: u64 = 28;
/// The most days one change sets.
pub const MAX_RUN_DAYS: u64 = 62;
/// The most rows of a quota file.
pub const MAX_QUOTA_ROWS: usize = 5_000;
/// The most places a site may have on a day.
pub const MAX_PLACES: u32 = 100_000;
/// The longest site name.
pub const MAX_SITE_CHARS: usize = 100;
/// The largest quota file.
pub const MAX_QUOTA_FILE_BYTES: usize = 256 * 1024;

/// A rule as the form names it.
fn rule_of(form: &Form) -> Result<DayRule, T> {
    let age = |name: &str| -> Result<u32, T> {
        form.get(name)
            .map(str::trim)
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| *v <= 150)
            .ok_or(T::BadAgeBand)
    };
    match form.get("rule").unwrap_or("") {
        "open" => Ok(DayRule::Open),
        "odd_birth_years" => Ok(DayRule::OddBirthYears),
        "even_birth_years" => Ok(DayRule::EvenBirthYears),
        "closed" => Ok(DayRule::Closed),
        "age_band" => {
            let (min_age, max_age) = (age("min_age")?, age("max_age")?);
            if min_age > max_age {
                return Err(T::BadAgeBand);
            }
            Ok(DayRule::AgeBand { min_age, max_age })
        }
        _ => Err(T::BadRule),
    }
}

/// Who may sign up on `day` under `rule`, in words.
pub fn who(lang: Lang, rule: Option<DayRule>, day: NaiveDate) -> String {
    let t = |text: T| text.get(lang);
    match rule {
        None | Some(DayRule::Closed) => t(T::RuleClosed).to_owned(),
        Some(DayRule::Open) => t(T::RuleOpen).to_owned(),
        Some(DayRule::OddBirthYears) => {
            format!("{} ({} 1951, 1953 …)", t(T::RuleOdd), t(T::ForExample))
        }
        Some(DayRule::EvenBirthYears) => {
            format!("{} ({} 1950, 1952 …)", t(T::RuleEven), t(T::ForExample))
        }
        Some(DayRule::AgeBand { min_age, max_age }) => {
            // Born after the day `max_age + 1` years back, up to the day `min_age` years back.
            let year = |years: u32| day.with_year(day.year() - i32::try_from(years).unwrap_or(0));
            let oldest = year(max_age + 1).and_then(|d| d.checked_add_days(Days::new(1)));
            let youngest = year(min_age);
            match (oldest, youngest, lang) {
                (Some(from), Some(to), Lang::Ko) => {
                    format!("만 {min_age}–{max_age}세 ({from} – {to} 출생)")
                }
                (Some(from), Some(to), Lang::En) => {
                    format!("Aged {min_age}–{max_age} (born {from} – {to})")
                }
                (_, _, Lang::Ko) => format!("만 {min_age}–{max_age}세"),
                (_, _, Lang::En) => format!("Aged {min_age}–{max_age}"),
            }
        }
    }
}

/// A row of a quota file: `day,site,places`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowProblem {
    Columns,
    Day,
    Site,
    Places,
    Repeated,
}

impl RowProblem {
    fn text(&self) -> T {
        match self {
            RowProblem::Columns => T::CsvColumns,
            RowProblem::Day => T::CsvDay,
            RowProblem::Site => T::CsvSite,
            RowProblem::Places => T::CsvPlaces,
            RowProblem::Repeated => T::CsvRepeated,
        }
    }
}

/// Reads a quota file (a header `day,site,places`, then one row each): every row's problem
/// with its line number, or the changes.
pub fn read_quota_csv(text: &str) -> Result<Vec<QuotaChange>, Vec<(usize, RowProblem)>> {
    let mut changes = Vec::new();
    let mut problems = Vec::new();
    let mut seen = BTreeMap::new();
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, header))
            if header
                .trim_start_matches('\u{feff}')
                .split(',')
                .map(str::trim)
                .eq(["day", "site", "places"]) => {}
        Some((n, _)) => return Err(vec![(n + 1, RowProblem::Columns)]),
        None => return Err(vec![(1, RowProblem::Columns)]),
    }
    for (n, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let [day, site, places] = cells[..] else {
            problems.push((n + 1, RowProblem::Columns));
            continue;
        };
        let Ok(day) = NaiveDate::parse_from_str(day, "%Y-%m-%d") else {
            problems.push((n + 1, RowProblem::Day));
            continue;
        };
        if site.is_empty()
            || site.chars().count() > MAX_SITE_CHARS
            || site.chars().any(char::is_control)
        {
            problems.push((n + 1, RowProblem::Site));
            continue;
        }
        let Some(places) = places.parse::<u32>().ok().filter(|p| *p <= MAX_PLACES) else {
            problems.push((n + 1, RowProblem::Places));
            continue;
        };
        if seen.insert((day, site.to_owned()), n).is_some() {
            problems.push((n + 1, RowProblem::Repeated));
            continue;
        }
        changes.push(QuotaChange {
            day,
            site: site.to_owned(),
            places,
        });
    }
    if changes.len() > MAX_QUOTA_ROWS {
        problems.push((MAX_QUOTA_ROWS + 2, RowProblem::Columns));
    }
    if problems.is_empty() {
        Ok(changes)
    } else {
        Err(problems)
    }
}

/// What the page shows beside the stored figures.
#[derive(Default)]
struct Shown {
    notice: Option<Notice>,
    /// The quota file's problems, by line.
    problems: Vec<(usize, RowProblem)>,
    /// A quota refused for the places already taken: site, day, taken.
    below_used: Option<(String, NaiveDate, u32)>,
}

impl Shown {
    /// The page with `text` as what was wrong.
    fn error(text: T) -> Shown {
        Shown {
            notice: Some(Notice::Error(text)),
            ..Shown::default()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn page(
    lang: Lang,
    csrf: &str,
    may_change: bool,
    from: NaiveDate,
    rules: &BTreeMap<NaiveDate, DayRule>,
    day: NaiveDate,
    leases: &[QuotaLease],
    shown: &Shown,
) -> Markup {
    let t = |text: T| text.get(lang);
    let days: Vec<NaiveDate> = (0..CALENDAR_DAYS)
        .filter_map(|i| from.checked_add_days(Days::new(i)))
        .collect();
    let weekday = |d: NaiveDate| {
        let ko = ["월", "화", "수", "목", "금", "토", "일"];
        let en = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let i = d.weekday().num_days_from_monday() as usize;
        match lang {
            Lang::Ko => ko[i],
            Lang::En => en[i],
        }
    };
    html! {
        p.lead { (t(T::ScheduleIntro)) }
        @if !shown.problems.is_empty() {
            div.notice.error role="alert" {
                p { (t(T::CsvRefused)) }
                ul {
                    @for (line, problem) in &shown.problems {
                        li { (t(T::Line)) " " (line) ": " (t(problem.text())) }
                    }
                }
            }
        }
        @if let Some((site, on, used)) = &shown.below_used {
            div.notice.error role="alert" {
                p { (site) " · " (on) ": " (t(T::BelowUsed)) " (" (used) ")" }
            }
        }
        h2 { (t(T::CalendarHeading)) }
        form.row method="get" action="/console/schedule" {
            div.field {
                label for="from" { (t(T::CalendarFrom)) }
                input #from type="date" name="from" value=(from.to_string());
            }
            input type="hidden" name="day" value=(day.to_string());
            button.quiet type="submit" { (t(T::Show)) }
        }
        div.scroll {
            table {
                caption.visually-hidden { (t(T::CalendarHeading)) }
                thead { tr {
                    th scope="col" { (t(T::Day)) }
                    th scope="col" { (t(T::WhoMayCome)) }
                } }
                tbody {
                    @for d in &days {
                        tr {
                            th scope="row" { (d) " (" (weekday(*d)) ")" }
                            td { (who(lang, rules.get(d).copied(), *d)) }
                        }
                    }
                }
            }
        }
        @if may_change {
            h2 { (t(T::SetRuleHeading)) }
            form.stack method="post" action="/console/schedule" {
                input type="hidden" name="csrf" value=(csrf);
                div.row {
                    div.field {
                        label for="rule-from" { (t(T::FirstDay)) }
                        input #rule-from type="date" name="from" value=(from.to_string()) required;
                    }
                    div.field {
                        label for="rule-to" { (t(T::LastDay)) }
                        input #rule-to type="date" name="to" value=(from.to_string()) required;
                    }
                }
                div.field {
                    label for="rule" { (t(T::Rule)) }
                    select #rule name="rule" {
                        option value="open" { (t(T::RuleOpen)) }
                        option value="odd_birth_years" { (t(T::RuleOdd)) }
                        option value="even_birth_years" { (t(T::RuleEven)) }
                        option value="age_band" { (t(T::RuleAges)) }
                        option value="closed" { (t(T::RuleClosed)) }
                    }
                }
                div.row {
                    div.field {
                        label for="min_age" { (t(T::MinAge)) }
                        input #min_age type="number" name="min_age" min="0" max="150" inputmode="numeric";
                    }
                    div.field {
                        label for="max_age" { (t(T::MaxAge)) }
                        input #max_age type="number" name="max_age" min="0" max="150" inputmode="numeric";
                    }
                }
                p.hint { (t(T::RuleHint)) }
                button type="submit" { (t(T::SetRule)) }
            }
        }
        h2 { (t(T::QuotasOfDay)) " (" (day) ")" }
        form.row method="get" action="/console/schedule" {
            input type="hidden" name="from" value=(from.to_string());
            div.field {
                label for="quota-day" { (t(T::Day)) }
                input #quota-day type="date" name="day" value=(day.to_string());
            }
            button.quiet type="submit" { (t(T::Show)) }
        }
        @if leases.is_empty() {
            p { (t(T::QuotasNone)) }
        } @else {
            table {
                caption.visually-hidden { (t(T::QuotasOfDay)) }
                thead { tr {
                    th scope="col" { (t(T::Site)) }
                    th scope="col" { (t(T::Places)) }
                    th scope="col" { (t(T::Used)) }
                    th scope="col" { (t(T::Left)) }
                } }
                tbody {
                    @for lease in leases {
                        tr {
                            th scope="row" { (lease.site) }
                            td { (lease.places) }
                            td { (lease.used) }
                            td { (lease.remaining()) }
                        }
                    }
                }
            }
        }
        @if may_change {
            h3 { (t(T::SetQuotaHeading)) }
            form.row method="post" action="/console/quotas" {
                input type="hidden" name="csrf" value=(csrf);
                div.field {
                    label for="q-day" { (t(T::Day)) }
                    input #q-day type="date" name="day" value=(day.to_string()) required;
                }
                div.field {
                    label for="q-site" { (t(T::Site)) }
                    input #q-site type="text" name="site" maxlength=(MAX_SITE_CHARS) required;
                }
                div.field {
                    label for="q-places" { (t(T::Places)) }
                    input #q-places type="number" name="places" min="0" max=(MAX_PLACES) inputmode="numeric" required;
                }
                button type="submit" { (t(T::SetQuota)) }
            }
            h3 { (t(T::QuotaCsvHeading)) }
            form.stack method="post" action="/console/quotas/csv" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(csrf);
                p.hint { (t(T::QuotaCsvHint)) }
                div.field {
                    label for="q-file" { (t(T::QuotaFile)) }
                    input #q-file type="file" name="file" accept=".csv,text/csv";
                }
                div.field {
                    label for="q-text" { (t(T::QuotaText)) }
                    textarea #q-text name="text" rows="6" cols="60" spellcheck="false" {}
                }
                button type="submit" { (t(T::UploadQuotas)) }
            }
        }
    }
}

/// The days asked for: `?from=` for the calendar (today when absent), `?day=` for the quotas.
fn days_asked(console: &Console, ctx: &Ctx) -> Result<(NaiveDate, NaiveDate), T> {
    let today = points_core::kst_day(console.clock.now());
    Ok((ctx.day("from", today)?, ctx.day("day", today)?))
}

async fn answer(
    console: &Arc<Console>,
    ctx: &Ctx,
    signed: &super::SignedIn,
    status: StatusCode,
    from: NaiveDate,
    day: NaiveDate,
    shown: Shown,
) -> Result<Response, Refusal> {
    let to = from
        .checked_add_days(Days::new(CALENDAR_DAYS))
        .unwrap_or(from);
    let (rules, leases) = console
        .store(move |store| Ok((store.admission_days(from, to)?, store.leases_on(day)?)))
        .await?;
    let notice = shown.notice.or_else(|| super::notice_of(ctx));
    let body = page(
        ctx.lang,
        &signed.session.csrf,
        signed.session.role.may(Permission::Change),
        from,
        &rules,
        day,
        &leases,
        &shown,
    );
    Ok(signed_page(
        console,
        ctx,
        signed,
        Nav::Schedule,
        notice,
        status,
        body,
    ))
}

/// `GET /console/schedule`.
pub(super) async fn schedule_page(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    method: Method,
) -> Response {
    let signed = match session_for(&console, &ctx, &method).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let today = points_core::kst_day(console.clock.now());
    let shown = async {
        match days_asked(&console, &ctx) {
            Ok((from, day)) => {
                answer(
                    &console,
                    &ctx,
                    &signed,
                    StatusCode::OK,
                    from,
                    day,
                    Shown::default(),
                )
                .await
            }
            Err(text) => {
                let shown = Shown::error(text);
                answer(
                    &console,
                    &ctx,
                    &signed,
                    StatusCode::BAD_REQUEST,
                    today,
                    today,
                    shown,
                )
                .await
            }
        }
    };
    shown
        .await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

/// `POST /console/schedule`: one rule for the days `from` to `to`.
pub(super) async fn set_schedule(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed = match session_for(&console, &ctx, &Method::POST).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let today = points_core::kst_day(console.clock.now());
    let done = async {
        let form = Form::parse(body)?;
        check_change(&ctx, &headers, &form, &signed.session.csrf)?;
        signed.require(Permission::Change)?;
        let wrong = |text: T| {
            let shown = Shown::error(text);
            answer(
                &console,
                &ctx,
                &signed,
                StatusCode::BAD_REQUEST,
                today,
                today,
                shown,
            )
        };
        let date = |name: &str| {
            form.get(name)
                .map(str::trim)
                .filter(|v| v.len() <= 10)
                .and_then(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
        };
        let (Some(from), Some(to)) = (date("from"), date("to")) else {
            return wrong(T::BadDay).await;
        };
        if to < from || (to - from).num_days() >= i64::try_from(MAX_RUN_DAYS).unwrap_or(62) {
            return wrong(T::BadRun).await;
        }
        if from < today {
            return wrong(T::PastDay).await;
        }
        let rule = match rule_of(&form) {
            Ok(rule) => rule,
            Err(text) => return wrong(text).await,
        };
        let days: Vec<(NaiveDate, DayRule)> = from
            .iter_days()
            .take_while(|d| *d <= to)
            .map(|d| (d, rule))
            .collect();
        let (by, now) = (signed.actor(), console.clock.now());
        console
            .store(move |store| store.set_schedule(&days, &by, now))
            .await?;
        Ok(see_other(&format!(
            "/console/schedule?from={from}&m=schedule_set"
        )))
    };
    done.await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

async fn store_quotas(
    console: &Arc<Console>,
    ctx: &Ctx,
    signed: &super::SignedIn,
    changes: Vec<QuotaChange>,
) -> Result<Response, Refusal> {
    let today = points_core::kst_day(console.clock.now());
    let day = changes.first().map_or(today, |c| c.day);
    let (by, now) = (signed.actor(), console.clock.now());
    let stored = changes.clone();
    let refused = console
        .store(move |store| store.set_quotas(&stored, &by, now))
        .await?;
    match refused {
        Ok(()) => Ok(see_other(&format!(
            "/console/schedule?day={day}&m=quotas_set"
        ))),
        Err(refusal) => {
            let change = &changes[refusal.index.min(changes.len().saturating_sub(1))];
            let shown = Shown {
                below_used: Some((change.site.clone(), change.day, refusal.used)),
                ..Shown::default()
            };
            answer(
                console,
                ctx,
                signed,
                StatusCode::BAD_REQUEST,
                today,
                change.day,
                shown,
            )
            .await
        }
    }
}

/// `POST /console/quotas`: one site's places on one day.
pub(super) async fn set_quota(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed = match session_for(&console, &ctx, &Method::POST).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let today = points_core::kst_day(console.clock.now());
    let done = async {
        let form = Form::parse(body)?;
        check_change(&ctx, &headers, &form, &signed.session.csrf)?;
        signed.require(Permission::Change)?;
        let text = format!(
            "day,site,places\n{},{},{}",
            form.get("day").unwrap_or("").replace(['\r', '\n'], " "),
            form.get("site").unwrap_or("").replace(['\r', '\n'], " "),
            form.get("places").unwrap_or("").replace(['\r', '\n'], " "),
        );
        match read_quota_csv(&text) {
            Ok(changes) => store_quotas(&console, &ctx, &signed, changes).await,
            Err(problems) => {
                let text = problems.first().map_or(T::CsvColumns, |(_, p)| match p {
                    RowProblem::Columns => T::CsvSite,
                    other => other.text(),
                });
                let shown = Shown::error(text);
                answer(
                    &console,
                    &ctx,
                    &signed,
                    StatusCode::BAD_REQUEST,
                    today,
                    today,
                    shown,
                )
                .await
            }
        }
    };
    done.await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

/// `POST /console/quotas/csv`: many sites' places from a file (or the text typed), all or
/// none.
pub(super) async fn upload_quotas(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed = match session_for(&console, &ctx, &Method::POST).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let today = points_core::kst_day(console.clock.now());
    let done = async {
        let parts = super::policy_page::multipart_body(&headers, body)?;
        let field = |name: &str| parts.iter().find(|p| p.name == name).map(|p| &p.bytes);
        let form = super::policy_page::small_fields(&parts, &["csrf"]);
        check_change(&ctx, &headers, &form, &signed.session.csrf)?;
        signed.require(Permission::Change)?;
        let chosen = field("file")
            .filter(|b| !b.is_empty())
            .or_else(|| field("text"))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let refuse = |problems: Vec<(usize, RowProblem)>| {
            let shown = Shown {
                problems,
                ..Shown::default()
            };
            answer(
                &console,
                &ctx,
                &signed,
                StatusCode::BAD_REQUEST,
                today,
                today,
                shown,
            )
        };
        if chosen.len() > MAX_QUOTA_FILE_BYTES {
            let shown = Shown::error(T::QuotaFileTooLarge);
            return answer(
                &console,
                &ctx,
                &signed,
                StatusCode::BAD_REQUEST,
                today,
                today,
                shown,
            )
            .await;
        }
        let Ok(text) = std::str::from_utf8(chosen) else {
            return refuse(vec![(1, RowProblem::Columns)]).await;
        };
        match read_quota_csv(text) {
            Ok(changes) => store_quotas(&console, &ctx, &signed, changes).await,
            Err(problems) => refuse(problems).await,
        }
    };
    done.await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn a_quota_file_is_read_whole_or_each_bad_row_is_named() {
        let good = "day,site,places\n2026-12-07,종로구 보건소,300\n2026-12-07,성북구 보건소,0\n";
        assert_eq!(
            read_quota_csv(good),
            Ok(vec![
                QuotaChange {
                    day: day("2026-12-07"),
                    site: "종로구 보건소".into(),
                    places: 300
                },
                QuotaChange {
                    day: day("2026-12-07"),
                    site: "성북구 보건소".into(),
                    places: 0
                },
            ])
        );
        let bad = "day,site,places\n2026-12-07,종로구 보건소,300\n2026-13-07,x,1\n2026-12-07,,1\n\
                   2026-12-08,y,-1\n2026-12-08,z\n2026-12-07,종로구 보건소,5\n";
        assert_eq!(
            read_quota_csv(bad),
            Err(vec![
                (3, RowProblem::Day),
                (4, RowProblem::Site),
                (5, RowProblem::Places),
                (6, RowProblem::Columns),
                (7, RowProblem::Repeated),
            ])
        );
        assert_eq!(
            read_quota_csv("site,day,places\n"),
            Err(vec![(1, RowProblem::Columns)])
        );
        assert_eq!(read_quota_csv(""), Err(vec![(1, RowProblem::Columns)]));
    }

    #[test]
    fn who_may_come_is_said_with_the_birth_dates_of_an_age_band() {
        let on = day("2026-12-07");
        assert_eq!(
            who(
                Lang::En,
                Some(DayRule::AgeBand {
                    min_age: 65,
                    max_age: 74
                }),
                on
            ),
            "Aged 65–74 (born 1951-12-08 – 1961-12-07)"
        );
        assert_eq!(who(Lang::En, None, on), T::RuleClosed.get(Lang::En));
    }
}
