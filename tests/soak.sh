#!/usr/bin/env bash
# Soak and leak audit (tracker issue 7): waypoint W and gateway R on virtual devices
# (the scripts/aves-netns.sh topology of tests/e2e/aves.sh) under a flood of UDP flows
# that are created and expire all the time, plus real TCP (HTTP downloads), for
# SOAK_SECONDS (default 90; the documented run: 600). Short timeouts (udp 3 s) make
# every flow expire within the run.
#
# Measured before (after a warm-up that filled and emptied the tables once, so pages
# touched on first use are in the baseline) and after (once the tables are empty
# again: at least SETTLE (8) s after the traffic, more than the longest timeout, then
# up to SETTLE_MAX (60) s more, because expiry sweeps a bounded number of slots per
# millisecond, so emptying a large table takes seconds; the time taken is printed):
#   - mbufs free in each pool (aves ctl status "mempool available="): must equal the
#     baseline exactly (idle engines hold no mbufs; the per-lcore caches are counted);
#   - RSS of each engine (/proc/PID/status VmRSS): may grow by at most RSS_SLACK_KB
#     (default 1024 kB: allocator noise; a leak of one allocation per flow would be
#     hundreds of MB over millions of flows);
#   - table occupancy (aves ctl stats "table NAME N"): every table at or below its
#     baseline (connections and flows empty; bindings unchanged);
#   - conservation: each engine's received packets = sent + counted drops (within 200).
# The waypoint tracks only TCP connections (UDP rides on the binding), the gateway every
# flow. Every datagram is counted: sent by A, received by B (at least half: the sender
# outruns the engines on this testbed and af_packet drops the excess in its rings,
# counted as nic_imissed and printed); HTTP downloads (2 MB) from A through W and R
# run all the time and must all succeed. Prints a summary line "soak: ..." with the numbers.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$here/e2e/lib.sh"
# shellcheck source=tests/e2e/aves-lib.sh
. "$here/e2e/aves-lib.sh"
# shellcheck source=scripts/aves-netns.sh
. "$root/scripts/aves-netns.sh"
need_root soak

SOAK_SECONDS=${SOAK_SECONDS:-90}
SETTLE=${SETTLE:-8}
SETTLE_MAX=${SETTLE_MAX:-60}
RSS_SLACK_KB=${RSS_SLACK_KB:-1024}
NADDR=${SOAK_INITIATORS:-16}
aves_e2e_begin soak

W=203.0.113.100
R=192.0.2.2
B=10.0.0.2
# The initiators' addresses, 198.51.100.101 on.
mapfile -t inits < <(for i in $(seq 1 "$NADDR"); do echo "198.51.100.$((100 + i))"; done)

# mempool SOCK: free mbufs; rss PID: VmRSS kB; table SOCK NAME: one table's occupancy;
# tables SOCK: "name=N ..." of the tables; drop_list SOCK: "reason=N ..." of the drops.
mempool() { aves_ctl "$1" status | awk '/^mempool/ { split($2, a, "="); print a[2] }'; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
table() { aves_ctl "$1" stats | awk -v t="$2" '$1 == "table" && $2 == t { print $3 }'; }
tables() { aves_ctl "$1" stats | awk '$1 == "table" { printf "%s=%s ", $2, $3 }'; }
drop_list() { aves_ctl "$1" stats | awk '$1 == "drop" { printf "%s=%s ", $2, $3 }'; }
# conserve SOCK: rx - tx - drops over all ports of an engine.
conserve() {
  aves_ctl "$1" stats | awk '
    $1 == "port" { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "rx_packets") d += kv[2]; if (kv[1] == "tx_packets") d -= kv[2] } }
    $1 == "drop" { d -= $3 }
    END { print d + 0 }'
}
abs() { local v=$1; echo "${v#-}"; }
# le_tables BASELINE AFTER: every "name=N" of AFTER is at most its value in BASELINE
# (the gateway's own NAT44 entries, with their longer timers, may expire in between).
le_tables() {
  local kv name v b
  for kv in $2; do
    name=${kv%%=*}; v=${kv#*=}
    b=$(tr ' ' '\n' <<< "$1" | awk -F= -v n="$name" '$1 == n { print $2 }')
    [ "$v" -le "${b:-0}" ] || { echo "$name: $v > ${b:-0}"; return 1; }
  done
}

# The sender: UDP from NADDR initiators to W, each packet from a new source port (a new
# connection at W and a new flow at R) until the ports wrap, as fast as one process can.
cat > "$tmp/flood.py" <<'PY'
import socket, sys, time
dst, seconds, srcs = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
# One socket per (source address, port): binding is the slow part, so keep a ring of
# 256 sockets per address and send from each to 40 destination ports in turn; a flow is
# (src, sport, dport), so 256 x 40 x NADDR distinct flows, each reused after
# 256*40*NADDR packets (longer than the 3 s UDP timeout at any rate this reaches).
socks = []
for a in srcs:
    for _ in range(256):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((a, 0))
        s.setblocking(False)
        socks.append(s)
payload = b"x" * 64
sent = 0
t0 = time.monotonic()
end = t0 + seconds
n = len(socks)
while True:
    for dp in range(9100, 9140):
        for s in socks:
            try:
                s.sendto(payload, (dst, dp))
                sent += 1
            except (BlockingIOError, OSError):
                pass
        if time.monotonic() >= end:
            break
    if time.monotonic() >= end:
        break
print(sent, round(time.monotonic() - t0, 1))
PY
# B's sink: counts datagrams on ports 9100-9139 (one socket each), no answers; SIGUSR1
# resets the count, SIGTERM writes it to the file.
cat > "$tmp/sink.py" <<'PY'
import selectors, signal, socket, sys
sel = selectors.DefaultSelector()
for p in range(9100, 9140):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind((sys.argv[1], p))
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
n = 0
def reset(*_):
    global n
    n = 0
signal.signal(signal.SIGUSR1, reset)
def done(*_):
    open(sys.argv[2], "w").write(f"{n}\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
while True:
    for key, _ in sel.select(1):
        while True:
            try:
                key.fileobj.recv(2048)
                n += 1
            except BlockingIOError:
                break
PY

echo "== soak: topology, W and R with short timeouts (${SOAK_SECONDS} s run)"
aves_topo_up
waypoint_config "$tmp/waypoint.toml" "$wsock"
gateway_config "$tmp/gateway.toml" "$rsock"
for f in waypoint gateway; do
  cat >> "$tmp/$f.toml" <<'CFG'

[timeouts]
icmp = 3
udp = 3
tcp = 5
other = 3

[limits]
connections = 262144
flows = 262144
CFG
done
check "check-config accepts both configs" bash -c "'$AVES' check-config '$tmp/waypoint.toml' && '$AVES' check-config '$tmp/gateway.toml'"
for a in "${inits[@]}"; do ip -n "${P}a" addr add "$a/24" dev a0; done
mkdir -p "$tmp/www"; head -c 2000000 /dev/urandom > "$tmp/www/big.bin"
http_serve "${P}b" "$B" 8000 "$tmp/www" /dev/null
ip netns exec "${P}b" "$PY" "$tmp/sink.py" "$B" "$tmp/sink.count" &
sink_pid=$!
ip netns exec "${P}r" "$AVES" run --config "$tmp/gateway.toml" > "$tmp/r.out" 2> "$tmp/r.err" &
r_pid=$!
ip netns exec "${P}w" "$AVES" run --config "$tmp/waypoint.toml" > "$tmp/w.out" 2> "$tmp/w.err" &
w_pid=$!
check "both engines answer" aves_wait_engines
for a in "${inits[@]}" 198.51.100.10; do wctl binding add "$a" "$W" via "$R" to "$B" > /dev/null; done
# The engines' own PIDs (ip netns exec execs, so these are the engines).
wp=$w_pid; rp=$r_pid

# fetch_loop FILE: HTTP downloads from A through W until killed; appends ok/fail lines.
fetch_loop() {
  while :; do
    if inA curl -s --max-time 10 --interface 198.51.100.10 -o /dev/null "http://$W:8000/big.bin"; then echo ok; else echo fail; fi
  done >> "$1"
}

# drain [N]: waits until W has no connections and R at most N flows (default 0; the
# gateway's own NAT44 entries, if any, keep the longer NAT44 timers), at most
# SETTLE_MAX s after SETTLE; prints the seconds waited beyond SETTLE.
drain() {
  sleep "$SETTLE"
  local t=0
  while [ "$t" -lt "$SETTLE_MAX" ]; do
    [ "$(table "$wsock" connections)" = 0 ] && [ "$(table "$rsock" flows)" -le "${1:-0}" ] && break
    sleep 1; t=$((t + 1))
  done
  echo "$t"
}

echo "== warm-up (10 s of the same load), then settle: the baseline"
inA "$PY" "$tmp/flood.py" "$W" 10 "${inits[@]}" > /dev/null
drain 32 > /dev/null
mp_w0=$(mempool "$wsock"); mp_r0=$(mempool "$rsock")
rss_w0=$(rss "$wp"); rss_r0=$(rss "$rp")
tw0=$(tables "$wsock"); tr0=$(tables "$rsock"); flows0=$(table "$rsock" flows)
echo "baseline: W mempool=$mp_w0 rss=${rss_w0}kB $tw0| R mempool=$mp_r0 rss=${rss_r0}kB $tr0"

echo "== load for $SOAK_SECONDS s"
kill -USR1 "$sink_pid"
fetch_loop "$tmp/fetch.log" &
fetch_pid=$!
inA "$PY" "$tmp/flood.py" "$W" "$SOAK_SECONDS" "${inits[@]}" > "$tmp/flood.out" &
flood_pid=$!
peak_c=0; peak_f=0
while kill -0 "$flood_pid" 2>/dev/null; do
  c=$(table "$wsock" connections); f=$(table "$rsock" flows)
  [ "${c:-0}" -gt "$peak_c" ] && peak_c=$c
  [ "${f:-0}" -gt "$peak_f" ] && peak_f=$f
  sleep 5
done
wait "$flood_pid"
kill "$fetch_pid" 2>/dev/null; wait "$fetch_pid" 2>/dev/null
read -r sent secs < "$tmp/flood.out"
echo "== settle: $SETTLE s (longest timeout 5 s), then until the tables are empty (at most $SETTLE_MAX s more)"
drain1=$(drain "$flows0")
kill -TERM "$sink_pid"; wait "$sink_pid" 2>/dev/null
got=$(cat "$tmp/sink.count" 2>/dev/null || echo 0)
mp_w1=$(mempool "$wsock"); mp_r1=$(mempool "$rsock")
rss_w1=$(rss "$wp"); rss_r1=$(rss "$rp")
tw1=$(tables "$wsock"); tr1=$(tables "$rsock")
echo "after:    W mempool=$mp_w1 rss=${rss_w1}kB $tw1| R mempool=$mp_r1 rss=${rss_r1}kB $tr1"
echo "W drops: $(drop_list "$wsock")"
echo "R drops: $(drop_list "$rsock")"
wctl status | grep '^port'; rctl status | grep '^port'
fetch_ok=$(grep -c '^ok' "$tmp/fetch.log"); fetch_fail=$(grep -c '^fail' "$tmp/fetch.log")

check_ge "the flood sent packets" 1 "$sent"
# Conservation: every packet an engine received was sent or counted as dropped
# (within 200: ARP and ICMP the engines make themselves). Losses between the sender
# and W, and at B's sockets, are the kernel's (not aves').
check_ge "W: received = sent + counted drops (|diff| $(abs "$(conserve "$wsock")"))" "$(abs "$(conserve "$wsock")")" 200
check_ge "R: received = sent + counted drops (|diff| $(abs "$(conserve "$rsock")"))" "$(abs "$(conserve "$rsock")")" 200
# B's socket is a Linux receiver in a namespace: what it drops under CPU contention is
# the kernel's (R counted those packets as sent). 80 % held on a quiet machine, 78.5 %
# in a CI run beside other work: half is the bar, to show the traffic really crossed.
check_ge "B received at least half of what the sender sent" "$((sent / 2))" "$got"
check_ge "the gateway held many flows at once (peak)" 10000 "$peak_f"
check_ge "the tables emptied within SETTLE + SETTLE_MAX s (after $((SETTLE + drain1)) s)" "$((drain1 + 1))" "$SETTLE_MAX"
check_ge "HTTP downloads through W and R succeeded" 1 "$fetch_ok"
check_ge "at most 1% of the HTTP downloads failed ($fetch_fail)" "$fetch_fail" "$((fetch_ok / 100))"
check_eq "W: mbufs free back to the baseline" "$mp_w0" "$mp_w1"
check_eq "R: mbufs free back to the baseline" "$mp_r0" "$mp_r1"
check_ge "W: RSS within ${RSS_SLACK_KB} kB of the baseline (${rss_w0} -> ${rss_w1} kB)" "$rss_w1" "$((rss_w0 + RSS_SLACK_KB))"
check_ge "R: RSS within ${RSS_SLACK_KB} kB of the baseline (${rss_r0} -> ${rss_r1} kB)" "$rss_r1" "$((rss_r0 + RSS_SLACK_KB))"
check "W: every table at or below its baseline ($tw1)" le_tables "$tw0" "$tw1"
check "R: every table at or below its baseline ($tr1)" le_tables "$tr0" "$tr1"
check_eq "W: connections 0 after expiry" 0 "$(table "$wsock" connections)"
check "W still running" kill -0 "$wp"
check "R still running" kill -0 "$rp"
echo "soak: ${SOAK_SECONDS}s sent=$sent (${secs}s, $((sent / ${secs%.*})) pkt/s) received=$got peak_connections=$peak_c peak_flows=$peak_f drained_after=$((SETTLE + drain1))s http_ok=$fetch_ok http_fail=$fetch_fail W: mempool $mp_w0->$mp_w1 rss ${rss_w0}->${rss_w1}kB R: mempool $mp_r0->$mp_r1 rss ${rss_r0}->${rss_r1}kB"

echo "== shutdown: every mbuf back in the pool"
for role in w r; do
  pid_var=${role}_pid
  kill -INT "${!pid_var}"; wait "${!pid_var}"; rc=$?
  eval "${role}_pid="
  check_eq "$role exits 0 on SIGINT" 0 "$rc"
done
summary soak
