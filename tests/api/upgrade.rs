//! Upgrading a database that holds sessions and refresh tokens of the random format
//! (before generations): the documented one-time migration (README, "Upgrading").

use diesel::migration::{MigrationConnection, MigrationSource};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_migrations::{FileBasedMigrations, MigrationHarness};

use crate::helpers::{assert_oauth_error, spawn};

/// The first migration of the generation format.
const GENERATIONS: &str = "2026-12-01-000103_refresh_generation";

/// Creates the app's database at the last migration before generations, with one live
/// session of the old format; returns the old refresh token.
fn database_before_generations(url: &str) -> String {
    let server_url = url::Url::parse(url).unwrap();
    let name = server_url.path().trim_start_matches('/').to_owned();
    let mut admin_url = server_url.clone();
    admin_url.set_path("/postgres");
    let mut admin = PgConnection::establish(admin_url.as_str()).unwrap();
    diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .unwrap();

    let mut conn = PgConnection::establish(url).unwrap();
    let source =
        FileBasedMigrations::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).unwrap();
    let mut migrations = MigrationSource::<diesel::pg::Pg>::migrations(&source).unwrap();
    migrations.sort_by_key(|m| m.name().to_string());
    conn.setup().unwrap();
    for migration in migrations
        .iter()
        .take_while(|m| m.name().to_string() != GENERATIONS)
    {
        conn.run_migration(migration.as_ref()).unwrap();
    }

    let old = "rt_W3IBR7aRjfwZuqDXdnyrdbduF5mIN9BK9D8vNGPFNQ8".to_owned();
    diesel::sql_query(
        "INSERT INTO users (id, username, password_hash, roles)
         VALUES ('0190a0a0-0000-7000-8000-000000000001', 'alice', 'x', '{editor}')",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query(
        "INSERT INTO sessions (id, user_id, client_id, scope, expires_at)
         VALUES ('0190a0a0-0000-7000-8000-0000000000aa', '0190a0a0-0000-7000-8000-000000000001',
                 'tessera', 'profile', now() + interval '30 days')",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at)
         VALUES (sha256(convert_to($1, 'UTF8')), '0190a0a0-0000-7000-8000-0000000000aa',
                 now() + interval '14 days')",
    )
    .bind::<Text, _>(&old)
    .execute(&mut conn)
    .unwrap();
    old
}

#[tokio::test]
async fn a_refresh_token_of_the_random_format_is_invalid_grant_after_the_upgrade() {
    let app = spawn();
    let url = app.settings().database.url.clone();
    let old = database_before_generations(&url);

    let app = app.start().await;

    let res = app.refresh_grant(&old).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    assert_eq!(
        app.count(
            "SELECT count(*) FROM sessions
              WHERE revoked_reason = 'refresh_token_format_upgrade'
                AND username = 'alice' AND roles = '{editor}'"
        ),
        1,
        "the old session ended, its row carried over"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'refresh_tokens'"
        ),
        0
    );
    // Logging in again starts a chain of the new format.
    app.create_user("bob", &[]).await;
    let fresh = app.login("bob").await;
    app.refresh(&fresh.refresh_token).await;
}
