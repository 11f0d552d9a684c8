//! `sync-client`: the terminal's side of the sync protocol as a sans-IO state machine, shaped
//! like quinn-proto and str0m. The shell (the `palpal` command, later the app) feeds it the
//! operations of the outbox with [`Client::enqueue`], asks [`Client::poll_transmit`] for the
//! next request to send, and feeds back what happened with [`Client::handle_response`],
//! [`Client::handle_failure`] and [`Client::handle_timeout`]; [`Client::poll_event`] yields each
//! operation's final result ([`Event::Settled`]) for the shell to write to the store, and
//! [`Client::poll_timeout`] says when to wake it next.
//!
//! It decides when to push (one request in flight, batches bounded by count and bytes), how
//! long to wait after a failure (exponential backoff with full jitter, never sooner than the
//! server's `Retry-After`), when to stop knocking on a failing server (a circuit breaker that
//! opens after consecutive failures and lets one small probe through after a cool-down), and
//! what each per-operation result means (accepted and duplicate are done; rejected is final and
//! carries its reason to the operator, never dropped).
//!
//! It is not an adapter: no sockets, no HTTP client, no database, no clock and no entropy. Time
//! comes in as [`Time`] and randomness as the seed of [`Client::new`], so a run replays exactly
//! (`clippy.toml` forbids reading the clock). The request bodies and their signing are
//! `sync-protocol`'s, the one definition both ends use. [`pull`] is the pull half: [`Pull`],
//! a state machine of the same shape that pulls pages by cursor and waits after failures with
//! the same backoff, `Retry-After` and circuit breaker (one implementation, shared), and what
//! an answer means, checked before anything of it is applied.

mod backoff;
pub mod pull;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use sync_protocol::wire::{self, OpKind, OpPayload, Operation};

use crate::backoff::{Admit, Backoff, Wait};

pub use crate::backoff::backoff_ceiling;
pub use crate::pull::{Pull, PullBounds, PullError, PullEvent, PullPhase, PullStop, PullTransmit};

pub use sync_protocol::wire::{OpResult, OpStatus};

/// A point on the shell's monotonic clock, in milliseconds from an origin the shell picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(u64);

impl Time {
    /// The time `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Time {
        Time(millis)
    }

    /// Milliseconds after the origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating.
    pub fn saturating_add(self, duration: Duration) -> Time {
        Time(
            self.0
                .saturating_add(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// How long after `earlier` this is (zero if it is not later).
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// The client's limits and timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Most operations in one request (the server takes at most 1,000).
    pub max_batch_ops: usize,
    /// Most bytes in one request body (the server takes at most 1 MiB).
    pub max_batch_bytes: usize,
    /// How long to wait for an answer before giving the request up as lost.
    pub request_timeout: Duration,
    /// The first backoff's upper bound; it doubles with each consecutive failure.
    pub backoff_base: Duration,
    /// The largest backoff's upper bound.
    pub backoff_cap: Duration,
    /// Consecutive failures that open the circuit.
    pub breaker_threshold: u32,
    /// How long an open circuit stays open before one probe is let through.
    pub breaker_cooldown: Duration,
    /// Most operations in the probe sent when the circuit is half open.
    pub probe_max_ops: usize,
    /// The longest `Retry-After` believed; a larger one is cut to this.
    pub max_retry_after: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_batch_ops: 1000,
            max_batch_bytes: 900 * 1024,
            request_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(60),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            probe_max_ops: 10,
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

/// Why an operation could not be queued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// The outbox names a kind this program does not know.
    #[error("operation {op_id}: unknown kind {kind:?}")]
    Kind {
        /// The operation.
        op_id: String,
        /// The kind as stored.
        kind: String,
    },
    /// The stored payload is not the kind's JSON object.
    #[error("operation {op_id}: the stored payload is not a {kind} payload: {source}")]
    Payload {
        /// The operation.
        op_id: String,
        /// The kind as stored.
        kind: String,
        /// What the parser said.
        source: serde_json::Error,
    },
}

/// One operation from the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The id that makes it idempotent.
    pub op_id: String,
    /// What it says.
    pub payload: OpPayload,
    /// The terminal's number for it ([`sync_protocol::wire::Operation::seq`]), when it keeps
    /// one.
    pub seq: Option<u64>,
}

impl Op {
    /// An operation from an outbox row: its kind and its payload as the wire carries it.
    pub fn from_outbox(op_id: &str, kind: &str, payload: &str) -> Result<Op, OpError> {
        let kind_of = OpKind::parse(kind).ok_or_else(|| OpError::Kind {
            op_id: op_id.to_owned(),
            kind: kind.to_owned(),
        })?;
        let payload =
            OpPayload::from_json(kind_of, payload).map_err(|source| OpError::Payload {
                op_id: op_id.to_owned(),
                kind: kind.to_owned(),
                source,
            })?;
        Ok(Op {
            op_id: op_id.to_owned(),
            payload,
            seq: None,
        })
    }
}

/// A request to send: `POST` [`wire::SYNC_PATH`] with `body`, signed by the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Which request this is; pass it back with the answer.
    pub seq: u64,
    /// The exact body bytes (sign these).
    pub body: Vec<u8>,
    /// The operations in it, in order.
    pub op_ids: Vec<String>,
}

/// An HTTP answer, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The connection could not be made (server down, network down).
    Connect,
    /// No answer in time.
    Timeout,
    /// The connection broke, or the answer could not be read.
    Broken,
}

/// What a terminal says when the server could not be reached or did not answer, for a push or
/// a pull: Korean, then English.
pub const UNREACHABLE: &str = "중앙 서버에 연결할 수 없거나 서버가 응답하지 않습니다 / the \
                               central server cannot be reached or is not answering";

/// An operation's final result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server applied it now.
    Accepted {
        /// For an enrollment, the member's number.
        member_number: Option<String>,
    },
    /// The server had applied it before (or already had this member).
    Duplicate {
        /// For an enrollment, the member's number.
        member_number: Option<String>,
    },
    /// Not applied; sending it again will not help. Kept and shown to the operator.
    Rejected {
        /// A closed-set code: the server's reason, or `too_large` for an operation the client
        /// cannot send in any request.
        reason: String,
        /// What to tell the operator, Korean then English.
        message: String,
    },
}

/// Why the client stopped: a refusal of the whole request that retrying will not fix (the
/// terminal was revoked, its clock is wrong, its key is not the enrolled one, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Halt {
    /// The HTTP status.
    pub status: u16,
    /// The server's error code, or `http_<status>` when the body had none.
    pub code: String,
    /// The server's message, Korean then English.
    pub message: String,
}

/// What the shell must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An operation's final result: write it to the store. Each queued operation is settled
    /// exactly once.
    Settled {
        /// The operation.
        op_id: String,
        /// What became of it.
        outcome: Outcome,
    },
    /// The client stopped; the operations not settled stay queued on the terminal.
    Halted(Halt),
}

/// Where the client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing to send.
    Idle,
    /// A request may be sent now.
    Ready,
    /// A request is out; waiting for its answer.
    InFlight,
    /// Waiting after a failure (backoff or `Retry-After`).
    BackingOff,
    /// The circuit is open: nothing is sent until the cool-down ends.
    CircuitOpen,
    /// Stopped by a refusal retrying will not fix.
    Halted,
}

/// Counters for the summary a person reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Requests sent.
    pub requests: u64,
    /// Operations sent, counting each resend.
    pub ops_sent: u64,
    /// Operations settled as accepted.
    pub accepted: u64,
    /// Operations settled as duplicate.
    pub duplicate: u64,
    /// Operations settled as rejected.
    pub rejected: u64,
    /// Requests that failed in a way worth retrying.
    pub failures: u64,
    /// Times the circuit opened.
    pub circuit_opened: u64,
}

#[derive(Debug, Clone)]
struct Pending {
    op_id: String,
    /// The operation's JSON as it goes in the body.
    encoded: Vec<u8>,
}

#[derive(Debug)]
struct InFlight {
    seq: u64,
    ops: Vec<Pending>,
    bytes: usize,
    deadline: Time,
}

/// The body's fixed parts: `{"operations":[` ... `]}`.
const ENVELOPE_HEAD: &[u8] = b"{\"operations\":[";
const ENVELOPE_TAIL: &[u8] = b"]}";

/// The body size of a batch of operations whose encodings sum to `ops_bytes`.
fn body_size(count: usize, ops_bytes: usize) -> usize {
    ENVELOPE_HEAD.len() + ENVELOPE_TAIL.len() + ops_bytes + count.saturating_sub(1)
}

const TOO_LARGE_MESSAGE: &str = "작업이 너무 커서 서버로 보낼 수 없습니다. 관리자에게 문의해 \
     주세요. / The operation is too large to send to the server; contact the operator.";

/// The terminal's sync client. See the crate documentation.
#[derive(Debug)]
pub struct Client {
    config: Config,
    queue: VecDeque<Pending>,
    /// Every operation queued or in flight and not yet settled.
    live: BTreeSet<String>,
    in_flight: Option<InFlight>,
    backoff: Backoff,
    halted: Option<Halt>,
    events: VecDeque<Event>,
    next_seq: u64,
    /// Current batch limits; below the configured ones after a 413.
    limit_ops: usize,
    limit_bytes: usize,
    stats: Stats,
}

impl Client {
    /// A client with `config`, drawing its jitter from `seed` (the shell's entropy).
    pub fn new(config: Config, seed: u64) -> Client {
        let limit_ops = config.max_batch_ops.max(1);
        let limit_bytes = config.max_batch_bytes;
        Client {
            config,
            queue: VecDeque::new(),
            live: BTreeSet::new(),
            in_flight: None,
            backoff: Backoff::new(seed),
            halted: None,
            events: VecDeque::new(),
            next_seq: 0,
            limit_ops,
            limit_bytes,
            stats: Stats::default(),
        }
    }

    /// Queues an operation behind those already queued. An operation already queued or in
    /// flight is ignored. One that cannot fit in any request is settled at once as rejected
    /// with `too_large`.
    pub fn enqueue(&mut self, op: Op) {
        if self.live.contains(&op.op_id) {
            return;
        }
        let encoded = match serde_json::to_vec(
            &Operation::new(op.op_id.as_str(), &op.payload).numbered(op.seq),
        ) {
            Ok(encoded) => encoded,
            Err(_) => {
                self.settle_local_too_large(op.op_id);
                return;
            }
        };
        if body_size(1, encoded.len()) > self.config.max_batch_bytes {
            self.settle_local_too_large(op.op_id);
            return;
        }
        self.live.insert(op.op_id.clone());
        self.queue.push_back(Pending {
            op_id: op.op_id,
            encoded,
        });
    }

    fn settle_local_too_large(&mut self, op_id: String) {
        self.stats.rejected += 1;
        self.events.push_back(Event::Settled {
            op_id,
            outcome: Outcome::Rejected {
                reason: "too_large".to_owned(),
                message: TOO_LARGE_MESSAGE.to_owned(),
            },
        });
    }

    /// Operations queued or in flight, not yet settled.
    pub fn unsettled(&self) -> usize {
        self.live.len()
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Why the client stopped, if it did.
    pub fn halted(&self) -> Option<&Halt> {
        self.halted.as_ref()
    }

    /// Where the client is at `now`.
    pub fn phase(&self, now: Time) -> Phase {
        if self.halted.is_some() {
            Phase::Halted
        } else if self.in_flight.is_some() {
            Phase::InFlight
        } else if self.queue.is_empty() {
            Phase::Idle
        } else {
            self.backoff.waiting(now).unwrap_or(Phase::Ready)
        }
    }

    /// The next request to send at `now`, if one may be sent: at most one is in flight, none
    /// is sent while backing off or while the circuit is open, and a half-open circuit lets
    /// one small probe through.
    pub fn poll_transmit(&mut self, now: Time) -> Option<Transmit> {
        if self.halted.is_some() || self.in_flight.is_some() || self.queue.is_empty() {
            return None;
        }
        let max_ops = match self.backoff.admit(now)? {
            Admit::Probe => self.config.probe_max_ops.max(1).min(self.limit_ops),
            Admit::Any => self.limit_ops,
        };
        let mut ops = Vec::new();
        let mut ops_bytes = 0;
        while let Some(next) = self.queue.front() {
            if ops.len() >= max_ops {
                break;
            }
            let size = body_size(ops.len() + 1, ops_bytes + next.encoded.len());
            // The first operation always goes: enqueue made sure it fits the configured limit,
            // which a 413 may have lowered below it.
            if !ops.is_empty() && size > self.limit_bytes {
                break;
            }
            ops_bytes += next.encoded.len();
            if let Some(op) = self.queue.pop_front() {
                ops.push(op);
            }
        }
        let mut body = Vec::with_capacity(body_size(ops.len(), ops_bytes));
        body.extend_from_slice(ENVELOPE_HEAD);
        for (i, op) in ops.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&op.encoded);
        }
        body.extend_from_slice(ENVELOPE_TAIL);
        self.next_seq += 1;
        let seq = self.next_seq;
        self.stats.requests += 1;
        self.stats.ops_sent += ops.len() as u64;
        let op_ids = ops.iter().map(|op| op.op_id.clone()).collect();
        self.in_flight = Some(InFlight {
            seq,
            bytes: body.len(),
            ops,
            deadline: now.saturating_add(self.config.request_timeout),
        });
        Some(Transmit { seq, body, op_ids })
    }

    /// When [`Client::handle_timeout`] should next be called: the in-flight request's deadline,
    /// the end of a backoff, or the end of the circuit's cool-down.
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.halted.is_some() {
            return None;
        }
        if let Some(flight) = &self.in_flight {
            return Some(flight.deadline);
        }
        if self.queue.is_empty() {
            return None;
        }
        self.backoff.wake()
    }

    /// Advances timers: a request whose deadline has passed is given up as lost (its answer,
    /// if it comes later, is still used).
    pub fn handle_timeout(&mut self, now: Time) {
        if let Some(flight) = &self.in_flight {
            if now >= flight.deadline {
                let seq = flight.seq;
                self.handle_failure(now, seq, Failure::Timeout);
            }
        }
    }

    /// The request `seq` got no answer.
    pub fn handle_failure(&mut self, now: Time, seq: u64, _failure: Failure) {
        if let Some(flight) = self.take_in_flight(seq) {
            self.requeue(flight.ops);
            self.retry_later(now, None);
        }
    }

    /// The request `seq` got an HTTP answer.
    pub fn handle_response(&mut self, now: Time, seq: u64, response: Response) {
        let Some(flight) = self.take_in_flight(seq) else {
            // An answer to a request given up earlier. Its results are facts all the same:
            // settle the operations it names that are still waiting.
            if response.status == 200 {
                if let Ok(parsed) = serde_json::from_slice::<wire::SyncResponse>(&response.body) {
                    self.settle_stale(parsed.results);
                }
            }
            return;
        };
        let retry_after = response.retry_after.as_deref().and_then(parse_retry_after);
        match response.status {
            200 => match serde_json::from_slice::<wire::SyncResponse>(&response.body) {
                Ok(parsed) => self.apply_results(now, flight, parsed.results),
                Err(_) => {
                    self.requeue(flight.ops);
                    self.retry_later(now, retry_after);
                }
            },
            413 => {
                if flight.ops.len() > 1 {
                    // Too big for this server: halve the batch and send again at once.
                    self.limit_ops = (flight.ops.len() / 2).max(1);
                    self.limit_bytes = (flight.bytes / 2).max(1);
                    self.requeue(flight.ops);
                } else {
                    for op in flight.ops {
                        self.live.remove(&op.op_id);
                        self.settle_local_too_large(op.op_id);
                    }
                }
            }
            status => {
                let error: wire::ErrorBody =
                    serde_json::from_slice(&response.body).unwrap_or_default();
                self.requeue(flight.ops);
                if retryable(status, &error.code) {
                    self.retry_later(now, retry_after);
                } else {
                    let code = if error.code.is_empty() {
                        format!("http_{status}")
                    } else {
                        error.code
                    };
                    let message = if error.message.is_empty() {
                        format!(
                            "서버가 요청을 거절했습니다 (HTTP {status}). 관리자에게 문의해 \
                             주세요. / The server refused the request (HTTP {status}); \
                             contact the operator."
                        )
                    } else {
                        format!("{} / {}", error.message, error.message_en)
                    };
                    let halt = Halt {
                        status,
                        code,
                        message,
                    };
                    self.halted = Some(halt.clone());
                    self.events.push_back(Event::Halted(halt));
                }
            }
        }
    }

    /// The next event for the shell.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn take_in_flight(&mut self, seq: u64) -> Option<InFlight> {
        match &self.in_flight {
            Some(flight) if flight.seq == seq => self.in_flight.take(),
            _ => None,
        }
    }

    /// Puts operations back at the front of the queue, in their order.
    fn requeue(&mut self, ops: Vec<Pending>) {
        for op in ops.into_iter().rev() {
            self.queue.push_front(op);
        }
    }

    fn apply_results(&mut self, now: Time, flight: InFlight, results: Vec<OpResult>) {
        let mut by_id: BTreeMap<String, OpResult> = BTreeMap::new();
        for result in results {
            by_id.entry(result.op_id.clone()).or_insert(result);
        }
        let mut missing = Vec::new();
        let mut settled = 0usize;
        for op in flight.ops {
            match by_id.remove(&op.op_id) {
                Some(result) => {
                    self.settle(result);
                    settled += 1;
                }
                None => missing.push(op),
            }
        }
        self.requeue(missing);
        if settled == 0 {
            // An answer that settled nothing is no progress: wait as after a failure.
            self.retry_later(now, None);
        } else {
            self.backoff.succeeded();
        }
    }

    fn settle_stale(&mut self, results: Vec<OpResult>) {
        let mut settled = BTreeSet::new();
        for result in results {
            if self.live.contains(&result.op_id) && !self.is_in_flight(&result.op_id) {
                settled.insert(result.op_id.clone());
                self.settle(result);
            }
        }
        if !settled.is_empty() {
            self.queue.retain(|op| !settled.contains(&op.op_id));
        }
    }

    fn is_in_flight(&self, op_id: &str) -> bool {
        self.in_flight
            .as_ref()
            .is_some_and(|f| f.ops.iter().any(|op| op.op_id == op_id))
    }

    fn settle(&mut self, result: OpResult) {
        if !self.live.remove(&result.op_id) {
            return;
        }
        let outcome = match result.status {
            OpStatus::Accepted => {
                self.stats.accepted += 1;
                Outcome::Accepted {
                    member_number: result.member_number,
                }
            }
            OpStatus::Duplicate => {
                self.stats.duplicate += 1;
                Outcome::Duplicate {
                    member_number: result.member_number,
                }
            }
            OpStatus::Rejected => {
                self.stats.rejected += 1;
                Outcome::Rejected {
                    reason: result
                        .reason
                        .unwrap_or(wire::RejectReason::Unknown)
                        .as_str()
                        .to_owned(),
                    message: result.message.unwrap_or_else(|| {
                        "서버가 이 작업을 거절했습니다. 관리자에게 문의해 주세요. / \
                         The server rejected this operation; contact the operator."
                            .to_owned()
                    }),
                }
            }
        };
        self.events.push_back(Event::Settled {
            op_id: result.op_id,
            outcome,
        });
    }

    /// After a failure worth retrying: the shared backoff and breaker decide how long to wait.
    fn retry_later(&mut self, now: Time, retry_after: Option<Duration>) {
        self.stats.failures += 1;
        if let Wait::CircuitOpen(_) = self.backoff.failed(&self.config, now, retry_after) {
            self.stats.circuit_opened += 1;
        }
    }
}

/// Whether a refused request is worth sending again later.
fn retryable(status: u16, code: &str) -> bool {
    match status {
        408 | 425 | 429 => true,
        // A nonce seen before: the next request gets a fresh one. A timestamp too far from
        // the server's: the shell sets its clock from the answer's `Date` and signs again.
        401 => code == "replayed_nonce" || code == "stale_timestamp",
        500..=599 => true,
        _ => false,
    }
}

/// Reads `Retry-After` given in seconds. An HTTP date is not read (that needs the clock); the
/// client then falls back on its own backoff.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests;
