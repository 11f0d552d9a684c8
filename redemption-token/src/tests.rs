//! The crate's tests: the worked examples of `docs/redemption-token.md`, one table of scans at
//! a counter with the outcome of each, round trips, and QR codes read back by `zbarimg`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use crate::keys::hex;
use crate::*;

const DOC: &str = include_str!("../../docs/redemption-token.md");

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// 10:00 in Seoul on 2026-01-15: when the examples are issued.
fn t0() -> DateTime<Utc> {
    at(2026, 1, 15, 1, 0, 0)
}

/// The examples' issuing key: seed 00 01 02 ... 1f, key id 1.
fn issuer() -> IssuerKey {
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = i as u8;
    }
    IssuerKey::from_seed(1, seed)
}

/// Key 2: published, but tokens never name it in the examples.
fn other_issuer() -> IssuerKey {
    IssuerKey::from_seed(2, [0x22; 32])
}

/// Key 3: retired on 2026-01-01.
fn retired_issuer() -> IssuerKey {
    IssuerKey::from_seed(3, [0x33; 32])
}

fn keys() -> KeySet {
    let mut retired = retired_issuer().published(at(2025, 6, 1, 0, 0, 0));
    retired.not_after = Some(at(2026, 1, 1, 0, 0, 0));
    KeySet::new(&[
        issuer().published(at(2025, 12, 1, 0, 0, 0)),
        other_issuer().published(at(2025, 12, 1, 0, 0, 0)),
        retired,
    ])
    .unwrap()
}

fn revocations() -> Revocations {
    let mut r = Revocations::default();
    r.members.insert(MemberNo(666));
    r.cards.insert(RevokedCard {
        member: MemberNo(42),
        serial: 1,
    });
    r
}

fn dynamic_example() -> Token {
    issuer()
        .issue_dynamic(
            MemberNo(42),
            t0(),
            120,
            0x0123_4567_89ab_cdef_u64.to_be_bytes(),
        )
        .unwrap()
}

fn card_spec(member: u64, serial: u16, cost: u8) -> CardSpec {
    CardSpec {
        member: MemberNo(member),
        serial,
        issued_at: t0(),
        expires_at: at(2031, 1, 15, 0, 0, 0),
        pin_cost: cost,
        salt: [0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8],
    }
}

fn card_example() -> Token {
    issuer()
        .issue_card(&card_spec(42, 1, DEFAULT_PIN_COST), "123456")
        .unwrap()
}

#[test]
fn worked_examples_are_the_doc_s() {
    for (name, token, len) in [
        ("dynamic", dynamic_example(), DYNAMIC_LEN),
        ("card", card_example(), CARD_LEN),
    ] {
        let bytes = token.encode();
        assert_eq!(bytes.len(), len, "{name}");
        let (hex, text) = (hex(&bytes), token.to_text());
        assert!(
            DOC.contains(&hex),
            "the doc lacks the {name} example's hex:\n{hex}"
        );
        assert!(
            DOC.contains(&text),
            "the doc lacks the {name} example's text:\n{text}"
        );
        let signed = hex_of_message(&token);
        assert!(
            DOC.contains(&signed),
            "the doc lacks the {name} example's signed bytes:\n{signed}"
        );
        assert_eq!(Token::parse(&text), Ok(token));
    }
    let public = issuer().published(t0()).public_key;
    assert!(
        DOC.contains(&public),
        "the doc lacks the example key:\n{public}"
    );
    // The card example's PIN check, which the doc states.
    let Body::Card { pin, .. } = card_example().body else {
        unreachable!()
    };
    assert!(DOC.contains(&format!("tag `{}`", hex(&pin.tag))));
}

fn hex_of_message(token: &Token) -> String {
    hex(&token.message())
}

/// Signs `token` as it is, with whatever fields a test gave it.
fn signed(key: &IssuerKey, token: Token) -> String {
    key.sign(token).to_text()
}

/// A dynamic token for `member` issued `offset` seconds from t0, with nonce `n`.
fn dynamic(member: u64, offset: i64, n: u64) -> String {
    issuer()
        .issue_dynamic(
            MemberNo(member),
            t0() + Duration::seconds(offset),
            120,
            n.to_be_bytes(),
        )
        .unwrap()
        .to_text()
}

fn card(member: u64, serial: u16, pin: &str) -> String {
    issuer()
        .issue_card(&card_spec(member, serial, 8), pin)
        .unwrap()
        .to_text()
}

/// Re-encodes a token's bytes after `edit`, keeping its signature.
fn edited(text: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut bytes = Token::parse(text).unwrap().encode();
    edit(&mut bytes);
    format!("{TEXT_PREFIX}{}", base45::encode(&bytes))
}

/// One scan at a counter: the text, the PIN entered, the counter's clock.
struct Scan<'a> {
    text: String,
    pin: Option<&'a str>,
    now: DateTime<Utc>,
}

fn scan(text: String, offset: i64) -> Scan<'static> {
    Scan {
        text,
        pin: None,
        now: t0() + Duration::seconds(offset),
    }
}

fn with_pin(text: String, pin: &str) -> Scan<'_> {
    Scan {
        text,
        pin: Some(pin),
        now: t0() + Duration::seconds(5),
    }
}

/// Runs the scans in order at one counter, as it would: verify, then admit. The clock of
/// successive scans should not go back past a token's expiry (see [`SeenTokens`]). `expect` is "ok"
/// or the refusal's code.
#[track_caller]
fn check(scans: Vec<(Scan<'_>, &str)>) {
    let (keys, revocations) = (keys(), revocations());
    let mut seen = SeenTokens::new(64);
    for (i, (s, expect)) in scans.into_iter().enumerate() {
        let outcome = verify(&s.text, &keys, &revocations, s.pin, s.now)
            .and_then(|claims| seen.admit(&claims, s.now));
        let got = match &outcome {
            Ok(()) => "ok",
            Err(refusal) => {
                assert!(!refusal.ko().is_empty() && !refusal.en().is_empty());
                refusal.code()
            }
        };
        assert_eq!(got, expect, "scan {i}: {:?} -> {outcome:?}", s.text);
    }
}

#[test]
fn a_day_at_the_counter() {
    let reused = dynamic(42, 0, 1);
    let later = dynamic(42, 200, 2);
    let by_other_key = signed(&other_issuer(), Token::parse(&dynamic(42, 0, 3)).unwrap());
    let unpublished_key = signed(
        &IssuerKey::from_seed(1, [0x99; 32]),
        Token::parse(&dynamic(42, 0, 4)).unwrap(),
    );
    let retired_key = {
        let t = retired_issuer()
            .issue_dynamic(MemberNo(42), t0(), 120, [5; 8])
            .unwrap();
        t.to_text()
    };
    let unknown_key = IssuerKey::from_seed(9, [9; 32])
        .issue_dynamic(MemberNo(42), t0(), 120, [6; 8])
        .unwrap()
        .to_text();
    check(vec![
        // A dynamic token is accepted once, and lives 120 seconds.
        (scan(reused.clone(), 10), "ok"),
        (scan(reused.clone(), 11), "replayed"),
        (scan(reused.to_lowercase(), 12), "replayed"),
        // Scanners: Enter at the end, Caps Lock.
        (scan(format!("{}\r\n", dynamic(42, 0, 10)), 1), "ok"),
        (scan(dynamic(42, 0, 11).to_lowercase(), 1), "ok"),
        // Keys.
        (scan(by_other_key, 1), "wrong_key"),
        (scan(retired_key, 1), "wrong_key"),
        (scan(unpublished_key, 1), "tampered"),
        (scan(unknown_key, 1), "unknown_key_id"),
        // Any change to the signed bytes or the signature.
        (
            scan(edited(&dynamic(42, 0, 12), |b| b[11] ^= 1), 1),
            "tampered",
        ),
        (
            scan(edited(&dynamic(42, 0, 13), |b| b[16] = 60), 1),
            "tampered",
        ),
        (
            scan(edited(&dynamic(42, 0, 14), |b| b[60] ^= 0x80), 1),
            "tampered",
        ),
        // Revocation.
        (scan(dynamic(666, 0, 15), 1), "revoked_member"),
        (scan(card(666, 1, "123456"), 1), "revoked_member"),
        (with_pin(card(42, 1, "123456"), "123456"), "revoked_card"),
        // A card needs its PIN, and may be shown again and again.
        (scan(card(42, 2, "123456"), 1), "pin_required"),
        (with_pin(card(42, 2, "123456"), "654321"), "wrong_pin"),
        (with_pin(card(42, 2, "123456"), "12345"), "wrong_pin"),
        (with_pin(card(42, 2, "123456"), "12345a"), "wrong_pin"),
        (with_pin(card(42, 2, "123456"), "123456"), "ok"),
        (with_pin(card(42, 2, "123456"), "123456"), "ok"),
        (with_pin(card(7, 1, "000000"), "000000"), "ok"),
        (
            Scan {
                now: at(2031, 1, 15, 0, 0, 0),
                ..with_pin(card(42, 2, "123456"), "123456")
            },
            "expired",
        ),
        (
            Scan {
                now: t0() - Duration::seconds(31),
                ..with_pin(card(42, 2, "123456"), "123456")
            },
            "not_yet_valid",
        ),
        // Not tokens, or not well formed.
        (scan("8801234567890".into(), 1), "malformed"),
        (scan("PP1:".into(), 1), "malformed"),
        (scan("PP1:AB#".into(), 1), "malformed"),
        (scan("PP1:GGW".into(), 1), "malformed"),
        (
            scan(edited(&dynamic(42, 0, 16), |b| b[0] = 2), 1),
            "malformed",
        ),
        (
            scan(edited(&dynamic(42, 0, 17), |b| b[1] = 3), 1),
            "malformed",
        ),
        (
            scan(edited(&dynamic(42, 0, 18), |b| b[16] = 0), 1),
            "malformed",
        ),
        (
            scan(edited(&dynamic(42, 0, 19), |b| b[16] = 121), 1),
            "malformed",
        ),
        (
            scan(edited(&dynamic(42, 0, 20), |b| b.truncate(88)), 1),
            "malformed",
        ),
        (
            scan(edited(&dynamic(42, 0, 21), |b| b.push(0)), 1),
            "malformed",
        ),
        (
            scan(edited(&card(42, 2, "123456"), |b| b[22] = 7), 1),
            "malformed",
        ),
        // Time only moves forward from here: the counter forgets expired tokens.
        (scan(dynamic(42, 0, 7), 119), "ok"),
        (scan(dynamic(42, 0, 8), 120), "expired"),
        // Its issue time may be up to 30 seconds ahead of the counter's clock.
        (scan(later.clone(), 170), "ok"),
        (scan(dynamic(42, 200, 9), 169), "not_yet_valid"),
        (scan(later, 171), "replayed"),
        (scan(reused, 500), "expired"),
    ]);
}

fn claims_of(text: &str, expires_in: i64) -> Claims {
    let claims = verify(text, &keys(), &revocations(), None, t0()).unwrap();
    Claims {
        expires_at: t0() + Duration::seconds(expires_in),
        ..claims
    }
}

#[test]
fn seen_tokens_are_bounded_and_forgotten_when_expired() {
    let mut seen = SeenTokens::new(3);
    for n in 0..3 {
        seen.admit(&claims_of(&dynamic(42, 0, n), 120), t0())
            .unwrap();
    }
    assert_eq!(seen.len(), 3);
    let fourth = claims_of(&dynamic(42, 0, 3), 120);
    assert_eq!(seen.admit(&fourth, t0()), Err(Refusal::TooManyScans));
    // Once the three have expired they are forgotten, and there is room again.
    let later = t0() + Duration::seconds(120);
    let fifth = Claims {
        expires_at: later + Duration::seconds(120),
        ..claims_of(&dynamic(42, 0, 4), 120)
    };
    assert_eq!(seen.admit(&fifth, later), Ok(()));
    assert_eq!(seen.len(), 1);
    // A forgotten token is refused as expired even if the clock goes back.
    let first = claims_of(&dynamic(42, 0, 0), 120);
    assert_eq!(
        seen.admit(&first, t0()).map_err(|r| r.code()),
        Err("expired")
    );
    // Cards are not remembered.
    let card = verify(
        &card(42, 2, "123456"),
        &keys(),
        &revocations(),
        Some("123456"),
        t0(),
    );
    let card = card.unwrap();
    assert_eq!(card.kind, TokenKind::Card);
    assert_eq!(seen.admit(&card, later), Ok(()));
    assert_eq!(seen.len(), 1);
}

#[test]
fn claims_say_what_the_counter_needs() {
    let claims = verify(
        &dynamic_example().to_text(),
        &keys(),
        &revocations(),
        None,
        t0(),
    );
    let claims = claims.unwrap();
    assert_eq!(claims.kind, TokenKind::Dynamic);
    assert_eq!(claims.member.to_string(), "PP-00000042");
    assert_eq!(claims.expires_at, t0() + Duration::seconds(120));
    assert_eq!(
        claims.token_id.map(|id| id.to_string()).as_deref(),
        Some("000000000000002a0123456789abcdef")
    );
    assert_eq!(claims.card_serial, None);
}

#[test]
fn issuers_refuse_what_no_token_can_carry() {
    let i = issuer();
    assert_eq!(
        i.issue_dynamic(MemberNo(1), t0(), 121, [0; 8]),
        Err(Invalid::Ttl(121))
    );
    assert_eq!(
        i.issue_dynamic(MemberNo(1), t0(), 0, [0; 8]),
        Err(Invalid::Ttl(0))
    );
    let past = at(1960, 1, 1, 0, 0, 0);
    assert_eq!(
        i.issue_dynamic(MemberNo(1), past, 60, [0; 8]),
        Err(Invalid::Time(past))
    );
    for pin in ["12345", "1234567", "12345a", ""] {
        assert_eq!(i.issue_card(&card_spec(1, 1, 8), pin), Err(Invalid::Pin));
    }
    assert_eq!(
        i.issue_card(&card_spec(1, 1, 7), "123456"),
        Err(Invalid::PinCost(7))
    );
    let backwards = CardSpec {
        expires_at: t0(),
        ..card_spec(1, 1, 8)
    };
    assert_eq!(
        i.issue_card(&backwards, "123456"),
        Err(Invalid::CardValidity)
    );
    let dup = [i.published(t0()), i.published(t0())];
    assert_eq!(KeySet::new(&dup).unwrap_err(), Invalid::DuplicateKeyId(1));
    let mut bad = i.published(t0());
    bad.public_key = "00".repeat(31);
    assert_eq!(KeySet::new(&[bad]).unwrap_err(), Invalid::PublicKey(1));
    assert_eq!("PP-0001".parse(), Ok(MemberNo(1)));
    assert!("P-0001".parse::<MemberNo>().is_err());
    assert!("PP-".parse::<MemberNo>().is_err());
    assert_eq!(
        IssuerKey::from_seed_hex(1, &i.seed_hex()).unwrap().seed(),
        i.seed()
    );
}

/// The kiosk computes the PIN check and the server signs it: the same card as one issuer that
/// saw the PIN, and counters take it with that PIN only.
#[test]
fn a_card_signed_from_a_pin_check_is_the_card_issued_with_the_pin() {
    // Member 77: the table's revocations list card 1 of member 42.
    let spec = card_spec(77, 1, 8);
    let pin_check = card_pin_check("842613", spec.pin_cost, spec.salt, spec.member, spec.serial)
        .expect("a well-formed PIN");
    assert_eq!((pin_check.cost, pin_check.salt), (8, spec.salt));
    let signed = issuer().sign_card(&spec, pin_check.tag).unwrap();
    assert_eq!(signed, issuer().issue_card(&spec, "842613").unwrap());
    let text = signed.to_text();
    check(vec![
        (with_pin(text.clone(), "842613"), "ok"),
        (with_pin(text.clone(), "842614"), "wrong_pin"),
    ]);
    // The tag is bound to the member and the card's serial.
    let other_member = card_pin_check("842613", 8, spec.salt, MemberNo(78), 1).unwrap();
    let other_serial = card_pin_check("842613", 8, spec.salt, MemberNo(77), 2).unwrap();
    assert!(other_member.tag != pin_check.tag && other_serial.tag != pin_check.tag);
    assert_eq!(
        card_pin_check("84261", 8, spec.salt, spec.member, 1),
        Err(Invalid::Pin)
    );
    assert_eq!(
        card_pin_check("842613", 19, spec.salt, spec.member, 1),
        Err(Invalid::PinCost(19))
    );
    let backwards = CardSpec {
        expires_at: t0(),
        ..spec
    };
    assert_eq!(
        issuer().sign_card(&backwards, pin_check.tag),
        Err(Invalid::CardValidity)
    );
}

#[test]
fn refusal_codes_are_distinct() {
    let all = [
        Refusal::Malformed { reason: "x" },
        Refusal::UnknownKeyId { key_id: 1 },
        Refusal::WrongKey { key_id: 1 },
        Refusal::Tampered,
        Refusal::NotYetValid { issued_at: t0() },
        Refusal::Expired {
            kind: TokenKind::Dynamic,
            expires_at: t0(),
        },
        Refusal::Replayed,
        Refusal::RevokedMember {
            member: MemberNo(1),
        },
        Refusal::RevokedCard {
            member: MemberNo(1),
            serial: 1,
        },
        Refusal::PinRequired,
        Refusal::WrongPin,
        Refusal::TooManyScans,
    ];
    let codes: std::collections::BTreeSet<_> = all.iter().map(Refusal::code).collect();
    assert_eq!(codes.len(), all.len());
    for r in &all {
        // Korean first: every Korean message has Hangul; every message ends a sentence.
        assert!(r.ko().chars().any(|c| ('가'..='힣').contains(&c)), "{r:?}");
        assert!(r.ko().ends_with('.') && r.en().ends_with('.'), "{r:?}");
    }
}

fn any_token() -> impl Strategy<Value = Token> {
    let dynamic =
        (1..=MAX_TTL_SECS, any::<[u8; 8]>()).prop_map(|(ttl, nonce)| Body::Dynamic { ttl, nonce });
    let card = (
        any::<u16>(),
        1..=u32::MAX,
        PIN_COST_RANGE,
        any::<[u8; 8]>(),
        any::<[u8; 2]>(),
    )
        .prop_map(|(serial, expires_at, cost, salt, tag)| Body::Card {
            serial,
            expires_at,
            pin: PinCheck { cost, salt, tag },
        });
    (
        any::<u16>(),
        any::<u64>(),
        any::<u32>(),
        prop_oneof![dynamic, card],
        proptest::collection::vec(any::<u8>(), 64),
    )
        .prop_map(|(key_id, member, issued_at, mut body, sig)| {
            if let Body::Card { expires_at, .. } = &mut body {
                // A card expires after it is issued.
                *expires_at = (*expires_at).max(issued_at.saturating_add(1));
            }
            let mut signature = [0u8; 64];
            signature.copy_from_slice(&sig);
            Token {
                key_id,
                member: MemberNo(member),
                issued_at: issued_at.min(u32::MAX - 1),
                body,
                signature,
            }
        })
}

proptest! {
    #[test]
    fn tokens_round_trip_through_bytes_and_text(token in any_token()) {
        prop_assert_eq!(Token::decode(&token.encode()), Ok(token));
        let text = token.to_text();
        prop_assert!(text.len() <= 150);
        prop_assert_eq!(Token::parse(&text), Ok(token));
    }

    #[test]
    fn decoding_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        if let Ok(token) = Token::decode(&bytes) {
            prop_assert_eq!(token.encode(), bytes);
        }
    }

    #[test]
    fn base45_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assert_eq!(base45::decode(&base45::encode(&bytes)), Some(bytes));
    }

    #[test]
    fn any_text_is_refused_or_verified_without_panic(text in "PP1:[0-9A-Z $%*+./:-]{0,160}") {
        let outcome = verify(&text, &keys(), &revocations(), None, t0());
        prop_assert!(outcome.is_err());
    }

    #[test]
    fn a_changed_byte_is_never_accepted(pos in 0..DYNAMIC_LEN, flip in 1..=255u8) {
        let text = edited(&dynamic_example().to_text(), |b| b[pos] ^= flip);
        prop_assert!(verify(&text, &keys(), &revocations(), None, t0()).is_err());
    }
}

/// Writes `text` as a QR code (error correction M, 4 pixels a module, 4 modules of quiet zone)
/// to a PNG file; returns the QR version.
fn write_qr(text: &str, path: &std::path::Path) -> i16 {
    use qrcode::{Color, EcLevel, QrCode, Version};
    let code = QrCode::with_error_correction_level(text, EcLevel::M).unwrap();
    let Version::Normal(version) = code.version() else {
        panic!("a micro QR code")
    };
    let (modules, scale, quiet) = (code.width(), 4, 4);
    let colors = code.to_colors();
    let side = (modules + 2 * quiet) * scale;
    let mut pixels = vec![255u8; side * side];
    for y in 0..modules {
        for x in 0..modules {
            if colors[y * modules + x] == Color::Dark {
                for dy in 0..scale {
                    let row = ((y + quiet) * scale + dy) * side;
                    let col = (x + quiet) * scale;
                    pixels[row + col..row + col + scale].fill(0);
                }
            }
        }
    }
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .unwrap()
        .write_image_data(&pixels)
        .unwrap();
    version
}

#[test]
fn each_kind_fits_a_version_6_qr_code_that_zbarimg_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    // Every token of a kind has the same length, so the same QR version.
    for (name, token) in [("dynamic", dynamic_example()), ("card", card_example())] {
        let text = token.to_text();
        let path = dir.path().join(format!("{name}.png"));
        let version = write_qr(&text, &path);
        assert!(version <= 10, "{name}: version {version}");
        assert_eq!(
            version, 6,
            "{name}: the doc says version 6 (41 x 41 modules)"
        );
        let out = std::process::Command::new("zbarimg")
            .args(["--raw", "-q"])
            .arg(&path)
            .output()
            .expect("run zbarimg (Debian package zbar-tools)");
        assert!(out.status.success(), "zbarimg on {name}: {out:?}");
        let read = String::from_utf8(out.stdout).unwrap();
        assert_eq!(read.trim_end_matches('\n'), text, "{name}");
        let claims = verify(
            &read,
            &keys(),
            &Revocations::default(),
            Some("123456"),
            t0(),
        );
        assert_eq!(claims.map(|c| c.kind), Ok(token.kind()), "{name}");
    }
}

/// What the server checks of a token a hold carries: all but the PIN, at the hold's time.
#[test]
fn a_carried_token_is_checked_at_the_holds_time_without_the_pin() {
    let carried = |text: &str, seconds: i64| {
        verify_carried(
            text,
            &keys(),
            &revocations(),
            t0() + Duration::seconds(seconds),
        )
        .map(|c| (c.member.0, c.card_serial, c.token_id.is_some()))
        .map_err(|r| r.code())
    };
    let dynamic = dynamic_example().to_text();
    assert_eq!(carried(&dynamic, 60), Ok((42, None, true)));
    assert_eq!(carried(&dynamic, 120), Err("expired"));
    assert_eq!(carried(&dynamic, -31), Err("not_yet_valid"));
    // A card needs no PIN here: the counter that saw the member checked it.
    let card = issuer()
        .issue_card(&card_spec(43, 2, DEFAULT_PIN_COST), "123456")
        .unwrap()
        .to_text();
    assert_eq!(carried(&card, 3600), Ok((43, Some(2), false)));
    // Revoked card, revoked member, another key, an altered byte.
    assert_eq!(carried(&card_example().to_text(), 60), Err("revoked_card"));
    let revoked = issuer()
        .issue_dynamic(MemberNo(666), t0(), 120, [1; 8])
        .unwrap()
        .to_text();
    assert_eq!(carried(&revoked, 1), Err("revoked_member"));
    let altered = edited(&dynamic, |b| b[11] ^= 1);
    assert_eq!(carried(&altered, 1), Err("tampered"));
    assert_eq!(carried("PP1:nonsense", 1), Err("malformed"));
}
