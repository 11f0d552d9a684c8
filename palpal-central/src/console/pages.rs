//! The console's pages as HTML, rendered with maud (compile-time templates; every value is
//! escaped, so a name such as `<script>` is shown as text). One layout: a skip link, the
//! header with the program's name, who is signed in, the language switch, sign-out and the
//! menu, then the page's `main` with its `h1`.

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::rules::{Role, TerminalFlags};
use super::text::{Lang, T};
use crate::store::console::{
    terminal_state, AuditAction, AuditEntry, MemberOverview, Operator, Session,
};
use crate::store::{member_number, Sighting, Terminal};
use crate::wire::Role as TerminalRole;

/// The stylesheet, served at `/console/style.css`.
pub const STYLE: &str = include_str!("style.css");

/// A page of the menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Today,
    Schedule,
    Policies,
    Terminals,
    Members,
    Reconciliation,
    Audit,
    Operators,
}

impl Nav {
    const ALL: [Nav; 8] = [
        Nav::Today,
        Nav::Schedule,
        Nav::Policies,
        Nav::Terminals,
        Nav::Members,
        Nav::Reconciliation,
        Nav::Audit,
        Nav::Operators,
    ];

    /// The page's name in the menu and its title.
    pub fn label(self) -> T {
        match self {
            Nav::Today => T::NavToday,
            Nav::Schedule => T::NavSchedule,
            Nav::Policies => T::NavPolicies,
            Nav::Terminals => T::NavTerminals,
            Nav::Members => T::NavMembers,
            Nav::Reconciliation => T::NavReconciliation,
            Nav::Audit => T::NavAudit,
            Nav::Operators => T::NavOperators,
        }
    }

    /// The page's address.
    fn href(self) -> Option<&'static str> {
        match self {
            Nav::Today => Some("/console/"),
            Nav::Policies => Some("/console/policies"),
            Nav::Reconciliation => Some("/console/reconciliation"),
            Nav::Schedule => Some("/console/schedule"),
            Nav::Terminals => Some("/console/terminals"),
            Nav::Members => Some("/console/members"),
            Nav::Audit => Some("/console/audit"),
            Nav::Operators => Some("/console/operators"),
        }
    }
}

/// A short message at the top of a page: what a change did, or what was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Done.
    Ok(T),
    /// Refused or wrong.
    Error(T),
}

/// What every page is drawn with.
pub struct Frame<'a> {
    pub lang: Lang,
    pub title: T,
    /// The path the language switch links to.
    pub path: &'a str,
    pub session: Option<&'a Session>,
    pub current: Option<Nav>,
    pub notice: Option<Notice>,
}

/// The role's name.
pub fn role_name(role: Role) -> T {
    match role {
        Role::Viewer => T::RoleViewer,
        Role::Operator => T::RoleOperator,
        Role::Admin => T::RoleAdmin,
    }
}

/// An instant as Seoul's wall clock.
pub fn seoul(at: DateTime<Utc>) -> String {
    let local = FixedOffset::east_opt(9 * 3600).map_or_else(
        || at.naive_utc(),
        |seoul| at.with_timezone(&seoul).naive_local(),
    );
    local.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The page: the layout around `body`.
pub fn page(frame: &Frame<'_>, body: Markup) -> Markup {
    let lang = frame.lang;
    let t = |text: T| text.get(lang);
    let other = lang.other();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (t(frame.title)) " · " (t(T::ProgramName)) }
                link rel="stylesheet" href="/console/style.css";
            }
            body {
                a.skip href="#main" { (t(T::SkipToContent)) }
                header.top {
                    div.bar {
                        p.brand { (t(T::ProgramName)) }
                        @if let Some(session) = frame.session {
                            p.who {
                                (t(T::SignedInAs)) " " strong { (session.name) }
                                " (" (t(role_name(session.role))) ")"
                            }
                        }
                        a href={ (frame.path) "?lang=" (other.code()) } lang=(other.code()) hreflang=(other.code()) {
                            (T::LanguageName.get(other))
                        }
                        @if let Some(session) = frame.session {
                            form method="post" action="/console/logout" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button.quiet type="submit" { (t(T::SignOut)) }
                            }
                        }
                    }
                    @if let Some(session) = frame.session {
                        nav aria-label=(t(T::NavLabel)) {
                            ul {
                                @for item in Nav::ALL {
                                    @if item != Nav::Operators || session.role == Role::Admin {
                                        li {
                                            @match item.href() {
                                                Some(href) => {
                                                    a href=(href) aria-current=[(frame.current == Some(item)).then_some("page")] {
                                                        (t(item.label()))
                                                    }
                                                }
                                                None => {
                                                    span.later { (t(item.label())) " " (t(T::NotYet)) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (t(frame.title)) }
                    @match frame.notice {
                        Some(Notice::Ok(text)) => { p.notice.ok role="status" { (t(text)) } }
                        Some(Notice::Error(text)) => { p.notice.error role="alert" { (t(text)) } }
                        None => {}
                    }
                    (body)
                }
            }
        }
    }
}

/// The sign-in form.
pub fn sign_in(lang: Lang, form_token: &str, name: &str) -> Markup {
    let t = |text: T| text.get(lang);
    html! {
        form.stack method="post" action="/console/login" {
            input type="hidden" name="csrf" value=(form_token);
            div.field {
                label for="name" { (t(T::Name)) }
                input #name type="text" name="name" value=(name) maxlength="64" autocomplete="username" required autofocus;
            }
            div.field {
                label for="password" { (t(T::Password)) }
                input #password type="password" name="password" maxlength="256" autocomplete="current-password" required;
            }
            button type="submit" { (t(T::SignInButton)) }
        }
        p { a href="/console/setup" { (t(T::FirstTime)) } }
    }
}

/// The setup form (name, one-time code, new password twice).
pub fn set_up(lang: Lang, form_token: &str, name: &str) -> Markup {
    let t = |text: T| text.get(lang);
    html! {
        p.lead { (t(T::SetUpIntro)) }
        form.stack method="post" action="/console/setup" {
            input type="hidden" name="csrf" value=(form_token);
            div.field {
                label for="name" { (t(T::Name)) }
                input #name type="text" name="name" value=(name) maxlength="64" autocomplete="username" required;
            }
            div.field {
                label for="code" { (t(T::SetupCode)) }
                input #code type="text" name="code" maxlength="32" autocomplete="one-time-code" spellcheck="false" required;
            }
            div.field {
                label for="password" { (t(T::NewPassword)) }
                p.hint #password-hint { (t(T::NewPasswordHint)) }
                input #password type="password" name="password" minlength="12" maxlength="256" autocomplete="new-password" aria-describedby="password-hint" required;
            }
            div.field {
                label for="password_again" { (t(T::NewPasswordAgain)) }
                input #password_again type="password" name="password_again" minlength="12" maxlength="256" autocomplete="new-password" required;
            }
            button type="submit" { (t(T::SetUpButton)) }
        }
        p { a href="/console/login" { (t(T::BackToSignIn)) } }
    }
}

/// A refusal's body: its reason and code.
pub fn refusal(lang: Lang, text: T, code: &str) -> Markup {
    let t = |text: T| text.get(lang);
    html! {
        p.notice.error role="alert" { (t(text)) }
        p { (t(T::ReasonCode)) ": " code { (code) } }
        p { a href="/console/" { (t(T::GoHome)) } }
    }
}

/// The action's name.
pub fn action_name(action: &str) -> Option<T> {
    Some(match AuditAction::parse(action)? {
        AuditAction::OperatorAdded => T::ActionOperatorAdded,
        AuditAction::OperatorSetUp => T::ActionOperatorSetUp,
        AuditAction::PolicyPublished => T::ActionPolicyPublished,
        AuditAction::PolicyCancelled => T::ActionPolicyCancelled,
        AuditAction::PolicyRerated => T::ActionPolicyRerated,
        AuditAction::ScheduleSet => T::ActionScheduleSet,
        AuditAction::QuotaSet => T::ActionQuotaSet,
        AuditAction::OperatorDisabled => T::ActionOperatorDisabled,
        AuditAction::LoginSucceeded => T::ActionLoginSucceeded,
        AuditAction::LoginFailed => T::ActionLoginFailed,
        AuditAction::AccountLocked => T::ActionAccountLocked,
        AuditAction::SignedOut => T::ActionSignedOut,
        AuditAction::TerminalProvisioned => T::ActionTerminalProvisioned,
        AuditAction::TerminalRevoked => T::ActionTerminalRevoked,
        AuditAction::CardRevoked => T::ActionCardRevoked,
        AuditAction::WatchUnpaired => T::ActionWatchUnpaired,
        AuditAction::CardReplaced => T::ActionCardReplaced,
        AuditAction::MemberRevoked => T::ActionMemberRevoked,
    })
}

fn audit_table(lang: Lang, entries: &[AuditEntry]) -> Markup {
    let t = |text: T| text.get(lang);
    html! {
        @if entries.is_empty() {
            p { (t(T::NoEntries)) }
        } @else {
            table {
                thead {
                    tr {
                        th scope="col" { (t(T::Time)) }
                        th scope="col" { (t(T::Who)) }
                        th scope="col" { (t(T::Action)) }
                        th scope="col" { (t(T::Target)) }
                        th scope="col" { (t(T::Before)) }
                        th scope="col" { (t(T::After)) }
                    }
                }
                tbody {
                    @for entry in entries {
                        tr {
                            td { (seoul(entry.at)) }
                            td { (entry.operator_name) }
                            td { (action_name(&entry.action).map_or(entry.action.as_str(), |a| t(a))) }
                            td { (entry.target) }
                            td.json { (entry.before.as_deref().unwrap_or("")) }
                            td.json { (entry.after.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

/// The start page: the terminals at a glance and the latest entries of the audit log.
pub fn today(lang: Lang, live: Markup, recent: &[AuditEntry]) -> Markup {
    let t = |text: T| text.get(lang);
    html! {
        p.lead { (t(T::TodayIntro)) " " (t(T::LiveUpdating)) }
        button.quiet #live-toggle type="button" hidden aria-pressed="false"
            data-pause=(t(T::PauseUpdates)) data-resume=(t(T::ResumeUpdates)) { (t(T::PauseUpdates)) }
        section #live { (live) }
        h2 { (t(T::RecentActivity)) }
        (audit_table(lang, recent))
        p { a href="/console/audit" { (t(T::SeeAuditLog)) } }
        script src="/console/today.js" defer {}
    }
}

/// The audit log page: the filter, a page of entries, links to the pages around it.
pub fn audit(
    lang: Lang,
    entries: &[AuditEntry],
    action: Option<AuditAction>,
    page: u32,
    more: bool,
) -> Markup {
    let t = |text: T| text.get(lang);
    let filter = action.map_or(String::new(), |a| format!("&action={}", a.as_str()));
    html! {
        p.lead { (t(T::AuditIntro)) }
        form.row method="get" action="/console/audit" {
            div.field {
                label for="action" { (t(T::FilterByAction)) }
                select #action name="action" {
                    option value="" selected[action.is_none()] { (t(T::AllActions)) }
                    @for a in AuditAction::ALL {
                        option value=(a.as_str()) selected[action == Some(a)] {
                            (action_name(a.as_str()).map_or(a.as_str(), |n| t(n)))
                        }
                    }
                }
            }
            button type="submit" { (t(T::Filter)) }
            a href={ "/console/audit.csv" @if let Some(a) = action { "?action=" (a.as_str()) } } { (t(T::DownloadCsv)) }
        }
        (audit_table(lang, entries))
        nav.pager aria-label=(t(T::Page)) {
            @if page > 1 {
                a href={ "/console/audit?page=" (page - 1) (filter) } { (t(T::Newer)) }
            }
            span { (t(T::Page)) " " (page) }
            @if more {
                a href={ "/console/audit?page=" (page + 1) (filter) } { (t(T::Older)) }
            }
        }
    }
}

/// The setup code just made, shown once.
pub struct NewCode<'a> {
    pub name: &'a str,
    pub code: &'a str,
    pub link: &'a str,
    pub valid_until: DateTime<Utc>,
}

/// The operators page: the list, the form to add one, and a code just made.
pub fn operators(
    lang: Lang,
    csrf: &str,
    me: i64,
    operators: &[Operator],
    new_code: Option<&NewCode<'_>>,
    typed_name: &str,
    now: DateTime<Utc>,
) -> Markup {
    let t = |text: T| text.get(lang);
    let yes_no = |yes: bool| if yes { t(T::Yes) } else { t(T::No) };
    html! {
        @if let Some(new) = new_code {
            section aria-labelledby="new-code" {
                h2 #new-code { (t(T::CodeOnce)) ": " (new.name) }
                p.code { (new.code) }
                p { (t(T::SetupLink)) ": " a href=(new.link) { (new.link) } }
                p { (t(T::ValidUntil)) ": " (seoul(new.valid_until)) }
                p { (t(T::CodeHowTo)) }
            }
        }
        p.lead { (t(T::OperatorsIntro)) }
        table {
            thead {
                tr {
                    th scope="col" { (t(T::Name)) }
                    th scope="col" { (t(T::Role)) }
                    th scope="col" { (t(T::SetUpColumn)) }
                    th scope="col" { (t(T::LockedColumn)) }
                    th scope="col" { (t(T::LastLogin)) }
                    th scope="col" { (t(T::Status)) }
                }
            }
            tbody {
                @for op in operators {
                    tr {
                        td { (op.name) }
                        td { (t(role_name(op.role))) }
                        td { (yes_no(op.set_up)) }
                        td {
                            @match op.login.locked_at(now) {
                                Some(until) => { (t(T::Yes)) " (" (seoul(until)) ")" }
                                None => { (t(T::No)) }
                            }
                        }
                        td { (op.last_login.map_or_else(|| t(T::Never).to_owned(), seoul)) }
                        td {
                            @if op.disabled {
                                (t(T::Disabled))
                            } @else if op.id == me {
                                (t(T::Active))
                            } @else {
                                form method="post" action={ "/console/operators/" (op.id) "/disable" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.quiet type="submit" aria-label={ (t(T::DisableOperator)) " " (op.name) } { (t(T::Disable)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 #add { (t(T::AddOperator)) }
        form.stack method="post" action="/console/operators" {
            input type="hidden" name="csrf" value=(csrf);
            div.field {
                label for="name" { (t(T::Name)) }
                p.hint #name-hint { (t(T::NameHint)) }
                input #name type="text" name="name" value=(typed_name) maxlength="64" aria-describedby="name-hint" required;
            }
            div.field {
                label for="role" { (t(T::Role)) }
                select #role name="role" {
                    @for role in [Role::Viewer, Role::Operator, Role::Admin] {
                        option value=(role.as_str()) { (t(role_name(role))) }
                    }
                }
            }
            button type="submit" { (t(T::AddButton)) }
        }
    }
}

/// A terminal's role's name.
pub fn terminal_role_name(role: TerminalRole) -> T {
    match role {
        TerminalRole::Kiosk => T::RoleKiosk,
        TerminalRole::Counter => T::RoleCounter,
    }
}

/// A terminal state's name (`terminal_state`'s words).
pub fn state_name(state: &str) -> T {
    match state {
        "revoked" => T::StateRevoked,
        "enrolled" => T::StateEnrolled,
        _ => T::StateWaiting,
    }
}

/// The terminal states a filter offers.
pub const STATES: [&str; 3] = ["waiting", "enrolled", "revoked"];

/// A length of time in seconds, for people: `45초`, `12분 5초`, `3시간 2분`.
pub fn duration(lang: Lang, seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (lang, h, m) {
        (Lang::Ko, 0, 0) => format!("{s}초"),
        (Lang::Ko, 0, _) => format!("{m}분 {s}초"),
        (Lang::Ko, _, _) => format!("{h}시간 {m}분"),
        (Lang::En, 0, 0) => format!("{s} s"),
        (Lang::En, 0, _) => format!("{m} min {s} s"),
        (Lang::En, _, _) => format!("{h} h {m} min"),
    }
}

/// A clock offset in seconds, signed: `+75초`, `-3 s`.
pub fn offset(lang: Lang, seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "+" };
    let n = seconds.unsigned_abs();
    match lang {
        Lang::Ko => format!("{sign}{n}초"),
        Lang::En => format!("{sign}{n} s"),
    }
}

/// One row of the terminals' table.
pub struct TerminalRow {
    pub terminal: Terminal,
    pub sighting: Option<Sighting>,
    pub flags: TerminalFlags,
}

/// What the terminals' table is filtered by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TerminalFilter {
    pub site: Option<String>,
    pub role: Option<TerminalRole>,
    pub state: Option<&'static str>,
    pub silent_only: bool,
}

impl TerminalFilter {
    /// Whether `row` passes.
    pub fn keeps(&self, row: &TerminalRow) -> bool {
        self.site.as_deref().is_none_or(|s| s == row.terminal.site)
            && self.role.is_none_or(|r| r == row.terminal.role)
            && self
                .state
                .is_none_or(|s| s == terminal_state(&row.terminal))
            && (!self.silent_only || row.flags.silent)
    }
}

/// An enrollment code just made, shown once.
pub struct NewTerminal<'a> {
    pub label: &'a str,
    pub site: &'a str,
    pub role: TerminalRole,
    pub code: &'a str,
    pub server: Option<&'a str>,
    pub server_key: Option<&'a str>,
    /// The QR code of the enrollment offer, SVG made here.
    pub qr_svg: &'a str,
}

/// The QR code's SVG without its XML declaration, as HTML takes it.
fn inline_svg(svg: &str) -> &str {
    svg.find("<svg").map_or("", |start| &svg[start..])
}

/// The terminals page: a code just made, the filter, the table, and (for those who may)
/// the form that provisions one.
#[allow(clippy::too_many_arguments)]
pub fn terminals(
    lang: Lang,
    csrf: &str,
    may_change: bool,
    rows: &[TerminalRow],
    sites: &[String],
    filter: &TerminalFilter,
    silent_after: TimeDelta,
    new_terminal: Option<&NewTerminal<'_>>,
    typed_site: &str,
) -> Markup {
    let t = |text: T| text.get(lang);
    html! {
        @if let Some(new) = new_terminal {
            section.once aria-labelledby="new-terminal" {
                h2 #new-terminal { (t(T::EnrollCodeOnce)) ": " (new.label) }
                div.enroll {
                    div {
                        p.code { (new.code) }
                        dl {
                            dt { (t(T::ColSite)) } dd { (new.site) }
                            dt { (t(T::Role)) } dd { (t(terminal_role_name(new.role))) }
                            @if let Some(server) = new.server {
                                dt { (t(T::ServerAddress)) } dd { code { (server) } }
                            }
                            @if let Some(key) = new.server_key {
                                dt { (t(T::ServerKeyLabel)) } dd { code.key { (key) } }
                            }
                        }
                        p { (t(T::EnrollHowTo)) }
                    }
                    figure.qr role="img" aria-label=(t(T::EnrollQr)) {
                        (PreEscaped(inline_svg(new.qr_svg)))
                    }
                }
            }
        }
        p.lead { (t(T::TerminalsIntro)) " " (t(T::SilentAfterIs)) ": " (silent_after.num_minutes()) (t(T::Minutes)) }
        form.row method="get" action="/console/terminals" {
            div.field {
                label for="f-site" { (t(T::ColSite)) }
                select #f-site name="site" {
                    option value="" selected[filter.site.is_none()] { (t(T::AllSites)) }
                    @for site in sites {
                        option value=(site) selected[filter.site.as_deref() == Some(site.as_str())] { (site) }
                    }
                }
            }
            div.field {
                label for="f-role" { (t(T::Role)) }
                select #f-role name="role" {
                    option value="" selected[filter.role.is_none()] { (t(T::AllRoles)) }
                    @for role in [TerminalRole::Kiosk, TerminalRole::Counter] {
                        option value=(role.as_str()) selected[filter.role == Some(role)] { (t(terminal_role_name(role))) }
                    }
                }
            }
            div.field {
                label for="f-state" { (t(T::ColState)) }
                select #f-state name="state" {
                    option value="" selected[filter.state.is_none()] { (t(T::AllStates)) }
                    @for state in STATES {
                        option value=(state) selected[filter.state == Some(state)] { (t(state_name(state))) }
                    }
                }
            }
            div.check {
                input #f-silent type="checkbox" name="silent" value="1" checked[filter.silent_only];
                label for="f-silent" { (t(T::SilentOnly)) }
            }
            button type="submit" { (t(T::Filter)) }
        }
        @if rows.is_empty() {
            p { (t(T::NoTerminals)) }
        } @else {
            div.scroll {
                table.terminals {
                    caption { (t(T::TerminalsCaption)) }
                    thead {
                        tr {
                            th scope="col" { (t(T::ColSite)) }
                            th scope="col" { (t(T::ColTerminal)) }
                            th scope="col" { (t(T::Role)) }
                            th scope="col" { (t(T::ColState)) }
                            th scope="col" { (t(T::ColVersion)) }
                            th scope="col" { (t(T::ColLastHeard)) }
                            th scope="col" class="num" { (t(T::ColWaiting)) }
                            th scope="col" class="num" { (t(T::ColOldest)) }
                            th scope="col" class="num" { (t(T::ColClock)) }
                            th scope="col" { (t(T::ColAttention)) }
                            @if may_change { th scope="col" { (t(T::ColActions)) } }
                        }
                    }
                    tbody {
                        @for row in rows {
                            @let terminal = &row.terminal;
                            @let state = terminal_state(terminal);
                            @let report = row.sighting.as_ref().and_then(|s| s.report.as_ref()).map(|(_, r)| r);
                            tr.flagged[row.flags.any()] {
                                td { (terminal.site) }
                                th scope="row" { (terminal.label()) }
                                td { (t(terminal_role_name(terminal.role))) }
                                td { (t(state_name(state))) }
                                td { (report.map_or("–", |r| r.app_version.as_str())) }
                                td {
                                    (row.sighting.as_ref().map_or_else(|| t(T::NotYetHeard).to_owned(), |s| seoul(s.seen_at)))
                                }
                                td.num { (report.map_or_else(|| "–".to_owned(), |r| r.waiting.to_string())) }
                                td.num {
                                    (report.and_then(|r| r.oldest_waiting_s).map_or_else(|| "–".to_owned(), |s| duration(lang, s)))
                                }
                                td.num {
                                    (report.and_then(|r| r.clock_offset_s).map_or_else(|| "–".to_owned(), |s| offset(lang, s)))
                                }
                                td {
                                    @if row.flags.any() {
                                        ul.flags {
                                            @if row.flags.silent { li { strong { "⚠ " (t(T::FlagSilent)) } } }
                                            @if row.flags.clock_off { li { strong { "⚠ " (t(T::FlagClock)) } } }
                                            @if row.flags.backlog_old { li { strong { "⚠ " (t(T::FlagBacklog)) } } }
                                        }
                                    } @else {
                                        (t(T::FlagNone))
                                    }
                                }
                                @if may_change {
                                    td {
                                        @if state != "revoked" {
                                            a href={ "/console/terminals/" (terminal.label()) "/revoke" } aria-label={ (t(T::RevokeTerminal)) " " (terminal.label()) } { (t(T::Revoke)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if may_change {
            h2 #provision { (t(T::ProvisionHeading)) }
            p { (t(T::ProvisionIntro)) }
            form.stack method="post" action="/console/terminals" {
                input type="hidden" name="csrf" value=(csrf);
                div.field {
                    label for="site" { (t(T::ColSite)) }
                    p.hint #site-hint { (t(T::SiteHint)) }
                    input #site type="text" name="site" value=(typed_site) maxlength="64" aria-describedby="site-hint" list="known-sites" required;
                    datalist #known-sites {
                        @for site in sites { option value=(site) {} }
                    }
                }
                div.field {
                    label for="role" { (t(T::Role)) }
                    select #role name="role" {
                        @for role in [TerminalRole::Kiosk, TerminalRole::Counter] {
                            option value=(role.as_str()) { (t(terminal_role_name(role))) }
                        }
                    }
                }
                button type="submit" { (t(T::ProvisionButton)) }
            }
        } @else {
            p.hint { (t(T::ReadOnly)) }
        }
    }
}

/// A confirmation: what will happen, a button that does it, and a way back.
pub fn confirm(
    lang: Lang,
    csrf: &str,
    what: &[(T, String)],
    warning: T,
    action: &str,
    button: T,
    back: &str,
) -> Markup {
    let t = |text: T| text.get(lang);
    html! {
        dl.facts {
            @for (name, value) in what {
                dt { (t(*name)) } dd { (value) }
            }
        }
        p.warning role="note" { strong { "⚠ " } (t(warning)) }
        form.row method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            button.danger type="submit" { (t(button)) }
            a href=(back) { (t(T::Cancel)) }
        }
    }
}

/// A path segment, percent-encoded.
pub fn segment(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The members page: the lookup form and the member found, if any.
pub fn members(
    lang: Lang,
    may_change: bool,
    typed: &str,
    member: Option<&MemberOverview>,
) -> Markup {
    let t = |text: T| text.get(lang);
    html! {
        p.lead { (t(T::MembersIntro)) }
        form.row method="get" action="/console/members" role="search" {
            div.field {
                label for="number" { (t(T::MemberNumber)) }
                p.hint #number-hint { (t(T::MemberNumberHint)) }
                input #number type="text" name="number" value=(typed) maxlength="32" aria-describedby="number-hint" autocomplete="off" spellcheck="false" required;
            }
            button type="submit" { (t(T::Find)) }
        }
        @if let Some(m) = member {
            @let number = member_number(m.id);
            table.facts {
                caption { (t(T::MemberCaption)) ": " (number) }
                tbody {
                    tr { th scope="row" { (t(T::MaskedName)) } td { (m.masked_name) } }
                    tr { th scope="row" { (t(T::MaskedPhone)) } td { (m.masked_phone) } }
                    tr { th scope="row" { (t(T::SignedUp)) } td { (seoul(m.signed_up)) } }
                    tr { th scope="row" { (t(T::SignUpSite)) } td { (m.site) } }
                    tr {
                        th scope="row" { (t(T::MemberState)) }
                        td { @if m.revoked { strong { "⚠ " (t(T::MemberRevoked)) } } @else { (t(T::Active)) } }
                    }
                    tr { th scope="row" { (t(T::Balance)) } td { (m.balance) " " (t(T::PointsUnit)) } }
                }
            }
            h2 { (t(T::CardsHeading)) }
            @if m.cards.is_empty() {
                p { (t(T::NoCards)) }
            } @else {
                table {
                    caption { (t(T::CardsCaption)) }
                    thead {
                        tr {
                            th scope="col" { (t(T::CardSerial)) }
                            th scope="col" { (t(T::ColState)) }
                            th scope="col" { (t(T::Issued)) }
                            th scope="col" { (t(T::Expires)) }
                            @if may_change { th scope="col" { (t(T::ColActions)) } }
                        }
                    }
                    tbody {
                        @for card in &m.cards {
                            tr {
                                th scope="row" { (card.serial) }
                                td { @if card.revoked { strong { (t(T::CardRevokedState)) } } @else { (t(T::Active)) } }
                                td { (seoul(card.issued)) }
                                td { (seoul(card.expires)) }
                                @if may_change {
                                    td {
                                        @if !card.revoked {
                                            ul.actions {
                                                li { a href={ "/console/members/" (number) "/cards/" (card.serial) "/revoke" } aria-label={ (t(T::RevokeCardLabel)) " " (card.serial) } { (t(T::RevokeCardButton)) } }
                                                li { a href={ "/console/members/" (number) "/cards/" (card.serial) "/replace" } aria-label={ (t(T::ReplaceCardLabel)) " " (card.serial) } { (t(T::ReplaceCardButton)) } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(serial) = m.replacement {
                p.pending { strong { (t(T::ReplacementPending)) ": " } (serial) }
            }
            h2 { (t(T::WatchesHeading)) }
            @if m.watches.is_empty() {
                p { (t(T::NoWatches)) }
            } @else {
                table {
                    caption { (t(T::WatchesCaption)) }
                    thead {
                        tr {
                            th scope="col" { (t(T::WatchSerial)) }
                            th scope="col" { (t(T::ColState)) }
                            th scope="col" { (t(T::Paired)) }
                            @if may_change { th scope="col" { (t(T::ColActions)) } }
                        }
                    }
                    tbody {
                        @for watch in &m.watches {
                            tr {
                                th scope="row" { (watch.serial) }
                                td {
                                    @match watch.ended {
                                        Some(ended) => { (t(T::WatchEnded)) " (" (seoul(ended)) ")" }
                                        None => { (t(T::WatchPaired)) }
                                    }
                                }
                                td { (seoul(watch.paired)) }
                                @if may_change {
                                    td {
                                        @if watch.ended.is_none() {
                                            a href={ "/console/members/" (number) "/watches/" (segment(&watch.serial)) "/unpair" } aria-label={ (t(T::UnpairLabel)) " " (watch.serial) } { (t(T::UnpairButton)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !may_change {
                p.hint { (t(T::ReadOnly)) }
            }
        }
    }
}

/// What the policy form holds: the text typed or uploaded, the start date typed.
pub struct PolicyForm<'a> {
    pub text: &'a str,
    pub start: &'a str,
}

/// A number with its thousands grouped: 12,000.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A policy's events, as a short list: `3× 2025-12-15..2025-12-28`, `+1000 2026-09-09`.
fn events_of(text: &str) -> String {
    let Ok(policy) = points_core::PointsPolicy::from_toml_str(text) else {
        return String::new();
    };
    let ymd = crate::policies::ymd;
    policy
        .multiplier_event_days()
        .map(|(from, until, times)| format!("{times}× {}..{}", ymd(from), ymd(until)))
        .chain(
            policy
                .special_day_list()
                .map(|(day, points)| format!("+{points} {}", ymd(day))),
        )
        .collect::<Vec<_>>()
        .join(", ")
}

/// The policies page: the policies in force and scheduled (with a cancel button for those
/// not started), the cancelled ones, and the form to upload, preview and publish a policy.
#[allow(clippy::too_many_arguments)]
pub fn policies(
    lang: Lang,
    csrf: &str,
    can_change: bool,
    rows: &[crate::policies::PolicyRow],
    today: chrono::NaiveDate,
    form: &PolicyForm<'_>,
    problem: Option<&(String, String)>,
    preview: Option<&[crate::policies::PreviewLine]>,
) -> Markup {
    use crate::policies::{ymd, PreviewKind};
    let t = |text: T| text.get(lang);
    let mut live: Vec<&crate::policies::PolicyRow> =
        rows.iter().filter(|r| r.cancelled_at.is_none()).collect();
    live.sort_by_key(|r| r.effective_from);
    let cancelled: Vec<_> = rows.iter().filter(|r| r.cancelled_at.is_some()).collect();
    // A policy without a last day ends the day before the next one starts.
    let ends: Vec<Option<chrono::NaiveDate>> = live
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.effective_until.or_else(|| {
                live.get(i + 1)
                    .and_then(|next| next.effective_from.pred_opt())
            })
        })
        .collect();
    html! {
        p.lead { (t(T::PoliciesIntro)) }
        h2 #in-force { (t(T::PoliciesInForce)) }
        table aria-labelledby="in-force" {
            thead {
                tr {
                    th scope="col" { (t(T::PolicyName)) }
                    th scope="col" { (t(T::EffectiveFrom)) }
                    th scope="col" { (t(T::EffectiveUntil)) }
                    th scope="col" { (t(T::PolicyEvents)) }
                    th scope="col" { (t(T::PublishedBy)) }
                    th scope="col" { (t(T::Status)) }
                }
            }
            tbody {
                @for (row, end) in live.iter().zip(&ends) {
                    tr {
                        td { (row.name) }
                        td { (ymd(row.effective_from)) }
                        td { (end.map_or_else(|| t(T::OpenEnded).to_owned(), ymd)) }
                        td { (events_of(&row.text)) }
                        td {
                            @match (&row.published_by, row.published_at) {
                                (Some(by), Some(at)) => { (by) br; (seoul(at)) }
                                _ => { (t(T::SeedFile)) }
                            }
                        }
                        td {
                            @if row.effective_from > today {
                                (t(T::StatusScheduled))
                                @if can_change {
                                    form method="post" action="/console/policies/cancel" {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="name" value=(row.name);
                                        button.quiet type="submit" aria-label={ (t(T::CancelPolicy)) " " (row.name) } { (t(T::Cancel)) }
                                    }
                                }
                            } @else if end.is_some_and(|end| end < today) {
                                (t(T::StatusPast))
                            } @else {
                                (t(T::StatusInForce))
                            }
                        }
                    }
                }
            }
        }
        @if !cancelled.is_empty() {
            h2 #cancelled { (t(T::PoliciesCancelled)) }
            table aria-labelledby="cancelled" {
                thead {
                    tr {
                        th scope="col" { (t(T::PolicyName)) }
                        th scope="col" { (t(T::EffectiveFrom)) }
                        th scope="col" { (t(T::PublishedBy)) }
                        th scope="col" { (t(T::ActionPolicyCancelled)) }
                    }
                }
                tbody {
                    @for row in &cancelled {
                        tr {
                            td { (row.name) }
                            td { (ymd(row.effective_from)) }
                            td { (row.published_by.as_deref().unwrap_or("")) }
                            td {
                                (row.cancelled_by.as_deref().unwrap_or("")) br;
                                (row.cancelled_at.map(seoul).unwrap_or_default())
                            }
                        }
                    }
                }
            }
        }
        h2 #upload { (t(T::UploadPolicy)) }
        @if !can_change {
            p { (t(T::ViewerCannotChange)) }
        } @else {
            p.lead { (t(T::UploadIntro)) }
            @if let Some((ko, en)) = problem {
                p.notice.error #policy-problem role="alert" { (if lang == Lang::Ko { ko } else { en }) }
            }
            @if let Some(lines) = preview {
                p.notice.ok role="status" { (t(T::PreviewReady)) }
                h3 #preview { (t(T::PreviewHeading)) }
                p { (t(T::PreviewIntro)) }
                table aria-labelledby="preview" {
                    thead {
                        tr {
                            th scope="col" { (t(T::PreviewSample)) }
                            th scope="col" { (t(T::PreviewDays)) }
                            th scope="col" { (t(T::PreviewNow)) }
                            th scope="col" { (t(T::PreviewNew)) }
                        }
                    }
                    tbody {
                        @for line in lines {
                            tr {
                                td {
                                    (t(match line.kind {
                                        PreviewKind::FirstWeek => T::FirstWeek,
                                        PreviewKind::Event => T::EventWeek,
                                        PreviewKind::SpecialDay => T::SpecialDay,
                                    }))
                                    ": " (grouped(u64::from(line.steps))) (t(T::StepsADay)) ", " (line.age) (t(T::AgeYears))
                                }
                                td { (ymd(line.first)) @if line.last != line.first { ".." (ymd(line.last)) } }
                                td { (grouped(line.now)) }
                                td { strong { (grouped(line.new)) } }
                            }
                        }
                    }
                }
            }
            form.stack.wide method="post" action="/console/policies" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(csrf);
                div.field {
                    label for="file" { (t(T::PolicyFile)) }
                    input #file type="file" name="file" accept=".toml,text/plain";
                }
                div.field {
                    label for="text" { (t(T::PolicyText)) }
                    p.hint #text-hint { (t(T::PolicyTextHint)) }
                    textarea #text name="text" rows="16" spellcheck="false"
                        aria-describedby=(if problem.is_some() { "text-hint policy-problem" } else { "text-hint" }) { (form.text) }
                }
                div.field {
                    label for="start" { (t(T::StartDate)) }
                    p.hint #start-hint { (t(T::StartDateHint)) }
                    input #start type="text" name="start" value=(form.start) maxlength="10" inputmode="numeric" aria-describedby="start-hint";
                }
                div.row {
                    button type="submit" name="action" value="preview" { (t(T::PreviewButton)) }
                    button.quiet type="submit" name="action" value="publish" { (t(T::PublishButton)) }
                }
            }
        }
    }
}

/// The Policies page's re-rating section: the form to correct a policy in force (admins
/// only), and a preview's figures with the confirmation bound to them.
pub fn rerate(
    lang: Lang,
    csrf: &str,
    can_rerate: bool,
    text: &str,
    problem: Option<&(String, String)>,
    report: Option<&crate::policies::RerateReport>,
) -> Markup {
    use crate::policies::RERATE_BANDS;
    let t = |text: T| text.get(lang);
    let band = |(low, high): (i64, i64)| match (low, high) {
        (i64::MIN, high) => format!("≤ {high}"),
        (low, i64::MAX) => format!("≥ +{low}"),
        (low, high) if low > 0 => format!("+{low} .. +{high}"),
        (low, high) => format!("{low} .. {high}"),
    };
    let signed = |n: i64| {
        if n > 0 {
            format!("+{}", grouped(n.unsigned_abs()))
        } else if n < 0 {
            format!("-{}", grouped(n.unsigned_abs()))
        } else {
            "0".to_owned()
        }
    };
    let largest = |found: Option<(i64, u64)>, sign: &str| {
        found.map_or_else(
            || "-".to_owned(),
            |(member, points)| {
                format!(
                    "{} ({sign}{})",
                    sync_protocol::member::member_number(member),
                    grouped(points)
                )
            },
        )
    };
    html! {
        h2 #rerate { (t(T::RerateHeading)) }
        @if !can_rerate {
            p { (t(T::RerateAdminOnly)) }
        } @else {
            p.lead { (t(T::RerateIntro)) }
            p { (t(T::RerateHowShort)) }
            @if let Some((ko, en)) = problem {
                p.notice.error #rerate-problem role="alert" { (if lang == Lang::Ko { ko } else { en }) }
            }
            @if let Some(report) = report {
                @let s = &report.summary;
                p.notice.ok role="status" { (t(T::RerateReady)) }
                @if s.changed == 0 {
                    p { (t(T::RerateNoChange)) }
                }
                table #rerate-figures aria-labelledby="rerate-figures-caption" {
                    caption #rerate-figures-caption { (t(T::RerateFigures)) ": " (report.name) }
                    thead { tr { th scope="col" { (t(T::RerateFigure)) } th scope="col" { (t(T::RerateValue)) } } }
                    tbody {
                        tr { th scope="row" { (t(T::RerateMembers)) } td { (grouped(s.members)) } }
                        tr { th scope="row" { (t(T::RerateReports)) } td { (grouped(s.reports)) } }
                        tr { th scope="row" { (t(T::RerateChanged)) } td #rerate-changed { (grouped(s.changed)) } }
                        tr { th scope="row" { (t(T::RerateIncrease)) } td { "+" (grouped(s.increase)) } }
                        tr { th scope="row" { (t(T::RerateDecrease)) } td { "-" (grouped(s.decrease)) } }
                        tr { th scope="row" { (t(T::RerateTotal)) } td #rerate-total { (signed(s.total())) } }
                        tr { th scope="row" { (t(T::RerateLargestUp)) } td { (largest(s.largest_increase, "+")) } }
                        tr { th scope="row" { (t(T::RerateLargestDown)) } td { (largest(s.largest_decrease, "-")) } }
                        tr { th scope="row" { (t(T::RerateShort)) } td #rerate-short { (grouped(s.short)) } }
                        tr { th scope="row" { (t(T::RerateNotRecovered)) } td #rerate-not-recovered { (grouped(s.not_recovered)) } }
                    }
                }
                table #rerate-bands aria-labelledby="rerate-bands-caption" {
                    caption #rerate-bands-caption { (t(T::RerateBands)) }
                    thead { tr { th scope="col" { (t(T::RerateBand)) } th scope="col" { (t(T::RerateMemberCount)) } } }
                    tbody {
                        @for (range, count) in RERATE_BANDS.iter().zip(s.bands) {
                            tr { th scope="row" { (band(*range)) } td { (grouped(count)) } }
                        }
                    }
                }
                form.stack.wide method="post" action="/console/policies/rerate" enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="confirm" value=(report.digest);
                    input type="hidden" name="text" value=(text);
                    p.hint #confirm-hint { (t(T::RerateConfirmHint)) }
                    button type="submit" name="action" value="apply" aria-describedby="confirm-hint" { (t(T::RerateApplyButton)) }
                }
            }
            form.stack.wide method="post" action="/console/policies/rerate" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(csrf);
                div.field {
                    label for="rerate-file" { (t(T::PolicyFile)) }
                    input #rerate-file type="file" name="file" accept=".toml,text/plain";
                }
                div.field {
                    label for="rerate-text" { (t(T::RerateText)) }
                    p.hint #rerate-text-hint { (t(T::RerateTextHint)) }
                    textarea #rerate-text name="text" rows="12" spellcheck="false"
                        aria-describedby=(if problem.is_some() { "rerate-text-hint rerate-problem" } else { "rerate-text-hint" }) { (text) }
                }
                div.row {
                    button type="submit" name="action" value="preview" { (t(T::ReratePreviewButton)) }
                }
            }
        }
    }
}
