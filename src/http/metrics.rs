//! The metrics listener's one route, `GET /metrics`, and the middleware that counts and times
//! the main listener's requests (`crate::metrics` holds the series).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use std::time::Instant;

use crate::error::AppError;
use crate::metrics::{self, Metrics};
use crate::state::AppState;

/// Prometheus text, with the database pool's use sampled now.
pub async fn scrape(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    match state.metrics.render(state.db.pool_usage()) {
        Some(text) => {
            let text = text.map_err(AppError::internal)?;
            Ok(HttpResponse::Ok()
                .content_type(metrics::CONTENT_TYPE)
                .insert_header(("Cache-Control", "no-store"))
                .body(text))
        }
        None => Err(AppError::not_found("not_found", "metrics are not kept: metrics_bind is unset")),
    }
}

/// Middleware around the whole app, mounted only when metrics are kept: counts and times
/// every request by its matched route pattern, read after routing from the matched resource
/// (actix re-matches nothing then). A request that an inner middleware failed with an error
/// no longer carries its route and is counted as unmatched; none of ours does that (each
/// refusal is a response).
pub async fn observe_request<B: MessageBody>(
    metrics: Metrics,
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let started = Instant::now();
    let method = request.method().clone();
    let answered = next.call(request).await;
    match &answered {
        Ok(response) => {
            let route = response.request().match_pattern();
            metrics.http_request(route.as_deref(), &method, response.status(), started.elapsed());
        }
        Err(error) => metrics.http_request(None, &method, error.as_response_error().status_code(), started.elapsed()),
    }
    answered
}
