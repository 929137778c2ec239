//! `POST /introspect` (RFC 7662) and `POST /revoke` (RFC 7009).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::client_auth::{authenticate_confidential, presented_client};
use super::form::OAuthForm;
use crate::domain::client::Client;
use crate::error::AppError;
use crate::services::{introspection, revocation};
use crate::state::AppState;
use crate::storage::DbConnection;
use chrono::{DateTime, Utc};

/// The shared shape of both endpoints: the caller authenticates as a confidential client and
/// names a token; `operation` runs with both on the blocking pool.
async fn for_authenticated_caller<T, F>(
    request: &HttpRequest,
    form: &OAuthForm,
    state: web::Data<AppState>,
    operation: F,
) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection, &AppState, &Client, &str, DateTime<Utc>) -> Result<T, AppError> + Send + 'static,
{
    let presented = presented_client(request, form)?;
    let token = form.required("token")?.to_string();
    let now = state.clock.now();
    let state = state.into_inner();
    state
        .db
        .clone()
        .run(move |connection| {
            let caller = authenticate_confidential(connection, &state, &presented)?;
            operation(connection, &state, &caller, &token, now)
        })
        .await
}

pub async fn introspect(
    request: HttpRequest,
    form: OAuthForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let answer = for_authenticated_caller(&request, &form, state, introspection::introspect).await?;
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
    let hint = form.get("token_type_hint").map(str::to_string);
    for_authenticated_caller(&request, &form, state, move |connection, state, caller, token, now| {
        // Checked once the caller is authenticated, as before any other answer about the token.
        if let Some(hint) = hint.filter(|hint| !matches!(hint.as_str(), "access_token" | "refresh_token")) {
            return Err(AppError::bad_request("unsupported_token_type", format!("unknown token_type_hint {hint:?}")));
        }
        revocation::revoke(connection, state, caller, token, now)
    })
    .await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).finish())
}
