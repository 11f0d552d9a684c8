//! The store's daily settlement: the day's holds and voids (Asia/Seoul) with what the server
//! said about each, counted and summed, as CSV for the store's books and as a printable page.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use redemption_token::{MemberNo, TokenKind};
use serde::Serialize;

use crate::receipt::{escape, masked};
use crate::redemption::{grouped, Hold, HoldId, Outcome, Void};

/// How many and how many points.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Tally {
    /// How many.
    pub count: u64,
    /// Their points (won).
    pub points: u64,
}

impl Tally {
    fn add(&mut self, points: u64) {
        self.count += 1;
        self.points += points;
    }
}

/// Where one hold stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Taken from the member's points by the server.
    Posted,
    /// Not answered by the server yet.
    Pending,
    /// Refused by the server: the store collects the amount another way.
    Rejected {
        /// The server's reason code.
        reason: String,
    },
    /// Cancelled at the counter the same day.
    Voided,
}

impl Status {
    fn code(&self) -> &str {
        match self {
            Status::Posted => "posted",
            Status::Pending => "pending",
            Status::Rejected { .. } => "rejected",
            Status::Voided => "voided",
        }
    }

    fn ko(&self) -> &'static str {
        match self {
            Status::Posted => "확정",
            Status::Pending => "확인 대기",
            Status::Rejected { .. } => "거절",
            Status::Voided => "취소",
        }
    }
}

/// One hold of the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Line {
    /// The hold.
    pub hold_id: HoldId,
    /// When it was made.
    pub at: DateTime<Utc>,
    /// Its member.
    pub member: MemberNo,
    /// The token's kind.
    pub kind: TokenKind,
    /// Points.
    pub amount: u64,
    /// Made offline.
    pub offline: bool,
    /// Where it stands.
    pub status: Status,
}

/// A store's day at the counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Settlement {
    /// The store.
    pub store: String,
    /// The day, Asia/Seoul.
    pub day: NaiveDate,
    /// Every hold made that day, voided or not.
    pub redemptions: Tally,
    /// The holds voided.
    pub voids: Tally,
    /// Holds, not voided, the server posted.
    pub posted: Tally,
    /// Holds, not voided, the server has not answered for.
    pub pending: Tally,
    /// Holds, not voided, the server rejected: to collect another way.
    pub rejected: Tally,
    /// The day's holds in the order they were made.
    pub lines: Vec<Line>,
}

impl Settlement {
    /// Settles `day` (Asia/Seoul) from the counter's holds and voids and the server's
    /// outcomes by hold id. Holds of other days are left out.
    pub fn of_day(
        store: &str,
        day: NaiveDate,
        holds: &[Hold],
        voids: &[Void],
        outcomes: &BTreeMap<HoldId, Outcome>,
    ) -> Settlement {
        let voided: BTreeSet<&HoldId> = voids.iter().map(|v| &v.hold_id).collect();
        let mut day_holds: Vec<&Hold> = holds
            .iter()
            .filter(|h| points_core::kst_day(h.created_at) == day)
            .collect();
        day_holds.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        day_holds.dedup_by(|a, b| a.id == b.id);
        let mut s = Settlement {
            store: store.to_owned(),
            day,
            redemptions: Tally::default(),
            voids: Tally::default(),
            posted: Tally::default(),
            pending: Tally::default(),
            rejected: Tally::default(),
            lines: Vec::with_capacity(day_holds.len()),
        };
        for hold in day_holds {
            s.redemptions.add(hold.amount);
            let status = if voided.contains(&hold.id) {
                s.voids.add(hold.amount);
                Status::Voided
            } else {
                match outcomes.get(&hold.id) {
                    Some(Outcome::Posted) => {
                        s.posted.add(hold.amount);
                        Status::Posted
                    }
                    Some(Outcome::Rejected { reason }) => {
                        s.rejected.add(hold.amount);
                        Status::Rejected {
                            reason: reason.clone(),
                        }
                    }
                    None => {
                        s.pending.add(hold.amount);
                        Status::Pending
                    }
                }
            };
            s.lines.push(Line {
                hold_id: hold.id.clone(),
                at: hold.created_at,
                member: hold.member,
                kind: hold.kind,
                amount: hold.amount,
                offline: hold.offline,
                status,
            });
        }
        s
    }

    /// The figures as CSV: a header row, then one row per figure; points as integers.
    pub fn summary_csv(&self) -> String {
        let mut out = String::from("store,day,figure,count,points\n");
        for (name, t) in self.figures() {
            out.push_str(&csv_row(&[
                &self.store,
                &self.day.to_string(),
                name,
                &t.count.to_string(),
                &t.points.to_string(),
            ]));
        }
        out
    }

    /// The day's holds as CSV: a header row, then one row per hold; points as integers,
    /// times in Asia/Seoul, member numbers masked.
    pub fn lines_csv(&self) -> String {
        let mut out = String::from("hold_id,time_kst,member,kind,amount,offline,status,reason\n");
        for l in &self.lines {
            let reason = match &l.status {
                Status::Rejected { reason } => reason.as_str(),
                _ => "",
            };
            out.push_str(&csv_row(&[
                &l.hold_id.0,
                &l.at
                    .with_timezone(&points_core::KST)
                    .format("%H:%M:%S")
                    .to_string(),
                &masked(l.member),
                &l.kind.to_string(),
                &l.amount.to_string(),
                if l.offline { "true" } else { "false" },
                l.status.code(),
                reason,
            ]));
        }
        out
    }

    fn figures(&self) -> [(&'static str, Tally); 5] {
        [
            ("redemptions", self.redemptions),
            ("voids", self.voids),
            ("posted", self.posted),
            ("pending", self.pending),
            ("rejected", self.rejected),
        ]
    }

    /// The settlement as a printable HTML page in large type.
    pub fn to_html(&self) -> String {
        let labels = ["사용", "취소", "확정", "확인 대기", "거절"];
        let mut figures = String::new();
        for ((_, t), label) in self.figures().iter().zip(labels) {
            figures.push_str(&format!(
                "<tr><th>{label}</th><td>{}건</td><td>{}P</td></tr>\n",
                t.count,
                grouped(t.points)
            ));
        }
        let mut lines = String::new();
        for l in &self.lines {
            let reason = match &l.status {
                Status::Rejected { reason } => format!(" ({})", escape(reason)),
                _ => String::new(),
            };
            lines.push_str(&format!(
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}P</td><td>{}{}{reason}</td></tr>\n",
                l.status.code(),
                l.at.with_timezone(&points_core::KST).format("%H:%M"),
                escape(&l.hold_id.0),
                masked(l.member),
                grouped(l.amount),
                l.status.ko(),
                if l.offline { " · 오프라인" } else { "" },
            ));
        }
        let warning = if self.rejected.count > 0 {
            format!(
                "<p class=\"warning\">서버가 거절한 결제 {}건({}P)은 포인트로 결제되지 \
                 않았습니다. 회원에게 다른 방법으로 받거나 팔팔 고객센터에 문의해 주세요.</p>\n",
                self.rejected.count,
                grouped(self.rejected.points)
            )
        } else {
            String::new()
        };
        format!(
            "<!doctype html>\n<html lang=\"ko\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>팔팔 포인트 정산 {day}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
             <h1>팔팔 포인트 정산</h1>\n<p>{store} · {day}</p>\n{warning}\
             <table class=\"figures\">\n{figures}</table>\n\
             <table class=\"lines\">\n<tr><th>시각</th><th>거래번호</th><th>회원번호</th>\
             <th>금액</th><th>상태</th></tr>\n{lines}</table>\n</body>\n</html>\n",
            day = self.day,
            store = escape(&self.store),
        )
    }
}

const STYLE: &str = "body { font-family: sans-serif; font-size: 24px; }\n\
h1 { font-size: 40px; }\n\
table { border-collapse: collapse; margin: 1em 0; }\n\
th, td { border: 1px solid; padding: 0.2em 0.6em; text-align: left; }\n\
.rejected, .warning { font-weight: bold; }\n\
@media print { body { font-size: 16pt; } }\n";

/// One CSV row (RFC 4180). A field that a spreadsheet would run as a formula gets a leading
/// `'`: reasons come from the server and store names from configuration.
fn csv_row(fields: &[&str]) -> String {
    let mut row = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            row.push(',');
        }
        let f = if f.starts_with(['=', '+', '-', '@']) {
            format!("'{f}")
        } else {
            (*f).to_owned()
        };
        if f.contains([',', '"', '\n', '\r']) {
            row.push('"');
            row.push_str(&f.replace('"', "\"\""));
            row.push('"');
        } else {
            row.push_str(&f);
        }
    }
    row.push('\n');
    row
}

/// The name of a site's settlement file for `day`, `settlement-<site>-<day>.csv`. The site
/// comes from the terminal's configuration, so only its letters, digits, `-` and `_` are kept
/// (anything else, such as `/`, `.` or a space, becomes `_`), at most 48 of them: no
/// configuration can make the file land outside its folder or hide its name.
pub fn file_name(site: &str, day: NaiveDate) -> String {
    let mut name = String::new();
    for c in site.trim().chars().take(48) {
        let keep = c.is_alphanumeric() || c == '-' || c == '_';
        let c = if keep { c } else { '_' };
        if !(c == '_' && name.ends_with('_')) {
            name.push(c);
        }
    }
    let name = name.trim_matches('_');
    let name = if name.is_empty() { "site" } else { name };
    format!("settlement-{name}-{day}.csv")
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};

    use super::*;

    fn kst(at: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2025-{at}:00+09:00"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn hold(id: &str, at: &str, amount: u64, offline: bool) -> Hold {
        Hold {
            id: HoldId(id.into()),
            member: MemberNo(1234),
            amount,
            kind: if offline {
                TokenKind::Card
            } else {
                TokenKind::Dynamic
            },
            token_id: None,
            card_serial: None,
            created_at: kst(at),
            offline,
            remaining: 0,
        }
    }

    fn void(id: &str, at: &str) -> Void {
        Void {
            hold_id: HoldId(id.into()),
            member: MemberNo(1234),
            amount: 0,
            at: kst(at),
        }
    }

    fn day() -> Settlement {
        let holds = [
            hold("H-1", "12-03T09:00", 5_000, false),
            hold("H-2", "12-03T10:00", 3_000, true),
            hold("H-3", "12-03T11:00", 2_000, true),
            hold("H-4", "12-03T12:00", 1_500, true),
            hold("H-5", "12-03T23:59", 700, false),
            hold("H-0", "12-02T23:59", 9_999, false), // yesterday
            hold("H-6", "12-04T00:00", 9_999, false), // tomorrow
        ];
        let voids = [void("H-2", "12-03T10:05")];
        let outcomes = BTreeMap::from([
            (HoldId("H-1".into()), Outcome::Posted),
            (HoldId("H-2".into()), Outcome::Posted),
            (
                HoldId("H-3".into()),
                Outcome::Rejected {
                    reason: "overspent".into(),
                },
            ),
            (HoldId("H-5".into()), Outcome::Posted),
        ]);
        Settlement::of_day(
            "행복약국, 종로점",
            kst("12-03T12:00").date_naive(),
            &holds,
            &voids,
            &outcomes,
        )
    }

    fn check(actual: &str, expect: Expect) {
        expect.assert_eq(actual);
    }

    #[test]
    fn counts_and_sums_each_status() {
        let s = day();
        let t = |count, points| Tally { count, points };
        assert_eq!(s.redemptions, t(5, 12_200));
        assert_eq!(s.voids, t(1, 3_000));
        assert_eq!(s.posted, t(2, 5_700));
        assert_eq!(s.rejected, t(1, 2_000));
        assert_eq!(s.pending, t(1, 1_500));
        // Every hold is in exactly one of voided, posted, rejected, pending.
        let parts = [s.voids, s.posted, s.rejected, s.pending];
        assert_eq!(
            parts.iter().map(|t| t.count).sum::<u64>(),
            s.redemptions.count
        );
        assert_eq!(
            parts.iter().map(|t| t.points).sum::<u64>(),
            s.redemptions.points
        );
    }

    #[test]
    fn the_file_name_keeps_only_the_stores_letters_and_digits() {
        let named = |site: &str| file_name(site, day().day);
        assert_eq!(named("성북약국"), "settlement-성북약국-2025-12-03.csv");
        assert_eq!(
            named(" 종로 온누리약국 2호점 "),
            "settlement-종로_온누리약국_2호점-2025-12-03.csv"
        );
        assert_eq!(
            named("../../etc/cron.d/x"),
            "settlement-etc_cron_d_x-2025-12-03.csv"
        );
        assert_eq!(named("/"), "settlement-site-2025-12-03.csv");
        assert_eq!(
            named("a\u{202E}vsc.exe\n"),
            "settlement-a_vsc_exe-2025-12-03.csv"
        );
        assert_eq!(
            named(&"가".repeat(300)).chars().count(),
            "settlement--2025-12-03.csv".len() + 48
        );
    }

    #[test]
    fn csv_has_a_header_and_integer_amounts() {
        let s = day();
        check(
            &s.summary_csv(),
            expect![[r#"
                store,day,figure,count,points
                "행복약국, 종로점",2025-12-03,redemptions,5,12200
                "행복약국, 종로점",2025-12-03,voids,1,3000
                "행복약국, 종로점",2025-12-03,posted,2,5700
                "행복약국, 종로점",2025-12-03,pending,1,1500
                "행복약국, 종로점",2025-12-03,rejected,1,2000
            "#]],
        );
        check(
            &s.lines_csv(),
            expect![[r#"
                hold_id,time_kst,member,kind,amount,offline,status,reason
                H-1,09:00:00,PP-****1234,dynamic,5000,false,posted,
                H-2,10:00:00,PP-****1234,card,3000,true,voided,
                H-3,11:00:00,PP-****1234,card,2000,true,rejected,overspent
                H-4,12:00:00,PP-****1234,card,1500,true,pending,
                H-5,23:59:00,PP-****1234,dynamic,700,false,posted,
            "#]],
        );
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        check(
            &csv_row(&["a,b", "say \"hi\"", "=SUM(A1)", "-1", "plain"]),
            expect![[r#"
                "a,b","say ""hi""",'=SUM(A1),'-1,plain
            "#]],
        );
    }

    #[test]
    fn html_report_warns_about_rejected_holds() {
        check(
            &day().to_html(),
            expect![[r#"
                <!doctype html>
                <html lang="ko">
                <head>
                <meta charset="utf-8">
                <title>팔팔 포인트 정산 2025-12-03</title>
                <style>
                body { font-family: sans-serif; font-size: 24px; }
                h1 { font-size: 40px; }
                table { border-collapse: collapse; margin: 1em 0; }
                th, td { border: 1px solid; padding: 0.2em 0.6em; text-align: left; }
                .rejected, .warning { font-weight: bold; }
                @media print { body { font-size: 16pt; } }
                </style>
                </head>
                <body>
                <h1>팔팔 포인트 정산</h1>
                <p>행복약국, 종로점 · 2025-12-03</p>
                <p class="warning">서버가 거절한 결제 1건(2,000P)은 포인트로 결제되지 않았습니다. 회원에게 다른 방법으로 받거나 팔팔 고객센터에 문의해 주세요.</p>
                <table class="figures">
                <tr><th>사용</th><td>5건</td><td>12,200P</td></tr>
                <tr><th>취소</th><td>1건</td><td>3,000P</td></tr>
                <tr><th>확정</th><td>2건</td><td>5,700P</td></tr>
                <tr><th>확인 대기</th><td>1건</td><td>1,500P</td></tr>
                <tr><th>거절</th><td>1건</td><td>2,000P</td></tr>
                </table>
                <table class="lines">
                <tr><th>시각</th><th>거래번호</th><th>회원번호</th><th>금액</th><th>상태</th></tr>
                <tr class="posted"><td>09:00</td><td>H-1</td><td>PP-****1234</td><td>5,000P</td><td>확정</td></tr>
                <tr class="voided"><td>10:00</td><td>H-2</td><td>PP-****1234</td><td>3,000P</td><td>취소 · 오프라인</td></tr>
                <tr class="rejected"><td>11:00</td><td>H-3</td><td>PP-****1234</td><td>2,000P</td><td>거절 · 오프라인 (overspent)</td></tr>
                <tr class="pending"><td>12:00</td><td>H-4</td><td>PP-****1234</td><td>1,500P</td><td>확인 대기 · 오프라인</td></tr>
                <tr class="posted"><td>23:59</td><td>H-5</td><td>PP-****1234</td><td>700P</td><td>확정</td></tr>
                </table>
                </body>
                </html>
            "#]],
        );
    }

    #[test]
    fn an_empty_day_has_only_headers_and_zeros() {
        let s = Settlement::of_day(
            "약국",
            kst("12-03T12:00").date_naive(),
            &[],
            &[],
            &BTreeMap::new(),
        );
        assert_eq!(
            s.lines_csv(),
            "hold_id,time_kst,member,kind,amount,offline,status,reason\n"
        );
        assert!(s.summary_csv().ends_with("약국,2025-12-03,rejected,0,0\n"));
        assert!(!s.to_html().contains("warning\">"));
    }
}
