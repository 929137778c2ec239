//! What the three oxide-auth flows share: one database connection behind a `RefCell`
//! (oxide-auth's primitives take `&self`), the narrow OAuth context, the request's clock, the
//! authenticated client, and the one refusal type.
//!
//! oxide-auth's own errors lose the reason (a refused scope and a database outage look alike),
//! so our primitives record why they refused here, and [`FlowCore::finish`] answers with that
//! reason. A storage failure is recorded as what it is, a 5xx, never as `invalid_grant`.

use chrono::{DateTime, Utc};
use oxide_auth::primitives::registrar::RegistrarError;
use std::cell::{RefCell, RefMut};

use crate::domain::client::Client;
use crate::error::AppError;
use crate::services::OAuthContext;
use crate::storage::DbConnection;

pub struct FlowCore<'a> {
    connection: RefCell<&'a mut DbConnection>,
    pub context: &'a OAuthContext<'a>,
    pub now: DateTime<Utc>,
    client: RefCell<Option<Client>>,
    refusal: RefCell<Option<AppError>>,
}

impl<'a> FlowCore<'a> {
    pub fn new(connection: &'a mut DbConnection, context: &'a OAuthContext<'a>, now: DateTime<Utc>) -> Self {
        Self {
            connection: RefCell::new(connection),
            context,
            now,
            client: RefCell::new(None),
            refusal: RefCell::new(None),
        }
    }

    /// The connection, for one primitive call at a time.
    pub fn db(&self) -> RefMut<'_, &'a mut DbConnection> {
        self.connection.borrow_mut()
    }

    pub fn client(&self) -> Option<Client> {
        self.client.borrow().clone()
    }

    pub fn set_client(&self, client: Client) {
        *self.client.borrow_mut() = Some(client);
    }

    /// Records why the flow stops. The first reason wins: later ones are its consequences.
    pub fn refuse(&self, error: impl Into<AppError>) {
        self.refusal.borrow_mut().get_or_insert(error.into());
    }

    /// Records the reason and gives oxide-auth the registrar error that matches it: a client's
    /// mistake is `Unspecified`, our own failure a `PrimitiveError`.
    pub fn refuse_registration(&self, error: impl Into<AppError>) -> RegistrarError {
        let error = error.into();
        let kind = if is_internal(&error) { RegistrarError::PrimitiveError } else { RegistrarError::Unspecified };
        self.refuse(error);
        kind
    }

    /// Records the reason and fails the primitive, in the `Result<_, ()>` shape oxide-auth's
    /// authorizer and issuer use (the unit error is theirs, not ours: the reason is kept here).
    #[allow(clippy::result_unit_err)]
    pub fn fail<T>(&self, error: impl Into<AppError>) -> Result<T, ()> {
        self.refuse(error);
        Err(())
    }

    /// The flow's answer: what it issued, or the recorded reason, else oxide-auth's own reason,
    /// else an internal error (logged by the error mapping, never a bare 500).
    pub fn finish<T>(self, issued: Option<T>, oxide_reason: Option<AppError>, flow: &str) -> Result<T, AppError> {
        match (self.refusal.into_inner(), issued) {
            (None, Some(issued)) => Ok(issued),
            (Some(refusal), _) => Err(refusal),
            (None, None) => Err(oxide_reason
                .unwrap_or_else(|| AppError::internal(anyhow::anyhow!("the {flow} flow failed without a reason")))),
        }
    }
}

impl FlowCore<'_> {
    /// The recorded reason of a flow that failed, else an internal error.
    pub fn into_failure(self, flow: &str) -> AppError {
        match self.finish::<()>(None, None, flow) {
            Err(error) => error,
            Ok(()) => AppError::internal(anyhow::anyhow!("the {flow} flow failed without a reason")),
        }
    }
}

pub fn is_internal(error: &AppError) -> bool {
    matches!(error, AppError::Internal(_) | AppError::Unavailable(_))
}

pub fn invalid_grant(description: &str) -> AppError {
    AppError::bad_request("invalid_grant", description)
}
