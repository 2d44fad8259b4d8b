//! Flow keys, protocol idle timeouts, TCP close tracking and a fixed-capacity flow table.
//!
//! These are the building blocks of a translation table (AVES §3.2, §5.2, §5.3; NAT44 per
//! RFC 4787, RFC 5382, RFC 5508):
//!
//! - [`FlowKey`] names a flow by protocol, addresses and ports (the ICMP query identifier
//!   stands in for the ports); [`flow_key`] reads one from an IPv4 datagram and
//!   [`icmp_error_key`] from the datagram an ICMP error quotes.
//! - [`Timeouts`] says how long an idle entry lives: [`Timeouts::aves`] is the paper's
//!   policy (§5.2), [`Timeouts::nat44`] the RFC defaults.
//! - [`TcpState`] follows a TCP connection's flags far enough to tell opening, established,
//!   closing and closed apart (§5.2 removes an entry once its connection has closed).
//! - [`FlowTable`] maps keys to values with an expiry each.
//!
//! Invariants of [`FlowTable`]: it allocates only in [`FlowTable::new`]; the slot array
//! is a power of two at least twice the capacity, so it is at most half full, there is
//! always an empty slot, and every probe ends. It uses linear probing with
//! backward-shift deletion (Knuth, TAOCP vol. 3 §6.4, Algorithm R), as the neighbour
//! table does, so there are no tombstones and a miss stops at the first empty slot.
//! An entry is *live* while `now < expires_ns`; an expired entry is invisible to lookups
//! and stays in its slot only until [`FlowTable::expire`] sweeps it or an insert reuses
//! its slot. `earliest_expiry` is always a lower bound of every stored expiry. Time is
//! nanoseconds on a monotonic clock chosen by the caller; nothing here reads a clock.

use crate::wire::icmpv4::msg;
use crate::wire::ipv4::{self, protocol};
use crate::wire::tcp::flags;
use std::fmt;
use std::net::Ipv4Addr;

/// Nanoseconds in a second.
pub const SECOND_NS: u64 = 1_000_000_000;
/// Nanoseconds in a minute.
pub const MINUTE_NS: u64 = 60 * SECOND_NS;

/// The well-known HTTP port, for the AVES §5.2 exception.
pub const HTTP_PORT: u16 = 80;

/// A flow's identity: one direction of a conversation.
///
/// For TCP and UDP the ports are the transport ports. For ICMP query messages (echo,
/// timestamp, information, address mask) the identifier is in `sport` and `dport` is 0,
/// since RFC 5508 §3.1 treats the identifier as the query's "port" and it is the same in
/// both directions. Every other protocol, and every other ICMP message, has both 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// IP protocol number ([`crate::wire::ipv4::protocol`]).
    pub proto: u8,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port, or the ICMP query identifier.
    pub sport: u16,
    /// Destination port (0 for ICMP).
    pub dport: u16,
}

impl FlowKey {
    /// The key of the opposite direction: addresses swapped and, except for ICMP, ports
    /// swapped. An ICMP query's identifier stays in `sport`, so the key [`flow_key`] reads
    /// from an echo reply is the reverse of the request's.
    pub fn reversed(&self) -> FlowKey {
        let (sport, dport) = if self.proto == protocol::ICMP {
            (self.sport, self.dport)
        } else {
            (self.dport, self.sport)
        };
        FlowKey {
            proto: self.proto,
            src: self.dst,
            dst: self.src,
            sport,
            dport,
        }
    }

    /// True when either port is 80 on TCP: the flows AVES §5.2 times out without FIN
    /// tracking.
    pub fn is_http(&self) -> bool {
        self.proto == protocol::TCP && (self.sport == HTTP_PORT || self.dport == HTTP_PORT)
    }

    /// The key hashed with `seed`: splitmix64's finaliser (a bijection) of each address
    /// and of protocol and ports, independently, xored. For the other fields fixed the
    /// hash is a bijection of any one of the three, so keys that differ in only the
    /// source, only the destination, or only protocol and ports never collide in 64
    /// bits. The three are independent so the CPU computes them in parallel (this is on
    /// every packet's path; a chained second round was a visible share of a lookup), and
    /// each address is its own 4-byte load (keys are often built on the stack by two
    /// 4-byte stores, which one 8-byte load could not forward from). Not cryptographic:
    /// the seed only makes the slot of a key, and so collision flooding, hard to aim
    /// from outside.
    #[inline]
    fn hash(&self, seed: u64) -> u64 {
        let rest =
            (u64::from(self.proto) << 32) | (u64::from(self.sport) << 16) | u64::from(self.dport);
        mix(u64::from(u32::from(self.src)) ^ seed)
            ^ mix(u64::from(u32::from(self.dst)) ^ seed.rotate_left(21))
            ^ mix(rest ^ seed.rotate_left(42))
    }
}

/// splitmix64's finaliser: every input bit moves every output bit.
#[inline]
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// ICMP query types besides echo (RFC 792, RFC 950), which also carry an identifier.
mod query {
    pub const TIMESTAMP: u8 = 13;
    pub const TIMESTAMP_REPLY: u8 = 14;
    pub const INFO_REQUEST: u8 = 15;
    pub const INFO_REPLY: u8 = 16;
    pub const ADDRESS_MASK: u8 = 17;
    pub const ADDRESS_MASK_REPLY: u8 = 18;
}

/// True for the ICMP query types that carry an identifier at bytes 4..6 (RFC 792,
/// RFC 950): echo, timestamp, information and address mask, requests and replies.
fn is_icmp_query(kind: u8) -> bool {
    matches!(
        kind,
        msg::ECHO_REPLY
            | msg::ECHO_REQUEST
            | query::TIMESTAMP
            | query::TIMESTAMP_REPLY
            | query::INFO_REQUEST
            | query::INFO_REPLY
            | query::ADDRESS_MASK
            | query::ADDRESS_MASK_REPLY
    )
}

/// Big-endian u16 at `at`, if the bytes are there.
fn be16(d: &[u8], at: usize) -> Option<u16> {
    let b = d.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// The ports of a transport header that starts `l4` (see [`FlowKey`]); `None` when the
/// header is too short to hold them.
fn ports(proto: u8, l4: &[u8]) -> Option<(u16, u16)> {
    match proto {
        protocol::TCP | protocol::UDP => Some((be16(l4, 0)?, be16(l4, 2)?)),
        protocol::ICMP => {
            let kind = *l4.first()?;
            if is_icmp_query(kind) {
                Some((be16(l4, 4)?, 0))
            } else {
                // Errors and unknown messages: no ports; `icmp_error_key` finds the flow.
                l4.get(1)?;
                Some((0, 0))
            }
        }
        _ => Some((0, 0)),
    }
}

/// The key of the IPv4 datagram in `ip` (starting at the IPv4 header).
///
/// `None` when the header does not pass [`ipv4::Packet::new_checked`], when the transport
/// header is too short to hold the ports (TCP and UDP need 4 bytes, an ICMP query 6,
/// any other ICMP message 2), and for a non-first fragment of TCP, UDP or ICMP: such a
/// fragment has no ports, and any key made up for it would name some other flow. AVES
/// gateways reassemble before translating (§5.2). A non-first fragment of any other
/// protocol gets its key (ports 0) since it needs none. The header checksum is not
/// checked here.
pub fn flow_key(ip: &[u8]) -> Option<FlowKey> {
    let p = ipv4::Packet::new_checked(ip).ok()?;
    let proto = p.protocol();
    let (sport, dport) = if p.frag_offset() != 0 {
        match proto {
            protocol::TCP | protocol::UDP | protocol::ICMP => return None,
            _ => (0, 0),
        }
    } else {
        ports(proto, p.payload())?
    };
    Some(FlowKey {
        proto,
        src: p.src(),
        dst: p.dst(),
        sport,
        dport,
    })
}

/// For an ICMP error (destination unreachable, source quench, redirect, time exceeded,
/// parameter problem) in the IPv4 datagram `ip`: the key of the datagram it quotes, as
/// that datagram was sent (its source is the host the error goes back to).
///
/// This is how RFC 5508 §4.1 matches an error to its mapping, and how the traceroute
/// replies of AVES §5.3 find their flow. The quoted datagram is usually truncated (header
/// and 8 bytes, RFC 792), so only its header and ports need be present; its total length
/// is not checked. `None` for anything else: not ICMP, not an error, a fragment, a quote
/// too short, or a quoted non-first fragment of TCP, UDP or ICMP.
pub fn icmp_error_key(ip: &[u8]) -> Option<FlowKey> {
    let p = ipv4::Packet::new_checked(ip).ok()?;
    if p.protocol() != protocol::ICMP || p.is_fragment() {
        return None;
    }
    let icmp = p.payload();
    match *icmp.first()? {
        msg::DST_UNREACHABLE
        | msg::SOURCE_QUENCH
        | msg::REDIRECT
        | msg::TIME_EXCEEDED
        | msg::PARAM_PROBLEM => {}
        _ => return None,
    }
    let quote = icmp.get(8..)?;
    // The quoted header: version 4, IHL within the quote. Only header fields are read.
    let ver_ihl = *quote.first()?;
    let hlen = usize::from(ver_ihl & 0x0f) * 4;
    if ver_ihl >> 4 != 4 || hlen < ipv4::MIN_HEADER_LEN || quote.len() < hlen {
        return None;
    }
    let inner = ipv4::Packet::new_unchecked(quote.get(..hlen)?);
    let proto = inner.protocol();
    let (sport, dport) = if inner.frag_offset() != 0 {
        match proto {
            protocol::TCP | protocol::UDP | protocol::ICMP => return None,
            _ => (0, 0),
        }
    } else {
        ports(proto, quote.get(hlen..)?)?
    };
    Some(FlowKey {
        proto,
        src: inner.src(),
        dst: inner.dst(),
        sport,
        dport,
    })
}

/// Idle timeouts per protocol, in nanoseconds. An entry's expiry is reset to
/// `now + for_packet(..)` by every packet of its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// ICMP (query) flows.
    pub icmp: u64,
    /// UDP flows.
    pub udp: u64,
    /// Established TCP connections (or untracked TCP flows).
    pub tcp: u64,
    /// TCP connections opening (SYN not yet seen both ways) or closing (a FIN seen).
    pub tcp_transitory: u64,
    /// TCP connections that closed (FINs both ways and acknowledged, or a RST). 0 makes
    /// the entry expire at once: AVES §5.2 removes it immediately.
    pub tcp_closed: u64,
    /// TCP flows with port 80 at either end, whatever their state, when `Some`: AVES
    /// §5.2 does not track FINs for HTTP, because browsers cache the DNS reply that
    /// named the waypoint for 15 minutes. `None`: port 80 is ordinary TCP.
    pub http: Option<u64>,
    /// Every other protocol (and a mix of protocols, AVES §5.2).
    pub other: u64,
    /// The extra ICMP entry installed in the reverse direction of an inbound UDP flow so
    /// that traceroute's ICMP replies get through (AVES §5.3); 0 means none is installed.
    pub traceroute: u64,
}

impl Timeouts {
    /// The AVES prototype's policy (§5.2, §5.3): ICMP 1 min, UDP 15 min, TCP 30 min,
    /// other 15 min, HTTP 20 min without FIN tracking, the traceroute reverse entry 5 s.
    /// The paper has no separate timeout for opening or closing TCP (so 30 min) and
    /// removes a closed connection's entry at once (0).
    pub const fn aves() -> Timeouts {
        Timeouts {
            icmp: MINUTE_NS,
            udp: 15 * MINUTE_NS,
            tcp: 30 * MINUTE_NS,
            tcp_transitory: 30 * MINUTE_NS,
            tcp_closed: 0,
            http: Some(20 * MINUTE_NS),
            other: 15 * MINUTE_NS,
            traceroute: 5 * SECOND_NS,
        }
    }

    /// Defaults for a NAT44 that follows the BEHAVE RFCs: UDP 5 min (RFC 4787 REQ-5: at
    /// least 2 min, 5 min recommended); established TCP 2 h 4 min and transitory TCP
    /// 4 min (RFC 5382 REQ-5); a closed connection also lingers 4 min, as after a RST
    /// (RFC 7857 §2.2), so a retransmitted FIN or last ACK still finds its mapping; ICMP
    /// queries 60 s (RFC 5508 REQ-1). No RFC covers other protocols: 5 min, like UDP.
    /// No HTTP exception and no traceroute entry (RFC 5508 §4 translates ICMP errors by
    /// the datagram they quote).
    pub const fn nat44() -> Timeouts {
        Timeouts {
            icmp: 60 * SECOND_NS,
            udp: 5 * MINUTE_NS,
            tcp: 124 * MINUTE_NS,
            tcp_transitory: 4 * MINUTE_NS,
            tcp_closed: 4 * MINUTE_NS,
            http: None,
            other: 5 * MINUTE_NS,
            traceroute: 0,
        }
    }

    /// The idle timeout after a packet of flow `key`; `tcp` is its connection's state
    /// after that packet, if tracked (`None` counts as established).
    pub fn for_packet(&self, key: &FlowKey, tcp: Option<TcpState>) -> u64 {
        match key.proto {
            protocol::ICMP => self.icmp,
            protocol::UDP => self.udp,
            protocol::TCP => {
                if let (Some(http), true) = (self.http, key.is_http()) {
                    return http;
                }
                match tcp.map(|s| s.phase()) {
                    None | Some(TcpPhase::Established) => self.tcp,
                    Some(TcpPhase::Opening | TcpPhase::Closing) => self.tcp_transitory,
                    Some(TcpPhase::Closed) => self.tcp_closed,
                }
            }
            _ => self.other,
        }
    }
}

/// Where a TCP connection is, as far as its flags tell (see [`TcpState`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpPhase {
    /// Not yet heard from both sides (a SYN without its SYN-ACK, RFC 5382 "partially open").
    Opening,
    /// Both sides have sent SYN or ACK segments, and no FIN or RST.
    Established,
    /// A FIN has been seen, but the close is not complete.
    Closing,
    /// FINs from both sides, each acknowledged by the other side; or a RST.
    Closed,
}

/// The close tracking of one TCP connection, from the flags of the segments seen in
/// both directions (a middlebox's view; RFC 9293 §3.3.2 for the states it mirrors).
///
/// "Initiator" is the side that opened the translation entry. A FIN counts as
/// acknowledged once a segment with ACK arrives from the other side after it. Without
/// sequence numbers this cannot tell a simultaneous close (both FINs cross; RFC 9293
/// §3.6 case 2) from an ordinary one where the second FIN also acknowledges the first,
/// so there the connection counts as closed one ACK early; the other side's final ACK
/// then meets a closed entry. A RST closes at once, in-window or not. A bare SYN from
/// the initiator after the close starts a new connection on the same key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpState {
    bits: u8,
}

/// The initiator sent a SYN or an ACK.
const SEEN_I: u8 = 1 << 0;
/// The responder sent a SYN or an ACK.
const SEEN_R: u8 = 1 << 1;
/// The initiator sent a FIN.
const FIN_I: u8 = 1 << 2;
/// The responder sent a FIN.
const FIN_R: u8 = 1 << 3;
/// The responder sent an ACK after the initiator's FIN.
const FIN_I_ACKED: u8 = 1 << 4;
/// The initiator sent an ACK after the responder's FIN.
const FIN_R_ACKED: u8 = 1 << 5;
/// Someone sent a RST.
const RST: u8 = 1 << 6;
/// Everything a completed FIN exchange sets.
const FINS_DONE: u8 = FIN_I | FIN_R | FIN_I_ACKED | FIN_R_ACKED;

impl TcpState {
    /// A connection nothing has been seen of.
    pub const fn new() -> TcpState {
        TcpState { bits: 0 }
    }

    /// Takes in a segment from the initiator (`from_initiator`) or the responder with
    /// TCP `flags` ([`crate::wire::tcp::flags`]).
    pub fn update(&mut self, from_initiator: bool, flags: u8) {
        if self.is_closed() {
            // A new SYN from the initiator reuses the key for a new connection.
            if from_initiator && flags & (flags::SYN | flags::ACK | flags::RST) == flags::SYN {
                *self = TcpState::new();
            } else {
                return;
            }
        }
        if flags & flags::RST != 0 {
            self.bits |= RST;
            return;
        }
        let (seen, fin, other_fin, other_fin_acked) = if from_initiator {
            (SEEN_I, FIN_I, FIN_R, FIN_R_ACKED)
        } else {
            (SEEN_R, FIN_R, FIN_I, FIN_I_ACKED)
        };
        if flags & (flags::SYN | flags::ACK) != 0 {
            self.bits |= seen;
        }
        // An ACK acknowledges the other side's FIN only if that FIN came first.
        if flags & flags::ACK != 0 && self.bits & other_fin != 0 {
            self.bits |= other_fin_acked;
        }
        if flags & flags::FIN != 0 {
            self.bits |= fin;
        }
    }

    /// Where the connection is.
    pub fn phase(&self) -> TcpPhase {
        if self.bits & RST != 0 || self.bits & FINS_DONE == FINS_DONE {
            TcpPhase::Closed
        } else if self.bits & (FIN_I | FIN_R) != 0 {
            TcpPhase::Closing
        } else if self.bits & (SEEN_I | SEEN_R) == SEEN_I | SEEN_R {
            TcpPhase::Established
        } else {
            TcpPhase::Opening
        }
    }

    /// True once both FINs were acknowledged, or after a RST.
    pub fn is_closed(&self) -> bool {
        self.phase() == TcpPhase::Closed
    }
}

/// [`FlowTable::insert`] found no room: the table holds `capacity` live entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFull;

impl fmt::Display for TableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("flow table full")
    }
}

impl std::error::Error for TableFull {}

/// The entry an insert pushed out of the table, if any: its key and value.
pub type Displaced<V> = Option<(FlowKey, V)>;

/// One stored flow.
#[derive(Debug)]
struct Slot<V> {
    key: FlowKey,
    expires_ns: u64,
    value: V,
}

/// A slot of a [`FlowTable`] ([`FlowTable::slot_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotId(usize);

/// A live entry of a [`FlowTable`] ([`FlowTable::entry_mut`]).
#[derive(Debug)]
pub struct EntryMut<'a, V> {
    slot: &'a mut Slot<V>,
    earliest_expiry: &'a mut u64,
}

impl<V> EntryMut<'_, V> {
    /// The entry's value.
    pub fn value(&mut self) -> &mut V {
        &mut self.slot.value
    }

    /// When the entry expires.
    pub fn expires_ns(&self) -> u64 {
        self.slot.expires_ns
    }

    /// Sets the expiry (as [`FlowTable::touch`] does: the table's lower bound of
    /// expiries follows).
    pub fn set_expires(&mut self, expires_ns: u64) {
        self.slot.expires_ns = expires_ns;
        *self.earliest_expiry = (*self.earliest_expiry).min(expires_ns);
    }
}

/// A fixed-capacity map from [`FlowKey`] to `V`, each entry live until its
/// `expires_ns` (see the module doc for the invariants).
#[derive(Debug)]
pub struct FlowTable<V> {
    slots: Vec<Option<Slot<V>>>,
    mask: usize,
    len: usize,
    capacity: usize,
    seed: u64,
    /// Where [`FlowTable::expire`] and the search for an expired entry resume.
    cursor: usize,
    /// A lower bound of every stored `expires_ns` (`u64::MAX` when none is known): while
    /// `now` is below it nothing has expired, so sweeps and full-table searches are
    /// skipped.
    earliest_expiry: u64,
}

impl<V> FlowTable<V> {
    /// A table for `capacity` flows, hashing keys with `seed` (pick it at random per
    /// process, so that the slot of a key cannot be predicted from outside).
    ///
    /// # Panics
    /// When `capacity` exceeds `usize::MAX / 4` (the allocation would fail anyway).
    pub fn new(capacity: usize, seed: u64) -> FlowTable<V> {
        let n = capacity
            .max(1)
            .checked_next_power_of_two()
            .and_then(|p| p.checked_mul(2))
            .expect("flow table capacity too large");
        FlowTable {
            slots: (0..n).map(|_| None).collect(),
            mask: n - 1,
            len: 0,
            capacity,
            seed,
            cursor: 0,
            earliest_expiry: u64::MAX,
        }
    }

    /// Most entries the table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries stored, including expired ones not yet swept or reused.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, key: &FlowKey) -> usize {
        (key.hash(self.seed) as usize) & self.mask
    }

    /// The slot holding `key`, live or expired.
    #[inline]
    fn find(&self, key: &FlowKey) -> Option<usize> {
        let mut i = self.home(key);
        for _ in 0..self.slots.len() {
            match self.slots.get(i)? {
                None => return None,
                Some(s) if s.key == *key => return Some(i),
                Some(_) => i = (i + 1) & self.mask,
            }
        }
        None
    }

    /// The live slot holding `key`.
    #[inline]
    fn find_live(&self, key: &FlowKey, now_ns: u64) -> Option<usize> {
        let i = self.find(key)?;
        match self.slots.get(i)? {
            Some(s) if now_ns < s.expires_ns => Some(i),
            _ => None,
        }
    }

    /// The value of `key`, unless absent or expired at `now_ns`.
    pub fn get(&self, key: &FlowKey, now_ns: u64) -> Option<&V> {
        let i = self.find_live(key, now_ns)?;
        self.slots.get(i)?.as_ref().map(|s| &s.value)
    }

    /// The value of `key` to change, unless absent or expired at `now_ns`.
    pub fn get_mut(&mut self, key: &FlowKey, now_ns: u64) -> Option<&mut V> {
        let i = self.find_live(key, now_ns)?;
        self.slots.get_mut(i)?.as_mut().map(|s| &mut s.value)
    }

    /// The live entry of `key`, to read and change its value and expiry with one lookup
    /// (where `get_mut`, `expires_at` and `touch` would each search for it).
    pub fn entry_mut(&mut self, key: &FlowKey, now_ns: u64) -> Option<EntryMut<'_, V>> {
        let i = self.find_live(key, now_ns)?;
        let earliest_expiry = &mut self.earliest_expiry;
        let slot = self.slots.get_mut(i)?.as_mut()?;
        Some(EntryMut {
            slot,
            earliest_expiry,
        })
    }

    /// Where the live entry of `key` is stored: a handle for [`FlowTable::at`] and
    /// [`FlowTable::at_mut`], so that a packet that reads an entry and later updates it
    /// hashes and probes once. A handle does not pin the entry: after an insert or
    /// removal it may name another key's slot, which `at`/`at_mut` detect (they compare
    /// the key) and answer `None`.
    #[inline]
    pub fn slot_of(&self, key: &FlowKey, now_ns: u64) -> Option<SlotId> {
        self.find_live(key, now_ns).map(SlotId)
    }

    /// The value in slot `id` if it still holds `key` (live or not: liveness was
    /// decided by [`FlowTable::slot_of`]).
    #[inline]
    pub fn at(&self, id: SlotId, key: &FlowKey) -> Option<&V> {
        match self.slots.get(id.0)? {
            Some(s) if s.key == *key => Some(&s.value),
            _ => None,
        }
    }

    /// The entry in slot `id` if it still holds `key`, to change its value and expiry.
    #[inline]
    pub fn at_mut(&mut self, id: SlotId, key: &FlowKey) -> Option<EntryMut<'_, V>> {
        let earliest_expiry = &mut self.earliest_expiry;
        match self.slots.get_mut(id.0)? {
            Some(slot) if slot.key == *key => Some(EntryMut {
                slot,
                earliest_expiry,
            }),
            _ => None,
        }
    }

    /// When the live entry of `key` expires.
    pub fn expires_at(&self, key: &FlowKey, now_ns: u64) -> Option<u64> {
        let i = self.find_live(key, now_ns)?;
        self.slots.get(i)?.as_ref().map(|s| s.expires_ns)
    }

    /// Sets the expiry of `key`'s entry if it is live at `now_ns` (typically to
    /// `now + timeout` after one of its packets, or `now` to end it). False when absent
    /// or expired: an expired entry is not revived.
    pub fn touch(&mut self, key: &FlowKey, expires_ns: u64, now_ns: u64) -> bool {
        let Some(i) = self.find_live(key, now_ns) else {
            return false;
        };
        let Some(Some(s)) = self.slots.get_mut(i) else {
            return false;
        };
        s.expires_ns = expires_ns;
        self.earliest_expiry = self.earliest_expiry.min(expires_ns);
        true
    }

    /// Stores `value` for `key` until `expires_ns`, replacing any entry of `key`;
    /// see [`FlowTable::insert_displacing`]. A displaced value is dropped.
    pub fn insert(
        &mut self,
        key: FlowKey,
        value: V,
        expires_ns: u64,
        now_ns: u64,
    ) -> Result<&mut V, TableFull> {
        self.insert_displacing(key, value, expires_ns, now_ns)
            .map(|(v, _)| v)
    }

    /// Stores `value` for `key` until `expires_ns` and returns it, with the entry it
    /// displaced: the old entry of `key` (live or expired), or an expired entry of
    /// another key whose slot it took. Callers whose values hold resources (a NAT's
    /// port) release them from the displaced entry.
    ///
    /// Expired slots are reused first: one on `key`'s probe path, else a free slot
    /// while fewer than `capacity` entries are stored, else any expired entry in the
    /// table. [`TableFull`] when all `capacity` entries are live (the table is then
    /// unchanged and every entry still works).
    pub fn insert_displacing(
        &mut self,
        key: FlowKey,
        value: V,
        expires_ns: u64,
        now_ns: u64,
    ) -> Result<(&mut V, Displaced<V>), TableFull> {
        let fresh = Slot {
            key,
            expires_ns,
            value,
        };
        // One probe finds `key`, the first expired slot on its path, and the free slot
        // that ends the path.
        let mut i = self.home(&key);
        let mut reuse = None;
        let mut free = None;
        for _ in 0..self.slots.len() {
            match self.slots.get(i) {
                Some(None) => {
                    free = Some(i);
                    break;
                }
                Some(Some(s)) if s.key == key => {
                    reuse = Some(i);
                    break;
                }
                Some(Some(s)) if reuse.is_none() && s.expires_ns <= now_ns => reuse = Some(i),
                _ => {}
            }
            i = (i + 1) & self.mask;
        }
        if let Some(r) = reuse {
            // Any slot on the path keeps `key` reachable from its home, and `key` is not
            // further on (the probe stopped at it or at the free slot).
            return self.put(r, fresh);
        }
        if self.len >= self.capacity {
            let Some(victim) = self.find_expired(now_ns) else {
                return Err(TableFull);
            };
            let displaced = self.remove_at(victim);
            // Backward shifting moved entries: find the end of the path again.
            let at = self.free_slot(&key).ok_or(TableFull)?;
            let (v, _) = self.put(at, fresh)?;
            return Ok((v, displaced.map(|s| (s.key, s.value))));
        }
        let at = free.ok_or(TableFull)?;
        self.put(at, fresh)
    }

    /// Writes `fresh` into slot `at` (free or to be overwritten).
    fn put(&mut self, at: usize, fresh: Slot<V>) -> Result<(&mut V, Displaced<V>), TableFull> {
        self.earliest_expiry = self.earliest_expiry.min(fresh.expires_ns);
        let slot = self.slots.get_mut(at).ok_or(TableFull)?;
        let old = slot.replace(fresh);
        if old.is_none() {
            self.len += 1;
        }
        let v = slot.as_mut().map(|s| &mut s.value).ok_or(TableFull)?;
        Ok((v, old.map(|s| (s.key, s.value))))
    }

    /// The first free slot on `key`'s probe path (the table holds no entry of `key`).
    fn free_slot(&self, key: &FlowKey) -> Option<usize> {
        let mut i = self.home(key);
        for _ in 0..self.slots.len() {
            match self.slots.get(i)? {
                None => return Some(i),
                Some(_) => i = (i + 1) & self.mask,
            }
        }
        None
    }

    /// Some slot whose entry has expired at `now_ns`, searching from the cursor. When
    /// there is none the whole table was read, so `earliest_expiry` becomes exact.
    fn find_expired(&mut self, now_ns: u64) -> Option<usize> {
        if now_ns < self.earliest_expiry {
            return None;
        }
        let mut earliest = u64::MAX;
        let mut i = self.cursor & self.mask;
        for _ in 0..self.slots.len() {
            if let Some(Some(s)) = self.slots.get(i) {
                if s.expires_ns <= now_ns {
                    self.cursor = i;
                    return Some(i);
                }
                earliest = earliest.min(s.expires_ns);
            }
            i = (i + 1) & self.mask;
        }
        self.earliest_expiry = earliest;
        None
    }

    /// Empties slot `hole` and closes the gap by shifting later entries of its cluster
    /// back (an entry moves only into a hole on its own probe path).
    fn remove_at(&mut self, mut hole: usize) -> Option<Slot<V>> {
        let removed = self.slots.get_mut(hole)?.take()?;
        self.len -= 1;
        let mut j = hole;
        for _ in 0..self.slots.len() {
            j = (j + 1) & self.mask;
            let Some(Some(s)) = self.slots.get(j) else {
                break;
            };
            let home = self.home(&s.key);
            // The entry at `j` may fill `hole` when `hole` lies cyclically in home..=j.
            if j.wrapping_sub(home) & self.mask >= j.wrapping_sub(hole) & self.mask {
                let moved = self.slots.get_mut(j).and_then(Option::take);
                if let Some(h) = self.slots.get_mut(hole) {
                    *h = moved;
                }
                hole = j;
            }
        }
        Some(removed)
    }

    /// Removes `key`'s entry, live or expired, and returns its value.
    pub fn remove(&mut self, key: &FlowKey) -> Option<V> {
        let i = self.find(key)?;
        self.remove_at(i).map(|s| s.value)
    }

    /// Removes entries expired at `now_ns`, reading at most `max_work` slots (a removal
    /// counts as one more) from where the last call stopped, and at most one lap of the
    /// table. Returns how many it removed. Call it every poll with a small budget to
    /// keep the table clean without a pause.
    pub fn expire(&mut self, now_ns: u64, max_work: usize) -> usize {
        self.expire_with(now_ns, max_work, |_, _| {})
    }

    /// [`FlowTable::expire`], handing each removed entry to `removed` (to release what
    /// its value holds).
    pub fn expire_with(
        &mut self,
        now_ns: u64,
        max_work: usize,
        mut removed: impl FnMut(FlowKey, V),
    ) -> usize {
        if self.len == 0 || now_ns < self.earliest_expiry {
            return 0;
        }
        let n = self.slots.len();
        let (mut work, mut steps, mut count) = (0usize, 0usize, 0usize);
        let mut earliest = u64::MAX;
        let mut i = self.cursor & self.mask;
        while work < max_work && steps < n {
            work += 1;
            let expired = match self.slots.get(i) {
                Some(Some(s)) if s.expires_ns <= now_ns => true,
                Some(Some(s)) => {
                    earliest = earliest.min(s.expires_ns);
                    false
                }
                _ => false,
            };
            if expired {
                // Backward shifting may move a later entry into `i`: read `i` again.
                if let Some(s) = self.remove_at(i) {
                    removed(s.key, s.value);
                    count += 1;
                }
            } else {
                i = (i + 1) & self.mask;
                steps += 1;
            }
        }
        self.cursor = i;
        if steps == n {
            // A whole lap in one call saw every remaining entry (shifts only move
            // entries towards `i`, into slots not yet read).
            self.earliest_expiry = earliest;
        }
        count
    }

    /// The live entries at `now_ns` with their expiry, in slot order.
    pub fn iter(&self, now_ns: u64) -> impl Iterator<Item = (&FlowKey, &V, u64)> + '_ {
        self.slots.iter().filter_map(move |s| match s {
            Some(s) if now_ns < s.expires_ns => Some((&s.key, &s.value, s.expires_ns)),
            _ => None,
        })
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        for s in &mut self.slots {
            *s = None;
        }
        self.len = 0;
        self.earliest_expiry = u64::MAX;
    }

    /// Checks the linear-probing invariant: every entry is reachable from its home
    /// without crossing a free slot, and `len` counts the entries.
    #[cfg(test)]
    fn check_invariants(&self) {
        let mut count = 0;
        for (i, s) in self.slots.iter().enumerate() {
            let Some(s) = s else { continue };
            count += 1;
            let mut j = self.home(&s.key);
            while j != i {
                assert!(
                    self.slots[j].is_some(),
                    "gap on the probe path of {:?}",
                    s.key
                );
                j = (j + 1) & self.mask;
            }
            assert!(
                s.expires_ns >= self.earliest_expiry,
                "earliest_expiry not a bound"
            );
        }
        assert_eq!(count, self.len);
        assert!(self.len <= self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const A: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const DNS_SERVER: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);
    const WEB: Ipv4Addr = Ipv4Addr::new(93, 184, 216, 34);
    const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    // A captured ping (the same capture as wire::icmpv4's tests): IPv4 header
    // 192.168.1.10 → 8.8.8.8, checksum 0x4ca1, then an echo request with identifier
    // 0x0d2f, sequence 1 and 56 bytes of data.
    const PING_IP: [u8; 20] = [
        0x45, 0x00, 0x00, 0x54, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x4c, 0xa1, 0xc0, 0xa8, 0x01,
        0x0a, 0x08, 0x08, 0x08, 0x08,
    ];
    const PING_ICMP: [u8; 64] = [
        0x08, 0x00, 0xdb, 0xcd, 0x0d, 0x2f, 0x00, 0x01, 0x9a, 0x3b, 0x5e, 0x65, 0x00, 0x00, 0x00,
        0x00, 0x4c, 0x8e, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
        0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24,
        0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
        0x34, 0x35, 0x36, 0x37,
    ];

    // 192.168.1.10 → 93.184.216.34, TCP, 60 bytes, DF, TTL 64; checksum 0x26e8
    // (computed by hand), then wire::tcp's captured SYN 42424 → 80.
    const SYN_IP: [u8; 20] = [
        0x45, 0x00, 0x00, 0x3c, 0x1c, 0x47, 0x40, 0x00, 0x40, 0x06, 0x26, 0xe8, 0xc0, 0xa8, 0x01,
        0x0a, 0x5d, 0xb8, 0xd8, 0x22,
    ];
    const SYN_TCP: [u8; 40] = [
        0xa5, 0xb8, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0xa8, 0x85, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x1b,
        0x9e, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    // 192.168.1.10 → 8.8.8.8, UDP, 57 bytes; checksum 0x8caa; then wire::udp's captured
    // DNS query 53124 → 53 for example.com.
    const DNS_IP: [u8; 20] = [
        0x45, 0x00, 0x00, 0x39, 0x1c, 0x48, 0x00, 0x00, 0x40, 0x11, 0x8c, 0xaa, 0xc0, 0xa8, 0x01,
        0x0a, 0x08, 0x08, 0x08, 0x08,
    ];
    const DNS_UDP: [u8; 37] = [
        0xcf, 0x84, 0x00, 0x35, 0x00, 0x25, 0xe2, 0xec, 0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63,
        0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01,
    ];

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    /// Sets the flags/fragment word of the IPv4 header at the start of `d`.
    fn set_frag(d: &mut [u8], more: bool, offset: u16) {
        let w = (u16::from(more) << 13) | offset;
        d[6..8].copy_from_slice(&w.to_be_bytes());
    }

    /// An ICMP error of `kind` from ROUTER to 192.168.1.10 quoting `quote`.
    fn icmp_error(kind: u8, code: u8, quote: &[u8]) -> Vec<u8> {
        let total = (20 + 8 + quote.len()) as u16;
        let mut ip = [
            0x45, 0x00, 0, 0, 0x00, 0x01, 0x00, 0x00, 0x40, 0x01, 0, 0, 10, 0, 0, 1, 192, 168, 1,
            10,
        ];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        cat(&[&ip, &[kind, code, 0, 0, 0, 0, 0, 0], quote])
    }

    // ---- keys ----

    #[test]
    fn key_of_captured_ping() {
        let k = flow_key(&cat(&[&PING_IP, &PING_ICMP])).unwrap();
        assert_eq!(
            k,
            FlowKey {
                proto: protocol::ICMP,
                src: A,
                dst: DNS_SERVER,
                sport: 0x0d2f,
                dport: 0
            }
        );
        // The echo reply (type 0, addresses swapped) has the reversed key.
        let mut reply = cat(&[&PING_IP, &PING_ICMP]);
        reply[12..16].copy_from_slice(&DNS_SERVER.octets());
        reply[16..20].copy_from_slice(&A.octets());
        reply[20] = msg::ECHO_REPLY;
        assert_eq!(flow_key(&reply), Some(k.reversed()));
        assert_eq!(k.reversed().reversed(), k);
        // Timestamp and address mask queries carry an identifier at the same place.
        for kind in [query::TIMESTAMP, query::ADDRESS_MASK_REPLY] {
            let mut q = cat(&[&PING_IP, &PING_ICMP]);
            q[20] = kind;
            assert_eq!(flow_key(&q), Some(k));
        }
        // An unknown type (42) has none.
        let mut q = cat(&[&PING_IP, &PING_ICMP]);
        q[20] = 42;
        assert_eq!(flow_key(&q).map(|k| k.sport), Some(0));
    }

    #[test]
    fn key_of_captured_tcp_syn_and_udp_query() {
        let syn = flow_key(&cat(&[&SYN_IP, &SYN_TCP])).unwrap();
        assert_eq!(
            syn,
            FlowKey {
                proto: protocol::TCP,
                src: A,
                dst: WEB,
                sport: 42424,
                dport: 80
            }
        );
        assert!(syn.is_http() && syn.reversed().is_http());
        let r = syn.reversed();
        assert_eq!((r.src, r.dst, r.sport, r.dport), (WEB, A, 80, 42424));

        let dns = flow_key(&cat(&[&DNS_IP, &DNS_UDP])).unwrap();
        assert_eq!(
            dns,
            FlowKey {
                proto: protocol::UDP,
                src: A,
                dst: DNS_SERVER,
                sport: 53124,
                dport: 53
            }
        );
        assert!(!dns.is_http());
    }

    #[test]
    fn key_of_other_protocol_and_other_icmp_has_no_ports() {
        // The DNS datagram relabelled as GRE (47): same addresses, ports 0.
        let mut d = cat(&[&DNS_IP, &DNS_UDP]);
        d[9] = 47;
        let k = flow_key(&d).unwrap();
        assert_eq!((k.proto, k.sport, k.dport), (47, 0, 0));
        // A time exceeded message is keyed without ports.
        let te = icmp_error(msg::TIME_EXCEEDED, 0, &cat(&[&PING_IP, &PING_ICMP[..8]]));
        let k = flow_key(&te).unwrap();
        assert_eq!((k.proto, k.src, k.sport, k.dport), (1, ROUTER, 0, 0));
    }

    #[test]
    fn fragments() {
        // A first fragment (MF, offset 0) still carries the ports.
        let mut d = cat(&[&DNS_IP, &DNS_UDP]);
        set_frag(&mut d, true, 0);
        assert_eq!(flow_key(&d).map(|k| k.sport), Some(53124));
        // A later fragment of UDP, TCP or ICMP has none: no key.
        set_frag(&mut d, false, 3);
        assert_eq!(flow_key(&d), None);
        let mut t = cat(&[&SYN_IP, &SYN_TCP]);
        set_frag(&mut t, true, 1);
        assert_eq!(flow_key(&t), None);
        let mut p = cat(&[&PING_IP, &PING_ICMP]);
        set_frag(&mut p, false, 185);
        assert_eq!(flow_key(&p), None);
        // A later fragment of a portless protocol keeps its key.
        d[9] = 47;
        assert_eq!(flow_key(&d).map(|k| (k.proto, k.sport)), Some((47, 0)));
    }

    #[test]
    fn short_or_bad_datagrams_have_no_key() {
        let d = cat(&[&DNS_IP, &DNS_UDP]);
        assert_eq!(flow_key(&d[..19]), None);
        // Total length cut to 20 + 3: the UDP ports are not all there.
        let mut short = d.clone();
        short[2..4].copy_from_slice(&23u16.to_be_bytes());
        assert_eq!(flow_key(&short), None);
        short[2..4].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(flow_key(&short).map(|k| k.dport), Some(53));
        // An echo request needs its identifier (6 bytes).
        let mut ping = cat(&[&PING_IP, &PING_ICMP]);
        ping[2..4].copy_from_slice(&25u16.to_be_bytes());
        assert_eq!(flow_key(&ping), None);
        // Version 6 in an IPv4 header.
        let mut v6 = d.clone();
        v6[0] = 0x65;
        assert_eq!(flow_key(&v6), None);
        // Trailing Ethernet padding is fine.
        let padded = cat(&[&d, &[0; 9]]);
        assert_eq!(flow_key(&padded), flow_key(&d));
    }

    #[test]
    fn icmp_error_names_the_quoted_flow() {
        // Time exceeded for the ping: the quote is its header and 8 bytes.
        let te = icmp_error(msg::TIME_EXCEEDED, 0, &cat(&[&PING_IP, &PING_ICMP[..8]]));
        assert_eq!(icmp_error_key(&te), flow_key(&cat(&[&PING_IP, &PING_ICMP])));
        // Port unreachable for the DNS query (traceroute's last hop answers like this).
        let pu = icmp_error(msg::DST_UNREACHABLE, 3, &cat(&[&DNS_IP, &DNS_UDP[..8]]));
        let k = icmp_error_key(&pu).unwrap();
        assert_eq!(
            (k.proto, k.src, k.dst, k.sport, k.dport),
            (17, A, DNS_SERVER, 53124, 53)
        );
        // Quoting only 4 bytes of UDP is enough for the ports; 3 is not.
        let four = icmp_error(msg::DST_UNREACHABLE, 3, &cat(&[&DNS_IP, &DNS_UDP[..4]]));
        assert_eq!(icmp_error_key(&four), Some(k));
        let three = icmp_error(msg::DST_UNREACHABLE, 3, &cat(&[&DNS_IP, &DNS_UDP[..3]]));
        assert_eq!(icmp_error_key(&three), None);
        // Not an error: an echo request.
        assert_eq!(icmp_error_key(&cat(&[&PING_IP, &PING_ICMP])), None);
        // Not ICMP.
        assert_eq!(icmp_error_key(&cat(&[&DNS_IP, &DNS_UDP])), None);
        // A quoted later fragment of UDP has no ports.
        let mut q = cat(&[&DNS_IP, &DNS_UDP[..8]]);
        set_frag(&mut q, false, 2);
        assert_eq!(icmp_error_key(&icmp_error(msg::TIME_EXCEEDED, 1, &q)), None);
        // A quote whose IHL runs past its end.
        let mut bad = cat(&[&DNS_IP, &DNS_UDP[..8]]);
        bad[0] = 0x4f;
        assert_eq!(
            icmp_error_key(&icmp_error(msg::DST_UNREACHABLE, 1, &bad)),
            None
        );
    }

    proptest! {
        /// Random bytes never panic the key readers.
        #[test]
        fn key_readers_never_panic(d in prop::collection::vec(any::<u8>(), 0..80)) {
            let _ = flow_key(&d);
            let _ = icmp_error_key(&d);
        }

        /// Nor do random bytes behind a plausible header (reaching the transport code),
        /// and whatever key comes out has the fields of the header.
        #[test]
        fn key_readers_never_panic_past_the_header(
            proto in prop_oneof![Just(1u8), Just(6), Just(17), any::<u8>()],
            frag in any::<u16>(),
            body in prop::collection::vec(any::<u8>(), 0..60),
            total in 20u16..90,
        ) {
            let mut d = cat(&[&DNS_IP, &body]);
            d[9] = proto;
            d[6..8].copy_from_slice(&frag.to_be_bytes());
            d[2..4].copy_from_slice(&total.to_be_bytes());
            if let Some(k) = flow_key(&d) {
                prop_assert_eq!((k.proto, k.src, k.dst), (proto, A, DNS_SERVER));
            }
            let _ = icmp_error_key(&d);
        }
    }

    // ---- timeouts ----

    fn key(proto: u8, sport: u16, dport: u16) -> FlowKey {
        FlowKey {
            proto,
            src: A,
            dst: WEB,
            sport,
            dport,
        }
    }

    fn state(segments: &[(bool, u8)]) -> TcpState {
        let mut s = TcpState::new();
        for &(i, f) in segments {
            s.update(i, f);
        }
        s
    }

    const I: bool = true;
    const R: bool = false;
    const SYN: u8 = flags::SYN;
    const SYN_ACK: u8 = flags::SYN | flags::ACK;
    const ACK: u8 = flags::ACK;
    const FIN_ACK: u8 = flags::FIN | flags::ACK;
    const PSH_ACK: u8 = flags::PSH | flags::ACK;
    const RST_: u8 = flags::RST;

    const HANDSHAKE: [(bool, u8); 3] = [(I, SYN), (R, SYN_ACK), (I, ACK)];

    #[test]
    fn aves_timeouts_are_the_papers() {
        let t = Timeouts::aves();
        let s = |n: u64| n * SECOND_NS;
        assert_eq!(t.for_packet(&key(1, 7, 0), None), s(60));
        assert_eq!(t.for_packet(&key(17, 5000, 53), None), s(15 * 60));
        assert_eq!(t.for_packet(&key(6, 5000, 22), None), s(30 * 60));
        assert_eq!(t.for_packet(&key(47, 0, 0), None), s(15 * 60));
        assert_eq!(t.traceroute, s(5));
        // HTTP: 20 minutes in every state, FINs not tracked (§5.2).
        let closed = state(&[(I, SYN), (R, RST_)]);
        assert!(closed.is_closed());
        for k in [key(6, 5000, 80), key(6, 80, 5000)] {
            assert_eq!(t.for_packet(&k, None), s(20 * 60));
            assert_eq!(t.for_packet(&k, Some(closed)), s(20 * 60));
            assert_eq!(t.for_packet(&k, Some(TcpState::new())), s(20 * 60));
        }
        // UDP to port 80 is not HTTP.
        assert_eq!(t.for_packet(&key(17, 5000, 80), None), s(15 * 60));
        // Other TCP: a closed connection's entry ends now; opening and closing keep 30 min.
        let k = key(6, 5000, 22);
        assert_eq!(t.for_packet(&k, Some(closed)), 0);
        assert_eq!(t.for_packet(&k, Some(state(&[(I, SYN)]))), s(30 * 60));
        assert_eq!(t.for_packet(&k, Some(state(&HANDSHAKE))), s(30 * 60));
    }

    #[test]
    fn nat44_timeouts_meet_the_rfc_minimums() {
        let t = Timeouts::nat44();
        // RFC 4787 REQ-5, RFC 5382 REQ-5, RFC 5508 REQ-1.
        assert!(t.udp >= 2 * MINUTE_NS);
        assert_eq!(t.udp, 5 * MINUTE_NS);
        assert!(t.tcp >= (2 * 60 + 4) * MINUTE_NS);
        assert!(t.tcp_transitory >= 4 * MINUTE_NS);
        assert!(t.icmp >= 60 * SECOND_NS);
        let k = key(6, 5000, 80);
        let open = state(&[(I, SYN)]);
        let est = state(&HANDSHAKE);
        let mut closing = est;
        closing.update(I, FIN_ACK);
        let closed = state(&[(I, SYN), (R, RST_)]);
        // No HTTP exception: port 80 follows the TCP state.
        assert_eq!(t.for_packet(&k, Some(est)), 124 * MINUTE_NS);
        assert_eq!(t.for_packet(&k, None), 124 * MINUTE_NS);
        assert_eq!(t.for_packet(&k, Some(open)), 4 * MINUTE_NS);
        assert_eq!(t.for_packet(&k, Some(closing)), 4 * MINUTE_NS);
        assert_eq!(t.for_packet(&k, Some(closed)), 4 * MINUTE_NS);
        assert_eq!(t.for_packet(&key(1, 9, 0), None), 60 * SECOND_NS);
        assert_eq!(t.for_packet(&key(132, 0, 0), None), 5 * MINUTE_NS);
        assert_eq!(t.traceroute, 0);
    }

    // ---- TCP tracking ----

    /// Feeds `segments` one at a time, checking the phase after each.
    fn walk(segments: &[(bool, u8, TcpPhase)]) {
        let mut s = TcpState::new();
        for (n, &(i, f, want)) in segments.iter().enumerate() {
            s.update(i, f);
            assert_eq!(s.phase(), want, "after segment {n} ({i}, {f:#04x})");
            assert_eq!(s.is_closed(), want == TcpPhase::Closed);
        }
    }

    use TcpPhase::{Closed, Closing, Established, Opening};

    #[test]
    fn tcp_close_initiator_first() {
        walk(&[
            (I, SYN, Opening),
            (I, SYN, Opening), // retransmitted
            (R, SYN_ACK, Established),
            (I, ACK, Established),
            (I, PSH_ACK, Established),
            (R, ACK, Established),
            (I, FIN_ACK, Closing),
            (R, ACK, Closing),     // acknowledges the initiator's FIN
            (R, PSH_ACK, Closing), // half-closed: the responder still sends
            (I, ACK, Closing),
            (R, FIN_ACK, Closing),
            (I, ACK, Closed), // the last ACK
            (R, ACK, Closed),
        ]);
    }

    #[test]
    fn tcp_close_responder_first_with_combined_fin_ack() {
        walk(&[
            (I, SYN, Opening),
            (R, SYN_ACK, Established),
            (I, ACK, Established),
            (R, FIN_ACK, Closing),
            (I, FIN_ACK, Closing), // acknowledges the responder's FIN and sends its own
            (R, ACK, Closed),
        ]);
    }

    #[test]
    fn tcp_ack_before_a_fin_does_not_acknowledge_it() {
        walk(&[
            (I, SYN, Opening),
            (R, SYN_ACK, Established),
            (I, FIN_ACK, Closing),
            (R, flags::FIN, Closing), // a FIN without ACK acknowledges nothing
            (I, ACK, Closing),        // acknowledges the responder's FIN only
            (R, ACK, Closed),
        ]);
    }

    #[test]
    fn tcp_simultaneous_close() {
        // Both FINs cross (RFC 9293 §3.6 case 2). Flags alone cannot tell the
        // responder's FIN-ACK does not acknowledge the initiator's FIN, so the first
        // final ACK closes (documented on TcpState).
        walk(&[
            (I, SYN, Opening),
            (R, SYN_ACK, Established),
            (I, ACK, Established),
            (I, FIN_ACK, Closing),
            (R, FIN_ACK, Closing),
            (I, ACK, Closed),
            (R, ACK, Closed),
        ]);
    }

    #[test]
    fn tcp_rst_closes_in_any_phase() {
        walk(&[(I, SYN, Opening), (R, RST_ | flags::ACK, Closed)]);
        walk(&[
            (I, SYN, Opening),
            (R, SYN_ACK, Established),
            (I, RST_, Closed),
        ]);
        walk(&[
            (I, SYN, Opening),
            (R, SYN_ACK, Established),
            (I, FIN_ACK, Closing),
            (R, RST_, Closed),
            (R, FIN_ACK, Closed),
        ]);
    }

    #[test]
    fn tcp_reopen_after_close_and_mid_stream_pickup() {
        walk(&[
            (I, SYN, Opening),
            (R, RST_, Closed),
            (R, SYN, Closed),     // only the initiator may reopen
            (I, SYN_ACK, Closed), // not a bare SYN
            (I, SYN, Opening),
            (R, SYN_ACK, Established),
        ]);
        // A flow picked up mid-stream (no SYN seen) is established once both sides ACK.
        walk(&[(I, PSH_ACK, Opening), (R, ACK, Established)]);
        // A lone FIN from one side is closing, not closed.
        walk(&[(I, flags::FIN, Closing), (I, FIN_ACK, Closing)]);
    }

    // ---- table ----

    fn k(n: u32) -> FlowKey {
        FlowKey {
            proto: protocol::UDP,
            src: Ipv4Addr::from(0x0a00_0000 + n),
            dst: DNS_SERVER,
            sport: 1000 + (n % 7) as u16,
            dport: 53,
        }
    }

    #[test]
    fn entries_live_until_their_expiry() {
        let mut t: FlowTable<u32> = FlowTable::new(4, 7);
        assert_eq!(t.capacity(), 4);
        assert!(t.is_empty());
        *t.insert(k(1), 10, 100, 0).unwrap() += 1;
        assert_eq!(t.get(&k(1), 99), Some(&11));
        assert_eq!(t.expires_at(&k(1), 0), Some(100));
        assert_eq!(t.get(&k(1), 100), None);
        assert_eq!(t.get_mut(&k(1), 100), None);
        assert_eq!(t.get(&k(2), 0), None);
        // Touching extends a live entry, never revives an expired one.
        assert!(t.touch(&k(1), 200, 99));
        assert_eq!(t.get(&k(1), 150), Some(&11));
        assert!(!t.touch(&k(1), 400, 200));
        assert_eq!(t.get(&k(1), 300), None);
        // Removal hands back the value even after expiry (it may hold a port).
        assert_eq!(t.len(), 1);
        assert_eq!(t.remove(&k(1)), Some(11));
        assert_eq!(t.remove(&k(1)), None);
        assert!(t.is_empty());
        t.check_invariants();
    }

    #[test]
    fn entry_mut_reads_and_changes_value_and_expiry_in_one_lookup() {
        let mut t: FlowTable<u32> = FlowTable::new(4, 7);
        assert!(t.entry_mut(&k(1), 0).is_none(), "absent");
        t.insert(k(1), 10, u64::MAX, 0).unwrap();
        {
            let mut e = t.entry_mut(&k(1), 50).unwrap();
            assert_eq!(e.expires_ns(), u64::MAX);
            *e.value() += 5;
            // Shortening moves the table's lower bound of expiries, so the sweep
            // finds the entry once it has expired.
            e.set_expires(100);
        }
        assert_eq!(t.get(&k(1), 99), Some(&15));
        assert_eq!(t.expires_at(&k(1), 99), Some(100));
        assert!(t.entry_mut(&k(1), 100).is_none(), "expired: not revived");
        assert_eq!(t.expire(100, 64), 1);
        assert!(t.is_empty());
        t.check_invariants();
    }

    #[test]
    fn slot_handles_find_once_and_never_name_another_key() {
        let mut t: FlowTable<u32> = FlowTable::new(64, 3);
        assert!(t.slot_of(&k(1), 0).is_none(), "absent");
        for n in 0..40 {
            t.insert(k(n), n, 100, 0).unwrap();
        }
        let s = t.slot_of(&k(7), 10).unwrap();
        assert_eq!(t.at(s, &k(7)), Some(&7));
        {
            let mut e = t.at_mut(s, &k(7)).unwrap();
            *e.value() += 100;
            e.set_expires(50);
        }
        assert_eq!(t.get(&k(7), 49), Some(&107));
        assert!(t.slot_of(&k(7), 50).is_none(), "expired at 50");
        // A handle whose slot now holds another key (or nothing) answers None: the
        // key is compared, so a stale handle cannot reach another flow's entry.
        let s9 = t.slot_of(&k(9), 10).unwrap();
        assert!(t.at(s9, &k(8)).is_none());
        assert!(t.at_mut(s9, &k(8)).is_none());
        t.remove(&k(9));
        assert!(t.at(s9, &k(9)).is_none(), "removed");
        t.check_invariants();
    }

    #[test]
    fn hash_parts_are_bijective() {
        // With the other fields fixed the hash is a bijection of the source, of the
        // destination, and of protocol and ports: keys differing in one never collide.
        let seed = 0x1234_5678_9abc_def0;
        let mut seen = std::collections::HashSet::new();
        for a in 0..2000u32 {
            let mut key = k(1);
            key.src = Ipv4Addr::from(a);
            assert!(seen.insert(key.hash(seed)));
        }
        seen.clear();
        for a in 0..2000u32 {
            let mut key = k(1);
            key.dst = Ipv4Addr::from(a.wrapping_mul(0x9e37_79b9));
            assert!(seen.insert(key.hash(seed)));
        }
        seen.clear();
        for p in 0..2000u16 {
            let mut key = k(1);
            key.sport = p;
            assert!(seen.insert(key.hash(seed)));
        }
    }

    #[test]
    fn full_table_refuses_keeps_working_and_reclaims_expired_first() {
        let mut t: FlowTable<u32> = FlowTable::new(4, 99);
        for n in 0..4 {
            t.insert(k(n), n, 100 + u64::from(n), 0).unwrap();
        }
        assert_eq!(t.insert(k(9), 9, 1000, 50), Err(TableFull));
        assert_eq!(t.len(), 4);
        // Existing entries still work: found, changed, replaced, touched.
        for n in 0..4 {
            assert_eq!(t.get(&k(n), 50), Some(&n));
        }
        *t.get_mut(&k(0), 50).unwrap() = 40;
        assert_eq!(t.insert(k(1), 41, 100, 50), Ok(&mut 41));
        assert!(t.touch(&k(2), 500, 50));
        t.check_invariants();
        // k(0) expires at 100, k(1) at 100, k(3) at 103: at 101 a new flow takes an
        // expired one's slot and the displaced value comes back.
        let (v, displaced) = t.insert_displacing(k(9), 9, 1000, 101).unwrap();
        assert_eq!(*v, 9);
        let (dk, dv) = displaced.unwrap();
        assert!(
            matches!((dk, dv), (x, 40) if x == k(0)) || matches!((dk, dv), (x, 41) if x == k(1))
        );
        assert_eq!(t.len(), 4);
        assert_eq!(t.get(&k(9), 101), Some(&9));
        assert_eq!(t.get(&k(2), 101), Some(&2));
        assert_eq!(t.get(&k(3), 101), Some(&3));
        // One more fits (the other expired entry), then full again.
        t.insert(k(10), 10, 1000, 101).unwrap();
        assert_eq!(t.insert(k(11), 11, 1000, 101), Err(TableFull));
        // Until k(3) expires at 103.
        assert_eq!(t.insert(k(11), 11, 1000, 102), Err(TableFull));
        assert_eq!(
            t.insert_displacing(k(11), 11, 1000, 103).map(|(_, d)| d),
            Ok(Some((k(3), 3)))
        );
        t.check_invariants();
    }

    #[test]
    fn zero_capacity_holds_nothing() {
        let mut t: FlowTable<()> = FlowTable::new(0, 1);
        assert_eq!(t.insert(k(1), (), 10, 0), Err(TableFull));
        assert_eq!(t.get(&k(1), 0), None);
        assert_eq!(t.expire(100, 100), 0);
    }

    #[test]
    fn expire_sweeps_incrementally() {
        const CAP: usize = 64;
        let mut t: FlowTable<u32> = FlowTable::new(CAP, 3);
        for n in 0..CAP as u32 {
            // Even flows expire at 10, odd ones at 1000.
            let exp = if n % 2 == 0 { 10 } else { 1000 };
            t.insert(k(n), n, exp, 0).unwrap();
        }
        // Nothing has expired yet: no work.
        assert_eq!(t.expire(5, usize::MAX), 0);
        let mut total = 0;
        let mut calls = 0;
        let mut seen = Vec::new();
        while total < CAP / 2 {
            let before = t.len();
            let got = t.expire_with(20, 8, |key, v| {
                assert_eq!(key, k(v));
                seen.push(v);
            });
            assert!(got <= 8, "bounded work");
            assert_eq!(t.len(), before - got);
            total += got;
            calls += 1;
            t.check_invariants();
            assert!(calls <= 64, "the sweep makes progress");
        }
        assert!(calls > 1, "the work was spread over calls");
        seen.sort_unstable();
        assert_eq!(seen, (0..CAP as u32).step_by(2).collect::<Vec<_>>());
        assert_eq!(t.expire(20, usize::MAX), 0);
        for n in 0..CAP as u32 {
            assert_eq!(t.get(&k(n), 20).is_some(), n % 2 == 1);
        }
        assert_eq!(t.iter(20).count(), CAP / 2);
        t.clear();
        assert!(t.is_empty());
        assert_eq!(t.iter(0).count(), 0);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(FlowKey, u32, u64),
        Get(FlowKey),
        Touch(FlowKey, u64),
        Remove(FlowKey),
        Advance(u64),
        Expire(usize),
    }

    /// Few distinct keys (so they collide and cluster) and short lifetimes.
    fn small_key() -> impl Strategy<Value = FlowKey> {
        (prop_oneof![Just(6u8), Just(17)], 0u8..5, 0u16..3).prop_map(|(proto, a, p)| FlowKey {
            proto,
            src: Ipv4Addr::new(10, 0, 0, a),
            dst: DNS_SERVER,
            sport: p,
            dport: 53,
        })
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (small_key(), any::<u32>(), 0u64..20).prop_map(|(k, v, t)| Op::Insert(k, v, t)),
            2 => small_key().prop_map(Op::Get),
            1 => (small_key(), 0u64..20).prop_map(|(k, t)| Op::Touch(k, t)),
            1 => small_key().prop_map(Op::Remove),
            2 => (0u64..6).prop_map(Op::Advance),
            1 => prop_oneof![0usize..6, Just(usize::MAX)].prop_map(Op::Expire),
        ]
    }

    proptest! {
        /// The table agrees with a HashMap under a virtual clock: lookups see exactly the
        /// live entries, inserts fail exactly when `capacity` entries are live, displaced
        /// and swept entries are expired ones (or the key's own), and the probing
        /// invariant holds throughout.
        #[test]
        fn table_matches_model(
            seed in any::<u64>(),
            cap in 1usize..9,
            ops in prop::collection::vec(op(), 0..250),
        ) {
            let mut t: FlowTable<u32> = FlowTable::new(cap, seed);
            // What the table stores, live or expired: key → (value, expiry).
            let mut model: HashMap<FlowKey, (u32, u64)> = HashMap::new();
            let mut now = 0u64;
            for o in ops {
                let live = |m: &HashMap<FlowKey, (u32, u64)>, now: u64| {
                    m.values().filter(|(_, e)| now < *e).count()
                };
                match o {
                    Op::Insert(key, v, ttl) => {
                        let is_live = model.get(&key).is_some_and(|&(_, e)| now < e);
                        let ok = is_live || live(&model, now) < cap;
                        match t.insert_displacing(key, v, now + ttl, now) {
                            Ok((got, displaced)) => {
                                prop_assert!(ok, "insert succeeded with {cap} live entries");
                                prop_assert_eq!(*got, v);
                                if let Some((dk, dv)) = displaced {
                                    let (mv, me) = model.remove(&dk).expect("displaced unknown key");
                                    prop_assert_eq!(dv, mv);
                                    prop_assert!(dk == key || me <= now, "displaced a live entry");
                                }
                                model.insert(key, (v, now + ttl));
                            }
                            Err(TableFull) => prop_assert!(!ok, "refused with room"),
                        }
                    }
                    Op::Get(key) => {
                        let want = model.get(&key).filter(|&&(_, e)| now < e).map(|&(v, _)| v);
                        prop_assert_eq!(t.get(&key, now).copied(), want);
                        prop_assert_eq!(t.get_mut(&key, now).map(|v| *v), want);
                        let want_exp = model.get(&key).filter(|&&(_, e)| now < e).map(|&(_, e)| e);
                        prop_assert_eq!(t.expires_at(&key, now), want_exp);
                    }
                    Op::Touch(key, ttl) => {
                        let is_live = model.get(&key).is_some_and(|&(_, e)| now < e);
                        prop_assert_eq!(t.touch(&key, now + ttl, now), is_live);
                        if is_live {
                            if let Some(m) = model.get_mut(&key) {
                                m.1 = now + ttl;
                            }
                        }
                    }
                    Op::Remove(key) => {
                        let m = model.remove(&key);
                        // Every physical removal is reported, so the model knows exactly
                        // what is stored, expired or not.
                        prop_assert_eq!(t.remove(&key), m.map(|(v, _)| v));
                    }
                    Op::Advance(d) => now += d,
                    Op::Expire(work) => {
                        let mut gone = Vec::new();
                        let n = t.expire_with(now, work, |k, v| gone.push((k, v)));
                        prop_assert_eq!(n, gone.len());
                        prop_assert!(n <= work);
                        for (k, v) in gone {
                            let (mv, me) = model.remove(&k).expect("swept unknown key");
                            prop_assert_eq!(v, mv);
                            prop_assert!(me <= now, "swept a live entry");
                        }
                        if work == usize::MAX {
                            prop_assert_eq!(t.len(), live(&model, now), "a full sweep left expired entries");
                        }
                    }
                }
                t.check_invariants();
                let l = live(&model, now);
                prop_assert_eq!(t.len(), model.len());
                prop_assert!(l <= cap && t.len() <= cap);
                prop_assert_eq!(t.iter(now).count(), l);
            }
        }
    }
}
