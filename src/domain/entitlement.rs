//! The one entitlement rule (SPEC "Entitlement: one rule, used everywhere"): which scopes a
//! client, a token or a user's consent may use right now. Every path asks this module: client
//! credentials, the code exchange, refresh, introspection, the consent-skip decision, the
//! account page, the admin grant listing and the delete-in-use check.
//!
//! In short:
//! - A scope is **admitted** for a client and grant type when the client's security level
//!   admits the scope's level, the scope is public or assigned (directly or through an
//!   ancestor), its `auth_types` allow the grant type, and it is the admin scope only for an
//!   admin client.
//! - A **grant** (one scope of one consent) is live until it lapses (`access_duration_days`
//!   after `granted_at`, read from the scope's *current* definition) or is exhausted
//!   (`access_count` reached the current `max_access_count`). Nothing stores that result.
//! - A scope is **usable** when it is admitted and its grant is live. Without a grant row the
//!   caller's [`WithoutGrant`] policy decides: a user's scope is never usable; a
//!   client-credentials request starts the grant; a token a client holds for itself keeps
//!   unlimited children added after issuance.
//! - The **effective scope** is the granted scopes plus their current descendants, minus every
//!   dropped scope, minus every ancestor of a dropped scope: a parent implies its children, so
//!   a parent whose child is spent would hand the spent child back to a resource server.
//! - The **consent page is skipped** when no offered scope that needs user authorization is
//!   missing a live grant of its own, unless `prompt=consent` ([`authorization_step`]).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet};

use super::client::Client;
use super::limits::has_limits;
use super::scope::{GrantType, Scope};
use super::scope_tree::{ClientScopeAccess, ScopeTree};

pub use super::scope::ADMIN_SCOPE;

/// What one grant row says: when the consent to the scope started, how often it was used, and
/// how often on the last day it was used (a calendar day in `limits_timezone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantUsage {
    pub granted_at: DateTime<Utc>,
    pub access_count: u64,
    pub counted_day: Option<NaiveDate>,
    pub day_count: u64,
}

impl GrantUsage {
    /// A grant that starts now, unused.
    pub fn fresh(granted_at: DateTime<Utc>) -> Self {
        Self { granted_at, access_count: 0, counted_day: None, day_count: 0 }
    }

    /// Accesses counted on `today`: the day's count, if the last one was today.
    pub fn accesses_on(&self, today: NaiveDate) -> u64 {
        if self.counted_day == Some(today) {
            self.day_count
        } else {
            0
        }
    }
}

/// The calendar day of `now` in the timezone per-day limits are counted in.
pub fn limits_day(now: DateTime<Utc>, timezone: Tz) -> NaiveDate {
    now.with_timezone(&timezone).date_naive()
}

/// A grant as the subject holds it: its row id (to count accesses on) and its usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldGrant {
    pub id: i64,
    pub usage: GrantUsage,
}

/// Everything the rule needs about who holds what, loaded by one storage call
/// (`storage::holdings::load`).
#[derive(Debug, Clone)]
pub struct Holdings {
    pub client: Client,
    /// The client's level and assigned scopes (an assignment admits a private scope and its
    /// subtree).
    pub access: ClientScopeAccess,
    /// The consent the grants belong to (its Grant Management `grant_id`); None when the
    /// subject has none yet.
    pub consent_id: Option<String>,
    /// The consent's grants, by scope name.
    pub grants: BTreeMap<String, HeldGrant>,
}

/// What a scope without a grant row means: the one policy the callers choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithoutGrant {
    /// No grant, no scope: a user's consent, and every token already issued.
    NotUsable,
    /// This issuance starts the grant: a client-credentials request, where the client needs
    /// no one's consent and its grant counts from its first token.
    StartsNow,
    /// A token a client holds for itself: a scope without a grant (a child added to the tree
    /// after issuance) is usable when it has no limits, since there is nothing to count or
    /// lapse; a limited one is not, since its accesses could not be counted.
    UnlimitedOnly,
}

/// Where one grant stands under the scope's current definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    /// Usable; `expires_at` / `remaining` / `remaining_today` are None where the scope sets no
    /// such limit.
    Live { expires_at: Option<DateTime<Utc>>, remaining: Option<u64>, remaining_today: Option<u64> },
    /// The consent's days are over.
    Lapsed { at: DateTime<Utc> },
    /// The consent's accesses are used up.
    Exhausted,
    /// Today's accesses are used up; usable again from the next day (`limits_timezone`).
    ExhaustedToday,
}

/// When a consent given at `granted_at` to `scope` lapses; None when the scope has no duration.
pub fn expiry(scope: &Scope, granted_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (scope.fields.access_duration_days > 0)
        .then(|| granted_at.checked_add_signed(Duration::days(i64::from(scope.fields.access_duration_days))))
        // A duration past the end of the calendar is as good as unlimited.
        .flatten()
}

/// Whether a consent given at `granted_at` to `scope` has lapsed by `now`.
pub fn has_lapsed(scope: &Scope, granted_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    expiry(scope, granted_at).is_some_and(|end| now >= end)
}

/// How many accesses the grant has left: None when the scope counts none (an exhausted grant
/// has 0).
pub fn remaining_accesses(scope: &Scope, usage: GrantUsage) -> Option<u64> {
    let max = u64::from(scope.fields.max_access_count);
    (max > 0).then(|| max.saturating_sub(usage.access_count))
}

/// How many accesses the grant has left `today`: None when the scope sets no daily limit.
pub fn remaining_accesses_today(scope: &Scope, usage: GrantUsage, today: NaiveDate) -> Option<u64> {
    let max = u64::from(scope.fields.max_accesses_per_day);
    (max > 0).then(|| max.saturating_sub(usage.accesses_on(today)))
}

/// When does a count-limited scope drop out? When its grant's `access_count` has reached the
/// scope's current `max_access_count`. A time-limited one: at `granted_at` plus the scope's
/// current `access_duration_days`.
/// A scope with `max_accesses_per_day`: while that day's count (in `limits_timezone`) has
/// reached it, until the next day.
pub fn grant_state(scope: &Scope, usage: GrantUsage, now: DateTime<Utc>, timezone: Tz) -> GrantState {
    let expires_at = expiry(scope, usage.granted_at);
    if let Some(at) = expires_at.filter(|_| has_lapsed(scope, usage.granted_at, now)) {
        return GrantState::Lapsed { at };
    }
    let remaining_today = remaining_accesses_today(scope, usage, limits_day(now, timezone));
    match (remaining_accesses(scope, usage), remaining_today) {
        (Some(0), _) => GrantState::Exhausted,
        (_, Some(0)) => GrantState::ExhaustedToday,
        (remaining, remaining_today) => GrantState::Live { expires_at, remaining, remaining_today },
    }
}

/// Whether the client may hold the scope at all for this grant type: level, visibility
/// (private scopes only through an assignment of the scope or an ancestor), `auth_types`, and
/// the admin scope for admin clients only.
pub fn admits(tree: &ScopeTree, holdings: &Holdings, grant_type: GrantType, name: &str) -> bool {
    (name != ADMIN_SCOPE || holdings.client.admin) && tree.client_may_have(name, &holdings.access, grant_type)
}

impl Holdings {
    /// A client's holdings with no consent on record yet.
    pub fn new(client: Client, assigned: BTreeSet<String>) -> Self {
        let access = ClientScopeAccess { security_level: client.security_level, assigned };
        Self { client, access, consent_id: None, grants: BTreeMap::new() }
    }
}

/// Why a scope is not in the effective scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// No longer in the registry (or a parameterised scope's bare name, which stands for
    /// nothing).
    Unknown,
    /// The client may not hold it (level, visibility, grant type, admin scope).
    NotAdmitted,
    /// No grant row: never consented, or the consent was revoked.
    NotGranted,
    Lapsed {
        at: DateTime<Utc>,
    },
    Exhausted,
    /// Today's accesses are used up (`max_accesses_per_day`); back tomorrow.
    ExhaustedToday,
    /// Usable by itself, but one of its descendants is dropped and a parent implies them all.
    ImpliesDropped,
}

/// What the rule makes of one held grant now, as listings show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Usable,
    Dropped(Dropped),
}

impl Standing {
    /// The word the admin listing answers and the account page styles by.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Usable => "active",
            Self::Dropped(Dropped::Lapsed { .. }) => "expired",
            Self::Dropped(Dropped::Exhausted) => "exhausted",
            Self::Dropped(Dropped::ExhaustedToday) => "exhausted_today",
            Self::Dropped(Dropped::NotAdmitted) => "not_admitted",
            Self::Dropped(Dropped::ImpliesDropped) => "descendant_dropped",
            Self::Dropped(Dropped::NotGranted | Dropped::Unknown) => "revoked",
        }
    }
}

/// A usable scope's limits, and the grant its accesses count on (None: no grant yet, or the
/// scope counts nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usable {
    pub expires_at: Option<DateTime<Utc>>,
    pub remaining: Option<u64>,
    pub remaining_today: Option<u64>,
    pub grant_id: Option<i64>,
}

/// The rule's answer: the effective scope with each scope's limits, and every scope left out
/// with its reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entitlement {
    pub usable: BTreeMap<String, Usable>,
    pub dropped: BTreeMap<String, Dropped>,
}

/// The inputs of one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Rule<'a> {
    pub tree: &'a ScopeTree,
    pub holdings: &'a Holdings,
    pub grant_type: GrantType,
    pub without_grant: WithoutGrant,
    pub now: DateTime<Utc>,
    /// Where per-day limits count their days (`limits_timezone`).
    pub timezone: Tz,
}

impl<'a> Rule<'a> {
    /// The rule for what a consent holds once issued: a user's holds what her grants hold
    /// (no grant, no scope); a client's own keeps unlimited scopes added under its grants
    /// later. Introspection, the admin API's bearer check and the grant listings use it.
    pub fn for_holder(
        tree: &'a ScopeTree,
        holdings: &'a Holdings,
        user: bool,
        now: DateTime<Utc>,
        timezone: Tz,
    ) -> Self {
        let (grant_type, without_grant) = match user {
            true => (GrantType::AuthorizationCode, WithoutGrant::NotUsable),
            false => (GrantType::ClientCredentials, WithoutGrant::UnlimitedOnly),
        };
        Rule { tree, holdings, grant_type, without_grant, now, timezone }
    }

    /// The effective scope of `granted` (scope names as a token, code or request carries them).
    pub fn evaluate<'n>(&self, granted: impl IntoIterator<Item = &'n str>) -> Entitlement {
        let granted: Vec<&str> = granted.into_iter().collect();
        let mut entitlement = Entitlement::default();
        for name in granted.iter().filter(|name| self.tree.definition(name).is_none()) {
            entitlement.dropped.insert(name.to_string(), Dropped::Unknown);
        }
        for name in self.tree.expand(granted.iter().copied()) {
            match self.own_state(&name) {
                Ok(usable) => {
                    entitlement.usable.insert(name, usable);
                }
                Err(reason) => {
                    entitlement.dropped.insert(name, reason);
                }
            }
        }
        entitlement.drop_ancestors_of_dropped(self.tree);
        entitlement
    }

    /// What the client may be offered for `named`: admission alone, as if every grant started
    /// now. The consent page shows this; it is downward closed like every effective scope.
    pub fn offer<'n>(&self, named: impl IntoIterator<Item = &'n str>) -> Entitlement {
        let admission_only = Holdings { grants: BTreeMap::new(), consent_id: None, ..self.holdings.clone() };
        Rule { holdings: &admission_only, without_grant: WithoutGrant::StartsNow, ..*self }.evaluate(named)
    }

    /// A scope by itself, before the ancestor rule.
    fn own_state(&self, name: &str) -> Result<Usable, Dropped> {
        let Some(scope) = self.tree.definition(name) else { return Err(Dropped::Unknown) };
        if !admits(self.tree, self.holdings, self.grant_type, name) {
            return Err(Dropped::NotAdmitted);
        }
        let (usage, grant_id) = match (self.holdings.grants.get(name), self.without_grant) {
            (Some(grant), _) => (grant.usage, Some(grant.id)),
            (None, WithoutGrant::StartsNow) => (GrantUsage::fresh(self.now), None),
            (None, WithoutGrant::UnlimitedOnly) if !has_limits(scope) => {
                return Ok(Usable { expires_at: None, remaining: None, remaining_today: None, grant_id: None })
            }
            (None, WithoutGrant::NotUsable | WithoutGrant::UnlimitedOnly) => return Err(Dropped::NotGranted),
        };
        match grant_state(scope, usage, self.now, self.timezone) {
            GrantState::Live { expires_at, remaining, remaining_today } => {
                Ok(Usable { expires_at, remaining, remaining_today, grant_id })
            }
            GrantState::Lapsed { at } => Err(Dropped::Lapsed { at }),
            GrantState::Exhausted => Err(Dropped::Exhausted),
            GrantState::ExhaustedToday => Err(Dropped::ExhaustedToday),
        }
    }
}

impl Entitlement {
    /// The effective scope as the `scope` parameter writes it.
    pub fn scope(&self) -> String {
        self.usable.keys().map(String::as_str).collect::<Vec<_>>().join(" ")
    }

    /// Where `name` stands in this answer (a name never evaluated reads as not granted).
    pub fn standing(&self, name: &str) -> Standing {
        match (self.usable.contains_key(name), self.dropped.get(name)) {
            (true, _) => Standing::Usable,
            (false, Some(reason)) => Standing::Dropped(*reason),
            (false, None) => Standing::Dropped(Dropped::NotGranted),
        }
    }

    pub fn names(&self) -> BTreeSet<String> {
        self.usable.keys().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.usable.is_empty()
    }

    /// Usable scopes whose accesses are counted, with the grant each counts on.
    pub fn counted(&self) -> Vec<(String, i64)> {
        self.usable
            .iter()
            .filter(|(_, usable)| usable.remaining.is_some() || usable.remaining_today.is_some())
            .filter_map(|(name, usable)| usable.grant_id.map(|id| (name.clone(), id)))
            .collect()
    }

    /// Counts one access on every counted scope through `count` (given the grant and the
    /// scope's current limits, it answers the grant's new counts, or None when another access
    /// took the last one, of all or of the day, first), and applies the outcomes. Deepest scopes go first, and a scope
    /// whose ancestor-to-be-dropped already lost is not charged: an access the answer does not
    /// report must not be counted.
    pub fn count_accesses<E>(
        &mut self,
        tree: &ScopeTree,
        mut count: impl FnMut(i64, AccessLimits) -> Result<CountOutcome, E>,
    ) -> Result<(), E> {
        let mut counted = self.counted();
        counted.sort_by_key(|(name, _)| std::cmp::Reverse(tree.ancestors(name).count()));
        let mut outcomes = BTreeMap::new();
        let mut lost: Vec<String> = Vec::new();
        for (name, grant_id) in counted {
            if lost.iter().any(|spent| tree.ancestors(spent).any(|ancestor| ancestor.name == name)) {
                continue;
            }
            let limits = tree.definition(&name).map_or(AccessLimits::default(), |scope| AccessLimits {
                total: scope.fields.max_access_count,
                per_day: scope.fields.max_accesses_per_day,
            });
            let outcome = count(grant_id, limits)?;
            if !matches!(outcome, CountOutcome::Counted(_)) {
                lost.push(name.clone());
            }
            outcomes.insert(name, outcome);
        }
        self.record_accesses(tree, &outcomes);
        Ok(())
    }

    /// Applies the outcome of counting one access on each counted scope: `Some(counted)` is the
    /// grant's counts after this access, `None` means another access took the last one first.
    /// A scope that lost the race is exhausted (for good, or for the day), and its ancestors go
    /// with it.
    fn record_accesses(&mut self, tree: &ScopeTree, counts: &BTreeMap<String, CountOutcome>) {
        for (name, count) in counts {
            let Some(usable) = self.usable.get_mut(name) else { continue };
            let reason = match (count, tree.definition(name)) {
                (CountOutcome::Counted(counted), Some(scope)) => {
                    let left = |max: u32, used: u64| (max > 0).then(|| u64::from(max).saturating_sub(used));
                    usable.remaining = left(scope.fields.max_access_count, counted.total);
                    usable.remaining_today = left(scope.fields.max_accesses_per_day, counted.today);
                    continue;
                }
                (CountOutcome::ExhaustedToday, Some(_)) => Dropped::ExhaustedToday,
                _ => Dropped::Exhausted,
            };
            self.usable.remove(name);
            self.dropped.insert(name.clone(), reason);
        }
        self.drop_ancestors_of_dropped(tree);
    }

    fn drop_ancestors_of_dropped(&mut self, tree: &ScopeTree) {
        // An unknown name implies nothing; a parameterised scope's bare name, which is in
        // the tree, is one.
        let fallen: BTreeSet<String> = self
            .dropped
            .iter()
            .filter(|(_, reason)| **reason != Dropped::Unknown)
            .map(|(name, _)| name)
            .flat_map(|name| tree.ancestors(name).map(|ancestor| ancestor.name.clone()).collect::<Vec<_>>())
            .filter(|ancestor| self.usable.contains_key(ancestor))
            .collect();
        for ancestor in fallen {
            self.usable.remove(&ancestor);
            self.dropped.insert(ancestor, Dropped::ImpliesDropped);
        }
    }
}

/// A counted scope's limits, as one access is counted against them (0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessLimits {
    pub total: u32,
    pub per_day: u32,
}

/// A grant's counts after one more access: of all, and of its day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub total: u64,
    pub today: u64,
}

/// What counting one access on a grant came to: counted, or refused because another access
/// took the last one of all, or of the day, first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountOutcome {
    Counted(Counted),
    Exhausted,
    ExhaustedToday,
}

/// Which scopes does a client-credentials request get? Its named scopes (or, with no `scope`
/// parameter, its default ones) evaluated with [`WithoutGrant::StartsNow`]. A scope the client
/// asked for by name whose own grant lapsed or ran out is refused (an administrator renews it by
/// assigning it again); a default scope in that state is just left out; a scope dropped only
/// because a descendant is spent leaves its remaining descendants. Nothing usable is refused.
pub fn client_credentials(
    rule: &Rule<'_>,
    named: &BTreeSet<String>,
    asked_by_name: bool,
) -> Result<Entitlement, CredentialsRefusal> {
    debug_assert_eq!(rule.without_grant, WithoutGrant::StartsNow);
    let entitlement = rule.evaluate(named.iter().map(String::as_str));
    if asked_by_name {
        for name in named {
            match entitlement.dropped.get(name) {
                Some(Dropped::Lapsed { .. } | Dropped::Exhausted) => {
                    return Err(CredentialsRefusal::Spent(name.clone()))
                }
                Some(Dropped::ExhaustedToday) => return Err(CredentialsRefusal::SpentToday(name.clone())),
                _ => {}
            }
        }
    }
    if entitlement.is_empty() {
        return Err(CredentialsRefusal::NothingUsable);
    }
    Ok(entitlement)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsRefusal {
    #[error("scope {0:?} has lapsed or run out for this client; an administrator must assign it again")]
    Spent(String),
    #[error("scope {0:?} has used all of today's accesses for this client; it is usable again tomorrow")]
    SpentToday(String),
    #[error("no usable scope remains for this request")]
    NothingUsable,
}

/// The `prompt` parameter (OpenID Connect Core §3.1.2.1, which OAuth servers follow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    Unspecified,
    /// Never show a page: answer `login_required` / `consent_required` instead.
    None,
    /// Sign in again even with a session.
    Login,
    /// Show the consent page even when everything is remembered.
    Consent,
}

impl Prompt {
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value {
            None => Ok(Self::Unspecified),
            Some("none") => Ok(Self::None),
            Some("login") => Ok(Self::Login),
            Some("consent") => Ok(Self::Consent),
            Some(other) => Err(format!("prompt {other:?} is not supported")),
        }
    }
}

/// What the user did on the consent page, if she was there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No decision yet: ask if needed.
    Ask,
    /// Grant exactly these scopes (computed by `consent::decide` from the ticked boxes).
    Approve(BTreeSet<String>),
    Deny,
}

/// The next step of an authorization request for a signed-in (or not) user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationStep {
    /// Show the sign-in page.
    SignIn,
    /// Redirect back with this error code (`login_required`, `consent_required`, `access_denied`).
    Refuse(&'static str),
    /// Show the consent page; `reauthorize` gives, per scope consented before, why it is asked again.
    Ask { reauthorize: BTreeMap<String, Dropped> },
    /// Issue a code for `scopes`, starting a fresh grant for each of `start`.
    Issue { scopes: BTreeSet<String>, start: BTreeSet<String> },
}

/// The facts about one authorization request that decide its next step.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizationFacts<'a> {
    pub prompt: Prompt,
    pub signed_in: bool,
    /// What the client may be offered ([`Rule::offer`]).
    pub offered: &'a Entitlement,
    /// What the user's consent holds of the offer ([`Rule::evaluate`] with `NotUsable`).
    pub held: &'a Entitlement,
}

/// When is the consent page skipped? When the user is signed in, `prompt` is not `consent`,
/// every offered scope that needs user authorization has a live grant of its own, and no
/// offered scope has lapsed or run out. Scopes that need no authorization and were never
/// granted start silently; a spent one, with or without authorization, is asked about again.
/// A scope left out only because a descendant is spent is not asked about itself.
pub fn authorization_step(tree: &ScopeTree, facts: AuthorizationFacts<'_>, decision: &Decision) -> AuthorizationStep {
    if !facts.signed_in {
        return match facts.prompt {
            Prompt::None => AuthorizationStep::Refuse("login_required"),
            _ => AuthorizationStep::SignIn,
        };
    }
    let offered = facts.offered.names();
    if offered.is_empty() {
        return AuthorizationStep::Refuse("invalid_scope");
    }
    let needs_user = |name: &str| tree.definition(name).is_some_and(|scope| scope.fields.user_authorization_required);
    // A scope whose day's accesses are spent still stands: the user's consent is not in
    // question, and asking again must not hand the client a fresh day.
    let not_live_by_itself = |name: &str| {
        !facts.held.usable.contains_key(name)
            && !matches!(facts.held.dropped.get(name), Some(Dropped::ImpliesDropped | Dropped::ExhaustedToday))
    };
    match decision {
        Decision::Deny => AuthorizationStep::Refuse("access_denied"),
        Decision::Approve(chosen) => {
            let scopes: BTreeSet<String> = chosen.intersection(&offered).cloned().collect();
            if scopes.is_empty() {
                return AuthorizationStep::Refuse("access_denied");
            }
            // A fresh decision restarts the days and counts of what the user was asked about.
            let start = scopes.iter().filter(|name| needs_user(name) || not_live_by_itself(name)).cloned().collect();
            AuthorizationStep::Issue { scopes, start }
        }
        Decision::Ask if facts.prompt == Prompt::Login => AuthorizationStep::SignIn,
        Decision::Ask => {
            // A spent scope goes back to the user even when it needs no authorization: only
            // she may start its days and count again, not a client sending her browser here.
            let spent =
                |name: &str| matches!(facts.held.dropped.get(name), Some(Dropped::Lapsed { .. } | Dropped::Exhausted));
            let asking = offered.iter().any(|name| (needs_user(name) && not_live_by_itself(name)) || spent(name));
            if asking || facts.prompt == Prompt::Consent {
                if facts.prompt == Prompt::None {
                    return AuthorizationStep::Refuse("consent_required");
                }
                let reauthorize = facts
                    .held
                    .dropped
                    .iter()
                    .filter(|(name, reason)| {
                        offered.contains(*name) && matches!(reason, Dropped::Lapsed { .. } | Dropped::Exhausted)
                    })
                    .map(|(name, reason)| (name.clone(), *reason))
                    .collect();
                return AuthorizationStep::Ask { reauthorize };
            }
            // Nothing is spent and everything needing the user is held: what remains are scopes
            // needing no authorization that were never granted, and they start now.
            let start = offered.iter().filter(|name| not_live_by_itself(name)).cloned().collect();
            AuthorizationStep::Issue { scopes: offered, start }
        }
    }
}

#[cfg(test)]
#[path = "entitlement_tests.rs"]
mod tests;
