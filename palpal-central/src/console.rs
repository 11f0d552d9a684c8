//! The operator console: server-rendered pages for the city's operators, served by
//! `palpal-central serve --console-listen` on a listener of its own. It shares the terminals'
//! database but no route and no credential with their API: this router serves `/console/...`
//! only (and `/`, a redirect), a terminal's signed headers mean nothing here, and the session
//! cookie means nothing there.
//!
//! Safety: operators sign in with a name and a password (Argon2id, hashed and checked on a
//! blocking thread); a session is a random token in an `HttpOnly; SameSite=Strict;
//! Path=/console` cookie (`Secure` over TLS) of which the database keeps only the SHA-256, so
//! that every server process on the database knows it; every POST carries the session's CSRF
//! token (the sign-in and setup forms, before any session, a token of their own cookie), and
//! one whose `Origin` is another site is refused; each handler checks the operator's role
//! itself. The rules (lifetimes, lockout, attempts per address) are [`rules`]; every change
//! and every login is in the audit log, written in the same transaction as the change.

pub mod csv;
pub mod pages;
mod policy_page;
pub mod reconciliation;
pub mod rules;
mod schedule_page;
pub mod text;
pub mod today;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use maud::Markup;
use sha2::{Digest as _, Sha256};

use self::pages::{Frame, Nav, NewCode, NewTerminal, Notice, TerminalFilter, TerminalRow};
use self::rules::{AttemptWindow, NameProblem, PasswordProblem, Permission, Role, SiteProblem};
use self::text::{Lang, T};
use crate::clock::Clock;
use crate::store::console::{
    Actor, AuditAction, AuditQuery, Change, FailedLogin, MemberOverview, NewSession, OperatorLogin,
    Resumed, Session,
};
use crate::store::{member_number, parse_member_number, parse_terminal_label, Backend, Store};
use crate::wire::Role as TerminalRole;

/// The session cookie.
pub const SESSION_COOKIE: &str = "palpal_console";
/// The cookie of the sign-in and setup forms' token.
pub const FORM_COOKIE: &str = "palpal_console_form";
/// The language cookie.
pub const LANG_COOKIE: &str = "palpal_console_lang";
/// The largest form the console reads.
pub const MAX_FORM_BYTES: usize = 16 * 1024;
/// Entries on a page of the audit log.
pub const AUDIT_PAGE: u32 = 50;
/// Connections to the database the console keeps open.
const KEPT_CONNECTIONS: usize = 4;

/// How the console is served.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Served over TLS: cookies are `Secure` and the console's origin is `https://`.
    pub tls: bool,
    /// A terminal not heard from for longer than this is flagged silent.
    pub silent_after: chrono::TimeDelta,
    /// The terminals' address of this server, for provisioning QR codes, if known.
    pub terminal_url: Option<String>,
    /// The key terminals pin (`sha256:...`), for provisioning QR codes, when served over TLS.
    pub server_key: Option<String>,
}

impl Default for ConsoleConfig {
    fn default() -> ConsoleConfig {
        ConsoleConfig {
            tls: false,
            silent_after: rules::SILENT_AFTER,
            terminal_url: None,
            server_key: None,
        }
    }
}

/// Why a request was refused: a reason code, a status, and the text shown. A refusal
/// changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No session (401).
    NotSignedIn,
    /// The CSRF token is missing or wrong (403).
    BadCsrf,
    /// The request came from another site's page (403).
    ForeignOrigin,
    /// The operator's role does not allow it (403).
    RoleNotAllowed,
    /// Too many sign-in or setup attempts from this address (429).
    TooManyAttempts(u64),
    /// No such page (404).
    NotFound,
    /// The form cannot be read (400).
    InvalidForm,
    /// The body is too large (413).
    PayloadTooLarge,
    /// The server failed (500).
    Internal,
}

impl Refusal {
    /// The reason code.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::NotSignedIn => "not_signed_in",
            Refusal::BadCsrf => "bad_csrf",
            Refusal::ForeignOrigin => "foreign_origin",
            Refusal::RoleNotAllowed => "role_not_allowed",
            Refusal::TooManyAttempts(_) => "too_many_attempts",
            Refusal::NotFound => "not_found",
            Refusal::InvalidForm => "invalid_form",
            Refusal::PayloadTooLarge => "payload_too_large",
            Refusal::Internal => "internal",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Refusal::NotSignedIn => StatusCode::UNAUTHORIZED,
            Refusal::BadCsrf | Refusal::ForeignOrigin | Refusal::RoleNotAllowed => {
                StatusCode::FORBIDDEN
            }
            Refusal::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::NotFound => StatusCode::NOT_FOUND,
            Refusal::InvalidForm => StatusCode::BAD_REQUEST,
            Refusal::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn text(self) -> T {
        match self {
            Refusal::NotSignedIn => T::NotSignedIn,
            Refusal::BadCsrf => T::BadCsrf,
            Refusal::ForeignOrigin => T::ForeignOrigin,
            Refusal::RoleNotAllowed => T::RoleNotAllowed,
            Refusal::TooManyAttempts(_) => T::TooManyAttempts,
            Refusal::NotFound => T::NotFound,
            Refusal::InvalidForm => T::InvalidForm,
            Refusal::PayloadTooLarge => T::PayloadTooLarge,
            Refusal::Internal => T::Internal,
        }
    }

    /// The answer: a page, or `{code, message, message_en}` to a request that asked for
    /// JSON.
    fn answer(self, ctx: &Ctx, session: Option<&Session>) -> Response {
        let mut response = if ctx.json {
            let (ko, en) = self.text().pair();
            let body = serde_json::json!({ "code": self.code(), "message": ko, "message_en": en });
            (
                self.status(),
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                body.to_string(),
            )
                .into_response()
        } else {
            let frame = Frame {
                lang: ctx.lang,
                title: T::RefusalTitle,
                path: &ctx.path,
                session,
                current: None,
                notice: None,
            };
            html(
                self.status(),
                pages::page(&frame, pages::refusal(ctx.lang, self.text(), self.code())),
            )
        };
        if let Refusal::TooManyAttempts(seconds) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

impl From<anyhow::Error> for Refusal {
    fn from(error: anyhow::Error) -> Refusal {
        eprintln!("콘솔 요청 처리 중 서버 오류 / console server error: {error:#}");
        Refusal::Internal
    }
}

/// What the console's handlers share.
struct Console {
    backend: Arc<dyn Backend>,
    stores: Mutex<Vec<Box<dyn Store>>>,
    clock: Arc<dyn Clock>,
    config: ConsoleConfig,
    /// Sign-in and setup attempts per address (this process's; [`rules::attempt`]).
    attempts: Mutex<HashMap<IpAddr, AttemptWindow>>,
}

/// The hash an unknown name's password is checked against, so that a wrong name takes as
/// long as a wrong password.
static DUMMY_HASH: OnceLock<String> = OnceLock::new();

fn dummy_hash() -> &'static str {
    DUMMY_HASH.get_or_init(|| hash_password("palpal console dummy password").unwrap_or_default())
}

/// The Argon2id hash (PHC string, default parameters: 19 MiB, 2 passes, 1 lane) of
/// `password` with a random salt. Slow: call it on a blocking thread.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
        .to_string())
}

/// Whether `password` is the one `phc` is the hash of. Slow: on a blocking thread.
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
    PasswordHash::new(phc).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// 32 random bytes, base64url.
fn random_token() -> Result<String, Refusal> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The SHA-256 of a session token, as stored.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn same_secret(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

impl Console {
    /// Runs `f` on one of the console's database connections, on a blocking thread.
    async fn store<T, F>(self: &Arc<Self>, f: F) -> Result<T, Refusal>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Store) -> anyhow::Result<T> + Send + 'static,
    {
        let console = Arc::clone(self);
        let out = tokio::task::spawn_blocking(move || {
            let kept = console
                .stores
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop();
            let mut store = match kept {
                Some(store) => store,
                None => console.backend.open()?,
            };
            let out = f(store.as_mut());
            let mut stores = console.stores.lock().unwrap_or_else(|e| e.into_inner());
            if out.is_ok() && stores.len() < KEPT_CONNECTIONS {
                stores.push(store);
            }
            out
        })
        .await
        .map_err(|e| anyhow::anyhow!("the console's database task failed: {e}"))?;
        Ok(out?)
    }

    /// Counts a sign-in or setup attempt from `address`.
    fn attempt(&self, address: IpAddr) -> Result<(), Refusal> {
        let now = self.clock.now();
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if attempts.len() > 10_000 {
            attempts.retain(|_, w| now - w.started < rules::ATTEMPT_WINDOW);
        }
        let (window, verdict) = rules::attempt(attempts.get(&address).copied(), now);
        attempts.insert(address, window);
        verdict.map_err(Refusal::TooManyAttempts)
    }

    fn cookie(&self, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let mut text = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
        if let Some(seconds) = max_age {
            text.push_str(&format!("; Max-Age={seconds}"));
        }
        if self.config.tls {
            text.push_str("; Secure");
        }
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Builds the console's router over `backend`.
pub fn router(backend: Arc<dyn Backend>, clock: Arc<dyn Clock>, config: ConsoleConfig) -> Router {
    // The dummy hash is made once, off the runtime, before the first sign-in needs it.
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::task::spawn_blocking(dummy_hash);
    }
    let console = Arc::new(Console {
        backend,
        stores: Mutex::new(Vec::new()),
        clock,
        config,
        attempts: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(today))
        .route("/console/style.css", get(style))
        .route("/console/today.js", get(today_script))
        .route(
            "/console/schedule",
            get(schedule_page::schedule_page).post(schedule_page::set_schedule),
        )
        .route("/console/quotas", post(schedule_page::set_quota))
        .route("/console/quotas/csv", post(schedule_page::upload_quotas))
        .route("/console/reconciliation", get(reconciliation_page))
        .route("/console/reconciliation.csv", get(reconciliation_csv))
        .route("/console/overspend.csv", get(overspend_csv))
        .route("/console/login", get(login_page).post(login))
        .route("/console/setup", get(setup_page).post(setup))
        .route("/console/logout", post(logout))
        .route("/console/audit", get(audit_page))
        .route("/console/audit.csv", get(audit_csv))
        .route("/console/operators", get(operators_page).post(add_operator))
        .route("/console/operators/{id}/disable", post(disable_operator))
        .route(
            "/console/policies",
            get(policy_page::policies_page)
                .post(policy_page::post_policy)
                .layer(DefaultBodyLimit::max(policy_page::MAX_UPLOAD_BYTES)),
        )
        .route("/console/policies/cancel", post(policy_page::cancel_policy))
        .route(
            "/console/policies/rerate",
            post(policy_page::rerate_policy)
                .layer(DefaultBodyLimit::max(policy_page::MAX_UPLOAD_BYTES)),
        )
        .route(
            "/console/terminals",
            get(terminals_page).post(provision_terminal),
        )
        .route(
            "/console/terminals/{label}/revoke",
            get(revoke_terminal_page).post(revoke_terminal),
        )
        .route("/console/members", get(members_page))
        .route(
            "/console/members/{number}/cards/{serial}/revoke",
            get(revoke_card_page).post(revoke_card),
        )
        .route(
            "/console/members/{number}/cards/{serial}/replace",
            get(replace_card_page).post(replace_card),
        )
        .route(
            "/console/members/{number}/watches/{serial}/unpair",
            get(unpair_watch_page).post(unpair_watch),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn(security_headers))
        .with_state(console)
}

/// Headers every answer of the console carries: no caching, no framing, no scripts or
/// styles from elsewhere.
async fn security_headers(request: axum::extract::Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// What every handler knows of its request.
struct Ctx {
    lang: Lang,
    /// The language was chosen by `?lang=` (the answer sets the cookie).
    chosen: bool,
    json: bool,
    path: String,
    address: IpAddr,
    cookies: HashMap<String, String>,
    /// Whether the request's `Origin`, if any, is the console's own.
    same_origin: bool,
    /// The session cookie's token, if any.
    token: Option<String>,
    /// The query's pairs.
    query: Vec<(String, String)>,
}

impl Ctx {
    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The day the query's `name` asks for (`YYYY-MM-DD`), `today` when it asks for none;
    /// `T::BadDay` for anything else.
    fn day(&self, name: &str, today: chrono::NaiveDate) -> Result<chrono::NaiveDate, T> {
        match self.query(name).map(str::trim) {
            None | Some("") => Ok(today),
            Some(text) if text.len() <= 10 => {
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| T::BadDay)
            }
            Some(_) => Err(T::BadDay),
        }
    }
}

fn cookies_of(headers: &HeaderMap) -> HashMap<String, String> {
    let mut cookies = HashMap::new();
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                cookies
                    .entry(name.trim().to_owned())
                    .or_insert_with(|| value.trim().to_owned());
            }
        }
    }
    cookies
}

impl FromRequestParts<Arc<Console>> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Ctx, Response> {
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let cookies = cookies_of(&parts.headers);
        let asked = query
            .iter()
            .find(|(k, _)| k == "lang")
            .and_then(|(_, v)| Lang::parse(v));
        let lang = asked
            .or_else(|| cookies.get(LANG_COOKIE).and_then(|v| Lang::parse(v)))
            .unwrap_or_default();
        let json = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        let scheme = if console.config.tls { "https" } else { "http" };
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok());
        let same_origin = match parts.headers.get(header::ORIGIN) {
            None => true,
            Some(origin) => host.is_some_and(|host| {
                origin
                    .to_str()
                    .is_ok_and(|origin| origin == format!("{scheme}://{host}"))
            }),
        };
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        Ok(Ctx {
            lang,
            chosen: asked.is_some(),
            json,
            path: parts.uri.path().to_owned(),
            address,
            token: cookies.get(SESSION_COOKIE).cloned(),
            cookies,
            same_origin,
            query,
        })
    }
}

/// A signed-in operator's request: their live session.
struct SignedIn {
    session: Session,
    token_hash: [u8; 32],
}

impl SignedIn {
    fn require(&self, permission: Permission) -> Result<(), Refusal> {
        if self.session.role.may(permission) {
            Ok(())
        } else {
            Err(Refusal::RoleNotAllowed)
        }
    }

    fn actor(&self) -> Actor {
        Actor {
            id: Some(self.session.operator),
            name: self.session.name.clone(),
        }
    }
}

/// Why a request has no session.
enum NoSession {
    /// It carried no session cookie, or one no session has.
    None,
    /// Its session was over (and is deleted).
    Ended,
    /// The database failed.
    Failed(Refusal),
}

async fn signed_in(console: &Arc<Console>, ctx: &Ctx) -> Result<SignedIn, NoSession> {
    let Some(token) = ctx.token.as_deref().filter(|t| t.len() <= 128) else {
        return Err(NoSession::None);
    };
    let hash = token_hash(token);
    let now = console.clock.now();
    match console
        .store(move |store| store.resume_session(&hash, now))
        .await
    {
        Ok(Resumed::Live(session)) => Ok(SignedIn {
            session,
            token_hash: hash,
        }),
        Ok(Resumed::Ended(_)) => Err(NoSession::Ended),
        Ok(Resumed::Unknown) => Err(NoSession::None),
        Err(refusal) => Err(NoSession::Failed(refusal)),
    }
}

/// The session of a page's request, or the answer: to the sign-in page (saying why) for a
/// page, a 401 for a change.
async fn session_for(
    console: &Arc<Console>,
    ctx: &Ctx,
    method: &Method,
) -> Result<SignedIn, Response> {
    match signed_in(console, ctx).await {
        Ok(signed) => Ok(signed),
        Err(NoSession::Failed(refusal)) => Err(refusal.answer(ctx, None)),
        Err(_) if *method == Method::POST || ctx.json => {
            Err(Refusal::NotSignedIn.answer(ctx, None))
        }
        Err(NoSession::Ended) => Err(see_other("/console/login?m=session_ended")),
        Err(NoSession::None) => Err(see_other("/console/login")),
    }
}

fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/console/")),
        )],
    )
        .into_response()
}

fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A page's answer, setting the language cookie when `?lang=` chose it.
fn with_lang(console: &Console, ctx: &Ctx, mut response: Response) -> Response {
    if ctx.chosen {
        response.headers_mut().append(
            header::SET_COOKIE,
            console.cookie(LANG_COOKIE, ctx.lang.code(), Some(365 * 24 * 3600)),
        );
    }
    response
}

/// A form's fields.
struct Form(Vec<(String, String)>);

/// What is wrong with a form's field.
enum FieldProblem {
    Missing,
    TooLong,
}

/// A request's body, or why it could not be read (too large, or broken off).
fn body_of(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Refusal> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refusal::PayloadTooLarge
        } else {
            Refusal::InvalidForm
        }
    })
}

impl Form {
    fn parse(body: Result<Bytes, BytesRejection>) -> Result<Form, Refusal> {
        let body = body_of(body)?;
        Ok(Form(
            form_urlencoded::parse(&body)
                .into_owned()
                .collect::<Vec<_>>(),
        ))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A field that must be there, not empty, with at most `max` characters.
    fn field(&self, name: &str, max: usize) -> Result<&str, FieldProblem> {
        match self.get(name) {
            None | Some("") => Err(FieldProblem::Missing),
            Some(value) if value.chars().count() > max => Err(FieldProblem::TooLong),
            Some(value) => Ok(value),
        }
    }
}

fn field_text(problem: &FieldProblem) -> T {
    match problem {
        FieldProblem::Missing => T::FieldMissing,
        FieldProblem::TooLong => T::FieldTooLong,
    }
}

fn name_text(problem: NameProblem) -> T {
    match problem {
        NameProblem::Empty => T::NameEmpty,
        NameProblem::TooLong => T::NameTooLong,
        NameProblem::BadCharacter => T::NameBadCharacter,
    }
}

fn password_text(problem: PasswordProblem) -> T {
    match problem {
        PasswordProblem::TooShort => T::PasswordTooShort,
        PasswordProblem::TooLong => T::PasswordTooLong,
        PasswordProblem::Mismatch => T::PasswordMismatch,
    }
}

/// A change's checks before anything else: the origin, then the session's CSRF token (form
/// field `csrf` or header `X-CSRF-Token`).
fn check_change(ctx: &Ctx, headers: &HeaderMap, form: &Form, csrf: &str) -> Result<(), Refusal> {
    if !ctx.same_origin {
        return Err(Refusal::ForeignOrigin);
    }
    let given = form
        .get("csrf")
        .or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
    match given {
        Some(given) if same_secret(given, csrf) => Ok(()),
        _ => Err(Refusal::BadCsrf),
    }
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::STYLE,
    )
        .into_response()
}

async fn not_found(State(console): State<Arc<Console>>, ctx: Ctx) -> Response {
    let session = signed_in(&console, &ctx).await.ok();
    Refusal::NotFound.answer(&ctx, session.as_ref().map(|s| &s.session))
}

fn notice_of(ctx: &Ctx) -> Option<Notice> {
    Some(match ctx.query("m")? {
        "signed_out" => Notice::Ok(T::SignedOut),
        "session_ended" => Notice::Error(T::SessionEnded),
        "set_up" => Notice::Ok(T::SetUpDone),
        "operator_disabled" => Notice::Ok(T::OperatorDisabled),
        "policy_published" => Notice::Ok(T::PolicyPublished),
        "policy_cancelled" => Notice::Ok(T::PolicyCancelled),
        "policy_rerated" => Notice::Ok(T::PolicyRerated),
        "schedule_set" => Notice::Ok(T::ScheduleSetDone),
        "quotas_set" => Notice::Ok(T::QuotasSetDone),
        "terminal_revoked" => Notice::Ok(T::TerminalRevoked),
        "terminal_already_revoked" => Notice::Error(T::TerminalAlreadyRevoked),
        "card_revoked" => Notice::Ok(T::CardRevoked),
        "card_already_revoked" => Notice::Error(T::CardAlreadyRevoked),
        "watch_unpaired" => Notice::Ok(T::WatchUnpaired),
        "card_replaced" => Notice::Ok(T::CardReplaced),
        _ => return None,
    })
}

/// A page answered to a signed-in operator.
fn signed_page(
    console: &Console,
    ctx: &Ctx,
    signed: &SignedIn,
    current: Nav,
    notice: Option<Notice>,
    status: StatusCode,
    body: Markup,
) -> Response {
    let page = Page {
        current,
        title: current.label(),
        notice,
        status,
    };
    titled_page(console, ctx, signed, page, body)
}

/// What a signed-in page is: its place in the menu, its title, a notice and the status.
struct Page {
    current: Nav,
    title: T,
    notice: Option<Notice>,
    status: StatusCode,
}

/// A signed-in page with a title of its own.
fn titled_page(
    console: &Console,
    ctx: &Ctx,
    signed: &SignedIn,
    page: Page,
    body: Markup,
) -> Response {
    let Page {
        current,
        title,
        notice,
        status,
    } = page;
    let frame = Frame {
        lang: ctx.lang,
        title,
        path: &ctx.path,
        session: Some(&signed.session),
        current: Some(current),
        notice,
    };
    with_lang(console, ctx, html(status, pages::page(&frame, body)))
}

async fn today(State(console): State<Arc<Console>>, ctx: Ctx, method: Method) -> Response {
    let signed = match session_for(&console, &ctx, &method).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let now = console.clock.now();
    let read = console
        .store(move |store| {
            let activity = store.activity(&today::read_from(now))?;
            let leases = store.leases_on(points_core::kst_day(now))?;
            let terminals = store.terminals()?;
            let sightings = store.sightings()?;
            let recent = store.audit_log(&AuditQuery {
                action: None,
                offset: 0,
                limit: 5,
            })?;
            Ok((activity, leases, terminals, sightings, recent))
        })
        .await;
    let (activity, leases, terminals, sightings, recent) = match read {
        Ok(read) => read,
        Err(refusal) => return refusal.answer(&ctx, Some(&signed.session)),
    };
    let live = today::Live {
        now,
        activity: &activity,
        leases: &leases,
        terminals: &terminals,
        sightings: &sightings,
    };
    if ctx.query("part") == Some("live") {
        return html(StatusCode::OK, today::live(ctx.lang, &live));
    }
    signed_page(
        &console,
        &ctx,
        &signed,
        Nav::Today,
        notice_of(&ctx),
        StatusCode::OK,
        pages::today(ctx.lang, today::live(ctx.lang, &live), &recent),
    )
}

/// The day of `?day=`, today in Seoul when absent; `None` when it does not read.
fn day_asked(console: &Console, ctx: &Ctx) -> Option<chrono::NaiveDate> {
    ctx.day("day", points_core::kst_day(console.clock.now()))
        .ok()
}

async fn reconciliation_page(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    method: Method,
) -> Response {
    let signed = match session_for(&console, &ctx, &method).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let (day, notice) = match day_asked(&console, &ctx) {
        Some(day) => (day, None),
        None => (
            points_core::kst_day(console.clock.now()),
            Some(Notice::Error(T::BadDay)),
        ),
    };
    let status = if notice.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let read = console
        .store(move |store| {
            let terminals = store.terminals()?;
            let totals = store.hold_totals(day)?;
            let overspend = store.overspend(day)?;
            Ok((reconciliation::by_terminal(&terminals, &totals), overspend))
        })
        .await;
    match read {
        Ok((rows, overspend)) => signed_page(
            &console,
            &ctx,
            &signed,
            Nav::Reconciliation,
            notice,
            status,
            reconciliation::page(ctx.lang, day, &rows, &overspend),
        ),
        Err(refusal) => refusal.answer(&ctx, Some(&signed.session)),
    }
}

fn csv_answer(name: &str, text: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
        ],
        text,
    )
        .into_response()
}

async fn reconciliation_csv(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    method: Method,
) -> Response {
    let signed = match session_for(&console, &ctx, &method).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let Some(day) = day_asked(&console, &ctx) else {
        return reconciliation_page(State(console), ctx, method).await;
    };
    let read = console
        .store(move |store| {
            let terminals = store.terminals()?;
            let totals = store.hold_totals(day)?;
            Ok(reconciliation::totals_csv(
                day,
                &reconciliation::by_terminal(&terminals, &totals),
            ))
        })
        .await;
    match read {
        Ok(text) => csv_answer(&format!("palpal-redemptions-{day}.csv"), text),
        Err(refusal) => refusal.answer(&ctx, Some(&signed.session)),
    }
}

async fn overspend_csv(State(console): State<Arc<Console>>, ctx: Ctx, method: Method) -> Response {
    let signed = match session_for(&console, &ctx, &method).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let Some(day) = day_asked(&console, &ctx) else {
        return reconciliation_page(State(console), ctx, method).await;
    };
    match console.store(move |store| store.overspend(day)).await {
        Ok(lines) => csv_answer(
            &format!("palpal-overspends-{day}.csv"),
            reconciliation::overspend_csv(day, &lines),
        ),
        Err(refusal) => refusal.answer(&ctx, Some(&signed.session)),
    }
}

async fn today_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        today::SCRIPT,
    )
        .into_response()
}

/// A page before sign-in (sign-in, setup) with a new form token in its cookie.
fn form_page(
    console: &Console,
    ctx: &Ctx,
    title: T,
    notice: Option<Notice>,
    status: StatusCode,
    body: impl FnOnce(&str) -> Markup,
) -> Response {
    let token = match random_token() {
        Ok(token) => token,
        Err(refusal) => return refusal.answer(ctx, None),
    };
    let frame = Frame {
        lang: ctx.lang,
        title,
        path: &ctx.path,
        session: None,
        current: None,
        notice,
    };
    let mut response = html(status, pages::page(&frame, body(&token)));
    response.headers_mut().append(
        header::SET_COOKIE,
        console.cookie(FORM_COOKIE, &token, None),
    );
    with_lang(console, ctx, response)
}

async fn login_page(State(console): State<Arc<Console>>, ctx: Ctx) -> Response {
    if signed_in(&console, &ctx).await.is_ok() {
        return see_other("/console/");
    }
    form_page(
        &console,
        &ctx,
        T::SignInTitle,
        notice_of(&ctx),
        StatusCode::OK,
        |token| pages::sign_in(ctx.lang, token, ""),
    )
}

/// The checks of a form before sign-in: the origin, the form's token against its cookie,
/// and the address's attempts.
fn check_form(console: &Console, ctx: &Ctx, form: &Form) -> Result<(), Refusal> {
    if !ctx.same_origin {
        return Err(Refusal::ForeignOrigin);
    }
    let expected = ctx.cookies.get(FORM_COOKIE).map_or("", String::as_str);
    if !form
        .get("csrf")
        .is_some_and(|given| same_secret(given, expected))
    {
        return Err(Refusal::BadCsrf);
    }
    console.attempt(ctx.address)
}

async fn login(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match try_login(&console, &ctx, body).await {
        Ok(response) => response,
        Err(refusal) => refusal.answer(&ctx, None),
    }
}

async fn try_login(
    console: &Arc<Console>,
    ctx: &Ctx,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let form = Form::parse(body)?;
    check_form(console, ctx, &form)?;
    let again = |notice: T, status: StatusCode, name: &str| {
        let name = name.to_owned();
        form_page(
            console,
            ctx,
            T::SignInTitle,
            Some(Notice::Error(notice)),
            status,
            |token| pages::sign_in(ctx.lang, token, &name),
        )
    };
    let typed_name = form.get("name").unwrap_or("");
    let shown_name: String = typed_name.chars().take(rules::MAX_NAME_CHARS).collect();
    let fields = form
        .field("name", rules::MAX_NAME_CHARS)
        .and_then(|_| form.field("password", rules::MAX_PASSWORD_CHARS));
    if let Err(problem) = fields {
        return Ok(again(
            field_text(&problem),
            StatusCode::BAD_REQUEST,
            &shown_name,
        ));
    }
    let password = form.get("password").unwrap_or("").to_owned();
    let name = rules::check_name(typed_name).ok().map(str::to_owned);
    let lookup = name.clone();
    let operator = match lookup {
        Some(name) => {
            console
                .store(move |store| store.operator_login(&name))
                .await?
        }
        None => None,
    };
    let now = console.clock.now();
    // The password is checked in every case (against a dummy hash when there is nothing to
    // check it against), so that every refusal takes as long.
    let hash = operator.as_ref().and_then(|op| op.password_hash.clone());
    let correct = tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_password(&password, &hash),
        None => {
            verify_password(&password, dummy_hash());
            false
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("checking the password: {e}"))?;
    let verdict = login_verdict(operator.as_ref(), correct, now);
    let Err(reason) = verdict else {
        let Some(operator) = operator else {
            return Err(Refusal::Internal);
        };
        return open_session(console, ctx, operator).await;
    };
    let failed = FailedLogin {
        operator: operator.as_ref().map(|op| op.id),
        name: name.clone().unwrap_or_default(),
        reason,
        address: ctx.address.to_string(),
    };
    let after = console
        .store(move |store| store.record_login_failure(&failed, now))
        .await?;
    if operator.is_some() && after.locked_at(now).is_some() {
        Ok(again(T::AccountLocked, StatusCode::FORBIDDEN, &shown_name))
    } else {
        Ok(again(T::WrongLogin, StatusCode::UNAUTHORIZED, &shown_name))
    }
}

/// Whether a login by `operator` (the name's, if any) with a password found `correct` at
/// `now` succeeds, or why not (as recorded).
fn login_verdict(
    operator: Option<&OperatorLogin>,
    correct: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), &'static str> {
    let Some(operator) = operator else {
        return Err("unknown_name");
    };
    if operator.login.locked_at(now).is_some() {
        Err("locked")
    } else if operator.disabled {
        Err("disabled")
    } else if operator.password_hash.is_none() {
        Err("not_set_up")
    } else if !correct {
        Err("wrong_password")
    } else {
        Ok(())
    }
}

async fn open_session(
    console: &Arc<Console>,
    ctx: &Ctx,
    operator: OperatorLogin,
) -> Result<Response, Refusal> {
    let token = random_token()?;
    let session = NewSession {
        token_hash: token_hash(&token),
        csrf: random_token()?,
    };
    let now = console.clock.now();
    let address = ctx.address.to_string();
    console
        .store(move |store| store.open_session(&operator, &session, &address, now))
        .await?;
    let mut response = see_other("/console/");
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        console.cookie(SESSION_COOKIE, &token, None),
    );
    headers.append(header::SET_COOKIE, console.cookie(FORM_COOKIE, "", Some(0)));
    Ok(response)
}

async fn setup_page(State(console): State<Arc<Console>>, ctx: Ctx) -> Response {
    form_page(
        &console,
        &ctx,
        T::SetUpTitle,
        None,
        StatusCode::OK,
        |token| pages::set_up(ctx.lang, token, ""),
    )
}

async fn setup(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match try_setup(&console, &ctx, body).await {
        Ok(response) => response,
        Err(refusal) => refusal.answer(&ctx, None),
    }
}

async fn try_setup(
    console: &Arc<Console>,
    ctx: &Ctx,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let form = Form::parse(body)?;
    check_form(console, ctx, &form)?;
    let typed_name = form.get("name").unwrap_or("");
    let shown_name: String = typed_name.chars().take(rules::MAX_NAME_CHARS).collect();
    let again = |notice: T| {
        form_page(
            console,
            ctx,
            T::SetUpTitle,
            Some(Notice::Error(notice)),
            StatusCode::BAD_REQUEST,
            |token| pages::set_up(ctx.lang, token, &shown_name),
        )
    };
    let fields = form
        .field("name", rules::MAX_NAME_CHARS)
        .and_then(|_| form.field("code", 32))
        .and_then(|_| form.field("password", rules::MAX_PASSWORD_CHARS))
        .and_then(|_| form.field("password_again", rules::MAX_PASSWORD_CHARS));
    if let Err(problem) = fields {
        return Ok(again(field_text(&problem)));
    }
    let name = match rules::check_name(typed_name) {
        Ok(name) => name.to_owned(),
        Err(problem) => return Ok(again(name_text(problem))),
    };
    let password = form.get("password").unwrap_or("").to_owned();
    if let Err(problem) =
        rules::check_new_password(&password, form.get("password_again").unwrap_or(""))
    {
        return Ok(again(password_text(problem)));
    }
    let Some(code) = crate::code::normalise(form.get("code").unwrap_or("")) else {
        return Ok(again(T::BadSetup));
    };
    let code_hash = crate::code::hash(&code);
    let phc = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))??;
    let now = console.clock.now();
    let set = console
        .store(move |store| store.set_up_operator(&name, &code_hash, &phc, now))
        .await?;
    if set {
        Ok(see_other("/console/login?m=set_up"))
    } else {
        Ok(again(T::BadSetup))
    }
}

async fn logout(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed = match session_for(&console, &ctx, &Method::POST).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let done = async {
        let form = Form::parse(body)?;
        check_change(&ctx, &headers, &form, &signed.session.csrf)?;
        let now = console.clock.now();
        let (hash, session) = (signed.token_hash, signed.session.clone());
        console
            .store(move |store| store.end_session(&hash, &session, now))
            .await
    };
    match done.await {
        Ok(()) => {
            let mut response = see_other("/console/login?m=signed_out");
            response.headers_mut().append(
                header::SET_COOKIE,
                console.cookie(SESSION_COOKIE, "", Some(0)),
            );
            response
        }
        Err(refusal) => refusal.answer(&ctx, Some(&signed.session)),
    }
}

fn audit_filter(ctx: &Ctx) -> Option<AuditAction> {
    ctx.query("action").and_then(AuditAction::parse)
}

async fn audit_page(State(console): State<Arc<Console>>, ctx: Ctx, method: Method) -> Response {
    let signed = match session_for(&console, &ctx, &method).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let action = audit_filter(&ctx);
    let page = ctx
        .query("page")
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1);
    let query = AuditQuery {
        action,
        offset: (page - 1) * AUDIT_PAGE,
        limit: AUDIT_PAGE + 1,
    };
    match console.store(move |store| store.audit_log(&query)).await {
        Ok(mut entries) => {
            let more = entries.len() > AUDIT_PAGE as usize;
            entries.truncate(AUDIT_PAGE as usize);
            signed_page(
                &console,
                &ctx,
                &signed,
                Nav::Audit,
                None,
                StatusCode::OK,
                pages::audit(ctx.lang, &entries, action, page, more),
            )
        }
        Err(refusal) => refusal.answer(&ctx, Some(&signed.session)),
    }
}

async fn audit_csv(State(console): State<Arc<Console>>, ctx: Ctx, method: Method) -> Response {
    let signed = match session_for(&console, &ctx, &method).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let action = audit_filter(&ctx);
    let read = console
        .store(move |store| {
            let mut out = csv::row([
                "id",
                "at",
                "operator_id",
                "operator_name",
                "action",
                "target",
                "before",
                "after",
            ]);
            let mut offset = 0;
            loop {
                let entries = store.audit_log(&AuditQuery {
                    action,
                    offset,
                    limit: 1000,
                })?;
                for e in &entries {
                    let (id, at) = (e.id.to_string(), crate::store::console::stamp(e.at));
                    let operator = e.operator_id.map(|id| id.to_string()).unwrap_or_default();
                    out.push_str(&csv::row([
                        id.as_str(),
                        &at,
                        &operator,
                        &e.operator_name,
                        &e.action,
                        &e.target,
                        e.before.as_deref().unwrap_or(""),
                        e.after.as_deref().unwrap_or(""),
                    ]));
                }
                if entries.len() < 1000 {
                    break;
                }
                offset += 1000;
            }
            Ok(out)
        })
        .await;
    match read {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"palpal-audit-log.csv\"",
                ),
            ],
            text,
        )
            .into_response(),
        Err(refusal) => refusal.answer(&ctx, Some(&signed.session)),
    }
}

/// The operators page, with a notice, a code just made and the name typed in the form.
async fn operators_answer(
    console: &Arc<Console>,
    ctx: &Ctx,
    signed: &SignedIn,
    notice: Option<Notice>,
    status: StatusCode,
    new_code: Option<&NewCode<'_>>,
    typed_name: &str,
) -> Result<Response, Refusal> {
    let list = console.store(|store| store.operators()).await?;
    let body = pages::operators(
        ctx.lang,
        &signed.session.csrf,
        signed.session.operator,
        &list,
        new_code,
        typed_name,
        console.clock.now(),
    );
    Ok(signed_page(
        console,
        ctx,
        signed,
        Nav::Operators,
        notice,
        status,
        body,
    ))
}

async fn operators_page(State(console): State<Arc<Console>>, ctx: Ctx, method: Method) -> Response {
    let signed = match session_for(&console, &ctx, &method).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let shown = async {
        signed.require(Permission::ManageOperators)?;
        operators_answer(
            &console,
            &ctx,
            &signed,
            notice_of(&ctx),
            StatusCode::OK,
            None,
            "",
        )
        .await
    };
    shown
        .await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

async fn add_operator(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed = match session_for(&console, &ctx, &Method::POST).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let added = async {
        let form = Form::parse(body)?;
        check_change(&ctx, &headers, &form, &signed.session.csrf)?;
        signed.require(Permission::ManageOperators)?;
        let typed: String = form
            .get("name")
            .unwrap_or("")
            .chars()
            .take(rules::MAX_NAME_CHARS)
            .collect();
        let wrong = |text: T| {
            operators_answer(
                &console,
                &ctx,
                &signed,
                Some(Notice::Error(text)),
                StatusCode::BAD_REQUEST,
                None,
                &typed,
            )
        };
        if let Err(problem) = form.field("name", rules::MAX_NAME_CHARS) {
            return wrong(field_text(&problem)).await;
        }
        let name = match rules::check_name(form.get("name").unwrap_or("")) {
            Ok(name) => name.to_owned(),
            Err(problem) => return wrong(name_text(problem)).await,
        };
        let Some(role) = form.get("role").and_then(Role::parse) else {
            return Err(Refusal::InvalidForm);
        };
        let code = crate::code::generate()?;
        let code_hash = crate::code::hash(&code.replace('-', ""));
        let now = console.clock.now();
        let (by, stored_name) = (signed.actor(), name.clone());
        let added = console
            .store(move |store| store.add_operator(&stored_name, role, &code_hash, &by, now))
            .await?;
        if added.is_none() {
            return wrong(T::NameTaken).await;
        }
        let link = setup_link(&headers, console.config.tls);
        let new_code = NewCode {
            name: &name,
            code: &code,
            link: &link,
            valid_until: now + rules::SETUP_CODE_VALIDITY,
        };
        operators_answer(
            &console,
            &ctx,
            &signed,
            Some(Notice::Ok(T::OperatorAdded)),
            StatusCode::OK,
            Some(&new_code),
            "",
        )
        .await
    };
    added
        .await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

/// The setup page's address as the operator's browser reaches the console.
fn setup_link(headers: &HeaderMap, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    match headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        Some(host) => format!("{scheme}://{host}/console/setup"),
        None => "/console/setup".to_owned(),
    }
}

async fn disable_operator(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed = match session_for(&console, &ctx, &Method::POST).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let disabled = async {
        let form = Form::parse(body)?;
        check_change(&ctx, &headers, &form, &signed.session.csrf)?;
        signed.require(Permission::ManageOperators)?;
        let id: i64 = id.parse().map_err(|_| Refusal::NotFound)?;
        let wrong = |text: T| {
            operators_answer(
                &console,
                &ctx,
                &signed,
                Some(Notice::Error(text)),
                StatusCode::BAD_REQUEST,
                None,
                "",
            )
        };
        if id == signed.session.operator {
            return wrong(T::NotYourself).await;
        }
        let now = console.clock.now();
        let by = signed.actor();
        let done = console
            .store(move |store| store.disable_operator(id, &by, now))
            .await?;
        if done {
            Ok(see_other("/console/operators?m=operator_disabled"))
        } else {
            wrong(T::NoSuchOperator).await
        }
    };
    disabled
        .await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

fn site_text(problem: SiteProblem) -> T {
    match problem {
        SiteProblem::Empty => T::SiteEmpty,
        SiteProblem::TooLong => T::SiteTooLong,
        SiteProblem::BadCharacter => T::SiteBadCharacter,
    }
}

/// The terminals' table's filter from the page's query.
fn terminal_filter(ctx: &Ctx) -> TerminalFilter {
    let given = |name: &str| ctx.query(name).filter(|v| !v.is_empty());
    TerminalFilter {
        site: given("site")
            .filter(|s| s.chars().count() <= rules::MAX_SITE_CHARS)
            .map(str::to_owned),
        role: given("role").and_then(TerminalRole::parse),
        state: given("state").and_then(|s| pages::STATES.into_iter().find(|x| *x == s)),
        silent_only: ctx.query("silent") == Some("1"),
    }
}

/// The terminals page, with a notice, a terminal just provisioned and the site typed.
async fn terminals_answer(
    console: &Arc<Console>,
    ctx: &Ctx,
    signed: &SignedIn,
    notice: Option<Notice>,
    status: StatusCode,
    new_terminal: Option<&NewTerminal<'_>>,
    typed_site: &str,
) -> Result<Response, Refusal> {
    let (terminals, sightings) = console
        .store(|store| Ok((store.terminals()?, store.sightings()?)))
        .await?;
    let now = console.clock.now();
    let silent_after = console.config.silent_after;
    let mut seen: HashMap<i64, crate::store::Sighting> =
        sightings.into_iter().map(|s| (s.terminal, s)).collect();
    let mut sites: Vec<String> = terminals.iter().map(|t| t.site.clone()).collect();
    sites.sort();
    sites.dedup();
    let filter = terminal_filter(ctx);
    let mut rows: Vec<TerminalRow> = terminals
        .into_iter()
        .map(|terminal| {
            let sighting = seen.remove(&terminal.id);
            let report = sighting
                .as_ref()
                .and_then(|s| s.report.as_ref())
                .map(|(_, r)| r);
            let flags = rules::terminal_flags(
                !terminal.revoked && terminal.public_key.is_some(),
                sighting.as_ref().map(|s| s.seen_at),
                report.and_then(|r| r.clock_offset_s),
                report.and_then(|r| r.oldest_waiting_s),
                silent_after,
                now,
            );
            TerminalRow {
                terminal,
                sighting,
                flags,
            }
        })
        .filter(|row| filter.keeps(row))
        .collect();
    rows.sort_by(|a, b| {
        (a.terminal.site.as_str(), a.terminal.id).cmp(&(b.terminal.site.as_str(), b.terminal.id))
    });
    let body = pages::terminals(
        ctx.lang,
        &signed.session.csrf,
        signed.session.role.may(Permission::Change),
        &rows,
        &sites,
        &filter,
        silent_after,
        new_terminal,
        typed_site,
    );
    Ok(signed_page(
        console,
        ctx,
        signed,
        Nav::Terminals,
        notice,
        status,
        body,
    ))
}

async fn terminals_page(State(console): State<Arc<Console>>, ctx: Ctx, method: Method) -> Response {
    let signed = match session_for(&console, &ctx, &method).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    terminals_answer(
        &console,
        &ctx,
        &signed,
        notice_of(&ctx),
        StatusCode::OK,
        None,
        "",
    )
    .await
    .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

async fn provision_terminal(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed = match session_for(&console, &ctx, &Method::POST).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let provisioned = async {
        let form = Form::parse(body)?;
        check_change(&ctx, &headers, &form, &signed.session.csrf)?;
        signed.require(Permission::Change)?;
        let typed: String = form
            .get("site")
            .unwrap_or("")
            .chars()
            .take(rules::MAX_SITE_CHARS)
            .collect();
        let wrong = |text: T| {
            terminals_answer(
                &console,
                &ctx,
                &signed,
                Some(Notice::Error(text)),
                StatusCode::BAD_REQUEST,
                None,
                &typed,
            )
        };
        if let Err(problem) = form.field("site", rules::MAX_SITE_CHARS) {
            return wrong(field_text(&problem)).await;
        }
        let site = match rules::check_site(form.get("site").unwrap_or("")) {
            Ok(site) => site.to_owned(),
            Err(problem) => return wrong(site_text(problem)).await,
        };
        let Some(role) = form.get("role").and_then(TerminalRole::parse) else {
            return wrong(T::BadTerminalRole).await;
        };
        let code = crate::code::generate()?;
        let code_hash = crate::code::hash(&code.replace('-', ""));
        let now = console.clock.now();
        let (by, stored_site) = (signed.actor(), site.clone());
        let terminal = console
            .store(move |store| store.provision_terminal(&stored_site, role, &code_hash, &by, now))
            .await?;
        let config = &console.config;
        let offer = sync_protocol::enrollment::EnrollmentOffer::new(
            &code,
            config.terminal_url.as_deref(),
            config.server_key.as_deref(),
        );
        let svg = kiosk_core::card::qr_svg(&offer.to_text())
            .map_err(|e| anyhow::anyhow!("drawing the enrollment QR code: {e:?}"))?;
        let label = terminal.label();
        let new = NewTerminal {
            label: &label,
            site: &site,
            role,
            code: &code,
            server: config.terminal_url.as_deref(),
            server_key: config.server_key.as_deref(),
            qr_svg: &svg,
        };
        terminals_answer(
            &console,
            &ctx,
            &signed,
            Some(Notice::Ok(T::TerminalProvisioned)),
            StatusCode::OK,
            Some(&new),
            "",
        )
        .await
    };
    provisioned
        .await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

/// The terminals page saying there is no such terminal (404).
async fn no_such_terminal(
    console: &Arc<Console>,
    ctx: &Ctx,
    signed: &SignedIn,
) -> Result<Response, Refusal> {
    terminals_answer(
        console,
        ctx,
        signed,
        Some(Notice::Error(T::NoSuchTerminal)),
        StatusCode::NOT_FOUND,
        None,
        "",
    )
    .await
}

async fn revoke_terminal_page(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(label): Path<String>,
    method: Method,
) -> Response {
    let signed = match session_for(&console, &ctx, &method).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let shown = async {
        signed.require(Permission::Change)?;
        let Some(id) = parse_terminal_label(&label) else {
            return no_such_terminal(&console, &ctx, &signed).await;
        };
        let found = console.store(move |store| store.terminal(id)).await?;
        let Some(terminal) = found.filter(|t| !t.revoked) else {
            return no_such_terminal(&console, &ctx, &signed).await;
        };
        let t = |text: T| text.get(ctx.lang).to_owned();
        let state = crate::store::console::terminal_state(&terminal);
        let what = [
            (T::ColTerminal, terminal.label()),
            (T::ColSite, terminal.site.clone()),
            (T::Role, t(pages::terminal_role_name(terminal.role))),
            (T::ColState, t(pages::state_name(state))),
        ];
        let body = pages::confirm(
            ctx.lang,
            &signed.session.csrf,
            &what,
            T::ConfirmRevokeTerminal,
            &format!("/console/terminals/{}/revoke", terminal.label()),
            T::ActionTerminalRevoked,
            "/console/terminals",
        );
        Ok(titled_page(
            &console,
            &ctx,
            &signed,
            Page {
                current: Nav::Terminals,
                title: T::ConfirmTitle,
                notice: None,
                status: StatusCode::OK,
            },
            body,
        ))
    };
    shown
        .await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

async fn revoke_terminal(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(label): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed = match session_for(&console, &ctx, &Method::POST).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let revoked = async {
        let form = Form::parse(body)?;
        check_change(&ctx, &headers, &form, &signed.session.csrf)?;
        signed.require(Permission::Change)?;
        let Some(id) = parse_terminal_label(&label) else {
            return no_such_terminal(&console, &ctx, &signed).await;
        };
        let now = console.clock.now();
        let by = signed.actor();
        let change = console
            .store(move |store| store.revoke_terminal_as(id, &by, now))
            .await?;
        match change {
            Change::Done => Ok(see_other("/console/terminals?m=terminal_revoked")),
            Change::Already => Ok(see_other("/console/terminals?m=terminal_already_revoked")),
            Change::Unknown => no_such_terminal(&console, &ctx, &signed).await,
        }
    };
    revoked
        .await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

/// The members page for the number typed (if any), with a notice.
async fn members_answer(
    console: &Arc<Console>,
    ctx: &Ctx,
    signed: &SignedIn,
    typed: &str,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let typed: String = typed.trim().chars().take(32).collect();
    let may_change = signed.session.role.may(Permission::Change);
    let page = |notice, status, member: Option<&MemberOverview>| {
        signed_page(
            console,
            ctx,
            signed,
            Nav::Members,
            notice,
            status,
            pages::members(ctx.lang, may_change, &typed, member),
        )
    };
    if typed.is_empty() {
        return Ok(page(notice, status, None));
    }
    let Some(id) = member_id(&typed) else {
        return Ok(page(
            Some(Notice::Error(T::BadMemberNumber)),
            StatusCode::BAD_REQUEST,
            None,
        ));
    };
    let found = console
        .store(move |store| store.member_overview(id))
        .await?;
    Ok(match found {
        Some(member) => page(notice, status, Some(&member)),
        None => page(
            Some(Notice::Error(T::NoSuchMember)),
            StatusCode::NOT_FOUND,
            None,
        ),
    })
}

async fn members_page(State(console): State<Arc<Console>>, ctx: Ctx, method: Method) -> Response {
    let signed = match session_for(&console, &ctx, &method).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let typed = ctx.query("number").unwrap_or("").to_owned();
    members_answer(
        &console,
        &ctx,
        &signed,
        &typed,
        notice_of(&ctx),
        StatusCode::OK,
    )
    .await
    .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

/// The member a number names, typed in its one form (`PP-00000001`, any case).
fn member_id(typed: &str) -> Option<i64> {
    let typed = typed.trim().to_ascii_uppercase();
    parse_member_number(&typed).filter(|id| member_number(*id) == typed)
}

/// A watch's serial as a path gives it: 1 to 64 characters, none of them a control.
fn watch_serial(text: &str) -> Option<&str> {
    let count = text.chars().count();
    ((1..=64).contains(&count) && !text.chars().any(char::is_control)).then_some(text)
}

/// What a member's card or watch page names: the member, and the card's serial or the
/// watch's.
enum MemberThing {
    Card(u16),
    Replace(u16),
    Watch(String),
}

impl MemberThing {
    fn of(kind: &str, serial: &str) -> Option<MemberThing> {
        match kind {
            "card" | "replace" => serial.parse::<u16>().ok().filter(|s| *s >= 1).map(|s| {
                if kind == "card" {
                    MemberThing::Card(s)
                } else {
                    MemberThing::Replace(s)
                }
            }),
            _ => watch_serial(serial).map(|s| MemberThing::Watch(s.to_owned())),
        }
    }

    fn missing(&self) -> T {
        match self {
            MemberThing::Card(_) | MemberThing::Replace(_) => T::NoSuchCard,
            MemberThing::Watch(_) => T::NoSuchPairing,
        }
    }

    fn path(&self, member: i64) -> String {
        match self {
            MemberThing::Card(serial) => {
                format!(
                    "/console/members/{}/cards/{serial}/revoke",
                    member_number(member)
                )
            }
            MemberThing::Replace(serial) => {
                format!(
                    "/console/members/{}/cards/{serial}/replace",
                    member_number(member)
                )
            }
            MemberThing::Watch(serial) => format!(
                "/console/members/{}/watches/{}/unpair",
                member_number(member),
                pages::segment(serial)
            ),
        }
    }

    /// Whether `member` has it, in force.
    fn held_by(&self, member: &MemberOverview) -> bool {
        match self {
            MemberThing::Card(serial) | MemberThing::Replace(serial) => member
                .cards
                .iter()
                .any(|c| c.serial == *serial && !c.revoked),
            MemberThing::Watch(serial) => member
                .watches
                .iter()
                .any(|w| w.serial == *serial && w.ended.is_none()),
        }
    }
}

/// The confirmation page of a card's revocation or a watch's unpairing.
async fn member_confirm(
    console: Arc<Console>,
    ctx: Ctx,
    method: Method,
    number: String,
    kind: &'static str,
    serial: String,
) -> Response {
    let signed = match session_for(&console, &ctx, &method).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let shown = async {
        signed.require(Permission::Change)?;
        let Some(id) = member_id(&number) else {
            return members_answer(&console, &ctx, &signed, &number, None, StatusCode::OK).await;
        };
        let Some(thing) = MemberThing::of(kind, &serial) else {
            let missing = if kind != "watch" {
                T::NoSuchCard
            } else {
                T::NoSuchPairing
            };
            return not_held(&console, &ctx, &signed, id, missing).await;
        };
        let found = console
            .store(move |store| store.member_overview(id))
            .await?;
        let Some(member) = found.filter(|m| thing.held_by(m)) else {
            return not_held(&console, &ctx, &signed, id, thing.missing()).await;
        };
        let mut what = vec![
            (T::MemberNumber, member_number(id)),
            (T::MaskedName, member.masked_name.clone()),
        ];
        let (warning, button) = match &thing {
            MemberThing::Card(serial) => {
                what.push((T::CardSerial, serial.to_string()));
                (T::ConfirmRevokeCard, T::ActionCardRevoked)
            }
            MemberThing::Replace(serial) => {
                what.push((T::CardSerial, serial.to_string()));
                (T::ConfirmReplaceCard, T::ActionCardReplaced)
            }
            MemberThing::Watch(serial) => {
                what.push((T::WatchSerial, serial.clone()));
                (T::ConfirmUnpair, T::ActionWatchUnpaired)
            }
        };
        let back = format!("/console/members?number={}", member_number(id));
        let body = pages::confirm(
            ctx.lang,
            &signed.session.csrf,
            &what,
            warning,
            &thing.path(id),
            button,
            &back,
        );
        Ok(titled_page(
            &console,
            &ctx,
            &signed,
            Page {
                current: Nav::Members,
                title: T::ConfirmTitle,
                notice: None,
                status: StatusCode::OK,
            },
            body,
        ))
    };
    shown
        .await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

/// The member's page saying the card or watch is not theirs (404).
async fn not_held(
    console: &Arc<Console>,
    ctx: &Ctx,
    signed: &SignedIn,
    member: i64,
    text: T,
) -> Result<Response, Refusal> {
    members_answer(
        console,
        ctx,
        signed,
        &member_number(member),
        Some(Notice::Error(text)),
        StatusCode::NOT_FOUND,
    )
    .await
}

/// A card's revocation or a watch's unpairing.
async fn member_change(
    console: Arc<Console>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    number: String,
    kind: &'static str,
    serial: String,
) -> Response {
    let signed = match session_for(&console, &ctx, &Method::POST).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let changed = async {
        let form = Form::parse(body)?;
        check_change(&ctx, &headers, &form, &signed.session.csrf)?;
        signed.require(Permission::Change)?;
        let Some(id) = member_id(&number) else {
            return members_answer(&console, &ctx, &signed, &number, None, StatusCode::OK).await;
        };
        let Some(thing) = MemberThing::of(kind, &serial) else {
            let missing = if kind != "watch" {
                T::NoSuchCard
            } else {
                T::NoSuchPairing
            };
            return not_held(&console, &ctx, &signed, id, missing).await;
        };
        let now = console.clock.now();
        let by = signed.actor();
        let missing = thing.missing();
        let (change, done, already) = match thing {
            MemberThing::Card(serial) => (
                console
                    .store(move |store| store.revoke_card_as(id, serial, &by, now))
                    .await?,
                "card_revoked",
                "card_already_revoked",
            ),
            MemberThing::Replace(serial) => {
                let allowed = console
                    .store(move |store| store.replace_card(id, serial, &by, now))
                    .await?;
                let change = if allowed.is_some() {
                    Change::Done
                } else {
                    Change::Unknown
                };
                (change, "card_replaced", "card_replaced")
            }
            MemberThing::Watch(serial) => (
                console
                    .store(move |store| store.unpair_watch(id, &serial, &by, now))
                    .await?,
                "watch_unpaired",
                "watch_unpaired",
            ),
        };
        let to = |code: &str| {
            see_other(&format!(
                "/console/members?number={}&m={code}",
                member_number(id)
            ))
        };
        match change {
            Change::Done => Ok(to(done)),
            Change::Already => Ok(to(already)),
            Change::Unknown => not_held(&console, &ctx, &signed, id, missing).await,
        }
    };
    changed
        .await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

async fn revoke_card_page(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path((number, serial)): Path<(String, String)>,
    method: Method,
) -> Response {
    member_confirm(console, ctx, method, number, "card", serial).await
}

async fn revoke_card(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path((number, serial)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    member_change(console, ctx, headers, body, number, "card", serial).await
}

async fn unpair_watch_page(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path((number, serial)): Path<(String, String)>,
    method: Method,
) -> Response {
    member_confirm(console, ctx, method, number, "watch", serial).await
}

async fn unpair_watch(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path((number, serial)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    member_change(console, ctx, headers, body, number, "watch", serial).await
}

async fn replace_card_page(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path((number, serial)): Path<(String, String)>,
    method: Method,
) -> Response {
    member_confirm(console, ctx, method, number, "replace", serial).await
}

async fn replace_card(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path((number, serial)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    member_change(console, ctx, headers, body, number, "replace", serial).await
}
