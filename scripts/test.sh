#!/usr/bin/env bash
# The test command: installs what it needs, then runs formatting, lint, unit and
# property tests (with the DNS server's dig test), the DPDK binding test, the end-to-end
# namespace tests, a short soak (tests/soak.sh) and a fuzz smoke test (scripts/fuzz-smoke.sh).
# Run as root on Debian 12:   sudo scripts/test.sh
# Fails (never skips) when root or DPDK is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh needs root (DPDK and network namespaces): sudo scripts/test.sh" >&2
  exit 1
fi
scripts/install-deps.sh
export CARGO_TERM_COLOR=never
jobs=${CARGO_BUILD_JOBS:-2}

echo "== cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
echo "== cargo clippy"
cargo clippy -j "$jobs" --workspace --all-targets -- -D warnings
echo "== cargo test (unit, property, DPDK bindings)"
cargo test -j "$jobs" --workspace
echo "== the benchmark-only feature (decision 0011): clippy and the auth tests"
cargo clippy -j "$jobs" -p aves --features bench-null-auth --all-targets -- -D warnings
cargo test -j "$jobs" -p aves-dataplane --no-default-features --features bench-null-auth --lib auth
echo "== cargo build --release"
cargo build -j "$jobs" --release -p aves

status=0
echo "== perf/pktgen/test.sh (pktgen scripts against a mock pktgen; the guide's configs)"
bash perf/pktgen/test.sh || status=1
echo "== tests/e2e/dns.sh (aves dns alone: no DPDK; dig)"
bash tests/e2e/dns.sh || status=1
echo "== tests/e2e/router.sh (one lcore)"
AVES_LCORES=1 bash tests/e2e/router.sh || status=1
echo "== tests/e2e/router.sh (two lcores, two queue pairs per port)"
AVES_LCORES=0,1 bash tests/e2e/router.sh || status=1
echo "== tests/e2e/aves.sh (waypoint and gateway, one lcore each, af_packet ports)"
AVES_W_LCORES=1 AVES_R_LCORES=1 AVES_E2E_PORTS=af_packet bash tests/e2e/aves.sh || status=1
echo "== tests/e2e/aves.sh (tap ports: fragments reach the engines, R reassembles)"
AVES_W_LCORES=1 AVES_R_LCORES=1 AVES_E2E_PORTS=tap bash tests/e2e/aves.sh || status=1
echo "== tests/e2e/aves.sh (gateway on two lcores: flows handed to their owner, decision 0006)"
AVES_W_LCORES=1 AVES_R_LCORES=0,1 AVES_E2E_PORTS=af_packet bash tests/e2e/aves.sh || status=1
echo "== tests/ops.sh (hugepages scripts with real pages, devbind safety check, systemd units)"
bash tests/ops.sh || status=1
echo "== scripts/container-test.sh (image build, aves in the container)"
bash scripts/container-test.sh || status=1
echo "== tests/e2e/metrics.sh (/metrics passes promtool; a Prometheus server scrapes aves)"
bash tests/e2e/metrics.sh || status=1
echo "== tests/e2e/setup.sh (control protocol: SETUP to a running waypoint, delayed binding)"
AVES_W_LCORES=1 AVES_R_LCORES=1 AVES_E2E_PORTS=af_packet bash tests/e2e/setup.sh || status=1
echo "== tests/e2e/setup.sh (waypoint on two lcores: claims and rejections relayed between them)"
AVES_W_LCORES=0,1 AVES_R_LCORES=1 AVES_E2E_PORTS=af_packet bash tests/e2e/setup.sh || status=1
echo "== tests/e2e/colocated.sh (the DNS server inside aves run with the waypoint: SETUPs in-process; ~8 s)"
AVES_W_LCORES=1 AVES_R_LCORES=1 AVES_E2E_PORTS=af_packet bash tests/e2e/colocated.sh || status=1
echo "== tests/e2e/resolver.sh (aves dns behind unbound: general mode, ECS, 20 initiators at once; ~25 s)"
AVES_W_LCORES=1 AVES_R_LCORES=1 AVES_E2E_PORTS=af_packet bash tests/e2e/resolver.sh || status=1
echo "== tests/e2e/register.sh (gateway REGISTER; its public address changes at run time; gateway on two lcores)"
AVES_W_LCORES=1 AVES_R_LCORES=0,1 AVES_E2E_PORTS=af_packet bash tests/e2e/register.sh || status=1
# The soak's short version: 60 s of flows created and expiring through W and R, then
# mbufs, RSS and table occupancy back to their baselines (1 min 46 s in all; the
# documented 600 s run is in docs/reliability.md).
echo "== tests/soak.sh (${SOAK_SECONDS:-60} s soak, leak audit)"
SOAK_SECONDS=${SOAK_SECONDS:-60} bash tests/soak.sh || status=1
echo "== tests/forged_flood.sh (forged tunnel packets at full rate: no state, every one counted; ~20 s)"
bash tests/forged_flood.sh || status=1
# Every fuzz target for FUZZ_SECONDS (30) from its committed corpus (seeds and the
# inputs of every bug fuzzing found). The ASan build takes about 5 min, installing
# cargo-fuzz on a fresh machine about 1 min, 11 targets x 30 s about 5.7 min: about
# 11.5 min in all (docs/reliability.md, "CI").
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
echo "== scripts/fuzz-smoke.sh (every fuzz target, ${FUZZ_SECONDS:-30} s each)"
FUZZ_SECONDS=${FUZZ_SECONDS:-30} bash scripts/fuzz-smoke.sh || status=1
exit $status
