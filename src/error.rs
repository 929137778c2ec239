//! The one error type of the HTTP surface and its one mapping to a status and a JSON body.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error as a client sees it: a status class, an API or RFC error code, and a description.
/// Internal failures carry their cause for the log only; the client gets a generic body.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed or invalid input: 400.
    #[error("{description}")]
    BadRequest { code: &'static str, description: String },
    /// No or bad credentials: 401 with a `WWW-Authenticate` challenge.
    #[error("{description}")]
    Unauthorized { code: &'static str, description: String, challenge: String },
    /// Authenticated but not allowed: 403.
    #[error("{description}")]
    Forbidden { code: &'static str, description: String },
    #[error("{description}")]
    NotFound { code: &'static str, description: String },
    /// The request conflicts with stored state (in use, already exists): 409.
    #[error("{description}")]
    Conflict { code: &'static str, description: String },
    /// RFC 9449 §8: the DPoP proof must carry the server's nonce; 400 with a `DPoP-Nonce`
    /// header naming it.
    #[error("the DPoP proof must carry the server's nonce, sent in the DPoP-Nonce header")]
    UseDpopNonce { nonce: String },
    /// A dependency (the database) is unreachable: 503.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

/// The error body, for the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorBody)]
pub struct ErrorBodyDoc {
    pub error: String,
    pub error_description: String,
}

#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub error_description: &'a str,
}

impl AppError {
    pub fn bad_request(code: &'static str, description: impl Into<String>) -> Self {
        Self::BadRequest { code, description: description.into() }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_request", description)
    }

    pub fn not_found(code: &'static str, description: impl Into<String>) -> Self {
        Self::NotFound { code, description: description.into() }
    }

    pub fn conflict(code: &'static str, description: impl Into<String>) -> Self {
        Self::Conflict { code, description: description.into() }
    }

    /// RFC 6749 §5.2 `invalid_client`: 401 with a Basic challenge.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::Unauthorized {
            code: "invalid_client",
            description: description.into(),
            challenge: r#"Basic realm="scopegate", charset="UTF-8""#.to_string(),
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn code(&self) -> &str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. } => code,
            Self::UseDpopNonce { .. } => "use_dpop_nonce",
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::Internal(_) => "server_error",
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } | Self::UseDpopNonce { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let description = match self {
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
                "The server could not complete the request.".to_string()
            }
            Self::Unavailable(cause) => {
                tracing::warn!(cause = cause.as_str(), "dependency unavailable");
                "The service is temporarily unavailable.".to_string()
            }
            other => other.to_string(),
        };
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Self::Unauthorized { challenge, .. } = self {
            response.insert_header((header::WWW_AUTHENTICATE, challenge.as_str()));
        }
        if let Self::UseDpopNonce { nonce } = self {
            response.insert_header(("DPoP-Nonce", nonce.as_str()));
        }
        response.json(ErrorBody { error: self.code(), error_description: &description })
    }
}

impl From<crate::domain::scope_tree::ScopeTreeError> for AppError {
    fn from(error: crate::domain::scope_tree::ScopeTreeError) -> Self {
        use crate::domain::scope_tree::ScopeTreeError as E;
        let code = error.code();
        let description = error.to_string();
        match error {
            E::UnknownScope(_) => Self::NotFound { code, description },
            E::DuplicateName(_) | E::InUse(_) => Self::Conflict { code, description },
            E::InvalidScope { .. } | E::UnknownParent(_) | E::NameImmutable { .. } | E::InvalidMove(_) => {
                Self::BadRequest { code, description }
            }
        }
    }
}

impl From<crate::domain::client::RegistrationError> for AppError {
    fn from(error: crate::domain::client::RegistrationError) -> Self {
        use crate::domain::client::RegistrationError as E;
        let code = match error {
            E::InvalidRedirectUri(_) => "invalid_redirect_uri",
            E::Invalid { .. } => "invalid_request",
        };
        Self::bad_request(code, error.to_string())
    }
}

/// Storage failures as a client sees them. A unique violation that reaches here was not
/// expected by any service (they map the ones they expect to their own codes), so it is a bug.
impl From<crate::storage::StorageError> for AppError {
    fn from(error: crate::storage::StorageError) -> Self {
        use crate::storage::StorageError as E;
        match error {
            E::Unreachable(cause) => Self::Unavailable(cause),
            other @ (E::UniqueViolation
            | E::CorruptColumn { .. }
            | E::OutOfRange { .. }
            | E::Database(_)
            | E::Interrupted(_)) => Self::Internal(other.into()),
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        crate::storage::StorageError::from(error).into()
    }
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::Internal(anyhow::anyhow!("blocking task failed: {error}"))
    }
}
