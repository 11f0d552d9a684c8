//! The receipt a counter prints for a hold: ESC/POS bytes for a thermal printer, and a
//! printable HTML page (large type) for a printer without ESC/POS or a screen.
//!
//! Korean on ESC/POS: the printer is put in its double-byte (Korean) character mode with
//! `FS &` and sent EUC-KR, the code page Korean receipt printers ship with. ASCII is the same
//! in EUC-KR. A character EUC-KR lacks prints as `?`.

use chrono::{DateTime, Utc};
use redemption_token::MemberNo;
use serde::Serialize;

use crate::redemption::{grouped, Hold, HoldId};

/// ESC @: initialize the printer.
pub const INIT: &[u8] = b"\x1b@";
/// FS &: double-byte (Kanji / Korean) character mode on.
pub const KOREAN_MODE: &[u8] = b"\x1c&";
/// GS V 66 0: feed to the cutter and cut (partial cut).
pub const CUT: &[u8] = b"\x1dVB\x00";

const CENTER: &[u8] = b"\x1ba\x01";
const LEFT: &[u8] = b"\x1ba\x00";
const BOLD_ON: &[u8] = b"\x1bE\x01";
const BOLD_OFF: &[u8] = b"\x1bE\x00";
/// GS ! 0x11: double width and double height.
const DOUBLE: &[u8] = b"\x1d!\x11";
const NORMAL: &[u8] = b"\x1d!\x00";

/// What a receipt shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// The store's name.
    pub store: String,
    /// When the hold was made.
    pub at: DateTime<Utc>,
    /// The member, masked when printed.
    pub member: MemberNo,
    /// Points spent (won).
    pub amount: u64,
    /// The member's points after it, as the counter knows them.
    pub remaining: u64,
    /// The hold's id, to void it or ask about it.
    pub hold_id: HoldId,
    /// Made offline: the server confirms it later.
    pub offline: bool,
}

impl Receipt {
    /// The receipt of `hold` at `store`.
    pub fn of(hold: &Hold, store: &str) -> Receipt {
        Receipt {
            store: store.to_owned(),
            at: hold.created_at,
            member: hold.member,
            amount: hold.amount,
            remaining: hold.remaining,
            hold_id: hold.id.clone(),
            offline: hold.offline,
        }
    }

    /// The lines below the title, in Korean, as label and value.
    fn rows(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "일시",
                format!(
                    "{} KST",
                    self.at
                        .with_timezone(&points_core::KST)
                        .format("%Y-%m-%d %H:%M:%S")
                ),
            ),
            ("회원번호", masked(self.member)),
            ("사용 포인트", format!("{}P", grouped(self.amount))),
            ("잔여 포인트", format!("{}P", grouped(self.remaining))),
            ("거래번호", self.hold_id.0.clone()),
        ]
    }

    /// The receipt as ESC/POS bytes.
    pub fn to_escpos(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(INIT);
        out.extend_from_slice(KOREAN_MODE);
        out.extend_from_slice(CENTER);
        out.extend_from_slice(BOLD_ON);
        out.extend_from_slice(DOUBLE);
        line(&mut out, TITLE);
        out.extend_from_slice(NORMAL);
        out.extend_from_slice(BOLD_OFF);
        line(&mut out, &self.store);
        out.extend_from_slice(LEFT);
        line(&mut out, RULE);
        for (label, value) in self.rows() {
            line(&mut out, &format!("{label}: {value}"));
        }
        line(&mut out, RULE);
        if self.offline {
            out.extend_from_slice(BOLD_ON);
            line(&mut out, OFFLINE_KO);
            out.extend_from_slice(BOLD_OFF);
            line(&mut out, OFFLINE_EN);
        }
        line(&mut out, FOOTER);
        out.extend_from_slice(b"\n\n\n");
        out.extend_from_slice(CUT);
        out
    }

    /// The receipt as a printable HTML page in large type.
    pub fn to_html(&self) -> String {
        let mut rows = String::new();
        for (label, value) in self.rows() {
            rows.push_str(&format!(
                "<tr><th>{}</th><td>{}</td></tr>\n",
                escape(label),
                escape(&value)
            ));
        }
        let offline = if self.offline {
            format!(
                "<p class=\"offline\">{}<br>{}</p>\n",
                escape(OFFLINE_KO),
                escape(OFFLINE_EN)
            )
        } else {
            String::new()
        };
        format!(
            "<!doctype html>\n<html lang=\"ko\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>{title} {id}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
             <h1>{title}</h1>\n<p class=\"store\">{store}</p>\n<table>\n{rows}</table>\n\
             {offline}<p>{footer}</p>\n</body>\n</html>\n",
            title = escape(TITLE),
            id = escape(&self.hold_id.0),
            store = escape(&self.store),
            footer = escape(FOOTER),
        )
    }
}

const TITLE: &str = "팔팔 포인트 사용";
const RULE: &str = "--------------------------------";
const OFFLINE_KO: &str = "오프라인 거래: 서버 확인 후 확정됩니다";
const OFFLINE_EN: &str = "offline - will be confirmed";
const FOOTER: &str = "1포인트 = 1원";
const STYLE: &str = "body { font-family: sans-serif; font-size: 28px; max-width: 40em; }\n\
h1 { font-size: 48px; text-align: center; }\n\
.store { text-align: center; font-size: 32px; }\n\
th { text-align: left; padding-right: 1em; }\n\
.offline { font-weight: bold; border: 3px solid; padding: 0.5em; }\n\
@media print { body { font-size: 20pt; } }\n";

/// A member number as printed: the prefix and the last four digits (`PP-****0042`).
pub fn masked(member: MemberNo) -> String {
    let full = member.to_string();
    let digits = full.trim_start_matches("PP-");
    let keep = digits.len().min(4);
    let (hidden, shown) = digits.split_at(digits.len() - keep);
    format!("PP-{}{shown}", "*".repeat(hidden.len()))
}

/// `text` in EUC-KR, then a line feed.
fn line(out: &mut Vec<u8>, text: &str) {
    let (bytes, _, unmapped) = encoding_rs::EUC_KR.encode(text);
    if unmapped {
        // encoding_rs writes an HTML numeric reference for a character EUC-KR lacks; a
        // printer would print it literally, so each such character becomes `?`.
        for c in text.chars() {
            let mut buf = [0u8; 4];
            let (b, _, unmapped) = encoding_rs::EUC_KR.encode(c.encode_utf8(&mut buf));
            out.extend_from_slice(if unmapped { b"?" } else { &b });
        }
    } else {
        out.extend_from_slice(&bytes);
    }
    out.push(b'\n');
}

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Lower-case hex, 16 bytes a line with the offset: how the docs show a receipt.
pub fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        out.push_str(&format!("{:04x}:", i * 16));
        for b in chunk {
            out.push_str(&format!(" {b:02x}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use expect_test::expect;

    use super::*;

    fn receipt(offline: bool) -> Receipt {
        Receipt {
            store: "행복약국 (Happy Pharmacy)".into(),
            at: DateTime::parse_from_rfc3339("2025-12-03T14:05:09+09:00")
                .unwrap()
                .with_timezone(&Utc),
            member: MemberNo(42),
            amount: 5_000,
            remaining: 12_340,
            hold_id: HoldId("H-0001".into()),
            offline,
        }
    }

    #[test]
    fn escpos_starts_with_init_korean_mode_and_a_double_bold_title() {
        let bytes = receipt(true).to_escpos();
        expect![[r#"
            0000: 1b 40 1c 26 1b 61 01 1b 45 01 1d 21 11 c6 c8 c6
            0010: c8 20 c6 f7 c0 ce c6 ae 20 bb e7 bf eb 0a 1d 21
            0020: 00 1b 45 00 c7 e0 ba b9 be e0 b1 b9 20 28 48 61
            0030: 70 70 79 20 50 68 61 72 6d 61 63 79 29 0a 1b 61
        "#]]
        .assert_eq(&hex_dump(&bytes[..64]));
        assert!(bytes.starts_with(b"\x1b@\x1c&\x1ba\x01\x1bE\x01\x1d!\x11"));
        assert!(bytes.ends_with(b"\n\n\n\x1dVB\x00"));
    }

    #[test]
    fn escpos_korean_decodes_back_from_euc_kr() {
        let bytes = receipt(true).to_escpos();
        let text: Vec<u8> = bytes
            .split(|b| *b == b'\n')
            .map(|l| {
                // Drop the commands before the text of each line.
                let mut l = l;
                while let Some(rest) = strip_command(l) {
                    l = rest;
                }
                l
            })
            .collect::<Vec<_>>()
            .join(&b'\n');
        let (decoded, _, errors) = encoding_rs::EUC_KR.decode(&text);
        assert!(!errors);
        expect![[r#"
            팔팔 포인트 사용
            행복약국 (Happy Pharmacy)
            --------------------------------
            일시: 2025-12-03 14:05:09 KST
            회원번호: PP-****0042
            사용 포인트: 5,000P
            잔여 포인트: 12,340P
            거래번호: H-0001
            --------------------------------
            오프라인 거래: 서버 확인 후 확정됩니다
            offline - will be confirmed
            1포인트 = 1원



        "#]]
        .assert_eq(&decoded);
    }

    /// The rest of `l` after one command this module writes, if it starts with one.
    fn strip_command(l: &[u8]) -> Option<&[u8]> {
        let len = match l {
            [0x1b, b'@', ..] | [0x1c, b'&', ..] => 2,
            [0x1b, b'a' | b'E', _, ..] | [0x1d, b'!', _, ..] => 3,
            [0x1d, b'V', b'B', _, ..] => 4,
            _ => return None,
        };
        Some(&l[len..])
    }

    #[test]
    fn online_receipt_says_nothing_about_confirmation() {
        let online = receipt(false).to_escpos();
        let offline = receipt(true).to_escpos();
        let mark = encoding_rs::EUC_KR.encode(OFFLINE_KO).0.into_owned();
        assert!(!online.windows(mark.len()).any(|w| w == mark.as_slice()));
        assert!(offline.windows(mark.len()).any(|w| w == mark.as_slice()));
        assert!(!receipt(false).to_html().contains(OFFLINE_EN));
        assert!(receipt(true).to_html().contains(OFFLINE_EN));
    }

    #[test]
    fn characters_outside_euc_kr_print_as_question_marks() {
        let mut out = Vec::new();
        line(&mut out, "약국 🙂 ok");
        assert_eq!(out, b"\xbe\xe0\xb1\xb9 ? ok\n");
    }

    #[test]
    fn html_page_in_large_type_escapes_the_store_name() {
        let mut r = receipt(true);
        r.store = "<b>약국</b> & 편의점".into();
        expect![[r#"
            <!doctype html>
            <html lang="ko">
            <head>
            <meta charset="utf-8">
            <title>팔팔 포인트 사용 H-0001</title>
            <style>
            body { font-family: sans-serif; font-size: 28px; max-width: 40em; }
            h1 { font-size: 48px; text-align: center; }
            .store { text-align: center; font-size: 32px; }
            th { text-align: left; padding-right: 1em; }
            .offline { font-weight: bold; border: 3px solid; padding: 0.5em; }
            @media print { body { font-size: 20pt; } }
            </style>
            </head>
            <body>
            <h1>팔팔 포인트 사용</h1>
            <p class="store">&lt;b&gt;약국&lt;/b&gt; &amp; 편의점</p>
            <table>
            <tr><th>일시</th><td>2025-12-03 14:05:09 KST</td></tr>
            <tr><th>회원번호</th><td>PP-****0042</td></tr>
            <tr><th>사용 포인트</th><td>5,000P</td></tr>
            <tr><th>잔여 포인트</th><td>12,340P</td></tr>
            <tr><th>거래번호</th><td>H-0001</td></tr>
            </table>
            <p class="offline">오프라인 거래: 서버 확인 후 확정됩니다<br>offline - will be confirmed</p>
            <p>1포인트 = 1원</p>
            </body>
            </html>
        "#]]
        .assert_eq(&r.to_html());
    }

    /// The example of `docs/counter-redemption.md`, byte for byte.
    #[test]
    fn docs_example_receipt() {
        let mut r = receipt(true);
        r.store = "행복약국".into();
        expect![[r#"
            0000: 1b 40 1c 26 1b 61 01 1b 45 01 1d 21 11 c6 c8 c6
            0010: c8 20 c6 f7 c0 ce c6 ae 20 bb e7 bf eb 0a 1d 21
            0020: 00 1b 45 00 c7 e0 ba b9 be e0 b1 b9 0a 1b 61 00
            0030: 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d
            0040: 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d
            0050: 0a c0 cf bd c3 3a 20 32 30 32 35 2d 31 32 2d 30
            0060: 33 20 31 34 3a 30 35 3a 30 39 20 4b 53 54 0a c8
            0070: b8 bf f8 b9 f8 c8 a3 3a 20 50 50 2d 2a 2a 2a 2a
            0080: 30 30 34 32 0a bb e7 bf eb 20 c6 f7 c0 ce c6 ae
            0090: 3a 20 35 2c 30 30 30 50 0a c0 dc bf a9 20 c6 f7
            00a0: c0 ce c6 ae 3a 20 31 32 2c 33 34 30 50 0a b0 c5
            00b0: b7 a1 b9 f8 c8 a3 3a 20 48 2d 30 30 30 31 0a 2d
            00c0: 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d
            00d0: 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 2d 0a
            00e0: 1b 45 01 bf c0 c7 c1 b6 f3 c0 ce 20 b0 c5 b7 a1
            00f0: 3a 20 bc ad b9 f6 20 c8 ae c0 ce 20 c8 c4 20 c8
            0100: ae c1 a4 b5 cb b4 cf b4 d9 0a 1b 45 00 6f 66 66
            0110: 6c 69 6e 65 20 2d 20 77 69 6c 6c 20 62 65 20 63
            0120: 6f 6e 66 69 72 6d 65 64 0a 31 c6 f7 c0 ce c6 ae
            0130: 20 3d 20 31 bf f8 0a 0a 0a 0a 1d 56 42 00
        "#]]
        .assert_eq(&hex_dump(&r.to_escpos()));
    }

    #[test]
    fn member_numbers_are_masked() {
        assert_eq!(masked(MemberNo(42)), "PP-****0042");
        assert_eq!(masked(MemberNo(123_456_789)), "PP-*****6789");
    }
}
