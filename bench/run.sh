#!/usr/bin/env bash
# Tessera's load benchmark in one command (see docs/benchmarks.md):
#
#   bench/run.sh                      # every scenario, about 4 minutes of load
#   bench/run.sh --duration-secs 30   # longer windows; `--help` lists the options
#
# Builds Tessera in release and the load driver, then runs the driver, which starts
# Tessera against the local PostgreSQL (127.0.0.1:5432, user postgres, trust) and
# Redis (127.0.0.1:6379) with a database and a Redis prefix of its own, measures,
# stops the server and drops the database again.
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root_dir="$(dirname "$bench_dir")"

for tool in cargo psql pgbench redis-cli; do
    if ! command -v "$tool" >/dev/null; then
        echo "bench/run.sh: $tool is needed but not installed" >&2
        exit 1
    fi
done

echo "== building Tessera (release)"
(cd "$root_dir" && cargo build --release)

echo "== building the load driver"
cargo build --release --manifest-path "$bench_dir/Cargo.toml" --bin tessera-bench --bin revocation-probe

echo "== running"
exec "$bench_dir/target/release/tessera-bench" \
    --tessera "$root_dir/target/release/tessera" \
    --sql-dir "$bench_dir/sql" \
    --work-dir "$bench_dir/target/run" \
    "$@"
