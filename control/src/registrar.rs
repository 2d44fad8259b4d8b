//! The gateway's REGISTER sender (AVES paper §5.3): "periodically, the NAT daemon sends
//! authenticated registration messages via UDP to the AVES-aware DNS servers to report
//! its current IP address. These messages are sent more frequently when an address
//! change is detected".
//!
//! [`Schedule`] decides when (sans-IO, tested); [`Registrar`] seals and sends one
//! REGISTER per configured DNS server; [`run`] is the control-thread loop that the
//! daemon starts for a gateway with `[gateway] register`.
//!
//! Invariants:
//! - REGISTER is never answered, so loss is repaired only by the next send: one every
//!   `register_interval_s`, and after an address change [`FAST_SENDS`] more at 1, 2, 4,
//!   8 s gaps (each gap at most the interval) after the immediate one.
//! - Every REGISTER carries a fresh sequence (`proto::Sequencer`, the clock in µs) and
//!   is signed for the source address the kernel chose for that server (a connected
//!   UDP socket's local address), which is what the DNS server's tag check sees.
//! - Counters only grow; `address` is the one the last REGISTERs carried.

use crate::config::RegisterSpec;
use crate::proto::{self, Message, Register, Sequencer};
use aves_dataplane::auth::Key;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;
use tracing::{debug, info, warn};

/// REGISTERs sent after the immediate one when the address changed, before the
/// periodic interval takes over again.
pub const FAST_SENDS: u32 = 4;
/// The first gap between those sends; it doubles each time.
pub const FAST_GAP_US: u64 = 1_000_000;

/// When the next REGISTER is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    interval_us: u64,
    next_us: u64,
    fast_left: u32,
    gap_us: u64,
}

impl Schedule {
    /// Periodic sends every `interval_s`, the first one at `now_us`.
    pub fn new(interval_s: u16, now_us: u64) -> Schedule {
        Schedule {
            interval_us: u64::from(interval_s.max(1)) * 1_000_000,
            next_us: now_us,
            fast_left: 0,
            gap_us: FAST_GAP_US,
        }
    }

    /// The address changed at `now_us`: send at once, then [`FAST_SENDS`] more at
    /// doubling gaps.
    pub fn address_changed(&mut self, now_us: u64) {
        self.next_us = now_us;
        self.fast_left = FAST_SENDS;
        self.gap_us = FAST_GAP_US.min(self.interval_us);
    }

    /// True when a round of REGISTERs is due at `now_us`.
    pub fn due(&self, now_us: u64) -> bool {
        now_us >= self.next_us
    }

    /// Microseconds from `now_us` until the next round (0 when due).
    pub fn wait_us(&self, now_us: u64) -> u64 {
        self.next_us.saturating_sub(now_us)
    }

    /// A round was sent at `now_us`: schedules the next.
    pub fn sent(&mut self, now_us: u64) {
        if self.fast_left > 0 {
            self.fast_left -= 1;
            self.next_us = now_us + self.gap_us;
            self.gap_us = (self.gap_us * 2).min(self.interval_us);
        } else {
            self.next_us = now_us + self.interval_us;
        }
    }
}

/// What the sender did; read by `aves ctl stats` and `/metrics`.
#[derive(Debug, Default)]
pub struct RegistrarCounters {
    /// REGISTERs sent (one per server per round).
    pub sent: AtomicU64,
    /// REGISTERs that could not be sent (no route, socket error).
    pub send_errors: AtomicU64,
    /// Public address changes the sender learned of.
    pub address_changes: AtomicU64,
    /// When the last REGISTER went out, µs since the Unix epoch (0: never).
    pub last_sent_us: AtomicU64,
    /// The address the last REGISTERs carried.
    pub address: AtomicU32,
    /// Configured DNS servers.
    pub servers: AtomicU64,
}

impl RegistrarCounters {
    /// The stable text form for `aves ctl stats`: `register NAME VALUE`.
    pub fn lines(&self) -> Vec<String> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            format!(
                "register address {}",
                Ipv4Addr::from(self.address.load(Ordering::Relaxed))
            ),
            format!("register servers {}", g(&self.servers)),
            format!("register sent {}", g(&self.sent)),
            format!("register send_errors {}", g(&self.send_errors)),
            format!("register address_changes {}", g(&self.address_changes)),
            format!(
                "register last_sent_unix_ms {}",
                g(&self.last_sent_us) / 1000
            ),
        ]
    }

    /// The `aves_registration_*` metrics in the Prometheus text format (listed in
    /// `docs/metrics.md`), appended to the daemon's exposition.
    pub fn prometheus_text(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let last_s = g(&self.last_sent_us) as f64 / 1e6;
        for (name, kind, help, value) in [
            (
                "aves_registration_sent_total",
                "counter",
                "REGISTER messages sent to AVES DNS servers (one per server per round).",
                g(&self.sent).to_string(),
            ),
            (
                "aves_registration_send_errors_total",
                "counter",
                "REGISTER messages that could not be sent (no route, socket error).",
                g(&self.send_errors).to_string(),
            ),
            (
                "aves_registration_address_changes_total",
                "counter",
                "Public address changes that triggered an immediate REGISTER.",
                g(&self.address_changes).to_string(),
            ),
            (
                "aves_registration_last_sent_timestamp_seconds",
                "gauge",
                "When the last REGISTER was sent, seconds since the Unix epoch (0: never).",
                format!("{last_s}"),
            ),
            (
                "aves_registration_servers",
                "gauge",
                "DNS servers this gateway registers with.",
                g(&self.servers).to_string(),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

/// Seals and sends REGISTERs for one gateway.
#[derive(Debug)]
pub struct Registrar {
    spec: RegisterSpec,
    key: Key,
    sequencer: Sequencer,
    address: Ipv4Addr,
}

impl Registrar {
    /// A sender for `spec` signing with `key`, starting with `address`.
    pub fn new(spec: RegisterSpec, key: Key, address: Ipv4Addr) -> Registrar {
        Registrar {
            spec,
            key,
            sequencer: Sequencer::default(),
            address,
        }
    }

    /// The address REGISTERs carry.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// Sets the address; true when it changed.
    pub fn set_address(&mut self, a: Ipv4Addr) -> bool {
        let changed = a != self.address;
        self.address = a;
        changed
    }

    /// The REGISTER datagram for a sender address `from`, sequenced at `now_us`.
    pub fn seal(&mut self, from: std::net::IpAddr, now_us: u64) -> Vec<u8> {
        let m = Message::Register(Register {
            gateway_id: self.spec.id,
            address: self.address,
            interval_s: self.spec.interval_s,
        });
        proto::seal(&m, &self.key, self.sequencer.next(now_us), from)
    }

    /// Sends one REGISTER to every server; counts each as sent or failed.
    pub fn send_round(&mut self, now_us: u64, counters: &RegistrarCounters) {
        for server in self.spec.servers.clone() {
            match self.send_one(server, now_us) {
                Ok(()) => {
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    counters.send_errors.fetch_add(1, Ordering::Relaxed);
                    warn!(%server, "REGISTER not sent: {e}");
                }
            }
        }
        counters
            .address
            .store(u32::from(self.address), Ordering::Relaxed);
        counters.last_sent_us.store(now_us, Ordering::Relaxed);
    }

    fn send_one(&mut self, server: SocketAddrV4, now_us: u64) -> std::io::Result<()> {
        // A fresh socket per send: the kernel picks the source for the current routes,
        // and the tag must cover exactly that address.
        let sock = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))?;
        sock.connect(server)?;
        let from = sock.local_addr()?.ip();
        let m = self.seal(from, now_us);
        sock.send(&m)?;
        debug!(%server, %from, address = %self.address, "REGISTER sent");
        Ok(())
    }
}

/// Sends REGISTERs on schedule until `stop`; a new public address arriving on
/// `changes` is registered at once (and more often for a while).
pub fn run(
    mut registrar: Registrar,
    changes: Receiver<Ipv4Addr>,
    counters: &RegistrarCounters,
    stop: &AtomicBool,
) {
    let now = crate::setup::now_us;
    let mut schedule = Schedule::new(registrar.spec.interval_s, now());
    counters
        .servers
        .store(registrar.spec.servers.len() as u64, Ordering::Relaxed);
    counters
        .address
        .store(u32::from(registrar.address()), Ordering::Relaxed);
    info!(
        id = registrar.spec.id,
        address = %registrar.address(),
        servers = ?registrar.spec.servers,
        interval_s = registrar.spec.interval_s,
        "registering with the AVES DNS servers"
    );
    let mut connected = true;
    while !stop.load(Ordering::Relaxed) {
        let t = now();
        if schedule.due(t) {
            registrar.send_round(t, counters);
            schedule.sent(t);
        }
        // Wake for the next round, a change, or the stop flag (every 200 ms).
        let wait = Duration::from_micros(schedule.wait_us(now()).clamp(1_000, 200_000));
        if !connected {
            std::thread::sleep(wait);
            continue;
        }
        match changes.recv_timeout(wait) {
            Ok(a) => {
                if registrar.set_address(a) {
                    counters.address_changes.fetch_add(1, Ordering::Relaxed);
                    info!(address = %a, "public address changed: registering at once");
                    schedule.address_changed(now());
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => connected = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Verifier, VerifierConfig};
    use aves_dataplane::auth::Algorithm;
    use std::net::IpAddr;

    const S: u64 = 1_000_000;

    #[test]
    fn periodic_then_fast_after_a_change() {
        let mut s = Schedule::new(60, 100);
        assert!(s.due(100));
        s.sent(100);
        assert!(!s.due(100 + 59 * S));
        assert!(s.due(100 + 60 * S));
        let t = 100 + 30 * S;
        s.address_changed(t);
        assert!(s.due(t), "at once");
        let mut at = t;
        let mut gaps = Vec::new();
        for _ in 0..=FAST_SENDS {
            s.sent(at);
            let next = at + s.wait_us(at);
            gaps.push((next - at) / S);
            at = next;
        }
        assert_eq!(gaps, [1, 2, 4, 8, 60]);
        // A short interval caps the gaps.
        let mut s = Schedule::new(3, 0);
        s.address_changed(0);
        let mut at = 0;
        let mut gaps = Vec::new();
        for _ in 0..=FAST_SENDS {
            s.sent(at);
            let next = at + s.wait_us(at);
            gaps.push((next - at) / S);
            at = next;
        }
        assert_eq!(gaps, [1, 2, 3, 3, 3]);
    }

    fn spec(servers: Vec<SocketAddrV4>) -> RegisterSpec {
        RegisterSpec {
            id: 7,
            servers,
            interval_s: 60,
        }
    }

    fn key() -> Key {
        Key::new(9, Algorithm::HmacSha256_128, &[9; 20]).unwrap()
    }

    #[test]
    fn sealed_registers_verify_and_never_repeat_a_sequence() {
        let mut r = Registrar::new(spec(vec![]), key(), Ipv4Addr::new(192, 0, 2, 2));
        let from = IpAddr::V4(Ipv4Addr::new(172, 16, 1, 2));
        let now = 1_700_000_000_000_000;
        let mut v = Verifier::new(vec![key()], VerifierConfig::default(), now - 1);
        let a = r.seal(from, now);
        assert!(r.set_address(Ipv4Addr::new(192, 0, 2, 3)));
        assert!(!r.set_address(Ipv4Addr::new(192, 0, 2, 3)));
        let b = r.seal(from, now); // same clock reading: the next sequence
        for (m, want) in [(a, [192, 0, 2, 2]), (b, [192, 0, 2, 3])] {
            match v.open(&m, from, now).unwrap().1 {
                Message::Register(reg) => {
                    assert_eq!((reg.gateway_id, reg.interval_s), (7, 60));
                    assert_eq!(reg.address, Ipv4Addr::from(want));
                }
                m => panic!("{m:?}"),
            }
        }
    }

    #[test]
    fn run_sends_at_start_and_at_once_after_a_change() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let to = match server.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            a => panic!("{a}"),
        };
        let r = Registrar::new(spec(vec![to]), key(), Ipv4Addr::new(192, 0, 2, 2));
        let (tx, rx) = std::sync::mpsc::channel();
        let counters = RegistrarCounters::default();
        let stop = AtomicBool::new(false);
        let mut v = Verifier::new(
            vec![key()],
            VerifierConfig::default(),
            crate::setup::now_us() - 1,
        );
        std::thread::scope(|s| {
            s.spawn(|| run(r, rx, &counters, &stop));
            let mut got = Vec::new();
            let mut buf = [0u8; 128];
            for i in 0..2 {
                if i == 1 {
                    tx.send(Ipv4Addr::new(192, 0, 2, 3)).unwrap();
                }
                let (n, from) = server.recv_from(&mut buf).unwrap();
                match v.open(&buf[..n], from.ip(), crate::setup::now_us()) {
                    Ok((_, Message::Register(reg))) => got.push(reg.address),
                    other => panic!("{other:?}"),
                }
            }
            stop.store(true, Ordering::Relaxed);
            assert_eq!(
                got,
                [Ipv4Addr::new(192, 0, 2, 2), Ipv4Addr::new(192, 0, 2, 3)]
            );
        });
        assert_eq!(counters.sent.load(Ordering::Relaxed), 2);
        assert_eq!(counters.address_changes.load(Ordering::Relaxed), 1);
        let lines = counters.lines();
        assert!(
            lines.contains(&"register address 192.0.2.3".to_string()),
            "{lines:?}"
        );
        assert!(lines.contains(&"register sent 2".to_string()));
        let text = counters.prometheus_text();
        assert!(
            text.contains("\naves_registration_sent_total 2\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE aves_registration_last_sent_timestamp_seconds gauge"));
    }
}
