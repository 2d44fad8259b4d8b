//! The fixed configurations of the role targets, and the addresses inputs refer to.
//!
//! Addresses follow the AVES unit tests and the e2e plan: initiators A 198.51.100.10-11,
//! waypoint W 203.0.113.2 with pool 203.0.113.100-115, gateway R public 192.0.2.2
//! (port 0) and private 10.0.0.1 (port 1), responders B 10.0.0.2-3. The router target
//! has three ports, one of them with a small MTU (576, or 68 when the input says) so
//! fragmentation, "fragmentation needed" and short ICMP quotes are reachable. Capacities are small so tables fill up.
//!
//! `scripts/fuzz-seeds.py` writes seeds with these same addresses and MACs: keep the two
//! in step.

use aves_dataplane::addr::MacAddr;
use aves_dataplane::auth::{Algorithm, Key, Keyring};
use aves_dataplane::command::{Binding, Mode, Route};
use aves_dataplane::pipeline::flow::Timeouts;
use aves_dataplane::pipeline::gateway::GatewayConfig;
use aves_dataplane::pipeline::router::{PortConfig, RouterConfig};
use aves_dataplane::pipeline::tunnel::AVES_UDP_PORT;
use aves_dataplane::pipeline::waypoint::{GatewayKeys, WaypointConfig};
use std::net::Ipv4Addr;

use crate::io::PortInfo;

/// The tunnel secret of gateway R (key id 1, HMAC-MD5).
pub const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
/// The second gateway's secret (key id 7, HMAC-SHA256-128).
pub const SECRET2: &[u8] = b"fedcba9876543210fedcba9876543210";

/// Port MACs: router ports 0..3, waypoint, gateway public and private.
pub const ROUTER_MACS: [MacAddr; 3] = [
    MacAddr([2, 0, 0, 0, 0x01, 1]),
    MacAddr([2, 0, 0, 0, 0x01, 2]),
    MacAddr([2, 0, 0, 0, 0x01, 3]),
];
/// The waypoint's port MAC.
pub const W_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x77, 1]);
/// The gateway's public port MAC.
pub const R_PUB_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x88, 1]);
/// The gateway's private port MAC.
pub const R_PRIV_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x88, 2]);
/// A neighbour's MAC (next hops).
pub const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x11, 1]);

/// Addresses an input names by index (see [`addr_at`]).
pub const ADDRS: [Ipv4Addr; 16] = [
    Ipv4Addr::new(198, 51, 100, 10), // A
    Ipv4Addr::new(198, 51, 100, 11), // A2
    Ipv4Addr::new(203, 0, 113, 100), // W (pool)
    Ipv4Addr::new(203, 0, 113, 101), // W2 (pool)
    Ipv4Addr::new(203, 0, 113, 115), // last pool address
    Ipv4Addr::new(203, 0, 113, 2),   // waypoint interface
    Ipv4Addr::new(192, 0, 2, 2),     // R public
    Ipv4Addr::new(192, 0, 2, 3),     // R2 (second gateway)
    Ipv4Addr::new(10, 0, 0, 2),      // B
    Ipv4Addr::new(10, 0, 0, 3),      // B2
    Ipv4Addr::new(10, 0, 0, 1),      // R private
    Ipv4Addr::new(192, 0, 2, 1),     // router port 0 / R's next hop
    Ipv4Addr::new(203, 0, 113, 1),   // W's next hop
    Ipv4Addr::new(172, 16, 0, 2),    // small-MTU link peer
    Ipv4Addr::new(0, 0, 0, 0),
    Ipv4Addr::new(255, 255, 255, 255),
];

/// Four bytes at `i` as an address: a first byte below 0x40 picks from [`ADDRS`], else
/// the bytes themselves.
pub fn addr_at(b: &[u8], i: usize) -> Ipv4Addr {
    let b0 = crate::byte(b, i);
    if b0 < 0x40 {
        ADDRS[usize::from(b0) % ADDRS.len()]
    } else {
        Ipv4Addr::from(crate::be32(b, i))
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("address")
}

/// Gateway R's keyring: key 1 (HMAC-MD5) signs.
pub fn keyring() -> Keyring {
    Keyring::new(Key::new(1, Algorithm::HmacMd5, SECRET).expect("key"))
}

/// A keyring mid-rollover: key 7 (HMAC-SHA256-128) signs, key 1 still verifies.
pub fn keyring_rotated() -> Keyring {
    let mut k = keyring();
    k.rotate(Key::new(7, Algorithm::HmacSha256_128, SECRET2).expect("key"))
        .expect("rotate");
    k
}

/// The router target's configuration; `small_mtu` is port 2's MTU (576, or down to
/// IPv4's minimum of 68).
pub fn router(small_mtu: u16) -> RouterConfig {
    RouterConfig {
        ports: vec![
            PortConfig {
                mac: ROUTER_MACS[0],
                addrs: vec!["192.0.2.1/24".parse().expect("cidr")],
                pools: vec!["192.0.2.100-192.0.2.103".parse().expect("range")],
                mtu: 1500,
            },
            PortConfig {
                mac: ROUTER_MACS[1],
                addrs: vec![
                    "10.0.0.1/24".parse().expect("cidr"),
                    "10.1.0.1/31".parse().expect("cidr"),
                ],
                pools: vec![],
                mtu: 1500,
            },
            PortConfig {
                mac: ROUTER_MACS[2],
                addrs: vec!["172.16.0.1/30".parse().expect("cidr")],
                pools: vec![],
                mtu: small_mtu,
            },
        ],
        routes: vec![
            Route {
                prefix: "0.0.0.0/0".parse().expect("cidr"),
                via: Some(ip("192.0.2.254")),
                port: 0,
            },
            Route {
                prefix: "10.9.0.0/16".parse().expect("cidr"),
                via: Some(ip("10.0.0.2")),
                port: 1,
            },
            Route {
                prefix: "198.18.0.0/15".parse().expect("cidr"),
                via: Some(ip("172.16.0.2")),
                port: 2,
            },
        ],
        neighbours: vec![
            (0, ip("192.0.2.254"), PEER_MAC),
            (1, ip("10.0.0.2"), PEER_MAC),
        ],
        route_capacity: 12,
        neighbour_capacity: 8,
        neighbour_ttl_ns: 30_000_000_000,
    }
}

/// The waypoint target's configuration; `headers_only` sets the AVES `H` mode.
pub fn waypoint(headers_only: bool) -> WaypointConfig {
    WaypointConfig {
        router: RouterConfig {
            ports: vec![PortConfig {
                mac: W_MAC,
                addrs: vec!["203.0.113.2/24".parse().expect("cidr")],
                pools: vec!["203.0.113.100-203.0.113.115".parse().expect("range")],
                mtu: 1500,
            }],
            routes: vec![Route {
                prefix: "0.0.0.0/0".parse().expect("cidr"),
                via: Some(ip("203.0.113.1")),
                port: 0,
            }],
            neighbours: vec![(0, ip("203.0.113.1"), PEER_MAC)],
            route_capacity: 8,
            neighbour_capacity: 8,
            neighbour_ttl_ns: 30_000_000_000,
        },
        gateways: vec![
            GatewayKeys {
                address: ip("192.0.2.2"),
                keys: keyring(),
            },
            GatewayKeys {
                address: ip("192.0.2.3"),
                keys: keyring_rotated(),
            },
        ],
        bindings: vec![
            Binding {
                initiator: ADDRS[0],
                waypoint: ADDRS[2],
                gateway: ADDRS[6],
                responder: ADDRS[8],
                mode: Mode::Plain,
                pinned: true,
            },
            Binding {
                initiator: ADDRS[1],
                waypoint: ADDRS[3],
                gateway: ADDRS[7],
                responder: ADDRS[9],
                mode: Mode::MultiHoming,
                pinned: false,
            },
        ],
        binding_capacity: 8,
        connection_capacity: 8,
        tunnel_port: AVES_UDP_PORT,
        headers_only,
        timeouts: Timeouts::aves(),
        seed: 1,
        delayed: aves_dataplane::pipeline::waypoint::DelayedTimers::paper(),
        wait_capacity: 8,
        reject_capacity: 16,
    }
}

/// The gateway target's configuration, for lcore `lcore` of `lcores`; `rotated` gives it
/// [`keyring_rotated`] instead of [`keyring`].
pub fn gateway(lcore: usize, lcores: usize, rotated: bool) -> GatewayConfig {
    GatewayConfig {
        router: RouterConfig {
            ports: vec![
                PortConfig {
                    mac: R_PUB_MAC,
                    addrs: vec!["192.0.2.2/24".parse().expect("cidr")],
                    pools: vec![],
                    mtu: 1500,
                },
                PortConfig {
                    mac: R_PRIV_MAC,
                    addrs: vec!["10.0.0.1/24".parse().expect("cidr")],
                    pools: vec![],
                    mtu: 1500,
                },
            ],
            routes: vec![Route {
                prefix: "0.0.0.0/0".parse().expect("cidr"),
                via: Some(ip("192.0.2.1")),
                port: 0,
            }],
            neighbours: vec![(0, ip("192.0.2.1"), PEER_MAC), (1, ADDRS[8], PEER_MAC)],
            route_capacity: 8,
            neighbour_capacity: 8,
            neighbour_ttl_ns: 30_000_000_000,
        },
        public_port: 0,
        private_port: 1,
        keys: if rotated {
            keyring_rotated()
        } else {
            keyring()
        },
        tunnel_port: AVES_UDP_PORT,
        flow_capacity: 16,
        nat_ports: (20000, 20009),
        timeouts: Timeouts::aves(),
        nat_timeouts: Timeouts::nat44(),
        reassembly_contexts: 4,
        reassembly_fragments: 8,
        reassembly_bytes: 16384,
        reassembly_timeout_ns: 5_000_000_000,
        seed: 2,
        lcore_index: lcore,
        lcore_count: lcores,
    }
}

/// The `Io` port view of a router configuration.
pub fn port_infos(cfg: &RouterConfig) -> Vec<PortInfo> {
    cfg.ports
        .iter()
        .map(|p| PortInfo {
            mac: p.mac,
            mtu: p.mtu,
        })
        .collect()
}
