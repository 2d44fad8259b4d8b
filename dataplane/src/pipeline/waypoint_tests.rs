//! Tests of the waypoint role (AVES paper §3.2, §3.3.1, §5.2), driven through
//! [`Role::handle`] with a [`RecordingIo`] and a virtual clock.
//!
//! The topology: port 0 faces the initiators (interface 198.51.100.1/24, waypoint pool
//! 198.51.100.100–109, initiators A and A2 as static neighbours); port 1 faces the
//! gateways (interface 192.0.2.254/24, gateway R a static neighbour, gateway R2 known by
//! key but not yet resolved). Both ports have a 1500-byte MTU. What the waypoint emits to
//! R is opened with R's own [`Keyring`] through [`tunnel::decapsulate`], and the inner
//! datagram is compared byte for byte with the original whose destination was rewritten
//! and whose checksums were recomputed from scratch here.
//!
//! Invariant of every test: each input buffer ends in the `Io` exactly once (forwarded,
//! parked for ARP or dropped), or, when fragmented, once per fragment.

use super::*;
use crate::auth::{Algorithm, Key};
use crate::buf::VecBuf;
use crate::command::{Route, WaitSpec};
use crate::pipeline::flow::{MINUTE_NS, SECOND_NS};
use crate::pipeline::router::PortConfig;
use crate::pipeline::tunnel::{Decapsulated, AVES_UDP_PORT, OUTER_TTL};
use crate::pipeline::RecordingIo;
use crate::wire::checksum;
use crate::wire::icmpv4::Icmpv4Repr;
use crate::wire::{arp, udp};
use proptest::prelude::*;

/// Port 0 (initiators).
const MAC0: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
/// Port 1 (gateways).
const MAC1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
const HOST_A: MacAddr = MacAddr([0x02, 0, 0, 0, 1, 0x0a]);
const HOST_A2: MacAddr = MacAddr([0x02, 0, 0, 0, 1, 0x0c]);
const HOST_R: MacAddr = MacAddr([0x02, 0, 0, 0, 1, 0x0b]);

/// Port 0's interface address.
const IF0: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const A2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 8);
/// Waypoint addresses (in the pool of port 0).
const W: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 100);
const W2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 101);
/// Just past the pool.
const NOT_POOL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 110);
/// Gateways.
const R: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const R2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// A gateway with an entry but no key.
const R_NOKEY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);
/// Responders (private addresses behind the gateways).
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const B2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 6);

const KEY_ID: u8 = 7;

fn gw_key() -> Key {
    Key::new(KEY_ID, Algorithm::HmacMd5, b"gateway R secret, 24 B!!").unwrap()
}

/// R's keyring, as the gateway holds it.
fn gw_keys() -> Keyring {
    Keyring::new(gw_key())
}

fn cfg() -> WaypointConfig {
    WaypointConfig {
        router: RouterConfig {
            ports: vec![
                PortConfig {
                    mac: MAC0,
                    addrs: vec!["198.51.100.1/24".parse().unwrap()],
                    pools: vec!["198.51.100.100-198.51.100.109".parse().unwrap()],
                    mtu: 1500,
                },
                PortConfig {
                    mac: MAC1,
                    addrs: vec!["192.0.2.254/24".parse().unwrap()],
                    pools: vec![],
                    mtu: 1500,
                },
            ],
            routes: vec![Route {
                prefix: "0.0.0.0/0".parse().unwrap(),
                via: Some(Ipv4Addr::new(192, 0, 2, 253)),
                port: 1,
            }],
            neighbours: vec![(0, A, HOST_A), (0, A2, HOST_A2), (1, R, HOST_R)],
            route_capacity: 16,
            neighbour_capacity: 16,
            neighbour_ttl_ns: 60 * SECOND_NS,
        },
        gateways: vec![
            GatewayKeys {
                address: R,
                keys: gw_keys(),
            },
            GatewayKeys {
                address: R2,
                keys: Keyring::new(
                    Key::new(9, Algorithm::HmacSha256_128, b"gateway R2 secret 24 B!!").unwrap(),
                ),
            },
            GatewayKeys {
                address: R_NOKEY,
                keys: Keyring::default(),
            },
        ],
        bindings: vec![],
        binding_capacity: 64,
        connection_capacity: 64,
        tunnel_port: AVES_UDP_PORT,
        headers_only: false,
        timeouts: Timeouts::aves(),
        seed: 0x0123_4567_89ab_cdef,
        delayed: DelayedTimers::paper(),
        wait_capacity: 16,
        reject_capacity: 64,
    }
}

fn waypoint() -> Waypoint {
    Waypoint::<VecBuf>::new(&cfg()).unwrap()
}

fn binding(initiator: Ipv4Addr, waypoint: Ipv4Addr, responder: Ipv4Addr) -> Binding {
    Binding {
        initiator,
        waypoint,
        gateway: R,
        responder,
        mode: Mode::Plain,
        pinned: false,
    }
}

fn apply(w: &mut Waypoint, cmd: &Command, now: u64) -> Result<(), CommandError> {
    Role::<VecBuf>::apply(w, cmd, now)
}

fn bind(w: &mut Waypoint, b: Binding, now: u64) {
    apply(w, &Command::AddBinding(b), now).unwrap();
}

/// Runs the timers at `now`, a few times: each call sweeps a bounded part of the
/// tables (64 slots), as the engine's once-a-millisecond calls would.
fn tick(w: &mut Waypoint, now: u64) {
    let c = CoreCounters::default();
    let mut io = RecordingIo::default();
    for _ in 0..4 {
        Role::<VecBuf>::tick(w, now, &c, &mut io);
    }
    assert_eq!(
        io.forwarded.len() + io.resolving.len() + io.dropped.len(),
        0
    );
}

/// Hands `frame` (received on port 0) to the waypoint at `now`; the Io may hand out
/// four buffers (for fragments).
fn run(w: &mut Waypoint, frame: &[u8], now: u64) -> (RecordingIo, CoreCounters) {
    let c = CoreCounters::default();
    let mut io = RecordingIo {
        budget: 4,
        ..Default::default()
    };
    w.handle(VecBuf::from_slice(frame), 0, now, &c, &mut io);
    (io, c)
}

/// An IPv4 datagram (no options, TTL 64, ident 0x4242).
fn datagram(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, df: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 20 + payload.len()];
    ipv4::Ipv4Repr {
        src,
        dst,
        protocol: proto,
        payload_len: payload.len() as u16,
        ttl: 64,
        dscp_ecn: 0,
        ident: 0x4242,
        dont_frag: df,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut v[..]));
    v[20..].copy_from_slice(payload);
    v
}

/// `ip` in an Ethernet frame from `HOST_A` to port 0.
fn frame(ip: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; ETH];
    let mut f = ethernet::Frame::new_unchecked(&mut v[..]);
    f.set_dst(MAC0);
    f.set_src(HOST_A);
    f.set_ethertype(ethernet::ethertype::IPV4);
    v.extend_from_slice(ip);
    v
}

/// A TCP segment (checksum filled for `src`→`dst`).
fn tcp_seg(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let repr = tcp::TcpRepr {
        src_port: sport,
        dst_port: dport,
        seq_number: 0x1000_0000,
        ack_number: if flags & tcp::flags::ACK != 0 {
            0x2000_0001
        } else {
            0
        },
        flags,
        window: 64240,
        urgent: 0,
        max_seg_size: (flags & tcp::flags::SYN != 0).then_some(1460),
    };
    let mut v = vec![0u8; repr.buffer_len() + payload.len()];
    repr.emit(&mut tcp::Packet::new_unchecked(&mut v[..]));
    let h = repr.buffer_len();
    v[h..].copy_from_slice(payload);
    tcp::Packet::new_unchecked(&mut v[..]).fill_checksum_v4(src, dst);
    v
}

/// A TCP datagram from A to W (DF set, as TCP stacks do).
fn tcp_to(dst: Ipv4Addr, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    datagram(
        A,
        dst,
        ipv4::protocol::TCP,
        true,
        &tcp_seg(A, dst, sport, dport, flags, &[]),
    )
}

/// A UDP datagram (checksum filled).
fn udp_dgram(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; udp::HEADER_LEN + payload.len()];
    udp::UdpRepr {
        src_port: sport,
        dst_port: dport,
    }
    .emit(
        &mut udp::Packet::new_unchecked(&mut v[..]),
        payload.len() as u16,
    );
    v[udp::HEADER_LEN..].copy_from_slice(payload);
    udp::Packet::new_unchecked(&mut v[..]).fill_checksum_v4(src, dst);
    v
}

/// A UDP datagram from A to `dst`, `len` bytes in all (IP header included).
fn udp_to(dst: Ipv4Addr, df: bool, len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len - 28).map(|i| (i * 7) as u8).collect();
    datagram(
        A,
        dst,
        ipv4::protocol::UDP,
        df,
        &udp_dgram(A, dst, 40000, 53, &payload),
    )
}

fn echo_request(ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    let r = Icmpv4Repr::EchoRequest {
        ident,
        seq_no,
        data,
    };
    let mut v = vec![0u8; r.buffer_len()];
    r.emit(&mut icmpv4::Packet::new_unchecked(&mut v[..]));
    v
}

fn ping_to(dst: Ipv4Addr) -> Vec<u8> {
    datagram(
        A,
        dst,
        ipv4::protocol::ICMP,
        false,
        &echo_request(0x77, 1, b"abcdefgh"),
    )
}

/// True when the TCP/UDP/ICMP checksum of the datagram `ip`, recomputed from scratch
/// over the pseudo-header (RFC 793 §3.1, RFC 768) and the whole segment, verifies.
fn l4_checksum_verifies(ip: &[u8]) -> bool {
    let p = ipv4::Packet::new_checked(ip).unwrap();
    let l4 = p.payload();
    match p.protocol() {
        ipv4::protocol::ICMP => checksum::fold(checksum::sum(0, l4)) == 0xffff,
        proto @ (ipv4::protocol::TCP | ipv4::protocol::UDP) => {
            let acc = checksum::pseudo_v4(p.src(), p.dst(), proto, l4.len() as u16);
            checksum::fold(checksum::sum(acc, l4)) == 0xffff
        }
        _ => true,
    }
}

/// What the inner datagram must be: `orig` with its destination set to `to` and the
/// IPv4 and TCP/UDP checksums computed afresh (not incrementally).
fn translated(orig: &[u8], to: Ipv4Addr) -> Vec<u8> {
    let mut v = orig.to_vec();
    let mut p = ipv4::Packet::new_unchecked(&mut v[..]);
    p.set_dst(to);
    p.fill_checksum();
    let (src, proto) = (p.src(), p.protocol());
    let off = match proto {
        ipv4::protocol::TCP => 16,
        ipv4::protocol::UDP => 6,
        _ => return v,
    };
    let l4 = p.payload_mut();
    l4[off..off + 2].copy_from_slice(&[0, 0]);
    let acc = checksum::pseudo_v4(src, to, proto, l4.len() as u16);
    let mut c = !checksum::fold(checksum::sum(acc, l4));
    if proto == ipv4::protocol::UDP && c == 0 {
        c = 0xffff;
    }
    l4[off..off + 2].copy_from_slice(&c.to_be_bytes());
    v
}

/// Checks that `io` holds exactly one frame, forwarded on port 1 to R's MAC, an
/// authentic tunnel packet W→R; returns what decapsulation says and the inner datagram.
fn tunnelled(io: &RecordingIo) -> (Decapsulated, Vec<u8>) {
    assert!(io.dropped.is_empty(), "dropped: {:?}", io.dropped);
    assert!(io.resolving.is_empty());
    assert_eq!(io.forwarded.len(), 1);
    let (port, f) = &io.forwarded[0];
    assert_eq!(*port, 1);
    open(f)
}

/// Checks the outer headers of the tunnel frame `f` and decapsulates it with R's keys.
fn open(f: &[u8]) -> (Decapsulated, Vec<u8>) {
    let eth = ethernet::Frame::new_checked(f).unwrap();
    assert_eq!((eth.src(), eth.dst()), (MAC1, HOST_R));
    assert_eq!(eth.ethertype(), ethernet::ethertype::IPV4);
    let outer = ipv4::Packet::new_checked(&f[ETH..]).unwrap();
    assert!(outer.verify_checksum());
    assert_eq!((outer.src(), outer.dst()), (W, R));
    assert_eq!(outer.protocol(), ipv4::protocol::UDP);
    assert_eq!(outer.ttl(), OUTER_TTL);
    assert_eq!(usize::from(outer.total_len()), f.len() - ETH);
    let u = udp::Packet::new_checked(outer.payload()).unwrap();
    assert_eq!(u.dst_port(), AVES_UDP_PORT);
    let mut b = VecBuf::from_slice(f);
    let d = tunnel::decapsulate(&mut b, &gw_keys(), AVES_UDP_PORT).unwrap();
    (d, b.data()[ETH..].to_vec())
}

/// Checks the inner datagram against the original sent to W.
fn check_inner(inner: &[u8], orig: &[u8]) {
    let p = ipv4::Packet::new_checked(inner).unwrap();
    assert!(p.verify_checksum(), "inner IPv4 header checksum");
    assert_eq!((p.src(), p.dst()), (A, B));
    assert_eq!(p.ttl(), 64, "the inner TTL is not decremented");
    assert!(
        l4_checksum_verifies(inner),
        "inner L4 checksum from scratch"
    );
    assert_eq!(inner, &translated(orig, B)[..]);
}

/// Checks that `io` holds one ICMP error (from IF0 to A, on port 0 to A's MAC) of
/// `code`, quoting `orig`; returns its next-hop MTU field.
fn icmp_error_to_a(io: &RecordingIo, code: u8, orig: &[u8]) -> u16 {
    assert!(io.dropped.is_empty() && io.resolving.is_empty());
    assert_eq!(io.forwarded.len(), 1);
    let (port, f) = &io.forwarded[0];
    assert_eq!(*port, 0);
    let eth = ethernet::Frame::new_checked(&f[..]).unwrap();
    assert_eq!((eth.src(), eth.dst()), (MAC0, HOST_A));
    let p = ipv4::Packet::new_checked(&f[ETH..]).unwrap();
    assert!(p.verify_checksum());
    assert_eq!((p.src(), p.dst()), (IF0, A));
    assert_eq!(p.protocol(), ipv4::protocol::ICMP);
    let m = icmpv4::Packet::new_checked(p.payload()).unwrap();
    assert!(m.verify_checksum());
    assert_eq!(
        (m.msg_type(), m.code()),
        (icmpv4::msg::DST_UNREACHABLE, code)
    );
    // RFC 1812 §4.3.2.3: as much of the datagram as fits 576 bytes.
    let quote = orig.len().min(576 - 28);
    assert_eq!(m.data(), &orig[..quote]);
    m.next_hop_mtu()
}

// ---- A bound initiator's packets are translated, encapsulated and signed (§3.2).

#[test]
fn bound_tcp_syn_is_tunnelled_to_the_gateway() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    let syn = tcp_to(W, 40001, 443, tcp::flags::SYN);
    let (io, c) = run(&mut w, &frame(&syn), SECOND_NS);
    let (d, inner) = tunnelled(&io);
    assert_eq!(
        d,
        Decapsulated {
            outer_src: W,
            outer_dst: R,
            flags: 0,
            key_id: KEY_ID
        }
    );
    check_inner(&inner, &syn);
    // The outer header: DF copied from the inner one, the core's first identification.
    let outer = ipv4::Packet::new_checked(&io.forwarded[0].1[ETH..]).unwrap();
    assert!(outer.dont_frag());
    assert_eq!(outer.ident(), 1);
    assert_eq!(usize::from(outer.total_len()), syn.len() + OVERHEAD);
    assert_eq!(c.drops.iter().map(|d| d.get()).sum::<u64>(), 0);
    assert_eq!(w.binding(A, W, SECOND_NS), Some(B));
}

#[test]
fn bound_udp_and_icmp_echo_are_tunnelled_to_the_gateway() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    for orig in [udp_to(W, false, 100), ping_to(W)] {
        let (io, _) = run(&mut w, &frame(&orig), SECOND_NS);
        let (d, inner) = tunnelled(&io);
        assert_eq!((d.outer_src, d.outer_dst, d.flags), (W, R, 0));
        check_inner(&inner, &orig);
    }
    // A UDP datagram without a checksum keeps none (RFC 768).
    let mut orig = udp_to(W, false, 60);
    orig[26..28].copy_from_slice(&[0, 0]);
    let (io, _) = run(&mut w, &frame(&orig), SECOND_NS);
    let (_, inner) = tunnelled(&io);
    assert_eq!(&inner[26..28], &[0, 0]);
    let mut want = orig.clone();
    let mut p = ipv4::Packet::new_unchecked(&mut want[..]);
    p.set_dst(B);
    p.fill_checksum();
    assert_eq!(inner, want);
}

#[test]
fn ethernet_padding_is_not_tunnelled() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    let syn = tcp_to(W, 40001, 443, tcp::flags::SYN);
    let mut f = frame(&syn);
    f.extend_from_slice(&[0xee; 6]);
    let (io, _) = run(&mut w, &f, 0);
    let (_, inner) = tunnelled(&io);
    check_inner(&inner, &syn);
    assert_eq!(io.forwarded[0].1.len(), ETH + OVERHEAD + syn.len());
}

#[test]
fn flags_say_multihoming_and_headers_only() {
    for (headers_only, mode, want) in [
        (false, Mode::Plain, 0),
        (false, Mode::MultiHoming, aves::FLAG_M),
        (true, Mode::Plain, aves::FLAG_H),
        (true, Mode::MultiHoming, aves::FLAG_H | aves::FLAG_M),
    ] {
        let mut c = cfg();
        c.headers_only = headers_only;
        let mut w = Waypoint::<VecBuf>::new(&c).unwrap();
        bind(
            &mut w,
            Binding {
                mode,
                ..binding(A, W, B)
            },
            0,
        );
        let orig = udp_to(W, false, 200);
        let (io, _) = run(&mut w, &frame(&orig), 0);
        let (d, inner) = tunnelled(&io);
        assert_eq!(d.flags, want, "headers_only {headers_only} {mode:?}");
        check_inner(&inner, &orig);
        // The AVES header on the wire carries them too.
        let aves_at = ETH + 20 + 8;
        let h = aves::Header::new_checked(&io.forwarded[0].1[aves_at..]).unwrap();
        assert_eq!(
            (h.headers_only(), h.multihoming()),
            (headers_only, mode == Mode::MultiHoming)
        );
    }
}

#[test]
fn unresolved_gateway_parks_the_tunnel_packet_for_arp() {
    let mut w = waypoint();
    bind(
        &mut w,
        Binding {
            gateway: R2,
            ..binding(A, W, B)
        },
        0,
    );
    let orig = ping_to(W);
    let (io, _) = run(&mut w, &frame(&orig), 0);
    assert!(io.forwarded.is_empty() && io.dropped.is_empty());
    assert_eq!(io.resolving.len(), 1);
    let (port, nh, f) = &io.resolving[0];
    assert_eq!((*port, *nh), (1, R2));
    let outer = ipv4::Packet::new_checked(&f[ETH..]).unwrap();
    assert_eq!((outer.src(), outer.dst()), (W, R2));
    // Signed with R2's key, which R's keyring does not hold.
    let mut b = VecBuf::from_slice(f);
    assert_eq!(
        tunnel::decapsulate(&mut b, &gw_keys(), AVES_UDP_PORT),
        Err(DropReason::AuthUnknownKey)
    );
}

#[test]
fn a_gateway_without_a_signing_key_drops() {
    let mut w = waypoint();
    bind(
        &mut w,
        Binding {
            gateway: R_NOKEY,
            ..binding(A, W, B)
        },
        0,
    );
    let (io, _) = run(&mut w, &frame(&ping_to(W)), 0);
    assert!(io.forwarded.is_empty() && io.resolving.is_empty());
    assert_eq!(io.dropped, vec![DropReason::NoGatewayKey]);
}

#[test]
fn packets_for_other_macs_or_from_bad_sources_are_dropped() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    let mut f = frame(&ping_to(W));
    f[..6].copy_from_slice(&MAC1.0);
    assert_eq!(run(&mut w, &f, 0).0.dropped, vec![DropReason::NotForUs]);
    let bad = datagram(
        Ipv4Addr::new(127, 0, 0, 1),
        W,
        ipv4::protocol::ICMP,
        false,
        &echo_request(1, 1, b""),
    );
    assert_eq!(
        run(&mut w, &frame(&bad), 0).0.dropped,
        vec![DropReason::Ipv4BadSource]
    );
    // A bad header checksum is the router's to count.
    let mut f = frame(&ping_to(W));
    f[ETH + 10] ^= 0xff;
    assert_eq!(run(&mut w, &f, 0).0.dropped, vec![DropReason::Ipv4Checksum]);
}

// ---- The admission rule (§3.3.1) and the binding commands.

#[test]
fn one_responder_per_initiator_and_waypoint_address() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    // The same binding again is a refresh.
    assert_eq!(
        apply(&mut w, &Command::AddBinding(binding(A, W, B)), 1),
        Ok(())
    );
    // Another responder, or the same responder through another gateway: refused.
    assert_eq!(
        apply(&mut w, &Command::AddBinding(binding(A, W, B2)), 2),
        Err(CommandError::Conflict)
    );
    assert_eq!(
        apply(
            &mut w,
            &Command::AddBinding(Binding {
                gateway: R2,
                ..binding(A, W, B)
            }),
            2
        ),
        Err(CommandError::Conflict)
    );
    assert_eq!(w.binding(A, W, 3), Some(B));
    // Another initiator, or another waypoint address, may go elsewhere.
    assert_eq!(
        apply(&mut w, &Command::AddBinding(binding(A2, W, B2)), 3),
        Ok(())
    );
    assert_eq!(
        apply(&mut w, &Command::AddBinding(binding(A, W2, B2)), 3),
        Ok(())
    );
    assert_eq!(w.binding_count(), 3);
    assert_eq!(
        (w.binding(A2, W, 4), w.binding(A, W2, 4)),
        (Some(B2), Some(B2))
    );
    // The refresh may switch the mode: the next packet says M.
    bind(
        &mut w,
        Binding {
            mode: Mode::MultiHoming,
            ..binding(A, W, B)
        },
        4,
    );
    let (io, _) = run(&mut w, &frame(&ping_to(W)), 5);
    assert_eq!(tunnelled(&io).0.flags, aves::FLAG_M);
    // Once deleted, the pair is free for another responder.
    let del_if = |responder| Command::DelBinding {
        initiator: A,
        waypoint: W,
        responder: Some(responder),
    };
    assert_eq!(apply(&mut w, &del_if(B2), 6), Err(CommandError::NotFound));
    assert_eq!(
        w.binding(A, W, 6),
        Some(B),
        "bound to another responder: kept"
    );
    assert_eq!(apply(&mut w, &del_if(B), 6), Ok(()));
    assert_eq!(w.binding(A, W, 6), None);
    bind(&mut w, binding(A, W, B), 6);
    let del = Command::DelBinding {
        initiator: A,
        waypoint: W,
        responder: None,
    };
    assert_eq!(apply(&mut w, &del, 6), Ok(()));
    assert_eq!(apply(&mut w, &del, 6), Err(CommandError::NotFound));
    assert_eq!(w.binding(A, W, 6), None);
    assert_eq!(
        apply(&mut w, &Command::AddBinding(binding(A, W, B2)), 7),
        Ok(())
    );
    assert_eq!(w.binding(A, W, 7), Some(B2));
}

#[test]
fn bindings_need_a_known_gateway_and_a_pool_address() {
    let mut w = waypoint();
    let unknown_gw = Binding {
        gateway: Ipv4Addr::new(192, 0, 2, 99),
        ..binding(A, W, B)
    };
    assert_eq!(
        apply(&mut w, &Command::AddBinding(unknown_gw), 0),
        Err(CommandError::Invalid)
    );
    for wp in [IF0, NOT_POOL, Ipv4Addr::new(203, 0, 113, 100)] {
        assert_eq!(
            apply(&mut w, &Command::AddBinding(binding(A, wp, B)), 0),
            Err(CommandError::Invalid),
            "{wp}"
        );
    }
    assert_eq!(w.binding_count(), 0);
    // Router commands still reach the router.
    assert_eq!(
        apply(
            &mut w,
            &Command::AddNeighbour {
                port: 5,
                ip: R2,
                mac: HOST_R
            },
            0
        ),
        Err(CommandError::BadPort)
    );
    // And a configured binding with a bad gateway fails at start, saying which.
    let mut c = cfg();
    c.bindings = vec![unknown_gw];
    let e = Waypoint::<VecBuf>::new(&c).unwrap_err();
    assert!(e.0.contains("192.0.2.99"), "{}", e.0);
}

#[test]
fn binding_table_capacity_is_enforced() {
    let mut c = cfg();
    c.binding_capacity = 2;
    let mut w = Waypoint::<VecBuf>::new(&c).unwrap();
    bind(&mut w, binding(A, W, B), 0);
    bind(&mut w, binding(A2, W, B), 0);
    assert_eq!(
        apply(&mut w, &Command::AddBinding(binding(A, W2, B)), 0),
        Err(CommandError::TableFull)
    );
}

// ---- No binding: new connections get "host unreachable" (§5.2), the rest is dropped.

#[test]
fn new_connections_without_a_binding_get_host_unreachable() {
    let mut w = waypoint();
    // A is bound on W2 only: W is still unbound for it.
    bind(&mut w, binding(A, W2, B), 0);
    for orig in [
        tcp_to(W, 40001, 443, tcp::flags::SYN),
        udp_to(W, false, 64),
        ping_to(W),
    ] {
        let (io, c) = run(&mut w, &frame(&orig), 0);
        assert_eq!(icmp_error_to_a(&io, icmpv4::unreach::HOST, &orig), 0);
        assert_eq!(c.drops_of(DropReason::NoBinding), 1);
        assert_eq!(c.events.icmp_sent.get(), 1);
    }
    // Another initiator's binding for W does not admit A.
    bind(&mut w, binding(A2, W, B), 0);
    let orig = udp_to(W, false, 64);
    let (io, _) = run(&mut w, &frame(&orig), 0);
    icmp_error_to_a(&io, icmpv4::unreach::HOST, &orig);
}

#[test]
fn other_packets_without_a_binding_are_dropped() {
    let mut w = waypoint();
    for flags in [
        tcp::flags::ACK,
        tcp::flags::SYN | tcp::flags::ACK,
        tcp::flags::FIN | tcp::flags::ACK,
        tcp::flags::RST,
        tcp::flags::PSH | tcp::flags::ACK,
    ] {
        let (io, c) = run(&mut w, &frame(&tcp_to(W, 40001, 443, flags)), 0);
        assert!(io.forwarded.is_empty() && io.resolving.is_empty());
        assert_eq!(io.dropped, vec![DropReason::NoBinding], "flags {flags:#x}");
        assert_eq!(c.events.icmp_sent.get(), 0);
    }
    // A non-first fragment does not start a connection either.
    let mut frag = udp_to(W, false, 64);
    {
        let mut p = ipv4::Packet::new_unchecked(&mut frag[..]);
        p.set_flags_frag(false, false, 64);
        p.fill_checksum();
    }
    assert_eq!(
        run(&mut w, &frame(&frag), 0).0.dropped,
        vec![DropReason::NoBinding]
    );
}

// ---- Path MTU discovery and fragmentation through the tunnel (§5.2).

#[test]
fn df_datagrams_too_big_for_the_tunnel_get_frag_needed_1452() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    for len in [1453, 1480, 1500] {
        let orig = udp_to(W, true, len);
        let (io, c) = run(&mut w, &frame(&orig), 0);
        assert_eq!(
            icmp_error_to_a(&io, icmpv4::unreach::FRAG_NEEDED, &orig),
            1452,
            "{len}"
        );
        assert_eq!(c.drops_of(DropReason::MtuExceeded), 1);
    }
    // 1452 bytes fit exactly: a 1500-byte outer datagram.
    let orig = udp_to(W, true, 1452);
    let (io, _) = run(&mut w, &frame(&orig), 0);
    let (_, inner) = tunnelled(&io);
    check_inner(&inner, &orig);
    assert_eq!(io.forwarded[0].1.len(), ETH + 1500);
}

#[test]
fn df_clear_datagrams_are_tunnelled_in_two_outer_fragments() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    let orig = udp_to(W, false, 1480);
    let (io, c) = run(&mut w, &frame(&orig), 0);
    assert!(io.dropped.is_empty() && io.resolving.is_empty());
    assert_eq!(io.allocated, 1);
    assert_eq!(io.forwarded.len(), 2);
    assert_eq!(c.events.fragments_made.get(), 2);

    // Reassemble (RFC 791 §3.2): payloads placed by offset, MF clear on the last.
    let mut parts = Vec::new();
    let mut ident = None;
    for (port, f) in &io.forwarded {
        assert_eq!(*port, 1);
        let eth = ethernet::Frame::new_checked(&f[..]).unwrap();
        assert_eq!((eth.src(), eth.dst()), (MAC1, HOST_R));
        let p = ipv4::Packet::new_checked(&f[ETH..]).unwrap();
        assert!(p.verify_checksum());
        assert!(usize::from(p.total_len()) <= 1500);
        assert_eq!((p.src(), p.dst()), (W, R));
        assert!(!p.dont_frag());
        assert_eq!(*ident.get_or_insert(p.ident()), p.ident());
        parts.push((
            usize::from(p.frag_offset()),
            p.more_frags(),
            p.payload().to_vec(),
            f[..ETH + 20].to_vec(),
        ));
    }
    parts.sort_by_key(|p| p.0);
    assert_eq!((parts[0].0, parts[0].1), (0, true));
    assert_eq!((parts[1].0, parts[1].1), (1480, false));
    assert_eq!(parts[0].2.len(), 1480);
    assert_eq!(parts[1].2.len(), 1480 + OVERHEAD - 20 - 1480);
    let mut whole = parts[0].3.clone();
    for (off, _, payload, _) in &parts {
        assert_eq!(whole.len(), ETH + 20 + off);
        whole.extend_from_slice(payload);
    }
    {
        let mut p = ipv4::Packet::new_unchecked(&mut whole[ETH..]);
        p.set_total_len((1480 + OVERHEAD) as u16);
        p.set_flags_frag(false, false, 0);
        p.fill_checksum();
    }
    // It is exactly what encapsulating the translated datagram gives...
    let mut want = VecBuf::from_slice(&frame(&translated(&orig, B)));
    tunnel::encapsulate(
        &mut want,
        &tunnel::Outer {
            src: W,
            dst: R,
            dst_port: AVES_UDP_PORT,
            ident: ident.unwrap(),
            flags: 0,
        },
        &gw_key(),
    )
    .unwrap();
    assert_eq!(&whole[ETH..], &want.data()[ETH..]);
    // ... and the gateway accepts it.
    let (d, inner) = open(&whole);
    assert_eq!(d.outer_src, W);
    check_inner(&inner, &orig);
}

#[test]
fn fragmentation_without_buffers_counts_a_drop() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    let c = CoreCounters::default();
    let mut io = RecordingIo::default(); // budget 0
    let orig = udp_to(W, false, 1480);
    w.handle(VecBuf::from_slice(&frame(&orig)), 0, 0, &c, &mut io);
    assert!(io.forwarded.is_empty() && io.resolving.is_empty());
    // `fragment` consumed (freed) the buffer itself; the drop is counted directly.
    assert_eq!(c.drops_of(DropReason::NoMbuf), 1);
    assert_eq!(c.events.fragments_made.get(), 0);
}

// ---- TCP close tracking (§5.2).

/// The waypoint sees only the initiator→responder half of a connection (replies go
/// from the gateway straight to the initiator, §3.2), so a FIN exchange can never look
/// complete to it: [`TcpState`] needs the responder's FIN and its acknowledgement. Only
/// a RST from the initiator ends a connection early; a FIN-closed connection's binding
/// lives on until its timer runs out.
#[test]
fn fin_from_the_initiator_closes_the_binding_with_a_grace_for_the_last_ack() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    let f = tcp::flags::FIN;
    let a = tcp::flags::ACK;
    for flags in [tcp::flags::SYN, a, tcp::flags::PSH | a, f | a] {
        let orig = tcp_to(W, 40001, 443, flags);
        let (io, _) = run(&mut w, &frame(&orig), SECOND_NS);
        check_inner(&tunnelled(&io).1, &orig);
    }
    assert_eq!(
        w.binding(A, W, SECOND_NS),
        None,
        "gone at once for new connections"
    );
    // The initiator's last ACK still goes through during the grace period...
    let last = tcp_to(W, 40001, 443, a);
    let (io, _) = run(&mut w, &frame(&last), 2 * SECOND_NS);
    check_inner(&tunnelled(&io).1, &last);
    // ...but a new connection is refused (host unreachable) and the pair can be rebound.
    let (io, _) = run(
        &mut w,
        &frame(&tcp_to(W, 40002, 443, tcp::flags::SYN)),
        2 * SECOND_NS,
    );
    assert!(io.dropped.is_empty() && io.forwarded.len() == 1);
    bind(&mut w, binding(A, W, B2), 3 * SECOND_NS);
    assert_eq!(w.binding(A, W, 3 * SECOND_NS), Some(B2));
}

#[test]
fn rst_closing_the_last_connection_removes_the_binding() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    // Two connections on the binding.
    for sport in [40001, 40002] {
        let (io, _) = run(&mut w, &frame(&tcp_to(W, sport, 443, tcp::flags::SYN)), 0);
        tunnelled(&io);
    }
    // Closing one leaves the binding.
    let rst1 = tcp_to(W, 40001, 443, tcp::flags::RST | tcp::flags::ACK);
    let (io, _) = run(&mut w, &frame(&rst1), 1);
    check_inner(&tunnelled(&io).1, &rst1);
    assert_eq!(w.binding(A, W, 1), Some(B));
    // A RST on a connection the waypoint never saw open changes nothing.
    let stray = tcp_to(W, 40009, 443, tcp::flags::RST);
    tunnelled(&run(&mut w, &frame(&stray), 1).0);
    assert_eq!(w.binding(A, W, 1), Some(B));
    // Closing the last one: the RST still goes to B, then the binding is gone.
    let rst2 = tcp_to(W, 40002, 443, tcp::flags::RST);
    let (io, _) = run(&mut w, &frame(&rst2), 2);
    check_inner(&tunnelled(&io).1, &rst2);
    assert_eq!(w.binding(A, W, 2), None);
    // The entry itself goes after the grace for the last segments.
    tick(&mut w, 2 + CLOSING_GRACE_NS);
    assert_eq!(w.binding_count(), 0);
    // The next SYN needs a new binding.
    let syn = tcp_to(W, 40003, 443, tcp::flags::SYN);
    let (io, _) = run(&mut w, &frame(&syn), 3);
    icmp_error_to_a(&io, icmpv4::unreach::HOST, &syn);
}

#[test]
fn rst_does_not_remove_http_or_pinned_bindings() {
    // Port 80: browsers cache the DNS answer, so the binding stays for 20 min.
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    tunnelled(&run(&mut w, &frame(&tcp_to(W, 40001, 80, tcp::flags::SYN)), 0).0);
    tunnelled(&run(&mut w, &frame(&tcp_to(W, 40001, 80, tcp::flags::RST)), 0).0);
    assert_eq!(w.binding(A, W, 0), Some(B));
    // Once HTTP was seen, a later non-HTTP close keeps it too.
    tunnelled(&run(&mut w, &frame(&tcp_to(W, 40002, 443, tcp::flags::SYN)), 0).0);
    tunnelled(&run(&mut w, &frame(&tcp_to(W, 40002, 443, tcp::flags::RST)), 0).0);
    assert_eq!(w.binding(A, W, 0), Some(B));
    let end = 30 * MINUTE_NS;
    tick(&mut w, end - 1);
    assert_eq!(w.binding(A, W, end - 1), Some(B));
    tick(&mut w, end);
    assert_eq!(w.binding(A, W, end), None);

    // HTTP alone: 20 minutes.
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    tunnelled(&run(&mut w, &frame(&tcp_to(W, 40001, 80, tcp::flags::SYN)), 0).0);
    tunnelled(&run(&mut w, &frame(&tcp_to(W, 40001, 80, tcp::flags::RST)), 0).0);
    tick(&mut w, 20 * MINUTE_NS - 1);
    assert_eq!(w.binding(A, W, 20 * MINUTE_NS - 1), Some(B));
    tick(&mut w, 20 * MINUTE_NS);
    assert_eq!(w.binding(A, W, 20 * MINUTE_NS), None);

    // Pinned (configured) bindings survive a RST and every timer.
    let mut c = cfg();
    c.bindings = vec![Binding {
        pinned: true,
        ..binding(A, W, B)
    }];
    let mut w = Waypoint::<VecBuf>::new(&c).unwrap();
    tunnelled(&run(&mut w, &frame(&tcp_to(W, 40001, 443, tcp::flags::SYN)), 0).0);
    tunnelled(&run(&mut w, &frame(&tcp_to(W, 40001, 443, tcp::flags::RST)), 0).0);
    let late = 365 * 24 * 60 * MINUTE_NS;
    tick(&mut w, late);
    assert_eq!(w.binding(A, W, late), Some(B));
    assert_eq!(w.binding_count(), 1);
    // A pinned binding cannot be taken over either.
    assert_eq!(
        apply(&mut w, &Command::AddBinding(binding(A, W, B2)), late),
        Err(CommandError::Conflict)
    );
}

// ---- Timers (§5.2) on a virtual clock.

#[test]
fn a_ping_only_binding_expires_after_the_icmp_timeout() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    let t0 = SECOND_NS;
    tunnelled(&run(&mut w, &frame(&ping_to(W)), t0).0);
    let end = t0 + MINUTE_NS;
    tick(&mut w, end - 1);
    assert_eq!(w.binding(A, W, end - 1), Some(B));
    assert_eq!(w.binding_count(), 1);
    tick(&mut w, end);
    assert_eq!(w.binding(A, W, end), None);
    assert_eq!(w.binding_count(), 0, "tick swept it");
    // Expired: the next ping is a new connection without a binding.
    let orig = ping_to(W);
    let (io, _) = run(&mut w, &frame(&orig), end);
    icmp_error_to_a(&io, icmpv4::unreach::HOST, &orig);
}

#[test]
fn each_packet_restarts_the_timer_and_longer_protocols_win() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    // Pings every 50 s keep a 1-minute binding alive.
    let mut t = 0;
    for _ in 0..5 {
        t += 50 * SECOND_NS;
        tick(&mut w, t);
        tunnelled(&run(&mut w, &frame(&ping_to(W)), t).0);
    }
    // UDP: 15 minutes; a later ping does not shorten it.
    tunnelled(&run(&mut w, &frame(&udp_to(W, false, 64)), t).0);
    tunnelled(&run(&mut w, &frame(&ping_to(W)), t + 1).0);
    let end = t + 15 * MINUTE_NS;
    tick(&mut w, end - 1);
    assert_eq!(w.binding(A, W, end - 1), Some(B));
    tick(&mut w, end);
    assert_eq!(w.binding(A, W, end), None);
}

#[test]
fn a_refreshed_binding_keeps_its_longer_timer() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    // An open TCP connection: 30 minutes.
    tunnelled(&run(&mut w, &frame(&tcp_to(W, 40001, 443, tcp::flags::SYN)), 0).0);
    // The same binding again (a repeated SETUP) must not cut that to 15 minutes.
    bind(&mut w, binding(A, W, B), MINUTE_NS);
    let end = 30 * MINUTE_NS;
    tick(&mut w, end - 1);
    assert_eq!(w.binding(A, W, end - 1), Some(B));
    tick(&mut w, end);
    assert_eq!(w.binding(A, W, end), None);
    // A refresh of an idle binding extends it to 15 minutes from the refresh.
    bind(&mut w, binding(A, W, B), end);
    bind(&mut w, binding(A, W, B), end + 10 * MINUTE_NS);
    let end2 = end + 25 * MINUTE_NS;
    tick(&mut w, end2 - 1);
    assert_eq!(w.binding(A, W, end2 - 1), Some(B));
    tick(&mut w, end2);
    assert_eq!(w.binding(A, W, end2), None);
}

#[test]
fn an_unused_binding_waits_the_default_timeout() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    let other = Timeouts::aves().other;
    tick(&mut w, other - 1);
    assert_eq!(w.binding(A, W, other - 1), Some(B));
    tick(&mut w, other);
    assert_eq!(w.binding(A, W, other), None);
    assert_eq!(w.binding_count(), 0);
}

// ---- Everything else is the router's.

#[test]
fn the_interface_address_answers_ping() {
    let mut w = waypoint();
    let (io, c) = run(&mut w, &frame(&ping_to(IF0)), 0);
    assert!(io.dropped.is_empty() && io.resolving.is_empty());
    assert_eq!(io.forwarded.len(), 1);
    let (port, f) = &io.forwarded[0];
    assert_eq!(*port, 0);
    let eth = ethernet::Frame::new_checked(&f[..]).unwrap();
    assert_eq!((eth.src(), eth.dst()), (MAC0, HOST_A));
    let p = ipv4::Packet::new_checked(&f[ETH..]).unwrap();
    assert!(p.verify_checksum());
    assert_eq!((p.src(), p.dst()), (IF0, A));
    let m = icmpv4::Packet::new_checked(p.payload()).unwrap();
    assert_eq!(
        Icmpv4Repr::parse(&m).unwrap(),
        Icmpv4Repr::EchoReply {
            ident: 0x77,
            seq_no: 1,
            data: b"abcdefgh"
        }
    );
    assert_eq!(c.events.icmp_sent.get(), 1);
}

#[test]
fn arp_for_a_waypoint_address_is_answered() {
    let mut w = waypoint();
    let mut f = vec![0u8; 60];
    {
        let mut e = ethernet::Frame::new_unchecked(&mut f[..]);
        e.set_dst(MacAddr::BROADCAST);
        e.set_src(HOST_A);
        e.set_ethertype(ethernet::ethertype::ARP);
    }
    arp::ArpRepr {
        op: arp::op::REQUEST,
        sender_mac: HOST_A,
        sender_ip: A,
        target_mac: MacAddr::ZERO,
        target_ip: W,
    }
    .emit(&mut arp::Packet::new_unchecked(&mut f[ETH..ETH + 28]));
    let (io, _) = run(&mut w, &f, 0);
    assert_eq!(io.forwarded.len(), 1);
    let (port, reply) = &io.forwarded[0];
    assert_eq!(*port, 0);
    let a = arp::ArpRepr::parse(&arp::Packet::new_checked(&reply[ETH..]).unwrap()).unwrap();
    assert_eq!(a.op, arp::op::REPLY);
    assert_eq!((a.sender_mac, a.sender_ip), (MAC0, W));
    assert_eq!((a.target_mac, a.target_ip), (HOST_A, A));
}

#[test]
fn transit_traffic_is_routed() {
    let mut w = waypoint();
    let orig = udp_to(R, false, 64);
    let (io, _) = run(&mut w, &frame(&orig), 0);
    assert_eq!(io.forwarded.len(), 1);
    let (port, f) = &io.forwarded[0];
    assert_eq!(*port, 1);
    let p = ipv4::Packet::new_checked(&f[ETH..]).unwrap();
    assert_eq!((p.protocol(), p.ttl()), (ipv4::protocol::UDP, 63));
    assert_eq!(p.payload(), &orig[20..]);
}

// ---- No input panics, and every buffer ends in the Io.

/// A waypoint with pinned bindings (alive at any `now` but `u64::MAX`).
fn fuzz_waypoint() -> Waypoint {
    let mut c = cfg();
    c.bindings = vec![
        Binding {
            pinned: true,
            ..binding(A, W, B)
        },
        Binding {
            pinned: true,
            mode: Mode::MultiHoming,
            ..binding(A2, W, B2)
        },
    ];
    Waypoint::<VecBuf>::new(&c).unwrap()
}

/// Runs one frame and checks the accounting: `1 + allocated` buffers in the Io (each
/// fragment is one), none for an ARP reply the router learned from; every IPv4 frame
/// sent has a valid header checksum. Returns the Io.
fn check_accounting(
    w: &mut Waypoint,
    f: &[u8],
    port: u16,
    now: u64,
    arp: bool,
) -> Result<RecordingIo, TestCaseError> {
    let c = CoreCounters::default();
    let mut io = RecordingIo {
        budget: 4,
        ..Default::default()
    };
    w.handle(VecBuf::from_slice(f), port, now, &c, &mut io);
    let n = io.forwarded.len() + io.resolving.len() + io.dropped.len();
    if arp {
        prop_assert!(n <= 1);
    } else {
        prop_assert_eq!(n, 1 + io.allocated);
    }
    let sent = io
        .forwarded
        .iter()
        .map(|(_, f)| f)
        .chain(io.resolving.iter().map(|(_, _, f)| f));
    for f in sent {
        let e = ethernet::Frame::new_checked(&f[..]).unwrap();
        if e.ethertype() == ethernet::ethertype::IPV4 {
            prop_assert!(ipv4::Packet::new_checked(e.payload())
                .unwrap()
                .verify_checksum());
        }
    }
    Ok(io)
}

proptest! {
    #[test]
    fn random_frames_never_panic_and_every_buffer_ends_in_the_io(
        body in proptest::collection::vec(any::<u8>(), 0..1600),
        ethertype in prop_oneof![Just(0x0800u16), Just(0x0806u16), any::<u16>()],
        to_us in any::<bool>(),
        port in 0u16..3,
        now in any::<u64>(),
    ) {
        let mut w = fuzz_waypoint();
        let mut f = Vec::with_capacity(ETH + body.len());
        f.extend_from_slice(if to_us { &MAC0.0 } else { &MacAddr::BROADCAST.0 });
        f.extend_from_slice(&HOST_A.0);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(&body);
        check_accounting(&mut w, &f, port, now, ethertype == 0x0806)?;
    }

    #[test]
    fn random_datagrams_to_waypoint_addresses_are_tunnelled_intact(
        src in prop_oneof![Just(A), Just(A2), any::<[u8; 4]>().prop_map(Ipv4Addr::from)],
        dst in prop_oneof![Just(W), Just(W2), Just(IF0)],
        proto in prop_oneof![Just(1u8), Just(6u8), Just(17u8), any::<u8>()],
        df in any::<bool>(),
        frag in prop_oneof![Just((false, 0u16)), (any::<bool>(), 0u16..0x2000)],
        payload in proptest::collection::vec(any::<u8>(), 0..1500),
        padding in 0usize..20,
        now in 0u64..(u64::MAX / 2),
    ) {
        let mut w = fuzz_waypoint();
        let mut ip = datagram(src, dst, proto, df, &payload);
        {
            let mut p = ipv4::Packet::new_unchecked(&mut ip[..]);
            p.set_flags_frag(df, frag.0, frag.1);
            p.fill_checksum();
        }
        let mut f = frame(&ip);
        f.extend(std::iter::repeat_n(0u8, padding));
        let io = check_accounting(&mut w, &f, 0, now, false)?;
        // What went to R when only one frame did, is authentic, and carries `ip` with
        // the responder as destination.
        if let [(1, out)] = &io.forwarded[..] {
            if dst == W && (src == A || src == A2) {
                let (d, inner) = open(out);
                prop_assert_eq!(d.outer_src, W);
                let p = ipv4::Packet::new_checked(&inner[..]).unwrap();
                prop_assert!(p.verify_checksum());
                prop_assert_eq!(p.src(), src);
                prop_assert_eq!(p.dst(), if src == A { B } else { B2 });
                prop_assert_eq!(p.payload().len(), payload.len());
                // Apart from a TCP/UDP checksum (first fragments), the payload is intact.
                let mut a = p.payload().to_vec();
                let mut b = payload.clone();
                if frag.1 == 0 {
                    let off = match proto { 6 => 16, 17 => 6, _ => a.len() };
                    for v in [&mut a, &mut b] {
                        if let Some(c) = v.get_mut(off..off + 2) {
                            c.copy_from_slice(&[0, 0]);
                        }
                    }
                }
                prop_assert_eq!(a, b);
            }
        }
    }
}

#[test]
fn initiator_acking_the_responders_fin_closes_the_connection_and_the_binding() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    let (f, a) = (tcp::flags::FIN, tcp::flags::ACK);
    // SYN, ACK, data, FIN, then the final pure ACK of the responder's FIN.
    for flags in [tcp::flags::SYN, a, tcp::flags::PSH | a, f | a] {
        let orig = tcp_to(W, 40001, 443, flags);
        let (io, _) = run(&mut w, &frame(&orig), SECOND_NS);
        check_inner(&tunnelled(&io).1, &orig);
    }
    let last = tcp_to(W, 40001, 443, a);
    let (io, _) = run(&mut w, &frame(&last), SECOND_NS);
    check_inner(&tunnelled(&io).1, &last);
    assert_eq!(w.binding(A, W, SECOND_NS), None, "removed at once (§5.2)");
    // Port 80 is the exception: browsers cache the DNS answer.
    bind(&mut w, binding(A, W, B), 0);
    for flags in [tcp::flags::SYN, a, f | a, a] {
        tunnelled(&run(&mut w, &frame(&tcp_to(W, 40002, 80, flags)), SECOND_NS).0);
    }
    assert_eq!(w.binding(A, W, SECOND_NS), Some(B));
}

/// A TCP segment from A to `dst` with acknowledgement number `ack`.
fn tcp_ack_to(dst: Ipv4Addr, sport: u16, dport: u16, flags: u8, ack: u32) -> Vec<u8> {
    let mut d = tcp_to(dst, sport, dport, flags);
    d[20 + 8..20 + 12].copy_from_slice(&ack.to_be_bytes());
    tcp::Packet::new_unchecked(&mut d[20..]).fill_checksum_v4(A, dst);
    d
}

#[test]
fn responder_closing_first_is_detected_from_the_initiators_acks() {
    let mut w = waypoint();
    bind(&mut w, binding(A, W, B), 0);
    let (f, a) = (tcp::flags::FIN, tcp::flags::ACK);
    // SYN; ACK of the SYN/ACK (ack 1001); ACK of 500 bytes of data (1501); the pure ACK
    // of the responder's FIN (1502, +1); then the initiator's FIN ends the connection.
    tunnelled(
        &run(
            &mut w,
            &frame(&tcp_ack_to(W, 40001, 8000, tcp::flags::SYN, 0)),
            1,
        )
        .0,
    );
    for (flags, ack) in [(a, 1001), (a, 1501), (a, 1502)] {
        tunnelled(&run(&mut w, &frame(&tcp_ack_to(W, 40001, 8000, flags, ack)), 1).0);
        assert_eq!(w.binding(A, W, 1), Some(B), "still open after ack {ack}");
    }
    let fin = tcp_ack_to(W, 40001, 8000, f | a, 1502);
    let (io, _) = run(&mut w, &frame(&fin), 1);
    check_inner(&tunnelled(&io).1, &fin);
    assert_eq!(w.binding(A, W, 1), None, "removed at once (§5.2)");
}

// ---- Delayed binding (§3.3.2, Figure 6; §5.2; §6.2).

/// A TCP SYN from `src` to `dst`.
fn syn_from(src: Ipv4Addr, dst: Ipv4Addr, sport: u16) -> Vec<u8> {
    datagram(
        src,
        dst,
        ipv4::protocol::TCP,
        true,
        &tcp_seg(src, dst, sport, 80, tcp::flags::SYN, &[]),
    )
}

/// An ACK (not a new connection) from `src` to `dst`.
fn ack_from(src: Ipv4Addr, dst: Ipv4Addr, sport: u16) -> Vec<u8> {
    datagram(
        src,
        dst,
        ipv4::protocol::TCP,
        true,
        &tcp_seg(src, dst, sport, 80, tcp::flags::ACK, &[]),
    )
}

fn wait(waypoint: Ipv4Addr, sources: &str, responder: Ipv4Addr) -> Command {
    Command::BeginWait(WaitSpec {
        waypoint,
        sources: sources.parse().unwrap(),
        gateway: R,
        responder,
        mode: Mode::Plain,
        duration_ns: 2 * SECOND_NS,
    })
}

/// The drop reason counted for the one packet `run` handled, if any.
fn reason(c: &CoreCounters) -> Option<DropReason> {
    DropReason::ALL.into_iter().find(|r| c.drops_of(*r) > 0)
}

/// Runs `ip` and returns the responder it was tunnelled to (None: not tunnelled, and
/// the drop reason).
fn outcome(w: &mut Waypoint, ip: &[u8], now: u64) -> Result<Ipv4Addr, Option<DropReason>> {
    let (io, c) = run(w, &frame(ip), now);
    if io.forwarded.len() == 1 && io.forwarded[0].0 == 1 {
        // A tunnel packet from the waypoint address the datagram was sent to.
        let f = &io.forwarded[0].1;
        let outer = ipv4::Packet::new_checked(&f[ETH..]).unwrap();
        assert_eq!(
            outer.src(),
            ipv4::Packet::new_checked(ip).unwrap().dst(),
            "outer source"
        );
        let mut b = VecBuf::from_slice(f);
        tunnel::decapsulate(&mut b, &gw_keys(), AVES_UDP_PORT).unwrap();
        Ok(ipv4::Packet::new_checked(&b.data()[ETH..]).unwrap().dst())
    } else {
        Err(io.dropped.first().copied().or(reason(&c)))
    }
}

#[test]
fn a_wait_state_binds_every_admissible_new_source() {
    let mut w = waypoint();
    assert_eq!(apply(&mut w, &wait(W, "0.0.0.0/0", B), 0), Ok(()));
    assert!(w.is_waiting(W, SECOND_NS));
    assert!(!w.is_waiting(W2, SECOND_NS));
    // The first new connection claims a binding to B and goes through.
    let (io, c) = run(&mut w, &frame(&syn_from(A, W, 40000)), SECOND_NS);
    let (_, inner) = tunnelled(&io);
    assert_eq!(ipv4::Packet::new_checked(&inner[..]).unwrap().dst(), B);
    assert_eq!(c.events.bindings_claimed.get(), 1);
    assert_eq!(w.binding(A, W, SECOND_NS), Some(B));
    // Reported for the other lcores as the binding itself.
    let n = Role::<VecBuf>::pop_learned(&mut w).expect("a claim notice");
    assert_eq!(n.to_command(), Some(Command::AddBinding(binding(A, W, B))));
    assert_eq!(Role::<VecBuf>::pop_learned(&mut w), None);
    // The wait does not end at the first claim (§6.2): another source claims too.
    assert_eq!(outcome(&mut w, &ping_from(A2, W), SECOND_NS + 1), Ok(B));
    assert_eq!(w.binding(A2, W, SECOND_NS + 1), Some(B));
    // After Twait, a new source is not bound.
    let a3 = Ipv4Addr::new(198, 51, 100, 9);
    assert_eq!(
        outcome(&mut w, &syn_from(a3, W, 40001), 2 * SECOND_NS + 1),
        Err(Some(DropReason::NoBinding))
    );
    assert!(!w.is_waiting(W, 2 * SECOND_NS + 1));
    // The claimed bindings live on as dynamic bindings.
    assert_eq!(
        outcome(&mut w, &syn_from(A, W, 40002), 3 * SECOND_NS),
        Ok(B)
    );
}

fn ping_from(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    datagram(
        src,
        dst,
        ipv4::protocol::ICMP,
        false,
        &echo_request(9, 1, b"x"),
    )
}

#[test]
fn only_new_connections_claim() {
    let mut w = waypoint();
    apply(&mut w, &wait(W, "0.0.0.0/0", B), 0).unwrap();
    assert_eq!(
        outcome(&mut w, &ack_from(A, W, 40000), 1),
        Err(Some(DropReason::NoBinding))
    );
    assert_eq!(w.binding(A, W, 1), None);
    assert_eq!(outcome(&mut w, &syn_from(A, W, 40000), 2), Ok(B));
}

#[test]
fn violators_are_rejected_until_treject_after_the_wait() {
    let mut w = waypoint();
    // A is bound at W to B2; the DNS server now sends someone to W for B.
    bind(&mut w, binding(A, W, B2), 0);
    apply(&mut w, &wait(W, "0.0.0.0/0", B), 0).unwrap();
    let syn = syn_from(A, W, 40000);
    let (io, c) = run(&mut w, &frame(&syn), SECOND_NS);
    icmp_error_to_a(&io, icmpv4::unreach::HOST, &syn);
    assert_eq!(c.drops_of(DropReason::WaitViolation), 1);
    assert!(w.is_rejected(A, W, SECOND_NS));
    // Its existing connections still pass (only new connections are judged).
    assert_eq!(outcome(&mut w, &ack_from(A, W, 39999), SECOND_NS), Ok(B2));
    // A bound to B itself is not a violator.
    bind(&mut w, binding(A2, W, B), 0);
    assert_eq!(outcome(&mut w, &ping_from(A2, W), SECOND_NS), Ok(B));
    // After the wait (2 s) A stays rejected for Treject (3 min)…
    let end = 2 * SECOND_NS + DelayedTimers::paper().reject_ns;
    assert_eq!(
        outcome(&mut w, &syn_from(A, W, 40001), end - 1),
        Err(Some(DropReason::SourceRejected))
    );
    // …then its binding to B2 works again.
    tick(&mut w, end);
    assert_eq!(outcome(&mut w, &syn_from(A, W, 40002), end), Ok(B2));
    assert!(!w.is_rejected(A, W, end));
    // Violating at W says nothing about W2.
    bind(&mut w, binding(A, W2, B), 0);
    assert_eq!(outcome(&mut w, &syn_from(A, W2, 40003), SECOND_NS), Ok(B));
}

#[test]
fn sources_without_state_are_rejected_for_three_hours() {
    let mut w = waypoint();
    // Outside a wait state: host unreachable, and remembered (§6.2).
    assert_eq!(
        outcome(&mut w, &syn_from(A, W, 40000), 0),
        Err(Some(DropReason::NoBinding))
    );
    assert!(w.is_rejected(A, W2, 0), "for every waypoint address");
    // In a later wait state, A cannot claim; A2 can.
    apply(&mut w, &wait(W, "0.0.0.0/0", B), SECOND_NS).unwrap();
    assert_eq!(
        outcome(&mut w, &syn_from(A, W, 40001), 2 * SECOND_NS),
        Err(Some(DropReason::SourceRejected))
    );
    assert_eq!(outcome(&mut w, &ping_from(A2, W), 2 * SECOND_NS), Ok(B));
    // Three hours later it can.
    let later = 3 * 3600 * SECOND_NS + 1;
    tick(&mut w, later);
    assert!(!w.is_rejected(A, W, later));
    apply(&mut w, &wait(W2, "0.0.0.0/0", B2), later).unwrap();
    assert_eq!(outcome(&mut w, &syn_from(A, W2, 40002), later + 1), Ok(B2));
}

#[test]
fn an_explicit_binding_lifts_rejections() {
    let mut w = waypoint();
    assert!(outcome(&mut w, &syn_from(A, W, 40000), 0).is_err());
    assert!(w.is_rejected(A, W2, 0));
    // An intranet SETUP (or the operator) binds A at W2: A is known now.
    bind(&mut w, binding(A, W2, B), 0);
    assert!(!w.is_rejected(A, W, 0));
    apply(&mut w, &wait(W, "0.0.0.0/0", B2), 0).unwrap();
    assert_eq!(outcome(&mut w, &syn_from(A, W, 40001), 1), Ok(B2));
}

#[test]
fn the_three_hour_rule_can_be_turned_off() {
    let mut c = cfg();
    c.delayed.reject_unknown_ns = 0;
    let mut w = Waypoint::new(&c).unwrap();
    assert!(outcome(&mut w, &syn_from(A, W, 40000), 0).is_err());
    assert!(!w.is_rejected(A, W, 0));
    apply(&mut w, &wait(W, "0.0.0.0/0", B), 1).unwrap();
    assert_eq!(outcome(&mut w, &syn_from(A, W, 40001), 2), Ok(B));
}

#[test]
fn a_client_subnet_limits_who_may_claim() {
    let mut c = cfg();
    c.delayed.reject_unknown_ns = 0;
    let mut w = Waypoint::new(&c).unwrap();
    // A = 198.51.100.7 is in 198.51.100.4/30; A2 = .8 is not.
    apply(&mut w, &wait(W, "198.51.100.4/30", B), 0).unwrap();
    assert_eq!(
        outcome(&mut w, &ping_from(A2, W), 1),
        Err(Some(DropReason::NoBinding))
    );
    assert_eq!(outcome(&mut w, &syn_from(A, W, 40000), 2), Ok(B));
}

#[test]
fn wait_states_need_a_pool_address_a_known_gateway_and_room() {
    let mut w = waypoint();
    assert_eq!(
        apply(&mut w, &wait(NOT_POOL, "0.0.0.0/0", B), 0),
        Err(CommandError::Invalid)
    );
    let unknown_gw = Command::BeginWait(WaitSpec {
        waypoint: W,
        sources: "0.0.0.0/0".parse().unwrap(),
        gateway: Ipv4Addr::new(192, 0, 2, 99),
        responder: B,
        mode: Mode::Plain,
        duration_ns: SECOND_NS,
    });
    assert_eq!(apply(&mut w, &unknown_gw, 0), Err(CommandError::Invalid));
    let mut c = cfg();
    c.wait_capacity = 1;
    let mut w = Waypoint::new(&c).unwrap();
    apply(&mut w, &wait(W, "0.0.0.0/0", B), 0).unwrap();
    // The same address again replaces its wait state; another one does not fit.
    assert_eq!(apply(&mut w, &wait(W, "0.0.0.0/0", B2), 1), Ok(()));
    assert_eq!(
        apply(&mut w, &wait(W2, "0.0.0.0/0", B), 1),
        Err(CommandError::TableFull)
    );
    assert_eq!(outcome(&mut w, &syn_from(A2, W, 40000), 2), Ok(B2));
    // Once it is over, there is room again.
    assert_eq!(
        apply(&mut w, &wait(W2, "0.0.0.0/0", B), 3 * SECOND_NS),
        Ok(())
    );
}

#[test]
fn a_claim_reaches_another_lcore_as_a_binding() {
    let (mut w0, mut w1) = (waypoint(), waypoint());
    for w in [&mut w0, &mut w1] {
        apply(w, &wait(W, "0.0.0.0/0", B), 0).unwrap();
    }
    assert_eq!(outcome(&mut w0, &syn_from(A, W, 40000), 1), Ok(B));
    let n = Role::<VecBuf>::pop_learned(&mut w0).unwrap();
    // Control relays it (daemon::relay): the other lcore installs it.
    apply(&mut w1, &n.to_command().unwrap(), 2).unwrap();
    assert_eq!(w1.binding(A, W, 2), Some(B));
    // After the wait, A's packets on lcore 1 still go to B.
    assert_eq!(
        outcome(&mut w1, &syn_from(A, W, 40001), 3 * SECOND_NS),
        Ok(B)
    );
}

#[test]
fn rejections_reach_the_other_lcores() {
    let (mut w0, mut w1) = (waypoint(), waypoint());
    // Lcore 0 sees A without state: A is rejected there, and reported.
    assert!(outcome(&mut w0, &syn_from(A, W, 40000), 0).is_err());
    let n = Role::<VecBuf>::pop_learned(&mut w0).expect("a rejection notice");
    assert_eq!(
        n.to_command(),
        Some(Command::RejectSource {
            source: A,
            waypoint: Ipv4Addr::UNSPECIFIED,
            duration_ns: DelayedTimers::paper().reject_unknown_ns,
        })
    );
    // Reported once, not again for its next packets.
    assert!(outcome(&mut w0, &syn_from(A, W, 40001), 1).is_err());
    assert_eq!(Role::<VecBuf>::pop_learned(&mut w0), None);
    // Lcore 1 applies it: in a wait state there, A cannot claim.
    apply(&mut w1, &n.to_command().unwrap(), 2).unwrap();
    assert!(w1.is_rejected(A, W2, 2));
    apply(&mut w1, &wait(W, "0.0.0.0/0", B), 2).unwrap();
    assert_eq!(
        outcome(&mut w1, &syn_from(A, W, 40002), 3),
        Err(Some(DropReason::SourceRejected))
    );
    // A violator's rejection carries what is left of it: wait end + Treject.
    let mut w2 = waypoint();
    bind(&mut w2, binding(A2, W, B2), 0);
    apply(&mut w2, &wait(W, "0.0.0.0/0", B), 0).unwrap();
    assert!(outcome(&mut w2, &ping_from(A2, W), SECOND_NS).is_err());
    let n = Role::<VecBuf>::pop_learned(&mut w2).unwrap();
    assert_eq!(
        n.to_command(),
        Some(Command::RejectSource {
            source: A2,
            waypoint: W,
            duration_ns: SECOND_NS + DelayedTimers::paper().reject_ns,
        })
    );
    // Applying a rejection on an lcore does not report it again.
    apply(&mut w1, &n.to_command().unwrap(), 4).unwrap();
    assert_eq!(Role::<VecBuf>::pop_learned(&mut w1), None);
    assert!(w1.is_rejected(A2, W, 4));
}

#[test]
fn binding_lifecycle_is_counted_and_reported() {
    let mut w = waypoint();
    let life = |w: &Waypoint| w.binding_life();
    let rejected = |w: &Waypoint, r: BindingReject| w.binding_life().rejected[r as usize];
    bind(&mut w, binding(A, W, B), 0);
    // A refresh of the same binding installs nothing new.
    bind(&mut w, binding(A, W, B), 1);
    assert_eq!(life(&w).installed, 1);
    assert_eq!(
        apply(&mut w, &Command::AddBinding(binding(A, W, B2)), 2),
        Err(CommandError::Conflict)
    );
    assert_eq!(rejected(&w, BindingReject::Conflict), 1);
    assert!(apply(&mut w, &Command::AddBinding(binding(A, NOT_POOL, B)), 2).is_err());
    assert_eq!(rejected(&w, BindingReject::Invalid), 1);
    // Deleted, then a ping-only binding that expires.
    apply(
        &mut w,
        &Command::DelBinding {
            initiator: A,
            waypoint: W,
            responder: None,
        },
        3,
    )
    .unwrap();
    assert_eq!(life(&w).deleted, 1);
    bind(&mut w, binding(A, W2, B), 0);
    assert_eq!(
        run(&mut w, &frame(&ping_to(W2)), SECOND_NS)
            .0
            .forwarded
            .len(),
        1
    );
    tick(&mut w, SECOND_NS + MINUTE_NS);
    assert_eq!(w.binding_count(), 0);
    assert_eq!(life(&w).installed, 2);
    assert_eq!(life(&w).expired, 1);
    // A claim in a wait state installs; a violator is a rejection.
    bind(&mut w, binding(A2, W, B2), 0);
    apply(&mut w, &wait(W, "0.0.0.0/0", B), 2 * MINUTE_NS).unwrap();
    let t = 2 * MINUTE_NS + 1;
    let (_, c) = run(&mut w, &frame(&syn_from(A, W, 40000)), t);
    assert_eq!(c.events.bindings_claimed.get(), 1);
    assert_eq!(life(&w).installed, 4);
    run(&mut w, &frame(&syn_from(A2, W, 40000)), t);
    assert_eq!(rejected(&w, BindingReject::WaitViolation), 1);
    // The report mirrors all of it, and the tables' occupancy.
    let c = CoreCounters::default();
    Role::<VecBuf>::report(&w, &c);
    assert_eq!(c.bindings.get(), life(&w));
    assert_eq!(c.table(Table::Bindings), 2);
    assert_eq!(c.table(Table::Waits), 1);
    assert_eq!(c.table(Table::Rejects), 1);
    assert_eq!(c.table(Table::Connections), 1);
    assert_eq!(c.table(Table::Routes), 3, "two connected, one default");
    assert_eq!(c.table(Table::Neighbours), 3);
}

// ---- Table exhaustion (hostile-input issue): the connection table is full.

/// A SYN flood through a bound waypoint address (the waypoint tracks TCP connections;
/// UDP and ICMP ride on the binding alone): once the connection table is full, no new
/// entry is made and each refused one is counted (`connections_untracked`, an event,
/// not a drop); the packet itself still goes through on the binding, untracked. Connections already open keep
/// their entries and flow, the table stays at its capacity, and once the timers have
/// run out the slots are reclaimed.
#[test]
fn connection_table_exhaustion_refuses_new_connections_and_keeps_old_ones() {
    let mut w = waypoint();
    bind(
        &mut w,
        Binding {
            pinned: true,
            ..binding(A, W, B)
        },
        0,
    );
    let syn = |sport: u16| frame(&tcp_to(W, sport, 22, tcp::flags::SYN));
    let ack = |sport: u16| frame(&tcp_to(W, sport, 22, tcp::flags::ACK));
    for i in 0..64 {
        let (io, c) = run(&mut w, &syn(1000 + i), SECOND_NS);
        assert_eq!(io.forwarded.len(), 1, "connection {i} fits");
        assert_eq!(c.events.connections_untracked.get(), 0);
    }
    let mut refused = 0;
    for i in 0..1000 {
        let (io, c) = run(&mut w, &syn(20_000 + i), 2 * SECOND_NS);
        assert_eq!(io.forwarded.len(), 1, "untracked, on the binding");
        refused += c.events.connections_untracked.get();
        assert_eq!(c.drops_of(DropReason::FlowTableFull), 0, "not a drop");
    }
    assert_eq!(refused, 1000, "every refused entry is counted");
    let occupancy = |w: &mut Waypoint, now: u64| {
        let c = CoreCounters::default();
        Role::<VecBuf>::tick(w, now, &c, &mut RecordingIo::default());
        Role::<VecBuf>::report(w, &c);
        c.table(Table::Connections)
    };
    assert_eq!(occupancy(&mut w, 2 * SECOND_NS), 64, "bounded");
    // The open ones are unaffected.
    for i in 0..64 {
        assert_eq!(
            run(&mut w, &ack(1000 + i), 3 * SECOND_NS).0.forwarded.len(),
            1
        );
    }
    // After the longest TCP timer the entries are reclaimed: 64 new ones fit again.
    let later = 3 * SECOND_NS + 24 * 60 * MINUTE_NS;
    tick(&mut w, later);
    for i in 0..64 {
        let (io, _) = run(&mut w, &syn(40_000 + i), later);
        assert_eq!(io.forwarded.len(), 1, "reclaimed slot {i}");
    }
    assert_eq!(occupancy(&mut w, later), 64);
    let (_, c) = run(&mut w, &syn(50_000), later);
    assert_eq!(c.events.connections_untracked.get(), 1, "full again");
    println!("waypoint connection table (64 entries): 1000 SYNs refused an entry and counted, table held at 64, 64 open connections kept flowing, all 64 slots reclaimed after the TCP timer");
}
