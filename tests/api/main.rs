//! Black-box tests: HTTP in, HTTP out, rows and keys as they end up. One binary, so it
//! links once; every test gets its own database and Redis prefix.

mod account;
mod admin;
mod authorize;
mod bad_input;
mod browser;
mod cli;
mod clients;
mod contract;
mod faults;
mod faults_postgres;
mod hardening;
mod health;
mod helpers;
mod hostile;
mod introspection;
mod jwks;
mod keys;
mod me;
mod oidc;
mod openapi;
mod passwords;
mod revocation;
mod revocation_feed;
mod scale_out;
mod telemetry;
mod token_password;
mod token_refresh;
mod topology;
mod upgrade;
mod verifier;
mod verifier_revocations;
