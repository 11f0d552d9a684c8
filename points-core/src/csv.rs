//! Step reports as CSV: `reported_at,day,steps`, one report a line, an optional header on the
//! first line, blank lines and a UTF-8 byte-order mark skipped. Used by `palpal points` and any
//! import of reports from a file.
//!
//! The whole text is checked before anything is returned: one bad line refuses the file, and
//! the [`CsvError`] names the line and says what to fix (Korean [`CsvError::ko`], English
//! [`CsvError::en`]).

use chrono::{DateTime, NaiveDate};

use crate::StepReport;

const HEADER: [&str; 3] = ["reported_at", "day", "steps"];

/// One validated line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvReport {
    /// `reported_at` exactly as written, to echo it back.
    pub reported_at: String,
    /// The report.
    pub report: StepReport,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvProblem {
    /// Not three columns.
    Columns(usize),
    /// `reported_at` is not RFC 3339 with an offset.
    ReportedAt(String),
    /// `day` is not `YYYY-MM-DD`.
    Day(String),
    /// `steps` is not a number.
    StepsNotANumber(String),
    /// `steps` is negative.
    StepsNegative(String),
    /// `steps` does not fit in 32 bits.
    StepsTooLarge(String),
}

/// A line that is not a step report; nothing of the file is taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.en())]
pub struct CsvError {
    /// The line, counted from 1.
    pub line: usize,
    /// What is wrong.
    pub problem: CsvProblem,
}

impl CsvError {
    /// The message in Korean: the line, what is wrong, and to fix the file.
    pub fn ko(&self) -> String {
        let number = self.line;
        let fix = "CSV를 고친 뒤 다시 실행하세요.";
        match &self.problem {
            CsvProblem::Columns(count) => format!(
                "{number}행: 열이 {count}개입니다. reported_at,day,steps 세 열이어야 합니다. {fix}"
            ),
            CsvProblem::ReportedAt(text) => format!(
                "{number}행: 보고 시각이 시간대가 있는 RFC 3339 형식(예: \
                 2025-12-01T21:00:00+09:00)이 아닙니다('{text}'). {fix}"
            ),
            CsvProblem::Day(text) => {
                format!("{number}행: 날짜가 YYYY-MM-DD 형식의 날짜가 아닙니다('{text}'). {fix}")
            }
            CsvProblem::StepsNotANumber(text) => {
                format!("{number}행: 걸음 수가 숫자가 아닙니다('{text}'). {fix}")
            }
            CsvProblem::StepsNegative(text) => {
                format!("{number}행: 걸음 수가 음수입니다('{text}'). {fix}")
            }
            CsvProblem::StepsTooLarge(text) => {
                format!("{number}행: 걸음 수가 너무 큽니다('{text}'). {fix}")
            }
        }
    }

    /// The message in English.
    pub fn en(&self) -> String {
        let number = self.line;
        let fix = "fix the CSV and run again";
        match &self.problem {
            CsvProblem::Columns(count) => format!(
                "line {number}: expected 3 columns (reported_at,day,steps), found {count}; {fix}"
            ),
            CsvProblem::ReportedAt(text) => format!(
                "line {number}: reported_at '{text}' is not an RFC 3339 timestamp with offset \
                 (e.g. 2025-12-01T21:00:00+09:00); {fix}"
            ),
            CsvProblem::Day(text) => {
                format!("line {number}: day '{text}' is not a date (YYYY-MM-DD); {fix}")
            }
            CsvProblem::StepsNotANumber(text) => {
                format!("line {number}: steps '{text}' is not a number; {fix}")
            }
            CsvProblem::StepsNegative(text) => {
                format!("line {number}: steps '{text}' is negative; {fix}")
            }
            CsvProblem::StepsTooLarge(text) => {
                format!("line {number}: steps '{text}' is too large; {fix}")
            }
        }
    }
}

/// Parses a whole CSV text; the first bad line refuses it all.
pub fn parse_step_reports(text: &str) -> Result<Vec<CsvReport>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if number == 1 && fields == HEADER {
            continue;
        }
        rows.push(parse_row(&fields).map_err(|problem| CsvError {
            line: number,
            problem,
        })?);
    }
    Ok(rows)
}

fn parse_row(fields: &[&str]) -> Result<CsvReport, CsvProblem> {
    let &[reported_at, day, steps] = fields else {
        return Err(CsvProblem::Columns(fields.len()));
    };
    let reported_at_parsed = DateTime::parse_from_rfc3339(reported_at)
        .map_err(|_| CsvProblem::ReportedAt(reported_at.to_owned()))?;
    let day_parsed =
        NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| CsvProblem::Day(day.to_owned()))?;
    let steps_parsed = parse_steps(steps)?;
    Ok(CsvReport {
        reported_at: reported_at.to_owned(),
        report: StepReport {
            reported_at: reported_at_parsed,
            day: day_parsed,
            steps: steps_parsed,
        },
    })
}

fn parse_steps(text: &str) -> Result<u32, CsvProblem> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = text.strip_prefix('-') {
        return Err(if digits(rest) {
            CsvProblem::StepsNegative(text.to_owned())
        } else {
            CsvProblem::StepsNotANumber(text.to_owned())
        });
    }
    if !digits(text) {
        return Err(CsvProblem::StepsNotANumber(text.to_owned()));
    }
    text.parse()
        .map_err(|_| CsvProblem::StepsTooLarge(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bom_and_blank_lines_are_skipped() {
        let text = "\u{feff}reported_at,day,steps\n\n2025-12-01T21:00:00+09:00, 2025-12-01 ,8000\n";
        let rows = parse_step_reports(text).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].reported_at, "2025-12-01T21:00:00+09:00");
        assert_eq!(rows[0].report.steps, 8000);
        assert_eq!(
            rows[0].report.day,
            NaiveDate::from_ymd_opt(2025, 12, 1).unwrap()
        );
    }

    #[test]
    fn each_problem_names_its_line() {
        let ok = "2025-12-01T21:00:00+09:00,2025-12-01,1";
        let cases = [
            ("a,b", CsvProblem::Columns(2)),
            ("x,2025-12-01,1", CsvProblem::ReportedAt("x".into())),
            (
                "2025-12-01T21:00:00+09:00,12/01,1",
                CsvProblem::Day("12/01".into()),
            ),
            (
                "2025-12-01T21:00:00+09:00,2025-12-01,1e3",
                CsvProblem::StepsNotANumber("1e3".into()),
            ),
            (
                "2025-12-01T21:00:00+09:00,2025-12-01,-5",
                CsvProblem::StepsNegative("-5".into()),
            ),
            (
                "2025-12-01T21:00:00+09:00,2025-12-01,99999999999",
                CsvProblem::StepsTooLarge("99999999999".into()),
            ),
        ];
        for (bad, problem) in cases {
            let error = parse_step_reports(&format!("{ok}\n{bad}\n")).unwrap_err();
            assert_eq!(error, CsvError { line: 2, problem });
            assert!(error.ko().starts_with("2행: "), "{}", error.ko());
            assert!(error.en().starts_with("line 2: "), "{}", error.en());
        }
    }

    #[test]
    fn a_header_after_the_first_line_is_an_error() {
        let error =
            parse_step_reports("2025-12-01T21:00:00+09:00,2025-12-01,1\nreported_at,day,steps")
                .unwrap_err();
        assert_eq!(error.line, 2);
        assert_eq!(error.problem, CsvProblem::ReportedAt("reported_at".into()));
    }
}
