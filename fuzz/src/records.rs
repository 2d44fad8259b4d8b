//! The input format of the role targets, and the driver that feeds a role.
//!
//! After a one-byte configuration selector (the target's business) an input is a
//! sequence of records, each `[flags][port][dt][aux][len lo][len hi]` and `len` bytes
//! (fewer when the input ends first). `flags`:
//!
//! | bit  | meaning |
//! |------|---------|
//! | 0x01 | repair the IPv4 total length and header checksum ([`fix_ipv4`]) |
//! | 0x02 | repair the TCP/UDP/ICMP checksum ([`fix_l4`]) |
//! | 0x04 | set the destination MAC to the receiving port's |
//! | 0x08 | wrap the frame in an authentic AVES tunnel packet (outer source `aux & 3` from the pool, flags `aux >> 4 & 3`) to the tunnel destination |
//! | 0x10 | split it into IPv4 fragments of MTU `68 + 8 * (aux & 0x7f)`, last first when `aux & 0x80` |
//! | 0x20 | not a frame: a command ([`command`]) for `Role::apply` |
//! | 0x40 | call `Role::tick` afterwards |
//! | 0x80 | give the role no buffers to allocate |
//!
//! `port` mod the number of ports is the receiving port; the clock advances by
//! `dt³` ms before the record (up to about 4.6 hours). Frames are cut to 2048 bytes,
//! an mbuf's data room.
//!
//! [`run_role`] checks, besides what [`FuzzIo`] checks on each frame sent: no allocation
//! in `handle`, `tick`, `build_arp_request` and `pop_learned`; every buffer ends (after
//! a final tick a day later and `drain`, none is alive); an input buffer the role drops
//! without the `Io` is an ARP reply it consumed, a fragment (roles that reassemble only)
//! or matched by a drop the role counted itself; every unfragmented tunnel packet it
//! makes for a known gateway decapsulates with that gateway's keys (waypoint).

use aves_dataplane::addr::{Ipv4Cidr, MacAddr};
use aves_dataplane::auth::{Key, Keyring};
use aves_dataplane::buf::{PacketBuf, VecBuf};
use aves_dataplane::command::{Binding, Command, Mode, Route};
use aves_dataplane::counters::{CoreCounters, DropReason};
use aves_dataplane::pipeline::tunnel::{self, Outer};
use aves_dataplane::pipeline::{fragment, Role};
use aves_dataplane::wire::{arp, ethernet, ipv4};
use std::net::Ipv4Addr;

use crate::alloc::no_alloc;
use crate::bufs::{self, CountedBuf, Origin};
use crate::byte;
use crate::fixup::{deep_l4_ok, fix_ipv4, fix_l4, is_ipv4_fragment, ETH};
use crate::io::FuzzIo;
use crate::setup::addr_at;

/// Repair the IPv4 header.
pub const FIX_IP: u8 = 0x01;
/// Repair the transport checksum.
pub const FIX_L4: u8 = 0x02;
/// Address the frame to the receiving port's MAC.
pub const SET_MAC: u8 = 0x04;
/// Wrap in a tunnel packet.
pub const TUNNEL: u8 = 0x08;
/// Fragment.
pub const FRAGMENT: u8 = 0x10;
/// A command, not a frame.
pub const COMMAND: u8 = 0x20;
/// Tick afterwards.
pub const TICK: u8 = 0x40;
/// No buffers to allocate.
pub const NO_POOL: u8 = 0x80;

/// Most records read from one input.
pub const MAX_RECORDS: usize = 64;
/// Largest frame (an mbuf's data room).
pub const MAX_FRAME: usize = 2048;
/// Buffers in the `Io` pool before each call.
pub const POOL: usize = 24;

/// One record.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// Flag bits (see the module doc).
    pub flags: u8,
    /// Receiving port (mod the port count).
    pub port: u8,
    /// Clock step (cubed, in ms).
    pub dt: u8,
    /// Parameter of `TUNNEL` and `FRAGMENT`.
    pub aux: u8,
    /// Frame or command bytes.
    pub body: &'a [u8],
}

/// Splits `data` into records.
pub fn parse(mut data: &[u8]) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    while data.len() >= 6 && out.len() < MAX_RECORDS {
        let len = usize::from(u16::from_le_bytes([data[4], data[5]]));
        let rest = &data[6..];
        let body = &rest[..len.min(rest.len())];
        out.push(Record {
            flags: data[0],
            port: data[1],
            dt: data[2],
            aux: data[3],
            body,
        });
        data = &rest[body.len()..];
    }
    out
}

/// Decodes a command: `b[0] % 7` picks the kind, fields follow (addresses by
/// [`addr_at`], 4 bytes each).
pub fn command(b: &[u8], ports: usize) -> Command {
    let port = u16::from(byte(b, 1)) % (ports as u16 + 1);
    let cidr = Ipv4Cidr::new(addr_at(b, 2), byte(b, 6) % 33)
        .unwrap_or(Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).expect("/0"));
    let mac = MacAddr([
        byte(b, 7) & 0xfe,
        byte(b, 8),
        byte(b, 9),
        byte(b, 10),
        byte(b, 11),
        byte(b, 12),
    ]);
    match byte(b, 0) % 7 {
        0 => Command::AddRoute(Route {
            prefix: cidr,
            via: (byte(b, 13) & 1 == 1).then(|| addr_at(b, 14)),
            port,
        }),
        1 => Command::DelRoute { prefix: cidr },
        2 => Command::AddNeighbour {
            port,
            ip: addr_at(b, 2),
            mac,
        },
        3 => Command::DelNeighbour {
            port,
            ip: addr_at(b, 2),
        },
        4 => Command::AddBinding(Binding {
            initiator: addr_at(b, 2),
            waypoint: addr_at(b, 13),
            gateway: addr_at(b, 17),
            responder: addr_at(b, 21),
            mode: if byte(b, 1) & 1 == 1 {
                Mode::MultiHoming
            } else {
                Mode::Plain
            },
            pinned: byte(b, 1) & 2 == 2,
        }),
        5 => Command::DelBinding {
            initiator: addr_at(b, 2),
            waypoint: addr_at(b, 13),
            responder: (byte(b, 1) & 4 == 4).then(|| addr_at(b, 6)),
        },
        _ => Command::LearnNeighbour {
            port,
            ip: addr_at(b, 2),
            mac,
        },
    }
}

/// How `TUNNEL` records are wrapped: to `dst` on `port`, signed with `key`, from one of
/// `sources`.
#[derive(Clone, Debug)]
pub struct TunnelWrap {
    /// Outer destination (the gateway).
    pub dst: Ipv4Addr,
    /// UDP destination port.
    pub port: u16,
    /// Signing key.
    pub key: Key,
    /// Outer sources (waypoint addresses), picked by `aux & 3`.
    pub sources: [Ipv4Addr; 4],
}

/// The frames a record stands for, after the repairs it asks for.
pub fn frames(r: &Record<'_>, port_mac: MacAddr, wrap: &TunnelWrap) -> Vec<Vec<u8>> {
    let mut v = r.body[..r.body.len().min(MAX_FRAME)].to_vec();
    let set_mac = |v: &mut Vec<u8>| {
        if r.flags & SET_MAC != 0 && v.len() >= 6 {
            v[..6].copy_from_slice(&port_mac.0);
        }
    };
    set_mac(&mut v);
    if v.len() > ETH {
        if r.flags & FIX_IP != 0 {
            fix_ipv4(&mut v[ETH..]);
        }
        if r.flags & FIX_L4 != 0 {
            fix_l4(&mut v[ETH..]);
        }
    }
    if r.flags & TUNNEL != 0 {
        let mut b = VecBuf::from_slice(&v);
        let outer = Outer {
            src: wrap.sources[usize::from(r.aux & 3)],
            dst: wrap.dst,
            dst_port: wrap.port,
            ident: u16::from(r.dt) << 8 | u16::from(r.aux),
            flags: (r.aux >> 4) & 3,
        };
        if tunnel::encapsulate(&mut b, &outer, &wrap.key).is_ok() {
            v = b.data().to_vec();
            set_mac(&mut v);
        }
    }
    if r.flags & FRAGMENT == 0 {
        return vec![v];
    }
    let mtu = 68 + 8 * u16::from(r.aux & 0x7f);
    let mut out = Vec::new();
    let res = fragment::fragment(
        VecBuf::from_slice(&v),
        mtu,
        || Some(VecBuf::from_slice(&[])),
        |f| out.push(f.data().to_vec()),
    );
    if res.is_err() {
        return vec![v];
    }
    if r.aux & 0x80 != 0 {
        out.reverse();
    }
    out
}

/// `AVES_FUZZ_TRACE=1` prints every frame handled (to debug a crash input).
pub fn trace() -> bool {
    static T: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *T.get_or_init(|| std::env::var_os("AVES_FUZZ_TRACE").is_some())
}

/// Hex of `b`, for traces.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn drops(c: &CoreCounters) -> u64 {
    DropReason::ALL.iter().map(|&r| c.drops_of(r)).sum()
}

/// Feeds the records of `data` to `role` through `io` (see the module doc for the
/// checks). `reassembles`: the role may silently free fragments. `decap_keys`: the
/// gateways (address, keys) whose tunnel packets the role sends must decapsulate.
pub fn run_role<R: Role<CountedBuf>>(
    role: &mut R,
    io: &mut FuzzIo,
    data: &[u8],
    wrap: &TunnelWrap,
    reassembles: bool,
    decap_keys: Option<&[(Ipv4Addr, Keyring)]>,
) {
    bufs::reset();
    let counters = CoreCounters::default();
    let nports = io.ports.len();
    let mut now: u64 = 1_000_000_000;
    for r in parse(data) {
        now = now.saturating_add(u64::from(r.dt).pow(3) * 1_000_000);
        let in_port = (usize::from(r.port) % nports) as u16;
        if r.flags & COMMAND != 0 {
            let _ = role.apply(&command(r.body, nports), now);
        } else {
            let mac = io.ports[usize::from(in_port)].mac;
            for f in frames(&r, mac, wrap) {
                one_frame(
                    role,
                    io,
                    &counters,
                    &f,
                    in_port,
                    now,
                    r.flags,
                    reassembles,
                    decap_keys,
                );
            }
        }
        if r.flags & TICK != 0 {
            io.refill(POOL);
            no_alloc("tick", || role.tick(now, &counters, io));
        }
    }
    // A day later every timer has run out.
    now = now.saturating_add(86_400 * 1_000_000_000);
    io.refill(POOL);
    no_alloc("tick", || role.tick(now, &counters, io));
    role.drain(&mut |b| b.end());
    io.empty_pool();
    let t = bufs::tally();
    assert_eq!(t.live(), 0, "buffers never ended: {t:?}");
}

/// A sent frame that is an unfragmented IPv4 UDP datagram to the tunnel port, to a
/// gateway in `keys`, decapsulates with that gateway's keys.
fn check_tunnel(frame: &[u8], port: u16, tunnel_port: u16, keys: &[(Ipv4Addr, Keyring)]) {
    let Some(ip) = frame
        .get(ETH..)
        .and_then(|b| ipv4::Packet::new_checked(b).ok())
    else {
        return;
    };
    let to_tunnel = ip.protocol() == ipv4::protocol::UDP
        && !ip.is_fragment()
        && ip.payload().get(2..4) == Some(&tunnel_port.to_be_bytes()[..]);
    let Some((_, ring)) = keys.iter().find(|(a, _)| *a == ip.dst()) else {
        return;
    };
    if !to_tunnel {
        return;
    }
    let mut b = VecBuf::from_slice(frame);
    if let Err(e) = tunnel::decapsulate(&mut b, ring, tunnel_port) {
        panic!("tunnel packet sent on port {port} does not decapsulate: {e:?}");
    }
}

#[allow(clippy::too_many_arguments)]
fn one_frame<R: Role<CountedBuf>>(
    role: &mut R,
    io: &mut FuzzIo,
    counters: &CoreCounters,
    frame: &[u8],
    in_port: u16,
    now: u64,
    flags: u8,
    reassembles: bool,
    decap_keys: Option<&[(Ipv4Addr, Keyring)]>,
) {
    if trace() {
        eprintln!(
            "handle port {in_port} t={now} len {}: {}",
            frame.len(),
            hex(frame)
        );
    }
    io.refill(if flags & NO_POOL != 0 { 0 } else { POOL });
    io.resolves = [None; crate::io::MAX_RESOLVES];
    io.clear_log();
    io.expect_l4_ok =
        !is_ipv4_fragment(frame) && frame.len() >= ETH && deep_l4_ok(&frame[ETH..], io.tunnel_port);
    let before = bufs::tally();
    let drops_before = drops(counters);
    let buf = CountedBuf::new(frame, Origin::Input);
    no_alloc("handle", || role.handle(buf, in_port, now, counters, io));
    let after = bufs::tally();
    let counted = drops(counters) - drops_before;
    let mut silent = after.silent_input_other - before.silent_input_other;
    if !reassembles {
        silent += after.silent_fragment - before.silent_fragment;
    }
    assert!(
        silent <= counted,
        "{silent} received buffers freed without the Io and {counted} drops counted"
    );
    // Tunnel packets the role made (not one it routed through).
    let transit = frame
        .get(ETH..)
        .and_then(|b| ipv4::Packet::new_checked(b).ok())
        .is_some_and(|ip| {
            ip.protocol() == ipv4::protocol::UDP
                && ip.payload().get(2..4) == Some(&io.tunnel_port.to_be_bytes()[..])
        });
    if let Some(keys) = decap_keys.filter(|_| !transit) {
        for &(port, start, len) in &io.logged {
            check_tunnel(&io.log[start..start + len], port, io.tunnel_port, keys);
        }
    }
    for (port, next_hop) in io.resolves.into_iter().flatten() {
        let _ = role.neighbour(port, next_hop, now);
        let mut b = CountedBuf::new(&[], Origin::Alloc);
        let ok = no_alloc("build_arp_request", || {
            role.build_arp_request(&mut b, port, next_hop)
        });
        if ok {
            let d = b.data();
            let f = ethernet::Frame::new_checked(d).expect("ARP request: Ethernet");
            assert_eq!(f.ethertype(), ethernet::ethertype::ARP);
            assert_eq!(f.src(), io.ports[usize::from(port)].mac);
            let a = arp::Packet::new_checked(f.payload()).expect("ARP request: ARP");
            let repr = arp::ArpRepr::parse(&a).expect("ARP request parses");
            assert_eq!(repr.op, arp::op::REQUEST);
            assert_eq!(repr.target_ip, next_hop);
        }
        b.end();
    }
    no_alloc("pop_learned", || {
        for _ in 0..64 {
            if role.pop_learned().is_none() {
                break;
            }
        }
    });
}
