//! The worked examples of `docs/watch-gatt.md`, byte for byte.

use chrono::{TimeZone, Utc, Weekday};

use super::{at, check, date, hex, Expect};
use crate::{
    characteristic, clock_offset, crc16, decode_battery_level, decode_utf8_string, service,
    AdjustReason, BleUuid, CurrentTime, Error, Filter, HeartRateMeasurement as Hrm,
    HeartRateValue as V, HistoryNotification, HistoryRecord, OpCode, RacpMessage as Racp,
    ResponseCode as Code, SensorContact as Contact,
};

#[test]
fn uuids() {
    let cases = [
        (service::HEART_RATE, "0000180d-0000-1000-8000-00805f9b34fb"),
        (
            characteristic::CURRENT_TIME,
            "00002a2b-0000-1000-8000-00805f9b34fb",
        ),
        (
            service::PALPAL_HISTORY,
            "c8d30001-2b54-4f27-9a1e-7f0e6d9988a1",
        ),
        (
            characteristic::HISTORY_DATA,
            "c8d30002-2b54-4f27-9a1e-7f0e6d9988a1",
        ),
        (
            characteristic::HISTORY_CONTROL_POINT,
            "c8d30003-2b54-4f27-9a1e-7f0e6d9988a1",
        ),
    ];
    for (uuid, text) in cases {
        assert_eq!(uuid.to_string(), text);
    }
    assert_eq!(service::BATTERY.as_sig(), Some(0x180f));
    assert_eq!(service::PALPAL_HISTORY.as_sig(), None);
    assert_eq!(
        BleUuid::from_u128(0x2a19 << 96 | crate::SIG_UUID_BASE.as_u128()),
        characteristic::BATTERY_LEVEL
    );
}

#[test]
fn crc_check_value() {
    assert_eq!(crc16(b"123456789"), 0x29b1);
}

fn hrm(value: V, contact: Contact, energy: Option<u16>, rr: &[u16]) -> Hrm {
    Hrm {
        value,
        contact,
        energy_expended_kj: energy,
        rr_intervals: rr.to_vec(),
    }
}

#[test]
fn heart_rate_measurement() {
    use Contact::*;
    let what = "heart rate measurement";
    let cases = [
        (
            "00 48",
            Expect::Exact(hrm(V::U8(72), NotSupported, None, &[])),
        ),
        (
            "04 48",
            Expect::Exact(hrm(V::U8(72), NotDetected, None, &[])),
        ),
        ("06 48", Expect::Exact(hrm(V::U8(72), Detected, None, &[]))),
        (
            "01 2c 01",
            Expect::Exact(hrm(V::U16(300), NotSupported, None, &[])),
        ),
        (
            "01 48 00",
            Expect::Exact(hrm(V::U16(72), NotSupported, None, &[])),
        ),
        (
            "08 48 34 12",
            Expect::Exact(hrm(V::U8(72), NotSupported, Some(0x1234), &[])),
        ),
        (
            "10 48 00 04 00 02",
            Expect::Exact(hrm(V::U8(72), NotSupported, None, &[1024, 512])),
        ),
        (
            "1f 4b 00 10 00 20 03",
            Expect::Exact(hrm(V::U16(75), Detected, Some(16), &[800])),
        ),
        (
            "1e 48 05 00 00 04 00 04 00 04 00 04 00 04 00 04 00 04 00 04",
            Expect::Exact(hrm(V::U8(72), Detected, Some(5), &[1024; 8])),
        ),
        // Bit 1 without bit 2 still means "not supported"; reserved bits 5..7 are ignored.
        (
            "02 48",
            Expect::Canonical(hrm(V::U8(72), NotSupported, None, &[]), "00 48"),
        ),
        (
            "e0 48",
            Expect::Canonical(hrm(V::U8(72), NotSupported, None, &[]), "00 48"),
        ),
        (
            "",
            Expect::Fails(Error::Truncated {
                what,
                needed: 1,
                got: 0,
            }),
        ),
        (
            "00",
            Expect::Fails(Error::Truncated {
                what,
                needed: 2,
                got: 1,
            }),
        ),
        (
            "01 48",
            Expect::Fails(Error::Truncated {
                what,
                needed: 3,
                got: 2,
            }),
        ),
        (
            "08 48 01",
            Expect::Fails(Error::Truncated {
                what,
                needed: 4,
                got: 3,
            }),
        ),
        ("10 48", Expect::Fails(Error::RrIntervals(0))),
        ("10 48 00", Expect::Fails(Error::RrIntervals(1))),
        ("10 48 00 04 00", Expect::Fails(Error::RrIntervals(3))),
        (
            "00 48 00",
            Expect::Fails(Error::TrailingBytes { what, extra: 1 }),
        ),
    ];
    for (input, expect) in cases {
        check(input, expect);
    }
    assert_eq!(
        Hrm::decode(&hex("10 48 00 04 00 02"))
            .unwrap()
            .rr_seconds()
            .collect::<Vec<_>>(),
        [1.0, 0.5]
    );
    assert_eq!(V::new(255), V::U8(255));
    assert_eq!(V::new(256).bpm(), 256);
}

#[test]
fn current_time() {
    let set = CurrentTime {
        year: 2025,
        month: 12,
        day: 1,
        hours: 9,
        minutes: 30,
        seconds: 15,
        day_of_week: Some(Weekday::Mon),
        fractions256: 0x80,
        adjust_reason: AdjustReason::MANUAL,
    };
    let unknown = CurrentTime {
        year: 0,
        month: 0,
        day: 0,
        hours: 0,
        minutes: 0,
        seconds: 0,
        day_of_week: None,
        fractions256: 0,
        adjust_reason: AdjustReason::NONE,
    };
    let what = "current time";
    let range = |field, value| Expect::Fails(Error::OutOfRange { field, value });
    let cases = [
        ("e9 07 0c 01 09 1e 0f 01 80 01", Expect::Exact(set)),
        ("00 00 00 00 00 00 00 00 00 00", Expect::Exact(unknown)),
        (
            "e9 07 0c 01 09 1e 0f 01 80",
            Expect::Fails(Error::Truncated {
                what,
                needed: 10,
                got: 9,
            }),
        ),
        (
            "e9 07 0c 01 09 1e 0f 01 80 01 00",
            Expect::Fails(Error::TrailingBytes { what, extra: 1 }),
        ),
        ("2d 06 0c 01 09 1e 0f 01 80 01", range("year", 1581)),
        ("e9 07 0d 01 09 1e 0f 01 80 01", range("month", 13)),
        ("e9 07 0c 20 09 1e 0f 01 80 01", range("day", 32)),
        ("e9 07 0c 01 18 1e 0f 01 80 01", range("hours", 24)),
        ("e9 07 0c 01 09 3c 0f 01 80 01", range("minutes", 60)),
        ("e9 07 0c 01 09 1e 3c 01 80 01", range("seconds", 60)),
        ("e9 07 0c 01 09 1e 0f 08 80 01", range("day of week", 8)),
    ];
    for (input, expect) in cases {
        check(input, expect);
    }

    // The terminal sets the clock from its UTC instant; the watch shows KST.
    let now = Utc.with_ymd_and_hms(2025, 12, 1, 0, 30, 15).unwrap()
        + chrono::TimeDelta::milliseconds(500);
    assert_eq!(
        CurrentTime::kst_from_utc(now, AdjustReason::MANUAL).unwrap(),
        set
    );
    // KST midnight is 15:00 UTC the day before.
    let midnight = Utc.with_ymd_and_hms(2025, 12, 31, 15, 0, 0).unwrap();
    let t = CurrentTime::kst_from_utc(midnight, AdjustReason::NONE).unwrap();
    assert_eq!((t.year, t.month, t.day, t.hours), (2026, 1, 1, 0));
    assert_eq!(t.day_of_week, Some(Weekday::Thu));

    let drift = clock_offset(&set, at(2025, 12, 1, 9, 25, 0)).unwrap();
    assert_eq!(drift.num_milliseconds(), 315_500);
    assert!(matches!(
        clock_offset(&unknown, at(2025, 12, 1, 9, 25, 0)),
        Err(Error::OutOfRange { field: "date", .. })
    ));
}

#[test]
fn device_information_and_battery() {
    assert_eq!(decode_utf8_string(b"PW-0042\0\0").unwrap(), "PW-0042");
    assert_eq!(
        decode_utf8_string("손목닥터".as_bytes()).unwrap(),
        "손목닥터"
    );
    assert_eq!(decode_utf8_string(&hex("ff fe")), Err(Error::Utf8));
    assert_eq!(decode_battery_level(&hex("5a")), Ok(90));
    assert_eq!(
        decode_battery_level(&hex("65")),
        Err(Error::OutOfRange {
            field: "battery level",
            value: 101
        })
    );
    assert!(matches!(
        decode_battery_level(&[]),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(
        decode_battery_level(&[1, 2]),
        Err(Error::TrailingBytes { .. })
    ));
}

#[test]
fn history_notifications() {
    let d = date(2025, 12, 1);
    let first = HistoryNotification {
        first_seq: 1000,
        starts_stream: true,
        ends_stream: true,
        records: vec![
            HistoryRecord::HourSteps {
                date: d,
                hour: 9,
                steps: 1234,
            },
            HistoryRecord::HeartRate {
                at: at(2025, 12, 1, 9, 30, 15),
                bpm: 72,
            },
            HistoryRecord::DaySteps {
                date: d,
                steps: 8500,
                proof: None,
            },
        ],
    };
    let next_day = HistoryNotification {
        first_seq: 1001,
        starts_stream: false,
        ends_stream: false,
        records: vec![HistoryRecord::HourSteps {
            date: date(2025, 12, 2),
            hour: 0,
            steps: 0,
        }],
    };
    let what = "history notification";
    let cases = [
        (
            "e8 03 00 00 c0 49 fa 24 d2 09 a9 17 07 48 20 b4 42 c1 7c 4f",
            Expect::Exact(first.clone()),
        ),
        (
            "e9 03 00 00 40 fb 24 00 91 77",
            Expect::Exact(next_day.clone()),
        ),
        // The same record with an explicit date where it could have been omitted.
        (
            "e9 03 00 00 40 fb 24 00 40 fb 24 01 6d fb",
            Expect::Canonical(
                HistoryNotification {
                    records: vec![
                        HistoryRecord::HourSteps {
                            date: date(2025, 12, 2),
                            hour: 0,
                            steps: 0,
                        },
                        HistoryRecord::HourSteps {
                            date: date(2025, 12, 2),
                            hour: 0,
                            steps: 1,
                        },
                    ],
                    ..next_day.clone()
                },
                "e9 03 00 00 40 fb 24 00 60 01 5d 19",
            ),
        ),
        // One bit flipped in the steps: the CRC catches it.
        (
            "e8 03 00 00 c0 49 fa 24 d3 09 a9 17 07 48 20 b4 42 c1 7c 4f",
            Expect::Fails(Error::Crc {
                computed: 0x2039,
                received: 0x4f7c,
            }),
        ),
        (
            "e9 03 00 00 40 91",
            Expect::Fails(Error::Truncated {
                what,
                needed: 7,
                got: 6,
            }),
        ),
        // Only a header and markers: no records.
        (
            "e9 03 00 00 c0 c1 21 fc",
            Expect::Fails(Error::Malformed("no records")),
        ),
        // The first record says "same date as before".
        (
            "e9 03 00 00 60 00 32 28",
            Expect::Fails(Error::Malformed(
                "first record of a notification omits its date",
            )),
        ),
        // Hour 24.
        (
            "e9 03 00 00 58 fb 24 00 f5 e9",
            Expect::Fails(Error::OutOfRange {
                field: "hour",
                value: 24,
            }),
        ),
        // A day-steps tag with hour bits other than the signed flag, a signed day record
        // cut short, and an unknown marker.
        (
            "e9 03 00 00 02 fb 24 00 65 f4",
            Expect::Fails(Error::UnknownTag(0x02)),
        ),
        (
            "e9 03 00 00 01 fb 24 00 b9 6f",
            Expect::Fails(Error::Truncated {
                what: "history notification",
                needed: 12,
                got: 8,
            }),
        ),
        (
            "e9 03 00 00 40 fb 24 00 c2 7e 66",
            Expect::Fails(Error::UnknownTag(0xc2)),
        ),
        // A varint with a useless zero group (0x80 0x00).
        (
            "e9 03 00 00 40 fb 24 80 00 e8 84",
            Expect::Fails(Error::Varint),
        ),
        // Heart rate second of hour 3600.
        (
            "e9 03 00 00 89 fb 24 10 0e 48 24 5d",
            Expect::Fails(Error::OutOfRange {
                field: "heart rate second of hour",
                value: 3600,
            }),
        ),
        // A record after the end marker.
        (
            "e9 03 00 00 40 fb 24 00 c1 60 00 af 6c",
            Expect::Fails(Error::Malformed("bytes after the stream-end marker")),
        ),
        // The last record would take sequence number u32::MAX.
        (
            "fe ff ff ff 40 fb 24 00 60 00 57 11",
            Expect::Fails(Error::OutOfRange {
                field: "sequence number",
                value: u32::MAX as i64,
            }),
        ),
    ];
    for (input, expect) in cases {
        check(input, expect);
    }
}

#[test]
fn racp_messages() {
    let op = |op_code, operator| Expect::Fails(Error::InvalidOperator { op_code, operator });
    let cases = [
        (
            "01 03 01 e8 03 00 00",
            Expect::Exact(Racp::ReportStoredRecords(Filter::GreaterOrEqual(1000))),
        ),
        (
            "01 01",
            Expect::Exact(Racp::ReportStoredRecords(Filter::All)),
        ),
        (
            "01 02 01 e7 03 00 00",
            Expect::Exact(Racp::ReportStoredRecords(Filter::LessOrEqual(999))),
        ),
        (
            "01 04 01 0a 00 00 00 14 00 00 00",
            Expect::Exact(Racp::ReportStoredRecords(Filter::Within(10, 20))),
        ),
        (
            "01 05",
            Expect::Exact(Racp::ReportStoredRecords(Filter::First)),
        ),
        (
            "01 06",
            Expect::Exact(Racp::ReportStoredRecords(Filter::Last)),
        ),
        (
            "02 02 01 e7 03 00 00",
            Expect::Exact(Racp::DeleteStoredRecords(Filter::LessOrEqual(999))),
        ),
        ("03 00", Expect::Exact(Racp::Abort)),
        (
            "04 01",
            Expect::Exact(Racp::ReportNumberOfStoredRecords(Filter::All)),
        ),
        (
            "05 00 31 00 00 00",
            Expect::Exact(Racp::NumberOfStoredRecords(49)),
        ),
        (
            "06 00 01 01",
            Expect::Exact(Racp::Response {
                request: OpCode::ReportStoredRecords,
                code: Code::Success,
            }),
        ),
        (
            "06 00 01 06",
            Expect::Exact(Racp::Response {
                request: OpCode::ReportStoredRecords,
                code: Code::NoRecordsFound,
            }),
        ),
        (
            "06 00 03 01",
            Expect::Exact(Racp::Response {
                request: OpCode::Abort,
                code: Code::Success,
            }),
        ),
        (
            "06 00 09 02",
            Expect::Exact(Racp::Response {
                request: OpCode::Other(9),
                code: Code::OpCodeNotSupported,
            }),
        ),
        (
            "06 00 01 0a",
            Expect::Exact(Racp::Response {
                request: OpCode::ReportStoredRecords,
                code: Code::Other(10),
            }),
        ),
        (
            "",
            Expect::Fails(Error::Truncated {
                what: "record access control point",
                needed: 1,
                got: 0,
            }),
        ),
        ("07 00", Expect::Fails(Error::UnsupportedOpCode(7))),
        ("00 00", Expect::Fails(Error::UnsupportedOpCode(0))),
        ("01 00", op(1, 0)),
        ("01 07", op(1, 7)),
        ("03 01", op(3, 1)),
        (
            "01 03 02 e8 03 00 00",
            Expect::Fails(Error::UnsupportedFilter(2)),
        ),
        (
            "01 03 01 e8 03",
            Expect::Fails(Error::InvalidOperand { operator: 3 }),
        ),
        (
            "01 03",
            Expect::Fails(Error::InvalidOperand { operator: 3 }),
        ),
        (
            "01 01 01",
            Expect::Fails(Error::InvalidOperand { operator: 1 }),
        ),
        (
            "01 04 01 14 00 00 00 0a 00 00 00",
            Expect::Fails(Error::InvalidOperand { operator: 4 }),
        ),
        (
            "03 00 00",
            Expect::Fails(Error::InvalidOperand { operator: 0 }),
        ),
    ];
    for (input, expect) in cases {
        check(input, expect);
    }
    assert_eq!(
        Code::for_error(&Error::UnsupportedOpCode(7)),
        Code::OpCodeNotSupported
    );
    assert_eq!(
        Code::for_error(&Error::UnsupportedFilter(2)),
        Code::OperandNotSupported
    );
    assert_eq!(
        Code::for_error(&Error::InvalidOperator {
            op_code: 1,
            operator: 0
        }),
        Code::InvalidOperator
    );
    assert_eq!(
        Code::for_error(&Error::InvalidOperand { operator: 4 }),
        Code::InvalidOperand
    );
}

/// The transfer of `docs/watch-gatt.md` section 3, byte for byte.
#[test]
fn documented_transfer() {
    use crate::{HistoryTransfer, IndicationOutcome, WatchHistory};
    let d = date(2025, 12, 1);
    let mut watch = WatchHistory::starting_at(1000);
    watch
        .push(HistoryRecord::HourSteps {
            date: d,
            hour: 9,
            steps: 1234,
        })
        .unwrap();
    watch
        .push(HistoryRecord::HeartRate {
            at: at(2025, 12, 1, 9, 30, 15),
            bpm: 72,
        })
        .unwrap();
    watch
        .push(HistoryRecord::DaySteps {
            date: d,
            steps: 8500,
            proof: None,
        })
        .unwrap();
    let mut terminal = HistoryTransfer::new();
    let request = terminal.start(1000);
    assert_eq!(super::to_hex(&request), "01 03 01 e8 03 00 00");
    let reply = watch.on_control_point(&request, 23);
    let sent: Vec<String> = reply
        .notifications
        .iter()
        .map(|p| super::to_hex(p))
        .collect();
    assert_eq!(
        sent,
        ["e8 03 00 00 c0 49 fa 24 d2 09 a9 17 07 48 20 b4 42 c1 7c 4f"]
    );
    assert_eq!(super::to_hex(&reply.indication), "06 00 01 01");
    let batch = terminal.on_notification(&reply.notifications[0]).unwrap();
    assert_eq!(batch.records.len(), 3);
    assert_eq!(
        terminal.on_indication(&reply.indication),
        Ok(IndicationOutcome::Complete)
    );
    assert_eq!(terminal.next_seq(), 1003);
    let unknown = watch.on_control_point(&hex("07 00"), 23);
    assert_eq!(super::to_hex(&unknown.indication), "06 00 07 02");
}
