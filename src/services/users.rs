//! Creating and checking end users.

use chrono::{DateTime, Utc};

use crate::domain::user::{validate_password, validate_username, User};
use crate::error::AppError;
use crate::secrets::{hash_password, random_token, verify_password};
use crate::storage::{users, DbConnection, StorageError};

pub struct NewUser<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub display_name: Option<&'a str>,
}

/// Validates, hashes the password with argon2id (slow on purpose: run it off the async
/// workers) and stores the user.
pub fn create(connection: &mut DbConnection, new_user: NewUser<'_>, now: DateTime<Utc>) -> Result<User, AppError> {
    validate_username(new_user.username).map_err(AppError::invalid_request)?;
    validate_password(new_user.password).map_err(AppError::invalid_request)?;
    let user = User {
        id: format!("u_{}", random_token(16)),
        username: new_user.username.to_string(),
        display_name: new_user.display_name.map(str::to_string),
        created_at: now,
    };
    let hash = hash_password(new_user.password)?;
    users::insert(connection, &user, &hash).map_err(|error| match error {
        StorageError::UniqueViolation => {
            AppError::conflict("user_exists", format!("a user named {:?} already exists", user.username))
        }
        other => other.into(),
    })?;
    Ok(user)
}

/// A password hash of nothing anyone knows, verified when the username is unknown so that
/// a wrong username costs as long as a wrong password.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2NvcGVnYXRlZGVjb3k$0dWz3A3YyB6UqWc8f3F5N0m3zXxT5S5iYw9gkq3uD9o";

/// The user when the password is right; `None` for an unknown user or a wrong password alike.
pub fn authenticate(connection: &mut DbConnection, username: &str, password: &str) -> Result<Option<User>, AppError> {
    match users::find_with_password(connection, username)? {
        Some((user, hash)) if verify_password(password, &hash) => Ok(Some(user)),
        Some(_) => Ok(None),
        None => {
            verify_password(password, DECOY_HASH);
            Ok(None)
        }
    }
}

pub fn list(connection: &mut DbConnection) -> Result<Vec<User>, AppError> {
    Ok(users::list(connection)?)
}

/// Deletes the user; her consents, codes and tokens go with her. `404 user_not_found` if none.
pub fn delete(connection: &mut DbConnection, username: &str) -> Result<(), AppError> {
    if users::delete(connection, username)? {
        Ok(())
    } else {
        Err(AppError::not_found("user_not_found", "no such user"))
    }
}

/// The user with this id, if she still exists (a session may outlive her).
pub fn find_by_id(connection: &mut DbConnection, id: &str) -> Result<Option<User>, AppError> {
    Ok(users::find_by_id(connection, id)?)
}
