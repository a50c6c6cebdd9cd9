#!/usr/bin/env bash
# Runs every cargo fuzz target for SECONDS each (default 60) and prints how long each ran.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable toolchain RUSTC_BOOTSTRAP=1 lets it
# use the nightly-only sanitizer flags. A crash leaves its input in fuzz/artifacts/<target>/:
# fix it, and keep the input as a regression test beside the code it broke.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(revs kv_cursor level_keys document)
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  echo "==> fuzzing $t for ${SECS}s" >&2
  start=$(date +%s)
  cargo fuzz run "$t" -- -max_total_time="$SECS" -print_final_stats=1 2>&1 \
    | grep -E "^(#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|Done)" || true
  echo "$t: $(( $(date +%s) - start ))s" >&2
done
