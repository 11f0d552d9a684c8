//! The points rules of the Palpal health-rewards program: which step reports earn how many
//! points under which policy. A [`PointsPolicy`] is data (a TOML file versioned by effective
//! date), a [`PolicySet`] picks the policy in force for a member's day, and a member's
//! [`Ledger`] takes [`StepReport`]s one at a time, in any order and possibly repeated, and
//! returns only the [`LedgerEntry`]s newly earned (or why a report earned nothing).
//!
//! This crate is a pure core: it does no IO, never reads the clock (time arrives as each
//! report's `reported_at`) and iterates nothing in random order, so the terminal and the
//! central server compute the same points and history can be re-rated. It does not store the
//! ledger, keep the member's health history or know about terminals; the adapters do that.
//! The format of policy files and the rules are described in `docs/points-policy.md`.

pub mod csv;
mod ledger;
mod policy;
#[cfg(test)]
mod tests;

pub use ledger::{
    age_on, kst_day, EntryKind, Ignored, Ledger, LedgerEntry, Outcome, SnapshotError, StepReport,
    KST,
};
pub use policy::{CapPeriod, CapPeriodKind, PointsPolicy, PolicySet, RedemptionRules};

/// Why a policy file or a set of policies was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is not TOML, or does not have the fields a policy needs.
    #[error("policy is not valid: {0}")]
    Toml(#[from] toml::de::Error),
    /// A date field holds something other than a plain date such as `2025-12-01`.
    #[error("policy {policy}: {field} must be a date like 2025-12-01, not {value}")]
    NotADate {
        /// The policy's `name`.
        policy: String,
        /// The field, as written in the file.
        field: String,
        /// What the file holds instead.
        value: String,
    },
    /// The fields parse but do not make sense together.
    #[error("policy {policy}: {reason}")]
    Invalid {
        /// The policy's `name`.
        policy: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// Two policies claim the same day.
    #[error("policies {earlier} and {later} are both in force on {day}")]
    Overlap {
        /// The policy that starts first.
        earlier: String,
        /// The policy that starts later.
        later: String,
        /// The first day both claim.
        day: chrono::NaiveDate,
    },
    /// A policy set needs at least one policy.
    #[error("no policy given")]
    NoPolicy,
}

/// A place in a policy file: its line and column, both from 1 (the column in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
}

impl Error {
    /// Where in `text`, the file the error came from, the parser found it; `None` for an
    /// error of the policy's meaning (dates, limits) or of a set.
    pub fn position(&self, text: &str) -> Option<Position> {
        let Error::Toml(error) = self else {
            return None;
        };
        let start = error.span()?.start.min(text.len());
        let before = text.get(..start)?;
        let line_start = before.rfind('\n').map_or(0, |at| at + 1);
        Some(Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        })
    }

    /// What is wrong, in one line without the quoted file: for a file that does not parse,
    /// the parser's message alone (its position is [`Error::position`]).
    pub fn reason(&self) -> String {
        match self {
            Error::Toml(error) => error.message().trim().to_owned(),
            other => other.to_string(),
        }
    }
}
