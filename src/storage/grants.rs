//! The `consents` and `grants` tables. A consent is one decision of a subject (a user, or a
//! client acting for itself) to allow a client some scopes: Grant Management's grant, whose
//! `grant_id` is `consents.id`. Each scope of it is one `grants` row with the start of its days
//! and its access count. Whether a grant is still live is decided in `domain::entitlement`;
//! nothing here stores that result.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use std::collections::BTreeSet;

use super::columns::UtcTimestamp;
use super::schema::{access_tokens, authorization_codes, consents, grants, refresh_families};
use super::{DbConnection, StorageError};
use crate::domain::entitlement::{AccessLimits, CountOutcome, Counted, GrantUsage};
use crate::domain::scope_tree::ScopeTree;
use crate::secrets::random_token;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = consents)]
pub struct ConsentRow {
    pub id: String,
    pub subject: String,
    pub user_id: Option<String>,
    pub client_id: String,
    pub is_default: bool,
    #[diesel(deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = UtcTimestamp)]
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = grants)]
pub struct GrantRow {
    pub id: i64,
    pub consent_id: String,
    /// The registry scope (a parameterised scope's name for each of its values).
    pub scope_name: String,
    /// The scope as it was granted: the name of a plain scope, `<name>:<value>` of a
    /// parameterised one. Each is a grant of its own.
    pub scope: String,
    #[diesel(deserialize_as = UtcTimestamp)]
    pub granted_at: DateTime<Utc>,
    pub access_count: i64,
    /// The day (`YYYY-MM-DD` in `limits_timezone`) of the last counted access.
    pub counted_day: Option<String>,
    pub day_count: i64,
}

impl GrantRow {
    pub fn usage(&self) -> GrantUsage {
        GrantUsage {
            granted_at: self.granted_at,
            // The counts only grow from 0; a negative one was edited by hand and counts as 0.
            access_count: u64::try_from(self.access_count).unwrap_or(0),
            // Written by `count_access` only; one that does not parse counts as no day.
            counted_day: self.counted_day.as_deref().and_then(|day| NaiveDate::parse_from_str(day, DAY_FORMAT).ok()),
            day_count: u64::try_from(self.day_count).unwrap_or(0),
        }
    }
}

/// How `counted_day` is written: comparable as text on both backends.
const DAY_FORMAT: &str = "%Y-%m-%d";

/// Who a consent is from.
#[derive(Debug, Clone, Copy)]
pub struct ConsentSubject<'a> {
    /// The user's id, or the client's own id for client credentials.
    pub subject: &'a str,
    pub user_id: Option<&'a str>,
    pub client_id: &'a str,
}

pub fn find_default(
    connection: &mut DbConnection,
    subject: &str,
    client_id: &str,
) -> Result<Option<String>, StorageError> {
    let query = consents::table
        .filter(consents::subject.eq(subject))
        .filter(consents::client_id.eq(client_id))
        // The column itself, not `= ?`: with a bound value SQLite cannot know at prepare time
        // that the partial index `consents_default` applies, and re-prepares the statement on
        // every execution (a fifth of a client-credentials request's time, in a profile).
        .filter(consents::is_default)
        .select(consents::id);
    Ok(match connection {
        DbConnection::Postgresql(pg) => query.for_key_share().first(pg).optional()?,
        DbConnection::Sqlite(sqlite) => query.first(sqlite).optional()?,
    })
}

/// The consent, if it still exists. A flow about to write under a consent reads it here.
///
/// On PostgreSQL the read takes a key-share lock until the flow's transaction ends: a
/// revocation (`end_consents`) locks the consent for update first, so it waits for the flow
/// and then ends what the flow wrote, and a flow that comes after it finds no consent (rather
/// than writing a code or token whose consent vanished, a foreign-key failure). The key-share
/// lock does not block another flow updating the consent's `updated_at`. SQLite needs no lock:
/// its write transactions run one at a time.
pub fn find_consent(connection: &mut DbConnection, id: &str) -> Result<Option<String>, StorageError> {
    let query = consents::table.find(id).select(consents::id);
    Ok(match connection {
        DbConnection::Postgresql(pg) => query.for_key_share().first(pg).optional()?,
        DbConnection::Sqlite(sqlite) => query.first(sqlite).optional()?,
    })
}

/// The subject's default consent with the client (the one a plain authorization merges into):
/// `found`, the id the caller already read with its holdings, or a new one when there was none.
/// Returns its id.
pub fn default_consent(
    connection: &mut DbConnection,
    who: ConsentSubject<'_>,
    found: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, StorageError> {
    if let Some(id) = found {
        return Ok(id.to_string());
    }
    let id = format!("g_{}", random_token(16));
    // A savepoint, so a concurrent creation of the same default consent on PostgreSQL does not
    // abort the caller's transaction: the loser reads the winner's row.
    let inserted = connection
        .transaction(|connection| {
            diesel::insert_into(consents::table)
                .values((
                    consents::id.eq(&id),
                    consents::subject.eq(who.subject),
                    consents::user_id.eq(who.user_id),
                    consents::client_id.eq(who.client_id),
                    consents::is_default.eq(true),
                    consents::created_at.eq(now.naive_utc()),
                    consents::updated_at.eq(now.naive_utc()),
                ))
                .execute(connection)
        })
        .map_err(StorageError::from);
    match inserted {
        Ok(_) => Ok(id),
        Err(StorageError::UniqueViolation) => find_default(connection, who.subject, who.client_id)?.ok_or_else(|| {
            StorageError::CorruptColumn { column: "consents", detail: "default consent vanished".into() }
        }),
        Err(error) => Err(error),
    }
}

/// The subject's default consent with the client and its grants. On SQLite one query (a
/// client-credentials request makes it every time); on PostgreSQL the consent is read with
/// [`find_default`]'s key-share lock first, which an outer join cannot take.
pub fn default_with_grants(
    connection: &mut DbConnection,
    subject: &str,
    client_id: &str,
) -> Result<Option<(String, Vec<GrantRow>)>, StorageError> {
    let DbConnection::Sqlite(sqlite) = connection else {
        let Some(consent_id) = find_default(connection, subject, client_id)? else { return Ok(None) };
        let grants = grants_of(connection, &consent_id)?;
        return Ok(Some((consent_id, grants)));
    };
    type Row = (
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<chrono::NaiveDateTime>,
        Option<i64>,
        Option<String>,
        Option<i64>,
    );
    let rows: Vec<Row> = consents::table
        .left_join(grants::table)
        .filter(consents::subject.eq(subject))
        .filter(consents::client_id.eq(client_id))
        .filter(consents::is_default)
        .select((
            consents::id,
            grants::id.nullable(),
            grants::scope_name.nullable(),
            grants::scope.nullable(),
            grants::granted_at.nullable(),
            grants::access_count.nullable(),
            grants::counted_day.nullable(),
            grants::day_count.nullable(),
        ))
        .load(sqlite)?;
    let Some(consent_id) = rows.first().map(|row| row.0.clone()) else { return Ok(None) };
    let grants = rows
        .into_iter()
        .filter_map(|(consent_id, id, scope_name, scope, granted_at, access_count, counted_day, day_count)| {
            Some(GrantRow {
                id: id?,
                consent_id,
                scope_name: scope_name?,
                scope: scope?,
                granted_at: granted_at?.and_utc(),
                access_count: access_count?,
                counted_day,
                day_count: day_count?,
            })
        })
        .collect();
    Ok(Some((consent_id, grants)))
}

pub fn grants_of(connection: &mut DbConnection, consent_id: &str) -> Result<Vec<GrantRow>, StorageError> {
    Ok(grants::table.filter(grants::consent_id.eq(consent_id)).select(GrantRow::as_select()).load(connection)?)
}

/// Starts the grant of each scope anew (its days from `now`, its count from 0), adding the
/// ones the consent does not have yet, and marks the consent updated: a fresh decision of the
/// user's.
pub fn start(
    connection: &mut DbConnection,
    tree: &ScopeTree,
    consent_id: &str,
    scopes: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    restart_existing(connection, consent_id, scopes, now)?;
    add_missing(connection, tree, consent_id, scopes, now)
}

/// Adds a grant, starting now, for each scope the consent does not have. An existing one is
/// left as it is, even one another request added a moment ago: only a user's decision
/// (`start`) or an administrator's renewal restarts a count. `tree` says which registry scope
/// each one is (`ScopeTree::definition`); one it does not know is not granted.
pub fn add_missing(
    connection: &mut DbConnection,
    tree: &ScopeTree,
    consent_id: &str,
    scopes: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    for (scope, definition) in scopes.iter().filter_map(|scope| Some((scope, tree.definition(scope)?))) {
        // A savepoint per insert, so a unique violation does not abort the caller's
        // transaction on PostgreSQL.
        let inserted = connection
            .transaction(|connection| {
                diesel::insert_into(grants::table)
                    .values((
                        grants::consent_id.eq(consent_id),
                        grants::scope_name.eq(&definition.name),
                        grants::scope.eq(scope),
                        grants::granted_at.eq(now.naive_utc()),
                        grants::access_count.eq(0i64),
                    ))
                    .execute(connection)
            })
            .map_err(StorageError::from);
        match inserted {
            Ok(_) | Err(StorageError::UniqueViolation) => {}
            Err(error) => return Err(error),
        }
    }
    if !scopes.is_empty() {
        diesel::update(consents::table.find(consent_id))
            .set(consents::updated_at.eq(now.naive_utc()))
            .execute(connection)?;
    }
    Ok(())
}

/// Starts the existing grants among `scopes` anew; scopes without a grant get theirs at their
/// first issuance.
pub fn restart_existing(
    connection: &mut DbConnection,
    consent_id: &str,
    scopes: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    let names: Vec<&String> = scopes.iter().collect();
    let mut restarted = 0;
    for chunk in names.chunks(500) {
        restarted += diesel::update(
            grants::table.filter(grants::consent_id.eq(consent_id)).filter(grants::scope.eq_any(chunk.iter().copied())),
        )
        .set((grants::granted_at.eq(now.naive_utc()), grants::access_count.eq(0i64)))
        .execute(connection)?;
    }
    Ok(restarted)
}

/// Counts one access against a grant if it has any left, of all (`limits.total`) and of
/// `today` (`limits.per_day`; 0 = no such limit): a single conditional UPDATE, so under any
/// concurrency, on either backend and from any number of instances, at most that many calls
/// succeed, in all and on each day. Returns the new counts, or which limit refused it.
pub fn count_access(
    connection: &mut DbConnection,
    grant_id: i64,
    limits: AccessLimits,
    today: NaiveDate,
) -> Result<CountOutcome, StorageError> {
    use diesel::dsl::case_when;
    let _gate = super::SqliteWriteGate::for_connection(connection);
    let today = today.format(DAY_FORMAT).to_string();
    let cap = |max: u32| if max == 0 { i64::MAX } else { i64::from(max) };
    let (total_cap, day_cap) = (cap(limits.total), cap(limits.per_day));
    let day_open = grants::counted_day.is_null().or(grants::counted_day.ne(&today)).or(grants::day_count.lt(day_cap));
    // Every SET reads the row as it was: the day's count restarts at 1 on a new day.
    let counted =
        diesel::update(grants::table.find(grant_id).filter(grants::access_count.lt(total_cap)).filter(day_open))
            .set((
                grants::access_count.eq(grants::access_count + 1),
                grants::day_count.eq(case_when(grants::counted_day.eq(&today), grants::day_count + 1).otherwise(1_i64)),
                grants::counted_day.eq(&today),
            ))
            .returning((grants::access_count, grants::day_count))
            .get_result::<(i64, i64)>(connection)
            .optional()?;
    if let Some((total, day)) = counted {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        return Ok(CountOutcome::Counted(Counted { total: count(total), today: count(day) }));
    }
    // Which limit refused it: read what the winners left.
    let total: Option<i64> = grants::table.find(grant_id).select(grants::access_count).first(connection).optional()?;
    Ok(match total {
        Some(total) if total < total_cap => CountOutcome::ExhaustedToday,
        _ => CountOutcome::Exhausted,
    })
}

/// Grants with their consents, filtered by user and/or client, for the admin listing and the
/// account page.
pub fn list(
    connection: &mut DbConnection,
    user_id: Option<&str>,
    client_id: Option<&str>,
) -> Result<Vec<(ConsentRow, GrantRow)>, StorageError> {
    let mut query = grants::table
        .inner_join(consents::table)
        .select((ConsentRow::as_select(), GrantRow::as_select()))
        .order(grants::id.asc())
        .into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(consents::user_id.eq(user_id));
    }
    if let Some(client_id) = client_id {
        query = query.filter(consents::client_id.eq(client_id));
    }
    Ok(query.load(connection)?)
}

/// For each of the named scopes that has grants, when its newest grant started: a scope's
/// grants lapse oldest first, so the newest one tells whether any has not lapsed (the
/// delete-in-use check), without loading every user's grant.
pub fn newest_grant_per_scope(
    connection: &mut DbConnection,
    names: &BTreeSet<String>,
) -> Result<Vec<(String, DateTime<Utc>)>, StorageError> {
    let names: Vec<&String> = names.iter().collect();
    let mut newest = Vec::new();
    for chunk in names.chunks(500) {
        let rows: Vec<(String, Option<NaiveDateTime>)> = grants::table
            .filter(grants::scope_name.eq_any(chunk.iter().copied()))
            .group_by(grants::scope_name)
            .select((grants::scope_name, diesel::dsl::max(grants::granted_at)))
            .load(connection)?;
        newest.extend(rows.into_iter().filter_map(|(name, at)| at.map(|at| (name, at.and_utc()))));
    }
    Ok(newest)
}

/// A grant of one of the named scopes: (client id, user id, subject, scope, start), newest first,
/// at most `limit`; for telling an administrator who holds a subtree.
pub type HeldScope = (String, Option<String>, String, String, DateTime<Utc>);

pub fn grants_among(
    connection: &mut DbConnection,
    names: &BTreeSet<String>,
    limit: i64,
) -> Result<Vec<HeldScope>, StorageError> {
    let names: Vec<&String> = names.iter().collect();
    let rows: Vec<(String, Option<String>, String, String, NaiveDateTime)> = grants::table
        .inner_join(consents::table)
        .filter(grants::scope_name.eq_any(names))
        .select((consents::client_id, consents::user_id, consents::subject, grants::scope_name, grants::granted_at))
        .order(grants::granted_at.desc())
        .limit(limit)
        .load(connection)?;
    Ok(rows
        .into_iter()
        .map(|(client, user, subject, scope, at)| (client, user, subject, scope, at.and_utc()))
        .collect())
}

/// Ends everything the subject gave the client (SPEC: revoking an app ends its grants, access
/// tokens, refresh families and any authorization code not yet redeemed). Returns how many
/// consents there were.
pub fn end_consents(
    connection: &mut DbConnection,
    subject: &str,
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    // Codes first: a code exchange holds its code's row and then reads the consent, so taking
    // the consent first could deadlock with it. This waits for an exchange in flight instead.
    diesel::delete(
        authorization_codes::table
            .filter(authorization_codes::client_id.eq(client_id))
            .filter(authorization_codes::user_id.eq(subject))
            .filter(authorization_codes::used_at.is_null()),
    )
    .execute(connection)?;
    // Then wait for flows writing under these consents to finish (see `find_consent`), so the
    // updates below see what they wrote. A code minted meanwhile dies with its consent
    // (ON DELETE CASCADE).
    if let DbConnection::Postgresql(pg) = connection {
        consents::table
            .filter(consents::client_id.eq(client_id))
            .filter(consents::subject.eq(subject))
            .select(consents::id)
            .for_update()
            .load::<String>(pg)?;
    }
    diesel::update(
        refresh_families::table
            .filter(refresh_families::client_id.eq(client_id))
            .filter(refresh_families::subject.eq(subject))
            .filter(refresh_families::revoked_at.is_null()),
    )
    .set(refresh_families::revoked_at.eq(now.naive_utc()))
    .execute(connection)?;
    diesel::update(
        access_tokens::table
            .filter(access_tokens::client_id.eq(client_id))
            .filter(access_tokens::subject.eq(subject))
            .filter(access_tokens::revoked_at.is_null()),
    )
    .set(access_tokens::revoked_at.eq(now.naive_utc()))
    .execute(connection)?;
    // The consents' grants go with them (ON DELETE CASCADE).
    Ok(diesel::delete(consents::table.filter(consents::client_id.eq(client_id)).filter(consents::subject.eq(subject)))
        .execute(connection)?)
}

/// How many grants are on record (in use or not: whether one is usable is the entitlement
/// rule's to say, per grant, never SQL's).
pub fn count(connection: &mut DbConnection) -> Result<i64, StorageError> {
    Ok(grants::table.count().get_result(connection)?)
}

/// A new, non-default consent (Grant Management `create`): another grant beside the others.
pub fn create_consent(
    connection: &mut DbConnection,
    who: ConsentSubject<'_>,
    now: DateTime<Utc>,
) -> Result<String, StorageError> {
    let id = format!("g_{}", random_token(16));
    diesel::insert_into(consents::table)
        .values((
            consents::id.eq(&id),
            consents::subject.eq(who.subject),
            consents::user_id.eq(who.user_id),
            consents::client_id.eq(who.client_id),
            consents::is_default.eq(false),
            consents::created_at.eq(now.naive_utc()),
            consents::updated_at.eq(now.naive_utc()),
        ))
        .execute(connection)?;
    Ok(id)
}

/// One consent (a Grant Management grant) by its id.
pub fn find_consent_row(connection: &mut DbConnection, id: &str) -> Result<Option<ConsentRow>, StorageError> {
    Ok(consents::table.find(id).select(ConsentRow::as_select()).first(connection).optional()?)
}

/// Marks the consent changed now (`updated_at`, which Grant Management's query shows).
pub fn touch_consent(connection: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<(), StorageError> {
    diesel::update(consents::table.find(id)).set(consents::updated_at.eq(now.naive_utc())).execute(connection)?;
    Ok(())
}

/// Deletes the consent's grants of the named scopes, as granted (Grant Management `replace`).
pub fn remove_grants(
    connection: &mut DbConnection,
    consent_id: &str,
    scopes: &BTreeSet<&String>,
) -> Result<usize, StorageError> {
    if scopes.is_empty() {
        return Ok(0);
    }
    let scopes: Vec<&String> = scopes.iter().copied().collect();
    Ok(diesel::delete(grants::table.filter(grants::consent_id.eq(consent_id)).filter(grants::scope.eq_any(scopes)))
        .execute(connection)?)
}

/// Ends one consent, as [`end_consents`] ends all of a subject's with a client: its unredeemed
/// codes, refresh families and access tokens, then the consent with its grants. Whether it
/// existed.
pub fn end_consent(connection: &mut DbConnection, consent_id: &str, now: DateTime<Utc>) -> Result<bool, StorageError> {
    diesel::delete(
        authorization_codes::table
            .filter(authorization_codes::consent_id.eq(consent_id))
            .filter(authorization_codes::used_at.is_null()),
    )
    .execute(connection)?;
    if let DbConnection::Postgresql(pg) = connection {
        consents::table.find(consent_id).select(consents::id).for_update().load::<String>(pg)?;
    }
    diesel::update(
        refresh_families::table
            .filter(refresh_families::consent_id.eq(consent_id))
            .filter(refresh_families::revoked_at.is_null()),
    )
    .set(refresh_families::revoked_at.eq(now.naive_utc()))
    .execute(connection)?;
    diesel::update(
        access_tokens::table
            .filter(access_tokens::consent_id.eq(consent_id))
            .filter(access_tokens::revoked_at.is_null()),
    )
    .set(access_tokens::revoked_at.eq(now.naive_utc()))
    .execute(connection)?;
    Ok(diesel::delete(consents::table.find(consent_id)).execute(connection)? > 0)
}
