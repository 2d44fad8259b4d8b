//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Invariants: every function is total (any length, any bytes); odd lengths are padded
//! with a zero byte as RFC 1071 §4.1 says. Sums are kept in a `u32` accumulator that is
//! folded once at the end, so the loop has no carries to handle.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` to a running one's-complement sum (not inverted). The result is folded
/// to at most 16 bits, so it can be passed on as `acc` or given to [`fold`].
///
/// Works on 32-bit big-endian words in a 64-bit accumulator (no carry handling in the
/// loop, which the compiler can unroll and vectorise): 2^16 ≡ 1 (mod 2^16 − 1), so the
/// sum of 32-bit words folds to the same value as the sum of their 16-bit halves.
#[inline]
pub fn sum(acc: u32, data: &[u8]) -> u32 {
    let mut s = u64::from(acc);
    let mut words = data.chunks_exact(4);
    for c in &mut words {
        s += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = words.remainder();
    let mut halves = rest.chunks_exact(2);
    for c in &mut halves {
        s += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = halves.remainder() {
        s += u64::from(*last) << 8;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u32
}

/// Folds a running sum to 16 bits (one's-complement addition of the halves).
#[inline]
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum field value for `data`: `!fold(sum(0, data))`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(0, data))
}

/// True when `data` (which includes its checksum field) sums to 0xffff, i.e. verifies.
#[inline]
pub fn verify(data: &[u8]) -> bool {
    fold(sum(0, data)) == 0xffff
}

/// Running sum of the IPv4 pseudo-header (RFC 768, RFC 793 §3.1).
#[inline]
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u32 {
    let mut acc = sum(0, &src.octets());
    acc = sum(acc, &dst.octets());
    acc = acc.wrapping_add(u32::from(protocol));
    acc.wrapping_add(u32::from(length))
}

/// Running sum of the IPv6 pseudo-header (RFC 8200 §8.1).
#[inline]
pub fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, length: u32) -> u32 {
    let mut acc = sum(0, &src.octets());
    acc = sum(acc, &dst.octets());
    acc = acc.wrapping_add(length >> 16).wrapping_add(length & 0xffff);
    acc.wrapping_add(u32::from(next_header))
}

/// RFC 1624 eqn. 3: the new checksum `HC'` after a 16-bit field changes from `old` to
/// `new`, given the old checksum `hc`: `HC' = ~(~HC + ~m + m')`.
#[inline]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let acc = u32::from(!hc) + u32::from(!old) + u32::from(new);
    !fold(acc)
}

/// RFC 1624 update for a 32-bit field (an IPv4 address), as two 16-bit updates.
#[inline]
pub fn update32(hc: u16, old: u32, new: u32) -> u16 {
    let hc = update16(hc, (old >> 16) as u16, (new >> 16) as u16);
    update16(hc, old as u16, new as u16)
}

/// RFC 1624 update for a change of a byte string of even length at an even offset
/// (e.g. an IPv6 address in a pseudo-header). Lengths must match; extra bytes of the
/// longer slice are ignored.
#[inline]
pub fn update_bytes(hc: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut acc = u32::from(!hc);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += u32::from(!u16::from_be_bytes([o[0], o[1]]));
        acc += u32::from(u16::from_be_bytes([n[0], n[1]]));
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(0, &d)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn ipv4_header_known_checksum() {
        // A real header (Wikipedia's example): checksum b861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert!(verify(&h));
        h[3] ^= 1;
        assert!(!verify(&h));
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(0, &[0x12])), 0x1200);
        assert_eq!(checksum(&[]), 0xffff);
    }

    proptest! {
        #[test]
        fn incremental_equals_full(mut data in proptest::collection::vec(any::<u8>(), 4..64),
                                   idx in 0usize..30, new in any::<u16>()) {
            let len = data.len() & !1;
            data.truncate(len);
            let i = (idx * 2) % (len - 2).max(2);
            // Reserve bytes 0..2 as the checksum field.
            prop_assume!(i >= 2);
            data[0] = 0; data[1] = 0;
            let c = checksum(&data);
            data[0..2].copy_from_slice(&c.to_be_bytes());
            let old = u16::from_be_bytes([data[i], data[i + 1]]);
            data[i..i + 2].copy_from_slice(&new.to_be_bytes());
            let inc = update16(c, old, new);
            data[0..2].copy_from_slice(&inc.to_be_bytes());
            prop_assert!(verify(&data));
        }

        #[test]
        fn update32_verifies(mut data in proptest::collection::vec(any::<u8>(), 12..12+1),
                             new in any::<u32>()) {
            data[0] = 0; data[1] = 0;
            let c = checksum(&data);
            data[0..2].copy_from_slice(&c.to_be_bytes());
            let old = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
            data[4..8].copy_from_slice(&new.to_be_bytes());
            let inc = update32(c, old, new);
            data[0..2].copy_from_slice(&inc.to_be_bytes());
            prop_assert!(verify(&data));
        }

        #[test]
        fn sum_never_panics(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let _ = checksum(&data);
        }
    }
}
