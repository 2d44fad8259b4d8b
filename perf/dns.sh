#!/usr/bin/env bash
# Control-plane benchmark (not a test): sessions per second through
# DNS query -> SETUP -> ACCEPT -> answer, intranet mode, measured with dnsperf, in the
# two deployments of decision 0012:
#   co-located  `aves run` of a waypoint with [dns]: SETUPs handed over in-process;
#   udp         `aves dns` on its own (namespace) + the waypoint's SETUP service over
#               UDP (HMAC-MD5), as on two boxes.
# Both on ONE control core: the waypoint's control thread (and every thread it spawns:
# DNS, SETUP, relay, control socket) is pinned to CPU $CTL_CPU ([control] cpu), and so
# is `aves dns` (taskset). The lcore and dnsperf run on CPU $LOAD_CPU.
#
# Every query is a new session: dnsperf runs one process per initiator address (-a),
# each through a list of NHOSTS distinct host names once (-n 1); the DNS server is in
# intranet mode (the querier is the initiator, §3.3.1), so each (initiator, host) pair
# is a SETUP that installs a new binding on the lcore (admission: one responder per
# (initiator, waypoint address), so each initiator needs NHOSTS addresses: the pool
# holds POOL >= 2 x NHOSTS). No pair repeats within or across runs (each run has its
# own initiator addresses), so no query is a refresh of an existing binding.
#
# Reported per run: sessions/s = NOERROR answers / wall time of the run (first query
# sent to the last dnsperf exiting); p50/p99 latency from dnsperf -v (one line per
# response with its latency); cycles/session = CPU MHz x busy CPU seconds of the
# control side / sessions, where the control side is: co-located, the waypoint
# process's utime+stime (/proc/PID/stat, which includes exited threads) minus its main
# thread's (/proc/PID/task/PID/stat: the main lcore's poll loop); udp, the same for the
# waypoint plus the whole `aves dns` process. "net" subtracts the control side's idle
# cost (measured for IDLE_S seconds before the runs: the relay's and the sockets' poll
# timers) for the run's duration.
#
# Usage: sudo perf/dns.sh [--quick]    (AVES_BIN, AVES_NS_PREFIX (avq), CLIENTS (8),
#        NHOSTS (2000), OUTSTANDING per client (16), LIGHT_QPS per client (50),
#        LIGHT_S (5), CTL_CPU (0), LOAD_CPU (1))
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "perf/dns.sh needs root (namespaces, DPDK)" >&2; exit 1; }
command -v dnsperf >/dev/null || { echo "perf/dns.sh: dnsperf missing (scripts/install-deps.sh)" >&2; exit 1; }
AVES=${AVES_BIN:-$root/target/release/aves}
[ -x "$AVES" ] || { echo "perf/dns.sh: $AVES not built (cargo build --release -p aves)" >&2; exit 1; }
P=${AVES_NS_PREFIX:-avq}
CLIENTS=${CLIENTS:-8}
NHOSTS=${NHOSTS:-2000}
OUTSTANDING=${OUTSTANDING:-16}
CTL_CPU=${CTL_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
IDLE_S=${IDLE_S:-4}
LIGHT_QPS=${LIGHT_QPS:-50}
LIGHT_S=${LIGHT_S:-5}
if [ "${1:-}" = --quick ]; then NHOSTS=400; CLIENTS=4; fi
POOL=4096
[ $((2 * NHOSTS)) -le $POOL ] || { echo "NHOSTS must be <= $((POOL / 2))" >&2; exit 1; }
HZ=$(getconf CLK_TCK)
MHZ=$(awk -F: '/^cpu MHz/ { printf "%.0f", $2; exit }' /proc/cpuinfo)
tmp=$(mktemp -d)
w_pid=
d_pid=
cleanup() {
  [ -n "$w_pid" ] && kill -INT "$w_pid" 2>/dev/null && wait "$w_pid" 2>/dev/null
  [ -n "$d_pid" ] && kill -INT "$d_pid" 2>/dev/null && wait "$d_pid" 2>/dev/null
  for n in c w d; do ip netns del "${P}$n" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- topology: c (dnsperf) -- w (waypoint; co-located DNS 198.18.0.254)
#                c -- d (aves dns 198.18.1.254) -- w (SETUP service 172.16.0.2:4798)
for n in c w d; do ip netns del "${P}$n" 2>/dev/null; ip netns add "${P}$n"; ip -n "${P}$n" link set lo up; done
ip link add c0 netns "${P}c" type veth peer name w0 netns "${P}w"
ip link add c1 netns "${P}c" type veth peer name d0 netns "${P}d"
ip link add d1 netns "${P}d" type veth peer name m0 netns "${P}w"
ip -n "${P}c" addr add 198.18.0.1/24 dev c0
ip -n "${P}c" addr add 198.18.1.1/24 dev c1
ip -n "${P}w" addr add 198.18.0.254/24 dev w0
ip -n "${P}d" addr add 198.18.1.254/24 dev d0
ip -n "${P}d" addr add 172.16.0.1/24 dev d1
ip -n "${P}w" addr add 172.16.0.2/24 dev m0
for l in "c c0" "c c1" "w w0" "w m0" "d d0" "d d1"; do set -- $l; ip -n "${P}$1" link set "$2" up; done
# Initiators: 4 runs (2 deployments x 2 loads), each with its own CLIENTS addresses.
for i in $(seq 0 $((CLIENTS - 1))); do
  for base in 10 60; do
    ip -n "${P}c" addr add "198.18.0.$((base + i))/24" dev c0
    ip -n "${P}c" addr add "198.18.1.$((base + i))/24" dev c1
  done
done

printf '%s' 00112233445566778899aabbccddeeff > "$tmp/k1"
# The zone: NHOSTS hosts behind one gateway.
hosts() {
  cat <<CFG

[[dns.ns]]
name = "ns1"
address = "$1"

[[dns.gateway]]
id = 1
address = "192.0.2.2"

[dns.rate]
sessions_per_s = 1000000
CFG
  for i in $(seq 0 $((NHOSTS - 1))); do
    printf '\n[[dns.host]]\nname = "h%d"\ngateway_id = 1\naddress = "10.1.%d.%d"\n' "$i" $((i / 250)) $((i % 250 + 1))
  done
}
for i in $(seq 0 $((NHOSTS - 1))); do echo "h$i.aves.example A"; done > "$tmp/names.txt"

cat > "$tmp/w.toml" <<CFG
[engine]
role = "waypoint"
eal_args = ["--no-pci", "--no-huge", "--no-shconf", "-m", "512", "-l", "$LOAD_CPU", "--file-prefix", "${P}w", "--log-level", "lib.eal:notice"]
idle = { mode = "sleep", after_empty_polls = 64, max_sleep_us = 50 }

[control]
socket = "$tmp/w.sock"
cpu = $CTL_CPU
listen = "172.16.0.2:4798"

[[control.key]]
id = 1
algorithm = "hmac-md5"
secret_file = "$tmp/k1"

[[port]]
name = "wan"
device = "net_null0,no-rx=1"
addresses = ["203.0.113.2/24"]
pools = ["100.64.0.0-100.64.15.255"]

[tunnel]
udp_port = 4797

[[tunnel.key]]
gateway = "192.0.2.2"
id = 1
algorithm = "hmac-md5"
secret = "000102030405060708090a0b0c0d0e0f"

[dns]
listen = "198.18.0.254:53"
zone = "aves.example."
intranet = ["198.18.0.0/16"]
CFG
hosts 198.18.0.254 >> "$tmp/w.toml"
cat > "$tmp/d.toml" <<CFG
[dns]
listen = "198.18.1.254:53"
zone = "aves.example."
intranet = ["198.18.0.0/16"]

[[dns.key]]
id = 1
algorithm = "hmac-md5"
secret_file = "$tmp/k1"

[[dns.waypoint]]
control = "172.16.0.2:4798"
addresses = ["100.64.0.0-100.64.15.255"]
CFG
hosts 198.18.1.254 >> "$tmp/d.toml"

ip netns exec "${P}w" "$AVES" run --config "$tmp/w.toml" > "$tmp/w.out" 2> "$tmp/w.err" &
w_pid=$!
ip netns exec "${P}d" taskset -c "$CTL_CPU" "$AVES" dns --config "$tmp/d.toml" > "$tmp/d.out" 2> "$tmp/d.err" &
d_pid=$!
for _ in $(seq 1 100); do
  "$AVES" ctl --socket "$tmp/w.sock" ping >/dev/null 2>&1 \
    && ip netns exec "${P}c" dig +time=1 +tries=1 @198.18.0.254 aves.example SOA >/dev/null 2>&1 \
    && ip netns exec "${P}c" dig +time=1 +tries=1 @198.18.1.254 aves.example SOA >/dev/null 2>&1 && break
  kill -0 "$w_pid" 2>/dev/null && kill -0 "$d_pid" 2>/dev/null || break
  sleep 0.2
done
if ! "$AVES" ctl --socket "$tmp/w.sock" ping >/dev/null 2>&1 || ! kill -0 "$d_pid" 2>/dev/null; then
  echo "perf/dns.sh: the daemons did not start"; tail -5 "$tmp/w.err" "$tmp/d.err"; exit 1
fi
# The real pid of aves run (ip netns exec execs it: the same pid).
W=$w_pid
D=$(pgrep -P "$d_pid" -x aves || echo "$d_pid")

# ticks PID: utime+stime of the whole process (live and exited threads).
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# tticks PID TID: utime+stime of one thread.
tticks() { awk '{ print $14 + $15 }' "/proc/$1/task/$2/stat"; }
# control side of the waypoint: everything but the main thread (the main lcore).
wctl_ticks() { echo $(( $(ticks "$W") - $(tticks "$W" "$W") )); }
counter() { "$AVES" ctl --socket "$tmp/w.sock" stats | awk -v n="$1" '$1 == "control" && $2 == n { print $3 }'; }

# Idle cost of the control side, ticks per second.
i0=$(wctl_ticks); d0=$(ticks "$D"); sleep "$IDLE_S"
W_IDLE=$(echo "$(( $(wctl_ticks) - i0 )) $IDLE_S" | awk '{ printf "%.3f", $1 / $2 }')
D_IDLE=$(echo "$(( $(ticks "$D") - d0 )) $IDLE_S" | awk '{ printf "%.3f", $1 / $2 }')

echo "aves control plane: sessions through DNS -> SETUP -> ACCEPT -> answer (intranet mode)"
echo "CPU: $(awk -F: '/^model name/ { sub(/^ +/, "", $2); print $2; exit }' /proc/cpuinfo), $(nproc) CPUs, ${MHZ} MHz; control core: CPU $CTL_CPU; lcore and dnsperf: CPU $LOAD_CPU"
echo "$CLIENTS initiators x $NHOSTS hosts = $((CLIENTS * NHOSTS)) sessions per run; idle control side: waypoint $W_IDLE, aves dns $D_IDLE ticks/s (HZ $HZ)"
printf '%-12s %-6s %11s %10s %9s %9s %9s %14s %14s\n' deployment load sessions sessions/s p50_ms p99_ms failed cycles/sess cycles/sess_net

# run NAME SERVER SUBNET BASE LOAD DNSPERF-ARGS...: one dnsperf per initiator
# 198.18.SUBNET.(BASE+i).
run() {
  local name=$1 server=$2 subnet=$3 base=$4 load=$5
  shift 5
  local out=$tmp/$name-$load
  mkdir -p "$out"
  local acc0 w0 dd0 t0 t1 i
  acc0=$(counter setup_accepted); w0=$(wctl_ticks); dd0=$(ticks "$D")
  t0=$(date +%s%N)
  local pids=()
  for i in $(seq 0 $((CLIENTS - 1))); do
    ip netns exec "${P}c" taskset -c "$LOAD_CPU" dnsperf -s "$server" -a "198.18.$subnet.$((base + i))" \
      -d "$tmp/names.txt" -n 1 -t 5 -v "$@" > "$out/$i.txt" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  t1=$(date +%s%N)
  local wt dt acc
  wt=$(( $(wctl_ticks) - w0 )); dt=$(( $(ticks "$D") - dd0 ))
  acc=$(( $(counter setup_accepted) - acc0 ))
  [ "$name" = co-located ] && dt=0
  # Latencies of NOERROR answers, ms, sorted; other answers (SERVFAIL, T = timeout).
  cat "$out"/*.txt | awk '$1 == ">" && $2 == "NOERROR" { print $NF * 1000 }' | sort -n > "$out/lat"
  local bad
  bad=$(cat "$out"/*.txt | awk '$1 == ">" && $2 != "NOERROR" { n++ } END { print n + 0 }')
  awk -v secs="$(( t1 - t0 ))" -v mhz="$MHZ" -v hz="$HZ" -v wt="$wt" -v dt="$dt" -v bad="$bad" \
      -v widle="$W_IDLE" -v didle="$D_IDLE" -v name="$name" -v load="$load" -v acc="$acc" \
      -v colo="$([ "$name" = co-located ] && echo 1 || echo 0)" '
    { lat[++n] = $1 }
    END {
      s = secs / 1e9
      p50 = n ? lat[int((n - 1) * 0.50) + 1] : 0
      p99 = n ? lat[int((n - 1) * 0.99) + 1] : 0
      busy = (wt + dt) / hz
      idle = (widle + (colo ? 0 : didle)) * s / hz
      cyc = n ? mhz * 1e6 * busy / n : 0
      net = n ? mhz * 1e6 * (busy - idle) / n : 0
      printf "%-12s %-6s %11d %10.0f %9.2f %9.2f %9d %14.0f %14.0f\n", name, load, n, n / s, p50, p99, bad, cyc, net
      if (acc != n) printf "  note: %d SETUPs accepted for %d NOERROR answers\n", acc, n
      printf "  (%.2f s; control-side CPU %.2f s = %.0f%% of one core)\n", s, busy, 100 * busy / s
    }' "$out/lat"
}

run co-located 198.18.0.254 0 10 full -q "$OUTSTANDING"
run udp 198.18.1.254 1 10 full -q "$OUTSTANDING"
run co-located 198.18.0.254 0 60 light -q "$OUTSTANDING" -Q "$LIGHT_QPS" -l "$LIGHT_S"
run udp 198.18.1.254 1 60 light -q "$OUTSTANDING" -Q "$LIGHT_QPS" -l "$LIGHT_S"
echo "(full: $OUTSTANDING queries outstanding per initiator, $((CLIENTS * OUTSTANDING)) in all, as fast as answered;"
echo " light: at most $LIGHT_QPS queries/s per initiator, $((CLIENTS * LIGHT_QPS))/s in all, for $LIGHT_S s)"
echo "waypoint SETUP service, non-zero counters:"
"$AVES" ctl --socket "$tmp/w.sock" stats | awk '$1 == "control" && $3 != 0 { printf "  %s %s\n", $2, $3 }'
echo "aves dns (udp), non-zero counters:"
kill -INT "$d_pid"; wait "$d_pid"; d_pid=
awk '$1 == "dns" && $3 != 0 { printf "  %s %s\n", $2, $3 }' "$tmp/d.out"
