#!/usr/bin/env bash
# Fuzz smoke test: builds the fuzz targets (cargo-fuzz, AddressSanitizer with leak
# detection, debug assertions on) and runs each for FUZZ_SECONDS (default 30), starting
# from its committed corpus fuzz/corpus/<target> (seeds and the inputs of every bug
# fuzzing found, so those stay fixed). Fails on any crash, timeout (10 s per input),
# leak or out-of-memory; the input is left in fuzz/target/smoke/artifacts/<target>/.
# New corpus entries go to fuzz/target/smoke/corpus/, never into the committed corpus.
#
#   scripts/fuzz-smoke.sh                    # every target, 30 s each
#   FUZZ_SECONDS=5 scripts/fuzz-smoke.sh router gateway
#
# cargo-fuzz runs on stable with RUSTC_BOOTSTRAP=1 (it needs -Z flags).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1
secs=${FUZZ_SECONDS:-30}
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build -a
out=target/smoke
status=0
for t in "${targets[@]}"; do
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
  log="$out/$t.log"
  start=$SECONDS
  if "target/x86_64-unknown-linux-gnu/release/$t" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" \
    "$out/corpus/$t" "corpus/$t" >"$log" 2>&1; then
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}')
    cov=$(grep -E 'DONE +cov:' "$log" | sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\).*/cov \1 ft \2/p')
    echo "fuzz-smoke: $t ok: ${execs:-?} executions in $((SECONDS - start)) s, ${cov:-?}"
  else
    status=1
    echo "fuzz-smoke: $t FAILED (log $log):"
    grep -E -A8 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -40
  fi
done
exit $status
