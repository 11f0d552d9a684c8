//! `palpal token`: the reference issuer and a verifier of redemption tokens
//! (`docs/redemption-token.md`). `keygen` makes an issuing key, `issue` stands in for a
//! member's phone or the card printer, `verify` checks a token as a counter would and explains
//! a refusal in Korean, then English. The rules are `redemption-token`'s; this module reads the
//! clock and the operating system's random source for them, and turns files into their inputs.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use chrono::{DateTime, Duration, Utc};
use redemption_token::{
    verify, CardSpec, IssuerKey, KeySet, MemberNo, PublishedKey, Revocations, Token,
    DEFAULT_PIN_COST, MAX_TTL_SECS,
};
use serde::{Deserialize, Serialize};

use crate::BadInput;

/// Make, issue and verify redemption tokens.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Make an issuing key; print its public entry as a published key set (JSON)
    Keygen(KeygenArgs),
    /// Issue a token as the member's phone (dynamic) or the card printer (card) would
    Issue(IssueArgs),
    /// Verify a token as a counter would; print its claims as JSON, or why it is refused
    ///
    /// One scan, with no memory of earlier ones: a counter also remembers the dynamic tokens
    /// it accepted, to refuse them a second time.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct KeygenArgs {
    /// Where to write the secret key (JSON, readable by its owner only); never overwritten
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The key id tokens will name it by
    #[arg(long, default_value_t = 1)]
    key_id: u16,
    /// From when it may sign [default: now]
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    not_before: Option<DateTime<Utc>>,
    /// Also add the public key to this published key set, creating it if missing
    #[arg(long, value_name = "KEYS_FILE")]
    publish: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    Dynamic,
    Card,
}

#[derive(Debug, clap::Args)]
struct IssueArgs {
    /// The issuing key, as `palpal token keygen` wrote it
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The member number, e.g. PP-00000042
    #[arg(long, value_name = "MEMBER_NO", value_parser = parse_member)]
    member: MemberNo,
    /// A phone's or watch's code, or a printed member card
    #[arg(long, value_enum)]
    kind: Kind,
    /// The card's 6-digit PIN (cards only)
    #[arg(long)]
    pin: Option<String>,
    /// The issue time [default: now]
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    now: Option<DateTime<Utc>>,
    /// A dynamic token's lifetime in seconds, 1 to 120
    #[arg(long, default_value_t = MAX_TTL_SECS)]
    ttl: u8,
    /// The card's serial for this member
    #[arg(long, default_value_t = 1)]
    serial: u16,
    /// How long the card is valid, in days
    #[arg(long, default_value_t = 5 * 365)]
    valid_days: u16,
    /// Argon2id memory for the card's PIN, log2 of KiB (8 to 18)
    #[arg(long, default_value_t = DEFAULT_PIN_COST)]
    pin_cost: u8,
    /// Also render the token as a QR code (error correction M) to this PNG file
    #[arg(long, value_name = "FILE.png")]
    qr: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The published key set (JSON: {"keys": [...]})
    #[arg(long, value_name = "KEYS_FILE")]
    keys: PathBuf,
    /// The scanned text; `-` reads one line from standard input (a keyboard-wedge scanner)
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    token: String,
    /// The PIN the member entered (cards)
    #[arg(long)]
    pin: Option<String>,
    /// The counter's clock [default: now]
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    now: Option<DateTime<Utc>>,
    /// The revocation list (JSON: {"members": [...], "cards": [{"member": ..., "serial": ...}]})
    #[arg(long, value_name = "FILE")]
    revoked: Option<PathBuf>,
}

/// The secret key file.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    key_id: u16,
    /// The Ed25519 seed, 64 hex digits.
    seed: String,
    not_before: DateTime<Utc>,
}

/// A published key set.
#[derive(Default, Serialize, Deserialize)]
struct KeysFile {
    keys: Vec<PublishedKey>,
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            "시각은 RFC 3339 형식이어야 합니다(예: 2026-01-15T10:00:00+09:00). / \
             the time must be RFC 3339 (e.g. 2026-01-15T10:00:00+09:00)"
                .to_owned()
        })
}

fn parse_member(text: &str) -> Result<MemberNo, String> {
    text.parse().map_err(|_| {
        "회원번호는 PP-와 숫자여야 합니다(예: PP-00000042). / \
         the member number must be PP- and digits (e.g. PP-00000042)"
            .to_owned()
    })
}

fn bad(ko: &str, en: impl std::fmt::Display) -> anyhow::Error {
    anyhow!(BadInput(format!("{ko} / {en}")))
}

fn random<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("read the OS random source: {e}"))?;
    Ok(bytes)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad(
            &format!("{what} 파일 {}을(를) 읽을 수 없습니다", path.display()),
            format!("cannot read the {what} file {}: {e}", path.display()),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        bad(
            &format!("{what} 파일 {}의 형식이 잘못되었습니다", path.display()),
            format!("the {what} file {} is not valid: {e}", path.display()),
        )
    })
}

/// Runs `palpal token ...`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    match &args.command {
        Command::Keygen(a) => keygen(a),
        Command::Issue(a) => issue(a),
        Command::Verify(a) => verify_token(a),
    }
}

fn keygen(args: &KeygenArgs) -> anyhow::Result<()> {
    let key = IssuerKey::from_seed(args.key_id, random()?);
    let not_before = args.not_before.unwrap_or_else(Utc::now);
    let file = KeyFile {
        key_id: key.key_id(),
        seed: key.seed_hex(),
        not_before,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&args.out).map_err(|e| {
        bad(
            &format!(
                "키 파일 {}을(를) 만들 수 없습니다(이미 있으면 덮어쓰지 않습니다)",
                args.out.display()
            ),
            format!(
                "cannot create the key file {} (an existing one is never overwritten): {e}",
                args.out.display()
            ),
        )
    })?;
    out.write_all(serde_json::to_string_pretty(&file)?.as_bytes())
        .and_then(|()| out.sync_all())
        .with_context(|| format!("writing the key file {}", args.out.display()))?;
    let published = key.published(not_before);
    if let Some(path) = &args.publish {
        let mut set: KeysFile = if path.exists() {
            read_json(path, "공개 키 / published keys")?
        } else {
            KeysFile::default()
        };
        if set.keys.iter().any(|k| k.key_id == published.key_id) {
            return Err(bad(
                &format!(
                    "키 번호 {}은(는) 이미 공개 키 목록에 있습니다. 다른 --key-id를 쓰세요",
                    published.key_id
                ),
                format!(
                    "key id {} is already published; choose another --key-id",
                    published.key_id
                ),
            ));
        }
        set.keys.push(published.clone());
        std::fs::write(path, serde_json::to_string_pretty(&set)? + "\n")
            .with_context(|| format!("writing the published keys {}", path.display()))?;
    }
    let set = KeysFile {
        keys: vec![published],
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string_pretty(&set)?)?;
    Ok(())
}

fn issue(args: &IssueArgs) -> anyhow::Result<()> {
    let file: KeyFile = read_json(&args.key, "발급 키 / issuing key")?;
    let key = IssuerKey::from_seed_hex(file.key_id, &file.seed)
        .map_err(|e| bad("발급 키 파일이 잘못되었습니다", e))?;
    let now = args.now.unwrap_or_else(Utc::now);
    let token: Token = match args.kind {
        Kind::Dynamic => key
            .issue_dynamic(args.member, now, args.ttl, random()?)
            .map_err(|e| bad("토큰을 발급할 수 없습니다", e))?,
        Kind::Card => {
            let pin = args.pin.as_deref().ok_or_else(|| {
                bad(
                    "회원카드에는 --pin(숫자 6자리)이 필요합니다",
                    "a card needs --pin (6 digits)",
                )
            })?;
            let card = CardSpec {
                member: args.member,
                serial: args.serial,
                issued_at: now,
                expires_at: now + Duration::days(i64::from(args.valid_days)),
                pin_cost: args.pin_cost,
                salt: random()?,
            };
            key.issue_card(&card, pin)
                .map_err(|e| bad("회원카드를 발급할 수 없습니다", e))?
        }
    };
    let text = token.to_text();
    if let Some(path) = &args.qr {
        let version = write_qr(&text, path)
            .with_context(|| format!("writing the QR code {}", path.display()))?;
        eprintln!(
            "QR version {version} (error correction M) -> {}",
            path.display()
        );
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    Ok(())
}

fn verify_token(args: &VerifyArgs) -> anyhow::Result<()> {
    let set: KeysFile = read_json(&args.keys, "공개 키 / published keys")?;
    let keys = KeySet::new(&set.keys).map_err(|e| bad("공개 키 목록이 잘못되었습니다", e))?;
    let revocations: Revocations = match &args.revoked {
        Some(path) => read_json(path, "사용 중지 목록 / revocation list")?,
        None => Revocations::default(),
    };
    let text = if args.token == "-" {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the token from standard input")?;
        line
    } else {
        args.token.clone()
    };
    let now = args.now.unwrap_or_else(Utc::now);
    match verify(&text, &keys, &revocations, args.pin.as_deref(), now) {
        Ok(claims) => {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", serde_json::to_string_pretty(&claims)?)?;
            Ok(())
        }
        Err(refusal) => Err(anyhow!(
            "토큰을 받을 수 없습니다 [{code}]: {ko}\nrefused [{code}]: {en}",
            code = refusal.code(),
            ko = refusal.ko(),
            en = refusal.en(),
        )),
    }
}

/// Writes `text` as a QR code at error correction M, 4 pixels a module with a 4-module quiet
/// zone, as a grayscale PNG; returns the QR version.
fn write_qr(text: &str, path: &Path) -> anyhow::Result<i16> {
    use qrcode::{Color, EcLevel, QrCode, Version};
    let code = QrCode::with_error_correction_level(text, EcLevel::M)?;
    let version = match code.version() {
        Version::Normal(v) | Version::Micro(v) => v,
    };
    let (modules, scale, quiet) = (code.width(), 4, 4);
    let colors = code.to_colors();
    let side = (modules + 2 * quiet) * scale;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color == Color::Dark {
            let (x, y) = (i % modules, i / modules);
            for dy in 0..scale {
                let start = ((y + quiet) * scale + dy) * side + (x + quiet) * scale;
                pixels[start..start + scale].fill(0);
            }
        }
    }
    let side = u32::try_from(side)?;
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(version)
}
