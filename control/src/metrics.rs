//! Prometheus metrics: the exposition of a [`Snapshot`] and the tiny HTTP server that
//! serves it at `GET /metrics`. Every metric is listed in `docs/metrics.md`.
//!
//! Invariants:
//! - Lcores never see this module. They bump their plain per-core counters only; a scrape
//!   reads those (and the NIC counters, through DPDK calls that are safe from any thread)
//!   on the control side and builds a fresh [`prometheus::Registry`] from the values, so
//!   no metric object outlives a scrape and nothing is shared with the data path.
//! - Every drop reason appears in `aves_drops_total`, zeros included, so a rate over any
//!   reason is defined from the first scrape.
//! - The server never panics on input: a request is read into a fixed buffer of
//!   [`MAX_REQUEST`] bytes within [`REQUEST_TIMEOUT`]; anything else is answered with a
//!   4xx status or dropped, and one connection at a time is served.

use crate::stats::Snapshot;
use aves_dataplane::counters::DropReason;
use prometheus::{Encoder, Gauge, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// The `Content-Type` of the exposition (text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Longest request (line and headers) read; longer ones get 431.
pub const MAX_REQUEST: usize = 8192;
/// Time a client has to send its request, and to take the reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the idle server checks for connections and for the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// Event counters exported as `aves_<name>_total`, with their help text. `busy_polls`
/// and `idle_polls` are not here: they are per lcore.
const EVENTS: [(&str, &str); 9] = [
    (
        "icmp_sent",
        "ICMP messages the engine generated (echo replies and errors).",
    ),
    (
        "icmp_suppressed",
        "ICMP errors not sent: RFC 1812 4.3.2.7 forbids them or the rate limit held them back.",
    ),
    (
        "fragments_made",
        "IPv4 fragments the engine made for datagrams over the egress MTU.",
    ),
    (
        "datagrams_reassembled",
        "Datagrams the gateway reassembled from fragments.",
    ),
    (
        "handed_off",
        "Packets handed to the lcore that owns their flow (gateway).",
    ),
    ("arp_replies_sent", "ARP replies sent for owned addresses."),
    (
        "arp_requests_sent",
        "ARP requests sent to resolve next hops.",
    ),
    ("neighbours_learned", "Neighbour entries learned from ARP."),
    (
        "commands_applied",
        "Control commands applied, summed over lcores (one command counts once per lcore).",
    ),
];

/// A counter family registered in `reg`.
pub(crate) fn counter_vec(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(c.clone()))?;
    Ok(c)
}

/// A gauge family registered in `reg`.
pub(crate) fn gauge_vec(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

/// A gauge without labels registered in `reg`.
pub(crate) fn gauge(reg: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

/// A counter without labels registered in `reg`, set to `v`.
pub(crate) fn counter(reg: &Registry, name: &str, help: &str, v: u64) -> prometheus::Result<()> {
    let c = prometheus::IntCounter::new(name, help)?;
    reg.register(Box::new(c.clone()))?;
    c.inc_by(v);
    Ok(())
}

/// A registry holding every metric of `s`.
pub fn registry(s: &Snapshot) -> prometheus::Result<Registry> {
    let reg = Registry::new();
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);

    let info = gauge_vec(
        &reg,
        "aves_build_info",
        "Always 1; the labels say which aves runs in which role.",
        &["version", "role"],
    )?;
    info.with_label_values(&[s.version, s.role]).set(1);
    let start = Gauge::new(
        "aves_start_time_seconds",
        "When the daemon started, seconds since the Unix epoch.",
    )?;
    reg.register(Box::new(start.clone()))?;
    start.set(s.start_time_s);

    // Engine counters per port (frames as the lcores saw them).
    let engine = [
        (
            "aves_port_rx_packets_total",
            "Frames the engine received on the port.",
        ),
        (
            "aves_port_rx_bytes_total",
            "Bytes of the frames the engine received on the port (without FCS).",
        ),
        (
            "aves_port_tx_packets_total",
            "Frames the engine handed to the port and the NIC accepted.",
        ),
        (
            "aves_port_tx_bytes_total",
            "Bytes of the frames the NIC accepted for sending (without FCS).",
        ),
    ]
    .map(|(n, h)| counter_vec(&reg, n, h, &["port"]));
    let [rxp, rxb, txp, txb] = engine;
    let (rxp, rxb, txp, txb) = (rxp?, rxb?, txp?, txb?);
    let mtu = gauge_vec(
        &reg,
        "aves_port_mtu_bytes",
        "Configured IP MTU of the port.",
        &["port"],
    )?;
    for (i, name) in s.port_names.iter().enumerate() {
        let p = s.totals.ports.get(i).copied().unwrap_or_default();
        let l = &[name.as_str()];
        rxp.with_label_values(l).inc_by(p.rx_packets);
        rxb.with_label_values(l).inc_by(p.rx_bytes);
        txp.with_label_values(l).inc_by(p.tx_packets);
        txb.with_label_values(l).inc_by(p.tx_bytes);
        if let Some(m) = s.port_mtus.get(i) {
            mtu.with_label_values(l).set(i64::from(*m));
        }
    }

    // Device counters per port (DPDK rte_eth_stats), when read.
    if s.devices.iter().any(Option::is_some) {
        let nic = [
            (
                "aves_nic_rx_packets_total",
                "Packets the device received (DPDK ipackets).",
            ),
            (
                "aves_nic_tx_packets_total",
                "Packets the device sent (DPDK opackets).",
            ),
            (
                "aves_nic_rx_bytes_total",
                "Bytes the device received (DPDK ibytes).",
            ),
            (
                "aves_nic_tx_bytes_total",
                "Bytes the device sent (DPDK obytes).",
            ),
            (
                "aves_nic_rx_missed_total",
                "Packets the device dropped because an RX queue was full (DPDK imissed).",
            ),
            (
                "aves_nic_rx_errors_total",
                "Erroneous packets the device received (DPDK ierrors).",
            ),
            (
                "aves_nic_tx_errors_total",
                "Failed transmissions (DPDK oerrors).",
            ),
            (
                "aves_nic_rx_nombuf_total",
                "RX mbuf allocation failures (DPDK rx_nombuf).",
            ),
        ]
        .map(|(n, h)| counter_vec(&reg, n, h, &["port"]));
        let [ip, op, ib, ob, im, ie, oe, nb] = nic;
        let (ip, op, ib, ob, im, ie, oe, nb) = (ip?, op?, ib?, ob?, im?, ie?, oe?, nb?);
        let up = gauge_vec(
            &reg,
            "aves_port_link_up",
            "1 if the port's link is up, else 0.",
            &["port"],
        )?;
        let speed = gauge_vec(
            &reg,
            "aves_port_link_speed_bytes_per_second",
            "Link speed the device reports, in bytes per second (0 if unknown).",
            &["port"],
        )?;
        for (name, d) in s.port_names.iter().zip(&s.devices) {
            let Some(d) = d else { continue };
            let l = &[name.as_str()];
            let n = d.nic;
            ip.with_label_values(l).inc_by(n.ipackets);
            op.with_label_values(l).inc_by(n.opackets);
            ib.with_label_values(l).inc_by(n.ibytes);
            ob.with_label_values(l).inc_by(n.obytes);
            im.with_label_values(l).inc_by(n.imissed);
            ie.with_label_values(l).inc_by(n.ierrors);
            oe.with_label_values(l).inc_by(n.oerrors);
            nb.with_label_values(l).inc_by(n.rx_nombuf);
            up.with_label_values(l).set(i64::from(d.link_up));
            speed
                .with_label_values(l)
                .set(i64::from(d.speed_mbps) * 125_000);
        }
    }

    // Poll rounds per lcore.
    let busy = counter_vec(
        &reg,
        "aves_lcore_busy_polls_total",
        "Poll rounds of the lcore that received at least one packet.",
        &["lcore"],
    )?;
    let idle = counter_vec(
        &reg,
        "aves_lcore_idle_polls_total",
        "Poll rounds of the lcore that received nothing.",
        &["lcore"],
    )?;
    let busy_cycles = counter_vec(
        &reg,
        "aves_lcore_busy_cycles_total",
        "TSC cycles the lcore spent in poll rounds that received packets (divide by aves_tsc_hz for seconds busy).",
        &["lcore"],
    )?;
    for c in &s.lcores {
        let l = c.lcore.to_string();
        busy.with_label_values(&[&l]).inc_by(c.busy);
        idle.with_label_values(&[&l]).inc_by(c.idle);
        busy_cycles.with_label_values(&[&l]).inc_by(c.busy_cycles);
    }
    if s.tsc_hz > 0 {
        gauge(
            &reg,
            "aves_tsc_hz",
            "Cycles per second of the TSC the lcores count busy cycles in.",
        )?
        .set(i64::try_from(s.tsc_hz).unwrap_or(i64::MAX));
    }

    // Drops by reason: every reason, zeros too.
    let drops = counter_vec(
        &reg,
        "aves_drops_total",
        "Packets the engine dropped, by reason (summed over lcores).",
        &["reason"],
    )?;
    for r in DropReason::ALL {
        drops
            .with_label_values(&[r.name()])
            .inc_by(s.totals.drops[r as usize]);
    }

    // Events.
    for (name, help) in EVENTS {
        let v = s
            .totals
            .events
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v);
        let c = prometheus::IntCounter::new(format!("aves_{name}_total"), help)?;
        reg.register(Box::new(c.clone()))?;
        c.inc_by(v);
    }

    if let Some(p) = s.pool {
        gauge(&reg, "aves_mempool_mbufs", "Mbufs in the packet pool.")?.set(as_i64(p.size));
        gauge(
            &reg,
            "aves_mempool_mbufs_available",
            "Mbufs free in the packet pool (ring and per-lcore caches).",
        )?
        .set(as_i64(p.available));
    }
    let cap = gauge_vec(
        &reg,
        "aves_table_capacity",
        "Configured capacity of a table, per lcore (entries; bytes for reassembly_bytes).",
        &["table"],
    )?;
    for (t, v) in &s.capacities {
        cap.with_label_values(&[t]).set(as_i64(*v));
    }
    let used = gauge_vec(
        &reg,
        "aves_table_used",
        "Entries in use in a table of one lcore (bytes for reassembly_bytes), as the lcore last reported (about every millisecond).",
        &["table", "lcore"],
    )?;
    for (t, _) in &s.capacities {
        let Some(table) = crate::stats::table_of(t) else {
            continue;
        };
        for l in &s.lcores {
            used.with_label_values(&[t, &l.lcore.to_string()])
                .set(as_i64(l.tables[table as usize]));
        }
    }
    if s.role == "waypoint" {
        bindings(&reg, s)?;
    }
    if let Some(st) = &s.setup {
        setup(&reg, st)?;
    }
    gauge(&reg, "aves_lcores", "Lcores running the engine.")?.set(as_i64(s.lcores.len() as u64));
    Ok(reg)
}

/// The binding lifecycle per lcore (waypoint).
fn bindings(reg: &Registry, s: &Snapshot) -> prometheus::Result<()> {
    use aves_dataplane::counters::BindingReject;
    let each = [
        (
            "aves_bindings_installed_total",
            "Bindings entered into the lcore's binding table (an AddBinding for a free pair, or a claim).",
        ),
        (
            "aves_bindings_expired_total",
            "Bindings whose timer ran out (including the grace after their last TCP connection closed).",
        ),
        (
            "aves_bindings_deleted_total",
            "Bindings removed by a DelBinding command.",
        ),
    ]
    .map(|(n, h)| counter_vec(reg, n, h, &["lcore"]));
    let [installed, expired, deleted] = each;
    let (installed, expired, deleted) = (installed?, expired?, deleted?);
    counter(
        reg,
        "aves_bindings_claimed_total",
        "Bindings claimed by a new connection in a wait state (delayed binding), summed over lcores.",
        s.event("bindings_claimed"),
    )?;
    counter(
        reg,
        "aves_connections_untracked_total",
        "New TCP connections the waypoint forwarded without tracking them (connection table full: close detection lost, the binding's timer still applies).",
        s.event("connections_untracked"),
    )?;
    let rejected = counter_vec(
        reg,
        "aves_bindings_rejected_total",
        "Bindings not made, by reason: an AddBinding refused, or a claim refused in a wait state.",
        &["lcore", "reason"],
    )?;
    for l in &s.lcores {
        let id = l.lcore.to_string();
        let b = &l.bindings;
        installed.with_label_values(&[&id]).inc_by(b.installed);
        expired.with_label_values(&[&id]).inc_by(b.expired);
        deleted.with_label_values(&[&id]).inc_by(b.deleted);
        for r in BindingReject::ALL {
            rejected
                .with_label_values(&[&id, r.name()])
                .inc_by(b.rejected[r as usize]);
        }
    }
    Ok(())
}

/// The SETUP service's counters (waypoint).
fn setup(reg: &Registry, st: &crate::stats::SetupTotals) -> prometheus::Result<()> {
    counter(
        reg,
        "aves_setup_received_total",
        "Authentic SETUP messages the waypoint received over UDP.",
        st.received,
    )?;
    counter(
        reg,
        "aves_setup_local_total",
        "SETUPs the DNS server co-located with the waypoint handed over in-process (no UDP).",
        st.local,
    )?;
    counter(
        reg,
        "aves_setup_accepted_total",
        "ACCEPTs sent for new SETUPs.",
        st.accepted,
    )?;
    let rej = counter_vec(
        reg,
        "aves_setup_rejected_total",
        "REJECTs sent for new SETUPs, by reason.",
        &["reason"],
    )?;
    for (r, v) in &st.rejected {
        rej.with_label_values(&[r]).inc_by(*v);
    }
    counter(
        reg,
        "aves_setup_ignored_waiting_total",
        "SETUPs ignored because their waypoint address was in a wait state.",
        st.ignored_waiting,
    )?;
    counter(
        reg,
        "aves_setup_retries_answered_total",
        "SETUP retries answered from the answer cache (not applied twice).",
        st.retries_answered,
    )?;
    counter(
        reg,
        "aves_wait_states_total",
        "Wait states entered (delayed binding).",
        st.wait_states,
    )?;
    counter(
        reg,
        "aves_control_unexpected_total",
        "Authentic control messages of a type the waypoint does not serve.",
        st.unexpected_type,
    )?;
    let refused = counter_vec(
        reg,
        "aves_control_refused_total",
        "Control messages refused without an answer, by reason (malformed, unknown_key, bad_tag, stale, replay, ...).",
        &["reason"],
    )?;
    for (r, v) in &st.refused {
        refused.with_label_values(&[r]).inc_by(*v);
    }
    Ok(())
}

/// The exposition (text format 0.0.4) of `s`.
pub fn render(s: &Snapshot) -> prometheus::Result<String> {
    let reg = registry(s)?;
    let mut buf = Vec::new();
    prometheus::TextEncoder::new().encode(&reg.gather(), &mut buf)?;
    String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `GET /metrics` (a query string is ignored).
    Metrics,
    /// Another path: 404.
    NotFound,
    /// A method other than GET: 405.
    BadMethod,
    /// Not an HTTP/1.x request line: 400.
    Malformed,
}

/// Classifies a request by its request line (the bytes before the first CRLF).
pub fn parse_request_line(head: &[u8]) -> Target {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return Target::Malformed;
    };
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Target::Malformed;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Target::Malformed;
    }
    if method != "GET" {
        return Target::BadMethod;
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path == "/metrics" {
        Target::Metrics
    } else {
        Target::NotFound
    }
}

/// Reads the request head (up to the blank line) into a fixed buffer. `Ok(None)` when
/// it is longer than [`MAX_REQUEST`]; an error when the client is too slow or goes away.
fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let Some(spare) = buf.get_mut(len..) else {
            return Ok(None);
        };
        if spare.is_empty() {
            return Ok(None);
        }
        let n = stream.read(spare)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        len += n;
        let head = buf.get(..len).unwrap_or_default();
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            buf.truncate(len);
            return Ok(Some(buf));
        }
    }
}

fn respond(stream: &mut TcpStream, status: &str, ctype: &str, body: &[u8]) -> std::io::Result<()> {
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        body.len(),
        if status.starts_with("405") { "Allow: GET\r\n" } else { "" }
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// Answers one connection: the exposition `scrape` returns for `GET /metrics`, an error
/// status otherwise.
pub fn handle(
    mut stream: TcpStream,
    scrape: &dyn Fn() -> prometheus::Result<String>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let text = "text/plain; charset=utf-8";
    let Some(head) = read_head(&mut stream)? else {
        return respond(
            &mut stream,
            "431 Request Header Fields Too Large",
            text,
            b"request too large\n",
        );
    };
    match parse_request_line(&head) {
        Target::Metrics => match scrape() {
            Ok(body) => respond(&mut stream, "200 OK", CONTENT_TYPE, body.as_bytes()),
            Err(e) => {
                warn!("rendering metrics: {e}");
                respond(
                    &mut stream,
                    "500 Internal Server Error",
                    text,
                    b"cannot render metrics\n",
                )
            }
        },
        Target::NotFound => respond(&mut stream, "404 Not Found", text, b"try /metrics\n"),
        Target::BadMethod => respond(&mut stream, "405 Method Not Allowed", text, b"GET only\n"),
        Target::Malformed => respond(&mut stream, "400 Bad Request", text, b"bad request\n"),
    }
}

/// Serves `listener` until `stop`, one connection at a time; `scrape` renders the body
/// of `/metrics`.
pub fn serve(
    listener: &TcpListener,
    stop: &AtomicBool,
    scrape: &dyn Fn() -> prometheus::Result<String>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(e) = handle(stream, scrape) {
                    debug!(%peer, "metrics connection: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) => {
                warn!("metrics accept: {e}");
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stats::tests::sample;
    use std::sync::Arc;

    /// The value of the sample line `series` (name and labels, exactly as rendered).
    fn value(text: &str, series: &str) -> Option<String> {
        text.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')
                .map(str::to_string)
        })
    }

    /// Every sample belongs to a family announced by HELP and TYPE, names are valid and
    /// start with `prefix`, counters end in _total, values parse as numbers. Returns the
    /// families' types.
    pub(crate) fn check_exposition(
        text: &str,
        prefix: &str,
    ) -> std::collections::HashMap<String, String> {
        let mut types = std::collections::HashMap::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(
                    types.insert(name.to_string(), kind.to_string()).is_none(),
                    "{name} twice"
                );
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "counter {name} without _total");
                }
                assert!(name.starts_with(prefix), "{name}");
            } else if !l.starts_with("# HELP ") {
                let name_end = l.find(['{', ' ']).unwrap();
                let name = l[..name_end]
                    .trim_end_matches("_bucket")
                    .trim_end_matches("_sum")
                    .trim_end_matches("_count");
                assert!(
                    name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "bad name in {l}"
                );
                assert!(types.contains_key(name), "{name} has no TYPE");
                let v = l.rsplit(' ').next().unwrap();
                assert!(v.parse::<f64>().is_ok(), "value of {l}");
            }
        }
        types
    }

    #[test]
    fn waypoint_tables_bindings_and_setup_are_exported() {
        use aves_dataplane::counters::{BindingReject, Table};
        let mut s = sample();
        s.role = "waypoint";
        s.capacities.push(("bindings", 65536));
        s.lcores[0].tables[Table::Bindings as usize] = 5;
        s.lcores[1].tables[Table::Bindings as usize] = 4;
        s.lcores[0].bindings.installed = 7;
        s.lcores[0].bindings.expired = 2;
        s.lcores[1].bindings.rejected[BindingReject::Conflict as usize] = 3;
        s.setup = Some(crate::stats::SetupTotals {
            received: 9,
            local: 2,
            accepted: 8,
            rejected: vec![("conflict", 1), ("table_full", 0)],
            refused: vec![("bad_tag", 4), ("replay", 0)],
            ..Default::default()
        });
        let text = render(&s).unwrap();
        let types = check_exposition(&text, "aves_");
        let v = |x: &str| value(&text, x);
        assert_eq!(
            v("aves_table_used{lcore=\"3\",table=\"bindings\"}"),
            Some("5".into())
        );
        assert_eq!(
            v("aves_table_used{lcore=\"5\",table=\"bindings\"}"),
            Some("4".into())
        );
        assert_eq!(
            v("aves_table_used{lcore=\"3\",table=\"routes\"}"),
            Some("2".into())
        );
        assert_eq!(
            v("aves_bindings_installed_total{lcore=\"3\"}"),
            Some("7".into())
        );
        assert_eq!(
            v("aves_bindings_expired_total{lcore=\"3\"}"),
            Some("2".into())
        );
        assert_eq!(
            v("aves_bindings_rejected_total{lcore=\"5\",reason=\"conflict\"}"),
            Some("3".into())
        );
        assert_eq!(
            v("aves_bindings_rejected_total{lcore=\"3\",reason=\"wait_violation\"}"),
            Some("0".into()),
            "every reason, zeros too"
        );
        assert_eq!(v("aves_bindings_claimed_total"), Some("0".into()));
        assert_eq!(v("aves_setup_accepted_total"), Some("8".into()));
        assert_eq!(v("aves_setup_received_total"), Some("9".into()));
        assert_eq!(v("aves_setup_local_total"), Some("2".into()));
        assert_eq!(
            v("aves_setup_rejected_total{reason=\"conflict\"}"),
            Some("1".into())
        );
        assert_eq!(
            v("aves_control_refused_total{reason=\"bad_tag\"}"),
            Some("4".into())
        );
        assert_eq!(
            types.get("aves_table_used").map(String::as_str),
            Some("gauge")
        );
        // A router has no binding or SETUP metrics.
        let text = render(&sample()).unwrap();
        assert!(!text.contains("aves_bindings_"));
        assert!(!text.contains("aves_setup_"));
        assert_eq!(
            value(&text, "aves_table_used{lcore=\"5\",table=\"pending\"}"),
            Some("1".into())
        );
    }

    #[test]
    fn exposition_passes_basic_checks() {
        let text = render(&sample()).unwrap();
        check_exposition(&text, "aves_");
        let mut types = std::collections::HashMap::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(
                    types.insert(name.to_string(), kind.to_string()).is_none(),
                    "{name} twice"
                );
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "counter {name} without _total");
                }
                assert!(name.starts_with("aves_"), "{name}");
            } else if l.starts_with("# HELP ") {
            } else {
                let name_end = l.find(['{', ' ']).unwrap();
                let name = &l[..name_end];
                assert!(
                    name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "bad name in {l}"
                );
                assert!(types.contains_key(name), "{name} has no TYPE");
                let v = l.rsplit(' ').next().unwrap();
                assert!(v.parse::<f64>().is_ok(), "value of {l}");
            }
        }
        let v = |s: &str| value(&text, s);
        assert_eq!(
            v(&format!(
                "aves_build_info{{role=\"router\",version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )),
            Some("1".into())
        );
        assert_eq!(
            v("aves_port_rx_packets_total{port=\"a\"}"),
            Some("1".into())
        );
        assert_eq!(
            v("aves_port_rx_bytes_total{port=\"a\"}"),
            Some("100".into())
        );
        assert_eq!(v("aves_port_tx_bytes_total{port=\"b\"}"), Some("60".into()));
        assert_eq!(v("aves_nic_rx_missed_total{port=\"a\"}"), Some("4".into()));
        assert_eq!(
            v("aves_nic_rx_missed_total{port=\"b\"}"),
            None,
            "b not read"
        );
        assert_eq!(v("aves_port_link_up{port=\"a\"}"), Some("1".into()));
        assert_eq!(
            v("aves_port_link_speed_bytes_per_second{port=\"a\"}"),
            Some("1250000000".into())
        );
        assert_eq!(
            v("aves_lcore_busy_polls_total{lcore=\"3\"}"),
            Some("1".into())
        );
        assert_eq!(
            v("aves_lcore_busy_cycles_total{lcore=\"3\"}"),
            Some("5200".into())
        );
        assert_eq!(
            v("aves_lcore_busy_cycles_total{lcore=\"5\"}"),
            Some("0".into())
        );
        assert_eq!(v("aves_tsc_hz"), Some("2600000000".into()));
        assert_eq!(
            v("aves_lcore_idle_polls_total{lcore=\"5\"}"),
            Some("7".into())
        );
        assert_eq!(v("aves_drops_total{reason=\"no_route\"}"), Some("3".into()));
        for r in DropReason::ALL {
            assert!(
                v(&format!("aves_drops_total{{reason=\"{}\"}}", r.name())).is_some(),
                "reason {} missing",
                r.name()
            );
        }
        assert_eq!(v("aves_icmp_sent_total"), Some("2".into()));
        assert_eq!(v("aves_handed_off_total"), Some("0".into()));
        assert_eq!(v("aves_mempool_mbufs_available"), Some("8000".into()));
        assert_eq!(
            v("aves_table_capacity{table=\"routes\"}"),
            Some("1024".into())
        );
        assert_eq!(v("aves_start_time_seconds"), Some("100".into()));
        assert_eq!(v("aves_lcores"), Some("2".into()));
        assert_eq!(
            types.get("aves_drops_total").map(String::as_str),
            Some("counter")
        );
        assert_eq!(
            types.get("aves_port_link_up").map(String::as_str),
            Some("gauge")
        );
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Target::Metrics
        );
        assert_eq!(
            parse_request_line(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Target::Metrics
        );
        assert_eq!(
            parse_request_line(b"GET / HTTP/1.1\r\n\r\n"),
            Target::NotFound
        );
        assert_eq!(
            parse_request_line(b"GET /metricsx HTTP/1.1\r\n\r\n"),
            Target::NotFound
        );
        assert_eq!(
            parse_request_line(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Target::BadMethod
        );
        for bad in [
            &b""[..],
            b"\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2\r\n\r\n",
            b"GET /metrics HTTP/1.1 x\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(parse_request_line(bad), Target::Malformed, "{bad:?}");
        }
    }

    /// Sends `request` to a server on a loopback port and returns the reply.
    fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn serves_metrics_and_refuses_the_rest() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || serve(&listener, &stop, &|| render(&sample())))
        };
        let ok = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("Content-Type: text/plain; version=0.0.4"),
            "{ok}"
        );
        let body = ok.split_once("\r\n\r\n").unwrap().1;
        let len: usize = ok
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len);
        assert!(body.contains("aves_drops_total{reason=\"no_route\"} 3"));
        assert!(exchange(addr, b"GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(exchange(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
        assert!(exchange(addr, b"hello\r\n\r\n").starts_with("HTTP/1.1 400 "));
        // Exactly MAX_REQUEST bytes and no blank line: all read, so closing after the
        // reply does not reset the connection under the client.
        let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_REQUEST, b'a');
        assert!(exchange(addr, &big).starts_with("HTTP/1.1 431 "));
        // A client that sends nothing is dropped after the timeout, and the server
        // still answers the next one.
        let idle = TcpStream::connect(addr).unwrap();
        let t = Instant::now();
        assert!(exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200 "));
        assert!(t.elapsed() < REQUEST_TIMEOUT * 3);
        drop(idle);
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap().unwrap();
    }
}
