//! Points policies as data: parsing, validation and the policy in force on a day.

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use crate::Error;

/// How the points cap is counted: per calendar year or per half year (January to June, July to
/// December).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapPeriodKind {
    /// January 1 to December 31.
    Year,
    /// January 1 to June 30, and July 1 to December 31.
    HalfYear,
}

/// One cap period: the points earned in it are capped together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CapPeriod {
    /// A calendar year.
    Year(i32),
    /// The first (1) or second (2) half of a calendar year.
    HalfYear(i32, u8),
}

impl CapPeriod {
    /// The period of `kind` that `day` belongs to.
    pub fn of(kind: CapPeriodKind, day: NaiveDate) -> CapPeriod {
        match kind {
            CapPeriodKind::Year => CapPeriod::Year(day.year()),
            CapPeriodKind::HalfYear => {
                CapPeriod::HalfYear(day.year(), if day.month() <= 6 { 1 } else { 2 })
            }
        }
    }
}

impl std::fmt::Display for CapPeriod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CapPeriod::Year(year) => write!(f, "{year}"),
            CapPeriod::HalfYear(year, half) => write!(f, "{year}-H{half}"),
        }
    }
}

/// A parsed, validated points policy: the rules in force from `effective_from` until
/// `effective_until` (or until the next policy of a [`PolicySet`] starts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointsPolicy {
    name: String,
    effective_from: NaiveDate,
    effective_until: Option<NaiveDate>,
    pub(crate) late_window_days: u32,
    pub(crate) plausible_max_steps: u32,
    pub(crate) daily: DailyRule,
    pub(crate) weekly_bonus: Option<WeeklyBonusRule>,
    pub(crate) cap: CapRule,
    multiplier_events: Vec<MultiplierEvent>,
    special_days: Vec<SpecialDay>,
    redemption: Option<RedemptionRules>,
}

/// The redemption limits a policy sets (`[redemption]` in the file; `docs/points-policy.md`).
/// Points are won (1 point = 1 won). The counter's rules (`merchant-core`) apply them; this
/// crate only reads and checks them, so that one file carries the whole program's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedemptionRules {
    /// The smallest redemption, online or not.
    pub min_amount: u64,
    /// The largest redemption, online or not.
    pub max_amount: u64,
    /// The largest offline redemption with a dynamic token (phone, watch face).
    pub offline_per_transaction: u64,
    /// The largest offline redemption with a printed card.
    pub offline_per_transaction_card: u64,
    /// The most a member may redeem offline at one counter in a day, dynamic tokens.
    pub offline_per_member_day: u64,
    /// The same with a printed card.
    pub offline_per_member_day_card: u64,
    /// The most points in offline holds a counter may hold that the server has not answered.
    pub offline_terminal_outstanding: u64,
    /// The most offline holds a counter may hold that the server has not answered.
    pub offline_max_stored_holds: u32,
    /// Hours since the last good sync after which a counter stops redeeming offline.
    pub offline_max_hours_since_sync: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DailyRule {
    pub(crate) goal_steps: u32,
    pub(crate) points: u32,
    pub(crate) senior: Option<SeniorGoal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeniorGoal {
    pub(crate) age: i32,
    pub(crate) goal_steps: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WeeklyBonusRule {
    pub(crate) min_goal_days: u32,
    pub(crate) require_weekend_day: bool,
    pub(crate) points: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CapRule {
    pub(crate) period: CapPeriodKind,
    pub(crate) points: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MultiplierEvent {
    from: NaiveDate,
    until: NaiveDate,
    multiplier: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SpecialDay {
    day: NaiveDate,
    points: u32,
}

impl PointsPolicy {
    /// Parses and validates a policy file (the format is in `docs/points-policy.md`).
    pub fn from_toml_str(text: &str) -> Result<PointsPolicy, Error> {
        let raw: RawPolicy = toml::from_str(text)?;
        raw.validate()
    }

    /// The policy's name, as written in the file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first day the policy is in force.
    pub fn effective_from(&self) -> NaiveDate {
        self.effective_from
    }

    /// The last day the policy is in force, if the file names one.
    pub fn effective_until(&self) -> Option<NaiveDate> {
        self.effective_until
    }

    /// The redemption limits, if the file sets them.
    pub fn redemption(&self) -> Option<&RedemptionRules> {
        self.redemption.as_ref()
    }

    /// The cap, in points, per cap period.
    pub fn cap_points(&self) -> u32 {
        self.cap.points
    }

    /// The cap period that `day` belongs to under this policy.
    pub fn cap_period(&self, day: NaiveDate) -> CapPeriod {
        CapPeriod::of(self.cap.period, day)
    }

    /// The daily step goal for a member born on `birth_date`, on `day`.
    pub fn goal_steps(&self, birth_date: NaiveDate, day: NaiveDate) -> u32 {
        match self.daily.senior {
            Some(senior) if crate::age_on(birth_date, day) >= senior.age => senior.goal_steps,
            _ => self.daily.goal_steps,
        }
    }

    /// The multiplier events' first and last days and multipliers, as the file lists them.
    pub fn multiplier_event_days(&self) -> impl Iterator<Item = (NaiveDate, NaiveDate, u32)> + '_ {
        self.multiplier_events
            .iter()
            .map(|event| (event.from, event.until, event.multiplier))
    }

    /// The special days and their points, as the file lists them.
    pub fn special_day_list(&self) -> impl Iterator<Item = (NaiveDate, u32)> + '_ {
        self.special_days
            .iter()
            .map(|special| (special.day, special.points))
    }

    /// The daily points multiplier on `day`: the largest of the events covering it, else 1.
    pub(crate) fn multiplier(&self, day: NaiveDate) -> u32 {
        self.multiplier_events
            .iter()
            .filter(|event| event.from <= day && day <= event.until)
            .map(|event| event.multiplier)
            .max()
            .unwrap_or(1)
    }

    /// The flat bonus for meeting the goal on `day`, 0 if it is not a special day.
    pub(crate) fn special_day_points(&self, day: NaiveDate) -> u32 {
        self.special_days
            .iter()
            .find(|special| special.day == day)
            .map_or(0, |special| special.points)
    }
}

/// Several policies, each in force from its effective date; picks the one for a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySet {
    /// Sorted by `effective_from`, no two in force on the same day.
    policies: Vec<PointsPolicy>,
}

impl PolicySet {
    /// Orders the policies by effective date and refuses two in force on the same day. A policy
    /// without `effective_until` ends the day before the next one starts.
    pub fn new(mut policies: Vec<PointsPolicy>) -> Result<PolicySet, Error> {
        if policies.is_empty() {
            return Err(Error::NoPolicy);
        }
        policies.sort_by_key(|policy| policy.effective_from);
        for pair in policies.windows(2) {
            let (earlier, later) = (&pair[0], &pair[1]);
            let overlaps = earlier.effective_from == later.effective_from
                || earlier
                    .effective_until
                    .is_some_and(|until| until >= later.effective_from);
            if overlaps {
                return Err(Error::Overlap {
                    earlier: earlier.name.clone(),
                    later: later.name.clone(),
                    day: later.effective_from,
                });
            }
        }
        Ok(PolicySet { policies })
    }

    /// The policy in force on `day`, if any.
    pub fn in_force(&self, day: NaiveDate) -> Option<&PointsPolicy> {
        let after = self
            .policies
            .partition_point(|policy| policy.effective_from <= day);
        let policy = self.policies.get(after.checked_sub(1)?)?;
        match policy.effective_until {
            Some(until) if day > until => None,
            _ => Some(policy),
        }
    }

    /// The policies, ordered by effective date.
    pub fn policies(&self) -> &[PointsPolicy] {
        &self.policies
    }
}

impl From<PointsPolicy> for PolicySet {
    fn from(policy: PointsPolicy) -> PolicySet {
        PolicySet {
            policies: vec![policy],
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: String,
    effective_from: toml::value::Datetime,
    effective_until: Option<toml::value::Datetime>,
    late_window_days: u32,
    plausible_max_steps: u32,
    daily: RawDaily,
    weekly_bonus: Option<RawWeeklyBonus>,
    cap: RawCap,
    #[serde(default)]
    multiplier_events: Vec<RawMultiplierEvent>,
    #[serde(default)]
    special_days: Vec<RawSpecialDay>,
    redemption: Option<RedemptionRules>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaily {
    goal_steps: u32,
    points: u32,
    senior_age: Option<u32>,
    senior_goal_steps: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeeklyBonus {
    min_goal_days: u32,
    require_weekend_day: bool,
    points: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCap {
    period: CapPeriodKind,
    points: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMultiplierEvent {
    name: String,
    from: toml::value::Datetime,
    until: toml::value::Datetime,
    multiplier: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpecialDay {
    name: String,
    day: toml::value::Datetime,
    points: u32,
}

impl RawPolicy {
    fn validate(self) -> Result<PointsPolicy, Error> {
        let name = self.name;
        let invalid = |reason: String| Error::Invalid {
            policy: name.clone(),
            reason,
        };
        let date = |field: &str, value: &toml::value::Datetime| plain_date(&name, field, value);

        let effective_from = date("effective_from", &self.effective_from)?;
        let effective_until = self
            .effective_until
            .as_ref()
            .map(|until| date("effective_until", until))
            .transpose()?;
        if effective_until.is_some_and(|until| until < effective_from) {
            return Err(invalid(
                "effective_until is before effective_from".to_owned(),
            ));
        }
        let in_force = |day: NaiveDate| {
            effective_from <= day && effective_until.is_none_or(|until| day <= until)
        };

        let senior = match (self.daily.senior_age, self.daily.senior_goal_steps) {
            (None, None) => None,
            (Some(age), Some(goal_steps)) => Some(SeniorGoal {
                age: i32::try_from(age)
                    .map_err(|_| invalid(format!("senior_age {age} is too large")))?,
                goal_steps,
            }),
            _ => {
                return Err(invalid(
                    "daily.senior_age and daily.senior_goal_steps go together".to_owned(),
                ))
            }
        };
        if self.plausible_max_steps == 0 {
            return Err(invalid("plausible_max_steps must be above 0".to_owned()));
        }

        let weekly_bonus = match self.weekly_bonus {
            None => None,
            Some(raw) => {
                if !(1..=7).contains(&raw.min_goal_days) {
                    return Err(invalid(format!(
                        "weekly_bonus.min_goal_days must be 1 to 7, not {}",
                        raw.min_goal_days
                    )));
                }
                Some(WeeklyBonusRule {
                    min_goal_days: raw.min_goal_days,
                    require_weekend_day: raw.require_weekend_day,
                    points: raw.points,
                })
            }
        };

        let mut multiplier_events = Vec::with_capacity(self.multiplier_events.len());
        for raw in &self.multiplier_events {
            let from = date(
                &format!("multiplier_events \"{}\" from", raw.name),
                &raw.from,
            )?;
            let until = date(
                &format!("multiplier_events \"{}\" until", raw.name),
                &raw.until,
            )?;
            if until < from || !in_force(from) || !in_force(until) {
                return Err(invalid(format!(
                    "multiplier event \"{}\" must run forward inside the policy's dates",
                    raw.name
                )));
            }
            if raw.multiplier == 0 {
                return Err(invalid(format!(
                    "multiplier event \"{}\" must have a multiplier of at least 1",
                    raw.name
                )));
            }
            multiplier_events.push(MultiplierEvent {
                from,
                until,
                multiplier: raw.multiplier,
            });
        }

        let mut special_days: Vec<SpecialDay> = Vec::with_capacity(self.special_days.len());
        for raw in &self.special_days {
            let day = date(&format!("special_days \"{}\" day", raw.name), &raw.day)?;
            if !in_force(day) {
                return Err(invalid(format!(
                    "special day \"{}\" ({day}) is outside the policy's dates",
                    raw.name
                )));
            }
            if special_days.iter().any(|special| special.day == day) {
                return Err(invalid(format!("{day} is listed twice in special_days")));
            }
            special_days.push(SpecialDay {
                day,
                points: raw.points,
            });
        }

        if let Some(r) = &self.redemption {
            if r.min_amount == 0 || r.min_amount > r.max_amount {
                return Err(invalid(
                    "redemption.min_amount must be above 0 and at most max_amount".to_owned(),
                ));
            }
            if r.offline_max_hours_since_sync == 0 {
                return Err(invalid(
                    "redemption.offline_max_hours_since_sync must be above 0".to_owned(),
                ));
            }
        }
        Ok(PointsPolicy {
            redemption: self.redemption,
            effective_from,
            effective_until,
            late_window_days: self.late_window_days,
            plausible_max_steps: self.plausible_max_steps,
            daily: DailyRule {
                goal_steps: self.daily.goal_steps,
                points: self.daily.points,
                senior,
            },
            weekly_bonus,
            cap: CapRule {
                period: self.cap.period,
                points: self.cap.points,
            },
            multiplier_events,
            special_days,
            name,
        })
    }
}

/// A TOML local date (`2025-12-01`), refusing times and offsets.
fn plain_date(
    policy: &str,
    field: &str,
    value: &toml::value::Datetime,
) -> Result<NaiveDate, Error> {
    let not_a_date = || Error::NotADate {
        policy: policy.to_owned(),
        field: field.to_owned(),
        value: value.to_string(),
    };
    match (value.date, value.time, value.offset) {
        (Some(date), None, None) => NaiveDate::from_ymd_opt(
            i32::from(date.year),
            u32::from(date.month),
            u32::from(date.day),
        )
        .ok_or_else(not_a_date),
        _ => Err(not_a_date()),
    }
}
