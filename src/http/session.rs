//! The browser session: a signed cookie (`scopegate_session`) holding who is signed in and
//! the CSRF token every form carries.

use actix_session::config::CookieContentSecurity;
use actix_session::storage::CookieSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{Key, SameSite};
use subtle::ConstantTimeEq;

use crate::domain::user::User;
use crate::error::AppError;
use crate::secrets::{random_token, SecretHasher};
use crate::services::users;
use crate::state::AppState;

const USER_ID: &str = "user_id";
const CSRF: &str = "csrf";

pub fn middleware(hasher: &SecretHasher, secure: bool) -> SessionMiddleware<CookieSessionStore> {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(&hasher.derive_key("session cookie signing 1"));
    key[32..].copy_from_slice(&hasher.derive_key("session cookie signing 2"));
    SessionMiddleware::builder(CookieSessionStore::default(), Key::from(&key))
        .cookie_name("scopegate_session".into())
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_secure(secure)
        .cookie_content_security(CookieContentSecurity::Signed)
        .build()
}

/// The session's CSRF token, created on first use.
pub fn csrf_token(session: &Session) -> String {
    if let Ok(Some(token)) = session.get::<String>(CSRF) {
        return token;
    }
    let token = random_token(24);
    // A token that cannot be kept makes the form fail its CSRF check later, with a clear page.
    if let Err(error) = session.insert(CSRF, &token) {
        tracing::warn!(%error, "cannot store the CSRF token in the session");
    }
    token
}

/// A form's CSRF token must equal the session's (constant-time).
pub fn check_csrf(session: &Session, presented: Option<&str>) -> Result<(), AppError> {
    let expected = session.get::<String>(CSRF).ok().flatten();
    match (expected, presented) {
        (Some(expected), Some(presented)) if bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) => Ok(()),
        _ => Err(AppError::Forbidden {
            code: "invalid_csrf_token",
            description: "The form expired or was not sent from this site. Please go back and try again.".into(),
        }),
    }
}

/// Signing in: a new session (against fixation) with a new CSRF token.
pub fn sign_in(session: &Session, user: &User) -> Result<(), AppError> {
    session.renew();
    session.insert(USER_ID, &user.id).map_err(AppError::internal)?;
    session.insert(CSRF, random_token(24)).map_err(AppError::internal)?;
    Ok(())
}

pub fn sign_out(session: &Session) {
    session.purge();
}

/// The signed-in user, if the session names one that still exists.
pub async fn current_user(session: &Session, state: &AppState) -> Result<Option<User>, AppError> {
    let Ok(Some(user_id)) = session.get::<String>(USER_ID) else {
        return Ok(None);
    };
    let user = state.db.run(move |connection| users::find_by_id(connection, &user_id)).await?;
    if user.is_none() {
        session.purge();
    }
    Ok(user)
}
