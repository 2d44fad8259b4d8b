//! Per-packet cost of the pipelines, as ratios against a baseline measured in the same
//! run (no timed assertions; see perf/README.md).
//!
//! Every case copies a template frame into a fresh `VecBuf` and hands it to a role (or a
//! function); the baseline does only the copy and the drop. The table prints ns/packet,
//! the ratio to the baseline and what one core would do in Mpps and Gbps at that cost.
//! Run: `cargo bench -p aves-dataplane --no-default-features --bench pipeline`.

use aves_dataplane::addr::MacAddr;
use aves_dataplane::auth::{self, Algorithm, Key, Keyring};
use aves_dataplane::buf::{PacketBuf, VecBuf};
use aves_dataplane::command::{Binding, Command, Mode, Route};
use aves_dataplane::counters::{CoreCounters, DropReason};
use aves_dataplane::pipeline::flow::Timeouts;
use aves_dataplane::pipeline::gateway::{Gateway, GatewayConfig};
use aves_dataplane::pipeline::route::{NextHop, RouteEntry, RouteTable};
use aves_dataplane::pipeline::router::{PortConfig, Router, RouterConfig};
use aves_dataplane::pipeline::tunnel::AVES_UDP_PORT;
use aves_dataplane::pipeline::waypoint::{DelayedTimers, GatewayKeys, Waypoint, WaypointConfig};
use aves_dataplane::pipeline::{Io, Role};
use aves_dataplane::wire::{checksum, ethernet, ipv4, udp};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

/// An `Io` that keeps the last forwarded buffer (to feed the next stage) and counts.
#[derive(Default)]
struct SinkIo {
    last: Option<VecBuf>,
    forwarded: u64,
    dropped: u64,
}

impl Io<VecBuf> for SinkIo {
    fn alloc(&mut self) -> Option<VecBuf> {
        Some(VecBuf::from_slice(&[]))
    }
    fn forward(&mut self, buf: VecBuf, _port: u16) {
        self.forwarded += 1;
        self.last = Some(buf);
    }
    fn resolve(&mut self, buf: VecBuf, _port: u16, _nh: Ipv4Addr) {
        self.forwarded += 1;
        self.last = Some(buf);
    }
    fn drop_packet(&mut self, _buf: VecBuf, _reason: DropReason) {
        self.dropped += 1;
    }
    fn handoff(&mut self, _buf: VecBuf, _lcore: usize, _in_port: u16) {
        self.dropped += 1;
    }
}

const MAC_W: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const MAC_R: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const MAC_NH: MacAddr = MacAddr([2, 0, 0, 0, 0, 3]);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// An Ethernet + IPv4 + UDP frame of `frame_len` bytes.
fn udp_frame(dst_mac: MacAddr, src: &str, dst: &str, frame_len: usize) -> Vec<u8> {
    let l4 = frame_len - 14 - 20;
    let mut v = vec![0u8; frame_len];
    let mut f = ethernet::Frame::new_unchecked(&mut v[..]);
    f.set_dst(dst_mac);
    f.set_src(MAC_NH);
    f.set_ethertype(ethernet::ethertype::IPV4);
    ipv4::Ipv4Repr {
        src: ip(src),
        dst: ip(dst),
        protocol: 17,
        payload_len: l4 as u16,
        ttl: 64,
        dscp_ecn: 0,
        ident: 1,
        dont_frag: false,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut v[14..]));
    {
        let mut u = udp::Packet::new_unchecked(&mut v[34..]);
        u.set_src_port(1234);
        u.set_dst_port(5678);
        u.set_len(l4 as u16);
        u.fill_checksum_v4(ip(src), ip(dst));
    }
    v
}

fn router_cfg(mac: MacAddr, addr: &str, pools: &str) -> RouterConfig {
    RouterConfig {
        ports: vec![
            PortConfig {
                mac,
                addrs: vec![addr.parse().unwrap()],
                pools: if pools.is_empty() {
                    vec![]
                } else {
                    vec![pools.parse().unwrap()]
                },
                mtu: 9000,
            },
            PortConfig {
                mac: MAC_R,
                addrs: vec!["10.0.0.1/24".parse().unwrap()],
                pools: vec![],
                mtu: 9000,
            },
        ],
        routes: vec![Route {
            prefix: "0.0.0.0/0".parse().unwrap(),
            via: Some(ip("203.0.113.1")),
            port: 0,
        }],
        neighbours: vec![
            (0, ip("203.0.113.1"), MAC_NH),
            (1, ip("10.0.0.2"), MAC_NH),
            (0, ip("192.0.2.1"), MAC_NH),
        ],
        route_capacity: 2048,
        neighbour_capacity: 64,
        neighbour_ttl_ns: u64::MAX / 2,
    }
}

fn key(alg: Algorithm) -> Keyring {
    Keyring::new(Key::new(1, alg, b"0123456789abcdef0123456789abcdef").unwrap())
}

fn waypoint(alg: Algorithm, headers_only: bool) -> Waypoint {
    let mut w = Waypoint::<VecBuf>::new(&WaypointConfig {
        router: router_cfg(MAC_W, "203.0.113.2/24", "203.0.113.100-203.0.113.115"),
        gateways: vec![GatewayKeys {
            address: ip("192.0.2.2"),
            keys: key(alg),
        }],
        bindings: vec![],
        binding_capacity: 1024,
        connection_capacity: 1024,
        tunnel_port: AVES_UDP_PORT,
        headers_only,
        timeouts: Timeouts::aves(),
        seed: 7,
        delayed: DelayedTimers::paper(),
        wait_capacity: 16,
        reject_capacity: 64,
    })
    .unwrap();
    <Waypoint as Role<VecBuf>>::apply(
        &mut w,
        &Command::AddBinding(Binding {
            initiator: ip("198.51.100.10"),
            waypoint: ip("203.0.113.100"),
            gateway: ip("192.0.2.2"),
            responder: ip("10.0.0.2"),
            mode: Mode::Plain,
            pinned: true,
        }),
        0,
    )
    .unwrap();
    w
}

fn gateway(alg: Algorithm) -> Gateway<VecBuf> {
    let mut rc = router_cfg(MAC_R, "192.0.2.2/24", "");
    rc.routes[0].via = Some(ip("192.0.2.1"));
    Gateway::new(&GatewayConfig {
        router: rc,
        public_port: 0,
        private_port: 1,
        keys: key(alg),
        tunnel_port: AVES_UDP_PORT,
        flow_capacity: 4096,
        nat_ports: (20000, 59999),
        timeouts: Timeouts::aves(),
        nat_timeouts: Timeouts::nat44(),
        reassembly_contexts: 64,
        reassembly_fragments: 16,
        reassembly_bytes: 1 << 20,
        reassembly_timeout_ns: 5_000_000_000,
        seed: 9,
        lcore_index: 0,
        lcore_count: 1,
    })
    .unwrap()
}

/// ns per call of `f`, best of 5 runs of `n` calls.
fn measure(n: u64, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
    }
    best
}

fn row(name: &str, bytes: usize, ns: f64, base: f64) {
    let mpps = 1e3 / ns;
    println!(
        "{name:<46} {bytes:>5} B {ns:>9.1} ns {:>6.2}x base {mpps:>7.2} Mpps {:>7.2} Gb/s",
        ns / base,
        mpps * bytes as f64 * 8.0 / 1e3
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick" || a == "--test");
    let n = if quick { 2_000 } else { 200_000 };
    println!("aves pipeline micro-benchmarks (one core; ratio = ns / baseline ns, same run)");
    for size in [64usize, 512, 1464] {
        let base_frame = udp_frame(MAC_W, "198.51.100.10", "203.0.113.100", size);
        let base = measure(n, || {
            black_box(VecBuf::from_slice(black_box(&base_frame)));
        });
        println!("-- {size}-byte frames; baseline (copy into a buffer, drop) {base:.1} ns");
        row("baseline: copy + drop", size, base, base);

        let c = CoreCounters::default();
        let mut r = Router::new(&router_cfg(MAC_W, "203.0.113.2/24", "")).unwrap();
        let fwd = udp_frame(MAC_W, "198.51.100.10", "10.0.0.2", size);
        let mut io = SinkIo::default();
        let ns = measure(n, || {
            r.handle(VecBuf::from_slice(&fwd), 0, 1, &c, &mut io);
        });
        assert!(io.forwarded > 0);
        row("router: forward (LPM, TTL, MACs)", size, ns, base);

        for (name, alg, ho) in [
            (
                "waypoint: translate+encap, HMAC-MD5 full",
                Algorithm::HmacMd5,
                false,
            ),
            (
                "waypoint: translate+encap, HMAC-MD5 headers",
                Algorithm::HmacMd5,
                true,
            ),
            (
                "waypoint: translate+encap, HMAC-SHA256/128",
                Algorithm::HmacSha256_128,
                false,
            ),
        ] {
            let mut w = waypoint(alg, ho);
            let mut io = SinkIo::default();
            let ns = measure(n, || {
                w.handle(VecBuf::from_slice(&base_frame), 0, 1, &c, &mut io);
            });
            assert!(io.forwarded > 0 && io.dropped == 0);
            row(name, size, ns, base);
            if !ho {
                // Gateway: verify + decapsulate + entry lookup + deliver, on what the
                // waypoint produced.
                let mut g = gateway(alg);
                let mut t = io.last.take().unwrap().data().to_vec();
                t[0..6].copy_from_slice(&MAC_R.0);
                let mut gio = SinkIo::default();
                let ns = measure(n, || {
                    g.handle(VecBuf::from_slice(&t), 0, 1, &c, &mut gio);
                });
                assert!(gio.forwarded > 0 && gio.dropped == 0, "gateway dropped");
                row(
                    &name.replace("waypoint: translate+encap", "gateway: verify+decap"),
                    size,
                    ns,
                    base,
                );
            }
        }
        for alg in [Algorithm::HmacMd5, Algorithm::HmacSha256_128] {
            let k = Key::new(1, alg, b"0123456789abcdef0123456789abcdef").unwrap();
            let ns = measure(n, || {
                black_box(auth::tag(&k, &[black_box(&base_frame[14..])]));
            });
            row(&format!("raw tag only: {}", alg.name()), size, ns, base);
        }
        let ns = measure(n, || {
            black_box(checksum::checksum(black_box(&base_frame[14..])));
        });
        row("full Internet checksum of the datagram", size, ns, base);
    }
    let mut t = RouteTable::with_capacity(2048);
    for i in 0..1000u32 {
        let p = Ipv4Addr::from(0x0a00_0000 | (i << 8));
        t.insert(RouteEntry {
            prefix: aves_dataplane::addr::Ipv4Cidr::new(p, 24).unwrap(),
            next_hop: NextHop::Connected,
            port: 0,
        })
        .unwrap();
    }
    let mut x = 0u32;
    let ns = measure(n, || {
        x = x.wrapping_add(0x0001_0301);
        black_box(t.lookup(Ipv4Addr::from(0x0a00_0000 | (x & 0x000f_ffff))));
    });
    println!("-- LPM lookup, 1000 /24 routes: {ns:.1} ns");
}
