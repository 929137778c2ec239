//! `/admin/v1/grants`: consents and where their limits stand.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Admin;
use crate::domain::limits;
use crate::error::AppError;
use crate::services::tokens::usage;
use crate::state::AppState;
use crate::storage::{grants, users};

#[derive(Debug, Deserialize, IntoParams)]
pub struct GrantFilter {
    /// A username.
    pub user: Option<String>,
    pub client: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    pub id: i64,
    /// The user's id, or the client's own id for client credentials.
    pub subject: String,
    pub username: Option<String>,
    pub client_id: String,
    pub scope: String,
    pub granted_at: DateTime<Utc>,
    /// From the scope's current `access_duration_days`; null when unlimited.
    pub expires_at: Option<DateTime<Utc>>,
    pub access_count: i64,
    /// Null when the scope has no access limit.
    pub remaining_accesses: Option<u64>,
    /// `active`, `expired` or `exhausted`.
    pub state: &'static str,
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
    let views = state
        .db
        .run(move |connection| {
            let user_id = match &user {
                Some(username) => Some(
                    users::find_with_password(connection, username)?
                        .map(|(user, _)| user.id)
                        .ok_or_else(|| AppError::not_found("user_not_found", format!("no user {username:?}")))?,
                ),
                None => None,
            };
            let rows = grants::list(connection, user_id.as_deref(), client.as_deref())?;
            let mut user_ids: Vec<String> = rows.iter().filter_map(|row| row.user_id.clone()).collect();
            user_ids.sort();
            user_ids.dedup();
            let usernames = users::usernames(connection, &user_ids)?;
            Ok(rows
                .into_iter()
                .map(|row| {
                    let status =
                        snapshot.tree.get(&row.scope_name).map(|scope| limits::status(scope, usage(&row), now));
                    GrantView {
                        id: row.id,
                        username: row.user_id.as_ref().and_then(|id| usernames.get(id).cloned()),
                        subject: row.subject,
                        client_id: row.client_id,
                        scope: row.scope_name,
                        granted_at: row.granted_at.and_utc(),
                        expires_at: status.and_then(|s| s.expires_at),
                        access_count: row.access_count,
                        remaining_accesses: status.and_then(|s| s.remaining),
                        state: status.map_or("expired", |s| s.state),
                    }
                })
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(HttpResponse::Ok().json(GrantList { grants: views }))
}
