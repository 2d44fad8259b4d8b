//! Ethernet II frames (IEEE 802.3 with an EtherType, RFC 894).
//!
//! Invariants: a [`Frame`] made by [`Frame::new_checked`] holds at least
//! [`HEADER_LEN`] bytes, so every accessor indexes without panicking. The frame check
//! sequence is not part of the buffer (NICs strip it). VLAN tags are not parsed here:
//! a tagged frame shows [`ethertype::VLAN`] and the tag as the first payload bytes.

use super::{Result, WireError};
use crate::addr::MacAddr;

/// Length of the Ethernet II header: destination, source, EtherType.
pub const HEADER_LEN: usize = 14;

/// EtherType values this dataplane knows (IEEE registry).
pub mod ethertype {
    /// Internet Protocol version 4 (RFC 894).
    pub const IPV4: u16 = 0x0800;
    /// Address Resolution Protocol (RFC 826).
    pub const ARP: u16 = 0x0806;
    /// Internet Protocol version 6 (RFC 2464).
    pub const IPV6: u16 = 0x86dd;
    /// IEEE 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
}

mod field {
    use std::ops::{Range, RangeFrom};
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

/// A view of an Ethernet II frame over a byte buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without checking its length; accessors may panic on a short
    /// buffer. Use [`Frame::new_checked`] for bytes from the wire.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps `buffer`, or [`WireError::Truncated`] when it is shorter than the header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// [`WireError::Truncated`] unless the buffer holds a whole header.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC address.
    #[inline]
    pub fn dst(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::DST.start)
    }

    /// Source MAC address.
    #[inline]
    pub fn src(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::SRC.start)
    }

    /// The EtherType (the payload's protocol).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[field::ETHERTYPE.start], d[field::ETHERTYPE.start + 1]])
    }

    /// The bytes after the header (may include trailing padding to the 60-byte minimum).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC address.
    #[inline]
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac.0);
    }

    /// Sets the source MAC address.
    #[inline]
    pub fn set_src(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac.0);
    }

    /// Sets the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, value: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// The bytes after the header, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

#[inline]
fn mac_at(d: &[u8], at: usize) -> MacAddr {
    let mut m = [0u8; 6];
    m.copy_from_slice(&d[at..at + 6]);
    MacAddr(m)
}

/// The meaning of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Source MAC address.
    pub src: MacAddr,
    /// Destination MAC address.
    pub dst: MacAddr,
    /// EtherType of the payload.
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Reads the header of a checked frame. Never fails on a checked frame; the
    /// `Result` keeps the signature uniform with the other `Repr`s.
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &Frame<&T>) -> Result<EthernetRepr> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src: frame.src(),
            dst: frame.dst(),
            ethertype: frame.ethertype(),
        })
    }

    /// Bytes [`EthernetRepr::emit`] writes: [`HEADER_LEN`].
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `frame` (which must
    /// be that long; it is when the frame came from [`Frame::new_checked`]).
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        frame.set_dst(self.dst);
        frame.set_src(self.src);
        frame.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A captured ARP request: 00:0c:29:3e:5c:7a asks who has 192.168.1.1, tell
    // 192.168.1.10; broadcast, padded to the 60-byte minimum.
    const ARP_FRAME: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x0c, 0x29, 0x3e, 0x5c, 0x7a, 0x08, 0x06,
        // ARP
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x00, 0x0c, 0x29, 0x3e, 0x5c, 0x7a, 0xc0,
        0xa8, 0x01, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xa8, 0x01, 0x01,
        // padding
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn reads_captured_frame() {
        let f = Frame::new_checked(&ARP_FRAME[..]).unwrap();
        assert_eq!(f.dst(), MacAddr::BROADCAST);
        assert_eq!(f.src(), MacAddr([0x00, 0x0c, 0x29, 0x3e, 0x5c, 0x7a]));
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert_eq!(f.payload().len(), 46);
        assert_eq!(&f.payload()[..4], &[0x00, 0x01, 0x08, 0x00]);
        let r = EthernetRepr::parse(&f).unwrap();
        assert_eq!(
            r,
            EthernetRepr {
                src: MacAddr([0x00, 0x0c, 0x29, 0x3e, 0x5c, 0x7a]),
                dst: MacAddr::BROADCAST,
                ethertype: ethertype::ARP,
            }
        );
    }

    #[test]
    fn short_buffers_are_truncated() {
        assert_eq!(
            Frame::new_checked(&ARP_FRAME[..13]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Frame::new_checked(&[][..]).unwrap_err(),
            WireError::Truncated
        );
        // Exactly a header, empty payload.
        let f = Frame::new_checked(&ARP_FRAME[..14]).unwrap();
        assert!(f.payload().is_empty());
    }

    #[test]
    fn emit_round_trip() {
        let f = Frame::new_checked(&ARP_FRAME[..]).unwrap();
        let r = EthernetRepr::parse(&f).unwrap();
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Frame::new_unchecked(&mut out[..]));
        assert_eq!(&out[..], &ARP_FRAME[..HEADER_LEN]);
    }

    #[test]
    fn setters_then_getters() {
        let mut buf = [0u8; 20];
        let mut f = Frame::new_checked(&mut buf[..]).unwrap();
        let a = MacAddr([2, 0, 0, 0xaa, 0xbb, 0x0c]);
        let b = MacAddr([2, 0, 0, 0xaa, 0xbb, 0x0d]);
        f.set_dst(a);
        f.set_src(b);
        f.set_ethertype(ethertype::IPV6);
        f.payload_mut().copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(f.dst(), a);
        assert_eq!(f.src(), b);
        assert_eq!(f.ethertype(), 0x86dd);
        assert_eq!(f.payload(), &[1, 2, 3, 4, 5, 6]);
        let inner = f.into_inner();
        assert_eq!(&inner[12..14], &[0x86, 0xdd]);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(f) = Frame::new_checked(&data[..]) {
                let r = EthernetRepr::parse(&f).unwrap();
                prop_assert_eq!(f.payload().len(), data.len() - HEADER_LEN);
                let mut out = [0u8; HEADER_LEN];
                r.emit(&mut Frame::new_unchecked(&mut out[..]));
                prop_assert_eq!(&out[..], &data[..HEADER_LEN]);
            } else {
                prop_assert!(data.len() < HEADER_LEN);
            }
        }
    }
}
