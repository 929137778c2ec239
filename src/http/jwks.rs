use actix_web::{web, HttpResponse};
use chrono::Duration;
use serde_json::json;

use crate::error::AppError;
use crate::keys::public_jwk;
use crate::state::AppState;
use crate::storage::signing_keys;

/// RFC 7517 key set: every key that may have signed a still-valid token, from the database,
/// so every instance publishes the keys of all.
pub async fn jwks(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let retired_after = state.clock.now() - Duration::seconds(state.settings.access_token_lifetime_seconds);
    let published = state.db.run(move |connection| signing_keys::published(connection, retired_after)).await?;
    let keys =
        published.iter().map(|key| public_jwk(&key.kid, &key.public_key_pem)).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "public, max-age=300")).json(json!({ "keys": keys })))
}
