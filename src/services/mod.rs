//! Operations shared by the CLI and the HTTP layer: each validates with the domain rules,
//! does the expensive work (hashing) and stores through `storage`, in one place.

pub mod account;
pub mod bearer;
pub mod clients;
pub mod demo;
pub mod housekeeping;
pub mod introspection;
pub mod registry;
pub mod revocation;
pub mod tokens;
pub mod users;
