//! The Heart Rate Measurement characteristic (0x2A37), every flag combination.

use serde::{Deserialize, Serialize};

use crate::{Error, Reader, Result};

const FLAG_U16: u8 = 0x01;
const FLAG_CONTACT_SUPPORTED: u8 = 0x04;
const FLAG_CONTACT_DETECTED: u8 = 0x02;
const FLAG_ENERGY: u8 = 0x08;
const FLAG_RR: u8 = 0x10;

/// The heart rate and the width it is sent in (flags bit 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeartRateValue {
    /// UINT8 beats per minute (bit 0 clear).
    U8(u8),
    /// UINT16 beats per minute (bit 0 set).
    U16(u16),
}

impl HeartRateValue {
    /// The narrowest width that holds `bpm`.
    pub fn new(bpm: u16) -> Self {
        match u8::try_from(bpm) {
            Ok(b) => HeartRateValue::U8(b),
            Err(_) => HeartRateValue::U16(bpm),
        }
    }

    /// Beats per minute.
    pub fn bpm(self) -> u16 {
        match self {
            HeartRateValue::U8(b) => b.into(),
            HeartRateValue::U16(b) => b,
        }
    }
}

/// The Sensor Contact Status bits (flags bits 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SensorContact {
    /// Bit 2 clear: the sensor does not report contact (bit 1 is then meaningless).
    NotSupported,
    /// Bits 2..1 = `10`: supported, no contact with the skin.
    NotDetected,
    /// Bits 2..1 = `11`: supported, in contact with the skin.
    Detected,
}

/// One Heart Rate Measurement notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartRateMeasurement {
    /// The heart rate.
    pub value: HeartRateValue,
    /// Whether the sensor touches the skin.
    pub contact: SensorContact,
    /// Energy expended since the last reset, in kilojoules (flags bit 3).
    pub energy_expended_kj: Option<u16>,
    /// RR intervals in 1/1024 s, oldest first (flags bit 4 when not empty).
    pub rr_intervals: Vec<u16>,
}

impl HeartRateMeasurement {
    /// Encodes the notification. Reserved flag bits 5..7 are sent as zero.
    pub fn encode(&self) -> Vec<u8> {
        let mut flags = 0u8;
        let mut out = Vec::with_capacity(5 + 2 * self.rr_intervals.len());
        out.push(0);
        match self.value {
            HeartRateValue::U8(b) => out.push(b),
            HeartRateValue::U16(b) => {
                flags |= FLAG_U16;
                out.extend_from_slice(&b.to_le_bytes());
            }
        }
        flags |= match self.contact {
            SensorContact::NotSupported => 0,
            SensorContact::NotDetected => FLAG_CONTACT_SUPPORTED,
            SensorContact::Detected => FLAG_CONTACT_SUPPORTED | FLAG_CONTACT_DETECTED,
        };
        if let Some(kj) = self.energy_expended_kj {
            flags |= FLAG_ENERGY;
            out.extend_from_slice(&kj.to_le_bytes());
        }
        if !self.rr_intervals.is_empty() {
            flags |= FLAG_RR;
            for rr in &self.rr_intervals {
                out.extend_from_slice(&rr.to_le_bytes());
            }
        }
        out[0] = flags;
        out
    }

    /// Decodes a notification. Reserved flag bits are ignored, as the specification asks; a
    /// field the flags announce but the bytes lack, an RR field that is empty or of odd length,
    /// or bytes the flags do not announce are errors.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("heart rate measurement", bytes);
        let flags = r.u8()?;
        let value = if flags & FLAG_U16 != 0 {
            HeartRateValue::U16(r.u16()?)
        } else {
            HeartRateValue::U8(r.u8()?)
        };
        let contact = match (
            flags & FLAG_CONTACT_SUPPORTED != 0,
            flags & FLAG_CONTACT_DETECTED != 0,
        ) {
            (false, _) => SensorContact::NotSupported,
            (true, false) => SensorContact::NotDetected,
            (true, true) => SensorContact::Detected,
        };
        let energy_expended_kj = if flags & FLAG_ENERGY != 0 {
            Some(r.u16()?)
        } else {
            None
        };
        let rr_intervals = if flags & FLAG_RR != 0 {
            let rest = r.rest();
            if rest.is_empty() || rest.len() & 1 == 1 {
                return Err(Error::RrIntervals(rest.len()));
            }
            rest.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect()
        } else {
            Vec::new()
        };
        r.finish()?;
        Ok(HeartRateMeasurement {
            value,
            contact,
            energy_expended_kj,
            rr_intervals,
        })
    }

    /// RR intervals in seconds.
    pub fn rr_seconds(&self) -> impl Iterator<Item = f64> + '_ {
        self.rr_intervals.iter().map(|&rr| f64::from(rr) / 1024.0)
    }
}
