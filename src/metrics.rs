//! Prometheus metrics (SPEC "Administration": Metrics). With `metrics_bind` set, the server
//! keeps the series below in a registry of its own and serves them as Prometheus text at
//! `GET /metrics` on that address alone (`startup`); without it there is no registry, and
//! each recording call below is one test of an `Option`.
//!
//! The registry belongs to the application, not to the process: no global recorder, so
//! servers started side by side (the tests start many in one process) each count their own.
//!
//! Every label value comes from a fixed set: the route is the matched route pattern, never the
//! raw path, and an unknown method is `other`, so a client cannot mint series. Series with
//! fixed labels are resolved once here; recording them is an atomic increment. Only the
//! request series look their labels up (a hash and a read lock, in `prometheus`).

use actix_web::http::{Method, StatusCode};
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::Arc;
use std::time::Duration;

use crate::domain::scope::GrantType;
use crate::storage::PoolUsage;

pub const HTTP_REQUESTS: &str = "scopegate_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "scopegate_http_request_duration_seconds";
pub const TOKENS_ISSUED: &str = "scopegate_tokens_issued_total";
pub const INTROSPECTIONS: &str = "scopegate_introspections_total";
pub const CONSENTS: &str = "scopegate_consents_total";
pub const LIMIT_EXHAUSTIONS: &str = "scopegate_limit_exhaustions_total";
pub const DB_POOL_CONNECTIONS: &str = "scopegate_db_pool_connections";
pub const DB_POOL_MAX_CONNECTIONS: &str = "scopegate_db_pool_max_connections";

/// The `route` of a request that matched no route (the JSON 404 of an unknown path).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Upper bounds of the latency buckets, in seconds: a token or an introspection takes well
/// under a millisecond to a few, a password check tens of milliseconds.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The server's metrics, or nothing when `metrics_bind` is unset. Cloning is cheap.
#[derive(Clone)]
pub struct Metrics {
    series: Option<Arc<Series>>,
}

struct Series {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    tokens_by_code: IntCounter,
    tokens_by_credentials: IntCounter,
    tokens_by_refresh: IntCounter,
    /// `[counted][active]`.
    introspections: [[IntCounter; 2]; 2],
    consents_granted: IntCounter,
    consents_denied: IntCounter,
    accesses_exhausted: IntCounter,
    pool_idle: IntGauge,
    pool_in_use: IntGauge,
    pool_max: IntGauge,
}

impl Metrics {
    /// No registry: every recording call does nothing.
    pub fn disabled() -> Self {
        Self { series: None }
    }

    /// A registry with every series, the fixed-label ones at zero.
    pub fn enabled() -> Result<Self, prometheus::Error> {
        Ok(Self { series: Some(Arc::new(Series::register()?)) })
    }

    pub fn is_enabled(&self) -> bool {
        self.series.is_some()
    }

    /// One answered HTTP request: `route` is the matched route pattern (None: no route).
    pub fn http_request(&self, route: Option<&str>, method: &Method, status: StatusCode, took: Duration) {
        let Some(series) = &self.series else { return };
        let route = route.unwrap_or(UNMATCHED_ROUTE);
        let method = method_label(method);
        series.requests.with_label_values(&[route, method, status.as_str()]).inc();
        series.request_duration.with_label_values(&[route, method]).observe(took.as_secs_f64());
    }

    /// A token handed out at `/token`.
    pub fn token_issued(&self, grant_type: GrantType) {
        let Some(series) = &self.series else { return };
        match grant_type {
            GrantType::AuthorizationCode => series.tokens_by_code.inc(),
            GrantType::ClientCredentials => series.tokens_by_credentials.inc(),
            GrantType::RefreshToken => series.tokens_by_refresh.inc(),
        }
    }

    /// One answer of `/introspect`: whether it counted an access (a count-limited scope was in
    /// play), and whether the token was reported active.
    pub fn introspected(&self, counted: bool, active: bool) {
        let Some(series) = &self.series else { return };
        series.introspections[usize::from(counted)][usize::from(active)].inc();
    }

    /// Grants that ran out: an introspection took their last access, the moment recorded as
    /// `grant.exhausted`. Counted there, once per grant, not each time a later introspection
    /// finds the grant spent. A grant whose days are over has no such moment (it lapses as
    /// time passes, whether anyone looks or not), so days are not counted here.
    pub fn grants_exhausted(&self, grants: usize) {
        let Some(series) = &self.series else { return };
        series.accesses_exhausted.inc_by(u64::try_from(grants).unwrap_or(u64::MAX));
    }

    /// A decision the user made on the consent page, once recorded.
    pub fn consent_decided(&self, granted: bool) {
        let Some(series) = &self.series else { return };
        match granted {
            true => series.consents_granted.inc(),
            false => series.consents_denied.inc(),
        }
    }

    /// Every series as Prometheus text, with the pool's use as of now; None when disabled.
    pub fn render(&self, pool: PoolUsage) -> Option<Result<String, prometheus::Error>> {
        let series = self.series.as_ref()?;
        series.pool_idle.set(i64::from(pool.idle));
        series.pool_in_use.set(i64::from(pool.open.saturating_sub(pool.idle)));
        series.pool_max.set(i64::from(pool.max));
        let mut text = String::new();
        Some(TextEncoder::new().encode_utf8(&series.registry.gather(), &mut text).map(|()| text))
    }
}

impl Series {
    fn register() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(HTTP_REQUESTS, "HTTP requests answered, by route pattern, method and status."),
            &["route", "method", "status"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(HTTP_REQUEST_DURATION, "Time to answer an HTTP request, by route pattern and method.")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        let tokens = IntCounterVec::new(
            Opts::new(TOKENS_ISSUED, "Access tokens issued at /token, by grant type."),
            &["grant_type"],
        )?;
        let introspections = IntCounterVec::new(
            Opts::new(
                INTROSPECTIONS,
                "Answers of /introspect: counted when a count-limited scope was in play, active when the token was.",
            ),
            &["counted", "active"],
        )?;
        let consents = IntCounterVec::new(Opts::new(CONSENTS, "Decisions on the consent page."), &["decision"])?;
        let exhaustions = IntCounterVec::new(
            Opts::new(
                LIMIT_EXHAUSTIONS,
                "Grants that ran out of accesses: counted once, by the introspection that took the last one.",
            ),
            &["limit"],
        )?;
        let pool = IntGaugeVec::new(
            Opts::new(DB_POOL_CONNECTIONS, "Database pool connections at scrape time, idle or in use."),
            &["state"],
        )?;
        let pool_max = IntGauge::new(DB_POOL_MAX_CONNECTIONS, "Connections the database pool may open.")?;
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_duration.clone()),
            Box::new(tokens.clone()),
            Box::new(introspections.clone()),
            Box::new(consents.clone()),
            Box::new(exhaustions.clone()),
            Box::new(pool.clone()),
            Box::new(pool_max.clone()),
        ] {
            registry.register(collector)?;
        }
        let flag = |value: bool| if value { "true" } else { "false" };
        let introspection =
            |counted: bool, active: bool| introspections.with_label_values(&[flag(counted), flag(active)]);
        Ok(Self {
            registry,
            requests,
            request_duration,
            tokens_by_code: tokens.with_label_values(&[GrantType::AuthorizationCode.as_str()]),
            tokens_by_credentials: tokens.with_label_values(&[GrantType::ClientCredentials.as_str()]),
            tokens_by_refresh: tokens.with_label_values(&[GrantType::RefreshToken.as_str()]),
            introspections: [
                [introspection(false, false), introspection(false, true)],
                [introspection(true, false), introspection(true, true)],
            ],
            consents_granted: consents.with_label_values(&["granted"]),
            consents_denied: consents.with_label_values(&["denied"]),
            accesses_exhausted: exhaustions.with_label_values(&["accesses"]),
            pool_idle: pool.with_label_values(&["idle"]),
            pool_in_use: pool.with_label_values(&["in_use"]),
            pool_max,
        })
    }
}

/// The method as a label: the standard ones by name, anything else `other`.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> PoolUsage {
        PoolUsage { open: 3, idle: 2, max: 4 }
    }

    fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines().find(|line| line.starts_with(series))
    }

    #[test]
    fn disabled_metrics_record_nothing_and_render_nothing() {
        let metrics = Metrics::disabled();
        metrics.token_issued(GrantType::ClientCredentials);
        metrics.http_request(Some("/token"), &Method::POST, StatusCode::OK, Duration::from_millis(1));
        assert!(!metrics.is_enabled());
        assert!(metrics.render(usage()).is_none());
    }

    #[test]
    fn fixed_series_start_at_zero_and_count() {
        let metrics = Metrics::enabled().unwrap();
        metrics.token_issued(GrantType::RefreshToken);
        metrics.token_issued(GrantType::RefreshToken);
        metrics.introspected(true, false);
        metrics.consent_decided(false);
        let text = metrics.render(usage()).unwrap().unwrap();
        assert_eq!(
            line(&text, r#"scopegate_tokens_issued_total{grant_type="refresh_token"}"#).unwrap().split(' ').nth(1),
            Some("2")
        );
        assert!(text.contains("scopegate_tokens_issued_total{grant_type=\"authorization_code\"} 0\n"), "{text}");
        assert!(text.contains("scopegate_introspections_total{active=\"false\",counted=\"true\"} 1\n"), "{text}");
        assert!(text.contains("scopegate_introspections_total{active=\"true\",counted=\"true\"} 0\n"), "{text}");
        assert!(text.contains("scopegate_consents_total{decision=\"denied\"} 1\n"), "{text}");
        assert!(text.contains("scopegate_db_pool_connections{state=\"idle\"} 2\n"), "{text}");
        assert!(text.contains("scopegate_db_pool_connections{state=\"in_use\"} 1\n"), "{text}");
        assert!(text.contains("scopegate_db_pool_max_connections 4\n"), "{text}");
    }

    #[test]
    fn exhausted_grants_are_counted_by_how_many_ran_out() {
        let metrics = Metrics::enabled().unwrap();
        metrics.grants_exhausted(0);
        metrics.grants_exhausted(2);
        let text = metrics.render(usage()).unwrap().unwrap();
        assert!(text.contains("scopegate_limit_exhaustions_total{limit=\"accesses\"} 2\n"), "{text}");
        assert!(!text.contains("limit=\"days\""), "{text}");
    }

    #[test]
    fn requests_are_labelled_by_route_pattern_and_known_methods_only() {
        let metrics = Metrics::enabled().unwrap();
        let odd = Method::from_bytes(b"BREW").unwrap();
        metrics.http_request(Some("/scopes/{name}"), &Method::GET, StatusCode::OK, Duration::from_millis(3));
        metrics.http_request(None, &odd, StatusCode::NOT_FOUND, Duration::from_millis(1));
        let text = metrics.render(usage()).unwrap().unwrap();
        assert!(
            text.contains(r#"scopegate_http_requests_total{method="GET",route="/scopes/{name}",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"scopegate_http_requests_total{method="other",route="unmatched",status="404"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"scopegate_http_request_duration_seconds_bucket{method="GET",route="/scopes/{name}",le="0.005"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"scopegate_http_request_duration_seconds_bucket{method="GET",route="/scopes/{name}",le="0.0025"} 0"#
            ),
            "{text}"
        );
    }
}
