//! Where the central server's database lives for a replay: a SQLite file (the embedded
//! default), or PostgreSQL — throwaway clusters the replay starts itself (a primary, and a
//! synchronous standby when the primary is to be lost), or a server given by URL, where the
//! replay makes its databases (`palpal_replay_base`, then one per mode copied from it) and
//! drops them afterwards.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _};
use palpal_central::store::postgres::{off_runtime, shown, PgStore};
use palpal_central::store::{SqliteStore, Store};
use points_core::PolicySet;
use test_postgres::Cluster;

/// What is lost at 10:30 (`--kill server|node|primary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kill {
    /// Every server process (SIGKILL), started again at 11:00: the whole service is down.
    Server,
    /// One server process of several (SIGKILL), started again at 11:00; the others serve on.
    Node,
    /// The PostgreSQL primary (`pg_ctl stop -m immediate`); its synchronous standby is
    /// promoted at once, as a failover manager would.
    Primary,
}

/// One database the server runs on: a SQLite file or a PostgreSQL URL, with the file of the
/// key members' personal data is sealed under.
#[derive(Debug, Clone)]
pub struct Target {
    /// The file path or the URL, as `palpal-central --db` takes it.
    pub db: String,
    /// The data key file (`--data-key-file`); for SQLite the default beside the database.
    pub data_key: PathBuf,
    /// Whether `db` is PostgreSQL.
    pub postgres: bool,
}

impl Target {
    /// Opens the server's store on it, as the server does.
    pub fn open(&self, policies: Arc<PolicySet>) -> anyhow::Result<Box<dyn Store>> {
        Ok(if self.postgres {
            Box::new(PgStore::open(&self.db, policies, &self.data_key)?)
        } else {
            Box::new(SqliteStore::open_with_data_key(
                Path::new(&self.db),
                policies,
                &self.data_key,
            )?)
        })
    }
}

/// The replay's database engine.
pub struct Database {
    dir: PathBuf,
    engine: Engine,
}

enum Engine {
    Sqlite,
    /// The clusters the replay started, or `None` with a URL given.
    Postgres {
        given: Option<String>,
        clusters: Mutex<Option<Clusters>>,
    },
}

struct Clusters {
    primary: Cluster,
    standby: Option<Cluster>,
}

const BASE: &str = "base";

fn database_name(name: &str) -> String {
    format!("palpal_replay_{name}")
}

/// `url` with its database replaced by `name` (hosts, user and parameters kept).
pub fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url.split_once("://").with_context(|| {
        "PostgreSQL 주소는 postgres://사용자@호스트:포트/DB 꼴이어야 합니다 / the PostgreSQL URL must read postgres://USER@HOST:PORT/DB"
    })?;
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let query = tail.find('?').map_or("", |at| &tail[at..]);
    Ok(format!("{scheme}://{authority}/{name}{query}"))
}

impl Database {
    /// `sqlite`, `postgres` (throwaway clusters) or a `postgres://` URL; files go in `dir`.
    pub fn new(spec: &str, kill: Kill, nodes: usize, dir: &Path) -> anyhow::Result<Database> {
        let engine = match spec {
            "sqlite" => Engine::Sqlite,
            "postgres" => Engine::Postgres {
                given: None,
                clusters: Mutex::new(Some(Clusters {
                    // Shared buffers as a database machine is given them, not the 64 MB
                    // of a test's cluster, which the morning's database (about 1 GB at half
                    // scale, more at full) would pass through the kernel's cache. The
                    // standby copies this configuration.
                    primary: Cluster::start_with(&["shared_buffers = 1GB"])
                        .context("starting PostgreSQL")?,
                    standby: None,
                })),
            },
            url if palpal_central::store::postgres::is_url(url) => Engine::Postgres {
                given: Some(url.to_owned()),
                clusters: Mutex::new(None),
            },
            other => bail!(
                "--database는 sqlite, postgres, 또는 postgres:// 주소입니다 ({other}) / --database is sqlite, postgres or a postgres:// URL, not {other}"
            ),
        };
        let database = Database {
            dir: dir.to_owned(),
            engine,
        };
        let postgres = database.is_postgres();
        if nodes > 1 && !postgres {
            bail!(
                "서버 프로세스 여러 개(--nodes {nodes})는 PostgreSQL에서만 됩니다: --database postgres 를 주세요 / several server processes need PostgreSQL: give --database postgres"
            );
        }
        if kill == Kill::Node && nodes < 2 {
            bail!(
                "--kill node 에는 --nodes 2 이상이 필요합니다 / --kill node needs --nodes 2 or more"
            );
        }
        if kill == Kill::Primary
            && !matches!(&database.engine, Engine::Postgres { given: None, .. })
        {
            bail!(
                "--kill primary 에는 --database postgres 가 필요합니다 (대기 서버를 직접 만들고 승격합니다) / --kill primary needs --database postgres: the replay starts and promotes the standby itself"
            );
        }
        Ok(database)
    }

    /// Whether it is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.engine, Engine::Postgres { .. })
    }

    /// What the report says it ran on.
    pub fn describe(&self) -> String {
        match &self.engine {
            Engine::Sqlite => "SQLite".into(),
            Engine::Postgres { given: Some(_), .. } => "PostgreSQL (given)".into(),
            Engine::Postgres { given: None, .. } => {
                let version = self
                    .clusters()
                    .ok()
                    .and_then(|c| {
                        c.as_ref()
                            .and_then(|c| c.primary.psql("postgres", "SHOW server_version").ok())
                    })
                    .map(|v| v.trim().split(' ').next().unwrap_or_default().to_owned())
                    .unwrap_or_default();
                format!("PostgreSQL {version}").trim().to_owned()
            }
        }
    }

    fn clusters(&self) -> anyhow::Result<std::sync::MutexGuard<'_, Option<Clusters>>> {
        match &self.engine {
            Engine::Postgres { clusters, .. } => clusters
                .lock()
                .map_err(|_| anyhow::anyhow!("the clusters' lock is poisoned")),
            Engine::Sqlite => bail!("not PostgreSQL"),
        }
    }

    /// The URL of database `name` on the primary (and the standby, when there is one, so
    /// that a server finds whichever takes writes).
    fn url(&self, name: &str) -> anyhow::Result<String> {
        match &self.engine {
            Engine::Sqlite => bail!("not PostgreSQL"),
            Engine::Postgres {
                given: Some(url), ..
            } => with_database(url, name),
            Engine::Postgres { given: None, .. } => {
                let clusters = self.clusters()?;
                let c = clusters.as_ref().context("no cluster")?;
                Ok(match &c.standby {
                    None => with_database(&c.primary.url(), name)?,
                    Some(standby) => format!(
                        "postgres://{}@127.0.0.1:{},127.0.0.1:{}/{name}?target_session_attrs=read-write",
                        test_postgres::USER,
                        c.primary.port(),
                        standby.port()
                    ),
                })
            }
        }
    }

    /// Runs `sql` (one statement that cannot run in a transaction, such as `CREATE
    /// DATABASE`) on the server's maintenance database.
    fn admin(&self, sql: &str) -> anyhow::Result<()> {
        let url = self.url("postgres")?;
        let sql = sql.to_owned();
        off_runtime(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls)
                .with_context(|| format!("connecting to {}", shown(&url)))?;
            client.batch_execute(&sql).with_context(|| sql.clone())
        })
    }

    fn target_named(&self, name: &str, file: &Path) -> anyhow::Result<Target> {
        if self.is_postgres() {
            Ok(Target {
                db: self.url(&database_name(name))?,
                data_key: self.dir.join("data.key"),
                postgres: true,
            })
        } else {
            Ok(Target {
                db: file.display().to_string(),
                data_key: palpal_central::personal::default_file(file),
                postgres: false,
            })
        }
    }

    /// A new, empty database the day is prepared in.
    pub fn base(&self) -> anyhow::Result<Target> {
        if self.is_postgres() {
            let name = database_name(BASE);
            self.admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
            self.admin(&format!("CREATE DATABASE {name}"))?;
        }
        self.target_named(BASE, &self.dir.join("central.db"))
    }

    /// A copy of `base` for `mode`, its SQLite file in `dir`; with the primary to be lost,
    /// a synchronous standby of it is started first (the copy streams to it too).
    pub fn copy_for(
        &self,
        base: &Target,
        mode: &str,
        dir: &Path,
        kill: Kill,
    ) -> anyhow::Result<Target> {
        if !self.is_postgres() {
            let file = dir.join("central.db");
            crate::server::copy_database(Path::new(&base.db), &file)?;
            return self.target_named(mode, &file);
        }
        if kill == Kill::Primary {
            let mut clusters = self.clusters()?;
            let c = clusters.as_mut().context("no cluster")?;
            if c.standby.is_none() {
                c.standby = Some(c.primary.start_standby().context("starting the standby")?);
            }
        }
        let name = database_name(mode);
        self.admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        self.admin(&format!(
            "CREATE DATABASE {name} TEMPLATE {}",
            database_name(BASE)
        ))?;
        self.target_named(mode, &dir.join("central.db"))
    }

    /// Loses the primary (`pg_ctl stop -m immediate`) and promotes the standby; the standby
    /// is the primary from then on, with no standby of its own until the next mode.
    pub fn lose_primary(&self) -> anyhow::Result<()> {
        let mut clusters = self.clusters()?;
        let c = clusters.as_mut().context("no cluster")?;
        let standby = c.standby.take().context("no standby to promote")?;
        c.primary.stop_immediate()?;
        standby.promote()?;
        // The old primary's folder goes; the new primary commits alone.
        c.primary = standby;
        c.primary
            .psql("postgres", "ALTER SYSTEM RESET synchronous_standby_names")?;
        c.primary.psql("postgres", "SELECT pg_reload_conf()")?;
        Ok(())
    }

    /// Drops a mode's database when done with it (PostgreSQL; a SQLite file goes with its
    /// folder).
    pub fn drop_copy(&self, mode: &str) -> anyhow::Result<()> {
        if self.is_postgres() {
            self.admin(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                database_name(mode)
            ))?;
        }
        Ok(())
    }

    /// Drops the base database.
    pub fn finish(&self) -> anyhow::Result<()> {
        self.drop_copy(BASE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_keeps_its_hosts_and_parameters_with_another_database() {
        assert_eq!(
            with_database(
                "postgres://u:pw@127.0.0.1:5432,127.0.0.1:5433/city?target_session_attrs=read-write",
                "palpal_replay_base"
            )
            .unwrap(),
            "postgres://u:pw@127.0.0.1:5432,127.0.0.1:5433/palpal_replay_base?target_session_attrs=read-write"
        );
        assert_eq!(
            with_database("postgresql://u@db", "x").unwrap(),
            "postgresql://u@db/x"
        );
        assert_eq!(
            with_database("postgres://u@db?sslmode=disable", "x").unwrap(),
            "postgres://u@db/x?sslmode=disable"
        );
        assert!(with_database("host=db", "x").is_err());
    }
}
