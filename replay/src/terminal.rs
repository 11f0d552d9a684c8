//! The terminals: a driver per terminal that does what its people do at the simulated times
//! (through kiosk-core, merchant-core and redemption-token, as the app does), and a shell per
//! terminal that carries its operations to the server.
//!
//! The smart shell is the terminals' real sync client (`sync-client`: batches, exponential
//! backoff with full jitter, `Retry-After`, a circuit breaker) with a short jittered linger so
//! that what arrives together leaves together. The naive shell is what collapsed in Seoul: one
//! request per operation, retried after a fixed 50 ms whatever the answer, no jitter, no
//! `Retry-After`; naive kiosks have no quota lease, so a sign-up waits for the server.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, FixedOffset, Utc};
use kiosk_core::admission::{admit, AdmissionSchedule, DayRule, QuotaLease};
use kiosk_core::{check_applicant, Applicant, Residency};
use merchant_core::redemption::{Balance, Connectivity, HoldId, OfflineLimits, RedemptionBook};
use points_core::StepReport;
use redemption_token::{verify, IssuerKey, KeySet, MemberNo, Revocations};
use serde_json::Value;
use sync_client::{Client, Config, Failure, Op, Outcome, Response, Transmit};
use sync_protocol::wire::OpPayload;
use sync_protocol::{signing, wire};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::day::{seoul_time, Day};
use crate::metrics::Metrics;
use crate::server::Term;

/// Simulated time on the real clock.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    pub origin: Instant,
    pub compress: f64,
}

impl SimClock {
    /// The real instant of simulated second `at`.
    pub fn real_at(&self, at: u32) -> Instant {
        self.origin + Duration::from_secs_f64(f64::from(at) / self.compress)
    }

    /// Real seconds as simulated seconds.
    pub fn sim_secs(self, real: Duration) -> f64 {
        real.as_secs_f64() * self.compress
    }
}

/// What every task shares.
pub struct Ctx {
    /// One client per terminal, by its `home`: its own connections, from its own address.
    pub http: Vec<reqwest::Client>,
    /// The server's addresses: a terminal stays with one while it answers and moves to the
    /// next on no answer or a 5xx, as `terminal_sync::central::Central` does.
    pub bases: Vec<String>,
    pub metrics: Arc<Metrics>,
    pub clock: SimClock,
    pub day: Arc<Day>,
    pub member_numbers: Arc<Vec<u64>>,
    /// Each existing member's points at the start of the day, as a pull gave them.
    pub opening_balance: Arc<Vec<u64>>,
    pub issuer: Arc<IssuerKey>,
    pub keys: Arc<KeySet>,
    pub prepared_at: DateTime<Utc>,
    /// The existing members' watches, which sign their steps.
    pub watches: Arc<crate::watches::Watches>,
}

/// An operation waiting in a terminal's outbox.
pub struct Queued {
    pub op: Op,
    pub created: Instant,
}

/// How a shell's operations ended.
#[derive(Debug, Default, Clone)]
pub struct ShellReport {
    pub accepted: u64,
    pub duplicate: u64,
    pub rejected: BTreeMap<String, u64>,
    pub unsettled: u64,
    pub halted: Option<String>,
    pub requests: u64,
}

impl ShellReport {
    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Accepted { .. } => self.accepted += 1,
            Outcome::Duplicate { .. } => self.duplicate += 1,
            Outcome::Rejected { reason, .. } => {
                *self.rejected.entry(reason.clone()).or_default() += 1
            }
        }
    }

    pub fn merge(&mut self, other: &ShellReport) {
        self.accepted += other.accepted;
        self.duplicate += other.duplicate;
        for (k, v) in &other.rejected {
            *self.rejected.entry(k.clone()).or_default() += v;
        }
        self.unsettled += other.unsettled;
        self.requests += other.requests;
        if self.halted.is_none() {
            self.halted.clone_from(&other.halted);
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One signed `POST /v1/sync`, to the server's address `address` (an index into
/// [`Ctx::bases`]), which moves on to the next when the server did not answer or failed.
async fn send(
    ctx: &Ctx,
    term: &Term,
    body: Vec<u8>,
    rng: &mut fastrand::Rng,
    address: &mut usize,
) -> Result<Response, Failure> {
    let mut random = [0u8; 16];
    rng.fill(&mut random);
    let nonce = signing::nonce_from(random);
    let headers = signing::sign(
        &term.key,
        "POST",
        wire::SYNC_PATH,
        &term.label,
        unix_now(),
        &nonce,
        &body,
    );
    let url = format!(
        "{}{}",
        ctx.bases[*address % ctx.bases.len()],
        wire::SYNC_PATH
    );
    let started = Instant::now();
    let result = terminal_sync::central::exchange(
        &ctx.http[term.home % ctx.http.len()],
        &url,
        body,
        &headers.pairs(),
    )
    .await
    .map(|(response, _server_time)| response);
    let status = result.as_ref().ok().map(|r: &Response| r.status);
    ctx.metrics.request(status, started.elapsed());
    if terminal_sync::central::moves_on(status) {
        *address = (*address + 1) % ctx.bases.len();
    }
    result
}

/// What a replayed terminal queues, as the push driver takes it: from the terminal's driver
/// through a channel, with a short jittered linger after each arrival so that what arrives
/// together leaves together; answers counted into the report.
struct Queue<'a> {
    ctx: &'a Ctx,
    rx: UnboundedReceiver<Queued>,
    /// Taken from the channel but not yet handed over (a linger the loop cut short).
    held: Vec<Op>,
    created: HashMap<String, Instant>,
    report: &'a mut ShellReport,
    rng: fastrand::Rng,
}

impl Queue<'_> {
    fn take(&mut self, q: Queued) -> Op {
        self.created.insert(q.op.op_id.clone(), q.created);
        q.op
    }
}

impl terminal_sync::driver::Outbox for Queue<'_> {
    fn sending(&mut self, _transmit: &Transmit) -> anyhow::Result<()> {
        self.report.requests += 1;
        Ok(())
    }

    fn settle(&mut self, settled: Vec<(String, Outcome)>) -> anyhow::Result<()> {
        for (op_id, outcome) in settled {
            if let Some(at) = self.created.remove(&op_id) {
                self.ctx.metrics.settled(at);
            }
            self.report.count(&outcome);
        }
        Ok(())
    }

    fn arrived(&mut self) -> Vec<Op> {
        let mut ops = std::mem::take(&mut self.held);
        while let Ok(q) = self.rx.try_recv() {
            ops.push(self.take(q));
        }
        ops
    }

    async fn next(&mut self) -> Option<Vec<Op>> {
        if self.held.is_empty() {
            let q = self.rx.recv().await?;
            let first = self.take(q);
            self.held.push(first);
        }
        // Let what arrives in the next moment go in the same request. Cut short (the loop's
        // timer fired first), what was taken stays held for the next call.
        let linger =
            Duration::from_millis(2_000 + self.rng.u64(..4_000)).div_f64(self.ctx.clock.compress);
        tokio::time::sleep(linger).await;
        Some(self.arrived())
    }
}

/// The server's addresses, as a replayed terminal reaches them.
struct Link<'a> {
    ctx: &'a Ctx,
    term: &'a Term,
    rng: fastrand::Rng,
    address: usize,
    online: Arc<AtomicBool>,
}

impl terminal_sync::driver::Transport for Link<'_> {
    async fn send(&mut self, transmit: &Transmit) -> Result<Response, Failure> {
        let result = send(
            self.ctx,
            self.term,
            transmit.body.clone(),
            &mut self.rng,
            &mut self.address,
        )
        .await;
        self.online.store(
            result.as_ref().is_ok_and(|r| r.status == 200),
            Ordering::Relaxed,
        );
        result
    }
}

/// The terminals' own sync client: `sync-client` driven by the same loop the app's
/// background sync and `palpal sync` run (`terminal_sync::driver`).
pub async fn smart_shell(
    ctx: Arc<Ctx>,
    term: Term,
    rx: UnboundedReceiver<Queued>,
    online: Arc<AtomicBool>,
    seed: u64,
) -> ShellReport {
    // The terminal's own timers run on simulated time like everything the terminals do; the
    // server's Retry-After is honoured in real seconds, as the server meant it.
    let base = Config::default();
    let compress = ctx.clock.compress;
    let config = Config {
        request_timeout: Duration::from_secs(10),
        backoff_base: base.backoff_base.div_f64(compress),
        backoff_cap: base.backoff_cap.div_f64(compress),
        breaker_cooldown: base.breaker_cooldown.div_f64(compress),
        ..base
    };
    let mut client = Client::new(config, seed);
    let mut report = ShellReport::default();
    let mut link = Link {
        ctx: &ctx,
        term: &term,
        rng: fastrand::Rng::with_seed(seed ^ 0x5eed),
        address: term.home,
        online,
    };
    let mut queue = Queue {
        ctx: &ctx,
        rx,
        held: Vec::new(),
        created: HashMap::new(),
        report: &mut report,
        rng: fastrand::Rng::with_seed(seed ^ 0x11a9),
    };
    // A terminal in use never gives up: it waits out every backoff and an open breaker.
    let limits = terminal_sync::driver::Limits {
        max_wait: None,
        stop_when_open: false,
    };
    let stop = terminal_sync::driver::push(&mut client, &mut queue, &mut link, limits).await;
    match stop {
        Ok(terminal_sync::driver::Stop::Halted(halt)) => {
            report.halted = Some(format!("{} {}", halt.status, halt.code));
        }
        Ok(_) => {}
        Err(e) => report.halted = Some(format!("the queue failed: {e:#}")),
    }
    report.unsettled = u64::try_from(client.unsettled()).unwrap_or(u64::MAX);
    report
}

fn envelope(op: &Op) -> Vec<u8> {
    serde_json::to_vec(&wire::SyncRequest {
        operations: vec![wire::Operation::new(op.op_id.as_str(), &op.payload)],
    })
    .unwrap_or_default()
}

/// What a naive terminal does with an answer: `Some(status)` of the one operation when the
/// server answered 200.
fn single_result(response: &Response) -> Option<String> {
    if response.status != 200 {
        return None;
    }
    let body: Value = serde_json::from_slice(&response.body).ok()?;
    let result = body.get("results")?.get(0)?;
    let status = result.get("status")?.as_str()?;
    Some(if status == "rejected" {
        format!(
            "rejected:{}",
            result.get("reason").and_then(Value::as_str).unwrap_or("?")
        )
    } else {
        status.to_owned()
    })
}

fn count_single(report: &mut ShellReport, status: &str) {
    match status.strip_prefix("rejected:") {
        Some(reason) => *report.rejected.entry(reason.to_owned()).or_default() += 1,
        None if status == "duplicate" => report.duplicate += 1,
        None => report.accepted += 1,
    }
}

/// Sends one operation again and again until the server answers for it, or until `give_up`.
async fn naive_send(
    ctx: &Ctx,
    term: &Term,
    op: &Op,
    give_up: Option<Instant>,
    online: &AtomicBool,
    rng: &mut fastrand::Rng,
    report: &mut ShellReport,
) -> Option<String> {
    let body = envelope(op);
    let mut address = term.home;
    loop {
        report.requests += 1;
        let answer = send(ctx, term, body.clone(), rng, &mut address).await;
        if let Some(status) = answer.as_ref().ok().and_then(single_result) {
            online.store(true, Ordering::Relaxed);
            return Some(status);
        }
        online.store(false, Ordering::Relaxed);
        if give_up.is_some_and(|at| Instant::now() >= at) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One request per operation, in order, retried without backoff.
pub async fn naive_shell(
    ctx: Arc<Ctx>,
    term: Term,
    mut rx: UnboundedReceiver<Queued>,
    online: Arc<AtomicBool>,
    seed: u64,
) -> ShellReport {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut report = ShellReport::default();
    while let Some(q) = rx.recv().await {
        if let Some(status) =
            naive_send(&ctx, &term, &q.op, None, &online, &mut rng, &mut report).await
        {
            count_single(&mut report, &status);
            ctx.metrics.settled(q.created);
        }
    }
    report
}

/// What a driver did.
#[derive(Debug, Default)]
pub struct DriverRecord {
    /// Enrollment op ids confirmed to the person, with the person's index.
    pub confirmed: Vec<(String, usize)>,
    /// People sent away: no place, server unreachable (naive), refused by the rules.
    pub turned_away: BTreeMap<String, u64>,
    /// Step reports made, with the member index.
    pub reports: Vec<(usize, StepReport)>,
    /// Holds made (op ids).
    pub holds: Vec<String>,
    /// Voids made (op ids).
    pub voids: Vec<String>,
    /// Redemptions the counter refused, by code.
    pub refused: BTreeMap<String, u64>,
}

/// Operation numbers ([`Op::seq`]): one count for every terminal of the replay, so each
/// terminal's operations are numbered in the order it made them, as a terminal's outbox does.
static NEXT_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn enqueue(ctx: &Ctx, tx: &UnboundedSender<Queued>, op_id: String, payload: OpPayload) {
    ctx.metrics.offered();
    let queued = Queued {
        op: Op {
            op_id,
            payload,
            seq: Some(NEXT_SEQ.fetch_add(1, Ordering::Relaxed)),
        },
        created: Instant::now(),
    };
    if tx.send(queued).is_err() {
        ctx.metrics.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A kiosk's sign-ups. Smart: confirmed on the spot within the site's lease, sent later.
/// Naive (`tx` of a naive shell and `naive` set): the enrollment is sent at once and the
/// person waits for the server, up to five simulated minutes.
pub async fn kiosk_driver(
    ctx: Arc<Ctx>,
    term: Term,
    k: usize,
    tx: UnboundedSender<Queued>,
    naive: Option<Arc<AtomicBool>>,
) -> (DriverRecord, ShellReport) {
    let day = Arc::clone(&ctx.day);
    let today = day.today;
    let schedule = AdmissionSchedule {
        days: [(today, DayRule::Open)].into_iter().collect(),
    };
    let mut lease = day.lease_places[k].map(|places| QuotaLease {
        lease_id: format!("Q-{k}"),
        site: Day::kiosk_site(k),
        day: today,
        places,
        used: 0,
    });
    let mut record = DriverRecord::default();
    let mut naive_report = ShellReport::default();
    // Its own stream: nonces must differ from the shell's of the same terminal.
    let mut rng = fastrand::Rng::with_seed(day.seed ^ ((k as u64) << 20) ^ 0xA5A5_5A5A_0000_0000);
    for sign_up in &day.kiosk_plans[k] {
        tokio::time::sleep_until(ctx.clock.real_at(sign_up.at).into()).await;
        let person = &day.new_people[sign_up.person];
        let applicant = Applicant {
            name: person.name.clone(),
            birth_date: person.birth_date,
            phone: person.phone.clone(),
            residency: Residency::Lives,
        };
        if let Err(refusal) = check_applicant(&applicant, today) {
            *record
                .turned_away
                .entry(refusal.code().to_owned())
                .or_default() += 1;
            continue;
        }
        let op_id = format!("{}-e-{}", term.label, sign_up.person);
        let payload = crate::server::enrollment_payload(person, today);
        if let Some(online) = &naive {
            // No lease: only the server can confirm, and the person waits for it.
            ctx.metrics.offered();
            let give_up = Instant::now() + Duration::from_secs_f64(300.0 / ctx.clock.compress);
            let op = Op {
                op_id: op_id.clone(),
                payload,
                seq: Some(NEXT_SEQ.fetch_add(1, Ordering::Relaxed)),
            };
            let created = Instant::now();
            match naive_send(
                &ctx,
                &term,
                &op,
                Some(give_up),
                online,
                &mut rng,
                &mut naive_report,
            )
            .await
            {
                Some(status) => {
                    ctx.metrics.settled(created);
                    count_single(&mut naive_report, &status);
                    if status.starts_with("rejected") {
                        *record.turned_away.entry(status).or_default() += 1;
                        continue;
                    }
                }
                None => {
                    ctx.metrics.queued.fetch_sub(1, Ordering::Relaxed);
                    *record
                        .turned_away
                        .entry("server_unreachable".into())
                        .or_default() += 1;
                    continue;
                }
            }
        } else {
            match admit(&schedule, lease.as_mut(), person.birth_date, today) {
                Ok(_) => enqueue(&ctx, &tx, op_id.clone(), payload),
                Err(not) => {
                    *record.turned_away.entry(not.code().to_owned()).or_default() += 1;
                    continue;
                }
            }
        }
        record.confirmed.push((op_id.clone(), sign_up.person));
        enqueue(
            &ctx,
            &tx,
            format!("{}-w-{}", term.label, sign_up.person),
            OpPayload::WatchPairing(wire::WatchPairingPayload {
                serial: format!("W-{:08}", sign_up.person),
                member_number: None,
                enrollment_op_id: Some(op_id.clone()),
                token: None,
                paired_at: None,
            }),
        );
    }
    (record, naive_report)
}

fn rfc3339(at: DateTime<FixedOffset>) -> String {
    at.to_rfc3339()
}

/// A counter's visits: the watch synced (a step report), points redeemed through the
/// redemption book with a token the member's phone made, and now and then a void.
pub async fn counter_driver(
    ctx: Arc<Ctx>,
    term: Term,
    c: usize,
    tx: UnboundedSender<Queued>,
    online: Arc<AtomicBool>,
) -> DriverRecord {
    let day = Arc::clone(&ctx.day);
    let mut book = RedemptionBook::new(OfflineLimits::example());
    book.synced(ctx.prepared_at);
    let mut record = DriverRecord::default();
    let mut rng = fastrand::Rng::with_seed(day.seed ^ ((c as u64) << 32));
    let mut voids_due: Vec<(u32, HoldId)> = Vec::new();
    let do_voids = |book: &mut RedemptionBook,
                    record: &mut DriverRecord,
                    due: &mut Vec<(u32, HoldId)>,
                    until: u32| {
        let now = Utc::now();
        due.retain(|(at, hold)| {
            if *at > until {
                return true;
            }
            if let Ok(void) = book.void(hold, now) {
                let op_id = format!("{hold}-void");
                enqueue(
                    &ctx,
                    &tx,
                    op_id.clone(),
                    OpPayload::Void(wire::VoidPayload {
                        hold_op_id: void.hold_id.0.clone(),
                        voided_at: rfc3339(seoul_time(void.at)),
                    }),
                );
                record.voids.push(op_id);
            }
            false
        });
    };
    for (i, visit) in day.counter_plans[c].iter().enumerate() {
        tokio::time::sleep_until(ctx.clock.real_at(visit.at).into()).await;
        do_voids(&mut book, &mut record, &mut voids_due, visit.at);
        let number = ctx.member_numbers[visit.member];
        let now = Utc::now();
        let report = StepReport {
            reported_at: seoul_time(now),
            day: day.today,
            steps: day.steps_at(visit.member, visit.at),
        };
        // The member's watch signs the day's total as the counter reads it.
        let watch = ctx
            .watches
            .live_proof(visit.member, report.day, report.steps, report.reported_at)
            .ok();
        enqueue(
            &ctx,
            &tx,
            format!("{}-s-{i}", term.label),
            OpPayload::StepReport(wire::StepReportPayload {
                member_number: format!("PP-{number:08}"),
                day: report.day.to_string(),
                steps: report.steps,
                reported_at: rfc3339(report.reported_at),
                watch,
            }),
        );
        record.reports.push((visit.member, report));
        if online.load(Ordering::Relaxed) {
            book.synced(now);
        }
        let Some(amount) = visit.redeem else { continue };
        let member = MemberNo(number);
        if book.available(member).is_none() {
            book.set_balance(
                member,
                Balance {
                    points: ctx.opening_balance[visit.member],
                    as_of: ctx.prepared_at,
                },
            );
        }
        let mut nonce = [0u8; 8];
        rng.fill(&mut nonce);
        let claims = ctx
            .issuer
            .issue_dynamic(member, now, 120, nonce)
            .map_err(|e| e.to_string())
            .and_then(|token| {
                let text = token.to_text();
                verify(&text, &ctx.keys, &Revocations::default(), None, now)
                    .map(|claims| (claims, text))
                    .map_err(|e| e.to_string())
            });
        let (claims, token) = match claims {
            Ok(claims) => claims,
            Err(e) => {
                *record.refused.entry(format!("token: {e}")).or_default() += 1;
                continue;
            }
        };
        let connectivity = if online.load(Ordering::Relaxed) {
            Connectivity::Online
        } else {
            Connectivity::Offline
        };
        let op_id = format!("{}-h-{i}", term.label);
        match book.request_hold(HoldId(op_id.clone()), &claims, amount, now, connectivity) {
            Ok(hold) => {
                enqueue(
                    &ctx,
                    &tx,
                    op_id.clone(),
                    OpPayload::RedemptionHold(wire::RedemptionHoldPayload {
                        member_no: format!("PP-{number:08}"),
                        amount: hold.amount,
                        token,
                        held_at: rfc3339(seoul_time(hold.created_at)),
                        terminal: term.label.clone(),
                    }),
                );
                record.holds.push(op_id);
                if visit.void {
                    voids_due.push((visit.at + 60, hold.id));
                }
            }
            Err(refusal) => *record.refused.entry(refusal.code().to_owned()).or_default() += 1,
        }
    }
    do_voids(&mut book, &mut record, &mut voids_due, u32::MAX);
    record
}
