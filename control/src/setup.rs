//! The waypoint's SETUP service (AVES paper §3.3.1, §3.3.2, §5.1, §5.2) and the client
//! that `aves setup` uses.
//!
//! [`SetupService`] is sans-IO: it takes a datagram, its sender and the time, asks the
//! lcores through [`Lcores`] and returns the answer to send, if any. The daemon runs it
//! on a UDP socket in the control thread ([`serve_udp`]) and, when a DNS server is
//! co-located with the waypoint (`[dns]` in the waypoint's config), on an in-process
//! channel ([`serve_local`], [`SetupService::handle_local`]: the request never leaves
//! the process, so there is no HMAC, no replay window and no answer cache, and the rest
//! is the same code). Both paths share one service behind a mutex. Tests run it with a
//! fake engine.
//!
//! Rules:
//! - Only authentic SETUPs are answered (`proto::Verifier`); everything else is counted
//!   by reason and dropped without an answer, so the service cannot be used to reflect
//!   traffic.
//! - Admission (§3.3.1): a SETUP for initiator A at waypoint address W is accepted iff
//!   every lcore accepts `AddBinding(A, W → R, B)`, i.e. the pair is free or bound to the
//!   same responder. The lcores decide, on their own tables, so a binding made by an
//!   operator or by traffic is respected. When some lcores accepted and others refused,
//!   the accepted ones are undone (`DelBinding` of exactly that responder) before the
//!   REJECT.
//! - A retry (same key, sender and serial, same request) within
//!   [`ServiceConfig::answer_cache_us`] gets the first answer again, freshly sealed,
//!   and is not applied twice.
//! - SETUPs for a waypoint address in its delayed-binding wait state are ignored (§5.2:
//!   "SETUP messages sent to IPW are ignored"), except retries of the one that started
//!   it, which get its ACCEPT again.
//! - The cache and the wait-state map are bounded ([`ServiceConfig::answer_cache_size`],
//!   and the number of pool addresses).

use crate::proto::{
    self, Header, InitiatorKind, Message, ProtoError, RejectReason, Sequencer, Setup, Verifier,
    VerifierConfig,
};
use aves_dataplane::addr::Ipv4Range;
use aves_dataplane::auth::Key;
use aves_dataplane::command::{Binding, Command, CommandError, WaitSpec};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::{debug, info, warn};

/// Microseconds since the Unix epoch: the clock sequences are read from.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The lcores, as the service sees them.
pub trait Lcores {
    /// Applies `cmd` on every lcore and returns each one's result, or `None` when some
    /// lcore did not answer in time (or its command ring was full).
    fn apply(&mut self, cmd: &Command) -> Option<Vec<Result<(), CommandError>>>;
}

/// Delayed binding settings (§3.3.2, Figure 6; §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelayedBinding {
    /// How long a waypoint address waits for the initiator after an ACCEPT (Twait).
    pub wait_us: u64,
}

/// The service's configuration.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The waypoint addresses (every port's pools).
    pub pools: Vec<Ipv4Range>,
    /// Gateways this waypoint holds a tunnel key for.
    pub gateways: Vec<Ipv4Addr>,
    /// Message checks.
    pub verifier: VerifierConfig,
    /// How long an answer is kept for retries, µs.
    pub answer_cache_us: u64,
    /// Most answers kept.
    pub answer_cache_size: usize,
    /// Delayed binding; `None` refuses SETUPs that need it with `unsupported`.
    pub delayed: Option<DelayedBinding>,
}

impl ServiceConfig {
    /// Defaults for everything but the addresses.
    pub fn new(pools: Vec<Ipv4Range>, gateways: Vec<Ipv4Addr>) -> ServiceConfig {
        ServiceConfig {
            pools,
            gateways,
            verifier: VerifierConfig::default(),
            answer_cache_us: 10_000_000,
            answer_cache_size: 4096,
            delayed: Some(DelayedBinding { wait_us: 2_000_000 }),
        }
    }
}

/// What the service counted. Read by `aves ctl stats` while the service runs.
#[derive(Debug, Default)]
pub struct SetupCounters {
    /// Messages refused, by [`ProtoError`].
    pub refused: [AtomicU64; ProtoError::COUNT],
    /// Authentic messages that are not SETUPs (a waypoint only serves SETUP).
    pub unexpected_type: AtomicU64,
    /// Authentic SETUPs received over UDP.
    pub setups: AtomicU64,
    /// SETUPs handed over in-process by the co-located DNS server ([`serve_local`]: no
    /// UDP, no HMAC). Counted here instead of `setups`; their answers are counted with
    /// the others (`accepted`, `rejected`, `ignored_waiting`).
    pub local: AtomicU64,
    /// ACCEPTs sent for new requests.
    pub accepted: AtomicU64,
    /// REJECTs sent for new requests, by [`RejectReason`] (code − 1).
    pub rejected: [AtomicU64; RejectReason::ALL.len()],
    /// SETUPs ignored because their waypoint address was in a wait state.
    pub ignored_waiting: AtomicU64,
    /// Retries answered from the cache.
    pub retries_answered: AtomicU64,
    /// Wait states entered (delayed binding).
    pub wait_states: AtomicU64,
}

impl SetupCounters {
    /// The stable text form for `aves ctl stats`: `control NAME N`, every counter.
    pub fn lines(&self) -> Vec<String> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = vec![
            format!("control setup_received {}", g(&self.setups)),
            format!("control setup_local {}", g(&self.local)),
            format!("control setup_accepted {}", g(&self.accepted)),
        ];
        for r in RejectReason::ALL {
            out.push(format!(
                "control setup_rejected_{} {}",
                r.name(),
                g(&self.rejected[r as usize - 1])
            ));
        }
        out.push(format!(
            "control setup_ignored_waiting {}",
            g(&self.ignored_waiting)
        ));
        out.push(format!(
            "control setup_retries_answered {}",
            g(&self.retries_answered)
        ));
        out.push(format!("control wait_states {}", g(&self.wait_states)));
        out.push(format!(
            "control unexpected_type {}",
            g(&self.unexpected_type)
        ));
        for e in ProtoError::ALL {
            out.push(format!(
                "control refused_{} {}",
                e.name(),
                g(&self.refused[e as usize])
            ));
        }
        out
    }

    /// The counters now, for `status` and `/metrics`.
    pub fn totals(&self) -> crate::stats::SetupTotals {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        crate::stats::SetupTotals {
            received: g(&self.setups),
            local: g(&self.local),
            accepted: g(&self.accepted),
            rejected: RejectReason::ALL
                .iter()
                .map(|&r| (r.name(), g(&self.rejected[r as usize - 1])))
                .collect(),
            ignored_waiting: g(&self.ignored_waiting),
            retries_answered: g(&self.retries_answered),
            wait_states: g(&self.wait_states),
            unexpected_type: g(&self.unexpected_type),
            refused: ProtoError::ALL
                .iter()
                .map(|&e| (e.name(), g(&self.refused[e as usize])))
                .collect(),
        }
    }

    fn refuse(&self, e: ProtoError) {
        self.refused[e as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// An answer kept for retries.
#[derive(Debug, Clone, Copy)]
struct Answered {
    request: Setup,
    reply: Message,
    expires_us: u64,
}

/// The waypoint's SETUP service: verification, admission, wait states, answers.
#[derive(Debug)]
pub struct SetupService {
    cfg: ServiceConfig,
    verifier: Verifier,
    sequencer: Sequencer,
    /// The address replies are sent from (the tag covers it).
    local: IpAddr,
    answers: HashMap<(u8, IpAddr, u32), Answered>,
    /// Waypoint address → end of its wait state, µs.
    waits: HashMap<Ipv4Addr, u64>,
}

impl SetupService {
    /// A service answering from `local` with `keys`, started at `start_us`.
    pub fn new(cfg: ServiceConfig, keys: Vec<Key>, local: IpAddr, start_us: u64) -> SetupService {
        SetupService {
            verifier: Verifier::new(keys, cfg.verifier, start_us),
            cfg,
            sequencer: Sequencer::default(),
            local,
            answers: HashMap::new(),
            waits: HashMap::new(),
        }
    }

    /// Handles one datagram from `from` at `now_us`; returns the datagram to send back.
    pub fn handle(
        &mut self,
        datagram: &[u8],
        from: IpAddr,
        now_us: u64,
        lcores: &mut impl Lcores,
        counters: &SetupCounters,
    ) -> Option<Vec<u8>> {
        let (header, msg) = match self.verifier.open(datagram, from, now_us) {
            Ok(x) => x,
            Err(e) => {
                counters.refuse(e);
                debug!(%from, reason = e.name(), "control message refused");
                return None;
            }
        };
        let Message::Setup(setup) = msg else {
            counters.unexpected_type.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        counters.setups.fetch_add(1, Ordering::Relaxed);
        let id = (header.key_id, from, setup.serial);
        if let Some(a) = self.answers.get(&id) {
            if a.expires_us > now_us && a.request == setup {
                counters.retries_answered.fetch_add(1, Ordering::Relaxed);
                let reply = a.reply;
                return Some(self.seal(&reply, &header, now_us));
            }
        }
        let reply = self.admit(&setup, now_us, lcores, counters)?;
        self.remember(id, setup, reply, now_us);
        Some(self.seal(&reply, &header, now_us))
    }

    /// Handles a SETUP handed over in-process by the co-located DNS server at `now_us`:
    /// the same decision and counters as [`SetupService::handle`] after verification
    /// (there is nothing to verify: it never left the process), counted as `local`.
    /// Returns the ACCEPT or REJECT, or `None` when the SETUP is ignored (its waypoint
    /// address is in a wait state). There is no answer cache: the in-process path
    /// loses nothing, so nothing is retried.
    pub fn handle_local(
        &mut self,
        setup: &Setup,
        now_us: u64,
        lcores: &mut impl Lcores,
        counters: &SetupCounters,
    ) -> Option<Message> {
        counters.local.fetch_add(1, Ordering::Relaxed);
        let reply = self.admit(setup, now_us, lcores, counters);
        self.waits.retain(|_, t| *t > now_us);
        reply
    }

    /// The wait-state check, the decision and its counting, shared by both paths.
    fn admit(
        &mut self,
        setup: &Setup,
        now_us: u64,
        lcores: &mut impl Lcores,
        counters: &SetupCounters,
    ) -> Option<Message> {
        if self.waits.get(&setup.waypoint).is_some_and(|&t| t > now_us) {
            counters.ignored_waiting.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let reply = self.decide(setup, now_us, lcores, counters);
        match reply {
            Message::Accept { .. } => counters.accepted.fetch_add(1, Ordering::Relaxed),
            Message::Reject { reason, .. } => {
                counters.rejected[reason as usize - 1].fetch_add(1, Ordering::Relaxed)
            }
            _ => 0,
        };
        Some(reply)
    }

    /// Seals `reply` with the key the request came with.
    fn seal(&mut self, reply: &Message, request: &Header, now_us: u64) -> Vec<u8> {
        let seq = self.sequencer.next(now_us);
        match self.verifier.key(request.key_id) {
            Some(k) => proto::seal(reply, k, seq, self.local),
            None => Vec::new(), // unreachable: the request verified with this key
        }
    }

    fn remember(&mut self, id: (u8, IpAddr, u32), request: Setup, reply: Message, now_us: u64) {
        if self.answers.len() >= self.cfg.answer_cache_size {
            self.answers.retain(|_, a| a.expires_us > now_us);
        }
        if self.answers.len() < self.cfg.answer_cache_size {
            let expires_us = now_us.saturating_add(self.cfg.answer_cache_us);
            self.answers.insert(
                id,
                Answered {
                    request,
                    reply,
                    expires_us,
                },
            );
        }
        self.waits.retain(|_, t| *t > now_us);
    }

    /// The answer to a new SETUP.
    fn decide(
        &mut self,
        s: &Setup,
        now_us: u64,
        lcores: &mut impl Lcores,
        counters: &SetupCounters,
    ) -> Message {
        let reject = |reason| Message::Reject {
            serial: s.serial,
            waypoint: s.waypoint,
            reason,
        };
        if !self.cfg.pools.iter().any(|p| p.contains(s.waypoint)) {
            return reject(RejectReason::NotOurs);
        }
        if !self.cfg.gateways.contains(&s.gateway) {
            return reject(RejectReason::UnknownGateway);
        }
        let exact = s.kind == InitiatorKind::Initiator
            || (s.kind == InitiatorKind::ClientSubnet && s.initiator.len() == 32);
        let result = if exact {
            self.bind_now(s, lcores)
        } else {
            self.begin_wait(s, now_us, lcores, counters)
        };
        match result {
            Ok(()) => Message::Accept {
                serial: s.serial,
                waypoint: s.waypoint,
            },
            Err(reason) => reject(reason),
        }
    }

    /// Intranet admission (§3.3.1): bind the initiator now.
    fn bind_now(&mut self, s: &Setup, lcores: &mut impl Lcores) -> Result<(), RejectReason> {
        let binding = Binding {
            initiator: s.initiator.addr(),
            waypoint: s.waypoint,
            gateway: s.gateway,
            responder: s.responder,
            mode: s.mode,
            pinned: false,
        };
        let results = lcores
            .apply(&Command::AddBinding(binding))
            .ok_or(RejectReason::Unavailable)?;
        let refused: Vec<CommandError> = results.iter().filter_map(|r| r.err()).collect();
        if refused.is_empty() {
            return Ok(());
        }
        if refused.len() < results.len() {
            // Some lcores bound it, others refused: undo exactly this binding.
            let undo = Command::DelBinding {
                initiator: s.initiator.addr(),
                waypoint: s.waypoint,
                responder: Some(s.responder),
            };
            if lcores.apply(&undo).is_none() {
                warn!(initiator = %s.initiator, waypoint = %s.waypoint, "could not undo a partly applied binding");
            }
        }
        Err(reason_of(&refused))
    }

    /// General deployment (§3.3.2): ACCEPT, and put the waypoint address in a wait state
    /// where every admissible new connection from the initiator's prefix (anyone, for a
    /// resolver) binds (Figure 6).
    fn begin_wait(
        &mut self,
        s: &Setup,
        now_us: u64,
        lcores: &mut impl Lcores,
        counters: &SetupCounters,
    ) -> Result<(), RejectReason> {
        let Some(d) = self.cfg.delayed else {
            return Err(RejectReason::Unsupported);
        };
        let sources = match s.kind {
            // The resolver's address says nothing about where its clients are.
            InitiatorKind::Resolver => {
                aves_dataplane::addr::Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0)
            }
            _ => Some(s.initiator),
        };
        let wait = WaitSpec {
            waypoint: s.waypoint,
            sources: sources.ok_or(RejectReason::Unsupported)?,
            gateway: s.gateway,
            responder: s.responder,
            mode: s.mode,
            duration_ns: d.wait_us.saturating_mul(1000),
        };
        let results = lcores
            .apply(&Command::BeginWait(wait))
            .ok_or(RejectReason::Unavailable)?;
        let refused: Vec<CommandError> = results.iter().filter_map(|r| r.err()).collect();
        if !refused.is_empty() {
            return Err(reason_of(&refused));
        }
        self.waits
            .insert(s.waypoint, now_us.saturating_add(d.wait_us));
        counters.wait_states.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The REJECT reason for what the lcores refused: a conflict first (the answer the DNS
/// server can act on), then a full table.
fn reason_of(refused: &[CommandError]) -> RejectReason {
    if refused.contains(&CommandError::Conflict) {
        RejectReason::Conflict
    } else if refused.contains(&CommandError::TableFull) {
        RejectReason::TableFull
    } else if refused.contains(&CommandError::Invalid) {
        RejectReason::NotOurs
    } else {
        RejectReason::Unavailable
    }
}

/// Runs `service` on `socket` until `stop`: one datagram at a time, answers sent back to
/// their sender.
pub fn serve_udp(
    socket: &UdpSocket,
    service: &Mutex<SetupService>,
    lcores: &mut impl Lcores,
    counters: &SetupCounters,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    info!(listen = %socket.local_addr()?, "SETUP service listening");
    let mut buf = [0u8; proto::MAX_LEN + 1];
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => {
                warn!("SETUP socket: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let datagram = buf.get(..n).unwrap_or(&[]);
        let reply = lock(service).handle(datagram, from.ip(), now_us(), lcores, counters);
        if let Some(reply) = reply {
            if let Err(e) = socket.send_to(&reply, from) {
                warn!(%from, "sending the SETUP answer: {e}");
            }
        }
    }
    Ok(())
}

/// Locks the service; a panic elsewhere while holding it leaves it usable (its maps
/// are consistent between calls).
fn lock(service: &Mutex<SetupService>) -> MutexGuard<'_, SetupService> {
    service.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- the in-process path (a DNS server co-located with the waypoint) ----

/// A SETUP from the co-located DNS server, and where its answer goes: the ACCEPT or
/// REJECT, or `None` when it was ignored (a wait state).
#[derive(Debug)]
pub struct LocalSetup {
    /// The request, as it would travel over UDP (serial and all).
    pub setup: Setup,
    /// The answer's way back; a dropped receiver (the DNS server gave up) is fine.
    pub reply: tokio::sync::oneshot::Sender<Option<Message>>,
}

/// Runs `service` for SETUPs handed over in-process on `requests` until `stop` (or until
/// every sender is gone): one at a time, each answered on its own channel. Shares the
/// service (its wait states) and the lcores with [`serve_udp`], which may run beside it.
pub fn serve_local(
    requests: &std::sync::mpsc::Receiver<LocalSetup>,
    service: &Mutex<SetupService>,
    lcores: &mut impl Lcores,
    counters: &SetupCounters,
    stop: &AtomicBool,
) {
    use std::sync::mpsc::RecvTimeoutError;
    info!("SETUP service taking SETUPs in-process from the co-located DNS server");
    while !stop.load(Ordering::Relaxed) {
        let r = match requests.recv_timeout(Duration::from_millis(100)) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let answer = lock(service).handle_local(&r.setup, now_us(), lcores, counters);
        let _ = r.reply.send(answer);
    }
}

// ---- client ----

/// What a SETUP got back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// ACCEPT.
    Accept,
    /// REJECT with this reason.
    Reject(RejectReason),
    /// Nothing authentic came back in time, after every try (not answering is how a
    /// waypoint refuses unauthenticated messages, and ignores SETUPs in a wait state).
    Silence,
}

/// How the client talks to a waypoint.
#[derive(Debug)]
pub struct Client {
    socket: UdpSocket,
    peer: SocketAddr,
    key: Key,
    local: IpAddr,
    sequencer: Sequencer,
    verifier: Verifier,
}

impl Client {
    /// A client for the waypoint at `to`, signing with `key`.
    pub fn new(to: SocketAddr, key: Key) -> std::io::Result<Client> {
        let bind: SocketAddr = if to.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let socket = UdpSocket::bind(bind)?;
        socket.connect(to)?;
        // The tag covers our address as the waypoint sees it: the one the kernel chose.
        let local = socket.local_addr()?.ip();
        let cfg = VerifierConfig::default();
        let start = now_us().saturating_sub(cfg.max_skew_us);
        Ok(Client {
            verifier: Verifier::new(vec![key.clone()], cfg, start),
            socket,
            peer: to,
            key,
            local,
            sequencer: Sequencer::default(),
        })
    }

    /// The SETUP `s`, sealed with a fresh sequence.
    pub fn seal(&mut self, s: &Setup) -> Vec<u8> {
        let seq = self.sequencer.next(now_us());
        proto::seal(&Message::Setup(*s), &self.key, seq, self.local)
    }

    /// Sends `s` and waits up to `timeout` for its answer, `tries` times (each try a new
    /// message with the same serial). Returns the answer and the last datagram sent.
    pub fn request(
        &mut self,
        s: &Setup,
        timeout: Duration,
        tries: u32,
    ) -> std::io::Result<(Answer, Vec<u8>)> {
        let mut sent = Vec::new();
        for _ in 0..tries.max(1) {
            sent = self.seal(s);
            let a = self.exchange(&sent, s.serial, timeout)?;
            if a != Answer::Silence {
                return Ok((a, sent));
            }
        }
        Ok((Answer::Silence, sent))
    }

    /// Sends `datagram` as it is and waits up to `timeout` for an authentic answer
    /// with `serial`.
    pub fn exchange(
        &mut self,
        datagram: &[u8],
        serial: u32,
        timeout: Duration,
    ) -> std::io::Result<Answer> {
        self.socket.send(datagram)?;
        let deadline = std::time::Instant::now() + timeout;
        let mut buf = [0u8; proto::MAX_LEN + 1];
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(Answer::Silence);
            }
            self.socket.set_read_timeout(Some(left))?;
            let n = match self.socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(Answer::Silence)
                }
                // ICMP port unreachable from an earlier send: nobody listens (yet).
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            };
            match self
                .verifier
                .open(buf.get(..n).unwrap_or(&[]), self.peer.ip(), now_us())
            {
                Ok((_, Message::Accept { serial: s, .. })) if s == serial => {
                    return Ok(Answer::Accept)
                }
                Ok((
                    _,
                    Message::Reject {
                        serial: s, reason, ..
                    },
                )) if s == serial => return Ok(Answer::Reject(reason)),
                Ok(_) => debug!("answer to another request ignored"),
                Err(e) => debug!("answer refused: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aves_dataplane::auth::Algorithm;
    use aves_dataplane::command::Mode;
    use std::collections::HashMap as Map;

    const NOW: u64 = 1_700_000_000_000_000;
    const A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    const A2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);
    const W: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
    const R: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const B2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);

    fn dns() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53))
    }
    fn local() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(172, 16, 0, 2))
    }
    fn key(id: u8) -> Key {
        Key::new(id, Algorithm::HmacMd5, &[id; 16]).unwrap()
    }

    /// A fake engine: `n` lcores, each with its own binding table, applying the
    /// admission rule like the waypoint does; or not answering at all.
    #[derive(Default)]
    struct Fake {
        lcores: Vec<Map<(Ipv4Addr, Ipv4Addr), Ipv4Addr>>,
        waits: Vec<WaitSpec>,
        silent: bool,
        applied: Vec<Command>,
    }

    impl Fake {
        fn new(n: usize) -> Fake {
            Fake {
                lcores: vec![Map::new(); n],
                ..Fake::default()
            }
        }
    }

    impl Lcores for Fake {
        fn apply(&mut self, cmd: &Command) -> Option<Vec<Result<(), CommandError>>> {
            self.applied.push(cmd.clone());
            if self.silent {
                return None;
            }
            Some(
                self.lcores
                    .iter_mut()
                    .map(|t| match cmd {
                        Command::AddBinding(b) => match t.get(&(b.initiator, b.waypoint)) {
                            Some(r) if *r != b.responder => Err(CommandError::Conflict),
                            _ => {
                                t.insert((b.initiator, b.waypoint), b.responder);
                                Ok(())
                            }
                        },
                        Command::DelBinding {
                            initiator,
                            waypoint,
                            responder,
                        } => match t.get(&(*initiator, *waypoint)) {
                            Some(r) if responder.is_none() || *responder == Some(*r) => {
                                t.remove(&(*initiator, *waypoint));
                                Ok(())
                            }
                            _ => Err(CommandError::NotFound),
                        },
                        Command::BeginWait(w) => {
                            self.waits.push(*w);
                            Ok(())
                        }
                        _ => Err(CommandError::Unsupported),
                    })
                    .collect(),
            )
        }
    }

    fn service() -> SetupService {
        let cfg = ServiceConfig::new(
            vec!["203.0.113.100-203.0.113.115".parse().unwrap()],
            vec![R],
        );
        SetupService::new(cfg, vec![key(1), key(2)], local(), NOW - 1000)
    }

    fn setup(serial: u32, initiator: &str, kind: InitiatorKind, responder: Ipv4Addr) -> Setup {
        Setup {
            serial,
            initiator: initiator.parse().unwrap(),
            kind,
            mode: Mode::Plain,
            waypoint: W,
            gateway: R,
            responder,
        }
    }

    /// Sends `s` (key 1, sequence `seq`) and returns the decoded answer, if any.
    fn ask(
        svc: &mut SetupService,
        fake: &mut Fake,
        c: &SetupCounters,
        s: &Setup,
        seq: u64,
    ) -> Option<Message> {
        let m = proto::seal(&Message::Setup(*s), &key(1), seq, dns());
        let reply = svc.handle(&m, dns(), seq, fake, c)?;
        // The answer is signed by our address with the request's key.
        let mut v = Verifier::new(vec![key(1)], VerifierConfig::default(), 0);
        let (h, msg) = v.open(&reply, local(), seq).expect("authentic answer");
        assert_eq!(h.key_id, 1);
        Some(msg)
    }

    fn get(c: &SetupCounters, name: &str) -> u64 {
        c.lines()
            .iter()
            .find_map(|l| l.strip_prefix(&format!("control {name} ")))
            .unwrap_or_else(|| panic!("no counter {name}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn intranet_admission_accepts_free_and_same_pairs_and_rejects_conflicts() {
        let (mut svc, mut fake, c) = (service(), Fake::new(2), SetupCounters::default());
        let s = setup(1, "198.51.100.10/32", InitiatorKind::Initiator, B);
        assert_eq!(
            ask(&mut svc, &mut fake, &c, &s, NOW),
            Some(Message::Accept {
                serial: 1,
                waypoint: W
            })
        );
        assert!(matches!(
            fake.applied[0],
            Command::AddBinding(Binding {
                initiator: A,
                waypoint: W,
                gateway: R,
                responder: B,
                pinned: false,
                ..
            })
        ));
        // Same pair, same responder: accepted (a refresh).
        let s2 = setup(2, "198.51.100.10/32", InitiatorKind::Initiator, B);
        assert!(matches!(
            ask(&mut svc, &mut fake, &c, &s2, NOW + 1),
            Some(Message::Accept { serial: 2, .. })
        ));
        // Same pair, another responder: REJECT conflict.
        let s3 = setup(3, "198.51.100.10/32", InitiatorKind::Initiator, B2);
        assert_eq!(
            ask(&mut svc, &mut fake, &c, &s3, NOW + 2),
            Some(Message::Reject {
                serial: 3,
                waypoint: W,
                reason: RejectReason::Conflict
            })
        );
        // Another initiator at the same address: free. An ECS /32 is an initiator.
        let s4 = setup(4, "198.51.100.11/32", InitiatorKind::ClientSubnet, B2);
        assert!(matches!(
            ask(&mut svc, &mut fake, &c, &s4, NOW + 3),
            Some(Message::Accept { serial: 4, .. })
        ));
        assert_eq!(fake.lcores[1].get(&(A2, W)), Some(&B2));
        assert_eq!(get(&c, "setup_received"), 4);
        assert_eq!(get(&c, "setup_accepted"), 3);
        assert_eq!(get(&c, "setup_rejected_conflict"), 1);
    }

    #[test]
    fn a_split_decision_is_undone() {
        let (mut svc, mut fake, c) = (service(), Fake::new(2), SetupCounters::default());
        // Lcore 1 has A bound to B2 (e.g. lcore 0's copy closed and went).
        fake.lcores[1].insert((A, W), B2);
        let s = setup(1, "198.51.100.10/32", InitiatorKind::Initiator, B);
        assert!(matches!(
            ask(&mut svc, &mut fake, &c, &s, NOW),
            Some(Message::Reject {
                reason: RejectReason::Conflict,
                ..
            })
        ));
        assert_eq!(fake.lcores[0].get(&(A, W)), None, "undone on lcore 0");
        assert_eq!(fake.lcores[1].get(&(A, W)), Some(&B2), "kept on lcore 1");
    }

    #[test]
    fn retries_get_the_same_answer_without_a_second_apply() {
        let (mut svc, mut fake, c) = (service(), Fake::new(1), SetupCounters::default());
        let s = setup(7, "198.51.100.10/32", InitiatorKind::Initiator, B);
        let first = ask(&mut svc, &mut fake, &c, &s, NOW);
        // Meanwhile the pair was rebound elsewhere: a real second apply would conflict.
        fake.lcores[0].insert((A, W), B2);
        let again = ask(&mut svc, &mut fake, &c, &s, NOW + 100);
        assert_eq!(first, again);
        assert_eq!(fake.applied.len(), 1);
        assert_eq!(get(&c, "setup_retries_answered"), 1);
        // The same serial with another request is a new request.
        let other = setup(7, "198.51.100.11/32", InitiatorKind::Initiator, B);
        ask(&mut svc, &mut fake, &c, &other, NOW + 200);
        assert_eq!(fake.applied.len(), 2);
        // After the cache time the serial is forgotten.
        let late = NOW + 10_000_001;
        let _ = ask(&mut svc, &mut fake, &c, &s, late);
        assert_eq!(fake.applied.len(), 3);
    }

    #[test]
    fn addresses_and_gateways_are_checked_before_the_lcores() {
        let (mut svc, mut fake, c) = (service(), Fake::new(1), SetupCounters::default());
        let mut s = setup(1, "198.51.100.10/32", InitiatorKind::Initiator, B);
        s.waypoint = Ipv4Addr::new(203, 0, 113, 200);
        assert!(matches!(
            ask(&mut svc, &mut fake, &c, &s, NOW),
            Some(Message::Reject {
                reason: RejectReason::NotOurs,
                ..
            })
        ));
        let mut s = setup(2, "198.51.100.10/32", InitiatorKind::Initiator, B);
        s.gateway = Ipv4Addr::new(192, 0, 2, 99);
        assert!(matches!(
            ask(&mut svc, &mut fake, &c, &s, NOW + 1),
            Some(Message::Reject {
                reason: RejectReason::UnknownGateway,
                ..
            })
        ));
        assert!(fake.applied.is_empty());
        // Silent lcores: unavailable.
        fake.silent = true;
        let s = setup(3, "198.51.100.10/32", InitiatorKind::Initiator, B);
        assert!(matches!(
            ask(&mut svc, &mut fake, &c, &s, NOW + 2),
            Some(Message::Reject {
                reason: RejectReason::Unavailable,
                ..
            })
        ));
    }

    #[test]
    fn forged_replayed_and_unknown_key_messages_are_counted_not_answered() {
        let (mut svc, mut fake, c) = (service(), Fake::new(1), SetupCounters::default());
        let s = Message::Setup(setup(1, "198.51.100.10/32", InitiatorKind::Initiator, B));
        let good = proto::seal(&s, &key(1), NOW, dns());
        assert!(svc.handle(&good, dns(), NOW, &mut fake, &c).is_some());
        assert!(svc.handle(&good, dns(), NOW, &mut fake, &c).is_none());
        let mut forged = good.clone();
        forged[30] ^= 1;
        assert!(svc.handle(&forged, dns(), NOW, &mut fake, &c).is_none());
        let stale_key = proto::seal(&s, &key(9), NOW + 1, dns());
        assert!(svc.handle(&stale_key, dns(), NOW, &mut fake, &c).is_none());
        let accept = proto::seal(
            &Message::Accept {
                serial: 1,
                waypoint: W,
            },
            &key(1),
            NOW + 2,
            dns(),
        );
        assert!(svc.handle(&accept, dns(), NOW, &mut fake, &c).is_none());
        assert!(svc.handle(&[1, 2, 3], dns(), NOW, &mut fake, &c).is_none());
        assert_eq!(get(&c, "refused_replay"), 1);
        assert_eq!(get(&c, "refused_bad_tag"), 1);
        assert_eq!(get(&c, "refused_unknown_key"), 1);
        assert_eq!(get(&c, "refused_bad_length"), 1);
        assert_eq!(get(&c, "unexpected_type"), 1);
        assert_eq!(get(&c, "setup_received"), 1);
        assert_eq!(fake.applied.len(), 1);
    }

    /// Sequence numbers (docs/protocol.md): out of order within the replay window is
    /// accepted (here a retry, answered from the cache); a never-seen sequence below the
    /// window, one outside the clock window either way, and an unknown key id are
    /// refused, each counted by its reason.
    #[test]
    fn sequences_within_and_beyond_the_windows_are_counted_by_reason() {
        let (mut svc, mut fake, c) = (service(), Fake::new(1), SetupCounters::default());
        let s = Message::Setup(setup(1, "198.51.100.10/32", InitiatorKind::Initiator, B));
        let at = |seq: u64| proto::seal(&s, &key(1), seq, dns());
        let t = NOW + 1_000_000;
        assert!(svc.handle(&at(t), dns(), t, &mut fake, &c).is_some());
        // Reordered: earlier than the last one, within the window.
        assert!(svc
            .handle(&at(t - 900_000), dns(), t, &mut fake, &c)
            .is_some());
        assert_eq!(get(&c, "setup_retries_answered"), 1);
        // 130 newer ones slide the 128-entry window past t - 500_000 ...
        for i in 1..=130 {
            assert!(
                svc.handle(&at(t + i), dns(), t, &mut fake, &c).is_some(),
                "{i}"
            );
        }
        // ... which was never seen but is now beyond the window.
        assert!(svc
            .handle(&at(t - 500_000), dns(), t, &mut fake, &c)
            .is_none());
        assert_eq!(get(&c, "refused_replay"), 1);
        // Outside the 30 s clock window, behind and ahead.
        assert!(svc
            .handle(&at(t - 31_000_000), dns(), t, &mut fake, &c)
            .is_none());
        assert!(svc
            .handle(&at(t + 31_000_000), dns(), t, &mut fake, &c)
            .is_none());
        assert_eq!(get(&c, "refused_stale"), 2);
        // Unknown key id.
        let unknown = proto::seal(&s, &key(7), t + 200, dns());
        assert!(svc.handle(&unknown, dns(), t, &mut fake, &c).is_none());
        assert_eq!(get(&c, "refused_unknown_key"), 1);
        assert_eq!(get(&c, "setup_received"), 132);
        assert_eq!(
            get(&c, "setup_accepted"),
            1,
            "one request, the rest retries"
        );
        assert_eq!(fake.applied.len(), 1);
    }

    #[test]
    fn general_mode_enters_a_wait_state_and_ignores_setups_meanwhile() {
        let (mut svc, mut fake, c) = (service(), Fake::new(2), SetupCounters::default());
        let s = setup(1, "192.0.2.53/32", InitiatorKind::Resolver, B);
        assert!(matches!(
            ask(&mut svc, &mut fake, &c, &s, NOW),
            Some(Message::Accept { serial: 1, .. })
        ));
        assert_eq!(fake.waits.len(), 2, "every lcore got the wait state");
        let w = fake.waits[0];
        assert_eq!(
            (
                w.waypoint,
                w.responder,
                w.gateway,
                w.duration_ns,
                w.sources.len()
            ),
            (W, B, R, 2_000_000_000, 0)
        );
        // While waiting: any SETUP for W is ignored, retries of the first answered.
        let other = setup(2, "198.51.100.10/32", InitiatorKind::Initiator, B2);
        assert_eq!(ask(&mut svc, &mut fake, &c, &other, NOW + 1_000_000), None);
        assert!(ask(&mut svc, &mut fake, &c, &s, NOW + 1_000_001).is_some());
        assert_eq!(get(&c, "setup_ignored_waiting"), 1);
        // Another waypoint address is not waiting.
        let mut elsewhere = setup(3, "198.51.100.0/24", InitiatorKind::ClientSubnet, B2);
        elsewhere.waypoint = Ipv4Addr::new(203, 0, 113, 101);
        assert!(matches!(
            ask(&mut svc, &mut fake, &c, &elsewhere, NOW + 1_000_002),
            Some(Message::Accept { serial: 3, .. })
        ));
        assert_eq!(fake.waits[2].sources, "198.51.100.0/24".parse().unwrap());
        // After Twait, W takes SETUPs again.
        let later = setup(4, "198.51.100.10/32", InitiatorKind::Initiator, B2);
        assert!(matches!(
            ask(&mut svc, &mut fake, &c, &later, NOW + 2_000_001),
            Some(Message::Accept { serial: 4, .. })
        ));
        assert_eq!(get(&c, "wait_states"), 2);
    }

    #[test]
    fn delayed_binding_can_be_turned_off() {
        let mut cfg = ServiceConfig::new(
            vec!["203.0.113.100-203.0.113.115".parse().unwrap()],
            vec![R],
        );
        cfg.delayed = None;
        let mut svc = SetupService::new(cfg, vec![key(1)], local(), NOW - 1000);
        let (mut fake, c) = (Fake::new(1), SetupCounters::default());
        let s = setup(1, "192.0.2.53/32", InitiatorKind::Resolver, B);
        assert!(matches!(
            ask(&mut svc, &mut fake, &c, &s, NOW),
            Some(Message::Reject {
                reason: RejectReason::Unsupported,
                ..
            })
        ));
    }

    #[test]
    fn the_in_process_path_decides_and_counts_like_udp() {
        let (mut svc, mut fake, c) = (service(), Fake::new(2), SetupCounters::default());
        let s = setup(1, "198.51.100.10/32", InitiatorKind::Initiator, B);
        assert_eq!(
            svc.handle_local(&s, NOW, &mut fake, &c),
            Some(Message::Accept {
                serial: 1,
                waypoint: W
            })
        );
        assert_eq!(
            fake.lcores[1].get(&(A, W)),
            Some(&B),
            "bound on every lcore"
        );
        let conflict = setup(2, "198.51.100.10/32", InitiatorKind::Initiator, B2);
        assert!(matches!(
            svc.handle_local(&conflict, NOW + 1, &mut fake, &c),
            Some(Message::Reject {
                reason: RejectReason::Conflict,
                ..
            })
        ));
        // General mode: a wait state, shared with the UDP path.
        let mut general = setup(3, "192.0.2.53/32", InitiatorKind::Resolver, B);
        general.waypoint = Ipv4Addr::new(203, 0, 113, 101);
        assert!(svc.handle_local(&general, NOW + 2, &mut fake, &c).is_some());
        let mut during = setup(4, "198.51.100.11/32", InitiatorKind::Initiator, B);
        during.waypoint = general.waypoint;
        assert_eq!(svc.handle_local(&during, NOW + 3, &mut fake, &c), None);
        assert_eq!(
            ask(&mut svc, &mut fake, &c, &during, NOW + 4),
            None,
            "over UDP too"
        );
        assert_eq!(get(&c, "setup_local"), 4);
        assert_eq!(get(&c, "setup_received"), 1, "only the UDP one");
        assert_eq!(get(&c, "setup_accepted"), 2);
        assert_eq!(get(&c, "setup_rejected_conflict"), 1);
        assert_eq!(get(&c, "setup_ignored_waiting"), 2);
        assert_eq!(get(&c, "wait_states"), 1);
        assert_eq!(c.totals().local, 4);
    }

    /// The co-located DNS server's binder against [`serve_local`] on a thread: answers,
    /// counters, a full queue and a service that is gone.
    #[test]
    fn local_binder_hands_setups_to_the_service() {
        use crate::dns::{Binder, LocalBinder, SetupOutcome, SetupRequest};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let req = |initiator: Ipv4Addr, prefix: u8, waypoint: Ipv4Addr, responder: Ipv4Addr| {
            SetupRequest {
                initiator,
                initiator_prefix: prefix,
                gateway: R,
                responder,
                waypoint,
                mode: Mode::Plain,
            }
        };
        let w2 = Ipv4Addr::new(203, 0, 113, 101);
        let svc = Mutex::new(service());
        let c = SetupCounters::default();
        let stop = AtomicBool::new(false);
        let (binder, requests) = LocalBinder::new(8);
        let mut fake = Fake::new(2);
        std::thread::scope(|sc| {
            let (svc, c, stop, fake) = (&svc, &c, &stop, &mut fake);
            sc.spawn(move || serve_local(&requests, svc, fake, c, stop));
            rt.block_on(async {
                assert_eq!(binder.setup(req(A, 32, W, B)).await, SetupOutcome::Accept);
                assert_eq!(
                    binder.setup(req(A, 32, W, B)).await,
                    SetupOutcome::Accept,
                    "a refresh"
                );
                assert_eq!(
                    binder.setup(req(A, 32, W, B2)).await,
                    SetupOutcome::Reject("conflict".into())
                );
                assert_eq!(
                    binder
                        .setup(req(A, 32, Ipv4Addr::new(203, 0, 113, 200), B))
                        .await,
                    SetupOutcome::Reject("not_ours".into())
                );
                // General mode, then a SETUP for the waiting address: ignored, which the
                // binder reports at once (no UDP timeout to sit out).
                let resolver = Ipv4Addr::new(192, 0, 2, 53);
                assert_eq!(
                    binder.setup(req(resolver, 0, w2, B)).await,
                    SetupOutcome::Accept
                );
                let t = std::time::Instant::now();
                assert_eq!(
                    binder.setup(req(A2, 32, w2, B2)).await,
                    SetupOutcome::Timeout
                );
                assert!(t.elapsed() < Duration::from_millis(500));
                // An ECS prefix goes as a client subnet: a wait state for the prefix.
                let w3 = Ipv4Addr::new(203, 0, 113, 102);
                assert_eq!(
                    binder
                        .setup(req(Ipv4Addr::new(198, 51, 100, 0), 24, w3, B))
                        .await,
                    SetupOutcome::Accept
                );
                assert_eq!(
                    binder.setup(req(A, 40, w3, B)).await,
                    SetupOutcome::Reject("bad initiator prefix".into())
                );
            });
            stop.store(true, Ordering::Relaxed);
        });
        assert_eq!(get(&c, "setup_local"), 7);
        assert_eq!(get(&c, "setup_received"), 0, "nothing over UDP");
        assert_eq!(get(&c, "setup_accepted"), 4);
        assert_eq!(get(&c, "setup_rejected_conflict"), 1);
        assert_eq!(get(&c, "setup_rejected_not_ours"), 1);
        assert_eq!(get(&c, "setup_ignored_waiting"), 1);
        assert_eq!(fake.lcores[0].get(&(A, W)), Some(&B));
        assert_eq!(fake.waits.len(), 4, "two wait states on two lcores");
        assert_eq!(fake.waits[2].sources, "198.51.100.0/24".parse().unwrap());
        // Nobody serving: a queue of one fills, then the binder says busy; once the
        // service is gone (receiver dropped), it says timeout.
        let (binder, requests) = LocalBinder::new(1);
        rt.block_on(async {
            let first = binder.setup(req(A, 32, W, B));
            assert_eq!(
                binder.setup(req(A, 32, W, B)).await,
                SetupOutcome::Reject("busy".into())
            );
            drop(requests);
            assert_eq!(
                first.await,
                SetupOutcome::Timeout,
                "its answer channel went with it"
            );
            assert_eq!(binder.setup(req(A, 32, W, B)).await, SetupOutcome::Timeout);
        });
    }

    #[test]
    fn client_and_service_over_udp() {
        // A real exchange on loopback: the service thread answers, the client checks.
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        let stop = AtomicBool::new(false);
        let c = SetupCounters::default();
        std::thread::scope(|sc| {
            sc.spawn(|| {
                let cfg = ServiceConfig::new(
                    vec!["203.0.113.100-203.0.113.115".parse().unwrap()],
                    vec![R],
                );
                let svc = Mutex::new(SetupService::new(
                    cfg,
                    vec![key(1)],
                    to.ip(),
                    now_us() - 1000,
                ));
                let mut fake = Fake::new(1);
                serve_udp(&sock, &svc, &mut fake, &c, &stop).unwrap();
            });
            let mut client = Client::new(to, key(1)).unwrap();
            let s = setup(5, "198.51.100.10/32", InitiatorKind::Initiator, B);
            let (a, sent) = client.request(&s, Duration::from_secs(2), 2).unwrap();
            assert_eq!(a, Answer::Accept);
            let s2 = setup(6, "198.51.100.10/32", InitiatorKind::Initiator, B2);
            let (a, _) = client.request(&s2, Duration::from_secs(2), 1).unwrap();
            assert_eq!(a, Answer::Reject(RejectReason::Conflict));
            // The same bytes again: a replay, not answered.
            let a = client
                .exchange(&sent, 5, Duration::from_millis(300))
                .unwrap();
            assert_eq!(a, Answer::Silence);
            // Another key: unknown, not answered.
            let mut other = Client::new(to, key(3)).unwrap();
            let (a, _) = other.request(&s, Duration::from_millis(300), 1).unwrap();
            assert_eq!(a, Answer::Silence);
            stop.store(true, Ordering::Relaxed);
        });
        assert_eq!(get(&c, "refused_replay"), 1);
        assert_eq!(get(&c, "refused_unknown_key"), 1);
        assert_eq!(get(&c, "setup_accepted"), 1);
    }
}
