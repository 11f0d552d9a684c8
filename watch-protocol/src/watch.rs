//! The watch's side of the history service: a store that answers control-point requests
//! with notification payloads, for the simulator and the tests.

use crate::history::{check_encodable, check_seq_range};
use crate::{pack_notifications, Filter, HistoryRecord, OpCode, RacpMessage, ResponseCode, Result};

/// What the watch sends after a control-point write: the History Data notifications (in
/// order, possibly none) and then the control-point indication that ends the procedure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchReply {
    /// History Data notification payloads, each at most `MTU - 3` bytes.
    pub notifications: Vec<Vec<u8>>,
    /// The RACP indication that completes the procedure.
    pub indication: Vec<u8>,
}

/// A watch's stored history: records numbered densely from the oldest kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchHistory {
    /// Sequence number of `records[0]`, or the next to assign when empty.
    first_seq: u32,
    records: Vec<HistoryRecord>,
}

impl WatchHistory {
    /// An empty history whose first record will get sequence number `first_seq`.
    pub fn starting_at(first_seq: u32) -> Self {
        WatchHistory {
            first_seq,
            records: Vec::new(),
        }
    }

    /// Stores a record and returns its sequence number. A record the codec cannot carry (a
    /// date outside 2000..2179, an hour above 23, a sub-second time) is refused.
    pub fn push(&mut self, record: HistoryRecord) -> Result<u32> {
        let seq = self.next_seq();
        check_seq_range(seq, 1)?;
        check_encodable(&record)?;
        self.records.push(record);
        Ok(seq)
    }

    /// The sequence number the next stored record gets.
    pub fn next_seq(&self) -> u32 {
        self.first_seq + self.records.len() as u32
    }

    /// The oldest and newest stored sequence numbers, if any record is stored.
    pub fn seq_range(&self) -> Option<(u32, u32)> {
        (!self.records.is_empty()).then(|| (self.first_seq, self.next_seq() - 1))
    }

    /// The record with sequence number `seq`, if stored.
    pub fn get(&self, seq: u32) -> Option<&HistoryRecord> {
        let i = seq.checked_sub(self.first_seq)?;
        self.records.get(i as usize)
    }

    /// How many records are stored.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is stored.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The inclusive range of stored sequence numbers `filter` selects.
    fn select(&self, filter: Filter) -> Option<(u32, u32)> {
        let (oldest, newest) = self.seq_range()?;
        let (lo, hi) = match filter {
            Filter::All => (oldest, newest),
            Filter::LessOrEqual(s) => (oldest, s.min(newest)),
            Filter::GreaterOrEqual(s) => (s.max(oldest), newest),
            Filter::Within(a, b) => (a.max(oldest), b.min(newest)),
            Filter::First => (oldest, oldest),
            Filter::Last => (newest, newest),
        };
        (lo <= hi).then_some((lo, hi))
    }

    /// The notifications streaming every record from `from_seq` on, for an ATT MTU.
    pub fn notifications(&self, from_seq: u32, mtu: u16) -> Result<Vec<Vec<u8>>> {
        match self.select(Filter::GreaterOrEqual(from_seq)) {
            Some((lo, hi)) => self.pack(lo, hi, mtu),
            None => Ok(Vec::new()),
        }
    }

    fn pack(&self, lo: u32, hi: u32, mtu: u16) -> Result<Vec<Vec<u8>>> {
        let start = (lo - self.first_seq) as usize;
        let end = (hi - self.first_seq) as usize;
        pack_notifications(lo, &self.records[start..=end], mtu)
    }

    /// Handles a write to the history control point, as the watch firmware does. Delete
    /// works on the oldest records only (sequence numbers are never reused).
    pub fn on_control_point(&mut self, bytes: &[u8], mtu: u16) -> WatchReply {
        let respond = |request: OpCode, code: ResponseCode| WatchReply {
            notifications: Vec::new(),
            indication: RacpMessage::Response { request, code }.encode(),
        };
        let msg = match RacpMessage::decode(bytes) {
            Ok(msg) => msg,
            Err(e) => {
                let request = OpCode::from_u8(bytes.first().copied().unwrap_or(0));
                return respond(request, ResponseCode::for_error(&e));
            }
        };
        let request = msg.op_code();
        match msg {
            RacpMessage::ReportStoredRecords(filter) => match self.select(filter) {
                None => respond(request, ResponseCode::NoRecordsFound),
                Some((lo, hi)) => match self.pack(lo, hi, mtu) {
                    Ok(notifications) => WatchReply {
                        notifications,
                        indication: RacpMessage::Response {
                            request,
                            code: ResponseCode::Success,
                        }
                        .encode(),
                    },
                    Err(_) => respond(request, ResponseCode::ProcedureNotCompleted),
                },
            },
            RacpMessage::DeleteStoredRecords(filter) => match self.select(filter) {
                None => respond(request, ResponseCode::NoRecordsFound),
                Some((lo, hi)) if lo == self.first_seq => {
                    let n = (hi - lo) as usize + 1;
                    self.records.drain(..n);
                    self.first_seq = hi + 1;
                    respond(request, ResponseCode::Success)
                }
                Some(_) => respond(request, ResponseCode::OperandNotSupported),
            },
            RacpMessage::ReportNumberOfStoredRecords(filter) => {
                let count = self.select(filter).map_or(0, |(lo, hi)| hi - lo + 1);
                WatchReply {
                    notifications: Vec::new(),
                    indication: RacpMessage::NumberOfStoredRecords(count).encode(),
                }
            }
            RacpMessage::Abort => respond(request, ResponseCode::Success),
            RacpMessage::NumberOfStoredRecords(_) | RacpMessage::Response { .. } => {
                respond(request, ResponseCode::OpCodeNotSupported)
            }
        }
    }
}
