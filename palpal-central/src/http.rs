//! The HTTP adapter: axum routes over a [`Backend`], with the single writer behind them.
//!
//! No terminal is trusted to be quick or honest about its body. A connection is refused at
//! once beyond [`Config::max_connections_per_address`] from one address or
//! [`Config::max_unknown_connections`] that have not yet named an enrolled terminal. A request
//! to a signed route whose headers name no enrolled terminal is refused before its body is
//! read. Every request except `/v1/health` and `/metrics` takes body bytes
//! ([`Config::max_in_flight_bytes`]) as they arrive, must send them within
//! [`Config::body_idle_timeout`] of each other and at [`Config::min_body_rate`] after
//! [`Config::body_grace`] (else 408 and the connection closed), has its whole body read, and
//! then needs a work permit;
//! there are [`Config::max_in_flight`] of them (fewer while the writer is slow, see
//! [`crate::limit`]) and a request that finds none is answered at once with 429 and
//! `Retry-After`, so work in flight stays bounded and nothing queues without bound. Admitted
//! requests are worked on in a runtime of their own (the lane), apart from the connections
//! being read and refused. Reads go to a small pool of read connections on blocking threads;
//! writes go to the writer.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::clock::Clock;
use crate::error::{ErrorBody, ErrorCode};
use crate::limit::Limiter;
use crate::metrics::Metrics;
use crate::signing;
use crate::store::{
    parse_terminal_label, Backend, Refusal, Sighting, Store, Terminal, Write, WriteReply,
};
use crate::wire::{
    EnrollRequest, EnrollResponse, Health, OpStatus, PullRequest, PullResponse, SyncRequest,
    SyncResponse, TerminalReport,
};
use crate::writer::{self, WriteJob};

/// The fewest requests let in at once however slow the writer is.
pub const MIN_IN_FLIGHT: usize = 8;

/// Limits of the server. The defaults suit a pilot on a small machine.
#[derive(Debug, Clone)]
pub struct Config {
    /// Requests being worked on at once at most; beyond it, 429.
    pub max_in_flight: usize,
    /// Request bodies being read or worked on at once at most, in bytes, counted as they
    /// arrive; beyond it, 429.
    pub max_in_flight_bytes: usize,
    /// How long a connection may take to send a request's headers.
    pub header_timeout: std::time::Duration,
    /// How long a body may pause between two pieces.
    pub body_idle_timeout: std::time::Duration,
    /// How long a body may take before [`Config::min_body_rate`] applies.
    pub body_grace: std::time::Duration,
    /// The slowest a body may arrive on average after [`Config::body_grace`], in bytes a
    /// second (a weak mobile network at a pharmacy sends tens of KiB a second).
    pub min_body_rate: u64,
    /// Connections open at once from one address at most; beyond it a new one is closed.
    pub max_connections_per_address: usize,
    /// Connections open at once that have not yet sent a request naming an enrolled
    /// terminal at most; beyond it a new one is closed.
    pub max_unknown_connections: usize,
    /// Who may read `/metrics` on this listener.
    pub metrics: MetricsAccess,
    /// TLS for the terminals' listener ([`crate::tls::server_config`]); `None` serves plain
    /// HTTP (terminals take it only on a loopback address).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long writes may wait for the writer (queued to committed with one writer; queued
    /// to taken by a writer with several, see `writer::Sizes::limit_on_queue`) before fewer
    /// requests are let in at once (down to [`MIN_IN_FLIGHT`]), see [`crate::limit`]; `None`
    /// keeps `max_in_flight`.
    pub latency_target: Option<std::time::Duration>,
    /// Largest request body in bytes; beyond it, 413.
    pub max_body_bytes: usize,
    /// Most operations in one sync batch; beyond it, 413 `batch_too_large`.
    pub max_operations: usize,
    /// How far a request's timestamp may be from the server's clock, in seconds.
    pub max_clock_skew_seconds: u64,
    /// How often this process writes down which terminals it heard from and what they told
    /// of themselves (kept in memory between, so that a request costs no write for it).
    pub sightings_every: std::time::Duration,
    /// The `Retry-After` sent with 429, in seconds.
    pub retry_after_seconds: u64,
    /// Writes waiting for the writer at most.
    pub write_queue: usize,
    /// Writes committed in one transaction at most.
    pub max_group: usize,
    /// Operations committed in one transaction at most (a single larger batch still goes
    /// alone); this bounds how long a commit, and the wait behind it, takes.
    pub max_group_ops: usize,
    /// Read connections at most, kept open once made; a read finding them all busy waits for
    /// one.
    pub read_connections: usize,
    /// Writer threads, each with a connection of its own, committing groups side by side
    /// where the database allows it (PostgreSQL); SQLite always has one.
    pub writers: usize,
    /// The redemption key that signs member cards (`POST /v1/cards`); without it the server
    /// answers `cards_not_issued`.
    pub card_key: Option<redemption_token::IssuerKey>,
    /// How much lower (in nice steps) than the thread building the router the threads that
    /// work on admitted requests run (`serve --http-nice`); see [`lower_priority`].
    pub http_nice: u8,
    /// The CPU the writer thread keeps to itself, the others having been kept off it
    /// ([`crate::cpu`]); `None` shares.
    pub writer_cpu: Option<usize>,
}

/// Lowers the calling thread's CPU priority by `steps` nice steps (up to nice 19). On Linux
/// the nice value is a thread's own; lowering needs no privilege, and if it fails the thread
/// stays as it was.
pub fn lower_priority(steps: u8) {
    if steps == 0 {
        return;
    }
    if let Ok(now) = rustix::process::getpriority_process(None) {
        let _ = rustix::process::setpriority_process(
            None,
            now.saturating_add(i32::from(steps)).min(19),
        );
    }
}

/// Who may read `/metrics` on the terminals' listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Anyone who reaches the listener (tests, a listener of its own on a private address).
    Open,
    /// Only a request with `Authorization: Bearer <token>`.
    Token(String),
    /// Nobody: `/metrics` is served on another address or not at all.
    Hidden,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_in_flight: 64,
            max_in_flight_bytes: 1024 * 1024,
            header_timeout: std::time::Duration::from_secs(10),
            body_idle_timeout: std::time::Duration::from_secs(5),
            body_grace: std::time::Duration::from_secs(2),
            min_body_rate: 8 * 1024,
            max_connections_per_address: 256,
            max_unknown_connections: 4096,
            metrics: MetricsAccess::Open,
            tls: None,
            latency_target: Some(std::time::Duration::from_millis(50)),
            max_body_bytes: 1024 * 1024,
            max_operations: 1000,
            max_clock_skew_seconds: 300,
            sightings_every: std::time::Duration::from_secs(5),
            retry_after_seconds: 1,
            write_queue: 256,
            max_group: 64,
            max_group_ops: 1000,
            read_connections: 16,
            writers: 4,
            card_key: None,
            http_nice: 10,
            writer_cpu: None,
        }
    }
}

/// The most of a refused request's body the server reads to keep the connection open.
const REFUSAL_DRAIN_BYTES: usize = 64 * 1024;

/// What the handlers share.
struct App {
    backend: Arc<dyn Backend>,
    readers: Mutex<Vec<Box<dyn Store>>>,
    /// One permit for each of the `read_connections`: a read beyond them waits for one
    /// rather than opening a connection of its own (the database's connections are sized by
    /// them, see docs/deploy-central.md).
    read_slots: Arc<Semaphore>,
    writer: mpsc::Sender<WriteJob>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
    /// Bodies in flight, one permit a KiB.
    body_permits: Arc<Semaphore>,
    /// How many of the permits may be in use now.
    limiter: Arc<Limiter>,
    config: Config,
    /// Where admitted requests are worked on.
    lane: Lane,
    /// The body of every 429 `overloaded`.
    overloaded: Bytes,
    /// The day each terminal's first contact of the day was recorded by this process, so
    /// that only a day's first pull costs a write.
    contacts: Mutex<std::collections::HashMap<i64, chrono::NaiveDate>>,
    /// The terminals heard from since the last time they were written down.
    sightings: Mutex<std::collections::HashMap<i64, Sighting>>,
}

/// The runtime admitted requests are worked on, apart from the one that accepts connections,
/// reads requests and refuses them: under overload thousands of connections wake that one's
/// threads, and an admitted request woken there (by its read, by the writer's answer) would
/// wait behind their refusals while holding its work permit. Here it waits only behind the
/// other admitted requests, at most `max_in_flight` of them.
struct Lane(Option<tokio::runtime::Runtime>);

impl Lane {
    fn start(nice: u8) -> std::io::Result<Lane> {
        let threads = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("palpal-work")
            .on_thread_start(move || lower_priority(nice))
            .enable_all()
            .build()
            .map(|runtime| Lane(Some(runtime)))
    }

    /// Runs `work` on the lane and waits for it; `None` if the lane has stopped.
    async fn run<F>(&self, work: F) -> Option<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.as_ref()?.spawn(work).await.ok()
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        // Dropped possibly from within another runtime, where waiting is not allowed.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A pull cursor: `1.<policy fingerprint>.<change sequence number>`.
fn parse_cursor(cursor: &str) -> Option<(&str, i64)> {
    let mut parts = cursor.split('.');
    let (Some("1"), Some(fingerprint), Some(seq), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let seq: i64 = seq.parse().ok()?;
    (seq >= 0 && fingerprint.len() == 16 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some((fingerprint, seq))
}

/// A refusal of the whole request, answered as `{code, message, message_en}`.
#[derive(Debug, Clone, Copy)]
pub struct ApiError(pub ErrorCode);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = json(status, &ErrorBody::from(self.0));
        if let Some(seconds) = self.0.retry_after_seconds() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(self.0);
        response
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        ApiError(match refusal {
            Refusal::BadCode => ErrorCode::BadCode,
            Refusal::UnknownTerminal => ErrorCode::UnknownTerminal,
            Refusal::RevokedTerminal => ErrorCode::RevokedTerminal,
            Refusal::ReplayedNonce => ErrorCode::ReplayedNonce,
        })
    }
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    eprintln!("요청 처리 중 서버 오류 / server error while handling a request: {error:#}");
    ApiError(ErrorCode::Internal)
}

/// Builds the server over `backend`, starting the writer thread.
pub fn router(
    backend: Arc<dyn Backend>,
    config: Config,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Server> {
    use anyhow::Context as _;
    let metrics = Arc::new(Metrics::default());
    metrics.set_in_flight_limit(config.max_in_flight);
    let writers = if backend.concurrent_writers() {
        config.writers.max(1)
    } else {
        1
    };
    let stores = (0..writers)
        .map(|_| {
            backend
                .open()
                .context("쓰기 연결을 열지 못했습니다 / opening the write connection")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let checkpointer = backend
        .open()
        .context("체크포인트 연결을 열지 못했습니다 / opening the checkpoint connection")?;
    let limiter = Arc::new(Limiter::new(
        MIN_IN_FLIGHT,
        config.max_in_flight,
        config.latency_target,
    ));
    let writer = writer::spawn(
        stores,
        Some(checkpointer),
        writer::Sizes {
            queue: config.write_queue,
            max_group: config.max_group,
            max_group_ops: config.max_group_ops,
            limit_on_queue: writers > 1,
        },
        Arc::clone(&clock),
        Arc::clone(&metrics),
        Arc::clone(&limiter),
        config.writer_cpu,
    )
    .context("쓰기 스레드를 시작하지 못했습니다 / starting the writer thread")?;
    let app = Arc::new(App {
        backend,
        readers: Mutex::new(Vec::new()),
        read_slots: Arc::new(Semaphore::new(config.read_connections.max(1))),
        writer,
        clock,
        metrics: Arc::clone(&metrics),
        permits: Arc::new(Semaphore::new(config.max_in_flight)),
        body_permits: Arc::new(Semaphore::new(kib(config.max_in_flight_bytes) as usize)),
        limiter,
        config: config.clone(),
        lane: Lane::start(config.http_nice).context("starting the runtime of admitted requests")?,
        overloaded: serde_json::to_vec(&ErrorBody::from(ErrorCode::Overloaded))
            .context("serialising the overloaded answer")?
            .into(),
        contacts: Mutex::new(std::collections::HashMap::new()),
        sightings: Mutex::new(std::collections::HashMap::new()),
    });
    {
        let app = Arc::downgrade(&app);
        let every = config.sightings_every;
        std::thread::Builder::new()
            .name("sightings".into())
            .spawn(move || keep_sightings(&app, every))
            .context("starting the sightings thread")?;
    }
    let connections = Arc::new(Connections {
        per_address: Mutex::new(std::collections::HashMap::new()),
        unknown: std::sync::atomic::AtomicUsize::new(0),
        max_per_address: config.max_connections_per_address,
        max_unknown: config.max_unknown_connections,
        metrics: Arc::clone(&metrics),
    });
    let router = Router::new()
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/v1/terminals/enroll", post(enroll))
        .route("/v1/sync", post(sync))
        .route("/v1/pull", post(pull))
        .route("/v1/reports/reconciliation", get(reconciliation))
        .route("/v1/members/lookup", post(member_lookup))
        .route("/v1/cards", post(issue_card))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), admit))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(app);
    Ok(Server {
        router,
        connections,
        header_timeout: config.header_timeout,
        metrics,
        tls: config.tls.clone().map(tokio_rustls::TlsAcceptor::from),
    })
}

/// The most a connection's read buffer grows to. hyper grows it to fit what arrives (up to
/// about 400 KB) and keeps it for the connection's life: with 2,000 terminals each having once
/// sent a batch of 500 operations (125 KB), the server held 340 MiB of buffers. A body larger
/// than this is read in pieces of this size.
pub const READ_BUFFER_BYTES: usize = 32 * 1024;

/// The routes a terminal signs: a request to one is refused from its headers when they name
/// no enrolled terminal, before anything of its body is read.
fn signed_route(route: &str) -> bool {
    matches!(
        route,
        "/v1/sync" | "/v1/pull" | "/v1/members/lookup" | "/v1/cards" | "/v1/reports/reconciliation"
    )
}

/// The server: its routes, and the connections open on it.
pub struct Server {
    router: Router,
    connections: Arc<Connections>,
    header_timeout: std::time::Duration,
    metrics: Arc<Metrics>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Server {
    /// Whether it speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A router that serves `/metrics` alone, to anyone who reaches it: for a listener of its
    /// own on an address only the operator's monitoring reaches (`serve --metrics-listen`).
    pub fn metrics_router(&self) -> Router {
        let metrics = Arc::clone(&self.metrics);
        Router::new()
            .route(
                "/metrics",
                get(move || async move { metrics_page(&metrics) }),
            )
            .fallback(not_found)
    }
}

/// The connections open now: per remote address, and how many have not yet sent a request
/// naming an enrolled terminal. Beyond either bound a new connection is closed at once.
struct Connections {
    per_address: Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    unknown: std::sync::atomic::AtomicUsize,
    max_per_address: usize,
    max_unknown: usize,
    metrics: Arc<Metrics>,
}

/// One open connection, counted until it is dropped (its task ends).
struct Connection {
    address: std::net::IpAddr,
    known: std::sync::atomic::AtomicBool,
    all: Arc<Connections>,
}

impl Connections {
    /// Counts a new connection from `address`, or `None` when a bound is reached.
    fn open(self: &Arc<Self>, address: std::net::IpAddr) -> Option<Arc<Connection>> {
        use std::sync::atomic::Ordering;
        let mut per_address = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        let count = per_address.entry(address).or_insert(0);
        if *count >= self.max_per_address {
            drop(per_address);
            self.metrics.refusal("connections_per_address");
            return None;
        }
        if self.unknown.fetch_add(1, Ordering::Relaxed) >= self.max_unknown {
            self.unknown.fetch_sub(1, Ordering::Relaxed);
            drop(per_address);
            self.metrics.refusal("unknown_connections");
            return None;
        }
        *count += 1;
        Some(Arc::new(Connection {
            address,
            known: std::sync::atomic::AtomicBool::new(false),
            all: Arc::clone(self),
        }))
    }
}

impl Connection {
    /// The connection has sent a request naming an enrolled terminal.
    fn mark_known(&self) {
        use std::sync::atomic::Ordering;
        if !self.known.swap(true, Ordering::Relaxed) {
            self.all.unknown.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        if !self.known.load(Ordering::Relaxed) {
            self.all.unknown.fetch_sub(1, Ordering::Relaxed);
        }
        let mut per_address = self
            .all
            .per_address
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = per_address.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_address.remove(&self.address);
            }
        }
    }
}

/// Serves `server` on `listener` until the process ends: HTTP/1.1, each connection on a task
/// of its own, its read buffer bounded by [`READ_BUFFER_BYTES`], its headers due within
/// [`Config::header_timeout`], and the connection bounds of [`Config`].
pub async fn serve(listener: tokio::net::TcpListener, server: Server) -> std::io::Result<()> {
    serve_router(
        listener,
        server.router,
        Some(server.connections),
        server.header_timeout,
        server.tls,
    )
    .await
}

/// Serves `router` alone (such as [`Server::metrics_router`]), without connection bounds.
pub async fn serve_plain(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    serve_router(
        listener,
        router,
        None,
        std::time::Duration::from_secs(10),
        None,
    )
    .await
}

/// Serves one connection's requests: HTTP/1.1, its read buffer bounded, its headers due
/// within `header_timeout`.
/// Serves the operator console's router ([`crate::console::router`]) on `listener`, over TLS
/// when `tls` is given (the terminals' certificate).
pub async fn serve_console(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<()> {
    serve_router(
        listener,
        router,
        None,
        std::time::Duration::from_secs(10),
        tls.map(tokio_rustls::TlsAcceptor::from),
    )
    .await
}

async fn serve_connection<I, S>(io: I, service: S, header_timeout: std::time::Duration)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(READ_BUFFER_BYTES);
    // A connection's end (the terminal hung up, a timeout) is not the server's error.
    let _ = http
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
    connections: Option<Arc<Connections>>,
    header_timeout: std::time::Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    let mut accept_failing = false;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: the connections open go on being served, and
                // accepting is tried again shortly. Logged once per run of failures.
                if !accept_failing {
                    eprintln!(
                        "연결을 받지 못했습니다. 잠시 후 다시 시도합니다. / accepting a \
                         connection failed; trying again shortly: {error}"
                    );
                }
                accept_failing = true;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        accept_failing = false;
        let connection = match &connections {
            Some(all) => match all.open(peer.ip()) {
                Some(connection) => Some(connection),
                // Closed at once: the terminal's retry, with backoff, comes back later.
                None => continue,
            },
            None => None,
        };
        // Answers are small and go out whole; no waiting to fill a segment.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                if let Some(connection) = &connection {
                    request.extensions_mut().insert(Arc::clone(connection));
                }
                tower::ServiceExt::oneshot(router.clone(), request)
            },
        );
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, service, header_timeout).await,
                // The handshake is due within the headers' time too: a client that starts one
                // and stalls holds its connection no longer than one that stalls its headers.
                Some(acceptor) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(header_timeout, acceptor.accept(stream)).await
                    {
                        serve_connection(stream, service, header_timeout).await;
                    }
                }
            }
        });
    }
}

struct InFlight(Arc<Metrics>);

impl InFlight {
    fn enter(metrics: &Arc<Metrics>) -> InFlight {
        metrics.enter();
        InFlight(Arc::clone(metrics))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// Counts a request reading its body for as long as it lives (also when the terminal hangs up
/// and the reading is dropped).
struct Reading<'a>(&'a Metrics);

impl Reading<'_> {
    fn enter(metrics: &Metrics) -> Reading<'_> {
        metrics.reading(1);
        Reading(metrics)
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.reading(-1);
    }
}

/// `bytes` in KiB, rounded up, as a count of permits.
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// The body length a request's `Content-Length` declares, if it declares one.
fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Reads and drops up to `limit` bytes of `body`, frame by frame, without gathering them.
async fn drain(mut body: axum::body::Body, limit: usize) {
    use http_body_util::BodyExt as _;
    let mut read = 0;
    while let Some(Ok(frame)) = body.frame().await {
        read += frame.data_ref().map_or(0, |data| data.len());
        if read > limit {
            break;
        }
    }
}

/// Whether a work permit is free now: below the latency-following limit and the hard bound.
fn work_permit_free(app: &App) -> bool {
    usize::try_from(app.metrics.in_flight()).is_ok_and(|now| now < app.limiter.current())
        && app.permits.available_permits() > 0
}

/// Refuses a request for lack of room: reads a small body first, so that the connection stays
/// usable and the terminal's retry does not cost a new connection; a larger one is left unread
/// and its connection closed.
async fn refuse(app: &App, body: axum::body::Body) -> Response {
    app.limiter.refused();
    drain(body, REFUSAL_DRAIN_BYTES).await;
    // The same bytes as `ApiError(ErrorCode::Overloaded).into_response()`, serialised once.
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        app.overloaded.clone(),
    )
        .into_response();
    response.extensions_mut().insert(ErrorCode::Overloaded);
    response
}

/// A refusal after which the connection is closed: what is left of its body is not read.
fn refuse_and_close(code: ErrorCode) -> Response {
    let mut response = ApiError(code).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Why a body was not read whole.
enum BodyFailure {
    /// The body bytes in flight are at their bound: 429, as for work permits.
    NoRoom(axum::body::Body),
    /// Larger than `max_body_bytes`: 413.
    TooLarge,
    /// Slower than the server waits for: 408.
    TooSlow,
    /// The terminal went away, or sent something that is not HTTP.
    Broken,
}

/// Reads `body` frame by frame, taking one body permit a KiB as bytes arrive (so a body
/// declared and never sent holds nothing), within the pauses and the average rate
/// [`Config`] allows.
async fn read_body(
    app: &App,
    mut body: axum::body::Body,
) -> Result<(Bytes, BodyHeld), BodyFailure> {
    use http_body_util::BodyExt as _;
    let config = &app.config;
    let started = tokio::time::Instant::now();
    let mut last = started;
    let mut gathered: Vec<u8> = Vec::new();
    let mut held = BodyHeld {
        permit: None,
        kib: 0,
        metrics: Arc::clone(&app.metrics),
    };
    loop {
        let received = gathered.len();
        let rate_deadline = started
            + config.body_grace
            + std::time::Duration::from_secs_f64(
                received as f64 / config.min_body_rate.max(1) as f64,
            );
        let deadline = rate_deadline.min(last + config.body_idle_timeout);
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyFailure::TooSlow),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(BodyFailure::Broken),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        last = tokio::time::Instant::now();
        if received + data.len() > config.max_body_bytes {
            return Err(BodyFailure::TooLarge);
        }
        let more = kib(received + data.len()) - kib(received);
        if more > 0 {
            match Arc::clone(&app.body_permits).try_acquire_many_owned(more) {
                Ok(taken) => held.add(taken, more),
                Err(_) => return Err(BodyFailure::NoRoom(body)),
            }
        }
        gathered.extend_from_slice(&data);
    }
    Ok((Bytes::from(gathered), held))
}

/// The body permits a request holds, shown in `palpal_http_body_kib` until they go back.
struct BodyHeld {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    kib: u32,
    metrics: Arc<Metrics>,
}

impl BodyHeld {
    fn add(&mut self, taken: tokio::sync::OwnedSemaphorePermit, kib: u32) {
        match &mut self.permit {
            Some(permit) => permit.merge(taken),
            None => self.permit = Some(taken),
        }
        self.kib += kib;
        self.metrics.body_kib(i64::from(kib));
    }
}

impl Drop for BodyHeld {
    fn drop(&mut self) {
        self.metrics.body_kib(-i64::from(self.kib));
    }
}

/// A limited request. A signed route's headers must name an enrolled terminal before anything
/// else is read. Its body is read as it arrives ([`read_body`]), and only then does it take a
/// work permit (`max_in_flight` and the latency-following limit), so that a terminal slow to
/// send its body (a weak mobile network at a pharmacy, or a terminal starved of CPU) holds
/// memory the size of what it sent, never one of the places of the requests being worked on.
/// When no work permit is free as the request arrives, it is refused at once, before its body
/// is read.
async fn admit_limited(app: &Arc<App>, route: &str, request: Request, next: Next) -> Response {
    if !work_permit_free(app) {
        return refuse(app, request.into_body()).await;
    }
    let (mut parts, body) = request.into_parts();
    if signed_route(route) {
        match app.terminal_of(&parts.headers).await {
            Ok(terminal) => {
                if let Some(connection) = parts.extensions.get::<Arc<Connection>>() {
                    connection.mark_known();
                }
                parts.extensions.insert(KnownTerminal(terminal));
            }
            Err(ApiError(code)) => return refuse_and_close(code),
        }
    }
    if declared_length(&parts.headers).is_some_and(|length| length > app.config.max_body_bytes) {
        return refuse_and_close(ErrorCode::PayloadTooLarge);
    }
    let read = {
        let _reading = Reading::enter(&app.metrics);
        read_body(app, body).await
    };
    let (bytes, body_permits) = match read {
        Ok(read) => read,
        Err(BodyFailure::NoRoom(rest)) => return refuse(app, rest).await,
        Err(BodyFailure::TooLarge) => return refuse_and_close(ErrorCode::PayloadTooLarge),
        Err(BodyFailure::TooSlow) => return refuse_and_close(ErrorCode::RequestTooSlow),
        // The terminal went away while sending; nobody reads the answer.
        Err(BodyFailure::Broken) => return refuse_and_close(ErrorCode::InvalidRequest),
    };
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let permit = work_permit_free(app)
        .then(|| Arc::clone(&app.permits).try_acquire_owned().ok())
        .flatten();
    let Some(permit) = permit else {
        return refuse(app, axum::body::Body::empty()).await;
    };
    let in_flight = InFlight::enter(&app.metrics);
    // The permits go with the work: should the terminal hang up, they are given back when the
    // work ends, not before.
    let work = async move {
        let response = next.run(request).await;
        drop(in_flight);
        drop((permit, body_permits));
        response
    };
    app.lane
        .run(work)
        .await
        .unwrap_or_else(|| internal("the runtime of admitted requests has stopped").into_response())
}

/// The enrolled terminal a signed request's headers name, found before its body was read.
#[derive(Clone)]
struct KnownTerminal(Terminal);

/// Whether `headers` may read `/metrics` on the terminals' listener.
fn metrics_allowed(access: &MetricsAccess, headers: &HeaderMap) -> bool {
    match access {
        MetricsAccess::Open => true,
        MetricsAccess::Hidden => false,
        MetricsAccess::Token(token) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| {
                use subtle::ConstantTimeEq as _;
                given.trim().as_bytes().ct_eq(token.as_bytes()).into()
            }),
    }
}

async fn admit(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    // A shared string, not a copy: thousands of refusals a second pass here.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let mut response = match route {
        "/v1/health" => next.run(request).await,
        "/metrics" if metrics_allowed(&app.config.metrics, request.headers()) => {
            next.run(request).await
        }
        "/metrics" => ApiError(ErrorCode::MetricsNotHere).into_response(),
        _ => admit_limited(&app, route, request, next).await,
    };
    if response.status() == StatusCode::TOO_MANY_REQUESTS
        && !response.headers().contains_key(header::RETRY_AFTER)
    {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(app.config.retry_after_seconds),
        );
    }
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        app.metrics.refusal(code.as_str());
    }
    app.metrics.request(route, response.status().as_u16());
    if route != "/metrics" && route != "/v1/health" {
        app.metrics
            .answered(response.status().as_u16(), started.elapsed());
    }
    response
}

impl App {
    async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Store) -> anyhow::Result<T> + Send + 'static,
    {
        let slot = Arc::clone(&self.read_slots)
            .acquire_owned()
            .await
            .map_err(internal)?;
        let app = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            // Held until the connection is back in the pool.
            let _slot = slot;
            let pooled = app.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut store = match pooled {
                Some(store) => store,
                None => app.backend.open()?,
            };
            let out = f(store.as_mut());
            let mut readers = app.readers.lock().unwrap_or_else(|e| e.into_inner());
            if readers.len() < app.config.read_connections {
                readers.push(store);
            }
            out
        })
        .await
        .map_err(internal)?
        .map_err(|error| {
            if crate::store::postgres::is_unreachable(&error) {
                ApiError(ErrorCode::DatabaseUnavailable)
            } else {
                internal(error)
            }
        })
    }

    async fn write(&self, write: Write) -> Result<WriteReply, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .try_send(WriteJob {
                write,
                reply,
                queued_at: std::time::Instant::now(),
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ApiError(ErrorCode::Overloaded),
                mpsc::error::TrySendError::Closed(_) => internal("the writer has stopped"),
            })?;
        answer.await.map_err(internal)?.map_err(ApiError::from)
    }

    /// Notes that `terminal` was heard now, with what it told of itself.
    fn saw(&self, terminal: i64, report: Option<TerminalReport>) {
        let now = self.clock.now();
        self.note_sighting(Sighting {
            terminal,
            seen_at: now,
            report: report.map(|r| (now, r)),
        });
    }

    fn note_sighting(&self, seen: Sighting) {
        let mut sightings = self.sightings.lock().unwrap_or_else(|e| e.into_inner());
        let merged = match sightings.remove(&seen.terminal) {
            Some(before) => before.merge(seen),
            None => seen,
        };
        sightings.insert(merged.terminal, merged);
    }

    /// Hands the sightings noted so far to the writer, in terminal order (so that processes
    /// writing the same rows lock them in the same order). What the writer cannot take now
    /// is kept for the next time; what it fails to commit is lost (a later sighting comes).
    fn write_sightings(&self) {
        let taken: Vec<Sighting> = {
            let mut sightings = self.sightings.lock().unwrap_or_else(|e| e.into_inner());
            let mut taken: Vec<Sighting> = sightings.drain().map(|(_, s)| s).collect();
            taken.sort_by_key(|s| s.terminal);
            taken
        };
        if taken.is_empty() {
            return;
        }
        if let Err(Write::Seen(back)) = self.hand_to_writer(Write::Seen(taken)) {
            back.into_iter().for_each(|s| self.note_sighting(s));
        }
    }

    /// Hands `write` to the writer without waiting for its answer, or gives it back when the
    /// writer cannot take it now (its queue full), to be kept for the next time.
    fn hand_to_writer(&self, write: Write) -> Result<(), Write> {
        let (reply, _answer) = oneshot::channel();
        self.writer
            .try_send(WriteJob {
                write,
                reply,
                queued_at: std::time::Instant::now(),
            })
            .map_err(|refused| match refused {
                mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job) => {
                    job.write
                }
            })
    }

    /// Hands what this process counted since the last time to the writer, as this minute's
    /// (counts the writer cannot take now are kept for the next time).
    fn write_activity(&self) {
        let taken = self.metrics.take_activity();
        if taken.is_empty() {
            return;
        }
        let now = self.clock.now();
        let minute = crate::store::minute_of(now);
        let counts = taken
            .iter()
            .map(|(figure, count)| crate::store::ActivityCount {
                minute: minute.clone(),
                figure: (*figure).to_owned(),
                count: *count,
            })
            .collect();
        let write = Write::Activity {
            counts,
            keep_from: crate::store::minute_of(now - ACTIVITY_KEPT),
        };
        if self.hand_to_writer(write).is_err() {
            self.metrics.give_back_activity(&taken);
        }
    }

    /// Remembers the operation number a terminal told in its first pull of `day`: the
    /// server's evidence of when the terminal's later operations were made.
    async fn record_contact(
        &self,
        terminal: i64,
        day: chrono::NaiveDate,
        sequence: u64,
    ) -> Result<(), ApiError> {
        let known = |contacts: &std::collections::HashMap<i64, chrono::NaiveDate>| {
            contacts.get(&terminal) == Some(&day)
        };
        if known(&self.contacts.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(());
        }
        match self
            .write(Write::Contact {
                terminal,
                day,
                sequence,
            })
            .await?
        {
            WriteReply::Contacted => {
                self.contacts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(terminal, day);
                Ok(())
            }
            WriteReply::Refused(refusal) => Err(refusal.into()),
            _ => Err(internal("the store answered a contact with something else")),
        }
    }

    /// The enrolled terminal a signed request's headers name, from its headers alone: the
    /// signature headers present, the terminal known, enrolled and not revoked. The signature
    /// itself is checked once the body is in ([`App::authenticate`]).
    async fn terminal_of(self: &Arc<Self>, headers: &HeaderMap) -> Result<Terminal, ApiError> {
        let text = |name: &str| header_text(headers, name);
        let label = text(signing::TERMINAL_HEADER)?;
        for name in [
            signing::TIMESTAMP_HEADER,
            signing::NONCE_HEADER,
            signing::SIGNATURE_HEADER,
        ] {
            text(name)?;
        }
        let id = parse_terminal_label(label).ok_or(ApiError(ErrorCode::UnknownTerminal))?;
        let terminal = self
            .read(move |store| store.terminal(id))
            .await?
            .filter(|t| t.public_key.is_some())
            .ok_or(ApiError(ErrorCode::UnknownTerminal))?;
        if terminal.revoked {
            return Err(ApiError(ErrorCode::RevokedTerminal));
        }
        Ok(terminal)
    }

    /// Checks the signature headers; returns the terminal and the nonce. `known` is the
    /// terminal [`App::terminal_of`] found from the headers, when it ran.
    async fn authenticate(
        self: &Arc<Self>,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        known: Option<Terminal>,
    ) -> Result<(Terminal, String), ApiError> {
        let unauthenticated = ApiError(ErrorCode::Unauthenticated);
        let text = |name: &str| header_text(headers, name);
        let label = text(signing::TERMINAL_HEADER)?;
        let timestamp: i64 = text(signing::TIMESTAMP_HEADER)?
            .parse()
            .map_err(|_| unauthenticated)?;
        let nonce = text(signing::NONCE_HEADER)?;
        let signature = text(signing::SIGNATURE_HEADER)?;
        if !signing::nonce_is_valid(nonce) {
            return Err(unauthenticated);
        }
        let id = parse_terminal_label(label).ok_or(ApiError(ErrorCode::UnknownTerminal))?;
        let now = self.clock.now().timestamp();
        if now.abs_diff(timestamp) > self.config.max_clock_skew_seconds {
            return Err(ApiError(ErrorCode::StaleTimestamp));
        }
        let terminal = match known.filter(|t| t.id == id) {
            Some(terminal) => terminal,
            None => self
                .read(move |store| store.terminal(id))
                .await?
                .ok_or(ApiError(ErrorCode::UnknownTerminal))?,
        };
        let key = terminal
            .public_key
            .and_then(|k| VerifyingKey::from_bytes(&k).ok())
            .ok_or(ApiError(ErrorCode::UnknownTerminal))?;
        let expected =
            signing::signing_string(method.as_str(), uri.path(), label, timestamp, nonce, body);
        if !signing::verify(&key, &expected, signature) {
            return Err(ApiError(ErrorCode::BadSignature));
        }
        if terminal.revoked {
            return Err(ApiError(ErrorCode::RevokedTerminal));
        }
        Ok((terminal, nonce.to_owned()))
    }
}

/// A signature header's text, trimmed; `unauthenticated` when it is missing or not text.
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .ok_or(ApiError(ErrorCode::Unauthenticated))
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(ErrorCode::PayloadTooLarge)
        } else {
            ApiError(ErrorCode::InvalidRequest)
        }
    })
}

/// A request signed by an enrolled terminal (`docs/sync-api.yaml`, "Signing"), checked before
/// the handler runs: who sent it, its nonce, and the exact body bytes.
struct Signed {
    terminal: Terminal,
    nonce: String,
    body: Bytes,
}

impl FromRequest<Arc<App>> for Signed {
    type Rejection = ApiError;

    async fn from_request(request: Request, app: &Arc<App>) -> Result<Signed, ApiError> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let headers = request.headers().clone();
        let known = request
            .extensions()
            .get::<KnownTerminal>()
            .map(|k| k.0.clone());
        let body = body_bytes(Bytes::from_request(request, app).await)?;
        let (terminal, nonce) = app
            .authenticate(&method, &uri, &headers, &body, known)
            .await?;
        Ok(Signed {
            terminal,
            nonce,
            body,
        })
    }
}

impl Signed {
    /// The body as the endpoint's request type, or `invalid_request`.
    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|_| ApiError(ErrorCode::InvalidRequest))
    }
}

/// Writes down the sightings and the counts of the Today page every `every` until the
/// server is dropped.
fn keep_sightings(app: &std::sync::Weak<App>, every: std::time::Duration) {
    loop {
        std::thread::sleep(every);
        match app.upgrade() {
            Some(app) => {
                app.write_sightings();
                app.write_activity();
            }
            None => return,
        }
    }
}

/// How long the minutes' counts are kept.
const ACTIVITY_KEPT: chrono::TimeDelta = chrono::TimeDelta::hours(48);

async fn health(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let schema_version = app.read(|store| store.schema_version()).await?;
    Ok(json(
        StatusCode::OK,
        &Health {
            status: "ok".to_owned(),
            schema_version,
        },
    ))
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    metrics_page(&app.metrics)
}

fn metrics_page(metrics: &Metrics) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError(ErrorCode::NotFound)
}

async fn enroll(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let request: EnrollRequest =
        serde_json::from_slice(&body).map_err(|_| ApiError(ErrorCode::InvalidRequest))?;
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError(ErrorCode::InvalidRequest));
    }
    let public_key = signing::parse_public_key(&request.public_key)
        .ok_or(ApiError(ErrorCode::InvalidRequest))?;
    let code = crate::code::normalise(&request.code).ok_or(ApiError(ErrorCode::BadCode))?;
    let reply = app
        .write(Write::Enroll {
            code_hash: crate::code::hash(&code),
            public_key: public_key.to_bytes(),
            name: name.to_owned(),
        })
        .await?;
    match reply {
        WriteReply::Enrolled(terminal) => Ok(json(
            StatusCode::OK,
            &EnrollResponse {
                terminal_id: terminal.label(),
                site: terminal.site,
                role: terminal.role,
                name: terminal.name.unwrap_or_default(),
            },
        )),
        WriteReply::Refused(refusal) => Err(refusal.into()),
        WriteReply::Synced(_)
        | WriteReply::Card(_)
        | WriteReply::CardRefused(_)
        | WriteReply::Contacted => Err(internal(
            "the writer answered an enrollment with something else",
        )),
    }
}

async fn sync(State(app): State<Arc<App>>, signed: Signed) -> Result<Response, ApiError> {
    let request: SyncRequest = signed.json()?;
    let Signed {
        terminal, nonce, ..
    } = signed;
    if request.operations.len() > app.config.max_operations {
        return Err(ApiError(ErrorCode::BatchTooLarge));
    }
    let kinds: Vec<String> = request
        .operations
        .iter()
        .map(|op| op.kind.clone())
        .collect();
    // Watch proofs are checked here, on a blocking thread, not by the one writer.
    let (operations, prechecked) = if kinds.iter().any(|kind| kind == "step_report") {
        let operations = request.operations;
        tokio::task::spawn_blocking(move || {
            let prechecked = crate::store::precheck_day_proofs(&operations);
            (operations, prechecked)
        })
        .await
        .map_err(|_| internal("checking watch proofs stopped"))?
    } else {
        (request.operations, Vec::new())
    };
    let reply = app
        .write(Write::Sync {
            terminal: terminal.id,
            nonce,
            operations,
            prechecked,
        })
        .await?;
    match reply {
        WriteReply::Synced(results) => {
            app.saw(terminal.id, None);
            for (kind, result) in kinds.iter().zip(&results) {
                match result.status {
                    OpStatus::Accepted => app.metrics.accepted(kind, result.points.unwrap_or(0)),
                    OpStatus::Rejected => app.metrics.rejected(),
                    OpStatus::Duplicate => {}
                }
                let status = match result.status {
                    OpStatus::Accepted => "accepted",
                    OpStatus::Duplicate => "duplicate",
                    OpStatus::Rejected => "rejected",
                };
                app.metrics.operation(kind, status);
            }
            Ok(json(StatusCode::OK, &SyncResponse { results }))
        }
        WriteReply::Refused(refusal) => Err(refusal.into()),
        WriteReply::Enrolled(_)
        | WriteReply::Card(_)
        | WriteReply::CardRefused(_)
        | WriteReply::Contacted => Err(internal("the writer answered a sync with something else")),
    }
}

async fn pull(State(app): State<Arc<App>>, signed: Signed) -> Result<Response, ApiError> {
    let invalid = ApiError(ErrorCode::InvalidRequest);
    let request: PullRequest = signed.json()?;
    let terminal = signed.terminal;
    let (fingerprint, cursor) = match request.cursor.as_deref().map(str::trim) {
        None | Some("") => (None, 0),
        Some(text) => {
            let (fingerprint, seq) = parse_cursor(text).ok_or(invalid)?;
            (Some(fingerprint.to_owned()), seq)
        }
    };
    let limit = request.limit.unwrap_or(500);
    if !(1..=1000).contains(&limit) {
        return Err(invalid);
    }
    if request.report.as_ref().is_some_and(|r| !r.is_valid()) {
        return Err(invalid);
    }
    let today = points_core::kst_day(app.clock.now());
    if let Some(sequence) = request.sequence {
        app.record_contact(terminal.id, today, sequence).await?;
    }
    let terminal_id = terminal.id;
    // The policies in force as the database has them now (read again by this connection
    // only when their version changed): a terminal whose cursor names other ones gets them.
    let (page, in_force) = app
        .read(move |store| store.pull_with_policies(&terminal, cursor, limit, today))
        .await?;
    app.saw(terminal_id, request.report);
    let policies = (fingerprint.as_deref() != Some(in_force.fingerprint.as_str()))
        .then(|| in_force.texts.clone());
    Ok(json(
        StatusCode::OK,
        &PullResponse {
            cursor: format!("1.{}.{}", in_force.fingerprint, page.cursor),
            more: page.more,
            policies,
            redemption_keys: page.redemption_keys,
            revoked_members: page.revoked_members,
            balances: page.balances,
            watch_pairings: page.watch_pairings,
            cards: page.cards,
            admission: page.admission,
            quota_leases: page.quota_leases,
        },
    ))
}

/// Kiosks only: whether a person is already a member, so that a clerk with the network up
/// sees it before the sign-up instead of after the sync, and which replacement card, if any,
/// the kiosk may have signed for them. A read: the nonce is not consumed.
async fn member_lookup(State(app): State<Arc<App>>, signed: Signed) -> Result<Response, ApiError> {
    if signed.terminal.role != crate::wire::Role::Kiosk {
        return Err(ApiError(ErrorCode::RoleNotAllowed));
    }
    let invalid = ApiError(ErrorCode::InvalidRequest);
    let request: crate::wire::MemberLookupRequest = signed.json()?;
    let birth = chrono::NaiveDate::parse_from_str(request.birth_date.trim(), "%Y-%m-%d")
        .map_err(|_| invalid)?;
    if request.name.trim().is_empty() || request.name.chars().count() > 100 {
        return Err(invalid);
    }
    let found = app
        .read(move |store| {
            let Some(member) = store.find_member(&request.name, birth, &request.phone)? else {
                return Ok(None);
            };
            Ok(Some((member, store.card_serial_allowed(member)?)))
        })
        .await?;
    Ok(json(
        StatusCode::OK,
        &crate::wire::MemberLookupResponse {
            member_number: found.map(|(member, _)| crate::store::member_number(member)),
            card_serial_allowed: found.and_then(|(_, serial)| serial),
        },
    ))
}

/// Kiosks only: signs the first member card of a member this kiosk signed up, with the PIN
/// check the kiosk computed. Recorded by the writer first, so that a retry gets the same card.
async fn issue_card(State(app): State<Arc<App>>, signed: Signed) -> Result<Response, ApiError> {
    use crate::store::{CardRefusal, CardRequest};
    if signed.terminal.role != crate::wire::Role::Kiosk {
        return Err(ApiError(ErrorCode::RoleNotAllowed));
    }
    let key = app
        .config
        .card_key
        .clone()
        .ok_or(ApiError(ErrorCode::CardsNotIssued))?;
    let invalid = ApiError(ErrorCode::InvalidRequest);
    let request: crate::wire::CardRequest = signed.json()?;
    let member = crate::store::parse_member_number(request.member_number.trim()).ok_or(invalid)?;
    let salt: [u8; 8] = hex_bytes(&request.salt).ok_or(invalid)?;
    let pin_tag: [u8; 2] = hex_bytes(&request.pin_tag).ok_or(invalid)?;
    if !redemption_token::PIN_COST_RANGE.contains(&request.pin_cost) || request.serial == 0 {
        return Err(invalid);
    }
    if request.pin_cost < redemption_token::MIN_ISSUE_PIN_COST {
        return Err(ApiError(ErrorCode::WeakPinCheck));
    }
    let reply = app
        .write(Write::IssueCard(CardRequest {
            terminal: signed.terminal.id,
            member,
            serial: request.serial,
            pin_cost: request.pin_cost,
            salt,
            pin_tag,
        }))
        .await?;
    let record = match reply {
        WriteReply::Card(record) => record,
        WriteReply::CardRefused(refusal) => {
            return Err(ApiError(match refusal {
                CardRefusal::UnknownMember => ErrorCode::UnknownMember,
                CardRefusal::NotAllowed => ErrorCode::CardNotAllowed,
                CardRefusal::Exists => ErrorCode::CardExists,
            }))
        }
        WriteReply::Refused(refusal) => return Err(refusal.into()),
        WriteReply::Enrolled(_) | WriteReply::Synced(_) | WriteReply::Contacted => {
            return Err(internal("the writer answered a card with something else"))
        }
    };
    let time = |secs: i64| chrono::DateTime::from_timestamp(secs, 0).ok_or(invalid);
    let (issued_at, expires_at) = (time(record.issued_at)?, time(record.expires_at)?);
    let spec = redemption_token::CardSpec {
        member: redemption_token::MemberNo(u64::try_from(member).map_err(|_| invalid)?),
        serial: request.serial,
        issued_at,
        expires_at,
        pin_cost: request.pin_cost,
        salt,
    };
    let token = key.sign_card(&spec, pin_tag).map_err(internal)?;
    Ok(json(
        StatusCode::OK,
        &crate::wire::CardResponse {
            token: token.to_text(),
            member_number: crate::store::member_number(member),
            serial: request.serial,
            key_id: key.key_id(),
            issued_at: issued_at.to_rfc3339(),
            expires_at: expires_at.to_rfc3339(),
        },
    ))
}

/// `N` bytes from exactly `2 * N` hex digits.
fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim();
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

async fn reconciliation(
    State(app): State<Arc<App>>,
    uri: Uri,
    signed: Signed,
) -> Result<Response, ApiError> {
    let terminal = signed.terminal;
    let invalid = ApiError(ErrorCode::InvalidRequest);
    let day = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("day="))
        .and_then(|text| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .ok_or(invalid)?;
    let report = app
        .read(move |store| store.reconciliation(&terminal, day))
        .await?;
    Ok(json(StatusCode::OK, &report))
}
