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

impl Page {
    /// The enrollment code shown once on the terminals page.
    fn enrollment_code(&self) -> Result<String, Box<dyn std::error::Error>> {
        let start = self
            .body
            .find("<p class=\"code\">")
            .ok_or_else(|| format!("no code shown in {}", self.body))?
            + "<p class=\"code\">".len();
        let end = self.body[start..].find('<').ok_or("unterminated code")?;
        Ok(self.body[start..start + end].to_owned())
    }

    /// The text of the table row whose header cell is `label`, tags removed.
    fn row_of(&self, label: &str) -> String {
        let Some(at) = self.body.find(&format!("<th scope=\"row\">{label}</th>")) else {
            return String::new();
        };
        let start = self.body[..at].rfind("<tr").unwrap_or(at);
        let end = self.body[at..]
            .find("</tr>")
            .map_or(self.body.len(), |e| at + e);
        let mut text = String::new();
        let mut in_tag = false;
        for c in self.body[start..end].chars() {
            match c {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    text.push(' ');
                }
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// An audit entry as stored: target, before, after (empty when none).
type AuditRow = (String, String, String);

impl Harness {
    /// The audit entries of `action` as (target, before, after), oldest first.
    fn audit_entries(&self, action: &str) -> Result<Vec<AuditRow>, Box<dyn std::error::Error>> {
        let sql = format!(
            "SELECT target, COALESCE(before, ''), COALESCE(after, '') FROM audit_log
             WHERE action = '{action}' ORDER BY id"
        );
        Ok(match &self.test_db {
            TestDb::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path)?;
                let mut stmt = conn.prepare(&sql)?;
                let rows = stmt
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                rows
            }
            TestDb::Postgres(_) | TestDb::PostgresAt(_) => blocking(|| {
                Ok::<_, postgres::Error>(
                    pg_client(&self.test_db.arg())?
                        .query(&sql, &[])?
                        .iter()
                        .map(|row| (row.get(0), row.get(1), row.get(2)))
                        .collect(),
                )
            })?,
        })
    }

    /// Waits until the terminals page's row of `label` says `text` (each server process
    /// writes what it heard on its own time).
    async fn terminal_row_saying(
        &self,
        browser: &mut Browser,
        label: &str,
        text: &str,
    ) -> Result<String, Box<dyn std::error::Error>> {
        let mut row = String::new();
        for _ in 0..250 {
            row = browser.get("/console/terminals").await?.row_of(label);
            if row.contains(text) {
                return Ok(row);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Err(format!("{label}'s row never said {text:?}: {row}").into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_provisions_a_terminal_that_enrolls_once_then_revokes_it() -> TestResult {
    let h = start(Config {
        sightings_every: std::time::Duration::from_millis(20),
        ..Config::default()
    })
    .await?;
    let mut operator = h.signed_in("lee", "operator").await?;
    let empty = operator.get("/console/terminals").await?;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(empty.says(T::NoTerminals) && empty.says(T::ProvisionHeading));
    let csrf = empty.csrf()?;

    let made = operator
        .post(
            "/console/terminals",
            &[
                ("csrf", &csrf),
                ("site", " 성북구 보건소 (1층) "),
                ("role", "kiosk"),
            ],
        )
        .await?;
    assert_eq!(made.status, 200, "{}", made.body);
    assert!(made.says(T::TerminalProvisioned) && made.says(T::EnrollCodeOnce));
    let code = made.enrollment_code()?;
    assert!(palpal_central::code::normalise(&code).is_some(), "{code}");
    assert!(
        made.body.contains("<svg") && made.body.contains(&h.base),
        "{}",
        made.body
    );
    assert!(!made.body.contains("<?xml"));
    // Never stored in clear: only its hash, and the audit entry does not name it.
    let provisioned = h.audit_entries("terminal_provisioned")?;
    assert_eq!(
        provisioned,
        vec![(
            "T-000001".to_owned(),
            String::new(),
            r#"{"role":"kiosk","site":"성북구 보건소 (1층)","state":"waiting"}"#.to_owned()
        )]
    );
    let stored = h.test_db.row(
        "SELECT count(*) FROM terminals WHERE code_hash IS NOT NULL AND site = '성북구 보건소 (1층)'",
    )?;
    assert_eq!(stored[0], 1);
    let cli_list = cli(&["terminal", "list", "--db", h.db()])?;
    assert!(!cli_list.contains(&code), "{cli_list}");
    // The page shows it once: a reload has no code.
    let again = operator.get("/console/terminals").await?;
    assert!(!again.body.contains(&code) && !again.says(T::EnrollCodeOnce));
    assert!(again
        .row_of("T-000001")
        .contains(T::StateWaiting.get(Lang::Ko)));

    // The code enrolls the terminal once.
    let kiosk = h.enroll(&code, 1).await?;
    assert_eq!(kiosk.id, "T-000001");
    assert!(h.enroll(&code, 2).await.is_err());

    // Its pulls tell how it is doing; the table shows it, flagging what needs a look.
    let report = json!({
        "app_version": "0.4.0", "waiting": 7, "oldest_waiting_s": 3_700, "clock_offset_s": 75
    });
    let pulled = h.pull(&kiosk, json!({ "report": report })).await?;
    assert_eq!(pulled.status, 200, "{}", pulled.body);
    let row = h
        .terminal_row_saying(&mut operator, "T-000001", "0.4.0")
        .await?;
    for text in [
        "성북구 보건소 (1층)",
        T::RoleKiosk.get(Lang::Ko),
        T::StateEnrolled.get(Lang::Ko),
        "2025-12-03 10:00:00",
        " 7 ",
        "1시간 1분",
        "+75초",
        T::FlagClock.get(Lang::Ko),
        T::FlagBacklog.get(Lang::Ko),
    ] {
        assert!(row.contains(text), "{text:?} not in {row}");
    }
    assert!(!row.contains(T::FlagSilent.get(Lang::Ko)), "{row}");
    // Silent for longer than the threshold (by the server's clock): flagged, and found by
    // the filter (the session kept alive meanwhile).
    h.later(20);
    let still = operator.get("/console/terminals").await?;
    assert!(!still
        .row_of("T-000001")
        .contains(T::FlagSilent.get(Lang::Ko)));
    h.later(11);
    let silent = operator.get("/console/terminals?silent=1").await?;
    assert!(silent
        .row_of("T-000001")
        .contains(T::FlagSilent.get(Lang::Ko)));
    let english = operator.get("/console/terminals?lang=en").await?;
    assert!(
        english.row_of("T-000001").contains("Silent"),
        "{}",
        english.body
    );
    operator.get("/console/terminals?lang=ko").await?;
    let revoked_only = operator.get("/console/terminals?state=revoked").await?;
    assert!(revoked_only.says(T::NoTerminals));

    // Revoking asks first, then locks it out; the sync API refuses its next request.
    let confirm = operator.get("/console/terminals/T-000001/revoke").await?;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.says(T::ConfirmRevokeTerminal) && confirm.body.contains("성북구 보건소"));
    assert_eq!(h.count("audit_log WHERE action = 'terminal_revoked'")?, 0);
    let csrf = confirm.csrf()?;
    let revoked = operator
        .post("/console/terminals/T-000001/revoke", &[("csrf", &csrf)])
        .await?;
    assert_eq!(
        (revoked.status, revoked.location()),
        (303, "/console/terminals?m=terminal_revoked")
    );
    assert!(operator
        .get(revoked.location())
        .await?
        .says(T::TerminalRevoked));
    assert_eq!(
        h.audit_entries("terminal_revoked")?,
        vec![(
            "T-000001".to_owned(),
            r#"{"role":"kiosk","site":"성북구 보건소 (1층)","state":"enrolled"}"#.to_owned(),
            r#"{"state":"revoked"}"#.to_owned()
        )]
    );
    let refused = h.pull(&kiosk, json!({})).await?;
    assert_eq!(
        (refused.status, refused.body["code"].clone()),
        (403, json!("revoked_terminal"))
    );
    // Again: nothing more happens; an unknown or malformed terminal is a clear 404.
    let twice = operator
        .post("/console/terminals/T-000001/revoke", &[("csrf", &csrf)])
        .await?;
    assert_eq!(
        twice.location(),
        "/console/terminals?m=terminal_already_revoked"
    );
    assert_eq!(h.audit_entries("terminal_revoked")?.len(), 1);
    for path in [
        "/console/terminals/T-000099/revoke",
        "/console/terminals/%3Cscript%3E/revoke",
    ] {
        let unknown = operator.post(path, &[("csrf", &csrf)]).await?;
        assert_eq!(unknown.status, 404, "{path}");
        assert!(unknown.says(T::NoSuchTerminal), "{}", unknown.body);
        assert_eq!(operator.get(path).await?.status, 404, "{path}");
    }
    assert_eq!(h.audit_entries("terminal_revoked")?.len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_changes_refuse_viewers_forgeries_and_bad_input() -> TestResult {
    let h = start(Config::default()).await?;
    // A hostile site name made on the command line is shown as text.
    cli(&[
        "terminal",
        "add",
        "--db",
        h.db(),
        "--site",
        "<script>alert(1)</script>",
        "--role",
        "counter",
    ])?;
    let mut viewer = h.signed_in("viewer", "viewer").await?;
    let page = viewer.get("/console/terminals").await?;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.says(T::ReadOnly) && !page.says(T::ProvisionHeading));
    assert!(!page.body.contains("/revoke"));
    let csrf = page.csrf()?;
    let add = viewer
        .post(
            "/console/terminals",
            &[("csrf", &csrf), ("site", "몰래"), ("role", "kiosk")],
        )
        .await?;
    assert_eq!(add.status, 403);
    assert!(add.says(T::RoleNotAllowed));
    let revoke = viewer
        .post("/console/terminals/T-000001/revoke", &[("csrf", &csrf)])
        .await?;
    assert_eq!(revoke.status, 403);
    assert_eq!(
        viewer
            .get("/console/terminals/T-000001/revoke")
            .await?
            .status,
        403
    );

    let mut operator = h.signed_in("lee", "operator").await?;
    let csrf = operator.get("/console/terminals").await?.csrf()?;
    // No token, a wrong token, another site's page.
    let forged = operator
        .post("/console/terminals", &[("site", "몰래"), ("role", "kiosk")])
        .await?;
    assert_eq!(forged.status, 403);
    assert!(forged.body.contains("bad_csrf"));
    let wrong = operator
        .post(
            "/console/terminals/T-000001/revoke",
            &[("csrf", "not-the-token")],
        )
        .await?;
    assert_eq!(wrong.status, 403);
    let foreign = operator
        .post_with(
            "/console/terminals",
            &[("csrf", &csrf), ("site", "몰래"), ("role", "kiosk")],
            &[("origin", "https://evil.example")],
        )
        .await?;
    assert_eq!(foreign.status, 403);
    assert!(foreign.body.contains("foreign_origin"));

    let long = "가".repeat(65);
    let cases: [(&[(&str, &str)], T); 6] = [
        (
            &[("site", "<script>alert(1)</script>"), ("role", "kiosk")],
            T::SiteBadCharacter,
        ),
        (&[("site", "   "), ("role", "kiosk")], T::SiteEmpty),
        (&[("role", "kiosk")], T::FieldMissing),
        (&[("site", &long), ("role", "kiosk")], T::FieldTooLong),
        (
            &[("site", "종로 약국"), ("role", "admin")],
            T::BadTerminalRole,
        ),
        (&[("site", "종로 약국")], T::BadTerminalRole),
    ];
    for (fields, text) in cases {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let refused = operator.post("/console/terminals", &all).await?;
        assert_eq!(refused.status, 400, "{fields:?}");
        assert!(refused.says(text), "{fields:?}: {}", refused.body);
        assert!(!refused.body.contains("<script>alert"));
    }
    assert_eq!(h.count("terminals")?, 1);
    // Only the one the command line made.
    assert_eq!(h.audit_entries("terminal_provisioned")?.len(), 1);
    assert_eq!(h.audit_entries("terminal_revoked")?.len(), 0);
    assert_eq!(
        h.test_db
            .row("SELECT count(*) FROM terminals WHERE revoked_at IS NOT NULL")?[0],
        0
    );
    Ok(())
}

/// A member signed up at a kiosk with a signed card and a paired watch: the kiosk and a
/// counter.
async fn member_with_card_and_watch(
    h: &Harness,
) -> Result<(Term, Term), Box<dyn std::error::Error>> {
    let kiosk = h.add_terminal_at("성북구 보건소", "kiosk", 1).await?;
    let counter = h.add_terminal_at("종로 약국", "counter", 2).await?;
    let signup = h
        .sync(
            &kiosk,
            json!([
                {
                    "op_id": "e-1",
                    "kind": "enrollment",
                    "payload": { "name": "김영수", "birth_date": "1950-04-01", "phone": "010-2468-1357" },
                },
                pairing_by_enrollment("w-1", "PW-0001", "e-1"),
            ]),
        )
        .await?;
    assert_eq!(signup.status, 200, "{}", signup.body);
    let card = h
        .post_json(
            &kiosk,
            "/v1/cards",
            card_ask("PP-00000001", "802417", [3; 8]),
        )
        .await?;
    assert_eq!(card.status, 200, "{}", card.body);
    Ok((kiosk, counter))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_a_member_masked_revokes_a_card_and_unpairs_a_watch() -> TestResult {
    let h = start(Config {
        card_key: Some(card_key()),
        ..Config::default()
    })
    .await?;
    let (kiosk, counter) = member_with_card_and_watch(&h).await?;
    let mut operator = h.signed_in("lee", "operator").await?;

    let empty = operator.get("/console/members").await?;
    assert_eq!(empty.status, 200);
    assert!(empty.says(T::MembersIntro) && !empty.says(T::MaskedName));
    let found = operator.get("/console/members?number=pp-00000001").await?;
    assert_eq!(found.status, 200, "{}", found.body);
    for text in [
        "김*수",
        "010-****-1357",
        "성북구 보건소",
        "2025-12-03 10:00:00",
        "0 점",
        "PW-0001",
        T::WatchPaired.get(Lang::Ko),
        T::RevokeCardButton.get(Lang::Ko),
        T::UnpairButton.get(Lang::Ko),
    ] {
        assert!(found.body.contains(text), "{text:?} not in {}", found.body);
    }
    // Personal data stays masked.
    for clear in ["김영수", "2468", "1950-04-01"] {
        assert!(!found.body.contains(clear), "{clear} shown");
    }
    assert!(
        found.row_of("1").contains(T::Active.get(Lang::Ko)),
        "{}",
        found.body
    );

    // Bad numbers: a clear message, nothing shown.
    for (number, status, text) in [
        ("PP-12", 400, T::BadMemberNumber),
        ("<script>alert(1)</script>", 400, T::BadMemberNumber),
        ("PP-00000099", 404, T::NoSuchMember),
    ] {
        let path = format!(
            "/console/members?number={}",
            form_urlencoded::byte_serialize(number.as_bytes()).collect::<String>()
        );
        let refused = operator.get(&path).await?;
        assert_eq!(refused.status, status, "{number}");
        assert!(refused.says(text), "{number}: {}", refused.body);
        assert!(!refused.body.contains("<script>alert") && !refused.says(T::MaskedName));
    }

    // The card: asked first, then revoked; counters learn it at their next pull.
    let before = h.pull(&counter, json!({})).await?;
    let confirm = operator
        .get("/console/members/PP-00000001/cards/1/revoke")
        .await?;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.says(T::ConfirmRevokeCard) && confirm.body.contains("김*수"));
    let csrf = confirm.csrf()?;
    let revoked = operator
        .post(
            "/console/members/PP-00000001/cards/1/revoke",
            &[("csrf", &csrf)],
        )
        .await?;
    assert_eq!(
        (revoked.status, revoked.location()),
        (303, "/console/members?number=PP-00000001&m=card_revoked")
    );
    let shown = operator.get(revoked.location()).await?;
    assert!(shown.says(T::CardRevoked));
    assert!(shown
        .row_of("1")
        .contains(T::CardRevokedState.get(Lang::Ko)));
    assert_eq!(
        h.audit_entries("card_revoked")?,
        vec![(
            "PP-00000001 card 1".to_owned(),
            r#"{"state":"active"}"#.to_owned(),
            r#"{"state":"revoked"}"#.to_owned()
        )]
    );
    let pulled = h
        .pull(&counter, json!({ "cursor": before.body["cursor"] }))
        .await?;
    assert_eq!(
        pulled.body["cards"],
        json!([{ "member_number": "PP-00000001", "serial": 1, "revoked": true }]),
        "{}",
        pulled.body
    );
    let twice = operator
        .post(
            "/console/members/PP-00000001/cards/1/revoke",
            &[("csrf", &csrf)],
        )
        .await?;
    assert_eq!(
        twice.location(),
        "/console/members?number=PP-00000001&m=card_already_revoked"
    );
    for path in [
        "/console/members/PP-00000001/cards/2/revoke",
        "/console/members/PP-00000001/cards/0/revoke",
        "/console/members/PP-00000001/cards/abc/revoke",
    ] {
        let unknown = operator.post(path, &[("csrf", &csrf)]).await?;
        assert_eq!(unknown.status, 404, "{path}");
        assert!(unknown.says(T::NoSuchCard), "{path}: {}", unknown.body);
    }
    let bad_number = operator
        .post("/console/members/PP-1/cards/1/revoke", &[("csrf", &csrf)])
        .await?;
    assert_eq!(bad_number.status, 400);
    assert!(bad_number.says(T::BadMemberNumber));
    assert_eq!(h.audit_entries("card_revoked")?.len(), 1);
    assert_eq!(h.count("revoked_cards")?, 1);

    // The lost watch: unpaired; the next pull tells terminals the pairing ended.
    let before = h.pull(&kiosk, json!({})).await?;
    let confirm = operator
        .get("/console/members/PP-00000001/watches/PW-0001/unpair")
        .await?;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.says(T::ConfirmUnpair) && confirm.body.contains("PW-0001"));
    let unpaired = operator
        .post(
            "/console/members/PP-00000001/watches/PW-0001/unpair",
            &[("csrf", &csrf)],
        )
        .await?;
    assert_eq!(
        (unpaired.status, unpaired.location()),
        (303, "/console/members?number=PP-00000001&m=watch_unpaired")
    );
    assert!(operator
        .get(unpaired.location())
        .await?
        .row_of("PW-0001")
        .contains(T::WatchEnded.get(Lang::Ko)));
    assert_eq!(pairings(&h)?, vec![("PW-0001".to_owned(), 1, true)]);
    let pulled = h
        .pull(&kiosk, json!({ "cursor": before.body["cursor"] }))
        .await?;
    assert_eq!(
        pulled.body["watch_pairings"],
        json!([{ "serial": "PW-0001", "member_number": "PP-00000001", "ended": true }]),
        "{}",
        pulled.body
    );
    let entries = h.audit_entries("watch_unpaired")?;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "PP-00000001 watch PW-0001");
    assert!(
        entries[0].1.contains(r#""state":"paired""#),
        "{}",
        entries[0].1
    );
    assert_eq!(entries[0].2, r#"{"state":"ended"}"#);
    let again = operator
        .post(
            "/console/members/PP-00000001/watches/PW-0001/unpair",
            &[("csrf", &csrf)],
        )
        .await?;
    assert_eq!(again.status, 404);
    assert!(again.says(T::NoSuchPairing));
    assert_eq!(h.audit_entries("watch_unpaired")?.len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_changes_refuse_viewers_and_forgeries() -> TestResult {
    let h = start(Config {
        card_key: Some(card_key()),
        ..Config::default()
    })
    .await?;
    member_with_card_and_watch(&h).await?;
    let mut viewer = h.signed_in("viewer", "viewer").await?;
    let page = viewer.get("/console/members?number=PP-00000001").await?;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("김*수") && page.says(T::ReadOnly));
    assert!(!page.body.contains("/revoke") && !page.body.contains("/unpair"));
    let csrf = page.csrf()?;
    for path in [
        "/console/members/PP-00000001/cards/1/revoke",
        "/console/members/PP-00000001/watches/PW-0001/unpair",
    ] {
        let refused = viewer.post(path, &[("csrf", &csrf)]).await?;
        assert_eq!(refused.status, 403, "{path}");
        assert!(refused.says(T::RoleNotAllowed));
        assert_eq!(viewer.get(path).await?.status, 403, "{path}");
    }
    let mut operator = h.signed_in("lee", "operator").await?;
    operator.get("/console/members").await?;
    for path in [
        "/console/members/PP-00000001/cards/1/revoke",
        "/console/members/PP-00000001/watches/PW-0001/unpair",
    ] {
        let forged = operator.post(path, &[]).await?;
        assert_eq!(forged.status, 403, "{path}");
        assert!(forged.body.contains("bad_csrf"));
        let wrong = operator.post(path, &[("csrf", "not-the-token")]).await?;
        assert_eq!(wrong.status, 403, "{path}");
    }
    // Hostile numbers and serials in the path: a clear message, shown as text.
    let csrf = operator.get("/console/members").await?.csrf()?;
    for (path, status, text) in [
        (
            "/console/members/PP-00000001/watches/%3Cscript%3Ealert(1)%3C%2Fscript%3E/unpair",
            404,
            T::NoSuchPairing,
        ),
        (
            "/console/members/%3Cscript%3E/watches/PW-0001/unpair",
            400,
            T::BadMemberNumber,
        ),
        (
            "/console/members/PP-00000001/cards/%3Cscript%3E/revoke",
            404,
            T::NoSuchCard,
        ),
        (
            "/console/members/PP-00000001/cards/70000/revoke",
            404,
            T::NoSuchCard,
        ),
    ] {
        for page in [
            operator.get(path).await?,
            operator.post(path, &[("csrf", &csrf)]).await?,
        ] {
            assert_eq!(page.status, status, "{path}");
            assert!(page.says(text), "{path}: {}", page.body);
            assert!(!page.body.contains("<script>alert"), "{path}");
        }
    }
    assert_eq!(h.count("revoked_cards")?, 0);
    assert_eq!(pairings(&h)?, vec![("PW-0001".to_owned(), 1, false)]);
    assert_eq!(h.audit_entries("card_revoked")?.len(), 0);
    assert_eq!(h.audit_entries("watch_unpaired")?.len(), 0);
    Ok(())
}

/// A card request for card `serial` of `member` with `pin`.
fn card_ask_for(member: &str, serial: u16, pin: &str, salt: [u8; 8]) -> Value {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let member_no: redemption_token::MemberNo =
        member.parse().unwrap_or(redemption_token::MemberNo(0));
    let cost = redemption_token::MIN_ISSUE_PIN_COST;
    let check = redemption_token::card_pin_check(pin, cost, salt, member_no, serial)
        .map(|c| hex(&c.tag))
        .unwrap_or_default();
    json!({ "member_number": member, "serial": serial, "pin_cost": cost,
            "salt": hex(&salt), "pin_tag": check })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_card_is_replaced_and_any_kiosk_gets_the_next_number_signed() -> TestResult {
    let h = start(Config {
        card_key: Some(card_key()),
        ..Config::default()
    })
    .await?;
    let (kiosk, counter) = member_with_card_and_watch(&h).await?;
    let elsewhere = h.add_terminal_at("강북구 복지관", "kiosk", 3).await?;
    // Before a replacement, no kiosk gets card 2.
    let early = h
        .post_json(
            &kiosk,
            "/v1/cards",
            card_ask_for("PP-00000001", 2, "802417", [4; 8]),
        )
        .await?;
    assert_eq!(
        (early.status, early.body["code"].clone()),
        (403, json!("card_not_allowed"))
    );
    // What a kiosk's lookup says of the member: their number, and no replacement yet; of a
    // stranger, nothing.
    let member = json!({ "name": "김영수", "birth_date": "1950-04-01", "phone": "010-2468-1357" });
    let stranger =
        json!({ "name": "김영수", "birth_date": "1950-04-02", "phone": "010-2468-1357" });
    let lookup =
        |who: &serde_json::Value| h.post_json(&elsewhere, "/v1/members/lookup", who.clone());
    let found = lookup(&member).await?;
    assert_eq!(
        (found.status, found.body.clone()),
        (200, json!({ "member_number": "PP-00000001" }))
    );
    let none = lookup(&stranger).await?;
    assert_eq!(none.body, json!({ "member_number": null }));

    let mut operator = h.signed_in("lee", "operator").await?;
    let page = operator.get("/console/members?number=PP-00000001").await?;
    assert!(page.says(T::ReplaceCardButton) && !page.says(T::ReplacementPending));
    let confirm = operator
        .get("/console/members/PP-00000001/cards/1/replace")
        .await?;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.says(T::ConfirmReplaceCard));
    let csrf = confirm.csrf()?;
    let before = h.pull(&counter, json!({})).await?;
    let replaced = operator
        .post(
            "/console/members/PP-00000001/cards/1/replace",
            &[("csrf", &csrf)],
        )
        .await?;
    assert_eq!(
        (replaced.status, replaced.location()),
        (303, "/console/members?number=PP-00000001&m=card_replaced")
    );
    let shown = operator.get(replaced.location()).await?;
    assert!(shown.says(T::CardReplaced));
    assert!(
        shown.body.contains(&format!(
            "{}: </strong>2",
            T::ReplacementPending.get(Lang::Ko)
        )),
        "{}",
        shown.body
    );
    assert!(shown
        .row_of("1")
        .contains(T::CardRevokedState.get(Lang::Ko)));
    assert_eq!(
        h.audit_entries("card_replaced")?,
        vec![(
            "PP-00000001 card 1".to_owned(),
            r#"{"state":"active"}"#.to_owned(),
            r#"{"replacement":"2","state":"revoked"}"#.to_owned()
        )]
    );
    // The old card is revoked (counters pull it), in the same change.
    let pulled = h
        .pull(&counter, json!({ "cursor": before.body["cursor"] }))
        .await?;
    assert_eq!(
        pulled.body["cards"],
        json!([{ "member_number": "PP-00000001", "serial": 1, "revoked": true }]),
        "{}",
        pulled.body
    );

    // Any kiosk's lookup now tells the number allowed (a counter may not ask).
    let found = lookup(&member).await?;
    assert_eq!(
        found.body,
        json!({ "member_number": "PP-00000001", "card_serial_allowed": 2 })
    );
    let none = lookup(&stranger).await?;
    assert_eq!(none.body, json!({ "member_number": null }));
    let counters = h
        .post_json(&counter, "/v1/members/lookup", member.clone())
        .await?;
    assert_eq!(
        (counters.status, counters.body["code"].as_str()),
        (403, Some("role_not_allowed"))
    );

    // The member visits another kiosk: it gets card 2 signed, the same again on a retry;
    // not card 3, and card 1 stays the enrolling kiosk's (and revoked).
    let ask = card_ask_for("PP-00000001", 2, "135792", [5; 8]);
    let second = h.post_json(&elsewhere, "/v1/cards", ask.clone()).await?;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["serial"], json!(2));
    let token = second.body["token"].as_str().ok_or("no token")?.to_owned();
    let keys = redemption_token::KeySet::new(&[card_key().published(launch_morning())])?;
    let claims = redemption_token::verify(
        &token,
        &keys,
        &redemption_token::Revocations::default(),
        Some("135792"),
        launch_morning() + TimeDelta::minutes(1),
    )
    .map_err(|r| r.code())?;
    assert_eq!(claims.member.to_string(), "PP-00000001");
    let again = h.post_json(&kiosk, "/v1/cards", ask).await?;
    assert_eq!(
        (again.status, again.body["token"].as_str()),
        (200, Some(token.as_str()))
    );
    for (serial, code) in [(3, "card_not_allowed"), (1, "card_exists")] {
        let refused = h
            .post_json(
                &kiosk,
                "/v1/cards",
                card_ask_for("PP-00000001", serial, "135792", [6; 8]),
            )
            .await?;
        assert_eq!(
            (refused.status, refused.body["code"].as_str()),
            (if code == "card_exists" { 409 } else { 403 }, Some(code)),
            "{}",
            refused.body
        );
    }
    let signed = operator.get("/console/members?number=PP-00000001").await?;
    assert!(!signed.says(T::ReplacementPending), "{}", signed.body);
    assert!(signed.row_of("2").contains(T::Active.get(Lang::Ko)));

    // A revoked or unknown card is not replaced; the next replacement is card 3.
    for path in [
        "/console/members/PP-00000001/cards/1/replace",
        "/console/members/PP-00000001/cards/9/replace",
    ] {
        let refused = operator.post(path, &[("csrf", &csrf)]).await?;
        assert_eq!(refused.status, 404, "{path}");
        assert!(refused.says(T::NoSuchCard));
    }
    let third = operator
        .post(
            "/console/members/PP-00000001/cards/2/replace",
            &[("csrf", &csrf)],
        )
        .await?;
    assert_eq!(third.status, 303);
    let entries = h.audit_entries("card_replaced")?;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].2, r#"{"replacement":"3","state":"revoked"}"#);

    // A viewer, or a change without the session's token, replaces nothing.
    let mut viewer = h.signed_in("viewer", "viewer").await?;
    let viewer_csrf = viewer.get("/console/members").await?.csrf()?;
    let path = "/console/members/PP-00000001/cards/3/replace";
    assert_eq!(
        viewer.post(path, &[("csrf", &viewer_csrf)]).await?.status,
        403
    );
    assert_eq!(operator.post(path, &[]).await?.status, 403);
    assert_eq!(h.audit_entries("card_replaced")?.len(), 2);
    Ok(())
}

/// The real binary's console, with `options` besides; its terminals' and console's
/// addresses.
fn serve_console(
    db: &std::path::Path,
    options: &[&str],
) -> Result<(std::process::Child, String, String), Box<dyn std::error::Error>> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palpal-central"))
        .args(["serve", "--db"])
        .arg(db)
        .args(["--listen", "127.0.0.1:0", "--console-listen", "127.0.0.1:0"])
        .args(["--writer-cpu", "off"])
        .args(options)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (mut terminals, mut console) = (String::new(), String::new());
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line?;
        if let Some(url) = line.strip_prefix("listening on ") {
            url.clone_into(&mut terminals);
        }
        if let Some(url) = line.strip_prefix("console on ") {
            console = url.trim_end_matches("/console/").to_owned();
            break;
        }
    }
    Ok((child, terminals, console))
}

/// `serve --silent-after-minutes` and `--terminal-url` reach the console: the threshold
/// the terminals' page uses, the address a provisioning QR code holds (by default the
/// terminals' own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_gives_the_console_its_threshold_and_the_terminals_address() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("central.db");
    let db_arg = db.to_str().ok_or("a UTF-8 path")?;
    for (options, minutes, address) in [
        (
            vec![
                "--silent-after-minutes",
                "5",
                "--terminal-url",
                "https://central.example:8088",
            ],
            "5분",
            Some("https://central.example:8088"),
        ),
        (vec![], "30분", None),
    ] {
        let out = cli(&[
            "operator",
            "add",
            "--db",
            db_arg,
            "--name",
            &format!("lee{minutes}"),
            "--role",
            "operator",
        ])?;
        let code = field(&out, "code").ok_or("no code printed")?.to_owned();
        let (mut child, terminals, console) = serve_console(&db, &options)?;
        let outcome = async {
            let name = format!("lee{minutes}");
            let mut browser = Browser::new(&console)?;
            assert_eq!(browser.set_up(&name, &code, PASSWORD).await?.status, 303);
            assert_eq!(browser.sign_in(&name, PASSWORD).await?.status, 303);
            let page = browser.get("/console/terminals").await?;
            assert!(
                page.body
                    .contains(&format!("{}: {minutes}", T::SilentAfterIs.get(Lang::Ko))),
                "{}",
                page.body
            );
            let made = browser
                .post(
                    "/console/terminals",
                    &[
                        ("csrf", &page.csrf()?),
                        ("site", "성북구 보건소"),
                        ("role", "kiosk"),
                    ],
                )
                .await?;
            assert_eq!(made.status, 200, "{}", made.body);
            let shown = address.unwrap_or(&terminals);
            assert!(!shown.is_empty());
            assert!(
                made.body.contains(&format!("<code>{shown}</code>")),
                "{}",
                made.body
            );
            Ok::<(), Box<dyn std::error::Error>>(())
        }
        .await;
        child.kill()?;
        child.wait()?;
        outcome?;
    }
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

/// The re-rating of a policy in force.
#[path = "console/rerate.rs"]
mod rerate;

/// The Sign-up schedule and quotas page.
#[path = "console/schedule.rs"]
mod schedule;

/// Changes made with the command line are in the audit log too, by "the command line".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line_changes_are_audited() -> TestResult {
    let h = start(Config::default()).await?;
    let added = cli(&[
        "terminal",
        "add",
        "--db",
        h.db(),
        "--site",
        "성북구 보건소",
        "--role",
        "kiosk",
    ])?;
    let label = field(&added, "terminal")
        .ok_or("no terminal printed")?
        .to_owned();
    cli(&["terminal", "revoke", "--db", h.db(), "--terminal", &label])?;
    cli(&[
        "schedule",
        "set",
        "--db",
        h.db(),
        "--day",
        "2099-01-04",
        "--rule",
        "odd_birth_years",
    ])?;
    for action in ["terminal_provisioned", "terminal_revoked", "schedule_set"] {
        assert_eq!(h.audit_count(action)?, 1, "{action}");
    }
    let unknown = cli(&[
        "terminal",
        "revoke",
        "--db",
        h.db(),
        "--terminal",
        "T-000099",
    ]);
    assert!(unknown.is_err(), "an unknown terminal is refused");
    assert_eq!(h.audit_count("terminal_revoked")?, 1);

    // Places, all or none as in the console: not below the places already taken.
    let day = points_core::kst_day(h.clock.now()).to_string();
    let quota = |places: &str| {
        [
            "quota",
            "set",
            "--db",
            h.db(),
            "--day",
            &day,
            "--sites",
            "성북구 보건소,강북구 복지관",
            "--total",
            places,
        ]
        .map(str::to_owned)
    };
    let set = cli(&quota("5").each_ref().map(String::as_str))?;
    assert_eq!(set.lines().count(), 2, "{set}");
    assert!(set.contains("성북구 보건소\tplaces=3\tused=0"), "{set}");
    assert_eq!(h.audit_count("quota_set")?, 2);
    let kiosk = h.terminal("kiosk", 1).await?;
    let signed_up = h
        .sync(
            &kiosk,
            json!([enrollment("q-1", "김영희"), enrollment("q-2", "박철수")]),
        )
        .await?;
    assert_eq!(signed_up.status, 200, "{}", signed_up.body);
    // 2 places for 성북구 (its 2 taken) and 1 for 강북구: refused, nothing changed.
    let refused = cli_fails(&quota("2").each_ref().map(String::as_str))?;
    assert!(
        refused.contains("nothing was changed") && refused.contains("아무것도 바꾸지"),
        "{refused}"
    );
    assert_eq!(h.audit_count("quota_set")?, 2);
    let places = h
        .test_db
        .row("SELECT places FROM quota_leases WHERE site = '강북구 복지관'")?;
    assert_eq!(places, [2]);

    // A card, then the member: each audited once, however often asked.
    for _ in 0..2 {
        cli(&[
            "member",
            "revoke-card",
            "--db",
            h.db(),
            "--member",
            "PP-00000001",
            "--serial",
            "1",
        ])?;
        cli(&[
            "member",
            "revoke",
            "--db",
            h.db(),
            "--member",
            "PP-00000002",
        ])?;
    }
    assert_eq!(
        h.audit_entries("card_revoked")?,
        vec![(
            "PP-00000001 card 1".to_owned(),
            r#"{"state":"active"}"#.to_owned(),
            r#"{"state":"revoked"}"#.to_owned()
        )]
    );
    assert_eq!(
        h.audit_entries("member_revoked")?,
        vec![(
            "PP-00000002".to_owned(),
            r#"{"state":"active"}"#.to_owned(),
            r#"{"state":"revoked"}"#.to_owned()
        )]
    );
    let unknown = cli_fails(&[
        "member",
        "revoke",
        "--db",
        h.db(),
        "--member",
        "PP-00000099",
    ])?;
    assert!(unknown.contains("PP-00000099"), "{unknown}");
    assert_eq!(h.audit_count("member_revoked")?, 1);
    Ok(())
}

/// A lost card replaced from a shell, as the Members page does it: audited as the command
/// line's, the next number allowed; a card not in force, or no such member, is refused and
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_replaces_a_lost_card() -> TestResult {
    let h = start(Config {
        card_key: Some(card_key()),
        ..Config::default()
    })
    .await?;
    member_with_card_and_watch(&h).await?;
    let replace = |member: &str, serial: &str| {
        [
            "member",
            "replace-card",
            "--db",
            h.db(),
            "--member",
            member,
            "--serial",
            serial,
        ]
        .map(str::to_owned)
    };
    let said = cli(&replace("PP-00000001", "1").each_ref().map(String::as_str))?;
    assert!(
        said.contains("revoked card: PP-00000001 serial 1") && said.contains("allowed: serial 2"),
        "{said}"
    );
    assert_eq!(
        h.audit_entries("card_replaced")?,
        vec![(
            "PP-00000001 card 1".to_owned(),
            r#"{"state":"active"}"#.to_owned(),
            r#"{"replacement":"2","state":"revoked"}"#.to_owned()
        )]
    );
    for (member, serial) in [
        ("PP-00000001", "1"),
        ("PP-00000001", "7"),
        ("PP-00000099", "1"),
    ] {
        let refused = cli_fails(&replace(member, serial).each_ref().map(String::as_str))?;
        assert!(refused.contains("no card"), "{refused}");
    }
    assert_eq!(h.audit_count("card_replaced")?, 1);
    assert_eq!(h.count("card_replacements")?, 1);
    Ok(())
}
