//! The real btleplug link against `watch-sim`, a fake BlueZ on a private D-Bus bus.
//!
//! Each test starts its own `dbus-daemon` (Debian package `dbus`) and the `watch-sim` binary,
//! which must be built first: `cargo build -p watch-sim` (or `cargo build --workspace --bins`,
//! as `make test` does). Both run in their own process group and are stopped when the test
//! ends, however it ends.
//!
//! libdbus reads `DBUS_SYSTEM_BUS_ADDRESS` once per process, so every test's bus listens on the
//! same socket path and the tests take turns (a lock), each with a fresh daemon.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::{Mutex, MutexGuard};
use watch_link::{LinkError, LinkOptions, NearbyWatch, WatchLink};
use watch_protocol::{
    fixed_width_len, HistoryRecord, SequencedRecord, WatchCertificate, MIN_MTU_SIGNED,
};

static TURN: Mutex<()> = Mutex::const_new(());
static BUS_DIR: OnceLock<PathBuf> = OnceLock::new();

const SCAN: Duration = Duration::from_millis(200);

/// The socket directory of this test process; sets `DBUS_SYSTEM_BUS_ADDRESS` once, before
/// any D-Bus connection is made.
fn bus_dir() -> &'static Path {
    BUS_DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("palpal-ble-{}", std::process::id()));
        std::env::set_var(
            "DBUS_SYSTEM_BUS_ADDRESS",
            format!("unix:path={}", dir.join("bus").display()),
        );
        dir
    })
}

/// A child process in its own process group, stopped on drop.
struct Daemon {
    child: Child,
    _stdout: Option<BufReader<std::process::ChildStdout>>,
}

impl Daemon {
    /// Starts `command` and waits for its first line on stdout that contains `ready`.
    fn start(mut command: Command, what: &str, ready: &str) -> (Daemon, String) {
        command.stdout(Stdio::piped()).process_group(0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut daemon = Daemon {
            child,
            _stdout: None,
        };
        let mut line = String::new();
        loop {
            line.clear();
            let n = out.read_line(&mut line).unwrap();
            assert!(n > 0, "{what} exited before it was ready");
            if line.contains(ready) {
                break;
            }
        }
        daemon._stdout = Some(out);
        (daemon, line.trim().to_owned())
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let group = Pid::from_raw(self.child.id() as i32);
        if killpg(group, Signal::SIGTERM).is_ok() {
            for _ in 0..100 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private bus with the simulator on it, for one test.
struct Bench {
    sim: Daemon,
    bus: Daemon,
    address: String,
    _turn: MutexGuard<'static, ()>,
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.sim.stop();
        self.bus.stop();
        let _ = std::fs::remove_dir_all(bus_dir());
    }
}

fn sim_binary() -> PathBuf {
    // <target>/debug/deps/ble-<hash> → <target>/debug/watch-sim
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("watch-sim");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p watch-sim` \
         (`make test` runs `cargo build --workspace --bins`)",
        bin.display()
    );
    bin
}

impl Bench {
    async fn start(config: &str) -> Bench {
        let turn = TURN.lock().await;
        let dir = bus_dir();
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("bus");
        let bus_conf = dir.join("bus.conf");
        std::fs::write(
            &bus_conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let mut command = Command::new("dbus-daemon");
        // As root in a container it complains it cannot raise its fd limit: harmless.
        command.stderr(Stdio::null()).args([
            "--nofork",
            "--print-address=1",
            &format!("--config-file={}", bus_conf.display()),
        ]);
        let (bus, _) = Daemon::start(command, "dbus-daemon (Debian package `dbus`)", "unix:path=");
        let address = format!("unix:path={}", socket.display());

        let sim_conf = dir.join("sim.toml");
        std::fs::write(&sim_conf, config).unwrap();
        let mut command = Command::new(sim_binary());
        command.args([
            "--bus",
            &address,
            "--config",
            sim_conf.to_str().unwrap(),
            "--today",
            "2025-12-01",
        ]);
        let (sim, _) = Daemon::start(command, "watch-sim", "watch-sim ready");
        Bench {
            sim,
            bus,
            address,
            _turn: turn,
        }
    }

    async fn link(&self) -> WatchLink {
        WatchLink::open_with(options()).await.unwrap()
    }

    /// A figure the simulator keeps about a watch (`org.palpal.Simulator1`).
    async fn figure<T>(&self, watch: &NearbyWatch, name: &str) -> T
    where
        T: TryFrom<zbus::zvariant::OwnedValue>,
        T::Error: Into<zbus::Error>,
    {
        let conn = zbus::connection::Builder::address(self.address.as_str())
            .unwrap()
            .build()
            .await
            .unwrap();
        let path = format!("/org/bluez/hci0/dev_{}", watch.address.replace(':', "_"));
        let proxy = zbus::Proxy::new(&conn, "org.bluez", path, "org.palpal.Simulator1")
            .await
            .unwrap();
        proxy.get_property(name).await.unwrap()
    }
}

fn options() -> LinkOptions {
    LinkOptions {
        connect_timeout: Duration::from_secs(5),
        connect_attempts: 3,
        retry_pause: Duration::from_millis(20),
        idle_timeout: Duration::from_millis(700),
        transfer_attempts: 4,
        ..LinkOptions::default()
    }
}

/// One watch `PW-0001` with 30 days of history, the given extra lines under `[[watch]]`.
fn one_watch(mtu: u16, extra: &str) -> String {
    format!("mtu = {mtu}\n[[watch]]\nserial = \"PW-0001\"\nuntil = \"2025-12-01\"\n{extra}\n")
}

/// Checks that `records` are exactly `from..to`, each once, in order.
fn assert_dense(records: &[SequencedRecord], from: u32, to: u32) {
    let seqs: Vec<u32> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (from..to).collect::<Vec<_>>());
}

const DAY_RECORDS: u32 = 49; // 24 hour steps, 24 heart-rate samples, the day's total

async fn connect_only_watch(link: &WatchLink) -> (NearbyWatch, watch_link::ConnectedWatch) {
    let watch = link.find("0001", SCAN).await.unwrap();
    let connected = link.connect(&watch).await.unwrap();
    (watch, connected)
}

#[tokio::test]
async fn scan_lists_palpal_watches_nearest_first() {
    let bench = Bench::start(
        r#"
bystanders = 2
[[watch]]
serial = "PW-0007"
rssi = -72
[[watch]]
serial = "PW-0042"
rssi = -41
[[watch]]
serial = "PW-0100"
rssi = -58
"#,
    )
    .await;
    let link = bench.link().await;
    let watches = link.scan(SCAN).await.unwrap();
    let seen: Vec<(&str, Option<i16>)> = watches
        .iter()
        .map(|w| (w.short_code.as_str(), w.rssi))
        .collect();
    assert_eq!(
        seen,
        [
            ("0042", Some(-41)),
            ("0100", Some(-58)),
            ("0007", Some(-72))
        ]
    );
    assert_eq!(watches[0].name, "Palpal-0042");
}

#[tokio::test]
async fn a_powered_off_adapter_is_powered_on_to_scan() {
    let bench = Bench::start("[adapter]\npowered = false\n[[watch]]\nserial = \"PW-0001\"\n").await;
    let link = bench.link().await;
    assert_eq!(link.scan(SCAN).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_blocked_adapter_is_reported_off() {
    let bench = Bench::start("[adapter]\nblocked = true\n[[watch]]\nserial = \"PW-0001\"\n").await;
    let link = bench.link().await;
    let error = link.scan(SCAN).await.unwrap_err();
    assert_eq!(error, LinkError::AdapterOff);
    assert!(error.ko().contains("블루투스가 꺼져 있습니다"));
}

#[tokio::test]
async fn no_adapter_is_reported() {
    let _bench = Bench::start("[adapter]\npresent = false\n").await;
    let error = WatchLink::open_with(options()).await.unwrap_err();
    assert_eq!(error.code(), "no_adapter");
}

#[tokio::test]
async fn a_silent_watch_is_not_found() {
    let bench = Bench::start(&one_watch(247, "[watch.faults]\nsilent = true")).await;
    let link = bench.link().await;
    let error = link.find("0001", SCAN).await.unwrap_err();
    assert_eq!(
        error,
        LinkError::WatchNotFound {
            wanted: "0001".into()
        }
    );
}

#[tokio::test]
async fn an_unreachable_watch_is_out_of_range_after_retries() {
    let bench = Bench::start(&one_watch(247, "[watch.faults]\nout_of_range = true")).await;
    let link = bench.link().await;
    let watch = link.find("0001", SCAN).await.unwrap();
    assert_eq!(watch.rssi, Some(-99));
    let error = link.connect(&watch).await.unwrap_err();
    assert_eq!(
        error,
        LinkError::WatchOutOfRange {
            watch: "Palpal-0001".into(),
            attempts: 3
        }
    );
    assert_eq!(bench.figure::<u32>(&watch, "ConnectAttempts").await, 3);
}

#[tokio::test]
async fn connecting_retries_after_failed_attempts() {
    let bench = Bench::start(&one_watch(247, "[watch.faults]\nconnect_failures = 2")).await;
    let link = bench.link().await;
    let (watch, connected) = connect_only_watch(&link).await;
    assert_eq!(bench.figure::<u32>(&watch, "ConnectAttempts").await, 3);
    connected.disconnect().await.unwrap();
}

#[tokio::test]
async fn connect_reads_device_information_and_sets_the_time() {
    let bench = Bench::start(&one_watch(247, "battery = 64\nclock_drift_seconds = 30")).await;
    let link = bench.link().await;
    let (watch, connected) = connect_only_watch(&link).await;
    let info = connected.device_information().await.unwrap();
    assert_eq!(
        (
            info.serial.as_str(),
            info.model.as_str(),
            info.firmware.as_str()
        ),
        ("PW-0001", "Palpal Watch 1", "1.4.2")
    );
    assert_eq!((info.battery_percent, info.warning), (64, None));
    // The Watch Certificate, over BlueZ: the program's authority certified this watch's key.
    let certificate = WatchCertificate::decode(&info.certificate.expect("a certificate")).unwrap();
    assert_eq!(certificate.serial, "PW-0001");
    certificate
        .verify(&[watch_protocol::WatchCa::demo().public_key()])
        .unwrap();

    let sync = connected.set_time(Utc::now()).await.unwrap();
    // 30 s ahead is within the tolerance: reported, not warned about.
    assert!((sync.offset_before - TimeDelta::seconds(30)).abs() < TimeDelta::seconds(10));
    assert_eq!(sync.warning, None);
    let after = connected.clock_offset(Utc::now()).await.unwrap();
    assert!(after.abs() < TimeDelta::seconds(10), "{after}");
    assert!(
        bench
            .figure::<i64>(&watch, "ClockOffsetSeconds")
            .await
            .abs()
            < 10
    );
    connected.disconnect().await.unwrap();
}

#[tokio::test]
async fn clock_drift_is_reported_and_corrected() {
    let bench = Bench::start(&one_watch(247, "clock_drift_seconds = -7500")).await;
    let link = bench.link().await;
    let (_, connected) = connect_only_watch(&link).await;
    let sync = connected.set_time(Utc::now()).await.unwrap();
    let Some(LinkError::ClockFarOff { offset_seconds }) = sync.warning else {
        panic!("no clock warning: {sync:?}");
    };
    assert!((offset_seconds + 7500).abs() < 10, "{offset_seconds}");
    let warning = sync.warning.unwrap();
    assert!(
        warning.ko().contains("2시간 5분 느립니다"),
        "{}",
        warning.ko()
    );
    let after = connected.clock_offset(Utc::now()).await.unwrap();
    assert!(after.abs() < TimeDelta::seconds(10), "{after}");
}

#[tokio::test]
async fn low_battery_is_reported() {
    let bench = Bench::start(&one_watch(247, "battery = 8")).await;
    let link = bench.link().await;
    let (_, connected) = connect_only_watch(&link).await;
    let info = connected.device_information().await.unwrap();
    assert_eq!(info.warning, Some(LinkError::LowBattery { percent: 8 }));
}

async fn fetch_all(
    connected: &mut watch_link::ConnectedWatch,
    from: u32,
) -> (
    Vec<SequencedRecord>,
    Result<watch_link::FetchReport, LinkError>,
) {
    let mut records = Vec::new();
    let report = connected
        .fetch_history(from, |batch| records.extend_from_slice(batch))
        .await;
    (records, report)
}

/// Fetches 30 days at `mtu` and prints the figures.
async fn fetch_30_days(mtu: u16) {
    let bench = Bench::start(&one_watch(mtu, "")).await;
    let link = bench.link().await;
    let (_, mut connected) = connect_only_watch(&link).await;
    let started = Instant::now();
    let (records, report) = fetch_all(&mut connected, 0).await;
    let elapsed = started.elapsed();
    let report = report.unwrap();
    let total = 30 * DAY_RECORDS;
    assert_dense(&records, 0, total);
    assert_eq!(report.next_seq, total);
    assert!(
        report.interruptions.is_empty(),
        "{:?}",
        report.interruptions
    );

    // Every day's total arrives with the watch's signature, which checks out under the
    // certificate the watch presents.
    let info = connected.device_information().await.unwrap();
    let certificate = WatchCertificate::decode(&info.certificate.unwrap()).unwrap();
    let mut signed = 0;
    for r in &records {
        if let HistoryRecord::DaySteps { date, steps, proof } = &r.record {
            let proof = proof.expect("a signed day");
            certificate
                .verify_day(&info.serial, *date, *steps, &proof)
                .unwrap();
            signed += 1;
        }
    }
    assert_eq!(signed, 30);
    let minimum: usize = records.iter().map(|r| fixed_width_len(&r.record)).sum();
    println!(
        "figure: MTU {mtu}: 30 days of hourly history ({total} records, {} notifications) \
         fetched in {:.0} ms; {} ATT bytes per day over the link, payload minimum {} \
         (ratio {:.2})",
        report.notifications,
        elapsed.as_secs_f64() * 1000.0,
        report.link_bytes / 30,
        minimum / 30,
        report.link_bytes as f64 / minimum as f64,
    );

    // Incremental: nothing new, then only the tail.
    let (again, report) = fetch_all(&mut connected, total).await;
    assert!(again.is_empty());
    assert_eq!(report.unwrap().next_seq, total);
    let (tail, report) = fetch_all(&mut connected, total - 49).await;
    assert_dense(&tail, total - 49, total);
    assert_eq!(report.unwrap().records, 49);
    connected.disconnect().await.unwrap();
}

#[tokio::test]
async fn fetches_30_days_of_hourly_history_incrementally() {
    fetch_30_days(247).await;
}

#[tokio::test]
async fn fetches_30_days_at_the_minimum_mtu() {
    // The smallest MTU a signed day record fits (at BLE's 23 a signing watch does not start).
    fetch_30_days(MIN_MTU_SIGNED).await;
}

#[tokio::test]
async fn a_transfer_cut_by_a_disconnect_resumes_without_resending() {
    let bench = Bench::start(&one_watch(247, "[watch.faults]\ndisconnect = { at = 10 }")).await;
    let link = bench.link().await;
    let (watch, mut connected) = connect_only_watch(&link).await;
    let (records, report) = fetch_all(&mut connected, 0).await;
    let report = report.unwrap();
    assert_dense(&records, 0, 30 * DAY_RECORDS);
    assert_eq!(report.reconnects, 1);
    assert_eq!(report.interruptions.len(), 1);
    assert_eq!(report.interruptions[0].code(), "transfer_interrupted");

    let sent: Vec<(u32, u32, u8)> = bench.figure(&watch, "Sent").await;
    let requests: Vec<u32> = bench.figure(&watch, "Requests").await;
    // The watch sent 10 notifications, then the link dropped; the resumed request asked for
    // the first record after them, and no record went over the air twice.
    assert_eq!(requests, [0, sent[9].1 + 1]);
    assert_eq!(report.resumed_from, [sent[9].1 + 1]);
    let on_air: u32 = sent.iter().map(|(a, b, _)| b - a + 1).sum();
    assert_eq!(on_air, 30 * DAY_RECORDS);
    assert!(sent.iter().all(|s| s.2 == 0));
    assert_eq!(report.duplicates, 0);
}

#[tokio::test]
async fn dropped_and_slow_notifications_are_fetched_again() {
    let bench = Bench::start(&one_watch(
        247,
        "[watch.faults]\ndrop = { at = 5 }\nnotification_delay_ms = 15",
    ))
    .await;
    let link = bench.link().await;
    let (watch, mut connected) = connect_only_watch(&link).await;
    let (records, report) = fetch_all(&mut connected, 0).await;
    let report = report.unwrap();
    assert_dense(&records, 0, 30 * DAY_RECORDS);
    assert_eq!(report.interruptions.len(), 1, "{:?}", report.interruptions);
    let sent: Vec<(u32, u32, u8)> = bench.figure(&watch, "Sent").await;
    let requests: Vec<u32> = bench.figure(&watch, "Requests").await;
    let dropped = sent.iter().find(|s| s.2 == 2).unwrap();
    // Aborted and resumed on the same connection, from the first record lost.
    assert_eq!(report.reconnects, 0);
    assert_eq!(requests, [0, dropped.0]);
    assert_eq!(
        report.interruptions[0],
        LinkError::TransferInterrupted {
            resume_from: dropped.0,
            reason: format!(
                "history stream expected sequence {}, got {}",
                dropped.0,
                dropped.1 + 1
            )
        }
    );
}

#[tokio::test]
async fn a_stalled_stream_is_aborted_and_resumed() {
    let bench = Bench::start(&one_watch(247, "[watch.faults]\nstall = { at = 4 }")).await;
    let link = bench.link().await;
    let (watch, mut connected) = connect_only_watch(&link).await;
    let (records, report) = fetch_all(&mut connected, 0).await;
    let report = report.unwrap();
    assert_dense(&records, 0, 30 * DAY_RECORDS);
    let sent: Vec<(u32, u32, u8)> = bench.figure(&watch, "Sent").await;
    let requests: Vec<u32> = bench.figure(&watch, "Requests").await;
    assert_eq!(requests, [0, sent[3].1 + 1]);
    assert_eq!(report.interruptions[0].code(), "transfer_interrupted");
}

#[tokio::test]
async fn a_corrupt_record_is_detected_and_fetched_again() {
    let bench = Bench::start(&one_watch(247, "[watch.faults]\ncorrupt = { at = 3 }")).await;
    let link = bench.link().await;
    let (watch, mut connected) = connect_only_watch(&link).await;
    let (records, report) = fetch_all(&mut connected, 0).await;
    let report = report.unwrap();
    assert_dense(&records, 0, 30 * DAY_RECORDS);
    let sent: Vec<(u32, u32, u8)> = bench.figure(&watch, "Sent").await;
    let corrupted = sent.iter().find(|s| s.2 == 1).unwrap();
    assert_eq!(
        report.interruptions,
        [LinkError::CorruptRecord {
            resume_from: corrupted.0
        }]
    );
    let requests: Vec<u32> = bench.figure(&watch, "Requests").await;
    assert_eq!(requests, [0, corrupted.0]);
}

#[tokio::test]
async fn a_watch_that_keeps_corrupting_gives_up_where_to_resume() {
    let bench = Bench::start(&one_watch(
        247,
        "[watch.faults]\ncorrupt = { at = 2, times = 100 }",
    ))
    .await;
    let link = bench.link().await;
    let (_, mut connected) = connect_only_watch(&link).await;
    let (records, report) = fetch_all(&mut connected, 0).await;
    let error = report.unwrap_err();
    let LinkError::CorruptRecord { resume_from } = error else {
        panic!("{error:?}");
    };
    // Every answer is corrupt at its third notification: the first two of each answer are
    // kept, and what was handed over ends where the next sync resumes.
    assert_dense(&records, 0, resume_from);
    assert!(resume_from > 0);
    assert!(error.ko().contains(&format!("{resume_from}번 기록부터")));
}
