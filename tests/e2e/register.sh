#!/usr/bin/env bash
# End-to-end: gateway registration (AVES paper §5.3; docs/protocol.md, REGISTER) with a
# public address that changes at run time, as a DHCP renewal would.
#
# The topology of tests/e2e/aves.sh (scripts/aves-netns.sh), a management link to the
# waypoint's kernel (172.16.0.2, its SETUP service) and one to the gateway's kernel
# (172.16.1.2, where its REGISTERs leave from). `aves dns` runs in the Internet
# namespace: DNS on 198.51.100.1:53 (A's router address; A's resolver), REGISTER on
# 172.16.1.1:4799. It knows no address for gateway 1 until R registers. Shows:
# - R registers at start: dig from A gets a waypoint address (TTL 0) and curl by name
#   reaches B through W and R;
# - `aves ctl set-address pub 192.0.2.3/24` on R: R answers ARP and ping on the new
#   address and no longer on the old one, registers at once (the DNS server logs the
#   change within a second), and a new session (dig + curl by name, same initiator)
#   goes to W with the new address and reaches B;
# - junk on the REGISTER port is counted as refused; the DNS server's counters at
#   SIGTERM: two accepted changes, nothing else refused.
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
need_root register-e2e

aves_e2e_begin register-e2e
dns_pid=
e2e_cleanup_extra() {
  [ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null && wait "$dns_pid" 2>/dev/null
  rm -rf "/etc/netns/${P}a"
}
t_start=$(date +%s)

# reg NAME: one registration line from the gateway's `aves ctl stats`.
reg() { ctl_value "$rsock" register "$1" none; }
# lookup: the A record dig from A gets for b.aves.example ("" on SERVFAIL).
lookup() { inA dig +short +time=5 +tries=1 @198.51.100.1 b.aves.example A 2>/dev/null | grep -E '^[0-9.]+$' | head -1; }
# changed_to ADDR: the DNS server logged that gateway 1's address became ADDR.
changed_to() { grep "gateway address changed" "$tmp/dns.err" | grep -q "$1"; }
# in_pool ADDR: the DNS server's waypoint addresses.
in_pool() { case "$1" in 203.0.113.10[89]|203.0.113.11[0-5]) return 0;; *) return 1;; esac; }

A=198.51.100.10
R_OLD=192.0.2.2
R_NEW=192.0.2.3
B=10.0.0.2
DNS=198.51.100.1
REG=172.16.1.1:4799

# The DNS server's SETUP key (W knows it as control key 1); R's REGISTER key (the DNS
# server knows it as gateway 1's key 9).
printf '%s' 00112233445566778899aabbccddeeff > "$tmp/k1"
printf '%s' 6761746577617920726567697374726174696f6e206b657920233120414156 > "$tmp/k9"

echo "== register e2e: topology (engine ports: $AVES_E2E_PORTS)"
aves_topo_up
aves_mgmt_up
# R's management link: "rmgmt" 172.16.1.2 in ${P}r (a kernel interface: REGISTERs
# leave from here, DPDK owns pub and priv) to "ir2" 172.16.1.1 in ${P}i (the DNS server).
ip link add ir2 netns "${P}i" type veth peer name rmgmt netns "${P}r"
ip netns exec "${P}i" sysctl -qw net.ipv6.conf.ir2.disable_ipv6=1
ip netns exec "${P}r" sysctl -qw net.ipv6.conf.rmgmt.disable_ipv6=1
ip -n "${P}i" addr add 172.16.1.1/24 dev ir2
ip -n "${P}r" addr add 172.16.1.2/24 dev rmgmt
ip -n "${P}i" link set ir2 up
ip -n "${P}r" link set rmgmt up
mkdir -p "/etc/netns/${P}a"
echo "nameserver $DNS" > "/etc/netns/${P}a/resolv.conf"

waypoint_config "$tmp/waypoint.toml" "$wsock"
sed -i "s|^socket = \"$wsock\"|&\nlisten = \"172.16.0.2:4798\"|" "$tmp/waypoint.toml"
cat >> "$tmp/waypoint.toml" <<CFG

# The tunnel key for R's new address too (the waypoint keys gateways by address).
[[tunnel.key]]
id = $AVES_E2E_KEY_ID
algorithm = "hmac-md5"
secret = "$AVES_E2E_KEY"
gateway = "$R_NEW"

[[control.key]]
id = 1
algorithm = "hmac-md5"
secret_file = "$tmp/k1"
CFG
gateway_config "$tmp/gateway.toml" "$rsock"
cat >> "$tmp/gateway.toml" <<CFG
id = 1
register = ["$REG"]
register_interval_s = 30

[[control.key]]
id = 9
algorithm = "hmac-sha256-128"
secret_file = "$tmp/k9"
CFG
cat > "$tmp/dns.toml" <<CFG
[dns]
listen = "$DNS:53"
zone = "aves.example."
intranet = ["198.51.100.0/24"]
setup_timeout_ms = 3000
register_listen = "$REG"

[[dns.key]]
id = 1
algorithm = "hmac-md5"
secret_file = "k1"

[[dns.ns]]
name = "ns1"
address = "$DNS"

[[dns.waypoint]]
control = "172.16.0.2:4798"
addresses = ["203.0.113.108-203.0.113.115"]

[[dns.gateway]]
id = 1                     # no address: unknown until R registers

[[dns.gateway.key]]
id = 9
algorithm = "hmac-sha256-128"
secret_file = "k9"

[[dns.host]]
name = "b"
gateway_id = 1
address = "$B"
mode = "plain"
CFG
check "check-config accepts the gateway config with registration" "$AVES" check-config "$tmp/gateway.toml"
check "check-config accepts the waypoint config" "$AVES" check-config "$tmp/waypoint.toml"
check "check-config accepts the DNS config with register_listen" "$AVES" check-config "$tmp/dns.toml"
sed 's/^register_interval_s = 30$/register_interval_s = 0/' "$tmp/gateway.toml" > "$tmp/bad.toml"
out=$("$AVES" check-config "$tmp/bad.toml" 2>&1)
if echo "$out" | grep -q "gateway.register_interval_s"; then pass "check-config names gateway.register_interval_s when it is 0"; else fail "check-config names gateway.register_interval_s" "$out"; fi

mkdir -p "$tmp/www"
echo "<html><body>AVES responder B $(date +%s%N)</body></html>" > "$tmp/www/index.html"
page=$(cat "$tmp/www/index.html")
http_serve "${P}b" "$B" 8000 "$tmp/www" "$tmp/http.log"

ip netns exec "${P}i" "$AVES" dns --config "$tmp/dns.toml" > "$tmp/dns.out" 2> "$tmp/dns.err" &
dns_pid=$!
wait_soa "${P}a" "$DNS" aves.example
st=$(inA dig +time=3 +tries=1 @$DNS b.aves.example A 2>&1 | grep -o 'status: [A-Z]*')
check_eq "before R registers, b.aves.example is SERVFAIL (gateway address unknown)" "status: SERVFAIL" "$st"

aves_start_engines register-e2e
wait_listen "${P}b" "$B:8000"

echo "== R registers at start"
for _ in $(seq 1 30); do grep -q "gateway address changed" "$tmp/dns.err" && break; sleep 0.1; done
if changed_to "$R_OLD"; then pass "the DNS server took R's address $R_OLD from its REGISTER"; else fail "the DNS server took R's address" "$(tail -3 "$tmp/dns.err")"; fi
check_ge "R counts REGISTERs sent" 1 "$(reg sent)"
check_eq "R's stats show the registered address" "$R_OLD" "$(reg address)"
wp1=$(lookup)
if in_pool "$wp1"; then pass "dig from A: a waypoint address ($wp1)"; else fail "dig from A: a waypoint address" "'$wp1'"; fi
ttl=$(inA dig +noall +answer +time=5 +tries=1 @$DNS b.aves.example A | awk '$4 == "A" { print $2; exit }')
check_eq "the answer has TTL 0" 0 "${ttl:-none}"
check_eq "curl http://b.aves.example:8000/ from A reaches B (through W and R at $R_OLD)" "$page" "$(inA curl -s --max-time 8 http://b.aves.example:8000/)"

echo "== R's public address changes at run time (set-address)"
check "ping $R_OLD from A before the change" inA ping -c 1 -W 2 "$R_OLD"
sent0=$(reg sent)
t0=$(date +%s%N)
out=$(rctl set-address pub "$R_NEW/24" 2>&1)
if [[ "$out" == ok* ]]; then pass "aves ctl set-address pub $R_NEW/24 ($out)"; else fail "aves ctl set-address" "$out"; fi
check_eq "a bad address is refused with an error" 1 "$(rctl set-address pub 192.0.2.255/24 >/dev/null 2>&1; echo $?)"
for _ in $(seq 1 40); do changed_to "$R_NEW" && break; sleep 0.05; done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if changed_to "$R_NEW"; then pass "R re-registered at once: the DNS server has $R_NEW after $ms ms"; else fail "the DNS server has $R_NEW" "$(tail -3 "$tmp/dns.err")"; fi
check_eq "R's stats show the new address" "$R_NEW" "$(reg address)"
check_eq "R counts one address change" 1 "$(reg address_changes)"
check_ge "R sent more REGISTERs" "$((sent0 + 1))" "$(reg sent)"
check "R answers ARP and ping on $R_NEW" inA ping -c 1 -W 2 "$R_NEW"
inA ip neigh flush all >/dev/null 2>&1
ip netns exec "${P}i" ip neigh flush dev ir >/dev/null 2>&1
if inA ping -c 1 -W 1 "$R_OLD" >/dev/null 2>&1; then fail "$R_OLD no longer answers"; else pass "$R_OLD no longer answers (no ARP, no ping)"; fi

echo "== a new session uses the new address"
acc0=$(control "$wsock" setup_accepted)
wp2=$(lookup)
if in_pool "$wp2"; then pass "dig from A: a waypoint address ($wp2)"; else fail "dig from A after the change: a waypoint address" "'$wp2'"; fi
if [ "$wp2" != "$wp1" ]; then pass "not the address bound through $R_OLD ($wp1)"; else fail "a fresh waypoint address" "$wp2 again"; fi
check_eq "W accepted one more SETUP (for $R_NEW: W holds no other tunnel key that works)" "$((acc0 + 1))" "$(control "$wsock" setup_accepted)"
check_eq "curl http://b.aves.example:8000/ from A reaches B through $R_NEW" "$page" "$(inA curl -s --max-time 8 http://b.aves.example:8000/)"
sleep 0.2
if grep -q "^$A .*\"GET / " "$tmp/http.log"; then pass "B's log shows A ($A)"; else fail "B's log shows A" "$(tail -2 "$tmp/http.log" | tr '\n' ' ')"; fi

echo "== junk on the REGISTER port"
ip netns exec "${P}i" bash -c "printf 'AVES?' > /dev/udp/172.16.1.1/4799"
sleep 0.3

echo "== the DNS server's counters (SIGTERM)"
kill -TERM "$dns_pid"; wait "$dns_pid"; rc=$?
dns_pid=
check_eq "aves dns exits 0 on SIGTERM" 0 "$rc"
dnsc() { awk -v n="$1" '$1 == "dns" && $2 == n { print $3 }' "$tmp/dns.out" | grep . || echo none; }
grep '^dns register_' "$tmp/dns.out" | sed 's/^/     /'
check_ge "register_accepted" 2 "$(dnsc register_accepted)"
check_eq "register_changed (unknown -> $R_OLD -> $R_NEW)" 2 "$(dnsc register_changed)"
check_eq "register_refused_bad_length (the junk)" 1 "$(dnsc register_refused_bad_length)"
other=$(grep '^dns register_refused_' "$tmp/dns.out" | grep -v bad_length | awk '{ s += $3 } END { print s + 0 }')
check_eq "nothing else refused (no replay, no bad tag)" 0 "$other"

echo "== shutdown (SIGINT): exit 0, every mbuf back in the pool"
aves_stop_engines
echo "register-e2e took $(( $(date +%s) - t_start )) s"

summary register-e2e
