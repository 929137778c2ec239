//! Signing in with a username and password (SPEC Part 2): throttled per username and per
//! client address through the database, so every instance counts the same failures, and the
//! argon2 check runs on the blocking pool between two short transactions, never while a
//! database connection is held.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::sessions::{self, SessionContext};
use super::users::{self, StoredCredentials};
use crate::domain::event::{Actor, Event, EventType};
use crate::domain::sign_in_throttle::{self, Admission};
use crate::domain::user::{validate_username, User, MAX_USERNAME_CHARS};
use crate::error::AppError;
use crate::storage::{atomically, DbConnection, StorageError};
use crate::storage::{events, login_failures};

/// Usernames longer than any valid one count under their first characters: none of them
/// exists, and the throttle's table keeps no more of what someone typed.
const USERNAME_KEY_CHARS: usize = MAX_USERNAME_CHARS;

pub struct SignInAttempt {
    pub username: String,
    pub password: String,
    /// The client address the throttle counts by (`sign_in_throttle::address_key`).
    pub address: String,
    /// The session the browser holds already, if any: it ends when a new one starts.
    pub previous_session_id: Option<String>,
}

#[derive(Debug)]
pub enum SignInOutcome {
    /// A new session: its id goes into the cookie.
    SignedIn { user: User, session_id: String },
    /// Unknown username or wrong password: one answer for both.
    Failed,
    /// Too many recent failures for the username or from the address: the password was not
    /// checked.
    Throttled { retry_after_seconds: i64 },
}

/// One sign-in attempt:
/// 1. one write transaction decides the throttle and, if the attempt may go on, records it as
///    a failure before its password is checked, so concurrent attempts (on any instance) count
///    each other, and reads the stored password hash;
/// 2. argon2 on the blocking pool, with no connection held (a decoy hash for an unknown
///    username, so both cost the same);
/// 3. on success, a second transaction forgets that failure, and the earlier ones of this
///    username from this address, and starts the session.
///
/// A failure is logged at WARN as `login.failed` with the username and the address, never
/// the password, and recorded as a `login.failed` audit event; a success as `login.succeeded`
/// in the transaction that starts the session.
pub async fn sign_in(
    context: SessionContext<'_>,
    attempt: SignInAttempt,
    now: DateTime<Utc>,
) -> Result<SignInOutcome, AppError> {
    let SignInAttempt { username, password, address, previous_session_id } = attempt;
    let key: String = username.chars().take(USERNAME_KEY_CHARS).collect();
    let (admitting_key, admitting_address, lookup) = (key.clone(), address.clone(), username.clone());
    let admitted =
        context.db.write(move |connection| admit(connection, &admitting_key, &admitting_address, &lookup, now)).await?;
    let stored = match admitted {
        Admitted::Throttled { retry_after_seconds } => {
            tracing::info!(username = ?username, ip = %address, retry_after_seconds, "login.throttled");
            return Ok(SignInOutcome::Throttled { retry_after_seconds });
        }
        Admitted::Check(stored) => stored,
    };
    let checked = actix_web::web::block(move || users::check_password(stored, &password))
        .await
        .map_err(|error| AppError::internal(anyhow::anyhow!("the password check was interrupted: {error}")))?;
    let Some(user) = checked else {
        // Debug formatting escapes a newline in what was typed, so it cannot forge a log line.
        tracing::warn!(username = ?username, ip = %address, "login.failed");
        let event = login_event(EventType::LoginFailed, &username, &address);
        context.db.write(move |connection| events::insert(connection, &[event], now)).await?;
        return Ok(SignInOutcome::Failed);
    };
    let session_id = sessions::new_session_id();
    let (new_id, hasher, user_id) = (session_id.clone(), context.hasher.clone(), user.id.clone());
    let event = login_event(EventType::LoginSucceeded, &user.username, &address);
    context
        .db
        .write(move |connection| {
            atomically(connection, |connection| {
                login_failures::forget(connection, &key, &address)?;
                sessions::start(connection, &hasher, &new_id, previous_session_id.as_deref(), &user_id, now)?;
                events::insert(connection, &[event], now)
            })
        })
        .await?;
    Ok(SignInOutcome::SignedIn { user, session_id })
}

enum Admitted {
    Throttled { retry_after_seconds: i64 },
    Check(StoredCredentials),
}

/// Step 1, in the caller's write transaction.
fn admit(
    connection: &mut DbConnection,
    key: &str,
    address: &str,
    username: &str,
    now: DateTime<Utc>,
) -> Result<Admitted, StorageError> {
    login_failures::serialize_attempts(connection, key, address)?;
    let (by_username, by_address) =
        login_failures::recent(connection, key, address, sign_in_throttle::window_start(now))?;
    if let Admission::RetryAfter { seconds } = sign_in_throttle::admission(by_username, by_address, now) {
        return Ok(Admitted::Throttled { retry_after_seconds: seconds });
    }
    login_failures::record(connection, key, address, now)?;
    Ok(Admitted::Check(crate::storage::users::find_with_password(connection, username)?))
}

/// The username as typed and the address it came from. Text that cannot be a username is not
/// kept: it may be a password typed into the wrong box, or an attempt to forge a record.
fn login_event(kind: EventType, username: &str, address: &str) -> Event {
    if validate_username(username).is_err() {
        return Event::new(kind, &Actor::User("(not a username)".into()))
            .detail(json!({"ip": address, "username": "(not a username)"}));
    }
    Event::new(kind, &Actor::User(username.to_string())).user(username).detail(json!({"ip": address}))
}
