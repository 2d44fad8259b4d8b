//! Ethernet ports: configure, start/stop/close, link, stats, MAC, queue handles.

use crate::mbuf::{Burst, Mempool};
use crate::{check, raw, DpdkError};

/// How to configure a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConf {
    /// RX queues (one per lcore).
    pub rx_queues: u16,
    /// TX queues (one per lcore).
    pub tx_queues: u16,
    /// RX descriptors per queue (adjusted to the device's limits).
    pub rx_desc: u16,
    /// TX descriptors per queue (adjusted to the device's limits).
    pub tx_desc: u16,
    /// IP MTU; None keeps the device default.
    pub mtu: Option<u16>,
    /// Spread RX over queues by an IP-only RSS hash (so every fragment of a datagram
    /// lands on the same queue), if the device supports RSS.
    pub rss: bool,
    /// Accept frames for any MAC.
    pub promiscuous: bool,
}

/// Link state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LinkStatus {
    /// Link up.
    pub up: bool,
    /// Speed, Mb/s (0 if unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Basic device counters (`rte_eth_stats`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the device dropped because RX queues were full.
    pub imissed: u64,
    /// Erroneous received packets.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// Device counters of port `id` (`rte_eth_stats_get`); zeros if `id` is not a valid
/// port.
///
/// Safe from any thread, also while lcores poll the port's queues: the drivers read
/// their per-queue counters without taking or changing queue state, and an invalid id
/// is refused by DPDK. It is for the control thread, which holds port ids but not the
/// [`Port`]s (the main thread owns those). Call it only before the port is closed: a
/// closed id may be reused by another device.
pub fn port_stats(id: u16) -> PortStats {
    let mut s = raw::rte_eth_stats::default();
    // SAFETY: s is a valid out-pointer; DPDK validates the port id.
    let rc = unsafe { raw::rte_eth_stats_get(id, &mut s) };
    if rc < 0 {
        return PortStats::default();
    }
    PortStats {
        ipackets: s.ipackets,
        opackets: s.opackets,
        ibytes: s.ibytes,
        obytes: s.obytes,
        imissed: s.imissed,
        ierrors: s.ierrors,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    }
}

/// Link state of port `id`, without waiting; down if `id` is not a valid port. Safe from
/// any thread, like [`port_stats`].
pub fn port_link(id: u16) -> LinkStatus {
    let (mut speed, mut up, mut fd) = (0u32, 0i32, 0i32);
    // SAFETY: valid out-pointers; DPDK validates the port id.
    let rc = unsafe { raw::aves_link(id, &mut speed, &mut up, &mut fd) };
    if rc < 0 {
        return LinkStatus::default();
    }
    LinkStatus {
        up: up != 0,
        speed_mbps: speed,
        full_duplex: fd != 0,
    }
}

/// A configured port. Queue handles are taken out once each with
/// [`Port::take_rx_queue`] / [`Port::take_tx_queue`].
#[derive(Debug)]
pub struct Port {
    id: u16,
    rx_taken: Vec<bool>,
    tx_taken: Vec<bool>,
    started: bool,
}

/// The RX side of one queue of one port. Only its owner polls it.
#[derive(Debug)]
pub struct RxQueue {
    port: u16,
    queue: u16,
}

/// The TX side of one queue of one port. Only its owner sends on it.
#[derive(Debug)]
pub struct TxQueue {
    port: u16,
    queue: u16,
}

// IP-only RSS hash types (RTE_ETH_RSS_IP): IPv4, FRAG_IPV4, NONFRAG_IPV4_OTHER, IPv6,
// FRAG_IPV6, NONFRAG_IPV6_OTHER, IPV6_EX. Bits from rte_ethdev.h (RTE_BIT64(n)).
const RSS_IP: u64 = (1 << 2) | (1 << 3) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 13) | (1 << 15);

impl Port {
    /// Configures port `id` with `conf`; RX queues take mbufs from `pool`.
    pub fn configure(id: u16, conf: &PortConf, pool: &Mempool) -> Result<Port, DpdkError> {
        let mut info = raw::rte_eth_dev_info::default();
        // SAFETY: info is a valid out-pointer; the id is checked by DPDK.
        let rc = unsafe { raw::rte_eth_dev_info_get(id, &mut info) };
        check(|| format!("rte_eth_dev_info_get(port {id})"), rc)?;
        if conf.rx_queues == 0 || conf.tx_queues == 0 {
            return Err(DpdkError::invalid(
                format!("configure port {id}"),
                "at least one rx and one tx queue",
            ));
        }
        if conf.rx_queues > info.max_rx_queues || conf.tx_queues > info.max_tx_queues {
            return Err(DpdkError::invalid(
                format!("configure port {id}"),
                format!(
                    "device supports {} rx / {} tx queues, {} / {} asked (use fewer lcores)",
                    info.max_rx_queues, info.max_tx_queues, conf.rx_queues, conf.tx_queues
                ),
            ));
        }
        let mut ec = raw::rte_eth_conf::default();
        if let Some(mtu) = conf.mtu {
            let mtu = u32::from(mtu);
            if mtu < u32::from(info.min_mtu) || mtu > u32::from(info.max_mtu) {
                return Err(DpdkError::invalid(
                    format!("configure port {id}"),
                    format!(
                        "mtu {mtu} outside the device's range {}..={}",
                        info.min_mtu, info.max_mtu
                    ),
                ));
            }
            ec.rxmode.mtu = mtu;
        }
        let rss_hf = RSS_IP & info.flow_type_rss_offloads;
        if conf.rss && conf.rx_queues > 1 && rss_hf != 0 {
            ec.rxmode.mq_mode = raw::RTE_ETH_MQ_RX_RSS;
            ec.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        // SAFETY: ec is a fully initialised config that DPDK copies.
        let rc = unsafe { raw::rte_eth_dev_configure(id, conf.rx_queues, conf.tx_queues, &ec) };
        check(|| format!("rte_eth_dev_configure(port {id})"), rc)?;
        let (mut nrx, mut ntx) = (conf.rx_desc, conf.tx_desc);
        // SAFETY: valid out-pointers.
        let rc = unsafe { raw::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nrx, &mut ntx) };
        check(
            || format!("rte_eth_dev_adjust_nb_rx_tx_desc(port {id})"),
            rc,
        )?;
        // SAFETY: a pure query.
        let socket = unsafe { raw::rte_eth_dev_socket_id(id) } as u32;
        for q in 0..conf.rx_queues {
            // SAFETY: a NULL rx_conf means the device default; pool outlives the port
            // (the daemon closes ports before dropping the pool).
            let rc = unsafe {
                raw::rte_eth_rx_queue_setup(id, q, nrx, socket, std::ptr::null(), pool.as_ptr())
            };
            check(
                || format!("rte_eth_rx_queue_setup(port {id}, queue {q})"),
                rc,
            )?;
        }
        for q in 0..conf.tx_queues {
            // SAFETY: a NULL tx_conf means the device default.
            let rc = unsafe { raw::rte_eth_tx_queue_setup(id, q, ntx, socket, std::ptr::null()) };
            check(
                || format!("rte_eth_tx_queue_setup(port {id}, queue {q})"),
                rc,
            )?;
        }
        if conf.promiscuous {
            // SAFETY: plain call on a configured port.
            let rc = unsafe { raw::rte_eth_promiscuous_enable(id) };
            if rc < 0 && rc != -libc::ENOTSUP {
                check(|| format!("rte_eth_promiscuous_enable(port {id})"), rc)?;
            }
        }
        Ok(Port {
            id,
            rx_taken: vec![false; usize::from(conf.rx_queues)],
            tx_taken: vec![false; usize::from(conf.tx_queues)],
            started: false,
        })
    }

    /// The DPDK port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Starts the port.
    pub fn start(&mut self) -> Result<(), DpdkError> {
        // SAFETY: the port is configured with all its queues set up.
        let rc = unsafe { raw::rte_eth_dev_start(self.id) };
        check(|| format!("rte_eth_dev_start(port {})", self.id), rc)?;
        self.started = true;
        Ok(())
    }

    /// Stops the port. Call only when no lcore polls its queues any more.
    pub fn stop(&mut self) -> Result<(), DpdkError> {
        if !self.started {
            return Ok(());
        }
        // SAFETY: callers have stopped every lcore that used this port's queues.
        let rc = unsafe { raw::rte_eth_dev_stop(self.id) };
        self.started = false;
        check(|| format!("rte_eth_dev_stop(port {})", self.id), rc).map(|_| ())
    }

    /// Stops (if needed) and closes the port, releasing its queues' mbufs.
    pub fn close(mut self) -> Result<(), DpdkError> {
        self.stop()?;
        // SAFETY: the port is stopped and nothing polls it.
        let rc = unsafe { raw::rte_eth_dev_close(self.id) };
        check(|| format!("rte_eth_dev_close(port {})", self.id), rc).map(|_| ())
    }

    /// The port's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        let mut a = raw::rte_ether_addr::default();
        // SAFETY: a is a valid out-pointer.
        let rc = unsafe { raw::rte_eth_macaddr_get(self.id, &mut a) };
        if rc < 0 {
            return [0; 6];
        }
        a.addr_bytes
    }

    /// Link state, without waiting.
    pub fn link(&self) -> LinkStatus {
        port_link(self.id)
    }

    /// Device counters.
    pub fn stats(&self) -> PortStats {
        port_stats(self.id)
    }

    /// Extended device counters by name.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>, DpdkError> {
        let op = || format!("rte_eth_xstats_get(port {})", self.id);
        // SAFETY: NULL/0 asks for the count only.
        let n = unsafe { raw::rte_eth_xstats_get_names(self.id, std::ptr::null_mut(), 0) };
        let n = check(op, n)? as usize;
        let mut names = vec![raw::rte_eth_xstat_name::default(); n];
        let mut vals = vec![raw::rte_eth_xstat::default(); n];
        // SAFETY: names has room for n entries.
        let got = unsafe { raw::rte_eth_xstats_get_names(self.id, names.as_mut_ptr(), n as u32) };
        let got = check(op, got)? as usize;
        // SAFETY: vals has room for n entries.
        let gotv = unsafe { raw::rte_eth_xstats_get(self.id, vals.as_mut_ptr(), n as u32) };
        let gotv = check(op, gotv)? as usize;
        let k = got.min(gotv).min(n);
        Ok(vals[..k]
            .iter()
            .filter_map(|v| {
                let name = names.get(v.id as usize)?;
                let bytes: Vec<u8> = name
                    .name
                    .iter()
                    .take_while(|c| **c != 0)
                    .map(|c| *c as u8)
                    .collect();
                Some((String::from_utf8_lossy(&bytes).into_owned(), v.value))
            })
            .collect())
    }

    /// Takes the RX handle of queue `q` (once).
    pub fn take_rx_queue(&mut self, q: u16) -> Option<RxQueue> {
        let t = self.rx_taken.get_mut(usize::from(q))?;
        if std::mem::replace(t, true) {
            return None;
        }
        Some(RxQueue {
            port: self.id,
            queue: q,
        })
    }

    /// Takes the TX handle of queue `q` (once).
    pub fn take_tx_queue(&mut self, q: u16) -> Option<TxQueue> {
        let t = self.tx_taken.get_mut(usize::from(q))?;
        if std::mem::replace(t, true) {
            return None;
        }
        Some(TxQueue {
            port: self.id,
            queue: q,
        })
    }
}

impl RxQueue {
    /// Receives into the free slots of `burst`; returns how many arrived.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut Burst) -> usize {
        let (ptr, n) = burst.spare();
        if n == 0 {
            return 0;
        }
        // SAFETY: ptr points at n writable slots of the burst's array; this handle is the
        // only poller of (port, queue). DPDK hands over ownership of what it writes.
        let got = unsafe { raw::aves_rx_burst(self.port, self.queue, ptr, n) };
        burst.filled(usize::from(got));
        usize::from(got)
    }

    /// The port id.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl TxQueue {
    /// Sends what `burst` holds; what the device took leaves the burst, the rest stays
    /// (at the front). Returns how many were sent.
    #[inline]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> usize {
        let (ptr, n) = burst.filled_ptr();
        if n == 0 {
            return 0;
        }
        // SAFETY: ptr points at n owned mbufs; the device takes ownership of the first
        // `sent`, which `consumed` removes from the burst. Only this handle sends on
        // (port, queue).
        let sent = unsafe { raw::aves_tx_burst(self.port, self.queue, ptr, n) };
        burst.consumed(usize::from(sent));
        usize::from(sent)
    }

    /// The port id.
    pub fn port(&self) -> u16 {
        self.port
    }
}
