//! Sans-IO pipelines: one per role.
//!
//! A role ([`Role`]) takes ownership of each received buffer, with the ingress port,
//! `now` (ns on a monotonic clock) and the core's counters, and hands every buffer it
//! does not keep to an [`Io`]: forward it, park it for ARP, or drop it with a reason. It
//! may also take fresh buffers from the `Io` (fragments, reassembled datagrams) and keep
//! buffers for a while (reassembly), returning them on [`Role::drain`] at shutdown.
//! It never allocates from the heap, locks, panics or calls DPDK.
//!
//! Simple roles work in place and return a [`crate::verdict::Verdict`]; [`deliver`]
//! turns that into the matching `Io` call.
//!
//! Stages that turn one buffer into several or several into one ([`fragment`],
//! [`reassembly`]) take buffers from the caller's `alloc` closure.

pub mod flow;
pub mod fragment;
pub mod gateway;
pub mod nat;
pub mod neighbour;
pub mod ports;
pub mod reassembly;
pub mod route;
pub mod router;
pub mod tunnel;
pub mod waypoint;

use crate::addr::MacAddr;
use crate::buf::PacketBuf;
use crate::command::{Command, CommandError, Notice};
use crate::counters::{CoreCounters, DropReason};
use crate::verdict::Verdict;
use std::net::Ipv4Addr;

/// What a role does with buffers: the engine's side of the pipeline.
pub trait Io<B> {
    /// A fresh, empty buffer from the pool (None when the pool is empty).
    fn alloc(&mut self) -> Option<B>;
    /// Transmit `buf`, a complete Ethernet frame, on `port`.
    fn forward(&mut self, buf: B, port: u16);
    /// `buf` is complete but for its destination MAC, that of `next_hop` on `port`:
    /// park it until ARP resolves it.
    fn resolve(&mut self, buf: B, port: u16, next_hop: Ipv4Addr);
    /// Free `buf` and count `reason`.
    fn drop_packet(&mut self, buf: B, reason: DropReason);
    /// Give `buf` to the role on lcore `lcore` (its index among the engine's lcores),
    /// which owns the flow's state; it is handled there as if received on `in_port`
    /// (decision 0006).
    fn handoff(&mut self, buf: B, lcore: usize, in_port: u16);
}

/// A role of the engine (router, waypoint, gateway).
pub trait Role<B: PacketBuf> {
    /// Handles one frame received on `in_port`; every buffer ends in `io` or is kept.
    fn handle(
        &mut self,
        buf: B,
        in_port: u16,
        now_ns: u64,
        counters: &CoreCounters,
        io: &mut impl Io<B>,
    );
    /// Applies a control command between bursts.
    fn apply(&mut self, cmd: &Command, now_ns: u64) -> Result<(), CommandError>;
    /// The MAC of `ip` on `port`, if known (releases packets parked for ARP).
    fn neighbour(&self, port: u16, ip: Ipv4Addr, now_ns: u64) -> Option<MacAddr>;
    /// Writes an ARP request for `target` from `port` into an empty buffer.
    fn build_arp_request(&self, buf: &mut B, port: u16, target: Ipv4Addr) -> bool;
    /// Something this lcore learned that the other lcores should know.
    fn pop_learned(&mut self) -> Option<Notice>;
    /// End of a receive burst: work deferred to be done for the whole burst at once
    /// (multi-buffer authentication, decision 0009).
    fn end_burst(&mut self, _now_ns: u64, _counters: &CoreCounters, _io: &mut impl Io<B>) {}
    /// Timers (expiry of kept state), called about every millisecond.
    fn tick(&mut self, _now_ns: u64, _counters: &CoreCounters, _io: &mut impl Io<B>) {}
    /// Writes how full its tables are into `counters` ([`CoreCounters::set_table`]).
    /// The engine calls it about every millisecond, after [`Role::tick`]; it only
    /// reads lengths the tables keep (O(1)).
    fn report(&self, _counters: &CoreCounters) {}
    /// Shutdown: hands back every buffer the role keeps.
    fn drain(&mut self, _f: &mut dyn FnMut(B)) {}
}

/// Carries out an in-place verdict for `buf`.
#[inline]
pub fn deliver<B>(buf: B, verdict: Verdict, io: &mut impl Io<B>) {
    match verdict {
        Verdict::Forward { port } => io.forward(buf, port),
        Verdict::Resolve { port, next_hop } => io.resolve(buf, port, next_hop),
        Verdict::Drop(reason) => io.drop_packet(buf, reason),
        Verdict::Consumed => drop(buf),
        // No role punts yet; count it rather than leak.
        Verdict::Punt => io.drop_packet(buf, DropReason::LocalUnhandled),
    }
}

/// An [`Io`] that records what happened, for tests of roles.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct RecordingIo {
    /// Forwarded: (port, frame bytes).
    pub forwarded: Vec<(u16, Vec<u8>)>,
    /// Parked for ARP: (port, next hop, frame bytes).
    pub resolving: Vec<(u16, Ipv4Addr, Vec<u8>)>,
    /// Dropped reasons.
    pub dropped: Vec<DropReason>,
    /// Handed off: (lcore, in_port, frame bytes).
    pub handed_off: Vec<(usize, u16, Vec<u8>)>,
    /// Buffers handed out by `alloc`.
    pub allocated: usize,
    /// Buffers `alloc` may still hand out.
    pub budget: usize,
}

#[cfg(test)]
impl Io<crate::buf::VecBuf> for RecordingIo {
    fn alloc(&mut self) -> Option<crate::buf::VecBuf> {
        if self.budget == 0 {
            return None;
        }
        self.budget -= 1;
        self.allocated += 1;
        Some(crate::buf::VecBuf::from_slice(&[]))
    }
    fn forward(&mut self, buf: crate::buf::VecBuf, port: u16) {
        self.forwarded.push((port, buf.data().to_vec()));
    }
    fn resolve(&mut self, buf: crate::buf::VecBuf, port: u16, next_hop: Ipv4Addr) {
        self.resolving.push((port, next_hop, buf.data().to_vec()));
    }
    fn drop_packet(&mut self, _buf: crate::buf::VecBuf, reason: DropReason) {
        self.dropped.push(reason);
    }
    fn handoff(&mut self, buf: crate::buf::VecBuf, lcore: usize, in_port: u16) {
        self.handed_off.push((lcore, in_port, buf.data().to_vec()));
    }
}

#[cfg(test)]
mod attack_tests;
#[cfg(test)]
mod aves_tests;
