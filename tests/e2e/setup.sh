#!/usr/bin/env bash
# End-to-end: the AVES control protocol (paper §3.3, §5.2, §6.2; docs/protocol.md,
# "Control messages") against a running waypoint.
#
# The topology of tests/e2e/aves.sh (scripts/aves-netns.sh) plus a management link to
# the waypoint's kernel (172.16.0.2), where its SETUP service listens. `aves setup`, in
# the Internet namespace, plays the AVES DNS server. Shows:
# - intranet SETUP (§3.3.1): ACCEPT, then curl through the binding reaches B; the same
#   initiator and waypoint address for another responder is REJECTed (conflict); a retry
#   of a serial is answered from the cache, not applied again; not_ours, unknown_gateway;
# - forged (changed byte, wrong secret), replayed and stale-key (retired id) SETUPs get
#   no answer and are counted by reason;
# - delayed binding (§3.3.2, Figure 6): a general-mode SETUP (initiator unknown) puts W in
#   a wait state; the initiator's first connection claims the binding and curl works;
#   SETUPs for W are ignored during the wait, answered again after it; an initiator
#   bound at W to another
#   responder that connects during the wait is rejected (host unreachable) until Treject
#   after the wait, then works again; a source that connected without state outside a
#   wait state cannot claim later (§6.2), another source can; an ECS /32 binds at once.
# - metrics (docs/metrics.md): the waypoint's and gateway's /metrics pass promtool; a
#   SETUP moves aves_bindings_installed_total and aves_table_used{table="bindings"}, a
#   conflict aves_setup_rejected_total and aves_bindings_rejected_total, forgeries
#   aves_control_refused_total by reason, claims and violators the claimed and
#   wait_violation counters; a ping through a binding leaves a flow in the gateway's
#   table; `aves dns` with metrics counts the A query and observes the SETUP round trip.
#
# AVES_E2E_PORTS, AVES_W_LCORES / AVES_R_LCORES (AVES_LCORES), AVES_BIN, AVES_NS_PREFIX
# as for tests/e2e/aves.sh.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$here/lib.sh"
# shellcheck source=tests/e2e/aves-lib.sh
. "$here/aves-lib.sh"
# shellcheck source=scripts/aves-netns.sh
. "$root/scripts/aves-netns.sh"
need_root setup-e2e

aves_e2e_begin setup-e2e
dns_pid=
e2e_cleanup_extra() {
  [ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null && wait "$dns_pid" 2>/dev/null
  rm -rf "/etc/netns/${P}c"
  ip netns del "${P}c" 2>/dev/null
}

# wm / rm_ FILE: scrape the waypoint's / gateway's /metrics into FILE.
wm() { scrape_metrics "${P}w" "$METRICS" "$1"; }
rm_() { scrape_metrics "${P}r" "$METRICS" "$1"; }

A=198.51.100.10
A2=198.51.100.11
A3=198.51.100.12
A4=198.51.100.13
A5=198.51.100.14
W=203.0.113.100
W2=203.0.113.101
W3=203.0.113.102
W4=203.0.113.103
W5=203.0.113.104
R=192.0.2.2
B=10.0.0.2
B2=10.0.0.3
CTL=172.16.0.2:4798
METRICS=127.0.0.1:9797
DNS_METRICS=127.0.0.1:9798
TREJECT=4

# The "DNS server" keys: id 1 (MD5) and 2 (SHA-256/128) are configured on W; id 3 is
# not (a retired key).
printf '%s' 00112233445566778899aabbccddeeff > "$tmp/k1"
printf '%s' 444e532073657276657220322c207368612d3235362f313238206b6579212121 > "$tmp/k2"
printf '%s' 0f0e0d0c0b0a09080706050403020100 > "$tmp/k3"
printf '%s' ffeeddccbbaa99887766554433221100 > "$tmp/k1-wrong"

# dns ARGS...: aves setup from the Internet namespace to W's SETUP service, with key
# KEY_FILE (default k1), KEY_ID (1), KEY_ALG (hmac-md5).
dns() {
  ip netns exec "${P}i" "$AVES" setup --to "$CTL" --key-file "${KEY_FILE:-$tmp/k1}" \
    --key-id "${KEY_ID:-1}" --algorithm "${KEY_ALG:-hmac-md5}" --timeout-ms 700 --tries 1 "$@"
}
# expect NAME WANT-PREFIX EXIT ARGS...: runs dns ARGS, checks its output and exit code.
expect() {
  local name=$1 want=$2 code=$3; shift 3
  local out rc
  out=$(dns "$@" 2>&1); rc=$?
  if [[ "$out" == "$want"* ]] && [ "$rc" = "$code" ]; then pass "$name ($out)"; else fail "$name" "exit $rc: $out"; fi
}
# get ADDR W: curl http://W:8000/ from ADDR; prints the body, returns curl's exit code.
get() { inA curl -s --max-time 4 --interface "$1" "http://$2:8000/"; }

echo "== setup e2e: topology (engine ports: $AVES_E2E_PORTS)"
aves_topo_up
aves_mgmt_up
for a in $A3 $A4 $A5; do ip -n "${P}a" addr add "$a/24" dev a0; done
waypoint_config "$tmp/waypoint.toml" "$wsock"
# The SETUP service: listen address in [control], keys and timers appended.
sed -i "s|^socket = \"$wsock\"|&\nlisten = \"$CTL\"\nmetrics = \"$METRICS\"|" "$tmp/waypoint.toml"
cat >> "$tmp/waypoint.toml" <<CFG

[[control.key]]
id = 1
algorithm = "hmac-md5"
secret_file = "$tmp/k1"

[[control.key]]
id = 2
algorithm = "hmac-sha256-128"
secret_file = "$tmp/k2"

[delayed_binding]
wait = 2
reject = $TREJECT
CFG
gateway_config "$tmp/gateway.toml" "$rsock"
sed -i "s|^socket = \"$rsock\"|&\nmetrics = \"$METRICS\"|" "$tmp/gateway.toml"
check "check-config accepts the waypoint config with a SETUP service" "$AVES" check-config "$tmp/waypoint.toml"

mkdir -p "$tmp/www" "$tmp/www2"
echo "<html><body>AVES responder B $(date +%s%N)</body></html>" > "$tmp/www/index.html"
echo "<html><body>AVES responder B2 $(date +%s%N)</body></html>" > "$tmp/www2/index.html"
http_serve "${P}b" "$B" 8000 "$tmp/www" "$tmp/http.log"
http_serve "${P}b" "$B2" 8000 "$tmp/www2" "$tmp/http2.log"
pageB=$(cat "$tmp/www/index.html")
pageB2=$(cat "$tmp/www2/index.html")

aves_start_engines setup-e2e
wait_listen "${P}b" "$B:8000" "$B2:8000"
if grep -q "SETUP service listening" "$tmp/w.err"; then pass "the SETUP service listens on $CTL"; else fail "the SETUP service listens" "$(tail -3 "$tmp/w.err")"; fi
inA ping -c 1 -W 2 -I "$A" 198.51.100.1 >/dev/null 2>&1

echo "== intranet SETUP (§3.3.1)"
wm "$tmp/wm0.txt"
check "waypoint /metrics passes promtool check metrics" promtool check metrics < "$tmp/wm0.txt"
check_eq "no binding installed yet" 0 "$(msum "$tmp/wm0.txt" aves_bindings_installed_total)"
expect "SETUP $A at $W for $B: ACCEPT" ACCEPT 0 --save "$tmp/s1.bin" "$A" "$W" "$R" "$B"
expect "SETUP $A at $W for $B2: REJECT conflict (one responder per initiator and address)" "REJECT serial" 1 "$A" "$W" "$R" "$B2"
check_eq "the reject counter says conflict" 1 "$(control "$wsock" setup_rejected_conflict)"
wm "$tmp/wm1.txt"
nl=$(_aves_nq "${AVES_W_LCORES:-${AVES_LCORES:-1}}")
check_eq "metrics: the SETUP installed the binding on each lcore" "$nl" "$(msum "$tmp/wm1.txt" aves_bindings_installed_total)"
check_eq "metrics: one binding in use (fullest lcore)" 1 "$(mmax "$tmp/wm1.txt" aves_table_used 'table="bindings"')"
check_eq "metrics: setup accepted 1" 1 "$(awk '$1 == "aves_setup_accepted_total" { print $2 }' "$tmp/wm1.txt")"
check_eq "metrics: setup rejected for conflict 1" 1 "$(msum "$tmp/wm1.txt" aves_setup_rejected_total 'reason="conflict"')"
check_eq "metrics: the lcores refused the conflicting binding" "$nl" "$(msum "$tmp/wm1.txt" aves_bindings_rejected_total 'reason="conflict"')"
wctl status > "$tmp/wstatus.txt"
check "status shows the bindings table in use" grep -q '^table bindings used=1 capacity=' "$tmp/wstatus.txt"
check "status shows the binding lifecycle and the SETUP service" grep -q "^setup received=2 accepted=1 rejected=1 " "$tmp/wstatus.txt"
got=$(get "$A" "$W")
check_eq "curl http://$W:8000/ from $A reaches B through the new binding" "$pageB" "$got"
inA ping -c 1 -W 2 -I "$A" "$W" > /dev/null 2>&1
rm_ "$tmp/rm1.txt"
check "gateway /metrics passes promtool check metrics" promtool check metrics < "$tmp/rm1.txt"
check_ge "metrics: the gateway's flow table is in use (curl, ping)" 1 "$(msum "$tmp/rm1.txt" aves_table_used 'table="flows"')"
sleep 0.2
if grep -q "^$A .*\"GET / " "$tmp/http.log"; then pass "B's log shows $A"; else fail "B's log shows $A" "$(tail -2 "$tmp/http.log" | tr '\n' ' ')"; fi
KEY_FILE=$tmp/k2 KEY_ID=2 KEY_ALG=hmac-sha256-128 \
  expect "SETUP $A at $W2 for $B2 with the SHA-256 key (id 2): ACCEPT" ACCEPT 0 "$A" "$W2" "$R" "$B2"
check_eq "curl http://$W2:8000/ from $A reaches B2" "$pageB2" "$(get "$A" "$W2")"
expect "SETUP for an address outside the pools: REJECT not_ours" "REJECT" 1 "$A" 203.0.113.200 "$R" "$B"
check_eq "not_ours counted" 1 "$(control "$wsock" setup_rejected_not_ours)"
expect "SETUP for a gateway without a tunnel key: REJECT unknown_gateway" "REJECT" 1 "$A" "$W3" 192.0.2.99 "$B"
check_eq "unknown_gateway counted" 1 "$(control "$wsock" setup_rejected_unknown_gateway)"

echo "== retries are answered from the cache"
applied0=$(event "$wsock" commands_applied)
expect "SETUP serial 4242: ACCEPT" ACCEPT 0 --serial 4242 "$A2" "$W" "$R" "$B2"
expect "the same serial again (a retry, a new message): ACCEPT" ACCEPT 0 --serial 4242 "$A2" "$W" "$R" "$B2"
check_eq "the retry was answered from the cache" 1 "$(control "$wsock" setup_retries_answered)"
check_eq "and applied once (commands_applied delta, one lcore per command)" "$(_aves_nq "${AVES_W_LCORES:-${AVES_LCORES:-1}}")" "$(( $(event "$wsock" commands_applied) - applied0 ))"
check_eq "curl from $A2 through $W reaches B2" "$pageB2" "$(get "$A2" "$W")"

echo "== forged, replayed and stale-key SETUPs: no answer, counted"
accepted0=$(control "$wsock" setup_accepted)
"$PY" - "$tmp/s1.bin" "$tmp/forged.bin" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[35] ^= 0x01          # the responder's last byte: 10.0.0.2 -> 10.0.0.3
open(sys.argv[2], "wb").write(b)
PY
expect "a SETUP with a changed responder byte: no answer" NOANSWER 2 --raw "$tmp/forged.bin"
check_eq "refused_bad_tag" 1 "$(control "$wsock" refused_bad_tag)"
KEY_FILE=$tmp/k1-wrong expect "a SETUP signed with the wrong secret under key id 1: no answer" NOANSWER 2 "$A3" "$W" "$R" "$B"
check_eq "refused_bad_tag" 2 "$(control "$wsock" refused_bad_tag)"
expect "the first SETUP's datagram again (a replay): no answer" NOANSWER 2 --raw "$tmp/s1.bin"
check_eq "refused_replay" 1 "$(control "$wsock" refused_replay)"
KEY_FILE=$tmp/k3 KEY_ID=3 expect "a SETUP with a retired key (id 3): no answer" NOANSWER 2 "$A3" "$W" "$R" "$B"
check_eq "refused_unknown_key" 1 "$(control "$wsock" refused_unknown_key)"
printf 'AVES?' > "$tmp/junk.bin"
expect "five bytes of junk: no answer" NOANSWER 2 --raw "$tmp/junk.bin"
wm "$tmp/wm2.txt"
check_eq "metrics: control messages refused for bad_tag" 2 "$(msum "$tmp/wm2.txt" aves_control_refused_total 'reason="bad_tag"')"
check_eq "metrics: ... for replay" 1 "$(msum "$tmp/wm2.txt" aves_control_refused_total 'reason="replay"')"
check_eq "metrics: ... for unknown_key" 1 "$(msum "$tmp/wm2.txt" aves_control_refused_total 'reason="unknown_key"')"
check_eq "refused_bad_length" 1 "$(control "$wsock" refused_bad_length)"
check_eq "none of them was accepted" "$accepted0" "$(control "$wsock" setup_accepted)"
if get "$A3" "$W" >/dev/null 2>&1; then fail "no binding was made for $A3"; else pass "no binding was made for $A3 (curl fails)"; fi

echo "== sequence numbers: reordered within the replay window, beyond it, outside the clock window"
A6=198.51.100.20
expect "SETUP $A6 at $W for $B: ACCEPT" ACCEPT 0 --save "$tmp/s6.bin" "$A6" "$W" "$R" "$B"
retries0=$(control "$wsock" setup_retries_answered); replay0=$(control "$wsock" refused_replay); stale0=$(control "$wsock" refused_stale)
ip netns exec "${P}i" "$PY" "$here/control_seq.py" "$CTL" "$tmp/k1" "$tmp/s6.bin" 172.16.0.1 198.51.100.1 203.0.113.1 192.0.2.1 > "$tmp/seq.out" 2>&1
tr '\n' ' ' < "$tmp/seq.out"; echo
sq() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/seq.out"; }
check_eq "re-signed 1 s earlier (reordered, within the window): answered" answered "$(sq reordered)"
check_eq "re-signed 40 s earlier (outside the 30 s clock window): no answer" none "$(sq stale)"
check_eq "130 newer ones answered (they slide the 128-entry window)" 130 "$(sq fill_answered)"
check_eq "a never-seen sequence now beyond the window: no answer" none "$(sq beyond)"
check_eq "refused_stale counted once" $((stale0 + 1)) "$(control "$wsock" refused_stale)"
check_eq "refused_replay counted once" $((replay0 + 1)) "$(control "$wsock" refused_replay)"
check_eq "the reordered and newer ones were retries, answered from the cache" $((retries0 + 131)) "$(control "$wsock" setup_retries_answered)"

echo "== delayed binding (§3.3.2): the initiator is unknown"
# A4 has never sent to a waypoint address: no state, not rejected.
expect "general-mode SETUP (the resolver 172.16.0.1) for $W3 -> $B: ACCEPT" ACCEPT 0 --kind resolver 172.16.0.1 "$W3" "$R" "$B"
check_eq "curl from $A4 to $W3 in the wait state claims the binding and reaches B" "$pageB" "$(get "$A4" "$W3")"
expect "a SETUP for $W3 during its wait state is ignored" NOANSWER 2 "$A5" "$W3" "$R" "$B2"
check_eq "setup_ignored_waiting" 1 "$(control "$wsock" setup_ignored_waiting)"
check_ge "bindings_claimed" 1 "$(event "$wsock" bindings_claimed)"
sleep 2.2
expect "after the wait, $W3 takes SETUPs again" ACCEPT 0 "$A5" "$W3" "$R" "$B2"

echo "== a violator is rejected until Treject after the wait (Figure 6)"
expect "SETUP $A at $W for $B (intranet): ACCEPT" ACCEPT 0 "$A" "$W" "$R" "$B"
# The DNS server sends someone to W for B2: A, bound there to B, must not get through.
expect "general-mode SETUP for $W -> $B2: ACCEPT" ACCEPT 0 --kind resolver 172.16.0.1 "$W" "$R" "$B2"
wv0=$(drops "$wsock" wait_violation)
t0=$(date +%s%N)
out=$(get "$A" "$W" 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$rc" = 7 ] && [ "$ms" -lt 1500 ]; then pass "$A (bound to B) connecting to $W in the wait state is refused fast (host unreachable, $ms ms)"; else fail "$A connecting during the wait is refused" "exit $rc after $ms ms: $out"; fi
check_ge "wait_violation counted" 1 "$(( $(drops "$wsock" wait_violation) - wv0 ))"
sleep 2.2
sr0=$(drops "$wsock" source_rejected)
if get "$A" "$W" >/dev/null 2>&1; then fail "$A stays rejected after the wait"; else pass "$A stays rejected after the wait (Treject $TREJECT s)"; fi
check_ge "source_rejected counted" 1 "$(( $(drops "$wsock" source_rejected) - sr0 ))"
sleep "$TREJECT"
check_eq "after Treject $A reaches B through $W again" "$pageB" "$(get "$A" "$W")"

echo "== sources without state cannot claim later (§6.2)"
if get "$A3" "$W4" >/dev/null 2>&1; then fail "$A3 without a binding at $W4 is refused"; else pass "$A3 without a binding at $W4 is refused (and remembered)"; fi
expect "general-mode SETUP for $W4 -> $B2: ACCEPT" ACCEPT 0 --kind resolver 172.16.0.1 "$W4" "$R" "$B2"
sr0=$(drops "$wsock" source_rejected)
if get "$A3" "$W4" >/dev/null 2>&1; then fail "$A3 cannot claim $W4"; else pass "$A3 cannot claim $W4"; fi
check_ge "source_rejected counted" 1 "$(( $(drops "$wsock" source_rejected) - sr0 ))"
check_eq "$A5 (no history) claims $W4 in the same wait and reaches B2" "$pageB2" "$(get "$A5" "$W4")"

echo "== an ECS /32 names the initiator: bound at once"
sleep 2.2
expect "SETUP with client subnet $A3/32 at $W5: ACCEPT" ACCEPT 0 --kind client-subnet "$A3/32" "$W5" "$R" "$B"
check_eq "$A3 reaches B through $W5 (its rejection lifted by the binding)" "$pageB" "$(get "$A3" "$W5")"

echo "== counters"
wctl stats | grep '^control ' | sed 's/^/     /'
check_eq "setup_accepted (new requests; the retries were not)" 10 "$(control "$wsock" setup_accepted)"
wm "$tmp/wm3.txt"
check "waypoint /metrics still passes promtool" promtool check metrics < "$tmp/wm3.txt"
check_ge "metrics: claims counted (delayed binding)" 1 "$(awk '$1 == "aves_bindings_claimed_total" { print $2 }' "$tmp/wm3.txt")"
check_ge "metrics: the violator counted as a rejected binding" 1 "$(msum "$tmp/wm3.txt" aves_bindings_rejected_total 'reason="wait_violation"')"
check_ge "metrics: wait states entered" 1 "$(awk '$1 == "aves_wait_states_total" { print $2 }' "$tmp/wm3.txt")"

echo "== the AVES-aware DNS server drives the waypoint (aves dns -> SETUP -> curl by name)"
# A third initiator network, C, behind the Linux router; the DNS server runs in the
# router's namespace (it reaches W's SETUP service over the management link) and C
# uses it as its resolver. Intranet mode: the querier is the initiator (§3.3.1).
C=198.18.99.2
ip netns add "${P}c"
ip -n "${P}c" link set lo up
ip link add c0 netns "${P}c" type veth peer name ic netns "${P}i"
ip netns exec "${P}c" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec "${P}i" sysctl -qw net.ipv6.conf.ic.disable_ipv6=1
ip -n "${P}c" addr add "$C/24" dev c0
ip -n "${P}i" addr add 198.18.99.1/24 dev ic
ip -n "${P}c" link set c0 up
ip -n "${P}i" link set ic up
ip -n "${P}c" route add default via 198.18.99.1
mkdir -p "/etc/netns/${P}c"
echo "nameserver 198.18.99.1" > "/etc/netns/${P}c/resolv.conf"
cat > "$tmp/dns.toml" <<CFG
[dns]
listen = "198.18.99.1:53"
zone = "aves.example."
intranet = ["198.18.99.0/24"]
setup_timeout_ms = 3000

[[dns.key]]
id = 1
algorithm = "hmac-md5"
secret_file = "k1"

[[dns.ns]]
name = "ns1"
address = "198.18.99.1"

[[dns.waypoint]]
control = "$CTL"
addresses = ["203.0.113.108-203.0.113.115"]

[[dns.gateway]]
id = 1
address = "$R"

[[dns.host]]
name = "b"
gateway_id = 1
address = "$B"
mode = "plain"
CFG
sed -i "s|^setup_timeout_ms = 3000|&\nmetrics = \"$DNS_METRICS\"|" "$tmp/dns.toml"
check "aves check-config accepts the DNS config" "$AVES" check-config "$tmp/dns.toml"
ip netns exec "${P}i" "$AVES" dns --config "$tmp/dns.toml" > "$tmp/dns.out" 2> "$tmp/dns.err" &
dns_pid=$!
wait_soa "${P}c" 198.18.99.1 aves.example
ans=$(ip netns exec "${P}c" dig +noall +answer +time=5 +tries=1 @198.18.99.1 b.aves.example A)
echo "$ans" | sed 's/^/     /'
ttl=$(echo "$ans" | awk '$4 == "A" { print $2; exit }')
wp=$(echo "$ans" | awk '$4 == "A" { print $5; exit }')
check_eq "dig from C: an A record with TTL 0" 0 "${ttl:-none}"
case "$wp" in 203.0.113.10[89]|203.0.113.11[0-5]) pass "the answer is a waypoint address ($wp)";; *) fail "the answer is a waypoint address" "$wp";; esac
got=$(ip netns exec "${P}c" curl -s --max-time 10 "http://b.aves.example:8000/" 2>&1)
check_eq "curl http://b.aves.example:8000/ from C (by name, through W and R)" "$(cat "$tmp/www/index.html" 2>/dev/null || echo index)" "$got"
if grep -q "^$C " "$tmp/http.log" 2>/dev/null; then pass "B's log shows C's own address (plain mode)"; else fail "B's log shows $C" "$(tail -2 "$tmp/http.log" 2>/dev/null | tr '\n' ' ')"; fi
axfr=$(ip netns exec "${P}c" dig +time=2 +tries=1 @198.18.99.1 aves.example AXFR 2>&1)
if echo "$axfr" | grep -qi "Transfer failed\|REFUSED"; then pass "AXFR refused"; else fail "AXFR refused" "$(echo "$axfr" | tail -2 | tr '\n' ' ')"; fi
scrape_metrics "${P}i" "$DNS_METRICS" "$tmp/dm.txt"
check "aves dns /metrics passes promtool check metrics" promtool check metrics < "$tmp/dm.txt"
grep -E '^aves_(dns_queries_total|setup_rtt_seconds_(count|sum))' "$tmp/dm.txt" | grep -v ' 0$' | sed 's/^/     /'
check_ge "metrics: A queries answered NOERROR (dig and curl)" 2 "$(msum "$tmp/dm.txt" aves_dns_queries_total 'qtype="A",rcode="NOERROR"')"
check_ge "metrics: SETUP round trips observed (accepted)" 1 "$(msum "$tmp/dm.txt" aves_setup_rtt_seconds_count 'outcome="accept"')"
check_ge "metrics: AXFR counted as REFUSED" 1 "$(msum "$tmp/dm.txt" aves_dns_queries_total 'qtype="AXFR",rcode="REFUSED"')"
check_eq "metrics: sessions answered = SETUPs accepted" "$(msum "$tmp/dm.txt" aves_setup_rtt_seconds_count 'outcome="accept"')" "$(msum "$tmp/dm.txt" aves_dns_answers_total 'kind="session"')"
kill -INT "$dns_pid"; wait "$dns_pid"
dns_pid=
rm -rf "/etc/netns/${P}c"
ip netns del "${P}c"

echo "== shutdown (SIGINT): exit 0, every mbuf back in the pool"
aves_stop_engines

summary setup-e2e
