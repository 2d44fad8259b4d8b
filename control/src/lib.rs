//! The library half of the `aves` package: the configuration parser, shared by the
//! `aves` binary and the fuzz targets (`fuzz/fuzz_targets/config.rs`).
//!
//! [`config`] and the control-message formats it names ([`proto`]) live here: they need
//! nothing but `serde`, `toml` and the dataplane's
//! address and key types, so it builds without DPDK. Everything else (daemon, control
//! socket, roles) stays in the binary.
#![deny(unsafe_code)]

pub mod config;
pub mod proto;
