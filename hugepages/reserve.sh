#!/usr/bin/env bash
# Reserves 2 MB hugepages now and mounts hugetlbfs at /dev/hugepages.
#   sudo hugepages/reserve.sh [PAGES]     (default 1024 pages = 2 GiB)
#   sudo hugepages/reserve.sh --status
# Persistent (boot-time) set-up and 1 GB pages: docs/operations.md (coming with the
# operations work). The tests do not need hugepages: they run EAL with --no-huge.
set -euo pipefail
if [ "${1:-}" = "--status" ]; then
  grep -E 'HugePages_(Total|Free)|Hugepagesize' /proc/meminfo
  mount | grep hugetlbfs || echo "hugetlbfs not mounted"
  exit 0
fi
pages=${1:-1024}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
echo "$pages" > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
got=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
echo "2 MB hugepages reserved: $got (asked $pages)"
[ "$got" -ge "$pages" ] || { echo "warning: memory too fragmented for $pages pages" >&2; exit 2; }
