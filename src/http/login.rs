//! `GET/POST /login` and `POST /logout`.

use actix_session::Session;
use actix_web::http::header::RETRY_AFTER;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::client_address::client_address;
use super::form::HtmlForm;
use super::pages::{error_page, render, see_other};
use super::session::{self, check_csrf, csrf_token};
use crate::error::AppError;
use crate::services::sign_in::{self, SignInAttempt, SignInOutcome};
use crate::state::AppState;
use crate::views::LoginPage;

/// One message for an unknown user and a wrong password: no username probing.
const LOGIN_FAILED: &str = "The username or password is incorrect.";

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Only local paths: `next` must never send the browser to another site (SPEC Part 2). Browsers
/// drop tabs and newlines from a URL, so `/\t/evil.example` is `//evil.example` to them; and a
/// newline in a `Location` header is an invalid response.
fn safe_next(next: Option<&str>) -> String {
    let local = |path: &str| {
        path.starts_with('/')
            && !path.starts_with("//")
            && !path.contains('\\')
            && !path.chars().any(|c| c.is_control() || c.is_whitespace())
    };
    match next {
        Some(path) if local(path) => path.to_string(),
        _ => "/account".to_string(),
    }
}

fn login_page(session: &Session, next: String, username: String, error: Option<String>) -> LoginPage {
    LoginPage { page_title: "Sign in".into(), csrf_token: csrf_token(session), next, username, error }
}

pub async fn show(session: Session, query: web::Query<LoginQuery>) -> HttpResponse {
    let next = safe_next(query.next.as_deref());
    render(StatusCode::OK, &login_page(&session, next, String::new(), None))
}

pub async fn submit(
    request: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    if check_csrf(&session, form.first("csrf_token")).is_err() {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "Please try again",
            "The sign-in form expired or was not sent from this site. Go back and sign in again.",
        ));
    }
    let (next, attempt) = (safe_next(form.first("next")), attempt(&request, &session, &state, &form));
    let username = attempt.username.clone();
    Ok(match sign_in::sign_in(state.sessions(), attempt, state.clock.now()).await? {
        SignInOutcome::SignedIn { user, session_id } => {
            session::sign_in(&session, &session_id)?;
            tracing::info!(username = %user.username, "signed in");
            see_other(&next)
        }
        SignInOutcome::Failed => {
            render(StatusCode::UNAUTHORIZED, &login_page(&session, next, username, Some(LOGIN_FAILED.into())))
        }
        SignInOutcome::Throttled { retry_after_seconds } => throttled(&session, next, username, retry_after_seconds),
    })
}

fn attempt(request: &HttpRequest, session: &Session, state: &AppState, form: &HtmlForm) -> SignInAttempt {
    SignInAttempt {
        username: form.first("username").unwrap_or_default().trim().to_string(),
        password: form.first("password").unwrap_or_default().to_string(),
        address: client_address(request, &state.settings.trusted_proxies),
        previous_session_id: session::presented_session_id(session),
    }
}

/// The sign-in page again, saying how long to wait, with the wait in `Retry-After` (429).
fn throttled(session: &Session, next: String, username: String, retry_after_seconds: i64) -> HttpResponse {
    let page = login_page(session, next, username, Some(too_many_attempts(retry_after_seconds)));
    let mut response = render(StatusCode::TOO_MANY_REQUESTS, &page);
    response.headers_mut().insert(RETRY_AFTER, retry_after_seconds.into());
    response
}

/// The same words for a known and an unknown username: only the wait, rounded up, differs.
fn too_many_attempts(seconds: i64) -> String {
    let wait = match seconds {
        ..=1 => "a second".to_string(),
        2..=59 => format!("{seconds} seconds"),
        60 => "a minute".to_string(),
        _ => format!("{} minutes", (seconds + 59) / 60),
    };
    format!("Too many unsuccessful sign-in attempts. Please wait {wait} before you try again.")
}

pub async fn logout(session: Session, state: web::Data<AppState>, form: HtmlForm) -> Result<HttpResponse, AppError> {
    if check_csrf(&session, form.first("csrf_token")).is_err() {
        return Ok(error_page(StatusCode::FORBIDDEN, "Please try again", "The form expired. Go back and try again."));
    }
    session::sign_out(&session, &state).await?;
    Ok(see_other("/login"))
}
