//! Builds the actix application and binds its listener.

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use std::net::TcpListener;

use crate::config::Settings;
use crate::http;
use crate::state::AppState;

pub struct Application {
    port: u16,
    server: Server,
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
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        let state = web::Data::new(state);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(tracing_actix_web::TracingLogger::default())
                .app_data(state.clone())
                .configure(http::routes)
                .default_service(web::to(http::not_found))
        })
        .workers(workers)
        .shutdown_timeout(10)
        .listen(listener)?
        .run();
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests (up to 10 s).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
