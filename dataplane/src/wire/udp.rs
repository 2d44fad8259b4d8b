//! UDP datagrams (RFC 768) over IPv4 and IPv6.
//!
//! Invariants: a [`Packet`] made by [`Packet::new_checked`] satisfies
//! `8 <= len <= buffer.len()`, so every accessor indexes without panicking. Bytes after
//! `len` are not part of the datagram (the checksum and payload stop at `len`).
//! Checksums cover the pseudo-header, header and payload (RFC 768; RFC 8200 §8.1). A
//! transmitted checksum of 0 means "none" over IPv4 and is invalid over IPv6; a
//! computed 0 is sent as 0xffff (RFC 768, RFC 8200 §8.1).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::ipv4::protocol::UDP;
use super::{Result, WireError};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// A view of a UDP datagram over a byte buffer.
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

    /// [`WireError::Truncated`] when the buffer is shorter than the header or than the
    /// length field; [`WireError::Malformed`] when the length field is below 8.
    #[inline]
    pub fn check(&self) -> Result<()> {
        let n = self.buffer.as_ref().len();
        if n < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if len > n {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives back the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn u16_at(&self, r: std::ops::Range<usize>) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[r.start], d[r.start + 1]])
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT)
    }

    /// The length field: header plus payload, in bytes.
    #[inline]
    pub fn len(&self) -> u16 {
        self.u16_at(field::LENGTH)
    }

    /// True when the datagram has no payload (length field 8 or, unchecked, less).
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// The checksum field (0: none, IPv4 only).
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// The payload: bytes 8..len.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// The datagram: bytes 0..len.
    #[inline]
    fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }

    /// True when the checksum verifies over IPv4, or is 0 (none sent, RFC 768).
    #[inline]
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let acc = checksum::pseudo_v4(src, dst, UDP, self.len());
        checksum::fold(checksum::sum(acc, self.datagram())) == 0xffff
    }

    /// True when the checksum verifies over IPv6; 0 never does (RFC 8200 §8.1).
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        if self.checksum() == 0 {
            return false;
        }
        let acc = checksum::pseudo_v6(src, dst, UDP, u32::from(self.len()));
        checksum::fold(checksum::sum(acc, self.datagram())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn set_u16_at(&mut self, r: std::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the source port (checksum untouched).
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        self.set_u16_at(field::SRC_PORT, value);
    }

    /// Sets the destination port (checksum untouched).
    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        self.set_u16_at(field::DST_PORT, value);
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, value: u16) {
        self.set_u16_at(field::LENGTH, value);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.set_u16_at(field::CHECKSUM, value);
    }

    /// The payload (8..len), mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    #[inline]
    fn finish_checksum(&mut self, acc: u32) {
        self.set_checksum(0);
        let c = !checksum::fold(checksum::sum(acc, self.datagram()));
        // A computed 0 is sent as all ones; 0 on the wire means "no checksum".
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Computes and writes the checksum over the IPv4 pseudo-header and the datagram.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.finish_checksum(checksum::pseudo_v4(src, dst, UDP, self.len()));
    }

    /// Computes and writes the checksum over the IPv6 pseudo-header and the datagram.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.finish_checksum(checksum::pseudo_v6(src, dst, UDP, u32::from(self.len())));
    }
}

/// The meaning of a UDP header: its ports. Lengths and checksums follow from the
/// payload and the addresses, which the caller holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpRepr {
    /// Length of the header [`UdpRepr::emit`] writes.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Reads the ports after [`Packet::check`]. The checksum is not verified here (it
    /// needs the IP addresses): call [`Packet::verify_checksum_v4`] or
    /// [`Packet::verify_checksum_v6`].
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<UdpRepr> {
        packet.check()?;
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
        })
    }

    /// Bytes [`UdpRepr::emit`] writes: [`HEADER_LEN`].
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header for a `payload_len`-byte payload (at most 65527) with a zero
    /// checksum; write the payload, then call [`Packet::fill_checksum_v4`] or
    /// [`Packet::fill_checksum_v6`]. `packet` must hold at least [`HEADER_LEN`] bytes.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>, payload_len: u16) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(payload_len.saturating_add(HEADER_LEN as u16));
        packet.set_checksum(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A DNS query for example.com/A from 192.168.1.10:53124 to 8.8.8.8:53 (odd
    // length, 37 bytes). Checksum over IPv4 0xe2ec; the same datagram from
    // 2001:db8::1 to 2001:db8::2 has checksum 0x593a.
    const DNS: [u8; 37] = [
        0xcf, 0x84, 0x00, 0x35, 0x00, 0x25, 0xe2, 0xec, 0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63,
        0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01,
    ];
    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const DST: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);
    const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    #[test]
    fn reads_captured_dns_query() {
        let p = Packet::new_checked(&DNS[..]).unwrap();
        assert_eq!(p.src_port(), 53124);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 37);
        assert!(!p.is_empty());
        assert_eq!(p.checksum(), 0xe2ec);
        assert_eq!(p.payload(), &DNS[8..]);
        assert!(p.verify_checksum_v4(SRC, DST));
        assert!(!p.verify_checksum_v4(SRC, Ipv4Addr::new(8, 8, 4, 4)));
        assert_eq!(
            UdpRepr::parse(&p).unwrap(),
            UdpRepr {
                src_port: 53124,
                dst_port: 53
            }
        );
    }

    #[test]
    fn fill_checksums_match_known_values() {
        let mut b = DNS;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum_v4(SRC, DST);
        assert_eq!(p.checksum(), 0xe2ec);
        p.fill_checksum_v6(SRC6, DST6);
        assert_eq!(p.checksum(), 0x593a);
        assert!(p.verify_checksum_v6(SRC6, DST6));
        assert!(!p.verify_checksum_v6(DST6, SRC6.to_bits().wrapping_add(1).into()));
    }

    #[test]
    fn zero_checksum_rules() {
        let mut b = DNS;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_checksum(0);
        assert!(p.verify_checksum_v4(SRC, DST), "0 means none over IPv4");
        assert!(!p.verify_checksum_v6(SRC6, DST6), "0 is invalid over IPv6");
        // Make the sum come out as 0: a 2-byte payload equal to the checksum with a
        // zero payload cancels it, and fill must then write 0xffff.
        let mut b = [0u8; 10];
        let mut p = Packet::new_unchecked(&mut b[..]);
        UdpRepr {
            src_port: 1000,
            dst_port: 2000,
        }
        .emit(&mut p, 2);
        p.fill_checksum_v4(SRC, DST);
        let c = p.checksum();
        p.payload_mut().copy_from_slice(&c.to_be_bytes());
        p.fill_checksum_v4(SRC, DST);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum_v4(SRC, DST));
    }

    #[test]
    fn length_checks_and_trailing_bytes() {
        let err = |b: &[u8]| Packet::new_checked(b).unwrap_err();
        assert_eq!(err(&DNS[..7]), WireError::Truncated);
        assert_eq!(err(&DNS[..36]), WireError::Truncated);
        let mut b = DNS;
        b[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(err(&b), WireError::Malformed);
        // Trailing bytes (Ethernet padding) are neither payload nor summed.
        let mut v = DNS.to_vec();
        v.extend_from_slice(&[0xee; 9]);
        let p = Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.payload(), &DNS[8..]);
        assert!(p.verify_checksum_v4(SRC, DST));
        // A header-only datagram.
        let mut b = DNS;
        b[4..6].copy_from_slice(&8u16.to_be_bytes());
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.is_empty() && p.payload().is_empty());
    }

    #[test]
    fn emit_then_fill_reproduces_capture() {
        let r = UdpRepr {
            src_port: 53124,
            dst_port: 53,
        };
        assert_eq!(r.buffer_len(), UdpRepr::HEADER_LEN);
        let mut b = [0x5au8; 37];
        let mut p = Packet::new_unchecked(&mut b[..]);
        r.emit(&mut p, 29);
        p.payload_mut().copy_from_slice(&DNS[8..]);
        p.fill_checksum_v4(SRC, DST);
        assert_eq!(b, DNS);
    }

    #[test]
    fn setters_then_getters() {
        let mut b = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_src_port(1);
        p.set_dst_port(65535);
        p.set_len(12);
        p.set_checksum(0x1234);
        p.payload_mut().copy_from_slice(&[9, 8, 7, 6]);
        assert!(p.check().is_ok());
        assert_eq!(
            (p.src_port(), p.dst_port(), p.len(), p.checksum()),
            (1, 65535, 12, 0x1234)
        );
        assert_eq!(p.payload(), &[9, 8, 7, 6]);
        assert_eq!(
            p.into_inner(),
            &[0, 1, 255, 255, 0, 12, 0x12, 0x34, 9, 8, 7, 6]
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..64),
                                    len in any::<u16>(), shape in any::<bool>()) {
            if shape && data.len() >= HEADER_LEN {
                let l = len % (data.len() as u16 + 1);
                data[4..6].copy_from_slice(&l.to_be_bytes());
            }
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let _ = (p.payload(), p.verify_checksum_v4(SRC, DST), p.verify_checksum_v6(SRC6, DST6));
                let r = UdpRepr::parse(&p).unwrap();
                prop_assert_eq!(r.src_port, u16::from_be_bytes([data[0], data[1]]));
                let mut copy = data.clone();
                let mut q = Packet::new_checked(&mut copy[..]).unwrap();
                q.fill_checksum_v4(SRC, DST);
                prop_assert!(q.verify_checksum_v4(SRC, DST));
                q.fill_checksum_v6(SRC6, DST6);
                prop_assert!(q.verify_checksum_v6(SRC6, DST6));
            }
            let _ = UdpRepr::parse(&Packet::new_unchecked(&data[..]));
        }

        #[test]
        fn repr_round_trip(s in any::<u16>(), d in any::<u16>(),
                           payload in proptest::collection::vec(any::<u8>(), 0..40)) {
            let r = UdpRepr { src_port: s, dst_port: d };
            let mut b = vec![0u8; HEADER_LEN + payload.len()];
            let mut p = Packet::new_unchecked(&mut b[..]);
            r.emit(&mut p, payload.len() as u16);
            p.payload_mut().copy_from_slice(&payload);
            p.fill_checksum_v4(SRC, DST);
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert!(p.verify_checksum_v4(SRC, DST));
            prop_assert_eq!(p.payload(), &payload[..]);
            prop_assert_eq!(UdpRepr::parse(&p), Ok(r));
        }
    }
}
