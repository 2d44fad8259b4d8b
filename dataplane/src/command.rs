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
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommandError::TableFull => "table full",
            CommandError::NotFound => "no such entry",
            CommandError::BadPort => "no such port",
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
