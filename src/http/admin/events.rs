//! `/admin/v1/events`: the audit trail, newest first, page by page.

use actix_web::{web, HttpResponse};

use super::auth::Admin;
use crate::error::AppError;
use crate::services::events::{self, EventPage, EventQuery};
use crate::state::AppState;

#[utoipa::path(get, path = "/admin/v1/events", tag = "events", params(EventQuery),
    responses((status = 200, body = EventPage),
        (status = 400, description = "invalid_request: an unknown type, a bad since, limit or cursor")),
    security(("bearer" = [])))]
pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<EventQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let page = state.db.read(move |connection| events::list(connection, query)).await?;
    Ok(HttpResponse::Ok().json(page))
}
