//! What the replay counts, per second of real time: operations offered and settled, requests
//! and how they ended, their latencies, the terminals' queues and the server's memory.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One second.
#[derive(Debug, Clone, Default)]
pub struct Bucket {
    /// Operations the terminals created (accepted from a person).
    pub offered: u64,
    /// Operations the server answered for (applied, duplicate, or rejected with a reason).
    pub settled: u64,
    /// Requests that got an HTTP answer of 200.
    pub ok: u64,
    /// 429 answers.
    pub overloaded: u64,
    /// Other HTTP errors.
    pub errors: u64,
    /// No answer: refused connection, timeout, broken.
    pub failed: u64,
    /// Latency of each answered request, microseconds.
    pub latencies: Vec<u32>,
    /// Operations waiting on all terminals, sampled at the end of the second.
    pub queued: i64,
    /// Server resident memory, KiB (0 while it is down).
    pub rss_kib: u64,
    /// Whether the sampler reached this second (it can miss one while the server restarts).
    pub sampled: bool,
}

/// Shared by every terminal task.
pub struct Metrics {
    origin: Instant,
    buckets: Mutex<Vec<Bucket>>,
    /// Operations created and not yet settled, on all terminals.
    pub queued: AtomicI64,
    /// The latest settle time (ms since origin) of an operation created before the restart.
    pub last_pre_restart_settle_ms: AtomicU64,
    /// When the server came back (ms since origin); `u64::MAX` until then.
    pub restart_ms: AtomicU64,
    /// HTTP statuses other than 200 and 429, counted.
    pub other_statuses: Mutex<std::collections::BTreeMap<u16, u64>>,
}

impl Metrics {
    pub fn new(origin: Instant) -> Metrics {
        Metrics {
            origin,
            buckets: Mutex::new(Vec::new()),
            queued: AtomicI64::new(0),
            last_pre_restart_settle_ms: AtomicU64::new(0),
            restart_ms: AtomicU64::new(u64::MAX),
            other_statuses: Mutex::default(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }

    pub fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let second = usize::try_from(self.origin.elapsed().as_secs()).unwrap_or(usize::MAX);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() <= second {
            buckets.resize(second + 1, Bucket::default());
        }
        f(&mut buckets[second])
    }

    pub fn offered(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.with(|b| b.offered += 1);
    }

    /// An operation created at `created` got its final answer now.
    pub fn settled(&self, created: Instant) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
        self.with(|b| b.settled += 1);
        let restart = self.restart_ms.load(Ordering::Relaxed);
        if self.ms(created) < restart {
            let now = self.ms(Instant::now());
            self.last_pre_restart_settle_ms
                .fetch_max(now, Ordering::Relaxed);
        }
    }

    /// A request ended: with an HTTP status, or none.
    pub fn request(&self, status: Option<u16>, latency: Duration) {
        let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        if let Some(other) = status.filter(|s| *s != 200 && *s != 429) {
            *self
                .other_statuses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(other)
                .or_default() += 1;
        }
        self.with(|b| match status {
            Some(200) => {
                b.ok += 1;
                b.latencies.push(micros);
            }
            Some(429) => {
                b.overloaded += 1;
                b.latencies.push(micros);
            }
            Some(_) => {
                b.errors += 1;
                b.latencies.push(micros);
            }
            None => b.failed += 1,
        });
    }

    pub fn sample(&self, rss_kib: u64) {
        let queued = self.queued.load(Ordering::Relaxed);
        self.with(|b| {
            b.queued = queued;
            b.rss_kib = rss_kib;
            b.sampled = true;
        });
    }

    /// The seconds so far; a second the sampler missed carries the sample before it.
    pub fn take(&self) -> Vec<Bucket> {
        let mut buckets =
            std::mem::take(&mut *self.buckets.lock().unwrap_or_else(|e| e.into_inner()));
        let mut last = (0, 0);
        for b in &mut buckets {
            if b.sampled {
                last = (b.queued, b.rss_kib);
            } else {
                (b.queued, b.rss_kib) = last;
            }
        }
        buckets
    }
}

/// The `q`-quantile (0..=1) of `values`, which it sorts.
pub fn quantile(values: &mut [u32], q: f64) -> Option<u32> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let index = ((values.len() - 1) as f64 * q).round() as usize;
    values.get(index).copied()
}
