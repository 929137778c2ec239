//! The administration console at `/admin` (SPEC, "Administration"): server-rendered pages for
//! administrators signed in at `/login`. Every form carries the session's CSRF token, posts,
//! and redirects (303) with a notice; a refused change re-renders its page with the message.
//! The handlers call the same services as `/admin/v1`, so no rule exists twice.

mod clients;
mod grants;
mod overview;
mod scopes;
mod users;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::form::HtmlForm;
use super::pages::{error_page, see_other};
use super::session::{check_csrf, csrf_token, current_user};
use crate::domain::event::Actor;
use crate::domain::user::User;
use crate::error::AppError;
use crate::state::AppState;
use crate::views::console::Frame;

/// A signed-in administrator on a console page.
pub struct Console {
    pub user: User,
    pub csrf_token: String,
}

impl Console {
    /// Who the audit events of the console name.
    pub fn actor(&self) -> Actor {
        Actor::User(self.user.username.clone())
    }

    /// The frame every console page shares.
    pub fn frame(&self, section: &'static str, notice: Option<String>, error: Option<String>) -> Frame {
        Frame {
            user_name: self.user.display_name.clone().unwrap_or_else(|| self.user.username.clone()),
            csrf_token: self.csrf_token.clone(),
            section,
            notice,
            error,
        }
    }
}

/// The administrator behind a request, or the answer for anyone else: the sign-in page
/// (coming back here afterwards) for nobody, a 403 page for a user who is not an administrator.
pub async fn admit(
    session: &Session,
    state: &AppState,
    request: &HttpRequest,
) -> Result<Result<Console, HttpResponse>, AppError> {
    let Some(user) = current_user(session, state).await? else {
        let back = if request.method() == actix_web::http::Method::GET {
            request.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("/admin")
        } else {
            "/admin"
        };
        let next: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
        return Ok(Err(see_other(&format!("/login?next={next}"))));
    };
    if !user.may_administer() {
        return Ok(Err(error_page(
            StatusCode::FORBIDDEN,
            "Not an administrator",
            "The console is for administrators only. Ask an administrator if you need access.",
        )));
    }
    Ok(Ok(Console { user, csrf_token: csrf_token(session) }))
}

/// As [`admit`], for a form: its CSRF token must be the session's.
pub async fn admit_form(
    session: &Session,
    state: &AppState,
    request: &HttpRequest,
    form: &HtmlForm,
) -> Result<Result<Console, HttpResponse>, AppError> {
    let console = match admit(session, state, request).await? {
        Ok(console) => console,
        Err(answer) => return Ok(Err(answer)),
    };
    if check_csrf(session, form.first("csrf_token")).is_err() {
        return Ok(Err(error_page(
            StatusCode::FORBIDDEN,
            "Please try again",
            "The form expired or was not sent from this site. Go back, reload the page and try again.",
        )));
    }
    Ok(Ok(console))
}

/// Unwraps an admission or returns its answer.
macro_rules! admitted {
    ($admission:expr) => {
        match $admission.await? {
            Ok(console) => console,
            Err(answer) => return Ok(answer),
        }
    };
}
pub(crate) use admitted;

/// A refused change as its page shows it: the status and the message. Internal failures are
/// not the administrator's to fix: they go to the error path, logged and never echoed.
pub fn refusal(error: AppError) -> Result<(StatusCode, String), AppError> {
    use actix_web::ResponseError;
    match error {
        AppError::Internal(_) | AppError::Unavailable(_) => Err(error),
        other => Ok((other.status_code(), other.to_string())),
    }
}

/// What a `?notice=` key says after a redirect: fixed texts only, never text from the URL.
pub fn notice_text(key: Option<&str>) -> Option<String> {
    let text = match key? {
        "scope-created" => "The scope was created.",
        "scope-updated" => "The scope was saved.",
        "scope-moved" => "The scope was moved, with everything below it.",
        "scope-deleted" => "The scope and everything below it were deleted.",
        "client-updated" => "The client was saved.",
        "client-scopes" => "The client's scopes were saved.",
        "client-deleted" => "The client was deleted, with its grants and tokens.",
        "user-created" => "The user was created.",
        "user-password" => "The password was changed.",
        "user-disabled" => "The user was disabled: she cannot sign in and her tokens no longer work.",
        "user-deleted" => "The user was deleted, with her grants and tokens.",
        "grant-revoked" => "The grants were revoked; their tokens no longer work.",
        "grant-none" => "There was nothing to revoke.",
        _ => return None,
    };
    Some(text.to_string())
}

/// A path segment, percent-encoded.
pub fn segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>().replace('+', "%20")
}

/// `/admin` and below; mounted before `/admin/v1`'s scope-less neighbours.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/admin", web::get().to(overview::show))
        .route("/admin/scopes", web::get().to(scopes::list))
        .route("/admin/scopes", web::post().to(scopes::create))
        .route("/admin/scopes/{name}", web::get().to(scopes::show))
        .route("/admin/scopes/{name}/edit", web::post().to(scopes::edit))
        .route("/admin/scopes/{name}/move", web::post().to(scopes::move_scope))
        .route("/admin/scopes/{name}/delete", web::get().to(scopes::confirm_delete))
        .route("/admin/scopes/{name}/delete", web::post().to(scopes::delete))
        .route("/admin/clients", web::get().to(clients::list))
        .route("/admin/clients", web::post().to(clients::create))
        .route("/admin/clients/{client_id}", web::get().to(clients::show))
        .route("/admin/clients/{client_id}/edit", web::post().to(clients::edit))
        .route("/admin/clients/{client_id}/scopes", web::post().to(clients::assign))
        .route("/admin/clients/{client_id}/secret", web::post().to(clients::rotate_secret))
        .route("/admin/clients/{client_id}/delete", web::get().to(clients::confirm_delete))
        .route("/admin/clients/{client_id}/delete", web::post().to(clients::delete))
        .route("/admin/users", web::get().to(users::list))
        .route("/admin/users", web::post().to(users::create))
        .route("/admin/users/{username}/password", web::post().to(users::reset_password))
        .route("/admin/users/{username}/disable", web::post().to(users::disable))
        .route("/admin/users/{username}/delete", web::get().to(users::confirm_delete))
        .route("/admin/users/{username}/delete", web::post().to(users::delete))
        .route("/admin/grants", web::get().to(grants::list))
        .route("/admin/grants/revoke", web::post().to(grants::revoke))
        .route("/admin/events", web::get().to(overview::events));
}

/// The 303 after a change, with its notice.
pub fn done(path: &str, notice: &str) -> HttpResponse {
    let separator = if path.contains('?') { '&' } else { '?' };
    see_other(&format!("{path}{separator}notice={notice}"))
}
