//! `/admin/v1/clients`: client management.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Admin;
use crate::domain::client::{Client, ClientRegistration, TokenFormat};
use crate::domain::scope::{GrantType, SecurityLevel};
use crate::error::AppError;
use crate::http::json::ApiJson;
use crate::services::clients::{self as client_service, ClientPatch};
use crate::state::AppState;
use crate::storage::{clients, write_transaction, DbConnection};

#[derive(Debug, Serialize, ToSchema)]
pub struct AssignedScope {
    pub scope: String,
    /// Empty unless assigned for one bank (OBP).
    pub bank_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    #[serde(flatten)]
    pub client: Client,
    pub scopes: Vec<AssignedScope>,
    /// Present only in the answer to a create: shown once, never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    pub clients: Vec<ClientView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    pub name: String,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub grant_types: Vec<GrantType>,
    #[serde(default)]
    pub security_level: Option<SecurityLevel>,
    #[serde(default)]
    pub token_format: Option<TokenFormat>,
    #[serde(default)]
    pub can_introspect: bool,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeAssignment {
    pub scopes: Vec<String>,
}

fn view(connection: &mut DbConnection, client: Client, client_secret: Option<String>) -> Result<ClientView, AppError> {
    let scopes = clients::assignments(connection, &client.client_id)?
        .into_iter()
        .map(|a| AssignedScope { scope: a.scope_name, bank_id: a.bank_id })
        .collect();
    Ok(ClientView { client, scopes, client_secret })
}

fn find(connection: &mut DbConnection, client_id: &str) -> Result<Client, AppError> {
    clients::find(connection, client_id)?
        .ok_or_else(|| AppError::not_found("client_not_found", format!("client {client_id:?} does not exist")))
}

#[utoipa::path(post, path = "/admin/v1/clients", tag = "clients", request_body = NewClient,
    responses((status = 201, body = ClientView, description = "The client, with its secret shown once"), (status = 400)),
    security(("bearer" = [])))]
pub async fn create(_: Admin, state: web::Data<AppState>, body: ApiJson<NewClient>) -> Result<HttpResponse, AppError> {
    let new = body.0;
    let now = state.clock.now();
    let state_ref = state.clone();
    let view = state
        .db
        .run(move |connection| {
            let registration = ClientRegistration {
                name: new.name,
                public: new.public,
                redirect_uris: new.redirect_uris,
                grant_types: new.grant_types,
                security_level: new.security_level,
                token_format: new.token_format,
                can_introspect: new.can_introspect,
                admin: new.admin,
            };
            let registered =
                client_service::register(connection, &state_ref.hasher, &registration, &new.scopes, None, now)?;
            view(connection, registered.client, registered.client_secret)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/admin/v1/clients/{}", view.client.client_id)))
        .json(view))
}

#[utoipa::path(get, path = "/admin/v1/clients", tag = "clients",
    responses((status = 200, body = ClientList)), security(("bearer" = [])))]
pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let clients = state
        .db
        .run(|connection| {
            let all = clients::list(connection)?;
            all.into_iter().map(|client| view(connection, client, None)).collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(ClientList { clients }))
}

#[utoipa::path(get, path = "/admin/v1/clients/{client_id}", tag = "clients",
    responses((status = 200, body = ClientView), (status = 404)), security(("bearer" = [])))]
pub async fn get(_: Admin, state: web::Data<AppState>, client_id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let client_id = client_id.into_inner();
    let view = state
        .db
        .run(move |connection| {
            let client = find(connection, &client_id)?;
            view(connection, client, None)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(patch, path = "/admin/v1/clients/{client_id}", tag = "clients", request_body = ClientPatch,
    responses((status = 200, body = ClientView), (status = 400), (status = 404)), security(("bearer" = [])))]
pub async fn edit(
    _: Admin,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
    body: ApiJson<ClientPatch>,
) -> Result<HttpResponse, AppError> {
    let client_id = client_id.into_inner();
    let patch = body.0;
    let view = state
        .db
        .run(move |connection| {
            write_transaction(connection, |connection| {
                let client = find(connection, &client_id)?;
                let updated = client_service::update(connection, &client, patch)?;
                view(connection, updated, None)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(delete, path = "/admin/v1/clients/{client_id}", tag = "clients",
    responses((status = 204, description = "Deleted, with its grants and tokens"), (status = 404)),
    security(("bearer" = [])))]
pub async fn delete(
    _: Admin,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let client_id = client_id.into_inner();
    let deleted = state.db.run(move |connection| clients::delete(connection, &client_id)).await?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(AppError::not_found("client_not_found", "no such client"))
    }
}

#[utoipa::path(put, path = "/admin/v1/clients/{client_id}/scopes", tag = "clients", request_body = ScopeAssignment,
    responses((status = 200, body = ClientView), (status = 400, description = "security_level_mismatch or unknown scope"),
        (status = 404)),
    security(("bearer" = [])))]
pub async fn replace_scopes(
    _: Admin,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
    body: ApiJson<ScopeAssignment>,
) -> Result<HttpResponse, AppError> {
    let client_id = client_id.into_inner();
    let scopes = body.0.scopes;
    let now = state.clock.now();
    let snapshot = state.registry.snapshot();
    let view = state
        .db
        .run(move |connection| {
            write_transaction(connection, |connection| {
                let client = find(connection, &client_id)?;
                client_service::replace_scopes(connection, &snapshot.tree, &client, &scopes, now)?;
                view(connection, client, None)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
