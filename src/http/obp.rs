//! Open Bank Project compatibility: OBP's consumer-scope API (v3.0.0), where a consumer is a
//! client and a role name a scope. Answers and errors use OBP's shapes and messages.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::admin::auth::{self, Admin};
use crate::error::AppError;
use crate::http::json::parse_json;
use crate::services::bearer::BearerDenied;
use crate::services::clients as client_service;
use crate::state::AppState;
use crate::storage::{clients, write_transaction};

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
        Err(BearerDenied::Missing | BearerDenied::Invalid) => {
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

#[derive(Debug, Serialize)]
struct ScopeJson {
    scope_id: String,
    role_name: String,
    bank_id: String,
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
            authorize(&request).await?;
            let wanted: CreateScopeJson =
                parse_json(&body).map_err(|_| ObpError::new(400, "OBP-10001: Incorrect json format."))?;
            let consumer_id = consumer_id.into_inner();
            let snapshot = state.registry.snapshot();
            let Some(scope) = snapshot.tree.get(&wanted.role_name).cloned() else {
                return Err(ObpError::new(400, format!("OBP-10007: Incorrect Role name: {}", wanted.role_name)));
            };
            if scope.bank_level && wanted.bank_id.is_empty() {
                return Err(ObpError::new(
                    400,
                    "OBP-30205: This entitlement is a Bank Role. Please set bank_id to a valid bank id.",
                ));
            }
            if !scope.bank_level && !wanted.bank_id.is_empty() {
                return Err(ObpError::new(
                    400,
                    "OBP-30206: This entitlement is a System Role. Please set bank_id to empty string.",
                ));
            }
            let now = state.clock.now();
            let assigned = state
                .db
                .run(move |connection| {
                    write_transaction(connection, |connection| {
                        let client = clients::find(connection, &consumer_id)?
                            .ok_or_else(|| AppError::not_found("client_not_found", CONSUMER_NOT_FOUND))?;
                        let existing = clients::assignments(connection, &client.client_id)?;
                        if existing.iter().any(|a| a.scope_name == wanted.role_name && a.bank_id == wanted.bank_id) {
                            return Err(AppError::conflict(
                                "scope_already_assigned",
                                "OBP-30216: Scope already exists for this consumer.",
                            ));
                        }
                        client_service::check_assignable(connection, &client, &wanted.role_name)?;
                        clients::assign(connection, &client.client_id, &wanted.role_name, &wanted.bank_id, now)
                    })
                })
                .await
                .map_err(ObpError::from)?;
            Ok(HttpResponse::Created().json(ScopeJson {
                scope_id: assigned.id.to_string(),
                role_name: assigned.scope_name,
                bank_id: assigned.bank_id,
            }))
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
            let consumer_id = consumer_id.into_inner();
            let assigned = state
                .db
                .run(move |connection| {
                    clients::find(connection, &consumer_id)?
                        .ok_or_else(|| AppError::not_found("client_not_found", CONSUMER_NOT_FOUND))?;
                    clients::assignments(connection, &consumer_id)
                })
                .await
                .map_err(ObpError::from)?;
            let list: Vec<ScopeJson> = assigned
                .into_iter()
                .map(|a| ScopeJson { scope_id: a.id.to_string(), role_name: a.scope_name, bank_id: a.bank_id })
                .collect();
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
            authorize(&request).await?;
            let (consumer_id, scope_id) = path.into_inner();
            let not_found =
                || ObpError::new(404, "OBP-30212: Scope not found. Please specify a valid value for SCOPE_ID.");
            let scope_id: i64 = scope_id.parse().map_err(|_| not_found())?;
            let removed = state
                .db
                .run(move |connection| {
                    clients::find(connection, &consumer_id)?
                        .ok_or_else(|| AppError::not_found("client_not_found", CONSUMER_NOT_FOUND))?;
                    clients::unassign(connection, &consumer_id, scope_id)
                })
                .await
                .map_err(ObpError::from)?;
            if removed {
                Ok(HttpResponse::Ok().json(true))
            } else {
                Err(not_found())
            }
        }
        .await,
    )
}

pub fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/obp/v3.0.0/consumers/{consumer_id}")
            .route("/scopes", web::post().to(add_scope))
            .route("/scopes", web::get().to(list_scopes))
            .route("/scope/{scope_id}", web::delete().to(delete_scope)),
    );
}
