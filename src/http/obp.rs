//! Open Bank Project compatibility: OBP's consumer-scope API (v3.0.0), where a consumer is a
//! client and a role name a scope. Answers and errors use OBP's shapes and messages.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::admin::auth::{self, Admin};
use crate::error::AppError;
use crate::http::json::parse_json;
use crate::services::bearer::BearerDenied;
use crate::services::obp::{self, ObpRefusal};
use crate::state::AppState;

/// An OBP error: `{"code": 404, "message": "OBP-20024: …"}`.
struct ObpError {
    status: u16,
    message: String,
}

impl ObpError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    fn response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        HttpResponse::build(status).json(json!({ "code": self.status, "message": self.message }))
    }
}

const CONSUMER_NOT_FOUND: &str = "OBP-20024: Consumer not found. Please specify a valid value for CONSUMER_ID.";

impl From<ObpRefusal> for ObpError {
    fn from(refusal: ObpRefusal) -> Self {
        match refusal {
            ObpRefusal::ConsumerNotFound => Self::new(404, CONSUMER_NOT_FOUND),
            ObpRefusal::UnknownRole(role) => Self::new(400, format!("OBP-10007: Incorrect Role name: {role}")),
            ObpRefusal::BankRoleWithoutBank => {
                Self::new(400, "OBP-30205: This entitlement is a Bank Role. Please set bank_id to a valid bank id.")
            }
            ObpRefusal::SystemRoleWithBank => {
                Self::new(400, "OBP-30206: This entitlement is a System Role. Please set bank_id to empty string.")
            }
            ObpRefusal::AlreadyAssigned => Self::new(400, "OBP-30216: Scope already exists for this consumer."),
            ObpRefusal::ScopeNotFound => {
                Self::new(404, "OBP-30212: Scope not found. Please specify a valid value for SCOPE_ID.")
            }
            ObpRefusal::Other(error) => Self::from(error),
        }
    }
}

impl From<AppError> for ObpError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::NotFound { .. } => Self::new(404, CONSUMER_NOT_FOUND),
            AppError::BadRequest { description, .. } => Self::new(400, description),
            AppError::Conflict { description, .. } => Self::new(400, description),
            other => {
                tracing::error!(error = %other, "OBP route failed");
                Self::new(500, "OBP-50000: Unknown Error.")
            }
        }
    }
}

/// The admin check, answered in OBP's words.
async fn authorize(request: &HttpRequest) -> Result<Admin, ObpError> {
    match auth::authorize(request).await.map_err(ObpError::from)? {
        Ok(client) => Ok(Admin(client)),
        Err(BearerDenied::Missing | BearerDenied::Invalid | BearerDenied::BadProof(_)) => {
            Err(ObpError::new(401, "OBP-20001: User not logged in. Authentication is required!"))
        }
        Err(BearerDenied::InsufficientScope) => Err(ObpError::new(
            403,
            "OBP-20050: Current consumer is not allowed to manage consumer scopes. It needs the scopegate:admin scope.",
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateScopeJson {
    bank_id: String,
    role_name: String,
}

fn outcome(result: Result<HttpResponse, ObpError>) -> HttpResponse {
    result.unwrap_or_else(|error| error.response())
}

/// `POST /obp/v3.0.0/consumers/{CONSUMER_ID}/scopes`
pub async fn add_scope(
    request: HttpRequest,
    state: web::Data<AppState>,
    consumer_id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    outcome(
        async move {
            let actor = authorize(&request).await?.actor();
            let wanted: CreateScopeJson =
                parse_json(&body).map_err(|_| ObpError::new(400, "OBP-10001: Incorrect json format."))?;
            let (snapshot, now) = (state.registry.snapshot(), state.clock.now());
            let CreateScopeJson { role_name, bank_id } = wanted;
            let add = move |connection: &mut _| {
                Ok(obp::add_scope(connection, &snapshot.tree, &consumer_id, &role_name, &bank_id, &actor, now))
            };
            let added = obp_answer(state.db.run(add).await)?;
            Ok(HttpResponse::Created().json(added))
        }
        .await,
    )
}

/// `GET /obp/v3.0.0/consumers/{CONSUMER_ID}/scopes`
pub async fn list_scopes(
    request: HttpRequest,
    state: web::Data<AppState>,
    consumer_id: web::Path<String>,
) -> HttpResponse {
    outcome(
        async move {
            authorize(&request).await?;
            let list =
                obp_answer(state.db.run(move |connection| Ok(obp::list_scopes(connection, &consumer_id))).await)?;
            Ok(HttpResponse::Ok().json(json!({ "list": list })))
        }
        .await,
    )
}

/// `DELETE /obp/v3.0.0/consumers/{CONSUMER_ID}/scope/{SCOPE_ID}`
pub async fn delete_scope(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    outcome(
        async move {
            let actor = authorize(&request).await?.actor();
            let (consumer_id, scope_id) = path.into_inner();
            let now = state.clock.now();
            let delete =
                move |connection: &mut _| Ok(obp::delete_scope(connection, &consumer_id, &scope_id, &actor, now));
            obp_answer(state.db.run(delete).await)?;
            Ok(HttpResponse::Ok().json(true))
        }
        .await,
    )
}

/// An OBP operation's answer: a database failure or its refusal, in OBP's words.
fn obp_answer<T>(answer: Result<Result<T, ObpRefusal>, AppError>) -> Result<T, ObpError> {
    answer.map_err(ObpError::from)?.map_err(ObpError::from)
}

pub fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/obp/v3.0.0/consumers/{consumer_id}")
            .route("/scopes", web::post().to(add_scope))
            .route("/scopes", web::get().to(list_scopes))
            .route("/scope/{scope_id}", web::delete().to(delete_scope)),
    );
}
