//! Runs the built `palpal` binary on files in a temporary folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn policy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policies")
        .join(format!("{name}.toml"))
}

fn palpal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palpal"))
        .args(args)
        .output()
        .expect("run palpal")
}

/// Writes `csv` to a temporary file, runs `palpal points` on it and returns the output.
fn points(policies: &[PathBuf], birth_date: &str, csv: &str) -> Output {
    let dir = tempfile::tempdir().expect("make a temporary folder");
    let reports = dir.path().join("reports.csv");
    std::fs::write(&reports, csv).expect("write the reports");
    let mut args: Vec<String> = vec!["points".into()];
    for policy in policies {
        args.push("--policy".into());
        args.push(policy.display().to_string());
    }
    args.extend(["--birth-date".into(), birth_date.into()]);
    args.extend(["--reports".into(), reports.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    palpal(&args)
}

#[track_caller]
fn check_ok(policies: &[PathBuf], birth_date: &str, csv: &str, expect: &str) {
    let output = points(policies, birth_date, csv);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    let expect: String = expect
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(String::from_utf8_lossy(&output.stdout), expect);
}

#[test]
fn rates_a_week_of_reports() {
    // Born 1955-12-04: the goal drops to 5,000 steps on Thursday 2025-12-04.
    check_ok(
        &[policy("seoul-2025-12")],
        "1955-12-04",
        "reported_at,day,steps
2025-12-01T21:00:00+09:00,2025-12-01,8000
2025-12-01T22:00:00+09:00,2025-12-01,8000
2025-12-02T21:00:00+09:00,2025-12-02,7000
2025-12-02T22:00:00+09:00,2025-12-02,6000
2025-12-03T12:00:00Z,2025-12-03,9000
2025-12-04T21:00:00+09:00,2025-12-04,5000
2025-12-05T21:00:00+09:00,2025-12-05,80000

2025-12-05T21:30:00+09:00,2025-12-05,12000
2025-12-06T21:00:00+09:00,2025-12-06,9000
2025-12-09T00:00:00+09:00,2025-12-01,9000
2025-11-30T21:00:00+09:00,2025-11-30,9000
",
        r#"
        {"kind":"daily","day":"2025-12-01","points":100,"reported_at":"2025-12-01T21:00:00+09:00"}
        {"ignored":"duplicate","day":"2025-12-01","steps":8000,"reported_at":"2025-12-01T22:00:00+09:00"}
        {"ignored":"lower","day":"2025-12-02","steps":6000,"reported_at":"2025-12-02T22:00:00+09:00"}
        {"kind":"daily","day":"2025-12-03","points":100,"reported_at":"2025-12-03T12:00:00Z"}
        {"kind":"daily","day":"2025-12-04","points":100,"reported_at":"2025-12-04T21:00:00+09:00"}
        {"ignored":"held","day":"2025-12-05","steps":80000,"reported_at":"2025-12-05T21:00:00+09:00"}
        {"kind":"daily","day":"2025-12-05","points":100,"reported_at":"2025-12-05T21:30:00+09:00"}
        {"kind":"daily","day":"2025-12-06","points":100,"reported_at":"2025-12-06T21:00:00+09:00"}
        {"kind":"weekly_bonus","day":"2025-12-06","points":500,"reported_at":"2025-12-06T21:00:00+09:00"}
        {"ignored":"late","day":"2025-12-01","steps":9000,"reported_at":"2025-12-09T00:00:00+09:00"}
        {"ignored":"no_policy","day":"2025-11-30","steps":9000,"reported_at":"2025-11-30T21:00:00+09:00"}
        {"total":1000}
        "#,
    );
}

#[test]
fn each_day_uses_the_policy_in_force() {
    check_ok(
        &[policy("seoul-2025-12"), policy("seoul-2025-03")],
        "1980-01-01",
        "2025-11-30T21:00:00+09:00,2025-11-30,8000\r\n2025-12-01T21:00:00+09:00,2025-12-01,8000\r\n",
        r#"
        {"kind":"daily","day":"2025-11-30","points":200,"reported_at":"2025-11-30T21:00:00+09:00"}
        {"kind":"daily","day":"2025-12-01","points":100,"reported_at":"2025-12-01T21:00:00+09:00"}
        {"total":300}
        "#,
    );
}

#[test]
fn events_special_days_and_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let small_cap = dir.path().join("small-cap.toml");
    let text = std::fs::read_to_string(policy("example-event")).unwrap();
    std::fs::write(&small_cap, text.replace("points = 75000", "points = 1500")).unwrap();
    check_ok(
        &[small_cap],
        "1980-01-01",
        "2025-12-15T21:00:00+09:00,2025-12-15,8000
2025-12-16T21:00:00+09:00,2025-12-16,8000
2025-12-17T21:00:00+09:00,2025-12-17,8000
2025-12-18T21:00:00+09:00,2025-12-18,8000
2025-12-19T21:00:00+09:00,2025-12-19,8000
2025-12-20T21:00:00+09:00,2025-12-20,8000
2025-12-21T21:00:00+09:00,2025-12-21,8000
2026-09-09T21:00:00+09:00,2026-09-09,8000
",
        r#"
        {"kind":"daily","day":"2025-12-15","points":100,"reported_at":"2025-12-15T21:00:00+09:00"}
        {"kind":"event","day":"2025-12-15","points":200,"reported_at":"2025-12-15T21:00:00+09:00"}
        {"kind":"daily","day":"2025-12-16","points":100,"reported_at":"2025-12-16T21:00:00+09:00"}
        {"kind":"event","day":"2025-12-16","points":200,"reported_at":"2025-12-16T21:00:00+09:00"}
        {"kind":"daily","day":"2025-12-17","points":100,"reported_at":"2025-12-17T21:00:00+09:00"}
        {"kind":"event","day":"2025-12-17","points":200,"reported_at":"2025-12-17T21:00:00+09:00"}
        {"kind":"daily","day":"2025-12-18","points":100,"reported_at":"2025-12-18T21:00:00+09:00"}
        {"kind":"event","day":"2025-12-18","points":200,"reported_at":"2025-12-18T21:00:00+09:00"}
        {"kind":"daily","day":"2025-12-19","points":100,"reported_at":"2025-12-19T21:00:00+09:00"}
        {"kind":"event","day":"2025-12-19","points":200,"reported_at":"2025-12-19T21:00:00+09:00"}
        {"ignored":"capped","day":"2025-12-20","steps":8000,"reported_at":"2025-12-20T21:00:00+09:00"}
        {"ignored":"capped","day":"2025-12-21","steps":8000,"reported_at":"2025-12-21T21:00:00+09:00"}
        {"kind":"daily","day":"2026-09-09","points":100,"reported_at":"2026-09-09T21:00:00+09:00"}
        {"kind":"special_day","day":"2026-09-09","points":1000,"reported_at":"2026-09-09T21:00:00+09:00"}
        {"total":2600}
        "#,
    );
}

/// A malformed file: exit code 2, nothing on standard output, and a message that names the
/// line, Korean first, then English.
#[track_caller]
fn check_malformed(csv: &str, korean: &str, english: &str) {
    let output = points(&[policy("seoul-2025-12")], "1980-01-01", csv);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    let korean_at = stderr
        .find(korean)
        .unwrap_or_else(|| panic!("{korean:?} in {stderr}"));
    let english_at = stderr
        .find(english)
        .unwrap_or_else(|| panic!("{english:?} in {stderr}"));
    assert!(korean_at < english_at, "Korean first: {stderr}");
    assert!(stderr.contains("다시 실행하세요"), "{stderr}");
    assert!(stderr.contains("run again"), "{stderr}");
}

const GOOD: &str = "2025-12-01T21:00:00+09:00,2025-12-01,9000\n";

#[test]
fn malformed_reports_print_nothing() {
    let after_two = |row: &str| format!("reported_at,day,steps\n{GOOD}{row}\n");
    check_malformed(
        &after_two("2025-12-02T21:00:00+09:00,2025-12-02,abc"),
        "3행: 걸음 수가 숫자가 아닙니다('abc')",
        "line 3: steps 'abc' is not a number",
    );
    check_malformed(
        &after_two("2025-12-02T21:00:00+09:00,2025-12-02,-5"),
        "3행: 걸음 수가 음수입니다('-5')",
        "line 3: steps '-5' is negative",
    );
    check_malformed(
        &after_two("2025-12-02T21:00:00+09:00,2025-12-02,99999999999"),
        "3행: 걸음 수가 너무 큽니다",
        "line 3: steps '99999999999' is too large",
    );
    check_malformed(
        &after_two("2025-12-02T21:00:00+09:00,2025-12-02,"),
        "3행: 걸음 수가 숫자가 아닙니다('')",
        "line 3: steps '' is not a number",
    );
    check_malformed(
        &after_two("2025-12-02 21:00,2025-12-02,9000"),
        "3행: 보고 시각이",
        "line 3: reported_at '2025-12-02 21:00' is not an RFC 3339 timestamp",
    );
    check_malformed(
        &after_two("2025-12-02T21:00:00,2025-12-02,9000"),
        "3행: 보고 시각이",
        "line 3: reported_at '2025-12-02T21:00:00' is not an RFC 3339 timestamp with offset",
    );
    check_malformed(
        &after_two("2025-12-02T21:00:00+09:00,2025-13-02,9000"),
        "3행: 날짜가",
        "line 3: day '2025-13-02' is not a date",
    );
    check_malformed(
        &after_two("2025-12-02T21:00:00+09:00,2025-12-02"),
        "3행: 열이 2개입니다",
        "line 3: expected 3 columns (reported_at,day,steps), found 2",
    );
    check_malformed(
        &after_two("2025-12-02T21:00:00+09:00,2025-12-02,9000,extra"),
        "3행: 열이 4개입니다",
        "line 3: expected 3 columns (reported_at,day,steps), found 4",
    );
    check_malformed(
        &format!("{GOOD}{GOOD}reported_at,day,steps\n"),
        "3행: 보고 시각이",
        "line 3: reported_at 'reported_at' is not",
    );
    check_malformed(
        "2025-12-01T21:00:00+09:00,2025-12-01,9000\n\n\n2025-12-04,2025-12-04,9000\n",
        "4행: 보고 시각이",
        "line 4: reported_at '2025-12-04' is not",
    );
}

#[test]
fn unreadable_files_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports.csv");
    std::fs::write(&reports, GOOD).unwrap();
    let bad_policy = dir.path().join("bad.toml");
    std::fs::write(&bad_policy, "name = \"bad\"\n").unwrap();
    let missing = dir.path().join("missing.toml");
    let reports = reports.display().to_string();
    let good_policy = policy("seoul-2025-12");
    let cases = [
        (
            vec!["--policy", missing.to_str().unwrap(), "--reports", &reports],
            "정책 파일을 읽을 수 없습니다",
            "cannot read the policy file",
        ),
        (
            vec![
                "--policy",
                bad_policy.to_str().unwrap(),
                "--reports",
                &reports,
            ],
            "정책 파일이 올바르지 않습니다",
            "is not valid; fix it and run again",
        ),
        (
            vec![
                "--policy",
                good_policy.to_str().unwrap(),
                "--reports",
                missing.to_str().unwrap(),
            ],
            "걸음 보고 파일을 읽을 수 없습니다",
            "cannot read the reports file",
        ),
    ];
    for (args, korean, english) in cases {
        let mut all = vec!["points", "--birth-date", "1980-01-01"];
        all.extend(args);
        let output = palpal(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), "");
        assert!(stderr.contains(korean), "{korean:?} in {stderr}");
        assert!(stderr.contains(english), "{english:?} in {stderr}");
    }
}

#[test]
fn bad_birth_date_exits_2() {
    let policy = policy("seoul-2025-12");
    let output = palpal(&[
        "points",
        "--policy",
        policy.to_str().unwrap(),
        "--birth-date",
        "1955-13-04",
        "--reports",
        "unused.csv",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    assert!(stderr.contains("생년월일은 YYYY-MM-DD"), "{stderr}");
}
