//! parse → emit → parse round trips of every other `Repr` (Ethernet, ARP, ICMPv4, UDP,
//! TCP with MSS, IPv6, IPv6 Fragment header, ICMPv6, NDP, AVES), and emit → parse of a
//! `Repr` built from the input: `wire/mod.rs` promises that `parse` and `emit` are exact
//! inverses for every `Repr` `parse` can return.
//!
//! Input: `[protocol selector][bytes]`; the bytes are parsed as that protocol, and
//! also read as the fields of a `Repr` to emit.
#![no_main]

use aves_dataplane::addr::MacAddr;
use aves_dataplane::wire::{arp, aves, ethernet, icmpv4, icmpv6, ipv6, ipv6ext, tcp, udp};
use aves_fuzz::{be16, be32, byte};
use libfuzzer_sys::fuzz_target;
use std::net::{Ipv4Addr, Ipv6Addr};

const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const DST6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

fn mac(d: &[u8], i: usize) -> MacAddr {
    MacAddr(std::array::from_fn(|k| byte(d, i + k)))
}

fn v6(d: &[u8], i: usize) -> Ipv6Addr {
    Ipv6Addr::from(std::array::from_fn::<u8, 16, _>(|k| byte(d, i + k)))
}

fn ethernet(d: &[u8]) {
    if let Ok(f) = ethernet::Frame::new_checked(d) {
        let r = ethernet::EthernetRepr::parse(&f).expect("checked");
        let mut out = d.to_vec();
        r.emit(&mut ethernet::Frame::new_unchecked(&mut out[..]));
        assert_eq!(out, d, "ethernet: emit(parse(x)) != x");
    }
    let r = ethernet::EthernetRepr {
        src: mac(d, 0),
        dst: mac(d, 6),
        ethertype: be16(d, 12),
    };
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut ethernet::Frame::new_unchecked(&mut out[..]));
    let f = ethernet::Frame::new_checked(&out[..]).expect("emitted");
    assert_eq!(ethernet::EthernetRepr::parse(&f), Ok(r));
}

fn arp(d: &[u8]) {
    if let Ok(p) = arp::Packet::new_checked(d) {
        if let Ok(r) = arp::ArpRepr::parse(&p) {
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut arp::Packet::new_unchecked(&mut out[..]));
            assert_eq!(&out[..], &d[..arp::PACKET_LEN], "arp: emit(parse(x)) != x");
        }
    }
    let r = arp::ArpRepr {
        op: be16(d, 0),
        sender_mac: mac(d, 2),
        sender_ip: Ipv4Addr::from(be32(d, 8)),
        target_mac: mac(d, 12),
        target_ip: Ipv4Addr::from(be32(d, 18)),
    };
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut arp::Packet::new_unchecked(&mut out[..]));
    let p = arp::Packet::new_checked(&out[..]).expect("emitted");
    assert_eq!(arp::ArpRepr::parse(&p), Ok(r));
}

fn icmpv4(d: &[u8]) {
    let Ok(p) = icmpv4::Packet::new_checked(d) else {
        return;
    };
    let Ok(r) = icmpv4::Icmpv4Repr::parse(&p) else {
        return;
    };
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut icmpv4::Packet::new_unchecked(&mut out[..]));
    let q = icmpv4::Packet::new_checked(&out[..]).expect("emitted");
    assert_eq!(icmpv4::Icmpv4Repr::parse(&q), Ok(r), "icmpv4 round trip");
}

fn udp(d: &[u8]) {
    let Ok(p) = udp::Packet::new_checked(d) else {
        return;
    };
    let r = udp::UdpRepr::parse(&p).expect("checked");
    let pl = p.payload();
    let mut out = vec![0u8; r.buffer_len() + pl.len()];
    r.emit(
        &mut udp::Packet::new_unchecked(&mut out[..]),
        pl.len() as u16,
    );
    out[udp::HEADER_LEN..].copy_from_slice(pl);
    {
        let q = udp::Packet::new_checked(&out[..]).expect("emitted");
        assert_eq!(udp::UdpRepr::parse(&q), Ok(r), "udp round trip");
        assert_eq!(q.payload(), pl);
    }
    let mut q = udp::Packet::new_unchecked(&mut out[..]);
    q.fill_checksum_v6(SRC6, DST6);
    assert!(q.verify_checksum_v6(SRC6, DST6));
    let (s, t) = (Ipv4Addr::from(be32(d, 0)), Ipv4Addr::from(be32(d, 4)));
    q.fill_checksum_v4(s, t);
    assert!(q.verify_checksum_v4(s, t));
}

fn tcp(d: &[u8]) {
    if let Ok(p) = tcp::Packet::new_checked(d) {
        let r = tcp::TcpRepr::parse(&p).expect("checked");
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut tcp::Packet::new_unchecked(&mut out[..]));
        let q = tcp::Packet::new_checked(&out[..]).expect("emitted");
        assert_eq!(tcp::TcpRepr::parse(&q), Ok(r), "tcp round trip");
    }
    let r = tcp::TcpRepr {
        src_port: be16(d, 0),
        dst_port: be16(d, 2),
        seq_number: be32(d, 4),
        ack_number: be32(d, 8),
        flags: byte(d, 12),
        window: be16(d, 13),
        urgent: be16(d, 15),
        max_seg_size: (byte(d, 17) & 1 == 1).then(|| be16(d, 18)),
    };
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut tcp::Packet::new_unchecked(&mut out[..]));
    let q = tcp::Packet::new_checked(&out[..]).expect("emitted");
    assert_eq!(tcp::TcpRepr::parse(&q), Ok(r));
}

fn ipv6(d: &[u8]) {
    if let Ok(p) = ipv6::Packet::new_checked(d) {
        let r = ipv6::Ipv6Repr::parse(&p).expect("checked");
        let mut out = d.to_vec();
        r.emit(&mut ipv6::Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, d, "ipv6: emit(parse(x)) != x");
    }
    let r = ipv6::Ipv6Repr {
        src: v6(d, 0),
        dst: v6(d, 16),
        next_header: byte(d, 32),
        payload_len: 0,
        hop_limit: byte(d, 33),
        traffic_class: byte(d, 34),
        flow_label: be32(d, 35) & 0x000f_ffff,
    };
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut ipv6::Packet::new_unchecked(&mut out[..]));
    let p = ipv6::Packet::new_checked(&out[..]).expect("emitted");
    assert_eq!(ipv6::Ipv6Repr::parse(&p), Ok(r));
}

fn fragment(d: &[u8]) {
    if let Ok(h) = ipv6ext::FragmentHeader::new_checked(d) {
        let r = ipv6ext::FragmentRepr::parse(&h).expect("checked");
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut ipv6ext::FragmentHeader::new_unchecked(&mut out[..]));
        let q = ipv6ext::FragmentHeader::new_checked(&out[..]).expect("emitted");
        assert_eq!(
            ipv6ext::FragmentRepr::parse(&q),
            Ok(r),
            "fragment round trip"
        );
    }
}

fn icmpv6(d: &[u8]) {
    let Ok(p) = icmpv6::Packet::new_checked(d) else {
        return;
    };
    if let Ok(r) = icmpv6::Icmpv6Repr::parse(&p, SRC6, DST6) {
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut icmpv6::Packet::new_unchecked(&mut out[..]), SRC6, DST6);
        let q = icmpv6::Packet::new_checked(&out[..]).expect("emitted");
        assert_eq!(
            icmpv6::Icmpv6Repr::parse(&q, SRC6, DST6),
            Ok(r),
            "icmpv6 round trip"
        );
    }
    for dst in [DST6, "ff02::1:ff00:2".parse().expect("addr")] {
        for src in [SRC6, Ipv6Addr::UNSPECIFIED] {
            if let Ok(r) = icmpv6::NdpRepr::parse(&p, src, dst) {
                let mut out = vec![0u8; r.buffer_len()];
                r.emit(&mut icmpv6::Packet::new_unchecked(&mut out[..]), src, dst);
                let q = icmpv6::Packet::new_checked(&out[..]).expect("emitted");
                assert_eq!(
                    icmpv6::NdpRepr::parse(&q, src, dst),
                    Ok(r),
                    "ndp round trip"
                );
            }
        }
    }
}

fn aves(d: &[u8]) {
    if let Ok(h) = aves::Header::new_checked(d) {
        let r = aves::AvesRepr::parse(&h).expect("checked");
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut aves::Header::new_unchecked(&mut out[..]));
        let q = aves::Header::new_checked(&out[..]).expect("emitted");
        assert_eq!(aves::AvesRepr::parse(&q), Ok(r), "aves round trip");
    }
    let r = aves::AvesRepr {
        flags: byte(d, 0) & aves::FLAGS_KNOWN,
        key_id: byte(d, 1),
    };
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut aves::Header::new_unchecked(&mut out[..]));
    let q = aves::Header::new_checked(&out[..]).expect("emitted");
    assert_eq!(aves::AvesRepr::parse(&q), Ok(r));
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, d)) = data.split_first() else {
        return;
    };
    match sel % 10 {
        0 => ethernet(d),
        1 => arp(d),
        2 => icmpv4(d),
        3 => udp(d),
        4 => tcp(d),
        5 => ipv6(d),
        6 => fragment(d),
        7 => icmpv6(d),
        8 => aves(d),
        _ => {
            // All of them on the same bytes.
            ethernet(d);
            arp(d);
            icmpv4(d);
            udp(d);
            tcp(d);
            ipv6(d);
            fragment(d);
            icmpv6(d);
            aves(d);
        }
    }
});
