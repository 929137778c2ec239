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
    let now = state.clock.now();
    let grants = state
        .db
        .run(move |connection| grants::list(connection, &snapshot.tree, user.as_deref(), client.as_deref(), now))
        .await?;
    Ok(HttpResponse::Ok().json(GrantList { grants }))
}
