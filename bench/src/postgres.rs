//! The benchmark database, driven through `psql` (installed with pgbench): the data
//! preparation is plain SQL files in bench/sql, readable on their own.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

#[derive(Clone)]
pub struct Postgres {
    /// `postgres://user@host:port`, without a database.
    server: String,
    database: String,
    sql_dir: PathBuf,
}

impl Postgres {
    pub fn new(server: &str, database: &str, sql_dir: &Path) -> Self {
        Self {
            server: server.trim_end_matches('/').to_owned(),
            database: database.to_owned(),
            sql_dir: sql_dir.to_owned(),
        }
    }

    pub fn database_name(&self) -> &str {
        &self.database
    }

    pub fn database_url(&self) -> String {
        format!("{}/{}", self.server, self.database)
    }

    pub fn sql_file(&self, name: &str) -> PathBuf {
        self.sql_dir.join(name)
    }

    /// Drops the benchmark database, disconnecting whoever still uses it. Tessera
    /// creates it again (`tessera migrate`).
    pub fn drop_database(&self) -> anyhow::Result<()> {
        let name = self.database.replace('"', "\"\"");
        psql(
            &format!("{}/postgres", self.server),
            &[
                "-c",
                &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            ],
        )
        .map(drop)
    }

    /// One statement (or several, `;`-separated); its output unaligned, tuples only.
    pub fn query(&self, sql: &str) -> anyhow::Result<String> {
        psql(&self.database_url(), &["-c", sql]).map(|out| out.trim().to_owned())
    }

    pub fn query_number(&self, sql: &str) -> anyhow::Result<u64> {
        let out = self.query(sql)?;
        out.parse()
            .with_context(|| format!("expected a number from `{sql}`, got `{out}`"))
    }

    /// Runs a file of bench/sql with psql variables (`:name`, `:'name'` inside).
    pub fn run_file(&self, name: &str, variables: &[(&str, String)]) -> anyhow::Result<()> {
        let file = self.sql_file(name);
        let mut args = vec!["-f".to_owned(), file.display().to_string()];
        for (key, value) in variables {
            args.push("-v".to_owned());
            args.push(format!("{key}={value}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        psql(&self.database_url(), &args)
            .map(drop)
            .with_context(|| format!("running {}", file.display()))
    }
}

fn psql(url: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("psql")
        // No NOTICE chatter (`... does not exist, skipping`); errors still fail.
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url])
        .args(args)
        .output()
        .context("starting psql (is the PostgreSQL client installed?)")?;
    if !output.status.success() {
        bail!(
            "psql failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
