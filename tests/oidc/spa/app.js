// The example SPA: oidc-client-ts's UserManager against Tessera, the authorization-code
// flow with PKCE (S256, the library's default). Every outcome is written into elements
// with ids, which tests/oidc/browser.mjs reads:
//   #status       "signed in" | "signed out" | "callback failed" | ...
//   #username     preferred_username of the signed-in user (ID token + userinfo claims)
//   #token        a fingerprint of the current access token (to see that Refresh changed it)
//   #has-refresh  "yes" when the user holds a refresh token
//   #result       "<action>: running" | "<action>: ok" | "<action>: failed"
//   #error        the last error's message
//   #api          the JSON body of GET /oauth/userinfo (the API this app may call: a
//                 third-party app's tokens are not for Tessera's own /v1 API)
/* global oidc */
'use strict';

const config = window.TESSERA_CONFIG;
const userManager = new oidc.UserManager({
  authority: config.issuer,
  client_id: 'spa',
  redirect_uri: `${location.origin}/callback.html`,
  post_logout_redirect_uri: `${location.origin}/`,
  scope: 'openid profile',
  response_type: 'code',
  // Claims from the userinfo endpoint are merged into user.profile (a CORS call too).
  loadUserInfo: true,
  // Renewal only when the Refresh button asks: no timers in a test page.
  automaticSilentRenew: false,
});

const byId = (id) => document.getElementById(id);
const show = (id, text) => {
  const el = byId(id);
  if (el) el.textContent = text;
};

async function fingerprint(token) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token));
  return Array.from(new Uint8Array(digest).slice(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function render() {
  const user = await userManager.getUser();
  if (user && !user.expired) {
    show('status', 'signed in');
    show('username', user.profile.preferred_username ?? '');
    show('token', await fingerprint(user.access_token));
    show('has-refresh', user.refresh_token ? 'yes' : 'no');
  } else {
    show('status', 'signed out');
    show('username', '');
    show('token', '');
    show('has-refresh', '');
  }
}

// Runs one button's action, recording "running", then "ok" or "failed" and the error.
async function action(name, fn) {
  show('result', `${name}: running`);
  show('error', '');
  try {
    await fn();
    await render();
    show('result', `${name}: ok`);
  } catch (err) {
    console.error(name, err);
    show('error', String(err && err.message ? err.message : err));
    show('result', `${name}: failed`);
  }
}

async function callApi() {
  const user = await userManager.getUser();
  if (!user) throw new Error('not signed in');
  const res = await fetch(new URL('/oauth/userinfo', config.issuer), {
    headers: { Authorization: `Bearer ${user.access_token}` },
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`GET /oauth/userinfo answered ${res.status}: ${body}`);
  show('api', JSON.stringify(JSON.parse(body), null, 2));
}

async function refresh() {
  const user = await userManager.getUser();
  if (!user || !user.refresh_token) throw new Error('no refresh token to refresh with');
  // With a refresh token (and no forceIframeAuth) signinSilent() posts
  // grant_type=refresh_token to the token endpoint: no iframe, which Tessera's
  // frame-ancestors 'none' would refuse. (No silent_redirect_uri is configured, so the
  // iframe path would fail loudly instead of being taken quietly.)
  const renewed = await userManager.signinSilent();
  if (!renewed) throw new Error('signinSilent returned no user');
}

async function main() {
  if (location.pathname === '/callback.html') {
    try {
      await userManager.signinRedirectCallback();
      location.replace('/');
    } catch (err) {
      console.error('callback', err);
      show('status', 'callback failed');
      show('error', String(err && err.message ? err.message : err));
    }
    return;
  }

  byId('signin').addEventListener('click', () => action('signin', () => userManager.signinRedirect()));
  byId('callapi').addEventListener('click', () => action('callapi', callApi));
  byId('refresh').addEventListener('click', () => action('refresh', refresh));
  byId('signout').addEventListener('click', () =>
    action('signout', () => userManager.signoutRedirect({ state: 'signed-out' })));

  const params = new URLSearchParams(location.search);
  if (params.has('state') && !params.has('code')) {
    // Back from Tessera's end_session endpoint (post_logout_redirect_uri with our state).
    await action('signout-callback', async () => {
      const response = await userManager.signoutRedirectCallback();
      if (response.userState !== 'signed-out') {
        throw new Error(`unexpected state after sign-out: ${JSON.stringify(response.userState)}`);
      }
      history.replaceState(null, '', '/');
    });
    return;
  }
  await render();
}

main().catch((err) => {
  console.error(err);
  show('status', 'error');
  show('error', String(err && err.message ? err.message : err));
});
