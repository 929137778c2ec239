//! Client authentication at `/token`, `/par`, `/introspect` and `/revoke`:
//! `client_secret_basic` or `client_secret_post` (RFC 6749 §2.3.1), or `private_key_jwt`
//! (RFC 7523), never two at once.

use actix_web::http::header::AUTHORIZATION;
use actix_web::HttpRequest;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use std::sync::Arc;

use super::form::OAuthForm;
use crate::domain::client_assertion::ASSERTION_TYPE;
use crate::error::AppError;
use crate::services::clients;
pub use crate::services::clients::PresentedClient;
use crate::state::AppState;

fn invalid_client(description: &str) -> AppError {
    AppError::invalid_client(description)
}

/// Basic credentials are form-urlencoded before base64 (RFC 6749 §2.3.1).
fn basic_credentials(request: &HttpRequest) -> Result<Option<(String, String)>, AppError> {
    let Some(header) = request.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = header.to_str().map_err(|_| invalid_client("malformed Authorization header"))?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(invalid_client("malformed Authorization header"));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid_client("client authentication must use the Basic scheme"));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| invalid_client("malformed Basic credentials"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid_client("malformed Basic credentials"))?;
    let (id, secret) = decoded.split_once(':').ok_or_else(|| invalid_client("malformed Basic credentials"))?;
    super::input::check_encoded(decoded.as_bytes(), "Basic credentials")?;
    let unescape = |part: &str| -> String {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// How the client presented itself, with a `private_key_jwt` assertion already checked and
/// its `jti` spent ([`clients::prove_assertion`]).
pub async fn authenticated_client(
    state: &Arc<AppState>,
    request: &HttpRequest,
    form: &OAuthForm,
) -> Result<PresentedClient, AppError> {
    let presented = presented_client(request, form)?;
    if !matches!(presented, PresentedClient::Assertion { .. }) {
        return Ok(presented);
    }
    state
        .oauth_operation(move |connection, context, now| clients::prove_assertion(connection, context, presented, now))
        .await
}

fn presented_client(request: &HttpRequest, form: &OAuthForm) -> Result<PresentedClient, AppError> {
    if let Some(assertion) = form.get("client_assertion") {
        if request.headers().contains_key(AUTHORIZATION) || form.get("client_secret").is_some() {
            return Err(AppError::invalid_request("use one client authentication method, not two"));
        }
        if form.get("client_assertion_type") != Some(ASSERTION_TYPE) {
            return Err(AppError::invalid_request(format!("client_assertion_type must be {ASSERTION_TYPE}")));
        }
        return Ok(PresentedClient::Assertion {
            client_id: form.get("client_id").map(str::to_string),
            assertion: assertion.to_string(),
            endpoint: request.path().to_string(),
        });
    }
    if form.get("client_assertion_type").is_some() {
        return Err(AppError::invalid_request("client_assertion_type without client_assertion"));
    }
    let basic = basic_credentials(request)?;
    let body_id = form.get("client_id");
    let body_secret = form.get("client_secret");
    match (basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => Err(AppError::invalid_request("use one client authentication method, not two")),
        (Some((client_id, client_secret)), body_id, None) => {
            if body_id.is_some_and(|id| id != client_id) {
                return Err(AppError::invalid_request("client_id in the body differs from the authenticated client"));
            }
            Ok(PresentedClient::Secret { client_id, client_secret })
        }
        (None, Some(id), Some(secret)) => {
            Ok(PresentedClient::Secret { client_id: id.to_string(), client_secret: secret.to_string() })
        }
        (None, Some(id), None) => Ok(PresentedClient::Public { client_id: id.to_string() }),
        (None, None, Some(_)) => Err(AppError::invalid_request("client_secret without client_id")),
        (None, None, None) => Ok(PresentedClient::None),
    }
}
