//! Neighbour table (IPv4 → MAC per port, RFC 826) and the bounded queue of packets
//! waiting for ARP to resolve their next hop.
//!
//! Both are fixed-capacity and allocate only when constructed; nothing here allocates,
//! grows or panics afterwards, so both may be used on the per-packet path.
//!
//! [`NeighbourTable`] stores static entries (configured; never expire, never overwritten
//! by ARP) and dynamic ones (learned from ARP; valid for `ttl_ns` after their last
//! refresh). A dynamic entry learned at `t` is valid while `now < t + ttl`; expired
//! entries stay in the table, invisible to [`NeighbourTable::lookup`], until they are
//! refreshed, removed or evicted to make room for a new neighbour. RFC 1122 §2.3.2.1
//! asks for such a timeout so that a stale cache entry is flushed.
//!
//! [`PendingQueue`] parks packets whose next hop is unresolved (RFC 1122 §2.3.2.2 asks to
//! keep at least one per unresolved address, and RFC 1812 §3.3.2 to rate-limit the
//! requests). It sends at most one ARP request per (port, next hop) per retry interval,
//! releases packets in arrival order once the next hop resolves, and never loses one:
//! every packet pushed leaves through exactly one of `ready`, `expired` or `drain`.
//!
//! Both tables key on (port, IPv4 address) through `FixedMap`, an open-addressing hash
//! table with linear probing over a power-of-two array at most half full. Deletion uses
//! backward shifting (Knuth, TAOCP vol. 3 §6.4, Algorithm R) instead of tombstones, so
//! probe sequences never lengthen with churn and a miss stops at the first empty slot.

use crate::addr::MacAddr;
use crate::buf::PacketBuf;
use crate::command::CommandError;
use std::net::Ipv4Addr;

/// The key of both tables: a neighbour is per port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    port: u16,
    ip: Ipv4Addr,
}

impl Key {
    /// splitmix64's finaliser over (port, ip): consecutive addresses spread evenly.
    fn hash(self) -> u64 {
        let mut z = ((u64::from(self.port) << 32) | u64::from(u32::from(self.ip)))
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A fixed-capacity hash map from [`Key`] to `V`.
///
/// Invariants: `slots.len()` is a power of two, `mask == slots.len() - 1`, and
/// `len <= capacity <= slots.len() / 2`, so there is always an empty slot and every probe
/// loop ends. Every stored key sits at or after its home slot with no empty slot in
/// between (the linear-probing invariant backward-shift deletion preserves).
#[derive(Debug)]
struct FixedMap<V> {
    slots: Vec<Option<(Key, V)>>,
    mask: usize,
    len: usize,
    capacity: usize,
}

impl<V> FixedMap<V> {
    /// A map for `capacity` keys.
    ///
    /// # Panics
    /// When `capacity` is so large that the slot array cannot be sized (over `usize::MAX / 4`);
    /// such an allocation would fail anyway.
    fn with_capacity(capacity: usize) -> Self {
        let n = capacity
            .max(1)
            .checked_next_power_of_two()
            .and_then(|p| p.checked_mul(2))
            .expect("neighbour table capacity too large");
        FixedMap {
            slots: (0..n).map(|_| None).collect(),
            mask: n - 1,
            len: 0,
            capacity,
        }
    }

    fn home(&self, key: Key) -> usize {
        (key.hash() as usize) & self.mask
    }

    /// Slot holding `key`.
    fn find(&self, key: Key) -> Option<usize> {
        let mut i = self.home(key);
        for _ in 0..self.slots.len() {
            match self.slots.get(i)? {
                None => return None,
                Some((k, _)) if *k == key => return Some(i),
                Some(_) => i = (i + 1) & self.mask,
            }
        }
        None
    }

    fn get(&self, key: Key) -> Option<&V> {
        let i = self.find(key)?;
        self.slots.get(i)?.as_ref().map(|(_, v)| v)
    }

    fn get_mut(&mut self, key: Key) -> Option<&mut V> {
        let i = self.find(key)?;
        self.slots.get_mut(i)?.as_mut().map(|(_, v)| v)
    }

    /// Inserts `key`, which the caller knows is absent. `Err(value)` when full.
    fn insert_new(&mut self, key: Key, value: V) -> Result<(), V> {
        if self.len >= self.capacity {
            return Err(value);
        }
        let mut i = self.home(key);
        for _ in 0..self.slots.len() {
            match self.slots.get_mut(i) {
                Some(slot @ None) => {
                    *slot = Some((key, value));
                    self.len += 1;
                    return Ok(());
                }
                Some(Some(_)) => i = (i + 1) & self.mask,
                None => break,
            }
        }
        // Unreachable by the invariants (there is always an empty slot).
        Err(value)
    }

    /// Removes `key` and closes the gap by shifting later entries of the cluster back.
    fn remove(&mut self, key: Key) -> Option<V> {
        let mut hole = self.find(key)?;
        let (_, value) = self.slots.get_mut(hole)?.take()?;
        self.len -= 1;
        let mut j = hole;
        for _ in 0..self.slots.len() {
            j = (j + 1) & self.mask;
            let Some(Some((k, _))) = self.slots.get(j) else {
                break;
            };
            let home = self.home(*k);
            // The entry at `j` may move into `hole` when `hole` lies on its probe path,
            // i.e. cyclically within home..=j.
            if j.wrapping_sub(home) & self.mask >= j.wrapping_sub(hole) & self.mask {
                let moved = self.slots.get_mut(j).and_then(Option::take);
                if let Some(h) = self.slots.get_mut(hole) {
                    *h = moved;
                }
                hole = j;
            }
        }
        Some(value)
    }

    fn iter(&self) -> impl Iterator<Item = (Key, &V)> {
        self.slots
            .iter()
            .filter_map(|s| s.as_ref().map(|(k, v)| (*k, v)))
    }

    fn clear(&mut self) {
        for s in &mut self.slots {
            *s = None;
        }
        self.len = 0;
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// When a neighbour entry stops being valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    /// Static: configured, never expires.
    Never,
    /// Learned: valid while `now` is before this.
    At(u64),
}

/// Which learned entry a full table may give up for a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Evict {
    /// Only one that has expired (learning from ARP).
    Expired,
    /// The one expiring first, even if still valid (a configured static entry).
    AnyLearned,
}

#[derive(Clone, Copy, Debug)]
struct Neighbour {
    mac: MacAddr,
    expiry: Expiry,
}

impl Neighbour {
    fn valid_at(&self, now_ns: u64) -> bool {
        match self.expiry {
            Expiry::Never => true,
            Expiry::At(t) => now_ns < t,
        }
    }
}

/// IPv4 → MAC per port, static and learned (see the module doc). Fixed capacity;
/// allocation-free after [`NeighbourTable::with_capacity`].
#[derive(Debug)]
pub struct NeighbourTable {
    map: FixedMap<Neighbour>,
    ttl_ns: u64,
    /// No dynamic entry expires before this (a lower bound; `u64::MAX` when there is
    /// none). Lets a full table refuse a new neighbour without scanning while nothing
    /// can have expired. Refreshing only moves an expiry later, so it stays a bound.
    earliest_expiry: u64,
}

impl NeighbourTable {
    /// A table for `capacity` neighbours whose learned entries last `ttl_ns`.
    ///
    /// # Panics
    /// When `capacity` exceeds `usize::MAX / 4` (the allocation would fail anyway).
    pub fn with_capacity(capacity: usize, ttl_ns: u64) -> Self {
        NeighbourTable {
            map: FixedMap::with_capacity(capacity),
            ttl_ns,
            earliest_expiry: u64::MAX,
        }
    }

    /// Most neighbours the table holds.
    pub fn capacity(&self) -> usize {
        self.map.capacity
    }

    /// Entries held, including expired learned ones not yet evicted.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Adds or replaces a static neighbour: it never expires and ARP never overwrites it.
    /// Replaces a learned entry for the same (port, ip). When full, evicts the learned
    /// entry that expires first, expired or not: configuration outranks the ARP cache,
    /// and an evicted neighbour is simply resolved again. `TableFull` only when every
    /// entry is static; the table is then unchanged.
    pub fn insert_static(
        &mut self,
        port: u16,
        ip: Ipv4Addr,
        mac: MacAddr,
    ) -> Result<(), CommandError> {
        let entry = Neighbour {
            mac,
            expiry: Expiry::Never,
        };
        let key = Key { port, ip };
        if let Some(n) = self.map.get_mut(key) {
            *n = entry;
            return Ok(());
        }
        self.make_room(0, Evict::AnyLearned)?;
        self.map
            .insert_new(key, entry)
            .map_err(|_| CommandError::TableFull)
    }

    /// Records that `ip` on `port` is at `mac` (from an ARP packet received at `now_ns`):
    /// inserts a learned entry or refreshes one, valid until `now_ns + ttl`. A static entry
    /// is left alone (`Ok(false)`). When full, evicts the learned entry that expired
    /// first, if any has, else `TableFull`.
    ///
    /// Returns `true` when the neighbour was absent, expired or at another MAC: i.e. when
    /// what [`NeighbourTable::lookup`] answers has changed.
    pub fn learn(
        &mut self,
        port: u16,
        ip: Ipv4Addr,
        mac: MacAddr,
        now_ns: u64,
    ) -> Result<bool, CommandError> {
        let expires = now_ns.saturating_add(self.ttl_ns);
        let key = Key { port, ip };
        if let Some(n) = self.map.get_mut(key) {
            if n.expiry == Expiry::Never {
                return Ok(false);
            }
            let changed = n.mac != mac || !n.valid_at(now_ns);
            n.mac = mac;
            n.expiry = Expiry::At(expires);
            return Ok(changed);
        }
        // Not there: a new entry, for which room may first have to be made. (Keeping an
        // expired neighbour's slot here would need a scan; eviction does it once, when full.)
        self.make_room(now_ns, Evict::Expired)?;
        let entry = Neighbour {
            mac,
            expiry: Expiry::At(expires),
        };
        self.map
            .insert_new(key, entry)
            .map_err(|_| CommandError::TableFull)?;
        self.earliest_expiry = self.earliest_expiry.min(expires);
        Ok(true)
    }

    /// The MAC of `ip` on `port`: static, or learned and not expired at `now_ns`.
    pub fn lookup(&self, port: u16, ip: Ipv4Addr, now_ns: u64) -> Option<MacAddr> {
        self.map
            .get(Key { port, ip })
            .filter(|n| n.valid_at(now_ns))
            .map(|n| n.mac)
    }

    /// Removes the entry for `ip` on `port`, static or learned (even expired).
    /// `NotFound` when there is none.
    pub fn remove(&mut self, port: u16, ip: Ipv4Addr) -> Result<(), CommandError> {
        self.map
            .remove(Key { port, ip })
            .map(|_| ())
            .ok_or(CommandError::NotFound)
    }

    /// Makes room for one new entry: `Ok` when there is room or the learned entry that
    /// expires first was evicted (under `Evict::Expired`, only if it has expired at
    /// `now_ns`). Under `Evict::Expired` the table is scanned only when full and some
    /// entry may have expired (`now_ns >= earliest_expiry`).
    fn make_room(&mut self, now_ns: u64, evict: Evict) -> Result<(), CommandError> {
        if self.map.len() < self.map.capacity {
            return Ok(());
        }
        if evict == Evict::Expired && now_ns < self.earliest_expiry {
            return Err(CommandError::TableFull);
        }
        // The earliest expiry and the next one after it.
        let mut first: Option<(Key, u64)> = None;
        let mut second = u64::MAX;
        for (k, n) in self.map.iter() {
            let Expiry::At(t) = n.expiry else {
                continue;
            };
            match first {
                Some((_, f)) if t >= f => second = second.min(t),
                _ => {
                    if let Some((_, f)) = first {
                        second = second.min(f);
                    }
                    first = Some((k, t));
                }
            }
        }
        match first {
            Some((k, t)) if evict == Evict::AnyLearned || now_ns >= t => {
                self.map.remove(k);
                self.earliest_expiry = second;
                Ok(())
            }
            Some((_, t)) => {
                self.earliest_expiry = t;
                Err(CommandError::TableFull)
            }
            None => {
                self.earliest_expiry = u64::MAX;
                Err(CommandError::TableFull)
            }
        }
    }
}

/// A parked packet.
#[derive(Debug)]
struct Parked<B> {
    buf: B,
    port: u16,
    next_hop: Ipv4Addr,
    deadline_ns: u64,
}

/// The ARP request state of one (port, next hop) with parked packets.
#[derive(Clone, Copy, Debug)]
struct Request {
    /// When the last request was sent (or the caller was told to send it).
    last_ns: u64,
    /// Parked packets waiting for this next hop (≥ 1 while the record exists).
    parked: usize,
}

/// True when a request last sent at `last_ns` may be repeated at `now_ns`: at least
/// `retry_ns` later, and never twice at the same instant (so once per poll even when
/// `retry_ns` is 0). A clock that went backwards never triggers a repeat.
fn retry_due(last_ns: u64, now_ns: u64, retry_ns: u64) -> bool {
    now_ns.saturating_sub(last_ns) >= retry_ns.max(1)
}

/// Packets waiting for their next hop's MAC. Fixed capacity, allocated once.
///
/// Invariants: `parked.len() <= capacity`; one `Request` record exists per distinct
/// (port, next hop) among the parked packets, counting them; `spare` is empty between
/// calls. Packets are kept in arrival order.
#[derive(Debug)]
pub struct PendingQueue<B> {
    parked: Vec<Parked<B>>,
    /// The other half of a double buffer: `poll` moves the packets that stay into it, then
    /// swaps, preserving order without allocating.
    spare: Vec<Parked<B>>,
    requests: FixedMap<Request>,
    capacity: usize,
    timeout_ns: u64,
    retry_ns: u64,
}

/// What [`PendingQueue::poll`] asks the engine to do.
pub trait PendingSink<B> {
    /// The packet's destination MAC is now filled in: transmit it on `port`.
    fn ready(&mut self, buf: B, port: u16);
    /// The packet waited too long: free it (counted as `NeighbourTimeout` by the queue's caller).
    fn expired(&mut self, buf: B);
    /// Send (or resend) an ARP request for `next_hop` on `port`.
    fn request(&mut self, port: u16, next_hop: Ipv4Addr);
}

impl<B: PacketBuf> PendingQueue<B> {
    /// A queue of `capacity` packets; a packet waits at most `timeout_ns`, and a request
    /// for the same next hop is repeated at most every `retry_ns`.
    ///
    /// # Panics
    /// When `capacity` exceeds `usize::MAX / 4` (the allocation would fail anyway).
    pub fn new(capacity: usize, timeout_ns: u64, retry_ns: u64) -> Self {
        PendingQueue {
            parked: Vec::with_capacity(capacity),
            spare: Vec::with_capacity(capacity),
            requests: FixedMap::with_capacity(capacity),
            capacity,
            timeout_ns,
            retry_ns,
        }
    }

    /// Parks `buf`. Returns `Err(buf)` when full. Returns `Ok(true)` when the caller
    /// should send an ARP request now (no request for this next hop is outstanding).
    ///
    /// A request is outstanding while another packet for the same (port, next hop) is
    /// parked and the last request for it is less than `retry_ns` old. On `Ok(true)` the
    /// queue records `now_ns` as the time of the request.
    pub fn push(&mut self, buf: B, port: u16, next_hop: Ipv4Addr, now_ns: u64) -> Result<bool, B> {
        if self.parked.len() >= self.capacity {
            return Err(buf);
        }
        let key = Key { port, ip: next_hop };
        let ask = match self.requests.get_mut(key) {
            Some(r) => {
                r.parked += 1;
                let due = retry_due(r.last_ns, now_ns, self.retry_ns);
                if due {
                    r.last_ns = now_ns;
                }
                due
            }
            None => {
                let first = Request {
                    last_ns: now_ns,
                    parked: 1,
                };
                // Cannot fail: there are fewer records than parked packets < capacity.
                if self.requests.insert_new(key, first).is_err() {
                    return Err(buf);
                }
                true
            }
        };
        // Within the capacity reserved in `new`: no reallocation.
        self.parked.push(Parked {
            buf,
            port,
            next_hop,
            deadline_ns: now_ns.saturating_add(self.timeout_ns),
        });
        Ok(ask)
    }

    /// Releases packets whose next hop `lookup` now resolves (writing the destination MAC),
    /// expires old ones and asks for ARP retries.
    ///
    /// For each parked packet, in arrival order: when `lookup(port, next_hop)` gives a MAC,
    /// it is written to bytes 0..6 (the Ethernet destination, skipped when the frame is
    /// shorter) and the packet goes to [`PendingSink::ready`]; else when `now_ns` has reached
    /// its deadline it goes to [`PendingSink::expired`]; else it stays, and
    /// [`PendingSink::request`] is called when the last request for its next hop is at
    /// least `retry_ns` old: at most once per next hop per poll.
    pub fn poll<S: PendingSink<B>>(
        &mut self,
        lookup: impl Fn(u16, Ipv4Addr) -> Option<MacAddr>,
        now_ns: u64,
        sink: &mut S,
    ) {
        let mut stay = std::mem::take(&mut self.spare);
        for mut p in self.parked.drain(..) {
            let key = Key {
                port: p.port,
                ip: p.next_hop,
            };
            if let Some(mac) = lookup(p.port, p.next_hop) {
                if let Some(dst) = p.buf.data_mut().get_mut(0..6) {
                    dst.copy_from_slice(&mac.0);
                }
                release(&mut self.requests, key);
                sink.ready(p.buf, p.port);
            } else if now_ns >= p.deadline_ns {
                release(&mut self.requests, key);
                sink.expired(p.buf);
            } else {
                if let Some(r) = self.requests.get_mut(key) {
                    if retry_due(r.last_ns, now_ns, self.retry_ns) {
                        r.last_ns = now_ns;
                        sink.request(p.port, p.next_hop);
                    }
                }
                // `stay` has the capacity reserved in `new`: no reallocation.
                stay.push(p);
            }
        }
        std::mem::swap(&mut self.parked, &mut stay);
        self.spare = stay;
    }

    /// Number of parked packets.
    pub fn len(&self) -> usize {
        self.parked.len()
    }

    /// True when nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.parked.is_empty()
    }

    /// Removes every parked packet (shutdown), handing each to `f`.
    pub fn drain(&mut self, mut f: impl FnMut(B)) {
        for p in self.parked.drain(..) {
            f(p.buf);
        }
        self.requests.clear();
    }
}

/// One packet for `key` left the queue: drop the request record with the last one, so
/// the next packet for that next hop asks again at once.
fn release(requests: &mut FixedMap<Request>, key: Key) {
    let last = match requests.get_mut(key) {
        Some(r) => {
            r.parked = r.parked.saturating_sub(1);
            r.parked == 0
        }
        None => false,
    };
    if last {
        requests.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
    const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
    const MAC_S: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x5a]);

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    // ---- FixedMap ----

    fn key(port: u16, ip: u32) -> Key {
        Key {
            port,
            ip: Ipv4Addr::from(ip),
        }
    }

    #[test]
    fn fixed_map_fills_to_capacity_and_survives_removal_in_any_order() {
        let mut m: FixedMap<u32> = FixedMap::with_capacity(64);
        assert_eq!(m.slots.len(), 128);
        for i in 0..64 {
            m.insert_new(key(0, i), i).unwrap();
        }
        assert_eq!(m.insert_new(key(0, 64), 64), Err(64));
        // Remove every third, then check everything else is still found.
        for i in (0..64).step_by(3) {
            assert_eq!(m.remove(key(0, i)), Some(i));
            assert_eq!(m.remove(key(0, i)), None);
        }
        for i in 0..64 {
            let expect = (i % 3 != 0).then_some(i);
            assert_eq!(m.get(key(0, i)).copied(), expect, "{i}");
        }
        assert_eq!(m.len(), 64 - 22);
        m.clear();
        assert_eq!(m.len(), 0);
        assert_eq!(m.get(key(0, 1)), None);
    }

    #[test]
    fn fixed_map_zero_capacity_is_always_full() {
        let mut m: FixedMap<u8> = FixedMap::with_capacity(0);
        assert_eq!(m.insert_new(key(0, 1), 1), Err(1));
        assert_eq!(m.get(key(0, 1)), None);
        assert_eq!(m.remove(key(0, 1)), None);
    }

    proptest! {
        /// Random inserts and removes over a small key space (long clusters, lots of
        /// backward shifting) agree with a HashMap, and the probing invariant holds.
        #[test]
        fn fixed_map_matches_hashmap(
            ops in prop::collection::vec((any::<bool>(), 0u16..2, 0u32..40, any::<u8>()), 0..300)
        ) {
            let mut m: FixedMap<u8> = FixedMap::with_capacity(32);
            let mut model: HashMap<(u16, u32), u8> = HashMap::new();
            for (ins, port, a, v) in ops {
                let k = key(port, a);
                if ins {
                    if let Some(x) = m.get_mut(k) {
                        *x = v;
                        model.insert((port, a), v);
                    } else if model.len() < 32 {
                        prop_assert!(m.insert_new(k, v).is_ok());
                        model.insert((port, a), v);
                    } else {
                        prop_assert_eq!(m.insert_new(k, v), Err(v));
                    }
                } else {
                    prop_assert_eq!(m.remove(k), model.remove(&(port, a)));
                }
                prop_assert_eq!(m.len(), model.len());
            }
            for port in 0..2 {
                for a in 0..40 {
                    prop_assert_eq!(m.get(key(port, a)).copied(), model.get(&(port, a)).copied());
                }
            }
            // No empty slot between any entry's home and its slot.
            for (i, s) in m.slots.iter().enumerate() {
                if let Some((k, _)) = s {
                    let mut j = m.home(*k);
                    while j != i {
                        prop_assert!(m.slots[j].is_some());
                        j = (j + 1) & m.mask;
                    }
                }
            }
        }
    }

    // ---- NeighbourTable ----

    #[test]
    fn static_entries_never_expire_and_ignore_arp() {
        let mut t = NeighbourTable::with_capacity(4, 100);
        t.insert_static(0, ip("10.0.0.1"), MAC_S).unwrap();
        assert_eq!(t.lookup(0, ip("10.0.0.1"), 0), Some(MAC_S));
        assert_eq!(t.lookup(0, ip("10.0.0.1"), u64::MAX), Some(MAC_S));
        assert_eq!(t.learn(0, ip("10.0.0.1"), MAC_A, 5), Ok(false));
        assert_eq!(t.lookup(0, ip("10.0.0.1"), 5), Some(MAC_S));
        // insert_static replaces a static entry's MAC.
        t.insert_static(0, ip("10.0.0.1"), MAC_B).unwrap();
        assert_eq!(t.lookup(0, ip("10.0.0.1"), 5), Some(MAC_B));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn learned_entries_expire_after_ttl_and_refresh() {
        let mut t = NeighbourTable::with_capacity(4, 100);
        let a = ip("10.0.0.2");
        assert_eq!(t.lookup(0, a, 0), None);
        assert_eq!(t.learn(0, a, MAC_A, 1000), Ok(true));
        assert_eq!(t.lookup(0, a, 1000), Some(MAC_A));
        assert_eq!(t.lookup(0, a, 1099), Some(MAC_A));
        assert_eq!(t.lookup(0, a, 1100), None);
        // Refresh with the same MAC before expiry: no change, but lives longer.
        assert_eq!(t.learn(0, a, MAC_A, 1050), Ok(false));
        assert_eq!(t.lookup(0, a, 1149), Some(MAC_A));
        assert_eq!(t.lookup(0, a, 1150), None);
        // A new MAC is a change.
        assert_eq!(t.learn(0, a, MAC_B, 1060), Ok(true));
        assert_eq!(t.lookup(0, a, 1060), Some(MAC_B));
        // Re-learning an expired entry is a change even with the same MAC.
        assert_eq!(t.learn(0, a, MAC_B, 5000), Ok(true));
        assert_eq!(t.lookup(0, a, 5000), Some(MAC_B));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn static_replaces_learned() {
        let mut t = NeighbourTable::with_capacity(4, 100);
        let a = ip("10.0.0.3");
        t.learn(0, a, MAC_A, 0).unwrap();
        t.insert_static(0, a, MAC_S).unwrap();
        assert_eq!(t.lookup(0, a, 1_000_000), Some(MAC_S));
        assert_eq!(t.learn(0, a, MAC_B, 10), Ok(false));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn ports_are_separate_and_remove_works() {
        let mut t = NeighbourTable::with_capacity(4, 100);
        let a = ip("10.0.0.4");
        t.learn(0, a, MAC_A, 0).unwrap();
        t.learn(1, a, MAC_B, 0).unwrap();
        assert_eq!(t.lookup(0, a, 1), Some(MAC_A));
        assert_eq!(t.lookup(1, a, 1), Some(MAC_B));
        assert_eq!(t.lookup(2, a, 1), None);
        assert_eq!(t.remove(0, a), Ok(()));
        assert_eq!(t.remove(0, a), Err(CommandError::NotFound));
        assert_eq!(t.lookup(0, a, 1), None);
        assert_eq!(t.lookup(1, a, 1), Some(MAC_B));
        t.insert_static(2, a, MAC_S).unwrap();
        assert_eq!(t.remove(2, a), Ok(()));
        // An expired learned entry is still removable (it occupies a slot).
        assert_eq!(t.remove(1, a), Ok(()));
        assert!(t.is_empty());
    }

    #[test]
    fn full_table_eviction() {
        let mut t = NeighbourTable::with_capacity(3, 100);
        t.insert_static(0, ip("10.0.0.1"), MAC_S).unwrap();
        t.learn(0, ip("10.0.0.2"), MAC_A, 0).unwrap(); // expires at 100
        t.learn(0, ip("10.0.0.3"), MAC_B, 20).unwrap(); // expires at 120
        assert_eq!(t.len(), 3);
        // ARP cannot push out a valid entry.
        assert_eq!(
            t.learn(0, ip("10.0.0.4"), MAC_A, 99),
            Err(CommandError::TableFull)
        );
        assert_eq!(t.len(), 3);
        // Refreshing an existing entry needs no room.
        assert_eq!(t.learn(0, ip("10.0.0.3"), MAC_B, 99), Ok(false)); // now expires at 199
                                                                      // At 100, .2 has expired: it is evicted for .4.
        assert_eq!(t.learn(0, ip("10.0.0.4"), MAC_A, 100), Ok(true)); // expires at 200
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(0, ip("10.0.0.2"), 100), None);
        assert_eq!(t.remove(0, ip("10.0.0.2")), Err(CommandError::NotFound));
        assert_eq!(t.lookup(0, ip("10.0.0.3"), 100), Some(MAC_B));
        assert_eq!(t.lookup(0, ip("10.0.0.4"), 100), Some(MAC_A));
        // Full again and nothing expires before 199.
        assert_eq!(
            t.learn(0, ip("10.0.0.5"), MAC_A, 150),
            Err(CommandError::TableFull)
        );
        // A static entry evicts the learned one expiring first (.3 at 199), valid or not.
        t.insert_static(0, ip("10.0.0.5"), MAC_S).unwrap();
        assert_eq!(t.remove(0, ip("10.0.0.3")), Err(CommandError::NotFound));
        t.insert_static(0, ip("10.0.0.3"), MAC_S).unwrap();
        assert_eq!(t.remove(0, ip("10.0.0.4")), Err(CommandError::NotFound));
        // Only statics left: nothing can be evicted.
        assert_eq!(
            t.insert_static(0, ip("10.0.0.6"), MAC_S),
            Err(CommandError::TableFull)
        );
        assert_eq!(
            t.learn(0, ip("10.0.0.6"), MAC_A, u64::MAX),
            Err(CommandError::TableFull)
        );
        assert_eq!(t.len(), 3);
        for a in ["10.0.0.1", "10.0.0.3", "10.0.0.5"] {
            assert_eq!(t.lookup(0, ip(a), u64::MAX), Some(MAC_S), "{a}");
        }
    }

    #[test]
    fn zero_capacity_table_refuses_everything() {
        let mut t = NeighbourTable::with_capacity(0, 100);
        assert_eq!(
            t.insert_static(0, ip("10.0.0.1"), MAC_S),
            Err(CommandError::TableFull)
        );
        assert_eq!(
            t.learn(0, ip("10.0.0.1"), MAC_A, 0),
            Err(CommandError::TableFull)
        );
        assert_eq!(t.lookup(0, ip("10.0.0.1"), 0), None);
    }

    /// Reference model of the table: (port, ip) → (mac, Some(expiry) or None for static).
    type Model = HashMap<(u16, u32), (MacAddr, Option<u64>)>;

    #[derive(Clone, Debug)]
    enum Op {
        Static(u16, u32, u8),
        Learn(u16, u32, u8),
        Remove(u16, u32),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u16..2, 0u32..12, any::<u8>()).prop_map(|(p, a, m)| Op::Static(p, a, m)),
            (0u16..2, 0u32..12, any::<u8>()).prop_map(|(p, a, m)| Op::Learn(p, a, m)),
            (0u16..2, 0u32..12).prop_map(|(p, a)| Op::Remove(p, a)),
            (0u64..60).prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// The table agrees with a HashMap model, eviction included: an eviction removes
        /// a learned entry with the earliest expiry (for ARP, only an expired one), and
        /// `TableFull` happens only when nothing could be evicted.
        #[test]
        fn neighbour_table_matches_model(ops in prop::collection::vec(op(), 0..200)) {
            const CAP: usize = 8;
            const TTL: u64 = 100;
            let mut t = NeighbourTable::with_capacity(CAP, TTL);
            let mut model: Model = HashMap::new();
            let mut now = 0u64;
            for o in ops {
                match o {
                    Op::Advance(d) => now += d,
                    Op::Remove(p, a) => {
                        let expect = model.remove(&(p, a)).map(|_| ()).ok_or(CommandError::NotFound);
                        prop_assert_eq!(t.remove(p, Ipv4Addr::from(a)), expect);
                    }
                    Op::Static(p, a, m) | Op::Learn(p, a, m) => {
                        let is_static = matches!(o, Op::Static(..));
                        let mac = MacAddr([2, 0, 0, 0, 0, m]);
                        let k = (p, a);
                        let res = if is_static {
                            t.insert_static(p, Ipv4Addr::from(a), mac).map(|()| true)
                        } else {
                            t.learn(p, Ipv4Addr::from(a), mac, now)
                        };
                        let new_val = (mac, (!is_static).then_some(now + TTL));
                        if let Some(old) = model.get(&k).copied() {
                            match (is_static, old.1) {
                                (false, None) => prop_assert_eq!(res, Ok(false)),
                                (true, _) => {
                                    prop_assert_eq!(res, Ok(true));
                                    model.insert(k, new_val);
                                }
                                (false, Some(exp)) => {
                                    prop_assert_eq!(res, Ok(old.0 != mac || now >= exp));
                                    model.insert(k, new_val);
                                }
                            }
                        } else if model.len() < CAP {
                            prop_assert_eq!(res, Ok(true));
                            model.insert(k, new_val);
                        } else {
                            let earliest = model.values().filter_map(|v| v.1).min();
                            match earliest {
                                // A static insert may evict a valid learned entry; ARP may not.
                                Some(e) if is_static || now >= e => {
                                    prop_assert_eq!(res, Ok(true));
                                    // Exactly one entry with that expiry vanished.
                                    let gone: Vec<_> = model
                                        .iter()
                                        .filter(|(kk, _)| t.map.get(key(kk.0, kk.1)).is_none())
                                        .map(|(kk, v)| (*kk, *v))
                                        .collect();
                                    prop_assert_eq!(gone.len(), 1);
                                    prop_assert_eq!(gone[0].1 .1, Some(e));
                                    model.remove(&gone[0].0);
                                    model.insert(k, new_val);
                                }
                                _ => prop_assert_eq!(res, Err(CommandError::TableFull)),
                            }
                        }
                    }
                }
                prop_assert_eq!(t.len(), model.len());
                for p in 0..2 {
                    for a in 0..12 {
                        let expect = model.get(&(p, a)).and_then(|(mac, exp)| match exp {
                            Some(e) if now >= *e => None,
                            _ => Some(*mac),
                        });
                        prop_assert_eq!(t.lookup(p, Ipv4Addr::from(a), now), expect);
                    }
                }
            }
        }
    }

    // ---- PendingQueue ----

    #[derive(Default)]
    struct Recorder {
        ready: Vec<(VecBuf, u16)>,
        expired: Vec<VecBuf>,
        requests: Vec<(u16, Ipv4Addr)>,
    }

    impl PendingSink<VecBuf> for Recorder {
        fn ready(&mut self, buf: VecBuf, port: u16) {
            self.ready.push((buf, port));
        }
        fn expired(&mut self, buf: VecBuf) {
            self.expired.push(buf);
        }
        fn request(&mut self, port: u16, next_hop: Ipv4Addr) {
            self.requests.push((port, next_hop));
        }
    }

    /// An Ethernet + IPv4 header start with an unknown (zero) destination MAC, our source
    /// MAC 02:00:00:00:00:01 and EtherType 0x0800, then a tag byte to tell packets apart.
    fn frame(tag: u8) -> VecBuf {
        VecBuf::from_slice(&[
            0, 0, 0, 0, 0, 0, // destination: to be resolved
            0x02, 0, 0, 0, 0, 0x01, // source
            0x08, 0x00, // IPv4
            0x45, 0x00, tag,
        ])
    }

    fn none(_: u16, _: Ipv4Addr) -> Option<MacAddr> {
        None
    }

    #[test]
    fn ready_writes_the_destination_mac_only() {
        let gw = ip("192.0.2.1");
        let mut q = PendingQueue::new(4, 1000, 100);
        assert_eq!(q.push(frame(7), 1, gw, 0), Ok(true));
        assert_eq!(q.len(), 1);
        let mut rec = Recorder::default();
        q.poll(none, 10, &mut rec);
        assert!(rec.ready.is_empty() && rec.expired.is_empty());
        assert_eq!(q.len(), 1);
        // Resolves only for (port 1, gw).
        q.poll(|p, a| (p == 1 && a == gw).then_some(MAC_A), 20, &mut rec);
        assert!(q.is_empty());
        let (buf, port) = &rec.ready[0];
        assert_eq!(*port, 1);
        assert_eq!(
            buf.data(),
            &[
                0x02, 0, 0, 0, 0, 0x0a, //
                0x02, 0, 0, 0, 0, 0x01, //
                0x08, 0x00, 0x45, 0x00, 7
            ]
        );
        assert!(rec.expired.is_empty());
        // The same next hop on another port is a different neighbour.
        assert_eq!(q.push(frame(8), 2, gw, 30), Ok(true));
        q.poll(|p, a| (p == 1 && a == gw).then_some(MAC_A), 40, &mut rec);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn short_buffer_is_released_unchanged() {
        let mut q = PendingQueue::new(2, 1000, 100);
        q.push(VecBuf::from_slice(&[1, 2, 3]), 0, ip("10.0.0.9"), 0)
            .unwrap();
        let mut rec = Recorder::default();
        q.poll(|_, _| Some(MAC_A), 1, &mut rec);
        assert_eq!(rec.ready.len(), 1);
        assert_eq!(rec.ready[0].0.data(), &[1, 2, 3]);
    }

    #[test]
    fn packets_expire_at_their_deadline() {
        let gw = ip("192.0.2.1");
        let mut q = PendingQueue::new(4, 100, 1000);
        q.push(frame(1), 0, gw, 0).unwrap();
        q.push(frame(2), 0, gw, 50).unwrap();
        let mut rec = Recorder::default();
        q.poll(none, 99, &mut rec);
        assert!(rec.expired.is_empty());
        q.poll(none, 100, &mut rec);
        assert_eq!(rec.expired.len(), 1);
        assert_eq!(rec.expired[0].data()[16], 1);
        assert_eq!(q.len(), 1);
        // Resolution wins over expiry at the deadline.
        q.poll(|_, _| Some(MAC_B), 150, &mut rec);
        assert_eq!(rec.expired.len(), 1);
        assert_eq!(rec.ready.len(), 1);
        assert_eq!(rec.ready[0].0.data()[16], 2);
        assert!(q.is_empty());
        // No retry was due (retry 1000) during all of this.
        assert!(rec.requests.is_empty());
    }

    #[test]
    fn expired_packets_free_their_request_record() {
        let mut q = PendingQueue::new(2, 100, 1000);
        let mut rec = Recorder::default();
        let mut now = 0;
        // Many unresolvable next hops in turn: records must not pile up and fill the queue.
        for i in 0..20u8 {
            let nh = Ipv4Addr::new(10, 0, 0, i);
            assert_eq!(q.push(frame(i), 0, nh, now), Ok(true), "{i}");
            now += 100;
            q.poll(none, now, &mut rec);
            assert!(q.is_empty());
            // A new packet for the same next hop asks again at once (well within retry).
            assert_eq!(q.push(frame(i), 0, nh, now), Ok(true), "{i}");
            now += 100;
            q.poll(none, now, &mut rec);
        }
        assert_eq!(rec.expired.len(), 40);
        assert!(q.requests.len() == 0 && rec.requests.is_empty());
    }

    #[test]
    fn requests_are_paced_per_next_hop() {
        let a = ip("192.0.2.1");
        let b = ip("192.0.2.2");
        let mut q = PendingQueue::new(8, 10_000, 10);
        assert_eq!(q.push(frame(1), 0, a, 0), Ok(true));
        assert_eq!(q.push(frame(2), 0, a, 1), Ok(false));
        assert_eq!(q.push(frame(3), 0, b, 2), Ok(true));
        assert_eq!(q.push(frame(4), 1, a, 3), Ok(true)); // other port
        let mut rec = Recorder::default();
        q.poll(none, 5, &mut rec);
        assert!(rec.requests.is_empty());
        // a on port 0 was asked at 0: due at 10, once although two packets wait.
        q.poll(none, 10, &mut rec);
        assert_eq!(rec.requests, [(0, a)]);
        q.poll(none, 12, &mut rec);
        assert_eq!(rec.requests, [(0, a), (0, b)]);
        q.poll(none, 12, &mut rec);
        q.poll(none, 13, &mut rec);
        assert_eq!(rec.requests, [(0, a), (0, b), (1, a)]);
        q.poll(none, 19, &mut rec);
        assert_eq!(rec.requests.len(), 3);
        q.poll(none, 20, &mut rec);
        assert_eq!(rec.requests[3..], [(0, a)]);
        // push honours the same pacing: a on port 0 was asked at 20.
        assert_eq!(q.push(frame(5), 0, a, 25), Ok(false));
        assert_eq!(q.push(frame(6), 0, a, 30), Ok(true));
        q.poll(none, 30, &mut rec);
        // The others are due again (last asked at 12 and 13); (0, a) was asked by push.
        assert_eq!(rec.requests[4..], [(0, b), (1, a)]);
        // Once a's packets are released, the next packet for a asks at once.
        q.poll(|p, h| (p == 0 && h == a).then_some(MAC_A), 31, &mut rec);
        assert_eq!(rec.ready.len(), 4);
        assert_eq!(rec.requests.len(), 6);
        assert_eq!(q.push(frame(7), 0, a, 32), Ok(true));
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn zero_retry_still_asks_once_per_poll() {
        let a = ip("192.0.2.1");
        let mut q = PendingQueue::new(4, 1000, 0);
        assert_eq!(q.push(frame(1), 0, a, 0), Ok(true));
        assert_eq!(q.push(frame(2), 0, a, 0), Ok(false));
        assert_eq!(q.push(frame(3), 0, a, 1), Ok(true));
        let mut rec = Recorder::default();
        q.poll(none, 1, &mut rec);
        assert!(rec.requests.is_empty());
        q.poll(none, 2, &mut rec);
        assert_eq!(rec.requests, [(0, a)]);
    }

    #[test]
    fn full_queue_returns_the_buffer() {
        let a = ip("192.0.2.1");
        let mut q = PendingQueue::new(2, 1000, 100);
        q.push(frame(1), 0, a, 0).unwrap();
        q.push(frame(2), 0, ip("192.0.2.2"), 0).unwrap();
        let back = q.push(frame(3), 0, a, 0).unwrap_err();
        assert_eq!(back, frame(3));
        assert_eq!(q.len(), 2);
        let mut rec = Recorder::default();
        q.poll(|_, h| (h == a).then_some(MAC_A), 1, &mut rec);
        assert_eq!(q.len(), 1);
        assert_eq!(q.push(frame(3), 0, a, 2), Ok(true));
        let mut zero = PendingQueue::new(0, 1000, 100);
        assert_eq!(zero.push(frame(9), 0, a, 0), Err(frame(9)));
    }

    #[test]
    fn drain_returns_everything_in_order() {
        let mut q = PendingQueue::new(8, 1000, 100);
        for tag in 0..5u8 {
            q.push(frame(tag), 0, Ipv4Addr::new(10, 0, 0, tag % 2), 0)
                .unwrap();
        }
        let mut out = Vec::new();
        q.drain(|b| out.push(b.data()[16]));
        assert_eq!(out, [0, 1, 2, 3, 4]);
        assert!(q.is_empty());
        // The request records went too: the next push asks again.
        assert_eq!(q.push(frame(9), 0, Ipv4Addr::new(10, 0, 0, 0), 1), Ok(true));
    }

    #[derive(Clone, Debug)]
    enum QOp {
        Push(u16, u8),
        Poll(u64, u8),
    }

    proptest! {
        /// Whatever happens, every packet pushed leaves exactly once (ready, expired,
        /// refused by push, or drained), ready ones carry their next hop's MAC, and
        /// the queue stays in arrival order for one next hop.
        #[test]
        fn nothing_is_lost(ops in prop::collection::vec(
            prop_oneof![
                (0u16..2, 0u8..4).prop_map(|(p, h)| QOp::Push(p, h)),
                (0u64..40, any::<u8>()).prop_map(|(d, r)| QOp::Poll(d, r)),
            ],
            0..200,
        )) {
            let mut q = PendingQueue::new(6, 100, 30);
            let mut rec = Recorder::default();
            let mut refused = 0usize;
            let mut tag = 0u8;
            let mut now = 0u64;
            for o in ops {
                match o {
                    QOp::Push(p, h) => {
                        tag = tag.wrapping_add(1);
                        let mut f = frame(tag);
                        f.data_mut()[15] = h;
                        if q.push(f, p, Ipv4Addr::new(10, 0, 0, h), now).is_err() {
                            refused += 1;
                        }
                    }
                    QOp::Poll(d, resolved) => {
                        now += d;
                        // Next hop h on port p resolves when bit p*4+h of `resolved` is set.
                        q.poll(
                            |p, h| {
                                let bit = u32::from(p) * 4 + u32::from(h.octets()[3]);
                                (resolved >> bit & 1 == 1)
                                    .then_some(MacAddr([2, 0, 0, 0, p as u8, h.octets()[3]]))
                            },
                            now,
                            &mut rec,
                        );
                    }
                }
                prop_assert!(q.len() <= 6);
            }
            let mut last_tag: HashMap<(u16, u8), u8> = HashMap::new();
            for (b, port) in &rec.ready {
                let (h, t) = (b.data()[15], b.data()[16]);
                prop_assert_eq!(&b.data()[0..6], &[2, 0, 0, 0, *port as u8, h]);
                // Arrival order per next hop.
                if let Some(prev) = last_tag.insert((*port, h), t) {
                    prop_assert!(prev < t);
                }
            }
            let mut drained = 0usize;
            q.drain(|_| drained += 1);
            prop_assert_eq!(
                rec.ready.len() + rec.expired.len() + refused + drained,
                usize::from(tag)
            );
        }
    }
}
