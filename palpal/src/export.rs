//! `palpal export`: the terminal's outbox ledger (every operation, its state and the server's
//! answer) as CSV on standard output, with a header. Payloads (names, phone numbers) are not
//! exported.

use std::io::Write as _;
use std::path::PathBuf;

use terminal_store::Store;

/// Print the terminal's outbox ledger as CSV
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The terminal's database file
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
}

const HEADER: &str =
    "op_id,kind,state,created_at,attempts,sent_at,settled_at,result,reason,member_number,message";

pub fn run(args: &Args) -> anyhow::Result<()> {
    let store = Store::open(&args.db)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "{HEADER}")?;
    for e in store.outbox_entries(false)? {
        let attempts = e.attempts.to_string();
        let fields = [
            e.op_id.as_str(),
            e.kind.as_str(),
            e.state.as_str(),
            e.created_at.as_str(),
            attempts.as_str(),
            e.sent_at.as_deref().unwrap_or(""),
            e.settled_at.as_deref().unwrap_or(""),
            e.result.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or(""),
            e.member_number.as_deref().unwrap_or(""),
            e.message.as_deref().unwrap_or(""),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    out.flush()?;
    Ok(())
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        for (input, expect) in [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("두 줄\n", "\"두 줄\n\""),
        ] {
            assert_eq!(csv_field(input), expect);
        }
    }
}
