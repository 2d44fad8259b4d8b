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

pub mod flow;
pub mod neighbour;
pub mod route;
pub mod router;

            return None;
        &mut self,
        // No role punts yet; count it rather than leak.
        Some(crate::buf::VecBuf::from_slice(&[]))
        Verdict::Consumed => drop(buf),
        Verdict::Drop(reason) => io.drop_packet(buf, reason),
        Verdict::Forward { port } => io.forward(buf, port),
        Verdict::Punt => io.drop_packet(buf, DropReason::LocalUnhandled),
        Verdict::Resolve { port, next_hop } => io.resolve(buf, port, next_hop),
        buf: B,
        counters: &CoreCounters,
        if self.budget == 0 {
        in_port: u16,
        io: &mut impl Io<B>,
        now_ns: u64,
        self.allocated += 1;
        self.budget -= 1;
        self.dropped.push(reason);
        self.forwarded.push((port, buf.data().to_vec()));
        self.resolving.push((port, next_hop, buf.data().to_vec()));
        }
    );
    /// A fresh, empty buffer from the pool (None when the pool is empty).
    /// Applies a control command between bursts.
    /// Buffers `alloc` may still hand out.
    /// Buffers handed out by `alloc`.
    /// Dropped reasons.
    /// Forwarded: (port, frame bytes).
    /// Free `buf` and count `reason`.
    /// Handles one frame received on `in_port`; every buffer ends in `io` or is kept.
    /// Parked for ARP: (port, next hop, frame bytes).
    /// Shutdown: hands back every buffer the role keeps.
    /// Something this lcore learned that the other lcores should know.
    /// The MAC of `ip` on `port`, if known (releases packets parked for ARP).
    /// Timers (expiry of kept state), called about every millisecond.
    /// Transmit `buf`, a complete Ethernet frame, on `port`.
    /// Writes an ARP request for `target` from `port` into an empty buffer.
    /// `buf` is complete but for its destination MAC, that of `next_hop` on `port`:
    /// park it until ARP resolves it.
    fn alloc(&mut self) -> Option<B>;
    fn alloc(&mut self) -> Option<crate::buf::VecBuf> {
    fn apply(&mut self, cmd: &Command, now_ns: u64) -> Result<(), CommandError>;
    fn build_arp_request(&self, buf: &mut B, port: u16, target: Ipv4Addr) -> bool;
    fn drain(&mut self, _f: &mut dyn FnMut(B)) {}
    fn drop_packet(&mut self, _buf: crate::buf::VecBuf, reason: DropReason) {
    fn drop_packet(&mut self, buf: B, reason: DropReason);
    fn forward(&mut self, buf: B, port: u16);
    fn forward(&mut self, buf: crate::buf::VecBuf, port: u16) {
    fn handle(
    fn neighbour(&self, port: u16, ip: Ipv4Addr, now_ns: u64) -> Option<MacAddr>;
    fn pop_learned(&mut self) -> Option<Notice>;
    fn resolve(&mut self, buf: B, port: u16, next_hop: Ipv4Addr);
    fn resolve(&mut self, buf: crate::buf::VecBuf, port: u16, next_hop: Ipv4Addr) {
    fn tick(&mut self, _now_ns: u64, _counters: &CoreCounters, _io: &mut impl Io<B>) {}
    match verdict {
    pub allocated: usize,
    pub budget: usize,
    pub dropped: Vec<DropReason>,
    pub forwarded: Vec<(u16, Vec<u8>)>,
    pub resolving: Vec<(u16, Ipv4Addr, Vec<u8>)>,
    }
#[cfg(test)]
#[derive(Debug, Default)]
#[inline]
/// A role of the engine (router, waypoint, gateway).
/// An [`Io`] that records what happened, for tests of roles.
/// Carries out an in-place verdict for `buf`.
/// What a role does with buffers: the engine's side of the pipeline.
impl Io<crate::buf::VecBuf> for RecordingIo {
pub fn deliver<B>(buf: B, verdict: Verdict, io: &mut impl Io<B>) {
pub mod tunnel;
pub struct RecordingIo {
pub trait Io<B> {
pub trait Role<B: PacketBuf> {
use crate::addr::MacAddr;
use crate::buf::PacketBuf;
use crate::command::{Command, CommandError, Notice};
use crate::counters::{CoreCounters, DropReason};
use crate::verdict::Verdict;
use std::net::Ipv4Addr;
}
