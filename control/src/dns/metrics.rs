//! Prometheus metrics of `aves dns` (`[dns] metrics`), served by the same small HTTP
//! server as the daemon's (`crate::metrics::serve`). Every metric is listed in
//! `docs/metrics.md`.
//!
//! Invariants:
//! - A scrape builds a fresh registry from the [`DnsCounters`] (atomics the handler
//!   bumps); only the SETUP round-trip histogram is a long-lived metric object, and the
//!   registry holds a clone of it (the same data), so a scrape never blocks a query.
//! - Every label value comes from a fixed set (`QTYPES`, `RCODES`, the answer kinds,
//!   `accept`/`reject`): nothing a querier sends can grow the exposition.

use super::handler::DnsCounters;
use super::register::RegisterCounters;
use super::zone::Zone;
use crate::metrics::{counter, counter_vec, gauge, gauge_vec};
use prometheus::{Encoder, Gauge, Registry};

/// What each `DnsCounters::snapshot` name is exported as: `kind` of
/// `aves_dns_answers_total`, or its own counter.
const KINDS: [(&str, &str); 16] = [
    ("answer_session", "session"),
    ("answer_zone", "zone"),
    ("answer_nodata", "nodata"),
    ("answer_nxdomain", "nxdomain"),
    ("answer_refused_transfer", "refused_transfer"),
    ("answer_refused", "refused"),
    ("answer_formerr", "formerr"),
    ("answer_notimp", "notimp"),
    ("servfail_rejected", "servfail_rejected"),
    ("servfail_timeout", "servfail_timeout"),
    ("servfail_rate", "servfail_rate"),
    ("servfail_busy", "servfail_busy"),
    ("servfail_no_gateway", "servfail_no_gateway"),
    ("drop_banned", "dropped_banned"),
    ("rrl_slipped", "rrl_slipped"),
    ("rrl_dropped", "rrl_dropped"),
];

/// The registration side (AVES §5.3) a scrape adds: the zone's gateways (is each one's
/// public address known?) and, with `[dns] register_listen`, the REGISTER counters.
#[derive(Clone, Copy)]
pub struct Registration<'a> {
    /// The zone whose gateway addresses REGISTERs update.
    pub zone: &'a Zone,
    /// REGISTER receiver counters; `None` without `register_listen`.
    pub counters: Option<&'a RegisterCounters>,
}

/// A registry holding every metric of the DNS server.
pub fn registry(
    c: &DnsCounters,
    start_time_s: f64,
    registration: Option<Registration<'_>>,
) -> prometheus::Result<Registry> {
    let reg = Registry::new();
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let info = gauge_vec(
        &reg,
        "aves_build_info",
        "Always 1; the labels say which aves runs in which role.",
        &["version", "role"],
    )?;
    info.with_label_values(&[env!("CARGO_PKG_VERSION"), "dns"])
        .set(1);
    let start = Gauge::new(
        "aves_start_time_seconds",
        "When the server started, seconds since the Unix epoch.",
    )?;
    reg.register(Box::new(start.clone()))?;
    start.set(start_time_s);

    let snap = c.snapshot();
    let get = |name: &str| snap.iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| *v);
    counter(
        &reg,
        "aves_dns_requests_total",
        "DNS requests the server parsed (answered or not).",
        get("queries"),
    )?;
    let by_type = counter_vec(
        &reg,
        "aves_dns_queries_total",
        "DNS queries by question type and the answer's response code (rcode \"dropped\": no answer sent).",
        &["qtype", "rcode"],
    )?;
    // The common pairs from the first scrape, zeros included; others once seen.
    for q in ["A", "AAAA", "SOA", "NS"] {
        for r in ["NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED"] {
            by_type.with_label_values(&[q, r]).inc_by(0);
        }
    }
    for (q, r, v) in c.queries_by_type() {
        by_type.with_label_values(&[q, r]).inc_by(v);
    }
    let kinds = counter_vec(
        &reg,
        "aves_dns_answers_total",
        "DNS answers by what the server decided (one kind per request; dropped_banned: no answer).",
        &["kind"],
    )?;
    for (name, kind) in KINDS {
        kinds.with_label_values(&[kind]).inc_by(get(name));
    }
    counter(
        &reg,
        "aves_dns_bans_total",
        "Queriers banned by the NXDOMAIN penalty (AVES §6.2).",
        get("bans"),
    )?;
    gauge(
        &reg,
        "aves_dns_setups_in_flight",
        "SETUPs waiting for a waypoint's answer now.",
    )?
    .set(as_i64(c.in_flight.in_flight() as u64));
    gauge(
        &reg,
        "aves_dns_setups_in_flight_max",
        "Most SETUPs in flight at once (dns.max_pending); beyond it host queries get SERVFAIL.",
    )?
    .set(as_i64(c.in_flight.capacity() as u64));
    counter(
        &reg,
        "aves_dns_sessions_coalesced_total",
        "Host queries that found a SETUP for the same initiator and host in flight and took its outcome (resolver retransmissions); also counted as answers.",
        get("sessions_coalesced"),
    )?;
    if let Some(r) = registration {
        let known = gauge_vec(
            &reg,
            "aves_dns_gateway_address_known",
            "1 when the gateway's public address is known (configured or registered), 0 while host queries behind it get SERVFAIL.",
            &["gateway"],
        )?;
        for (id, addr) in r.zone.gateways() {
            known
                .with_label_values(&[&id.to_string()])
                .set(i64::from(addr.is_some()));
        }
        if let Some(rc) = r.counters {
            let snap = rc.snapshot();
            let v = |n: &str| snap.iter().find(|(k, _)| k == n).map_or(0, |(_, v)| *v);
            counter(
                &reg,
                "aves_dns_register_changes_total",
                "Authentic REGISTERs that changed a gateway's public address.",
                v("register_changed"),
            )?;
            let results = counter_vec(
                &reg,
                "aves_dns_registers_total",
                "REGISTER messages received, by result (accepted, or refused_<reason>; docs/protocol.md).",
                &["result"],
            )?;
            for (name, n) in &snap {
                if let Some(result) = name.strip_prefix("register_") {
                    if result != "changed" {
                        results.with_label_values(&[result]).inc_by(*n);
                    }
                }
            }
        }
    }
    if let Some(h) = &c.setup_rtt {
        // Both outcomes from the first scrape.
        for o in ["accept", "reject"] {
            h.get_metric_with_label_values(&[o])?;
        }
        reg.register(Box::new(h.clone()))?;
    }
    Ok(reg)
}

/// The exposition (text format 0.0.4) of the DNS server's metrics.
pub fn render(
    c: &DnsCounters,
    start_time_s: f64,
    registration: Option<Registration<'_>>,
) -> prometheus::Result<String> {
    let reg = registry(c, start_time_s, registration)?;
    let mut buf = Vec::new();
    prometheus::TextEncoder::new().encode(&reg.gather(), &mut buf)?;
    String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::limits::Pending;
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::RecordType;

    fn value(text: &str, series: &str) -> Option<String> {
        text.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')
                .map(str::to_string)
        })
    }

    #[test]
    fn dns_exposition_counts_types_codes_and_round_trips() {
        let c = DnsCounters::new(Pending::new(8));
        c.count_query(Some(RecordType::A), Some(ResponseCode::NoError));
        c.count_query(Some(RecordType::A), Some(ResponseCode::NoError));
        c.count_query(Some(RecordType::MX), Some(ResponseCode::NXDomain));
        c.count_query(Some(RecordType::CAA), Some(ResponseCode::Refused));
        c.count_query(None, Some(ResponseCode::FormErr));
        c.count_query(Some(RecordType::A), None);
        c.bans.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        c.servfail_timeout
            .fetch_add(2, std::sync::atomic::Ordering::Relaxed);
        c.observe_setup("accept", std::time::Duration::from_millis(3));
        c.observe_setup("accept", std::time::Duration::from_millis(30));
        let text = render(&c, 7.0, None).unwrap();
        let types = crate::metrics::tests::check_exposition(&text, "aves_");
        let v = |s: &str| value(&text, s);
        assert_eq!(
            v("aves_dns_queries_total{qtype=\"A\",rcode=\"NOERROR\"}"),
            Some("2".into())
        );
        assert_eq!(
            v("aves_dns_queries_total{qtype=\"A\",rcode=\"dropped\"}"),
            Some("1".into())
        );
        assert_eq!(
            v("aves_dns_queries_total{qtype=\"MX\",rcode=\"NXDOMAIN\"}"),
            Some("1".into())
        );
        assert_eq!(
            v("aves_dns_queries_total{qtype=\"other\",rcode=\"REFUSED\"}"),
            Some("1".into())
        );
        assert_eq!(
            v("aves_dns_queries_total{qtype=\"none\",rcode=\"FORMERR\"}"),
            Some("1".into())
        );
        assert_eq!(
            v("aves_dns_queries_total{qtype=\"AAAA\",rcode=\"SERVFAIL\"}"),
            Some("0".into()),
            "common pairs from the start"
        );
        assert_eq!(v("aves_dns_bans_total"), Some("1".into()));
        assert_eq!(
            v("aves_dns_answers_total{kind=\"servfail_timeout\"}"),
            Some("2".into())
        );
        assert_eq!(v("aves_dns_setups_in_flight_max"), Some("8".into()));
        assert_eq!(
            v("aves_setup_rtt_seconds_count{outcome=\"accept\"}"),
            Some("2".into())
        );
        assert_eq!(
            v("aves_setup_rtt_seconds_bucket{outcome=\"accept\",le=\"0.005\"}"),
            Some("1".into())
        );
        assert_eq!(
            v("aves_setup_rtt_seconds_count{outcome=\"reject\"}"),
            Some("0".into())
        );
        assert_eq!(
            types.get("aves_setup_rtt_seconds").map(String::as_str),
            Some("histogram")
        );
        assert!(text.contains("aves_build_info{role=\"dns\","));
        // Rendering twice gives the same histogram (a clone, not a copy, is registered).
        assert_eq!(render(&c, 7.0, None).unwrap(), text);
    }
}
