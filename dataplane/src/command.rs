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

/// A delayed-binding wait state (AVES paper §3.3.2, Figure 6): for `duration_ns` the
/// waypoint address `waypoint` binds every admissible new connection from a source in
/// `sources` that has no binding there to `responder` behind `gateway`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitSpec {
    /// The waypoint address W that enters the wait state.
    pub waypoint: Ipv4Addr,
    /// Who may claim: 0.0.0.0/0 when only the initiator's resolver is known, the EDNS
    /// Client Subnet prefix when the DNS server had one (RFC 7871).
    pub sources: Ipv4Cidr,
    /// The responder's gateway R.
    pub gateway: Ipv4Addr,
    /// The responder B.
    pub responder: Ipv4Addr,
    /// Plain or multi-homing.
    pub mode: Mode,
    /// Twait (2 s in the paper), from when the lcore applies the command.
    pub duration_ns: u64,
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
    /// Remove the binding of (initiator, waypoint); with `responder`, only when it is
    /// bound to that responder (`NotFound` otherwise: how the SETUP service undoes an
    /// `AddBinding` that some lcores accepted and others refused).
    DelBinding {
        /// The initiator.
        initiator: Ipv4Addr,
        /// The waypoint address.
        waypoint: Ipv4Addr,
        /// Only if bound to this responder.
        responder: Option<Ipv4Addr>,
    },
    /// Put a waypoint address in a delayed-binding wait state (replacing one it is in).
    BeginWait(WaitSpec),
    /// Reject new connections from `source` to `waypoint` (0.0.0.0: claims at every
    /// waypoint address) for `duration_ns`, as another lcore decided (delayed binding).
    RejectSource {
        /// The rejected source.
        source: Ipv4Addr,
        /// The waypoint address, or 0.0.0.0 for a source without state (§6.2).
        waypoint: Ipv4Addr,
        /// From when the lcore applies it.
        duration_ns: u64,
    },
    /// Replace the primary (first) interface address of `port` with `addr`, as a DHCP
    /// renewal with a new lease would (AVES paper §5.3: a gateway's public address
    /// changes). The old address's connected route goes and the new one's comes; from
    /// then on the lcore answers ARP and ping for `addr` and no longer for the old
    /// address, and a gateway accepts tunnel packets (and NATs) on `addr` only. The
    /// port's other addresses are kept. `Invalid` when `addr` is a network or broadcast
    /// address of its prefix (for prefixes shorter than /31).
    SetAddress {
        /// The port.
        port: u16,
        /// The new address and prefix length.
        addr: Ipv4Cidr,
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
/// Fixed 32-byte layout, a multiple of 4 as DPDK's element rings require. Which fields
/// mean something depends on `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Notice {
    /// What this is: [`Notice::NEIGHBOUR`], [`Notice::BINDING_CLAIMED`] or
    /// [`Notice::SOURCE_REJECTED`].
    pub kind: u16,
    /// Neighbour: its port.
    pub port: u16,
    /// Neighbour: its IPv4 address. Binding: the initiator. Rejection: the source.
    /// Network order.
    pub ip: [u8; 4],
    /// Neighbour: its MAC.
    pub mac: [u8; 6],
    /// Binding: 0 plain, 1 multi-homing.
    pub mode: u8,
    /// Zero.
    pub pad: u8,
    /// Binding, rejection: the waypoint address.
    pub waypoint: [u8; 4],
    /// Binding: the gateway.
    pub gateway: [u8; 4],
    /// Binding: the responder.
    pub responder: [u8; 4],
    /// Rejection: how long, ms.
    pub duration_ms: u32,
}

impl Notice {
    /// A neighbour learned from ARP.
    pub const NEIGHBOUR: u16 = 1;
    /// A binding claimed by a new connection in a wait state (delayed binding).
    pub const BINDING_CLAIMED: u16 = 2;
    /// A source rejected by this lcore (delayed binding), for the others to reject too.
    pub const SOURCE_REJECTED: u16 = 3;

    const EMPTY: Notice = Notice {
        kind: 0,
        port: 0,
        ip: [0; 4],
        mac: [0; 6],
        mode: 0,
        pad: 0,
        waypoint: [0; 4],
        gateway: [0; 4],
        responder: [0; 4],
        duration_ms: 0,
    };

    /// A neighbour notice.
    pub fn neighbour(port: u16, ip: Ipv4Addr, mac: MacAddr) -> Notice {
        Notice {
            kind: Notice::NEIGHBOUR,
            port,
            ip: ip.octets(),
            mac: mac.0,
            ..Notice::EMPTY
        }
    }

    /// A binding claimed on this lcore, for the others to install (dynamic).
    pub fn binding_claimed(b: &Binding) -> Notice {
        Notice {
            kind: Notice::BINDING_CLAIMED,
            ip: b.initiator.octets(),
            mode: match b.mode {
                Mode::Plain => 0,
                Mode::MultiHoming => 1,
            },
            waypoint: b.waypoint.octets(),
            gateway: b.gateway.octets(),
            responder: b.responder.octets(),
            ..Notice::EMPTY
        }
    }

    /// A source this lcore rejects at `waypoint` (0.0.0.0: everywhere) for `duration_ns`
    /// more (rounded up to a millisecond, at most ~49 days).
    pub fn source_rejected(source: Ipv4Addr, waypoint: Ipv4Addr, duration_ns: u64) -> Notice {
        Notice {
            kind: Notice::SOURCE_REJECTED,
            ip: source.octets(),
            waypoint: waypoint.octets(),
            duration_ms: u32::try_from(duration_ns.div_ceil(1_000_000)).unwrap_or(u32::MAX),
            ..Notice::EMPTY
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
            Notice::BINDING_CLAIMED => Some(Command::AddBinding(Binding {
                initiator: Ipv4Addr::from(self.ip),
                waypoint: Ipv4Addr::from(self.waypoint),
                gateway: Ipv4Addr::from(self.gateway),
                responder: Ipv4Addr::from(self.responder),
                mode: if self.mode == 1 {
                    Mode::MultiHoming
                } else {
                    Mode::Plain
                },
                pinned: false,
            })),
            Notice::SOURCE_REJECTED => Some(Command::RejectSource {
                source: Ipv4Addr::from(self.ip),
                waypoint: Ipv4Addr::from(self.waypoint),
                duration_ns: u64::from(self.duration_ms) * 1_000_000,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_to_commands() {
        assert_eq!(std::mem::size_of::<Notice>(), 32);
        let b = Binding {
            initiator: Ipv4Addr::new(198, 51, 100, 10),
            waypoint: Ipv4Addr::new(203, 0, 113, 100),
            gateway: Ipv4Addr::new(192, 0, 2, 2),
            responder: Ipv4Addr::new(10, 0, 0, 2),
            mode: Mode::MultiHoming,
            pinned: false,
        };
        assert_eq!(
            Notice::binding_claimed(&b).to_command(),
            Some(Command::AddBinding(b))
        );
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let ip = Ipv4Addr::new(10, 0, 0, 9);
        assert_eq!(
            Notice::neighbour(1, ip, mac).to_command(),
            Some(Command::LearnNeighbour { port: 1, ip, mac })
        );
        let (s, w) = (Ipv4Addr::new(198, 51, 100, 9), Ipv4Addr::UNSPECIFIED);
        assert_eq!(
            Notice::source_rejected(s, w, 1_500_001).to_command(),
            Some(Command::RejectSource {
                source: s,
                waypoint: w,
                duration_ns: 2_000_000
            })
        );
        assert_eq!(
            Notice::source_rejected(s, w, u64::MAX).duration_ms,
            u32::MAX
        );
        assert_eq!(Notice::EMPTY.to_command(), None);
    }
}
