//! Spending points at the counter: the offline limits the server sets, the member's available
//! points, and the [`RedemptionBook`] that decides each hold and void.
//!
//! Pure: `now`, hold ids and whether the server is reachable are arguments. A decision either
//! returns the [`Hold`] (or [`Void`]) the shell must store durably before it prints a receipt,
//! or a [`Refusal`] and changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use redemption_token::{Claims, MemberNo, TokenId, TokenKind};
use serde::{Deserialize, Serialize};

/// `12345` as `12,345`: how amounts are shown to people.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let head = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    let mut out = digits[..head].to_owned();
    let mut at = head;
    while at < digits.len() {
        out.push(',');
        out.push_str(&digits[at..at + 3]);
        at += 3;
    }
    out
}

/// A limit that differs by the kind of token shown: a printed card, static and reusable, gets
/// a lower one than a dynamic, single-use token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByKind {
    /// For a dynamic token (phone app, watch face).
    pub dynamic: u64,
    /// For a printed member card.
    pub card: u64,
}

impl ByKind {
    /// The limit for `kind`.
    pub fn of(&self, kind: TokenKind) -> u64 {
        match kind {
            TokenKind::Dynamic => self.dynamic,
            TokenKind::Card => self.card,
        }
    }
}

/// The redemption limits of the server's policy. Points are won (1 point = 1 won).
///
/// `min_amount` and `max_amount` bound every redemption. The others bound only what the
/// counter accepts while the server cannot be reached: the risk a terminal carries alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineLimits {
    /// The smallest redemption, online or not.
    pub min_amount: u64,
    /// The largest redemption, online or not.
    pub max_amount: u64,
    /// The largest offline redemption.
    pub per_transaction: ByKind,
    /// The most one member may redeem offline at this counter in one day (Asia/Seoul), in
    /// holds made with that kind of token; all kinds together stay under the larger figure.
    pub per_member_day: ByKind,
    /// The most points in offline holds the server has not yet answered for.
    pub terminal_outstanding: u64,
    /// The most offline holds the server has not yet answered for.
    pub max_stored_holds: u32,
    /// Seconds since the last good sync after which the counter stops redeeming offline.
    pub max_since_sync_secs: u32,
}

impl OfflineLimits {
    /// The limits a points policy's `[redemption]` section sets.
    pub fn from_rules(rules: &points_core::RedemptionRules) -> OfflineLimits {
        OfflineLimits {
            min_amount: rules.min_amount,
            max_amount: rules.max_amount,
            per_transaction: ByKind {
                dynamic: rules.offline_per_transaction,
                card: rules.offline_per_transaction_card,
            },
            per_member_day: ByKind {
                dynamic: rules.offline_per_member_day,
                card: rules.offline_per_member_day_card,
            },
            terminal_outstanding: rules.offline_terminal_outstanding,
            max_stored_holds: rules.offline_max_stored_holds,
            max_since_sync_secs: rules.offline_max_hours_since_sync.saturating_mul(3600),
        }
    }

    /// The limits of the policy in force on `day`; [`OfflineLimits::example`] when that
    /// policy sets none (the policies before redemption existed).
    pub fn in_force(policies: &points_core::PolicySet, day: NaiveDate) -> OfflineLimits {
        policies
            .in_force(day)
            .and_then(points_core::PointsPolicy::redemption)
            .map_or_else(OfflineLimits::example, OfflineLimits::from_rules)
    }

    /// Limits for tests and the demo, in the range a city program would set.
    pub fn example() -> OfflineLimits {
        OfflineLimits {
            min_amount: 100,
            max_amount: 100_000,
            per_transaction: ByKind {
                dynamic: 30_000,
                card: 10_000,
            },
            per_member_day: ByKind {
                dynamic: 50_000,
                card: 20_000,
            },
            terminal_outstanding: 300_000,
            max_stored_holds: 50,
            max_since_sync_secs: 24 * 3600,
        }
    }
}

/// A hold's id, made by the shell (unique per terminal); it makes the hold idempotent on the
/// server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HoldId(pub String);

impl fmt::Display for HoldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether the server answered just before this redemption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Connectivity {
    /// The server is reachable and will answer for the hold now: only the policy's minimum
    /// and maximum and the member's points apply.
    Online,
    /// The counter redeems on its own: the offline limits apply too.
    Offline,
}

/// Points set aside for a member at this counter: what the shell stores and sends to the
/// server, and what the receipt shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The shell's id.
    pub id: HoldId,
    /// Who spends.
    pub member: MemberNo,
    /// Points (won).
    pub amount: u64,
    /// The kind of token shown.
    pub kind: TokenKind,
    /// A dynamic token's id, so the server refuses a second use; `None` for a card.
    pub token_id: Option<String>,
    /// A card's serial; `None` for a dynamic token.
    pub card_serial: Option<u16>,
    /// When the counter made it.
    pub created_at: DateTime<Utc>,
    /// Made without the server: confirmed at reconciliation.
    pub offline: bool,
    /// The member's available points after this hold, as the counter knows them.
    pub remaining: u64,
}

/// A hold cancelled the same day; the shell stores and sends it like a hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Void {
    /// The hold cancelled.
    pub hold_id: HoldId,
    /// Its member.
    pub member: MemberNo,
    /// Its points, given back.
    pub amount: u64,
    /// When.
    pub at: DateTime<Utc>,
}

/// What the server said about a hold at reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Taken from the member's points.
    Posted,
    /// Not taken: the store must collect the amount another way.
    Rejected {
        /// The server's reason code (`overspent`, `replayed`, `revoked_member`, ...).
        reason: String,
    },
}

/// A member's points as the server last reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Points.
    pub points: u64,
    /// The server's time of the figure: it counts every hold the server had received. Holds
    /// made here from this time on are subtracted. The shell sends its outbox before it asks.
    pub as_of: DateTime<Utc>,
}

/// Why a hold or a void is refused. Nothing is recorded. Each has a stable
/// [`Refusal::code`], and messages in Korean ([`Refusal::ko`]) and English ([`Refusal::en`])
/// that say what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The member may not spend points.
    #[error("member {member} is revoked")]
    RevokedMember {
        /// The member.
        member: MemberNo,
    },
    /// The token's lifetime ended between the scan and the amount.
    #[error("token expired at {expires_at}")]
    TokenExpired {
        /// When it expired.
        expires_at: DateTime<Utc>,
    },
    /// This dynamic token already paid for a hold here.
    #[error("token already used for a hold")]
    TokenUsed,
    /// Offline for longer than the policy allows since the last good sync.
    #[error("terminal not synced since {last_sync:?}; offline redemption stopped")]
    StaleTerminal {
        /// The last good sync, `None` if never.
        last_sync: Option<DateTime<Utc>>,
    },
    /// Below the policy's minimum.
    #[error("amount {amount} below the minimum {min}")]
    BelowMinimum {
        /// Asked.
        amount: u64,
        /// The minimum.
        min: u64,
    },
    /// Above the policy's maximum.
    #[error("amount {amount} above the maximum {max}")]
    AboveMaximum {
        /// Asked.
        amount: u64,
        /// The maximum.
        max: u64,
    },
    /// The counter has no balance from the server for this member.
    #[error("no balance known for member {member}")]
    NoBalance {
        /// The member.
        member: MemberNo,
    },
    /// More than the member's available points.
    #[error("amount {amount} above the available {available} points")]
    InsufficientPoints {
        /// Asked.
        amount: u64,
        /// Available.
        available: u64,
    },
    /// Above the offline limit for one redemption with this kind of token.
    #[error("amount {amount} above the offline limit {limit} per transaction ({kind})")]
    OverTransactionLimit {
        /// Asked.
        amount: u64,
        /// The limit.
        limit: u64,
        /// The token's kind.
        kind: TokenKind,
    },
    /// Above the member's offline limit for today.
    #[error("member's offline redemptions today {used} + {amount} above {limit}")]
    OverDailyLimit {
        /// Asked.
        amount: u64,
        /// Already held offline today.
        used: u64,
        /// The limit.
        limit: u64,
    },
    /// Above the terminal's limit of unconfirmed offline points.
    #[error("terminal outstanding {outstanding} + {amount} above {limit}")]
    OverTerminalOutstanding {
        /// Asked.
        amount: u64,
        /// Unconfirmed offline points.
        outstanding: u64,
        /// The limit.
        limit: u64,
    },
    /// The terminal holds as many unconfirmed offline holds as it may.
    #[error("{limit} offline holds await the server")]
    TooManyStoredHolds {
        /// The limit.
        limit: u32,
    },
    /// A void on another day than the hold's (Asia/Seoul).
    #[error("hold made on {hold_day}; only same-day holds can be voided")]
    VoidOtherDay {
        /// The hold's day.
        hold_day: NaiveDate,
    },
    /// No such hold at this counter.
    #[error("unknown hold {hold_id}")]
    UnknownHold {
        /// The id asked for.
        hold_id: HoldId,
    },
    /// The hold was voided already.
    #[error("hold {hold_id} already voided")]
    AlreadyVoided {
        /// The id asked for.
        hold_id: HoldId,
    },
    /// A member card had [`MAX_PIN_FAILURES`] wrong PINs today, here or at any counters.
    #[error("card locked after {failures} wrong PINs")]
    CardLocked {
        /// Wrong PINs today.
        failures: u32,
    },
}

/// Wrong PINs in a day (Asia/Seoul) after which a member card is locked for the rest of the
/// day: at this counter at once, and at every counter once the server has counted them
/// (counters report each wrong PIN and pull the lock). A wrong PIN passes 1 time in 65,536,
/// so three guesses a day, wherever they are typed, give a thief almost nothing.
pub const MAX_PIN_FAILURES: u32 = 3;

/// Whether a card is locked, given its wrong PINs today (here, or the server's lock).
pub fn check_card_pin_failures(failures_since_sync: u32) -> Result<(), Refusal> {
    if failures_since_sync >= MAX_PIN_FAILURES {
        return Err(Refusal::CardLocked {
            failures: failures_since_sync,
        });
    }
    Ok(())
}

impl Refusal {
    /// A stable code, `snake_case`, for screens and logs.
    /// Every code [`Refusal::code`] gives, for the UI's closed set of error codes.
    pub const CODES: [&'static str; 16] = [
        "revoked_member",
        "token_expired",
        "token_used",
        "stale_terminal",
        "below_minimum",
        "above_maximum",
        "no_balance",
        "insufficient_points",
        "over_transaction_limit",
        "over_daily_limit",
        "over_terminal_outstanding",
        "too_many_stored_holds",
        "void_other_day",
        "unknown_hold",
        "already_voided",
        "card_locked",
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Refusal::RevokedMember { .. } => "revoked_member",
            Refusal::TokenExpired { .. } => "token_expired",
            Refusal::TokenUsed => "token_used",
            Refusal::StaleTerminal { .. } => "stale_terminal",
            Refusal::BelowMinimum { .. } => "below_minimum",
            Refusal::AboveMaximum { .. } => "above_maximum",
            Refusal::NoBalance { .. } => "no_balance",
            Refusal::InsufficientPoints { .. } => "insufficient_points",
            Refusal::OverTransactionLimit { .. } => "over_transaction_limit",
            Refusal::OverDailyLimit { .. } => "over_daily_limit",
            Refusal::OverTerminalOutstanding { .. } => "over_terminal_outstanding",
            Refusal::TooManyStoredHolds { .. } => "too_many_stored_holds",
            Refusal::VoidOtherDay { .. } => "void_other_day",
            Refusal::UnknownHold { .. } => "unknown_hold",
            Refusal::AlreadyVoided { .. } => "already_voided",
            Refusal::CardLocked { .. } => "card_locked",
        }
    }

    /// The message for the clerk, in Korean: what happened and what to do next.
    pub fn ko(&self) -> String {
        match self {
            Refusal::RevokedMember { member } => format!(
                "회원 {member}은(는) 포인트를 사용할 수 없는 상태입니다. 결제를 진행하지 \
                 마시고, 회원에게 팔팔 고객센터나 주민센터에 문의하도록 안내해 주세요."
            ),
            Refusal::TokenExpired { .. } => "QR 코드의 유효 시간이 지났습니다. 회원에게 \
                 QR 코드를 새로 띄워 달라고 한 뒤 다시 스캔해 주세요."
                .to_owned(),
            Refusal::TokenUsed => "이 QR 코드는 이미 결제에 사용되었습니다. 회원에게 QR \
                 코드를 새로 띄워 달라고 해 주세요."
                .to_owned(),
            Refusal::StaleTerminal { .. } => "단말기가 너무 오랫동안 서버와 동기화되지 \
                 않아 오프라인 결제를 할 수 없습니다. 인터넷 연결을 확인하고 동기화한 뒤 다시 \
                 시도해 주세요."
                .to_owned(),
            Refusal::BelowMinimum { min, .. } => format!(
                "최소 사용 금액은 {}원입니다. 금액을 {}원 이상으로 입력해 주세요.",
                grouped(*min),
                grouped(*min)
            ),
            Refusal::AboveMaximum { max, .. } => format!(
                "한 번에 쓸 수 있는 금액은 최대 {}원입니다. 금액을 줄여 다시 입력해 주세요.",
                grouped(*max)
            ),
            Refusal::NoBalance { .. } => "이 단말기에 회원의 포인트 잔액 정보가 없습니다. \
                 단말기를 서버와 동기화한 뒤 다시 스캔해 주세요."
                .to_owned(),
            Refusal::InsufficientPoints { available, .. } => format!(
                "포인트가 부족합니다. 사용 가능한 포인트는 {}P입니다. 금액을 줄여 다시 \
                 입력해 주세요.",
                grouped(*available)
            ),
            Refusal::OverTransactionLimit { limit, kind, .. } => format!(
                "오프라인 상태에서는 {} 한 번에 {}원까지만 쓸 수 있습니다. 금액을 줄이거나 \
                 서버에 연결된 뒤 다시 시도해 주세요.",
                kind_ko(*kind),
                grouped(*limit)
            ),
            Refusal::OverDailyLimit { used, limit, .. } => format!(
                "오프라인 상태에서 이 회원이 오늘 쓸 수 있는 한도({}원)를 넘습니다. 오늘 이미 \
                 {}원을 썼습니다. 금액을 {}원 이하로 줄이거나 서버에 연결된 뒤 다시 시도해 \
                 주세요.",
                grouped(*limit),
                grouped(*used),
                grouped(limit.saturating_sub(*used))
            ),
            Refusal::OverTerminalOutstanding {
                outstanding, limit, ..
            } => format!(
                "서버 확인을 기다리는 오프라인 결제가 {}원으로 단말기 한도({}원)에 \
                 가깝습니다. 금액을 줄이거나 인터넷에 연결해 동기화한 뒤 다시 시도해 주세요.",
                grouped(*outstanding),
                grouped(*limit)
            ),
            Refusal::TooManyStoredHolds { limit } => format!(
                "서버 확인을 기다리는 오프라인 결제가 {limit}건으로 한도에 이르렀습니다. \
                 인터넷에 연결해 동기화한 뒤 다시 시도해 주세요."
            ),
            Refusal::VoidOtherDay { hold_day } => format!(
                "{hold_day}의 결제는 취소할 수 없습니다. 결제 취소는 당일에만 가능합니다. \
                 팔팔 고객센터에 문의해 주세요."
            ),
            Refusal::UnknownHold { .. } => "이 단말기에 없는 결제 번호입니다. 영수증의 \
                 거래번호를 확인해 다시 입력해 주세요."
                .to_owned(),
            Refusal::AlreadyVoided { .. } => "이미 취소된 결제입니다. 다시 취소할 필요가 \
                 없습니다. 오늘의 정산 내역에서 확인할 수 있습니다."
                .to_owned(),
            Refusal::CardLocked { failures } => format!(
                "비밀번호가 {failures}번 틀려 이 회원카드는 오늘 하루 잠겼습니다(다른 약국과 \
                 편의점에도 알려집니다). 내일 다시 쓸 수 있습니다. 회원에게 앱의 QR 코드를 \
                 쓰도록 안내해 주세요."
            ),
        }
    }

    /// The message for the clerk, in English: what happened and what to do next.
    pub fn en(&self) -> String {
        match self {
            Refusal::RevokedMember { member } => format!(
                "Member {member} may not spend points. Do not proceed; ask the member to \
                 contact the Palpal help desk or a community center."
            ),
            Refusal::TokenExpired { .. } => "The code's time is over. Ask the member to show \
                 a new code, then scan it again."
                .to_owned(),
            Refusal::TokenUsed => "This code already paid for a redemption. Ask the member \
                 to show a new code."
                .to_owned(),
            Refusal::StaleTerminal { .. } => "The terminal has not synced with the server for \
                 too long, so it cannot redeem offline. Check the internet connection, sync, \
                 then try again."
                .to_owned(),
            Refusal::BelowMinimum { min, .. } => format!(
                "The smallest redemption is {} won. Enter at least {} won.",
                grouped(*min),
                grouped(*min)
            ),
            Refusal::AboveMaximum { max, .. } => format!(
                "The largest redemption is {} won. Enter a smaller amount.",
                grouped(*max)
            ),
            Refusal::NoBalance { .. } => "This terminal has no points balance for the member. \
                 Sync the terminal with the server, then scan again."
                .to_owned(),
            Refusal::InsufficientPoints { available, .. } => format!(
                "Not enough points: {} available. Enter a smaller amount.",
                grouped(*available)
            ),
            Refusal::OverTransactionLimit { limit, kind, .. } => format!(
                "Offline, {} may pay at most {} won at a time. Enter a smaller amount, \
                 or try again once the server is reachable.",
                kind_en(*kind),
                grouped(*limit)
            ),
            Refusal::OverDailyLimit { used, limit, .. } => format!(
                "Over the member's offline limit for today ({} won; {} won used). Enter at \
                 most {} won, or try again once the server is reachable.",
                grouped(*limit),
                grouped(*used),
                grouped(limit.saturating_sub(*used))
            ),
            Refusal::OverTerminalOutstanding {
                outstanding, limit, ..
            } => format!(
                "Offline redemptions awaiting the server come to {} won, near the terminal's \
                 limit of {} won. Enter a smaller amount, or connect and sync, then try again.",
                grouped(*outstanding),
                grouped(*limit)
            ),
            Refusal::TooManyStoredHolds { limit } => format!(
                "{limit} offline redemptions await the server, the most allowed. Connect and \
                 sync, then try again."
            ),
            Refusal::VoidOtherDay { hold_day } => format!(
                "The redemption of {hold_day} cannot be voided: voids are same-day only. \
                 Contact the Palpal help desk."
            ),
            Refusal::UnknownHold { .. } => "No redemption with this number at this terminal. \
                 Check the number on the receipt and enter it again."
                .to_owned(),
            Refusal::AlreadyVoided { .. } => "This redemption is already voided; nothing more \
                 to do. It shows in today's settlement."
                .to_owned(),
            Refusal::CardLocked { failures } => format!(
                "The PIN was wrong {failures} times, so this member card is locked for the rest \
                 of the day (other counters are told too); it works again tomorrow. Ask the \
                 member to use the app's code."
            ),
        }
    }
}

fn kind_en(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Dynamic => "an app code",
        TokenKind::Card => "a member card",
    }
}

fn kind_ko(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Dynamic => "앱 QR 코드로는",
        TokenKind::Card => "회원카드로는",
    }
}

/// A hold as the book keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    hold: Hold,
    voided: bool,
    outcome: Option<Outcome>,
}

impl Entry {
    /// An offline hold the server has not answered for: the terminal's own risk.
    fn outstanding(&self) -> bool {
        self.hold.offline && !self.voided && self.outcome.is_none()
    }
}

/// One counter's redemptions: what it knows from the server (balances, revocations, the last
/// good sync) and the holds it made. Decides each hold and void.
///
/// [`RedemptionBook::request_hold`] and [`RedemptionBook::void`] record in memory only when
/// they succeed and return what the shell must store. If storing fails, the shell rebuilds
/// the book from its store ([`RedemptionBook::restore_hold`], [`RedemptionBook::restore_void`]).
#[derive(Debug, Clone)]
pub struct RedemptionBook {
    limits: OfflineLimits,
    last_sync: Option<DateTime<Utc>>,
    balances: BTreeMap<MemberNo, Balance>,
    revoked: BTreeSet<MemberNo>,
    holds: BTreeMap<HoldId, Entry>,
}

impl RedemptionBook {
    /// An empty book under `limits`, never synced.
    pub fn new(limits: OfflineLimits) -> RedemptionBook {
        RedemptionBook {
            limits,
            last_sync: None,
            balances: BTreeMap::new(),
            revoked: BTreeSet::new(),
            holds: BTreeMap::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &OfflineLimits {
        &self.limits
    }

    /// New limits from the server's policy.
    pub fn set_limits(&mut self, limits: OfflineLimits) {
        self.limits = limits;
    }

    /// A sync with the server succeeded at `at`.
    pub fn synced(&mut self, at: DateTime<Utc>) {
        self.last_sync = Some(self.last_sync.map_or(at, |t| t.max(at)));
    }

    /// The last good sync.
    pub fn last_sync(&self) -> Option<DateTime<Utc>> {
        self.last_sync
    }

    /// The server's balance for `member`. An older figure than the one known is ignored.
    pub fn set_balance(&mut self, member: MemberNo, balance: Balance) {
        let known = self.balances.entry(member).or_insert(balance);
        if balance.as_of >= known.as_of {
            *known = balance;
        }
    }

    /// The members the server says may not spend, replacing the list known.
    pub fn set_revoked(&mut self, members: BTreeSet<MemberNo>) {
        self.revoked = members;
    }

    /// What the server said about a hold. The server's answer is final: the first one counts,
    /// a repeated answer (a retried sync) changes nothing. Unknown holds are ignored.
    pub fn settle(&mut self, hold_id: &HoldId, outcome: Outcome) {
        if let Some(entry) = self.holds.get_mut(hold_id) {
            entry.outcome.get_or_insert(outcome);
        }
    }

    /// Puts back a hold read from the store.
    pub fn restore_hold(&mut self, hold: Hold, outcome: Option<Outcome>) {
        self.holds.insert(
            hold.id.clone(),
            Entry {
                hold,
                voided: false,
                outcome,
            },
        );
    }

    /// Puts back a void read from the store.
    pub fn restore_void(&mut self, void: &Void) {
        if let Some(entry) = self.holds.get_mut(&void.hold_id) {
            entry.voided = true;
        }
    }

    /// The member's available points: the server's last balance minus the holds made here
    /// since (not voided, not rejected). `None` without a balance.
    pub fn available(&self, member: MemberNo) -> Option<u64> {
        let balance = self.balances.get(&member)?;
        let held: u64 = self
            .holds
            .values()
            .filter(|e| {
                e.hold.member == member
                    && e.hold.created_at >= balance.as_of
                    && !e.voided
                    && !matches!(e.outcome, Some(Outcome::Rejected { .. }))
            })
            .map(|e| e.hold.amount)
            .sum();
        Some(balance.points.saturating_sub(held))
    }

    /// Points in offline holds the server has not answered for.
    pub fn outstanding(&self) -> u64 {
        self.holds
            .values()
            .filter(|e| e.outstanding())
            .map(|e| e.hold.amount)
            .sum()
    }

    /// The number of offline holds the server has not answered for.
    pub fn stored_holds(&self) -> usize {
        self.holds.values().filter(|e| e.outstanding()).count()
    }

    /// What the member redeemed offline here on `now`'s day (Asia/Seoul): with `kind`, and
    /// with any kind. Voided and rejected holds do not count.
    fn offline_today(&self, member: MemberNo, kind: TokenKind, now: DateTime<Utc>) -> (u64, u64) {
        let today = points_core::kst_day(now);
        self.holds
            .values()
            .filter(|e| {
                e.hold.member == member
                    && e.hold.offline
                    && !e.voided
                    && !matches!(e.outcome, Some(Outcome::Rejected { .. }))
                    && points_core::kst_day(e.hold.created_at) == today
            })
            .fold((0, 0), |(same, all), e| {
                let a = e.hold.amount;
                (same + if e.hold.kind == kind { a } else { 0 }, all + a)
            })
    }

    /// Decides a hold of `amount` points for the member of a verified token at `now`. On
    /// success the hold is in the book and returned for the shell to store; on a refusal
    /// nothing changes. Checks run in the order of [`Refusal`]'s variants.
    pub fn request_hold(
        &mut self,
        id: HoldId,
        claims: &Claims,
        amount: u64,
        now: DateTime<Utc>,
        connectivity: Connectivity,
    ) -> Result<Hold, Refusal> {
        let member = claims.member;
        let kind = claims.kind;
        let offline = connectivity == Connectivity::Offline;
        let limits = &self.limits;
        if self.revoked.contains(&member) {
            return Err(Refusal::RevokedMember { member });
        }
        if now >= claims.expires_at {
            return Err(Refusal::TokenExpired {
                expires_at: claims.expires_at,
            });
        }
        let token_id = claims.token_id.map(|t: TokenId| t.to_string());
        if token_id.is_some() && self.holds.values().any(|e| e.hold.token_id == token_id) {
            return Err(Refusal::TokenUsed);
        }
        if offline {
            let fresh = self.last_sync.is_some_and(|t| {
                now.signed_duration_since(t).num_seconds() <= i64::from(limits.max_since_sync_secs)
            });
            if !fresh {
                return Err(Refusal::StaleTerminal {
                    last_sync: self.last_sync,
                });
            }
        }
        if amount < limits.min_amount {
            return Err(Refusal::BelowMinimum {
                amount,
                min: limits.min_amount,
            });
        }
        if amount > limits.max_amount {
            return Err(Refusal::AboveMaximum {
                amount,
                max: limits.max_amount,
            });
        }
        let available = self
            .available(member)
            .ok_or(Refusal::NoBalance { member })?;
        if amount > available {
            return Err(Refusal::InsufficientPoints { amount, available });
        }
        if offline {
            let limit = limits.per_transaction.of(kind);
            if amount > limit {
                return Err(Refusal::OverTransactionLimit {
                    amount,
                    limit,
                    kind,
                });
            }
            let (same, all) = self.offline_today(member, kind, now);
            let ceiling = limits
                .per_member_day
                .dynamic
                .max(limits.per_member_day.card);
            for (used, limit) in [(same, limits.per_member_day.of(kind)), (all, ceiling)] {
                if used + amount > limit {
                    return Err(Refusal::OverDailyLimit {
                        amount,
                        used,
                        limit,
                    });
                }
            }
            let stored = self.stored_holds();
            if stored >= limits.max_stored_holds as usize {
                return Err(Refusal::TooManyStoredHolds {
                    limit: limits.max_stored_holds,
                });
            }
            let outstanding = self.outstanding();
            if outstanding + amount > limits.terminal_outstanding {
                return Err(Refusal::OverTerminalOutstanding {
                    amount,
                    outstanding,
                    limit: limits.terminal_outstanding,
                });
            }
        }
        let hold = Hold {
            id: id.clone(),
            member,
            amount,
            kind,
            token_id,
            card_serial: claims.card_serial,
            created_at: now,
            offline,
            remaining: available - amount,
        };
        self.holds.insert(
            id,
            Entry {
                hold: hold.clone(),
                voided: false,
                outcome: None,
            },
        );
        Ok(hold)
    }

    /// Voids a hold made today (Asia/Seoul). On success the book gives its points back and
    /// returns the void for the shell to store; on a refusal nothing changes.
    pub fn void(&mut self, hold_id: &HoldId, now: DateTime<Utc>) -> Result<Void, Refusal> {
        let entry = self
            .holds
            .get_mut(hold_id)
            .ok_or_else(|| Refusal::UnknownHold {
                hold_id: hold_id.clone(),
            })?;
        if entry.voided {
            return Err(Refusal::AlreadyVoided {
                hold_id: hold_id.clone(),
            });
        }
        let hold_day = points_core::kst_day(entry.hold.created_at);
        if hold_day != points_core::kst_day(now) {
            return Err(Refusal::VoidOtherDay { hold_day });
        }
        entry.voided = true;
        Ok(Void {
            hold_id: hold_id.clone(),
            member: entry.hold.member,
            amount: entry.hold.amount,
            at: now,
        })
    }
}

#[cfg(test)]
#[path = "redemption_tests.rs"]
mod tests;
