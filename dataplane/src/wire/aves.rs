//! The AVES tunnel header: the 20 bytes between the outer UDP header and the inner IPv4
//! datagram (seed §3.2: `[IPW→IPR [IPA→IPB]]`, authenticated by the waypoint).
//!
//! ```text
//!  0               1               2               3
//!  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
//! +-------+-+-+-+-+---------------+-------------------------------+
//! |Version|0|0|M|H|    Key ID     |        Reserved (zero)        |
//! +-------+-+-+-+-+---------------+-------------------------------+
//! |                                                               |
//! +                  Tag (16 bytes, truncated HMAC)               +
//! |                                                               |
//! +---------------------------------------------------------------+
//! ```
//!
//! `H` (bit 0 of the flags nibble): only the inner headers are authenticated (seed §5.4);
//! `M` (bit 1): the gateway runs the multi-homing data path (seed §3.2). The layout, the
//! HMAC input and the test vectors are in `docs/protocol.md` ("Data tunnel").
//!
//! Invariants: a [`Header`] made by [`Header::new_checked`] holds at least
//! [`HEADER_LEN`] bytes, version [`VERSION`], reserved flag bits clear and reserved bytes
//! zero, so no accessor panics. What follows the header (the inner datagram) is
//! [`Header::payload`]; this view does not interpret it.

use super::{Result, WireError};

/// Length of the AVES header.
pub const HEADER_LEN: usize = 20;

/// The protocol version this code speaks (high nibble of byte 0).
pub const VERSION: u8 = 1;

/// Length of the authentication tag.
pub const TAG_LEN: usize = 16;

/// Number of header bytes the HMAC covers (version/flags, key id, reserved); the tag
/// itself is not covered.
pub const AUTHENTICATED_LEN: usize = 4;

/// Flag `H`: headers-only authentication (seed §5.4's cheaper variant).
pub const FLAG_H: u8 = 0x1;
/// Flag `M`: multi-homing mode (seed §3.2, second data path).
pub const FLAG_M: u8 = 0x2;
/// Every flag bit this version defines; the other bits of the nibble are reserved zero.
pub const FLAGS_KNOWN: u8 = FLAG_H | FLAG_M;

mod field {
    use std::ops::Range;
    pub const VER_FLAGS: usize = 0;
    pub const KEY_ID: usize = 1;
    pub const RESERVED: Range<usize> = 2..4;
    pub const TAG: Range<usize> = 4..20;
}

/// A view of an AVES header (and the inner datagram after it) over a byte buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps `buffer` without checking it; accessors may panic on a short buffer. Use
    /// [`Header::new_checked`] for bytes from the wire.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Header<T> {
        Header { buffer }
    }

    /// Wraps `buffer` after [`Header::check`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Header<T>> {
        let h = Self::new_unchecked(buffer);
        h.check()?;
        Ok(h)
    }

    /// [`WireError::Truncated`] when the buffer is shorter than [`HEADER_LEN`];
    /// [`WireError::Malformed`] for a version other than [`VERSION`], a reserved flag
    /// bit set, or non-zero reserved bytes (so a later version that uses them is
    /// refused rather than misread).
    #[inline]
    pub fn check(&self) -> Result<()> {
        let d = self.buffer.as_ref();
        if d.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != VERSION
            || self.flags() & !FLAGS_KNOWN != 0
            || d[field::RESERVED] != [0, 0]
        {
            return Err(WireError::Malformed);
        }
        Ok(())
    }

    /// Gives back the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Protocol version (high nibble of byte 0).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_FLAGS] >> 4
    }

    /// The flags nibble (low nibble of byte 0): [`FLAG_H`], [`FLAG_M`].
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::VER_FLAGS] & 0x0f
    }

    /// True when only the inner headers are authenticated ([`FLAG_H`]).
    #[inline]
    pub fn headers_only(&self) -> bool {
        self.flags() & FLAG_H != 0
    }

    /// True when the gateway is to use the multi-homing data path ([`FLAG_M`]).
    #[inline]
    pub fn multihoming(&self) -> bool {
        self.flags() & FLAG_M != 0
    }

    /// Identifier of the key that made the tag.
    #[inline]
    pub fn key_id(&self) -> u8 {
        self.buffer.as_ref()[field::KEY_ID]
    }

    /// The 16-byte tag.
    #[inline]
    pub fn tag(&self) -> &[u8] {
        &self.buffer.as_ref()[field::TAG]
    }

    /// The header bytes the HMAC covers: bytes 0..4 (version/flags, key id, reserved).
    #[inline]
    pub fn authenticated(&self) -> &[u8] {
        &self.buffer.as_ref()[..AUTHENTICATED_LEN]
    }

    /// The bytes after the header: the inner datagram.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    /// Writes [`VERSION`] and the flags nibble (bits above it are dropped).
    #[inline]
    pub fn set_version_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::VER_FLAGS] = VERSION << 4 | (flags & 0x0f);
    }

    /// Sets the key id.
    #[inline]
    pub fn set_key_id(&mut self, id: u8) {
        self.buffer.as_mut()[field::KEY_ID] = id;
    }

    /// Zeroes the reserved bytes.
    #[inline]
    pub fn clear_reserved(&mut self) {
        self.buffer.as_mut()[field::RESERVED].copy_from_slice(&[0, 0]);
    }

    /// Sets the tag.
    #[inline]
    pub fn set_tag(&mut self, tag: &[u8; TAG_LEN]) {
        self.buffer.as_mut()[field::TAG].copy_from_slice(tag);
    }

    /// The bytes after the header, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// The meaning of an AVES header, without its tag (which depends on the whole packet;
/// see `crate::pipeline::tunnel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvesRepr {
    /// Flags: [`FLAG_H`] and/or [`FLAG_M`]. [`AvesRepr::emit`] writes only
    /// [`FLAGS_KNOWN`] bits.
    pub flags: u8,
    /// Key id.
    pub key_id: u8,
}

impl AvesRepr {
    /// Reads a header after [`Header::check`].
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(header: &Header<&T>) -> Result<AvesRepr> {
        header.check()?;
        Ok(AvesRepr {
            flags: header.flags(),
            key_id: header.key_id(),
        })
    }

    /// Bytes [`AvesRepr::emit`] writes: [`HEADER_LEN`].
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// The first [`AUTHENTICATED_LEN`] bytes [`AvesRepr::emit`] writes (version and
    /// flags, key id, reserved zero), computed without reading them back.
    #[inline]
    pub fn authenticated_bytes(&self) -> [u8; AUTHENTICATED_LEN] {
        [VERSION << 4 | (self.flags & FLAGS_KNOWN), self.key_id, 0, 0]
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `header` (which must be
    /// that long) with a zero tag, for the caller to fill once the packet is complete.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, header: &mut Header<T>) {
        header.set_version_flags(self.flags & FLAGS_KNOWN);
        header.set_key_id(self.key_id);
        header.clear_reserved();
        header.set_tag(&[0; TAG_LEN]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Version 1, flags H|M, key id 7, reserved zero, a tag of 0xa0..0xaf, then the
    // first bytes of an inner IPv4 header.
    const HDR: [u8; 24] = [
        0x13, 0x07, 0x00, 0x00, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa,
        0xab, 0xac, 0xad, 0xae, 0xaf, // inner
        0x45, 0x00, 0x00, 0x54,
    ];

    #[test]
    fn reads_literal_header() {
        let h = Header::new_checked(&HDR[..]).unwrap();
        assert_eq!(h.version(), 1);
        assert_eq!(h.flags(), FLAG_H | FLAG_M);
        assert!(h.headers_only());
        assert!(h.multihoming());
        assert_eq!(h.key_id(), 7);
        assert_eq!(h.tag(), &HDR[4..20]);
        assert_eq!(h.authenticated(), &[0x13, 0x07, 0, 0]);
        assert_eq!(h.payload(), &[0x45, 0x00, 0x00, 0x54]);
        assert_eq!(
            AvesRepr::parse(&h),
            Ok(AvesRepr {
                flags: 3,
                key_id: 7
            })
        );
    }

    #[test]
    fn flags_are_independent() {
        let mut b = HDR;
        b[0] = 0x10;
        let h = Header::new_checked(&b[..]).unwrap();
        assert!(!h.headers_only() && !h.multihoming());
        b[0] = 0x11;
        let h = Header::new_checked(&b[..]).unwrap();
        assert!(h.headers_only() && !h.multihoming());
        b[0] = 0x12;
        let h = Header::new_checked(&b[..]).unwrap();
        assert!(!h.headers_only() && h.multihoming());
    }

    #[test]
    fn refuses_wrong_version_reserved_and_short() {
        assert_eq!(
            Header::new_checked(&HDR[..19]).unwrap_err(),
            WireError::Truncated
        );
        // Exactly a header: valid, empty payload.
        assert!(Header::new_checked(&HDR[..20])
            .unwrap()
            .payload()
            .is_empty());
        for (i, v) in [(0, 0x03), (0, 0x23), (0, 0xf3), (0, 0x17), (0, 0x1b)] {
            let mut b = HDR;
            b[i] = v;
            assert_eq!(
                Header::new_checked(&b[..]).unwrap_err(),
                WireError::Malformed,
                "byte {i} = {v:#x}"
            );
        }
        for i in 2..4 {
            let mut b = HDR;
            b[i] = 0x80;
            assert_eq!(
                Header::new_checked(&b[..]).unwrap_err(),
                WireError::Malformed
            );
        }
    }

    #[test]
    fn emit_writes_zero_tag_and_round_trips() {
        let r = AvesRepr {
            flags: FLAG_M,
            key_id: 0xfe,
        };
        let mut b = [0xffu8; HEADER_LEN];
        r.emit(&mut Header::new_unchecked(&mut b[..]));
        assert_eq!(&b[..4], &[0x12, 0xfe, 0, 0]);
        assert_eq!(&b[4..], &[0u8; 16]);
        assert_eq!(
            AvesRepr::parse(&Header::new_checked(&b[..]).unwrap()),
            Ok(r)
        );
        // Reserved flag bits in a Repr are not written.
        AvesRepr {
            flags: 0xff,
            key_id: 1,
        }
        .emit(&mut Header::new_unchecked(&mut b[..]));
        assert_eq!(b[0], 0x13);
    }

    #[test]
    fn setters_then_getters() {
        let mut b = [0u8; HEADER_LEN + 2];
        let mut h = Header::new_unchecked(&mut b[..]);
        h.set_version_flags(FLAG_H);
        h.set_key_id(9);
        h.clear_reserved();
        let tag: [u8; 16] = core::array::from_fn(|i| i as u8);
        h.set_tag(&tag);
        h.payload_mut().copy_from_slice(&[0xde, 0xad]);
        let h = Header::new_checked(&b[..]).unwrap();
        assert_eq!(h.flags(), FLAG_H);
        assert_eq!(h.key_id(), 9);
        assert_eq!(h.tag(), &tag[..]);
        assert_eq!(h.payload(), &[0xde, 0xad]);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            match Header::new_checked(&data[..]) {
                Ok(h) => {
                    let r = AvesRepr::parse(&h).unwrap();
                    prop_assert_eq!(h.tag().len(), TAG_LEN);
                    prop_assert_eq!(h.payload().len(), data.len() - HEADER_LEN);
                    let mut out = [0u8; HEADER_LEN];
                    r.emit(&mut Header::new_unchecked(&mut out[..]));
                    prop_assert_eq!(&out[..4], &data[..4]);
                }
                Err(WireError::Truncated) => prop_assert!(data.len() < HEADER_LEN),
                Err(e) => {
                    prop_assert_eq!(e, WireError::Malformed);
                    prop_assert!(data[0] >> 4 != VERSION || data[0] & 0x0c != 0
                        || data[2] != 0 || data[3] != 0);
                }
            }
        }

        #[test]
        fn repr_round_trip(flags in 0u8..4, key_id in any::<u8>()) {
            let r = AvesRepr { flags, key_id };
            let mut b = [0u8; HEADER_LEN];
            r.emit(&mut Header::new_unchecked(&mut b[..]));
            prop_assert_eq!(AvesRepr::parse(&Header::new_checked(&b[..]).unwrap()), Ok(r));
        }
    }
}
