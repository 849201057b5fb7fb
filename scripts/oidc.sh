#!/usr/bin/env bash
# Runs Tessera's OpenID Connect authorization-code flow with real clients: a server-side
# relying party on openid-client (tests/oidc/server-app.mjs, confidential first-party
# client `web`) and an SPA on oidc-client-ts in Debian's Chromium, driven by playwright-core
# (tests/oidc/browser.mjs, public third-party client `spa`), against a fresh Tessera with
# its own database and Redis prefix.
# Usage: scripts/oidc.sh [path/to/tessera]   (default target/debug/tessera)
# Needs /usr/bin/chromium (Debian's chromium package; .ci/run installs it). Screenshots of
# the login and consent pages land in $SCREENSHOT_DIR (default target/oidc).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-target/debug/tessera}"
[ -n "${INSTALL_ONLY:-}" ] || [ -x "$bin" ] || { echo "oidc: no Tessera binary at $bin" >&2; exit 1; }
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
    echo "oidc: FAILED: no Chromium at $chromium: install Debian's chromium (apt-get install chromium)" >&2
    exit 1
fi
if [ ! -d tests/oidc/node_modules/playwright-core ]; then
    npm ci --prefix tests/oidc --silent --no-audit --no-fund >/dev/null
fi
# INSTALL_ONLY=1: fetch the dependencies and stop (.ci/run does it while cargo builds).
[ -z "${INSTALL_ONLY:-}" ] || exit 0

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port=$(free_port)
spa_port=$(free_port)
while [ "$spa_port" = "$port" ]; do spa_port=$(free_port); done
web_port=$(free_port)   # only named in the redirect URI: nothing listens there
issuer="http://localhost:$port"
spa="http://localhost:$spa_port"
db="tessera_oidc_$$"
prefix="oidc:$$:"
work="target/oidc"
mkdir -p "$work"
export SCREENSHOT_DIR="${SCREENSHOT_DIR:-$work}"

export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export TESSERA_BIND="127.0.0.1:$port" TESSERA_ISSUER="$issuer"
export TESSERA_REDIS_PREFIX="$prefix" TESSERA_BCRYPT_COST=4 TESSERA_LOG=warn
export TESSERA_CORS_ORIGINS="$spa"
export TESSERA_MASTER_KEY="$("$bin" keys generate-master-key)"

server="" spa_server=""
cleanup() {
    status=$?
    [ -z "$spa_server" ] || kill "$spa_server" 2>/dev/null || true
    [ -z "$server" ] || kill "$server" 2>/dev/null || true
    [ -z "$spa_server" ] || wait "$spa_server" 2>/dev/null || true
    [ -z "$server" ] || wait "$server" 2>/dev/null || true
    psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    if command -v redis-cli >/dev/null; then
        redis-cli --scan --pattern "$prefix*" | xargs -r redis-cli del >/dev/null 2>&1 || true
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
password='oidc test password'
echo "$password" | "$bin" user create --username alice >/dev/null
"$bin" client create --id spa --name "Example SPA" --grant authorization_code \
    --grant refresh_token --scope openid --scope profile \
    --redirect-uri "$spa/callback.html" --post-logout-redirect-uri "$spa/" >/dev/null
web_secret=$("$bin" client create --id web --name "Example web app" --confidential --first-party \
    --grant authorization_code --grant refresh_token --scope openid --scope profile \
    --redirect-uri "http://localhost:$web_port/callback" | sed -n 's/^client_secret: *//p')
[ -n "$web_secret" ] || { echo "oidc: 'client create --confidential' printed no client_secret line" >&2; exit 1; }

"$bin" serve > "$work/tessera.log" 2>&1 &
server=$!
TESSERA_ISSUER="$issuer" SPA_PORT="$spa_port" node tests/oidc/serve.mjs > "$work/spa.log" 2>&1 &
spa_server=$!
for _ in $(seq 1 100); do
    curl -sf "$issuer/healthz" >/dev/null && curl -sf "$spa/" >/dev/null && break
    kill -0 "$server" 2>/dev/null || { echo "oidc: Tessera exited:" >&2; cat "$work/tessera.log" >&2; exit 1; }
    sleep 0.2
done
curl -sf "$issuer/healthz" >/dev/null || { echo "oidc: Tessera did not come up on $issuer" >&2; cat "$work/tessera.log" >&2; exit 1; }
curl -sf "$spa/" >/dev/null || { echo "oidc: the SPA server did not come up on $spa" >&2; cat "$work/spa.log" >&2; exit 1; }

export OIDC_USERNAME=alice OIDC_PASSWORD="$password"
status=0
echo "== openid-client: confidential first-party client web"
WEB_CLIENT_SECRET="$web_secret" WEB_REDIRECT_URI="http://localhost:$web_port/callback" \
    node tests/oidc/server-app.mjs || status=1
echo "== oidc-client-ts in Chromium: public third-party client spa"
SPA_URL="$spa/" CHROMIUM="$chromium" node tests/oidc/browser.mjs || status=1
if [ "$status" -ne 0 ]; then
    echo "oidc: FAILED (Tessera's log: $work/tessera.log)" >&2
    tail -n 30 "$work/tessera.log" >&2
    exit 1
fi
echo "oidc: the code flow passed with openid-client and with oidc-client-ts in Chromium ($(( $(date +%s) - start )) s)"
