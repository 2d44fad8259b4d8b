#!/usr/bin/env bash
# Forged-authenticator flood at the highest rate this testbed gives (tracker issue 7,
# "Bounded state under attack"): a gateway receives well-formed AVES tunnel packets
# whose tags were made with another secret, replayed from memory as fast as DPDK's
# net_pcap can (infinite_rx), on its own lcore. Shows:
# - no state: the gateway's flow table and reassembly stay empty, nothing is sent on
#   either port (no ICMP, no forwarding), the process's RSS does not grow;
# - every packet counted: received = auth_bad_tag drops (within one burst, as the two
#   counters are read while the lcore runs);
# - every mbuf back in the pool at exit;
# - control: the same packets under the right secret are delivered (so only the key
#   made the difference).
#
#   sudo tests/forged_flood.sh            # FLOOD_SECONDS (default 5) of flood
#
# AVES_BIN as for the e2e tests. Busy-polls one lcore (CPU 1) for the flood.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$here/e2e/lib.sh"
need_root forged-flood

AVES=${AVES_BIN:-$root/target/release/aves}
[ -x "$AVES" ] || { echo "forged-flood: $AVES not built"; echo "forged-flood: 0 passed, 1 failed"; exit 1; }
SECS=${FLOOD_SECONDS:-5}
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
PCAP_MAC=02:70:63:61:70:00 # net_pcap's MAC for port 0
RIGHT=000102030405060708090a0b0c0d0e0f
WRONG=0f0e0d0c0b0a09080706050403020100

head_cfg() { # head_cfg FILE ROLE SOCK
  cat > "$1" <<CFG
[engine]
role = "$2"
eal_args = ["--no-pci", "--no-huge", "--no-shconf", "-m", "1024", "-l", "1", "--file-prefix", "avflood", "--log-level", "*:error"]
mbufs = 16383
idle = { mode = "busy" }

[control]
socket = "$3"

CFG
}
ctl() { "$AVES" ctl --socket "$1" stats; }
port_field() { # port_field STATS PORT FIELD
  awk -v p="$2" -v f="$3" '$1 == "port" && $2 == p { for (i = 3; i <= NF; i++) if (index($i, f "=") == 1) { sub(f "=", "", $i); print $i } }' <<< "$1"
}
drop_of() { awk -v r="$2" '$1 == "drop" && $2 == r { print $3 }' <<< "$1" | grep . || echo 0; }
table_of() { awk -v t="$2" '$1 == "table" && $2 == t { print $3 }' <<< "$1" | grep . || echo 0; }
start() { # start CONFIG SOCK
  "$AVES" run --config "$1" > "$tmp/out" 2> "$tmp/err" &
  pid=$!
  for _ in $(seq 1 100); do "$AVES" ctl --socket "$2" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "aves did not start: $(tail -3 "$tmp/err")"
  return 1
}
stop() {
  kill -INT "$pid"; wait "$pid"; local rc=$?; pid=
  check_eq "$1: exits 0" 0 "$rc"
  check "$1: every mbuf back in the pool" grep -Eq '^mempool free=16383 size=16383' "$tmp/out"
}

echo "== making tunnel packets: a waypoint tags 2048 datagrams (512 B, 1024 flows) with the right secret"
python3 "$root/perf/gen_pcaps.py" "$tmp/in.pcap" --size 512 --flows 1024 --dst-mac "$PCAP_MAC" \
  --src 198.51.100.10 --dst 203.0.113.100 --df --packets 2048
head_cfg "$tmp/w.toml" waypoint "$tmp/w.sock"
cat >> "$tmp/w.toml" <<CFG
[[port]]
name = "in"
device = "net_pcap0,rx_pcap=$tmp/in.pcap"
addresses = ["203.0.113.2/24"]
pools = ["203.0.113.100-203.0.113.115"]

[[port]]
name = "out"
device = "net_pcap1,tx_pcap=$tmp/tunnel.pcap"
addresses = ["192.0.2.9/24"]

[[neighbour]]
port = "out"
ip = "192.0.2.2"
mac = "$PCAP_MAC"

[[tunnel.key]]
gateway = "192.0.2.2"
id = 1
algorithm = "hmac-md5"
secret = "$RIGHT"

[[binding]]
initiator = "198.51.100.10"
waypoint = "203.0.113.100"
gateway = "192.0.2.2"
responder = "10.0.0.2"
CFG
start "$tmp/w.toml" "$tmp/w.sock" || { summary forged-flood; exit 1; }
sleep 2
s=$(ctl "$tmp/w.sock")
check_eq "the waypoint tunnelled every datagram" 2048 "$(port_field "$s" out tx_packets)"
stop waypoint

gateway_cfg() { # gateway_cfg SECRET
  head_cfg "$tmp/g.toml" gateway "$tmp/g.sock"
  cat >> "$tmp/g.toml" <<CFG
[[port]]
name = "pub"
device = "net_pcap0,rx_pcap=$tmp/tunnel.pcap,infinite_rx=1"
addresses = ["192.0.2.2/24"]

[[port]]
name = "priv"
device = "net_null0,no-rx=1"
addresses = ["10.0.0.1/24"]

[[route]]
prefix = "0.0.0.0/0"
via = "192.0.2.1"
port = "pub"

[[neighbour]]
port = "priv"
ip = "10.0.0.2"
mac = "02:00:00:00:00:02"

[[tunnel.key]]
id = 1
algorithm = "hmac-md5"
secret = "$1"

[gateway]
public = "pub"
private = "priv"
CFG
}

echo "== the flood: the same packets, the gateway holding another secret under key id 1 (${SECS} s)"
gateway_cfg "$WRONG"
start "$tmp/g.toml" "$tmp/g.sock" || { summary forged-flood; exit 1; }
rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
sleep 1
s0=$(ctl "$tmp/g.sock"); t0=$(date +%s.%N)
sleep "$SECS"
s1=$(ctl "$tmp/g.sock"); t1=$(date +%s.%N)
rss1=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
rx0=$(port_field "$s0" pub rx_packets); rx1=$(port_field "$s1" pub rx_packets)
bad=$(drop_of "$s1" auth_bad_tag)
rx=$((rx1 - rx0))
rate=$(awk -v n="$rx" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", n / (b - a) / 1e6 }')
echo "   forged packets received in ${SECS} s: $rx (${rate} Mpps); auth_bad_tag $bad of $rx1 received"
check_ge "a flood arrived (over 100k packets in ${SECS} s)" 100000 "$rx"
diff=$((rx1 - bad)); diff=${diff#-}
check_ge "every forged packet counted as auth_bad_tag (|received - counted| <= 64: one burst in flight)" "$diff" 64
check_eq "no flow entry created" 0 "$(table_of "$s1" flows)"
check_eq "no reassembly context" 0 "$(table_of "$s1" reassembly_contexts)"
check_eq "nothing sent to the private side" 0 "$(port_field "$s1" priv tx_packets)"
check_eq "nothing sent back to the Internet (no ICMP)" 0 "$(port_field "$s1" pub tx_packets)"
check_ge "RSS did not grow by more than 1 MB ($rss0 -> $rss1 kB)" "$((rss1 - rss0))" 1024
stop "forged flood"

echo "== control: the same packets with the right secret are delivered"
gateway_cfg "$RIGHT"
start "$tmp/g.toml" "$tmp/g.sock" || { summary forged-flood; exit 1; }
sleep 2
s=$(ctl "$tmp/g.sock")
check_ge "delivered to the private side" 1000 "$(port_field "$s" priv tx_packets)"
check_eq "none refused as auth_bad_tag" 0 "$(drop_of "$s" auth_bad_tag)"
stop "right secret"

echo "forged-flood: ${rate} Mpps of forged packets for ${SECS} s, no state, every packet counted"
summary forged-flood
