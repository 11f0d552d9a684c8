//! The operator console against the real server, on SQLite or (`PALPAL_TEST_DB=postgres`)
//! PostgreSQL: setup with a one-time code, sign-in, lockout, session lifetimes, CSRF and
//! origin checks, roles checked by the server, hostile input, the audit log and its CSV, and
//! the console kept apart from the terminals' API.

use std::collections::HashMap;

use chrono::TimeDelta;
use palpal_central::console::text::{Lang, T};
use reqwest::header::{HeaderMap, HeaderValue};

use super::*;

const PASSWORD: &str = "한강 산책 매일 만 보";

/// A browser: the console's cookies, no redirects followed.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

/// An answer from the console.
struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    /// The page's `csrf` field (the first form's).
    fn csrf(&self) -> Result<String, Box<dyn std::error::Error>> {
        let start = self
            .body
            .find("name=\"csrf\" value=\"")
            .ok_or_else(|| format!("no csrf field in {}", self.body))?
            + "name=\"csrf\" value=\"".len();
        let end = self.body[start..].find('"').ok_or("unterminated csrf")?;
        Ok(self.body[start..start + end].to_owned())
    }

    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Whether the page says `text` (in Korean, the default language).
    fn says(&self, text: T) -> bool {
        self.body.contains(text.get(Lang::Ko))
    }
}

impl Browser {
    fn new(base: &str) -> Result<Browser, Box<dyn std::error::Error>> {
        Ok(Browser {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            cookies: HashMap::new(),
        })
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(
        &mut self,
        request: reqwest::RequestBuilder,
    ) -> Result<Page, Box<dyn std::error::Error>> {
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.header("cookie", self.cookie_header())
        };
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for value in headers.get_all("set-cookie") {
            let text = value.to_str()?;
            let pair = text.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || text.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let body = response.text().await?;
        Ok(Page {
            status,
            headers,
            body,
        })
    }

    async fn get(&mut self, path: &str) -> Result<Page, Box<dyn std::error::Error>> {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// Posts `fields` as a form, with `headers` besides.
    async fn post_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Page, Box<dyn std::error::Error>> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            form.append_pair(name, value);
        }
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish());
        for (name, value) in headers {
            request = request.header(*name, HeaderValue::from_str(value)?);
        }
        self.send(request).await
    }

    async fn post(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<Page, Box<dyn std::error::Error>> {
        self.post_with(path, fields, &[]).await
    }

    async fn set_up(
        &mut self,
        name: &str,
        code: &str,
        password: &str,
    ) -> Result<Page, Box<dyn std::error::Error>> {
        let token = self.get("/console/setup").await?.csrf()?;
        self.post(
            "/console/setup",
            &[
                ("csrf", &token),
                ("name", name),
                ("code", code),
                ("password", password),
                ("password_again", password),
            ],
        )
        .await
    }

    async fn sign_in(
        &mut self,
        name: &str,
        password: &str,
    ) -> Result<Page, Box<dyn std::error::Error>> {
        let token = self.get("/console/login").await?.csrf()?;
        self.post(
            "/console/login",
            &[("csrf", &token), ("name", name), ("password", password)],
        )
        .await
    }

    /// The CSRF token of the signed-in session (from the start page's sign-out form).
    async fn session_csrf(&mut self) -> Result<String, Box<dyn std::error::Error>> {
        let page = self.get("/console/").await?;
        assert_eq!(page.status, 200, "{}", page.body);
        page.csrf()
    }
}

impl Harness {
    fn browser(&self) -> Result<Browser, Box<dyn std::error::Error>> {
        Browser::new(&self.console)
    }

    /// `palpal-central operator add`; the setup code it printed.
    fn add_operator(&self, name: &str, role: &str) -> Result<String, Box<dyn std::error::Error>> {
        let out = cli(&[
            "operator",
            "add",
            "--db",
            self.db(),
            "--name",
            name,
            "--role",
            role,
        ])?;
        assert_eq!(field(&out, "setup"), Some("/console/setup"), "{out}");
        Ok(field(&out, "code").ok_or("no code printed")?.to_owned())
    }

    /// An operator added, set up and signed in, in a browser of their own.
    async fn signed_in(
        &self,
        name: &str,
        role: &str,
    ) -> Result<Browser, Box<dyn std::error::Error>> {
        let code = self.add_operator(name, role)?;
        let mut browser = self.browser()?;
        let set = browser.set_up(name, &code, PASSWORD).await?;
        assert_eq!(set.status, 303, "{}", set.body);
        let signed = browser.sign_in(name, PASSWORD).await?;
        assert_eq!(
            (signed.status, signed.location()),
            (303, "/console/"),
            "{}",
            signed.body
        );
        Ok(browser)
    }

    fn audit_count(&self, action: &str) -> Result<i64, Box<dyn std::error::Error>> {
        Ok(self.test_db.row(&format!(
            "SELECT count(*) FROM audit_log WHERE action = '{action}'"
        ))?[0])
    }

    fn later(&self, minutes: i64) {
        self.clock
            .set(self.clock.now() + TimeDelta::minutes(minutes));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sets_up_with_the_code_once_and_signs_in() -> TestResult {
    let h = start(Config::default()).await?;
    let code = h.add_operator("김영희", "admin")?;
    let listed = cli(&["operator", "list", "--db", h.db()])?;
    assert!(listed.contains("김영희\tadmin\twaiting"), "{listed}");

    let mut browser = h.browser()?;
    // Before setup, no password works.
    let early = browser.sign_in("김영희", PASSWORD).await?;
    assert_eq!(early.status, 401);
    assert!(early.says(T::WrongLogin));

    let set = browser.set_up("김영희", &code, PASSWORD).await?;
    assert_eq!(
        (set.status, set.location()),
        (303, "/console/login?m=set_up")
    );
    // The code works once: a second setup is refused and the password stays the first.
    let again = browser
        .set_up("김영희", &code, "another password entirely")
        .await?;
    assert_eq!(again.status, 400);
    assert!(again.says(T::BadSetup), "{}", again.body);
    assert_eq!(
        browser
            .sign_in("김영희", "another password entirely")
            .await?
            .status,
        401
    );

    // A wrong password and an unknown name say the same.
    let wrong = browser.sign_in("김영희", "not the password at all").await?;
    let unknown = browser.sign_in("박철수", PASSWORD).await?;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert!(wrong.says(T::WrongLogin) && unknown.says(T::WrongLogin));
    assert_eq!(
        wrong.body.replace(&wrong.csrf()?, ""),
        unknown
            .body
            .replace(&unknown.csrf()?, "")
            .replace("박철수", "김영희")
    );

    let signed = browser.sign_in("김영희", PASSWORD).await?;
    assert_eq!((signed.status, signed.location()), (303, "/console/"));
    let cookie = signed
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        cookie.starts_with("palpal_console=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/console")
            && !cookie.contains("Secure"),
        "{cookie}"
    );
    let home = browser.get("/console/").await?;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("<html lang=\"ko\""));
    assert!(home.body.contains("김영희"));
    let english = browser.get("/console/?lang=en").await?;
    assert!(english.body.contains("<html lang=\"en\""));
    assert!(english.body.contains(T::NavAudit.get(Lang::En)));
    // The choice is kept in a cookie.
    let kept = browser.get("/console/audit").await?;
    assert!(kept.body.contains("<html lang=\"en\""));

    // The session token is stored only hashed; its cookie is not in the database.
    let token = browser
        .cookies
        .get("palpal_console")
        .cloned()
        .unwrap_or_default();
    assert_eq!(token.len(), 43);
    assert_eq!(h.count("console_sessions")?, 1);
    for action in ["operator_added", "operator_set_up", "login_succeeded"] {
        assert_eq!(h.audit_count(action)?, 1, "{action}");
    }
    assert_eq!(h.audit_count("login_failed")?, 4);
    let listed = cli(&["operator", "list", "--db", h.db()])?;
    assert!(listed.contains("김영희\tadmin\tactive"), "{listed}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failed_logins_lock_the_account_for_fifteen_minutes() -> TestResult {
    let h = start(Config::default()).await?;
    let code = h.add_operator("lee", "operator")?;
    let mut browser = h.browser()?;
    assert_eq!(browser.set_up("lee", &code, PASSWORD).await?.status, 303);
    for _ in 0..4 {
        let wrong = browser.sign_in("lee", "wrong password, again").await?;
        assert!(wrong.says(T::WrongLogin));
    }
    let fifth = browser.sign_in("lee", "wrong password, again").await?;
    assert_eq!(fifth.status, 403);
    assert!(fifth.says(T::AccountLocked), "{}", fifth.body);
    // Locked: even the right password is refused, and no session is opened.
    let right = browser.sign_in("lee", PASSWORD).await?;
    assert_eq!(right.status, 403);
    assert!(right.says(T::AccountLocked));
    assert_eq!(h.count("console_sessions")?, 0);
    assert_eq!(h.audit_count("account_locked")?, 1);
    assert_eq!(h.audit_count("login_failed")?, 6);

    h.later(14);
    assert_eq!(browser.sign_in("lee", PASSWORD).await?.status, 403);
    h.later(1);
    let open = browser.sign_in("lee", PASSWORD).await?;
    assert_eq!((open.status, open.location()), (303, "/console/"));
    assert_eq!(h.audit_count("login_succeeded")?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_trying_too_often_is_told_to_wait() -> TestResult {
    let h = start(Config::default()).await?;
    let mut browser = h.browser()?;
    let mut token = browser.get("/console/login").await?.csrf()?;
    let mut statuses = Vec::new();
    for _ in 0..21 {
        let page = browser
            .post(
                "/console/login",
                &[("csrf", &token), ("name", "nobody"), ("password", "x")],
            )
            .await?;
        statuses.push(page.status);
        // Each sign-in page comes with a new form token.
        if let Ok(next) = page.csrf() {
            token = next;
        }
        if page.status == 429 {
            assert!(page.says(T::TooManyAttempts));
            let wait: u64 = page
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .ok_or("no Retry-After")?;
            assert!((1..=60).contains(&wait));
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429));
    h.later(1);
    let after = browser
        .post(
            "/console/login",
            &[("csrf", &token), ("name", "nobody"), ("password", "x")],
        )
        .await?;
    assert_eq!(after.status, 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_idle_and_at_sign_out() -> TestResult {
    let h = start(Config::default()).await?;
    let mut browser = h.signed_in("park", "viewer").await?;
    // Each request counts as use.
    h.later(29);
    assert_eq!(browser.get("/console/").await?.status, 200);
    h.later(29);
    assert_eq!(browser.get("/console/audit").await?.status, 200);
    h.later(30);
    let ended = browser.get("/console/").await?;
    assert_eq!(
        (ended.status, ended.location()),
        (303, "/console/login?m=session_ended")
    );
    assert_eq!(h.count("console_sessions")?, 0);
    let told = browser.get("/console/login?m=session_ended").await?;
    assert!(told.says(T::SessionEnded));

    // Sign in again, then out: the session row is gone and the old cookie opens nothing.
    let signed = browser.sign_in("park", PASSWORD).await?;
    assert_eq!(signed.status, 303);
    let old_cookie = browser.cookies.clone();
    let csrf = browser.session_csrf().await?;
    let out = browser.post("/console/logout", &[("csrf", &csrf)]).await?;
    assert_eq!(
        (out.status, out.location()),
        (303, "/console/login?m=signed_out")
    );
    assert!(!browser.cookies.contains_key("palpal_console"));
    assert_eq!(h.count("console_sessions")?, 0);
    assert_eq!(h.audit_count("signed_out")?, 1);
    browser.cookies = old_cookie;
    let replayed = browser.get("/console/").await?;
    assert_eq!(
        (replayed.status, replayed.location()),
        (303, "/console/login")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_need_the_sessions_token_and_the_consoles_own_origin() -> TestResult {
    let h = start(Config::default()).await?;
    let mut admin = h.signed_in("admin", "admin").await?;
    let csrf = admin.session_csrf().await?;
    let operators = h.count("operators")?;

    let missing = admin
        .post(
            "/console/operators",
            &[("name", "새 운영자"), ("role", "viewer")],
        )
        .await?;
    assert_eq!(missing.status, 403);
    assert!(missing.says(T::BadCsrf));
    assert!(missing.body.contains("bad_csrf"));
    let wrong = admin
        .post(
            "/console/operators",
            &[
                ("csrf", "not-the-token"),
                ("name", "새 운영자"),
                ("role", "viewer"),
            ],
        )
        .await?;
    assert_eq!(wrong.status, 403);
    let foreign = admin
        .post_with(
            "/console/operators",
            &[("csrf", &csrf), ("name", "새 운영자"), ("role", "viewer")],
            &[("origin", "http://evil.example")],
        )
        .await?;
    assert_eq!(foreign.status, 403);
    assert!(foreign.says(T::ForeignOrigin));
    let as_json = admin
        .post_with(
            "/console/operators",
            &[("name", "새 운영자"), ("role", "viewer")],
            &[("accept", "application/json")],
        )
        .await?;
    let body: Value = serde_json::from_str(&as_json.body)?;
    assert_eq!(
        (as_json.status, body["code"].clone()),
        (403, json!("bad_csrf"))
    );
    assert_eq!(body["message_en"], T::BadCsrf.get(Lang::En));
    // Sign-out needs it too.
    assert_eq!(admin.post("/console/logout", &[]).await?.status, 403);
    assert_eq!(h.count("operators")?, operators);
    assert_eq!(h.count("console_sessions")?, 1);

    // The sign-in form needs its own token, and its own origin.
    let mut stranger = h.browser()?;
    let no_token = stranger
        .post(
            "/console/login",
            &[("name", "admin"), ("password", PASSWORD)],
        )
        .await?;
    assert_eq!(no_token.status, 403);
    let token = stranger.get("/console/login").await?.csrf()?;
    let cross = stranger
        .post_with(
            "/console/login",
            &[("csrf", &token), ("name", "admin"), ("password", PASSWORD)],
            &[("origin", "https://evil.example")],
        )
        .await?;
    assert_eq!(cross.status, 403);
    assert_eq!(h.count("console_sessions")?, 1);

    // The same origin, and the token as a header: taken.
    let origin = h.console.clone();
    let taken = admin
        .post_with(
            "/console/operators",
            &[("name", "새 운영자"), ("role", "viewer")],
            &[("origin", &origin), ("x-csrf-token", &csrf)],
        )
        .await?;
    assert_eq!(taken.status, 200, "{}", taken.body);
    assert!(taken.says(T::OperatorAdded));
    assert_eq!(h.count("operators")?, operators + 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_changes_nothing_even_posting_directly() -> TestResult {
    let h = start(Config::default()).await?;
    let _admin = h.signed_in("admin", "admin").await?;
    let mut viewer = h.signed_in("viewer", "viewer").await?;
    let home = viewer.get("/console/").await?;
    assert!(
        !home.body.contains("/console/operators"),
        "the menu offers no operators page"
    );
    let csrf = home.csrf()?;

    let page = viewer.get("/console/operators").await?;
    assert_eq!(page.status, 403);
    assert!(page.says(T::RoleNotAllowed));
    assert!(page.body.contains("role_not_allowed"));
    let add = viewer
        .post(
            "/console/operators",
            &[("csrf", &csrf), ("name", "몰래"), ("role", "admin")],
        )
        .await?;
    assert_eq!(add.status, 403);
    let disable = viewer
        .post("/console/operators/1/disable", &[("csrf", &csrf)])
        .await?;
    assert_eq!(disable.status, 403);
    assert_eq!(h.count("operators")?, 2);
    assert_eq!(
        h.test_db
            .row("SELECT count(*) FROM operators WHERE disabled_at IS NOT NULL")?[0],
        0
    );
    assert_eq!(h.audit_count("operator_disabled")?, 0);
    // A viewer reads the audit log.
    assert_eq!(viewer.get("/console/audit").await?.status, 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_and_disables_operators_in_the_console() -> TestResult {
    let h = start(Config::default()).await?;
    let mut admin = h.signed_in("admin", "admin").await?;
    let csrf = admin.session_csrf().await?;
    let added = admin
        .post(
            "/console/operators",
            &[("csrf", &csrf), ("name", "-choi"), ("role", "operator")],
        )
        .await?;
    assert_eq!(added.status, 200, "{}", added.body);
    assert!(added.says(T::CodeOnce));
    let start = added.body.find("class=\"code\">").ok_or("no code shown")? + 13;
    let code = added.body[start..start + 19].to_owned();
    assert!(added.body.contains(&format!("{}/console/setup", h.console)));
    // Shown once: the page afterwards has no code.
    assert!(!admin.get("/console/operators").await?.body.contains(&code));
    let taken = admin
        .post(
            "/console/operators",
            &[("csrf", &csrf), ("name", "-choi"), ("role", "viewer")],
        )
        .await?;
    assert_eq!(taken.status, 400);
    assert!(taken.says(T::NameTaken));

    let mut choi = h.browser()?;
    assert_eq!(choi.set_up("-choi", &code, PASSWORD).await?.status, 303);
    assert_eq!(choi.sign_in("-choi", PASSWORD).await?.status, 303);
    assert_eq!(choi.get("/console/").await?.status, 200);

    let id = h
        .test_db
        .row("SELECT id FROM operators WHERE name = '-choi'")?[0];
    let disabled = admin
        .post(
            &format!("/console/operators/{id}/disable"),
            &[("csrf", &csrf)],
        )
        .await?;
    assert_eq!(
        (disabled.status, disabled.location()),
        (303, "/console/operators?m=operator_disabled")
    );
    // Their session ended; they cannot sign in again.
    assert_eq!(choi.get("/console/").await?.status, 303);
    assert_eq!(choi.sign_in("-choi", PASSWORD).await?.status, 401);
    let me = h
        .test_db
        .row("SELECT id FROM operators WHERE name = 'admin'")?[0];
    let myself = admin
        .post(
            &format!("/console/operators/{me}/disable"),
            &[("csrf", &csrf)],
        )
        .await?;
    assert_eq!(myself.status, 400);
    assert!(myself.says(T::NotYourself));

    // The audit log, on the page and as CSV (a cell starting with - defused).
    let log = admin.get("/console/audit?action=operator_disabled").await?;
    assert!(log.body.contains("-choi"));
    // One row under the header: the filter kept the disabling only.
    assert_eq!(log.body.matches("<tr>").count(), 2, "{}", log.body);
    let csv = admin.get("/console/audit.csv").await?;
    assert_eq!(csv.status, 200);
    assert!(csv
        .body
        .starts_with("id,at,operator_id,operator_name,action,target,before,after\r\n"));
    assert!(
        csv.body.contains(",operator_disabled,'-choi,"),
        "{}",
        csv.body
    );
    assert!(!csv.body.contains(",-choi"));
    assert!(csv.body.contains("\"{\"\"disabled\"\":\"\"no\"\"}\""));
    let lines = csv.body.lines().count() as i64;
    assert_eq!(lines, 1 + h.count("audit_log")?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_oversized_and_missing_input_is_refused_and_stores_nothing() -> TestResult {
    let h = start(Config::default()).await?;
    let mut admin = h.signed_in("admin", "admin").await?;
    let csrf = admin.session_csrf().await?;
    let operators = h.count("operators")?;
    let script = "<script>alert(1)</script>";

    let hostile = admin
        .post(
            "/console/operators",
            &[("csrf", &csrf), ("name", script), ("role", "viewer")],
        )
        .await?;
    assert_eq!(hostile.status, 400);
    assert!(hostile.says(T::NameBadCharacter));
    assert!(!hostile.body.contains(script));
    assert!(hostile.body.contains("&lt;script&gt;"));
    let long = "가".repeat(65);
    let oversized = admin
        .post(
            "/console/operators",
            &[("csrf", &csrf), ("name", &long), ("role", "viewer")],
        )
        .await?;
    assert_eq!(oversized.status, 400);
    assert!(oversized.says(T::FieldTooLong));
    let missing = admin
        .post("/console/operators", &[("csrf", &csrf), ("role", "viewer")])
        .await?;
    assert!(missing.says(T::FieldMissing));
    let bad_role = admin
        .post(
            "/console/operators",
            &[("csrf", &csrf), ("name", "kang"), ("role", "root")],
        )
        .await?;
    assert_eq!(bad_role.status, 400);
    assert!(bad_role.body.contains("invalid_form"));
    let huge = "x".repeat(20 * 1024);
    let too_large = admin
        .post(
            "/console/operators",
            &[("csrf", &csrf), ("name", &huge), ("role", "viewer")],
        )
        .await?;
    assert_eq!(too_large.status, 413);
    assert_eq!(h.count("operators")?, operators);

    // Setup: a short password, two that differ, a code that is no code, a hostile name.
    let code = h.add_operator("jung", "viewer")?;
    let mut jung = h.browser()?;
    let cases = [
        ("jung", code.as_str(), "short", "short", T::PasswordTooShort),
        (
            "jung",
            code.as_str(),
            "long enough password",
            "long enough passw0rd",
            T::PasswordMismatch,
        ),
        ("jung", "ZZZZ-ZZZZ", PASSWORD, PASSWORD, T::BadSetup),
        (
            "<b>jung</b>",
            code.as_str(),
            PASSWORD,
            PASSWORD,
            T::NameBadCharacter,
        ),
    ];
    for (name, code, password, again, expect) in cases {
        let token = jung.get("/console/setup").await?.csrf()?;
        let page = jung
            .post(
                "/console/setup",
                &[
                    ("csrf", &token),
                    ("name", name),
                    ("code", code),
                    ("password", password),
                    ("password_again", again),
                ],
            )
            .await?;
        assert_eq!(page.status, 400, "{}", page.body);
        assert!(page.says(expect), "{expect:?}: {}", page.body);
    }
    let long_password = "p".repeat(257);
    let token = jung.get("/console/setup").await?.csrf()?;
    let too_long = jung
        .post(
            "/console/setup",
            &[
                ("csrf", &token),
                ("name", "jung"),
                ("code", &code),
                ("password", &long_password),
                ("password_again", &long_password),
            ],
        )
        .await?;
    assert!(too_long.says(T::FieldTooLong));
    assert_eq!(
        h.test_db
            .row("SELECT count(*) FROM operators WHERE password_hash IS NOT NULL")?[0],
        1
    );
    // The code still works after all that.
    assert_eq!(jung.set_up("jung", &code, PASSWORD).await?.status, 303);

    // A hostile name at sign-in: the same message, shown as text, and not recorded.
    let refused = jung.sign_in(script, PASSWORD).await?;
    assert_eq!(refused.status, 401);
    assert!(refused.says(T::WrongLogin));
    assert!(!refused.body.contains(script));
    let log = admin.get("/console/audit").await?;
    assert!(!log.body.contains("<script>"));
    assert_eq!(
        h.test_db
            .row("SELECT count(*) FROM audit_log WHERE target LIKE '%script%'")?[0],
        0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_the_terminals_api_share_no_route_and_no_credential() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let mut admin = h.signed_in("admin", "admin").await?;

    // A terminal's signed request sent to the console's listener: no such route there.
    let body = serde_json::to_vec(&json!({ "operations": [enrollment("op-1", "정다은")] }))?;
    let headers = signing::sign(
        &kiosk.key,
        "POST",
        "/v1/sync",
        &kiosk.id,
        h.clock.now().timestamp(),
        &h.nonce(),
        &body,
    );
    let mut request = h.client.post(format!("{}/v1/sync", h.console)).body(body);
    for (name, value) in headers.pairs() {
        request = request.header(name, value);
    }
    let answer = request.send().await?;
    assert_eq!(answer.status().as_u16(), 404);
    for path in ["/v1/health", "/v1/pull", "/metrics"] {
        assert_eq!(
            h.client
                .get(format!("{}{path}", h.console))
                .send()
                .await?
                .status()
                .as_u16(),
            404,
            "{path}"
        );
    }
    assert_eq!(h.count("members")?, 0);

    // The console's cookie on the terminals' listener: no console there, no sync either.
    let cookie = admin.cookie_header();
    let page = h
        .client
        .get(format!("{}/console/", h.base))
        .header("cookie", &cookie)
        .send()
        .await?;
    assert_eq!(page.status().as_u16(), 404);
    let sync = answer_of(
        h.client
            .post(format!("{}/v1/sync", h.base))
            .header("cookie", &cookie)
            .body(r#"{"operations":[]}"#)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(
        (sync.status, sync.body["code"].clone()),
        (401, json!("unauthenticated"))
    );
    // The console still knows its own session.
    assert_eq!(admin.get("/console/").await?.status, 200);
    Ok(())
}

async fn answer_of(response: reqwest::Response) -> Result<Answer, Box<dyn std::error::Error>> {
    answer(response).await
}

/// Without TLS, `serve` opens the console on a loopback address only.
#[test]
fn the_binary_serves_the_console_without_tls_on_loopback_only() -> TestResult {
    let dir = tempfile::tempdir()?;
    serve_refuses(
        &dir.path().join("central.db"),
        &["--listen", "127.0.0.1:0", "--console-listen", "0.0.0.0:0"],
        &["--console-listen 127.0.0.1:PORT"],
    )?;
    Ok(())
}

/// The Today page adds up what the server counted, minute by minute: sign-ups, step reports
/// and the points they credited, 429s; each site's places; terminals heard. Its live part is
/// also answered alone, for the page's script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_today_page_shows_what_the_server_counted() -> TestResult {
    let h = start(Config {
        sightings_every: std::time::Duration::from_millis(20),
        ..Config::default()
    })
    .await?;
    let day = points_core::kst_day(h.clock.now()).to_string();
    cli(&[
        "quota",
        "set",
        "--db",
        h.db(),
        "--day",
        &day,
        "--site",
        "성북구 보건소",
        "--places",
        "40",
    ])?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let counter = h.terminal("counter", 2).await?;
    let signed_up = h
        .sync(
            &kiosk,
            json!([enrollment("t-1", "김영희"), enrollment("t-2", "이철수")]),
        )
        .await?;
    assert_eq!(signed_up.status, 200, "{}", signed_up.body);
    let pulled = h.pull(&counter, json!({})).await?;
    assert_eq!(pulled.status, 200, "{}", pulled.body);
    let mut admin = h.signed_in("오늘보기", "viewer").await?;

    // Each process writes down its counts every few moments: wait for them.
    let mut page = admin.get("/console/").await?;
    for _ in 0..250 {
        if page.body.contains("<strong>2</strong>오늘 가입") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        page = admin.get("/console/").await?;
    }
    assert_eq!(page.status, 200);
    assert!(page.says(T::SignUpsToday), "{}", page.body);
    assert!(
        page.body.contains("<strong>2</strong>오늘 가입"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("분당 가입: 합계 2, 최대 2"),
        "{}",
        page.body
    );
    // The site's places: 40, 2 taken by the two sign-ups.
    assert!(
        page.body
            .contains("<th scope=\"row\">성북구 보건소</th><td>40</td><td>2</td><td>38</td>"),
        "{}",
        page.body
    );
    // Both terminals were heard just now.
    assert!(
        page.body.contains("<strong>2</strong>최근 5분 안에 연결"),
        "{}",
        page.body
    );
    assert!(page.body.contains("src=\"/console/today.js\""));

    let live = admin.get("/console/?part=live").await?;
    assert_eq!(live.status, 200);
    assert!(live.body.contains("<strong>2</strong>오늘 가입"));
    assert!(
        !live.body.contains("<html"),
        "only the live part: {}",
        live.body
    );
    let script = admin.get("/console/today.js").await?;
    assert_eq!(script.status, 200);
    assert!(script.body.contains("/console/?part=live"));

    // Without a session neither the page nor its live part is shown.
    let mut stranger = h.browser()?;
    let refused = stranger.get("/console/?part=live").await?;
    assert!(!refused.body.contains("오늘 가입"), "{}", refused.body);
    Ok(())
}

/// The Reconciliation page: a day's redemptions by terminal with site and day totals, the
/// overspent member's holds, both as CSV; a day that does not read is refused with a message
/// and today is shown instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciliation_page_totals_a_days_redemptions_and_overspends() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.add_terminal_at("성북구 보건소", "kiosk", 1).await?;
    let a = h.add_terminal_at("온누리약국", "counter", 2).await?;
    let b = h.add_terminal_at("행복편의점", "counter", 3).await?;
    let issuer = h.issuer()?;
    let tok = |nonce| token(&issuer, 1, nonce);
    h.sync(&kiosk, json!([enrollment("e-1", "김영희")])).await?;
    h.sync(&a, json!([step_report("s-1", "PP-00000001", 10_000)]))
        .await?;
    h.sync(
        &a,
        json!([hold_op("h-a1", "PP-00000001", 80, &tok(1), &a.id)]),
    )
    .await?;
    let refused = h
        .sync(
            &b,
            json!([
                hold_op("h-b1", "PP-00000001", 50, &tok(2), &b.id),
                hold_op("h-b2", "PP-00000001", 10, &tok(1), &b.id),
            ]),
        )
        .await?;
    assert_eq!(
        statuses(&refused),
        vec![
            pair("rejected", "insufficient_points"),
            pair("rejected", "token_reused")
        ]
    );
    let mut viewer = h.signed_in("정산담당", "viewer").await?;

    let page = viewer.get("/console/reconciliation?day=2025-12-03").await?;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.says(T::HoldsByTerminal));
    // Counter A: one posted hold of 80; counter B: one refused for the balance (50), one for
    // a token used again (10).
    assert!(
        page.body.contains(&format!(
            "<td>온누리약국</td><th scope=\"row\">{}</th><td>1</td><td>80</td><td>0</td><td>0</td><td>0</td><td>0</td><td>0</td><td>0</td>",
            a.id
        )),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!(
            "<td>행복편의점</td><th scope=\"row\">{}</th><td>0</td><td>0</td><td>0</td><td>0</td><td>1</td><td>50</td><td>1</td><td>10</td>",
            b.id
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains("<th scope=\"row\">하루 합계</th><td>1</td><td>80</td><td>0</td><td>0</td><td>1</td><td>50</td><td>1</td><td>10</td>"), "{}", page.body);
    // The overspent member's every hold of the day.
    assert!(page.says(T::OverspendHeading));
    assert_eq!(
        page.body
            .matches("<th scope=\"row\">PP-00000001</th>")
            .count(),
        3
    );

    let totals = viewer
        .get("/console/reconciliation.csv?day=2025-12-03")
        .await?;
    assert_eq!(totals.status, 200);
    assert!(
        totals.body.contains(&format!(
            "2025-12-03,온누리약국,{},1,80,0,0,0,0,0,0\r\n",
            a.id
        )),
        "{}",
        totals.body
    );
    let overspend = viewer.get("/console/overspend.csv?day=2025-12-03").await?;
    assert_eq!(overspend.status, 200);
    assert_eq!(overspend.body.lines().count(), 4, "{}", overspend.body);
    assert!(
        overspend.body.contains(",insufficient,50,20"),
        "{}",
        overspend.body
    );

    let quiet = viewer.get("/console/reconciliation?day=2025-12-02").await?;
    assert!(quiet.says(T::NoHoldsThatDay) && quiet.says(T::NoOverspend));
    for bad in [
        "2025-13-01",
        "yesterday",
        "2025-12-03%3Cscript%3E",
        "9999999999999",
    ] {
        let refused = viewer
            .get(&format!("/console/reconciliation?day={bad}"))
            .await?;
        assert_eq!(refused.status, 400, "{bad}");
        assert!(refused.says(T::BadDay), "{bad}");
        assert!(!refused.body.contains("<script>"));
        let csv = viewer
            .get(&format!("/console/reconciliation.csv?day={bad}"))
            .await?;
        assert_eq!(csv.status, 400, "{bad}");
    }
    // Not signed in: nothing of it.
    let mut stranger = h.browser()?;
    let refused = stranger
        .get("/console/reconciliation.csv?day=2025-12-03")
        .await?;
    assert!(!refused.body.contains("온누리약국"));
    Ok(())
}

/// The Policies page.
#[path = "console/policies.rs"]
mod policies;

/// The Sign-up schedule and quotas page.
#[path = "console/schedule.rs"]
mod schedule;
