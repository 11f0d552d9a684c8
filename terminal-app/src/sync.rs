//! The app's background sync: once the terminal's database holds a provisioned identity, a
//! thread pushes the outbox and pulls what changed (`terminal-sync`, the same shell as
//! `palpal sync`) every `sync_interval_s` seconds, and soon after the outbox grows while the
//! server answers. `sync_status` tells the UI whether the server answered the last time,
//! what is waiting, and when the last good sync was.
//!
//! The thread has its own connection to the database file (SQLite in WAL mode lets it write
//! beside the commands' connection), so a command never waits for the network: the commands'
//! store mutex is not taken by the sync at all.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use serde::Serialize;
use terminal_store::Store;
use terminal_sync::Options;

use crate::config::Role;
use crate::error::CommandError;
use crate::terminal::{now_in_seoul, AppState};

/// How often the thread looks at the outbox for new operations.
const TICK: Duration = Duration::from_secs(1);

/// The background sync of one terminal, managed as Tauri state.
pub struct BackgroundSync {
    shared: Arc<Shared>,
}

struct Shared {
    /// The sync's own database connection and settings; `None` when the terminal did not
    /// start (no configuration, no database).
    worker: Mutex<Option<Worker>>,
    live: Mutex<Live>,
    stop: AtomicBool,
    /// Someone asked for a sync now ("send now" on the status bar).
    asked: AtomicBool,
    wake: Condvar,
    interval: Duration,
}

struct Worker {
    database: PathBuf,
    store: Option<Store>,
    fixed_now: Option<DateTime<FixedOffset>>,
    options: Options,
}

#[derive(Debug, Clone, Default)]
struct Live {
    /// Whether the last request got an HTTP answer; `None` before the first try.
    online: Option<bool>,
    /// A sync is running now.
    syncing: bool,
    /// A failure of this terminal itself (its database), Korean then English.
    local_error: Option<String>,
}

impl BackgroundSync {
    /// The background sync for the terminal `state` holds, not yet running (see
    /// [`BackgroundSync::spawn`]); one that never syncs when the terminal did not start.
    pub fn new(state: &AppState) -> BackgroundSync {
        let (worker, interval) = match state.terminal() {
            Ok(t) => (
                Some(Worker {
                    database: t.config.database.clone(),
                    store: None,
                    fixed_now: t.config.fixed_now,
                    options: Options {
                        client: terminal_sync::Config {
                            request_timeout: Duration::from_secs(10),
                            breaker_threshold: 3,
                            ..terminal_sync::Config::default()
                        },
                        max_wait: Duration::from_secs(5),
                        ..Options::default()
                    },
                }),
                Duration::from_secs(t.config.sync_interval_s.max(1)),
            ),
            Err(_) => (None, Duration::from_secs(30)),
        };
        BackgroundSync {
            shared: Arc::new(Shared {
                worker: Mutex::new(worker),
                live: Mutex::new(Live::default()),
                stop: AtomicBool::new(false),
                asked: AtomicBool::new(false),
                wake: Condvar::new(),
                interval,
            }),
        }
    }

    /// Starts the thread: a sync at once, then every interval, and soon after new outbox
    /// operations while the server answers.
    pub fn spawn(&self) {
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("palpal-sync".to_owned())
            .spawn(move || run(&shared));
        if let Err(e) = spawned {
            self.shared.live().local_error = Some(format!(
                "자동 동기화를 시작하지 못했습니다. 앱을 다시 시작하세요. / The background sync \
                 could not start; restart the app. ({e})"
            ));
        }
    }

    /// Syncs now on the calling thread (push, then pull), if the terminal is provisioned.
    /// Returns whether a sync ran.
    pub fn sync_now(&self) -> bool {
        sync_once(&self.shared)
    }

    /// Asks the background thread for a sync at once (a clerk who sees the network come back
    /// presses "send now"), without waiting for it: the status bar shows how it goes.
    pub fn send_soon(&self) {
        self.shared.asked.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
    }

    /// Pushes the outbox now on the calling thread, taking about `within` at the most: the
    /// time to wait for a sync already running (it sends the same outbox) and for the server's
    /// answer, one request and no retry. Returns whether the push ran and the server answered.
    /// A member waiting at the kiosk is told "later" within `within`, never after a minute.
    pub fn push_now(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut guard = loop {
            match self.shared.worker.try_lock() {
                Ok(guard) => break guard,
                Err(TryLockError::Poisoned(poisoned)) => break poisoned.into_inner(),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => return false,
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(worker) = guard.as_mut() else {
            return false;
        };
        if left < Duration::from_millis(200) {
            return false;
        }
        let fixed_now = worker.fixed_now;
        let now = move || now_in_seoul(fixed_now);
        let mut options = worker.options.clone();
        options.client.request_timeout = left;
        options.max_wait = Duration::ZERO;
        let Ok(store) = worker.store() else {
            return false;
        };
        let Ok(Some(identity)) = store.identity() else {
            return false;
        };
        let Ok(central) = terminal_sync::connect(store, &identity, left) else {
            return false;
        };
        let pushed = terminal_sync::push(store, &identity, &central, &options, &now);
        let _ = terminal_sync::remember_address(store, &central);
        let reached = central.reached();
        if reached.is_some() {
            self.shared.live().online = reached;
        }
        pushed.is_ok() && reached == Some(true)
    }

    pub(crate) fn online(&self) -> Option<bool> {
        self.shared.live().online
    }
}

impl Drop for BackgroundSync {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
    }
}

impl Shared {
    fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn worker(&self) -> MutexGuard<'_, Option<Worker>> {
        self.worker.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn run(shared: &Shared) {
    let mut next = Instant::now();
    let mut last_queued: Option<i64> = None;
    while !shared.stop.load(Ordering::SeqCst) {
        let queued = queued(shared);
        let grew = matches!((last_queued, queued), (Some(before), Some(now)) if now > before);
        let answering = shared.live().online != Some(false);
        last_queued = queued;
        let asked = shared.asked.swap(false, Ordering::SeqCst);
        if asked || Instant::now() >= next || (grew && answering) {
            sync_once(shared);
            next = Instant::now() + shared.interval;
        }
        let guard = shared.live();
        let _ = shared
            .wake
            .wait_timeout(guard, TICK)
            .unwrap_or_else(|p| p.into_inner());
    }
}

/// Operations queued, on the sync's own connection (`None` if it cannot be read).
fn queued(shared: &Shared) -> Option<i64> {
    let mut worker = shared.worker();
    let worker = worker.as_mut()?;
    worker.store().ok()?.outbox_queued().ok()
}

impl Worker {
    fn store(&mut self) -> anyhow::Result<&mut Store> {
        if self.store.is_none() {
            self.store = Some(Store::open(&self.database)?);
        }
        self.store
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("the sync's database connection is missing"))
    }
}

fn sync_once(shared: &Shared) -> bool {
    let mut guard = shared.worker();
    let Some(worker) = guard.as_mut() else {
        return false;
    };
    let fixed_now = worker.fixed_now;
    let options = worker.options.clone();
    let now = move || now_in_seoul(fixed_now);
    let store = match worker.store() {
        Ok(store) => store,
        Err(e) => {
            shared.live().local_error = Some(local_error(&e));
            return false;
        }
    };
    let identity = match store.identity() {
        Ok(Some(identity)) => identity,
        Ok(None) => return false,
        Err(e) => {
            shared.live().local_error = Some(local_error(&e));
            return false;
        }
    };
    shared.live().syncing = true;
    let result = terminal_sync::sync(store, &identity, &options, &now);
    let mut live = shared.live();
    live.syncing = false;
    match result {
        Ok(report) => {
            live.local_error = None;
            if report.reached.is_some() {
                live.online = report.reached;
            }
        }
        Err(e) => live.local_error = Some(local_error(&e)),
    }
    true
}

fn local_error(e: &anyhow::Error) -> String {
    format!(
        "단말기 저장소를 읽거나 쓰지 못해 동기화하지 못했습니다. 앱을 다시 시작하고, 계속되면 \
         관리자에게 연락하세요. / The sync could not read or write the terminal's storage; \
         restart the app, and call the administrator if it goes on. ({e:#})"
    )
}

/// What the status bar shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct SyncStatus {
    /// What this terminal is, so the bar can say what waits (sign-ups or transactions).
    pub role: Role,
    /// Whether the terminal is provisioned (has an identity to sync with).
    pub provisioned: bool,
    /// Whether the server answered the last request; `null` before the first try.
    pub online: Option<bool>,
    /// Operations waiting to be sent.
    pub queued: u64,
    /// Operations sent whose answer is not known yet (sent again at the next sync).
    pub in_flight: u64,
    /// Operations the server refused for good, kept for the operator.
    pub rejected: u64,
    /// The end of the last sync that left nothing unsent (RFC 3339).
    pub last_good_sync: Option<String>,
    /// What went wrong in the last sync, Korean then English.
    pub last_error: Option<String>,
    /// When the terminal last stored what it pulled (RFC 3339).
    pub last_pull: Option<String>,
}

/// Whether the server answers, what waits to be sent, and the last good sync.
pub fn sync_status(state: &AppState, sync: &BackgroundSync) -> Result<SyncStatus, CommandError> {
    let lang = state.lang();
    let t = state.terminal()?;
    let store = t.store()?;
    let read = || -> anyhow::Result<SyncStatus> {
        let counts = store.outbox_counts()?;
        let log = store.sync_log()?;
        Ok(SyncStatus {
            role: t.config.role,
            provisioned: store.identity()?.is_some(),
            online: sync.online(),
            queued: counts.queued,
            in_flight: counts.in_flight,
            rejected: counts.rejected,
            last_good_sync: log.last_good_sync,
            last_error: sync.shared.live().local_error.clone().or(log.last_error),
            last_pull: store.last_pull()?.map(|t| t.to_rfc3339()),
        })
    };
    read().map_err(|e| CommandError::storage(lang, &e))
}

/// "Send now" on the status bar: asks the background sync for a sync at once and answers
/// without waiting for it (the bar shows how it goes).
pub fn send_now(state: &AppState, sync: &BackgroundSync) -> Result<(), CommandError> {
    state.terminal()?;
    sync.send_soon();
    Ok(())
}
