//! `/admin/grants`: the grants with the entitlement rule's verdict (`services::grants`, as
//! `GET /admin/v1/grants`), searched by user, client, scope and state; revoking a user's
//! consents to a client (`services::account`, as the account page does).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{admit, admit_form, admitted, done, notice_text, refusal};
use crate::error::AppError;
use crate::http::form::HtmlForm;
use crate::http::pages::render;
use crate::services::grants::GrantView;
use crate::services::{account, grants};
use crate::state::AppState;
use crate::views::console::{Choice, Draft, GrantRow, GrantsPage};

/// A page shows at most this many grants; a search narrows a bank's millions down.
const GRANTS_SHOWN: usize = 200;

pub async fn list(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit(&session, &state, &request));
    let filter = Draft::from_pairs(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let wanted = |key: &str| Some(filter.value(key).to_string()).filter(|value| !value.is_empty());
    let (user, client, scope, wanted_state) = (wanted("user"), wanted("client"), wanted("scope"), wanted("state"));
    let (snapshot, now, timezone) = (state.registry.snapshot(), state.clock.now(), state.settings.limits_timezone);
    let listed = state
        .db
        .run(move |connection| {
            grants::list(connection, &snapshot.tree, user.as_deref(), client.as_deref(), now, timezone)
        })
        .await;
    let (status, error, listed) = or_refusal(listed)?;
    let (found, grants) = shown(listed, scope.as_deref(), wanted_state.as_deref());
    let (notice, states) = (notice_text(Some(filter.value("notice"))), Choice::grant_states(filter.value("state")));
    let page = GrantsPage {
        frame: console.frame("grants", notice, error),
        page_title: "Grants".into(),
        filter,
        states,
        grants,
        found,
    };
    Ok(render(status, &page))
}

/// The listing, or an empty one with the refusal (an unknown user) to show above it.
fn or_refusal(
    listed: Result<Vec<GrantView>, AppError>,
) -> Result<(StatusCode, Option<String>, Vec<GrantView>), AppError> {
    match listed {
        Ok(listed) => Ok((StatusCode::OK, None, listed)),
        Err(error) => {
            let (status, message) = refusal(error)?;
            Ok((status, Some(message), Vec::new()))
        }
    }
}

/// Of the listed grants, those of the scope and state searched for: how many, and the first
/// [`GRANTS_SHOWN`] as rows.
fn shown(listed: Vec<GrantView>, scope: Option<&str>, state: Option<&str>) -> (usize, Vec<GrantRow>) {
    let matching: Vec<GrantView> = listed
        .into_iter()
        .filter(|grant| scope.is_none_or(|scope| grant.scope == scope))
        .filter(|grant| state.is_none_or(|wanted| grant.state == wanted))
        .collect();
    (matching.len(), matching.into_iter().take(GRANTS_SHOWN).map(GrantRow::from).collect())
}

pub async fn revoke(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit_form(&session, &state, &request, &form));
    let username = form.first("user").unwrap_or("").to_string();
    let client_id = form.first("client").unwrap_or("").to_string();
    // One grant by its id (the table's buttons), or all a user gave a client.
    let grant_id = form.first("grant").map(str::to_string);
    let (actor, now) = (console.actor(), state.clock.now());
    let back =
        format!("/admin/grants?user={}", url::form_urlencoded::byte_serialize(username.as_bytes()).collect::<String>());
    let revoked = state
        .db
        .run(move |connection| match grant_id {
            Some(grant_id) => grants::end_grant_by_id(connection, &grant_id, &actor, now),
            None => account::revoke_for_user(connection, &username, &client_id, &actor, now),
        })
        .await;
    match revoked {
        Ok(true) => Ok(done(&back, "grant-revoked")),
        Ok(false) => Ok(done(&back, "grant-none")),
        Err(error) => {
            let (status, message) = refusal(error)?;
            Ok(crate::http::pages::error_page(status, "Cannot revoke", &message))
        }
    }
}
