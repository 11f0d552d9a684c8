//! The member card a new member takes home: a QR code holding the card's redemption token
//! (`PP1:...`, signed by the server, with the PIN check; `docs/redemption-token.md`), drawn
//! as SVG for the screen and the printable page, and as ESC/POS bytes for a receipt printer.
//! Until the server has signed the card (offline, or the sign-up not yet sent), the same
//! layout is a sign-up receipt whose QR code holds the enrollment's operation id.
//!
//! ESC/POS Korean: the printer goes into its double-byte mode (`FS &`) and is sent EUC-KR,
//! as the counter's receipts are (`merchant-core`'s `receipt`). The QR code is printed by the
//! printer itself (`GS ( k`, model 2), so it stays sharp at any printer resolution.

use chrono::{Datelike, NaiveDate};
use qrcode::{EcLevel, QrCode};
use serde::Serialize;

/// ESC @: initialize the printer.
const INIT: &[u8] = b"\x1b@";
/// FS &: double-byte (Korean) character mode on.
const KOREAN_MODE: &[u8] = b"\x1c&";
/// GS V 66 0: feed to the cutter and cut.
const CUT: &[u8] = b"\x1dVB\x00";
const CENTER: &[u8] = b"\x1ba\x01";
const LEFT: &[u8] = b"\x1ba\x00";
const DOUBLE: &[u8] = b"\x1d!\x11";
const NORMAL: &[u8] = b"\x1d!\x00";

/// What a member card shows. Only the masked name: the card may be lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberCard {
    /// What the QR code holds: the card's signed token, or (a receipt) the enrollment's op id.
    pub qr_content: String,
    /// Whether this is the member card (a signed token a counter takes with the PIN) or,
    /// until the server signs one, the sign-up receipt.
    pub signed: bool,
    /// The member number, once the server has assigned one.
    pub member_no: Option<String>,
    /// The local receipt number at this kiosk (`0001`).
    pub receipt_no: String,
    /// The name with its middle hidden (`김*수`).
    pub masked_name: String,
    pub site_name: String,
    pub issued: NaiveDate,
}

/// Why the QR code could not be drawn (content too long for any QR version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the card's content cannot be drawn as a QR code: {0}")]
pub struct QrError(String);

impl MemberCard {
    /// The QR code as an SVG image with a quiet zone, black on white.
    pub fn qr_svg(&self) -> Result<String, QrError> {
        qr_svg(&self.qr_content)
    }

    /// ESC/POS bytes for a receipt printer: title, QR code, number, masked name, site, day.
    pub fn to_escpos(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(INIT);
        out.extend_from_slice(KOREAN_MODE);
        out.extend_from_slice(CENTER);
        out.extend_from_slice(DOUBLE);
        let (title_ko, title_en) = self.title();
        line(&mut out, title_ko);
        out.extend_from_slice(NORMAL);
        line(&mut out, title_en);
        qr_escpos(&mut out, &self.qr_content);
        out.extend_from_slice(LEFT);
        match &self.member_no {
            Some(no) => line(&mut out, &format!("회원번호 {no}")),
            None => line(&mut out, "회원번호: 서버 확인 후 발급 (QR로 조회)"),
        }
        line(&mut out, &format!("접수번호 {}", self.receipt_no));
        line(&mut out, &format!("이름 {}", self.masked_name));
        line(
            &mut out,
            &format!("가입 {} {}", self.site_name, date_ko(self.issued)),
        );
        let (note_ko, note_en) = self.note();
        line(&mut out, note_ko);
        line(&mut out, note_en);
        out.extend_from_slice(b"\n\n\n");
        out.extend_from_slice(CUT);
        out
    }

    /// The title, Korean and English: a member card, or a sign-up receipt.
    pub fn title(&self) -> (&'static str, &'static str) {
        if self.signed {
            ("팔팔 회원 카드", "Palpal member card")
        } else {
            ("팔팔 가입 접수증", "Palpal sign-up receipt")
        }
    }

    /// The line under the card's details, Korean and English: what the member needs to know.
    pub fn note(&self) -> (&'static str, &'static str) {
        if self.signed {
            (
                "포인트를 쓸 때 카드 비밀번호 6자리를 누릅니다. 비밀번호는 적어 두지 마세요.",
                "Spending points needs the card's 6-digit PIN. Do not write the PIN down.",
            )
        } else {
            (
                "가입은 완료되었습니다. 회원 카드는 서버 확인 후 이 키오스크에서 받으세요.",
                "You are signed up. Get your member card at this kiosk once the server confirms.",
            )
        }
    }

    /// A printable page (large type) with the QR code, for a printer without ESC/POS.
    pub fn to_html(&self) -> Result<String, QrError> {
        let number = match &self.member_no {
            Some(no) => format!("회원번호 Member no. {}", escape(no)),
            None => "회원번호는 서버 확인 후 발급됩니다 · Member number follows".to_owned(),
        };
        let (title_ko, title_en) = self.title();
        let (note_ko, note_en) = self.note();
        Ok(format!(
            "<!doctype html><html lang=\"ko\"><head><meta charset=\"utf-8\"><title>{title_ko}</title>\
<style>{PAGE_CSS}</style></head><body><main class=\"card\">\
<h1>{title_ko} <span lang=\"en\">{title_en}</span></h1>\
<div class=\"qr\">{svg}</div>\
<p class=\"number\">{number}</p>\
<p>접수번호 Receipt no. {receipt}</p>\
<p>이름 Name {name}</p>\
<p>{site} · {day}</p>\
<p class=\"note\">{note_ko}<br><span lang=\"en\">{note_en}</span></p>\
</main></body></html>\n",
            svg = self.qr_svg()?,
            receipt = escape(&self.receipt_no),
            name = escape(&self.masked_name),
            site = escape(&self.site_name),
            day = self.issued.format("%Y-%m-%d"),
        ))
    }
}

const PAGE_CSS: &str = "body { font-family: 'Noto Sans CJK KR', sans-serif; font-size: 20pt; color: #000; background: #fff; margin: 1cm; }\
.card { border: 4px solid #000; border-radius: 0.5cm; padding: 0.8cm; max-width: 14cm; }\
h1 { font-size: 1.3em; margin: 0 0 0.4em; } .qr svg { width: 6cm; height: 6cm; }\
.number { font-weight: bold; } p { margin: 0.2em 0; } .note { font-size: 0.8em; margin-top: 0.6em; }";

/// Why a card PIN the member chose is not taken. The member types it twice on the kiosk's
/// keypad; the PIN itself never leaves the kiosk (only its check goes on the card).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinRefusal {
    /// Not exactly six digits.
    NotSixDigits,
    /// The two entries differ.
    Mismatch,
    /// All one digit, or six digits in a row up or down (`111111`, `123456`, `987654`).
    TooEasy,
}

impl PinRefusal {
    /// Every code [`PinRefusal::code`] gives, for the UI's closed set of error codes.
    pub const CODES: [&'static str; 3] = ["pin_invalid", "pin_mismatch", "pin_too_easy"];

    /// A stable code for the UI.
    pub fn code(self) -> &'static str {
        match self {
            PinRefusal::NotSixDigits => "pin_invalid",
            PinRefusal::Mismatch => "pin_mismatch",
            PinRefusal::TooEasy => "pin_too_easy",
        }
    }

    /// Korean, saying what to do next.
    pub fn ko(self) -> &'static str {
        match self {
            PinRefusal::NotSixDigits => "카드 비밀번호는 숫자 6자리입니다. 숫자 6개를 눌러 주세요.",
            PinRefusal::Mismatch => {
                "두 번 누른 비밀번호가 서로 다릅니다. 처음부터 다시 눌러 주세요."
            }
            PinRefusal::TooEasy => {
                "같은 숫자나 이어지는 숫자(예: 111111, 123456)는 쓸 수 없습니다. 다른 번호를 정해 주세요."
            }
        }
    }

    /// English.
    pub fn en(self) -> &'static str {
        match self {
            PinRefusal::NotSixDigits => "The card PIN is 6 digits. Press six numbers.",
            PinRefusal::Mismatch => "The two PINs differ. Enter it again from the start.",
            PinRefusal::TooEasy => {
                "One digit repeated or digits in a row (such as 111111, 123456) cannot be used. Choose another PIN."
            }
        }
    }
}

/// Why the central server would not sign a member card the kiosk asked for, by the server's
/// refusal code, with what the kiosk tells the member. The sign-up stands in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardRefusal {
    /// The server issues no member cards (`cards_not_issued`).
    NotIssued,
    /// The member's card was issued already, with another PIN (`card_exists`).
    Exists,
    /// A kiosk issues only the first card of a member who signed up there
    /// (`card_not_allowed`).
    NotAllowed,
    /// The server knows no member with that number yet (`unknown_member`).
    UnknownMember,
}

impl CardRefusal {
    /// The refusal the server's `code` names; `None` for a code that is not a card refusal
    /// (overload, a clock problem: the card is then for later).
    pub fn from_code(code: &str) -> Option<CardRefusal> {
        match code {
            "cards_not_issued" => Some(CardRefusal::NotIssued),
            "card_exists" => Some(CardRefusal::Exists),
            "card_not_allowed" => Some(CardRefusal::NotAllowed),
            "unknown_member" => Some(CardRefusal::UnknownMember),
            _ => None,
        }
    }

    /// Every code [`CardRefusal::code`] gives, for the UI's closed set of error codes.
    pub const CODES: [&'static str; 4] = [
        "cards_not_issued",
        "card_exists",
        "card_not_allowed",
        "unknown_member",
    ];

    /// The stable code, the server's own.
    pub fn code(self) -> &'static str {
        match self {
            CardRefusal::NotIssued => "cards_not_issued",
            CardRefusal::Exists => "card_exists",
            CardRefusal::NotAllowed => "card_not_allowed",
            CardRefusal::UnknownMember => "unknown_member",
        }
    }

    /// Korean, saying what to do next.
    pub fn ko(self) -> &'static str {
        match self {
            CardRefusal::NotIssued => "이 서버는 회원 카드를 발급하지 않습니다. 가입은 접수증으로 완료되었으니 운영 센터에 카드 발급을 문의해 주세요.",
            CardRefusal::Exists => "이 회원의 카드는 이미 다른 비밀번호로 발급되었습니다. 처음 정한 비밀번호를 입력하시거나, 재발급은 운영 센터에 문의해 주세요.",
            CardRefusal::NotAllowed => "키오스크는 그곳에서 가입한 회원의 첫 카드만 발급합니다. 재발급은 운영 센터에 문의해 주세요.",
            CardRefusal::UnknownMember => "서버에 없는 회원번호입니다. 가입이 서버에 전송된 뒤 다시 시도해 주세요.",
        }
    }

    /// English.
    pub fn en(self) -> &'static str {
        match self {
            CardRefusal::NotIssued => "This server does not issue member cards. The sign-up is complete with its receipt; ask the operator for a card.",
            CardRefusal::Exists => "This member's card was already issued with another PIN. Enter the PIN chosen first, or ask the operator for a new card.",
            CardRefusal::NotAllowed => "A kiosk issues only the first card of members who signed up there; ask the operator for a new card.",
            CardRefusal::UnknownMember => "No member has this number on the server; try again once the sign-up has been sent.",
        }
    }
}

/// Checks the PIN a member chose for their card, typed twice.
pub fn check_pin(pin: &str, again: &str) -> Result<(), PinRefusal> {
    let digits: Vec<u8> = pin.bytes().collect();
    if digits.len() != 6 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(PinRefusal::NotSixDigits);
    }
    if pin != again {
        return Err(PinRefusal::Mismatch);
    }
    let steps: Vec<i16> = digits
        .windows(2)
        .map(|w| i16::from(w[1]) - i16::from(w[0]))
        .collect();
    if steps.iter().all(|&d| d == 0)
        || steps.iter().all(|&d| d == 1)
        || steps.iter().all(|&d| d == -1)
    {
        return Err(PinRefusal::TooEasy);
    }
    Ok(())
}

/// The QR code of `content` as SVG, medium error correction, 4-module quiet zone.
pub fn qr_svg(content: &str) -> Result<String, QrError> {
    let code = QrCode::with_error_correction_level(content.as_bytes(), EcLevel::M)
        .map_err(|e| QrError(e.to_string()))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .quiet_zone(true)
        .build())
}

/// The name with its middle hidden: `김영수` → `김*수`, `이수` → `이*`, `Lee Haneul` →
/// `L********l`. Spaces count as hidden letters.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".to_owned(),
        2 => format!("{}*", chars[0]),
        n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
    }
}

/// A phone number with all but its last four digits hidden, the digits grouped as typed
/// in Korea: `01012345678` → `010-****-5678`; other lengths `***5678`. Only digits count.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len();
    if n <= 4 {
        return "*".repeat(n);
    }
    let last: String = digits[n - 4..].iter().collect();
    match n {
        11 if digits.starts_with(&['0', '1']) => {
            format!("{}-****-{last}", digits[..3].iter().collect::<String>())
        }
        _ => format!("{}{last}", "*".repeat(n - 4)),
    }
}

fn date_ko(d: NaiveDate) -> String {
    format!("{}년 {}월 {}일", d.year(), d.month(), d.day())
}

/// GS ( k: store the QR data (model 2, module size 8, error correction M) and print it.
fn qr_escpos(out: &mut Vec<u8>, content: &str) {
    out.extend_from_slice(b"\x1d(k\x04\x001A2\x00"); // model 2
    out.extend_from_slice(b"\x1d(k\x03\x001C\x08"); // module size 8 dots
    out.extend_from_slice(b"\x1d(k\x03\x001E1"); // error correction M
    let data = content.as_bytes();
    let len = data.len() + 3;
    out.extend_from_slice(b"\x1d(k");
    out.push((len % 256) as u8);
    out.push((len / 256) as u8);
    out.extend_from_slice(b"1P0");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\x1d(k\x03\x001Q0"); // print
    out.push(b'\n');
}

/// `text` in EUC-KR and a line feed; a character EUC-KR lacks prints as `?`.
fn line(out: &mut Vec<u8>, text: &str) {
    for c in text.chars() {
        let mut buf = [0u8; 4];
        let (b, _, unmapped) = encoding_rs::EUC_KR.encode(c.encode_utf8(&mut buf));
        out.extend_from_slice(if unmapped { b"?" } else { &b });
    }
    out.push(b'\n');
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_card_refusal_is_known_by_the_servers_code_and_anything_else_is_for_later() {
        use super::{CardRefusal, PinRefusal};
        for r in [
            CardRefusal::NotIssued,
            CardRefusal::Exists,
            CardRefusal::NotAllowed,
            CardRefusal::UnknownMember,
        ] {
            assert_eq!(CardRefusal::from_code(r.code()), Some(r));
            assert!(!r.ko().is_empty() && !r.en().is_empty());
        }
        let codes: Vec<&str> = [
            CardRefusal::NotIssued,
            CardRefusal::Exists,
            CardRefusal::NotAllowed,
            CardRefusal::UnknownMember,
        ]
        .iter()
        .map(|r| r.code())
        .collect();
        assert_eq!(codes, CardRefusal::CODES);
        let pins: Vec<&str> = [
            PinRefusal::NotSixDigits,
            PinRefusal::Mismatch,
            PinRefusal::TooEasy,
        ]
        .iter()
        .map(|r| r.code())
        .collect();
        assert_eq!(pins, PinRefusal::CODES);
        assert_eq!(CardRefusal::from_code("overloaded"), None);
        assert_eq!(CardRefusal::from_code(""), None);
    }

    use super::*;

    fn card(member_no: Option<&str>) -> MemberCard {
        MemberCard {
            qr_content: member_no.map_or("3f1c0a52-op", |_| "PP1:SIGNED").to_owned(),
            signed: member_no.is_some(),
            member_no: member_no.map(str::to_owned),
            receipt_no: "0001".into(),
            masked_name: mask_name("김영희"),
            site_name: "종로구 보건소".into(),
            issued: "2025-12-03".parse().unwrap(),
        }
    }

    #[test]
    fn card_pins_are_six_digits_typed_twice_and_not_too_easy() {
        assert_eq!(check_pin("802417", "802417"), Ok(()));
        assert_eq!(check_pin("012345", "012345"), Err(PinRefusal::TooEasy));
        for easy in ["000000", "777777", "123456", "456789", "987654", "543210"] {
            assert_eq!(check_pin(easy, easy), Err(PinRefusal::TooEasy), "{easy}");
        }
        for bad in ["", "12345", "1234567", "12 456", "12345a", "١٢٣٤٥٦"] {
            assert_eq!(
                check_pin(bad, bad),
                Err(PinRefusal::NotSixDigits),
                "{bad:?}"
            );
        }
        assert_eq!(check_pin("802417", "802471"), Err(PinRefusal::Mismatch));
        // The shape is checked before the match, so a short first entry says so.
        assert_eq!(check_pin("8024", "802417"), Err(PinRefusal::NotSixDigits));
        for r in [
            PinRefusal::NotSixDigits,
            PinRefusal::Mismatch,
            PinRefusal::TooEasy,
        ] {
            assert!(r.ko().ends_with('.') && r.en().ends_with('.'));
            assert!(r.code().starts_with("pin_"));
        }
    }

    #[test]
    fn names_are_masked_in_the_middle() {
        assert_eq!(mask_name("김영수"), "김*수");
        assert_eq!(mask_name(" 남궁민수 "), "남**수");
        assert_eq!(mask_name("이수"), "이*");
        assert_eq!(mask_name("김"), "*");
        assert_eq!(mask_name("Lee Haneul"), "L********l");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_phone("010-1234-5678"), "010-****-5678");
        assert_eq!(mask_phone("01012345678"), "010-****-5678");
        assert_eq!(mask_phone("0212345678"), "******5678");
        assert_eq!(mask_phone("123"), "***");
        assert_eq!(mask_phone(""), "");
    }

    #[test]
    fn escpos_is_euc_kr_with_the_qr_data_and_a_cut() {
        let bytes = card(Some("PP-0042")).to_escpos();
        assert!(bytes.starts_with(b"\x1b@\x1c&"));
        assert!(bytes.ends_with(CUT));
        // 회 in EUC-KR is C8 B8.
        assert!(bytes.windows(2).any(|w| w == [0xc8, 0xb8]));
        // The QR store command carries the card's token, with its length (10 + 3).
        let store = b"\x1d(k\x0d\x001P0PP1:SIGNED";
        assert!(bytes.windows(store.len()).any(|w| w == store));
        assert!(bytes.windows(9).any(|w| w == b"Do not wr"));
        // The full name never reaches the printer.
        let (full, _, _) = encoding_rs::EUC_KR.encode("김영희");
        assert!(!bytes.windows(full.len()).any(|w| w == &full[..]));
    }

    #[test]
    fn the_page_holds_the_qr_svg_and_the_masked_name_only() {
        let page = card(None).to_html().unwrap();
        assert!(page.contains("<svg"));
        assert!(page.contains("김*희"));
        assert!(!page.contains("김영희"));
        assert!(page.contains("서버 확인 후"));
        assert!(page.contains("팔팔 가입 접수증"));
        let signed = card(Some("PP-0042")).to_html().unwrap();
        assert!(signed.contains("팔팔 회원 카드") && signed.contains("비밀번호"));
        let svg = qr_svg("PP-0042").unwrap();
        assert!(svg.contains("#000000"));
    }
}
