//! oxide-auth glue: our registrar, issuer and requests plugged into its flows. oxide-auth's
//! own responses are never sent: every outcome is mapped to an RFC 6749 answer here.

pub mod authorization;
pub mod client_credentials;
pub mod code_exchange;
pub mod core;
pub mod extensions;
