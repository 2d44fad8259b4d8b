//! The IPv4 router role. (Skeleton: the contract the engine and control code against.)

use crate::addr::{Ipv4Cidr, Ipv4Range, MacAddr};
use crate::buf::PacketBuf;
use crate::command::{Command, CommandError, Route};
use crate::counters::{CoreCounters, DropReason};
use crate::verdict::Verdict;
use std::net::Ipv4Addr;

/// One port as the router sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// The port's MAC (from the NIC).
    pub mac: MacAddr,
    /// Interface addresses with their prefix; each adds a connected route.
    pub addrs: Vec<Ipv4Cidr>,
    /// Extra owned addresses (e.g. a waypoint pool): answered to ARP and to ping.
    pub pools: Vec<Ipv4Range>,
    /// IP MTU of the port (1500 on Ethernet).
    pub mtu: u16,
}

/// Everything the router role needs at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// Ports indexed by DPDK port id.
    pub ports: Vec<PortConfig>,
    /// Static routes (connected routes come from `ports`).
    pub routes: Vec<Route>,
    /// Static neighbours: (port, ip, mac).
    pub neighbours: Vec<(u16, Ipv4Addr, MacAddr)>,
    /// Route table capacity (connected + static + added at run time).
    pub route_capacity: usize,
    /// Neighbour table capacity (static + learned).
    pub neighbour_capacity: usize,
    /// How long a learned neighbour stays valid, ns.
    pub neighbour_ttl_ns: u64,
}

/// Invalid router configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfigError(pub String);

/// The router role's per-core state.
#[derive(Debug)]
pub struct Router {
    _cfg: RouterConfig,
}

impl Router {
    /// Builds the tables. Errors when the config does not fit the capacities or a route
    /// names a missing port.
    pub fn new(cfg: &RouterConfig) -> Result<Router, RouterConfigError> {
        Ok(Router { _cfg: cfg.clone() })
    }

    /// Processes one frame received on `in_port`.
    pub fn process<B: PacketBuf>(
        &mut self,
        _buf: &mut B,
        _in_port: u16,
        _now_ns: u64,
        _counters: &CoreCounters,
    ) -> Verdict {
        Verdict::Drop(DropReason::Truncated)
    }

    /// Applies a control command.
    pub fn apply(&mut self, _cmd: &Command, _now_ns: u64) -> Result<(), CommandError> {
        Ok(())
    }

    /// The MAC of `ip` on `port`, if resolved and not expired.
    pub fn neighbour(&self, _port: u16, _ip: Ipv4Addr, _now_ns: u64) -> Option<MacAddr> {
        None
    }

    /// Writes a broadcast ARP request for `target` from `port`'s first address into
    /// `buf` (an empty buffer with tailroom). Returns false if it cannot.
    pub fn build_arp_request<B: PacketBuf>(
        &self,
        _buf: &mut B,
        _port: u16,
        _target: Ipv4Addr,
    ) -> bool {
        false
    }
}
