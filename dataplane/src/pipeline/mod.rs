//! Sans-IO pipelines: one per role.
//!
//! A pipeline's `process` takes a [`crate::buf::PacketBuf`], the ingress port, `now` (ns
//! on a monotonic clock) and the core's counters; it rewrites the buffer in place and
//! returns a [`crate::verdict::Verdict`]. It never allocates, locks, panics or calls DPDK.
//!
//! Stages that turn one buffer into several or several into one ([`fragment`],
//! [`reassembly`]) take buffers from the caller's `alloc` closure instead.

pub mod fragment;
pub mod neighbour;
pub mod reassembly;
pub mod route;
pub mod router;
