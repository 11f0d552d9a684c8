//! The Policies page: the policies in force and scheduled, a policy file uploaded (a file or
//! the text typed, as `multipart/form-data`), checked with `points-core`'s parser, previewed
//! on sample weeks and published with its start date, and a scheduled policy cancelled. The
//! rules are `crate::policies`'; the store applies them in the change's transaction.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use chrono::NaiveDate;

use super::pages::{self, Nav, PolicyForm};
use super::rules::Permission;
use super::{check_change, see_other, session_for, signed_page, Console, Ctx, Form, Refusal};
use crate::policies::{self, PolicyRefusal, PreviewLine, MAX_POLICY_BYTES};

/// The largest body of an upload: the file and the text, each at most [`MAX_POLICY_BYTES`],
/// and the form around them.
pub const MAX_UPLOAD_BYTES: usize = 2 * MAX_POLICY_BYTES + 8 * 1024;

/// The most characters of a policy's name in a cancel form.
const MAX_POLICY_NAME_CHARS: usize = 200;

/// One part of a `multipart/form-data` body: its field name and its bytes.
pub(super) struct Part {
    pub(super) name: String,
    pub(super) bytes: Vec<u8>,
}

/// The parts named `names` that are UTF-8, as a form: the small fields of a multipart body,
/// for the CSRF check and the role's.
pub(super) fn small_fields(parts: &[Part], names: &[&str]) -> Form {
    Form(
        names
            .iter()
            .filter_map(|name| {
                let part = parts.iter().find(|p| p.name == *name)?;
                Some((
                    (*name).to_owned(),
                    String::from_utf8(part.bytes.clone()).ok()?,
                ))
            })
            .collect(),
    )
}

/// A `multipart/form-data` request's parts, or why it cannot be read.
pub(super) fn multipart_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Vec<Part>, Refusal> {
    let body = super::body_of(body)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    multipart(content_type, &body).ok_or(Refusal::InvalidForm)
}

/// The parts of a `multipart/form-data` body with the boundary `content_type` names; `None`
/// if it is not one.
fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = params.split(';').find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
    })?;
    if boundary.is_empty() || boundary.len() > 200 {
        return None;
    }
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    // Skip the preamble up to the first delimiter.
    let first = find(rest, delimiter.as_bytes())?;
    rest = &rest[first + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&rest[..head_end]).ok()?;
        rest = &rest[head_end + 4..];
        let end = find(rest, format!("\r\n{delimiter}").as_bytes())?;
        let name = head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            if !key.trim().eq_ignore_ascii_case("content-disposition") {
                return None;
            }
            value.split(';').find_map(|param| {
                let (k, v) = param.split_once('=')?;
                (k.trim() == "name").then(|| v.trim().trim_matches('"').to_owned())
            })
        })?;
        parts.push(Part {
            name,
            bytes: rest[..end].to_vec(),
        });
        rest = &rest[end + 2 + delimiter.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// What the page shows besides the lists.
#[derive(Default)]
struct Shown {
    text: String,
    start: String,
    problem: Option<(String, String)>,
    preview: Option<Vec<PreviewLine>>,
    rerate_text: String,
    rerate_problem: Option<(String, String)>,
    rerate: Option<policies::RerateReport>,
}

async fn answer(
    console: &Arc<Console>,
    ctx: &Ctx,
    signed: &super::SignedIn,
    status: StatusCode,
    shown: Shown,
) -> Result<Response, Refusal> {
    let rows = console.store(|store| store.policy_rows()).await?;
    let today = points_core::kst_day(console.clock.now());
    let body = pages::policies(
        ctx.lang,
        &signed.session.csrf,
        signed.session.role.may(Permission::Change),
        &rows,
        today,
        &PolicyForm {
            text: &shown.text,
            start: &shown.start,
        },
        shown.problem.as_ref(),
        shown.preview.as_deref(),
    );
    let rerate = pages::rerate(
        ctx.lang,
        &signed.session.csrf,
        signed.session.role.may(Permission::Rerate),
        &shown.rerate_text,
        shown.rerate_problem.as_ref(),
        shown.rerate.as_ref(),
    );
    let body = maud::html! { (body) (rerate) };
    Ok(signed_page(
        console,
        ctx,
        signed,
        Nav::Policies,
        super::notice_of(ctx),
        status,
        body,
    ))
}

/// `GET /console/policies`.
pub(super) async fn policies_page(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    method: Method,
) -> Response {
    let signed = match session_for(&console, &ctx, &method).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let shown = async {
        signed.require(Permission::Read)?;
        answer(&console, &ctx, &signed, StatusCode::OK, Shown::default()).await
    };
    shown
        .await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

/// The policy text of an upload: the file chosen, or else the text typed; at most
/// [`MAX_POLICY_BYTES`], UTF-8, and CRLF lines read as LF ones (terminals get one form of
/// the text).
fn uploaded_text(parts: &[Part]) -> Result<String, PolicyRefusal> {
    let field = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.bytes.as_slice())
    };
    let file = field("file").filter(|bytes| !bytes.is_empty());
    let chosen = file.or_else(|| field("text")).unwrap_or_default();
    if chosen.len() > MAX_POLICY_BYTES {
        return Err(PolicyRefusal::TooLarge {
            bytes: chosen.len(),
        });
    }
    let text = std::str::from_utf8(chosen).map_err(|_| PolicyRefusal::Unreadable {
        line: None,
        reason: "not UTF-8 text (UTF-8 글자가 아닙니다)".to_owned(),
    })?;
    Ok(text.replace("\r\n", "\n"))
}

/// `POST /console/policies`: a policy file to preview (`action=preview`) or publish.
pub(super) async fn post_policy(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed = match session_for(&console, &ctx, &Method::POST).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let done = async {
        let parts = multipart_body(&headers, body)?;
        let form = small_fields(&parts, &["csrf", "action", "start"]);
        check_change(&ctx, &headers, &form, &signed.session.csrf)?;
        signed.require(Permission::Change)?;
        let publish = match form.get("action") {
            Some("preview") => false,
            Some("publish") => true,
            _ => return Err(Refusal::InvalidForm),
        };
        let start = form.get("start").unwrap_or("").trim().to_owned();
        let mut shown = Shown {
            start: start.chars().take(10).collect(),
            ..Shown::default()
        };
        let wrong = |mut shown: Shown, refusal: PolicyRefusal| {
            shown.problem = Some(refusal.message());
            answer(&console, &ctx, &signed, StatusCode::BAD_REQUEST, shown)
        };
        shown.text = match uploaded_text(&parts) {
            Ok(text) => text,
            Err(refusal) => return wrong(shown, refusal).await,
        };
        let from = if start.is_empty() {
            None
        } else {
            match NaiveDate::parse_from_str(&start, "%Y-%m-%d") {
                Ok(day) => Some(day),
                Err(_) => {
                    shown.problem = Some((
                        super::text::T::BadStartDate
                            .get(super::text::Lang::Ko)
                            .to_owned(),
                        super::text::T::BadStartDate
                            .get(super::text::Lang::En)
                            .to_owned(),
                    ));
                    return answer(&console, &ctx, &signed, StatusCode::BAD_REQUEST, shown).await;
                }
            }
        };
        let candidate = match policies::read_candidate(&shown.text, from) {
            Ok(candidate) => candidate,
            Err(refusal) => return wrong(shown, refusal).await,
        };
        let now = console.clock.now();
        if publish {
            let by = signed.actor();
            let stored = candidate.clone();
            let published = console
                .store(move |store| store.publish_policy(&stored, &by, now))
                .await?;
            return match published {
                Ok(_) => Ok(see_other("/console/policies?m=policy_published")),
                Err(refusal) => wrong(shown, refusal).await,
            };
        }
        let (rows, in_force) = console
            .store(|store| Ok((store.policy_rows()?, store.policies()?)))
            .await?;
        let checked = policies::check_publish(&rows, &candidate.policy, points_core::kst_day(now))
            .and_then(|()| policies::with_candidate(&rows, &candidate.policy));
        match checked {
            Ok(new) => {
                shown.preview = Some(policies::preview(&in_force.set, &new, &candidate.policy));
                answer(&console, &ctx, &signed, StatusCode::OK, shown).await
            }
            Err(refusal) => wrong(shown, refusal).await,
        }
    };
    done.await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

/// `POST /console/policies/rerate`: a corrected text of a policy in force, previewed
/// (`action=preview`: every member re-rated, nothing stored) or applied (`action=apply`, with
/// the preview's digest in `confirm`). Admins only.
pub(super) async fn rerate_policy(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed = match session_for(&console, &ctx, &Method::POST).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let done = async {
        let parts = multipart_body(&headers, body)?;
        let form = small_fields(&parts, &["csrf", "action", "confirm"]);
        check_change(&ctx, &headers, &form, &signed.session.csrf)?;
        signed.require(Permission::Rerate)?;
        let confirm = match form.get("action") {
            Some("preview") => None,
            Some("apply") => {
                let digest = form.get("confirm").unwrap_or("").trim().to_owned();
                if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Refusal::InvalidForm);
                }
                Some(digest)
            }
            _ => return Err(Refusal::InvalidForm),
        };
        let mut shown = Shown::default();
        let wrong = |mut shown: Shown, refusal: PolicyRefusal| {
            let status = if refusal == PolicyRefusal::Stale {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            shown.rerate_problem = Some(refusal.message());
            answer(&console, &ctx, &signed, status, shown)
        };
        shown.rerate_text = match uploaded_text(&parts) {
            Ok(text) => text,
            Err(refusal) => return wrong(shown, refusal).await,
        };
        let candidate = match policies::read_candidate(&shown.rerate_text, None) {
            Ok(candidate) => candidate,
            Err(refusal) => return wrong(shown, refusal).await,
        };
        let now = console.clock.now();
        let by = signed.actor();
        let applying = confirm.is_some();
        let rerated = console
            .store(move |store| store.rerate_policy(&candidate, confirm.as_deref(), &by, now))
            .await?;
        match rerated {
            Ok(_) if applying => Ok(see_other("/console/policies?m=policy_rerated")),
            Ok(report) => {
                shown.rerate = Some(report);
                answer(&console, &ctx, &signed, StatusCode::OK, shown).await
            }
            Err(refusal) => wrong(shown, refusal).await,
        }
    };
    done.await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

/// `POST /console/policies/cancel`: cancels a policy that has not started.
pub(super) async fn cancel_policy(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed = match session_for(&console, &ctx, &Method::POST).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let done = async {
        let form = Form::parse(body)?;
        check_change(&ctx, &headers, &form, &signed.session.csrf)?;
        signed.require(Permission::Change)?;
        let name = form
            .field("name", MAX_POLICY_NAME_CHARS)
            .map_err(|_| Refusal::InvalidForm)?
            .to_owned();
        let now = console.clock.now();
        let by = signed.actor();
        let cancelled = console
            .store(move |store| store.cancel_policy(&name, &by, now))
            .await?;
        match cancelled {
            Ok(_) => Ok(see_other("/console/policies?m=policy_cancelled")),
            Err(refusal) => {
                let shown = Shown {
                    problem: Some(refusal.message()),
                    ..Shown::default()
                };
                answer(&console, &ctx, &signed, StatusCode::BAD_REQUEST, shown).await
            }
        }
    };
    done.await
        .unwrap_or_else(|refusal| refusal.answer(&ctx, Some(&signed.session)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies_are_read_part_by_part() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.toml\"\r\nContent-Type: text/plain\r\n\r\nname = \"x\"\r\n\r\n--XyZ--\r\n";
        let parts = multipart("multipart/form-data; boundary=XyZ", body).expect("parts");
        let got: Vec<(&str, &[u8])> = parts
            .iter()
            .map(|p| (p.name.as_str(), p.bytes.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![("csrf", &b"abc"[..]), ("file", &b"name = \"x\"\r\n"[..])]
        );
        assert!(multipart("application/x-www-form-urlencoded", body).is_none());
        assert!(multipart("multipart/form-data; boundary=XyZ", b"--XyZ\r\nno end").is_none());
    }

    fn part(name: &str, bytes: &[u8]) -> Part {
        Part {
            name: name.to_owned(),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn an_uploaded_text_is_the_file_else_the_typed_text_checked_once() {
        // The file wins over the text box; an empty file field leaves the typed text.
        let both = [part("text", b"typed"), part("file", b"a = 1\r\nb = 2\r\n")];
        assert_eq!(uploaded_text(&both), Ok("a = 1\nb = 2\n".to_owned()));
        let typed = [part("file", b""), part("text", b"typed\r\n")];
        assert_eq!(uploaded_text(&typed), Ok("typed\n".to_owned()));
        assert_eq!(uploaded_text(&[]), Ok(String::new()));
        let large = [part("file", &vec![b'#'; MAX_POLICY_BYTES + 1])];
        assert_eq!(
            uploaded_text(&large),
            Err(PolicyRefusal::TooLarge {
                bytes: MAX_POLICY_BYTES + 1
            })
        );
        let binary = [part("text", &[0xff, 0xfe, b'a'])];
        assert!(matches!(
            uploaded_text(&binary),
            Err(PolicyRefusal::Unreadable { line: None, .. })
        ));
    }
}
