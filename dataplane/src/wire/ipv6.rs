//! The IPv6 fixed header (RFC 8200 §3).
//!
//! Invariants:
//! - [`Packet::new_checked`] accepts a buffer only if it holds the 40-byte header, the
//!   version is 6 and the payload length the header claims fits in the buffer. Bytes past
//!   `40 + payload_len` (Ethernet padding) are allowed and are not part of [`Packet::payload`].
//! - After `new_checked` no getter panics. [`Packet::payload`] is total even after
//!   [`Packet::set_payload_len`] grows the claimed length: it is clamped to the buffer.
//! - [`Packet::new_unchecked`] is for `emit` into a buffer the caller sized with
//!   [`Ipv6Repr::buffer_len`]; on a shorter buffer the fixed-field accessors panic.
//! - Jumbograms (RFC 2675, payload length 0 with a Jumbo Payload option) are not
//!   supported: a payload length of 0 means an empty payload.
//! - [`Ipv6Repr::parse`] reports the bytes as they are; address policy (multicast
//!   sources, RFC 4291 §2.7) is for the pipeline to decide.

use std::net::Ipv6Addr;

use super::{Result, WireError};

/// Length of the fixed IPv6 header (RFC 8200 §3).
pub const HEADER_LEN: usize = 40;

/// Next Header values (IANA "Assigned Internet Protocol Numbers"; extension headers per
/// RFC 8200 §4 and RFC 7045).
pub mod next_header {
    /// Hop-by-Hop Options header (RFC 8200 §4.3).
    pub const HOP_BY_HOP: u8 = 0;
    /// ICMP for IPv4 (RFC 792).
    pub const ICMP: u8 = 1;
    /// TCP (RFC 9293).
    pub const TCP: u8 = 6;
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
    /// IPv6 encapsulated in IPv6 (RFC 2473).
    pub const IPV6: u8 = 41;
    /// Routing header (RFC 8200 §4.4).
    pub const ROUTING: u8 = 43;
    /// Fragment header (RFC 8200 §4.5).
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload (RFC 4303).
    pub const ESP: u8 = 50;
    /// Authentication Header (RFC 4302).
    pub const AH: u8 = 51;
    /// ICMPv6 (RFC 4443).
    pub const ICMPV6: u8 = 58;
    /// No Next Header (RFC 8200 §4.7).
    pub const NO_NEXT: u8 = 59;
    /// Destination Options header (RFC 8200 §4.6).
    pub const DEST_OPTS: u8 = 60;
    /// Mobility header (RFC 6275).
    pub const MOBILITY: u8 = 135;
    /// Host Identity Protocol (RFC 7401).
    pub const HIP: u8 = 139;
    /// Shim6 protocol (RFC 5533).
    pub const SHIM6: u8 = 140;
    /// Reserved for experimentation and testing (RFC 3692, RFC 4727); an extension
    /// header in the RFC 8200 §4.8 format.
    pub const EXPERIMENT_1: u8 = 253;
    /// Reserved for experimentation and testing (RFC 3692, RFC 4727); an extension
    /// header in the RFC 8200 §4.8 format.
    pub const EXPERIMENT_2: u8 = 254;
}

mod field {
    use std::ops::Range;

    /// Version (4 bits), Traffic Class (8 bits), Flow Label (20 bits).
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// A read/write view of an IPv6 header and the payload behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it. Use only to `emit` into a buffer of at least
    /// [`HEADER_LEN`] bytes; accessors panic on a shorter one.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`] accepts it.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the header fits, the version is 6 (else `Malformed`) and that
    /// `40 + payload_len` fits in the buffer (else `Truncated`).
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 6 {
            return Err(WireError::Malformed);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > data.len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn word0(&self) -> u32 {
        let d = &self.buffer.as_ref()[field::VER_TC_FLOW];
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }

    /// The version field (6 after `new_checked`).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// The Traffic Class (DSCP << 2 | ECN, RFC 8200 §7, RFC 2474, RFC 3168).
    pub fn traffic_class(&self) -> u8 {
        (self.word0() >> 20) as u8
    }

    /// The 20-bit Flow Label (RFC 8200 §6, RFC 6437).
    pub fn flow_label(&self) -> u32 {
        self.word0() & 0x000f_ffff
    }

    /// The Payload Length: bytes after the fixed header, extension headers included.
    pub fn payload_len(&self) -> u16 {
        let d = &self.buffer.as_ref()[field::PAYLOAD_LEN];
        u16::from_be_bytes([d[0], d[1]])
    }

    /// The Next Header: the first extension header or the upper-layer protocol.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// The Hop Limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// The source address.
    pub fn src(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        Ipv6Addr::from(a)
    }

    /// The destination address.
    pub fn dst(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        Ipv6Addr::from(a)
    }

    /// Bytes `40 .. 40 + payload_len`, clamped to the buffer (so trailing link-layer
    /// padding is excluded, and a length grown by a setter never panics).
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(data.len());
        data.get(HEADER_LEN..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_word0(&mut self, w: u32) {
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
    }

    /// Sets the version field (low 4 bits of `v`).
    pub fn set_version(&mut self, v: u8) {
        let w = (self.word0() & 0x0fff_ffff) | (u32::from(v & 0xf) << 28);
        self.set_word0(w);
    }

    /// Sets the Traffic Class.
    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = (self.word0() & 0xf00f_ffff) | (u32::from(tc) << 20);
        self.set_word0(w);
    }

    /// Sets the Flow Label (low 20 bits of `label`).
    pub fn set_flow_label(&mut self, label: u32) {
        let w = (self.word0() & 0xfff0_0000) | (label & 0x000f_ffff);
        self.set_word0(w);
    }

    /// Sets the Payload Length.
    pub fn set_payload_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::PAYLOAD_LEN].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets the Next Header.
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = nh;
    }

    /// Sets the Hop Limit.
    pub fn set_hop_limit(&mut self, hl: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hl;
    }

    /// Sets the source address.
    pub fn set_src(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Decrements the Hop Limit (saturating at 0) and returns the new value. A router
    /// drops a packet whose result is 0 and answers ICMPv6 Time Exceeded, code 0
    /// (RFC 8200 §3, RFC 4443 §3.3). IPv6 has no header checksum to update.
    pub fn decrement_hop_limit(&mut self) -> u8 {
        let hl = self.hop_limit().saturating_sub(1);
        self.set_hop_limit(hl);
        hl
    }

    /// The payload, mutable; same bounds as [`Packet::payload`].
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.payload_len());
        let data = self.buffer.as_mut();
        let end = (HEADER_LEN + len).min(data.len());
        data.get_mut(HEADER_LEN..end).unwrap_or(&mut [])
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The meaning of an IPv6 fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// First extension header or upper-layer protocol ([`next_header`]).
    pub next_header: u8,
    /// Bytes after the fixed header.
    pub payload_len: u16,
    /// Hop Limit.
    pub hop_limit: u8,
    /// Traffic Class.
    pub traffic_class: u8,
    /// Flow Label; only the low 20 bits are emitted.
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Reads a header, re-running [`Packet::check_len`] so an unchecked view is safe.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Ipv6Repr> {
        packet.check_len()?;
        Ok(Ipv6Repr {
            src: packet.src(),
            dst: packet.dst(),
            next_header: packet.next_header(),
            payload_len: packet.payload_len(),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    /// Bytes [`Ipv6Repr::emit`] writes: the fixed header only.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header (version 6) into the first 40 bytes; the payload is the
    /// caller's. Panics if the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_word0(
            (6 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0x000f_ffff),
        );
        packet.set_payload_len(self.payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src(self.src);
        packet.set_dst(self.dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A UDP datagram 2001:db8::1 port 1234 -> 2001:db8::2 port 53, payload "hi",
    /// TC 0xb8 (DSCP EF), flow label 0x12345, hop limit 64, plus 2 bytes of padding.
    /// UDP checksum 0x36f5 computed independently (pseudo-header per RFC 8200 §8.1).
    const UDP_PACKET: [u8; 52] = [
        0x6b, 0x81, 0x23, 0x45, // version 6, TC 0xb8, flow 0x12345
        0x00, 0x0a, 0x11, 0x40, // payload len 10, UDP, hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst
        0x04, 0xd2, 0x00, 0x35, 0x00, 0x0a, 0x36, 0xf5, b'h', b'i', // UDP
        0xee, 0xee, // link-layer padding, not part of the packet
    ];

    fn repr() -> Ipv6Repr {
        Ipv6Repr {
            src: "2001:db8::1".parse().unwrap(),
            dst: "2001:db8::2".parse().unwrap(),
            next_header: next_header::UDP,
            payload_len: 10,
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0x12345,
        }
    }

    #[test]
    fn reads_fields() {
        let p = Packet::new_checked(&UDP_PACKET[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 10);
        assert_eq!(p.next_header(), next_header::UDP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload(), &UDP_PACKET[40..50]);
        assert_eq!(Ipv6Repr::parse(&p).unwrap(), repr());
    }

    #[test]
    fn udp_checksum_of_literal_verifies() {
        // Cross-checks the literal (and checksum::pseudo_v6) against the UDP checksum.
        let p = Packet::new_checked(&UDP_PACKET[..]).unwrap();
        let acc = super::super::checksum::pseudo_v6(p.src(), p.dst(), 17, 10);
        assert_eq!(
            super::super::checksum::fold(super::super::checksum::sum(acc, p.payload())),
            0xffff
        );
    }

    #[test]
    fn emit_matches_literal() {
        let mut buf = [0u8; 52];
        buf[40..].copy_from_slice(&UDP_PACKET[40..]);
        let r = repr();
        assert_eq!(r.buffer_len(), 40);
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, UDP_PACKET);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            Packet::new_checked(&UDP_PACKET[..39]).unwrap_err(),
            WireError::Truncated
        );
        let mut v4 = UDP_PACKET;
        v4[0] = 0x4b;
        assert_eq!(
            Packet::new_checked(&v4[..]).unwrap_err(),
            WireError::Malformed
        );
        // Payload length claims more than the buffer holds.
        assert_eq!(
            Packet::new_checked(&UDP_PACKET[..49]).unwrap_err(),
            WireError::Truncated
        );
        // Exactly the claimed length is fine.
        assert!(Packet::new_checked(&UDP_PACKET[..50]).is_ok());
    }

    #[test]
    fn setters_keep_neighbouring_fields() {
        let mut buf = UDP_PACKET;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.set_flow_label(0xfffff);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.version(), 6);
        p.set_traffic_class(0x01);
        assert_eq!(p.flow_label(), 0xfffff);
        p.set_flow_label(0x1_00000); // only 20 bits kept
        assert_eq!(p.flow_label(), 0);
        assert_eq!(p.traffic_class(), 0x01);
        p.set_version(4);
        assert_eq!(p.version(), 4);
        assert_eq!(p.traffic_class(), 0x01);
    }

    #[test]
    fn hop_limit_decrements_and_saturates() {
        let mut buf = UDP_PACKET;
        buf[7] = 2;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        assert_eq!(p.decrement_hop_limit(), 1);
        assert_eq!(p.decrement_hop_limit(), 0);
        assert_eq!(p.decrement_hop_limit(), 0);
        assert_eq!(p.hop_limit(), 0);
    }

    #[test]
    fn payload_is_clamped_after_growing_length() {
        let mut buf = UDP_PACKET;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.set_payload_len(0xffff);
        assert_eq!(p.payload().len(), 12);
        assert_eq!(p.payload_mut().len(), 12);
        p.payload_mut()[0] = 0xaa;
        assert_eq!(p.payload()[0], 0xaa);
        // And a short unchecked view still gives an empty payload, not a panic.
        let short = Packet::new_unchecked(&UDP_PACKET[..10]);
        assert!(short.payload().is_empty());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..128),
                                    force_v6 in any::<bool>()) {
            // Half the cases get a version-6 nibble and a small length so they get past
            // the first checks.
            if force_v6 && data.len() >= HEADER_LEN {
                data[0] = 0x60 | (data[0] & 0x0f);
                data[4] = 0;
                data[5] &= 0x7f;
            }
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let r = Ipv6Repr::parse(&p).unwrap();
                prop_assert_eq!(p.payload().len(), usize::from(r.payload_len));
            }
        }

        #[test]
        fn emit_parse_round_trip(tc in any::<u8>(), flow in 0u32..0x10_0000, hl in any::<u8>(),
                                 nh in any::<u8>(), plen in 0u16..64,
                                 src in any::<[u8; 16]>(), dst in any::<[u8; 16]>()) {
            let r = Ipv6Repr { src: src.into(), dst: dst.into(), next_header: nh,
                               payload_len: plen, hop_limit: hl, traffic_class: tc,
                               flow_label: flow };
            let mut buf = vec![0u8; r.buffer_len() + usize::from(plen)];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]));
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Ipv6Repr::parse(&p).unwrap(), r);
        }
    }
}
