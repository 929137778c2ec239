//! `POST /par` (RFC 9126): the client pushes its authorization request over the back channel,
//! authenticated as at `/token`, and gets a `request_uri` for `/authorize` (see
//! `services::pushed_requests`). A DPoP proof here binds the code to its key (RFC 9449 §10.1).

use actix_web::{web, HttpRequest, HttpResponse};

use super::client_auth::authenticated_client;
use super::dpop::{accepted_proof, with_nonce};
use super::form::OAuthForm;
use crate::error::AppError;
use crate::services::clients::{self, PublicClients};
use crate::services::pushed_requests;
use crate::state::AppState;

pub async fn push(request: HttpRequest, form: OAuthForm, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let proof = accepted_proof(&state, &request, None, true).await.map_err(|refusal| refusal.at_token_endpoint())?;
    let presented = authenticated_client(&state, &request, &form).await?;
    let mut parameters = pushed_requests::parameters_of(form.pairs());
    pushed_requests::bind_to_proof(&mut parameters, proof.as_ref())?;
    let (client_id, parameters) = state
        .oauth_read(move |connection, context, now| {
            let caller = clients::authenticate_presented(connection, context, &presented, PublicClients::Identified)?;
            pushed_requests::check(connection, context, &caller, &mut parameters, now)?;
            Ok((caller.client_id, parameters))
        })
        .await?;
    let (hasher, now) = (state.hasher.clone(), state.clock.now());
    let pushed = state
        .db
        .write(move |connection| pushed_requests::store(connection, &hasher, &client_id, &parameters, now))
        .await?;
    Ok(with_nonce(&state, HttpResponse::Created().insert_header(("Cache-Control", "no-store")).json(pushed)))
}
