//! The revocation feed for services that verify tokens offline: a snapshot of every
//! denylist entry in force, and a Server-Sent-Events stream of new ones, each also
//! available as an RFC 8417 Security Event Token.

use actix_web::{get, web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bearer::bearer_token;
use crate::auth::revocation::feed::{self, Cursor, Event, FeedError, Item, SubscriberRefused};
use crate::auth::tokens::AccessClaims;
use crate::auth::Tessera;
use crate::domain::RevocationKind;
use crate::error::{no_store, Problem, ProblemBody};
use crate::http::body::QueryString;
use crate::http::AppState;

/// One denylist entry.
#[derive(Serialize, ToSchema)]
pub(crate) struct Entry<'a> {
    /// `jti` (one access token), `sid` (every token of a session), `user` or `client`
    /// (every token of that user, or minted through that client, issued before
    /// `not_before`).
    #[schema(value_type = String)]
    kind: RevocationKind,
    /// The token id, session id, user id (`sub`) or client id (`client_id`) it denies.
    value: &'a str,
    /// `user` and `client`: tokens whose `iat` is before this (unix seconds) are denied.
    not_before: Option<i64>,
    /// Unix seconds after which nothing it denies can still be alive: drop it then.
    expires_at: i64,
    /// When it was recorded (unix seconds).
    revoked_at: i64,
}

impl<'a> From<&'a Event> for Entry<'a> {
    fn from(e: &'a Event) -> Self {
        Self {
            kind: e.kind,
            value: &e.value,
            not_before: e.not_before,
            expires_at: e.expires_at,
            revoked_at: e.revoked_at,
        }
    }
}

/// Every entry in force, and the cursor to stream from.
#[derive(Serialize, ToSchema)]
pub(crate) struct Snapshot<'a> {
    /// Pass it to the stream (`cursor`, or `Last-Event-ID`): it continues exactly after
    /// what this lists.
    cursor: String,
    /// With `format=json` (the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<Vec<Entry<'a>>>,
    /// With `format=set`: each entry as a signed Security Event Token (RFC 8417).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    sets: Option<Vec<std::sync::Arc<str>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    format: Option<String>,
    cursor: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Json,
    Set,
}

impl FeedQuery {
    fn format(&self) -> Result<Format, Problem> {
        match self.format.as_deref() {
            None | Some("json") => Ok(Format::Json),
            Some("set") => Ok(Format::Set),
            Some(_) => Err(Problem::bad_request("format must be json or set")),
        }
    }
}

fn parse_cursor(raw: &str) -> Result<Cursor, Problem> {
    Cursor::parse(raw).ok_or_else(|| {
        Problem::bad_request("the cursor is malformed: pass back a cursor or event id Tessera gave")
    })
}

fn refusal(e: FeedError) -> Problem {
    match e {
        FeedError::NotASubscriber => Problem::insufficient_scope(&e.to_string()),
        FeedError::CursorGone => Problem::new(actix_web::http::StatusCode::GONE, e.to_string()),
        FeedError::Unavailable(_) => Problem::unavailable(&e),
    }
}

/// The subscriber behind the bearer token (checked without Redis: see
/// `feed::check_subscriber`).
async fn subscriber(req: &HttpRequest, state: &AppState) -> Result<AccessClaims, Problem> {
    let token = bearer_token(req)?;
    feed::check_subscriber(&state.tessera, &token)
        .await
        .map_err(|refused| match refused {
            SubscriberRefused::Invalid(reason) => Problem::invalid_token(&reason),
            SubscriberRefused::Feed(e) => refusal(e),
        })
}

fn signing_failed(e: crate::auth::keys::KeyError) -> Problem {
    Problem::internal(&e)
}

/// Every revocation still in force (what a verifier must deny), and the cursor to
/// stream new ones from.
#[utoipa::path(
    tag = "revocations",
    operation_id = "revocations_snapshot",
    security(("bearer" = [])),
    params(
        ("format" = Option<String>, Query, description = "`json` (default) or `set` (RFC 8417 Security Event Tokens)"),
    ),
    responses(
        (status = 200, body = Snapshot),
        (status = 400, description = "Bad query", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not a client's own token with the tessera:revocations scope", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL cannot be read", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
#[get("/v1/revocations")]
pub(crate) async fn snapshot(
    req: HttpRequest,
    query: QueryString,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    subscriber(&req, &state).await?;
    let query: FeedQuery = query.parse()?;
    if query.cursor.is_some() {
        return Err(Problem::bad_request("a snapshot takes no cursor"));
    }
    let format = query.format()?;
    let tessera = &state.tessera;
    let snapshot = feed::snapshot(tessera).await.map_err(refusal)?;
    let body = match format {
        Format::Json => Snapshot {
            cursor: snapshot.cursor.to_string(),
            entries: Some(snapshot.entries.iter().map(Entry::from).collect()),
            sets: None,
        },
        Format::Set => {
            // Signing many entries is CPU work: off the HTTP worker.
            let signer = tessera.clone();
            let sets = web::block(move || {
                snapshot
                    .entries
                    .iter()
                    .map(|e| e.security_event_token(&signer))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .map_err(|e| Problem::internal(&e))?
            .map_err(signing_failed)?;
            Snapshot {
                cursor: snapshot.cursor.to_string(),
                entries: None,
                sets: Some(sets),
            }
        }
    };
    let mut res = HttpResponse::Ok();
    no_store(&mut res);
    Ok(res.json(body))
}

/// New revocations as Server-Sent Events, in the order they committed. Each event's
/// `id` is its cursor; reconnect with `Last-Event-ID` (or `cursor`) to resume with
/// nothing lost or repeated. `heartbeat` events (every `TESSERA_REVOCATION_HEARTBEAT`)
/// come only while this instance is up to date with PostgreSQL. The last event, `end`,
/// says why the stream ends: `token_expired` or `token_revoked` (reconnect with a new
/// token) or `shutting_down` (reconnect, to another instance).
#[utoipa::path(
    tag = "revocations",
    operation_id = "revocations_stream",
    security(("bearer" = [])),
    params(
        ("format" = Option<String>, Query, description = "`json` (default: `revocation` events) or `set` (`set` events whose data is a Security Event Token)"),
        ("cursor" = Option<String>, Query, description = "Resume after this cursor (a snapshot's, or an event id); `Last-Event-ID` takes precedence. Without either the stream starts at the newest event."),
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received"),
    ),
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad query or cursor", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not a client's own token with the tessera:revocations scope", body = ProblemBody, content_type = "application/problem+json"),
        (status = 410, description = "The cursor cannot be resumed from: take a snapshot", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "This instance is not up to date with PostgreSQL", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
#[get("/v1/revocations/stream")]
pub(crate) async fn stream(
    req: HttpRequest,
    query: QueryString,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let caller = subscriber(&req, &state).await?;
    let query: FeedQuery = query.parse()?;
    let format = query.format()?;
    let last_event_id = match req.headers().get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| Problem::bad_request("Last-Event-ID is not a cursor"))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let cursor = last_event_id
        .filter(|v| !v.is_empty())
        .or(query.cursor)
        .map(|raw| parse_cursor(&raw))
        .transpose()?;
    let tessera = state.tessera.clone();
    let subscription = feed::subscribe(&tessera, caller, cursor)
        .await
        .map_err(refusal)?;
    // The reconnection delay an EventSource client should use (SSE `retry`).
    let opening = futures_util::stream::once(async { Ok(Bytes::from_static(b"retry: 1000\n\n")) });
    let events = futures_util::stream::unfold(
        (subscription, tessera),
        move |(mut subscription, tessera)| async move {
            let item = subscription.next().await?;
            let frame = frame(&tessera, &item, format)?;
            Some((Ok::<_, actix_web::Error>(frame), (subscription, tessera)))
        },
    );
    let mut res = HttpResponse::Ok();
    no_store(&mut res);
    Ok(res
        .content_type("text/event-stream")
        // nginx and its kind would otherwise buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(futures_util::StreamExt::chain(opening, events)))
}

/// One SSE frame; `None` ends the stream (a SET could not be signed).
fn frame(tessera: &Tessera, item: &Item, format: Format) -> Option<Bytes> {
    let text = match item {
        Item::Heartbeat(cursor) => format!("id: {cursor}\nevent: heartbeat\ndata: {{}}\n\n"),
        Item::End(reason) => format!(
            "event: end\ndata: {{\"reason\":\"{}\"}}\n\n",
            reason.as_str()
        ),
        Item::Event(event) => {
            let (name, data) = match format {
                Format::Json => (
                    "revocation",
                    serde_json::to_string(&Entry::from(&**event)).ok()?,
                ),
                Format::Set => match event.security_event_token(tessera) {
                    Ok(set) => ("set", set.to_string()),
                    Err(e) => {
                        tracing::error!(error = %e, "a revocation could not be signed as a SET; ending the stream");
                        return None;
                    }
                },
            };
            format!("id: {}\nevent: {name}\ndata: {data}\n\n", event.cursor)
        }
    };
    Some(Bytes::from(text))
}
