//! The AVES DNS server's request path (`aves::dns::handler::AvesDns::respond`): bytes
//! → hickory's request parse → the handler's decision (rate limits, zone lookup, the
//! SETUP through a binder) → the encoded answer. A fresh handler per input, on the
//! zone of [`SPEC`], with a test binder whose answers the input picks.
//!
//! Properties, on every input:
//! 1. no panic (and no hang: the handler's own SETUP timeout bounds a silent binder;
//!    the runtime's clock is paused, so waiting costs no real time);
//! 2. an answer parses back as a DNS message with the query's id, QR=1 and its opcode;
//!    a query that is itself a response (QR=1) gets no answer; TC=1 only over UDP,
//!    with no records (a rate-limit slip);
//! 3. an A record in an answer is either the in-zone name server's (its address, the
//!    zone TTL) or a waypoint address with TTL 0, from the pool, that the binder
//!    ACCEPTed in this input, for a host name;
//! 4. a name outside the zone gets no records and no SETUP;
//!    every SETUP is for a host of the zone with a gateway address, names that host's
//!    responder and gateway and a waypoint address from the pool, and its initiator is
//!    what the module doc says (the querier in `intranet` as /32, an ECS prefix, or
//!    prefix 0); one query (in sequential mode) makes at most one SETUP, and only an
//!    A/IN query for a host name does;
//! 5. over UDP no client network (/24, /56) gets more non-slip answers than the
//!    `[dns.rrl]` burst plus the rate times the time the input took;
//! 6. every query the parser accepted is counted once (`queries` and the by-type
//!    table agree with the number of requests); no SETUP slot is held at the end.
//!
//! Input: `[mode][o0 o1 o2 o3][record]*`, at most [`MAX_QUERIES`] records
//! `[flags][address: 4 bytes, or 16 with flag V6][len lo][len hi][message]`. `mode`
//! bit 0: all queries at once (concurrently, so SETUPs in flight coalesce) instead of
//! one after the other. The binder answers its n-th SETUP by `o[n % 4] % 5`: ACCEPT,
//! REJECT, timeout (at once), silence (the handler's timeout), ACCEPT after 1-50 ms.
//! Record flags: bit 0 TCP (else UDP), bit 1 IPv6 source (else IPv4).
#![no_main]

use aves::config::{parse_dns, DnsSpec};
use aves::dns::handler::{AvesDns, QTYPES, RCODES};
use aves::dns::{Binder, SetupOutcome, SetupRequest};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_server::net::xfer::Protocol;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

/// The zone: three hosts (one with a service name, one behind a gateway without an
/// address), an in-zone name server, four waypoint addresses, an intranet, ECS on, a
/// small NXDOMAIN ban threshold, a tight response rate limit with slip and one exempt
/// network, and a small cap on SETUPs in flight.
const SPEC: &str = r#"
[dns]
listen = "127.0.0.1:5353"
zone = "aves.example."
ttl = 3600
intranet = ["10.1.0.0/16"]
ecs = true
setup_timeout_ms = 300
general_wait_ms = 2000
max_pending = 3
[[dns.ns]]
name = "ns1"
address = "192.0.2.53"
[[dns.waypoint]]
control = "192.0.2.10:4500"
addresses = ["198.51.100.10-198.51.100.13"]
[[dns.gateway]]
id = 1
address = "203.0.113.7"
[[dns.gateway]]
id = 2
address = "203.0.113.8"
[[dns.gateway]]
id = 3
[[dns.host]]
name = "b.home1"
gateway_id = 1
address = "192.168.1.10"
services = ["tcp22"]
[[dns.host]]
name = "c.home2"
gateway_id = 2
address = "192.168.2.10"
mode = "multihoming"
[[dns.host]]
name = "d.home3"
gateway_id = 3
address = "192.168.3.10"
[dns.nx_penalty]
threshold = 3
window_s = 60
ban_s = 600
max_tracked = 64
[dns.rate]
sessions_per_s = 5
burst = 6
[dns.rrl]
responses_per_s = 2
burst = 4
slip = 2
max_tracked = 64
exempt = ["10.1.9.0/24"]
"#;

const MAX_QUERIES: usize = 12;
const ZONE: &str = "aves.example.";
const NS_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
const ZONE_TTL: u32 = 3600;
const RRL_RATE: f64 = 2.0;
const RRL_BURST: f64 = 4.0;

/// Host names (relative to the zone, lower case), responder, gateway address.
const HOSTS: [(&str, Ipv4Addr, Option<Ipv4Addr>); 3] = [
    (
        "b.home1",
        Ipv4Addr::new(192, 168, 1, 10),
        Some(Ipv4Addr::new(203, 0, 113, 7)),
    ),
    (
        "c.home2",
        Ipv4Addr::new(192, 168, 2, 10),
        Some(Ipv4Addr::new(203, 0, 113, 8)),
    ),
    ("d.home3", Ipv4Addr::new(192, 168, 3, 10), None),
];

/// `AVES_FUZZ_TRACE=1`: print each query and its answer (for reading a crash input).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("AVES_FUZZ_TRACE").is_some())
}

fn in_pool(a: Ipv4Addr) -> bool {
    (u32::from(Ipv4Addr::new(198, 51, 100, 10))..=u32::from(Ipv4Addr::new(198, 51, 100, 13)))
        .contains(&u32::from(a))
}

fn spec() -> &'static DnsSpec {
    static SPEC_PARSED: OnceLock<DnsSpec> = OnceLock::new();
    SPEC_PARSED.get_or_init(|| parse_dns(std::path::Path::new("fuzz.toml"), SPEC).expect("spec"))
}

thread_local! {
    /// One runtime for every input: current-thread, its clock paused so timeouts and
    /// sleeps advance it instead of waiting.
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
}

/// A binder answering its n-th SETUP as the input says, recording each SETUP and the
/// waypoint addresses it accepted.
#[derive(Debug)]
struct FuzzBinder {
    outcomes: [u8; 4],
    seen: Mutex<Vec<SetupRequest>>,
    accepted: Mutex<Vec<Ipv4Addr>>,
}

impl FuzzBinder {
    fn seen(&self) -> Vec<SetupRequest> {
        self.seen.lock().unwrap().clone()
    }
}

impl Binder for FuzzBinder {
    fn setup(&self, req: SetupRequest) -> Pin<Box<dyn Future<Output = SetupOutcome> + Send>> {
        let n = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(req);
            seen.len() - 1
        };
        let o = self.outcomes[n % 4];
        let accept = |accepted: &Mutex<Vec<Ipv4Addr>>| {
            accepted.lock().unwrap().push(req.waypoint);
            SetupOutcome::Accept
        };
        match o % 5 {
            0 => Box::pin(std::future::ready(accept(&self.accepted))),
            1 => Box::pin(std::future::ready(SetupOutcome::Reject("fuzz".into()))),
            2 => Box::pin(std::future::ready(SetupOutcome::Timeout)),
            3 => Box::pin(std::future::pending()),
            _ => {
                // Accepted now (the waypoint installs before it answers); the answer
                // arrives later, or after the handler's timeout.
                let out = accept(&self.accepted);
                let ms = u64::from(o / 5 % 50) + 1;
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    out
                })
            }
        }
    }
}

/// One query of the input.
struct Query {
    bytes: Vec<u8>,
    src: SocketAddr,
    protocol: Protocol,
}

fn queries(mut data: &[u8]) -> Vec<Query> {
    let mut out = Vec::new();
    while out.len() < MAX_QUERIES {
        let Some((&flags, rest)) = data.split_first() else {
            break;
        };
        let v6 = flags & 2 != 0;
        let alen = if v6 { 16 } else { 4 };
        if rest.len() < alen + 2 {
            break;
        }
        let ip = if v6 {
            let mut a = [0u8; 16];
            a.copy_from_slice(&rest[..16]);
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::new(rest[0], rest[1], rest[2], rest[3]))
        };
        let len = usize::from(u16::from_le_bytes([rest[alen], rest[alen + 1]]));
        let rest = &rest[alen + 2..];
        let len = len.min(rest.len());
        out.push(Query {
            bytes: rest[..len].to_vec(),
            src: SocketAddr::new(ip, 5300),
            protocol: if flags & 1 != 0 {
                Protocol::Tcp
            } else {
                Protocol::Udp
            },
        });
        data = &rest[len..];
    }
    out
}

fn v4_of(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => a.to_ipv4_mapped(),
    }
}

/// The rate limiter's client network of `ip` (/24, /56), computed independently;
/// `None`: exempt.
fn network(ip: IpAddr) -> Option<IpAddr> {
    match v4_of(ip) {
        Some(a) if a.octets()[..3] == [10, 1, 9] => None,
        Some(a) => Some(IpAddr::V4(Ipv4Addr::from(u32::from(a) & 0xffff_ff00))),
        None => match ip {
            IpAddr::V6(a) => Some(IpAddr::V6(Ipv6Addr::from(
                u128::from(a) & !(u128::MAX >> 56),
            ))),
            IpAddr::V4(_) => None,
        },
    }
}

/// The host a question's name stands for (its index in [`HOSTS`]), by name or by
/// `<service>.<host>`; `None` for other names.
fn host_of(name: &Name) -> Option<usize> {
    let n = name.to_ascii().to_ascii_lowercase();
    let rel = n.strip_suffix(ZONE)?.strip_suffix('.')?;
    HOSTS.iter().position(|(h, _, _)| {
        rel == *h
            || rel
                .strip_suffix(h)
                .and_then(|s| s.strip_suffix('.'))
                .is_some_and(|label| label == "tcp22")
    })
}

fn in_zone(name: &Name) -> bool {
    Name::from_ascii(ZONE).is_ok_and(|z| z.zone_of(name))
}

/// Drives every future to completion, polling them in turn.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (f, o) in futures.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("ready")).collect()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let concurrent = data[0] & 1 != 0;
    let binder = Arc::new(FuzzBinder {
        outcomes: [data[1], data[2], data[3], data[4]],
        seen: Mutex::new(Vec::new()),
        accepted: Mutex::new(Vec::new()),
    });
    let dns = AvesDns::new(spec(), binder.clone());
    let qs = queries(&data[5..]);
    let start = Instant::now();
    // (answer, the SETUPs made while it was handled, as indexes into the binder's list:
    // known in sequential mode only).
    let answers: Vec<(Option<Vec<u8>>, std::ops::Range<usize>)> = RT.with(|rt| {
        rt.block_on(async {
            if concurrent {
                let all = join_all(
                    qs.iter()
                        .map(|q| dns.respond(&q.bytes, q.src, q.protocol))
                        .collect(),
                )
                .await;
                all.into_iter().map(|a| (a, 0..0)).collect()
            } else {
                let mut out = Vec::new();
                for q in &qs {
                    let before = binder.seen().len();
                    let a = dns.respond(&q.bytes, q.src, q.protocol).await;
                    out.push((a, before..binder.seen().len()));
                }
                out
            }
        })
    });
    let elapsed = start.elapsed().as_secs_f64();
    let seen = binder.seen();
    let accepted = binder.accepted.lock().unwrap().clone();

    let mut parsed_requests = 0u64;
    let mut host_a_queries = 0usize;
    let mut answered_by_network: HashMap<IpAddr, u32> = HashMap::new();
    for (q, (answer, setups)) in qs.iter().zip(&answers) {
        let parses =
            hickory_server::server::Request::from_bytes(q.bytes.clone(), q.src, q.protocol).is_ok();
        parsed_requests += u64::from(parses);
        // Our own reading of the query, for the oracle (hickory's client-side parser).
        let request = Message::from_vec(&q.bytes).ok();
        let question = request.as_ref().and_then(|m| match m.queries.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        });
        let is_host_a = request.as_ref().is_some_and(|m| {
            m.metadata.message_type == MessageType::Query
                && m.metadata.op_code == hickory_proto::op::OpCode::Query
        }) && question.as_ref().is_some_and(|qq| {
            qq.query_type() == RecordType::A
                && qq.query_class() == hickory_proto::rr::DNSClass::IN
                && host_of(qq.name()).is_some()
        });
        host_a_queries += usize::from(is_host_a);
        // 4: one SETUP at most per query, and only for a host A query.
        assert!(setups.len() <= 1, "one query made {} SETUPs", setups.len());
        if let Some(s) = seen.get(setups.start).filter(|_| setups.len() == 1) {
            assert!(
                is_host_a,
                "SETUP for a query that is not a host A query: {question:?}"
            );
            let host = question.as_ref().and_then(|qq| host_of(qq.name()));
            assert_eq!(
                host.map(|h| HOSTS[h].1),
                Some(s.responder),
                "SETUP for another host"
            );
            // The module doc's identity: an intranet querier is the initiator (/32).
            if let Some(a) = v4_of(q.src.ip()).filter(|a| a.octets()[..2] == [10, 1]) {
                assert_eq!((s.initiator, s.initiator_prefix), (a, 32));
            }
        }
        if trace() {
            eprintln!(
                "query {:?} {} {:02x?}\n  answer {:02x?}",
                q.protocol, q.src, q.bytes, answer
            );
        }
        let Some(bytes) = answer else {
            continue;
        };
        assert!(parses, "an answer to bytes hickory cannot parse");
        // 2: the answer parses, answers this query, and never a response.
        assert!(q.bytes.len() >= 12);
        assert_eq!(q.bytes[2] & 0x80, 0, "a response (QR=1) was answered");
        let r = Message::from_vec(bytes).expect("the answer parses back");
        assert_eq!(r.metadata.id, u16::from_be_bytes([q.bytes[0], q.bytes[1]]));
        assert_eq!(r.metadata.message_type, MessageType::Response);
        assert_eq!(u8::from(r.metadata.op_code), (q.bytes[2] >> 3) & 0x0f);
        if r.metadata.truncation {
            assert_eq!(q.protocol, Protocol::Udp, "TC=1 over TCP");
            assert!(r.answers.is_empty() && r.authorities.is_empty() && r.additionals.is_empty());
        } else if q.protocol == Protocol::Udp {
            if let Some(net) = network(q.src.ip()) {
                *answered_by_network.entry(net).or_default() += 1;
            }
        }
        // 4: nothing from outside the zone.
        if let Some(qq) = &question {
            if !in_zone(qq.name()) {
                assert!(
                    r.answers.is_empty() && r.authorities.is_empty() && r.additionals.is_empty(),
                    "records for a name outside the zone"
                );
                if !r.metadata.truncation {
                    assert_ne!(r.metadata.response_code, ResponseCode::NoError);
                }
            }
        }
        // 3: A records.
        for rec in &r.answers {
            let RData::A(A(a)) = rec.data else {
                continue;
            };
            if rec
                .name
                .to_ascii()
                .eq_ignore_ascii_case("ns1.aves.example.")
            {
                assert_eq!((a, rec.ttl), (NS_ADDR, ZONE_TTL));
                continue;
            }
            assert_eq!(rec.ttl, 0, "a waypoint address with TTL {}", rec.ttl);
            assert!(in_pool(a), "{a} is not a waypoint address");
            assert!(accepted.contains(&a), "{a} answered without an ACCEPT");
            assert!(is_host_a, "a waypoint address for {question:?}");
            assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        }
    }
    // 4: every SETUP, whatever the mode.
    assert!(
        seen.len() <= host_a_queries,
        "{} SETUPs for {host_a_queries} host A queries",
        seen.len()
    );
    for s in &seen {
        let (_, _, gw) = HOSTS
            .iter()
            .find(|(_, r, _)| *r == s.responder)
            .expect("SETUP for a responder of the zone");
        assert_eq!(Some(s.gateway), *gw, "SETUP with the wrong gateway");
        assert!(in_pool(s.waypoint));
        // 32: the intranet querier or an ECS /32; 1..=31: an ECS network address.
        let p = u32::from(s.initiator_prefix);
        assert!(p <= 32);
        assert!(
            p == 0 || p == 32 || u32::from(s.initiator) & (u32::MAX >> p) == 0,
            "ECS initiator {}/{p} not a network address",
            s.initiator
        );
    }
    // 5: response rate limiting.
    let allowed = RRL_BURST + (RRL_RATE * elapsed).ceil();
    for (net, n) in &answered_by_network {
        assert!(
            f64::from(*n) <= allowed,
            "{n} UDP answers to {net} (burst {RRL_BURST}, {elapsed:.3} s)"
        );
    }
    // 6: counting and clean-up.
    let c = dns.counters();
    assert_eq!(c.queries.load(Ordering::Relaxed), parsed_requests);
    let by_type: u64 = c.queries_by_type().iter().map(|(_, _, n)| n).sum();
    assert_eq!(
        by_type,
        parsed_requests,
        "by-type table ({} × {})",
        QTYPES.len(),
        RCODES.len()
    );
    assert_eq!(c.in_flight.in_flight(), 0, "SETUP slots held after the end");
});
