//! The library half of the `aves` package: everything of the control plane that needs
//! no DPDK, shared by the `aves` binary and the fuzz targets (`fuzz/fuzz_targets/`).
//!
//! - [`config`]: the configuration parser (fuzzed by `config`);
//! - [`proto`]: the control-message formats (fuzzed by `control_messages`);
//! - [`dns`]: the AVES-aware DNS server (fuzzed by `dns_handler` through
//!   [`dns::handler::AvesDns::respond`]), and what it needs: [`setup`] (the SETUP
//!   client its binder uses, and the waypoint's SETUP service), [`metrics`] (the
//!   Prometheus exposition and its HTTP server) and [`stats`] (counter snapshots).
//!
//! They need nothing but `serde`, `toml`, `tokio`, `hickory`, `prometheus` and the
//! dataplane's address, key and command types, so the library builds without DPDK
//! (`default-features = false`). The rest (the daemon, which drives DPDK, the roles'
//! set-up, the control socket, the registrar) stays in the binary.
#![deny(unsafe_code)]

pub mod config;
pub mod dns;
pub mod metrics;
pub mod proto;
pub mod setup;
pub mod stats;
