//! Device Information strings and the Battery Level.

use crate::{Error, Result};

/// Decodes a Device Information string (serial, model, firmware): UTF-8, not terminated; some
/// watches pad with NUL bytes, which are dropped from the end.
pub fn decode_utf8_string(bytes: &[u8]) -> Result<String> {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    std::str::from_utf8(&bytes[..end])
        .map(str::to_owned)
        .map_err(|_| Error::Utf8)
}

/// Decodes the Battery Level characteristic (0x2A19): one byte, a percentage 0..=100.
pub fn decode_battery_level(bytes: &[u8]) -> Result<u8> {
    match bytes {
        [level @ 0..=100] => Ok(*level),
        [level] => Err(Error::OutOfRange {
            field: "battery level",
            value: i64::from(*level),
        }),
        [] => Err(Error::Truncated {
            what: "battery level",
            needed: 1,
            got: 0,
        }),
        [_, rest @ ..] => Err(Error::TrailingBytes {
            what: "battery level",
            extra: rest.len(),
        }),
    }
}
