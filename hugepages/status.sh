#!/usr/bin/env bash
# Prints the hugepages of every size the kernel offers — reserved (total), free,
# promised to mappings not yet faulted in (resv), surplus — per NUMA node, and the
# hugetlbfs mounts with their page size. Warns about a size that has pages but no mount
# (EAL cannot use those pages) and a mount whose size has no pages.
#
#   hugepages/status.sh            (no root needed)
#
# Example:
#   size      total   free   resv  surplus  per node (total/free)
#   2M         1024    512      0        0  node0=512/256 node1=512/256
#   1G            4      4      0        0  node0=4/4
#   hugetlbfs mounts:
#     /dev/hugepages  pagesize=2M
#     /dev/hugepages1G  pagesize=1G
#
# Tests: AVES_SYSFS points at a fake /sys tree, AVES_MOUNTS at a fake /proc/mounts.
set -euo pipefail
sysfs=${AVES_SYSFS:-/sys}
mounts=${AVES_MOUNTS:-/proc/mounts}

# "hugepages-2048kB" -> 2M, "hugepages-1048576kB" -> 1G.
label_of() {
  local kb=${1#hugepages-}
  kb=${kb%kB}
  if [ $((kb % 1048576)) = 0 ]; then echo "$((kb / 1048576))G"; else echo "$((kb / 1024))M"; fi
}
# hugetlbfs mount option pagesize=1024M means 1G.
norm_size() {
  case "$1" in
    *K | *k) label_of "hugepages-${1%[Kk]}kB" ;;
    *M) label_of "hugepages-$((${1%M} * 1024))kB" ;;
    *G) echo "$1" ;;
    *) echo "$1" ;;
  esac
}

top=$sysfs/kernel/mm/hugepages
[ -d "$top" ] || { echo "status.sh: no hugepage support ($top missing)" >&2; exit 1; }
sizes=()
printf '%-8s %6s %6s %6s %8s  %s\n' size total free resv surplus "per node (total/free)"
mapfile -t dirs < <(printf '%s\n' "$top"/hugepages-*kB | sort -V)
for d in "${dirs[@]}"; do
  [ -d "$d" ] || continue
  name=$(basename "$d")
  label=$(label_of "$name")
  per_node=""
  for n in "$sysfs"/devices/system/node/node[0-9]*; do
    [ -d "$n/hugepages/$name" ] || continue
    per_node+="$(basename "$n")=$(cat "$n/hugepages/$name/nr_hugepages")/$(cat "$n/hugepages/$name/free_hugepages") "
  done
  total=$(cat "$d/nr_hugepages")
  printf '%-8s %6s %6s %6s %8s  %s\n' "$label" "$total" "$(cat "$d/free_hugepages")" \
    "$(cat "$d/resv_hugepages")" "$(cat "$d/surplus_hugepages")" "${per_node% }"
  if [ "$total" -gt 0 ]; then sizes+=("$label"); fi
done

echo "hugetlbfs mounts:"
mounted=()
while read -r _ dir fstype opts _; do
  [ "$fstype" = hugetlbfs ] || continue
  ps=$(tr ',' '\n' <<<"$opts" | sed -n 's/^pagesize=//p')
  ps=$(norm_size "${ps:-default}")
  echo "  $dir  pagesize=$ps"
  mounted+=("$ps")
done <"$mounts"
[ ${#mounted[@]} -gt 0 ] || echo "  (none)"

for s in ${sizes[@]+"${sizes[@]}"}; do
  if ! printf '%s\n' ${mounted[@]+"${mounted[@]}"} | grep -qx "$s"; then
    echo "warning: $s pages are reserved but no hugetlbfs is mounted for them" \
      "(hugepages/reserve.sh --size $s mounts one)"
  fi
done
for m in ${mounted[@]+"${mounted[@]}"}; do
  if ! printf '%s\n' ${sizes[@]+"${sizes[@]}"} | grep -qx "$m"; then
    echo "note: a hugetlbfs for $m pages is mounted but no $m pages are reserved"
  fi
done
