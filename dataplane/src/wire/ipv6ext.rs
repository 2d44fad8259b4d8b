//! IPv6 extension headers (RFC 8200 §4) and the walk to the upper-layer header.
//!
//! Invariants:
//! - [`ExtHeader::new_checked`] accepts a buffer only if it holds the whole header its
//!   Hdr Ext Len claims (`(hdr_ext_len + 1) * 8` bytes, RFC 8200 §4.3/§4.4/§4.6/§4.8);
//!   [`FragmentHeader::new_checked`] only if it holds 8 bytes (RFC 8200 §4.5). After
//!   that no getter panics; [`ExtHeader::data`] is clamped to the buffer even if a setter
//!   grows the length.
//! - [`find_upper_layer`] is total: it reads only through checked views and `get`,
//!   every step moves the offset forward by at least 8 bytes, and it stops after
//!   [`MAX_EXT_HEADERS`] headers, so truncated or looping chains end in an error.
//! - [`FragmentRepr::parse`] and [`FragmentRepr::emit`] are inverses for every Repr
//!   `parse` returns (the offset is always a multiple of 8 bytes; reserved bits are
//!   ignored on receipt and zeroed on emit, RFC 8200 §4.5).

use super::ipv6::next_header as nh;
use super::{Result, WireError};

/// The most extension headers [`find_upper_layer`] walks before giving up with
/// `Unsupported`. Real traffic carries two or three; a long chain is an attack on the
/// parser (RFC 7112 §1, RFC 9098).
pub const MAX_EXT_HEADERS: usize = 8;

/// Length of the Fragment header (RFC 8200 §4.5).
pub const FRAGMENT_HEADER_LEN: usize = 8;

/// True when `next_header` names an IPv6 extension header (IANA "IPv6 Extension Header
/// Types", RFC 7045 §2): Hop-by-Hop, Routing, Fragment, ESP, AH, Destination Options,
/// Mobility, HIP, Shim6 and the two experimental values.
pub fn is_extension(next_header: u8) -> bool {
    matches!(
        next_header,
        nh::HOP_BY_HOP
            | nh::ROUTING
            | nh::FRAGMENT
            | nh::ESP
            | nh::AH
            | nh::DEST_OPTS
            | nh::MOBILITY
            | nh::HIP
            | nh::SHIM6
            | nh::EXPERIMENT_1
            | nh::EXPERIMENT_2
    )
}

mod field {
    use std::ops::Range;

    pub const NEXT_HEADER: usize = 0;
    pub const HDR_EXT_LEN: usize = 1;
    /// Routing header only (RFC 8200 §4.4).
    pub const ROUTING_TYPE: usize = 2;
    pub const SEGMENTS_LEFT: usize = 3;

    /// Fragment header (RFC 8200 §4.5): offset (13 bits), Res (2 bits), M flag.
    pub const FRAG_OFFSET_M: Range<usize> = 2..4;
    pub const FRAG_IDENT: Range<usize> = 4..8;
}

/// A view of an extension header in the generic format (RFC 8200 §4.8): Hop-by-Hop
/// Options, Routing, Destination Options, and Mobility, HIP and Shim6 which share it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ExtHeader<T> {
    /// Wraps a buffer without checking it; accessors panic on fewer than 8 bytes.
    pub fn new_unchecked(buffer: T) -> Self {
        ExtHeader { buffer }
    }

    /// Wraps a buffer after [`ExtHeader::check_len`] accepts it.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// `Truncated` unless the buffer holds the whole header (`header_len` bytes).
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        let ext_len = data.get(field::HDR_EXT_LEN).ok_or(WireError::Truncated)?;
        if (usize::from(*ext_len) + 1) * 8 > data.len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The Next Header after this one.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// The raw Hdr Ext Len: 8-byte units, not counting the first 8 bytes.
    pub fn hdr_ext_len(&self) -> u8 {
        self.buffer.as_ref()[field::HDR_EXT_LEN]
    }

    /// The header's length in bytes: `(hdr_ext_len + 1) * 8`, 8 to 2048.
    pub fn header_len(&self) -> usize {
        (usize::from(self.hdr_ext_len()) + 1) * 8
    }

    /// Bytes `2 .. header_len`: the options (Hop-by-Hop, Destination Options) or the
    /// type-specific data (Routing). Clamped to the buffer.
    pub fn data(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let end = self.header_len().min(data.len());
        data.get(2..end).unwrap_or(&[])
    }

    /// Routing header's Routing Type (RFC 8200 §4.4); byte 2 for other headers.
    pub fn routing_type(&self) -> u8 {
        self.buffer.as_ref()[field::ROUTING_TYPE]
    }

    /// Routing header's Segments Left (RFC 8200 §4.4); byte 3 for other headers. A node
    /// that does not know the routing type ignores the header when this is 0 and sends
    /// Parameter Problem code 0 otherwise.
    pub fn segments_left(&self) -> u8 {
        self.buffer.as_ref()[field::SEGMENTS_LEFT]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ExtHeader<T> {
    /// Sets the Next Header.
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    /// Sets the raw Hdr Ext Len (8-byte units after the first 8).
    pub fn set_hdr_ext_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HDR_EXT_LEN] = v;
    }

    /// Sets the Routing Type (byte 2).
    pub fn set_routing_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::ROUTING_TYPE] = v;
    }

    /// Sets Segments Left (byte 3).
    pub fn set_segments_left(&mut self, v: u8) {
        self.buffer.as_mut()[field::SEGMENTS_LEFT] = v;
    }

    /// Bytes `2 .. header_len`, mutable; clamped like [`ExtHeader::data`].
    pub fn data_mut(&mut self) -> &mut [u8] {
        let len = self.header_len();
        let data = self.buffer.as_mut();
        let end = len.min(data.len());
        data.get_mut(2..end).unwrap_or(&mut [])
    }
}

/// A view of the Fragment header (RFC 8200 §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FragmentHeader<T> {
    /// Wraps a buffer without checking it; accessors panic on fewer than 8 bytes.
    pub fn new_unchecked(buffer: T) -> Self {
        FragmentHeader { buffer }
    }

    /// Wraps a buffer of at least [`FRAGMENT_HEADER_LEN`] bytes (else `Truncated`).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// `Truncated` unless the buffer holds 8 bytes.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < FRAGMENT_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn offset_m(&self) -> u16 {
        let d = &self.buffer.as_ref()[field::FRAG_OFFSET_M];
        u16::from_be_bytes([d[0], d[1]])
    }

    /// The Next Header of the fragmentable part.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// The fragment's offset in bytes (the 13-bit field times 8).
    pub fn frag_offset(&self) -> u16 {
        self.offset_m() & 0xfff8
    }

    /// The M flag: more fragments follow.
    pub fn more_frags(&self) -> bool {
        self.offset_m() & 1 == 1
    }

    /// The Identification shared by all fragments of one packet.
    pub fn ident(&self) -> u32 {
        let d = &self.buffer.as_ref()[field::FRAG_IDENT];
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> FragmentHeader<T> {
    fn set_offset_m(&mut self, v: u16) {
        self.buffer.as_mut()[field::FRAG_OFFSET_M].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the Next Header.
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    /// Sets the offset in bytes; the low 3 bits of `bytes` are dropped (offsets are in
    /// 8-byte units).
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let v = (self.offset_m() & 0x0007) | (bytes & 0xfff8);
        self.set_offset_m(v);
    }

    /// Sets the M flag.
    pub fn set_more_frags(&mut self, more: bool) {
        let v = (self.offset_m() & !1) | u16::from(more);
        self.set_offset_m(v);
    }

    /// Sets the Identification.
    pub fn set_ident(&mut self, ident: u32) {
        self.buffer.as_mut()[field::FRAG_IDENT].copy_from_slice(&ident.to_be_bytes());
    }

    /// Zeroes both reserved fields (byte 1 and the Res bits), as a sender must.
    pub fn clear_reserved(&mut self) {
        self.buffer.as_mut()[1] = 0;
        let v = self.offset_m() & 0xfff9;
        self.set_offset_m(v);
    }
}

/// The meaning of a Fragment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentRepr {
    /// Next Header of the fragmentable part.
    pub next_header: u8,
    /// Offset in bytes; a multiple of 8 (the low 3 bits are not emitted).
    pub frag_offset: u16,
    /// More fragments follow (M flag).
    pub more_frags: bool,
    /// Identification.
    pub ident: u32,
}

impl FragmentRepr {
    /// Reads a Fragment header. Reserved fields are ignored (RFC 8200 §4.5).
    pub fn parse<T: AsRef<[u8]>>(header: &FragmentHeader<T>) -> Result<FragmentRepr> {
        header.check_len()?;
        Ok(FragmentRepr {
            next_header: header.next_header(),
            frag_offset: header.frag_offset(),
            more_frags: header.more_frags(),
            ident: header.ident(),
        })
    }

    /// Bytes [`FragmentRepr::emit`] writes: 8.
    pub const fn buffer_len(&self) -> usize {
        FRAGMENT_HEADER_LEN
    }

    /// True for an atomic fragment (offset 0, no more fragments; RFC 6946): the packet
    /// is whole and is processed without reassembly.
    pub fn is_atomic(&self) -> bool {
        self.frag_offset == 0 && !self.more_frags
    }

    /// Writes the header with reserved fields zeroed. Panics on fewer than 8 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, header: &mut FragmentHeader<T>) {
        header.set_next_header(self.next_header);
        header.buffer.as_mut()[1] = 0;
        header.set_offset_m((self.frag_offset & 0xfff8) | u16::from(self.more_frags));
        header.set_ident(self.ident);
    }
}

/// Where the upper-layer header of an IPv6 packet starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpperLayer {
    /// The upper-layer protocol ([`super::ipv6::next_header`]); `ESP` when the chain
    /// ends in an ESP header, `NO_NEXT` when nothing follows.
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 payload.
    pub offset: usize,
    /// The Fragment header on the way, if any (the first one when there are several).
    pub fragment: Option<FragmentRepr>,
}

/// Walks the extension-header chain of an IPv6 payload (RFC 8200 §4.1) from the fixed
/// header's Next Header `first_next_header` to the first header that is not an
/// extension header.
///
/// - Stops early at a non-first fragment (offset ≠ 0): what follows is the middle of
///   the fragmentable part, so it reports the Fragment header's Next Header and the
///   offset just past the Fragment header.
/// - Stops at ESP (RFC 4303): what follows is encrypted; reports `ESP`.
/// - Hop-by-Hop anywhere but first is `Malformed` (RFC 8200 §4.1, §4.3).
/// - AH length is `(len + 2) * 4` bytes and must be a multiple of 8 and at least 12
///   (RFC 4302 §2.2), else `Malformed`.
/// - More than [`MAX_EXT_HEADERS`] headers is `Unsupported`; a header running past
///   `payload` is `Truncated`.
pub fn find_upper_layer(first_next_header: u8, payload: &[u8]) -> Result<UpperLayer> {
    let mut next = first_next_header;
    let mut offset = 0usize;
    let mut fragment: Option<FragmentRepr> = None;
    let mut walked = 0usize;
    loop {
        if !is_extension(next) || next == nh::ESP {
            return Ok(UpperLayer {
                protocol: next,
                offset,
                fragment,
            });
        }
        if walked == MAX_EXT_HEADERS {
            return Err(WireError::Unsupported);
        }
        if next == nh::HOP_BY_HOP && walked != 0 {
            return Err(WireError::Malformed);
        }
        walked += 1;
        let rest = payload.get(offset..).ok_or(WireError::Truncated)?;
        match next {
            nh::FRAGMENT => {
                let repr = FragmentRepr::parse(&FragmentHeader::new_checked(rest)?)?;
                offset += FRAGMENT_HEADER_LEN;
                let first = *fragment.get_or_insert(repr);
                if repr.frag_offset != 0 {
                    return Ok(UpperLayer {
                        protocol: repr.next_header,
                        offset,
                        fragment: Some(first),
                    });
                }
                next = repr.next_header;
            }
            nh::AH => {
                let (&ah_next, &ah_len) =
                    rest.first().zip(rest.get(1)).ok_or(WireError::Truncated)?;
                let len = (usize::from(ah_len) + 2) * 4;
                if len < 12 || len % 8 != 0 {
                    return Err(WireError::Malformed);
                }
                if len > rest.len() {
                    return Err(WireError::Truncated);
                }
                offset += len;
                next = ah_next;
            }
            _ => {
                let h = ExtHeader::new_checked(rest)?;
                offset += h.header_len();
                next = h.next_header();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::checksum;
    use super::super::ipv6::{self, Packet};
    use super::*;
    use proptest::prelude::*;

    /// First fragment of a UDP datagram 2001:db8::1:5000 -> 2001:db8::2:53 carrying
    /// "aves-frag-test!!", with a Hop-by-Hop header (Router Alert, RFC 2711, + PadN).
    /// UDP checksum 0xb9b2 over the whole datagram, computed independently.
    const FRAG1: [u8; 72] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x40, // payload 32, next HBH, hop 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, //
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, //
        0x2c, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00, // HBH: next Fragment, RA, PadN
        0x11, 0x00, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef, // Frag: UDP, off 0, M, id
        0x13, 0x88, 0x00, 0x35, 0x00, 0x18, 0xb9, 0xb2, // UDP header, len 24
        b'a', b'v', b'e', b's', b'-', b'f', b'r', b'a', //
    ];

    /// The second (last) fragment: offset 16, M clear, the remaining 8 bytes.
    const FRAG2: [u8; 64] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x18, 0x00, 0x40, //
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, //
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, //
        0x2c, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00, //
        0x11, 0x00, 0x00, 0x10, 0xde, 0xad, 0xbe, 0xef, // off 16, M clear
        b'g', b'-', b't', b'e', b's', b't', b'!', b'!', //
    ];

    #[test]
    fn first_fragment_walks_to_udp() {
        let p = Packet::new_checked(&FRAG1[..]).unwrap();
        let ul = find_upper_layer(p.next_header(), p.payload()).unwrap();
        assert_eq!(ul.protocol, ipv6::next_header::UDP);
        assert_eq!(ul.offset, 16);
        assert_eq!(
            ul.fragment,
            Some(FragmentRepr {
                next_header: 17,
                frag_offset: 0,
                more_frags: true,
                ident: 0xdead_beef
            })
        );
        assert!(!ul.fragment.unwrap().is_atomic());
        assert_eq!(&p.payload()[ul.offset..ul.offset + 2], &[0x13, 0x88]);

        let hbh = ExtHeader::new_checked(p.payload()).unwrap();
        assert_eq!(hbh.next_header(), ipv6::next_header::FRAGMENT);
        assert_eq!(hbh.header_len(), 8);
        assert_eq!(hbh.data(), &[0x05, 0x02, 0x00, 0x00, 0x01, 0x00]);
    }

    #[test]
    fn later_fragment_stops_after_fragment_header() {
        let p = Packet::new_checked(&FRAG2[..]).unwrap();
        let ul = find_upper_layer(p.next_header(), p.payload()).unwrap();
        assert_eq!(ul.protocol, ipv6::next_header::UDP);
        assert_eq!(ul.offset, 16);
        let f = ul.fragment.unwrap();
        assert_eq!(
            (f.frag_offset, f.more_frags, f.ident),
            (16, false, 0xdead_beef)
        );
    }

    #[test]
    fn reassembled_fragments_verify_udp_checksum() {
        // Ties the two literals together: the fragmentable parts, joined at their
        // offsets, form a UDP datagram whose checksum verifies.
        let mut whole = [0u8; 24];
        for pkt in [&FRAG1[..], &FRAG2[..]] {
            let p = Packet::new_checked(pkt).unwrap();
            let ul = find_upper_layer(p.next_header(), p.payload()).unwrap();
            let part = &p.payload()[ul.offset..];
            let at = usize::from(ul.fragment.unwrap().frag_offset);
            whole[at..at + part.len()].copy_from_slice(part);
        }
        let p = Packet::new_checked(&FRAG1[..]).unwrap();
        let acc = checksum::pseudo_v6(p.src(), p.dst(), 17, 24);
        assert_eq!(checksum::fold(checksum::sum(acc, &whole)), 0xffff);
        assert_eq!(&whole[8..], b"aves-frag-test!!");
    }

    #[test]
    fn fragment_repr_emit_matches_literal() {
        let r = FragmentRepr::parse(&FragmentHeader::new_checked(&FRAG2[48..56]).unwrap()).unwrap();
        let mut buf = [0xffu8; 8];
        r.emit(&mut FragmentHeader::new_unchecked(&mut buf[..]));
        assert_eq!(buf, FRAG2[48..56]);
        assert_eq!(r.buffer_len(), 8);
    }

    #[test]
    fn fragment_setters_and_reserved_bits() {
        // Reserved byte and Res bits set: ignored on receipt.
        let mut buf = [0x3a, 0xff, 0x00, 0x07, 0, 0, 0, 9];
        let mut h = FragmentHeader::new_checked(&mut buf[..]).unwrap();
        assert_eq!(h.frag_offset(), 0);
        assert!(h.more_frags());
        assert_eq!(h.ident(), 9);
        h.set_frag_offset(1232 + 7); // low bits dropped
        assert_eq!(h.frag_offset(), 1232);
        assert!(h.more_frags());
        h.set_more_frags(false);
        assert!(!h.more_frags());
        assert_eq!(h.frag_offset(), 1232);
        h.clear_reserved();
        h.set_ident(0x0102_0304);
        h.set_next_header(6);
        assert_eq!(buf, [6, 0, 0x04, 0xd0, 1, 2, 3, 4]);
    }

    #[test]
    fn routing_dest_opts_ah_chain() {
        let payload = [
            // Destination Options, 16 bytes: next Routing, PadN 12.
            43, 1, 0x01, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            // Routing header, 8 bytes: next AH, type 4, segments left 0.
            51, 0, 4, 0, 0, 0, 0, 0, // AH, len 4 -> 24 bytes: next TCP.
            6, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            // TCP would start here.
            0x00, 0x50,
        ];
        let ul = find_upper_layer(ipv6::next_header::DEST_OPTS, &payload).unwrap();
        assert_eq!(ul.protocol, ipv6::next_header::TCP);
        assert_eq!(ul.offset, 48);
        assert_eq!(ul.fragment, None);

        let rh = ExtHeader::new_checked(&payload[16..]).unwrap();
        assert_eq!(rh.routing_type(), 4);
        assert_eq!(rh.segments_left(), 0);
        assert_eq!(rh.next_header(), ipv6::next_header::AH);
    }

    #[test]
    fn stops_at_esp_no_next_and_upper_layers() {
        let esp = [0u8; 8];
        let ul = find_upper_layer(ipv6::next_header::ESP, &esp).unwrap();
        assert_eq!((ul.protocol, ul.offset), (ipv6::next_header::ESP, 0));
        let ul = find_upper_layer(ipv6::next_header::ICMPV6, &[]).unwrap();
        assert_eq!((ul.protocol, ul.offset), (58, 0));
        // Destination Options then No Next Header: nothing follows.
        let dst = [59, 0, 1, 4, 0, 0, 0, 0];
        let ul = find_upper_layer(ipv6::next_header::DEST_OPTS, &dst).unwrap();
        assert_eq!((ul.protocol, ul.offset), (ipv6::next_header::NO_NEXT, 8));
    }

    #[test]
    fn atomic_fragment_is_walked_through() {
        let payload = [17, 0, 0, 0, 0, 0, 0, 7, 0x13, 0x88];
        let ul = find_upper_layer(ipv6::next_header::FRAGMENT, &payload).unwrap();
        assert_eq!((ul.protocol, ul.offset), (17, 8));
        assert!(ul.fragment.unwrap().is_atomic());
    }

    /// `n` Destination Options headers of 8 bytes each, the last pointing at UDP.
    fn dest_opts_chain(n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..n {
            let next = if i + 1 == n { 17 } else { 60 };
            v.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        v
    }

    #[test]
    fn chain_length_limit() {
        let ok = dest_opts_chain(MAX_EXT_HEADERS);
        let ul = find_upper_layer(60, &ok).unwrap();
        assert_eq!((ul.protocol, ul.offset), (17, 8 * MAX_EXT_HEADERS));
        let long = dest_opts_chain(MAX_EXT_HEADERS + 1);
        assert_eq!(find_upper_layer(60, &long), Err(WireError::Unsupported));
    }

    #[test]
    fn malformed_and_truncated_chains() {
        // Hop-by-Hop after another header.
        let p = [0, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0];
        assert_eq!(find_upper_layer(60, &p), Err(WireError::Malformed));
        // Hop-by-Hop first is fine.
        assert_eq!(find_upper_layer(0, &p[8..]).unwrap().offset, 8);
        // Header claims 16 bytes, 8 present.
        assert_eq!(
            find_upper_layer(60, &[17, 1, 0, 0, 0, 0, 0, 0]),
            Err(WireError::Truncated)
        );
        // Empty, one byte, short fragment.
        assert_eq!(find_upper_layer(0, &[]), Err(WireError::Truncated));
        assert_eq!(find_upper_layer(43, &[17]), Err(WireError::Truncated));
        assert_eq!(
            find_upper_layer(44, &[17, 0, 0, 0]),
            Err(WireError::Truncated)
        );
        // AH lengths: 8 bytes (len 0) and 12 bytes (len 1, not a multiple of 8).
        assert_eq!(
            find_upper_layer(51, &[6, 0, 0, 0, 0, 0, 0, 0]),
            Err(WireError::Malformed)
        );
        assert_eq!(
            find_upper_layer(51, &[6, 1, 0, 0]),
            Err(WireError::Malformed)
        );
        assert_eq!(
            find_upper_layer(51, &[6, 2, 0, 0, 0, 0, 0, 0]),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn ext_header_checks_and_setters() {
        assert_eq!(
            ExtHeader::new_checked(&[0u8][..]),
            Err(WireError::Truncated)
        );
        assert_eq!(
            ExtHeader::new_checked(&[0u8; 7][..]),
            Err(WireError::Truncated)
        );
        let mut buf = [0u8; 16];
        let mut h = ExtHeader::new_checked(&mut buf[..]).unwrap();
        h.set_next_header(17);
        h.set_hdr_ext_len(1);
        assert_eq!(h.header_len(), 16);
        assert_eq!(h.data().len(), 14);
        h.set_routing_type(3);
        h.set_segments_left(2);
        h.data_mut()[13] = 0xaa;
        h.set_hdr_ext_len(9); // grown past the buffer: data stays in bounds
        assert_eq!(h.data().len(), 14);
        assert_eq!(h.data_mut().len(), 14);
        assert_eq!(buf, [17, 9, 3, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa]);
    }

    proptest! {
        #[test]
        fn find_upper_layer_never_panics(first in prop_oneof![
                                             Just(0u8), Just(43), Just(44), Just(51),
                                             Just(60), any::<u8>()],
                                         data in proptest::collection::vec(any::<u8>(), 0..96)) {
            if let Ok(ul) = find_upper_layer(first, &data) {
                prop_assert!(ul.offset <= data.len());
            }
        }

        #[test]
        fn chain_of_real_headers_never_panics(
            kinds in proptest::collection::vec(prop_oneof![
                Just(43u8), Just(44), Just(51), Just(60), Just(135)], 0..12),
            lens in proptest::collection::vec(0u8..4, 12),
            cut in any::<prop::sample::Index>()) {
            // Builds well-formed chains then truncates them anywhere.
            let mut v = Vec::new();
            for (i, k) in kinds.iter().enumerate() {
                let next = kinds.get(i + 1).copied().unwrap_or(17);
                let len = match k {
                    44 => 8,
                    51 => (usize::from(lens[i] * 2) + 4) * 4,
                    _ => (usize::from(lens[i]) + 1) * 8,
                };
                let start = v.len();
                v.resize(start + len, 0);
                v[start] = next;
                v[start + 1] = match k { 44 => 0, 51 => lens[i] * 2 + 2, _ => lens[i] };
            }
            let first = kinds.first().copied().unwrap_or(17);
            let full = find_upper_layer(first, &v);
            if kinds.len() <= MAX_EXT_HEADERS {
                prop_assert_eq!(full.unwrap().offset, v.len());
            } else {
                prop_assert_eq!(full, Err(WireError::Unsupported));
            }
            let cut = cut.index(v.len() + 1);
            let _ = find_upper_layer(first, &v[..cut]);
        }

        #[test]
        fn views_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(h) = ExtHeader::new_checked(&data[..]) {
                prop_assert_eq!(h.data().len(), h.header_len() - 2);
                let _ = (h.routing_type(), h.segments_left());
            }
            if let Ok(f) = FragmentHeader::new_checked(&data[..]) {
                let r = FragmentRepr::parse(&f).unwrap();
                prop_assert_eq!(r.frag_offset % 8, 0);
            }
        }

        #[test]
        fn fragment_round_trip(next_header in any::<u8>(), off in any::<u16>(),
                               more_frags in any::<bool>(), ident in any::<u32>()) {
            let r = FragmentRepr { next_header, frag_offset: off & 0xfff8, more_frags, ident };
            let mut buf = [0xffu8; 8];
            r.emit(&mut FragmentHeader::new_unchecked(&mut buf[..]));
            prop_assert_eq!(buf[1], 0);
            prop_assert_eq!(buf[3] & 0x06, 0);
            let h = FragmentHeader::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(FragmentRepr::parse(&h).unwrap(), r);
        }
    }
}
