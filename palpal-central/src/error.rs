//! The errors the HTTP API answers with: a closed set of codes, each with an HTTP status and a
//! message in Korean and in English. The body is always
//! `{"code": "...", "message": "<Korean>", "message_en": "<English>"}`; clients switch on
//! `code`, never on the message.

use serde::{Deserialize, Serialize};

/// The `Retry-After` of `storage_full`, in seconds.
pub const STORAGE_FULL_RETRY_AFTER_SECONDS: u64 = 30;

/// The `Retry-After` of `database_unavailable`, in seconds: a PostgreSQL restart or a
/// standby's promotion takes seconds.
pub const DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 2;

/// Why a request was refused as a whole.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, thiserror::Error,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body is not the JSON the endpoint expects (400).
    #[error("invalid_request")]
    InvalidRequest,
    /// The body is larger than the server accepts (413).
    #[error("payload_too_large")]
    PayloadTooLarge,
    /// The batch has more operations than the server accepts (413).
    #[error("batch_too_large")]
    BatchTooLarge,
    /// The signature headers are missing or malformed (401).
    #[error("unauthenticated")]
    Unauthenticated,
    /// The request's timestamp is too far from the server's clock (401).
    #[error("stale_timestamp")]
    StaleTimestamp,
    /// The signature does not match the terminal's key (401).
    #[error("bad_signature")]
    BadSignature,
    /// The nonce was used before (401).
    #[error("replayed_nonce")]
    ReplayedNonce,
    /// No enrolled terminal has this id (401).
    #[error("unknown_terminal")]
    UnknownTerminal,
    /// The terminal was revoked (403).
    #[error("revoked_terminal")]
    RevokedTerminal,
    /// The enrollment code is wrong, already used or revoked (403).
    #[error("bad_code")]
    BadCode,
    /// The terminal's role may not use this endpoint (403).
    #[error("role_not_allowed")]
    RoleNotAllowed,
    /// No such endpoint (404).
    #[error("not_found")]
    NotFound,
    /// This server was started without a card-signing key (403).
    #[error("cards_not_issued")]
    CardsNotIssued,
    /// No member has this number, or the enrollment has not reached the server (404).
    #[error("unknown_member")]
    UnknownMember,
    /// Kiosks issue only the first card of members they signed up themselves (403).
    #[error("card_not_allowed")]
    CardNotAllowed,
    /// The card was issued before with another PIN (409).
    #[error("card_exists")]
    CardExists,
    /// The card's PIN check is cheaper than the server issues cards with (400).
    #[error("weak_pin_check")]
    WeakPinCheck,
    /// The body came slower than the server waits for (408); the connection is closed.
    #[error("request_too_slow")]
    RequestTooSlow,
    /// `/metrics` without its bearer token, or not served on this address (404).
    #[error("metrics_not_here")]
    MetricsNotHere,
    /// Too much work in flight; try again after `Retry-After` seconds (429).
    #[error("overloaded")]
    Overloaded,
    /// The server's disk is full; nothing of the request was applied. Retry after
    /// `Retry-After` seconds, while the operator frees space (503).
    #[error("storage_full")]
    StorageFull,
    /// The server cannot reach its database for the moment (PostgreSQL restarting, or its
    /// primary lost and the standby not yet promoted); nothing of the request was applied.
    /// Retry after `Retry-After` seconds, at this server process or another (503).
    #[error("database_unavailable")]
    DatabaseUnavailable,
    /// The server failed; the request may be retried (500).
    #[error("internal")]
    Internal,
}

impl ErrorCode {
    /// The code as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::StaleTimestamp => "stale_timestamp",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::ReplayedNonce => "replayed_nonce",
            ErrorCode::UnknownTerminal => "unknown_terminal",
            ErrorCode::RevokedTerminal => "revoked_terminal",
            ErrorCode::BadCode => "bad_code",
            ErrorCode::RoleNotAllowed => "role_not_allowed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::CardsNotIssued => "cards_not_issued",
            ErrorCode::UnknownMember => "unknown_member",
            ErrorCode::CardNotAllowed => "card_not_allowed",
            ErrorCode::CardExists => "card_exists",
            ErrorCode::WeakPinCheck => "weak_pin_check",
            ErrorCode::RequestTooSlow => "request_too_slow",
            ErrorCode::MetricsNotHere => "metrics_not_here",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::StorageFull => "storage_full",
            ErrorCode::DatabaseUnavailable => "database_unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status it is answered with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::WeakPinCheck => 400,
            ErrorCode::PayloadTooLarge | ErrorCode::BatchTooLarge => 413,
            ErrorCode::Unauthenticated
            | ErrorCode::StaleTimestamp
            | ErrorCode::BadSignature
            | ErrorCode::ReplayedNonce
            | ErrorCode::UnknownTerminal => 401,
            ErrorCode::RevokedTerminal
            | ErrorCode::BadCode
            | ErrorCode::RoleNotAllowed
            | ErrorCode::CardsNotIssued
            | ErrorCode::CardNotAllowed => 403,
            ErrorCode::NotFound | ErrorCode::UnknownMember | ErrorCode::MetricsNotHere => 404,
            ErrorCode::RequestTooSlow => 408,
            ErrorCode::CardExists => 409,
            ErrorCode::Overloaded => 429,
            ErrorCode::StorageFull | ErrorCode::DatabaseUnavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The `Retry-After` this code is answered with, in seconds, when the code itself sets it.
    /// (`overloaded` gets the server's configured one.) Freeing space on the server's disk
    /// takes an operator minutes, so terminals should not knock every second meanwhile.
    pub fn retry_after_seconds(self) -> Option<u64> {
        match self {
            ErrorCode::StorageFull => Some(STORAGE_FULL_RETRY_AFTER_SECONDS),
            ErrorCode::DatabaseUnavailable => Some(DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS),
            _ => None,
        }
    }

    /// The message in Korean, saying what to do next.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => {
                "요청 형식이 올바르지 않습니다. 단말기 소프트웨어를 확인해 주세요."
            }
            ErrorCode::PayloadTooLarge => {
                "요청이 너무 큽니다. 더 작은 묶음으로 나누어 보내 주세요."
            }
            ErrorCode::BatchTooLarge => {
                "한 번에 보낸 작업이 너무 많습니다. 더 작은 묶음으로 나누어 보내 주세요."
            }
            ErrorCode::Unauthenticated => "서명 정보가 없습니다. 단말기를 다시 등록해 주세요.",
            ErrorCode::StaleTimestamp => {
                "단말기 시계가 서버와 맞지 않습니다. 단말기 시간을 맞춘 뒤 다시 시도해 주세요."
            }
            ErrorCode::BadSignature => "서명이 올바르지 않습니다. 단말기를 다시 등록해 주세요.",
            ErrorCode::ReplayedNonce => "이미 받은 요청입니다. 새 요청으로 다시 보내 주세요.",
            ErrorCode::UnknownTerminal => {
                "등록되지 않은 단말기입니다. 관리자에게 등록 코드를 받아 등록해 주세요."
            }
            ErrorCode::RevokedTerminal => "사용이 중지된 단말기입니다. 관리자에게 문의해 주세요.",
            ErrorCode::BadCode => {
                "등록 코드가 올바르지 않거나 이미 사용되었습니다. 관리자에게 새 코드를 받아 주세요."
            }
            ErrorCode::RoleNotAllowed => {
                "이 단말기의 역할로는 할 수 없는 요청입니다. 가입 키오스크에서 해 주세요."
            }
            ErrorCode::NotFound => "없는 주소입니다. 서버 주소를 확인해 주세요.",
            ErrorCode::CardsNotIssued => {
                "이 서버는 회원 카드를 발급하지 않습니다. 가입은 접수증으로 완료되었으니 운영 센터에 카드 발급을 문의해 주세요."
            }
            ErrorCode::UnknownMember => {
                "서버에 없는 회원번호입니다. 가입이 서버에 전송된 뒤 다시 시도해 주세요."
            }
            ErrorCode::CardNotAllowed => {
                "키오스크는 그곳에서 가입한 회원의 첫 카드만 발급합니다. 재발급은 운영 센터에 문의해 주세요."
            }
            ErrorCode::CardExists => {
                "이 회원의 카드는 이미 다른 비밀번호로 발급되었습니다. 처음 정한 비밀번호를 입력하시거나, 재발급은 운영 센터에 문의해 주세요."
            }
            ErrorCode::WeakPinCheck => {
                "카드 비밀번호 확인값의 보안 강도가 낮아 발급할 수 없습니다. 키오스크 소프트웨어를 최신으로 바꾼 뒤 다시 발급해 주세요."
            }
            ErrorCode::RequestTooSlow => {
                "요청이 너무 느리게 도착해 연결을 끊었습니다. 작업은 단말기에 저장되어 있으며 네트워크가 나아지면 다시 보냅니다."
            }
            ErrorCode::MetricsNotHere => {
                "이 주소에서는 지표를 볼 수 없습니다. 운영자가 정한 지표 주소나 토큰을 사용해 주세요."
            }
            ErrorCode::Overloaded => {
                "서버가 혼잡합니다. 작업은 단말기에 저장되어 있으며 잠시 후 자동으로 다시 보냅니다."
            }
            ErrorCode::StorageFull => {
                "서버 저장 공간이 가득 차서 이번 요청은 반영되지 않았습니다. 작업은 단말기에 저장되어 있고, 운영자가 공간을 확보하는 대로 자동으로 다시 보냅니다."
            }
            ErrorCode::DatabaseUnavailable => {
                "서버가 데이터베이스에 잠시 연결할 수 없어 이번 요청은 반영되지 않았습니다. 작업은 단말기에 저장되어 있으며 잠시 후 자동으로 다시 보냅니다."
            }
            ErrorCode::Internal => {
                "서버 오류입니다. 작업은 단말기에 저장되어 있으며 나중에 다시 보냅니다."
            }
        }
    }

    /// The message in English.
    pub fn message_en(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "The request is not valid; check the terminal software.",
            ErrorCode::PayloadTooLarge => "The request is too large; send smaller batches.",
            ErrorCode::BatchTooLarge => "Too many operations in one batch; send smaller batches.",
            ErrorCode::Unauthenticated => {
                "The signature headers are missing; enroll the terminal again."
            }
            ErrorCode::StaleTimestamp => {
                "The terminal's clock does not match the server's; set the clock and retry."
            }
            ErrorCode::BadSignature => "The signature is not valid; enroll the terminal again.",
            ErrorCode::ReplayedNonce => {
                "This request was received before; send it again as a new request."
            }
            ErrorCode::UnknownTerminal => {
                "The terminal is not enrolled; get an enrollment code from the operator."
            }
            ErrorCode::RevokedTerminal => "This terminal has been revoked; contact the operator.",
            ErrorCode::BadCode => {
                "The enrollment code is wrong or already used; get a new code from the operator."
            }
            ErrorCode::RoleNotAllowed => {
                "This terminal's role may not make this request; use a sign-up kiosk."
            }
            ErrorCode::NotFound => "No such endpoint; check the server address.",
            ErrorCode::CardsNotIssued => {
                "This server does not issue member cards. The sign-up is complete with its receipt; ask the operator for a card."
            }
            ErrorCode::UnknownMember => {
                "No member has this number on the server; try again once the sign-up has been sent."
            }
            ErrorCode::CardNotAllowed => {
                "A kiosk issues only the first card of members who signed up there; ask the operator for a new card."
            }
            ErrorCode::CardExists => {
                "This member's card was already issued with another PIN. Enter the PIN chosen first, or ask the operator for a new card."
            }
            ErrorCode::WeakPinCheck => {
                "The card's PIN check is too cheap to issue; update the kiosk software and issue the card again."
            }
            ErrorCode::RequestTooSlow => {
                "The request arrived too slowly and the connection was closed. Work is kept on the terminal and sent again when the network is better."
            }
            ErrorCode::MetricsNotHere => {
                "Metrics are not served here; use the metrics address or token the operator set."
            }
            ErrorCode::Overloaded => {
                "The server is busy. Work is kept on the terminal and sent again shortly."
            }
            ErrorCode::StorageFull => {
                "The server's storage is full, so nothing of this request was applied. Work is kept on the terminal and sent again automatically once the operator has freed space."
            }
            ErrorCode::DatabaseUnavailable => {
                "The server cannot reach its database for the moment, so nothing of this request was applied. Work is kept on the terminal and sent again shortly."
            }
            ErrorCode::Internal => {
                "The server failed. Work is kept on the terminal and sent again later."
            }
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, from a closed set.
    pub code: ErrorCode,
    /// The message in Korean.
    pub message: String,
    /// The message in English.
    pub message_en: String,
}

impl From<ErrorCode> for ErrorBody {
    fn from(code: ErrorCode) -> ErrorBody {
        ErrorBody {
            code,
            message: code.message().to_owned(),
            message_en: code.message_en().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_shape_is_pinned() -> anyhow::Result<()> {
        let json = serde_json::to_value(ErrorBody::from(ErrorCode::Overloaded))?;
        assert_eq!(json["code"], "overloaded");
        assert_eq!(
            json.as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>()),
            Some(vec![
                "code".to_owned(),
                "message".to_owned(),
                "message_en".to_owned()
            ])
        );
        assert!(json["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("서버가 혼잡합니다")));
        Ok(())
    }

    #[test]
    fn storage_full_is_a_retryable_503_that_says_the_work_is_kept() {
        let code = ErrorCode::StorageFull;
        assert_eq!((code.as_str(), code.status()), ("storage_full", 503));
        assert_eq!(code.retry_after_seconds(), Some(30));
        assert_eq!(ErrorCode::Overloaded.retry_after_seconds(), None);
        assert!(code.message().starts_with("서버 저장 공간이 가득 차서"));
        assert!(code.message().contains("자동으로 다시 보냅니다"));
        assert!(code.message_en().contains("freed space"));
        let lost = ErrorCode::DatabaseUnavailable;
        assert_eq!(
            (lost.as_str(), lost.status()),
            ("database_unavailable", 503)
        );
        assert_eq!(lost.retry_after_seconds(), Some(2));
        assert!(lost.message().contains("자동으로 다시 보냅니다"));
    }

    #[test]
    fn wire_names_match_serde() -> anyhow::Result<()> {
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::PayloadTooLarge,
            ErrorCode::BatchTooLarge,
            ErrorCode::Unauthenticated,
            ErrorCode::StaleTimestamp,
            ErrorCode::BadSignature,
            ErrorCode::ReplayedNonce,
            ErrorCode::UnknownTerminal,
            ErrorCode::RevokedTerminal,
            ErrorCode::BadCode,
            ErrorCode::NotFound,
            ErrorCode::CardsNotIssued,
            ErrorCode::UnknownMember,
            ErrorCode::CardNotAllowed,
            ErrorCode::CardExists,
            ErrorCode::Overloaded,
            ErrorCode::StorageFull,
            ErrorCode::DatabaseUnavailable,
            ErrorCode::Internal,
        ] {
            assert_eq!(serde_json::to_value(code)?, code.as_str());
            assert_eq!(code.to_string(), code.as_str());
        }
        Ok(())
    }
}
