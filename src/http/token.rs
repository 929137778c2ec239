//! `POST /token` (RFC 6749 §3.2): dispatches on `grant_type`.

use actix_web::{web, HttpRequest, HttpResponse};

use super::client_auth::{presented_client, PresentedClient};
use super::form::OAuthForm;
use crate::error::AppError;
use crate::oauth::client_credentials::{self, ClientCredentialsRequest};
use crate::services::tokens::TokenResponse;
use crate::state::AppState;
use crate::storage::write_transaction;

pub async fn token(
    request: HttpRequest,
    form: OAuthForm,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let grant_type = form.required("grant_type")?.to_string();
    let presented = presented_client(&request, &form)?;
    validate_scope_syntax(form.get("scope"))?;
    let response = match grant_type.as_str() {
        "client_credentials" => {
            let PresentedClient::Secret { client_id, client_secret } = presented else {
                return Err(AppError::invalid_client("client_credentials requires client authentication"));
            };
            let request =
                ClientCredentialsRequest { client_id, client_secret, scope: form.get("scope").map(str::to_string) };
            let now = state.clock.now();
            let state = state.clone();
            state
                .db
                .clone()
                .run(move |connection| {
                    write_transaction(connection, |connection| {
                        client_credentials::exchange(connection, &state, &request, now)
                    })
                })
                .await?
        }
        other => {
            return Err(AppError::bad_request(
                "unsupported_grant_type",
                format!("grant type {other:?} is not supported here"),
            ))
        }
    };
    Ok(token_response(&response))
}

/// RFC 6749 §5.1: the token in JSON, never cached.
pub fn token_response(response: &TokenResponse) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).insert_header(("Pragma", "no-cache")).json(response)
}

/// RFC 6749 §3.3: scope tokens are printable ASCII without space, `"` or `\`.
fn validate_scope_syntax(scope: Option<&str>) -> Result<(), AppError> {
    let valid = scope.is_none_or(|scope| {
        scope.bytes().all(|b| b == b' ' || (b'\x21'..=b'\x7e').contains(&b) && b != b'"' && b != b'\\')
    });
    if valid {
        Ok(())
    } else {
        Err(AppError::bad_request("invalid_scope", "the scope parameter is malformed"))
    }
}
