//! A bitmap allocator of translation ports (or ICMP identifiers) over a range
//! `[lo, hi]`.
//!
//! AVES §5.3 picks a port between 1024 and 65535 at random for every translated inbound
//! connection and retries until it finds a free one; this does the same without
//! retries: the search for a free port starts at a point derived from the caller's hint
//! and a secret seed (RFC 6056 §3.3.3, Algorithm 3, so ports are spread and hard to
//! guess) and walks the bitmap from there, 64 ports a step, wrapping once.
//!
//! Invariants: bit `i` of the bitmap is set exactly when port `lo + i` is in use; bits
//! past `hi` in the last word are always set, so no search can return them; `free`
//! counts the clear bits that stand for ports. The bitmap is allocated in
//! [`PortAllocator::new`] and never again, so every other method is allocation-free and
//! runs in at most `(hi - lo) / 64 + 2` word steps.

/// Ports in use among `[lo, hi]`; see the module doc.
#[derive(Clone, Debug)]
pub struct PortAllocator {
    lo: u16,
    hi: u16,
    /// One bit per port of the range, 1 = in use.
    words: Vec<u64>,
    /// Ports of the range not in use.
    free: usize,
    seed: u64,
}

impl PortAllocator {
    /// An allocator with every port of `[lo, hi]` free; `seed` keys the spreading of
    /// hints (pick it at random per process). `None` when `lo > hi`.
    pub fn new(lo: u16, hi: u16, seed: u64) -> Option<PortAllocator> {
        if lo > hi {
            return None;
        }
        let n = usize::from(hi - lo) + 1;
        let mut words = vec![0u64; n.div_ceil(64)];
        // Mark the bits past `hi` in use so that no search returns them.
        let tail = n % 64;
        if tail != 0 {
            if let Some(last) = words.last_mut() {
                *last = !0u64 << tail;
            }
        }
        Some(PortAllocator {
            lo,
            hi,
            words,
            free: n,
            seed,
        })
    }

    /// The range `(lo, hi)`, both ends included.
    pub fn range(&self) -> (u16, u16) {
        (self.lo, self.hi)
    }

    /// How many ports the range has.
    pub fn size(&self) -> usize {
        usize::from(self.hi - self.lo) + 1
    }

    /// How many ports are free.
    pub fn available(&self) -> usize {
        self.free
    }

    /// The word index and bit mask of `port`, when it is in the range.
    fn bit(&self, port: u16) -> Option<(usize, u64)> {
        if port < self.lo || port > self.hi {
            return None;
        }
        let i = usize::from(port - self.lo);
        Some((i / 64, 1u64 << (i % 64)))
    }

    /// True when `port` is in the range and allocated.
    pub fn in_use(&self, port: u16) -> bool {
        self.bit(port)
            .and_then(|(w, m)| self.words.get(w).map(|x| x & m != 0))
            .unwrap_or(false)
    }

    /// Claims a free port, searching from a point that `hint` (for example a hash of
    /// the flow's remote address and port) and the seed decide. `None` when every port
    /// is in use. Never returns a port in use.
    pub fn allocate(&mut self, hint: u64) -> Option<u16> {
        if self.free == 0 {
            return None;
        }
        let n = self.size();
        // A uniform start in 0..n: the high half of a 64×64-bit product.
        let h = mix(hint ^ self.seed);
        let start = ((u128::from(h) * n as u128) >> 64) as usize;
        let (w0, b0) = (start / 64, start % 64);
        let words = self.words.len();
        // The start word from bit `b0` up, the other words in order, then the start
        // word below `b0`.
        for step in 0..=words {
            let w = (w0 + step) % words;
            let mask = match step {
                0 => !0u64 << b0,
                s if s == words => !(!0u64 << b0),
                _ => !0u64,
            };
            let Some(word) = self.words.get_mut(w) else {
                continue;
            };
            let clear = !*word & mask;
            if clear != 0 {
                let b = clear.trailing_zeros() as usize;
                *word |= 1u64 << b;
                self.free -= 1;
                let port = u16::try_from(usize::from(self.lo) + w * 64 + b).ok();
                debug_assert!(port.is_some_and(|p| p <= self.hi));
                return port;
            }
        }
        // Unreachable while `free` is right: a clear bit exists.
        None
    }

    /// Claims `port` itself (a static mapping, or keeping a client's own port when it
    /// is free). False when it is outside the range or already in use.
    pub fn reserve(&mut self, port: u16) -> bool {
        let Some((w, m)) = self.bit(port) else {
            return false;
        };
        match self.words.get_mut(w) {
            Some(x) if *x & m == 0 => {
                *x |= m;
                self.free -= 1;
                true
            }
            _ => false,
        }
    }

    /// Frees `port`. False (and nothing changes) when it was not in use or is outside
    /// the range.
    pub fn release(&mut self, port: u16) -> bool {
        let Some((w, m)) = self.bit(port) else {
            return false;
        };
        match self.words.get_mut(w) {
            Some(x) if *x & m != 0 => {
                *x &= !m;
                self.free += 1;
                true
            }
            _ => false,
        }
    }
}

/// splitmix64's finaliser: every input bit moves every output bit.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn the_papers_range_has_64512_ports() {
        // AVES §5.3: ports 1024–65535, "only 64,512 in-bound connections".
        let a = PortAllocator::new(1024, 65535, 1).unwrap();
        assert_eq!(a.size(), 64_512);
        assert_eq!(a.available(), 64_512);
        assert_eq!(a.range(), (1024, 65535));
        assert!(!a.in_use(1024) && !a.in_use(80));
    }

    #[test]
    fn bad_range_is_refused() {
        assert!(PortAllocator::new(2000, 1999, 0).is_none());
        assert!(PortAllocator::new(7, 7, 0).is_some());
    }

    #[test]
    fn exhaustion_and_release() {
        let mut a = PortAllocator::new(5000, 5003, 42).unwrap();
        let mut got: Vec<u16> = (0..4).map(|h| a.allocate(h).unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [5000, 5001, 5002, 5003]);
        assert_eq!(a.available(), 0);
        assert_eq!(a.allocate(9), None);
        assert!(a.release(5002));
        assert!(!a.release(5002), "double release");
        assert!(!a.in_use(5002));
        assert_eq!(a.allocate(123), Some(5002));
        assert_eq!(a.allocate(123), None);
        // Outside the range: never in use, never released or reserved.
        assert!(!a.release(4999) && !a.release(5004));
        assert!(!a.reserve(4999) && !a.reserve(5004));
        assert!(!a.in_use(5004));
    }

    #[test]
    fn single_port_and_edges_of_u16() {
        let mut a = PortAllocator::new(65535, 65535, 0).unwrap();
        assert_eq!(a.allocate(0), Some(65535));
        assert_eq!(a.allocate(1), None);
        let mut full = PortAllocator::new(0, 65535, 5).unwrap();
        assert_eq!(full.size(), 65536);
        assert!(full.reserve(0) && full.reserve(65535));
        assert!(!full.reserve(0));
        assert!(full.in_use(0) && full.in_use(65535));
        assert_eq!(full.available(), 65534);
    }

    #[test]
    fn reserve_then_allocate_skips_it() {
        let mut a = PortAllocator::new(100, 164, 3).unwrap(); // 65 ports: two words
        for p in 100..=164 {
            if p != 130 {
                assert!(a.reserve(p));
            }
        }
        for h in 0..5 {
            assert!(a.in_use(100 + h));
        }
        assert_eq!(a.allocate(77), Some(130));
        assert_eq!(a.allocate(78), None);
    }

    #[test]
    fn hints_spread_the_ports() {
        // Fresh allocations for different hints land all over the range, not at `lo`.
        let mut a = PortAllocator::new(1024, 65535, 0x5eed).unwrap();
        let blocks: HashSet<u16> = (0..64u64).map(|h| a.allocate(h).unwrap() / 4096).collect();
        assert!(
            blocks.len() >= 10,
            "only {} of 16 blocks used",
            blocks.len()
        );
        // The same hint and seed start at the same place; another seed elsewhere.
        let mut b = PortAllocator::new(1024, 65535, 0x5eed).unwrap();
        let mut c = PortAllocator::new(1024, 65535, 0x5eee).unwrap();
        let first = b.allocate(7);
        assert_eq!(
            first,
            PortAllocator::new(1024, 65535, 0x5eed).unwrap().allocate(7)
        );
        assert_ne!(first, c.allocate(7));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Allocate(u64),
        Release(u16),
        Reserve(u16),
    }

    proptest! {
        /// Allocate, reserve and release agree with a set of ports in use: no port is
        /// handed out twice, allocations stay in range, `None` only when exhausted.
        #[test]
        fn never_duplicates(
            lo in prop_oneof![Just(0u16), Just(65400), any::<u16>()],
            len in 0u16..140,
            seed in any::<u64>(),
            ops in prop::collection::vec(prop_oneof![
                3 => any::<u64>().prop_map(Op::Allocate),
                2 => (0u16..150).prop_map(Op::Release),
                1 => (0u16..150).prop_map(Op::Reserve),
            ], 0..400),
        ) {
            let hi = lo.saturating_add(len);
            let mut a = PortAllocator::new(lo, hi, seed).unwrap();
            let n = usize::from(hi - lo) + 1;
            let mut used: HashSet<u16> = HashSet::new();
            for o in ops {
                match o {
                    Op::Allocate(h) => match a.allocate(h) {
                        Some(p) => {
                            prop_assert!((lo..=hi).contains(&p));
                            prop_assert!(used.insert(p), "port {} handed out twice", p);
                        }
                        None => prop_assert_eq!(used.len(), n, "None with ports free"),
                    },
                    Op::Release(off) => {
                        let p = lo.wrapping_add(off);
                        prop_assert_eq!(a.release(p), used.remove(&p));
                    }
                    Op::Reserve(off) => {
                        let p = lo.wrapping_add(off);
                        let ok = (lo..=hi).contains(&p) && !used.contains(&p);
                        prop_assert_eq!(a.reserve(p), ok);
                        if ok {
                            used.insert(p);
                        }
                    }
                }
                prop_assert_eq!(a.available(), n - used.len());
            }
            for off in 0..=len.saturating_add(2) {
                let p = lo.wrapping_add(off);
                prop_assert_eq!(a.in_use(p), used.contains(&p));
            }
        }
    }
}
