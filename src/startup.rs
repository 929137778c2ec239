//! Builds the actix application and binds its listener.

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use std::net::TcpListener;
use std::time::Duration;

use crate::config::Settings;
use crate::http;
use crate::services::webhook_delivery::Deliverer;
use crate::state::AppState;

pub struct Application {
    port: u16,
    server: Server,
    /// The metrics listener (`metrics_bind`) and its port.
    metrics: Option<(u16, Server)>,
    state: web::Data<AppState>,
    deliverer: Deliverer,
}

impl Application {
    /// Prepares the state and binds `settings.bind` (port 0 picks a free port).
    pub fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.bind)
            .map_err(|error| anyhow::anyhow!("cannot listen on {}: {error}", settings.bind))?;
        let state = AppState::prepare(settings)?;
        Self::with_state(state, listener)
    }

    pub fn with_state(state: AppState, listener: TcpListener) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let metrics_listener = match &state.settings.metrics_bind {
            Some(bind) => Some(
                TcpListener::bind(bind)
                    .map_err(|error| anyhow::anyhow!("cannot listen on {bind} (metrics_bind): {error}"))?,
            ),
            None => None,
        };
        let deliverer = webhook_deliverer(&state)?;
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2);
        let state = web::Data::new(state);
        let app_state = state.clone();
        let https = state.settings.issuer_is_https();
        let hasher = state.hasher.clone();
        let demo = state.settings.demo;
        // A span per request (method, route, client address, request id) formatted for every
        // request costs more than a token's signature; it is there when debugging asks for it.
        let request_spans = tracing::enabled!(target: "tracing_actix_web", tracing::Level::DEBUG);
        let metrics = state.metrics.clone();
        // Blocking work is database work, and argon2: beyond a worker's share of the pool's
        // connections (plus two for hashing) a thread only waits for a connection, and each
        // idle thread keeps its stack resident (actix allows 512; 32 clients' first tokens at
        // once spawned 20 threads; capped, the RSS after that load is about 1.5 MB lower).
        let blocking_threads = (state.settings.pool_size as usize).div_ceil(workers) + 2;
        let server = HttpServer::new(move || {
            let observed = metrics.clone();
            App::new()
                .wrap(actix_web::middleware::from_fn(http::input::refuse_malformed_text))
                .wrap(http::session::middleware(&hasher, https))
                .wrap(http::pages::security_headers(https))
                .wrap(actix_web::middleware::Condition::new(request_spans, tracing_actix_web::TracingLogger::default()))
                .wrap(actix_web::middleware::Condition::new(
                    observed.is_enabled(),
                    actix_web::middleware::from_fn(move |request, next| {
                        http::metrics::observe_request(observed.clone(), request, next)
                    }),
                ))
                .app_data(state.clone())
                .configure(http::routes)
                .configure(|config| {
                    if demo {
                        http::demo_routes(config);
                    }
                })
                .default_service(web::to(http::not_found))
        })
        .workers(workers)
        .worker_max_blocking_threads(blocking_threads)
        .shutdown_timeout(10)
        .listen(listener)?
        .run();
        let metrics = match metrics_listener {
            Some(listener) => Some(metrics_server(listener, app_state.clone())?),
            None => None,
        };
        Ok(Self { port, server, metrics, state: app_state, deliverer })
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The metrics listener's port, when `metrics_bind` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests (up to 10 s).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let poller = tokio::spawn(keep_registry_fresh(self.state.clone()));
        let pruner = tokio::spawn(prune_periodically(self.state.clone()));
        let checkpointer = tokio::spawn(checkpoint_periodically(self.state.clone()));
        let deliverer = tokio::spawn(self.deliverer.run());
        let metrics = self.metrics.map(|(_, server)| (server.handle(), tokio::spawn(server)));
        let result = self.server.await;
        if let Some((handle, server)) = metrics {
            handle.stop(false).await;
            let _ = server.await;
        }
        deliverer.abort();
        poller.abort();
        pruner.abort();
        checkpointer.abort();
        result
    }
}

/// The second listener, on `metrics_bind`: `GET /metrics` and the JSON 404 for anything else.
/// One worker is plenty for a scraper; it stops with the main server, not on signals of its own.
fn metrics_server(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<(u16, Server)> {
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new().app_data(state.clone()).configure(http::metrics_routes).default_service(web::to(http::not_found))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok((port, server))
}

/// The webhook delivery worker (see `services::webhook_delivery`).
fn webhook_deliverer(state: &AppState) -> anyhow::Result<Deliverer> {
    let settings = &state.settings;
    let timeout = Duration::from_secs(settings.webhook_timeout_seconds.max(1) as u64);
    Deliverer::new(state.db.clone(), state.clock, settings.webhook_retry_policy(), timeout)
}

/// Every 200 ms, moves the SQLite write-ahead log into the database file (see
/// `Database::checkpoint`), so the log stays short and no commit pays for a checkpoint.
async fn checkpoint_periodically(state: web::Data<AppState>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(error) = state.db.checkpoint().await {
            tracing::warn!(%error, "checkpointing the SQLite log failed");
        }
    }
}

/// Every ten minutes, deletes expired tokens, codes, sessions and failed sign-ins (see
/// `housekeeping::prune`).
async fn prune_periodically(state: web::Data<AppState>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(600));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let (now, lifetimes) = (state.clock.now(), state.settings.session_lifetimes());
        let retention = state.settings.event_retention_days;
        match state
            .db
            .run(move |connection| crate::services::housekeeping::prune(connection, now, lifetimes, retention))
            .await
        {
            Ok(pruned) if pruned != crate::services::housekeeping::Pruned::default() => {
                tracing::info!(?pruned, "expired rows pruned")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "pruning expired rows failed"),
        }
    }
}

/// Picks up registry changes made by other instances or by the CLI, and a newer signing key
/// written by `scopegate keys rotate`.
async fn keep_registry_fresh(state: web::Data<AppState>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(state.settings.registry_poll_millis.max(50)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let shared = state.clone();
        let refreshed = state
            .db
            .run(move |connection| {
                let registry = shared.registry.refresh(connection)?;
                let clients = shared.clients.refresh(connection).map_err(crate::error::AppError::from)?;
                Ok::<_, crate::error::AppError>((registry, clients))
            })
            .await;
        match refreshed {
            Ok((registry, clients)) => {
                if registry {
                    tracing::info!(version = state.registry.snapshot().version, "scope registry reloaded");
                }
                if clients {
                    tracing::debug!("clients changed elsewhere; cached clients dropped");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot check the scope registry version"),
        }
        let shared = state.clone();
        let reloaded =
            actix_web::web::block(move || shared.signing_key.reload_if_newer(&shared.settings.keys_dir)).await;
        match reloaded {
            Ok(Ok(Some(kid))) => tracing::info!(%kid, "signing with the newest key"),
            Ok(Ok(None)) => {}
            Ok(Err(error)) => tracing::warn!(error = format!("{error:#}"), "cannot check the keys directory"),
            Err(error) => tracing::warn!(%error, "cannot check the keys directory"),
        }
    }
}
