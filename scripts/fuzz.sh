#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for a bounded time (default 60 s each):
#
#   scripts/fuzz.sh            # all targets, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh token_request_json
#
# cargo-fuzz drives libFuzzer; it is installed from crates.io when missing. The
# targets are built without a sanitizer (the parsers are safe Rust: what we look for
# is a panic, which libFuzzer reports as a crash), in the dev profile (the whole
# dependency tree compiles in a fraction of a release build's time, which matters
# more in CI than executions per second), and on the stable toolchain, whose
# coverage flags cargo-fuzz unlocks with RUSTC_BOOTSTRAP. A crash leaves its input in
# fuzz/artifacts/<target>/ and fails this script: fix it and keep the input as a
# regression test (see fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)

mkdir -p target
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    log="target/fuzz-$target.log"
    echo "== fuzzing $target for ${seconds}s (log: fuzz/$log)"
    status=0
    cargo fuzz run --dev --sanitizer none "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=20000 -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done [0-9]+ runs)' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log" >&2
        echo "fuzz: $target failed (exit $status); a crashing input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
