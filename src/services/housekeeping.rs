//! Periodic clean-up: rows that can never matter again are deleted.

use chrono::{DateTime, Duration, Utc};

use crate::error::AppError;
use crate::storage::{codes, tokens, DbConnection};

/// What one pass deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub access_tokens: usize,
    pub codes: usize,
}

/// Access tokens (the revocation list included) an hour after they expired: a token past its
/// `exp` introspects inactive whether or not its row exists. Codes a day after they expired:
/// until then a replay is still recognised as one.
pub fn prune(connection: &mut DbConnection, now: DateTime<Utc>) -> Result<Pruned, AppError> {
    Ok(Pruned {
        access_tokens: tokens::prune_expired(connection, now - Duration::hours(1))?,
        codes: codes::prune(connection, now - Duration::days(1))?,
    })
}
