#!/usr/bin/env bash
# Runs the README's walk-through as a newcomer would: every ```sh walkthrough block, in
# order, in one shell, against a freshly started Tessera with its own database, Redis
# key prefix and free ports. Fails on the first command that fails (the blocks use
# `curl --fail-with-body` or check the status they expect).
#
#   scripts/readme-walkthrough.sh [path/to/tessera]     (default: target/debug/tessera)
#
# What differs from pasting the blocks by hand, and why:
# - `cargo run --release --` is replaced by the already built binary (default: the debug
#   build `cargo test --workspace` leaves in target/debug; built here if missing), and
#   `cargo run -p tessera-verifier --example protected_service` by the debug example
#   (built here; a no-op after the tests): no release build in CI.
# - 127.0.0.1:8080 and 127.0.0.1:9090 in the blocks become free ports, so the run never
#   meets another server; TESSERA_BIND, DATABASE_URL (a new database, dropped at the
#   end), TESSERA_REDIS_PREFIX (a new prefix, deleted at the end) and, for the example
#   service, BIND and TESSERA_ISSUER are set in the environment accordingly.
# - TESSERA_BCRYPT_COST=8 keeps the dozen password hashes quick.
# - A block marked ```sh walkthrough background (a human runs it in another terminal)
#   runs in the background; the next block waits for it.
# - It runs in a temporary directory, so the development master key and the files the
#   blocks write (login.json, ...) land there, not in the repository.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(realpath "${1:-$root/target/debug/tessera}" 2>/dev/null || echo "${1:-$root/target/debug/tessera}")"
example="$root/target/debug/examples/protected_service"
readme="${WALKTHROUGH_README:-$root/README.md}"   # another file: to test this script

if [ ! -x "$bin" ]; then
    (cd "$root" && cargo build --bin tessera)
    bin="$root/target/debug/tessera"
fi
# Always through cargo (a no-op right after `cargo test --workspace`, which builds the
# example with the same features), so a stale example binary is never run.
(cd "$root" && cargo build --quiet --workspace --example protected_service)
for tool in curl jq awk; do
    command -v "$tool" >/dev/null || { echo "readme-walkthrough: needs $tool" >&2; exit 1; }
done

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port="$(free_port)"
example_port="$(free_port)"
while [ "$example_port" = "$port" ]; do example_port="$(free_port)"; done
run_id="$(date +%s)_$$"
postgres="${TESSERA_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
database="tessera_walkthrough_$run_id"
prefix="walkthrough:$run_id:"
work="$(mktemp -d)"

server_pid=""
cleanup() {
    status=$?
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
    # The example service, started by a background block.
    [ ! -f "$work/background.pids" ] || while read -r pid; do
        pkill -P "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    done < "$work/background.pids"
    [ -z "$server_pid" ] || wait "$server_pid" 2>/dev/null || true
    if [ "$status" -ne 0 ]; then
        echo "--- readme-walkthrough FAILED; the server's log:" >&2
        tail -n 40 "$work/tessera.log" >&2 || true
        for log in "$work"/background-*.log; do
            [ -f "$log" ] && { echo "--- $log:" >&2; tail -n 20 "$log" >&2; }
        done
    fi
    psql "$postgres/postgres" -qAtc "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" >/dev/null 2>&1 || true
    if command -v redis-cli >/dev/null; then
        redis-cli --scan --pattern "$prefix*" | xargs -r redis-cli del >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

export DATABASE_URL="$postgres/$database"
export TESSERA_REDIS_PREFIX="$prefix"
export TESSERA_BIND="127.0.0.1:$port"
export TESSERA_ISSUER="http://127.0.0.1:$port"
export TESSERA_BCRYPT_COST=8
export BIND="127.0.0.1:$example_port"
unset TESSERA_MASTER_KEY TESSERA_MASTER_KEY_FILE TESSERA_CONFIG_FILE

# The blocks, in order, as one script.
awk -v bin="$bin" -v example="$example" -v port="$port" -v example_port="$example_port" '
    function subst(line) {
        gsub(/cargo run --release --/, "\"" bin "\"", line)
        gsub(/cargo run -p tessera-verifier --example protected_service/, "\"" example "\"", line)
        gsub(/127\.0\.0\.1:8080/, "127.0.0.1:" port, line)
        gsub(/127\.0\.0\.1:9090/, "127.0.0.1:" example_port, line)
        return line
    }
    /^```sh walkthrough/ {
        inside = 1; n++
        background = ($0 ~ /background/)
        printf "printf \"\\n--- README block %d (line %d)%s\\n\" >&2\n", n, NR, background ? ", in the background" : ""
        if (background) printf "( "
        next
    }
    inside && /^```/ {
        inside = 0
        if (background) printf ") > \"background-%d.log\" 2>&1 &\necho $! >> background.pids\n", n
        next
    }
    inside { print subst($0) }
    END { if (n == 0) { print "echo \"no walkthrough blocks found\" >&2; exit 1" } }
' "$readme" > "$work/walkthrough.sh"
blocks="$(grep -c '^```sh walkthrough' "$readme")"

cd "$work"
started=$(date +%s)
"$bin" serve > "$work/tessera.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 60); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { echo "tessera exited at start-up" >&2; exit 1; }
    sleep 0.5
done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "tessera did not become ready" >&2; exit 1; }

bash -euo pipefail "$work/walkthrough.sh"
printf '\n'
echo "readme-walkthrough: all $blocks README blocks passed in $(( $(date +%s) - started ))s"
