//! Messages between the control thread and the lcores.
//!
//! Control sends each lcore an [`Envelope`] over that lcore's single-producer ring; the
//! lcore applies it between bursts to its own tables and sends the envelope back, with
//! its [`Outcome`], on its event ring. Sending the envelope back means the lcore never frees
//! memory (the control thread drops it) and control learns when every core has applied a
//! change.

use crate::addr::{Ipv4Cidr, MacAddr};
use std::fmt;
use std::net::Ipv4Addr;

/// A route: packets to `prefix` leave on `port`, to `via` (or straight to their
/// destination when `via` is `None`, a connected route).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix (host bits ignored).
    pub prefix: Ipv4Cidr,
    /// Gateway on `port`, or `None` for a connected route.
    pub via: Option<Ipv4Addr>,
    /// Egress DPDK port id.
    pub port: u16,
}

/// How the gateway presents the initiator to the responder (AVES paper §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The responder sees the initiator's real address (one gateway).
    Plain,
    /// Multi-homing: the gateway replaces the initiator's address with its own private
    /// address and an allocated port, so replies come back through the same gateway.
    MultiHoming,
}

/// A waypoint binding (AVES paper §3.3): packets from `initiator` to waypoint address
/// `waypoint` go, translated to `responder`, through the tunnel to `gateway`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The initiator A (one responder per (initiator, waypoint address), §3.3.1).
    pub initiator: Ipv4Addr,
    /// The waypoint address W the initiator was given.
    pub waypoint: Ipv4Addr,
    /// The responder's gateway R (tunnel endpoint).
    pub gateway: Ipv4Addr,
    /// The responder B (its address in the gateway's private network).
    pub responder: Ipv4Addr,
    /// Plain or multi-homing.
    pub mode: Mode,
    /// Never expires (static bindings from the config).
    pub pinned: bool,
}

/// A change to an lcore's tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Add or replace the route for `route.prefix`.
    AddRoute(Route),
    /// Remove the route for exactly this prefix.
    DelRoute {
        /// The prefix of the route to remove.
        prefix: Ipv4Cidr,
    },
    /// Add or replace a static neighbour (never expires, never overwritten by ARP).
    AddNeighbour {
        /// Port the neighbour is on.
        port: u16,
        /// Its IPv4 address.
        ip: Ipv4Addr,
        /// Its MAC.
        mac: MacAddr,
    },
    /// Remove a neighbour (static or learned).
    DelNeighbour {
        /// Port the neighbour is on.
        port: u16,
        /// Its IPv4 address.
        ip: Ipv4Addr,
    },
    /// Install (or refresh) a waypoint binding; refused with `Conflict` when the
    /// (initiator, waypoint) pair is bound to another responder (§3.3.1).
    AddBinding(Binding),
    /// Remove the binding of (initiator, waypoint).
    DelBinding {
        /// The initiator.
        initiator: Ipv4Addr,
        /// The waypoint address.
        waypoint: Ipv4Addr,
    },
    /// A neighbour another lcore learned from ARP: learn it here too (dynamic entry,
    /// expires like one learned locally; never overrides a static entry).
    LearnNeighbour {
        /// Port the neighbour is on.
        port: u16,
        /// Its IPv4 address.
        ip: Ipv4Addr,
        /// Its MAC.
        mac: MacAddr,
    },
}

/// An lcore tells control what it learned, by value over a ring (no allocation), so that
/// control can pass it to the other lcores (see `docs/decisions/0005-state-across-lcores.md`).
/// Fixed 16-byte layout, a multiple of 4 as DPDK's element rings require.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Notice {
    /// What this is: [`Notice::NEIGHBOUR`].
    pub kind: u16,
    /// Port.
    pub port: u16,
    /// IPv4 address, network order.
    pub ip: [u8; 4],
    /// MAC address.
    pub mac: [u8; 6],
    /// Zero.
    pub pad: [u8; 2],
}

impl Notice {
    /// A neighbour learned from ARP.
    pub const NEIGHBOUR: u16 = 1;

    /// A neighbour notice.
    pub fn neighbour(port: u16, ip: Ipv4Addr, mac: MacAddr) -> Notice {
        Notice {
            kind: Notice::NEIGHBOUR,
            port,
            ip: ip.octets(),
            mac: mac.0,
            pad: [0; 2],
        }
    }

    /// The command that applies this notice on another lcore, if the kind is known.
    pub fn to_command(&self) -> Option<Command> {
        match self.kind {
            Notice::NEIGHBOUR => Some(Command::LearnNeighbour {
                port: self.port,
                ip: Ipv4Addr::from(self.ip),
                mac: MacAddr(self.mac),
            }),
            _ => None,
        }
    }
}

/// Why an lcore could not apply a command. Its tables are unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// The table is at its configured capacity.
    TableFull,
    /// Nothing to remove.
    NotFound,
    /// The port does not exist on this engine.
    BadPort,
    /// The (initiator, waypoint) pair is bound to another responder (AVES §3.3.1).
    Conflict,
    /// This role has no such table (e.g. a binding sent to a router).
    Unsupported,
    /// The command names something the role does not know (e.g. a gateway without a key).
    Invalid,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommandError::TableFull => "table full",
            CommandError::NotFound => "no such entry",
            CommandError::BadPort => "no such port",
            CommandError::Conflict => "bound to another responder",
            CommandError::Unsupported => "not supported by this role",
            CommandError::Invalid => "invalid for this role's configuration",
        })
    }
}

/// A command with the sequence number control gave it. The same box travels down to the
/// lcore and back up with `outcome` filled in, so the lcore neither allocates nor frees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Control's sequence number.
    pub seq: u64,
    /// The change.
    pub cmd: Command,
    /// Set by the lcore: which lcore applied it and the result.
    pub outcome: Option<Outcome>,
}

/// An lcore's answer to an [`Envelope`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The lcore that applied (or refused) the command.
    pub lcore: u32,
    /// The result; on error the lcore's tables are unchanged.
    pub result: Result<(), CommandError>,
}
