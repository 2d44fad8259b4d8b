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
//! Delayed binding (§3.3.2, Figure 6; §5.2; §6.2). `Command::BeginWait` puts a waypoint
//! address W in a wait state for Twait, remembering (R, B, mode) and who may claim (any
//! source, or an EDNS Client Subnet prefix). While W waits, each new connection (TCP
//! SYN, or any other first fragment) from a source S in that set is admitted by
//! Figure 6: S bound at W to another responder is a violator — rejected, and rejected
//! for Treject after the wait ends; S bound to (R, B) passes; S without a binding at W
//! gets one to (R, B) (a "claim"), unless S is rejected. Every admissible source gets a
//! binding, not only the first: the wait does not end when someone claims it, so a
//! malicious early packet cannot keep the real initiator out (§6.2). A claim made on
//! one lcore is reported as a `Notice` and installed on the others through control;
//! so is each new rejection, so that every lcore rejects the same sources.
//! Outside a wait state a source without a binding at W that opens a connection is
//! answered host unreachable and, per §6.2, rejected for `reject_unknown_ns` (3 h):
//! it cannot claim in later wait states. An `AddBinding` for S (an intranet SETUP or
//! the operator) lifts S's rejections. Rejections and wait states live in bounded
//! tables on each lcore; when full, nothing more is rejected (fail open) and
//! `BeginWait` is refused.
//!
//! The inner TTL is not decremented: from the initiator's point of view the waypoint is
//! the destination host, so traceroute ends at W (the responder's ICMP port unreachable
//! comes back translated by the gateway).
//!
//! Invariants: per packet no allocation (buffers for fragments come from the `Io`), no
//! lock, no panic; every buffer ends in the `Io`.

use crate::addr::Ipv4Cidr;
use crate::addr::MacAddr;
use crate::auth::{self, BurstMac, Keyring, PortableMac};
use crate::buf::PacketBuf;
use crate::command::{Binding, Command, CommandError, Mode, Notice, WaitSpec};
use crate::counters::{BindingLife, BindingReject, CoreCounters, DropReason, Table};
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
    /// Delayed binding timers.
    pub delayed: DelayedTimers,
    /// Waypoint addresses that may be in a wait state at once.
    pub wait_capacity: usize,
    /// Rejected sources remembered (violators and sources without state).
    pub reject_capacity: usize,
}

/// Delayed binding timers (AVES paper §3.3.2, §5.2, §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelayedTimers {
    /// Treject: a wait state's violators are rejected this long after it ends (3 min).
    pub reject_ns: u64,
    /// A source without state that opens a connection outside a wait state is rejected
    /// this long (3 h); 0 turns the rule off.
    pub reject_unknown_ns: u64,
}

impl DelayedTimers {
    /// The paper's values: Treject 3 minutes (§5.2), 3 hours for sources without state
    /// (§6.2).
    pub const fn paper() -> DelayedTimers {
        DelayedTimers {
            reject_ns: 180 * crate::pipeline::flow::SECOND_NS,
            reject_unknown_ns: 3 * 3600 * crate::pipeline::flow::SECOND_NS,
        }
    }
}

/// A waypoint address's wait state.
#[derive(Clone, Copy, Debug)]
struct WaitState {
    sources: Ipv4Cidr,
    gateway: usize,
    responder: Ipv4Addr,
    mode: Mode,
    until_ns: u64,
}

/// Claims and rejections not yet reported to control; more are not reported (the
/// lcore that made them still has them).
const NOTICE_SLOTS: usize = 16;

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
    /// Wait states, keyed by (0.0.0.0, W).
    waits: FlowTable<WaitState>,
    /// Rejected sources: (S, W) for violators, (S, 0.0.0.0) for sources without state.
    rejects: FlowTable<()>,
    /// The outer UDP source port's hash state for the last inner address pair.
    source_ports: tunnel::SourcePorts,
    delayed: DelayedTimers,
    notices: [Option<Notice>; NOTICE_SLOTS],
    /// Encapsulated packets waiting for their tags (burst mode): tagged together by
    /// `mac` at the end of the burst (decision 0009), then sent.
    batch: Vec<Queued<B>>,
    /// The engine that tags a batch.
    mac: Box<dyn BurstMac>,
    /// Burst mode: tag at the end of each burst. Off: tag each packet at once.
    batching: bool,
    /// Binding lifecycle counts, mirrored to the counters in [`Role::report`].
    life: BindingLife,
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
            waits: FlowTable::new(cfg.wait_capacity.max(1), cfg.seed ^ 0x2545_f491),
            rejects: FlowTable::new(cfg.reject_capacity.max(1), cfg.seed ^ 0x9e37_79b9),
            source_ports: tunnel::SourcePorts::default(),
            delayed: cfg.delayed,
            notices: [None; NOTICE_SLOTS],
            batch: Vec::with_capacity(MAX_BATCH),
            mac: Box::new(PortableMac),
            batching: false,
            life: BindingLife::default(),
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

    /// The binding lifecycle counts so far.
    pub fn binding_life(&self) -> BindingLife {
        self.life
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

    /// True when `waypoint` is in a wait state at `now_ns`.
    pub fn is_waiting(&self, waypoint: Ipv4Addr, now_ns: u64) -> bool {
        self.waits
            .get(&pair(Ipv4Addr::UNSPECIFIED, waypoint), now_ns)
            .is_some()
    }

    /// True when new connections from `source` to `waypoint` are rejected at `now_ns`
    /// (a violator there, or a source without state; the latter only matters for
    /// claims).
    pub fn is_rejected(&self, source: Ipv4Addr, waypoint: Ipv4Addr, now_ns: u64) -> bool {
        self.rejects.get(&pair(source, waypoint), now_ns).is_some()
            || self
                .rejects
                .get(&pair(source, Ipv4Addr::UNSPECIFIED), now_ns)
                .is_some()
    }

    fn begin_wait(&mut self, w: &WaitSpec, now_ns: u64) -> Result<(), CommandError> {
        if !self.router.is_pool(w.waypoint) {
            return Err(CommandError::Invalid);
        }
        let gateway = self
            .gateways
            .iter()
            .position(|g| g.address == w.gateway)
            .ok_or(CommandError::Invalid)?;
        let until_ns = now_ns.saturating_add(w.duration_ns);
        let state = WaitState {
            sources: w.sources.network(),
            gateway,
            responder: w.responder,
            mode: w.mode,
            until_ns,
        };
        self.waits
            .insert(
                pair(Ipv4Addr::UNSPECIFIED, w.waypoint),
                state,
                until_ns,
                now_ns,
            )
            .map(|_| ())
            .map_err(|_| CommandError::TableFull)
    }

    /// Remembers that `key`'s source is rejected until `until_ns` (never shortening a
    /// rejection it already has); with `share`, reports a new or longer rejection for
    /// the other lcores. A full table rejects no more.
    fn reject(&mut self, key: FlowKey, until_ns: u64, now_ns: u64, share: bool) {
        let changed = match self.rejects.expires_at(&key, now_ns) {
            Some(t) if t >= until_ns => false,
            Some(_) => self.rejects.touch(&key, until_ns, now_ns),
            None => self.rejects.insert(key, (), until_ns, now_ns).is_ok(),
        };
        if changed && share {
            let n = Notice::source_rejected(key.src, key.dst, until_ns.saturating_sub(now_ns));
            self.notify(n);
        }
    }

    /// Queues `n` for control; dropped when the slots are full.
    fn notify(&mut self, n: Notice) {
        if let Some(slot) = self.notices.iter_mut().find(|s| s.is_none()) {
            *slot = Some(n);
        }
    }

    /// Figure 6 for a new connection from `src` to waypoint address `dst`, whose live
    /// binding (if any, and not closing) is `bound` = (gateway, responder): `Err` is the
    /// reason to reject it (with ICMP host unreachable). `Ok(true)` when it claimed a
    /// binding (the binding table changed).
    fn admit(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        bound: Option<(usize, Ipv4Addr)>,
        now_ns: u64,
        counters: &CoreCounters,
    ) -> Result<bool, DropReason> {
        if self.waits.is_empty() && self.rejects.is_empty() && self.delayed.reject_unknown_ns == 0 {
            return Ok(false);
        }
        let key = pair(src, dst);
        if !self.rejects.is_empty() && self.rejects.get(&key, now_ns).is_some() {
            self.life.reject(BindingReject::SourceRejected);
            return Err(DropReason::SourceRejected);
        }
        let wait = if self.waits.is_empty() {
            None
        } else {
            self.waits
                .get(&pair(Ipv4Addr::UNSPECIFIED, dst), now_ns)
                .copied()
                .filter(|w| w.sources.contains(src))
        };
        let unknown = pair(src, Ipv4Addr::UNSPECIFIED);
        match (wait, bound) {
            (Some(w), Some(gr)) if gr != (w.gateway, w.responder) => {
                // A violator (X in Figure 6): rejected now and for Treject after the wait.
                let until = w.until_ns.saturating_add(self.delayed.reject_ns);
                self.reject(key, until, now_ns, true);
                self.life.reject(BindingReject::WaitViolation);
                Err(DropReason::WaitViolation)
            }
            (Some(w), None) => {
                if self.rejects.get(&unknown, now_ns).is_some() {
                    self.life.reject(BindingReject::SourceRejected);
                    return Err(DropReason::SourceRejected);
                }
                let Some(gw) = self.gateways.get(w.gateway) else {
                    self.life.reject(BindingReject::Invalid);
                    return Err(DropReason::NoGatewayKey);
                };
                let b = Binding {
                    initiator: src,
                    waypoint: dst,
                    gateway: gw.address,
                    responder: w.responder,
                    mode: w.mode,
                    pinned: false,
                };
                match self.add_binding(&b, now_ns) {
                    Ok(()) => {
                        counters.events.bindings_claimed.inc();
                        self.notify(Notice::binding_claimed(&b));
                        Ok(true)
                    }
                    Err(_) => Err(DropReason::FlowTableFull),
                }
            }
            (None, None) => {
                // §6.2: a source without state outside a wait state (its packet gets
                // NoBinding's host unreachable).
                if self.delayed.reject_unknown_ns > 0 {
                    let until = now_ns.saturating_add(self.delayed.reject_unknown_ns);
                    if self.rejects.get(&unknown, now_ns).is_none() {
                        self.reject(unknown, until, now_ns, true);
                    }
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// [`Waypoint::try_add_binding`], counting a refusal in the lifecycle counts.
    fn add_binding(&mut self, b: &Binding, now_ns: u64) -> Result<(), CommandError> {
        let r = self.try_add_binding(b, now_ns);
        if let Err(e) = r {
            self.life.reject(match e {
                CommandError::Conflict => BindingReject::Conflict,
                CommandError::TableFull => BindingReject::TableFull,
                _ => BindingReject::Invalid,
            });
        }
        r
    }

    fn try_add_binding(&mut self, b: &Binding, now_ns: u64) -> Result<(), CommandError> {
        if !self.router.is_pool(b.waypoint) {
            return Err(CommandError::Invalid);
        }
        let gateway = self
            .gateways
            .iter()
            .position(|g| g.address == b.gateway)
            .ok_or(CommandError::Invalid)?;
        let key = pair(b.initiator, b.waypoint);
        if !self.rejects.is_empty() {
            // An explicit binding for the initiator lifts its rejections.
            self.rejects.remove(&key);
            self.rejects
                .remove(&pair(b.initiator, Ipv4Addr::UNSPECIFIED));
        }
        if self.bindings.get(&key, now_ns).is_some_and(|c| c.closing) {
            // A closed binding is gone as far as new bindings are concerned.
            if self.bindings.remove(&key).is_some() {
                self.life.expired += 1;
            }
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
        let (_, displaced) = self
            .bindings
            .insert_displacing(key, state, exp, now_ns)
            .map_err(|_| CommandError::TableFull)?;
        // What an insert displaces has expired (a live entry of `key` was handled above).
        if displaced.is_some() {
            self.life.expired += 1;
        }
        self.life.installed += 1;
        Ok(())
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
        p: &Inbound,
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
        // One hash and probe for the binding: `slot` names it for the updates below
        // (only a claim in `admit` changes `bindings` before them; it looks again).
        let mut slot = self.bindings.slot_of(&bkey, now_ns);
        if new_connection {
            let bound = slot
                .and_then(|s| self.bindings.at(s, &bkey))
                .filter(|b| !b.closing)
                .map(|b| (b.gateway, b.responder));
            let admitted = self.admit(p.src, p.dst, bound, now_ns, counters);
            if admitted == Ok(true) {
                slot = self.bindings.slot_of(&bkey, now_ns);
            }
            if let Err(reason) = admitted {
                let v = self.router.icmp_error(
                    &mut buf,
                    in_port,
                    now_ns,
                    counters,
                    IcmpError {
                        msg_type: icmpv4::msg::DST_UNREACHABLE,
                        code: icmpv4::unreach::HOST,
                        mtu: 0,
                        reason,
                    },
                );
                return deliver(buf, v, io);
            }
        }
        let live = slot
            .and_then(|s| self.bindings.at(s, &bkey))
            .copied()
            .filter(|b| !(b.closing && new_connection));
        let (Some(b), Some(slot)) = (live, slot) else {
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
                    if let Some(mut e) = self.bindings.at_mut(slot, &bkey) {
                        let bs = e.value();
                        bs.open_tcp = bs.open_tcp.saturating_add(1);
                    }
                    tcp_state = Some(st);
                } else {
                    // Not a drop: the packet goes on, untracked (its binding's timer
                    // still ends it).
                    counters.events.connections_untracked.inc();
                }
            }
            if closed {
                self.connections.remove(&k);
                if let Some(mut e) = self.bindings.at_mut(slot, &bkey) {
                    let bs = e.value();
                    bs.open_tcp = bs.open_tcp.saturating_sub(1);
                    remove_binding = bs.open_tcp == 0 && !http && !bs.pinned;
                }
            } else if let Some(st) = tcp_state {
                let exp = now_ns.saturating_add(self.timeouts.for_packet(&k, Some(st)));
                self.connections.touch(&k, exp, now_ns);
            }
        }
        let want = (!b.pinned).then(|| {
            let t = match p.key {
                Some(k) => self.timeouts.for_packet(&k, tcp_state),
                None => self.timeouts.other,
            };
            now_ns.saturating_add(t)
        });
        // One lookup for the flags and the timer (this runs for every packet).
        if let Some(mut e) = self.bindings.at_mut(slot, &bkey) {
            let bs = e.value();
            bs.http = http;
            bs.used = true;
            // The first packet sets the protocol's timeout (an ICMP-only binding
            // lives 1 min, not the 15 min a fresh binding waits); later ones extend it.
            if let Some(want) = want {
                if want > e.expires_ns() || !b.used {
                    e.set_expires(want);
                }
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
        if let Err(r) =
            tunnel::encapsulate_untagged_with(&mut buf, &outer, key.id(), &mut self.source_ports)
        {
            return io.drop_packet(buf, r);
        }
        if remove_binding {
            if let Some(mut e) = self.bindings.at_mut(slot, &bkey) {
                e.value().closing = true;
                e.set_expires(now_ns.saturating_add(CLOSING_GRACE_NS));
            }
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
        let mut tagged = [false; MAX_BATCH];
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
                tagged[idx[j]] = true;
            }
        }
        for (i, q) in self.batch.drain(..).enumerate() {
            let Queued {
                mut buf,
                port,
                next_hop,
                ..
            } = q;
            // Never send a packet without its tag (a gateway without a signing key).
            if i >= n || !tagged[i] {
                io.drop_packet(buf, DropReason::NoGatewayKey);
                continue;
            }
            if !tunnel::set_tag(buf.data_mut(), &tags[i]) {
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
            if let Some(ref p) = Self::inspect(buf.data()) {
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
                responder,
            } => {
                let key = pair(*initiator, *waypoint);
                let bound = self.bindings.get(&key, now_ns).map(|b| b.responder);
                if bound.is_none() || responder.is_some_and(|r| Some(r) != bound) {
                    return Err(CommandError::NotFound);
                }
                self.bindings.remove(&key).ok_or(CommandError::NotFound)?;
                self.life.deleted += 1;
                Ok(())
            }
            Command::BeginWait(w) => self.begin_wait(w, now_ns),
            Command::RejectSource {
                source,
                waypoint,
                duration_ns,
            } => {
                let until = now_ns.saturating_add(*duration_ns);
                self.reject(pair(*source, *waypoint), until, now_ns, false);
                Ok(())
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
        self.router
            .pop_learned()
            .or_else(|| self.notices.iter_mut().find_map(Option::take))
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
        self.life.expired += self.bindings.expire(now_ns, 64) as u64;
        self.waits.expire(now_ns, 16);
        self.rejects.expire(now_ns, 64);
    }

    fn report(&self, counters: &CoreCounters) {
        self.router.report(counters);
        counters.set_table(Table::Bindings, self.bindings.len());
        counters.set_table(Table::Connections, self.connections.len());
        counters.set_table(Table::Waits, self.waits.len());
        counters.set_table(Table::Rejects, self.rejects.len());
        counters.bindings.set(&self.life);
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
