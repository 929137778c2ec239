//! `POST /introspect` (RFC 7662) and `POST /revoke` (RFC 7009).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::client_auth::presented_client;
use super::form::OAuthForm;
use crate::error::AppError;
use crate::oauth::introspection_endpoint;
use crate::services::clients::{self, PublicClients};
use crate::services::revocation;
use crate::state::AppState;

pub async fn introspect(
    request: HttpRequest,
    form: OAuthForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let presented = presented_client(&request, &form)?;
    let token = form.required("token")?.to_string();
    let answer = introspection_endpoint::respond(&state, presented, token).await?;
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
    let hint = form.get("token_type_hint").map(str::to_string);
    state
        .oauth_operation(move |connection, context, now| {
            let caller = clients::authenticate_presented(connection, context, &presented, PublicClients::Identified)?;
            revocation::revoke(connection, context, &caller, &token, hint.as_deref(), now)
        })
        .await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).finish())
}
