//! TCP segments (RFC 9293): header view, checksums, and MSS clamping for tunnels.
//!
//! Invariants: a [`Packet`] made by [`Packet::new_checked`] satisfies
//! `20 <= header_len <= buffer.len()`, so every accessor indexes without panicking.
//! The buffer is exactly the segment (the IP payload, padding excluded): the payload
//! and the checksum run to its end (RFC 9293 §3.1). The option walk
//! ([`Packet::mss`], [`Packet::clamp_mss`]) is total: a malformed option list yields
//! `None` / no change, never a panic or an out-of-bounds read.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::ipv4::protocol::TCP;
use super::{Result, WireError};

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// Bits of the flags byte (byte 13; RFC 9293 §3.1, RFC 3168 §6.1 for ECE/CWR).
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field is significant.
    pub const URG: u8 = 0x20;
    /// ECN echo (RFC 3168).
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced (RFC 3168).
    pub const CWR: u8 = 0x80;
}

/// TCP option kinds this code walks (RFC 9293 §3.2).
mod option {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const MSS_LEN: usize = 4;
}

mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// A view of a TCP segment over a byte buffer.
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

    /// [`WireError::Truncated`] when the buffer is shorter than 20 bytes or than the
    /// data offset says; [`WireError::Malformed`] when the data offset is below 5.
    #[inline]
    pub fn check(&self) -> Result<()> {
        let n = self.buffer.as_ref().len();
        if n < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let h = self.header_len();
        if h < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if h > n {
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

    #[inline]
    fn u32_at(&self, r: std::ops::Range<usize>) -> u32 {
        let d = self.buffer.as_ref();
        u32::from_be_bytes([d[r.start], d[r.start + 1], d[r.start + 2], d[r.start + 3]])
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

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        self.u32_at(field::SEQ)
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        self.u32_at(field::ACK)
    }

    /// Header length in bytes (data offset × 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The flags byte (see [`flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// SYN flag.
    #[inline]
    pub fn syn(&self) -> bool {
        self.flags() & flags::SYN != 0
    }

    /// ACK flag.
    #[inline]
    pub fn ack(&self) -> bool {
        self.flags() & flags::ACK != 0
    }

    /// FIN flag.
    #[inline]
    pub fn fin(&self) -> bool {
        self.flags() & flags::FIN != 0
    }

    /// RST flag.
    #[inline]
    pub fn rst(&self) -> bool {
        self.flags() & flags::RST != 0
    }

    /// Receive window.
    #[inline]
    pub fn window(&self) -> u16 {
        self.u16_at(field::WINDOW)
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        self.u16_at(field::URGENT)
    }

    /// The options (bytes 20..header_len).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// The payload (bytes header_len..).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// True when the checksum verifies over the IPv4 pseudo-header and the segment.
    #[inline]
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let d = self.buffer.as_ref();
        // A segment longer than 65535 bytes cannot travel in IPv4; the cast only keeps
        // this total.
        let acc = checksum::pseudo_v4(src, dst, TCP, d.len() as u16);
        checksum::fold(checksum::sum(acc, d)) == 0xffff
    }

    /// True when the checksum verifies over the IPv6 pseudo-header and the segment.
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let d = self.buffer.as_ref();
        let acc = checksum::pseudo_v6(src, dst, TCP, d.len() as u32);
        checksum::fold(checksum::sum(acc, d)) == 0xffff
    }

    /// Offset in the segment of the MSS option's value, walking the options as
    /// RFC 9293 §3.2 lays them out; `None` when absent or the list is malformed.
    #[inline]
    fn mss_offset(&self) -> Option<usize> {
        let opts = self
            .buffer
            .as_ref()
            .get(MIN_HEADER_LEN..self.header_len())?;
        let mut i = 0;
        while let Some(&kind) = opts.get(i) {
            match kind {
                option::END => return None,
                option::NOP => i += 1,
                _ => {
                    let len = usize::from(*opts.get(i + 1)?);
                    if len < 2 || i + len > opts.len() {
                        return None;
                    }
                    if kind == option::MSS {
                        return (len == option::MSS_LEN).then_some(MIN_HEADER_LEN + i + 2);
                    }
                    i += len;
                }
            }
        }
        None
    }

    /// The Maximum Segment Size option (kind 2, length 4), if present and the option
    /// list up to it is well formed.
    #[inline]
    pub fn mss(&self) -> Option<u16> {
        let at = self.mss_offset()?;
        let d = self.buffer.as_ref();
        Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
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

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, value: u32) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, value: u32) {
        self.buffer.as_mut()[field::ACK].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the data offset for a `header_len`-byte header (a multiple of 4, 20..=60;
    /// lower bits and higher values are cut to fit the 4-bit field). The reserved bits
    /// are cleared.
    #[inline]
    pub fn set_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::DATA_OFFSET] = (((header_len / 4) & 0x0f) as u8) << 4;
    }

    /// Sets the flags byte.
    #[inline]
    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[field::FLAGS] = value;
    }

    /// Sets the receive window.
    #[inline]
    pub fn set_window(&mut self, value: u16) {
        self.set_u16_at(field::WINDOW, value);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.set_u16_at(field::CHECKSUM, value);
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent(&mut self, value: u16) {
        self.set_u16_at(field::URGENT, value);
    }

    /// The options (20..header_len), mutable.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[MIN_HEADER_LEN..end]
    }

    /// The payload (header_len..), mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }

    #[inline]
    fn finish_checksum(&mut self, acc: u32) {
        self.set_checksum(0);
        let c = !checksum::fold(checksum::sum(acc, self.buffer.as_ref()));
        self.set_checksum(c);
    }

    /// Computes and writes the checksum over the IPv4 pseudo-header and the segment.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let len = self.buffer.as_ref().len() as u16;
        self.finish_checksum(checksum::pseudo_v4(src, dst, TCP, len));
    }

    /// Computes and writes the checksum over the IPv6 pseudo-header and the segment.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let len = self.buffer.as_ref().len() as u32;
        self.finish_checksum(checksum::pseudo_v6(src, dst, TCP, len));
    }

    /// Lowers the MSS option to `max` when it is larger, updating the checksum
    /// incrementally (RFC 1624), so SYNs through a tunnel ask for segments that fit
    /// its MTU. Returns whether the segment changed. MSS only appears on SYN segments
    /// (RFC 9293 §3.7.1); which segments to clamp is the caller's choice.
    #[inline]
    pub fn clamp_mss(&mut self, max: u16) -> bool {
        let Some(at) = self.mss_offset() else {
            return false;
        };
        let Some(old) = self.mss() else {
            return false;
        };
        if old <= max {
            return false;
        }
        let Some(slot) = self.buffer.as_mut().get_mut(at..at + 2) else {
            return false;
        };
        slot.copy_from_slice(&max.to_be_bytes());
        // Options start at an even offset but a NOP can put the MSS value at an odd one.
        // The sum is byte-order independent (RFC 1071 §2(B)): a 16-bit value at an odd
        // offset adds as its byte-swapped self.
        let (o, n) = if at % 2 == 0 {
            (old, max)
        } else {
            (old.swap_bytes(), max.swap_bytes())
        };
        let c = checksum::update16(self.checksum(), o, n);
        self.set_checksum(c);
        true
    }
}

/// The meaning of a TCP header: every field but the checksum, and of the options only
/// the MSS. Enough to build a SYN or a RST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgment number.
    pub ack_number: u32,
    /// Flags byte (see [`flags`]).
    pub flags: u8,
    /// Receive window.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// The MSS option, if any.
    pub max_seg_size: Option<u16>,
}

impl TcpRepr {
    /// Reads the header after [`Packet::check`]. The checksum is not verified here (it
    /// needs the IP addresses); options other than MSS are skipped.
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<TcpRepr> {
        packet.check()?;
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window: packet.window(),
            urgent: packet.urgent(),
            max_seg_size: packet.mss(),
        })
    }

    /// Header bytes [`TcpRepr::emit`] writes: 20, plus 4 with an MSS option.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        if self.max_seg_size.is_some() {
            MIN_HEADER_LEN + option::MSS_LEN
        } else {
            MIN_HEADER_LEN
        }
    }

    /// Writes the header (and MSS option) with a zero checksum; write the payload
    /// after [`TcpRepr::buffer_len`] bytes, then call [`Packet::fill_checksum_v4`] or
    /// [`Packet::fill_checksum_v6`]. `packet` must hold at least `buffer_len` bytes.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.set_header_len(self.buffer_len());
        packet.set_flags(self.flags);
        packet.set_window(self.window);
        packet.set_checksum(0);
        packet.set_urgent(self.urgent);
        if let Some(mss) = self.max_seg_size {
            let m = mss.to_be_bytes();
            packet
                .options_mut()
                .copy_from_slice(&[option::MSS, option::MSS_LEN as u8, m[0], m[1]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const DST: Ipv4Addr = Ipv4Addr::new(93, 184, 216, 34);
    const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    // A Linux SYN from 192.168.1.10:42424 to 93.184.216.34:80: window 64240, options
    // MSS 1460, SACK permitted, timestamps, NOP, window scale 7. Checksum 0xa885
    // (0x449e for the same segment between SRC6 and DST6).
    const SYN: [u8; 40] = [
        0xa5, 0xb8, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0xa8, 0x85, 0x00, 0x00, // options
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x1b, 0x9e, 0x2c, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    // A SYN whose MSS follows a NOP, so its value sits at odd offset 23. Checksum
    // 0x353c; with MSS 1200 it is 0x393d.
    const SYN_ODD: [u8; 28] = [
        0xa5, 0xb8, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x70, 0x02, 0x04,
        0x00, 0x35, 0x3c, 0x00, 0x00, 0x01, 0x02, 0x04, 0x05, 0xb4, 0x00, 0x00, 0x00,
    ];

    // PSH|ACK carrying "hello\n". Checksum 0xc8e1.
    const DATA: [u8; 26] = [
        0xa5, 0xb8, 0x00, 0x50, 0x12, 0x34, 0x56, 0x79, 0xab, 0xcd, 0xef, 0x01, 0x50, 0x18, 0x01,
        0xf6, 0xc8, 0xe1, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0a,
    ];

    #[test]
    fn reads_captured_syn() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!(p.src_port(), 42424);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x1234_5678);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), flags::SYN);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst());
        assert_eq!(p.window(), 64240);
        assert_eq!(p.checksum(), 0xa885);
        assert_eq!(p.urgent(), 0);
        assert_eq!(p.options(), &SYN[20..]);
        assert!(p.payload().is_empty());
        assert_eq!(p.mss(), Some(1460));
        assert!(p.verify_checksum_v4(SRC, DST));
        assert!(!p.verify_checksum_v4(DST, Ipv4Addr::new(93, 184, 216, 35)));
    }

    #[test]
    fn reads_data_segment() {
        let p = Packet::new_checked(&DATA[..]).unwrap();
        assert_eq!(p.flags(), flags::PSH | flags::ACK);
        assert!(p.ack() && !p.syn());
        assert_eq!(p.ack_number(), 0xabcd_ef01);
        assert_eq!(p.payload(), b"hello\n");
        assert!(p.options().is_empty());
        assert_eq!(p.mss(), None);
        assert!(p.verify_checksum_v4(SRC, DST));
    }

    #[test]
    fn fill_checksums_match_known_values() {
        let mut b = DATA;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_checksum(0xffff);
        p.fill_checksum_v4(SRC, DST);
        assert_eq!(p.checksum(), 0xc8e1);
        let mut b = SYN;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum_v6(SRC6, DST6);
        assert_eq!(p.checksum(), 0x449e);
        assert!(p.verify_checksum_v6(SRC6, DST6));
        // (Swapping src and dst would still verify: the sum is commutative.)
        assert!(!p.verify_checksum_v6(SRC6, SRC6));
        p.fill_checksum_v4(SRC, DST);
        assert_eq!(p.checksum(), 0xa885);
    }

    #[test]
    fn clamp_mss_even_offset() {
        let mut b = SYN;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert!(!p.clamp_mss(1460), "equal is left alone");
        assert!(!p.clamp_mss(9000), "smaller is left alone");
        assert_eq!(p.checksum(), 0xa885);
        assert!(p.clamp_mss(1400));
        assert_eq!(p.mss(), Some(1400));
        assert_eq!(p.checksum(), 0xa8c1);
        assert!(p.verify_checksum_v4(SRC, DST));
        // Nothing else moved.
        assert_eq!(&b[..16], &SYN[..16]);
        assert_eq!(&b[24..], &SYN[24..]);
    }

    #[test]
    fn clamp_mss_odd_offset() {
        let mut b = SYN_ODD;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert!(p.verify_checksum_v4(SRC, DST));
        assert_eq!(p.mss(), Some(1460));
        assert!(p.clamp_mss(1200));
        assert_eq!(p.mss(), Some(1200));
        assert_eq!(p.checksum(), 0x393d);
        assert!(p.verify_checksum_v4(SRC, DST));
    }

    #[test]
    fn malformed_options_yield_none() {
        let with_opts = |opts: &[u8]| {
            let mut v = SYN[..20].to_vec();
            v.extend_from_slice(opts);
            v.resize(20 + opts.len().div_ceil(4) * 4, option::END);
            v[12] = ((v.len() / 4) as u8) << 4;
            v
        };
        let cases: [(&[u8], Option<u16>); 9] = [
            (&[1, 1, 2, 4, 0x02, 0x18], Some(536)),  // NOPs then MSS
            (&[0, 0, 2, 4, 0x05, 0xb4, 0, 0], None), // MSS after End
            (&[8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 2, 4, 1, 0], Some(256)), // after timestamps
            (&[2, 3, 5, 0xb4], None),                // MSS with length 3
            (&[2, 6, 5, 0xb4, 0, 0], None),          // MSS with length 6
            (&[4, 0, 2, 4, 5, 0xb4, 0, 0], None),    // zero-length option
            (&[4, 1, 2, 4, 5, 0xb4, 0, 0], None),    // length-1 option
            (&[8, 200, 2, 4], None),                 // option runs past the header
            (&[1, 1, 1, 2], None),                   // kind with no length byte
        ];
        for (opts, want) in cases {
            let mut b = with_opts(opts);
            let mut p = Packet::new_checked(&mut b[..]).unwrap();
            assert_eq!(p.mss(), want, "{opts:?}");
            let changed = p.clamp_mss(100);
            assert_eq!(changed, want.is_some(), "{opts:?}");
        }
    }

    #[test]
    fn check_errors() {
        let err = |b: &[u8]| Packet::new_checked(b).unwrap_err();
        assert_eq!(err(&SYN[..19]), WireError::Truncated);
        assert_eq!(err(&SYN[..39]), WireError::Truncated);
        let mut b = SYN;
        b[12] = 0x40; // data offset 4
        assert_eq!(err(&b), WireError::Malformed);
        b[12] = 0xf0; // 60 bytes > 40
        assert_eq!(err(&b), WireError::Truncated);
    }

    #[test]
    fn repr_emit_reproduces_syn_without_other_options() {
        // MSS-only SYN: emit, fill, compare with the same segment built by hand.
        let r = TcpRepr {
            src_port: 42424,
            dst_port: 80,
            seq_number: 0x1234_5678,
            ack_number: 0,
            flags: flags::SYN,
            window: 64240,
            urgent: 0,
            max_seg_size: Some(1460),
        };
        assert_eq!(r.buffer_len(), 24);
        let mut b = [0xeeu8; 24];
        let mut p = Packet::new_unchecked(&mut b[..]);
        r.emit(&mut p);
        p.fill_checksum_v4(SRC, DST);
        let mut want = [0u8; 24];
        want.copy_from_slice(&SYN[..24]);
        want[12] = 0x60;
        let mut w = Packet::new_unchecked(&mut want[..]);
        w.fill_checksum_v4(SRC, DST);
        assert_eq!(b, want);
        assert_eq!(
            TcpRepr::parse(&Packet::new_checked(&SYN[..]).unwrap()),
            Ok(r)
        );
        // Data segment round trip, payload included.
        let p = Packet::new_checked(&DATA[..]).unwrap();
        let r = TcpRepr::parse(&p).unwrap();
        assert_eq!(r.max_seg_size, None);
        let mut b = [0u8; 26];
        let mut q = Packet::new_unchecked(&mut b[..]);
        r.emit(&mut q);
        q.payload_mut().copy_from_slice(b"hello\n");
        q.fill_checksum_v4(SRC, DST);
        assert_eq!(b, DATA);
    }

    #[test]
    fn setters_then_getters() {
        let mut b = [0u8; 30];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_seq_number(0xdead_beef);
        p.set_ack_number(0xcafe_f00d);
        p.set_header_len(24);
        p.set_flags(flags::RST | flags::ACK | flags::FIN);
        p.set_window(3);
        p.set_checksum(4);
        p.set_urgent(5);
        p.options_mut().copy_from_slice(&[1, 1, 1, 0]);
        p.payload_mut().fill(0x77);
        assert!(p.check().is_ok());
        assert_eq!((p.src_port(), p.dst_port()), (1, 2));
        assert_eq!((p.seq_number(), p.ack_number()), (0xdead_beef, 0xcafe_f00d));
        assert_eq!(p.header_len(), 24);
        assert!(p.rst() && p.ack() && p.fin() && !p.syn());
        assert_eq!((p.window(), p.checksum(), p.urgent()), (3, 4, 5));
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[0x77; 6]);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..80),
                                    off in 0u8..16, shape in any::<bool>(), max in any::<u16>()) {
            if shape && data.len() >= MIN_HEADER_LEN {
                data[12] = off << 4;
            }
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let _ = (p.options(), p.payload(), p.verify_checksum_v4(SRC, DST), p.mss());
                let r = TcpRepr::parse(&p).unwrap();
                prop_assert_eq!(r.max_seg_size, p.mss());
                let mut copy = data.clone();
                let mut q = Packet::new_checked(&mut copy[..]).unwrap();
                q.fill_checksum_v4(SRC, DST);
                let changed = q.clamp_mss(max);
                prop_assert!(q.verify_checksum_v4(SRC, DST));
                if changed {
                    prop_assert_eq!(q.mss(), Some(max));
                }
            }
            let _ = TcpRepr::parse(&Packet::new_unchecked(&data[..]));
        }

        #[test]
        fn clamp_keeps_checksum_with_random_padding(nops in 0usize..4, mss in any::<u16>(),
                                                    max in any::<u16>(),
                                                    payload in proptest::collection::vec(any::<u8>(), 0..9)) {
            // NOPs before the MSS move it to odd and even offsets.
            let mut opts = vec![option::NOP; nops];
            opts.extend_from_slice(&[2, 4]);
            opts.extend_from_slice(&mss.to_be_bytes());
            while opts.len() % 4 != 0 {
                opts.push(option::END);
            }
            let mut b = SYN[..20].to_vec();
            b.extend_from_slice(&opts);
            b[12] = ((b.len() / 4) as u8) << 4;
            b.extend_from_slice(&payload);
            let mut p = Packet::new_checked(&mut b[..]).unwrap();
            p.fill_checksum_v6(SRC6, DST6);
            prop_assert_eq!(p.mss(), Some(mss));
            prop_assert_eq!(p.clamp_mss(max), mss > max);
            prop_assert_eq!(p.mss(), Some(mss.min(max)));
            prop_assert!(p.verify_checksum_v6(SRC6, DST6));
        }

        #[test]
        fn repr_round_trip(src_port in any::<u16>(), dst_port in any::<u16>(), seq in any::<u32>(),
                           ack in any::<u32>(), fl in any::<u8>(), window in any::<u16>(),
                           urgent in any::<u16>(), mss in proptest::option::of(any::<u16>())) {
            let r = TcpRepr { src_port, dst_port, seq_number: seq, ack_number: ack, flags: fl,
                              window, urgent, max_seg_size: mss };
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            prop_assert_eq!(TcpRepr::parse(&Packet::new_checked(&b[..]).unwrap()), Ok(r));
        }
    }
}
