//! The admin JSON API (`/admin/v1`), for administrators holding an admin client's token.

pub mod auth;
mod clients;
mod events;
mod grants;
pub(crate) mod scopes;
mod users;
mod webhooks;

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "scopegate admin API", description = "Scopes, clients, users, grants, audit events and webhooks. Every route needs a bearer \
        token issued by client credentials to an admin client and carrying scopegate:admin."),
    paths(
        scopes::list, scopes::create, scopes::get, scopes::edit, scopes::move_scope, scopes::delete,
        clients::create, clients::list, clients::get, clients::edit, clients::delete, clients::replace_scopes,
        clients::rotate_secret,
        users::create, users::list, users::delete, users::disable, users::reset_password,
        grants::list, grants::revoke,
        events::list,
        webhooks::create, webhooks::list, webhooks::delete, webhooks::deliveries,
    ),
    components(schemas(crate::error::ErrorBodyDoc)),
    modifiers(&BearerAuth),
    tags((name = "scopes"), (name = "clients"), (name = "users"), (name = "grants"), (name = "events"), (name = "webhooks"))
)]
pub struct AdminApi;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

async fn openapi_document(_: auth::Admin) -> HttpResponse {
    HttpResponse::Ok().json(AdminApi::openapi())
}

pub fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/admin/v1")
            .wrap(actix_web::middleware::from_fn(auth::require_admin))
            .route("/openapi.json", web::get().to(openapi_document))
            .route("/scopes", web::get().to(scopes::list))
            .route("/scopes", web::post().to(scopes::create))
            .route("/scopes/{name}", web::get().to(scopes::get))
            .route("/scopes/{name}", web::patch().to(scopes::edit))
            .route("/scopes/{name}", web::delete().to(scopes::delete))
            .route("/scopes/{name}/move", web::post().to(scopes::move_scope))
            .route("/clients", web::post().to(clients::create))
            .route("/clients", web::get().to(clients::list))
            .route("/clients/{client_id}", web::get().to(clients::get))
            .route("/clients/{client_id}", web::patch().to(clients::edit))
            .route("/clients/{client_id}", web::delete().to(clients::delete))
            .route("/clients/{client_id}/scopes", web::put().to(clients::replace_scopes))
            .route("/clients/{client_id}/secret", web::post().to(clients::rotate_secret))
            .route("/users", web::post().to(users::create))
            .route("/users", web::get().to(users::list))
            .route("/users/{username}", web::delete().to(users::delete))
            .route("/users/{username}/disable", web::post().to(users::disable))
            .route("/users/{username}/password", web::post().to(users::reset_password))
            .route("/users/{username}/grants/{client_id}", web::delete().to(grants::revoke))
            .route("/grants", web::get().to(grants::list))
            .route("/events", web::get().to(events::list))
            .route("/webhooks", web::post().to(webhooks::create))
            .route("/webhooks", web::get().to(webhooks::list))
            .route("/webhooks/{id}", web::delete().to(webhooks::delete))
            .route("/webhooks/{id}/deliveries", web::get().to(webhooks::deliveries)),
    );
}
