#!/usr/bin/env bash
# End-to-end: aves's Prometheus metrics, scraped by a real Prometheus server.
#
# The router topology (scripts/netns.sh) with `[control] metrics` on 127.0.0.1 inside
# the router's namespace. Checks: /metrics answers 200 with the 0.0.4 content type and
# passes `promtool check metrics`; every drop reason is there; other paths get 404;
# `aves status` shows role, ports, lcores; then N pings A -> B, and a Prometheus server
# (in the same namespace, scraping every 1 s) must report aves_port_rx_packets_total
# for port a >= N through its HTTP API, with up == 1 and as many drop series as aves
# serves. Table occupancy: routes and the neighbours learned from the pings are
# reported used, and `aves status` shows them. `aves dns` (no DPDK, in the same
# namespace, `[dns] metrics`) passes promtool too and counts dig's queries by type and
# rcode; Prometheus scrapes it as a second job. (The waypoint's binding and SETUP
# metrics and the SETUP round-trip histogram need the AVES topology: tests/e2e/setup.sh.)
# Everything (daemons, Prometheus, namespaces, files) is removed on exit.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export AVES_NS_PREFIX=${AVES_NS_PREFIX:-avm}
# shellcheck source=tests/e2e/lib.sh
. "$here/lib.sh"
# shellcheck source=scripts/netns.sh
. "$root/scripts/netns.sh"
need_root metrics-e2e

AVES=${AVES_BIN:-$root/target/release/aves}
N=${AVES_METRICS_PINGS:-50}
METRICS=127.0.0.1:9797
PROM=127.0.0.1:9090
DNS_METRICS=127.0.0.1:9798
DNS_LISTEN=127.0.0.1:5354
[ -x "$AVES" ] || { echo "metrics-e2e: $AVES not built (cargo build --release)"; echo "metrics-e2e: 0 passed, 1 failed"; exit 1; }
for tool in prometheus promtool curl python3 dig; do
  command -v "$tool" >/dev/null || { echo "metrics-e2e: $tool missing (scripts/install-deps.sh)"; echo "metrics-e2e: 0 passed, 1 failed"; exit 1; }
done
tmp=$(mktemp -d)
sock=$tmp/aves.sock
aves_pid=
prom_pid=
dns_pid=
cleanup() {
  [ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
  [ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null && wait "$dns_pid" 2>/dev/null
  [ -n "$aves_pid" ] && kill "$aves_pid" 2>/dev/null && wait "$aves_pid" 2>/dev/null
  topo_down
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

inA() { ip netns exec "${P}a" "$@"; }
inR() { ip netns exec "${P}r" "$@"; }
ctl() { "$AVES" ctl --socket "$sock" "$@"; }
scrape() { inR curl -sS --max-time 5 "http://$METRICS/metrics"; }
dscrape() { inR curl -sS --max-time 5 "http://$DNS_METRICS/metrics"; }
# metric FILE SERIES: the value of SERIES (name and labels exactly as served) in FILE.
metric() { awk -v s="$2" '$1 == s { print $2 }' "$1"; }
dq() { inR dig "@${DNS_LISTEN%:*}" -p "${DNS_LISTEN##*:}" +time=2 +tries=1 "$@"; }
# promql QUERY: prints the value of the first series of an instant query ("" if none).
promql() {
  inR curl -sS --max-time 5 -G "http://$PROM/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
    python3 -c 'import json, sys
d = json.load(sys.stdin)
r = d["data"]["result"] if d.get("status") == "success" else []
print(r[0]["value"][1] if r else "")' 2>/dev/null
}

echo "== metrics e2e: topology ${P}a ${P}r ${P}b"
topo_up
router_config "$tmp/router.toml" "$sock"
sed -i "s|^socket = .*|&\nmetrics = \"$METRICS\"|" "$tmp/router.toml"
check "check-config accepts control.metrics" "$AVES" check-config "$tmp/router.toml"

echo "== start aves in ${P}r with metrics on $METRICS"
# Not through the inR function: a function in the background runs in a subshell, and
# the pid must be the daemon's own for the signals below.
ip netns exec "${P}r" "$AVES" run --config "$tmp/router.toml" > "$tmp/aves.out" 2> "$tmp/aves.err" &
aves_pid=$!
for _ in $(seq 1 100); do ctl ping >/dev/null 2>&1 && break; sleep 0.2; done
check "daemon answers on the control socket" ctl ping
if ! kill -0 "$aves_pid" 2>/dev/null; then
  cat "$tmp/aves.err"; fail "daemon running"; summary metrics-e2e; exit 1
fi
if grep -q "metrics served at http://$METRICS/metrics" "$tmp/aves.err"; then
  pass "startup log says where metrics are served"
else
  fail "startup log says where metrics are served" "$(tail -3 "$tmp/aves.err")"
fi

echo "== /metrics"
head=$(inR curl -sS --max-time 5 -o "$tmp/m0.txt" -w '%{http_code} %{content_type}' "http://$METRICS/metrics")
check_eq "GET /metrics: 200 with the 0.0.4 content type" "200 text/plain; version=0.0.4; charset=utf-8" "$head"
check "promtool check metrics passes" promtool check metrics < "$tmp/m0.txt"
# And promtool is not a rubber stamp: a counter without _total is flagged.
if printf '# HELP bad A counter.\n# TYPE bad counter\nbad 1\n' | promtool check metrics >/dev/null 2>&1; then
  fail "promtool rejects a bad exposition"
else
  pass "promtool rejects a bad exposition"
fi
n_reasons=$(grep -c '^aves_drops_total{' "$tmp/m0.txt")
check_ge "every drop reason is exported (zeros too)" 30 "$n_reasons"
check "build info names the role" grep -q '^aves_build_info{role="router",version="[0-9.]*"} 1$' "$tmp/m0.txt"
check "NIC counters of port a are exported" grep -q '^aves_nic_rx_missed_total{port="a"} ' "$tmp/m0.txt"
check "lcore poll rounds are exported" grep -q '^aves_lcore_idle_polls_total{lcore="1"} ' "$tmp/m0.txt"
check_eq "GET / is 404" 404 "$(inR curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://$METRICS/")"
check_eq "POST /metrics is 405" 405 "$(inR curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST "http://$METRICS/metrics")"
check_eq "garbage gets 400" "HTTP/1.1 400" "$(printf 'hello\r\n\r\n' | inR timeout 5 nc -q 2 127.0.0.1 "${METRICS##*:}" | head -1 | cut -c1-12)"

echo "== aves status"
ctl status > "$tmp/status.txt" 2>&1
sed 's/^/     /' "$tmp/status.txt"
check "status names the role" grep -q '^role router version ' "$tmp/status.txt"
check "status lists port a with its link and NIC counters" grep -q '^port a link=up rx_packets=[0-9]* .* nic_imissed=' "$tmp/status.txt"
check "status lists lcore 1" grep -q '^lcore 1 busy_polls=' "$tmp/status.txt"
check "status ends with ok" test "$(tail -1 "$tmp/status.txt")" = ok
"$AVES" status --socket "$sock" > "$tmp/status2.txt" 2>&1
check_eq "aves status = aves ctl status (role line)" "$(head -1 "$tmp/status.txt" | cut -d" " -f1-4)" "$(head -1 "$tmp/status2.txt" | cut -d" " -f1-4)"

echo "== $N pings A -> B"
check "$N pings A -> B" inA ping -q -c "$N" -i 0.02 -W 2 10.2.0.2
scrape > "$tmp/m1.txt"
rx_a=$(metric "$tmp/m1.txt" 'aves_port_rx_packets_total{port="a"}')
check_ge "/metrics: port a received >= $N" "$N" "$rx_a"

echo "== table occupancy"
grep '^aves_table_' "$tmp/m1.txt" | sed 's/^/     /'
check_eq "routes capacity exported" 1024 "$(metric "$tmp/m1.txt" 'aves_table_capacity{table="routes"}')"
check_ge "busy cycles counted on lcore 1 after the pings" 1 "$(metric "$tmp/m1.txt" 'aves_lcore_busy_cycles_total{lcore="1"}' | cut -d. -f1)"
check_ge "the TSC rate is exported (over 100 MHz)" 100000000 "$(metric "$tmp/m1.txt" aves_tsc_hz)"
check_ge "routes used on lcore 1 (connected and configured)" 2 "$(metric "$tmp/m1.txt" 'aves_table_used{lcore="1",table="routes"}')"
check_ge "neighbours used on lcore 1 (A and B learned from ARP)" 2 "$(metric "$tmp/m1.txt" 'aves_table_used{lcore="1",table="neighbours"}')"
check_eq "nothing waits for ARP now" 0 "$(metric "$tmp/m1.txt" 'aves_table_used{lcore="1",table="pending"}')"
check "a router exports no binding metrics" test -z "$(grep '^aves_bindings_' "$tmp/m1.txt")"
ctl status > "$tmp/status3.txt" 2>&1
check "status shows the routes table used/capacity" grep -q '^table routes used=[1-9][0-9]* capacity=1024 ' "$tmp/status3.txt"
check "status shows the neighbours learned" grep -q '^table neighbours used=[1-9]' "$tmp/status3.txt"

echo "== aves dns with metrics on $DNS_METRICS"
cat > "$tmp/dns.toml" <<TOML
[dns]
listen = "$DNS_LISTEN"
zone = "aves.example."
setup_timeout_ms = 200
metrics = "$DNS_METRICS"

[[dns.ns]]
name = "ns1"
address = "192.0.2.53"

[[dns.waypoint]]
control = "192.0.2.10:4500"
addresses = ["198.51.100.10-198.51.100.17"]

[[dns.gateway]]
id = 1
address = "203.0.113.7"

[[dns.host]]
name = "b"
gateway_id = 1
address = "192.168.1.10"
TOML
ip netns exec "${P}r" "$AVES" dns --config "$tmp/dns.toml" > "$tmp/dns.out" 2> "$tmp/dns.err" &
dns_pid=$!
for _ in $(seq 1 50); do dq +short aves.example. SOA >/dev/null 2>&1 && break; sleep 0.1; done
if grep -q "metrics served at http://$DNS_METRICS/metrics" "$tmp/dns.err"; then
  pass "aves dns logs where metrics are served"
else
  fail "aves dns logs where metrics are served" "$(tail -3 "$tmp/dns.err")"
fi
dq +short aves.example. SOA > /dev/null
dq +short nothere.aves.example. MX > /dev/null
dq +short b.aves.example. A > /dev/null
dq +short example.org. TXT > /dev/null
head=$(inR curl -sS --max-time 5 -o "$tmp/d0.txt" -w '%{http_code} %{content_type}' "http://$DNS_METRICS/metrics")
check_eq "aves dns GET /metrics: 200 with the 0.0.4 content type" "200 text/plain; version=0.0.4; charset=utf-8" "$head"
check "promtool check metrics passes (aves dns)" promtool check metrics < "$tmp/d0.txt"
grep '^aves_dns_queries_total' "$tmp/d0.txt" | grep -v ' 0$' | sed 's/^/     /'
check_ge "SOA counted as NOERROR (readiness probes too)" 2 "$(metric "$tmp/d0.txt" 'aves_dns_queries_total{qtype="SOA",rcode="NOERROR"}')"
check_eq "MX for a missing name counted as NXDOMAIN" 1 "$(metric "$tmp/d0.txt" 'aves_dns_queries_total{qtype="MX",rcode="NXDOMAIN"}')"
check_eq "host A without a signing key counted as SERVFAIL" 1 "$(metric "$tmp/d0.txt" 'aves_dns_queries_total{qtype="A",rcode="SERVFAIL"}')"
check_eq "... as a SETUP timeout" 1 "$(metric "$tmp/d0.txt" 'aves_dns_answers_total{kind="servfail_timeout"}')"
check_eq "TXT out of the zone counted as REFUSED" 1 "$(metric "$tmp/d0.txt" 'aves_dns_queries_total{qtype="TXT",rcode="REFUSED"}')"
check_eq "no SETUP round trip observed (none answered)" 0 "$(metric "$tmp/d0.txt" 'aves_setup_rtt_seconds_count{outcome="accept"}')"
check "build info says dns" grep -q '^aves_build_info{role="dns",version="[0-9.]*"} 1$' "$tmp/d0.txt"

echo "== Prometheus scraping aves every 1 s"
cat > "$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: aves
    static_configs:
      - targets: ["$METRICS"]
  - job_name: aves-dns
    static_configs:
      - targets: ["$DNS_METRICS"]
YML
check "promtool check config" promtool check config "$tmp/prometheus.yml"
ip netns exec "${P}r" prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="$PROM" --log.level=warn > "$tmp/prom.log" 2>&1 &
prom_pid=$!
got=
for _ in $(seq 1 60); do
  got=$(promql 'aves_port_rx_packets_total{port="a"}')
  [ -n "$got" ] && [ "${got%%.*}" -ge "$N" ] 2>/dev/null && break
  kill -0 "$prom_pid" 2>/dev/null || break
  sleep 1
done
if ! kill -0 "$prom_pid" 2>/dev/null; then tail -5 "$tmp/prom.log"; fi
check_ge "Prometheus: aves_port_rx_packets_total{port=\"a\"} >= $N" "$N" "${got%%.*}"
check_eq "Prometheus: the aves target is up" 1 "$(promql 'up{job="aves"}')"
check_eq "Prometheus: as many drop-reason series as aves serves" "${n_reasons:-none}" "$(promql 'count(aves_drops_total)')"
check_eq "Prometheus: build info" 1 "$(promql 'aves_build_info{role="router"}')"
check_ge "Prometheus: port b sent the echo requests on to B" "$N" "$(promql 'aves_port_tx_packets_total{port="b"}' | cut -d. -f1)"
got=
for _ in $(seq 1 10); do got=$(promql 'up{job="aves-dns"}'); [ "$got" = 1 ] && break; sleep 1; done
check_eq "Prometheus: the aves dns target is up" 1 "$got"
check_eq "Prometheus: DNS MX/NXDOMAIN query" 1 "$(promql 'sum(aves_dns_queries_total{qtype="MX",rcode="NXDOMAIN"})')"
check_ge "Prometheus: routes table used" 2 "$(promql 'max(aves_table_used{table="routes"})')"

echo "== stop"
kill "$prom_pid" 2>/dev/null; wait "$prom_pid" 2>/dev/null; prom_pid=
kill -TERM "$dns_pid"
wait "$dns_pid"; rc=$?
dns_pid=
check_eq "aves dns exits 0 on SIGTERM (metrics server stopped with it)" 0 "$rc"
kill -INT "$aves_pid"
wait "$aves_pid"; rc=$?
aves_pid=
check_eq "aves exits 0 on SIGINT (metrics server stopped with it)" 0 "$rc"
check_eq "mempool free count back to its initial value" \
  "$(awk '/^mempool/ { split($3, a, "="); print a[2] }' "$tmp/aves.out")" \
  "$(awk '/^mempool/ { split($2, a, "="); print a[2] }' "$tmp/aves.out")"

summary metrics-e2e
