//! `/admin/v1/users`: end-user management.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Admin;
use crate::domain::user::User;
use crate::error::AppError;
use crate::http::json::ApiJson;
use crate::services::users::{self as user_service, NewUser};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// An administrator, who may sign in to the console at `/admin`.
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub admin: bool,
    /// A disabled user cannot sign in and her tokens are inactive.
    pub disabled: bool,
    pub disabled_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            disabled: !user.is_active(),
            id: user.id,
            username: user.username,
            display_name: user.display_name,
            created_at: user.created_at,
            admin: user.admin,
            disabled_at: user.disabled_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

#[utoipa::path(post, path = "/admin/v1/users", tag = "users", request_body = NewUserBody,
    responses((status = 201, body = UserView), (status = 400), (status = 409, description = "user_exists")),
    security(("bearer" = [])))]
pub async fn create(
    admin: Admin,
    state: web::Data<AppState>,
    body: ApiJson<NewUserBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let (now, actor) = (state.clock.now(), admin.actor());
    // argon2 on the blocking pool with no connection held; then a short write.
    let prepared = web::block(move || {
        let new_user = NewUser {
            username: &body.username,
            password: &body.password,
            display_name: body.display_name.as_deref(),
            admin: body.admin,
        };
        user_service::prepare(new_user, now)
    })
    .await
    .map_err(AppError::internal)??;
    let user = state.db.run(move |connection| user_service::store(connection, prepared, &actor, now)).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/admin/v1/users/{}", user.username)))
        .json(UserView::from(user)))
}

#[utoipa::path(get, path = "/admin/v1/users", tag = "users", responses((status = 200, body = UserList)),
    security(("bearer" = [])))]
pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let users = state.db.run(user_service::list).await?;
    Ok(HttpResponse::Ok().json(UserList { users: users.into_iter().map(UserView::from).collect() }))
}

#[utoipa::path(delete, path = "/admin/v1/users/{username}", tag = "users",
    responses((status = 204, description = "Deleted, with the user's grants and tokens"), (status = 404)),
    security(("bearer" = [])))]
pub async fn delete(
    admin: Admin,
    state: web::Data<AppState>,
    username: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (username, actor, now) = (username.into_inner(), admin.actor(), state.clock.now());
    state.db.run(move |connection| user_service::delete(connection, &username, &actor, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/admin/v1/users/{username}/disable", tag = "users",
    responses((status = 204, description = "Disabled: she cannot sign in and her tokens are inactive"), (status = 404)),
    security(("bearer" = [])))]
pub async fn disable(
    admin: Admin,
    state: web::Data<AppState>,
    username: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (username, actor, now) = (username.into_inner(), admin.actor(), state.clock.now());
    state.db.run(move |connection| user_service::disable(connection, &username, &actor, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub password: String,
}

#[utoipa::path(post, path = "/admin/v1/users/{username}/password", tag = "users", request_body = NewPassword,
    responses((status = 204, description = "Set (recorded as user.password_reset, never the password)"),
        (status = 400, description = "invalid_request: a password too short or too long"), (status = 404)),
    security(("bearer" = [])))]
pub async fn reset_password(
    admin: Admin,
    state: web::Data<AppState>,
    username: web::Path<String>,
    body: ApiJson<NewPassword>,
) -> Result<HttpResponse, AppError> {
    let (username, actor, now) = (username.into_inner(), admin.actor(), state.clock.now());
    let password = body.0.password;
    // argon2 on the blocking pool with no connection held, as the console does.
    let prepared =
        web::block(move || user_service::prepare_password(&password)).await.map_err(AppError::internal)??;
    state.db.run(move |connection| user_service::reset_password(connection, &username, prepared, &actor, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}
