//! Length and checksum repair for fuzzer-made packets, and transport checksum checks.
//!
//! Random mutations almost never carry a valid checksum, so the role targets repair the
//! frames an input asks to repair ([`fix_ipv4`], [`fix_l4`]) before handing them over:
//! that is how a mutated packet reaches the code behind the checksum checks.
//! [`deep_l4_ok`] is the oracle the other way: a packet the roles send must carry valid
//! transport checksums when the packet they got did.
//!
//! Invariant: nothing here panics on any bytes.

use aves_dataplane::wire::checksum;
use aves_dataplane::wire::ipv4::{self, protocol};
use std::net::Ipv4Addr;

/// Ethernet header length.
pub const ETH: usize = 14;

fn addr(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// For bytes that start like an IPv4 header (version 4, IHL >= 5, header present): sets
/// the total length to the buffer length (at most 65535) and fills the header checksum.
/// Returns whether it did.
pub fn fix_ipv4(ip: &mut [u8]) -> bool {
    let Some(&b0) = ip.first() else {
        return false;
    };
    let hlen = usize::from(b0 & 0x0f) * 4;
    if b0 >> 4 != 4 || hlen < 20 || ip.len() < hlen {
        return false;
    }
    let total = ip.len().min(65535) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[10] = 0;
    ip[11] = 0;
    let c = checksum::checksum(&ip[..hlen]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    true
}

/// Where the transport checksum of `proto` sits in its header, and whether the
/// pseudo-header is summed.
fn l4_checksum_at(proto: u8) -> Option<(usize, bool)> {
    match proto {
        protocol::TCP => Some((16, true)),
        protocol::UDP => Some((6, true)),
        protocol::ICMP => Some((2, false)),
        _ => None,
    }
}

/// The transport bytes of a checked, unfragmented datagram: (header length, protocol,
/// src, dst, transport bytes within the total length).
fn transport(ip: &[u8]) -> Option<(usize, u8, Ipv4Addr, Ipv4Addr, usize)> {
    let p = ipv4::Packet::new_checked(ip).ok()?;
    if p.is_fragment() {
        return None;
    }
    Some((
        p.header_len(),
        p.protocol(),
        p.src(),
        p.dst(),
        usize::from(p.total_len()),
    ))
}

/// Fills the TCP, UDP (whose length field is set to the payload length too) or ICMP
/// checksum of an unfragmented IPv4 datagram whose header checks. Returns whether it
/// did.
pub fn fix_l4(ip: &mut [u8]) -> bool {
    let Some((hlen, proto, src, dst, total)) = transport(ip) else {
        return false;
    };
    let Some((at, pseudo)) = l4_checksum_at(proto) else {
        return false;
    };
    let l4 = &mut ip[hlen..total];
    if l4.len() < at + 2 {
        return false;
    }
    if proto == protocol::UDP {
        let n = l4.len() as u16;
        l4[4..6].copy_from_slice(&n.to_be_bytes());
    }
    l4[at] = 0;
    l4[at + 1] = 0;
    let acc = if pseudo {
        checksum::pseudo_v4(src, dst, proto, l4.len() as u16)
    } else {
        0
    };
    let mut c = !checksum::fold(checksum::sum(acc, l4));
    if proto == protocol::UDP && c == 0 {
        c = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// False only when `ip` is an unfragmented IPv4 datagram (header checks) whose TCP, UDP
/// or ICMP checksum is present and wrong. UDP's zero checksum ("none") is fine; a UDP
/// datagram to `tunnel_port` whose payload holds an AVES header is checked through to
/// the inner datagram.
pub fn deep_l4_ok(ip: &[u8], tunnel_port: u16) -> bool {
    deep(ip, tunnel_port, 0)
}

/// [`deep_l4_ok`] without looking into tunnel packets.
pub fn l4_ok(ip: &[u8]) -> bool {
    deep(ip, 0, 1)
}

fn deep(ip: &[u8], tunnel_port: u16, depth: u8) -> bool {
    let Some((hlen, proto, src, dst, total)) = transport(ip) else {
        return true;
    };
    let Some((at, pseudo)) = l4_checksum_at(proto) else {
        return true;
    };
    let l4 = &ip[hlen..total];
    if l4.len() < at + 2 {
        return true;
    }
    let mut span = l4;
    if proto == protocol::UDP {
        let ulen = usize::from(u16::from_be_bytes([l4[4], l4[5]]));
        if ulen < 8 || ulen > l4.len() {
            return true;
        }
        span = &l4[..ulen];
        if u16::from_be_bytes([l4[6], l4[7]]) == 0 {
            return inner_ok(span, tunnel_port, depth);
        }
    }
    let acc = if pseudo {
        checksum::pseudo_v4(src, dst, proto, span.len() as u16)
    } else {
        0
    };
    if checksum::fold(checksum::sum(acc, span)) != 0xffff {
        return false;
    }
    proto != protocol::UDP || inner_ok(span, tunnel_port, depth)
}

/// A UDP datagram to the tunnel port: the inner datagram after the 20-byte AVES header.
fn inner_ok(udp: &[u8], tunnel_port: u16, depth: u8) -> bool {
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    if dport != tunnel_port || depth > 0 {
        return true;
    }
    match udp.get(8 + 20..) {
        Some(inner) => deep(inner, tunnel_port, depth + 1),
        None => true,
    }
}

/// Source and destination of an IPv4 header at `ip` (at least 20 bytes), for messages.
pub fn endpoints(ip: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    (ip.len() >= 20).then(|| (addr(ip, 12), addr(ip, 16)))
}

/// True when `frame` is Ethernet + IPv4 whose header says it is a fragment (MF set or
/// offset non-zero).
pub fn is_ipv4_fragment(frame: &[u8]) -> bool {
    frame.len() >= ETH + 20
        && frame[12..14] == [0x08, 0x00]
        && (u16::from_be_bytes([frame[ETH + 6], frame[ETH + 7]]) & 0x3fff) != 0
}

/// True when `frame` is an Ethernet ARP frame.
pub fn is_arp(frame: &[u8]) -> bool {
    frame.len() >= ETH && frame[12..14] == [0x08, 0x06]
}
