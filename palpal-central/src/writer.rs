//! The single writer: a dedicated thread that owns the write connection and commits queued
//! writes in groups. Each turn it takes whatever is queued (up to a maximum), applies it in one
//! transaction, commits once, and only then answers each request. The queue in front of it is
//! bounded; a full queue is refused by the caller, never grown.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{Store, Write, WriteReply};

/// A write waiting for the writer, with where to send its reply.
#[derive(Debug)]
pub struct WriteJob {
    /// What to write.
    pub write: Write,
    /// Where the reply goes; `Err` carries why the group could not be committed.
    pub reply: oneshot::Sender<Result<WriteReply, String>>,
}

fn operations(write: &Write) -> usize {
    match write {
        Write::Sync { operations, .. } => operations.len(),
        Write::Enroll { .. } => 1,
    }
}

/// Starts the writer thread. It ends when every sender is dropped. A group holds at most
/// `max_group` writes and, beyond its first write, at most `max_group_ops` operations, so
/// that one commit (and the wait of whoever arrives during it) stays short.
pub fn spawn(
    mut store: Box<dyn Store>,
    queue: usize,
    max_group: usize,
    max_group_ops: usize,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
) -> std::io::Result<mpsc::Sender<WriteJob>> {
    let (tx, mut rx) = mpsc::channel::<WriteJob>(queue.max(1));
    let max_group = max_group.max(1);
    std::thread::Builder::new()
        .name("palpal-writer".to_owned())
        .spawn(move || {
            let mut jobs = Vec::with_capacity(max_group);
            let mut carried: Option<WriteJob> = None;
            loop {
                let Some(first) = carried.take().or_else(|| rx.blocking_recv()) else {
                    break;
                };
                let mut ops = operations(&first.write);
                jobs.push(first);
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
                        Err(_) => break,
                    }
                }
                let (writes, senders): (Vec<Write>, Vec<_>) =
                    jobs.drain(..).map(|job| (job.write, job.reply)).unzip();
                match store.commit_group(&writes, clock.now()) {
                    Ok(replies) => {
                        metrics.group(writes.len());
                        for (sender, reply) in senders.into_iter().zip(replies) {
                            let _ = sender.send(Ok(reply));
                        }
                    }
                    Err(error) => {
                        let text = format!("{error:#}");
                        eprintln!("쓰기 묶음을 저장하지 못했습니다 / write group failed: {text}");
                        for sender in senders {
                            let _ = sender.send(Err(text.clone()));
                        }
                    }
                }
            }
        })?;
    Ok(tx)
}
