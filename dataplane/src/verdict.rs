//! What a pipeline decided about one packet.

use crate::counters::DropReason;
use std::net::Ipv4Addr;

/// The outcome of running a pipeline on one packet. The buffer has already been
/// rewritten in place to match (headers, checksums, an ICMP message built from it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the buffer, a complete Ethernet frame, on `port`.
    Forward {
        /// Egress DPDK port id.
        port: u16,
    },
    /// The frame is complete except for its destination MAC, which is the MAC of
    /// `next_hop` on `port`, not yet known: park the buffer and resolve it with ARP.
    Resolve {
        /// Egress DPDK port id.
        port: u16,
        /// The IPv4 next hop whose MAC is needed.
        next_hop: Ipv4Addr,
    },
    /// Hand the packet to the control thread (not used by the router role).
    Punt,
    /// The packet did its job here (e.g. an ARP reply that taught us a neighbour):
    /// free it without counting a drop.
    Consumed,
    /// Free the buffer and count the reason. (If the pipeline also answered with an
    /// ICMP error, it did so by turning this buffer into the error and returning
    /// `Forward`; the drop reason is then counted by the pipeline itself.)
    Drop(DropReason),
}
