//! `/admin/clients`: list, create (the secret shown once), edit, assign scopes from the tree,
//! rotate the secret, delete — through `services::clients`, as `/admin/v1/clients` does.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{admit, admit_form, admitted, done, notice_text, refusal, segment, Console};
use crate::domain::client::{AuthMethod, Client, ClientRegistration, TokenFormat};
use crate::domain::scope::{GrantType, SecurityLevel};
use crate::error::AppError;
use crate::http::form::HtmlForm;
use crate::http::pages::{error_page, render};
use crate::services::clients::{self as client_service, ClientPatch, ClientView};
use crate::state::AppState;
use crate::views::console::{AssignableScope, ClientPage, ClientRow, ClientsPage, ConfirmPage, Draft};

type Query = web::Query<Vec<(String, String)>>;

pub async fn list(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    query: Query,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit(&session, &state, &request));
    let notice = query.iter().find(|(key, _)| key == "notice").and_then(|(_, value)| notice_text(Some(value)));
    clients_page(&console, &state, Draft::default(), notice, None).await
}

async fn clients_page(
    console: &Console,
    state: &AppState,
    draft: Draft,
    notice: Option<String>,
    refused: Option<(StatusCode, String)>,
) -> Result<HttpResponse, AppError> {
    let views = state.db.run(client_service::list_views).await?;
    let clients = views
        .into_iter()
        .map(|view| ClientRow {
            path: segment(&view.client.client_id),
            client_id: view.client.client_id,
            name: view.client.name,
            kind: if view.client.confidential { "Confidential" } else { "Public" },
            level: view.client.security_level.as_str(),
            scopes: view.scopes.iter().map(|assigned| assigned.scope.as_str()).collect::<Vec<_>>().join(", "),
        })
        .collect();
    let page = ClientsPage {
        frame: console.frame("clients", notice, refused.as_ref().map(|(_, message)| message.clone())),
        page_title: "Clients".into(),
        clients,
        draft,
    };
    Ok(render(refused.map_or(StatusCode::OK, |(status, _)| status), &page))
}

fn parsed<T: std::str::FromStr<Err = String>>(form: &HtmlForm, key: &str) -> Result<Option<T>, AppError> {
    match form.first(key).map(str::trim).filter(|value| !value.is_empty()) {
        None => Ok(None),
        Some(value) => value.parse().map(Some).map_err(|e: String| AppError::invalid_request(format!("{key}: {e}"))),
    }
}

fn grant_types(form: &HtmlForm) -> Result<Vec<GrantType>, AppError> {
    form.all("grant_types")
        .map(|value| value.parse().map_err(|e: String| AppError::invalid_request(format!("grant_types: {e}"))))
        .collect()
}

fn redirect_uris(form: &HtmlForm) -> Vec<String> {
    form.first("redirect_uris")
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn token_format(form: &HtmlForm) -> Result<Option<TokenFormat>, AppError> {
    match form.first("token_format") {
        None | Some("") => Ok(None),
        Some("jwt") => Ok(Some(TokenFormat::Jwt)),
        Some("opaque") => Ok(Some(TokenFormat::Opaque)),
        Some(other) => Err(AppError::invalid_request(format!("token_format: jwt or opaque, not {other:?}"))),
    }
}

fn registration(form: &HtmlForm) -> Result<ClientRegistration, AppError> {
    Ok(ClientRegistration {
        name: form.first("name").unwrap_or("").to_string(),
        public: form.first("client_type") == Some("public"),
        redirect_uris: redirect_uris(form),
        grant_types: grant_types(form)?,
        security_level: parsed::<SecurityLevel>(form, "security_level")?,
        token_format: token_format(form)?,
        can_introspect: form.first("can_introspect").is_some(),
        admin: form.first("admin").is_some(),
        token_endpoint_auth_method: parsed::<AuthMethod>(form, "token_endpoint_auth_method")?,
        jwks: jwks(form)?,
        require_pushed_authorization_requests: form.first("require_par").is_some(),
        dpop_bound_access_tokens: form.first("dpop_bound").is_some(),
    })
}

/// The pasted JWK Set, when there is one.
fn jwks(form: &HtmlForm) -> Result<Option<serde_json::Value>, AppError> {
    match form.first("jwks").map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => serde_json::from_str(text)
            .map(Some)
            .map_err(|_| AppError::invalid_request("jwks: paste the client's public keys as a JWK Set in JSON")),
    }
}

pub async fn create(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit_form(&session, &state, &request, &form));
    let (now, shared, actor) = (state.clock.now(), state.clone().into_inner(), console.actor());
    let created = match registration(&form) {
        Ok(registration) => {
            state
                .db
                .run(move |connection| {
                    client_service::create(connection, &shared.hasher, &registration, &[], &actor, now)
                })
                .await
        }
        Err(error) => Err(error),
    };
    match created {
        // Rendered, not redirected: the secret exists only in this answer (never stored, never
        // in the cookie), and the page is `no-store`.
        Ok(view) => client_page(&console, &state, view, None, None, None).await,
        Err(error) => {
            let draft = Draft::from_pairs(form.pairs());
            clients_page(&console, &state, draft, None, Some(refusal(error)?)).await
        }
    }
}

pub async fn show(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    client_id: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit(&session, &state, &request));
    let notice = query.iter().find(|(key, _)| key == "notice").and_then(|(_, value)| notice_text(Some(value)));
    let target = client_id.into_inner();
    match state.db.run(move |connection| client_service::view_of(connection, &target)).await {
        Ok(view) => client_page(&console, &state, view, None, notice, None).await,
        Err(AppError::NotFound { .. }) => Ok(no_such_client()),
        Err(error) => Err(error),
    }
}

fn no_such_client() -> HttpResponse {
    error_page(StatusCode::NOT_FOUND, "No such client", "The client does not exist.")
}

/// A client's page: its settings, its scopes from the tree, rotation and deletion; the secret
/// when one was just made.
async fn client_page(
    console: &Console,
    state: &AppState,
    view: ClientView,
    draft: Option<Draft>,
    notice: Option<String>,
    refused: Option<(StatusCode, String)>,
) -> Result<HttpResponse, AppError> {
    let ClientView { client, scopes: assigned, client_secret } = view;
    let snapshot = state.registry.snapshot();
    let assigned: Vec<String> = assigned.into_iter().map(|a| a.scope).collect();
    let (admitted, refused_levels) = levels_for(&client);
    let page = ClientPage {
        frame: console.frame("clients", notice, refused.as_ref().map(|(_, message)| message.clone())),
        page_title: format!("Client {}", client.name),
        path: segment(&client.client_id),
        client_id: client.client_id.clone(),
        name: client.name.clone(),
        confidential: client.confidential,
        auth_method: client.token_endpoint_auth_method.as_str(),
        has_secret: client.token_endpoint_auth_method.uses_secret(),
        level: client.security_level.as_str(),
        admitted_levels: admitted,
        refused_levels,
        draft: draft.unwrap_or_else(|| Draft::of_client(&client)),
        scopes: AssignableScope::for_client(&snapshot.tree, &client, &assigned),
        secret: client_secret,
        created: client.created_at.format("%-d %b %Y").to_string(),
    };
    Ok(render(refused.map_or(StatusCode::OK, |(status, _)| status), &page))
}

/// The security levels the client may hold and those too sensitive for it, in words.
fn levels_for(client: &Client) -> (String, String) {
    let (admitted, refused): (Vec<SecurityLevel>, Vec<SecurityLevel>) =
        SecurityLevel::ALL.into_iter().partition(|level| client.security_level.admits(*level));
    let join = |levels: Vec<SecurityLevel>| levels.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", ");
    (join(admitted), join(refused))
}

pub async fn edit(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    client_id: web::Path<String>,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit_form(&session, &state, &request, &form));
    let (actor, now, target) = (console.actor(), state.clock.now(), client_id.clone());
    let patch = (|| -> Result<ClientPatch, AppError> {
        Ok(ClientPatch {
            name: form.first("name").map(str::to_string),
            redirect_uris: Some(redirect_uris(&form)),
            grant_types: Some(grant_types(&form)?),
            security_level: parsed(&form, "security_level")?,
            token_format: token_format(&form)?,
            can_introspect: Some(form.first("can_introspect").is_some()),
            admin: Some(form.first("admin").is_some()),
            token_endpoint_auth_method: parsed(&form, "token_endpoint_auth_method")?,
            jwks: jwks(&form)?,
            require_pushed_authorization_requests: Some(form.first("require_par").is_some()),
            dpop_bound_access_tokens: Some(form.first("dpop_bound").is_some()),
        })
    })();
    let edited = match patch {
        Ok(patch) => {
            state.db.run(move |connection| client_service::edit(connection, &target, patch, &actor, now)).await
        }
        Err(error) => Err(error),
    };
    after_change(&console, &state, &client_id, edited.map(|_| ()), "client-updated", Some(&form)).await
}

/// A change's answer: a 303 to the client's page, or the page again with the refusal.
async fn after_change(
    console: &Console,
    state: &AppState,
    client_id: &str,
    outcome: Result<(), AppError>,
    notice: &str,
    form: Option<&HtmlForm>,
) -> Result<HttpResponse, AppError> {
    let refused = match outcome {
        Ok(()) => return Ok(done(&format!("/admin/clients/{}", segment(client_id)), notice)),
        Err(error) => refusal(error)?,
    };
    let target = client_id.to_string();
    match state.db.run(move |connection| client_service::view_of(connection, &target)).await {
        Ok(view) => {
            let draft = form.map(|form| Draft::from_pairs(form.pairs()));
            client_page(console, state, view, draft, None, Some(refused)).await
        }
        Err(AppError::NotFound { .. }) => Ok(no_such_client()),
        Err(error) => Err(error),
    }
}

pub async fn assign(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    client_id: web::Path<String>,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit_form(&session, &state, &request, &form));
    let scopes: Vec<String> = form.all("scope").map(str::to_string).collect();
    let (actor, now, target, snapshot) =
        (console.actor(), state.clock.now(), client_id.clone(), state.registry.snapshot());
    let assigned = state
        .db
        .run(move |connection| client_service::assign(connection, &snapshot.tree, &target, &scopes, &actor, now))
        .await;
    after_change(&console, &state, &client_id, assigned.map(|_| ()), "client-scopes", None).await
}

pub async fn rotate_secret(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    client_id: web::Path<String>,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit_form(&session, &state, &request, &form));
    let (actor, now, target, shared) =
        (console.actor(), state.clock.now(), client_id.clone(), state.clone().into_inner());
    let rotated = state
        .db
        .run(move |connection| {
            let secret = client_service::rotate_secret(connection, &shared.hasher, &target, &actor, now)?;
            let mut view = client_service::view_of(connection, &target)?;
            view.client_secret = Some(secret);
            Ok::<_, AppError>(view)
        })
        .await;
    match rotated {
        Ok(view) => client_page(&console, &state, view, None, None, None).await,
        Err(error) => after_change(&console, &state, &client_id, Err(error), "", None).await,
    }
}

pub async fn confirm_delete(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    client_id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit(&session, &state, &request));
    let page = ConfirmPage {
        frame: console.frame("clients", None, None),
        page_title: format!("Delete {}", client_id.as_str()),
        heading: format!("Delete the client {}?", client_id.as_str()),
        message: "Its scope assignments, grants and tokens are deleted with it, and it can no longer sign in.".into(),
        items: Vec::new(),
        action: format!("/admin/clients/{}/delete", segment(&client_id)),
        button: "Delete this client".into(),
        back: format!("/admin/clients/{}", segment(&client_id)),
    };
    Ok(render(StatusCode::OK, &page))
}

pub async fn delete(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    client_id: web::Path<String>,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit_form(&session, &state, &request, &form));
    let (actor, now, target) = (console.actor(), state.clock.now(), client_id.clone());
    match state.db.run(move |connection| client_service::delete(connection, &target, &actor, now)).await {
        Ok(()) => Ok(done("/admin/clients", "client-deleted")),
        Err(error) => after_change(&console, &state, &client_id, Err(error), "", None).await,
    }
}
