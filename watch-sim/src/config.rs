//! What the simulator serves: the adapter, the watches, their history and their faults.
//!
//! Read from a TOML file (`--config`) or built from the command line (`--watches N --days D
//! --seed S`). Every field has a default, so `[[watch]]` alone is a healthy watch.

use std::path::Path;

use anyhow::{bail, Context};
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use splitmix::SplitMix64;
use watch_protocol::{
    HistoryRecord, WatchCa, WatchCertificate, WatchHistory, WatchKey, KST_OFFSET_SECONDS,
    MIN_MTU_SIGNED,
};

/// The seed of an authority the program does not trust (the `uncertified` fault).
const UNTRUSTED_CA_SEED: [u8; 32] = [0x55; 32];

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
    /// The watch signs nothing: its day totals carry no proof (an old or counterfeit watch).
    pub unsigned: bool,
    /// The last day's total is altered after the watch signed it (a tampered record).
    pub tampered: bool,
    /// The watch's certificate comes from an authority the program does not trust.
    pub uncertified: bool,
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

    /// Refuses what a watch could not do: an MTU outside BLE's, a battery over 100 %, a
    /// signing watch under the MTU its signed records need.
    pub fn check(&self) -> anyhow::Result<()> {
        if !(23..=517).contains(&self.mtu) {
            bail!("mtu {} is outside 23..=517", self.mtu);
        }
        for w in &self.watches {
            if !w.faults.unsigned && self.mtu < MIN_MTU_SIGNED {
                bail!(
                    "watch {}: a signed day record needs an MTU of at least {MIN_MTU_SIGNED}, not {} \
                     (or set faults.unsigned)",
                    w.serial,
                    self.mtu
                );
            }
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

    /// The watch's own key, made from its serial (a simulation: a real watch makes its key
    /// at manufacture and never shows it).
    pub fn key(&self) -> WatchKey {
        let seed = Sha256::new()
            .chain_update(b"palpal simulated watch key\n")
            .chain_update(self.serial.as_bytes())
            .finalize();
        WatchKey::from_seed(seed.into())
    }

    /// The watch's certificate, by the demonstration authority (or, with the `uncertified`
    /// fault, by one nobody trusts).
    pub fn certificate(&self) -> anyhow::Result<WatchCertificate> {
        let ca = if self.faults.uncertified {
            WatchCa::from_seed(UNTRUSTED_CA_SEED)
        } else {
            WatchCa::demo()
        };
        ca.certify(&self.serial, self.key().public_key())
            .context("certifying the watch")
    }

    /// The stored history: `days` days ending `until` (or `today`). Each day's total is
    /// signed as the watch stored it, at the day's last second or `now` if that is earlier,
    /// with the watch's counter one more for each.
    pub fn history(&self, today: NaiveDate, now: DateTime<Utc>) -> anyhow::Result<WatchHistory> {
        let key = self.key();
        let until = self.until.unwrap_or(today);
        let first = until
            .checked_sub_days(Days::new(u64::from(self.days.saturating_sub(1))))
            .context("history starts before the calendar does")?;
        let mut rng = SplitMix64::new(self.seed ^ 0x9988_5eed);
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
                let minute = (rng.next_u64() % 60) as u32;
                let at = date
                    .and_hms_opt(hour, minute, (rng.next_u64() % 60) as u32)
                    .context("a heart-rate sample time")?;
                history
                    .push(HistoryRecord::HeartRate { at, bpm: bpm as u8 })
                    .context("storing a heart-rate sample")?;
            }
            let proof = if self.faults.unsigned {
                None
            } else {
                let end_of_day = date
                    .and_hms_opt(23, 59, 59)
                    .context("a day's last second")?
                    .and_utc()
                    .timestamp()
                    - i64::from(KST_OFFSET_SECONDS);
                let signed_at = u32::try_from(end_of_day.min(now.timestamp()))
                    .context("a signing time after 2106")?;
                Some(
                    key.sign_day(&self.serial, date, total, d + 1, signed_at)
                        .context("signing a day's steps")?,
                )
            };
            // The tampered fault: the last day's total raised after it was signed.
            let steps = if self.faults.tampered && d + 1 == self.days {
                total + 5_000
            } else {
                total
            };
            history
                .push(HistoryRecord::DaySteps { date, steps, proof })
                .context("storing a day's steps")?;
        }
        Ok(history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_49_records_and_the_seed_decides_them() {
        let config = Config::generated(2, 3, 7);
        let day = NaiveDate::from_ymd_opt(2025, 12, 1).unwrap();
        let now = DateTime::parse_from_rfc3339("2025-12-01T12:00:00+09:00")
            .unwrap()
            .to_utc();
        let a = config.watches[0].history(day, now).unwrap();
        assert_eq!(a.len(), 3 * 49);
        assert_eq!(a.seq_range(), Some((0, 3 * 49 - 1)));
        assert_eq!(a, config.watches[0].history(day, now).unwrap());
        assert_ne!(a, config.watches[1].history(day, now).unwrap());
        assert_eq!(config.watches[1].short_code(), "0002");
    }

    /// The day totals the watch stored, with their proofs.
    fn days(
        w: &WatchConfig,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Vec<(NaiveDate, u32, Option<watch_protocol::DayProof>)> {
        let h = w.history(today, now).unwrap();
        h.notifications(0, 517)
            .unwrap()
            .iter()
            .flat_map(|p| {
                watch_protocol::HistoryNotification::decode(p)
                    .unwrap()
                    .records
            })
            .filter_map(|r| match r {
                HistoryRecord::DaySteps { date, steps, proof } => Some((date, steps, proof)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_watch_signs_each_day_under_a_certified_key_and_faults_break_that() {
        let today = NaiveDate::from_ymd_opt(2025, 12, 3).unwrap();
        let now = DateTime::parse_from_rfc3339("2025-12-03T12:00:00+09:00")
            .unwrap()
            .to_utc();
        let trusted = [WatchCa::demo().public_key()];
        let mut w = Config::generated(1, 3, 7).watches.remove(0);
        let cert = w.certificate().unwrap();
        cert.verify(&trusted).unwrap();
        let healthy = days(&w, today, now);
        assert_eq!(healthy.len(), 3);
        for (i, (date, steps, proof)) in healthy.iter().enumerate() {
            let proof = proof.expect("signed");
            assert_eq!(proof.counter, i as u32 + 1);
            cert.verify_day(&w.serial, *date, *steps, &proof).unwrap();
        }
        // Past days at their last second; today no later than now.
        let last = healthy[2].2.unwrap().signed_at;
        assert_eq!(i64::from(last), now.timestamp());
        assert_eq!(
            i64::from(healthy[1].2.unwrap().signed_at),
            DateTime::parse_from_rfc3339("2025-12-02T23:59:59+09:00")
                .unwrap()
                .timestamp()
        );

        w.faults.tampered = true;
        let tampered = days(&w, today, now);
        let (date, steps, proof) = tampered[2];
        assert!(cert
            .verify_day(&w.serial, date, steps, &proof.unwrap())
            .is_err());
        w.faults.tampered = false;
        w.faults.unsigned = true;
        assert!(days(&w, today, now).iter().all(|d| d.2.is_none()));
        w.faults.uncertified = true;
        assert!(w.certificate().unwrap().verify(&trusted).is_err());
    }

    #[test]
    fn a_signing_watch_needs_an_mtu_its_signed_records_fit() {
        let text = "mtu = 23\n[[watch]]\nserial = \"PW-0042\"\n";
        let config: Config = toml::from_str(text).unwrap();
        let refused = config.check().unwrap_err().to_string();
        assert!(refused.contains("91"), "{refused}");
        let unsigned: Config =
            toml::from_str(&format!("{text}[watch.faults]\nunsigned = true\n")).unwrap();
        unsigned.check().unwrap();
    }

    #[test]
    fn a_file_needs_only_the_serial() {
        let config: Config = toml::from_str(
            "mtu = 91\n[[watch]]\nserial = \"PW-0042\"\n[watch.faults]\ndrop = { at = 3 }\n",
        )
        .unwrap();
        config.check().unwrap();
        let w = &config.watches[0];
        assert_eq!((w.days, w.battery, w.rssi), (30, 85, -60));
        assert_eq!(w.faults.drop.map(|d| (d.at, d.times)), Some((3, 1)));
    }
}
