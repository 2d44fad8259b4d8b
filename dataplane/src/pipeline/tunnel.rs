//! The AVES data tunnel: a waypoint encapsulates `[IPA→IPB]` as `[IPW→IPR [IPA→IPB]]`
//! and authenticates it (seed §3.2); the gateway verifies and decapsulates it.
//!
//! On the wire (`docs/protocol.md`, "Data tunnel"; why UDP: decision 0004):
//!
//! ```text
//! [eth][outer IPv4 W→R, proto 17][UDP sport→4797, cksum 0][AVES 20 B][inner IPv4 A→B ...]
//! ```
//!
//! - Outer IPv4: no options, TTL [`OUTER_TTL`], DF copied from the inner header, ident
//!   from the caller (a per-core counter), DSCP and ECN copied from the inner header
//!   (RFC 6040 §4.1 "normal mode"; decapsulation applies RFC 6040 §4.2).
//! - UDP: source port [`source_port`] (a hash of the inner flow in the RFC 6335 dynamic
//!   range, so receive-side RSS spreads tunnelled flows over cores), destination port
//!   [`AVES_UDP_PORT`] unless configured otherwise, checksum 0 (allowed over IPv4, RFC
//!   768; the tag covers more than the checksum would).
//! - Tag: HMAC (crate::auth) over outer src ‖ outer dst ‖ UDP dst port ‖ AVES header bytes
//!   0..4 ‖ the covered inner bytes: the whole inner datagram, or with `H` its header and
//!   the first min(20, rest) payload bytes ([`covered_inner`]).
//!
//! Invariants: neither function allocates or panics on any input. On failure both
//! return a drop reason and leave the buffer exactly as it was: every check runs before
//! the first write. [`decapsulate`] trusts no byte beyond what locates the tag until the
//! tag verifies (compared in constant time); the inner datagram is validated only after
//! authentication, so a tampered inner datagram counts as `AuthBadTag`, never as malformed.

use std::net::Ipv4Addr;

use crate::auth::{self, Key, Keyring};
use crate::buf::PacketBuf;
use crate::counters::DropReason;
use crate::wire::aves::{self, AvesRepr};
use crate::wire::checksum;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::ipv4::{self, protocol, Ipv4Repr};
use crate::wire::udp::{self, UdpRepr};
use crate::wire::WireError;

/// The default UDP destination port of the tunnel (configurable per deployment).
pub const AVES_UDP_PORT: u16 = 4797;

/// Bytes the tunnel adds to the inner datagram: outer IPv4 (20) + UDP (8) + AVES (20).
/// A waypoint on a 1500-byte path advertises an MTU of 1500 − 48 = 1452.
pub const OVERHEAD: usize = ipv4::MIN_HEADER_LEN + udp::HEADER_LEN + aves::HEADER_LEN;

/// TTL of the outer header.
pub const OUTER_TTL: u8 = 64;

/// First port of the RFC 6335 §6 dynamic range, where tunnel source ports live.
pub const SOURCE_PORT_BASE: u16 = 49152;

/// Inner payload bytes covered in headers-only (`H`) mode: enough for both ports and,
/// for TCP, sequence and acknowledgement numbers, data offset, flags and window; for
/// ICMP the type, code, checksum and identifier/sequence (seed §5.4).
pub const HEADERS_ONLY_PAYLOAD: usize = 20;

const ETH: usize = ethernet::HEADER_LEN;
/// Protocol number of SCTP (RFC 9260), whose first four bytes are ports too.
const SCTP: u8 = 132;

/// ECN codepoints (RFC 3168 §5).
mod ecn {
    pub const NOT_ECT: u8 = 0b00;
    pub const ECT1: u8 = 0b01;
    pub const ECT0: u8 = 0b10;
    pub const CE: u8 = 0b11;
    pub const MASK: u8 = 0b11;
}

/// What the waypoint puts around a translated packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outer {
    /// Outer source: the waypoint address W the initiator used (seed §3.2).
    pub src: Ipv4Addr,
    /// Outer destination: the gateway R.
    pub dst: Ipv4Addr,
    /// UDP destination port ([`AVES_UDP_PORT`] by default).
    pub dst_port: u16,
    /// Outer IPv4 identification (from the core's counter).
    pub ident: u16,
    /// AVES flags: [`aves::FLAG_H`], [`aves::FLAG_M`] (other bits are not written).
    pub flags: u8,
}

/// What the gateway learns from an authentic tunnel packet besides the inner datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decapsulated {
    /// Outer source: the waypoint address W (replies leave as `[W→A]`, seed §3.2).
    pub outer_src: Ipv4Addr,
    /// Outer destination: the gateway's own address.
    pub outer_dst: Ipv4Addr,
    /// AVES flags (`H`, `M`).
    pub flags: u8,
    /// The key id that verified.
    pub key_id: u8,
}

/// The inner bytes the tag covers: all of `inner`, or with `headers_only` its first
/// IHL × 4 + [`HEADERS_ONLY_PAYLOAD`] bytes (fewer when it is shorter). IHL is read from
/// the first byte as is; both ends compute the same slice from the same bytes, and a
/// changed IHL changes that byte, which is always covered.
pub fn covered_inner(inner: &[u8], headers_only: bool) -> &[u8] {
    if !headers_only {
        return inner;
    }
    let ihl = inner.first().map_or(0, |b| usize::from(b & 0x0f) * 4);
    let n = inner.len().min(ihl + HEADERS_ONLY_PAYLOAD);
    &inner[..n]
}

/// FNV-1a's 32-bit offset basis.
const FNV_BASIS: u32 = 0x811c_9dc5;

/// FNV-1a, 32 bits (offset basis 0x811c9dc5, prime 0x01000193).
#[cfg(test)]
fn fnv1a(bytes: &[u8]) -> u32 {
    fnv1a_from(FNV_BASIS, bytes)
}

/// FNV-1a continued from `state` (the hash of the bytes before `bytes`).
#[inline]
fn fnv1a_from(state: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(state, |h: u32, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The first four payload bytes (the ports) of a TCP, UDP or SCTP datagram that is not
/// a fragment; None otherwise (or when the payload is shorter).
#[inline]
fn transport_ports<T: AsRef<[u8]>>(inner: &ipv4::Packet<T>) -> Option<&[u8]> {
    if matches!(inner.protocol(), protocol::TCP | protocol::UDP | SCTP) && !inner.is_fragment() {
        inner.payload().get(..4)
    } else {
        None
    }
}

/// The outer UDP source port for an inner datagram:
/// `49152 + FNV-1a(src ‖ dst ‖ protocol ‖ sport ‖ dport) % 16384`. Ports are the first
/// four payload bytes for TCP, UDP and SCTP when the datagram is not a fragment, zero
/// otherwise (so all fragments of a datagram take one port).
pub fn source_port<T: AsRef<[u8]>>(inner: &ipv4::Packet<T>) -> u16 {
    let mut key = [0u8; 13];
    key[0..4].copy_from_slice(&inner.src().octets());
    key[4..8].copy_from_slice(&inner.dst().octets());
    key[8] = inner.protocol();
    if let Some(ports) = transport_ports(inner) {
        key[9..13].copy_from_slice(ports);
    }
    // 16384 is a power of two: the modulo is a mask, and the sum stays below 65536.
    SOURCE_PORT_BASE + (fnv1a_from(FNV_BASIS, &key) & 0x3fff) as u16
}

/// [`source_port`] with FNV-1a's state after the two addresses remembered for the last
/// address pair seen: FNV-1a is a chain of dependent multiplies, 13 of them per packet,
/// which profiles of the waypoint showed; packets of one binding share their addresses,
/// so most packets hash only protocol and ports (5 bytes). Gives the same port as
/// [`source_port`] for every datagram.
#[derive(Clone, Copy, Debug, Default)]
pub struct SourcePorts {
    last: Option<([u8; 8], u32)>,
}

impl SourcePorts {
    /// The outer UDP source port for `inner` (see [`source_port`]).
    #[inline]
    pub fn port<T: AsRef<[u8]>>(&mut self, inner: &ipv4::Packet<T>) -> u16 {
        let mut addrs = [0u8; 8];
        addrs[0..4].copy_from_slice(&inner.src().octets());
        addrs[4..8].copy_from_slice(&inner.dst().octets());
        let state = match self.last {
            Some((a, st)) if a == addrs => st,
            _ => {
                let st = fnv1a_from(FNV_BASIS, &addrs);
                self.last = Some((addrs, st));
                st
            }
        };
        let mut rest = [0u8; 5];
        rest[0] = inner.protocol();
        if let Some(ports) = transport_ports(inner) {
            rest[1..5].copy_from_slice(ports);
        }
        SOURCE_PORT_BASE + (fnv1a_from(state, &rest) & 0x3fff) as u16
    }
}

fn ip_error(e: WireError) -> DropReason {
    match e {
        WireError::Truncated => DropReason::Truncated,
        _ => DropReason::Ipv4Malformed,
    }
}

/// Encapsulates the Ethernet frame in `buf` (Ethernet + an inner IPv4 datagram, already
/// translated, checksums valid) for `outer` with key id `key_id`, leaving the tag to be
/// computed over [`mac_message`] and written with [`set_tag`].
///
/// Afterwards `buf` is `[eth][outer IPv4][UDP][AVES][inner]`: the Ethernet header is a
/// copy of the old one (the caller sets the MACs), the outer header checksum is filled,
/// Ethernet padding after the inner datagram is removed. Drops: `Truncated`,
/// `UnsupportedEtherType`, `Ipv4Malformed` for a bad inner frame, `TunnelOversize`,
/// `NoHeadroom` (fewer than [`OVERHEAD`] bytes in front). MTU checks and fragmentation
/// are the caller's.
pub fn encapsulate_untagged<B: PacketBuf>(
    buf: &mut B,
    outer: &Outer,
    key_id: u8,
) -> Result<(), DropReason> {
    encapsulate_untagged_with(buf, outer, key_id, &mut SourcePorts::default())
}

/// [`encapsulate_untagged`] with the caller's [`SourcePorts`] (kept across packets, so
/// that the outer source port of a binding's packets costs 5 hash steps, not 13).
pub fn encapsulate_untagged_with<B: PacketBuf>(
    buf: &mut B,
    outer: &Outer,
    key_id: u8,
    ports: &mut SourcePorts,
) -> Result<(), DropReason> {
    let (eth, inner_len, dscp_ecn, dont_frag, src_port) = {
        let frame = ethernet::Frame::new_checked(buf.data()).map_err(|_| DropReason::Truncated)?;
        if frame.ethertype() != ethertype::IPV4 {
            return Err(DropReason::UnsupportedEtherType);
        }
        let inner = ipv4::Packet::new_checked(frame.payload()).map_err(ip_error)?;
        let mut eth = [0u8; ETH];
        eth.copy_from_slice(&buf.data()[..ETH]);
        (
            eth,
            usize::from(inner.total_len()),
            inner.dscp_ecn(),
            inner.dont_frag(),
            ports.port(&inner),
        )
    };
    let Ok(outer_payload_len) = u16::try_from(udp::HEADER_LEN + aves::HEADER_LEN + inner_len)
    else {
        return Err(DropReason::TunnelOversize);
    };
    if usize::from(outer_payload_len) + ipv4::MIN_HEADER_LEN > usize::from(u16::MAX) {
        return Err(DropReason::TunnelOversize);
    }
    let padding = buf.len() - ETH - inner_len;
    // Headroom first: when it is short nothing has changed yet.
    if !buf.prepend(OVERHEAD) {
        return Err(DropReason::NoHeadroom);
    }
    // Cannot fail: padding is at most the old length.
    buf.trim(padding);

    // Written straight into the frame, field by field; nothing written is read back
    // (a load of bytes just stored by narrower stores stalls store-to-load forwarding:
    // reading the AVES header back for the tag input showed in profiles).
    let d = buf.data_mut();
    let Some(front) = d.get_mut(..ETH + OVERHEAD) else {
        // Cannot happen: the frame holds OVERHEAD bytes more than the Ethernet header
        // and inner datagram it was checked to hold.
        return Err(DropReason::Truncated);
    };
    let (eth_bytes, ip_bytes) = front.split_at_mut(ETH);
    eth_bytes.copy_from_slice(&eth);
    let (ip_bytes, udp_bytes) = ip_bytes.split_at_mut(ipv4::MIN_HEADER_LEN);
    let ip_repr = Ipv4Repr {
        src: outer.src,
        dst: outer.dst,
        protocol: protocol::UDP,
        payload_len: outer_payload_len,
        ttl: OUTER_TTL,
        dscp_ecn,
        ident: outer.ident,
        dont_frag,
    };
    ip_repr.emit(&mut ipv4::Packet::new_unchecked(&mut *ip_bytes));
    let (udp_bytes, aves_bytes) = udp_bytes.split_at_mut(udp::HEADER_LEN);
    let udp_repr = UdpRepr {
        src_port,
        dst_port: outer.dst_port,
    };
    udp_repr.emit(
        &mut udp::Packet::new_unchecked(&mut *udp_bytes),
        outer_payload_len - udp::HEADER_LEN as u16,
    );
    let aves_repr = AvesRepr {
        flags: outer.flags,
        key_id,
    };
    let authenticated = aves_repr.authenticated_bytes();
    aves_repr.emit(&mut aves::Header::new_unchecked(&mut *aves_bytes));
    // Stage the tag input so that it is one contiguous range (see [`mac_message`]): the
    // 14 bytes that precede the inner datagram in the HMAC input go into the last 14
    // bytes of the tag field, right in front of the inner datagram.
    let staged = &mut aves_bytes[aves::HEADER_LEN - MAC_PREFIX_LEN..aves::HEADER_LEN];
    staged[0..4].copy_from_slice(&outer.src.octets());
    staged[4..8].copy_from_slice(&outer.dst.octets());
    staged[8..10].copy_from_slice(&outer.dst_port.to_be_bytes());
    staged[10..14].copy_from_slice(&authenticated);
    Ok(())
}

/// Bytes of the HMAC input in front of the inner datagram: outer source and destination
/// (8), UDP destination port (2), AVES header bytes 0..4 (4).
pub const MAC_PREFIX_LEN: usize = 14;
/// Offset of the AVES tag in a frame [`encapsulate_untagged`] wrote.
const TAG_AT: usize = ETH + ipv4::MIN_HEADER_LEN + udp::HEADER_LEN + aves::AUTHENTICATED_LEN;

/// The HMAC input of a frame [`encapsulate_untagged`] wrote, as one contiguous slice:
/// the staged 14-byte prefix followed by the covered inner bytes (all of the inner
/// datagram, or its headers with flag `H`). None if `frame` is not such a frame.
pub fn mac_message(frame: &[u8]) -> Option<&[u8]> {
    let start = TAG_AT + aves::TAG_LEN - MAC_PREFIX_LEN;
    let inner_at = TAG_AT + aves::TAG_LEN;
    let flags_at = ETH + ipv4::MIN_HEADER_LEN + udp::HEADER_LEN;
    let headers_only = frame.get(flags_at)? & aves::FLAG_H != 0;
    let covered = covered_inner(frame.get(inner_at..)?, headers_only).len();
    frame.get(start..inner_at + covered)
}

/// Writes `tag` into the tag field of a frame [`encapsulate_untagged`] wrote (replacing
/// the staged prefix). False if the frame is too short.
pub fn set_tag(frame: &mut [u8], tag: &[u8; aves::TAG_LEN]) -> bool {
    match frame.get_mut(TAG_AT..TAG_AT + aves::TAG_LEN) {
        Some(t) => {
            t.copy_from_slice(tag);
            true
        }
        None => false,
    }
}

/// Encapsulates and signs with `key` one packet at a time: [`encapsulate_untagged`],
/// then the portable HMAC over [`mac_message`], then [`set_tag`]. A burst can instead be
/// signed together by a multi-buffer engine between the first and the last step.
pub fn encapsulate<B: PacketBuf>(buf: &mut B, outer: &Outer, key: &Key) -> Result<(), DropReason> {
    encapsulate_untagged(buf, outer, key.id())?;
    let tag = match mac_message(buf.data()) {
        Some(m) => auth::tag(key, &[m]),
        None => return Err(DropReason::TunnelMalformed),
    };
    set_tag(buf.data_mut(), &tag);
    Ok(())
}

/// Checks and strips the tunnel around the frame in `buf` (Ethernet + a complete,
/// reassembled outer IPv4 datagram addressed to us), accepting keys from `keys` and
/// UDP destination port `port`.
///
/// Order: outer Ethernet/IPv4 (header checksum) → UDP to `port` → AVES header → key id
/// → tag (constant time) → inner IPv4 → RFC 6040 ECN. Only then is the buffer changed:
/// outer IP (options included), UDP and AVES headers go, the Ethernet header is kept in
/// front of the inner datagram, trailing Ethernet padding is removed, and a CE mark on
/// the outer header is copied to the inner one (checksum updated, RFC 1624).
///
/// Drops: `Truncated`, `UnsupportedEtherType`, `Ipv4Malformed`, `Ipv4Checksum` (outer);
/// `LocalUnhandled` (not UDP, or not to `port`); `TunnelMalformed`; `AuthUnknownKey`;
/// `AuthBadTag`; `TunnelInnerMalformed`; `TunnelCeNotEct`.
pub fn decapsulate<B: PacketBuf>(
    buf: &mut B,
    keys: &Keyring,
    port: u16,
) -> Result<Decapsulated, DropReason> {
    let received = stage_received(buf, keys, port)?;
    let verdict = match (keys.get(received.key_id), received_mac_message(buf.data())) {
        (None, _) => Err(DropReason::AuthUnknownKey),
        (_, None) => Err(DropReason::TunnelMalformed),
        (Some(key), Some(msg)) => {
            auth::verify_tag(key, &[msg], &received.tag).map_err(|_| DropReason::AuthBadTag)
        }
    };
    // Every refusal leaves the frame as it arrived: the staged MAC prefix is taken out
    // again, also when an authentic packet carries a malformed inner datagram.
    let result = verdict.and_then(|()| finish_decapsulate(buf));
    if result.is_err() {
        restore_tag(buf, &received);
    }
    result
}

/// What [`stage_received`] took out of a tunnel packet: the key id and the tag it
/// carried, to be checked against the HMAC of [`received_mac_message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The key id in the AVES header (known to the keyring).
    pub key_id: u8,
    /// The tag the packet carried.
    pub tag: [u8; aves::TAG_LEN],
    /// Where the tag field is in the frame.
    tag_at: usize,
}

/// First half of [`decapsulate`], for verifying a whole burst at once: every check
/// before the tag (outer Ethernet/IPv4 and its checksum, UDP to `port`, the AVES header,
/// a key id the keyring holds), then the received tag is taken out and the HMAC input is
/// staged as one contiguous range ([`received_mac_message`]). The caller verifies the tag
/// (constant time), then calls [`finish_decapsulate`] — or [`restore_tag`] and drops.
pub fn stage_received<B: PacketBuf>(
    buf: &mut B,
    keys: &Keyring,
    port: u16,
) -> Result<Received, DropReason> {
    let (received, prefix) = {
        let frame = ethernet::Frame::new_checked(buf.data()).map_err(|_| DropReason::Truncated)?;
        if frame.ethertype() != ethertype::IPV4 {
            return Err(DropReason::UnsupportedEtherType);
        }
        let ip = ipv4::Packet::new_checked(frame.payload()).map_err(ip_error)?;
        if !ip.verify_checksum() {
            return Err(DropReason::Ipv4Checksum);
        }
        if ip.protocol() != protocol::UDP {
            return Err(DropReason::LocalUnhandled);
        }
        // The tag covers the whole datagram: fragments must be reassembled first.
        if ip.is_fragment() {
            return Err(DropReason::TunnelMalformed);
        }
        let u = udp::Packet::new_checked(ip.payload()).map_err(|_| DropReason::TunnelMalformed)?;
        if u.dst_port() != port {
            return Err(DropReason::LocalUnhandled);
        }
        if usize::from(u.len()) != ip.payload().len() || !u.verify_checksum_v4(ip.src(), ip.dst()) {
            return Err(DropReason::TunnelMalformed);
        }
        let h = aves::Header::new_checked(u.payload()).map_err(|_| DropReason::TunnelMalformed)?;
        if keys.get(h.key_id()).is_none() {
            return Err(DropReason::AuthUnknownKey);
        }
        let mut tag = [0u8; aves::TAG_LEN];
        tag.copy_from_slice(h.tag());
        let mut prefix = [0u8; MAC_PREFIX_LEN];
        prefix[0..4].copy_from_slice(&ip.src().octets());
        prefix[4..8].copy_from_slice(&ip.dst().octets());
        prefix[8..10].copy_from_slice(&port.to_be_bytes());
        prefix[10..14].copy_from_slice(h.authenticated());
        let tag_at = ETH + ip.header_len() + udp::HEADER_LEN + aves::AUTHENTICATED_LEN;
        (
            Received {
                key_id: h.key_id(),
                tag,
                tag_at,
            },
            prefix,
        )
    };
    let at = received.tag_at + aves::TAG_LEN - MAC_PREFIX_LEN;
    if let Some(f) = buf.data_mut().get_mut(at..at + MAC_PREFIX_LEN) {
        f.copy_from_slice(&prefix);
    }
    Ok(received)
}

/// The HMAC input of a frame [`stage_received`] staged (outer IP options allowed).
pub fn received_mac_message(frame: &[u8]) -> Option<&[u8]> {
    let ip = frame.get(ETH..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let flags_at = ETH + ihl + udp::HEADER_LEN;
    let tag_at = flags_at + aves::AUTHENTICATED_LEN;
    let inner_at = tag_at + aves::TAG_LEN;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let inner = frame.get(inner_at..ETH + total)?;
    let headers_only = frame.get(flags_at)? & aves::FLAG_H != 0;
    let covered = covered_inner(inner, headers_only).len();
    frame.get(inner_at - MAC_PREFIX_LEN..inner_at + covered)
}

/// Puts the received tag back (the frame is then as it arrived).
pub fn restore_tag<B: PacketBuf>(buf: &mut B, received: &Received) {
    if let Some(f) = buf
        .data_mut()
        .get_mut(received.tag_at..received.tag_at + aves::TAG_LEN)
    {
        f.copy_from_slice(&received.tag);
    }
}

/// Second half of [`decapsulate`], once the tag has verified: checks the inner datagram,
/// strips outer IP (options too), UDP and AVES headers keeping the Ethernet header,
/// removes trailing padding and applies RFC 6040 ECN. On error the buffer is unchanged
/// (every check comes before the first write).
pub fn finish_decapsulate<B: PacketBuf>(buf: &mut B) -> Result<Decapsulated, DropReason> {
    let (info, strip, keep, inner_ecn) = {
        let frame = ethernet::Frame::new_checked(buf.data()).map_err(|_| DropReason::Truncated)?;
        let ip = ipv4::Packet::new_checked(frame.payload()).map_err(ip_error)?;
        let u = udp::Packet::new_checked(ip.payload()).map_err(|_| DropReason::TunnelMalformed)?;
        let h = aves::Header::new_checked(u.payload()).map_err(|_| DropReason::TunnelMalformed)?;
        // Authentic from here on.
        let inner =
            ipv4::Packet::new_checked(h.payload()).map_err(|_| DropReason::TunnelInnerMalformed)?;
        if usize::from(inner.total_len()) != h.payload().len() || !inner.verify_checksum() {
            return Err(DropReason::TunnelInnerMalformed);
        }
        let inner_ecn = decapsulated_ecn(ip.dscp_ecn(), inner.dscp_ecn())?;
        let info = Decapsulated {
            outer_src: ip.src(),
            outer_dst: ip.dst(),
            flags: h.flags(),
            key_id: h.key_id(),
        };
        let strip = ip.header_len() + udp::HEADER_LEN + aves::HEADER_LEN;
        let keep = usize::from(inner.total_len());
        let ecn_change = (inner_ecn != inner.dscp_ecn() & ecn::MASK).then_some(inner_ecn);
        (info, strip, keep, ecn_change)
    };

    let mut eth = [0u8; ETH];
    eth.copy_from_slice(&buf.data()[..ETH]);
    // Neither can fail: the checks above found ETH + strip + keep bytes in the frame.
    buf.trim(buf.len() - ETH - strip - keep);
    buf.adj(strip);
    let d = buf.data_mut();
    let (eth_bytes, inner_bytes) = d.split_at_mut(ETH);
    eth_bytes.copy_from_slice(&eth);
    if let Some(new_ecn) = inner_ecn {
        let mut inner = ipv4::Packet::new_unchecked(inner_bytes);
        // RFC 1624 over the version/IHL + DSCP/ECN word.
        let ver_ihl = u16::from(inner.header()[0]) << 8;
        let old = inner.dscp_ecn();
        let new = (old & !ecn::MASK) | new_ecn;
        inner.set_dscp_ecn(new);
        let c = checksum::update16(
            inner.checksum(),
            ver_ihl | u16::from(old),
            ver_ihl | u16::from(new),
        );
        inner.set_checksum(c);
    }
    Ok(info)
}

/// The inner ECN codepoint after decapsulation (RFC 6040 §4.2, figure 4), or the drop
/// RFC 6040 demands for CE over Not-ECT.
fn decapsulated_ecn(outer: u8, inner: u8) -> Result<u8, DropReason> {
    let (o, i) = (outer & ecn::MASK, inner & ecn::MASK);
    Ok(match (i, o) {
        (ecn::NOT_ECT, ecn::CE) => return Err(DropReason::TunnelCeNotEct),
        (_, ecn::CE) => ecn::CE,
        (ecn::ECT0, ecn::ECT1) => ecn::ECT1,
        (i, _) => i,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Algorithm;
    use crate::buf::VecBuf;
    use crate::wire::aves::{FLAG_H, FLAG_M};
    use proptest::prelude::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
    const W: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
    const R: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const ETH_HDR: [u8; ETH] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];

    // Absolute offsets in an encapsulated frame.
    const O_IP: usize = ETH;
    const O_UDP: usize = O_IP + 20;
    const O_AVES: usize = O_UDP + 8;
    const O_INNER: usize = O_AVES + 20;

    fn key(alg: Algorithm, id: u8) -> Key {
        Key::new(id, alg, b"tunnel secret of 24 byte").unwrap()
    }

    fn outer(flags: u8) -> Outer {
        Outer {
            src: W,
            dst: R,
            dst_port: AVES_UDP_PORT,
            ident: 0x1234,
            flags,
        }
    }

    /// An inner IPv4 datagram A→B carrying `proto` with `payload`.
    fn inner(proto: u8, payload: &[u8], dscp_ecn: u8, df: bool) -> Vec<u8> {
        let mut v = vec![0u8; 20 + payload.len()];
        Ipv4Repr {
            src: A,
            dst: B,
            protocol: proto,
            payload_len: payload.len() as u16,
            ttl: 63,
            dscp_ecn,
            ident: 0xbeef,
            dont_frag: df,
        }
        .emit(&mut ipv4::Packet::new_unchecked(&mut v[..]));
        v[20..].copy_from_slice(payload);
        v
    }

    /// A UDP datagram 40000 → 53 inside an inner IPv4 datagram, in a frame.
    fn frame(payload_len: usize) -> Vec<u8> {
        let mut udp = vec![0u8; 8 + payload_len];
        UdpRepr {
            src_port: 40000,
            dst_port: 53,
        }
        .emit(
            &mut udp::Packet::new_unchecked(&mut udp[..]),
            payload_len as u16,
        );
        for (i, b) in udp[8..].iter_mut().enumerate() {
            *b = i as u8;
        }
        udp::Packet::new_unchecked(&mut udp[..]).fill_checksum_v4(A, B);
        [&ETH_HDR[..], &inner(protocol::UDP, &udp, 0, true)].concat()
    }

    fn encap(frame: &[u8], flags: u8, key: &Key) -> VecBuf {
        let mut b = VecBuf::from_slice(frame);
        encapsulate(&mut b, &outer(flags), key).unwrap();
        b
    }

    #[test]
    fn overhead_and_mtu() {
        assert_eq!(OVERHEAD, 48);
        assert_eq!(1500 - OVERHEAD, 1452);
    }

    #[test]
    fn encapsulated_layout() {
        let f = frame(30);
        let k = key(Algorithm::HmacMd5, 7);
        let b = encap(&f, FLAG_M, &k);
        let d = b.data();
        assert_eq!(d.len(), f.len() + OVERHEAD);
        assert_eq!(&d[..ETH], &ETH_HDR);
        let ip = ipv4::Packet::new_checked(&d[O_IP..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src(), ip.dst()), (W, R));
        assert_eq!(ip.protocol(), protocol::UDP);
        assert_eq!(ip.ttl(), OUTER_TTL);
        assert_eq!(ip.ident(), 0x1234);
        assert!(ip.dont_frag(), "DF copied from the inner header");
        assert_eq!(ip.header_len(), 20);
        assert_eq!(usize::from(ip.total_len()), d.len() - ETH);
        let u = udp::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(u.dst_port(), AVES_UDP_PORT);
        assert!(u.src_port() >= SOURCE_PORT_BASE);
        assert_eq!(usize::from(u.len()), d.len() - O_UDP);
        assert_eq!(u.checksum(), 0);
        let h = aves::Header::new_checked(u.payload()).unwrap();
        assert_eq!((h.version(), h.flags(), h.key_id()), (1, FLAG_M, 7));
        assert_ne!(h.tag(), &[0u8; 16]);
        assert_eq!(h.payload(), &f[ETH..]);
        // The tag is the HMAC of the documented input, computed independently here.
        let mut msg = Vec::new();
        msg.extend_from_slice(&W.octets());
        msg.extend_from_slice(&R.octets());
        msg.extend_from_slice(&AVES_UDP_PORT.to_be_bytes());
        msg.extend_from_slice(&d[O_AVES..O_AVES + 4]);
        msg.extend_from_slice(&f[ETH..]);
        assert_eq!(h.tag(), &auth::tag(&k, &[&msg])[..]);
    }

    #[test]
    fn round_trips_both_algorithms_and_modes() {
        for alg in [Algorithm::HmacMd5, Algorithm::HmacSha256_128] {
            for flags in [0, FLAG_H, FLAG_M, FLAG_H | FLAG_M] {
                for len in [0, 1, 19, 20, 21, 100, 1400] {
                    let f = frame(len);
                    let k = key(alg, 3);
                    let mut b = encap(&f, flags, &k);
                    let got = decapsulate(&mut b, &Keyring::new(k), AVES_UDP_PORT).unwrap();
                    assert_eq!(
                        got,
                        Decapsulated {
                            outer_src: W,
                            outer_dst: R,
                            flags,
                            key_id: 3
                        }
                    );
                    assert_eq!(b.data(), &f[..], "{alg:?} flags {flags} len {len}");
                }
            }
        }
    }

    #[test]
    fn headers_only_covers_header_and_twenty_bytes() {
        let f = frame(100);
        let k = key(Algorithm::HmacMd5, 1);
        let ring = Keyring::new(k.clone());
        let b = encap(&f, FLAG_H, &k);
        // Inner header (20) + 20 payload bytes are covered; the next byte is not.
        let first_uncovered = O_INNER + 20 + HEADERS_ONLY_PAYLOAD;
        let mut c = b.clone();
        c.data_mut()[first_uncovered - 1] ^= 1;
        assert_eq!(
            decapsulate(&mut c, &ring, AVES_UDP_PORT),
            Err(DropReason::AuthBadTag)
        );
        let mut c = b.clone();
        c.data_mut()[first_uncovered] ^= 1;
        assert!(decapsulate(&mut c, &ring, AVES_UDP_PORT).is_ok());
        // Full mode covers that byte.
        let mut c = encap(&f, 0, &k);
        c.data_mut()[first_uncovered] ^= 1;
        let last = c.len() - 1;
        c.data_mut()[last] ^= 1;
        assert_eq!(
            decapsulate(&mut c, &ring, AVES_UDP_PORT),
            Err(DropReason::AuthBadTag)
        );
        assert_eq!(covered_inner(&[0x46; 100], true).len(), 44);
        assert_eq!(covered_inner(&[0x45; 30], true).len(), 30);
        assert_eq!(covered_inner(&[], true).len(), 0);
        assert_eq!(covered_inner(&[0x45; 30], false).len(), 30);
    }

    #[test]
    fn unknown_key_and_rollover() {
        let old = key(Algorithm::HmacMd5, 1);
        let new = Key::new(2, Algorithm::HmacSha256_128, &[9; 32]).unwrap();
        let f = frame(10);
        let mut b = encap(&f, 0, &old);
        let before = b.clone();
        assert_eq!(
            decapsulate(&mut b, &Keyring::new(new.clone()), AVES_UDP_PORT),
            Err(DropReason::AuthUnknownKey)
        );
        assert_eq!(b, before, "a refused packet is untouched");
        assert_eq!(
            decapsulate(&mut b, &Keyring::default(), AVES_UDP_PORT),
            Err(DropReason::AuthUnknownKey)
        );
        // Same id, other secret: a bad tag, not an unknown key.
        let impostor = Key::new(1, Algorithm::HmacMd5, &[0x55; 24]).unwrap();
        assert_eq!(
            decapsulate(&mut b, &Keyring::new(impostor), AVES_UDP_PORT),
            Err(DropReason::AuthBadTag)
        );
        // During a rollover both keys verify.
        let mut ring = Keyring::new(old.clone());
        ring.rotate(new.clone()).unwrap();
        assert_eq!(decapsulate(&mut b, &ring, AVES_UDP_PORT).unwrap().key_id, 1);
        let mut b = encap(&f, 0, ring.sign_key().unwrap());
        assert_eq!(decapsulate(&mut b, &ring, AVES_UDP_PORT).unwrap().key_id, 2);
    }

    #[test]
    fn outer_checks() {
        let k = key(Algorithm::HmacMd5, 1);
        let ring = Keyring::new(k.clone());
        let b = encap(&frame(40), 0, &k);
        let run = |mutate: &dyn Fn(&mut [u8]), fix_ip: bool| {
            let mut c = b.clone();
            mutate(c.data_mut());
            if fix_ip {
                ipv4::Packet::new_unchecked(&mut c.data_mut()[O_IP..]).fill_checksum();
            }
            decapsulate(&mut c, &ring, AVES_UDP_PORT)
        };
        assert_eq!(
            run(&|d| d[12] = 0x86, false),
            Err(DropReason::UnsupportedEtherType)
        );
        assert_eq!(
            run(&|d| d[O_IP + 8] ^= 1, false),
            Err(DropReason::Ipv4Checksum)
        );
        assert_eq!(
            run(&|d| d[O_IP] = 0x55, true),
            Err(DropReason::Ipv4Malformed)
        );
        assert_eq!(
            run(&|d| d[O_IP + 9] = protocol::TCP, true),
            Err(DropReason::LocalUnhandled)
        );
        // More-fragments set: an outer fragment.
        assert_eq!(
            run(&|d| d[O_IP + 6] |= 0x20, true),
            Err(DropReason::TunnelMalformed)
        );
        // UDP length shorter than the IP payload.
        assert_eq!(
            run(&|d| d[O_UDP + 5] -= 1, false),
            Err(DropReason::TunnelMalformed)
        );
        // Wrong non-zero UDP checksum; a right one is accepted.
        assert_eq!(
            run(&|d| d[O_UDP + 7] = 1, false),
            Err(DropReason::TunnelMalformed)
        );
        assert!(run(
            &|d| udp::Packet::new_unchecked(&mut d[O_UDP..]).fill_checksum_v4(W, R),
            false
        )
        .is_ok());
        // AVES version 2.
        assert_eq!(
            run(&|d| d[O_AVES] = 0x20, false),
            Err(DropReason::TunnelMalformed)
        );
        // Other port.
        let mut c = b.clone();
        assert_eq!(
            decapsulate(&mut c, &ring, 4798),
            Err(DropReason::LocalUnhandled)
        );
        // Outer IP options are stripped with the header.
        let mut with_opts = b.data()[..O_UDP].to_vec();
        with_opts.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
        with_opts.extend_from_slice(&b.data()[O_UDP..]);
        with_opts[O_IP] = 0x46;
        let total = (with_opts.len() - ETH) as u16;
        let mut p = ipv4::Packet::new_unchecked(&mut with_opts[O_IP..]);
        p.set_total_len(total);
        p.fill_checksum();
        let mut c = VecBuf::from_slice(&with_opts);
        assert!(decapsulate(&mut c, &ring, AVES_UDP_PORT).is_ok());
        assert_eq!(c.data(), &frame(40)[..]);
        // Ethernet padding after the outer datagram is removed.
        let mut padded = b.data().to_vec();
        padded.extend_from_slice(&[0; 6]);
        let mut c = VecBuf::from_slice(&padded);
        assert!(decapsulate(&mut c, &ring, AVES_UDP_PORT).is_ok());
        assert_eq!(c.data(), &frame(40)[..]);
    }

    #[test]
    fn inner_is_checked_after_authentication() {
        let k = key(Algorithm::HmacSha256_128, 1);
        let ring = Keyring::new(k.clone());
        // A waypoint bug: an inner header checksum that does not verify. Authentic, but
        // refused as inner-malformed.
        let mut f = frame(8);
        f[ETH + 10] ^= 0xff;
        let mut b = encap(&f, 0, &k);
        let arrived = b.data().to_vec();
        assert_eq!(
            decapsulate(&mut b, &ring, AVES_UDP_PORT),
            Err(DropReason::TunnelInnerMalformed)
        );
        assert_eq!(b.data(), &arrived[..], "the refused frame is as it arrived");
        // Tampered the same way after signing: a bad tag, before the inner is looked at.
        let mut b = encap(&frame(8), 0, &k);
        b.data_mut()[O_INNER + 10] ^= 0xff;
        assert_eq!(
            decapsulate(&mut b, &ring, AVES_UDP_PORT),
            Err(DropReason::AuthBadTag)
        );
    }

    #[test]
    fn encapsulate_refuses_and_leaves_the_buffer() {
        let k = key(Algorithm::HmacMd5, 1);
        let f = frame(10);
        let mut b = VecBuf::with_room(&f, OVERHEAD - 1, 4096);
        assert_eq!(
            encapsulate(&mut b, &outer(0), &k),
            Err(DropReason::NoHeadroom)
        );
        assert_eq!(b.data(), &f[..]);
        let mut b = VecBuf::with_room(&f, OVERHEAD, 4096);
        assert!(encapsulate(&mut b, &outer(0), &k).is_ok());

        let mut not_ip = f.clone();
        not_ip[12] = 0x86;
        not_ip[13] = 0xdd;
        assert_eq!(
            encapsulate(&mut VecBuf::from_slice(&not_ip), &outer(0), &k),
            Err(DropReason::UnsupportedEtherType)
        );
        for n in 0..ETH + 20 {
            let r = encapsulate(&mut VecBuf::from_slice(&f[..n]), &outer(0), &k);
            assert_eq!(r, Err(DropReason::Truncated), "{n} bytes");
        }
        let mut bad = f.clone();
        bad[ETH] = 0x44;
        assert_eq!(
            encapsulate(&mut VecBuf::from_slice(&bad), &outer(0), &k),
            Err(DropReason::Ipv4Malformed)
        );
        // 65535 - 48 inner bytes fit; one more does not.
        let mut big = [&ETH_HDR[..], &inner(253, &vec![0; 65487 - 20], 0, false)].concat();
        let mut b = VecBuf::from_slice(&big);
        assert!(encapsulate(&mut b, &outer(0), &k).is_ok());
        assert_eq!(b.len(), ETH + 65535);
        big.push(0);
        let mut p = ipv4::Packet::new_unchecked(&mut big[ETH..]);
        p.set_total_len(65488);
        p.fill_checksum();
        let mut b = VecBuf::from_slice(&big);
        assert_eq!(
            encapsulate(&mut b, &outer(0), &k),
            Err(DropReason::TunnelOversize)
        );
        assert_eq!(b.data(), &big[..]);
    }

    #[test]
    fn encapsulate_strips_inner_ethernet_padding() {
        // A 28-byte inner datagram padded to the 60-byte Ethernet minimum.
        let f = frame(0);
        assert_eq!(f.len(), 42);
        let mut padded = f.clone();
        padded.resize(60, 0);
        let k = key(Algorithm::HmacMd5, 1);
        let mut b = encap(&padded, 0, &k);
        assert_eq!(b.len(), f.len() + OVERHEAD);
        decapsulate(&mut b, &Keyring::new(k), AVES_UDP_PORT).unwrap();
        assert_eq!(b.data(), &f[..]);
    }

    #[test]
    fn source_port_hashes_the_inner_flow() {
        let ports = |sport: u16, proto: u8, frag: bool| {
            let mut payload = [0u8; 8];
            payload[..2].copy_from_slice(&sport.to_be_bytes());
            payload[2..4].copy_from_slice(&80u16.to_be_bytes());
            let mut v = inner(proto, &payload, 0, false);
            if frag {
                ipv4::Packet::new_unchecked(&mut v[..]).set_flags_frag(false, true, 0);
            }
            source_port(&ipv4::Packet::new_checked(&v[..]).unwrap())
        };
        // FNV-1a(c6 33 64 07 | 0a 00 00 05 | 06 | 04 00 | 00 50) = 0x8b231190 (computed
        // independently); 0x8b231190 % 16384 = 0x1190 = 4496; 49152 + 4496 = 53648.
        assert_eq!(ports(1024, protocol::TCP, false), 53648);
        // FNV-1a's published 32-bit test values.
        assert_eq!(fnv1a(b""), 0x811c9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c292c);
        assert_eq!(fnv1a(b"foobar"), 0xbf9cf968);
        let mut seen = std::collections::HashSet::new();
        for s in 1000..1100 {
            let p = ports(s, protocol::TCP, false);
            assert!(p >= 49152);
            assert_eq!(p, ports(s, protocol::TCP, false), "deterministic");
            seen.insert(p);
        }
        assert!(
            seen.len() > 90,
            "flows spread: {} distinct ports",
            seen.len()
        );
        // Fragments and port-less protocols hash addresses and protocol only.
        assert_eq!(
            ports(1000, protocol::UDP, true),
            ports(2000, protocol::UDP, true)
        );
        assert_eq!(
            ports(1000, protocol::ICMP, false),
            ports(2000, protocol::ICMP, false)
        );
        assert_ne!(
            ports(1000, protocol::UDP, false),
            ports(2000, protocol::UDP, false)
        );
    }

    #[test]
    fn ecn_and_dscp_follow_rfc6040() {
        let k = key(Algorithm::HmacMd5, 1);
        let ring = Keyring::new(k.clone());
        let run = |inner_tos: u8, outer_ecn: u8| {
            let mut udp = [0u8; 8];
            UdpRepr {
                src_port: 1,
                dst_port: 2,
            }
            .emit(&mut udp::Packet::new_unchecked(&mut udp[..]), 0);
            let f = [&ETH_HDR[..], &inner(protocol::UDP, &udp, inner_tos, false)].concat();
            let mut b = encap(&f, 0, &k);
            let mut ip = ipv4::Packet::new_unchecked(&mut b.data_mut()[O_IP..]);
            assert_eq!(ip.dscp_ecn(), inner_tos, "DSCP and ECN copied outward");
            let tos = (ip.dscp_ecn() & !3) | outer_ecn;
            ip.set_dscp_ecn(tos);
            ip.fill_checksum();
            decapsulate(&mut b, &ring, AVES_UDP_PORT).map(|_| {
                let p = ipv4::Packet::new_checked(&b.data()[ETH..]).unwrap();
                assert!(p.verify_checksum(), "checksum kept valid");
                p.dscp_ecn()
            })
        };
        let af41 = 34 << 2;
        assert_eq!(run(af41 | ecn::ECT0, ecn::ECT0), Ok(af41 | ecn::ECT0));
        assert_eq!(run(af41 | ecn::ECT0, ecn::CE), Ok(af41 | ecn::CE));
        assert_eq!(run(af41 | ecn::ECT1, ecn::CE), Ok(af41 | ecn::CE));
        assert_eq!(run(af41 | ecn::ECT0, ecn::ECT1), Ok(af41 | ecn::ECT1));
        assert_eq!(run(af41 | ecn::CE, ecn::CE), Ok(af41 | ecn::CE));
        assert_eq!(run(af41, ecn::NOT_ECT), Ok(af41));
        assert_eq!(run(af41, ecn::ECT0), Ok(af41));
        assert_eq!(run(af41, ecn::CE), Err(DropReason::TunnelCeNotEct));
    }

    #[test]
    fn every_truncation_is_a_drop() {
        for alg in [Algorithm::HmacMd5, Algorithm::HmacSha256_128] {
            let k = key(alg, 1);
            let ring = Keyring::new(k.clone());
            let b = encap(&frame(50), FLAG_H, &k);
            for n in 0..b.len() {
                let mut c = VecBuf::from_slice(&b.data()[..n]);
                assert!(
                    decapsulate(&mut c, &ring, AVES_UDP_PORT).is_err(),
                    "{n} bytes"
                );
                assert_eq!(c.data(), &b.data()[..n]);
            }
        }
    }

    /// What flipping bit `bit` of byte `pos` (an absolute offset of a covered byte, or
    /// of the tag) must give, with the outer header checksum fixed up as an attacker
    /// would.
    fn expected_flip(pos: usize, bit: u8) -> DropReason {
        match pos {
            // Version nibble and reserved flag bits are checked before the tag.
            p if p == O_AVES && bit >= 2 => DropReason::TunnelMalformed,
            p if p == O_AVES + 1 => DropReason::AuthUnknownKey,
            p if p == O_AVES + 2 || p == O_AVES + 3 => DropReason::TunnelMalformed,
            _ => DropReason::AuthBadTag,
        }
    }

    proptest! {
        #[test]
        fn remembered_source_ports_equal_source_port(
            packets in prop::collection::vec(
                (0u32..4, 0u32..3, prop::sample::select(vec![1u8, 6, 17, 132, 47]),
                 any::<[u8; 4]>(), any::<bool>(), 0usize..8),
                1..40),
        ) {
            // A few address pairs in any order, so the remembered state is hit, missed
            // and replaced; every protocol rule (ports or none, fragments, short payloads).
            let mut memo = SourcePorts::default();
            for (s, d, proto, ports, frag, len) in packets {
                let mut v = inner(proto, &ports[..len.min(4)], 0, false);
                let mut p = ipv4::Packet::new_unchecked(&mut v[..]);
                p.set_src(Ipv4Addr::from(0x0a00_0000 + s));
                p.set_dst(Ipv4Addr::from(0xc633_6400 + d));
                if frag {
                    p.set_flags_frag(false, true, 0);
                }
                let p = ipv4::Packet::new_checked(&v[..]).unwrap();
                prop_assert_eq!(memo.port(&p), source_port(&p));
            }
        }

        #[test]
        fn flipping_a_covered_bit_is_refused(
            md5 in any::<bool>(), headers_only in any::<bool>(),
            len in 0usize..120, which in any::<prop::sample::Index>(), bit in 0u8..8,
        ) {
            let alg = if md5 { Algorithm::HmacMd5 } else { Algorithm::HmacSha256_128 };
            let k = key(alg, 1);
            let ring = Keyring::new(k.clone());
            let flags = if headers_only { FLAG_H } else { 0 };
            let b = encap(&frame(len), flags, &k);
            let covered = covered_inner(&b.data()[O_INNER..], headers_only).len();
            // Covered positions: outer src and dst, UDP destination port, AVES 0..4,
            // covered inner bytes; plus the tag itself.
            let positions: Vec<usize> = (O_IP + 12..O_IP + 20)
                .chain(O_UDP + 2..O_UDP + 4)
                .chain(O_AVES..O_INNER)
                .chain(O_INNER..O_INNER + covered)
                .collect();
            let pos = positions[which.index(positions.len())];
            let mut c = b.clone();
            c.data_mut()[pos] ^= 1 << bit;
            ipv4::Packet::new_unchecked(&mut c.data_mut()[O_IP..]).fill_checksum();
            if (O_UDP + 2..O_UDP + 4).contains(&pos) {
                // Delivered to the port it now names (a service on another port with
                // the same keys): the tag binds the port.
                let p = u16::from_be_bytes([c.data()[O_UDP + 2], c.data()[O_UDP + 3]]);
                prop_assert_eq!(decapsulate(&mut c.clone(), &ring, AVES_UDP_PORT),
                                Err(DropReason::LocalUnhandled));
                prop_assert_eq!(decapsulate(&mut c, &ring, p), Err(DropReason::AuthBadTag));
            } else {
                let before = c.clone();
                prop_assert_eq!(decapsulate(&mut c, &ring, AVES_UDP_PORT),
                                Err(expected_flip(pos, bit)), "byte {} bit {}", pos, bit);
                prop_assert_eq!(c, before);
            }
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let ring = Keyring::new(key(Algorithm::HmacMd5, 1));
            let mut b = VecBuf::from_slice(&data);
            let _ = decapsulate(&mut b, &ring, AVES_UDP_PORT);
            let mut b = VecBuf::from_slice(&data);
            let _ = encapsulate(&mut b, &outer(FLAG_H), &key(Algorithm::HmacMd5, 1));
        }

        #[test]
        fn random_edits_of_a_valid_packet_never_panic(
            len in 0usize..80,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            fix in any::<bool>(), cut in any::<prop::sample::Index>(),
        ) {
            let k = key(Algorithm::HmacSha256_128, 1);
            let ring = Keyring::new(k.clone());
            let b = encap(&frame(len), FLAG_H, &k);
            let mut d = b.data().to_vec();
            for (i, v) in edits {
                let n = d.len();
                d[i.index(n)] = v;
            }
            if fix {
                ipv4::Packet::new_unchecked(&mut d[O_IP..]).fill_checksum();
            }
            d.truncate(ETH + cut.index(d.len() - ETH + 1));
            let mut c = VecBuf::from_slice(&d);
            if decapsulate(&mut c, &ring, AVES_UDP_PORT).is_ok() {
                // Accepted: the result is an Ethernet frame with a valid IPv4 datagram.
                let p = ipv4::Packet::new_checked(&c.data()[ETH..]).unwrap();
                prop_assert!(p.verify_checksum());
            }
        }
    }
}
