//! The browser session: a signed cookie (`scopegate_session`) holding the CSRF token every
//! form carries and, once signed in, the session id whose session the database keeps
//! (`services::sessions`): the cookie alone signs nobody in.

use actix_session::config::CookieContentSecurity;
use actix_session::storage::CookieSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{Key, SameSite};
use subtle::ConstantTimeEq;

use crate::domain::user::User;
use crate::error::AppError;
use crate::secrets::{random_token, SecretHasher};
use crate::services::sessions;
use crate::state::AppState;

const SESSION_ID: &str = "session_id";
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

/// The session id the cookie carries, if any.
pub fn presented_session_id(session: &Session) -> Option<String> {
    session.get::<String>(SESSION_ID).ok().flatten()
}

/// Signing in: the new session's id, and a new CSRF token (against fixation).
pub fn sign_in(session: &Session, session_id: &str) -> Result<(), AppError> {
    session.renew();
    session.insert(SESSION_ID, session_id).map_err(AppError::internal)?;
    session.insert(CSRF, random_token(24)).map_err(AppError::internal)?;
    Ok(())
}

/// Empties the cookie, then ends the session on the server: if the server side fails, the
/// browser is signed out all the same and the error is reported.
pub async fn sign_out(session: &Session, state: &AppState) -> Result<(), AppError> {
    let presented = presented_session_id(session);
    session.purge();
    if let Some(session_id) = presented {
        sessions::end(state.sessions(), &session_id).await?;
    }
    Ok(())
}

/// The signed-in user, if the cookie names a session that has not ended and whose user still
/// exists. A session that has ended leaves the cookie; the rest of it (the CSRF token, the
/// demo's pending request) stays.
pub async fn current_user(session: &Session, state: &AppState) -> Result<Option<User>, AppError> {
    let Some(session_id) = presented_session_id(session) else {
        return Ok(None);
    };
    let user = sessions::resume(state.sessions(), &session_id, state.clock.now()).await?;
    if user.is_none() {
        session.remove(SESSION_ID);
    }
    Ok(user)
}
