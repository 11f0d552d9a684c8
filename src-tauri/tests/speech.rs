//! Spoken guidance with the real espeak-ng. A file of its own: the kiosk stops whatever it is
//! saying when the next utterance starts, so other tests speaking in the same process would
//! cut this one short.

#![allow(clippy::unwrap_used)] // a test file: a failed unwrap is a failed test

use serde_json::json;

mod common;
use common::{call, window};

const KIOSK: &str = r#"
role = "kiosk"
site = "jongno-cc"
site_name = "종로구 보건소"
fixed_now = "2025-12-03T10:15:00+09:00"
[kiosk]
speech = "SPEECH"
"#;

/// The real espeak-ng, with a wrapper that writes the speech to a WAV file instead of the
/// speaker (CI has none), measured with sox's `soxi`: the guidance is spoken in Korean, and
/// the speed control really changes how long it takes.
#[test]
fn guidance_is_spoken_by_espeak_ng_and_the_speed_control_works() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("speak-to-file");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nn=$(ls {0} | grep -c '\\.done$' || true)\n\
             espeak-ng -w {0}/said-$n.wav \"$@\" && touch {0}/said-$n.done\n",
            dir.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = KIOSK.replace("SPEECH", &wrapper.display().to_string());
    let terminal_dir = tempfile::tempdir().unwrap();
    let w = window(terminal_dir.path(), &config);
    let text = "이름과 생년월일을 입력해 주세요. 모르는 것은 직원에게 물어보세요.";
    let mut seconds = Vec::new();
    for (n, speed) in [(0, 100), (1, 250)] {
        let spoken = call(
            &w,
            "speak",
            json!({ "text": text, "volume": 100, "speed": speed }),
        )
        .unwrap();
        assert_eq!(spoken["spoken"], true);
        let done = dir.path().join(format!("said-{n}.done"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !done.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "espeak-ng did not finish"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = std::process::Command::new("soxi")
            .arg("-D")
            .arg(dir.path().join(format!("said-{n}.wav")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "soxi: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        seconds.push(
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .parse::<f64>()
                .unwrap(),
        );
    }
    // Two Korean sentences take seconds to say; faster speech takes clearly less time.
    assert!(seconds[0] > 3.0, "{seconds:?}");
    assert!(seconds[1] < seconds[0] * 0.7, "{seconds:?}");
    // Volume 0 says nothing.
    let silent = call(
        &w,
        "speak",
        json!({ "text": text, "volume": 0, "speed": 140 }),
    )
    .unwrap();
    assert_eq!(silent["spoken"], false);
}
