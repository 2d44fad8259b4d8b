//! `aves run`: start EAL, ports and lcores, serve the control socket, shut down cleanly.
//!
//! Order (as DPDK's examples): EAL → signals → mempool → ports (configure, start, link)
//! → per-lcore tables, rings and counters → control thread → launch workers (the main
//! lcore runs one too) → wait → totals → stop and close ports → check the mempool got
//! every mbuf back → EAL cleanup.
//!
//! Every lcore in the EAL core list is a worker and owns queue `i` of every port, so
//! each port gets as many RX/TX queue pairs as there are lcores. The control thread is
//! pinned to a CPU no lcore uses, when one exists; its helper threads (notice relay,
//! metrics HTTP server) inherit that pinning.
//!
//! The control side reads counters but never writes them: `stats`, `status` and
//! `/metrics` read the lcores' per-core counters, and the NIC counters through
//! [`dpdk_sys::port_stats`], which is safe from any thread. The control thread is joined
//! before the ports close, so it never reads a closed port.

use crate::config::{Config, IdlePolicy, Role};
use crate::ctl::{self, Request};
use crate::metrics;
use crate::registrar::{self, Registrar, RegistrarCounters};
use crate::roles;
use crate::setup::{self, SetupCounters, SetupService};
use crate::stats::{self, PoolStats, PortDevice, Snapshot};
use anyhow::{bail, Context, Result};
use aves_dataplane::addr::MacAddr;
use aves_dataplane::command::{Command, CommandError, Envelope, Notice, Outcome};
use aves_dataplane::counters::CoreCounters;
use aves_dataplane::engine::{Idle, MultiBufferMac, Worker, WorkerConfig};
use aves_dataplane::pipeline::gateway::Gateway;
use aves_dataplane::pipeline::router::{PortConfig, Router, RouterConfig};
use aves_dataplane::pipeline::waypoint::Waypoint;
use aves_dataplane::pipeline::Role as RoleTrait;
use dpdk_sys::ring::{self, Consumer, MbufConsumer, MbufProducer, Producer, ValueConsumer};
use dpdk_sys::{Eal, Mbuf, Mempool, Port, PortConf};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Command ring size per lcore (a power of two; usable capacity is one less).
const RING_SIZE: u32 = 256;
/// Handoff ring size between two lcores.
const HANDOFF_RING_SIZE: u32 = 1024;

/// Runs the daemon until SIGINT/SIGTERM.
pub fn run(cfg: Config, extra_eal: &[String]) -> Result<ExitCode> {
    let argv = cfg.eal_argv(extra_eal);
    #[cfg(feature = "bench-null-auth")]
    warn!("benchmark build: tunnel keys with algorithm `null` carry no authentication");
    info!(args = ?argv, "starting EAL");
    let eal = Eal::init(&argv).context(
        "EAL initialisation failed (check the EAL arguments, hugepages and permissions)",
    )?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }

    let mut lcores = vec![eal.main_lcore()];
    lcores.extend(eal.worker_lcores());
    let n_queues = lcores.len() as u16;

    let pool = Arc::new(
        Mempool::new(
            "aves_mbufs",
            cfg.mbufs,
            cfg.mbuf_cache,
            cfg.mbuf_data_room + 128,
            -1,
        )
        .context("creating the mbuf pool (more hugepage memory, or fewer engine.mbufs)")?,
    );
    let pool_size = pool.avail_count();

    let mut ports = Vec::new();
    for (i, spec) in cfg.ports.iter().enumerate() {
        let id = eal.port_by_name(spec.dpdk_name()).with_context(|| {
            format!(
                "port[{i}] `{}`: device `{}` not found (vdev not created, or PCI device not bound to a DPDK driver)",
                spec.name, spec.device
            )
        })?;
        let conf = PortConf {
            rx_queues: n_queues,
            tx_queues: n_queues,
            rx_desc: spec.rx_desc,
            tx_desc: spec.tx_desc,
            mtu: Some(spec.mtu),
            rss: n_queues > 1,
            promiscuous: spec.promiscuous,
        };
        let mut port = Port::configure(id, &conf, &pool)
            .with_context(|| format!("port[{i}] `{}`: configuring", spec.name))?;
        port.start()
            .with_context(|| format!("port[{i}] `{}`: starting", spec.name))?;
        let link = port.link();
        info!(
            port = %spec.name, id, device = %spec.device, mac = %MacAddr(port.mac()),
            queues = n_queues, link_up = link.up, speed_mbps = link.speed_mbps,
            addresses = ?spec.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            pools = spec.pools.len(), "port started"
        );
        if !link.up {
            warn!(port = %spec.name, "link is down");
        }
        ports.push(port);
    }

    let router_cfg = RouterConfig {
        ports: cfg
            .ports
            .iter()
            .zip(&ports)
            .map(|(s, p)| PortConfig {
                mac: MacAddr(p.mac()),
                addrs: s.addresses.clone(),
                pools: s.pools.clone(),
                mtu: s.mtu,
            })
            .collect(),
        routes: cfg.routes.clone(),
        neighbours: cfg
            .neighbours
            .iter()
            .map(|n| (n.port, n.ip, n.mac))
            .collect(),
        route_capacity: cfg.limits.routes,
        neighbour_capacity: cfg.limits.neighbours,
        neighbour_ttl_ns: cfg.limits.neighbour_ttl_s * 1_000_000_000,
    };
    let idle = match cfg.idle {
        IdlePolicy::Busy => Idle::Busy,
        IdlePolicy::Sleep {
            after_empty_polls,
            max_sleep_us,
        } => Idle::Sleep {
            after_empty_polls,
            max_sleep_us,
        },
    };

    let n = lcores.len();
    let err = |e: aves_dataplane::pipeline::router::RouterConfigError| {
        anyhow::anyhow!("{}: {}", cfg.file.display(), e.0)
    };
    let setup = Setup {
        eal,
        cfg: &cfg,
        ports,
        pool,
        pool_size,
        lcores,
        stop,
        idle,
    };
    match cfg.role {
        Role::Router => run_workers(setup, |_| Router::new(&router_cfg).map_err(err)),
        Role::Waypoint => {
            let wc = roles::waypoint_config(&cfg, router_cfg.clone())?;
            run_workers(setup, |_| {
                let mut w = Waypoint::<Mbuf>::new(&wc).map_err(err)?;
                // Tag whole bursts with the multi-buffer engine (decision 0009).
                match MultiBufferMac::new() {
                    Some(mac) => w.set_burst_mac(Box::new(mac)),
                    None => warn!("ipsec-mb unavailable: tunnel tags computed one at a time"),
                }
                Ok(w)
            })
        }
        Role::Gateway => run_workers(setup, |q| {
            let gc = roles::gateway_config(&cfg, router_cfg.clone(), q, n)?;
            let mut g = Gateway::<Mbuf>::new(&gc).map_err(err)?;
            // Verify whole bursts with the multi-buffer engine (decision 0009).
            match MultiBufferMac::new() {
                Some(mac) => g.set_burst_mac(Box::new(mac)),
                None => warn!("ipsec-mb unavailable: tunnel tags verified one at a time"),
            }
            Ok(g)
        }),
    }
}

/// What `run` has set up before the workers exist.
struct Setup<'a> {
    eal: Eal,
    cfg: &'a Config,
    ports: Vec<Port>,
    pool: Arc<Mempool>,
    pool_size: u32,
    lcores: Vec<u32>,
    stop: Arc<AtomicBool>,
    idle: Idle,
}

/// Builds one worker per lcore with the role `make_role(queue)` returns, runs them and
/// the control thread until stopped, then prints totals and shuts down.
fn run_workers<R: RoleTrait<Mbuf> + Send + 'static>(
    setup: Setup<'_>,
    make_role: impl Fn(usize) -> Result<R>,
) -> Result<ExitCode> {
    let Setup {
        eal,
        cfg,
        mut ports,
        pool,
        pool_size,
        lcores,
        stop,
        idle,
    } = setup;
    let cfg = cfg.clone();
    // Handoff rings between every pair of lcores (decision 0006).
    let n = lcores.len();
    let mut handoff_tx: Vec<Vec<Option<MbufProducer>>> =
        (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
    let mut handoff_rx: Vec<Vec<MbufConsumer>> = (0..n).map(|_| Vec::new()).collect();
    for (i, row) in handoff_tx.iter_mut().enumerate() {
        for (j, slot) in row.iter_mut().enumerate() {
            if i != j {
                let (tx, rx) = ring::mbuf_channel(&format!("aves_ho{i}_{j}"), HANDOFF_RING_SIZE)
                    .context("creating a handoff ring")?;
                *slot = Some(tx);
                if let Some(r) = handoff_rx.get_mut(j) {
                    r.push(rx);
                }
            }
        }
    }
    let mut handoff_tx = handoff_tx.into_iter();
    let mut handoff_rx = handoff_rx.into_iter();
    let mut workers = Vec::new();
    let mut links = Vec::new();
    let mut notice_rxs = Vec::new();
    let mut all_counters = Vec::new();
    for (q, &lcore) in lcores.iter().enumerate() {
        let role = make_role(q)?;
        let (cmd_tx, cmd_rx) = ring::channel::<Envelope>(&format!("aves_cmd{lcore}"), RING_SIZE)
            .context("creating a command ring")?;
        let (ack_tx, ack_rx) = ring::channel::<Envelope>(&format!("aves_ack{lcore}"), RING_SIZE)
            .context("creating an ack ring")?;
        let (notice_tx, notice_rx) =
            ring::value_channel::<Notice>(&format!("aves_ntc{lcore}"), RING_SIZE)
                .context("creating a notice ring")?;
        let counters = Arc::new(CoreCounters::default());
        let mut rx = Vec::new();
        let mut tx = Vec::new();
        for p in &mut ports {
            rx.push(
                p.take_rx_queue(q as u16)
                    .context("rx queue already taken")?,
            );
            tx.push(
                p.take_tx_queue(q as u16)
                    .context("tx queue already taken")?,
            );
        }
        workers.push(Worker {
            lcore,
            rx,
            tx,
            role,
            commands: cmd_rx,
            acks: ack_tx,
            notices: notice_tx,
            handoff_tx: handoff_tx.next().unwrap_or_default(),
            handoff_rx: handoff_rx.next().unwrap_or_default(),
            counters: Arc::clone(&counters),
            pool: Arc::clone(&pool),
            stop: Arc::clone(&stop),
            config: WorkerConfig {
                idle,
                pending_capacity: cfg.limits.pending,
                ..WorkerConfig::default()
            },
        });
        links.push(LcoreLink {
            lcore,
            commands: cmd_tx,
            acks: ack_rx,
        });
        notice_rxs.push((lcore, notice_rx));
        all_counters.push(counters);
    }

    let sources = Sources {
        counters: all_counters.clone(),
        lcores: lcores.clone(),
        port_ids: ports.iter().map(Port::id).collect(),
        pool: Arc::clone(&pool),
        start_time_s: stats::unix_time_s(),
    };
    let metrics_listener = match cfg.metrics {
        None => None,
        Some(addr) => {
            let l = TcpListener::bind(addr).with_context(|| {
                format!(
                    "{}: control.metrics: cannot listen on {addr} (in use, or not an address of this host)",
                    cfg.file.display()
                )
            })?;
            info!(address = %addr, "metrics served at http://{addr}/metrics");
            Some(l)
        }
    };
    // The SETUP service's socket, bound now so that a bad address stops the start.
    let setup_socket = match cfg.control.listen {
        Some(addr) if cfg.role == Role::Waypoint => Some(
            UdpSocket::bind(addr)
                .with_context(|| format!("control.listen {addr}: cannot bind the SETUP socket"))?,
        ),
        _ => None,
    };

    // A DNS server co-located with the waypoint (`[dns]` in its config): its sockets
    // bound now, like the SETUP socket.
    let dns = match &cfg.dns {
        Some(spec) if cfg.role == Role::Waypoint => Some((
            spec.clone(),
            crate::dns::Sockets::bind(spec)
                .with_context(|| format!("{}: [dns]", cfg.file.display()))?,
        )),
        Some(_) => {
            warn!("[dns] is served only with a waypoint (co-located); on a {:?} run it with `aves dns`", cfg.role);
            None
        }
        None => None,
    };

    // Control thread on a CPU no lcore uses.
    let lcore_cpus: Vec<usize> = lcores.iter().filter_map(|l| eal.lcore_cpu(*l)).collect();
    let control_cpu = cfg.control_cpu.or_else(|| {
        core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .find(|id| !lcore_cpus.contains(id))
    });
    let control = {
        let cfg = cfg.clone();
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("aves-control".into())
            .spawn(move || {
                match control_cpu {
                    Some(id) if core_affinity::set_for_current(core_affinity::CoreId { id }) => {
                        info!(cpu = id, "control thread pinned")
                    }
                    _ => warn!("no free CPU for the control thread; it shares a CPU with an lcore"),
                }
                control_loop(
                    &cfg,
                    links,
                    notice_rxs,
                    &sources,
                    metrics_listener,
                    setup_socket,
                    dns,
                    &stop,
                )
            })
            .context("spawning the control thread")?
    };

    info!(
        lcores = ?lcores, role = ?cfg.role, socket = %cfg.control_socket.display(),
        "engine running; stop with SIGINT or SIGTERM"
    );
    let mut workers = workers.into_iter();
    let main_worker = workers.next().context("no lcores")?;
    for w in workers {
        let lcore = w.lcore;
        eal.launch(lcore, move || w.run())
            .with_context(|| format!("launching lcore {lcore}"))?;
    }
    let main_rc = main_worker.run();
    let rcs = eal.wait_all();
    match control.join() {
        Ok(Err(e)) => warn!("control thread: {e:#}"),
        Err(_) => warn!("control thread panicked"),
        Ok(Ok(())) => {}
    }
    info!(main_rc, workers = ?rcs, "lcores stopped");

    // Totals.
    let names: Vec<String> = cfg.ports.iter().map(|p| p.name.clone()).collect();
    let totals = stats::sum(&all_counters, cfg.ports.len());
    println!("== aves totals ==");
    for l in totals.lines(&names) {
        println!("{l}");
    }
    for (p, spec) in ports.iter().zip(&cfg.ports) {
        let s = p.stats();
        println!(
            "nic {} ipackets={} opackets={} ibytes={} obytes={} imissed={} ierrors={} oerrors={} rx_nombuf={}",
            spec.name, s.ipackets, s.opackets, s.ibytes, s.obytes, s.imissed, s.ierrors, s.oerrors, s.rx_nombuf
        );
    }
    for p in &mut ports {
        if let Err(e) = p.stop() {
            warn!("stopping port: {e}");
        }
    }
    for p in ports {
        if let Err(e) = p.close() {
            warn!("closing port: {e}");
        }
    }
    let free = pool.avail_count();
    println!("mempool free={free} size={pool_size}");
    drop(pool);
    if let Err(e) = eal.cleanup() {
        warn!("EAL cleanup: {e}");
    }
    if free != pool_size {
        eprintln!(
            "error: {} mbufs were not returned to the pool",
            pool_size.saturating_sub(free)
        );
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// Control's ends of one lcore's rings.
struct LcoreLink {
    lcore: u32,
    commands: Producer<Envelope>,
    acks: Consumer<Envelope>,
}

type Links = Mutex<Vec<LcoreLink>>;

fn lock(links: &Links) -> MutexGuard<'_, Vec<LcoreLink>> {
    links.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the control side reads counters and device state from.
struct Sources {
    /// Per-core counters; core `i` runs on `lcores[i]`.
    counters: Vec<Arc<CoreCounters>>,
    lcores: Vec<u32>,
    /// DPDK port id per config port.
    port_ids: Vec<u16>,
    pool: Arc<Mempool>,
    start_time_s: f64,
}

impl Sources {
    /// Reads everything now; `setup`: the SETUP service's counters, if it runs.
    fn snapshot(&self, cfg: &Config, setup: Option<&SetupCounters>) -> Snapshot {
        let devices = self
            .port_ids
            .iter()
            .map(|&id| {
                let link = dpdk_sys::port_link(id);
                let s = dpdk_sys::port_stats(id);
                Some(PortDevice {
                    link_up: link.up,
                    speed_mbps: link.speed_mbps,
                    nic: stats::NicStats {
                        ipackets: s.ipackets,
                        opackets: s.opackets,
                        ibytes: s.ibytes,
                        obytes: s.obytes,
                        imissed: s.imissed,
                        ierrors: s.ierrors,
                        oerrors: s.oerrors,
                        rx_nombuf: s.rx_nombuf,
                    },
                })
            })
            .collect();
        let pool = PoolStats {
            available: u64::from(self.pool.avail_count()),
            size: u64::from(self.pool.size()),
        };
        let mut snap = Snapshot::take(
            cfg,
            &self.counters,
            &self.lcores,
            devices,
            Some(pool),
            self.start_time_s,
        );
        snap.setup = setup.map(SetupCounters::totals);
        snap.tsc_hz = dpdk_sys::tsc_hz();
        snap
    }
}

/// Whether this daemon runs the waypoint's SETUP service: over UDP (`[control] listen`),
/// in-process for a co-located DNS server (`[dns]`), or both.
fn setup_service_runs(cfg: &Config) -> bool {
    cfg.role == Role::Waypoint && (cfg.control.listen.is_some() || cfg.dns.is_some())
}

/// Runs the control thread's jobs until `stop`: the notice relay, the metrics server,
/// the SETUP service (UDP and in-process), the co-located DNS server and the REGISTER
/// sender (in scoped threads, which inherit the control thread's CPU) and the control
/// socket.
#[allow(clippy::too_many_arguments)]
fn control_loop(
    cfg: &Config,
    links: Vec<LcoreLink>,
    notices: Vec<(u32, ValueConsumer<Notice>)>,
    sources: &Sources,
    metrics_listener: Option<TcpListener>,
    setup_socket: Option<UdpSocket>,
    dns: Option<(crate::config::DnsSpec, crate::dns::Sockets)>,
    stop: &AtomicBool,
) -> Result<()> {
    let links = Mutex::new(links);
    let seq = AtomicU64::new(0);
    let setup_counters = SetupCounters::default();
    let reg_counters = RegistrarCounters::default();
    let (reg_tx, reg_rx) = std::sync::mpsc::channel::<std::net::Ipv4Addr>();
    let registration = match (&cfg.register, cfg.gateway) {
        (Some(spec), Some(g)) => {
            let k = cfg
                .control
                .keys
                .last()
                .context("gateway.register needs a [[control.key]]")?;
            let key = aves_dataplane::auth::Key::new(k.id, k.algorithm, &k.secret)
                .map_err(|e| anyhow::anyhow!("control.key {}: {e:?}", k.id))?;
            let address = cfg
                .ports
                .get(usize::from(g.public))
                .and_then(|p| p.addresses.first())
                .map(|a| a.addr())
                .context("the public port has no address")?;
            Some((Registrar::new(spec.clone(), key, address), g.public))
        }
        _ => None,
    };
    let public_port = registration.as_ref().map(|(_, p)| *p);
    let reg_counters_ref = registration.as_ref().map(|_| &reg_counters);
    // The SETUP service, shared by its UDP socket and the co-located DNS server.
    let service = if setup_service_runs(cfg) {
        let local = match &setup_socket {
            Some(s) => s.local_addr()?.ip(),
            None => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        };
        Some(Mutex::new(setup_service(cfg, local)?))
    } else {
        None
    };
    let service = service.as_ref();
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("aves-relay".into())
            .spawn_scoped(s, || relay(&links, notices, stop))
            .context("spawning the notice relay")?;
        let setup_on = service.is_some().then_some(&setup_counters);
        if let Some(listener) = metrics_listener {
            std::thread::Builder::new()
                .name("aves-metrics".into())
                .spawn_scoped(s, move || {
                    let scrape = || {
                        let mut text = metrics::render(&sources.snapshot(cfg, setup_on))?;
                        if let Some(c) = reg_counters_ref {
                            text.push_str(&c.prometheus_text());
                        }
                        Ok(text)
                    };
                    if let Err(e) = metrics::serve(&listener, stop, &scrape) {
                        warn!("metrics server stopped: {e}");
                    }
                })
                .context("spawning the metrics server")?;
        }
        if let (Some(socket), Some(service)) = (setup_socket, service) {
            let (links, seq, setup_counters) = (&links, &seq, &setup_counters);
            std::thread::Builder::new()
                .name("aves-setup".into())
                .spawn_scoped(s, move || {
                    let mut lcores = RingLcores { links, seq };
                    if let Err(e) =
                        setup::serve_udp(&socket, service, &mut lcores, setup_counters, stop)
                    {
                        warn!("SETUP service stopped: {e}");
                    }
                })
                .context("spawning the SETUP service")?;
        }
        if let (Some((spec, sockets)), Some(service)) = (dns, service) {
            // The co-located DNS server (decision 0012): its SETUPs reach the service
            // through a channel, answered by a thread of their own.
            let (binder, requests) = crate::dns::LocalBinder::new(spec.max_pending);
            let (links, seq, setup_counters) = (&links, &seq, &setup_counters);
            std::thread::Builder::new()
                .name("aves-setup-loc".into())
                .spawn_scoped(s, move || {
                    let mut lcores = RingLcores { links, seq };
                    setup::serve_local(&requests, service, &mut lcores, setup_counters, stop);
                })
                .context("spawning the in-process SETUP service")?;
            std::thread::Builder::new()
                .name("aves-dns".into())
                .spawn_scoped(s, move || {
                    if let Err(e) = run_colocated_dns(&spec, binder, sockets, stop) {
                        warn!("DNS server stopped: {e:#}");
                    }
                })
                .context("spawning the DNS server")?;
        }
        if let Some((registrar, _)) = registration {
            let counters = &reg_counters;
            std::thread::Builder::new()
                .name("aves-register".into())
                .spawn_scoped(s, move || registrar::run(registrar, reg_rx, counters, stop))
                .context("spawning the REGISTER sender")?;
        }
        let reg = Registration {
            counters: reg_counters_ref,
            public_port,
            changes: reg_tx,
        };
        serve_socket(cfg, &links, sources, &seq, &setup_counters, &reg, stop)
    })
}

/// Runs the co-located DNS server on a current-thread runtime (this thread) until
/// `stop`, handing its SETUPs to the waypoint through `binder`.
fn run_colocated_dns(
    spec: &crate::config::DnsSpec,
    binder: crate::dns::LocalBinder,
    sockets: crate::dns::Sockets,
    stop: &AtomicBool,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the DNS server's runtime")?;
    rt.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = crate::dns::run(spec, Arc::new(binder), sockets, async move {
            let _ = rx.await;
        });
        tokio::pin!(served);
        let mut tx = Some(tx);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                r = &mut served => return r,
                _ = tick.tick() => {
                    if stop.load(Ordering::Relaxed) {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(());
                        }
                    }
                }
            }
        }
    })
}

/// The SETUP service for this waypoint's configuration, answering from `local` (the
/// UDP socket's address; unused by the in-process path).
fn setup_service(cfg: &Config, local: IpAddr) -> Result<SetupService> {
    let pools = cfg.ports.iter().flat_map(|p| p.pools.clone()).collect();
    let mut gateways: Vec<_> = cfg.tunnel.keys.iter().filter_map(|k| k.gateway).collect();
    gateways.dedup();
    let mut sc = setup::ServiceConfig::new(pools, gateways);
    sc.verifier.max_skew_us = cfg.control.max_skew_s * 1_000_000;
    sc.verifier.window = cfg.control.replay_window;
    sc.delayed = cfg
        .delayed_binding
        .enabled
        .then_some(setup::DelayedBinding {
            wait_us: cfg.delayed_binding.wait_s * 1_000_000,
        });
    let keys = cfg
        .control
        .keys
        .iter()
        .map(|k| {
            aves_dataplane::auth::Key::new(k.id, k.algorithm, &k.secret)
                .map_err(|e| anyhow::anyhow!("control.key {}: {e}", k.id))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SetupService::new(sc, keys, local, setup::now_us()))
}

/// The lcores through the command rings, for the SETUP service.
struct RingLcores<'a> {
    links: &'a Links,
    seq: &'a AtomicU64,
}

impl setup::Lcores for RingLcores<'_> {
    fn apply(&mut self, cmd: &Command) -> Option<Vec<Result<(), CommandError>>> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        match apply_collect(&mut lock(self.links), cmd, seq) {
            Ok(outcomes) => Some(outcomes.into_iter().map(|o| o.result).collect()),
            Err(e) => {
                warn!("SETUP: {e}");
                None
            }
        }
    }
}

/// Passes what one lcore learned (neighbours) to every other lcore as commands, and
/// drains the acks of those commands so ack rings never fill. See
/// `docs/decisions/0005-state-across-lcores.md`.
fn relay(links: &Links, mut notices: Vec<(u32, ValueConsumer<Notice>)>, stop: &AtomicBool) {
    let mut relayed = 0u64;
    // Losses and refusals are reported at most once a second: a flood of new sources
    // (each a rejection notice on a waypoint) must not become a flood of log lines.
    let (mut lost, mut refused) = (0u64, 0u64);
    let mut last_report = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        for (from, rx) in notices.iter_mut() {
            while let Some(n) = rx.recv() {
                busy = true;
                let Some(cmd) = n.to_command() else {
                    warn!(kind = n.kind, "unknown notice from lcore {from}");
                    continue;
                };
                for l in lock(links).iter_mut().filter(|l| l.lcore != *from) {
                    let env = Box::new(Envelope {
                        seq: 0,
                        cmd: cmd.clone(),
                        outcome: None,
                    });
                    if l.commands.send(env).is_err() {
                        lost += 1;
                    }
                }
                relayed += 1;
            }
        }
        for l in lock(links).iter_mut() {
            while let Some(env) = l.acks.recv() {
                if env.seq == 0 && env.outcome.is_some_and(|o| o.result.is_err()) {
                    refused += 1;
                    debug!(lcore = l.lcore, cmd = ?env.cmd, "relayed notice refused");
                }
            }
        }
        if (lost > 0 || refused > 0) && last_report.elapsed() >= Duration::from_secs(1) {
            warn!(
                lost,
                refused, "relayed notices: lost (command ring full) or refused by an lcore"
            );
            (lost, refused) = (0, 0);
            last_report = Instant::now();
        }
        if !busy {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    info!(relayed, "notice relay stopped");
}

/// What the control socket knows of the gateway's registration (§5.3).
struct Registration<'a> {
    /// The sender's counters, when it runs.
    counters: Option<&'a RegistrarCounters>,
    /// The port whose address REGISTER reports.
    public_port: Option<u16>,
    /// New public addresses for the sender.
    changes: std::sync::mpsc::Sender<std::net::Ipv4Addr>,
}

/// Serves the control socket until `stop`.
fn serve_socket(
    cfg: &Config,
    links: &Links,
    sources: &Sources,
    seq: &AtomicU64,
    setup_counters: &SetupCounters,
    reg: &Registration<'_>,
    stop: &AtomicBool,
) -> Result<()> {
    let path = &cfg.control_socket;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            bail!("{} is in use by another aves", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    info!(socket = %path.display(), "control socket listening");
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = serve(stream, cfg, links, sources, seq, setup_counters, reg) {
                    warn!("control connection: {e:#}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => warn!("control socket accept: {e}"),
        }
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// Handles one connection: requests until EOF.
fn serve(
    stream: UnixStream,
    cfg: &Config,
    links: &Links,
    sources: &Sources,
    seq: &AtomicU64,
    setup_counters: &SetupCounters,
    reg: &Registration<'_>,
) -> Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream.take(64 * ctl::MAX_LINE as u64));
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.len() > ctl::MAX_LINE {
            writeln!(out, "error: request longer than {} bytes", ctl::MAX_LINE)?;
            return Ok(());
        }
        let reply = match ctl::parse_request(&line, cfg) {
            Err(e) => vec![format!("error: {e}")],
            Ok(Request::Ping) => vec!["ok pong".into()],
            Ok(Request::Stats) => {
                let names: Vec<String> = cfg.ports.iter().map(|p| p.name.clone()).collect();
                let mut l = stats::sum(&sources.counters, cfg.ports.len()).lines(&names);
                if setup_service_runs(cfg) {
                    l.extend(setup_counters.lines());
                }
                if let Some(c) = reg.counters {
                    l.extend(c.lines());
                }
                l.push("ok".into());
                l
            }
            Ok(Request::Status) => {
                let setup_on = setup_service_runs(cfg).then_some(setup_counters);
                let mut l = sources.snapshot(cfg, setup_on).status_lines();
                l.push("ok".into());
                l
            }
            Ok(Request::Apply(cmd)) => {
                let n = seq.fetch_add(1, Ordering::Relaxed) + 1;
                let moved = match &cmd {
                    Command::SetAddress { port, addr } if Some(*port) == reg.public_port => {
                        Some(addr.addr())
                    }
                    _ => None,
                };
                let reply = apply_everywhere(&mut lock(links), cmd, n);
                if let Some(a) = moved.filter(|_| reply.starts_with("ok")) {
                    // The new public address: REGISTER at once (§5.3).
                    let _ = reg.changes.send(a);
                    info!(address = %a, "public address set");
                }
                vec![reply]
            }
        };
        for l in reply {
            writeln!(out, "{l}")?;
        }
    }
}

/// Sends `cmd` to every lcore and waits (≤ 2 s) for each outcome; the reply line for
/// the control socket.
fn apply_everywhere(links: &mut [LcoreLink], cmd: Command, seq: u64) -> String {
    let outcomes = match apply_collect(links, &cmd, seq) {
        Ok(o) => o,
        Err(e) => return format!("error: {e}"),
    };
    let errors: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.result.err().map(|e| format!("lcore {}: {e}", o.lcore)))
        .collect();
    if errors.is_empty() {
        format!("ok applied on {} lcores", links.len())
    } else {
        format!("error: {}", errors.join("; "))
    }
}

/// Sends `cmd` to every lcore and waits (≤ 2 s) for each outcome. The caller holds the
/// links' lock throughout, so the relay cannot take these acks. `Err` when a command
/// ring is full or an lcore did not answer in time.
fn apply_collect(
    links: &mut [LcoreLink],
    cmd: &Command,
    seq: u64,
) -> std::result::Result<Vec<Outcome>, String> {
    let mut waiting = Vec::new();
    for link in links.iter_mut() {
        let env = Box::new(Envelope {
            seq,
            cmd: cmd.clone(),
            outcome: None,
        });
        if link.commands.send(env).is_err() {
            return Err(format!("lcore {} command ring full", link.lcore));
        }
        waiting.push(link.lcore);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut outcomes = Vec::new();
    // Short pauses first: an lcore that polls answers within microseconds, and every
    // SETUP waits here (perf/dns.sh); then back off to 200 µs.
    let mut pause = Duration::from_micros(10);
    while !waiting.is_empty() && Instant::now() < deadline {
        for link in links.iter_mut() {
            while let Some(env) = link.acks.recv() {
                if env.seq != seq {
                    continue; // an answer to a request that timed out earlier
                }
                waiting.retain(|l| *l != link.lcore);
                if let Some(o) = env.outcome {
                    outcomes.push(o);
                }
            }
        }
        if !waiting.is_empty() {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_micros(200));
        }
    }
    if !waiting.is_empty() {
        return Err(format!("no answer from lcores {waiting:?} within 2 s"));
    }
    Ok(outcomes)
}
