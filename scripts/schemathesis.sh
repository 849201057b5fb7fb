#!/usr/bin/env bash
# Fuzzes the running service from the committed OpenAPI document with schemathesis and
# every check on: no 5xx, only documented statuses and content types, responses that
# match their schemas, schema-valid requests accepted, schema-invalid ones refused,
# undeclared methods 405, requests without their credentials 401.
# Usage: scripts/schemathesis.sh [path/to/tessera]   (default target/debug/tessera)
# Needs PostgreSQL and Redis as for the tests; installs schemathesis into target/.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-target/debug/tessera}"
venv="target/schemathesis-venv"
if [ ! -x "$venv/bin/st" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
fi
# INSTALL_ONLY=1: fetch the dependencies and stop (.ci/run does it while cargo builds).
[ -z "${INSTALL_ONLY:-}" ] || exit 0

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
db="tessera_fuzz_$$"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export TESSERA_REDIS_PREFIX="fuzz:$$:"
export TESSERA_BIND="127.0.0.1:$port"
export TESSERA_MASTER_KEY="$("$bin" keys generate-master-key)"
export TESSERA_BCRYPT_COST=4
export TESSERA_LOG=warn
export TESSERA_ALLOW_REGISTRATION=true
# Random logins must not trip the brute-force protection into 429s for the whole run.
export TESSERA_LOGIN_DELAY_AFTER=1000 TESSERA_LOGIN_LOCKOUT_AFTER=1000 TESSERA_LOGIN_IP_LIMIT=100000

cleanup() {
    [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# A new admin and its access token (a fuzzed operation may revoke or lock out the last).
new_token() {
    echo 'fuzzing admin password' | "$bin" user create --username "$1" --role admin >/dev/null
    curl -sf "http://127.0.0.1:$port/oauth/token" -d grant_type=password \
        -d "username=$1" -d 'password=fuzzing admin password' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

"$bin" serve &
server=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.2
done
token=$(new_token fuzz-admin)

# ASCII strings: a password's limit is 72 bytes (bcrypt), which no JSON Schema keyword
# can say; in ASCII the documented maxLength of 72 characters is exactly that.
fuzz() {
    "$venv/bin/st" run openapi/openapi.yaml \
        --url "http://127.0.0.1:$port" \
        --header "Authorization: Bearer $token" \
        --checks all \
        --max-examples "${FUZZ_EXAMPLES:-25}" \
        --generation-codec ascii \
        --seed "${FUZZ_SEED:-20261123}" \
        --workers 2 \
        --request-timeout 10 \
        --no-color "$@"
}
# Operations that can end the fuzzer's own admin token (logout, revocations, password
# resets, role changes, emergency key rotation) would leave everything after them to see
# only 401s: they run last, on their own.
destructive=(logout end_session admin_keys_rotate admin_revocations_create admin_clients_delete
    admin_users_update admin_users_reset_password admin_users_revoke_everything)
exclude=()
for id in "${destructive[@]}"; do
    exclude+=(--exclude-operation-id "$id")
done
fuzz "${exclude[@]}"
for id in "${destructive[@]}"; do
    token=$(new_token "fuzz-$id")
    fuzz --include-operation-id "$id" --phases examples,coverage,fuzzing
done
