// A tiny service protecting GET /hello with Tessera's access tokens, verified offline:
// the signature and claims with jose against Tessera's JWKS, revocation against the
// feed (revocations.mjs). 401 for an invalid or revoked token, 503 while the feed is
// stale; GET /healthz reports the feed's health.
//
//   TESSERA_ISSUER=http://127.0.0.1:8080 SUBSCRIBER_CLIENT_ID=edge-verifier \
//   SUBSCRIBER_CLIENT_SECRET=cs_... node service.mjs
//
// Environment: TESSERA_ISSUER; SUBSCRIBER_CLIENT_ID and SUBSCRIBER_CLIENT_SECRET (a
// confidential client with the tessera:revocations scope); AUDIENCE (the `aud` this
// service accepts; default the issuer, which is what Tessera's tokens carry when their
// client names no audience); PORT (default 3000); STALENESS_MS (default 30000);
// FAIL_OPEN=1 to keep serving while the feed is stale.

import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { StaleFeedError, subscribe } from './revocations.mjs';

/** The HTTP server (not listening yet), for `feed` (what subscribe returned). */
export function createService({ issuer, audience = issuer, feed }) {
  const jwks = createRemoteJWKSet(new URL(`${issuer.replace(/\/+$/, '')}/.well-known/jwks.json`));

  const send = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
    res.end(JSON.stringify(body));
  };
  const refuse = (res, description) =>
    send(res, 401, { error: 'invalid_token', error_description: description }, {
      'www-authenticate': `Bearer error="invalid_token", error_description="${description}"`,
    });

  async function hello(req, res) {
    const [scheme, token] = (req.headers.authorization ?? '').split(' ');
    if (scheme?.toLowerCase() !== 'bearer' || !token) {
      return send(res, 401, { error: 'invalid_request' }, { 'www-authenticate': 'Bearer' });
    }
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt' }));
    } catch {
      return refuse(res, 'the token is invalid');
    }
    try {
      if (feed.isRevoked(claims)) return refuse(res, 'the token is revoked');
    } catch (err) {
      if (!(err instanceof StaleFeedError)) throw err;
      return send(res, 503, { error: 'temporarily_unavailable', error_description: err.message }, { 'retry-after': '1' });
    }
    send(res, 200, { hello: claims.sub });
  }

  return createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://service');
    if (req.method === 'GET' && pathname === '/hello') {
      hello(req, res).catch((err) => send(res, 500, { error: String(err) }));
    } else if (req.method === 'GET' && pathname === '/healthz') {
      const health = feed.health();
      send(res, health.state === 'live' ? 200 : 503, health);
    } else {
      send(res, 404, { error: 'not_found' });
    }
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { env } = process;
  const issuer = env.TESSERA_ISSUER;
  if (!issuer || !env.SUBSCRIBER_CLIENT_ID || !env.SUBSCRIBER_CLIENT_SECRET) {
    console.error('service: set TESSERA_ISSUER, SUBSCRIBER_CLIENT_ID and SUBSCRIBER_CLIENT_SECRET');
    process.exit(2);
  }
  const feed = subscribe({
    issuer,
    clientId: env.SUBSCRIBER_CLIENT_ID,
    clientSecret: env.SUBSCRIBER_CLIENT_SECRET,
    stalenessMs: Number(env.STALENESS_MS ?? 30_000),
    failOpen: env.FAIL_OPEN === '1',
  });
  const server = createService({ issuer, audience: env.AUDIENCE || issuer, feed });
  const port = Number(env.PORT ?? 3000);
  server.listen(port, () => console.log(`service: http://localhost:${port}/hello`));
  const stop = async () => {
    server.close();
    await feed.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
