//! Deterministic simulation: a sign-up kiosk and a counter, each a [`Client`] over its outbox,
//! and the central server's own rules (`central_core::memory::Central`) exchange messages
//! through a test network that drops, duplicates, delays and reorders them, under a fake
//! clock, with server outages, 429 + `Retry-After`, 503s and terminal restarts (a new client
//! over what the outbox still holds, as after `kill -9`; the restarted terminal's first pull
//! tells the server its operation number). A quarter of the runs pass midnight in Seoul.
//!
//! The terminals do what their people do while the network fails: the kiosk signs people up
//! (some of them twice, now and then with a phone number that is no number) and reads
//! watches; the counter reads watches, takes holds with the member's real token (now and then
//! another member's) and voids holds of the day (now and then one it never took). A member is
//! known to the terminals once the kiosk has the answer to their sign-up.
//!
//! Many seeds; for each: every operation settled on its terminal exactly once; each one
//! settled as applied was applied on the server exactly once and answered as the server
//! recorded it; a rejected one left no trace (no operation, member, report, posted hold or
//! void; a hold refused for want of points or for a token used before is kept only as the
//! evidence its reason names); the planted mistakes are refused for what they are; and each
//! member's balance is what `points-core`'s `Ledger` makes of their applied step reports, in
//! the server's order, less their holds posted and not voided. Over all seeds, every kind of
//! outcome happens.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use central_core::memory::Central;
use chrono::{DateTime, Days, NaiveDate, TimeZone as _, Utc};
use points_core::{Ledger, PointsPolicy, PolicySet, StepReport};
use redemption_token::{IssuerKey, MemberNo};
use splitmix::SplitMix64;
use sync_client::{Client, Config, Event, Failure, Op, Outcome, Response, Time, Transmit};
use sync_protocol::member::{member_number, parse_member_number, terminal_label};
use sync_protocol::wire::{
    EnrollmentPayload, OpKind, OpPayload, OpStatus, RedemptionHoldPayload, Role, StepReportPayload,
    SyncRequest, SyncResponse, VoidPayload,
};

type Rng = SplitMix64;

/// The published policies, read once.
fn policies() -> &'static PolicySet {
    static POLICIES: OnceLock<PolicySet> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let texts = [
            include_str!("../../policies/seoul-2023.toml"),
            include_str!("../../policies/seoul-2025-03.toml"),
            include_str!("../../policies/seoul-2025-12.toml"),
        ];
        let policies = texts.map(|text| PointsPolicy::from_toml_str(text).expect("a policy"));
        PolicySet::new(policies.to_vec()).expect("the published policies")
    })
}

/// A time as a terminal in Seoul writes it.
fn kst_text(at: DateTime<Utc>) -> String {
    at.with_timezone(&points_core::KST).to_rfc3339()
}

/// What travels on the network, with the terminal and client generation it belongs to (a
/// restarted terminal never sees answers meant for the process that died).
#[derive(Clone)]
enum Message {
    ToServer {
        terminal: usize,
        generation: u32,
        seq: u64,
        body: Vec<u8>,
    },
    ToClient {
        terminal: usize,
        generation: u32,
        seq: u64,
        answer: Result<Response, Failure>,
    },
}

/// The central server as the terminals meet it: the real rules behind an HTTP front that is
/// sometimes down, sometimes busy (429 with `Retry-After`) and sometimes failing (503); a
/// refused request applies nothing.
struct Server {
    central: Central,
    /// Outage windows, in ms.
    down: Vec<(u64, u64)>,
}

impl Server {
    fn is_down(&self, at: u64) -> bool {
        self.down
            .iter()
            .any(|(from, to)| (*from..*to).contains(&at))
    }

    fn handle(
        &mut self,
        rng: &mut Rng,
        terminal: i64,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Response {
        if rng.chance(8) {
            return Response {
                status: 429,
                retry_after: Some("1".to_owned()),
                body: r#"{"code":"overloaded","message":"혼잡","message_en":"busy"}"#
                    .as_bytes()
                    .to_vec(),
            };
        }
        if rng.chance(4) {
            return Response {
                status: 503,
                retry_after: None,
                body: Vec::new(),
            };
        }
        let request: SyncRequest = serde_json::from_slice(body).expect("the client sends JSON");
        assert!(
            !request.operations.is_empty(),
            "the client never sends an empty batch"
        );
        let results = self
            .central
            .apply(terminal, &request.operations, now)
            .expect("the terminal is the server's");
        Response {
            status: 200,
            retry_after: None,
            body: serde_json::to_vec(&SyncResponse { results }).expect("json"),
        }
    }
}

/// A terminal: its outbox (every operation it made, in order, numbered from 1), the client
/// over what of it is not settled, and what each operation settled as.
struct Terminal {
    id: i64,
    prefix: &'static str,
    config: Config,
    client: Client,
    generation: u32,
    outbox: Vec<Op>,
    settled: BTreeMap<String, Vec<Outcome>>,
}

impl Terminal {
    fn new(id: i64, prefix: &'static str, config: Config, seed: u64) -> Terminal {
        Terminal {
            id,
            prefix,
            client: Client::new(config.clone(), seed),
            config,
            generation: 0,
            outbox: Vec::new(),
            settled: BTreeMap::new(),
        }
    }

    /// Writes an operation to the outbox and queues it; its id.
    fn make(&mut self, payload: OpPayload) -> String {
        let seq = self.sequence() + 1;
        let op = Op {
            op_id: format!("{}-{seq}", self.prefix),
            payload,
            seq: Some(seq),
        };
        self.client.enqueue(op.clone());
        self.outbox.push(op);
        format!("{}-{seq}", self.prefix)
    }

    /// The number of its last operation.
    fn sequence(&self) -> u64 {
        self.outbox.len() as u64
    }

    /// A new process over the same outbox.
    fn restart(&mut self, seed: u64) {
        self.generation += 1;
        self.client = Client::new(self.config.clone(), seed);
        for op in &self.outbox {
            if !self.settled.contains_key(&op.op_id) {
                self.client.enqueue(op.clone());
            }
        }
    }

    fn all_settled(&self) -> bool {
        self.outbox
            .iter()
            .all(|op| self.settled.contains_key(&op.op_id))
    }

    /// What an operation settled as first.
    fn outcome(&self, op_id: &str) -> Option<&Outcome> {
        self.settled
            .get(op_id)
            .and_then(|outcomes| outcomes.first())
    }
}

/// Whether an outcome says the server applied the operation (now or before).
fn applied(outcome: Option<&Outcome>) -> bool {
    matches!(
        outcome,
        Some(Outcome::Accepted { .. } | Outcome::Duplicate { .. })
    )
}

fn member_of(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Accepted { member_number } | Outcome::Duplicate { member_number } => {
            member_number.as_deref()
        }
        Outcome::Rejected { .. } => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Person {
    name: String,
    birth_date: NaiveDate,
    phone: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    SignUp,
    Steps,
    Hold,
    Void,
}

const KIOSK: usize = 0;
const COUNTER: usize = 1;

const SURNAMES: [&str; 10] = ["김", "이", "박", "최", "정", "강", "조", "윤", "장", "임"];
const GIVEN: [&str; 12] = [
    "영희", "철수", "민준", "서연", "지호", "하은", "도윤", "수아", "예준", "지우", "순자", "영수",
];

/// What all seeds came to: operations by kind and outcome, and the points credited.
#[derive(Debug, Default)]
struct Tally {
    outcomes: BTreeMap<(&'static str, String), u64>,
    points: i64,
}

struct Sim {
    seed: u64,
    rng: Rng,
    /// The server's clock at 0 ms.
    start: DateTime<Utc>,
    now: u64,
    server: Server,
    terminals: [Terminal; 2],
    issuer: IssuerKey,
    people: Vec<Person>,
    /// Member number -> person, as the kiosk learned from the answers.
    members: BTreeMap<i64, usize>,
    /// The person each sign-up names (none for one made wrong).
    sign_ups: BTreeMap<String, Option<usize>>,
    /// The counter's holds, with their day.
    holds: Vec<(String, NaiveDate)>,
    /// Operations made wrong on purpose, and the reason they must be refused for.
    planted: BTreeMap<String, &'static str>,
    /// (when, tie) -> what a terminal's people do then.
    actions: BTreeMap<(u64, u64), (usize, Action)>,
    /// (deliver at, tie) -> message.
    network: BTreeMap<(u64, u64), Message>,
    tie: u64,
    drop_percent: u64,
    dup_percent: u64,
}

fn config(rng: &mut Rng) -> Config {
    Config {
        max_batch_ops: 1 + rng.below(40) as usize,
        // Every operation (a hold with its token is the largest, some 350 bytes with its
        // envelope) fits the smallest batch.
        max_batch_bytes: 600 + rng.below(4000) as usize,
        request_timeout: Duration::from_millis(2_000),
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_millis(5_000),
        breaker_threshold: 4,
        breaker_cooldown: Duration::from_millis(10_000),
        probe_max_ops: 3,
        max_retry_after: Duration::from_secs(60),
    }
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng::new(seed);
        // Mornings to evenings, and a quarter of the runs from a minute before midnight.
        let start = if rng.chance(25) {
            Utc.with_ymd_and_hms(2025, 12, 3, 14, 59, 0)
                .single()
                .expect("a time")
        } else {
            Utc.with_ymd_and_hms(2025, 12, 3, 0, 0, 0)
                .single()
                .expect("a time")
                + chrono::Duration::seconds(rng.below(10 * 3600) as i64)
        };
        let mut central = Central::new(policies().clone());
        let kiosk = central.add_terminal(Role::Kiosk, "east");
        let counter = central.add_terminal(Role::Counter, "east");
        // The site's sign-ups on the first day under a quota lease, sometimes a small one.
        central.set_quota(
            points_core::kst_day(start),
            "east",
            2 + rng.below(30) as u32,
        );
        let secret = rng.next_u64().to_le_bytes().repeat(4);
        let secret: [u8; 32] = secret.try_into().expect("32 bytes");
        let key_id = central
            .add_redemption_key(&IssuerKey::from_seed(1, secret).public_key())
            .expect("a valid key");
        let mut down = Vec::new();
        for _ in 0..rng.below(3) {
            let from = rng.below(60_000);
            down.push((from, from + rng.below(30_000)));
        }
        let drop_percent = rng.below(30);
        let dup_percent = rng.below(20);
        let kiosk_config = config(&mut rng);
        let counter_config = config(&mut rng);
        let terminals = [
            Terminal::new(kiosk, "k", kiosk_config, rng.next_u64()),
            Terminal::new(counter, "c", counter_config, rng.next_u64()),
        ];
        let mut sim = Sim {
            seed,
            rng,
            start,
            now: 0,
            server: Server { central, down },
            terminals,
            issuer: IssuerKey::from_seed(key_id, secret),
            people: Vec::new(),
            members: BTreeMap::new(),
            sign_ups: BTreeMap::new(),
            holds: Vec::new(),
            planted: BTreeMap::new(),
            actions: BTreeMap::new(),
            network: BTreeMap::new(),
            tie: 0,
            drop_percent,
            dup_percent,
        };
        // Each terminal's first pull of the day tells the server its number so far.
        sim.contact(KIOSK);
        sim.contact(COUNTER);
        // The first person of the day signs up at once; then people come over a minute and
        // a half.
        sim.schedule(0, KIOSK, Action::SignUp);
        for _ in 0..sim.rng.below(50) {
            let at = sim.rng.below(90_000);
            let action = if sim.rng.chance(55) {
                Action::SignUp
            } else {
                Action::Steps
            };
            sim.schedule(at, KIOSK, action);
        }
        for _ in 0..sim.rng.below(60) {
            let at = sim.rng.below(90_000);
            let action = match sim.rng.below(20) {
                0..=8 => Action::Steps,
                9..=15 => Action::Hold,
                _ => Action::Void,
            };
            sim.schedule(at, COUNTER, action);
        }
        sim
    }

    /// The server's clock now.
    fn clock(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::milliseconds(self.now as i64)
    }

    fn schedule(&mut self, at: u64, terminal: usize, action: Action) {
        self.tie += 1;
        self.actions.insert((at, self.tie), (terminal, action));
    }

    fn contact(&mut self, terminal: usize) {
        let day = points_core::kst_day(self.clock());
        let terminal = &self.terminals[terminal];
        self.server
            .central
            .contact(terminal.id, day, terminal.sequence());
    }

    /// A member the terminals know of, if any.
    fn known_member(&mut self) -> Option<i64> {
        let known: Vec<i64> = self.members.keys().copied().collect();
        (!known.is_empty()).then(|| known[self.rng.index(known.len())])
    }

    fn new_person(&mut self) -> usize {
        let n = self.people.len();
        let name = format!("{}{}", SURNAMES[n % 10], GIVEN[(n / 10 + n) % 12]);
        let birth_date = NaiveDate::from_ymd_opt(1940, 1, 1).expect("a day")
            + Days::new(self.rng.below(46 * 365));
        let phone = format!(
            "010-{:04}-{:04}",
            self.rng.below(10_000),
            self.rng.below(10_000)
        );
        self.people.push(Person {
            name,
            birth_date,
            phone,
        });
        n
    }

    /// Does what `action` says at `terminal` now; false when it must wait (nobody is a
    /// member yet).
    fn fire(&mut self, terminal: usize, action: Action) -> bool {
        let now = self.clock();
        let today = points_core::kst_day(now);
        match action {
            Action::SignUp => {
                let person = if self.rng.chance(10) && !self.people.is_empty() {
                    None
                } else if self.rng.chance(30) && !self.people.is_empty() {
                    Some(self.rng.index(self.people.len()))
                } else {
                    Some(self.new_person())
                };
                let payload = match person {
                    Some(p) => EnrollmentPayload {
                        name: self.people[p].name.clone(),
                        birth_date: self.people[p].birth_date.to_string(),
                        phone: self.people[p].phone.clone(),
                        day: Some(today.to_string()),
                    },
                    // A phone number that is no number.
                    None => EnrollmentPayload {
                        name: "홍길동".to_owned(),
                        birth_date: "1950-01-01".to_owned(),
                        phone: "0101".to_owned(),
                        day: Some(today.to_string()),
                    },
                };
                let op_id = self.terminals[terminal].make(OpPayload::Enrollment(payload));
                if person.is_none() {
                    self.planted.insert(op_id.clone(), "invalid_payload");
                }
                self.sign_ups.insert(op_id, person);
            }
            Action::Steps => {
                let Some(member) = self.known_member() else {
                    return false;
                };
                let day = today - Days::new(self.rng.below(4));
                let payload = StepReportPayload {
                    member_number: member_number(member),
                    day: day.to_string(),
                    steps: 3_000 + self.rng.below(9_000) as u32,
                    reported_at: kst_text(now),
                    watch: None,
                };
                self.terminals[terminal].make(OpPayload::StepReport(payload));
            }
            Action::Hold => {
                let Some(member) = self.known_member() else {
                    return false;
                };
                // Now and then the counter scans another member's code for this one.
                let other = self.known_member().filter(|other| *other != member);
                let mismatch = other.is_some() && self.rng.chance(5);
                let shown = if mismatch { other } else { Some(member) };
                let mut nonce = [0; 8];
                nonce.copy_from_slice(&self.rng.next_u64().to_le_bytes());
                let token = self
                    .issuer
                    .issue_dynamic(MemberNo(shown.map_or(0, |m| m as u64)), now, 120, nonce)
                    .expect("a token")
                    .to_text();
                let payload = RedemptionHoldPayload {
                    member_no: member_number(member),
                    amount: 100 + self.rng.below(51),
                    token,
                    held_at: kst_text(now),
                    terminal: terminal_label(self.terminals[terminal].id),
                };
                let op_id = self.terminals[terminal].make(OpPayload::RedemptionHold(payload));
                if mismatch {
                    self.planted.insert(op_id.clone(), "token_member_mismatch");
                }
                self.holds.push((op_id, today));
            }
            Action::Void => {
                // One of the day's holds the server has not refused.
                let counter = &self.terminals[terminal];
                let todays: Vec<String> = self
                    .holds
                    .iter()
                    .filter(|(op_id, day)| {
                        *day == today
                            && !matches!(counter.outcome(op_id), Some(Outcome::Rejected { .. }))
                    })
                    .map(|(op_id, _)| op_id.clone())
                    .collect();
                let hold = if todays.is_empty() || self.rng.chance(20) {
                    None
                } else {
                    Some(todays[self.rng.index(todays.len())].clone())
                };
                let payload = VoidPayload {
                    hold_op_id: hold
                        .clone()
                        .unwrap_or_else(|| format!("h-never-{}", self.rng.below(1_000))),
                    voided_at: kst_text(now),
                };
                let op_id = self.terminals[terminal].make(OpPayload::Void(payload));
                if hold.is_none() {
                    self.planted.insert(op_id, "unknown_hold");
                }
            }
        }
        true
    }

    /// Takes what the clients settled; the kiosk learns members' numbers from sign-ups.
    fn take_events(&mut self) {
        for index in 0..self.terminals.len() {
            while let Some(event) = self.terminals[index].client.poll_event() {
                let (op_id, outcome) = match event {
                    Event::Settled { op_id, outcome } => (op_id, outcome),
                    Event::Halted(halt) => panic!("seed {}: halted {halt:?}", self.seed),
                };
                let person = self.sign_ups.get(&op_id).copied().flatten();
                if let (Some(person), Some(number)) = (person, member_of(&outcome)) {
                    let id = parse_member_number(number).expect("a member number");
                    self.members.insert(id, person);
                }
                self.terminals[index]
                    .settled
                    .entry(op_id)
                    .or_default()
                    .push(outcome);
            }
        }
    }

    fn send(&mut self, at: u64, message: Message) {
        if self.rng.chance(self.drop_percent) {
            return;
        }
        let copies = if self.rng.chance(self.dup_percent) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            self.tie += 1;
            let delay = 1 + self.rng.below(3_000);
            self.network.insert((at + delay, self.tie), message.clone());
        }
    }

    /// Delivers every message due by now.
    fn deliver(&mut self) {
        while let Some(entry) = self.network.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            match entry.remove() {
                Message::ToServer {
                    terminal,
                    generation,
                    seq,
                    body,
                } => {
                    let answer = if self.server.is_down(self.now) {
                        Err(Failure::Connect)
                    } else {
                        let (id, now) = (self.terminals[terminal].id, self.clock());
                        Ok(self.server.handle(&mut self.rng, id, &body, now))
                    };
                    let message = Message::ToClient {
                        terminal,
                        generation,
                        seq,
                        answer,
                    };
                    self.send(self.now, message);
                }
                Message::ToClient {
                    terminal,
                    generation,
                    seq,
                    answer,
                } => {
                    let now = Time::from_millis(self.now);
                    let terminal = &mut self.terminals[terminal];
                    if generation != terminal.generation {
                        continue;
                    }
                    match answer {
                        Ok(response) => terminal.client.handle_response(now, seq, response),
                        Err(failure) => terminal.client.handle_failure(now, seq, failure),
                    }
                }
            }
        }
    }

    fn run(&mut self) {
        let mut steps = 0u64;
        'run: loop {
            steps += 1;
            assert!(
                steps < 2_000_000,
                "seed {}: the simulation does not end",
                self.seed
            );
            self.take_events();
            if self.actions.is_empty() && self.terminals.iter().all(Terminal::all_settled) {
                break;
            }
            if let Some(entry) = self.actions.first_entry() {
                if entry.key().0 <= self.now {
                    let (terminal, action) = entry.remove();
                    if !self.fire(terminal, action) {
                        self.schedule(self.now + 1_000, terminal, action);
                    }
                    continue;
                }
            }
            let now = Time::from_millis(self.now);
            for index in 0..self.terminals.len() {
                let terminal = &mut self.terminals[index];
                if let Some(Transmit { seq, body, .. }) = terminal.client.poll_transmit(now) {
                    let generation = terminal.generation;
                    let message = Message::ToServer {
                        terminal: index,
                        generation,
                        seq,
                        body,
                    };
                    self.send(self.now, message);
                    continue 'run;
                }
            }
            // A terminal restart now and then: the outbox keeps what is not settled, and the
            // new process pulls first.
            if self.rng.chance(1) {
                let index = self.rng.index(self.terminals.len());
                if self.terminals[index].generation < 5 {
                    let seed = self.rng.next_u64();
                    self.terminals[index].restart(seed);
                    self.contact(index);
                    continue;
                }
            }
            let next = [
                self.network.keys().next().map(|(at, _)| *at),
                self.actions.keys().next().map(|(at, _)| *at),
            ]
            .into_iter()
            .chain(
                self.terminals
                    .iter()
                    .map(|t| t.client.poll_timeout().map(Time::as_millis)),
            )
            .flatten()
            .min();
            let Some(next) = next else {
                panic!(
                    "seed {}: nothing to wait for, yet not all settled",
                    self.seed
                );
            };
            self.now = self.now.max(next);
            self.deliver();
            let now = Time::from_millis(self.now);
            for terminal in &mut self.terminals {
                terminal.client.handle_timeout(now);
            }
        }
    }

    /// Checks what the terminals were told against what the server holds.
    fn check(&self, tally: &mut Tally) {
        let seed = self.seed;
        let central = &self.server.central;
        let mut applied_ops = 0;
        for terminal in &self.terminals {
            for op in &terminal.outbox {
                let id = op.op_id.as_str();
                let outcomes = &terminal.settled[id];
                assert_eq!(outcomes.len(), 1, "seed {seed}: {id} settled {outcomes:?}");
                let outcome = &outcomes[0];
                let label = match outcome {
                    Outcome::Accepted { .. } => "accepted".to_owned(),
                    Outcome::Duplicate { .. } => "duplicate".to_owned(),
                    Outcome::Rejected { reason, .. } => reason.clone(),
                };
                *tally
                    .outcomes
                    .entry((op.payload.kind().as_str(), label))
                    .or_default() += 1;
                match outcome {
                    Outcome::Accepted { member_number } | Outcome::Duplicate { member_number } => {
                        applied_ops += 1;
                        assert_eq!(
                            central.times_applied(id),
                            1,
                            "seed {seed}: {id} not applied exactly once"
                        );
                        let recorded = central.result(id).expect("recorded");
                        assert_eq!(recorded.member_number, *member_number, "seed {seed}: {id}");
                        if matches!(outcome, Outcome::Accepted { .. }) {
                            assert_eq!(recorded.status, OpStatus::Accepted, "seed {seed}: {id}");
                        }
                        assert_eq!(
                            self.planted.get(id),
                            None,
                            "seed {seed}: {id} made wrong, yet applied"
                        );
                    }
                    Outcome::Rejected { reason, .. } => {
                        if let Some(planted) = self.planted.get(id) {
                            assert_eq!(reason, planted, "seed {seed}: {id}");
                        }
                        assert_ne!(reason, "too_large", "seed {seed}: {id}");
                        // No trace: no operation, member, report or void; a hold only as
                        // the evidence its refusal names.
                        assert_eq!(central.times_applied(id), 0, "seed {seed}: {id}");
                        assert!(central.result(id).is_none(), "seed {seed}: {id}");
                        assert!(central.members().all(|(_, m)| m.op_id != id));
                        assert!(central.step_reports().iter().all(|r| r.op_id != id));
                        assert!(central.holds().all(|h| h.void_op_id.as_deref() != Some(id)));
                        if let Some(hold) = central.hold(id) {
                            let kept_for = hold.status.refusal().map(|r| r.as_str());
                            assert_eq!(kept_for, Some(reason.as_str()), "seed {seed}: {id}");
                        }
                    }
                }
            }
        }
        assert_eq!(central.journal().len(), applied_ops, "seed {seed}");

        // One member per person signed up, with the one number every sign-up of theirs was
        // answered with, and the person's own details.
        let kiosk = &self.terminals[KIOSK];
        let mut numbers: BTreeMap<usize, &str> = BTreeMap::new();
        for (op_id, person) in &self.sign_ups {
            let (Some(person), Some(number)) = (person, kiosk.outcome(op_id).and_then(member_of))
            else {
                continue;
            };
            let first = *numbers.entry(*person).or_insert(number);
            assert_eq!(
                first, number,
                "seed {seed}: person {person} has two numbers"
            );
        }
        assert_eq!(central.members().count(), numbers.len(), "seed {seed}");
        for (person, number) in &numbers {
            let id = parse_member_number(number).expect("a member number");
            let member = central.member(id).expect("a member");
            let person = &self.people[*person];
            let digits: String = person.phone.chars().filter(char::is_ascii_digit).collect();
            assert_eq!(
                (&member.name, member.birth_date, &member.phone),
                (&person.name, person.birth_date, &digits),
                "seed {seed}: {number}"
            );
        }

        // Balances: points-core's ledger over the applied step reports in the server's order,
        // less the holds posted and not voided.
        let counter = &self.terminals[COUNTER];
        let mut reports = BTreeMap::new();
        let mut holds = BTreeMap::new();
        let mut voided = BTreeMap::new();
        for terminal in &self.terminals {
            for op in &terminal.outbox {
                let applied = applied(terminal.outcome(&op.op_id));
                match &op.payload {
                    OpPayload::StepReport(report) if applied => {
                        reports.insert(op.op_id.as_str(), report);
                    }
                    OpPayload::RedemptionHold(hold) if applied => {
                        holds.insert(op.op_id.as_str(), hold);
                    }
                    OpPayload::Void(void) if applied => {
                        let earlier = voided.insert(void.hold_op_id.as_str(), op.op_id.as_str());
                        assert_eq!(earlier, None, "seed {seed}: a hold voided twice");
                    }
                    _ => {}
                }
            }
        }
        let mut ledgers: BTreeMap<i64, Ledger> = BTreeMap::new();
        let mut credited: BTreeMap<i64, i64> = BTreeMap::new();
        for op_id in central.journal() {
            let Some(report) = reports.get(op_id.as_str()) else {
                continue;
            };
            let member = parse_member_number(&report.member_number).expect("a member number");
            let birth_date = self.people[self.members[&member]].birth_date;
            let outcome = ledgers
                .entry(member)
                .or_insert_with(|| Ledger::new(birth_date))
                .apply(
                    policies(),
                    &StepReport {
                        reported_at: DateTime::parse_from_rfc3339(&report.reported_at)
                            .expect("a time"),
                        day: NaiveDate::parse_from_str(&report.day, "%Y-%m-%d").expect("a day"),
                        steps: report.steps,
                    },
                );
            *credited.entry(member).or_default() += outcome.points() as i64;
        }
        let mut spent: BTreeMap<i64, i64> = BTreeMap::new();
        for (op_id, hold) in &holds {
            let member = parse_member_number(&hold.member_no).expect("a member number");
            if !voided.contains_key(op_id) {
                *spent.entry(member).or_default() += hold.amount as i64;
            }
        }
        for hold_op_id in voided.keys() {
            assert!(
                holds.contains_key(hold_op_id),
                "seed {seed}: a void of {hold_op_id}, which was not posted"
            );
        }
        for (id, member) in central.members() {
            let credited = credited.get(&id).copied().unwrap_or(0);
            let spent = spent.get(&id).copied().unwrap_or(0);
            assert_eq!(
                (member.credited, member.spent),
                (credited, spent),
                "seed {seed}: member {id}"
            );
            assert_eq!(central.balance(id), Some(credited - spent));
            assert!(credited >= spent, "seed {seed}: member {id} overspent");
            tally.points += credited;
        }
        // The server's holds as the counter was told.
        for hold in central.holds() {
            let status = match (
                counter.outcome(&hold.op_id),
                voided.get(hold.op_id.as_str()),
            ) {
                (Some(Outcome::Rejected { .. }), _) => hold.status,
                (_, Some(void)) => {
                    assert_eq!(hold.void_op_id.as_deref(), Some(*void), "seed {seed}");
                    central_core::holds::HoldStatus::Voided
                }
                _ => central_core::holds::HoldStatus::Posted,
            };
            assert_eq!(hold.status, status, "seed {seed}: {}", hold.op_id);
        }
    }
}

fn simulate(seed: u64, tally: &mut Tally) -> Vec<String> {
    let mut sim = Sim::new(seed);
    sim.run();
    sim.check(tally);
    sim.server.central.journal().to_vec()
}

#[test]
fn every_accepted_operation_is_applied_exactly_once_over_many_seeds() {
    let seeds: u64 = std::env::var("PALPAL_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    // The seeds shared among the machine's cores; each run is its own.
    let threads = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..threads)
            .map(|first| {
                scope.spawn(move || {
                    let mut tally = Tally::default();
                    for seed in (first..seeds).step_by(threads as usize) {
                        simulate(seed, &mut tally);
                    }
                    tally
                })
            })
            .collect();
        runs.into_iter()
            .map(|run| {
                run.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut tally = Tally::default();
    for part in tallies {
        for (key, n) in part.outcomes {
            *tally.outcomes.entry(key).or_default() += n;
        }
        tally.points += part.points;
    }
    // Over the seeds, the rules were met in every way the terminals can meet them.
    let wanted = [
        (OpKind::Enrollment, "accepted"),
        (OpKind::Enrollment, "duplicate"),
        (OpKind::Enrollment, "invalid_payload"),
        (OpKind::Enrollment, "quota_exceeded"),
        (OpKind::StepReport, "accepted"),
        (OpKind::StepReport, "duplicate"),
        (OpKind::RedemptionHold, "accepted"),
        (OpKind::RedemptionHold, "insufficient_points"),
        (OpKind::RedemptionHold, "token_member_mismatch"),
        (OpKind::Void, "accepted"),
        (OpKind::Void, "unknown_hold"),
    ];
    if seeds >= 100 {
        for (kind, outcome) in wanted {
            let key = (kind.as_str(), outcome.to_owned());
            assert!(
                tally.outcomes.get(&key).is_some_and(|n| *n > 0),
                "no {} {outcome} in {seeds} seeds: {:?}",
                kind.as_str(),
                tally.outcomes
            );
        }
        assert!(tally.points > 0);
    }
}

#[test]
fn the_same_seed_replays_the_same_run() {
    // Determinism: the client's choices depend only on its inputs.
    let run = |seed| {
        let mut rng = Rng::new(seed);
        let mut client = Client::new(config(&mut rng), 42);
        for i in 0..30 {
            client.enqueue(Op {
                op_id: format!("op-{i}"),
                payload: OpPayload::Void(VoidPayload {
                    hold_op_id: format!("h-{i}"),
                    voided_at: "2025-12-02T10:00:00+09:00".to_owned(),
                }),
                seq: None,
            });
        }
        let mut trace = Vec::new();
        let mut now = Time::default();
        for _ in 0..20 {
            match client.poll_transmit(now) {
                Some(t) => {
                    trace.push((now.as_millis(), t.op_ids.len()));
                    client.handle_failure(now, t.seq, Failure::Connect);
                }
                None => now = client.poll_timeout().unwrap_or(now),
            }
        }
        trace
    };
    assert_eq!(run(9), run(9));
    assert!(run(9).len() > 3);
    // And a whole simulated run, server included.
    let journal = |seed| simulate(seed, &mut Tally::default());
    assert_eq!(journal(7), journal(7));
    assert!(!journal(7).is_empty());
}
