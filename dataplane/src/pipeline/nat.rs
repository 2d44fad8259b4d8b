//! Address and port rewriting with RFC 1624 checksum updates, on an IPv4 datagram's bytes.
//!
//! The functions work on a full datagram and equally on the truncated copy an ICMP error
//! quotes (RFC 5508 §4.2: a NAT translates the embedded datagram too): they never rely on
//! the total length, touch only bytes that are present, and skip a transport checksum
//! whose bytes were cut off. Transport headers exist only in a first fragment (offset 0),
//! so later fragments get their IP header rewritten and nothing else.
//!
//! Checksums: the IPv4 header checksum and the TCP/UDP checksum (its pseudo-header holds
//! the addresses) are updated incrementally; a zero UDP checksum means "none" and stays
//! zero; a computed zero UDP checksum is sent as 0xffff (RFC 768). ICMP's checksum has no
//! pseudo-header, so only the echo identifier changes it. Nothing here panics.

use crate::wire::checksum::{update16, update32};
use crate::wire::{icmpv4, ipv4};
use std::net::Ipv4Addr;

/// Which end of the datagram to rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The source address / port.
    Source,
    /// The destination address / port.
    Destination,
}

/// Header length and whether the transport header is present (first fragment), or None
/// for bytes that are not an IPv4 header.
fn header(ip: &[u8]) -> Option<(usize, bool, u8)> {
    let b0 = *ip.first()?;
    let hlen = usize::from(b0 & 0x0f) * 4;
    if b0 >> 4 != 4 || hlen < ipv4::MIN_HEADER_LEN || ip.len() < hlen {
        return None;
    }
    let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x1fff;
    Some((hlen, frag == 0, *ip.get(9)?))
}

fn read16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn write16(b: &mut [u8], at: usize, v: u16) {
    if let Some(f) = b.get_mut(at..at + 2) {
        f.copy_from_slice(&v.to_be_bytes());
    }
}

/// Offset of the transport checksum inside the transport header, for protocols whose
/// checksum covers the pseudo-header.
fn pseudo_checksum_at(proto: u8) -> Option<usize> {
    match proto {
        ipv4::protocol::TCP => Some(16),
        ipv4::protocol::UDP => Some(6),
        _ => None,
    }
}

/// Applies a 16-bit change to the transport checksum at `at` (honouring UDP's zero).
fn fix_l4(l4: &mut [u8], proto: u8, at: usize, update: impl Fn(u16) -> u16) {
    let Some(old) = read16(l4, at) else {
        return;
    };
    if proto == ipv4::protocol::UDP && old == 0 {
        return;
    }
    let mut new = update(old);
    if proto == ipv4::protocol::UDP && new == 0 {
        new = 0xffff;
    }
    write16(l4, at, new);
}

/// Rewrites the source or destination address. Returns false (bytes unchanged) when
/// `ip` does not start with an IPv4 header.
pub fn rewrite_addr(ip: &mut [u8], end: End, to: Ipv4Addr) -> bool {
    let Some((hlen, first, proto)) = header(ip) else {
        return false;
    };
    let at = match end {
        End::Source => 12,
        End::Destination => 16,
    };
    let Some(field) = ip.get(at..at + 4) else {
        return false;
    };
    let from = u32::from_be_bytes([field[0], field[1], field[2], field[3]]);
    let to32 = u32::from(to);
    if let Some(f) = ip.get_mut(at..at + 4) {
        f.copy_from_slice(&to.octets());
    }
    if let Some(hc) = read16(ip, 10) {
        write16(ip, 10, update32(hc, from, to32));
    }
    if first {
        if let (Some(cs), Some(l4)) = (pseudo_checksum_at(proto), ip.get_mut(hlen..)) {
            fix_l4(l4, proto, cs, |c| update32(c, from, to32));
        }
    }
    true
}

/// The ICMP checksum after a 16-bit field of `icmp` (already rewritten) changed from
/// `from` to `to`. RFC 1624 eqn. 3 gives 0x0000 where a full computation gives 0xffff
/// exactly when every other byte of the message is zero (the ones' complement sum of
/// the data is then +0, which eqn. 3 cannot tell from -0). A TCP or UDP pseudo-header or
/// an IPv4 header is never all zero, but an ICMP echo with identifier and sequence 0 and
/// no data is: receivers would drop it (found by fuzzing, `roundtrip_ipv4`).
fn icmp_update(icmp: &[u8], hc: u16, from: u16, to: u16) -> u16 {
    let c = update16(hc, from, to);
    let rest_zero = || {
        icmp.iter()
            .enumerate()
            .all(|(i, &b)| b == 0 || i == 2 || i == 3)
    };
    if c == 0 && rest_zero() {
        0xffff
    } else {
        c
    }
}

/// Rewrites the source or destination port of TCP/UDP, or the identifier of an ICMP
/// echo request/reply (either `end`). Returns false when there is no such field (another
/// protocol, a later fragment, a cut-off header).
pub fn rewrite_port(ip: &mut [u8], end: End, to: u16) -> bool {
    let Some((hlen, first, proto)) = header(ip) else {
        return false;
    };
    if !first {
        return false;
    }
    let Some(l4) = ip.get_mut(hlen..) else {
        return false;
    };
    match proto {
        ipv4::protocol::TCP | ipv4::protocol::UDP => {
            let at = if end == End::Source { 0 } else { 2 };
            let Some(from) = read16(l4, at) else {
                return false;
            };
            write16(l4, at, to);
            if let Some(cs) = pseudo_checksum_at(proto) {
                fix_l4(l4, proto, cs, |c| update16(c, from, to));
            }
            true
        }
        ipv4::protocol::ICMP => {
            let ty = l4.first().copied();
            if ty != Some(icmpv4::msg::ECHO_REQUEST) && ty != Some(icmpv4::msg::ECHO_REPLY) {
                return false;
            }
            let Some(from) = read16(l4, 4) else {
                return false;
            };
            write16(l4, 4, to);
            if let Some(c) = read16(l4, 2) {
                write16(l4, 2, icmp_update(l4, c, from, to));
            }
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;
    use crate::wire::{tcp, udp};
    use proptest::prelude::*;

    fn datagram(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 20 + payload.len()];
        ipv4::Ipv4Repr {
            src: Ipv4Addr::new(198, 51, 100, 10),
            dst: Ipv4Addr::new(203, 0, 113, 100),
            protocol: proto,
            payload_len: payload.len() as u16,
            ttl: 64,
            dscp_ecn: 0,
            ident: 7,
            dont_frag: true,
        }
        .emit(&mut ipv4::Packet::new_unchecked(&mut v[..]));
        v[20..].copy_from_slice(payload);
        v
    }

    fn l4_ok(v: &[u8]) -> bool {
        let p = ipv4::Packet::new_checked(v).unwrap();
        if !p.verify_checksum() {
            return false;
        }
        match p.protocol() {
            ipv4::protocol::TCP => tcp::Packet::new_checked(p.payload())
                .unwrap()
                .verify_checksum_v4(p.src(), p.dst()),
            ipv4::protocol::UDP => udp::Packet::new_checked(p.payload())
                .unwrap()
                .verify_checksum_v4(p.src(), p.dst()),
            _ => checksum::verify(p.payload()),
        }
    }

    fn with_l4_checksum(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = datagram(proto, payload);
        let (src, dst) = {
            let p = ipv4::Packet::new_checked(&v[..]).unwrap();
            (p.src(), p.dst())
        };
        match proto {
            ipv4::protocol::TCP => {
                tcp::Packet::new_unchecked(&mut v[20..]).fill_checksum_v4(src, dst)
            }
            ipv4::protocol::UDP => {
                udp::Packet::new_unchecked(&mut v[20..]).fill_checksum_v4(src, dst)
            }
            _ => {
                let c = checksum::checksum(&v[20..]);
                v[22..24].copy_from_slice(&c.to_be_bytes());
            }
        }
        v
    }

    fn tcp_seg(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
        let mut s = vec![0u8; 20 + data.len()];
        s[0..2].copy_from_slice(&sport.to_be_bytes());
        s[2..4].copy_from_slice(&dport.to_be_bytes());
        s[12] = 5 << 4;
        s[13] = tcp::flags::SYN;
        s[20..].copy_from_slice(data);
        s
    }

    fn udp_dgram(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
        let mut s = vec![0u8; 8 + data.len()];
        s[0..2].copy_from_slice(&sport.to_be_bytes());
        s[2..4].copy_from_slice(&dport.to_be_bytes());
        s[4..6].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        s[8..].copy_from_slice(data);
        s
    }

    #[test]
    fn echo_rewritten_to_all_zero_keeps_a_valid_checksum() {
        // Found by fuzzing (fuzz/corpus/roundtrip_ipv4/regression-icmp-all-zero): an
        // echo reply whose identifier becomes 0, with sequence 0 and no data, is all
        // zero but for its checksum, which must be 0xffff; RFC 1624 eqn. 3 alone gives
        // 0x0000 and the message fails verification.
        let mut v = with_l4_checksum(ipv4::protocol::ICMP, &[0, 0, 0, 0, 0xa4, 0x00, 0, 0]);
        assert!(l4_ok(&v));
        assert!(rewrite_port(&mut v, End::Destination, 0));
        assert_eq!(&v[20..], &[0, 0, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(l4_ok(&v));
        // And back: the usual eqn. 3 result.
        assert!(rewrite_port(&mut v, End::Source, 0xa400));
        assert!(l4_ok(&v));
        // Truncated to the identifier (a 6-byte message): still valid.
        let mut v = with_l4_checksum(ipv4::protocol::ICMP, &[0, 0, 0, 0, 0xa4, 0x00]);
        assert!(rewrite_port(&mut v, End::Destination, 0));
        assert!(l4_ok(&v));
    }

    #[test]
    fn addresses_and_ports_keep_every_checksum_valid() {
        for (proto, seg) in [
            (
                ipv4::protocol::TCP,
                tcp_seg(40000, 80, b"GET / HTTP/1.0\r\n"),
            ),
            (ipv4::protocol::UDP, udp_dgram(5353, 53, b"odd")),
            (ipv4::protocol::ICMP, {
                let mut e = vec![8u8, 0, 0, 0, 0x12, 0x34, 0, 1];
                e.extend_from_slice(b"ping");
                e
            }),
        ] {
            let mut v = with_l4_checksum(proto, &seg);
            assert!(l4_ok(&v));
            assert!(rewrite_addr(
                &mut v,
                End::Destination,
                Ipv4Addr::new(10, 0, 0, 2)
            ));
            assert!(rewrite_addr(
                &mut v,
                End::Source,
                Ipv4Addr::new(10, 0, 0, 1)
            ));
            assert!(l4_ok(&v), "proto {proto}");
            assert!(rewrite_port(&mut v, End::Source, 20001));
            assert!(l4_ok(&v), "proto {proto} after port");
            let p = ipv4::Packet::new_checked(&v[..]).unwrap();
            assert_eq!(p.dst(), Ipv4Addr::new(10, 0, 0, 2));
            assert_eq!(p.src(), Ipv4Addr::new(10, 0, 0, 1));
            let id_or_port = u16::from_be_bytes(if proto == 1 {
                [v[24], v[25]]
            } else {
                [v[20], v[21]]
            });
            assert_eq!(id_or_port, 20001);
        }
    }

    #[test]
    fn zero_udp_checksum_stays_zero_and_truncated_quotes_are_safe() {
        let mut v = datagram(ipv4::protocol::UDP, &udp_dgram(1, 2, b"x"));
        assert!(rewrite_addr(
            &mut v,
            End::Destination,
            Ipv4Addr::new(10, 0, 0, 2)
        ));
        assert_eq!(&v[26..28], &[0, 0]);
        // A quote cut inside the UDP header: the IP header is rewritten, no panic.
        let mut q = with_l4_checksum(ipv4::protocol::UDP, &udp_dgram(1, 2, b"payload"));
        q.truncate(24);
        assert!(rewrite_addr(
            &mut q,
            End::Source,
            Ipv4Addr::new(10, 0, 0, 9)
        ));
        assert!(rewrite_port(&mut q, End::Source, 9));
        assert!(checksum::verify(&q[..20]));
        assert!(!rewrite_port(&mut q[..21], End::Source, 9));
        assert!(!rewrite_addr(
            &mut [0x45u8; 10],
            End::Source,
            Ipv4Addr::LOCALHOST
        ));
    }

    proptest! {
        #[test]
        fn never_panics(mut b in proptest::collection::vec(any::<u8>(), 0..80), p in any::<u16>()) {
            let _ = rewrite_addr(&mut b, End::Source, Ipv4Addr::new(1, 2, 3, 4));
            let _ = rewrite_port(&mut b, End::Destination, p);
        }

        #[test]
        fn random_rewrites_verify(data in proptest::collection::vec(any::<u8>(), 0..100),
                                  a in any::<u32>(), port in any::<u16>(), tcp_not_udp in any::<bool>()) {
            let (proto, seg) = if tcp_not_udp {
                (ipv4::protocol::TCP, tcp_seg(1000, 2000, &data))
            } else {
                (ipv4::protocol::UDP, udp_dgram(1000, 2000, &data))
            };
            let mut v = with_l4_checksum(proto, &seg);
            rewrite_addr(&mut v, End::Source, Ipv4Addr::from(a));
            rewrite_port(&mut v, End::Destination, port);
            prop_assert!(l4_ok(&v));
        }
    }
}
