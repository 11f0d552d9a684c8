//! `palpal sync`: drains the outbox to the central server, then pulls what changed there until
//! the server has no more, through the sync shell in `terminal-sync` (the same one the app
//! runs in the background). This module only turns arguments into options and the report into
//! the summary a person reads.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use sync_client::Config;
use terminal_store::Store;
use terminal_sync::{wall_now, Options};

use crate::BadInput;

/// Send the outbox to the central server, then pull what changed
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The terminal's database file
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// Most operations in one request
    #[arg(long, default_value_t = Config::default().max_batch_ops)]
    batch_ops: usize,
    /// Most bytes in one request body
    #[arg(long, default_value_t = Config::default().max_batch_bytes)]
    batch_bytes: usize,
    /// Failures in a row after which the command stops for now (the work stays queued)
    #[arg(long, default_value_t = Config::default().breaker_threshold)]
    attempts: u32,
    /// The longest the command waits for the server (backoff, Retry-After), in seconds
    #[arg(long, default_value_t = 60)]
    max_wait: u64,
    /// How long one request may take before it counts as failed, in seconds
    #[arg(long, default_value_t = Config::default().request_timeout.as_secs())]
    timeout: u64,
    /// Most changes in one pull page (1 to 1000)
    #[arg(long, default_value_t = Options::default().pull_limit)]
    pull_limit: u32,
    /// Play a terminal whose clock is this many seconds off (reliability tests)
    #[arg(long, default_value_t = 0, hide = true, allow_hyphen_values = true)]
    clock_error: i64,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut store = Store::open(&args.db)?;
    let identity = store.identity()?.ok_or_else(|| {
        BadInput(
            "이 단말기는 아직 등록되지 않았습니다. 먼저 palpal provision으로 등록해 주세요. / \
             This terminal is not provisioned; run palpal provision first."
                .to_owned(),
        )
    })?;
    let options = Options {
        client: Config {
            max_batch_ops: args.batch_ops.max(1),
            max_batch_bytes: args.batch_bytes,
            breaker_threshold: args.attempts.max(1),
            request_timeout: Duration::from_secs(args.timeout.max(1)),
            ..Config::default()
        },
        max_wait: Duration::from_secs(args.max_wait),
        pull_limit: args.pull_limit.clamp(1, 1000),
        clock_error_s: args.clock_error,
        ..Options::default()
    };
    let report = terminal_sync::sync(&mut store, &identity, &options, &wall_now)?;

    let stats = report.push.stats;
    let remaining = report.push.remaining;
    let mut out = std::io::stdout().lock();
    writeln!(out, "보낸 요청 requests: {}", stats.requests)?;
    writeln!(out, "보낸 작업 sent: {}", stats.ops_sent)?;
    writeln!(out, "접수 accepted: {}", stats.accepted)?;
    writeln!(out, "중복 duplicate: {}", stats.duplicate)?;
    writeln!(out, "거부 rejected: {}", stats.rejected)?;
    for r in &report.push.rejected {
        writeln!(out, "  {} {}: {}", r.op_id, r.reason, r.message)?;
    }
    writeln!(out, "남은 작업 remaining: {remaining}")?;
    if let Some(pull) = &report.pull {
        writeln!(out, "받은 페이지 pages: {}", pull.pages)?;
        writeln!(out, "받은 변경 changes: {}", pull.changes)?;
    }
    drop(out);

    match (
        &report.push.stopped,
        report.pull.as_ref().and_then(|p| p.stopped.as_ref()),
    ) {
        (None, None) => Ok(()),
        (Some(why), _) => anyhow::bail!(
            "동기화를 마치지 못했습니다: {why}. 작업 {remaining}건은 이 단말기에 안전하게 \
             저장되어 있으며 다음 동기화 때 다시 보냅니다. / Sync did not finish; \
             {remaining} operations are kept on this terminal and will be sent at the next sync."
        ),
        (None, Some(why)) => anyhow::bail!(
            "보낼 작업은 모두 보냈지만 서버의 변경을 다 받지 못했습니다: {why}. 받은 만큼은 \
             저장했고 다음 동기화 때 이어 받습니다. / Everything queued was sent, but the \
             server's changes were not all pulled; what arrived is stored and the next sync \
             goes on from there."
        ),
    }
}
