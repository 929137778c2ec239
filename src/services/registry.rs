//! The scope registry as the server holds it: the tree in memory, so the token path never
//! queries the `scopes` table, kept in step with the database.
//!
//! Every change runs in one write transaction that first bumps `registry_version` (taking its
//! row lock, so changes from several instances queue up), applies the operation to the tree,
//! and saves the difference. Other instances — and a server whose database the CLI changed —
//! notice the new version by polling it (`registry_poll_millis`, 1 s by default) and reload.

use chrono::{DateTime, Utc};
use std::sync::{Arc, RwLock};

use serde_json::json;

use crate::domain::entitlement::has_lapsed;
use crate::domain::event::{changes, Actor, Event, EventType};
use crate::domain::scope::Scope;
use crate::domain::scope_document::ScopeNode;
use crate::domain::scope_tree::{ScopePatch, ScopeTree};
use crate::error::AppError;
use crate::services::events;
use crate::storage::grants;
use crate::storage::scopes::{self, SaveCounts};
use crate::storage::{write_transaction, DbConnection};

/// One consistent state of the registry.
#[derive(Debug)]
pub struct Snapshot {
    pub version: i64,
    pub tree: ScopeTree,
}

#[derive(Debug)]
pub struct Registry {
    current: RwLock<Arc<Snapshot>>,
}

/// Why a change transaction ended without committing.
enum Abort<T> {
    Failed(AppError),
    /// The operation changed nothing: roll back the version bump too.
    Unchanged(T),
}

impl<T> From<diesel::result::Error> for Abort<T> {
    fn from(error: diesel::result::Error) -> Self {
        Self::Failed(error.into())
    }
}

impl<T> From<crate::storage::StorageError> for Abort<T> {
    fn from(error: crate::storage::StorageError) -> Self {
        Self::Failed(error.into())
    }
}

impl<T> From<AppError> for Abort<T> {
    fn from(error: AppError) -> Self {
        Self::Failed(error)
    }
}

impl Registry {
    pub fn load(connection: &mut DbConnection) -> Result<Self, AppError> {
        let snapshot = Self::read(connection)?;
        Ok(Self { current: RwLock::new(Arc::new(snapshot)) })
    }

    fn read(connection: &mut DbConnection) -> Result<Snapshot, AppError> {
        // Version first: if a change lands between the two reads we hold a newer tree under an
        // older version, and the next poll reloads — never the reverse.
        let version = scopes::current_version(connection)?;
        let tree = scopes::load_tree(connection)?;
        Ok(Snapshot { version, tree })
    }

    /// The tree as of now. Cheap: an `Arc` clone under a read lock.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            // A panic while holding the lock cannot leave the Arc half-written.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn install(&self, snapshot: Snapshot) {
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if snapshot.version > guard.version {
            *guard = Arc::new(snapshot);
        }
    }

    /// Reloads the tree when the stored version has moved. Returns whether it did.
    pub fn refresh(&self, connection: &mut DbConnection) -> Result<bool, AppError> {
        let stored = scopes::current_version(connection)?;
        if stored == self.snapshot().version {
            return Ok(false);
        }
        self.install(Self::read(connection)?);
        Ok(true)
    }

    /// Applies `operation` to the current tree and saves the result, all in one transaction.
    /// A refused operation, or one that changes nothing, writes nothing.
    pub fn change<T, F>(&self, connection: &mut DbConnection, operation: F) -> Result<(T, SaveCounts), AppError>
    where
        F: FnOnce(&mut ScopeTree, &mut DbConnection) -> Result<T, AppError>,
    {
        let outcome = write_transaction(connection, |connection| {
            let version = scopes::bump_version(connection)?;
            let cached = self.snapshot();
            let loaded;
            let before = if cached.version == version - 1 {
                &cached.tree
            } else {
                loaded = scopes::load_tree(connection)?;
                &loaded
            };
            let mut after = before.clone();
            let value = operation(&mut after, connection)?;
            if after == *before {
                return Err(Abort::Unchanged(value));
            }
            let counts = scopes::save_difference(connection, before, &after)?;
            Ok((value, counts, Snapshot { version, tree: after }))
        });
        match outcome {
            Ok((value, counts, snapshot)) => {
                self.install(snapshot);
                Ok((value, counts))
            }
            Err(Abort::Unchanged(value)) => Ok((value, SaveCounts::default())),
            Err(Abort::Failed(error)) => Err(error),
        }
    }

    /// Upserts every scope of the document (see `ScopeTree::import`); a bad document changes
    /// nothing and names the bad node. One `scope.created` per new scope and one
    /// `scope.updated` per changed one.
    pub fn import(
        &self,
        connection: &mut DbConnection,
        document: &[ScopeNode],
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<SaveCounts, AppError> {
        let (_, counts) = self.change(connection, |tree, connection| {
            let imported = tree.import(document).map_err(|error| AppError::invalid_request(error.to_string()))?;
            let flipped = imported.iter().filter_map(|scope| {
                tree.get(&scope.name).filter(|was| was.fields.parameterised != scope.fields.parameterised)
            });
            refuse_flipping_held_parameterised(connection, flipped.collect(), now)?;
            let mut recorded = Vec::new();
            for scope in imported.iter() {
                let event = match tree.get(&scope.name) {
                    None => Event::new(EventType::ScopeCreated, actor).detail(json!({"import": true})),
                    Some(before) if before != scope => Event::new(EventType::ScopeUpdated, actor)
                        .detail(json!({"import": true, "changed": changes(&to_json(before), &to_json(scope))})),
                    Some(_) => continue,
                };
                recorded.push(event.scope(&scope.name));
            }
            events::record_all(connection, recorded, now)?;
            *tree = imported;
            Ok(())
        })?;
        Ok(counts)
    }

    /// Adds a scope at `position` among its siblings, or last (`scope.created`). The default
    /// is taken from the tree inside the transaction, so concurrent creates under one parent
    /// line up in the order they commit.
    pub fn create(
        &self,
        connection: &mut DbConnection,
        mut scope: Scope,
        position: Option<u32>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        self.change(connection, |tree, connection| {
            let siblings = match &scope.parent {
                Some(parent) => tree.children(parent).len(),
                None => tree.roots().len(),
            };
            scope.position = position.unwrap_or(u32::try_from(siblings).unwrap_or(u32::MAX));
            let name = scope.name.clone();
            tree.add(scope)?;
            let added = tree.get(&name).map(to_json).unwrap_or_default();
            events::record(connection, Event::new(EventType::ScopeCreated, actor).scope(&name).detail(added), now)
        })?;
        Ok(())
    }

    /// Edits a scope's fields, never its name (`scope.updated` with what changed).
    pub fn edit(
        &self,
        connection: &mut DbConnection,
        name: &str,
        patch: ScopePatch,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        self.change(connection, |tree, connection| {
            let was = tree.get(name).cloned();
            let before = was.as_ref().map(to_json).unwrap_or_default();
            let edited = tree.edit(name, patch)?;
            let after = to_json(edited);
            if let Some(was) = was.filter(|was| was.fields.parameterised != edited.fields.parameterised) {
                refuse_flipping_held_parameterised(connection, vec![&was], now)?;
            }
            let changed = changes(&before, &after);
            if changed.as_object().is_some_and(|changed| !changed.is_empty()) {
                let event = Event::new(EventType::ScopeUpdated, actor).scope(name).detail(json!({"changed": changed}));
                events::record(connection, event, now)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Moves a scope and its subtree under another parent, at a position (`scope.moved`).
    pub fn move_scope(
        &self,
        connection: &mut DbConnection,
        name: &str,
        parent: Option<&str>,
        position: Option<u32>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        self.change(connection, |tree, connection| {
            let from = tree.get(name).map(|scope| json!({"parent": scope.parent, "position": scope.position}));
            tree.move_scope(name, parent, position)?;
            let to = tree.get(name).map(|scope| json!({"parent": scope.parent, "position": scope.position}));
            if from != to {
                let event =
                    Event::new(EventType::ScopeMoved, actor).scope(name).detail(json!({"from": from, "to": to}));
                events::record(connection, event, now)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Deletes a scope and its subtree unless a client has any of it assigned or an unexpired
    /// grant holds any of it (SPEC: lapse is `entitlement::has_lapsed` under the scope's current
    /// definition; a used-up grant that has not lapsed still holds its scope).
    pub fn delete_subtree(
        &self,
        connection: &mut DbConnection,
        name: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, AppError> {
        let (removed, _) = self.change(connection, |tree, connection| {
            let names = tree.subtree(name).into_iter().map(|scope| scope.name.clone()).collect();
            scopes::lock_for_delete(connection, &names)?;
            let mut in_use = scopes::assigned_among(connection, &names)?;
            for (scope_name, newest) in grants::newest_grant_per_scope(connection, &names)? {
                if tree.get(&scope_name).is_some_and(|scope| grant_holds(scope, newest, now)) {
                    in_use.insert(scope_name);
                }
            }
            let removed = tree.remove_subtree(name, |candidate| in_use.contains(candidate))?;
            let event = Event::new(EventType::ScopeDeleted, actor).scope(name).detail(json!({"removed": removed}));
            events::record(connection, event, now)?;
            Ok(removed)
        })?;
        Ok(removed)
    }
}

/// Who holds a subtree whose delete was refused: the clients it is assigned to and the users
/// (or clients, for client credentials) whose unexpired grants hold it.
#[derive(Debug, Default)]
pub struct SubtreeHolders {
    /// (client id, scope)
    pub clients: Vec<(String, String)>,
    pub grants: Vec<SubtreeGrant>,
}

#[derive(Debug)]
pub struct SubtreeGrant {
    pub client_id: String,
    /// The username, or the client's own id for client credentials.
    pub holder: String,
    pub scope: String,
}

/// How many holders of each kind are listed; a subtree in wide use shows the first of them.
pub const HOLDERS_LISTED: i64 = 50;

/// The holders that make `delete_subtree` refuse, judged by the same rule (assigned, or an
/// unexpired grant under the scope's current definition).
pub fn subtree_holders(
    connection: &mut DbConnection,
    tree: &ScopeTree,
    name: &str,
    now: DateTime<Utc>,
) -> Result<SubtreeHolders, AppError> {
    let names = tree.subtree(name).into_iter().map(|scope| scope.name.clone()).collect();
    let clients = scopes::assignments_among(connection, &names, HOLDERS_LISTED)?;
    let mut grants = Vec::new();
    let mut user_ids: Vec<String> = Vec::new();
    let held = grants::grants_among(connection, &names, HOLDERS_LISTED * 4)?;
    for (client_id, user_id, subject, scope, granted_at) in held {
        if tree.get(&scope).is_some_and(|definition| grant_holds(definition, granted_at, now)) {
            user_ids.extend(user_id.clone());
            grants.push((client_id, user_id, subject, scope));
        }
    }
    let usernames = crate::storage::users::usernames(connection, &user_ids)?;
    let grants = grants
        .into_iter()
        .take(HOLDERS_LISTED as usize)
        .map(|(client_id, user_id, subject, scope)| SubtreeGrant {
            holder: user_id.and_then(|id| usernames.get(&id).cloned()).unwrap_or(subject),
            client_id,
            scope,
        })
        .collect();
    Ok(SubtreeHolders { clients, grants })
}

/// A scope's `parameterised` flag decides what its grants mean: a grant of `payments.transfer`
/// is not one of `payments.transfer:PAY-1`, nor the other way round. Flipping it while
/// unexpired grants hold the scope (the delete rule) would strand them without telling anyone,
/// so it is refused until they are revoked or lapse. `flipped` holds the scopes as they were.
fn refuse_flipping_held_parameterised(
    connection: &mut DbConnection,
    flipped: Vec<&Scope>,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if flipped.is_empty() {
        return Ok(());
    }
    let names = flipped.iter().map(|scope| scope.name.clone()).collect();
    for (scope_name, newest) in grants::newest_grant_per_scope(connection, &names)? {
        if flipped.iter().any(|scope| scope.name == scope_name && grant_holds(scope, newest, now)) {
            return Err(AppError::conflict(
                "scope_in_use",
                format!(
                    "scope {scope_name:?} cannot change parameterised while grants hold it: revoke them or let them lapse first"
                ),
            ));
        }
    }
    Ok(())
}

/// Whether a grant started at `granted_at` still holds its scope against deletion: until it
/// lapses (a used-up grant that has not lapsed still holds it).
fn grant_holds(scope: &Scope, granted_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    !has_lapsed(scope, granted_at, now)
}

fn to_json(scope: &Scope) -> serde_json::Value {
    serde_json::to_value(scope).unwrap_or_default()
}
