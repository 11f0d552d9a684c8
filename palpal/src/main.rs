//! `palpal`: the headless command line of a Palpal terminal. It runs terminal operations and
//! the checks an engineer wants without the app's UI, one subcommand per module. It holds no
//! rules of its own: those live in the cores (`points-core`, ...), and this binary only turns
//! files and arguments into their inputs and their decisions into output.

mod export;
mod points;
mod provision;
mod status;
mod sync;
mod token;

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
    /// Enroll this terminal with the central server (makes its key, stores its identity)
    Provision(provision::Args),
    /// Send the outbox to the central server, then pull what changed; print what became of it
    Sync(sync::Args),
    /// Show queued, in-flight and rejected operations, the last good sync and what is cached
    Status(status::Args),
    /// Print the terminal's outbox ledger as CSV
    Export(export::Args),
    /// Issue and verify redemption tokens (the QR codes members show at the counter)
    Token(token::Args),
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
        Command::Provision(args) => provision::run(args),
        Command::Sync(args) => sync::run(args),
        Command::Status(args) => status::run(args),
        Command::Export(args) => export::run(args),
        Command::Token(args) => token::run(args),
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
