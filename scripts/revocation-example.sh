#!/usr/bin/env bash
# Runs the example Node consumer of the revocation feed (examples/revocations-node) against
# a fresh Tessera with its own database and Redis prefix: revoked tokens refused by the
# demo service within 2 s, a session and all of a user's tokens ended by an admin, events revoked while the
# consumer's connection was cut delivered on reconnect, the subscriber's token renewed
# when its stream ends, and isRevoked failing closed once Tessera is killed (~20 s).
# Usage: scripts/revocation-example.sh [path/to/tessera]   (default target/debug/tessera)
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-target/debug/tessera}"
[ -n "${INSTALL_ONLY:-}" ] || [ -x "$bin" ] || { echo "revocation-example: FAILED: no Tessera binary at $bin" >&2; exit 1; }
example="examples/revocations-node"
if [ ! -d "$example/node_modules/jose" ]; then
    npm ci --prefix "$example" --silent --no-audit --no-fund >/dev/null
fi
# INSTALL_ONLY=1: fetch the dependencies and stop (.ci/run does it while cargo builds).
[ -z "${INSTALL_ONLY:-}" ] || exit 0

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
issuer="http://127.0.0.1:$port"
db="tessera_revexample_$$"
prefix="revexample:$$:"
work="target/revocation-example"
mkdir -p "$work"

export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export TESSERA_BIND="127.0.0.1:$port" TESSERA_ISSUER="$issuer"
export TESSERA_REDIS_PREFIX="$prefix" TESSERA_BCRYPT_COST=4 TESSERA_LOG=warn
# Heartbeats every 300 ms, so that the test's consumer (stalenessMs 1500) goes stale soon
# after Tessera dies.
export TESSERA_REVOCATION_HEARTBEAT=300ms
export TESSERA_MASTER_KEY="$("$bin" keys generate-master-key)"

server=""
cleanup() {
    status=$?
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    fi
    psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    if command -v redis-cli >/dev/null; then
        redis-cli --scan --pattern "$prefix*" | xargs -r redis-cli del >/dev/null 2>&1 || true
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
export USER_NAME=alice USER_PASSWORD='revocation example password'
export OTHER_USER_NAME=bob OTHER_USER_PASSWORD='revocation example password of bob'
export ADMIN_NAME=root ADMIN_PASSWORD='revocation example admin password'
echo "$USER_PASSWORD" | "$bin" user create --username "$USER_NAME" >/dev/null
echo "$OTHER_USER_PASSWORD" | "$bin" user create --username "$OTHER_USER_NAME" >/dev/null
echo "$ADMIN_PASSWORD" | "$bin" user create --username "$ADMIN_NAME" --role admin >/dev/null
# The subscriber: its own tokens only (no audiences), the feed's scope, and a 10 s token
# lifetime so that the test sees its stream end and the consumer renew the token.
export SUBSCRIBER_CLIENT_ID=edge-verifier
SUBSCRIBER_CLIENT_SECRET=$("$bin" client create --id "$SUBSCRIBER_CLIENT_ID" --name "Edge verifier" \
    --confidential --grant client_credentials --scope tessera:revocations \
    --access-token-ttl 10s | sed -n 's/^client_secret: *//p')
[ -n "$SUBSCRIBER_CLIENT_SECRET" ] || { echo "revocation-example: FAILED: 'client create --confidential' printed no client_secret line" >&2; exit 1; }
export SUBSCRIBER_CLIENT_SECRET

"$bin" serve > "$work/tessera.log" 2>&1 &
server=$!
# Out of the job table: the test kills it, and bash would report that as a job "Killed".
disown "$server"
for _ in $(seq 1 100); do
    curl -sf "$issuer/healthz" >/dev/null && break
    kill -0 "$server" 2>/dev/null || { echo "revocation-example: FAILED: Tessera exited:" >&2; cat "$work/tessera.log" >&2; exit 1; }
    sleep 0.2
done
curl -sf "$issuer/healthz" >/dev/null || { echo "revocation-example: FAILED: Tessera did not come up on $issuer" >&2; cat "$work/tessera.log" >&2; exit 1; }

# The test kills Tessera at the end (fail-closed check): cleanup then finds it gone.
if ! TESSERA_PID="$server" node --test --test-reporter=spec "$example/test.mjs"; then
    tail -n 30 "$work/tessera.log" >&2
    echo "revocation-example: FAILED (Tessera's log: $work/tessera.log)" >&2
    exit 1
fi
echo "revocation-example: the Node consumer denied revoked tokens, resumed after a cut and failed closed without Tessera ($(( $(date +%s) - start )) s)"
