#!/usr/bin/env bash
# Builds the aves container image from the repository's Dockerfile and checks it:
#   1. hadolint passes on the Dockerfile;
#   2. a Debian 12 base image is made locally with debootstrap (no registry here),
#      its root filesystem cached in /var/cache/aves-base;
#   3. podman builds the image (both stages: rustup + cargo, then the runtime);
#   4. in the image: `aves --version` names the workspace version, every example config
#      passes check-config as the unprivileged user, a broken one fails;
#   5. the engine runs in the image with the documented flags (privileged, host network,
#      on net_null ports without hugepages) and `aves ctl stats` inside it shows packets
#      polled, proving the DPDK libraries and drivers are all there; SIGTERM stops it.
# Run as root:  sudo scripts/container-test.sh   (scripts/test.sh calls it)
# Env: AVES_BASE_REFRESH=1 rebuilds the base image; AVES_IMAGE names the image to build.
# Time (2 vCPUs): ~6 min from nothing, ~2 min with warm cargo caches, seconds when no
# source changed (decision 0008).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CONTAINERS_CONF="$root/scripts/containers.conf"
export PATH="/opt/aves-hadolint/bin:$PATH"
base=localhost/aves-base:bookworm
image=${AVES_IMAGE:-localhost/aves:test}
cache=/var/cache/aves-base
tarball=$cache/bookworm-minbase.tar
mirror=http://deb.debian.org
name=aves-ctest-$$
fail() { echo "container-test: FAIL: $*" >&2; exit 1; }
step() { echo "container-test: $* ($((SECONDS))s)"; }
[ "$(id -u)" = 0 ] || fail "run as root"

step "hadolint Dockerfile"
hadolint Dockerfile || fail "hadolint found problems in Dockerfile"

# The base image: the same Debian release and apt sources as debian:bookworm-slim.
make_base_tarball() {
  local dir
  dir=$(mktemp -d /var/tmp/aves-base.XXXXXX)
  step "debootstrap bookworm (minbase) into $dir"
  debootstrap --variant=minbase bookworm "$dir" "$mirror/debian" >"$dir.log" 2>&1 ||
    { tail -20 "$dir.log" >&2; rm -rf "$dir" "$dir.log"; fail "debootstrap failed"; }
  cat >"$dir/etc/apt/sources.list" <<EOF
deb $mirror/debian bookworm main
deb $mirror/debian bookworm-updates main
deb $mirror/debian-security bookworm-security main
EOF
  # What the slim images leave out: package caches and lists (the Dockerfile runs
  # apt-get update itself), documentation and locales.
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
    "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/locale/*
  mkdir -p "$cache"
  tar --numeric-owner -C "$dir" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$dir" "$dir.log"
}
if [ "${AVES_BASE_REFRESH:-0}" = 1 ]; then
  rm -f "$tarball"
  podman rmi -f "$base" >/dev/null 2>&1 || true
fi
if ! podman image exists "$base"; then
  [ -s "$tarball" ] || make_base_tarball
  step "import $tarball as $base"
  podman import --quiet "$tarball" "$base" >/dev/null || fail "podman import failed"
fi

step "podman build $image"
build_start=$SECONDS
# The host's CA bundle goes in as the optional `ca-bundle` secret, so a TLS-inspecting
# proxy the host trusts (CI networks) is trusted by rustup and cargo in the build too.
secret=()
[ -s /etc/ssl/certs/ca-certificates.crt ] &&
  secret=(--secret "id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt")
podman build --quiet --network host --build-arg BASE="$base" "${secret[@]}" \
  -t "$image" -f Dockerfile . >/dev/null || fail "podman build failed"
echo "container-test: image built in $((SECONDS - build_start))s," \
  "$(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"

step "aves --version"
want="aves $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
got=$(podman run --rm "$image" --version) || fail "aves --version exited non-zero"
[ "$got" = "$want" ] || fail "aves --version printed '$got', expected '$want'"
echo "  $got"

step "check-config on every example, as the unprivileged user"
for f in examples/*.toml; do
  out=$(podman run --rm --user aves "$image" check-config "/$f") ||
    fail "check-config /$f failed in the image: $out"
  echo "  $out"
done
out=$(podman run --rm --user aves "$image" check-config /examples/gateway.toml)
[[ "$out" == "/examples/gateway.toml: ok (Gateway role"* ]] ||
  fail "unexpected check-config output: $out"
if podman run --rm --user aves "$image" check-config /etc/passwd >/dev/null 2>&1; then
  fail "check-config accepted /etc/passwd"
fi

step "aves run in the container (privileged, host network, net_null ports)"
work=$(mktemp -d /var/tmp/aves-ctest.XXXXXX)
cleanup() {
  podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cat >"$work/router.toml" <<'EOF'
# Two null ports: RX returns empty frames as fast as it is polled, so counters move
# without any network. Sleep mode keeps the poll loop gentle.
[engine]
role = "router"
eal_args = ["--no-pci", "--no-huge", "--no-shconf", "-m", "512", "-l", "0", "--file-prefix", "aves-ctest"]
idle = { mode = "sleep", after_empty_polls = 128, max_sleep_us = 500 }

[control]
socket = "/run/aves/aves.sock"

[[port]]
name = "a"
device = "net_null0"
addresses = ["10.99.1.1/24"]

[[port]]
name = "b"
device = "net_null1"
addresses = ["10.99.2.1/24"]
EOF
# The documented run line, with the config directory of this test.
podman run -d --name "$name" --privileged --network host -v "$work":/etc/aves:ro \
  "$image" run --config /etc/aves/router.toml >/dev/null || fail "podman run -d failed"
stats=""
for _ in $(seq 1 60); do
  if stats=$(podman exec "$name" aves ctl stats 2>/dev/null) &&
    [[ "$stats" =~ port\ a\ rx_packets=[1-9] ]]; then
    break
  fi
  [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] ||
    { podman logs "$name" >&2; fail "aves run exited in the container"; }
  sleep 0.5
done
[[ "$stats" =~ port\ a\ rx_packets=[1-9] ]] ||
  { podman logs "$name" >&2; fail "no packets polled on port a; stats: $stats"; }
echo "$stats" | sed -n 's/^/  /; /^  port/p'
podman stop -t 10 "$name" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || { podman logs "$name" >&2; fail "aves run exited with $code on SIGTERM"; }
logs=$(podman logs "$name" 2>&1)
[[ "$logs" == *"== aves totals =="*"port a rx_packets="[1-9]* ]] ||
  { echo "$logs" >&2; fail "no totals printed on stop"; }

step "all container checks passed"
