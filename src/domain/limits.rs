//! Usage limits of one consent: how long it lasts and how many accesses it allows.
//! Limits are read from the scope definition at check time; the grant fixes the start.

use chrono::{DateTime, Duration, Utc};

use super::scope::Scope;

/// The stored state of one grant, as the rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantUsage {
    pub granted_at: DateTime<Utc>,
    pub access_count: u64,
}

/// Where a scope stands under its grant right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitState {
    /// Usable; `expires_at` / `remaining` are None where the scope sets no such limit.
    Usable { expires_at: Option<DateTime<Utc>>, remaining: Option<u64> },
    /// The consent's days are over.
    Expired,
    /// The consent's accesses are used up.
    Exhausted,
    /// A limited scope with no consent on record (e.g. a limited child added to the tree after
    /// the consent was given): the user has not agreed to its limits, so it is not usable.
    NotGranted,
}

impl LimitState {
    pub fn is_usable(&self) -> bool {
        matches!(self, Self::Usable { .. })
    }
}

/// When a consent given at `granted_at` to `scope` lapses; None when the scope has no duration.
pub fn expiry(scope: &Scope, granted_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // A duration past the end of the calendar (millions of years) is as good as unlimited.
    (scope.access_duration_days > 0)
        .then(|| granted_at.checked_add_signed(Duration::days(i64::from(scope.access_duration_days))))
        .flatten()
}

pub fn has_limits(scope: &Scope) -> bool {
    scope.access_duration_days > 0 || scope.max_access_count > 0
}

pub fn evaluate(scope: &Scope, grant: Option<GrantUsage>, now: DateTime<Utc>) -> LimitState {
    let Some(grant) = grant else {
        return if has_limits(scope) {
            LimitState::NotGranted
        } else {
            LimitState::Usable { expires_at: None, remaining: None }
        };
    };
    let expires_at = expiry(scope, grant.granted_at);
    if expires_at.is_some_and(|end| now >= end) {
        return LimitState::Expired;
    }
    let max = u64::from(scope.max_access_count);
    if max > 0 && grant.access_count >= max {
        return LimitState::Exhausted;
    }
    LimitState::Usable { expires_at, remaining: (max > 0).then(|| max - grant.access_count) }
}

/// A grant's limits as listings show them (admin API, account page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantStatus {
    /// `active`, `expired` or `exhausted`.
    pub state: &'static str,
    pub expires_at: Option<DateTime<Utc>>,
    /// None when the scope has no access limit.
    pub remaining: Option<u64>,
}

pub fn status(scope: &Scope, grant: GrantUsage, now: DateTime<Utc>) -> GrantStatus {
    let expires_at = expiry(scope, grant.granted_at);
    let max = u64::from(scope.max_access_count);
    let remaining = (max > 0).then(|| max.saturating_sub(grant.access_count));
    let state = match evaluate(scope, Some(grant), now) {
        LimitState::Expired => "expired",
        LimitState::Exhausted => "exhausted",
        LimitState::Usable { .. } | LimitState::NotGranted => "active",
    };
    GrantStatus { state, expires_at, remaining }
}

/// The limits in words, as the consent and account pages show them: "for 90 days",
/// "up to 100 accesses".
pub fn describe(scope: &Scope) -> Option<String> {
    let days = match scope.access_duration_days {
        0 => None,
        1 => Some("for 1 day".to_string()),
        n => Some(format!("for {n} days")),
    };
    let accesses = match scope.max_access_count {
        0 => None,
        1 => Some("up to 1 access".to_string()),
        n => Some(format!("up to {n} accesses")),
    };
    match (days, accesses) {
        (Some(d), Some(a)) => Some(format!("{d}, {a}")),
        (d, a) => d.or(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(days: u32, max: u32) -> Scope {
        Scope { access_duration_days: days, max_access_count: max, ..Scope::new("s", "S") }
    }

    #[test]
    fn an_unlimited_scope_is_usable_with_or_without_a_grant() {
        let now = Utc::now();
        assert!(evaluate(&scope(0, 0), None, now).is_usable());
        let grant = GrantUsage { granted_at: now - Duration::days(4000), access_count: 1_000_000 };
        assert_eq!(evaluate(&scope(0, 0), Some(grant), now), LimitState::Usable { expires_at: None, remaining: None });
    }

    #[test]
    fn a_consent_lapses_after_its_days() {
        let now = Utc::now();
        let fresh = GrantUsage { granted_at: now - Duration::days(89), access_count: 0 };
        let old = GrantUsage { granted_at: now - Duration::days(90), access_count: 0 };
        assert_eq!(
            evaluate(&scope(90, 0), Some(fresh), now),
            LimitState::Usable { expires_at: Some(fresh.granted_at + Duration::days(90)), remaining: None }
        );
        assert_eq!(evaluate(&scope(90, 0), Some(old), now), LimitState::Expired);
    }

    #[test]
    fn a_consent_is_exhausted_at_its_access_count() {
        let now = Utc::now();
        let used = |count| GrantUsage { granted_at: now, access_count: count };
        assert_eq!(
            evaluate(&scope(0, 5), Some(used(4)), now),
            LimitState::Usable { expires_at: None, remaining: Some(1) }
        );
        assert_eq!(evaluate(&scope(0, 5), Some(used(5)), now), LimitState::Exhausted);
    }

    #[test]
    fn a_limited_scope_without_a_grant_is_not_usable() {
        assert_eq!(evaluate(&scope(0, 5), None, Utc::now()), LimitState::NotGranted);
        assert_eq!(evaluate(&scope(3, 0), None, Utc::now()), LimitState::NotGranted);
    }

    #[test]
    fn limits_read_in_words() {
        assert_eq!(describe(&scope(90, 0)).as_deref(), Some("for 90 days"));
        assert_eq!(describe(&scope(0, 100)).as_deref(), Some("up to 100 accesses"));
        assert_eq!(describe(&scope(1, 5)).as_deref(), Some("for 1 day, up to 5 accesses"));
        assert_eq!(describe(&scope(0, 0)), None);
    }
}
