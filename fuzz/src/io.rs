//! [`FuzzIo`]: the `Io` the role targets hand to `Role::handle`.
//!
//! It checks every frame a role sends, ends every buffer it is given
//! ([`CountedBuf::end`]) and hands out buffers from a pool filled before each call, so
//! that neither it nor the role allocates while the harness counts allocations.
//!
//! Checks on a frame sent (`forward` or `resolve`) on `port`:
//! - `port` exists; the frame holds an Ethernet header whose source is `port`'s MAC;
//! - an IPv4 frame passes `ipv4::Packet::new_checked`, its header checksum verifies and
//!   its total length is at most `port`'s MTU (fragmentation happened);
//! - when the frame the role received had valid transport checksums, so has every
//!   unfragmented datagram it sends ([`crate::fixup::deep_l4_ok`]).
//!
//! `handoff` must name another existing lcore. Invariant: no method allocates.

use aves_dataplane::addr::MacAddr;
use aves_dataplane::counters::DropReason;
use aves_dataplane::pipeline::Io;
use aves_dataplane::wire::{ethernet, ipv4};
use std::net::Ipv4Addr;

use crate::bufs::{CountedBuf, Origin};
use crate::fixup::{deep_l4_ok, ETH};

/// One port as the checks see it.
#[derive(Clone, Copy, Debug)]
pub struct PortInfo {
    /// The port's MAC: the source of every frame sent on it.
    pub mac: MacAddr,
    /// Its IP MTU.
    pub mtu: u16,
}

/// Most ARP resolutions remembered per call (the harness asks the role for a request).
pub const MAX_RESOLVES: usize = 8;

/// Bytes of sent frames logged per call.
pub const LOG_BYTES: usize = 256 * 1024;
/// Frames logged per call.
pub const LOG_FRAMES: usize = 512;

/// The fuzzing `Io`.
#[derive(Debug)]
pub struct FuzzIo {
    /// The ports.
    pub ports: Vec<PortInfo>,
    /// The tunnel UDP port (for the checksum oracle).
    pub tunnel_port: u16,
    /// This lcore and the number of lcores (for `handoff`).
    pub lcore: usize,
    /// Number of lcores.
    pub lcores: usize,
    /// Buffers `alloc` hands out; refilled by the harness before each call.
    pub pool: Vec<CountedBuf>,
    /// The received frame had valid transport checksums: so must the frames sent.
    pub expect_l4_ok: bool,
    /// (port, next hop) of frames parked for ARP during this call.
    pub resolves: [Option<(u16, Ipv4Addr)>; MAX_RESOLVES],
    /// Frames sent (forward and resolve) since the start.
    pub sent: u64,
    /// Copies of the frames sent during the current call, for checks that allocate
    /// (run after the call): bytes back to back, and (port, start, length). Both are
    /// reserved up front and never grow: frames that do not fit are not logged.
    pub log: Vec<u8>,
    /// Index of [`FuzzIo::log`].
    pub logged: Vec<(u16, usize, usize)>,
    /// Frames dropped through the `Io` since the start.
    pub dropped: u64,
    /// Frames handed off since the start.
    pub handed_off: u64,
}

impl FuzzIo {
    /// An `Io` for `ports`, with an empty pool.
    pub fn new(ports: Vec<PortInfo>, tunnel_port: u16, lcore: usize, lcores: usize) -> Self {
        FuzzIo {
            ports,
            tunnel_port,
            lcore,
            lcores,
            pool: Vec::with_capacity(512),
            expect_l4_ok: false,
            resolves: [None; MAX_RESOLVES],
            sent: 0,
            log: Vec::with_capacity(LOG_BYTES),
            logged: Vec::with_capacity(LOG_FRAMES),
            dropped: 0,
            handed_off: 0,
        }
    }

    /// Fills the pool to `n` buffers (outside any no-allocation region).
    pub fn refill(&mut self, n: usize) {
        while self.pool.len() > n {
            if let Some(b) = self.pool.pop() {
                b.discard();
            }
        }
        while self.pool.len() < n {
            self.pool.push(CountedBuf::new(&[], Origin::Alloc));
        }
    }

    /// Ends every pooled buffer.
    pub fn empty_pool(&mut self) {
        self.refill(0);
    }

    /// Forgets the frames logged (start of a call).
    pub fn clear_log(&mut self) {
        self.log.clear();
        self.logged.clear();
    }

    fn log_frame(&mut self, frame: &[u8], port: u16) {
        let start = self.log.len();
        if start + frame.len() <= self.log.capacity() && self.logged.len() < self.logged.capacity()
        {
            self.log.extend_from_slice(frame);
            self.logged.push((port, start, frame.len()));
        }
    }

    fn check_sent(&self, frame: &[u8], port: u16, what: &str) {
        if crate::records::trace() {
            eprintln!(
                "  {what} port {port} len {}: {}",
                frame.len(),
                crate::records::hex(frame)
            );
        }
        let Some(p) = self.ports.get(usize::from(port)) else {
            panic!("{what} on port {port}, which does not exist");
        };
        let eth = ethernet::Frame::new_checked(frame)
            .unwrap_or_else(|e| panic!("{what} on port {port}: not an Ethernet frame ({e})"));
        assert_eq!(
            eth.src(),
            p.mac,
            "{what} on port {port}: source MAC is not the port's"
        );
        if eth.ethertype() != ethernet::ethertype::IPV4 {
            return;
        }
        let ip = ipv4::Packet::new_checked(eth.payload())
            .unwrap_or_else(|e| panic!("{what} on port {port}: bad IPv4 header ({e})"));
        assert!(
            ip.verify_checksum(),
            "{what} on port {port}: IPv4 header checksum does not verify"
        );
        assert!(
            ip.total_len() <= p.mtu,
            "{what} on port {port}: {} bytes exceed the MTU {}",
            ip.total_len(),
            p.mtu
        );
        if self.expect_l4_ok {
            assert!(
                deep_l4_ok(&frame[ETH..], self.tunnel_port),
                "{what} on port {port}: a transport checksum broke on the way through"
            );
        }
    }
}

impl Io<CountedBuf> for FuzzIo {
    fn alloc(&mut self) -> Option<CountedBuf> {
        self.pool.pop()
    }

    fn forward(&mut self, buf: CountedBuf, port: u16) {
        self.check_sent(aves_dataplane::buf::PacketBuf::data(&buf), port, "forward");
        self.log_frame(aves_dataplane::buf::PacketBuf::data(&buf), port);
        self.sent += 1;
        buf.end();
    }

    fn resolve(&mut self, buf: CountedBuf, port: u16, next_hop: Ipv4Addr) {
        self.check_sent(aves_dataplane::buf::PacketBuf::data(&buf), port, "resolve");
        self.log_frame(aves_dataplane::buf::PacketBuf::data(&buf), port);
        if let Some(slot) = self.resolves.iter_mut().find(|s| s.is_none()) {
            *slot = Some((port, next_hop));
        }
        self.sent += 1;
        buf.end();
    }

    fn drop_packet(&mut self, buf: CountedBuf, reason: DropReason) {
        if crate::records::trace() {
            eprintln!("  drop {reason:?}");
        }
        self.dropped += 1;
        buf.end();
    }

    fn handoff(&mut self, buf: CountedBuf, lcore: usize, in_port: u16) {
        assert!(
            lcore < self.lcores && lcore != self.lcore,
            "handoff to lcore {lcore} from lcore {} of {}",
            self.lcore,
            self.lcores
        );
        assert!(
            usize::from(in_port) < self.ports.len(),
            "handoff with in_port {in_port}"
        );
        self.handed_off += 1;
        buf.end();
    }
}
