//! Waypoint and gateway together, in one process with virtual time (quinn's style): the
//! waypoint's output is fed to the gateway, the gateway's to the responder, and back.
//! Addresses follow the e2e plan: A 198.51.100.10, W pool 203.0.113.100-115 on port 0
//! (203.0.113.2), R public 192.0.2.2 (port 0), private 10.0.0.1 (port 1), B 10.0.0.2.

use crate::addr::MacAddr;
use crate::auth::{Algorithm, Key, Keyring};
use crate::buf::{PacketBuf, VecBuf};
use crate::command::{Binding, Command, CommandError, Mode, Route};
use crate::counters::{CoreCounters, DropReason};
use crate::pipeline::flow::Timeouts;
use crate::pipeline::gateway::{Gateway, GatewayConfig};
use crate::pipeline::router::{PortConfig, RouterConfig};
use crate::pipeline::tunnel::AVES_UDP_PORT;
use crate::pipeline::waypoint::{DelayedTimers, GatewayKeys, Waypoint, WaypointConfig};
use crate::pipeline::{RecordingIo, Role};
use crate::wire::{checksum, ethernet, icmpv4, ipv4, tcp, udp};
use std::net::Ipv4Addr;

pub(crate) const W_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x77, 1]);
pub(crate) const R_PUB_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x88, 1]);
pub(crate) const R_PRIV_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x88, 2]);
pub(crate) const INET_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x11, 1]);
pub(crate) const B_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0xbb, 1]);
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

pub(crate) fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub(crate) fn keyring() -> Keyring {
    Keyring::new(Key::new(1, Algorithm::HmacMd5, SECRET).unwrap())
}

pub(crate) fn waypoint() -> Waypoint {
    Waypoint::<VecBuf>::new(&waypoint_config()).unwrap()
}

pub(crate) fn waypoint_config() -> WaypointConfig {
    WaypointConfig {
        router: RouterConfig {
            ports: vec![PortConfig {
                mac: W_MAC,
                addrs: vec!["203.0.113.2/24".parse().unwrap()],
                pools: vec!["203.0.113.100-203.0.113.115".parse().unwrap()],
                mtu: 1500,
            }],
            routes: vec![Route {
                prefix: "0.0.0.0/0".parse().unwrap(),
                via: Some(ip("203.0.113.1")),
                port: 0,
            }],
            neighbours: vec![(0, ip("203.0.113.1"), INET_MAC)],
            route_capacity: 16,
            neighbour_capacity: 16,
            neighbour_ttl_ns: u64::MAX / 2,
        },
        gateways: vec![GatewayKeys {
            address: ip("192.0.2.2"),
            keys: keyring(),
        }],
        bindings: vec![],
        binding_capacity: 64,
        connection_capacity: 64,
        tunnel_port: AVES_UDP_PORT,
        headers_only: false,
        timeouts: Timeouts::aves(),
        seed: 1,
        delayed: DelayedTimers::paper(),
        wait_capacity: 16,
        reject_capacity: 64,
    }
}

pub(crate) fn gateway() -> Gateway<VecBuf> {
    Gateway::new(&gateway_config()).unwrap()
}

pub(crate) fn gateway_config() -> GatewayConfig {
    GatewayConfig {
        router: RouterConfig {
            ports: vec![
                PortConfig {
                    mac: R_PUB_MAC,
                    addrs: vec!["192.0.2.2/24".parse().unwrap()],
                    pools: vec![],
                    mtu: 1500,
                },
                PortConfig {
                    mac: R_PRIV_MAC,
                    addrs: vec!["10.0.0.1/24".parse().unwrap()],
                    pools: vec![],
                    mtu: 1500,
                },
            ],
            routes: vec![Route {
                prefix: "0.0.0.0/0".parse().unwrap(),
                via: Some(ip("192.0.2.1")),
                port: 0,
            }],
            neighbours: vec![(0, ip("192.0.2.1"), INET_MAC), (1, ip("10.0.0.2"), B_MAC)],
            route_capacity: 16,
            neighbour_capacity: 16,
            neighbour_ttl_ns: u64::MAX / 2,
        },
        public_port: 0,
        private_port: 1,
        keys: keyring(),
        tunnel_port: AVES_UDP_PORT,
        flow_capacity: 64,
        nat_ports: (20000, 20009),
        timeouts: Timeouts::aves(),
        nat_timeouts: Timeouts::nat44(),
        reassembly_contexts: 8,
        reassembly_fragments: 8,
        reassembly_bytes: 65536,
        reassembly_timeout_ns: 5_000_000_000,
        seed: 2,
        lcore_index: 0,
        lcore_count: 1,
    }
}

pub(crate) fn bind(
    w: &mut Waypoint,
    initiator: &str,
    wp: &str,
    mode: Mode,
) -> Result<(), CommandError> {
    <Waypoint as Role<VecBuf>>::apply(
        w,
        &Command::AddBinding(Binding {
            initiator: ip(initiator),
            waypoint: ip(wp),
            gateway: ip("192.0.2.2"),
            responder: ip("10.0.0.2"),
            mode,
            pinned: false,
        }),
        0,
    )
}

/// An Ethernet frame to `dst_mac` with an IPv4 datagram.
pub(crate) fn frame(
    dst_mac: MacAddr,
    src: &str,
    dst: &str,
    proto: u8,
    l4: &[u8],
    df: bool,
) -> Vec<u8> {
    let mut v = vec![0u8; 14 + 20 + l4.len()];
    let mut f = ethernet::Frame::new_unchecked(&mut v[..]);
    f.set_dst(dst_mac);
    f.set_src(INET_MAC);
    f.set_ethertype(ethernet::ethertype::IPV4);
    ipv4::Ipv4Repr {
        src: ip(src),
        dst: ip(dst),
        protocol: proto,
        payload_len: l4.len() as u16,
        ttl: 60,
        dscp_ecn: 0,
        ident: 99,
        dont_frag: df,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut v[14..]));
    v[34..].copy_from_slice(l4);
    let (s, d) = (ip(src), ip(dst));
    match proto {
        ipv4::protocol::TCP => tcp::Packet::new_unchecked(&mut v[34..]).fill_checksum_v4(s, d),
        ipv4::protocol::UDP => udp::Packet::new_unchecked(&mut v[34..]).fill_checksum_v4(s, d),
        _ => {
            v[36] = 0;
            v[37] = 0;
            let c = checksum::checksum(&v[34..]);
            v[36..38].copy_from_slice(&c.to_be_bytes());
        }
    }
    v
}

pub(crate) fn tcp_seg(sport: u16, dport: u16, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut s = vec![0u8; 20 + data.len()];
    s[0..2].copy_from_slice(&sport.to_be_bytes());
    s[2..4].copy_from_slice(&dport.to_be_bytes());
    s[12] = 5 << 4;
    s[13] = flags;
    s[14..16].copy_from_slice(&1024u16.to_be_bytes());
    s[20..].copy_from_slice(data);
    s
}

pub(crate) fn udp_dgram(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut s = vec![0u8; 8 + data.len()];
    s[0..2].copy_from_slice(&sport.to_be_bytes());
    s[2..4].copy_from_slice(&dport.to_be_bytes());
    s[4..6].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    s[8..].copy_from_slice(data);
    s
}

pub(crate) fn echo(ty: u8, ident: u16, data: &[u8]) -> Vec<u8> {
    let mut s = vec![ty, 0, 0, 0];
    s.extend_from_slice(&ident.to_be_bytes());
    s.extend_from_slice(&1u16.to_be_bytes());
    s.extend_from_slice(data);
    s
}

pub(crate) fn run<R: Role<VecBuf>>(
    r: &mut R,
    port: u16,
    f: &[u8],
    now: u64,
) -> (RecordingIo, CoreCounters) {
    let mut io = RecordingIo {
        budget: 8,
        ..Default::default()
    };
    let c = CoreCounters::default();
    r.handle(VecBuf::from_slice(f), port, now, &c, &mut io);
    (io, c)
}

/// Re-addresses a frame the waypoint sent so the gateway's public port accepts it (the
/// Internet router in between would do this).
pub(crate) fn via_internet(mut f: Vec<u8>, to: MacAddr) -> Vec<u8> {
    f[0..6].copy_from_slice(&to.0);
    f[6..12].copy_from_slice(&INET_MAC.0);
    f
}

/// Checks the frame is valid IPv4 with valid checksums and returns its view data.
pub(crate) fn parse(f: &[u8]) -> (Ipv4Addr, Ipv4Addr, u8, Vec<u8>) {
    let p = ipv4::Packet::new_checked(&f[14..]).expect("ipv4");
    assert!(p.verify_checksum(), "ip checksum");
    let (s, d) = (p.src(), p.dst());
    match p.protocol() {
        ipv4::protocol::TCP => assert!(tcp::Packet::new_checked(p.payload())
            .unwrap()
            .verify_checksum_v4(s, d)),
        ipv4::protocol::UDP => assert!(udp::Packet::new_checked(p.payload())
            .unwrap()
            .verify_checksum_v4(s, d)),
        ipv4::protocol::ICMP => assert!(checksum::verify(p.payload()), "icmp checksum"),
        _ => {}
    }
    (s, d, p.protocol(), p.payload().to_vec())
}

#[test]
fn tcp_through_waypoint_and_gateway_and_back_plain() {
    let (mut w, mut r) = (waypoint(), gateway());
    bind(&mut w, "198.51.100.10", "203.0.113.100", Mode::Plain).unwrap();
    // A → W: SYN.
    let syn = frame(
        W_MAC,
        "198.51.100.10",
        "203.0.113.100",
        6,
        &tcp_seg(40000, 80, tcp::flags::SYN, &[]),
        true,
    );
    let (io, _) = run(&mut w, 0, &syn, 1);
    assert_eq!(io.forwarded.len(), 1, "{:?}", io.dropped);
    let (port, tunnelled) = &io.forwarded[0];
    assert_eq!(*port, 0);
    assert_eq!(
        &tunnelled[0..6],
        &INET_MAC.0,
        "next hop is the Internet router"
    );
    let (os, od, proto, _) = parse(tunnelled);
    assert_eq!((os, od, proto), (ip("203.0.113.100"), ip("192.0.2.2"), 17));
    // R: decapsulate, deliver [A→B] on the private port.
    let (io, c) = run(&mut r, 0, &via_internet(tunnelled.clone(), R_PUB_MAC), 2);
    assert_eq!(io.forwarded.len(), 1, "{:?}", io.dropped);
    let (port, inner) = &io.forwarded[0];
    assert_eq!(*port, 1);
    assert_eq!(&inner[0..6], &B_MAC.0);
    let (s, d, _, seg) = parse(inner);
    assert_eq!(
        (s, d),
        (ip("198.51.100.10"), ip("10.0.0.2")),
        "plain: B sees A"
    );
    assert_eq!(&seg[0..4], &[0x9c, 0x40, 0, 80]);
    assert_eq!(c.drops.iter().map(|d| d.get()).sum::<u64>(), 0);
    assert_eq!(r.flow_count(), 1);
    // B → A: SYN/ACK leaves R as [W→A].
    let synack = frame(
        R_PRIV_MAC,
        "10.0.0.2",
        "198.51.100.10",
        6,
        &tcp_seg(80, 40000, tcp::flags::SYN | tcp::flags::ACK, &[]),
        true,
    );
    let (io, _) = run(&mut r, 1, &synack, 3);
    assert_eq!(io.forwarded.len(), 1, "{:?}", io.dropped);
    let (port, out) = &io.forwarded[0];
    assert_eq!(*port, 0);
    let (s, d, _, seg) = parse(out);
    assert_eq!(
        (s, d),
        (ip("203.0.113.100"), ip("198.51.100.10")),
        "reply from W"
    );
    assert_eq!(&seg[0..4], &[0, 80, 0x9c, 0x40]);
}

#[test]
fn multihoming_rewrites_the_initiator_and_restores_it_on_replies() {
    let (mut w, mut r) = (waypoint(), gateway());
    bind(&mut w, "198.51.100.11", "203.0.113.101", Mode::MultiHoming).unwrap();
    let req = frame(
        W_MAC,
        "198.51.100.11",
        "203.0.113.101",
        17,
        &udp_dgram(5000, 53, b"query"),
        false,
    );
    let (io, _) = run(&mut w, 0, &req, 1);
    let (io, _) = run(
        &mut r,
        0,
        &via_internet(io.forwarded[0].1.clone(), R_PUB_MAC),
        2,
    );
    assert_eq!(io.forwarded.len(), 1, "{:?}", io.dropped);
    let (s, d, _, u) = parse(&io.forwarded[0].1);
    assert_eq!(
        (s, d),
        (ip("10.0.0.1"), ip("10.0.0.2")),
        "B sees R's private address"
    );
    let p = u16::from_be_bytes([u[0], u[1]]);
    assert!((20000..=20009).contains(&p), "allocated port {p}");
    // The same flow keeps its port.
    let (io2, _) = run(&mut w, 0, &req, 3);
    let (io2, _) = run(
        &mut r,
        0,
        &via_internet(io2.forwarded[0].1.clone(), R_PUB_MAC),
        4,
    );
    let (_, _, _, u2) = parse(&io2.forwarded[0].1);
    assert_eq!(u16::from_be_bytes([u2[0], u2[1]]), p);
    // B's reply to R:p leaves as W→A:5000.
    let reply = frame(
        R_PRIV_MAC,
        "10.0.0.2",
        "10.0.0.1",
        17,
        &udp_dgram(53, p, b"answer"),
        false,
    );
    let (io, _) = run(&mut r, 1, &reply, 5);
    assert_eq!(io.forwarded.len(), 1, "{:?}", io.dropped);
    let (s, d, _, u) = parse(&io.forwarded[0].1);
    assert_eq!((s, d), (ip("203.0.113.101"), ip("198.51.100.11")));
    assert_eq!(u16::from_be_bytes([u[2], u[3]]), 5000);
    assert_eq!(&u[8..], b"answer");
}

#[test]
fn ping_and_traceroute_port_unreachable_come_back_translated() {
    let (mut w, mut r) = (waypoint(), gateway());
    bind(&mut w, "198.51.100.10", "203.0.113.100", Mode::Plain).unwrap();
    // Echo request and reply.
    let ping = frame(
        W_MAC,
        "198.51.100.10",
        "203.0.113.100",
        1,
        &echo(8, 0x4242, b"abc"),
        false,
    );
    let (io, _) = run(&mut w, 0, &ping, 1);
    let (io, _) = run(
        &mut r,
        0,
        &via_internet(io.forwarded[0].1.clone(), R_PUB_MAC),
        2,
    );
    let (s, d, _, _) = parse(&io.forwarded[0].1);
    assert_eq!((s, d), (ip("198.51.100.10"), ip("10.0.0.2")));
    let pong = frame(
        R_PRIV_MAC,
        "10.0.0.2",
        "198.51.100.10",
        1,
        &echo(0, 0x4242, b"abc"),
        false,
    );
    let (io, _) = run(&mut r, 1, &pong, 3);
    let (s, d, _, m) = parse(&io.forwarded[0].1);
    assert_eq!((s, d, m[0]), (ip("203.0.113.100"), ip("198.51.100.10"), 0));
    // A traceroute probe (UDP to a closed port); B answers port unreachable quoting it.
    let probe_l4 = udp_dgram(33434, 33435, &[0u8; 12]);
    let probe = frame(
        W_MAC,
        "198.51.100.10",
        "203.0.113.100",
        17,
        &probe_l4,
        false,
    );
    let (io, _) = run(&mut w, 0, &probe, 4);
    let (io, _) = run(
        &mut r,
        0,
        &via_internet(io.forwarded[0].1.clone(), R_PUB_MAC),
        5,
    );
    let delivered = io.forwarded[0].1.clone();
    let mut err_l4 = vec![
        icmpv4::msg::DST_UNREACHABLE,
        icmpv4::unreach::PORT,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    err_l4.extend_from_slice(&delivered[14..]);
    let err = frame(R_PRIV_MAC, "10.0.0.2", "198.51.100.10", 1, &err_l4, false);
    let (io, _) = run(&mut r, 1, &err, 6);
    assert_eq!(io.forwarded.len(), 1, "{:?}", io.dropped);
    let (s, d, _, m) = parse(&io.forwarded[0].1);
    assert_eq!(
        (s, d),
        (ip("203.0.113.100"), ip("198.51.100.10")),
        "error from W to A"
    );
    assert_eq!((m[0], m[1]), (3, 3));
    let q = ipv4::Packet::new_checked(&m[8..]).unwrap();
    assert!(q.verify_checksum(), "quoted header checksum fixed");
    assert_eq!(
        (q.src(), q.dst()),
        (ip("198.51.100.10"), ip("203.0.113.100")),
        "quote as A sent it"
    );
    // The probe's entry is short-lived (traceroute grace, 5 s): gone after a tick at 6 s.
    assert_eq!(r.flow_count(), 2);
    let c = CoreCounters::default();
    let mut tio = RecordingIo::default();
    // The sweep is incremental (bounded work per tick): a few ticks cover the table.
    for _ in 0..4 {
        r.tick(7_000_000_000, &c, &mut tio);
    }
    assert_eq!(r.flow_count(), 1, "only the traceroute entry went at 7 s");
    for _ in 0..4 {
        r.tick(70_000_000_000, &c, &mut tio);
    }
    assert_eq!(
        r.flow_count(),
        0,
        "ICMP (60 s) and traceroute (5 s) entries expired"
    );
}

#[test]
fn forged_and_unknown_key_tunnel_packets_create_no_state() {
    let (mut w, mut r) = (waypoint(), gateway());
    bind(&mut w, "198.51.100.10", "203.0.113.100", Mode::Plain).unwrap();
    let syn = frame(
        W_MAC,
        "198.51.100.10",
        "203.0.113.100",
        6,
        &tcp_seg(1, 2, tcp::flags::SYN, b"x"),
        true,
    );
    let (io, _) = run(&mut w, 0, &syn, 1);
    let good = via_internet(io.forwarded[0].1.clone(), R_PUB_MAC);
    let mut forged = good.clone();
    let n = forged.len();
    forged[n - 1] ^= 1; // inner payload
    assert_eq!(
        run(&mut r, 0, &forged, 2).0.dropped,
        vec![DropReason::AuthBadTag]
    );
    let mut unknown = good.clone();
    unknown[14 + 20 + 8 + 1] = 9; // key id
    assert_eq!(
        run(&mut r, 0, &unknown, 2).0.dropped,
        vec![DropReason::AuthUnknownKey]
    );
    assert_eq!(r.flow_count(), 0);
    assert_eq!(run(&mut r, 0, &good, 3).0.forwarded.len(), 1);
    assert_eq!(r.flow_count(), 1);
}

#[test]
fn large_udp_is_fragmented_by_the_waypoint_and_reassembled_by_the_gateway() {
    let (mut w, mut r) = (waypoint(), gateway());
    bind(&mut w, "198.51.100.10", "203.0.113.100", Mode::Plain).unwrap();
    let payload: Vec<u8> = (0..1472u32).map(|i| i as u8).collect();
    let big = frame(
        W_MAC,
        "198.51.100.10",
        "203.0.113.100",
        17,
        &udp_dgram(7, 9, &payload),
        false,
    );
    let (io, c) = run(&mut w, 0, &big, 1);
    assert_eq!(
        io.forwarded.len(),
        2,
        "1500-byte inner + 48 > 1500: two outer fragments"
    );
    assert_eq!(c.events.fragments_made.get(), 2);
    let mut out = None;
    for (i, (_, f)) in io.forwarded.iter().enumerate() {
        let (rio, rc) = run(&mut r, 0, &via_internet(f.clone(), R_PUB_MAC), 2 + i as u64);
        if i == 0 {
            assert!(rio.forwarded.is_empty() && rio.dropped.is_empty(), "held");
        } else {
            assert_eq!(rc.events.datagrams_reassembled.get(), 1);
            out = rio.forwarded.first().cloned();
        }
    }
    let (_, inner) = out.expect("reassembled and delivered");
    let (s, d, _, u) = parse(&inner);
    assert_eq!((s, d), (ip("198.51.100.10"), ip("10.0.0.2")));
    assert_eq!(&u[8..], &payload[..]);
}

#[test]
fn tunnel_cannot_reach_the_public_side() {
    let (mut w, mut r) = (waypoint(), gateway());
    <Waypoint as Role<VecBuf>>::apply(
        &mut w,
        &Command::AddBinding(Binding {
            initiator: ip("198.51.100.10"),
            waypoint: ip("203.0.113.100"),
            gateway: ip("192.0.2.2"),
            responder: ip("198.51.100.77"),
            mode: Mode::Plain,
            pinned: false,
        }),
        0,
    )
    .unwrap();
    let f = frame(
        W_MAC,
        "198.51.100.10",
        "203.0.113.100",
        17,
        &udp_dgram(1, 2, b"x"),
        false,
    );
    let (io, _) = run(&mut w, 0, &f, 1);
    let (io, _) = run(
        &mut r,
        0,
        &via_internet(io.forwarded[0].1.clone(), R_PUB_MAC),
        2,
    );
    assert_eq!(io.dropped, vec![DropReason::TunnelForeignDestination]);
}

#[test]
fn public_datagrams_with_a_bad_header_checksum_are_dropped() {
    // Found by fuzzing (fuzz/corpus/gateway/regression-public-bad-checksum): a NAT44
    // reply with a corrupt IPv4 header checksum was translated (incrementally, so still
    // corrupt) and sent to B.
    let mut r = gateway();
    let out = frame(
        R_PRIV_MAC,
        "10.0.0.2",
        "198.51.100.99",
        17,
        &udp_dgram(5353, 53, b"q"),
        false,
    );
    let (io, _) = run(&mut r, 1, &out, 1);
    let (_, _, _, u) = parse(&io.forwarded[0].1);
    let ext = u16::from_be_bytes([u[0], u[1]]);
    let mut reply = frame(
        R_PUB_MAC,
        "198.51.100.99",
        "192.0.2.2",
        17,
        &udp_dgram(53, ext, b"a"),
        false,
    );
    reply[24] ^= 0x5a;
    let (io, _) = run(&mut r, 0, &reply, 2);
    assert!(io.forwarded.is_empty());
    assert_eq!(io.dropped, vec![DropReason::Ipv4Checksum]);
    reply[24] ^= 0x5a;
    let (io, _) = run(&mut r, 0, &reply, 3);
    assert_eq!(io.forwarded.len(), 1, "{:?}", io.dropped);
}

#[test]
fn translated_datagrams_fit_the_egress_mtu() {
    // Found by fuzzing (fuzz/corpus/gateway/regression-egress-mtu): a datagram that fits
    // the private link left the public port unfragmented, over its MTU. With a 9000-byte
    // private MTU, B's 2000-byte datagrams leave in fragments of at most 1500 bytes (DF
    // clear) or are dropped (DF set).
    let mut cfg = gateway_config();
    cfg.router.ports[1].mtu = 9000;
    let mut r: Gateway<VecBuf> = Gateway::new(&cfg).unwrap();
    let data = vec![0x42u8; 2000];
    let f = frame(
        R_PRIV_MAC,
        "10.0.0.2",
        "198.51.100.99",
        17,
        &udp_dgram(5353, 53, &data),
        false,
    );
    let (io, _) = run(&mut r, 1, &f, 1);
    assert!(io.dropped.is_empty(), "{:?}", io.dropped);
    assert_eq!(io.forwarded.len(), 2);
    let mut payload = 0;
    for (port, fr) in &io.forwarded {
        assert_eq!(*port, 0);
        let p = ipv4::Packet::new_checked(&fr[14..]).unwrap();
        assert!(p.verify_checksum());
        assert!(p.total_len() <= 1500);
        assert_eq!(p.src(), ip("192.0.2.2"));
        payload += p.payload().len();
    }
    assert_eq!(payload, 8 + data.len());
    let df = frame(
        R_PRIV_MAC,
        "10.0.0.2",
        "198.51.100.99",
        17,
        &udp_dgram(5353, 53, &data),
        true,
    );
    let (io, _) = run(&mut r, 1, &df, 2);
    assert!(io.forwarded.is_empty());
    assert_eq!(io.dropped, vec![DropReason::MtuExceeded]);
}

#[test]
fn outbound_nat44_maps_endpoint_independently_and_filters_by_address_and_port() {
    let mut r = gateway();
    let out = |r: &mut Gateway<VecBuf>, dst: &str, dport: u16, now| {
        let f = frame(
            R_PRIV_MAC,
            "10.0.0.2",
            dst,
            17,
            &udp_dgram(5353, dport, b"q"),
            false,
        );
        let (io, _) = run(r, 1, &f, now);
        assert_eq!(io.forwarded.len(), 1, "{:?}", io.dropped);
        let (s, d, _, u) = parse(&io.forwarded[0].1);
        assert_eq!((s, d), (ip("192.0.2.2"), ip(dst)));
        u16::from_be_bytes([u[0], u[1]])
    };
    let e1 = out(&mut r, "198.51.100.99", 53, 1);
    let e2 = out(&mut r, "198.51.100.98", 123, 2);
    assert_eq!(e1, e2, "endpoint-independent mapping (RFC 4787 REQ-1)");
    assert!((20000..=20009).contains(&e1));
    // Occupancy as the lcore reports it: one NAT port; the mapping and two sessions
    // (each an outbound and an inbound entry) in the flow table.
    let c = CoreCounters::default();
    Role::<VecBuf>::report(&r, &c);
    assert_eq!(c.table(crate::counters::Table::NatPorts), 1);
    assert_eq!(
        c.table(crate::counters::Table::Flows),
        r.flow_count() as u64
    );
    assert!(r.flow_count() >= 3, "{}", r.flow_count());
    assert_eq!(c.table(crate::counters::Table::ReassemblyContexts), 0);
    assert!(c.table(crate::counters::Table::Routes) > 0);
    // The reply from the endpoint B sent to comes back to B:5353.
    let reply = frame(
        R_PUB_MAC,
        "198.51.100.99",
        "192.0.2.2",
        17,
        &udp_dgram(53, e1, b"a"),
        false,
    );
    let (io, _) = run(&mut r, 0, &reply, 3);
    assert_eq!(io.forwarded.len(), 1, "{:?}", io.dropped);
    let (s, d, _, u) = parse(&io.forwarded[0].1);
    assert_eq!((s, d), (ip("198.51.100.99"), ip("10.0.0.2")));
    assert_eq!(u16::from_be_bytes([u[2], u[3]]), 5353);
    // Another port of that host, or another host: filtered (REQ-8).
    for (src, sport) in [("198.51.100.99", 54), ("198.51.100.97", 53)] {
        let f = frame(
            R_PUB_MAC,
            src,
            "192.0.2.2",
            17,
            &udp_dgram(sport, e1, b"x"),
            false,
        );
        assert_eq!(
            run(&mut r, 0, &f, 4).0.dropped,
            vec![DropReason::NatNoMapping]
        );
    }
    // TCP: only a SYN opens a session.
    let ack = frame(
        R_PRIV_MAC,
        "10.0.0.2",
        "198.51.100.99",
        6,
        &tcp_seg(40000, 443, tcp::flags::ACK, &[]),
        false,
    );
    assert_eq!(
        run(&mut r, 1, &ack, 5).0.dropped,
        vec![DropReason::NatNoMapping]
    );
    // Ping out and its reply.
    let ping = frame(
        R_PRIV_MAC,
        "10.0.0.2",
        "198.51.100.99",
        1,
        &echo(8, 77, b"p"),
        false,
    );
    let (io, _) = run(&mut r, 1, &ping, 6);
    let (_, _, _, m) = parse(&io.forwarded[0].1);
    let id = u16::from_be_bytes([m[4], m[5]]);
    let pong = frame(
        R_PUB_MAC,
        "198.51.100.99",
        "192.0.2.2",
        1,
        &echo(0, id, b"p"),
        false,
    );
    let (io, _) = run(&mut r, 0, &pong, 7);
    let (s, d, _, m) = parse(&io.forwarded[0].1);
    assert_eq!(
        (s, d, u16::from_be_bytes([m[4], m[5]])),
        (ip("198.51.100.99"), ip("10.0.0.2"), 77)
    );
    // Ports are released when the mappings expire (UDP 5 min, ICMP 60 s): all 10 again.
    let c = CoreCounters::default();
    let mut tio = RecordingIo::default();
    for _ in 0..8 {
        r.tick(3_600_000_000_000, &c, &mut tio);
    }
    assert_eq!(r.flow_count(), 0);
    for i in 0..10u16 {
        let f = frame(
            R_PRIV_MAC,
            "10.0.0.3",
            "198.51.100.99",
            17,
            &udp_dgram(1000 + i, 53, b"q"),
            false,
        );
        assert_eq!(
            run(&mut r, 1, &f, 3_600_000_000_001).0.forwarded.len(),
            1,
            "port {i}"
        );
    }
    let f = frame(
        R_PRIV_MAC,
        "10.0.0.3",
        "198.51.100.99",
        17,
        &udp_dgram(2000, 53, b"q"),
        false,
    );
    assert_eq!(
        run(&mut r, 1, &f, 3_600_000_000_002).0.dropped,
        vec![DropReason::NatPortsExhausted]
    );
}

/// Two gateway lcores: packets arrive on whichever lcore the NIC picks; the role hands
/// each to the lcore that owns its flow (decision 0006). Both directions of every flow,
/// plain, multi-homing and NAT44, end up translated correctly, whatever the arrival lcore.
#[test]
fn two_lcores_hand_packets_to_the_flow_owner() {
    let mk = |i: usize| {
        Gateway::new(&GatewayConfig {
            lcore_index: i,
            lcore_count: 2,
            nat_ports: (20000, 20099),
            ..gateway_config()
        })
        .unwrap()
    };
    let mut lcores = [mk(0), mk(1)];
    let mut w = waypoint();
    bind(&mut w, "198.51.100.10", "203.0.113.100", Mode::Plain).unwrap();
    bind(&mut w, "198.51.100.11", "203.0.113.101", Mode::MultiHoming).unwrap();

    /// Runs `f` arriving on lcore `first`, following handoffs; returns what was sent.
    fn on(
        lcores: &mut [Gateway<VecBuf>; 2],
        first: usize,
        port: u16,
        f: Vec<u8>,
    ) -> (usize, Vec<(u16, Vec<u8>)>) {
        let (mut at, mut port, mut f) = (first, port, f);
        for hops in 0..3 {
            let (io, _) = run(&mut lcores[at], port, &f, 10);
            if let Some((to, p, b)) = io.handed_off.into_iter().next() {
                assert_ne!(to, at, "never hands off to itself");
                assert_eq!(hops, 0, "one handoff at most");
                (at, port, f) = (to, p, b);
                continue;
            }
            assert!(io.dropped.is_empty(), "{:?}", io.dropped);
            return (at, io.forwarded);
        }
        panic!("handoff loop");
    }

    let mut owners = std::collections::HashSet::new();
    for sport in 40000..40008u16 {
        for (a, wp, mh) in [
            ("198.51.100.10", "203.0.113.100", false),
            ("198.51.100.11", "203.0.113.101", true),
        ] {
            let req = frame(W_MAC, a, wp, 17, &udp_dgram(sport, 53, b"q"), false);
            let (io, _) = run(&mut w, 0, &req, 1);
            let tunnelled = via_internet(io.forwarded[0].1.clone(), R_PUB_MAC);
            let arrive = usize::from(sport) % 2;
            let (owner, out) = on(&mut lcores, arrive, 0, tunnelled);
            owners.insert(owner);
            let (s, d, _, u) = parse(&out[0].1);
            let seen_port = u16::from_be_bytes([u[0], u[1]]);
            // B answers; the reply arrives on the other lcore half of the time.
            let reply = frame(
                R_PRIV_MAC,
                "10.0.0.2",
                &s.to_string(),
                17,
                &udp_dgram(53, seen_port, b"a"),
                false,
            );
            assert_eq!(d, ip("10.0.0.2"));
            let (rowner, out) = on(&mut lcores, 1 - arrive, 1, reply);
            assert_eq!(rowner, owner, "the reply is handled where the entry is");
            let (s2, d2, _, u2) = parse(&out[0].1);
            assert_eq!((s2, d2), (ip(wp), ip(a)), "mh={mh}");
            assert_eq!(u16::from_be_bytes([u2[2], u2[3]]), sport);
        }
    }
    assert_eq!(owners.len(), 2, "flows spread over both lcores");
    // NAT44: B opens flows; replies arrive on either lcore.
    for sport in 1000..1006u16 {
        let f = frame(
            R_PRIV_MAC,
            "10.0.0.2",
            "198.51.100.99",
            17,
            &udp_dgram(sport, 53, b"q"),
            false,
        );
        let (owner, out) = on(&mut lcores, usize::from(sport) % 2, 1, f);
        let (_, _, _, u) = parse(&out[0].1);
        let ext = u16::from_be_bytes([u[0], u[1]]);
        assert_eq!(
            usize::from(ext) % 2,
            owner,
            "external port encodes the owner"
        );
        let r = frame(
            R_PUB_MAC,
            "198.51.100.99",
            "192.0.2.2",
            17,
            &udp_dgram(53, ext, b"a"),
            false,
        );
        let (rowner, out) = on(&mut lcores, 1 - owner, 0, r);
        assert_eq!(rowner, owner);
        let (_, d, _, u) = parse(&out[0].1);
        assert_eq!(
            (d, u16::from_be_bytes([u[2], u[3]])),
            (ip("10.0.0.2"), sport)
        );
    }
}

/// An initiator's own fragments (a 3000-byte UDP datagram, DF clear, fragmented by A at
/// MTU 1500) go through: the waypoint fragments each outer datagram that does not fit,
/// the gateway reassembles the outer datagrams and delivers the inner fragments to B.
#[test]
fn initiator_fragments_are_tunnelled_and_delivered() {
    let (mut w, mut r) = (waypoint(), gateway());
    bind(&mut w, "198.51.100.10", "203.0.113.100", Mode::Plain).unwrap();
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let big = frame(
        W_MAC,
        "198.51.100.10",
        "203.0.113.100",
        17,
        &udp_dgram(7, 9000, &payload),
        false,
    );
    let mut inner_frags = Vec::new();
    crate::pipeline::fragment::fragment(
        VecBuf::from_slice(&big),
        1500,
        || Some(VecBuf::from_slice(&[])),
        |f| inner_frags.push(f.data().to_vec()),
    )
    .unwrap();
    assert_eq!(inner_frags.len(), 3);
    let mut delivered = Vec::new();
    for f in &inner_frags {
        let (io, c) = run(&mut w, 0, f, 1);
        assert!(io.dropped.is_empty(), "waypoint dropped {:?}", io.dropped);
        assert_eq!(
            c.drops.iter().map(|d| d.get()).sum::<u64>(),
            0,
            "waypoint drop counters"
        );
        for (_, o) in io.forwarded {
            let (rio, _) = run(&mut r, 0, &via_internet(o, R_PUB_MAC), 2);
            assert!(rio.dropped.is_empty(), "gateway dropped {:?}", rio.dropped);
            delivered.extend(rio.forwarded);
        }
    }
    assert_eq!(delivered.len(), 3, "every inner fragment reaches B");
}

/// A datagram bigger than B's link (the initiator sent 3000 bytes unfragmented with DF
/// clear, or a capture device reassembled it): the waypoint fragments the outer
/// datagram, the gateway reassembles it, and fragments the inner one on the way to B.
#[test]
fn oversized_inner_datagrams_are_fragmented_towards_the_responder() {
    let (mut w, mut r) = (waypoint(), gateway());
    bind(&mut w, "198.51.100.10", "203.0.113.100", Mode::Plain).unwrap();
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 13) as u8).collect();
    let big = frame(
        W_MAC,
        "198.51.100.10",
        "203.0.113.100",
        17,
        &udp_dgram(7, 9000, &payload),
        false,
    );
    let mut wb = VecBuf::with_room(&big, 128, 4096 + 128);
    let mut io = RecordingIo {
        budget: 8,
        ..Default::default()
    };
    let c = CoreCounters::default();
    w.handle(
        std::mem::replace(&mut wb, VecBuf::from_slice(&[])),
        0,
        1,
        &c,
        &mut io,
    );
    assert_eq!(io.forwarded.len(), 3, "{:?}", io.dropped);
    let mut to_b = Vec::new();
    for (_, o) in io.forwarded {
        let mut gio = RecordingIo {
            budget: 8,
            ..Default::default()
        };
        let f = via_internet(o, R_PUB_MAC);
        // The gateway's reassembly buffer must hold the whole outer datagram.
        r.handle(VecBuf::with_room(&f, 128, 4096 + 128), 0, 2, &c, &mut gio);
        assert!(gio.dropped.is_empty(), "{:?}", gio.dropped);
        to_b.extend(gio.forwarded);
    }
    assert_eq!(
        to_b.len(),
        3,
        "3028-byte inner datagram in three fragments to B"
    );
    let mut data = vec![0u8; 3008];
    for (port, f) in &to_b {
        assert_eq!(*port, 1);
        let p = ipv4::Packet::new_checked(&f[14..]).unwrap();
        assert!(p.verify_checksum() && usize::from(p.total_len()) <= 1500);
        assert_eq!((p.src(), p.dst()), (ip("198.51.100.10"), ip("10.0.0.2")));
        let off = usize::from(p.frag_offset());
        data[off..off + p.payload().len()].copy_from_slice(p.payload());
    }
    assert_eq!(
        &data[8..],
        &payload[..],
        "B reassembles the original payload"
    );
}

/// A responder's own fragmented UDP datagram (NAT44): reassembled on the private side,
/// translated (ports live only in the first fragment), fragmented again to the public
/// MTU (RFC 4787: a NAT must handle fragments).
#[test]
fn outbound_nat44_translates_fragmented_datagrams() {
    let mut r = gateway();
    let payload: Vec<u8> = (0..2500u32).map(|i| (i * 3) as u8).collect();
    let big = frame(
        R_PRIV_MAC,
        "10.0.0.2",
        "198.51.100.99",
        17,
        &udp_dgram(5353, 53, &payload),
        false,
    );
    let mut frags = Vec::new();
    crate::pipeline::fragment::fragment(
        VecBuf::from_slice(&big),
        1500,
        || Some(VecBuf::from_slice(&[])),
        |f| frags.push(f.data().to_vec()),
    )
    .unwrap();
    assert_eq!(frags.len(), 2);
    let mut out = Vec::new();
    for f in &frags {
        let mut io = RecordingIo {
            budget: 8,
            ..Default::default()
        };
        let c = CoreCounters::default();
        r.handle(VecBuf::with_room(f, 128, 4096 + 128), 1, 1, &c, &mut io);
        assert!(io.dropped.is_empty(), "{:?}", io.dropped);
        out.extend(io.forwarded);
    }
    assert_eq!(out.len(), 2, "two fragments leave the public port");
    let mut data = vec![0u8; 2508];
    for (port, f) in &out {
        assert_eq!(*port, 0);
        let p = ipv4::Packet::new_checked(&f[14..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!((p.src(), p.dst()), (ip("192.0.2.2"), ip("198.51.100.99")));
        let off = usize::from(p.frag_offset());
        data[off..off + p.payload().len()].copy_from_slice(p.payload());
    }
    let u = udp::Packet::new_checked(&data[..]).unwrap();
    assert!((20000..=20009).contains(&u.src_port()));
    assert!(
        u.verify_checksum_v4(ip("192.0.2.2"), ip("198.51.100.99")),
        "UDP checksum over the whole datagram"
    );
    assert_eq!(u.payload(), &payload[..]);
}

/// Burst mode (decision 0009): tags computed together at the end of the burst by the
/// burst engine, one call per gateway key, give exactly the bytes of per-packet mode.
#[test]
fn burst_tagging_matches_per_packet_tagging() {
    use crate::auth::{BurstMac, Key, PortableMac};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    struct Counting(Arc<AtomicUsize>, Arc<AtomicUsize>);
    impl BurstMac for Counting {
        fn tag_burst(&mut self, key: &Key, msgs: &[&[u8]], tags: &mut [[u8; 16]]) -> bool {
            self.0.fetch_add(1, Ordering::Relaxed);
            self.1.fetch_add(msgs.len(), Ordering::Relaxed);
            PortableMac.tag_burst(key, msgs, tags)
        }
    }
    let (calls, msgs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (mut per_packet, mut burst) = (waypoint(), waypoint());
    burst.set_burst_mac(Box::new(Counting(Arc::clone(&calls), Arc::clone(&msgs))));
    for w in [&mut per_packet, &mut burst] {
        bind(w, "198.51.100.10", "203.0.113.100", Mode::Plain).unwrap();
        bind(w, "198.51.100.11", "203.0.113.101", Mode::MultiHoming).unwrap();
    }
    let frames: Vec<Vec<u8>> = (0..20u16)
        .map(|i| {
            let a = if i % 2 == 0 {
                "198.51.100.10"
            } else {
                "198.51.100.11"
            };
            let wp = if i % 2 == 0 {
                "203.0.113.100"
            } else {
                "203.0.113.101"
            };
            frame(
                W_MAC,
                a,
                wp,
                17,
                &udp_dgram(1000 + i, 53, &vec![i as u8; 10 + 90 * usize::from(i)]),
                false,
            )
        })
        .collect();
    let c = CoreCounters::default();
    let mut io1 = RecordingIo {
        budget: 64,
        ..Default::default()
    };
    let mut io2 = RecordingIo {
        budget: 64,
        ..Default::default()
    };
    for f in &frames {
        per_packet.handle(VecBuf::from_slice(f), 0, 1, &c, &mut io1);
        burst.handle(VecBuf::from_slice(f), 0, 1, &c, &mut io2);
    }
    assert!(
        io2.forwarded.is_empty(),
        "nothing leaves before the end of the burst"
    );
    burst.end_burst(1, &c, &mut io2);
    assert_eq!(
        calls.load(Ordering::Relaxed),
        1,
        "one call for the one gateway key"
    );
    assert_eq!(msgs.load(Ordering::Relaxed), 20);
    assert_eq!(io1.forwarded, io2.forwarded, "identical frames, in order");
    assert!(io1.forwarded.len() >= 20);
    // The gateway accepts what the burst path produced.
    let mut r = gateway();
    for (_, f) in &io2.forwarded {
        let (rio, _) = run(&mut r, 0, &via_internet(f.clone(), R_PUB_MAC), 2);
        assert!(rio.dropped.is_empty(), "{:?}", rio.dropped);
    }
}

/// The gateway verifies a whole burst of tunnel packets with one engine call per key;
/// a forged packet in the middle is dropped, the others are delivered as per packet.
#[test]
fn burst_verification_drops_forgeries_and_delivers_the_rest() {
    use crate::auth::PortableMac;
    let mut w = waypoint();
    bind(&mut w, "198.51.100.10", "203.0.113.100", Mode::Plain).unwrap();
    let mut tunnelled = Vec::new();
    for i in 0..12u16 {
        let f = frame(
            W_MAC,
            "198.51.100.10",
            "203.0.113.100",
            17,
            &udp_dgram(2000 + i, 53, b"q"),
            false,
        );
        let (io, _) = run(&mut w, 0, &f, 1);
        tunnelled.push(via_internet(io.forwarded[0].1.clone(), R_PUB_MAC));
    }
    let n = tunnelled[5].len();
    tunnelled[5][n - 1] ^= 0x40; // forged payload
    let (mut per_packet, mut burst) = (gateway(), gateway());
    burst.set_burst_mac(Box::new(PortableMac));
    let c = CoreCounters::default();
    let mut io1 = RecordingIo {
        budget: 8,
        ..Default::default()
    };
    let mut io2 = RecordingIo {
        budget: 8,
        ..Default::default()
    };
    for f in &tunnelled {
        per_packet.handle(VecBuf::from_slice(f), 0, 2, &c, &mut io1);
        burst.handle(VecBuf::from_slice(f), 0, 2, &c, &mut io2);
    }
    assert!(
        io2.forwarded.is_empty() && io2.dropped.is_empty(),
        "held until the burst ends"
    );
    burst.end_burst(2, &c, &mut io2);
    assert_eq!(io2.dropped, vec![DropReason::AuthBadTag]);
    assert_eq!(io1.dropped, io2.dropped);
    assert_eq!(io1.forwarded, io2.forwarded);
    assert_eq!(io2.forwarded.len(), 11);
    assert_eq!(burst.flow_count(), 11, "no state for the forgery");
}

/// §5.3: the gateway's public address changes at run time (a new DHCP lease). Tunnel
/// packets to the new address are delivered; those to the old one no longer are.
#[test]
fn a_new_public_address_takes_over_tunnel_packets() {
    let mut wc = waypoint_config();
    wc.gateways.push(GatewayKeys {
        address: ip("192.0.2.3"),
        keys: keyring(),
    });
    let mut w = Waypoint::<VecBuf>::new(&wc).unwrap();
    let mut r = gateway();
    let tunnelled = |w: &mut Waypoint, a: &str, wp: &str, gw: &str| {
        <Waypoint as Role<VecBuf>>::apply(
            w,
            &Command::AddBinding(Binding {
                initiator: ip(a),
                waypoint: ip(wp),
                gateway: ip(gw),
                responder: ip("10.0.0.2"),
                mode: Mode::Plain,
                pinned: false,
            }),
            0,
        )
        .unwrap();
        let syn = frame(
            W_MAC,
            a,
            wp,
            6,
            &tcp_seg(40000, 80, tcp::flags::SYN, &[]),
            true,
        );
        let (io, _) = run(w, 0, &syn, 1);
        assert_eq!(io.forwarded.len(), 1, "{:?}", io.dropped);
        via_internet(io.forwarded[0].1.clone(), R_PUB_MAC)
    };
    let to_old = tunnelled(&mut w, "198.51.100.10", "203.0.113.100", "192.0.2.2");
    let to_new = tunnelled(&mut w, "198.51.100.11", "203.0.113.101", "192.0.2.3");
    // Before: the old address takes tunnel packets, the new one is not ours.
    let mut before = gateway();
    let (io, _) = run(&mut before, 0, &to_old, 2);
    assert_eq!(io.forwarded.first().map(|f| f.0), Some(1));
    <Gateway<VecBuf> as Role<VecBuf>>::apply(
        &mut r,
        &Command::SetAddress {
            port: 0,
            addr: "192.0.2.3/24".parse().unwrap(),
        },
        0,
    )
    .unwrap();
    let (io, _) = run(&mut r, 0, &to_new, 2);
    assert_eq!(io.forwarded.len(), 1, "{:?}", io.dropped);
    let (port, inner) = &io.forwarded[0];
    assert_eq!(*port, 1, "delivered to B");
    assert_eq!(parse(inner).0, ip("198.51.100.11"));
    let (io, _) = run(&mut r, 0, &to_old, 3);
    assert!(
        io.forwarded.iter().all(|(p, _)| *p != 1),
        "nothing reaches B through the old address"
    );
    assert_eq!(r.flow_count(), 1);
    // B's reply leaves from the waypoint address, as before.
    let synack = frame(
        R_PRIV_MAC,
        "10.0.0.2",
        "198.51.100.11",
        6,
        &tcp_seg(80, 40000, tcp::flags::SYN | tcp::flags::ACK, &[]),
        true,
    );
    let (io, _) = run(&mut r, 1, &synack, 4);
    assert_eq!(parse(&io.forwarded[0].1).0, ip("203.0.113.101"));
    // Outbound NAT44 now uses the new address.
    let out = frame(
        R_PRIV_MAC,
        "10.0.0.2",
        "198.18.0.1",
        17,
        &udp_dgram(5353, 53, b"q"),
        false,
    );
    let (io, _) = run(&mut r, 1, &out, 5);
    assert_eq!(parse(&io.forwarded[0].1).0, ip("192.0.2.3"));
}
