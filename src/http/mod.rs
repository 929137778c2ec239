//! The HTTP layer: routes, extractors and thin handlers. Handlers parse and authenticate,
//! call one operation, and turn its result into a response.

pub mod admin;
pub mod client_auth;
pub mod form;
mod health;
mod introspect;
pub mod json;
mod jwks;
mod metadata;
mod obp;
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
        .configure(admin::routes)
        .configure(obp::routes);
}

/// Unknown routes answer in the same JSON error shape as everything else.
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, AppError> {
    Err(AppError::not_found("not_found", format!("no route for {} {}", request.method(), request.path())))
}
