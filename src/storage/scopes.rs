//! The `scopes` and `registry_version` tables. The registry is saved as the difference
//! between the tree before and after a change, inside the caller's transaction.

use diesel::prelude::*;
use std::collections::BTreeSet;

use super::columns::{JsonList, TextEnum};
use super::schema::{client_scopes, registry_version, scopes};
use super::DbConnection;
use super::StorageError;
use crate::domain::scope::{GrantType, Scope, ScopeFields, SecurityLevel, Visibility};
use crate::domain::scope_tree::ScopeTree;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = scopes, treat_none_as_null = true)]
struct ScopeRow {
    name: String,
    parent: Option<String>,
    position: i32,
    alias: Option<String>,
    short_description: String,
    description: Option<String>,
    #[diesel(serialize_as = TextEnum<Visibility>, deserialize_as = TextEnum<Visibility>)]
    visibility: Visibility,
    default_scope: bool,
    user_authorization_required: bool,
    access_duration_days: i32,
    max_access_count: i32,
    max_accesses_per_day: i32,
    #[diesel(serialize_as = TextEnum<SecurityLevel>, deserialize_as = TextEnum<SecurityLevel>)]
    security_level: SecurityLevel,
    #[diesel(serialize_as = JsonList<GrantType>, deserialize_as = JsonList<GrantType>)]
    auth_types: Vec<GrantType>,
    #[diesel(serialize_as = JsonList<String>, deserialize_as = JsonList<String>)]
    operations: Vec<String>,
    bank_level: bool,
    parameterised: bool,
}

/// The domain admits only values that fit (SPEC.md "Field bounds"), so a failure here is a
/// bug; it is reported rather than clamped, since a clamped row would disagree with the
/// registry that was answered to the client.
fn to_i32(column: &'static str, value: u32) -> Result<i32, StorageError> {
    i32::try_from(value).map_err(|_| StorageError::OutOfRange { column, value: value.into() })
}

fn to_u32(column: &'static str, value: i32) -> Result<u32, StorageError> {
    u32::try_from(value).map_err(|_| StorageError::CorruptColumn { column, detail: format!("negative: {value}") })
}

/// Both conversions spell out every field of `Scope` and `ScopeFields` (no `..`), so a new
/// field does not compile until it has a column.
impl TryFrom<&Scope> for ScopeRow {
    type Error = StorageError;

    fn try_from(scope: &Scope) -> Result<Self, StorageError> {
        let Scope { name, parent, position, fields } = scope;
        let ScopeFields {
            alias,
            short_description,
            description,
            visibility,
            default_scope,
            user_authorization_required,
            access_duration_days,
            max_access_count,
            max_accesses_per_day,
            security_level,
            auth_types,
            operations,
            bank_level,
            parameterised,
        } = fields;
        Ok(Self {
            name: name.clone(),
            parent: parent.clone(),
            position: to_i32("scopes.position", *position)?,
            alias: alias.clone(),
            short_description: short_description.clone(),
            description: description.clone(),
            visibility: *visibility,
            default_scope: *default_scope,
            user_authorization_required: *user_authorization_required,
            access_duration_days: to_i32("scopes.access_duration_days", *access_duration_days)?,
            max_access_count: to_i32("scopes.max_access_count", *max_access_count)?,
            max_accesses_per_day: to_i32("scopes.max_accesses_per_day", *max_accesses_per_day)?,
            security_level: *security_level,
            auth_types: auth_types.clone(),
            operations: operations.clone(),
            bank_level: *bank_level,
            parameterised: *parameterised,
        })
    }
}

impl ScopeRow {
    fn into_scope(self) -> Result<Scope, StorageError> {
        let fields = ScopeFields {
            alias: self.alias,
            short_description: self.short_description,
            description: self.description,
            visibility: self.visibility,
            default_scope: self.default_scope,
            user_authorization_required: self.user_authorization_required,
            access_duration_days: to_u32("scopes.access_duration_days", self.access_duration_days)?,
            max_access_count: to_u32("scopes.max_access_count", self.max_access_count)?,
            max_accesses_per_day: to_u32("scopes.max_accesses_per_day", self.max_accesses_per_day)?,
            security_level: self.security_level,
            auth_types: self.auth_types,
            operations: self.operations,
            bank_level: self.bank_level,
            parameterised: self.parameterised,
        };
        Ok(Scope { name: self.name, parent: self.parent, position: to_u32("scopes.position", self.position)?, fields })
    }
}

pub fn load_tree(connection: &mut DbConnection) -> Result<ScopeTree, StorageError> {
    let rows: Vec<ScopeRow> = scopes::table.select(ScopeRow::as_select()).load(connection)?;
    let scopes = rows.into_iter().map(ScopeRow::into_scope).collect::<Result<Vec<_>, _>>()?;
    ScopeTree::from_scopes(scopes).map_err(|error| StorageError::CorruptColumn {
        column: "scopes",
        detail: format!("the tree is inconsistent: {error}"),
    })
}

pub fn current_version(connection: &mut DbConnection) -> Result<i64, StorageError> {
    Ok(registry_version::table.find(1).select(registry_version::version).first(connection)?)
}

/// Bumps the registry version and returns the new one. Inside a transaction this also takes
/// the row's lock, so registry changes from several instances happen one at a time.
pub fn bump_version(connection: &mut DbConnection) -> Result<i64, StorageError> {
    diesel::update(registry_version::table.find(1))
        .set(registry_version::version.eq(registry_version::version + 1))
        .execute(connection)?;
    current_version(connection)
}

/// What one save wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SaveCounts {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
}

/// Rows per INSERT: large imports go in batches; well under both backends' parameter limits.
const INSERT_BATCH: usize = 200;

/// Writes the rows that differ between `before` and `after`. Parents come before their
/// children (pre-order), so every foreign key points at an existing row.
pub fn save_difference(
    connection: &mut DbConnection,
    before: &ScopeTree,
    after: &ScopeTree,
) -> Result<SaveCounts, StorageError> {
    let mut counts = SaveCounts::default();
    let removed: Vec<String> = before.iter().filter(|s| !after.contains(&s.name)).map(|s| s.name.clone()).collect();
    for chunk in removed.chunks(INSERT_BATCH) {
        // Children of a removed scope are removed too; ON DELETE CASCADE covers them either way.
        counts.deleted += diesel::delete(scopes::table.filter(scopes::name.eq_any(chunk))).execute(connection)?;
    }
    let mut pending_inserts: Vec<ScopeRow> = Vec::new();
    for scope in after.iter() {
        match before.get(&scope.name) {
            None => pending_inserts.push(ScopeRow::try_from(scope)?),
            Some(old) if old != scope => {
                flush_inserts(connection, &mut pending_inserts, &mut counts)?;
                let row = ScopeRow::try_from(scope)?;
                diesel::update(scopes::table.find(&scope.name)).set(row).execute(connection)?;
                counts.updated += 1;
            }
            Some(_) => {}
        }
        if pending_inserts.len() >= INSERT_BATCH {
            flush_inserts(connection, &mut pending_inserts, &mut counts)?;
        }
    }
    flush_inserts(connection, &mut pending_inserts, &mut counts)?;
    Ok(counts)
}

fn flush_inserts(
    connection: &mut DbConnection,
    rows: &mut Vec<ScopeRow>,
    counts: &mut SaveCounts,
) -> Result<(), StorageError> {
    if rows.is_empty() {
        return Ok(());
    }
    // Multi-row INSERT exists on both backends but not through MultiConnection's generic path.
    // The rows go by value: typed columns (`serialize_as`) insert only owned rows.
    let batch = std::mem::take(rows);
    counts.created += match connection {
        DbConnection::Postgresql(pg) => diesel::insert_into(scopes::table).values(batch).execute(pg)?,
        DbConnection::Sqlite(sqlite) => diesel::insert_into(scopes::table).values(batch).execute(sqlite)?,
    };
    Ok(())
}

/// Scopes among `names` that some client has assigned.
pub fn assigned_among(
    connection: &mut DbConnection,
    names: &BTreeSet<String>,
) -> Result<BTreeSet<String>, StorageError> {
    let names: Vec<&String> = names.iter().collect();
    let mut assigned = BTreeSet::new();
    for chunk in names.chunks(500) {
        let found: Vec<String> = client_scopes::table
            .filter(client_scopes::scope_name.eq_any(chunk.iter().copied()))
            .select(client_scopes::scope_name)
            .distinct()
            .load(connection)?;
        assigned.extend(found);
    }
    Ok(assigned)
}

/// Which clients have which of the named scopes assigned (at most `limit` pairs), for
/// telling an administrator why a delete was refused.
pub fn assignments_among(
    connection: &mut DbConnection,
    names: &BTreeSet<String>,
    limit: i64,
) -> Result<Vec<(String, String)>, StorageError> {
    let names: Vec<&String> = names.iter().collect();
    Ok(client_scopes::table
        .filter(client_scopes::scope_name.eq_any(names))
        .select((client_scopes::client_id, client_scopes::scope_name))
        .distinct()
        .order((client_scopes::client_id.asc(), client_scopes::scope_name.asc()))
        .limit(limit)
        .load(connection)?)
}

/// Locks the named scopes' rows until the transaction ends (PostgreSQL; SQLite write
/// transactions run one at a time). A grant insert checks its scope's row as a foreign key, so
/// while the delete-in-use check reads the grants and the delete runs, no grant can start on
/// the subtree unseen.
pub fn lock_for_delete(connection: &mut DbConnection, names: &BTreeSet<String>) -> Result<(), StorageError> {
    let DbConnection::Postgresql(pg) = connection else { return Ok(()) };
    let names: Vec<&String> = names.iter().collect();
    for chunk in names.chunks(500) {
        scopes::table
            .filter(scopes::name.eq_any(chunk.iter().copied()))
            .select(scopes::name)
            .for_update()
            .load::<String>(pg)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_that_does_not_fit_its_column_is_an_error_not_a_clamped_row() {
        let mut scope = Scope::new("metered", "Metered");
        scope.fields.max_access_count = ScopeFields::MAX_ACCESS_COUNT;
        let row = ScopeRow::try_from(&scope).unwrap();
        assert_eq!(row.max_access_count, i32::MAX);
        assert_eq!(row.into_scope().unwrap(), scope, "the largest allowed count round-trips");

        scope.fields.max_access_count = 3_000_000_000;
        let error = ScopeRow::try_from(&scope).unwrap_err();
        assert!(
            matches!(error, StorageError::OutOfRange { column: "scopes.max_access_count", value: 3_000_000_000 }),
            "{error}"
        );
    }
}
