//! `palpal token`: runs the built binary to make a key, issue tokens (with QR codes read back
//! by `zbarimg`) and verify them, checking the exit code and what it says.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const NOW: &str = "2026-01-15T10:00:00+09:00";

fn palpal(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palpal"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run palpal");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait for palpal")
}

/// A folder with an issuing key (id 1) and the published key set `keys.json`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("make a temporary folder");
        let f = Fixture { dir };
        let out = palpal(
            &[
                "token",
                "keygen",
                "--out",
                &f.path("issuer.json"),
                "--not-before",
                "2025-12-01T00:00:00Z",
                "--publish",
                &f.path("keys.json"),
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(printed["keys"][0]["key_id"], 1);
        f
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Issues a token; returns its text.
    fn issue(&self, extra: &[&str]) -> String {
        let key = self.path("issuer.json");
        let mut args = vec!["token", "issue", "--key", &key, "--now", NOW];
        args.extend_from_slice(extra);
        let out = palpal(&args, None);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        text.trim_end_matches('\n').to_owned()
    }
}

/// What `palpal token verify` should do.
enum Expect<'a> {
    /// Exit 0, printing claims with these fields.
    Claims(&'a [(&'a str, serde_json::Value)]),
    /// Exit 1: refused with this code, explained in Korean, then English.
    Refused(&'a str),
    /// Exit 2: the input must be fixed.
    BadInput,
}

#[track_caller]
fn check(args: &[&str], stdin: Option<&str>, expect: Expect<'_>) {
    let out = palpal(args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match expect {
        Expect::Claims(fields) => {
            assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
            let claims: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            for (name, value) in fields {
                assert_eq!(&claims[name], value, "{name} in {claims}");
            }
        }
        Expect::Refused(code) => {
            assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
            let tag = format!("[{code}]");
            let ko = stderr.find(&format!("토큰을 받을 수 없습니다 {tag}"));
            let en = stderr.find(&format!("refused {tag}"));
            assert!(
                matches!((ko, en), (Some(k), Some(e)) if k < e),
                "stderr: {stderr}"
            );
            assert!(out.stdout.is_empty());
        }
        Expect::BadInput => {
            assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
            assert!(stderr.contains(" / "), "Korean / English: {stderr}");
        }
    }
}

fn verify_args<'a>(keys: &'a str, token: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["token", "verify", "--keys", keys, "--token", token];
    args.extend_from_slice(extra);
    args
}

#[test]
fn tokens_are_issued_verified_and_refused_with_reasons() {
    let f = Fixture::new();
    let keys = f.path("keys.json");
    let dynamic = f.issue(&["--member", "PP-00000042", "--kind", "dynamic"]);
    let card = f.issue(&[
        "--member",
        "PP-00000042",
        "--kind",
        "card",
        "--pin",
        "123456",
        "--pin-cost",
        "8",
    ]);
    let revoked = f.path("revoked.json");
    std::fs::write(&revoked, r#"{"members": ["PP-00000042"]}"#).expect("write");
    let other_keys = f.path("other-keys.json");
    let other = palpal(
        &[
            "token",
            "keygen",
            "--out",
            &f.path("other.json"),
            "--key-id",
            "7",
            "--publish",
            &other_keys,
        ],
        None,
    );
    assert_eq!(other.status.code(), Some(0), "{other:?}");
    let mut tampered = dynamic.clone().into_bytes();
    // The last characters are the signature's.
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).expect("ASCII");

    let missing = f.path("missing.json");
    let scanned = format!("{dynamic}\r\n");
    let at = |t: &'static str| vec!["--now", t];
    let now = at(NOW);
    let later = at("2026-01-15T10:02:00+09:00");
    let early = at("2026-01-15T09:59:29+09:00");
    let kind = |k: &str| ("kind", serde_json::json!(k));
    let member = ("member", serde_json::json!("PP-00000042"));
    let cases: Vec<(Vec<&str>, Option<&str>, Expect<'_>)> = vec![
        (
            verify_args(&keys, &dynamic, &now),
            None,
            Expect::Claims(&[]),
        ),
        (
            verify_args(&keys, &dynamic, &later),
            None,
            Expect::Refused("expired"),
        ),
        (
            verify_args(&keys, &dynamic, &early),
            None,
            Expect::Refused("not_yet_valid"),
        ),
        (
            verify_args(&keys, &tampered, &now),
            None,
            Expect::Refused("tampered"),
        ),
        (
            verify_args(&other_keys, &dynamic, &now),
            None,
            Expect::Refused("unknown_key_id"),
        ),
        (
            verify_args(&keys, "8801234567890", &now),
            None,
            Expect::Refused("malformed"),
        ),
        (
            verify_args(
                &keys,
                &dynamic,
                &[&now[..], &["--revoked", &revoked]].concat(),
            ),
            None,
            Expect::Refused("revoked_member"),
        ),
        (
            verify_args(&keys, &card, &now),
            None,
            Expect::Refused("pin_required"),
        ),
        (
            verify_args(&keys, &card, &[&now[..], &["--pin", "000000"]].concat()),
            None,
            Expect::Refused("wrong_pin"),
        ),
        (
            verify_args(&keys, "-", &now),
            Some(&scanned),
            Expect::Claims(&[]),
        ),
        (
            verify_args(&keys, &dynamic, &["--now", "yesterday"]),
            None,
            Expect::BadInput,
        ),
        (
            verify_args(&missing, &dynamic, &now),
            None,
            Expect::BadInput,
        ),
    ];
    for (args, stdin, expect) in cases {
        check(&args, stdin, expect);
    }
    check(
        &verify_args(&keys, &dynamic, &now),
        None,
        Expect::Claims(&[kind("dynamic"), member.clone(), ("key_id", 1.into())]),
    );
    check(
        &verify_args(&keys, &card, &[&now[..], &["--pin", "123456"]].concat()),
        None,
        Expect::Claims(&[kind("card"), member, ("card_serial", 1.into())]),
    );
}

#[test]
fn issuing_refuses_bad_input_and_keygen_never_overwrites() {
    let f = Fixture::new();
    let key = f.path("issuer.json");
    for extra in [
        &["--member", "42", "--kind", "dynamic"][..],
        &["--member", "PP-1", "--kind", "card"],
        &["--member", "PP-1", "--kind", "card", "--pin", "12ab56"],
        &["--member", "PP-1", "--kind", "dynamic", "--ttl", "121"],
    ] {
        let mut args = vec!["token", "issue", "--key", &key];
        args.extend_from_slice(extra);
        let out = palpal(&args, None);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {out:?}");
    }
    let before = std::fs::read(&key).expect("read the key");
    let out = palpal(&["token", "keygen", "--out", &key], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(std::fs::read(&key).expect("read the key"), before);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).expect("stat").permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the secret key is readable by others: {mode:o}"
        );
    }
}

fn zbarimg(png: &Path) -> String {
    let out = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(png)
        .output()
        .expect("run zbarimg (Debian package zbar-tools)");
    assert!(out.status.success(), "zbarimg: {out:?}");
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim_end_matches('\n')
        .to_owned()
}

#[test]
fn qr_codes_are_version_6_and_read_back() {
    let f = Fixture::new();
    for (name, extra) in [
        ("dynamic", &["--kind", "dynamic"][..]),
        (
            "card",
            &["--kind", "card", "--pin", "123456", "--pin-cost", "8"],
        ),
    ] {
        let png = PathBuf::from(f.path(&format!("{name}.png")));
        let key = f.path("issuer.json");
        let png_arg = png.display().to_string();
        let mut args = vec![
            "token",
            "issue",
            "--key",
            &key,
            "--member",
            "PP-00000042",
            "--qr",
            &png_arg,
        ];
        args.extend_from_slice(extra);
        let out = palpal(&args, None);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("QR version 6 "), "{name}: {stderr}");
        assert_eq!(zbarimg(&png), text.trim_end_matches('\n'), "{name}");
    }
}
