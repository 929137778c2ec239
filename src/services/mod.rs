//! Operations shared by the CLI and the HTTP layer: each validates with the domain rules,
//! does the expensive work (hashing, signing) and stores through `storage`, in one place.
//! Services take the narrow context they need, never the server's whole state.

pub mod account;
pub mod bearer;
pub mod clients;
pub mod demo;
pub mod dpop;
pub mod events;
pub mod grant_management;
pub mod grants;
pub mod housekeeping;
pub mod introspection;
pub mod obp;
pub mod pushed_requests;
pub mod registry;
pub mod revocation;
pub mod sessions;
pub mod sign_in;
pub mod tokens;
pub mod users;
pub mod webhook_delivery;
pub mod webhooks;

use crate::domain::fapi::FapiPolicy;
use crate::domain::scope_tree::ScopeTree;
use crate::keys::{CurrentSigningKey, VerificationKeys};
use crate::secrets::SecretHasher;
use crate::storage::client_directory::ClientDirectory;

/// How long what the token services mint lives, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub code: i64,
    pub access_token: i64,
    pub refresh_token: i64,
}

/// What the OAuth services need of the running server: the issuer, lifetimes, keys, the
/// secret hasher and the scope tree as of this request.
#[derive(Clone, Copy)]
pub struct OAuthContext<'a> {
    pub issuer: &'a str,
    pub lifetimes: Lifetimes,
    pub hasher: &'a SecretHasher,
    pub signing_key: &'a CurrentSigningKey,
    pub verification_keys: &'a VerificationKeys,
    pub tree: &'a ScopeTree,
    /// Clients with their secrets and assignments, served from memory.
    pub clients: &'a ClientDirectory,
    /// Which requests the FAPI 2.0 rule covers (`domain::fapi`).
    pub fapi: &'a FapiPolicy,
    /// Where per-day limits count their days (`limits_timezone`).
    pub limits_timezone: chrono_tz::Tz,
}
