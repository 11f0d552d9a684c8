//! The Today page: what every server process counted minute by minute (the `activity`
//! table, written by each process every few seconds), today's sign-up places by site, and
//! which terminals were heard lately. Charts are drawn here as SVG, with their figures in
//! words beside them; a small script (`today.js`) fetches the live part again every 15
//! seconds until the operator pauses it.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use kiosk_core::admission::QuotaLease;
use maud::{html, Markup};

use super::text::{Lang, T};
use crate::metrics::{LATENCY_BOUNDS_MS, LATENCY_FIGURES};
use crate::store::{minute_of, ActivityCount, Sighting, Terminal};

/// The script that refreshes the live part.
pub const SCRIPT: &str = include_str!("today.js");

/// Minutes the charts show.
pub const MINUTES: usize = 60;

/// A terminal heard within this long counts as online.
pub const ONLINE_WITHIN: TimeDelta = TimeDelta::minutes(5);

/// The first minute to read for the page at `now`: the start of today in Asia/Seoul or an
/// hour ago, whichever is earlier.
pub fn read_from(now: DateTime<Utc>) -> String {
    minute_of(today_start(now).min(now - TimeDelta::minutes(MINUTES as i64)))
}

fn today_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let day = points_core::kst_day(now);
    day.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(points_core::KST).single())
        .map_or(now, |t| t.with_timezone(&Utc))
}

/// What the live part shows.
pub struct Live<'a> {
    pub now: DateTime<Utc>,
    pub activity: &'a [ActivityCount],
    pub leases: &'a [QuotaLease],
    pub terminals: &'a [Terminal],
    pub sightings: &'a [Sighting],
}

/// Counts by figure for each of the last [`MINUTES`] minutes (oldest first), and today's
/// totals.
struct Series {
    by_minute: BTreeMap<&'static str, Vec<i64>>,
    today: BTreeMap<String, i64>,
}

/// The figures charted minute by minute, besides the answer times (`LATENCY_FIGURES`).
const CHARTED: [&str; 9] = [
    "sign_ups",
    "step_reports",
    "points",
    "holds",
    "voids",
    "refused_429",
    "errors_5xx",
    "requests",
    "rejected",
];

fn series(live: &Live<'_>) -> Series {
    let minutes: Vec<String> = (0..MINUTES)
        .rev()
        .map(|ago| minute_of(live.now - TimeDelta::minutes(ago as i64)))
        .collect();
    let index: BTreeMap<&str, usize> = minutes
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let mut by_minute: BTreeMap<&'static str, Vec<i64>> = CHARTED
        .iter()
        .chain(&LATENCY_FIGURES)
        .map(|figure| (*figure, vec![0; MINUTES]))
        .collect();
    let mut today: BTreeMap<String, i64> = BTreeMap::new();
    let since = minute_of(today_start(live.now));
    for c in live.activity {
        if c.minute >= since {
            *today.entry(c.figure.clone()).or_default() += c.count;
        }
        if let (Some(i), Some(row)) = (
            index.get(c.minute.as_str()),
            by_minute.get_mut(c.figure.as_str()),
        ) {
            row[*i] += c.count;
        }
    }
    Series { by_minute, today }
}

/// The 99th percentile of a minute's answer times, as the upper bound of its bucket
/// (`None`: no answers that minute; `Some(None)`: slower than the largest bound).
fn p99(buckets: &[i64]) -> Option<Option<u64>> {
    let total: i64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let needed = (total * 99 + 99) / 100;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= needed {
            return Some(LATENCY_BOUNDS_MS.get(i).copied());
        }
    }
    Some(None)
}

/// The live part of the page, also answered alone to the refreshing script.
pub fn live(lang: Lang, live: &Live<'_>) -> Markup {
    let t = |text: T| text.get(lang);
    let s = series(live);
    let total = |figure: &str| s.today.get(figure).copied().unwrap_or(0);
    let row = |figure: &str| s.by_minute.get(figure).cloned().unwrap_or_default();
    let latency: Vec<i64> = (0..MINUTES)
        .map(|i| {
            let buckets: Vec<i64> = LATENCY_FIGURES
                .iter()
                .map(|f| s.by_minute.get(f).map_or(0, |r| r[i]))
                .collect();
            match p99(&buckets) {
                None => 0,
                Some(Some(ms)) => i64::try_from(ms).unwrap_or(i64::MAX),
                Some(None) => 10_000,
            }
        })
        .collect();
    let kst = live.now.with_timezone(&points_core::KST);
    let online_since = live.now - ONLINE_WITHIN;
    let heard: BTreeMap<i64, DateTime<Utc>> = live
        .sightings
        .iter()
        .map(|x| (x.terminal, x.seen_at))
        .collect();
    let active: Vec<&Terminal> = live.terminals.iter().filter(|x| !x.revoked).collect();
    let online = active
        .iter()
        .filter(|x| heard.get(&x.id).is_some_and(|at| *at >= online_since))
        .count();
    let never = active.iter().filter(|x| !heard.contains_key(&x.id)).count();
    let silent = active.len() - online - never;
    let kst_labels: Vec<String> = (0..MINUTES)
        .rev()
        .map(|ago| {
            (kst - TimeDelta::minutes(ago as i64))
                .format("%H:%M")
                .to_string()
        })
        .collect();
    html! {
        p.updated { (t(T::UpdatedAt)) " " time datetime=(live.now.to_rfc3339()) { (kst.format("%Y-%m-%d %H:%M:%S")) " KST" } }
        ul.figures {
            li { strong { (total("sign_ups")) } (t(T::SignUpsToday)) }
            li { strong { (total("step_reports")) } (t(T::StepReportsToday)) }
            li { strong { (total("points")) } (t(T::PointsToday)) }
            li { strong { (total("holds")) } (t(T::HoldsToday)) }
            li { strong { (total("voids")) } (t(T::VoidsToday)) }
            li { strong { (total("refused_429")) } (t(T::RefusedToday)) }
            li { strong { (total("errors_5xx")) } (t(T::ErrorsToday)) }
        }
        h2 { (t(T::TerminalsHeading)) }
        ul.figures {
            li { strong { (online) } (t(T::TerminalsOnline)) }
            li { strong { (silent) } (t(T::TerminalsSilent)) }
            li { strong { (never) } (t(T::TerminalsNeverHeard)) }
        }
        h2 { (t(T::LastHour)) }
        div.charts {
            (chart(lang, T::ChartSignUps, &[("#0b3d6e", &row("sign_ups"))], &kst_labels))
            (chart(lang, T::ChartStepReports, &[("#0b3d6e", &row("step_reports"))], &kst_labels))
            (chart(lang, T::ChartPoints, &[("#0b3d6e", &row("points"))], &kst_labels))
            (chart(lang, T::ChartHoldsVoids, &[("#0b3d6e", &row("holds")), ("#b45309", &row("voids"))], &kst_labels))
            (chart(lang, T::ChartRefusedErrors, &[("#b45309", &row("refused_429")), ("#a11616", &row("errors_5xx"))], &kst_labels))
            (chart(lang, T::ChartLatency, &[("#0b3d6e", &latency)], &kst_labels))
        }
        h2 { (t(T::QuotasHeading)) }
        @if live.leases.is_empty() {
            p { (t(T::QuotasNone)) }
        } @else {
            table {
                thead { tr {
                    th scope="col" { (t(T::Site)) }
                    th scope="col" { (t(T::Places)) }
                    th scope="col" { (t(T::Used)) }
                    th scope="col" { (t(T::Left)) }
                    th scope="col" { span.visually-hidden { (t(T::Used)) " / " (t(T::Places)) } }
                } }
                tbody {
                    @for lease in live.leases {
                        tr {
                            th scope="row" { (lease.site) }
                            td { (lease.places) }
                            td { (lease.used) }
                            td { (lease.remaining()) }
                            td { (fill_bar(lease.used, lease.places)) }
                        }
                    }
                }
            }
        }
    }
}

/// A bar of how full a site's places are (the figures are in the row beside it).
fn fill_bar(used: u32, places: u32) -> Markup {
    let width = if places == 0 {
        0.0
    } else {
        (f64::from(used) / f64::from(places)).min(1.0) * 200.0
    };
    html! {
        svg width="204" height="20" viewBox="0 0 204 20" aria-hidden="true" focusable="false" {
            rect x="1" y="2" width="202" height="16" fill="#ffffff" stroke="#4a4a4a" stroke-width="1";
            rect x="2" y="3" width=(format!("{width:.1}")) height="14" fill="#0b3d6e";
        }
    }
}

/// A bar chart of one or two series over the minutes, named for a screen reader with its
/// total and peak, and its figures in a table under a disclosure.
fn chart(lang: Lang, title: T, series: &[(&str, &[i64])], labels: &[String]) -> Markup {
    const W: f64 = 540.0;
    const H: f64 = 150.0;
    const LEFT: f64 = 48.0;
    const BOTTOM: f64 = 22.0;
    let t = |text: T| text.get(lang);
    let max = series
        .iter()
        .flat_map(|(_, values)| values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let totals: Vec<i64> = series.iter().map(|(_, v)| v.iter().sum()).collect();
    let peaks: Vec<i64> = series
        .iter()
        .map(|(_, v)| v.iter().copied().max().unwrap_or(0))
        .collect();
    let summary = format!(
        "{}: {} {}, {} {}",
        t(title),
        t(T::ChartTotal),
        totals
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(" / "),
        t(T::ChartPeak),
        peaks
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(" / "),
    );
    let n = labels.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    let bar = (slot / series.len().max(1) as f64 - 1.0).max(1.0);
    let plot_h = H - BOTTOM - 8.0;
    html! {
        figure.chart {
            figcaption { (t(title)) }
            svg width=(W) height=(H) viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(summary) {
                line x1=(LEFT) y1="8" x2=(LEFT) y2=(H - BOTTOM) stroke="#4a4a4a" stroke-width="1";
                line x1=(LEFT) y1=(H - BOTTOM) x2=(W) y2=(H - BOTTOM) stroke="#4a4a4a" stroke-width="1";
                text x=(LEFT - 6.0) y="16" text-anchor="end" font-size="12" fill="#1a1a1a" { (max) }
                text x=(LEFT - 6.0) y=(H - BOTTOM) text-anchor="end" font-size="12" fill="#1a1a1a" { "0" }
                @for (s, (colour, values)) in series.iter().enumerate() {
                    @for (i, v) in values.iter().enumerate() {
                        @if *v > 0 {
                            @let h = (*v as f64 / max as f64 * plot_h).max(1.0);
                            rect x=(format!("{:.1}", LEFT + i as f64 * slot + s as f64 * (bar + 1.0) + 0.5))
                                y=(format!("{:.1}", H - BOTTOM - h))
                                width=(format!("{bar:.1}")) height=(format!("{h:.1}")) fill=(colour);
                        }
                    }
                }
                @if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
                    text x=(LEFT) y=(H - 6.0) font-size="12" fill="#1a1a1a" { (first) }
                    text x=(W) y=(H - 6.0) text-anchor="end" font-size="12" fill="#1a1a1a" { (last) }
                }
            }
            details {
                summary { (summary) }
                table {
                    thead { tr {
                        th scope="col" { "KST" }
                        @for _ in series.iter() { th scope="col" { (t(title)) } }
                    } }
                    tbody {
                        @for (i, label) in labels.iter().enumerate() {
                            @if series.iter().any(|(_, v)| v.get(i).is_some_and(|x| *x != 0)) {
                                tr {
                                    th scope="row" { (label) }
                                    @for (_, values) in series.iter() { td { (values.get(i).copied().unwrap_or(0)) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_99th_percentile_is_the_bound_of_the_bucket_it_falls_in() {
        assert_eq!(p99(&[0; 7]), None);
        assert_eq!(p99(&[100, 0, 0, 0, 0, 0, 0]), Some(Some(10)));
        assert_eq!(p99(&[98, 1, 1, 0, 0, 0, 0]), Some(Some(50)));
        assert_eq!(p99(&[97, 1, 1, 1, 0, 0, 0]), Some(Some(100)));
        assert_eq!(p99(&[0, 0, 0, 0, 0, 0, 3]), Some(None));
    }

    #[test]
    fn the_page_reads_from_the_start_of_the_seoul_day_or_an_hour_ago() {
        // 00:30 in Seoul: an hour ago is yesterday, earlier than the day's start.
        let now = "2026-12-03T15:30:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(read_from(now), "2026-12-03T14:30");
        // 10:00 in Seoul: the day started at 15:00 UTC the day before.
        let now = "2026-12-04T01:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(read_from(now), "2026-12-03T15:00");
    }

    #[test]
    fn counts_fall_in_their_minute_and_only_todays_count_in_the_totals() {
        let now = "2026-12-04T01:00:30Z".parse::<DateTime<Utc>>().unwrap();
        let count = |minute: &str, figure: &str, count| ActivityCount {
            minute: minute.into(),
            figure: figure.into(),
            count,
        };
        let activity = [
            count("2026-12-03T14:59", "sign_ups", 7),
            count("2026-12-04T00:59", "sign_ups", 3),
            count("2026-12-04T01:00", "sign_ups", 2),
            count("2026-12-04T01:00", "unknown_figure", 2),
        ];
        let live = Live {
            now,
            activity: &activity,
            leases: &[],
            terminals: &[],
            sightings: &[],
        };
        let s = series(&live);
        let row = &s.by_minute["sign_ups"];
        assert_eq!((row[MINUTES - 2], row[MINUTES - 1]), (3, 2));
        assert_eq!(row.iter().sum::<i64>(), 5);
        assert_eq!(s.today["sign_ups"], 5, "14:59 UTC is yesterday in Seoul");
    }
}
