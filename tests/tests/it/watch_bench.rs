//! Simulated watches for the end-to-end tests: a private `dbus-daemon` (Debian package `dbus`)
//! and `watch-sim` on it, the fake BlueZ the app's real btleplug code talks to. The app finds
//! the bus through `DBUS_SYSTEM_BUS_ADDRESS`, which the test gives tauri-driver.
//!
//! Both processes run in their own process group and are stopped when the bench is dropped,
//! however the test ends: SIGTERM to that group (its id is the child's own pid, never 0 or 1),
//! then `Child::kill`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// A child process in its own process group, stopped on drop.
struct Daemon {
    child: Child,
    _stdout: BufReader<ChildStdout>,
}

impl Daemon {
    /// Starts `command` and waits for a line on its stdout containing `ready`.
    fn start(mut command: Command, what: &str, ready: &str) -> Result<Daemon> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        // Owned from here, so that an early return still stops it.
        let mut daemon = Daemon {
            child,
            _stdout: BufReader::new(stdout),
        };
        let mut line = String::new();
        loop {
            line.clear();
            if daemon._stdout.read_line(&mut line)? == 0 {
                bail!("{what} exited before it was ready");
            }
            if line.contains(ready) {
                return Ok(daemon);
            }
        }
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            if pid > 1 {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
                for _ in 0..100 {
                    if let Ok(Some(_)) = self.child.try_wait() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
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

/// A private bus with `watch-sim` serving the watches of a configuration on it.
pub struct WatchBench {
    // Dropped in this order: the simulator, then its bus, then the folder.
    sim: Daemon,
    bus: Daemon,
    address: String,
    _dir: tempfile::TempDir,
}

impl WatchBench {
    /// Starts a bus and `sim` (the `watch-sim` binary) serving `config` (watch-sim's TOML).
    pub fn start(sim: &Path, config: &str) -> Result<WatchBench> {
        if !sim.exists() {
            bail!(
                "{} is missing: build it first (cargo build --workspace --bins; make test does)",
                sim.display()
            );
        }
        let dir = tempfile::Builder::new().prefix("palpal-bus").tempdir()?;
        let socket = dir.path().join("bus");
        let bus_conf = dir.path().join("bus.conf");
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
        )?;
        let mut command = Command::new("dbus-daemon");
        // As root in a container it complains it cannot raise its fd limit: harmless.
        command.stderr(Stdio::null()).args([
            "--nofork",
            "--print-address=1",
            &format!("--config-file={}", bus_conf.display()),
        ]);
        let bus = Daemon::start(command, "dbus-daemon (Debian package `dbus`)", "unix:path=")?;
        let address = format!("unix:path={}", socket.display());

        let sim_conf = dir.path().join("sim.toml");
        std::fs::write(&sim_conf, config)?;
        let mut command = Command::new(sim);
        command.stderr(Stdio::null()).args([
            "--bus",
            &address,
            "--config",
            &sim_conf.to_string_lossy(),
        ]);
        let sim = Daemon::start(command, "watch-sim", "watch-sim ready")?;
        Ok(WatchBench {
            sim,
            bus,
            address,
            _dir: dir,
        })
    }

    /// The bus address, for `DBUS_SYSTEM_BUS_ADDRESS`.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for WatchBench {
    fn drop(&mut self) {
        self.sim.stop();
        self.bus.stop();
    }
}
