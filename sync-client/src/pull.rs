//! The pull half of the sync protocol, without IO: the request body for a cursor, and what an
//! HTTP answer to it means (a page to apply, a wait, or a refusal to show the operator).
//!
//! A page is checked before the shell applies it, so a malformed or inconsistent answer
//! changes nothing on the terminal: the cursor must be present, each key must be 32 bytes of
//! standard base64, each balance must be `credited - spent`, and names must not be empty.
//! What a page means beyond that (replacing the policy set, the schedule and the leases) is
//! the store's business.

use std::time::Duration;

use base64::Engine as _;

use crate::{parse_retry_after, Response};
use sync_protocol::wire::{ErrorBody, PullRequest, PullResponse};

/// The most changes the server gives in one answer.
pub const MAX_PULL_LIMIT: u32 = 1000;

/// Why a pull did not give a page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PullError {
    /// The server is busy or failing for now; pull again later (`retry_after` is its floor).
    #[error(
        "중앙 서버가 지금은 답하지 못합니다 (HTTP {status}). 잠시 뒤 다시 동기화합니다 / the \
         central server cannot answer now (HTTP {status}); the terminal pulls again later"
    )]
    RetryLater {
        /// The HTTP status.
        status: u16,
        /// The server's `Retry-After`, when it gave one in seconds.
        retry_after: Option<Duration>,
    },
    /// The server refused the request; pulling again will not help until someone acts.
    #[error("{message} ({code}, HTTP {status})")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's code, or `http_<status>`.
        code: String,
        /// Korean, then English.
        message: String,
    },
    /// The answer is not a page this terminal can trust; nothing of it is applied.
    #[error(
        "중앙 서버의 응답을 읽을 수 없어 아무것도 바꾸지 않았습니다 ({reason}). 관리자에게 \
         알려 주세요 / the central server's answer could not be read, nothing was changed \
         ({reason}); tell the operator"
    )]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
}

/// The body of a pull from `cursor` (none: from the beginning), at most `limit` changes,
/// telling the terminal's operation `sequence` when it keeps one.
pub fn pull_body(cursor: Option<&str>, limit: u32, sequence: Option<u64>) -> Vec<u8> {
    let request = PullRequest {
        cursor: cursor.filter(|c| !c.is_empty()).map(str::to_owned),
        limit: Some(limit.clamp(1, MAX_PULL_LIMIT)),
        sequence,
    };
    serde_json::to_vec(&request).unwrap_or_default()
}

/// What an HTTP answer to a pull means: a checked page, or why there is none.
pub fn read_pull_answer(response: &Response) -> Result<PullResponse, PullError> {
    match response.status {
        200 => {
            let page: PullResponse =
                serde_json::from_slice(&response.body).map_err(|e| PullError::Malformed {
                    reason: format!("not a pull answer: {e}"),
                })?;
            check_page(&page).map_err(|reason| PullError::Malformed { reason })?;
            Ok(page)
        }
        status @ (408 | 425 | 429 | 500..=599) => Err(PullError::RetryLater {
            status,
            retry_after: response.retry_after.as_deref().and_then(parse_retry_after),
        }),
        status => {
            let error: ErrorBody = serde_json::from_slice(&response.body).unwrap_or_default();
            if status == 401 && (error.code == "replayed_nonce" || error.code == "stale_timestamp")
            {
                return Err(PullError::RetryLater {
                    status,
                    retry_after: None,
                });
            }
            let code = if error.code.is_empty() {
                format!("http_{status}")
            } else {
                error.code
            };
            let message = if error.message.is_empty() {
                format!(
                    "서버가 요청을 거절했습니다 (HTTP {status}). 관리자에게 문의해 주세요. / The \
                     server refused the request (HTTP {status}); contact the operator."
                )
            } else {
                format!("{} / {}", error.message, error.message_en)
            };
            Err(PullError::Refused {
                status,
                code,
                message,
            })
        }
    }
}

/// Why `page` cannot be applied, if it cannot.
pub fn check_page(page: &PullResponse) -> Result<(), String> {
    if page.cursor.trim().is_empty() {
        return Err("the cursor is empty".to_owned());
    }
    for key in &page.redemption_keys {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&key.public_key)
            .map_err(|_| format!("redemption key {} is not base64", key.key_id))?;
        if bytes.len() != 32 {
            return Err(format!("redemption key {} is not 32 bytes", key.key_id));
        }
    }
    for b in &page.balances {
        if b.member_number.trim().is_empty() {
            return Err("a balance names no member".to_owned());
        }
        if b.credited.checked_sub(b.spent) != Some(b.balance) {
            return Err(format!(
                "the balance of {} is not credited minus spent",
                b.member_number
            ));
        }
    }
    if page.revoked_members.iter().any(|m| m.trim().is_empty()) {
        return Err("a revoked member has no number".to_owned());
    }
    if page
        .watch_pairings
        .iter()
        .any(|p| p.serial.trim().is_empty() || p.member_number.trim().is_empty())
    {
        return Err("a watch pairing names no watch or no member".to_owned());
    }
    if let Some(policies) = &page.policies {
        if policies.is_empty() {
            return Err("the policy set is empty".to_owned());
        }
    }
    if page.quota_leases.iter().any(|l| l.lease_id.is_empty()) {
        return Err("a quota lease has no id".to_owned());
    }
    Ok(())
}

/// The decoded 32 bytes of a checked redemption key.
pub fn key_bytes(public_key: &str) -> Option<[u8; 32]> {
    base64::engine::general_purpose::STANDARD
        .decode(public_key)
        .ok()?
        .try_into()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Response {
        Response {
            status,
            retry_after: Some("7".to_owned()),
            body: body.as_bytes().to_vec(),
        }
    }

    const PAGE: &str = r#"{"cursor":"1.ed0cfe4797745701.43","more":false,
        "redemption_keys":[{"key_id":1,"public_key":"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=","retired":false}],
        "revoked_members":["PP-00000007"],
        "balances":[{"member_number":"PP-00000001","credited":1200,"spent":300,"balance":900}],
        "watch_pairings":[{"serial":"PW-0042","member_number":"PP-00000001","ended":false}],
        "admission":{"days":{"2025-12-03":{"rule":"age_band","min_age":65,"max_age":120},"2025-12-04":{"rule":"odd_birth_years"}}},
        "quota_leases":[{"lease_id":"Q-000001","site":"성북구 보건소","day":"2025-12-03","places":200,"used":12}],
        "extra":"ignored"}"#;

    #[test]
    fn the_documented_example_reads_as_a_page() {
        let page = read_pull_answer(&answer(200, PAGE)).unwrap();
        assert_eq!(page.cursor, "1.ed0cfe4797745701.43");
        assert_eq!(page.balances[0].balance, 900);
        assert_eq!(page.admission.unwrap().days.len(), 2);
        assert_eq!(page.quota_leases[0].remaining(), 188);
        assert_eq!(
            key_bytes(&page.redemption_keys[0].public_key).unwrap()[0],
            3
        );
    }

    #[test]
    fn the_request_body_names_the_cursor_a_bounded_limit_and_the_sequence() {
        assert_eq!(pull_body(None, 0, None), br#"{"limit":1}"#);
        assert_eq!(
            pull_body(Some("1.ab.3"), 5000, Some(7)),
            br#"{"cursor":"1.ab.3","limit":1000,"sequence":7}"#
        );
    }

    fn check(status: u16, body: &str, expect: &str) {
        let got = match read_pull_answer(&answer(status, body)) {
            Ok(_) => "page".to_owned(),
            Err(PullError::RetryLater { retry_after, .. }) => format!("retry {retry_after:?}"),
            Err(PullError::Refused { code, .. }) => format!("refused {code}"),
            Err(PullError::Malformed { reason }) => format!("malformed {reason}"),
        };
        assert!(got.starts_with(expect), "{status} {body}: {got}");
    }

    #[test]
    fn bad_answers_are_refused_before_anything_is_applied() {
        check(200, "not json", "malformed not a pull answer");
        check(
            200,
            r#"{"cursor":"","more":false}"#,
            "malformed the cursor is empty",
        );
        check(
            200,
            &PAGE.replace(r#""balance":900"#, r#""balance":901"#),
            "malformed the balance of PP-00000001",
        );
        check(
            200,
            &PAGE.replace("A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=", "AAAA"),
            "malformed redemption key 1 is not 32 bytes",
        );
        check(
            200,
            &PAGE.replace(r#""more":false"#, r#""more":false,"policies":[]"#),
            "malformed the policy set is empty",
        );
        check(429, "", "retry Some(7s)");
        check(503, "", "retry Some(7s)");
        check(
            403,
            r#"{"code":"revoked_terminal","message":"중지","message_en":"revoked"}"#,
            "refused revoked_terminal",
        );
        check(404, "", "refused http_404");
        check(401, r#"{"code":"replayed_nonce"}"#, "retry None");
        check(401, r#"{"code":"stale_timestamp"}"#, "retry None");
    }
}
