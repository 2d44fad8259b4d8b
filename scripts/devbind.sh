#!/usr/bin/env bash
# Binds a NIC to vfio-pci for DPDK, or gives it back to a kernel driver, around
# dpdk-devbind.py — after a safety check: it refuses to touch a NIC that carries the
# default route (IPv4 or IPv6) or an SSH session to this host, directly or under a
# bridge, bond or VLAN, since unbinding it would cut the machine off.
#
#   sudo scripts/devbind.sh [--dry-run] bind IFACE|PCI [DRIVER]   (DRIVER: vfio-pci)
#   sudo scripts/devbind.sh [--dry-run] unbind PCI [KERNEL_DRIVER]
#   scripts/devbind.sh status
#
# bind: loads vfio-pci if needed, checks the IOMMU is on (IOMMU groups exist), takes the
# interface down and runs `dpdk-devbind.py --bind=DRIVER PCI`. unbind: rebinds to
# KERNEL_DRIVER (e.g. ixgbe, i40e, ice, mlx5_core) or, without one, leaves the device
# unbound. --dry-run prints what it would do and changes nothing (the safety check
# still runs). There is no override: to bind such a NIC anyway, move the route or the
# session off it first, or call dpdk-devbind.py yourself.
#
# Exit codes: 0 done, 1 usage or environment error, 3 refused by the safety check.
# Tests (tests/ops.sh) source this file and call its functions with fake `ip`/`ss`
# output; AVES_SYSFS, AVES_IP, AVES_SS and AVES_DEVBIND replace /sys and the commands.
set -euo pipefail

sysfs=${AVES_SYSFS:-/sys}
ip_cmd=${AVES_IP:-ip}
ss_cmd=${AVES_SS:-ss}
devbind_cmd=${AVES_DEVBIND:-dpdk-devbind.py}
dry_run=0

die() { echo "devbind.sh: $*" >&2; exit 1; }
refuse() { echo "devbind.sh: refusing: $*" >&2; exit 3; }

# Interface names after every `dev NAME` in `ip route` output (one route per line;
# multipath routes list `nexthop ... dev NAME` on continuation lines), one per line.
route_devs() {
  awk '{ for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1) }' | sort -u
}

# Peer addresses of established SSH sessions in `ss -Htnp state established` output:
# lines whose process is sshd; IPv6 peers lose their brackets and IPv4-mapped prefix.
ssh_peers() {
  awk '/"sshd/ { print $4 }' | sed -E 's/:[0-9]+$//; s/^\[//; s/\]$//; s/^::ffff://' | sort -u
}

# The client address of $SSH_CONNECTION ("client_ip client_port server_ip server_port").
ssh_connection_peer() {
  local conn=${1:-}
  [ -n "$conn" ] && echo "${conn%% *}"
  true
}

# An interface and, recursively, the devices under it (bridge ports, bond slaves, a
# VLAN's parent): sysfs links lower_NAME. One name per line.
with_lower_devs() {
  local dev=$1 link
  echo "$dev"
  for link in "$sysfs/class/net/$dev"/lower_*; do
    [ -e "$link" ] || [ -L "$link" ] || continue
    with_lower_devs "${link##*/lower_}"
  done
}

# Interfaces that must not be unbound, one per line with the reason after a tab:
# the default routes' devices and the devices routing to each SSH peer, with the
# devices under them. Fails closed: if the routes or sessions cannot be read, it dies.
protected_devs() {
  local r4 r6 sessions peers peer r direct="" dev why
  r4=$("$ip_cmd" -4 route show default) || die "cannot read the IPv4 routes ($ip_cmd failed)"
  r6=$("$ip_cmd" -6 route show default 2>/dev/null) || r6="" # IPv6 may be disabled
  sessions=$("$ss_cmd" -Htnp state established) || die "cannot list TCP sessions ($ss_cmd failed)"
  peers=$({
    ssh_connection_peer "${SSH_CONNECTION:-}"
    ssh_peers <<<"$sessions"
  } | sort -u)
  for dev in $(route_devs <<<"$r4"); do direct+="$dev	the IPv4 default route"$'\n'; done
  for dev in $(route_devs <<<"$r6"); do direct+="$dev	the IPv6 default route"$'\n'; done
  for peer in $peers; do
    r=$("$ip_cmd" route get "$peer") || die "cannot find the route to SSH peer $peer"
    for dev in $(route_devs <<<"$r"); do direct+="$dev	the SSH session from $peer"$'\n'; done
  done
  while IFS=$'\t' read -r dev why; do
    [ -n "$dev" ] || continue
    with_lower_devs "$dev" | sed "s/\$/	$why/"
  done <<<"$direct"
}

# The PCI address of a network interface (walks up from its device link: virtio NICs
# sit one level below their PCI function), or nothing.
pci_of_iface() {
  local d
  d=$(readlink -f "$sysfs/class/net/$1/device" 2>/dev/null) || return 0
  while [ -n "$d" ] && [ "$d" != / ]; do
    if [[ "${d##*/}" =~ ^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$ ]]; then
      echo "${d##*/}"
      return 0
    fi
    d=${d%/*}
  done
}

# The kernel network interfaces of a PCI function (none when a DPDK driver has it).
ifaces_of_pci() {
  local n
  for n in "$sysfs/bus/pci/devices/$1"/net/* "$sysfs/bus/pci/devices/$1"/*/net/*; do
    [ -e "$n" ] && echo "${n##*/}"
  done
  true
}

# 0000:03:00.0 from 03:00.0 or 0000:03:00.0; fails on anything else.
normalise_pci() {
  local a=${1,,}
  [[ "$a" =~ ^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$ ]] && a="0000:$a"
  [[ "$a" =~ ^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$ ]] || return 1
  echo "$a"
}

# safety_check IFACE...: exits 3 naming the first interface that is protected.
safety_check() {
  local protected dev hit
  protected=$(protected_devs) || exit $?
  for dev in "$@"; do
    hit=$(awk -F'\t' -v d="$dev" '$1 == d { print $2; exit }' <<<"$protected")
    [ -z "$hit" ] || refuse "$dev carries $hit; unbinding it would cut this host off"
  done
}

run() {
  if [ "$dry_run" = 1 ]; then echo "would run: $*"; else "$@"; fi
}

cmd_bind() {
  local target=${1:?bind needs an interface or PCI address} driver=${2:-vfio-pci}
  local pci ifaces
  if pci=$(normalise_pci "$target"); then
    [ -e "$sysfs/bus/pci/devices/$pci" ] || die "no PCI device $pci"
  else
    [ -e "$sysfs/class/net/$target" ] || die "no interface or PCI address '$target'"
    safety_check "$target"
    pci=$(pci_of_iface "$target")
    [ -n "$pci" ] || die "$target is not a PCI device (virtual interfaces need no binding)"
  fi
  mapfile -t ifaces < <(ifaces_of_pci "$pci")
  safety_check ${ifaces[@]+"${ifaces[@]}"}
  echo "$pci: interfaces ${ifaces[*]:-(none)}; binding to $driver"
  if [ "$driver" = vfio-pci ]; then
    if [ ! -d "$sysfs/bus/pci/drivers/vfio-pci" ]; then run modprobe vfio-pci; fi
    if [ -z "$(ls -A "$sysfs/kernel/iommu_groups" 2>/dev/null)" ]; then
      die "no IOMMU groups: enable the IOMMU (intel_iommu=on or amd_iommu=on, and VT-d/AMD-Vi" \
        "in the BIOS; docs/operations.md) or, without one, load vfio with" \
        "enable_unsafe_noiommu_mode=1"
    fi
  fi
  local i
  for i in ${ifaces[@]+"${ifaces[@]}"}; do run "$ip_cmd" link set dev "$i" down; done
  run "$devbind_cmd" --bind="$driver" "$pci"
}

cmd_unbind() {
  local pci kernel_driver=${2:-}
  pci=$(normalise_pci "${1:?unbind needs a PCI address}") || die "'$1' is not a PCI address"
  [ -e "$sysfs/bus/pci/devices/$pci" ] || die "no PCI device $pci"
  local ifaces
  mapfile -t ifaces < <(ifaces_of_pci "$pci")
  safety_check ${ifaces[@]+"${ifaces[@]}"}
  if [ -n "$kernel_driver" ]; then
    run "$devbind_cmd" --bind="$kernel_driver" "$pci"
  else
    run "$devbind_cmd" --unbind "$pci"
  fi
}

main() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --dry-run) dry_run=1; shift ;;
      -h | --help) sed -n '2,19s/^# \{0,1\}//p' "$0"; exit 0 ;;
      *) break ;;
    esac
  done
  case "${1:-}" in
    bind | unbind)
      [ "$dry_run" = 1 ] || [ "$(id -u)" = 0 ] || die "run as root (or with --dry-run)"
      ;;
  esac
  case "${1:-}" in
    bind) shift; cmd_bind "$@" ;;
    unbind) shift; cmd_unbind "$@" ;;
    status) "$devbind_cmd" --status-dev net ;;
    *) sed -n '7,9s/^# \{0,1\}//p' "$0" >&2; exit 1 ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
