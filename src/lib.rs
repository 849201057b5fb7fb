//! Tessera: a standalone OAuth-style token service.
//!
//! `http` parses and authorises, `auth` holds the rules, `store` persists; data flows
//! one way. `startup` wires them into a server.

pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod telemetry;
