//! ARP packets (RFC 826) for Ethernet hardware and IPv4 protocol addresses only.
//!
//! Invariants: a [`Packet`] made by [`Packet::new_checked`] holds at least
//! [`PACKET_LEN`] bytes, so every accessor (which assumes the Ethernet/IPv4 layout)
//! indexes without panicking. [`ArpRepr::parse`] refuses any other hardware or protocol
//! type, so a `Repr` always describes an Ethernet/IPv4 packet. Bytes past
//! [`PACKET_LEN`] (Ethernet padding) are ignored.

use std::net::Ipv4Addr;

use super::{Result, WireError};
use crate::addr::MacAddr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

/// ARP operation codes (RFC 826; IANA "ARP operation codes").
pub mod op {
    /// "Who has target_ip? Tell sender_ip."
    pub const REQUEST: u16 = 1;
    /// "target_ip is at sender_mac."
    pub const REPLY: u16 = 2;
}

/// Hardware type for Ethernet (RFC 826 `ares_hrd$Ethernet`).
const HTYPE_ETHERNET: u16 = 1;
/// Protocol type for IPv4 (the IPv4 EtherType).
const PTYPE_IPV4: u16 = super::ethernet::ethertype::IPV4;

mod field {
    use std::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// A view of an Ethernet/IPv4 ARP packet over a byte buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking its length; accessors may panic on a short
    /// buffer. Use [`Packet::new_checked`] for bytes from the wire.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer`, or [`WireError::Truncated`] when it is shorter than
    /// [`PACKET_LEN`]. Field values are not checked here; [`ArpRepr::parse`] does.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// [`WireError::Truncated`] unless the buffer holds [`PACKET_LEN`] bytes.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < PACKET_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, r: std::ops::Range<usize>) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[r.start], d[r.start + 1]])
    }

    fn mac_at(&self, r: std::ops::Range<usize>) -> MacAddr {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.buffer.as_ref()[r]);
        MacAddr(m)
    }

    fn ip_at(&self, r: std::ops::Range<usize>) -> Ipv4Addr {
        let d = &self.buffer.as_ref()[r];
        Ipv4Addr::new(d[0], d[1], d[2], d[3])
    }

    /// Hardware type (1 = Ethernet).
    pub fn htype(&self) -> u16 {
        self.u16_at(field::HTYPE)
    }

    /// Protocol type (0x0800 = IPv4).
    pub fn ptype(&self) -> u16 {
        self.u16_at(field::PTYPE)
    }

    /// Hardware address length (6 for Ethernet).
    pub fn hlen(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length (4 for IPv4).
    pub fn plen(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation code (see [`op`]).
    pub fn operation(&self) -> u16 {
        self.u16_at(field::OPER)
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> MacAddr {
        self.mac_at(field::SHA)
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        self.ip_at(field::SPA)
    }

    /// Target hardware address (zero in a request).
    pub fn target_mac(&self) -> MacAddr {
        self.mac_at(field::THA)
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        self.ip_at(field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the hardware type.
    pub fn set_htype(&mut self, value: u16) {
        self.buffer.as_mut()[field::HTYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the protocol type.
    pub fn set_ptype(&mut self, value: u16) {
        self.buffer.as_mut()[field::PTYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the hardware address length.
    pub fn set_hlen(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets the protocol address length.
    pub fn set_plen(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets the operation code.
    pub fn set_operation(&mut self, value: u16) {
        self.buffer.as_mut()[field::OPER].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the sender hardware address.
    pub fn set_sender_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&mac.0);
    }

    /// Sets the sender protocol address.
    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&ip.octets());
    }

    /// Sets the target hardware address.
    pub fn set_target_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&mac.0);
    }

    /// Sets the target protocol address.
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&ip.octets());
    }
}

/// The meaning of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Operation code (see [`op`]); other values are kept as they are.
    pub op: u16,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Reads a packet; [`WireError::Malformed`] unless it is Ethernet (htype 1, hlen 6)
    /// over IPv4 (ptype 0x0800, plen 4), the only combination this dataplane resolves.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<ArpRepr> {
        packet.check_len()?;
        if packet.htype() != HTYPE_ETHERNET
            || packet.ptype() != PTYPE_IPV4
            || packet.hlen() != 6
            || packet.plen() != 4
        {
            return Err(WireError::Malformed);
        }
        Ok(ArpRepr {
            op: packet.operation(),
            sender_mac: packet.sender_mac(),
            sender_ip: packet.sender_ip(),
            target_mac: packet.target_mac(),
            target_ip: packet.target_ip(),
        })
    }

    /// Bytes [`ArpRepr::emit`] writes: [`PACKET_LEN`].
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes all [`PACKET_LEN`] bytes of the packet (`packet` must be that long; it is
    /// when it came from [`Packet::new_checked`]).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_htype(HTYPE_ETHERNET);
        packet.set_ptype(PTYPE_IPV4);
        packet.set_hlen(6);
        packet.set_plen(4);
        packet.set_operation(self.op);
        packet.set_sender_mac(self.sender_mac);
        packet.set_sender_ip(self.sender_ip);
        packet.set_target_mac(self.target_mac);
        packet.set_target_ip(self.target_ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A captured request: 00:0c:29:3e:5c:7a (192.168.1.10) asks for 192.168.1.1.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x00, 0x0c, 0x29, 0x3e, 0x5c, 0x7a, 0xc0,
        0xa8, 0x01, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xa8, 0x01, 0x01,
    ];
    // The reply from 192.168.1.1 at 00:11:22:33:44:55.
    const REPLY: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0xc0,
        0xa8, 0x01, 0x01, 0x00, 0x0c, 0x29, 0x3e, 0x5c, 0x7a, 0xc0, 0xa8, 0x01, 0x0a,
    ];

    const HOST: MacAddr = MacAddr([0x00, 0x0c, 0x29, 0x3e, 0x5c, 0x7a]);
    const GW: MacAddr = MacAddr([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);

    #[test]
    fn reads_captured_request() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.htype(), 1);
        assert_eq!(p.ptype(), 0x0800);
        assert_eq!(p.hlen(), 6);
        assert_eq!(p.plen(), 4);
        assert_eq!(p.operation(), op::REQUEST);
        assert_eq!(p.sender_mac(), HOST);
        assert_eq!(p.sender_ip(), Ipv4Addr::new(192, 168, 1, 10));
        assert_eq!(p.target_mac(), MacAddr::ZERO);
        assert_eq!(p.target_ip(), Ipv4Addr::new(192, 168, 1, 1));
        assert_eq!(
            ArpRepr::parse(&p).unwrap(),
            ArpRepr {
                op: op::REQUEST,
                sender_mac: HOST,
                sender_ip: Ipv4Addr::new(192, 168, 1, 10),
                target_mac: MacAddr::ZERO,
                target_ip: Ipv4Addr::new(192, 168, 1, 1),
            }
        );
    }

    #[test]
    fn emit_builds_reply_bytes() {
        let r = ArpRepr {
            op: op::REPLY,
            sender_mac: GW,
            sender_ip: Ipv4Addr::new(192, 168, 1, 1),
            target_mac: HOST,
            target_ip: Ipv4Addr::new(192, 168, 1, 10),
        };
        // Start from garbage so emit must write every byte.
        let mut out = [0xa5u8; PACKET_LEN];
        r.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, REPLY);
        assert_eq!(r.buffer_len(), 28);
        let back = ArpRepr::parse(&Packet::new_checked(&out[..]).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn padding_is_ignored_and_short_is_truncated() {
        let mut padded = [0u8; 46];
        padded[..28].copy_from_slice(&REQUEST);
        padded[28..].fill(0xee);
        let p = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(
            ArpRepr::parse(&p).unwrap().target_ip,
            Ipv4Addr::new(192, 168, 1, 1)
        );
        assert_eq!(
            Packet::new_checked(&REQUEST[..27]).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn other_hardware_or_protocol_is_malformed() {
        for (i, v) in [(1usize, 0x06u8), (3, 0xdd), (4, 8), (5, 16)] {
            let mut b = REQUEST;
            b[i] = v;
            let p = Packet::new_checked(&b[..]).unwrap();
            assert_eq!(
                ArpRepr::parse(&p).unwrap_err(),
                WireError::Malformed,
                "byte {i}"
            );
        }
    }

    #[test]
    fn setters_then_getters() {
        let mut b = [0u8; PACKET_LEN];
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_htype(0x1234);
        p.set_ptype(0x5678);
        p.set_hlen(9);
        p.set_plen(10);
        p.set_operation(0xbeef);
        p.set_sender_mac(GW);
        p.set_sender_ip(Ipv4Addr::new(1, 2, 3, 4));
        p.set_target_mac(HOST);
        p.set_target_ip(Ipv4Addr::new(5, 6, 7, 8));
        assert_eq!(p.htype(), 0x1234);
        assert_eq!(p.ptype(), 0x5678);
        assert_eq!(p.hlen(), 9);
        assert_eq!(p.plen(), 10);
        assert_eq!(p.operation(), 0xbeef);
        assert_eq!(p.sender_mac(), GW);
        assert_eq!(p.sender_ip(), Ipv4Addr::new(1, 2, 3, 4));
        assert_eq!(p.target_mac(), HOST);
        assert_eq!(p.target_ip(), Ipv4Addr::new(5, 6, 7, 8));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                if let Ok(r) = ArpRepr::parse(&p) {
                    let mut out = [0u8; PACKET_LEN];
                    r.emit(&mut Packet::new_unchecked(&mut out[..]));
                    prop_assert_eq!(&out[..], &data[..PACKET_LEN]);
                }
            } else {
                prop_assert!(data.len() < PACKET_LEN);
            }
        }

        #[test]
        fn valid_packets_round_trip(op in any::<u16>(), s in any::<[u8; 6]>(), t in any::<[u8; 6]>(),
                                    si in any::<u32>(), ti in any::<u32>()) {
            let r = ArpRepr { op, sender_mac: MacAddr(s), sender_ip: si.into(),
                              target_mac: MacAddr(t), target_ip: ti.into() };
            let mut out = [0u8; PACKET_LEN];
            r.emit(&mut Packet::new_unchecked(&mut out[..]));
            prop_assert_eq!(ArpRepr::parse(&Packet::new_checked(&out[..]).unwrap()), Ok(r));
        }
    }
}
