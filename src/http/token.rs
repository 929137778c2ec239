//! `POST /token` (RFC 6749 §3.2): dispatches on `grant_type`.

use actix_web::{web, HttpRequest, HttpResponse};

use super::client_auth::{presented_client, PresentedClient};
use super::form::OAuthForm;
use crate::error::AppError;
use crate::oauth::client_credentials::{self, ClientCredentialsRequest};
use crate::oauth::code_exchange::{self, ExchangeRequest};
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
        "authorization_code" | "refresh_token" => {
            let (client_id, client_secret) = match presented {
                PresentedClient::Secret { client_id, client_secret } => (client_id, Some(client_secret)),
                PresentedClient::Public { client_id } => (client_id, None),
                PresentedClient::None => return Err(AppError::invalid_client("client authentication is required")),
            };
            let is_refresh = grant_type == "refresh_token";
            let request = ExchangeRequest {
                client_id,
                client_secret,
                code: form.get("code").map(str::to_string),
                redirect_uri: form.get("redirect_uri").map(str::to_string),
                code_verifier: form.get("code_verifier").map(str::to_string),
                refresh_token: form.get("refresh_token").map(str::to_string),
                scope: form.get("scope").map(str::to_string),
                grant_type: if is_refresh { "refresh_token" } else { "authorization_code" },
            };
            if is_refresh {
                form.required("refresh_token")?;
            } else {
                form.required("code")?;
                form.required("redirect_uri")?;
            }
            let now = state.clock.now();
            let state = state.clone();
            state
                .db
                .clone()
                .run(move |connection| code_exchange::exchange_in_transaction(connection, &state, &request, now))
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
