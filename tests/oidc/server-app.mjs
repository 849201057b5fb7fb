// A server-side relying party against Tessera, with the unmodified openid-client (v6):
// the confidential, first-party client `web` (client_secret_basic) runs the
// authorization-code flow with PKCE, state and nonce. No browser: this script walks
// Tessera's login form itself with fetch, carrying the cookies and following the 303s by
// hand, and never follows the final redirect to the callback (nothing listens there).
//
// Environment: TESSERA_ISSUER, WEB_CLIENT_SECRET, WEB_REDIRECT_URI, OIDC_USERNAME,
// OIDC_PASSWORD. Exits non-zero with a message on the first failed check.
import * as client from 'openid-client';

const issuer = need('TESSERA_ISSUER');
const clientSecret = need('WEB_CLIENT_SECRET');
const redirectUri = need('WEB_REDIRECT_URI');
const username = need('OIDC_USERNAME');
const password = need('OIDC_PASSWORD');

function need(name) {
  const value = process.env[name];
  if (!value) fail(`${name} must be set`);
  return value;
}

function fail(message) {
  console.error(`server-app: FAILED: ${message}`);
  process.exit(1);
}

let passed = 0;
function ok(what) {
  passed += 1;
  console.log(`server-app: ok ${passed} - ${what}`);
}

function check(condition, message) {
  if (!condition) fail(message);
}

// What a response was, for failure messages: status, Location, the start of the body.
async function describe(res) {
  const body = await res.text().catch(() => '');
  const location = res.headers.get('location');
  return `${res.status}${location ? ` Location: ${location}` : ''}${body ? ` body: ${body.slice(0, 600)}` : ''}`;
}

// --- a cookie jar just big enough for one origin ---------------------------------------
const jar = new Map();
function keepCookies(res) {
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attributes] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attributes.some((a) => {
      const [k, v = ''] = a.trim().split('=');
      return (k.toLowerCase() === 'max-age' && Number(v) <= 0) ||
        (k.toLowerCase() === 'expires' && Date.parse(v) < Date.now());
    });
    if (expired) jar.delete(name);
    else jar.set(name, { value, attributes: attributes.map((a) => a.trim()) });
  }
}
const cookieHeader = () => [...jar].map(([name, { value }]) => `${name}=${value}`).join('; ');

async function request(url, init = {}) {
  const headers = new Headers(init.headers);
  if (jar.size) headers.set('cookie', cookieHeader());
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  keepCookies(res);
  return res;
}

// --- the HTML of Tessera's forms ---------------------------------------------------------
function attribute(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i'));
  if (!m) return undefined;
  return decodeEntities(m[2] ?? m[3] ?? m[4]);
}
function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos|#39);/gi, (_, e) => {
    const l = e.toLowerCase();
    if (l.startsWith('#x')) return String.fromCodePoint(parseInt(l.slice(2), 16));
    if (l.startsWith('#')) return String.fromCodePoint(parseInt(l.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[l];
  });
}
function parseForm(html, pageUrl) {
  const form = html.match(/<form\b[^>]*>/i);
  if (!form) return undefined;
  const hidden = {};
  for (const input of html.match(/<input\b[^>]*>/gi) ?? []) {
    if ((attribute(input, 'type') ?? '').toLowerCase() === 'hidden') {
      hidden[attribute(input, 'name')] = attribute(input, 'value') ?? '';
    }
  }
  return {
    method: (attribute(form[0], 'method') ?? 'get').toLowerCase(),
    action: new URL(attribute(form[0], 'action') ?? pageUrl, pageUrl),
    hidden,
  };
}

// Follows 303/302 redirects by hand (GET, with the jar's cookies) until one points at the
// client's redirect URI, which is returned without being requested. Any HTML page met on
// the way is a failure: for the first-party `web` client there is no consent step.
async function followToCallback(res, from) {
  let current = res;
  for (let hops = 0; hops < 5; hops += 1) {
    if (![302, 303].includes(current.status)) {
      fail(`${from}: expected a redirect towards ${redirectUri}, got ${await describe(current)}`);
    }
    const location = new URL(current.headers.get('location'), issuer);
    if (location.href.startsWith(`${redirectUri}?`)) return location;
    check(location.origin === new URL(issuer).origin,
      `${from}: redirected to ${location.href}, neither Tessera nor ${redirectUri}`);
    if (location.pathname.startsWith('/oauth/authorize/consent')) {
      fail(`${from}: the first-party client web was sent to the consent page ${location.href}`);
    }
    current = await request(location);
  }
  return fail(`${from}: more than 5 redirects`);
}

// --- 1. discovery -------------------------------------------------------------------------
const config = await client.discovery(
  new URL(issuer),
  'web',
  clientSecret,
  client.ClientSecretBasic(clientSecret),
  { execute: [client.allowInsecureRequests] },
).catch((err) => fail(`discovery of ${issuer}: ${err.message}${err.cause ? ` (${JSON.stringify(err.cause)})` : ''}`));
const meta = config.serverMetadata();
check(meta.issuer === issuer, `discovery: issuer is ${meta.issuer}, expected ${issuer}`);
check(meta.code_challenge_methods_supported?.includes('S256'),
  `discovery: code_challenge_methods_supported is ${JSON.stringify(meta.code_challenge_methods_supported)}`);
for (const key of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'end_session_endpoint']) {
  check(typeof meta[key] === 'string', `discovery: no ${key}`);
}
ok(`discovery: ${issuer}/.well-known/openid-configuration`);

// --- 2. the authorization request, walked without a browser --------------------------
async function authorizationUrl() {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  return { url, codeVerifier, state, nonce };
}

const first = await authorizationUrl();
let page = await request(first.url);
let html = await page.text();
check(page.status === 200, `GET ${first.url.pathname}: expected the login page (200), got ${page.status} ${page.headers.get('location') ?? ''} ${html.slice(0, 600)}`);
let form = parseForm(html, page.url || first.url);
check(form, `GET ${first.url.pathname}: no <form> in the login page: ${html.slice(0, 600)}`);
check(form.method === 'post', `login form: method is ${form.method}, expected post`);
check(form.action.pathname === '/oauth/authorize/login', `login form: action is ${form.action.pathname}`);
check(form.hidden.flow && form.hidden.csrf, `login form: hidden inputs are ${JSON.stringify(Object.keys(form.hidden))}, expected flow and csrf`);
check(jar.has('__Host-tessera-login'), `GET /oauth/authorize: no __Host-tessera-login cookie set (Set-Cookie: ${JSON.stringify(page.headers.getSetCookie())})`);
const loginCookie = jar.get('__Host-tessera-login').attributes.map((a) => a.toLowerCase());
for (const attr of ['httponly', 'secure', 'samesite=lax', 'path=/']) {
  check(loginCookie.includes(attr), `__Host-tessera-login lacks ${attr}: ${JSON.stringify(jar.get('__Host-tessera-login').attributes)}`);
}
ok('GET /oauth/authorize: the login page, with flow and csrf, and the __Host-tessera-login cookie');

function postForm(f, fields) {
  return request(f.action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...f.hidden, ...fields }),
  });
}

// A wrong password first: the login page again, with the message.
page = await postForm(form, { username, password: `${password} but wrong` });
html = await page.text();
check(page.status === 400, `POST /oauth/authorize/login with a wrong password: expected 400, got ${page.status} ${page.headers.get('location') ?? ''} ${html.slice(0, 300)}`);
check(html.includes('Invalid username or password.'), `wrong password: the page lacks "Invalid username or password.": ${html.slice(0, 600)}`);
form = parseForm(html, form.action);
check(form && form.hidden.flow && form.hidden.csrf, `wrong password: the page has no login form with flow and csrf: ${html.slice(0, 600)}`);
ok('POST /oauth/authorize/login, wrong password: 400, "Invalid username or password.", the form again');

const loggedIn = await postForm(form, { username, password });
check(loggedIn.status === 303, `POST /oauth/authorize/login: expected 303, got ${await describe(loggedIn.clone())}`);
check(jar.has('__Host-tessera-session'), `POST /oauth/authorize/login: no __Host-tessera-session cookie (Set-Cookie: ${JSON.stringify(loggedIn.headers.getSetCookie())})`);
const sessionCookie = jar.get('__Host-tessera-session').attributes.map((a) => a.toLowerCase());
for (const attr of ['httponly', 'secure', 'samesite=lax', 'path=/']) {
  check(sessionCookie.includes(attr), `__Host-tessera-session lacks ${attr}: ${JSON.stringify(jar.get('__Host-tessera-session').attributes)}`);
}
let callbackUrl = await followToCallback(loggedIn, 'POST /oauth/authorize/login');
check(callbackUrl.searchParams.get('state') === first.state, `callback: state is ${callbackUrl.searchParams.get('state')}, expected ${first.state}`);
check(callbackUrl.searchParams.get('code'), `callback: no code in ${callbackUrl.href}`);
ok(`login: 303 to the callback with code and state (${[...callbackUrl.searchParams.keys()].join(', ')})`);

// --- 3. the code for tokens; openid-client validates the ID token ---------------------
let tokens;
try {
  tokens = await client.authorizationCodeGrant(config, callbackUrl, {
    pkceCodeVerifier: first.codeVerifier,
    expectedState: first.state,
    expectedNonce: first.nonce,
    idTokenExpected: true,
  });
} catch (err) {
  fail(`authorizationCodeGrant: ${err.message}${err.cause ? ` (${JSON.stringify(err.cause)})` : ''}`);
}
check(tokens.access_token && tokens.refresh_token && tokens.id_token,
  `token response lacks access_token, refresh_token or id_token: ${Object.keys(tokens).join(', ')}`);
check(tokens.token_type?.toLowerCase() === 'bearer', `token_type is ${tokens.token_type}`);
const claims = tokens.claims();
check(claims.sub, 'ID token has no sub');
ok(`authorizationCodeGrant: tokens, ID token valid (iss, aud=${JSON.stringify(claims.aud)}, exp, nonce${claims.at_hash ? ', at_hash' : ''}; sub ${claims.sub})`);

// --- 4. userinfo ------------------------------------------------------------------------
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
  .catch((err) => fail(`fetchUserInfo: ${err.message}`));
check(userinfo.preferred_username === username, `userinfo preferred_username is ${JSON.stringify(userinfo.preferred_username)}, expected ${username}`);
ok(`fetchUserInfo: sub ${userinfo.sub}, preferred_username ${userinfo.preferred_username}`);

// --- 5. refresh -------------------------------------------------------------------------
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  .catch((err) => fail(`refreshTokenGrant: ${err.message}${err.cause ? ` (${JSON.stringify(err.cause)})` : ''}`));
check(refreshed.access_token && refreshed.access_token !== tokens.access_token, 'refreshTokenGrant: no new access token');
const again = await client.fetchUserInfo(config, refreshed.access_token, claims.sub)
  .catch((err) => fail(`fetchUserInfo with the refreshed access token: ${err.message}`));
check(again.preferred_username === username, `userinfo after refresh: preferred_username ${again.preferred_username}`);
ok('refreshTokenGrant: a new access token, accepted by userinfo');

// --- 6. the browser session: a second authorization needs no password -----------------
const second = await authorizationUrl();
const direct = await request(second.url);
callbackUrl = await followToCallback(direct, 'GET /oauth/authorize with the session cookie');
check(callbackUrl.searchParams.get('state') === second.state, 'second authorization: wrong state');
const tokens2 = await client.authorizationCodeGrant(config, callbackUrl, {
  pkceCodeVerifier: second.codeVerifier, expectedState: second.state, expectedNonce: second.nonce,
  idTokenExpected: true,
}).catch((err) => fail(`second authorizationCodeGrant: ${err.message}`));
check(tokens2.claims().sub === claims.sub, 'second authorization: another sub');
ok('GET /oauth/authorize with the session cookie: straight to the callback, same sub');

// --- 7. a code used twice: refused, and what it issued is revoked (RFC 6749 4.1.2) ------
try {
  await client.authorizationCodeGrant(config, callbackUrl, {
    pkceCodeVerifier: second.codeVerifier, expectedState: second.state, expectedNonce: second.nonce,
  });
  fail('the same authorization code was accepted twice');
} catch (err) {
  check(err.error === 'invalid_grant', `a reused code: expected invalid_grant, got ${err.error ?? err.message}`);
}
ok('the same authorization code again: invalid_grant');
const afterReuse = await fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens2.access_token}` } });
check(afterReuse.status === 401, `userinfo with the access token of a code used twice: expected 401, got ${await describe(afterReuse)}`);
try {
  await client.refreshTokenGrant(config, tokens2.refresh_token);
  fail('the refresh token of a code used twice still works');
} catch (err) {
  check(err.error === 'invalid_grant', `the refresh token of a code used twice: expected invalid_grant, got ${err.error ?? err.message}`);
}
ok('the tokens of the code used twice are revoked: userinfo 401, refresh invalid_grant');

// --- 8. a pushed authorization request (RFC 9126), as openid-client sends one -----------
check(meta.pushed_authorization_request_endpoint, 'discovery: no pushed_authorization_request_endpoint');
{
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  }).catch((err) => fail(`buildAuthorizationUrlWithPAR: ${err.message}`));
  check(url.searchParams.get('request_uri')?.startsWith('urn:ietf:params:oauth:request_uri:'),
    `PAR: the authorization URL has no request_uri: ${url.href.slice(0, 200)}`);
  check(!url.searchParams.has('redirect_uri'), 'PAR: the authorization URL still carries the request');
  const back = await followToCallback(await request(url), 'GET /oauth/authorize with a request_uri');
  const pushed = await client.authorizationCodeGrant(config, back, {
    pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  }).catch((err) => fail(`authorizationCodeGrant after PAR: ${err.message}`));
  check(pushed.claims().sub === claims.sub, 'PAR: another sub');
}
ok('pushed authorization request: buildAuthorizationUrlWithPAR, request_uri, code, ID token');

console.log(`server-app: all ${passed} checks passed`);
