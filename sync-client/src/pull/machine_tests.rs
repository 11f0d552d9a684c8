//! The pull state machine, driven by scripts with time as an input, around one `check`
//! function; and its waits held to the push client's.

use std::fmt::Write as _;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::{backoff_ceiling, Client, Op};

fn page_body(cursor: &str, more: bool) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "cursor": cursor,
        "more": more,
        "revoked_members": [format!("PP-{cursor}")],
    }))
    .unwrap()
}

/// A page whose balance is not credited minus spent.
const BAD_PAGE: &str = r#"{"cursor":"1.ab.9","more":true,
    "balances":[{"member_number":"PP-00000001","credited":100,"spent":0,"balance":5000}]}"#;

fn kind(error: &PullError) -> String {
    match error {
        PullError::Unreachable { failure } => format!("unreachable {failure:?}"),
        PullError::RetryLater {
            status,
            retry_after,
        } => format!("retry later {status} {retry_after:?}"),
        PullError::Refused { code, .. } => format!("refused {code}"),
        PullError::Malformed { reason } => format!("malformed: {reason}"),
    }
}

/// Runs a script against a pull with small bounds and returns the transcript.
///
/// Steps, one a line: `poll MS`, `page MS SEQ CURSOR more|last`, `bad MS SEQ`,
/// `answer MS SEQ STATUS CODE [RETRY_AFTER]`, `fail MS SEQ`, `timeout MS`, `stored`,
/// `refuse REASON`, `wake`, `phase MS`, `cursor`.
fn run(config: Config, bounds: PullBounds, script: &str) -> String {
    let mut pull = Pull::new(config, bounds, None, 7);
    let mut out = String::new();
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let ms = |i: usize| Time::from_millis(words[i].parse().unwrap());
        let seq = |i: usize| words[i].parse::<u64>().unwrap();
        match words[0] {
            "poll" => match pull.poll_transmit(ms(1)) {
                Some(t) => writeln!(
                    out,
                    "ask #{} from {} limit {}",
                    t.seq,
                    t.cursor.as_deref().unwrap_or("the start"),
                    t.limit
                )
                .unwrap(),
                None => writeln!(out, "nothing ({:?})", pull.phase(ms(1))).unwrap(),
            },
            "page" => pull.handle_response(
                ms(1),
                seq(2),
                Response {
                    status: 200,
                    retry_after: None,
                    body: page_body(words[3], words[4] == "more"),
                },
            ),
            "bad" => pull.handle_response(
                ms(1),
                seq(2),
                Response {
                    status: 200,
                    retry_after: None,
                    body: BAD_PAGE.as_bytes().to_vec(),
                },
            ),
            "answer" => pull.handle_response(
                ms(1),
                seq(2),
                Response {
                    status: words[3].parse().unwrap(),
                    retry_after: words.get(5).map(|s| (*s).to_owned()),
                    body: serde_json::to_vec(&json!({"code": words[4], "message": "메시지",
                                                     "message_en": "message"}))
                    .unwrap(),
                },
            ),
            "fail" => pull.handle_failure(ms(1), seq(2), Failure::Connect),
            "timeout" => pull.handle_timeout(ms(1)),
            "stored" => pull.page_stored(),
            "refuse" => pull.refuse_page(words[1..].join(" ")),
            "wake" => writeln!(out, "wake {:?}", pull.poll_timeout().map(Time::as_millis)).unwrap(),
            "phase" => writeln!(out, "{:?}", pull.phase(ms(1))).unwrap(),
            "cursor" => writeln!(out, "cursor {:?}", pull.cursor()).unwrap(),
            other => panic!("unknown step {other}"),
        }
        while let Some(event) = pull.poll_event() {
            match event {
                PullEvent::Page(page) => writeln!(
                    out,
                    "  store {} more={} revoked={:?}",
                    page.cursor, page.more, page.revoked_members
                )
                .unwrap(),
                PullEvent::Stopped(stop) => {
                    let why = stop.error().map(kind).unwrap_or_default();
                    let stop = match stop {
                        PullStop::Done => "done".to_owned(),
                        PullStop::MaxPages => "max pages".to_owned(),
                        PullStop::Failed(_) => "failed".to_owned(),
                        PullStop::CircuitOpen { until, .. } => {
                            format!("circuit open until {}", until.as_millis())
                        }
                        PullStop::WaitTooLong { until, .. } => {
                            format!("wait too long, until {}", until.as_millis())
                        }
                    };
                    writeln!(out, "  stopped: {stop} {why}").unwrap();
                }
            }
        }
    }
    out
}

/// The push tests' small configuration: with seed 7, the jitter after the first three
/// failures in a row is 27, 18 and 382 ms.
fn small() -> Config {
    Config {
        request_timeout: Duration::from_millis(1000),
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_millis(400),
        breaker_threshold: 3,
        breaker_cooldown: Duration::from_millis(5000),
        max_retry_after: Duration::from_secs(2),
        ..Config::default()
    }
}

fn bounds() -> PullBounds {
    PullBounds {
        limit: 2,
        max_pages: 3,
        max_wait: Duration::from_secs(3),
    }
}

#[track_caller]
fn check_with(config: Config, bounds: PullBounds, script: &str, expect: &str) {
    crate::tests::assert_lines_eq(&run(config, bounds, script), expect);
}

#[track_caller]
fn check(script: &str, expect: &str) {
    check_with(small(), bounds(), script, expect);
}

#[test]
fn pages_are_pulled_one_after_the_other_until_there_are_no_more() {
    check(
        "poll 0
         poll 0
         page 10 1 c1 more
         poll 10
         stored
         cursor
         poll 10
         page 20 2 c2 last
         stored
         poll 20
         wake
         cursor",
        "ask #1 from the start limit 2
         nothing (InFlight)
           store c1 more=true revoked=[\"PP-c1\"]
         nothing (Storing)
         cursor Some(\"c1\")
         ask #2 from c1 limit 2
           store c2 more=false revoked=[\"PP-c2\"]
           stopped: done
         nothing (Stopped)
         wake None
         cursor Some(\"c2\")",
    );
}

#[test]
fn a_pull_resumes_from_the_stored_cursor_and_asks_within_the_servers_limit() {
    let bounds = PullBounds {
        limit: 5000,
        ..bounds()
    };
    let mut pull = Pull::new(small(), bounds, Some("1.ab.3".to_owned()), 1);
    let t = pull.poll_transmit(Time::default()).unwrap();
    assert_eq!((t.cursor.as_deref(), t.limit), (Some("1.ab.3"), 1000));
    assert_eq!(
        t.body(Some(7), None),
        br#"{"cursor":"1.ab.3","limit":1000,"sequence":7}"#
    );
}

#[test]
fn no_answer_is_retried_after_the_backoff_from_the_same_cursor() {
    check(
        "poll 0
         page 0 1 c1 more
         stored
         poll 0
         fail 0 2
         phase 0
         wake
         poll 26
         poll 27
         page 30 3 c2 last
         stored",
        "ask #1 from the start limit 2
           store c1 more=true revoked=[\"PP-c1\"]
         ask #2 from c1 limit 2
         BackingOff
         wake Some(27)
         nothing (BackingOff)
         ask #3 from c1 limit 2
           store c2 more=false revoked=[\"PP-c2\"]
           stopped: done",
    );
}

#[test]
fn a_request_given_up_is_asked_again_and_its_late_answer_is_ignored() {
    check(
        "poll 0
         wake
         timeout 999
         phase 999
         timeout 1000
         wake
         poll 1027
         page 1030 1 late more
         page 1040 2 c1 last",
        "ask #1 from the start limit 2
         wake Some(1000)
         InFlight
         wake Some(1027)
         ask #2 from the start limit 2
           store c1 more=false revoked=[\"PP-c1\"]",
    );
}

#[test]
fn retry_after_is_a_floor_cut_to_the_configured_longest() {
    // Retry-After 1 s, plus the jitter.
    check(
        "poll 0
         answer 0 1 503 unavailable 1
         wake
         poll 1026
         poll 1027",
        "ask #1 from the start limit 2
         wake Some(1027)
         nothing (BackingOff)
         ask #2 from the start limit 2",
    );
    // An hour is cut to the configured 2 s, within the caller's 3 s.
    check(
        "poll 0
         answer 0 1 429 overloaded 3600
         wake",
        "ask #1 from the start limit 2
         wake Some(2027)",
    );
    // Believed up to 10 s, an hour is cut to 10 s: longer than the caller waits.
    check_with(
        Config {
            max_retry_after: Duration::from_secs(10),
            ..small()
        },
        bounds(),
        "poll 0
         answer 0 1 429 overloaded 3600
         poll 100000
         wake",
        "ask #1 from the start limit 2
           stopped: wait too long, until 10027 retry later 429 Some(3600s)
         nothing (Stopped)
         wake None",
    );
}

#[test]
fn a_malformed_page_stops_the_pull_at_once_and_is_never_handed_over() {
    check(
        "poll 0
         page 0 1 c1 more
         stored
         poll 0
         bad 0 2
         poll 10000
         wake
         cursor",
        "ask #1 from the start limit 2
           store c1 more=true revoked=[\"PP-c1\"]
         ask #2 from c1 limit 2
           stopped: failed malformed: the balance of PP-00000001 is not credited minus spent
         nothing (Stopped)
         wake None
         cursor Some(\"c1\")",
    );
}

#[test]
fn a_page_the_shell_refuses_stops_the_pull_and_keeps_the_cursor() {
    check(
        "poll 0
         page 0 1 c1 more
         refuse the policy broken does not read
         stored
         poll 0
         cursor",
        "ask #1 from the start limit 2
           store c1 more=true revoked=[\"PP-c1\"]
           stopped: failed malformed: the policy broken does not read
         nothing (Stopped)
         cursor None",
    );
}

#[test]
fn a_refusal_stops_the_pull_at_once() {
    check(
        "poll 0
         answer 0 1 403 revoked_terminal
         poll 10000",
        "ask #1 from the start limit 2
           stopped: failed refused revoked_terminal
         nothing (Stopped)",
    );
}

#[test]
fn the_circuit_opens_after_consecutive_failures_and_stops_the_pull() {
    check(
        "poll 0
         fail 0 1
         wake
         poll 1000
         answer 1000 2 503 unavailable
         wake
         poll 2000
         fail 2000 3
         poll 100000
         wake",
        "ask #1 from the start limit 2
         wake Some(27)
         ask #2 from the start limit 2
         wake Some(1018)
         ask #3 from the start limit 2
           stopped: circuit open until 7382 unreachable Connect
         nothing (Stopped)
         wake None",
    );
}

#[test]
fn a_page_forgets_the_failures_before_it() {
    check(
        "poll 0
         fail 0 1
         poll 100
         fail 100 2
         poll 1000
         page 1000 3 c1 more
         stored
         poll 1000
         fail 1000 4
         poll 2000
         fail 2000 5
         phase 2000",
        "ask #1 from the start limit 2
         ask #2 from the start limit 2
         ask #3 from the start limit 2
           store c1 more=true revoked=[\"PP-c1\"]
         ask #4 from c1 limit 2
         ask #5 from c1 limit 2
         BackingOff",
    );
}

#[test]
fn a_pull_stores_at_most_max_pages() {
    check(
        "poll 0
         page 0 1 c1 more
         stored
         poll 0
         page 0 2 c2 more
         stored
         poll 0
         page 0 3 c3 more
         stored
         poll 0",
        "ask #1 from the start limit 2
           store c1 more=true revoked=[\"PP-c1\"]
         ask #2 from c1 limit 2
           store c2 more=true revoked=[\"PP-c2\"]
         ask #3 from c2 limit 2
           store c3 more=true revoked=[\"PP-c3\"]
           stopped: max pages
         nothing (Stopped)",
    );
    check_with(
        small(),
        PullBounds {
            max_pages: 0,
            ..bounds()
        },
        "poll 0",
        "nothing (Stopped)
           stopped: max pages",
    );
}

fn busy(retry_after: Option<u64>) -> Response {
    Response {
        status: 429,
        retry_after: retry_after.map(|s| s.to_string()),
        body: br#"{"code":"overloaded"}"#.to_vec(),
    }
}

/// A push client with one operation queued.
fn push_client(config: Config, seed: u64) -> Client {
    let mut client = Client::new(config, seed);
    client.enqueue(Op {
        op_id: "a".to_owned(),
        payload: sync_protocol::wire::OpPayload::Void(sync_protocol::wire::VoidPayload {
            hold_op_id: "h".to_owned(),
            voided_at: "2025-12-02T10:00:00+09:00".to_owned(),
        }),
        seq: None,
    });
    client
}

proptest! {
    /// A wait longer than the caller's `max_wait` (the wait the push client would take after
    /// the same failure, with the same seed) stops the pull for now; a shorter one is waited.
    #[test]
    fn a_wait_longer_than_the_caller_accepts_stops_the_pull(
        seed in any::<u64>(),
        retry_after in proptest::option::of(0u64..8),
        max_wait_ms in 0u64..10_000,
    ) {
        let config = Config {
            backoff_base: Duration::from_secs(4),
            backoff_cap: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(5),
            ..small()
        };
        let bounds = PullBounds { max_wait: Duration::from_millis(max_wait_ms), ..bounds() };
        let mut pull = Pull::new(config.clone(), bounds, None, seed);
        let mut client = push_client(config, seed);
        let now = Time::from_millis(500);
        let asked = pull.poll_transmit(now).expect("a page is due");
        let sent = client.poll_transmit(now).expect("a request is due");
        pull.handle_response(now, asked.seq, busy(retry_after));
        client.handle_response(now, sent.seq, busy(retry_after));
        let wake = client.poll_timeout().expect("the push client waits");
        if wake.since(now) > bounds.max_wait {
            let stopped = pull.stopped().cloned();
            let expect = PullStop::WaitTooLong {
                error: PullError::RetryLater {
                    status: 429,
                    retry_after: retry_after.map(Duration::from_secs),
                },
                until: wake,
            };
            prop_assert_eq!(stopped, Some(expect));
            prop_assert_eq!(pull.poll_timeout(), None);
        } else {
            prop_assert_eq!(pull.stopped(), None);
            prop_assert_eq!(pull.poll_timeout(), Some(wake));
            prop_assert!(pull.poll_transmit(wake).is_some());
        }
    }

    /// The pull waits exactly as the push client does: after the same failures, with the same
    /// seed, both wake at the same time, within [Retry-After, Retry-After + ceiling(k)].
    #[test]
    fn the_pull_backs_off_as_the_push_client_does(
        seed in any::<u64>(),
        retry_after in proptest::option::of(0u64..120),
        failures in 1u32..10,
    ) {
        let config = Config { breaker_threshold: 100, ..Config::default() };
        let bounds = PullBounds { max_wait: Duration::from_secs(3600), ..PullBounds::default() };
        let mut pull = Pull::new(config.clone(), bounds, None, seed);
        let mut client = push_client(config.clone(), seed);
        let mut now = Time::from_millis(1_000);
        for k in 1..=failures {
            let asked = pull.poll_transmit(now).expect("a page is due");
            let sent = client.poll_transmit(now).expect("a request is due");
            pull.handle_response(now, asked.seq, busy(retry_after));
            client.handle_response(now, sent.seq, busy(retry_after));
            let wake = pull.poll_timeout().expect("a wake-up");
            prop_assert_eq!(Some(wake), client.poll_timeout());
            let wait = wake.since(now);
            let floor = Duration::from_secs(retry_after.unwrap_or(0));
            prop_assert!(wait >= floor);
            prop_assert!(wait <= floor + backoff_ceiling(&config, k), "{wait:?} after {k}");
            if wake > now {
                prop_assert!(pull.poll_transmit(Time::from_millis(wake.as_millis() - 1)).is_none());
            }
            now = wake;
        }
    }
}
