//! The AVES-aware NAT gateway role (AVES paper §3.2, §5.3), sans-IO.
//!
//! Two ports: **public** (tunnel packets from waypoints arrive here, replies leave) and
//! **private** (the responders). On the public port every fragment addressed to the
//! gateway is reassembled first (§5.2: "the AVES NAT gateway must be configured to
//! reassemble all in-coming fragmented packets"), with bounded contexts, fragments,
//! memory and time (`pipeline::reassembly`). A datagram to the tunnel port is then
//! **authenticated before anything else** (`tunnel::decapsulate`): a forged, truncated or
//! unknown-key packet is dropped and counted and creates no state.
//!
//! An authentic `[W→R [A→B]]` creates or refreshes a connection entry keyed by the
//! 5-tuple of B's replies (§3.2), and `[A→B]` goes to B. In multi-homing mode (flag `M`)
//! the initiator is replaced by the gateway's private address and an allocated port (ICMP
//! echo: identifier), so B's replies return through this gateway. B's replies `[B→A]`
//! leave as `[W→A]` (plain) or, in multi-homing mode, `[B→R:P]` leaves as `[W→A:p]`.
//! ICMP errors from B or from routers inside are translated with their embedded datagram
//! (RFC 5508 §4.2); an inbound UDP packet installs its entry with the short traceroute
//! timeout (5 s, §5.3) until B answers with UDP, so traceroute's port unreachable finds
//! its way back without leaving long-lived state.
//!
//! Inner datagrams are delivered only to the private side (a tunnel must not be a way to
//! reach arbitrary hosts) and their TTL is not decremented: waypoint and gateway together
//! stand in for the responder.
//!
//! Connections B opens itself get ordinary NAT44 (RFC 4787/5382/5508): endpoint-
//! independent mapping (one external port per internal endpoint), address-and-port-
//! dependent filtering (only the endpoint B sent to may answer), TCP sessions only from a
//! SYN, RFC 7857 timers (`Timeouts::nat44`), ICMP errors about sessions translated with
//! their quote. Multi-homing and NAT44 share one port allocator, so no port is handed out
//! twice.
//!
//! Not yet: sharing entries across lcores (one lcore per gateway for now; see
//! `docs/decisions/0005-state-across-lcores.md`).
//!
//! Invariants: per packet no heap allocation, no lock, no panic; every buffer ends in
//! the `Io`, in the reassembler (returned by `drain`), or is freed by it and counted.

use crate::addr::MacAddr;
use crate::auth::{self, BurstMac, Keyring, PortableMac};
use crate::buf::PacketBuf;
use crate::command::{Command, CommandError, Notice};
use crate::counters::{CoreCounters, DropReason, Table};
use crate::pipeline::flow::{
    flow_key, icmp_error_key, FlowKey, FlowTable, SlotId, TcpState, Timeouts,
};
use crate::pipeline::nat::{rewrite_addr, rewrite_port, End};
use crate::pipeline::ports::PortAllocator;
use crate::pipeline::reassembly::{Reassembled, Reassembler, ReassemblyConfig};
use crate::pipeline::router::{valid_source, Router, RouterConfig, RouterConfigError};
use crate::pipeline::tunnel;
use crate::pipeline::{deliver, Io, Role};
use crate::wire::{aves, checksum, ethernet, icmpv4, ipv4, tcp, udp};
use std::net::Ipv4Addr;

const ETH: usize = ethernet::HEADER_LEN;

/// Everything the gateway role needs at start.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Ports (public and private), addresses, routes, neighbours.
    pub router: RouterConfig,
    /// The port facing the Internet (tunnel packets arrive here).
    pub public_port: u16,
    /// The port facing the private network (responders).
    pub private_port: u16,
    /// This gateway's tunnel keys (current + previous during a rollover).
    pub keys: Keyring,
    /// Tunnel UDP port.
    pub tunnel_port: u16,
    /// Connection/NAT table capacity.
    pub flow_capacity: usize,
    /// Ports handed out for multi-homing and outbound NAT44 mappings, inclusive.
    pub nat_ports: (u16, u16),
    /// Timeouts of AVES connections (paper §5.2).
    pub timeouts: Timeouts,
    /// Timeouts of outbound NAT44 mappings (RFC 4787/5382/5508).
    pub nat_timeouts: Timeouts,
    /// Reassembly: contexts (datagrams in progress).
    pub reassembly_contexts: usize,
    /// Reassembly: fragments per datagram.
    pub reassembly_fragments: usize,
    /// Reassembly: bytes held in all.
    pub reassembly_bytes: usize,
    /// Reassembly: timeout, ns.
    pub reassembly_timeout_ns: u64,
    /// Hash seed for the tables.
    pub seed: u64,
    /// This lcore's index among the engine's lcores (decision 0006).
    pub lcore_index: usize,
    /// How many lcores run the role.
    pub lcore_count: usize,
}

/// A connection entry.
#[derive(Clone, Copy, Debug)]
enum Conn {
    /// Keyed by B's reply 5-tuple: rewrite B's replies to come from `waypoint`; in
    /// multi-homing mode also restore the initiator's address and port.
    Reply {
        waypoint: Ipv4Addr,
        /// Multi-homing: (initiator, its port or echo identifier).
        initiator: Option<(Ipv4Addr, u16)>,
        tcp: TcpState,
        /// B has answered with the same protocol (ends the traceroute grace period).
        answered: bool,
    },
    /// Multi-homing only, keyed by the inbound inner 5-tuple: the port this flow was
    /// given, so later inbound packets reuse it.
    Inbound { port: u16 },
    /// NAT44 mapping of an internal endpoint, keyed by (proto, B, 0.0.0.0, B's port, 0):
    /// the external port, the same whatever the destination (endpoint-independent
    /// mapping, RFC 4787 REQ-1). Lives as long as its longest-lived session.
    NatMapping { ext: u16 },
    /// NAT44 session, outbound key (proto, B, X, B's port, X's port).
    NatOut { ext: u16, tcp: TcpState },
    /// NAT44 session, inbound key (proto, X, R, X's port, external port): only packets
    /// from the endpoint B sent to pass (address-and-port-dependent filtering, REQ-8).
    NatIn { int: Ipv4Addr, int_port: u16 },
}

/// The gateway role's per-core state.
pub struct Gateway<B> {
    router: Router,
    public_port: u16,
    private_port: u16,
    public_addr: Ipv4Addr,
    private_addr: Ipv4Addr,
    keys: Keyring,
    tunnel_port: u16,
    flows: FlowTable<Conn>,
    ports: PortAllocator,
    timeouts: Timeouts,
    nat_timeouts: Timeouts,
    reassembly: Reassembler<B>,
    /// Tunnel packets waiting for their tags to be verified (burst mode, decision 0009).
    vbatch: Vec<(B, tunnel::Received, u16)>,
    /// The engine that computes a batch's expected tags.
    mac: Box<dyn BurstMac>,
    /// Burst mode: verify at the end of each burst. Off: verify each packet at once.
    batching: bool,
    lcore: usize,
    lcores: usize,
    nat_range: (u16, u16),
    /// Ports of the range reserved for the other lcores (not this lcore's share).
    nat_reserved: usize,
}

/// The key B's replies carry for an inbound inner datagram with key `k` that B sees as
/// coming from `seen_src`:`seen_port`.
fn reply_key(k: &FlowKey, seen_src: Ipv4Addr, seen_port: u16) -> FlowKey {
    let mut inbound = *k;
    inbound.src = seen_src;
    inbound.sport = seen_port;
    inbound.reversed()
}

impl<B> std::fmt::Debug for Gateway<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("flows", &self.flows.len())
            .field("batching", &self.batching)
            .finish_non_exhaustive()
    }
}

/// Tunnel packets verified together at most.
pub const MAX_BATCH: usize = 64;

impl<B: PacketBuf> Gateway<B> {
    /// Builds the tables. Errors on a bad router config, ports out of range, or
    /// ports without addresses.
    pub fn new(cfg: &GatewayConfig) -> Result<Gateway<B>, RouterConfigError> {
        let router = Router::new(&cfg.router)?;
        let err = |m: &str| RouterConfigError(m.into());
        if cfg.public_port == cfg.private_port {
            return Err(err("the public and private ports must differ"));
        }
        let public_addr = router
            .port_addr(cfg.public_port)
            .ok_or_else(|| err("the public port needs an address"))?;
        let private_addr = router
            .port_addr(cfg.private_port)
            .ok_or_else(|| err("the private port needs an address"))?;
        let mut ports = PortAllocator::new(cfg.nat_ports.0, cfg.nat_ports.1, cfg.seed)
            .ok_or_else(|| err("nat_ports: empty range"))?;
        let lcores = cfg.lcore_count.max(1);
        if cfg.lcore_index >= lcores {
            return Err(err("lcore index out of range"));
        }
        // Each lcore hands out only the ports p with p % lcores == its index, so a reply
        // to port p can be steered to the lcore that owns its entry (decision 0006).
        let mut nat_reserved = 0;
        if lcores > 1 {
            for p in cfg.nat_ports.0..=cfg.nat_ports.1 {
                if usize::from(p) % lcores != cfg.lcore_index && ports.reserve(p) {
                    nat_reserved += 1;
                }
            }
        }
        Ok(Gateway {
            router,
            public_port: cfg.public_port,
            private_port: cfg.private_port,
            public_addr,
            private_addr,
            keys: cfg.keys.clone(),
            tunnel_port: cfg.tunnel_port,
            flows: FlowTable::new(cfg.flow_capacity.max(2), cfg.seed),
            ports,
            timeouts: cfg.timeouts,
            nat_timeouts: cfg.nat_timeouts,
            lcore: cfg.lcore_index,
            lcores,
            nat_range: cfg.nat_ports,
            nat_reserved,
            vbatch: Vec::with_capacity(MAX_BATCH),
            mac: Box::new(PortableMac),
            batching: false,
            reassembly: Reassembler::new(ReassemblyConfig {
                max_datagrams: cfg.reassembly_contexts.max(1),
                max_fragments: cfg.reassembly_fragments.max(2),
                max_bytes: cfg.reassembly_bytes.max(2048),
                timeout_ns: cfg.reassembly_timeout_ns,
                seed: cfg.seed.rotate_left(17),
            }),
        })
    }

    /// Live connection entries.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Datagrams being reassembled and the bytes their fragments hold.
    pub fn reassembly_usage(&self) -> (usize, usize) {
        (self.reassembly.len(), self.reassembly.held_bytes())
    }

    /// The router underneath.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Public port: reassemble what is for us, decapsulate tunnel packets, else route.
    fn public(
        &mut self,
        buf: B,
        in_port: u16,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        // A bad header checksum goes to the router, which drops it: NAT rewrites update
        // checksums incrementally and would pass the corruption on (found by fuzzing,
        // `gateway`).
        let (to_us, fragment) = match ipv4_of(buf.data()) {
            Some(ip) if ip.verify_checksum() => (ip.dst() == self.public_addr, ip.is_fragment()),
            _ => (false, false),
        };
        if !to_us || !self.mac_ok(&buf, in_port) {
            return self.route(buf, in_port, now_ns, counters, io);
        }
        let mut buf = if fragment {
            match self.reassembly.push(buf, now_ns, || io.alloc()) {
                Reassembled::Complete(b) => {
                    counters.events.datagrams_reassembled.inc();
                    b
                }
                Reassembled::Held => return,
                Reassembled::Dropped(_) => {
                    counters.count_drop(DropReason::Reassembly);
                    return;
                }
            }
        } else {
            buf
        };
        let is_tunnel = ipv4_of(buf.data()).is_some_and(|ip| {
            ip.protocol() == ipv4::protocol::UDP
                && udp::Packet::new_checked(ip.payload())
                    .is_ok_and(|u| u.dst_port() == self.tunnel_port)
        });
        if self.lcores > 1 {
            let owner = if is_tunnel {
                tunnel_inner_key(buf.data()).map(|k| symmetric_owner(&k, self.lcores))
            } else {
                self.public_reply_owner(buf.data())
            };
            if let Some(o) = owner.filter(|o| *o != self.lcore) {
                return io.handoff(buf, o, in_port);
            }
        }
        if !is_tunnel {
            return self.nat_inbound(buf, in_port, now_ns, counters, io);
        }
        // Everything but the tag is checked now; tags are verified per burst, all at
        // once (or at once when not in burst mode). Nothing is trusted before that.
        let received = match tunnel::stage_received(&mut buf, &self.keys, self.tunnel_port) {
            Ok(r) => r,
            Err(r) => return io.drop_packet(buf, r),
        };
        if self.vbatch.len() >= MAX_BATCH {
            self.flush_verify(now_ns, counters, io);
        }
        self.vbatch.push((buf, received, in_port));
        if !self.batching {
            self.flush_verify(now_ns, counters, io);
        }
    }

    /// Tunnel tags are verified at the end of each burst by `mac` (a multi-buffer
    /// engine, decision 0009); the engine calls [`Role::end_burst`].
    pub fn set_burst_mac(&mut self, mac: Box<dyn BurstMac>) {
        self.mac = mac;
        self.batching = true;
    }

    /// Computes the expected tags of the queued tunnel packets (one engine call per key
    /// id), compares them in constant time, and decapsulates and delivers the authentic
    /// ones; the others are dropped as `auth_bad_tag`.
    fn flush_verify(&mut self, now_ns: u64, counters: &CoreCounters, io: &mut impl Io<B>) {
        let n = self.vbatch.len().min(MAX_BATCH);
        if n == 0 {
            return;
        }
        let mut ok = [false; MAX_BATCH];
        let mut done = [false; MAX_BATCH];
        for first in 0..n {
            if done[first] {
                continue;
            }
            let id = self.vbatch[first].1.key_id;
            let Some(key) = self.keys.get(id) else {
                continue;
            };
            let mut idx = [0usize; MAX_BATCH];
            let mut msgs: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
            let mut m = 0;
            for (i, (buf, rcv, _)) in self.vbatch.iter().enumerate().take(n).skip(first) {
                if rcv.key_id == id && !done[i] {
                    done[i] = true;
                    if let Some(msg) = tunnel::received_mac_message(buf.data()) {
                        idx[m] = i;
                        msgs[m] = msg;
                        m += 1;
                    }
                }
            }
            let mut expected = [[0u8; auth::TAG_LEN]; MAX_BATCH];
            if !self.mac.tag_burst(key, &msgs[..m], &mut expected[..m]) {
                for j in 0..m {
                    expected[j] = auth::tag(key, &[msgs[j]]);
                }
            }
            for j in 0..m {
                let i = idx[j];
                ok[i] = auth::constant_time_eq(&expected[j], &self.vbatch[i].1.tag);
            }
        }
        let mut batch = std::mem::take(&mut self.vbatch);
        for (i, (mut buf, _, _)) in batch.drain(..).enumerate() {
            if i >= n || !ok[i] {
                io.drop_packet(buf, DropReason::AuthBadTag);
                continue;
            }
            match tunnel::finish_decapsulate(&mut buf) {
                Ok(d) => {
                    let multihoming = d.flags & aves::FLAG_M != 0;
                    self.inbound(buf, d.outer_src, multihoming, now_ns, counters, io);
                }
                Err(r) => io.drop_packet(buf, r),
            }
        }
        self.vbatch = batch;
    }

    /// An authentic inner datagram `[A→B]` from waypoint address `waypoint`.
    fn inbound(
        &mut self,
        mut buf: B,
        waypoint: Ipv4Addr,
        multihoming: bool,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        let Some(ip) = ipv4_of(buf.data()) else {
            return io.drop_packet(buf, DropReason::TunnelInnerMalformed);
        };
        let (a, b) = (ip.src(), ip.dst());
        let first = ip.frag_offset() == 0;
        let tcp_flags = tcp_flags_of(&ip);
        let key = flow_key(ip.header_and_payload());
        if !valid_source(a) {
            return io.drop_packet(buf, DropReason::Ipv4BadSource);
        }
        // Only to the private side: the tunnel is not a way into anything else.
        let Some(route) = self.router.route(b) else {
            return io.drop_packet(buf, DropReason::NoRoute);
        };
        if route.port != self.private_port || b == self.private_addr {
            return io.drop_packet(buf, DropReason::TunnelForeignDestination);
        }

        if let Some(k) = key {
            if multihoming {
                // Reuse the port of a known flow, else allocate one (never one in use).
                let port = match self.flows.get(&k, now_ns) {
                    Some(Conn::Inbound { port, .. }) => *port,
                    _ => {
                        let Some(p) = self.ports.allocate(flow_hash(&k)) else {
                            return io.drop_packet(buf, DropReason::NatPortsExhausted);
                        };
                        let exp = now_ns.saturating_add(self.initial_timeout(&k, tcp_flags));
                        let rk = reply_key(&k, self.private_addr, p);
                        let reply = Conn::Reply {
                            waypoint,
                            initiator: Some((a, k.sport)),
                            tcp: TcpState::default(),
                            answered: false,
                        };
                        if self.flows.insert(rk, reply, exp, now_ns).is_err() {
                            self.ports.release(p);
                            return io.drop_packet(buf, DropReason::FlowTableFull);
                        }
                        let inb = Conn::Inbound { port: p };
                        if self.flows.insert(k, inb, exp, now_ns).is_err() {
                            self.flows.remove(&rk);
                            self.ports.release(p);
                            return io.drop_packet(buf, DropReason::FlowTableFull);
                        }
                        p
                    }
                };
                let rk = reply_key(&k, self.private_addr, port);
                self.track(&rk, None, Some(&k), tcp_flags, true, now_ns);
                let body = buf.data_mut().get_mut(ETH..).unwrap_or_default();
                rewrite_addr(body, End::Source, self.private_addr);
                rewrite_port(body, End::Source, port);
            } else {
                let rk = reply_key(&k, a, k.sport);
                // One hash and probe per packet: `slot` names the entry for `track`
                // unless an insert below changed the table.
                let mut slot = self.flows.slot_of(&rk, now_ns);
                let known = match slot.and_then(|s| self.flows.at_mut(s, &rk)) {
                    Some(mut e) => match e.value() {
                        Conn::Reply { waypoint: w, .. } => {
                            *w = waypoint;
                            true
                        }
                        _ => false,
                    },
                    None => false,
                };
                if !known {
                    slot = None;
                    let exp = now_ns.saturating_add(self.initial_timeout(&k, tcp_flags));
                    let reply = Conn::Reply {
                        waypoint,
                        initiator: None,
                        tcp: TcpState::default(),
                        answered: false,
                    };
                    if self.flows.insert(rk, reply, exp, now_ns).is_err() {
                        return io.drop_packet(buf, DropReason::FlowTableFull);
                    }
                }
                self.track(&rk, slot, None, tcp_flags, true, now_ns);
            }
        } else if multihoming && !first {
            // A later fragment has no ports: rewrite the address only (B reassembles).
            let body = buf.data_mut().get_mut(ETH..).unwrap_or_default();
            rewrite_addr(body, End::Source, self.private_addr);
        }
        // B's link may have a smaller MTU than the inner datagram (a datagram the
        // initiator sent unfragmented with DF clear): fragment on the way to B.
        self.send_out(buf, route.port, route.next_hop_for(b), now_ns, counters, io);
    }

    /// The first timeout of a new entry: traceroute's short one for UDP until B answers.
    fn initial_timeout(&self, k: &FlowKey, tcp_flags: Option<u8>) -> u64 {
        match k.proto {
            ipv4::protocol::UDP if self.timeouts.traceroute > 0 => self.timeouts.traceroute,
            _ => {
                let mut st = TcpState::default();
                if let Some(f) = tcp_flags {
                    st.update(true, f);
                }
                self.timeouts
                    .for_packet(k, Some(st).filter(|_| tcp_flags.is_some()))
            }
        }
    }

    /// Updates TCP state and timers of the reply entry `rk` (and its inbound twin);
    /// removes both when the connection has closed (not port 80, §5.2).
    fn track(
        &mut self,
        rk: &FlowKey,
        slot: Option<SlotId>,
        twin: Option<&FlowKey>,
        tcp_flags: Option<u8>,
        from_initiator: bool,
        now_ns: u64,
    ) {
        let t = self.timeouts;
        // One lookup for the state and the timer (this runs for every packet), none
        // when the caller found the entry already (`slot`).
        let entry = match slot {
            Some(s) => self.flows.at_mut(s, rk),
            None => self.flows.entry_mut(rk, now_ns),
        };
        let Some(mut e) = entry else {
            return;
        };
        let Conn::Reply { tcp, answered, .. } = e.value() else {
            return;
        };
        if let Some(f) = tcp_flags {
            tcp.update(from_initiator, f);
        }
        if !from_initiator {
            *answered = true;
        }
        let (st, answered) = (*tcp, *answered);
        let closed = tcp_flags.is_some() && st.is_closed() && !rk.is_http();
        if closed {
            self.remove_reply(rk);
            return;
        }
        let timeout = if rk.proto == ipv4::protocol::UDP && !answered && t.traceroute > 0 {
            t.traceroute
        } else {
            t.for_packet(rk, tcp_flags.map(|_| st))
        };
        let exp = now_ns.saturating_add(timeout);
        e.set_expires(exp);
        if let Some(k) = twin {
            self.flows.touch(k, exp, now_ns);
        }
    }

    /// Removes a reply entry, its inbound twin and its port.
    fn remove_reply(&mut self, rk: &FlowKey) {
        if let Some(Conn::Reply {
            initiator: Some((a, ap)),
            ..
        }) = self.flows.remove(rk)
        {
            // The twin's key is the inbound 5-tuple: reverse the reply key and put the
            // initiator back.
            let mut k = rk.reversed();
            k.src = a;
            k.sport = ap;
            if rk.proto == ipv4::protocol::ICMP {
                k.sport = ap;
            }
            self.flows.remove(&k);
            self.ports.release(rk.dport_or_ident());
        }
    }

    /// Private port: B's replies and ICMP errors go out translated; the rest is routed
    /// (to the gateway itself) or dropped (no outbound NAT44 yet).
    fn private(
        &mut self,
        mut buf: B,
        in_port: u16,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        let Some(ip) = ipv4_of(buf.data()) else {
            return self.route(buf, in_port, now_ns, counters, io);
        };
        if !ip.verify_checksum() || !self.mac_ok(&buf, in_port) {
            return self.route(buf, in_port, now_ns, counters, io);
        }
        // Fragments from the responders are reassembled first: only the first fragment
        // has ports, and a NAT must translate them all (RFC 4787 REQ-14).
        let to_router = ip.dst() == self.private_addr;
        if ip.is_fragment() && !to_router {
            let whole = match self.reassembly.push(buf, now_ns, || io.alloc()) {
                Reassembled::Complete(b) => {
                    counters.events.datagrams_reassembled.inc();
                    b
                }
                Reassembled::Held => return,
                Reassembled::Dropped(_) => {
                    counters.count_drop(DropReason::Reassembly);
                    return;
                }
            };
            return self.private(whole, in_port, now_ns, counters, io);
        }
        let data = ip.header_and_payload();
        let tcp_flags = tcp_flags_of(&ip);
        if self.lcores > 1 {
            let k = icmp_error_key(data)
                .map(|q| q.reversed())
                .or_else(|| flow_key(data));
            if let Some(o) = k
                .map(|k| self.private_owner(&k))
                .filter(|o| *o != self.lcore)
            {
                return io.handoff(buf, o, in_port);
            }
        }
        // An ICMP error about a tunnelled flow: translate it and its quote.
        if let Some(quoted) = icmp_error_key(data) {
            let rk = quoted.reversed();
            if let Some(Conn::Reply {
                waypoint,
                initiator,
                ..
            }) = self.flows.get(&rk, now_ns).copied()
            {
                return self.icmp_error_out(buf, waypoint, initiator, now_ns, counters, io);
            }
        }
        let Some(k) = flow_key(data) else {
            return self.route(buf, in_port, now_ns, counters, io);
        };
        let slot = self.flows.slot_of(&k, now_ns);
        let Some(Conn::Reply {
            waypoint,
            initiator,
            ..
        }) = slot.and_then(|s| self.flows.at(s, &k)).copied()
        else {
            if ip.dst() == self.private_addr || ip.dst() == self.public_addr {
                return self.route(buf, in_port, now_ns, counters, io);
            }
            return self.nat_outbound(buf, k, tcp_flags, now_ns, counters, io);
        };
        let twin = initiator.map(|(a, ap)| {
            let mut tk = k.reversed();
            tk.src = a;
            tk.sport = ap;
            tk
        });
        self.track(&k, slot, twin.as_ref(), tcp_flags, false, now_ns);
        let body = buf.data_mut().get_mut(ETH..).unwrap_or_default();
        rewrite_addr(body, End::Source, waypoint);
        let dst = match initiator {
            Some((a, ap)) => {
                rewrite_addr(body, End::Destination, a);
                rewrite_port(body, End::Destination, ap);
                a
            }
            None => k.dst,
        };
        self.out_public(buf, dst, now_ns, counters, io);
    }

    /// Translates an ICMP error from inside about a tunnelled flow: outer source B (or a
    /// router) → W only when it is B; the quote's addresses and ports as the initiator
    /// sent them; checksums fixed (RFC 5508 §4.2).
    fn icmp_error_out(
        &mut self,
        mut buf: B,
        waypoint: Ipv4Addr,
        initiator: Option<(Ipv4Addr, u16)>,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        let Some(ip) = ipv4_of(buf.data()) else {
            return io.drop_packet(buf, DropReason::IcmpMalformed);
        };
        let (outer_src, hlen, total) = (ip.src(), ip.header_len(), usize::from(ip.total_len()));
        let Some(quote_src) = ipv4_of_quote(ip.payload()) else {
            return io.drop_packet(buf, DropReason::IcmpMalformed);
        };
        let b = quote_src.1; // the quote is [A→B]: its destination is B
        let body = buf.data_mut().get_mut(ETH..ETH + total).unwrap_or_default();
        // The error comes from B itself (port unreachable) or from a router inside: B's
        // address must not leak, routers inside are private too: both become W.
        let _ = outer_src;
        rewrite_addr(body, End::Source, waypoint);
        let a = match initiator {
            Some((a, _)) => a,
            None => quote_src.0,
        };
        rewrite_addr(body, End::Destination, a);
        if let Some(icmp) = body.get_mut(hlen..) {
            if let Some(quote) = icmp.get_mut(icmpv4::HEADER_LEN..) {
                rewrite_addr(quote, End::Destination, waypoint);
                if let Some((a, ap)) = initiator {
                    rewrite_addr(quote, End::Source, a);
                    rewrite_port(quote, End::Source, ap);
                }
            }
            // The ICMP checksum covers the quote: recompute it (≤ 576 bytes).
            refill_icmp_checksum(icmp);
        }
        let _ = b;
        self.out_public(buf, a, now_ns, counters, io);
    }

    /// Outbound NAT44 (RFC 4787, 5382, 5508) for a connection B opens itself: the source
    /// becomes the gateway's public address and an external port (ICMP echo: identifier)
    /// chosen once per internal endpoint.
    fn nat_outbound(
        &mut self,
        mut buf: B,
        k: FlowKey,
        tcp_flags: Option<u8>,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        if !valid_source(k.src) || k.dst.is_multicast() || k.dst.is_broadcast() {
            return io.drop_packet(buf, DropReason::Ipv4BadSource);
        }
        let t = self.nat_timeouts;
        let ext = match self.flows.get_mut(&k, now_ns) {
            Some(Conn::NatOut { ext, tcp }) => {
                if let Some(f) = tcp_flags {
                    tcp.update(true, f);
                }
                *ext
            }
            _ => {
                // A new session: TCP only from a SYN (RFC 5382 REQ-2 filtering needs a
                // tracked open; stray segments are not NATed).
                if let Some(f) = tcp_flags {
                    if f & tcp::flags::SYN == 0 || f & tcp::flags::ACK != 0 {
                        return io.drop_packet(buf, DropReason::NatNoMapping);
                    }
                }
                let mk = mapping_key(&k);
                let ext = match self.flows.get(&mk, now_ns) {
                    Some(Conn::NatMapping { ext }) => *ext,
                    _ => {
                        let Some(e) = self.ports.allocate(flow_hash(&mk)) else {
                            return io.drop_packet(buf, DropReason::NatPortsExhausted);
                        };
                        let exp = now_ns.saturating_add(t.for_packet(&k, None));
                        match self.flows.insert_displacing(
                            mk,
                            Conn::NatMapping { ext: e },
                            exp,
                            now_ns,
                        ) {
                            Ok((_, displaced)) => self.release_displaced(displaced),
                            Err(_) => {
                                self.ports.release(e);
                                return io.drop_packet(buf, DropReason::FlowTableFull);
                            }
                        }
                        e
                    }
                };
                let mut st = TcpState::default();
                if let Some(f) = tcp_flags {
                    st.update(true, f);
                }
                let exp = now_ns.saturating_add(t.for_packet(&k, tcp_flags.map(|_| st)));
                let ik = nat_in_key(&k, self.public_addr, ext);
                let out = Conn::NatOut { ext, tcp: st };
                let inb = Conn::NatIn {
                    int: k.src,
                    int_port: k.sport,
                };
                let ok = match self.flows.insert_displacing(k, out, exp, now_ns) {
                    Ok((_, d)) => {
                        self.release_displaced(d);
                        true
                    }
                    Err(_) => false,
                };
                if !ok {
                    return io.drop_packet(buf, DropReason::FlowTableFull);
                }
                match self.flows.insert_displacing(ik, inb, exp, now_ns) {
                    Ok((_, d)) => self.release_displaced(d),
                    Err(_) => {
                        self.flows.remove(&k);
                        return io.drop_packet(buf, DropReason::FlowTableFull);
                    }
                }
                ext
            }
        };
        self.nat_touch(&k, ext, tcp_flags, now_ns);
        let body = buf.data_mut().get_mut(ETH..).unwrap_or_default();
        rewrite_addr(body, End::Source, self.public_addr);
        rewrite_port(body, End::Source, ext);
        self.out_public(buf, k.dst, now_ns, counters, io);
    }

    /// Refreshes a NAT44 session (both keys) and its mapping to the session's timeout.
    fn nat_touch(&mut self, out_key: &FlowKey, ext: u16, tcp_flags: Option<u8>, now_ns: u64) {
        let st = match self.flows.get(out_key, now_ns) {
            Some(Conn::NatOut { tcp, .. }) => *tcp,
            _ => return,
        };
        let exp =
            now_ns.saturating_add(self.nat_timeouts.for_packet(out_key, tcp_flags.map(|_| st)));
        self.flows.touch(out_key, exp, now_ns);
        self.flows
            .touch(&nat_in_key(out_key, self.public_addr, ext), exp, now_ns);
        let mk = mapping_key(out_key);
        if self.flows.expires_at(&mk, now_ns).unwrap_or(0) < exp {
            self.flows.touch(&mk, exp, now_ns);
        }
    }

    /// A datagram to the public address that is not a tunnel packet: a reply of a NAT44
    /// session (or an ICMP error about one), else the router's (ping the gateway).
    fn nat_inbound(
        &mut self,
        mut buf: B,
        in_port: u16,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        let (key, err_key, tcp_flags) = match ipv4_of(buf.data()) {
            Some(ip) => {
                let d = ip.header_and_payload();
                (flow_key(d), icmp_error_key(d), tcp_flags_of(&ip))
            }
            None => (None, None, None),
        };
        // An ICMP error about an outbound session: the quote is [R:E→X].
        if let Some(q) = err_key {
            if let Some(Conn::NatIn { int, int_port }) =
                self.flows.get(&q.reversed(), now_ns).copied()
            {
                let Some(ip) = ipv4_of(buf.data()) else {
                    return io.drop_packet(buf, DropReason::IcmpMalformed);
                };
                let (hlen, total) = (ip.header_len(), usize::from(ip.total_len()));
                let body = buf.data_mut().get_mut(ETH..ETH + total).unwrap_or_default();
                rewrite_addr(body, End::Destination, int);
                if let Some(icmp) = body.get_mut(hlen..) {
                    if let Some(quote) = icmp.get_mut(icmpv4::HEADER_LEN..) {
                        rewrite_addr(quote, End::Source, int);
                        rewrite_port(quote, End::Source, int_port);
                    }
                    refill_icmp_checksum(icmp);
                }
                return self.out_private(buf, int, now_ns, counters, io);
            }
        }
        let Some(k) = key else {
            return self.route(buf, in_port, now_ns, counters, io);
        };
        let Some(Conn::NatIn { int, int_port }) = self.flows.get(&k, now_ns).copied() else {
            // Not a session reply: the gateway's own business (ping), or filtered.
            if k.proto == ipv4::protocol::ICMP {
                return self.route(buf, in_port, now_ns, counters, io);
            }
            return io.drop_packet(buf, DropReason::NatNoMapping);
        };
        let out_key = FlowKey {
            proto: k.proto,
            src: int,
            dst: k.src,
            sport: int_port,
            dport: if k.proto == ipv4::protocol::ICMP {
                0
            } else {
                k.sport
            },
        };
        if let (Some(f), Some(Conn::NatOut { tcp, .. })) =
            (tcp_flags, self.flows.get_mut(&out_key, now_ns))
        {
            tcp.update(false, f);
        }
        let ext = k.dport_or_ident_in();
        self.nat_touch(&out_key, ext, tcp_flags, now_ns);
        let body = buf.data_mut().get_mut(ETH..).unwrap_or_default();
        rewrite_addr(body, End::Destination, int);
        rewrite_port(body, End::Destination, int_port);
        self.out_private(buf, int, now_ns, counters, io);
    }

    /// Releases the port a displaced (expired) entry held.
    fn release_displaced(&mut self, d: Option<(FlowKey, Conn)>) {
        match d {
            Some((_, Conn::NatMapping { ext })) => {
                self.ports.release(ext);
            }
            Some((
                k,
                Conn::Reply {
                    initiator: Some(_), ..
                },
            )) => {
                self.ports.release(k.dport_or_ident());
            }
            _ => {}
        }
    }

    /// Sends a translated packet to `dst` through the private side.
    fn out_private(
        &mut self,
        buf: B,
        dst: Ipv4Addr,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        let Some(route) = self.router.route(dst) else {
            return io.drop_packet(buf, DropReason::NoRoute);
        };
        if route.port != self.private_port {
            return io.drop_packet(buf, DropReason::NatNoMapping);
        }
        self.send_out(
            buf,
            route.port,
            route.next_hop_for(dst),
            now_ns,
            counters,
            io,
        );
    }

    /// True if `p` is in the range of ports the gateway hands out.
    fn in_nat_range(&self, p: u16) -> bool {
        (self.nat_range.0..=self.nat_range.1).contains(&p)
    }

    /// The lcore owning a flow seen on the private side with key `k` (B's direction):
    /// by the allocated port for replies to the gateway's private address (multi-
    /// homing), else by the symmetric hash of the 5-tuple.
    fn private_owner(&self, k: &FlowKey) -> usize {
        let p = k.dport_or_ident();
        if k.dst == self.private_addr && self.in_nat_range(p) {
            usize::from(p) % self.lcores
        } else {
            symmetric_owner(k, self.lcores)
        }
    }

    /// The lcore owning the NAT44 session a non-tunnel datagram to the public address
    /// belongs to (by its external port), if it looks like one.
    fn public_reply_owner(&self, frame: &[u8]) -> Option<usize> {
        let ip = ipv4_of(frame)?;
        let d = ip.header_and_payload();
        let k = icmp_error_key(d)
            .map(|q| q.reversed())
            .or_else(|| flow_key(d))?;
        let p = k.dport_or_ident();
        self.in_nat_range(p).then(|| usize::from(p) % self.lcores)
    }

    /// Sends a translated packet to `dst` through the public side.
    fn out_public(
        &mut self,
        buf: B,
        dst: Ipv4Addr,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        let Some(route) = self.router.route(dst) else {
            return io.drop_packet(buf, DropReason::NoRoute);
        };
        self.send_out(
            buf,
            route.port,
            route.next_hop_for(dst),
            now_ns,
            counters,
            io,
        );
    }

    /// Sends a translated datagram on `port`: whole when it fits the port's MTU, else in
    /// fragments when DF is clear; with DF set it is dropped (`MtuExceeded`; the ICMP
    /// error would have to be about the untranslated datagram). It matters when the
    /// ports' MTUs differ: a datagram that fit the link it came from need not fit the
    /// other (found by fuzzing, `gateway`: replies left oversized on a smaller MTU).
    fn send_out(
        &mut self,
        buf: B,
        port: u16,
        next_hop: Ipv4Addr,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        let mtu = usize::from(self.router.mtu(port).unwrap_or(0));
        let df_too_big = ipv4_of(buf.data())
            .is_some_and(|ip| ip.dont_frag() && usize::from(ip.total_len()) > mtu);
        if df_too_big {
            return io.drop_packet(buf, DropReason::MtuExceeded);
        }
        self.router
            .send_fragmenting(buf, port, next_hop, now_ns, counters, io);
    }

    fn route(
        &mut self,
        mut buf: B,
        in_port: u16,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        let v = self.router.process(&mut buf, in_port, now_ns, counters);
        deliver(buf, v, io);
    }

    fn mac_ok(&self, buf: &B, port: u16) -> bool {
        ethernet::Frame::new_checked(buf.data())
            .is_ok_and(|f| Some(f.dst()) == self.router.port_mac(port))
    }
}

/// The IPv4 packet view after the Ethernet header, if it is a valid one.
fn ipv4_of(frame: &[u8]) -> Option<ipv4::Packet<&[u8]>> {
    let f = ethernet::Frame::new_checked(frame).ok()?;
    if f.ethertype() != ethernet::ethertype::IPV4 {
        return None;
    }
    ipv4::Packet::new_checked(frame.get(ETH..)?).ok()
}

/// (source, destination) of the datagram an ICMP error quotes.
fn ipv4_of_quote(icmp: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let q = icmp.get(icmpv4::HEADER_LEN..)?;
    if q.len() < ipv4::MIN_HEADER_LEN || q.first()? >> 4 != 4 {
        return None;
    }
    let p = ipv4::Packet::new_unchecked(q);
    Some((p.src(), p.dst()))
}

fn tcp_flags_of(ip: &ipv4::Packet<&[u8]>) -> Option<u8> {
    if ip.protocol() != ipv4::protocol::TCP || ip.frag_offset() != 0 {
        return None;
    }
    tcp::Packet::new_checked(ip.payload())
        .ok()
        .map(|t| t.flags())
}

/// The lcore that owns a flow, the same for both directions of it: a hash of the
/// unordered address pair and unordered port pair.
fn symmetric_owner(k: &FlowKey, lcores: usize) -> usize {
    let (a, b) = (u32::from(k.src), u32::from(k.dst));
    let (lo, hi) = (a.min(b), a.max(b));
    let (p, q) = (k.sport.min(k.dport), k.sport.max(k.dport));
    let mut h = u64::from(lo) << 32 | u64::from(hi);
    h ^= (u64::from(p) << 16 | u64::from(q)) << 8 | u64::from(k.proto);
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h >> 32) as usize) % lcores.max(1)
}

/// The flow key of the inner datagram of a tunnel packet (not verified: only used to
/// pick the lcore that will verify it).
fn tunnel_inner_key(frame: &[u8]) -> Option<FlowKey> {
    let ip = ipv4_of(frame)?;
    let inner = ip.payload().get(udp::HEADER_LEN + aves::HEADER_LEN..)?;
    flow_key(inner)
}

/// The NAT44 mapping key of an outbound flow: its internal endpoint only.
fn mapping_key(k: &FlowKey) -> FlowKey {
    FlowKey {
        proto: k.proto,
        src: k.src,
        dst: Ipv4Addr::UNSPECIFIED,
        sport: k.sport,
        dport: 0,
    }
}

/// The key of the replies of outbound flow `k` once translated to `public`:`ext`.
fn nat_in_key(k: &FlowKey, public: Ipv4Addr, ext: u16) -> FlowKey {
    let mut t = *k;
    t.src = public;
    t.sport = ext;
    t.reversed()
}

/// Recomputes an ICMP message's checksum (it covers the quote we rewrote).
fn refill_icmp_checksum(icmp: &mut [u8]) {
    if icmp.len() >= 4 {
        icmp[2] = 0;
        icmp[3] = 0;
        let c = checksum::checksum(icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
    }
}

fn flow_hash(k: &FlowKey) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in k
        .src
        .octets()
        .iter()
        .chain(k.dst.octets().iter())
        .chain(k.sport.to_be_bytes().iter())
        .chain(k.dport.to_be_bytes().iter())
        .chain(std::iter::once(&k.proto))
    {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Helpers on views used above.
trait HeaderAndPayload {
    fn header_and_payload(&self) -> &[u8];
}

impl HeaderAndPayload for ipv4::Packet<&[u8]> {
    /// The datagram (header + payload, without Ethernet padding).
    fn header_and_payload(&self) -> &[u8] {
        let total = usize::from(self.total_len());
        let all = self.clone().into_inner();
        all.get(..total).unwrap_or(all)
    }
}

trait ReplyPort {
    fn dport_or_ident(&self) -> u16;
    fn dport_or_ident_in(&self) -> u16;
}

impl ReplyPort for FlowKey {
    /// The gateway's allocated port in a multi-homing reply key: the destination port,
    /// or for ICMP the identifier (kept in `sport`).
    fn dport_or_ident(&self) -> u16 {
        if self.proto == ipv4::protocol::ICMP {
            self.sport
        } else {
            self.dport
        }
    }
    /// The same for an inbound NAT44 key (the external port is its destination port).
    fn dport_or_ident_in(&self) -> u16 {
        self.dport_or_ident()
    }
}

impl<B: PacketBuf> Role<B> for Gateway<B> {
    fn handle(
        &mut self,
        buf: B,
        in_port: u16,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        if in_port == self.public_port {
            self.public(buf, in_port, now_ns, counters, io)
        } else if in_port == self.private_port {
            self.private(buf, in_port, now_ns, counters, io)
        } else {
            self.route(buf, in_port, now_ns, counters, io)
        }
    }

    fn apply(&mut self, cmd: &Command, now_ns: u64) -> Result<(), CommandError> {
        self.router.apply(cmd, now_ns)?;
        if let Command::SetAddress { port, .. } = cmd {
            // The public address changed (§5.3, a new DHCP lease): tunnel packets and
            // NAT44 use the new one from the next packet on. Entries made for the old
            // address expire on their timers.
            if *port == self.public_port {
                if let Some(a) = self.router.port_addr(self.public_port) {
                    self.public_addr = a;
                }
            } else if *port == self.private_port {
                if let Some(a) = self.router.port_addr(self.private_port) {
                    self.private_addr = a;
                }
            }
        }
        Ok(())
    }

    fn neighbour(&self, port: u16, ip: Ipv4Addr, now_ns: u64) -> Option<MacAddr> {
        self.router.neighbour(port, ip, now_ns)
    }

    fn build_arp_request(&self, buf: &mut B, port: u16, target: Ipv4Addr) -> bool {
        self.router.build_arp_request(buf, port, target)
    }

    fn pop_learned(&mut self) -> Option<Notice> {
        self.router.pop_learned()
    }

    fn tick(&mut self, now_ns: u64, counters: &CoreCounters, _io: &mut impl Io<B>) {
        let freed = self.reassembly.expire(now_ns);
        for _ in 0..freed {
            counters.count_drop(DropReason::Reassembly);
        }
        let ports = &mut self.ports;
        let mut twins: [Option<FlowKey>; 64] = [None; 64];
        let mut n = 0;
        self.flows.expire_with(now_ns, 64, |k, v| {
            if let Conn::NatMapping { ext } = v {
                ports.release(ext);
            }
            if let Conn::Reply {
                initiator: Some((a, ap)),
                ..
            } = v
            {
                ports.release(k.dport_or_ident());
                let mut t = k.reversed();
                t.src = a;
                t.sport = ap;
                if let Some(slot) = twins.get_mut(n) {
                    *slot = Some(t);
                    n += 1;
                }
            }
        });
        for t in twins.iter().flatten() {
            self.flows.remove(t);
        }
    }

    fn end_burst(&mut self, now_ns: u64, counters: &CoreCounters, io: &mut impl Io<B>) {
        self.flush_verify(now_ns, counters, io);
    }

    fn report(&self, counters: &CoreCounters) {
        self.router.report(counters);
        counters.set_table(Table::Flows, self.flows.len());
        counters.set_table(Table::ReassemblyContexts, self.reassembly.len());
        counters.set_table(Table::ReassemblyBytes, self.reassembly.held_bytes());
        let used = self
            .ports
            .size()
            .saturating_sub(self.ports.available())
            .saturating_sub(self.nat_reserved);
        counters.set_table(Table::NatPorts, used);
    }

    fn drain(&mut self, f: &mut dyn FnMut(B)) {
        for (buf, _, _) in self.vbatch.drain(..) {
            f(buf);
        }
        self.reassembly.drain(f);
    }
}
