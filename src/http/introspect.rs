//! `POST /introspect` (RFC 7662, signed as RFC 9701 when asked) and `POST /revoke` (RFC 7009).

use actix_web::http::header::ACCEPT;
use actix_web::{web, HttpRequest, HttpResponse};
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};

use super::client_auth::authenticated_client;
use super::form::OAuthForm;
use crate::error::AppError;
use crate::oauth::introspection_endpoint;
use crate::services::clients::{self, PublicClients};
use crate::services::revocation;
use crate::state::AppState;

/// RFC 9701 §4: the media type a resource server asks for, and the JWS `typ` of the answer.
const SIGNED_INTROSPECTION: &str = "application/token-introspection+jwt";
const SIGNED_INTROSPECTION_TYPE: &str = "token-introspection+jwt";

pub async fn introspect(
    request: HttpRequest,
    form: OAuthForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let presented = authenticated_client(&state, &request, &form).await?;
    let token = form.required("token")?.to_string();
    let introspected = introspection_endpoint::respond(&state, presented, token).await?;
    let body = match introspected.answer {
        Some(active) => serde_json::to_value(active).map_err(AppError::internal)?,
        None => json!({ "active": false }),
    };
    let mut answer = HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).take();
    if !wants_signed(&request) {
        return Ok(answer.json(body));
    }
    let signed = sign(&state, &introspected.caller, body)?;
    Ok(answer.content_type(SIGNED_INTROSPECTION).body(signed))
}

fn wants_signed(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| media.split(';').next().is_some_and(|media| media.trim() == SIGNED_INTROSPECTION))
}

/// RFC 9701 §5: the answer as the `token_introspection` claim of a JWT signed with our current
/// key, for the caller alone.
fn sign(state: &AppState, caller: &str, body: Value) -> Result<String, AppError> {
    let claims = json!({
        "iss": state.settings.issuer,
        "aud": caller,
        "iat": state.clock.now().timestamp(),
        "token_introspection": body,
    });
    let key = state.signing_key.get();
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some(SIGNED_INTROSPECTION_TYPE.to_string());
    header.kid = Some(key.kid.clone());
    key.sign_jwt(&header, &claims).map_err(AppError::internal)
}

pub async fn revoke(
    request: HttpRequest,
    form: OAuthForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let presented = authenticated_client(&state, &request, &form).await?;
    let token = form.required("token")?.to_string();
    let hint = form.get("token_type_hint").map(str::to_string);
    state
        .oauth_operation(move |connection, context, now| {
            let caller = clients::authenticate_presented(connection, context, &presented, PublicClients::Identified)?;
            revocation::revoke(connection, context, &caller, &token, hint.as_deref(), now)
        })
        .await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).finish())
}
