//! The zone the server is authoritative for, the gateways' current addresses, and the
//! choice of waypoint address for a session (AVES paper §3.3, §5.1).
//!
//! Invariants:
//! - Every configured name maps to exactly one [`Lookup`]; the names between a host and
//!   the apex that are not names themselves are empty non-terminals (NODATA, never
//!   NXDOMAIN: RFC 8020 — resolvers that minimise query names, RFC 9156, ask for them).
//! - A gateway address of 0.0.0.0 means "unknown until REGISTER"; hosts behind it are
//!   not answered with a waypoint address.
//! - [`Waypoints`] remembers at most [`MAX_REMEMBERED`] grants and wait states; its
//!   memory is advice (the waypoint enforces admission, §3.3.1), so forgetting is safe.

use super::SetupOutcome;
use crate::config::{DnsSpec, DnsWaypointSpec};
use aves_dataplane::command::Mode;
use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// What a name in the zone is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The apex: SOA and NS.
    Apex,
    /// An in-zone name server with its address.
    NsAddress(Ipv4Addr),
    /// A name with names below it and no records of its own.
    EmptyNonTerminal,
    /// A host (or one of its service names): index into [`Zone::hosts`].
    Host(usize),
    /// Inside the zone, but no such name.
    NotFound,
    /// Not inside the zone.
    OutOfZone,
}

/// A responder B behind a gateway.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its main name.
    pub name: Name,
    /// Index into the zone's gateways.
    pub gateway: usize,
    /// B's private address.
    pub responder: Ipv4Addr,
    /// How the gateway presents initiators to B.
    pub mode: Mode,
}

/// The zone: names, the apex records, hosts and gateway addresses.
#[derive(Debug)]
pub struct Zone {
    apex: LowerName,
    soa: Record,
    negative_soa: Record,
    ns: Vec<Record>,
    glue: Vec<Record>,
    ttl: u32,
    names: HashMap<LowerName, Lookup>,
    hosts: Vec<Host>,
    gateway_ids: Vec<u32>,
    gateway_addrs: Vec<AtomicU32>,
}

impl Zone {
    /// Builds the zone from a validated `[dns]` section.
    pub fn new(spec: &DnsSpec) -> Self {
        let apex = spec.zone.clone();
        let soa_rdata = SOA::new(
            spec.soa.mname.clone(),
            spec.soa.rname.clone(),
            spec.soa.serial,
            clamp_i32(spec.soa.refresh),
            clamp_i32(spec.soa.retry),
            clamp_i32(spec.soa.expire),
            spec.soa.minimum,
        );
        let soa = Record::from_rdata(apex.clone(), spec.ttl, RData::SOA(soa_rdata.clone()));
        // RFC 2308 §3: the SOA in a negative answer has TTL min(SOA TTL, SOA minimum).
        let negative_soa = Record::from_rdata(
            apex.clone(),
            spec.ttl.min(spec.soa.minimum),
            RData::SOA(soa_rdata),
        );
        let ns = spec
            .ns
            .iter()
            .map(|n| Record::from_rdata(apex.clone(), spec.ttl, RData::NS(NS(n.name.clone()))))
            .collect();
        let glue = spec
            .ns
            .iter()
            .filter_map(|n| {
                n.address
                    .map(|a| Record::from_rdata(n.name.clone(), spec.ttl, RData::A(A(a))))
            })
            .collect();

        let mut names = HashMap::new();
        let apex_lower = LowerName::new(&apex);
        names.insert(apex_lower.clone(), Lookup::Apex);
        let mut defined: Vec<(Name, Lookup)> = Vec::new();
        for n in &spec.ns {
            if let Some(a) = n.address {
                defined.push((n.name.clone(), Lookup::NsAddress(a)));
            }
        }
        let gateway_ids: Vec<u32> = spec.gateways.iter().map(|g| g.id).collect();
        let mut hosts = Vec::new();
        for (i, h) in spec.hosts.iter().enumerate() {
            defined.push((h.name.clone(), Lookup::Host(i)));
            for s in &h.services {
                defined.push((s.clone(), Lookup::Host(i)));
            }
            hosts.push(Host {
                name: h.name.clone(),
                gateway: gateway_ids
                    .iter()
                    .position(|id| *id == h.gateway_id)
                    .unwrap_or(usize::MAX),
                responder: h.address,
                mode: h.mode,
            });
        }
        for (name, what) in &defined {
            names.insert(LowerName::new(name), *what);
        }
        // Empty non-terminals: every ancestor strictly between a name and the apex.
        for (name, _) in &defined {
            let mut n = name.base_name();
            while n.num_labels() > apex.num_labels() {
                names
                    .entry(LowerName::new(&n))
                    .or_insert(Lookup::EmptyNonTerminal);
                n = n.base_name();
            }
        }
        let gateway_addrs = spec
            .gateways
            .iter()
            .map(|g| AtomicU32::new(g.address.map_or(0, u32::from)))
            .collect();
        Zone {
            apex: apex_lower,
            soa,
            negative_soa,
            ns,
            glue,
            ttl: spec.ttl,
            names,
            hosts,
            gateway_ids,
            gateway_addrs,
        }
    }

    /// What `name` is.
    pub fn lookup(&self, name: &LowerName) -> Lookup {
        if !self.apex.zone_of(name) {
            return Lookup::OutOfZone;
        }
        self.names.get(name).copied().unwrap_or(Lookup::NotFound)
    }

    /// The SOA record (for SOA answers).
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// The SOA record for the authority section of negative answers.
    pub fn negative_soa(&self) -> &Record {
        &self.negative_soa
    }

    /// The apex NS records.
    pub fn ns(&self) -> &[Record] {
        &self.ns
    }

    /// Address records of in-zone name servers (glue for NS answers).
    pub fn glue(&self) -> &[Record] {
        &self.glue
    }

    /// TTL of ordinary records.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The hosts, in config order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The current public address of the gateway at `index`; `None` until known.
    pub fn gateway_address(&self, index: usize) -> Option<Ipv4Addr> {
        let a = self.gateway_addrs.get(index)?.load(Ordering::Acquire);
        (a != 0).then(|| Ipv4Addr::from(a))
    }

    /// Every gateway's id and its public address, if known (config order).
    pub fn gateways(&self) -> impl Iterator<Item = (u32, Option<Ipv4Addr>)> + '_ {
        self.gateway_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, self.gateway_address(i)))
    }

    /// The index (config order) of the gateway with id `id`.
    pub fn gateway_index(&self, id: u32) -> Option<usize> {
        self.gateway_ids.iter().position(|g| *g == id)
    }

    /// A REGISTER from gateway `id` (§5.3): its public address is now `address`. False
    /// when the id is not configured (or the address is 0.0.0.0).
    pub fn set_gateway_address(&self, id: u32, address: Ipv4Addr) -> bool {
        if address.is_unspecified() {
            return false;
        }
        match self.gateway_ids.iter().position(|g| *g == id) {
            Some(i) => {
                self.gateway_addrs[i].store(u32::from(address), Ordering::Release);
                true
            }
            None => false,
        }
    }
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Who a binding is for: an initiator, an initiator prefix (ECS), or nobody known
/// (`prefix` 0: general mode, `addr` is the resolver's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The initiator, the prefix's network address, or the resolver.
    pub addr: Ipv4Addr,
    /// 32, 1..=31, or 0.
    pub prefix: u8,
}

impl Identity {
    /// True in general mode (no initiator known: delayed binding at the waypoint).
    pub fn is_general(&self) -> bool {
        self.prefix == 0
    }
}

/// Most grants and most wait states [`Waypoints`] remembers.
pub const MAX_REMEMBERED: usize = 1 << 16;

/// Waypoint addresses probed for one choice before handing out the next one anyway.
const MAX_PROBES: u64 = 64;

#[derive(Debug, Clone, Copy)]
struct Grant {
    /// The host bound and the gateway address it was bound through, or `None` when
    /// the waypoint rejected this initiator there.
    host: Option<(usize, Ipv4Addr)>,
    until: Instant,
}

/// The waypoint addresses the server hands out, in round-robin order, and what it
/// remembers of the bindings it asked for.
///
/// Choice (for an initiator I and host H behind gateway address G): the address I
/// already has for H through G, if any; else the next address in round-robin order
/// that is not in a wait state and that I has not been given (or refused) for another
/// host or through another gateway address. An address is given when it is chosen
/// (reserved while its SETUP is in flight), not only when the ACCEPT is recorded. A binding made before the gateway's
/// address changed (§5.3) is thus not reused: the waypoint would refuse the new
/// gateway address for it as a conflict. The waypoint has the last word.
#[derive(Debug)]
pub struct Waypoints {
    ranges: Vec<(u64, u32, u64)>,
    total: u64,
    cursor: u64,
    grants: HashMap<(Identity, Ipv4Addr), Grant>,
    by_host: HashMap<(Identity, usize), (Ipv4Addr, Ipv4Addr, Instant)>,
    waiting: HashMap<Ipv4Addr, Instant>,
    memory: Duration,
    wait: Duration,
}

impl Waypoints {
    /// The addresses of `waypoints`, with grants remembered for `memory` and general-
    /// mode wait states of `wait` (Twait).
    pub fn new(waypoints: &[DnsWaypointSpec], memory: Duration, wait: Duration) -> Self {
        let mut ranges = Vec::new();
        let mut total = 0u64;
        for w in waypoints {
            for r in &w.addresses {
                ranges.push((total, u32::from(r.first), r.count()));
                total += r.count();
            }
        }
        Waypoints {
            ranges,
            total,
            cursor: 0,
            grants: HashMap::new(),
            by_host: HashMap::new(),
            waiting: HashMap::new(),
            memory,
            wait,
        }
    }

    fn address_at(&self, i: u64) -> Option<Ipv4Addr> {
        let &(start, first, _) = self
            .ranges
            .iter()
            .take_while(|(start, _, _)| *start <= i)
            .last()?;
        Some(Ipv4Addr::from(first.wrapping_add((i - start) as u32)))
    }

    fn is_waiting(&self, w: Ipv4Addr, now: Instant) -> bool {
        self.waiting.get(&w).is_some_and(|until| now < *until)
    }

    /// The waypoint address to ask for a binding of `id` to host `host` behind the
    /// gateway address `gateway`; `None` when there are no addresses.
    pub fn choose(
        &mut self,
        id: Identity,
        host: usize,
        gateway: Ipv4Addr,
        now: Instant,
    ) -> Option<Ipv4Addr> {
        if self.total == 0 {
            return None;
        }
        if !id.is_general() {
            if let Some(&(w, g, until)) = self.by_host.get(&(id, host)) {
                if g == gateway && now < until && !self.is_waiting(w, now) {
                    return Some(w);
                }
            }
        }
        for k in 0..self.total.min(MAX_PROBES) {
            let i = (self.cursor + k) % self.total;
            let w = self.address_at(i)?;
            if self.is_waiting(w, now) {
                continue;
            }
            if !id.is_general() {
                if let Some(g) = self.grants.get(&(id, w)) {
                    if now < g.until && g.host != Some((host, gateway)) {
                        continue;
                    }
                }
            }
            self.cursor = (i + 1) % self.total;
            if !id.is_general() {
                // Reserved for this host until the outcome is recorded: a concurrent
                // query of the same initiator for another host (the round robin has
                // wrapped) must not be sent to the same address, where the waypoint
                // would refuse the second responder (a conflict, SERVFAIL).
                Self::remember(
                    &mut self.grants,
                    (id, w),
                    Grant {
                        host: Some((host, gateway)),
                        until: now + self.memory,
                    },
                    now,
                );
            }
            return Some(w);
        }
        // Nothing free among the probes: the next one anyway; the waypoint decides.
        let w = self.address_at(self.cursor);
        self.cursor = (self.cursor + 1) % self.total;
        w
    }

    /// What the SETUP of `id` to `host` at `w` came to.
    ///
    /// General mode: an ACCEPT starts the waypoint address's wait state (Twait, §3.3.2);
    /// so do a REJECT or silence, since a waypoint ignores SETUPs while it waits (§5.2).
    /// Known initiators: an ACCEPT is remembered for reuse, a REJECT marks the address
    /// as taken for this initiator, silence makes the address wait.
    pub fn record(
        &mut self,
        id: Identity,
        host: usize,
        gateway: Ipv4Addr,
        w: Ipv4Addr,
        outcome: &SetupOutcome,
        now: Instant,
    ) {
        if id.is_general() || *outcome == SetupOutcome::Timeout {
            Self::remember(&mut self.waiting, w, now + self.wait, now);
            if !id.is_general() {
                self.forget_host(id, host, w);
            }
            return;
        }
        let until = now + self.memory;
        match outcome {
            SetupOutcome::Accept => {
                Self::remember(
                    &mut self.grants,
                    (id, w),
                    Grant {
                        host: Some((host, gateway)),
                        until,
                    },
                    now,
                );
                Self::remember(&mut self.by_host, (id, host), (w, gateway, until), now);
            }
            SetupOutcome::Reject(_) | SetupOutcome::Timeout => {
                Self::remember(&mut self.grants, (id, w), Grant { host: None, until }, now);
                self.forget_host(id, host, w);
            }
        }
    }

    fn forget_host(&mut self, id: Identity, host: usize, w: Ipv4Addr) {
        if self
            .by_host
            .get(&(id, host))
            .is_some_and(|(x, _, _)| *x == w)
        {
            self.by_host.remove(&(id, host));
        }
    }

    /// Inserts into a bounded map: when full, expired entries go first; when still
    /// full, the new entry is not remembered (the memory is advice).
    fn remember<K: std::hash::Hash + Eq, V: Expires>(
        map: &mut HashMap<K, V>,
        key: K,
        value: V,
        now: Instant,
    ) {
        if map.len() >= MAX_REMEMBERED && !map.contains_key(&key) {
            map.retain(|_, v| now < v.until());
            if map.len() >= MAX_REMEMBERED {
                return;
            }
        }
        map.insert(key, value);
    }

    /// Entries remembered now (grants, per-host grants, wait states).
    #[cfg(test)]
    pub fn remembered(&self) -> (usize, usize, usize) {
        (self.grants.len(), self.by_host.len(), self.waiting.len())
    }
}

trait Expires {
    fn until(&self) -> Instant;
}

impl Expires for Grant {
    fn until(&self) -> Instant {
        self.until
    }
}

impl Expires for (Ipv4Addr, Ipv4Addr, Instant) {
    fn until(&self) -> Instant {
        self.2
    }
}

impl Expires for Instant {
    fn until(&self) -> Instant {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_dns;
    use std::path::Path;

    pub(crate) const SPEC: &str = r#"
[dns]
listen = "127.0.0.1:5353"
zone = "aves.example."
[[dns.ns]]
name = "ns1"
address = "192.0.2.53"
[[dns.waypoint]]
control = "192.0.2.10:4500"
addresses = ["198.51.100.10-198.51.100.12", "198.51.100.20"]
[[dns.gateway]]
id = 1
address = "203.0.113.7"
[[dns.gateway]]
id = 2
[[dns.host]]
name = "b.home1"
gateway_id = 1
address = "192.168.1.10"
services = ["tcp22"]
[[dns.host]]
name = "c.deep.home1"
gateway_id = 2
address = "192.168.1.11"
"#;

    fn lower(s: &str) -> LowerName {
        LowerName::new(&Name::from_ascii(s).unwrap())
    }

    #[test]
    fn names_resolve_to_what_they_are() {
        let spec = parse_dns(Path::new("t"), SPEC).unwrap();
        let z = Zone::new(&spec);
        assert_eq!(z.lookup(&lower("aves.example.")), Lookup::Apex);
        assert_eq!(z.lookup(&lower("AVES.example.")), Lookup::Apex);
        assert_eq!(
            z.lookup(&lower("ns1.aves.example.")),
            Lookup::NsAddress(Ipv4Addr::new(192, 0, 2, 53))
        );
        assert_eq!(z.lookup(&lower("b.home1.aves.example.")), Lookup::Host(0));
        assert_eq!(
            z.lookup(&lower("TCP22.b.home1.aves.example.")),
            Lookup::Host(0)
        );
        assert_eq!(
            z.lookup(&lower("c.deep.home1.aves.example.")),
            Lookup::Host(1)
        );
        assert_eq!(
            z.lookup(&lower("home1.aves.example.")),
            Lookup::EmptyNonTerminal
        );
        assert_eq!(
            z.lookup(&lower("deep.home1.aves.example.")),
            Lookup::EmptyNonTerminal
        );
        assert_eq!(z.lookup(&lower("x.aves.example.")), Lookup::NotFound);
        assert_eq!(
            z.lookup(&lower("x.b.home1.aves.example.")),
            Lookup::NotFound
        );
        assert_eq!(
            z.lookup(&lower("tcp23.b.home1.aves.example.")),
            Lookup::NotFound
        );
        assert_eq!(z.lookup(&lower("example.")), Lookup::OutOfZone);
        assert_eq!(z.lookup(&lower("aves.example.org.")), Lookup::OutOfZone);
        assert_eq!(z.lookup(&lower(".")), Lookup::OutOfZone);
        assert_eq!(z.negative_soa().ttl, 60, "min(ttl, minimum)");
        assert_eq!(z.soa().ttl, 3600);
        assert_eq!(z.ns().len(), 1);
        assert_eq!(z.glue().len(), 1);
    }

    #[test]
    fn register_updates_gateway_address() {
        let spec = parse_dns(Path::new("t"), SPEC).unwrap();
        let z = Zone::new(&spec);
        assert_eq!(z.gateway_address(0), Some(Ipv4Addr::new(203, 0, 113, 7)));
        assert_eq!(z.gateway_address(1), None, "unknown until REGISTER");
        assert!(z.set_gateway_address(2, Ipv4Addr::new(203, 0, 113, 9)));
        assert_eq!(z.gateway_address(1), Some(Ipv4Addr::new(203, 0, 113, 9)));
        assert!(!z.set_gateway_address(3, Ipv4Addr::new(203, 0, 113, 9)));
        assert!(!z.set_gateway_address(1, Ipv4Addr::UNSPECIFIED));
        assert_eq!(z.gateway_address(0), Some(Ipv4Addr::new(203, 0, 113, 7)));
        assert_eq!(z.gateway_address(9), None);
    }

    fn pool() -> Waypoints {
        let spec = parse_dns(Path::new("t"), SPEC).unwrap();
        Waypoints::new(
            &spec.waypoints,
            Duration::from_secs(120),
            Duration::from_secs(2),
        )
    }

    const G: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

    fn w(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, last)
    }

    #[test]
    fn a_choice_in_flight_is_not_given_to_another_host_of_the_same_initiator() {
        let mut p = pool();
        let t = Instant::now();
        let a = Identity {
            addr: Ipv4Addr::new(10, 1, 0, 5),
            prefix: 32,
        };
        let other = Identity {
            addr: Ipv4Addr::new(10, 1, 0, 6),
            prefix: 32,
        };
        // A's SETUP for host 0 is in flight (nothing recorded) while the round robin
        // wraps (other initiators' queries); A's query for host 1 must skip that address.
        let w0 = p.choose(a, 0, G, t).unwrap();
        for _ in 0..3 {
            p.choose(other, 5, G, t).unwrap();
        }
        let w1 = p.choose(a, 1, G, t).unwrap();
        assert_ne!(w1, w0);
        // The reservation is only for A: another initiator still gets w0 in its turn.
        let seen: Vec<_> = (0..4).map(|_| p.choose(other, 6, G, t).unwrap()).collect();
        assert!(seen.contains(&w0), "{seen:?}");
        // Once recorded, the address is A's for host 0.
        p.record(a, 0, G, w0, &SetupOutcome::Accept, t);
        assert_eq!(p.choose(a, 0, G, t), Some(w0));
    }

    #[test]
    fn round_robin_over_all_ranges() {
        let mut p = pool();
        let t = Instant::now();
        let general = Identity {
            addr: Ipv4Addr::new(10, 9, 9, 9),
            prefix: 0,
        };
        let got: Vec<_> = (0..5)
            .map(|_| p.choose(general, 0, G, t).unwrap())
            .collect();
        assert_eq!(got, [w(10), w(11), w(12), w(20), w(10)]);
    }

    #[test]
    fn known_initiator_reuses_its_address_and_avoids_taken_ones() {
        let mut p = pool();
        let t = Instant::now();
        let a = Identity {
            addr: Ipv4Addr::new(10, 1, 0, 5),
            prefix: 32,
        };
        let other = Identity {
            addr: Ipv4Addr::new(10, 1, 0, 6),
            prefix: 32,
        };
        let w0 = p.choose(a, 0, G, t).unwrap();
        p.record(a, 0, G, w0, &SetupOutcome::Accept, t);
        assert_eq!(
            p.choose(a, 0, G, t),
            Some(w0),
            "same responder: same address"
        );
        // Another responder for A: not w0 (one responder per initiator and address).
        let w1 = p.choose(a, 1, G, t).unwrap();
        assert_ne!(w1, w0);
        // Another initiator may get w0 in its turn.
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(p.choose(other, 1, G, t).unwrap());
        }
        assert!(seen.contains(&w0));
        // A REJECT marks the address as taken for that initiator.
        p.record(a, 1, G, w1, &SetupOutcome::Reject("taken".into()), t);
        for _ in 0..8 {
            let x = p.choose(a, 1, G, t).unwrap();
            assert!(x != w1 && x != w0, "{x}");
        }
        // Memory fades: after grant_memory, w0 may serve A for another host again.
        let later = t + Duration::from_secs(121);
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(p.choose(a, 1, G, later).unwrap());
        }
        assert!(seen.contains(&w0) && seen.contains(&w1));
    }

    #[test]
    fn general_mode_skips_addresses_in_their_wait_state() {
        let mut p = pool();
        let t = Instant::now();
        let r = Identity {
            addr: Ipv4Addr::new(10, 9, 9, 9),
            prefix: 0,
        };
        let w0 = p.choose(r, 0, G, t).unwrap();
        p.record(r, 0, G, w0, &SetupOutcome::Accept, t);
        // The next four choices within Twait never give w0 ...
        for _ in 0..6 {
            assert_ne!(
                p.choose(r, 0, G, t + Duration::from_millis(1999)).unwrap(),
                w0
            );
        }
        // ... and a known initiator is not given it either (the waypoint would ignore
        // the SETUP while it waits).
        let a = Identity {
            addr: Ipv4Addr::new(10, 1, 0, 5),
            prefix: 32,
        };
        for _ in 0..6 {
            assert_ne!(p.choose(a, 0, G, t).unwrap(), w0);
        }
        // All waiting: the next address anyway.
        for x in [10, 11, 12, 20] {
            p.record(r, 0, G, w(x), &SetupOutcome::Timeout, t);
        }
        assert!(p.choose(r, 0, G, t).is_some());
        assert_eq!(p.remembered().2, 4);
    }

    #[test]
    fn a_moved_gateway_gets_a_fresh_address() {
        let mut p = pool();
        let t = Instant::now();
        let a = Identity {
            addr: Ipv4Addr::new(10, 1, 0, 5),
            prefix: 32,
        };
        let w0 = p.choose(a, 0, G, t).unwrap();
        p.record(a, 0, G, w0, &SetupOutcome::Accept, t);
        assert_eq!(p.choose(a, 0, G, t), Some(w0));
        // The gateway registered a new address: the old binding at w0 names the old
        // one, so w0 is not asked again for this initiator and host.
        let moved = Ipv4Addr::new(203, 0, 113, 9);
        for _ in 0..8 {
            assert_ne!(p.choose(a, 0, moved, t), Some(w0));
        }
        let w1 = p.choose(a, 0, moved, t).unwrap();
        p.record(a, 0, moved, w1, &SetupOutcome::Accept, t);
        assert_eq!(p.choose(a, 0, moved, t), Some(w1));
    }

    #[test]
    fn no_waypoints_means_no_choice() {
        let mut p = Waypoints::new(&[], Duration::from_secs(1), Duration::from_secs(1));
        let a = Identity {
            addr: Ipv4Addr::new(10, 1, 0, 5),
            prefix: 32,
        };
        assert_eq!(p.choose(a, 0, G, Instant::now()), None);
    }
}
