//! 128-bit attribute UUIDs, the SIG's 16-bit ones and Palpal's own.

use std::fmt;

/// A 128-bit Bluetooth attribute UUID, stored as the big-endian number its text form spells
/// (`0000180d-0000-1000-8000-00805f9b34fb` is `0x0000180d_0000_1000_8000_00805f9b34fb`), so
/// a BLE adapter converts it with `uuid::Uuid::from_u128(u.as_u128())`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BleUuid(u128);

/// The Bluetooth Base UUID: a SIG 16-bit UUID `xxxx` stands for `0000xxxx-0000-1000-8000-00805f9b34fb`.
pub const SIG_UUID_BASE: BleUuid = BleUuid(0x0000_0000_0000_1000_8000_0080_5f9b_34fb);

/// The base of Palpal's own UUIDs, `c8d3xxxx-2b54-4f27-9a1e-7f0e6d9988a1`: a random (version
/// 4) UUID drawn once, with bits 96..112 replaced by a 16-bit attribute number.
pub const PALPAL_UUID_BASE: BleUuid = BleUuid(0xc8d3_0000_2b54_4f27_9a1e_7f0e_6d99_88a1);

impl BleUuid {
    /// A UUID from its 128-bit value.
    pub const fn from_u128(value: u128) -> Self {
        BleUuid(value)
    }

    /// A SIG-assigned 16-bit UUID expanded over the Bluetooth Base UUID.
    pub const fn from_sig(short: u16) -> Self {
        BleUuid(SIG_UUID_BASE.0 | ((short as u128) << 96))
    }

    /// A Palpal attribute UUID: `number` in place of the base's bits 96..112.
    pub const fn palpal(number: u16) -> Self {
        BleUuid(PALPAL_UUID_BASE.0 | ((number as u128) << 96))
    }

    /// The 128-bit value.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// The 16-bit form, if this UUID is over the Bluetooth Base UUID.
    pub const fn as_sig(self) -> Option<u16> {
        if self.0 & !(0xffff_u128 << 96) == SIG_UUID_BASE.0 {
            Some((self.0 >> 96) as u16)
        } else {
            None
        }
    }
}

impl fmt::Display for BleUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xffff_ffff_ffff
        )
    }
}

/// The services the watch exposes.
pub mod service {
    use super::BleUuid;

    /// Device Information (0x180A): serial number, model, firmware revision.
    pub const DEVICE_INFORMATION: BleUuid = BleUuid::from_sig(0x180a);
    /// Battery (0x180F).
    pub const BATTERY: BleUuid = BleUuid::from_sig(0x180f);
    /// Current Time (0x1805): the terminal sets the watch clock, in KST.
    pub const CURRENT_TIME: BleUuid = BleUuid::from_sig(0x1805);
    /// Heart Rate (0x180D).
    pub const HEART_RATE: BleUuid = BleUuid::from_sig(0x180d);
    /// Palpal History: stored step and heart-rate records. Terminals scan for this UUID.
    pub const PALPAL_HISTORY: BleUuid = BleUuid::palpal(0x0001);
}

/// The characteristics the terminal reads, writes or subscribes to.
pub mod characteristic {
    use super::BleUuid;

    /// Model Number String (0x2A24), UTF-8, read.
    pub const MODEL_NUMBER: BleUuid = BleUuid::from_sig(0x2a24);
    /// Serial Number String (0x2A25), UTF-8, read.
    pub const SERIAL_NUMBER: BleUuid = BleUuid::from_sig(0x2a25);
    /// Firmware Revision String (0x2A26), UTF-8, read.
    pub const FIRMWARE_REVISION: BleUuid = BleUuid::from_sig(0x2a26);
    /// Battery Level (0x2A19), one byte 0..=100 percent, read and notify.
    pub const BATTERY_LEVEL: BleUuid = BleUuid::from_sig(0x2a19);
    /// Current Time (0x2A2B), 10 bytes, read, write and notify.
    pub const CURRENT_TIME: BleUuid = BleUuid::from_sig(0x2a2b);
    /// Local Time Information (0x2A0F), read: KST is time zone +36 (quarter hours), DST 0.
    pub const LOCAL_TIME_INFORMATION: BleUuid = BleUuid::from_sig(0x2a0f);
    /// Heart Rate Measurement (0x2A37), notify.
    pub const HEART_RATE_MEASUREMENT: BleUuid = BleUuid::from_sig(0x2a37);
    /// Body Sensor Location (0x2A38), read.
    pub const BODY_SENSOR_LOCATION: BleUuid = BleUuid::from_sig(0x2a38);
    /// History Data (Palpal), notify: packed records, see [`crate::HistoryNotification`].
    pub const HISTORY_DATA: BleUuid = BleUuid::palpal(0x0002);
    /// History Record Access Control Point (Palpal, RACP pattern of 0x2A52), write and indicate.
    pub const HISTORY_CONTROL_POINT: BleUuid = BleUuid::palpal(0x0003);
    /// Watch Certificate (Palpal), read: the program's certificate of the watch's key, see
    /// [`crate::WatchCertificate`].
    pub const WATCH_CERTIFICATE: BleUuid = BleUuid::palpal(0x0004);
    /// The SIG's Record Access Control Point (0x2A52), whose pattern the Palpal one follows.
    pub const RECORD_ACCESS_CONTROL_POINT: BleUuid = BleUuid::from_sig(0x2a52);
}
