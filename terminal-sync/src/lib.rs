//! `terminal-sync`: the terminal's sync shell, shared by the `palpal` command and the app. It
//! drives the `sync-client` state machine with the real world: [`central::Central`] is the HTTP
//! adapter (reqwest on a current-thread runtime, every request signed), [`push`] drains the
//! outbox through [`sync_client::Client`] and writes each answer to the store, [`pull`] drives
//! [`sync_client::Pull`] page by page until the server has no more, storing each page with its
//! cursor in one transaction, and [`sync`] does both and records the attempt in the sync log.
//! [`provision`] enrolls a new terminal with the server and stores its identity.
//!
//! It reads the clock, sleeps and does IO; it decides nothing about the protocol (when to
//! send, how long to back off, what an answer means): that is `sync-client`'s. It takes the
//! store as `&mut Store` and holds it only for the calls it makes, so the app gives it a
//! connection of its own to the terminal's database file.

pub mod central;
pub mod driver;
pub mod provision;
pub mod tls;

pub use sync_client::Config;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, FixedOffset, NaiveDate};
use ed25519_dalek::SigningKey;
use sync_client::pull::{Pull, PullBounds, PullError, PullEvent, PullStop};
use sync_client::{Client, Op, Outcome, Stats, Time};
use sync_protocol::wire::{PullResponse, TerminalReport};
use terminal_store::{
    BalanceChange, CachedKey, CachedPolicy, FinalAnswer, PulledCard, PulledPage, ServerPairing,
    Store, TerminalIdentity,
};

use crate::central::Central;

/// How a sync runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The sync clients' limits and timings: the push's batches, and the request timeout,
    /// backoff, `Retry-After` cap and breaker of both push and pull.
    pub client: Config,
    /// The longest a sync waits for the server (backoff, `Retry-After`) before it stops for now.
    pub max_wait: Duration,
    /// Most changes asked for in one pull page (1 to 1,000).
    pub pull_limit: u32,
    /// Most pages in one sync (a bound, so that a sync always ends).
    pub max_pages: u32,
    /// The app's version, told to the server with each pull.
    pub app_version: String,
    /// Seconds this terminal's clock is played to be off (0 in use; the reliability tests
    /// play terminals whose clocks are wrong, which the server's `Date` corrects).
    pub clock_error_s: i64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            client: Config::default(),
            max_wait: Duration::from_secs(60),
            pull_limit: 500,
            max_pages: 10_000,
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            clock_error_s: 0,
        }
    }
}

/// An operation the server refused for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The operation.
    pub op_id: String,
    /// The reason code.
    pub reason: String,
    /// What to tell the operator.
    pub message: String,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushReport {
    /// The client's counters.
    pub stats: Stats,
    /// The operations rejected in this push.
    pub rejected: Vec<Rejected>,
    /// Operations still queued or in flight afterwards.
    pub remaining: u64,
    /// Why the push stopped before the outbox was drained, Korean then English.
    pub stopped: Option<String>,
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PullReport {
    /// Pages stored.
    pub pages: u32,
    /// Changes stored (balances, keys, revoked members, watch pairings).
    pub changes: u64,
    /// Why the pull stopped before the server said there was no more, Korean then English.
    pub stopped: Option<String>,
}

/// What one sync (push, then pull) did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// The push.
    pub push: PushReport,
    /// The pull; `None` when the push stopped (the pull was not tried).
    pub pull: Option<PullReport>,
    /// Whether the last request got an HTTP answer (`None`: nothing was sent).
    pub reached: Option<bool>,
}

impl Report {
    /// Why the sync did not finish, if it did not.
    pub fn error(&self) -> Option<String> {
        self.push
            .stopped
            .clone()
            .or_else(|| self.pull.as_ref().and_then(|p| p.stopped.clone()))
    }
}

/// The server key a terminal pinned at provisioning, read.
pub fn server_key(
    identity: &TerminalIdentity,
) -> anyhow::Result<Option<sync_protocol::server_key::ServerKey>> {
    identity
        .server_key
        .as_deref()
        .map(|text| {
            sync_protocol::server_key::ServerKey::parse(text).ok_or_else(|| {
                anyhow::anyhow!(
                    "저장된 서버 키 {text:?}를 읽을 수 없습니다. 단말기를 다시 등록해 주세요 / the \
                     stored server key {text:?} cannot be read; provision the terminal again"
                )
            })
        })
        .transpose()
}

/// The time now, on the wall clock, for records.
pub fn wall_now() -> DateTime<FixedOffset> {
    chrono::Utc::now().fixed_offset()
}

/// Pushes the outbox, then (if the push finished) pulls until the server has no more, and
/// records the attempt in the sync log. `now` stamps what is stored (final answers, pulled
/// balances, the log). An `Err` is a local failure (the store); the server's problems are in
/// [`Report::error`].
pub fn sync(
    store: &mut Store,
    identity: &TerminalIdentity,
    options: &Options,
    now: &dyn Fn() -> DateTime<FixedOffset>,
) -> anyhow::Result<Report> {
    let central = connect(store, identity, options.client.request_timeout)?
        .with_clock_error(options.clock_error_s);
    let mut push = push(store, identity, &central, options, now)?;
    if let Some(shown) = central.refused_server_key() {
        push.stopped = Some(central.wrong_key_message(&shown));
    }
    let pull = if push.stopped.is_none() {
        Some(pull(store, identity, &central, options, now)?)
    } else {
        None
    };
    let report = Report {
        push,
        pull,
        reached: central.reached(),
    };
    store
        .record_sync(now(), report.error().as_deref())
        .context("recording the sync")?;
    remember_address(store, &central)?;
    Ok(report)
}

/// The setting that keeps the server address that answered last.
const SERVER_IN_USE: &str = "server_in_use";

/// The central server at the terminal's addresses, starting with the one that answered last
/// (a terminal stays with an address while it answers, and moves on when it does not).
pub fn connect(
    store: &Store,
    identity: &TerminalIdentity,
    timeout: Duration,
) -> anyhow::Result<Central> {
    connect_preferring(identity, server_in_use(store)?.as_deref(), timeout)
}

/// The server address that answered last, as [`remember_address`] kept it.
pub fn server_in_use(store: &Store) -> anyhow::Result<Option<String>> {
    store.setting(SERVER_IN_USE)
}

/// The central server at the terminal's addresses, starting with `preferred` (see
/// [`server_in_use`]) when it is one of them; for callers that must not hold the store
/// while they talk to the server.
pub fn connect_preferring(
    identity: &TerminalIdentity,
    preferred: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<Central> {
    let central = Central::new(&identity.server_url, server_key(identity)?, timeout)?;
    if let Some(address) = preferred {
        central.prefer(address);
    }
    Ok(central)
}

/// Remembers the address the server last answered at, for the next [`connect`].
pub fn remember_address(store: &Store, central: &Central) -> anyhow::Result<()> {
    if central.reached() == Some(true) && central.bases().len() > 1 {
        store
            .set_setting(SERVER_IN_USE, central.base())
            .context("remembering the server address in use")?;
    }
    Ok(())
}

/// Drains the outbox to the server through the `sync-client` state machine, writing each
/// answer to the store in one transaction.
pub fn push(
    store: &mut Store,
    identity: &TerminalIdentity,
    central: &Central,
    options: &Options,
    now: &dyn Fn() -> DateTime<FixedOffset>,
) -> anyhow::Result<PushReport> {
    let key = SigningKey::from_bytes(&identity.secret_key);
    let mut client = Client::new(options.client.clone(), entropy()?);
    let mut rejected = Vec::new();
    // An entry this program cannot read is kept, rejected for the operator to see, and does
    // not hold up the others.
    let mut unreadable = Vec::new();
    for pending in store.outbox_pending()? {
        match Op::from_outbox(&pending.op_id, &pending.kind, &pending.payload) {
            Ok(op) => client.enqueue(Op {
                seq: Some(pending.seq),
                ..op
            }),
            Err(error) => unreadable.push(final_answer(
                pending.op_id,
                Outcome::Rejected {
                    reason: UNREADABLE_REASON.to_owned(),
                    message: format!("{UNREADABLE_MESSAGE} ({error})"),
                },
                &mut rejected,
            )),
        }
    }
    if !unreadable.is_empty() {
        store.settle(&unreadable, now())?;
    }

    let mut outbox = StoreOutbox {
        store: &mut *store,
        now,
        rejected: &mut rejected,
    };
    let mut transport = CentralTransport {
        central,
        terminal: &identity.terminal_id,
        key: &key,
    };
    let limits = driver::Limits {
        max_wait: Some(options.max_wait),
        stop_when_open: true,
    };
    let stop = central.run(driver::push(
        &mut client,
        &mut outbox,
        &mut transport,
        limits,
    ))?;
    let stopped = match stop {
        driver::Stop::Done => None,
        driver::Stop::Halted(halt) => Some(format!("{} ({})", halt.message, halt.code)),
        driver::Stop::Unreachable => Some(sync_client::UNREACHABLE.to_owned()),
        driver::Stop::Later => Some(LATER.to_owned()),
    };
    let counts = store.outbox_counts()?;
    Ok(PushReport {
        stats: client.stats(),
        rejected,
        remaining: counts.queued + counts.in_flight,
        stopped,
    })
}

/// The terminal's outbox, as the push driver sees it.
struct StoreOutbox<'a> {
    store: &'a mut Store,
    now: &'a dyn Fn() -> DateTime<FixedOffset>,
    rejected: &'a mut Vec<Rejected>,
}

impl driver::Outbox for StoreOutbox<'_> {
    fn sending(&mut self, transmit: &sync_client::Transmit) -> anyhow::Result<()> {
        self.store.mark_in_flight(&transmit.op_ids, (self.now)())
    }

    fn settle(&mut self, settled: Vec<(String, Outcome)>) -> anyhow::Result<()> {
        let answers: Vec<FinalAnswer> = settled
            .into_iter()
            .map(|(op_id, outcome)| final_answer(op_id, outcome, self.rejected))
            .collect();
        self.store.settle(&answers, (self.now)())?;
        Ok(())
    }
}

/// The central server, as the push driver sends to it: signed now, at the address in use.
struct CentralTransport<'a> {
    central: &'a Central,
    terminal: &'a str,
    key: &'a SigningKey,
}

impl driver::Transport for CentralTransport<'_> {
    async fn send(
        &mut self,
        transmit: &sync_client::Transmit,
    ) -> Result<sync_client::Response, sync_client::Failure> {
        self.central
            .send_async(self.terminal, self.key, transmit)
            .await
    }
}

/// The reason an outbox entry this program cannot read is rejected with, on the terminal.
pub const UNREADABLE_REASON: &str = "unreadable";
const UNREADABLE_MESSAGE: &str = "단말기에 저장된 작업을 읽을 수 없어 보내지 못했습니다. 작업은 \
     단말기에 남아 있으니 관리자에게 알려 주세요 / an operation stored on this terminal could not be \
     read, so it was not sent; it is kept on the terminal, tell the operator";

const LATER: &str = "중앙 서버가 나중에 다시 보내라고 합니다 / the central server asked to retry \
                     later";

/// Pulls pages from the stored cursor until the server says there is no more, through the
/// `sync-client` pull state machine, storing each page with its cursor in one transaction (so
/// a pull stopped anywhere resumes where it stopped). A page that does not check out is not
/// stored, and the pull stops there.
pub fn pull(
    store: &mut Store,
    identity: &TerminalIdentity,
    central: &Central,
    options: &Options,
    now: &dyn Fn() -> DateTime<FixedOffset>,
) -> anyhow::Result<PullReport> {
    let key = SigningKey::from_bytes(&identity.secret_key);
    let bounds = PullBounds {
        limit: options.pull_limit,
        max_pages: options.max_pages,
        max_wait: options.max_wait,
    };
    let mut machine = Pull::new(
        options.client.clone(),
        bounds,
        store.pull_cursor()?,
        entropy()?,
    );
    let mut report = PullReport::default();
    // How the terminal is doing, told with the first page asked for.
    let mut told = Some(terminal_report(store, central, options, now())?);
    let origin = Instant::now();
    let clock = || Time::from_millis(u64::try_from(origin.elapsed().as_millis()).unwrap_or(0));
    loop {
        while let Some(event) = machine.poll_event() {
            match event {
                PullEvent::Page(page) => match to_store_page(&page) {
                    Ok(stored) => {
                        store.apply_pull_page(&stored, now())?;
                        report.pages += 1;
                        report.changes += changes(&stored);
                        machine.page_stored();
                    }
                    Err(PullError::Malformed { reason }) => machine.refuse_page(reason),
                    Err(other) => machine.refuse_page(other.to_string()),
                },
                PullEvent::Stopped(stop) => {
                    report.stopped = stopped(&stop, options.max_pages);
                    return Ok(report);
                }
            }
        }
        let at = clock();
        if let Some(ask) = machine.poll_transmit(at) {
            let sequence = store.sequence()?;
            let answer = central.pull(
                &identity.terminal_id,
                &key,
                ask.cursor.as_deref(),
                ask.limit,
                sequence,
                told.take().as_ref(),
            );
            match answer {
                Ok(response) => machine.handle_response(clock(), ask.seq, response),
                Err(failure) => machine.handle_failure(clock(), ask.seq, failure),
            }
            continue;
        }
        match machine.poll_timeout() {
            Some(wake) => {
                std::thread::sleep(wake.since(at));
                machine.handle_timeout(clock());
            }
            // Not reached: a pull not stopped has a page to ask for, a request out, a page
            // being stored (handled above) or a wait.
            None => return Ok(report),
        }
    }
}

/// What the server is told about this terminal: its version and its outbox's backlog.
fn terminal_report(
    store: &Store,
    central: &Central,
    options: &Options,
    now: DateTime<FixedOffset>,
) -> anyhow::Result<TerminalReport> {
    let counts = store.outbox_counts()?;
    let oldest = store.outbox_oldest_waiting()?;
    Ok(TerminalReport {
        app_version: options.app_version.clone(),
        waiting: counts.queued + counts.in_flight,
        oldest_waiting_s: oldest
            .map(|made| u64::try_from(now.signed_duration_since(made).num_seconds()).unwrap_or(0)),
        clock_offset_s: (central.reached() == Some(true)).then(|| -central.skew()),
    })
}

/// What to tell a person about why a pull ended before the server said there was no more.
fn stopped(stop: &PullStop, max_pages: u32) -> Option<String> {
    match stop {
        PullStop::Done => None,
        PullStop::MaxPages => Some(format!(
            "한 번에 받을 수 있는 {max_pages} 페이지를 넘었습니다. 다음 동기화 때 이어 받습니다 / \
             more than {max_pages} pages in one sync; the next sync goes on from here"
        )),
        PullStop::Failed(error)
        | PullStop::CircuitOpen { error, .. }
        | PullStop::WaitTooLong { error, .. } => Some(error.to_string()),
    }
}

/// A seed for the state machines' jitter, from the operating system.
fn entropy() -> anyhow::Result<u64> {
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("getting randomness: {e}"))?;
    Ok(u64::from_le_bytes(seed))
}

fn changes(page: &PulledPage) -> u64 {
    let n = page.balances.len()
        + page.redemption_keys.len()
        + page.revoked_members.len()
        + page.watch_pairings.len()
        + page.cards.len();
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A checked page as the store takes it. The policy files must parse and make one set, so a
/// broken policy never replaces the cached ones.
fn to_store_page(page: &PullResponse) -> Result<PulledPage, PullError> {
    let malformed = |reason: String| PullError::Malformed { reason };
    let policies = match &page.policies {
        None => None,
        Some(texts) => {
            let mut parsed = Vec::new();
            let mut cached = Vec::new();
            for p in texts {
                let policy = points_core::PointsPolicy::from_toml_str(&p.text)
                    .map_err(|e| malformed(format!("the policy {} does not read: {e}", p.name)))?;
                let date = |s: &str| {
                    s.parse::<NaiveDate>()
                        .map_err(|_| malformed(format!("the policy {} has a bad date", p.name)))
                };
                cached.push(CachedPolicy {
                    name: p.name.clone(),
                    effective_from: date(&p.effective_from)?,
                    effective_until: p.effective_until.as_deref().map(date).transpose()?,
                    text: p.text.clone(),
                });
                parsed.push(policy);
            }
            points_core::PolicySet::new(parsed)
                .map_err(|e| malformed(format!("the policies do not make one set: {e}")))?;
            Some(cached)
        }
    };
    let redemption_keys = page
        .redemption_keys
        .iter()
        .map(|k| {
            sync_client::pull::key_bytes(&k.public_key)
                .map(|public_key| CachedKey {
                    key_id: k.key_id,
                    public_key,
                    retired: k.retired,
                })
                .ok_or_else(|| malformed(format!("redemption key {} is not 32 bytes", k.key_id)))
        })
        .collect::<Result<_, _>>()?;
    Ok(PulledPage {
        cursor: page.cursor.clone(),
        policies,
        redemption_keys,
        revoked_members: page.revoked_members.clone(),
        balances: page
            .balances
            .iter()
            .map(|b| BalanceChange {
                member_no: b.member_number.clone(),
                credited: b.credited,
                spent: b.spent,
                balance: b.balance,
            })
            .collect(),
        watch_pairings: page
            .watch_pairings
            .iter()
            .map(|p| ServerPairing {
                serial: p.serial.clone(),
                member_no: p.member_number.clone(),
                ended: p.ended,
            })
            .collect(),
        cards: page
            .cards
            .iter()
            .map(|c| {
                Ok(PulledCard {
                    member: c
                        .member_number
                        .parse()
                        .map_err(|_| malformed(format!("card of member {:?}", c.member_number)))?,
                    serial: c.serial,
                    revoked: c.revoked,
                    locked_on: c
                        .locked_on
                        .as_deref()
                        .map(|d| {
                            d.parse::<NaiveDate>()
                                .map_err(|_| malformed(format!("a card's locked day {d:?}")))
                        })
                        .transpose()?,
                })
            })
            .collect::<Result<_, PullError>>()?,
        admission: page.admission.clone(),
        quota_leases: page.quota_leases.clone(),
    })
}

fn final_answer(op_id: String, outcome: Outcome, rejected: &mut Vec<Rejected>) -> FinalAnswer {
    match outcome {
        Outcome::Accepted { member_number } => FinalAnswer::Done {
            op_id,
            duplicate: false,
            member_number,
        },
        Outcome::Duplicate { member_number } => FinalAnswer::Done {
            op_id,
            duplicate: true,
            member_number,
        },
        Outcome::Rejected { reason, message } => {
            rejected.push(Rejected {
                op_id: op_id.clone(),
                reason: reason.clone(),
                message: message.clone(),
            });
            FinalAnswer::Rejected {
                op_id,
                reason,
                message,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_protocol::wire::{PolicyText, RedemptionKey};

    const POLICY: &str = include_str!("../../policies/seoul-2025-12.toml");

    fn page(policies: Option<Vec<PolicyText>>) -> PullResponse {
        PullResponse {
            cursor: "1.0123456789abcdef.3".to_owned(),
            more: false,
            policies,
            redemption_keys: vec![RedemptionKey {
                key_id: 1,
                public_key: "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=".to_owned(),
                retired: false,
            }],
            revoked_members: vec!["PP-00000007".to_owned()],
            balances: Vec::new(),
            watch_pairings: Vec::new(),
            cards: vec![sync_protocol::wire::CardState {
                member_number: "PP-00000007".to_owned(),
                serial: 2,
                revoked: false,
                locked_on: Some("2025-12-03".to_owned()),
            }],
            admission: None,
            quota_leases: Vec::new(),
        }
    }

    fn policy(name: &str, from: &str, text: &str) -> PolicyText {
        PolicyText {
            name: name.to_owned(),
            effective_from: from.to_owned(),
            effective_until: None,
            text: text.to_owned(),
        }
    }

    #[test]
    fn a_page_becomes_the_stores_page_with_policies_that_read() {
        let stored = to_store_page(&page(Some(vec![policy(
            "seoul-2025-12",
            "2025-12-01",
            POLICY,
        )])))
        .unwrap();
        assert_eq!(stored.cursor, "1.0123456789abcdef.3");
        assert_eq!(stored.redemption_keys[0].public_key[0], 3);
        let policies = stored.policies.unwrap();
        assert_eq!(policies[0].effective_from.to_string(), "2025-12-01");
        assert_eq!(
            stored.cards,
            [PulledCard {
                member: "PP-00000007".parse().unwrap(),
                serial: 2,
                revoked: false,
                locked_on: Some("2025-12-03".parse().unwrap()),
            }]
        );
        // A key, a revoked member and a card.
        assert_eq!(changes(&to_store_page(&page(None)).unwrap()), 3);
    }

    #[test]
    fn policies_that_do_not_read_or_overlap_are_refused_whole() {
        for (policies, expect) in [
            (
                vec![policy("broken", "2025-12-01", "not a policy")],
                "the policy broken does not read",
            ),
            (
                vec![policy("seoul-2025-12", "1 December", POLICY)],
                "the policy seoul-2025-12 has a bad date",
            ),
            (
                vec![
                    policy("seoul-2025-12", "2025-12-01", POLICY),
                    policy("seoul-2025-12", "2025-12-01", POLICY),
                ],
                "do not make one set",
            ),
        ] {
            let err = to_store_page(&page(Some(policies)))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expect), "{err}");
            assert!(err.contains("아무것도 바꾸지 않았습니다"), "{err}");
        }
    }
}

/// The pull as a terminal runs it: a real HTTP server on 127.0.0.1 that answers from a
/// script, and the store on disk.
#[cfg(test)]
mod pull_tests {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use super::*;

    type Asked = Arc<Mutex<Vec<String>>>;

    /// A server that answers the requests it gets with `answers` in turn (status, Retry-After,
    /// body), then stops listening; it keeps each request's body.
    fn scripted(answers: Vec<(u16, Option<&'static str>, String)>) -> (String, Asked) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&asked);
        std::thread::spawn(move || {
            for (status, retry_after, body) in answers {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut request = vec![0; length];
                let _ = reader.read_exact(&mut request);
                kept.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&request).into_owned());
                let retry_after = retry_after
                    .map(|s| format!("retry-after: {s}\r\n"))
                    .unwrap_or_default();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{retry_after}\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, asked)
    }

    fn page(cursor: &str, more: bool, revoked: &str) -> String {
        serde_json::json!({"cursor": cursor, "more": more, "revoked_members": [revoked]})
            .to_string()
    }

    fn identity(server_url: &str) -> TerminalIdentity {
        TerminalIdentity {
            terminal_id: "T-000001".to_owned(),
            site: "성북구 보건소".to_owned(),
            role: "counter".to_owned(),
            name: "counter".to_owned(),
            server_url: server_url.to_owned(),
            server_key: None,
            secret_key: [7; 32],
            provisioned_at: wall_now(),
        }
    }

    fn options() -> Options {
        Options {
            client: Config {
                backoff_base: Duration::from_millis(20),
                backoff_cap: Duration::from_millis(50),
                breaker_threshold: 3,
                request_timeout: Duration::from_secs(10),
                ..Config::default()
            },
            max_wait: Duration::from_secs(5),
            pull_limit: 2,
            ..Options::default()
        }
    }

    fn pull_from(url: &str, store: &mut Store) -> PullReport {
        let options = options();
        let central = Central::new(url, None, options.client.request_timeout).unwrap();
        pull(store, &identity(url), &central, &options, &wall_now).unwrap()
    }

    #[test]
    fn pages_are_stored_one_by_one_and_a_busy_server_is_asked_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("terminal.db")).unwrap();
        let (url, asked) = scripted(vec![
            (200, None, page("1.ab.1", true, "PP-00000001")),
            (503, Some("0"), String::new()),
            (200, None, page("1.ab.2", false, "PP-00000002")),
        ]);
        let report = pull_from(&url, &mut store);
        assert_eq!(
            report,
            PullReport {
                pages: 2,
                changes: 2,
                stopped: None,
            }
        );
        assert_eq!(store.pull_cursor().unwrap().as_deref(), Some("1.ab.2"));
        assert!(store.is_revoked("PP-00000001").unwrap());
        assert!(store.is_revoked("PP-00000002").unwrap());
        let asked = asked.lock().unwrap();
        // The first from the start; the busy one and the one after it from the first page.
        assert!(!asked[0].contains("cursor"), "{}", asked[0]);
        assert!(asked[1].contains(r#""cursor":"1.ab.1""#), "{}", asked[1]);
        assert_eq!(asked[1], asked[2]);
    }

    #[test]
    fn a_malformed_page_is_not_stored_and_the_pull_stops_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("terminal.db")).unwrap();
        let broken_policy = serde_json::json!({
            "cursor": "1.ab.2", "more": false, "revoked_members": ["PP-00000002"],
            "policies": [{"name": "broken", "effective_from": "2026-01-01", "text": "no"}],
        })
        .to_string();
        let (url, _) = scripted(vec![
            (200, None, page("1.ab.1", true, "PP-00000001")),
            (200, None, broken_policy),
        ]);
        let report = pull_from(&url, &mut store);
        assert_eq!((report.pages, report.changes), (1, 1));
        let stopped = report.stopped.unwrap();
        assert!(
            stopped.starts_with("중앙 서버의 응답을 읽을 수 없어")
                && stopped.contains("the policy broken does not read"),
            "{stopped}"
        );
        assert_eq!(store.pull_cursor().unwrap().as_deref(), Some("1.ab.1"));
        assert!(!store.is_revoked("PP-00000002").unwrap());
    }

    #[test]
    fn a_server_that_cannot_be_reached_opens_the_circuit_and_the_pull_stops() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("terminal.db")).unwrap();
        // A port that was free a moment ago: nothing listens there.
        let url = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        let report = pull_from(&url, &mut store);
        assert_eq!(
            report,
            PullReport {
                pages: 0,
                changes: 0,
                stopped: Some(
                    "중앙 서버에 연결할 수 없거나 서버가 응답하지 않습니다 / the central server \
                     cannot be reached or is not answering"
                        .to_owned()
                ),
            }
        );
        assert_eq!(store.pull_cursor().unwrap(), None);
    }

    #[test]
    fn a_retry_after_longer_than_the_caller_waits_stops_the_pull_for_now() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("terminal.db")).unwrap();
        let (url, asked) = scripted(vec![(429, Some("30"), String::new())]);
        let report = pull_from(&url, &mut store);
        assert_eq!(report.pages, 0);
        let stopped = report.stopped.unwrap();
        assert!(
            stopped.starts_with("중앙 서버가 지금은 답하지 못합니다 (HTTP 429)"),
            "{stopped}"
        );
        assert_eq!(asked.lock().unwrap().len(), 1);
    }
}
