//! The single writer: a dedicated thread that owns the write connection and commits queued
//! writes in groups. Each turn it takes whatever is queued (up to a maximum), applies it in one
//! transaction, commits once, and only then answers each request. The queue in front of it is
//! bounded; a full queue is refused by the caller, never grown.
//!
//! A group that cannot be committed is rolled back whole and every write in it is answered
//! with a [`WriteError`]. When the database's disk is full (SQLITE_FULL, or ENOSPC), that is
//! [`WriteError::StorageFull`], which the HTTP layer answers with 503 `storage_full` and
//! `Retry-After`: the terminals keep their operations and send them again. The thread goes on
//! taking writes meanwhile; the first group that commits ends the episode. Each episode is
//! logged twice (when it starts and when it ends), never once per request.
//!
//! Given a second connection, a checkpointer thread copies the write-ahead log into the
//! database after commits, so that the writer's commits do not wait for it. A log that keeps
//! being appended to while it is copied is never wholly copied, so it would never start over
//! at its beginning: once the log is [`LONG_LOG_PAGES`] long, the writer copies the short tail
//! itself between two groups, and the log starts over at its next commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::error::ErrorCode;
use crate::http::ApiError;
use crate::limit::Limiter;
use crate::metrics::{Metrics, WriterState};
use crate::store::{Store, Write, WriteReply};

/// A write waiting for the writer, with where to send its reply.
#[derive(Debug)]
pub struct WriteJob {
    /// What to write.
    pub write: Write,
    /// Where the reply goes; `Err` says why the group could not be committed.
    pub reply: oneshot::Sender<Result<WriteReply, WriteError>>,
    /// When it was queued, to measure how long writes wait for the writer.
    pub queued_at: std::time::Instant,
}

/// How much the writer takes on.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Writes waiting for the writer at most; a full queue is refused by the caller.
    pub queue: usize,
    /// Writes in one group at most.
    pub max_group: usize,
    /// Operations in one group at most, beyond its first write.
    pub max_group_ops: usize,
    /// Whether the admission limit follows only how long writes wait for a writer to take
    /// them (several writers, PostgreSQL), not until their group is committed (one writer,
    /// SQLite). On PostgreSQL a group's commit costs round trips and a WAL flush whatever
    /// the load, so admitting fewer requests does not make it shorter; only a queue that
    /// grows says that more come than the writers take.
    pub limit_on_queue: bool,
}

/// Why a write was not committed. Nothing of its group was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The database's disk is full; the same write succeeds once the operator frees space.
    #[error("the database's disk is full")]
    StorageFull,
    /// The database could not be reached (its connection lost, PostgreSQL restarting or
    /// failing over); the same write succeeds once it is back.
    #[error("the database cannot be reached")]
    DatabaseUnavailable,
    /// The group failed for another reason (logged by the writer).
    #[error("the write group failed: {0}")]
    Failed(String),
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> ApiError {
        ApiError(match error {
            WriteError::StorageFull => ErrorCode::StorageFull,
            WriteError::DatabaseUnavailable => ErrorCode::DatabaseUnavailable,
            WriteError::Failed(_) => ErrorCode::Internal,
        })
    }
}

/// Whether `error`, from a [`Store`] call, is the disk (or the database) being full: what
/// [`sqlite_file::is_disk_full`] finds (SQLite's SQLITE_FULL, an ENOSPC), or PostgreSQL's
/// `disk_full` (53100: a table or index could not grow).
pub fn is_storage_full(error: &anyhow::Error) -> bool {
    sqlite_file::is_disk_full(error)
        || error.chain().any(|cause| {
            cause
                .downcast_ref::<postgres::Error>()
                .and_then(postgres::Error::code)
                == Some(&postgres::error::SqlState::DISK_FULL)
        })
}

fn operations(write: &Write) -> usize {
    match write {
        Write::Sync { operations, .. } => operations.len(),
        Write::Enroll { .. } | Write::IssueCard(_) | Write::Contact { .. } => 1,
        Write::Seen(sightings) => sightings.len(),
        Write::Activity { counts, .. } => counts.len(),
    }
}

/// How long the writer waits at most for more writes before committing a group, and only
/// while at least [`LINGER_SIBLINGS`] other requests are admitted (as PostgreSQL's
/// `commit_delay` and `commit_siblings`): under load, admitted requests reach the writer
/// spread out by their parsing, and a group committed at once would be small, with a disk
/// flush for a few writes; with few requests in flight nothing waits.
pub const LINGER: Duration = Duration::from_millis(2);
/// See [`LINGER`].
pub const LINGER_SIBLINGS: i64 = 4;
const LINGER_STEP: Duration = Duration::from_micros(100);

/// A write-ahead log this long (in pages, about 16 MiB) is copied to its end by the writer
/// itself, so that it starts over.
pub const LONG_LOG_PAGES: u32 = 4096;

/// The checkpointer thread's side: told of commits, it checkpoints, and asks the writer to
/// finish the job when the log has grown long.
struct Checkpointer {
    /// Told (without waiting) that a group was committed.
    commits: std::sync::mpsc::SyncSender<()>,
    /// Set when the log is long and the writer should copy its tail.
    long_log: Arc<AtomicBool>,
}

fn spawn_checkpointer(
    mut store: Box<dyn Store>,
    metrics: Arc<Metrics>,
) -> std::io::Result<Checkpointer> {
    let (commits, committed) = std::sync::mpsc::sync_channel::<()>(1);
    let long_log = Arc::new(AtomicBool::new(false));
    let long = Arc::clone(&long_log);
    std::thread::Builder::new()
        .name("palpal-checkpoint".to_owned())
        .spawn(move || {
            let mut failing = false;
            // Ends when the writer ends.
            while committed.recv().is_ok() {
                if long.load(Ordering::Relaxed) {
                    // The writer is copying the tail; a checkpoint here would only keep it
                    // from getting the checkpoint lock.
                    continue;
                }
                match store.checkpoint() {
                    Ok(Some(pages)) => {
                        failing = false;
                        metrics.wal(pages.logged);
                        if pages.logged >= LONG_LOG_PAGES {
                            long.store(true, Ordering::Relaxed);
                        }
                    }
                    Ok(None) => {}
                    Err(error) => {
                        // Once per run of failures; the writer's own checkpoints go on.
                        if !failing {
                            eprintln!(
                                "WAL 체크포인트에 실패했습니다. 쓰기는 계속됩니다. / checkpointing \
                                 the WAL failed; writes go on: {error:#}"
                            );
                        }
                        failing = true;
                        long.store(true, Ordering::Relaxed);
                    }
                }
            }
        })?;
    Ok(Checkpointer { commits, long_log })
}

/// Starts the writer thread, on `cpu` when given. It ends when every sender is dropped. A
/// group holds at most `max_group` writes and, beyond its first write, at most
/// `max_group_ops` operations, so that one commit (and the wait of whoever arrives during it)
/// stays short. With `checkpointer`, a second connection to the same database, a thread of its
/// own checkpoints the write-ahead log instead of the writer's commits.
///
/// With more than one store (PostgreSQL, whose transactions commit side by side; see
/// [`crate::store::Backend::concurrent_writers`]) there is a writer thread for each, taking
/// groups from the one queue in turn: one gathers a group while the others commit theirs.
pub fn spawn(
    stores: Vec<Box<dyn Store>>,
    checkpointer: Option<Box<dyn Store>>,
    sizes: Sizes,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    limiter: Arc<Limiter>,
    cpu: Option<usize>,
) -> std::io::Result<mpsc::Sender<WriteJob>> {
    let (tx, rx) = mpsc::channel::<WriteJob>(sizes.queue.max(1));
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let started = std::time::Instant::now();
    let mut checkpointer = checkpointer;
    for (index, mut store) in stores.into_iter().enumerate() {
        let checkpointer = match checkpointer.take() {
            Some(other) => {
                store
                    .checkpoint_on_commit(false)
                    .map_err(std::io::Error::other)?;
                Some(spawn_checkpointer(other, Arc::clone(&metrics))?)
            }
            None => None,
        };
        let writer = Writer {
            store,
            checkpointer,
            sizes,
            clock: Arc::clone(&clock),
            metrics: Arc::clone(&metrics),
            limiter: Arc::clone(&limiter),
            started,
        };
        let rx = Arc::clone(&rx);
        let name = if index == 0 {
            "palpal-writer".to_owned()
        } else {
            format!("palpal-writer-{index}")
        };
        std::thread::Builder::new().name(name).spawn(move || {
            if let Some(cpu) = cpu {
                // The CPU the other threads were kept off (`crate::cpu`).
                if let Err(error) = crate::cpu::pin_current_thread(&[cpu]) {
                    eprintln!(
                        "쓰기 스레드를 CPU {cpu}에 두지 못해 다른 스레드와 함께 씁니다 / could not \
                         keep the writer thread on CPU {cpu}; it shares the others': {error}"
                    );
                }
            }
            writer.run(&rx);
        })?;
    }
    Ok(tx)
}

/// One writer thread's connection and what it reports to.
struct Writer {
    store: Box<dyn Store>,
    checkpointer: Option<Checkpointer>,
    sizes: Sizes,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    limiter: Arc<Limiter>,
    started: std::time::Instant,
}

impl Writer {
    /// Gathers and commits groups until every sender is dropped.
    fn run(self, rx: &std::sync::Mutex<mpsc::Receiver<WriteJob>>) {
        let Writer {
            mut store,
            checkpointer,
            sizes,
            clock,
            metrics,
            limiter,
            started,
        } = self;
        let Sizes {
            max_group,
            max_group_ops,
            limit_on_queue,
            ..
        } = sizes;
        let max_group = max_group.max(1);
        let mut jobs = Vec::with_capacity(max_group);
        let mut carried: Option<WriteJob> = None;
        loop {
            let idle = std::time::Instant::now();
            // One writer gathers at a time; the others commit meanwhile.
            let mut rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            let Some(first) = carried.take().or_else(|| rx.blocking_recv()) else {
                break;
            };
            metrics.writer_time(WriterState::Idle, idle.elapsed());
            if let Some(checkpointer) = &checkpointer {
                if checkpointer.long_log.load(Ordering::Relaxed) {
                    // Most of the log is copied already. Until the whole of it is (a
                    // reader may hold on to part of it), this is tried between groups.
                    if let Ok(Some(pages)) = store.checkpoint() {
                        metrics.wal(pages.logged);
                        if pages.copied == pages.logged {
                            checkpointer.long_log.store(false, Ordering::Relaxed);
                        }
                    }
                }
            }
            let mut ops = operations(&first.write);
            jobs.push(first);
            let mut lingered = Duration::ZERO;
            while jobs.len() < max_group && ops < max_group_ops {
                match rx.try_recv() {
                    Ok(job) if ops + operations(&job.write) > max_group_ops => {
                        carried = Some(job);
                        break;
                    }
                    Ok(job) => {
                        ops += operations(&job.write);
                        jobs.push(job);
                    }
                    Err(mpsc::error::TryRecvError::Empty)
                        if lingered < LINGER
                            && metrics.in_flight() - i64::try_from(jobs.len()).unwrap_or(0)
                                >= LINGER_SIBLINGS =>
                    {
                        // Others were admitted and are on their way (being read, checked):
                        // wait a moment for them rather than commit a small group.
                        std::thread::sleep(LINGER_STEP);
                        lingered += LINGER_STEP;
                    }
                    Err(_) => break,
                }
            }
            drop(rx);
            metrics.writer_time(WriterState::Lingering, lingered);
            let oldest = jobs.iter().map(|job| job.queued_at).min();
            let (writes, senders): (Vec<Write>, Vec<_>) =
                jobs.drain(..).map(|job| (job.write, job.reply)).unzip();
            let writing = std::time::Instant::now();
            let committed = store.commit_group(&writes, clock.now());
            let done = std::time::Instant::now();
            metrics.writer_time(WriterState::Writing, done - writing);
            let until = if limit_on_queue { writing } else { done };
            let waited = oldest.map_or(Duration::ZERO, |at| until.saturating_duration_since(at));
            metrics.set_in_flight_limit(limiter.group(done - started, waited));
            match committed {
                Ok(replies) => {
                    if let Some(refused) = metrics.storage_has_room() {
                        eprintln!(
                            "저장 공간이 확보되어 쓰기를 다시 받습니다 (가득 찬 동안 거절한 요청 \
                                 {refused}건은 단말기가 다시 보냅니다) / storage has room again; \
                                 writes resumed (requests refused while full: {refused}; the \
                                 terminals send them again)"
                        );
                    }
                    metrics.group(writes.len());
                    if let Some(checkpointer) = &checkpointer {
                        // Full means it has not started on the last notice yet.
                        let _ = checkpointer.commits.try_send(());
                    }
                    for (sender, reply) in senders.into_iter().zip(replies) {
                        let _ = sender.send(Ok(reply));
                    }
                }
                Err(error) if is_storage_full(&error) => {
                    if metrics.storage_full(senders.len()) {
                        eprintln!(
                            "서버 저장 공간이 가득 찼습니다. 쓰기 요청은 아무것도 반영하지 않고 \
                                 503 storage_full로 거절하며, 읽기는 계속됩니다. 데이터베이스 \
                                 디스크의 공간을 확보하면 재시작 없이 쓰기를 다시 받습니다. / the \
                                 server's storage is full ({error:#}): writes are rolled back and \
                                 refused with 503 storage_full, reads go on; free space on the \
                                 database's disk and writing resumes without a restart"
                        );
                    }
                    for sender in senders {
                        let _ = sender.send(Err(WriteError::StorageFull));
                    }
                }
                Err(error) if crate::store::postgres::is_unreachable(&error) => {
                    eprintln!(
                        "데이터베이스에 연결할 수 없어 쓰기 묶음을 503으로 거절합니다 / the \
                             database cannot be reached; the write group is refused with 503: \
                             {error:#}"
                    );
                    for sender in senders {
                        let _ = sender.send(Err(WriteError::DatabaseUnavailable));
                    }
                }
                Err(error) => {
                    let text = format!("{error:#}");
                    eprintln!("쓰기 묶음을 저장하지 못했습니다 / write group failed: {text}");
                    for sender in senders {
                        let _ = sender.send(Err(WriteError::Failed(text.clone())));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_answered_as_storage_full_and_anything_else_as_internal() {
        assert_eq!(
            ApiError::from(WriteError::StorageFull).0,
            ErrorCode::StorageFull
        );
        assert_eq!(
            ApiError::from(WriteError::Failed("x".to_owned())).0,
            ErrorCode::Internal
        );
    }
}
