//! The IPv4 route table: a bounded longest-prefix-match (LPM) table.
//!
//! A packet is forwarded by the route with the longest prefix that contains its
//! destination (RFC 1812 §5.2.4.3, "Longest Match"; RFC 4632 §5.1).
//!
//! Design: one `Vec<RouteEntry>` sorted by (prefix length, network), so the routes of each
//! length form one contiguous run; `starts[l]..starts[l + 1]` is the run of `/l` routes,
//! and bit `l` of a `u64` bitmap says the run is non-empty. [`RouteTable::lookup`] walks
//! the lengths in use from the longest down and binary-searches each run for the masked
//! destination: O(k · log n) for k distinct lengths in use, no allocation. Insert and
//! remove shift the vector (O(n)); they run on the control path between bursts.
//!
//! Invariants:
//! - every stored prefix has its host bits cleared ([`Ipv4Cidr::network`]), so "the same
//!   prefix" means the same network and length;
//! - at most `capacity` entries; the vector is allocated once in
//!   [`RouteTable::with_capacity`] and never grows past it, so nothing reallocates;
//! - `starts` is non-decreasing, `starts[0] == 0`, `starts[33] == entries.len()`, each
//!   run is sorted by network with no duplicates, and bit `l` of `used` is set exactly
//!   when run `l` is non-empty.

use crate::addr::Ipv4Cidr;
use crate::command::{CommandError, Route};
use std::net::Ipv4Addr;

/// Where a route sends a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NextHop {
    /// The destination is on the link: resolve the packet's own destination address.
    Connected,
    /// Send to this gateway on the link.
    Via(Ipv4Addr),
}

/// One route: packets to `prefix` leave on `port` towards `next_hop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteEntry {
    /// Destination prefix. Stored with host bits cleared.
    pub prefix: Ipv4Cidr,
    /// Connected, or via a gateway.
    pub next_hop: NextHop,
    /// Egress DPDK port id.
    pub port: u16,
}

impl RouteEntry {
    /// The address to resolve for a packet to `dst` sent by this route: the gateway, or
    /// `dst` itself on a connected route.
    pub fn next_hop_for(&self, dst: Ipv4Addr) -> Ipv4Addr {
        match self.next_hop {
            NextHop::Connected => dst,
            NextHop::Via(gw) => gw,
        }
    }
}

impl From<Route> for RouteEntry {
    fn from(r: Route) -> Self {
        RouteEntry {
            prefix: r.prefix,
            next_hop: match r.via {
                None => NextHop::Connected,
                Some(gw) => NextHop::Via(gw),
            },
            port: r.port,
        }
    }
}

/// Number of prefix lengths, /0 to /32.
const LENGTHS: usize = 33;

/// Netmask of a `/len` prefix as a host-order integer (0 for /0, all ones for /32 and
/// anything longer).
fn mask(len: usize) -> u32 {
    let shift = 32usize.saturating_sub(len);
    u32::MAX.checked_shl(shift as u32).unwrap_or(0)
}

/// Network of a stored entry as a host-order integer (the binary-search key).
fn network(e: &RouteEntry) -> u32 {
    u32::from(e.prefix.addr())
}

/// A bounded longest-prefix-match route table (see the module doc for the layout).
#[derive(Clone, Debug)]
pub struct RouteTable {
    /// All routes, sorted by (prefix length, network).
    entries: Vec<RouteEntry>,
    /// `starts[l]..starts[l + 1]` is the run of `/l` routes in `entries`.
    starts: [usize; LENGTHS + 1],
    /// Bit `l` set when at least one `/l` route exists.
    used: u64,
    /// Most routes the table holds.
    capacity: usize,
}

impl RouteTable {
    /// An empty table for at most `capacity` routes. Allocates its storage now, once.
    pub fn with_capacity(capacity: usize) -> Self {
        RouteTable {
            entries: Vec::with_capacity(capacity),
            starts: [0; LENGTHS + 1],
            used: 0,
            capacity,
        }
    }

    /// Most routes the table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no route at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every route, ordered by prefix length then network.
    pub fn iter(&self) -> std::slice::Iter<'_, RouteEntry> {
        self.entries.iter()
    }

    /// The run of `/len` routes and where it starts in `entries`.
    fn run(&self, len: usize) -> (usize, &[RouteEntry]) {
        let (Some(&lo), Some(&hi)) = (self.starts.get(len), self.starts.get(len + 1)) else {
            return (0, &[]);
        };
        (lo, self.entries.get(lo..hi).unwrap_or(&[]))
    }

    /// Position in `entries` of the route for exactly `prefix` (`Ok`), or where it would
    /// be inserted (`Err`).
    fn position(&self, prefix: Ipv4Cidr) -> Result<usize, usize> {
        let (lo, run) = self.run(usize::from(prefix.len()));
        let key = u32::from(prefix.addr());
        match run.binary_search_by_key(&key, network) {
            Ok(i) => Ok(lo + i),
            Err(i) => Err(lo + i),
        }
    }

    /// Adds `entry`, or replaces the route for the same prefix (host bits of
    /// `entry.prefix` are ignored). `TableFull` when a new prefix does not fit; the
    /// table is then unchanged.
    pub fn insert(&mut self, mut entry: RouteEntry) -> Result<(), CommandError> {
        entry.prefix = entry.prefix.network();
        match self.position(entry.prefix) {
            Ok(pos) => {
                if let Some(slot) = self.entries.get_mut(pos) {
                    *slot = entry;
                }
                Ok(())
            }
            Err(pos) => {
                if self.entries.len() >= self.capacity {
                    return Err(CommandError::TableFull);
                }
                // Within the capacity reserved in `with_capacity`: no reallocation.
                self.entries.insert(pos, entry);
                let len = usize::from(entry.prefix.len());
                for s in self.starts.iter_mut().skip(len + 1) {
                    *s += 1;
                }
                self.used |= 1 << len;
                Ok(())
            }
        }
    }

    /// Removes and returns the route for exactly `prefix` (host bits ignored).
    /// `NotFound` when there is none.
    pub fn remove(&mut self, prefix: Ipv4Cidr) -> Result<RouteEntry, CommandError> {
        let prefix = prefix.network();
        let pos = self.position(prefix).map_err(|_| CommandError::NotFound)?;
        let removed = self.entries.remove(pos);
        let len = usize::from(prefix.len());
        for s in self.starts.iter_mut().skip(len + 1) {
            *s -= 1;
        }
        if self.run(len).1.is_empty() {
            self.used &= !(1 << len);
        }
        Ok(removed)
    }

    /// The route for exactly `prefix` (host bits ignored), if any.
    pub fn get(&self, prefix: Ipv4Cidr) -> Option<&RouteEntry> {
        let pos = self.position(prefix.network()).ok()?;
        self.entries.get(pos)
    }

    /// The route with the longest prefix containing `dst` (RFC 1812 §5.2.4.3), if any.
    /// Allocation-free; never panics.
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<&RouteEntry> {
        let dst = u32::from(dst);
        let mut used = self.used;
        while used != 0 {
            // Longest length still to try.
            let len = 63 - used.leading_zeros() as usize;
            used &= !(1 << len);
            let (_, run) = self.run(len);
            if let Ok(i) = run.binary_search_by_key(&(dst & mask(len)), network) {
                return run.get(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn entry(prefix: &str, port: u16) -> RouteEntry {
        RouteEntry {
            prefix: cidr(prefix),
            next_hop: NextHop::Connected,
            port,
        }
    }

    fn port_of(t: &RouteTable, dst: &str) -> Option<u16> {
        t.lookup(ip(dst)).map(|e| e.port)
    }

    #[test]
    fn empty_table_has_no_route() {
        let t = RouteTable::with_capacity(4);
        assert!(t.is_empty());
        assert_eq!(t.lookup(ip("10.0.0.1")), None);
        assert_eq!(t.lookup(ip("0.0.0.0")), None);
        assert_eq!(t.lookup(ip("255.255.255.255")), None);
    }

    #[test]
    fn default_route_matches_everything() {
        let mut t = RouteTable::with_capacity(4);
        t.insert(RouteEntry {
            prefix: cidr("0.0.0.0/0"),
            next_hop: NextHop::Via(ip("192.0.2.1")),
            port: 1,
        })
        .unwrap();
        for dst in ["0.0.0.0", "8.8.8.8", "255.255.255.255", "10.1.2.3"] {
            let e = t.lookup(ip(dst)).unwrap();
            assert_eq!(e.port, 1, "{dst}");
            assert_eq!(e.next_hop_for(ip(dst)), ip("192.0.2.1"));
        }
    }

    #[test]
    fn host_route_matches_only_its_address() {
        let mut t = RouteTable::with_capacity(4);
        t.insert(entry("198.51.100.7/32", 2)).unwrap();
        t.insert(entry("198.51.100.0/24", 1)).unwrap();
        assert_eq!(port_of(&t, "198.51.100.7"), Some(2));
        assert_eq!(port_of(&t, "198.51.100.6"), Some(1));
        assert_eq!(port_of(&t, "198.51.100.8"), Some(1));
        assert_eq!(port_of(&t, "198.51.101.7"), None);
    }

    #[test]
    fn overlapping_prefixes_pick_the_longest() {
        let mut t = RouteTable::with_capacity(8);
        // Inserted shortest-last to show order does not matter.
        t.insert(entry("10.1.2.0/24", 24)).unwrap();
        t.insert(entry("10.1.0.0/16", 16)).unwrap();
        t.insert(entry("10.0.0.0/8", 8)).unwrap();
        t.insert(entry("0.0.0.0/0", 0)).unwrap();
        let cases = [
            ("10.1.2.3", 24),
            ("10.1.2.255", 24),
            ("10.1.3.1", 16),
            ("10.1.255.255", 16),
            ("10.2.0.1", 8),
            ("10.255.255.255", 8),
            ("11.0.0.0", 0),
            ("9.255.255.255", 0),
        ];
        for (dst, port) in cases {
            assert_eq!(port_of(&t, dst), Some(port), "{dst}");
        }
    }

    #[test]
    fn removal_falls_back_to_the_shorter_prefix() {
        let mut t = RouteTable::with_capacity(8);
        t.insert(entry("10.0.0.0/8", 8)).unwrap();
        t.insert(entry("10.1.0.0/16", 16)).unwrap();
        t.insert(entry("10.1.2.0/24", 24)).unwrap();
        assert_eq!(port_of(&t, "10.1.2.3"), Some(24));
        let gone = t.remove(cidr("10.1.2.0/24")).unwrap();
        assert_eq!(gone, entry("10.1.2.0/24", 24));
        assert_eq!(port_of(&t, "10.1.2.3"), Some(16));
        t.remove(cidr("10.1.0.0/16")).unwrap();
        assert_eq!(port_of(&t, "10.1.2.3"), Some(8));
        t.remove(cidr("10.0.0.0/8")).unwrap();
        assert_eq!(port_of(&t, "10.1.2.3"), None);
        assert!(t.is_empty());
        assert_eq!(t.remove(cidr("10.0.0.0/8")), Err(CommandError::NotFound));
    }

    #[test]
    fn remove_needs_the_exact_prefix() {
        let mut t = RouteTable::with_capacity(4);
        t.insert(entry("10.0.0.0/8", 8)).unwrap();
        assert_eq!(t.remove(cidr("10.0.0.0/9")), Err(CommandError::NotFound));
        assert_eq!(t.remove(cidr("10.0.0.0/7")), Err(CommandError::NotFound));
        assert_eq!(t.remove(cidr("11.0.0.0/8")), Err(CommandError::NotFound));
        // Host bits are ignored, as on insert.
        assert_eq!(t.remove(cidr("10.9.9.9/8")).unwrap().port, 8);
    }

    #[test]
    fn same_prefix_replaces_and_host_bits_are_cleared() {
        let mut t = RouteTable::with_capacity(1);
        t.insert(entry("10.1.2.3/24", 1)).unwrap();
        assert_eq!(
            t.get(cidr("10.1.2.0/24")).unwrap().prefix,
            cidr("10.1.2.0/24")
        );
        // Same prefix, different host bits: a replacement, even though the table is full.
        t.insert(RouteEntry {
            prefix: cidr("10.1.2.200/24"),
            next_hop: NextHop::Via(ip("10.1.2.1")),
            port: 7,
        })
        .unwrap();
        assert_eq!(t.len(), 1);
        let e = t.lookup(ip("10.1.2.99")).unwrap();
        assert_eq!(e.port, 7);
        assert_eq!(e.next_hop, NextHop::Via(ip("10.1.2.1")));
        assert_eq!(e.prefix.to_string(), "10.1.2.0/24");
    }

    #[test]
    fn capacity_is_enforced_and_a_failed_insert_changes_nothing() {
        let mut t = RouteTable::with_capacity(2);
        t.insert(entry("10.0.0.0/8", 1)).unwrap();
        t.insert(entry("10.1.0.0/16", 2)).unwrap();
        assert_eq!(
            t.insert(entry("10.1.2.0/24", 3)),
            Err(CommandError::TableFull)
        );
        assert_eq!(t.len(), 2);
        assert_eq!(port_of(&t, "10.1.2.3"), Some(2));
        // Room again after a removal.
        t.remove(cidr("10.0.0.0/8")).unwrap();
        t.insert(entry("10.1.2.0/24", 3)).unwrap();
        assert_eq!(port_of(&t, "10.1.2.3"), Some(3));
        assert_eq!(port_of(&t, "10.2.0.0"), None);

        let mut zero = RouteTable::with_capacity(0);
        assert_eq!(
            zero.insert(entry("0.0.0.0/0", 0)),
            Err(CommandError::TableFull)
        );
        assert_eq!(zero.lookup(ip("1.2.3.4")), None);
    }

    #[test]
    fn iter_is_ordered_by_length_then_network() {
        let mut t = RouteTable::with_capacity(8);
        for (p, port) in [
            ("192.168.0.0/16", 1),
            ("10.0.0.0/8", 2),
            ("172.16.0.0/12", 3),
            ("10.2.0.0/16", 4),
        ] {
            t.insert(entry(p, port)).unwrap();
        }
        let got: Vec<String> = t.iter().map(|e| e.prefix.to_string()).collect();
        assert_eq!(
            got,
            [
                "10.0.0.0/8",
                "172.16.0.0/12",
                "10.2.0.0/16",
                "192.168.0.0/16"
            ]
        );
    }

    #[test]
    fn from_route() {
        let r = Route {
            prefix: cidr("0.0.0.0/0"),
            via: Some(ip("192.0.2.1")),
            port: 3,
        };
        let e = RouteEntry::from(r);
        assert_eq!(e.next_hop, NextHop::Via(ip("192.0.2.1")));
        assert_eq!(e.port, 3);
        let c = RouteEntry::from(Route { via: None, ..r });
        assert_eq!(c.next_hop, NextHop::Connected);
        assert_eq!(c.next_hop_for(ip("8.8.8.8")), ip("8.8.8.8"));
    }

    #[test]
    fn mask_values() {
        assert_eq!(mask(0), 0);
        assert_eq!(mask(1), 0x8000_0000);
        assert_eq!(mask(24), 0xffff_ff00);
        assert_eq!(mask(32), u32::MAX);
    }

    /// Reference model: the routes in insertion order, replacing on the same prefix.
    fn brute_force(model: &[RouteEntry], dst: Ipv4Addr) -> Option<&RouteEntry> {
        model
            .iter()
            .filter(|e| e.prefix.contains(dst))
            .max_by_key(|e| e.prefix.len())
    }

    /// Addresses clustered in 10/8 (so prefixes overlap) or anywhere.
    fn addr() -> impl Strategy<Value = u32> {
        prop_oneof![
            any::<u32>(),
            (0u32..=0xff_ffff).prop_map(|x| 0x0a00_0000 | x),
            (0u32..=0xff).prop_map(|x| 0x0a01_0200 | x),
        ]
    }

    proptest! {
        #[test]
        fn lookup_matches_linear_scan(
            routes in prop::collection::vec((addr(), 0u8..=32, any::<u16>()), 0..48),
            removals in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
            probes in prop::collection::vec(addr(), 0..32),
            host_bits in any::<u32>(),
        ) {
            let mut t = RouteTable::with_capacity(40);
            let mut model: Vec<RouteEntry> = Vec::new();
            for (a, len, port) in routes {
                let e = RouteEntry {
                    prefix: Ipv4Cidr::new(Ipv4Addr::from(a), len).unwrap(),
                    next_hop: NextHop::Connected,
                    port,
                };
                let stored = RouteEntry { prefix: e.prefix.network(), ..e };
                let res = t.insert(e);
                if let Some(m) = model.iter_mut().find(|m| m.prefix == stored.prefix) {
                    prop_assert_eq!(res, Ok(()));
                    *m = stored;
                } else if model.len() < 40 {
                    prop_assert_eq!(res, Ok(()));
                    model.push(stored);
                } else {
                    prop_assert_eq!(res, Err(CommandError::TableFull));
                }
            }
            for r in removals {
                if model.is_empty() {
                    break;
                }
                let gone = model.remove(r.index(model.len()));
                prop_assert_eq!(t.remove(gone.prefix), Ok(gone));
                prop_assert_eq!(t.remove(gone.prefix), Err(CommandError::NotFound));
            }
            prop_assert_eq!(t.len(), model.len());
            let mut listed: Vec<RouteEntry> = t.iter().copied().collect();
            let mut expected = model.clone();
            listed.sort_by_key(|e| (u32::from(e.prefix.addr()), e.prefix.len()));
            expected.sort_by_key(|e| (u32::from(e.prefix.addr()), e.prefix.len()));
            prop_assert_eq!(listed, expected);

            // Probe random addresses and, for every route, one address inside it.
            let inside = model
                .iter()
                .map(|e| u32::from(e.prefix.addr()) | (host_bits & !e.prefix.mask()));
            for a in probes.into_iter().chain(inside) {
                let dst = Ipv4Addr::from(a);
                prop_assert_eq!(t.lookup(dst), brute_force(&model, dst), "dst {}", dst);
            }
        }
    }
}
