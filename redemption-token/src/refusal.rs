//! Why a counter refuses a token, and why an issuer refuses to make one.

use chrono::{DateTime, Utc};

use crate::format::{MemberNo, TokenKind};

/// Why a token is refused. Each has a stable [`Refusal::code`] the counter's screens switch
/// on, and a message in Korean ([`Refusal::ko`]) and English ([`Refusal::en`]) for the clerk
/// that says what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Not a Palpal token, or its bytes are not well formed.
    #[error("malformed token: {reason}")]
    Malformed {
        /// What is wrong, for logs.
        reason: &'static str,
    },
    /// The token names a key id the counter does not have (yet).
    #[error("unknown key id {key_id}")]
    UnknownKeyId {
        /// The id the token names.
        key_id: u16,
    },
    /// The token names a published key that may not sign it: the key's period does not cover
    /// the token's issue time (a retired key), or another published key made the signature.
    #[error("token signed with the wrong key (key id {key_id})")]
    WrongKey {
        /// The id the token names.
        key_id: u16,
    },
    /// The signature does not verify under any published key: the token was altered.
    #[error("token signature does not verify")]
    Tampered,
    /// The token was issued later than the counter's clock plus the tolerated skew.
    #[error("token not valid yet (issued at {issued_at})")]
    NotYetValid {
        /// When the token says it was issued.
        issued_at: DateTime<Utc>,
    },
    /// The token's lifetime, or the card's validity, is over.
    #[error("{kind} token expired at {expires_at}")]
    Expired {
        /// A dynamic token or a card.
        kind: TokenKind,
        /// When it expired.
        expires_at: DateTime<Utc>,
    },
    /// This dynamic token was already accepted.
    #[error("token already used")]
    Replayed,
    /// The member may not spend points.
    #[error("member {member} is revoked")]
    RevokedMember {
        /// The member.
        member: MemberNo,
    },
    /// This member card was reported lost or replaced.
    #[error("card {serial} of member {member} is revoked")]
    RevokedCard {
        /// The member.
        member: MemberNo,
        /// The card's serial.
        serial: u16,
    },
    /// A member card needs its PIN.
    #[error("the card needs its PIN")]
    PinRequired,
    /// The PIN entered does not match the card.
    #[error("wrong PIN")]
    WrongPin,
    /// The counter has remembered as many live tokens as it may; it cannot prove this one new.
    #[error("too many tokens seen in their lifetime")]
    TooManyScans,
}

impl Refusal {
    /// A stable code, `snake_case`, for screens and logs.
    /// Every code [`Refusal::code`] gives, for the UI's closed set of error codes.
    pub const CODES: [&'static str; 12] = [
        "malformed",
        "unknown_key_id",
        "wrong_key",
        "tampered",
        "not_yet_valid",
        "expired",
        "replayed",
        "revoked_member",
        "revoked_card",
        "pin_required",
        "wrong_pin",
        "too_many_scans",
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed { .. } => "malformed",
            Refusal::UnknownKeyId { .. } => "unknown_key_id",
            Refusal::WrongKey { .. } => "wrong_key",
            Refusal::Tampered => "tampered",
            Refusal::NotYetValid { .. } => "not_yet_valid",
            Refusal::Expired { .. } => "expired",
            Refusal::Replayed => "replayed",
            Refusal::RevokedMember { .. } => "revoked_member",
            Refusal::RevokedCard { .. } => "revoked_card",
            Refusal::PinRequired => "pin_required",
            Refusal::WrongPin => "wrong_pin",
            Refusal::TooManyScans => "too_many_scans",
        }
    }

    /// The message for the clerk, in Korean: what happened and what to do next.
    pub fn ko(&self) -> String {
        match self {
            Refusal::Malformed { .. } => "팔팔 결제 QR 코드가 아니거나 읽을 수 없습니다. \
                 다시 스캔하고, 그래도 안 되면 회원에게 QR 코드를 새로 띄워 달라고 해 주세요."
                .to_owned(),
            Refusal::UnknownKeyId { .. } => "이 단말기가 아직 모르는 서명 키로 발급된 QR \
                 코드입니다. 단말기를 서버와 동기화한 뒤 다시 스캔해 주세요."
                .to_owned(),
            Refusal::WrongKey { .. } => "사용할 수 없는 서명 키로 발급된 QR 코드입니다. 받지 \
                 마시고, 회원에게 앱을 업데이트한 뒤 QR 코드를 새로 띄워 달라고 해 주세요."
                .to_owned(),
            Refusal::Tampered => "QR 코드의 서명이 맞지 않습니다(변조 또는 손상). 받지 마시고, \
                 회원에게 앱에서 QR 코드를 새로 띄워 달라고 해 주세요."
                .to_owned(),
            Refusal::NotYetValid { .. } => "QR 코드의 발급 시각이 이 단말기의 시각보다 \
                 늦습니다. 단말기와 회원 휴대전화의 시각을 확인한 뒤 QR 코드를 새로 띄워 \
                 다시 스캔해 주세요."
                .to_owned(),
            Refusal::Expired {
                kind: TokenKind::Dynamic,
                ..
            } => "QR 코드의 유효 시간(2분)이 지났습니다. 회원에게 앱에서 QR 코드를 새로 띄워 \
                 달라고 해 주세요."
                .to_owned(),
            Refusal::Expired {
                kind: TokenKind::Card,
                ..
            } => "회원카드의 유효기간이 지났습니다. 회원에게 주민센터에서 새 카드를 받도록 \
                 안내해 주세요."
                .to_owned(),
            Refusal::Replayed => "이미 사용된 QR 코드입니다. 회원에게 앱에서 QR 코드를 새로 \
                 띄워 달라고 해 주세요."
                .to_owned(),
            Refusal::RevokedMember { member } => format!(
                "회원 {member}은(는) 포인트를 사용할 수 없는 상태입니다. 결제를 진행하지 \
                 마시고, 회원에게 팔팔 고객센터나 주민센터에 문의하도록 안내해 주세요."
            ),
            Refusal::RevokedCard { .. } => "분실 신고 등으로 사용이 중지된 회원카드입니다. \
                 회원에게 새 카드나 앱의 QR 코드를 사용하도록 안내해 주세요."
                .to_owned(),
            Refusal::PinRequired => "회원카드는 비밀번호가 필요합니다. 회원에게 비밀번호 \
                 6자리를 입력해 달라고 해 주세요."
                .to_owned(),
            Refusal::WrongPin => "비밀번호가 맞지 않습니다. 회원에게 다시 입력해 달라고 해 \
                 주세요. 잊었다면 주민센터에서 다시 정할 수 있습니다."
                .to_owned(),
            Refusal::TooManyScans => "최근 2분 동안 받은 QR 코드가 너무 많습니다. 잠시 후 \
                 다시 스캔해 주세요."
                .to_owned(),
        }
    }

    /// The message for the clerk, in English: what happened and what to do next.
    pub fn en(&self) -> String {
        match self {
            Refusal::Malformed { .. } => "This is not a Palpal payment code, or it could not be \
                 read. Scan it again; if that fails, ask the member to show a new code."
                .to_owned(),
            Refusal::UnknownKeyId { .. } => "The code is signed with a key this terminal does \
                 not know yet. Sync the terminal with the server, then scan again."
                .to_owned(),
            Refusal::WrongKey { .. } => "The code is signed with a key that may not issue it. \
                 Do not accept it; ask the member to update the app and show a new code."
                .to_owned(),
            Refusal::Tampered => "The code's signature does not match: it was altered or \
                 damaged. Do not accept it; ask the member to show a new code from the app."
                .to_owned(),
            Refusal::NotYetValid { .. } => "The code was issued later than this terminal's \
                 clock says it is now. Check the clocks of the terminal and the member's \
                 phone, then scan a new code."
                .to_owned(),
            Refusal::Expired {
                kind: TokenKind::Dynamic,
                ..
            } => "The code's two minutes are over. Ask the member to show a new code from the \
                 app."
                .to_owned(),
            Refusal::Expired {
                kind: TokenKind::Card,
                ..
            } => "The member card has expired. Ask the member to get a new card at the \
                 community center."
                .to_owned(),
            Refusal::Replayed => "This code was already used. Ask the member to show a new \
                 code from the app."
                .to_owned(),
            Refusal::RevokedMember { member } => format!(
                "Member {member} may not spend points. Do not proceed; ask the member to \
                 contact the Palpal help desk or a community center."
            ),
            Refusal::RevokedCard { .. } => "This member card was reported lost or replaced. \
                 Ask the member to use the new card or the app's code."
                .to_owned(),
            Refusal::PinRequired => "A member card needs its PIN. Ask the member to enter \
                 their 6-digit PIN."
                .to_owned(),
            Refusal::WrongPin => "The PIN does not match. Ask the member to enter it again; \
                 a forgotten PIN can be reset at a community center."
                .to_owned(),
            Refusal::TooManyScans => "Too many codes were scanned in the last two minutes. \
                 Wait a moment, then scan again."
                .to_owned(),
        }
    }
}

/// Why an issuer or a key set refuses its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// Not `PP-` and 1 to 18 digits.
    #[error("member number {0:?} is not PP- and digits")]
    MemberNo(String),
    /// A dynamic token's lifetime must be 1 to 120 seconds.
    #[error("lifetime {0} s is not 1 to 120 seconds")]
    Ttl(u8),
    /// A time outside what a token can carry (1970 to 2106).
    #[error("time {0} is outside 1970 to 2106")]
    Time(DateTime<Utc>),
    /// A card must expire after it is issued.
    #[error("card expires before it is issued")]
    CardValidity,
    /// An Argon2id cost outside the allowed range.
    #[error("PIN cost {0} is not 8 to 18")]
    PinCost(u8),
    /// A PIN must be exactly six digits.
    #[error("PIN is not 6 digits")]
    Pin,
    /// A published key that is not a valid Ed25519 public key.
    #[error("public key {0} is not a valid Ed25519 key")]
    PublicKey(u16),
    /// Two published keys with the same id.
    #[error("key id {0} is published twice")]
    DuplicateKeyId(u16),
    /// An issuer's secret key that is not 64 hex digits.
    #[error("secret key is not 64 hex digits")]
    SecretKey,
}

#[cfg(test)]
mod code_tests {
    use super::Refusal;
    use crate::{MemberNo, TokenKind};

    #[test]
    fn every_refusal_code_is_in_the_closed_list_once() {
        let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        let member = MemberNo(1);
        let all = [
            Refusal::Malformed { reason: "x" },
            Refusal::UnknownKeyId { key_id: 1 },
            Refusal::WrongKey { key_id: 1 },
            Refusal::Tampered,
            Refusal::NotYetValid { issued_at: at },
            Refusal::Expired {
                kind: TokenKind::Dynamic,
                expires_at: at,
            },
            Refusal::Replayed,
            Refusal::RevokedMember { member },
            Refusal::RevokedCard { member, serial: 1 },
            Refusal::PinRequired,
            Refusal::WrongPin,
            Refusal::TooManyScans,
        ];
        let codes: Vec<&str> = all.iter().map(Refusal::code).collect();
        assert_eq!(codes, Refusal::CODES);
    }
}
