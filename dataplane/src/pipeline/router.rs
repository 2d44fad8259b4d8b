//! The IPv4 router role (RFC 1812), sans-IO.
//!
//! Per frame: Ethernet checks → ARP (answer for every owned address, including whole
//! pools; learn neighbours per RFC 826's merge rule) or IPv4 (verify the header and its
//! checksum, answer echo requests to owned addresses in place, else longest-prefix
//! match, TTL decrement with an RFC 1624 checksum update, next-hop MAC from the neighbour
//! table or a `Resolve` verdict for the ARP wait queue).
//!
//! ICMP errors (time exceeded, net unreachable, fragmentation needed) are built **in the
//! buffer of the packet that caused them**: the buffer grows 28 bytes at the front, which
//! leaves the invoking datagram exactly where an ICMP error quotes it, then the tail is
//! trimmed to the quote RFC 1812 §4.3.2.3 allows (576 bytes in all). No copy, no
//! allocation. Errors are suppressed as RFC 1812 §4.3.2.7 demands (about ICMP errors,
//! non-first fragments, broadcast/multicast, invalid sources) and rate-limited by a token
//! bucket per core (§4.3.2.8); suppressed errors count in `events.icmp_suppressed`.
//!
//! Invariants: `process` never panics, allocates or locks; every packet ends in exactly
//! one verdict; a packet dropped while an ICMP error is sent in its place is counted
//! under its drop reason by `process` itself (the verdict is then `Forward`).
//!
//! Not done here (yet): forwarding-time fragmentation of DF-clear packets larger than the
//! egress MTU (dropped as `MtuExceeded`; the AVES waypoint fragments on its own path),
//! IP options processing (options are forwarded untouched), ICMP redirects.

use crate::addr::{Ipv4Cidr, Ipv4Range, MacAddr};
use crate::buf::PacketBuf;
use crate::command::{Command, CommandError, Notice, Route};
use crate::counters::{CoreCounters, DropReason, Table, MAX_PORTS};
use crate::pipeline::neighbour::NeighbourTable;
use crate::pipeline::route::{NextHop, RouteEntry, RouteTable};
use crate::pipeline::{deliver, Io, Role};
use crate::verdict::Verdict;
use crate::wire::{arp, ethernet, icmpv4, ipv4};
use std::net::Ipv4Addr;

/// TTL of packets the router originates (echo replies, ICMP errors).
pub const ORIGINATED_TTL: u8 = 64;
/// ICMP errors per second per core (token bucket rate), RFC 1812 §4.3.2.8.
pub const ICMP_ERRORS_PER_SEC: u64 = 1000;
/// Token bucket depth: errors that may go out back to back.
pub const ICMP_ERROR_BURST: u64 = 100;

const ETH: usize = ethernet::HEADER_LEN;
/// Bytes an ICMP error adds in front of the quoted datagram: IPv4 header + ICMP header.
const ERROR_OVERHEAD: usize = ipv4::MIN_HEADER_LEN + icmpv4::HEADER_LEN;
/// The longest quote of the invoking datagram (RFC 1812 §4.3.2.3: 576 bytes in all).
const MAX_QUOTE: usize = icmpv4::ERROR_MAX_LEN - icmpv4::HEADER_LEN;
/// Minimum Ethernet frame without FCS.
const MIN_FRAME: usize = 60;

/// One port as the router sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// The port's MAC (from the NIC).
    pub mac: MacAddr,
    /// Interface addresses with their prefix; each adds a connected route.
    pub addrs: Vec<Ipv4Cidr>,
    /// Extra owned addresses (e.g. a waypoint pool): answered to ARP and to ping.
    pub pools: Vec<Ipv4Range>,
    /// IP MTU of the port (1500 on Ethernet).
    pub mtu: u16,
}

/// Everything the router role needs at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// Ports indexed by DPDK port id.
    pub ports: Vec<PortConfig>,
    /// Static routes (connected routes come from `ports`).
    pub routes: Vec<Route>,
    /// Static neighbours: (port, ip, mac).
    pub neighbours: Vec<(u16, Ipv4Addr, MacAddr)>,
    /// Route table capacity (connected + static + added at run time).
    pub route_capacity: usize,
    /// Neighbour table capacity (static + learned).
    pub neighbour_capacity: usize,
    /// How long a learned neighbour stays valid, ns.
    pub neighbour_ttl_ns: u64,
}

/// Invalid router configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfigError(pub String);

impl<B: PacketBuf> Role<B> for Router {
    fn handle(
        &mut self,
        mut buf: B,
        in_port: u16,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        let v = self.process(&mut buf, in_port, now_ns, counters);
        deliver(buf, v, io);
    }
    fn apply(&mut self, cmd: &Command, now_ns: u64) -> Result<(), CommandError> {
        Router::apply(self, cmd, now_ns)
    }
    fn neighbour(&self, port: u16, ip: Ipv4Addr, now_ns: u64) -> Option<MacAddr> {
        Router::neighbour(self, port, ip, now_ns)
    }
    fn build_arp_request(&self, buf: &mut B, port: u16, target: Ipv4Addr) -> bool {
        Router::build_arp_request(self, buf, port, target)
    }
    fn pop_learned(&mut self) -> Option<Notice> {
        Router::pop_learned(self)
    }
    fn report(&self, counters: &CoreCounters) {
        Router::report(self, counters);
    }
}

/// Token bucket for originated ICMP errors.
#[derive(Debug)]
struct Bucket {
    tokens: u64,
    last_ns: u64,
}

impl Bucket {
    fn take(&mut self, now_ns: u64) -> bool {
        let elapsed = now_ns.saturating_sub(self.last_ns);
        let add = elapsed.saturating_mul(ICMP_ERRORS_PER_SEC) / 1_000_000_000;
        if add > 0 {
            self.tokens = (self.tokens + add).min(ICMP_ERROR_BURST);
            self.last_ns = now_ns;
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

/// The router role's per-core state.
#[derive(Debug)]
pub struct Router {
    ports: Vec<PortConfig>,
    routes: RouteTable,
    neighbours: NeighbourTable,
    bucket: Bucket,
    next_ident: u16,
    /// Neighbours learned since the engine last asked (see [`Router::pop_learned`]).
    learned: [Option<Notice>; LEARNED_SLOTS],
    learned_len: usize,
}

/// Learned-neighbour notices kept between two engine iterations; more are not reported
/// (the other lcores then learn them from their own ARP traffic or a later refresh).
const LEARNED_SLOTS: usize = 16;

/// What an ICMP error to originate says.
#[derive(Clone, Copy, Debug)]
pub struct IcmpError {
    /// ICMP type.
    pub msg_type: u8,
    /// ICMP code.
    pub code: u8,
    /// Next-hop MTU for "fragmentation needed" (RFC 1191), else 0.
    pub mtu: u16,
    /// Why the invoking packet is dropped.
    pub reason: DropReason,
}

/// True for an address that may be a packet's source (RFC 1812 §5.3.7, §4.2.2.11).
pub fn valid_source(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_multicast() || ip.is_broadcast() || o[0] == 0 || o[0] == 127 || o[0] >= 240)
}

impl Router {
    /// Builds the tables. Errors when the config does not fit the capacities or a route
    /// names a missing port.
    pub fn new(cfg: &RouterConfig) -> Result<Router, RouterConfigError> {
        let err = |m: String| Err(RouterConfigError(m));
        if cfg.ports.is_empty() || cfg.ports.len() > MAX_PORTS {
            return err(format!(
                "{} ports configured; 1..={MAX_PORTS} supported",
                cfg.ports.len()
            ));
        }
        for (i, p) in cfg.ports.iter().enumerate() {
            if p.mtu < 68 {
                return err(format!(
                    "port {i}: mtu {} is below IPv4's minimum of 68",
                    p.mtu
                ));
            }
        }
        let mut routes = RouteTable::with_capacity(cfg.route_capacity);
        for (i, p) in cfg.ports.iter().enumerate() {
            for a in &p.addrs {
                let entry = RouteEntry {
                    prefix: a.network(),
                    next_hop: NextHop::Connected,
                    port: i as u16,
                };
                if routes.insert(entry).is_err() {
                    return err(format!(
                        "limits.routes = {} cannot hold the connected routes",
                        cfg.route_capacity
                    ));
                }
            }
        }
        for r in &cfg.routes {
            if usize::from(r.port) >= cfg.ports.len() {
                return err(format!("route {}: no port {}", r.prefix, r.port));
            }
            if routes.insert(RouteEntry::from(*r)).is_err() {
                return err(format!(
                    "limits.routes = {} cannot hold the connected and static routes",
                    cfg.route_capacity
                ));
            }
        }
        let mut neighbours =
            NeighbourTable::with_capacity(cfg.neighbour_capacity, cfg.neighbour_ttl_ns);
        for &(port, ip, mac) in &cfg.neighbours {
            if usize::from(port) >= cfg.ports.len() {
                return err(format!("neighbour {ip}: no port {port}"));
            }
            if neighbours.insert_static(port, ip, mac).is_err() {
                return err(format!(
                    "limits.neighbours = {} cannot hold the static neighbours",
                    cfg.neighbour_capacity
                ));
            }
        }
        Ok(Router {
            ports: cfg.ports.clone(),
            routes,
            neighbours,
            bucket: Bucket {
                tokens: ICMP_ERROR_BURST,
                last_ns: 0,
            },
            next_ident: 1,
            learned: [None; LEARNED_SLOTS],
            learned_len: 0,
        })
    }

    /// Processes one frame received on `in_port`.
    pub fn process<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        in_port: u16,
        now_ns: u64,
        counters: &CoreCounters,
    ) -> Verdict {
        let Some(port) = self.ports.get(usize::from(in_port)) else {
            return Verdict::Drop(DropReason::BadPort);
        };
        let Ok(frame) = ethernet::Frame::new_checked(buf.data()) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        let dst = frame.dst();
        let broadcast = dst.is_broadcast();
        if dst != port.mac && !broadcast {
            return Verdict::Drop(DropReason::NotForUs);
        }
        match frame.ethertype() {
            ethernet::ethertype::ARP => self.arp(buf, in_port, now_ns, counters),
            ethernet::ethertype::IPV4 if broadcast => Verdict::Drop(DropReason::NotForUs),
            ethernet::ethertype::IPV4 => self.ipv4(buf, in_port, now_ns, counters),
            _ => Verdict::Drop(DropReason::UnsupportedEtherType),
        }
    }

    /// Applies a control command.
    pub fn apply(&mut self, cmd: &Command, now_ns: u64) -> Result<(), CommandError> {
        match cmd {
            Command::AddRoute(r) => {
                self.check_port(r.port)?;
                self.routes.insert(RouteEntry::from(*r))
            }
            Command::DelRoute { prefix } => self.routes.remove(*prefix).map(|_| ()),
            Command::AddNeighbour { port, ip, mac } => {
                self.check_port(*port)?;
                self.neighbours.insert_static(*port, *ip, *mac)
            }
            Command::DelNeighbour { port, ip } => {
                self.check_port(*port)?;
                self.neighbours.remove(*port, *ip)
            }
            Command::LearnNeighbour { port, ip, mac } => {
                self.check_port(*port)?;
                self.neighbours.learn(*port, *ip, *mac, now_ns).map(|_| ())
            }
            Command::SetAddress { port, addr } => self.set_address(*port, *addr),
            Command::AddBinding(_)
            | Command::DelBinding { .. }
            | Command::BeginWait(_)
            | Command::RejectSource { .. } => Err(CommandError::Unsupported),
        }
    }

    /// Writes the occupancy of the route and neighbour tables into `counters`.
    pub fn report(&self, counters: &CoreCounters) {
        counters.set_table(Table::Routes, self.routes.len());
        counters.set_table(Table::Neighbours, self.neighbours.len());
    }

    /// Takes one neighbour learned from ARP on this lcore since the last call, for the
    /// engine to pass on to the other lcores.
    pub fn pop_learned(&mut self) -> Option<Notice> {
        if self.learned_len == 0 {
            return None;
        }
        self.learned_len -= 1;
        self.learned
            .get_mut(self.learned_len)
            .and_then(Option::take)
    }

    /// `Command::SetAddress`: `addr` replaces the port's first address; the connected
    /// route of the old one goes (unless another address still needs it), the new one's
    /// comes. On error nothing changed.
    fn set_address(&mut self, port: u16, addr: Ipv4Cidr) -> Result<(), CommandError> {
        self.check_port(port)?;
        let ip = addr.addr();
        if ip.is_unspecified()
            || ip.is_broadcast()
            || ip.is_multicast()
            || (addr.len() < 31 && (ip == addr.network().addr() || ip == addr.broadcast()))
        {
            return Err(CommandError::Invalid);
        }
        let old = self
            .ports
            .get(usize::from(port))
            .and_then(|p| p.addrs.first().copied());
        let new_net = addr.network();
        let old_net = old.map(|o| o.network());
        if old_net != Some(new_net) {
            self.routes.insert(RouteEntry {
                prefix: new_net,
                next_hop: NextHop::Connected,
                port,
            })?;
            if let Some(o) = old_net {
                let still_needed = self.ports.iter().enumerate().any(|(i, p)| {
                    p.addrs
                        .iter()
                        .enumerate()
                        .any(|(j, a)| !(i == usize::from(port) && j == 0) && a.network() == o)
                });
                let connected_here = self
                    .routes
                    .get(o)
                    .is_some_and(|e| e.next_hop == NextHop::Connected && e.port == port);
                if connected_here && !still_needed {
                    let _ = self.routes.remove(o);
                }
            }
        }
        if let Some(p) = self.ports.get_mut(usize::from(port)) {
            match p.addrs.first_mut() {
                Some(first) => *first = addr,
                None => p.addrs.push(addr),
            }
        }
        Ok(())
    }

    fn check_port(&self, port: u16) -> Result<(), CommandError> {
        if usize::from(port) < self.ports.len() {
            Ok(())
        } else {
            Err(CommandError::BadPort)
        }
    }

    /// The MAC of `ip` on `port`, if resolved and not expired.
    pub fn neighbour(&self, port: u16, ip: Ipv4Addr, now_ns: u64) -> Option<MacAddr> {
        self.neighbours.lookup(port, ip, now_ns)
    }

    /// The route `dst` takes, if any (for tests and the control plane).
    pub fn route(&self, dst: Ipv4Addr) -> Option<RouteEntry> {
        self.routes.lookup(dst).copied()
    }

    /// Writes a broadcast ARP request for `target` from `port` into `buf` (an empty
    /// buffer with tailroom), padded to the 60-byte Ethernet minimum. The sender address
    /// is the port's address on `target`'s subnet, else its first address. Returns false
    /// (buffer unchanged or partly grown, to be freed) if it cannot.
    pub fn build_arp_request<B: PacketBuf>(
        &self,
        buf: &mut B,
        port: u16,
        target: Ipv4Addr,
    ) -> bool {
        let Some(p) = self.ports.get(usize::from(port)) else {
            return false;
        };
        let Some(src) = p
            .addrs
            .iter()
            .find(|a| a.contains(target))
            .or_else(|| p.addrs.first())
            .map(|a| a.addr())
        else {
            return false;
        };
        let have = buf.len();
        if have > 0 && !buf.trim(have) {
            return false;
        }
        if !buf.append(MIN_FRAME) {
            return false;
        }
        let data = buf.data_mut();
        data.fill(0);
        let mut f = ethernet::Frame::new_unchecked(&mut *data);
        f.set_dst(MacAddr::BROADCAST);
        f.set_src(p.mac);
        f.set_ethertype(ethernet::ethertype::ARP);
        let Some(body) = data.get_mut(ETH..ETH + arp::PACKET_LEN) else {
            return false;
        };
        arp::ArpRepr {
            op: arp::op::REQUEST,
            sender_mac: p.mac,
            sender_ip: src,
            target_mac: MacAddr::ZERO,
            target_ip: target,
        }
        .emit(&mut arp::Packet::new_unchecked(body));
        true
    }

    /// True if `ip` is an address or pool address of `port`.
    fn owns_on(&self, port: u16, ip: Ipv4Addr) -> bool {
        self.ports
            .get(usize::from(port))
            .is_some_and(|p| Self::port_owns(p, ip))
    }

    fn port_owns(p: &PortConfig, ip: Ipv4Addr) -> bool {
        p.addrs.iter().any(|a| a.addr() == ip) || p.pools.iter().any(|r| r.contains(ip))
    }

    /// True if `ip` is in a pool of any port (a waypoint address).
    pub fn is_pool(&self, ip: Ipv4Addr) -> bool {
        self.ports
            .iter()
            .any(|p| p.pools.iter().any(|r| r.contains(ip)))
    }

    /// The port's MAC.
    pub fn port_mac(&self, port: u16) -> Option<MacAddr> {
        self.ports.get(usize::from(port)).map(|p| p.mac)
    }

    /// The port's MTU.
    pub fn mtu(&self, port: u16) -> Option<u16> {
        self.ports.get(usize::from(port)).map(|p| p.mtu)
    }

    /// The port's first interface address.
    pub fn port_addr(&self, port: u16) -> Option<Ipv4Addr> {
        self.ports
            .get(usize::from(port))
            .and_then(|p| p.addrs.first())
            .map(|a| a.addr())
    }

    /// Number of ports.
    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    /// A fresh identification for a datagram this core originates.
    pub fn next_ident(&mut self) -> u16 {
        let id = self.next_ident;
        self.next_ident = self.next_ident.wrapping_add(1);
        id
    }

    /// True if `ip` is owned by any port.
    fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.ports.iter().any(|p| Self::port_owns(p, ip))
    }

    /// True if `ip` is the directed broadcast address of a connected subnet.
    fn is_directed_broadcast(&self, ip: Ipv4Addr) -> bool {
        self.ports
            .iter()
            .flat_map(|p| p.addrs.iter())
            .any(|a| a.len() < 31 && a.broadcast() == ip)
    }

    fn arp<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        in_port: u16,
        now_ns: u64,
        counters: &CoreCounters,
    ) -> Verdict {
        let Some(body) = buf.data().get(ETH..) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        let Ok(pkt) = arp::Packet::new_checked(body) else {
            return Verdict::Drop(DropReason::ArpMalformed);
        };
        let Ok(req) = arp::ArpRepr::parse(&pkt) else {
            return Verdict::Drop(DropReason::ArpMalformed);
        };
        let Some(port) = self.ports.get(usize::from(in_port)) else {
            return Verdict::Drop(DropReason::BadPort);
        };
        let port_mac = port.mac;
        let for_us = self.owns_on(in_port, req.target_ip);
        let on_link = port.addrs.iter().any(|a| a.contains(req.sender_ip));

        // RFC 826 merge: refresh an entry we have; add one when the packet is for us.
        let mut learned = false;
        if on_link
            && valid_source(req.sender_ip)
            && !req.sender_mac.is_multicast()
            && req.sender_mac != MacAddr::ZERO
            && (for_us
                || self
                    .neighbours
                    .lookup(in_port, req.sender_ip, now_ns)
                    .is_some())
        {
            if let Ok(changed) =
                self.neighbours
                    .learn(in_port, req.sender_ip, req.sender_mac, now_ns)
            {
                learned = true;
                if changed {
                    counters.events.neighbours_learned.inc();
                    if let Some(slot) = self.learned.get_mut(self.learned_len) {
                        *slot = Some(Notice::neighbour(in_port, req.sender_ip, req.sender_mac));
                        self.learned_len += 1;
                    }
                }
            }
        }

        match req.op {
            arp::op::REQUEST if for_us => {
                let data = buf.data_mut();
                let mut f = ethernet::Frame::new_unchecked(&mut *data);
                f.set_dst(req.sender_mac);
                f.set_src(port_mac);
                let Some(body) = data.get_mut(ETH..ETH + arp::PACKET_LEN) else {
                    return Verdict::Drop(DropReason::Truncated);
                };
                arp::ArpRepr {
                    op: arp::op::REPLY,
                    sender_mac: port_mac,
                    sender_ip: req.target_ip,
                    target_mac: req.sender_mac,
                    target_ip: req.sender_ip,
                }
                .emit(&mut arp::Packet::new_unchecked(body));
                counters.events.arp_replies_sent.inc();
                Verdict::Forward { port: in_port }
            }
            arp::op::REPLY if learned => Verdict::Consumed,
            _ => Verdict::Drop(DropReason::ArpIgnored),
        }
    }

    fn ipv4<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        in_port: u16,
        now_ns: u64,
        counters: &CoreCounters,
    ) -> Verdict {
        let Some(body) = buf.data().get(ETH..) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        let Ok(ip) = ipv4::Packet::new_checked(body) else {
            return Verdict::Drop(DropReason::Ipv4Malformed);
        };
        if !ip.verify_checksum() {
            return Verdict::Drop(DropReason::Ipv4Checksum);
        }
        let (src, dst, ttl) = (ip.src(), ip.dst(), ip.ttl());
        let total_len = usize::from(ip.total_len());
        let df = ip.dont_frag();

        // Drop Ethernet padding so lengths below are the datagram's.
        let extra = buf.len().saturating_sub(ETH + total_len);
        if extra > 0 && !buf.trim(extra) {
            return Verdict::Drop(DropReason::Ipv4Malformed);
        }
        if !valid_source(src) {
            return Verdict::Drop(DropReason::Ipv4BadSource);
        }
        if self.is_local(dst) {
            return self.local(buf, now_ns, counters);
        }
        if dst.is_multicast() || dst.is_broadcast() || self.is_directed_broadcast(dst) {
            return Verdict::Drop(DropReason::NotForUs);
        }
        if ttl <= 1 {
            return self.icmp_error(
                buf,
                in_port,
                now_ns,
                counters,
                IcmpError {
                    msg_type: icmpv4::msg::TIME_EXCEEDED,
                    code: icmpv4::time_exceeded::TTL,
                    mtu: 0,
                    reason: DropReason::TtlExceeded,
                },
            );
        }
        let Some(route) = self.routes.lookup(dst).copied() else {
            return self.icmp_error(
                buf,
                in_port,
                now_ns,
                counters,
                IcmpError {
                    msg_type: icmpv4::msg::DST_UNREACHABLE,
                    code: icmpv4::unreach::NET,
                    mtu: 0,
                    reason: DropReason::NoRoute,
                },
            );
        };
        let Some(out) = self.ports.get(usize::from(route.port)) else {
            return Verdict::Drop(DropReason::BadPort);
        };
        if total_len > usize::from(out.mtu) {
            if !df {
                return Verdict::Drop(DropReason::MtuExceeded);
            }
            let mtu = out.mtu;
            return self.icmp_error(
                buf,
                in_port,
                now_ns,
                counters,
                IcmpError {
                    msg_type: icmpv4::msg::DST_UNREACHABLE,
                    code: icmpv4::unreach::FRAG_NEEDED,
                    mtu,
                    reason: DropReason::MtuExceeded,
                },
            );
        }
        let Some(body) = buf.data_mut().get_mut(ETH..) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        ipv4::Packet::new_unchecked(body).decrement_ttl();
        self.send(buf, route.port, route.next_hop_for(dst), now_ns)
    }

    /// Addressed to one of our addresses: answer echo requests, drop the rest.
    fn local<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        now_ns: u64,
        counters: &CoreCounters,
    ) -> Verdict {
        let Some(body) = buf.data_mut().get_mut(ETH..) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        let mut ip = ipv4::Packet::new_unchecked(body);
        if ip.protocol() != ipv4::protocol::ICMP || ip.is_fragment() {
            return Verdict::Drop(DropReason::LocalUnhandled);
        }
        let (src, dst) = (ip.src(), ip.dst());
        {
            let Ok(icmp) = icmpv4::Packet::new_checked(ip.payload()) else {
                return Verdict::Drop(DropReason::IcmpMalformed);
            };
            if !icmp.verify_checksum() {
                return Verdict::Drop(DropReason::IcmpMalformed);
            }
            if icmp.msg_type() != icmpv4::msg::ECHO_REQUEST || icmp.code() != 0 {
                return Verdict::Drop(DropReason::LocalUnhandled);
            }
        }
        let Some(route) = self.routes.lookup(src).copied() else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        // The reply is as long as the request, which may have come over a link with a
        // larger MTU than the one the reply leaves by (found by fuzzing, `router`).
        if usize::from(ip.total_len()) > usize::from(self.mtu(route.port).unwrap_or(0)) {
            return Verdict::Drop(DropReason::MtuExceeded);
        }
        // Echo reply in place (RFC 792): type 0, same identifier, sequence and data;
        // from the address that was pinged (a pool address answers for itself).
        {
            let mut icmp = icmpv4::Packet::new_unchecked(ip.payload_mut());
            icmp.set_msg_type(icmpv4::msg::ECHO_REPLY);
            icmp.fill_checksum();
        }
        ip.set_src(dst);
        ip.set_dst(src);
        ip.set_ttl(ORIGINATED_TTL);
        ip.fill_checksum();
        counters.events.icmp_sent.inc();
        self.send(buf, route.port, route.next_hop_for(src), now_ns)
    }

    /// Turns the invoking packet in `buf` into the ICMP error `e` addressed to its source,
    /// or drops it silently when RFC 1812 §4.3.2.7 or the rate limit says so.
    pub fn icmp_error<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        in_port: u16,
        now_ns: u64,
        counters: &CoreCounters,
        e: IcmpError,
    ) -> Verdict {
        let suppressed = |counters: &CoreCounters| {
            counters.events.icmp_suppressed.inc();
            Verdict::Drop(e.reason)
        };
        let Some(body) = buf.data().get(ETH..) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        let ip = ipv4::Packet::new_unchecked(body);
        let orig_src = ip.src();
        let total_len = usize::from(ip.total_len());
        // §4.3.2.7: never about a non-first fragment or an ICMP error (or an ICMP
        // message too short to tell).
        if ip.frag_offset() != 0 {
            return suppressed(counters);
        }
        if ip.protocol() == ipv4::protocol::ICMP {
            match icmpv4::Packet::new_checked(ip.payload()) {
                Ok(m) if !m.is_error() => {}
                _ => return suppressed(counters),
            }
        }
        let Some(route) = self.routes.lookup(orig_src).copied() else {
            return suppressed(counters);
        };
        // §4.3.2.4: the source is an address of the interface the error leaves by.
        let Some(from) = self
            .ports
            .get(usize::from(route.port))
            .and_then(|p| p.addrs.first())
            .or_else(|| {
                self.ports
                    .get(usize::from(in_port))
                    .and_then(|p| p.addrs.first())
            })
            .map(|a| a.addr())
        else {
            return suppressed(counters);
        };
        if !self.bucket.take(now_ns) {
            return suppressed(counters);
        }
        // As much as fits in 576 bytes (RFC 1812 §4.3.2.3) and in the MTU of the port the
        // error leaves by, which may be as small as 68 (found by fuzzing, `router`). The
        // MTU floor of 68 leaves room for the IP header and 8 bytes it must quote.
        let out_mtu = self.mtu(route.port).map_or(0, usize::from);
        let quote = total_len
            .min(MAX_QUOTE)
            .min(out_mtu.saturating_sub(ERROR_OVERHEAD));
        if !buf.prepend(ERROR_OVERHEAD) {
            return suppressed(counters);
        }
        // The invoking datagram now starts at ETH + ERROR_OVERHEAD: where the quote goes.
        let want = ETH + ERROR_OVERHEAD + quote;
        let extra = buf.len().saturating_sub(want);
        if buf.len() < want || (extra > 0 && !buf.trim(extra)) {
            return suppressed(counters);
        }
        let ident = self.next_ident;
        self.next_ident = self.next_ident.wrapping_add(1);
        let data = buf.data_mut();
        ethernet::Frame::new_unchecked(&mut *data).set_ethertype(ethernet::ethertype::IPV4);
        let Some(body) = data.get_mut(ETH..) else {
            return suppressed(counters);
        };
        let mut ip = ipv4::Packet::new_unchecked(body);
        ipv4::Ipv4Repr {
            src: from,
            dst: orig_src,
            protocol: ipv4::protocol::ICMP,
            payload_len: (icmpv4::HEADER_LEN + quote) as u16,
            ttl: ORIGINATED_TTL,
            // Precedence 6, internetwork control (RFC 1812 §4.3.2.5).
            dscp_ecn: 0xc0,
            ident,
            dont_frag: false,
        }
        .emit(&mut ip);
        let mut icmp = icmpv4::Packet::new_unchecked(ip.payload_mut());
        icmp.set_msg_type(e.msg_type);
        icmp.set_code(e.code);
        icmp.set_rest_of_header(0);
        if e.mtu != 0 {
            icmp.set_next_hop_mtu(e.mtu);
        }
        icmp.fill_checksum();
        counters.events.icmp_sent.inc();
        counters.count_drop(e.reason);
        self.send(buf, route.port, route.next_hop_for(orig_src), now_ns)
    }

    /// Sends `buf` to `next_hop` on `port`, fragmenting it (RFC 791) when it exceeds the
    /// port's MTU. A datagram with DF set that does not fit is dropped as `mtu_exceeded`
    /// (callers that owe an ICMP "fragmentation needed" check DF before). Fragment
    /// buffers come from `io`; a failure emits nothing and is counted.
    pub fn send_fragmenting<B: PacketBuf>(
        &self,
        mut buf: B,
        port: u16,
        next_hop: Ipv4Addr,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        let mtu = self.mtu(port).unwrap_or(0);
        if buf.len() <= ETH + usize::from(mtu) {
            let v = self.send(&mut buf, port, next_hop, now_ns);
            return deliver(buf, v, io);
        }
        let mut out: [Option<B>; crate::pipeline::fragment::MAX_FRAGMENTS] =
            std::array::from_fn(|_| None);
        let mut n = 0usize;
        let res = {
            let (alloc_io, slots) = (&mut *io, &mut out);
            crate::pipeline::fragment::fragment(
                buf,
                mtu,
                || alloc_io.alloc(),
                |f| {
                    if let Some(s) = slots.get_mut(n) {
                        *s = Some(f);
                        n += 1;
                    }
                },
            )
        };
        match res {
            Ok(_) => {
                counters.events.fragments_made.add(n as u64);
                for mut f in out.into_iter().flatten() {
                    let v = self.send(&mut f, port, next_hop, now_ns);
                    deliver(f, v, io);
                }
            }
            Err(e) => counters.count_drop(e.drop_reason()),
        }
    }

    /// Sets the Ethernet addresses for `port` and `next_hop`; `Resolve` if its MAC is
    /// not known yet.
    pub fn send<B: PacketBuf>(
        &self,
        buf: &mut B,
        port: u16,
        next_hop: Ipv4Addr,
        now_ns: u64,
    ) -> Verdict {
        let Some(p) = self.ports.get(usize::from(port)) else {
            return Verdict::Drop(DropReason::BadPort);
        };
        let mut f = ethernet::Frame::new_unchecked(buf.data_mut());
        f.set_src(p.mac);
        match self.neighbours.lookup(port, next_hop, now_ns) {
            Some(mac) => {
                f.set_dst(mac);
                Verdict::Forward { port }
            }
            None => Verdict::Resolve { port, next_hop },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::wire::checksum;
    use crate::wire::icmpv4::Icmpv4Repr;
    use proptest::prelude::*;

    const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xa]);
    const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xb]);
    const HOST_A: MacAddr = MacAddr([0x02, 0, 0, 0, 1, 0xa]);
    const HOST_B: MacAddr = MacAddr([0x02, 0, 0, 0, 1, 0xb]);
    const GW: MacAddr = MacAddr([0x02, 0, 0, 0, 2, 0x1]);

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn cfg() -> RouterConfig {
        RouterConfig {
            ports: vec![
                PortConfig {
                    mac: MAC_A,
                    addrs: vec!["10.1.0.1/24".parse().unwrap()],
                    pools: vec![],
                    mtu: 1500,
                },
                PortConfig {
                    mac: MAC_B,
                    addrs: vec!["10.2.0.1/24".parse().unwrap()],
                    pools: vec!["10.2.0.100-10.2.0.149".parse().unwrap()],
                    mtu: 1400,
                },
            ],
            routes: vec![Route {
                prefix: "10.9.0.0/16".parse().unwrap(),
                via: Some(ip("10.2.0.254")),
                port: 1,
            }],
            neighbours: vec![(0, ip("10.1.0.2"), HOST_A), (1, ip("10.2.0.2"), HOST_B)],
            route_capacity: 16,
            neighbour_capacity: 16,
            neighbour_ttl_ns: 60_000_000_000,
        }
    }

    fn router() -> Router {
        Router::new(&cfg()).unwrap()
    }

    /// An Ethernet + IPv4 frame with `payload` as the IP payload.
    fn ipv4_frame(
        dst_mac: MacAddr,
        src: &str,
        dst: &str,
        ttl: u8,
        proto: u8,
        df: bool,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut v = vec![0u8; ETH + 20 + payload.len()];
        let mut f = ethernet::Frame::new_unchecked(&mut v[..]);
        f.set_dst(dst_mac);
        f.set_src(HOST_A);
        f.set_ethertype(ethernet::ethertype::IPV4);
        ipv4::Ipv4Repr {
            src: ip(src),
            dst: ip(dst),
            protocol: proto,
            payload_len: payload.len() as u16,
            ttl,
            dscp_ecn: 0,
            ident: 0x1234,
            dont_frag: df,
        }
        .emit(&mut ipv4::Packet::new_unchecked(&mut v[ETH..]));
        v[ETH + 20..].copy_from_slice(payload);
        v
    }

    fn echo_request(data: &[u8]) -> Vec<u8> {
        let r = Icmpv4Repr::EchoRequest {
            ident: 7,
            seq_no: 3,
            data,
        };
        let mut v = vec![0u8; r.buffer_len()];
        r.emit(&mut icmpv4::Packet::new_unchecked(&mut v[..]));
        v
    }

    fn run(r: &mut Router, frame: &[u8], port: u16) -> (Verdict, VecBuf, CoreCounters) {
        let c = CoreCounters::default();
        let mut b = VecBuf::from_slice(frame);
        let v = r.process(&mut b, port, 1_000, &c);
        (v, b, c)
    }

    fn arp_frame(op: u16, sender_ip: &str, target_ip: &str, dst: MacAddr) -> Vec<u8> {
        let mut v = vec![0u8; 60];
        let mut f = ethernet::Frame::new_unchecked(&mut v[..]);
        f.set_dst(dst);
        f.set_src(HOST_A);
        f.set_ethertype(ethernet::ethertype::ARP);
        arp::ArpRepr {
            op,
            sender_mac: HOST_A,
            sender_ip: ip(sender_ip),
            target_mac: if op == arp::op::REPLY {
                MAC_A
            } else {
                MacAddr::ZERO
            },
            target_ip: ip(target_ip),
        }
        .emit(&mut arp::Packet::new_unchecked(&mut v[ETH..ETH + 28]));
        v
    }

    fn parse_arp(b: &VecBuf) -> arp::ArpRepr {
        arp::ArpRepr::parse(&arp::Packet::new_checked(&b.data()[ETH..]).unwrap()).unwrap()
    }

    #[test]
    fn answers_arp_for_interface_and_pool_addresses() {
        let mut r = router();
        let (v, b, c) = run(
            &mut r,
            &arp_frame(1, "10.1.0.7", "10.1.0.1", MacAddr::BROADCAST),
            0,
        );
        assert_eq!(v, Verdict::Forward { port: 0 });
        let f = ethernet::Frame::new_checked(b.data()).unwrap();
        assert_eq!((f.dst(), f.src()), (HOST_A, MAC_A));
        let a = parse_arp(&b);
        assert_eq!(a.op, arp::op::REPLY);
        assert_eq!((a.sender_mac, a.sender_ip), (MAC_A, ip("10.1.0.1")));
        assert_eq!((a.target_mac, a.target_ip), (HOST_A, ip("10.1.0.7")));
        assert_eq!(c.events.arp_replies_sent.get(), 1);
        // The asker was learned (RFC 826 merge: the request was for us).
        assert_eq!(r.neighbour(0, ip("10.1.0.7"), 2_000), Some(HOST_A));

        // A pool address on port 1 answers for itself; not on port 0.
        let mut req = arp_frame(1, "10.2.0.7", "10.2.0.120", MacAddr::BROADCAST);
        let (v, b, _) = run(&mut r, &req, 1);
        assert_eq!(v, Verdict::Forward { port: 1 });
        assert_eq!(parse_arp(&b).sender_ip, ip("10.2.0.120"));
        assert_eq!(parse_arp(&b).sender_mac, MAC_B);
        let (v, _, _) = run(&mut r, &req, 0);
        assert_eq!(v, Verdict::Drop(DropReason::ArpIgnored));
        // Outside the pool: ignored.
        req = arp_frame(1, "10.2.0.7", "10.2.0.150", MacAddr::BROADCAST);
        assert_eq!(
            run(&mut r, &req, 1).0,
            Verdict::Drop(DropReason::ArpIgnored)
        );
    }

    #[test]
    fn set_address_moves_arp_and_the_connected_route() {
        let mut r = router();
        let who_has = |t: &str| arp_frame(1, "10.1.0.7", t, MacAddr::BROADCAST);
        // Within the same subnet: the old address no longer answers, the new one does.
        let new: Ipv4Cidr = "10.1.0.9/24".parse().unwrap();
        r.apply(&Command::SetAddress { port: 0, addr: new }, 0)
            .unwrap();
        assert_eq!(r.port_addr(0), Some(ip("10.1.0.9")));
        let (v, b, _) = run(&mut r, &who_has("10.1.0.9"), 0);
        assert_eq!(v, Verdict::Forward { port: 0 });
        assert_eq!(parse_arp(&b).sender_ip, ip("10.1.0.9"));
        assert_eq!(
            run(&mut r, &who_has("10.1.0.1"), 0).0,
            Verdict::Drop(DropReason::ArpIgnored)
        );
        assert_eq!(r.route(ip("10.1.0.50")).unwrap().port, 0);
        // Another subnet: its connected route comes, the old one goes.
        let other: Ipv4Cidr = "10.7.0.2/16".parse().unwrap();
        r.apply(
            &Command::SetAddress {
                port: 0,
                addr: other,
            },
            0,
        )
        .unwrap();
        let e = r.route(ip("10.7.3.3")).unwrap();
        assert_eq!((e.port, e.next_hop), (0, NextHop::Connected));
        assert!(
            r.route(ip("10.1.0.50")).is_none(),
            "old connected route gone"
        );
        // Refused without a change: network and broadcast addresses, a bad port.
        for bad in ["10.7.0.0/16", "10.7.255.255/16", "0.0.0.0/8", "224.0.0.1/4"] {
            assert_eq!(
                r.apply(
                    &Command::SetAddress {
                        port: 0,
                        addr: bad.parse().unwrap()
                    },
                    0
                ),
                Err(CommandError::Invalid),
                "{bad}"
            );
        }
        assert_eq!(
            r.apply(&Command::SetAddress { port: 9, addr: new }, 0),
            Err(CommandError::BadPort)
        );
        assert_eq!(r.port_addr(0), Some(ip("10.7.0.2")));
    }

    #[test]
    fn arp_reply_teaches_a_neighbour_and_junk_is_counted() {
        let mut r = router();
        assert_eq!(r.neighbour(0, ip("10.1.0.9"), 0), None);
        let (v, _, c) = run(&mut r, &arp_frame(2, "10.1.0.9", "10.1.0.1", MAC_A), 0);
        assert_eq!(v, Verdict::Consumed);
        assert_eq!(c.events.neighbours_learned.get(), 1);
        assert_eq!(r.neighbour(0, ip("10.1.0.9"), 2_000), Some(HOST_A));
        // The engine is told, once, so other lcores can learn it too.
        let n = r.pop_learned().unwrap();
        assert_eq!(
            n.to_command(),
            Some(Command::LearnNeighbour {
                port: 0,
                ip: ip("10.1.0.9"),
                mac: HOST_A
            })
        );
        assert_eq!(r.pop_learned(), None);
        // Applying that command on another router teaches it the neighbour.
        let mut other = router();
        other.apply(&n.to_command().unwrap(), 0).unwrap();
        assert_eq!(other.neighbour(0, ip("10.1.0.9"), 1), Some(HOST_A));
        // Off-link sender: not learned.
        let (v, _, _) = run(&mut r, &arp_frame(2, "10.7.0.9", "10.1.0.1", MAC_A), 0);
        assert_eq!(v, Verdict::Drop(DropReason::ArpIgnored));
        assert_eq!(r.neighbour(0, ip("10.7.0.9"), 2_000), None);
        // Wrong hardware type.
        let mut bad = arp_frame(1, "10.1.0.9", "10.1.0.1", MAC_A);
        bad[ETH] = 9;
        assert_eq!(
            run(&mut r, &bad, 0).0,
            Verdict::Drop(DropReason::ArpMalformed)
        );
        assert_eq!(
            run(&mut r, &bad[..ETH + 10], 0).0,
            Verdict::Drop(DropReason::ArpMalformed)
        );
    }

    #[test]
    fn icmp_errors_fit_a_small_egress_mtu() {
        // Found by fuzzing (fuzz/corpus/router/regression-icmp-error-mtu): the quote was
        // cut at 548 bytes only, so an error leaving by a port with an MTU under 576 was
        // too big for it. With the minimum MTU of 68 the quote is the 40 bytes that fit.
        let mut c = cfg();
        c.ports[1].mtu = 68;
        let mut r = Router::new(&c).unwrap();
        let f = ipv4_frame(MAC_A, "10.9.0.5", "10.1.0.77", 1, 17, false, &[0u8; 500]);
        let (v, b, _) = run(&mut r, &f, 0);
        assert!(matches!(v, Verdict::Resolve { port: 1, .. }), "{v:?}");
        let p = ipv4::Packet::new_checked(&b.data()[ETH..]).unwrap();
        assert_eq!(p.total_len(), 68);
        assert!(p.verify_checksum());
        let m = icmpv4::Packet::new_checked(p.payload()).unwrap();
        assert!(m.verify_checksum());
        assert_eq!(m.msg_type(), icmpv4::msg::TIME_EXCEEDED);
        assert_eq!(m.data(), &f[ETH..ETH + 40]);
    }

    #[test]
    fn echo_reply_over_the_egress_mtu_is_dropped() {
        // Found by fuzzing (fuzz/corpus/router/regression-echo-reply-mtu): a request
        // from a host behind the 1400-byte port that arrived over the 1500-byte one was
        // answered with a 1450-byte reply on the 1400-byte port.
        let mut r = router();
        let big = vec![0x61u8; 1450 - 28];
        let f = ipv4_frame(
            MAC_A,
            "10.9.0.5",
            "10.1.0.1",
            64,
            1,
            false,
            &echo_request(&big),
        );
        assert_eq!(run(&mut r, &f, 0).0, Verdict::Drop(DropReason::MtuExceeded));
        // One that fits is answered.
        let small = vec![0x61u8; 1400 - 28];
        let f = ipv4_frame(
            MAC_A,
            "10.9.0.5",
            "10.1.0.1",
            64,
            1,
            false,
            &echo_request(&small),
        );
        assert_eq!(
            run(&mut r, &f, 0).0,
            Verdict::Resolve {
                port: 1,
                next_hop: ip("10.2.0.254")
            }
        );
    }

    #[test]
    fn ping_to_an_owned_address_is_answered_in_place() {
        let mut r = router();
        for target in ["10.1.0.1", "10.2.0.1", "10.2.0.130"] {
            let f = ipv4_frame(
                MAC_A,
                "10.1.0.2",
                target,
                64,
                1,
                false,
                &echo_request(b"hello"),
            );
            let (v, b, c) = run(&mut r, &f, 0);
            assert_eq!(v, Verdict::Forward { port: 0 }, "{target}");
            let eth = ethernet::Frame::new_checked(b.data()).unwrap();
            assert_eq!((eth.src(), eth.dst()), (MAC_A, HOST_A));
            let p = ipv4::Packet::new_checked(&b.data()[ETH..]).unwrap();
            assert!(p.verify_checksum());
            assert_eq!((p.src(), p.dst()), (ip(target), ip("10.1.0.2")));
            let m = icmpv4::Packet::new_checked(p.payload()).unwrap();
            assert_eq!(
                Icmpv4Repr::parse(&m).unwrap(),
                Icmpv4Repr::EchoReply {
                    ident: 7,
                    seq_no: 3,
                    data: b"hello"
                }
            );
            assert_eq!(c.events.icmp_sent.get(), 1);
        }
        // A bad ICMP checksum is not answered.
        let mut e = echo_request(b"x");
        e[2] ^= 0xff;
        let f = ipv4_frame(MAC_A, "10.1.0.2", "10.1.0.1", 64, 1, false, &e);
        assert_eq!(
            run(&mut r, &f, 0).0,
            Verdict::Drop(DropReason::IcmpMalformed)
        );
        // UDP to us: not handled.
        let f = ipv4_frame(MAC_A, "10.1.0.2", "10.1.0.1", 64, 17, false, &[0; 8]);
        assert_eq!(
            run(&mut r, &f, 0).0,
            Verdict::Drop(DropReason::LocalUnhandled)
        );
    }

    #[test]
    fn forwards_with_ttl_decrement_and_resolves_unknown_next_hops() {
        let mut r = router();
        let payload = [0x55u8; 100];
        let f = ipv4_frame(MAC_A, "10.1.0.2", "10.2.0.2", 64, 17, false, &payload);
        let (v, b, _) = run(&mut r, &f, 0);
        assert_eq!(v, Verdict::Forward { port: 1 });
        let eth = ethernet::Frame::new_checked(b.data()).unwrap();
        assert_eq!((eth.src(), eth.dst()), (MAC_B, HOST_B));
        let p = ipv4::Packet::new_checked(&b.data()[ETH..]).unwrap();
        assert_eq!(p.ttl(), 63);
        assert!(
            p.verify_checksum(),
            "RFC 1624 update keeps the checksum valid"
        );
        assert_eq!(p.payload(), &payload[..]);

        // Unknown host on a connected subnet: resolve the destination itself.
        let f = ipv4_frame(MAC_A, "10.1.0.2", "10.2.0.77", 64, 17, false, &payload);
        assert_eq!(
            run(&mut r, &f, 0).0,
            Verdict::Resolve {
                port: 1,
                next_hop: ip("10.2.0.77")
            }
        );
        // Static route via a gateway: resolve the gateway.
        let f = ipv4_frame(MAC_A, "10.1.0.2", "10.9.3.4", 64, 17, false, &payload);
        assert_eq!(
            run(&mut r, &f, 0).0,
            Verdict::Resolve {
                port: 1,
                next_hop: ip("10.2.0.254")
            }
        );
        r.apply(
            &Command::AddNeighbour {
                port: 1,
                ip: ip("10.2.0.254"),
                mac: GW,
            },
            0,
        )
        .unwrap();
        let (v, b, _) = run(&mut r, &f, 0);
        assert_eq!(v, Verdict::Forward { port: 1 });
        assert_eq!(ethernet::Frame::new_checked(b.data()).unwrap().dst(), GW);
    }

    /// Checks an ICMP error in `b`: addresses, type/code, checksums, and that it quotes
    /// the start of `original` (the IP datagram as received).
    fn check_error(b: &VecBuf, from: &str, to: &str, t: u8, code: u8, original: &[u8]) -> u16 {
        let p = ipv4::Packet::new_checked(&b.data()[ETH..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!((p.src(), p.dst()), (ip(from), ip(to)));
        assert_eq!(p.protocol(), ipv4::protocol::ICMP);
        assert_eq!(usize::from(p.total_len()) + ETH, b.len());
        assert!(usize::from(p.total_len()) <= 576, "RFC 1812 §4.3.2.3");
        let m = icmpv4::Packet::new_checked(p.payload()).unwrap();
        assert!(checksum::verify(p.payload()));
        assert_eq!((m.msg_type(), m.code()), (t, code));
        let q = m.data();
        assert_eq!(q, &original[..q.len()]);
        assert_eq!(q.len(), original.len().min(548));
        m.next_hop_mtu()
    }

    #[test]
    fn ttl_expiry_sends_time_exceeded_quoting_the_datagram() {
        let mut r = router();
        let f = ipv4_frame(MAC_A, "10.1.0.2", "10.2.0.2", 1, 17, false, &[7u8; 40]);
        let (v, b, c) = run(&mut r, &f, 0);
        assert_eq!(v, Verdict::Forward { port: 0 });
        assert_eq!(
            ethernet::Frame::new_checked(b.data()).unwrap().dst(),
            HOST_A
        );
        check_error(&b, "10.1.0.1", "10.1.0.2", 11, 0, &f[ETH..]);
        assert_eq!(c.drops_of(DropReason::TtlExceeded), 1);
        assert_eq!(c.events.icmp_sent.get(), 1);

        // A big datagram is quoted only up to 576 bytes in all.
        let f = ipv4_frame(MAC_A, "10.1.0.2", "10.2.0.2", 1, 17, false, &[9u8; 1000]);
        let (_, b, _) = run(&mut r, &f, 0);
        check_error(&b, "10.1.0.1", "10.1.0.2", 11, 0, &f[ETH..]);
        assert_eq!(b.len(), ETH + 576);
    }

    #[test]
    fn no_route_and_frag_needed() {
        let mut r = router();
        let f = ipv4_frame(MAC_A, "10.1.0.2", "192.0.2.1", 64, 17, false, &[1u8; 20]);
        let (v, b, c) = run(&mut r, &f, 0);
        assert_eq!(v, Verdict::Forward { port: 0 });
        check_error(&b, "10.1.0.1", "10.1.0.2", 3, 0, &f[ETH..]);
        assert_eq!(c.drops_of(DropReason::NoRoute), 1);

        // Port 1 has MTU 1400: a 1450-byte DF datagram gets "fragmentation needed".
        let f = ipv4_frame(MAC_A, "10.1.0.2", "10.2.0.2", 64, 17, true, &[1u8; 1430]);
        let (v, b, c) = run(&mut r, &f, 0);
        assert_eq!(v, Verdict::Forward { port: 0 });
        assert_eq!(
            check_error(&b, "10.1.0.1", "10.1.0.2", 3, 4, &f[ETH..]),
            1400
        );
        assert_eq!(c.drops_of(DropReason::MtuExceeded), 1);
        // Without DF: dropped (forwarding-time fragmentation is not done by the router).
        let f = ipv4_frame(MAC_A, "10.1.0.2", "10.2.0.2", 64, 17, false, &[1u8; 1430]);
        assert_eq!(run(&mut r, &f, 0).0, Verdict::Drop(DropReason::MtuExceeded));
    }

    #[test]
    fn icmp_errors_are_suppressed_where_rfc1812_says() {
        let mut r = router();
        // About an ICMP error: no error back.
        let mut err = [0u8; 36];
        err[0] = icmpv4::msg::DST_UNREACHABLE;
        let cs = checksum::checksum(&err);
        err[2..4].copy_from_slice(&cs.to_be_bytes());
        let f = ipv4_frame(MAC_A, "10.1.0.2", "10.2.0.2", 1, 1, false, &err);
        let (v, _, c) = run(&mut r, &f, 0);
        assert_eq!(v, Verdict::Drop(DropReason::TtlExceeded));
        assert_eq!(c.events.icmp_suppressed.get(), 1);
        assert_eq!(c.events.icmp_sent.get(), 0);
        // About an echo request: yes.
        let f = ipv4_frame(
            MAC_A,
            "10.1.0.2",
            "10.2.0.2",
            1,
            1,
            false,
            &echo_request(b"a"),
        );
        assert_eq!(run(&mut r, &f, 0).0, Verdict::Forward { port: 0 });
        // About a non-first fragment: no.
        let mut f = ipv4_frame(MAC_A, "10.1.0.2", "10.2.0.2", 1, 17, false, &[0; 16]);
        {
            let mut p = ipv4::Packet::new_unchecked(&mut f[ETH..]);
            p.set_flags_frag(false, false, 64);
            p.fill_checksum();
        }
        assert_eq!(run(&mut r, &f, 0).0, Verdict::Drop(DropReason::TtlExceeded));
    }

    #[test]
    fn icmp_errors_are_rate_limited() {
        let mut r = router();
        let f = ipv4_frame(MAC_A, "10.1.0.2", "10.2.0.2", 1, 17, false, &[0; 16]);
        let c = CoreCounters::default();
        let mut sent = 0;
        for _ in 0..150 {
            let mut b = VecBuf::from_slice(&f);
            if let Verdict::Forward { .. } = r.process(&mut b, 0, 5_000, &c) {
                sent += 1;
            }
        }
        assert_eq!(sent, ICMP_ERROR_BURST);
        assert_eq!(c.events.icmp_suppressed.get(), 150 - ICMP_ERROR_BURST);
        assert_eq!(c.drops_of(DropReason::TtlExceeded), 100);
        // 10 ms later, 10 more tokens (1000/s).
        let mut more = 0;
        for _ in 0..20 {
            let mut b = VecBuf::from_slice(&f);
            if let Verdict::Forward { .. } = r.process(&mut b, 0, 10_005_000, &c) {
                more += 1;
            }
        }
        assert_eq!(more, 10);
    }

    #[test]
    fn input_checks() {
        let mut r = router();
        let good = ipv4_frame(MAC_A, "10.1.0.2", "10.2.0.2", 64, 17, false, &[0; 8]);
        assert_eq!(
            run(&mut r, &good[..10], 0).0,
            Verdict::Drop(DropReason::Truncated)
        );
        assert_eq!(run(&mut r, &good, 7).0, Verdict::Drop(DropReason::BadPort));
        let mut other = good.clone();
        other[0..6].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
        assert_eq!(
            run(&mut r, &other, 0).0,
            Verdict::Drop(DropReason::NotForUs)
        );
        let mut bad = good.clone();
        bad[ETH + 10] ^= 1;
        assert_eq!(
            run(&mut r, &bad, 0).0,
            Verdict::Drop(DropReason::Ipv4Checksum)
        );
        let mut bad = good.clone();
        bad[ETH] = 0x46; // IHL 6 without the bytes to back it: malformed
        assert!(matches!(run(&mut r, &bad, 0).0, Verdict::Drop(_)));
        let mut v6 = good.clone();
        v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(
            run(&mut r, &v6, 0).0,
            Verdict::Drop(DropReason::UnsupportedEtherType)
        );
        for src in ["127.0.0.1", "224.0.0.1", "0.1.2.3", "255.255.255.255"] {
            let f = ipv4_frame(MAC_A, src, "10.2.0.2", 64, 17, false, &[0; 8]);
            assert_eq!(
                run(&mut r, &f, 0).0,
                Verdict::Drop(DropReason::Ipv4BadSource),
                "{src}"
            );
        }
        for dst in ["10.2.0.255", "224.0.0.5"] {
            let f = ipv4_frame(MAC_A, "10.1.0.2", dst, 64, 17, false, &[0; 8]);
            assert_eq!(
                run(&mut r, &f, 0).0,
                Verdict::Drop(DropReason::NotForUs),
                "{dst}"
            );
        }
        // Ethernet padding after the datagram is removed before forwarding.
        let mut padded = ipv4_frame(MAC_A, "10.1.0.2", "10.2.0.2", 64, 17, false, &[0; 8]);
        padded.extend_from_slice(&[0xee; 18]);
        let (v, b, _) = run(&mut r, &padded, 0);
        assert_eq!(v, Verdict::Forward { port: 1 });
        assert_eq!(b.len(), ETH + 28);
    }

    #[test]
    fn commands_change_the_tables() {
        let mut r = router();
        let prefix: Ipv4Cidr = "172.16.0.0/12".parse().unwrap();
        assert!(r.route(ip("172.16.1.1")).is_none());
        r.apply(
            &Command::AddRoute(Route {
                prefix,
                via: Some(ip("10.1.0.2")),
                port: 0,
            }),
            0,
        )
        .unwrap();
        assert_eq!(r.route(ip("172.16.1.1")).unwrap().port, 0);
        assert_eq!(
            r.apply(
                &Command::AddRoute(Route {
                    prefix,
                    via: None,
                    port: 5
                }),
                0
            ),
            Err(CommandError::BadPort)
        );
        r.apply(&Command::DelRoute { prefix }, 0).unwrap();
        assert!(r.route(ip("172.16.1.1")).is_none());
        assert_eq!(
            r.apply(&Command::DelRoute { prefix }, 0),
            Err(CommandError::NotFound)
        );
        r.apply(
            &Command::DelNeighbour {
                port: 1,
                ip: ip("10.2.0.2"),
            },
            0,
        )
        .unwrap();
        assert_eq!(r.neighbour(1, ip("10.2.0.2"), 0), None);
    }

    #[test]
    fn config_errors_are_reported() {
        let mut c = cfg();
        c.routes[0].port = 4;
        assert!(Router::new(&c).unwrap_err().0.contains("no port 4"));
        let mut c = cfg();
        c.route_capacity = 2;
        assert!(Router::new(&c).unwrap_err().0.contains("limits.routes"));
        let mut c = cfg();
        c.ports[0].mtu = 20;
        assert!(Router::new(&c).is_err());
    }

    #[test]
    fn builds_arp_requests() {
        let r = router();
        let mut b = VecBuf::from_slice(&[]);
        assert!(r.build_arp_request(&mut b, 1, ip("10.2.0.254")));
        assert_eq!(b.len(), 60);
        let f = ethernet::Frame::new_checked(b.data()).unwrap();
        assert_eq!((f.dst(), f.src()), (MacAddr::BROADCAST, MAC_B));
        let a = parse_arp(&b);
        assert_eq!(a.op, arp::op::REQUEST);
        assert_eq!(
            (a.sender_ip, a.target_ip),
            (ip("10.2.0.1"), ip("10.2.0.254"))
        );
        assert!(!r.build_arp_request(&mut b, 9, ip("10.2.0.254")));
    }

    proptest! {
        #[test]
        fn never_panics_and_forwards_only_valid_ipv4(
            body in proptest::collection::vec(any::<u8>(), 0..200),
            ethertype in prop_oneof![Just(0x0800u16), Just(0x0806u16), any::<u16>()],
            port in 0u16..3,
            now in any::<u64>(),
        ) {
            let mut r = router();
            let mut f = Vec::with_capacity(ETH + body.len());
            f.extend_from_slice(&MAC_A.0);
            f.extend_from_slice(&HOST_A.0);
            f.extend_from_slice(&ethertype.to_be_bytes());
            f.extend_from_slice(&body);
            let c = CoreCounters::default();
            let mut b = VecBuf::from_slice(&f);
            let v = r.process(&mut b, port, now, &c);
            if let Verdict::Forward { .. } | Verdict::Resolve { .. } = v {
                if ethertype == 0x0800 {
                    let p = ipv4::Packet::new_checked(&b.data()[ETH..]).unwrap();
                    prop_assert!(p.verify_checksum());
                }
            }
        }

        #[test]
        fn random_ipv4_headers_never_panic(
            hdr in proptest::collection::vec(any::<u8>(), 20..80),
            ttl in 0u8..3,
        ) {
            // A valid-looking header start with random rest, fixed checksum.
            let mut r = router();
            let mut f = ipv4_frame(MAC_A, "10.1.0.2", "10.2.0.2", ttl, 1, false, &[]);
            f.truncate(ETH);
            f.extend_from_slice(&hdr);
            f[ETH] = 0x45;
            let len = (hdr.len() as u16).to_be_bytes();
            f[ETH + 2..ETH + 4].copy_from_slice(&len);
            f[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
            let cs = checksum::checksum(&f[ETH..ETH + 20]);
            f[ETH + 10..ETH + 12].copy_from_slice(&cs.to_be_bytes());
            let c = CoreCounters::default();
            let mut b = VecBuf::from_slice(&f);
            let _ = r.process(&mut b, 0, 0, &c);
        }
    }
}
