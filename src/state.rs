//! What every request handler shares, prepared once at start.

use anyhow::Context;
use std::sync::Arc;

use crate::config::Settings;
use crate::domain::clock::Clock;
use crate::domain::fapi::FapiPolicy;
use crate::error::AppError;
use crate::keys::{self, CurrentSigningKey, VerificationKeys};
use crate::metrics::Metrics;
use crate::secrets::SecretHasher;
use crate::services::registry::{Registry, Snapshot};
use crate::services::sessions::SessionContext;
use crate::services::{Lifetimes, OAuthContext};
use crate::storage::client_directory::ClientDirectory;
use crate::storage::{self, signing_keys, Database, DbConnection};
use chrono::{DateTime, Utc};

pub struct AppState {
    pub settings: Settings,
    pub db: Database,
    pub hasher: SecretHasher,
    pub clock: Clock,
    /// The key new tokens are signed with: the newest in the keys directory.
    pub signing_key: CurrentSigningKey,
    /// The scope tree, cached in memory and kept in step with the database.
    pub registry: Arc<Registry>,
    /// Public keys for checking our own JWTs at introspection, by `kid`.
    pub verification_keys: VerificationKeys,
    /// Clients cached in memory, kept in step by the registry poll.
    pub clients: ClientDirectory,
    /// Prometheus series, kept only when `metrics_bind` is set.
    pub metrics: Metrics,
    /// The FAPI 2.0 rule's settings, prepared once.
    pub fapi: FapiPolicy,
}

impl AppState {
    /// Opens and migrates the database, loads (or creates) the signing keys and the server
    /// secret, and registers the keys' public halves for the JWKS.
    pub fn prepare(settings: Settings) -> anyhow::Result<Self> {
        Self::prepare_with_clock(settings, Clock::from_env())
    }

    /// As [`AppState::prepare`], with a given clock (tests run one instance in the future).
    pub fn prepare_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        let db = Database::connect_with(&settings.database_url, settings.pool_size, settings.connection_setup())?;
        let applied = storage::run_migrations(&mut *db.get()?)?;
        if applied > 0 {
            tracing::info!(applied, "database migrations applied");
        }
        let hasher = SecretHasher::load_or_create(&settings.keys_dir)?;
        let keys = keys::load_or_create(&settings.keys_dir, clock.now())?;
        let mut connection = db.get()?;
        for key in &keys {
            signing_keys::register_current(&mut connection, &key.kid, &key.public_key_pem, clock.now())
                .map_err(|error| anyhow::anyhow!("cannot register signing key {}: {error}", key.kid))?;
        }
        let signing_key = CurrentSigningKey::new(keys.last().cloned().context("no signing key")?);
        let registry = Arc::new(Registry::load(&mut connection)?);
        let clients = ClientDirectory::load(&mut connection)?;
        let metrics = match settings.metrics_bind {
            Some(_) => Metrics::enabled().context("cannot set up the metrics")?,
            None => Metrics::disabled(),
        };
        Ok(Self {
            fapi: settings.fapi_policy(),
            settings,
            db,
            hasher,
            clock,
            signing_key,
            registry,
            verification_keys: VerificationKeys::default(),
            clients,
            metrics,
        })
    }
}

impl AppState {
    /// The narrow context the OAuth services take, over one snapshot of the scope tree.
    pub fn oauth<'a>(&'a self, snapshot: &'a Snapshot) -> OAuthContext<'a> {
        OAuthContext {
            issuer: &self.settings.issuer,
            lifetimes: Lifetimes {
                code: self.settings.code_lifetime_seconds,
                access_token: self.settings.access_token_lifetime_seconds,
                refresh_token: self.settings.refresh_token_lifetime_seconds,
            },
            hasher: &self.hasher,
            signing_key: &self.signing_key,
            verification_keys: &self.verification_keys,
            tree: &snapshot.tree,
            clients: &self.clients,
            fapi: &self.fapi,
            limits_timezone: self.settings.limits_timezone,
        }
    }
}

impl AppState {
    /// The narrow context the session and sign-in services take.
    pub fn sessions(&self) -> SessionContext<'_> {
        SessionContext { db: &self.db, hasher: &self.hasher, lifetimes: self.settings.session_lifetimes() }
    }
}

impl AppState {
    /// Runs an OAuth operation on the blocking pool, with the narrow context over the current
    /// scope tree and the request's time, read once.
    pub async fn oauth_operation<T, F>(self: &Arc<Self>, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection, &OAuthContext<'_>, DateTime<Utc>) -> Result<T, AppError> + Send + 'static,
    {
        self.db.run(self.in_context(work)).await
    }

    /// As [`AppState::oauth_operation`], for work that only reads (`Database::read`: on
    /// SQLite it runs on this thread, without the hop to the blocking pool).
    pub async fn oauth_read<T, F>(self: &Arc<Self>, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection, &OAuthContext<'_>, DateTime<Utc>) -> Result<T, AppError> + Send + 'static,
    {
        self.db.read(self.in_context(work)).await
    }

    /// `work` with the request's time, read now, and the context over the scope tree as of
    /// when it runs.
    fn in_context<T, F>(
        self: &Arc<Self>,
        work: F,
    ) -> impl FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static
    where
        F: FnOnce(&mut DbConnection, &OAuthContext<'_>, DateTime<Utc>) -> Result<T, AppError> + Send + 'static,
    {
        let now = self.clock.now();
        let state = Arc::clone(self);
        move |connection| {
            let snapshot = state.registry.snapshot();
            work(connection, &state.oauth(&snapshot), now)
        }
    }
}
