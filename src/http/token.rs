//! `POST /token` (RFC 6749 §3.2): parse, delegate to `services::token_endpoint`, render.

use actix_web::{web, HttpRequest, HttpResponse};

use super::client_auth::presented_client;
use super::form::OAuthForm;
use crate::error::AppError;
use crate::oauth::token_endpoint::{self, TokenParameters};
use crate::services::tokens::TokenResponse;
use crate::state::AppState;

pub async fn token(
    request: HttpRequest,
    form: OAuthForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let grant_type = form.required("grant_type")?.to_string();
    let owned = |key: &str| form.get(key).map(str::to_string);
    let parameters = TokenParameters {
        grant_type,
        client: presented_client(&request, &form)?,
        code: owned("code"),
        redirect_uri: owned("redirect_uri"),
        code_verifier: owned("code_verifier"),
        refresh_token: owned("refresh_token"),
        scope: owned("scope"),
    };
    let response = token_endpoint::respond(&state, parameters).await?;
    Ok(token_response(&response))
}

/// RFC 6749 §5.1: the token in JSON, never cached.
pub fn token_response(response: &TokenResponse) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).insert_header(("Pragma", "no-cache")).json(response)
}
