//! BlueZ's D-Bus API as the simulator serves it: `org.bluez.Adapter1` at `/org/bluez/hci0`,
//! `org.bluez.Device1` per watch, and `GattService1` / `GattCharacteristic1` children laid
//! out as BlueZ lays them (`dev_XX_XX_XX_XX_XX_XX/service000c/char000d`).
//!
//! Each watch also carries `org.palpal.Simulator1`, read-only figures for tests: the history
//! requests it received and the notifications it sent, dropped or corrupted.

use std::collections::HashMap;
use std::sync::Arc;

use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue};
use zbus::{interface, Connection, ObjectServer};

use crate::watch::{CharKind, Watch};

/// The errors BlueZ answers with (`org.bluez.Error.*`).
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.bluez.Error")]
pub enum BluezError {
    /// A D-Bus failure of the simulator itself.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// `org.bluez.Error.Failed`.
    Failed(String),
    /// `org.bluez.Error.NotReady`: the adapter is off.
    NotReady(String),
    /// `org.bluez.Error.NotConnected`.
    NotConnected(String),
    /// `org.bluez.Error.InProgress`.
    InProgress(String),
    /// `org.bluez.Error.NotPermitted`.
    NotPermitted(String),
    /// `org.bluez.Error.NotSupported`.
    NotSupported(String),
    /// `org.bluez.Error.InvalidValueLength`.
    InvalidValueLength(String),
}

/// The adapter's object path.
pub const ADAPTER_PATH: &str = "/org/bluez/hci0";

/// `org.bluez.Adapter1` at `/org/bluez/hci0`.
pub struct Adapter {
    /// Every device the adapter can see once it scans.
    pub devices: Vec<Arc<Watch>>,
    /// Its address.
    pub address: String,
    /// Powered on.
    pub powered: bool,
    /// Blocked by rfkill: it cannot be powered on.
    pub blocked: bool,
    /// Scanning.
    pub discovering: bool,
    /// Service UUIDs of the discovery filter; empty: everything.
    pub filter: Vec<String>,
}

#[interface(name = "org.bluez.Adapter1")]
impl Adapter {
    async fn start_discovery(
        &mut self,
        #[zbus(object_server)] server: &ObjectServer,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), BluezError> {
        if !self.powered {
            return Err(BluezError::NotReady("Resource Not Ready".into()));
        }
        if !self.discovering {
            self.discovering = true;
            self.discovering_changed(&emitter).await?;
        }
        for device in &self.devices {
            if device.advertises(&self.filter) {
                device.register(server).await?;
            }
        }
        Ok(())
    }

    async fn stop_discovery(
        &mut self,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), BluezError> {
        if self.discovering {
            self.discovering = false;
            self.discovering_changed(&emitter).await?;
        }
        Ok(())
    }

    async fn set_discovery_filter(
        &mut self,
        filter: HashMap<String, OwnedValue>,
    ) -> Result<(), BluezError> {
        self.filter = match filter.get("UUIDs") {
            Some(v) => Vec::<String>::try_from(v.try_clone().map_err(zbus::Error::from)?)
                .map_err(|e| BluezError::Failed(format!("UUIDs: {e}")))?
                .into_iter()
                .map(|u| u.to_lowercase())
                .collect(),
            None => Vec::new(),
        };
        Ok(())
    }

    fn get_discovery_filters(&self) -> Vec<String> {
        ["UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData"]
            .map(String::from)
            .to_vec()
    }

    async fn remove_device(
        &mut self,
        device: OwnedObjectPath,
        #[zbus(object_server)] server: &ObjectServer,
    ) -> Result<(), BluezError> {
        match self.devices.iter().find(|d| d.path == device) {
            Some(d) => Ok(d.unregister(server).await?),
            None => Err(BluezError::Failed("Device does not exist".into())),
        }
    }

    #[zbus(property)]
    fn address(&self) -> String {
        self.address.clone()
    }

    #[zbus(property)]
    fn address_type(&self) -> String {
        "public".into()
    }

    #[zbus(property)]
    fn name(&self) -> String {
        "palpal-terminal".into()
    }

    #[zbus(property)]
    fn alias(&self) -> String {
        "palpal-terminal".into()
    }

    #[zbus(property)]
    fn class(&self) -> u32 {
        0x0010_0104
    }

    #[zbus(property)]
    fn powered(&self) -> bool {
        self.powered
    }

    #[zbus(property)]
    fn set_powered(&mut self, on: bool) -> zbus::fdo::Result<()> {
        if on && self.blocked {
            return Err(zbus::fdo::Error::Failed("Blocked through rfkill".into()));
        }
        self.powered = on;
        if !on {
            self.discovering = false;
        }
        Ok(())
    }

    #[zbus(property)]
    fn discoverable(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn pairable(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn discovering(&self) -> bool {
        self.discovering
    }

    #[zbus(property, name = "UUIDs")]
    fn uuids(&self) -> Vec<String> {
        Vec::new()
    }

    #[zbus(property)]
    fn modalias(&self) -> String {
        "usb:v1D6Bp0246d0540".into()
    }
}

/// `org.bluez.Device1` of one watch.
pub struct Device(pub Arc<Watch>);

#[interface(name = "org.bluez.Device1")]
impl Device {
    async fn connect(&self, #[zbus(connection)] conn: &Connection) -> Result<(), BluezError> {
        self.0.connect(conn).await
    }

    async fn disconnect(&self, #[zbus(connection)] conn: &Connection) -> Result<(), BluezError> {
        self.0.drop_link(conn).await?;
        Ok(())
    }

    async fn pair(&self) -> Result<(), BluezError> {
        Err(BluezError::NotSupported(
            "Palpal watches do not bond".into(),
        ))
    }

    async fn cancel_pairing(&self) -> Result<(), BluezError> {
        Ok(())
    }

    #[zbus(property)]
    fn address(&self) -> String {
        self.0.address.clone()
    }

    #[zbus(property)]
    fn address_type(&self) -> String {
        "random".into()
    }

    #[zbus(property)]
    fn name(&self) -> String {
        self.0.name.clone()
    }

    #[zbus(property)]
    fn alias(&self) -> String {
        self.0.name.clone()
    }

    #[zbus(property)]
    fn appearance(&self) -> u16 {
        0x00c1 // Watch: Sports Watch
    }

    #[zbus(property)]
    fn paired(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn bonded(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn trusted(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn blocked(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn legacy_pairing(&self) -> bool {
        false
    }

    #[zbus(property, name = "RSSI")]
    fn rssi(&self) -> i16 {
        self.0.rssi
    }

    #[zbus(property)]
    async fn connected(&self) -> bool {
        self.0.state.lock().await.connected
    }

    #[zbus(property)]
    async fn services_resolved(&self) -> bool {
        self.0.state.lock().await.services_resolved
    }

    #[zbus(property, name = "UUIDs")]
    fn uuids(&self) -> Vec<String> {
        self.0.advertised.clone()
    }

    #[zbus(property)]
    fn adapter(&self) -> OwnedObjectPath {
        ObjectPath::from_static_str_unchecked(ADAPTER_PATH).into()
    }
}

/// `org.bluez.GattService1`.
pub struct Service {
    /// 128-bit UUID, lower case.
    pub uuid: String,
    /// The device it belongs to.
    pub device: OwnedObjectPath,
    /// Attribute handle.
    pub handle: u16,
}

#[interface(name = "org.bluez.GattService1")]
impl Service {
    #[zbus(property, name = "UUID")]
    fn uuid(&self) -> String {
        self.uuid.clone()
    }

    #[zbus(property)]
    fn primary(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn device(&self) -> OwnedObjectPath {
        self.device.clone()
    }

    #[zbus(property)]
    fn includes(&self) -> Vec<OwnedObjectPath> {
        Vec::new()
    }

    #[zbus(property)]
    fn handle(&self) -> u16 {
        self.handle
    }
}

/// `org.bluez.GattCharacteristic1`.
pub struct Characteristic {
    /// The watch.
    pub watch: Arc<Watch>,
    /// Which characteristic.
    pub kind: CharKind,
    /// The service it belongs to.
    pub service: OwnedObjectPath,
    /// Attribute handle.
    pub handle: u16,
}

#[interface(name = "org.bluez.GattCharacteristic1")]
impl Characteristic {
    async fn read_value(
        &self,
        options: HashMap<String, OwnedValue>,
    ) -> Result<Vec<u8>, BluezError> {
        let value = self.watch.read(self.kind).await?;
        let offset = options
            .get("offset")
            .and_then(|v| u16::try_from(v).ok())
            .map_or(0, usize::from);
        Ok(value.get(offset..).map(<[u8]>::to_vec).unwrap_or_default())
    }

    async fn write_value(
        &self,
        value: Vec<u8>,
        _options: HashMap<String, OwnedValue>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), BluezError> {
        self.watch.write(conn, self.kind, value).await
    }

    async fn start_notify(&self, #[zbus(connection)] conn: &Connection) -> Result<(), BluezError> {
        self.watch.start_notify(conn, self.kind).await
    }

    async fn stop_notify(&self, #[zbus(connection)] conn: &Connection) -> Result<(), BluezError> {
        self.watch.stop_notify(conn, self.kind).await
    }

    #[zbus(property, name = "UUID")]
    fn uuid(&self) -> String {
        self.kind.uuid().to_string()
    }

    #[zbus(property)]
    fn service(&self) -> OwnedObjectPath {
        self.service.clone()
    }

    #[zbus(property)]
    async fn value(&self) -> Vec<u8> {
        self.watch.last_value(self.kind).await
    }

    #[zbus(property)]
    async fn notifying(&self) -> bool {
        self.watch.state.lock().await.notifying.contains(&self.kind)
    }

    #[zbus(property)]
    fn flags(&self) -> Vec<String> {
        self.kind.flags().iter().map(|f| f.to_string()).collect()
    }

    #[zbus(property, name = "MTU")]
    fn mtu(&self) -> u16 {
        self.watch.mtu
    }

    #[zbus(property)]
    fn handle(&self) -> u16 {
        self.handle
    }
}

/// `org.palpal.Simulator1`: what the watch saw and sent, for tests. Not part of BlueZ.
pub struct Figures(pub Arc<Watch>);

#[interface(name = "org.palpal.Simulator1")]
impl Figures {
    /// The sequence number each history request asked from, in order.
    #[zbus(property)]
    async fn requests(&self) -> Vec<u32> {
        self.0.state.lock().await.requests.clone()
    }

    /// Each History Data notification of each answer: first and last sequence number and
    /// its fate (0 sent, 1 sent corrupted, 2 dropped).
    #[zbus(property)]
    async fn sent(&self) -> Vec<(u32, u32, u8)> {
        self.0.state.lock().await.sent.clone()
    }

    /// Connection attempts, failed ones included.
    #[zbus(property)]
    async fn connect_attempts(&self) -> u32 {
        self.0.state.lock().await.connect_attempts
    }

    /// How far the watch clock is off now, in whole seconds.
    #[zbus(property)]
    async fn clock_offset_seconds(&self) -> i64 {
        self.0.state.lock().await.clock_offset.num_seconds()
    }
}
