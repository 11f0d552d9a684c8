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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
        Ok(TerminalConfig {
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
