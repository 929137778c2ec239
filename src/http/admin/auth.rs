//! The admin API's caller: an access token issued to an admin client with the admin scope.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, ResponseError};
use std::future::Future;
use std::pin::Pin;

use crate::domain::client::Client;
use crate::domain::event::Actor;
use crate::domain::negotiation::ADMIN_SCOPE;
use crate::error::AppError;
use crate::http::dpop::{presented_token, proof_refusal, PresentedToken, DPOP_CHALLENGE};
use crate::services::bearer::{self, BearerDenied};
use crate::state::AppState;

/// Checks the request's access token for admin access: a bearer token, or a DPoP-bound one
/// with its proof (an admin client may be DPoP-bound, and under `profile = "fapi2"` every
/// client is).
pub async fn authorize(request: &HttpRequest) -> Result<Result<Client, BearerDenied>, AppError> {
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return Err(AppError::internal(anyhow::anyhow!("application state missing")));
    };
    let (token, proof_jkt) = match presented_token(&state, request).await? {
        PresentedToken::Token { token, proof_jkt } => (token, proof_jkt),
        PresentedToken::Missing => return Ok(Err(BearerDenied::Missing)),
        PresentedToken::BadProof(why) => return Ok(Err(BearerDenied::BadProof(why))),
    };
    state
        .oauth_operation(move |connection, context, now| {
            bearer::admin_client(connection, context, &token, proof_jkt.as_deref(), now)
        })
        .await
}

/// RFC 6750 §3 answers for the admin API.
pub fn denial(denied: BearerDenied) -> AppError {
    match denied {
        BearerDenied::Missing => AppError::Unauthorized {
            code: "invalid_token",
            description: "an admin access token is required (Authorization: Bearer …, or DPoP … with its proof)".into(),
            challenge: format!(r#"Bearer realm="scopegate", {DPOP_CHALLENGE}"#),
        },
        BearerDenied::Invalid => AppError::Unauthorized {
            code: "invalid_token",
            description: "the access token is invalid, expired or revoked".into(),
            challenge: format!(r#"Bearer realm="scopegate", error="invalid_token", {DPOP_CHALLENGE}"#),
        },
        BearerDenied::BadProof(why) => proof_refusal(why),
        BearerDenied::InsufficientScope => AppError::Forbidden {
            code: "insufficient_scope",
            description: format!("the admin API needs a token of an admin client carrying {ADMIN_SCOPE}"),
        },
    }
}

/// An authenticated administrator; handlers take it as an argument to require admin access.
#[derive(Clone)]
pub struct Admin(pub Client);

impl Admin {
    /// Who the audit events of this request name.
    pub fn actor(&self) -> Actor {
        Actor::AdminClient(self.0.client_id.clone())
    }
}

/// Middleware of the whole admin API: the bearer token is checked before any extractor reads
/// the body, so a caller without a valid token learns nothing from body parsing (a 401, never
/// a 400 with parser detail). actix polls a handler's extractors together, so an `Admin`
/// argument alone cannot guarantee that order.
pub async fn require_admin<B: MessageBody>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match authorize(request.request()).await.and_then(|checked| checked.map_err(denial)) {
        Ok(client) => {
            request.extensions_mut().insert(Admin(client));
            next.call(request).await.map(ServiceResponse::map_into_left_body)
        }
        Err(refusal) => Ok(request.into_response(refusal.error_response()).map_into_right_body()),
    }
}

impl FromRequest for Admin {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Set by `require_admin`; checking again covers a route mounted outside its scope.
        if let Some(admin) = request.extensions().get::<Admin>().cloned() {
            return Box::pin(std::future::ready(Ok(admin)));
        }
        let request = request.clone();
        Box::pin(async move { authorize(&request).await?.map(Admin).map_err(denial) })
    }
}
