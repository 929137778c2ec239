//! `GET /.well-known/oauth-authorization-server` (RFC 8414).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::domain::fapi::Profile;
use crate::domain::grant_management;
use crate::domain::jose::ALGORITHMS;
use crate::domain::scope::Visibility;
use crate::state::AppState;

pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let issuer = &state.settings.issuer;
    let snapshot = state.registry.snapshot();
    let scopes_supported: Vec<&str> = snapshot
        .tree
        .iter()
        .filter(|scope| scope.fields.visibility == Visibility::Public)
        .map(|scope| scope.name.as_str())
        .collect();
    let auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"];
    let fapi2 = state.settings.profile == Profile::Fapi2;
    let token_auth_methods: &[&str] = if fapi2 {
        &["private_key_jwt"]
    } else {
        &["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    };
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "pushed_authorization_request_endpoint": format!("{issuer}/par"),
        // Under profile = "fapi2" the FAPI rule holds for every request: PAR always, and
        // private_key_jwt at the token endpoint (`FapiPolicy::check`), as the metadata says.
        "require_pushed_authorization_requests": state.settings.require_pushed_authorization_requests || fapi2,
        "scopes_supported": scopes_supported,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": token_auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        // RFC 9449 §5.1
        "dpop_signing_alg_values_supported": ALGORITHMS,
        // RFC 9701 §7
        "introspection_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        // Grant Management for OAuth 2.0 §8
        "grant_management_endpoint": format!("{issuer}/grants"),
        "grant_management_actions_supported": grant_management::ACTIONS,
        "grant_management_action_required": false,
    }))
}
