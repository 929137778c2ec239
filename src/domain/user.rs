//! End users: the bank's customers who log in and consent.

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Stable subject identifier (`sub`); never the username, which people may want changed.
    pub id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// 1–64 characters of letters, digits and `._@-`.
/// The longest username.
pub const MAX_USERNAME_CHARS: usize = 64;

pub fn validate_username(username: &str) -> Result<(), String> {
    let valid_chars = username.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if username.is_empty() || username.len() > MAX_USERNAME_CHARS || !valid_chars {
        return Err(format!(
            "username {username:?} must be 1 to 64 characters of letters, digits, '.', '_', '@' and '-'"
        ));
    }
    Ok(())
}

/// Passwords are the user's choice; we only refuse the trivially short and the absurdly long
/// (argon2 hashes any length, but a megabyte password is an attack, not a password).
pub fn validate_password(password: &str) -> Result<(), String> {
    match password.chars().count() {
        0..=7 => Err("password must be at least 8 characters".into()),
        8..=1024 => Ok(()),
        _ => Err("password must be at most 1024 characters".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_short_plain_identifiers() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("alice@bank.example").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("al ice").is_err());
        assert!(validate_username(&"a".repeat(65)).is_err());
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert!(validate_password("short").is_err());
        assert!(validate_password("alice-password").is_ok());
    }
}
