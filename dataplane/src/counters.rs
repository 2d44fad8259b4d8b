//! Per-core counters.
//!
//! Each lcore owns one [`CoreCounters`]; only that lcore writes it. The control thread
//! reads every core's counters and sums them on scrape or shutdown.
//!
//! A [`Counter`] is an `AtomicU64` written with a relaxed load and a relaxed store
//! (never a read-modify-write), which compiles to a plain `add` to memory on x86-64 and
//! AArch64: no `lock` prefix, no fence. It is atomic only so that the reader on another
//! thread is not a data race in Rust's memory model. See
//! `docs/decisions/0002-per-core-counters.md`.
//!
//! Drop reasons are one enum ([`DropReason`]) that is at once the counter index and the
//! metric label, as in VPP's NAT44-ED.

use std::sync::atomic::{AtomicU64, Ordering};

/// Highest number of DPDK ports one engine drives.
pub const MAX_PORTS: usize = 8;

/// A single-writer counter. Only the owning lcore calls [`Counter::add`].
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Single writer only: two writers would lose updates.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }
    /// Adds one.
    #[inline(always)]
    pub fn inc(&self) {
        self.add(1);
    }
    /// The current value (any thread).
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A single-writer gauge: the owning lcore [`Gauge::set`]s it (a relaxed store, no
/// read-modify-write), any thread reads it.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Sets the value. Single writer only.
    #[inline(always)]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// The current value (any thread).
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A bounded table of an lcore whose occupancy the lcore reports (in
/// [`CoreCounters::tables`], indexed by `Table as usize`). [`Table::name`] is the
/// metric label, the same as the capacity's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Table {
    /// Routes.
    Routes = 0,
    /// Neighbour (ARP) entries.
    Neighbours,
    /// Packets waiting for ARP.
    Pending,
    /// Waypoint bindings.
    Bindings,
    /// Waypoint TCP connections.
    Connections,
    /// Waypoint addresses in a wait state (delayed binding).
    Waits,
    /// Rejected sources (delayed binding).
    Rejects,
    /// Gateway flow entries (connections, NAT44 sessions and mappings).
    Flows,
    /// Gateway reassembly contexts.
    ReassemblyContexts,
    /// Bytes held by the gateway's reassembly.
    ReassemblyBytes,
    /// NAT ports in use (multi-homing and NAT44 mappings) of the lcore's share.
    NatPorts,
}

impl Table {
    /// Number of tables.
    pub const COUNT: usize = Table::ALL.len();
    /// Every table, in discriminant order.
    pub const ALL: [Table; 11] = [
        Table::Routes,
        Table::Neighbours,
        Table::Pending,
        Table::Bindings,
        Table::Connections,
        Table::Waits,
        Table::Rejects,
        Table::Flows,
        Table::ReassemblyContexts,
        Table::ReassemblyBytes,
        Table::NatPorts,
    ];
    /// The metric label.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Routes => "routes",
            Table::Neighbours => "neighbours",
            Table::Pending => "pending",
            Table::Bindings => "bindings",
            Table::Connections => "connections",
            Table::Waits => "waits",
            Table::Rejects => "rejects",
            Table::Flows => "flows",
            Table::ReassemblyContexts => "reassembly_contexts",
            Table::ReassemblyBytes => "reassembly_bytes",
            Table::NatPorts => "nat_ports",
        }
    }
}

/// Why a waypoint binding was not made: an `AddBinding` refused, or a new connection
/// in a wait state that could not claim one. Index of
/// [`BindingCounters::rejected`]; [`BindingReject::name`] is the metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BindingReject {
    /// The pair is bound to another responder (AVES §3.3.1).
    Conflict = 0,
    /// The binding table is full.
    TableFull,
    /// Not a waypoint address of this waypoint, or a gateway it holds no key for.
    Invalid,
    /// A claim by a source bound at that address to another responder (Figure 6).
    WaitViolation,
    /// A claim by a rejected source (a violator, or a source without state, §6.2).
    SourceRejected,
}

impl BindingReject {
    /// Number of reasons.
    pub const COUNT: usize = BindingReject::ALL.len();
    /// Every reason, in discriminant order.
    pub const ALL: [BindingReject; 5] = [
        BindingReject::Conflict,
        BindingReject::TableFull,
        BindingReject::Invalid,
        BindingReject::WaitViolation,
        BindingReject::SourceRejected,
    ];
    /// The metric label.
    pub const fn name(self) -> &'static str {
        match self {
            BindingReject::Conflict => "conflict",
            BindingReject::TableFull => "table_full",
            BindingReject::Invalid => "invalid",
            BindingReject::WaitViolation => "wait_violation",
            BindingReject::SourceRejected => "source_rejected",
        }
    }
}

/// The life of the bindings in one lcore's binding table (each lcore has its own copy:
/// an `AddBinding` is applied on every lcore, a claim reaches the others as one).
/// Cumulative counts the waypoint keeps in its own state (commands reach it without
/// the counters) and mirrors here in [`crate::pipeline::Role::report`], about every
/// millisecond: the values only grow.
#[derive(Debug, Default)]
pub struct BindingCounters {
    /// New entries in the table (an `AddBinding` for a free pair, or a claim).
    pub installed: Gauge,
    /// Entries whose timer ran out (including the grace after the last TCP connection
    /// closed), removed by the sweep or reused.
    pub expired: Gauge,
    /// Entries removed by `DelBinding`.
    pub deleted: Gauge,
    /// Bindings not made, by [`BindingReject`].
    pub rejected: [Gauge; BindingReject::COUNT],
}

/// The plain counts behind [`BindingCounters`], kept by the role.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BindingLife {
    /// See [`BindingCounters::installed`].
    pub installed: u64,
    /// See [`BindingCounters::expired`].
    pub expired: u64,
    /// See [`BindingCounters::deleted`].
    pub deleted: u64,
    /// See [`BindingCounters::rejected`].
    pub rejected: [u64; BindingReject::COUNT],
}

impl BindingLife {
    /// Counts one rejection.
    pub fn reject(&mut self, reason: BindingReject) {
        if let Some(c) = self.rejected.get_mut(reason as usize) {
            *c += 1;
        }
    }
}

impl BindingCounters {
    /// Mirrors `life` (single writer: the owning lcore).
    pub fn set(&self, life: &BindingLife) {
        self.installed.set(life.installed);
        self.expired.set(life.expired);
        self.deleted.set(life.deleted);
        for (g, v) in self.rejected.iter().zip(life.rejected) {
            g.set(v);
        }
    }
    /// The counts last mirrored.
    pub fn get(&self) -> BindingLife {
        let mut rejected = [0; BindingReject::COUNT];
        for (r, g) in rejected.iter_mut().zip(&self.rejected) {
            *r = g.get();
        }
        BindingLife {
            installed: self.installed.get(),
            expired: self.expired.get(),
            deleted: self.deleted.get(),
            rejected,
        }
    }
}

/// Why a packet was dropped. The discriminant is the counter index; [`DropReason::name`]
/// is the metric label. Add new reasons at the end and to [`DropReason::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Frame too short for an Ethernet header, or an inner header it claims.
    Truncated = 0,
    /// Ethernet type the role does not handle.
    UnsupportedEtherType,
    /// Destination MAC is neither ours nor broadcast/multicast we accept.
    NotForUs,
    /// Malformed ARP packet (wrong hardware/protocol type or lengths).
    ArpMalformed,
    /// ARP request for an address we do not own, or an ARP reply we did not need.
    ArpIgnored,
    /// IPv4 header invalid: version, IHL, total length.
    Ipv4Malformed,
    /// IPv4 header checksum wrong.
    Ipv4Checksum,
    /// Source address is not a valid unicast host (multicast, broadcast, 0/8, loopback).
    Ipv4BadSource,
    /// TTL reached zero (an ICMP time-exceeded was sent when allowed).
    TtlExceeded,
    /// No route to the destination (an ICMP unreachable was sent when allowed).
    NoRoute,
    /// Addressed to us, but not something we answer (only ICMP echo is).
    LocalUnhandled,
    /// ICMP to us that is malformed or has a bad checksum.
    IcmpMalformed,
    /// Packet exceeds the egress MTU with DF set (ICMP frag-needed sent when allowed).
    MtuExceeded,
    /// Next hop not resolved and the wait queue is full.
    NeighbourQueueFull,
    /// Next hop did not answer ARP in time; the waiting packet is dropped.
    NeighbourTimeout,
    /// Output port has no room (TX ring full): the NIC refused the packet.
    TxFull,
    /// No mbuf could be allocated for a packet the engine had to create.
    NoMbuf,
    /// An ICMP error was due but could not be built (no headroom in the buffer). (Errors
    /// that RFC 1812 §4.3.2.7 forbids or the rate limit holds back are not drops: they
    /// count in `EventCounters::icmp_suppressed`.)
    IcmpErrorSuppressed,
    /// Egress port index outside the configured ports.
    BadPort,
    /// A multi-segment mbuf (a frame larger than one mbuf; ports run without scatter).
    Segmented,
    /// AVES tunnel packet whose tag does not verify (tampered, or signed with another
    /// secret under the same key id).
    AuthBadTag,
    /// AVES tunnel packet signed with a key id the keyring does not hold.
    AuthUnknownKey,
    /// AVES tunnel packet with a bad outer structure: outer fragment, UDP length not
    /// the IP payload length, a wrong non-zero UDP checksum, an AVES header too short or
    /// of another version, or reserved bits set.
    TunnelMalformed,
    /// Authenticated AVES tunnel packet whose inner datagram is not a valid IPv4 packet
    /// (header, lengths or header checksum).
    TunnelInnerMalformed,
    /// Tunnel outer header marked CE (congestion experienced) over an inner packet that
    /// is not ECN-capable: RFC 6040 §4.2 says drop.
    TunnelCeNotEct,
    /// The inner datagram is too large to encapsulate (the outer total length would
    /// exceed 65535).
    TunnelOversize,
    /// The buffer has too little headroom for the headers to prepend.
    NoHeadroom,
    /// A packet to a waypoint address from an initiator with no binding (a new connection is answered with ICMP host unreachable, AVES §3.3.2).
    NoBinding,
    /// A new flow or connection entry was needed but the table is at its capacity (existing entries keep working).
    FlowTableFull,
    /// A binding names a gateway this waypoint holds no key for.
    NoGatewayKey,
    /// A datagram had to be fragmented but could not be (no buffers, malformed, MTU too small).
    FragmentFailed,
    /// An outer fragment was dropped by reassembly (overlap, too many, too big, tiny, timeout, table or memory full); details in the reassembly counters.
    Reassembly,
    /// Inbound packet to the gateway's public address that matches no connection or NAT mapping (address-and-port-dependent filtering, RFC 4787).
    NatNoMapping,
    /// No free port for a new multi-homing or NAT44 mapping.
    NatPortsExhausted,
    /// An authentic tunnel packet whose inner destination is not on the gateway's
    /// private side (a tunnel is not a way to reach anything else).
    TunnelForeignDestination,
    /// A packet for a flow another lcore owns could not be handed to it (ring full).
    HandoffFailed,
    /// A new connection to a waypoint address from a source it rejects: a violator of
    /// a wait state, for Treject after the wait (AVES §3.3.2, Figure 6), or a source
    /// that opened a connection without state outside a wait state, for 3 hours (§6.2).
    /// Answered with ICMP host unreachable.
    SourceRejected,
    /// A new connection during a wait state from an initiator bound at that waypoint
    /// address to another responder (Figure 6's violators): rejected with ICMP host
    /// unreachable and recorded.
    WaitViolation,
}

impl DropReason {
    /// Number of reasons: the length of a counter array indexed by reason.
    pub const COUNT: usize = DropReason::ALL.len();

    /// Every reason, in discriminant order.
    pub const ALL: [DropReason; 38] = [
        DropReason::Truncated,
        DropReason::UnsupportedEtherType,
        DropReason::NotForUs,
        DropReason::ArpMalformed,
        DropReason::ArpIgnored,
        DropReason::Ipv4Malformed,
        DropReason::Ipv4Checksum,
        DropReason::Ipv4BadSource,
        DropReason::TtlExceeded,
        DropReason::NoRoute,
        DropReason::LocalUnhandled,
        DropReason::IcmpMalformed,
        DropReason::MtuExceeded,
        DropReason::NeighbourQueueFull,
        DropReason::NeighbourTimeout,
        DropReason::TxFull,
        DropReason::NoMbuf,
        DropReason::IcmpErrorSuppressed,
        DropReason::BadPort,
        DropReason::Segmented,
        DropReason::AuthBadTag,
        DropReason::AuthUnknownKey,
        DropReason::TunnelMalformed,
        DropReason::TunnelInnerMalformed,
        DropReason::TunnelCeNotEct,
        DropReason::TunnelOversize,
        DropReason::NoHeadroom,
        DropReason::NoBinding,
        DropReason::FlowTableFull,
        DropReason::NoGatewayKey,
        DropReason::FragmentFailed,
        DropReason::Reassembly,
        DropReason::NatNoMapping,
        DropReason::NatPortsExhausted,
        DropReason::TunnelForeignDestination,
        DropReason::HandoffFailed,
        DropReason::SourceRejected,
        DropReason::WaitViolation,
    ];

    /// The metric label: lower snake case, stable.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::UnsupportedEtherType => "unsupported_ethertype",
            DropReason::NotForUs => "not_for_us",
            DropReason::ArpMalformed => "arp_malformed",
            DropReason::ArpIgnored => "arp_ignored",
            DropReason::Ipv4Malformed => "ipv4_malformed",
            DropReason::Ipv4Checksum => "ipv4_checksum",
            DropReason::Ipv4BadSource => "ipv4_bad_source",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::NoRoute => "no_route",
            DropReason::LocalUnhandled => "local_unhandled",
            DropReason::IcmpMalformed => "icmp_malformed",
            DropReason::MtuExceeded => "mtu_exceeded",
            DropReason::NeighbourQueueFull => "neighbour_queue_full",
            DropReason::NeighbourTimeout => "neighbour_timeout",
            DropReason::TxFull => "tx_full",
            DropReason::NoMbuf => "no_mbuf",
            DropReason::IcmpErrorSuppressed => "icmp_error_suppressed",
            DropReason::BadPort => "bad_port",
            DropReason::Segmented => "segmented",
            DropReason::AuthBadTag => "auth_bad_tag",
            DropReason::AuthUnknownKey => "auth_unknown_key",
            DropReason::TunnelMalformed => "tunnel_malformed",
            DropReason::TunnelInnerMalformed => "tunnel_inner_malformed",
            DropReason::TunnelCeNotEct => "tunnel_ce_not_ect",
            DropReason::TunnelOversize => "tunnel_oversize",
            DropReason::NoHeadroom => "no_headroom",
            DropReason::NoBinding => "no_binding",
            DropReason::FlowTableFull => "flow_table_full",
            DropReason::NoGatewayKey => "no_gateway_key",
            DropReason::FragmentFailed => "fragment_failed",
            DropReason::Reassembly => "reassembly",
            DropReason::NatNoMapping => "nat_no_mapping",
            DropReason::NatPortsExhausted => "nat_ports_exhausted",
            DropReason::TunnelForeignDestination => "tunnel_foreign_destination",
            DropReason::HandoffFailed => "handoff_failed",
            DropReason::SourceRejected => "source_rejected",
            DropReason::WaitViolation => "wait_violation",
        }
    }
}

/// Per-port packet and byte counters of one core.
#[derive(Debug, Default)]
pub struct PortCounters {
    /// Packets received.
    pub rx_packets: Counter,
    /// Bytes received (frame length without FCS).
    pub rx_bytes: Counter,
    /// Packets handed to the NIC and accepted by it.
    pub tx_packets: Counter,
    /// Bytes handed to the NIC and accepted by it.
    pub tx_bytes: Counter,
}

/// Events that are not drops but worth counting.
#[derive(Debug, Default)]
pub struct EventCounters {
    /// ICMP messages the engine generated (echo replies and errors).
    pub icmp_sent: Counter,
    /// Fragments made (waypoint: outer datagrams over the egress MTU).
    pub fragments_made: Counter,
    /// Datagrams reassembled from fragments (gateway).
    pub datagrams_reassembled: Counter,
    /// Packets handed to the lcore that owns their flow (gateway, decision 0006).
    pub handed_off: Counter,
    /// ICMP errors not sent: RFC 1812 §4.3.2.7 forbids them, or the rate limit hit.
    pub icmp_suppressed: Counter,
    /// ARP replies sent for owned addresses.
    pub arp_replies_sent: Counter,
    /// ARP requests sent to resolve next hops.
    pub arp_requests_sent: Counter,
    /// Neighbour entries learned from ARP.
    pub neighbours_learned: Counter,
    /// Control commands applied on this core.
    pub commands_applied: Counter,
    /// Poll iterations that received at least one packet.
    pub busy_polls: Counter,
    /// Poll iterations that received nothing.
    pub idle_polls: Counter,
    /// TSC cycles spent in poll iterations that received something, from the start
    /// of the iteration to the end of its work (the lcore's busy time: divided by the
    /// TSC rate it is the share of the core the traffic takes).
    pub busy_cycles: Counter,
    /// Waypoint bindings claimed by a new connection in a wait state (delayed binding).
    pub bindings_claimed: Counter,
    /// Waypoint: new TCP connections not tracked because the connection table was
    /// full. Not a drop: the packet goes through on its binding; what is lost is close
    /// detection (the binding then lives by its timer).
    pub connections_untracked: Counter,
}

/// All counters of one lcore.
#[derive(Debug)]
pub struct CoreCounters {
    /// Per-port counters, indexed by DPDK port id.
    pub ports: [PortCounters; MAX_PORTS],
    /// Drops, indexed by `DropReason as usize`.
    pub drops: [Counter; DropReason::COUNT],
    /// Other events.
    pub events: EventCounters,
    /// Entries in use per table, indexed by `Table as usize`; the lcore sets them
    /// about every millisecond (tables its role does not have stay 0).
    pub tables: [Gauge; Table::COUNT],
    /// Waypoint binding lifecycle.
    pub bindings: BindingCounters,
}

impl Default for CoreCounters {
    fn default() -> Self {
        CoreCounters {
            ports: Default::default(),
            drops: std::array::from_fn(|_| Counter::default()),
            events: EventCounters::default(),
            tables: std::array::from_fn(|_| Gauge::default()),
            bindings: BindingCounters::default(),
        }
    }
}

impl CoreCounters {
    /// Counts one drop.
    #[inline(always)]
    pub fn count_drop(&self, reason: DropReason) {
        self.drops[reason as usize].inc();
    }
    /// Sets the occupancy of `table`.
    #[inline(always)]
    pub fn set_table(&self, table: Table, used: usize) {
        self.tables[table as usize].set(used as u64);
    }
    /// The occupancy of `table` the lcore last reported.
    pub fn table(&self, table: Table) -> u64 {
        self.tables[table as usize].get()
    }
    /// The count for one drop reason.
    pub fn drops_of(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].get()
    }
    /// Counts a received frame on `port` (ignored for ports beyond [`MAX_PORTS`]).
    #[inline(always)]
    pub fn rx(&self, port: u16, bytes: usize) {
        if let Some(p) = self.ports.get(port as usize) {
            p.rx_packets.inc();
            p.rx_bytes.add(bytes as u64);
        }
    }
    /// Counts a transmitted frame on `port` (ignored for ports beyond [`MAX_PORTS`]).
    #[inline(always)]
    pub fn tx(&self, port: u16, bytes: usize) {
        if let Some(p) = self.ports.get(port as usize) {
            p.tx_packets.inc();
            p.tx_bytes.add(bytes as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_reason_in_index_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?} out of order");
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT, "duplicate label");
        for (i, t) in Table::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i, "{t:?} out of order");
        }
        for (i, r) in BindingReject::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?} out of order");
        }
    }

    #[test]
    fn gauges_set_and_binding_rejections_count() {
        let c = CoreCounters::default();
        c.set_table(Table::Bindings, 7);
        c.set_table(Table::Bindings, 5);
        assert_eq!(c.table(Table::Bindings), 5);
        assert_eq!(c.table(Table::Flows), 0);
        let mut life = BindingLife {
            installed: 3,
            ..BindingLife::default()
        };
        life.reject(BindingReject::Conflict);
        life.reject(BindingReject::Conflict);
        c.bindings.set(&life);
        assert_eq!(
            c.bindings.rejected[BindingReject::Conflict as usize].get(),
            2
        );
        assert_eq!(c.bindings.get(), life);
    }

    #[test]
    fn counters_add_and_ignore_out_of_range_ports() {
        let c = CoreCounters::default();
        c.rx(0, 60);
        c.rx(0, 40);
        c.tx(1, 10);
        c.rx(200, 1);
        c.count_drop(DropReason::NoRoute);
        assert_eq!(c.ports[0].rx_packets.get(), 2);
        assert_eq!(c.ports[0].rx_bytes.get(), 100);
        assert_eq!(c.ports[1].tx_bytes.get(), 10);
        assert_eq!(c.drops_of(DropReason::NoRoute), 1);
    }
}
