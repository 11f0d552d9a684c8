//! Counters for `/metrics`, rendered in the Prometheus text format (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the write-group size histogram.
const GROUP_BUCKETS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// The server's counters. Cheap to update from many tasks at once.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    in_flight: AtomicI64,
    in_flight_limit: AtomicI64,
    reading: AtomicI64,
    body_kib: AtomicI64,
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    operations: Mutex<BTreeMap<(String, &'static str), u64>>,
    groups: AtomicU64,
    group_writes: AtomicU64,
    group_buckets: [AtomicU64; GROUP_BUCKETS.len()],
    storage_full: AtomicI64,
    storage_full_refusals: AtomicU64,
    storage_full_episodes: AtomicU64,
    /// Writes refused in the current full-disk episode, shared by every writer of the
    /// process (a retry that reaches another writer is the same episode); `None` while there
    /// is room.
    storage_full_episode: Mutex<Option<u64>>,
    wal_pages: AtomicU64,
    writer_nanos: [AtomicU64; 3],
    /// What happened since [`Metrics::take_activity`] last took it, by figure.
    activity: Mutex<BTreeMap<&'static str, i64>>,
}

/// Upper bounds, in milliseconds, of the answer-time figures of the console's Today page
/// (`latency_le_<bound>`; slower answers count as `latency_slower`).
pub const LATENCY_BOUNDS_MS: [u64; 6] = [10, 50, 100, 250, 1_000, 5_000];

/// The answer-time figures: one per bound of [`LATENCY_BOUNDS_MS`], then the slower answers.
pub const LATENCY_FIGURES: [&str; 7] = [
    "latency_le_10",
    "latency_le_50",
    "latency_le_100",
    "latency_le_250",
    "latency_le_1000",
    "latency_le_5000",
    "latency_slower",
];

/// What the writer thread spends its time on.
#[derive(Debug, Clone, Copy)]
pub enum WriterState {
    /// Waiting for a write to arrive.
    Idle = 0,
    /// Waiting a moment for more writes to join a group (see `writer::LINGER`).
    Lingering = 1,
    /// Applying a group and committing it (including the disk flush).
    Writing = 2,
}

const WRITER_STATES: [&str; 3] = ["idle", "lingering", "writing"];

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    /// Counts an answered request.
    pub fn request(&self, route: &str, status: u16) {
        *lock(&self.requests)
            .entry((route.to_owned(), status))
            .or_default() += 1;
    }

    /// Counts a request refused as a whole, by error code.
    pub fn refusal(&self, code: &'static str) {
        *lock(&self.refusals).entry(code).or_default() += 1;
    }

    /// Counts an answer for the Today page: every request, 429s, server errors, and how
    /// long it took.
    pub fn answered(&self, status: u16, took: std::time::Duration) {
        let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let latency = LATENCY_BOUNDS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .map_or(LATENCY_FIGURES[LATENCY_BOUNDS_MS.len()], |i| {
                LATENCY_FIGURES[i]
            });
        let mut activity = lock(&self.activity);
        *activity.entry("requests").or_default() += 1;
        *activity.entry(latency).or_default() += 1;
        if status == 429 {
            *activity.entry("refused_429").or_default() += 1;
        } else if status >= 500 {
            *activity.entry("errors_5xx").or_default() += 1;
        }
    }

    /// Counts an operation the server accepted, for the Today page, with the points it
    /// credited.
    pub fn accepted(&self, kind: &str, points: u64) {
        let figure = match kind {
            "enrollment" => "sign_ups",
            "step_report" => "step_reports",
            "redemption_hold" => "holds",
            "void" => "voids",
            "watch_pairing" => "pairings",
            _ => "other_operations",
        };
        let mut activity = lock(&self.activity);
        *activity.entry(figure).or_default() += 1;
        if points > 0 {
            *activity.entry("points").or_default() += i64::try_from(points).unwrap_or(i64::MAX);
        }
    }

    /// Counts an operation the server rejected, for the Today page.
    pub fn rejected(&self) {
        *lock(&self.activity).entry("rejected").or_default() += 1;
    }

    /// What was counted for the Today page since the last call, by figure.
    pub fn take_activity(&self) -> Vec<(&'static str, i64)> {
        std::mem::take(&mut *lock(&self.activity))
            .into_iter()
            .collect()
    }

    /// Puts counts [`Metrics::take_activity`] took back (the writer could not take them).
    pub fn give_back_activity(&self, counts: &[(&'static str, i64)]) {
        let mut activity = lock(&self.activity);
        for (figure, count) in counts {
            *activity.entry(figure).or_default() += count;
        }
    }

    /// Counts an operation's result.
    pub fn operation(&self, kind: &str, status: &'static str) {
        let kind = match kind {
            "enrollment" | "step_report" => kind,
            _ => "other",
        };
        *lock(&self.operations)
            .entry((kind.to_owned(), status))
            .or_default() += 1;
    }

    /// Records the limit of requests in flight.
    pub fn set_in_flight_limit(&self, limit: usize) {
        self.in_flight_limit
            .store(i64::try_from(limit).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// One more request in flight.
    pub fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// One request fewer in flight.
    pub fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// `change` (1 or -1) to the requests reading their bodies (before their work permits).
    pub fn reading(&self, change: i64) {
        self.reading.fetch_add(change, Ordering::Relaxed);
    }

    /// `change` KiB to the request bodies held now (taken as their bytes arrive).
    pub fn body_kib(&self, change: i64) {
        self.body_kib.fetch_add(change, Ordering::Relaxed);
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Records a committed write group of `size` writes.
    pub fn group(&self, size: usize) {
        let size = u64::try_from(size).unwrap_or(u64::MAX);
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.group_writes.fetch_add(size, Ordering::Relaxed);
        for (bound, bucket) in GROUP_BUCKETS.iter().zip(&self.group_buckets) {
            if size <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The database's disk is full: `writes` more writes refused, none of them applied.
    /// True when this starts an episode (the first refusal since a write group last
    /// committed, by any writer).
    pub fn storage_full(&self, writes: usize) -> bool {
        let writes = u64::try_from(writes).unwrap_or(u64::MAX);
        let mut episode = lock(&self.storage_full_episode);
        let first = episode.is_none();
        *episode.get_or_insert(0) += writes;
        if first {
            self.storage_full_episodes.fetch_add(1, Ordering::Relaxed);
        }
        self.storage_full.store(1, Ordering::Relaxed);
        self.storage_full_refusals
            .fetch_add(writes, Ordering::Relaxed);
        first
    }

    /// The write-ahead log's length in pages, as a checkpoint found it.
    pub fn wal(&self, pages: u32) {
        self.wal_pages.store(u64::from(pages), Ordering::Relaxed);
    }

    /// The writer spent `time` in `state`.
    pub fn writer_time(&self, state: WriterState, time: std::time::Duration) {
        self.writer_nanos[state as usize].fetch_add(
            u64::try_from(time.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// A write group was committed, so the database's disk has room: the writes refused in
    /// the full-disk episode this ends, if it ends one.
    pub fn storage_has_room(&self) -> Option<u64> {
        if self.storage_full.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut episode = lock(&self.storage_full_episode);
        let refused = episode.take()?;
        self.storage_full.store(0, Ordering::Relaxed);
        Some(refused)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP palpal_http_requests_total HTTP requests answered, by route and status.\n\
             # TYPE palpal_http_requests_total counter"
        );
        for ((route, status), count) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "palpal_http_requests_total{{route=\"{}\",status=\"{status}\"}} {count}",
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP palpal_http_in_flight Requests holding a work permit now.\n\
             # TYPE palpal_http_in_flight gauge\n\
             palpal_http_in_flight {}\n\
             # HELP palpal_http_in_flight_limit Work permits; beyond them requests get 429.\n\
             # TYPE palpal_http_in_flight_limit gauge\n\
             palpal_http_in_flight_limit {}\n\
             # HELP palpal_http_reading Admitted requests whose bodies are still arriving: \
             they hold their bodies' bytes, and a work permit only once the body is read.\n\
             # TYPE palpal_http_reading gauge\n\
             palpal_http_reading {}\n\
             # HELP palpal_http_body_kib KiB of request bodies held now, taken as they \
             arrive (read, or being worked on).\n\
             # TYPE palpal_http_body_kib gauge\n\
             palpal_http_body_kib {}",
            self.in_flight(),
            self.in_flight_limit.load(Ordering::Relaxed),
            self.reading.load(Ordering::Relaxed),
            self.body_kib.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP palpal_refusals_total Requests refused as a whole, by error code.\n\
             # TYPE palpal_refusals_total counter"
        );
        for (code, count) in lock(&self.refusals).iter() {
            let _ = writeln!(out, "palpal_refusals_total{{code=\"{code}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP palpal_operations_total Sync operations, by kind and result.\n\
             # TYPE palpal_operations_total counter"
        );
        for ((kind, status), count) in lock(&self.operations).iter() {
            let _ = writeln!(
                out,
                "palpal_operations_total{{kind=\"{kind}\",status=\"{status}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP palpal_storage_full 1 while the database's disk is full and writes are \
             refused with 503 storage_full; 0 once a write group commits again.\n\
             # TYPE palpal_storage_full gauge\n\
             palpal_storage_full {}\n\
             # HELP palpal_storage_full_refusals_total Writes (requests) refused because the \
             database's disk was full; nothing of them was applied.\n\
             # TYPE palpal_storage_full_refusals_total counter\n\
             palpal_storage_full_refusals_total {}\n\
             # HELP palpal_storage_full_episodes_total Times the database's disk filled up \
             (each logged once).\n\
             # TYPE palpal_storage_full_episodes_total counter\n\
             palpal_storage_full_episodes_total {}\n\
             # HELP palpal_wal_pages The write-ahead log's length in pages at the last \
             checkpoint; it starts over once wholly copied into the database.\n\
             # TYPE palpal_wal_pages gauge\n\
             palpal_wal_pages {}",
            self.storage_full.load(Ordering::Relaxed),
            self.storage_full_refusals.load(Ordering::Relaxed),
            self.storage_full_episodes.load(Ordering::Relaxed),
            self.wal_pages.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP palpal_writer_seconds_total Time the writer thread spent idle (waiting for \
             writes), lingering (waiting for more writes to join a group) and writing \
             (applying and committing groups).\n\
             # TYPE palpal_writer_seconds_total counter"
        );
        for (state, nanos) in WRITER_STATES.iter().zip(&self.writer_nanos) {
            let _ = writeln!(
                out,
                "palpal_writer_seconds_total{{state=\"{state}\"}} {:.6}",
                nanos.load(Ordering::Relaxed) as f64 / 1e9
            );
        }
        let groups = self.groups.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP palpal_write_batches_total Write groups committed (one transaction each).\n\
             # TYPE palpal_write_batches_total counter\n\
             palpal_write_batches_total {groups}\n\
             # HELP palpal_write_batch_size Writes (requests) per committed group.\n\
             # TYPE palpal_write_batch_size histogram"
        );
        for (bound, bucket) in GROUP_BUCKETS.iter().zip(&self.group_buckets) {
            let _ = writeln!(
                out,
                "palpal_write_batch_size_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "palpal_write_batch_size_bucket{{le=\"+Inf\"}} {groups}\n\
             palpal_write_batch_size_sum {}\n\
             palpal_write_batch_size_count {groups}",
            self.group_writes.load(Ordering::Relaxed)
        );
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writers_time_and_the_bodies_being_read_are_shown() {
        let metrics = Metrics::default();
        metrics.writer_time(WriterState::Idle, std::time::Duration::from_millis(1500));
        metrics.writer_time(WriterState::Writing, std::time::Duration::from_micros(250));
        metrics.writer_time(WriterState::Writing, std::time::Duration::from_micros(250));
        metrics.reading(1);
        metrics.reading(1);
        metrics.reading(-1);
        let text = metrics.render();
        assert!(text.contains("palpal_writer_seconds_total{state=\"idle\"} 1.500000\n"));
        assert!(text.contains("palpal_writer_seconds_total{state=\"lingering\"} 0.000000\n"));
        assert!(text.contains("palpal_writer_seconds_total{state=\"writing\"} 0.000500\n"));
        assert!(text.contains("palpal_http_reading 1\n"));
    }

    #[test]
    fn group_sizes_fill_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.group(1);
        metrics.group(3);
        metrics.group(200);
        let text = metrics.render();
        assert!(text.contains("palpal_write_batch_size_bucket{le=\"1\"} 1\n"));
        assert!(text.contains("palpal_write_batch_size_bucket{le=\"4\"} 2\n"));
        assert!(text.contains("palpal_write_batch_size_bucket{le=\"128\"} 2\n"));
        assert!(text.contains("palpal_write_batch_size_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("palpal_write_batch_size_sum 204\n"));
        assert!(text.contains("palpal_write_batches_total 3\n"));
    }

    #[test]
    fn a_full_disk_is_a_gauge_and_counters_of_refusals_and_episodes() {
        let metrics = Metrics::default();
        let text = metrics.render();
        assert!(text.contains("\npalpal_storage_full 0\n"));
        assert!(text.contains("\npalpal_storage_full_refusals_total 0\n"));
        assert_eq!(metrics.storage_has_room(), None);
        assert!(metrics.storage_full(3));
        assert!(!metrics.storage_full(1));
        let text = metrics.render();
        assert!(text.contains("\npalpal_storage_full 1\n"));
        assert!(text.contains("\npalpal_storage_full_refusals_total 4\n"));
        assert!(text.contains("\npalpal_storage_full_episodes_total 1\n"));
        assert_eq!(metrics.storage_has_room(), Some(4));
        assert_eq!(metrics.storage_has_room(), None);
        assert!(metrics.render().contains("\npalpal_storage_full 0\n"));
        assert!(metrics.storage_full(2));
        let text = metrics.render();
        assert!(text.contains("\npalpal_storage_full_refusals_total 6\n"));
        assert!(text.contains("\npalpal_storage_full_episodes_total 2\n"));
    }

    #[test]
    fn the_write_ahead_log_length_is_the_last_one_seen() {
        let metrics = Metrics::default();
        assert!(metrics.render().contains("\npalpal_wal_pages 0\n"));
        metrics.wal(5_000);
        metrics.wal(12);
        assert!(metrics.render().contains("\npalpal_wal_pages 12\n"));
    }

    #[test]
    fn requests_are_counted_by_route_and_status() {
        let metrics = Metrics::default();
        metrics.request("/v1/sync", 200);
        metrics.request("/v1/sync", 200);
        metrics.request("/v1/sync", 429);
        let text = metrics.render();
        assert!(text.contains("palpal_http_requests_total{route=\"/v1/sync\",status=\"200\"} 2\n"));
        assert!(text.contains("palpal_http_requests_total{route=\"/v1/sync\",status=\"429\"} 1\n"));
    }
}
