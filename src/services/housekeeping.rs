//! Periodic clean-up: rows that can never matter again are deleted.

use chrono::{DateTime, Duration, Utc};

use crate::error::AppError;
use crate::storage::{codes, tokens, DbConnection};

/// What one pass deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub access_tokens: usize,
    pub codes: usize,
    pub refresh_tokens: usize,
    pub refresh_families: usize,
}

/// Access tokens (the revocation list included) an hour after they expired: a token past its
/// `exp` introspects inactive whether or not its row exists. Codes a day after they expired:
/// until then a replay is still recognised as one. Refresh tokens a day after they expired, and
/// then the families left without any.
pub fn prune(connection: &mut DbConnection, now: DateTime<Utc>) -> Result<Pruned, AppError> {
    let access_tokens = tokens::prune_expired(connection, now - Duration::hours(1))?;
    let codes = codes::prune(connection, now - Duration::days(1))?;
    let (refresh_tokens, refresh_families) = tokens::prune_refresh(connection, now - Duration::days(1))?;
    Ok(Pruned { access_tokens, codes, refresh_tokens, refresh_families })
}
