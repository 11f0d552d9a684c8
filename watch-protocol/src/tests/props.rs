//! Property tests: every codec round trips, and arbitrary bytes decode to an error or to a
//! value that re-encodes to itself; no input panics.

use chrono::{Days, NaiveDateTime, NaiveTime, Weekday};
use proptest::prelude::*;

use super::{at, Codec};
use crate::{
    notification_capacity, pack_notifications, AdjustReason, CurrentTime, Error, Filter,
    HeartRateMeasurement, HeartRateValue, HistoryNotification, HistoryRecord, OpCode, RacpMessage,
    ResponseCode, SensorContact, FIRST_DATE, MAX_SEQ,
};

fn hrm() -> impl Strategy<Value = HeartRateMeasurement> {
    (
        prop_oneof![
            any::<u8>().prop_map(HeartRateValue::U8),
            any::<u16>().prop_map(HeartRateValue::U16)
        ],
        prop_oneof![
            Just(SensorContact::NotSupported),
            Just(SensorContact::NotDetected),
            Just(SensorContact::Detected)
        ],
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(any::<u16>(), 0..10),
    )
        .prop_map(
            |(value, contact, energy_expended_kj, rr_intervals)| HeartRateMeasurement {
                value,
                contact,
                energy_expended_kj,
                rr_intervals,
            },
        )
}

fn weekday() -> impl Strategy<Value = Option<Weekday>> {
    (0u8..=7).prop_map(|d| match d {
        0 => None,
        d => Some(Weekday::try_from(d - 1).unwrap()),
    })
}

fn current_time() -> impl Strategy<Value = CurrentTime> {
    (
        prop_oneof![Just(0u16), 1582u16..=9999],
        0u8..=12,
        0u8..=31,
        (0u8..=23, 0u8..=59, 0u8..=59),
        weekday(),
        any::<u8>(),
        any::<u8>(),
    )
        .prop_map(
            |(year, month, day, (hours, minutes, seconds), day_of_week, fractions256, reason)| {
                CurrentTime {
                    year,
                    month,
                    day,
                    hours,
                    minutes,
                    seconds,
                    day_of_week,
                    fractions256,
                    adjust_reason: AdjustReason(reason),
                }
            },
        )
}

fn record_time() -> impl Strategy<Value = NaiveDateTime> {
    (0u64..=u64::from(u16::MAX), 0u32..86_400).prop_map(|(day, s)| {
        (FIRST_DATE + Days::new(day))
            .and_time(NaiveTime::from_num_seconds_from_midnight_opt(s, 0).unwrap())
    })
}

/// Any proof a watch could carry (its signature need not verify: the codec only carries it).
pub(crate) fn day_proof() -> impl Strategy<Value = crate::DayProof> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(counter, signed_at, a, b)| {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&a);
            signature[32..].copy_from_slice(&b);
            crate::DayProof {
                counter,
                signed_at,
                signature,
            }
        })
}

pub(crate) fn record() -> impl Strategy<Value = HistoryRecord> {
    prop_oneof![
        (
            record_time(),
            any::<u32>(),
            proptest::option::of(day_proof())
        )
            .prop_map(|(t, steps, proof)| HistoryRecord::DaySteps {
                date: t.date(),
                steps,
                proof,
            }),
        (record_time(), 0u8..24, any::<u32>()).prop_map(|(t, hour, steps)| {
            HistoryRecord::HourSteps {
                date: t.date(),
                hour,
                steps,
            }
        }),
        // Small step counts, as most hours have, exercise the one-byte varint.
        (record_time(), 0u8..24, 0u32..300).prop_map(|(t, hour, steps)| {
            HistoryRecord::HourSteps {
                date: t.date(),
                hour,
                steps,
            }
        }),
        (record_time(), any::<u8>()).prop_map(|(at, bpm)| HistoryRecord::HeartRate { at, bpm }),
    ]
}

/// Records of a few days, so the same-date compression is exercised.
fn records(max: usize) -> impl Strategy<Value = Vec<HistoryRecord>> {
    (
        0u64..60_000,
        proptest::collection::vec((0u64..3, record()), 0..max),
    )
        .prop_map(|(base, items)| {
            items
                .into_iter()
                .map(|(offset, r)| {
                    let date = FIRST_DATE + Days::new(base + offset);
                    match r {
                        HistoryRecord::DaySteps { steps, proof, .. } => {
                            HistoryRecord::DaySteps { date, steps, proof }
                        }
                        HistoryRecord::HourSteps { hour, steps, .. } => {
                            HistoryRecord::HourSteps { date, hour, steps }
                        }
                        HistoryRecord::HeartRate { at, bpm } => HistoryRecord::HeartRate {
                            at: date.and_time(at.time()),
                            bpm,
                        },
                    }
                })
                .collect()
        })
}

fn filter() -> impl Strategy<Value = Filter> {
    prop_oneof![
        Just(Filter::All),
        any::<u32>().prop_map(Filter::LessOrEqual),
        any::<u32>().prop_map(Filter::GreaterOrEqual),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Filter::Within(a.min(b), a.max(b))),
        Just(Filter::First),
        Just(Filter::Last),
    ]
}

fn racp() -> impl Strategy<Value = RacpMessage> {
    prop_oneof![
        filter().prop_map(RacpMessage::ReportStoredRecords),
        filter().prop_map(RacpMessage::DeleteStoredRecords),
        Just(RacpMessage::Abort),
        filter().prop_map(RacpMessage::ReportNumberOfStoredRecords),
        any::<u32>().prop_map(RacpMessage::NumberOfStoredRecords),
        (any::<u8>(), any::<u8>()).prop_map(|(r, c)| RacpMessage::Response {
            request: OpCode::from_u8(r),
            code: ResponseCode::from_u8(c),
        }),
    ]
}

/// Decoding arbitrary bytes gives an error or a value that survives encode then decode.
fn stable<T: Codec>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(value) = T::decode(bytes) {
        let again = value.encode();
        prop_assert_eq!(T::decode(&again), Ok(value));
    }
    Ok(())
}

proptest! {
    #[test]
    fn hrm_round_trips(m in hrm()) {
        let bytes = m.encode();
        prop_assert_eq!(HeartRateMeasurement::decode(&bytes), Ok(m));
    }

    /// Every flags byte, with whatever follows: never a panic, and stable when it decodes.
    #[test]
    fn hrm_any_flags(flags in any::<u8>(), rest in proptest::collection::vec(any::<u8>(), 0..24)) {
        let mut bytes = vec![flags];
        bytes.extend(rest);
        stable::<HeartRateMeasurement>(&bytes)?;
    }

    #[test]
    fn current_time_round_trips(t in current_time()) {
        prop_assert_eq!(CurrentTime::decode(&t.encode()), Ok(t));
    }

    #[test]
    fn current_time_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
        stable::<CurrentTime>(&bytes)?;
    }

    /// Setting a watch and reading it back gives the time to within 1/256 s.
    #[test]
    fn current_time_from_kst(t in record_time(), ms in 0i64..1000) {
        let t = t + chrono::TimeDelta::milliseconds(ms);
        let back = CurrentTime::from_kst(t, AdjustReason::MANUAL).unwrap().to_naive_datetime().unwrap();
        let diff = (t - back).num_microseconds().unwrap();
        prop_assert!((0..3907).contains(&diff), "{t} read back as {back}");
    }

    #[test]
    fn notification_round_trips(
        first_seq in 0..=MAX_SEQ - 40,
        starts_stream in any::<bool>(),
        ends_stream in any::<bool>(),
        records in records(40).prop_filter("one record at least", |r| !r.is_empty()),
    ) {
        let n = HistoryNotification { first_seq, starts_stream, ends_stream, records };
        let bytes = n.encode().unwrap();
        prop_assert_eq!(HistoryNotification::decode(&bytes), Ok(n));
    }

    #[test]
    fn notification_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        stable::<HistoryNotification>(&bytes)?;
    }

    /// Arbitrary record bytes behind a valid header and CRC reach the record decoder.
    #[test]
    fn notification_any_records(first_seq in any::<u32>(), body in proptest::collection::vec(any::<u8>(), 1..40)) {
        let mut bytes = first_seq.to_le_bytes().to_vec();
        bytes.extend(body);
        let crc = crate::crc16(&bytes);
        bytes.extend(crc.to_le_bytes());
        stable::<HistoryNotification>(&bytes)?;
    }

    /// Packing fits every MTU, keeps order and numbering, and marks the stream's ends.
    #[test]
    fn pack_round_trips(
        first_seq in 0..=MAX_SEQ - 200,
        records in records(200),
        mtu in prop_oneof![Just(23u16), Just(185), Just(247), 0u16..600],
    ) {
        let signed = records.iter().any(|r| matches!(r, HistoryRecord::DaySteps { proof: Some(_), .. }));
        let payloads = match pack_notifications(first_seq, &records, mtu) {
            Ok(p) => p,
            Err(e) => {
                // Only a signed day record under its MTU is refused.
                prop_assert!(signed && mtu < crate::MIN_MTU_SIGNED, "{e:?} at MTU {mtu}");
                return Ok(());
            }
        };
        let mut back = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            prop_assert!(p.len() <= notification_capacity(mtu));
            let n = HistoryNotification::decode(p).unwrap();
            prop_assert_eq!(n.starts_stream, i == 0);
            prop_assert_eq!(n.ends_stream, i + 1 == payloads.len());
            prop_assert_eq!(n.first_seq, first_seq + back.len() as u32);
            back.extend(n.records);
        }
        prop_assert_eq!(back, records);
    }

    /// Any change to one byte of a notification is caught (CRC-16 detects every burst of up
    /// to 16 bits).
    #[test]
    fn corruption_is_detected(
        records in records(30).prop_filter("one record at least", |r| !r.is_empty()),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let payloads = pack_notifications(7, &records, crate::MIN_MTU_SIGNED).unwrap();
        let mut bytes = payloads[0].clone();
        let i = index.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(HistoryNotification::decode(&bytes).is_err());
    }

    #[test]
    fn racp_round_trips(m in racp()) {
        prop_assert_eq!(RacpMessage::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn racp_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
        stable::<RacpMessage>(&bytes)?;
    }
}

#[test]
fn records_outside_the_codec_are_refused() {
    let too_late = HistoryRecord::DaySteps {
        date: FIRST_DATE + Days::new(65_536),
        steps: 1,
        proof: None,
    };
    let too_early = HistoryRecord::DaySteps {
        date: FIRST_DATE - Days::new(1),
        steps: 1,
        proof: None,
    };
    let bad_hour = HistoryRecord::HourSteps {
        date: FIRST_DATE,
        hour: 24,
        steps: 1,
    };
    let sub_second = HistoryRecord::HeartRate {
        at: at(2025, 12, 1, 9, 0, 0) + chrono::TimeDelta::milliseconds(5),
        bpm: 60,
    };
    let cases = [
        (too_late, "date (days since 2000-01-01)"),
        (too_early, "date (days since 2000-01-01)"),
        (bad_hour, "hour"),
        (sub_second, "heart rate time nanoseconds"),
    ];
    for (record, field) in cases {
        let got = pack_notifications(0, &[record], 23);
        assert!(
            matches!(got, Err(Error::OutOfRange { field: f, .. }) if f == field),
            "{got:?}"
        );
    }
    assert!(matches!(
        pack_notifications(
            MAX_SEQ,
            &vec![
                HistoryRecord::DaySteps {
                    date: FIRST_DATE,
                    steps: 0,
                    proof: None,
                };
                2
            ],
            23
        ),
        Err(Error::OutOfRange {
            field: "sequence number",
            ..
        })
    ));
    assert_eq!(pack_notifications(0, &[], 23), Ok(vec![]));
}
