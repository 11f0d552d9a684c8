//! The terminal's side of a history transfer, sans IO.

use std::ops::RangeInclusive;

use crate::{
    Error, Filter, HistoryNotification, OpCode, RacpMessage, ResponseCode, Result, SequencedRecord,
};

/// Where a [`HistoryTransfer`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    /// Nothing requested yet.
    Idle,
    /// The request is written; waiting for the notification with the stream-start marker.
    Requested,
    /// Records are arriving.
    Streaming,
    /// The stream-end marker arrived; waiting for the watch's completion indication.
    Ending,
    /// The watch confirmed the end of the stream: every record it had is acknowledged.
    Complete,
    /// Stopped by an error or an abort; [`HistoryTransfer::resume`] asks for the rest.
    Interrupted,
    /// An abort is written; waiting for the watch to confirm it.
    Aborting,
}

/// What one History Data notification brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// New records, in sequence order, now acknowledged: store them.
    pub records: Vec<SequencedRecord>,
    /// Records the terminal asked for that the watch no longer has (it starts its answer
    /// above the requested sequence number): reported, never skipped silently.
    pub pruned: Option<RangeInclusive<u32>>,
    /// Records received again that were already acknowledged, and dropped.
    pub duplicates: usize,
    /// The notification arrived while no stream was expected (after an error, during an
    /// abort, or after completion) and was not looked at.
    pub ignored: bool,
}

/// What a control-point indication meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndicationOutcome {
    /// The transfer is complete: the watch has nothing after [`HistoryTransfer::next_seq`].
    Complete,
    /// The watch confirmed the abort; [`HistoryTransfer::resume`] may be written now.
    Aborted,
    /// Not an answer the transfer waits for (a late answer to an earlier request).
    Ignored,
}

/// The terminal's state machine for fetching a watch's history through the control point.
///
/// It keeps the next sequence number it needs: every record below it has been received in
/// order and handed out in a [`Batch`]. A transfer cut off by a disconnect, a corrupt or a
/// lost notification resumes from there, so no acknowledged record is asked for again.
///
/// On the same connection, after an error, write [`abort`](Self::abort), feed indications
/// until [`IndicationOutcome::Aborted`], then write [`resume`](Self::resume). After a
/// reconnect, write [`resume`](Self::resume) directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryTransfer {
    next: u32,
    state: TransferState,
}

impl Default for HistoryTransfer {
    fn default() -> Self {
        Self::new()
    }
}

impl HistoryTransfer {
    /// A transfer that has acknowledged nothing.
    pub fn new() -> Self {
        HistoryTransfer {
            next: 0,
            state: TransferState::Idle,
        }
    }

    /// Asks for every record from `from_seq` on (records below it count as acknowledged,
    /// typically the terminal store's last sequence for this watch plus one). Returns the
    /// bytes to write to the history control point.
    pub fn start(&mut self, from_seq: u32) -> Vec<u8> {
        self.next = from_seq;
        self.state = TransferState::Requested;
        RacpMessage::ReportStoredRecords(Filter::GreaterOrEqual(from_seq)).encode()
    }

    /// Asks for every record after the last acknowledged one.
    pub fn resume(&mut self) -> Vec<u8> {
        self.start(self.next)
    }

    /// Stops the stream in progress. Returns the bytes to write to the control point.
    pub fn abort(&mut self) -> Vec<u8> {
        self.state = TransferState::Aborting;
        RacpMessage::Abort.encode()
    }

    /// The next sequence number needed: the one a resumed transfer asks for.
    pub fn next_seq(&self) -> u32 {
        self.next
    }

    /// The last sequence number received in order, if any.
    pub fn last_acknowledged(&self) -> Option<u32> {
        self.next.checked_sub(1)
    }

    /// Where the transfer stands.
    pub fn state(&self) -> TransferState {
        self.state
    }

    fn interrupt(&mut self, reason: Error) -> Error {
        self.state = TransferState::Interrupted;
        Error::Interrupted {
            resume_from: self.next,
            reason: Box::new(reason),
        }
    }

    /// Takes a History Data notification. A corrupt, out-of-order or unexpected one is an
    /// [`Error::Interrupted`] that says where to resume; the records it held are not
    /// acknowledged.
    pub fn on_notification(&mut self, bytes: &[u8]) -> Result<Batch> {
        let starting = match self.state {
            TransferState::Requested => true,
            TransferState::Streaming => false,
            _ => {
                return Ok(Batch {
                    ignored: true,
                    ..Batch::default()
                })
            }
        };
        let n = match HistoryNotification::decode(bytes) {
            Ok(n) => n,
            Err(e) => return Err(self.interrupt(e)),
        };
        let mut batch = Batch::default();
        if !starting && n.last_seq() < self.next {
            // A notification delivered twice: everything in it is already acknowledged.
            batch.duplicates = n.records.len();
            return Ok(batch);
        }
        if starting {
            if !n.starts_stream {
                // The notification that opens the stream was lost.
                let expected = self.next;
                return Err(self.interrupt(Error::Gap {
                    expected,
                    got: n.first_seq,
                }));
            }
            if n.first_seq > self.next {
                batch.pruned = Some(self.next..=n.first_seq - 1);
                self.next = n.first_seq;
            }
            self.state = TransferState::Streaming;
        } else if n.starts_stream {
            return Err(self.interrupt(Error::Malformed("a second stream-start marker")));
        }
        if n.first_seq > self.next {
            let expected = self.next;
            return Err(self.interrupt(Error::Gap {
                expected,
                got: n.first_seq,
            }));
        }
        for record in n.sequenced() {
            if record.seq < self.next {
                batch.duplicates += 1;
            } else {
                // decode() guarantees seq <= MAX_SEQ, so this never overflows.
                self.next = record.seq + 1;
                batch.records.push(record);
            }
        }
        if n.ends_stream {
            self.state = TransferState::Ending;
        }
        Ok(batch)
    }

    /// Takes a control-point indication. The watch's answer to the history request ends the
    /// transfer: [`IndicationOutcome::Complete`], or an [`Error::Interrupted`] when the watch
    /// refused or the stream is missing records.
    pub fn on_indication(&mut self, bytes: &[u8]) -> Result<IndicationOutcome> {
        let active = matches!(
            self.state,
            TransferState::Requested | TransferState::Streaming | TransferState::Ending
        );
        let msg = match RacpMessage::decode(bytes) {
            Ok(msg) => msg,
            Err(e) if active => return Err(self.interrupt(e)),
            Err(_) => return Ok(IndicationOutcome::Ignored),
        };
        let RacpMessage::Response { request, code } = msg else {
            return Ok(IndicationOutcome::Ignored);
        };
        match (self.state, request, code) {
            (TransferState::Aborting, OpCode::Abort, _) => {
                self.state = TransferState::Interrupted;
                Ok(IndicationOutcome::Aborted)
            }
            (_, OpCode::ReportStoredRecords, _) if active => match (self.state, code) {
                (TransferState::Ending, ResponseCode::Success)
                | (TransferState::Requested, ResponseCode::NoRecordsFound) => {
                    self.state = TransferState::Complete;
                    Ok(IndicationOutcome::Complete)
                }
                (_, ResponseCode::Success) => Err(self.interrupt(Error::Incomplete)),
                (_, code) => Err(self.interrupt(Error::Refused { request, code })),
            },
            _ => Ok(IndicationOutcome::Ignored),
        }
    }
}
