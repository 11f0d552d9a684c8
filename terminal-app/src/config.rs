//! The terminal's configuration file: which role this binary plays, at which site, and where
//! its database lives.
//!
//! ```toml
//! role = "kiosk"              # or "counter"
//! site = "jongno-cc"          # the site's id, as the central server knows it
//! site_name = "종로구 보건소"   # shown on screen
//! database = "terminal.sqlite" # relative to the configuration file's folder
//! demo = false                # fill an empty database with the demo data set
//! # fixed_now = "2025-12-03T10:00:00+09:00"  # a fixed clock, for demos and tests
//! sync_interval_s = 30        # seconds between background syncs, once provisioned
//! setup_screen = true         # not provisioned: open on the setup screen [default: not demo]
//!
//! [kiosk]                     # optional, the sign-up kiosk's settings
//! printer = "/dev/usb/lp0"    # ESC/POS receipt printer (device or file); unset: page only
//! warn_after_s = 90           # idle seconds before "계속하시겠습니까?"
//! clear_after_s = 120         # further idle seconds before the screen is cleared
//! speech = "espeak-ng"        # the speech program (`-v ko`); missing: text only
//!
//! [counter]                   # optional, the store counter's settings
//! printer = "/dev/usb/lp0"    # ESC/POS receipt printer (device or file); unset: page only
//! exports = "settlements"     # folder for settlement CSV files [default: beside the database]
//!
//! [screen]                    # optional: size text and buttons in millimetres
//! diagonal_inches = 32.0
//! width_px = 1080
//! height_px = 1920
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

/// What this terminal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The community-center sign-up kiosk.
    Kiosk,
    /// The pharmacy or convenience-store counter.
    Counter,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    role: Role,
    site: String,
    site_name: Option<String>,
    database: Option<PathBuf>,
    #[serde(default)]
    demo: bool,
    fixed_now: Option<DateTime<FixedOffset>>,
    screen: Option<kiosk_core::screen::Screen>,
    sync_interval_s: Option<u64>,
    setup_screen: Option<bool>,
    #[serde(default)]
    kiosk: KioskSettings,
    #[serde(default)]
    counter: CounterSettings,
}

/// The store counter's settings (`[counter]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CounterSettings {
    /// Where ESC/POS bytes for the receipt printer go (a device such as `/dev/usb/lp0`, or a
    /// file); relative to the configuration file's folder. None: the printable page only.
    pub printer: Option<PathBuf>,
    /// The folder settlement CSV files are saved to; relative to the configuration file's
    /// folder. None: a `settlements` folder beside the database.
    pub exports: Option<PathBuf>,
}

/// The sign-up kiosk's settings (`[kiosk]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KioskSettings {
    /// Where ESC/POS bytes for the receipt printer go (a device such as `/dev/usb/lp0`, or a
    /// file); relative to the configuration file's folder. None: the printable page only.
    pub printer: Option<PathBuf>,
    /// Seconds without a touch before the screen asks "계속하시겠습니까?".
    pub warn_after_s: u32,
    /// Seconds after that warning before what was typed is cleared.
    pub clear_after_s: u32,
    /// The speech program, run as `PROGRAM -v ko -a VOLUME -s SPEED TEXT`.
    pub speech: String,
}

impl Default for KioskSettings {
    fn default() -> Self {
        KioskSettings {
            printer: None,
            warn_after_s: 90,
            clear_after_s: 120,
            speech: "espeak-ng".to_owned(),
        }
    }
}

/// The configuration, with paths made absolute.
#[derive(Debug, Clone)]
pub struct TerminalConfig {
    pub role: Role,
    pub site: String,
    pub site_name: String,
    pub database: PathBuf,
    pub demo: bool,
    pub fixed_now: Option<DateTime<FixedOffset>>,
    /// The physical screen, so text and touch targets can be sized in millimetres.
    pub screen: Option<kiosk_core::screen::Screen>,
    /// Seconds between background syncs with the central server (30 unless configured).
    pub sync_interval_s: u64,
    /// Whether a terminal not provisioned opens on the setup screen (scan the console's
    /// enrollment QR code). On unless configured off, or for a demo; a terminal with it off
    /// works offline until provisioned with `palpal provision`.
    pub setup_screen: bool,
    /// The sign-up kiosk's printer, inactivity timings and speech.
    pub kiosk: KioskSettings,
    /// The counter's receipt printer and settlement exports.
    pub counter: CounterSettings,
}

impl TerminalConfig {
    /// Reads the configuration file at `path`.
    pub fn load(path: &Path) -> Result<TerminalConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the configuration file {}", path.display()))?;
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")))
            .with_context(|| format!("in the configuration file {}", path.display()))
    }

    /// Parses configuration text; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<TerminalConfig> {
        let file: ConfigFile = toml::from_str(text)?;
        let site = file.site.trim().to_owned();
        if site.is_empty() {
            bail!("`site` is empty: give the site's id as the central server knows it");
        }
        let database = file
            .database
            .unwrap_or_else(|| PathBuf::from("terminal.sqlite"));
        let database = if database.is_absolute() {
            database
        } else {
            base.join(database)
        };
        let mut kiosk = file.kiosk;
        kiosk.printer = kiosk
            .printer
            .map(|p| if p.is_absolute() { p } else { base.join(p) });
        if kiosk.warn_after_s == 0 || kiosk.clear_after_s == 0 {
            bail!("`[kiosk]` warn_after_s and clear_after_s must be at least 1 second");
        }
        let absolute = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let counter = CounterSettings {
            printer: file.counter.printer.map(absolute),
            exports: file.counter.exports.map(absolute),
        };
        let sync_interval_s = file.sync_interval_s.unwrap_or(30);
        if sync_interval_s == 0 {
            bail!("`sync_interval_s` must be at least 1 second");
        }
        Ok(TerminalConfig {
            kiosk,
            counter,
            sync_interval_s,
            setup_screen: file.setup_screen.unwrap_or(!file.demo),
            role: file.role,
            site_name: file.site_name.unwrap_or_else(|| site.clone()),
            site,
            database,
            demo: file.demo,
            fixed_now: file.fixed_now,
            screen: match file.screen {
                Some(s) if !(s.diagonal_inches > 0.0 && s.width_px > 0 && s.height_px > 0) => {
                    bail!("`[screen]` needs a positive diagonal_inches, width_px and height_px")
                }
                other => other,
            },
        })
    }

    /// Where to look for the configuration: `--config PATH`, then `PALPAL_CONFIG`, then the
    /// user's configuration folder.
    pub fn locate(args: &[String], env: Option<String>, config_home: Option<PathBuf>) -> PathBuf {
        if let Some(i) = args.iter().position(|a| a == "--config") {
            if let Some(p) = args.get(i + 1) {
                return PathBuf::from(p);
            }
        }
        if let Some(p) = args.iter().find_map(|a| a.strip_prefix("--config=")) {
            return PathBuf::from(p);
        }
        if let Some(p) = env.filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        config_home
            .unwrap_or_else(|| PathBuf::from("."))
            .join("palpal")
            .join("terminal.toml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_database_is_beside_the_file() {
        let c = TerminalConfig::parse(
            "role = \"kiosk\"\nsite = \"jongno\"\ndatabase = \"k.sqlite\"\n",
            Path::new("/srv/palpal"),
        )
        .unwrap();
        assert_eq!(c.role, Role::Kiosk);
        assert_eq!(c.site_name, "jongno");
        assert_eq!(c.database, Path::new("/srv/palpal/k.sqlite"));
        assert!(!c.demo);
    }

    #[test]
    fn unknown_role_and_keys_and_empty_site_are_refused() {
        let base = Path::new("/srv");
        let e = TerminalConfig::parse("role = \"atm\"\nsite = \"x\"\n", base).unwrap_err();
        assert!(format!("{e:#}").contains("atm"), "{e:#}");
        let e =
            TerminalConfig::parse("role = \"kiosk\"\nsite = \"x\"\nsit = 1\n", base).unwrap_err();
        assert!(format!("{e:#}").contains("sit"), "{e:#}");
        let e = TerminalConfig::parse("role = \"kiosk\"\nsite = \" \"\n", base).unwrap_err();
        assert!(format!("{e:#}").contains("site"), "{e:#}");
    }

    #[test]
    fn screen_is_optional_and_must_be_positive() {
        let base = Path::new("/srv");
        let c = TerminalConfig::parse(
            "role = \"kiosk\"\nsite = \"x\"\n[screen]\ndiagonal_inches = 32.0\nwidth_px = 1080\nheight_px = 1920\n",
            base,
        )
        .unwrap();
        assert_eq!(c.screen.unwrap().sizes().body_font_px, 37.0);
        let e = TerminalConfig::parse(
            "role = \"kiosk\"\nsite = \"x\"\n[screen]\ndiagonal_inches = 0.0\nwidth_px = 1080\nheight_px = 1920\n",
            base,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("diagonal_inches"), "{e:#}");
    }

    #[test]
    fn kiosk_settings_have_defaults_and_a_printer_beside_the_file() {
        let base = Path::new("/srv");
        let c = TerminalConfig::parse("role = \"kiosk\"\nsite = \"x\"\n", base).unwrap();
        assert_eq!(c.kiosk, KioskSettings::default());
        let c = TerminalConfig::parse(
            "role = \"kiosk\"\nsite = \"x\"\n[kiosk]\nprinter = \"card.bin\"\nwarn_after_s = 5\n",
            base,
        )
        .unwrap();
        assert_eq!(c.kiosk.printer.as_deref(), Some(Path::new("/srv/card.bin")));
        assert_eq!((c.kiosk.warn_after_s, c.kiosk.clear_after_s), (5, 120));
        let e = TerminalConfig::parse(
            "role = \"kiosk\"\nsite = \"x\"\n[kiosk]\nclear_after_s = 0\n",
            base,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("clear_after_s"), "{e:#}");
    }

    #[test]
    fn the_sync_interval_is_30_seconds_unless_configured_and_never_zero() {
        let base = Path::new("/srv");
        let c = TerminalConfig::parse("role = \"kiosk\"\nsite = \"x\"\n", base).unwrap();
        assert_eq!(c.sync_interval_s, 30);
        let c = TerminalConfig::parse(
            "role = \"kiosk\"\nsite = \"x\"\nsync_interval_s = 5\n",
            base,
        )
        .unwrap();
        assert_eq!(c.sync_interval_s, 5);
        let e = TerminalConfig::parse(
            "role = \"kiosk\"\nsite = \"x\"\nsync_interval_s = 0\n",
            base,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("sync_interval_s"), "{e:#}");
    }

    #[test]
    fn config_is_found_by_argument_then_environment_then_home() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let home = Some(PathBuf::from("/home/x/.config"));
        assert_eq!(
            TerminalConfig::locate(
                &args(&["app", "--config", "a.toml"]),
                Some("b".into()),
                home.clone()
            ),
            PathBuf::from("a.toml")
        );
        assert_eq!(
            TerminalConfig::locate(&args(&["app", "--config=c.toml"]), None, home.clone()),
            PathBuf::from("c.toml")
        );
        assert_eq!(
            TerminalConfig::locate(&args(&["app"]), Some("b.toml".into()), home.clone()),
            PathBuf::from("b.toml")
        );
        assert_eq!(
            TerminalConfig::locate(&args(&["app"]), None, home),
            PathBuf::from("/home/x/.config/palpal/terminal.toml")
        );
    }
}
