//! Unit and property tests of the entitlement rule, the latter against a brute-force oracle
//! written straight from SPEC's wording.

use super::*;
use crate::domain::consent;
use crate::domain::scope::{ScopeFields, SecurityLevel, Visibility};
use chrono::TimeZone;
use proptest::prelude::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

fn client(level: SecurityLevel, admin: bool) -> Client {
    Client::for_tests(level, admin)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn child(name: &str, parent: &str, position: u32) -> Scope {
    Scope { parent: Some(parent.into()), position, ..Scope::new(name, name) }
}

/// accounts > accounts.balance (90 days), accounts.transactions (100 accesses);
/// profile (no authorization needed).
fn bank() -> ScopeTree {
    ScopeTree::from_scopes(vec![
        Scope::new("accounts", "Accounts").with_fields(|fields| fields.security_level = SecurityLevel::C),
        child("accounts.balance", "accounts", 0).with_fields(|fields| fields.access_duration_days = 90),
        child("accounts.transactions", "accounts", 1).with_fields(|fields| fields.max_access_count = 100),
        Scope {
            position: 1,
            ..Scope::new("profile", "Profile").with_fields(|fields| fields.user_authorization_required = false)
        },
    ])
    .unwrap()
}

fn holdings(grants: &[(&str, i64, u64)]) -> Holdings {
    let mut holdings = Holdings::new(client(SecurityLevel::C, false), BTreeSet::new());
    holdings.consent_id = Some("g_1".into());
    for (index, (name, days_ago, count)) in grants.iter().enumerate() {
        let usage = GrantUsage { access_count: *count, ..GrantUsage::fresh(now() - Duration::days(*days_ago)) };
        holdings.grants.insert(name.to_string(), HeldGrant { id: index as i64 + 1, usage });
    }
    holdings
}

fn rule<'a>(tree: &'a ScopeTree, holdings: &'a Holdings, without_grant: WithoutGrant) -> Rule<'a> {
    Rule { tree, holdings, grant_type: GrantType::AuthorizationCode, without_grant, now: now(), timezone: Tz::UTC }
}

const ALL_HELD: [(&str, i64, u64); 4] =
    [("accounts", 1, 0), ("accounts.balance", 1, 0), ("accounts.transactions", 1, 0), ("profile", 1, 0)];

#[test]
fn a_live_consent_reports_the_parent_and_its_children_with_their_limits() {
    let tree = bank();
    let holdings = holdings(&ALL_HELD);
    let entitlement = rule(&tree, &holdings, WithoutGrant::NotUsable).evaluate(["accounts"]);
    assert_eq!(entitlement.scope(), "accounts accounts.balance accounts.transactions");
    assert_eq!(entitlement.usable["accounts.transactions"].remaining, Some(100));
    assert_eq!(entitlement.usable["accounts.balance"].expires_at, Some(now() + Duration::days(89)));
    assert_eq!(entitlement.counted(), vec![("accounts.transactions".to_string(), 3)]);
}

#[test]
fn a_spent_child_takes_its_parent_out_and_leaves_its_siblings() {
    let tree = bank();
    let holdings = holdings(&[("accounts", 1, 0), ("accounts.balance", 1, 0), ("accounts.transactions", 1, 100)]);
    let entitlement = rule(&tree, &holdings, WithoutGrant::NotUsable).evaluate(["accounts"]);
    assert_eq!(entitlement.scope(), "accounts.balance");
    assert_eq!(entitlement.dropped["accounts.transactions"], Dropped::Exhausted);
    assert_eq!(entitlement.dropped["accounts"], Dropped::ImpliesDropped);
}

/// `bank()` with `payments` > `payments.transfer` (parameterised, 1 access per value).
fn bank_with_payments() -> ScopeTree {
    let mut scopes = bank().scopes();
    scopes.push(Scope { position: 2, ..Scope::new("payments", "Payments") });
    scopes.push(child("payments.transfer", "payments", 0).with_fields(|fields| {
        fields.parameterised = true;
        fields.max_access_count = 1;
    }));
    ScopeTree::from_scopes(scopes).unwrap()
}

#[test]
fn each_value_of_a_parameterised_scope_is_its_own_grant_and_implies_nothing() {
    let tree = bank_with_payments();
    let holdings =
        holdings(&[("payments", 1, 0), ("payments.transfer:PAY-1", 1, 1), ("payments.transfer:PAY-2", 1, 0)]);
    let entitlement = rule(&tree, &holdings, WithoutGrant::NotUsable).evaluate([
        "payments",
        "payments.transfer:PAY-1",
        "payments.transfer:PAY-2",
        "payments.transfer:PAY-3",
        "payments.transfer",
    ]);
    assert_eq!(entitlement.scope(), "payments payments.transfer:PAY-2", "PAY-1 is spent; a parent survives it");
    assert_eq!(entitlement.dropped["payments.transfer:PAY-1"], Dropped::Exhausted);
    assert_eq!(entitlement.dropped["payments.transfer:PAY-3"], Dropped::NotGranted);
    assert_eq!(entitlement.dropped["payments.transfer"], Dropped::Unknown, "the bare name stands for nothing");
    assert_eq!(entitlement.usable["payments.transfer:PAY-2"].remaining, Some(1));
    assert_eq!(entitlement.counted(), vec![("payments.transfer:PAY-2".to_string(), 3)]);
    let parent_alone = rule(&tree, &holdings, WithoutGrant::NotUsable).evaluate(["payments"]);
    assert_eq!(parent_alone.scope(), "payments", "no value comes with the parent");
}

#[test]
fn without_a_grant_row_a_users_scope_is_gone() {
    let tree = bank();
    let revoked = holdings(&[]);
    let entitlement = rule(&tree, &revoked, WithoutGrant::NotUsable).evaluate(["accounts", "profile"]);
    assert!(entitlement.is_empty());
    assert_eq!(entitlement.dropped["accounts.balance"], Dropped::NotGranted);
}

#[test]
fn lapse_follows_the_scopes_current_duration() {
    let mut scopes = bank().scopes();
    let holdings = holdings(&[("accounts.balance", 2, 0)]);
    let tree = ScopeTree::from_scopes(scopes.clone()).unwrap();
    assert_eq!(
        rule(&tree, &holdings, WithoutGrant::NotUsable).evaluate(["accounts.balance"]).scope(),
        "accounts.balance"
    );
    for scope in &mut scopes {
        if scope.name == "accounts.balance" {
            scope.fields.access_duration_days = 1;
        }
    }
    let shortened = ScopeTree::from_scopes(scopes).unwrap();
    let entitlement = rule(&shortened, &holdings, WithoutGrant::NotUsable).evaluate(["accounts.balance"]);
    assert_eq!(entitlement.dropped["accounts.balance"], Dropped::Lapsed { at: now() - Duration::days(1) });
}

#[test]
fn losing_the_last_access_to_another_request_drops_the_scope_and_its_ancestors() {
    let tree = bank();
    let holdings = holdings(&ALL_HELD);
    let mut entitlement = rule(&tree, &holdings, WithoutGrant::NotUsable).evaluate(["accounts"]);
    entitlement.count_accesses(&tree, |_, _| Ok::<_, ()>(CountOutcome::Exhausted)).unwrap();
    assert_eq!(entitlement.scope(), "accounts.balance");
    let mut counted = rule(&tree, &holdings, WithoutGrant::NotUsable).evaluate(["accounts"]);
    counted
        .count_accesses(&tree, |_, limits| {
            Ok::<_, ()>(CountOutcome::Counted(Counted { total: u64::from(limits.total), today: 1 }))
        })
        .unwrap();
    assert_eq!(counted.usable["accounts.transactions"].remaining, Some(0), "the last access is still reported");
}

#[test]
fn a_counted_parent_is_not_charged_when_its_child_loses_the_last_access() {
    let mut scopes = bank().scopes();
    for scope in &mut scopes {
        if scope.name == "accounts" {
            scope.fields.max_access_count = 10;
        }
    }
    let tree = ScopeTree::from_scopes(scopes).unwrap();
    let holdings = holdings(&ALL_HELD);
    let mut entitlement = rule(&tree, &holdings, WithoutGrant::NotUsable).evaluate(["accounts"]);
    let mut charged = Vec::new();
    entitlement
        .count_accesses(&tree, |grant_id, _| {
            charged.push(grant_id);
            // accounts.transactions (grant 3) loses its race; accounts (grant 1) would win.
            Ok::<_, ()>(if grant_id == 3 {
                CountOutcome::Exhausted
            } else {
                CountOutcome::Counted(Counted { total: 1, today: 1 })
            })
        })
        .unwrap();
    assert_eq!(charged, vec![3], "the child is counted first, and its dropped parent not at all");
    assert_eq!(entitlement.scope(), "accounts.balance");
}

#[test]
fn client_credentials_start_grants_refuse_spent_scopes_and_keep_siblings_of_spent_ones() {
    let tree = bank();
    let fresh = Holdings::new(client(SecurityLevel::C, false), BTreeSet::new());
    let cc = |holdings| Rule {
        tree: &tree,
        holdings,
        grant_type: GrantType::ClientCredentials,
        without_grant: WithoutGrant::StartsNow,
        timezone: Tz::UTC,
        now: now(),
    };
    let first = client_credentials(&cc(&fresh), &set(&["accounts"]), true).unwrap();
    assert_eq!(first.scope(), "accounts accounts.balance accounts.transactions");
    assert_eq!(first.counted(), vec![], "nothing to count on until the grants exist");

    let spent = holdings(&[("accounts.transactions", 1, 100)]);
    assert_eq!(
        client_credentials(&cc(&spent), &set(&["accounts.transactions"]), true),
        Err(CredentialsRefusal::Spent("accounts.transactions".into()))
    );
    assert_eq!(client_credentials(&cc(&spent), &set(&["accounts"]), true).unwrap().scope(), "accounts.balance");
    // As a default scope (no `scope` parameter) a spent one is left out, not refused.
    let defaults = set(&["accounts.transactions", "profile"]);
    assert_eq!(client_credentials(&cc(&spent), &defaults, false).unwrap().scope(), "profile");
}

#[test]
fn a_level_or_grant_type_the_client_may_not_have_drops_the_parent_too() {
    let mut scopes = bank().scopes();
    scopes.push(child("accounts.secret", "accounts", 2).with_fields(|fields| fields.security_level = SecurityLevel::B));
    scopes.push(
        child("accounts.batch", "accounts", 3)
            .with_fields(|fields| fields.auth_types = vec![GrantType::ClientCredentials]),
    );
    let tree = ScopeTree::from_scopes(scopes).unwrap();
    let offer = rule(&tree, &holdings(&[]), WithoutGrant::NotUsable).offer(["accounts"]);
    assert_eq!(offer.scope(), "accounts.balance accounts.transactions");
    assert_eq!(offer.dropped["accounts.secret"], Dropped::NotAdmitted);
    assert_eq!(offer.dropped["accounts.batch"], Dropped::NotAdmitted);
    assert_eq!(offer.dropped["accounts"], Dropped::ImpliesDropped);
}

#[test]
fn a_clients_own_token_keeps_an_unlimited_child_added_later_but_not_a_limited_one() {
    let mut scopes = bank().scopes();
    scopes.push(child("accounts.standing_orders", "accounts", 2));
    let tree = ScopeTree::from_scopes(scopes.clone()).unwrap();
    let held = holdings(&ALL_HELD[..3]);
    let own = Rule { without_grant: WithoutGrant::UnlimitedOnly, ..rule(&tree, &held, WithoutGrant::UnlimitedOnly) };
    assert_eq!(
        own.evaluate(["accounts"]).scope(),
        "accounts accounts.balance accounts.standing_orders accounts.transactions"
    );
    scopes.push(child("accounts.loans", "accounts", 3).with_fields(|fields| fields.max_access_count = 3));
    let tree = ScopeTree::from_scopes(scopes).unwrap();
    let own = rule(&tree, &held, WithoutGrant::UnlimitedOnly);
    let entitlement = own.evaluate(["accounts"]);
    assert_eq!(entitlement.dropped["accounts.loans"], Dropped::NotGranted);
    assert_eq!(entitlement.scope(), "accounts.balance accounts.standing_orders accounts.transactions");
}

#[test]
fn the_admin_scope_is_admitted_for_admin_clients_only() {
    let tree = ScopeTree::from_scopes(vec![Scope::new(ADMIN_SCOPE, "Admin").with_fields(|fields| {
        fields.visibility = Visibility::Private;
        fields.user_authorization_required = false;
    })])
    .unwrap();
    let assigned = set(&[ADMIN_SCOPE]);
    let plain = Holdings::new(client(SecurityLevel::F, false), assigned.clone());
    let admin = Holdings::new(client(SecurityLevel::F, true), assigned);
    assert!(!admits(&tree, &plain, GrantType::ClientCredentials, ADMIN_SCOPE));
    assert!(admits(&tree, &admin, GrantType::ClientCredentials, ADMIN_SCOPE));
}

fn step(tree: &ScopeTree, held: &Holdings, prompt: Prompt, signed_in: bool, decision: Decision) -> AuthorizationStep {
    let r = rule(tree, held, WithoutGrant::NotUsable);
    let offered = r.offer(["accounts", "profile"]);
    let held = r.evaluate(offered.usable.keys().map(String::as_str));
    authorization_step(tree, AuthorizationFacts { prompt, signed_in, offered: &offered, held: &held }, &decision)
}

#[test]
fn the_consent_page_is_skipped_only_when_every_scope_needing_the_user_is_held() {
    let tree = bank();
    let everything = set(&["accounts", "accounts.balance", "accounts.transactions", "profile"]);
    // Remembered: no page, and the no-authorization scope's grant is there already.
    assert_eq!(
        step(&tree, &holdings(&ALL_HELD), Prompt::Unspecified, true, Decision::Ask),
        AuthorizationStep::Issue { scopes: everything.clone(), start: BTreeSet::new() }
    );
    // A new no-authorization scope starts silently.
    let without_profile = holdings(&ALL_HELD[..3]);
    assert_eq!(
        step(&tree, &without_profile, Prompt::Unspecified, true, Decision::Ask),
        AuthorizationStep::Issue { scopes: everything.clone(), start: set(&["profile"]) }
    );
    // prompt=consent asks anyway; prompt=none cannot ask.
    assert!(matches!(
        step(&tree, &holdings(&ALL_HELD), Prompt::Consent, true, Decision::Ask),
        AuthorizationStep::Ask { .. }
    ));
    assert_eq!(
        step(&tree, &holdings(&[]), Prompt::None, true, Decision::Ask),
        AuthorizationStep::Refuse("consent_required")
    );
    // A spent child is asked about again, with its reason; its parent is asked too.
    let spent = holdings(&[("accounts", 1, 0), ("accounts.balance", 1, 0), ("accounts.transactions", 1, 100)]);
    assert_eq!(
        step(&tree, &spent, Prompt::Unspecified, true, Decision::Ask),
        AuthorizationStep::Ask { reauthorize: BTreeMap::from([("accounts.transactions".into(), Dropped::Exhausted)]) }
    );
}

#[test]
fn a_spent_scope_without_authorization_is_not_restarted_behind_the_users_back() {
    let mut scopes = bank().scopes();
    for scope in &mut scopes {
        if scope.name == "profile" {
            scope.fields.max_access_count = 3;
        }
    }
    let tree = ScopeTree::from_scopes(scopes).unwrap();
    let used_up = holdings(&[ALL_HELD[0], ALL_HELD[1], ALL_HELD[2], ("profile", 1, 3)]);
    // A client sending her browser with prompt=none cannot reset the count.
    assert_eq!(step(&tree, &used_up, Prompt::None, true, Decision::Ask), AuthorizationStep::Refuse("consent_required"));
    assert_eq!(
        step(&tree, &used_up, Prompt::Unspecified, true, Decision::Ask),
        AuthorizationStep::Ask { reauthorize: BTreeMap::from([("profile".into(), Dropped::Exhausted)]) }
    );
    // Her Allow starts it again.
    let everything = set(&["accounts", "accounts.balance", "accounts.transactions", "profile"]);
    let approved = step(&tree, &used_up, Prompt::Unspecified, true, Decision::Approve(everything.clone()));
    assert_eq!(approved, AuthorizationStep::Issue { scopes: everything.clone(), start: everything });
}

#[test]
fn signing_in_deciding_and_denying_are_steps_too() {
    let tree = bank();
    let none = holdings(&[]);
    assert_eq!(step(&tree, &none, Prompt::Unspecified, false, Decision::Ask), AuthorizationStep::SignIn);
    assert_eq!(step(&tree, &none, Prompt::None, false, Decision::Ask), AuthorizationStep::Refuse("login_required"));
    assert_eq!(step(&tree, &holdings(&ALL_HELD), Prompt::Login, true, Decision::Ask), AuthorizationStep::SignIn);
    assert_eq!(
        step(&tree, &none, Prompt::Unspecified, true, Decision::Deny),
        AuthorizationStep::Refuse("access_denied")
    );
    assert_eq!(
        step(&tree, &none, Prompt::Unspecified, true, Decision::Approve(set(&["payments"]))),
        AuthorizationStep::Refuse("access_denied"),
        "approving only what was not offered grants nothing"
    );
    assert_eq!(
        step(
            &tree,
            &holdings(&ALL_HELD),
            Prompt::Unspecified,
            true,
            Decision::Approve(set(&["accounts.balance", "profile"]))
        ),
        AuthorizationStep::Issue { scopes: set(&["accounts.balance", "profile"]), start: set(&["accounts.balance"]) },
        "a fresh decision restarts what needs the user; a live no-authorization grant is kept"
    );
}

// ---- property tests against a brute-force oracle ----

const NAMES: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", ADMIN_SCOPE];

#[derive(Debug, Clone)]
struct World {
    scopes: Vec<Scope>,
    client: Client,
    assigned: BTreeSet<String>,
    /// Per scope name: days since granted, access count.
    grants: BTreeMap<String, (i64, u64)>,
    granted: BTreeSet<String>,
    grant_type: GrantType,
    without_grant: WithoutGrant,
}

fn level() -> impl Strategy<Value = SecurityLevel> {
    proptest::sample::select(SecurityLevel::ALL.to_vec())
}

fn grant_type() -> impl Strategy<Value = GrantType> {
    proptest::sample::select(GrantType::ALL.to_vec())
}

fn scope_at(index: usize) -> impl Strategy<Value = Scope> {
    let parent = if index == 0 { Just(None).boxed() } else { proptest::option::weighted(0.75, 0..index).boxed() };
    (
        parent,
        level(),
        proptest::bool::weighted(0.25),
        any::<bool>(),
        proptest::sample::select(vec![0u32, 0, 1, 3]),
        proptest::sample::select(vec![0u32, 0, 1, 2]),
        prop_oneof![3 => Just(Vec::new()), 1 => proptest::collection::vec(grant_type(), 1..2)],
    )
        .prop_map(move |(parent, security_level, private, asks, days, max, auth_types)| Scope {
            parent: parent.map(|p: usize| NAMES[p].to_string()),
            position: index as u32,
            fields: ScopeFields {
                security_level,
                visibility: if private { Visibility::Private } else { Visibility::Public },
                user_authorization_required: asks,
                access_duration_days: days,
                max_access_count: max,
                auth_types,
                ..ScopeFields::new(NAMES[index])
            },
            ..Scope::new(NAMES[index], NAMES[index])
        })
}

fn world() -> impl Strategy<Value = World> {
    (2..=NAMES.len())
        .prop_flat_map(|count| {
            let scopes: Vec<_> = (0..count).map(scope_at).collect();
            let names = NAMES[..count].iter().map(|name| name.to_string()).collect::<Vec<_>>();
            let grant = (0i64..5, 0u64..3);
            // A name the tree does not have (a scope deleted since the grant), now and then.
            let granted_names: Vec<String> = names.iter().cloned().chain(["gone".to_string()]).collect();
            (
                scopes,
                prop_oneof![3 => Just(SecurityLevel::A), 2 => level()],
                any::<bool>(),
                proptest::collection::btree_set(proptest::sample::select(names.clone()), 0..3),
                proptest::collection::vec(proptest::option::weighted(0.8, grant), count),
                proptest::collection::btree_set(proptest::sample::select(granted_names), 1..4),
                grant_type(),
                proptest::sample::select(vec![
                    WithoutGrant::NotUsable,
                    WithoutGrant::StartsNow,
                    WithoutGrant::UnlimitedOnly,
                ]),
            )
        })
        .prop_map(|(scopes, level, admin, assigned, grants, granted, grant_type, without_grant)| World {
            grants: NAMES
                .iter()
                .zip(grants)
                .filter_map(|(name, grant)| grant.map(|grant| (name.to_string(), grant)))
                .collect(),
            scopes,
            client: client(level, admin),
            assigned,
            granted,
            grant_type,
            without_grant,
        })
}

impl World {
    fn tree(&self) -> ScopeTree {
        ScopeTree::from_scopes(self.scopes.clone()).unwrap()
    }

    fn holdings(&self) -> Holdings {
        let mut holdings = Holdings::new(self.client.clone(), self.assigned.clone());
        for (index, (name, (days_ago, count))) in self.grants.iter().enumerate() {
            let usage = GrantUsage { access_count: *count, ..GrantUsage::fresh(now() - Duration::days(*days_ago)) };
            holdings.grants.insert(name.clone(), HeldGrant { id: index as i64, usage });
        }
        holdings
    }

    fn scope(&self, name: &str) -> Option<&Scope> {
        self.scopes.iter().find(|scope| scope.name == name)
    }

    /// `name` itself or any ancestor of it is in `set`, climbing parent links one by one.
    fn at_or_under(&self, name: &str, set: &BTreeSet<String>) -> bool {
        let mut at = Some(name.to_string());
        while let Some(current) = at {
            if set.contains(&current) {
                return true;
            }
            at = self.scope(&current).and_then(|scope| scope.parent.clone());
        }
        false
    }

    fn descendants_and_self(&self, name: &str) -> Vec<String> {
        let me = BTreeSet::from([name.to_string()]);
        self.scopes.iter().filter(|scope| self.at_or_under(&scope.name, &me)).map(|scope| scope.name.clone()).collect()
    }

    /// SPEC, read literally, one scope at a time.
    fn usable_by_itself(&self, name: &str) -> bool {
        let Some(scope) = self.scope(name) else { return false };
        let admitted = (name != ADMIN_SCOPE || self.client.admin)
            && self.client.security_level <= scope.fields.security_level
            && (scope.fields.auth_types.is_empty() || scope.fields.auth_types.contains(&self.grant_type))
            && (scope.fields.visibility == Visibility::Public || self.at_or_under(name, &self.assigned));
        let grant_live = match self.grants.get(name) {
            Some((days_ago, count)) => {
                let lapsed =
                    scope.fields.access_duration_days > 0 && *days_ago >= i64::from(scope.fields.access_duration_days);
                let exhausted = scope.fields.max_access_count > 0 && *count >= u64::from(scope.fields.max_access_count);
                !lapsed && !exhausted
            }
            None => match self.without_grant {
                WithoutGrant::StartsNow => true,
                WithoutGrant::UnlimitedOnly => {
                    scope.fields.access_duration_days == 0 && scope.fields.max_access_count == 0
                }
                WithoutGrant::NotUsable => false,
            },
        };
        admitted && grant_live
    }

    /// Why `name` is left out, as SPEC words it, or None when it is reported.
    fn reason(&self, name: &str) -> Option<Dropped> {
        let Some(scope) = self.scope(name) else { return Some(Dropped::Unknown) };
        let admitted = (name != ADMIN_SCOPE || self.client.admin)
            && self.client.security_level <= scope.fields.security_level
            && (scope.fields.auth_types.is_empty() || scope.fields.auth_types.contains(&self.grant_type))
            && (scope.fields.visibility == Visibility::Public || self.at_or_under(name, &self.assigned));
        if !admitted {
            return Some(Dropped::NotAdmitted);
        }
        match self.grants.get(name) {
            Some((days_ago, count)) => {
                let days = i64::from(scope.fields.access_duration_days);
                if days > 0 && *days_ago >= days {
                    return Some(Dropped::Lapsed { at: now() - Duration::days(*days_ago) + Duration::days(days) });
                }
                let max = u64::from(scope.fields.max_access_count);
                if max > 0 && *count >= max {
                    return Some(Dropped::Exhausted);
                }
            }
            None if !self.usable_by_itself(name) => return Some(Dropped::NotGranted),
            None => {}
        }
        let descendants = self.descendants_and_self(name);
        (!descendants.iter().all(|d| self.usable_by_itself(d))).then_some(Dropped::ImpliesDropped)
    }

    /// The effective scope of `granted`: every scope at or under a granted one whose whole
    /// subtree is usable by itself.
    fn oracle(&self, granted: &BTreeSet<String>) -> BTreeSet<String> {
        self.scopes
            .iter()
            .map(|scope| scope.name.clone())
            .filter(|name| self.at_or_under(name, granted))
            .filter(|name| self.descendants_and_self(name).iter().all(|d| self.usable_by_itself(d)))
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_rule_matches_the_brute_force_oracle(world in world()) {
        let tree = world.tree();
        let holdings = world.holdings();
        let rule = Rule { tree: &tree, holdings: &holdings, grant_type: world.grant_type, without_grant: world.without_grant, now: now(), timezone: Tz::UTC };
        let entitlement = rule.evaluate(world.granted.iter().map(String::as_str));
        prop_assert_eq!(entitlement.names(), world.oracle(&world.granted));
        // Every expanded scope is either usable or dropped, never both, with SPEC's reason; a
        // granted name the tree no longer has is dropped as unknown.
        for name in tree.expand(world.granted.iter().map(String::as_str)) {
            prop_assert!(entitlement.usable.contains_key(&name) != entitlement.dropped.contains_key(&name));
            prop_assert_eq!(entitlement.dropped.get(&name).copied(), world.reason(&name), "{}", name);
        }
        for name in world.granted.iter().filter(|name| !tree.contains(name)) {
            prop_assert_eq!(entitlement.dropped.get(name), Some(&Dropped::Unknown));
        }
        // An exhausted or lapsed scope is never reported, and neither is any ancestor of it.
        for (name, reason) in &entitlement.dropped {
            for ancestor in tree.ancestors(name) {
                prop_assert!(!entitlement.usable.contains_key(&ancestor.name), "{} reported over dropped {} ({:?})", ancestor.name, name, reason);
            }
        }
        // Remaining accesses and expiry are the scope's current limits minus the grant's use.
        for (name, usable) in &entitlement.usable {
            let scope = tree.get(name).unwrap();
            let (days_ago, count) = world.grants.get(name).copied().unwrap_or((0, 0));
            let max = u64::from(scope.fields.max_access_count);
            prop_assert_eq!(usable.remaining, (max > 0).then(|| max - count));
            let expected_end = (scope.fields.access_duration_days > 0)
                .then(|| now() - Duration::days(days_ago) + Duration::days(i64::from(scope.fields.access_duration_days)));
            prop_assert_eq!(usable.expires_at, expected_end);
        }
    }

    #[test]
    fn the_rule_applied_to_its_own_answer_changes_nothing(world in world()) {
        let tree = world.tree();
        let holdings = world.holdings();
        let rule = Rule { tree: &tree, holdings: &holdings, grant_type: world.grant_type, without_grant: world.without_grant, now: now(), timezone: Tz::UTC };
        let once = rule.evaluate(world.granted.iter().map(String::as_str)).names();
        let twice = rule.evaluate(once.iter().map(String::as_str)).names();
        prop_assert_eq!(&twice, &once);
        // Downward closed: a reported parent's current children are all reported.
        for name in &once {
            for child in tree.children(name) {
                prop_assert!(once.contains(&child.name));
            }
        }
    }

    #[test]
    fn a_consent_decision_is_idempotent_and_survives_the_rule(world in world(), ticked in proptest::collection::btree_set(proptest::sample::select(NAMES.to_vec()), 0..6)) {
        let tree = world.tree();
        let holdings = world.holdings();
        let rule = Rule { tree: &tree, holdings: &holdings, grant_type: GrantType::AuthorizationCode, without_grant: WithoutGrant::NotUsable, now: now(), timezone: Tz::UTC };
        let offered = rule.offer(world.granted.iter().map(String::as_str)).names();
        let ticked: BTreeSet<String> = ticked.into_iter().map(str::to_string).collect();
        let decided = consent::decide(&tree, &offered, &ticked);
        prop_assert!(decided.is_subset(&offered));
        // A decision is a fixed point: offered exactly what she decided, with every box ticked,
        // she is granted exactly that. (Ticking only the decided boxes of the first offer is
        // not the same: a parent left out of the decision reads as unticked, and unticking a
        // parent unticks its children.)
        prop_assert_eq!(consent::decide(&tree, &decided, &decided), decided.clone(), "deciding again changes nothing");
        // Grants freshly started for exactly the decided scopes: the rule reports exactly them.
        let mut fresh = Holdings::new(world.client.clone(), world.assigned.clone());
        for (id, name) in decided.iter().enumerate() {
            fresh.grants.insert(name.clone(), HeldGrant { id: id as i64, usage: GrantUsage::fresh(now()) });
        }
        let after = Rule { holdings: &fresh, ..rule }.evaluate(decided.iter().map(String::as_str));
        prop_assert_eq!(after.names(), decided);
    }
}

/// The property tests above are only as good as the worlds they draw: this checks, over a fixed
/// sample of them, that enough have something to report and enough hinge on the ancestor rule.
#[test]
fn the_generated_worlds_exercise_the_rule() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut reported, mut ancestor_rule, mut unknown, samples) = (0, 0, 0, 2000);
    for _ in 0..samples {
        let world = world().new_tree(&mut runner).unwrap().current();
        let effective = world.oracle(&world.granted);
        let without_ancestor_rule: BTreeSet<String> = world
            .scopes
            .iter()
            .map(|scope| scope.name.clone())
            .filter(|name| world.at_or_under(name, &world.granted) && world.usable_by_itself(name))
            .collect();
        reported += usize::from(!effective.is_empty());
        ancestor_rule += usize::from(effective != without_ancestor_rule);
        unknown += usize::from(world.granted.contains("gone"));
    }
    eprintln!("of {samples} worlds: {reported} report something, {ancestor_rule} hinge on the ancestor rule, {unknown} name a deleted scope");
    // Measured when written: 732, 299 and 673 of 2000. The floors catch a generator change that
    // would leave the properties passing on empty answers.
    assert!(reported * 100 >= samples * 30, "{reported} of {samples} report something");
    assert!(ancestor_rule * 100 >= samples * 12, "{ancestor_rule} of {samples} hinge on the ancestor rule");
    assert!(unknown * 100 >= samples * 25, "{unknown} of {samples} name a deleted scope");
}

#[test]
fn a_daily_limit_counts_calendar_days_in_the_limits_timezone() {
    let scope = Scope::new("balance", "Balance").with_fields(|fields| fields.max_accesses_per_day = 2);
    // 23:30 UTC on the 23rd is 00:30 on the 24th in Berlin.
    let late = Utc.with_ymd_and_hms(2026, 11, 23, 23, 30, 0).unwrap();
    let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 11, d);
    let used_on_23rd = GrantUsage { counted_day: day(23), day_count: 2, ..GrantUsage::fresh(late - Duration::days(3)) };
    assert_eq!(grant_state(&scope, used_on_23rd, late, Tz::UTC), GrantState::ExhaustedToday);
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    assert_eq!(
        grant_state(&scope, used_on_23rd, late, berlin),
        GrantState::Live { expires_at: None, remaining: None, remaining_today: Some(2) },
        "past midnight in Berlin, a new day"
    );
    let once = GrantUsage { day_count: 1, ..used_on_23rd };
    assert_eq!(remaining_accesses_today(&scope, once, limits_day(late, Tz::UTC)), Some(1));
    // A spent day does not send the user back to the consent page.
    let tree = ScopeTree::from_scopes(vec![scope.clone()]).unwrap();
    let mut holdings = holdings(&[]);
    holdings.grants.insert("balance".into(), HeldGrant { id: 1, usage: used_on_23rd });
    let rule = Rule { now: late, ..rule(&tree, &holdings, WithoutGrant::NotUsable) };
    let held = rule.evaluate(["balance"]);
    assert_eq!(held.dropped.get("balance"), Some(&Dropped::ExhaustedToday));
    let offered = rule.offer(["balance"]);
    let facts = AuthorizationFacts { prompt: Prompt::Unspecified, signed_in: true, offered: &offered, held: &held };
    assert!(matches!(authorization_step(&tree, facts, &Decision::Ask), AuthorizationStep::Issue { .. }));
}
