//! Bounded state under attack (hostile-input issue): each test floods one table and
//! checks that the bound holds, that legitimate traffic keeps flowing, and that every
//! dropped packet is counted. Numbers are printed for the record (`--nocapture`).

use crate::buf::VecBuf;
use crate::command::Mode;
use crate::counters::{CoreCounters, DropReason};
use crate::pipeline::aves_tests::{
    bind, echo, frame, gateway, gateway_config, ip, run, tcp_seg, udp_dgram, via_internet,
    waypoint, R_PRIV_MAC, R_PUB_MAC, W_MAC,
};
use crate::pipeline::gateway::{Gateway, GatewayConfig};
use crate::pipeline::{RecordingIo, Role};
use crate::wire::{ipv4, tcp};

/// xorshift64*: deterministic pseudo-random numbers for the floods.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn feed(g: &mut Gateway<VecBuf>, port: u16, f: &[u8], now: u64, c: &CoreCounters) -> RecordingIo {
    let mut io = RecordingIo {
        budget: 4,
        ..Default::default()
    };
    g.handle(VecBuf::with_room(f, 128, 4096 + 128), port, now, c, &mut io);
    io
}

#[test]
fn fragment_flood_stays_under_the_reassembly_caps_and_real_traffic_flows() {
    let cfg = gateway_config();
    let mut g = gateway();
    let (mut w, c) = (waypoint(), CoreCounters::default());
    bind(&mut w, "198.51.100.10", "203.0.113.100", Mode::Plain).unwrap();
    let mut rng = Rng(0x9e37_79b9);
    let mut delivered = 0;
    let n = 20_000u64;
    for i in 0..n {
        // A forged first-or-middle fragment with a random ident, offset and length.
        let len = 8 * (1 + (rng.next() % 100) as usize);
        let mut f = frame(
            R_PUB_MAC,
            "198.51.100.66",
            "192.0.2.2",
            17,
            &vec![0u8; len],
            false,
        );
        {
            let mut p = ipv4::Packet::new_unchecked(&mut f[14..]);
            p.set_ident(rng.next() as u16);
            p.set_flags_frag(false, true, (8 * (rng.next() % 512)) as u16);
            p.fill_checksum();
        }
        feed(&mut g, 0, &f, i * 1000, &c);
        let (ctx, bytes) = g.reassembly_usage();
        assert!(ctx <= cfg.reassembly_contexts, "contexts {ctx}");
        assert!(bytes <= cfg.reassembly_bytes, "bytes {bytes}");
        // Every 100th packet, a legitimate tunnelled ping goes through.
        if i % 100 == 0 {
            let ping = frame(
                W_MAC,
                "198.51.100.10",
                "203.0.113.100",
                1,
                &echo(8, 7, b"x"),
                false,
            );
            let (io, _) = run(&mut w, 0, &ping, i * 1000);
            let io = feed(
                &mut g,
                0,
                &via_internet(io.forwarded[0].1.clone(), R_PUB_MAC),
                i * 1000,
                &c,
            );
            delivered += io.forwarded.len();
        }
    }
    assert_eq!(delivered, 200, "legitimate traffic unaffected");
    let dropped = c.drops_of(DropReason::Reassembly);
    println!("fragment flood: {n} forged fragments, {dropped} datagram drops counted, held at most {} contexts / {} bytes", cfg.reassembly_contexts, cfg.reassembly_bytes);
    assert!(dropped > 0);
}

#[test]
fn forged_tunnel_flood_creates_no_state_and_is_counted() {
    let (mut w, mut g, c) = (waypoint(), gateway(), CoreCounters::default());
    bind(&mut w, "198.51.100.10", "203.0.113.100", Mode::Plain).unwrap();
    let syn = frame(
        W_MAC,
        "198.51.100.10",
        "203.0.113.100",
        6,
        &tcp_seg(1, 2, tcp::flags::SYN, b""),
        true,
    );
    let (io, _) = run(&mut w, 0, &syn, 1);
    let good = via_internet(io.forwarded[0].1.clone(), R_PUB_MAC);
    let mut rng = Rng(7);
    let n = 50_000;
    for i in 0..n {
        let mut f = good.clone();
        // Random tag, random inner source port: each a "new connection" if it were trusted.
        for b in &mut f[14 + 20 + 8 + 4..14 + 20 + 8 + 20] {
            *b = rng.next() as u8;
        }
        let off = 14 + 20 + 8 + 20 + 20;
        f[off..off + 2].copy_from_slice(&(i as u16).to_be_bytes());
        let io = feed(&mut g, 0, &f, 2, &c);
        assert!(io.forwarded.is_empty());
        assert_eq!(
            io.dropped,
            vec![DropReason::AuthBadTag],
            "every one counted"
        );
    }
    assert_eq!(g.flow_count(), 0, "no state from forged packets");
    // The real packet still creates its entry.
    assert_eq!(feed(&mut g, 0, &good, 3, &c).forwarded.len(), 1);
    assert_eq!(g.flow_count(), 1);
}

#[test]
fn flow_table_exhaustion_refuses_new_flows_and_keeps_old_ones() {
    let mut g = Gateway::<VecBuf>::new(&GatewayConfig {
        flow_capacity: 64,
        nat_ports: (20000, 29999),
        ..gateway_config()
    })
    .unwrap();
    let c = CoreCounters::default();
    // A SYN flood from a responder to many destinations (NAT44 half-open sessions).
    let mut opened = Vec::new();
    let mut refused = 0;
    for i in 0..1000u32 {
        let dst = format!("198.51.{}.{}", 100 + (i / 250), 1 + i % 250);
        let f = frame(
            R_PRIV_MAC,
            "10.0.0.2",
            &dst,
            6,
            &tcp_seg(40000, 443, tcp::flags::SYN, b""),
            false,
        );
        let io = feed(&mut g, 1, &f, 1, &c);
        if io.forwarded.len() == 1 {
            opened.push(dst);
        }
        refused += io
            .dropped
            .iter()
            .filter(|r| **r == DropReason::FlowTableFull)
            .count();
    }
    println!(
        "SYN flood: {} sessions opened, {refused} refused (table of 64 entries)",
        opened.len()
    );
    assert!(opened.len() < 64 && refused > 0, "bounded by the table");
    assert!(g.flow_count() <= 64);
    // An established early session keeps working: its replies still come in.
    let first = &opened[0];
    let ext = {
        let f = frame(
            R_PRIV_MAC,
            "10.0.0.2",
            first,
            6,
            &tcp_seg(40000, 443, tcp::flags::ACK, b""),
            false,
        );
        let io = feed(&mut g, 1, &f, 2, &c);
        let p = ipv4::Packet::new_checked(&io.forwarded[0].1[14..])
            .unwrap()
            .payload()
            .to_vec();
        u16::from_be_bytes([p[0], p[1]])
    };
    let reply = frame(
        R_PUB_MAC,
        first,
        "192.0.2.2",
        6,
        &tcp_seg(443, ext, tcp::flags::SYN | tcp::flags::ACK, b""),
        false,
    );
    assert_eq!(
        feed(&mut g, 0, &reply, 3, &c).forwarded.len(),
        1,
        "existing session unaffected"
    );
    // After the half-open timer (4 min transitory), the table is reclaimed.
    let mut tio = RecordingIo::default();
    for _ in 0..8 {
        g.tick(600_000_000_000, &c, &mut tio);
    }
    let f = frame(
        R_PRIV_MAC,
        "10.0.0.2",
        "203.0.113.77",
        17,
        &udp_dgram(1, 2, b"x"),
        false,
    );
    assert_eq!(
        feed(&mut g, 1, &f, 600_000_000_001, &c).forwarded.len(),
        1,
        "expired entries reclaimed"
    );
    let _ = ip("0.0.0.0");
}
