//! Summing per-core counters into the totals that `aves ctl stats` and shutdown print.
//!
//! The text format is stable and line-oriented so scripts and tests can read it:
//!
//! ```text
//! port NAME rx_packets=N rx_bytes=N tx_packets=N tx_bytes=N
//! drop REASON N            (only reasons with N > 0)
//! event NAME N
//! ```

use aves_dataplane::counters::{CoreCounters, DropReason, EventCounters};
use std::sync::Arc;

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
}

fn events_of(e: &EventCounters) -> [(&'static str, u64); 12] {
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
    ]
}

/// Sums `cores` for `n_ports` ports.
pub fn sum(cores: &[Arc<CoreCounters>], n_ports: usize) -> Totals {
    let mut t = Totals {
        ports: vec![PortTotals::default(); n_ports],
        drops: [0; DropReason::COUNT],
        events: events_of(&EventCounters::default()).to_vec(),
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
        out
    }
}

#[cfg(test)]
mod tests {
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
}
