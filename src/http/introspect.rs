//! `POST /introspect` (RFC 7662) and `POST /revoke` (RFC 7009).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::client_auth::{authenticate_confidential, presented_client};
use super::form::OAuthForm;
use crate::error::AppError;
use crate::services::{introspection, revocation};
use crate::state::AppState;

pub async fn introspect(
    request: HttpRequest,
    form: OAuthForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let presented = presented_client(&request, &form)?;
    let token = form.required("token")?.to_string();
    let now = state.clock.now();
    let state = state.into_inner();
    let answer = state
        .db
        .clone()
        .run(move |connection| {
            let caller = authenticate_confidential(connection, &state, &presented)?;
            introspection::introspect(connection, &state, &caller, &token, now)
        })
        .await?;
    let body = match answer {
        Some(active) => serde_json::to_value(active).map_err(AppError::internal)?,
        None => json!({ "active": false }),
    };
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(body))
}

pub async fn revoke(
    request: HttpRequest,
    form: OAuthForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let presented = presented_client(&request, &form)?;
    let token = form.required("token")?.to_string();
    if let Some(hint) = form.get("token_type_hint") {
        if !matches!(hint, "access_token" | "refresh_token") {
            return Err(AppError::bad_request("unsupported_token_type", format!("unknown token_type_hint {hint:?}")));
        }
    }
    let now = state.clock.now();
    let state = state.into_inner();
    state
        .db
        .clone()
        .run(move |connection| {
            let caller = authenticate_confidential(connection, &state, &presented)?;
            revocation::revoke(connection, &state, &caller, &token, now)
        })
        .await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).finish())
}
