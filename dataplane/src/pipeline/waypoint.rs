//! The AVES waypoint role (AVES paper §3.2, §3.3.1, §5.2).
//!
//! A waypoint owns pools of public addresses (waypoint addresses) on its port and a
//! binding table keyed by (initiator A, waypoint address W) → (gateway R, responder B,
//! mode). A packet `[A→W]` with a binding is translated to `[A→B]` (destination rewritten,
//! IPv4 and TCP/UDP checksums updated per RFC 1624), encapsulated as
//! `[W→R UDP AVES [A→B]]` (`pipeline::tunnel`, HMAC with the gateway's key), routed to R,
//! and fragmented when the outer datagram exceeds the egress MTU. When the inner DF bit
//! is set and it would not fit, the waypoint drops it and sends ICMP "fragmentation
//! needed" with the MTU that fits (egress MTU − 48), so path MTU discovery works through
//! the tunnel (§5.2).
//!
//! A new connection (TCP SYN, or any non-TCP packet) to a waypoint address from an
//! initiator without a binding is dropped with ICMP host unreachable (§5.2: "This signals
//! to the initiator that it needs to retry"); other packets without a binding are dropped.
//! Everything else (ARP, ping to the interface address, routing) is the router role's.
//!
//! Timers (§5.2): a binding lives for the protocol timeout of its packets (ICMP 1 min,
//! UDP 15 min, TCP 30 min, other 15 min, TCP to port 80 20 min), counted from each;
//! neither a later packet nor a repeated `AddBinding` shortens a running timer. The TCP
//! connections of a binding are tracked, and when the last one has closed (FIN both ways,
//! or RST) the binding is removed at once — except for port 80, whose clients cache DNS
//! answers. The waypoint sees only the initiator's half of a connection (replies go from
//! the gateway to the initiator directly), so, as in the paper's waypoint ("indicated by
//! TCP FIN packets"), the initiator's FIN or RST ends a connection. When the last one
//! has ended the binding is gone at once for new connections and may be rebound, while
//! the last segments of the closed ones (the initiator's final ACK) still pass for
//! [`CLOSING_GRACE_NS`]. Pinned (configured) bindings never expire.
//!
//! The inner TTL is not decremented: from the initiator's point of view the waypoint is
//! the destination host, so traceroute ends at W (the responder's ICMP port unreachable
//! comes back translated by the gateway).
//!
//! Invariants: per packet no allocation (buffers for fragments come from the `Io`), no
//! lock, no panic; every buffer ends in the `Io`.

use crate::addr::MacAddr;
use crate::auth::{self, BurstMac, Keyring, PortableMac};
use crate::buf::PacketBuf;
use crate::command::{Binding, Command, CommandError, Mode, Notice};
use crate::counters::{CoreCounters, DropReason};
use crate::pipeline::flow::{flow_key, FlowKey, FlowTable, TcpState, Timeouts};
use crate::pipeline::nat::{self, End};
use crate::pipeline::router::{valid_source, IcmpError, Router, RouterConfig, RouterConfigError};
use crate::pipeline::tunnel::{self, Outer, OVERHEAD};
use crate::pipeline::{deliver, Io, Role};
use crate::wire::{aves, ethernet, icmpv4, ipv4, tcp};
use std::net::Ipv4Addr;

const ETH: usize = ethernet::HEADER_LEN;

/// A gateway this waypoint tunnels to, with the keys it signs with.
#[derive(Clone, Debug)]
pub struct GatewayKeys {
    /// The gateway's public address (tunnel endpoint).
    pub address: Ipv4Addr,
    /// Its keys; the current one signs.
    pub keys: Keyring,
}

/// Everything the waypoint role needs at start.
#[derive(Clone, Debug)]
pub struct WaypointConfig {
    /// Ports, addresses, pools (the waypoint addresses), routes, neighbours.
    pub router: RouterConfig,
    /// Gateways and their keys.
    pub gateways: Vec<GatewayKeys>,
    /// Bindings installed at start (pinned).
    pub bindings: Vec<Binding>,
    /// Binding table capacity.
    pub binding_capacity: usize,
    /// TCP connection tracking capacity.
    pub connection_capacity: usize,
    /// Tunnel UDP port at the gateways.
    pub tunnel_port: u16,
    /// Authenticate headers only (paper §5.4), instead of the whole inner datagram.
    pub headers_only: bool,
    /// Protocol timeouts (§5.2 by default).
    pub timeouts: Timeouts,
    /// Hash seed for the tables.
    pub seed: u64,
}

/// One binding's state.
#[derive(Clone, Copy, Debug)]
struct BindingState {
    gateway: usize,
    responder: Ipv4Addr,
    mode: Mode,
    pinned: bool,
    /// TCP connections of this binding not yet closed.
    open_tcp: u32,
    /// Saw TCP to port 80: never removed on close (§5.2).
    http: bool,
    /// A packet has used the binding. Until then it lives for the "other" timeout
    /// however short its first packet's protocol timeout is; after that the first
    /// packet's timeout replaces that wait, and later packets only extend it.
    used: bool,
    /// Its last TCP connection closed: the binding is gone for new connections (and
    /// may be replaced), but stragglers of the closed ones (the initiator's last ACK)
    /// still pass until [`CLOSING_GRACE_NS`] is over.
    closing: bool,
}

/// How long the segments after a close (last ACK, retransmitted FIN) still pass.
pub const CLOSING_GRACE_NS: u64 = 10 * crate::pipeline::flow::SECOND_NS;

/// The waypoint role's per-core state.
pub struct Waypoint<B = crate::buf::VecBuf> {
    router: Router,
    gateways: Vec<GatewayKeys>,
    bindings: FlowTable<BindingState>,
    connections: FlowTable<WpConn>,
    tunnel_port: u16,
    headers_only: bool,
    timeouts: Timeouts,
    /// Encapsulated packets waiting for their tags (burst mode): tagged together by
    /// `mac` at the end of the burst (decision 0009), then sent.
    batch: Vec<Queued<B>>,
    /// The engine that tags a batch.
    mac: Box<dyn BurstMac>,
    /// Burst mode: tag at the end of each burst. Off: tag each packet at once.
    batching: bool,
}

/// A packet waiting in the batch for its tag.
struct Queued<B> {
    buf: B,
    gateway: usize,
    port: u16,
    next_hop: Ipv4Addr,
}

/// Packets tagged together at most (one receive burst of one port, and then some).
pub const MAX_BATCH: usize = 64;

impl<B> std::fmt::Debug for Waypoint<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waypoint")
            .field("bindings", &self.bindings.len())
            .field("batching", &self.batching)
            .finish_non_exhaustive()
    }
}

/// A TCP connection of a binding, as the waypoint sees it (initiator → responder only).
#[derive(Clone, Copy, Debug, Default)]
struct WpConn {
    tcp: TcpState,
}

/// The binding table key for (initiator, waypoint address).
fn pair(initiator: Ipv4Addr, waypoint: Ipv4Addr) -> FlowKey {
    FlowKey {
        proto: 0,
        src: initiator,
        dst: waypoint,
        sport: 0,
        dport: 0,
    }
}

/// What the per-packet path learned from the headers.
struct Inbound {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    total_len: usize,
    dont_frag: bool,
    key: Option<FlowKey>,
    tcp_flags: Option<u8>,
    first_fragment: bool,
}

impl<B: PacketBuf> Waypoint<B> {
    /// Builds the tables. Errors on a bad router config, too many bindings, or a
    /// binding whose gateway has no key.
    pub fn new(cfg: &WaypointConfig) -> Result<Waypoint<B>, RouterConfigError> {
        let router = Router::new(&cfg.router)?;
        let mut w = Waypoint {
            router,
            gateways: cfg.gateways.clone(),
            bindings: FlowTable::new(cfg.binding_capacity.max(1), cfg.seed),
            connections: FlowTable::new(cfg.connection_capacity.max(1), cfg.seed ^ 0x5bd1e995),
            tunnel_port: cfg.tunnel_port,
            headers_only: cfg.headers_only,
            timeouts: cfg.timeouts,
            batch: Vec::with_capacity(MAX_BATCH),
            mac: Box::new(PortableMac),
            batching: false,
        };
        for b in &cfg.bindings {
            w.add_binding(b, 0).map_err(|e| {
                RouterConfigError(format!(
                    "binding {} via waypoint {} to {} at gateway {}: {e}",
                    b.initiator, b.waypoint, b.responder, b.gateway
                ))
            })?;
        }
        Ok(w)
    }

    /// The router underneath (ARP, routes, neighbours).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Number of live bindings.
    pub fn binding_count(&self) -> usize {
        self.bindings.len()
    }

    /// The responder bound for (initiator, waypoint), if any.
    pub fn binding(
        &self,
        initiator: Ipv4Addr,
        waypoint: Ipv4Addr,
        now_ns: u64,
    ) -> Option<Ipv4Addr> {
        self.bindings
            .get(&pair(initiator, waypoint), now_ns)
            .filter(|b| !b.closing)
            .map(|b| b.responder)
    }

    fn add_binding(&mut self, b: &Binding, now_ns: u64) -> Result<(), CommandError> {
        if !self.router.is_pool(b.waypoint) {
            return Err(CommandError::Invalid);
        }
        let gateway = self
            .gateways
            .iter()
            .position(|g| g.address == b.gateway)
            .ok_or(CommandError::Invalid)?;
        let key = pair(b.initiator, b.waypoint);
        if self.bindings.get(&key, now_ns).is_some_and(|c| c.closing) {
            // A closed binding is gone as far as new bindings are concerned.
            self.bindings.remove(&key);
        }
        if let Some(cur) = self.bindings.get_mut(&key, now_ns) {
            // §3.3.1: one responder per (initiator, waypoint address).
            if cur.responder != b.responder || cur.gateway != gateway {
                return Err(CommandError::Conflict);
            }
            cur.mode = b.mode;
            cur.pinned |= b.pinned;
            let exp = if cur.pinned {
                u64::MAX
            } else {
                now_ns.saturating_add(self.timeouts.other)
            };
            // A refresh only extends: it must not cut short the timer of a binding
            // whose connections earned a longer one (TCP 30 min).
            let cur_exp = self.bindings.expires_at(&key, now_ns).unwrap_or(0);
            if exp > cur_exp {
                self.bindings.touch(&key, exp, now_ns);
            }
            return Ok(());
        }
        let state = BindingState {
            gateway,
            responder: b.responder,
            mode: b.mode,
            pinned: b.pinned,
            open_tcp: 0,
            http: false,
            used: false,
            closing: false,
        };
        // A fresh binding waits for its first packet for the "other" timeout (15 min by
        // default); the delayed-binding wait state (issue 4) shortens this.
        let exp = if b.pinned {
            u64::MAX
        } else {
            now_ns.saturating_add(self.timeouts.other)
        };
        self.bindings
            .insert(key, state, exp, now_ns)
            .map(|_| ())
            .map_err(|_| CommandError::TableFull)
    }

    /// Reads what the waypoint needs from the frame; `None` means "not a valid IPv4
    /// packet" and the router's checks will drop it with the right reason.
    fn inspect(data: &[u8]) -> Option<Inbound> {
        let frame = ethernet::Frame::new_checked(data).ok()?;
        if frame.ethertype() != ethernet::ethertype::IPV4 {
            return None;
        }
        let ip = ipv4::Packet::new_checked(frame.payload()).ok()?;
        if !ip.verify_checksum() {
            return None;
        }
        let first_fragment = ip.frag_offset() == 0;
        let tcp_flags = if ip.protocol() == ipv4::protocol::TCP && first_fragment {
            tcp::Packet::new_checked(ip.payload())
                .ok()
                .map(|t| t.flags())
        } else {
            None
        };
        Some(Inbound {
            src: ip.src(),
            dst: ip.dst(),
            total_len: usize::from(ip.total_len()),
            dont_frag: ip.dont_frag(),
            key: flow_key(frame.payload()),
            tcp_flags,
            first_fragment,
        })
    }

    /// The waypoint path for a packet to a waypoint address.
    fn tunnel(
        &mut self,
        mut buf: B,
        in_port: u16,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
        p: Inbound,
    ) {
        if !valid_source(p.src) {
            return io.drop_packet(buf, DropReason::Ipv4BadSource);
        }
        // Drop Ethernet padding so lengths below are the datagram's.
        let extra = buf.len().saturating_sub(ETH + p.total_len);
        if extra > 0 && !buf.trim(extra) {
            return io.drop_packet(buf, DropReason::Ipv4Malformed);
        }
        let bkey = pair(p.src, p.dst);
        let new_connection = match p.tcp_flags {
            Some(f) => f & tcp::flags::SYN != 0 && f & tcp::flags::ACK == 0,
            None => p.first_fragment,
        };
        let live = self
            .bindings
            .get(&bkey, now_ns)
            .copied()
            .filter(|b| !(b.closing && new_connection));
        let Some(b) = live else {
            if new_connection {
                let v = self.router.icmp_error(
                    &mut buf,
                    in_port,
                    now_ns,
                    counters,
                    IcmpError {
                        msg_type: icmpv4::msg::DST_UNREACHABLE,
                        code: icmpv4::unreach::HOST,
                        mtu: 0,
                        reason: DropReason::NoBinding,
                    },
                );
                return deliver(buf, v, io);
            }
            return io.drop_packet(buf, DropReason::NoBinding);
        };
        let Some(gw) = self.gateways.get(b.gateway) else {
            return io.drop_packet(buf, DropReason::NoGatewayKey);
        };
        let (gw_addr, Some(key)) = (gw.address, gw.keys.sign_key()) else {
            return io.drop_packet(buf, DropReason::NoGatewayKey);
        };
        let Some(route) = self.router.route(gw_addr) else {
            return io.drop_packet(buf, DropReason::NoRoute);
        };
        let mtu = usize::from(self.router.mtu(route.port).unwrap_or(0));

        // Path MTU discovery through the tunnel (§5.2): DF set and too big after
        // encapsulation → "fragmentation needed" with the MTU that fits.
        if p.dont_frag && p.total_len + OVERHEAD > mtu {
            let inner_mtu = mtu.saturating_sub(OVERHEAD) as u16;
            let v = self.router.icmp_error(
                &mut buf,
                in_port,
                now_ns,
                counters,
                IcmpError {
                    msg_type: icmpv4::msg::DST_UNREACHABLE,
                    code: icmpv4::unreach::FRAG_NEEDED,
                    mtu: inner_mtu,
                    reason: DropReason::MtuExceeded,
                },
            );
            return deliver(buf, v, io);
        }

        // Timers and TCP close tracking (§5.2).
        let mut remove_binding = false;
        let mut http = b.http;
        let mut tcp_state = None;
        if let (Some(k), Some(flags)) = (p.key, p.tcp_flags) {
            http |= k.is_http();
            let mut closed = false;
            if let Some(c) = self.connections.get_mut(&k, now_ns) {
                // The waypoint sees only the initiator's half of the connection (the
                // responder's replies go from the gateway straight to the initiator),
                // so, as in the paper's waypoint (§5.2, "indicated by TCP FIN
                // packets"), the initiator's FIN or RST ends the connection here. The
                // binding then closes with a grace period for the last segments.
                c.tcp.update(true, flags);
                closed = c.tcp.is_closed() || flags & (tcp::flags::FIN | tcp::flags::RST) != 0;
                tcp_state = Some(c.tcp);
            } else if new_connection {
                let mut st = TcpState::default();
                st.update(true, flags);
                let exp = now_ns.saturating_add(self.timeouts.for_packet(&k, Some(st)));
                let c = WpConn { tcp: st };
                if self.connections.insert(k, c, exp, now_ns).is_ok() {
                    if let Some(bs) = self.bindings.get_mut(&bkey, now_ns) {
                        bs.open_tcp = bs.open_tcp.saturating_add(1);
                    }
                    tcp_state = Some(st);
                } else {
                    counters.count_drop(DropReason::FlowTableFull);
                }
            }
            if closed {
                self.connections.remove(&k);
                if let Some(bs) = self.bindings.get_mut(&bkey, now_ns) {
                    bs.open_tcp = bs.open_tcp.saturating_sub(1);
                    remove_binding = bs.open_tcp == 0 && !http && !bs.pinned;
                }
            } else if let Some(st) = tcp_state {
                let exp = now_ns.saturating_add(self.timeouts.for_packet(&k, Some(st)));
                self.connections.touch(&k, exp, now_ns);
            }
        }
        if let Some(bs) = self.bindings.get_mut(&bkey, now_ns) {
            bs.http = http;
            bs.used = true;
        }
        if !b.pinned {
            let t = match p.key {
                Some(k) => self.timeouts.for_packet(&k, tcp_state),
                None => self.timeouts.other,
            };
            let want = now_ns.saturating_add(t);
            let cur = self.bindings.expires_at(&bkey, now_ns).unwrap_or(0);
            // The first packet sets the protocol's timeout (an ICMP-only binding
            // lives 1 min, not the 15 min a fresh binding waits); later ones extend it.
            if want > cur || !b.used {
                self.bindings.touch(&bkey, want, now_ns);
            }
        }

        // Translate [A→W] to [A→B].
        if let Err(r) = translate_dst(&mut buf, b.responder) {
            return io.drop_packet(buf, r);
        }
        let mut flags = 0;
        if self.headers_only {
            flags |= aves::FLAG_H;
        }
        if b.mode == Mode::MultiHoming {
            flags |= aves::FLAG_M;
        }
        let outer = Outer {
            src: p.dst,
            dst: gw_addr,
            dst_port: self.tunnel_port,
            ident: self.router.next_ident(),
            flags,
        };
        if let Err(r) = tunnel::encapsulate_untagged(&mut buf, &outer, key.id()) {
            return io.drop_packet(buf, r);
        }
        if remove_binding {
            if let Some(bs) = self.bindings.get_mut(&bkey, now_ns) {
                bs.closing = true;
            }
            self.bindings
                .touch(&bkey, now_ns.saturating_add(CLOSING_GRACE_NS), now_ns);
        }
        let queued = Queued {
            buf,
            gateway: b.gateway,
            port: route.port,
            next_hop: route.next_hop_for(gw_addr),
        };
        if self.batch.len() >= MAX_BATCH {
            self.flush_batch(now_ns, counters, io);
        }
        self.batch.push(queued);
        if !self.batching {
            self.flush_batch(now_ns, counters, io);
        }
    }

    /// Tunnel packets are tagged at the end of each burst by `mac` (a multi-buffer
    /// engine, decision 0009) instead of one at a time. The engine calls
    /// [`Role::end_burst`]; without it (tests, tools) every packet is tagged at once.
    pub fn set_burst_mac(&mut self, mac: Box<dyn BurstMac>) {
        self.mac = mac;
        self.batching = true;
    }

    /// Tags every queued packet, per gateway key, with one `mac` call per key, then
    /// sends them (fragmenting what exceeds the egress MTU: the outer DF is clear then,
    /// copied from the inner one).
    fn flush_batch(&mut self, now_ns: u64, counters: &CoreCounters, io: &mut impl Io<B>) {
        let n = self.batch.len().min(MAX_BATCH);
        if n == 0 {
            return;
        }
        let mut tags = [[0u8; auth::TAG_LEN]; MAX_BATCH];
        let mut done = [false; MAX_BATCH];
        for first in 0..n {
            if done[first] {
                continue;
            }
            let g = self.batch[first].gateway;
            let Some(key) = self.gateways.get(g).and_then(|gk| gk.keys.sign_key()) else {
                continue;
            };
            // Every queued packet for this gateway, as contiguous HMAC inputs.
            let mut idx = [0usize; MAX_BATCH];
            let mut msgs: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
            let mut m = 0;
            for (i, q) in self.batch.iter().enumerate().take(n).skip(first) {
                if q.gateway == g && !done[i] {
                    if let Some(msg) = tunnel::mac_message(q.buf.data()) {
                        idx[m] = i;
                        msgs[m] = msg;
                        m += 1;
                    }
                    done[i] = true;
                }
            }
            let mut out = [[0u8; auth::TAG_LEN]; MAX_BATCH];
            if !self.mac.tag_burst(key, &msgs[..m], &mut out[..m]) {
                for j in 0..m {
                    out[j] = auth::tag(key, &[msgs[j]]);
                }
            }
            for j in 0..m {
                tags[idx[j]] = out[j];
            }
        }
        for (i, q) in self.batch.drain(..).enumerate() {
            let Queued {
                mut buf,
                port,
                next_hop,
                ..
            } = q;
            if i >= n || !tunnel::set_tag(buf.data_mut(), &tags[i]) {
                io.drop_packet(buf, DropReason::TunnelMalformed);
                continue;
            }
            self.router
                .send_fragmenting(buf, port, next_hop, now_ns, counters, io);
        }
    }
}

/// Rewrites the destination of the IPv4 datagram in `buf` (after Ethernet) to `to`,
/// with RFC 1624 checksum updates (see [`crate::pipeline::nat`]).
pub fn translate_dst<B: PacketBuf>(buf: &mut B, to: Ipv4Addr) -> Result<(), DropReason> {
    let body = buf.data_mut().get_mut(ETH..).ok_or(DropReason::Truncated)?;
    if nat::rewrite_addr(body, End::Destination, to) {
        Ok(())
    } else {
        Err(DropReason::Ipv4Malformed)
    }
}

impl<B: PacketBuf> Role<B> for Waypoint<B> {
    fn handle(
        &mut self,
        mut buf: B,
        in_port: u16,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        // Only unicast frames to us carrying IPv4 to a waypoint address take the
        // waypoint path; the router checks the MAC and everything else.
        let ours = {
            let d = buf.data();
            ethernet::Frame::new_checked(d).is_ok_and(|f| {
                f.ethertype() == ethernet::ethertype::IPV4 && !f.dst().is_broadcast()
            })
        };
        if ours {
            if let Some(p) = Self::inspect(buf.data()) {
                if self.router.is_pool(p.dst) {
                    let mac_ok = ethernet::Frame::new_checked(buf.data())
                        .is_ok_and(|f| Some(f.dst()) == self.port_mac(in_port));
                    if !mac_ok {
                        return io.drop_packet(buf, DropReason::NotForUs);
                    }
                    return self.tunnel(buf, in_port, now_ns, counters, io, p);
                }
            }
        }
        let v = self.router.process(&mut buf, in_port, now_ns, counters);
        deliver(buf, v, io);
    }

    fn apply(&mut self, cmd: &Command, now_ns: u64) -> Result<(), CommandError> {
        match cmd {
            Command::AddBinding(b) => self.add_binding(b, now_ns),
            Command::DelBinding {
                initiator,
                waypoint,
            } => {
                let key = pair(*initiator, *waypoint);
                self.bindings
                    .remove(&key)
                    .map(|_| ())
                    .ok_or(CommandError::NotFound)
            }
            other => self.router.apply(other, now_ns),
        }
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

    fn end_burst(&mut self, now_ns: u64, counters: &CoreCounters, io: &mut impl Io<B>) {
        self.flush_batch(now_ns, counters, io);
    }

    fn drain(&mut self, f: &mut dyn FnMut(B)) {
        for q in self.batch.drain(..) {
            f(q.buf);
        }
    }

    fn tick(&mut self, now_ns: u64, _counters: &CoreCounters, _io: &mut impl Io<B>) {
        self.connections.expire(now_ns, 64);
        self.bindings.expire(now_ns, 64);
    }
}

impl<B: PacketBuf> Waypoint<B> {
    fn port_mac(&self, port: u16) -> Option<MacAddr> {
        self.router.port_mac(port)
    }
}

#[cfg(test)]
#[path = "waypoint_tests.rs"]
mod tests;
