//! `GET /account` and `POST /account/apps/{client_id}/revoke`.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::form::HtmlForm;
use super::pages::{error_page, render, see_other};
use super::session::{check_csrf, csrf_token, current_user};
use crate::error::AppError;
use crate::services::account;
use crate::state::AppState;
use crate::storage::write_transaction;
use crate::views::{AccountApp, AccountPage, AccountScope};

#[derive(Deserialize)]
pub struct AccountQuery {
    revoked: Option<String>,
}

fn date(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%-d %b %Y").to_string()
}

pub async fn show(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(user) = current_user(&session, &state).await? else {
        return Ok(see_other("/login?next=%2Faccount"));
    };
    let snapshot = state.registry.snapshot();
    let now = state.clock.now();
    let user_id = user.id.clone();
    let apps =
        state.db.run(move |connection| account::authorized_apps(connection, &snapshot.tree, &user_id, now)).await?;
    let apps = apps
        .into_iter()
        .map(|app| AccountApp {
            revoke_action: format!(
                "/account/apps/{}/revoke",
                url::form_urlencoded::byte_serialize(app.client_id.as_bytes()).collect::<String>()
            ),
            client_id: app.client_id,
            client_name: app.client_name,
            scopes: app
                .scopes
                .into_iter()
                .map(|scope| AccountScope {
                    name: scope.name,
                    label: scope.label,
                    granted_at: date(scope.granted_at),
                    expires: match (scope.status.state, scope.status.expires_at) {
                        ("expired", Some(at)) => format!("Expired {}", date(at)),
                        (_, Some(at)) => date(at),
                        (_, None) => "No end date".into(),
                    },
                    remaining: match scope.status.remaining {
                        Some(0) => "None left".into(),
                        Some(n) => format!("{n} left"),
                        None => "Unlimited".into(),
                    },
                    state: scope.status.state.to_string(),
                })
                .collect(),
        })
        .collect();
    // The query only says that something was revoked: text from a URL is never shown.
    let notice =
        query.revoked.as_ref().map(|_| "The app's access has been revoked. Its tokens no longer work.".to_string());
    Ok(render(
        StatusCode::OK,
        &AccountPage {
            page_title: "Your apps".into(),
            user_name: user.display_name.clone().unwrap_or(user.username),
            csrf_token: csrf_token(&session),
            apps,
            notice,
        },
    ))
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
    let client_id = client_id.into_inner();
    let now = state.clock.now();
    let target = client_id.clone();
    state
        .db
        .run(move |connection| {
            write_transaction(connection, |connection| account::revoke_app(connection, &user.id, &target, now))
        })
        .await?;
    tracing::info!(%client_id, "the user revoked an app");
    Ok(see_other("/account?revoked=1"))
}
