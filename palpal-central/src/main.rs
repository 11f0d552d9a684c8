//! The `palpal-central` command: runs the reference central server (`serve`) and provisions
//! terminals (`terminal add`, `terminal revoke`, `terminal list`) in the same database.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use palpal_central::clock::{Clock, SystemClock};
use palpal_central::http::{self, Config};
use palpal_central::store::{self, SqliteBackend, SqliteStore, Store as _};
use palpal_central::wire::Role;

#[derive(Parser)]
#[command(
    name = "palpal-central",
    about = "팔팔 중앙 서버 / Palpal central server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the sync API.
    Serve {
        /// The SQLite database file (created if missing).
        #[arg(long)]
        db: PathBuf,
        /// Address to listen on, such as 127.0.0.1:8088; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:8088")]
        listen: String,
        /// Requests worked on at once; beyond it the server answers 429.
        #[arg(long, default_value_t = Config::default().max_in_flight)]
        max_in_flight: usize,
        /// Largest request body in bytes; beyond it the server answers 413.
        #[arg(long, default_value_t = Config::default().max_body_bytes)]
        max_body_bytes: usize,
    },
    /// Provision terminals.
    Terminal {
        #[command(subcommand)]
        command: TerminalCommand,
    },
}

#[derive(Subcommand)]
enum TerminalCommand {
    /// Create a terminal and print its one-time enrollment code.
    Add {
        /// The SQLite database file.
        #[arg(long)]
        db: PathBuf,
        /// The site: a community center or a store.
        #[arg(long)]
        site: String,
        /// What the terminal may do.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Lock a terminal out.
    Revoke {
        /// The SQLite database file.
        #[arg(long)]
        db: PathBuf,
        /// The terminal, such as T-000001.
        #[arg(long)]
        terminal: String,
    },
    /// List terminals.
    List {
        /// The SQLite database file.
        #[arg(long)]
        db: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Kiosk,
    Counter,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Kiosk => Role::Kiosk,
            RoleArg::Counter => Role::Counter,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let policies = Arc::new(store::published_policies()?);
    match cli.command {
        Command::Serve {
            db,
            listen,
            max_in_flight,
            max_body_bytes,
        } => {
            let config = Config {
                max_in_flight,
                max_body_bytes,
                ..Config::default()
            };
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(serve(db, listen, config, policies))
        }
        Command::Terminal { command } => terminal(command, policies),
    }
}

async fn serve(
    db: PathBuf,
    listen: String,
    config: Config,
    policies: Arc<points_core::PolicySet>,
) -> anyhow::Result<()> {
    let backend = Arc::new(SqliteBackend::new(&db, policies));
    let router = http::router(backend, config, Arc::new(SystemClock))
        .with_context(|| format!("서버를 준비하지 못했습니다 / preparing the server on {db:?}"))?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| {
            format!("{listen}에서 기다릴 수 없습니다 / could not listen on {listen}")
        })?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{addr}").context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    drop(out);
    http::serve(listener, router)
        .await
        .context("서버가 멈췄습니다 / the server stopped")
}

fn terminal(command: TerminalCommand, policies: Arc<points_core::PolicySet>) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let mut out = std::io::stdout().lock();
    match command {
        TerminalCommand::Add { db, site, role } => {
            let site = site.trim();
            anyhow::ensure!(
                !site.is_empty(),
                "사이트 이름이 비어 있습니다 / the site name is empty"
            );
            let mut store = SqliteStore::open(&db, policies)?;
            let code = palpal_central::code::generate()?;
            let hash = palpal_central::code::hash(&code.replace('-', ""));
            let terminal = store
                .add_terminal(site, role.into(), &hash, now)
                .context("단말기를 만들지 못했습니다 / creating the terminal")?;
            writeln!(
                out,
                "terminal: {}\nsite: {}\nrole: {}\ncode: {code}",
                terminal.label(),
                terminal.site,
                terminal.role.as_str()
            )?;
            eprintln!(
                "이 등록 코드는 한 번만 쓸 수 있습니다. 단말기에 입력해 주세요. / \
                 The enrollment code works once; enter it on the terminal."
            );
        }
        TerminalCommand::Revoke { db, terminal } => {
            let id = store::parse_terminal_label(&terminal).with_context(|| {
                format!(
                    "단말기 번호는 T-000001 형식입니다 / a terminal id looks like T-000001, not {terminal:?}"
                )
            })?;
            let mut store = SqliteStore::open(&db, policies)?;
            let found = store
                .revoke_terminal(id, now)
                .context("단말기를 중지하지 못했습니다 / revoking the terminal")?;
            anyhow::ensure!(
                found,
                "{terminal} 단말기가 없습니다 / there is no terminal {terminal}"
            );
            writeln!(out, "revoked: {}", store::terminal_label(id))?;
        }
        TerminalCommand::List { db } => {
            let mut store = SqliteStore::open(&db, policies)?;
            for terminal in store.terminals()? {
                let state = if terminal.revoked {
                    "revoked"
                } else if terminal.public_key.is_some() {
                    "enrolled"
                } else {
                    "waiting"
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{state}\t{}",
                    terminal.label(),
                    terminal.site,
                    terminal.role.as_str(),
                    terminal.name.as_deref().unwrap_or("")
                )?;
            }
        }
    }
    Ok(())
}
