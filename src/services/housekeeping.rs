//! Periodic clean-up: rows that can never matter again are deleted.

use chrono::{DateTime, Duration, Utc};

use crate::error::AppError;
use crate::services::events;
use crate::storage::{codes, tokens, DbConnection};

/// What one pass deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub access_tokens: usize,
    pub codes: usize,
    pub refresh_tokens: usize,
    pub refresh_families: usize,
    pub events: usize,
}

/// Access tokens (the revocation list included) an hour after they expired: a token past its
/// `exp` introspects inactive whether or not its row exists. Codes a day after they expired:
/// until then a replay is still recognised as one. Refresh tokens a day after they expired, and
/// then the families left without any.
/// Audit events after `event_retention_days`.
pub fn prune(connection: &mut DbConnection, now: DateTime<Utc>, event_retention_days: i64) -> Result<Pruned, AppError> {
    let access_tokens = tokens::prune_expired(connection, now - Duration::hours(1))?;
    let codes = codes::prune(connection, now - Duration::days(1))?;
    let (refresh_tokens, refresh_families) = tokens::prune_refresh(connection, now - Duration::days(1))?;
    let events = events::prune(connection, now, event_retention_days)?;
    Ok(Pruned { access_tokens, codes, refresh_tokens, refresh_families, events })
}
