//! Token introspection (RFC 7662): is the token active, and which of its scopes are still
//! usable (`domain::entitlement`). Each answer that reports a count-limited scope counts one
//! access on its grant.

use chrono::{DateTime, SecondsFormat, Utc};
use jsonwebtoken::{Algorithm, Validation};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

use super::OAuthContext;
use crate::domain::client::Client;
use crate::domain::entitlement::{limits_day, Entitlement, Rule};
use crate::domain::event::{Actor, Event, EventType};
use crate::domain::limits;
use crate::domain::scope_tree::ScopeTree;
use crate::domain::token::{looks_like_jwt, token_type, AccessTokenClaims, Confirmation, JWT_ACCESS_TOKEN_TYPE};
use crate::error::AppError;
use crate::services::users;
use crate::storage::holdings::{self, ConsentKey};
use crate::storage::tokens::{self, AccessTokenRow};
use crate::storage::{atomically, events, grants, DbConnection, StorageError};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScopeLimits {
    pub expires_at: Option<String>,
    pub remaining_accesses: Option<u64>,
    /// Accesses left today (`max_accesses_per_day`, in `limits_timezone`); only for scopes
    /// with a daily limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_accesses_today: Option<u64>,
}

/// An active token's introspection response.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveToken {
    pub active: bool,
    pub scope: String,
    pub client_id: String,
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub aud: String,
    pub jti: String,
    pub token_type: &'static str,
    /// A DPoP-bound token's key (RFC 9449 §6.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    pub scope_limits: BTreeMap<String, ScopeLimits>,
}

/// The stored token behind a presented string: a JWT must carry our signature (any
/// published key), our issuer and an `at+jwt` type; an opaque token is found by its hash.
pub fn find_token(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    token: &str,
) -> Result<Option<AccessTokenRow>, AppError> {
    if !looks_like_jwt(token) {
        return Ok(tokens::find_access_by_hash(connection, &context.hasher.hash(token))?);
    }
    if let Some(jti) = context.verification_keys.verified_jti(token) {
        return Ok(tokens::find_access_by_jti(connection, &jti)?);
    }
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Ok(None);
    };
    if header.alg != Algorithm::ES256 || header.typ.as_deref() != Some(JWT_ACCESS_TOKEN_TYPE) {
        return Ok(None);
    }
    let Some(kid) = header.kid else {
        return Ok(None);
    };
    let Some(key) = context.verification_keys.get(connection, &kid)? else {
        return Ok(None);
    };
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[context.issuer]);
    validation.validate_aud = false;
    // Expiry is decided below against our clock (which tests may shift), not jsonwebtoken's.
    validation.validate_exp = false;
    validation.required_spec_claims = ["exp", "iss", "sub"].into_iter().map(String::from).collect();
    match jsonwebtoken::decode::<AccessTokenClaims>(token, &key, &validation) {
        Ok(data) => {
            context.verification_keys.remember(token, &data.claims.jti);
            Ok(tokens::find_access_by_jti(connection, &data.claims.jti)?)
        }
        Err(_) => Ok(None),
    }
}

/// Who may see a token's details: a resource server, or the client the token was issued to.
pub fn may_introspect(caller: &Client, token_client_id: &str) -> bool {
    caller.can_introspect || caller.client_id == token_client_id
}

/// An active token as the reads found it, before its counted scopes are counted.
pub struct Judged {
    row: AccessTokenRow,
    username: Option<String>,
    entitlement: Entitlement,
    /// Grants whose last access this introspection took (each recorded as `grant.exhausted`).
    exhausted_now: usize,
    /// Where per-day limits count their days.
    timezone: chrono_tz::Tz,
}

/// Introspects `token` for `caller`: one read-only pass. `Ok(None)` means inactive (unknown,
/// expired, revoked, malformed, nothing of it usable any more, or not the caller's to see).
/// The answer is [`Judged::answer`], after [`Judged::count`] when [`Judged::counts`] says a
/// limited scope is in play.
pub fn judge(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    caller: &Client,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<Judged>, AppError> {
    let Some(row) = find_token(connection, context, token)? else {
        return Ok(None);
    };
    // RFC 7662 §2.2: a token the caller may not see is answered like an unknown one; an
    // error here would tell any client which strings are some other client's live tokens.
    // Nor does it count an access: the scope's owner got nothing from this look.
    if !may_introspect(caller, &row.client_id) {
        return Ok(None);
    }
    if !row.is_active(now) {
        return Ok(None);
    }
    let key = ConsentKey::Reading(row.consent_id.as_deref());
    let Some(holdings) = holdings::load_for(connection, context.clients, &row.client_id, key)? else {
        return Ok(None);
    };
    let username = match &row.user_id {
        // A disabled user's tokens are inactive (`User::is_active`).
        Some(user_id) => match users::active_by_id(connection, user_id)? {
            Some(user) => Some(user.username),
            None => return Ok(None),
        },
        None => None,
    };
    let rule = Rule::for_holder(context.tree, &holdings, row.user_id.is_some(), now, context.limits_timezone);
    let entitlement = rule.evaluate(row.scope.split(' ').filter(|s| !s.is_empty()));
    Ok(Some(Judged { row, username, entitlement, exhausted_now: 0, timezone: context.limits_timezone }))
}

impl Judged {
    /// Whether answering counts an access on some grant (a write).
    pub fn counts(&self) -> bool {
        !self.entitlement.counted().is_empty()
    }

    /// How many grants ran out on this introspection: it took their last access.
    pub fn exhausted_now(&self) -> usize {
        self.exhausted_now
    }

    /// What the entitlement rule made of the token's scopes (after [`Judged::count`], what
    /// counting left).
    pub fn entitlement(&self) -> &Entitlement {
        &self.entitlement
    }

    /// Counts this access on every counted scope; the conditional update decides under
    /// concurrency, and a scope that lost the race drops out (`Entitlement::count_accesses`).
    /// An access that takes a grant's last one is recorded as `grant.exhausted`, in the same
    /// transaction as the count.
    pub fn count(
        self,
        connection: &mut DbConnection,
        tree: &ScopeTree,
        now: DateTime<Utc>,
    ) -> Result<Self, StorageError> {
        // The counts and their events land together, also inside the SQLite group writer.
        atomically(connection, |connection| self.count_in(connection, tree, now))
    }

    fn count_in(
        mut self,
        connection: &mut DbConnection,
        tree: &ScopeTree,
        now: DateTime<Utc>,
    ) -> Result<Self, StorageError> {
        let counted: Vec<(String, i64)> = self.entitlement.counted();
        let today = limits_day(now, self.timezone);
        self.entitlement
            .count_accesses(tree, |grant_id, limits| grants::count_access(connection, grant_id, limits, today))?;
        let exhausted: Vec<Event> = counted
            .into_iter()
            .filter(|(name, _)| self.entitlement.usable.get(name).is_some_and(|usable| usable.remaining == Some(0)))
            .map(|(name, grant_id)| {
                let mut event = Event::new(EventType::GrantExhausted, &Actor::System)
                    .client(&self.row.client_id)
                    .scope(&name)
                    .detail(json!({"grant_id": grant_id, "subject": self.row.subject}));
                if let Some(username) = &self.username {
                    event = event.user(username);
                }
                event
            })
            .collect();
        if !exhausted.is_empty() {
            events::insert(connection, &exhausted, now)?;
        }
        self.exhausted_now = exhausted.len();
        Ok(self)
    }

    /// The introspection response; None when nothing of the token is usable any more.
    pub fn answer(self, issuer: &str, tree: &ScopeTree) -> Option<ActiveToken> {
        let Judged { row, username, entitlement, .. } = self;
        if entitlement.is_empty() {
            return None;
        }
        let scope_limits = scope_limits(&entitlement, tree);
        Some(ActiveToken {
            active: true,
            scope: entitlement.scope(),
            client_id: row.client_id,
            sub: row.subject,
            username,
            exp: row.expires_at.timestamp(),
            iat: row.issued_at.timestamp(),
            iss: issuer.to_string(),
            aud: issuer.to_string(),
            jti: row.jti,
            token_type: token_type(row.dpop_jkt.as_deref()),
            cnf: row.dpop_jkt.map(|jkt| Confirmation { jkt }),
            scope_limits,
        })
    }
}

/// What is left of each limited usable scope, as introspection and Grant Management show it.
pub fn scope_limits(entitlement: &Entitlement, tree: &ScopeTree) -> BTreeMap<String, ScopeLimits> {
    entitlement
        .usable
        .iter()
        .filter(|(name, _)| tree.definition(name).is_some_and(limits::has_limits))
        .map(|(name, usable)| {
            let limits = ScopeLimits {
                expires_at: usable.expires_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
                remaining_accesses: usable.remaining,
                remaining_accesses_today: usable.remaining_today,
            };
            (name.clone(), limits)
        })
        .collect()
}

/// The whole introspection on one connection, counting in place: for callers already on the
/// blocking pool (the demo resource server). `/introspect` itself splits the reads from the
/// counts (`oauth::introspection_endpoint`).
pub fn introspect(
    connection: &mut DbConnection,
    context: &OAuthContext<'_>,
    caller: &Client,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<ActiveToken>, AppError> {
    let Some(mut judged) = judge(connection, context, caller, token, now)? else {
        return Ok(None);
    };
    if judged.counts() {
        judged = judged.count(connection, context.tree, now)?;
    }
    Ok(judged.answer(context.issuer, context.tree))
}
