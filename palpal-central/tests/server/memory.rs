//! The in-memory server the simulation runs on (`central_core::memory::Central`) answers as
//! this server's store does. Seeded batches of every kind of operation, good and bad, sent
//! again and with ids reused, from two kiosks and a counter over an evening and the next
//! morning (quota leases, the counter's numbering told in pulls, signed steps in half the
//! seeds), go to the store these tests run on (SQLite, or PostgreSQL with
//! `PALPAL_TEST_DB=postgres`) and to the memory server: every answer agrees, and so do the
//! members, the balances and the operations kept.

use std::collections::BTreeMap;

use central_core::memory::Central;
use chrono::{NaiveDate, TimeZone as _};
use palpal_central::store::{precheck_day_proofs, Store, Write, WriteReply};
use splitmix::SplitMix64;
use sync_protocol::member::{member_number, parse_member_number, terminal_label};
use sync_protocol::wire::{OpResult, OpStatus, Operation, Role};
use watch_protocol::{WatchCa, WatchKey};

use super::*;

type Rng = SplitMix64;

const PEOPLE: [(&str, &str, &str); 8] = [
    ("김영희", "1950-04-01", "010-1234-5678"),
    ("이철수", "1948-11-30", "01087654321"),
    ("박민수", "1962-02-14", "010 2222 3333"),
    ("최지우", "1975-07-07", "01044445555"),
    ("정하나", "1939-01-20", "01066667777"),
    ("강동원", "1981-09-09", "01088889999"),
    ("조은비", "1955-05-05", "01012121212"),
    ("윤서준", "1990-12-31", "01034343434"),
];

/// Makes the operations: what terminals send, and what they send wrongly.
struct Script {
    rng: Rng,
    now: DateTime<Utc>,
    issuer: IssuerKey,
    ca: WatchCa,
    watches: Vec<(String, WatchKey, u32)>,
    signed: bool,
    made: u64,
    /// Every operation sent, with its terminal, to send again.
    sent: Vec<(i64, Operation)>,
    sign_ups: Vec<String>,
    /// The members the terminals learned of from the answers.
    members: Vec<i64>,
    /// The watches paired, as the answers said: member -> serial.
    paired: BTreeMap<i64, String>,
    /// The sign-ups applied, with their kiosk.
    enrolled: Vec<(i64, String)>,
    /// The holds posted and not voided.
    posted: Vec<String>,
    holds: Vec<String>,
    tokens: Vec<String>,
    seq: BTreeMap<i64, u64>,
}

const KIOSK: i64 = 1;
const COUNTER: i64 = 2;
const WEST: i64 = 3;

/// A time as a terminal in Seoul writes it.
fn kst(at: DateTime<Utc>) -> String {
    let local = at + chrono::Duration::hours(9);
    format!("{}+09:00", local.format("%Y-%m-%dT%H:%M:%S"))
}

impl Script {
    fn id(&mut self, prefix: &str) -> String {
        self.made += 1;
        format!("{prefix}-{}", self.made)
    }

    fn numbered(&mut self, terminal: i64) -> u64 {
        let seq = self.seq.entry(terminal).or_insert(0);
        *seq += 1;
        *seq
    }

    /// A member the terminals know of, now and then a number that is nobody's (yet).
    fn member(&mut self) -> i64 {
        match self.rng.pick(&self.members) {
            Some(member) if !self.rng.chance(10) => *member,
            _ => 1 + i64::try_from(self.rng.below(12)).unwrap_or(0),
        }
    }

    /// What the answers tell the terminals: members' numbers, watches paired.
    fn learn(&mut self, terminal: i64, operations: &[Operation], results: &[OpResult]) {
        for (op, result) in operations.iter().zip(results) {
            match (op.kind.as_str(), result.status) {
                ("enrollment", OpStatus::Accepted | OpStatus::Duplicate) => {
                    self.enrolled.push((terminal, op.op_id.clone()));
                }
                ("redemption_hold", OpStatus::Accepted) => self.posted.push(op.op_id.clone()),
                ("void", OpStatus::Accepted) => {
                    let hold = op.payload["hold_op_id"].as_str();
                    self.posted.retain(|posted| Some(posted.as_str()) != hold);
                }
                _ => {}
            }
            let member = result
                .member_number
                .as_deref()
                .and_then(parse_member_number);
            let (Some(member), false) = (member, result.status == OpStatus::Rejected) else {
                continue;
            };
            match op.kind.as_str() {
                "enrollment" if !self.members.contains(&member) => self.members.push(member),
                "watch_pairing" => {
                    if let Some(serial) = op.payload["serial"].as_str() {
                        self.paired.retain(|_, paired| paired != serial);
                        self.paired.insert(member, serial.to_owned());
                    }
                }
                _ => {}
            }
        }
    }

    fn token(&mut self, member: i64, at: DateTime<Utc>) -> String {
        let nonce = self.rng.next_u64().to_le_bytes();
        let member = MemberNo(u64::try_from(member).unwrap_or(0));
        let token = self
            .issuer
            .issue_dynamic(member, at, 120, nonce)
            .map(|t| t.to_text())
            .unwrap_or_default();
        self.tokens.push(token.clone());
        token
    }

    fn sign_up(&mut self) -> Operation {
        let (name, birth, phone) = *self.rng.pick(&PEOPLE).unwrap_or(&PEOPLE[0]);
        let phone = if self.rng.chance(10) { "0101" } else { phone };
        let mut payload = json!({ "name": name, "birth_date": birth, "phone": phone });
        let today = points_core::kst_day(self.now);
        match self.rng.below(10) {
            0 => payload["day"] = json!((today - chrono::Days::new(1)).to_string()),
            1 => payload["day"] = json!((today - chrono::Days::new(9)).to_string()),
            _ => {}
        }
        let op_id = self.id("e");
        self.sign_ups.push(op_id.clone());
        op(&op_id, "enrollment", payload, None)
    }

    fn steps(&mut self) -> Operation {
        let member = self.member();
        let today = points_core::kst_day(self.now);
        let day = if self.rng.chance(5) {
            today + chrono::Days::new(1)
        } else {
            today - chrono::Days::new(self.rng.below(4))
        };
        let count = 2_000 + u32::try_from(self.rng.below(10_000)).unwrap_or(0);
        let at =
            self.now - chrono::Duration::seconds(i64::try_from(self.rng.below(3_600)).unwrap_or(0));
        let mut payload = json!({
            "member_number": member_number(member),
            "day": day.to_string(),
            "steps": count,
            "reported_at": kst(at),
        });
        if self.signed && self.rng.chance(80) {
            // The member's own watch mostly, another now and then.
            let own = self.paired.get(&member).filter(|_| !self.rng.chance(10));
            let index =
                match own.and_then(|serial| self.watches.iter().position(|w| &w.0 == serial)) {
                    Some(index) => index,
                    None => usize::try_from(self.rng.below(self.watches.len() as u64)).unwrap_or(0),
                };
            let (serial, key, counter) = &mut self.watches[index];
            // Now and then a proof sent before, as a replay.
            if !self.rng.chance(10) {
                *counter += 1;
            }
            let signed_at = u32::try_from(at.timestamp()).unwrap_or(0);
            let certificate = self.ca.certify(serial, key.public_key());
            let proof = key.sign_day(serial, day, count, *counter, signed_at);
            if let (Ok(certificate), Ok(proof)) = (certificate, proof) {
                payload["watch"] = json!({
                    "serial": serial,
                    "certificate": watch_protocol::proof::hex(&certificate.encode().unwrap_or_default()),
                    "counter": *counter,
                    "signed_at": signed_at,
                    "signature": watch_protocol::proof::hex(&proof.signature),
                });
            }
        }
        let op_id = self.id("s");
        op(&op_id, "step_report", payload, None)
    }

    fn hold(&mut self, terminal: i64) -> Operation {
        let member = self.member();
        let at =
            self.now - chrono::Duration::seconds(i64::try_from(self.rng.below(600)).unwrap_or(0));
        let amount = if self.rng.chance(5) {
            200_000
        } else {
            50 + self.rng.below(250)
        };
        let token = match self.rng.below(10) {
            0 if !self.tokens.is_empty() => {
                self.rng.pick(&self.tokens).cloned().unwrap_or_default()
            }
            1 => {
                let other = self.member();
                self.token(other, at)
            }
            2 => "PP1:NOTATOKEN".to_owned(),
            _ => self.token(member, at),
        };
        let label = if self.rng.chance(5) { WEST } else { terminal };
        let op_id = self.id("h");
        self.holds.push(op_id.clone());
        let seq = self.numbered(terminal);
        op(
            &op_id,
            "redemption_hold",
            json!({
                "member_no": member_number(member),
                "amount": amount,
                "token": token,
                "held_at": kst(at),
                "terminal": terminal_label(label),
            }),
            Some(seq),
        )
    }

    fn void(&mut self, terminal: i64) -> Operation {
        let hold = match self.rng.below(10) {
            0 => "h-none".to_owned(),
            1 | 2 => self.rng.pick(&self.holds).cloned().unwrap_or_default(),
            _ => self.rng.pick(&self.posted).cloned().unwrap_or_default(),
        };
        let op_id = self.id("v");
        let seq = self.numbered(terminal);
        op(
            &op_id,
            "void",
            json!({ "hold_op_id": hold, "voided_at": kst(self.now) }),
            Some(seq),
        )
    }

    fn pairing(&mut self, terminal: i64) -> Operation {
        let serial = format!("PW-{}", 1 + self.rng.below(5));
        let op_id = self.id("p");
        if terminal == COUNTER {
            let member = self.member();
            let token = self.token(member, self.now);
            let seq = self.numbered(terminal);
            op(
                &op_id,
                "watch_pairing",
                json!({
                    "serial": serial,
                    "member_number": member_number(member),
                    "token": token,
                    "paired_at": kst(self.now),
                }),
                Some(seq),
            )
        } else {
            let own: Vec<String> = self
                .enrolled
                .iter()
                .filter(|(kiosk, _)| *kiosk == terminal)
                .map(|(_, op_id)| op_id.clone())
                .collect();
            let enrollment = match self.rng.below(10) {
                0 => "e-none".to_owned(),
                1 => self.rng.pick(&self.sign_ups).cloned().unwrap_or_default(),
                _ => self.rng.pick(&own).cloned().unwrap_or_default(),
            };
            op(
                &op_id,
                "watch_pairing",
                json!({ "serial": serial, "enrollment_op_id": enrollment }),
                None,
            )
        }
    }

    fn wrong_pin(&mut self) -> Operation {
        let member = self.member();
        let op_id = self.id("w");
        op(
            &op_id,
            "wrong_pin",
            json!({ "member_number": member_number(member), "serial": 1, "at": kst(self.now) }),
            None,
        )
    }

    /// The next operation from `terminal`: its own kinds mostly, now and then another
    /// role's, an operation sent before (again, or its id with other content), or a kind
    /// nobody knows.
    fn next(&mut self, terminal: i64) -> Operation {
        let roll = self.rng.below(100);
        if roll < 12 {
            if let Some((_, earlier)) = self.rng.pick(&self.sent).cloned() {
                if roll < 9 {
                    return earlier;
                }
                let mut reused = self.steps();
                reused.op_id = earlier.op_id;
                return reused;
            }
        }
        if roll == 99 {
            let op_id = self.id("x");
            return op(&op_id, "gift", json!({}), None);
        }
        if terminal == COUNTER {
            match roll {
                0..=36 => self.steps(),
                37..=66 => self.hold(terminal),
                67..=81 => self.void(terminal),
                82..=88 => self.wrong_pin(),
                _ => self.pairing(terminal),
            }
        } else {
            match roll {
                0..=49 => self.sign_up(),
                50..=74 => self.steps(),
                75..=94 => self.pairing(terminal),
                95 => self.void(terminal),
                _ => self.hold(terminal),
            }
        }
    }
}

fn op(op_id: &str, kind: &str, payload: Value, seq: Option<u64>) -> Operation {
    Operation {
        op_id: op_id.to_owned(),
        kind: kind.to_owned(),
        payload,
        seq,
    }
}

/// The store's answer to a batch.
fn store_sync(
    store: &mut dyn Store,
    terminal: i64,
    nonce: &mut u64,
    operations: &[Operation],
    now: DateTime<Utc>,
) -> Result<Vec<OpResult>, Box<dyn std::error::Error>> {
    *nonce += 1;
    let write = Write::Sync {
        terminal,
        nonce: format!("nonce-{nonce:020}"),
        operations: operations.to_vec(),
        prechecked: precheck_day_proofs(operations),
    };
    match store.commit_group(&[write], now)?.pop() {
        Some(WriteReply::Synced(results)) => Ok(results),
        other => Err(format!("the store answered {other:?}").into()),
    }
}

/// One seed's run against `store`, on `test_db`.
fn run(seed: u64, store: &mut dyn Store, test_db: &TestDb) -> TestResult {
    let policies = published_policies()?;
    let mut central = Central::new(policies);
    // 2025-12-03 22:30 in Seoul: the run goes past midnight.
    let start = Utc
        .with_ymd_and_hms(2025, 12, 3, 13, 30, 0)
        .single()
        .ok_or("a time")?;
    for (id, (role, site)) in [
        (Role::Kiosk, "east"),
        (Role::Counter, "east"),
        (Role::Kiosk, "west"),
    ]
    .into_iter()
    .enumerate()
    {
        let code = [u8::try_from(id)? + 1; 32];
        let terminal = store.add_terminal(site, role, &code, start)?;
        store.commit_group(
            &[Write::Enroll {
                code_hash: code,
                public_key: SigningKey::from_bytes(&[u8::try_from(id)? + 9; 32])
                    .verifying_key()
                    .to_bytes(),
                name: format!("terminal {}", id + 1),
            }],
            start,
        )?;
        assert_eq!(central.add_terminal(role, site), terminal.id);
    }
    let seed_bytes = [u8::try_from(seed % 200)? + 1; 32];
    let issuer_public = IssuerKey::from_seed(1, seed_bytes).public_key();
    let key_id = store.add_redemption_key(&issuer_public, start)?;
    assert_eq!(central.add_redemption_key(&issuer_public)?, key_id);
    for (day, places) in [("2025-12-03", 5), ("2025-12-04", 3)] {
        let day = NaiveDate::parse_from_str(day, "%Y-%m-%d")?;
        store.set_quota(day, "east", places)?;
        central.set_quota(day, "east", places);
    }
    let ca = WatchCa::from_seed([3; 32]);
    let signed = seed % 2 == 1;
    if signed {
        store.add_watch_authority(&ca.public_key(), start)?;
        central.trust_watch_authority(ca.public_key());
    }
    let mut script = Script {
        rng: Rng::new(seed),
        now: start,
        issuer: IssuerKey::from_seed(key_id, seed_bytes),
        ca,
        watches: (1..=5u8)
            .map(|n| (format!("PW-{n}"), WatchKey::from_seed([n + 20; 32]), 0))
            .collect(),
        signed,
        made: 0,
        sent: Vec::new(),
        sign_ups: Vec::new(),
        members: Vec::new(),
        paired: BTreeMap::new(),
        enrolled: Vec::new(),
        posted: Vec::new(),
        holds: Vec::new(),
        tokens: Vec::new(),
        seq: BTreeMap::new(),
    };
    let mut nonce = 0;
    let mut day = points_core::kst_day(start);
    for batch in 0..60 {
        script.now += chrono::Duration::seconds(i64::try_from(script.rng.below(600))?);
        let today = points_core::kst_day(script.now);
        // Each terminal's first pull of a day tells the server its number so far.
        if today != day || script.rng.chance(5) {
            day = today;
            for terminal in [KIOSK, COUNTER, WEST] {
                let sequence = script.seq.get(&terminal).copied().unwrap_or(0);
                let write = Write::Contact {
                    terminal,
                    day,
                    sequence,
                };
                store.commit_group(&[write], script.now)?;
                central.contact(terminal, day, sequence);
            }
        }
        let terminal = *script
            .rng
            .pick(&[KIOSK, COUNTER, COUNTER, WEST])
            .ok_or("a terminal")?;
        let size = 1 + script.rng.below(5);
        let mut operations: Vec<Operation> = (0..size).map(|_| script.next(terminal)).collect();
        // Now and then an operation twice in one batch (a terminal's outbox sent again
        // before its answer came), which the store answers from what it just applied.
        if script.rng.chance(15) {
            if let Some(again) = script.rng.pick(&operations).cloned() {
                operations.push(again);
            }
        }
        let stored = store_sync(store, terminal, &mut nonce, &operations, script.now)?;
        let remembered = central.apply(terminal, &operations, script.now)?;
        script.learn(terminal, &operations, &stored);
        assert_eq!(
            stored, remembered,
            "seed {seed}, batch {batch} from T-{terminal}: {operations:#?}"
        );
        script
            .sent
            .extend(operations.into_iter().map(|op| (terminal, op)));
    }
    // The members, their balances and the operations kept.
    let [members] = test_db.row("SELECT COUNT(*) FROM members")?[..] else {
        return Err("a count".into());
    };
    assert_eq!(
        usize::try_from(members)?,
        central.members().count(),
        "seed {seed}"
    );
    for (id, member) in central.members() {
        let stored = test_db.row(&format!(
            "SELECT credited, spent FROM balances WHERE member_id = {id}"
        ))?;
        assert_eq!(
            stored,
            [member.credited, member.spent],
            "seed {seed}, member {id}"
        );
    }
    let [operations] = test_db.row("SELECT COUNT(*) FROM operations")?[..] else {
        return Err("a count".into());
    };
    assert_eq!(
        usize::try_from(operations)?,
        central.journal().len(),
        "seed {seed}"
    );
    Ok(())
}

#[test]
fn the_memory_server_answers_as_the_store_does() -> TestResult {
    let seeds = 8;
    let cluster = if on_postgres() {
        Some(test_postgres::Cluster::start()?)
    } else {
        None
    };
    for seed in 0..seeds {
        let dir = tempfile::tempdir()?;
        let policies = Arc::new(published_policies()?);
        let (backend, test_db): (Box<dyn Backend>, TestDb) = match &cluster {
            None => {
                let db = dir.path().join("central.db");
                (
                    Box::new(SqliteBackend::new(&db, policies)),
                    TestDb::Sqlite(db),
                )
            }
            Some(cluster) => {
                let name = format!("memory_{seed}");
                cluster.psql(
                    "postgres",
                    &format!("CREATE DATABASE {name} OWNER {}", test_postgres::USER),
                )?;
                let base = cluster.url();
                let (server, _) = base.rsplit_once('/').ok_or("a database URL")?;
                let url = format!("{server}/{name}");
                (
                    Box::new(PostgresBackend::new(&url, policies, postgres_data_key())),
                    TestDb::PostgresAt(url),
                )
            }
        };
        let mut store = backend.open()?;
        run(seed, store.as_mut(), &test_db)?;
    }
    Ok(())
}
