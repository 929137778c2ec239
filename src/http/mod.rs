//! The HTTP layer: routes, extractors and thin handlers. Handlers parse and authenticate,
//! call one operation, and turn its result into a response.

pub mod account;
pub mod admin;
mod authorize;
pub mod client_address;
pub mod client_auth;
pub mod console;
mod demo;
mod dpop;
pub mod form;
mod grant_management;
mod health;
pub mod input;
mod introspect;
pub mod json;
mod jwks;
mod login;
mod metadata;
pub mod metrics;
mod obp;
pub mod pages;
mod par;
pub mod session;
mod token;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::AppError;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .app_data(
            web::JsonConfig::default()
                .error_handler(|error, _| AppError::invalid_request(format!("malformed JSON body: {error}")).into()),
        )
        .app_data(
            web::FormConfig::default()
                .error_handler(|error, _| AppError::invalid_request(format!("malformed form body: {error}")).into()),
        )
        .app_data(
            web::QueryConfig::default()
                .error_handler(|error, _| AppError::invalid_request(format!("malformed query string: {error}")).into()),
        )
        .app_data(
            web::PathConfig::default()
                .error_handler(|error, _| AppError::invalid_request(format!("malformed path: {error}")).into()),
        )
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/jwks.json", web::get().to(jwks::jwks))
        .route("/.well-known/oauth-authorization-server", web::get().to(metadata::metadata))
        .route("/token", web::post().to(token::token))
        .route("/introspect", web::post().to(introspect::introspect))
        .route("/revoke", web::post().to(introspect::revoke))
        .route("/par", web::post().to(par::push))
        .route("/grants/{grant_id}", web::get().to(grant_management::show))
        .route("/grants/{grant_id}", web::delete().to(grant_management::revoke))
        .route("/authorize", web::get().to(authorize::authorize))
        .route("/authorize/consent", web::post().to(authorize::consent))
        .route("/login", web::get().to(login::show))
        .route("/login", web::post().to(login::submit))
        .route("/logout", web::post().to(login::logout))
        .route("/account", web::get().to(account::show))
        .route("/account/apps/{client_id}/revoke", web::post().to(account::revoke))
        .route("/account/grants/{grant_id}/revoke", web::post().to(account::revoke_grant))
        .configure(pages::routes)
        .configure(console::routes)
        .configure(admin::routes)
        .configure(obp::routes);
}

/// The built-in demo app and its protected resource, mounted only under `serve --demo`
/// (SPEC Part 2): a production server has no page that runs a flow with published secrets.
pub fn demo_routes(config: &mut web::ServiceConfig) {
    config
        .route("/demo", web::get().to(demo::landing))
        .route("/demo/start", web::get().to(demo::start))
        .route("/demo/callback", web::get().to(demo::callback))
        .route("/demo/bank/balance", web::get().to(demo::balance))
        .route("/demo/pay", web::get().to(demo::pay))
        .route("/demo/pay/callback", web::get().to(demo::pay_callback))
        .route("/demo/bank/payments/{payment_id}", web::post().to(demo::payment));
}

/// The metrics listener's routes (`metrics_bind`): `GET /metrics` and nothing else.
pub fn metrics_routes(config: &mut web::ServiceConfig) {
    config.route("/metrics", web::get().to(metrics::scrape));
}

/// Unknown routes answer in the same JSON error shape as everything else.
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, AppError> {
    Err(AppError::not_found("not_found", format!("no route for {} {}", request.method(), request.path())))
}
