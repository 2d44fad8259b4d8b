#!/usr/bin/env bash
# Runs the pktgen scripts under plain Lua 5.3 against mock_pktgen.lua (a 10 Gb/s link
# and a device under test that forwards MOCK_CAPACITY_MPPS) and checks their results:
# the sweep records every size with the modelled rate and loss, IMIX records its mix,
# the RFC 2544 search finds the modelled zero-loss rate to its resolution, for a
# waypoint that fragments too (AVES_PG_EXPECT=2). Needs lua5.3 (scripts/install-deps.sh).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { if eval "$2"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "pktgen-test: FAIL: $1"; fi; }
run() { # run SCRIPT: env set by the caller
  (cd "$tmp" && AVES_PG_NO_EXIT=1 AVES_PG_DST_MAC=02:00:00:00:00:aa AVES_PG_SECONDS=10 \
    AVES_PG_OUT="$tmp/out.csv" lua5.3 -e "dofile('$here/mock_pktgen.lua')" "$here/$1")
}
command -v lua5.3 >/dev/null || { echo "pktgen-test: lua5.3 missing (apt-get install lua5.3)"; echo "pktgen-test: 0 passed, 1 failed"; exit 1; }
for f in aves_pktgen.lua sweep.lua imix.lua rfc2544.lua mock_pktgen.lua; do
  ok "$f compiles" "luac5.3 -p '$here/$f'"
done

# 5 Mpps device: 64 B line rate is 14.88 Mpps (loss 66.4 %), 1518 B is 0.81 Mpps (no loss).
rm -f "$tmp/out.csv"
MOCK_CAPACITY_MPPS=5 AVES_PG_SIZES=64,1518 run sweep.lua > "$tmp/sweep.log" 2>&1
ok "sweep runs" "grep -q '1518 B' '$tmp/sweep.log'"
ok "sweep 64 B: 5 Mpps received, ~66 % loss" "awk -F, '\$1==\"sweep\" && \$2==64 && \$9>4.99 && \$9<5.01 && \$8>0.66 && \$8<0.67' '$tmp/out.csv' | grep -q ."
ok "sweep 1518 B: line rate, no loss" "awk -F, '\$1==\"sweep\" && \$2==1518 && \$8==0 && \$9>0.81 && \$9<0.82' '$tmp/out.csv' | grep -q ."

rm -f "$tmp/out.csv"
MOCK_CAPACITY_MPPS=100 run imix.lua > "$tmp/imix.log" 2>&1
ok "imix: average 362 B, no loss on a fast device" "awk -F, '\$1==\"imix\" && \$2==362 && \$8==0' '$tmp/out.csv' | grep -q ."

# Zero-loss rate of a 5 Mpps device at 64 B: 5 / 14.88 = 33.6 % of line rate.
rm -f "$tmp/out.csv"
MOCK_CAPACITY_MPPS=5 AVES_PG_SIZES=64 AVES_PG_RESOLUTION=0.25 run rfc2544.lua > "$tmp/r.log" 2>&1
ok "rfc2544 finds 33.35-33.6 % at 64 B" "awk -F, '\$1==\"rfc2544\" && \$3>=33.35 && \$3<=33.6' '$tmp/out.csv' | grep -q ."
ok "rfc2544 confirms the rate" "grep -q '^rfc2544-confirm,64' '$tmp/out.csv'"
ok "rfc2544 reports it" "grep -q 'zero-loss throughput 33' '$tmp/r.log'"
# A fragmenting waypoint: two packets out per packet in.
rm -f "$tmp/out.csv"
MOCK_CAPACITY_MPPS=1 MOCK_EXPECT=2 AVES_PG_EXPECT=2 AVES_PG_SIZES=1518 run rfc2544.lua > "$tmp/f.log" 2>&1
ok "rfc2544 with AVES_PG_EXPECT=2: 100 % (0.81 Mpps < 1)" "awk -F, '\$1==\"rfc2544\" && \$3==100' '$tmp/out.csv' | grep -q ."
# Bad settings are refused with a message.
out=$(cd "$tmp" && AVES_PG_NO_EXIT=1 lua5.3 -e "dofile('$here/mock_pktgen.lua')" "$here/sweep.lua" 2>&1)
ok "no AVES_PG_DST_MAC: refused, named" "grep -q AVES_PG_DST_MAC <<< \"\$out\""
out=$(run_bad() { cd "$tmp" && AVES_PG_NO_EXIT=1 AVES_PG_DST_MAC=x AVES_PG_FLOWS=0 lua5.3 -e "dofile('$here/mock_pktgen.lua')" "$here/sweep.lua" 2>&1; }; run_bad)
ok "AVES_PG_FLOWS=0: refused, named" "grep -q AVES_PG_FLOWS <<< \"\$out\""
# The aves configs of the guide are valid.
AVES=${AVES_BIN:-$here/../../target/release/aves}
for c in router.toml waypoint.toml; do
  ok "aves check-config $c" "'$AVES' check-config '$here/$c' >/dev/null"
done
[ "$fail" = 0 ] || { cat "$tmp"/*.log; }
echo "pktgen-test: $pass passed, $fail failed"
[ "$fail" = 0 ]
