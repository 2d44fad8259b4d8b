//! The packet buffer abstraction the pipelines work on.
//!
//! In production a [`PacketBuf`] is a DPDK mbuf (single segment); in tests it is a
//! [`VecBuf`]. Both have headroom in front of the data so a pipeline can prepend headers
//! (Ethernet, tunnel) without copying the payload, and tailroom behind it.
//!
//! Invariant: every method either succeeds completely or leaves the buffer unchanged
//! and returns `false`; none panics.

/// A contiguous packet with adjustable front (headroom) and back (tailroom).
pub trait PacketBuf {
    /// The packet bytes, starting at the first byte of the frame.
    fn data(&self) -> &[u8];
    /// The packet bytes, mutable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the packet at the front by `n` bytes (taken from headroom). The new bytes
    /// are unspecified. Returns `false` (and changes nothing) when headroom is short.
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front. Returns `false` when the packet is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// Grows the packet at the back by `n` bytes (taken from tailroom). The new bytes
    /// are unspecified. Returns `false` when tailroom is short.
    fn append(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the back. Returns `false` when the packet is shorter.
    fn trim(&mut self, n: usize) -> bool;
    /// Length of the packet in bytes.
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True when the packet has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A heap-backed [`PacketBuf`] for tests, fuzzing and benchmarks, laid out like an mbuf:
/// `headroom` bytes in front of the data, the rest of the capacity behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecBuf {
    storage: Vec<u8>,
    start: usize,
    end: usize,
}

impl VecBuf {
    /// Default headroom, the same as DPDK's `RTE_PKTMBUF_HEADROOM`.
    pub const HEADROOM: usize = 128;
    /// Default total size, the same as DPDK's default mbuf data room (2048 + headroom).
    pub const CAPACITY: usize = 2048 + Self::HEADROOM;

    /// A buffer holding a copy of `bytes` with default headroom and capacity (grown to
    /// fit when `bytes` is larger).
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::with_room(bytes, Self::HEADROOM, Self::CAPACITY)
    }

    /// A buffer holding a copy of `bytes` with `headroom` bytes in front and a total
    /// capacity of at least `capacity`.
    pub fn with_room(bytes: &[u8], headroom: usize, capacity: usize) -> Self {
        let cap = capacity.max(headroom + bytes.len());
        let mut storage = vec![0u8; cap];
        storage[headroom..headroom + bytes.len()].copy_from_slice(bytes);
        VecBuf {
            storage,
            start: headroom,
            end: headroom + bytes.len(),
        }
    }

    /// Bytes of headroom left.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Bytes of tailroom left.
    pub fn tailroom(&self) -> usize {
        self.storage.len() - self.end
    }
}

impl PacketBuf for VecBuf {
    fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn append(&mut self, n: usize) -> bool {
        if n > self.tailroom() {
            return false;
        }
        self.end += n;
        true
    }
    fn trim(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.end -= n;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_adj_append_trim_keep_bounds() {
        let mut b = VecBuf::with_room(&[1, 2, 3], 4, 10);
        assert_eq!(b.data(), &[1, 2, 3]);
        assert!(!b.prepend(5));
        assert!(b.prepend(4));
        assert_eq!(b.len(), 7);
        assert!(!b.prepend(1));
        assert!(b.adj(4));
        assert_eq!(b.data(), &[1, 2, 3]);
        assert!(!b.append(4));
        assert!(b.append(3));
        assert!(b.trim(3));
        assert!(!b.trim(4));
        assert!(b.adj(3));
        assert!(b.is_empty());
        assert!(!b.adj(1));
    }
}
