//! The DPDK lcore loop, in the style of DPDK's `l3fwd`.
//!
//! One [`Worker`] per lcore. Each worker owns RX queue `q` and TX queue `q` of every
//! port (its queue index), its own copy of the router tables and its own counters:
//! nothing is shared with other workers, so nothing on the fast path locks.
//!
//! Per iteration: apply pending control commands (between bursts, never mid-burst) →
//! for each port, rx burst → pipeline per packet → per-port TX buffers → release packets
//! whose next hop ARP resolved → drain TX buffers when full, on a TSC deadline (~100 µs)
//! and before sleeping → idle back-off.
//!
//! What the NIC refuses at TX is freed and counted (`tx_full`), as in the DPDK examples.
//! On stop every buffer is flushed or freed, so the mempool gets every mbuf back.

use crate::buf::PacketBuf;
use crate::command::{Envelope, Notice, Outcome};
use crate::counters::{CoreCounters, DropReason, Table, MAX_PORTS};
use crate::pipeline::neighbour::{PendingQueue, PendingSink};
use crate::pipeline::{Io, Role};
use dpdk_sys::ring::{Consumer, MbufConsumer, MbufProducer, Producer, ValueProducer};
use dpdk_sys::{Burst, Mbuf, Mempool, RxQueue, TxQueue};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How many packets ahead of the one being handled the receive loop prefetches (data
/// and headroom lines; DPDK's l3fwd uses 3 to 4).
const PREFETCH_AHEAD: usize = 3;

impl PacketBuf for Mbuf {
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    fn prepend(&mut self, n: usize) -> bool {
        Mbuf::prepend(self, n)
    }
    fn adj(&mut self, n: usize) -> bool {
        Mbuf::adj(self, n)
    }
    fn append(&mut self, n: usize) -> bool {
        Mbuf::append(self, n)
    }
    fn trim(&mut self, n: usize) -> bool {
        Mbuf::trim(self, n)
    }
}

/// What a worker does when a poll round receives nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Never pause: lowest latency, one core burnt per lcore.
    Busy,
    /// After `after_empty_polls` empty rounds, sleep 1 µs, doubling up to `max_sleep_us`
    /// while idle; the first packet resets it. Lets several engines share few cores.
    Sleep {
        /// Empty rounds before sleeping.
        after_empty_polls: u32,
        /// Longest sleep, µs.
        max_sleep_us: u32,
    },
}

/// Tunables of a worker.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// Idle behaviour.
    pub idle: Idle,
    /// TX buffers are drained at least this often, µs.
    pub tx_drain_us: u64,
    /// Packets that may wait for ARP.
    pub pending_capacity: usize,
    /// How long a packet may wait for ARP, ns.
    pub arp_timeout_ns: u64,
    /// How often an ARP request for the same next hop is repeated, ns.
    pub arp_retry_ns: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            idle: Idle::Sleep {
                after_empty_polls: 128,
                max_sleep_us: 500,
            },
            tx_drain_us: 100,
            pending_capacity: 256,
            arp_timeout_ns: 3_000_000_000,
            arp_retry_ns: 1_000_000_000,
        }
    }
}

/// Everything one lcore needs. Built on the main thread, moved to the lcore.
pub struct Worker<R> {
    /// The lcore it runs on (for command outcomes).
    pub lcore: u32,
    /// RX queue of each port, indexed by our port index.
    pub rx: Vec<RxQueue>,
    /// TX queue of each port, indexed by our port index.
    pub tx: Vec<TxQueue>,
    /// This core's role and its tables.
    pub role: R,
    /// Commands from control.
    pub commands: Consumer<Envelope>,
    /// Commands sent back with their outcome.
    pub acks: Producer<Envelope>,
    /// What this lcore learned (neighbours), for control to pass to the other lcores.
    pub notices: ValueProducer<Notice>,
    /// Handoff rings to the other lcores, indexed by lcore index (None for this one).
    pub handoff_tx: Vec<Option<MbufProducer>>,
    /// Handoff rings from the other lcores.
    pub handoff_rx: Vec<MbufConsumer>,
    /// This core's counters (control reads them).
    pub counters: Arc<CoreCounters>,
    /// Pool for packets the engine creates (ARP requests, fragments).
    pub pool: Arc<Mempool>,
    /// Set by the signal handler; checked once per iteration.
    pub stop: Arc<AtomicBool>,
    /// Tunables.
    pub config: WorkerConfig,
}

/// The multi-buffer HMAC engine (Intel ipsec-mb, decision 0009) as the roles' burst
/// authenticator: keys are prepared once and cached (a handful per gateway).
pub struct MultiBufferMac {
    mb: dpdk_sys::mb::MultiHmac,
    keys: Vec<(u8, crate::auth::Algorithm, Vec<u8>, dpdk_sys::mb::MbKey)>,
}

impl MultiBufferMac {
    /// None when the library cannot run on this CPU (the portable path is used then).
    pub fn new() -> Option<MultiBufferMac> {
        Some(MultiBufferMac {
            mb: dpdk_sys::mb::MultiHmac::new()?,
            keys: Vec::with_capacity(16),
        })
    }
}

impl crate::auth::BurstMac for MultiBufferMac {
    fn tag_burst(&mut self, key: &crate::auth::Key, msgs: &[&[u8]], tags: &mut [[u8; 16]]) -> bool {
        let alg = match key.algorithm() {
            crate::auth::Algorithm::HmacMd5 => dpdk_sys::mb::MbAlgorithm::HmacMd5,
            crate::auth::Algorithm::HmacSha256_128 => dpdk_sys::mb::MbAlgorithm::HmacSha256_128,
            #[cfg(feature = "bench-null-auth")]
            crate::auth::Algorithm::Null => {
                tags.iter_mut().for_each(|t| *t = [0; 16]);
                return tags.len() == msgs.len();
            }
        };
        let pos = self.keys.iter().position(|(id, a, secret, _)| {
            *id == key.id() && *a == key.algorithm() && secret.as_slice() == key.secret()
        });
        let pos = match pos {
            Some(p) => p,
            None => {
                // A new key: prepared once (control path: a rollover), at most 16 kept.
                let Some(k) = self.mb.key(alg, key.secret()) else {
                    return false;
                };
                if self.keys.len() >= 16 {
                    self.keys.remove(0);
                }
                self.keys
                    .push((key.id(), key.algorithm(), key.secret().to_vec(), k));
                self.keys.len() - 1
            }
        };
        let Some((_, _, _, k)) = self.keys.get(pos) else {
            return false;
        };
        let mut done = 0;
        for (m, t) in msgs
            .chunks(dpdk_sys::mb::MAX_BURST)
            .zip(tags.chunks_mut(dpdk_sys::mb::MAX_BURST))
        {
            let n = self.mb.tag_burst(k, m, t);
            if n != m.len() {
                return false;
            }
            done += n;
        }
        done == msgs.len()
    }
}

/// Per-port TX buffer with the bytes it holds, so TX byte counters are exact.
struct TxBuf {
    burst: Burst,
    bytes: u64,
}

/// Monotonic ns from the TSC.
struct Clock {
    hz: u128,
}

impl Clock {
    fn now_ns(&self, tsc: u64) -> u64 {
        (tsc as u128 * 1_000_000_000 / self.hz) as u64
    }
}

/// Sends what `buf` holds on `txq`; frees and counts what the NIC refused.
fn flush(txq: &mut TxQueue, buf: &mut TxBuf, port: u16, counters: &CoreCounters) {
    if buf.burst.is_empty() {
        return;
    }
    let sent = txq.tx_burst(&mut buf.burst);
    let mut unsent_bytes = 0u64;
    while let Some(m) = buf.burst.pop() {
        unsent_bytes += m.len() as u64;
        counters.count_drop(DropReason::TxFull);
    }
    if let Some(p) = counters.ports.get(port as usize) {
        p.tx_packets.add(sent as u64);
        p.tx_bytes.add(buf.bytes.saturating_sub(unsent_bytes));
    }
    buf.bytes = 0;
}

/// Queues `m` for `port`, draining first when the buffer is full.
fn enqueue(txq: &mut [TxQueue], bufs: &mut [TxBuf], port: u16, m: Mbuf, counters: &CoreCounters) {
    let (Some(q), Some(b)) = (txq.get_mut(port as usize), bufs.get_mut(port as usize)) else {
        counters.count_drop(DropReason::BadPort);
        return;
    };
    if b.burst.is_full() {
        flush(q, b, port, counters);
    }
    let len = m.len() as u64;
    match b.burst.push(m) {
        Ok(()) => b.bytes += len,
        Err(_m) => counters.count_drop(DropReason::TxFull),
    }
}

/// Next hops to send ARP requests for after the current burst (fixed capacity; more
/// are asked for on the wait queue's next retry).
struct ArpWanted {
    items: [(u16, Ipv4Addr); 32],
    len: usize,
}

impl ArpWanted {
    fn push(&mut self, port: u16, nh: Ipv4Addr) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = (port, nh);
            self.len += 1;
        }
    }
}

/// The engine's [`Io`]: TX buffers, the ARP wait queue and the mempool.
struct EngineIo<'a> {
    pool: &'a Mempool,
    handoff: &'a mut [Option<MbufProducer>],
    txq: &'a mut [TxQueue],
    bufs: &'a mut [TxBuf],
    pending: &'a mut PendingQueue<Mbuf>,
    arp: &'a mut ArpWanted,
    counters: &'a CoreCounters,
    now: u64,
}

impl Io<Mbuf> for EngineIo<'_> {
    fn alloc(&mut self) -> Option<Mbuf> {
        let m = self.pool.alloc();
        if m.is_none() {
            self.counters.count_drop(DropReason::NoMbuf);
        }
        m
    }
    fn forward(&mut self, buf: Mbuf, port: u16) {
        enqueue(self.txq, self.bufs, port, buf, self.counters);
    }
    fn resolve(&mut self, buf: Mbuf, port: u16, next_hop: Ipv4Addr) {
        match self.pending.push(buf, port, next_hop, self.now) {
            Ok(true) => self.arp.push(port, next_hop),
            Ok(false) => {}
            Err(m) => {
                drop(m);
                self.counters.count_drop(DropReason::NeighbourQueueFull);
            }
        }
    }
    fn drop_packet(&mut self, buf: Mbuf, reason: DropReason) {
        drop(buf);
        self.counters.count_drop(reason);
    }
    fn handoff(&mut self, mut buf: Mbuf, lcore: usize, in_port: u16) {
        let Some(Some(ring)) = self.handoff.get_mut(lcore) else {
            drop(buf);
            self.counters.count_drop(DropReason::HandoffFailed);
            return;
        };
        buf.set_port(in_port);
        match ring.send(buf) {
            Ok(()) => self.counters.events.handed_off.inc(),
            Err(m) => {
                drop(m);
                self.counters.count_drop(DropReason::HandoffFailed);
            }
        }
    }
}

/// Sends an ARP request for `target` on `port` in a fresh mbuf.
fn send_arp_request<R: Role<Mbuf>>(
    role: &R,
    pool: &Mempool,
    txq: &mut [TxQueue],
    bufs: &mut [TxBuf],
    port: u16,
    target: Ipv4Addr,
    counters: &CoreCounters,
) {
    let Some(mut m) = pool.alloc() else {
        counters.count_drop(DropReason::NoMbuf);
        return;
    };
    if role.build_arp_request(&mut m, port, target) {
        counters.events.arp_requests_sent.inc();
        enqueue(txq, bufs, port, m, counters);
    }
}

struct Sink<'a, R> {
    role: &'a R,
    pool: &'a Mempool,
    txq: &'a mut [TxQueue],
    bufs: &'a mut [TxBuf],
    counters: &'a CoreCounters,
}

impl<R: Role<Mbuf>> PendingSink<Mbuf> for Sink<'_, R> {
    fn ready(&mut self, buf: Mbuf, port: u16) {
        enqueue(self.txq, self.bufs, port, buf, self.counters);
    }
    fn expired(&mut self, buf: Mbuf) {
        drop(buf);
        self.counters.count_drop(DropReason::NeighbourTimeout);
    }
    fn request(&mut self, port: u16, next_hop: Ipv4Addr) {
        send_arp_request(
            self.role,
            self.pool,
            self.txq,
            self.bufs,
            port,
            next_hop,
            self.counters,
        );
    }
}

impl<R: Role<Mbuf>> Worker<R> {
    /// Runs until `stop` is set. Returns 0 (the lcore's exit code).
    pub fn run(self) -> i32 {
        let Worker {
            lcore,
            mut rx,
            mut tx,
            mut role,
            mut commands,
            mut acks,
            mut notices,
            mut handoff_tx,
            mut handoff_rx,
            counters,
            pool,
            stop,
            config,
        } = self;
        let n_ports = rx.len().min(tx.len()).min(MAX_PORTS);
        let clock = Clock {
            hz: u128::from(dpdk_sys::tsc_hz().max(1)),
        };
        let drain_tsc = dpdk_sys::tsc_hz() / 1_000_000 * config.tx_drain_us;
        let tick_tsc = dpdk_sys::tsc_hz() / 1_000;
        let mut bufs: Vec<TxBuf> = (0..n_ports)
            .map(|_| TxBuf {
                burst: Burst::new(),
                bytes: 0,
            })
            .collect();
        let mut pending: PendingQueue<Mbuf> = PendingQueue::new(
            config.pending_capacity,
            config.arp_timeout_ns,
            config.arp_retry_ns,
        );
        let mut arp = ArpWanted {
            items: [(0, Ipv4Addr::UNSPECIFIED); 32],
            len: 0,
        };
        let mut rx_burst = Burst::new();
        // An ack the ring had no room for; no command is applied until it is sent.
        let mut unsent_ack: Option<Box<Envelope>> = None;
        let mut last_drain = dpdk_sys::tsc();
        let mut last_tick = last_drain;
        let mut empty_rounds = 0u32;
        let mut sleep_us = 1u32;

        while !stop.load(Ordering::Relaxed) {
            let tsc = dpdk_sys::tsc();
            let now = clock.now_ns(tsc);

            // Control commands, between bursts.
            if let Some(a) = unsent_ack.take() {
                if let Err(a) = acks.send(a) {
                    unsent_ack = Some(a);
                }
            }
            while unsent_ack.is_none() {
                let Some(mut env) = commands.recv() else {
                    break;
                };
                let result = role.apply(&env.cmd, now);
                env.outcome = Some(Outcome { lcore, result });
                counters.events.commands_applied.inc();
                if let Err(a) = acks.send(env) {
                    unsent_ack = Some(a);
                }
            }

            let mut received = 0usize;
            {
                let mut io = EngineIo {
                    pool: &pool,
                    handoff: &mut handoff_tx,
                    txq: &mut tx,
                    bufs: &mut bufs,
                    pending: &mut pending,
                    arp: &mut arp,
                    counters: &counters,
                    now,
                };
                for (in_port, rxq) in rx.iter_mut().enumerate().take(n_ports) {
                    let in_port = in_port as u16;
                    let n = rxq.rx_burst(&mut rx_burst);
                    received += n;
                    let mut packets = rx_burst.drain();
                    while let Some(m) = packets.next() {
                        // The data and headroom of a packet a few places on are
                        // loaded while this one is handled (docs/performance.md).
                        packets.prefetch_ahead(PREFETCH_AHEAD);
                        counters.rx(in_port, m.pkt_len());
                        if !m.is_contiguous() {
                            drop(m);
                            counters.count_drop(DropReason::Segmented);
                            continue;
                        }
                        role.handle(m, in_port, now, &counters, &mut io);
                    }
                    if n > 0 {
                        role.end_burst(now, &counters, &mut io);
                    }
                }
                // Packets other lcores handed to us (flows whose state we own).
                for ring in handoff_rx.iter_mut() {
                    for _ in 0..dpdk_sys::BURST_SIZE {
                        let Some(m) = ring.recv() else {
                            break;
                        };
                        received += 1;
                        let in_port = m.port();
                        role.handle(m, in_port, now, &counters, &mut io);
                    }
                }
                role.end_burst(now, &counters, &mut io);
                if tsc.wrapping_sub(last_tick) >= tick_tsc {
                    role.tick(now, &counters, &mut io);
                    role.report(&counters);
                    counters.set_table(Table::Pending, io.pending.len());
                    last_tick = tsc;
                }
            }
            for i in 0..arp.len.min(arp.items.len()) {
                let (port, nh) = arp.items[i];
                send_arp_request(&role, &pool, &mut tx, &mut bufs, port, nh, &counters);
            }
            arp.len = 0;

            // Tell control what this burst taught us; a full ring loses the notice (the
            // other lcores then learn from their own ARP traffic).
            while let Some(n) = role.pop_learned() {
                let _ = notices.send(n);
            }

            if !pending.is_empty() {
                let mut sink = Sink {
                    role: &role,
                    pool: &pool,
                    txq: &mut tx,
                    bufs: &mut bufs,
                    counters: &counters,
                };
                pending.poll(|p, ip| role.neighbour(p, ip, now), now, &mut sink);
            }

            let idle = received == 0;
            if tsc.wrapping_sub(last_drain) >= drain_tsc || idle {
                for (port, (q, b)) in tx.iter_mut().zip(bufs.iter_mut()).enumerate() {
                    flush(q, b, port as u16, &counters);
                }
                last_drain = tsc;
            }

            if idle {
                counters.events.idle_polls.inc();
                empty_rounds = empty_rounds.saturating_add(1);
                if let Idle::Sleep {
                    after_empty_polls,
                    max_sleep_us,
                } = config.idle
                {
                    if empty_rounds > after_empty_polls {
                        std::thread::sleep(Duration::from_micros(u64::from(sleep_us)));
                        sleep_us = sleep_us.saturating_mul(2).min(max_sleep_us.max(1));
                    }
                }
            } else {
                counters.events.busy_polls.inc();
                counters
                    .events
                    .busy_cycles
                    .add(dpdk_sys::tsc().wrapping_sub(tsc));
                empty_rounds = 0;
                sleep_us = 1;
            }
        }

        // Shutdown: flush what is queued, free what waits for ARP or is kept by the role.
        for (port, (q, b)) in tx.iter_mut().zip(bufs.iter_mut()).enumerate() {
            flush(q, b, port as u16, &counters);
        }
        pending.drain(|m| {
            drop(m);
            counters.count_drop(DropReason::NeighbourTimeout);
        });
        role.drain(&mut drop);
        if let Some(a) = unsent_ack.take() {
            let _ = acks.send(a);
        }
        0
    }
}
