//! Clients as the token paths read them: each client with its secret hash and assigned scopes,
//! read from the database once and then served from memory, so issuing or introspecting a
//! token reads no client row.
//!
//! Every change to a client or its assignments (`storage::clients`) bumps the `clients`
//! counter in `registry_version` in the change's own transaction. The registry poll
//! (`registry_poll_millis`, 1 s by default) reads it and empties the cache when it moved, so
//! other instances see a change within one poll. The instance making the change empties its
//! cache at once (a process-wide change count), so a rotated secret or removed assignment stops
//! working here immediately; a request that read the client while the change was still
//! uncommitted may keep the old state until the next poll. A record read while the cache was
//! emptied is not kept (a generation count), so no stale record outlives a poll.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::clients;
use super::{DbConnection, StorageError};
use crate::domain::client::Client;
use crate::secrets::TokenHash;

/// A client as stored, with what authenticating it and judging its scopes need.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    pub client: Client,
    pub secret_hash: Option<TokenHash>,
    /// The scopes assigned to the client (they admit its private scopes).
    pub assigned: BTreeSet<String>,
}

/// Client changes made by this process, whatever its database: a cache that saw a different
/// count empties itself before answering.
static LOCAL_CHANGES: AtomicU64 = AtomicU64::new(0);

/// Called by every client write, after the write.
pub(super) fn note_local_change() {
    LOCAL_CHANGES.fetch_add(1, Ordering::AcqRel);
}

/// Clients held at most; the cache starts afresh when full. A bank has hundreds of active
/// clients; a database of 100,000 keeps only the busy ones in memory.
const CAPACITY: usize = 10_000;

#[derive(Default)]
struct Cached {
    /// The stored `clients` counter when the entries were valid.
    stored_version: i64,
    /// `LOCAL_CHANGES` when the entries were valid.
    local_changes: u64,
    /// Bumped by every emptying: a record read before an emptying is not kept after it (it may
    /// be the very state the emptying was for).
    generation: u64,
    entries: HashMap<String, Arc<ClientRecord>>,
}

impl Cached {
    fn empty(&mut self) {
        self.entries.clear();
        self.generation += 1;
    }
}

#[derive(Default)]
pub struct ClientDirectory {
    cached: RwLock<Cached>,
}

impl ClientDirectory {
    /// Starts empty at the stored counter.
    pub fn load(connection: &mut DbConnection) -> Result<Self, StorageError> {
        let cached = Cached { stored_version: clients::version(connection)?, ..Cached::default() };
        Ok(Self { cached: RwLock::new(cached) })
    }

    /// The client with this id, from memory when it was read before; None if it does not exist.
    pub fn get(
        &self,
        connection: &mut DbConnection,
        client_id: &str,
    ) -> Result<Option<Arc<ClientRecord>>, StorageError> {
        let changes = LOCAL_CHANGES.load(Ordering::Acquire);
        if let Ok(cached) = self.cached.read() {
            if cached.local_changes == changes {
                if let Some(record) = cached.entries.get(client_id) {
                    return Ok(Some(Arc::clone(record)));
                }
            }
        }
        let generation = {
            let mut cached = self.write();
            if cached.local_changes != changes {
                cached.empty();
                cached.local_changes = changes;
            }
            if let Some(record) = cached.entries.get(client_id) {
                return Ok(Some(Arc::clone(record)));
            }
            cached.generation
        };
        let Some((client, secret_hash)) = clients::find_with_secret(connection, client_id)? else {
            return Ok(None);
        };
        let assigned = clients::assignments(connection, client_id)?.into_iter().map(|a| a.scope_name).collect();
        let record = Arc::new(ClientRecord { client, secret_hash, assigned });
        let mut cached = self.write();
        // Kept only if nothing emptied the cache while it was read, and no change was made here
        // meanwhile: else it may predate that change, and would outlive it.
        if cached.generation == generation && LOCAL_CHANGES.load(Ordering::Acquire) == changes {
            if cached.entries.len() >= CAPACITY {
                cached.empty();
            } else {
                cached.entries.insert(client_id.to_string(), Arc::clone(&record));
            }
        }
        Ok(Some(record))
    }

    /// Empties the cache when the stored counter moved. Returns whether it did.
    pub fn refresh(&self, connection: &mut DbConnection) -> Result<bool, StorageError> {
        let stored = clients::version(connection)?;
        let mut cached = self.write();
        if cached.stored_version == stored {
            return Ok(false);
        }
        cached.empty();
        cached.stored_version = stored;
        Ok(true)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Cached> {
        match self.cached.write() {
            Ok(guard) => guard,
            // The entries are plain values: a panic elsewhere cannot leave one half-written.
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}
