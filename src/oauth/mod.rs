//! The OAuth flows: our registrar, authorizer and issuer plugged into oxide-auth's state
//! machines (`core` holds what the three share), the token endpoint's dispatch and transaction
//! policy, and the demo app's back channel. oxide-auth's own responses are never sent: every
//! outcome is mapped to an RFC 6749 answer here. What a flow may grant is
//! `domain::entitlement`'s to say.

pub mod authorization;
pub mod client_credentials;
pub mod code_exchange;
pub mod core;
pub mod demo_app;
pub mod demo_payments;
pub mod extensions;
pub mod introspection_endpoint;
pub mod token_endpoint;
