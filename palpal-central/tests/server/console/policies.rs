//! The Policies page against the real server, on both engines: a policy published in the
//! console is pulled by terminals and rated with by every server process on the database;
//! bad files, dates and requests are refused with a clear message and store nothing; a
//! policy that started cannot be cancelled.

use super::*;

const EVENT: &str = include_str!("../../../../policies/example-event.toml");

impl Browser {
    /// Posts `fields` as `multipart/form-data` (as the upload form does), `file` as the
    /// file field when given.
    async fn upload(
        &mut self,
        fields: &[(&str, &str)],
        file: Option<&[u8]>,
    ) -> Result<Page, Box<dyn std::error::Error>> {
        const BOUNDARY: &str = "----palpal-test-7f3a";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"policy.toml\"\r\nContent-Type: text/plain\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(file.unwrap_or_default());
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let request = self
            .client
            .post(format!("{}/console/policies", self.base))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body);
        self.send(request).await
    }

    /// The example event, from `start`, previewed (`publish` false) or published.
    async fn event(
        &mut self,
        csrf: &str,
        text: &str,
        start: &str,
        publish: bool,
    ) -> Result<Page, Box<dyn std::error::Error>> {
        let action = if publish { "publish" } else { "preview" };
        self.upload(
            &[
                ("csrf", csrf),
                ("action", action),
                ("start", start),
                ("text", text),
            ],
            None,
        )
        .await
    }
}

/// 2025-12-16 21:00 in Seoul, a day of the example event's triple points.
fn event_evening() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 12, 16, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn steps_on(op_id: &str, member: &str, day: &str, steps: u32) -> Value {
    json!({
        "op_id": op_id,
        "kind": "step_report",
        "payload": {
            "member_number": member,
            "day": day,
            "steps": steps,
            "reported_at": format!("{day}T21:00:00+09:00"),
        },
    })
}

fn names(pulled: &Answer) -> Vec<String> {
    pulled.body["policies"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_published_in_the_console_is_pulled_and_rated_with_by_every_server() -> TestResult
{
    let (a, b) = second_server().await?;
    let b = b.as_ref().unwrap_or(&a);
    let kiosk = a.terminal("kiosk", 1).await?;
    let signed_up = a
        .sync(
            &kiosk,
            json!([enrollment("e-1", "김영희"), enrollment("e-2", "박철수")]),
        )
        .await?;
    assert_eq!(signed_up.status, 200, "{}", signed_up.body);
    let before = a.pull(&kiosk, json!({})).await?;
    assert_eq!(
        names(&before),
        ["seoul-2023", "seoul-2025-03", "seoul-2025-12"]
    );
    let cursor = before.body["cursor"].clone();
    // Both servers rated with the seed before the publish: each connection keeps its set.
    let early = b.pull(&kiosk, json!({ "cursor": cursor })).await?;
    assert!(early.body.get("policies").is_none(), "{}", early.body);

    let mut operator = a.signed_in("김운영", "operator").await?;
    let csrf = operator.session_csrf().await?;
    let preview = operator.event(&csrf, EVENT, "2025-12-10", false).await?;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(preview.says(T::PreviewReady), "{}", preview.body);
    // The event's first week, 12,000 steps a day: 700 + 500 now, 2,100 + 500 with it.
    assert!(
        preview
            .body
            .contains("<td>2025-12-15..2025-12-21</td><td>1,200</td><td><strong>2,600</strong>"),
        "{}",
        preview.body
    );
    assert_eq!(a.count("policies")?, 3, "a preview stores nothing");

    let published = operator.event(&csrf, EVENT, "2025-12-10", true).await?;
    assert_eq!(
        (published.status, published.location()),
        (303, "/console/policies?m=policy_published"),
        "{}",
        published.body
    );
    let page = operator.get("/console/policies?m=policy_published").await?;
    assert!(page.says(T::PolicyPublished));
    assert!(page.body.contains("example-event"));
    assert!(page.body.contains("3× 2025-12-15..2025-12-28"));
    assert_eq!(a.audit_count("policy_published")?, 1);
    // Audited with the set before and after.
    let audit = operator
        .get("/console/audit?action=policy_published")
        .await?;
    assert!(
        audit
            .body
            .contains("{&quot;policies&quot;:&quot;seoul-2023 (2023-01-01..2023-12-31), seoul-2025-03 (2025-03-01..2025-11-30), seoul-2025-12 (2025-12-01..)&quot;}")
            && audit.body.contains("seoul-2025-12 (2025-12-01..), example-event (2025-12-10..)"),
        "{}",
        audit.body
    );

    // Terminals pull the new texts from either server: the fingerprint changed.
    for server in [&a, b] {
        let pulled = server.pull(&kiosk, json!({ "cursor": cursor })).await?;
        assert_eq!(pulled.status, 200, "{}", pulled.body);
        assert_eq!(
            names(&pulled),
            [
                "seoul-2023",
                "seoul-2025-03",
                "seoul-2025-12",
                "example-event"
            ]
        );
        assert!(pulled.body["policies"][3]["text"]
            .as_str()
            .is_some_and(|text| text.contains("effective_from = 2025-12-10")));
        let again = server
            .pull(&kiosk, json!({ "cursor": pulled.body["cursor"] }))
            .await?;
        assert!(again.body.get("policies").is_none(), "{}", again.body);
    }

    // Each server's writer rates a new report on an event day with the event's triple
    // points (100 daily + 200 event).
    for (server, member, op) in [(&a, "PP-00000001", "s-1"), (b, "PP-00000002", "s-2")] {
        server.clock.set(event_evening());
        let rated = server
            .sync(&kiosk, json!([steps_on(op, member, "2025-12-16", 12_000)]))
            .await?;
        assert_eq!(result(&rated, 0)["status"], "accepted", "{}", rated.body);
        assert_eq!(result(&rated, 0)["points"], 300, "{}", rated.body);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_policies_and_requests_are_refused_with_a_clear_message_and_store_nothing() -> TestResult
{
    let h = start(Config::default()).await?;
    let mut operator = h.signed_in("김운영", "operator").await?;
    let csrf = operator.session_csrf().await?;
    let refused = |page: &Page, ko: &str| {
        assert_eq!(page.status, 400, "{}", page.body);
        assert!(page.body.contains(ko), "{ko:?} not in {}", page.body);
        assert!(page.body.contains("role=\"alert\""), "{}", page.body);
    };

    let not_toml = operator
        .event(&csrf, "이건 정책이 아닙니다", "", true)
        .await?;
    refused(&not_toml, "정책 파일 1번째 줄");
    let misspelt = EVENT.replace("goal_steps = 8000", "goal_stepz = 8000");
    let line = 1 + misspelt
        .lines()
        .position(|l| l.starts_with("goal_stepz"))
        .ok_or("no line")?;
    let wrong_field = operator.event(&csrf, &misspelt, "2025-12-10", true).await?;
    refused(&wrong_field, &format!("정책 파일 {line}번째 줄 1번째 글자"));
    assert!(wrong_field.body.contains("goal_stepz"));
    // The text typed stays in the form, escaped.
    let hostile = EVENT.replace("example-event", "<script>alert(1)</script>");
    let script = operator.event(&csrf, &hostile, "2025-12-01", true).await?;
    refused(&script, "다시 계산하는 기능은 없으므로");
    assert!(!script.body.contains("<script>alert"));
    assert!(script
        .body
        .contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    let mut large = EVENT.to_owned();
    while large.len() <= 64 * 1024 {
        large.push_str("# 주석으로 채운 줄입니다 / a line of comment\n");
    }
    let oversized = operator
        .upload(
            &[("csrf", &csrf), ("action", "publish"), ("start", "")],
            Some(large.as_bytes()),
        )
        .await?;
    refused(&oversized, "정책 파일이 너무 큽니다");
    let not_utf8 = operator
        .upload(
            &[("csrf", &csrf), ("action", "preview"), ("start", "")],
            Some(&[0xff, 0xfe, 0x00, 0x41]),
        )
        .await?;
    refused(&not_utf8, "UTF-8");
    let today = operator.event(&csrf, EVENT, "2025-12-03", true).await?;
    refused(&today, "오늘(2025-12-03) 이후여야 합니다");
    let bad_date = operator.event(&csrf, EVENT, "12/10/2025", true).await?;
    refused(&bad_date, T::BadStartDate.get(Lang::Ko));

    // One published; a second claiming its first day overlaps.
    let first = operator.event(&csrf, EVENT, "2025-12-10", true).await?;
    assert_eq!(first.status, 303, "{}", first.body);
    let twin = EVENT.replace("name = \"example-event\"", "name = \"twin-event\"");
    let overlap = operator.event(&csrf, &twin, "2025-12-10", true).await?;
    refused(
        &overlap,
        "example-event과(와) twin-event이(가) 2025-12-10에 함께 적용됩니다",
    );
    let same_name = operator.event(&csrf, EVENT, "2025-12-11", false).await?;
    refused(&same_name, "같은 이름의 정책이 이미 있습니다");

    // A viewer's direct POST and a post without the session's token change nothing.
    let mut viewer = h.signed_in("이보기", "viewer").await?;
    let viewer_csrf = viewer.session_csrf().await?;
    let page = viewer.get("/console/policies").await?;
    assert_eq!(page.status, 200);
    assert!(page.says(T::ViewerCannotChange));
    assert!(!page.body.contains("/console/policies/cancel"));
    let by_viewer = viewer
        .event(&viewer_csrf, &twin, "2025-12-20", true)
        .await?;
    assert_eq!(by_viewer.status, 403, "{}", by_viewer.body);
    assert!(by_viewer.body.contains("role_not_allowed"));
    let cancel_by_viewer = viewer
        .post(
            "/console/policies/cancel",
            &[("csrf", &viewer_csrf), ("name", "example-event")],
        )
        .await?;
    assert_eq!(cancel_by_viewer.status, 403);
    let no_csrf = operator
        .upload(
            &[
                ("action", "publish"),
                ("start", "2025-12-20"),
                ("text", &twin),
            ],
            None,
        )
        .await?;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);
    assert!(no_csrf.body.contains("bad_csrf"));
    let not_multipart = operator
        .post(
            "/console/policies",
            &[("csrf", &csrf), ("action", "publish")],
        )
        .await?;
    assert_eq!(not_multipart.status, 400);
    assert_eq!(h.count("policies")?, 4);
    assert_eq!(h.audit_count("policy_published")?, 1);

    // A policy that started cannot be cancelled; one scheduled can, once.
    let started = operator
        .post(
            "/console/policies/cancel",
            &[("csrf", &csrf), ("name", "seoul-2025-12")],
        )
        .await?;
    refused(
        &started,
        "2025-12-01에 이미 시작된 정책은 취소할 수 없습니다",
    );
    h.clock.set(
        Utc.with_ymd_and_hms(2025, 12, 9, 15, 0, 0)
            .single()
            .unwrap_or_default(),
    );
    // Days later: the session is over, so sign in again.
    let signed = operator.sign_in("김운영", PASSWORD).await?;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let csrf = operator.session_csrf().await?;
    let on_its_day = operator
        .post(
            "/console/policies/cancel",
            &[("csrf", &csrf), ("name", "example-event")],
        )
        .await?;
    refused(
        &on_its_day,
        "2025-12-10에 이미 시작된 정책은 취소할 수 없습니다",
    );
    assert_eq!(h.audit_count("policy_cancelled")?, 0);
    let later = EVENT.replace("name = \"example-event\"", "name = \"later-event\"");
    let scheduled = operator.event(&csrf, &later, "2025-12-14", true).await?;
    assert_eq!(scheduled.status, 303, "{}", scheduled.body);
    let cancelled = operator
        .post(
            "/console/policies/cancel",
            &[("csrf", &csrf), ("name", "later-event")],
        )
        .await?;
    assert_eq!(
        (cancelled.status, cancelled.location()),
        (303, "/console/policies?m=policy_cancelled"),
        "{}",
        cancelled.body
    );
    let twice = operator
        .post(
            "/console/policies/cancel",
            &[("csrf", &csrf), ("name", "later-event")],
        )
        .await?;
    refused(&twice, "그 이름의 정책이 없습니다");
    assert_eq!(h.audit_count("policy_cancelled")?, 1);
    assert_eq!(
        h.test_db
            .row("SELECT count(*) FROM policies WHERE cancelled_at IS NOT NULL")?[0],
        1
    );
    Ok(())
}

/// `palpal-central policy list|add|cancel`: the same store calls as the console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_lists_publishes_and_cancels_policies() -> TestResult {
    let h = start(Config::default()).await?;
    let dir = tempfile::tempdir()?;
    // The command line runs on the machine's clock: an event far ahead.
    let far = EVENT
        .replace("name = \"example-event\"", "name = \"event-2099\"")
        .replace("2025-12-15", "2099-12-15")
        .replace("2025-12-28", "2099-12-28")
        .replace("2026-09-09", "2100-09-09");
    let file = dir.path().join("event.toml");
    std::fs::write(&file, &far)?;
    let file = file.to_string_lossy().into_owned();
    let out = cli(&[
        "policy",
        "add",
        "--db",
        h.db(),
        "--file",
        &file,
        "--effective-from",
        "2099-12-01",
    ])?;
    assert_eq!(field(&out, "published"), Some("event-2099"), "{out}");
    let listed = cli(&["policy", "list", "--db", h.db()])?;
    assert!(
        listed.contains("event-2099\t2099-12-01\t\tscheduled\tpalpal-central (command line)"),
        "{listed}"
    );
    let again = cli_fails(&[
        "policy",
        "add",
        "--db",
        h.db(),
        "--file",
        &file,
        "--effective-from",
        "2099-12-02",
    ])?;
    assert!(again.contains("policy_name_taken"), "{again}");
    let started = cli_fails(&["policy", "cancel", "--db", h.db(), "seoul-2025-12"])?;
    assert!(started.contains("policy_started"), "{started}");
    let out = cli(&["policy", "cancel", "--db", h.db(), "event-2099"])?;
    assert_eq!(field(&out, "cancelled"), Some("event-2099"), "{out}");
    assert_eq!(h.audit_count("policy_published")?, 1);
    assert_eq!(h.audit_count("policy_cancelled")?, 1);
    Ok(())
}
