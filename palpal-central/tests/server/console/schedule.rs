//! The Sign-up schedule and quotas page against the real server, on both engines: rules set
//! for a run of days reach the kiosks' pulls, each day audited; places set one by one or from
//! a CSV file, all or nothing, every bad row named; nothing changes on a refusal.

use super::*;

impl Browser {
    /// Posts a quota file's text as the upload form does (`multipart/form-data`).
    async fn upload_quotas(
        &mut self,
        csrf: &str,
        text: &str,
    ) -> Result<Page, Box<dyn std::error::Error>> {
        const BOUNDARY: &str = "----palpal-quotas-51c2";
        let body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"quotas.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n{text}\r\n--{BOUNDARY}--\r\n"
        );
        let request = self
            .client
            .post(format!("{}/console/quotas/csv", self.base))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body);
        self.send(request).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_places_set_in_the_console_reach_the_kiosks() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.add_terminal_at("종로구 보건소", "kiosk", 1).await?;
    let mut operator = h.signed_in("일정담당", "operator").await?;
    let today = points_core::kst_day(h.clock.now());
    let day = |n: u64| (today + chrono::Days::new(n)).to_string();
    let csrf = operator.session_csrf().await?;

    // Ages 65 to 74 for three days from tomorrow.
    let set = operator
        .post(
            "/console/schedule",
            &[
                ("csrf", &csrf),
                ("from", &day(1)),
                ("to", &day(3)),
                ("rule", "age_band"),
                ("min_age", "65"),
                ("max_age", "74"),
            ],
        )
        .await?;
    assert_eq!(set.status, 303, "{}", set.body);
    let page = operator
        .get(&format!("/console/schedule?from={}", day(1)))
        .await?;
    assert!(
        page.says(T::ScheduleSetDone) || page.body.contains("만 65–74세"),
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("만 65–74세").count(), 3, "{}", page.body);
    assert_eq!(h.audit_count("schedule_set")?, 3);
    let pulled = h.pull(&kiosk, json!({})).await?;
    assert_eq!(
        pulled.body["admission"]["days"][day(2)],
        json!({ "rule": "age_band", "min_age": 65, "max_age": 74 }),
        "{}",
        pulled.body
    );

    // Bad rules change nothing.
    for (fields, text) in [
        (
            vec![
                ("from", day(1)),
                ("to", day(1)),
                ("rule", "age_band".to_owned()),
                ("min_age", "80".to_owned()),
                ("max_age", "70".to_owned()),
            ],
            T::BadAgeBand,
        ),
        (
            vec![
                ("from", day(1)),
                ("to", day(1)),
                ("rule", "<script>".to_owned()),
            ],
            T::BadRule,
        ),
        (
            vec![
                ("from", day(2)),
                ("to", day(1)),
                ("rule", "open".to_owned()),
            ],
            T::BadRun,
        ),
        (
            vec![
                ("from", day(1)),
                ("to", day(80)),
                ("rule", "open".to_owned()),
            ],
            T::BadRun,
        ),
        (
            vec![
                ("from", (today - chrono::Days::new(1)).to_string()),
                ("to", day(1)),
                ("rule", "open".to_owned()),
            ],
            T::PastDay,
        ),
        (
            vec![
                ("from", "tomorrow".to_owned()),
                ("to", day(1)),
                ("rule", "open".to_owned()),
            ],
            T::BadDay,
        ),
    ] {
        let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        form.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
        let refused = operator.post("/console/schedule", &form).await?;
        assert_eq!(refused.status, 400, "{fields:?}");
        assert!(refused.says(text), "{fields:?}: {}", refused.body);
    }
    assert_eq!(h.audit_count("schedule_set")?, 3);

    // Places one by one, then from a file.
    let one = operator
        .post(
            "/console/quotas",
            &[
                ("csrf", &csrf),
                ("day", &day(1)),
                ("site", "종로구 보건소"),
                ("places", "300"),
            ],
        )
        .await?;
    assert_eq!(one.status, 303, "{}", one.body);
    let bad = format!(
        "day,site,places\n{d},성북구 보건소,120\n2026-13-01,x,1\n{d},,5\n{d},<script>alert(1)</script>,-3\n{d},성북구 보건소,7\n",
        d = day(1)
    );
    let refused = operator.upload_quotas(&csrf, &bad).await?;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.says(T::CsvRefused));
    for (line, text) in [
        (3, T::CsvDay),
        (4, T::CsvSite),
        (5, T::CsvPlaces),
        (6, T::CsvRepeated),
    ] {
        assert!(
            refused
                .body
                .contains(&format!("줄 {line}: {}", text.get(Lang::Ko))),
            "line {line}: {}",
            refused.body
        );
    }
    assert!(!refused.body.contains("<script>alert"));
    assert_eq!(
        h.audit_count("quota_set")?,
        1,
        "nothing of the bad file applied"
    );
    let wrong_columns = operator.upload_quotas(&csrf, "site,places\nx,1\n").await?;
    assert_eq!(wrong_columns.status, 400);
    assert!(wrong_columns
        .body
        .contains(&format!("줄 1: {}", T::CsvColumns.get(Lang::Ko))));

    let good = format!(
        "day,site,places\n{d},성북구 보건소,120\n{d},종로구 보건소,250\n",
        d = day(1)
    );
    let uploaded = operator.upload_quotas(&csrf, &good).await?;
    assert_eq!(uploaded.status, 303, "{}", uploaded.body);
    assert_eq!(h.audit_count("quota_set")?, 3);
    let page = operator
        .get(&format!("/console/schedule?day={}", day(1)))
        .await?;
    assert!(
        page.body
            .contains("<th scope=\"row\">종로구 보건소</th><td>250</td><td>0</td><td>250</td>"),
        "{}",
        page.body
    );
    let pulled = h.pull(&kiosk, json!({})).await?;
    let leases = pulled.body["quota_leases"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        leases
            .iter()
            .any(|l| l["places"] == 250 && l["site"] == "종로구 보건소"),
        "{}",
        pulled.body
    );

    // A viewer, and a change without the session's token, change nothing.
    let mut viewer = h.signed_in("보기만", "viewer").await?;
    let viewer_csrf = viewer.session_csrf().await?;
    let denied = viewer
        .post(
            "/console/quotas",
            &[
                ("csrf", &viewer_csrf),
                ("day", &day(1)),
                ("site", "종로구 보건소"),
                ("places", "1"),
            ],
        )
        .await?;
    assert_eq!(denied.status, 403, "{}", denied.body);
    let forged = operator
        .post(
            "/console/schedule",
            &[
                ("csrf", "forged"),
                ("from", &day(1)),
                ("to", &day(1)),
                ("rule", "closed"),
            ],
        )
        .await?;
    assert_eq!(forged.status, 403);
    assert_eq!(h.audit_count("quota_set")?, 3);
    assert_eq!(h.audit_count("schedule_set")?, 3);

    // Today open with 2 places; one taken by a sign-up; then fewer places than taken: refused.
    let today_text = today.to_string();
    for (path, fields) in [
        (
            "/console/schedule",
            vec![
                ("from", today_text.as_str()),
                ("to", today_text.as_str()),
                ("rule", "open"),
            ],
        ),
        (
            "/console/quotas",
            vec![
                ("day", today_text.as_str()),
                ("site", "종로구 보건소"),
                ("places", "2"),
            ],
        ),
    ] {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields);
        let done = operator.post(path, &form).await?;
        assert_eq!(done.status, 303, "{path}: {}", done.body);
    }
    let signed_up = h.sync(&kiosk, json!([enrollment("q-1", "김영희")])).await?;
    assert_eq!(
        result(&signed_up, 0)["status"],
        "accepted",
        "{}",
        signed_up.body
    );
    let below = operator
        .post(
            "/console/quotas",
            &[
                ("csrf", &csrf),
                ("day", &today_text),
                ("site", "종로구 보건소"),
                ("places", "0"),
            ],
        )
        .await?;
    assert_eq!(below.status, 400, "{}", below.body);
    assert!(below.says(T::BelowUsed), "{}", below.body);
    assert!(
        below
            .body
            .contains("<th scope=\"row\">종로구 보건소</th><td>2</td><td>1</td><td>1</td>"),
        "{}",
        below.body
    );
    Ok(())
}
