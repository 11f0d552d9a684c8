//! The `palpal-central` command: runs the reference central server (`serve`) and provisions
//! terminals (`terminal add`, `terminal revoke`, `terminal list`) in the same database.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use kiosk_core::admission::DayRule;
use palpal_central::clock::{Clock, SystemClock};
use palpal_central::console::rules;
use palpal_central::cpu::WriterCpu;
use palpal_central::http::{self, Config};
use palpal_central::store::console::Actor;
use palpal_central::store::{self, postgres, SqliteBackend, SqliteStore, Store};
use sync_protocol::wire::Role;

/// The server's allocator. With glibc's, large request bodies (a terminal's batch of up to
/// 1,000 operations) freed by many threads left the heap fragmented: under overload with
/// 500-operation batches RSS rose past 330 MiB and kept rising. mimalloc gives freed pages
/// back and is quicker at the writer's many small allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "palpal-central",
    about = "팔팔 중앙 서버 / Palpal central server"
)]
struct Cli {
    /// The file of the key members' names, birth dates and phones are sealed under in the
    /// database (32 bytes; made, 0600, when the database has none yet). By default
    /// `<database>.secrets/data.key`: keep it instead on storage apart from the database and
    /// its backups, and give it to every command on that database.
    #[arg(long, global = true, env = "PALPAL_DATA_KEY_FILE")]
    data_key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The `--data-key-file` given, for every command's store.
static DATA_KEY_FILE: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// Whether `db` is a PostgreSQL URL rather than a SQLite file.
fn is_postgres(db: &std::path::Path) -> bool {
    db.to_str().is_some_and(postgres::is_url)
}

/// The file of the data key of the database at `db`: `--data-key-file`, or for a SQLite file
/// `<database>.secrets/data.key`; a PostgreSQL database has no folder to keep it beside.
fn data_key_file(db: &std::path::Path) -> anyhow::Result<PathBuf> {
    match DATA_KEY_FILE.get().cloned().flatten() {
        Some(file) => Ok(file),
        None if is_postgres(db) => Err(StartRefused(
            "PostgreSQL 데이터베이스에는 회원 개인정보를 봉인할 키 파일이 필요합니다: --data-key-file 로 \
             주세요 (없으면 만듭니다). / a PostgreSQL database needs the file of the key members' \
             personal data is sealed under: give it with --data-key-file (it is made if missing)."
                .to_owned(),
        )
        .into()),
        None => Ok(palpal_central::personal::default_file(db)),
    }
}

/// A reason the program cannot start that the operator must fix (a database it cannot
/// reach or read, a key that is not the database's): exit code 2, nothing written.
#[derive(Debug)]
struct StartRefused(String);

impl std::fmt::Display for StartRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartRefused {}

/// Opens the database at `db` (a SQLite file, or a PostgreSQL URL) with its data key; a
/// database that cannot be opened is a [`StartRefused`].
fn open_store(
    db: &std::path::Path,
    policies: Arc<points_core::PolicySet>,
) -> anyhow::Result<Box<dyn Store>> {
    let key = data_key_file(db)?;
    let opened: anyhow::Result<Box<dyn Store>> = match db.to_str() {
        Some(url) if postgres::is_url(url) => {
            postgres::PgStore::open(url, policies, &key).map(|s| Box::new(s) as Box<dyn Store>)
        }
        _ => SqliteStore::open_with_data_key(db, policies, &key)
            .map(|s| Box::new(s) as Box<dyn Store>),
    };
    opened.map_err(|error| StartRefused(format!("{error:#}")).into())
}

// Parsed once at start: the size of `serve`'s options does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve the sync API.
    Serve {
        /// The database: a SQLite file (created if missing) or a PostgreSQL URL.
        #[arg(long)]
        db: PathBuf,
        /// Address to listen on, such as 127.0.0.1:8088; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:8088")]
        listen: String,
        /// Requests worked on at once at most; beyond it the server answers 429.
        #[arg(long, default_value_t = Config::default().max_in_flight)]
        max_in_flight: usize,
        /// Request bodies worked on at once at most, in bytes; beyond it the server answers
        /// 429 (one larger request is still taken, alone).
        #[arg(long, default_value_t = Config::default().max_in_flight_bytes)]
        max_in_flight_bytes: usize,
        /// How long, in milliseconds, writes may wait for the writer before fewer requests
        /// are let in at once (never fewer than 8): until committed with one writer
        /// (SQLite), until a writer takes them with several (PostgreSQL); 0 keeps
        /// `--max-in-flight` always.
        #[arg(long, default_value_t = 50)]
        latency_target_ms: u64,
        /// Largest request body in bytes; beyond it the server answers 413.
        #[arg(long, default_value_t = Config::default().max_body_bytes)]
        max_body_bytes: usize,
        /// The secret file of a redemption key (`key add --secret-out`) that signs member
        /// cards for kiosks; without it kiosks hand out sign-up receipts only.
        #[arg(long)]
        card_key: Option<PathBuf>,
        /// How much lower (in nice steps) the HTTP threads' CPU priority is than the
        /// writer's (those reading and refusing requests and those working on admitted ones):
        /// under overload, parsing and refusing requests then gets only the CPU that
        /// committing leaves. 0 keeps them equal.
        #[arg(long, default_value_t = Config::default().http_nice, value_parser = clap::value_parser!(u8).range(0..=19))]
        http_nice: u8,
        /// The CPU the writer thread keeps to itself, every other thread running on the
        /// rest: `auto` (the last CPU this process may use, when it may use two or more),
        /// `off` (shared), or a CPU's number.
        #[arg(long, default_value_t = WriterCpu::Auto)]
        writer_cpu: WriterCpu,
        /// Writer threads on PostgreSQL, each with a connection of its own, committing
        /// write groups side by side (SQLite always has one writer).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
        writers: u64,
        /// How long a connection may take to send a request's headers, in milliseconds.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        header_timeout_ms: u64,
        /// How long a request body may pause between two pieces, in milliseconds; a body
        /// that pauses longer is cut (408) and its connection closed.
        #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
        body_idle_timeout_ms: u64,
        /// The slowest a request body may arrive on average, in bytes a second, after its
        /// first 2 seconds; a slower one is cut (408).
        #[arg(long, default_value_t = Config::default().min_body_rate, value_parser = clap::value_parser!(u64).range(1..))]
        min_body_rate: u64,
        /// Connections open at once from one address at most (a shop's terminals may share
        /// one address behind a router); beyond it a new connection is closed at once.
        #[arg(long, default_value_t = Config::default().max_connections_per_address)]
        max_connections_per_address: usize,
        /// Connections open at once that have not yet sent a request naming an enrolled
        /// terminal at most; beyond it a new connection is closed at once.
        #[arg(long, default_value_t = Config::default().max_unknown_connections)]
        max_unknown_connections: usize,
        /// Serve `/metrics` on this address of its own (such as 127.0.0.1:9188), for the
        /// operator's monitoring only; the terminals' address does not serve it then.
        #[arg(long)]
        metrics_listen: Option<String>,
        /// Serve `/metrics` on the terminals' address too, but only to requests with
        /// `Authorization: Bearer <the file's first line>`. Without this or
        /// `--metrics-listen`, `/metrics` is not served at all.
        #[arg(long)]
        metrics_token_file: Option<PathBuf>,
        /// The certificate (PEM, leaf first) to serve the terminals over TLS with; needs
        /// `--tls-key`. Without it the server speaks plain HTTP, which terminals take only
        /// on a loopback address.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Serve the operator console (`/console/`) on this address of its own, such as
        /// 127.0.0.1:8089; off when not given. Over TLS with `--tls-cert`, otherwise plain
        /// HTTP on a loopback address only.
        #[arg(long)]
        console_listen: Option<String>,
        /// The console flags a terminal not heard from for longer than this, in minutes (by
        /// the server's clock).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=10_080))]
        silent_after_minutes: u32,
        /// The address terminals reach this server by (such as https://central.example:8088),
        /// put with the code in the console's provisioning QR codes. By default the address
        /// served on, unless that is a wildcard such as 0.0.0.0.
        #[arg(long)]
        terminal_url: Option<String>,
    },
    /// Operators of the console.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// The points policies in the database (the console's Policies page does the same).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Provision terminals.
    Terminal {
        #[command(subcommand)]
        command: TerminalCommand,
    },
    /// The admission schedule: who may sign up on which day.
    Schedule {
        #[command(subcommand)]
        command: ScheduleCommand,
    },
    /// Sign-up quota leases per site and day.
    Quota {
        #[command(subcommand)]
        command: QuotaCommand,
    },
    /// Members.
    Member {
        #[command(subcommand)]
        command: MemberCommand,
    },
    /// Redemption-token signing keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Reports for the operator.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// The server's TLS certificate.
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
    /// The watch certificate authorities whose watches' signed steps are credited.
    WatchCa {
        #[command(subcommand)]
        command: WatchCaCommand,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Add an operator of the console and print their one-time setup code (valid 7 days).
    Add {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
        /// The name they sign in with (letters, digits, spaces and . - _ @; 64 at most).
        #[arg(long)]
        name: String,
        /// What they may do.
        #[arg(long, value_enum)]
        role: OperatorRoleArg,
    },
    /// List the console's operators.
    List {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// List every policy: in force, scheduled, ended and cancelled.
    List {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
    },
    /// Publish a policy file (an event too: a policy with multiplier or special days) to
    /// start on a later day; terminals get it at their next sync.
    Add {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
        /// The policy file (TOML, `docs/points-policy.md`), at most 64 KiB.
        #[arg(long)]
        file: PathBuf,
        /// Its first day (YYYY-MM-DD, after today in Asia/Seoul); without it, the file's
        /// `effective_from`.
        #[arg(long)]
        effective_from: Option<chrono::NaiveDate>,
    },
    /// Correct a policy in force (the file has its name; it may start in the past) and
    /// re-rate every member's points from their step reports. Without `--apply`, a preview:
    /// the figures and a digest, nothing stored. With `--apply DIGEST` (the preview's), the
    /// correction is applied if the figures are still the same, refused otherwise.
    Rerate {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
        /// The corrected policy file (TOML), at most 64 KiB.
        #[arg(long)]
        file: PathBuf,
        /// The digest the preview printed: apply the correction.
        #[arg(long, value_name = "DIGEST")]
        apply: Option<String>,
    },
    /// Cancel a policy that has not started.
    Cancel {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
        /// The policy's name.
        name: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum OperatorRoleArg {
    /// Reads every page; changes nothing.
    Viewer,
    /// Also changes schedules, quotas, policies, terminals and members.
    Operator,
    /// Also manages operators.
    Admin,
}

impl From<OperatorRoleArg> for rules::Role {
    fn from(role: OperatorRoleArg) -> rules::Role {
        match role {
            OperatorRoleArg::Viewer => rules::Role::Viewer,
            OperatorRoleArg::Operator => rules::Role::Operator,
            OperatorRoleArg::Admin => rules::Role::Admin,
        }
    }
}

#[derive(Subcommand)]
enum WatchCaCommand {
    /// Trusts a watch certificate authority. From then on a step report is credited only
    /// with the signature of a watch it certified, paired to the member.
    Add {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
        /// The authority's Ed25519 public key, 64 hex digits.
        #[arg(long, required_unless_present = "demo", conflicts_with = "demo")]
        public_key: Option<String>,
        /// The demonstration authority of the watch simulator (never for a real program).
        #[arg(long)]
        demo: bool,
    },
}

#[derive(Subcommand)]
enum TlsCommand {
    /// Make a self-signed certificate and its private key (PEM; the key file 0600). Terminals
    /// pin the server's key, so no authority needs to sign it.
    Generate {
        /// Where to write the certificate; the file must not exist.
        #[arg(long)]
        cert_out: PathBuf,
        /// Where to write the private key; the file must not exist.
        #[arg(long)]
        key_out: PathBuf,
        /// A host name or IP address terminals reach the server by (repeatable).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
    },
    /// Print the key terminals pin for a certificate (`server_key: sha256:...`).
    Key {
        /// The certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
    },
}

#[derive(Subcommand)]
enum ScheduleCommand {
    /// Set the rule of one day.
    Set {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
        /// The day, YYYY-MM-DD (Asia/Seoul).
        #[arg(long)]
        day: NaiveDate,
        /// open, odd_birth_years, even_birth_years, age_band:MIN-MAX or closed.
        #[arg(long, value_parser = parse_rule)]
        rule: DayRule,
    },
}

#[derive(Subcommand)]
enum QuotaCommand {
    /// Set a site's places for a day, or split a total across sites.
    Set {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
        /// The day, YYYY-MM-DD (Asia/Seoul).
        #[arg(long)]
        day: NaiveDate,
        /// One site.
        #[arg(long, required_unless_present = "sites", conflicts_with = "sites")]
        site: Option<String>,
        /// The site's places.
        #[arg(long, requires = "site")]
        places: Option<u32>,
        /// Sites to split `--total` across, comma separated.
        #[arg(long, value_delimiter = ',', requires = "total")]
        sites: Vec<String>,
        /// Places split as evenly as possible across `--sites` (the first sites get the rest).
        #[arg(long)]
        total: Option<u32>,
    },
}

#[derive(Subcommand)]
enum MemberCommand {
    /// Revoke a member: every card of theirs is refused; terminals learn it at their next
    /// pull. Audited as the command line's.
    Revoke {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
        /// The member number, such as PP-00000001.
        #[arg(long)]
        member: String,
    },
    /// Revoke one printed member card (lost or replaced): the server refuses holds made
    /// with it; the member's other cards and app still work.
    RevokeCard {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
        /// The member number, such as PP-00000001.
        #[arg(long)]
        member: String,
        /// The card's number for this member (1 for the first card).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        serial: u16,
    },
    /// Replace a lost card, as the console's Members page does: the card (one the server
    /// signed, in force) is revoked and the next number allowed at any kiosk the member
    /// visits, which has it signed and prints it. Audited as the command line's.
    ReplaceCard {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
        /// The member number, such as PP-00000001.
        #[arg(long)]
        member: String,
        /// The lost card's number for this member.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        serial: u16,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Make a redemption-token signing key: the secret seed goes to a new file (mode 0600),
    /// the public key is published to terminals at their next pull.
    Add {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
        /// Where to write the secret seed (hex); the file must not exist.
        #[arg(long)]
        secret_out: PathBuf,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Members overspent on a day: holds their balance did not cover and tokens used twice,
    /// with every hold of theirs that day, by terminal.
    Overspend {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
        /// The day, YYYY-MM-DD (Asia/Seoul).
        #[arg(long)]
        day: NaiveDate,
    },
}

fn parse_rule(text: &str) -> Result<DayRule, String> {
    let bad = || {
        format!(
            "규칙은 open, odd_birth_years, even_birth_years, age_band:MIN-MAX, closed 중 하나입니다 / \
             the rule is one of open, odd_birth_years, even_birth_years, age_band:MIN-MAX, closed, not {text:?}"
        )
    };
    Ok(match text.trim() {
        "open" => DayRule::Open,
        "odd_birth_years" => DayRule::OddBirthYears,
        "even_birth_years" => DayRule::EvenBirthYears,
        "closed" => DayRule::Closed,
        other => {
            let band = other.strip_prefix("age_band:").ok_or_else(bad)?;
            let (min, max) = band.split_once('-').ok_or_else(bad)?;
            let min_age: u32 = min.trim().parse().map_err(|_| bad())?;
            let max_age: u32 = max.trim().parse().map_err(|_| bad())?;
            if min_age > max_age || max_age > 150 {
                return Err(bad());
            }
            DayRule::AgeBand { min_age, max_age }
        }
    })
}

#[derive(Subcommand)]
enum TerminalCommand {
    /// Create a terminal and print its one-time enrollment code.
    Add {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
        /// The site: a community center or a store.
        #[arg(long)]
        site: String,
        /// What the terminal may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The server's certificate (PEM, as given to `serve --tls-cert`): its key is printed
        /// as `server_key`, for `palpal provision --server-key`.
        #[arg(long)]
        tls_cert: Option<PathBuf>,
    },
    /// Lock a terminal out.
    Revoke {
        /// The database (SQLite file or PostgreSQL URL).
        #[arg(long)]
        db: PathBuf,
        /// The terminal, such as T-000001.
        #[arg(long)]
        terminal: String,
    },
    /// List terminals.
    List {
        /// The database (SQLite file or PostgreSQL URL).
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

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:#}");
            if error.chain().any(|e| e.is::<StartRefused>()) {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = DATA_KEY_FILE.set(cli.data_key_file.clone());
    let policies = Arc::new(store::published_policies()?);
    match cli.command {
        Command::Serve {
            db,
            listen,
            max_in_flight,
            max_in_flight_bytes,
            latency_target_ms,
            max_body_bytes,
            card_key,
            http_nice,
            writer_cpu,
            writers,
            header_timeout_ms,
            body_idle_timeout_ms,
            min_body_rate,
            max_connections_per_address,
            max_unknown_connections,
            metrics_listen,
            metrics_token_file,
            tls_cert,
            tls_key,
            console_listen,
            silent_after_minutes,
            terminal_url,
        } => {
            let console_options = ConsoleOptions {
                silent_after: chrono::TimeDelta::minutes(i64::from(silent_after_minutes)),
                terminal_url,
                server_key: tls_cert
                    .as_deref()
                    .map(palpal_central::tls::server_key_of)
                    .transpose()?
                    .map(|key| key.to_string()),
            };
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some(palpal_central::tls::server_config(cert, key)?),
                _ => None,
            };
            let card_key = card_key
                .map(|file| card_key_from(&db, &file, Arc::clone(&policies)))
                .transpose()?;
            let metrics = match &metrics_token_file {
                Some(file) => http::MetricsAccess::Token(metrics_token(file)?),
                None => http::MetricsAccess::Hidden,
            };
            let millis = std::time::Duration::from_millis;
            let config = Config {
                max_in_flight,
                max_in_flight_bytes,
                latency_target: (latency_target_ms > 0)
                    .then(|| std::time::Duration::from_millis(latency_target_ms)),
                max_body_bytes,
                card_key,
                http_nice,
                writer_cpu: keep_a_cpu_for_the_writer(writer_cpu)?,
                writers: usize::try_from(writers)?,
                header_timeout: millis(header_timeout_ms),
                body_idle_timeout: millis(body_idle_timeout_ms),
                min_body_rate,
                max_connections_per_address,
                max_unknown_connections,
                metrics,
                tls,
                ..Config::default()
            };
            // The writer and checkpointer threads are made by this (main) thread and keep its
            // priority; this runtime's threads (accepting, reading, refusing) and those working
            // on admitted requests lower theirs by `http_nice` as they start (on Linux the nice
            // value is a thread's own).
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .on_thread_start(move || palpal_central::http::lower_priority(http_nice))
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(serve(
                db,
                Listeners {
                    terminals: listen,
                    metrics: metrics_listen,
                    console: console_listen,
                },
                config,
                console_options,
                policies,
            ))
        }
        Command::Operator { command } => operator(command, policies),
        Command::Policy { command } => policy(command, policies),
        Command::Terminal { command } => terminal(command, policies),
        Command::Schedule { command } => schedule(command, policies),
        Command::Quota { command } => quota(command, policies),
        Command::Member { command } => member(command, policies),
        Command::Key { command } => key(command, policies),
        Command::Report { command } => report(command, policies),
        Command::WatchCa { command } => watch_ca(command, policies),
        Command::Tls { command } => tls(command),
    }
}

/// Keeps this thread, and so every thread made after it, off the CPU `choice` gives the
/// writer; returns that CPU. Before the runtime and the writer start. A system that will not
/// say or set CPUs leaves every thread shared, with one line to the log.
fn keep_a_cpu_for_the_writer(choice: WriterCpu) -> anyhow::Result<Option<usize>> {
    let allowed = match palpal_central::cpu::allowed() {
        Ok(allowed) => allowed,
        Err(error) => {
            eprintln!(
                "쓸 수 있는 CPU를 알 수 없어 쓰기 스레드도 CPU를 나눠 씁니다 / could not tell \
                 which CPUs this process may use; the writer shares them: {error}"
            );
            return Ok(None);
        }
    };
    let Some(split) = palpal_central::cpu::plan(choice, &allowed)
        .map_err(|problem| anyhow::anyhow!("--writer-cpu {choice}: {problem}"))?
    else {
        return Ok(None);
    };
    match palpal_central::cpu::pin_current_thread(&split.others) {
        Ok(()) => {
            eprintln!(
                "쓰기 스레드는 CPU {}을(를) 혼자 쓰고, 나머지 스레드는 CPU {:?}에서 돕니다 / the \
                 writer thread has CPU {} to itself; the other threads run on CPUs {:?}",
                split.writer, split.others, split.writer, split.others
            );
            Ok(Some(split.writer))
        }
        Err(error) => {
            eprintln!(
                "다른 스레드를 CPU {}에서 떼어 놓지 못해 쓰기 스레드도 CPU를 나눠 씁니다 / could \
                 not keep the other threads off CPU {}; the writer shares: {error}",
                split.writer, split.writer
            );
            Ok(None)
        }
    }
}

fn schedule(command: ScheduleCommand, policies: Arc<points_core::PolicySet>) -> anyhow::Result<()> {
    let ScheduleCommand::Set { db, day, rule } = command;
    let mut store = open_store(&db, policies)?;
    store
        .set_schedule(&[(day, rule)], &Actor::command_line(), SystemClock.now())
        .context("가입 일정을 저장하지 못했습니다 / saving the admission schedule")?;
    writeln!(
        std::io::stdout().lock(),
        "{day}\t{}",
        serde_json::to_string(&rule)?
    )?;
    Ok(())
}

/// `total` split across `count` sites: the first `total % count` get one more.
fn split(total: u32, count: usize) -> Vec<u32> {
    let count32 = u32::try_from(count).unwrap_or(u32::MAX).max(1);
    (0..count32)
        .map(|i| total / count32 + u32::from(i < total % count32))
        .collect()
}

fn quota(command: QuotaCommand, policies: Arc<points_core::PolicySet>) -> anyhow::Result<()> {
    let QuotaCommand::Set {
        db,
        day,
        site,
        places,
        sites,
        total,
    } = command;
    let plan: Vec<(String, u32)> = match (site, places, total) {
        (Some(site), Some(places), None) => vec![(site, places)],
        (None, None, Some(total)) => {
            let sites: Vec<String> = sites
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            anyhow::ensure!(
                !sites.is_empty(),
                "--sites에 사이트를 하나 이상 적어 주세요 / name at least one site in --sites"
            );
            let shares = split(total, sites.len());
            sites.into_iter().zip(shares).collect()
        }
        _ => anyhow::bail!(
            "--site와 --places, 또는 --sites와 --total을 함께 주세요 / \
             give --site with --places, or --sites with --total"
        ),
    };
    let mut changes = Vec::with_capacity(plan.len());
    for (site, places) in plan {
        anyhow::ensure!(
            !site.trim().is_empty(),
            "사이트 이름이 비어 있습니다 / the site name is empty"
        );
        changes.push(store::QuotaChange {
            day,
            site: site.trim().to_owned(),
            places,
        });
    }
    let mut store = open_store(&db, policies)?;
    // All or none, audited as the command line's, as the console sets them.
    if let Err(refused) = store
        .set_quotas(&changes, &Actor::command_line(), SystemClock.now())
        .context("정원을 저장하지 못했습니다 / saving the quota")?
    {
        let site = changes.get(refused.index).map_or("", |c| c.site.as_str());
        anyhow::bail!(
            "{site}: {day}에 이미 {used}명이 가입해 정원을 그보다 적게 할 수 없습니다. {used} 이상으로 \
             정해 주세요 (아무것도 바꾸지 않았습니다) / {used} people already signed up at {site} on \
             {day}: give at least {used} places (nothing was changed)",
            used = refused.used
        );
    }
    let leases = store.leases_on(day)?;
    let mut out = std::io::stdout().lock();
    for change in &changes {
        if let Some(lease) = leases.iter().find(|l| l.site == change.site) {
            writeln!(
                out,
                "{}\t{}\t{}\tplaces={}\tused={}",
                lease.lease_id, lease.day, lease.site, lease.places, lease.used
            )?;
        }
    }
    Ok(())
}

fn replace_card(
    db: PathBuf,
    member: &str,
    serial: u16,
    policies: Arc<points_core::PolicySet>,
) -> anyhow::Result<()> {
    let id = store::parse_member_number(member).with_context(|| {
        format!("회원 번호는 PP-00000001 형식입니다 / a member number looks like PP-00000001, not {member:?}")
    })?;
    let mut store = open_store(&db, policies)?;
    let allowed = store
        .replace_card(id, serial, &Actor::command_line(), SystemClock.now())
        .context("카드를 재발급하지 못했습니다 / replacing the card")?
        .with_context(|| {
            format!(
                "{member} 회원에게 사용 중인 {serial}번 카드가 없습니다. 회원 번호와 카드 번호를 \
                 확인해 주세요 / member {member} has no card {serial} in force; check both numbers"
            )
        })?;
    writeln!(
        std::io::stdout().lock(),
        "revoked card: {} serial {serial}\nallowed: serial {allowed} (signed at any kiosk the \
         member visits)",
        store::member_number(id)
    )?;
    Ok(())
}

fn member(command: MemberCommand, policies: Arc<points_core::PolicySet>) -> anyhow::Result<()> {
    let (db, member, serial) = match command {
        MemberCommand::Revoke { db, member } => (db, member, None),
        MemberCommand::RevokeCard { db, member, serial } => (db, member, Some(serial)),
        MemberCommand::ReplaceCard { db, member, serial } => {
            return replace_card(db, &member, serial, policies)
        }
    };
    let id = store::parse_member_number(&member).with_context(|| {
        format!("회원 번호는 PP-00000001 형식입니다 / a member number looks like PP-00000001, not {member:?}")
    })?;
    let mut store = open_store(&db, policies)?;
    let found = match serial {
        None => store.revoke_member(id, &Actor::command_line(), SystemClock.now()),
        Some(serial) => store.revoke_card(id, serial, &Actor::command_line(), SystemClock.now()),
    }
    .context("회원 카드를 중지하지 못했습니다 / revoking the member's card")?;
    anyhow::ensure!(
        found,
        "{member} 회원이 없습니다. 회원 번호를 확인해 주세요 / there is no member {member}; check the number"
    );
    let mut out = std::io::stdout().lock();
    match serial {
        None => writeln!(out, "revoked: {}", store::member_number(id))?,
        Some(serial) => writeln!(
            out,
            "revoked card: {} serial {serial}",
            store::member_number(id)
        )?,
    }
    Ok(())
}

fn key(command: KeyCommand, policies: Arc<points_core::PolicySet>) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let KeyCommand::Add { db, secret_out } = command;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| anyhow::anyhow!("난수를 얻지 못했습니다 / no randomness: {e}"))?;
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret_out)
        .with_context(|| {
            format!("비밀 키 파일을 만들지 못했습니다 / creating the secret file {secret_out:?}")
        })?;
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    writeln!(file, "{hex}").context("writing the secret file")?;
    file.sync_all().context("writing the secret file")?;
    let mut store = open_store(&db, policies)?;
    let key_id = store
        .add_redemption_key(signing.verifying_key().as_bytes(), SystemClock.now())
        .context("키를 저장하지 못했습니다 / saving the key")?;
    writeln!(
        std::io::stdout().lock(),
        "key_id: {key_id}\npublic_key: {}",
        sync_protocol::signing::encode_public_key(&signing.verifying_key())
    )?;
    Ok(())
}

fn watch_ca(command: WatchCaCommand, policies: Arc<points_core::PolicySet>) -> anyhow::Result<()> {
    let WatchCaCommand::Add {
        db,
        public_key,
        demo,
    } = command;
    let key: [u8; 32] = if demo {
        watch_protocol::WatchCa::demo().public_key()
    } else {
        public_key
            .as_deref()
            .and_then(watch_protocol::proof::unhex)
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .context("공개 키는 16진수 64자리여야 합니다 / the public key must be 64 hex digits")?
    };
    let mut store = open_store(&db, policies)?;
    let added = store
        .add_watch_authority(&key, SystemClock.now())
        .context("인증 기관을 저장하지 못했습니다 / saving the authority")?;
    writeln!(
        std::io::stdout().lock(),
        "watch_authority: {}\n{}",
        watch_protocol::proof::hex(&key),
        if added { "added" } else { "already trusted" }
    )?;
    Ok(())
}

fn report(command: ReportCommand, policies: Arc<points_core::PolicySet>) -> anyhow::Result<()> {
    let ReportCommand::Overspend { db, day } = command;
    let mut store = open_store(&db, policies)?;
    let holds = store
        .overspend(day)
        .context("보고서를 만들지 못했습니다 / making the report")?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "member\tterminal\tamount\tstatus\tbalance_before\top_id\ttoken_id"
    )?;
    let mut shortfall: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for hold in &holds {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            hold.member_number,
            hold.terminal,
            hold.amount,
            hold.status,
            hold.balance_before,
            hold.op_id,
            hold.token_id
        )?;
        if hold.status == "insufficient" || hold.status == "token_reused" {
            *shortfall.entry(hold.member_number.as_str()).or_default() += hold.amount;
        }
    }
    for (member, amount) in &shortfall {
        writeln!(
            out,
            "# {member}: {amount} points not covered / 초과 사용 {amount}점"
        )?;
    }
    if holds.is_empty() {
        writeln!(out, "# {day}: 초과 사용 없음 / no overspending")?;
    }
    Ok(())
}

/// The card-signing key in `file` (hex seed), with the id it is published under in `db`.
fn card_key_from(
    db: &std::path::Path,
    file: &std::path::Path,
    policies: Arc<points_core::PolicySet>,
) -> anyhow::Result<redemption_token::IssuerKey> {
    let text = std::fs::read_to_string(file).with_context(|| {
        format!("카드 서명 키 파일을 읽지 못했습니다 / could not read the card key file {file:?}")
    })?;
    let unpublished = redemption_token::IssuerKey::from_seed_hex(0, text.trim()).map_err(|_| {
        anyhow::anyhow!(
            "카드 서명 키 파일이 64자리 16진수가 아닙니다. `palpal-central key add`로 만든 파일을 주세요. / \
             the card key file {file:?} is not 64 hex digits; give a file made by `palpal-central key add`"
        )
    })?;
    let public = unpublished.public_key();
    let mut store = open_store(db, policies)?;
    let key_id = store.redemption_key_id(&public)?.with_context(|| {
        format!(
            "카드 서명 키가 이 데이터베이스에 게시되지 않았거나 폐기되었습니다. `palpal-central key add --db {db:?}`로 만든 키를 주세요. / \
             the card key {file:?} is not a published, unretired redemption key of {db:?}"
        )
    })?;
    Ok(redemption_token::IssuerKey::from_seed(
        key_id,
        unpublished.seed(),
    ))
}

/// The bearer token of `/metrics`: the first line of `file`, at least 16 characters.
fn metrics_token(file: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(file).with_context(|| {
        format!("지표 토큰 파일을 읽지 못했습니다 / reading the metrics token file {file:?}")
    })?;
    let token = text.lines().next().unwrap_or_default().trim().to_owned();
    anyhow::ensure!(
        token.len() >= 16 && token.bytes().all(|b| b.is_ascii_graphic()),
        "지표 토큰은 공백 없이 16자 이상이어야 합니다 / the metrics token must be 16 or more \
         visible characters, on the file's first line ({file:?})"
    );
    Ok(token)
}

async fn bind(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("{listen}에서 기다릴 수 없습니다 / could not listen on {listen}"))
}

/// The addresses `serve` listens on.
struct Listeners {
    /// The terminals' API.
    terminals: String,
    /// `/metrics`, if apart.
    metrics: Option<String>,
    /// The operator console, if on.
    console: Option<String>,
}

/// What the console is told besides its listener.
struct ConsoleOptions {
    silent_after: chrono::TimeDelta,
    terminal_url: Option<String>,
    server_key: Option<String>,
}

/// Whether `listen` (`HOST:PORT`) names only this machine.
fn is_loopback(listen: &str) -> bool {
    use std::net::ToSocketAddrs as _;
    listen
        .to_socket_addrs()
        .is_ok_and(|mut addresses| addresses.all(|a| a.ip().is_loopback()))
}

async fn serve(
    db: PathBuf,
    listeners: Listeners,
    config: Config,
    console_options: ConsoleOptions,
    policies: Arc<points_core::PolicySet>,
) -> anyhow::Result<()> {
    let Listeners {
        terminals: listen,
        metrics: metrics_listen,
        console: console_listen,
    } = listeners;
    if let Some(address) = &console_listen {
        if config.tls.is_none() && !is_loopback(address) {
            return Err(StartRefused(format!(
                "운영 콘솔은 TLS 없이 이 컴퓨터 안의 주소(127.0.0.1 등)에서만 열 수 있습니다: \
                 --tls-cert 와 --tls-key 를 주거나 --console-listen 127.0.0.1:PORT 로 주세요. / \
                 without TLS the console is served on a loopback address only, not {address}: \
                 give --tls-cert and --tls-key, or --console-listen 127.0.0.1:PORT."
            ))
            .into());
        }
    }
    if !is_postgres(&db) {
        palpal_central::store::check_intact(&db).map_err(|e| StartRefused(format!("{e:#}")))?;
    }
    // The data key is read (or made) and checked before anything is served: a server given
    // another database's key stops here rather than fail at each sign-up.
    let key_file = data_key_file(&db)?;
    open_store(&db, Arc::clone(&policies))?
        .check_data_key()
        .map_err(|e| StartRefused(format!("{e:#}")))
        .context("개인정보 키를 읽지 못했습니다 / reading the data key")?;
    if DATA_KEY_FILE.get().cloned().flatten().is_none() {
        eprintln!(
            "회원 개인정보는 {} 의 키로 봉인됩니다. 운영에서는 이 파일을 데이터베이스와 다른 저장소에 두고 \
             --data-key-file 로 주세요. / members' personal data is sealed under the key in {}; in \
             production keep that file on storage apart from the database and give it with \
             --data-key-file.",
            key_file.display(),
            key_file.display()
        );
    }
    let backend: Arc<dyn store::Backend> = match db.to_str() {
        Some(url) if postgres::is_url(url) => {
            Arc::new(postgres::PostgresBackend::new(url, policies, key_file))
        }
        _ => Arc::new(SqliteBackend::new(&db, policies).with_data_key_file(key_file)),
    };
    let console_tls = config.tls.clone();
    let console_backend = Arc::clone(&backend);
    let server = http::router(backend, config, Arc::new(SystemClock))
        .with_context(|| format!("서버를 준비하지 못했습니다 / preparing the server on {db:?}"))?;
    let listener = bind(&listen).await?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let console = console_listen.as_ref().map(|_| {
        let scheme = if console_tls.is_some() {
            "https"
        } else {
            "http"
        };
        let terminal_url = console_options
            .terminal_url
            .clone()
            .or_else(|| (!bound.ip().is_unspecified()).then(|| format!("{scheme}://{bound}")));
        palpal_central::console::router(
            console_backend,
            Arc::new(SystemClock),
            palpal_central::console::ConsoleConfig {
                tls: console_tls.is_some(),
                silent_after: console_options.silent_after,
                terminal_url,
                server_key: console_options.server_key.clone(),
            },
        )
    });
    let metrics = match &metrics_listen {
        Some(address) => Some(bind(address).await?),
        None => None,
    };
    let addr = listener.local_addr().context("reading the bound address")?;
    let scheme = if server.tls() { "https" } else { "http" };
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {scheme}://{addr}").context("writing to stdout")?;
    if let Some(metrics) = &metrics {
        let addr = metrics.local_addr().context("reading the bound address")?;
        writeln!(out, "metrics on http://{addr}/metrics").context("writing to stdout")?;
    }
    let console_listener = match &console_listen {
        Some(address) => Some(bind(address).await?),
        None => None,
    };
    if let Some(listener) = &console_listener {
        let addr = listener.local_addr().context("reading the bound address")?;
        writeln!(out, "console on {scheme}://{addr}/console/").context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")?;
    drop(out);
    if let Some(metrics) = metrics {
        tokio::spawn(http::serve_plain(metrics, server.metrics_router()));
    }
    if let (Some(listener), Some(router)) = (console_listener, console) {
        tokio::spawn(http::serve_console(listener, router, console_tls));
    }
    http::serve(listener, server)
        .await
        .context("서버가 멈췄습니다 / the server stopped")
}

fn terminal(command: TerminalCommand, policies: Arc<points_core::PolicySet>) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let mut out = std::io::stdout().lock();
    match command {
        TerminalCommand::Add {
            db,
            site,
            role,
            tls_cert,
        } => {
            let server_key = tls_cert
                .as_deref()
                .map(palpal_central::tls::server_key_of)
                .transpose()?;
            let site = site.trim();
            anyhow::ensure!(
                !site.is_empty(),
                "사이트 이름이 비어 있습니다 / the site name is empty"
            );
            let mut store = open_store(&db, policies)?;
            let code = palpal_central::code::generate()?;
            let hash = palpal_central::code::hash(&code.replace('-', ""));
            let terminal = store
                .provision_terminal(site, role.into(), &hash, &Actor::command_line(), now)
                .context("단말기를 만들지 못했습니다 / creating the terminal")?;
            writeln!(
                out,
                "terminal: {}\nsite: {}\nrole: {}\ncode: {code}",
                terminal.label(),
                terminal.site,
                terminal.role.as_str()
            )?;
            if let Some(server_key) = server_key {
                writeln!(out, "server_key: {server_key}")?;
            }
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
            let mut store = open_store(&db, policies)?;
            let changed = store
                .revoke_terminal_as(id, &Actor::command_line(), now)
                .context("단말기를 중지하지 못했습니다 / revoking the terminal")?;
            anyhow::ensure!(
                changed != store::console::Change::Unknown,
                "{terminal} 단말기가 없습니다 / there is no terminal {terminal}"
            );
            writeln!(out, "revoked: {}", store::terminal_label(id))?;
        }
        TerminalCommand::List { db } => {
            let mut store = open_store(&db, policies)?;
            let seen: std::collections::HashMap<i64, store::Sighting> = store
                .sightings()?
                .into_iter()
                .map(|s| (s.terminal, s))
                .collect();
            writeln!(
                out,
                "terminal\tsite\trole\tstate\tname\tlast seen\tversion\twaiting\toldest waiting (s)\tclock offset (s)"
            )?;
            for terminal in store.terminals()? {
                let state = if terminal.revoked {
                    "revoked"
                } else if terminal.public_key.is_some() {
                    "enrolled"
                } else {
                    "waiting"
                };
                let sighting = seen.get(&terminal.id);
                let report = sighting.and_then(|s| s.report.as_ref()).map(|(_, r)| r);
                let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
                writeln!(
                    out,
                    "{}\t{}\t{}\t{state}\t{}\t{}\t{}\t{}\t{}\t{}",
                    terminal.label(),
                    terminal.site,
                    terminal.role.as_str(),
                    terminal.name.as_deref().unwrap_or(""),
                    or_dash(
                        sighting
                            .map(|s| s.seen_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    ),
                    or_dash(report.map(|r| r.app_version.clone())),
                    or_dash(report.map(|r| r.waiting.to_string())),
                    or_dash(
                        report
                            .and_then(|r| r.oldest_waiting_s)
                            .map(|s| s.to_string())
                    ),
                    or_dash(report.and_then(|r| r.clock_offset_s).map(|s| s.to_string())),
                )?;
            }
        }
    }
    Ok(())
}

fn policy(command: PolicyCommand, policies: Arc<points_core::PolicySet>) -> anyhow::Result<()> {
    use palpal_central::policies::{read_candidate, ymd, PolicyRefusal, MAX_POLICY_BYTES};
    let now = SystemClock.now();
    let today = points_core::kst_day(now);
    let mut out = std::io::stdout().lock();
    let refused = |refusal: PolicyRefusal| {
        let (ko, en) = refusal.message();
        anyhow::anyhow!("{ko} / {en} ({})", refusal.code())
    };
    match command {
        PolicyCommand::List { db } => {
            let mut store = open_store(&db, policies)?;
            let rows = store.policy_rows()?;
            for row in &rows {
                let state = if row.cancelled_at.is_some() {
                    "cancelled"
                } else if row.effective_from > today {
                    "scheduled"
                } else {
                    "in_force"
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{state}\t{}",
                    row.id,
                    row.name,
                    ymd(row.effective_from),
                    row.effective_until.map(ymd).unwrap_or_default(),
                    row.published_by.as_deref().unwrap_or("seed"),
                )?;
            }
        }
        PolicyCommand::Add {
            db,
            file,
            effective_from,
        } => {
            let bytes = std::fs::read(&file).with_context(|| {
                format!("정책 파일을 읽지 못했습니다 / reading {}", file.display())
            })?;
            if bytes.len() > MAX_POLICY_BYTES {
                return Err(refused(PolicyRefusal::TooLarge { bytes: bytes.len() }));
            }
            let text = String::from_utf8(bytes).map_err(|_| {
                anyhow::anyhow!(
                    "정책 파일이 UTF-8 글자가 아닙니다 / the policy file is not UTF-8 text"
                )
            })?;
            let candidate = read_candidate(&text, effective_from).map_err(refused)?;
            let mut store = open_store(&db, policies)?;
            let row = store
                .publish_policy(&candidate, &Actor::command_line(), now)
                .context("정책을 게시하지 못했습니다 / publishing the policy")?
                .map_err(refused)?;
            writeln!(
                out,
                "published: {}\neffective_from: {}\neffective_until: {}",
                row.name,
                ymd(row.effective_from),
                row.effective_until.map(ymd).unwrap_or_default()
            )?;
        }
        PolicyCommand::Rerate { db, file, apply } => {
            let bytes = std::fs::read(&file).with_context(|| {
                format!("정책 파일을 읽지 못했습니다 / reading {}", file.display())
            })?;
            if bytes.len() > MAX_POLICY_BYTES {
                return Err(refused(PolicyRefusal::TooLarge { bytes: bytes.len() }));
            }
            let text = String::from_utf8(bytes).map_err(|_| {
                anyhow::anyhow!(
                    "정책 파일이 UTF-8 글자가 아닙니다 / the policy file is not UTF-8 text"
                )
            })?;
            let candidate = read_candidate(&text.replace("\r\n", "\n"), None).map_err(refused)?;
            let mut store = open_store(&db, policies)?;
            let report = store
                .rerate_policy(&candidate, apply.as_deref(), &Actor::command_line(), now)
                .context("포인트를 다시 계산하지 못했습니다 / re-rating the points")?
                .map_err(refused)?;
            let s = &report.summary;
            let largest = |found: Option<(i64, u64)>| {
                found.map_or_else(String::new, |(member, points)| {
                    format!("{} {points}", sync_protocol::member::member_number(member))
                })
            };
            writeln!(
                out,
                "{}: {}\nmembers: {}\nreports: {}\nmembers_changed: {}\nincrease: {}\n\
                 decrease: {}\ntotal_change: {}\nlargest_increase: {}\nlargest_decrease: {}\n\
                 members_short: {}\nnot_recovered: {}",
                if report.applied { "rerated" } else { "preview" },
                report.name,
                s.members,
                s.reports,
                s.changed,
                s.increase,
                s.decrease,
                s.total(),
                largest(s.largest_increase),
                largest(s.largest_decrease),
                s.short,
                s.not_recovered,
            )?;
            for ((low, high), count) in palpal_central::policies::RERATE_BANDS.iter().zip(s.bands) {
                let low = if *low == i64::MIN {
                    String::new()
                } else {
                    low.to_string()
                };
                let high = if *high == i64::MAX {
                    String::new()
                } else {
                    high.to_string()
                };
                writeln!(out, "band {low}..{high}: {count}")?;
            }
            if !report.applied {
                writeln!(
                    out,
                    "digest: {}\n적용하려면 --apply {} 를 붙여 다시 실행하세요 / to apply, run again \
                     with --apply {}",
                    report.digest, report.digest, report.digest
                )?;
            }
        }
        PolicyCommand::Cancel { db, name } => {
            let mut store = open_store(&db, policies)?;
            let row = store
                .cancel_policy(&name, &Actor::command_line(), now)
                .context("정책을 취소하지 못했습니다 / cancelling the policy")?
                .map_err(refused)?;
            writeln!(out, "cancelled: {}", row.name)?;
        }
    }
    Ok(())
}

fn operator(command: OperatorCommand, policies: Arc<points_core::PolicySet>) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let mut out = std::io::stdout().lock();
    match command {
        OperatorCommand::Add { db, name, role } => {
            let name = rules::check_name(&name)
                .map_err(|problem| {
                    anyhow::anyhow!(
                        "이름은 64자 이하의 글자, 숫자, 공백과 . - _ @ 입니다 / a name is up to 64 \
                         letters, digits, spaces and . - _ @ ({problem:?}): {name:?}"
                    )
                })?
                .to_owned();
            let mut store = open_store(&db, policies)?;
            let code = palpal_central::code::generate()?;
            let hash = palpal_central::code::hash(&code.replace('-', ""));
            let added = store
                .add_operator(&name, role.into(), &hash, &Actor::command_line(), now)
                .context("운영자를 만들지 못했습니다 / adding the operator")?;
            anyhow::ensure!(
                added.is_some(),
                "{name} 운영자가 이미 있습니다 / there is an operator {name} already"
            );
            let role: rules::Role = role.into();
            writeln!(
                out,
                "operator: {name}\nrole: {}\ncode: {code}\nsetup: /console/setup\nvalid_until: {}",
                role.as_str(),
                (now + rules::SETUP_CODE_VALIDITY).to_rfc3339()
            )?;
            eprintln!(
                "이 설정 코드는 7일 안에 한 번만 쓸 수 있습니다. 콘솔의 /console/setup 에서 이름, 코드와 새 \
                 비밀번호를 입력하게 해 주세요. / The setup code works once within 7 days: the \
                 operator enters their name, the code and a new password at /console/setup."
            );
        }
        OperatorCommand::List { db } => {
            let mut store = open_store(&db, policies)?;
            for operator in store.operators()? {
                let state = if operator.disabled {
                    "disabled"
                } else if operator.set_up {
                    "active"
                } else {
                    "waiting"
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{state}\t{}",
                    operator.id,
                    operator.name,
                    operator.role.as_str(),
                    operator
                        .last_login
                        .map(|at| at.to_rfc3339())
                        .unwrap_or_default()
                )?;
            }
        }
    }
    Ok(())
}

fn tls(command: TlsCommand) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut out = std::io::stdout().lock();
    match command {
        TlsCommand::Generate {
            cert_out,
            key_out,
            names,
        } => {
            let (cert, key) = palpal_central::tls::generate(&names)?;
            for (path, text, mode) in [(&key_out, &key, 0o600), (&cert_out, &cert, 0o644)] {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(path)
                    .with_context(|| {
                        format!("파일을 만들지 못했습니다(이미 있나요?) / creating {path:?} (does it exist already?)")
                    })?;
                file.write_all(text.as_bytes())?;
                file.sync_all()?;
            }
            let key = palpal_central::tls::server_key_of(&cert_out)?;
            writeln!(
                out,
                "certificate: {}\nserver_key: {key}",
                cert_out.display()
            )?;
        }
        TlsCommand::Key { cert } => {
            writeln!(
                out,
                "server_key: {}",
                palpal_central::tls::server_key_of(&cert)?
            )?;
        }
    }
    Ok(())
}
