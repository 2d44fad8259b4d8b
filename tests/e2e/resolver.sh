#!/usr/bin/env bash
# End-to-end: the AVES-aware DNS server behind a real recursive resolver (unbound), AVES
# paper §3.3.2 (general deployment, delayed binding, Figure 6) and §3.3.3 (the initiator's
# address carried in DNS: EDNS Client Subnet, RFC 7871). Real tools only: unbound,
# dig, curl, python3 -m http.server; aves dns, an aves waypoint and an aves gateway.
#
# The topology of tests/e2e/setup.sh (scripts/aves-netns.sh: A and A2 in ${P}a, the
# router ${P}i, the waypoint W in ${P}w with its SETUP service on the management link,
# the gateway R in ${P}r, responders B1 10.0.0.2 and B2 10.0.0.3 in ${P}b) plus:
#
#   [${P}u] resolvers: unbound "plain" 198.18.50.2 (no ECS),   ┐ u0 ── iu 198.18.50.1
#           unbound "ecs"   198.18.50.3 (send-client-subnet)   ┘       [${P}i: aves dns
#   [${P}e] initiators E 198.18.60.10, E1..E20 .20-.39  e0 ── ie 198.18.60.1   listens on
#                                                                         198.18.50.1:53]
#
# The AVES DNS server has no intranet: it only ever sees the resolvers' addresses.
# - general mode (§3.3.2): A and A2 (resolv.conf: unbound "plain") curl by name; each
#   query puts a waypoint address in a wait state and the connection claims it; when the
#   round robin hands A2's address to A for the other responder, A2 (still bound there:
#   HTTP) connecting during that wait is refused fast (ICMP host unreachable), gets a
#   new address by name at once, and the old address works for it again after the wait
#   and Treject;
# - ECS: E (resolv.conf: unbound "ecs") curl by name; the AVES DNS server takes E's /32
#   from the Client Subnet option and the waypoint binds at once (no wait state, no
#   claim); dig +subnet straight at the AVES DNS server sees the scope echoed (/32: no
#   wait; /24: a wait state limited to the prefix);
# - concurrency: E1..E20 at once through unbound "ecs" (dig -b Ei, then curl --interface
#   Ei to the answer), half for b1 and half for b2: all succeed and each gets its own
#   responder's page; B1's and B2's logs show exactly their initiators.
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
need_root resolver-e2e

command -v unbound >/dev/null || { echo "resolver-e2e: unbound missing (scripts/install-deps.sh)"; echo "resolver-e2e: 0 passed, 1 failed"; exit 1; }
t_start=$(date +%s)
aves_e2e_begin resolver-e2e
chmod 755 "$tmp"
dns_pid=
ub_pids=()
e2e_cleanup_extra() {
  [ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null && wait "$dns_pid" 2>/dev/null
  for p in "${ub_pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  for n in e u; do ip netns pids "${P}$n" 2>/dev/null | xargs -r kill 2>/dev/null; done
  for n in a e; do rm -rf "/etc/netns/${P}$n"; done
  for n in u e; do ip netns del "${P}$n" 2>/dev/null; done
}

inE() { ip netns exec "${P}e" "$@"; }
inU() { ip netns exec "${P}u" "$@"; }

A=198.51.100.10
A2=198.51.100.11
R=192.0.2.2
B1=10.0.0.2
B2=10.0.0.3
CTL=172.16.0.2:4798
DNS=198.18.50.1
UB_PLAIN=198.18.50.2
UB_ECS=198.18.50.3
E=198.18.60.10
N_CONC=${AVES_RESOLVER_CONCURRENCY:-20}
TWAIT=2
TREJECT=4
# The addresses the DNS server hands out: two of W's pool (.100-.115). Two are enough
# for any number of initiators named by ECS /32 (a binding is per initiator and address,
# and each initiator here asks for one responder) and make the general-mode round robin
# come back to the first address within the test. In general mode the pool bounds the
# sessions begun per Twait (paper §3.3.2: N / Twait), see docs/operations.md.
WA=203.0.113.108
WB=203.0.113.109
ZONE=aves.example
# Web servers on port 80: the waypoint keeps an HTTP binding after its connections
# close (web clients cache DNS answers; paper §5.2), so an initiator that comes back
# to an address it was given is still bound there. On other ports a binding ends with
# its last connection, and a source without one is a new initiator to a wait state.
PORT=80

printf '%s' 00112233445566778899aabbccddeeff > "$tmp/k1"

echo "== resolver e2e: topology (engine ports: $AVES_E2E_PORTS)"
aves_topo_up
aves_mgmt_up
# The resolvers' namespace and the ECS initiators' namespace, both behind the router.
for n in u e; do
  ip netns add "${P}$n"
  ip netns exec "${P}$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip netns exec "${P}$n" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
  ip -n "${P}$n" link set lo up
  ip link add "${n}0" netns "${P}$n" type veth peer name "i$n" netns "${P}i"
  _aves_link "${P}$n" "${n}0"
  _aves_link "${P}i" "i$n"
done
ip -n "${P}i" addr add "$DNS/24" dev iu
ip -n "${P}u" addr add "$UB_PLAIN/24" dev u0
ip -n "${P}u" addr add "$UB_ECS/24" dev u0
ip -n "${P}u" route add default via "$DNS"
ip -n "${P}i" addr add 198.18.60.1/24 dev ie
ip -n "${P}e" addr add "$E/24" dev e0
conc=()
for k in $(seq 1 "$N_CONC"); do
  conc+=("198.18.60.$((19 + k))")
  ip -n "${P}e" addr add "198.18.60.$((19 + k))/24" dev e0
done
ip -n "${P}e" route add default via 198.18.60.1
mkdir -p "/etc/netns/${P}a" "/etc/netns/${P}e"
echo "nameserver $UB_PLAIN" > "/etc/netns/${P}a/resolv.conf"
echo "nameserver $UB_ECS" > "/etc/netns/${P}e/resolv.conf"

waypoint_config "$tmp/waypoint.toml" "$wsock"
sed -i "s|^socket = \"$wsock\"|&\nlisten = \"$CTL\"|" "$tmp/waypoint.toml"
cat >> "$tmp/waypoint.toml" <<CFG

[[control.key]]
id = 1
algorithm = "hmac-md5"
secret_file = "$tmp/k1"

[delayed_binding]
wait = $TWAIT
reject = $TREJECT
CFG
gateway_config "$tmp/gateway.toml" "$rsock"

cat > "$tmp/dns.toml" <<CFG
[dns]
listen = "$DNS:53"
zone = "$ZONE."
ecs = true
setup_timeout_ms = 3000
general_wait_ms = $((TWAIT * 1000))

[[dns.key]]
id = 1
algorithm = "hmac-md5"
secret_file = "k1"

[[dns.ns]]
name = "ns1"
address = "$DNS"

[[dns.waypoint]]
control = "$CTL"
addresses = ["$WA-$WB"]

[[dns.gateway]]
id = 1
address = "$R"

[[dns.host]]
name = "b1"
gateway_id = 1
address = "$B1"
mode = "plain"

[[dns.host]]
name = "b2"
gateway_id = 1
address = "$B2"
mode = "plain"
CFG

# unbound_conf NAME ADDRESS EXTRA: a recursive resolver on ADDRESS whose only upstream
# is the AVES DNS server (a stub zone); queries leave from ADDRESS.
unbound_conf() {
  cat > "$tmp/unbound-$1.conf" <<CFG
server:
  interface: $2
  outgoing-interface: $2
  port: 53
  do-ip6: no
  access-control: 0.0.0.0/0 allow
  username: ""
  chroot: ""
  directory: "$tmp"
  pidfile: "$tmp/unbound-$1.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  num-threads: 1
  do-daemonize: no
  domain-insecure: "$ZONE."
$3

stub-zone:
  name: "$ZONE."
  stub-addr: $DNS@53
CFG
}
unbound_conf plain "$UB_PLAIN" '  module-config: "iterator"'
# EDNS Client Subnet (unbound's subnetcache module): the client's whole address (/32)
# goes to the AVES DNS server, also for queries that are forwarded.
unbound_conf ecs "$UB_ECS" '  module-config: "subnetcache validator iterator"
  send-client-subnet: '"$DNS"'
  client-subnet-always-forward: yes
  max-client-subnet-ipv4: 32'
for n in plain ecs; do
  check "unbound-checkconf accepts the $n resolver's config" unbound-checkconf "$tmp/unbound-$n.conf"
done
check "aves check-config accepts the DNS config" "$AVES" check-config "$tmp/dns.toml"

pageB1="<html><body>AVES responder B1 ($B1) $(date +%s%N)</body></html>"
pageB2="<html><body>AVES responder B2 ($B2) $(date +%s%N)</body></html>"
mkdir -p "$tmp/www1" "$tmp/www2"
echo "$pageB1" > "$tmp/www1/index.html"
echo "$pageB2" > "$tmp/www2/index.html"
http_serve "${P}b" "$B1" $PORT "$tmp/www1" "$tmp/http1.log"
http_serve "${P}b" "$B2" $PORT "$tmp/www2" "$tmp/http2.log"

aves_start_engines resolver-e2e
(cd "$tmp" && exec ip netns exec "${P}i" "$AVES" dns --config "$tmp/dns.toml") > "$tmp/dns.out" 2> "$tmp/dns.err" &
dns_pid=$!
for n in plain ecs; do
  inU unbound -d -c "$tmp/unbound-$n.conf" > "$tmp/unbound-$n.log" 2>&1 &
  ub_pids+=($!)
done
wait_listen "${P}b" "$B1:$PORT" "$B2:$PORT"
for ub in $UB_PLAIN $UB_ECS; do wait_soa "${P}u" "$ub" "$ZONE" 100; done
soa=$(inU dig +short +time=2 +tries=1 "@$UB_PLAIN" "$ZONE" SOA)
if [ -n "$soa" ]; then pass "unbound resolves the AVES zone's SOA through the stub zone"; else fail "unbound resolves the SOA" "$(tail -3 "$tmp/unbound-plain.log" | tr '\n' ' ')"; fi
inA ping -c 1 -W 2 -I "$A" 198.51.100.1 >/dev/null 2>&1
inE ping -c 1 -W 2 198.18.60.1 >/dev/null 2>&1

# curl_name NS-RUNNER ARGS...: curl by name; prints "EXIT REMOTE-IP MS BODY".
curl_name() {
  local runner=$1; shift
  local t0 out rc ms ip
  t0=$(date +%s%N)
  out=$("$runner" curl -s --max-time 8 -w '\n%{remote_ip}' "$@" 2>/dev/null); rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  ip=$(echo "$out" | tail -1)
  echo "$rc ${ip:--} $ms $(echo "$out" | sed '$d')"
}
field() { echo "$1" | awk -v f="$2" '{ print $f }'; }
body() { echo "$1" | cut -d' ' -f4-; }

echo "== general mode (§3.3.2): A -> unbound (no ECS) -> aves dns; delayed binding"
ws0=$(control "$wsock" wait_states); cl0=$(event "$wsock" bindings_claimed)
g1=$(curl_name inA --interface "$A2" "http://b2.$ZONE:$PORT/")
echo "     A2 b2: exit $(field "$g1" 1), $(field "$g1" 2), $(field "$g1" 3) ms"
check_eq "curl http://b2.$ZONE:$PORT/ from A2 (by name, through unbound) reaches B2" "$pageB2" "$(body "$g1")"
check_eq "A2 was sent to the first address, $WA" "$WA" "$(field "$g1" 2)"
g2=$(curl_name inA --interface "$A" "http://b1.$ZONE:$PORT/")
echo "     A b1: exit $(field "$g2" 1), $(field "$g2" 2), $(field "$g2" 3) ms"
check_eq "curl http://b1.$ZONE:$PORT/ from A during $WA's wait reaches B1" "$pageB1" "$(body "$g2")"
check_eq "A was sent to the other address, $WB ($WA waits)" "$WB" "$(field "$g2" 2)"
check_eq "two wait states (general-mode SETUPs)" 2 "$(( $(control "$wsock" wait_states) - ws0 ))"
check_eq "two bindings claimed by the first connections" 2 "$(( $(event "$wsock" bindings_claimed) - cl0 ))"
sleep "$TWAIT".3

echo "== a second initiator arriving during the wait state (Figure 6)"
g3=$(curl_name inA --interface "$A" "http://b1.$ZONE:$PORT/")
echo "     A b1: exit $(field "$g3" 1), $(field "$g3" 2), $(field "$g3" 3) ms"
check_eq "after Twait A gets $WA (round robin) for b1 and claims it: B1" "$WA $pageB1" "$(field "$g3" 2) $(body "$g3")"
# A2 is bound at WA to B2 and comes back to the address it already has for b2 (an
# application that kept the answer): a violator while WA waits for A's B1.
wv0=$(drops "$wsock" wait_violation)
v=$(curl_name inA --interface "$A2" --resolve "b2.$ZONE:$PORT:$WA" "http://b2.$ZONE:$PORT/")
echo "     A2 -> $WA: exit $(field "$v" 1) after $(field "$v" 3) ms"
if [ "$(field "$v" 1)" = 7 ] && [ "$(field "$v" 3)" -lt 1500 ]; then
  pass "A2 connecting to $WA during its wait is refused fast (exit 7, $(field "$v" 3) ms: host unreachable)"
else
  fail "A2 connecting to $WA during its wait is refused fast" "$v"
fi
check_ge "wait_violation counted" 1 "$(( $(drops "$wsock" wait_violation) - wv0 ))"
# The paper: a refused application looks the name up again.
g4=$(curl_name inA --interface "$A2" "http://b2.$ZONE:$PORT/")
echo "     A2 b2 again: exit $(field "$g4" 1), $(field "$g4" 2), $(field "$g4" 3) ms"
check_eq "A2 looks b2 up again at once: $WB, B2" "$WB $pageB2" "$(field "$g4" 2) $(body "$g4")"
sleep "$TWAIT"
v=$(curl_name inA --interface "$A2" --resolve "b2.$ZONE:$PORT:$WA" "http://b2.$ZONE:$PORT/")
if [ "$(field "$v" 1)" != 0 ]; then pass "A2 stays refused at $WA after the wait (Treject $TREJECT s)"; else fail "A2 stays refused at $WA after the wait" "$v"; fi
sleep "$TREJECT"
v=$(curl_name inA --interface "$A2" --resolve "b2.$ZONE:$PORT:$WA" "http://b2.$ZONE:$PORT/")
check_eq "after Treject A2 reaches B2 through $WA again (its binding)" "$pageB2" "$(body "$v")"

echo "== EDNS Client Subnet: E -> unbound (send-client-subnet) -> aves dns"
ws0=$(control "$wsock" wait_states); cl0=$(event "$wsock" bindings_claimed); acc0=$(control "$wsock" setup_accepted)
ans=$(inE dig +noall +answer +time=5 +tries=1 "@$UB_ECS" "b1.$ZONE" A)
echo "$ans" | sed 's/^/     /'
check_eq "dig via unbound: TTL 0" 0 "$(echo "$ans" | awk '$4 == "A" { print $2; exit }')"
wE=$(echo "$ans" | awk '$4 == "A" { print $5; exit }')
check_eq "no wait state for E (ECS /32: the initiator is known)" 0 "$(( $(control "$wsock" wait_states) - ws0 ))"
e1=$(curl_name inE "http://b1.$ZONE:$PORT/")
echo "     E b1: exit $(field "$e1" 1), $(field "$e1" 2), $(field "$e1" 3) ms"
check_eq "curl http://b1.$ZONE:$PORT/ from E (by name) reaches B1 at once" "$pageB1" "$(body "$e1")"
check_eq "still no wait state, no claim: bound by the SETUP" "0 0" "$(( $(control "$wsock" wait_states) - ws0 )) $(( $(event "$wsock" bindings_claimed) - cl0 ))"
check_ge "SETUPs accepted for E" 2 "$(( $(control "$wsock" setup_accepted) - acc0 ))"
sleep 0.2
if grep -q "^$E .*\"GET / " "$tmp/http1.log"; then pass "B1's log shows E's own address"; else fail "B1's log shows $E" "$(tail -2 "$tmp/http1.log" | tr '\n' ' ')"; fi
case "$wE" in "$WA"|"$WB") pass "the answer is a waypoint address ($wE)";; *) fail "the answer is a waypoint address" "$wE";; esac

echo "== dig +subnet straight at the AVES DNS server (from the resolvers' namespace)"
ws0=$(control "$wsock" wait_states)
out=$(inU dig +time=5 +tries=1 "@$DNS" +subnet=198.18.60.40/32 "b2.$ZONE" A)
if echo "$out" | grep -q "CLIENT-SUBNET: 198.18.60.40/32/32"; then pass "/32: scope 32 echoed"; else fail "/32: scope 32 echoed" "$(echo "$out" | grep -i -e subnet -e status | tr '\n' ' ')"; fi
check_eq "/32: an A record, no wait state" "1 0" "$(echo "$out" | awk '/^[^;]/ && $4 == "A"' | wc -l) $(( $(control "$wsock" wait_states) - ws0 ))"
out=$(inU dig +time=5 +tries=1 "@$DNS" +subnet=198.18.61.0/24 "b2.$ZONE" A)
if echo "$out" | grep -q "CLIENT-SUBNET: 198.18.61.0/24/24"; then pass "/24: scope 24 echoed"; else fail "/24: scope 24 echoed" "$(echo "$out" | grep -i -e subnet -e status | tr '\n' ' ')"; fi
check_eq "/24: a wait state limited to the prefix" 1 "$(( $(control "$wsock" wait_states) - ws0 ))"
out=$(inU dig +time=5 +tries=1 "@$DNS" +subnet=198.18.60.40/32 "$ZONE" SOA)
if echo "$out" | grep -q "CLIENT-SUBNET: 198.18.60.40/32/0"; then pass "SOA: scope 0 (the same for every client)"; else fail "SOA: scope 0" "$(echo "$out" | grep -i subnet)"; fi
sleep "$TWAIT"

echo "== $N_CONC initiators at once through unbound with ECS, responders B1 and B2"
ws0=$(control "$wsock" wait_states); su0=$(control "$wsock" setup_received)
rm -rf "$tmp/conc"; mkdir -p "$tmp/conc"
t0=$(date +%s%N)
k=0
conc_pids=()
for src in "${conc[@]}"; do
  k=$((k + 1))
  host=b$(( (k % 2) + 1 ))
  (
    # The resolution from the initiator's own address (unbound turns it into ECS /32),
    # then the connection from that address; one retry of each if the protocol allows:
    # SERVFAIL (no address) or a refused connection.
    for try in 1 2; do
      w=$(inE dig -b "$src" +short +time=5 +tries=2 "@$UB_ECS" "$host.$ZONE" A | head -1)
      [ -n "$w" ] || { echo "try $try: no address" >> "$tmp/conc/$src.err"; continue; }
      if inE curl -s --max-time 8 --interface "$src" --resolve "$host.$ZONE:$PORT:$w" \
        "http://$host.$ZONE:$PORT/" > "$tmp/conc/$src.body"; then
        echo "$host $w $try" > "$tmp/conc/$src.ok"
        break
      fi
      echo "try $try: curl to $w failed" >> "$tmp/conc/$src.err"
    done
  ) &
  conc_pids+=($!)
done
for p in "${conc_pids[@]}"; do wait "$p"; done
wait_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
ok=0; wrong=0; retried=0
for src in "${conc[@]}"; do
  [ -f "$tmp/conc/$src.ok" ] || { echo "     $src: $(tr '\n' ' ' < "$tmp/conc/$src.err" 2>/dev/null)"; continue; }
  read -r host w try < "$tmp/conc/$src.ok"
  if [ "$host" = b1 ]; then want=$pageB1; else want=$pageB2; fi
  if [ "$(cat "$tmp/conc/$src.body")" = "$want" ]; then ok=$((ok + 1)); else wrong=$((wrong + 1)); echo "     $src ($host via $w): $(cat "$tmp/conc/$src.body")"; fi
  [ "$try" = 1 ] || { retried=$((retried + 1)); echo "     $src retried: $(tr '\n' ' ' < "$tmp/conc/$src.err")"; }
done
echo "     $ok of $N_CONC got their own responder's page in $wait_ms ms ($retried after a retry; $(( $(control "$wsock" setup_received) - su0 )) SETUPs)"
check_eq "all $N_CONC initiators got their own responder's page" "$N_CONC" "$ok"
check_eq "none reached the wrong responder" 0 "$wrong"
check_eq "no wait state (every initiator named by ECS /32)" 0 "$(( $(control "$wsock" wait_states) - ws0 ))"
sleep 0.3
bad=0
k=0
for src in "${conc[@]}"; do
  k=$((k + 1))
  if [ $((k % 2)) = 0 ]; then mine=$tmp/http1.log; other=$tmp/http2.log; else mine=$tmp/http2.log; other=$tmp/http1.log; fi
  grep -q "^$src .*\"GET / " "$mine" || bad=$((bad + 1))
  grep -q "^$src " "$other" && bad=$((bad + 1))
done
check_eq "B1's and B2's logs show exactly their own initiators" 0 "$bad"

echo "== counters"
wctl stats | grep -e '^control ' -e '^event bindings' -e '^drop wait' -e '^drop source' | sed 's/^/     /'
kill -TERM "$dns_pid"; wait "$dns_pid"
dns_pid=
awk '$1 == "dns" && $3 != 0' "$tmp/dns.out" | sed 's/^/     /'
check_ge "aves dns answered sessions" "$((N_CONC + 7))" "$(awk '$1 == "dns" && $2 == "answer_session" { print $3 }' "$tmp/dns.out")"

echo "== shutdown (SIGINT): exit 0, every mbuf back in the pool"
aves_stop_engines
echo "     took $(( $(date +%s) - t_start )) s"
summary resolver-e2e
