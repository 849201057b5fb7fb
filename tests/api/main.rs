//! Black-box tests: HTTP in, HTTP out, rows and keys as they end up. One binary, so it
//! links once; every test gets its own database and Redis prefix.

mod bad_input;
mod cli;
mod health;
mod helpers;
mod jwks;
mod me;
mod token_password;
mod token_refresh;
