//! The AVES-aware DNS server (AVES paper §3.3, §5.1, §6.2) on hickory-server 0.26.
//!
//! An A query for a responder's name makes the server choose a waypoint address, ask the
//! waypoint to install the binding (a SETUP, through a [`Binder`]) and, on ACCEPT, answer
//! with the waypoint address and TTL 0. Everything else (SOA, NS, negative answers) is an
//! ordinary authoritative zone.
//!
//! Files: [`zone`] (names, records, gateway addresses, waypoint choice), [`handler`] (the
//! `RequestHandler`: one decision per query), [`limits`] (§6.2 safeguards: the NXDOMAIN
//! penalty, the per-responder session rate, the cap on SETUPs in flight), [`register`]
//! (gateways' REGISTER messages, §5.3, which update the zone's gateway addresses) and
//! [`metrics`] (the Prometheus exposition of `[dns] metrics`).
//!
//! Invariants:
//! - The wire format of SETUP/ACCEPT/REJECT is not here: the handler only sees the
//!   [`Binder`] trait. Whatever a binder does, the handler waits at most
//!   `setup_timeout` for it.
//! - An answer that names a waypoint address always has TTL 0 and only follows an
//!   `Accept`; a `Reject` or a timeout gives SERVFAIL (the resolver or stub retries,
//!   and nothing is cached: RFC 2308 §7.1 lets a resolver cache SERVFAIL for at most
//!   five minutes, and resolvers in practice retry the next query).
//! - The handler never panics on any query: hickory parses, the handler only reads
//!   parsed fields, and every failure path answers with an rcode or not at all.
//! - All state the handler keeps is bounded (see [`limits`] and [`zone::Waypoints`]).

pub mod handler;
pub mod limits;
pub mod metrics;
pub mod register;
pub mod zone;

use aves_dataplane::addr::Ipv4Cidr;
use aves_dataplane::command::Mode;
use handler::AvesDns;
use hickory_server::Server;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

/// What the DNS server asks a waypoint to install: the binding of §3.3, for the
/// initiator (or initiator prefix) the query came from.
///
/// `initiator_prefix` says which initiators may use the binding:
/// - 32: exactly `initiator` (intranet mode, §3.3.1: the querier is the initiator);
/// - 1..=31: any address in `initiator/initiator_prefix`, from EDNS Client Subnet
///   (RFC 7871) — the waypoint can bind without the delayed-binding wait;
/// - 0: unknown initiator (general mode, §3.3.2): `initiator` is the querying
///   resolver's address, for the waypoint's information only, and the waypoint uses
///   delayed binding (a wait state, Figure 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupRequest {
    /// The initiator A, the network address of its ECS prefix, or the resolver's address
    /// (prefix 0).
    pub initiator: Ipv4Addr,
    /// 32, the ECS source prefix, or 0 (see the type's doc).
    pub initiator_prefix: u8,
    /// The responder's AVES-aware NAT gateway R (its current public address).
    pub gateway: Ipv4Addr,
    /// The responder B (its private address behind R).
    pub responder: Ipv4Addr,
    /// The waypoint address W that will stand for B.
    pub waypoint: Ipv4Addr,
    /// How R presents the initiator to B (§3.2).
    pub mode: Mode,
}

impl SetupRequest {
    /// The control protocol's SETUP for this request, with `serial`; `None` when the
    /// initiator prefix is not 0..=32.
    pub fn to_setup(self, serial: u32) -> Option<crate::proto::Setup> {
        use crate::proto::InitiatorKind;
        let (kind, initiator) = match self.initiator_prefix {
            32 => (InitiatorKind::Initiator, Ipv4Cidr::new(self.initiator, 32)),
            // General mode: the resolver's address, for information (§3.3.2).
            0 => (InitiatorKind::Resolver, Ipv4Cidr::new(self.initiator, 32)),
            p => (
                InitiatorKind::ClientSubnet,
                Ipv4Cidr::new(self.initiator, p).map(|c| c.network()),
            ),
        };
        Some(crate::proto::Setup {
            serial,
            initiator: initiator?,
            kind,
            mode: self.mode,
            waypoint: self.waypoint,
            gateway: self.gateway,
            responder: self.responder,
        })
    }
}

/// A waypoint's answer to a SETUP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetupOutcome {
    /// ACCEPT: the binding is installed (or, for prefix 0, the wait state has begun).
    Accept,
    /// REJECT, with the waypoint's reason (admission control, §3.3.1).
    Reject(String),
    /// No answer in time (the binder's own retries, if any, are spent).
    Timeout,
}

/// Asks a waypoint to install a binding; resolves to Accept or Reject(reason).
///
/// Implementations: [`UdpBinder`] (SETUP over UDP, `aves dns`), [`LocalBinder`] (an
/// in-process message to the waypoint's SETUP service, when the DNS server runs inside
/// `aves run` with the waypoint), [`StubBinder`], and test doubles. The handler bounds
/// the wait with its own timeout, so a future that never resolves is allowed.
pub trait Binder: Send + Sync + 'static {
    /// Sends the SETUP and resolves with the waypoint's answer.
    fn setup(&self, req: SetupRequest) -> Pin<Box<dyn Future<Output = SetupOutcome> + Send>>;
}

/// A binder that sends nothing and so never hears back: every SETUP ends in the
/// handler's timeout (SERVFAIL). It stands in until the control protocol is merged;
/// everything but host A answers works with it.
#[derive(Debug, Default, Clone, Copy)]
pub struct StubBinder;

impl Binder for StubBinder {
    fn setup(&self, _req: SetupRequest) -> Pin<Box<dyn Future<Output = SetupOutcome> + Send>> {
        Box::pin(std::future::pending())
    }
}

/// The real binder: sends SETUP over UDP to the waypoint that owns the chosen address
/// (`[[dns.waypoint]] control`), signed with the DNS server's key (`[[dns.key]]`, the
/// last one listed), and waits for ACCEPT or REJECT (`docs/protocol.md`, control
/// messages). The request is retried with the same serial within the handler's
/// timeout; a retry is answered from the waypoint's cache, never applied twice.
#[derive(Debug, Clone)]
pub struct UdpBinder {
    key: aves_dataplane::auth::Key,
    waypoints: Vec<(Vec<aves_dataplane::addr::Ipv4Range>, SocketAddr)>,
    try_timeout: Duration,
    tries: u32,
    serial: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl UdpBinder {
    /// A binder for `spec`'s waypoints with `key`; each SETUP is tried `tries` times,
    /// waiting `try_timeout` for each answer.
    pub fn new(spec: &crate::config::DnsSpec, key: aves_dataplane::auth::Key) -> UdpBinder {
        let tries = 3u32;
        let seed = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u32)
            .unwrap_or(1))
            | 1;
        UdpBinder {
            key,
            waypoints: spec
                .waypoints
                .iter()
                .filter_map(|w| Some((w.addresses.clone(), w.control?)))
                .collect(),
            try_timeout: spec.setup_timeout / tries,
            tries,
            serial: std::sync::Arc::new(std::sync::atomic::AtomicU32::new(seed)),
        }
    }
}

impl Binder for UdpBinder {
    fn setup(&self, req: SetupRequest) -> Pin<Box<dyn Future<Output = SetupOutcome> + Send>> {
        let Some(to) = self
            .waypoints
            .iter()
            .find(|(ranges, _)| ranges.iter().any(|r| r.contains(req.waypoint)))
            .map(|(_, c)| *c)
        else {
            return Box::pin(std::future::ready(SetupOutcome::Reject(
                "no waypoint owns that address".into(),
            )));
        };
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(s) = req.to_setup(serial) else {
            return Box::pin(std::future::ready(SetupOutcome::Reject(
                "bad initiator prefix".into(),
            )));
        };
        let (key, try_timeout, tries) = (self.key.clone(), self.try_timeout, self.tries);
        Box::pin(async move {
            let answer = tokio::task::spawn_blocking(move || {
                let mut c = crate::setup::Client::new(to, key)?;
                c.request(&s, try_timeout, tries).map(|(a, _)| a)
            })
            .await;
            match answer {
                Ok(Ok(crate::setup::Answer::Accept)) => SetupOutcome::Accept,
                Ok(Ok(crate::setup::Answer::Reject(r))) => SetupOutcome::Reject(r.to_string()),
                _ => SetupOutcome::Timeout,
            }
        })
    }
}

/// The binder of a DNS server co-located with its waypoint (`[dns]` in the waypoint's
/// config, `aves run`): the SETUP goes to the waypoint's SETUP service over an
/// in-process channel ([`crate::setup::serve_local`]) instead of UDP. The service
/// makes the same admission decision, with the same counters (`setup_local` instead of
/// `setup_received`), on the same lcores; nothing is signed, since nothing leaves the
/// process, and nothing is retried, since nothing is lost.
///
/// Outcomes: ACCEPT → `Accept`; REJECT → `Reject(reason)`; ignored (the waypoint
/// address is in a wait state) → `Timeout` at once (over UDP the DNS server would hear
/// nothing until its timeout); the service's queue full (more than `queue` SETUPs
/// waiting) → `Reject("busy")` at once; the service gone (shutting down) → `Timeout`.
#[derive(Debug, Clone)]
pub struct LocalBinder {
    requests: std::sync::mpsc::SyncSender<crate::setup::LocalSetup>,
    serial: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl LocalBinder {
    /// A binder and the receiving end for [`crate::setup::serve_local`]; at most
    /// `queue` SETUPs wait for the service at once.
    pub fn new(
        queue: usize,
    ) -> (
        LocalBinder,
        std::sync::mpsc::Receiver<crate::setup::LocalSetup>,
    ) {
        let (tx, rx) = std::sync::mpsc::sync_channel(queue.max(1));
        (
            LocalBinder {
                requests: tx,
                serial: std::sync::Arc::new(std::sync::atomic::AtomicU32::new(1)),
            },
            rx,
        )
    }
}

impl Binder for LocalBinder {
    fn setup(&self, req: SetupRequest) -> Pin<Box<dyn Future<Output = SetupOutcome> + Send>> {
        use crate::proto::Message;
        use std::sync::mpsc::TrySendError;
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(setup) = req.to_setup(serial) else {
            return Box::pin(std::future::ready(SetupOutcome::Reject(
                "bad initiator prefix".into(),
            )));
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        match self
            .requests
            .try_send(crate::setup::LocalSetup { setup, reply })
        {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Box::pin(std::future::ready(SetupOutcome::Reject("busy".into())))
            }
            Err(TrySendError::Disconnected(_)) => {
                return Box::pin(std::future::ready(SetupOutcome::Timeout))
            }
        }
        Box::pin(async move {
            match answer.await {
                Ok(Some(Message::Accept { .. })) => SetupOutcome::Accept,
                Ok(Some(Message::Reject { reason, .. })) => {
                    SetupOutcome::Reject(reason.to_string())
                }
                _ => SetupOutcome::Timeout,
            }
        })
    }
}

/// A TCP connection that sends no query for this long is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;

/// Every socket the DNS service listens on, bound before it starts serving (so that a
/// bad or busy address stops `aves dns`, or `aves run`, at once).
#[derive(Debug)]
pub struct Sockets {
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    register: Option<std::net::UdpSocket>,
    metrics: Option<std::net::TcpListener>,
}

impl Sockets {
    /// Binds `[dns] listen` (UDP and TCP, the same port), `register_listen` and
    /// `metrics` of `spec`; errors name the key.
    pub fn bind(spec: &crate::config::DnsSpec) -> anyhow::Result<Sockets> {
        use anyhow::Context;
        let udp = std::net::UdpSocket::bind(spec.listen)
            .with_context(|| format!("dns.listen {}: cannot bind (UDP)", spec.listen))?;
        let tcp = std::net::TcpListener::bind(udp.local_addr()?)
            .with_context(|| format!("dns.listen {}: cannot listen (TCP)", spec.listen))?;
        let register = match spec.register_listen {
            None => None,
            Some(addr) => Some(
                std::net::UdpSocket::bind(addr)
                    .with_context(|| format!("dns.register_listen {addr}: cannot bind"))?,
            ),
        };
        let metrics = match spec.metrics {
            None => None,
            Some(addr) => Some(std::net::TcpListener::bind(addr).with_context(|| {
                format!(
                    "dns.metrics: cannot listen on {addr} (in use, or not an address of this host)"
                )
            })?),
        };
        for s in [Some(&udp), register.as_ref()].into_iter().flatten() {
            s.set_nonblocking(true)?;
        }
        tcp.set_nonblocking(true)?;
        Ok(Sockets {
            udp,
            tcp,
            register,
            metrics,
        })
    }
}

/// Runs the AVES DNS service of `spec` on `sockets` until `stop` resolves: the zone
/// with `binder` for SETUPs, gateways' REGISTERs (when `register_listen` is set) and
/// `/metrics` (when `metrics` is set, on its own thread). Then prints the counters
/// (`dns NAME N` lines) on stdout. Used by `aves dns` (with [`UdpBinder`]) and by
/// `aves run` on a waypoint with `[dns]` (with [`LocalBinder`]); must run inside a
/// tokio runtime with I/O and time enabled.
pub async fn run(
    spec: &crate::config::DnsSpec,
    binder: std::sync::Arc<dyn Binder>,
    sockets: Sockets,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let handler = handler::AvesDns::new(spec, binder);
    let counters = handler.counters();
    let udp = UdpSocket::from_std(sockets.udp)?;
    let tcp = TcpListener::from_std(sockets.tcp)?;
    // Gateways' REGISTER messages (§5.3), when configured.
    let reg_counters = std::sync::Arc::new(register::RegisterCounters::default());
    let (reg_stop, reg_stopped) = tokio::sync::oneshot::channel::<()>();
    let reg_task = match sockets.register {
        None => None,
        Some(sock) => {
            let addr = sock.local_addr()?;
            let sock = UdpSocket::from_std(sock)?;
            let service = register::RegisterService::new(
                spec,
                handler.zone(),
                crate::proto::VerifierConfig::default(),
                crate::setup::now_us(),
            )?;
            tracing::info!(listen = %addr, "DNS: receiving REGISTER");
            Some(tokio::spawn(register::serve(
                sock,
                service,
                reg_counters.clone(),
                async move {
                    let _ = reg_stopped.await;
                },
            )))
        }
    };
    // The metrics server: its own thread, the daemon's HTTP code.
    let metrics_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let metrics_thread = match sockets.metrics {
        None => None,
        Some(listener) => {
            let addr = listener.local_addr()?;
            tracing::info!(address = %addr, "DNS metrics served at http://{addr}/metrics");
            let (stop, counters) = (metrics_stop.clone(), counters.clone());
            let (zone, reg_counters) = (handler.zone(), reg_counters.clone());
            let registering = spec.register_listen.is_some();
            let start_time_s = crate::stats::unix_time_s();
            Some(
                std::thread::Builder::new()
                    .name("aves-dns-metrics".into())
                    .spawn(move || {
                        let scrape = || {
                            let registration = metrics::Registration {
                                zone: &zone,
                                counters: registering.then_some(&*reg_counters),
                            };
                            metrics::render(&counters, start_time_s, Some(registration))
                        };
                        if let Err(e) = crate::metrics::serve(&listener, &stop, &scrape) {
                            tracing::warn!("DNS metrics server stopped: {e}");
                        }
                    })?,
            )
        }
    };
    tracing::info!(
        zone = %spec.zone,
        listen = %udp.local_addr()?,
        hosts = spec.hosts.len(),
        "DNS: serving (UDP and TCP)"
    );
    let served = serve(handler, udp, tcp, stop).await;
    let _ = reg_stop.send(());
    if let Some(t) = reg_task {
        let _ = t.await;
    }
    metrics_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(t) = metrics_thread {
        let _ = t.join();
    }
    served?;
    for (name, n) in counters.snapshot() {
        println!("dns {name} {n}");
    }
    if spec.register_listen.is_some() {
        for (name, n) in reg_counters.snapshot() {
            println!("dns {name} {n}");
        }
    }
    Ok(())
}

/// Serves DNS on `udp` and `tcp` with `handler` until `shutdown` resolves, then stops
/// gracefully (queries in progress are finished).
pub async fn serve(
    handler: AvesDns,
    udp: UdpSocket,
    tcp: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut server = Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
    let token = server.shutdown_token().clone();
    tokio::spawn(async move {
        shutdown.await;
        token.cancel();
    });
    server
        .block_until_done()
        .await
        .map_err(|e| anyhow::anyhow!("the DNS server stopped: {e}"))
}

/// End to end on a real socket: the server on 127.0.0.1 (its own thread and runtime),
/// queried by `dig` (Debian's dnsutils; CI installs it) and by raw garbage.
#[cfg(test)]
mod tests {
    use super::handler::tests::{Behaviour, TestBinder, SPEC};
    use super::*;
    use crate::config::parse_dns;
    use std::net::UdpSocket as StdUdp;
    use std::path::Path;
    use std::process::Command;
    use std::sync::Arc;

    struct Running {
        addr: SocketAddr,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
        binder: Arc<TestBinder>,
        counters: Arc<handler::DnsCounters>,
    }

    impl Drop for Running {
        fn drop(&mut self) {
            if let Some(s) = self.stop.take() {
                let _ = s.send(());
            }
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn start(text: &str) -> Running {
        let spec = parse_dns(
            Path::new("t.toml"),
            &text.replace("127.0.0.1:5353", "127.0.0.1:1"),
        )
        .unwrap();
        let binder = TestBinder::new(Behaviour::Accept);
        let handler = AvesDns::new(&spec, binder.clone());
        let counters = handler.counters();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                // Port 0 for UDP; TCP then takes the same port (retry if it is taken).
                let (udp, tcp) = loop {
                    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                    if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
                        break (udp, tcp);
                    }
                };
                addr_tx.send(udp.local_addr().unwrap()).unwrap();
                serve(handler, udp, tcp, async move {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
            });
        });
        Running {
            addr: addr_rx.recv().unwrap(),
            stop: Some(stop_tx),
            thread: Some(thread),
            binder,
            counters,
        }
    }

    /// Runs dig against the server; stdout.
    fn dig(s: &Running, args: &[&str]) -> String {
        let out = Command::new("dig")
            .arg(format!("@{}", s.addr.ip()))
            .arg("-p")
            .arg(s.addr.port().to_string())
            .args(["+time=2", "+tries=1"])
            .args(args)
            .output()
            .expect("dig runs (apt-get install dnsutils)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `(name, ttl, type, data)` of the answer section (`+noall +answer`).
    fn answers(text: &str) -> Vec<(String, u32, String, String)> {
        text.lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                assert!(f.len() >= 5, "{l}");
                (
                    f[0].to_string(),
                    f[1].parse().unwrap(),
                    f[3].to_string(),
                    f[4..].join(" "),
                )
            })
            .collect()
    }

    const HOST: &str = "b.home1.aves.example.";

    #[test]
    fn dig_gets_a_waypoint_address_with_ttl_0() {
        let s = start(SPEC);
        for transport in ["+notcp", "+tcp"] {
            let out = dig(
                &s,
                &[transport, "+noall", "+answer", "+comments", HOST, "A"],
            );
            assert!(out.contains("status: NOERROR"), "{out}");
            assert!(out.contains("flags: qr aa"), "authoritative: {out}");
            let a = answers(&out);
            assert_eq!(a.len(), 1, "{out}");
            assert_eq!(a[0].0, HOST);
            assert_eq!(a[0].1, 0, "TTL 0: {out}");
            assert_eq!(a[0].2, "A");
            let w: Ipv4Addr = a[0].3.parse().unwrap();
            assert!(
                (10..=13).contains(&w.octets()[3]) && w.octets()[..3] == [198, 51, 100],
                "{w}"
            );
            let seen = s.binder.seen();
            assert_eq!(seen.last().unwrap().waypoint, w);
            assert_eq!(seen.last().unwrap().initiator, Ipv4Addr::LOCALHOST);
            assert_eq!(
                seen.last().unwrap().initiator_prefix,
                0,
                "127.0.0.1 is no intranet"
            );
        }
        // SOA and NS carry the zone's TTL.
        let a = answers(&dig(&s, &["+noall", "+answer", "aves.example.", "SOA"]));
        assert_eq!((a[0].1, a[0].2.as_str()), (3600, "SOA"));
        let a = answers(&dig(&s, &["+noall", "+answer", "aves.example.", "NS"]));
        assert_eq!(a[0].3, "ns1.aves.example.");
        // AAAA: NOERROR without data.
        let out = dig(&s, &[HOST, "AAAA"]);
        assert!(
            out.contains("status: NOERROR") && out.contains("ANSWER: 0"),
            "{out}"
        );
        // Counted by type and code, and the two SETUPs' round trips observed.
        let by_type = s.counters.queries_by_type();
        for want in [
            ("A", "NOERROR", 2),
            ("SOA", "NOERROR", 1),
            ("NS", "NOERROR", 1),
            ("AAAA", "NOERROR", 1),
        ] {
            assert!(by_type.contains(&want), "{want:?} in {by_type:?}");
        }
        let text = metrics::render(&s.counters, 0.0, None).unwrap();
        assert!(
            text.contains("aves_setup_rtt_seconds_count{outcome=\"accept\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn dig_with_client_subnet_binds_the_prefix_and_sees_the_scope() {
        let s = start(SPEC);
        let out = dig(&s, &["+subnet=198.18.5.0/24", HOST, "A"]);
        assert!(
            out.contains("CLIENT-SUBNET: 198.18.5.0/24/24"),
            "scope echoed: {out}"
        );
        let seen = s.binder.seen();
        assert_eq!(seen[0].initiator, Ipv4Addr::new(198, 18, 5, 0));
        assert_eq!(seen[0].initiator_prefix, 24);
    }

    #[test]
    fn dig_axfr_is_refused() {
        let s = start(SPEC);
        let out = dig(&s, &["aves.example.", "AXFR"]);
        assert!(out.contains("Transfer failed"), "{out}");
        assert!(!out.contains("b.home1"), "no host names leak: {out}");
        let out = dig(&s, &["+notcp", "+comments", "aves.example.", "IXFR=1"]);
        assert!(out.contains("status: REFUSED"), "{out}");
        assert!(
            s.counters
                .answer_refused_transfer
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 2
        );
    }

    #[test]
    fn garbage_does_not_kill_the_server() {
        let s = start(SPEC);
        let sock = StdUdp::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut packets: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0xff; 11],
            vec![0xff; 12],
            vec![0; 512],
            vec![0xff; 4000],
            // One question whose name is a compression pointer to itself.
            [
                &[0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0][..],
                &[0xc0, 0x0c, 0, 1, 0, 1],
            ]
            .concat(),
            // A label longer than the packet.
            [
                &[0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0][..],
                &[63, b'a', b'b'],
            ]
            .concat(),
            // 65535 questions announced, none present.
            vec![
                0x12, 0x34, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            // An OPT record with a truncated ECS option.
            [
                &[0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1][..],
                b"\x01b\x05home1\x04aves\x07example\x00\x00\x01\x00\x01",
                &[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 6, 0, 8, 0, 8, 0, 1],
            ]
            .concat(),
            // A response (QR set): must not be answered (no reflection).
            [
                &[0x12, 0x34, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0][..],
                b"\x04aves\x07example\x00\x00\x06\x00\x01",
            ]
            .concat(),
        ];
        // Pseudo-random packets (xorshift, fixed seed): the same every run.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for n in 0..200usize {
            let len = 12 + (n * 7) % 300;
            let p: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            packets.push(p);
        }
        let mut buf = [0u8; 4096];
        let mut answered_response = false;
        for (i, p) in packets.iter().enumerate() {
            sock.send_to(p, s.addr).unwrap();
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                assert!(n >= 12, "packet {i}: an answer has a header");
                assert!(buf[2] & 0x80 != 0, "packet {i}: answers are responses");
                if i == 10 {
                    answered_response = true;
                }
            }
        }
        assert!(!answered_response, "a response is never answered");
        // Still serving, on both transports.
        for t in ["+notcp", "+tcp"] {
            let a = answers(&dig(&s, &[t, "+noall", "+answer", HOST, "A"]));
            assert_eq!(a.len(), 1, "{t}");
            assert_eq!(a[0].1, 0);
        }
        // Garbage on TCP too: a length prefix promising more than is sent, then close.
        {
            use std::io::Write;
            let mut c = std::net::TcpStream::connect(s.addr).unwrap();
            let _ = c.write_all(&[0xff, 0xff, 1, 2, 3]);
        }
        let a = answers(&dig(
            &s,
            &["+tcp", "+noall", "+answer", "aves.example.", "SOA"],
        ));
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn dig_scanner_gets_silence() {
        let s = start(SPEC);
        for i in 0..4 {
            let out = dig(&s, &[&format!("scan{i}.aves.example."), "A"]);
            assert!(out.contains("status: NXDOMAIN"), "{i}: {out}");
        }
        let out = dig(&s, &["+time=1", HOST, "A"]);
        assert!(!out.contains("status:"), "banned: no answer at all: {out}");
        assert!(
            out.contains("timed out") || out.contains("no servers"),
            "{out}"
        );
        assert!(s.binder.seen().is_empty());
    }
}
