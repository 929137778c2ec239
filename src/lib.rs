//! scopegate: an OAuth 2.0 authorization server whose scopes form an administered tree.

pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod oauth;
pub mod secrets;
pub mod services;
pub mod startup;
pub mod state;
pub mod storage;
pub mod views;
