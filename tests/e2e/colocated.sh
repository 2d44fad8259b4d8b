#!/usr/bin/env bash
# End-to-end: the AVES-aware DNS server co-located with a waypoint (decision 0012):
# `aves run` with a waypoint config that has a [dns] section serves the zone on a kernel
# address of the waypoint's box and hands each SETUP to the SETUP service in-process.
#
# The topology of tests/e2e/setup.sh (scripts/aves-netns.sh plus the management link
# 172.16.0.2 in ${P}w). The DNS server listens on 172.16.0.2:53; the initiators A and A2
# (198.51.100.0/24, intranet mode: the querier is the initiator, §3.3.1) use it as their
# resolver. The waypoint also has a UDP SETUP service ([control] listen, a key), so the
# test shows which path the SETUPs took. Shows:
# - check-config accepts the config and names the DNS part;
# - dig from A returns a waypoint address of the pool with TTL 0; curl by name from A
#   reaches B; A2 (another initiator) asks for b2 and reaches B2 at the address it got;
# - the SETUP service counted the SETUPs as in-process (setup_local), none over UDP
#   (setup_received 0), and accepted each one; /metrics (aves_setup_local_total) agrees
#   and passes promtool; the DNS server's own /metrics counts the sessions it answered;
# - SIGINT: exit 0, the DNS counters printed, every mbuf back in the pool.
#
# AVES_W_LCORES / AVES_R_LCORES (AVES_LCORES), AVES_E2E_PORTS, AVES_BIN, AVES_NS_PREFIX
# as for tests/e2e/aves.sh. About 15 s.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$here/lib.sh"
# shellcheck source=tests/e2e/aves-lib.sh
. "$here/aves-lib.sh"
# shellcheck source=scripts/aves-netns.sh
. "$root/scripts/aves-netns.sh"
need_root colocated-e2e

aves_e2e_begin colocated-e2e
e2e_cleanup_extra() { rm -rf "/etc/netns/${P}a"; }

A=198.51.100.10
A2=198.51.100.11
B=10.0.0.2
B2=10.0.0.3
R=192.0.2.2
DNS=172.16.0.2
METRICS=127.0.0.1:9797
DNS_METRICS=127.0.0.1:9798

echo "== colocated e2e: topology (engine ports: $AVES_E2E_PORTS)"
aves_topo_up
aves_mgmt_up
# The waypoint's kernel answers DNS queries from the initiators over the management link.
ip -n "${P}w" route add 198.51.100.0/24 via 172.16.0.1
mkdir -p "/etc/netns/${P}a"
echo "nameserver $DNS" > "/etc/netns/${P}a/resolv.conf"

printf '%s' 00112233445566778899aabbccddeeff > "$tmp/k1"
waypoint_config "$tmp/waypoint.toml" "$wsock"
sed -i "s|^socket = \"$wsock\"|&\nlisten = \"$DNS:4798\"\nmetrics = \"$METRICS\"|" "$tmp/waypoint.toml"
cat >> "$tmp/waypoint.toml" <<CFG

[[control.key]]
id = 1
algorithm = "hmac-md5"
secret_file = "$tmp/k1"

# The co-located DNS server: no [[dns.waypoint]], so every address of this waypoint's
# pool, reached in-process; no [[dns.key]] (nothing is signed).
[dns]
listen = "$DNS:53"
zone = "aves.example."
intranet = ["198.51.100.0/24"]
metrics = "$DNS_METRICS"

[[dns.ns]]
name = "ns1"
address = "$DNS"

[[dns.gateway]]
id = 1
address = "$R"

[[dns.host]]
name = "b"
gateway_id = 1
address = "$B"

[[dns.host]]
name = "b2"
gateway_id = 1
address = "$B2"
CFG
gateway_config "$tmp/gateway.toml" "$rsock"
out=$("$AVES" check-config "$tmp/waypoint.toml" 2>&1)
case "$out" in
  *"Waypoint role"*"DNS zone aves.example.: 2 hosts, 1 gateways, 16 waypoint addresses"*) pass "check-config accepts the waypoint config with [dns] ($out)";;
  *) fail "check-config accepts the waypoint config with [dns]" "$out";;
esac

mkdir -p "$tmp/www" "$tmp/www2"
echo "<html><body>AVES responder B $(date +%s%N)</body></html>" > "$tmp/www/index.html"
echo "<html><body>AVES responder B2 $(date +%s%N)</body></html>" > "$tmp/www2/index.html"
http_serve "${P}b" "$B" 8000 "$tmp/www" "$tmp/http.log"
http_serve "${P}b" "$B2" 8000 "$tmp/www2" "$tmp/http2.log"

aves_start_engines colocated-e2e
wait_listen "${P}b" "$B:8000" "$B2:8000"
wait_soa "${P}a" "$DNS" aves.example
if grep -q "DNS: serving" "$tmp/w.err" && grep -q "in-process" "$tmp/w.err"; then pass "the waypoint serves DNS and takes SETUPs in-process"; else fail "the waypoint serves DNS" "$(tail -3 "$tmp/w.err")"; fi

echo "== dig and curl by name (intranet mode)"
ans=$(inA dig +noall +answer +time=5 +tries=1 "@$DNS" b.aves.example A)
echo "$ans" | sed 's/^/     /'
ttl=$(echo "$ans" | awk '$4 == "A" { print $2; exit }')
wp=$(echo "$ans" | awk '$4 == "A" { print $5; exit }')
check_eq "dig from A: an A record with TTL 0" 0 "${ttl:-none}"
case "$wp" in 203.0.113.10[0-9]|203.0.113.11[0-5]) pass "the answer is an address of the waypoint's pool ($wp)";; *) fail "the answer is a waypoint address" "$wp";; esac
got=$(inA curl -s --max-time 10 --interface "$A" "http://b.aves.example:8000/" 2>&1)
check_eq "curl http://b.aves.example:8000/ from A reaches B (through W and R)" "$(cat "$tmp/www/index.html")" "$got"
# A2 shares A's stub resolver, which asks from A's address: A2 asks with dig from its
# own address (the initiator is the querier) and hands the answer to curl.
wp2=$(inA dig +short +time=5 +tries=1 -b "$A2" "@$DNS" b2.aves.example A)
case "$wp2" in 203.0.113.10[0-9]|203.0.113.11[0-5]) pass "dig from A2 for b2: a waypoint address ($wp2)";; *) fail "dig from A2 for b2" "$wp2";; esac
got=$(inA curl -s --max-time 10 --interface "$A2" --resolve "b2.aves.example:8000:$wp2" "http://b2.aves.example:8000/" 2>&1)
check_eq "curl http://b2.aves.example:8000/ from A2 reaches B2" "$(cat "$tmp/www2/index.html")" "$got"
sleep 0.2
if grep -q "^$A .*\"GET / " "$tmp/http.log"; then pass "B's log shows A's own address (plain mode)"; else fail "B's log shows $A" "$(tail -2 "$tmp/http.log" | tr '\n' ' ')"; fi

echo "== the SETUPs went in-process"
wctl stats | grep -E '^control (setup_|wait_)' | sed 's/^/     /'
local_n=$(control "$wsock" setup_local)
check_ge "SETUPs handed over in-process (two digs, a curl)" 3 "$local_n"
check_eq "no SETUP arrived over UDP" 0 "$(control "$wsock" setup_received)"
check_eq "each in-process SETUP was accepted" "$local_n" "$(control "$wsock" setup_accepted)"
check "status shows the in-process SETUPs" grep -q "^setup received=0 accepted=$local_n rejected=0 refused=0 local=$local_n\$" <(wctl status)
scrape_metrics "${P}w" "$METRICS" "$tmp/wm.txt"
check "waypoint /metrics passes promtool check metrics" promtool check metrics < "$tmp/wm.txt"
check_eq "metrics: aves_setup_local_total" "$local_n" "$(msum "$tmp/wm.txt" aves_setup_local_total)"
check_eq "metrics: aves_setup_received_total" 0 "$(msum "$tmp/wm.txt" aves_setup_received_total)"
scrape_metrics "${P}w" "$DNS_METRICS" "$tmp/dm.txt"
check "the DNS server's /metrics passes promtool check metrics" promtool check metrics < "$tmp/dm.txt"
check_eq "metrics: sessions answered = in-process SETUPs" "$local_n" "$(msum "$tmp/dm.txt" aves_dns_answers_total 'kind="session"')"
check_eq "metrics: SETUP round trips observed (accepted)" "$local_n" "$(msum "$tmp/dm.txt" aves_setup_rtt_seconds_count 'outcome="accept"')"

echo "== shutdown (SIGINT)"
aves_stop waypoint
check "the DNS server printed its counters" grep -q '^dns answer_session ' "$tmp/w.out"
kill -INT "$r_pid"; wait "$r_pid"; r_pid=

summary colocated-e2e
