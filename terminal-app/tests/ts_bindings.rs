//! The UI's TypeScript types of every command's arguments, results and errors are generated
//! from these Rust types (ts-rs) into `ui/src/bindings/`, and this test fails when what is
//! there is not what the Rust types make now. After changing a type that crosses IPC, run
//! `PALPAL_UPDATE_BINDINGS=1 cargo test -p terminal-app --test ts_bindings` and commit the files.

#![allow(clippy::unwrap_used)] // a test file: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use terminal_app::commands::{ApplicantInput, MemberView, PairedWatch, TerminalInfo, WatchSynced};
use terminal_app::counter::{Exported, ReceiptView, Redeemed, Scanned, SettlementView, Voided};
use terminal_app::error::{CommandError, Lang};
use terminal_app::kiosk::{
    CardView, ConsentInput, ContactInput, IdentityChecked, KioskSetup, Printed, Registered, Spoken,
    TicketView,
};
use terminal_app::replace::ReplacementAllowed;
use terminal_app::setup::{OfferRead, Provisioned};
use terminal_app::sync::SyncStatus;
use terminal_app::watch::WatchChoice;
use terminal_store::ConfirmedEnrollment;
use ts_rs::{Config, TS};

fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("ui")
        .join("src")
        .join("bindings")
}

/// Every type a command takes or answers, with all it refers to.
fn export_all(cfg: &Config) -> Result<(), ts_rs::ExportError> {
    macro_rules! export {
        ($($t:ty),* $(,)?) => { $( <$t as TS>::export_all(cfg)?; )* };
    }
    export!(
        TerminalInfo,
        Lang,
        ApplicantInput,
        ConfirmedEnrollment,
        MemberView,
        WatchChoice,
        WatchSynced,
        PairedWatch,
        SyncStatus,
        Scanned,
        Redeemed,
        Voided,
        ReceiptView,
        SettlementView,
        Exported,
        KioskSetup,
        IdentityChecked,
        ConsentInput,
        ContactInput,
        Registered,
        TicketView,
        CardView,
        Printed,
        Spoken,
        OfferRead,
        Provisioned,
        ReplacementAllowed,
        CommandError,
    );
    Ok(())
}

/// The files of `dir` (`.ts` only), by name.
fn files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "ts"))
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read_to_string(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_uis_types_are_the_ones_the_rust_types_make() {
    let generated = tempfile::tempdir().unwrap();
    let cfg = Config::new()
        .with_large_int("number")
        .with_out_dir(generated.path());
    export_all(&cfg).unwrap();
    let now = files(generated.path());
    assert!(now.contains_key("CommandError.ts"), "{:?}", now.keys());
    let committed_dir = committed_dir();
    if std::env::var("PALPAL_UPDATE_BINDINGS").is_ok_and(|v| v == "1") {
        for name in files(&committed_dir).keys() {
            std::fs::remove_file(committed_dir.join(name)).unwrap();
        }
        std::fs::create_dir_all(&committed_dir).unwrap();
        for (name, text) in &now {
            std::fs::write(committed_dir.join(name), text).unwrap();
        }
        eprintln!("wrote {} files to {}", now.len(), committed_dir.display());
        return;
    }
    let committed = files(&committed_dir);
    let stale: Vec<&String> = now
        .keys()
        .chain(committed.keys())
        .filter(|name| now.get(*name) != committed.get(*name))
        .collect();
    assert!(
        stale.is_empty(),
        "ui/src/bindings/ is stale ({stale:?} differ): run \
         PALPAL_UPDATE_BINDINGS=1 cargo test -p terminal-app --test ts_bindings and commit it"
    );
}
