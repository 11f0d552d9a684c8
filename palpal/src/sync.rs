//! `palpal sync`: drains the outbox to the central server through the `sync-client` state
//! machine. This module is the shell: it reads the clock, sleeps, does the HTTP through
//! [`crate::central`] and writes each answer to the store in one transaction; the client
//! decides what to send and when.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use sync_client::{Client, Config, Event, Op, Outcome, Phase, Time};
use terminal_store::{Settlement, Store};

use crate::central::Central;
use crate::BadInput;

/// Send the outbox to the central server
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
}

fn wall_now() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::Utc::now().fixed_offset()
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
    let config = Config {
        max_batch_ops: args.batch_ops.max(1),
        max_batch_bytes: args.batch_bytes,
        breaker_threshold: args.attempts.max(1),
        request_timeout: Duration::from_secs(args.timeout.max(1)),
        ..Config::default()
    };
    let key = SigningKey::from_bytes(&identity.secret_key);
    let central = Central::new(&identity.server_url, config.request_timeout)?;
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("getting randomness: {e}"))?;
    let mut client = Client::new(config, u64::from_le_bytes(seed));
    for pending in store.outbox_pending()? {
        client.enqueue(Op::from_outbox(
            &pending.op_id,
            &pending.kind,
            &pending.payload,
        )?);
    }

    let origin = Instant::now();
    let clock = || Time::from_millis(u64::try_from(origin.elapsed().as_millis()).unwrap_or(0));
    let max_wait = Duration::from_secs(args.max_wait);
    let mut rejected = Vec::new();
    let stopped: Option<String> = loop {
        let mut settlements = Vec::new();
        while let Some(event) = client.poll_event() {
            if let Event::Settled { op_id, outcome } = event {
                settlements.push(settlement(op_id, outcome, &mut rejected));
            }
        }
        if !settlements.is_empty() {
            store.settle(&settlements, wall_now())?;
        }
        if let Some(halt) = client.halted() {
            break Some(format!("{} ({})", halt.message, halt.code));
        }
        if client.unsettled() == 0 {
            break None;
        }
        let now = clock();
        if let Some(transmit) = client.poll_transmit(now) {
            store.mark_in_flight(&transmit.op_ids, wall_now())?;
            match central.send(&identity.terminal_id, &key, &transmit) {
                Ok(response) => client.handle_response(clock(), transmit.seq, response),
                Err(failure) => client.handle_failure(clock(), transmit.seq, failure),
            }
            continue;
        }
        if client.phase(now) == Phase::CircuitOpen {
            break Some(
                "중앙 서버에 연결할 수 없거나 서버가 응답하지 않습니다 / the central server \
                 cannot be reached or is not answering"
                    .to_owned(),
            );
        }
        match client.poll_timeout() {
            Some(at) if at.since(now) > max_wait => {
                break Some(
                    "중앙 서버가 나중에 다시 보내라고 합니다 / the central server asked to \
                     retry later"
                        .to_owned(),
                )
            }
            Some(at) => {
                std::thread::sleep(at.since(now));
                client.handle_timeout(clock());
            }
            None => break None,
        }
    };

    let stats = client.stats();
    let counts = store.outbox_counts()?;
    let remaining = counts.queued + counts.in_flight;
    let mut out = std::io::stdout().lock();
    writeln!(out, "보낸 요청 requests: {}", stats.requests)?;
    writeln!(out, "보낸 작업 sent: {}", stats.ops_sent)?;
    writeln!(out, "접수 accepted: {}", stats.accepted)?;
    writeln!(out, "중복 duplicate: {}", stats.duplicate)?;
    writeln!(out, "거부 rejected: {}", stats.rejected)?;
    for (op_id, reason, message) in &rejected {
        writeln!(out, "  {op_id} {reason}: {message}")?;
    }
    writeln!(out, "남은 작업 remaining: {remaining}")?;
    drop(out);

    match stopped {
        None => {
            store
                .record_sync(wall_now(), None)
                .context("recording the sync")?;
            Ok(())
        }
        Some(why) => {
            store
                .record_sync(wall_now(), Some(&why))
                .context("recording the sync")?;
            anyhow::bail!(
                "동기화를 마치지 못했습니다: {why}. 작업 {remaining}건은 이 단말기에 안전하게 \
                 저장되어 있으며 다음 동기화 때 다시 보냅니다. / Sync did not finish; \
                 {remaining} operations are kept on this terminal and will be sent at the next sync."
            )
        }
    }
}

fn settlement(
    op_id: String,
    outcome: Outcome,
    rejected: &mut Vec<(String, String, String)>,
) -> Settlement {
    match outcome {
        Outcome::Accepted { member_number } => Settlement::Done {
            op_id,
            duplicate: false,
            member_number,
        },
        Outcome::Duplicate { member_number } => Settlement::Done {
            op_id,
            duplicate: true,
            member_number,
        },
        Outcome::Rejected { reason, message } => {
            rejected.push((op_id.clone(), reason.clone(), message.clone()));
            Settlement::Rejected {
                op_id,
                reason,
                message,
            }
        }
    }
}
