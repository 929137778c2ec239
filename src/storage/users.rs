//! The `users` table.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::columns::{NullableUtcTimestamp, UtcTimestamp};
use super::schema::{sessions, users};
use super::DbConnection;
use super::StorageError;
use crate::domain::user::User;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub(super) struct UserRow {
    id: String,
    username: String,
    password_hash: String,
    display_name: Option<String>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    created_at: DateTime<Utc>,
    admin: bool,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    disabled_at: Option<DateTime<Utc>>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id,
            username: row.username,
            display_name: row.display_name,
            created_at: row.created_at,
            admin: row.admin,
            disabled_at: row.disabled_at,
        }
    }
}

pub fn insert(connection: &mut DbConnection, user: &User, password_hash: &str) -> Result<(), StorageError> {
    let row = UserRow {
        id: user.id.clone(),
        username: user.username.clone(),
        password_hash: password_hash.to_string(),
        display_name: user.display_name.clone(),
        created_at: user.created_at,
        admin: user.admin,
        disabled_at: user.disabled_at,
    };
    diesel::insert_into(users::table).values(row).execute(connection)?;
    Ok(())
}

/// The user and the stored password hash, for a login check.
pub fn find_with_password(
    connection: &mut DbConnection,
    username: &str,
) -> Result<Option<(User, String)>, StorageError> {
    let row =
        users::table.filter(users::username.eq(username)).select(UserRow::as_select()).first(connection).optional()?;
    Ok(row.map(|row| {
        let hash = row.password_hash.clone();
        (User::from(row), hash)
    }))
}

pub fn find_by_id(connection: &mut DbConnection, id: &str) -> Result<Option<User>, StorageError> {
    Ok(users::table.find(id).select(UserRow::as_select()).first(connection).optional()?.map(User::from))
}

pub fn list(connection: &mut DbConnection) -> Result<Vec<User>, StorageError> {
    Ok(users::table
        .order(users::username.asc())
        .select(UserRow::as_select())
        .load(connection)?
        .into_iter()
        .map(User::from)
        .collect())
}

/// Marks the user disabled (the first time only) and ends her browser sessions; whether she
/// exists.
pub fn disable(connection: &mut DbConnection, username: &str, now: DateTime<Utc>) -> Result<bool, StorageError> {
    let Some(id) =
        users::table.filter(users::username.eq(username)).select(users::id).first::<String>(connection).optional()?
    else {
        return Ok(false);
    };
    diesel::update(users::table.find(&id).filter(users::disabled_at.is_null()))
        .set(users::disabled_at.eq(Some(now.naive_utc())))
        .execute(connection)?;
    diesel::delete(sessions::table.filter(sessions::user_id.eq(&id))).execute(connection)?;
    Ok(true)
}

/// Replaces the user's password hash; whether she exists.
pub fn set_password_hash(connection: &mut DbConnection, username: &str, hash: &str) -> Result<bool, StorageError> {
    Ok(diesel::update(users::table.filter(users::username.eq(username)))
        .set(users::password_hash.eq(hash))
        .execute(connection)?
        > 0)
}

pub fn count(connection: &mut DbConnection) -> Result<i64, StorageError> {
    Ok(users::table.count().get_result(connection)?)
}

/// Deletes the user; its grants, codes and tokens go with it (foreign keys cascade).
pub fn delete(connection: &mut DbConnection, username: &str) -> Result<bool, StorageError> {
    Ok(diesel::delete(users::table.filter(users::username.eq(username))).execute(connection)? > 0)
}

/// Usernames by user id, for the ids given.
pub fn usernames(
    connection: &mut DbConnection,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>, StorageError> {
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::username))
        .load::<(String, String)>(connection)?
        .into_iter()
        .collect())
}
