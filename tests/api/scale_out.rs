//! Several instances on the engines a scaled-out deployment runs: a Redis Cluster, Redis
//! behind Sentinels, a PostgreSQL primary with a standby. Each test starts its own
//! servers (`topology`) and three Tessera instances on one database and one key prefix,
//! and checks what users see while the servers fail over and move data.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::helpers::{spawn, tokens_of, Spawn, TestApp, Tokens, PASSWORD};
use crate::topology::{redis_on, PostgresPair, RedisCluster, RedisSentinels};

/// Three instances on the database of `first` and one key prefix: one deployment.
/// Key changes reach the others only by Redis's announcement (their own key refresh is
/// an hour away).
async fn three(first: Spawn, also: impl Fn(Spawn) -> Spawn) -> [TestApp; 3] {
    let prefix = format!("scale:{}:", uuid::Uuid::new_v4().simple());
    let configure = |s: Spawn| {
        also(s)
            .with("TESSERA_REDIS_PREFIX", &prefix)
            .with("TESSERA_KEY_REFRESH_INTERVAL", "1h")
            .with("TESSERA_JWKS_MAX_AGE", "0")
    };
    let a = configure(first).start().await;
    let b = configure(spawn()).sharing_database_of(&a).start().await;
    let c = configure(spawn()).sharing_database_of(&a).start().await;
    for app in [&a, &b, &c] {
        let ready = app.api.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "ready on PostgreSQL and Redis");
    }
    [a, b, c]
}

fn on_cluster(cluster: &RedisCluster) -> impl Fn(Spawn) -> Spawn + '_ {
    move |s| s.with("TESSERA_REDIS_CLUSTER_NODES", &cluster.nodes())
}

async fn me(app: &TestApp, access_token: &str) -> u16 {
    app.get_with_token("/v1/me", access_token)
        .await
        .status()
        .as_u16()
}

async fn revoke(app: &TestApp, token: &str) {
    let res = app.post_form("/oauth/revoke", &[("token", token)]).await;
    assert_eq!(res.status(), 200);
}

async fn kids(app: &TestApp) -> Vec<String> {
    crate::keys::kids(&crate::keys::jwks(app).await)
}

/// Polls `/v1/me` with both tokens on every instance until `limit`: the revoked one must
/// never be accepted, and the live one must end up accepted everywhere (503 on the way
/// is allowed: Redis is failing over). Returns how many 503s were seen.
async fn never_wrong_and_heals(
    apps: &[TestApp],
    live: &str,
    revoked: &str,
    limit: Duration,
) -> usize {
    let started = Instant::now();
    let mut unavailable = 0;
    loop {
        let mut healed = true;
        for app in apps {
            let revoked_status = me(app, revoked).await;
            assert!(
                matches!(revoked_status, 401 | 503),
                "a revoked token got {revoked_status}"
            );
            let live_status = me(app, live).await;
            assert!(
                matches!(live_status, 200 | 503),
                "a live token got {live_status}"
            );
            unavailable += usize::from(revoked_status == 503) + usize::from(live_status == 503);
            healed &= revoked_status == 401 && live_status == 200;
        }
        if healed {
            return unavailable;
        }
        assert!(started.elapsed() < limit, "not healed within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn three_instances_on_a_redis_cluster_act_as_one() {
    let cluster = RedisCluster::start(3, 0);
    let apps = three(
        spawn()
            .with("TESSERA_LOGIN_DELAY_AFTER", "3")
            .with("TESSERA_LOGIN_LOCKOUT_AFTER", "3")
            .with("TESSERA_LOGIN_LOCKOUT", "60s"),
        |s| {
            on_cluster(&cluster)(s)
                .with("TESSERA_LOGIN_DELAY_AFTER", "3")
                .with("TESSERA_LOGIN_LOCKOUT_AFTER", "3")
                .with("TESSERA_LOGIN_LOCKOUT", "60s")
        },
    )
    .await;
    let [a, b, c] = &apps;
    a.create_user("alice", &[]).await;
    let first = a.login("alice").await;

    // A refresh race across the instances: one successor.
    let racers = (0..48).map(|i| apps[i % 3].refresh_grant(&first.refresh_token));
    let mut successors = HashSet::new();
    for res in futures_util::future::join_all(racers).await {
        assert_eq!(res.status(), 200, "every racer succeeds");
        successors.insert(tokens_of(res).await.refresh_token);
    }
    assert_eq!(successors.len(), 1, "one and the same new refresh token");
    assert_eq!(a.count("SELECT generation FROM sessions"), 1);

    // A revocation through one is enforced by all, at once.
    let live = a.login("alice").await;
    assert_eq!(me(c, &first.access_token).await, 200);
    revoke(b, &first.access_token).await;
    for app in &apps {
        assert_eq!(me(app, &first.access_token).await, 401);
        assert_eq!(me(app, &live.access_token).await, 200);
    }

    // A key rotation through one is published by all (announced over the cluster).
    let before = kids(a).await;
    tessera::auth::keys::rotate(&a.tessera, true, &tessera::auth::Actor::command_line())
        .await
        .unwrap();
    let after = kids(a).await;
    assert_ne!(before, after);
    let started = Instant::now();
    while kids(b).await != after || kids(c).await != after {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the others did not publish the rotation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The login throttle counts across instances: three failures through three
    // instances lock the account out on each.
    for app in &apps {
        assert_eq!(app.password_grant("alice", "wrong").await.status(), 400);
    }
    for app in &apps {
        assert_eq!(app.password_grant("alice", PASSWORD).await.status(), 429);
    }

    // Where the keys went: every key Tessera wrote is one of its known kinds; the whole
    // denylist (its entries, the ready marker) sits on one master, and the keys as a
    // whole spread over several slots.
    let prefix = &a.redis_prefix;
    let deny_tag = format!("{{{prefix}deny}}");
    let mut tags: HashSet<u16> = HashSet::new();
    let mut keys = Vec::new();
    let mut deny_nodes = HashSet::new();
    for port in cluster.masters() {
        let found: Vec<String> =
            redis_on(port, redis::cmd("KEYS").arg(format!("*{prefix}*"))).unwrap();
        for key in found {
            if key.starts_with(&deny_tag) {
                deny_nodes.insert(port);
            } else {
                assert!(
                    key.starts_with(&format!("{{{prefix}bf:"))
                        || key.starts_with(&format!("{prefix}bf:ip:")),
                    "{key}"
                );
            }
            tags.insert(cluster.slot_of(&key));
            keys.push(key);
        }
    }
    assert_eq!(deny_nodes.len(), 1, "the denylist on one master: {keys:?}");
    assert!(
        keys.iter().any(|k| k.ends_with(":ready")),
        "the ready marker is in the cluster: {keys:?}"
    );
    assert!(tags.len() >= 3, "keys spread over several slots: {keys:?}");
}

#[tokio::test]
async fn a_slot_migration_and_a_master_failover_inside_the_cluster_are_survived() {
    let mut cluster = RedisCluster::start(3, 1);
    let apps = three(spawn(), on_cluster(&cluster)).await;
    let [a, b, _] = &apps;
    a.create_user("alice", &[]).await;
    let live = a.login("alice").await;
    let revoked = a.login("alice").await;
    revoke(a, &revoked.access_token).await;
    assert_eq!(me(b, &revoked.access_token).await, 401);

    // Move the denylist's slot to another master while the instances check tokens.
    let deny_slot = cluster.slot_of(&format!("{{{}deny}}", a.redis_prefix));
    let from = cluster.master_of(deny_slot);
    let to = *cluster.masters().iter().find(|m| **m != from).unwrap();
    let moving = tokio::task::spawn_blocking({
        let cluster = cluster.view();
        move || {
            cluster.migrate_slot(deny_slot, to, || {
                std::thread::sleep(Duration::from_millis(100))
            })
        }
    });
    let heals = |limit: u64| {
        never_wrong_and_heals(
            &apps,
            &live.access_token,
            &revoked.access_token,
            Duration::from_secs(limit),
        )
    };
    while !moving.is_finished() {
        heals(10).await;
    }
    moving.await.unwrap();
    assert_eq!(cluster.master_of(deny_slot), to);
    heals(10).await;

    // Kill the master that now holds the denylist: its replica takes over.
    cluster.kill(to);
    let started = Instant::now();
    loop {
        let master = cluster.master_of(deny_slot);
        if master != to {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no failover");
        // Meanwhile no instance gives a wrong answer.
        never_wrong_or_down(&apps, &live.access_token, &revoked.access_token).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.wait_until_healthy();
    heals(20).await;

    // And a revocation after the failover is enforced by all.
    revoke(b, &live.access_token).await;
    for app in &apps {
        assert_eq!(me(app, &live.access_token).await, 401);
    }
}

/// One round of [`never_wrong_and_heals`]'s checks without waiting to heal.
async fn never_wrong_or_down(apps: &[TestApp], live: &str, revoked: &str) {
    for app in apps {
        let status = me(app, revoked).await;
        assert!(matches!(status, 401 | 503), "a revoked token got {status}");
        let status = me(app, live).await;
        assert!(matches!(status, 200 | 503), "a live token got {status}");
    }
}

#[tokio::test]
async fn tessera_follows_a_sentinel_failover_and_rewrites_what_it_lost() {
    let mut sentinels = RedisSentinels::start();
    let url = sentinels.url();
    let apps = three(spawn(), |s| s.with("REDIS_URL", &url)).await;
    let [a, b, c] = &apps;
    a.create_user("alice", &[]).await;
    let live = a.login("alice").await;
    let revoked = a.login("alice").await;
    let lost = a.login("alice").await;
    revoke(a, &revoked.access_token).await;
    revoke(a, &lost.access_token).await;
    for app in &apps {
        assert_eq!(me(app, &revoked.access_token).await, 401);
    }

    let old_master = sentinels.master_port;
    sentinels.fail_over();
    assert_ne!(sentinels.current_master(), old_master);
    never_wrong_and_heals(
        &apps,
        &live.access_token,
        &revoked.access_token,
        Duration::from_secs(20),
    )
    .await;

    // A replica promoted before the last writes reached it: the entry of the last
    // revocation is missing and the ready marker is behind. The instances notice the
    // marker going back and write the revocations since.
    let new_master = sentinels.current_master();
    let tag = format!("{{{}deny}}", a.redis_prefix);
    let marker: i64 = redis_on(new_master, redis::cmd("GET").arg(format!("{tag}:ready"))).unwrap();
    let jti = crate::helpers::claims_of(&lost.access_token)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let _: i64 = redis_on(
        new_master,
        redis::cmd("DEL").arg(format!("{tag}:jti:{jti}")),
    )
    .unwrap();
    let _: () = redis_on(
        new_master,
        redis::cmd("SET")
            .arg(format!("{tag}:ready"))
            .arg(marker - 1),
    )
    .unwrap();
    for app in &apps {
        assert_eq!(
            me(app, &lost.access_token).await,
            401,
            "the lost entry is rewritten first"
        );
    }
    let back: Option<String> = redis_on(
        new_master,
        redis::cmd("GET").arg(format!("{tag}:jti:{jti}")),
    )
    .unwrap();
    assert!(back.is_some(), "the lost entry is back in Redis");

    // Revocations after the failover are written to the new master, seen by all.
    revoke(c, &live.access_token).await;
    for app in [a, b, c] {
        assert_eq!(me(app, &live.access_token).await, 401);
    }
    // Logins (the throttle's scripts) work on the new master.
    assert_eq!(b.password_grant("alice", PASSWORD).await.status(), 200);
}

/// Refreshes one session's chain in a loop, round robin over the instances at `bases`,
/// keeping the last refresh token answered 200. A refused connection (an instance
/// gone) moves on to the next instance with the same token; statuses other than 200
/// and 503 (with Retry-After) fail the test.
async fn refresh_loop(
    bases: Vec<String>,
    mut current: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> (String, usize, usize) {
    let api = reqwest::Client::new();
    let (mut accepted, mut unavailable) = (0, 0);
    let mut i = 0;
    while !*stop.borrow() {
        let base = &bases[i % bases.len()];
        i += 1;
        let sent = api
            .post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", current.as_str()),
            ])
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        let Ok(res) = sent else { continue };
        match res.status().as_u16() {
            200 => {
                current = tokens_of(res).await.refresh_token;
                accepted += 1;
            }
            503 => {
                assert!(
                    res.headers().contains_key("retry-after"),
                    "503 without Retry-After"
                );
                unavailable += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!(
                "a refresh got {other}: {}",
                res.text().await.unwrap_or_default()
            ),
        }
    }
    (current, accepted, unavailable)
}

/// One [`refresh_loop`] per session, until `stop` says so.
fn refresh_loops(
    bases: &[String],
    sessions: &[Tokens],
    stop: &tokio::sync::watch::Sender<bool>,
) -> Vec<tokio::task::JoinHandle<(String, usize, usize)>> {
    sessions
        .iter()
        .map(|t| {
            tokio::spawn(refresh_loop(
                bases.to_vec(),
                t.refresh_token.clone(),
                stop.subscribe(),
            ))
        })
        .collect()
}

/// Every session's last accepted refresh token is the live link of its chain in the
/// database the instances use now: it refreshes (200), and the session row's
/// generation is that token's.
async fn every_accepted_refresh_kept(apps: &[TestApp], last: &[String]) {
    let app = &apps[0];
    for token in last {
        let chain = app.chain_of(token);
        assert_eq!(
            app.count(&format!(
                "SELECT generation FROM sessions WHERE id = '{}'",
                chain.session_id
            )),
            chain.generation as i64,
            "the session row is at the last accepted generation"
        );
        assert_eq!(app.refresh_grant(token).await.status(), 200);
    }
}

async fn logins(app: &TestApp, n: usize) -> Vec<Tokens> {
    let mut tokens = Vec::new();
    for _ in 0..n {
        tokens.push(app.login("alice").await);
    }
    tokens
}

#[tokio::test]
async fn a_postgres_failover_answers_503_then_heals_and_keeps_every_accepted_refresh() {
    let pg = PostgresPair::start();
    let apps = three(spawn().with("DATABASE_URL", &pg.url("tessera")), |s| {
        s.with("TESSERA_DATABASE_POOL_TIMEOUT", "500ms")
    })
    .await;
    apps[0].create_user("alice", &[]).await;
    let sessions = logins(&apps[0], 6).await;
    let bases: Vec<String> = apps.iter().map(|a| a.address.clone()).collect();
    let (stop, _) = tokio::sync::watch::channel(false);
    let loops = refresh_loops(&bases, &sessions, &stop);

    tokio::time::sleep(Duration::from_millis(700)).await;
    pg.crash_primary();
    // The seconds an operator (or Patroni) takes to promote: every instance answers 503.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for app in apps.iter() {
        let ready = app.api.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 503, "not ready without a writable database");
    }
    pg.promote_standby();
    // Heal without a restart: refreshes go through again on every instance.
    let started = Instant::now();
    loop {
        let mut all_ready = true;
        for app in apps.iter() {
            all_ready &= app
                .api
                .get(app.url("/readyz"))
                .send()
                .await
                .unwrap()
                .status()
                == 200;
        }
        if all_ready {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not healed after the promotion"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.send(true).unwrap();
    let mut last = Vec::new();
    let (mut accepted, mut unavailable) = (0, 0);
    for l in loops {
        let (token, ok, down) = l.await.unwrap();
        last.push(token);
        accepted += ok;
        unavailable += down;
    }
    assert!(unavailable > 0, "the failover was seen as 503s");
    assert!(
        accepted > 12,
        "refreshes went on before and after ({accepted})"
    );
    assert_eq!(
        pg.query(pg.standby_port, "SELECT pg_is_in_recovery()")
            .as_deref(),
        Some("f"),
        "the standby was promoted: the only writable server, so the refreshes since went there"
    );
    every_accepted_refresh_kept(&apps, &last).await;
}

#[tokio::test]
async fn killing_one_instance_mid_load_loses_no_accepted_refresh() {
    let cluster = RedisCluster::start(3, 0);
    let apps = three(spawn(), on_cluster(&cluster)).await;
    apps[0].create_user("alice", &[]).await;
    let sessions = logins(&apps[0], 6).await;
    // A fourth instance as a process of its own, to be killed with SIGKILL.
    let victim = Process::start(&apps[0], &cluster.nodes());
    let mut bases: Vec<String> = apps.iter().map(|a| a.address.clone()).collect();
    bases.push(victim.base.clone());
    let (stop, _) = tokio::sync::watch::channel(false);
    let loops = refresh_loops(&bases, &sessions, &stop);
    tokio::time::sleep(Duration::from_millis(800)).await;
    drop(victim);
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.send(true).unwrap();
    let mut last = Vec::new();
    for l in loops {
        let (token, accepted, _) = l.await.unwrap();
        assert!(accepted > 2, "each session went on refreshing ({accepted})");
        last.push(token);
    }
    every_accepted_refresh_kept(&apps, &last).await;
}

/// Tessera's binary serving on the database, master key and prefix of `like`, on the
/// Redis Cluster of `nodes`; killed (SIGKILL) when dropped.
struct Process {
    child: std::process::Child,
    base: String,
}

impl Process {
    fn start(like: &TestApp, nodes: &str) -> Self {
        let port = crate::topology::free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &like.database_url)
            .env("TESSERA_MASTER_KEY", &like.master_key)
            .env("REDIS_URL", crate::helpers::redis_url())
            .env("TESSERA_REDIS_CLUSTER_NODES", nodes)
            .env("TESSERA_REDIS_PREFIX", &like.redis_prefix)
            .env("TESSERA_ISSUER", crate::helpers::ISSUER)
            .env("TESSERA_BCRYPT_COST", "4")
            .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
            .env("TESSERA_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        crate::topology::wait_until("the process is ready", Duration::from_secs(30), || {
            let ready = std::process::Command::new("curl")
                .args([
                    "-sf",
                    "-o",
                    "/dev/null",
                    &format!("http://127.0.0.1:{port}/readyz"),
                ])
                .status();
            ready.is_ok_and(|s| s.success())
        });
        Self { child, base }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
