//! The AVES-aware NAT gateway role (AVES paper §3.2, §5.3). (Skeleton: the config
//! contract; the data path lands next.)

use crate::addr::MacAddr;
use crate::auth::Keyring;
use crate::buf::PacketBuf;
use crate::command::{Command, CommandError, Notice};
use crate::counters::CoreCounters;
use crate::pipeline::flow::Timeouts;
use crate::pipeline::router::{Router, RouterConfig, RouterConfigError};
use crate::pipeline::{deliver, Io, Role};
use std::net::Ipv4Addr;

/// Everything the gateway role needs at start.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Ports (public and private), addresses, routes, neighbours.
    pub router: RouterConfig,
    /// The port facing the Internet (tunnel packets arrive here).
    pub public_port: u16,
    /// The port facing the private network (responders).
    pub private_port: u16,
    /// This gateway's tunnel keys (current + previous during a rollover).
    pub keys: Keyring,
    /// Tunnel UDP port.
    pub tunnel_port: u16,
    /// Connection/NAT table capacity.
    pub flow_capacity: usize,
    /// Ports handed out for multi-homing and outbound NAT44 mappings, inclusive.
    pub nat_ports: (u16, u16),
    /// Timeouts of AVES connections (paper §5.2).
    pub timeouts: Timeouts,
    /// Timeouts of outbound NAT44 mappings (RFC 4787/5382/5508).
    pub nat_timeouts: Timeouts,
    /// Reassembly: contexts (datagrams in progress).
    pub reassembly_contexts: usize,
    /// Reassembly: fragments per datagram.
    pub reassembly_fragments: usize,
    /// Reassembly: bytes held in all.
    pub reassembly_bytes: usize,
    /// Reassembly: timeout, ns.
    pub reassembly_timeout_ns: u64,
    /// Hash seed for the tables.
    pub seed: u64,
}

/// The gateway role's per-core state.
#[derive(Debug)]
pub struct Gateway {
    router: Router,
}

impl Gateway {
    /// Builds the tables.
    pub fn new(cfg: &GatewayConfig) -> Result<Gateway, RouterConfigError> {
        Ok(Gateway {
            router: Router::new(&cfg.router)?,
        })
    }
}

impl<B: PacketBuf> Role<B> for Gateway {
    fn handle(
        &mut self,
        mut buf: B,
        in_port: u16,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    ) {
        let v = self.router.process(&mut buf, in_port, now_ns, counters);
        deliver(buf, v, io);
    }
    fn apply(&mut self, cmd: &Command, now_ns: u64) -> Result<(), CommandError> {
        self.router.apply(cmd, now_ns)
    }
    fn neighbour(&self, port: u16, ip: Ipv4Addr, now_ns: u64) -> Option<MacAddr> {
        self.router.neighbour(port, ip, now_ns)
    }
    fn build_arp_request(&self, buf: &mut B, port: u16, target: Ipv4Addr) -> bool {
        self.router.build_arp_request(buf, port, target)
    }
    fn pop_learned(&mut self) -> Option<Notice> {
        self.router.pop_learned()
    }
}
