#!/usr/bin/env bash
# A long fuzzing campaign: every target (or those named) for CAMPAIGN_SECONDS each
# (default 600), one after the other, one libFuzzer job at a time (-jobs=1), at
# niceness 19, without sanitizer and with debug assertions (overflow checks) on.
# Results go to fuzz/target/campaign/ (or CAMPAIGN_OUT, relative to fuzz/):
# <target>.log (libFuzzer's job log), the grown corpus in corpus/<target>/, crashes in
# artifacts/<target>/, and summary.tsv with executions, cov and ft from libFuzzer's
# final stats. A later run with the same output directory continues from its corpus.
# docs/reliability.md records a run.
#
#   scripts/fuzz-campaign.sh                 # all targets, 600 s each
#   CAMPAIGN_SECONDS=60 scripts/fuzz-campaign.sh router gateway
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
export PATH="$HOME/.cargo/bin:$PATH"
secs=${CAMPAIGN_SECONDS:-600}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
out=${CAMPAIGN_OUT:-target/campaign}
mkdir -p "$out/bin"
RUSTC_BOOTSTRAP=1 cargo fuzz build -s none -a
# Copies, so a later build (the smoke test's) cannot swap binaries mid-campaign.
for t in "${targets[@]}"; do
  cp "target/x86_64-unknown-linux-gnu/release/$t" "$out/bin/$t"
done
[ -f "$out/summary.tsv" ] || printf 'target\tseconds\texecutions\tcov\tft\tcorpus\tresult\n' >"$out/summary.tsv"
for t in "${targets[@]}"; do
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
  log="$out/$t.log"
  echo "== $t: $secs s -> $log"
  status=0
  (
    cd "$out"
    # -jobs=1: one worker process; its output goes to fuzz-0.log.
    nice -n 19 "bin/$t" -jobs=1 -max_total_time="$secs" -print_final_stats=1 \
      -timeout=10 -rss_limit_mb=2048 -artifact_prefix="artifacts/$t/" \
      "corpus/$t" "$root/fuzz/corpus/$t" >/dev/null 2>&1
  ) || status=$?
  mv "$out/fuzz-0.log" "$log" 2>/dev/null || true
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  last=$(grep -E '(DONE|pulse|NEW|REDUCE|INITED) +cov:' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
  crashes=$(find "$out/artifacts/$t" -type f | wc -l)
  result=ok
  [ "$crashes" -eq 0 ] || result="$crashes artifacts"
  [ "$status" -eq 0 ] || result="$result (exit $status)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$secs" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
    "${corp:-?}" "$result" | tee -a "$out/summary.tsv"
done
