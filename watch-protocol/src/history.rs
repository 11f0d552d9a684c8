//! History records and their packing into History Data notifications.
//!
//! A notification is `first_seq: u32 LE`, then items, then a CRC-16 (LE) over everything
//! before it. Items are data records (whose sequence numbers run from `first_seq` up by one)
//! and the one-byte stream markers. Each data record starts with a tag byte:
//!
//! ```text
//! bit 7..6  kind: 00 day steps, 01 hour steps, 10 heart rate, 11 marker
//! bit 5     same date: the date is omitted, it is the previous data record's in this notification
//! bit 4..0  hour 0..=23 (hour steps, heart rate); 0 for day steps
//! ```

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde::{Deserialize, Serialize};

use crate::proof::DayProof;
use crate::{crc16, Error, Reader, Result};

/// Day 0 of the two-byte day number: dates run from here to 2179-06-06.
pub const FIRST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => panic!("2000-01-01 is a date"),
};

/// The highest sequence number a record may have (`u32::MAX` is kept free so "the next
/// sequence to ask for" always fits in a `u32`).
pub const MAX_SEQ: u32 = u32::MAX - 1;

const KIND_MASK: u8 = 0xc0;
const KIND_DAY: u8 = 0x00;
const KIND_HOUR: u8 = 0x40;
const KIND_HEART: u8 = 0x80;
const KIND_MARKER: u8 = 0xc0;
const SAME_DATE: u8 = 0x20;
const HOUR_MASK: u8 = 0x1f;
/// In a day-steps tag, where the hour would be: the record carries the watch's signature.
const SIGNED_DAY: u8 = 0x01;
/// A signed day record's proof: counter, signing time, signature.
const PROOF_LEN: usize = 4 + 4 + 64;
/// Marker: this notification is the first of the stream answering a request.
const STREAM_START: u8 = 0xc0;
/// Marker: this notification is the last of the stream.
const STREAM_END: u8 = 0xc1;
const HEADER_LEN: usize = 4;
const CRC_LEN: usize = 2;

/// One stored history record, without its sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HistoryRecord {
    /// The day's cumulative step count so far (a day may have several; the highest counts).
    DaySteps {
        /// The member's day, in KST.
        date: NaiveDate,
        /// Steps counted that day.
        steps: u32,
        /// The watch's signature over the record ([`crate::proof`]); a watch that cannot sign
        /// stores none, and the central server credits no steps from such a record.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<DayProof>,
    },
    /// Steps counted in one hour of a day.
    HourSteps {
        /// The day, in KST.
        date: NaiveDate,
        /// The hour, 0..=23: steps from `hour:00:00` to `hour:59:59`.
        hour: u8,
        /// Steps counted in that hour.
        steps: u32,
    },
    /// One heart-rate sample.
    HeartRate {
        /// When it was taken, KST, whole seconds.
        at: NaiveDateTime,
        /// Beats per minute.
        bpm: u8,
    },
}

impl HistoryRecord {
    /// The day the record belongs to.
    pub fn date(&self) -> NaiveDate {
        match self {
            HistoryRecord::DaySteps { date, .. } | HistoryRecord::HourSteps { date, .. } => *date,
            HistoryRecord::HeartRate { at, .. } => at.date(),
        }
    }

    /// Appends the record's encoding; the date is left out when it equals `prev_date`.
    fn encode_into(&self, prev_date: Option<NaiveDate>, out: &mut Vec<u8>) -> Result<()> {
        let date = self.date();
        let day = day_number(date)?;
        let same = if prev_date == Some(date) {
            SAME_DATE
        } else {
            0
        };
        let push_date = |out: &mut Vec<u8>| {
            if same == 0 {
                out.extend_from_slice(&day.to_le_bytes());
            }
        };
        match self {
            HistoryRecord::DaySteps { steps, proof, .. } => {
                out.push(KIND_DAY | same | if proof.is_some() { SIGNED_DAY } else { 0 });
                push_date(out);
                put_varint(*steps, out);
                if let Some(proof) = proof {
                    out.extend_from_slice(&proof.counter.to_le_bytes());
                    out.extend_from_slice(&proof.signed_at.to_le_bytes());
                    out.extend_from_slice(&proof.signature);
                }
            }
            HistoryRecord::HourSteps { hour, steps, .. } => {
                check_hour(*hour)?;
                out.push(KIND_HOUR | same | hour);
                push_date(out);
                put_varint(*steps, out);
            }
            HistoryRecord::HeartRate { at, bpm } => {
                if at.nanosecond() != 0 {
                    return Err(Error::OutOfRange {
                        field: "heart rate time nanoseconds",
                        value: at.nanosecond().into(),
                    });
                }
                let second_of_hour = at.minute() * 60 + at.second();
                out.push(KIND_HEART | same | at.hour() as u8);
                push_date(out);
                out.extend_from_slice(&(second_of_hour as u16).to_le_bytes());
                out.push(*bpm);
            }
        }
        Ok(())
    }

    fn decode_from(tag: u8, prev_date: Option<NaiveDate>, r: &mut Reader<'_>) -> Result<Self> {
        let date = if tag & SAME_DATE != 0 {
            prev_date.ok_or(Error::Malformed(
                "first record of a notification omits its date",
            ))?
        } else {
            let day = r.u16()?;
            FIRST_DATE + chrono::Days::new(day.into())
        };
        let hour = tag & HOUR_MASK;
        match tag & KIND_MASK {
            KIND_DAY => {
                let signed = match hour {
                    0 => false,
                    SIGNED_DAY => true,
                    _ => return Err(Error::UnknownTag(tag)),
                };
                let steps = get_varint(r)?;
                let proof = if signed {
                    let counter = r.u32()?;
                    let signed_at = r.u32()?;
                    let signature: [u8; 64] = r
                        .take(64)?
                        .try_into()
                        .map_err(|_| Error::Malformed("day signature"))?;
                    Some(DayProof {
                        counter,
                        signed_at,
                        signature,
                    })
                } else {
                    None
                };
                Ok(HistoryRecord::DaySteps { date, steps, proof })
            }
            KIND_HOUR => {
                check_hour(hour)?;
                Ok(HistoryRecord::HourSteps {
                    date,
                    hour,
                    steps: get_varint(r)?,
                })
            }
            KIND_HEART => {
                check_hour(hour)?;
                let second_of_hour = r.u16()?;
                if second_of_hour >= 3600 {
                    return Err(Error::OutOfRange {
                        field: "heart rate second of hour",
                        value: second_of_hour.into(),
                    });
                }
                let bpm = r.u8()?;
                let s = u32::from(second_of_hour);
                let time = NaiveTime::from_hms_opt(hour.into(), s / 60, s % 60)
                    .ok_or(Error::Malformed("heart rate time"))?;
                Ok(HistoryRecord::HeartRate {
                    at: date.and_time(time),
                    bpm,
                })
            }
            _ => Err(Error::UnknownTag(tag)),
        }
    }
}

/// A record with the sequence number the watch gave it when it stored it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequencedRecord {
    /// Position in the watch's history, 0..=[`MAX_SEQ`], one more for each record stored.
    pub seq: u32,
    /// The record.
    pub record: HistoryRecord,
}

/// One History Data notification, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryNotification {
    /// The sequence number of `records[0]`; the others follow one by one.
    pub first_seq: u32,
    /// Carries the stream-start marker: the first notification answering a request.
    pub starts_stream: bool,
    /// Carries the stream-end marker: the last notification answering a request.
    pub ends_stream: bool,
    /// At least one record.
    pub records: Vec<HistoryRecord>,
}

impl HistoryNotification {
    /// The sequence number of the last record.
    pub fn last_seq(&self) -> u32 {
        let n = self.records.len().saturating_sub(1);
        self.first_seq.saturating_add(n as u32)
    }

    /// The records with their sequence numbers.
    pub fn sequenced(&self) -> impl Iterator<Item = SequencedRecord> + '_ {
        // Not `(first_seq..).zip(..)`: a `RangeFrom` steps past its last item, which overflows
        // when the last record is numbered `MAX_SEQ` (found by the `record` fuzz target).
        self.records
            .iter()
            .enumerate()
            .map(|(i, record)| SequencedRecord {
                seq: self
                    .first_seq
                    .saturating_add(u32::try_from(i).unwrap_or(u32::MAX)),
                record: record.clone(),
            })
    }

    /// The notification's bytes (not limited to any MTU; see [`pack_notifications`]).
    pub fn encode(&self) -> Result<Vec<u8>> {
        if self.records.is_empty() {
            return Err(Error::Malformed("no records"));
        }
        check_seq_range(self.first_seq, self.records.len())?;
        let mut out = Vec::with_capacity(HEADER_LEN + 6 * self.records.len() + 4);
        out.extend_from_slice(&self.first_seq.to_le_bytes());
        if self.starts_stream {
            out.push(STREAM_START);
        }
        let mut prev = None;
        for record in &self.records {
            record.encode_into(prev, &mut out)?;
            prev = Some(record.date());
        }
        if self.ends_stream {
            out.push(STREAM_END);
        }
        push_crc(&mut out);
        Ok(out)
    }

    /// Decodes a notification, checking its CRC first.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "history notification";
        let min = HEADER_LEN + 1 + CRC_LEN;
        if bytes.len() < min {
            return Err(Error::Truncated {
                what: WHAT,
                needed: min,
                got: bytes.len(),
            });
        }
        let (body, crc) = bytes.split_at(bytes.len() - CRC_LEN);
        let received = u16::from_le_bytes([crc[0], crc[1]]);
        let computed = crc16(body);
        if computed != received {
            return Err(Error::Crc { computed, received });
        }
        let mut r = Reader::new(WHAT, body);
        let first_seq = r.u32()?;
        let mut n = HistoryNotification {
            first_seq,
            starts_stream: false,
            ends_stream: false,
            records: Vec::new(),
        };
        let mut prev = None;
        while r.remaining() > 0 {
            let tag = r.u8()?;
            if n.ends_stream {
                return Err(Error::Malformed("bytes after the stream-end marker"));
            }
            match tag {
                STREAM_START if r.at == HEADER_LEN + 1 => n.starts_stream = true,
                STREAM_START => return Err(Error::Malformed("stream-start marker not first")),
                STREAM_END => n.ends_stream = true,
                t if t & KIND_MASK == KIND_MARKER => return Err(Error::UnknownTag(t)),
                t => {
                    let record = HistoryRecord::decode_from(t, prev, &mut r)?;
                    prev = Some(record.date());
                    n.records.push(record);
                }
            }
        }
        if n.records.is_empty() {
            return Err(Error::Malformed("no records"));
        }
        check_seq_range(first_seq, n.records.len())?;
        Ok(n)
    }
}

/// The smallest ATT MTU whose History Data notification holds a signed day record alone:
/// header 4, stream-start marker 1, the record (tag 1, date 2, steps up to 5, proof 72),
/// stream-end marker 1, CRC 2, and the 3 bytes of opcode and handle.
pub const MIN_MTU_SIGNED: u16 = (HEADER_LEN + 1 + 1 + 2 + 5 + PROOF_LEN + 1 + CRC_LEN + 3) as u16;

/// The History Data payload size for an ATT MTU: `MTU - 3` (opcode and handle), with the MTU
/// taken between the minimum 23 and the maximum 517.
pub fn notification_capacity(mtu: u16) -> usize {
    usize::from(mtu.clamp(23, 517)) - 3
}

/// Packs `records`, numbered from `first_seq`, into as few notifications of at most
/// [`notification_capacity`]`(mtu)` bytes as the greedy order allows. The first carries the
/// stream-start marker, the last the stream-end marker. No records, no notifications. A
/// record that does not fit a notification even alone (a signed day record under
/// [`MIN_MTU_SIGNED`]) is an error.
pub fn pack_notifications(
    first_seq: u32,
    records: &[HistoryRecord],
    mtu: u16,
) -> Result<Vec<Vec<u8>>> {
    check_seq_range(first_seq, records.len())?;
    let capacity = notification_capacity(mtu);
    let mut out = Vec::new();
    let mut buf = Vec::with_capacity(capacity);
    buf.extend_from_slice(&first_seq.to_le_bytes());
    buf.push(STREAM_START);
    let mut in_buf = 0usize;
    let mut prev = None;
    let mut item = Vec::with_capacity(16);
    for (i, record) in records.iter().enumerate() {
        let last = i + 1 == records.len();
        item.clear();
        record.encode_into(prev, &mut item)?;
        let need = item.len() + usize::from(last) + CRC_LEN;
        if in_buf > 0 && buf.len() + need > capacity {
            push_crc(&mut buf);
            out.push(std::mem::replace(&mut buf, Vec::with_capacity(capacity)));
            buf.extend_from_slice(&(first_seq + i as u32).to_le_bytes());
            in_buf = 0;
            item.clear();
            record.encode_into(None, &mut item)?;
        }
        if buf.len() + item.len() + usize::from(last) + CRC_LEN > capacity {
            // Alone in a notification and still too long: a signed day record under
            // [`MIN_MTU_SIGNED`].
            return Err(Error::OutOfRange {
                field: "ATT MTU for a record this long",
                value: mtu.into(),
            });
        }
        buf.extend_from_slice(&item);
        in_buf += 1;
        prev = Some(record.date());
    }
    if in_buf > 0 {
        buf.push(STREAM_END);
        push_crc(&mut buf);
        out.push(buf);
    }
    Ok(out)
}

/// The record's size as fixed-width fields with no framing: the "payload minimum" the link
/// figures compare against. Sequence number 4 bytes; a date 2 (day number); steps in a day 4,
/// in an hour 2, an hour 1; a heart-rate time 4 (seconds since 2000) and bpm 1; a day's
/// proof 72 (counter 4, time 4, signature 64).
pub fn fixed_width_len(record: &HistoryRecord) -> usize {
    4 + match record {
        HistoryRecord::DaySteps { proof, .. } => {
            2 + 4 + if proof.is_some() { PROOF_LEN } else { 0 }
        }
        HistoryRecord::HourSteps { .. } => 2 + 1 + 2,
        HistoryRecord::HeartRate { .. } => 4 + 1,
    }
}

/// Whether the codec can carry `record` (date, hour and time within range).
pub(crate) fn check_encodable(record: &HistoryRecord) -> Result<()> {
    record.encode_into(None, &mut Vec::with_capacity(12))
}

fn push_crc(buf: &mut Vec<u8>) {
    let crc = crc16(buf);
    buf.extend_from_slice(&crc.to_le_bytes());
}

pub(crate) fn check_seq_range(first_seq: u32, count: usize) -> Result<()> {
    let last = u64::from(first_seq) + (count.max(1) as u64 - 1);
    if last > u64::from(MAX_SEQ) {
        return Err(Error::OutOfRange {
            field: "sequence number",
            value: last as i64,
        });
    }
    Ok(())
}

fn check_hour(hour: u8) -> Result<()> {
    if hour > 23 {
        return Err(Error::OutOfRange {
            field: "hour",
            value: hour.into(),
        });
    }
    Ok(())
}

fn day_number(date: NaiveDate) -> Result<u16> {
    let days = (date - FIRST_DATE).num_days();
    u16::try_from(days).map_err(|_| Error::OutOfRange {
        field: "date (days since 2000-01-01)",
        value: days,
    })
}

/// LEB128: seven bits a byte, least significant first, high bit set on all but the last.
fn put_varint(mut v: u32, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a canonical LEB128 `u32`: at most 5 bytes, no trailing zero group, no overflow.
fn get_varint(r: &mut Reader<'_>) -> Result<u32> {
    let mut v: u32 = 0;
    for i in 0..5 {
        let b = r.u8().map_err(|_| Error::Varint)?;
        let group = u32::from(b & 0x7f);
        if i == 4 && b > 0x0f {
            return Err(Error::Varint);
        }
        v |= group << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Err(Error::Varint);
            }
            return Ok(v);
        }
    }
    Err(Error::Varint)
}
