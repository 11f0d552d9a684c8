//! The Palpal watch's Bluetooth LE GATT profile as pure Rust: UUIDs, byte codecs for the
//! standard characteristics the terminal uses (Current Time, Heart Rate Measurement, Battery
//! Level, Device Information strings), the Palpal history service's record encoding, its
//! Record Access Control Point (RACP) messages, and the two ends of a history transfer: the
//! terminal's [`HistoryTransfer`] state machine and the watch's [`WatchHistory`] encoder.
//!
//! This crate is a sans-IO core: it turns bytes into values and values into bytes, and decides
//! what to send next; it never touches a radio, a socket or the clock (the time to set on a
//! watch is an argument). It does not scan, connect, retry or store anything: the BLE link
//! adapter (btleplug), the watch simulator (BlueZ on D-Bus) and the terminal store do that,
//! feeding it the bytes they read and writing the bytes it returns. Malformed input is an
//! [`Error`], never a panic. The wire formats are described, with worked examples in hex, in
//! `docs/watch-gatt.md`.

mod crc;
mod current_time;
mod device;
mod heart_rate;
mod history;
pub mod proof;
mod racp;
#[cfg(test)]
mod tests;
mod transfer;
mod uuid;
mod watch;

pub use crc::crc16;
pub use current_time::{clock_offset, AdjustReason, CurrentTime, KST_OFFSET_SECONDS};
pub use device::{decode_battery_level, decode_utf8_string};
pub use heart_rate::{HeartRateMeasurement, HeartRateValue, SensorContact};
pub use history::{
    fixed_width_len, notification_capacity, pack_notifications, HistoryNotification, HistoryRecord,
    SequencedRecord, FIRST_DATE, MAX_SEQ, MIN_MTU_SIGNED,
};
pub use proof::{DayProof, ProofError, WatchCa, WatchCertificate, WatchKey};
pub use racp::{Filter, OpCode, RacpMessage, ResponseCode};
pub use transfer::{Batch, HistoryTransfer, IndicationOutcome, TransferState};
pub use uuid::{characteristic, service, BleUuid, PALPAL_UUID_BASE, SIG_UUID_BASE};
pub use watch::{WatchHistory, WatchReply};

/// Everything that can go wrong decoding, encoding or transferring watch data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The value ended before a field it announces.
    #[error("{what} is truncated: needs {needed} bytes, has {got}")]
    Truncated {
        /// The characteristic or structure being decoded.
        what: &'static str,
        /// How many bytes were needed at least.
        needed: usize,
        /// How many bytes there were.
        got: usize,
    },
    /// Bytes follow the last field the value announces.
    #[error("{what} has {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// The characteristic or structure being decoded.
        what: &'static str,
        /// How many bytes are left over.
        extra: usize,
    },
    /// A field holds a value outside its range.
    #[error("{field} out of range: {value}")]
    OutOfRange {
        /// The field, as named in `docs/watch-gatt.md`.
        field: &'static str,
        /// The value found or given.
        value: i64,
    },
    /// The flags announce RR intervals but the remaining bytes are not whole intervals.
    #[error(
        "heart rate measurement RR interval field has {0} bytes, not a non-zero multiple of 2"
    )]
    RrIntervals(usize),
    /// A history notification's CRC does not match its bytes: something was corrupted.
    #[error(
        "history notification CRC mismatch: computed {computed:#06x}, received {received:#06x}"
    )]
    Crc {
        /// The CRC computed over the bytes received.
        computed: u16,
        /// The CRC the notification carries.
        received: u16,
    },
    /// A history record starts with a tag this version does not know.
    #[error("unknown history record tag {0:#04x}")]
    UnknownTag(u8),
    /// A history notification is malformed in a way the other variants do not cover.
    #[error("malformed history notification: {0}")]
    Malformed(&'static str),
    /// A variable-length integer is overlong, overflows 32 bits or is cut off.
    #[error("malformed varint in history record")]
    Varint,
    /// The RACP op code is not one this profile supports.
    #[error("RACP op code {0:#04x} is not supported")]
    UnsupportedOpCode(u8),
    /// The RACP operator is not valid for the op code.
    #[error("RACP operator {operator:#04x} is not valid for op code {op_code:#04x}")]
    InvalidOperator {
        /// The op code of the request.
        op_code: u8,
        /// The operator found.
        operator: u8,
    },
    /// The RACP filter type is not the sequence number.
    #[error("RACP filter type {0:#04x} is not supported")]
    UnsupportedFilter(u8),
    /// The RACP operand has the wrong length or an impossible range.
    #[error("RACP operand is invalid for operator {operator:#04x}")]
    InvalidOperand {
        /// The operator whose operand is wrong.
        operator: u8,
    },
    /// A string characteristic is not UTF-8.
    #[error("string characteristic is not valid UTF-8")]
    Utf8,
    /// The watch answered the history request with something other than success.
    #[error("watch answered {request:?} with {code:?}")]
    Refused {
        /// The request the watch answered.
        request: OpCode,
        /// The watch's response code.
        code: ResponseCode,
    },
    /// The stream of records has a hole, or starts or ends without its marker.
    #[error("history stream expected sequence {expected}, got {got}")]
    Gap {
        /// The next sequence number the terminal needs.
        expected: u32,
        /// The first sequence number of the notification received instead.
        got: u32,
    },
    /// The watch reported success but the stream's end marker never arrived.
    #[error("watch reported the transfer complete but the last notifications are missing")]
    Incomplete,
    /// The transfer stopped; no record at or after `resume_from` has been acknowledged.
    #[error("history transfer interrupted ({reason}); resume from sequence {resume_from}")]
    Interrupted {
        /// The sequence number to ask for next: every record before it was received in order.
        resume_from: u32,
        /// What interrupted it.
        reason: Box<Error>,
    },
}

impl Error {
    /// The sequence number a transfer must resume from, if this error interrupted one.
    pub fn resume_from(&self) -> Option<u32> {
        match self {
            Error::Interrupted { resume_from, .. } => Some(*resume_from),
            _ => None,
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A cursor over a byte slice that reports truncation as [`Error::Truncated`].
struct Reader<'a> {
    what: &'static str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(what: &'static str, bytes: &'a [u8]) -> Self {
        Reader { what, bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.at..end];
                self.at = end;
                Ok(out)
            }
            None => Err(Error::Truncated {
                what: self.what,
                needed: self.at.saturating_add(n),
                got: self.bytes.len(),
            }),
        }
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = &self.bytes[self.at..];
        self.at = self.bytes.len();
        out
    }

    fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(Error::TrailingBytes {
                what: self.what,
                extra,
            }),
        }
    }
}
