//! A central server held in memory: the state `palpal-central`'s stores keep (the operations
//! applied, members, quota leases, ledgers and balances, holds and voids, watch pairings,
//! wrong PINs, redemption keys and revocations, trusted watch authorities, what terminals told
//! of their numbering), in ordered maps, and a batch applied to it through this crate's rules
//! in the order the stores check them, so that it answers as they do.
//!
//! It is for the seeded simulation and tests, where a server must be as fast and as
//! deterministic as the terminal's own state machine: nothing is durable, personal data is
//! kept in the clear, a member is found again by name, birth date and phone as written. It is
//! not an adapter: no clock (`now` is an argument), no IO, no entropy.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use merchant_core::redemption::OfflineLimits;
use points_core::{Ledger, PolicySet};
use redemption_token::{KeySet, MemberNo, PublishedKey, Revocations, RevokedCard};
use sync_protocol::member::{member_number, terminal_label};
use sync_protocol::wire::{
    EnrollmentPayload, OpPayload, OpResult, OpStatus, Operation, RedemptionHoldPayload,
    RejectReason, Role, StepReportPayload, VoidPayload, WatchPairingPayload, WrongPinPayload,
};

use crate::holds::{self, HoldStatus};
use crate::pairing::{self, Names, Pairing};
use crate::steps::{self, CertifiedWatches};
use crate::{admit, answer_again, cards, enroll, payload_bytes, Error, MAX_OP_ID_CHARS};

/// A terminal as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    /// Its number (`T-000001`).
    pub id: i64,
    /// What it may send.
    pub role: Role,
    /// The site its kiosk's sign-ups count against.
    pub site: String,
}

/// A member, as the server keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The name, as the sign-up rule left it.
    pub name: String,
    /// The birth date.
    pub birth_date: NaiveDate,
    /// The phone number's digits.
    pub phone: String,
    /// The kiosk that signed them up.
    pub terminal: i64,
    /// The sign-up's operation id.
    pub op_id: String,
    /// Whether they may no longer spend points.
    pub revoked: bool,
    /// Points credited by their step reports.
    pub credited: i64,
    /// Points spent in posted holds.
    pub spent: i64,
    /// Their ledger as `points_core::Ledger::to_snapshot` gives it, after their first report.
    pub ledger: Option<Vec<u8>>,
}

impl Member {
    /// Points available: credited less spent.
    pub fn balance(&self) -> i64 {
        self.credited - self.spent
    }
}

/// A step report the server credited (or kept, earning nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// Its operation.
    pub op_id: String,
    /// The member.
    pub member: i64,
    /// The member's day.
    pub day: NaiveDate,
    /// The day's steps.
    pub steps: u32,
    /// The time it was taken at, within the server's bounds.
    pub reported_at: DateTime<FixedOffset>,
    /// The points it earned.
    pub points: u64,
}

/// A redemption hold as the server recorded it: posted, voided, or refused and kept as
/// evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Its operation.
    pub op_id: String,
    /// The member.
    pub member: i64,
    /// The points.
    pub amount: u64,
    /// The token's id (`holds::token_id`).
    pub token_id: String,
    /// When the counter took it.
    pub held_at: DateTime<FixedOffset>,
    /// Its day in Asia/Seoul.
    pub day: NaiveDate,
    /// The counter.
    pub terminal: i64,
    /// How it stands.
    pub status: HoldStatus,
    /// The member's balance before it.
    pub balance_before: i64,
    /// The card's number, for a hold made with a member card.
    pub card_serial: Option<u16>,
    /// The counter's number for it.
    pub seq: Option<i64>,
    /// The void that gave its points back.
    pub void_op_id: Option<String>,
}

/// An operation the server applied (accepted, or a duplicate it answered), as it remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Applied {
    terminal: i64,
    kind: String,
    content: Vec<u8>,
    result: OpResult,
}

/// A quota lease: a site's places for sign-ups on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Places.
    pub places: i64,
    /// Places taken.
    pub used: i64,
}

/// Everything a batch may change.
#[derive(Debug, Default)]
struct State {
    terminals: BTreeMap<i64, Terminal>,
    operations: BTreeMap<String, Applied>,
    journal: Vec<String>,
    members: BTreeMap<i64, Member>,
    people: BTreeMap<(String, NaiveDate, String), i64>,
    leases: BTreeMap<(NaiveDate, String), Lease>,
    published: Vec<PublishedKey>,
    keys: KeySet,
    revoked_cards: BTreeSet<(i64, u16)>,
    authorities: Vec<[u8; 32]>,
    /// Watch serial -> member, for pairings not ended.
    watches: BTreeMap<String, i64>,
    /// Member -> watch serial, the same pairings the other way.
    watch_of: BTreeMap<i64, String>,
    /// Watch proofs (serial, counter) credited.
    proofs: BTreeSet<(String, u32)>,
    step_reports: Vec<StepRecord>,
    holds: BTreeMap<String, Hold>,
    /// (member, card, day) -> wrong PINs.
    pin_failures: BTreeMap<(i64, u16, NaiveDate), u32>,
    locked_cards: BTreeSet<(i64, u16, NaiveDate)>,
    /// (terminal, day) -> the first operation number it told that day.
    contacts: BTreeMap<(i64, NaiveDate), i64>,
}

/// The central server in memory. See the module documentation.
#[derive(Debug)]
pub struct Central {
    policies: PolicySet,
    state: State,
    certified: CertifiedWatches,
}

impl Central {
    /// A server with no terminals, members or keys, rating points with `policies`.
    pub fn new(policies: PolicySet) -> Central {
        Central {
            policies,
            state: State::default(),
            certified: CertifiedWatches::default(),
        }
    }

    /// Adds a terminal of `role` at `site` (enrolled: it may send at once); its number.
    pub fn add_terminal(&mut self, role: Role, site: &str) -> i64 {
        let id = self
            .state
            .terminals
            .keys()
            .next_back()
            .map_or(1, |last| last + 1);
        self.state.terminals.insert(
            id,
            Terminal {
                id,
                role,
                site: site.to_owned(),
            },
        );
        id
    }

    /// Sets `site`'s quota lease for sign-ups on `day` to `places` (the places taken stay).
    pub fn set_quota(&mut self, day: NaiveDate, site: &str, places: u32) -> Lease {
        let lease = self
            .state
            .leases
            .entry((day, site.to_owned()))
            .or_insert(Lease { places: 0, used: 0 });
        lease.places = i64::from(places);
        *lease
    }

    /// Publishes a redemption key; its key id (one more than the highest so far, from 1), which
    /// the issuing key must carry.
    pub fn add_redemption_key(&mut self, public_key: &[u8; 32]) -> Result<u16, Error> {
        let next = self
            .state
            .published
            .iter()
            .map(|key| key.key_id)
            .max()
            .map_or(Some(1), |last| last.checked_add(1))
            .ok_or(Error::KeyIdsExhausted)?;
        let mut published = self.state.published.clone();
        published.push(holds::published_key(next, public_key, None));
        self.state.keys = KeySet::new(&published).map_err(|_| Error::InvalidRedemptionKey(next))?;
        self.state.published = published;
        Ok(next)
    }

    /// Trusts a watch certificate authority: from now on steps count only as signed by a
    /// watch it certified, paired to the member. Whether it was not trusted before.
    pub fn trust_watch_authority(&mut self, public_key: [u8; 32]) -> bool {
        if self.state.authorities.contains(&public_key) {
            return false;
        }
        self.state.authorities.push(public_key);
        true
    }

    /// Revokes a member: they may no longer spend points. Whether there is such a member.
    pub fn revoke_member(&mut self, member: i64) -> bool {
        self.state
            .members
            .get_mut(&member)
            .map(|m| m.revoked = true)
            .is_some()
    }

    /// Revokes a member's card `serial` (lost or replaced). Whether there is such a member.
    pub fn revoke_card(&mut self, member: i64, serial: u16) -> bool {
        if !self.state.members.contains_key(&member) {
            return false;
        }
        self.state.revoked_cards.insert((member, serial));
        true
    }

    /// Remembers the operation number `terminal` told (in a pull) on the server's `day`, if it
    /// is the first it told that day: the evidence by which a hold, void or pairing numbered
    /// above it was made on that day or later.
    pub fn contact(&mut self, terminal: i64, day: NaiveDate, sequence: u64) {
        self.state
            .contacts
            .entry((terminal, day))
            .or_insert(i64::try_from(sequence).unwrap_or(i64::MAX));
    }

    /// Applies a batch from `terminal` received at `now`, in order; one result per operation.
    /// An operation applied before gets its first answer again; a rejected one is not
    /// remembered. A batch from no terminal changes nothing; [`Error::Inconsistent`] is a
    /// state that contradicts itself (a fault of this server's, never of the batch), after
    /// which the server is not to be used.
    pub fn apply(
        &mut self,
        terminal: i64,
        operations: &[Operation],
        now: DateTime<Utc>,
    ) -> Result<Vec<OpResult>, Error> {
        let terminal = self
            .state
            .terminals
            .get(&terminal)
            .cloned()
            .ok_or(Error::UnknownTerminal(terminal))?;
        operations
            .iter()
            .map(|op| self.apply_operation(&terminal, op, now))
            .collect()
    }

    /// The first result of an operation applied, if it was.
    pub fn result(&self, op_id: &str) -> Option<&OpResult> {
        self.state
            .operations
            .get(op_id)
            .map(|applied| &applied.result)
    }

    /// The ids of the operations applied, in the order they were.
    pub fn journal(&self) -> &[String] {
        &self.state.journal
    }

    /// How many times the operation was applied (recorded as applied, not answered again).
    pub fn times_applied(&self, op_id: &str) -> usize {
        self.state.journal.iter().filter(|id| *id == op_id).count()
    }

    /// A member by id.
    pub fn member(&self, id: i64) -> Option<&Member> {
        self.state.members.get(&id)
    }

    /// Every member, by id.
    pub fn members(&self) -> impl Iterator<Item = (i64, &Member)> + '_ {
        self.state.members.iter().map(|(id, member)| (*id, member))
    }

    /// The member with this name, birth date and phone number (its digits), if any.
    pub fn find_member(&self, name: &str, birth_date: NaiveDate, phone: &str) -> Option<i64> {
        let phone: String = phone.chars().filter(char::is_ascii_digit).collect();
        self.state
            .people
            .get(&(name.to_owned(), birth_date, phone))
            .copied()
    }

    /// A member's points available (credited less spent), if there is such a member.
    pub fn balance(&self, member: i64) -> Option<i64> {
        self.state.members.get(&member).map(Member::balance)
    }

    /// The points a member's ledger holds, read back from its snapshot (0 before any report).
    pub fn ledger_total(&self, member: i64) -> Result<Option<u64>, Error> {
        let Some(found) = self.state.members.get(&member) else {
            return Ok(None);
        };
        Ok(Some(ledger_of(member, found)?.total()))
    }

    /// The step reports taken, in the order they were.
    pub fn step_reports(&self) -> &[StepRecord] {
        &self.state.step_reports
    }

    /// A hold by its operation id.
    pub fn hold(&self, op_id: &str) -> Option<&Hold> {
        self.state.holds.get(op_id)
    }

    /// Every hold recorded (posted, voided, or kept as evidence), by operation id.
    pub fn holds(&self) -> impl Iterator<Item = &Hold> + '_ {
        self.state.holds.values()
    }

    /// A site's quota lease for a day.
    pub fn lease(&self, day: NaiveDate, site: &str) -> Option<Lease> {
        self.state.leases.get(&(day, site.to_owned())).copied()
    }

    /// The member a watch is paired to now.
    pub fn watch_holder(&self, serial: &str) -> Option<i64> {
        self.state.watches.get(serial).copied()
    }

    /// Wrong PINs typed for a member's card on a day, and whether that locked it.
    pub fn wrong_pins(&self, member: i64, serial: u16, day: NaiveDate) -> (u32, bool) {
        let key = (member, serial, day);
        (
            self.state.pin_failures.get(&key).copied().unwrap_or(0),
            self.state.locked_cards.contains(&key),
        )
    }

    /// One operation, as `palpal-central`'s store applies it: an id out of bounds first, then
    /// an id applied before, then the rules of its kind; recorded unless rejected.
    fn apply_operation(
        &mut self,
        terminal: &Terminal,
        op: &Operation,
        now: DateTime<Utc>,
    ) -> Result<OpResult, Error> {
        if op.op_id.is_empty() || op.op_id.len() > MAX_OP_ID_CHARS {
            return Ok(OpResult::rejected(&op.op_id, RejectReason::InvalidPayload));
        }
        let content = payload_bytes(op);
        if let Some(earlier) = self.state.operations.get(&op.op_id) {
            return Ok(answer_again(
                &op.op_id,
                terminal.id,
                &content,
                (earlier.terminal, &earlier.content, earlier.result.clone()),
            ));
        }
        let op_id = op.op_id.as_str();
        let state = &mut self.state;
        let result = match admit(op, terminal.role) {
            Err(reason) => OpResult::rejected(op_id, reason),
            Ok(OpPayload::Enrollment(payload)) => {
                state.enroll_member(terminal, op_id, &payload, now)
            }
            Ok(OpPayload::StepReport(payload)) => {
                state.record_steps(&self.policies, &mut self.certified, op_id, &payload, now)?
            }
            Ok(OpPayload::RedemptionHold(payload)) => {
                state.hold(&self.policies, terminal, op, &payload, now)?
            }
            Ok(OpPayload::Void(payload)) => state.void(terminal, op_id, &payload, op.seq, now)?,
            Ok(OpPayload::WrongPin(payload)) => state.wrong_pin(op_id, &payload, now),
            Ok(OpPayload::WatchPairing(payload)) => state.pair_watch(terminal, op, &payload, now),
        };
        if result.status != OpStatus::Rejected {
            // Rejections are not remembered: the same operation sent again is judged again.
            state.operations.insert(
                op.op_id.clone(),
                Applied {
                    terminal: terminal.id,
                    kind: op.kind.clone(),
                    content,
                    result: result.clone(),
                },
            );
            state.journal.push(op.op_id.clone());
        }
        Ok(result)
    }
}

/// A member's ledger, from their snapshot or new.
fn ledger_of(id: i64, member: &Member) -> Result<Ledger, Error> {
    match &member.ledger {
        Some(bytes) => Ledger::from_snapshot(member.birth_date, bytes)
            .map_err(|e| Error::Inconsistent(format!("member {id}'s ledger: {e}"))),
        None => Ok(Ledger::new(member.birth_date)),
    }
}

impl State {
    fn enroll_member(
        &mut self,
        terminal: &Terminal,
        op_id: &str,
        payload: &EnrollmentPayload,
        now: DateTime<Utc>,
    ) -> OpResult {
        let claim = match enroll::read(payload, now) {
            Ok(claim) => claim,
            Err(reason) => return OpResult::rejected(op_id, reason),
        };
        let person = (claim.name.clone(), claim.birth_date, claim.phone.clone());
        let (id, status) = match self.people.get(&person) {
            Some(id) => (*id, OpStatus::Duplicate),
            None => {
                let facts = self.lease_facts(&terminal.site, claim.day, now);
                match enroll::place(&facts) {
                    Ok(enroll::Place::FromLease) => {
                        if let Some(lease) =
                            self.leases.get_mut(&(claim.day, terminal.site.clone()))
                        {
                            lease.used += 1;
                        }
                    }
                    Ok(enroll::Place::Free) => {}
                    Err(reason) => return OpResult::rejected(op_id, reason),
                }
                let id = self.members.keys().next_back().map_or(1, |last| last + 1);
                self.members.insert(
                    id,
                    Member {
                        name: claim.name,
                        birth_date: claim.birth_date,
                        phone: claim.phone,
                        terminal: terminal.id,
                        op_id: op_id.to_owned(),
                        revoked: false,
                        credited: 0,
                        spent: 0,
                        ledger: None,
                    },
                );
                self.people.insert(person, id);
                (id, OpStatus::Accepted)
            }
        };
        let mut result = OpResult::accepted(op_id);
        result.status = status;
        result.member_number = Some(member_number(id));
        result
    }

    /// What the quota leases say of a sign-up at `site` on `day`, made at `now`.
    fn lease_facts(&self, site: &str, day: NaiveDate, now: DateTime<Utc>) -> enroll::LeaseFacts {
        let today = points_core::kst_day(now);
        let leased_from = |from: NaiveDate| {
            self.leases
                .range((from, String::new())..)
                .next()
                .map(|((day, _), _)| *day)
        };
        let since = enroll::quota_since_days(day, today);
        enroll::LeaseFacts {
            lease: self
                .leases
                .get(&(day, site.to_owned()))
                .map(|lease| (lease.places, lease.used)),
            day_under_quota: leased_from(day) == Some(day),
            quota_since: leased_from(*since.start()).is_some_and(|first| first <= *since.end()),
        }
    }

    fn record_steps(
        &mut self,
        policies: &PolicySet,
        certified: &mut CertifiedWatches,
        op_id: &str,
        payload: &StepReportPayload,
        now: DateTime<Utc>,
    ) -> Result<OpResult, Error> {
        let claim = match steps::read(payload) {
            Ok(claim) => claim,
            Err(reason) => return Ok(OpResult::rejected(op_id, reason)),
        };
        let member_id = claim.member;
        let Some(member) = self.members.get(&member_id) else {
            return Ok(OpResult::rejected(op_id, RejectReason::UnknownMember));
        };
        let ledger = ledger_of(member_id, member)?;
        let (paired, proof_seen) = match (&claim.watch, self.authorities.is_empty()) {
            (Some((serial, counter)), false) => (
                self.watches.get(serial) == Some(&member_id),
                self.proofs.contains(&(serial.clone(), *counter)),
            ),
            _ => (false, false),
        };
        let state = steps::StepState {
            ledger,
            snapshot: member.ledger.as_deref(),
            authorities: &self.authorities,
            paired,
            proof_seen,
        };
        let credit = match steps::decide(payload, &claim, state, policies, certified, false, now) {
            Ok(credit) => credit,
            Err(reason) => return Ok(OpResult::rejected(op_id, reason)),
        };
        if let Some(proof) = &credit.proof {
            self.proofs.insert(proof.clone());
        }
        self.step_reports.push(StepRecord {
            op_id: op_id.to_owned(),
            member: member_id,
            day: claim.day,
            steps: claim.steps,
            reported_at: credit.reported_at,
            points: credit.points,
        });
        if let Some(member) = self.members.get_mut(&member_id) {
            member.credited += i64::try_from(credit.points).unwrap_or(i64::MAX);
            member.ledger = Some(credit.ledger);
        }
        let mut result = OpResult::accepted(op_id);
        result.member_number = Some(member_number(member_id));
        result.points = Some(credit.points);
        result.ignored = credit.ignored.map(|i| i.as_str().to_owned());
        Ok(result)
    }

    /// The member an applied `enrollment` of `terminal` created (or found).
    fn enrolled_member(&self, terminal: &Terminal, op_id: &str) -> Option<i64> {
        self.operations
            .get(op_id)
            .filter(|applied| applied.terminal == terminal.id && applied.kind == "enrollment")
            .and_then(|applied| applied.result.member_number.as_deref())
            .and_then(sync_protocol::member::parse_member_number)
    }

    /// Whether member `id` is revoked; `None` when there is no such member.
    fn member_revoked(&self, id: Option<i64>) -> Option<bool> {
        id.and_then(|id| self.members.get(&id)).map(|m| m.revoked)
    }

    /// What revokes `member`'s token: the member, or one of their cards.
    fn revocations_of(&self, member: i64) -> Revocations {
        let mut revocations = Revocations::default();
        let number = MemberNo(u64::try_from(member).unwrap_or(0));
        if self.members.get(&member).is_some_and(|m| m.revoked) {
            revocations.members.insert(number);
        }
        for (_, serial) in self.revoked_cards.range((member, 0)..=(member, u16::MAX)) {
            revocations.cards.insert(RevokedCard {
                member: number,
                serial: *serial,
            });
        }
        revocations
    }

    /// The lowest operation number `terminal` told on any day after `day`.
    fn told_after(&self, terminal: i64, day: NaiveDate) -> Option<i64> {
        self.contacts
            .range((
                Bound::Excluded((terminal, day)),
                Bound::Included((terminal, NaiveDate::MAX)),
            ))
            .map(|(_, sequence)| *sequence)
            .min()
    }

    fn pair_watch(
        &mut self,
        terminal: &Terminal,
        op: &Operation,
        payload: &WatchPairingPayload,
        now: DateTime<Utc>,
    ) -> OpResult {
        let op_id = op.op_id.as_str();
        let rejected = |reason| OpResult::rejected(op_id, reason);
        let claim = match pairing::read(payload) {
            Ok(claim) => claim,
            Err(reason) => return rejected(reason),
        };
        let wanted = match &claim.names {
            Names::Member { member, .. } => *member,
            Names::Enrollment(enrollment) => match self.enrolled_member(terminal, enrollment) {
                Some(id) => Some(id),
                None => return rejected(RejectReason::UnknownEnrollment),
            },
        };
        let member_id = match holds::member(wanted, self.member_revoked(wanted)) {
            Ok(id) => id,
            Err(reason) => return rejected(reason),
        };
        if let Names::Member { proof, .. } = &claim.names {
            let Some((token, paired_at)) = proof else {
                return rejected(RejectReason::PairingNeedsToken);
            };
            let told = match op.seq {
                Some(_) => self.told_after(terminal.id, points_core::kst_day(*paired_at)),
                None => None,
            };
            if let Err(reason) = pairing::check_time(*paired_at, op.seq, told, now) {
                return rejected(reason);
            }
            if let Err(reason) = holds::token(
                token,
                member_id,
                &self.keys,
                &self.revocations_of(member_id),
                paired_at.to_utc(),
            ) {
                return rejected(reason);
            }
        }
        let holder = self.watches.get(&claim.serial).copied();
        let mut result = OpResult::accepted(op_id);
        result.member_number = Some(member_number(member_id));
        match pairing::decide(member_id, holder) {
            Ok(Pairing::Already) => {
                result.status = OpStatus::Duplicate;
                return result;
            }
            Ok(Pairing::Paired) => {}
            Err(reason) => return rejected(reason),
        }
        if let Some(previous) = self.watch_of.insert(member_id, claim.serial.clone()) {
            self.watches.remove(&previous);
        }
        self.watches.insert(claim.serial, member_id);
        result
    }

    fn hold(
        &mut self,
        policies: &PolicySet,
        terminal: &Terminal,
        op: &Operation,
        payload: &RedemptionHoldPayload,
        now: DateTime<Utc>,
    ) -> Result<OpResult, Error> {
        let op_id = op.op_id.as_str();
        let rejected = |reason| Ok(OpResult::rejected(op_id, reason));
        let claim = match holds::read(payload, &terminal_label(terminal.id), now) {
            Ok(claim) => claim,
            Err(reason) => return rejected(reason),
        };
        // ... and not on a day the terminal had already left behind by its own numbering.
        if let Some(seq) = op.seq {
            if holds::made_after_day(seq, self.told_after(terminal.id, claim.day)) {
                return rejected(RejectReason::HoldTimeOutOfWindow);
            }
        }
        let member_id = match holds::member(claim.member, self.member_revoked(claim.member)) {
            Ok(id) => id,
            Err(reason) => return rejected(reason),
        };
        let claims = match holds::token(
            &payload.token,
            member_id,
            &self.keys,
            &self.revocations_of(member_id),
            claim.held_at.to_utc(),
        ) {
            Ok(claims) => claims,
            Err(reason) => return rejected(reason),
        };
        let token = holds::token_id(&claims, &member_number(member_id), op_id);
        let limits = OfflineLimits::in_force(policies, claim.day);
        // A refused hold is remembered as evidence; the same operation sent again gets the
        // same refusal without a second record.
        let earlier = match self.holds.get(op_id).map(|hold| hold.status) {
            Some(HoldStatus::Posted | HoldStatus::Voided) => {
                return Err(Error::Inconsistent(format!(
                    "hold {op_id:?} is recorded but has no operation"
                )))
            }
            earlier => earlier,
        };
        let card_spent_today = self
            .holds
            .values()
            .filter(|hold| {
                hold.member == member_id
                    && hold.day == claim.day
                    && hold.card_serial.is_some()
                    && hold.status == HoldStatus::Posted
            })
            .map(|hold| hold.amount)
            .sum();
        let token_used = self.holds.values().any(|hold| {
            hold.token_id == token && matches!(hold.status, HoldStatus::Posted | HoldStatus::Voided)
        });
        let Some(member) = self.members.get(&member_id) else {
            return Err(Error::Inconsistent(format!("member {member_id} vanished")));
        };
        let spending = holds::Spending {
            earlier,
            card_spent_today,
            token_used,
            balance: member.balance(),
        };
        let (status, before) = match holds::settle(&claim, &claims, &limits, &spending) {
            holds::Settled::Refused(reason) => return rejected(reason),
            holds::Settled::Recorded {
                status,
                balance_before,
            } => (status, balance_before),
        };
        self.holds.insert(
            op_id.to_owned(),
            Hold {
                op_id: op_id.to_owned(),
                member: member_id,
                amount: claim.amount,
                token_id: token,
                held_at: claim.held_at,
                day: claim.day,
                terminal: terminal.id,
                status,
                balance_before: before,
                card_serial: claims.card_serial,
                seq: op.seq.and_then(|seq| i64::try_from(seq).ok()),
                void_op_id: None,
            },
        );
        if let Some(reason) = status.refusal() {
            return rejected(reason);
        }
        let amount = i64::try_from(claim.amount).unwrap_or(i64::MAX);
        if let Some(member) = self.members.get_mut(&member_id) {
            member.spent += amount;
        }
        let mut result = OpResult::accepted(op_id);
        result.member_number = Some(member_number(member_id));
        result.balance = Some(before - amount);
        Ok(result)
    }

    fn void(
        &mut self,
        terminal: &Terminal,
        op_id: &str,
        payload: &VoidPayload,
        seq: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<OpResult, Error> {
        let found = self
            .holds
            .get(&payload.hold_op_id)
            .filter(|hold| hold.terminal == terminal.id && hold.status == HoldStatus::Posted);
        let (posted, told) = match found {
            Some(hold) => (
                Some(holds::PostedHold {
                    day: hold.day,
                    seq: hold.seq,
                }),
                self.told_after(terminal.id, hold.day),
            ),
            None => (None, None),
        };
        if let Err(reason) = holds::void(&payload.voided_at, seq, posted, told, now) {
            return Ok(OpResult::rejected(op_id, reason));
        }
        let Some(hold) = self.holds.get_mut(&payload.hold_op_id) else {
            return Err(Error::Inconsistent(
                "a void of no hold was taken".to_owned(),
            ));
        };
        hold.status = HoldStatus::Voided;
        hold.void_op_id = Some(op_id.to_owned());
        let (member_id, amount) = (hold.member, hold.amount);
        let Some(member) = self.members.get_mut(&member_id) else {
            return Err(Error::Inconsistent(format!("member {member_id} vanished")));
        };
        member.spent -= i64::try_from(amount).unwrap_or(i64::MAX);
        let mut result = OpResult::accepted(op_id);
        result.member_number = Some(member_number(member_id));
        result.balance = Some(member.balance());
        Ok(result)
    }

    fn wrong_pin(
        &mut self,
        op_id: &str,
        payload: &WrongPinPayload,
        now: DateTime<Utc>,
    ) -> OpResult {
        let failure = match cards::read_wrong_pin(payload, now) {
            Ok(failure) => failure,
            Err(reason) => return OpResult::rejected(op_id, reason),
        };
        let member_id = match failure.member {
            Some(id) if self.members.contains_key(&id) => id,
            _ => return OpResult::rejected(op_id, RejectReason::UnknownMember),
        };
        let key = (member_id, payload.serial, failure.day);
        let failures = self.pin_failures.entry(key).or_insert(0);
        *failures += 1;
        if cards::locks_now(*failures) {
            self.locked_cards.insert(key);
        }
        let mut result = OpResult::accepted(op_id);
        result.member_number = Some(member_number(member_id));
        result
    }
}

#[cfg(test)]
mod tests;
