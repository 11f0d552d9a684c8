//! `watch-sim`: a fake BlueZ serving simulated Palpal watches on a D-Bus bus, so the terminal's
//! real BLE code (btleplug over BlueZ's D-Bus API) runs where there is no radio: in tests, in CI
//! and in `make demo`.
//!
//! It owns `org.bluez` on the bus named by `--bus` (or `DBUS_SYSTEM_BUS_ADDRESS`, or the system
//! bus) and serves BlueZ's own interfaces: the ObjectManager at `/`, `Adapter1` at
//! `/org/bluez/hci0`, and, once the terminal scans, a `Device1` per watch with the
//! `GattService1` / `GattCharacteristic1` tree of the Palpal profile (`docs/watch-gatt.md`).
//! History answers are produced by `watch-protocol`'s `WatchHistory`; faults (a dropped link,
//! lost, slow or corrupted notifications, a stalled stream, clock drift, a low battery, an
//! unreachable watch, an adapter that is off) come from the configuration.
//!
//! It is not BlueZ: no radio, no pairing or bonding, no GATT cache, no advertising data beyond
//! name, RSSI and service UUIDs, and only what a terminal needs of the API. It prints one line,
//! `watch-sim ready: ...`, once it owns `org.bluez`, and runs until SIGTERM, SIGINT, or the bus
//! goes away.

mod bluez;
mod config;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, TimeDelta, Utc};
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

use crate::bluez::{Adapter, ADAPTER_PATH};
use crate::config::Config;
use crate::watch::Watch;

/// Serves simulated Palpal watches as BlueZ would, on a D-Bus bus.
#[derive(Debug, Parser)]
#[command(name = "watch-sim", version)]
struct Args {
    /// D-Bus address to serve on; default: $DBUS_SYSTEM_BUS_ADDRESS, else the system bus.
    #[arg(long)]
    bus: Option<String>,
    /// A TOML file describing the adapter, the watches and their faults (see config.rs).
    #[arg(long, conflicts_with_all = ["watches", "days", "seed"])]
    config: Option<PathBuf>,
    /// How many healthy watches to serve, without --config.
    #[arg(long, default_value_t = 3)]
    watches: u32,
    /// Days of hourly history per watch, without --config.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Seed of the generated history, without --config.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The ATT MTU the watches negotiate (overrides the file).
    #[arg(long)]
    mtu: Option<u16>,
    /// The day the history ends on, KST (default: today).
    #[arg(long)]
    today: Option<NaiveDate>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::generated(args.watches, args.days, args.seed),
    };
    if let Some(mtu) = args.mtu {
        config.mtu = mtu;
    }
    config.check()?;
    let today = args.today.unwrap_or_else(|| {
        (Utc::now() + TimeDelta::seconds(i64::from(watch_protocol::KST_OFFSET_SECONDS)))
            .date_naive()
    });

    let mut devices = Vec::new();
    for (i, w) in config.watches.iter().enumerate() {
        let watch = Watch::new(i + 1, w, config.mtu, today)
            .with_context(|| format!("preparing watch {}", w.serial))?;
        devices.push(Arc::new(watch));
    }
    for i in 0..config.bystanders {
        devices.push(Arc::new(Watch::bystander(i)?));
    }

    let address = args
        .bus
        .clone()
        .or_else(|| std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok());
    let builder = match &address {
        Some(a) => zbus::connection::Builder::address(a.as_str())
            .with_context(|| format!("parsing the bus address {a}"))?,
        None => zbus::connection::Builder::system().context("finding the system bus")?,
    };
    let mut builder = builder.serve_at("/", zbus::fdo::ObjectManager)?;
    if config.adapter.present {
        builder = builder.serve_at(
            ADAPTER_PATH,
            Adapter {
                devices,
                address: config.adapter.address.clone(),
                powered: config.adapter.powered && !config.adapter.blocked,
                blocked: config.adapter.blocked,
                discovering: false,
                filter: Vec::new(),
            },
        )?;
    }
    let conn = builder.name("org.bluez")?.build().await.with_context(|| {
        format!(
            "connecting to the bus {} and taking the name org.bluez",
            address.as_deref().unwrap_or("(system)")
        )
    })?;

    #[allow(clippy::print_stdout)]
    {
        println!(
            "watch-sim ready: {} watches, {} bystanders, adapter {}, MTU {}, on {}",
            config.watches.len(),
            config.bystanders,
            if config.adapter.present {
                "hci0"
            } else {
                "none"
            },
            config.mtu,
            address.as_deref().unwrap_or("the system bus"),
        );
    }

    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let bus = zbus::fdo::DBusProxy::new(&conn).await?;
    let bus_gone = async {
        // A private bus killed before us must not leave us running.
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if bus.get_id().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
        () = bus_gone => {}
    }
    Ok(())
}
