//! The rules of scopegate, free of HTTP and SQL: they take values (and the current time) and
//! return decisions.

pub mod client;
pub mod client_assertion;
pub mod clock;
pub mod consent;
pub mod dpop;
pub mod entitlement;
pub mod event;
pub mod fapi;
pub mod grant_management;
pub mod jose;
pub mod limits;
pub mod negotiation;
pub mod pkce;
pub mod scope;
pub mod scope_document;
pub mod scope_tree;
pub mod session;
pub mod sign_in_throttle;
pub mod token;
pub mod user;
pub mod webhook;
