//! The back channel of the built-in Online Bank demo app (SPEC "The demo"): it exchanges the
//! code as the seeded `online-bank` client and asks the bank's API, which introspects as the
//! seeded `bank-api` resource server. It calls the same operations `/token` and `/introspect`
//! call, in process.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::code_exchange::{self, ExchangeRequest};
use crate::domain::dpop::binding_refusal;
use crate::error::AppError;
use crate::services::tokens::TokenResponse;
use crate::services::{clients, introspection, OAuthContext};
use crate::storage::DbConnection;

pub const APP_CLIENT: (&str, &str) = ("online-bank", "online-bank-secret");
const RESOURCE_SERVER: (&str, &str) = ("bank-api", "bank-api-secret");
/// What the demo app asks for.
pub const APP_SCOPE: &str = "profile accounts";
/// What `/demo/bank/balance` needs.
const BALANCE_SCOPE: &str = "accounts.balance";

/// What the demo app shows after the customer came back.
pub struct DemoResult {
    pub tokens: TokenResponse,
    /// What the bank's API learned by introspection.
    pub introspection: Value,
    pub balance: BalanceAnswer,
}

/// The bank's balance API's answer.
pub enum BalanceAnswer {
    Balance(Value),
    /// The token is not active (401).
    Inactive,
    /// The token is active without `accounts.balance` (403).
    MissingScope,
    /// A DPoP-bound token sent without a proof by its key, or a bearer token sent as DPoP
    /// (RFC 9449 §7.1): 401.
    WrongBinding(&'static str),
}

/// Exchanges the code (with the PKCE verifier the app kept), then introspects the token and
/// asks for the balance, as the demo app would over HTTP.
pub fn complete(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    code: String,
    verifier: String,
    now: DateTime<Utc>,
) -> Result<DemoResult, AppError> {
    let request = ExchangeRequest {
        client_id: APP_CLIENT.0.into(),
        client_secret: Some(APP_CLIENT.1.into()),
        code: Some(code),
        redirect_uri: Some(callback_uri(context.issuer)),
        code_verifier: Some(verifier),
        refresh_token: None,
        scope: None,
        grant_type: "authorization_code",
        proven: None,
        dpop_jkt: None,
    };
    let tokens = code_exchange::exchange_in_transaction(connection, context, &request, now)?;
    let introspection = introspect_as_bank(connection, context, &tokens.access_token, now)?;
    let balance = balance(connection, context, &tokens.access_token, None, now)?;
    Ok(DemoResult { tokens, introspection, balance })
}

pub fn callback_uri(issuer: &str) -> String {
    format!("{issuer}/demo/callback")
}

/// What the bank's API learns about a token, asking as the `bank-api` resource server.
fn introspect_as_bank(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Value, AppError> {
    let bank = clients::authenticate(connection, context, RESOURCE_SERVER.0, RESOURCE_SERVER.1)?.ok_or_else(|| {
        AppError::Unavailable("the demo's bank-api client is missing: start the server with --demo".into())
    })?;
    Ok(match introspection::introspect(connection, context, &bank, token, now)? {
        Some(active) => serde_json::to_value(active).map_err(AppError::internal)?,
        None => json!({ "active": false }),
    })
}

/// Why a token may not serve a demo resource that needs `needed`: the binding rule (RFC 9449
/// §7.1, `dpop::binding_refusal`) for a token bound to `bound`, or the scope missing from
/// `scopes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unfit {
    Binding(&'static str),
    MissingScope,
}

pub(crate) fn unfit(bound: Option<&str>, proof_jkt: Option<&str>, scopes: &str, needed: &str) -> Option<Unfit> {
    if let Some(why) = binding_refusal(bound, proof_jkt) {
        return Some(Unfit::Binding(why));
    }
    (!scopes.split(' ').any(|scope| scope == needed)).then_some(Unfit::MissingScope)
}

/// How the bank judges a token for one of its resources: `refusal` looks at the token's binding
/// (its `cnf.jkt`) and scopes, first in the active token's record and then in the answer of the
/// introspection, which counts an access of every count-limited scope in the token. So what the
/// record already refuses (a stolen token shown without its key or with a thief's own, a token
/// for another payment) spends nothing, and what introspection has dropped since is refused
/// too. The bank runs in process and may read the record; a remote one would read a JWT's
/// `cnf`. Answers the introspection (null when refused before it) and the refusal, if any.
pub(crate) fn judged<R>(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    token: &str,
    now: DateTime<Utc>,
    inactive: R,
    refusal: impl Fn(Option<&str>, &str) -> Option<R>,
) -> Result<(Value, Option<R>), AppError> {
    let stored = introspection::find_token(connection, context, token)?.filter(|stored| stored.is_active(now));
    if let Some(refused) = stored.and_then(|stored| refusal(stored.dpop_jkt.as_deref(), &stored.scope)) {
        return Ok((Value::Null, Some(refused)));
    }
    let introspected = introspect_as_bank(connection, context, token, now)?;
    if introspected["active"] != json!(true) {
        return Ok((introspected, Some(inactive)));
    }
    let refused = refusal(introspected["cnf"]["jkt"].as_str(), introspected["scope"].as_str().unwrap_or_default());
    Ok((introspected, refused))
}

/// The demo account's balance, for a token whose introspection reports `accounts.balance`.
pub fn balance(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    token: &str,
    proof_jkt: Option<&str>,
    now: DateTime<Utc>,
) -> Result<BalanceAnswer, AppError> {
    let (introspected, refused) = judged(connection, context, token, now, BalanceAnswer::Inactive, |bound, scopes| {
        unfit(bound, proof_jkt, scopes, BALANCE_SCOPE).map(|unfit| match unfit {
            Unfit::Binding(why) => BalanceAnswer::WrongBinding(why),
            Unfit::MissingScope => BalanceAnswer::MissingScope,
        })
    })?;
    if let Some(refused) = refused {
        return Ok(refused);
    }
    Ok(BalanceAnswer::Balance(json!({
        "account": "DE89 3704 0044 0532 0130 00",
        "type": "demand deposit",
        "owner": introspected["username"],
        "balance": "2,481.17",
        "currency": "EUR",
    })))
}
