#!/usr/bin/env bash
# Namespace topology for the router demo and tests (sourced, not run).
#
#   [ns ${P}a]  a0 10.1.0.2/24 ──veth── ra  [ns ${P}r: aves port "a" 10.1.0.1/24]
#   [ns ${P}b]  b0 10.2.0.2/24 ──veth── rb  [ns ${P}r: aves port "b" 10.2.0.1/24]
#
# aves owns ra and rb through DPDK's net_af_packet; the kernel in ${P}r has no
# addresses on them. Peers that send into a DPDK-owned veth have TX checksum offload
# off (veth otherwise leaves partial checksums, which stall TCP: shared/TESTBED.md).
# Traffic goes only to addresses inside these namespaces.

P=${AVES_NS_PREFIX:-avt}

topo_down() {
  for n in a r b; do ip netns del "${P}$n" 2>/dev/null || true; done
}

topo_up() {
  topo_down
  for n in a r b; do ip netns add "${P}$n"; ip -n "${P}$n" link set lo up; done
  ip link add a0 netns "${P}a" type veth peer name ra netns "${P}r"
  ip link add b0 netns "${P}b" type veth peer name rb netns "${P}r"
  for i in ra rb; do
    ip netns exec "${P}r" sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1"
    ip -n "${P}r" link set "$i" up
  done
  ip netns exec "${P}a" sysctl -qw net.ipv6.conf.a0.disable_ipv6=1
  ip netns exec "${P}b" sysctl -qw net.ipv6.conf.b0.disable_ipv6=1
  ip -n "${P}a" addr add 10.1.0.2/24 dev a0
  ip -n "${P}b" addr add 10.2.0.2/24 dev b0
  ip -n "${P}a" link set a0 up
  ip -n "${P}b" link set b0 up
  ip -n "${P}a" route add default via 10.1.0.1
  ip -n "${P}b" route add default via 10.2.0.1
  ip netns exec "${P}a" ethtool -K a0 tx off >/dev/null
  ip netns exec "${P}b" ethtool -K b0 tx off >/dev/null
}

# Writes the router config for this topology to $1 (control socket $2).
# AVES_LCORES (default "1") is the EAL core list; each lcore gets one queue pair per
# port (af_packet's qpairs, spread by the kernel's fanout hash).
router_config() {
  local lcores=${AVES_LCORES:-1}
  local nq
  nq=$(echo "$lcores" | tr ',' '\n' | grep -c .)
  cat > "$1" <<CFG
[engine]
role = "router"
eal_args = ["--no-pci", "--no-huge", "--no-shconf", "-m", "512", "-l", "$lcores", "--file-prefix", "${P}r", "--log-level", "lib.eal:notice"]
mbufs = 8191
idle = { mode = "sleep", after_empty_polls = 256, max_sleep_us = 200 }

[control]
socket = "$2"

[[port]]
name = "a"
device = "net_af_packet0,iface=ra,framecnt=2048,qpairs=$nq"
addresses = ["10.1.0.1/24"]

[[port]]
name = "b"
device = "net_af_packet1,iface=rb,framecnt=2048,qpairs=$nq"
addresses = ["10.2.0.1/24"]
CFG
}
