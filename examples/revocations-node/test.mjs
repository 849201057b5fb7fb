// The example consumer against a running Tessera (scripts/revocation-example.sh starts
// one and sets the environment below). The last test kills Tessera.
//
// TESSERA_ISSUER, TESSERA_PID; SUBSCRIBER_CLIENT_ID, SUBSCRIBER_CLIENT_SECRET (a
// client_credentials client with the tessera:revocations scope and a 10 s token
// lifetime); USER_NAME, USER_PASSWORD and OTHER_USER_NAME, OTHER_USER_PASSWORD (two
// users); ADMIN_NAME, ADMIN_PASSWORD (role admin).
// Tessera runs with TESSERA_REVOCATION_HEARTBEAT=300ms.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { decodeJwt } from 'jose';
import { subscribe } from './revocations.mjs';
import { createService } from './service.mjs';

const env = process.env;
for (const name of ['TESSERA_ISSUER', 'TESSERA_PID', 'SUBSCRIBER_CLIENT_ID', 'SUBSCRIBER_CLIENT_SECRET',
  'USER_NAME', 'USER_PASSWORD', 'OTHER_USER_NAME', 'OTHER_USER_PASSWORD', 'ADMIN_NAME', 'ADMIN_PASSWORD']) {
  if (!env[name]) throw new Error(`test.mjs: ${name} is not set (run scripts/revocation-example.sh)`);
}
const issuer = env.TESSERA_ISSUER;
const started = Date.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- Tessera, as a user, an admin and an OAuth client would use it

async function post(path, params, headers = {}) {
  const res = await fetch(`${issuer}${path}`, { method: 'POST', body: new URLSearchParams(params), headers });
  return { status: res.status, body: await res.text() };
}

async function login(username = env.USER_NAME, password = env.USER_PASSWORD) {
  if (username === env.OTHER_USER_NAME) password = env.OTHER_USER_PASSWORD;
  const res = await post('/oauth/token', { grant_type: 'password', username, password, client_id: 'tessera' });
  assert.equal(res.status, 200, `login ${username}: ${res.body}`);
  return JSON.parse(res.body);
}

async function refresh(refreshToken) {
  const res = await post('/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'tessera' });
  assert.equal(res.status, 200, `refresh: ${res.body}`);
  return JSON.parse(res.body);
}

/** RFC 7009, by the client the token was issued to (the built-in public `tessera`). */
async function revoke(token) {
  const res = await post('/oauth/revoke', { token, client_id: 'tessera' });
  assert.equal(res.status, 200, `revoke: ${res.body}`);
}

async function asAdmin(path, body, expected) {
  const admin = await login(env.ADMIN_NAME, env.ADMIN_PASSWORD);
  const res = await fetch(`${issuer}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin.access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, expected, `${path}: ${await res.text()}`);
}

const endSession = (sid) =>
  asAdmin('/v1/admin/revocations', { sid, reason: 'revocation example: session ended by an admin' }, 201);

/** Polls `condition` (a throw counts as false) until true; answers the ms it took. */
async function waitFor(what, condition, timeoutMs) {
  const start = Date.now();
  for (;;) {
    let ok = false;
    try {
      ok = await condition();
    } catch {
      ok = false;
    }
    if (ok) return Date.now() - start;
    if (Date.now() - start > timeoutMs) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await sleep(25);
  }
}

// ---- The consumer's network, which the test can cut

const calls = []; // { path, lastEventId, at }
let cut = false;
const inFlight = new Set();

async function tappedFetch(url, init = {}) {
  const { pathname } = new URL(url);
  calls.push({ path: pathname, lastEventId: init.headers?.['last-event-id'], at: Date.now(), refused: cut });
  if (cut) throw new TypeError('fetch failed', { cause: new Error('the test cut the network') });
  const wire = new AbortController();
  inFlight.add(wire);
  const signal = init.signal ? AbortSignal.any([init.signal, wire.signal]) : wire.signal;
  return fetch(url, { ...init, signal });
}

function cutNetwork() {
  cut = true;
  for (const wire of inFlight) wire.abort(new Error('the test cut the network'));
  inFlight.clear();
}

const streamCalls = () => calls.filter((c) => c.path === '/v1/revocations/stream');
const snapshotCalls = () => calls.filter((c) => c.path === '/v1/revocations');
const tokenCalls = () => calls.filter((c) => c.path === '/oauth/token' && !c.refused);

// ---- The consumer under test, and the demo service on it

const logged = [];
const received = []; // { kind, value, via }
let feed;
let service;
let serviceUrl;

async function listen(server) {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${server.address().port}`;
}

async function hello(token, base = serviceUrl) {
  const res = await fetch(`${base}/hello`, { headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  return res.status;
}

const claims = (tokens) => decodeJwt(tokens.access_token);

before(async () => {
  feed = subscribe({
    issuer,
    clientId: env.SUBSCRIBER_CLIENT_ID,
    clientSecret: env.SUBSCRIBER_CLIENT_SECRET,
    stalenessMs: 3_000,
    fetch: tappedFetch,
    onEvent: (entry, via) => received.push({ ...entry, via }),
    log: (message) => logged.push(`${((Date.now() - started) / 1000).toFixed(1)} s: ${message}`),
  });
  await feed.ready();
  service = createService({ issuer, feed });
  serviceUrl = await listen(service);
});

after(async () => {
  await feed?.close();
  service?.close();
  if (logged.length) console.error(`the consumer logged:\n  ${logged.join('\n  ')}`);
});

const aliceTokens = {};

test('(a) a token revoked through /oauth/revoke is refused within 2 s; an unrevoked one is accepted', async () => {
  assert.equal(feed.health().state, 'live');
  const revoked = await login();
  const kept = await login();
  Object.assign(aliceTokens, { revoked, kept });
  assert.equal(await hello(revoked.access_token), 200);
  assert.equal(await hello(kept.access_token), 200);

  await revoke(revoked.access_token);
  const ms = await waitFor('the revoked token refused', async () => (await hello(revoked.access_token)) === 401, 2_000);
  console.log(`# (a) refused ${ms} ms after /oauth/revoke answered`);
  assert.equal(feed.isRevoked(claims(revoked)), true);
  assert.equal(await hello(kept.access_token), 200);
  assert.equal(feed.isRevoked(claims(kept)), false);
  // Not a token at all, or not one of Tessera's: refused before the feed is asked.
  assert.equal(await hello('not.a.token'), 401);
});

test('(b) a session ended by the admin API denies every token of that session', async () => {
  const first = await login();
  const second = await refresh(first.refresh_token);
  const other = await login();
  const sid = claims(first).sid;
  assert.ok(sid, 'a user token carries its session');
  assert.equal(claims(second).sid, sid, 'a refresh stays in the session');
  assert.notEqual(claims(other).sid, sid);
  for (const t of [first, second, other]) assert.equal(await hello(t.access_token), 200);

  await endSession(sid);
  const ms = await waitFor('both tokens of the session refused', async () =>
    (await hello(first.access_token)) === 401 && (await hello(second.access_token)) === 401, 2_000);
  console.log(`# (b) the session's tokens refused ${ms} ms after the admin API answered`);
  assert.equal(await hello(other.access_token), 200, 'another session of the same user lives on');
});

test("(b2) an admin revoking everything of a user denies every token issued before, not the user's next login", async () => {
  const [first, second] = [await login(env.OTHER_USER_NAME), await login(env.OTHER_USER_NAME)];
  const sub = claims(first).sub;
  for (const t of [first, second]) assert.equal(await hello(t.access_token), 200);

  await asAdmin(`/v1/admin/users/${sub}/revoke`, { reason: 'revocation example: everything of a user' }, 204);
  const ms = await waitFor("the user's tokens refused", async () =>
    (await hello(first.access_token)) === 401 && (await hello(second.access_token)) === 401, 2_000);
  console.log(`# (b2) the user's tokens refused ${ms} ms after the admin API answered`);
  const entry = received.find((e) => e.kind === 'user' && e.value === sub);
  assert.ok(entry && entry.notBefore > claims(first).iat, 'a user entry denies tokens issued before its not_before');
  // not_before is rounded up to the next second: a login in the same second is denied too.
  await sleep(Math.max(0, entry.notBefore * 1000 - Date.now()) + 50);
  const next = await login(env.OTHER_USER_NAME);
  assert.equal(await hello(next.access_token), 200, 'a login after the revocation is accepted');
});

test('(c) what is revoked while the connection is cut arrives when it is back: resumed by Last-Event-ID, nothing lost or repeated', async () => {
  await waitFor('the feed live', () => feed.health().state === 'live', 2_000);
  const x = await login();
  const y = await login();
  const cursor = feed.health().cursor;
  const snapshots = snapshotCalls().length;
  const streams = streamCalls().length;

  cutNetwork();
  await revoke(x.access_token);
  await endSession(claims(y).sid);
  await sleep(800);
  assert.equal(feed.isRevoked(claims(x)), false, 'nothing arrives while the network is cut');
  assert.equal(feed.isRevoked(claims(y)), false);
  cut = false;

  const ms = await waitFor('both revocations received after the cut', () =>
    feed.isRevoked(claims(x)) && feed.isRevoked(claims(y)), 8_000);
  console.log(`# (c) both arrived ${ms} ms after the network came back`);
  const resumed = streamCalls().slice(streams).filter((c) => !c.refused);
  assert.ok(resumed.length >= 1, 'the stream was opened again');
  assert.equal(resumed[0].lastEventId, cursor, 'it resumed after the last event seen');
  assert.equal(snapshotCalls().length, snapshots, 'no new snapshot was needed');
  for (const value of [claims(x).jti, claims(y).sid]) {
    const got = received.filter((e) => e.value === value);
    assert.deepEqual(got.map((e) => e.via), ['stream'], `${value} arrived once, by the stream`);
  }
  assert.equal(await hello(x.access_token), 401);
  assert.equal(await hello(y.access_token), 401);
});

// (e) runs before (d), which kills Tessera.
test("(e) when the subscriber's token expires the stream ends, and the consumer goes on with a new token", async () => {
  // The subscriber client's tokens live 10 s: one renewal is at most that far away.
  const renewed = tokenCalls().length;
  const streams = streamCalls().length;
  const cursor = feed.health().cursor;
  const states = new Set();
  const watch = setInterval(() => states.add(feed.health().state), 20);
  try {
    await waitFor('a new subscriber token', () => tokenCalls().length > renewed, 11_000);
    await waitFor('the stream opened again', () => streamCalls().length > streams, 2_000);
    assert.equal(streamCalls().at(-1).lastEventId, cursor, 'the new stream resumed by cursor');
    const z = await login();
    await revoke(z.access_token);
    const ms = await waitFor('a revocation after the renewal', () => feed.isRevoked(claims(z)), 2_000);
    console.log(`# (e) renewed the token ${((Date.now() - started) / 1000).toFixed(1)} s in; the next revocation arrived in ${ms} ms`);
  } finally {
    clearInterval(watch);
  }
  assert.deepEqual([...states], ['live'], 'the feed never went stale across the renewal');
});

test('(d) with Tessera killed, isRevoked fails closed after stalenessMs (and a failOpen consumer goes on)', async () => {
  const options = { issuer, clientId: env.SUBSCRIBER_CLIENT_ID, clientSecret: env.SUBSCRIBER_CLIENT_SECRET, stalenessMs: 1_500, log: () => {} };
  const strict = subscribe(options);
  const lenient = subscribe({ ...options, failOpen: true });
  const strictService = createService({ issuer, feed: strict });
  const strictUrl = await listen(strictService);
  try {
    await Promise.all([strict.ready(), lenient.ready()]);
    const { revoked, kept } = aliceTokens;
    assert.equal(await hello(kept.access_token, strictUrl), 200, 'the service has the JWKS before Tessera dies');
    await sleep(400); // both streams are open and have heard heartbeats
    assert.equal(strict.health().state, 'live');

    process.kill(Number(env.TESSERA_PID), 'SIGKILL');
    const killed = Date.now();
    const silentFor = strict.health().lastHeardMsAgo; // since the last heartbeat
    assert.equal(strict.isRevoked(claims(kept)), false, 'within stalenessMs it still answers');
    assert.equal(strict.isRevoked(claims(revoked)), true);

    const ms = await waitFor('isRevoked failing closed', () => {
      try {
        strict.isRevoked(claims(kept));
        return false;
      } catch (err) {
        return err.name === 'StaleFeedError';
      }
    }, 2_500);
    console.log(`# (d) isRevoked threw ${ms} ms after Tessera was killed, ${silentFor} ms after the last heartbeat (stalenessMs 1500)`);
    const expected = 1_500 - silentFor;
    assert.ok(Math.abs(ms - expected) <= 150, `it fails closed once stalenessMs has passed since the last heartbeat: after ${ms} ms, not ${expected}`);
    assert.equal(strict.health().state, 'stale');
    assert.equal(await hello(kept.access_token, strictUrl), 503, 'the service answers 503 while stale');
    const health = await fetch(`${strictUrl}/healthz`);
    assert.equal(health.status, 503);
    assert.equal((await health.json()).state, 'stale');

    // Its last heartbeat may have come up to one interval after the strict one's.
    await waitFor('the failOpen consumer stale too', () => lenient.health().state === 'stale', 500);
    assert.equal(lenient.isRevoked(claims(kept)), false, 'failOpen: answers from what it holds');
    assert.equal(lenient.isRevoked(claims(revoked)), true, 'failOpen still denies what it knows');
    console.log(`# (d) Tessera killed ${((killed - started) / 1000).toFixed(1)} s in`);
  } finally {
    strictService.close();
    await Promise.all([strict.close(), lenient.close()]);
  }
});
