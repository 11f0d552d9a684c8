//! `palpal status`: what the outbox holds (queued, in flight, done, rejected with reasons),
//! when the terminal last synced, and what it has pulled from the server (the cursor, the last
//! pull, how many of each thing are cached, and the policies by name and dates).

use std::io::Write as _;
use std::path::PathBuf;

use terminal_store::Store;

/// Show what is waiting to reach the central server
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The terminal's database file
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let store = Store::open(&args.db)?;
    let counts = store.outbox_counts()?;
    let log = store.sync_log()?;
    let mut out = std::io::stdout().lock();
    match store.identity()? {
        Some(id) => writeln!(
            out,
            "단말기 terminal: {} ({}, {}) {}",
            id.terminal_id, id.site, id.role, id.server_url
        )?,
        None => writeln!(out, "단말기 terminal: 등록 안 됨 / not provisioned")?,
    }
    writeln!(out, "대기 queued: {}", counts.queued)?;
    writeln!(out, "전송 중 in flight: {}", counts.in_flight)?;
    writeln!(out, "완료 done: {}", counts.done)?;
    writeln!(out, "거부 rejected: {}", counts.rejected)?;
    for entry in store.outbox_entries(true)? {
        writeln!(
            out,
            "  {} {} {}: {}",
            entry.op_id,
            entry.kind,
            entry.reason.as_deref().unwrap_or("-"),
            entry.message.as_deref().unwrap_or("-")
        )?;
    }
    writeln!(
        out,
        "마지막 동기화 last good sync: {}",
        log.last_good_sync.as_deref().unwrap_or("없음 never")
    )?;
    if let Some(error) = log.last_error {
        writeln!(out, "마지막 오류 last error: {error}")?;
    }
    writeln!(
        out,
        "마지막 받기 last pull: {}",
        store
            .last_pull()?
            .map_or_else(|| "없음 never".to_owned(), |t| t.to_rfc3339())
    )?;
    writeln!(
        out,
        "받기 위치 cursor: {}",
        store.pull_cursor()?.as_deref().unwrap_or("-")
    )?;
    let cached = store.pulled_counts()?;
    writeln!(out, "정책 policies: {}", cached.policies)?;
    for policy in store.cached_policies()? {
        writeln!(
            out,
            "  {} {}..{}",
            policy.name,
            policy.effective_from,
            policy
                .effective_until
                .map(|day| day.to_string())
                .unwrap_or_default()
        )?;
    }
    writeln!(out, "교환 키 redemption keys: {}", cached.redemption_keys)?;
    writeln!(out, "정지 회원 revoked members: {}", cached.revoked_members)?;
    writeln!(out, "잔액 balances: {}", cached.balances)?;
    writeln!(out, "워치 연결 watch pairings: {}", cached.server_pairings)?;
    writeln!(out, "가입 일정 admission days: {}", cached.admission_days)?;
    writeln!(out, "가입 정원 quota leases: {}", cached.quota_leases)?;
    Ok(())
}
