//! Bounded IPv4 reassembly (RFC 791 §3.2, RFC 815), sans-IO and generic over
//! [`PacketBuf`], with the defences of RFC 1858 and an RFC 5722-style overlap policy.
//!
//! A [`Reassembler`] takes Ethernet II + IPv4 frames one at a time
//! ([`Reassembler::push`]). A datagram that is not a fragment comes straight back as
//! [`Reassembled::Complete`]; a fragment is held until its datagram is complete, then
//! the datagram comes back in one buffer: the first fragment's Ethernet header and IP
//! header (options included; total length fixed, MF and offset cleared, checksum
//! recomputed, DF and everything else kept) followed by all payloads. That buffer is
//! the first fragment's own when it has the tailroom, else one from the caller's
//! `alloc` closure.
//!
//! Policy (each refusal is a [`ReassemblyDrop`]):
//! - Fragments are keyed by (source, destination, protocol, identification)
//!   (RFC 791 §3.2). The header checksum must verify and every fragment but the last
//!   must carry a non-zero multiple of 8 bytes; zero-length fragments are refused.
//!   Such a `Malformed` fragment is dropped alone: its key may itself be corrupt.
//! - An exact duplicate (same offset and length as a held fragment) is dropped alone
//!   (`Duplicate`), as Linux does: networks duplicate packets.
//! - Anything else that contradicts the held fragments drops the whole datagram
//!   (RFC 5722's rule for IPv6, applied to IPv4): a partial overlap, a second last
//!   fragment with another end, data past the end, or MF on a fragment ending at or
//!   past the end (`Overlap`); more than `max_fragments` fragments (`TooManyFragments`);
//!   a datagram over 65535 bytes (`TooBig`); a TCP fragment at offset 8 or a first
//!   fragment too short for the TCP (20), UDP (8) or ICMP (8) header (`TinyFragment`,
//!   RFC 1858 §3.2 and §4); a fragment that would push the held bytes over `max_bytes`
//!   (`MemoryFull`: the datagram could never complete).
//! - A datagram times out `timeout_ns` after its first fragment arrived (RFC 791 §3.2's
//!   timer, started once and never extended, so a trickle cannot keep it alive).
//!   [`Reassembler::expire`] frees timed-out datagrams; [`Reassembler::push`] also
//!   frees up to [`EXPIRE_PER_PUSH`] of them, and never adds to a timed-out one.
//! - At most `max_datagrams` datagrams are in progress. When full, a fragment of a new
//!   datagram is refused (`TableFull`) and the datagrams in progress carry on.
//!
//! Invariants:
//! - Every buffer pushed leaves exactly once: returned (`Complete`), dropped (freed,
//!   and counted in [`ReassemblyCounters::dropped`] under its reason, held fragments of
//!   a dropped datagram included), merged into a completed datagram (counted in
//!   [`ReassemblyCounters::fragments_reassembled`]), or handed out by
//!   [`Reassembler::drain`]. Dropping the `Reassembler` frees what it holds.
//! - The held fragments of a datagram never overlap and are sorted by offset, so the
//!   datagram is complete exactly when the last fragment (MF clear) has arrived and the
//!   held payload bytes add up to its end. (RFC 815's hole list answers the same
//!   question when overlaps are allowed; refusing them makes a byte count enough.)
//! - [`Reassembler::new`] allocates everything: a slot per datagram, an arena of
//!   `max_datagrams × max_fragments` fragment slots (datagram `i` owns the `i`-th run of
//!   `max_fragments`), an open-addressing index (linear probing, power of two, at most
//!   half full, backward-shift deletion as in `neighbour.rs`) and a free list. After
//!   that nothing allocates except through `alloc`, nothing panics on any input, and
//!   every per-packet operation is O(`max_fragments`) plus bounded expiry plus one
//!   index probe: at most `max_datagrams + 1` slots even when every key collides
//!   (`colliding_key_flood_with_a_known_seed`); with the seed secret, linear probing
//!   at most half full expects at most 1.5 slots for a hit and 2.5 for a miss.
//! - The index hashes the key with SipHash-1-3 (Aumasson and Bernstein), keyed with
//!   `k0 = seed` and `k1 = splitmix64(seed)`, so that without the seed a sender cannot
//!   aim fragments at one probe chain. Give it a random seed at start-up.

use crate::buf::PacketBuf;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::ipv4::{self, Packet};

/// Most timed-out datagrams one [`Reassembler::push`] frees before its own work.
pub const EXPIRE_PER_PUSH: usize = 4;

/// Largest IPv4 datagram (RFC 791 §3.1: the total length field is 16 bits).
const MAX_DATAGRAM: usize = 65535;

/// No context / empty index slot.
const NONE: u32 = u32::MAX;

/// Sizes and timer of a [`Reassembler`]; all fixed at construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Datagrams in progress at once.
    pub max_datagrams: usize,
    /// Fragments held per datagram.
    pub max_fragments: usize,
    /// Frame bytes (Ethernet header included, as the buffers hold them) held over all
    /// datagrams.
    pub max_bytes: usize,
    /// Lifetime of a datagram in progress, from its first fragment (ns).
    pub timeout_ns: u64,
    /// Key for the index hash (see the module doc); random in production.
    pub seed: u64,
}

/// What [`Reassembler::push`] did with a buffer.
#[derive(Debug)]
pub enum Reassembled<B> {
    /// A whole datagram: a non-fragment as it came, or a reassembled one.
    Complete(B),
    /// The fragment is held until its datagram completes, times out or is dropped.
    Held,
    /// The fragment was freed (with, for some reasons, its whole datagram).
    Dropped(ReassemblyDrop),
}

/// Why reassembly freed a buffer. The discriminant indexes
/// [`ReassemblyCounters::dropped`]; [`ReassemblyDrop::name`] is a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReassemblyDrop {
    /// Not Ethernet + IPv4, a bad header or header checksum, or a fragment length that
    /// is zero or (MF set) not a multiple of 8. Only this fragment is dropped.
    Malformed = 0,
    /// Same offset and length as a held fragment. Only this fragment is dropped.
    Duplicate,
    /// Contradicts held fragments: partial overlap or an inconsistent end.
    Overlap,
    /// More than `max_fragments` fragments.
    TooManyFragments,
    /// Larger than 65535 bytes, or than the buffer it had to be built in.
    TooBig,
    /// RFC 1858: a TCP fragment at offset 8, or a first fragment too short for the
    /// transport header.
    TinyFragment,
    /// A new datagram while `max_datagrams` are in progress.
    TableFull,
    /// Holding the fragment would exceed `max_bytes`.
    MemoryFull,
    /// Not complete `timeout_ns` after its first fragment.
    Timeout,
    /// Complete, but the first fragment had no room and `alloc` gave no buffer.
    NoBuffer,
}

impl ReassemblyDrop {
    /// Number of reasons.
    pub const COUNT: usize = ReassemblyDrop::ALL.len();

    /// Every reason, in discriminant order.
    pub const ALL: [ReassemblyDrop; 10] = [
        ReassemblyDrop::Malformed,
        ReassemblyDrop::Duplicate,
        ReassemblyDrop::Overlap,
        ReassemblyDrop::TooManyFragments,
        ReassemblyDrop::TooBig,
        ReassemblyDrop::TinyFragment,
        ReassemblyDrop::TableFull,
        ReassemblyDrop::MemoryFull,
        ReassemblyDrop::Timeout,
        ReassemblyDrop::NoBuffer,
    ];

    /// The metric label: lower snake case, stable.
    pub const fn name(self) -> &'static str {
        match self {
            ReassemblyDrop::Malformed => "frag_malformed",
            ReassemblyDrop::Duplicate => "frag_duplicate",
            ReassemblyDrop::Overlap => "frag_overlap",
            ReassemblyDrop::TooManyFragments => "frag_too_many",
            ReassemblyDrop::TooBig => "frag_too_big",
            ReassemblyDrop::TinyFragment => "frag_tiny",
            ReassemblyDrop::TableFull => "frag_table_full",
            ReassemblyDrop::MemoryFull => "frag_memory_full",
            ReassemblyDrop::Timeout => "frag_timeout",
            ReassemblyDrop::NoBuffer => "frag_no_buffer",
        }
    }
}

/// What a [`Reassembler`] did, cumulative since [`Reassembler::new`]. Every pushed
/// buffer is in exactly one of `passed`, `fragments_reassembled`, `dropped`, the held
/// fragments or what [`Reassembler::drain`] handed out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyCounters {
    /// Non-fragments handed back unchanged.
    pub passed: u64,
    /// Datagrams reassembled.
    pub completed: u64,
    /// Fragments that went into reassembled datagrams.
    pub fragments_reassembled: u64,
    /// Buffers freed, by `ReassemblyDrop as usize`.
    pub dropped: [u64; ReassemblyDrop::COUNT],
}

impl ReassemblyCounters {
    /// Buffers freed for `reason`.
    pub fn dropped_of(&self, reason: ReassemblyDrop) -> u64 {
        self.dropped.get(reason as usize).copied().unwrap_or(0)
    }

    /// Buffers freed for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    fn add_dropped(&mut self, reason: ReassemblyDrop, n: usize) {
        if let Some(c) = self.dropped.get_mut(reason as usize) {
            *c += n as u64;
        }
    }
}

/// RFC 791 §3.2: fragments belong together when these four fields match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    src: [u8; 4],
    dst: [u8; 4],
    ident: u16,
    protocol: u8,
}

impl Key {
    fn bytes(&self) -> [u8; 11] {
        let mut b = [0u8; 11];
        b[..4].copy_from_slice(&self.src);
        b[4..8].copy_from_slice(&self.dst);
        b[8..10].copy_from_slice(&self.ident.to_be_bytes());
        b[10] = self.protocol;
        b
    }
}

/// One datagram in progress.
#[derive(Debug)]
struct Context {
    key: Key,
    hash: u64,
    /// Timed out when `now >= deadline`.
    deadline: u64,
    /// Fragments held (the first `nfrags` arena slots of this context).
    nfrags: usize,
    /// Payload bytes held.
    received: usize,
    /// Payload length of the datagram, once the last fragment arrived.
    end: Option<usize>,
    /// Highest payload end among the held fragments.
    max_end: usize,
    /// Header length of the offset-0 fragment, once it arrived.
    first_hlen: Option<usize>,
    /// Frame bytes held.
    bytes: usize,
    /// Creation-order list: older neighbour.
    prev: u32,
    /// Creation-order list: newer neighbour.
    next: u32,
}

/// One arena slot: a held fragment and its payload range in the datagram.
#[derive(Debug)]
struct Piece<B> {
    off: usize,
    end: usize,
    buf: Option<B>,
}

/// What [`classify`] learned from a fragment.
struct FragInfo {
    key: Key,
    off: usize,
    end: usize,
    more: bool,
    hlen: usize,
    /// A reason to drop the whole datagram, known from this fragment alone.
    fatal: Option<ReassemblyDrop>,
}

/// Bounded IPv4 reassembly (see the module doc).
#[derive(Debug)]
pub struct Reassembler<B> {
    cfg: ReassemblyConfig,
    contexts: Vec<Option<Context>>,
    pieces: Vec<Piece<B>>,
    index: Vec<u32>,
    mask: usize,
    free: Vec<u32>,
    /// Oldest context (creation order), or NONE.
    head: u32,
    /// Newest context, or NONE.
    tail: u32,
    len: usize,
    held_bytes: usize,
    held_fragments: usize,
    counters: ReassemblyCounters,
    k0: u64,
    k1: u64,
}

impl<B: PacketBuf> Reassembler<B> {
    /// A reassembler with every table allocated for `cfg`.
    ///
    /// # Panics
    /// When `max_datagrams × max_fragments` overflows `usize` or `max_datagrams` is
    /// `u32::MAX` or more (such tables could not be allocated anyway).
    pub fn new(cfg: ReassemblyConfig) -> Self {
        let arena = cfg
            .max_datagrams
            .checked_mul(cfg.max_fragments)
            .expect("reassembly arena too large");
        let ids = u32::try_from(cfg.max_datagrams)
            .ok()
            .filter(|&n| n < NONE)
            .expect("too many reassembly contexts");
        let slots = cfg
            .max_datagrams
            .max(1)
            .checked_next_power_of_two()
            .and_then(|p| p.checked_mul(2))
            .expect("reassembly index too large");
        Reassembler {
            cfg,
            contexts: (0..cfg.max_datagrams).map(|_| None).collect(),
            pieces: (0..arena)
                .map(|_| Piece {
                    off: 0,
                    end: 0,
                    buf: None,
                })
                .collect(),
            index: vec![NONE; slots],
            mask: slots - 1,
            // Popped from the back: context 0 is used first.
            free: (0..ids).rev().collect(),
            head: NONE,
            tail: NONE,
            len: 0,
            held_bytes: 0,
            held_fragments: 0,
            counters: ReassemblyCounters::default(),
            k0: cfg.seed,
            k1: splitmix64(cfg.seed),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReassemblyConfig {
        &self.cfg
    }

    /// Datagrams in progress.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no datagram is in progress.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Frame bytes held over all datagrams (bounded by `max_bytes`).
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Fragments held over all datagrams.
    pub fn held_fragments(&self) -> usize {
        self.held_fragments
    }

    /// Cumulative counters.
    pub fn counters(&self) -> &ReassemblyCounters {
        &self.counters
    }

    /// Takes one Ethernet + IPv4 frame received at `now_ns` (monotonic). Non-fragments
    /// come back as `Complete` untouched (not even their checksum is checked: that is
    /// the caller's pipeline's job); fragments are held, complete their datagram
    /// (`Complete` with the whole datagram) or are dropped (see the module doc).
    /// `alloc` is called at most once, only when a datagram completes and its first
    /// fragment's buffer has no room for it.
    pub fn push(
        &mut self,
        frag: B,
        now_ns: u64,
        alloc: impl FnMut() -> Option<B>,
    ) -> Reassembled<B> {
        self.expire_at_most(now_ns, EXPIRE_PER_PUSH);
        let info = match classify(frag.data()) {
            Err(r) => return self.drop_one(frag, r),
            Ok(None) => {
                self.counters.passed += 1;
                return Reassembled::Complete(frag);
            }
            Ok(Some(info)) => info,
        };
        let hash = self.hash(&info.key);
        let mut found = self.find(&info.key, hash);
        if let Some(id) = found {
            if self.ctx(id).is_some_and(|c| now_ns >= c.deadline) {
                self.drop_context(id, ReassemblyDrop::Timeout);
                found = None;
            }
        }
        if let Some(r) = info.fatal {
            if let Some(id) = found {
                self.drop_context(id, r);
            }
            return self.drop_one(frag, r);
        }
        let id = match found {
            Some(id) => id,
            None => match self.create(info.key, hash, now_ns) {
                Some(id) => id,
                None => return self.drop_one(frag, ReassemblyDrop::TableFull),
            },
        };
        if let Err(r) = self.check_insert(id, &info, frag.len()) {
            if r != ReassemblyDrop::Duplicate {
                self.drop_context(id, r);
            }
            return self.drop_one(frag, r);
        }
        self.insert(id, &info, frag);
        match self.ctx(id) {
            Some(c) if c.end == Some(c.received) => self.complete(id, alloc),
            _ => Reassembled::Held,
        }
    }

    /// Frees every datagram that has timed out at `now_ns`; returns how many fragments
    /// were freed (counted as [`ReassemblyDrop::Timeout`]). Work is proportional to the
    /// datagrams freed: they sit in creation order, which is deadline order.
    pub fn expire(&mut self, now_ns: u64) -> usize {
        self.expire_at_most(now_ns, usize::MAX)
    }

    /// Hands every held fragment to `f` (e.g. to free them at shutdown) and empties the
    /// reassembler. Not counted as drops. Returns how many.
    pub fn drain(&mut self, mut f: impl FnMut(B)) -> usize {
        let mut n = 0;
        while self.ctx(self.head).is_some() {
            let id = self.head;
            let base = self.base(id);
            let held = self.ctx(id).map_or(0, |c| c.nfrags);
            if let Some(run) = self.pieces.get_mut(base..base + held) {
                for p in run {
                    if let Some(b) = p.buf.take() {
                        f(b);
                        n += 1;
                    }
                }
            }
            self.remove_context(id);
        }
        n
    }

    fn expire_at_most(&mut self, now_ns: u64, max: usize) -> usize {
        let mut freed = 0;
        for _ in 0..max {
            let id = self.head;
            match self.ctx(id) {
                Some(c) if now_ns >= c.deadline => {
                    freed += self.drop_context(id, ReassemblyDrop::Timeout);
                }
                _ => break,
            }
        }
        freed
    }

    fn ctx(&self, id: u32) -> Option<&Context> {
        self.contexts.get(id as usize)?.as_ref()
    }

    fn ctx_mut(&mut self, id: u32) -> Option<&mut Context> {
        self.contexts.get_mut(id as usize)?.as_mut()
    }

    /// First arena slot of context `id`.
    fn base(&self, id: u32) -> usize {
        // Cannot overflow: id < max_datagrams and new() checked the product.
        id as usize * self.cfg.max_fragments
    }

    fn hash(&self, key: &Key) -> u64 {
        siphash::<1, 3>(self.k0, self.k1, &key.bytes())
    }

    fn find(&self, key: &Key, hash: u64) -> Option<u32> {
        let mut i = hash as usize & self.mask;
        for _ in 0..self.index.len() {
            let id = *self.index.get(i)?;
            if id == NONE {
                return None;
            }
            if self
                .ctx(id)
                .is_some_and(|c| c.hash == hash && c.key == *key)
            {
                return Some(id);
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// A new, empty context at the tail of the creation order; `None` when full.
    fn create(&mut self, key: Key, hash: u64, now_ns: u64) -> Option<u32> {
        let id = self.free.pop()?;
        let mut i = hash as usize & self.mask;
        let mut placed = false;
        for _ in 0..self.index.len() {
            match self.index.get_mut(i) {
                Some(slot) if *slot == NONE => {
                    *slot = id;
                    placed = true;
                    break;
                }
                Some(_) => i = (i + 1) & self.mask,
                None => break,
            }
        }
        let slot = self.contexts.get_mut(id as usize);
        let Some(slot) = slot.filter(|_| placed) else {
            // Unreachable: the index is at most half full and id < max_datagrams.
            self.free.push(id);
            return None;
        };
        *slot = Some(Context {
            key,
            hash,
            deadline: now_ns.saturating_add(self.cfg.timeout_ns),
            nfrags: 0,
            received: 0,
            end: None,
            max_end: 0,
            first_hlen: None,
            bytes: 0,
            prev: self.tail,
            next: NONE,
        });
        let tail = self.tail;
        match self.ctx_mut(tail) {
            Some(t) => t.next = id,
            None => self.head = id,
        }
        self.tail = id;
        self.len += 1;
        Some(id)
    }

    /// Whether `info` (of a frame of `frame_len` bytes) may join context `id`.
    fn check_insert(
        &self,
        id: u32,
        info: &FragInfo,
        frame_len: usize,
    ) -> Result<(), ReassemblyDrop> {
        let c = self.ctx(id).ok_or(ReassemblyDrop::TableFull)?;
        let base = self.base(id);
        let held = self
            .pieces
            .get(base..base + c.nfrags)
            .ok_or(ReassemblyDrop::TableFull)?;
        let pos = held.partition_point(|p| p.off < info.off);
        let next = held.get(pos);
        if next.is_some_and(|p| p.off == info.off && p.end == info.end) {
            return Err(ReassemblyDrop::Duplicate);
        }
        let prev_overlaps = pos
            .checked_sub(1)
            .and_then(|i| held.get(i))
            .is_some_and(|p| p.end > info.off);
        if prev_overlaps || next.is_some_and(|p| info.end > p.off) {
            return Err(ReassemblyDrop::Overlap);
        }
        let end = if info.more {
            // More data must follow this fragment's end.
            if c.end.is_some_and(|e| info.end >= e) {
                return Err(ReassemblyDrop::Overlap);
            }
            c.end
        } else {
            if c.end.is_some_and(|e| e != info.end) || c.max_end > info.end {
                return Err(ReassemblyDrop::Overlap);
            }
            Some(info.end)
        };
        let hlen = if info.off == 0 {
            Some(info.hlen)
        } else {
            c.first_hlen
        };
        if let (Some(h), Some(e)) = (hlen, end) {
            if h + e > MAX_DATAGRAM {
                return Err(ReassemblyDrop::TooBig);
            }
        }
        if c.nfrags >= self.cfg.max_fragments {
            return Err(ReassemblyDrop::TooManyFragments);
        }
        if self.held_bytes + frame_len > self.cfg.max_bytes {
            return Err(ReassemblyDrop::MemoryFull);
        }
        Ok(())
    }

    /// Adds a fragment that [`Self::check_insert`] accepted, keeping offset order.
    fn insert(&mut self, id: u32, info: &FragInfo, frag: B) {
        let base = self.base(id);
        let len = frag.len();
        let Some(c) = self.contexts.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        let Some(run) = self.pieces.get_mut(base..base + c.nfrags + 1) else {
            return;
        };
        let pos = run
            .get(..c.nfrags)
            .map_or(0, |held| held.partition_point(|p| p.off < info.off));
        if let Some(last) = run.last_mut() {
            *last = Piece {
                off: info.off,
                end: info.end,
                buf: Some(frag),
            };
        }
        if let Some(tail) = run.get_mut(pos..) {
            tail.rotate_right(1);
        }
        c.nfrags += 1;
        c.received += info.end - info.off;
        c.max_end = c.max_end.max(info.end);
        c.bytes += len;
        if !info.more {
            c.end = Some(info.end);
        }
        if info.off == 0 {
            c.first_hlen = Some(info.hlen);
        }
        self.held_bytes += len;
        self.held_fragments += 1;
    }

    /// Builds the datagram of complete context `id` and removes the context.
    fn complete(&mut self, id: u32, mut alloc: impl FnMut() -> Option<B>) -> Reassembled<B> {
        let base = self.base(id);
        let (n, end, hlen) = match self.ctx(id) {
            Some(c) => (c.nfrags, c.end.unwrap_or(0), c.first_hlen.unwrap_or(0)),
            None => return Reassembled::Held,
        };
        let eth = ethernet::HEADER_LEN;
        let total = eth + hlen + end;
        let Some(first) = self.pieces.get_mut(base) else {
            return Reassembled::Held;
        };
        // Ethernet header, IP header and payload of the offset-0 fragment.
        let keep = eth + hlen + first.end;
        let Some(mut out) = first.buf.take() else {
            return self.fail(id, ReassemblyDrop::Malformed);
        };
        let surplus = out.len().saturating_sub(keep);
        if !(out.len() >= keep && out.trim(surplus) && out.append(total - keep)) {
            let Some(mut fresh) = alloc() else {
                first.buf = Some(out);
                return self.fail(id, ReassemblyDrop::NoBuffer);
            };
            let len = fresh.len();
            let copied = fresh.trim(len)
                && fresh.append(total)
                && match (fresh.data_mut().get_mut(..keep), out.data().get(..keep)) {
                    (Some(d), Some(s)) => {
                        d.copy_from_slice(s);
                        true
                    }
                    _ => false,
                };
            first.buf = Some(out);
            if !copied {
                return self.fail(id, ReassemblyDrop::TooBig);
            }
            out = fresh;
        }
        let payload_at = eth + hlen;
        let mut ok = true;
        for p in self.pieces.get(base + 1..base + n).unwrap_or(&[]) {
            let src = p.buf.as_ref().and_then(|b| {
                let d = b.data();
                let h = usize::from(d.get(eth)? & 0x0f) * 4;
                d.get(eth + h..eth + h + (p.end - p.off))
            });
            let dst = out
                .data_mut()
                .get_mut(payload_at + p.off..payload_at + p.end);
            match (src, dst) {
                (Some(s), Some(d)) => d.copy_from_slice(s),
                _ => ok = false,
            }
        }
        match out.data_mut().get_mut(eth..) {
            Some(ip) if ok && ip.len() >= hlen + end && hlen >= ipv4::MIN_HEADER_LEN => {
                let mut ip = Packet::new_unchecked(ip);
                // hlen + end <= 65535: check_insert refused anything larger.
                ip.set_total_len((hlen + end) as u16);
                ip.set_flags_frag(ip.dont_frag(), false, 0);
                ip.fill_checksum();
            }
            // Unreachable: every held fragment was validated by classify().
            _ => {
                drop(out);
                return self.fail(id, ReassemblyDrop::Malformed);
            }
        }
        self.counters.completed += 1;
        self.counters.fragments_reassembled += n as u64;
        self.remove_context(id);
        Reassembled::Complete(out)
    }

    /// Drops context `id` for `reason` while completing it.
    fn fail(&mut self, id: u32, reason: ReassemblyDrop) -> Reassembled<B> {
        self.drop_context(id, reason);
        Reassembled::Dropped(reason)
    }

    /// Frees one buffer that never joined a context.
    fn drop_one(&mut self, frag: B, reason: ReassemblyDrop) -> Reassembled<B> {
        drop(frag);
        self.counters.add_dropped(reason, 1);
        Reassembled::Dropped(reason)
    }

    /// Frees context `id` and its fragments, counting them under `reason`. Returns how
    /// many fragments were freed.
    fn drop_context(&mut self, id: u32, reason: ReassemblyDrop) -> usize {
        let freed = self.remove_context(id);
        self.counters.add_dropped(reason, freed);
        freed
    }

    /// Unlinks context `id` from the index, the creation order and the held totals,
    /// and frees (drops) whatever fragments remain in its slots. Returns how many.
    fn remove_context(&mut self, id: u32) -> usize {
        let Some(c) = self.contexts.get_mut(id as usize).and_then(Option::take) else {
            return 0;
        };
        let base = self.base(id);
        let mut freed = 0;
        if let Some(run) = self.pieces.get_mut(base..base + c.nfrags) {
            for p in run {
                if p.buf.take().is_some() {
                    freed += 1;
                }
            }
        }
        self.held_bytes = self.held_bytes.saturating_sub(c.bytes);
        self.held_fragments = self.held_fragments.saturating_sub(c.nfrags);
        match self.ctx_mut(c.prev) {
            Some(p) => p.next = c.next,
            None => self.head = c.next,
        }
        match self.ctx_mut(c.next) {
            Some(nx) => nx.prev = c.prev,
            None => self.tail = c.prev,
        }
        self.unindex(id, c.hash);
        self.free.push(id);
        self.len = self.len.saturating_sub(1);
        freed
    }

    /// Removes `id` from the index and closes the gap by backward shifting (Knuth,
    /// TAOCP vol. 3 §6.4, Algorithm R).
    fn unindex(&mut self, id: u32, hash: u64) {
        let mut hole = hash as usize & self.mask;
        let mut found = false;
        for _ in 0..self.index.len() {
            match self.index.get(hole) {
                Some(&x) if x == id => {
                    found = true;
                    break;
                }
                Some(&x) if x != NONE => hole = (hole + 1) & self.mask,
                _ => break,
            }
        }
        if !found {
            return;
        }
        if let Some(s) = self.index.get_mut(hole) {
            *s = NONE;
        }
        let mut j = hole;
        for _ in 0..self.index.len() {
            j = (j + 1) & self.mask;
            let Some(&moved) = self.index.get(j).filter(|&&x| x != NONE) else {
                break;
            };
            // Contexts in the index are live (removed ones are unindexed here first).
            let home = self
                .contexts
                .get(moved as usize)
                .and_then(Option::as_ref)
                .map_or(j, |c| c.hash as usize & self.mask);
            // The entry at `j` may move into `hole` when `hole` lies on its probe path.
            if j.wrapping_sub(home) & self.mask >= j.wrapping_sub(hole) & self.mask {
                if let Some(h) = self.index.get_mut(hole) {
                    *h = moved;
                }
                if let Some(s) = self.index.get_mut(j) {
                    *s = NONE;
                }
                hole = j;
            }
        }
    }
}

/// Minimal transport header a first fragment must carry (RFC 1858 §3.2), by protocol.
fn min_transport_header(protocol: u8) -> usize {
    match protocol {
        ipv4::protocol::TCP => 20,
        ipv4::protocol::UDP | ipv4::protocol::ICMP => 8,
        _ => 0,
    }
}

/// `Ok(None)` for a valid non-fragment, the fragment's facts for a fragment, or why it
/// is malformed.
fn classify(frame: &[u8]) -> Result<Option<FragInfo>, ReassemblyDrop> {
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| ReassemblyDrop::Malformed)?;
    if eth.ethertype() != ethertype::IPV4 {
        return Err(ReassemblyDrop::Malformed);
    }
    let ip = frame
        .get(ethernet::HEADER_LEN..)
        .and_then(|b| Packet::new_checked(b).ok())
        .ok_or(ReassemblyDrop::Malformed)?;
    if !ip.is_fragment() {
        return Ok(None);
    }
    if !ip.verify_checksum() {
        return Err(ReassemblyDrop::Malformed);
    }
    let hlen = ip.header_len();
    let len = ip.payload().len();
    let off = usize::from(ip.frag_offset());
    let more = ip.more_frags();
    if len == 0 || (more && len % 8 != 0) {
        return Err(ReassemblyDrop::Malformed);
    }
    let end = off + len;
    let protocol = ip.protocol();
    let fatal = if end + ipv4::MIN_HEADER_LEN > MAX_DATAGRAM {
        Some(ReassemblyDrop::TooBig)
    } else if (protocol == ipv4::protocol::TCP && off == 8)
        || (off == 0 && len < min_transport_header(protocol))
    {
        Some(ReassemblyDrop::TinyFragment)
    } else {
        None
    };
    Ok(Some(FragInfo {
        key: Key {
            src: ip.src().octets(),
            dst: ip.dst().octets(),
            ident: ip.ident(),
            protocol,
        },
        off,
        end,
        more,
        hlen,
        fatal,
    }))
}

/// splitmix64's output function (Steele, Lea, Flood 2014): derives the second SipHash
/// key word from the seed.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SipHash-C-D (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012) of
/// `msg` under the 128-bit key `(k0, k1)`; C = 1, D = 3 is what std's `HashMap` uses.
fn siphash<const C: usize, const D: usize>(k0: u64, k1: u64, msg: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let compress = |v: &mut [u64; 4], m: u64| {
        v[3] ^= m;
        for _ in 0..C {
            round(v);
        }
        v[0] ^= m;
    };
    let mut chunks = msg.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        compress(&mut v, u64::from_le_bytes(w));
    }
    let mut w = [0u8; 8];
    let rest = chunks.remainder();
    if let Some(dst) = w.get_mut(..rest.len()) {
        dst.copy_from_slice(rest);
    }
    w[7] = msg.len() as u8;
    compress(&mut v, u64::from_le_bytes(w));
    v[2] ^= 0xff;
    for _ in 0..D {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::pipeline::fragment::fragment;
    use crate::pipeline::fragment::tests::{datagram, frame, Counted, DATAGRAM, ETH, FRAG0, FRAG1};
    use proptest::prelude::*;
    use std::cell::Cell;
    use std::rc::Rc;

    const UDP: u8 = ipv4::protocol::UDP;
    const TCP: u8 = ipv4::protocol::TCP;

    fn cfg() -> ReassemblyConfig {
        ReassemblyConfig {
            max_datagrams: 4,
            max_fragments: 16,
            max_bytes: 1 << 20,
            timeout_ns: 1000,
            seed: 42,
        }
    }

    fn big() -> Option<VecBuf> {
        Some(VecBuf::with_room(&[], 0, 70_000))
    }

    /// A fragment: 20-byte header, 192.0.2.1 -> 198.51.100.7, TTL 64.
    fn piece(ident: u16, proto: u8, off: usize, more: bool, payload: &[u8]) -> VecBuf {
        let mut ip = vec![0u8; 20 + payload.len()];
        ip[20..].copy_from_slice(payload);
        let total = ip.len() as u16;
        let mut p = Packet::new_unchecked(&mut ip[..]);
        p.set_version_ihl(20);
        p.set_total_len(total);
        p.set_ident(ident);
        p.set_flags_frag(false, more, off as u16);
        p.set_ttl(64);
        p.set_protocol(proto);
        p.set_src([192, 0, 2, 1].into());
        p.set_dst([198, 51, 100, 7].into());
        p.fill_checksum();
        frame(&ip)
    }

    fn held<B>(r: Reassembled<B>) -> bool {
        matches!(r, Reassembled::Held)
    }

    fn dropped<B>(r: Reassembled<B>) -> Option<ReassemblyDrop> {
        match r {
            Reassembled::Dropped(d) => Some(d),
            _ => None,
        }
    }

    fn complete<B>(r: Reassembled<B>) -> Option<B> {
        match r {
            Reassembled::Complete(b) => Some(b),
            _ => None,
        }
    }

    fn whole(ip: &[u8]) -> Vec<u8> {
        let mut v = ETH.to_vec();
        v.extend_from_slice(ip);
        v
    }

    #[test]
    fn reassembles_the_hand_made_example_in_place() {
        for order in [[0, 1], [1, 0]] {
            let mut r = Reassembler::new(cfg());
            let frags = [frame(&FRAG0), frame(&FRAG1)];
            let mut calls = 0;
            let [a, b] = order.map(|i| frags[i].clone());
            assert!(held(r.push(a, 0, || None)));
            assert_eq!(
                (r.len(), r.held_fragments(), r.held_bytes()),
                (1, 1, r.held_bytes())
            );
            let out = complete(r.push(b, 1, || {
                calls += 1;
                None
            }))
            .unwrap();
            assert_eq!(out.data(), &whole(&DATAGRAM)[..]);
            assert_eq!(calls, 0, "the first fragment's tailroom was enough");
            assert_eq!((r.len(), r.held_fragments(), r.held_bytes()), (0, 0, 0));
            let c = r.counters();
            assert_eq!(
                (c.completed, c.fragments_reassembled, c.dropped_total()),
                (1, 2, 0)
            );
        }
    }

    #[test]
    fn builds_in_an_allocated_buffer_when_the_first_has_no_room() {
        let mut r = Reassembler::new(cfg());
        let tight = |b: &[u8]| VecBuf::with_room(&whole(b), 0, 14 + b.len());
        // Ethernet padding after the first fragment is cut, not copied.
        let mut first = whole(&FRAG0);
        first.extend_from_slice(&[0xaa; 6]);
        let first = VecBuf::with_room(&first, 0, first.len());
        assert!(held(r.push(tight(&FRAG1), 0, || None)));
        let out = complete(r.push(first, 0, || Some(VecBuf::from_slice(&[7; 99])))).unwrap();
        assert_eq!(out.data(), &whole(&DATAGRAM)[..]);
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn non_fragments_pass_unchanged() {
        let mut r = Reassembler::<VecBuf>::new(cfg());
        let mut bad = DATAGRAM;
        bad[11] ^= 0xff; // not even the checksum is ours to judge
        for ip in [&DATAGRAM[..], &bad[..]] {
            let out = complete(r.push(frame(ip), 0, || None)).unwrap();
            assert_eq!(out.data(), &whole(ip)[..]);
        }
        assert_eq!(r.counters().passed, 2);
        assert!(r.is_empty());
    }

    #[test]
    fn malformed_fragments_are_dropped_alone() {
        let mut r = Reassembler::new(cfg());
        assert!(held(r.push(piece(1, UDP, 0, true, &[0; 16]), 0, || None)));
        let mut bad = piece(1, UDP, 16, false, &[0; 8]);
        bad.data_mut()[14 + 11] ^= 1;
        let mut arp = piece(1, UDP, 16, false, &[0; 8]);
        arp.data_mut()[13] = 6;
        let cases = [
            bad,
            arp,
            piece(1, UDP, 16, true, &[0; 12]), // MF and not a multiple of 8
            piece(1, UDP, 16, false, &[]),     // zero length
            VecBuf::from_slice(&ETH),
            VecBuf::from_slice(&[0; 5]),
        ];
        let n = cases.len() as u64;
        for f in cases {
            assert_eq!(
                dropped(r.push(f, 0, || None)),
                Some(ReassemblyDrop::Malformed)
            );
        }
        assert_eq!(r.counters().dropped_of(ReassemblyDrop::Malformed), n);
        assert_eq!((r.len(), r.held_fragments()), (1, 1));
        let out = complete(r.push(piece(1, UDP, 16, false, &[5; 8]), 0, || None)).unwrap();
        assert_eq!(out.len(), 14 + 20 + 24);
    }

    #[test]
    fn duplicate_is_dropped_alone() {
        let mut r = Reassembler::new(cfg());
        assert!(held(r.push(piece(1, UDP, 0, true, &[1; 16]), 0, || None)));
        assert_eq!(
            dropped(r.push(piece(1, UDP, 0, true, &[1; 16]), 0, || None)),
            Some(ReassemblyDrop::Duplicate)
        );
        assert_eq!((r.len(), r.held_fragments()), (1, 1));
        assert!(held(r.push(piece(1, UDP, 24, false, &[3; 8]), 0, || None)));
        assert_eq!(
            dropped(r.push(piece(1, UDP, 24, false, &[3; 8]), 0, || None)),
            Some(ReassemblyDrop::Duplicate)
        );
        let out = complete(r.push(piece(1, UDP, 16, true, &[2; 8]), 0, || None)).unwrap();
        assert_eq!(
            &out.data()[34..],
            &[[1u8; 16].as_slice(), &[2; 8], &[3; 8]].concat()[..]
        );
        assert_eq!(r.counters().dropped_of(ReassemblyDrop::Duplicate), 2);
    }

    #[test]
    fn any_overlap_drops_the_whole_datagram() {
        // (held fragments, the offender)
        type P = (usize, bool, usize);
        let cases: [(&[P], P); 7] = [
            (&[(0, true, 16)], (8, true, 16)),   // overlaps the tail
            (&[(16, true, 16)], (8, true, 16)),  // overlaps the head
            (&[(16, false, 8)], (0, true, 24)),  // runs into the last one
            (&[(8, true, 8)], (0, true, 32)),    // covers one
            (&[(32, false, 8)], (48, false, 8)), // a second, later end
            (&[(32, false, 8)], (40, true, 8)),  // MF at the end
            (&[(0, true, 16), (48, false, 8)], (16, false, 8)), // ends before held data
        ];
        for (held_frags, (off, more, len)) in cases {
            let mut r = Reassembler::new(cfg());
            for &(o, m, l) in held_frags {
                assert!(held(r.push(piece(9, UDP, o, m, &vec![0; l]), 0, || None)));
            }
            let got = r.push(piece(9, UDP, off, more, &vec![0; len]), 0, || None);
            assert_eq!(
                dropped(got),
                Some(ReassemblyDrop::Overlap),
                "{held_frags:?}"
            );
            assert_eq!((r.len(), r.held_fragments(), r.held_bytes()), (0, 0, 0));
            assert_eq!(
                r.counters().dropped_of(ReassemblyDrop::Overlap),
                held_frags.len() as u64 + 1
            );
        }
    }

    #[test]
    fn too_many_fragments() {
        let mut r = Reassembler::new(ReassemblyConfig {
            max_fragments: 2,
            ..cfg()
        });
        assert!(held(r.push(piece(1, UDP, 0, true, &[0; 8]), 0, || None)));
        assert!(held(r.push(piece(1, UDP, 8, true, &[0; 8]), 0, || None)));
        assert_eq!(
            dropped(r.push(piece(1, UDP, 16, false, &[0; 8]), 0, || None)),
            Some(ReassemblyDrop::TooManyFragments)
        );
        assert_eq!(r.counters().dropped_of(ReassemblyDrop::TooManyFragments), 3);
        assert!(r.is_empty());
    }

    #[test]
    fn too_big() {
        let mut r = Reassembler::new(cfg());
        // Ends past 65515: no 20-byte header fits in front (RFC 791 §3.1).
        assert!(held(r.push(piece(1, UDP, 0, true, &[0; 8]), 0, || None)));
        assert_eq!(
            dropped(r.push(piece(1, UDP, 65504, false, &[0; 16]), 0, || None)),
            Some(ReassemblyDrop::TooBig)
        );
        assert_eq!(r.counters().dropped_of(ReassemblyDrop::TooBig), 2);
        // Ends at 65480, fine for a 20-byte header but not for the first fragment's 60.
        let opts = [0x94, 4, 0, 0].repeat(10);
        let first = datagram(&[0; 16], &opts, 64, 2, UDP);
        let mut first = first.clone();
        let mut p = Packet::new_checked(&mut first[..]).unwrap();
        p.set_flags_frag(false, true, 0);
        p.fill_checksum();
        assert!(held(r.push(
            piece(2, UDP, 65472, false, &[0; 8]),
            0,
            || None
        )));
        assert_eq!(
            dropped(r.push(frame(&first), 0, || None)),
            Some(ReassemblyDrop::TooBig)
        );
        // Larger than the buffer it has to be built in: 2200 bytes into 2048.
        let ip = datagram(&[7; 2180], &[], 64, 3, UDP);
        let mut frags = Vec::new();
        let n = fragment(
            frame(&ip),
            1500,
            || Some(VecBuf::from_slice(&[])),
            |b| {
                let tight = VecBuf::with_room(b.data(), 0, b.len());
                frags.push(tight);
            },
        );
        assert_eq!(n, Ok(2));
        let mut fresh = 0;
        let mut it = frags.into_iter();
        assert!(held(r.push(it.next().unwrap(), 0, || None)));
        let got = r.push(it.next().unwrap(), 0, || {
            fresh += 1;
            Some(VecBuf::with_room(&[], 128, VecBuf::CAPACITY))
        });
        assert_eq!((dropped(got), fresh), (Some(ReassemblyDrop::TooBig), 1));
        assert_eq!(r.counters().dropped_of(ReassemblyDrop::TooBig), 2 + 2 + 2);
        assert!(r.is_empty());
    }

    #[test]
    fn no_buffer() {
        let mut r = Reassembler::new(cfg());
        let tight = |b: &[u8]| VecBuf::with_room(&whole(b), 0, 14 + b.len());
        assert!(held(r.push(tight(&FRAG0), 0, || None)));
        assert_eq!(
            dropped(r.push(tight(&FRAG1), 0, || None)),
            Some(ReassemblyDrop::NoBuffer)
        );
        assert_eq!(r.counters().dropped_of(ReassemblyDrop::NoBuffer), 2);
        assert!(r.is_empty());
    }

    #[test]
    fn tiny_fragments_rfc1858() {
        let mut r = Reassembler::new(cfg());
        // TCP at offset 8 could rewrite the flags of the first fragment's header.
        assert!(held(r.push(piece(1, TCP, 16, false, &[0; 8]), 0, || None)));
        assert_eq!(
            dropped(r.push(piece(1, TCP, 8, true, &[0; 8]), 0, || None)),
            Some(ReassemblyDrop::TinyFragment)
        );
        assert_eq!(r.counters().dropped_of(ReassemblyDrop::TinyFragment), 2);
        assert!(r.is_empty());
        // A first TCP fragment of 16 bytes cannot hold the 20-byte header.
        assert_eq!(
            dropped(r.push(piece(2, TCP, 0, true, &[0; 16]), 0, || None)),
            Some(ReassemblyDrop::TinyFragment)
        );
        // UDP's 8-byte header fits in 8 bytes; offset 8 is fine for UDP.
        assert!(held(r.push(piece(3, UDP, 0, true, &[0; 8]), 0, || None)));
        assert!(held(r.push(piece(3, UDP, 8, true, &[0; 8]), 0, || None)));
        assert!(held(r.push(piece(4, TCP, 0, true, &[0; 24]), 0, || None)));
    }

    #[test]
    fn timeout() {
        let mut r = Reassembler::new(cfg());
        assert!(held(r.push(piece(1, UDP, 0, true, &[0; 8]), 0, || None)));
        assert!(held(r.push(piece(2, UDP, 0, true, &[0; 8]), 500, || None)));
        // A later fragment does not extend the timer.
        assert!(held(r.push(piece(1, UDP, 16, true, &[0; 8]), 900, || None)));
        assert_eq!(r.expire(999), 0);
        assert_eq!(r.expire(1000), 2);
        assert_eq!(r.len(), 1);
        assert_eq!(r.counters().dropped_of(ReassemblyDrop::Timeout), 2);
        // The missing piece of a timed-out datagram starts a new one (and push itself
        // expires datagram 2 first).
        assert!(held(
            r.push(piece(2, UDP, 8, false, &[0; 8]), 1500, || None)
        ));
        assert_eq!(r.len(), 1);
        assert_eq!(r.counters().dropped_of(ReassemblyDrop::Timeout), 3);
        // Matched but timed out: dropped even when push's bounded expiry has not run.
        let mut r = Reassembler::new(cfg());
        assert!(held(r.push(piece(1, UDP, 0, true, &[0; 8]), 0, || None)));
        assert!(held(
            r.push(piece(1, UDP, 8, false, &[0; 8]), 1000, || None)
        ));
        assert_eq!((r.len(), r.held_fragments()), (1, 1));
        assert_eq!(r.counters().dropped_of(ReassemblyDrop::Timeout), 1);
    }

    #[test]
    fn table_full_refuses_new_datagrams_only() {
        let mut r = Reassembler::new(ReassemblyConfig {
            max_datagrams: 2,
            ..cfg()
        });
        assert!(held(r.push(piece(1, UDP, 0, true, &[1; 8]), 0, || None)));
        assert!(held(r.push(piece(2, UDP, 0, true, &[2; 8]), 0, || None)));
        assert_eq!(
            dropped(r.push(piece(3, UDP, 0, true, &[3; 8]), 0, || None)),
            Some(ReassemblyDrop::TableFull)
        );
        assert!(complete(r.push(piece(2, UDP, 8, false, &[2; 8]), 0, || None)).is_some());
        assert!(held(r.push(piece(3, UDP, 0, true, &[3; 8]), 0, || None)));
        assert!(complete(r.push(piece(1, UDP, 8, false, &[1; 8]), 0, || None)).is_some());
        assert!(complete(r.push(piece(3, UDP, 8, false, &[3; 8]), 0, || None)).is_some());
        assert_eq!(r.counters().completed, 3);
        assert_eq!(r.counters().dropped_of(ReassemblyDrop::TableFull), 1);
    }

    #[test]
    fn memory_full() {
        // Each frame is 14 + 20 + 16 = 50 bytes.
        let mut r = Reassembler::new(ReassemblyConfig {
            max_bytes: 100,
            ..cfg()
        });
        assert!(held(r.push(piece(1, UDP, 0, true, &[0; 16]), 0, || None)));
        assert!(held(r.push(piece(1, UDP, 16, true, &[0; 16]), 0, || None)));
        assert_eq!(r.held_bytes(), 100);
        assert_eq!(
            dropped(r.push(piece(2, UDP, 0, true, &[0; 16]), 0, || None)),
            Some(ReassemblyDrop::MemoryFull)
        );
        assert_eq!((r.len(), r.held_bytes()), (1, 100));
        // A datagram that cannot take its next fragment can never complete: freed.
        assert_eq!(
            dropped(r.push(piece(1, UDP, 32, false, &[0; 16]), 0, || None)),
            Some(ReassemblyDrop::MemoryFull)
        );
        assert_eq!((r.len(), r.held_bytes()), (0, 0));
        assert_eq!(r.counters().dropped_of(ReassemblyDrop::MemoryFull), 4);
        assert!(held(r.push(piece(2, UDP, 0, true, &[0; 16]), 0, || None)));
    }

    #[test]
    fn drain_hands_out_every_held_buffer() {
        let mut r = Reassembler::new(cfg());
        for id in 0..3 {
            for off in [0, 16] {
                assert!(held(r.push(piece(id, UDP, off, true, &[0; 8]), 0, || None)));
            }
        }
        let mut got = Vec::new();
        assert_eq!(r.drain(|b| got.push(b)), 6);
        assert_eq!(got.len(), 6);
        assert_eq!((r.len(), r.held_fragments(), r.held_bytes()), (0, 0, 0));
        assert_eq!(r.counters().dropped_total(), 0);
        // Still usable, every context slot free again.
        for id in 0..4 {
            assert!(held(r.push(piece(id, UDP, 0, true, &[0; 8]), 0, || None)));
        }
    }

    #[test]
    fn index_survives_churn() {
        // Many short-lived datagrams through a 3-slot table: insertion and
        // backward-shift deletion in every order.
        let mut r = Reassembler::new(ReassemblyConfig {
            max_datagrams: 3,
            ..cfg()
        });
        let mut x = 7u64;
        let mut live: Vec<u16> = Vec::new();
        for step in 0..2000u64 {
            x = splitmix64(x);
            let id = (x % 64) as u16;
            if let Some(i) = live.iter().position(|&l| l == id) {
                live.swap_remove(i);
                let out = complete(r.push(piece(id, UDP, 8, false, &[id as u8; 8]), step, || None));
                let out = out.expect("held datagram completes");
                assert_eq!(
                    &out.data()[34..],
                    &[[id as u8; 8], [id as u8; 8]].concat()[..]
                );
            } else {
                let got = r.push(piece(id, UDP, 0, true, &[id as u8; 8]), step, || None);
                if live.len() < 3 {
                    assert!(held(got));
                    live.push(id);
                } else {
                    assert_eq!(dropped(got), Some(ReassemblyDrop::TableFull));
                }
            }
            assert_eq!(r.len(), live.len());
        }
    }

    /// A fragment like [`piece`] from 192.0.`src_hi`.`src_lo`.
    fn piece_from(src: [u8; 2], ident: u16, off: usize, more: bool, payload: &[u8]) -> VecBuf {
        let mut f = piece(ident, UDP, off, more, payload);
        let ip = &mut f.data_mut()[ETH.len()..];
        let mut p = Packet::new_unchecked(ip);
        p.set_src([192, 0, src[0], src[1]].into());
        p.fill_checksum();
        f
    }

    fn key_of(src: [u8; 2], ident: u16) -> Key {
        Key {
            src: [192, 0, src[0], src[1]],
            dst: [198, 51, 100, 7],
            ident,
            protocol: UDP,
        }
    }

    /// Index slots a lookup of a key in `bucket` examines before it stops at an empty
    /// one (the key absent), the empty one included: the probe chain's length.
    fn probe_len<B>(r: &Reassembler<B>, bucket: usize) -> usize {
        let mut n = 1;
        while r.index[(bucket + n - 1) & r.mask] != NONE {
            n += 1;
        }
        n
    }

    /// Tracker issue 7, "fragment keys: colliding". With the seed known (it is random
    /// per process in production, `roles.rs`), an attacker can compute keys that all
    /// land in one index bucket. This test does so for the production sizes and shows
    /// what the caps still guarantee: the table and memory stay at their caps, every
    /// refused fragment is counted, a lookup walks at most the `max_datagrams` entries
    /// of the one cluster and stops, datagrams in progress (colliding ones too)
    /// complete, new datagrams are refused while the table is full (the documented
    /// policy: no eviction) and reassembled once the flood's contexts time out, and
    /// the index is whole again after the cluster is deleted.
    #[test]
    fn colliding_key_flood_with_a_known_seed() {
        // [engine] defaults: 1024 contexts, 64 fragments, 4 MiB, 5 s.
        let cfg = ReassemblyConfig {
            max_datagrams: 1024,
            max_fragments: 64,
            max_bytes: 4 << 20,
            timeout_ns: 5_000_000_000,
            seed: 0x5eed_f00d_a77a_c4e5,
        };
        let mut r: Reassembler<VecBuf> = Reassembler::new(cfg);
        let mask = r.mask;
        // The datagram in progress when the flood starts; its bucket is the target.
        let early = ([1, 1], 7);
        let bucket = r.hash(&key_of(early.0, early.1)) as usize & mask;
        // Brute force: keys (source 192.0.x.y, ident) in that bucket.
        const FLOOD: usize = 5000;
        let mut colliding = Vec::with_capacity(FLOOD + 1);
        let mut tries = 0u64;
        'search: for hi in 2..=255u8 {
            for lo in 0..=255u8 {
                for ident in 0..256u16 {
                    tries += 1;
                    if r.hash(&key_of([hi, lo], ident)) as usize & mask == bucket {
                        colliding.push(([hi, lo], ident));
                        if colliding.len() == FLOOD + 1 {
                            break 'search;
                        }
                    }
                }
            }
        }
        assert_eq!(colliding.len(), FLOOD + 1);
        // One colliding key is a legitimate datagram that starts mid-flood.
        let middle = colliding.pop().unwrap();
        let (a, b) = ([0xa5; 16], [0x5a; 8]);
        let first = |k: ([u8; 2], u16)| piece_from(k.0, k.1, 0, true, &a);
        let last = |k: ([u8; 2], u16)| piece_from(k.0, k.1, 16, false, &b);
        let now = 1_000;
        let mut pushed = 0u64;
        let mut held_count = 0u64;
        let mut refused = 0u64;
        let mut longest = 0;
        assert!(held(r.push(first(early), now, || None)));
        pushed += 1;
        for (i, k) in colliding.iter().enumerate() {
            if i == 500 {
                assert!(held(r.push(first(middle), now, || None)));
                pushed += 1;
            }
            match r.push(first(*k), now, || None) {
                Reassembled::Held => held_count += 1,
                Reassembled::Dropped(ReassemblyDrop::TableFull) => refused += 1,
                other => panic!("flood fragment {i}: {other:?}"),
            }
            pushed += 1;
            assert!(r.len() <= cfg.max_datagrams);
            assert!(r.held_bytes() <= cfg.max_bytes);
            assert!(r.held_fragments() <= cfg.max_datagrams);
            longest = longest.max(probe_len(&r, bucket));
        }
        // The table filled up (2 legitimate + 1022 forged) and stayed there.
        assert_eq!(r.len(), cfg.max_datagrams);
        assert_eq!(held_count, cfg.max_datagrams as u64 - 2);
        assert_eq!(refused, FLOOD as u64 - held_count);
        assert_eq!(r.counters().dropped_of(ReassemblyDrop::TableFull), refused);
        assert_eq!(r.counters().dropped_total(), refused);
        // Every entry sits in one cluster: the longest chain there can be, and no
        // longer (the index is at most half full, so a lookup always meets an empty
        // slot).
        assert_eq!(longest, cfg.max_datagrams + 1);
        assert_eq!(probe_len(&r, bucket), cfg.max_datagrams + 1);
        // A new datagram (not colliding) while the table is full: refused and counted.
        let fresh = ([0, 9], 9);
        assert_ne!(r.hash(&key_of(fresh.0, fresh.1)) as usize & mask, bucket);
        assert_eq!(
            dropped(r.push(first(fresh), now, || None)),
            Some(ReassemblyDrop::TableFull)
        );
        pushed += 1;
        // The two colliding legitimate datagrams complete (at the head and the
        // middle of the chain), byte for byte.
        for k in [early, middle] {
            let out = complete(r.push(last(k), now, big)).expect("completes");
            pushed += 1;
            assert_eq!(&out.data()[34..], &[&a[..], &b[..]].concat()[..]);
        }
        assert_eq!(r.counters().completed, 2);
        assert_eq!(r.len(), cfg.max_datagrams - 2);
        // The index is intact after deleting from the cluster's head and middle:
        // every forged datagram held is still found (its first fragment again is a
        // duplicate, not a new datagram), a refused one is not (it is a new one now
        // that two contexts are free).
        for k in &colliding[..held_count as usize] {
            assert_eq!(
                dropped(r.push(first(*k), now, || None)),
                Some(ReassemblyDrop::Duplicate),
                "{k:?} lost from the index"
            );
            pushed += 1;
        }
        assert_eq!(r.len(), cfg.max_datagrams - 2);
        // The flood's contexts time out (5 s after their first fragment): all freed
        // and counted, the index empty again, and the new datagram goes through.
        let later = now + cfg.timeout_ns;
        let expired = r.expire(later) as u64;
        assert_eq!(expired, held_count);
        assert_eq!((r.len(), r.held_bytes(), r.held_fragments()), (0, 0, 0));
        assert!(r.index.iter().all(|&x| x == NONE));
        assert!(held(r.push(first(fresh), later, || None)));
        assert!(complete(r.push(last(fresh), later, big)).is_some());
        pushed += 2;
        // Conservation: every buffer pushed was reassembled or dropped under a reason.
        let c = r.counters();
        assert_eq!(
            c.fragments_reassembled + c.dropped_total() + r.held_fragments() as u64,
            pushed
        );
        assert_eq!(
            (
                c.dropped_of(ReassemblyDrop::TableFull),
                c.dropped_of(ReassemblyDrop::Duplicate),
                c.dropped_of(ReassemblyDrop::Timeout),
            ),
            (refused + 1, held_count, held_count)
        );
        println!(
            "colliding flood: {} keys in bucket {bucket} of {} found in {tries} hashes; \
             {FLOOD} first fragments: {held_count} held, {refused} refused (TableFull); \
             longest probe {longest} slots; 2 colliding legitimate datagrams reassembled; \
             {expired} expired after {} s",
            FLOOD + 1,
            mask + 1,
            cfg.timeout_ns / 1_000_000_000,
        );
    }

    #[test]
    fn siphash_reference_vectors() {
        // The SipHash paper, appendix A: key 00..0f, message 00..0e.
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(siphash::<2, 4>(k0, k1, &msg), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash::<2, 4>(k0, k1, &[]), 0x726f_db47_dd0e_0e31);
        // SipHash-1-3 under the zero key is std's DefaultHasher (fed raw bytes).
        use std::hash::Hasher;
        for len in 0..20u8 {
            let msg: Vec<u8> = (0..len).collect();
            #[allow(deprecated)]
            let mut h = std::collections::hash_map::DefaultHasher::new();
            h.write(&msg);
            assert_eq!(siphash::<1, 3>(0, 0, &msg), h.finish(), "len {len}");
        }
    }

    #[test]
    fn drop_reasons_index_counters() {
        for (i, r) in ReassemblyDrop::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut names: Vec<_> = ReassemblyDrop::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ReassemblyDrop::COUNT);
    }

    /// Fisher-Yates with splitmix64.
    fn shuffle<T>(v: &mut [T], mut seed: u64) {
        for i in (1..v.len()).rev() {
            seed = splitmix64(seed);
            v.swap(i, (seed % (i as u64 + 1)) as usize);
        }
    }

    proptest! {
        #[test]
        fn fragment_then_reassemble_round_trip(
            payload in proptest::collection::vec(any::<u8>(), 1..3000),
            mtu in 68u16..1500, with_opts in any::<bool>(), order in any::<u64>(),
            ttl in any::<u8>(), ident in any::<u16>(),
        ) {
            // Router Alert (copied), Record Route with one slot (not copied), NOP.
            let opts: &[u8] = if with_opts { &[0x94, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 1] } else { &[] };
            let ip = datagram(&payload, opts, ttl, ident, UDP);
            let mut frags = Vec::new();
            let n = fragment(frame(&ip), mtu, || Some(VecBuf::from_slice(&[])), |b| frags.push(b));
            prop_assert_eq!(n, Ok(frags.len()));
            shuffle(&mut frags, order);
            let mut r = Reassembler::new(ReassemblyConfig { max_fragments: 128, ..cfg() });
            let last = frags.pop().unwrap();
            for f in frags {
                prop_assert!(held(r.push(f, 0, big)));
            }
            let got = r.push(last, 0, big);
            let out = complete(got).unwrap();
            prop_assert_eq!(out.data(), &whole(&ip)[..]);
            prop_assert_eq!((r.len(), r.held_bytes(), r.held_fragments()), (0, 0, 0));
        }

        #[test]
        fn nothing_leaks(
            sizes in proptest::collection::vec((1usize..1200, any::<bool>()), 1..8),
            mtu in 68u16..600, order in any::<u64>(), dup in any::<u64>(),
            lose in any::<u64>(), tcp_tiny in any::<bool>(),
            max_datagrams in 1usize..4, max_fragments in 1usize..12,
            max_bytes in 0usize..6000, timeout_ns in 1u64..40, alloc_mode in 0u8..3,
        ) {
            let created = Rc::new(Cell::new(0usize));
            let freed = Rc::new(Cell::new(0usize));
            let wrap = |b: VecBuf| {
                created.set(created.get() + 1);
                Counted(b, freed.clone())
            };
            let mut originals = Vec::new();
            let mut frags = Vec::new();
            for (i, &(len, tcp)) in sizes.iter().enumerate() {
                let proto = if tcp { TCP } else { UDP };
                let payload: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
                let ip = datagram(&payload, &[], 64, i as u16, proto);
                originals.push(whole(&ip));
                let r = fragment(frame(&ip), mtu, || Some(VecBuf::from_slice(&[])), |b| {
                    frags.push(b)
                });
                prop_assert!(r.is_ok());
            }
            if tcp_tiny {
                frags.push(piece(0, TCP, 8, true, &[0; 8]));
            }
            // Duplicate some, lose some.
            let mut all = Vec::new();
            let (mut d, mut l) = (dup, lose);
            for f in frags {
                d = splitmix64(d);
                l = splitmix64(l);
                if d % 5 == 0 {
                    all.push(f.clone());
                }
                if l % 7 != 0 {
                    all.push(f);
                }
            }
            shuffle(&mut all, order);
            let mut r = Reassembler::new(ReassemblyConfig {
                max_datagrams, max_fragments, max_bytes, timeout_ns, seed: order,
            });
            let pushes = all.len() as u64;
            let mut outputs = Vec::new();
            for (t, f) in all.into_iter().enumerate() {
                let f = wrap(f);
                let got = r.push(f, t as u64, || match alloc_mode {
                    0 => None,
                    1 => Some(wrap(VecBuf::from_slice(&[]))),
                    _ => Some(wrap(VecBuf::with_room(&[], 0, 70_000))),
                });
                if let Reassembled::Complete(b) = got {
                    // A reassembled datagram is exactly its original.
                    let ident = usize::from(u16::from_be_bytes([b.data()[18], b.data()[19]]));
                    prop_assert_eq!(b.data(), &originals[ident][..]);
                    outputs.push(b);
                }
                prop_assert!(r.held_bytes() <= max_bytes);
                prop_assert!(r.len() <= max_datagrams);
            }
            if order % 2 == 0 {
                r.expire(u64::MAX);
            }
            let held_now = r.held_fragments() as u64;
            let mut drained = 0u64;
            r.drain(|_| drained += 1);
            prop_assert_eq!(held_now, drained);
            let c = r.counters().clone();
            prop_assert_eq!(
                pushes,
                c.passed + c.fragments_reassembled + c.dropped_total() + drained
            );
            prop_assert_eq!(outputs.len() as u64, c.completed + c.passed);
            drop(outputs);
            drop(r);
            prop_assert_eq!(created.get(), freed.get());
        }

        #[test]
        fn random_bytes_never_panic(
            frames in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..80), any::<bool>(), any::<u16>()),
                1..40),
        ) {
            let mut r = Reassembler::new(ReassemblyConfig {
                max_datagrams: 2, max_fragments: 3, max_bytes: 400, timeout_ns: 10, seed: 1,
            });
            let mut pushes = 0u64;
            let mut outs = 0u64;
            for (t, (mut data, fix, flags)) in frames.into_iter().enumerate() {
                if fix && data.len() >= 34 {
                    // Plausible Ethernet + IPv4 with few distinct keys and a good checksum.
                    data[12] = 8;
                    data[13] = 0;
                    data[14] = 0x45;
                    let t = (data.len() - 14) as u16;
                    data[16..18].copy_from_slice(&t.to_be_bytes());
                    data[18..20].copy_from_slice(&(flags & 1).to_be_bytes());
                    data[20..22].copy_from_slice(&(flags & 0x2007).to_be_bytes());
                    data[26..34].fill(1);
                    Packet::new_unchecked(&mut data[14..]).fill_checksum();
                }
                pushes += 1;
                if let Reassembled::Complete(b) = r.push(VecBuf::from_slice(&data), t as u64, || None) {
                    outs += 1;
                    prop_assert!(b.len() >= 14);
                }
            }
            let drained = r.drain(drop) as u64;
            let c = r.counters();
            prop_assert_eq!(pushes, c.passed + c.fragments_reassembled + c.dropped_total() + drained);
            prop_assert_eq!(outs, c.passed + c.completed);
        }
    }
}
