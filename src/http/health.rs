use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::AppError;
use crate::state::AppState;

/// Liveness: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: the database answers too; 503 when it does not.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    // Any failure to answer means not ready, whatever its cause.
    state.db.ping().await.map_err(|error| AppError::Unavailable(error.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}
