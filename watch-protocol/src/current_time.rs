//! The Current Time characteristic (0x2A2B) and the watch clock in KST.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::{Error, Reader, Result};

/// Korea Standard Time is UTC+09:00 all year (no daylight saving time).
pub const KST_OFFSET_SECONDS: i32 = 9 * 3600;

/// The Adjust Reason bit field of Current Time: why the clock was last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AdjustReason(pub u8);

impl AdjustReason {
    /// No reason given.
    pub const NONE: AdjustReason = AdjustReason(0);
    /// Bit 0: manual time update (the terminal sets the clock).
    pub const MANUAL: AdjustReason = AdjustReason(0x01);
    /// Bit 1: external reference time update.
    pub const EXTERNAL_REFERENCE: AdjustReason = AdjustReason(0x02);
    /// Bit 2: change of time zone.
    pub const TIME_ZONE: AdjustReason = AdjustReason(0x04);
    /// Bit 3: change of DST.
    pub const DST: AdjustReason = AdjustReason(0x08);

    /// Whether every bit of `other` is set here.
    pub fn contains(self, other: AdjustReason) -> bool {
        self.0 & other.0 == other.0
    }
}

/// The 10-byte Current Time value: Exact Time 256 (a Date Time, the day of the week and
/// 1/256 s fractions) followed by the Adjust Reason. The watch keeps local time in KST.
///
/// Fields are as on the wire; `0` in year, month or day means "not known".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentTime {
    /// 1582..=9999, or 0 when not known.
    pub year: u16,
    /// 1..=12, or 0 when not known.
    pub month: u8,
    /// 1..=31, or 0 when not known.
    pub day: u8,
    /// 0..=23.
    pub hours: u8,
    /// 0..=59.
    pub minutes: u8,
    /// 0..=59.
    pub seconds: u8,
    /// `None` when not known (0 on the wire); 1 is Monday, 7 is Sunday.
    pub day_of_week: Option<Weekday>,
    /// Fractions of a second, in 1/256 s.
    pub fractions256: u8,
    /// Why the clock was last adjusted.
    pub adjust_reason: AdjustReason,
}

fn out_of_range(field: &'static str, value: impl Into<i64>) -> Error {
    Error::OutOfRange {
        field,
        value: value.into(),
    }
}

impl CurrentTime {
    /// Encoded length in bytes.
    pub const LEN: usize = 10;

    /// The value a terminal writes to set the watch to `at`, a wall-clock time in KST.
    pub fn from_kst(at: NaiveDateTime, adjust_reason: AdjustReason) -> Result<Self> {
        let year = at.year();
        if !(1582..=9999).contains(&year) {
            return Err(out_of_range("year", year));
        }
        // A leap second has nanos >= 1e9: keep it in the last fraction.
        let fractions = (u64::from(at.nanosecond()) * 256 / 1_000_000_000).min(255);
        Ok(CurrentTime {
            year: year as u16,
            month: at.month() as u8,
            day: at.day() as u8,
            hours: at.hour() as u8,
            minutes: at.minute() as u8,
            seconds: at.second() as u8,
            day_of_week: Some(at.weekday()),
            fractions256: fractions as u8,
            adjust_reason,
        })
    }

    /// The value a terminal writes to set the watch to the instant `now`, shown in KST.
    pub fn kst_from_utc(now: DateTime<Utc>, adjust_reason: AdjustReason) -> Result<Self> {
        let kst = now.naive_utc() + TimeDelta::seconds(i64::from(KST_OFFSET_SECONDS));
        Self::from_kst(kst, adjust_reason)
    }

    /// The watch's wall-clock time, if its date is known and valid.
    pub fn to_naive_datetime(&self) -> Result<NaiveDateTime> {
        let date =
            NaiveDate::from_ymd_opt(i32::from(self.year), self.month.into(), self.day.into())
                .filter(|_| self.year != 0)
                .ok_or_else(|| {
                    out_of_range(
                        "date",
                        i64::from(self.year) * 10_000
                            + i64::from(self.month) * 100
                            + i64::from(self.day),
                    )
                })?;
        let nanos = (u64::from(self.fractions256) * 1_000_000_000 / 256) as u32;
        date.and_hms_nano_opt(
            self.hours.into(),
            self.minutes.into(),
            self.seconds.into(),
            nanos,
        )
        .ok_or_else(|| out_of_range("hours", self.hours))
    }

    /// The 10 bytes of the characteristic value.
    pub fn encode(&self) -> [u8; 10] {
        let y = self.year.to_le_bytes();
        let dow = self.day_of_week.map_or(0, |d| d.number_from_monday() as u8);
        [
            y[0],
            y[1],
            self.month,
            self.day,
            self.hours,
            self.minutes,
            self.seconds,
            dow,
            self.fractions256,
            self.adjust_reason.0,
        ]
    }

    /// Decodes a Current Time value; any field outside its SIG range is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("current time", bytes);
        let year = r.u16()?;
        let month = r.u8()?;
        let day = r.u8()?;
        let hours = r.u8()?;
        let minutes = r.u8()?;
        let seconds = r.u8()?;
        let dow = r.u8()?;
        let fractions256 = r.u8()?;
        let adjust_reason = AdjustReason(r.u8()?);
        r.finish()?;
        if year != 0 && !(1582..=9999).contains(&year) {
            return Err(out_of_range("year", year));
        }
        if month > 12 {
            return Err(out_of_range("month", month));
        }
        if day > 31 {
            return Err(out_of_range("day", day));
        }
        if hours > 23 {
            return Err(out_of_range("hours", hours));
        }
        if minutes > 59 {
            return Err(out_of_range("minutes", minutes));
        }
        if seconds > 59 {
            return Err(out_of_range("seconds", seconds));
        }
        let day_of_week = match dow {
            0 => None,
            1 => Some(Weekday::Mon),
            2 => Some(Weekday::Tue),
            3 => Some(Weekday::Wed),
            4 => Some(Weekday::Thu),
            5 => Some(Weekday::Fri),
            6 => Some(Weekday::Sat),
            7 => Some(Weekday::Sun),
            other => return Err(out_of_range("day of week", other)),
        };
        Ok(CurrentTime {
            year,
            month,
            day,
            hours,
            minutes,
            seconds,
            day_of_week,
            fractions256,
            adjust_reason,
        })
    }
}

/// How far the watch clock is ahead of (positive) or behind (negative) `now_kst`, the
/// terminal's wall-clock time in KST. The link shows "watch clock far off" above a threshold.
pub fn clock_offset(watch: &CurrentTime, now_kst: NaiveDateTime) -> Result<TimeDelta> {
    Ok(watch.to_naive_datetime()? - now_kst)
}
