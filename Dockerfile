# syntax=docker/dockerfile:1
# The aves image: a build stage compiles the `aves` binary against Debian's DPDK 22.11;
# the runtime stage holds DPDK's shared libraries and poll-mode drivers, the binary and
# the example configs. Why it is built this way: docs/decisions/0008-container.md.
#
#   podman build -t aves .                    (or docker build; podman needs no daemon)
#   podman run --rm aves check-config /examples/gateway.toml
#   podman run --privileged --network host -v /dev/hugepages:/dev/hugepages \
#       -v /etc/aves:/etc/aves aves run --config /etc/aves/gateway.toml
#
# BASE must be Debian 12 (bookworm) or an image made from it: DPDK 22.11 comes from its
# archive. scripts/container-test.sh builds with a local debootstrap image as BASE.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
# rustup-init is pinned by version and checksum; the toolchain by version. Debian 12's
# own rustc (1.63) is older than the workspace's rust-version (1.80).
ARG RUSTUP_VERSION=1.28.2
ARG RUSTUP_SHA256=20a06e644b0d9bd2fbdbfd52d42540bdde820ea7df86e92e533c073da0cdd43c
ARG RUST_VERSION=1.95.0
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH
# Versions follow the base image's Debian release; pinning exact Debian revisions would
# break the build at every point release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates curl build-essential pkg-config clang libclang-dev libdpdk-dev libipsec-mb-dev \
 && rm -rf /var/lib/apt/lists/*
# Optional build secret `ca-bundle`: a CA bundle to trust for HTTPS (rustup, crates.io),
# for builds behind a TLS-inspecting proxy:
#   --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt
RUN --mount=type=secret,id=ca-bundle,required=false \
    if [ -s /run/secrets/ca-bundle ]; then \
      export SSL_CERT_FILE=/run/secrets/ca-bundle CURL_CA_BUNDLE=/run/secrets/ca-bundle; \
    fi \
 && curl -sSf -o /tmp/rustup-init \
      "https://static.rust-lang.org/rustup/archive/${RUSTUP_VERSION}/x86_64-unknown-linux-gnu/rustup-init" \
 && echo "${RUSTUP_SHA256}  /tmp/rustup-init" > /tmp/rustup-init.sha256 \
 && sha256sum -c /tmp/rustup-init.sha256 \
 && chmod +x /tmp/rustup-init \
 && /tmp/rustup-init -y -q --no-modify-path --profile minimal --default-toolchain "${RUST_VERSION}" \
 && rm /tmp/rustup-init /tmp/rustup-init.sha256 \
 && rustc --version
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY ffi ffi
COPY dataplane dataplane
COPY control control
# The cache mounts keep crates and build output between local rebuilds; the binary is
# copied out of the target cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    --mount=type=secret,id=ca-bundle,required=false \
    if [ -s /run/secrets/ca-bundle ]; then export CARGO_HTTP_CAINFO=/run/secrets/ca-bundle; fi \
 && cargo build --release --locked -p aves \
 && install -m 0755 target/release/aves /usr/local/bin/aves

FROM ${BASE} AS runtime
# DPDK at run time: the shared libraries aves links against and the drivers EAL loads as
# plugins (bus, mempool and net PMDs: vfio/igb_uio NICs, af_packet, tap, memif, pcap...);
# `dpdk` adds dpdk-devbind.py and dpdk-hugepages.py. No compilers, no headers.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      dpdk librte-meta-bus librte-meta-mempool librte-meta-net libipsec-mb1 iproute2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin aves \
 && install -d -o aves -g aves -m 0750 /run/aves /etc/aves
COPY --from=build /usr/local/bin/aves /usr/bin/aves
COPY examples/ /examples/
# `aves run` needs root: EAL maps hugepages, opens vfio devices and raw sockets, and pins
# lcores (see docs/operations.md). Everything else works as the unprivileged user:
#   podman run --rm --user aves aves check-config /examples/gateway.toml
ENTRYPOINT ["/usr/bin/aves"]
CMD ["--help"]
