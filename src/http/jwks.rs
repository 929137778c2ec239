//! `GET /jwks.json` (RFC 7517).

use actix_web::{web, HttpResponse};
use chrono::Duration;

use crate::error::AppError;
use crate::keys::published_jwks;
use crate::state::AppState;

/// Every key that may have signed a still-valid token, from every instance.
pub async fn jwks(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let retired_after = state.clock.now() - Duration::seconds(state.settings.access_token_lifetime_seconds);
    let key_set = state.db.run(move |connection| published_jwks(connection, retired_after)).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "public, max-age=300")).json(key_set))
}
