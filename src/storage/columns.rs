//! Typed columns: how domain values travel through the portable column types of `schema.rs`
//! (enums and lists as `Text`, instants as a UTC `Timestamp`), so rows hold `SecurityLevel`,
//! `Vec<GrantType>` or `DateTime<Utc>` and nothing parses by hand.
//!
//! Every impl is generic over the backend and bounded only by what that backend already does
//! for `str`, `String` and `NaiveDateTime` (`where str: ToSql<Text, DB>`, …). That one bound
//! serves PostgreSQL, SQLite and the `MultiBackend` that `#[derive(MultiConnection)]` generates
//! for `DbConnection`, which has those primitive impls and no others: its `to_sql` writes no
//! bytes, it keeps a reference to the primitive value and binds it later on whichever backend
//! is connected. So an impl here must delegate to a primitive, and hand over a `&str` or a
//! `NaiveDateTime` that lives in `self`, never a temporary: that is why [`JsonList`] keeps its
//! JSON text and [`UtcTimestamp`] keeps a naive UTC value.
//!
//! The domain stays free of diesel: rows declare the domain type and name the wrapper it is
//! stored through, e.g.
//! `#[diesel(serialize_as = TextEnum<SecurityLevel>, deserialize_as = TextEnum<SecurityLevel>)]`.
//! A stored value that does not decode fails the query with [`InvalidStoredValue`], which
//! `StorageError` turns into `CorruptColumn` (a logged 500), never a panic.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow, Queryable};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{Nullable, Text, Timestamp};
use std::convert::Infallible;
use std::fmt::Debug;

use crate::domain::client::{AuthMethod, TokenFormat};
use crate::domain::scope::{GrantType, SecurityLevel, Visibility};
use crate::secrets::TokenHash;

/// A value stored as its text form: the form the API and the documents use too.
pub trait TextValue: Sized + Debug {
    /// What the value is, for the message of a stored value that does not decode.
    const KIND: &'static str;
    fn as_text(&self) -> &str;
    fn from_text(text: &str) -> Result<Self, String>;
}

impl TextValue for SecurityLevel {
    const KIND: &'static str = "security level";
    fn as_text(&self) -> &str {
        self.as_str()
    }
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse()
    }
}

impl TextValue for Visibility {
    const KIND: &'static str = "visibility";
    fn as_text(&self) -> &str {
        self.as_str()
    }
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse()
    }
}

impl TextValue for TokenFormat {
    const KIND: &'static str = "token format";
    fn as_text(&self) -> &str {
        self.as_str()
    }
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse()
    }
}

impl TextValue for AuthMethod {
    const KIND: &'static str = "token endpoint auth method";
    fn as_text(&self) -> &str {
        self.as_str()
    }
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse()
    }
}

impl TextValue for GrantType {
    const KIND: &'static str = "grant type";
    fn as_text(&self) -> &str {
        self.as_str()
    }
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse()
    }
}

/// Free text (redirect URIs, operations): any string is valid.
impl TextValue for String {
    const KIND: &'static str = "text";
    fn as_text(&self) -> &str {
        self
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
}

/// A stored value that does not decode: the database was edited by hand or written by a newer
/// version. Carried through diesel's deserialization error to `StorageError::CorruptColumn`.
#[derive(Debug, thiserror::Error)]
#[error("stored {kind} is invalid: {detail}")]
pub struct InvalidStoredValue {
    pub kind: &'static str,
    pub detail: String,
}

fn invalid(kind: &'static str, detail: String) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(InvalidStoredValue { kind, detail })
}

/// An enum (or any [`TextValue`]) in a `Text` column, as its text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct TextEnum<T>(pub T);

impl<T> From<T> for TextEnum<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> TextEnum<T> {
    /// What a row's `deserialize_as` calls. diesel's derive accepts an inherent `try_into` where
    /// the orphan rule forbids `impl<T> From<TextEnum<T>> for T`.
    pub fn try_into(self) -> Result<T, Infallible> {
        Ok(self.0)
    }
}

impl<T: TextValue, DB: Backend> ToSql<Text, DB> for TextEnum<T>
where
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.0.as_text().to_sql(out)
    }
}

impl<T: TextValue, DB: Backend> FromSql<Text, DB> for TextEnum<T>
where
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let text = String::from_sql(bytes)?;
        T::from_text(&text).map(Self).map_err(|detail| invalid(T::KIND, detail))
    }
}

/// A list in a `Text` column as a JSON array of its items' text forms: portable, where
/// MultiConnection has no array type. Keeps its JSON text for `to_sql` to borrow.
#[derive(Debug, Clone, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct JsonList<T> {
    items: Vec<T>,
    json: String,
}

impl<T: TextValue> From<Vec<T>> for JsonList<T> {
    fn from(items: Vec<T>) -> Self {
        let json = serde_json::Value::from(items.iter().map(TextValue::as_text).collect::<Vec<_>>()).to_string();
        Self { items, json }
    }
}

impl<T> From<JsonList<T>> for Vec<T> {
    fn from(list: JsonList<T>) -> Self {
        list.items
    }
}

impl<T: TextValue> JsonList<T> {
    fn parse(json: String) -> Result<Self, InvalidStoredValue> {
        let texts: Vec<String> = serde_json::from_str(&json).map_err(|error| InvalidStoredValue {
            kind: "list",
            detail: format!("not a JSON array of strings: {error}"),
        })?;
        let items = texts
            .iter()
            .map(|text| T::from_text(text))
            .collect::<Result<_, _>>()
            .map_err(|detail| InvalidStoredValue { kind: T::KIND, detail })?;
        Ok(Self { items, json })
    }
}

impl<T: TextValue, DB: Backend> ToSql<Text, DB> for JsonList<T>
where
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.json.as_str().to_sql(out)
    }
}

impl<T: TextValue, DB: Backend> FromSql<Text, DB> for JsonList<T>
where
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(Self::parse(String::from_sql(bytes)?)?)
    }
}

/// An instant in a `Timestamp` column, as naive UTC: MultiConnection supports no
/// `Timestamptz`. Rows expose `DateTime<Utc>`; this is what they are stored through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Timestamp)]
pub struct UtcTimestamp(NaiveDateTime);

impl From<DateTime<Utc>> for UtcTimestamp {
    fn from(instant: DateTime<Utc>) -> Self {
        Self(instant.naive_utc())
    }
}

impl From<UtcTimestamp> for DateTime<Utc> {
    fn from(stored: UtcTimestamp) -> Self {
        stored.0.and_utc()
    }
}

impl<DB: Backend> ToSql<Timestamp, DB> for UtcTimestamp
where
    NaiveDateTime: ToSql<Timestamp, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.0.to_sql(out)
    }
}

impl<DB: Backend> FromSql<Timestamp, DB> for UtcTimestamp
where
    NaiveDateTime: FromSql<Timestamp, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        NaiveDateTime::from_sql(bytes).map(Self)
    }
}

/// [`UtcTimestamp`] in a nullable column. Its own type because a row's `Option<DateTime<Utc>>`
/// cannot convert from `Option<UtcTimestamp>` (both are foreign to this crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromSqlRow)]
pub struct NullableUtcTimestamp(Option<UtcTimestamp>);

impl From<Option<DateTime<Utc>>> for NullableUtcTimestamp {
    fn from(instant: Option<DateTime<Utc>>) -> Self {
        Self(instant.map(UtcTimestamp::from))
    }
}

impl From<NullableUtcTimestamp> for Option<DateTime<Utc>> {
    fn from(stored: NullableUtcTimestamp) -> Self {
        stored.0.map(DateTime::from)
    }
}

/// Bound as diesel binds any `Option`: NULL or the inner timestamp.
impl AsExpression<Nullable<Timestamp>> for NullableUtcTimestamp {
    type Expression = <Option<UtcTimestamp> as AsExpression<Nullable<Timestamp>>>::Expression;
    fn as_expression(self) -> Self::Expression {
        AsExpression::<Nullable<Timestamp>>::as_expression(self.0)
    }
}

impl<DB: Backend> FromSql<Nullable<Timestamp>, DB> for NullableUtcTimestamp
where
    NaiveDateTime: FromSql<Timestamp, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        UtcTimestamp::from_sql(bytes).map(|stored| Self(Some(stored)))
    }

    fn from_nullable_sql(bytes: Option<DB::RawValue<'_>>) -> deserialize::Result<Self> {
        bytes.map_or(Ok(Self(None)), Self::from_sql)
    }
}

// `TokenHash` is a column type in its own right (it is bound in lookups, `find(&hash)`, and
// sits in nullable columns), so it gets diesel's traits directly rather than a wrapper. They
// live here to keep diesel out of `secrets.rs`; without a derive, the expressions are the
// ones diesel builds for the hex text.

impl<DB: Backend> ToSql<Text, DB> for TokenHash
where
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.as_str().to_sql(out)
    }
}

impl<DB: Backend> FromSql<Text, DB> for TokenHash
where
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        String::from_sql(bytes).map(TokenHash::from_stored)
    }
}

impl<DB: Backend> Queryable<Text, DB> for TokenHash
where
    Self: FromSql<Text, DB>,
{
    type Row = Self;
    fn build(row: Self) -> deserialize::Result<Self> {
        Ok(row)
    }
}

impl AsExpression<Text> for TokenHash {
    type Expression = <String as AsExpression<Text>>::Expression;
    fn as_expression(self) -> Self::Expression {
        AsExpression::<Text>::as_expression(self.into_string())
    }
}

impl AsExpression<Nullable<Text>> for TokenHash {
    type Expression = <String as AsExpression<Nullable<Text>>>::Expression;
    fn as_expression(self) -> Self::Expression {
        AsExpression::<Nullable<Text>>::as_expression(self.into_string())
    }
}

impl<'a> AsExpression<Text> for &'a TokenHash {
    type Expression = <&'a str as AsExpression<Text>>::Expression;
    fn as_expression(self) -> Self::Expression {
        AsExpression::<Text>::as_expression(self.as_str())
    }
}

impl<'a> AsExpression<Nullable<Text>> for &'a TokenHash {
    type Expression = <&'a str as AsExpression<Nullable<Text>>>::Expression;
    fn as_expression(self) -> Self::Expression {
        AsExpression::<Nullable<Text>>::as_expression(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T: TextValue + PartialEq>(values: impl IntoIterator<Item = T>) {
        for value in values {
            assert_eq!(T::from_text(value.as_text()).unwrap(), value);
        }
    }

    #[test]
    fn every_enum_variant_reads_back_from_its_text_form() {
        round_trips(SecurityLevel::ALL);
        round_trips(GrantType::ALL);
        round_trips([Visibility::Public, Visibility::Private]);
        round_trips([TokenFormat::Jwt, TokenFormat::Opaque]);
    }

    #[test]
    fn lists_keep_the_json_text_of_earlier_versions() {
        // Rows written before typed columns (serde_json of the domain list) must still read.
        let grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
        let legacy = serde_json::to_string(&grant_types).unwrap();
        assert_eq!(JsonList::from(grant_types.clone()).json, legacy);
        assert_eq!(Vec::from(JsonList::<GrantType>::parse(legacy).unwrap()), grant_types);
        let operations = vec!["GET /accounts".to_string(), "say \"hi\"".to_string()];
        assert_eq!(JsonList::from(operations.clone()).json, serde_json::to_string(&operations).unwrap());
        assert_eq!(JsonList::from(Vec::<String>::new()).json, "[]");
    }

    #[test]
    fn a_list_that_does_not_decode_names_what_is_wrong() {
        let error = JsonList::<GrantType>::parse("not json".into()).unwrap_err();
        assert_eq!(error.kind, "list");
        let error = JsonList::<GrantType>::parse(r#"["implicit"]"#.into()).unwrap_err();
        assert_eq!(error.kind, "grant type");
        assert!(error.detail.contains("implicit"), "{}", error.detail);
    }
}
