//! Client authentication at `/token`, `/introspect` and `/revoke`: `client_secret_basic` or
//! `client_secret_post` (RFC 6749 §2.3.1), never both at once.

use actix_web::http::header::AUTHORIZATION;
use actix_web::HttpRequest;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::form::OAuthForm;
use crate::error::AppError;
pub use crate::services::clients::PresentedClient;

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

pub fn presented_client(request: &HttpRequest, form: &OAuthForm) -> Result<PresentedClient, AppError> {
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
