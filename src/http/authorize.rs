//! `GET /authorize` and `POST /authorize/consent`: the browser side of the code flow.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use super::form::HtmlForm;
use super::pages::{error_page, render, see_other};
use super::session::{check_csrf, csrf_token, current_user};
use crate::domain::consent;
use crate::domain::limits;
use crate::domain::scope_tree::ScopeTree;
use crate::domain::user::User;
use crate::error::AppError;
use crate::oauth::authorization::{self, AuthorizeOutcome, AuthorizeParams, Channel, ConsentScreen, Decision};
use crate::services::pushed_requests::{self, Taking};
use crate::state::AppState;
use crate::views::{ConsentPage, ConsentRow};

/// The pending request, carried through the consent form signed by the server, so any
/// instance can finish it and nobody can alter it.
#[derive(Serialize, Deserialize)]
struct ConsentState {
    params: AuthorizeParams,
    user_id: String,
    offered: BTreeSet<String>,
    expires_at: DateTime<Utc>,
}

const CONSENT_PURPOSE: &str = "consent form";
/// How long a consent page may stay open.
const CONSENT_MINUTES: i64 = 10;

fn cannot_continue(message: &str) -> HttpResponse {
    error_page(StatusCode::BAD_REQUEST, "We cannot continue this request", message)
}

pub async fn authorize(
    request: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let query = match AuthorizeParams::from_query(request.query_string()) {
        Ok(params) => params,
        Err(message) => return Ok(cannot_continue(&message)),
    };
    let user = current_user(&session, &state).await?;
    let params = match pushed(&state, &query, user.is_some()).await? {
        Ok(Some(params)) => params,
        // Not signed in yet: to /login and back, the request_uri kept for the return.
        Ok(None) => return Ok(respond(&session, &state, AuthorizeOutcome::Login, &query, None)),
        Err(message) => return Ok(cannot_continue(message)),
    };
    let outcome = run(&state, params.clone(), user.clone(), Decision::Ask).await?;
    Ok(respond(&session, &state, outcome, &params, user.as_ref()))
}

/// The parameters to authorize with: the query's, or for a `request_uri` the pushed ones
/// (RFC 9126), taken for good only once the user is signed in (None before). Refused without a
/// `request_uri` when the server requires pushed requests.
async fn pushed(
    state: &web::Data<AppState>,
    query: &AuthorizeParams,
    signed_in: bool,
) -> Result<Result<Option<AuthorizeParams>, &'static str>, AppError> {
    if query.get("request_uri").is_none() {
        if state.settings.require_pushed_authorization_requests {
            return Ok(Err("This server accepts only pushed authorization requests (RFC 9126): the app must send its request to /par first."));
        }
        return Ok(Ok(Some(query.clone())));
    }
    let taking = if signed_in { Taking::Use } else { Taking::Peek };
    let query = query.clone();
    let resolved = state
        .oauth_operation(move |connection, context, now| {
            Ok(pushed_requests::resolve(connection, context, &query, taking, now)?)
        })
        .await?;
    Ok(resolved.map(|params| signed_in.then_some(params)))
}

pub async fn consent(session: Session, state: web::Data<AppState>, form: HtmlForm) -> Result<HttpResponse, AppError> {
    let (pending, user) = match pending_consent(&session, &state, &form).await? {
        Ok(found) => found,
        Err(message) => return Ok(cannot_continue(message)),
    };
    let decision = match form.first("decision") {
        Some("allow") => {
            let ticked: BTreeSet<String> = form.all("scope").map(str::to_string).collect();
            Decision::Approve(consent::decide(&state.registry.snapshot().tree, &pending.offered, &ticked))
        }
        _ => Decision::Deny,
    };
    let outcome = run(&state, pending.params.clone(), Some(user.clone()), decision).await?;
    Ok(respond(&session, &state, outcome, &pending.params, Some(&user)))
}

/// The consent form's pending request and the user it was shown to, or why it cannot go on.
async fn pending_consent(
    session: &Session,
    state: &web::Data<AppState>,
    form: &HtmlForm,
) -> Result<Result<(ConsentState, User), &'static str>, AppError> {
    if check_csrf(session, form.first("csrf_token")).is_err() {
        return Ok(Err("The consent form expired or was not sent from this site. Please start again from the app."));
    }
    let pending: Option<ConsentState> = form
        .first("consent_token")
        .and_then(|token| state.hasher.verify_signed(CONSENT_PURPOSE, token))
        .and_then(|payload| serde_json::from_slice(&payload).ok());
    let Some(pending) = pending else {
        return Ok(Err("The consent form was altered or is incomplete. Please start again from the app."));
    };
    let Some(user) = current_user(session, state).await?.filter(|user| user.id == pending.user_id) else {
        return Ok(Err("You are no longer signed in as the person who was asked. Please start again from the app."));
    };
    if pending.expires_at < state.clock.now() {
        return Ok(Err("The consent page was open too long. Please start again from the app."));
    }
    Ok(Ok((pending, user)))
}

/// One step of the flow, in its transaction; a consent decision is counted once committed.
async fn run(
    state: &web::Data<AppState>,
    params: AuthorizeParams,
    user: Option<User>,
    decision: Decision,
) -> Result<AuthorizeOutcome, AppError> {
    // Only a resolved pushed request carries its request_uri on (`pushed_requests::resolve`).
    let channel = if params.get("request_uri").is_some() { Channel::Pushed } else { Channel::Front };
    let outcome = state
        .oauth_operation(move |connection, context, now| {
            authorization::authorize_in_transaction(connection, context, &params, channel, user.as_ref(), decision, now)
        })
        .await?;
    if let AuthorizeOutcome::Decided { granted, .. } = &outcome {
        state.metrics.consent_decided(*granted);
    }
    Ok(outcome)
}

fn respond(
    session: &Session,
    state: &AppState,
    outcome: AuthorizeOutcome,
    params: &AuthorizeParams,
    user: Option<&User>,
) -> HttpResponse {
    match outcome {
        AuthorizeOutcome::ErrorPage { message } => cannot_continue(&message),
        AuthorizeOutcome::Redirect(url) | AuthorizeOutcome::Decided { redirect: url, .. } => see_other(&url),
        AuthorizeOutcome::Login => {
            let next = format!("/authorize?{}", params.resume_query());
            let login = format!(
                "/login?{}",
                url::form_urlencoded::Serializer::new(String::new()).append_pair("next", &next).finish()
            );
            see_other(&login)
        }
        AuthorizeOutcome::Consent(screen) => match user {
            Some(user) => consent_page(session, state, screen, params, user),
            None => cannot_continue("Please sign in first."),
        },
    }
}

fn consent_page(
    session: &Session,
    state: &AppState,
    screen: ConsentScreen,
    params: &AuthorizeParams,
    user: &User,
) -> HttpResponse {
    let snapshot = state.registry.snapshot();
    let scopes = consent_rows(&snapshot.tree, &screen);
    let pending = ConsentState {
        params: params.clone(),
        user_id: user.id.clone(),
        offered: screen.offered,
        expires_at: state.clock.now() + Duration::minutes(CONSENT_MINUTES),
    };
    let consent_token = match serde_json::to_vec(&pending) {
        Ok(payload) => state.hasher.sign(CONSENT_PURPOSE, &payload),
        Err(error) => return AppError::internal(error).error_response(),
    };
    let csrf = csrf_token(session);
    render(
        StatusCode::OK,
        &ConsentPage {
            page_title: format!("Allow {}?", screen.client.name),
            client_name: screen.client.name,
            user_name: user.display_name.clone().unwrap_or_else(|| user.username.clone()),
            scopes,
            csrf_token: csrf.clone(),
            consent_token,
            logout_csrf: csrf,
        },
    )
}

/// The offered scopes as a tree in pre-order: a scope whose parent is not offered is shown at
/// the top level, and so is each value of a parameterised scope (no parent implies it), in its
/// scope's place.
fn consent_rows(tree: &ScopeTree, screen: &ConsentScreen) -> Vec<ConsentRow> {
    let mut rows = Vec::new();
    for scope in tree.iter() {
        let offered_as: Vec<&String> = match scope.fields.parameterised {
            false => screen.offered.iter().filter(|name| **name == scope.name).collect(),
            true => screen
                .offered
                .iter()
                .filter(|name| tree.definition(name).is_some_and(|definition| definition.name == scope.name))
                .collect(),
        };
        for name in offered_as {
            let shown_parent = tree.ancestors(name).find(|a| screen.offered.contains(&a.name)).map(|a| a.name.clone());
            let depth = tree.ancestors(name).filter(|a| screen.offered.contains(&a.name)).count();
            rows.push(ConsentRow {
                name: name.clone(),
                label: scope.label_for(name),
                description: scope.fields.short_description.clone(),
                limits: limits::describe(scope),
                needs_authorization: scope.fields.user_authorization_required,
                reauthorize: screen.reauthorize.get(name).cloned(),
                depth: depth.min(9),
                parent: shown_parent,
                input_id: format!("scope-{}", rows.len()),
            });
        }
    }
    rows
}
