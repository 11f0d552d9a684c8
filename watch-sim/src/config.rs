//! What the simulator serves: the adapter, the watches, their history and their faults.
//!
//! Read from a TOML file (`--config`) or built from the command line (`--watches N --days D
//! --seed S`). Every field has a default, so `[[watch]]` alone is a healthy watch.

use std::path::Path;

use anyhow::{bail, Context};
use chrono::{Days, NaiveDate};
use serde::Deserialize;
use watch_protocol::{HistoryRecord, WatchHistory};

/// The whole simulation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The local Bluetooth adapter.
    #[serde(default)]
    pub adapter: AdapterConfig,
    /// The ATT MTU the watches negotiate: History Data notifications carry `mtu - 3` bytes.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// Devices that advertise only the Heart Rate service (a chest strap, say): a scan
    /// filtered by the Palpal service must not list them.
    #[serde(default)]
    pub bystanders: u32,
    /// The simulated watches.
    #[serde(default, rename = "watch")]
    pub watches: Vec<WatchConfig>,
}

fn default_mtu() -> u16 {
    247
}

/// The terminal's Bluetooth adapter, `hci0`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdapterConfig {
    /// Whether `hci0` exists at all (false: BlueZ runs but the terminal has no adapter).
    pub present: bool,
    /// Whether it starts powered.
    pub powered: bool,
    /// Blocked by rfkill (a hardware switch or airplane mode): powering it on fails.
    pub blocked: bool,
    /// Its address.
    pub address: String,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        AdapterConfig {
            present: true,
            powered: true,
            blocked: false,
            address: "00:1A:7D:DA:71:13".into(),
        }
    }
}

/// One simulated watch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// Serial Number String; its last four characters are the short code the watch face
    /// shows and the advertised name carries (`Palpal-0042`).
    pub serial: String,
    /// Bluetooth address; derived from the watch's position when absent.
    #[serde(default)]
    pub address: Option<String>,
    /// Signal strength the adapter reports, in dBm (nearer is higher).
    #[serde(default = "default_rssi")]
    pub rssi: i16,
    /// Battery Level, percent.
    #[serde(default = "default_battery")]
    pub battery: u8,
    /// Model Number String.
    #[serde(default = "default_model")]
    pub model: String,
    /// Firmware Revision String.
    #[serde(default = "default_firmware")]
    pub firmware: String,
    /// Days of hourly history stored (24 hour-steps records, 24 heart-rate samples and the
    /// day's total per day).
    #[serde(default = "default_days")]
    pub days: u32,
    /// The last day of history (KST); today when absent.
    #[serde(default)]
    pub until: Option<NaiveDate>,
    /// Sequence number of the oldest stored record.
    #[serde(default)]
    pub first_seq: u32,
    /// Seed of the step and heart-rate numbers.
    #[serde(default)]
    pub seed: u64,
    /// How far the watch clock runs ahead (positive) or behind, in seconds, until a terminal
    /// sets it.
    #[serde(default)]
    pub clock_drift_seconds: i64,
    /// Faults to inject.
    #[serde(default)]
    pub faults: Faults,
}

fn default_rssi() -> i16 {
    -60
}
fn default_battery() -> u8 {
    85
}
fn default_model() -> String {
    "Palpal Watch 1".into()
}
fn default_firmware() -> String {
    "1.4.2".into()
}
fn default_days() -> u32 {
    30
}

/// Faults a watch injects. Notification indexes count from 0 within one answer to a
/// history request; each fault fires in the first `times` answers that reach it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// The link drops after this many notifications of an answer.
    pub disconnect: Option<At>,
    /// This notification is never sent (the radio lost it).
    pub drop: Option<At>,
    /// One bit of this notification is flipped on the air.
    pub corrupt: Option<At>,
    /// The watch stops streaming at this notification, sending nothing more until aborted.
    pub stall: Option<At>,
    /// Pause before each History Data notification, in milliseconds (a slow link).
    pub notification_delay_ms: u64,
    /// The first this many connection attempts fail.
    pub connect_failures: u32,
    /// The watch is seen, faintly, but every connection attempt fails.
    pub out_of_range: bool,
    /// The watch does not advertise: a scan never finds it.
    pub silent: bool,
}

/// Where a fault fires and how many times.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct At {
    /// Notification index within an answer.
    pub at: usize,
    /// How many answers it fires in.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl Config {
    /// Reads a TOML file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the simulator configuration {}", path.display()))?;
        let config: Config = toml::from_str(&text)
            .with_context(|| format!("parsing the simulator configuration {}", path.display()))?;
        config.check()?;
        Ok(config)
    }

    /// `n` healthy watches with `days` of history each, numbers drawn from `seed`.
    pub fn generated(n: u32, days: u32, seed: u64) -> Config {
        let watches = (0..n)
            .map(|i| WatchConfig {
                serial: format!("PW-{:04}", i + 1),
                address: None,
                rssi: -50 - 7 * (i as i16 % 7),
                battery: default_battery(),
                model: default_model(),
                firmware: default_firmware(),
                days,
                until: None,
                first_seq: 0,
                seed: seed.wrapping_add(u64::from(i)),
                clock_drift_seconds: 0,
                faults: Faults::default(),
            })
            .collect();
        Config {
            adapter: AdapterConfig::default(),
            mtu: default_mtu(),
            bystanders: 0,
            watches,
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        if !(23..=517).contains(&self.mtu) {
            bail!("mtu {} is outside 23..=517", self.mtu);
        }
        for w in &self.watches {
            if w.battery > 100 {
                bail!("watch {}: battery {} is above 100", w.serial, w.battery);
            }
            if w.serial.is_empty() {
                bail!("a watch has an empty serial");
            }
        }
        Ok(())
    }
}

impl WatchConfig {
    /// The short code the watch face shows: the serial's last four characters.
    pub fn short_code(&self) -> String {
        let chars: Vec<char> = self.serial.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    }

    /// The stored history: `days` days ending `until` (or `today`).
    pub fn history(&self, today: NaiveDate) -> anyhow::Result<WatchHistory> {
        let until = self.until.unwrap_or(today);
        let first = until
            .checked_sub_days(Days::new(u64::from(self.days.saturating_sub(1))))
            .context("history starts before the calendar does")?;
        let mut rng = SplitMix64(self.seed ^ 0x9988_5eed);
        let mut history = WatchHistory::starting_at(self.first_seq);
        for d in 0..self.days {
            let date = first + Days::new(u64::from(d));
            let active = 0.6 + rng.unit() * 0.8; // some days are lazier than others
            let mut total = 0u32;
            for hour in 0..24u32 {
                let base = match hour {
                    0..=5 => 0.0,
                    6..=8 => 500.0,
                    9..=11 | 14..=17 => 700.0,
                    12..=13 => 1100.0,
                    18..=20 => 1300.0,
                    _ => 150.0,
                };
                let steps = (base * active * (0.5 + rng.unit())) as u32;
                total += steps;
                history
                    .push(HistoryRecord::HourSteps {
                        date,
                        hour: hour as u8,
                        steps,
                    })
                    .context("storing an hour of steps")?;
                let resting = 58.0 + rng.unit() * 8.0;
                let bpm = resting + (steps as f64 / 25.0).min(80.0) + rng.unit() * 6.0;
                let minute = (rng.next() % 60) as u32;
                let at = date
                    .and_hms_opt(hour, minute, (rng.next() % 60) as u32)
                    .context("a heart-rate sample time")?;
                history
                    .push(HistoryRecord::HeartRate { at, bpm: bpm as u8 })
                    .context("storing a heart-rate sample")?;
            }
            history
                .push(HistoryRecord::DaySteps { date, steps: total })
                .context("storing a day's steps")?;
        }
        Ok(history)
    }
}

/// A small seeded generator (SplitMix64), so a seed gives the same history everywhere.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0.0..1.0`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_49_records_and_the_seed_decides_them() {
        let config = Config::generated(2, 3, 7);
        let day = NaiveDate::from_ymd_opt(2025, 12, 1).unwrap();
        let a = config.watches[0].history(day).unwrap();
        assert_eq!(a.len(), 3 * 49);
        assert_eq!(a.seq_range(), Some((0, 3 * 49 - 1)));
        assert_eq!(a, config.watches[0].history(day).unwrap());
        assert_ne!(a, config.watches[1].history(day).unwrap());
        assert_eq!(config.watches[1].short_code(), "0002");
    }

    #[test]
    fn a_file_needs_only_the_serial() {
        let config: Config = toml::from_str(
            "mtu = 23\n[[watch]]\nserial = \"PW-0042\"\n[watch.faults]\ndrop = { at = 3 }\n",
        )
        .unwrap();
        config.check().unwrap();
        let w = &config.watches[0];
        assert_eq!((w.days, w.battery, w.rssi), (30, 85, -60));
        assert_eq!(w.faults.drop.map(|d| (d.at, d.times)), Some((3, 1)));
    }
}
