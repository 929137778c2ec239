//! `/admin/v1/clients`: client management.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Admin;
use crate::domain::client::{AuthMethod, ClientRegistration, TokenFormat};
use crate::domain::scope::{GrantType, SecurityLevel};
use crate::error::AppError;
use crate::http::json::ApiJson;
use crate::services::clients::{self as client_service, ClientPatch, ClientView};
use crate::state::AppState;

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
    /// Default: `none` for a public client, `client_secret_basic` otherwise.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// The public keys of a `private_key_jwt` client, as a JWK Set.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeAssignment {
    pub scopes: Vec<String>,
}

#[utoipa::path(post, path = "/admin/v1/clients", tag = "clients", request_body = NewClient,
    responses((status = 201, body = ClientView, description = "The client, with its secret shown once"),
        (status = 400, description = "invalid_redirect_uri (a redirect URI outside the registration policy) or invalid_request naming the field")),
    security(("bearer" = [])))]
pub async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    body: ApiJson<NewClient>,
) -> Result<HttpResponse, AppError> {
    let new = body.0;
    let registration = ClientRegistration {
        name: new.name,
        public: new.public,
        redirect_uris: new.redirect_uris,
        grant_types: new.grant_types,
        security_level: new.security_level,
        token_format: new.token_format,
        can_introspect: new.can_introspect,
        admin: new.admin,
        token_endpoint_auth_method: new.token_endpoint_auth_method,
        jwks: new.jwks,
        require_pushed_authorization_requests: new.require_pushed_authorization_requests,
        dpop_bound_access_tokens: new.dpop_bound_access_tokens,
    };
    let (now, shared, actor) = (state.clock.now(), state.clone(), admin.actor());
    let view = state
        .db
        .run(move |connection| {
            client_service::create(connection, &shared.hasher, &registration, &new.scopes, &actor, now)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/admin/v1/clients/{}", view.client.client_id)))
        .json(view))
}

#[utoipa::path(get, path = "/admin/v1/clients", tag = "clients",
    responses((status = 200, body = ClientList)), security(("bearer" = [])))]
pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let clients = state.db.run(client_service::list_views).await?;
    Ok(HttpResponse::Ok().json(ClientList { clients }))
}

#[utoipa::path(get, path = "/admin/v1/clients/{client_id}", tag = "clients",
    responses((status = 200, body = ClientView), (status = 404)), security(("bearer" = [])))]
pub async fn get(_: Admin, state: web::Data<AppState>, client_id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let client_id = client_id.into_inner();
    let view = state.db.run(move |connection| client_service::view_of(connection, &client_id)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(patch, path = "/admin/v1/clients/{client_id}", tag = "clients", request_body = ClientPatch,
    responses((status = 200, body = ClientView),
        (status = 400, description = "invalid_redirect_uri, security_level_mismatch or invalid_request naming the field"),
        (status = 404)),
    security(("bearer" = [])))]
pub async fn edit(
    admin: Admin,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
    body: ApiJson<ClientPatch>,
) -> Result<HttpResponse, AppError> {
    let client_id = client_id.into_inner();
    let (patch, actor, now) = (body.0, admin.actor(), state.clock.now());
    let view = state.db.run(move |connection| client_service::edit(connection, &client_id, patch, &actor, now)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(delete, path = "/admin/v1/clients/{client_id}", tag = "clients",
    responses((status = 204, description = "Deleted, with its grants and tokens"), (status = 404)),
    security(("bearer" = [])))]
pub async fn delete(
    admin: Admin,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let client_id = client_id.into_inner();
    let (actor, now) = (admin.actor(), state.clock.now());
    state.db.run(move |connection| client_service::delete(connection, &client_id, &actor, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(put, path = "/admin/v1/clients/{client_id}/scopes", tag = "clients", request_body = ScopeAssignment,
    responses((status = 200, body = ClientView), (status = 400, description = "security_level_mismatch or unknown scope"),
        (status = 404)),
    security(("bearer" = [])))]
pub async fn replace_scopes(
    admin: Admin,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
    body: ApiJson<ScopeAssignment>,
) -> Result<HttpResponse, AppError> {
    let client_id = client_id.into_inner();
    let scopes = body.0.scopes;
    let (now, actor) = (state.clock.now(), admin.actor());
    let snapshot = state.registry.snapshot();
    let view = state
        .db
        .run(move |connection| client_service::assign(connection, &snapshot.tree, &client_id, &scopes, &actor, now))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The new secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub client_id: String,
    pub client_secret: String,
}

#[utoipa::path(post, path = "/admin/v1/clients/{client_id}/secret", tag = "clients",
    responses(
        (status = 200, body = RotatedSecret, description = "The new secret, shown once; the old one stops working"),
        (status = 400, description = "a public client has no secret"), (status = 404)),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    admin: Admin,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let client_id = client_id.into_inner();
    let (actor, now, shared, id) = (admin.actor(), state.clock.now(), state.clone(), client_id.clone());
    let client_secret = state
        .db
        .run(move |connection| client_service::rotate_secret(connection, &shared.hasher, &id, &actor, now))
        .await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(RotatedSecret { client_id, client_secret }))
}
