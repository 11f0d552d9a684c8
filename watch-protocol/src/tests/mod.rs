//! Tests: worked hex examples (the ones in `docs/watch-gatt.md`), property round trips, and
//! history transfers cut, corrupted and resumed.

mod examples;
mod props;
mod transfer;

use std::fmt::Debug;

use chrono::{NaiveDate, NaiveDateTime};

use crate::{
    CurrentTime, Error, HeartRateMeasurement, HistoryNotification, HistoryRecord, RacpMessage,
    Result,
};

/// Bytes from hex written in pairs, spaces allowed.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() & 1 == 0, "odd hex: {s}");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// Hex in pairs separated by spaces, as the docs write it.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub(crate) fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> NaiveDateTime {
    date(y, m, d).and_hms_opt(h, min, s).unwrap()
}

/// A wire value with a decoder and an encoder, so one `check` serves every codec.
pub(crate) trait Codec: Sized + PartialEq + Debug {
    fn decode(bytes: &[u8]) -> Result<Self>;
    fn encode(&self) -> Vec<u8>;
}

impl Codec for HeartRateMeasurement {
    fn decode(bytes: &[u8]) -> Result<Self> {
        HeartRateMeasurement::decode(bytes)
    }
    fn encode(&self) -> Vec<u8> {
        HeartRateMeasurement::encode(self)
    }
}

impl Codec for CurrentTime {
    fn decode(bytes: &[u8]) -> Result<Self> {
        CurrentTime::decode(bytes)
    }
    fn encode(&self) -> Vec<u8> {
        CurrentTime::encode(self).to_vec()
    }
}

impl Codec for HistoryNotification {
    fn decode(bytes: &[u8]) -> Result<Self> {
        HistoryNotification::decode(bytes)
    }
    fn encode(&self) -> Vec<u8> {
        HistoryNotification::encode(self).unwrap()
    }
}

impl Codec for RacpMessage {
    fn decode(bytes: &[u8]) -> Result<Self> {
        RacpMessage::decode(bytes)
    }
    fn encode(&self) -> Vec<u8> {
        RacpMessage::encode(self)
    }
}

/// What a hex input must decode to.
#[derive(Debug)]
pub(crate) enum Expect<T> {
    /// This value, and it encodes back to exactly the input.
    Exact(T),
    /// This value, which encodes canonically to the given hex (the input used a lenient form).
    Canonical(T, &'static str),
    /// This error.
    Fails(Error),
}

/// The one check of the worked examples: decode `input`, compare with `expect`, and for a
/// value, encode it again and compare the bytes.
pub(crate) fn check<T: Codec>(input: &str, expect: Expect<T>) {
    let decoded = T::decode(&hex(input));
    match expect {
        Expect::Exact(value) => {
            assert_eq!(decoded.as_ref(), Ok(&value), "decoding {input}");
            assert_eq!(
                to_hex(&value.encode()),
                to_hex(&hex(input)),
                "encoding {value:?}"
            );
        }
        Expect::Canonical(value, canonical) => {
            assert_eq!(decoded.as_ref(), Ok(&value), "decoding {input}");
            assert_eq!(
                to_hex(&value.encode()),
                to_hex(&hex(canonical)),
                "encoding {value:?}"
            );
        }
        Expect::Fails(error) => assert_eq!(decoded, Err(error), "decoding {input}"),
    }
}

/// Three days of a member's history the way a watch stores it: through each day, hourly
/// steps and an hourly heart-rate sample interleaved, and the day total at midnight.
pub(crate) fn sample_days(first: NaiveDate, days: u32) -> Vec<HistoryRecord> {
    let mut out = Vec::new();
    for d in 0..days {
        let day = first + chrono::Days::new(d.into());
        let mut total = 0;
        for hour in 0..24u8 {
            let steps: u32 = match hour {
                0..=5 => 0,
                6..=8 => 400 + 211 * u32::from(hour) + 37 * d,
                9..=17 => 700 + 53 * u32::from(hour) + 11 * d,
                _ => 120 + 7 * u32::from(hour),
            };
            total += steps;
            out.push(HistoryRecord::HourSteps {
                date: day,
                hour,
                steps,
            });
            out.push(HistoryRecord::HeartRate {
                at: day
                    .and_hms_opt(hour.into(), (17 * u32::from(hour)) % 60, 41)
                    .unwrap(),
                bpm: 58 + (hour * 3) % 50,
            });
        }
        out.push(HistoryRecord::DaySteps {
            date: day,
            steps: total,
            proof: None,
        });
    }
    out
}
