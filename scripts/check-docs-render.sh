#!/usr/bin/env bash
# Renders the interactive API reference (/docs) in a real headless Chromium and checks
# that Swagger UI drew Tessera's operations from the embedded assets, with no network
# beyond the service itself. Writes a screenshot to target/docs-render.png.
# Usage: scripts/check-docs-render.sh [path/to/tessera]
# Needs Debian's chromium (apt-get install chromium), PostgreSQL and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-target/debug/tessera}"
browser="$(command -v chromium || command -v chromium-browser)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
db="tessera_docs_$$"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export TESSERA_BIND="127.0.0.1:$port" TESSERA_REDIS_PREFIX="docs:$$:" TESSERA_LOG=warn
export TESSERA_MASTER_KEY="$("$bin" keys generate-master-key)"
profile=$(mktemp -d)
cleanup() {
    [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$profile"
}
trap cleanup EXIT

"$bin" serve &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    --user-data-dir="$profile" --virtual-time-budget=10000 --window-size=1280,2000)
dom=$("$browser" "${flags[@]}" --dump-dom "http://127.0.0.1:$port/docs/" 2>/dev/null)
"$browser" "${flags[@]}" --screenshot="$PWD/target/docs-render.png" "http://127.0.0.1:$port/docs/" >/dev/null 2>&1

for expected in 'class="swagger-ui"' 'Tessera' '/oauth/token' '/v1/admin/users' '/.well-known/jwks.json'; do
    if ! grep -qF "$expected" <<<"$dom"; then
        echo "the rendered page lacks: $expected" >&2
        exit 1
    fi
done
echo "docs render: Swagger UI shows Tessera's operations (screenshot: target/docs-render.png)"
