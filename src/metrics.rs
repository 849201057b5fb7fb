//! Prometheus metrics. Each application instance has its own registry (several run in
//! one test process); `/metrics` renders it in the text exposition format.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub(crate) struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    /// Refresh rotations per statement (store/rotation.rs: one commit for all of them).
    pub rotations_per_statement: Histogram,
    pub tokens_issued: IntCounterVec,
    pub refresh_reuse: IntCounter,
    pub refresh_grace_retries: IntCounter,
    pub revocations: IntCounterVec,
    pub login_failures: IntCounter,
    pub lockouts: IntCounter,
    pub rate_limited: IntCounterVec,
    pub redis_errors: IntCounter,
    bcrypt: IntGaugeVec,
    bcrypt_jobs: IntCounter,
    db_pool: IntGaugeVec,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let registry = Registry::new_custom(Some("tessera".to_owned()), None).expect("registry");
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["route", "method"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(http_duration.clone()))
            .expect("unique metric");
        let rotations_per_statement = Histogram::with_opts(
            HistogramOpts::new(
                "refresh_rotations_per_statement",
                "Refresh rotations committed together by one statement",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(rotations_per_statement.clone()))
            .expect("unique metric");
        let bcrypt_jobs = counter(
            &registry,
            "bcrypt_jobs_total",
            "bcrypt hashes and verifications run (unknown users included)",
        );
        Self {
            http_requests: counter_vec(
                &registry,
                "http_requests_total",
                "HTTP requests by route, method and status",
                &["route", "method", "status"],
            ),
            http_duration,
            rotations_per_statement,
            tokens_issued: counter_vec(
                &registry,
                "tokens_issued_total",
                "Access tokens issued, by grant type",
                &["grant"],
            ),
            refresh_reuse: counter(
                &registry,
                "refresh_reuse_detected_total",
                "Spent refresh tokens presented after the grace window (sessions revoked)",
            ),
            refresh_grace_retries: counter(
                &registry,
                "refresh_grace_retries_total",
                "Spent refresh tokens presented again within the grace window and answered \
                 with the successor already issued",
            ),
            revocations: counter_vec(
                &registry,
                "revocations_total",
                "Revocations recorded, by kind (jti, sid, user, client)",
                &["kind"],
            ),
            login_failures: counter(&registry, "login_failures_total", "Failed password logins"),
            lockouts: counter(
                &registry,
                "lockouts_total",
                "Temporary lockouts imposed by brute-force protection",
            ),
            rate_limited: counter_vec(
                &registry,
                "rate_limited_total",
                "Requests refused by brute-force protection, by what was limited",
                &["scope"],
            ),
            redis_errors: counter(&registry, "redis_errors_total", "Failed Redis operations"),
            bcrypt: gauge_vec(
                &registry,
                "bcrypt_jobs",
                "bcrypt jobs waiting for a slot and running now",
                &["state"],
            ),
            bcrypt_jobs,
            db_pool: gauge_vec(
                &registry,
                "db_pool_connections",
                "PostgreSQL pool: connections in use, idle, the maximum, and requests waiting",
                &["state"],
            ),
            registry,
        }
    }

    pub(crate) fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[route, method])
            .observe(seconds);
    }

    /// The text exposition, with the gauges sampled now.
    pub(crate) fn render(&self, sample: &Sample) -> Vec<u8> {
        self.bcrypt
            .with_label_values(&["waiting"])
            .set(sample.bcrypt_waiting as i64);
        self.bcrypt
            .with_label_values(&["running"])
            .set(sample.bcrypt_running as i64);
        let counted = self.bcrypt_jobs.get();
        if sample.bcrypt_total > counted {
            self.bcrypt_jobs.inc_by(sample.bcrypt_total - counted);
        }
        self.db_pool
            .with_label_values(&["in_use"])
            .set(sample.db_in_use as i64);
        self.db_pool
            .with_label_values(&["idle"])
            .set(sample.db_idle as i64);
        self.db_pool
            .with_label_values(&["max"])
            .set(sample.db_max as i64);
        self.db_pool
            .with_label_values(&["waiting"])
            .set(sample.db_waiting as i64);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding does not fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Point-in-time values read from the components that own them.
pub(crate) struct Sample {
    pub bcrypt_waiting: usize,
    pub bcrypt_running: usize,
    pub bcrypt_total: u64,
    pub db_in_use: u32,
    pub db_idle: u32,
    pub db_max: u32,
    pub db_waiting: usize,
}
