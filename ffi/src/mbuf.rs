//! Mempools, the owning [`Mbuf`] and [`Burst`], a fixed array of owned mbufs.

use crate::{raw, DpdkError};
use std::ffi::CString;
use std::ptr::NonNull;

/// Packets per rx/tx burst (DPDK examples' `MAX_PKT_BURST`).
pub const BURST_SIZE: usize = 32;

/// A packet-mbuf pool (`rte_pktmbuf_pool_create`). Thread-safe: DPDK's default ring
/// mempool is multi-producer/multi-consumer, with a per-lcore cache on EAL threads.
#[derive(Debug)]
pub struct Mempool {
    ptr: NonNull<raw::rte_mempool>,
    size: u32,
}

// SAFETY: rte_mempool's get/put are thread-safe (MP/MC ring ops); the pointer is only
// freed in Drop, when no other reference to the Mempool exists.
unsafe impl Send for Mempool {}
// SAFETY: as above: every method is safe to call concurrently.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `n` mbufs with a per-lcore `cache`, each with `data_room` bytes
    /// (including `RTE_PKTMBUF_HEADROOM`), on NUMA `socket` (-1: any).
    pub fn new(
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool, DpdkError> {
        let op = || format!("rte_pktmbuf_pool_create({name}, n={n}, cache={cache})");
        let c = CString::new(name).map_err(|_| DpdkError::invalid(op(), "NUL in name"))?;
        // SAFETY: c is a valid C string; the other arguments are plain values.
        let p = unsafe { raw::rte_pktmbuf_pool_create(c.as_ptr(), n, cache, 0, data_room, socket) };
        match NonNull::new(p) {
            Some(ptr) => {
                crate::object_created();
                Ok(Mempool { ptr, size: n })
            }
            None => Err(DpdkError::last(op())),
        }
    }

    /// Allocates one mbuf (reset, empty, with headroom). None when the pool is empty.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: self.ptr is a live pktmbuf pool.
        let m = unsafe { raw::aves_pktmbuf_alloc(self.ptr.as_ptr()) };
        NonNull::new(m).map(Mbuf)
    }

    /// Mbufs currently in the pool (including per-lcore caches).
    pub fn avail_count(&self) -> u32 {
        // SAFETY: self.ptr is live.
        unsafe { raw::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// The pool's size.
    pub fn size(&self) -> u32 {
        self.size
    }

    pub(crate) fn as_ptr(&self) -> *mut raw::rte_mempool {
        self.ptr.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // Freeing a pool whose mbufs are still out would leave them dangling: leak instead.
        if self.avail_count() == self.size {
            // SAFETY: every mbuf is back in the pool, and nothing else holds the pointer.
            unsafe { raw::rte_mempool_free(self.ptr.as_ptr()) };
            crate::object_freed();
        }
    }
}

/// An owned single packet buffer; freed to its pool on drop.
///
/// Only the first segment is exposed as bytes ([`Mbuf::data`]); aves configures ports
/// without scatter, so received packets are single-segment ([`Mbuf::is_contiguous`]).
#[derive(Debug)]
pub struct Mbuf(NonNull<raw::rte_mbuf>);

// SAFETY: an Mbuf is uniquely owned; moving it to another thread moves ownership, and
// freeing from any thread is allowed by DPDK mempools.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// The packet bytes of the first segment.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let (p, n) = self.data_ptr_len();
        // SAFETY: the mbuf is live and owned; buf_addr + data_off (mtod) points at
        // data_len initialised bytes inside the mbuf's buffer, which lives as long as
        // &self.
        unsafe { std::slice::from_raw_parts(p, n) }
    }

    /// `rte_pktmbuf_mtod` and `data_len`, read in Rust at the offsets the shim exports
    /// (`enum aves_mbuf_offsets`): inlined, where a call into the shim was a
    /// measurable share of the per-packet cost (docs/performance.md).
    #[inline(always)]
    fn data_ptr_len(&self) -> (*mut u8, usize) {
        let m = self.0.as_ptr().cast::<u8>();
        // SAFETY: the mbuf is live; the offsets are offsetof() of rte_mbuf fields whose
        // sizes shim.c asserts (pointer, u16, u16); rte_mbuf is cache-line aligned, so
        // each field is naturally aligned for its read.
        unsafe {
            let buf = m
                .add(raw::AVES_MBUF_OFF_BUF_ADDR as usize)
                .cast::<*mut u8>()
                .read();
            let off = m
                .add(raw::AVES_MBUF_OFF_DATA_OFF as usize)
                .cast::<u16>()
                .read();
            let len = m
                .add(raw::AVES_MBUF_OFF_DATA_LEN as usize)
                .cast::<u16>()
                .read();
            (buf.add(usize::from(off)), usize::from(len))
        }
    }

    /// The packet bytes of the first segment, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (p, n) = self.data_ptr_len();
        // SAFETY: as in `data`, and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(p, n) }
    }

    /// Length of the first segment.
    #[inline]
    pub fn len(&self) -> usize {
        self.data_ptr_len().1
    }

    /// True when the first segment is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the `T` at byte `offset` of the rte_mbuf.
    ///
    /// # Safety
    /// `offset` must be one of `enum aves_mbuf_offsets` for a field of type `T` (shim.c
    /// asserts the sizes).
    #[inline(always)]
    unsafe fn field<T: Copy>(&self, offset: u32) -> T {
        // SAFETY: the mbuf is live; by the caller's contract the offset is that of a
        // field of type T, naturally aligned (rte_mbuf is cache-line aligned).
        unsafe {
            self.0
                .as_ptr()
                .cast::<u8>()
                .add(offset as usize)
                .cast::<T>()
                .read()
        }
    }

    /// Writes the `T` at byte `offset` of the rte_mbuf.
    ///
    /// # Safety
    /// As [`Mbuf::field`].
    #[inline(always)]
    unsafe fn set_field<T: Copy>(&mut self, offset: u32, v: T) {
        // SAFETY: as in `field`; &mut self owns the mbuf exclusively.
        unsafe {
            self.0
                .as_ptr()
                .cast::<u8>()
                .add(offset as usize)
                .cast::<T>()
                .write(v)
        }
    }

    /// Total packet length over all segments.
    #[inline]
    pub fn pkt_len(&self) -> usize {
        // SAFETY: pkt_len is a u32 (shim.c).
        unsafe { self.field::<u32>(raw::AVES_MBUF_OFF_PKT_LEN) as usize }
    }

    /// True when the packet is a single segment (all of it is in [`Mbuf::data`]).
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        // SAFETY: nb_segs is a u16 (shim.c).
        unsafe { self.field::<u16>(raw::AVES_MBUF_OFF_NB_SEGS) == 1 }
    }

    /// `(pkt_len, nb_segs, data_len, headroom)` as DPDK's own accessors in the shim
    /// see them: for tests that check the fields this type reads and writes in Rust.
    #[doc(hidden)]
    pub fn dpdk_view(&self) -> (u32, u16, u16, u16) {
        let m = self.0.as_ptr();
        // SAFETY: the mbuf is live; these are plain reads.
        unsafe {
            (
                raw::aves_mbuf_pkt_len(m),
                raw::aves_mbuf_nb_segs(m),
                raw::aves_mbuf_data_len(m),
                raw::aves_mbuf_headroom(m),
            )
        }
    }

    /// The mbuf's port field (set by the driver on receive; aves stores its own port
    /// index there when it hands a packet to another lcore).
    pub fn port(&self) -> u16 {
        // SAFETY: the mbuf is live.
        unsafe { raw::aves_mbuf_port(self.0.as_ptr()) }
    }

    /// Sets the mbuf's port field.
    pub fn set_port(&mut self, port: u16) {
        // SAFETY: the mbuf is live and ours.
        unsafe { raw::aves_mbuf_set_port(self.0.as_ptr(), port) }
    }

    /// Bytes free before the data.
    pub fn headroom(&self) -> usize {
        // SAFETY: the mbuf is live.
        usize::from(unsafe { raw::aves_mbuf_headroom(self.0.as_ptr()) })
    }

    /// Bytes free after the data in the last segment.
    pub fn tailroom(&self) -> usize {
        // SAFETY: the mbuf is live.
        usize::from(unsafe { raw::aves_mbuf_tailroom(self.0.as_ptr()) })
    }

    /// Grows the packet at the front by `n` bytes. False (unchanged) without headroom.
    ///
    /// `rte_pktmbuf_prepend` done in Rust on the fields (a call into the shim per
    /// packet was measurable, docs/performance.md): headroom is `data_off`.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> bool {
        self.move_front(n, true)
    }

    /// Moves the start of the first segment `n` bytes earlier (`grow`: into the
    /// headroom, `data_off`) or later (into the data, `data_len`), with `data_len` and
    /// `pkt_len` following: `rte_pktmbuf_prepend` and `rte_pktmbuf_adj` on the fields.
    /// False (unchanged) when the headroom or the segment is shorter than `n`.
    #[inline(always)]
    fn move_front(&mut self, n: usize, grow: bool) -> bool {
        let Ok(n) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: the offsets name fields of the asserted types (shim.c).
        unsafe {
            let off: u16 = self.field(raw::AVES_MBUF_OFF_DATA_OFF);
            let len: u16 = self.field(raw::AVES_MBUF_OFF_DATA_LEN);
            let pkt: u32 = self.field(raw::AVES_MBUF_OFF_PKT_LEN);
            // data_off + data_len <= buf_len < 2^16: neither sum below can wrap.
            let (off, len, pkt) = if grow {
                if n > off {
                    return false;
                }
                (off - n, len.wrapping_add(n), pkt.wrapping_add(u32::from(n)))
            } else {
                if n > len {
                    return false;
                }
                (off.wrapping_add(n), len - n, pkt.wrapping_sub(u32::from(n)))
            };
            self.set_field(raw::AVES_MBUF_OFF_DATA_OFF, off);
            self.set_field(raw::AVES_MBUF_OFF_DATA_LEN, len);
            self.set_field(raw::AVES_MBUF_OFF_PKT_LEN, pkt);
        }
        true
    }

    /// Removes `n` bytes from the front. False (unchanged) if the segment is shorter.
    ///
    /// `rte_pktmbuf_adj` done in Rust on the fields (as `prepend`; the gateway calls it
    /// for every tunnel packet it decapsulates).
    #[inline]
    pub fn adj(&mut self, n: usize) -> bool {
        self.move_front(n, false)
    }

    /// Grows the packet at the end by `n` bytes (uninitialised in DPDK's eyes; the bytes
    /// are whatever the buffer held). False (unchanged) without tailroom.
    #[inline]
    pub fn append(&mut self, n: usize) -> bool {
        if !self.is_contiguous() {
            return false;
        }
        let Ok(n) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: the mbuf is live and ours; append checks the tailroom itself.
        !unsafe { raw::aves_pktmbuf_append(self.0.as_ptr(), n) }.is_null()
    }

    /// Removes `n` bytes from the end. False (unchanged) if the last segment is shorter.
    /// Single-segment packets only (false otherwise).
    ///
    /// `rte_pktmbuf_trim` for one segment, done in Rust on the fields (as `prepend`).
    #[inline]
    pub fn trim(&mut self, n: usize) -> bool {
        if !self.is_contiguous() {
            return false;
        }
        let Ok(n) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: the offsets name fields of the asserted types (shim.c).
        unsafe {
            let len: u16 = self.field(raw::AVES_MBUF_OFF_DATA_LEN);
            if n > len {
                return false;
            }
            let pkt: u32 = self.field(raw::AVES_MBUF_OFF_PKT_LEN);
            self.set_field(raw::AVES_MBUF_OFF_DATA_LEN, len - n);
            self.set_field(raw::AVES_MBUF_OFF_PKT_LEN, pkt.wrapping_sub(u32::from(n)));
        }
        true
    }

    /// Gives up ownership: the caller must free the pointer (or hand it to DPDK).
    pub(crate) fn into_raw(self) -> *mut raw::rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `p` must be a live mbuf that nothing else owns.
    pub(crate) unsafe fn from_raw(p: NonNull<raw::rte_mbuf>) -> Mbuf {
        Mbuf(p)
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; after this nothing refers to it.
        unsafe { raw::aves_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// Up to [`BURST_SIZE`] owned mbufs in a C array, ready for rx/tx burst calls.
/// Whatever is still in it when dropped is freed.
#[derive(Debug)]
pub struct Burst {
    ptrs: [*mut raw::rte_mbuf; BURST_SIZE],
    len: usize,
}

// SAFETY: the burst owns its mbufs exclusively (as Mbuf does).
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Burst::new()
    }
}

impl Burst {
    /// An empty burst.
    pub fn new() -> Burst {
        Burst {
            ptrs: [std::ptr::null_mut(); BURST_SIZE],
            len: 0,
        }
    }

    /// Number of mbufs held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when it holds [`BURST_SIZE`] mbufs.
    pub fn is_full(&self) -> bool {
        self.len == BURST_SIZE
    }

    /// Appends `m`; gives it back when full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == BURST_SIZE {
            return Err(m);
        }
        self.ptrs[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Removes the last mbuf.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let p = std::mem::replace(&mut self.ptrs[self.len], std::ptr::null_mut());
        // SAFETY: slots below len hold owned, live mbufs; this one leaves the burst.
        NonNull::new(p).map(|p| unsafe { Mbuf::from_raw(p) })
    }

    /// Takes every mbuf out, front to back. Mbufs the iterator did not yield are freed
    /// when it is dropped.
    pub fn drain(&mut self) -> Drain<'_> {
        let len = self.len;
        self.len = 0;
        Drain {
            burst: self,
            next: 0,
            end: len,
        }
    }

    /// The free tail of the array, for rx_burst to fill.
    pub(crate) fn spare(&mut self) -> (*mut *mut raw::rte_mbuf, u16) {
        let n = (BURST_SIZE - self.len) as u16;
        (self.ptrs[self.len..].as_mut_ptr(), n)
    }

    /// Records that `n` more slots (after the current ones) were filled by DPDK.
    pub(crate) fn filled(&mut self, n: usize) {
        self.len = (self.len + n).min(BURST_SIZE);
    }

    /// The filled part, for tx_burst.
    pub(crate) fn filled_ptr(&mut self) -> (*mut *mut raw::rte_mbuf, u16) {
        (self.ptrs.as_mut_ptr(), self.len as u16)
    }

    /// Records that the first `n` mbufs were taken by DPDK: the rest move to the front.
    pub(crate) fn consumed(&mut self, n: usize) {
        let n = n.min(self.len);
        self.ptrs.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

/// Iterator of [`Burst::drain`].
#[derive(Debug)]
pub struct Drain<'a> {
    burst: &'a mut Burst,
    next: usize,
    end: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;
    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        while self.next < self.end {
            let p = std::mem::replace(&mut self.burst.ptrs[self.next], std::ptr::null_mut());
            self.next += 1;
            if let Some(p) = NonNull::new(p) {
                // SAFETY: the slot held an owned, live mbuf, now taken out of the burst.
                return Some(unsafe { Mbuf::from_raw(p) });
            }
        }
        None
    }
}

impl Drain<'_> {
    /// Prefetches into the cache the packet data of the mbuf `ahead` places after the
    /// one [`Iterator::next`] returns next, and the cache line in front of it (the
    /// headroom that a prepend of up to 64 bytes writes, e.g. a tunnel header). Call it
    /// while handling one packet so that a later one's lines arrive in the meantime
    /// (as DPDK's l3fwd does). Does nothing past the end.
    #[inline]
    pub fn prefetch_ahead(&self, ahead: usize) {
        let i = self.next.saturating_add(ahead);
        if i >= self.end {
            return;
        }
        let Some(p) = self.burst.ptrs.get(i).and_then(|p| NonNull::new(*p)) else {
            return;
        };
        let m = p.as_ptr().cast::<u8>();
        // SAFETY: slot i holds an owned, live mbuf (not yet returned); buf_addr and
        // data_off are read at their offsets as in `Mbuf::data_ptr_len`. A prefetch
        // never faults and changes nothing, whatever address it is given, so the
        // wrapping arithmetic below needs no bound.
        unsafe {
            let buf = m
                .add(raw::AVES_MBUF_OFF_BUF_ADDR as usize)
                .cast::<*mut u8>()
                .read();
            let off = m
                .add(raw::AVES_MBUF_OFF_DATA_OFF as usize)
                .cast::<u16>()
                .read();
            let data = buf.wrapping_add(usize::from(off));
            prefetch(data);
            prefetch(data.wrapping_sub(64));
        }
    }
}

/// A hint to load the cache line holding `p` (no-op off x86-64).
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint: it never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for m in self.by_ref() {
            drop(m);
        }
    }
}
