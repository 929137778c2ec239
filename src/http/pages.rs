//! What every HTML page shares: rendering, security headers, the stylesheet and script.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpResponse};
use askama::Template;

use crate::views::ErrorPage;

/// Headers for every response; pages are framed by nobody and leak no referrer.
pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             base-uri 'none'; frame-ancestors 'none'",
        ))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    // When the issuer is https, browsers must never fall back to plain http for it (a year;
    // SPEC Part 2). A plain-http development server must not send it: it would pin the host.
    if https {
        headers.add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains"))
    } else {
        headers
    }
}

/// A rendered page; pages carry personal data and CSRF tokens, so they are never cached.
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(html),
        Err(error) => {
            tracing::error!(%error, "template rendering failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

pub fn error_page(status: StatusCode, heading: &str, message: &str) -> HttpResponse {
    render(
        status,
        &ErrorPage { page_title: heading.to_string(), heading: heading.to_string(), message: message.to_string() },
    )
}

/// A 303 to a path or URL.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

const STYLESHEET: &str = include_str!("../../static/scopegate.css");
const CONSENT_SCRIPT: &str = include_str!("../../static/consent.js");
const CONSOLE_SCRIPT: &str = include_str!("../../static/console.js");

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}

async fn consent_script() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(CONSENT_SCRIPT)
}

async fn console_script() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(CONSOLE_SCRIPT)
}

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/static/scopegate.css", web::get().to(stylesheet))
        .route("/static/consent.js", web::get().to(consent_script))
        .route("/static/console.js", web::get().to(console_script));
}
