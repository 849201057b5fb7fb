// A consumer of Tessera's revocation feed for a Node service that verifies Tessera's
// access tokens offline (jose's jwtVerify against the JWKS) and must still refuse the
// revoked ones. Copy this file; its only dependency is jose.
//
//   const feed = subscribe({ issuer, clientId, clientSecret });
//   ...after jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt' }):
//   if (feed.isRevoked(payload)) refuse();   // throws while the feed is stale
//
// What it does: gets a token for the subscriber client (client_credentials, scope
// tessera:revocations), takes a snapshot of every revocation in force
// (GET /v1/revocations?format=set), then follows the Server-Sent-Events stream from the
// snapshot's cursor (GET /v1/revocations/stream?format=set). Every entry arrives as a
// signed Security Event Token (RFC 8417), verified here before it is applied. The
// stream sends heartbeats while Tessera is up to date; when nothing has been heard for
// `stalenessMs`, isRevoked throws (fails closed) unless `failOpen`.
//
// Reconnects resume after the last event seen (Last-Event-ID) with exponential backoff
// and full jitter; a cursor Tessera cannot resume from (410) means a new snapshot; a 401
// or the end of the stream (it ends when the subscriber's token expires) means a new
// token.

import { createRemoteJWKSet, jwtVerify } from 'jose';

/** The SET event type of each kind of revocation. */
export const EVENT_TYPES = {
  sid: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
  jti: 'urn:tessera:secevent:token-revoked',
  user: 'urn:tessera:secevent:subject-tokens-revoked',
  client: 'urn:tessera:secevent:client-tokens-revoked',
};
const KIND_OF_TYPE = new Map(Object.entries(EVENT_TYPES).map(([kind, type]) => [type, kind]));

/** Thrown by isRevoked when the feed cannot vouch that it is complete. */
export class StaleFeedError extends Error {
  constructor(health) {
    super(
      health.state === 'starting'
        ? 'the revocation feed has not been read yet'
        : `the revocation feed was last heard ${health.lastHeardMsAgo} ms ago`,
    );
    this.name = 'StaleFeedError';
    this.health = health;
  }
}

/** A non-2xx answer from Tessera. */
class HttpError extends Error {
  constructor(what, status, body) {
    super(`${what}: HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ''}`);
    this.status = status;
  }
}

/**
 * Starts following the feed; answers { isRevoked(claims), health(), ready(), close() }.
 *   issuer                      Tessera's issuer (the `iss` of its tokens and SETs)
 *   clientId, clientSecret      a confidential client with the tessera:revocations scope
 *   stalenessMs                 how long without a heartbeat before isRevoked throws
 *   failOpen                    answer from what is held even when stale
 *   backoff: { baseMs, maxMs }  reconnection delays (default: the stream's `retry`, 30 s)
 *   onEvent(entry, via)         called for each applied entry (via 'snapshot' | 'stream')
 *   log(message)                problems worth a line (default: console.warn)
 *   fetch                       the fetch to use (default: Node's; tests cut it)
 */
export function subscribe({
  issuer,
  clientId,
  clientSecret,
  stalenessMs = 30_000,
  failOpen = false,
  backoff = {},
  onEvent = () => {},
  log = (message) => console.warn(`revocations: ${message}`),
  fetch = globalThis.fetch,
}) {
  if (!issuer || !clientId || !clientSecret) {
    throw new TypeError('subscribe needs issuer, clientId and clientSecret');
  }
  const base = issuer.replace(/\/+$/, '');
  const jwks = createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`));
  const maxDelayMs = backoff.maxMs ?? 30_000;
  let baseDelayMs = backoff.baseMs ?? 1_000; // replaced by the stream's `retry` unless set

  /** `${kind}:${value}` -> { kind, value, notBefore, expiresAt } */
  let entries = new Map();
  let cursor = null; // where the next stream resumes; null: take a snapshot first
  let lastHeard = 0; // Date.now() of the last snapshot, event or heartbeat
  let token = null; // { value, expiresAt }
  let closed = false;
  let connection = null; // the AbortController of the request in flight
  let wakeUp = null; // ends a backoff sleep early (close)
  let attempt = 0; // failures since the stream last worked
  let markReady;
  const ready = new Promise((resolve) => (markReady = resolve));

  const heard = () => {
    lastHeard = Date.now();
    markReady();
  };

  function health() {
    const lastHeardMsAgo = lastHeard ? Date.now() - lastHeard : null;
    const state = !lastHeard ? 'starting' : lastHeardMsAgo <= stalenessMs ? 'live' : 'stale';
    return { state, lastHeardMsAgo, entries: entries.size, cursor };
  }

  /** Whether the (already verified) access-token claims are revoked. */
  function isRevoked(claims) {
    const h = health();
    if (h.state !== 'live' && !failOpen) throw new StaleFeedError(h);
    const at = (kind, value) => (value == null ? undefined : entries.get(`${kind}:${value}`));
    // Issued before the entry's not_before (a token without a numeric iat counts as such).
    const issuedBefore = (entry) => entry !== undefined && !(claims.iat >= entry.notBefore);
    return Boolean(
      at('jti', claims.jti) ||
        at('sid', claims.sid) ||
        (claims.sid != null && issuedBefore(at('user', claims.sub))) ||
        issuedBefore(at('client', claims.client_id)),
    );
  }

  /** Verifies a SET and returns the entry it carries. */
  async function entryOf(set) {
    const { payload } = await jwtVerify(set, jwks, { issuer, typ: 'secevent+jwt' });
    const types = Object.keys(payload.events ?? {});
    const kind = KIND_OF_TYPE.get(types[0]);
    const event = payload.events?.[types[0]];
    if (types.length !== 1 || !kind || event?.kind !== kind || typeof event.value !== 'string') {
      throw new Error(`a SET carries no revocation this consumer knows: ${JSON.stringify(payload.events)}`);
    }
    if (!Number.isFinite(event.expires_at)) throw new Error('a SET has no expires_at');
    if ((kind === 'user' || kind === 'client') && !Number.isFinite(event.not_before)) {
      throw new Error(`a ${kind} SET has no not_before`);
    }
    return {
      kind,
      value: event.value,
      notBefore: event.not_before ?? null,
      expiresAt: event.expires_at,
      txn: payload.txn,
    };
  }

  function apply(map, entry) {
    const key = `${entry.kind}:${entry.value}`;
    const known = map.get(key);
    // A user or client revoked again denies every token issued before the later time.
    map.set(key, {
      kind: entry.kind,
      value: entry.value,
      notBefore: entry.notBefore === null ? null : Math.max(entry.notBefore, known?.notBefore ?? -Infinity),
      expiresAt: Math.max(entry.expiresAt, known?.expiresAt ?? -Infinity),
    });
  }

  /** Drops entries past expires_at: nothing they deny can still be alive. */
  function prune() {
    const now = Date.now() / 1000;
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key);
  }

  async function request(path, init = {}) {
    connection = new AbortController();
    return fetch(`${base}${path}`, { ...init, signal: connection.signal });
  }

  async function accessToken() {
    if (token && token.expiresAt - Date.now() > 5_000) return token.value;
    const basic = Buffer.from(
      `${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`,
    ).toString('base64');
    const res = await request('/oauth/token', {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    if (!res.ok) throw new HttpError('token', res.status, await res.text());
    const body = await res.json();
    token = { value: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 };
    return token.value;
  }

  async function takeSnapshot() {
    const res = await request('/v1/revocations?format=set', {
      headers: { authorization: `Bearer ${await accessToken()}` },
    });
    if (!res.ok) throw new HttpError('snapshot', res.status, await res.text());
    const body = await res.json();
    // Every SET is verified before any replaces what is held.
    const fresh = new Map();
    const verified = await Promise.all(body.sets.map(entryOf));
    for (const entry of verified) apply(fresh, entry);
    entries = fresh;
    cursor = body.cursor;
    prune();
    heard();
    for (const entry of verified) onEvent(entry, 'snapshot');
  }

  /** Follows the stream until it ends (resolves) or fails (throws). */
  async function follow() {
    const res = await request('/v1/revocations/stream?format=set', {
      headers: {
        authorization: `Bearer ${await accessToken()}`,
        accept: 'text/event-stream',
        'last-event-id': cursor,
      },
    });
    if (!res.ok) throw new HttpError('stream', res.status, await res.text());
    // A stream that goes silent (a dead connection nobody closed) is torn down.
    const abort = connection;
    let silence;
    const listen = () => {
      clearTimeout(silence);
      silence = setTimeout(() => abort.abort(new Error('the stream went silent')), stalenessMs);
    };
    listen();
    try {
      for await (const frame of sseFrames(res.body, listen)) {
        if (frame.retry !== undefined && backoff.baseMs === undefined) baseDelayMs = frame.retry;
        if (frame.event === 'set') {
          let entry;
          try {
            entry = await entryOf(frame.data);
            if (entry.txn !== frame.id) throw new Error(`its txn ${entry.txn} is not its event id ${frame.id}`);
          } catch (err) {
            // Never skipped: the cursor stays before it. A SET Tessera signed earlier
            // with a key since dropped from the JWKS would fail on every resume, so the
            // way on is a new snapshot (signed now).
            throw Object.assign(new Error(`a SET from the stream failed verification: ${err.message}`), { resnapshot: true });
          }
          apply(entries, entry);
          onEvent(entry, 'stream');
        } else if (frame.event !== 'heartbeat') {
          continue;
        }
        if (frame.id) cursor = frame.id;
        heard();
        prune();
        attempt = 0; // a working stream: the next failure starts the backoff over
      }
    } finally {
      clearTimeout(silence);
    }
  }

  async function run() {
    while (!closed) {
      let snapshotted = false;
      try {
        if (cursor === null) {
          await takeSnapshot();
          snapshotted = true;
        }
        await follow();
        // Ended by Tessera: the subscriber's token expired (then reconnect at once with
        // a new one), or the instance is stopping (then back off: every subscriber of
        // it reconnects).
        const expired = token !== null && token.expiresAt - Date.now() < 3_000;
        token = null;
        if (expired && !closed) continue;
      } catch (err) {
        if (closed) break;
        if (err.status === 401) token = null;
        if (err.status === 410 || err.status === 400) {
          log(`the stream cannot resume from ${cursor} (HTTP ${err.status}): taking a snapshot`);
          cursor = null;
          if (!snapshotted) continue;
        } else if (err.resnapshot) {
          log(`${err.message}: taking a snapshot`);
          cursor = null;
        } else {
          log(err.cause ? `${err.message}: ${err.cause.message ?? err.cause}` : err.message);
        }
      }
      if (closed) break;
      // Full jitter: anywhere between 0 and the exponential ceiling.
      const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** attempt);
      attempt += 1;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, Math.random() * ceiling);
        wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wakeUp = null;
    }
  }

  const running = run();

  return {
    isRevoked,
    health,
    /** Resolves once the first snapshot is held. */
    ready: () => ready,
    /** Stops following the feed; resolves when stopped. */
    close() {
      closed = true;
      connection?.abort();
      wakeUp?.();
      markReady();
      return running;
    },
  };
}

/**
 * The frames of a text/event-stream body (the WHATWG parsing rules, trimmed to what a
 * feed needs): yields { event, data, id, retry } at each blank line. `onBytes` is
 * called whenever anything arrives.
 */
export async function* sseFrames(body, onBytes = () => {}) {
  const empty = () => ({ event: '', data: [], id: undefined, retry: undefined });
  let frame = empty();
  /** Takes one line; answers the frame a blank line completes. */
  const take = (line) => {
    if (line === '') {
      const done = frame;
      frame = empty();
      if (!done.data.length && done.id === undefined && done.retry === undefined) return undefined;
      return { event: done.event || 'message', data: done.data.join('\n'), id: done.id, retry: done.retry };
    }
    if (line.startsWith(':')) return undefined; // a comment
    const colon = line.indexOf(':');
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'event') frame.event = value;
    else if (name === 'data') frame.data.push(value);
    else if (name === 'id' && !value.includes('\0')) frame.id = value;
    else if (name === 'retry' && /^\d+$/.test(value)) frame.retry = Number(value);
    return undefined;
  };

  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    onBytes();
    buffer += decoder.decode(chunk, { stream: true });
    // A \r at the very end may be half of a \r\n: keep it for the next chunk.
    const held = buffer.endsWith('\r') ? '\r' : '';
    const lines = buffer.slice(0, buffer.length - held.length).split(/\r\n|\r|\n/);
    buffer = lines.pop() + held; // the unfinished line
    for (const line of lines) {
      const done = take(line);
      if (done) yield done;
    }
  }
  if (buffer.endsWith('\r')) {
    const done = take(buffer.slice(0, -1));
    if (done) yield done;
  }
}
