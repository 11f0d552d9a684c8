//! The HTTP adapter between a terminal and the central server: reqwest on a current-thread
//! tokio runtime, signing each sync request with the terminal's key as `docs/sync-api.yaml`
//! says. It turns the network into `sync-client` inputs ([`Response`] or [`Failure`]) and
//! decides nothing itself. It remembers only whether its last request got an HTTP answer
//! ([`Central::reached`]), which the app shows as online or offline.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use std::sync::Arc;
use sync_client::{Failure, Response, Transmit};

use sync_protocol::server_key::ServerKey;
use sync_protocol::signing;
use sync_protocol::wire::{self, EnrollRequest, EnrollResponse, ErrorBody};

/// What a kiosk asks the server to sign: the first card of a member it signed up, with the
/// PIN check it computed (never the PIN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardAsk<'a> {
    pub member_number: &'a str,
    pub serial: u16,
    pub pin_cost: u8,
    pub salt: [u8; 8],
    pub pin_tag: [u8; 2],
}

/// The card the server signed.
pub type SignedCard = wire::CardResponse;

/// A 200 answer read as `T`, or the server's refusal with its error body (empty when the
/// body does not read).
fn answer<T: serde::de::DeserializeOwned>(response: Response) -> Result<T, EnrollError> {
    let refused = |body| EnrollError::Refused {
        status: response.status,
        body,
    };
    if response.status == 200 {
        serde_json::from_slice(&response.body).map_err(|_| refused(ErrorBody::default()))
    } else {
        Err(refused(
            serde_json::from_slice(&response.body).unwrap_or_default(),
        ))
    }
}

/// The central server's addresses in a terminal's configuration: one, or several separated
/// by commas (server processes in front of one database), each without a trailing `/`.
pub fn addresses(servers: &str) -> Vec<String> {
    servers
        .split([',', ' ', '\n', '\t'])
        .map(|address| address.trim().trim_end_matches('/'))
        .filter(|address| !address.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether a terminal moves to the server's next address after a request that ended with
/// HTTP `status` (`None`: no answer, refused, timed out or cut): it does on no answer and on a
/// 5xx, and stays on any other answer, a refusal included.
pub fn moves_on(status: Option<u16>) -> bool {
    status.is_none_or(|status| status >= 500)
}

/// A connection to the central server, at one of its addresses. It stays with one address
/// while it answers and moves to the next on a request that got no answer (refused, timed
/// out, cut) or a 5xx; the `sync-client` state machine's backoff applies as before.
pub struct Central {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    bases: Vec<String>,
    /// The address in use, an index into `bases`.
    current: Cell<usize>,
    reached: Cell<Option<bool>>,
    /// Seconds to add to this machine's clock to get the server's, learned from the `Date`
    /// header of every answer, so that a terminal whose clock is wrong still signs with a
    /// timestamp the server takes (it refuses one more than five minutes off).
    skew: Cell<i64>,
    /// How far this machine's clock is off, for tests that play a terminal with a wrong clock
    /// (0 in use).
    clock_error: i64,
    /// The pinned key's verifier, which remembers a server that showed another key.
    pinned: Option<Arc<crate::tls::PinnedKey>>,
}

/// Why an enrollment did not happen.
pub enum EnrollError {
    /// No HTTP answer.
    Unreachable(Failure),
    /// The server refused it.
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's error body (empty when it had none).
        body: ErrorBody,
    },
}

impl Central {
    /// A client for the server at `servers` (one address, or several separated by commas,
    /// see [`addresses`]): each `https://...` with the server key pinned at provisioning (the
    /// server's processes share it), or `http://` to a loopback address (see
    /// [`crate::tls::check_address`]).
    pub fn new(
        servers: &str,
        server_key: Option<ServerKey>,
        timeout: Duration,
    ) -> anyhow::Result<Central> {
        let bases = addresses(servers);
        anyhow::ensure!(
            !bases.is_empty(),
            "서버 주소가 없습니다 / no server address is given"
        );
        for base in &bases {
            crate::tls::check_address(base, server_key)
                .map_err(|refusal| anyhow::anyhow!("{base}: {refusal}"))?;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the network runtime")?;
        // Without a pinned key (plain HTTP to this machine) the verifier takes no server at all.
        let verifier = Arc::new(crate::tls::PinnedKey::new(server_key));
        let config = crate::tls::client_config(Arc::clone(&verifier)).context("preparing TLS")?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .https_only(server_key.is_some())
            .use_preconfigured_tls(config)
            .build()
            .context("preparing the HTTP client")?;
        let pinned = server_key.map(|_| verifier);
        Ok(Central {
            runtime,
            http,
            bases,
            current: Cell::new(0),
            reached: Cell::new(None),
            skew: Cell::new(0),
            clock_error: 0,
            pinned,
        })
    }

    /// The key of a server that showed another key than the pinned one, if one did: the
    /// terminal talks to it no further.
    pub fn refused_server_key(&self) -> Option<String> {
        self.pinned
            .as_ref()
            .and_then(|p| p.refused.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// What to tell the operator when a server showed `shown` instead of the pinned key.
    pub fn wrong_key_message(&self, shown: &str) -> String {
        format!(
            "서버({0})가 등록 때 고정한 키와 다른 키({shown})를 보였습니다. 중간에서 가로채는 서버일 수 있어 \
             연결하지 않았습니다. 작업은 단말기에 남아 있으니 관리자에게 알려 주세요 / the server at {0} \
             showed another key ({shown}) than the one pinned at provisioning; it may be someone in \
             between, so the terminal did not talk to it. Work is kept here; tell the operator",
            self.base()
        )
    }

    /// Plays a terminal whose clock is `seconds` off (tests and the reliability harness).
    pub fn with_clock_error(mut self, seconds: i64) -> Central {
        self.clock_error = seconds;
        self
    }

    /// This machine's clock, Unix seconds (with the played error, if any).
    fn local_now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .saturating_add(self.clock_error)
    }

    /// Seconds this machine's clock is behind the server's, as last learned.
    pub fn skew(&self) -> i64 {
        self.skew.get()
    }

    /// `POST /v1/terminals/enroll`, at each address in turn until one answers (a one-time
    /// code is spent at most once whichever answers).
    pub fn enroll(&self, request: &EnrollRequest) -> Result<EnrollResponse, EnrollError> {
        let body = serde_json::to_vec(request).unwrap_or_default();
        answer(
            self.at_any_address(|| {
                self.runtime
                    .block_on(self.post(wire::ENROLL_PATH, body.clone(), &[]))
            })
            .map_err(EnrollError::Unreachable)?,
        )
    }

    /// Makes the request `send` at each address in turn (starting with the one in use) until
    /// one answers with less than a 5xx, for requests that are safe to make again: a single
    /// question a person is waiting for, not a sync, whose state machine retries with
    /// backoff. A server showing another key than the pinned one stops it at once.
    fn at_any_address(
        &self,
        send: impl Fn() -> Result<Response, Failure>,
    ) -> Result<Response, Failure> {
        let mut tries = self.bases.len();
        loop {
            tries -= 1;
            let result = send();
            let done = match &result {
                Ok(response) => response.status < 500,
                Err(_) => self.refused_server_key().is_some(),
            };
            if done || tries == 0 {
                return result;
            }
        }
    }

    /// Starts with `address` if it is one of the server's (the one that answered last time,
    /// as the store remembers it), so that a terminal stays with an address while it answers.
    pub fn prefer(&self, address: &str) {
        if let Some(index) = self.bases.iter().position(|base| base == address) {
            self.current.set(index);
        }
    }

    /// The server's address in use.
    pub fn base(&self) -> &str {
        &self.bases[self.current.get() % self.bases.len()]
    }

    /// Every address of the server, in the order they are tried.
    pub fn bases(&self) -> &[String] {
        &self.bases
    }

    /// Whether the last request got an HTTP answer (`None`: none sent yet).
    pub fn reached(&self) -> Option<bool> {
        self.reached.get()
    }

    /// Pulls one page (`POST /v1/pull`) from `cursor`, at most `limit` changes, telling the
    /// terminal's operation `sequence` and how it is doing (`report`), signed like [`Central::send_async`].
    pub fn pull(
        &self,
        terminal: &str,
        key: &SigningKey,
        cursor: Option<&str>,
        limit: u32,
        sequence: u64,
        report: Option<&wire::TerminalReport>,
    ) -> Result<Response, Failure> {
        let body = sync_client::pull::pull_body(cursor, limit, Some(sequence), report);
        self.signed_post(wire::PULL_PATH, terminal, key, body)
    }

    /// Kiosks: asks whether this person is already a member (`POST /v1/members/lookup`).
    /// `Ok(Some(number))` for a member, `Ok(None)` for nobody; `Err` when there is no clear
    /// answer (no network, a refusal, an answer that does not read), so the caller goes on
    /// offline and the server settles duplicates at sync.
    pub fn lookup_member(
        &self,
        terminal: &str,
        key: &SigningKey,
        name: &str,
        birth_date: chrono::NaiveDate,
        phone: &str,
    ) -> Result<Option<String>, Failure> {
        self.look_up_member(terminal, key, name, birth_date, phone)
            .map(|answer| answer.member_number)
    }

    /// Kiosks: the server's whole answer to a member lookup, with the replacement card it
    /// allows (`card_serial_allowed`); `Err` when there is no clear answer.
    pub fn look_up_member(
        &self,
        terminal: &str,
        key: &SigningKey,
        name: &str,
        birth_date: chrono::NaiveDate,
        phone: &str,
    ) -> Result<wire::MemberLookupResponse, Failure> {
        let body = serde_json::to_vec(&wire::MemberLookupRequest {
            name: name.to_owned(),
            birth_date: birth_date.format("%Y-%m-%d").to_string(),
            phone: phone.to_owned(),
        })
        .map_err(|_| Failure::Broken)?;
        let response = self.at_any_address(|| {
            self.signed_post(wire::MEMBER_LOOKUP_PATH, terminal, key, body.clone())
        })?;
        if response.status != 200 {
            return Err(Failure::Broken);
        }
        serde_json::from_slice(&response.body).map_err(|_| Failure::Broken)
    }

    /// Kiosks: asks the server to sign a member card (`POST /v1/cards`). A refusal comes back
    /// as [`EnrollError::Refused`] with the server's error body.
    pub fn issue_card(
        &self,
        terminal: &str,
        key: &SigningKey,
        ask: &CardAsk<'_>,
    ) -> Result<SignedCard, EnrollError> {
        let body = serde_json::to_vec(&wire::CardRequest {
            member_number: ask.member_number.to_owned(),
            serial: ask.serial,
            pin_cost: ask.pin_cost,
            salt: signing::hex(&ask.salt),
            pin_tag: signing::hex(&ask.pin_tag),
        })
        .map_err(|_| EnrollError::Unreachable(Failure::Broken))?;
        answer(
            self.at_any_address(|| self.signed_post(wire::CARDS_PATH, terminal, key, body.clone()))
                .map_err(EnrollError::Unreachable)?,
        )
    }

    /// Sends one sync request (`POST /v1/sync`), signed now with a fresh nonce, on this
    /// client's runtime ([`Central::run`]): how the push driver sends.
    pub async fn send_async(
        &self,
        terminal: &str,
        key: &SigningKey,
        transmit: &Transmit,
    ) -> Result<Response, Failure> {
        self.signed_post_async(wire::SYNC_PATH, terminal, key, transmit.body.clone())
            .await
    }

    /// Runs `work` to its end on this client's runtime (its timers and its connections).
    pub fn run<F: std::future::Future>(&self, work: F) -> F::Output {
        self.runtime.block_on(work)
    }

    /// `POST path` with `body`, signed now with a fresh nonce as `docs/sync-api.yaml` says.
    fn signed_post(
        &self,
        path: &str,
        terminal: &str,
        key: &SigningKey,
        body: Vec<u8>,
    ) -> Result<Response, Failure> {
        self.runtime
            .block_on(self.signed_post_async(path, terminal, key, body))
    }

    async fn signed_post_async(
        &self,
        path: &str,
        terminal: &str,
        key: &SigningKey,
        body: Vec<u8>,
    ) -> Result<Response, Failure> {
        let timestamp = self.local_now().saturating_add(self.skew.get());
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|_| Failure::Broken)?;
        let nonce = signing::nonce_from(random);
        let headers = signing::sign(key, "POST", path, terminal, timestamp, &nonce, &body);
        self.post(path, body, &headers.pairs()).await
    }

    async fn post(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&'static str, String)],
    ) -> Result<Response, Failure> {
        let url = format!("{}{path}", self.base());
        let result = exchange(&self.http, &url, body, headers).await;
        self.reached.set(Some(result.is_ok()));
        if moves_on(result.as_ref().ok().map(|(response, _)| response.status)) {
            self.current
                .set((self.current.get() + 1) % self.bases.len());
        }
        let (response, server_time) = result?;
        if let Some(server) = server_time {
            self.skew.set(server - self.local_now());
        }
        Ok(response)
    }
}

/// Sends one `POST` of `body` with `headers` (the signing headers of `docs/sync-api.yaml`, or
/// none) to `url`, and reads the answer as `sync-client` wants it, with the server's clock
/// (Unix seconds) from its `Date` header when it sent one. Shared by [`Central`] and the
/// launch-day replay's terminals, which run many on one async runtime.
pub async fn exchange(
    http: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    headers: &[(&'static str, String)],
) -> Result<(Response, Option<i64>), Failure> {
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.map_err(failure)?;
    let status = response.status().as_u16();
    let server_time = response
        .headers()
        .get("date")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.timestamp());
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await.map_err(failure)?.to_vec();
    Ok((
        Response {
            status,
            retry_after,
            body,
        },
        server_time,
    ))
}

fn failure(error: reqwest::Error) -> Failure {
    if error.is_timeout() {
        Failure::Timeout
    } else if error.is_connect() {
        Failure::Connect
    } else {
        Failure::Broken
    }
}
