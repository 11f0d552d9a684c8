//! Record Access Control Point messages, as in the SIG's Glucose and CGM services (0x2A52),
//! with the sequence number widened to 32 bits.
//!
//! Every message is `op code (1) | operator (1) | operand (0..)`.

use serde::{Deserialize, Serialize};

use crate::{Error, Reader, Result};

/// A RACP op code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpCode {
    /// 0x01 Report stored records: stream the records the filter selects.
    ReportStoredRecords,
    /// 0x02 Delete stored records.
    DeleteStoredRecords,
    /// 0x03 Abort operation: stop the stream in progress.
    Abort,
    /// 0x04 Report number of stored records.
    ReportNumberOfStoredRecords,
    /// 0x05 Number of stored records response.
    NumberOfStoredRecordsResponse,
    /// 0x06 Response code.
    ResponseCode,
    /// Any other value (only ever seen as the request a watch refused).
    Other(u8),
}

impl OpCode {
    /// The op code for a byte.
    pub fn from_u8(b: u8) -> Self {
        match b {
            0x01 => OpCode::ReportStoredRecords,
            0x02 => OpCode::DeleteStoredRecords,
            0x03 => OpCode::Abort,
            0x04 => OpCode::ReportNumberOfStoredRecords,
            0x05 => OpCode::NumberOfStoredRecordsResponse,
            0x06 => OpCode::ResponseCode,
            other => OpCode::Other(other),
        }
    }

    /// The byte on the wire.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::ReportStoredRecords => 0x01,
            OpCode::DeleteStoredRecords => 0x02,
            OpCode::Abort => 0x03,
            OpCode::ReportNumberOfStoredRecords => 0x04,
            OpCode::NumberOfStoredRecordsResponse => 0x05,
            OpCode::ResponseCode => 0x06,
            OpCode::Other(b) => b,
        }
    }
}

/// A RACP response code value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseCode {
    /// 0x01 Success.
    Success,
    /// 0x02 Op code not supported.
    OpCodeNotSupported,
    /// 0x03 Invalid operator.
    InvalidOperator,
    /// 0x04 Operator not supported.
    OperatorNotSupported,
    /// 0x05 Invalid operand.
    InvalidOperand,
    /// 0x06 No records found.
    NoRecordsFound,
    /// 0x07 Abort unsuccessful.
    AbortUnsuccessful,
    /// 0x08 Procedure not completed.
    ProcedureNotCompleted,
    /// 0x09 Operand not supported.
    OperandNotSupported,
    /// Any other value (reserved for future use).
    Other(u8),
}

impl ResponseCode {
    /// The response code for a byte.
    pub fn from_u8(b: u8) -> Self {
        match b {
            0x01 => ResponseCode::Success,
            0x02 => ResponseCode::OpCodeNotSupported,
            0x03 => ResponseCode::InvalidOperator,
            0x04 => ResponseCode::OperatorNotSupported,
            0x05 => ResponseCode::InvalidOperand,
            0x06 => ResponseCode::NoRecordsFound,
            0x07 => ResponseCode::AbortUnsuccessful,
            0x08 => ResponseCode::ProcedureNotCompleted,
            0x09 => ResponseCode::OperandNotSupported,
            other => ResponseCode::Other(other),
        }
    }

    /// The byte on the wire.
    pub fn as_u8(self) -> u8 {
        match self {
            ResponseCode::Success => 0x01,
            ResponseCode::OpCodeNotSupported => 0x02,
            ResponseCode::InvalidOperator => 0x03,
            ResponseCode::OperatorNotSupported => 0x04,
            ResponseCode::InvalidOperand => 0x05,
            ResponseCode::NoRecordsFound => 0x06,
            ResponseCode::AbortUnsuccessful => 0x07,
            ResponseCode::ProcedureNotCompleted => 0x08,
            ResponseCode::OperandNotSupported => 0x09,
            ResponseCode::Other(b) => b,
        }
    }

    /// What a watch answers to a request it could not decode.
    pub fn for_error(error: &Error) -> Self {
        match error {
            Error::UnsupportedOpCode(_) => ResponseCode::OpCodeNotSupported,
            Error::InvalidOperator { .. } => ResponseCode::InvalidOperator,
            Error::UnsupportedFilter(_) => ResponseCode::OperandNotSupported,
            _ => ResponseCode::InvalidOperand,
        }
    }
}

/// Which records a request is about: the operator and its sequence-number operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Filter {
    /// 0x01 All records.
    All,
    /// 0x02 Less than or equal to the sequence number.
    LessOrEqual(u32),
    /// 0x03 Greater than or equal to the sequence number.
    GreaterOrEqual(u32),
    /// 0x04 Within the inclusive range (first ≤ second).
    Within(u32, u32),
    /// 0x05 First record (the oldest).
    First,
    /// 0x06 Last record (the newest).
    Last,
}

/// The filter type byte that starts a sequence-number operand.
const FILTER_SEQUENCE: u8 = 0x01;
const OPERATOR_NULL: u8 = 0x00;

impl Filter {
    /// Whether a record with sequence `seq` is selected, among records `oldest..=newest`.
    pub fn selects(self, seq: u32, oldest: u32, newest: u32) -> bool {
        match self {
            Filter::All => true,
            Filter::LessOrEqual(s) => seq <= s,
            Filter::GreaterOrEqual(s) => seq >= s,
            Filter::Within(a, b) => (a..=b).contains(&seq),
            Filter::First => seq == oldest,
            Filter::Last => seq == newest,
        }
    }

    fn encode_into(self, out: &mut Vec<u8>) {
        let (operator, operand): (u8, &[u32]) = match self {
            Filter::All => (0x01, &[]),
            Filter::LessOrEqual(s) => (0x02, &[s]),
            Filter::GreaterOrEqual(s) => (0x03, &[s]),
            Filter::Within(a, b) => (0x04, &[a, b]),
            Filter::First => (0x05, &[]),
            Filter::Last => (0x06, &[]),
        };
        out.push(operator);
        if !operand.is_empty() {
            out.push(FILTER_SEQUENCE);
            for s in operand {
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
    }

    fn decode(op_code: u8, operator: u8, r: &mut Reader<'_>) -> Result<Self> {
        let operand_len = match operator {
            0x01 | 0x05 | 0x06 => 0,
            0x02 | 0x03 => 1,
            0x04 => 2,
            _ => return Err(Error::InvalidOperator { op_code, operator }),
        };
        let invalid = Error::InvalidOperand { operator };
        let mut seqs = [0u32; 2];
        if operand_len > 0 {
            let filter_type = r.u8().map_err(|_| invalid.clone())?;
            if filter_type != FILTER_SEQUENCE {
                return Err(Error::UnsupportedFilter(filter_type));
            }
            for s in seqs.iter_mut().take(operand_len) {
                *s = r.u32().map_err(|_| invalid.clone())?;
            }
        }
        if r.remaining() != 0 {
            return Err(invalid);
        }
        Ok(match operator {
            0x01 => Filter::All,
            0x02 => Filter::LessOrEqual(seqs[0]),
            0x03 => Filter::GreaterOrEqual(seqs[0]),
            0x04 if seqs[0] <= seqs[1] => Filter::Within(seqs[0], seqs[1]),
            0x04 => return Err(invalid),
            0x05 => Filter::First,
            _ => Filter::Last,
        })
    }
}

/// A message on the history control point: a request the terminal writes or a response the
/// watch indicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RacpMessage {
    /// Stream the selected records as History Data notifications, then indicate a response.
    ReportStoredRecords(Filter),
    /// Delete the selected records.
    DeleteStoredRecords(Filter),
    /// Stop the operation in progress.
    Abort,
    /// Count the selected records.
    ReportNumberOfStoredRecords(Filter),
    /// How many records the filter selects.
    NumberOfStoredRecords(u32),
    /// The outcome of a request.
    Response {
        /// The request answered.
        request: OpCode,
        /// The outcome.
        code: ResponseCode,
    },
}

impl RacpMessage {
    /// The op code of this message.
    pub fn op_code(&self) -> OpCode {
        match self {
            RacpMessage::ReportStoredRecords(_) => OpCode::ReportStoredRecords,
            RacpMessage::DeleteStoredRecords(_) => OpCode::DeleteStoredRecords,
            RacpMessage::Abort => OpCode::Abort,
            RacpMessage::ReportNumberOfStoredRecords(_) => OpCode::ReportNumberOfStoredRecords,
            RacpMessage::NumberOfStoredRecords(_) => OpCode::NumberOfStoredRecordsResponse,
            RacpMessage::Response { .. } => OpCode::ResponseCode,
        }
    }

    /// The bytes to write or indicate.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(11);
        out.push(self.op_code().as_u8());
        match self {
            RacpMessage::ReportStoredRecords(f)
            | RacpMessage::DeleteStoredRecords(f)
            | RacpMessage::ReportNumberOfStoredRecords(f) => f.encode_into(&mut out),
            RacpMessage::Abort => out.push(OPERATOR_NULL),
            RacpMessage::NumberOfStoredRecords(n) => {
                out.push(OPERATOR_NULL);
                out.extend_from_slice(&n.to_le_bytes());
            }
            RacpMessage::Response { request, code } => {
                out.extend_from_slice(&[OPERATOR_NULL, request.as_u8(), code.as_u8()]);
            }
        }
        out
    }

    /// Decodes a message. The errors map onto RACP response codes with
    /// [`ResponseCode::for_error`], so a watch can answer a bad request.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new("record access control point", bytes);
        let op_code = r.u8()?;
        let known = matches!(op_code, 0x01..=0x06);
        if !known {
            return Err(Error::UnsupportedOpCode(op_code));
        }
        let operator = r.u8()?;
        let msg = match op_code {
            0x01 => RacpMessage::ReportStoredRecords(Filter::decode(op_code, operator, &mut r)?),
            0x02 => RacpMessage::DeleteStoredRecords(Filter::decode(op_code, operator, &mut r)?),
            0x04 => {
                RacpMessage::ReportNumberOfStoredRecords(Filter::decode(op_code, operator, &mut r)?)
            }
            _ if operator != OPERATOR_NULL => {
                return Err(Error::InvalidOperator { op_code, operator })
            }
            0x03 => RacpMessage::Abort,
            0x05 => RacpMessage::NumberOfStoredRecords(r.u32()?),
            _ => RacpMessage::Response {
                request: OpCode::from_u8(r.u8()?),
                code: ResponseCode::from_u8(r.u8()?),
            },
        };
        if r.remaining() != 0 {
            return Err(Error::InvalidOperand { operator });
        }
        Ok(msg)
    }
}
