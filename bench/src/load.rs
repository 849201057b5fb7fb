//! The load engine: a fixed number of connections per stream, each sending its next
//! request as soon as the previous answer is in (closed loop), for a warm-up and then
//! a measured window. Only answers that arrive inside the window count; requests still
//! in flight when it closes are dropped.
//!
//! A closed loop measures the service time under a given concurrency: when the server
//! slows down, fewer requests are sent, so the latencies reported here understate what
//! an open stream of arrivals at the same rate would see (coordinated omission).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::{Request, StatusCode};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, timeout_at, Instant};

use crate::http::{Body, Connection, RequestTemplate};
use crate::machine::{CpuSnapshot, CpuUse};

/// Where a stream's requests come from.
pub trait RequestSource: Send + Sync {
    /// The next request, or `None` when the source has run dry (no fresh refresh
    /// token left): the connection then stops, and the result says so.
    fn next_request(&self) -> Option<Request<Body>>;
}

impl RequestSource for RequestTemplate {
    fn next_request(&self) -> Option<Request<Body>> {
        Some(self.request())
    }
}

/// Connections that all send the same kind of request.
pub struct Stream {
    pub name: String,
    pub connections: usize,
    pub source: Arc<dyn RequestSource>,
}

#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    end: Instant,
}

/// Latencies are kept in microseconds, from 1 µs to a minute, 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// What one connection saw.
struct Tally {
    latency: Histogram<u64>,
    ok: u64,
    non_2xx: u64,
    errors: u64,
    first_failure: Option<String>,
    ran_dry: bool,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency: new_histogram(),
            ok: 0,
            non_2xx: 0,
            errors: 0,
            first_failure: None,
            ran_dry: false,
        }
    }

    /// Successes count inside the window only; failures count over the whole run,
    /// warm-up included, because any failure at all is a finding.
    fn record(
        &mut self,
        outcome: &anyhow::Result<(StatusCode, Bytes)>,
        elapsed: Duration,
        in_window: bool,
    ) {
        match outcome {
            Ok((status, _)) if status.is_success() => {
                if in_window {
                    self.ok += 1;
                    self.latency.saturating_record(elapsed.as_micros() as u64);
                }
            }
            Ok((status, body)) => {
                self.non_2xx += 1;
                self.first_failure.get_or_insert_with(|| {
                    // Error bodies are RFC 6749 / RFC 9457 documents: no secrets.
                    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
                    format!("HTTP {status}: {text}")
                });
            }
            Err(error) => {
                self.errors += 1;
                self.first_failure
                    .get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
}

/// Sends on the connection, opening it first if needed; a failed connection is
/// dropped and the next request opens a new one.
async fn exchange(
    connection: &mut Option<Connection>,
    addr: SocketAddr,
    request: Request<Body>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let open = match connection {
        Some(open) => open,
        None => connection.insert(Connection::open(addr).await?),
    };
    let result = open.send(request).await;
    if result.is_err() {
        *connection = None;
    }
    result
}

async fn client_loop(addr: SocketAddr, source: Arc<dyn RequestSource>, window: Window) -> Tally {
    let mut tally = Tally::new();
    let mut connection = None;
    while Instant::now() < window.end {
        let Some(request) = source.next_request() else {
            tally.ran_dry = true;
            break;
        };
        let started = Instant::now();
        let Ok(outcome) = timeout_at(window.end, exchange(&mut connection, addr, request)).await
        else {
            break;
        };
        let finished = Instant::now();
        tally.record(
            &outcome,
            finished - started,
            finished >= window.measure_from,
        );
        if outcome.is_err() {
            // A refused connection fails at once; do not spin on it.
            sleep(Duration::from_millis(10)).await;
        }
    }
    tally
}

/// One stream's measurement.
pub struct StreamResult {
    pub name: String,
    pub connections: usize,
    pub seconds: f64,
    pub ok: u64,
    pub latency: Histogram<u64>,
    pub non_2xx: u64,
    pub errors: u64,
    pub first_failure: Option<String>,
    pub ran_dry: bool,
}

impl StreamResult {
    fn merge(name: String, connections: usize, seconds: f64, tallies: Vec<Tally>) -> Self {
        let mut result = Self {
            name,
            connections,
            seconds,
            ok: 0,
            latency: new_histogram(),
            non_2xx: 0,
            errors: 0,
            first_failure: None,
            ran_dry: false,
        };
        for tally in tallies {
            result.ok += tally.ok;
            result.non_2xx += tally.non_2xx;
            result.errors += tally.errors;
            result.ran_dry |= tally.ran_dry;
            result
                .latency
                .add(&tally.latency)
                .expect("histograms with the same bounds");
            if result.first_failure.is_none() {
                result.first_failure = tally.first_failure;
            }
        }
        result
    }

    /// Successful requests per second in the window.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    pub fn percentile_ms(&self, percentile: f64) -> f64 {
        self.latency.value_at_quantile(percentile / 100.0) as f64 / 1000.0
    }
}

/// A scenario's measurement: its streams, and who used the CPU meanwhile.
pub struct Measurement {
    pub streams: Vec<StreamResult>,
    pub cpu: CpuUse,
}

/// Runs the streams together: `warmup` unmeasured, then `duration` measured. With
/// several servers (instances of one deployment), each stream's connections are spread
/// round robin over `addrs`, as a load balancer spreads keep-alive connections, and
/// the servers' CPU is summed.
pub async fn measure(
    addrs: &[SocketAddr],
    streams: Vec<Stream>,
    warmup: Duration,
    duration: Duration,
    server_pids: &[u32],
) -> Measurement {
    let start = Instant::now();
    let window = Window {
        measure_from: start + warmup,
        end: start + warmup + duration,
    };
    let running: Vec<(Stream, Vec<JoinHandle<Tally>>)> = streams
        .into_iter()
        .map(|stream| {
            let handles = (0..stream.connections)
                .map(|i| {
                    let addr = addrs[i % addrs.len()];
                    tokio::spawn(client_loop(addr, Arc::clone(&stream.source), window))
                })
                .collect();
            (stream, handles)
        })
        .collect();

    sleep_until(window.measure_from).await;
    let driver_pid = std::process::id();
    let before = CpuSnapshot::take_all(server_pids, driver_pid);
    sleep_until(window.end).await;
    let after = CpuSnapshot::take_all(server_pids, driver_pid);
    let seconds = duration.as_secs_f64();

    let mut results = Vec::with_capacity(running.len());
    for (stream, handles) in running {
        let mut tallies = Vec::with_capacity(handles.len());
        for handle in handles {
            tallies.push(handle.await.expect("a client task does not panic"));
        }
        results.push(StreamResult::merge(
            stream.name,
            stream.connections,
            seconds,
            tallies,
        ));
    }
    Measurement {
        streams: results,
        cpu: CpuUse::between(&before, &after, seconds),
    }
}
