//! The built-in Online Bank demo (SPEC "The demo"): a third-party app page that runs the real
//! code flow against the seeded `online-bank` client, and `/demo/bank/balance`, a protected
//! resource that introspects the token as the seeded `bank-api` resource server.
//!
//! The demo app's back channel (code exchange, introspection) calls the same operations the
//! `/token` and `/introspect` handlers call, in process, with the demo clients' credentials.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::admin::auth::bearer_token;
use super::pages::{render, see_other};
use crate::error::AppError;
use crate::oauth::code_exchange::{self, ExchangeRequest};
use crate::secrets::random_token;
use crate::services::{clients, introspection};
use crate::state::AppState;
use crate::views::{DemoPage, DemoResultPage};

const APP_CLIENT: (&str, &str) = ("online-bank", "online-bank-secret");
const RESOURCE_SERVER: (&str, &str) = ("bank-api", "bank-api-secret");
const VERIFIER: &str = "demo_code_verifier";
const STATE: &str = "demo_state";

fn callback_uri(state: &AppState) -> String {
    format!("{}/demo/callback", state.settings.issuer)
}

pub async fn landing(state: web::Data<AppState>) -> HttpResponse {
    render(StatusCode::OK, &DemoPage { page_title: "Welcome".into(), issuer: state.settings.issuer.clone() })
}

/// "Show my balance": a PKCE pair and a state, then off to the bank's `/authorize`.
pub async fn start(session: Session, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let verifier = random_token(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let csrf_state = random_token(16);
    session.insert(VERIFIER, &verifier).map_err(AppError::internal)?;
    session.insert(STATE, &csrf_state).map_err(AppError::internal)?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", APP_CLIENT.0)
        .append_pair("redirect_uri", &callback_uri(&state))
        .append_pair("scope", "profile accounts")
        .append_pair("state", &csrf_state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    Ok(see_other(&format!("/authorize?{query}")))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

fn result_page(
    error: Option<String>,
    token_response: String,
    introspection: String,
    balance: String,
    balance_ok: bool,
) -> HttpResponse {
    render(
        StatusCode::OK,
        &DemoResultPage {
            page_title: "Your balance".into(),
            error,
            token_response,
            introspection,
            balance,
            balance_ok,
        },
    )
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

pub async fn callback(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let expected_state: Option<String> = session.get(STATE).ok().flatten();
    let verifier: Option<String> = session.get(VERIFIER).ok().flatten();
    session.remove(STATE);
    session.remove(VERIFIER);
    if let Some(error) = query.error {
        return Ok(result_page(
            Some(format!("The bank answered: {error}.")),
            String::new(),
            String::new(),
            String::new(),
            false,
        ));
    }
    // RFC 9207: the answer must come from the bank we sent the customer to.
    if query.iss.as_deref() != Some(state.settings.issuer.as_str()) {
        return Ok(result_page(
            Some("The answer did not come from our bank (iss).".into()),
            String::new(),
            String::new(),
            String::new(),
            false,
        ));
    }
    let (Some(code), Some(verifier)) = (query.code, verifier) else {
        return Ok(result_page(
            Some("The sign-in was not started here. Start again.".into()),
            String::new(),
            String::new(),
            String::new(),
            false,
        ));
    };
    if expected_state.is_none() || query.state != expected_state {
        return Ok(result_page(
            Some("The answer does not belong to this session (state).".into()),
            String::new(),
            String::new(),
            String::new(),
            false,
        ));
    }
    let request = ExchangeRequest {
        client_id: APP_CLIENT.0.into(),
        client_secret: Some(APP_CLIENT.1.into()),
        code: Some(code),
        redirect_uri: Some(callback_uri(&state)),
        code_verifier: Some(verifier),
        refresh_token: None,
        scope: None,
        grant_type: "authorization_code",
    };
    let now = state.clock.now();
    let shared = state.clone();
    let exchanged = state
        .db
        .run(move |connection| code_exchange::exchange_in_transaction(connection, &shared, &request, now))
        .await;
    let tokens = match exchanged {
        Ok(tokens) => tokens,
        Err(error) => {
            return Ok(result_page(
                Some(format!("The code exchange failed: {error}")),
                String::new(),
                String::new(),
                String::new(),
                false,
            ))
        }
    };
    let token_json = serde_json::to_value(&tokens).map_err(AppError::internal)?;
    let answers = async {
        let introspected = introspect_as_bank(&state, tokens.access_token.clone()).await?;
        let balance = balance_answer(&state, tokens.access_token.clone()).await?;
        Ok::<_, AppError>((introspected, balance))
    };
    let (introspected, (status, balance)) = match answers.await {
        Ok(answers) => answers,
        Err(AppError::Unavailable(why)) => {
            return Ok(result_page(
                Some(format!("The demo is not set up: {why}.")),
                pretty(&token_json),
                String::new(),
                String::new(),
                false,
            ))
        }
        Err(error) => return Err(error),
    };
    Ok(result_page(None, pretty(&token_json), pretty(&introspected), pretty(&balance), status == StatusCode::OK))
}

/// What the bank's API learns about a token, asking as the `bank-api` resource server.
async fn introspect_as_bank(state: &web::Data<AppState>, token: String) -> Result<Value, AppError> {
    let now = state.clock.now();
    let shared = state.clone();
    state
        .db
        .run(move |connection| {
            let bank = clients::authenticate(connection, &shared.hasher, RESOURCE_SERVER.0, RESOURCE_SERVER.1)?
                .ok_or_else(|| {
                    AppError::Unavailable("the demo's bank-api client is missing: start the server with --demo".into())
                })?;
            let answer = introspection::introspect(connection, &shared, &bank, &token, now)?;
            Ok(match answer {
                Some(active) => serde_json::to_value(active).map_err(AppError::internal)?,
                None => json!({ "active": false }),
            })
        })
        .await
}

/// The demo account's balance, for a token whose introspection reports `accounts.balance`.
async fn balance_answer(state: &web::Data<AppState>, token: String) -> Result<(StatusCode, Value), AppError> {
    let introspected = introspect_as_bank(state, token).await?;
    if introspected["active"] != json!(true) {
        return Ok((
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_token", "error_description": "the token is not active"}),
        ));
    }
    let scopes = introspected["scope"].as_str().unwrap_or_default();
    if !scopes.split(' ').any(|scope| scope == "accounts.balance") {
        return Ok((
            StatusCode::FORBIDDEN,
            json!({"error": "insufficient_scope", "error_description": "accounts.balance is not active for this token"}),
        ));
    }
    Ok((
        StatusCode::OK,
        json!({
            "account": "DE89 3704 0044 0532 0130 00",
            "type": "demand deposit",
            "owner": introspected["username"],
            "balance": "2,481.17",
            "currency": "EUR",
        }),
    ))
}

/// `GET /demo/bank/balance` with `Authorization: Bearer …`.
pub async fn balance(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let Some(token) = bearer_token(&request) else {
        return Ok(HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", r#"Bearer realm="online-bank-demo""#))
            .json(json!({"error": "invalid_token", "error_description": "a bearer token is required"})));
    };
    let (status, body) = balance_answer(&state, token).await?;
    let mut response = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        response.insert_header(("WWW-Authenticate", r#"Bearer realm="online-bank-demo", error="invalid_token""#));
    } else if status == StatusCode::FORBIDDEN {
        response.insert_header((
            "WWW-Authenticate",
            r#"Bearer realm="online-bank-demo", error="insufficient_scope", scope="accounts.balance""#,
        ));
    }
    Ok(response.insert_header(("Cache-Control", "no-store")).json(body))
}
