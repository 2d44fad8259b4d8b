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
use crate::command::{Command, CommandError, Route};
use crate::counters::{CoreCounters, DropReason, MAX_PORTS};
use crate::pipeline::neighbour::NeighbourTable;
use crate::pipeline::route::{NextHop, RouteEntry, RouteTable};
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
}

/// What an ICMP error to originate says.
#[derive(Clone, Copy)]
struct IcmpError {
    msg_type: u8,
    code: u8,
    /// Next-hop MTU for "fragmentation needed" (RFC 1191), else 0.
    mtu: u16,
    /// Why the invoking packet is dropped.
    reason: DropReason,
}

/// True for an address that may be a packet's source (RFC 1812 §5.3.7, §4.2.2.11).
fn valid_source(ip: Ipv4Addr) -> bool {
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
    pub fn apply(&mut self, cmd: &Command, _now_ns: u64) -> Result<(), CommandError> {
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
        }
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
    pub fn build_arp_request<B: PacketBuf>(&self, buf: &mut B, port: u16, target: Ipv4Addr) -> bool {
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
            && (for_us || self.neighbours.lookup(in_port, req.sender_ip, now_ns).is_some())
        {
            if let Ok(changed) =
                self.neighbours
                    .learn(in_port, req.sender_ip, req.sender_mac, now_ns)
            {
                learned = true;
                if changed {
                    counters.events.neighbours_learned.inc();
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
    fn local<B: PacketBuf>(&mut self, buf: &mut B, now_ns: u64, counters: &CoreCounters) -> Verdict {
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
    fn icmp_error<B: PacketBuf>(
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
        let quote = total_len.min(MAX_QUOTE);
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

    /// Sets the Ethernet addresses for `port` and `next_hop`; `Resolve` if its MAC is
    /// not known yet.
    fn send<B: PacketBuf>(&self, buf: &mut B, port: u16, next_hop: Ipv4Addr, now_ns: u64) -> Verdict {
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
