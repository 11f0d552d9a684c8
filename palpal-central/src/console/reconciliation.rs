//! The Reconciliation page: for a day (Asia/Seoul), the holds each counter took, by site and
//! terminal: posted, voided and refused (not covered by the balance, or a token used again),
//! with their points; the members overspent that day with every hold of theirs; and both as
//! CSV. Read-only: it changes nothing.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use maud::{html, Markup};

use super::csv;
use super::text::{Lang, T};
use crate::store::{HoldCount, Terminal};
use crate::wire::HoldLine;

/// The statuses a hold ends in, in the order the tables show them.
pub const STATUSES: [&str; 4] = ["posted", "voided", "insufficient", "token_reused"];

/// One terminal's day: for each of [`STATUSES`], how many holds and their points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalDay {
    pub label: String,
    pub site: String,
    pub counts: [(i64, i64); 4],
}

/// The terminals with holds on the day, by site and then label, from the store's totals.
pub fn by_terminal(terminals: &[Terminal], totals: &[HoldCount]) -> Vec<TerminalDay> {
    let known: BTreeMap<i64, &Terminal> = terminals.iter().map(|t| (t.id, t)).collect();
    let mut days: BTreeMap<i64, TerminalDay> = BTreeMap::new();
    for total in totals {
        let Some(slot) = STATUSES.iter().position(|s| *s == total.status) else {
            continue;
        };
        let day = days.entry(total.terminal).or_insert_with(|| TerminalDay {
            label: crate::store::terminal_label(total.terminal),
            site: known
                .get(&total.terminal)
                .map(|t| t.site.clone())
                .unwrap_or_default(),
            counts: [(0, 0); 4],
        });
        day.counts[slot].0 += total.count;
        day.counts[slot].1 += total.points;
    }
    let mut out: Vec<TerminalDay> = days.into_values().collect();
    out.sort_by(|a, b| (&a.site, &a.label).cmp(&(&b.site, &b.label)));
    out
}

fn status_name(status: &str) -> T {
    match status {
        "posted" => T::HoldsPosted,
        "voided" => T::HoldsVoided,
        "insufficient" => T::HoldsInsufficient,
        _ => T::HoldsTokenReused,
    }
}

/// The page: the day asked for, the terminals' totals with a subtotal per site and the day's
/// total, and the overspends.
pub fn page(lang: Lang, day: NaiveDate, rows: &[TerminalDay], overspend: &[HoldLine]) -> Markup {
    let t = |text: T| text.get(lang);
    let mut sites: BTreeMap<&str, [(i64, i64); 4]> = BTreeMap::new();
    let mut all = [(0, 0); 4];
    for row in rows {
        let site = sites.entry(row.site.as_str()).or_insert([(0, 0); 4]);
        for (i, (n, p)) in row.counts.iter().enumerate() {
            site[i].0 += n;
            site[i].1 += p;
            all[i].0 += n;
            all[i].1 += p;
        }
    }
    let cells = |counts: &[(i64, i64); 4]| {
        html! {
            @for (n, p) in counts {
                td { (n) } td { (p) }
            }
        }
    };
    html! {
        p.lead { (t(T::ReconciliationIntro)) }
        form.row method="get" action="/console/reconciliation" {
            div.field {
                label for="day" { (t(T::Day)) }
                input #day type="date" name="day" value=(day.to_string()) required;
            }
            button type="submit" { (t(T::Show)) }
        }
        p {
            a href={ "/console/reconciliation.csv?day=" (day) } { (t(T::DownloadTotalsCsv)) }
            " · "
            a href={ "/console/overspend.csv?day=" (day) } { (t(T::DownloadOverspendCsv)) }
        }
        h2 { (t(T::HoldsByTerminal)) " (" (day) ")" }
        @if rows.is_empty() {
            p { (t(T::NoHoldsThatDay)) }
        } @else {
            div.scroll {
                table {
                    caption.visually-hidden { (t(T::HoldsByTerminal)) }
                    thead {
                        tr {
                            th scope="col" rowspan="2" { (t(T::Site)) }
                            th scope="col" rowspan="2" { (t(T::Terminal)) }
                            @for status in STATUSES {
                                th scope="colgroup" colspan="2" { (t(status_name(status))) }
                            }
                        }
                        tr {
                            @for _ in STATUSES {
                                th scope="col" { (t(T::Count)) }
                                th scope="col" { (t(T::PointsColumn)) }
                            }
                        }
                    }
                    tbody {
                        @for row in rows {
                            tr {
                                td { (row.site) }
                                th scope="row" { (row.label) }
                                (cells(&row.counts))
                            }
                        }
                        @for (site, counts) in &sites {
                            tr.subtotal {
                                td { (site) }
                                th scope="row" { (t(T::SiteTotal)) }
                                (cells(counts))
                            }
                        }
                        tr.subtotal {
                            td {}
                            th scope="row" { (t(T::DayTotal)) }
                            (cells(&all))
                        }
                    }
                }
            }
        }
        h2 { (t(T::OverspendHeading)) }
        p.hint { (t(T::OverspendIntro)) }
        @if overspend.is_empty() {
            p { (t(T::NoOverspend)) }
        } @else {
            div.scroll {
                table {
                    caption.visually-hidden { (t(T::OverspendHeading)) }
                    thead { tr {
                        th scope="col" { (t(T::MemberNumber)) }
                        th scope="col" { (t(T::Terminal)) }
                        th scope="col" { (t(T::HeldAt)) }
                        th scope="col" { (t(T::HoldStatus)) }
                        th scope="col" { (t(T::PointsColumn)) }
                        th scope="col" { (t(T::BalanceBefore)) }
                    } }
                    tbody {
                        @for line in overspend {
                            tr {
                                th scope="row" { (line.member_number) }
                                td { (line.terminal) }
                                td { (line.held_at) }
                                td { (t(status_name(&line.status))) }
                                td { (line.amount) }
                                td { (line.balance_before) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The terminals' totals as CSV, one row per terminal.
pub fn totals_csv(day: NaiveDate, rows: &[TerminalDay]) -> String {
    let mut header = vec!["day".to_owned(), "site".to_owned(), "terminal".to_owned()];
    for status in STATUSES {
        header.push(format!("{status}_count"));
        header.push(format!("{status}_points"));
    }
    let mut out = csv::row(header.iter().map(String::as_str));
    let day = day.to_string();
    for row in rows {
        let mut cells = vec![day.clone(), row.site.clone(), row.label.clone()];
        for (n, p) in row.counts {
            cells.push(n.to_string());
            cells.push(p.to_string());
        }
        out.push_str(&csv::row(cells.iter().map(String::as_str)));
    }
    out
}

/// The overspent members' holds as CSV.
pub fn overspend_csv(day: NaiveDate, lines: &[HoldLine]) -> String {
    let mut out = csv::row([
        "day",
        "member_number",
        "terminal",
        "op_id",
        "token_id",
        "held_at",
        "status",
        "amount",
        "balance_before",
    ]);
    let day = day.to_string();
    for line in lines {
        let (amount, before) = (line.amount.to_string(), line.balance_before.to_string());
        out.push_str(&csv::row([
            day.as_str(),
            &line.member_number,
            &line.terminal,
            &line.op_id,
            &line.token_id,
            &line.held_at,
            &line.status,
            &amount,
            &before,
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminal(id: i64, site: &str) -> Terminal {
        Terminal {
            id,
            site: site.to_owned(),
            role: crate::wire::Role::Counter,
            name: None,
            public_key: None,
            revoked: false,
        }
    }

    fn count(terminal: i64, status: &str, count: i64, points: i64) -> HoldCount {
        HoldCount {
            terminal,
            status: status.to_owned(),
            count,
            points,
        }
    }

    #[test]
    fn totals_are_gathered_by_terminal_in_site_order() {
        let terminals = [terminal(1, "종로 약국"), terminal(2, "성북 약국")];
        let rows = by_terminal(
            &terminals,
            &[
                count(1, "posted", 3, 1_500),
                count(1, "voided", 1, 500),
                count(2, "insufficient", 2, 9_000),
                count(2, "unknown", 5, 5),
            ],
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].label, "T-000002");
        assert_eq!(rows[0].counts, [(0, 0), (0, 0), (2, 9_000), (0, 0)]);
        assert_eq!(rows[1].counts, [(3, 1_500), (1, 500), (0, 0), (0, 0)]);
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default();
        let text = totals_csv(day, &rows);
        assert!(text.starts_with(
            "day,site,terminal,posted_count,posted_points,voided_count,voided_points,"
        ));
        assert!(text.contains("2026-12-04,종로 약국,T-000001,3,1500,1,500,0,0,0,0\r\n"));
    }
}
