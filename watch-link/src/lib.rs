//! `watch-link`: the terminal's Bluetooth LE link to Palpal watches, over btleplug (BlueZ on
//! Linux). It finds the adapter, scans for watches advertising the Palpal history service and
//! lists them nearest first, connects with a timeout and retries, reads Device Information and
//! the battery, sets the watch clock in KST, and fetches history incrementally from a sequence
//! number, resuming an interrupted transfer from the last record received, on the same
//! connection or after reconnecting.
//!
//! It is an adapter, not a core: the byte layouts and the transfer's state machine are
//! `watch-protocol`'s ([`HistoryTransfer`]); this crate only moves their bytes. It stores
//! nothing: records are handed to the caller as they are acknowledged, and the caller keeps
//! the next sequence number to ask for. Time is an argument (`now`), never read here. Errors are
//! a [`LinkError`] with a stable code and Korean and English messages. Tested against
//! `watch-sim`, a fake BlueZ on a private D-Bus bus (`tests/ble.rs`).

mod error;

use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::time::Duration;

use btleplug::api::{
    Central, CentralEvent, CentralState, Characteristic, Manager as _, Peripheral as _, ScanFilter,
    ValueNotification, WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral};
use chrono::{DateTime, TimeDelta, Utc};
use futures::{Stream, StreamExt};
use uuid::Uuid;
use watch_protocol::{
    characteristic as ch, clock_offset, decode_battery_level, decode_utf8_string, service,
    AdjustReason, BleUuid, CurrentTime, HistoryTransfer, IndicationOutcome, SequencedRecord,
    KST_OFFSET_SECONDS,
};

pub use error::LinkError;

/// How patient the link is. The defaults suit a counter; tests shorten them.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// Connection attempts before the watch counts as out of range.
    pub connect_attempts: u32,
    /// Pause between connection attempts (doubled each time).
    pub retry_pause: Duration,
    /// Silence during a transfer after which it counts as stalled.
    pub idle_timeout: Duration,
    /// Interruptions a fetch survives (resuming each time) before giving up.
    pub transfer_attempts: u32,
    /// A watch clock further off than this is reported.
    pub clock_tolerance: TimeDelta,
    /// A battery at or below this percentage is reported.
    pub low_battery_percent: u8,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            connect_timeout: Duration::from_secs(10),
            connect_attempts: 3,
            retry_pause: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(5),
            transfer_attempts: 5,
            clock_tolerance: TimeDelta::minutes(2),
            low_battery_percent: 20,
        }
    }
}

/// A watch seen by a scan.
#[derive(Debug, Clone)]
pub struct NearbyWatch {
    /// Advertised name, `Palpal-0042`.
    pub name: String,
    /// The code the watch face shows (the serial's last four characters), from the name.
    pub short_code: String,
    /// Signal strength in dBm, if reported: higher is nearer.
    pub rssi: Option<i16>,
    /// Bluetooth address.
    pub address: String,
    peripheral: Peripheral,
}

/// What Device Information and Battery say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchInfo {
    /// Serial Number String.
    pub serial: String,
    /// Model Number String.
    pub model: String,
    /// Firmware Revision String.
    pub firmware: String,
    /// Battery Level, percent.
    pub battery_percent: u8,
    /// [`LinkError::LowBattery`] when the battery is at or below the threshold.
    pub warning: Option<LinkError>,
    /// The Watch Certificate's bytes ([`watch_protocol::WatchCertificate`]), as read; `None`
    /// from a watch without the characteristic (whose steps the central server will not
    /// credit). The link does not judge it: the central server does.
    pub certificate: Option<Vec<u8>>,
}

/// The outcome of setting the watch clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockSync {
    /// How far the watch clock was off before (watch minus terminal).
    pub offset_before: TimeDelta,
    /// [`LinkError::ClockFarOff`] when that was beyond the tolerance.
    pub warning: Option<LinkError>,
}

/// What a history fetch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// The sequence number to ask from next time.
    pub next_seq: u32,
    /// Records handed over.
    pub records: usize,
    /// History Data notifications received, resent ones included.
    pub notifications: usize,
    /// ATT bytes over the link: each write and its response, each notification and
    /// indication with its 3-byte header, each confirmation.
    pub link_bytes: usize,
    /// Every interruption survived, in order.
    pub interruptions: Vec<LinkError>,
    /// The sequence number each resumed request asked from.
    pub resumed_from: Vec<u32>,
    /// Reconnections made.
    pub reconnects: u32,
    /// Records the watch no longer had (deleted before they were fetched).
    pub pruned: Vec<RangeInclusive<u32>>,
    /// Records received twice and dropped.
    pub duplicates: usize,
}

fn uuid(u: BleUuid) -> Uuid {
    Uuid::from_u128(u.as_u128())
}

fn bt(doing: &'static str) -> impl Fn(btleplug::Error) -> LinkError {
    move |e| LinkError::Bluetooth {
        doing,
        detail: e.to_string(),
    }
}

fn protocol(doing: &'static str) -> impl Fn(watch_protocol::Error) -> LinkError {
    move |e| LinkError::Protocol {
        doing,
        detail: e.to_string(),
    }
}

/// The terminal's Bluetooth adapter.
#[derive(Debug, Clone)]
pub struct WatchLink {
    adapter: Adapter,
    options: LinkOptions,
}

impl WatchLink {
    /// The first Bluetooth adapter, with default options.
    pub async fn open() -> Result<WatchLink, LinkError> {
        Self::open_with(LinkOptions::default()).await
    }

    /// The first Bluetooth adapter. [`LinkError::NoAdapter`] when there is none, or no BlueZ.
    pub async fn open_with(options: LinkOptions) -> Result<WatchLink, LinkError> {
        let no_adapter = |e: btleplug::Error| LinkError::NoAdapter {
            detail: e.to_string(),
        };
        let manager = Manager::new().await.map_err(no_adapter)?;
        let adapter = manager
            .adapters()
            .await
            .map_err(no_adapter)?
            .into_iter()
            .next()
            .ok_or_else(|| LinkError::NoAdapter {
                detail: "BlueZ lists no adapter".into(),
            })?;
        Ok(WatchLink { adapter, options })
    }

    /// Scans for `duration` and lists the Palpal watches seen, nearest (strongest signal) first.
    /// The adapter is powered on if it can be; [`LinkError::AdapterOff`] if it cannot.
    pub async fn scan(&self, duration: Duration) -> Result<Vec<NearbyWatch>, LinkError> {
        let palpal = uuid(service::PALPAL_HISTORY);
        let filter = ScanFilter {
            services: vec![palpal],
        };
        if let Err(e) = self.adapter.start_scan(filter).await {
            let state = self.adapter.adapter_state().await;
            return Err(match state {
                Ok(CentralState::PoweredOff) => LinkError::AdapterOff,
                _ => bt("starting a scan")(e),
            });
        }
        tokio::time::sleep(duration).await;
        self.adapter
            .stop_scan()
            .await
            .map_err(bt("stopping the scan"))?;
        let mut watches = Vec::new();
        for peripheral in self
            .adapter
            .peripherals()
            .await
            .map_err(bt("listing devices"))?
        {
            let Some(props) = peripheral
                .properties()
                .await
                .map_err(bt("reading a device's advertisement"))?
            else {
                continue;
            };
            if !props.services.contains(&palpal) {
                continue; // another device a wider scan (another client's) turned up
            }
            let name = props.local_name.unwrap_or_default();
            let short_code = name
                .strip_prefix("Palpal-")
                .unwrap_or(name.as_str())
                .to_owned();
            watches.push(NearbyWatch {
                name,
                short_code,
                rssi: props.rssi,
                address: props.address.to_string(),
                peripheral,
            });
        }
        watches.sort_by_key(|w| std::cmp::Reverse(w.rssi.unwrap_or(i16::MIN)));
        Ok(watches)
    }

    /// Scans and picks the watch whose short code, name or address is `wanted`.
    pub async fn find(&self, wanted: &str, duration: Duration) -> Result<NearbyWatch, LinkError> {
        self.scan(duration)
            .await?
            .into_iter()
            .find(|w| w.short_code == wanted || w.name == wanted || w.address == wanted)
            .ok_or_else(|| LinkError::WatchNotFound {
                wanted: wanted.to_owned(),
            })
    }

    /// Connects (with the configured timeout and retries), resolves the profile and
    /// subscribes to the history service.
    pub async fn connect(&self, watch: &NearbyWatch) -> Result<ConnectedWatch, LinkError> {
        let connected = ConnectedWatch {
            adapter: self.adapter.clone(),
            peripheral: watch.peripheral.clone(),
            name: watch.name.clone(),
            options: self.options.clone(),
        };
        connected.establish().await?;
        Ok(connected)
    }
}

/// A connected watch.
#[derive(Debug)]
pub struct ConnectedWatch {
    adapter: Adapter,
    peripheral: Peripheral,
    name: String,
    options: LinkOptions,
}

type Notifications = Pin<Box<dyn Stream<Item = ValueNotification> + Send>>;
type Events = Pin<Box<dyn Stream<Item = CentralEvent> + Send>>;

/// How a stretch of a transfer ended.
enum Pumped {
    Complete,
    Interrupted { error: LinkError, link_lost: bool },
}

impl ConnectedWatch {
    /// The watch's advertised name.
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn establish(&self) -> Result<(), LinkError> {
        let o = &self.options;
        let mut pause = o.retry_pause;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match tokio::time::timeout(o.connect_timeout, self.peripheral.connect()).await {
                Ok(Ok(())) => break,
                Ok(Err(_)) | Err(_) if attempt < o.connect_attempts => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Ok(Err(_)) | Err(_) => {
                    return Err(LinkError::WatchOutOfRange {
                        watch: self.name.clone(),
                        attempts: attempt,
                    })
                }
            }
        }
        self.peripheral
            .discover_services()
            .await
            .map_err(bt("discovering the watch's services"))?;
        for kind in [ch::HISTORY_DATA, ch::HISTORY_CONTROL_POINT] {
            let c = self.characteristic(kind)?;
            self.peripheral
                .subscribe(&c)
                .await
                .map_err(bt("subscribing to the history service"))?;
        }
        Ok(())
    }

    fn characteristic(&self, wanted: BleUuid) -> Result<Characteristic, LinkError> {
        let wanted = uuid(wanted);
        let all: BTreeSet<Characteristic> = self.peripheral.characteristics();
        all.into_iter()
            .find(|c| c.uuid == wanted)
            .ok_or_else(|| LinkError::NotAWatch {
                watch: self.name.clone(),
                detail: format!("no characteristic {wanted}"),
            })
    }

    async fn read(&self, which: BleUuid, doing: &'static str) -> Result<Vec<u8>, LinkError> {
        let c = self.characteristic(which)?;
        self.peripheral.read(&c).await.map_err(bt(doing))
    }

    async fn write(
        &self,
        which: BleUuid,
        bytes: &[u8],
        doing: &'static str,
    ) -> Result<(), LinkError> {
        let c = self.characteristic(which)?;
        self.peripheral
            .write(&c, bytes, WriteType::WithResponse)
            .await
            .map_err(bt(doing))
    }

    /// Reads Device Information (serial, model, firmware), the Battery Level and the Watch
    /// Certificate.
    pub async fn device_information(&self) -> Result<WatchInfo, LinkError> {
        let text = |bytes: Vec<u8>| {
            decode_utf8_string(&bytes).map_err(protocol("reading device information"))
        };
        let serial = text(
            self.read(ch::SERIAL_NUMBER, "reading the serial number")
                .await?,
        )?;
        let model = text(self.read(ch::MODEL_NUMBER, "reading the model").await?)?;
        let firmware = text(
            self.read(ch::FIRMWARE_REVISION, "reading the firmware revision")
                .await?,
        )?;
        let battery = self
            .read(ch::BATTERY_LEVEL, "reading the battery level")
            .await?;
        let battery_percent =
            decode_battery_level(&battery).map_err(protocol("reading the battery level"))?;
        let warning = (battery_percent <= self.options.low_battery_percent).then_some(
            LinkError::LowBattery {
                percent: battery_percent,
            },
        );
        let certificate = match self.characteristic(ch::WATCH_CERTIFICATE) {
            Ok(_) => Some(
                self.read(ch::WATCH_CERTIFICATE, "reading the watch certificate")
                    .await?,
            ),
            Err(_) => None,
        };
        Ok(WatchInfo {
            serial,
            model,
            firmware,
            battery_percent,
            warning,
            certificate,
        })
    }

    /// How far the watch clock is off from `now` (watch minus terminal).
    pub async fn clock_offset(&self, now: DateTime<Utc>) -> Result<TimeDelta, LinkError> {
        let bytes = self
            .read(ch::CURRENT_TIME, "reading the watch clock")
            .await?;
        let watch = CurrentTime::decode(&bytes).map_err(protocol("reading the watch clock"))?;
        let now_kst = now.naive_utc() + TimeDelta::seconds(i64::from(KST_OFFSET_SECONDS));
        clock_offset(&watch, now_kst).map_err(protocol("reading the watch clock"))
    }

    /// Reads the watch clock, then sets it to `now` in KST. Reports how far off it was.
    pub async fn set_time(&self, now: DateTime<Utc>) -> Result<ClockSync, LinkError> {
        let offset_before = self.clock_offset(now).await?;
        let value = CurrentTime::kst_from_utc(now, AdjustReason::MANUAL)
            .map_err(protocol("setting the watch clock"))?;
        self.write(ch::CURRENT_TIME, &value.encode(), "setting the watch clock")
            .await?;
        let warning =
            (offset_before.abs() > self.options.clock_tolerance).then(|| LinkError::ClockFarOff {
                offset_seconds: (offset_before + TimeDelta::milliseconds(500))
                    .num_milliseconds()
                    .div_euclid(1000),
            });
        Ok(ClockSync {
            offset_before,
            warning,
        })
    }

    /// Fetches every record from `from_seq` on, handing each batch to `on_records` as soon as
    /// it is acknowledged (store it there). An interruption (link lost, a corrupt, lost or
    /// stalled notification) is survived up to `transfer_attempts` times: the link aborts or
    /// reconnects and asks again from the first record not received, so no acknowledged
    /// record is asked for twice. Past that, the last interruption is the error; what was
    /// handed over stays valid, and its [`LinkError::TransferInterrupted`] or
    /// [`LinkError::CorruptRecord`] says where to resume.
    pub async fn fetch_history<F>(
        &mut self,
        from_seq: u32,
        mut on_records: F,
    ) -> Result<FetchReport, LinkError>
    where
        F: FnMut(&[SequencedRecord]),
    {
        let mut transfer = HistoryTransfer::new();
        let mut report = FetchReport {
            next_seq: from_seq,
            ..FetchReport::default()
        };
        let mut events = self
            .adapter
            .events()
            .await
            .map_err(bt("watching the link"))?;
        let mut notes = self
            .peripheral
            .notifications()
            .await
            .map_err(bt("listening to the watch"))?;
        let mut request = transfer.start(from_seq);
        loop {
            let pumped = match self
                .write(ch::HISTORY_CONTROL_POINT, &request, "asking for history")
                .await
            {
                Ok(()) => {
                    report.link_bytes += 3 + request.len() + 1;
                    self.pump(
                        &mut transfer,
                        &mut notes,
                        &mut events,
                        &mut report,
                        &mut on_records,
                    )
                    .await
                }
                Err(e) => Pumped::Interrupted {
                    error: LinkError::TransferInterrupted {
                        resume_from: transfer.next_seq(),
                        reason: e.to_string(),
                    },
                    link_lost: false,
                },
            };
            report.next_seq = transfer.next_seq();
            let (error, link_lost) = match pumped {
                Pumped::Complete => return Ok(report),
                Pumped::Interrupted { error, link_lost } => (error, link_lost),
            };
            report.interruptions.push(error.clone());
            if report.interruptions.len() > self.options.transfer_attempts as usize {
                return Err(error);
            }
            let connected = !link_lost && self.peripheral.is_connected().await.unwrap_or(false);
            let aborted = connected
                && self
                    .abort(&mut transfer, &mut notes, &mut report)
                    .await
                    .unwrap_or(false);
            if !aborted {
                // Start afresh: a dropped link, or a watch that would not abort.
                let _ = self.peripheral.disconnect().await;
                if let Err(e) = self.establish().await {
                    return Err(LinkError::TransferInterrupted {
                        resume_from: transfer.next_seq(),
                        reason: format!("reconnecting failed: {e}"),
                    });
                }
                report.reconnects += 1;
                notes = self
                    .peripheral
                    .notifications()
                    .await
                    .map_err(bt("listening to the watch"))?;
            }
            request = transfer.resume();
            report.resumed_from.push(transfer.next_seq());
        }
    }

    /// Receives notifications and indications until the transfer completes or stops.
    async fn pump<F>(
        &self,
        transfer: &mut HistoryTransfer,
        notes: &mut Notifications,
        events: &mut Events,
        report: &mut FetchReport,
        on_records: &mut F,
    ) -> Pumped
    where
        F: FnMut(&[SequencedRecord]),
    {
        let data = uuid(ch::HISTORY_DATA);
        let control = uuid(ch::HISTORY_CONTROL_POINT);
        let me = self.peripheral.id();
        let interrupted =
            |transfer: &HistoryTransfer, reason: &str, link_lost| Pumped::Interrupted {
                error: LinkError::TransferInterrupted {
                    resume_from: transfer.next_seq(),
                    reason: reason.to_owned(),
                },
                link_lost,
            };
        loop {
            tokio::select! {
                note = tokio::time::timeout(self.options.idle_timeout, notes.next()) => match note {
                    Err(_) => return interrupted(transfer, "the watch stopped sending", false),
                    Ok(None) => return interrupted(transfer, "the link was lost", true),
                    Ok(Some(n)) if n.uuid == data => {
                        report.notifications += 1;
                        report.link_bytes += 3 + n.value.len();
                        match transfer.on_notification(&n.value) {
                            Ok(batch) => {
                                if !batch.records.is_empty() {
                                    report.records += batch.records.len();
                                    on_records(&batch.records);
                                }
                                report.duplicates += batch.duplicates;
                                report.pruned.extend(batch.pruned);
                            }
                            Err(e) => return Pumped::Interrupted { error: classify(e, transfer), link_lost: false },
                        }
                    }
                    Ok(Some(n)) if n.uuid == control => {
                        report.link_bytes += 3 + n.value.len() + 1;
                        match transfer.on_indication(&n.value) {
                            Ok(IndicationOutcome::Complete) => return Pumped::Complete,
                            Ok(_) => {}
                            Err(e) => return Pumped::Interrupted { error: classify(e, transfer), link_lost: false },
                        }
                    }
                    Ok(Some(_)) => {}
                },
                event = events.next() => match event {
                    Some(CentralEvent::DeviceDisconnected(id)) if id == me => {
                        return interrupted(transfer, "the link was lost", true);
                    }
                    None => return interrupted(transfer, "the adapter went away", true),
                    Some(_) => {}
                },
            }
        }
    }

    /// Aborts the stream on the same connection; true once the watch confirmed it.
    async fn abort(
        &self,
        transfer: &mut HistoryTransfer,
        notes: &mut Notifications,
        report: &mut FetchReport,
    ) -> Result<bool, LinkError> {
        let abort = transfer.abort();
        self.write(ch::HISTORY_CONTROL_POINT, &abort, "stopping the transfer")
            .await?;
        report.link_bytes += 3 + abort.len() + 1;
        let control = uuid(ch::HISTORY_CONTROL_POINT);
        loop {
            match tokio::time::timeout(self.options.idle_timeout, notes.next()).await {
                Ok(Some(n)) if n.uuid == control => {
                    report.link_bytes += 3 + n.value.len() + 1;
                    if let Ok(IndicationOutcome::Aborted) = transfer.on_indication(&n.value) {
                        return Ok(true);
                    }
                }
                Ok(Some(n)) => {
                    // The rest of the stream the watch had already sent: not taken.
                    report.link_bytes += 3 + n.value.len();
                    let _ = transfer.on_notification(&n.value);
                }
                Ok(None) | Err(_) => return Ok(false),
            }
        }
    }

    /// Disconnects.
    pub async fn disconnect(self) -> Result<(), LinkError> {
        self.peripheral
            .disconnect()
            .await
            .map_err(bt("disconnecting"))
    }
}

/// Turns the state machine's interruption into the clerk's words.
fn classify(e: watch_protocol::Error, transfer: &HistoryTransfer) -> LinkError {
    let resume_from = e.resume_from().unwrap_or_else(|| transfer.next_seq());
    match e {
        watch_protocol::Error::Interrupted { reason, .. }
            if matches!(*reason, watch_protocol::Error::Crc { .. }) =>
        {
            LinkError::CorruptRecord { resume_from }
        }
        watch_protocol::Error::Interrupted { reason, .. } => LinkError::TransferInterrupted {
            resume_from,
            reason: reason.to_string(),
        },
        other => LinkError::TransferInterrupted {
            resume_from,
            reason: other.to_string(),
        },
    }
}
