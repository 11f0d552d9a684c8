//! The pull half of the sync protocol, without IO: [`Pull`], the state machine that pulls
//! pages by cursor; the request body for a cursor; and what an HTTP answer to it means (a page
//! to apply, a wait, or a refusal to show the operator).
//!
//! [`Pull`] has the push client's shape: [`Pull::poll_transmit`] gives the next page to ask
//! for, [`Pull::handle_response`] / [`Pull::handle_failure`] / [`Pull::handle_timeout`] take
//! what happened, and [`Pull::poll_event`] hands the shell each checked page to store (the page
//! and its cursor in one transaction, which the shell does and confirms with
//! [`Pull::page_stored`]) and, last, why the pull stopped ([`PullStop`]). It waits after a
//! failure worth retrying with the push client's backoff, `Retry-After` and circuit breaker
//! (the same code and [`Config`]), and tells failures apart by their kind ([`PullError`]),
//! never by their message.
//!
//! A page is checked before the shell applies it, so a malformed or inconsistent answer
//! changes nothing on the terminal: the cursor must be present, each key must be 32 bytes of
//! standard base64, each balance must be `credited - spent`, and names must not be empty.
//! What a page means beyond that (replacing the policy set, the schedule and the leases) is
//! the store's business.

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;

use crate::backoff::{Backoff, Wait};
use crate::{parse_retry_after, Config, Failure, Response, Time};
use sync_protocol::wire::{ErrorBody, PullRequest, PullResponse, TerminalReport};

/// The most changes the server gives in one answer.
pub const MAX_PULL_LIMIT: u32 = 1000;

/// Why a pull did not give a page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PullError {
    /// No HTTP answer: the server could not be reached, did not answer in time, or the
    /// connection broke. Pull again later.
    #[error("{}", crate::UNREACHABLE)]
    Unreachable {
        /// How the request failed.
        failure: Failure,
    },
    /// The server is busy or failing for now; pull again later (`retry_after` is its floor).
    #[error(
        "중앙 서버가 지금은 답하지 못합니다 (HTTP {status}). 잠시 뒤 다시 동기화합니다 / the \
         central server cannot answer now (HTTP {status}); the terminal pulls again later"
    )]
    RetryLater {
        /// The HTTP status.
        status: u16,
        /// The server's `Retry-After`, when it gave one in seconds.
        retry_after: Option<Duration>,
    },
    /// The server refused the request; pulling again will not help until someone acts.
    #[error("{message} ({code}, HTTP {status})")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's code, or `http_<status>`.
        code: String,
        /// Korean, then English.
        message: String,
    },
    /// The answer is not a page this terminal can trust; nothing of it is applied.
    #[error(
        "중앙 서버의 응답을 읽을 수 없어 아무것도 바꾸지 않았습니다 ({reason}). 관리자에게 \
         알려 주세요 / the central server's answer could not be read, nothing was changed \
         ({reason}); tell the operator"
    )]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
}

/// The body of a pull from `cursor` (none: from the beginning), at most `limit` changes,
/// telling the terminal's operation `sequence` when it keeps one.
pub fn pull_body(
    cursor: Option<&str>,
    limit: u32,
    sequence: Option<u64>,
    report: Option<&TerminalReport>,
) -> Vec<u8> {
    let request = PullRequest {
        cursor: cursor.filter(|c| !c.is_empty()).map(str::to_owned),
        limit: Some(limit.clamp(1, MAX_PULL_LIMIT)),
        sequence,
        report: report.cloned(),
    };
    serde_json::to_vec(&request).unwrap_or_default()
}

/// What an HTTP answer to a pull means: a checked page, or why there is none.
pub fn read_pull_answer(response: &Response) -> Result<PullResponse, PullError> {
    match response.status {
        200 => {
            let page: PullResponse =
                serde_json::from_slice(&response.body).map_err(|e| PullError::Malformed {
                    reason: format!("not a pull answer: {e}"),
                })?;
            check_page(&page).map_err(|reason| PullError::Malformed { reason })?;
            Ok(page)
        }
        status @ (408 | 425 | 429 | 500..=599) => Err(PullError::RetryLater {
            status,
            retry_after: response.retry_after.as_deref().and_then(parse_retry_after),
        }),
        status => {
            let error: ErrorBody = serde_json::from_slice(&response.body).unwrap_or_default();
            if status == 401 && (error.code == "replayed_nonce" || error.code == "stale_timestamp")
            {
                return Err(PullError::RetryLater {
                    status,
                    retry_after: None,
                });
            }
            let code = if error.code.is_empty() {
                format!("http_{status}")
            } else {
                error.code
            };
            let message = if error.message.is_empty() {
                format!(
                    "서버가 요청을 거절했습니다 (HTTP {status}). 관리자에게 문의해 주세요. / The \
                     server refused the request (HTTP {status}); contact the operator."
                )
            } else {
                format!("{} / {}", error.message, error.message_en)
            };
            Err(PullError::Refused {
                status,
                code,
                message,
            })
        }
    }
}

/// Why `page` cannot be applied, if it cannot.
pub fn check_page(page: &PullResponse) -> Result<(), String> {
    if page.cursor.trim().is_empty() {
        return Err("the cursor is empty".to_owned());
    }
    for key in &page.redemption_keys {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&key.public_key)
            .map_err(|_| format!("redemption key {} is not base64", key.key_id))?;
        if bytes.len() != 32 {
            return Err(format!("redemption key {} is not 32 bytes", key.key_id));
        }
    }
    for b in &page.balances {
        if b.member_number.trim().is_empty() {
            return Err("a balance names no member".to_owned());
        }
        if b.credited.checked_sub(b.spent) != Some(b.balance) {
            return Err(format!(
                "the balance of {} is not credited minus spent",
                b.member_number
            ));
        }
    }
    if page.revoked_members.iter().any(|m| m.trim().is_empty()) {
        return Err("a revoked member has no number".to_owned());
    }
    if page
        .watch_pairings
        .iter()
        .any(|p| p.serial.trim().is_empty() || p.member_number.trim().is_empty())
    {
        return Err("a watch pairing names no watch or no member".to_owned());
    }
    if let Some(policies) = &page.policies {
        if policies.is_empty() {
            return Err("the policy set is empty".to_owned());
        }
    }
    if page.quota_leases.iter().any(|l| l.lease_id.is_empty()) {
        return Err("a quota lease has no id".to_owned());
    }
    Ok(())
}

/// The decoded 32 bytes of a checked redemption key.
pub fn key_bytes(public_key: &str) -> Option<[u8; 32]> {
    base64::engine::general_purpose::STANDARD
        .decode(public_key)
        .ok()?
        .try_into()
        .ok()
}

/// How far one pull goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullBounds {
    /// Most changes asked for in one page (1 to [`MAX_PULL_LIMIT`]).
    pub limit: u32,
    /// Most pages in one pull, so that a pull always ends.
    pub max_pages: u32,
    /// The longest wait the caller accepts before the next try (backoff, `Retry-After`); a
    /// pull that would have to wait longer stops for now.
    pub max_wait: Duration,
}

impl Default for PullBounds {
    fn default() -> PullBounds {
        PullBounds {
            limit: 500,
            max_pages: 10_000,
            max_wait: Duration::from_secs(60),
        }
    }
}

/// A page to ask for: `POST` [`sync_protocol::wire::PULL_PATH`] with [`PullTransmit::body`],
/// signed by the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullTransmit {
    /// Which request this is; pass it back with the answer.
    pub seq: u64,
    /// The cursor to pull from (none: from the beginning).
    pub cursor: Option<String>,
    /// Most changes in the page.
    pub limit: u32,
}

impl PullTransmit {
    /// The request body, telling the terminal's operation `sequence` when it keeps one, and
    /// how the terminal is doing.
    pub fn body(&self, sequence: Option<u64>, report: Option<&TerminalReport>) -> Vec<u8> {
        pull_body(self.cursor.as_deref(), self.limit, sequence, report)
    }
}

/// Why a pull ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullStop {
    /// The server said there are no more pages: the terminal is up to date.
    Done,
    /// [`PullBounds::max_pages`] pages were stored and the server has more; the next pull goes
    /// on from the stored cursor.
    MaxPages,
    /// A failure retrying will not fix: the server refused the request, or a page was
    /// malformed (and nothing of it was stored).
    Failed(PullError),
    /// Consecutive failures opened the circuit; `error` is the last of them. No pull should be
    /// tried before `until`, the end of the cool-down.
    CircuitOpen {
        /// The last failure.
        error: PullError,
        /// When the cool-down ends.
        until: Time,
    },
    /// The wait before the next try would be longer than [`PullBounds::max_wait`]; `error` is
    /// the failure that asked for it.
    WaitTooLong {
        /// The failure.
        error: PullError,
        /// When the next try would have been.
        until: Time,
    },
}

impl PullStop {
    /// The failure that stopped the pull, if one did.
    pub fn error(&self) -> Option<&PullError> {
        match self {
            PullStop::Done | PullStop::MaxPages => None,
            PullStop::Failed(error)
            | PullStop::CircuitOpen { error, .. }
            | PullStop::WaitTooLong { error, .. } => Some(error),
        }
    }
}

/// What the shell must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// A checked page: store its changes and its cursor in one transaction, then call
    /// [`Pull::page_stored`] (or [`Pull::refuse_page`] if the shell's own checks refuse it).
    /// No next page is asked for before.
    Page(Box<PullResponse>),
    /// The pull ended; nothing more happens.
    Stopped(PullStop),
}

/// Where a pull is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPhase {
    /// A request may be sent now.
    Ready,
    /// A request is out; waiting for its answer.
    InFlight,
    /// A page was handed to the shell; waiting for it to be stored.
    Storing,
    /// Waiting after a failure (backoff or `Retry-After`).
    BackingOff,
    /// Ended (see [`Pull::stopped`]).
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Ready,
    InFlight { seq: u64, deadline: Time },
    Storing { cursor: String, more: bool },
    Stopped(PullStop),
}

/// One pull, from a cursor until the server has no more pages. See the module documentation.
#[derive(Debug)]
pub struct Pull {
    config: Config,
    bounds: PullBounds,
    cursor: Option<String>,
    state: State,
    backoff: Backoff,
    events: VecDeque<PullEvent>,
    next_seq: u64,
    pages: u32,
}

impl Pull {
    /// A pull from `cursor` (the one stored with the last page; none: from the beginning),
    /// within `bounds`, waiting after failures as `config` says (its request timeout, backoff,
    /// `Retry-After` cap and breaker; the batch limits are the push's), drawing its jitter from
    /// `seed` (the shell's entropy).
    pub fn new(config: Config, bounds: PullBounds, cursor: Option<String>, seed: u64) -> Pull {
        let mut pull = Pull {
            config,
            bounds,
            cursor: cursor.filter(|c| !c.is_empty()),
            state: State::Ready,
            backoff: Backoff::new(seed),
            events: VecDeque::new(),
            next_seq: 0,
            pages: 0,
        };
        if bounds.max_pages == 0 {
            pull.stop(PullStop::MaxPages);
        }
        pull
    }

    /// The cursor of the last page stored (or the one the pull started from).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Pages stored so far.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Why the pull ended, if it did.
    pub fn stopped(&self) -> Option<&PullStop> {
        match &self.state {
            State::Stopped(stop) => Some(stop),
            _ => None,
        }
    }

    /// Where the pull is at `now`.
    pub fn phase(&self, now: Time) -> PullPhase {
        match self.state {
            State::Stopped(_) => PullPhase::Stopped,
            State::InFlight { .. } => PullPhase::InFlight,
            State::Storing { .. } => PullPhase::Storing,
            State::Ready if self.backoff.waiting(now).is_some() => PullPhase::BackingOff,
            State::Ready => PullPhase::Ready,
        }
    }

    /// The next page to ask for at `now`, if one may be asked for: one request at a time,
    /// none while a page is being stored or while backing off.
    pub fn poll_transmit(&mut self, now: Time) -> Option<PullTransmit> {
        if self.state != State::Ready {
            return None;
        }
        // The pull stops when the circuit opens, so whatever is let through is one request.
        self.backoff.admit(now)?;
        self.next_seq += 1;
        let seq = self.next_seq;
        self.state = State::InFlight {
            seq,
            deadline: now.saturating_add(self.config.request_timeout),
        };
        Some(PullTransmit {
            seq,
            cursor: self.cursor.clone(),
            limit: self.bounds.limit.clamp(1, MAX_PULL_LIMIT),
        })
    }

    /// When [`Pull::handle_timeout`] should next be called: the request's deadline or the end
    /// of a backoff.
    pub fn poll_timeout(&self) -> Option<Time> {
        match self.state {
            State::InFlight { deadline, .. } => Some(deadline),
            State::Ready => self.backoff.wake(),
            State::Storing { .. } | State::Stopped(_) => None,
        }
    }

    /// Advances timers: a request whose deadline has passed is given up as lost (a late
    /// answer to it is ignored; the same cursor is asked for again).
    pub fn handle_timeout(&mut self, now: Time) {
        if let State::InFlight { seq, deadline } = self.state {
            if now >= deadline {
                self.handle_failure(now, seq, Failure::Timeout);
            }
        }
    }

    /// The request `seq` got no answer.
    pub fn handle_failure(&mut self, now: Time, seq: u64, failure: Failure) {
        if self.take_in_flight(seq) {
            self.failed(now, PullError::Unreachable { failure });
        }
    }

    /// The request `seq` got an HTTP answer.
    pub fn handle_response(&mut self, now: Time, seq: u64, response: Response) {
        if !self.take_in_flight(seq) {
            return;
        }
        match read_pull_answer(&response) {
            Ok(page) => {
                self.backoff.succeeded();
                self.state = State::Storing {
                    cursor: page.cursor.clone(),
                    more: page.more,
                };
                self.events.push_back(PullEvent::Page(Box::new(page)));
            }
            Err(error) => self.failed(now, error),
        }
    }

    /// The shell stored the page it was given, with its cursor, in one transaction. The next
    /// page may be asked for at once, unless that was the last or the pull is at its bound.
    pub fn page_stored(&mut self) {
        let State::Storing { cursor, more } = &self.state else {
            return;
        };
        let more = *more;
        self.cursor = Some(cursor.clone());
        self.pages = self.pages.saturating_add(1);
        if !more {
            self.stop(PullStop::Done);
        } else if self.pages >= self.bounds.max_pages {
            self.stop(PullStop::MaxPages);
        } else {
            self.state = State::Ready;
        }
    }

    /// The shell could not take the page it was given (`reason`: a check of its own failed,
    /// a policy that does not read, say) and stored nothing of it: the pull stops there.
    pub fn refuse_page(&mut self, reason: String) {
        if matches!(self.state, State::Storing { .. }) {
            self.stop(PullStop::Failed(PullError::Malformed { reason }));
        }
    }

    /// The next event for the shell.
    pub fn poll_event(&mut self) -> Option<PullEvent> {
        self.events.pop_front()
    }

    fn take_in_flight(&mut self, seq: u64) -> bool {
        match self.state {
            State::InFlight { seq: out, .. } if out == seq => {
                self.state = State::Ready;
                true
            }
            _ => false,
        }
    }

    /// A request failed in the way `error` says. The kind decides: no answer and "retry
    /// later" wait (and stop when the circuit opens or the wait is too long); anything else
    /// stops the pull at once.
    fn failed(&mut self, now: Time, error: PullError) {
        let retry_after = match &error {
            PullError::Unreachable { .. } => None,
            PullError::RetryLater { retry_after, .. } => *retry_after,
            PullError::Refused { .. } | PullError::Malformed { .. } => {
                self.stop(PullStop::Failed(error));
                return;
            }
        };
        match self.backoff.failed(&self.config, now, retry_after) {
            Wait::CircuitOpen(until) => self.stop(PullStop::CircuitOpen { error, until }),
            Wait::Backoff(until) if until.since(now) > self.bounds.max_wait => {
                self.stop(PullStop::WaitTooLong { error, until });
            }
            Wait::Backoff(_) => self.state = State::Ready,
        }
    }

    fn stop(&mut self, stop: PullStop) {
        self.state = State::Stopped(stop.clone());
        self.events.push_back(PullEvent::Stopped(stop));
    }
}

#[cfg(test)]
mod machine_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Response {
        Response {
            status,
            retry_after: Some("7".to_owned()),
            body: body.as_bytes().to_vec(),
        }
    }

    const PAGE: &str = r#"{"cursor":"1.ed0cfe4797745701.43","more":false,
        "redemption_keys":[{"key_id":1,"public_key":"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=","retired":false}],
        "revoked_members":["PP-00000007"],
        "balances":[{"member_number":"PP-00000001","credited":1200,"spent":300,"balance":900}],
        "watch_pairings":[{"serial":"PW-0042","member_number":"PP-00000001","ended":false}],
        "admission":{"days":{"2025-12-03":{"rule":"age_band","min_age":65,"max_age":120},"2025-12-04":{"rule":"odd_birth_years"}}},
        "quota_leases":[{"lease_id":"Q-000001","site":"성북구 보건소","day":"2025-12-03","places":200,"used":12}],
        "extra":"ignored"}"#;

    #[test]
    fn the_documented_example_reads_as_a_page() {
        let page = read_pull_answer(&answer(200, PAGE)).unwrap();
        assert_eq!(page.cursor, "1.ed0cfe4797745701.43");
        assert_eq!(page.balances[0].balance, 900);
        assert_eq!(page.admission.unwrap().days.len(), 2);
        assert_eq!(page.quota_leases[0].remaining(), 188);
        assert_eq!(
            key_bytes(&page.redemption_keys[0].public_key).unwrap()[0],
            3
        );
    }

    #[test]
    fn the_request_body_names_the_cursor_a_bounded_limit_and_the_sequence() {
        assert_eq!(pull_body(None, 0, None, None), br#"{"limit":1}"#);
        assert_eq!(
            pull_body(Some("1.ab.3"), 5000, Some(7), None),
            br#"{"cursor":"1.ab.3","limit":1000,"sequence":7}"#
        );
        let report = TerminalReport {
            app_version: "0.3.1".into(),
            waiting: 4,
            oldest_waiting_s: Some(95),
            clock_offset_s: Some(-3),
        };
        assert_eq!(
            pull_body(None, 500, Some(7), Some(&report)),
            br#"{"limit":500,"sequence":7,"report":{"app_version":"0.3.1","waiting":4,"oldest_waiting_s":95,"clock_offset_s":-3}}"#
        );
    }

    fn check(status: u16, body: &str, expect: &str) {
        let got = match read_pull_answer(&answer(status, body)) {
            Ok(_) => "page".to_owned(),
            Err(PullError::RetryLater { retry_after, .. }) => format!("retry {retry_after:?}"),
            Err(PullError::Refused { code, .. }) => format!("refused {code}"),
            Err(PullError::Malformed { reason }) => format!("malformed {reason}"),
            Err(PullError::Unreachable { failure }) => format!("unreachable {failure:?}"),
        };
        assert!(got.starts_with(expect), "{status} {body}: {got}");
    }

    #[test]
    fn bad_answers_are_refused_before_anything_is_applied() {
        check(200, "not json", "malformed not a pull answer");
        check(
            200,
            r#"{"cursor":"","more":false}"#,
            "malformed the cursor is empty",
        );
        check(
            200,
            &PAGE.replace(r#""balance":900"#, r#""balance":901"#),
            "malformed the balance of PP-00000001",
        );
        check(
            200,
            &PAGE.replace("A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=", "AAAA"),
            "malformed redemption key 1 is not 32 bytes",
        );
        check(
            200,
            &PAGE.replace(r#""more":false"#, r#""more":false,"policies":[]"#),
            "malformed the policy set is empty",
        );
        check(429, "", "retry Some(7s)");
        check(503, "", "retry Some(7s)");
        check(
            403,
            r#"{"code":"revoked_terminal","message":"중지","message_en":"revoked"}"#,
            "refused revoked_terminal",
        );
        check(404, "", "refused http_404");
        check(401, r#"{"code":"replayed_nonce"}"#, "retry None");
        check(401, r#"{"code":"stale_timestamp"}"#, "retry None");
    }
}
