//! Creating, checking, disabling and deleting the people who sign in.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::domain::event::{Actor, Event, EventType};
use crate::domain::user::{validate_password, validate_username, User};
use crate::error::AppError;
use crate::secrets::{hash_password, random_token, verify_password};
use crate::services::events;
use crate::storage::{users, write_transaction, DbConnection, StorageError};

pub struct NewUser<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub display_name: Option<&'a str>,
    /// An administrator, who may use the console.
    pub admin: bool,
}

/// A user ready to be stored: validated, her password hashed with argon2id.
pub struct PreparedUser {
    user: User,
    password_hash: String,
}

/// Validates and hashes the password with argon2id: slow on purpose, so run it on the blocking
/// pool and never while holding a database connection (SPEC Part 2).
pub fn prepare(new_user: NewUser<'_>, now: DateTime<Utc>) -> Result<PreparedUser, AppError> {
    validate_username(new_user.username).map_err(AppError::invalid_request)?;
    validate_password(new_user.password).map_err(AppError::invalid_request)?;
    let user = User {
        id: format!("u_{}", random_token(16)),
        username: new_user.username.to_string(),
        display_name: new_user.display_name.map(str::to_string),
        created_at: now,
        admin: new_user.admin,
        disabled_at: None,
    };
    let password_hash = hash_password(new_user.password)?;
    Ok(PreparedUser { user, password_hash })
}

/// Stores a prepared user (`user.created`).
pub fn store(
    connection: &mut DbConnection,
    prepared: PreparedUser,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<User, AppError> {
    let PreparedUser { user, password_hash } = prepared;
    write_transaction(connection, |connection| {
        users::insert(connection, &user, &password_hash).map_err(|error| match error {
            StorageError::UniqueViolation => {
                AppError::conflict("user_exists", format!("a user named {:?} already exists", user.username))
            }
            other => other.into(),
        })?;
        let event = Event::new(EventType::UserCreated, actor).user(&user.username).detail(json!({"admin": user.admin}));
        events::record(connection, event, now)
    })?;
    Ok(user)
}

/// [`prepare`] and [`store`] for callers that are not serving requests (the CLI, the demo
/// seed): there a connection waiting on argon2 holds nobody up.
pub fn create(
    connection: &mut DbConnection,
    new_user: NewUser<'_>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<User, AppError> {
    store(connection, prepare(new_user, now)?, actor, now)
}

/// A password hash of nothing anyone knows, verified when the username is unknown so that
/// a wrong username costs as long as a wrong password.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2NvcGVnYXRlZGVjb3k$0dWz3A3YyB6UqWc8f3F5N0m3zXxT5S5iYw9gkq3uD9o";

/// A username's user and stored password hash, when she exists: read with a connection that
/// is released before the (slow) check (`storage::users::find_with_password`).
pub type StoredCredentials = Option<(User, String)>;

/// The user when the password is right and she is active (`User::is_active`); `None` for an
/// unknown user, a wrong password or a disabled user alike, after an argon2 verification
/// every time, so neither the answer nor its timing tells them apart. Slow on purpose (tens
/// of milliseconds): call it on the blocking pool, and never while holding a database
/// connection.
pub fn check_password(stored: StoredCredentials, password: &str) -> Option<User> {
    match stored {
        Some((user, hash)) => (verify_password(password, &hash) && user.is_active()).then_some(user),
        None => {
            verify_password(password, DECOY_HASH);
            None
        }
    }
}

pub fn list(connection: &mut DbConnection) -> Result<Vec<User>, AppError> {
    Ok(users::list(connection)?)
}

/// Deletes the user; her consents, codes and tokens go with her. `404 user_not_found` if none.
pub fn delete(
    connection: &mut DbConnection,
    username: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    write_transaction(connection, |connection| {
        if !users::delete(connection, username)? {
            return Err(AppError::not_found("user_not_found", "no such user"));
        }
        events::record(connection, Event::new(EventType::UserDeleted, actor).user(username), now)
    })
}

/// The user with this id if she still exists and is active (`User::is_active`): what every
/// path that honours her tokens loads (introspection, refresh, the code exchange), so a
/// disabled user's tokens stop everywhere at once.
pub fn active_by_id(connection: &mut DbConnection, id: &str) -> Result<Option<User>, StorageError> {
    Ok(users::find_by_id(connection, id)?.filter(User::is_active))
}

/// Disables the user (`user.disabled`): she can no longer sign in, her sessions end, and her
/// tokens stop (`active_by_id`). Disabling her again changes nothing and records nothing.
/// `404 user_not_found` if none.
pub fn disable(
    connection: &mut DbConnection,
    username: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    write_transaction(connection, |connection| {
        let user = users::find_with_password(connection, username)?
            .map(|(user, _)| user)
            .ok_or_else(|| AppError::not_found("user_not_found", "no such user"))?;
        if user.is_active() {
            users::disable(connection, username, now)?;
            events::record(connection, Event::new(EventType::UserDisabled, actor).user(username), now)?;
        }
        Ok(())
    })
}

/// A new password, validated and hashed with argon2id: like [`prepare`], on the blocking pool
/// with no connection held.
pub struct PreparedPassword(String);

pub fn prepare_password(password: &str) -> Result<PreparedPassword, AppError> {
    validate_password(password).map_err(AppError::invalid_request)?;
    Ok(PreparedPassword(hash_password(password)?))
}

/// Stores a prepared password for the user (`user.password_reset`, never the password).
pub fn reset_password(
    connection: &mut DbConnection,
    username: &str,
    password: PreparedPassword,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    write_transaction(connection, |connection| {
        if !users::set_password_hash(connection, username, &password.0)? {
            return Err(AppError::not_found("user_not_found", "no such user"));
        }
        events::record(connection, Event::new(EventType::UserPasswordReset, actor).user(username), now)
    })
}

pub fn count(connection: &mut DbConnection) -> Result<i64, AppError> {
    Ok(users::count(connection)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHash;

    #[test]
    fn the_decoy_hash_parses_so_an_unknown_username_costs_a_real_verification() {
        let parsed = PasswordHash::new(DECOY_HASH).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        let real = crate::secrets::hash_password("x-password").unwrap();
        let params = |hash: &str| PasswordHash::new(hash).unwrap().params.to_string();
        assert_eq!(params(DECOY_HASH), params(&real), "the same cost as a real user's hash");
        assert!(check_password(None, "x-password").is_none());
    }
}
