//! Summing per-core counters into the totals that `aves ctl stats` and shutdown print,
//! and the [`Snapshot`] that `aves status` and the Prometheus exposition are made from.
//!
//! The text formats are stable and line-oriented so scripts and tests can read them.
//! `stats`:
//!
//! ```text
//! port NAME rx_packets=N rx_bytes=N tx_packets=N tx_bytes=N
//! drop REASON N            (only reasons with N > 0)
//! event NAME N
//! table NAME N             (entries in use, summed over lcores; at most one
//!                           housekeeping round old)
//! ```
//!
//! `status` ([`Snapshot::status_lines`]):
//!
//! ```text
//! role ROLE version VERSION uptime_s=N
//! port NAME link=up|down rx_packets=N ... nic_imissed=N nic_ierrors=N nic_oerrors=N nic_rx_nombuf=N
//! lcore ID busy_polls=N idle_polls=N busy_pct=P
//! mempool available=N size=N
//! table NAME used=N capacity=N used_pct=P   (the role's tables; used: the fullest lcore)
//! bindings installed=N claimed=N expired=N deleted=N rejected=N   (waypoint)
//! setup received=N accepted=N rejected=N refused=N local=N        (SETUP service)
//! drop REASON N            (non-zero reasons, most first, at most TOP_DROPS)
//! ```
//!
//! Invariant: reading never writes a counter. Lcores only bump their own plain per-core
//! counters; everything here is done by the control thread at read time.

use crate::config::Config;
use aves_dataplane::counters::{BindingLife, CoreCounters, DropReason, EventCounters, Table};
use std::sync::Arc;
use std::time::SystemTime;

/// How many drop reasons `status` lists.
pub const TOP_DROPS: usize = 10;

/// Totals of one port over all cores.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortTotals {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// Totals over all cores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Per port, indexed like the config's ports.
    pub ports: Vec<PortTotals>,
    /// Per drop reason, indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
    /// Events by name.
    pub events: Vec<(&'static str, u64)>,
    /// Table occupancy by name (gauges, summed).
    pub tables: Vec<(&'static str, u64)>,
}

fn events_of(e: &EventCounters) -> [(&'static str, u64); 13] {
    [
        ("handed_off", e.handed_off.get()),
        ("fragments_made", e.fragments_made.get()),
        ("datagrams_reassembled", e.datagrams_reassembled.get()),
        ("icmp_sent", e.icmp_sent.get()),
        ("icmp_suppressed", e.icmp_suppressed.get()),
        ("arp_replies_sent", e.arp_replies_sent.get()),
        ("arp_requests_sent", e.arp_requests_sent.get()),
        ("neighbours_learned", e.neighbours_learned.get()),
        ("commands_applied", e.commands_applied.get()),
        ("busy_polls", e.busy_polls.get()),
        ("idle_polls", e.idle_polls.get()),
        ("bindings_claimed", e.bindings_claimed.get()),
        ("connections_untracked", e.connections_untracked.get()),
    ]
}

/// Sums `cores` for `n_ports` ports.
pub fn sum(cores: &[Arc<CoreCounters>], n_ports: usize) -> Totals {
    let mut t = Totals {
        ports: vec![PortTotals::default(); n_ports],
        drops: [0; DropReason::COUNT],
        events: events_of(&EventCounters::default()).to_vec(),
        tables: Table::ALL.iter().map(|t| (t.name(), 0)).collect(),
    };
    for c in cores {
        for (i, p) in t.ports.iter_mut().enumerate() {
            if let Some(pc) = c.ports.get(i) {
                p.rx_packets += pc.rx_packets.get();
                p.rx_bytes += pc.rx_bytes.get();
                p.tx_packets += pc.tx_packets.get();
                p.tx_bytes += pc.tx_bytes.get();
            }
        }
        for r in DropReason::ALL {
            t.drops[r as usize] += c.drops_of(r);
        }
        for (acc, (_, v)) in t.events.iter_mut().zip(events_of(&c.events)) {
            acc.1 += v;
        }
        for (acc, table) in t.tables.iter_mut().zip(Table::ALL) {
            acc.1 += c.table(table);
        }
    }
    t
}

impl Totals {
    /// The stable text form, one line per item; `names` are the port names.
    pub fn lines(&self, names: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for (p, name) in self.ports.iter().zip(names) {
            out.push(format!(
                "port {name} rx_packets={} rx_bytes={} tx_packets={} tx_bytes={}",
                p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes
            ));
        }
        for r in DropReason::ALL {
            let n = self.drops[r as usize];
            if n > 0 {
                out.push(format!("drop {} {n}", r.name()));
            }
        }
        for (name, v) in &self.events {
            out.push(format!("event {name} {v}"));
        }
        for (name, v) in &self.tables {
            out.push(format!("table {name} {v}"));
        }
        out
    }
}

/// A port's device counters (DPDK's `rte_eth_stats`), as read by the control thread.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NicStats {
    /// Packets the device received (`ipackets`).
    pub ipackets: u64,
    /// Packets the device sent (`opackets`).
    pub opackets: u64,
    /// Bytes received (`ibytes`).
    pub ibytes: u64,
    /// Bytes sent (`obytes`).
    pub obytes: u64,
    /// Packets dropped by the device because the RX queue was full (`imissed`).
    pub imissed: u64,
    /// Erroneous packets received (`ierrors`).
    pub ierrors: u64,
    /// Failed transmissions (`oerrors`).
    pub oerrors: u64,
    /// RX mbuf allocation failures (`rx_nombuf`).
    pub rx_nombuf: u64,
}

/// What the device layer reports about one port at read time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortDevice {
    /// Link up.
    pub link_up: bool,
    /// Link speed in Mb/s (0 if unknown).
    pub speed_mbps: u32,
    /// Device counters.
    pub nic: NicStats,
}

/// Poll rounds, table occupancy and binding lifecycle of one lcore.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LcorePolls {
    /// EAL lcore id.
    pub lcore: u32,
    /// Rounds that received at least one packet.
    pub busy: u64,
    /// Rounds that received nothing.
    pub idle: u64,
    /// TSC cycles spent in busy rounds.
    pub busy_cycles: u64,
    /// Entries in use per table, indexed by `Table as usize`, as the lcore last
    /// reported them.
    pub tables: [u64; Table::COUNT],
    /// Binding lifecycle of this lcore's binding table (waypoint).
    pub bindings: BindingLife,
}

/// The waypoint's SETUP service counters at read time (`setup::SetupCounters`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SetupTotals {
    /// Authentic SETUPs received over UDP.
    pub received: u64,
    /// SETUPs handed over in-process by a co-located DNS server.
    pub local: u64,
    /// ACCEPTs sent for new requests.
    pub accepted: u64,
    /// REJECTs sent for new requests, by reason name (every reason).
    pub rejected: Vec<(&'static str, u64)>,
    /// SETUPs ignored: their waypoint address was in a wait state.
    pub ignored_waiting: u64,
    /// Retries answered from the cache.
    pub retries_answered: u64,
    /// Wait states entered.
    pub wait_states: u64,
    /// Authentic messages of a type the service does not serve.
    pub unexpected_type: u64,
    /// Control messages refused (malformed, not authentic, stale, replayed), by
    /// reason name (every reason).
    pub refused: Vec<(&'static str, u64)>,
}

/// The packet pool at read time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Mbufs free (in the ring and the per-lcore caches).
    pub available: u64,
    /// Mbufs in the pool.
    pub size: u64,
}

/// Everything `status` and `/metrics` show, read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The role's name (`router`, `waypoint`, `gateway`).
    pub role: &'static str,
    /// The aves version.
    pub version: &'static str,
    /// Port names, in config order.
    pub port_names: Vec<String>,
    /// Configured IP MTU per port.
    pub port_mtus: Vec<u16>,
    /// Engine counters summed over lcores.
    pub totals: Totals,
    /// Device state per port (config order); `None` when not read (no EAL).
    pub devices: Vec<Option<PortDevice>>,
    /// Poll rounds per lcore.
    pub lcores: Vec<LcorePolls>,
    /// The packet pool; `None` when not read.
    pub pool: Option<PoolStats>,
    /// Configured per-lcore table capacities by table name (those of the role).
    pub capacities: Vec<(&'static str, u64)>,
    /// The SETUP service's counters (a waypoint with `control.listen`), else `None`.
    pub setup: Option<SetupTotals>,
    /// When the daemon started, seconds since the Unix epoch.
    pub start_time_s: f64,
    /// When this snapshot was taken, seconds since the Unix epoch.
    pub now_s: f64,
    /// The TSC rate, cycles per second (0: unknown, e.g. in tests without an EAL).
    pub tsc_hz: u64,
}

/// The table whose metric label is `name`.
pub fn table_of(name: &str) -> Option<Table> {
    Table::ALL.into_iter().find(|t| t.name() == name)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_time_s() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The per-lcore table capacities `cfg` sets for its role, by table name, with
/// `lcores` lcores (the NAT port range is shared out among them).
pub fn capacities(cfg: &Config, lcores: usize) -> Vec<(&'static str, u64)> {
    use crate::config::Role;
    let l = &cfg.limits;
    let mut c = vec![
        ("routes", l.routes as u64),
        ("neighbours", l.neighbours as u64),
        ("pending", l.pending as u64),
    ];
    match cfg.role {
        Role::Router => {}
        Role::Waypoint => {
            c.push(("bindings", l.bindings as u64));
            c.push(("connections", l.connections as u64));
            c.push(("waits", l.waits as u64));
            c.push(("rejects", l.rejects as u64));
        }
        Role::Gateway => {
            c.push(("flows", l.flows as u64));
            c.push(("reassembly_contexts", l.reassembly_contexts as u64));
            c.push(("reassembly_bytes", l.reassembly_bytes as u64));
            if let Some(g) = cfg.gateway {
                // Each lcore hands out its share of the range (decision 0006).
                let ports = u64::from(g.nat_ports.1 - g.nat_ports.0) + 1;
                c.push(("nat_ports", ports.div_ceil(lcores.max(1) as u64)));
            }
        }
    }
    c
}

impl Snapshot {
    /// Reads the counters of `cores` (core `i` runs on lcore `lcores[i]`) and combines
    /// them with what the device layer reported (`devices`, `pool`).
    pub fn take(
        cfg: &Config,
        cores: &[Arc<CoreCounters>],
        lcores: &[u32],
        devices: Vec<Option<PortDevice>>,
        pool: Option<PoolStats>,
        start_time_s: f64,
    ) -> Snapshot {
        Snapshot {
            role: cfg.role.name(),
            version: env!("CARGO_PKG_VERSION"),
            port_names: cfg.ports.iter().map(|p| p.name.clone()).collect(),
            port_mtus: cfg.ports.iter().map(|p| p.mtu).collect(),
            totals: sum(cores, cfg.ports.len()),
            devices,
            lcores: cores
                .iter()
                .zip(lcores)
                .map(|(c, &lcore)| LcorePolls {
                    lcore,
                    busy: c.events.busy_polls.get(),
                    idle: c.events.idle_polls.get(),
                    busy_cycles: c.events.busy_cycles.get(),
                    tables: Table::ALL.map(|t| c.table(t)),
                    bindings: c.bindings.get(),
                })
                .collect(),
            pool,
            capacities: capacities(cfg, cores.len()),
            setup: None,
            start_time_s,
            now_s: unix_time_s(),
            tsc_hz: 0,
        }
    }

    /// The value of the event counter `name` summed over lcores (0 if unknown).
    pub fn event(&self, name: &str) -> u64 {
        self.totals
            .events
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    }

    /// The role's tables: `(name, per-lcore capacity, most used on any lcore)`, in
    /// the order of [`capacities`]. The fullest lcore is what runs out first.
    pub fn table_usage(&self) -> Vec<(&'static str, u64, u64)> {
        self.capacities
            .iter()
            .map(|&(name, cap)| {
                let used = table_of(name).map_or(0, |t| {
                    self.lcores
                        .iter()
                        .map(|l| l.tables[t as usize])
                        .max()
                        .unwrap_or(0)
                });
                (name, cap, used)
            })
            .collect()
    }

    /// The binding lifecycle summed over lcores (each lcore counts its own copy of a
    /// binding).
    pub fn binding_totals(&self) -> BindingLife {
        let mut t = BindingLife::default();
        for l in &self.lcores {
            t.installed += l.bindings.installed;
            t.expired += l.bindings.expired;
            t.deleted += l.bindings.deleted;
            for (a, b) in t.rejected.iter_mut().zip(l.bindings.rejected) {
                *a += b;
            }
        }
        t
    }

    /// Non-zero drop reasons, most first (ties by name), at most `n`.
    pub fn top_drops(&self, n: usize) -> Vec<(DropReason, u64)> {
        let mut d: Vec<(DropReason, u64)> = DropReason::ALL
            .iter()
            .map(|&r| (r, self.totals.drops[r as usize]))
            .filter(|&(_, v)| v > 0)
            .collect();
        d.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.name().cmp(b.0.name())));
        d.truncate(n);
        d
    }

    /// The `status` reply (without the final `ok`); format in the module docs.
    pub fn status_lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "role {} version {} uptime_s={}",
            self.role,
            self.version,
            (self.now_s - self.start_time_s).max(0.0) as u64
        )];
        for (i, name) in self.port_names.iter().enumerate() {
            let p = self.totals.ports.get(i).copied().unwrap_or_default();
            let mut l = format!("port {name}");
            if let Some(Some(d)) = self.devices.get(i) {
                l += &format!(" link={}", if d.link_up { "up" } else { "down" });
            }
            l += &format!(
                " rx_packets={} rx_bytes={} tx_packets={} tx_bytes={}",
                p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes
            );
            if let Some(Some(d)) = self.devices.get(i) {
                let n = d.nic;
                l += &format!(
                    " nic_imissed={} nic_ierrors={} nic_oerrors={} nic_rx_nombuf={}",
                    n.imissed, n.ierrors, n.oerrors, n.rx_nombuf
                );
            }
            out.push(l);
        }
        for c in &self.lcores {
            let rounds = c.busy + c.idle;
            let pct = if rounds == 0 {
                0.0
            } else {
                c.busy as f64 * 100.0 / rounds as f64
            };
            out.push(format!(
                "lcore {} busy_polls={} idle_polls={} busy_pct={pct:.1}",
                c.lcore, c.busy, c.idle
            ));
        }
        if let Some(p) = self.pool {
            out.push(format!("mempool available={} size={}", p.available, p.size));
        }
        for (name, cap, used) in self.table_usage() {
            let pct = if cap == 0 {
                0.0
            } else {
                used as f64 * 100.0 / cap as f64
            };
            out.push(format!(
                "table {name} used={used} capacity={cap} used_pct={pct:.1}"
            ));
        }
        if self.role == "waypoint" {
            let b = self.binding_totals();
            let rejected: u64 = b.rejected.iter().sum();
            out.push(format!(
                "bindings installed={} claimed={} expired={} deleted={} rejected={rejected}",
                b.installed,
                self.event("bindings_claimed"),
                b.expired,
                b.deleted
            ));
        }
        if let Some(st) = &self.setup {
            let rejected: u64 = st.rejected.iter().map(|(_, v)| v).sum();
            let refused: u64 = st.refused.iter().map(|(_, v)| v).sum();
            out.push(format!(
                "setup received={} accepted={} rejected={rejected} refused={refused} local={}",
                st.received, st.accepted, st.local
            ));
        }
        for (r, n) in self.top_drops(TOP_DROPS) {
            out.push(format!("drop {} {n}", r.name()));
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn sums_over_cores() {
        let a = Arc::new(CoreCounters::default());
        let b = Arc::new(CoreCounters::default());
        a.rx(0, 100);
        b.rx(0, 50);
        b.tx(1, 70);
        a.count_drop(DropReason::NoRoute);
        b.count_drop(DropReason::NoRoute);
        b.events.icmp_sent.inc();
        let t = sum(&[a, b], 2);
        assert_eq!(t.ports[0].rx_packets, 2);
        assert_eq!(t.ports[0].rx_bytes, 150);
        assert_eq!(t.ports[1].tx_bytes, 70);
        let lines = t.lines(&["a".into(), "b".into()]);
        assert!(lines.contains(&"port a rx_packets=2 rx_bytes=150 tx_packets=0 tx_bytes=0".into()));
        assert!(lines.contains(&"drop no_route 2".into()));
        assert!(lines.contains(&"event icmp_sent 1".into()));
        assert!(!lines.iter().any(|l| l.starts_with("drop truncated")));
    }

    fn router_cfg() -> Config {
        crate::config::parse(
            std::path::Path::new("t.toml"),
            "[engine]\nrole = \"router\"\n[[port]]\nname = \"a\"\ndevice = \"net_null0\"\n[[port]]\nname = \"b\"\ndevice = \"net_null1\"\n",
        )
        .unwrap()
    }

    /// A snapshot with known counters: lcore 3 and lcore 5, some drops, device state
    /// for port a only.
    pub(crate) fn sample() -> Snapshot {
        let a = Arc::new(CoreCounters::default());
        let b = Arc::new(CoreCounters::default());
        a.rx(0, 100);
        b.tx(1, 60);
        for _ in 0..3 {
            a.count_drop(DropReason::NoRoute);
        }
        b.count_drop(DropReason::TtlExceeded);
        b.count_drop(DropReason::ArpIgnored);
        a.events.busy_polls.add(1);
        a.events.busy_cycles.add(5200);
        a.events.idle_polls.add(3);
        b.events.idle_polls.add(7);
        a.events.icmp_sent.add(2);
        a.set_table(Table::Routes, 2);
        b.set_table(Table::Routes, 3);
        b.set_table(Table::Pending, 1);
        let dev = PortDevice {
            link_up: true,
            speed_mbps: 10_000,
            nic: NicStats {
                ipackets: 5,
                imissed: 4,
                ..NicStats::default()
            },
        };
        let mut s = Snapshot::take(
            &router_cfg(),
            &[a, b],
            &[3, 5],
            vec![Some(dev), None],
            Some(PoolStats {
                available: 8000,
                size: 8191,
            }),
            100.0,
        );
        s.now_s = 142.5;
        s.tsc_hz = 2_600_000_000;
        s
    }

    #[test]
    fn status_lists_ports_lcores_and_top_drops() {
        let s = sample();
        assert_eq!(
            s.status_lines(),
            vec![
                format!("role router version {} uptime_s=42", env!("CARGO_PKG_VERSION")),
                "port a link=up rx_packets=1 rx_bytes=100 tx_packets=0 tx_bytes=0 nic_imissed=4 nic_ierrors=0 nic_oerrors=0 nic_rx_nombuf=0".to_string(),
                "port b rx_packets=0 rx_bytes=0 tx_packets=1 tx_bytes=60".to_string(),
                "lcore 3 busy_polls=1 idle_polls=3 busy_pct=25.0".to_string(),
                "lcore 5 busy_polls=0 idle_polls=7 busy_pct=0.0".to_string(),
                "mempool available=8000 size=8191".to_string(),
                "table routes used=3 capacity=1024 used_pct=0.3".to_string(),
                "table neighbours used=0 capacity=4096 used_pct=0.0".to_string(),
                "table pending used=1 capacity=256 used_pct=0.4".to_string(),
                "drop no_route 3".to_string(),
                "drop arp_ignored 1".to_string(),
                "drop ttl_exceeded 1".to_string(),
            ]
        );
        assert_eq!(s.top_drops(1), vec![(DropReason::NoRoute, 3)]);
    }

    #[test]
    fn capacities_follow_the_role() {
        let c = capacities(&router_cfg(), 1);
        let names: Vec<_> = c.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["routes", "neighbours", "pending"]);
        assert_eq!(c[0].1, 1024);
    }
}
