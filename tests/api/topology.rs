//! The servers of a scaled-out deployment, started for one test on free ports: a Redis
//! Cluster, a Redis master with a replica and three Sentinels, and a PostgreSQL primary
//! with a synchronous streaming standby. Each is killed (and its files removed) when the
//! test drops it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::faults_postgres::{pg_bin, run_pg_tool, running_as_root};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(kind: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tessera-{kind}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls `done` every 50 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One command to the Redis server (or Sentinel) on `port`.
pub fn redis_on<T: redis::FromRedisValue>(
    port: u16,
    cmd: &mut redis::Cmd,
) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = client.get_connection_with_timeout(Duration::from_millis(500))?;
    cmd.query(&mut conn)
}

fn start_redis(args: &[String]) -> Child {
    Command::new("redis-server")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed")
}

fn wait_for_ping(port: u16) {
    wait_until(
        &format!("redis on {port} answers"),
        Duration::from_secs(10),
        || redis_on::<String>(port, &mut redis::cmd("PING")).is_ok(),
    );
}

fn common_args(port: u16, dir: &std::path::Path) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A Redis Cluster: `masters` masters with `replicas` replicas each.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    children: Vec<Option<Child>>,
    /// Ports of the nodes killed so far.
    dead: Vec<u16>,
    /// `None` for a [`Self::view`], which owns no server.
    dir: Option<PathBuf>,
}

impl RedisCluster {
    pub fn start(masters: usize, replicas: usize) -> Self {
        let dir = temp_dir("redis-cluster");
        let ports: Vec<u16> = (0..masters * (1 + replicas)).map(|_| free_port()).collect();
        let children = ports
            .iter()
            .map(|&port| {
                let mut args = common_args(port, &dir);
                args.extend(
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &format!("nodes-{port}.conf"),
                        // Fail over within about two seconds of a master going away.
                        "--cluster-node-timeout",
                        "1000",
                        // A replica may take over however long ago it last heard its
                        // master (an idle test cluster's replicas hear little).
                        "--cluster-replica-validity-factor",
                        "0",
                    ]
                    .map(str::to_owned),
                );
                Some(start_redis(&args))
            })
            .collect();
        for &port in &ports {
            wait_for_ping(port);
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let status = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli is installed");
        assert!(status.success(), "redis-cli --cluster create failed");
        let cluster = Self {
            ports,
            children,
            dead: Vec::new(),
            dir: Some(dir),
        };
        cluster.wait_until_healthy();
        cluster
    }

    /// Every live node says the cluster is ok and agrees on who serves each slot.
    pub fn wait_until_healthy(&self) {
        let live: Vec<u16> = self.live_ports();
        wait_until("the cluster is ok", Duration::from_secs(30), || {
            live.iter().all(|&port| {
                redis_on::<String>(port, redis::cmd("CLUSTER").arg("INFO"))
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
            })
        });
    }

    fn live_ports(&self) -> Vec<u16> {
        self.ports
            .iter()
            .filter(|p| !self.dead.contains(p))
            .copied()
            .collect()
    }

    /// The same cluster for another thread to act on; it owns no server.
    pub fn view(&self) -> RedisCluster {
        RedisCluster {
            ports: self.ports.clone(),
            children: Vec::new(),
            dead: self.dead.clone(),
            dir: None,
        }
    }

    /// `host:port,...` of every node, for `TESSERA_REDIS_CLUSTER_NODES`.
    pub fn nodes(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn slot_of(&self, key: &str) -> u16 {
        let port = self.live_ports()[0];
        redis_on(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key)).unwrap()
    }

    /// The port of the master serving `slot`, as a live node sees it.
    pub fn master_of(&self, slot: u16) -> u16 {
        let port = self.live_ports()[0];
        let slots: Vec<Vec<redis::Value>> =
            redis_on(port, redis::cmd("CLUSTER").arg("SLOTS")).unwrap();
        for range in slots {
            let start: u16 = redis::from_redis_value(range[0].clone()).unwrap();
            let end: u16 = redis::from_redis_value(range[1].clone()).unwrap();
            if (start..=end).contains(&slot) {
                let node: Vec<redis::Value> = redis::from_redis_value(range[2].clone()).unwrap();
                return redis::from_redis_value(node[1].clone()).unwrap();
            }
        }
        panic!("no master serves slot {slot}");
    }

    fn node_id(port: u16) -> String {
        redis_on(port, redis::cmd("CLUSTER").arg("MYID")).unwrap()
    }

    /// Moves `slot` from its master to the master on `to`, as `redis-cli --cluster
    /// reshard` does: importing/migrating, `MIGRATE` in batches, then the new owner.
    pub fn migrate_slot(&self, slot: u16, to: u16, between_batches: impl Fn()) {
        let from = self.master_of(slot);
        assert_ne!(from, to, "slot {slot} is already on {to}");
        let (from_id, to_id) = (Self::node_id(from), Self::node_id(to));
        let setslot = |port: u16, state: &str, id: &str| {
            redis_on::<()>(
                port,
                redis::cmd("CLUSTER")
                    .arg("SETSLOT")
                    .arg(slot)
                    .arg(state)
                    .arg(id),
            )
            .unwrap()
        };
        setslot(to, "IMPORTING", &from_id);
        setslot(from, "MIGRATING", &to_id);
        loop {
            let keys: Vec<String> = redis_on(
                from,
                redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(10),
            )
            .unwrap();
            if keys.is_empty() {
                break;
            }
            redis_on::<()>(
                from,
                redis::cmd("MIGRATE")
                    .arg("127.0.0.1")
                    .arg(to)
                    .arg("")
                    .arg(0)
                    .arg(5000)
                    .arg("KEYS")
                    .arg(&keys),
            )
            .unwrap();
            between_batches();
        }
        for port in self.live_ports() {
            let is_master =
                redis_on::<Vec<redis::Value>>(port, &mut redis::cmd("ROLE")).is_ok_and(|role| {
                    role.first() == Some(&redis::Value::BulkString(b"master".to_vec()))
                });
            if is_master {
                setslot(port, "NODE", &to_id);
            }
        }
        wait_until("the slot moved", Duration::from_secs(10), || {
            self.master_of(slot) == to
        });
    }

    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|p| *p == port).unwrap();
        self.dead.push(port);
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The masters, by port.
    pub fn masters(&self) -> Vec<u16> {
        let mut masters: Vec<u16> = self
            .live_ports()
            .into_iter()
            .filter(|&port| {
                redis_on::<Vec<redis::Value>>(port, &mut redis::cmd("ROLE")).is_ok_and(|role| {
                    role.first() == Some(&redis::Value::BulkString(b"master".to_vec()))
                })
            })
            .collect();
        masters.sort();
        masters
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().filter_map(Option::take) {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A Redis master, one replica and three Sentinels watching them (quorum 2).
pub struct RedisSentinels {
    pub master_port: u16,
    pub replica_port: u16,
    pub sentinel_ports: Vec<u16>,
    master: Option<Child>,
    replica: Option<Child>,
    sentinels: Vec<Child>,
    dir: PathBuf,
}

pub const SENTINEL_MASTER: &str = "tessera-test";

impl RedisSentinels {
    pub fn start() -> Self {
        let dir = temp_dir("redis-sentinel");
        let (master_port, replica_port) = (free_port(), free_port());
        let master = start_redis(&common_args(master_port, &dir));
        wait_for_ping(master_port);
        let mut replica_args = common_args(replica_port, &dir);
        replica_args.extend(["--replicaof".to_owned(), format!("127.0.0.1 {master_port}")]);
        let replica = start_redis(&replica_args);
        wait_for_ping(replica_port);
        let sentinel_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let sentinels = sentinel_ports
            .iter()
            .map(|&port| {
                let conf = dir.join(format!("sentinel-{port}.conf"));
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                         sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {master_port} 2\n\
                         sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n\
                         sentinel failover-timeout {SENTINEL_MASTER} 5000\n\
                         sentinel parallel-syncs {SENTINEL_MASTER} 1\n",
                        dir = dir.display()
                    ),
                )
                .unwrap();
                start_redis(&[conf.display().to_string(), "--sentinel".to_owned()])
            })
            .collect();
        let set = Self {
            master_port,
            replica_port,
            sentinel_ports,
            master: Some(master),
            replica: Some(replica),
            sentinels,
            dir,
        };
        // A failover needs the Sentinels to know each other and the replica.
        wait_until(
            "the Sentinels know each other and the replica",
            Duration::from_secs(30),
            || {
                set.sentinel_ports.iter().all(|&port| {
                    let info: redis::RedisResult<std::collections::HashMap<String, String>> =
                        redis_on(
                            port,
                            redis::cmd("SENTINEL").arg("MASTER").arg(SENTINEL_MASTER),
                        );
                    info.is_ok_and(|info| {
                        info.get("num-other-sentinels").map(String::as_str) == Some("2")
                            && info.get("num-slaves").map(String::as_str) == Some("1")
                    })
                })
            },
        );
        set
    }

    /// `REDIS_URL` for Tessera.
    pub fn url(&self) -> String {
        let sentinels = self
            .sentinel_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        format!("redis+sentinel://{sentinels}/{SENTINEL_MASTER}")
    }

    /// The master's port as the first Sentinel names it.
    pub fn current_master(&self) -> u16 {
        let addr: Vec<String> = redis_on(
            self.sentinel_ports[0],
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(SENTINEL_MASTER),
        )
        .unwrap();
        addr[1].parse().unwrap()
    }

    /// Kills the master and waits until the Sentinels promoted the replica.
    pub fn fail_over(&mut self) {
        if let Some(mut master) = self.master.take() {
            let _ = master.kill();
            let _ = master.wait();
        }
        wait_until(
            "the Sentinels promote the replica",
            Duration::from_secs(30),
            || {
                self.current_master() == self.replica_port
                    && redis_on::<Vec<redis::Value>>(self.replica_port, &mut redis::cmd("ROLE"))
                        .is_ok_and(|role| {
                            role.first() == Some(&redis::Value::BulkString(b"master".to_vec()))
                        })
            },
        );
    }
}

impl Drop for RedisSentinels {
    fn drop(&mut self) {
        let children = self
            .sentinels
            .iter_mut()
            .chain(self.master.as_mut())
            .chain(self.replica.as_mut());
        for child in children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL primary and a streaming standby that every commit waits for
/// (`synchronous_standby_names = '*'`), so a refresh answered 200 is on both.
pub struct PostgresPair {
    pub primary_port: u16,
    pub standby_port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl PostgresPair {
    pub fn start() -> Self {
        let dir = temp_dir("pg-pair");
        if running_as_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres", dir.to_str().unwrap()])
                .status()
                .unwrap();
        }
        let pair = Self {
            primary_port: free_port(),
            standby_port: free_port(),
            dir,
            bin: pg_bin(),
        };
        let primary = pair.data("primary");
        assert!(
            pair.run(
                "initdb",
                &[
                    "-D",
                    &primary,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync"
                ],
            ),
            "initdb failed"
        );
        pair.launch("primary", pair.primary_port);
        let standby = pair.data("standby");
        assert!(
            pair.run(
                "pg_basebackup",
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &pair.primary_port.to_string(),
                    "-U",
                    "postgres",
                    "-D",
                    &standby,
                    "-R",
                    "-X",
                    "stream",
                    "--no-sync",
                ],
            ),
            "pg_basebackup failed"
        );
        pair.launch("standby", pair.standby_port);
        pair.psql(
            pair.primary_port,
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
        );
        pair.psql(pair.primary_port, "SELECT pg_reload_conf()");
        wait_until(
            "the standby is synchronous",
            Duration::from_secs(30),
            || {
                pair.query(
                    pair.primary_port,
                    "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
                )
                .as_deref()
                    == Some("1")
            },
        );
        pair
    }

    fn data(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> bool {
        run_pg_tool(&self.bin, tool, args).success()
    }

    fn launch(&self, name: &str, port: u16) {
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.dir.display()
        );
        let log = self.dir.join(format!("{name}.log")).display().to_string();
        assert!(
            self.run(
                "pg_ctl",
                &[
                    "-D",
                    &self.data(name),
                    "-o",
                    &options,
                    "-l",
                    &log,
                    "-w",
                    "start"
                ],
            ),
            "pg_ctl start of the {name} failed"
        );
    }

    /// Runs `sql`; panics unless it succeeds.
    fn psql(&self, port: u16, sql: &str) {
        assert!(self.query(port, sql).is_some(), "psql: {sql}");
    }

    /// One value, or `None` when the server cannot answer (or the statement fails).
    pub fn query(&self, port: u16, sql: &str) -> Option<String> {
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-U", "postgres", "-d", "postgres"])
            .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `DATABASE_URL` naming both servers: libpq and tokio-postgres take the first that
    /// accepts writes.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{database}?target_session_attrs=read-write&{}",
            self.primary_port,
            self.standby_port,
            crate::helpers::LOCAL_LIBPQ_OPTIONS
        )
    }

    /// Stops the primary at once, as a crash would.
    pub fn crash_primary(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data("primary"), "-m", "immediate", "-w", "stop"],
        );
    }

    pub fn promote_standby(&self) {
        assert!(
            self.run("pg_ctl", &["-D", &self.data("standby"), "-w", "promote"]),
            "pg_ctl promote failed"
        );
    }
}

impl Drop for PostgresPair {
    fn drop(&mut self) {
        for name in ["primary", "standby"] {
            self.run(
                "pg_ctl",
                &["-D", &self.data(name), "-m", "immediate", "-w", "stop"],
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
