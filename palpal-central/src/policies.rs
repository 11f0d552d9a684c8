//! The points policies the server rates with, as the database keeps them: the set in force
//! (built from the rows not cancelled, with the fingerprint pull cursors carry), and the rules
//! of a change, pure: what a new policy may be (parsed by `points-core`, not in force on a
//! day another already claims, starting after today), which policy may be cancelled, and the
//! preview that rates sample weeks under the set in force and under the set with the new one.
//! Time is an argument; nothing here reads a clock or a database.

use std::sync::Arc;

use chrono::{DateTime, Datelike as _, NaiveDate, TimeDelta, Utc};
use points_core::{Ledger, PointsPolicy, PolicySet, StepReport};
use sha2::Digest as _;

use crate::wire::PolicyText;

/// The largest policy file taken, in bytes.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// The policy files of `policies/`, compiled in, oldest first: what an empty database is
/// seeded with (migration 16).
pub const SEED_TEXTS: [&str; 3] = [
    include_str!("../../policies/seoul-2023.toml"),
    include_str!("../../policies/seoul-2025-03.toml"),
    include_str!("../../policies/seoul-2025-12.toml"),
];

/// One policy as the database keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRow {
    /// Its number, in the order published.
    pub id: i64,
    /// The policy's `name`.
    pub name: String,
    /// The file, byte for byte.
    pub text: String,
    /// Its first day.
    pub effective_from: NaiveDate,
    /// Its last day, if the file names one.
    pub effective_until: Option<NaiveDate>,
    /// When it was published; `None` for the files the database was seeded with.
    pub published_at: Option<DateTime<Utc>>,
    /// Who published it; `None` for the seed.
    pub published_by: Option<String>,
    /// When it was cancelled, if it was.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Who cancelled it.
    pub cancelled_by: Option<String>,
}

/// The set of policies in force (the rows not cancelled), read at one version of the table.
#[derive(Debug, Clone)]
pub struct InForce {
    /// The version of the policies table it was read at (raised by every change).
    pub version: i64,
    /// The set the ledger rates with.
    pub set: Arc<PolicySet>,
    /// The files, as pulls send them.
    pub texts: Vec<PolicyText>,
    /// 16 hexadecimal digits of the files' SHA-256, carried in pull cursors.
    pub fingerprint: String,
}

impl InForce {
    /// The set of `rows` not cancelled, at `version`.
    pub fn from_rows(version: i64, rows: &[PolicyRow]) -> anyhow::Result<InForce> {
        let live: Vec<&PolicyRow> = rows.iter().filter(|r| r.cancelled_at.is_none()).collect();
        let mut policies = Vec::with_capacity(live.len());
        let mut hasher = sha2::Sha256::new();
        let mut texts = Vec::with_capacity(live.len());
        let mut ordered = live.clone();
        ordered.sort_by_key(|row| (row.effective_from, row.id));
        for row in ordered {
            let policy = PointsPolicy::from_toml_str(&row.text).map_err(|error| {
                anyhow::anyhow!(
                    "stored policy {} ({}) does not read: {error}",
                    row.id,
                    row.name
                )
            })?;
            hasher.update(row.text.as_bytes());
            hasher.update([0]);
            texts.push(PolicyText {
                name: policy.name().to_owned(),
                effective_from: ymd(policy.effective_from()),
                effective_until: policy.effective_until().map(ymd),
                text: row.text.clone(),
            });
            policies.push(policy);
        }
        let set = PolicySet::new(policies)
            .map_err(|error| anyhow::anyhow!("the stored policies do not make a set: {error}"))?;
        // The digest of the files' digest, as the compiled-in files had: a terminal that
        // pulled them keeps its cursor.
        let digest = crate::signing::body_digest(&hasher.finalize());
        Ok(InForce {
            version,
            set: Arc::new(set),
            texts,
            fingerprint: digest[..16].to_owned(),
        })
    }

    /// The same set marked as never read (version -1), so that the next
    /// `store::policies::refresh` reads the database's.
    pub fn unread(self) -> InForce {
        InForce {
            version: -1,
            ..self
        }
    }

    /// The set of the seed files alone (version 0), as a database holds it once migrated.
    pub fn seed() -> anyhow::Result<InForce> {
        InForce::from_rows(0, &seed_rows()?)
    }
}

/// The seed files as rows (numbered from 1, published by no one).
pub fn seed_rows() -> anyhow::Result<Vec<PolicyRow>> {
    SEED_TEXTS
        .iter()
        .zip(1..)
        .map(|(text, id)| {
            let policy = PointsPolicy::from_toml_str(text)
                .map_err(|error| anyhow::anyhow!("a seed policy does not read: {error}"))?;
            Ok(PolicyRow {
                id,
                name: policy.name().to_owned(),
                text: (*text).to_owned(),
                effective_from: policy.effective_from(),
                effective_until: policy.effective_until(),
                published_at: None,
                published_by: None,
                cancelled_at: None,
                cancelled_by: None,
            })
        })
        .collect()
}

/// Why a change of the policies was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRefusal {
    /// The file is empty.
    Empty,
    /// The file is larger than [`MAX_POLICY_BYTES`].
    TooLarge {
        /// Its size, in bytes.
        bytes: usize,
    },
    /// The file does not read as a policy (`points-core`'s parser).
    Unreadable {
        /// Where, when the parser knows.
        line: Option<(usize, usize)>,
        /// What is wrong, as the parser says it.
        reason: String,
    },
    /// It would be in force on a day another policy in force already claims.
    Overlap {
        /// The policy starting first.
        earlier: String,
        /// The policy starting later.
        later: String,
        /// The first day both claim.
        day: NaiveDate,
    },
    /// It starts today or earlier: that would re-rate days already rated.
    Retroactive {
        /// Its first day.
        from: NaiveDate,
        /// Today, in Asia/Seoul.
        today: NaiveDate,
    },
    /// A policy in force has this name already.
    NameTaken,
    /// No policy in force has this name.
    NotFound,
    /// The policy has started (or starts today): it cannot be cancelled.
    Started {
        /// Its first day.
        from: NaiveDate,
    },
}

impl PolicyRefusal {
    /// The refusal's code, as notices and the command line name it.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyRefusal::Empty => "policy_empty",
            PolicyRefusal::TooLarge { .. } => "policy_too_large",
            PolicyRefusal::Unreadable { .. } => "policy_unreadable",
            PolicyRefusal::Overlap { .. } => "policy_overlap",
            PolicyRefusal::Retroactive { .. } => "policy_retroactive",
            PolicyRefusal::NameTaken => "policy_name_taken",
            PolicyRefusal::NotFound => "policy_not_found",
            PolicyRefusal::Started { .. } => "policy_started",
        }
    }

    /// The message in Korean, then in English.
    pub fn message(&self) -> (String, String) {
        match self {
            PolicyRefusal::Empty => (
                "정책 파일이 비어 있습니다. TOML 정책 파일을 올려 주세요.".to_owned(),
                "The policy file is empty. Upload a TOML policy file.".to_owned(),
            ),
            PolicyRefusal::TooLarge { bytes } => (
                format!(
                    "정책 파일이 너무 큽니다({bytes}바이트). {} KiB 이하로 올려 주세요.",
                    MAX_POLICY_BYTES / 1024
                ),
                format!(
                    "The policy file is too large ({bytes} bytes). Upload at most {} KiB.",
                    MAX_POLICY_BYTES / 1024
                ),
            ),
            PolicyRefusal::Unreadable { line, reason } => match line {
                Some((line, column)) => (
                    format!("정책 파일 {line}번째 줄 {column}번째 글자에 오류가 있습니다: {reason}"),
                    format!("The policy file has an error at line {line}, column {column}: {reason}"),
                ),
                None => (
                    format!("정책 파일의 내용이 올바르지 않습니다: {reason}"),
                    format!("The policy file is not valid: {reason}"),
                ),
            },
            PolicyRefusal::Overlap {
                earlier,
                later,
                day,
            } => (
                format!(
                    "정책 {earlier}과(와) {later}이(가) {day}에 함께 적용됩니다. 한 날에는 한 정책만 \
                     적용되므로 시작일이나 종료일을 바꿔 주세요."
                ),
                format!(
                    "Policies {earlier} and {later} would both be in force on {day}. One policy \
                     applies on a day: change the start or end date."
                ),
            ),
            PolicyRefusal::Retroactive { from, today } => (
                format!(
                    "시작일 {from}은(는) 오늘({today}) 이후여야 합니다. 이미 적립한 날의 포인트를 다시 \
                     계산하는 기능은 없으므로 지난 날이나 오늘부터 적용할 수 없습니다."
                ),
                format!(
                    "The start date {from} must be after today ({today}). Re-rating days already \
                     rated is not built, so a policy cannot start today or in the past."
                ),
            ),
            PolicyRefusal::NameTaken => (
                "같은 이름의 정책이 이미 있습니다. 파일의 name을 바꿔 주세요.".to_owned(),
                "A policy in force has this name already. Change the file's name.".to_owned(),
            ),
            PolicyRefusal::NotFound => (
                "그 이름의 정책이 없습니다(이미 취소되었을 수 있습니다).".to_owned(),
                "No policy in force has this name (it may be cancelled already).".to_owned(),
            ),
            PolicyRefusal::Started { from } => (
                format!(
                    "{from}에 이미 시작된 정책은 취소할 수 없습니다. 다시 계산하는 기능은 없습니다. \
                     바뀐 규칙은 새 정책으로 내일 이후부터 적용해 주세요."
                ),
                format!(
                    "A policy that started on {from} cannot be cancelled (re-rating is not built). \
                     Publish a new policy from tomorrow on instead."
                ),
            ),
        }
    }
}

/// A policy file read as one about to be published: the file itself, its policy, and the
/// text with `effective_from` set to `from` when one is given that differs from the file's.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The text to store and send to terminals.
    pub text: String,
    /// It parsed.
    pub policy: PointsPolicy,
}

/// Reads `text` as a policy to publish, from `from` if given (the file's own date
/// otherwise).
pub fn read_candidate(text: &str, from: Option<NaiveDate>) -> Result<Candidate, PolicyRefusal> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(PolicyRefusal::TooLarge { bytes: text.len() });
    }
    if text.trim().is_empty() {
        return Err(PolicyRefusal::Empty);
    }
    let unreadable = |text: &str, error: points_core::Error| PolicyRefusal::Unreadable {
        line: error.position(text).map(|p| (p.line, p.column)),
        reason: error.reason(),
    };
    let policy = PointsPolicy::from_toml_str(text).map_err(|e| unreadable(text, e))?;
    let Some(from) = from.filter(|from| *from != policy.effective_from()) else {
        return Ok(Candidate {
            text: text.to_owned(),
            policy,
        });
    };
    let moved = with_effective_from(text, from).ok_or_else(|| PolicyRefusal::Unreadable {
        line: None,
        reason: "effective_from is not on a line of its own".to_owned(),
    })?;
    let policy = PointsPolicy::from_toml_str(&moved).map_err(|e| unreadable(&moved, e))?;
    Ok(Candidate {
        text: moved,
        policy,
    })
}

/// `text` with its top-level `effective_from = ...` line replaced by one giving `from`.
fn with_effective_from(text: &str, from: NaiveDate) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 16);
    let mut done = false;
    let mut top_level = true;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            top_level = false;
        }
        let key = trimmed.split('=').next().unwrap_or_default().trim();
        if top_level && !done && key == "effective_from" && trimmed.contains('=') {
            out.push_str(&format!("effective_from = {}", ymd(from)));
            if line.ends_with('\n') {
                out.push('\n');
            }
            done = true;
        } else {
            out.push_str(line);
        }
    }
    done.then_some(out)
}

/// Whether `candidate` may join the policies in force (`live`) when published on `today`.
pub fn check_publish(
    live: &[PolicyRow],
    candidate: &PointsPolicy,
    today: NaiveDate,
) -> Result<(), PolicyRefusal> {
    if candidate.effective_from() <= today {
        return Err(PolicyRefusal::Retroactive {
            from: candidate.effective_from(),
            today,
        });
    }
    if live
        .iter()
        .any(|row| row.cancelled_at.is_none() && row.name == candidate.name())
    {
        return Err(PolicyRefusal::NameTaken);
    }
    with_candidate(live, candidate).map(|_| ())
}

/// The set in force with `candidate` added, or why they cannot be one set.
pub fn with_candidate(
    live: &[PolicyRow],
    candidate: &PointsPolicy,
) -> Result<PolicySet, PolicyRefusal> {
    let mut policies: Vec<PointsPolicy> = live
        .iter()
        .filter(|row| row.cancelled_at.is_none())
        .filter_map(|row| PointsPolicy::from_toml_str(&row.text).ok())
        .collect();
    policies.push(candidate.clone());
    PolicySet::new(policies).map_err(|error| match error {
        points_core::Error::Overlap {
            earlier,
            later,
            day,
        } => PolicyRefusal::Overlap {
            earlier,
            later,
            day,
        },
        other => PolicyRefusal::Unreadable {
            line: None,
            reason: other.to_string(),
        },
    })
}

/// Whether the policy in force named `name` (in `live`) may be cancelled on `today`: only
/// before its first day.
pub fn check_cancel<'a>(
    live: &'a [PolicyRow],
    name: &str,
    today: NaiveDate,
) -> Result<&'a PolicyRow, PolicyRefusal> {
    let row = live
        .iter()
        .find(|row| row.cancelled_at.is_none() && row.name == name)
        .ok_or(PolicyRefusal::NotFound)?;
    if row.effective_from <= today {
        return Err(PolicyRefusal::Started {
            from: row.effective_from,
        });
    }
    Ok(row)
}

/// One line of a preview: a sample member's days and what they earn under each set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewLine {
    /// What the sample is (`steps` a day, the member's age).
    pub steps: u32,
    /// The member's age on the first day.
    pub age: i32,
    /// The days rated.
    pub first: NaiveDate,
    /// The last day rated.
    pub last: NaiveDate,
    /// What the sample is: a week from the start, an event's first week, a special day.
    pub kind: PreviewKind,
    /// Points under the policies in force now.
    pub now: u64,
    /// Points with the new policy.
    pub new: u64,
}

/// Which days a preview line rates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewKind {
    /// The first week the new policy is in force.
    FirstWeek,
    /// The first week of a multiplier event.
    Event,
    /// One special day.
    SpecialDay,
}

/// Steps a day of the sample members.
pub const PREVIEW_STEPS: [u32; 3] = [3_000, 7_000, 12_000];
/// Ages of the sample members.
pub const PREVIEW_AGES: [i32; 2] = [45, 75];

/// Rates sample weeks under `now` (the set in force) and `new` (with the candidate), with
/// the real ledger: each of [`PREVIEW_STEPS`] a day for each of [`PREVIEW_AGES`] over the
/// candidate's first week, then 12,000 steps a day over each event's first week (up to
/// three) and on each special day (up to three).
pub fn preview(now: &PolicySet, new: &PolicySet, candidate: &PointsPolicy) -> Vec<PreviewLine> {
    let mut lines = Vec::new();
    let from = candidate.effective_from();
    let week = |first: NaiveDate| {
        let last = first + TimeDelta::days(6);
        match candidate.effective_until() {
            Some(until) if until < last => until,
            _ => last,
        }
    };
    for age in PREVIEW_AGES {
        for steps in PREVIEW_STEPS {
            lines.push(line(
                now,
                new,
                PreviewKind::FirstWeek,
                steps,
                age,
                from,
                week(from),
            ));
        }
    }
    for (first, last, _) in candidate.multiplier_event_days().take(3) {
        let last = last.min(first + TimeDelta::days(6));
        lines.push(line(now, new, PreviewKind::Event, 12_000, 45, first, last));
    }
    for (day, _) in candidate.special_day_list().take(3) {
        lines.push(line(
            now,
            new,
            PreviewKind::SpecialDay,
            12_000,
            45,
            day,
            day,
        ));
    }
    lines
}

fn line(
    now: &PolicySet,
    new: &PolicySet,
    kind: PreviewKind,
    steps: u32,
    age: i32,
    first: NaiveDate,
    last: NaiveDate,
) -> PreviewLine {
    // Born on January 1, `age` years before the first day's year (so `age` all year).
    let birth = NaiveDate::from_ymd_opt(first.year() - age, 1, 1).unwrap_or(first);
    let rate = |set: &PolicySet| {
        let mut ledger = Ledger::new(birth);
        let mut day = first;
        while day <= last {
            let reported_at = day
                .and_hms_opt(21, 0, 0)
                .and_then(|at| at.and_local_timezone(points_core::KST).single())
                .map(|at| at.fixed_offset());
            if let Some(reported_at) = reported_at {
                ledger.apply(
                    set,
                    &StepReport {
                        reported_at,
                        day,
                        steps,
                    },
                );
            }
            day += TimeDelta::days(1);
        }
        ledger.total()
    };
    PreviewLine {
        steps,
        age,
        first,
        last,
        kind,
        now: rate(now),
        new: rate(new),
    }
}

/// A day as stored, `YYYY-MM-DD`.
pub fn ymd(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
    }

    const EVENT: &str = include_str!("../../policies/example-event.toml");

    fn event_from(from: &str) -> PointsPolicy {
        read_candidate(EVENT, Some(day(from)))
            .expect("the event reads")
            .policy
    }

    /// Checks publishing the example event from `from` on `today` against the seed.
    fn check(from: &str, today: &str, expect: Result<(), &str>) {
        let rows = seed_rows().expect("seed");
        let got = read_candidate(EVENT, Some(day(from)))
            .and_then(|c| check_publish(&rows, &c.policy, day(today)));
        assert_eq!(got.map_err(|r| r.code()), expect, "{from} {today}");
    }

    #[test]
    fn publishing_is_refused_when_retroactive_or_overlapping() {
        // The example event's own events run in December 2025, so it must start by then.
        check("2025-12-10", "2025-12-09", Ok(()));
        check("2025-12-10", "2025-12-10", Err("policy_retroactive"));
        check("2025-12-10", "2026-01-01", Err("policy_retroactive"));
        // The seed's 2025-12 policy starts on 2025-12-01: the same first day overlaps.
        check("2025-12-01", "2025-11-01", Err("policy_overlap"));
        // Before 2025-03 ends (it names its last day): overlaps.
        check("2025-11-01", "2025-10-01", Err("policy_overlap"));
    }

    #[test]
    fn effective_from_is_moved_in_the_text() {
        let candidate = read_candidate(EVENT, Some(day("2025-12-14"))).expect("reads");
        assert!(candidate.text.contains("\neffective_from = 2025-12-14\n"));
        assert_eq!(candidate.policy.effective_from(), day("2025-12-14"));
        assert_eq!(
            read_candidate(EVENT, None).expect("reads").text,
            EVENT,
            "the file's own date keeps the file as it is"
        );
    }

    #[test]
    fn the_preview_shows_the_event_multiplier() {
        let seed = InForce::seed().expect("seed");
        let event = event_from("2025-12-10");
        let rows = seed_rows().expect("seed");
        let new = with_candidate(&rows, &event).expect("a set");
        let lines = preview(&seed.set, &new, &event);
        let event_week = lines
            .iter()
            .find(|l| l.kind == PreviewKind::Event)
            .expect("an event line");
        // 2025-12-15 to 21: seven goal days, a Saturday among them: 700 daily + 500 bonus
        // now; the event triples the daily points.
        assert_eq!((event_week.now, event_week.new), (1_200, 2_600));
        let walkers = lines
            .iter()
            .find(|l| l.kind == PreviewKind::FirstWeek && l.steps == 3_000)
            .expect("a first week");
        assert_eq!((walkers.now, walkers.new), (0, 0));
    }

    #[test]
    fn cancelling_only_before_the_start() {
        let mut rows = seed_rows().expect("seed");
        let event = read_candidate(EVENT, Some(day("2025-12-10"))).expect("reads");
        rows.push(PolicyRow {
            id: 4,
            name: event.policy.name().to_owned(),
            text: event.text,
            effective_from: day("2025-12-10"),
            effective_until: None,
            published_at: None,
            published_by: None,
            cancelled_at: None,
            cancelled_by: None,
        });
        assert!(check_cancel(&rows, "example-event", day("2025-12-09")).is_ok());
        assert_eq!(
            check_cancel(&rows, "example-event", day("2025-12-10")).map(|r| r.id),
            Err(PolicyRefusal::Started {
                from: day("2025-12-10")
            })
        );
        assert_eq!(
            check_cancel(&rows, "nope", day("2025-12-01")).map(|r| r.id),
            Err(PolicyRefusal::NotFound)
        );
        let seed = InForce::from_rows(1, &rows).expect("a set");
        assert_eq!(seed.texts.len(), 4);
        assert_ne!(seed.fingerprint, InForce::seed().expect("seed").fingerprint);
    }
}
