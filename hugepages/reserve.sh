#!/usr/bin/env bash
# Reserves hugepages now (run time) and mounts a hugetlbfs for their size.
#
#   sudo hugepages/reserve.sh [--size 2M|1G] [--node N] [--mount DIR | --no-mount] [PAGES]
#   sudo hugepages/reserve.sh --status            (same as hugepages/status.sh)
#
# PAGES is the number of pages of that size to have reserved afterwards (not added):
# 0 releases them. Defaults: 2M pages, 1024 of them (2 GiB); 1G: 4 (4 GiB).
# --node N reserves on NUMA node N only: put the pages on the node of the NICs the lcores
# serve (docs/operations.md). Without it the kernel spreads them over all nodes.
# The mount: 2M at /dev/hugepages, 1G at /dev/hugepages1G, each with its pagesize=
# option so EAL finds one mount per size; an existing mount is left alone.
#
# 1G pages reserved at run time need 1 GiB of contiguous free memory each: on a box
# that has been up a while the kernel may find fewer. The script then says how many it
# got and exits 2; reserve them at boot instead (kernel command line
# `hugepagesz=1G hugepages=N`, see docs/operations.md). Persistent set-up: the sysctl
# snippet aves-hugepages.conf (2M) and the mount unit dev-hugepages1G.mount.
#
# Exit codes: 0 reserved, 1 usage or environment error, 2 fewer pages than asked.
# Tests: AVES_SYSFS points at a fake /sys tree (tests/ops.sh).
set -euo pipefail
sysfs=${AVES_SYSFS:-/sys}
here=$(cd "$(dirname "$0")" && pwd)

usage() { sed -n '2,21s/^# \{0,1\}//p' "$0"; exit "${1:-1}"; }
die() { echo "reserve.sh: $*" >&2; exit 1; }

# kB per page for a size argument: 2M, 2048kB, 1G, 1048576kB (case-insensitive).
size_kb() {
  case "${1,,}" in
    2m | 2mb | 2048k | 2048kb) echo 2048 ;;
    1g | 1gb | 1024m | 1048576k | 1048576kb) echo 1048576 ;;
    *) return 1 ;;
  esac
}

# The sysfs directory holding nr_hugepages for a page size (kB) on a node ("" = all).
pages_dir() {
  local kb=$1 node=$2
  if [ -z "$node" ]; then
    echo "$sysfs/kernel/mm/hugepages/hugepages-${kb}kB"
  else
    echo "$sysfs/devices/system/node/node$node/hugepages/hugepages-${kb}kB"
  fi
}

size=2M node="" mount_dir="" do_mount=1 pages=""
while [ $# -gt 0 ]; do
  case "$1" in
    --status) exec "$here/status.sh" ;;
    --size) size=${2:?--size needs 2M or 1G}; shift 2 ;;
    --node) node=${2:?--node needs a number}; shift 2 ;;
    --mount) mount_dir=${2:?--mount needs a directory}; shift 2 ;;
    --no-mount) do_mount=0; shift ;;
    -h | --help) usage 0 ;;
    -*) echo "reserve.sh: unknown option $1" >&2; usage ;;
    *) [ -z "$pages" ] || usage; pages=$1; shift ;;
  esac
done
kb=$(size_kb "$size") || die "page size '$size' is not 2M or 1G"
if [ -z "$pages" ]; then
  if [ "$kb" = 2048 ]; then pages=1024; else pages=4; fi
fi
[[ "$pages" =~ ^[0-9]+$ ]] || die "PAGES must be a whole number, not '$pages'"
[ -z "$node" ] || [[ "$node" =~ ^[0-9]+$ ]] || die "--node must be a number, not '$node'"
if [ -z "$mount_dir" ]; then
  if [ "$kb" = 2048 ]; then mount_dir=/dev/hugepages; else mount_dir=/dev/hugepages1G; fi
fi
label=$([ "$kb" = 2048 ] && echo 2M || echo 1G)

dir=$(pages_dir "$kb" "$node")
if [ ! -d "$dir" ]; then
  if [ -n "$node" ] && [ ! -d "$sysfs/devices/system/node/node$node" ]; then
    die "no NUMA node $node (nodes: $(cd "$sysfs/devices/system/node" && echo node[0-9]*))"
  fi
  die "this kernel or CPU has no $label hugepages ($dir missing; 1G needs the pdpe1gb CPU flag)"
fi
[ -w "$dir/nr_hugepages" ] || die "cannot write $dir/nr_hugepages: run as root"

echo "$pages" >"$dir/nr_hugepages"
got=$(cat "$dir/nr_hugepages")
where=$([ -n "$node" ] && echo "node $node" || echo "all nodes")
echo "$label hugepages reserved on $where: $got (asked $pages)"

if [ "$do_mount" = 1 ] && [ "$pages" -gt 0 ]; then
  if mountpoint -q "$mount_dir"; then
    echo "$mount_dir already mounted"
  else
    mkdir -p "$mount_dir"
    mount -t hugetlbfs -o "pagesize=$label" nodev "$mount_dir"
    echo "mounted hugetlbfs pagesize=$label at $mount_dir"
  fi
fi

if [ "$got" -lt "$pages" ]; then
  echo "reserve.sh: only $got of $pages $label pages: memory is too fragmented or too" \
    "small; reserve them at boot (docs/operations.md, Hugepages)" >&2
  exit 2
fi
