#!/usr/bin/env bash
# Verifies Tessera's tokens of every algorithm with two independent JWT libraries, the
# way the README tells microservices to: jose (Node) and PyJWT (Python), from the JWKS.
# Usage: scripts/interop.sh [path/to/tessera]   (default target/debug/tessera)
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-target/debug/tessera}"
work="target/interop"
mkdir -p "$work"
if [ ! -d "$work/node_modules/jose" ]; then
    npm install --prefix "$work" --silent --no-audit --no-fund jose@5 >/dev/null
fi
if [ ! -x "$work/venv/bin/python" ]; then
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install --quiet --disable-pip-version-check 'pyjwt[crypto]>=2.8,<3'
fi
# INSTALL_ONLY=1: fetch the dependencies and stop (.ci/run does it while cargo builds).
[ -z "${INSTALL_ONLY:-}" ] || exit 0
cp scripts/interop/verify.mjs "$work/verify.mjs"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
issuer="http://127.0.0.1:$port"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export TESSERA_BIND="127.0.0.1:$port" TESSERA_ISSUER="$issuer"
export TESSERA_BCRYPT_COST=4 TESSERA_LOG=warn
export TESSERA_MASTER_KEY="$("$bin" keys generate-master-key)"

for alg in ES256 EdDSA RS256; do
    db="tessera_interop_$$_$(echo "$alg" | tr 'A-Z' 'a-z')"
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
    export TESSERA_SIGNING_ALG="$alg" TESSERA_REDIS_PREFIX="interop:$$:$alg:"
    echo 'interop password' | "$bin" user create --username alice >/dev/null
    "$bin" serve &
    server=$!
    for _ in $(seq 1 100); do curl -sf "$issuer/healthz" >/dev/null && break; sleep 0.2; done
    token=$(curl -sf "$issuer/oauth/token" -d grant_type=password -d username=alice \
        -d 'password=interop password' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    echo "== $alg"
    status=0
    node "$work/verify.mjs" "$issuer" "$token" || status=1
    "$work/venv/bin/python" scripts/interop/verify.py "$issuer" "$token" || status=1
    kill "$server"; wait "$server" 2>/dev/null || true
    psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
    [ "$status" -eq 0 ] || { echo "$alg: an independent verifier disagreed"; exit 1; }
done
echo "interop: every algorithm verified by jose and PyJWT"
