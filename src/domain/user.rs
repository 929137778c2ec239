//! People who sign in at `/login`: the bank's customers who consent, and the administrators
//! who use the console.

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Stable subject identifier (`sub`); never the username, which people may want changed.
    pub id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
    /// May use the console at `/admin` (SPEC, "Administration").
    pub admin: bool,
    /// When an administrator disabled her; a disabled user is shut out (see [`User::is_active`]).
    pub disabled_at: Option<DateTime<Utc>>,
}

impl User {
    /// Whether the user may act at all: sign in, keep a session, and have her tokens honoured
    /// (introspection, refresh, the code exchange). The one rule for a disabled user; every
    /// path that loads a user for those asks it.
    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none()
    }

    /// Whether the console is hers to use.
    pub fn may_administer(&self) -> bool {
        self.admin && self.is_active()
    }
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

    fn user(admin: bool, disabled_at: Option<DateTime<Utc>>) -> User {
        User {
            id: "u_1".into(),
            username: "alice".into(),
            display_name: None,
            created_at: Utc::now(),
            admin,
            disabled_at,
        }
    }

    #[test]
    fn a_disabled_user_is_inactive_and_administers_nothing() {
        assert!(user(false, None).is_active());
        assert!(!user(false, Some(Utc::now())).is_active());
        assert!(user(true, None).may_administer());
        assert!(!user(true, Some(Utc::now())).may_administer());
        assert!(!user(false, None).may_administer());
    }

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
