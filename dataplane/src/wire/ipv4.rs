//! IPv4 headers (RFC 791) with in-place forwarding edits (RFC 1812, RFC 1624).
//!
//! Invariants: a [`Packet`] made by [`Packet::new_checked`] satisfies
//! `20 <= header_len <= total_len <= buffer.len()` and version 4, so every getter,
//! including [`Packet::options`] and [`Packet::payload`], indexes without panicking.
//! Bytes after `total_len` are Ethernet padding: allowed, and never part of the payload.
//! The checksum covers the header only (RFC 791 §3.1). Incremental edits
//! ([`Packet::decrement_ttl`], [`Packet::set_src_incremental`],
//! [`Packet::set_dst_incremental`]) keep a correct checksum correct and a wrong one
//! wrong, as RFC 1624 §3 intends, without rereading the header.

use std::net::Ipv4Addr;

use super::checksum;
use super::{Result, WireError};

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// IP protocol numbers this dataplane knows (IANA "Assigned Internet Protocol Numbers").
pub mod protocol {
    /// Internet Control Message Protocol (RFC 792).
    pub const ICMP: u8 = 1;
    /// IPv4-in-IPv4 encapsulation (RFC 2003).
    pub const IPIP: u8 = 4;
    /// Transmission Control Protocol (RFC 9293).
    pub const TCP: u8 = 6;
    /// User Datagram Protocol (RFC 768).
    pub const UDP: u8 = 17;
    /// IPv6-in-IPv4 encapsulation (RFC 4213).
    pub const IPV6: u8 = 41;
    /// ICMP for IPv6 (RFC 4443).
    pub const ICMPV6: u8 = 58;
}

mod field {
    use std::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Don't Fragment bit of the flags/fragment-offset word (RFC 791 §3.1).
const FLAG_DF: u16 = 0x4000;
/// More Fragments bit.
const FLAG_MF: u16 = 0x2000;
/// Fragment offset mask (in 8-byte units).
const FRAG_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet (header and payload) over a byte buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it; accessors may panic on bad lengths. Use
    /// [`Packet::new_checked`] for bytes from the wire.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after [`Packet::check`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// Checks what every accessor relies on: version 4 and IHL >= 5
    /// ([`WireError::Malformed`] otherwise), the header within the buffer, a total
    /// length that covers the header ([`WireError::Malformed`]) and fits the buffer
    /// ([`WireError::Truncated`]).
    #[inline]
    pub fn check(&self) -> Result<()> {
        let d = self.buffer.as_ref();
        if d.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 4 || self.header_len() < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if d.len() < self.header_len() {
            return Err(WireError::Truncated);
        }
        let total = usize::from(self.total_len());
        if total < self.header_len() {
            return Err(WireError::Malformed);
        }
        if total > d.len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives back the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline(always)]
    fn u16_at(&self, r: std::ops::Range<usize>) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[r.start], d[r.start + 1]])
    }

    #[inline(always)]
    fn ip_at(&self, r: std::ops::Range<usize>) -> Ipv4Addr {
        let d = &self.buffer.as_ref()[r];
        // One 4-byte load, not four byte loads (and four byte stores where it is kept).
        Ipv4Addr::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
    }

    /// IP version (4 in a checked packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The DSCP and ECN byte (formerly type of service; RFC 2474, RFC 3168).
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total length of header and payload in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        self.u16_at(field::TOTAL_LEN)
    }

    /// Identification (for fragment reassembly).
    #[inline]
    pub fn ident(&self) -> u16 {
        self.u16_at(field::IDENT)
    }

    /// Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.u16_at(field::FLAGS_FRAG) & FLAG_DF != 0
    }

    /// More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.u16_at(field::FLAGS_FRAG) & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.u16_at(field::FLAGS_FRAG) & FRAG_MASK) * 8
    }

    /// True for any fragment of a larger datagram, first one included
    /// (MF set or a non-zero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.u16_at(field::FLAGS_FRAG) & (FLAG_MF | FRAG_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Payload protocol (see [`protocol`]).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// The header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        self.ip_at(field::SRC)
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        self.ip_at(field::DST)
    }

    /// The options (bytes 20..header_len), empty when IHL is 5.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// The whole header (header_len bytes), e.g. to quote it in an ICMP error.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The payload: bytes header_len..total_len (Ethernet padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }

    /// True when the header checksum verifies (RFC 1071).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.header())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn set_u16_at(&mut self, r: std::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&value.to_be_bytes());
    }

    /// Writes version 4 and the IHL for `header_len` bytes (a multiple of 4,
    /// 20..=60; lower bits and higher values are cut to fit the 4-bit field).
    #[inline]
    pub fn set_version_ihl(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) & 0x0f) as u8;
    }

    /// Sets the DSCP and ECN byte.
    #[inline]
    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }

    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, value: u16) {
        self.set_u16_at(field::TOTAL_LEN, value);
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, value: u16) {
        self.set_u16_at(field::IDENT, value);
    }

    /// Sets the DF and MF flags and the fragment offset in bytes. The offset must be a
    /// multiple of 8 below 65536 (RFC 791 §3.1); its low three bits are dropped.
    #[inline]
    pub fn set_flags_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset / 8) & FRAG_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        self.set_u16_at(field::FLAGS_FRAG, v);
    }

    /// Sets the time to live (checksum untouched; see [`Packet::decrement_ttl`]).
    #[inline]
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the payload protocol.
    #[inline]
    pub fn set_protocol(&mut self, value: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = value;
    }

    /// Sets the source address (checksum untouched).
    #[inline]
    pub fn set_src(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address (checksum untouched).
    #[inline]
    pub fn set_dst(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.octets());
    }

    /// Sets the header checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.set_u16_at(field::CHECKSUM, value);
    }

    /// Computes the header checksum from scratch and writes it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }

    /// The payload (header_len..total_len), mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[start..end]
    }

    /// The header (header_len bytes), mutable.
    #[inline]
    pub fn header_mut(&mut self) -> &mut [u8] {
        let len = self.header_len();
        &mut self.buffer.as_mut()[..len]
    }

    /// Decrements the TTL by one and updates the checksum incrementally (RFC 1624 eqn. 3
    /// over the TTL/protocol word), as a router does on forwarding (RFC 1812 §5.3.1).
    /// A TTL of 0 is left as it is: the caller drops (and answers) packets whose TTL is
    /// 1 or less before forwarding.
    #[inline]
    pub fn decrement_ttl(&mut self) {
        let ttl = self.ttl();
        if ttl == 0 {
            return;
        }
        let proto = u16::from(self.protocol());
        let old = u16::from(ttl) << 8 | proto;
        let new = u16::from(ttl - 1) << 8 | proto;
        self.set_ttl(ttl - 1);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_checksum(c);
    }

    /// Rewrites the source address and updates the header checksum incrementally
    /// (RFC 1624). The caller updates any L4 checksum that covers the pseudo-header.
    #[inline]
    pub fn set_src_incremental(&mut self, addr: Ipv4Addr) {
        let c = checksum::update32(self.checksum(), self.src().into(), addr.into());
        self.set_src(addr);
        self.set_checksum(c);
    }

    /// Rewrites the destination address and updates the header checksum incrementally
    /// (RFC 1624). The caller updates any L4 checksum that covers the pseudo-header.
    #[inline]
    pub fn set_dst_incremental(&mut self, addr: Ipv4Addr) {
        let c = checksum::update32(self.checksum(), self.dst().into(), addr.into());
        self.set_dst(addr);
        self.set_checksum(c);
    }
}

/// The meaning of an IPv4 header, without options and fragmentation state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Payload protocol (see [`protocol`]).
    pub protocol: u8,
    /// Payload length in bytes (total length minus header length); at most 65515 so
    /// that the total fits 16 bits.
    pub payload_len: u16,
    /// Time to live.
    pub ttl: u8,
    /// DSCP and ECN byte.
    pub dscp_ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment flag.
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// Reads a header after [`Packet::check`] and a checksum check
    /// ([`WireError::Checksum`]). Options are skipped and fragments accepted: callers
    /// that care read [`Packet::options`] and [`Packet::is_fragment`].
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Ipv4Repr> {
        packet.check()?;
        if !packet.verify_checksum() {
            return Err(WireError::Checksum);
        }
        Ok(Ipv4Repr {
            src: packet.src(),
            dst: packet.dst(),
            protocol: packet.protocol(),
            // check() guarantees header_len <= total_len, and header_len <= 60.
            payload_len: packet.total_len() - packet.header_len() as u16,
            ttl: packet.ttl(),
            dscp_ecn: packet.dscp_ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
        })
    }

    /// Bytes [`Ipv4Repr::emit`] writes: [`MIN_HEADER_LEN`] (no options).
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        MIN_HEADER_LEN
    }

    /// Writes a 20-byte header (no options, MF clear, offset 0) into the first
    /// [`MIN_HEADER_LEN`] bytes of `packet`, which must be that long, and fills the
    /// checksum. The payload is the caller's.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        // The checksum is summed from the field values and the header written as three
        // words: nothing written is read back (a load of bytes just stored by narrower
        // stores stalls store-to-load forwarding; this runs for every packet a waypoint
        // encapsulates).
        let total = self.payload_len.saturating_add(MIN_HEADER_LEN as u16);
        let flags = if self.dont_frag { FLAG_DF } else { 0 };
        let ver_tos = 0x4500 | u16::from(self.dscp_ecn);
        let ttl_proto = u16::from(self.ttl) << 8 | u16::from(self.protocol);
        let (src, dst) = (u32::from(self.src), u32::from(self.dst));
        let sum = u32::from(ver_tos)
            + u32::from(total)
            + u32::from(self.ident)
            + u32::from(flags)
            + u32::from(ttl_proto)
            + (src >> 16)
            + (src & 0xffff)
            + (dst >> 16)
            + (dst & 0xffff);
        let c = !checksum::fold(sum);
        let w0 = u64::from(ver_tos) << 48
            | u64::from(total) << 32
            | u64::from(self.ident) << 16
            | u64::from(flags);
        let w1 = u64::from(ttl_proto) << 48 | u64::from(c) << 32 | u64::from(src);
        let h = &mut packet.buffer.as_mut()[..MIN_HEADER_LEN];
        h[0..8].copy_from_slice(&w0.to_be_bytes());
        h[8..16].copy_from_slice(&w1.to_be_bytes());
        h[16..20].copy_from_slice(&dst.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A Linux `ping -c1 8.8.8.8` from 192.168.1.10: DF, TTL 64, ident 0x1c46, an
    // 8-byte ICMP header and 56 data bytes. Header checksum 0x4ca1 (hand-checked).
    const PING: [u8; 84] = [
        0x45, 0x00, 0x00, 0x54, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x4c, 0xa1, 0xc0, 0xa8, 0x01,
        0x0a, 0x08, 0x08, 0x08, 0x08, // ICMP echo request
        0x08, 0x00, 0xdb, 0xcd, 0x0d, 0x2f, 0x00, 0x01, 0x9a, 0x3b, 0x5e, 0x65, 0x00, 0x00, 0x00,
        0x00, 0x4c, 0x8e, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
        0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24,
        0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
        0x34, 0x35, 0x36, 0x37,
    ];

    // An MLD-style IGMP packet header with the Router Alert option (RFC 2113):
    // IHL 6, DSCP CS6, TTL 1, 10.0.0.1 -> 224.0.0.22, 8 payload bytes. Checksum 0x3a01.
    const WITH_OPTIONS: [u8; 32] = [
        0x46, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x3a, 0x01, 0x0a, 0x00, 0x00,
        0x01, 0xe0, 0x00, 0x00, 0x16, 0x94, 0x04, 0x00, 0x00, // payload
        1, 2, 3, 4, 5, 6, 7, 8,
    ];

    fn ping_repr() -> Ipv4Repr {
        Ipv4Repr {
            src: Ipv4Addr::new(192, 168, 1, 10),
            dst: Ipv4Addr::new(8, 8, 8, 8),
            protocol: protocol::ICMP,
            payload_len: 64,
            ttl: 64,
            dscp_ecn: 0,
            ident: 0x1c46,
            dont_frag: true,
        }
    }

    #[test]
    fn reads_captured_ping() {
        let p = Packet::new_checked(&PING[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.dscp_ecn(), 0);
        assert_eq!(p.total_len(), 84);
        assert_eq!(p.ident(), 0x1c46);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), protocol::ICMP);
        assert_eq!(p.checksum(), 0x4ca1);
        assert_eq!(p.src(), Ipv4Addr::new(192, 168, 1, 10));
        assert_eq!(p.dst(), Ipv4Addr::new(8, 8, 8, 8));
        assert!(p.options().is_empty());
        assert_eq!(p.header(), &PING[..20]);
        assert_eq!(p.payload(), &PING[20..]);
        assert!(p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p).unwrap(), ping_repr());
    }

    #[test]
    fn reads_options() {
        let p = Packet::new_checked(&WITH_OPTIONS[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(p.verify_checksum());
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(r.payload_len, 8);
        assert_eq!(r.dscp_ecn, 0xc0);
        assert_eq!(r.ttl, 1);
        assert_eq!(r.dst, Ipv4Addr::new(224, 0, 0, 22));
    }

    #[test]
    fn fill_checksum_matches_captured() {
        let mut b = PING;
        b[10] = 0;
        b[11] = 0;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert_eq!(p.checksum(), 0x4ca1);
        let mut b = WITH_OPTIONS;
        b[10..12].fill(0xff);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert_eq!(p.checksum(), 0x3a01);
    }

    #[test]
    fn emit_reproduces_captured_header() {
        let r = ping_repr();
        assert_eq!(r.buffer_len(), 20);
        let mut b = [0xa5u8; 20];
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, PING[..20]);
    }

    #[test]
    fn check_errors() {
        let err = |b: &[u8]| Packet::new_checked(b).unwrap_err();
        assert_eq!(err(&PING[..19]), WireError::Truncated);
        // total_len 84 > 83 bytes.
        assert_eq!(err(&PING[..83]), WireError::Truncated);
        let mut b = PING;
        b[0] = 0x65; // version 6
        assert_eq!(err(&b), WireError::Malformed);
        b[0] = 0x44; // IHL 4
        assert_eq!(err(&b), WireError::Malformed);
        b[0] = 0x4f; // IHL 15 = 60 bytes, fits the 84-byte buffer, but total_len 84 ok
        assert!(Packet::new_checked(&b[..]).is_ok());
        assert_eq!(err(&b[..40]), WireError::Truncated); // header past the buffer
        let mut b = PING;
        b[2..4].copy_from_slice(&19u16.to_be_bytes()); // total_len < header_len
        assert_eq!(err(&b), WireError::Malformed);
        b[2..4].copy_from_slice(&20u16.to_be_bytes()); // empty payload is fine
        assert!(Packet::new_checked(&b[..]).unwrap().payload().is_empty());
    }

    #[test]
    fn padding_after_total_len_is_not_payload() {
        // A 46-byte minimum Ethernet payload carrying a 28-byte datagram.
        let mut b = [0u8; 46];
        b[..20].copy_from_slice(&PING[..20]);
        b[2..4].copy_from_slice(&28u16.to_be_bytes());
        b[20..28].copy_from_slice(&[9; 8]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.payload(), &[9; 8]);
        assert_eq!(p.payload_mut().len(), 8);
        p.fill_checksum();
        assert_eq!(
            Ipv4Repr::parse(&Packet::new_checked(&b[..]).unwrap())
                .unwrap()
                .payload_len,
            8
        );
    }

    #[test]
    fn bad_checksum_is_refused() {
        let mut b = PING;
        b[11] ^= 1;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p).unwrap_err(), WireError::Checksum);
    }

    #[test]
    fn fragments_are_parsed() {
        let mut b = PING;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_flags_frag(false, true, 0);
        assert!(p.more_frags() && !p.dont_frag() && p.is_fragment());
        p.set_flags_frag(false, false, 1480);
        assert!(!p.more_frags() && p.is_fragment());
        assert_eq!(p.frag_offset(), 1480);
        assert_eq!(&p.header()[6..8], &[0x00, 0xb9]); // 1480 / 8 = 185
        p.set_flags_frag(true, true, 65528);
        assert_eq!(p.frag_offset(), 65528);
        assert!(p.dont_frag() && p.more_frags());
        p.fill_checksum();
        let r = Ipv4Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap();
        assert!(r.dont_frag);
    }

    #[test]
    fn decrement_ttl_updates_checksum() {
        let mut b = PING;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.decrement_ttl();
        assert_eq!(p.ttl(), 63);
        assert_eq!(p.checksum(), 0x4da1);
        assert!(p.verify_checksum());
        p.set_ttl(0);
        p.fill_checksum();
        let before = p.checksum();
        p.decrement_ttl();
        assert_eq!((p.ttl(), p.checksum()), (0, before));
    }

    #[test]
    fn incremental_address_rewrites() {
        let mut b = PING;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_src_incremental(Ipv4Addr::new(203, 0, 113, 7));
        assert_eq!(p.src(), Ipv4Addr::new(203, 0, 113, 7));
        assert_eq!(p.checksum(), 0xd24b);
        assert!(p.verify_checksum());
        let mut b = PING;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_dst_incremental(Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(p.checksum(), 0x327c);
        // A wrong checksum stays wrong (RFC 1624 §3).
        let mut b = PING;
        b[11] ^= 4;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_src_incremental(Ipv4Addr::new(203, 0, 113, 7));
        assert!(!p.verify_checksum());
    }

    #[test]
    fn setters_then_getters() {
        let mut b = [0u8; 40];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version_ihl(24);
        p.set_dscp_ecn(0xb8);
        p.set_total_len(40);
        p.set_ident(0xabcd);
        p.set_flags_frag(true, false, 16);
        p.set_ttl(17);
        p.set_protocol(protocol::UDP);
        p.set_src(Ipv4Addr::new(10, 1, 2, 3));
        p.set_dst(Ipv4Addr::new(10, 4, 5, 6));
        p.set_checksum(0x1234);
        p.header_mut()[20..24].copy_from_slice(&[1, 1, 1, 0]);
        p.payload_mut().fill(7);
        assert!(p.check().is_ok());
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.dscp_ecn(), 0xb8);
        assert_eq!(p.total_len(), 40);
        assert_eq!(p.ident(), 0xabcd);
        assert!(p.dont_frag() && !p.more_frags());
        assert_eq!(p.frag_offset(), 16);
        assert_eq!(p.ttl(), 17);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.src(), Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(p.dst(), Ipv4Addr::new(10, 4, 5, 6));
        assert_eq!(p.checksum(), 0x1234);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[7; 16]);
    }

    fn arb_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            0u16..=1000,
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
        )
            .prop_map(
                |(s, d, protocol, payload_len, ttl, dscp_ecn, ident, dont_frag)| Ipv4Repr {
                    src: s.into(),
                    dst: d.into(),
                    protocol,
                    payload_len,
                    ttl,
                    dscp_ecn,
                    ident,
                    dont_frag,
                },
            )
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..100),
                                    shape in any::<bool>(), ihl in 0u8..16, total in any::<u16>()) {
            // Half the cases get a version-4 byte and a total length inside the buffer,
            // so the checked path (not just the first refusal) gets exercised.
            if shape && data.len() >= MIN_HEADER_LEN {
                data[0] = 0x40 | ihl;
                let t = total % (data.len() as u16 + 1);
                data[2..4].copy_from_slice(&t.to_be_bytes());
            }
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let _ = (p.options(), p.payload(), p.verify_checksum(), p.frag_offset());
                prop_assert!(p.header().len() + p.payload().len() <= data.len());
                let _ = Ipv4Repr::parse(&p);
                let mut copy = data.clone();
                let mut q = Packet::new_checked(&mut copy[..]).unwrap();
                q.decrement_ttl();
                q.set_src_incremental(Ipv4Addr::new(1, 2, 3, 4));
                let _ = q.payload_mut();
            }
            // parse on an unchecked view must not panic either.
            let _ = Ipv4Repr::parse(&Packet::new_unchecked(&data[..]));
        }

        #[test]
        fn repr_round_trip(r in arb_repr()) {
            let mut b = vec![0u8; r.buffer_len() + usize::from(r.payload_len)];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert!(!p.is_fragment());
            prop_assert_eq!(Ipv4Repr::parse(&p), Ok(r));
        }

        #[test]
        fn incremental_edits_keep_checksum(r in arb_repr(), s in any::<u32>(), d in any::<u32>()) {
            let mut b = vec![0u8; r.buffer_len() + usize::from(r.payload_len)];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            let mut p = Packet::new_checked(&mut b[..]).unwrap();
            p.decrement_ttl();
            p.set_src_incremental(s.into());
            p.set_dst_incremental(d.into());
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(p.ttl(), r.ttl.saturating_sub(1));
            prop_assert_eq!(p.src(), Ipv4Addr::from(s));
        }
    }
}
