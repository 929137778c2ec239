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

use super::dpop::{presented_token, PresentedToken, DPOP_CHALLENGE};
use super::pages::{render, see_other};
use crate::error::AppError;
use crate::oauth::demo_app::{self, BalanceAnswer, APP_CLIENT, APP_SCOPE};
use crate::oauth::demo_payments::{self, PaymentAnswer, PaymentFlow, DEMO_PAYMENT};
use crate::secrets::random_token;
use crate::state::AppState;
use crate::views::{DemoPage, DemoPaymentPage, DemoResultPage};

const VERIFIER: &str = "demo_code_verifier";
const STATE: &str = "demo_state";
const PAYMENT_FLOW: &str = "demo_payment";

pub async fn landing(state: web::Data<AppState>) -> HttpResponse {
    let page = DemoPage {
        page_title: "Welcome".into(),
        issuer: state.settings.issuer.clone(),
        payment_id: DEMO_PAYMENT.into(),
    };
    render(StatusCode::OK, &page)
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
        .append_pair("redirect_uri", &demo_app::callback_uri(&state.settings.issuer))
        .append_pair("scope", APP_SCOPE)
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

fn result_page(error: Option<String>, result: Option<demo_app::DemoResult>) -> HttpResponse {
    let pretty = |value: &Value| serde_json::to_string_pretty(value).unwrap_or_default();
    let (token_response, introspection, balance, balance_ok) = match &result {
        Some(result) => {
            let (balance, ok) = match &result.balance {
                BalanceAnswer::Balance(balance) => (pretty(balance), true),
                other => (pretty(&balance_error(other).1), false),
            };
            let tokens = serde_json::to_value(&result.tokens).unwrap_or_default();
            (pretty(&tokens), pretty(&result.introspection), balance, ok)
        }
        None => Default::default(),
    };
    let page =
        DemoResultPage { page_title: "Your balance".into(), error, token_response, introspection, balance, balance_ok };
    render(StatusCode::OK, &page)
}

/// The customer is back from the bank: check the answer is ours (RFC 9207 `iss`, `state`),
/// then let the demo app's back channel exchange the code and call the bank's API.
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
    let refusal = callback_refusal(&query, expected_state.as_deref(), verifier.is_some(), &state.settings.issuer);
    let (Some(code), Some(verifier), None) = (query.code, verifier, refusal.clone()) else {
        return Ok(result_page(refusal, None));
    };
    let completed = state
        .oauth_operation(move |connection, context, now| demo_app::complete(connection, context, code, verifier, now))
        .await;
    Ok(match completed {
        Ok(result) => result_page(None, Some(result)),
        Err(AppError::Unavailable(why)) => result_page(Some(format!("The demo is not set up: {why}.")), None),
        Err(error @ (AppError::BadRequest { .. } | AppError::Unauthorized { .. })) => {
            result_page(Some(format!("The code exchange failed: {error}")), None)
        }
        Err(error) => return Err(error),
    })
}

/// "Pay PAY-123": the payment app pushes its request (PAR, `private_key_jwt`, the code bound to
/// its DPoP key; see `oauth::demo_payments`), then sends the customer to the bank.
pub async fn pay(session: Session, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let flow = PaymentFlow::new(DEMO_PAYMENT);
    session.insert(PAYMENT_FLOW, &flow).map_err(AppError::internal)?;
    let pushed = state
        .oauth_operation(move |connection, context, now| demo_payments::push(connection, context, &flow, now))
        .await;
    match pushed {
        Ok(authorize) => Ok(see_other(&authorize)),
        Err(error @ (AppError::BadRequest { .. } | AppError::Unauthorized { .. })) => {
            Ok(payment_page(Some(format!("The bank refused the payment request: {error}")), None))
        }
        Err(error) => Err(error),
    }
}

/// The customer is back from the bank with the payment consent: the same checks as the balance
/// app's callback, then the code exchange and the payment.
pub async fn pay_callback(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let flow: Option<PaymentFlow> = session.get(PAYMENT_FLOW).ok().flatten();
    session.remove(PAYMENT_FLOW);
    let expected_state = flow.as_ref().map(|flow| flow.id.as_str());
    let refusal = callback_refusal(&query, expected_state, flow.is_some(), &state.settings.issuer);
    let (Some(code), Some(flow), None) = (query.code, flow, refusal.clone()) else {
        return Ok(payment_page(refusal, None));
    };
    let completed = state
        .oauth_operation(move |connection, context, now| demo_payments::complete(connection, context, &flow, code, now))
        .await;
    Ok(match completed {
        Ok(result) => payment_page(None, Some(result)),
        Err(error @ (AppError::BadRequest { .. } | AppError::Unauthorized { .. })) => {
            payment_page(Some(format!("The code exchange failed: {error}")), None)
        }
        Err(error) => return Err(error),
    })
}

fn payment_page(error: Option<String>, result: Option<demo_payments::PaymentResult>) -> HttpResponse {
    let pretty = |value: &Value| serde_json::to_string_pretty(value).unwrap_or_default();
    let (token_response, introspection, payment, executed) = match &result {
        Some(result) => {
            let (payment, executed) = match &result.payment {
                PaymentAnswer::Executed(payment) => (pretty(payment), true),
                refused => (pretty(&payment_error(refused).1), false),
            };
            let tokens = serde_json::to_value(&result.tokens).unwrap_or_default();
            (pretty(&tokens), pretty(&result.introspection), payment, executed)
        }
        None => Default::default(),
    };
    let page = DemoPaymentPage {
        page_title: format!("Payment {DEMO_PAYMENT}"),
        payment_id: DEMO_PAYMENT.into(),
        error,
        token_response,
        introspection,
        payment,
        executed,
    };
    render(StatusCode::OK, &page)
}

/// Why the answer cannot be used, if it cannot: the bank refused, it is not from our bank
/// (RFC 9207 `iss`), or it does not belong to the sign-in this session started (`state`).
fn callback_refusal(
    query: &CallbackQuery,
    expected_state: Option<&str>,
    has_verifier: bool,
    issuer: &str,
) -> Option<String> {
    if let Some(error) = &query.error {
        return Some(format!("The bank answered: {error}."));
    }
    if query.iss.as_deref() != Some(issuer) {
        return Some("The answer did not come from our bank (iss).".into());
    }
    if query.code.is_none() || !has_verifier {
        return Some("The sign-in was not started here. Start again.".into());
    }
    if expected_state.is_none() || query.state.as_deref() != expected_state {
        return Some("The answer does not belong to this session (state).".into());
    }
    None
}

/// The status, `WWW-Authenticate` challenge and body of a refused balance request (RFC 6750 §3,
/// RFC 9449 §7.1).
fn balance_error(answer: &BalanceAnswer) -> (StatusCode, Value, String) {
    match answer {
        BalanceAnswer::MissingScope => (
            StatusCode::FORBIDDEN,
            json!({"error": "insufficient_scope", "error_description": "accounts.balance is not active for this token"}),
            r#"Bearer realm="online-bank-demo", error="insufficient_scope", scope="accounts.balance""#.into(),
        ),
        BalanceAnswer::WrongBinding(description) => (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_token", "error_description": description}),
            format!("{DPOP_CHALLENGE}, error=\"invalid_token\""),
        ),
        _ => (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_token", "error_description": "the token is not active"}),
            r#"Bearer realm="online-bank-demo", error="invalid_token""#.into(),
        ),
    }
}

/// The status, `WWW-Authenticate` challenge and body of a refused payment.
fn payment_error(answer: &PaymentAnswer) -> (StatusCode, Value, String) {
    match answer {
        PaymentAnswer::MissingScope(scope) => (
            StatusCode::FORBIDDEN,
            json!({"error": "insufficient_scope", "error_description": format!("{scope} is not active for this token")}),
            format!("{DPOP_CHALLENGE}, error=\"insufficient_scope\", scope=\"{scope}\""),
        ),
        PaymentAnswer::WrongBinding(description) => (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_token", "error_description": description}),
            format!("{DPOP_CHALLENGE}, error=\"invalid_token\""),
        ),
        PaymentAnswer::Inactive | PaymentAnswer::Executed(_) => (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_token", "error_description": "the token is not active"}),
            format!("{DPOP_CHALLENGE}, error=\"invalid_token\""),
        ),
    }
}

/// The token a request to a demo resource carries with its proof's key, or the refusal to send.
async fn presented_with_proof(
    request: &HttpRequest,
    state: &web::Data<AppState>,
) -> Result<Result<(String, Option<String>), HttpResponse>, AppError> {
    Ok(match presented_token(state, request).await? {
        PresentedToken::Token { token, proof_jkt } => Ok((token, proof_jkt)),
        PresentedToken::BadProof(why) => Err(dpop_refusal(&why)),
        PresentedToken::Missing => Err(HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", format!("Bearer realm=\"online-bank-demo\", {DPOP_CHALLENGE}")))
            .json(json!({"error": "invalid_token", "error_description": "a bearer or DPoP token is required"}))),
    })
}

/// `POST /demo/bank/payments/{payment_id}` with `Authorization: DPoP …` and its proof: the
/// bank's payment API, for a token holding `payments.transfer:<payment_id>`.
pub async fn payment(
    request: HttpRequest,
    state: web::Data<AppState>,
    payment_id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (token, proof_jkt) = match presented_with_proof(&request, &state).await? {
        Ok(presented) => presented,
        Err(refusal) => return Ok(refusal),
    };
    let payment_id = payment_id.into_inner();
    let (_, answer) = state
        .oauth_operation(move |connection, context, now| {
            demo_payments::pay(connection, context, &token, proof_jkt.as_deref(), &payment_id, now)
        })
        .await?;
    let (status, body, challenge) = match answer {
        PaymentAnswer::Executed(payment) => (StatusCode::OK, payment, String::new()),
        refused => payment_error(&refused),
    };
    let mut response = HttpResponse::build(status);
    if !challenge.is_empty() {
        response.insert_header(("WWW-Authenticate", challenge));
    }
    Ok(response.insert_header(("Cache-Control", "no-store")).json(body))
}

/// `GET /demo/bank/balance` with `Authorization: Bearer …`, or `Authorization: DPoP …` and a
/// `DPoP` proof bound to the token by `ath` (RFC 9449 §7), checked as a resource server would.
pub async fn balance(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let (token, proof_jkt) = match presented_with_proof(&request, &state).await? {
        Ok(presented) => presented,
        Err(refusal) => return Ok(refusal),
    };
    let answer = state
        .oauth_operation(move |connection, context, now| {
            demo_app::balance(connection, context, &token, proof_jkt.as_deref(), now)
        })
        .await?;
    let (status, body, challenge) = match answer {
        BalanceAnswer::Balance(balance) => (StatusCode::OK, balance, String::new()),
        refused => balance_error(&refused),
    };
    let mut response = HttpResponse::build(status);
    if !challenge.is_empty() {
        response.insert_header(("WWW-Authenticate", challenge));
    }
    Ok(response.insert_header(("Cache-Control", "no-store")).json(body))
}

fn dpop_refusal(description: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("WWW-Authenticate", format!("{DPOP_CHALLENGE}, error=\"invalid_dpop_proof\"")))
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({"error": "invalid_dpop_proof", "error_description": description}))
}
