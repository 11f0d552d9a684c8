//! One simulated watch: its GATT tree, its clock, its stored history and its faults.
//!
//! History answers come from `watch-protocol`'s [`WatchHistory`], streamed as
//! PropertiesChanged signals on the History Data characteristic's `Value`, as BlueZ delivers
//! notifications; the faults bend that stream.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use tokio::sync::Mutex;
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, Value};
use zbus::{Connection, ObjectServer};

use watch_protocol::{
    characteristic as ch, service, AdjustReason, BleUuid, CurrentTime, HeartRateMeasurement,
    HeartRateValue, HistoryNotification, RacpMessage, SensorContact, WatchHistory, WatchReply,
    KST_OFFSET_SECONDS,
};

use crate::bluez::{BluezError, Characteristic, Device, Figures, Service, ADAPTER_PATH};
use crate::config::{At, Faults, WatchConfig};

/// The characteristics a watch serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CharKind {
    /// Model Number String.
    Model,
    /// Serial Number String.
    Serial,
    /// Firmware Revision String.
    Firmware,
    /// Battery Level.
    Battery,
    /// Current Time.
    CurrentTime,
    /// Local Time Information.
    LocalTimeInformation,
    /// Heart Rate Measurement.
    HeartRateMeasurement,
    /// Body Sensor Location.
    BodySensorLocation,
    /// Palpal History Data.
    HistoryData,
    /// Palpal History Control Point.
    ControlPoint,
    /// Palpal Watch Certificate.
    Certificate,
}

impl CharKind {
    /// The characteristic's UUID.
    pub fn uuid(self) -> BleUuid {
        match self {
            CharKind::Model => ch::MODEL_NUMBER,
            CharKind::Serial => ch::SERIAL_NUMBER,
            CharKind::Firmware => ch::FIRMWARE_REVISION,
            CharKind::Battery => ch::BATTERY_LEVEL,
            CharKind::CurrentTime => ch::CURRENT_TIME,
            CharKind::LocalTimeInformation => ch::LOCAL_TIME_INFORMATION,
            CharKind::HeartRateMeasurement => ch::HEART_RATE_MEASUREMENT,
            CharKind::BodySensorLocation => ch::BODY_SENSOR_LOCATION,
            CharKind::HistoryData => ch::HISTORY_DATA,
            CharKind::ControlPoint => ch::HISTORY_CONTROL_POINT,
            CharKind::Certificate => ch::WATCH_CERTIFICATE,
        }
    }

    /// Its GATT properties, as BlueZ spells them.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            CharKind::Model
            | CharKind::Serial
            | CharKind::Firmware
            | CharKind::LocalTimeInformation
            | CharKind::BodySensorLocation
            | CharKind::Certificate => &["read"],
            CharKind::Battery => &["read", "notify"],
            CharKind::CurrentTime => &["read", "write", "notify"],
            CharKind::HeartRateMeasurement | CharKind::HistoryData => &["notify"],
            CharKind::ControlPoint => &["write", "indicate"],
        }
    }

    fn can(self, flag: &str) -> bool {
        self.flags().contains(&flag)
    }
}

/// A characteristic and its attribute handle.
type CharEntry = (CharKind, u16);

/// The GATT layout: services with their handle and characteristics with theirs.
const GATT: &[(BleUuid, u16, &[CharEntry])] = &[
    (
        service::DEVICE_INFORMATION,
        0x0001,
        &[
            (CharKind::Model, 0x0002),
            (CharKind::Serial, 0x0004),
            (CharKind::Firmware, 0x0006),
        ],
    ),
    (service::BATTERY, 0x0008, &[(CharKind::Battery, 0x0009)]),
    (
        service::CURRENT_TIME,
        0x000c,
        &[
            (CharKind::CurrentTime, 0x000d),
            (CharKind::LocalTimeInformation, 0x0010),
        ],
    ),
    (
        service::HEART_RATE,
        0x0012,
        &[
            (CharKind::HeartRateMeasurement, 0x0013),
            (CharKind::BodySensorLocation, 0x0016),
        ],
    ),
    (
        service::PALPAL_HISTORY,
        0x0018,
        &[
            (CharKind::HistoryData, 0x0019),
            (CharKind::ControlPoint, 0x001c),
            (CharKind::Certificate, 0x001f),
        ],
    ),
];

/// What changes while the simulator runs.
pub struct WatchState {
    /// Stored records.
    pub history: WatchHistory,
    /// A terminal is connected.
    pub connected: bool,
    /// The GATT tree is resolved for the connected terminal.
    pub services_resolved: bool,
    /// Characteristics the terminal subscribed to.
    pub notifying: BTreeSet<CharKind>,
    /// Watch clock minus true KST.
    pub clock_offset: TimeDelta,
    /// Bumped by every control-point request, abort and disconnect: a stream whose
    /// generation is stale stops.
    generation: u64,
    /// A history answer is being streamed (or stalled) and not yet ended.
    streaming: bool,
    /// History answers that streamed records, so far.
    answers: u32,
    /// Connection attempts so far.
    pub connect_attempts: u32,
    /// The sequence number each history request asked from.
    pub requests: Vec<u32>,
    /// Each notification of each answer: first and last sequence, fate.
    pub sent: Vec<(u32, u32, u8)>,
    /// The last value of each characteristic that notified.
    values: BTreeMap<CharKind, Vec<u8>>,
}

/// One simulated device: a Palpal watch, or a bystander that only advertises Heart Rate.
pub struct Watch {
    /// Object path, `/org/bluez/hci0/dev_XX_XX_XX_XX_XX_XX`.
    pub path: OwnedObjectPath,
    /// Bluetooth address.
    pub address: String,
    /// Advertised name.
    pub name: String,
    /// Advertised service UUIDs, lower case.
    pub advertised: Vec<String>,
    /// Signal strength.
    pub rssi: i16,
    /// ATT MTU.
    pub mtu: u16,
    /// Serves the GATT tree (bystanders do not).
    palpal: bool,
    serial: String,
    model: String,
    firmware: String,
    /// The Watch Certificate characteristic's value.
    certificate: Vec<u8>,
    battery: u8,
    faults: Faults,
    registered: AtomicBool,
    /// The mutable part; held while a value is sent, so notifications go out in order.
    pub state: Mutex<WatchState>,
}

/// Fates of a notification in [`WatchState::sent`].
const SENT: u8 = 0;
const CORRUPTED: u8 = 1;
const DROPPED: u8 = 2;

fn kst_now() -> chrono::NaiveDateTime {
    Utc::now().naive_utc() + TimeDelta::seconds(i64::from(KST_OFFSET_SECONDS))
}

fn fires(fault: Option<At>, index: usize, answer: u32) -> bool {
    fault.is_some_and(|f| f.at == index && answer <= f.times)
}

fn failed(what: impl Into<String>) -> BluezError {
    BluezError::Failed(what.into())
}

impl Watch {
    /// A Palpal watch from its configuration, `index` numbering it for a default address.
    pub fn new(
        index: usize,
        config: &WatchConfig,
        mtu: u16,
        today: chrono::NaiveDate,
    ) -> anyhow::Result<Watch> {
        let address = config
            .address
            .clone()
            .unwrap_or_else(|| format!("F0:99:88:00:{:02X}:{:02X}", index / 256, index % 256));
        let history = config.history(today, Utc::now())?;
        let certificate = config
            .certificate()?
            .encode()
            .map_err(|e| anyhow::anyhow!("encoding the certificate: {e}"))?;
        let rssi = if config.faults.out_of_range {
            -99
        } else {
            config.rssi
        };
        Ok(Watch {
            path: device_path(&address)?,
            address,
            name: format!("Palpal-{}", config.short_code()),
            advertised: vec![service::PALPAL_HISTORY.to_string()],
            rssi,
            mtu,
            palpal: true,
            serial: config.serial.clone(),
            model: config.model.clone(),
            firmware: config.firmware.clone(),
            certificate,
            battery: config.battery,
            faults: config.faults.clone(),
            registered: AtomicBool::new(false),
            state: Mutex::new(WatchState {
                history,
                connected: false,
                services_resolved: false,
                notifying: BTreeSet::new(),
                clock_offset: TimeDelta::seconds(config.clock_drift_seconds),
                generation: 0,
                streaming: false,
                answers: 0,
                connect_attempts: 0,
                requests: Vec::new(),
                sent: Vec::new(),
                values: BTreeMap::new(),
            }),
        })
    }

    /// A heart-rate chest strap nearby: it advertises only the Heart Rate service.
    pub fn bystander(index: u32) -> anyhow::Result<Watch> {
        let address = format!("C0:FF:EE:00:00:{:02X}", index % 256);
        Ok(Watch {
            path: device_path(&address)?,
            address,
            name: format!("HR Strap {}", index + 1),
            advertised: vec![service::HEART_RATE.to_string()],
            rssi: -40,
            mtu: 23,
            palpal: false,
            serial: String::new(),
            model: String::new(),
            firmware: String::new(),
            certificate: Vec::new(),
            battery: 100,
            faults: Faults::default(),
            registered: AtomicBool::new(false),
            state: Mutex::new(WatchState {
                history: WatchHistory::starting_at(0),
                connected: false,
                services_resolved: false,
                notifying: BTreeSet::new(),
                clock_offset: TimeDelta::zero(),
                generation: 0,
                streaming: false,
                answers: 0,
                connect_attempts: 0,
                requests: Vec::new(),
                sent: Vec::new(),
                values: BTreeMap::new(),
            }),
        })
    }

    /// Whether a scan with these service UUIDs (empty: any) reports this device.
    pub fn advertises(&self, filter: &[String]) -> bool {
        !self.faults.silent
            && (filter.is_empty() || self.advertised.iter().any(|u| filter.contains(u)))
    }

    /// Puts the device and its GATT tree on the bus (once): the ObjectManager at `/`
    /// announces it with InterfacesAdded, as BlueZ does when a scan finds a device.
    pub async fn register(self: &std::sync::Arc<Self>, server: &ObjectServer) -> zbus::Result<()> {
        if self.registered.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        server.at(&self.path, Device(self.clone())).await?;
        if self.palpal {
            server.at(&self.path, Figures(self.clone())).await?;
            for (uuid, handle, chars) in GATT {
                let service_path = format!("{}/service{handle:04x}", self.path.as_str());
                for (kind, char_handle) in *chars {
                    let path = format!("{service_path}/char{char_handle:04x}");
                    let iface = Characteristic {
                        watch: self.clone(),
                        kind: *kind,
                        service: ObjectPath::try_from(service_path.as_str())?.into(),
                        handle: *char_handle,
                    };
                    server.at(path, iface).await?;
                }
                let iface = Service {
                    uuid: uuid.to_string(),
                    device: self.path.clone(),
                    handle: *handle,
                };
                server.at(service_path, iface).await?;
            }
        }
        Ok(())
    }

    /// Takes the device off the bus (RemoveDevice).
    pub async fn unregister(&self, server: &ObjectServer) -> zbus::Result<()> {
        if !self.registered.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        server.remove::<Device, _>(&self.path).await?;
        if self.palpal {
            server.remove::<Figures, _>(&self.path).await?;
            for (_, handle, chars) in GATT {
                let service_path = format!("{}/service{handle:04x}", self.path.as_str());
                for (_, char_handle) in *chars {
                    let path = format!("{service_path}/char{char_handle:04x}");
                    server.remove::<Characteristic, _>(path).await?;
                }
                server.remove::<Service, _>(service_path).await?;
            }
        }
        Ok(())
    }

    fn char_path(&self, kind: CharKind) -> String {
        GATT.iter()
            .find_map(|(_, handle, chars)| {
                chars
                    .iter()
                    .find(|(k, _)| *k == kind)
                    .map(|(_, c)| format!("{}/service{handle:04x}/char{c:04x}", self.path.as_str()))
            })
            .unwrap_or_default()
    }

    /// Device1.Connect: honours `connect_failures` and `out_of_range`; resolves services a
    /// moment after connecting, as BlueZ does.
    pub async fn connect(self: &std::sync::Arc<Self>, conn: &Connection) -> Result<(), BluezError> {
        let attempt = {
            let mut st = self.state.lock().await;
            st.connect_attempts += 1;
            if st.connected {
                return Ok(());
            }
            st.connect_attempts
        };
        if self.faults.out_of_range || attempt <= self.faults.connect_failures {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(failed("le-connection-abort-by-local"));
        }
        {
            let mut st = self.state.lock().await;
            st.connected = true;
            st.notifying.clear();
            changed(
                conn,
                &self.path,
                "org.bluez.Device1",
                "Connected",
                true.into(),
            )
            .await?;
        }
        let watch = self.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut st = watch.state.lock().await;
            if st.connected {
                st.services_resolved = true;
                let _ = changed(
                    &conn,
                    &watch.path,
                    "org.bluez.Device1",
                    "ServicesResolved",
                    true.into(),
                )
                .await;
            }
        });
        Ok(())
    }

    /// The link drops (Device1.Disconnect, or the `disconnect` fault): subscriptions end and
    /// any stream stops.
    pub async fn drop_link(&self, conn: &Connection) -> zbus::Result<()> {
        let mut st = self.state.lock().await;
        self.drop_link_locked(conn, &mut st).await
    }

    async fn drop_link_locked(&self, conn: &Connection, st: &mut WatchState) -> zbus::Result<()> {
        if !st.connected {
            return Ok(());
        }
        st.connected = false;
        st.services_resolved = false;
        st.notifying.clear();
        st.streaming = false;
        st.generation += 1;
        let emitter = SignalEmitter::new(conn, self.path.as_str())?;
        let mut map = HashMap::new();
        map.insert("Connected", Value::from(false));
        map.insert("ServicesResolved", Value::from(false));
        zbus::fdo::Properties::properties_changed(
            &emitter,
            InterfaceName::from_static_str_unchecked("org.bluez.Device1"),
            map,
            Cow::Borrowed(&[]),
        )
        .await
    }

    /// The last value a characteristic notified (its `Value` property).
    pub async fn last_value(&self, kind: CharKind) -> Vec<u8> {
        self.state
            .lock()
            .await
            .values
            .get(&kind)
            .cloned()
            .unwrap_or_default()
    }

    /// GattCharacteristic1.ReadValue.
    pub async fn read(&self, kind: CharKind) -> Result<Vec<u8>, BluezError> {
        let st = self.state.lock().await;
        if !st.connected {
            return Err(failed("Not connected"));
        }
        if !kind.can("read") {
            return Err(BluezError::NotPermitted("Read not permitted".into()));
        }
        Ok(match kind {
            CharKind::Model => self.model.clone().into_bytes(),
            CharKind::Serial => self.serial.clone().into_bytes(),
            CharKind::Certificate => self.certificate.clone(),
            CharKind::Firmware => self.firmware.clone().into_bytes(),
            CharKind::Battery => vec![self.battery],
            CharKind::CurrentTime => {
                let at = kst_now() + st.clock_offset;
                CurrentTime::from_kst(at, AdjustReason::NONE)
                    .map_err(|e| failed(e.to_string()))?
                    .encode()
                    .to_vec()
            }
            CharKind::LocalTimeInformation => vec![36, 0],
            CharKind::BodySensorLocation => vec![2], // wrist
            _ => Vec::new(),
        })
    }

    /// GattCharacteristic1.WriteValue: the clock, or a history request.
    pub async fn write(
        self: &std::sync::Arc<Self>,
        conn: &Connection,
        kind: CharKind,
        value: Vec<u8>,
    ) -> Result<(), BluezError> {
        let mut st = self.state.lock().await;
        if !st.connected {
            return Err(failed("Not connected"));
        }
        match kind {
            CharKind::CurrentTime => {
                let set = CurrentTime::decode(&value)
                    .and_then(|t| t.to_naive_datetime())
                    .map_err(|e| failed(format!("Value out of range: {e}")))?;
                st.clock_offset = set - kst_now();
                Ok(())
            }
            CharKind::ControlPoint => self.control_point(conn, &mut st, value).await,
            _ => Err(BluezError::NotPermitted("Write not permitted".into())),
        }
    }

    async fn control_point(
        self: &std::sync::Arc<Self>,
        conn: &Connection,
        st: &mut WatchState,
        value: Vec<u8>,
    ) -> Result<(), BluezError> {
        if !st.notifying.contains(&CharKind::ControlPoint) {
            return Err(failed(
                "Client Characteristic Configuration Descriptor Improperly Configured",
            ));
        }
        let msg = RacpMessage::decode(&value);
        let abort = matches!(msg, Ok(RacpMessage::Abort));
        if st.streaming && !abort {
            return Err(BluezError::InProgress(
                "Procedure Already in Progress".into(),
            ));
        }
        st.generation += 1;
        st.streaming = false;
        let reply = st.history.on_control_point(&value, self.mtu);
        if let Ok(RacpMessage::ReportStoredRecords(filter)) = msg {
            let from = match filter {
                watch_protocol::Filter::GreaterOrEqual(s)
                | watch_protocol::Filter::Within(s, _) => s,
                _ => st.history.seq_range().map_or(0, |(lo, _)| lo),
            };
            st.requests.push(from);
        }
        if reply.notifications.is_empty() {
            // Nothing to stream: the indication follows the write response at once.
            let watch = self.clone();
            let conn = conn.clone();
            let generation = st.generation;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let mut st = watch.state.lock().await;
                if st.generation == generation && st.connected {
                    let _ = watch
                        .notify_locked(&conn, &mut st, CharKind::ControlPoint, reply.indication)
                        .await;
                }
            });
            return Ok(());
        }
        st.streaming = true;
        st.answers += 1;
        let answer = st.answers;
        let generation = st.generation;
        let watch = self.clone();
        let conn = conn.clone();
        tokio::spawn(async move { watch.stream(conn, generation, answer, reply).await });
        Ok(())
    }

    /// Streams one answer: its notifications, then its indication, bent by the faults.
    async fn stream(&self, conn: Connection, generation: u64, answer: u32, reply: WatchReply) {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let delay = Duration::from_millis(self.faults.notification_delay_ms);
        for (i, mut payload) in reply.notifications.into_iter().enumerate() {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut st = self.state.lock().await;
            if st.generation != generation || !st.connected {
                return;
            }
            if fires(self.faults.disconnect, i, answer) {
                let _ = self.drop_link_locked(&conn, &mut st).await;
                return;
            }
            if fires(self.faults.stall, i, answer) {
                return; // silent until the terminal aborts
            }
            let (first, last) = HistoryNotification::decode(&payload)
                .map(|n| (n.first_seq, n.last_seq()))
                .unwrap_or_default();
            let fate = if fires(self.faults.drop, i, answer) {
                DROPPED
            } else if fires(self.faults.corrupt, i, answer) {
                // Flip a bit inside the first record, after the sequence number.
                payload[5] ^= 0x04;
                CORRUPTED
            } else {
                SENT
            };
            st.sent.push((first, last, fate));
            if fate != DROPPED {
                let _ = self
                    .notify_locked(&conn, &mut st, CharKind::HistoryData, payload)
                    .await;
            }
            drop(st);
            if delay.is_zero() {
                tokio::task::yield_now().await;
            }
        }
        let mut st = self.state.lock().await;
        if st.generation == generation && st.connected {
            st.streaming = false;
            let _ = self
                .notify_locked(&conn, &mut st, CharKind::ControlPoint, reply.indication)
                .await;
        }
    }

    /// Sends a value as a notification (or indication) if the terminal subscribed to it.
    async fn notify_locked(
        &self,
        conn: &Connection,
        st: &mut WatchState,
        kind: CharKind,
        value: Vec<u8>,
    ) -> zbus::Result<()> {
        if !st.notifying.contains(&kind) {
            return Ok(());
        }
        st.values.insert(kind, value.clone());
        changed(
            conn,
            &self.char_path(kind),
            "org.bluez.GattCharacteristic1",
            "Value",
            Value::from(value),
        )
        .await
    }

    /// GattCharacteristic1.StartNotify.
    pub async fn start_notify(
        self: &std::sync::Arc<Self>,
        conn: &Connection,
        kind: CharKind,
    ) -> Result<(), BluezError> {
        let mut st = self.state.lock().await;
        if !st.connected {
            return Err(failed("Not connected"));
        }
        if !kind.can("notify") && !kind.can("indicate") {
            return Err(BluezError::NotSupported(
                "Operation is not supported".into(),
            ));
        }
        if st.notifying.insert(kind) {
            changed(
                conn,
                &self.char_path(kind),
                "org.bluez.GattCharacteristic1",
                "Notifying",
                true.into(),
            )
            .await?;
            if kind == CharKind::HeartRateMeasurement {
                let watch = self.clone();
                let conn = conn.clone();
                tokio::spawn(async move { watch.beat(conn).await });
            }
        }
        Ok(())
    }

    /// GattCharacteristic1.StopNotify.
    pub async fn stop_notify(&self, conn: &Connection, kind: CharKind) -> Result<(), BluezError> {
        let mut st = self.state.lock().await;
        if st.notifying.remove(&kind) {
            changed(
                conn,
                &self.char_path(kind),
                "org.bluez.GattCharacteristic1",
                "Notifying",
                false.into(),
            )
            .await?;
        }
        Ok(())
    }

    /// Heart Rate Measurement once a second while subscribed.
    async fn beat(&self, conn: Connection) {
        let mut n: u16 = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut st = self.state.lock().await;
            if !st.connected || !st.notifying.contains(&CharKind::HeartRateMeasurement) {
                return;
            }
            n = n.wrapping_add(1);
            let bpm = 68 + n % 9;
            let m = HeartRateMeasurement {
                value: HeartRateValue::new(bpm),
                contact: SensorContact::Detected,
                energy_expended_kj: n.is_multiple_of(10).then_some(n / 10),
                rr_intervals: vec![60 * 1024 / bpm.max(1)],
            };
            let _ = self
                .notify_locked(&conn, &mut st, CharKind::HeartRateMeasurement, m.encode())
                .await;
        }
    }
}

/// `/org/bluez/hci0/dev_F0_99_88_00_00_01` for `F0:99:88:00:00:01`.
fn device_path(address: &str) -> anyhow::Result<OwnedObjectPath> {
    let path = format!("{ADAPTER_PATH}/dev_{}", address.replace(':', "_"));
    Ok(ObjectPath::try_from(path)?.into())
}

/// Emits PropertiesChanged for one property, from the connection that owns `org.bluez`.
async fn changed(
    conn: &Connection,
    path: &str,
    interface: &'static str,
    property: &'static str,
    value: Value<'_>,
) -> zbus::Result<()> {
    let emitter = SignalEmitter::new(conn, path)?;
    let mut map = HashMap::new();
    map.insert(property, value);
    zbus::fdo::Properties::properties_changed(
        &emitter,
        InterfaceName::from_static_str_unchecked(interface),
        map,
        Cow::Borrowed(&[]),
    )
    .await
}
