//! The real `palpal-central` processes: their database prepared before the day (terminals
//! enrolled, the schedule and quota leases set, a redemption key published, the existing
//! members and their points of the day before), started over TLS with a certificate made for
//! 127.0.0.1 (one process, or several on one PostgreSQL database), killed with SIGKILL for the
//! outage, restarted on the same port with the same certificate, and watched from `/proc` for
//! memory.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use chrono::{DateTime, NaiveDate, Utc};
use ed25519_dalek::SigningKey;
use kiosk_core::admission::DayRule;
use palpal_central::store::{self, Store, Write, WriteReply};
use points_core::PolicySet;
use sync_protocol::server_key::ServerKey;
use sync_protocol::wire::{
    EnrollmentPayload, OpPayload, OpStatus, Operation, Role, StepReportPayload, WatchPairingPayload,
};

use crate::database::Target;
use crate::day::{self, Day, Person};
use crate::watches::Watches;

/// A terminal as the replay drives it: its label and key.
#[derive(Clone)]
pub struct Term {
    /// `T-000001`.
    pub label: String,
    /// Its Ed25519 key, registered with the server.
    pub key: Arc<SigningKey>,
    /// Its place among all the day's terminals: with several server processes, terminals
    /// start at different ones (`home` modulo their count), as a city's would be spread.
    pub home: usize,
}

/// What the database holds before the day starts.
pub struct Prepared {
    /// One per kiosk, in the day's order.
    pub kiosks: Vec<Term>,
    /// One per counter.
    pub counters: Vec<Term>,
    /// The member number of each existing member, by index.
    pub member_numbers: Vec<u64>,
    /// The redemption key's id.
    pub key_id: u16,
}

fn key_for(role: &str, index: usize, seed: u64) -> SigningKey {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&(index as u64).to_le_bytes());
    bytes[16] = if role == "kiosk" { 1 } else { 2 };
    SigningKey::from_bytes(&bytes)
}

fn add_terminal(
    store: &mut dyn Store,
    site: &str,
    role: Role,
    key: &SigningKey,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&key.verifying_key().to_bytes());
    hash[0] ^= 0x5a;
    let terminal = store.add_terminal(site, role, &hash, now)?;
    let replies = store.commit_group(
        &[Write::Enroll {
            code_hash: hash,
            public_key: key.verifying_key().to_bytes(),
            name: format!("replay {site}"),
        }],
        now,
    )?;
    match replies.first() {
        Some(WriteReply::Enrolled(_)) => Ok(terminal.label()),
        other => bail!("enrolling {site}: {other:?}"),
    }
}

/// Applies `operations` from `terminal` straight through the server's store, in groups of a
/// thousand (the day before: existing members and their reports).
fn seed_ops(
    store: &mut dyn Store,
    terminal: i64,
    count: usize,
    operation: impl Fn(usize) -> Operation,
    now: DateTime<Utc>,
    tag: &str,
) -> anyhow::Result<Vec<Option<String>>> {
    // Made a thousand at a time: millions of payloads at once would take gigabytes.
    let mut numbers = Vec::with_capacity(count);
    for (chunk_no, start) in (0..count).step_by(1000).enumerate() {
        let chunk: Vec<Operation> = (start..count.min(start + 1000)).map(&operation).collect();
        let replies = store.commit_group(
            &[Write::Sync {
                terminal,
                nonce: format!("seed-{tag}-{chunk_no:08}"),
                operations: chunk,
                prechecked: Vec::new(),
            }],
            now,
        )?;
        let Some(WriteReply::Synced(results)) = replies.into_iter().next() else {
            bail!("seeding {tag}: the store refused a group");
        };
        for result in results {
            if result.status == OpStatus::Rejected {
                bail!(
                    "seeding {tag}: {} rejected: {:?}",
                    result.op_id,
                    result.reason
                );
            }
            numbers.push(result.member_number);
        }
    }
    Ok(numbers)
}

/// Writes everything the day starts from into the new database `target`.
pub fn prepare(
    target: &Target,
    day: &Day,
    policies: Arc<PolicySet>,
    issuer_seed: [u8; 32],
    now: DateTime<Utc>,
) -> anyhow::Result<Prepared> {
    let mut opened = target.open(policies)?;
    let store = &mut *opened;
    let today = day.today;
    store.set_admission(today, DayRule::Open)?;
    let mut kiosks = Vec::new();
    for k in 0..day.kiosk_plans.len() {
        let key = key_for("kiosk", k, day.seed);
        let site = Day::kiosk_site(k);
        let label = add_terminal(store, &site, Role::Kiosk, &key, now)?;
        kiosks.push(Term {
            label,
            key: Arc::new(key),
            home: k,
        });
    }
    let mut counters = Vec::new();
    for c in 0..day.counters {
        let key = key_for("counter", c, day.seed);
        let label = add_terminal(store, &format!("약국-{c:04}"), Role::Counter, &key, now)?;
        counters.push(Term {
            label,
            key: Arc::new(key),
            home: day.kiosk_plans.len() + c,
        });
    }
    let issuer = SigningKey::from_bytes(&issuer_seed);
    let key_id = store.add_redemption_key(&issuer.verifying_key().to_bytes(), now)?;

    // The day before: the existing members, then one step report each.
    let legacy_kiosk = key_for("kiosk", usize::MAX, day.seed);
    add_terminal(store, "기존 회원", Role::Kiosk, &legacy_kiosk, now)?;
    let legacy_counter = key_for("counter", usize::MAX, day.seed);
    add_terminal(store, "기존 보고", Role::Counter, &legacy_counter, now)?;
    let ids: BTreeMap<String, i64> = store
        .terminals()?
        .into_iter()
        .map(|t| (t.site.clone(), t.id))
        .collect();
    let admitted = day.today - chrono::Days::new(day::HISTORY_DAYS);
    let numbers = seed_ops(
        store,
        ids["기존 회원"],
        day.existing.len(),
        |i| {
            Operation::new(
                format!("existing-{i}"),
                &enrollment_payload(&day.existing[i], admitted),
            )
        },
        now,
        "members",
    )?;
    let member_numbers = numbers
        .into_iter()
        .map(|n| {
            n.as_deref()
                .and_then(|n| n.strip_prefix("PP-"))
                .and_then(|n| n.parse().ok())
                .context("a seeded member has no number")
        })
        .collect::<anyhow::Result<Vec<u64>>>()?;
    // Each existing member's watch, paired at the kiosk that signed them up.
    seed_ops(
        store,
        ids["기존 회원"],
        day.existing.len(),
        |i| {
            Operation::new(
                format!("existing-watch-{i}"),
                &OpPayload::WatchPairing(WatchPairingPayload {
                    serial: Watches::serial(i),
                    member_number: None,
                    enrollment_op_id: Some(format!("existing-{i}")),
                    token: None,
                    paired_at: None,
                }),
            )
        },
        now,
        "watches",
    )?;
    // Their reports of the week before, as the server took them before the program trusted
    // the watches' signatures: what the morning tests is the signed reports of the day, and
    // checking millions of old signatures here would only make preparing slow.
    seed_ops(
        store,
        ids["기존 보고"],
        day.history.len(),
        |i| {
            let r = &day.history[i];
            Operation::new(
                format!("existing-report-{}-{}", r.member, r.day),
                &OpPayload::StepReport(StepReportPayload {
                    member_number: format!("PP-{:08}", member_numbers[r.member]),
                    day: r.day.to_string(),
                    steps: r.steps,
                    reported_at: r.reported_at.to_rfc3339(),
                    watch: None,
                }),
            )
        },
        now,
        "reports",
    )?;
    // From the morning on, members' watches sign their steps: the server credits only what
    // they signed.
    store.add_watch_authority(&watch_protocol::WatchCa::demo().public_key(), now)?;
    Ok(Prepared {
        kiosks,
        counters,
        member_numbers,
        key_id,
    })
}

/// Gives each kiosk site the quota lease `day` plans for it (Palpal's kiosks; naive ones have
/// none).
pub fn set_leases(target: &Target, day: &Day, policies: Arc<PolicySet>) -> anyhow::Result<()> {
    let mut store = target.open(policies)?;
    for (k, places) in day.lease_places.iter().enumerate() {
        if let Some(places) = places {
            store.set_quota(day.today, &Day::kiosk_site(k), *places)?;
        }
    }
    Ok(())
}

/// Copies a prepared database (and its WAL, if any) to `to`.
pub fn copy_database(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    for suffix in ["-wal", "-shm"] {
        let mut source = from.as_os_str().to_owned();
        source.push(suffix);
        let source = PathBuf::from(source);
        if source.exists() {
            let mut target = to.as_os_str().to_owned();
            target.push(suffix);
            std::fs::copy(&source, PathBuf::from(target))?;
        }
    }
    // The key its members' personal data is sealed under goes with it.
    let key = palpal_central::personal::default_file(from);
    if key.exists() {
        let target = palpal_central::personal::default_file(to);
        if let Some(folder) = target.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::copy(&key, &target).with_context(|| format!("copying {}", key.display()))?;
    }
    Ok(())
}

/// An `enrollment` payload for `person`, admitted on `day`.
pub fn enrollment_payload(person: &Person, day: NaiveDate) -> OpPayload {
    OpPayload::Enrollment(EnrollmentPayload {
        name: person.name.clone(),
        birth_date: person.birth_date.to_string(),
        phone: person.phone.clone(),
        day: Some(day.to_string()),
    })
}

/// The server's TLS certificate and private key (PEM files), and the key terminals pin.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    /// The key in the certificate, which the terminals pin as at provisioning.
    pub server_key: ServerKey,
}

impl Tls {
    /// A self-signed certificate for 127.0.0.1, written into `dir`, as
    /// `palpal-central tls generate` makes one.
    pub fn generate(dir: &Path) -> anyhow::Result<Tls> {
        let (cert_pem, key_pem) = palpal_central::tls::generate(&["127.0.0.1".to_owned()])?;
        let cert = dir.join("server.pem");
        let key = dir.join("server-key.pem");
        std::fs::write(&cert, cert_pem).with_context(|| format!("writing {}", cert.display()))?;
        std::fs::write(&key, key_pem).with_context(|| format!("writing {}", key.display()))?;
        let server_key = palpal_central::tls::server_key_of(&cert)?;
        Ok(Tls {
            cert,
            key,
            server_key,
        })
    }
}

/// One server process.
pub struct Server {
    bin: PathBuf,
    /// `serve --writers`, on PostgreSQL.
    writers: Option<usize>,
    target: Target,
    cert: PathBuf,
    key: PathBuf,
    child: Option<Child>,
    /// `https://127.0.0.1:PORT`.
    pub base: String,
    listen: String,
    /// The highest resident memory of any instance so far, KiB (`VmHWM`).
    pub peak_kib: u64,
}

impl Server {
    /// Starts the server on a free port of 127.0.0.1, serving over TLS with `tls`.
    pub fn start(
        bin: &Path,
        target: &Target,
        tls: &Tls,
        writers: Option<usize>,
    ) -> anyhow::Result<Server> {
        let mut server = Server {
            bin: bin.to_owned(),
            writers,
            target: target.clone(),
            cert: tls.cert.clone(),
            key: tls.key.clone(),
            child: None,
            base: String::new(),
            listen: "127.0.0.1:0".into(),
            peak_kib: 0,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let mut child = Command::new(&self.bin)
            .args(["serve", "--db", &self.target.db])
            .arg("--data-key-file")
            .arg(&self.target.data_key)
            .args(["--listen", &self.listen])
            .arg("--tls-cert")
            .arg(&self.cert)
            .arg("--tls-key")
            .arg(&self.key)
            .args(
                self.writers
                    .map(|writers| ["--writers".to_owned(), writers.to_string()])
                    .into_iter()
                    .flatten(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("palpal-central printed {line:?}"))?
            .to_owned();
        anyhow::ensure!(
            base.starts_with("https://"),
            "palpal-central serves {base}, not over TLS"
        );
        self.listen = base.trim_start_matches("https://").to_owned();
        self.base = base;
        self.child = Some(child);
        Ok(())
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Resident memory now, KiB.
    pub fn rss_kib(&self) -> u64 {
        self.pid().map_or(0, |pid| status_kib(pid, "VmRSS:"))
    }

    /// `kill -9`: the outage begins.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.peak_kib = self.peak_kib.max(status_kib(child.id(), "VmHWM:"));
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same address.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The server's processes, all on one database.
pub struct Nodes(pub Vec<Server>);

impl Nodes {
    /// Starts `count` processes, each with `writers` (`serve --writers`) when given.
    pub fn start(
        bin: &Path,
        target: &Target,
        tls: &Tls,
        count: usize,
        writers: Option<usize>,
    ) -> anyhow::Result<Nodes> {
        (0..count.max(1))
            .map(|_| Server::start(bin, target, tls, writers))
            .collect::<anyhow::Result<_>>()
            .map(Nodes)
    }

    /// Their addresses, as the terminals are given them.
    pub fn bases(&self) -> Vec<String> {
        self.0.iter().map(|s| s.base.clone()).collect()
    }

    /// Resident memory of all of them now, KiB.
    pub fn rss_kib(&self) -> u64 {
        self.0.iter().map(Server::rss_kib).sum()
    }

    /// Stops every process; the highest memory any of them reached, KiB.
    pub fn stop(&mut self) -> u64 {
        self.0
            .iter_mut()
            .map(|s| {
                s.kill();
                s.peak_kib
            })
            .max()
            .unwrap_or(0)
    }
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The published policies, as the server uses them.
pub fn policies() -> anyhow::Result<PolicySet> {
    store::published_policies()
}
