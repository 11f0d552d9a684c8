//! The admission limit that follows the writer's latency.
//!
//! A fixed number of requests in flight keeps memory bounded but not latency: when each write
//! costs more (a larger member table, a slower disk, larger batches), the same number of
//! requests waits longer. [`Aimd`] watches how long writes wait for the writer and lowers the
//! limit (by a tenth each 100 ms window) while the slowest of them waited longer than the
//! target, and raises it again (by one each window) while requests were being refused and the
//! writer kept within the target. The limit stays between a floor and the configured maximum
//! (`--max-in-flight`), which remains the hard bound. Beyond the limit requests get 429 with
//! `Retry-After`, which terminals honour.
//!
//! `Aimd` is sans-IO: time is passed in, so it is tested with made-up clocks.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The length of one observation window.
pub const WINDOW: Duration = Duration::from_millis(100);

/// Additive increase, multiplicative decrease of an admission limit from the writer's
/// latency.
#[derive(Debug, Clone)]
pub struct Aimd {
    limit: f64,
    floor: f64,
    max: f64,
    target: Duration,
    window_start: Option<Duration>,
    window_worst: Duration,
}

impl Aimd {
    /// Starts at `max`; never goes below `floor` (at least 1) or above `max`.
    pub fn new(floor: usize, max: usize, target: Duration) -> Aimd {
        let max = max.max(1) as f64;
        Aimd {
            limit: max,
            floor: (floor.max(1) as f64).min(max),
            max,
            target,
            window_start: None,
            window_worst: Duration::ZERO,
        }
    }

    /// The limit now.
    pub fn limit(&self) -> usize {
        self.limit.floor() as usize
    }

    /// A write group was committed at `now` (any monotonic clock); the longest any of its
    /// writes waited (from queued to committed, or to taken by a writer, as the writer
    /// measures it) was `waited`. `refused` says whether requests
    /// were refused at the limit since the last call. Returns the limit.
    pub fn group(&mut self, now: Duration, waited: Duration, refused: bool) -> usize {
        let start = *self.window_start.get_or_insert(now);
        self.window_worst = self.window_worst.max(waited);
        if now.saturating_sub(start) >= WINDOW {
            if self.window_worst > self.target {
                self.limit = (self.limit * 0.9).max(self.floor);
            } else if refused {
                self.limit = (self.limit + 1.0).min(self.max);
            }
            self.window_start = Some(now);
            self.window_worst = Duration::ZERO;
        }
        self.limit()
    }
}

/// The limit shared by the writer, which observes, and the HTTP layer, which admits.
#[derive(Debug)]
pub struct Limiter {
    aimd: Option<Mutex<Aimd>>,
    current: AtomicUsize,
    refused: AtomicBool,
}

impl Limiter {
    /// A limit between `floor` and `max` that keeps the writer's wait under `target`, or
    /// always `max` when `target` is `None`.
    pub fn new(floor: usize, max: usize, target: Option<Duration>) -> Limiter {
        Limiter {
            aimd: target.map(|target| Mutex::new(Aimd::new(floor, max, target))),
            current: AtomicUsize::new(max.max(1)),
            refused: AtomicBool::new(false),
        }
    }

    /// Requests that may be in flight now.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// A request was refused because the limit was reached.
    pub fn refused(&self) {
        self.refused.store(true, Ordering::Relaxed);
    }

    /// See [`Aimd::group`]; returns the limit.
    pub fn group(&self, now: Duration, waited: Duration) -> usize {
        let Some(aimd) = &self.aimd else {
            return self.current();
        };
        let refused = self.refused.swap(false, Ordering::Relaxed);
        let limit = aimd
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .group(now, waited, refused);
        self.current.store(limit, Ordering::Relaxed);
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Groups every 10 ms for `windows` windows after `from` (where a window starts), each
    /// having waited `waited`.
    fn run(aimd: &mut Aimd, from: &mut Duration, windows: u32, waited: Duration, refused: bool) {
        for _ in 0..windows * 10 {
            *from += 10 * MS;
            aimd.group(*from, waited, refused);
        }
    }

    #[test]
    fn a_slow_writer_lowers_the_limit_to_its_floor_and_a_fast_one_raises_it_back() {
        let mut aimd = Aimd::new(8, 64, 50 * MS);
        let mut now = Duration::ZERO;
        aimd.group(now, Duration::ZERO, false);
        assert_eq!(aimd.limit(), 64);
        run(&mut aimd, &mut now, 1, 80 * MS, true);
        assert_eq!(aimd.limit(), 57, "a tenth less after one slow window");
        run(&mut aimd, &mut now, 40, 80 * MS, true);
        assert_eq!(aimd.limit(), 8, "never below the floor");
        run(&mut aimd, &mut now, 5, 20 * MS, true);
        assert_eq!(aimd.limit(), 13, "one more per window within the target");
        run(&mut aimd, &mut now, 100, 20 * MS, true);
        assert_eq!(aimd.limit(), 64, "never above the maximum");
    }

    #[test]
    fn without_refusals_the_limit_is_not_raised() {
        let mut aimd = Aimd::new(8, 64, 50 * MS);
        let mut now = Duration::ZERO;
        aimd.group(now, Duration::ZERO, false);
        run(&mut aimd, &mut now, 10, 90 * MS, false);
        let low = aimd.limit();
        assert!(low < 64);
        run(&mut aimd, &mut now, 10, 10 * MS, false);
        assert_eq!(
            aimd.limit(),
            low,
            "nobody was refused: no reason to admit more"
        );
    }

    #[test]
    fn one_slow_group_in_a_window_counts() {
        let mut aimd = Aimd::new(8, 64, 50 * MS);
        aimd.group(Duration::ZERO, 10 * MS, true);
        aimd.group(50 * MS, 70 * MS, true);
        aimd.group(100 * MS, 10 * MS, true);
        assert_eq!(aimd.limit(), 57);
    }

    #[test]
    fn without_a_target_the_limit_is_the_maximum() {
        let limiter = Limiter::new(8, 64, None);
        limiter.refused();
        assert_eq!(
            limiter.group(Duration::from_secs(1), Duration::from_secs(5)),
            64
        );
        assert_eq!(limiter.current(), 64);
        let limiter = Limiter::new(8, 64, Some(50 * MS));
        limiter.group(Duration::ZERO, 90 * MS);
        limiter.group(WINDOW, 90 * MS);
        assert_eq!(limiter.current(), 57);
    }
}
