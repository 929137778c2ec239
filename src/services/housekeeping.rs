//! Periodic clean-up: rows that can never matter again are deleted.

use chrono::{DateTime, Duration, Utc};

use crate::domain::session::SessionLifetimes;
use crate::domain::sign_in_throttle;
use crate::error::AppError;
use crate::services::events;
use crate::storage::{codes, login_failures, pushed_requests, sessions, tokens, used_jtis, DbConnection};

/// What one pass deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub access_tokens: usize,
    pub codes: usize,
    pub refresh_tokens: usize,
    pub refresh_families: usize,
    pub sessions: usize,
    pub login_failures: usize,
    pub events: usize,
    pub pushed_requests: usize,
    pub used_jtis: usize,
}

/// Access tokens (the revocation list included) an hour after they expired: a token past its
/// `exp` introspects inactive whether or not its row exists. Codes a day after they expired:
/// until then a replay is still recognised as one. Refresh tokens a day after they expired, and
/// then the families left without any. Sessions once they ended (idle or past their lifetime,
/// under the current settings), and failed sign-ins once they left the throttle's window.
/// Audit events after `event_retention_days`. Pushed authorization requests once expired, and
/// one-time JWT ids once their JWTs could no longer be accepted.
pub fn prune(
    connection: &mut DbConnection,
    now: DateTime<Utc>,
    session_lifetimes: SessionLifetimes,
    event_retention_days: i64,
) -> Result<Pruned, AppError> {
    let access_tokens = tokens::prune_expired(connection, now - Duration::hours(1))?;
    let codes = codes::prune(connection, now - Duration::days(1))?;
    let (refresh_tokens, refresh_families) = tokens::prune_refresh(connection, now - Duration::days(1))?;
    let (idle_before, started_before) = session_lifetimes.ended_before(now);
    let sessions = sessions::prune(connection, idle_before, started_before)?;
    let login_failures = login_failures::prune(connection, sign_in_throttle::window_start(now))?;
    let events = events::prune(connection, now, event_retention_days)?;
    let pushed_requests = pushed_requests::prune(connection, now)?;
    let used_jtis = used_jtis::prune(connection, now)?;
    Ok(Pruned {
        access_tokens,
        codes,
        refresh_tokens,
        refresh_families,
        sessions,
        login_failures,
        events,
        pushed_requests,
        used_jtis,
    })
}
