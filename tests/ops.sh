#!/usr/bin/env bash
# Tests of the operations kit: hugepages/ (reserve.sh, status.sh, the sysctl snippet and
# the 1 GB mount unit), scripts/devbind.sh (its safety check against fake `ip` output)
# and deploy/aves.service (systemd-analyze verify). Scripts are checked with shellcheck.
#
# The hugepage tests change the machine's reservation for a few seconds and put it back:
# 128 extra 2 MB pages, which `aves run` then uses through a private hugetlbfs mount
# (no --no-huge), and one 1 GB page.
#   sudo tests/ops.sh        (scripts/test.sh runs it after `cargo build --release`)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root" || exit 1
# shellcheck source=tests/e2e/lib.sh
. "$here/e2e/lib.sh"
need_root tests/ops.sh
AVES=${AVES_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/aves}
[ -x "$AVES" ] || { echo "tests/ops.sh: $AVES missing: cargo build --release -p aves" >&2; exit 1; }
work=$(mktemp -d /tmp/aves-ops-test.XXXXXX)
# The reservation before the test, put back on exit whatever happens.
hp=/sys/kernel/mm/hugepages
saved_2m=$(cat $hp/hugepages-2048kB/nr_hugepages)
saved_1g=$(cat $hp/hugepages-1048576kB/nr_hugepages 2>/dev/null || echo "")
restore_hugepages() {
  echo "$saved_2m" >$hp/hugepages-2048kB/nr_hugepages
  if [ -n "$saved_1g" ]; then echo "$saved_1g" >$hp/hugepages-1048576kB/nr_hugepages; fi
}
aves_pid=""
cleanup() {
  [ -n "$aves_pid" ] && kill "$aves_pid" 2>/dev/null && wait "$aves_pid" 2>/dev/null
  for m in "$work"/mnt-*; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
  restore_hugepages
  rm -rf "$work"
}
trap cleanup EXIT
# check_quiet NAME CMD...: passes when CMD exits 0 and prints nothing (no warnings).
check_quiet() {
  local name=$1 out rc
  shift
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" = 0 ] && [ -z "$out" ]; then pass "$name"; else
    fail "$name" "rc=$rc: $(echo "$out" | tail -5 | tr '\n' ' ')"
  fi
}

echo "== shellcheck"
# The e2e and test scripts too (settings in .shellcheckrc; sourced files are named by
# "# shellcheck source=" lines, relative to the root).
check "shellcheck of the ops and test scripts" shellcheck -x hugepages/reserve.sh hugepages/status.sh \
  scripts/*.sh tests/ops.sh tests/soak.sh tests/forged_flood.sh tests/e2e/*.sh

# ---------------------------------------------------------------------------------------
echo "== hugepages: status.sh and reserve.sh on a fake sysfs (two nodes, both sizes)"
fake=$work/sys
# fake_size NODEDIR|GLOBALDIR SIZE_KB TOTAL FREE
fake_size() {
  mkdir -p "$1/hugepages-$2kB"
  echo "$3" >"$1/hugepages-$2kB/nr_hugepages"
  echo "$4" >"$1/hugepages-$2kB/free_hugepages"
  echo 0 >"$1/hugepages-$2kB/resv_hugepages"
  echo 0 >"$1/hugepages-$2kB/surplus_hugepages"
}
fake_size "$fake/kernel/mm/hugepages" 2048 1024 512
fake_size "$fake/kernel/mm/hugepages" 1048576 4 3
for n in 0 1; do
  fake_size "$fake/devices/system/node/node$n/hugepages" 2048 512 256
  fake_size "$fake/devices/system/node/node$n/hugepages" 1048576 2 "$((1 + n))"
done
cat >"$work/mounts" <<'EOF'
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0
tmpfs /run tmpfs rw,nosuid,nodev,mode=755 0 0
EOF
st=$(AVES_SYSFS=$fake AVES_MOUNTS=$work/mounts hugepages/status.sh)
printf '     %s\n' "${st//$'\n'/$'\n'     }"
check "status: 2M line has totals and both nodes" \
  grep -Eq '^2M +1024 +512 +0 +0  node0=512/256 node1=512/256$' <<<"$st"
check "status: 1G line has totals and both nodes" \
  grep -Eq '^1G +4 +3 +0 +0  node0=2/1 node1=2/2$' <<<"$st"
check "status: the 2M mount is listed" grep -q '^  /dev/hugepages  pagesize=2M$' <<<"$st"
check "status: warns that 1G pages have no mount" \
  grep -q '^warning: 1G pages are reserved but no hugetlbfs is mounted' <<<"$st"
echo "hugetlbfs /dev/hugepages1G hugetlbfs rw,relatime,pagesize=1024M 0 0" >>"$work/mounts"
st=$(AVES_SYSFS=$fake AVES_MOUNTS=$work/mounts hugepages/status.sh)
check "status: pagesize=1024M is shown as 1G" grep -q '^  /dev/hugepages1G  pagesize=1G$' <<<"$st"
check "status: no warning once both sizes are mounted" bash -c "! grep -q warning <<<'$st'"

out=$(AVES_SYSFS=$fake hugepages/reserve.sh --size 1G --node 1 --no-mount 3 2>&1)
check_eq "reserve --node 1: node1's 1G count" 3 \
  "$(cat "$fake/devices/system/node/node1/hugepages/hugepages-1048576kB/nr_hugepages")"
check_eq "reserve --node 1: node0 untouched" 2 \
  "$(cat "$fake/devices/system/node/node0/hugepages/hugepages-1048576kB/nr_hugepages")"
check_eq "reserve --node 1: global count untouched" 4 \
  "$(cat "$fake/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages")"
check "reserve --node 1: says what it did" grep -q "1G hugepages reserved on node 1: 3" <<<"$out"
AVES_SYSFS=$fake hugepages/reserve.sh --no-mount 2048 >/dev/null 2>&1
check_eq "reserve (defaults to 2M, all nodes)" 2048 \
  "$(cat "$fake/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")"
# expect_fail NAME PATTERN ARGS...: reserve.sh exits 1 and says PATTERN.
expect_fail() {
  local name=$1 pattern=$2 out rc
  shift 2
  out=$(AVES_SYSFS=$fake hugepages/reserve.sh --no-mount "$@" 2>&1)
  rc=$?
  if [ "$rc" = 1 ] && grep -q "$pattern" <<<"$out"; then pass "$name"; else
    fail "$name" "rc=$rc: $out"
  fi
}
expect_fail "reserve refuses a 4M page size" "is not 2M or 1G" --size 4M 8
expect_fail "reserve refuses an unknown node" "no NUMA node 7 (nodes: node0 node1)" --node 7 8
expect_fail "reserve refuses a non-number" "whole number" lots
rm -r "$fake/kernel/mm/hugepages/hugepages-1048576kB"
expect_fail "reserve explains a missing 1G size" "has no 1G hugepages" --size 1G 1

# ---------------------------------------------------------------------------------------
echo "== hugepages: the persistent configuration files"
snippet=hugepages/aves-hugepages.conf
bad=""
while IFS= read -r line; do
  [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
  if [[ "$line" =~ ^([a-z0-9_.]+)\ =\ ([0-9]+)$ ]]; then
    [ -e "/proc/sys/${BASH_REMATCH[1]//.//}" ] || bad+="no sysctl ${BASH_REMATCH[1]}; "
  else
    bad+="not 'key = number': $line; "
  fi
done <"$snippet"
check_eq "sysctl snippet: every line is a known key = number" "" "$bad"
check_eq "sysctl snippet reserves 1024 default-size pages" "vm.nr_hugepages = 1024" \
  "$(grep -v '^#' "$snippet")"
check_quiet "systemd-analyze verify dev-hugepages1G.mount" \
  systemd-analyze verify "$root/hugepages/dev-hugepages1G.mount"

# ---------------------------------------------------------------------------------------
echo "== hugepages: real reservation, mount and use by aves run"
want=$((saved_2m + 128))
check "reserve.sh --size 2M $want with a private mount" \
  hugepages/reserve.sh --size 2M --mount "$work/mnt-2m" "$want"
st=$(hugepages/status.sh)
check "status shows the 2M pages" grep -Eq "^2M +$want " <<<"$st"
check "status shows the private 2M mount" grep -q "^  $work/mnt-2m  pagesize=2M$" <<<"$st"

cat >"$work/hp.toml" <<EOF
# Hugepage-backed EAL memory from the test's mount; two null ports so counters move.
[engine]
role = "router"
eal_args = ["--no-pci", "--huge-dir", "$work/mnt-2m", "--file-prefix", "aves-ops-hp", "-l", "0"]
[control]
socket = "$work/aves.sock"
[[port]]
name = "a"
device = "net_null0"
addresses = ["10.99.1.1/24"]
[[port]]
name = "b"
device = "net_null1"
addresses = ["10.99.2.1/24"]
EOF
AVES_LOG=warn "$AVES" run --config "$work/hp.toml" >"$work/hp.log" 2>&1 &
aves_pid=$!
stats=""
for _ in $(seq 1 40); do
  stats=$("$AVES" ctl --socket "$work/aves.sock" stats 2>/dev/null) && break
  sleep 0.25
done
check "aves run on hugepages answers ctl stats" grep -Eq '^port a rx_packets=[1-9]' <<<"$stats"
free_now=$(cat $hp/hugepages-2048kB/free_hugepages)
check_ge "aves run holds 2M pages (pages in use)" 1 $((want - free_now))
check "EAL's page files are in the private mount" \
  bash -c "ls '$work/mnt-2m' | grep -q '^aves-ops-hpmap_'"
kill -TERM "$aves_pid"
wait "$aves_pid"
check_eq "aves run exits 0 on SIGTERM" 0 $?
aves_pid=""
rm -f "$work/mnt-2m"/*
umount "$work/mnt-2m"
check "reserve.sh gives the 2M pages back" hugepages/reserve.sh --size 2M --no-mount "$saved_2m"

if [ -n "$saved_1g" ]; then
  want=$((saved_1g + 1))
  check "reserve.sh --size 1G $want (one more 1 GB page, private mount)" \
    hugepages/reserve.sh --size 1G --mount "$work/mnt-1g" "$want"
  st=$(hugepages/status.sh)
  check "status shows the 1G page" grep -Eq "^1G +$want " <<<"$st"
  check "status shows the private 1G mount" grep -q "^  $work/mnt-1g  pagesize=1G$" <<<"$st"
  umount "$work/mnt-1g"
  check "reserve.sh gives the 1G page back" hugepages/reserve.sh --size 1G --no-mount "$saved_1g"
else
  fail "1G hugepages" "this machine offers no 1 GB pages (CPU flag pdpe1gb)"
fi

# ---------------------------------------------------------------------------------------
echo "== scripts/devbind.sh: the safety check on fake ip/ss output and a fake sysfs"
# Its functions, in a subshell per case so a refusal (exit 3) does not end this test.
devbind() { (. scripts/devbind.sh && "$@"); }
check_eq "route_devs: plain default route" eth0 \
  "$(devbind route_devs <<<'default via 192.0.2.1 dev eth0 proto dhcp src 192.0.2.5 metric 100')"
multipath='default proto static metric 1024
	nexthop via 10.0.0.1 dev eno1 weight 1
	nexthop via 10.0.1.1 dev eno2 weight 1'
check_eq "route_devs: both devices of a multipath route" "eno1 eno2" \
  "$(devbind route_devs <<<"$multipath" | tr '\n' ' ' | sed 's/ $//')"
check_eq "route_devs: ip route get output" bond0 \
  "$(devbind route_devs <<<'198.51.100.7 via 10.0.0.1 dev bond0 src 10.0.0.5 uid 0
    cache')"
check_eq "route_devs: no default route" "" "$(devbind route_devs <<<'')"
ss_out='0      0      10.0.0.5:22       198.51.100.7:51234  users:(("sshd",pid=811,fd=4),("sshd",pid=790,fd=4))
0      0      10.0.0.5:443      203.0.113.9:40000   users:(("nginx",pid=12,fd=9))
0      0      [2001:db8::5]:22  [2001:db8::9]:50000 users:(("sshd-session",pid=900,fd=4))
0      0      [::ffff:10.0.0.5]:2222 [::ffff:192.0.2.77]:41000 users:(("sshd",pid=901,fd=4))'
check_eq "ssh_peers: sshd sessions only, v4, v6 and v4-mapped" \
  "192.0.2.77 198.51.100.7 2001:db8::9" \
  "$(devbind ssh_peers <<<"$ss_out" | tr '\n' ' ' | sed 's/ $//')"
check_eq "ssh_connection_peer" 198.51.100.7 \
  "$(devbind ssh_connection_peer '198.51.100.7 51234 10.0.0.5 22')"

# A fake host: eno1 (PCI 0000:03:00.0) under bond0 under br0, which has the default
# route; eno2 (0000:03:00.1) under VLAN eno2.100, which carries an SSH session; eno3
# (0000:04:00.0, a virtio-style NIC one level below its PCI function) and eno4
# (0000:04:00.1) carry nothing.
fs=$work/devsys
mkdir -p "$fs/class/net" "$fs/kernel/iommu_groups/7" "$fs/bus/pci/drivers/vfio-pci" \
  "$fs/bus/pci/devices"
nic() { # nic NAME PCI [SUBDIR]
  local d="$fs/devices/pci0000:00/$2${3:+/$3}"
  mkdir -p "$d/net/$1" "$fs/class/net/$1"
  ln -sfn "$fs/devices/pci0000:00/$2" "$fs/bus/pci/devices/$2"
  ln -sfn "$d" "$fs/class/net/$1/device"
}
nic eno1 0000:03:00.0
nic eno2 0000:03:00.1
nic eno3 0000:04:00.0 virtio3
nic eno4 0000:04:00.1
mkdir -p "$fs/class/net/bond0" "$fs/class/net/br0" "$fs/class/net/eno2.100"
ln -sfn "$fs/class/net/eno1" "$fs/class/net/bond0/lower_eno1"
ln -sfn "$fs/class/net/bond0" "$fs/class/net/br0/lower_bond0"
ln -sfn "$fs/class/net/eno2" "$fs/class/net/eno2.100/lower_eno2"
# shellcheck disable=SC2016 # the fake scripts expand $* and $AVES_FAKE_LOG when they run
printf '%s\n' '#!/usr/bin/env bash' '# Fake ip: canned routes; records link changes.' \
  'case "$*" in' \
  '  "-4 route show default") echo "default via 192.0.2.1 dev br0 proto static" ;;' \
  '  "-6 route show default") echo "default via fe80::1 dev br0 proto ra metric 1024" ;;' \
  '  "route get 198.51.100.7") echo "198.51.100.7 via 10.9.0.1 dev eno2.100 src 10.9.0.5" ;;' \
  '  "route get 192.0.2.200") echo "192.0.2.200 dev br0 src 192.0.2.5 uid 0" ;;' \
  '  "link set dev "*) echo "ip $*" >>"$AVES_FAKE_LOG" ;;' \
  '  *) echo "fake ip: unexpected: $*" >&2; exit 1 ;;' \
  'esac' >"$work/ip"
printf '%s\n' '#!/usr/bin/env bash' \
  "echo '0 0 10.9.0.5:22 198.51.100.7:51234 users:((\"sshd\",pid=811,fd=4))'" >"$work/ss"
# shellcheck disable=SC2016
printf '%s\n' '#!/usr/bin/env bash' 'echo "dpdk-devbind.py $*" >>"$AVES_FAKE_LOG"' \
  >"$work/devbind-py"
chmod +x "$work/ip" "$work/ss" "$work/devbind-py"
export AVES_SYSFS=$fs AVES_IP=$work/ip AVES_SS=$work/ss AVES_DEVBIND=$work/devbind-py
export AVES_FAKE_LOG=$work/fake.log
prot=$(SSH_CONNECTION='' devbind protected_devs)
check_eq "protected_devs: default route's bridge, bond, NIC; SSH route's VLAN and NIC" \
  "bond0 br0 eno1 eno2 eno2.100" "$(cut -f1 <<<"$prot" | sort -u | tr '\n' ' ' | sed 's/ $//')"
check "protected_devs: names the reason" \
  grep -qx "eno2	the SSH session from 198.51.100.7" <<<"$prot"
prot=$(SSH_CONNECTION="192.0.2.200 4000 192.0.2.5 22" devbind protected_devs)
check "protected_devs: \$SSH_CONNECTION's peer counts too" \
  grep -qx "eno1	the SSH session from 192.0.2.200" <<<"$prot"
check_eq "pci_of_iface: a PCI NIC" 0000:03:00.0 "$(devbind pci_of_iface eno1)"
check_eq "pci_of_iface: a NIC below its PCI function (virtio)" 0000:04:00.0 \
  "$(devbind pci_of_iface eno3)"
check_eq "pci_of_iface: a bond has none" "" "$(devbind pci_of_iface bond0)"
check_eq "ifaces_of_pci (virtio layout)" eno3 "$(devbind ifaces_of_pci 0000:04:00.0)"
check_eq "normalise_pci adds the domain" 0000:03:00.1 "$(devbind normalise_pci 03:00.1)"
check "normalise_pci rejects an interface name" \
  bash -c "! (. scripts/devbind.sh && normalise_pci eno1)"

# expect_devbind NAME RC PATTERN ARGS...: the whole script exits RC saying PATTERN.
expect_devbind() {
  local name=$1 want_rc=$2 pattern=$3 out rc
  shift 3
  : >"$AVES_FAKE_LOG"
  out=$(SSH_CONNECTION='' scripts/devbind.sh "$@" 2>&1)
  rc=$?
  if [ "$rc" = "$want_rc" ] && grep -q -- "$pattern" <<<"$out"; then pass "$name"; else
    fail "$name" "rc=$rc (want $want_rc): $out"
  fi
}
expect_devbind "refuses the default route's NIC by name" 3 \
  "eno1 carries the IPv4 default route" --dry-run bind eno1
expect_devbind "refuses the default route's NIC by PCI address" 3 \
  "eno1 carries the IPv4 default route" --dry-run bind 03:00.0
expect_devbind "refuses the SSH session's NIC" 3 \
  "eno2 carries the SSH session from 198.51.100.7" --dry-run bind 0000:03:00.1
expect_devbind "refuses to unbind the SSH session's NIC" 3 \
  "eno2 carries the SSH session" --dry-run unbind 0000:03:00.1 ixgbe
expect_devbind "refuses the bridge itself" 3 "br0 carries" --dry-run bind br0
expect_devbind "dry run on a free NIC says what it would do" 0 \
  "would run: $work/devbind-py --bind=vfio-pci 0000:04:00.0" --dry-run bind eno3
check_eq "dry run changed nothing" "" "$(cat "$AVES_FAKE_LOG")"
expect_devbind "binds a free NIC" 0 "0000:04:00.1: interfaces eno4; binding to vfio-pci" \
  bind eno4
check_eq "bind: link down, then dpdk-devbind.py" \
  "ip link set dev eno4 down|dpdk-devbind.py --bind=vfio-pci 0000:04:00.1" \
  "$(tr '\n' '|' <"$AVES_FAKE_LOG" | sed 's/|$//')"
expect_devbind "unbind back to a kernel driver" 0 "" unbind 0000:04:00.1 ixgbe
check_eq "unbind runs dpdk-devbind.py --bind=ixgbe" \
  "dpdk-devbind.py --bind=ixgbe 0000:04:00.1" "$(cat "$AVES_FAKE_LOG")"
rmdir "$fs/kernel/iommu_groups/7"
expect_devbind "bind explains a missing IOMMU" 1 "no IOMMU groups" --dry-run bind eno4
expect_devbind "unknown interface" 1 "no interface or PCI address 'eno9'" --dry-run bind eno9
printf '%s\n' '#!/usr/bin/env bash' 'exit 1' >"$work/ip"
expect_devbind "fails closed when the routes cannot be read" 1 "cannot read the IPv4 routes" \
  --dry-run bind eno4
unset AVES_SYSFS AVES_IP AVES_SS AVES_DEVBIND AVES_FAKE_LOG

echo "== scripts/devbind.sh on this machine: the default route's interface is refused"
gw_dev=$(ip -4 route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
if [ -n "$gw_dev" ]; then
  out=$(scripts/devbind.sh --dry-run bind "$gw_dev" 2>&1)
  check_eq "devbind.sh --dry-run bind $gw_dev exits 3" 3 "$?"
  check "it says why" grep -q "$gw_dev carries the IPv4 default route" <<<"$out"
else
  fail "default route" "this machine has no IPv4 default route to test against"
fi

# ---------------------------------------------------------------------------------------
echo "== deploy/aves.service"
unit=deploy/aves.service
# Verified with the built binary in place of /usr/local/bin/aves (verify checks that
# the commands exist).
mkdir -p "$work/unit"
sed "s|/usr/local/bin/aves|$AVES|g" "$unit" >"$work/unit/aves.service"
check_quiet "systemd-analyze verify aves.service" systemd-analyze verify "$work/unit/aves.service"
# directive NAME VALUE: the unit sets NAME=VALUE (a line of its own).
directive() { check "aves.service: $1=$2" grep -qxF "$1=$2" "$unit"; }
# shellcheck disable=SC2016 # the unit's own ${AVES_CONFIG}, expanded by systemd
directive ExecStartPre '/usr/local/bin/aves check-config ${AVES_CONFIG}'
# shellcheck disable=SC2016
directive ExecStart '/usr/local/bin/aves run --config ${AVES_CONFIG}'
directive Restart on-failure
directive LimitMEMLOCK infinity
directive Requires dev-hugepages.mount
directive After 'dev-hugepages.mount network-online.target'
directive RuntimeDirectory aves
# What ExecStartPre does for systemd: a valid config passes, a bad one stops the start.
cfg_line=$(sed -n 's/^Environment=AVES_CONFIG=//p' "$unit")
check_eq "aves.service: default config path" /etc/aves/aves.toml "$cfg_line"
pre=$(sed -n 's/^ExecStartPre=//p' "$unit" | sed "s|/usr/local/bin/aves|$AVES|")
check "ExecStartPre accepts examples/gateway.toml" env AVES_CONFIG=examples/gateway.toml \
  bash -c "${pre//\$\{AVES_CONFIG\}/\$AVES_CONFIG}"
sed 's/^udp_port = 4797/udp_port = "x"/' examples/gateway.toml >"$work/bad.toml"
check "ExecStartPre rejects a bad config" env AVES_CONFIG="$work/bad.toml" \
  bash -c "! ${pre//\$\{AVES_CONFIG\}/\$AVES_CONFIG}"

summary tests/ops.sh
