//! `palpal`: the headless command line of a Palpal terminal. It runs terminal operations and
//! the checks an engineer wants without the app's UI, one subcommand per module. It holds no
//! rules of its own: those live in the cores (`points-core`, ...), and this binary only turns
//! files and arguments into their inputs and their decisions into output.

mod points;

use std::fmt;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Palpal terminal command line.
#[derive(Debug, Parser)]
#[command(name = "palpal", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Rate step reports against points policies; print ledger entries as JSON lines
    Points(points::Args),
}

/// Input the person running the command must fix; exits with code 2. The message is Korean
/// first, then English, and says what to do.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Points(args) => points::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("palpal: {error:#}");
            if error.is::<BadInput>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
