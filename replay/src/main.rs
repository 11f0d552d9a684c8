//! `palpal-replay`: the launch day Seoul's service collapsed on, replayed against the real
//! `palpal-central` on this machine over TLS, once with Palpal's terminals and once with naive
//! ones, and written up as a report with a plot (`docs/launch-day-replay.md` explains it).
//!
//! Existing members (330,000 at scale 1) and their points of the day before are in the server's
//! database before the morning starts; then 500 kiosks take 50,000 sign-ups (20,000 in the ten
//! minutes after 10:00) and 2,000 counters sync watches and redeem points, while the server is
//! killed with SIGKILL at 10:30 and started again at 11:00. Time is compressed; the counts are
//! not. The verdicts are read from the server's database afterwards.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod database;
mod day;
mod machine;
mod metrics;
mod report;
mod server;
mod terminal;
mod verdict;
mod watches;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use clap::{Parser, ValueEnum as _};
use redemption_token::{IssuerKey, KeySet};

use crate::day::{seoul_time, Day, OUTAGE, WINDOW};
use crate::metrics::Metrics;
use crate::report::ModeRun;
use crate::server::{Nodes, Server};
use crate::terminal::{Ctx, ShellReport, SimClock};

/// Replay launch day against the real central server and write the report.
#[derive(Debug, Parser)]
#[command(name = "palpal-replay")]
struct Args {
    /// The palpal-central binary (a release build gives the figures worth quoting)
    #[arg(long, value_name = "FILE")]
    central: PathBuf,
    /// Fraction of the launch-day counts (1 = 330,000 members, 500 kiosks, 2,000 counters)
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Simulated seconds per real second
    #[arg(long, default_value_t = 20.0)]
    compress: f64,
    /// Which terminals: smart, naive, or both side by side
    #[arg(long, default_value = "both", value_parser = ["smart", "naive", "both"])]
    mode: String,
    /// Seed of the day's people and visits
    #[arg(long, default_value_t = 9988)]
    seed: u64,
    /// Folder for the report (replay.md, replay.svg, and replay.csv with every second)
    #[arg(long, value_name = "DIR", default_value = "target/replay")]
    out: PathBuf,
    /// Exit with status 1 unless every verdict holds for Palpal's terminals
    #[arg(long)]
    check: bool,
    /// The server's database: sqlite (a file, the embedded default), postgres (a throwaway
    /// PostgreSQL cluster the replay starts and removes), or a postgres:// URL of a server
    /// where the replay may make and drop its databases (palpal_replay_*)
    #[arg(long, default_value = "sqlite", value_name = "sqlite|postgres|URL")]
    database: String,
    /// Server processes in front of the database (more than one needs PostgreSQL); the
    /// terminals are given every address and spread over them
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// What is lost at 10:30: server (every process, back at 11:00), node (one process of
    /// several, back at 11:00), primary (the PostgreSQL primary; its synchronous standby is
    /// promoted)
    #[arg(long, value_enum, default_value_t = database::Kill::Server)]
    kill: database::Kill,
    /// Writer threads of each server process on PostgreSQL (`serve --writers`); `serve`'s own
    /// default (4) when not given
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    writers: Option<u64>,
}

impl Args {
    /// The writers each server process is started with, when given (only with PostgreSQL:
    /// `main` refuses them with SQLite).
    fn writers(&self) -> Option<usize> {
        self.writers
            .map(|writers| usize::try_from(writers).unwrap_or(1))
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.scale > 0.0 && args.scale <= 1.0,
        "--scale는 0보다 크고 1 이하여야 합니다 / --scale must be in (0, 1]"
    );
    anyhow::ensure!(
        args.compress >= 1.0,
        "--compress는 1 이상이어야 합니다 / --compress must be at least 1"
    );
    anyhow::ensure!(
        args.writers.is_none() || args.database != "sqlite",
        "--writers는 PostgreSQL에서만 씁니다: --database postgres 를 주세요 / --writers is for \
         PostgreSQL's server processes: give --database postgres"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let kill = args.kill;
    let modes: &[&'static str] = match args.mode.as_str() {
        "smart" => &["palpal"],
        "naive" => &["naive"],
        _ => &["palpal", "naive"],
    };
    // The database the morning starts from, made once and copied for each mode.
    let base_dir = tempfile::tempdir()?;
    let database = Arc::new(database::Database::new(
        &args.database,
        kill,
        args.nodes,
        base_dir.path(),
    )?);
    let base = Base::prepare(&args, &database, base_dir.path())?;
    // Measured while nothing else of the replay runs, before the morning.
    let signing_rate = machine::signatures_per_second(Duration::from_millis(500));
    let mut runs = Vec::new();
    for mode in modes {
        eprintln!(
            "palpal-replay: {mode} terminals, scale {}, {}× time, {}, {} server process(es)",
            args.scale,
            args.compress,
            database.describe(),
            args.nodes
        );
        runs.push(runtime.block_on(run_mode(&args, mode, &base, &database))?);
        database.drop_copy(mode)?;
    }
    database.finish()?;
    std::fs::create_dir_all(&args.out)?;
    let first = &runs[0];
    let header = format!(
        "`palpal-replay --scale {} --compress {} --seed {}{}` with `{}` serving over TLS on {}, \
         on {} CPUs (one made {} Ed25519 signatures a second before the morning), {}.\n\n\
         Counts: {} existing members, {} sign-ups at {} kiosks ({} of them 10:00–10:10), {} \
         counters with {} visits each (about 40% redeem, 3% of those voided), {}; simulated \
         09:55–11:55, compressed {}× ({:.0} s of wall-clock per mode, then until everything \
         is answered).",
        args.scale,
        args.compress,
        args.seed,
        options_shown(&args),
        args.central.display(),
        database.describe(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        machine::shown(signing_rate),
        Utc::now().format("%Y-%m-%d"),
        first.verdicts.members_checked,
        first.verdicts.registrations_confirmed + first.verdicts.turned_away.values().sum::<u64>(),
        (day::KIOSKS * args.scale).round().max(1.0),
        (day::SURGE_SIGN_UPS * args.scale).round().max(1.0),
        (day::COUNTERS * args.scale).round().max(1.0),
        day::VISITS_PER_COUNTER,
        loss_shown(kill, args.nodes),
        args.compress,
        f64::from(WINDOW) / args.compress,
    );
    let md = report::markdown(&runs, &header, args.compress, "replay.svg");
    std::fs::write(args.out.join("replay.md"), &md)?;
    std::fs::write(
        args.out.join("replay.svg"),
        report::svg(&runs, args.compress, outage_shaded(kill)),
    )?;
    std::fs::write(
        args.out.join("replay.csv"),
        report::timeline_csv(&runs, args.compress),
    )?;
    println!("{md}");
    println!("report: {}", args.out.join("replay.md").display());
    if args.check {
        let v = &runs[0].verdicts;
        let ok = v.registrations_lost == 0
            && v.registrations_duplicated == 0
            && v.points_mismatched_members == 0
            && v.holds_lost == 0
            && runs[0].shells.unsettled == 0
            && runs[0].shells.halted.is_none()
            && runs[0].drain_sim_secs.is_some();
        if !ok {
            eprintln!("palpal-replay: a verdict failed for Palpal's terminals; see the report");
            std::process::exit(1);
        }
    }
    Ok(())
}

/// The options that change what is replayed, as the report's command line shows them.
fn options_shown(args: &Args) -> String {
    let mut shown = String::new();
    if args.database != "sqlite" {
        // A given URL is not printed: it may hold a password.
        let database = if args.database == "postgres" {
            "postgres"
        } else {
            "URL"
        };
        shown.push_str(&format!(" --database {database}"));
    }
    if args.nodes != 1 {
        shown.push_str(&format!(" --nodes {}", args.nodes));
    }
    if let Some(writers) = args.writers() {
        shown.push_str(&format!(" --writers {writers}"));
    }
    if args.kill != database::Kill::Server {
        if let Some(kill) = args.kill.to_possible_value() {
            shown.push_str(&format!(" --kill {}", kill.get_name()));
        }
    }
    shown
}

/// What is lost at 10:30, in the report's words.
fn loss_shown(kill: database::Kill, nodes: usize) -> String {
    match kill {
        database::Kill::Server if nodes > 1 => format!(
            "all {nodes} central server processes killed with SIGKILL at 10:30 and restarted at 11:00"
        ),
        database::Kill::Server => {
            "the central server killed with SIGKILL at 10:30 and restarted at 11:00".into()
        }
        database::Kill::Node => format!(
            "one of {nodes} central server processes killed with SIGKILL at 10:30 (the others serve on) and restarted at 11:00"
        ),
        database::Kill::Primary => format!(
            "the PostgreSQL primary lost at 10:30 (`pg_ctl stop -m immediate`) and its synchronous standby promoted at once, under {nodes} server process(es)"
        ),
    }
}

/// The grey band of the plot.
fn outage_shaded(kill: database::Kill) -> &'static str {
    match kill {
        database::Kill::Server => "the central outage 10:30–11:00",
        database::Kill::Node => "one server process down 10:30–11:00",
        database::Kill::Primary => "the half hour after the PostgreSQL primary was lost at 10:30",
    }
}

/// What every mode starts from.
struct Base {
    target: database::Target,
    /// The server's certificate, the same for every mode and restart.
    tls: server::Tls,
    prepared: server::Prepared,
    prepared_at: chrono::DateTime<Utc>,
    issuer_seed: [u8; 32],
    today: chrono::NaiveDate,
    policies: Arc<points_core::PolicySet>,
}

impl Base {
    fn prepare(
        args: &Args,
        database: &database::Database,
        dir: &std::path::Path,
    ) -> anyhow::Result<Base> {
        let today = seoul_time(Utc::now()).date_naive();
        let day = Day::new(args.seed, args.scale, today, true);
        let target = database.base()?;
        let policies = Arc::new(server::policies()?);
        let mut issuer_seed = [0u8; 32];
        issuer_seed[..8].copy_from_slice(&args.seed.to_le_bytes());
        issuer_seed[31] = 0x99;
        let prepared_at = Utc::now();
        let started = Instant::now();
        let prepared = server::prepare(
            &target,
            &day,
            Arc::clone(&policies),
            issuer_seed,
            prepared_at,
        )?;
        eprintln!(
            "palpal-replay: {} members and a week of their reports ({}) prepared in {:.1} s",
            prepared.member_numbers.len(),
            day.history.len(),
            started.elapsed().as_secs_f64()
        );
        let tls = server::Tls::generate(dir)?;
        Ok(Base {
            target,
            tls,
            prepared,
            prepared_at,
            issuer_seed,
            today,
            policies,
        })
    }
}

/// The loopback address terminal `home` sends from: 127.1.0.1 onwards, one each.
fn terminal_address(home: usize) -> std::net::IpAddr {
    let first = u32::from(std::net::Ipv4Addr::new(127, 1, 0, 1));
    std::net::IpAddr::V4(std::net::Ipv4Addr::from(
        first.saturating_add(u32::try_from(home).unwrap_or(u32::MAX)),
    ))
}

async fn run_mode(
    args: &Args,
    mode: &'static str,
    base: &Base,
    database: &Arc<database::Database>,
) -> anyhow::Result<ModeRun> {
    let kill = args.kill;
    let smart = mode == "palpal";
    let day = Arc::new(Day::new(args.seed, args.scale, base.today, smart));
    let dir = tempfile::tempdir()?;
    let target = database.copy_for(&base.target, mode, dir.path(), kill)?;
    // The store blocks on its own client: not on this runtime's threads.
    palpal_central::store::postgres::off_runtime(|| {
        server::set_leases(&target, &day, Arc::clone(&base.policies))
    })?;
    let policies = Arc::clone(&base.policies);
    let (prepared, prepared_at, issuer_seed) = (&base.prepared, base.prepared_at, base.issuer_seed);
    // Each existing member's points before the day, as the counters pulled them.
    let opening_balance: Vec<u64> = {
        let mut ledgers: Vec<points_core::Ledger> = day
            .existing
            .iter()
            .map(|p| points_core::Ledger::new(p.birth_date))
            .collect();
        for seed in &day.history {
            ledgers[seed.member].apply(
                &policies,
                &points_core::StepReport {
                    reported_at: seed.reported_at,
                    day: seed.day,
                    steps: seed.steps,
                },
            );
        }
        ledgers.iter().map(points_core::Ledger::total).collect()
    };
    let issuer = IssuerKey::from_seed(prepared.key_id, issuer_seed);
    let keys = KeySet::new(&[issuer.published(prepared_at - chrono::Duration::days(1))])
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    // The terminals' TLS: the server's key pinned as at provisioning, no authority trusted.
    // Connections are kept and reused as a terminal's are, so a handshake is paid for each new
    // connection (and again after the restart), not for each request. Each terminal has a
    // client of its own, from a loopback address of its own: shops reach the server over lines
    // of their own, and the server's bound on connections from one address is for one place.
    let tls = terminal_sync::tls::client_config(Arc::new(terminal_sync::tls::PinnedKey::new(
        Some(base.tls.server_key),
    )))?;
    let terminals = prepared.kiosks.len() + prepared.counters.len();
    let http = (0..terminals)
        .map(|home| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .https_only(true)
                .local_address(terminal_address(home))
                .use_preconfigured_tls(tls.clone())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let nodes = Nodes::start(
        &args.central,
        &target,
        &base.tls,
        args.nodes,
        args.writers(),
    )?;
    let bases = nodes.bases();
    let server = Arc::new(Mutex::new(nodes));

    let origin = Instant::now() + Duration::from_secs(1);
    let metrics = Arc::new(Metrics::new(origin));
    let clock = SimClock {
        origin,
        compress: args.compress,
    };
    let ctx = Arc::new(Ctx {
        http,
        bases,
        metrics: Arc::clone(&metrics),
        clock,
        day: Arc::clone(&day),
        member_numbers: Arc::new(prepared.member_numbers.clone()),
        opening_balance: Arc::new(opening_balance),
        issuer: Arc::new(issuer),
        keys: Arc::new(keys),
        prepared_at,
        watches: Arc::new(crate::watches::Watches::new(day.seed)),
    });

    // The sampler and the outage.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (server, metrics, sampling) = (
            Arc::clone(&server),
            Arc::clone(&metrics),
            Arc::clone(&sampling),
        );
        tokio::spawn(async move {
            tokio::time::sleep_until(origin.into()).await;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while sampling.load(Ordering::Relaxed) {
                tick.tick().await;
                let rss = server.lock().map(|nodes| nodes.rss_kib()).unwrap_or(0);
                metrics.sample(rss);
            }
        })
    };
    let outage = {
        let (server, metrics) = (Arc::clone(&server), Arc::clone(&metrics));
        let database = Arc::clone(database);
        tokio::spawn(async move {
            tokio::time::sleep_until(clock.real_at(OUTAGE.0).into()).await;
            let back = |metrics: &Metrics| {
                metrics
                    .restart_ms
                    .store(metrics.ms(Instant::now()), Ordering::Relaxed);
            };
            match kill {
                database::Kill::Server | database::Kill::Node => {
                    if let Ok(mut nodes) = server.lock() {
                        let killed = if kill == database::Kill::Node {
                            1
                        } else {
                            nodes.0.len()
                        };
                        nodes.0.iter_mut().take(killed).for_each(Server::kill);
                    }
                    if kill == database::Kill::Node {
                        // The others serve on: what waits is drained from now.
                        back(&metrics);
                        eprintln!("palpal-replay: 10:30, one server process is down");
                    } else {
                        eprintln!("palpal-replay: 10:30, the central server is down");
                    }
                    tokio::time::sleep_until(clock.real_at(OUTAGE.1).into()).await;
                    let restarted = server
                        .lock()
                        .map_err(|_| anyhow::anyhow!("poisoned"))
                        .and_then(|mut nodes| {
                            nodes
                                .0
                                .iter_mut()
                                .filter(|s| s.pid().is_none())
                                .try_for_each(Server::restart)
                        });
                    if kill == database::Kill::Server {
                        back(&metrics);
                    }
                    eprintln!("palpal-replay: 11:00, every server process is up");
                    restarted
                }
                database::Kill::Primary => {
                    let started = Instant::now();
                    let lost = tokio::task::spawn_blocking(move || database.lose_primary())
                        .await
                        .map_err(anyhow::Error::from)
                        .and_then(|lost| lost);
                    back(&metrics);
                    eprintln!(
                        "palpal-replay: 10:30, the PostgreSQL primary is lost; the standby took over in {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                    lost
                }
            }
        })
    };

    let mut drivers = Vec::new();
    let mut shells = Vec::new();
    let mut kiosk_drivers = Vec::new();
    let terms = prepared
        .kiosks
        .iter()
        .map(|t| (t, true))
        .chain(prepared.counters.iter().map(|t| (t, false)));
    for (n, (term, kiosk)) in terms.enumerate() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let online = Arc::new(AtomicBool::new(true));
        let seed = args.seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        shells.push(if smart {
            tokio::spawn(terminal::smart_shell(
                Arc::clone(&ctx),
                term.clone(),
                rx,
                Arc::clone(&online),
                seed,
            ))
        } else {
            tokio::spawn(terminal::naive_shell(
                Arc::clone(&ctx),
                term.clone(),
                rx,
                Arc::clone(&online),
                seed,
            ))
        });
        if kiosk {
            let naive = (!smart).then(|| Arc::clone(&online));
            kiosk_drivers.push(tokio::spawn(terminal::kiosk_driver(
                Arc::clone(&ctx),
                term.clone(),
                n,
                tx,
                naive,
            )));
        } else {
            let c = n - prepared.kiosks.len();
            drivers.push(tokio::spawn(terminal::counter_driver(
                Arc::clone(&ctx),
                term.clone(),
                c,
                tx,
                online,
            )));
        }
    }
    let mut records = Vec::new();
    let mut naive_kiosks = ShellReport::default();
    for handle in kiosk_drivers {
        let (record, report) = handle.await?;
        records.push(record);
        naive_kiosks.merge(&report);
    }
    for handle in drivers {
        records.push(handle.await?);
    }
    outage.await??;
    eprintln!(
        "palpal-replay: the morning is over after {:.0} s; waiting for the terminals to send what they hold",
        metrics.elapsed().as_secs_f64()
    );
    // Everything a terminal holds must reach the server; give them as long again as the day.
    let grace = Duration::from_secs_f64((f64::from(WINDOW) / args.compress).max(60.0));
    let deadline = tokio::time::Instant::now() + grace;
    let mut total = naive_kiosks;
    for handle in shells {
        match tokio::time::timeout_at(deadline, handle).await {
            Ok(report) => total.merge(&report?),
            Err(_) => total.unsettled += 1,
        }
    }
    let real_secs = metrics.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let peak_server_kib = server
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .stop();
    let restart = metrics.restart_ms.load(Ordering::Relaxed);
    let last = metrics.last_pre_restart_settle_ms.load(Ordering::Relaxed);
    let drain_sim_secs = (total.unsettled == 0 && restart != u64::MAX)
        .then(|| clock.sim_secs(Duration::from_millis(last.saturating_sub(restart))));
    let verdicts = {
        let (day, numbers, policies) = (
            Arc::clone(&day),
            prepared.member_numbers.clone(),
            Arc::clone(&policies),
        );
        let target = target.clone();
        tokio::task::spawn_blocking(move || {
            verdict::check(&target, &day, &numbers, &records, &policies)
        })
        .await?
        .context("reading the verdicts from the server's database")?
    };
    drop(dir);
    let other_statuses = std::mem::take(
        &mut *metrics
            .other_statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    Ok(ModeRun {
        name: mode,
        buckets: metrics.take(),
        verdicts,
        shells: total,
        peak_server_kib,
        drain_sim_secs,
        real_secs,
        other_statuses,
    })
}

#[cfg(test)]
mod tests {
    use super::terminal_address;

    #[test]
    fn every_terminal_of_a_full_scale_morning_has_a_loopback_address_of_its_own() {
        let terminals = 2_500 * 4;
        let addresses: std::collections::HashSet<std::net::IpAddr> =
            (0..terminals).map(terminal_address).collect();
        assert_eq!(addresses.len(), terminals);
        assert!(addresses.iter().all(std::net::IpAddr::is_loopback));
        assert_eq!(terminal_address(0), std::net::IpAddr::from([127, 1, 0, 1]));
        assert_eq!(
            terminal_address(255),
            std::net::IpAddr::from([127, 1, 1, 0])
        );
    }
}
