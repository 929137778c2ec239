//! `/admin/v1/scopes`: the registry over HTTP.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Admin;
use crate::domain::scope::{Scope, ScopeFields};
use crate::domain::scope_document::{ScopeDocument, ScopeNode};
use crate::domain::scope_tree::{ScopePatch, ScopeQuery, ScopeTree};
use crate::error::AppError;
use crate::http::json::ApiJson;
use crate::state::AppState;

/// One scope with its place in the tree and its children's names.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeView {
    #[serde(flatten)]
    pub scope: Scope,
    pub children: Vec<String>,
}

impl ScopeView {
    fn of(tree: &ScopeTree, scope: &Scope) -> Self {
        let children = tree.children(&scope.name).into_iter().map(|child| child.name.clone()).collect();
        Self { scope: scope.clone(), children }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeList {
    pub scopes: Vec<ScopeView>,
}

/// A new scope; fields left out take SPEC's defaults.
// Unknown keys are refused; `ScopeFields` says how that holds with the flattened fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScope {
    pub name: String,
    /// The parent's name; absent or null for the top level.
    #[serde(default)]
    pub parent: Option<String>,
    /// Place among the siblings; absent = last.
    #[serde(default)]
    pub position: Option<u32>,
    #[serde(flatten, deserialize_with = "ScopeFields::deserialize_flattened")]
    pub fields: ScopeFields,
}

impl NewScope {
    /// The scope, and its place among its siblings if one was asked for (else: last).
    pub fn into_scope(self) -> (Scope, Option<u32>) {
        let scope = Scope { name: self.name, parent: self.parent, position: 0, fields: self.fields };
        (scope, self.position)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveScope {
    /// The new parent's name; null or absent for the top level.
    #[serde(default)]
    pub parent: Option<String>,
    /// Place among the new siblings; absent = last.
    #[serde(default)]
    pub position: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SearchParams {
    /// Keyword matched against name, alias and descriptions.
    pub q: Option<String>,
    pub security_level: Option<String>,
    pub auth_type: Option<String>,
}

fn not_found(name: &str) -> AppError {
    AppError::not_found("scope_not_found", format!("scope {name:?} does not exist"))
}

/// The whole tree, or a flat list of matches when a search parameter is given.
#[utoipa::path(get, path = "/admin/v1/scopes", tag = "scopes", params(SearchParams),
    responses((status = 200, description = "The tree (nested) or the matches (flat, each with parent)", body = ScopeDocument)),
    security(("bearer" = [])))]
pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    params: web::Query<SearchParams>,
) -> Result<HttpResponse, AppError> {
    let snapshot = state.registry.snapshot();
    let params = params.into_inner();
    if params.q.is_none() && params.security_level.is_none() && params.auth_type.is_none() {
        let tree: Vec<ScopeNode> = snapshot.tree.export();
        return Ok(HttpResponse::Ok().json(ScopeDocument { scopes: tree }));
    }
    let query = ScopeQuery {
        keyword: params.q.filter(|q| !q.is_empty()),
        security_level: params
            .security_level
            .map(|level| level.parse().map_err(|e: String| AppError::invalid_request(format!("security_level: {e}"))))
            .transpose()?,
        auth_type: params
            .auth_type
            .map(|t| t.parse().map_err(|e: String| AppError::invalid_request(format!("auth_type: {e}"))))
            .transpose()?,
    };
    let scopes = snapshot.tree.search(&query).into_iter().map(|scope| ScopeView::of(&snapshot.tree, scope)).collect();
    Ok(HttpResponse::Ok().json(ScopeList { scopes }))
}

#[utoipa::path(post, path = "/admin/v1/scopes", tag = "scopes", request_body = NewScope,
    responses((status = 201, body = ScopeView), (status = 400), (status = 409, description = "scope_exists")),
    security(("bearer" = [])))]
pub async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    body: ApiJson<NewScope>,
) -> Result<HttpResponse, AppError> {
    let new_scope = body.0;
    let name = new_scope.name.clone();
    let (registry, actor, now) = (state.registry.clone(), admin.actor(), state.clock.now());
    state
        .db
        .run(move |connection| {
            let (scope, position) = new_scope.into_scope();
            registry.create(connection, scope, position, &actor, now)
        })
        .await?;
    let mut response = get_view(&state, &name)?;
    *response.status_mut() = actix_web::http::StatusCode::CREATED;
    response.headers_mut().insert(
        actix_web::http::header::LOCATION,
        actix_web::http::header::HeaderValue::from_str(&format!("/admin/v1/scopes/{name}"))
            .map_err(AppError::internal)?,
    );
    Ok(response)
}

#[utoipa::path(get, path = "/admin/v1/scopes/{name}", tag = "scopes",
    responses((status = 200, body = ScopeView), (status = 404)), security(("bearer" = [])))]
pub async fn get(_: Admin, state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse, AppError> {
    get_view(&state, &name)
}

#[utoipa::path(patch, path = "/admin/v1/scopes/{name}", tag = "scopes", request_body = ScopePatch,
    responses((status = 200, body = ScopeView), (status = 400, description = "scope_name_immutable or invalid"), (status = 404)),
    security(("bearer" = [])))]
pub async fn edit(
    admin: Admin,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: ApiJson<ScopePatch>,
) -> Result<HttpResponse, AppError> {
    let name = name.into_inner();
    let patch = body.0;
    let (registry, actor, now) = (state.registry.clone(), admin.actor(), state.clock.now());
    let target = name.clone();
    state.db.run(move |connection| registry.edit(connection, &target, patch, &actor, now)).await?;
    get_view(&state, &name)
}

#[utoipa::path(post, path = "/admin/v1/scopes/{name}/move", tag = "scopes", request_body = MoveScope,
    responses((status = 200, body = ScopeView), (status = 400, description = "invalid_move"), (status = 404)),
    security(("bearer" = [])))]
pub async fn move_scope(
    admin: Admin,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: ApiJson<MoveScope>,
) -> Result<HttpResponse, AppError> {
    let name = name.into_inner();
    let MoveScope { parent, position } = body.0;
    let (registry, actor, now) = (state.registry.clone(), admin.actor(), state.clock.now());
    let target = name.clone();
    state
        .db
        .run(move |connection| registry.move_scope(connection, &target, parent.as_deref(), position, &actor, now))
        .await?;
    get_view(&state, &name)
}

#[utoipa::path(delete, path = "/admin/v1/scopes/{name}", tag = "scopes",
    responses((status = 204, description = "The scope and its subtree are gone"), (status = 404),
        (status = 409, description = "scope_in_use")),
    security(("bearer" = [])))]
pub async fn delete(
    admin: Admin,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let name = name.into_inner();
    let (registry, actor, now) = (state.registry.clone(), admin.actor(), state.clock.now());
    state.db.run(move |connection| registry.delete_subtree(connection, &name, &actor, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn get_view(state: &AppState, name: &str) -> Result<HttpResponse, AppError> {
    let snapshot = state.registry.snapshot();
    let scope = snapshot.tree.get(name).ok_or_else(|| not_found(name))?;
    Ok(HttpResponse::Ok().json(ScopeView::of(&snapshot.tree, scope)))
}
