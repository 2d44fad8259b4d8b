//! IPv4 fragmentation (RFC 791 §2.3 "Fragmentation", §3.2 "Fragmentation and
//! reassembly"), sans-IO and generic over [`PacketBuf`].
//!
//! [`fragment`] takes one buffer holding an Ethernet II header ([`ethernet::HEADER_LEN`]
//! bytes) and an IPv4 datagram, and hands fragments whose IP total length is at most
//! `mtu` to an `out` closure. The input buffer becomes the first fragment; every other
//! fragment lives in a buffer from the caller's `alloc` closure (a mempool in
//! production), so nothing here allocates on its own.
//!
//! Invariants:
//! - All or nothing: every extra buffer is allocated, and sized, before any byte is
//!   written or any fragment reaches `out`. On any error nothing has been emitted and
//!   every buffer (the input and those allocated so far) has been dropped, i.e. freed
//!   to its pool: nothing leaks and nothing is sent twice.
//! - Every fragment but the last carries a multiple of 8 payload bytes (the offset
//!   field counts 8-byte units); each has the original Ethernet header, a fixed total
//!   length, MF, offset and header checksum. The first keeps every option; the others
//!   keep only options whose copy flag is set (RFC 791 §3.1, "Options": "copied flag"),
//!   padded with End of Option List to a multiple of 4 bytes.
//! - A datagram that is itself a fragment is split further: offsets are added to its
//!   own, and its MF flag is kept on its last piece (RFC 791 §3.2, "fragmenting a
//!   fragment").
//! - At most [`MAX_FRAGMENTS`] fragments per call: the extra buffers are held in a
//!   fixed stack array until all are allocated. 256 covers every datagram that fits a
//!   2048-byte mbuf at every legal MTU (8 payload bytes per fragment at worst), so only
//!   jumbo test buffers can hit [`FragmentError::TooManyFragments`].
//! - No panics on any input: lengths are validated by the wire views and all other
//!   indexing goes through `get`.

use crate::buf::PacketBuf;
use crate::counters::DropReason;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::ipv4::{self, Packet};

/// Most fragments [`fragment`] produces from one datagram (see the module doc).
pub const MAX_FRAGMENTS: usize = 256;

/// Longest IPv4 options field (a 60-byte header minus the fixed 20).
pub const MAX_OPTIONS_LEN: usize = 40;

/// Why [`fragment`] produced nothing. The input buffer has been freed in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragmentError {
    /// The datagram is larger than the MTU and has DF set (RFC 791 §3.1). A router
    /// answers with ICMP "fragmentation needed" (RFC 1191) instead, so it checks DF
    /// before calling [`fragment`], while it still owns the buffer.
    DontFragment,
    /// `alloc` returned `None`, or a buffer too small for its fragment.
    NoBuffer,
    /// Not an Ethernet II frame carrying a valid IPv4 datagram: short, another
    /// EtherType, a bad header or header checksum, a broken option list, or a
    /// fragment offset past 65528.
    Malformed,
    /// The MTU cannot carry the header and 8 payload bytes.
    MtuTooSmall,
    /// More than [`MAX_FRAGMENTS`] fragments would be needed.
    TooManyFragments,
}

impl FragmentError {
    /// The drop counter this error is counted under.
    pub const fn drop_reason(self) -> DropReason {
        match self {
            FragmentError::DontFragment
            | FragmentError::MtuTooSmall
            | FragmentError::TooManyFragments => DropReason::MtuExceeded,
            FragmentError::NoBuffer => DropReason::NoMbuf,
            FragmentError::Malformed => DropReason::Ipv4Malformed,
        }
    }
}

impl std::fmt::Display for FragmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FragmentError::DontFragment => "datagram exceeds the MTU and has DF set",
            FragmentError::NoBuffer => "no buffer for a fragment",
            FragmentError::Malformed => "malformed IPv4 datagram",
            FragmentError::MtuTooSmall => "MTU too small for the header and 8 bytes",
            FragmentError::TooManyFragments => "too many fragments needed",
        })
    }
}

impl std::error::Error for FragmentError {}

/// Copies the options whose copy flag (the high bit of the type) is set from `options`
/// into `out` and returns their length, unpadded. End of Option List stops the walk;
/// No Operation (type 1, copy flag clear) is single-byte; every other option has a
/// length byte of at least 2 that must fit (RFC 791 §3.1), else `Malformed`.
pub fn copied_options(
    options: &[u8],
    out: &mut [u8; MAX_OPTIONS_LEN],
) -> Result<usize, FragmentError> {
    let mut i = 0;
    let mut n = 0;
    while let Some(&kind) = options.get(i) {
        match kind {
            0 => break,
            1 => i += 1,
            _ => {
                let len = usize::from(*options.get(i + 1).ok_or(FragmentError::Malformed)?);
                let opt = options
                    .get(i..i + len)
                    .filter(|_| len >= 2)
                    .ok_or(FragmentError::Malformed)?;
                if kind & 0x80 != 0 {
                    out.get_mut(n..n + len)
                        .ok_or(FragmentError::Malformed)?
                        .copy_from_slice(opt);
                    n += len;
                }
                i += len;
            }
        }
    }
    Ok(n)
}

/// The layout of a fragmentation: what every fragment gets.
struct Plan {
    /// Header length of the original (and of the first fragment).
    hlen: usize,
    /// Header length of the later fragments (copied options, padded).
    hlen_rest: usize,
    /// Payload bytes of the original datagram.
    payload: usize,
    /// Payload bytes of the first fragment (a multiple of 8).
    first: usize,
    /// Payload bytes of every later fragment but the last (a multiple of 8).
    rest: usize,
    /// Number of fragments (at least 2).
    count: usize,
    /// Offset (bytes) of the original when it is itself a fragment.
    base_offset: usize,
    /// MF of the original: the last fragment keeps it.
    more: bool,
    /// The options with the copy flag, for the later fragments.
    opts: [u8; MAX_OPTIONS_LEN],
    /// Length of `opts` in use (unpadded).
    copied: usize,
}

impl Plan {
    /// Payload range (relative to the original payload) of fragment `i`.
    fn range(&self, i: usize) -> (usize, usize) {
        let start = if i == 0 {
            0
        } else {
            self.first + (i - 1) * self.rest
        };
        let len = if i == 0 { self.first } else { self.rest };
        (start, (start + len).min(self.payload))
    }
}

/// Splits the Ethernet + IPv4 frame in `buf` into fragments of IP total length at most
/// `mtu` and hands them, first to last, to `out`. Returns how many: 1 when the
/// datagram already fits, in which case `buf` goes to `out` unchanged (Ethernet
/// padding included).
///
/// Every extra buffer comes from `alloc`, which may hand out a buffer of any current
/// length: it is resized here. See the module doc for the all-or-nothing rule; on
/// `Err` the input and all allocated buffers have been dropped and `out` was never
/// called.
pub fn fragment<B: PacketBuf>(
    buf: B,
    mtu: u16,
    mut alloc: impl FnMut() -> Option<B>,
    mut out: impl FnMut(B),
) -> Result<usize, FragmentError> {
    let mut buf = buf;
    let Some(plan) = plan(buf.data(), mtu)? else {
        out(buf);
        return Ok(1);
    };

    // Phase 1: every extra buffer, sized, before anything is written.
    let mut extra: [Option<B>; MAX_FRAGMENTS] = std::array::from_fn(|_| None);
    let eth = ethernet::HEADER_LEN;
    for i in 1..plan.count {
        let (start, end) = plan.range(i);
        let mut b = alloc().ok_or(FragmentError::NoBuffer)?;
        let len = b.len();
        if !b.trim(len) || !b.append(eth + plan.hlen_rest + (end - start)) {
            return Err(FragmentError::NoBuffer);
        }
        *extra
            .get_mut(i - 1)
            .ok_or(FragmentError::TooManyFragments)? = Some(b);
    }

    // Phase 2: write the later fragments from the (still intact) original.
    let orig = buf.data();
    let copied = plan.copied;
    for i in 1..plan.count {
        let (start, end) = plan.range(i);
        let Some(Some(b)) = extra.get_mut(i - 1) else {
            return Err(FragmentError::NoBuffer);
        };
        let d = b.data_mut();
        let src_payload = orig
            .get(eth + plan.hlen + start..eth + plan.hlen + end)
            .ok_or(FragmentError::Malformed)?;
        copy(d, 0, orig.get(..eth + ipv4::MIN_HEADER_LEN))?;
        copy(d, eth + ipv4::MIN_HEADER_LEN, plan.opts.get(..copied))?;
        d.get_mut(eth + ipv4::MIN_HEADER_LEN + copied..eth + plan.hlen_rest)
            .ok_or(FragmentError::NoBuffer)?
            .fill(0); // End of Option List padding
        copy(d, eth + plan.hlen_rest, Some(src_payload))?;
        let last = i + 1 == plan.count;
        write_header(
            d.get_mut(eth..).ok_or(FragmentError::NoBuffer)?,
            plan.hlen_rest,
            end - start,
            !last || plan.more,
            plan.base_offset + start,
        );
    }

    // Phase 3: cut the original down to the first fragment.
    let (_, first_end) = plan.range(0);
    let first_len = eth + plan.hlen + first_end;
    let d = buf.data_mut();
    write_header(
        d.get_mut(eth..).ok_or(FragmentError::Malformed)?,
        plan.hlen,
        first_end,
        true,
        plan.base_offset,
    );
    let surplus = buf.len().saturating_sub(first_len);
    if !buf.trim(surplus) {
        return Err(FragmentError::Malformed);
    }

    out(buf);
    for b in extra.iter_mut().take(plan.count - 1) {
        if let Some(b) = b.take() {
            out(b);
        }
    }
    Ok(plan.count)
}

/// Copies `src` into `dst` at `at`; `NoBuffer` when it does not fit (unreachable once
/// phase 1 sized the buffer).
fn copy(dst: &mut [u8], at: usize, src: Option<&[u8]>) -> Result<(), FragmentError> {
    let src = src.ok_or(FragmentError::Malformed)?;
    dst.get_mut(at..at + src.len())
        .ok_or(FragmentError::NoBuffer)?
        .copy_from_slice(src);
    Ok(())
}

/// Fixes IHL, total length, flags/offset and checksum of the IPv4 header at the start
/// of `ip`, which holds at least `hlen + payload` bytes (DF is clear: the caller
/// refused DF datagrams).
fn write_header(ip: &mut [u8], hlen: usize, payload: usize, more: bool, offset: usize) {
    if ip.len() < hlen + payload || hlen < ipv4::MIN_HEADER_LEN {
        return;
    }
    let mut p = Packet::new_unchecked(ip);
    p.set_version_ihl(hlen);
    // Both fit 16 bits: `plan` checked total length and offset.
    p.set_total_len((hlen + payload) as u16);
    p.set_flags_frag(false, more, offset as u16);
    p.fill_checksum();
}

/// Validates the frame and lays out the fragments; `None` when the datagram fits.
fn plan(frame: &[u8], mtu: u16) -> Result<Option<Plan>, FragmentError> {
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| FragmentError::Malformed)?;
    if eth.ethertype() != ethertype::IPV4 {
        return Err(FragmentError::Malformed);
    }
    let ip_bytes = frame
        .get(ethernet::HEADER_LEN..)
        .ok_or(FragmentError::Malformed)?;
    let ip = Packet::new_checked(ip_bytes).map_err(|_| FragmentError::Malformed)?;
    if !ip.verify_checksum() {
        // Fragmenting would write fresh checksums over a corrupt header.
        return Err(FragmentError::Malformed);
    }
    let total = usize::from(ip.total_len());
    let mtu = usize::from(mtu);
    if total <= mtu {
        return Ok(None);
    }
    if ip.dont_frag() {
        return Err(FragmentError::DontFragment);
    }
    let hlen = ip.header_len();
    let mut opts = [0u8; MAX_OPTIONS_LEN];
    let copied = copied_options(ip.options(), &mut opts)?;
    let hlen_rest = ipv4::MIN_HEADER_LEN + copied.div_ceil(4) * 4;
    if mtu < hlen + 8 {
        return Err(FragmentError::MtuTooSmall);
    }
    let payload = total - hlen;
    let first = (mtu - hlen) & !7;
    let rest = (mtu - hlen_rest) & !7;
    // total > mtu, so payload > first: at least two fragments.
    let count = 1 + (payload - first).div_ceil(rest);
    if count > MAX_FRAGMENTS {
        return Err(FragmentError::TooManyFragments);
    }
    let base_offset = usize::from(ip.frag_offset());
    let plan = Plan {
        hlen,
        hlen_rest,
        payload,
        first,
        rest,
        count,
        base_offset,
        more: ip.more_frags(),
        opts,
        copied,
    };
    // The last fragment's offset must fit the 13-bit field (RFC 791 §3.1).
    let (last_start, _) = plan.range(count - 1);
    if base_offset + last_start > 0x1fff * 8 {
        return Err(FragmentError::Malformed);
    }
    Ok(Some(plan))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use proptest::prelude::*;

    /// Ethernet header: 02:00:00:00:00:02 <- 02:00:00:00:00:01, IPv4.
    pub(crate) const ETH: [u8; 14] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];

    /// 10.0.0.1 -> 10.0.0.2, UDP, ident 0x1234, TTL 64, IHL 7 with Router Alert
    /// (type 0x94, copied) and an empty Record Route (type 7, not copied), payload
    /// 0..40: total length 68. Checksums here and below
    /// from an independent Python RFC 1071 sum: 0xb36b, 0x937b, 0xbf87.
    pub(crate) const DATAGRAM: [u8; 68] = [
        0x47, 0x00, 0x00, 0x44, 0x12, 0x34, 0x00, 0x00, 0x40, 0x11, 0xb3, 0x6b, 10, 0, 0, 1, 10, 0,
        0, 2, // options
        0x94, 0x04, 0x00, 0x00, 0x07, 0x03, 0x04, 0x00, // payload
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39,
    ];

    /// DATAGRAM at MTU 52: first fragment, all options, 24 payload bytes, MF, offset 0.
    pub(crate) const FRAG0: [u8; 52] = [
        0x47, 0x00, 0x00, 0x34, 0x12, 0x34, 0x20, 0x00, 0x40, 0x11, 0x93, 0x7b, 10, 0, 0, 1, 10, 0,
        0, 2, 0x94, 0x04, 0x00, 0x00, 0x07, 0x03, 0x04, 0x00, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
        12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
    ];

    /// Second (last) fragment: Router Alert only (IHL 6), 16 bytes at offset 24 (3 units).
    pub(crate) const FRAG1: [u8; 40] = [
        0x46, 0x00, 0x00, 0x28, 0x12, 0x34, 0x00, 0x03, 0x40, 0x11, 0xbf, 0x87, 10, 0, 0, 1, 10, 0,
        0, 2, 0x94, 0x04, 0x00, 0x00, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38,
        39,
    ];

    pub(crate) fn frame(ip: &[u8]) -> VecBuf {
        let mut v = ETH.to_vec();
        v.extend_from_slice(ip);
        VecBuf::from_slice(&v)
    }

    fn run(buf: VecBuf, mtu: u16) -> (Result<usize, FragmentError>, Vec<VecBuf>) {
        let mut out = Vec::new();
        let r = fragment(
            buf,
            mtu,
            || Some(VecBuf::from_slice(&[0xee; 7])),
            |b| out.push(b),
        );
        (r, out)
    }

    #[test]
    fn hand_made_example() {
        assert!(crate::wire::checksum::verify(&DATAGRAM[..28]));
        assert!(crate::wire::checksum::verify(&FRAG0[..28]));
        assert!(crate::wire::checksum::verify(&FRAG1[..24]));
        let (r, out) = run(frame(&DATAGRAM), 52);
        assert_eq!(r, Ok(2));
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0].data()[..14], &ETH);
        assert_eq!(&out[0].data()[14..], &FRAG0);
        assert_eq!(&out[1].data()[..14], &ETH);
        assert_eq!(&out[1].data()[14..], &FRAG1);
    }

    #[test]
    fn fitting_datagram_passes_unchanged() {
        let mut b = frame(&DATAGRAM);
        assert!(b.append(6)); // Ethernet padding stays
        let before = b.clone();
        let (r, out) = run(b, 68);
        assert_eq!(r, Ok(1));
        assert_eq!(out, vec![before]);
    }

    #[test]
    fn fragmenting_a_fragment_keeps_offset_and_mf() {
        // DATAGRAM as a middle fragment at offset 800 with MF set.
        let mut ip = DATAGRAM;
        let mut p = Packet::new_checked(&mut ip[..]).unwrap();
        p.set_flags_frag(false, true, 800);
        p.fill_checksum();
        let (r, out) = run(frame(&ip), 52);
        assert_eq!(r, Ok(2));
        let p0 = Packet::new_checked(&out[0].data()[14..]).unwrap();
        let p1 = Packet::new_checked(&out[1].data()[14..]).unwrap();
        assert_eq!((p0.frag_offset(), p0.more_frags()), (800, true));
        assert_eq!((p1.frag_offset(), p1.more_frags()), (824, true));
        assert!(p0.verify_checksum() && p1.verify_checksum());
    }

    #[test]
    fn errors() {
        let mut df = DATAGRAM;
        let mut p = Packet::new_checked(&mut df[..]).unwrap();
        p.set_flags_frag(true, false, 0);
        p.fill_checksum();
        assert_eq!(run(frame(&df), 52).0, Err(FragmentError::DontFragment));
        // DF that fits is fine.
        assert_eq!(run(frame(&df), 68).0, Ok(1));
        assert_eq!(run(frame(&DATAGRAM), 35).0, Err(FragmentError::MtuTooSmall));
        assert_eq!(run(frame(&DATAGRAM), 36).1.len(), 5); // 8 payload bytes each
        let mut bad = DATAGRAM;
        bad[11] ^= 1;
        assert_eq!(run(frame(&bad), 52).0, Err(FragmentError::Malformed));
        let mut opt = DATAGRAM;
        opt[25] = 9; // Record Route length past the options
        Packet::new_checked(&mut opt[..]).unwrap().fill_checksum();
        assert_eq!(run(frame(&opt), 52).0, Err(FragmentError::Malformed));
        let mut arp = frame(&DATAGRAM);
        arp.data_mut()[13] = 0x06;
        assert_eq!(run(arp, 52).0, Err(FragmentError::Malformed));
        assert_eq!(
            run(VecBuf::from_slice(&ETH), 52).0,
            Err(FragmentError::Malformed)
        );
        // Offset past the 13-bit field once split.
        let mut far = DATAGRAM;
        let mut p = Packet::new_checked(&mut far[..]).unwrap();
        p.set_flags_frag(false, false, 65528);
        p.fill_checksum();
        assert_eq!(run(frame(&far), 52).0, Err(FragmentError::Malformed));
        assert_eq!(
            FragmentError::DontFragment.drop_reason(),
            DropReason::MtuExceeded
        );
    }

    #[test]
    fn too_many_fragments() {
        // 20-byte header, 4000-byte payload at MTU 28: 500 fragments.
        let mut ip = vec![0u8; 4020];
        let mut p = Packet::new_unchecked(&mut ip[..]);
        p.set_version_ihl(20);
        p.set_total_len(4020);
        p.set_ttl(9);
        p.fill_checksum();
        assert_eq!(run(frame(&ip), 28).0, Err(FragmentError::TooManyFragments));
        // 2040 bytes of payload: 255 fragments, the most an mbuf can need.
        p = Packet::new_unchecked(&mut ip[..2060]);
        p.set_total_len(2060);
        p.fill_checksum();
        let (r, out) = run(frame(&ip[..2060]), 28);
        assert_eq!(r, Ok(255));
        assert_eq!(out.len(), 255);
    }

    #[test]
    fn copied_options_walk() {
        let mut out = [0u8; MAX_OPTIONS_LEN];
        // NOP, Router Alert (copied), Timestamp (type 68, not copied), LSRR (131, copied)
        let opts = [
            1, 0x94, 4, 0, 0, 68, 4, 5, 0, 131, 7, 4, 1, 2, 3, 4, 0, 0, 0,
        ];
        assert_eq!(copied_options(&opts, &mut out), Ok(11));
        assert_eq!(&out[..11], &[0x94, 4, 0, 0, 131, 7, 4, 1, 2, 3, 4]);
        assert_eq!(copied_options(&[], &mut out), Ok(0));
        assert_eq!(
            copied_options(&[0x94], &mut out),
            Err(FragmentError::Malformed)
        );
        assert_eq!(
            copied_options(&[0x94, 1], &mut out),
            Err(FragmentError::Malformed)
        );
        assert_eq!(
            copied_options(&[0x94, 0, 0], &mut out),
            Err(FragmentError::Malformed)
        );
        // Options after End of Option List are ignored.
        assert_eq!(copied_options(&[0, 0x94, 9], &mut out), Ok(0));
    }

    /// Drops count into a shared cell: proves what is freed.
    pub(crate) struct Counted(pub VecBuf, pub std::rc::Rc<std::cell::Cell<usize>>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.set(self.1.get() + 1);
        }
    }
    impl PacketBuf for Counted {
        fn data(&self) -> &[u8] {
            self.0.data()
        }
        fn data_mut(&mut self) -> &mut [u8] {
            self.0.data_mut()
        }
        fn prepend(&mut self, n: usize) -> bool {
            self.0.prepend(n)
        }
        fn adj(&mut self, n: usize) -> bool {
            self.0.adj(n)
        }
        fn append(&mut self, n: usize) -> bool {
            self.0.append(n)
        }
        fn trim(&mut self, n: usize) -> bool {
            self.0.trim(n)
        }
    }

    #[test]
    fn failed_allocation_emits_nothing_and_frees_everything() {
        for budget in 0..6 {
            let drops = std::rc::Rc::new(std::cell::Cell::new(0));
            let mut given = 0;
            let mut emitted = 0;
            // 40 payload bytes at MTU 36: 8 bytes each → 5 fragments, 4 extra buffers.
            let r = fragment(
                Counted(frame(&DATAGRAM), drops.clone()),
                36,
                || {
                    (given < budget).then(|| {
                        given += 1;
                        Counted(VecBuf::from_slice(&[]), drops.clone())
                    })
                },
                |_| emitted += 1,
            );
            if budget < 4 {
                assert_eq!(r, Err(FragmentError::NoBuffer));
                assert_eq!(emitted, 0);
            } else {
                assert_eq!((r, emitted, given), (Ok(5), 5, 4));
            }
            // Every buffer created (input + allocated) was dropped exactly once.
            assert_eq!(drops.get(), 1 + given, "budget {budget}");
        }
    }

    #[test]
    fn small_alloc_buffer_is_no_buffer() {
        let mut out = 0;
        let r = fragment(
            frame(&DATAGRAM),
            52,
            || Some(VecBuf::with_room(&[], 0, 10)),
            |_| out += 1,
        );
        assert_eq!((r, out), (Err(FragmentError::NoBuffer), 0));
    }

    /// A random datagram: header with optional options, random payload.
    pub(crate) fn datagram(payload: &[u8], opts: &[u8], ttl: u8, ident: u16, proto: u8) -> Vec<u8> {
        let hlen = 20 + opts.len().div_ceil(4) * 4;
        let mut ip = vec![0u8; hlen + payload.len()];
        ip[20..20 + opts.len()].copy_from_slice(opts);
        ip[hlen..].copy_from_slice(payload);
        let mut p = Packet::new_unchecked(&mut ip[..]);
        p.set_version_ihl(hlen);
        p.set_total_len((hlen + payload.len()) as u16);
        p.set_ident(ident);
        p.set_ttl(ttl);
        p.set_protocol(proto);
        p.set_src([192, 0, 2, 1].into());
        p.set_dst([198, 51, 100, 7].into());
        p.fill_checksum();
        ip
    }

    proptest! {
        #[test]
        fn fragments_cover_the_datagram(payload in proptest::collection::vec(any::<u8>(), 1..3000),
                                        mtu in 68u16..1500, with_opts in any::<bool>()) {
            let opts: &[u8] = if with_opts { &[0x94, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 1] } else { &[] };
            let ip = datagram(&payload, opts, 64, 7, ipv4::protocol::UDP);
            let (r, out) = run(frame(&ip), mtu);
            let n = r.unwrap();
            prop_assert_eq!(n, out.len());
            let mut next = 0usize;
            let mut joined = Vec::new();
            for (i, f) in out.iter().enumerate() {
                prop_assert_eq!(&f.data()[..14], &ETH);
                let p = Packet::new_checked(&f.data()[14..]).unwrap();
                prop_assert!(usize::from(p.total_len()) <= usize::from(mtu));
                prop_assert_eq!(usize::from(p.total_len()) + 14, f.len());
                prop_assert!(p.verify_checksum());
                prop_assert_eq!(usize::from(p.frag_offset()), next);
                let last = i + 1 == n;
                prop_assert_eq!(p.more_frags(), !last && n > 1);
                if !last {
                    prop_assert_eq!(p.payload().len() % 8, 0);
                }
                if i == 0 {
                    prop_assert_eq!(p.header(), &f.data()[14..14 + ip.len() - payload.len()]);
                } else if with_opts {
                    prop_assert_eq!(p.options(), &[0x94, 4, 0, 0]);
                }
                prop_assert_eq!(p.ttl(), 64);
                next += p.payload().len();
                joined.extend_from_slice(p.payload());
            }
            prop_assert_eq!(joined, payload);
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200),
                                    mtu in prop_oneof![0u16..200, any::<u16>()], fix in any::<bool>()) {
            let mut data = data;
            if fix && data.len() >= 34 {
                // Make the Ethernet and IPv4 framing plausible to get past the first checks.
                data[12] = 8;
                data[13] = 0;
                data[14] = 0x40 | (data[14] & 0x0f);
                let t = (data.len() - 14) as u16;
                data[16..18].copy_from_slice(&t.to_be_bytes());
                data[20] &= 0xbf; // clear DF, keep MF/offset bits
                let hl = usize::from(data[14] & 0x0f) * 4;
                if hl >= 20 && 14 + hl <= data.len() {
                    Packet::new_unchecked(&mut data[14..]).fill_checksum();
                }
            }
            let (r, out) = run(VecBuf::from_slice(&data), mtu);
            match r {
                Ok(n) => prop_assert_eq!(n, out.len()),
                Err(_) => prop_assert!(out.is_empty()),
            }
        }
    }
}
