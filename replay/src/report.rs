//! The report: Markdown with the verdicts and figures of each mode side by side, an SVG
//! plot over simulated time of offered load and goodput, latency, queues and server memory,
//! and the same seconds as CSV, for whoever wants to look closer.

use std::fmt::Write as _;

use crate::day::{OUTAGE, START, SURGE, WINDOW};
use crate::metrics::{quantile, Bucket};
use crate::terminal::ShellReport;
use crate::verdict::Verdicts;

/// One mode's run.
pub struct ModeRun {
    pub name: &'static str,
    pub buckets: Vec<Bucket>,
    pub verdicts: Verdicts,
    pub shells: ShellReport,
    pub peak_server_kib: u64,
    /// From the restart until every operation made before it was answered, simulated seconds;
    /// `None` if some never were.
    pub drain_sim_secs: Option<f64>,
    pub real_secs: f64,
    /// HTTP statuses other than 200 and 429.
    pub other_statuses: std::collections::BTreeMap<u16, u64>,
}

/// Figures of a run, over its buckets.
pub struct Figures {
    pub offered: u64,
    pub settled: u64,
    pub peak_goodput: f64,
    pub surge_goodput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub surge_p99_ms: f64,
    pub overloaded: u64,
    pub errors: u64,
    pub failed: u64,
    pub ok: u64,
    pub peak_queue: i64,
}

fn ms(micros: Option<u32>) -> f64 {
    micros.map_or(0.0, |m| f64::from(m) / 1000.0)
}

pub fn figures(run: &ModeRun, compress: f64) -> Figures {
    let second_of = |sim: u32| (f64::from(sim) / compress) as usize;
    let surge = second_of(SURGE.0)..=second_of(SURGE.1);
    let mut all = Vec::new();
    let mut in_surge = Vec::new();
    let mut surge_settled = 0u64;
    let mut f = Figures {
        offered: 0,
        settled: 0,
        peak_goodput: 0.0,
        surge_goodput: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        surge_p99_ms: 0.0,
        overloaded: 0,
        errors: 0,
        failed: 0,
        ok: 0,
        peak_queue: 0,
    };
    for (i, b) in run.buckets.iter().enumerate() {
        f.offered += b.offered;
        f.settled += b.settled;
        f.peak_goodput = f.peak_goodput.max(b.settled as f64);
        f.overloaded += b.overloaded;
        f.errors += b.errors;
        f.failed += b.failed;
        f.ok += b.ok;
        f.peak_queue = f.peak_queue.max(b.queued);
        all.extend_from_slice(&b.latencies);
        if surge.contains(&i) {
            in_surge.extend_from_slice(&b.latencies);
            surge_settled += b.settled;
        }
    }
    let surge_seconds = (surge.end() - surge.start() + 1) as f64;
    f.surge_goodput = surge_settled as f64 / surge_seconds;
    f.p50_ms = ms(quantile(&mut all, 0.5));
    f.p99_ms = ms(quantile(&mut all, 0.99));
    f.surge_p99_ms = ms(quantile(&mut in_surge, 0.99));
    f
}

/// Every second of every run, one line each: the mode, the real second, the simulated time
/// of day it began at, operations offered and answered, requests by how they ended, the
/// latency p50 and p99 (ms) of the requests answered in it, operations waiting on terminals
/// at its end, and the server's memory (KiB, 0 while it was down).
pub fn timeline_csv(runs: &[ModeRun], compress: f64) -> String {
    let mut out = String::from(
        "mode,second,simulated,offered,answered,http_200,http_429,http_other,no_answer,\
         p50_ms,p99_ms,waiting,server_kib\n",
    );
    for run in runs {
        for (second, b) in run.buckets.iter().enumerate() {
            let sim = (second as f64 * compress) as u64 + u64::from(START);
            let mut latencies = b.latencies.clone();
            let p50 = ms(quantile(&mut latencies, 0.5));
            let p99 = ms(quantile(&mut latencies, 0.99));
            let _ = writeln!(
                out,
                "{},{second},{:02}:{:02}:{:02},{},{},{},{},{},{},{p50:.1},{p99:.1},{},{}",
                run.name,
                sim / 3600,
                sim / 60 % 60,
                sim % 60,
                b.offered,
                b.settled,
                b.ok,
                b.overloaded,
                b.errors,
                b.failed,
                b.queued,
                b.rss_kib
            );
        }
    }
    out
}

fn sum_map(map: &std::collections::BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "0".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Markdown report.
pub fn markdown(runs: &[ModeRun], header: &str, compress: f64, svg_name: &str) -> String {
    let figs: Vec<Figures> = runs.iter().map(|r| figures(r, compress)).collect();
    let mut out = String::new();
    let _ = writeln!(out, "# Launch-day replay\n\n{header}\n");
    let _ = writeln!(out, "![offered load, goodput, latency, queues and server memory over the morning]({svg_name})\n");
    let _ = write!(
        out,
        "| | {} |\n|---|",
        runs.iter().map(|r| r.name).collect::<Vec<_>>().join(" | ")
    );
    for _ in runs {
        out.push_str("---|");
    }
    out.push('\n');
    let mut row = |label: &str, cell: &dyn Fn(usize) -> String| {
        let cells: Vec<String> = (0..runs.len()).map(cell).collect();
        let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
    };
    row("**registrations lost**", &|i| {
        format!("**{}**", runs[i].verdicts.registrations_lost)
    });
    row("**registrations duplicated**", &|i| {
        format!("**{}**", runs[i].verdicts.registrations_duplicated)
    });
    row(
        "registrations confirmed to the person / on the server",
        &|i| {
            format!(
                "{} / {}",
                runs[i].verdicts.registrations_confirmed, runs[i].verdicts.registrations_on_server
            )
        },
    );
    row("people turned away (reason count)", &|i| {
        sum_map(&runs[i].verdicts.turned_away)
    });
    row(
        "**members whose points differ from the recomputation**",
        &|i| {
            format!(
                "**{}** of {}",
                runs[i].verdicts.points_mismatched_members, runs[i].verdicts.members_checked
            )
        },
    );
    row(
        "points: server ledger / policy core over the raw reports",
        &|i| {
            format!(
                "{} / {}",
                runs[i].verdicts.points_server, runs[i].verdicts.points_recomputed
            )
        },
    );
    row("step reports made", &|i| {
        runs[i].verdicts.reports_made.to_string()
    });
    row("**redemption holds lost**", &|i| {
        format!(
            "**{}** of {}",
            runs[i].verdicts.holds_lost, runs[i].verdicts.holds_made
        )
    });
    row("holds on the server by status", &|i| {
        sum_map(&runs[i].verdicts.holds_by_status)
    });
    row("voids made / applied", &|i| {
        format!(
            "{} / {}",
            runs[i].verdicts.voids_made, runs[i].verdicts.voids_applied
        )
    });
    row("redemptions refused at the counter", &|i| {
        sum_map(&runs[i].verdicts.redemptions_refused)
    });
    row("operations offered / answered for", &|i| {
        format!("{} / {}", figs[i].offered, figs[i].settled)
    });
    row("operations never answered for", &|i| {
        runs[i].shells.unsettled.to_string()
    });
    row("operations rejected by the server (reason count)", &|i| {
        sum_map(&runs[i].shells.rejected)
    });
    row("HTTP requests: 200 / 429 / other error / no answer", &|i| {
        format!(
            "{} / {} / {} / {}",
            figs[i].ok, figs[i].overloaded, figs[i].errors, figs[i].failed
        )
    });
    row("other HTTP statuses (status count)", &|i| {
        let map: std::collections::BTreeMap<String, u64> = runs[i]
            .other_statuses
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        sum_map(&map)
    });
    row(
        "goodput, operations answered per second: peak / 10:00–10:10",
        &|i| format!("{:.0} / {:.0}", figs[i].peak_goodput, figs[i].surge_goodput),
    );
    row("request latency p50 / p99 (ms); p99 10:00–10:10", &|i| {
        format!(
            "{:.1} / {:.1}; {:.1}",
            figs[i].p50_ms, figs[i].p99_ms, figs[i].surge_p99_ms
        )
    });
    row("peak operations waiting on terminals", &|i| {
        figs[i].peak_queue.to_string()
    });
    row("peak server memory (VmHWM)", &|i| {
        format!("{:.1} MiB", runs[i].peak_server_kib as f64 / 1024.0)
    });
    row(
        "time to drain after the outage (simulated)",
        &|i| match runs[i].drain_sim_secs {
            Some(s) => format!("{:.0} s", s),
            None => "not drained".into(),
        },
    );
    row("wall-clock time of the run", &|i| {
        format!("{:.0} s", runs[i].real_secs)
    });
    row("server halted a terminal", &|i| {
        runs[i].shells.halted.clone().unwrap_or_else(|| "no".into())
    });
    if figs.len() == 2 && figs[1].settled > 0 {
        let _ = writeln!(
            out,
            "\nGoodput ratio during the 10:00 surge, {} to {}: {:.2}; operations answered in the window, {} to {}: {} to {}.",
            runs[0].name,
            runs[1].name,
            if figs[1].surge_goodput > 0.0 { figs[0].surge_goodput / figs[1].surge_goodput } else { f64::INFINITY },
            runs[0].name,
            runs[1].name,
            figs[0].settled,
            figs[1].settled,
        );
    }
    out
}

/// The plot: four panels over simulated minutes from 09:55, a line per mode.
pub fn svg(runs: &[ModeRun], compress: f64, outage: &str) -> String {
    const W: f64 = 900.0;
    const PANEL_H: f64 = 150.0;
    const LEFT: f64 = 70.0;
    const TOP: f64 = 56.0;
    const GAP: f64 = 40.0;
    // Palpal's terminals solid blue, naive ones dashed red, whatever the order.
    let style = |run: &ModeRun| {
        if run.name == "naive" {
            ("#c0392b", "6 4", "#e6b0aa")
        } else {
            ("#1f5fbf", "", "#aec6ea")
        }
    };
    let minutes = f64::from(WINDOW) / 60.0 + 15.0;
    type Series = fn(&[Bucket], usize) -> f64;
    let panels: [(&str, Series); 4] = [
        ("operations answered per second (light: offered)", |b, i| {
            b[i].settled as f64
        }),
        ("request latency p99 (ms)", |b, i| {
            let mut l = b[i].latencies.clone();
            ms(quantile(&mut l, 0.99))
        }),
        ("operations waiting on terminals", |b, i| b[i].queued as f64),
        ("server memory (MiB)", |b, i| b[i].rss_kib as f64 / 1024.0),
    ];
    let height = TOP + panels.len() as f64 * (PANEL_H + GAP) + 20.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let x_of = |minute: f64| LEFT + (W - LEFT - 20.0) * minute / minutes;
    for (n, run) in runs.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<line x1="{}" y1="14" x2="{}" y2="14" stroke="{}" stroke-width="2" stroke-dasharray="{}"/><text x="{}" y="18">{}</text>"#,
            LEFT + n as f64 * 200.0,
            LEFT + n as f64 * 200.0 + 30.0,
            style(run).0,
            style(run).1,
            LEFT + n as f64 * 200.0 + 36.0,
            run.name
        );
    }
    for (p, (title, series)) in panels.iter().enumerate() {
        let y0 = TOP + p as f64 * (PANEL_H + GAP);
        let max = runs
            .iter()
            .flat_map(|r| (0..r.buckets.len()).map(move |i| series(&r.buckets, i)))
            .fold(0.0_f64, f64::max)
            .max(1.0);
        let (ox0, ox1) = (
            x_of(f64::from(OUTAGE.0) / 60.0),
            x_of(f64::from(OUTAGE.1) / 60.0),
        );
        let (sx0, sx1) = (
            x_of(f64::from(SURGE.0) / 60.0),
            x_of(f64::from(SURGE.1) / 60.0),
        );
        let _ = writeln!(
            out,
            r##"<rect x="{ox0:.1}" y="{y0}" width="{:.1}" height="{PANEL_H}" fill="#eee"/><rect x="{sx0:.1}" y="{y0}" width="{:.1}" height="{PANEL_H}" fill="#fff3d6"/>"##,
            ox1 - ox0,
            sx1 - sx0
        );
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{y0}" width="{:.1}" height="{PANEL_H}" fill="none" stroke="#555"/><text x="{LEFT}" y="{:.1}" font-weight="bold">{title}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><text x="{:.1}" y="{:.1}" text-anchor="end">0</text>"##,
            W - LEFT - 20.0,
            y0 - 6.0,
            LEFT - 4.0,
            y0 + 10.0,
            pretty(max),
            LEFT - 4.0,
            y0 + PANEL_H,
        );
        for run in runs {
            let line = |out: &mut String, value: &dyn Fn(usize) -> f64, color: &str, width: f64| {
                let points: Vec<String> = (0..run.buckets.len())
                    .map(|i| {
                        let minute = i as f64 * compress / 60.0;
                        let y = y0 + PANEL_H - PANEL_H * (value(i) / max).min(1.0);
                        format!("{:.1},{:.1}", x_of(minute.min(minutes)), y)
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    r#"<polyline fill="none" stroke="{color}" stroke-width="{width}" stroke-dasharray="{}" points="{}"/>"#,
                    style(run).1,
                    points.join(" ")
                );
            };
            if p == 0 {
                // Offered load under the answered operations, in a lighter line.
                line(
                    &mut out,
                    &|i| run.buckets[i].offered as f64,
                    style(run).2,
                    1.0,
                );
            }
            line(&mut out, &|i| series(&run.buckets, i), style(run).0, 1.5);
        }
        for tick in (0..=(minutes as u32)).step_by(15) {
            let x = x_of(f64::from(tick));
            let total = START / 60 + tick;
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#555"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{:02}:{:02}</text>"##,
                y0 + PANEL_H,
                y0 + PANEL_H + 4.0,
                y0 + PANEL_H + 16.0,
                total / 60,
                total % 60
            );
        }
    }
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="{:.1}" fill="#555">shaded: the 10:00 sign-up surge (yellow) and {outage} (grey); time is simulated, compressed {compress}×</text>"##,
        height - 6.0
    );
    out.push_str("</svg>\n");
    out
}

fn pretty(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &'static str, buckets: Vec<Bucket>) -> ModeRun {
        ModeRun {
            name,
            buckets,
            verdicts: Verdicts::default(),
            shells: ShellReport::default(),
            peak_server_kib: 0,
            drain_sim_secs: None,
            real_secs: 0.0,
            other_statuses: Default::default(),
        }
    }

    #[test]
    fn the_timeline_has_a_line_a_second_on_simulated_time() {
        let busy = Bucket {
            offered: 7,
            settled: 5,
            ok: 2,
            overloaded: 3,
            errors: 1,
            failed: 4,
            latencies: vec![1_000, 3_000, 200_000],
            queued: 12,
            rss_kib: 2048,
            sampled: true,
        };
        let csv = timeline_csv(
            &[
                run("palpal", vec![Bucket::default(), busy]),
                run("naive", vec![Bucket::default()]),
            ],
            20.0,
        );
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "a header and three seconds: {csv}");
        assert!(lines[0].starts_with("mode,second,simulated,offered,answered,http_200,http_429"));
        assert_eq!(lines[1], "palpal,0,09:55:00,0,0,0,0,0,0,0.0,0.0,0,0");
        assert_eq!(lines[2], "palpal,1,09:55:20,7,5,2,3,1,4,3.0,200.0,12,2048");
        assert_eq!(lines[3], "naive,0,09:55:00,0,0,0,0,0,0,0.0,0.0,0,0");
    }
}
