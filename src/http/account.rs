//! `GET /account`, `POST /account/grants/{grant_id}/revoke` (one grant) and
//! `POST /account/apps/{client_id}/revoke` (every grant the user gave the app).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::form::HtmlForm;
use super::pages::{error_page, render, see_other};
use super::session::{check_csrf, csrf_token, current_user};
use crate::domain::event::Actor;
use crate::error::AppError;
use crate::services::account;
use crate::state::AppState;
use crate::views::{AccountApp, AccountPage};

#[derive(Deserialize)]
pub struct AccountQuery {
    revoked: Option<String>,
}

pub async fn show(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(user) = current_user(&session, &state).await? else {
        return Ok(see_other("/login?next=%2Faccount"));
    };
    let (snapshot, now, user_id) = (state.registry.snapshot(), state.clock.now(), user.id.clone());
    let timezone = state.settings.limits_timezone;
    let apps = state
        .db
        .run(move |connection| account::authorized_apps(connection, &snapshot.tree, &user_id, now, timezone))
        .await?;
    // The query only says that something was revoked: text from a URL is never shown.
    let notice =
        query.revoked.as_ref().map(|_| "The app's access has been revoked. Its tokens no longer work.".to_string());
    let page = AccountPage {
        page_title: "Your apps".into(),
        user_name: user.display_name.clone().unwrap_or(user.username),
        csrf_token: csrf_token(&session),
        apps: apps.into_iter().map(AccountApp::from).collect(),
        notice,
    };
    Ok(render(StatusCode::OK, &page))
}

pub async fn revoke(
    session: Session,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    if check_csrf(&session, form.first("csrf_token")).is_err() {
        return Ok(error_page(StatusCode::FORBIDDEN, "Please try again", "The form expired. Go back and try again."));
    }
    let Some(user) = current_user(&session, &state).await? else {
        return Ok(see_other("/login?next=%2Faccount"));
    };
    let (client_id, now) = (client_id.into_inner(), state.clock.now());
    let target = client_id.clone();
    let actor = Actor::User(user.username.clone());
    state.db.run(move |connection| account::revoke_app(connection, &user, &target, &actor, now)).await?;
    tracing::info!(%client_id, "the user revoked an app");
    Ok(see_other("/account?revoked=1"))
}

/// Ends one grant of the signed-in user's (Grant Management: an app may hold several).
pub async fn revoke_grant(
    session: Session,
    state: web::Data<AppState>,
    grant_id: web::Path<String>,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    if check_csrf(&session, form.first("csrf_token")).is_err() {
        return Ok(error_page(StatusCode::FORBIDDEN, "Please try again", "The form expired. Go back and try again."));
    }
    let Some(user) = current_user(&session, &state).await? else {
        return Ok(see_other("/login?next=%2Faccount"));
    };
    let (grant_id, now, actor) = (grant_id.into_inner(), state.clock.now(), Actor::User(user.username.clone()));
    let ended =
        state.db.run(move |connection| account::revoke_grant(connection, &user, &grant_id, &actor, now)).await?;
    Ok(see_other(if ended { "/account?revoked=1" } else { "/account" }))
}
