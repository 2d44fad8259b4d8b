//! ICMP for IPv4 (RFC 792): echo, destination unreachable (with the RFC 1191 next-hop
//! MTU), time exceeded and parameter problem.
//!
//! Invariants: a [`Packet`] made by [`Packet::new_checked`] holds at least
//! [`HEADER_LEN`] bytes, so every accessor indexes without panicking. The view's buffer
//! is the whole ICMP message (the IPv4 payload, padding excluded): the checksum covers
//! all of it (RFC 792, "Checksum"). [`Icmpv4Repr::parse`] returns only the variants
//! [`Icmpv4Repr::emit`] writes byte for byte, apart from "unused" fields, which are
//! ignored on input and written as zero.

use super::checksum;
use super::{Result, WireError};

/// Length of the ICMP header: type, code, checksum and the 4-byte rest of header.
pub const HEADER_LEN: usize = 8;

/// Largest ICMP error message (header plus quoted datagram): RFC 1812 §4.3.2.3 says an
/// error carries as much of the invoking datagram as fits in a 576-byte IP datagram,
/// and the IP header (no options) takes 20 of those.
pub const ERROR_MAX_LEN: usize = 576 - 20;

/// ICMP message types (IANA "ICMP Type Numbers").
pub mod msg {
    /// Echo reply (RFC 792).
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable (RFC 792).
    pub const DST_UNREACHABLE: u8 = 3;
    /// Source quench (RFC 792, deprecated by RFC 6633); an error message.
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect (RFC 792); an error message.
    pub const REDIRECT: u8 = 5;
    /// Echo request (RFC 792).
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded (RFC 792).
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem (RFC 792).
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Destination unreachable codes (RFC 792, RFC 1812 §5.2.7.1).
pub mod unreach {
    /// Network unreachable.
    pub const NET: u8 = 0;
    /// Host unreachable.
    pub const HOST: u8 = 1;
    /// Protocol unreachable.
    pub const PROTOCOL: u8 = 2;
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set; carries the next-hop MTU (RFC 1191 §4).
    pub const FRAG_NEEDED: u8 = 4;
    /// Communication administratively prohibited (RFC 1812 §5.2.7.1).
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Time exceeded codes (RFC 792).
pub mod time_exceeded {
    /// TTL exceeded in transit.
    pub const TTL: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

mod field {
    use std::ops::{Range, RangeFrom};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQ: Range<usize> = 6..8;
    pub const POINTER: usize = 4;
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    pub const DATA: RangeFrom<usize> = 8..;
}

/// The part of an invoking datagram an ICMP error quotes: as much as fits in
/// [`ERROR_MAX_LEN`] after the ICMP header (RFC 1812 §4.3.2.3).
pub fn error_quote(datagram: &[u8]) -> &[u8] {
    &datagram[..datagram.len().min(ERROR_MAX_LEN - HEADER_LEN)]
}

/// A view of an ICMPv4 message over a byte buffer.
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
    /// [`HEADER_LEN`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// [`WireError::Truncated`] unless the buffer holds a whole header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
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

    /// Message type (see [`msg`]).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Echo identifier (bytes 4..6; meaningful for echo messages).
    pub fn echo_ident(&self) -> u16 {
        self.u16_at(field::ECHO_IDENT)
    }

    /// Echo sequence number (bytes 6..8; meaningful for echo messages).
    pub fn echo_seq(&self) -> u16 {
        self.u16_at(field::ECHO_SEQ)
    }

    /// Next-hop MTU (bytes 6..8; meaningful for "fragmentation needed", RFC 1191 §4).
    pub fn next_hop_mtu(&self) -> u16 {
        self.u16_at(field::NEXT_HOP_MTU)
    }

    /// The parameter problem pointer (byte 4): the offset of the bad octet in the
    /// quoted datagram.
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// The bytes after the header: echo data, or the quoted invoking datagram.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// True when the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref())
    }

    /// True for error messages (types 3, 4, 5, 11, 12), which must never be sent in
    /// answer to another error (RFC 1812 §4.3.2.7).
    pub fn is_error(&self) -> bool {
        matches!(
            self.msg_type(),
            msg::DST_UNREACHABLE
                | msg::SOURCE_QUENCH
                | msg::REDIRECT
                | msg::TIME_EXCEEDED
                | msg::PARAM_PROBLEM
        )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u16_at(&mut self, r: std::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the message type.
    pub fn set_msg_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE] = value;
    }

    /// Sets the message code.
    pub fn set_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.set_u16_at(field::CHECKSUM, value);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        self.set_u16_at(field::ECHO_IDENT, value);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq(&mut self, value: u16) {
        self.set_u16_at(field::ECHO_SEQ, value);
    }

    /// Sets the next-hop MTU (bytes 6..8).
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        self.set_u16_at(field::NEXT_HOP_MTU, value);
    }

    /// Sets the parameter problem pointer (byte 4).
    pub fn set_pointer(&mut self, value: u8) {
        self.buffer.as_mut()[field::POINTER] = value;
    }

    /// Sets all four rest-of-header bytes (4..8) at once, e.g. to zero them.
    pub fn set_rest_of_header(&mut self, value: u32) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&value.to_be_bytes());
    }

    /// Computes the checksum over the whole buffer and writes it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// The bytes after the header, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }
}

/// The meaning of an ICMPv4 message this dataplane answers or sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    /// Echo request ("ping").
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data to be echoed back.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier, copied from the request.
        ident: u16,
        /// Sequence number, copied from the request.
        seq_no: u16,
        /// Data, copied from the request.
        data: &'a [u8],
    },
    /// Destination unreachable.
    DstUnreachable {
        /// Code (see [`unreach`]).
        code: u8,
        /// Next-hop MTU for [`unreach::FRAG_NEEDED`] (RFC 1191 §4), else 0.
        next_hop_mtu: u16,
        /// The quoted invoking datagram (IP header and leading payload bytes).
        invoking: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code (see [`time_exceeded`]).
        code: u8,
        /// The quoted invoking datagram.
        invoking: &'a [u8],
    },
    /// Parameter problem, code 0 ("pointer indicates the error").
    ParamProblem {
        /// Offset of the offending octet in the invoking datagram.
        pointer: u8,
        /// The quoted invoking datagram.
        invoking: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Reads a message after verifying its checksum ([`WireError::Checksum`]).
    /// Types other than those above, and parameter problem codes other than 0, are
    /// [`WireError::Unsupported`]; echo codes other than 0 are
    /// [`WireError::Malformed`] (RFC 792 defines only code 0).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Icmpv4Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(WireError::Checksum);
        }
        // Borrow the data from the underlying buffer (lifetime 'a), not from `packet`.
        let data: &'a [u8] = packet
            .buffer
            .as_ref()
            .get(field::DATA)
            .ok_or(WireError::Truncated)?;
        let code = packet.code();
        match packet.msg_type() {
            msg::ECHO_REQUEST | msg::ECHO_REPLY if code != 0 => Err(WireError::Malformed),
            msg::ECHO_REQUEST => Ok(Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq(),
                data,
            }),
            msg::ECHO_REPLY => Ok(Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq(),
                data,
            }),
            msg::DST_UNREACHABLE => Ok(Icmpv4Repr::DstUnreachable {
                code,
                next_hop_mtu: packet.next_hop_mtu(),
                invoking: data,
            }),
            msg::TIME_EXCEEDED => Ok(Icmpv4Repr::TimeExceeded {
                code,
                invoking: data,
            }),
            msg::PARAM_PROBLEM if code == 0 => Ok(Icmpv4Repr::ParamProblem {
                pointer: packet.pointer(),
                invoking: data,
            }),
            _ => Err(WireError::Unsupported),
        }
    }

    fn body(&self) -> &'a [u8] {
        match *self {
            Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => data,
            Icmpv4Repr::DstUnreachable { invoking, .. }
            | Icmpv4Repr::TimeExceeded { invoking, .. }
            | Icmpv4Repr::ParamProblem { invoking, .. } => invoking,
        }
    }

    /// Bytes [`Icmpv4Repr::emit`] writes: the header plus data or quote.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.body().len()
    }

    /// Writes the message and its checksum. `packet`'s buffer must be exactly
    /// [`Icmpv4Repr::buffer_len`] bytes, since the checksum covers all of it. Quote at
    /// most [`error_quote`] of the invoking datagram in errors.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_rest_of_header(0);
        match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. }
            | Icmpv4Repr::EchoReply { ident, seq_no, .. } => {
                let t = match self {
                    Icmpv4Repr::EchoRequest { .. } => msg::ECHO_REQUEST,
                    _ => msg::ECHO_REPLY,
                };
                packet.set_msg_type(t);
                packet.set_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq(seq_no);
            }
            Icmpv4Repr::DstUnreachable {
                code, next_hop_mtu, ..
            } => {
                packet.set_msg_type(msg::DST_UNREACHABLE);
                packet.set_code(code);
                packet.set_next_hop_mtu(next_hop_mtu);
            }
            Icmpv4Repr::TimeExceeded { code, .. } => {
                packet.set_msg_type(msg::TIME_EXCEEDED);
                packet.set_code(code);
            }
            Icmpv4Repr::ParamProblem { pointer, .. } => {
                packet.set_msg_type(msg::PARAM_PROBLEM);
                packet.set_code(0);
                packet.set_pointer(pointer);
            }
        }
        let body = self.body();
        let out = packet.data_mut();
        let n = body.len().min(out.len());
        out[..n].copy_from_slice(&body[..n]);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The ICMP part of a Linux `ping -c1 8.8.8.8`: ident 0x0d2f, seq 1, 56 data bytes
    // (timestamp then 0x10..0x37). Checksum 0xdbcd.
    const ECHO_REQUEST: [u8; 64] = [
        0x08, 0x00, 0xdb, 0xcd, 0x0d, 0x2f, 0x00, 0x01, 0x9a, 0x3b, 0x5e, 0x65, 0x00, 0x00, 0x00,
        0x00, 0x4c, 0x8e, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
        0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24,
        0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
        0x34, 0x35, 0x36, 0x37,
    ];

    // The invoking datagram as an error quotes it: that ping's IPv4 header and the
    // first 8 payload bytes (RFC 792).
    const QUOTE: [u8; 28] = [
        0x45, 0x00, 0x00, 0x54, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x4c, 0xa1, 0xc0, 0xa8, 0x01,
        0x0a, 0x08, 0x08, 0x08, 0x08, 0x08, 0x00, 0xdb, 0xcd, 0x0d, 0x2f, 0x00, 0x01,
    ];

    fn with_header(h: [u8; 8], body: &[u8]) -> Vec<u8> {
        let mut v = h.to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn reads_captured_echo_request() {
        let p = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(p.msg_type(), msg::ECHO_REQUEST);
        assert_eq!(p.code(), 0);
        assert_eq!(p.checksum(), 0xdbcd);
        assert_eq!(p.echo_ident(), 0x0d2f);
        assert_eq!(p.echo_seq(), 1);
        assert_eq!(p.data().len(), 56);
        assert!(p.verify_checksum());
        assert!(!p.is_error());
        assert_eq!(
            Icmpv4Repr::parse(&p).unwrap(),
            Icmpv4Repr::EchoRequest {
                ident: 0x0d2f,
                seq_no: 1,
                data: &ECHO_REQUEST[8..],
            }
        );
    }

    #[test]
    fn echo_reply_bytes() {
        // Answering the ping: same ident, seq and data; checksum 0xe3cd.
        let r = Icmpv4Repr::EchoReply {
            ident: 0x0d2f,
            seq_no: 1,
            data: &ECHO_REQUEST[8..],
        };
        let mut out = vec![0xa5u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(&out[..4], &[0x00, 0x00, 0xe3, 0xcd]);
        assert_eq!(&out[4..], &ECHO_REQUEST[4..]);
        assert_eq!(
            Icmpv4Repr::parse(&Packet::new_checked(&out[..]).unwrap()),
            Ok(r)
        );
    }

    #[test]
    fn error_messages_bytes() {
        let cases = [
            (
                Icmpv4Repr::TimeExceeded {
                    code: time_exceeded::TTL,
                    invoking: &QUOTE,
                },
                [11, 0, 0x04, 0x02, 0, 0, 0, 0],
            ),
            (
                Icmpv4Repr::DstUnreachable {
                    code: unreach::FRAG_NEEDED,
                    next_hop_mtu: 1400,
                    invoking: &QUOTE,
                },
                [3, 4, 0x06, 0x86, 0, 0, 0x05, 0x78],
            ),
            (
                Icmpv4Repr::ParamProblem {
                    pointer: 20,
                    invoking: &QUOTE,
                },
                [12, 0, 0xef, 0x01, 20, 0, 0, 0],
            ),
        ];
        for (r, header) in cases {
            let want = with_header(header, &QUOTE);
            let mut out = vec![0xffu8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut out[..]));
            assert_eq!(out, want, "{r:?}");
            let p = Packet::new_checked(&want[..]).unwrap();
            assert!(p.is_error());
            assert_eq!(p.data(), &QUOTE);
            assert_eq!(Icmpv4Repr::parse(&p), Ok(r));
        }
    }

    #[test]
    fn refusals() {
        let mut b = ECHO_REQUEST;
        b[10] ^= 0x40;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p), Err(WireError::Checksum));
        // Timestamp request (13): unsupported.
        let mut t = [13u8, 0, 0, 0, 0, 0, 0, 0];
        Packet::new_unchecked(&mut t[..]).fill_checksum();
        assert_eq!(
            Icmpv4Repr::parse(&Packet::new_checked(&t[..]).unwrap()),
            Err(WireError::Unsupported)
        );
        // Parameter problem code 1 (missing option): unsupported.
        let mut t = [12u8, 1, 0, 0, 0, 0, 0, 0];
        Packet::new_unchecked(&mut t[..]).fill_checksum();
        assert_eq!(
            Icmpv4Repr::parse(&Packet::new_checked(&t[..]).unwrap()),
            Err(WireError::Unsupported)
        );
        // Echo with a non-zero code.
        let mut t = [8u8, 3, 0, 0, 0, 0, 0, 0];
        Packet::new_unchecked(&mut t[..]).fill_checksum();
        assert_eq!(
            Icmpv4Repr::parse(&Packet::new_checked(&t[..]).unwrap()),
            Err(WireError::Malformed)
        );
        assert_eq!(
            Packet::new_checked(&ECHO_REQUEST[..7]).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn is_error_types() {
        for t in 0..=255u8 {
            let b = [t, 0, 0, 0, 0, 0, 0, 0];
            let want = matches!(t, 3 | 4 | 5 | 11 | 12);
            assert_eq!(Packet::new_checked(&b[..]).unwrap().is_error(), want, "{t}");
        }
    }

    #[test]
    fn error_quote_limit() {
        let big = [0u8; 1500];
        assert_eq!(error_quote(&big).len(), 548);
        assert_eq!(error_quote(&QUOTE).len(), 28);
        let r = Icmpv4Repr::TimeExceeded {
            code: 0,
            invoking: error_quote(&big),
        };
        assert_eq!(r.buffer_len(), ERROR_MAX_LEN);
        assert_eq!(ERROR_MAX_LEN + 20, 576);
    }

    #[test]
    fn setters_then_getters() {
        let mut b = [0u8; 12];
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_msg_type(msg::DST_UNREACHABLE);
        p.set_code(unreach::ADMIN_PROHIBITED);
        p.set_echo_ident(0x1234);
        p.set_echo_seq(0x5678);
        assert_eq!((p.echo_ident(), p.echo_seq()), (0x1234, 0x5678));
        p.set_next_hop_mtu(1280);
        assert_eq!(p.next_hop_mtu(), 1280);
        assert_eq!(p.echo_seq(), 1280);
        p.set_rest_of_header(0xdeadbeef);
        assert_eq!(p.pointer(), 0xde);
        assert_eq!(p.echo_ident(), 0xdead);
        p.set_pointer(7);
        assert_eq!(p.pointer(), 7);
        p.data_mut().copy_from_slice(&[1, 2, 3, 4]);
        p.set_checksum(0xabcd);
        assert_eq!(p.checksum(), 0xabcd);
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.msg_type(), 3);
        assert_eq!(p.code(), 13);
        assert_eq!(p.data(), &[1, 2, 3, 4]);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..80),
                                    fix in any::<bool>()) {
            // Half the cases get a valid checksum so parse goes past the check.
            if fix && data.len() >= HEADER_LEN {
                Packet::new_unchecked(&mut data[..]).fill_checksum();
            }
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let _ = (p.is_error(), p.next_hop_mtu(), p.pointer());
                if let Ok(r) = Icmpv4Repr::parse(&p) {
                    prop_assert_eq!(r.buffer_len(), data.len());
                    let mut out = vec![0u8; r.buffer_len()];
                    r.emit(&mut Packet::new_unchecked(&mut out[..]));
                    prop_assert_eq!(Icmpv4Repr::parse(&Packet::new_checked(&out[..]).unwrap()), Ok(r));
                }
            } else {
                prop_assert!(data.len() < HEADER_LEN);
            }
            let _ = Icmpv4Repr::parse(&Packet::new_unchecked(&data[..]));
        }

        #[test]
        fn repr_round_trip(kind in 0u8..5, a in any::<u16>(), b in any::<u16>(), c in any::<u8>(),
                           body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let r = match kind {
                0 => Icmpv4Repr::EchoRequest { ident: a, seq_no: b, data: &body },
                1 => Icmpv4Repr::EchoReply { ident: a, seq_no: b, data: &body },
                2 => Icmpv4Repr::DstUnreachable { code: c, next_hop_mtu: a, invoking: &body },
                3 => Icmpv4Repr::TimeExceeded { code: c, invoking: &body },
                _ => Icmpv4Repr::ParamProblem { pointer: c, invoking: &body },
            };
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut out[..]));
            prop_assert_eq!(Icmpv4Repr::parse(&Packet::new_checked(&out[..]).unwrap()), Ok(r));
        }
    }
}
