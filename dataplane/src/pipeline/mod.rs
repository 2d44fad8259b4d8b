//! Sans-IO pipelines: one per role.
//!
//! A pipeline's `process` takes a [`crate::buf::PacketBuf`], the ingress port, `now` (ns
//! on a monotonic clock) and the core's counters; it rewrites the buffer in place and
//! returns a [`crate::verdict::Verdict`]. It never allocates, locks, panics or calls DPDK.

pub mod fragment;
pub mod neighbour;
pub mod reassembly;
pub mod route;
pub mod router;
