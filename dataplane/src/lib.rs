//! aves dataplane: everything that touches packets.
//!
//! - [`wire`]: zero-copy views over packet bytes (generic over `AsRef<[u8]>` /
//!   `AsMut<[u8]>`) and `Repr` parse/emit pairs.
//! - [`pipeline`]: sans-IO per-packet processing. A pipeline takes a
//!   [`buf::PacketBuf`], the ingress port and `now`, rewrites the packet in place and
//!   returns a [`verdict::Verdict`]. It never calls DPDK, never allocates, never locks and
//!   never panics on any input.
//! - [`auth`]: tunnel keys and HMAC tags (RFC 2104).
//! - [`counters`]: per-core counters and the drop-reason enum.
//! - [`command`]: the messages the control thread sends to lcores (and their answers).
//! - `engine` (feature `dpdk`): the DPDK lcore loop around a pipeline.
//!
//! Invariant: no `unsafe` here; all of it lives in the `dpdk-sys` crate (`ffi/`).
#![deny(unsafe_code)]

pub mod addr;
pub mod auth;
pub mod buf;
pub mod command;
pub mod counters;
#[cfg(feature = "dpdk")]
pub mod engine;
pub mod pipeline;
pub mod verdict;
pub mod wire;
