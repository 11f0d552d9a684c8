//! The points policies the server rates with, as the database keeps them: the set in force
//! (built from the rows not cancelled, with the fingerprint pull cursors carry), and the rules
//! of a change, pure: what a new policy may be (parsed by `points-core`, not in force on a
//! day another already claims, starting after today), which policy may be cancelled, and the
//! preview that rates sample weeks under the set in force and under the set with the new one,
//! and the re-rating of a correction to a policy in force: every member's reports rated under
//! both sets, the figures a preview shows, and the digest an apply is bound to.
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
    /// A re-rating's figures are no longer those its preview showed (a step report arrived,
    /// a balance or the policies changed): nothing was applied.
    Stale,
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
            PolicyRefusal::Stale => "policy_rerate_stale",
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
            PolicyRefusal::Stale => (
                "미리보기 뒤에 수치가 바뀌었습니다(걸음 보고가 들어왔거나 정책이 바뀌었습니다). \
                 아무것도 바꾸지 않았습니다. 다시 미리보고 확인해 주세요."
                    .to_owned(),
                "The figures changed since the preview (a step report arrived or the policies \
                 changed). Nothing was changed: preview again and confirm."
                    .to_owned(),
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

/// Whether `corrected` may replace the policy in force of the same name (in `live`): the
/// row it replaces and the set with it in that row's place, or why not. Unlike publishing, a
/// correction may start in the past: re-rating the days already rated is its purpose.
pub fn check_correction(
    live: &[PolicyRow],
    corrected: &PointsPolicy,
) -> Result<(PolicyRow, PolicySet), PolicyRefusal> {
    let old = live
        .iter()
        .find(|row| row.cancelled_at.is_none() && row.name == corrected.name())
        .ok_or(PolicyRefusal::NotFound)?;
    let others: Vec<PolicyRow> = live
        .iter()
        .filter(|row| row.id != old.id)
        .cloned()
        .collect();
    let set = with_candidate(&others, corrected)?;
    Ok((old.clone(), set))
}

/// A member's step reports in the order received, as re-rating reads them.
#[derive(Debug, Clone)]
pub struct MemberReports {
    /// The member's id.
    pub member: i64,
    /// Their birth date (a senior's goal).
    pub birth_date: NaiveDate,
    /// Their reports, in the order the server received them.
    pub reports: Vec<StepReport>,
    /// What they may still spend (credited less spent), before the re-rating.
    pub available: i64,
}

/// One member re-rated: their points under the set in force and under the corrected set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rerated {
    /// The member's id.
    pub member: i64,
    /// Points under the set in force.
    pub before: u64,
    /// Points under the corrected set.
    pub after: u64,
    /// What they could spend before the re-rating.
    pub available: i64,
    /// Their ledger under the corrected set, as a snapshot.
    pub ledger: Vec<u8>,
}

impl Rerated {
    /// The change of their points, `after - before`.
    pub fn change(&self) -> i64 {
        i64::try_from(self.after)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(self.before).unwrap_or(i64::MAX))
    }

    /// What is credited to (or taken back from) them: the change, except that no more is
    /// taken back than they can spend (a balance never goes negative).
    pub fn adjustment(&self) -> i64 {
        self.change().max(-self.available.max(0))
    }

    /// Points taken back by the correction that their balance did not cover: not recovered.
    pub fn not_recovered(&self) -> u64 {
        self.adjustment().abs_diff(self.change())
    }
}

/// Rates `history` under `now` (the set in force) and under `corrected`, with the same
/// ledger the write path rates with, reports in the order received.
pub fn rerate_member(now: &PolicySet, corrected: &PolicySet, history: &MemberReports) -> Rerated {
    let mut before = Ledger::new(history.birth_date);
    let mut after = Ledger::new(history.birth_date);
    for report in &history.reports {
        before.apply(now, report);
        after.apply(corrected, report);
    }
    Rerated {
        member: history.member,
        before: before.total(),
        after: after.total(),
        available: history.available,
        ledger: after.to_snapshot(),
    }
}

/// The bands of a re-rating's table: how many members change by how much, decreases first.
/// Each is `(lowest, highest)` change, inclusive.
pub const RERATE_BANDS: [(i64, i64); 8] = [
    (i64::MIN, -1_000),
    (-999, -500),
    (-499, -100),
    (-99, -1),
    (1, 99),
    (100, 499),
    (500, 999),
    (1_000, i64::MAX),
];

/// What a re-rating changes, over all members: the figures a preview shows and an apply is
/// bound to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RerateSummary {
    /// Members rated.
    pub members: u64,
    /// Step reports rated.
    pub reports: u64,
    /// Members whose points change.
    pub changed: u64,
    /// Points added, over the members who gain.
    pub increase: u64,
    /// Points taken away, over the members who lose.
    pub decrease: u64,
    /// The largest gain: the member and the points.
    pub largest_increase: Option<(i64, u64)>,
    /// The largest loss: the member and the points.
    pub largest_decrease: Option<(i64, u64)>,
    /// Members per band of [`RERATE_BANDS`].
    pub bands: [u64; 8],
    /// Members whose balance does not cover their loss.
    pub short: u64,
    /// Points of the losses not covered by balances: not taken back.
    pub not_recovered: u64,
}

impl RerateSummary {
    /// Counts `rerated` (which rated `reports` step reports).
    pub fn add(&mut self, rerated: &Rerated, reports: usize) {
        self.members += 1;
        self.reports += u64::try_from(reports).unwrap_or(u64::MAX);
        let change = rerated.change();
        if change == 0 {
            return;
        }
        self.changed += 1;
        let size = change.unsigned_abs();
        let largest = if change > 0 {
            self.increase += size;
            &mut self.largest_increase
        } else {
            self.decrease += size;
            &mut self.largest_decrease
        };
        if largest.is_none_or(|(_, most)| size > most) {
            *largest = Some((rerated.member, size));
        }
        if let Some(band) = RERATE_BANDS
            .iter()
            .position(|(low, high)| (*low..=*high).contains(&change))
        {
            self.bands[band] += 1;
        }
        let lost = rerated.not_recovered();
        if lost > 0 {
            self.short += 1;
            self.not_recovered += lost;
        }
    }

    /// The net change of all members' points, `increase - decrease`.
    pub fn total(&self) -> i64 {
        i64::try_from(self.increase)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(self.decrease).unwrap_or(i64::MAX))
    }

    /// What the balances change by: the total, less what is not recovered.
    pub fn applied(&self) -> i64 {
        self.total()
            .saturating_add(i64::try_from(self.not_recovered).unwrap_or(i64::MAX))
    }
}

/// The digest an apply must bring back from its preview: of the policies' version, the
/// corrected text, the figures, and each changed member's points and balance. Anything that
/// changes what the apply would do changes it.
pub fn rerate_digest(
    version: i64,
    text: &str,
    summary: &RerateSummary,
    changed: &[Rerated],
) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(version.to_be_bytes());
    hasher.update(sha2::Sha256::digest(text.as_bytes()));
    for figure in [summary.members, summary.reports, summary.changed] {
        hasher.update(figure.to_be_bytes());
    }
    for member in changed {
        hasher.update(member.member.to_be_bytes());
        hasher.update(member.before.to_be_bytes());
        hasher.update(member.after.to_be_bytes());
        hasher.update(member.available.to_be_bytes());
    }
    crate::signing::hex(&hasher.finalize())
}

/// What a re-rating shows (a preview) or did (an apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RerateReport {
    /// The policy corrected.
    pub name: String,
    /// The policy in force before, as stored.
    pub old: PolicyRow,
    /// The policies' version the figures were computed at.
    pub version: i64,
    /// The figures.
    pub summary: RerateSummary,
    /// The digest an apply must bring back ([`rerate_digest`]).
    pub digest: String,
    /// Whether it was applied (an apply), or stored nothing (a preview).
    pub applied: bool,
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

    /// The 2025-12 seed policy with 150 daily points instead of 100.
    fn corrected_2025_12() -> PointsPolicy {
        let text = SEED_TEXTS[2].replace("points = 100\n", "points = 150\n");
        read_candidate(&text, None).expect("reads").policy
    }

    fn report(day_text: &str, steps: u32) -> StepReport {
        let day = day(day_text);
        let reported_at = day
            .and_hms_opt(21, 0, 0)
            .and_then(|at| at.and_local_timezone(points_core::KST).single())
            .expect("a time")
            .fixed_offset();
        StepReport {
            reported_at,
            day,
            steps,
        }
    }

    #[test]
    fn a_correction_replaces_the_policy_of_its_name() {
        let rows = seed_rows().expect("seed");
        let (old, set) = check_correction(&rows, &corrected_2025_12()).expect("a set");
        assert_eq!(old.name, "seoul-2025-12");
        assert_eq!(set.policies().len(), 3);
        let unknown = read_candidate(EVENT, None).expect("reads");
        assert_eq!(
            check_correction(&rows, &unknown.policy).map(|(row, _)| row.id),
            Err(PolicyRefusal::NotFound)
        );
        // 2025-03 moved to end a day later overlaps 2025-12's first day.
        let longer = SEED_TEXTS[1].replace(
            "effective_until = 2025-11-30",
            "effective_until = 2025-12-01",
        );
        let longer = read_candidate(&longer, None).expect("reads").policy;
        assert_eq!(
            check_correction(&rows, &longer)
                .map(|(row, _)| row.id)
                .map_err(|r| r.code()),
            Err("policy_overlap")
        );
    }

    /// Re-rates a member with `reports`, `available` points to spend, under the corrected
    /// 2025-12 policy: (before, after, adjustment, not recovered).
    fn check_member(reports: &[(&str, u32)], available: i64, expect: (u64, u64, i64, u64)) {
        let seed = InForce::seed().expect("seed");
        let (_, corrected) =
            check_correction(&seed_rows().expect("seed"), &corrected_2025_12()).expect("a set");
        let history = MemberReports {
            member: 1,
            birth_date: day("1980-05-05"),
            reports: reports.iter().map(|(d, s)| report(d, *s)).collect(),
            available,
        };
        let up = rerate_member(&seed.set, &corrected, &history);
        assert_eq!(
            (up.before, up.after, up.adjustment(), up.not_recovered()),
            expect,
            "{reports:?}"
        );
        // Back the other way: the corrected set in force, the seed as the correction.
        let history = MemberReports {
            available: available + up.adjustment(),
            ..history
        };
        let down = rerate_member(&corrected, &seed.set, &history);
        assert_eq!(down.change(), -up.change());
        assert!(
            history.available + down.adjustment() >= 0,
            "a balance never goes negative"
        );
    }

    #[test]
    fn members_are_rerated_from_their_reports() {
        // No goal met: nothing changes.
        check_member(&[("2025-12-02", 3_000)], 0, (0, 0, 0, 0));
        // Before 2025-12 (the 2025-03 policy, 200 a day): the correction does not reach it.
        check_member(&[("2025-11-20", 9_000)], 200, (200, 200, 0, 0));
        // Two goal days in 2025-12, the lower count of one day ignored: 2 x 100 -> 2 x 150.
        check_member(
            &[
                ("2025-12-02", 9_000),
                ("2025-12-02", 8_500),
                ("2025-12-03", 12_000),
            ],
            200,
            (200, 300, 100, 0),
        );
    }

    #[test]
    fn a_loss_is_taken_back_only_as_far_as_the_balance_covers() {
        let member = |available| Rerated {
            member: 7,
            before: 300,
            after: 200,
            available,
            ledger: Vec::new(),
        };
        assert_eq!(
            (member(300).adjustment(), member(300).not_recovered()),
            (-100, 0)
        );
        assert_eq!(
            (member(40).adjustment(), member(40).not_recovered()),
            (-40, 60)
        );
        assert_eq!(
            (member(0).adjustment(), member(0).not_recovered()),
            (0, 100)
        );
        assert_eq!(
            (member(-5).adjustment(), member(-5).not_recovered()),
            (0, 100)
        );
    }

    #[test]
    fn the_summary_counts_bands_and_extremes() {
        let rerated = |member, before, after, available| Rerated {
            member,
            before,
            after,
            available,
            ledger: Vec::new(),
        };
        let mut summary = RerateSummary::default();
        for (r, reports) in [
            (rerated(1, 100, 150, 0), 3),
            (rerated(2, 1_000, 2_500, 0), 10),
            (rerated(3, 700, 100, 50), 7),
            (rerated(4, 80, 80, 80), 2),
            (rerated(5, 10, 5, 100), 1),
        ] {
            summary.add(&r, reports);
        }
        assert_eq!(
            summary,
            RerateSummary {
                members: 5,
                reports: 23,
                changed: 4,
                increase: 1_550,
                decrease: 605,
                largest_increase: Some((2, 1_500)),
                largest_decrease: Some((3, 600)),
                bands: [0, 1, 0, 1, 1, 0, 0, 1],
                short: 1,
                not_recovered: 550,
            }
        );
        assert_eq!(summary.total(), 945);
        assert_eq!(summary.applied(), 1_495);
        let digest = |summary: &RerateSummary| rerate_digest(3, "text", summary, &[]);
        let before = digest(&summary);
        summary.add(&rerated(6, 0, 0, 0), 1);
        assert_ne!(digest(&summary), before, "a report more changes the digest");
        assert_ne!(rerate_digest(4, "text", &summary, &[]), digest(&summary));
    }
}
