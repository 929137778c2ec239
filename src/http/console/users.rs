//! `/admin/users`: list, create, reset a password, disable, delete — through `services::users`,
//! as `/admin/v1/users` does. Passwords are hashed on the blocking pool, no connection held.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{admit, admit_form, admitted, done, notice_text, refusal, segment, Console};
use crate::error::AppError;
use crate::http::form::HtmlForm;
use crate::http::pages::render;
use crate::services::users::{self as user_service, NewUser, PreparedUser};
use crate::state::AppState;
use crate::views::console::{ConfirmPage, Draft, UserRow, UsersPage};
use chrono::{DateTime, Utc};

type Query = web::Query<Vec<(String, String)>>;

pub async fn list(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    query: Query,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit(&session, &state, &request));
    let notice = query.iter().find(|(key, _)| key == "notice").and_then(|(_, value)| notice_text(Some(value)));
    users_page(&console, &state, Draft::default(), notice, None).await
}

async fn users_page(
    console: &Console,
    state: &AppState,
    draft: Draft,
    notice: Option<String>,
    refused: Option<(StatusCode, String)>,
) -> Result<HttpResponse, AppError> {
    let users = state.db.run(user_service::list).await?;
    let page = UsersPage {
        frame: console.frame("users", notice, refused.as_ref().map(|(_, message)| message.clone())),
        page_title: "Users".into(),
        users: users
            .into_iter()
            .enumerate()
            .map(|(index, user)| UserRow {
                path: segment(&user.username),
                disabled: !user.is_active(),
                display_name: user.display_name.unwrap_or_default(),
                admin: user.admin,
                created: user.created_at.format("%-d %b %Y").to_string(),
                username: user.username,
                index,
            })
            .collect(),
        draft,
    };
    Ok(render(refused.map_or(StatusCode::OK, |(status, _)| status), &page))
}

/// Runs `work` on the blocking pool (argon2 hashing), never holding a connection.
async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    web::block(work).await.map_err(AppError::internal)?
}

pub async fn create(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit_form(&session, &state, &request, &form));
    let (now, actor) = (state.clock.now(), console.actor());
    let stored = match hashing(new_user_from(&form, now)).await {
        Ok(prepared) => state.db.run(move |connection| user_service::store(connection, prepared, &actor, now)).await,
        Err(error) => Err(error),
    };
    match stored {
        Ok(_) => Ok(done("/admin/users", "user-created")),
        Err(error) => {
            // The password is never sent back into the page.
            let draft = Draft::from_pairs(form.pairs().filter(|(key, _)| *key != "password"));
            users_page(&console, &state, draft, None, Some(refusal(error)?)).await
        }
    }
}

/// The form's new user, validated and hashed by the returned work (for the blocking pool).
fn new_user_from(form: &HtmlForm, now: DateTime<Utc>) -> impl FnOnce() -> Result<PreparedUser, AppError> {
    let username = form.first("username").unwrap_or("").trim().to_string();
    let password = form.first("password").unwrap_or("").to_string();
    let display_name = form.first("display_name").map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
    let admin = form.first("admin").is_some();
    move || {
        let new_user =
            NewUser { username: &username, password: &password, display_name: display_name.as_deref(), admin };
        user_service::prepare(new_user, now)
    }
}

pub async fn reset_password(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    username: web::Path<String>,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit_form(&session, &state, &request, &form));
    let (now, actor, target) = (state.clock.now(), console.actor(), username.into_inner());
    let password = form.first("password").unwrap_or("").to_string();
    let reset = match hashing(move || user_service::prepare_password(&password)).await {
        Ok(prepared) => {
            state
                .db
                .run(move |connection| user_service::reset_password(connection, &target, prepared, &actor, now))
                .await
        }
        Err(error) => Err(error),
    };
    after_change(&console, &state, reset, "user-password").await
}

async fn after_change(
    console: &Console,
    state: &AppState,
    outcome: Result<(), AppError>,
    notice: &str,
) -> Result<HttpResponse, AppError> {
    match outcome {
        Ok(()) => Ok(done("/admin/users", notice)),
        Err(error) => users_page(console, state, Draft::default(), None, Some(refusal(error)?)).await,
    }
}

pub async fn disable(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    username: web::Path<String>,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit_form(&session, &state, &request, &form));
    let (now, actor, target) = (state.clock.now(), console.actor(), username.into_inner());
    let disabled = state.db.run(move |connection| user_service::disable(connection, &target, &actor, now)).await;
    after_change(&console, &state, disabled, "user-disabled").await
}

pub async fn confirm_delete(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    username: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit(&session, &state, &request));
    let page = ConfirmPage {
        frame: console.frame("users", None, None),
        page_title: format!("Delete {}", username.as_str()),
        heading: format!("Delete the user {}?", username.as_str()),
        message: "Her grants, sessions and tokens are deleted with her. To keep her record, disable her instead."
            .into(),
        items: Vec::new(),
        action: format!("/admin/users/{}/delete", segment(&username)),
        button: "Delete this user".into(),
        back: "/admin/users".into(),
    };
    Ok(render(StatusCode::OK, &page))
}

pub async fn delete(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    username: web::Path<String>,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit_form(&session, &state, &request, &form));
    let (now, actor, target) = (state.clock.now(), console.actor(), username.into_inner());
    let deleted = state.db.run(move |connection| user_service::delete(connection, &target, &actor, now)).await;
    after_change(&console, &state, deleted, "user-deleted").await
}
