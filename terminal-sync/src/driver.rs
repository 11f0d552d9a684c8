//! The one loop that drives `sync-client`'s push state machine. [`crate::push`] (the app's
//! background sync, the card's push, `palpal sync`) runs it over the terminal's store and
//! [`crate::central::Central`]; the launch-day replay's terminals run it over their queue and
//! their own HTTP client. The state machine decides what to send and when to wake; this loop
//! sends through a [`Transport`], records through an [`Outbox`], and waits on tokio's timer.

use std::future::Future;
use std::time::{Duration, Instant};

use sync_client::{Client, Event, Failure, Halt, Op, Outcome, Phase, Response, Time, Transmit};

/// Where a push's operations come from and where their answers go.
pub trait Outbox {
    /// The operations in `transmit` are about to be sent (a store marks them in flight, so
    /// that a crash now sends them again rather than losing them).
    fn sending(&mut self, transmit: &Transmit) -> anyhow::Result<()>;

    /// Final answers, each operation's once.
    fn settle(&mut self, settled: Vec<(String, Outcome)>) -> anyhow::Result<()>;

    /// Operations queued since the last call, without waiting. A store's outbox is read
    /// whole before the push starts, so by default none.
    fn arrived(&mut self) -> Vec<Op> {
        Vec::new()
    }

    /// Waits for more operations; `None` once no more will come (by default at once). The
    /// loop drops this future when a timer fires first, so it must keep what it has taken
    /// (for [`Outbox::arrived`] or its next call) rather than lose it.
    fn next(&mut self) -> impl Future<Output = Option<Vec<Op>>> {
        std::future::ready(None)
    }
}

/// How one request reaches the server.
pub trait Transport {
    /// Sends `transmit` and reads the answer, or why there was none.
    fn send(&mut self, transmit: &Transmit) -> impl Future<Output = Result<Response, Failure>>;
}

/// When the loop gives up for now, besides having nothing left to send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Stop when the next wait (backoff, `Retry-After`) is longer than this.
    pub max_wait: Option<Duration>,
    /// Stop as soon as the circuit breaker opens.
    pub stop_when_open: bool,
}

/// Why the loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Everything queued is settled and no more will come.
    Done,
    /// The server refused the terminal itself; the operations stay queued.
    Halted(Halt),
    /// The circuit breaker opened: the server cannot be reached or does not answer.
    Unreachable,
    /// The next wait is longer than [`Limits::max_wait`].
    Later,
}

/// Pushes what `outbox` holds and receives through `client` until it is all settled and no
/// more will come, or a [`Limits`] stops it. Must run on a tokio runtime with timers.
pub async fn push<O: Outbox, T: Transport>(
    client: &mut Client,
    outbox: &mut O,
    transport: &mut T,
    limits: Limits,
) -> anyhow::Result<Stop> {
    let origin = Instant::now();
    let clock = || Time::from_millis(u64::try_from(origin.elapsed().as_millis()).unwrap_or(0));
    let mut open = true;
    loop {
        for op in outbox.arrived() {
            client.enqueue(op);
        }
        let mut settled = Vec::new();
        let mut halted = None;
        while let Some(event) = client.poll_event() {
            match event {
                Event::Settled { op_id, outcome } => settled.push((op_id, outcome)),
                Event::Halted(halt) => halted = Some(halt),
            }
        }
        if !settled.is_empty() {
            outbox.settle(settled)?;
        }
        if let Some(halt) = halted {
            return Ok(Stop::Halted(halt));
        }
        if !open && client.unsettled() == 0 {
            return Ok(Stop::Done);
        }
        let at = clock();
        if let Some(transmit) = client.poll_transmit(at) {
            outbox.sending(&transmit)?;
            match transport.send(&transmit).await {
                Ok(response) => client.handle_response(clock(), transmit.seq, response),
                Err(failure) => client.handle_failure(clock(), transmit.seq, failure),
            }
            continue;
        }
        if limits.stop_when_open && client.phase(at) == Phase::CircuitOpen {
            return Ok(Stop::Unreachable);
        }
        let wait = client.poll_timeout().map(|wake| wake.since(at));
        if let (Some(wait), Some(max)) = (wait, limits.max_wait) {
            if wait > max {
                return Ok(Stop::Later);
            }
        }
        tokio::select! {
            more = outbox.next(), if open => match more {
                Some(ops) => ops.into_iter().for_each(|op| client.enqueue(op)),
                None => open = false,
            },
            () = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {
                client.handle_timeout(clock());
            }
            else => return Ok(Stop::Done),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sync_client::Config;
    use sync_protocol::wire::{OpPayload, VoidPayload};
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

    use super::*;

    fn op(id: &str) -> Op {
        Op {
            op_id: id.to_owned(),
            payload: OpPayload::Void(VoidPayload {
                hold_op_id: format!("hold-{id}"),
                voided_at: "2025-12-02T10:00:00+09:00".to_owned(),
            }),
            seq: None,
        }
    }

    /// Operations from a channel, each arrival followed by a linger, as a terminal in use
    /// queues them; what was taken is held when the loop cuts a linger short.
    struct Lingering {
        rx: UnboundedReceiver<Op>,
        held: Vec<Op>,
        sent: Vec<Vec<String>>,
        settled: BTreeMap<String, usize>,
    }

    impl Outbox for Lingering {
        fn sending(&mut self, transmit: &Transmit) -> anyhow::Result<()> {
            self.sent.push(transmit.op_ids.clone());
            Ok(())
        }

        fn settle(&mut self, settled: Vec<(String, Outcome)>) -> anyhow::Result<()> {
            for (op_id, outcome) in settled {
                assert!(matches!(outcome, Outcome::Accepted { .. }), "{outcome:?}");
                *self.settled.entry(op_id).or_default() += 1;
            }
            Ok(())
        }

        fn arrived(&mut self) -> Vec<Op> {
            let mut ops = std::mem::take(&mut self.held);
            while let Ok(op) = self.rx.try_recv() {
                ops.push(op);
            }
            ops
        }

        async fn next(&mut self) -> Option<Vec<Op>> {
            if self.held.is_empty() {
                let op = self.rx.recv().await?;
                self.held.push(op);
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
            Some(self.arrived())
        }
    }

    /// A server that does not answer the first `failures` requests, then accepts everything.
    struct Flaky {
        failures: usize,
    }

    impl Transport for Flaky {
        async fn send(&mut self, transmit: &Transmit) -> Result<Response, Failure> {
            if self.failures > 0 {
                self.failures -= 1;
                return Err(Failure::Timeout);
            }
            let results: Vec<serde_json::Value> = transmit
                .op_ids
                .iter()
                .map(|id| serde_json::json!({ "op_id": id, "status": "accepted" }))
                .collect();
            Ok(Response {
                status: 200,
                retry_after: None,
                body: serde_json::to_vec(&serde_json::json!({ "results": results }))
                    .unwrap_or_default(),
            })
        }
    }

    async fn feed(tx: UnboundedSender<Op>, count: usize) {
        for i in 0..count {
            let _ = tx.send(op(&format!("op-{i:03}")));
            tokio::time::sleep(Duration::from_millis(7)).await;
        }
    }

    #[tokio::test]
    async fn operations_that_arrive_during_backoff_and_lingers_are_all_settled_once() {
        let config = Config {
            backoff_base: Duration::from_millis(20),
            backoff_cap: Duration::from_millis(80),
            breaker_threshold: 100,
            ..Config::default()
        };
        let mut client = Client::new(config, 7);
        let (tx, rx) = unbounded_channel();
        let mut queue = Lingering {
            rx,
            held: Vec::new(),
            sent: Vec::new(),
            settled: BTreeMap::new(),
        };
        let mut server = Flaky { failures: 4 };
        let limits = Limits {
            max_wait: None,
            stop_when_open: false,
        };
        let feeding = tokio::spawn(feed(tx, 40));
        let stop = push(&mut client, &mut queue, &mut server, limits)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        feeding.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stop, Stop::Done);
        assert_eq!(queue.settled.len(), 40, "{:?}", queue.settled);
        assert!(queue.settled.values().all(|n| *n == 1));
        // Batched: fewer requests than operations, the failed ones included.
        assert!(queue.sent.len() < 40, "{} requests", queue.sent.len());
        assert_eq!(client.unsettled(), 0);
    }

    #[tokio::test]
    async fn a_store_outbox_stops_for_now_when_the_wait_is_longer_than_allowed() {
        struct Store(Vec<String>);
        impl Outbox for Store {
            fn sending(&mut self, _transmit: &Transmit) -> anyhow::Result<()> {
                Ok(())
            }
            fn settle(&mut self, settled: Vec<(String, Outcome)>) -> anyhow::Result<()> {
                self.0.extend(settled.into_iter().map(|(id, _)| id));
                Ok(())
            }
        }
        let config = Config {
            backoff_base: Duration::from_secs(5),
            breaker_threshold: 100,
            ..Config::default()
        };
        let mut client = Client::new(config, 7);
        client.enqueue(op("a"));
        let mut store = Store(Vec::new());
        let mut server = Flaky { failures: 10 };
        // The first failure's backoff may draw a zero wait (full jitter); the loop goes on
        // until one is longer than a millisecond, and none is settled.
        let limits = Limits {
            max_wait: Some(Duration::from_millis(1)),
            stop_when_open: true,
        };
        let stop = push(&mut client, &mut store, &mut server, limits)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(stop, Stop::Later);
        assert!(store.0.is_empty());
        assert_eq!(client.unsettled(), 1);
    }
}
