//! The re-rating of a policy in force, against the real server, on both engines: a preview's
//! figures equal an independent rating of the reports sent; an apply changes balances and
//! the ledger accordingly, is audited and pulled by terminals; a stale preview, a bad file, a
//! wrong name, an overlap and anyone but an admin are refused and change nothing.

use chrono::NaiveDate;
use points_core::{Ledger, PointsPolicy, PolicySet, StepReport};

use super::*;

const SEED: [&str; 3] = [
    include_str!("../../../../policies/seoul-2023.toml"),
    include_str!("../../../../policies/seoul-2025-03.toml"),
    include_str!("../../../../policies/seoul-2025-12.toml"),
];

/// The 2025-12 policy with `points` a goal day instead of 100.
fn corrected(points: u32) -> String {
    SEED[2].replace("points = 100\n", &format!("points = {points}\n"))
}

impl Browser {
    /// Posts a re-rating form as `multipart/form-data`, as the page does.
    async fn rerate(
        &mut self,
        fields: &[(&str, &str)],
    ) -> Result<Page, Box<dyn std::error::Error>> {
        const BOUNDARY: &str = "----palpal-rerate-91c2";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let request = self
            .client
            .post(format!("{}/console/policies/rerate", self.base))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body);
        self.send(request).await
    }

    async fn rerate_preview(
        &mut self,
        csrf: &str,
        text: &str,
    ) -> Result<Page, Box<dyn std::error::Error>> {
        self.rerate(&[("csrf", csrf), ("action", "preview"), ("text", text)])
            .await
    }
}

/// The digest in a preview's confirmation form.
fn confirm_of(page: &Page) -> Result<String, Box<dyn std::error::Error>> {
    let at = page
        .body
        .find("name=\"confirm\" value=\"")
        .ok_or("no confirmation in the preview")?;
    let start = at + "name=\"confirm\" value=\"".len();
    Ok(page.body[start..start + 64].to_owned())
}

/// A figure of a preview, by its cell's id.
fn figure(page: &Page, id: &str) -> String {
    let open = format!("<td id=\"{id}\">");
    page.body
        .find(&open)
        .and_then(|at| {
            let rest = &page.body[at + open.len()..];
            rest.find("</td>").map(|end| rest[..end].to_owned())
        })
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

/// Points of `reports` (day, steps) for a member born 1950-04-01 under `texts`, rated with
/// points-core's ledger directly.
fn rated(texts: &[&str], reports: &[(&str, u32)]) -> Result<u64, Box<dyn std::error::Error>> {
    let set = PolicySet::new(
        texts
            .iter()
            .map(|text| PointsPolicy::from_toml_str(text))
            .collect::<Result<Vec<_>, _>>()?,
    )?;
    let birth = NaiveDate::from_ymd_opt(1950, 4, 1).ok_or("a date")?;
    let mut ledger = Ledger::new(birth);
    for (day, steps) in reports {
        ledger.apply(
            &set,
            &StepReport {
                reported_at: DateTime::parse_from_rfc3339(&format!("{day}T21:00:00+09:00"))?,
                day: NaiveDate::parse_from_str(day, "%Y-%m-%d")?,
                steps: *steps,
            },
        );
    }
    Ok(ledger.total())
}

fn balance_of(h: &Harness, member: i64) -> Result<Vec<i64>, Box<dyn std::error::Error>> {
    h.test_db.row(&format!(
        "SELECT credited, spent FROM balances WHERE member_id = {member}"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_is_previewed_applied_audited_and_pulled() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let signed_up = h
        .sync(
            &kiosk,
            json!([
                enrollment("e-1", "김영희"),
                enrollment("e-2", "박철수"),
                enrollment("e-3", "이민수")
            ]),
        )
        .await?;
    assert_eq!(signed_up.status, 200, "{}", signed_up.body);
    let one = [
        ("2025-12-01", 9_000),
        ("2025-12-02", 6_000),
        ("2025-12-02", 5_500),
    ];
    let two = [("2025-12-02", 4_000)];
    let three = [("2025-12-01", 7_000)];
    let mut ops = Vec::new();
    for (member, reports) in [
        ("PP-00000001", &one[..]),
        ("PP-00000002", &two[..]),
        ("PP-00000003", &three[..]),
    ] {
        for (day, steps) in reports {
            ops.push(steps_on(&format!("s-{}", ops.len()), member, day, *steps));
        }
    }
    let sent = h.sync(&kiosk, Value::Array(ops)).await?;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let pulled = h.pull(&kiosk, json!({})).await?;
    let cursor = pulled.body["cursor"].clone();
    // Member 1 spent most of their points: a decrease beyond what is left is not recovered.
    h.test_db
        .execute("UPDATE balances SET spent = 150 WHERE member_id = 1")?;

    let text = corrected(40);
    let now_texts = SEED;
    let new_texts = [SEED[0], SEED[1], text.as_str()];
    let mut expected = Vec::new();
    for reports in [&one[..], &two[..], &three[..]] {
        expected.push((rated(&now_texts, reports)?, rated(&new_texts, reports)?));
    }
    let changes: Vec<i64> = expected
        .iter()
        .map(|(before, after)| {
            i64::try_from(*after).unwrap_or(0) - i64::try_from(*before).unwrap_or(0)
        })
        .collect();
    let credited_1 = balance_of(&h, 1)?[0];
    assert_eq!(u64::try_from(credited_1)?, expected[0].0);
    let available_1 = credited_1 - 150;
    let not_recovered = (-changes[0] - available_1).max(0);
    assert!(not_recovered > 0, "member 1's loss is beyond their balance");

    let mut admin = h.signed_in("관리자", "admin").await?;
    let csrf = admin.session_csrf().await?;
    let preview = admin.rerate_preview(&csrf, &text).await?;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(preview.says(T::RerateReady), "{}", preview.body);
    let changed = changes.iter().filter(|c| **c != 0).count();
    assert_eq!(figure(&preview, "rerate-changed"), changed.to_string());
    let total: i64 = changes.iter().sum();
    assert_eq!(figure(&preview, "rerate-total"), format!("-{}", -total));
    assert_eq!(figure(&preview, "rerate-short"), "1");
    assert_eq!(
        figure(&preview, "rerate-not-recovered"),
        not_recovered.to_string()
    );
    assert_eq!(h.count("policies")?, 3, "a preview stores nothing");
    assert_eq!(
        h.test_db
            .row("SELECT count(*) FROM ledger_entries WHERE kind = 'rerate'")?[0],
        0
    );

    let confirm = confirm_of(&preview)?;
    let applied = admin
        .rerate(&[
            ("csrf", &csrf),
            ("action", "apply"),
            ("text", &text),
            ("confirm", &confirm),
        ])
        .await?;
    assert_eq!(
        (applied.status, applied.location()),
        (303, "/console/policies?m=policy_rerated"),
        "{}",
        applied.body
    );
    // Balances: member 1 down to nothing (never below), member 3 by their change, member 2
    // as they were.
    assert_eq!(balance_of(&h, 1)?, [150, 150]);
    assert_eq!(
        balance_of(&h, 3)?[0],
        i64::try_from(expected[2].1)?,
        "member 3 now has what the corrected policy gives"
    );
    assert_eq!(balance_of(&h, 2)?[0], i64::try_from(expected[1].1)?);
    let entries = h.test_db.row(
        "SELECT count(*), CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM ledger_entries WHERE kind = 'rerate'",
    )?;
    assert_eq!(entries, [2, total + not_recovered]);
    // The ledger's entries still add up to what is credited.
    for member in 1..=3 {
        let sum = h.test_db.row(&format!(
            "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM ledger_entries WHERE member_id = {member}"
        ))?[0];
        assert_eq!(sum, balance_of(&h, member)?[0], "member {member}");
    }
    assert_eq!(h.audit_count("policy_rerated")?, 1);
    let audit = admin.get("/console/audit?action=policy_rerated").await?;
    assert!(
        audit.body.contains(&format!(
            "&quot;not_recovered&quot;:&quot;{not_recovered}&quot;"
        )),
        "{}",
        audit.body
    );
    let page = admin.get("/console/policies?m=policy_rerated").await?;
    assert!(page.says(T::PolicyRerated));

    // Terminals pull the corrected text and the changed balances.
    let after = h.pull(&kiosk, json!({ "cursor": cursor })).await?;
    assert_eq!(after.status, 200, "{}", after.body);
    assert!(after.body["policies"][2]["text"]
        .as_str()
        .is_some_and(|t| t.contains("points = 40\n")));
    let balances = after.body["balances"].as_array().ok_or("no balances")?;
    let one_now = balances
        .iter()
        .find(|b| b["member_number"] == "PP-00000001")
        .ok_or("member 1's balance is not pulled")?;
    assert_eq!(one_now["balance"], 0);

    // A new report is rated with the corrected policy: 40 a goal day.
    let later = h
        .sync(
            &kiosk,
            json!([steps_on("s-late", "PP-00000002", "2025-12-03", 6_000)]),
        )
        .await?;
    assert_eq!(result(&later, 0)["points"], 40, "{}", later.body);

    // A correction changing no one's points applies with no adjustment.
    let comment = format!("{}# corrected wording only\n", SEED[0]);
    let same = admin.rerate_preview(&csrf, &comment).await?;
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(figure(&same, "rerate-changed"), "0");
    assert!(same.says(T::RerateNoChange));
    let confirm = confirm_of(&same)?;
    let applied = admin
        .rerate(&[
            ("csrf", &csrf),
            ("action", "apply"),
            ("text", &comment),
            ("confirm", &confirm),
        ])
        .await?;
    assert_eq!(applied.status, 303, "{}", applied.body);
    assert_eq!(
        h.test_db
            .row("SELECT count(*) FROM ledger_entries WHERE kind = 'rerate'")?[0],
        2
    );
    assert_eq!(h.audit_count("policy_rerated")?, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_previews_bad_files_and_other_roles_are_refused_and_change_nothing() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let signed_up = h
        .sync(
            &kiosk,
            json!([
                enrollment("e-1", "김영희"),
                steps_on("s-1", "PP-00000001", "2025-12-01", 9_000)
            ]),
        )
        .await?;
    assert_eq!(signed_up.status, 200, "{}", signed_up.body);
    let text = corrected(150);
    let mut admin = h.signed_in("관리자", "admin").await?;
    let csrf = admin.session_csrf().await?;
    let preview = admin.rerate_preview(&csrf, &text).await?;
    assert_eq!(figure(&preview, "rerate-changed"), "1", "{}", preview.body);
    let confirm = confirm_of(&preview)?;
    // A report arrives between the preview and the apply.
    let sent = h
        .sync(
            &kiosk,
            json!([steps_on("s-2", "PP-00000001", "2025-12-02", 9_000)]),
        )
        .await?;
    assert_eq!(result(&sent, 0)["points"], 100, "{}", sent.body);
    let stale = admin
        .rerate(&[
            ("csrf", &csrf),
            ("action", "apply"),
            ("text", &text),
            ("confirm", &confirm),
        ])
        .await?;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(
        stale.body.contains("미리보기 뒤에 수치가 바뀌었습니다"),
        "{}",
        stale.body
    );
    assert!(stale.body.contains("role=\"alert\""));
    assert_eq!(h.count("policies")?, 3);
    assert_eq!(balance_of(&h, 1)?, [200, 0], "the new report only");
    assert_eq!(h.audit_count("policy_rerated")?, 0);

    let refused = |page: &Page, ko: &str| {
        assert_eq!(page.status, 400, "{}", page.body);
        assert!(page.body.contains(ko), "{ko:?} not in {}", page.body);
    };
    refused(
        &admin.rerate_preview(&csrf, "이건 정책이 아닙니다").await?,
        "정책 파일 1번째 줄",
    );
    refused(
        &admin.rerate_preview(&csrf, "").await?,
        "정책 파일이 비어 있습니다",
    );
    let renamed = text.replace("name = \"seoul-2025-12\"", "name = \"seoul-2025-13\"");
    refused(
        &admin.rerate_preview(&csrf, &renamed).await?,
        "그 이름의 정책이 없습니다",
    );
    let longer = SEED[1].replace(
        "effective_until = 2025-11-30",
        "effective_until = 2025-12-05",
    );
    refused(
        &admin.rerate_preview(&csrf, &longer).await?,
        "함께 적용됩니다",
    );
    let forged = admin
        .rerate(&[
            ("csrf", &csrf),
            ("action", "apply"),
            ("text", &text),
            ("confirm", &"0".repeat(64)),
        ])
        .await?;
    assert_eq!(forged.status, 409, "{}", forged.body);
    let malformed = admin
        .rerate(&[
            ("csrf", &csrf),
            ("action", "apply"),
            ("text", &text),
            ("confirm", "<script>"),
        ])
        .await?;
    assert_eq!(malformed.status, 400, "{}", malformed.body);
    let no_csrf = admin
        .rerate(&[("action", "preview"), ("text", &text)])
        .await?;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);

    // Operators and viewers: the section says admins only, and a direct POST is refused.
    let fresh = admin.rerate_preview(&csrf, &text).await?;
    let confirm = confirm_of(&fresh)?;
    for (name, role) in [("김운영", "operator"), ("이보기", "viewer")] {
        let mut other = h.signed_in(name, role).await?;
        let their_csrf = other.session_csrf().await?;
        let page = other.get("/console/policies").await?;
        assert!(page.says(T::RerateAdminOnly), "{}", page.body);
        assert!(!page.body.contains("/console/policies/rerate"));
        for fields in [
            vec![
                ("csrf", their_csrf.as_str()),
                ("action", "preview"),
                ("text", &text),
            ],
            vec![
                ("csrf", their_csrf.as_str()),
                ("action", "apply"),
                ("text", &text),
                ("confirm", &confirm),
            ],
        ] {
            let by_other = other.rerate(&fields).await?;
            assert_eq!(by_other.status, 403, "{role}: {}", by_other.body);
            assert!(by_other.body.contains("role_not_allowed"));
        }
    }
    // Nothing refused changed anything.
    assert_eq!(h.count("policies")?, 3);
    assert_eq!(h.audit_count("policy_rerated")?, 0);
    assert_eq!(
        h.test_db
            .row("SELECT count(*) FROM ledger_entries WHERE kind = 'rerate'")?[0],
        0
    );
    assert_eq!(balance_of(&h, 1)?, [200, 0]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_previews_and_applies_a_rerating() -> TestResult {
    let h = start(Config::default()).await?;
    let kiosk = h.terminal("kiosk", 1).await?;
    let sent = h
        .sync(
            &kiosk,
            json!([
                enrollment("e-1", "김영희"),
                steps_on("s-1", "PP-00000001", "2025-12-01", 9_000),
                steps_on("s-2", "PP-00000001", "2025-12-02", 9_000)
            ]),
        )
        .await?;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("corrected.toml");
    std::fs::write(&file, corrected(250))?;
    let file = file.to_string_lossy().into_owned();
    let preview = cli(&["policy", "rerate", "--db", h.db(), "--file", &file])?;
    assert_eq!(
        field(&preview, "preview"),
        Some("seoul-2025-12"),
        "{preview}"
    );
    assert_eq!(field(&preview, "members_changed"), Some("1"), "{preview}");
    assert_eq!(field(&preview, "total_change"), Some("300"), "{preview}");
    assert_eq!(field(&preview, "band 100..499"), Some("1"), "{preview}");
    let digest = field(&preview, "digest").ok_or("no digest")?.to_owned();
    assert_eq!(h.count("policies")?, 3, "a preview stores nothing");

    let wrong = cli_fails(&[
        "policy",
        "rerate",
        "--db",
        h.db(),
        "--file",
        &file,
        "--apply",
        &"f".repeat(64),
    ])?;
    assert!(wrong.contains("policy_rerate_stale"), "{wrong}");
    assert_eq!(balance_of(&h, 1)?, [200, 0]);

    let applied = cli(&[
        "policy",
        "rerate",
        "--db",
        h.db(),
        "--file",
        &file,
        "--apply",
        &digest,
    ])?;
    assert_eq!(
        field(&applied, "rerated"),
        Some("seoul-2025-12"),
        "{applied}"
    );
    assert_eq!(balance_of(&h, 1)?, [500, 0]);
    assert_eq!(
        h.test_db.row(
            "SELECT count(*) FROM audit_log WHERE action = 'policy_rerated'
             AND operator_name = 'palpal-central (command line)'"
        )?[0],
        1
    );
    let again = cli_fails(&[
        "policy",
        "rerate",
        "--db",
        h.db(),
        "--file",
        &file,
        "--apply",
        &digest,
    ])?;
    assert!(again.contains("policy_rerate_stale"), "{again}");
    Ok(())
}

/// Step reports sent to one server process while an admin re-rates on another (on SQLite,
/// the same server): whenever the apply lands, no report is rated with the old set after it
/// and no adjustment is lost, so every member ends with what points-core gives their reports
/// under the corrected set, and their ledger entries add up to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_arriving_during_a_rerating_lose_nothing() -> TestResult {
    let (a, b) = second_server().await?;
    let b = b.as_ref().unwrap_or(&a);
    let kiosk = a.terminal("kiosk", 1).await?;
    let members = ["PP-00000001", "PP-00000002", "PP-00000003"];
    let signed_up = a
        .sync(
            &kiosk,
            json!([
                enrollment("e-1", "김영희"),
                enrollment("e-2", "박철수"),
                enrollment("e-3", "이민수"),
                steps_on("s-0", members[0], "2025-12-01", 9_000),
                steps_on("s-1", members[1], "2025-12-01", 9_000)
            ]),
        )
        .await?;
    assert_eq!(signed_up.status, 200, "{}", signed_up.body);
    let later = [
        ("2025-12-02", 3_000),
        ("2025-12-02", 6_000),
        ("2025-12-02", 9_000),
        ("2025-12-03", 4_000),
        ("2025-12-03", 8_000),
    ];
    let text = corrected(170);
    let mut admin = a.signed_in("관리자", "admin").await?;
    let csrf = admin.session_csrf().await?;

    let reporting = async {
        for (i, (day, steps)) in later.iter().enumerate() {
            let ops: Vec<Value> = members
                .iter()
                .enumerate()
                .map(|(m, member)| steps_on(&format!("r-{i}-{m}"), member, day, *steps))
                .collect();
            let sent = b.sync(&kiosk, Value::Array(ops)).await?;
            assert_eq!(sent.status, 200, "{}", sent.body);
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    let rerating = async {
        for _ in 0..200 {
            let preview = admin.rerate_preview(&csrf, &text).await?;
            assert_eq!(preview.status, 200, "{}", preview.body);
            let applied = admin
                .rerate(&[
                    ("csrf", &csrf),
                    ("action", "apply"),
                    ("text", &text),
                    ("confirm", &confirm_of(&preview)?),
                ])
                .await?;
            match applied.status {
                303 => return Ok(()),
                409 => continue,
                other => return Err(format!("apply answered {other}: {}", applied.body).into()),
            }
        }
        Err::<(), Box<dyn std::error::Error>>("no apply landed in 200 previews".into())
    };
    let (reported, rerated) = tokio::join!(reporting, rerating);
    reported?;
    rerated?;
    assert_eq!(a.audit_count("policy_rerated")?, 1);

    let new_texts = [SEED[0], SEED[1], text.as_str()];
    for (m, first) in [
        Some(("2025-12-01", 9_000)),
        Some(("2025-12-01", 9_000)),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let reports: Vec<(&str, u32)> = first.into_iter().chain(later).collect();
        let id = i64::try_from(m)? + 1;
        let credited = balance_of(&a, id)?[0];
        assert_eq!(
            u64::try_from(credited)?,
            rated(&new_texts, &reports)?,
            "member {id}"
        );
        let sum = a.test_db.row(&format!(
            "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM ledger_entries \
             WHERE member_id = {id}"
        ))?[0];
        assert_eq!(sum, credited, "member {id}'s ledger entries");
    }
    Ok(())
}

/// On PostgreSQL with two server processes, the interleaving a lost update needs, made to
/// happen: the apply has locked member 1's balance and waits for member 2's (held by another
/// connection) when a write group for member 1 starts on the other process. Once the apply
/// commits, that group rates with the corrected set. (SQLite has one writer: a write group
/// and an apply take turns, and the report after the apply is rated with the corrected set.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_group_waiting_for_a_rerating_rates_with_the_corrected_set() -> TestResult {
    let (a, b) = second_server().await?;
    let b = b.as_ref().unwrap_or(&a);
    let kiosk = a.terminal("kiosk", 1).await?;
    let signed_up = a
        .sync(
            &kiosk,
            json!([
                enrollment("e-1", "김영희"),
                enrollment("e-2", "박철수"),
                steps_on("s-0", "PP-00000001", "2025-12-01", 9_000)
            ]),
        )
        .await?;
    assert_eq!(signed_up.status, 200, "{}", signed_up.body);
    let text = corrected(170);
    let mut admin = a.signed_in("관리자", "admin").await?;
    let csrf = admin.session_csrf().await?;
    let preview = admin.rerate_preview(&csrf, &text).await?;
    let confirm = confirm_of(&preview)?;
    let fields = [
        ("csrf", csrf.as_str()),
        ("action", "apply"),
        ("text", text.as_str()),
        ("confirm", confirm.as_str()),
    ];
    let report = || {
        b.sync(
            &kiosk,
            json!([steps_on("s-1", "PP-00000001", "2025-12-02", 9_000)]),
        )
    };
    let (applied, sent) = if on_postgres() {
        let url = a.test_db.arg();
        let holder = blocking(|| {
            let mut client = pg_client(&url)?;
            client.batch_execute(
                "BEGIN; SELECT member_id FROM balances WHERE member_id = 2 FOR UPDATE",
            )?;
            Ok::<_, postgres::Error>(client)
        })?;
        let waiting = |at_least: i64| {
            let db = &a.test_db;
            async move {
                loop {
                    let now = db.row(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
                    )?[0];
                    if now >= at_least {
                        return Ok::<_, Box<dyn std::error::Error>>(());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        };
        let apply = admin.rerate(&fields);
        let sent = async {
            waiting(1).await?;
            let sync = report();
            let release = async {
                waiting(2).await?;
                // Committed and closed off the runtime's threads (the client blocks).
                blocking(move || {
                    let mut holder = holder;
                    holder.batch_execute("COMMIT")
                })?;
                Ok::<_, Box<dyn std::error::Error>>(())
            };
            let (sent, released) = tokio::join!(sync, release);
            released?;
            sent
        };
        let (applied, sent) = tokio::join!(apply, sent);
        (applied?, sent?)
    } else {
        // One writer: the apply and a write group take turns, the report's after the apply.
        let applied = admin.rerate(&fields).await?;
        (applied, report().await?)
    };
    assert_eq!(applied.status, 303, "{}", applied.body);
    assert_eq!(result(&sent, 0)["status"], "accepted", "{}", sent.body);
    assert_eq!(result(&sent, 0)["points"], 170, "{}", sent.body);
    assert_eq!(balance_of(&a, 1)?, [340, 0]);
    Ok(())
}
