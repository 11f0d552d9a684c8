//! Throwaway PostgreSQL clusters for the tests, the replay and the benchmarks: `initdb` into a
//! temporary folder, listening on 127.0.0.1 and a free port only (its socket in that folder
//! too), stopped and removed when dropped. PostgreSQL refuses to run as root, so as root
//! every PostgreSQL program runs as the `postgres` user the Debian package makes
//! (`runuser -u postgres`), in a folder made over to it.
//!
//! The binaries are PostgreSQL's own, found in `$PALPAL_PG_BIN` or the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian's `postgresql-15`; `make test` installs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context as _};

/// The user a cluster's database belongs to (no password: trust on 127.0.0.1 only).
pub const USER: &str = "palpal";

/// A PostgreSQL cluster of its own, on 127.0.0.1.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    running: bool,
}

/// The folder of PostgreSQL's programs.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PALPAL_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (no /usr/lib/postgresql): apt-get install postgresql-15, or set PALPAL_PG_BIN")?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no PostgreSQL with initdb in /usr/lib/postgresql")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Makes `folder` over to the user PostgreSQL runs as (the `postgres` user, when this process
/// is root), so that a cluster may write in it: its data folder, or a tablespace's.
pub fn hand_over(folder: &Path) -> anyhow::Result<()> {
    if is_root() {
        let chown = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(folder)
            .status()?;
        anyhow::ensure!(
            chown.success(),
            "could not give {} to the postgres user",
            folder.display()
        );
    }
    Ok(())
}

/// A free TCP port on 127.0.0.1 (free when asked; PostgreSQL takes it a moment later).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Cluster {
    /// Makes and starts a new cluster with a database `palpal` owned by [`USER`].
    pub fn start() -> anyhow::Result<Cluster> {
        Cluster::start_with(&[])
    }

    /// The same, with more `postgresql.conf` lines (such as `synchronous_commit = off`).
    pub fn start_with(settings: &[&str]) -> anyhow::Result<Cluster> {
        let bin = bin_dir()?;
        let mut cluster = Cluster::in_folder(bin, "palpal-pg-")?;
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                path(&data)?,
                "-U",
                USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        let mut conf = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 200\nshared_buffers = 64MB\n",
            cluster.port,
            path(cluster.dir.path())?
        );
        for line in settings {
            conf.push_str(line);
            conf.push('\n');
        }
        // Written in place (as root too): the file keeps the owner and mode initdb gave it.
        let file = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&file)?;
        text.push_str(&conf);
        std::fs::write(&file, text)?;
        cluster.start_again()?;
        cluster.psql("postgres", &format!("CREATE DATABASE palpal OWNER {USER}"))?;
        Ok(cluster)
    }

    /// A streaming standby of this cluster, on a port of its own, made with `pg_basebackup
    /// -R -X stream` and started; this cluster then waits for it at every commit
    /// (`synchronous_standby_names`), so that a commit it acknowledged is on both.
    pub fn start_standby(&self) -> anyhow::Result<Cluster> {
        let mut standby = Cluster::in_folder(self.bin.clone(), "palpal-pg-standby-")?;
        let data = standby.data();
        let primary_port = self.port.to_string();
        standby.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port,
                "-U",
                USER,
                "-D",
                path(&data)?,
                "-R",
                "-X",
                "stream",
                "--no-sync",
                "--checkpoint=fast",
            ],
        )?;
        let file = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&file)?;
        text.push_str(&format!(
            "\nport = {}\nunix_socket_directories = '{}'\ncluster_name = 'standby'\n",
            standby.port,
            path(standby.dir.path())?
        ));
        std::fs::write(&file, text)?;
        standby.start_again()?;
        self.psql(
            "postgres",
            "ALTER SYSTEM SET synchronous_standby_names = 'standby'",
        )?;
        self.psql("postgres", "SELECT pg_reload_conf()")?;
        for _ in 0..200 {
            let state = self.psql(
                "postgres",
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'",
            )?;
            if state.trim() == "sync" {
                return Ok(standby);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        bail!("the standby did not become synchronous: {}", standby.log())
    }

    /// Promotes a standby to primary (`pg_ctl promote`), waiting until it takes writes.
    pub fn promote(&self) -> anyhow::Result<()> {
        let data = self.data();
        self.run("pg_ctl", &["-D", path(&data)?, "-w", "promote"])?;
        Ok(())
    }

    /// A cluster not made yet: a new temporary folder (the postgres user's, when root) and a
    /// free port.
    fn in_folder(bin: PathBuf, prefix: &str) -> anyhow::Result<Cluster> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        hand_over(dir.path())?;
        Ok(Cluster {
            dir,
            bin,
            port: free_port()?,
            running: false,
        })
    }

    /// The cluster's data folder.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of its `palpal` database.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/palpal", self.port)
    }

    /// Starts it (again), waiting until it takes connections.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        let data = self.data();
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path(&data)?,
                "-l",
                path(&log)?,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        self.running = true;
        Ok(())
    }

    /// Stops it as a crash would (`pg_ctl stop -m immediate`): no checkpoint, what was
    /// committed is replayed from the log at the next start.
    pub fn stop_immediate(&mut self) -> anyhow::Result<()> {
        self.running = false;
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", path(&data)?, "-w", "stop", "-m", "immediate"],
        )
        .map(|_| ())
    }

    /// Runs SQL in database `db` with `psql`, as [`USER`]; returns what it printed.
    pub fn psql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        let port = self.port.to_string();
        let out = self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                USER,
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The server's log so far (for a test that failed).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs PostgreSQL's program `name` with `args` (as the postgres user when root).
    fn run(&self, name: &str, args: &[&str]) -> anyhow::Result<Output> {
        let program = self.bin.join(name);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .with_context(|| format!("running {}", program.display()))?;
        if !out.status.success() {
            bail!(
                "{name} {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            if let Ok(data) = path(&self.data()).map(str::to_owned) {
                let _ = self.run("pg_ctl", &["-D", &data, "-w", "stop", "-m", "immediate"]);
            }
        }
    }
}

fn path(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("a path that is not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_synchronous_standby_has_every_commit_and_takes_over_when_promoted() -> anyhow::Result<()> {
        let mut primary = Cluster::start()?;
        let standby = primary.start_standby()?;
        primary.psql(
            "palpal",
            "CREATE TABLE t (n integer); INSERT INTO t VALUES (42)",
        )?;
        primary.stop_immediate()?;
        standby.promote()?;
        standby.psql("palpal", "INSERT INTO t VALUES (1)")?;
        assert_eq!(standby.psql("palpal", "SELECT sum(n) FROM t")?.trim(), "43");
        Ok(())
    }

    #[test]
    fn a_cluster_starts_takes_sql_survives_a_crash_and_goes_away() -> anyhow::Result<()> {
        let mut cluster = Cluster::start()?;
        let data = cluster.data();
        cluster.psql(
            "palpal",
            "CREATE TABLE t (n integer); INSERT INTO t VALUES (41), (1)",
        )?;
        cluster.stop_immediate()?;
        cluster.start_again()?;
        assert_eq!(cluster.psql("palpal", "SELECT sum(n) FROM t")?.trim(), "42");
        assert!(cluster.url().starts_with("postgres://palpal@127.0.0.1:"));
        drop(cluster);
        assert!(!data.exists());
        Ok(())
    }
}
