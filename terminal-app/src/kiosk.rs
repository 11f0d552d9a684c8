//! The sign-up kiosk's commands, step by step: identity and eligibility (with duplicates and
//! the day's admission), consent, registration (contact details, the place in the quota
//! lease), numbered tickets for a later day, the member card (QR code on screen, a printable
//! page, ESC/POS bytes for the receipt printer) and spoken guidance.
//!
//! Like `commands`, each parses, calls `kiosk-core` or the store, and maps the error.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use chrono::NaiveDate;
use kiosk_core::admission::{admit_cached, NotAdmitted};
use kiosk_core::card::MemberCard;
use kiosk_core::consent::{check_consents, current_items, ConsentAnswer, ConsentMissing};
use kiosk_core::{AlreadyMember, Applicant, Enrollment};
use serde::{Deserialize, Serialize};
use terminal_store::{CardCheck, ConfirmedEnrollment, KioskEnrollment};

use crate::commands::ApplicantInput;
use crate::config::Role;
use crate::error::{storage, CommandError, ErrorCode, Lang};
use crate::sync::BackgroundSync;
use crate::terminal::{AppState, Terminal};

/// One consent item as the screen shows it, in the terminal's language.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct ConsentView {
    pub id: String,
    pub version: String,
    pub required: bool,
    pub title: String,
}

/// What the kiosk's admission rests on today.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct AdmissionInfo {
    /// Whether a schedule was ever pulled from the server. Without one everyone eligible is
    /// admitted, as before schedules existed.
    pub schedule: bool,
    /// Today's places at this site, and how many are left.
    pub places: Option<u32>,
    pub remaining: Option<u32>,
}

/// What the kiosk's screens need before the first step.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct KioskSetup {
    pub consents: Vec<ConsentView>,
    pub warn_after_s: u32,
    pub clear_after_s: u32,
    /// Whether a receipt printer is configured.
    pub printer: bool,
    pub admission: AdmissionInfo,
}

fn consent_views(lang: Lang) -> Vec<ConsentView> {
    current_items()
        .into_iter()
        .map(|i| ConsentView {
            title: lang.pick(i.title_ko, i.title_en),
            id: i.id,
            version: i.version,
            required: i.required,
        })
        .collect()
}

fn admission_info(t: &Terminal, lang: Lang) -> Result<AdmissionInfo, CommandError> {
    let store = t.store()?;
    let schedule = store.admission_schedule().map_err(storage(lang))?;
    let lease = store
        .quota_lease(&t.config.site, t.today())
        .map_err(storage(lang))?;
    Ok(AdmissionInfo {
        schedule: schedule.is_some(),
        places: lease.as_ref().map(|l| l.places),
        remaining: lease.as_ref().map(|l| l.remaining()),
    })
}

/// The consent items, the inactivity timings, the printer and today's admission.
pub fn kiosk_setup(state: &AppState) -> Result<KioskSetup, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    t.store()?
        .erase_acknowledged(t.now())
        .map_err(storage(lang))?;
    Ok(KioskSetup {
        consents: consent_views(lang),
        warn_after_s: t.config.kiosk.warn_after_s,
        clear_after_s: t.config.kiosk.clear_after_s,
        printer: t.config.kiosk.printer.is_some(),
        admission: admission_info(t, lang)?,
    })
}

/// The enrollments confirmed here today (masked names), newest first; personal data the
/// server acknowledged is erased first.
pub fn kiosk_today(state: &AppState) -> Result<Vec<ConfirmedEnrollment>, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    let mut store = t.store()?;
    store.erase_acknowledged(t.now()).map_err(storage(lang))?;
    store.enrollments_on(t.today()).map_err(storage(lang))
}

pub(crate) fn parse_applicant(
    input: ApplicantInput,
    lang: Lang,
) -> Result<Applicant, CommandError> {
    Ok(Applicant {
        birth_date: crate::commands::parse_birth_date(&input.birth_date, lang)?,
        name: input.name,
        phone: input.phone,
        residency: input.residency,
    })
}

fn not_admitted(lang: Lang, n: &NotAdmitted) -> CommandError {
    let code = match n {
        NotAdmitted::NotYourDay { .. } => ErrorCode::NotToday,
        NotAdmitted::QuotaUsedUp { .. } => ErrorCode::QuotaUsedUp,
        _ => ErrorCode::NoQuota,
    };
    CommandError::new(code, lang, n.ko(), n.en())
}

fn consent_error(lang: Lang, m: &ConsentMissing) -> CommandError {
    let code = match m {
        ConsentMissing::Required(_) => ErrorCode::ConsentMissing,
        _ => ErrorCode::ConsentOutdated,
    };
    let items = current_items();
    CommandError::new(code, lang, m.ko(&items), m.en(&items))
}

/// Eligibility, then duplicates: the checked enrollment, or why not.
fn eligible(t: &Terminal, lang: Lang, applicant: &Applicant) -> Result<Enrollment, CommandError> {
    let enrollment = kiosk_core::check_applicant(applicant, t.today())
        .map_err(|r| CommandError::from_refusal(lang, &r))?;
    let known = t
        .store()?
        .find_person(&enrollment.name, enrollment.birth_date, &enrollment.phone)
        .map_err(storage(lang))?;
    if let Some(k) = known {
        let dup = AlreadyMember {
            member_no: k.member_no,
            receipt_no: k.local_no.map(|n| format!("{n:04}")),
            day: k.day,
        };
        return Err(CommandError::new(
            ErrorCode::AlreadyMember,
            lang,
            dup.ko(),
            dup.en(),
        ));
    }
    Ok(enrollment)
}

/// The member number the server has for this person, when the kiosk is provisioned and the
/// server answers within two seconds; `None` otherwise.
fn member_on_server(t: &Terminal, e: &Enrollment) -> Option<String> {
    let (identity, preferred) = {
        let store = t.store().ok()?;
        (
            store.identity().ok()??,
            terminal_sync::server_in_use(&store).ok()?,
        )
    };
    let central = terminal_sync::connect_preferring(
        &identity,
        preferred.as_deref(),
        std::time::Duration::from_secs(2),
    )
    .ok()?;
    let key = ed25519_dalek::SigningKey::from_bytes(&identity.secret_key);
    central
        .lookup_member(&identity.terminal_id, &key, &e.name, e.birth_date, &e.phone)
        .ok()?
}

/// The first step passed: who the applicant is, and how today's admission stands for them.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct IdentityChecked {
    pub masked_name: String,
    pub age: u32,
    /// `lease` (a place will be taken in today's lease) or `no_schedule` (none pulled yet).
    pub admitted_by: &'static str,
}

/// Checks the first step: eligibility, duplicates, and whether today admits this person
/// (without taking a place yet).
///
/// With the network up, the server is asked too (`POST /v1/members/lookup`), so that a
/// member who signed up elsewhere is told at once; offline, or with no answer within two
/// seconds, the sign-up goes on and the server answers it `duplicate` at sync.
pub fn check_identity(
    state: &AppState,
    sync: Option<&BackgroundSync>,
    applicant: ApplicantInput,
) -> Result<IdentityChecked, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    let applicant = parse_applicant(applicant, lang)?;
    let e = eligible(t, lang, &applicant)?;
    let offline = sync.is_some_and(|sync| sync.online() == Some(false));
    if !offline {
        if let Some(member_no) = member_on_server(t, &e) {
            let dup = AlreadyMember {
                member_no: Some(member_no),
                receipt_no: None,
                day: None,
            };
            return Err(CommandError::new(
                ErrorCode::AlreadyMember,
                lang,
                dup.ko(),
                dup.en(),
            ));
        }
    }
    let (schedule, mut lease) = {
        let store = t.store()?;
        (
            store.admission_schedule().map_err(storage(lang))?,
            store
                .quota_lease(&t.config.site, t.today())
                .map_err(storage(lang))?,
        )
    };
    let admitted = admit_cached(schedule.as_ref(), lease.as_mut(), e.birth_date, t.today())
        .map_err(|n| not_admitted(lang, &n))?;
    Ok(IdentityChecked {
        masked_name: kiosk_core::card::mask_name(&e.name),
        age: e.age,
        admitted_by: if admitted.is_some() {
            "lease"
        } else {
            "no_schedule"
        },
    })
}

/// One consent answer as the screen sends it.
#[derive(Debug, Deserialize, ts_rs::TS)]
pub struct ConsentInput {
    pub id: String,
    pub version: String,
    pub agreed: bool,
}

fn answers(t: &Terminal, input: &[ConsentInput]) -> Vec<ConsentAnswer> {
    let at = t.now();
    input
        .iter()
        .map(|c| ConsentAnswer {
            id: c.id.clone(),
            version: c.version.clone(),
            agreed: c.agreed,
            at,
        })
        .collect()
}

/// Checks the consent step: every required item agreed to, each for the text in force.
pub fn check_consent(state: &AppState, consents: Vec<ConsentInput>) -> Result<(), CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    check_consents(&current_items(), &answers(t, &consents))
        .map(|_| ())
        .map_err(|m| consent_error(lang, &m))
}

/// The contact step: an optional guardian's mobile number.
#[derive(Debug, Default, Deserialize, ts_rs::TS)]
pub struct ContactInput {
    #[serde(default)]
    pub guardian_phone: String,
}

/// A registration confirmed on the spot.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct Registered {
    pub enrollment: ConfirmedEnrollment,
    /// The place taken in today's lease, if a schedule admitted the person.
    pub place: Option<u32>,
    pub admitted_by: &'static str,
    pub card: CardView,
}

/// Registers the applicant: eligibility, duplicates, consents, contact, today's admission
/// (taking a place of the lease, offline too), then records it durably and queues it.
pub fn register(
    state: &AppState,
    applicant: ApplicantInput,
    consents: Vec<ConsentInput>,
    contact: Option<ContactInput>,
) -> Result<Registered, CommandError> {
    let _one = state.one_change_at_a_time();
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    let applicant = parse_applicant(applicant, lang)?;
    let e = eligible(t, lang, &applicant)?;
    let record = check_consents(&current_items(), &answers(t, &consents))
        .map_err(|m| consent_error(lang, &m))?;
    let guardian = contact
        .map(|c| kiosk_core::check_guardian_phone(&c.guardian_phone))
        .transpose()
        .map_err(|r| CommandError::from_refusal(lang, &r))?
        .flatten();
    let now = t.now();
    let today = now.date_naive();
    let op_id = uuid::Uuid::new_v4().to_string();
    let (done, place) = {
        let mut store = t.store()?;
        let schedule = store.admission_schedule().map_err(storage(lang))?;
        let mut lease = store
            .quota_lease(&t.config.site, today)
            .map_err(storage(lang))?;
        let admitted = admit_cached(schedule.as_ref(), lease.as_mut(), e.birth_date, today)
            .map_err(|n| not_admitted(lang, &n))?;
        let place = match (admitted, &lease) {
            (Some(a), Some(l)) => Some((l.lease_id.clone(), a.place)),
            _ => None,
        };
        let done = store
            .record_kiosk_enrollment(&KioskEnrollment {
                op_id: &op_id,
                site: &t.config.site,
                enrollment: &e,
                consents: &record,
                guardian_phone: guardian.as_deref(),
                place: place.as_ref().map(|(l, p)| (l.as_str(), *p)),
                at: now,
            })
            .map_err(storage(lang))?;
        (done, place.map(|p| p.1))
    };
    let card = card_view(t, lang, &done.op_id)?;
    Ok(Registered {
        enrollment: done,
        place,
        admitted_by: if place.is_some() {
            "lease"
        } else {
            "no_schedule"
        },
        card,
    })
}

/// A numbered ticket for the day the person may come back.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct TicketView {
    pub day: NaiveDate,
    pub number: u32,
    pub message: String,
}

/// Gives a person refused today (not their day, or places used up) a numbered ticket for the
/// next day the schedule admits them.
pub fn issue_ticket(
    state: &AppState,
    applicant: ApplicantInput,
) -> Result<TicketView, CommandError> {
    let _one = state.one_change_at_a_time();
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    let applicant = parse_applicant(applicant, lang)?;
    let e = eligible(t, lang, &applicant)?;
    let today = t.today();
    let mut store = t.store()?;
    let schedule = store
        .admission_schedule()
        .map_err(storage(lang))?
        .unwrap_or_default();
    let day = schedule.next_day_for(e.birth_date, today).ok_or_else(|| {
        let n = NotAdmitted::NotYourDay { next: None };
        CommandError::new(ErrorCode::NotToday, lang, n.ko(), n.en())
    })?;
    let key = store
        .person_key(&e.name, e.birth_date, &e.phone)
        .map_err(storage(lang))?;
    let ticket = store
        .issue_ticket(&t.config.site, day, &key, t.now())
        .map_err(storage(lang))?;
    Ok(TicketView {
        day: ticket.day,
        number: ticket.number,
        message: lang.pick(ticket.ko(), ticket.en()),
    })
}

/// The member card as the screen shows it.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct CardView {
    pub op_id: String,
    /// `true`: the member card, a token the server signed; `false`: the sign-up receipt,
    /// until the server signs a card.
    pub signed: bool,
    pub qr_content: String,
    pub qr_svg: String,
    /// The printable page (HTML), for a printer without ESC/POS.
    pub page_html: String,
    pub receipt_no: String,
    pub masked_name: String,
    pub member_no: Option<String>,
    pub issued: NaiveDate,
    /// Whether a receipt printer is configured.
    pub printer: bool,
}

fn card_of(t: &Terminal, lang: Lang, op_id: &str) -> Result<MemberCard, CommandError> {
    let card = t
        .store()?
        .enrollment_card(op_id)
        .map_err(storage(lang))?
        .ok_or_else(|| not_here(lang))?;
    Ok(MemberCard {
        signed: card.card_token.is_some(),
        qr_content: card.card_token.unwrap_or_else(|| card.op_id.clone()),
        member_no: card.member_no,
        receipt_no: format!("{:04}", card.local_no),
        masked_name: card.masked_name,
        site_name: t.config.site_name.clone(),
        issued: card.day,
    })
}

fn card_view(t: &Terminal, lang: Lang, op_id: &str) -> Result<CardView, CommandError> {
    let card = card_of(t, lang, op_id)?;
    let qr = |e: kiosk_core::card::QrError| CommandError::storage(lang, &anyhow::anyhow!(e));
    Ok(CardView {
        op_id: op_id.to_owned(),
        signed: card.signed,
        qr_svg: card.qr_svg().map_err(qr)?,
        page_html: card.to_html().map_err(qr)?,
        qr_content: card.qr_content,
        receipt_no: card.receipt_no,
        masked_name: card.masked_name,
        member_no: card.member_no,
        issued: card.issued,
        printer: t.config.kiosk.printer.is_some(),
    })
}

/// The member card of an enrollment confirmed here: the card's signed token once the server
/// signed one (`issue_member_card`), else the sign-up receipt with the enrollment's op id.
pub fn member_card(state: &AppState, op_id: String) -> Result<CardView, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    card_view(t, lang, &op_id)
}

/// The longest the card waits for each of the server's two answers (the sign-up sent, the card
/// signed): the member stands at the kiosk, and "the card later" within seconds is better
/// than a frozen minute.
pub(crate) const CARD_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Makes the member card of a sign-up confirmed here: the member chose a 6-digit PIN on the
/// keypad and typed it twice. The kiosk computes the card's PIN check (Argon2id with a fresh
/// salt, bound to the member number and the card's serial), keeps it durably, and asks the
/// server to sign the card (`POST /v1/cards`); the PIN never leaves the kiosk and is not
/// stored. A retry with the same PIN asks for the same card. Before the sign-up has reached
/// the server (offline), the answer is `card_not_yet`: the sign-up stands, with its receipt.
pub fn issue_member_card(
    state: &AppState,
    sync: Option<&BackgroundSync>,
    op_id: String,
    pin: String,
    pin_again: String,
) -> Result<CardView, CommandError> {
    let _one = state.one_change_at_a_time();
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    typed_pin(lang, &pin, &pin_again)?;
    let mut card = t
        .store()?
        .enrollment_card(&op_id)
        .map_err(storage(lang))?
        .ok_or_else(|| not_here(lang))?;
    if card.card_token.is_none() && card.member_no.is_none() {
        // The sign-up may be in the outbox still: send it now rather than at the next tick,
        // unless the server is known not to answer.
        if let Some(sync) = sync.filter(|sync| sync.online() != Some(false)) {
            sync.push_now(CARD_WAIT);
            card = t
                .store()?
                .enrollment_card(&op_id)
                .map_err(storage(lang))?
                .ok_or_else(|| not_here(lang))?;
        }
    }
    let kept = t.store()?.card_check(&op_id).map_err(storage(lang))?;
    if card.card_token.is_some() {
        // Made before: the same PIN shows it again; another PIN is not this card's.
        let same = kept
            .as_ref()
            .is_some_and(|k| pin_matches(&pin, k, card.member_no.as_deref()));
        if !same {
            return Err(card_refused(lang, "card_exists", None));
        }
        return card_view(t, lang, &op_id);
    }
    let Some(member_no) = card.member_no.clone() else {
        return Err(card_not_yet(lang));
    };
    let identity = t
        .store()?
        .identity()
        .map_err(storage(lang))?
        .ok_or_else(|| card_not_yet(lang))?;
    let reuse = kept.filter(|k| pin_matches(&pin, k, Some(&member_no)));
    let check = match reuse {
        Some(k) => k,
        None => {
            let check = new_card_check(lang, &pin, &member_no, 1)?;
            t.store()?
                .keep_card_check(&op_id, &check)
                .map_err(storage(lang))?;
            check
        }
    };
    match sign_card(t, lang, &identity, &member_no, &check)? {
        CardSigning::Signed(signed) => {
            t.store()?
                .keep_card_token(&op_id, &signed.token)
                .map_err(storage(lang))?;
            card_view(t, lang, &op_id)
        }
        CardSigning::NoServer => Err(card_not_yet(lang)),
        CardSigning::Refused(body) => Err(card_refused(
            lang,
            &body.code,
            Some((&body.message, &body.message_en)),
        )),
    }
}

/// What the server said to a card's signing.
pub(crate) enum CardSigning {
    /// Signed: the token to print.
    Signed(terminal_sync::central::SignedCard),
    /// No server could be reached, or none answered.
    NoServer,
    /// The server refused it, with its reason.
    Refused(sync_protocol::wire::ErrorBody),
}

/// Asks the central server (the address in use first) to sign the card `check` describes for
/// `member_no`: the one exchange the first card and a replacement share. Each caller says
/// what a refusal or no server means for its card, and keeps the token where it keeps cards.
pub(crate) fn sign_card(
    t: &Terminal,
    lang: Lang,
    identity: &terminal_store::TerminalIdentity,
    member_no: &str,
    check: &CardCheck,
) -> Result<CardSigning, CommandError> {
    let preferred = terminal_sync::server_in_use(&*t.store()?).map_err(storage(lang))?;
    let Ok(central) = terminal_sync::connect_preferring(identity, preferred.as_deref(), CARD_WAIT)
    else {
        return Ok(CardSigning::NoServer);
    };
    let key = ed25519_dalek::SigningKey::from_bytes(&identity.secret_key);
    let ask = terminal_sync::central::CardAsk {
        member_number: member_no,
        serial: check.serial,
        pin_cost: check.cost,
        salt: check.salt,
        pin_tag: check.tag,
    };
    Ok(
        match central.issue_card(&identity.terminal_id, &key, &ask) {
            Ok(signed) => CardSigning::Signed(signed),
            Err(terminal_sync::central::EnrollError::Unreachable(_)) => CardSigning::NoServer,
            Err(terminal_sync::central::EnrollError::Refused { body, .. }) => {
                CardSigning::Refused(body)
            }
        },
    )
}

/// The card's PIN check tag for `pin`, or `None` when the member number does not read.
fn pin_check_of(
    pin: &str,
    cost: u8,
    salt: [u8; 8],
    member_no: Option<&str>,
    serial: u16,
) -> Option<[u8; 2]> {
    let member: redemption_token::MemberNo = member_no?.parse().ok()?;
    redemption_token::card_pin_check(pin, cost, salt, member, serial)
        .ok()
        .map(|c| c.tag)
}

/// The PIN typed twice on the keypad, checked as a card's PIN (six digits, the same twice,
/// not too easy).
pub(crate) fn typed_pin(lang: Lang, pin: &str, again: &str) -> Result<(), CommandError> {
    kiosk_core::card::check_pin(pin, again)
        .map_err(|r| CommandError::new(ErrorCode::Refused(r.code()), lang, r.ko(), r.en()))
}

/// Whether `pin` is the one `check` was made with, for `member_no`'s card.
pub(crate) fn pin_matches(pin: &str, check: &CardCheck, member_no: Option<&str>) -> bool {
    pin_check_of(pin, check.cost, check.salt, member_no, check.serial)
        .is_some_and(|tag| tag == check.tag)
}

/// A new card's PIN check: Argon2id of `pin` with a fresh salt, at the default cost, bound
/// to `member_no` and the card's `serial`. The PIN itself is not kept.
pub(crate) fn new_card_check(
    lang: Lang,
    pin: &str,
    member_no: &str,
    serial: u16,
) -> Result<CardCheck, CommandError> {
    let mut salt = [0u8; 8];
    getrandom::fill(&mut salt)
        .map_err(|e| CommandError::storage(lang, &anyhow::anyhow!("no randomness: {e}")))?;
    let cost = redemption_token::DEFAULT_PIN_COST;
    let tag = pin_check_of(pin, cost, salt, Some(member_no), serial).ok_or_else(|| {
        let r = kiosk_core::card::PinRefusal::NotSixDigits;
        CommandError::new(ErrorCode::Refused(r.code()), lang, r.ko(), r.en())
    })?;
    Ok(CardCheck {
        serial,
        cost,
        salt,
        tag,
    })
}

fn not_here(lang: Lang) -> CommandError {
    CommandError::new(
        ErrorCode::EnrollmentNotFound,
        lang,
        "이 키오스크에서 접수한 가입이 아닙니다. 가입을 먼저 접수해 주세요.",
        "This is not a sign-up confirmed at this kiosk. Confirm the sign-up first.",
    )
}

fn card_not_yet(lang: Lang) -> CommandError {
    CommandError::new(
        ErrorCode::CardNotYet,
        lang,
        "가입은 완료되었습니다. 서버에 연결되지 않아 회원 카드는 아직 만들 수 없습니다. 접수증을 받아 두시고, 인터넷이 연결되면 이 키오스크에서 카드를 받으세요.",
        "You are signed up. The server cannot be reached, so the member card cannot be made yet. Keep the receipt and get the card at this kiosk once the connection is back.",
    )
}

/// The server's card refusal, in the terminal's language (its own text when it sent one).
pub(crate) fn card_refused(
    lang: Lang,
    code: &str,
    server_said: Option<(&str, &str)>,
) -> CommandError {
    if let Some(refusal) = kiosk_core::card::CardRefusal::from_code(code) {
        return CommandError::new(
            ErrorCode::Refused(refusal.code()),
            lang,
            refusal.ko(),
            refusal.en(),
        );
    }
    match server_said {
        // Overloaded, a clock problem, ...: the server's own words, with the code the UI
        // treats as "try again later".
        Some((ko, en)) if !ko.is_empty() => CommandError::new(
            ErrorCode::CardNotYet,
            lang,
            format!("회원 카드를 아직 만들지 못했습니다. 가입은 완료되었습니다. {ko}"),
            format!("The member card could not be made yet; you are signed up. {en}"),
        ),
        _ => card_not_yet(lang),
    }
}

/// What printing did.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct Printed {
    pub bytes: usize,
}

/// Sends the card's ESC/POS bytes to the configured receipt printer (a device or a file).
pub fn print_card(state: &AppState, op_id: String) -> Result<Printed, CommandError> {
    let _one = state.one_change_at_a_time();
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    let printed_before = t
        .store()?
        .enrollment_card(&op_id)
        .map_err(storage(lang))?
        .is_some_and(|c| c.card_printed);
    if printed_before {
        return Err(card_printed(lang));
    }
    let card = card_of(t, lang, &op_id)?;
    let bytes = card.to_escpos();
    send_to_printer(t, lang, &bytes)?;
    if card.signed {
        // Printed: the card is the member's now. Its token and PIN check leave the kiosk, so a
        // stolen kiosk holds no card that spends points.
        t.store()?
            .erase_printed_card(&op_id, t.now())
            .map_err(storage(lang))?;
    }
    Ok(Printed { bytes: bytes.len() })
}

pub(crate) fn card_printed(lang: Lang) -> CommandError {
    CommandError::new(
        ErrorCode::CardPrinted,
        lang,
        "회원 카드는 이미 인쇄했고, 단말기에서는 지웠습니다. 카드를 잃어버렸다면 보건소에 재발급을 요청해 주세요.",
        "The member card was already printed and erased from this kiosk. If it is lost, ask the health center for a new one.",
    )
}

/// Appends `bytes` to the configured receipt printer (a device or a file).
pub(crate) fn send_to_printer(t: &Terminal, lang: Lang, bytes: &[u8]) -> Result<(), CommandError> {
    let failed = |why: String| {
        CommandError::new(
            ErrorCode::PrinterFailed,
            lang,
            format!("영수증 프린터로 인쇄하지 못했습니다 ({why}). '인쇄용 화면'으로 인쇄하거나 직원에게 말씀해 주세요."),
            format!("Could not print on the receipt printer ({why}). Use 'Printable page' or tell the clerk."),
        )
    };
    let Some(path) = t.config.kiosk.printer.clone() else {
        return Err(failed(lang.pick(
            "프린터가 설정되지 않음".to_owned(),
            "no printer is configured".to_owned(),
        )));
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.flush()
        })
        .map_err(|e| failed(format!("{}: {e}", path.display())))
}

/// Whether the guidance was spoken (false when no speech program is installed).
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct Spoken {
    pub spoken: bool,
}

/// The utterance being spoken, stopped when the next one starts.
static SPEAKING: Mutex<Option<Child>> = Mutex::new(None);

/// Speaks `text` through the speaker with the configured speech program (espeak-ng), in the
/// terminal's language, at `volume` (0 to 200, espeak-ng's amplitude) and `speed` (words a
/// minute, 80 to 300). Without the program the screen's text stands alone: no error.
pub fn speak(
    state: &AppState,
    text: String,
    volume: u32,
    speed: u32,
) -> Result<Spoken, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    let mut speaking = SPEAKING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(mut previous) = speaking.take() {
        let _ = previous.kill();
        let _ = previous.wait();
    }
    if volume == 0 || text.trim().is_empty() {
        return Ok(Spoken { spoken: false });
    }
    let child = Command::new(&t.config.kiosk.speech)
        .args(["-v", lang.as_str()])
        .args(["-a", &volume.min(200).to_string()])
        .args(["-s", &speed.clamp(80, 300).to_string()])
        // The text is never read as an option, whatever it starts with.
        .arg("--")
        .arg(text)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(c) => {
            *speaking = Some(c);
            Ok(Spoken { spoken: true })
        }
        Err(_) => Ok(Spoken { spoken: false }),
    }
}
