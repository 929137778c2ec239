//! `/admin/v1/grants`: consents and where their limits stand.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Admin;
use crate::error::AppError;
use crate::services::grants::{self, GrantView};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct GrantFilter {
    /// A username.
    pub user: Option<String>,
    pub client: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantList {
    pub grants: Vec<GrantView>,
}

#[utoipa::path(get, path = "/admin/v1/grants", tag = "grants", params(GrantFilter),
    responses((status = 200, body = GrantList), (status = 404, description = "unknown user")),
    security(("bearer" = [])))]
pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    filter: web::Query<GrantFilter>,
) -> Result<HttpResponse, AppError> {
    let GrantFilter { user, client } = filter.into_inner();
    let snapshot = state.registry.snapshot();
    let (now, timezone) = (state.clock.now(), state.settings.limits_timezone);
    let grants = state
        .db
        .run(move |connection| {
            grants::list(connection, &snapshot.tree, user.as_deref(), client.as_deref(), now, timezone)
        })
        .await?;
    Ok(HttpResponse::Ok().json(GrantList { grants }))
}

#[utoipa::path(delete, path = "/admin/v1/users/{username}/grants/{client_id}", tag = "grants",
    responses((status = 204, description = "Revoked: the consent, its grants and its tokens end (consent.revoked)"),
        (status = 404, description = "user_not_found, or grant_not_found when she gave the client nothing")),
    security(("bearer" = [])))]
pub async fn revoke(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let ((username, client_id), actor, now) = (path.into_inner(), admin.actor(), state.clock.now());
    let revoked = state
        .db
        .run(move |connection| {
            crate::services::account::revoke_for_user(connection, &username, &client_id, &actor, now)
        })
        .await?;
    match revoked {
        true => Ok(HttpResponse::NoContent().finish()),
        false => Err(AppError::not_found("grant_not_found", "the user has given this client nothing to revoke")),
    }
}
