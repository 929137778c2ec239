//! The one integration-test binary: the real server over HTTP, on SQLite by default and on
//! PostgreSQL when SCOPEGATE_TEST_POSTGRES_URL is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod browser_flow;
mod cli;
mod console;
mod daily_limits;
mod entitlement;
mod events;
mod fapi;
mod fuzz;
mod grant_management;
mod health;
mod helpers;
mod input;
mod jose;
mod keys;
mod limits;
mod metrics;
mod par;
mod parameterised;
mod pgbouncer;
mod scopes;
mod sessions;
mod sign_in;
mod storage;
mod tokens;
mod webhooks;
