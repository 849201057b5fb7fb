// Serves the example SPA (tests/oidc/spa) and the unmodified oidc-client-ts browser
// bundle from node_modules, with node:http only.
//
//   TESSERA_ISSUER=http://localhost:8080 [SPA_PORT=5173] node tests/oidc/serve.mjs
//
// SPA_PORT unset or 0: a free port. Listens on 127.0.0.1; prints one line
// "spa: http://localhost:PORT/" once it listens (the SPA is opened by that name, the one
// registered as the client's redirect URIs' origin and as Tessera's CORS origin).
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const issuer = process.env.TESSERA_ISSUER;
if (!issuer) {
  console.error('serve.mjs: TESSERA_ISSUER must be set (the issuer the SPA signs in with)');
  process.exit(2);
}
const port = Number(process.env.SPA_PORT || 0);

const files = {
  '/': ['spa/index.html', 'text/html; charset=utf-8'],
  '/index.html': ['spa/index.html', 'text/html; charset=utf-8'],
  '/callback.html': ['spa/callback.html', 'text/html; charset=utf-8'],
  '/frame.html': ['spa/frame.html', 'text/html; charset=utf-8'],
  '/app.js': ['spa/app.js', 'text/javascript; charset=utf-8'],
  '/frame.js': ['spa/frame.js', 'text/javascript; charset=utf-8'],
  '/oidc-client-ts.min.js': [
    'node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js',
    'text/javascript; charset=utf-8',
  ],
};
const configJs = `window.TESSERA_CONFIG = ${JSON.stringify({ issuer })};\n`;

const server = http.createServer(async (req, res) => {
  const { pathname } = new URL(req.url, 'http://localhost');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  if (pathname === '/config.js') {
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : configJs);
    return;
  }
  const entry = files[pathname];
  if (!entry) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  try {
    const body = await readFile(path.join(here, entry[0]));
    res.writeHead(200, { 'content-type': entry[1], 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`);
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`spa: http://localhost:${server.address().port}/`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
