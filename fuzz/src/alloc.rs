//! Counting allocations, to check that per-packet code does not allocate.
//!
//! The pipelines promise no heap allocation per packet. [`no_alloc`] runs a closure and
//! asserts that nothing was allocated or reallocated meanwhile. Freeing is allowed:
//! dropping a buffer frees its storage, as freeing an mbuf would. The allocator is the
//! `stats_alloc` crate's instrumented `System` (no `unsafe` here).
//!
//! Invariant: the counters are process-wide; libFuzzer runs the target on one thread,
//! and nothing else in a fuzz target starts threads, so every count is the closure's.

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Runs `f` and returns its result with the number of allocations and reallocations it
/// made.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let region = Region::new(GLOBAL);
    let r = f();
    let c = region.change();
    (r, c.allocations + c.reallocations)
}

/// Runs `f` and panics if it allocated; `what` names the call in the message.
pub fn no_alloc<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let (r, n) = count(f);
    // Tracing (AVES_FUZZ_TRACE) formats inside the region: only check without it.
    assert!(
        n == 0 || crate::records::trace(),
        "{what} allocated {n} times (per-packet code must not allocate)"
    );
    r
}
