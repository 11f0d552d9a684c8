//! History transfers between a [`WatchHistory`] and a [`HistoryTransfer`], cut off,
//! corrupted, dropped and resumed: every record arrives exactly once and no acknowledged
//! record is asked for or sent again.

use proptest::prelude::*;

use super::{date, sample_days};
use crate::{
    Error, Filter, HistoryNotification, HistoryTransfer, IndicationOutcome, OpCode, RacpMessage,
    ResponseCode, SequencedRecord, TransferState, WatchHistory, WatchReply,
};

const FIRST: u32 = 500;

fn watch(days: u32) -> WatchHistory {
    let mut w = WatchHistory::starting_at(FIRST);
    for r in sample_days(date(2025, 11, 28), days) {
        w.push(r).unwrap();
    }
    w
}

fn first_seq(payload: &[u8]) -> u32 {
    HistoryNotification::decode(payload).unwrap().first_seq
}

/// The request a transfer wrote must ask for exactly the records after the acknowledged ones.
fn assert_asks_for_next(t: &HistoryTransfer, request: &[u8]) {
    assert_eq!(
        RacpMessage::decode(request),
        Ok(RacpMessage::ReportStoredRecords(Filter::GreaterOrEqual(
            t.next_seq()
        )))
    );
}

/// The watch's answer to `request`, checking it re-sends nothing acknowledged.
fn answer(w: &mut WatchHistory, t: &HistoryTransfer, request: &[u8], mtu: u16) -> WatchReply {
    assert_asks_for_next(t, request);
    let reply = w.on_control_point(request, mtu);
    for p in &reply.notifications {
        let n = HistoryNotification::decode(p).unwrap();
        if let Some(acked) = t.last_acknowledged() {
            assert!(
                n.first_seq > acked,
                "re-sent {} after acknowledging {acked}",
                n.first_seq
            );
        }
    }
    reply
}

/// Every record of the watch, received once, in order.
fn assert_exactly_once(w: &WatchHistory, got: &[SequencedRecord]) {
    let seqs: Vec<u32> = got.iter().map(|r| r.seq).collect();
    let want: Vec<u32> = (FIRST..w.next_seq()).collect();
    assert_eq!(seqs, want);
    for r in got {
        assert_eq!(w.get(r.seq), Some(&r.record));
    }
}

/// Feeds a whole reply; the transfer must complete.
fn finish(t: &mut HistoryTransfer, reply: &WatchReply, got: &mut Vec<SequencedRecord>) {
    for p in &reply.notifications {
        got.extend(t.on_notification(p).unwrap().records);
    }
    assert_eq!(
        t.on_indication(&reply.indication),
        Ok(IndicationOutcome::Complete)
    );
    assert_eq!(t.state(), TransferState::Complete);
}

#[test]
fn cut_at_every_notification_boundary_then_resume() {
    for (mtu, mtu_after) in [(23, 23), (23, 247), (185, 23), (247, 247)] {
        let mut w = watch(3);
        let total = w.notifications(FIRST, mtu).unwrap().len();
        for cut in 0..=total {
            let mut t = HistoryTransfer::new();
            let mut got = Vec::new();
            let request = t.start(FIRST);
            let reply = answer(&mut w, &t, &request, mtu);
            assert_eq!(reply.notifications.len(), total);
            for p in &reply.notifications[..cut] {
                got.extend(t.on_notification(p).unwrap().records);
            }
            // The link drops here; on reconnect the terminal resumes.
            let request = t.resume();
            let reply = answer(&mut w, &t, &request, mtu_after);
            finish(&mut t, &reply, &mut got);
            assert_exactly_once(&w, &got);
        }
    }
}

/// Runs a transfer whose `k`th notification is replaced by `fault`; the first error must name
/// that notification's first record as the place to resume.
fn recover_from(mtu: u16, k: usize, fault: impl Fn(&[u8]) -> Option<Vec<u8>>) {
    let mut w = watch(2);
    let mut t = HistoryTransfer::new();
    let mut got = Vec::new();
    let request = t.start(FIRST);
    let reply = answer(&mut w, &t, &request, mtu);
    let lost_from = first_seq(&reply.notifications[k]);
    let mut error = None;
    let payloads = reply.notifications.iter().enumerate().filter_map(|(i, p)| {
        if i == k {
            fault(p)
        } else {
            Some(p.clone())
        }
    });
    for p in payloads {
        match t.on_notification(&p) {
            Ok(batch) => got.extend(batch.records),
            Err(e) if error.is_none() => error = Some(e),
            Err(e) => panic!("a second error {e}"),
        }
    }
    match t.on_indication(&reply.indication) {
        Ok(IndicationOutcome::Ignored) => {}
        Err(e) if error.is_none() => error = Some(e),
        other => panic!("{other:?}"),
    }
    let error = error.expect("the fault went unnoticed");
    assert_eq!(error.resume_from(), Some(lost_from), "{error}");
    assert_eq!(t.last_acknowledged(), Some(lost_from - 1));
    // On the same connection: abort, wait for the watch to confirm, resume.
    let abort = t.abort();
    let confirm = w.on_control_point(&abort, mtu);
    assert!(confirm.notifications.is_empty());
    assert_eq!(
        t.on_indication(&confirm.indication),
        Ok(IndicationOutcome::Aborted)
    );
    let request = t.resume();
    let reply = answer(&mut w, &t, &request, mtu);
    finish(&mut t, &reply, &mut got);
    assert_exactly_once(&w, &got);
}

#[test]
fn corrupt_notification_is_detected_and_resumed() {
    for mtu in [23, 247] {
        let n = watch(2).notifications(FIRST, mtu).unwrap().len();
        for k in 0..n {
            for at in [0, 4, 9] {
                recover_from(mtu, k, |p| {
                    let mut p = p.to_vec();
                    let i = at.min(p.len() - 1);
                    p[i] ^= 0x10;
                    Some(p)
                });
            }
        }
    }
}

#[test]
fn dropped_notification_is_detected_and_resumed() {
    for mtu in [23, 247] {
        let n = watch(2).notifications(FIRST, mtu).unwrap().len();
        for k in 0..n {
            recover_from(mtu, k, |_| None);
        }
    }
}

#[test]
fn errors_say_why() {
    let mut w = watch(1);
    let mut t = HistoryTransfer::new();
    let reply = w.on_control_point(&t.start(FIRST), 23);
    // The stream's opening notification is lost.
    let e = t.on_notification(&reply.notifications[1]).unwrap_err();
    assert_eq!(
        e,
        Error::Interrupted {
            resume_from: FIRST,
            reason: Box::new(Error::Gap {
                expected: FIRST,
                got: first_seq(&reply.notifications[1])
            }),
        }
    );
    assert_eq!(
        e.to_string(),
        format!(
            "history transfer interrupted (history stream expected sequence 500, got {}); resume from sequence 500",
            first_seq(&reply.notifications[1])
        )
    );
    // Afterwards the rest of the old stream is ignored, not half-taken.
    let batch = t.on_notification(&reply.notifications[2]).unwrap();
    assert!(batch.ignored && batch.records.is_empty());

    // The watch gives up half way.
    let mut t = HistoryTransfer::new();
    let reply = w.on_control_point(&t.start(FIRST), 23);
    t.on_notification(&reply.notifications[0]).unwrap();
    let resume_from = first_seq(&reply.notifications[1]);
    let refused = RacpMessage::Response {
        request: OpCode::ReportStoredRecords,
        code: ResponseCode::ProcedureNotCompleted,
    };
    assert_eq!(
        t.on_indication(&refused.encode()),
        Err(Error::Interrupted {
            resume_from,
            reason: Box::new(Error::Refused {
                request: OpCode::ReportStoredRecords,
                code: ResponseCode::ProcedureNotCompleted
            }),
        })
    );
}

#[test]
fn duplicates_and_pruned_records_are_reported() {
    let w = watch(1);
    let payloads = w.notifications(FIRST, 23).unwrap();
    let mut t = HistoryTransfer::new();
    // The terminal asks from 450 but the watch only keeps records from 500.
    let request = t.start(450);
    assert_eq!(
        RacpMessage::decode(&request),
        Ok(RacpMessage::ReportStoredRecords(Filter::GreaterOrEqual(
            450
        )))
    );
    let first = t.on_notification(&payloads[0]).unwrap();
    assert_eq!(first.pruned, Some(450..=499));
    assert_eq!(first.records[0].seq, FIRST);
    let again = t.on_notification(&payloads[0]).unwrap();
    assert_eq!(again.records, vec![]);
    assert_eq!(again.duplicates, first.records.len());
    assert_eq!(again.pruned, None);
}

#[test]
fn nothing_new_completes_at_once() {
    let mut w = watch(1);
    let mut t = HistoryTransfer::new();
    let request = t.start(w.next_seq());
    let reply = w.on_control_point(&request, 23);
    assert!(reply.notifications.is_empty());
    assert_eq!(
        t.on_indication(&reply.indication),
        Ok(IndicationOutcome::Complete)
    );
    assert_eq!(t.next_seq(), w.next_seq());

    let mut empty = WatchHistory::default();
    let mut t = HistoryTransfer::new();
    assert_eq!(t.last_acknowledged(), None);
    let reply = empty.on_control_point(&t.start(0), 247);
    assert_eq!(
        t.on_indication(&reply.indication),
        Ok(IndicationOutcome::Complete)
    );
}

#[test]
fn success_without_the_end_marker_is_incomplete() {
    let mut w = watch(1);
    let mut t = HistoryTransfer::new();
    let reply = w.on_control_point(&t.start(FIRST), 23);
    let success = reply.indication.clone();
    assert_eq!(
        t.on_indication(&success),
        Err(Error::Interrupted {
            resume_from: FIRST,
            reason: Box::new(Error::Incomplete)
        })
    );
}

#[test]
fn watch_control_point() {
    let mut w = watch(1);
    let count = |w: &mut WatchHistory, f| {
        RacpMessage::decode(
            &w.on_control_point(&RacpMessage::ReportNumberOfStoredRecords(f).encode(), 23)
                .indication,
        )
        .unwrap()
    };
    let response = |request, code| RacpMessage::Response { request, code };
    assert_eq!(
        count(&mut w, Filter::All),
        RacpMessage::NumberOfStoredRecords(49)
    );
    assert_eq!(
        count(&mut w, Filter::GreaterOrEqual(540)),
        RacpMessage::NumberOfStoredRecords(9)
    );
    assert_eq!(
        count(&mut w, Filter::Within(510, 519)),
        RacpMessage::NumberOfStoredRecords(10)
    );
    assert_eq!(
        count(&mut w, Filter::LessOrEqual(10)),
        RacpMessage::NumberOfStoredRecords(0)
    );

    let report = |w: &mut WatchHistory, f| {
        let reply = w.on_control_point(&RacpMessage::ReportStoredRecords(f).encode(), 247);
        let seqs: Vec<u32> = reply
            .notifications
            .iter()
            .flat_map(|p| {
                HistoryNotification::decode(p)
                    .unwrap()
                    .sequenced()
                    .map(|r| r.seq)
                    .collect::<Vec<_>>()
            })
            .collect();
        (seqs, RacpMessage::decode(&reply.indication).unwrap())
    };
    let ok = response(OpCode::ReportStoredRecords, ResponseCode::Success);
    assert_eq!(report(&mut w, Filter::First), (vec![500], ok));
    assert_eq!(report(&mut w, Filter::Last), (vec![548], ok));
    assert_eq!(
        report(&mut w, Filter::Within(520, 522)),
        (vec![520, 521, 522], ok)
    );
    assert_eq!(
        report(&mut w, Filter::GreaterOrEqual(549)),
        (
            vec![],
            response(OpCode::ReportStoredRecords, ResponseCode::NoRecordsFound)
        )
    );

    let delete = |w: &mut WatchHistory, f| {
        RacpMessage::decode(
            &w.on_control_point(&RacpMessage::DeleteStoredRecords(f).encode(), 23)
                .indication,
        )
        .unwrap()
    };
    assert_eq!(
        delete(&mut w, Filter::Within(520, 530)),
        response(
            OpCode::DeleteStoredRecords,
            ResponseCode::OperandNotSupported
        )
    );
    assert_eq!(
        delete(&mut w, Filter::LessOrEqual(519)),
        response(OpCode::DeleteStoredRecords, ResponseCode::Success)
    );
    assert_eq!(w.seq_range(), Some((520, 548)));
    assert_eq!(
        delete(&mut w, Filter::All),
        response(OpCode::DeleteStoredRecords, ResponseCode::Success)
    );
    assert!(w.is_empty());
    // Sequence numbers are never reused.
    assert_eq!(w.next_seq(), 549);

    let refused = |w: &mut WatchHistory, bytes: &[u8]| {
        RacpMessage::decode(&w.on_control_point(bytes, 23).indication).unwrap()
    };
    assert_eq!(
        refused(&mut w, &[0x07, 0x00]),
        response(OpCode::Other(7), ResponseCode::OpCodeNotSupported)
    );
    assert_eq!(
        refused(&mut w, &[0x01, 0x00]),
        response(OpCode::ReportStoredRecords, ResponseCode::InvalidOperator)
    );
    assert_eq!(
        refused(&mut w, &[0x01, 0x03, 0x02, 0, 0, 0, 0]),
        response(
            OpCode::ReportStoredRecords,
            ResponseCode::OperandNotSupported
        )
    );
    assert_eq!(
        refused(&mut w, &[]),
        response(OpCode::Other(0), ResponseCode::InvalidOperand)
    );
    assert_eq!(
        refused(&mut w, &[0x06, 0x00, 0x01, 0x01]),
        response(OpCode::ResponseCode, ResponseCode::OpCodeNotSupported)
    );
}

/// What the link does to one notification.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Deliver,
    Drop,
    Corrupt(usize),
    Duplicate,
    Disconnect,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        20 => Just(Fate::Deliver),
        1 => Just(Fate::Drop),
        1 => (0usize..64).prop_map(Fate::Corrupt),
        1 => Just(Fate::Duplicate),
        1 => Just(Fate::Disconnect),
    ]
}

proptest! {
    /// Sessions over a faulty link, each resuming where the last left off, until the
    /// transfer completes: every record once, nothing acknowledged asked for again.
    #[test]
    fn faulty_link_delivers_every_record_once(
        days in 1u32..4,
        mtus in proptest::collection::vec(prop_oneof![Just(23u16), Just(185), Just(247)], 1..4),
        fates in proptest::collection::vec(fate(), 0..200),
    ) {
        let mut w = watch(days);
        let mut t = HistoryTransfer::new();
        let mut got = Vec::new();
        let mut fates = fates.into_iter();
        let mut request = t.start(FIRST);
        for session in 0.. {
            prop_assert!(session < 300, "no progress");
            let mtu = mtus[session % mtus.len()];
            let reply = answer(&mut w, &t, &request, mtu);
            let mut failed = false;
            let mut disconnected = false;
            for p in &reply.notifications {
                let sends: Vec<Vec<u8>> = match fates.next().unwrap_or(Fate::Deliver) {
                    Fate::Deliver => vec![p.clone()],
                    Fate::Drop => vec![],
                    Fate::Corrupt(i) => {
                        let mut p = p.clone();
                        let i = i % p.len();
                        p[i] ^= 0x5a;
                        vec![p]
                    }
                    Fate::Duplicate => vec![p.clone(), p.clone()],
                    Fate::Disconnect => {
                        disconnected = true;
                        break;
                    }
                };
                for p in sends {
                    match t.on_notification(&p) {
                        Ok(batch) => got.extend(batch.records),
                        Err(e) => {
                            prop_assert_eq!(e.resume_from(), Some(t.next_seq()));
                            failed = true;
                        }
                    }
                }
            }
            if disconnected {
                request = t.resume();
                continue;
            }
            match t.on_indication(&reply.indication) {
                Ok(IndicationOutcome::Complete) => break,
                Ok(IndicationOutcome::Ignored) => prop_assert!(failed),
                Ok(other) => prop_assert!(false, "{:?}", other),
                Err(e) => prop_assert_eq!(e.resume_from(), Some(t.next_seq())),
            }
            let confirm = w.on_control_point(&t.abort(), mtu);
            prop_assert_eq!(t.on_indication(&confirm.indication), Ok(IndicationOutcome::Aborted));
            request = t.resume();
        }
        assert_exactly_once(&w, &got);
    }
}

/// Found by the `record` fuzz target: a notification whose last record is numbered `MAX_SEQ`
/// (the first byte of the fuzz input started a transfer at 0xfe).
#[test]
fn a_record_numbered_max_seq_is_taken_without_overflow() {
    let mut sealed = vec![0xfe, 0xff, 0xff, 0xff, 0xc0, 0x00, 0x00, 0xb7, 0x02];
    let crc = crate::crc16(&sealed);
    sealed.extend_from_slice(&crc.to_le_bytes());
    let n = HistoryNotification::decode(&sealed).unwrap();
    let seqs: Vec<u32> = n.sequenced().map(|r| r.seq).collect();
    assert_eq!(seqs.last().copied(), Some(crate::MAX_SEQ));
    // The transfer this input started (at 0xfe) takes the records up to MAX_SEQ.
    let mut t = HistoryTransfer::new();
    t.start(0xfe);
    let batch = t.on_notification(&sealed).unwrap();
    assert_eq!(batch.records.last().map(|r| r.seq), Some(crate::MAX_SEQ));
    assert_eq!(t.next_seq(), crate::MAX_SEQ + 1);
}
