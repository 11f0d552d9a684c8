//! `palpal points`: rates a member's step reports (CSV) against points policies (TOML) and
//! prints what each report earned as JSON lines.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::NaiveDate;
use points_core::{Ledger, PointsPolicy, PolicySet, StepReport};
use serde::Serialize;

use crate::BadInput;

/// Rate step reports against points policies.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A points policy (TOML); repeat it to give several, each in force from its effective date
    #[arg(long = "policy", value_name = "FILE", required = true)]
    policies: Vec<PathBuf>,

    /// The member's birth date, for the goal of members aged 70 or over
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_birth_date)]
    birth_date: NaiveDate,

    /// Step reports, one per line: reported_at,day,steps (RFC 3339 with offset, YYYY-MM-DD, count)
    #[arg(long, value_name = "FILE.csv")]
    reports: PathBuf,
}

fn parse_birth_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        "생년월일은 YYYY-MM-DD 형식이어야 합니다(예: 1955-12-04). / \
         the birth date must be YYYY-MM-DD (e.g. 1955-12-04)"
            .to_owned()
    })
}

/// One CSV row, validated.
#[derive(Debug)]
struct Row {
    /// `reported_at` as written, echoed in the output.
    reported_at: String,
    report: StepReport,
}

#[derive(Serialize)]
struct EntryLine<'a> {
    kind: &'static str,
    day: NaiveDate,
    points: u32,
    reported_at: &'a str,
}

#[derive(Serialize)]
struct IgnoredLine<'a> {
    ignored: &'static str,
    day: NaiveDate,
    steps: u32,
    reported_at: &'a str,
}

#[derive(Serialize)]
struct TotalLine {
    total: u64,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let policies = load_policies(&args.policies)?;
    let text = std::fs::read_to_string(&args.reports).map_err(|error| {
        let path = args.reports.display();
        BadInput(format!(
            "걸음 보고 파일을 읽을 수 없습니다({path}: {error}). 경로를 확인한 뒤 다시 실행하세요. / \
             cannot read the reports file {path}: {error}; check the path and run again"
        ))
    })?;
    // Everything is validated before anything is printed.
    let rows = parse_reports(&text)?;

    let mut ledger = Ledger::new(args.birth_date);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for row in &rows {
        let outcome = ledger.apply(&policies, &row.report);
        for entry in outcome.entries() {
            write_line(
                &mut out,
                &EntryLine {
                    kind: entry.kind.as_str(),
                    day: entry.day,
                    points: entry.points,
                    reported_at: &row.reported_at,
                },
            )?;
        }
        if let Some(reason) = outcome.ignored() {
            write_line(
                &mut out,
                &IgnoredLine {
                    ignored: reason.as_str(),
                    day: row.report.day,
                    steps: row.report.steps,
                    reported_at: &row.reported_at,
                },
            )?;
        }
    }
    write_line(
        &mut out,
        &TotalLine {
            total: ledger.total(),
        },
    )?;
    out.flush()
        .context("writing the ledger entries to standard output")
}

fn write_line(out: &mut impl Write, line: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, line)
        .and_then(|()| out.write_all(b"\n").map_err(serde_json::Error::io))
        .context("writing the ledger entries to standard output")
}

fn load_policies(paths: &[PathBuf]) -> Result<PolicySet, BadInput> {
    let policies = paths
        .iter()
        .map(|path| load_policy(path))
        .collect::<Result<Vec<_>, _>>()?;
    PolicySet::new(policies).map_err(|error| {
        BadInput(format!(
            "정책 파일들의 적용 기간이 겹칩니다. 기간이 겹치지 않는 정책만 지정하세요. / \
             {error}; give policies whose dates do not overlap"
        ))
    })
}

fn load_policy(path: &Path) -> Result<PointsPolicy, BadInput> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|error| {
        BadInput(format!(
            "정책 파일을 읽을 수 없습니다({shown}: {error}). 경로를 확인한 뒤 다시 실행하세요. / \
             cannot read the policy file {shown}: {error}; check the path and run again"
        ))
    })?;
    PointsPolicy::from_toml_str(&text).map_err(|error| {
        BadInput(format!(
            "정책 파일이 올바르지 않습니다({shown}). 정책 파일을 고친 뒤 다시 실행하세요. / \
             the policy file {shown} is not valid; fix it and run again: {error}"
        ))
    })
}

/// Parses the whole CSV (points-core's `csv`), the error in Korean then English.
fn parse_reports(text: &str) -> Result<Vec<Row>, BadInput> {
    points_core::csv::parse_step_reports(text)
        .map(|rows| {
            rows.into_iter()
                .map(|row| Row {
                    reported_at: row.reported_at,
                    report: row.report,
                })
                .collect()
        })
        .map_err(|error| BadInput(format!("{} / {}", error.ko(), error.en())))
}
