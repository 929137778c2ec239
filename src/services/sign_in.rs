//! Signing in with a username and password (SPEC Part 2): the argon2 check runs on the
//! blocking pool between a read and a write, never while a database connection is held.

use chrono::{DateTime, Utc};

use super::sessions::{self, SessionContext};
use super::users;
use crate::domain::user::User;
use crate::error::AppError;

pub struct SignInAttempt {
    pub username: String,
    pub password: String,
    /// The session the browser holds already, if any: it ends when a new one starts.
    pub previous_session_id: Option<String>,
}

#[derive(Debug)]
pub enum SignInOutcome {
    /// A new session: its id goes into the cookie.
    SignedIn { user: User, session_id: String },
    /// Unknown username or wrong password: one answer for both.
    Failed,
}

/// One sign-in attempt: the stored password hash is read and the connection released; argon2
/// runs on the blocking pool (a decoy hash for an unknown username, so both cost the same);
/// on success a short transaction starts the session.
pub async fn sign_in(
    context: SessionContext<'_>,
    attempt: SignInAttempt,
    now: DateTime<Utc>,
) -> Result<SignInOutcome, AppError> {
    let SignInAttempt { username, password, previous_session_id } = attempt;
    let stored =
        context.db.read(move |connection| crate::storage::users::find_with_password(connection, &username)).await?;
    let checked = actix_web::web::block(move || users::check_password(stored, &password))
        .await
        .map_err(|error| AppError::internal(anyhow::anyhow!("the password check was interrupted: {error}")))?;
    let Some(user) = checked else {
        return Ok(SignInOutcome::Failed);
    };
    let session_id = sessions::new_session_id();
    let (new_id, hasher, user_id) = (session_id.clone(), context.hasher.clone(), user.id.clone());
    context
        .db
        .write(move |connection| {
            sessions::start(connection, &hasher, &new_id, previous_session_id.as_deref(), &user_id, now)
        })
        .await?;
    Ok(SignInOutcome::SignedIn { user, session_id })
}
