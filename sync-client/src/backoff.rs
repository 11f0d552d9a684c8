//! How long to wait after a failure and when to stop knocking, shared by the push client and
//! the pull: exponential backoff with full jitter, the server's `Retry-After` as a floor (cut
//! to [`Config::max_retry_after`]), and a circuit breaker that opens after
//! [`Config::breaker_threshold`] consecutive failures (or a failed probe) and lets one probe
//! through after [`Config::breaker_cooldown`].

use std::time::Duration;

use splitmix::SplitMix64;

use crate::{Config, Phase, Time};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    Closed,
    Open { until: Time },
    HalfOpen,
}

/// What may be sent when a request is let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Any request: the circuit is closed.
    Any,
    /// One small probe: the circuit is half open.
    Probe,
}

/// What a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Back off; the next request may go at this time.
    Backoff(Time),
    /// The circuit opened; it lets a probe through at this time.
    CircuitOpen(Time),
}

/// The consecutive failures, the backoff in progress and the breaker's state, with the seeded
/// generator the jitter is drawn from.
#[derive(Debug)]
pub(crate) struct Backoff {
    failures: u32,
    wait_until: Option<Time>,
    breaker: Breaker,
    rng: SplitMix64,
}

impl Backoff {
    /// No failures yet; jitter drawn from `seed`.
    pub(crate) fn new(seed: u64) -> Backoff {
        Backoff {
            failures: 0,
            wait_until: None,
            breaker: Breaker::Closed,
            rng: SplitMix64::new(seed),
        }
    }

    /// Why nothing may be sent at `now` ([`Phase::CircuitOpen`] or [`Phase::BackingOff`]), or
    /// `None` when a request may go.
    pub(crate) fn waiting(&self, now: Time) -> Option<Phase> {
        if matches!(self.breaker, Breaker::Open { until } if now < until) {
            Some(Phase::CircuitOpen)
        } else if matches!(self.wait_until, Some(until) if now < until) {
            Some(Phase::BackingOff)
        } else {
            None
        }
    }

    /// Whether a request may be sent at `now`, and which: an open circuit whose cool-down has
    /// ended becomes half open and lets one probe through.
    pub(crate) fn admit(&mut self, now: Time) -> Option<Admit> {
        if matches!(self.wait_until, Some(until) if now < until) {
            return None;
        }
        self.wait_until = None;
        match self.breaker {
            Breaker::Open { until } if now < until => None,
            Breaker::Open { .. } | Breaker::HalfOpen => {
                self.breaker = Breaker::HalfOpen;
                Some(Admit::Probe)
            }
            Breaker::Closed => Some(Admit::Any),
        }
    }

    /// When the wait in progress ends: the backoff's end or the cool-down's, the later.
    pub(crate) fn wake(&self) -> Option<Time> {
        let breaker = match self.breaker {
            Breaker::Open { until } => Some(until),
            _ => None,
        };
        match (self.wait_until, breaker) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// After a failure worth retrying at `now`: back off with full jitter, never sooner than
    /// `retry_after` (cut to the configured longest); open the circuit after too many in a
    /// row, or at once if a probe failed.
    pub(crate) fn failed(
        &mut self,
        config: &Config,
        now: Time,
        retry_after: Option<Duration>,
    ) -> Wait {
        self.failures = self.failures.saturating_add(1);
        let floor = retry_after.map_or(Duration::ZERO, |d| d.min(config.max_retry_after));
        let jitter = self.full_jitter(config, self.failures);
        let probe_failed = self.breaker == Breaker::HalfOpen;
        if probe_failed || self.failures >= config.breaker_threshold {
            let until =
                now.saturating_add(floor.max(config.breaker_cooldown).saturating_add(jitter));
            self.breaker = Breaker::Open { until };
            self.wait_until = None;
            Wait::CircuitOpen(until)
        } else {
            let until = now.saturating_add(floor.saturating_add(jitter));
            self.wait_until = Some(until);
            Wait::Backoff(until)
        }
    }

    /// The server answered with progress: the failures are forgotten and the circuit closes.
    pub(crate) fn succeeded(&mut self) {
        self.failures = 0;
        self.breaker = Breaker::Closed;
        self.wait_until = None;
    }

    /// A uniformly random wait in `[0, min(cap, base * 2^(attempt-1))]`.
    fn full_jitter(&mut self, config: &Config, attempt: u32) -> Duration {
        let ceiling = backoff_ceiling(config, attempt);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.rng.below(ceiling_ms.saturating_add(1)))
    }
}

/// The upper bound of the backoff after `attempt` consecutive failures:
/// `min(cap, base * 2^(attempt-1))`.
pub fn backoff_ceiling(config: &Config, attempt: u32) -> Duration {
    let shift = attempt.saturating_sub(1).min(30);
    config
        .backoff_base
        .saturating_mul(1u32 << shift)
        .min(config.backoff_cap)
}
