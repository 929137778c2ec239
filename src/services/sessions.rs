//! Signed-in browser sessions (SPEC Part 2, "Sessions"): the cookie carries a random session
//! id and the database keeps the session, under the id's keyed hash. Every instance sharing
//! the database sees the same sessions, so a logout anywhere ends a session everywhere.

use chrono::{DateTime, Utc};

use crate::domain::session::{SessionLifetimes, SessionStanding};
use crate::domain::user::User;
use crate::error::AppError;
use crate::secrets::{random_token, SecretHasher};
use crate::storage::sessions::{self, SessionRow};
use crate::storage::{Database, DbConnection, StorageError};

/// What the session operations need of the running server.
#[derive(Clone, Copy)]
pub struct SessionContext<'a> {
    pub db: &'a Database,
    pub hasher: &'a SecretHasher,
    pub lifetimes: SessionLifetimes,
}

/// A new session id, 256 bits: the secret the cookie carries.
pub fn new_session_id() -> String {
    random_token(32)
}

/// Stores a new session for the user, in the caller's transaction. The session the browser
/// held before, if any, ends: one browser, one session.
pub fn start(
    connection: &mut DbConnection,
    hasher: &SecretHasher,
    session_id: &str,
    previous_session_id: Option<&str>,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if let Some(previous) = previous_session_id {
        sessions::delete(connection, &hasher.hash(previous))?;
    }
    sessions::insert(
        connection,
        SessionRow {
            id_hash: hasher.hash(session_id),
            user_id: user_id.to_string(),
            created_at: now,
            last_seen_at: now,
        },
    )
}

/// The user signed in with this session id, if the session exists, has not ended and its user
/// still exists. A request usually only reads; it writes the session's last activity when the
/// stored one has grown staler than the lifetimes' resolution (a minute).
pub async fn resume(
    context: SessionContext<'_>,
    session_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<User>, AppError> {
    let id_hash = context.hasher.hash(session_id);
    let lookup = id_hash.clone();
    let found = context.db.read(move |connection| sessions::find(connection, &lookup)).await?;
    let Some((session, user)) = found else {
        return Ok(None);
    };
    // A session outliving its user's disabling opens nothing.
    if !user.is_active() {
        return Ok(None);
    }
    match context.lifetimes.standing(session.created_at, session.last_seen_at, now) {
        SessionStanding::Live { record_activity } => {
            if record_activity {
                // A lost activity write shortens the session by at most a minute; it is not a
                // reason to refuse the page.
                if let Err(error) = context.db.write(move |connection| sessions::touch(connection, &id_hash, now)).await
                {
                    tracing::warn!(%error, "cannot record the session's activity");
                }
            }
            Ok(Some(user))
        }
        SessionStanding::Idle | SessionStanding::Expired => Ok(None),
    }
}

/// Ends the session on the server: a copy of its cookie no longer signs anyone in.
pub async fn end(context: SessionContext<'_>, session_id: &str) -> Result<(), AppError> {
    let id_hash = context.hasher.hash(session_id);
    context.db.write(move |connection| sessions::delete(connection, &id_hash)).await?;
    Ok(())
}
