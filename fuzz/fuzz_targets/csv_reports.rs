//! Step-report CSV imports: any text is refused with a line number inside the text or parsed
//! into reports that survive writing back and parsing again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use points_core::csv::parse_step_reports;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_step_reports(text) {
        Ok(rows) => {
            let again: String = rows
                .iter()
                .map(|r| format!("{},{},{}\n", r.reported_at, r.report.day, r.report.steps))
                .collect();
            assert_eq!(parse_step_reports(&again).as_ref(), Ok(&rows));
        }
        Err(error) => {
            assert!(error.line >= 1 && error.line <= text.lines().count().max(1));
            assert!(!error.ko().is_empty() && !error.en().is_empty());
        }
    }
});
