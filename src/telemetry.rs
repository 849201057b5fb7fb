//! Logging set-up, and the id of the request being handled, which log lines and error
//! bodies carry. The HTTP middleware that assigns it lives in `http::middleware`; this
//! module knows nothing of HTTP, so `error` and `http` both use it without a cycle.

use std::future::Future;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The target of the request span and of the lines the request middleware writes (the
/// access log, timeouts). It stays this module's name, where they were written before
/// the middleware moved to `http`, so filters such as
/// `TESSERA_LOG=info,tessera::telemetry=warn` keep working.
pub(crate) const REQUEST_LOG_TARGET: &str = "tessera::telemetry";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub(crate) fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `work` as the handling of request `id`: [`current_request_id`] answers it there.
pub(crate) fn with_request_id<F: Future>(id: String, work: F) -> impl Future<Output = F::Output> {
    REQUEST_ID.scope(id, work)
}

/// Installs the global subscriber once; later calls (tests start many apps) are no-ops.
///
/// At debug level every span also logs a line when it closes, with the time it was busy
/// and idle, so one request reads as a timed tree (request -> grant -> rotation ->
/// signing); JSON lines then list the spans they sit in. The default (info) log stays
/// one line per event.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let debug = filter
        .max_level_hint()
        .is_some_and(|level| level >= LevelFilter::DEBUG);
    let span_events = if debug { FmtSpan::CLOSE } else { FmtSpan::NONE };
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_span_events(span_events)
                    // Colours only for a person at a terminal, never into a file or pipe.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_span_events(span_events)
                    .with_current_span(true)
                    .with_span_list(debug),
            )
            .try_init(),
    };
    let _ = result;
}
