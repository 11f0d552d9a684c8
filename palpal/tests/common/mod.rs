//! What the real-process tests of `palpal` share: finding the workspace's binaries, reading
//! their output, and confirming enrollments at a kiosk's store.

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{DateTime, FixedOffset};
use kiosk_core::{Enrollment, Residency};
use terminal_store::Store;

pub fn palpal_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_palpal"))
}

/// Another package's binary (`palpal-central`, `fault-proxy`), looked for next to `palpal` in
/// the same target folder.
pub fn sibling_bin(name: &str) -> PathBuf {
    let path = palpal_bin().with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins` \
         (or `cargo build -p palpal-central --bins`) into the same target folder",
        path.display()
    );
    path
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn when() -> DateTime<FixedOffset> {
    // The server takes a sign-up dated only within days of its own clock, the real one here.
    chrono::Utc::now().with_timezone(&points_core::KST)
}

/// Confirms `count` enrollments at the kiosk, numbered from `from`; returns their op ids.
pub fn enroll(db: &Path, from: usize, count: usize) -> Vec<String> {
    let mut store = Store::open(db).expect("open the terminal database");
    (from..from + count)
        .map(|i| {
            let op_id = format!("op-{i:06}");
            let enrollment = Enrollment {
                name: format!("회원{i}"),
                birth_date: "1950-04-01".parse().expect("a date"),
                phone: format!("010{i:08}"),
                residency: Residency::Lives,
                age: 75,
            };
            store
                .record_enrollment(&op_id, "성북구 보건소", &enrollment, when())
                .expect("record an enrollment");
            op_id
        })
        .collect()
}

/// A figure from `palpal sync`'s summary, such as `accepted: 120`.
pub fn summary(out: &Output, field: &str) -> u64 {
    text(&out.stdout)
        .lines()
        .find_map(|l| {
            l.split_once(&format!("{field}: "))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {field} in {}", text(&out.stdout)))
        .parse()
        .expect("a number")
}
