//! Neighbour table and the bounded queue of packets waiting for ARP. (Skeleton.)

use crate::addr::MacAddr;
use crate::buf::PacketBuf;
use std::net::Ipv4Addr;

/// Packets waiting for their next hop's MAC. Fixed capacity, allocated once.
#[derive(Debug)]
pub struct PendingQueue<B> {
    _slots: Vec<Option<B>>,
}

/// What [`PendingQueue::poll`] asks the engine to do.
pub trait PendingSink<B> {
    /// The packet's destination MAC is now filled in: transmit it on `port`.
    fn ready(&mut self, buf: B, port: u16);
    /// The packet waited too long: free it (counted as `NeighbourTimeout` by the queue's caller).
    fn expired(&mut self, buf: B);
    /// Send (or resend) an ARP request for `next_hop` on `port`.
    fn request(&mut self, port: u16, next_hop: Ipv4Addr);
}

impl<B: PacketBuf> PendingQueue<B> {
    /// A queue of `capacity` packets; a packet waits at most `timeout_ns`, and a request
    /// for the same next hop is repeated at most every `retry_ns`.
    pub fn new(capacity: usize, _timeout_ns: u64, _retry_ns: u64) -> Self {
        PendingQueue {
            _slots: (0..capacity).map(|_| None).collect(),
        }
    }

    /// Parks `buf`. Returns `Err(buf)` when full. Returns `Ok(true)` when the caller
    /// should send an ARP request now (no request for this next hop is outstanding).
    pub fn push(
        &mut self,
        buf: B,
        _port: u16,
        _next_hop: Ipv4Addr,
        _now_ns: u64,
    ) -> Result<bool, B> {
        Err(buf)
    }

    /// Releases packets whose next hop `lookup` now resolves (writing the destination MAC),
    /// expires old ones and asks for ARP retries.
    pub fn poll<S: PendingSink<B>>(
        &mut self,
        _lookup: impl Fn(u16, Ipv4Addr) -> Option<MacAddr>,
        _now_ns: u64,
        _sink: &mut S,
    ) {
    }

    /// Number of parked packets.
    pub fn len(&self) -> usize {
        0
    }

    /// True when nothing is parked.
    pub fn is_empty(&self) -> bool {
        true
    }

    /// Removes every parked packet (shutdown), handing each to `f`.
    pub fn drain(&mut self, _f: impl FnMut(B)) {}
}
