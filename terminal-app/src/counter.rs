//! The counter's redemption commands: scan a member's code, redeem points, print the receipt,
//! void, and the day's settlement. Each reads the clock once (`Terminal::now`), lets
//! `redemption-token` and `merchant-core` decide, and stores what they returned
//! (`terminal-store`'s `holds`). A refusal records nothing (a wrong card PIN excepted: it is
//! counted, so that a card locks after a few).
//!
//! The counter redeems offline: holds reach the server through the outbox, so the offline
//! limits always apply: those of the points policy in force today (`[redemption]`), from the
//! policies the server last sent, else the ones this build was published with.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use merchant_core::receipt::Receipt;
use merchant_core::redemption::{
    check_card_pin_failures, Connectivity, Hold, HoldId, OfflineLimits,
};
use merchant_core::settlement::Settlement;
use redemption_token::{verify, Claims, MemberNo, Token, TokenKind};
use serde::Serialize;
use terminal_store::Store;

use crate::commands::{member_view, MemberView};
use crate::config::Role;
use crate::error::{storage, CommandError, ErrorCode, Lang};
use crate::terminal::{AppState, Terminal};

/// How many live dynamic tokens the counter remembers (`SeenTokens`' capacity).
const SEEN_CAPACITY: usize = 4_096;

/// The limits of the policy in force today: from the policies the server last sent when the
/// terminal has pulled any that read, else from the ones this build was published with.
fn limits(t: &Terminal, store: &Store, now: DateTime<Utc>) -> OfflineLimits {
    let day = points_core::kst_day(now);
    let pulled = store
        .cached_policies()
        .ok()
        .filter(|cached| !cached.is_empty())
        .and_then(|cached| {
            cached
                .iter()
                .map(|c| points_core::PointsPolicy::from_toml_str(&c.text).ok())
                .collect::<Option<Vec<_>>>()
        })
        .and_then(|policies| points_core::PolicySet::new(policies).ok());
    OfflineLimits::in_force(pulled.as_ref().unwrap_or(&t.policies), day)
}

impl CommandError {
    /// A token refused by `redemption-token`, with its own code and message.
    pub fn from_token(lang: Lang, refusal: &redemption_token::Refusal) -> Self {
        CommandError::new(
            ErrorCode::Refused(refusal.code()),
            lang,
            refusal.ko(),
            refusal.en(),
        )
    }

    /// A hold or void refused by `merchant-core`, with its own code and message.
    pub fn from_redemption(lang: Lang, refusal: &merchant_core::redemption::Refusal) -> Self {
        CommandError::new(
            ErrorCode::Refused(refusal.code()),
            lang,
            refusal.ko(),
            refusal.en(),
        )
    }
}

/// The offline limits that apply to this member's code, for the amount screen.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct AmountLimits {
    pub min: u64,
    pub max: u64,
    /// The largest amount offline for this kind of token.
    pub per_transaction: u64,
    /// What this kind may spend offline here in a day.
    pub per_day: u64,
}

/// What a scan shows: the member, their available points, and what the amount may be.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct Scanned {
    /// The text scanned, as the redeem command wants it back.
    pub token: String,
    pub kind: TokenKind,
    /// What the verified code says; `None` for a card until its PIN is entered.
    pub claims: Option<Claims>,
    /// The member number as this counter knows it (`PP-0001`), or as the token says.
    pub member_no: String,
    /// The member's name, if this counter has the member cached.
    pub name: Option<String>,
    /// The server's last balance minus the holds made here since.
    pub available: u64,
    /// When the server's balance was taken.
    pub balance_as_of: DateTime<Utc>,
    /// When the code stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// A card: the member must enter the PIN before redeeming.
    pub needs_pin: bool,
    /// Redemptions here are offline (confirmed at reconciliation).
    pub offline: bool,
    pub limits: AmountLimits,
    /// The member's week, if cached here.
    pub member: Option<MemberView>,
}

/// A redemption done: on disk and queued, with its receipt.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct Redeemed {
    pub hold_id: String,
    pub member_no: String,
    pub amount: u64,
    pub remaining: u64,
    pub offline: bool,
    pub created_at: DateTime<Utc>,
    /// The printable page.
    pub receipt_html: String,
    /// Whether ESC/POS bytes went to the configured printer (`None`: no printer set).
    pub printed: Option<bool>,
    /// Why the printer failed, if it did: the hold stands, print the page instead.
    pub printer_message: Option<String>,
}

/// A void done.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct Voided {
    pub hold_id: String,
    pub amount: u64,
    pub at: DateTime<Utc>,
    /// The member's available points after it.
    pub available: Option<u64>,
}

/// A receipt, again.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct ReceiptView {
    pub hold_id: String,
    pub html: String,
    pub printed: Option<bool>,
    pub printer_message: Option<String>,
}

/// The day's settlement.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct SettlementView {
    #[serde(flatten)]
    pub settlement: Settlement,
    pub html: String,
}

/// Where a settlement CSV was saved.
#[derive(Debug, Serialize, ts_rs::TS)]
pub struct Exported {
    pub path: String,
    pub summary_csv: String,
    pub lines_csv: String,
}

/// The member number to show: the cached member's, else the token's.
fn shown_member(
    store: &Store,
    lang: Lang,
    member: MemberNo,
) -> Result<(String, Option<String>), CommandError> {
    Ok(
        match store.member_by_number(member).map_err(storage(lang))? {
            Some(m) => (m.member_no, Some(m.name)),
            None => (member.to_string(), None),
        },
    )
}

/// Verifies `text` at `now` with the stored keys and revocations; a card is checked with
/// `pin` (a card scanned without one is `Ok(None)`: everything but the PIN passed).
fn check_token(
    store: &Store,
    lang: Lang,
    text: &str,
    pin: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Token, Option<Claims>), CommandError> {
    let token = Token::parse(text).map_err(|r| CommandError::from_token(lang, &r))?;
    let keys = store.redemption_key_set().map_err(storage(lang))?;
    let revocations = store.revocations_for(token.member).map_err(storage(lang))?;
    match verify(text, &keys, &revocations, pin, now) {
        Ok(claims) => Ok((token, Some(claims))),
        Err(redemption_token::Refusal::PinRequired) if pin.is_none() => Ok((token, None)),
        Err(r) => Err(CommandError::from_token(lang, &r)),
    }
}

/// Checks that `text` is a valid token of member `member_no` now (a card's PIN aside): the
/// proof of presence a watch pairing carries.
pub(crate) fn check_members_token(
    t: &Terminal,
    lang: Lang,
    text: &str,
    member_no: &str,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let store = t.store()?;
    let (token, _) = check_token(&store, lang, text.trim(), None, now)?;
    let (shown, _) = shown_member(&store, lang, token.member)?;
    if shown != member_no {
        return Err(CommandError::new(
            ErrorCode::TokenOfAnotherMember,
            lang,
            "스캔한 QR 코드는 다른 회원의 것입니다. 이 회원의 QR 코드를 스캔해 주세요.",
            "The QR code scanned is another member's. Scan this member's QR code.",
        ));
    }
    Ok(())
}

/// A card locked by wrong PINs today, here or (as the server told) at any counters, is
/// refused before its PIN is tried.
fn check_card_lock(
    store: &Store,
    lang: Lang,
    token: &Token,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    if let redemption_token::Body::Card { serial, .. } = token.body {
        let lock = store
            .card_lock(token.member, serial, now)
            .map_err(storage(lang))?;
        check_card_pin_failures(lock.failures)
            .map_err(|r| CommandError::from_redemption(lang, &r))?;
    }
    Ok(())
}

/// Scans a member's code: verifies it offline and shows the member's available points. A
/// dynamic code already used here is refused; nothing is recorded either way.
pub fn scan_token(state: &AppState, token: String) -> Result<Scanned, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Counter)?;
    let now = t.now().to_utc();
    let text = token.trim_end_matches(['\r', '\n']).to_owned();
    let (token, claims, member_no, name, available, as_of) = {
        let store = t.store()?;
        let (token, claims) = check_token(&store, lang, &text, None, now)?;
        if let Some(claims) = &claims {
            store
                .seen_tokens(SEEN_CAPACITY, now)
                .map_err(storage(lang))?
                .admit(claims, now)
                .map_err(|r| CommandError::from_token(lang, &r))?;
        }
        check_card_lock(&store, lang, &token, now)?;
        let member = token.member;
        let book = store
            .redemption_book(limits(t, &store, now), Some(member), now)
            .map_err(storage(lang))?;
        let no_balance = || {
            CommandError::from_redemption(
                lang,
                &merchant_core::redemption::Refusal::NoBalance { member },
            )
        };
        let available = book.available(member).ok_or_else(no_balance)?;
        let as_of = store
            .balance_of(member)
            .map_err(storage(lang))?
            .ok_or_else(no_balance)?
            .as_of;
        let (member_no, name) = shown_member(&store, lang, member)?;
        (token, claims, member_no, name, available, as_of)
    };
    let kind = token.kind();
    let l = limits(t, &*t.store()?, now);
    let cached = t.store()?.member(&member_no).map_err(storage(lang))?;
    let view = match cached {
        Some(m) => Some(member_view(t, lang, m)?),
        None => None,
    };
    Ok(Scanned {
        token: text,
        kind,
        claims,
        member_no,
        name,
        available,
        balance_as_of: as_of,
        expires_at: DateTime::from_timestamp(i64::from(token.expires_at()), 0)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
        needs_pin: kind == TokenKind::Card,
        offline: true,
        limits: AmountLimits {
            min: l.min_amount,
            max: l.max_amount,
            per_transaction: l.per_transaction.of(kind),
            per_day: l.per_member_day.of(kind),
        },
        member: view,
    })
}

/// The terminal's id at the central server, which a hold names (empty before provisioning).
fn terminal_id(store: &Store, lang: Lang) -> Result<String, CommandError> {
    Ok(store
        .identity()
        .map_err(storage(lang))?
        .map(|i| i.terminal_id)
        .unwrap_or_default())
}

/// A hold id to print: `H-` and 12 random hex digits (48 bits), short enough for a receipt
/// line and unique enough as the server's operation id.
fn new_hold_id() -> HoldId {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    HoldId(format!("H-{}", hex[..12].to_uppercase()))
}

/// Writes ESC/POS bytes to the configured printer. `None` when no printer is set.
fn print(t: &Terminal, lang: Lang, bytes: &[u8]) -> (Option<bool>, Option<String>) {
    let Some(path) = &t.config.counter.printer else {
        return (None, None);
    };
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.flush()));
    match result {
        Ok(()) => (Some(true), None),
        Err(e) => (
            Some(false),
            Some(lang.pick(
                format!(
                    "영수증 프린터({})에 출력하지 못했습니다: {e}. 결제는 저장되었습니다. 화면의 영수증을 인쇄해 주세요.",
                    path.display()
                ),
                format!(
                    "Could not print to the receipt printer ({}): {e}. The redemption is saved; print the page on screen instead.",
                    path.display()
                ),
            )),
        ),
    }
}

/// Redeems `amount` points with a scanned code (and a card's PIN): verifies the code again
/// now, lets the redemption book decide, stores the hold with its outbox operation and the
/// code as used in one transaction, then prints the receipt.
pub fn redeem(
    state: &AppState,
    token: String,
    amount: u64,
    pin: Option<String>,
) -> Result<Redeemed, CommandError> {
    let _one = state.one_change_at_a_time();
    let lang = state.lang();
    let t = state.terminal_as(Role::Counter)?;
    let now = t.now().to_utc();
    let text = token.trim_end_matches(['\r', '\n']);
    let pin = pin.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let hold = {
        let mut store = t.store()?;
        let token = Token::parse(text).map_err(|r| CommandError::from_token(lang, &r))?;
        check_card_lock(&store, lang, &token, now)?;
        let claims = match check_token(&store, lang, text, pin, now) {
            Ok((_, Some(claims))) => claims,
            Ok((_, None)) => {
                return Err(CommandError::from_token(
                    lang,
                    &redemption_token::Refusal::PinRequired,
                ))
            }
            Err(e) if e.code == ErrorCode::Refused("wrong_pin") => {
                if let redemption_token::Body::Card { serial, .. } = token.body {
                    store
                        .record_pin_failure(
                            token.member,
                            serial,
                            now,
                            &uuid::Uuid::new_v4().to_string(),
                        )
                        .map_err(storage(lang))?;
                    // This wrong PIN may be the one that locks the card: then that is said.
                    let failures = store
                        .card_lock(token.member, serial, now)
                        .map_err(storage(lang))?
                        .failures;
                    check_card_pin_failures(failures)
                        .map_err(|r| CommandError::from_redemption(lang, &r))?;
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if claims.token_id.is_some() {
            store
                .seen_tokens(SEEN_CAPACITY, now)
                .map_err(storage(lang))?
                .admit(&claims, now)
                .map_err(|r| CommandError::from_token(lang, &r))?;
        }
        let mut book = store
            .redemption_book(limits(t, &store, now), Some(claims.member), now)
            .map_err(storage(lang))?;
        let hold: Hold = book
            .request_hold(new_hold_id(), &claims, amount, now, Connectivity::Offline)
            .map_err(|r| CommandError::from_redemption(lang, &r))?;
        let terminal = terminal_id(&store, lang)?;
        let expires = claims.token_id.map(|_| claims.expires_at);
        store
            .record_hold(&hold, &terminal, &token.to_text(), expires)
            .map_err(storage(lang))?;
        if let Some(serial) = claims.card_serial {
            store
                .clear_pin_failures(claims.member, serial)
                .map_err(storage(lang))?;
        }
        hold
    };
    let receipt = Receipt::of(&hold, &t.config.site_name);
    let (printed, printer_message) = print(t, lang, &receipt.to_escpos());
    let member_no = shown_member(&*t.store()?, lang, hold.member)?.0;
    Ok(Redeemed {
        hold_id: hold.id.0.clone(),
        member_no,
        amount: hold.amount,
        remaining: hold.remaining,
        offline: hold.offline,
        created_at: hold.created_at,
        receipt_html: receipt.to_html(),
        printed,
        printer_message,
    })
}

fn unknown_hold(lang: Lang, hold_id: &str) -> CommandError {
    CommandError::from_redemption(
        lang,
        &merchant_core::redemption::Refusal::UnknownHold {
            hold_id: HoldId(hold_id.to_owned()),
        },
    )
}

/// Voids a hold made here today: the book decides, the void and its outbox operation are
/// stored in one transaction.
pub fn void_hold(state: &AppState, hold_id: String) -> Result<Voided, CommandError> {
    let _one = state.one_change_at_a_time();
    let lang = state.lang();
    let t = state.terminal_as(Role::Counter)?;
    let now = t.now().to_utc();
    let hold_id = hold_id.trim().to_uppercase();
    let mut store = t.store()?;
    let stored = store
        .stored_hold(&hold_id)
        .map_err(storage(lang))?
        .ok_or_else(|| unknown_hold(lang, &hold_id))?;
    let member = stored.hold.member;
    let mut book = store
        .redemption_book(limits(t, &store, now), Some(member), now)
        .map_err(storage(lang))?;
    // The book holds recent holds; put this one in whatever its age, so that the book says
    // why an old one cannot be voided.
    book.restore_hold(stored.hold.clone(), stored.outcome.clone());
    if let Some(void) = &stored.void {
        book.restore_void(void);
    }
    let void = book
        .void(&stored.hold.id, now)
        .map_err(|r| CommandError::from_redemption(lang, &r))?;
    let op_id = uuid::Uuid::new_v4().to_string();
    store.record_void(&void, &op_id).map_err(storage(lang))?;
    Ok(Voided {
        hold_id: void.hold_id.0,
        amount: void.amount,
        at: void.at,
        available: book.available(member),
    })
}

/// A hold's receipt again: the printable page, and ESC/POS to the printer when `print`.
pub fn hold_receipt(
    state: &AppState,
    hold_id: String,
    print: bool,
) -> Result<ReceiptView, CommandError> {
    let _one = state.one_change_at_a_time();
    let lang = state.lang();
    let t = state.terminal_as(Role::Counter)?;
    let hold_id = hold_id.trim().to_uppercase();
    let stored = t
        .store()?
        .stored_hold(&hold_id)
        .map_err(storage(lang))?
        .ok_or_else(|| unknown_hold(lang, &hold_id))?;
    let receipt = Receipt::of(&stored.hold, &t.config.site_name);
    let (printed, printer_message) = if print {
        self::print(t, lang, &receipt.to_escpos())
    } else {
        (None, None)
    };
    Ok(ReceiptView {
        hold_id,
        html: receipt.to_html(),
        printed,
        printer_message,
    })
}

fn parse_day(t: &Terminal, lang: Lang, day: Option<&str>) -> Result<NaiveDate, CommandError> {
    match day.map(str::trim).filter(|d| !d.is_empty()) {
        None => Ok(t.today()),
        Some(d) => d.parse().map_err(|_| {
            CommandError::new(
                ErrorCode::InvalidInput,
                lang,
                format!("날짜 '{d}'을(를) 알아볼 수 없습니다. 2025-12-03처럼 입력하세요."),
                format!("The date '{d}' is not a date. Type it like 2025-12-03."),
            )
        }),
    }
}

fn settle_day(t: &Terminal, lang: Lang, day: NaiveDate) -> Result<Settlement, CommandError> {
    let stored = t.store()?.holds_on(day).map_err(storage(lang))?;
    let holds: Vec<Hold> = stored.iter().map(|s| s.hold.clone()).collect();
    let voids: Vec<_> = stored.iter().filter_map(|s| s.void.clone()).collect();
    let outcomes: BTreeMap<_, _> = stored
        .iter()
        .filter_map(|s| s.outcome.clone().map(|o| (s.hold.id.clone(), o)))
        .collect();
    Ok(Settlement::of_day(
        &t.config.site_name,
        day,
        &holds,
        &voids,
        &outcomes,
    ))
}

/// The day's settlement (today when `day` is empty): figures, holds, and the printable page.
pub fn day_settlement(
    state: &AppState,
    day: Option<String>,
) -> Result<SettlementView, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Counter)?;
    let day = parse_day(t, lang, day.as_deref())?;
    let settlement = settle_day(t, lang, day)?;
    let html = settlement.to_html();
    Ok(SettlementView { settlement, html })
}

/// Saves the day's settlement as CSV (the figures, then one row per hold) in the configured
/// folder, and returns where.
pub fn export_settlement(state: &AppState, day: Option<String>) -> Result<Exported, CommandError> {
    let _one = state.one_change_at_a_time();
    let lang = state.lang();
    let t = state.terminal_as(Role::Counter)?;
    let day = parse_day(t, lang, day.as_deref())?;
    let settlement = settle_day(t, lang, day)?;
    let dir: PathBuf = t.config.counter.exports.clone().unwrap_or_else(|| {
        t.config
            .database
            .parent()
            .map_or_else(|| PathBuf::from("settlements"), |p| p.join("settlements"))
    });
    let summary_csv = settlement.summary_csv();
    let lines_csv = settlement.lines_csv();
    let path = dir.join(merchant_core::settlement::file_name(&t.config.site, day));
    let write = || -> anyhow::Result<()> {
        std::fs::create_dir_all(&dir)?;
        let tmp = path.with_extension("csv.tmp");
        std::fs::write(&tmp, format!("{summary_csv}\n{lines_csv}"))?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    };
    write().map_err(|e| {
        CommandError::storage(lang, &e.context(format!("saving {}", path.display())))
    })?;
    Ok(Exported {
        path: path.display().to_string(),
        summary_csv,
        lines_csv,
    })
}
