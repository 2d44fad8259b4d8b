//! [`CountedBuf`]: a [`PacketBuf`] that records how it ends.
//!
//! A buffer ends exactly once: handed to the `Io` ([`CountedBuf::end`]), handed back by
//! `Role::drain`, returned unused by the harness ([`CountedBuf::discard`]), or dropped by
//! the role without telling the `Io` (a *silent* drop: an ARP reply the router consumed,
//! a fragment reassembly merged or freed, a buffer freed with a counted drop reason).
//! Rust's ownership makes "at most once" a given; the counters in [`Tally`] make "at
//! least once" checkable: after a run and `drain`, nothing may still be alive.
//!
//! Invariant: the counters are process-wide atomics (one fuzzing thread); call
//! [`reset`] at the start of each input.

use aves_dataplane::buf::{PacketBuf, VecBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::fixup::{is_arp, is_ipv4_fragment};

/// Where a buffer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A received frame the harness handed to the role.
    Input,
    /// A fresh buffer the role took from `Io::alloc`.
    Alloc,
}

/// A [`VecBuf`] that counts its end.
#[derive(Debug)]
pub struct CountedBuf {
    inner: VecBuf,
    origin: Origin,
    ended: bool,
}

static CREATED: AtomicU64 = AtomicU64::new(0);
static ENDED: AtomicU64 = AtomicU64::new(0);
static SILENT_ARP: AtomicU64 = AtomicU64::new(0);
static SILENT_FRAGMENT: AtomicU64 = AtomicU64::new(0);
static SILENT_INPUT_OTHER: AtomicU64 = AtomicU64::new(0);
static SILENT_ALLOC: AtomicU64 = AtomicU64::new(0);

/// A snapshot of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Buffers made (input frames and `alloc`s).
    pub created: u64,
    /// Buffers ended explicitly (`Io`, drain, discard).
    pub ended: u64,
    /// Input buffers dropped silently while holding an ARP frame.
    pub silent_arp: u64,
    /// Input buffers dropped silently while holding an IPv4 fragment.
    pub silent_fragment: u64,
    /// Other input buffers dropped silently.
    pub silent_input_other: u64,
    /// Allocated buffers dropped silently (returned to the pool).
    pub silent_alloc: u64,
}

impl Tally {
    /// Buffers not ended yet.
    pub fn live(&self) -> u64 {
        self.created
            - self.ended
            - self.silent_arp
            - self.silent_fragment
            - self.silent_input_other
            - self.silent_alloc
    }
}

/// The counters now.
pub fn tally() -> Tally {
    Tally {
        created: CREATED.load(Relaxed),
        ended: ENDED.load(Relaxed),
        silent_arp: SILENT_ARP.load(Relaxed),
        silent_fragment: SILENT_FRAGMENT.load(Relaxed),
        silent_input_other: SILENT_INPUT_OTHER.load(Relaxed),
        silent_alloc: SILENT_ALLOC.load(Relaxed),
    }
}

/// Zeroes the counters (start of an input).
pub fn reset() {
    for c in [
        &CREATED,
        &ENDED,
        &SILENT_ARP,
        &SILENT_FRAGMENT,
        &SILENT_INPUT_OTHER,
        &SILENT_ALLOC,
    ] {
        c.store(0, Relaxed);
    }
}

impl CountedBuf {
    /// A buffer holding `bytes` with mbuf-like headroom and room (see [`VecBuf`]).
    pub fn new(bytes: &[u8], origin: Origin) -> Self {
        CREATED.fetch_add(1, Relaxed);
        CountedBuf {
            inner: VecBuf::from_slice(bytes),
            origin,
            ended: false,
        }
    }

    /// A buffer holding `bytes` with `headroom` bytes in front and at least `capacity`
    /// bytes in all.
    pub fn with_room(bytes: &[u8], headroom: usize, capacity: usize) -> Self {
        CREATED.fetch_add(1, Relaxed);
        CountedBuf {
            inner: VecBuf::with_room(bytes, headroom, capacity),
            origin: Origin::Alloc,
            ended: false,
        }
    }

    /// Ends the buffer explicitly (the `Io` took it, or drain handed it back).
    pub fn end(mut self) {
        self.ended = true;
        ENDED.fetch_add(1, Relaxed);
    }

    /// Ends an unused buffer of the harness's pool.
    pub fn discard(self) {
        self.end()
    }

    /// Where it came from.
    pub fn origin(&self) -> Origin {
        self.origin
    }
}

impl Drop for CountedBuf {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let d = self.inner.data();
        let c = match self.origin {
            Origin::Alloc => &SILENT_ALLOC,
            Origin::Input if is_arp(d) => &SILENT_ARP,
            Origin::Input if is_ipv4_fragment(d) => &SILENT_FRAGMENT,
            Origin::Input => &SILENT_INPUT_OTHER,
        };
        c.fetch_add(1, Relaxed);
    }
}

impl PacketBuf for CountedBuf {
    fn data(&self) -> &[u8] {
        self.inner.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.inner.data_mut()
    }
    fn prepend(&mut self, n: usize) -> bool {
        self.inner.prepend(n)
    }
    fn adj(&mut self, n: usize) -> bool {
        self.inner.adj(n)
    }
    fn append(&mut self, n: usize) -> bool {
        self.inner.append(n)
    }
    fn trim(&mut self, n: usize) -> bool {
        self.inner.trim(n)
    }
}
