#!/usr/bin/env bash
# Namespace topology for the AVES end-to-end test and demo (sourced, not run).
#
#   [${P}a] a0 198.51.100.10/24 ─┐                         ┌─ wan  [${P}w: aves waypoint,
#           (+ A2 198.51.100.11)  └─ ia 198.51.100.1/24     │       203.0.113.2/24, pool
#                                   [${P}i: Linux router]   │       203.0.113.100-.115]
#                                     iw 203.0.113.1/24 ────┘
#                                     ir 192.0.2.1/24 ─────── pub  [${P}r: aves gateway,
#                                                                   pub 192.0.2.2/24,
#   [${P}b] b0 10.0.0.2/24 ────────────────────────────────── priv    priv 10.0.0.1/24]
#
# A and A2 are initiators on the "Internet" (a Linux namespace routing between three
# links); W is a waypoint that virtualizes the private responder B for them; R is B's
# AVES-aware NAT gateway (paper §3.2). aves owns wan, pub and priv through DPDK's
# net_af_packet (or, with AVES_E2E_PORTS=tap, through taps twan, tpub, tpriv that a
# bridge in the same namespace joins to the veth); the kernels in ${P}w and ${P}r have
# no addresses on them. Every peer
# that sends into a DPDK-owned veth (iw, ir, b0) has TX checksum offload off (veth
# otherwise leaves partial checksums, which stall TCP: shared/TESTBED.md). IPv6 is off
# on every link, so no router solicitations or MLD reports reach the engines. Traffic
# goes only to addresses inside these namespaces.

P=${AVES_NS_PREFIX:-avs}

# How the engines attach to their links: "af_packet" (DPDK's net_af_packet on the veth
# itself) or "tap" (DPDK's net_tap, bridged in the engine's namespace with the veth).
# DPDK's af_packet driver joins its sockets to a PACKET_FANOUT group with
# PACKET_FANOUT_FLAG_DEFRAG, so the kernel reassembles IPv4 fragments before the engine
# sees them (and a reassembled datagram longer than an af_packet frame arrives
# truncated). With tap ports fragments reach the engine as they are on the wire.
AVES_E2E_PORTS=${AVES_E2E_PORTS:-af_packet}
# The engines' MACs on tap ports (on af_packet ports they are the veths' own).
AVES_W_TAP_MAC=02:a5:00:00:00:01
AVES_R_PUB_TAP_MAC=02:a5:00:00:00:02
AVES_R_PRIV_TAP_MAC=02:a5:00:00:00:03

# The tunnel key W and R share (32 bytes, hex); a test-only value.
AVES_E2E_KEY=${AVES_E2E_KEY:-4156455320653265207368617265642074657374206b65792c207075626c6963}
AVES_E2E_KEY_ID=${AVES_E2E_KEY_ID:-1}

aves_topo_down() {
  for n in a i w r b; do ip netns del "${P}$n" 2>/dev/null || true; done
}

# _aves_link NS IFACE: IPv6 off, link up.
_aves_link() {
  ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
  ip -n "$1" link set "$2" up
}

aves_topo_up() {
  aves_topo_down
  local n
  for n in a i w r b; do
    ip netns add "${P}$n"
    ip netns exec "${P}$n" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "${P}$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "${P}$n" link set lo up
  done
  ip link add a0 netns "${P}a" type veth peer name ia netns "${P}i"
  ip link add iw netns "${P}i" type veth peer name wan netns "${P}w"
  ip link add ir netns "${P}i" type veth peer name pub netns "${P}r"
  ip link add b0 netns "${P}b" type veth peer name priv netns "${P}r"
  _aves_link "${P}a" a0
  for i in ia iw ir; do _aves_link "${P}i" "$i"; done
  _aves_link "${P}w" wan
  _aves_link "${P}r" pub
  _aves_link "${P}r" priv
  _aves_link "${P}b" b0

  # Initiators A and A2: two addresses on one link, one stack.
  ip -n "${P}a" addr add 198.51.100.10/24 dev a0
  ip -n "${P}a" addr add 198.51.100.11/24 dev a0
  ip -n "${P}a" route add default via 198.51.100.1

  # The "Internet": forwards, no reverse-path filter (replies from R carry W's address
  # as their source and arrive on ir, which is how AVES works: paper §3.2 step 5).
  ip -n "${P}i" addr add 198.51.100.1/24 dev ia
  ip -n "${P}i" addr add 203.0.113.1/24 dev iw
  ip -n "${P}i" addr add 192.0.2.1/24 dev ir
  ip netns exec "${P}i" sysctl -qw net.ipv4.ip_forward=1
  for i in all default ia iw ir; do
    ip netns exec "${P}i" sysctl -qw "net.ipv4.conf.$i.rp_filter=0"
  done
  ip netns exec "${P}i" ethtool -K iw tx off >/dev/null
  ip netns exec "${P}i" ethtool -K ir tx off >/dev/null

  # Responder B behind R.
  ip -n "${P}b" addr add 10.0.0.2/24 dev b0
  # A second responder, B2, on the same private link (its own HTTP server).
  ip -n "${P}b" addr add 10.0.0.3/24 dev b0
  ip -n "${P}b" route add default via 10.0.0.1
  ip netns exec "${P}b" ethtool -K b0 tx off >/dev/null

  if [ "$AVES_E2E_PORTS" = tap ]; then
    # One bridge per engine port; aves_attach_taps adds the tap once aves created it.
    _aves_bridge "${P}w" bwan wan
    _aves_bridge "${P}r" bpub pub
    _aves_bridge "${P}r" bpriv priv
  fi
}

# aves_mgmt_up: a management link for the waypoint's control plane: "mgmt"
# 172.16.0.2/24 in ${P}w (a kernel interface: the SETUP service listens there, DPDK owns
# wan) to "im" 172.16.0.1/24 in ${P}i, where the test's "DNS server" (aves setup) runs.
aves_mgmt_up() {
  ip link add im netns "${P}i" type veth peer name mgmt netns "${P}w"
  _aves_link "${P}i" im
  _aves_link "${P}w" mgmt
  ip -n "${P}i" addr add 172.16.0.1/24 dev im
  ip -n "${P}w" addr add 172.16.0.2/24 dev mgmt
}

# _aves_bridge NS BRIDGE VETH
_aves_bridge() {
  ip -n "$1" link add "$2" type bridge stp_state 0 forward_delay 0
  ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
  ip -n "$1" link set "$3" master "$2"
  ip -n "$1" link set "$2" up
}

# aves_attach_taps: with AVES_E2E_PORTS=tap, enslaves the taps the running engines
# created (twan in ${P}w; tpub, tpriv in ${P}r) to their bridges. Call it once both
# daemons answer on their control sockets (their ports are started by then). DPDK's tap
# driver gives the kernel side of the tap the port's own MAC; a bridge would take frames
# to that MAC as its own, so the kernel side gets another one first.
aves_attach_taps() {
  [ "$AVES_E2E_PORTS" = tap ] || return 0
  local ns br tap mac
  while read -r ns br tap mac; do
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$tap.disable_ipv6=1" || return 1
    ip -n "$ns" link set "$tap" address "$mac" || return 1
    ip -n "$ns" link set "$tap" master "$br" || return 1
    ip -n "$ns" link set "$tap" up || return 1
  done <<EOF2
${P}w bwan twan 02:a5:00:00:01:01
${P}r bpub tpub 02:a5:00:00:01:02
${P}r bpriv tpriv 02:a5:00:00:01:03
EOF2
}

# aves_w_mac: the MAC of W's engine port.
aves_w_mac() {
  if [ "$AVES_E2E_PORTS" = tap ]; then
    echo "$AVES_W_TAP_MAC"
  else
    ip -n "${P}w" -br link show wan | awk '{print $3}'
  fi
}

# _aves_device N VETH TAP MAC QPAIRS: the DPDK device string of an engine port.
_aves_device() {
  if [ "$AVES_E2E_PORTS" = tap ]; then
    echo "net_tap$1,iface=$3,mac=$4"
  else
    echo "net_af_packet$1,iface=$2,framecnt=2048,qpairs=$5"
  fi
}

# _aves_nq LCORES: the number of lcores in an EAL core list ("1", "0,1"; ranges not
# supported here) = af_packet queue pairs per port.
_aves_nq() {
  echo "$1" | tr ',' '\n' | grep -c .
}

# _aves_engine FILE ROLE LCORES PREFIX SOCK: the [engine] and [control] part.
_aves_engine() {
  cat > "$1" <<CFG
[engine]
role = "$2"
eal_args = ["--no-pci", "--no-huge", "--no-shconf", "-m", "512", "-l", "$3", "--file-prefix", "$4", "--log-level", "lib.eal:notice"]
mbufs = 8191
idle = { mode = "sleep", after_empty_polls = 256, max_sleep_us = 200 }

[control]
socket = "$5"

CFG
}

# waypoint_config FILE SOCK: the waypoint W in ${P}w (lcores: AVES_W_LCORES, else
# AVES_LCORES, else "1"). Port "wan" owns the pool; tunnels go to R at 192.0.2.2 with
# the shared key. No configured bindings: the test adds them through `aves ctl`.
waypoint_config() {
  local lcores=${AVES_W_LCORES:-${AVES_LCORES:-1}}
  local nq
  nq=$(_aves_nq "$lcores")
  _aves_engine "$1" waypoint "$lcores" "${P}w" "$2"
  cat >> "$1" <<CFG
[[port]]
name = "wan"
device = "$(_aves_device 0 wan twan "$AVES_W_TAP_MAC" "$nq")"
addresses = ["203.0.113.2/24"]
pools = ["203.0.113.100-203.0.113.115"]

[[route]]
prefix = "0.0.0.0/0"
via = "203.0.113.1"
port = "wan"

[tunnel]
udp_port = 4797

[[tunnel.key]]
id = $AVES_E2E_KEY_ID
algorithm = "hmac-md5"
secret = "$AVES_E2E_KEY"
gateway = "192.0.2.2"
CFG
}

# gateway_config FILE SOCK: the AVES-aware NAT gateway R in ${P}r (lcores:
# AVES_R_LCORES, else AVES_LCORES, else "1"): public port "pub", private port "priv".
gateway_config() {
  local lcores=${AVES_R_LCORES:-${AVES_LCORES:-1}}
  local nq
  nq=$(_aves_nq "$lcores")
  _aves_engine "$1" gateway "$lcores" "${P}r" "$2"
  cat >> "$1" <<CFG
[[port]]
name = "pub"
device = "$(_aves_device 0 pub tpub "$AVES_R_PUB_TAP_MAC" "$nq")"
addresses = ["192.0.2.2/24"]

[[port]]
name = "priv"
device = "$(_aves_device 1 priv tpriv "$AVES_R_PRIV_TAP_MAC" "$nq")"
addresses = ["10.0.0.1/24"]

[[route]]
prefix = "0.0.0.0/0"
via = "192.0.2.1"
port = "pub"

[tunnel]
udp_port = 4797

[[tunnel.key]]
id = $AVES_E2E_KEY_ID
algorithm = "hmac-md5"
secret = "$AVES_E2E_KEY"

[gateway]
public = "pub"
private = "priv"
nat_ports = "20000-59999"
CFG
}
