// Drives Debian's Chromium (playwright-core, no browser download) through the example
// SPA's OpenID Connect code flow against Tessera: sign in on Tessera's login page, consent,
// call the API, refresh, sign out, and check that Tessera's login page refuses to be
// framed. Each step is asserted; the first failure exits 1 with what the page showed.
//
// Environment: TESSERA_ISSUER, SPA_URL (http://localhost:PORT/ of tests/oidc/serve.mjs),
// OIDC_USERNAME, OIDC_PASSWORD; SCREENSHOT_DIR (default target/oidc of the repository)
// gets login.png and consent.png (and failure.png when a step fails).
import { chromium } from 'playwright-core';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const issuer = need('TESSERA_ISSUER');
const spaUrl = new URL(need('SPA_URL'));
const username = need('OIDC_USERNAME');
const password = need('OIDC_PASSWORD');
const screenshots = path.resolve(process.env.SCREENSHOT_DIR || path.join(here, '..', '..', 'target', 'oidc'));
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT = 10_000;

function need(name) {
  if (!process.env[name]) {
    console.error(`browser: FAILED: ${name} must be set`);
    process.exit(2);
  }
  return process.env[name];
}

// The whole run is bounded, whatever hangs.
const watchdog = setTimeout(() => {
  console.error('browser: FAILED: the run took more than 90 s');
  process.exit(1);
}, 90_000);

class StepFailure extends Error {}
const check = (condition, message) => {
  if (!condition) throw new StepFailure(message);
};

await mkdir(screenshots, { recursive: true });
let browser;
try {
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
} catch (err) {
  console.error(`browser: FAILED: cannot launch Chromium at ${chromiumPath} (CI installs Debian's chromium): ${err.message}`);
  process.exit(1);
}
const context = await browser.newContext({ viewport: { width: 800, height: 700 } });
context.setDefaultTimeout(STEP_TIMEOUT);
const page = await context.newPage();

// What the pages said, for the failure report.
const log = [];
const record = (line) => {
  log.push(line);
  if (log.length > 40) log.shift();
};
context.on('console', (m) => record(`console.${m.type()}: ${m.text()}`));
context.on('weberror', (e) => record(`page error: ${e.error().message}`));
context.on('requestfailed', (r) => record(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`));
context.on('response', (r) => {
  if (r.status() >= 400) record(`response ${r.status()}: ${r.request().method()} ${r.url()}`);
});

const text = async (selector) => ((await page.locator(selector).textContent()) ?? '').trim();

// Polls until the page's URL satisfies `want`, failing early when the SPA's #result says
// the action that should have navigated failed.
async function waitForUrl(want, what, action) {
  const deadline = Date.now() + STEP_TIMEOUT;
  while (Date.now() < deadline) {
    const url = new URL(page.url());
    if (want(url)) return url;
    if (action && url.origin === spaUrl.origin) {
      const state = await page.evaluate(() => [
        document.querySelector('#result')?.textContent ?? '',
        document.querySelector('#error')?.textContent ?? '',
      ]).catch(() => null);
      if (state && state[0] === `${action}: failed`) throw new StepFailure(`${action} failed in the SPA: ${state[1]}`);
    }
    await page.waitForTimeout(100);
  }
  throw new StepFailure(`expected ${what}, still at ${page.url()}`);
}

// Clicks an SPA button and waits for its action to finish; returns the page's #error on
// failure as a StepFailure.
async function spaAction(button, action) {
  await page.getByRole('button', { name: button, exact: true }).click();
  await page.waitForFunction((name) => {
    const t = document.querySelector('#result')?.textContent ?? '';
    return t === `${name}: ok` || t === `${name}: failed`;
  }, action);
  if ((await text('#result')) !== `${action}: ok`) {
    throw new StepFailure(`${button}: ${await text('#error')}`);
  }
}

const onTessera = (url) => url.origin === new URL(issuer).origin;
const onSpaRoot = (url) => url.origin === spaUrl.origin && url.pathname === '/';

async function signInToLoginPage() {
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const url = await waitForUrl((u) => onTessera(u) && u.pathname === '/oauth/authorize',
    `Tessera's /oauth/authorize`, 'signin');
  check(url.searchParams.get('client_id') === 'spa', `authorize URL has client_id ${url.searchParams.get('client_id')}`);
  check(url.searchParams.get('code_challenge_method') === 'S256', 'authorize URL is not PKCE S256');
  await page.getByLabel('Username', { exact: true }).waitFor({ state: 'visible' });
  await page.getByLabel('Password', { exact: true }).waitFor({ state: 'visible' });
  return url;
}

const steps = [];
const step = (name, fn) => steps.push([name, fn]);
let firstToken;
let authorizeUrl;

step('open the SPA: signed out', async () => {
  await page.goto(spaUrl.href);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'signed out');
});

step('Sign in: Tessera\'s login page, fields found by their labels', async () => {
  await signInToLoginPage();
  check(await page.getByRole('button', { name: 'Sign in' }).isVisible(), 'the login page has no "Sign in" button');
  await page.screenshot({ path: path.join(screenshots, 'login.png') });
});

step('username and password, Enter in the password field: the consent page', async () => {
  await page.getByLabel('Username', { exact: true }).fill(username);
  const field = page.getByLabel('Password', { exact: true });
  await field.fill(password);
  await field.press('Enter');
  await waitForUrl((u) => onTessera(u) && u.pathname === '/oauth/authorize/consent', 'the consent page');
  await page.getByRole('button', { name: 'Allow', exact: true }).waitFor({ state: 'visible' });
  check(await page.getByRole('button', { name: 'Deny', exact: true }).isVisible(), 'the consent page has no "Deny" button');
  await page.screenshot({ path: path.join(screenshots, 'consent.png') });
});

step('Allow: back at the SPA, signed in as the user', async () => {
  await page.getByRole('button', { name: 'Allow', exact: true }).click();
  await waitForUrl(onSpaRoot, `the SPA's / after the callback`);
  await page.waitForFunction(() => ['signed in', 'signed out', 'callback failed', 'error']
    .includes(document.querySelector('#status')?.textContent));
  check((await text('#status')) === 'signed in', `the SPA says ${await text('#status')}: ${await text('#error')}`);
  check((await text('#username')) === username, `the SPA shows username "${await text('#username')}", expected "${username}"`);
  check((await text('#has-refresh')) === 'yes', 'the SPA holds no refresh token');
  firstToken = await text('#token');
});

step('Call API: GET /oauth/userinfo with the access token returns the user', async () => {
  await spaAction('Call API', 'callapi');
  const me = JSON.parse(await text('#api'));
  check(me.preferred_username === username, `userinfo says preferred_username ${JSON.stringify(me.preferred_username)}: ${JSON.stringify(me)}`);
});

step('Refresh: a new access token (refresh-token grant), and the API takes it', async () => {
  await spaAction('Refresh', 'refresh');
  const token = await text('#token');
  check(token && token !== firstToken, `the access token did not change (${firstToken} -> ${token})`);
  check((await text('#username')) === username, 'the username is gone after the refresh');
  await page.locator('#api').evaluate((el) => { el.textContent = ''; });
  await spaAction('Call API', 'callapi');
  check(JSON.parse(await text('#api')).preferred_username === username, 'userinfo with the refreshed token');
});

step('Sign out: end_session, back at the SPA\'s /, the user gone', async () => {
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  // Through Tessera's /oauth/logout and back to /?state=..., which the SPA checks and
  // then replaces by /.
  await page.waitForFunction(() => {
    const t = document.querySelector('#result')?.textContent ?? '';
    return t === 'signout-callback: ok' || t === 'signout-callback: failed' || t === 'signout: failed';
  }, undefined, { timeout: STEP_TIMEOUT });
  check((await text('#result')) === 'signout-callback: ok', `sign-out: ${await text('#result')}: ${await text('#error')}`);
  const url = new URL(page.url());
  check(onSpaRoot(url) && url.search === '', `after sign-out the SPA is at ${url.href}`);
  check((await text('#status')) === 'signed out', `after sign-out the SPA says ${await text('#status')}`);
  check((await text('#username')) === '', `after sign-out the SPA still shows ${await text('#username')}`);
});

step('Sign in again: the login page again (Tessera\'s browser session ended)', async () => {
  authorizeUrl = await signInToLoginPage();
});

step('Tessera\'s login page in an <iframe> on the SPA\'s origin is refused', async () => {
  const framing = await context.newPage();
  const src = authorizeUrl.href;
  const answered = framing.waitForEvent('response', (r) => r.url() === src);
  await framing.goto(`${spaUrl.origin}/frame.html?src=${encodeURIComponent(src)}`);
  const response = await answered;
  const csp = (await response.allHeaders())['content-security-policy'] ?? '';
  check(/frame-ancestors\s+'none'/.test(csp), `the login page's CSP has no frame-ancestors 'none': ${JSON.stringify(csp)}`);
  const frame = await (await framing.$('#framed')).contentFrame();
  check(frame, 'the iframe has no frame');
  await frame.waitForLoadState('load').catch(() => {});
  await framing.waitForTimeout(300);
  const rendered = await frame.locator('input[name="password"], input[name="username"]').count().catch(() => 0);
  check(rendered === 0, `the framed login page rendered its form (frame URL ${frame.url()})`);
  const refused = log.some((l) => /frame-ancestors/.test(l));
  console.log(`browser:   frame URL ${frame.url()}${refused ? '; Chromium logged the frame-ancestors refusal' : ''}`);
  await framing.close();
});

let passed = 0;
let failure;
const started = Date.now();
for (const [name, fn] of steps) {
  try {
    await fn();
    passed += 1;
    console.log(`browser: ok ${passed} - ${name}`);
  } catch (err) {
    failure = { name, err };
    break;
  }
}

if (failure) {
  const { name, err } = failure;
  console.error(`browser: FAILED at step "${name}": ${err instanceof StepFailure ? err.message : err.stack}`);
  console.error(`browser: page URL: ${page.url()}`);
  const shown = await page.evaluate(() => document.body?.innerText?.slice(0, 1500)).catch(() => '(unreadable)');
  console.error(`browser: page text:\n${shown}`);
  if (log.length) console.error(`browser: recent browser messages:\n  ${log.join('\n  ')}`);
  if (log.some((l) => /violates the following Content Security Policy directive: "form-action/.test(l))) {
    console.error("browser: hint: Chromium applies a page's CSP form-action to the redirects after the form's POST too, so form-action 'self' blocks the 303 to the client's redirect_uri");
  }
  await page.screenshot({ path: path.join(screenshots, 'failure.png') }).catch(() => {});
  console.error(`browser: screenshot ${path.join(screenshots, 'failure.png')}`);
}
await browser.close();
clearTimeout(watchdog);
if (failure) process.exit(1);
console.log(`browser: all ${passed} steps passed in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${screenshots}`);
