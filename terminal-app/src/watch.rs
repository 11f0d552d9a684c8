//! The terminal's Bluetooth session with a watch: `watch-link` (btleplug over BlueZ) behind
//! the scan, sync and pairing commands.
//!
//! IO only. It scans, connects, reads Device Information, sets the clock and fetches history;
//! which records are new, who a watch may belong to and which day totals become step reports
//! are decided by `merchant_core::watch_sync`, and the store writes what was decided.

use std::time::Duration;

use chrono::{DateTime, Utc};
use merchant_core::watch_sync::{Sample, WatchRecord};
use serde::Serialize;
use watch_link::{FetchReport, LinkError, LinkOptions, NearbyWatch, WatchInfo, WatchLink};
use watch_protocol::HistoryRecord;

use crate::error::{CommandError, Lang};

/// How long a scan listens for watches.
const SCAN_TIME: Duration = Duration::from_millis(1500);

/// The Bluetooth adapter and the watches the last scan saw. Managed by Tauri; the adapter is
/// opened on first use (on Tauri's tokio runtime, which btleplug needs).
pub struct WatchRadio {
    link: tokio::sync::Mutex<Option<WatchLink>>,
    seen: std::sync::Mutex<Vec<NearbyWatch>>,
    options: LinkOptions,
}

/// A watch as the clerk picks it from the list.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct WatchChoice {
    pub address: String,
    pub name: String,
    /// The code the watch face shows.
    pub short_code: String,
    /// Signal strength in dBm: higher is nearer.
    pub rssi: Option<i16>,
}

/// What a session with a watch read.
#[derive(Debug)]
pub struct Reading {
    pub info: WatchInfo,
    /// Warnings for the clerk (clock far off, battery low).
    pub warnings: Vec<LinkError>,
    /// Records received, in order; stored even when the fetch then failed.
    pub records: Vec<WatchRecord>,
    /// How the fetch ended; `None` when nothing was fetched (pairing).
    pub fetch: Option<Result<FetchReport, LinkError>>,
}

impl Default for WatchRadio {
    fn default() -> Self {
        WatchRadio {
            link: tokio::sync::Mutex::new(None),
            seen: std::sync::Mutex::new(Vec::new()),
            options: LinkOptions::default(),
        }
    }
}

impl WatchRadio {
    async fn link(&self) -> Result<WatchLink, LinkError> {
        let mut link = self.link.lock().await;
        if let Some(l) = link.as_ref() {
            return Ok(l.clone());
        }
        let opened = WatchLink::open_with(self.options.clone()).await?;
        *link = Some(opened.clone());
        Ok(opened)
    }

    /// Scans and lists the watches nearby, nearest first.
    pub async fn scan(&self) -> Result<Vec<WatchChoice>, LinkError> {
        let watches = self.link().await?.scan(SCAN_TIME).await?;
        let choices = watches
            .iter()
            .map(|w| WatchChoice {
                address: w.address.clone(),
                name: w.name.clone(),
                short_code: w.short_code.clone(),
                rssi: w.rssi,
            })
            .collect();
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = watches;
        Ok(choices)
    }

    fn picked(&self, address: &str) -> Result<NearbyWatch, LinkError> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|w| w.address == address)
            .cloned()
            .ok_or_else(|| LinkError::WatchNotFound {
                wanted: address.to_owned(),
            })
    }

    /// Connects to the watch at `address` (from the last scan) and reads its Device
    /// Information; `decide` then says, from the serial, whether to go on (refusing a watch
    /// paired to someone else) and from which sequence number to fetch (`None`: fetch
    /// nothing). The clock is set to `now` (the watch shows KST) before fetching. The watch
    /// is disconnected however this ends.
    pub async fn read<F>(
        &self,
        lang: Lang,
        address: &str,
        now: DateTime<Utc>,
        decide: F,
    ) -> Result<Reading, CommandError>
    where
        F: FnOnce(&WatchInfo) -> Result<Option<u32>, CommandError>,
    {
        let link_error = |e: LinkError| CommandError::from_link(lang, &e);
        let watch = self.picked(address).map_err(link_error)?;
        let link = self.link().await.map_err(link_error)?;
        let mut connected = link.connect(&watch).await.map_err(link_error)?;
        let result = async {
            let info = connected.device_information().await.map_err(link_error)?;
            let from = decide(&info)?;
            let mut warnings: Vec<LinkError> = info.warning.iter().cloned().collect();
            let clock = connected.set_time(now).await.map_err(link_error)?;
            warnings.extend(clock.warning);
            let mut records = Vec::new();
            let fetch = match from {
                Some(from) => Some(
                    connected
                        .fetch_history(from, |batch| {
                            records.extend(batch.iter().map(|r| WatchRecord {
                                seq: r.seq,
                                sample: sample(&r.record),
                            }));
                        })
                        .await,
                ),
                None => None,
            };
            Ok(Reading {
                info,
                warnings,
                records,
                fetch,
            })
        }
        .await;
        let _ = connected.disconnect().await;
        result
    }
}

/// A history record as the cores take it.
fn sample(record: &HistoryRecord) -> Sample {
    match *record {
        HistoryRecord::DaySteps { date, steps, proof } => Sample::DaySteps { date, steps, proof },
        HistoryRecord::HourSteps { date, hour, steps } => Sample::HourSteps { date, hour, steps },
        HistoryRecord::HeartRate { at, bpm } => Sample::HeartRate { at, bpm },
    }
}
