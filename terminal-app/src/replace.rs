//! A lost card replaced at the kiosk. An operator replaced the card in the console (the old
//! one revoked, the next number allowed); the member, at any kiosk, gives their name, birth
//! date and phone, the kiosk finds them on the server (`POST /v1/members/lookup`, which says
//! the number allowed), the member picks a 6-digit PIN twice, and the kiosk computes the PIN
//! check for that number and has the server sign the card (`POST /v1/cards`), then shows and
//! prints it as a first card.
//!
//! It needs the server: offline (or not provisioned) the answer is `server_needed` and nothing
//! is kept. A card signed here is kept in memory only until it is printed, so that the same
//! PIN shows it again and another PIN is refused; a card signed elsewhere is refused
//! (`card_exists`) with its own message.

use serde::Serialize;
use terminal_store::CardCheck;

use crate::commands::ApplicantInput;
use crate::config::Role;
use crate::error::{storage, CommandError, ErrorCode, Lang};
use crate::kiosk::{
    card_printed, card_refused, new_card_check, parse_applicant, pin_matches, send_to_printer,
    sign_card, typed_pin, CardSigning, CardView, Printed, CARD_WAIT,
};
use crate::terminal::{AppState, Terminal};

/// A replacement card signed at this kiosk and not printed yet.
#[derive(Debug, Clone)]
pub(crate) struct Replaced {
    check: CardCheck,
    token: String,
    masked_name: String,
    issued: chrono::NaiveDate,
}

/// The member found, and the card the server allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct ReplacementAllowed {
    pub member_no: String,
    pub masked_name: String,
    /// The number of the new card (2 for the first replacement).
    pub serial: u16,
}

fn server_needed(lang: Lang) -> CommandError {
    CommandError::new(
        ErrorCode::ServerNeeded,
        lang,
        "카드 재발급은 중앙 서버에 연결되어야 할 수 있습니다. 지금은 연결되지 않아 아무것도 바꾸지 않았습니다. 잠시 후 다시 시도해 주세요.",
        "Replacing a card needs the central server, which cannot be reached now; nothing was changed. Please try again later.",
    )
}

fn not_a_member(lang: Lang) -> CommandError {
    CommandError::new(
        ErrorCode::NotAMember,
        lang,
        "입력하신 이름, 생년월일, 휴대전화 번호의 회원을 찾지 못했습니다. 가입할 때 적은 그대로인지 확인해 주세요. 회원이 아니라면 '새 회원 가입'을 눌러 주세요.",
        "No member has that name, birth date and phone number. Check that they are as given at sign-up; if you are not a member yet, choose 'Sign up'.",
    )
}

fn no_replacement(lang: Lang) -> CommandError {
    CommandError::new(
        ErrorCode::NoReplacement,
        lang,
        "아직 재발급이 허용되지 않았습니다. 주민센터(보건소) 창구에 가시거나 손목닥터 콜센터에 전화해 카드 분실을 신고해 주세요. 신고 뒤에 이 키오스크에서 새 카드를 받을 수 있습니다.",
        "No replacement card is allowed yet. Report the lost card at the community-center desk or call the program's call center; then get the new card at this kiosk.",
    )
}

fn card_exists_elsewhere(lang: Lang) -> CommandError {
    CommandError::new(
        ErrorCode::Refused("card_exists"),
        lang,
        "새 카드는 이미 발급되었습니다. 발급받은 키오스크에서 같은 비밀번호로 다시 볼 수 있습니다. 새 카드도 잃어버렸다면 주민센터 창구나 콜센터에 알려 주세요.",
        "The new card was issued already. It shows again with the same PIN at the kiosk that issued it; if it is lost too, tell the community-center desk or the call center.",
    )
}

/// The member the server knows by `applicant`, and the replacement card it allows.
fn look_up(
    t: &Terminal,
    lang: Lang,
    applicant: ApplicantInput,
) -> Result<(ReplacementAllowed, terminal_store::TerminalIdentity), CommandError> {
    let applicant = parse_applicant(applicant, lang)?;
    let name = applicant.name.trim().to_owned();
    if name.is_empty() {
        return Err(CommandError::from_refusal(
            lang,
            &kiosk_core::Refusal::NameMissing,
        ));
    }
    let (identity, preferred) = {
        let store = t.store()?;
        let identity = store.identity().map_err(storage(lang))?;
        let preferred = terminal_sync::server_in_use(&store).map_err(storage(lang))?;
        (identity.ok_or_else(|| server_needed(lang))?, preferred)
    };
    let central = terminal_sync::connect_preferring(&identity, preferred.as_deref(), CARD_WAIT)
        .map_err(|_| server_needed(lang))?;
    let key = ed25519_dalek::SigningKey::from_bytes(&identity.secret_key);
    let answer = central
        .look_up_member(
            &identity.terminal_id,
            &key,
            &name,
            applicant.birth_date,
            &applicant.phone,
        )
        .map_err(|_| server_needed(lang))?;
    let member_no = answer.member_number.ok_or_else(|| not_a_member(lang))?;
    let serial = answer
        .card_serial_allowed
        .ok_or_else(|| no_replacement(lang))?;
    Ok((
        ReplacementAllowed {
            member_no,
            masked_name: kiosk_core::card::mask_name(&name),
            serial,
        },
        identity,
    ))
}

/// Finds the member on the server by name, birth date and phone, and says which card may be
/// signed for them; nothing is kept.
pub fn find_card_replacement(
    state: &AppState,
    applicant: ApplicantInput,
) -> Result<ReplacementAllowed, CommandError> {
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    look_up(t, lang, applicant).map(|(allowed, _)| allowed)
}

fn view(t: &Terminal, lang: Lang, member_no: &str, r: &Replaced) -> Result<CardView, CommandError> {
    let card = kiosk_core::card::MemberCard {
        qr_content: r.token.clone(),
        signed: true,
        member_no: Some(member_no.to_owned()),
        receipt_no: String::new(),
        masked_name: r.masked_name.clone(),
        site_name: t.config.site_name.clone(),
        issued: r.issued,
    };
    let qr = |e: kiosk_core::card::QrError| CommandError::storage(lang, &anyhow::anyhow!(e));
    Ok(CardView {
        op_id: member_no.to_owned(),
        signed: true,
        qr_svg: card.qr_svg().map_err(qr)?,
        page_html: card.to_html().map_err(qr)?,
        qr_content: card.qr_content,
        receipt_no: card.receipt_no,
        masked_name: card.masked_name,
        member_no: card.member_no,
        issued: card.issued,
        printer: t.config.kiosk.printer.is_some(),
    })
}

/// Replaces the member's lost card: finds them again, checks the PIN typed twice, computes the
/// PIN check for the number allowed and has the server sign the card. The card's `op_id` is
/// the member number ([`print_replacement_card`] takes it).
pub fn replace_lost_card(
    state: &AppState,
    applicant: ApplicantInput,
    pin: String,
    pin_again: String,
) -> Result<CardView, CommandError> {
    let _one = state.one_change_at_a_time();
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    typed_pin(lang, &pin, &pin_again)?;
    let (allowed, identity) = look_up(t, lang, applicant)?;
    let member_no = allowed.member_no;
    let kept = state
        .replaced
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&member_no)
        .cloned()
        .filter(|r| r.check.serial == allowed.serial);
    if let Some(kept) = kept {
        // Signed here before: the same PIN shows it again; another PIN is not this card's.
        if !pin_matches(&pin, &kept.check, Some(&member_no)) {
            return Err(card_refused(lang, "card_exists", None));
        }
        return view(t, lang, &member_no, &kept);
    }
    let check = new_card_check(lang, &pin, &member_no, allowed.serial)?;
    let signed = match sign_card(t, lang, &identity, &member_no, &check)? {
        CardSigning::Signed(signed) => signed,
        CardSigning::NoServer => return Err(server_needed(lang)),
        CardSigning::Refused(body) if body.code == "card_exists" => {
            return Err(card_exists_elsewhere(lang))
        }
        CardSigning::Refused(body)
            if kiosk_core::card::CardRefusal::from_code(&body.code).is_some() =>
        {
            return Err(card_refused(lang, &body.code, None))
        }
        CardSigning::Refused(_) => return Err(server_needed(lang)),
    };
    let replaced = Replaced {
        check,
        token: signed.token,
        masked_name: allowed.masked_name,
        issued: t.today(),
    };
    state
        .replaced
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(member_no.clone(), replaced.clone());
    view(t, lang, &member_no, &replaced)
}

/// Prints the replacement card signed here for `member_no` on the receipt printer; once
/// printed, the kiosk forgets it (a second print is refused, `card_printed`).
pub fn print_replacement_card(
    state: &AppState,
    member_no: String,
) -> Result<Printed, CommandError> {
    let _one = state.one_change_at_a_time();
    let lang = state.lang();
    let t = state.terminal_as(Role::Kiosk)?;
    let kept = state
        .replaced
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&member_no)
        .cloned()
        .ok_or_else(|| card_printed(lang))?;
    let card = kiosk_core::card::MemberCard {
        qr_content: kept.token.clone(),
        signed: true,
        member_no: Some(member_no.clone()),
        receipt_no: String::new(),
        masked_name: kept.masked_name.clone(),
        site_name: t.config.site_name.clone(),
        issued: kept.issued,
    };
    let bytes = card.to_escpos();
    send_to_printer(t, lang, &bytes)?;
    state
        .replaced
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&member_no);
    Ok(Printed { bytes: bytes.len() })
}
