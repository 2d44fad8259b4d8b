//! Every wire view's `new_checked` and every `Repr::parse` on the same bytes (Ethernet,
//! ARP, IPv4, ICMPv4, UDP, TCP with its MSS option, IPv6 with its extension-header walk,
//! ICMPv6, NDP, the AVES header), plus the pipeline's own readers (flow keys, tunnel
//! source port and covered bytes). Properties: no panic; once `new_checked` accepts
//! bytes no accessor panics; parse results agree with the view (lengths, offsets within
//! the buffer); clamping the MSS keeps a valid TCP checksum valid.
//!
//! Input: the bytes, read at offset 0 by every parser, and again as the payload of the
//! headers an earlier parser accepted (Ethernet payload, IPv4/IPv6 payload).
#![no_main]

use aves_dataplane::pipeline::flow::{flow_key, icmp_error_key};
use aves_dataplane::pipeline::tunnel::{covered_inner, source_port, HEADERS_ONLY_PAYLOAD};
use aves_dataplane::wire::{
    arp, aves, ethernet, icmpv4, icmpv6, ipv4, ipv6, ipv6ext, tcp, udp, WireError,
};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

const SRC4: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const DST4: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);
const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fn ethernet(d: &[u8]) {
    let Ok(f) = ethernet::Frame::new_checked(d) else {
        assert!(d.len() < ethernet::HEADER_LEN);
        return;
    };
    black_box((f.dst(), f.src(), f.ethertype(), f.payload()));
    let r = ethernet::EthernetRepr::parse(&f).expect("a checked frame parses");
    assert_eq!(r.ethertype, f.ethertype());
    let p = f.payload();
    match f.ethertype() {
        ethernet::ethertype::ARP => arp(p),
        ethernet::ethertype::IPV4 => ipv4(p),
        ethernet::ethertype::IPV6 => ipv6(p),
        _ => {}
    }
}

fn arp(d: &[u8]) {
    let Ok(p) = arp::Packet::new_checked(d) else {
        return;
    };
    black_box((p.htype(), p.ptype(), p.hlen(), p.plen(), p.operation()));
    black_box((p.sender_mac(), p.sender_ip(), p.target_mac(), p.target_ip()));
    if let Ok(r) = arp::ArpRepr::parse(&p) {
        assert_eq!(r.sender_ip, p.sender_ip());
        assert_eq!(r.target_mac, p.target_mac());
    }
}

fn ipv4(d: &[u8]) {
    black_box((flow_key(d), icmp_error_key(d)));
    let Ok(p) = ipv4::Packet::new_checked(d) else {
        return;
    };
    black_box((
        p.version(),
        p.dscp_ecn(),
        p.ident(),
        p.dont_frag(),
        p.more_frags(),
    ));
    black_box((p.frag_offset(), p.is_fragment(), p.ttl(), p.checksum()));
    black_box((
        p.options(),
        p.header(),
        p.verify_checksum(),
        source_port(&p),
    ));
    assert_eq!(p.header().len(), p.header_len());
    assert_eq!(
        p.payload().len() + p.header_len(),
        usize::from(p.total_len())
    );
    for h in [false, true] {
        let c = covered_inner(d, h);
        assert!(c.len() <= d.len());
        assert!(h || c.len() == d.len());
        assert!(!h || c.len() <= p.header_len() + HEADERS_ONLY_PAYLOAD);
    }
    match ipv4::Ipv4Repr::parse(&p) {
        Ok(r) => {
            assert!(p.verify_checksum());
            assert_eq!(usize::from(r.payload_len), p.payload().len());
            assert_eq!((r.src, r.dst, r.protocol), (p.src(), p.dst(), p.protocol()));
        }
        Err(e) => assert_eq!(e, WireError::Checksum),
    }
    let (s, t, pl) = (p.src(), p.dst(), p.payload());
    if p.frag_offset() != 0 {
        return;
    }
    match p.protocol() {
        ipv4::protocol::ICMP => icmpv4(pl),
        ipv4::protocol::UDP => udp(pl, Some((s, t))),
        ipv4::protocol::TCP => tcp(pl, Some((s, t))),
        _ => {}
    }
}

fn icmpv4(d: &[u8]) {
    let Ok(p) = icmpv4::Packet::new_checked(d) else {
        return;
    };
    black_box((
        p.msg_type(),
        p.code(),
        p.checksum(),
        p.echo_ident(),
        p.echo_seq(),
    ));
    black_box((
        p.next_hop_mtu(),
        p.pointer(),
        p.data(),
        p.verify_checksum(),
        p.is_error(),
    ));
    black_box(icmpv4::error_quote(d));
    if let Ok(r) = icmpv4::Icmpv4Repr::parse(&p) {
        assert!(p.verify_checksum());
        assert_eq!(r.buffer_len(), d.len());
    }
}

fn udp(d: &[u8], v4: Option<(Ipv4Addr, Ipv4Addr)>) {
    let Ok(p) = udp::Packet::new_checked(d) else {
        return;
    };
    black_box((
        p.src_port(),
        p.dst_port(),
        p.len(),
        p.is_empty(),
        p.checksum(),
    ));
    assert!(p.payload().len() + udp::HEADER_LEN <= d.len());
    let (s, t) = v4.unwrap_or((SRC4, DST4));
    black_box((p.verify_checksum_v4(s, t), p.verify_checksum_v6(SRC6, DST6)));
    let r = udp::UdpRepr::parse(&p).expect("a checked datagram parses");
    assert_eq!((r.src_port, r.dst_port), (p.src_port(), p.dst_port()));
    // An AVES header may follow.
    aves(p.payload());
}

fn tcp(d: &[u8], v4: Option<(Ipv4Addr, Ipv4Addr)>) {
    let Ok(p) = tcp::Packet::new_checked(d) else {
        return;
    };
    black_box((
        p.src_port(),
        p.dst_port(),
        p.seq_number(),
        p.ack_number(),
        p.flags(),
    ));
    black_box((p.syn(), p.ack(), p.fin(), p.rst(), p.window(), p.urgent()));
    black_box((p.checksum(), p.options(), p.payload(), p.mss()));
    assert_eq!(p.options().len() + tcp::MIN_HEADER_LEN, p.header_len());
    assert_eq!(p.payload().len() + p.header_len(), d.len());
    let (s, t) = v4.unwrap_or((SRC4, DST4));
    black_box(p.verify_checksum_v6(SRC6, DST6));
    let r = tcp::TcpRepr::parse(&p).expect("a checked segment parses");
    assert_eq!(r.max_seg_size, p.mss());
    // Clamping keeps a valid checksum valid and never raises the MSS.
    let mut seg = d.to_vec();
    let mut q = tcp::Packet::new_unchecked(&mut seg[..]);
    q.fill_checksum_v4(s, t);
    let max = u16::from_be_bytes([d[4], d[5]]);
    let changed = q.clamp_mss(max);
    assert!(q.verify_checksum_v4(s, t), "clamp_mss broke the checksum");
    match (p.mss(), q.mss()) {
        (Some(old), Some(new)) => {
            assert_eq!(new, old.min(max));
            assert_eq!(changed, old > max);
        }
        (old, new) => {
            assert_eq!(old, new);
            assert!(!changed);
        }
    }
}

fn ipv6(d: &[u8]) {
    let Ok(p) = ipv6::Packet::new_checked(d) else {
        return;
    };
    black_box((
        p.version(),
        p.traffic_class(),
        p.flow_label(),
        p.hop_limit(),
    ));
    let r = ipv6::Ipv6Repr::parse(&p).expect("a checked packet parses");
    assert_eq!(usize::from(r.payload_len), p.payload().len());
    let (s, t, pl) = (p.src(), p.dst(), p.payload());
    let Ok(ul) = ipv6ext::find_upper_layer(p.next_header(), pl) else {
        return;
    };
    assert!(ul.offset <= pl.len(), "upper layer past the payload");
    if ul.fragment.is_some_and(|f| f.frag_offset != 0) {
        return;
    }
    let upper = &pl[ul.offset..];
    match ul.protocol {
        ipv6::next_header::ICMPV6 => icmpv6(upper, s, t),
        ipv6::next_header::UDP => udp(upper, None),
        ipv6::next_header::TCP => tcp(upper, None),
        _ => {}
    }
}

fn icmpv6(d: &[u8], src: Ipv6Addr, dst: Ipv6Addr) {
    let Ok(p) = icmpv6::Packet::new_checked(d) else {
        return;
    };
    black_box((
        p.msg_type(),
        p.code(),
        p.checksum(),
        p.echo_ident(),
        p.echo_seq(),
    ));
    black_box((p.mtu(), p.pointer(), p.data(), p.is_error()));
    for (s, t) in [(src, dst), (SRC6, DST6)] {
        black_box(p.verify_checksum(s, t));
        if let Ok(r) = icmpv6::Icmpv6Repr::parse(&p, s, t) {
            assert!(r.buffer_len() <= d.len());
            assert_eq!(r.is_error(), p.is_error());
        }
        if let Ok(r) = icmpv6::NdpRepr::parse(&p, s, t) {
            assert!(r.buffer_len() <= d.len());
        }
    }
    ndp(d);
}

fn ndp(d: &[u8]) {
    let Ok(n) = icmpv6::NdpPacket::new_checked(d) else {
        return;
    };
    black_box((n.msg_type(), n.flags(), n.target_addr(), n.options()));
    for kind in [
        icmpv6::ndp_option::SOURCE_LLADDR,
        icmpv6::ndp_option::TARGET_LLADDR,
    ] {
        black_box(n.lladdr_option(kind)).ok();
    }
}

fn aves(d: &[u8]) {
    let Ok(h) = aves::Header::new_checked(d) else {
        return;
    };
    black_box((
        h.version(),
        h.flags(),
        h.headers_only(),
        h.multihoming(),
        h.key_id(),
    ));
    assert_eq!(h.tag().len(), aves::TAG_LEN);
    assert_eq!(h.authenticated().len(), aves::AUTHENTICATED_LEN);
    assert_eq!(h.payload().len() + aves::HEADER_LEN, d.len());
    let r = aves::AvesRepr::parse(&h).expect("a checked header parses");
    assert_eq!((r.flags, r.key_id), (h.flags(), h.key_id()));
}

fn ext_headers(d: &[u8]) {
    if let Ok(h) = ipv6ext::ExtHeader::new_checked(d) {
        black_box((h.next_header(), h.hdr_ext_len(), h.data()));
        black_box((h.routing_type(), h.segments_left()));
        assert!(h.header_len() <= d.len());
    }
    if let Ok(h) = ipv6ext::FragmentHeader::new_checked(d) {
        black_box((h.next_header(), h.frag_offset(), h.more_frags(), h.ident()));
        let r = ipv6ext::FragmentRepr::parse(&h).expect("a checked header parses");
        black_box(r.is_atomic());
    }
    if let Some((&nh, rest)) = d.split_first() {
        if let Ok(ul) = ipv6ext::find_upper_layer(nh, rest) {
            assert!(ul.offset <= rest.len(), "upper layer past the payload");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    ethernet(data);
    arp(data);
    ipv4(data);
    icmpv4(data);
    udp(data, None);
    tcp(data, None);
    ipv6(data);
    icmpv6(data, SRC6, DST6);
    aves(data);
    ext_headers(data);
});
