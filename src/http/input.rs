//! Text from a request is valid UTF-8 without NUL bytes, or the request is a 400 (SPEC, HTTP
//! surface hardening). PostgreSQL refuses NUL in text columns and answered such requests with a
//! 500; decoding with replacement characters would silently change what the caller sent. The
//! path and query are checked for every route by [`refuse_malformed_text`]; bodies by the
//! extractors that read them (`form`, `json`), through [`check_form_body`] and
//! [`check_json_escapes`].

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::ResponseError;
use percent_encoding::percent_decode;

use crate::error::AppError;

/// Middleware: the percent-decoded path and query must be clean text.
/// The refusal is a response, not an error, so the outer middlewares (security headers) still
/// see it.
pub async fn refuse_malformed_text<B: MessageBody>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let checked =
        check_path(request.path()).and_then(|()| check_encoded(request.query_string().as_bytes(), "query string"));
    match checked {
        Ok(()) => next.call(request).await.map(ServiceResponse::map_into_left_body),
        Err(refusal) => Ok(request.into_response(refusal.error_response()).map_into_right_body()),
    }
}

/// An `application/x-www-form-urlencoded` body, before its fields are decoded. Checking the
/// whole body at once is the same as checking each field: the separators are ASCII, so an
/// invalid sequence in one field stays invalid next to its neighbours.
pub fn check_form_body(body: &[u8]) -> Result<(), AppError> {
    check_encoded(body, "form body")
}

/// A JSON body that serde has already parsed (so it is valid UTF-8 and has no raw control
/// characters) may still carry NUL as the escape `\u0000`. Backslashes only occur inside
/// strings, and each starts a two-character escape, so skipping escapes pairwise finds every
/// real `\u0000` and never mistakes `\\u0000` (an escaped backslash, then text) for one.
pub fn check_json_escapes(body: &[u8]) -> Result<(), AppError> {
    let mut at = 0;
    while let Some(offset) = body[at..].iter().position(|&byte| byte == b'\\') {
        let escape = at + offset;
        if body[escape + 1..].starts_with(b"u0000") {
            return Err(nul_refused("JSON body"));
        }
        at = escape + 2;
        if at >= body.len() {
            break;
        }
    }
    Ok(())
}

/// A path is decoded twice on its way to a handler: actix-router re-quotes it (decoding what
/// needs no escape, such as `%30` to `0`) and the `Path` extractor decodes the segment. So
/// `%%30%30` reaches the handler as a NUL; it is checked after both decodings. Refusing the
/// odd legitimate path whose second decoding looks bad (`%2500`) costs nothing.
fn check_path(path: &str) -> Result<(), AppError> {
    check_encoded(path.as_bytes(), "path")?;
    if path.contains('%') {
        let once: Vec<u8> = percent_decode(path.as_bytes()).collect();
        check_encoded(&once, "path")?;
    }
    Ok(())
}

/// Text as received on the wire, percent-encoded; `part` names it in the refusal.
pub fn check_encoded(encoded: &[u8], part: &str) -> Result<(), AppError> {
    // The common case costs one scan: nothing encoded, and the bytes come from a `&str` or are
    // checked below.
    if !encoded.contains(&b'%') && !encoded.contains(&0) && encoded.is_ascii() {
        return Ok(());
    }
    let decoded: Vec<u8> = percent_decode(encoded).collect();
    if decoded.contains(&0) {
        return Err(nul_refused(part));
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err(AppError::invalid_request(format!("the {part} is not valid UTF-8")));
    }
    Ok(())
}

fn nul_refused(part: &str) -> AppError {
    AppError::invalid_request(format!("the {part} contains a NUL character"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_passes_encoded_or_not() {
        assert!(check_form_body(b"grant_type=client_credentials&scope=a+b").is_ok());
        assert!(check_form_body("name=J%C3%BCrgen&city=Z\u{fc}rich".as_bytes()).is_ok());
        assert!(check_form_body(b"").is_ok());
    }

    #[test]
    fn nul_and_invalid_utf8_are_refused_raw_or_percent_encoded() {
        for body in [&b"client_id=%00x"[..], b"a=1&b=x%00", b"a=\0", b"a=%FF", b"a=%C3%28", b"a=%C0%AF", b"a=\xff"] {
            let error = check_form_body(body).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{body:?}");
        }
    }

    #[test]
    fn a_path_is_checked_after_the_two_decodings_it_gets() {
        assert!(check_path("/admin/v1/clients/%%30%30").is_err());
        assert!(check_path("/admin/v1/clients/%25%46%46").is_err());
        assert!(check_path("/admin/v1/scopes/Z%C3%BCrich").is_ok());
        assert!(check_path("/admin/v1/scopes/100%25").is_ok());
    }

    #[test]
    fn an_invalid_sequence_split_by_a_separator_is_still_invalid() {
        assert!(check_form_body(b"a=%C3&b=%A9").is_err());
    }

    #[test]
    fn json_nul_escapes_are_found_and_escaped_backslashes_are_not_mistaken_for_them() {
        assert!(check_json_escapes(br#"{"name":"a\u0000b"}"#).is_err());
        assert!(check_json_escapes(br#"{"a\u0000":1}"#).is_err());
        assert!(check_json_escapes(br#"{"name":"a\\u0000b"}"#).is_ok());
        assert!(check_json_escapes(br#"{"name":"a\\\u0000b"}"#).is_err());
        assert!(check_json_escapes(br#"{"name":"a\u0001\n\\"}"#).is_ok());
        assert!(check_json_escapes(br#"{"name":"end\\"}"#).is_ok());
    }
}
