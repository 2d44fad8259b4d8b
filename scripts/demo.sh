#!/usr/bin/env bash
# The router demo: host A — aves — host B in network namespaces, with real pings,
# a traceroute and a TCP transfer through the DPDK engine.
#   sudo scripts/demo.sh          run the demo and tear it down
#   sudo scripts/demo.sh --keep   leave it running (stop with: sudo scripts/demo.sh --down)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
. scripts/netns.sh
if [ "$(id -u)" != 0 ]; then echo "scripts/demo.sh needs root: sudo scripts/demo.sh" >&2; exit 1; fi
sock=/run/aves/demo.sock
if [ "${1:-}" = "--down" ]; then
  ip netns pids "${P}r" 2>/dev/null | xargs -r kill -INT 2>/dev/null || true
  sleep 1; topo_down; exit 0
fi
scripts/install-deps.sh
cargo build --release -p aves
aves=target/release/aves

topo_up
mkdir -p /run/aves
router_config /run/aves/demo.toml "$sock"
echo "== config: /run/aves/demo.toml"
ip netns exec "${P}r" "$aves" run --config /run/aves/demo.toml > /run/aves/demo.out 2> /run/aves/demo.log &
pid=$!
trap '[ "${1:-}" = "--keep" ] || { kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null; cat /run/aves/demo.out; topo_down; }' EXIT
for _ in $(seq 1 100); do "$aves" ctl --socket "$sock" ping >/dev/null 2>&1 && break; sleep 0.2; done

run() { echo; echo "\$ $*"; "$@"; }
run ip netns exec "${P}a" ping -c 3 10.2.0.2
run ip netns exec "${P}a" traceroute -n -q 1 -w 2 10.2.0.2
head -c 10000000 /dev/urandom > /tmp/aves-demo.bin
ip netns exec "${P}b" socat -u TCP-LISTEN:5001,reuseaddr OPEN:/tmp/aves-demo.rx,creat,trunc &
sleep 0.3
run ip netns exec "${P}a" socat -u FILE:/tmp/aves-demo.bin TCP:10.2.0.2:5001
sleep 0.3
run sha256sum /tmp/aves-demo.bin /tmp/aves-demo.rx
run "$aves" ctl --socket "$sock" stats
if [ "${1:-}" = "--keep" ]; then
  echo; echo "running: try  sudo ip netns exec ${P}a ping 10.2.0.2;  sudo $aves ctl --socket $sock stats"
  echo "stop with: sudo scripts/demo.sh --down"
fi
