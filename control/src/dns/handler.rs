//! The AVES-aware DNS server's `RequestHandler`: one decision per query (AVES paper
//! §3.3, §5.1, §6.2).
//!
//! | query | answer |
//! |---|---|
//! | from a banned querier (NXDOMAIN penalty) | none at all |
//! | over UDP from a client network over its response rate (`[dns.rrl]`) | every `slip`-th: empty, TC=1 (retry over TCP); the others: none |
//! | opcode other than QUERY | NOTIMP |
//! | not exactly one question; ECS with address bits past its prefix (RFC 7871 §7.1.1) | FORMERR |
//! | EDNS version > 0 | BADVERS (RFC 6891 §6.1.3) |
//! | class other than IN, a name outside the zone, AXFR or IXFR | REFUSED |
//! | apex SOA / NS / ANY | the records, TTL `ttl`, NS with glue |
//! | in-zone name server A | its address, TTL `ttl` |
//! | host A | SETUP via the [`Binder`]; ACCEPT: A = waypoint address, TTL 0; REJECT, timeout, rate limit, no gateway address, too many SETUPs in flight: SERVFAIL |
//! | any other type at an existing name (AAAA for a host, ...) | NOERROR, no data, SOA |
//! | a name that does not exist | NXDOMAIN, SOA; counts towards the querier's ban |
//!
//! SERVFAIL, not REFUSED or an empty answer, when no binding was made: a stub or
//! resolver retries SERVFAIL (on the next server, or the next time), which is what the
//! paper's "let the initiator retry" needs; it is not an answer a resolver keeps.
//!
//! The initiator's identity (what the SETUP names) is, in order: the querier when it is
//! in an `intranet` prefix (/32, §3.3.1); else the IPv4 EDNS Client Subnet prefix when
//! the query has one with a source prefix > 0 (RFC 7871); else nobody (prefix 0: the
//! resolver's address, general mode with delayed binding at the waypoint, §3.3.2).
//! With ECS the answer echoes the option with scope = source prefix, so a resolver that
//! caches despite TTL 0 keeps the answer to that prefix; the waypoint can bind the
//! prefix at once instead of waiting for the first connection in a wait state.
//!
//! A host A query for an (identity, host) whose SETUP is still in flight sends none: it
//! waits for that SETUP and answers from its outcome (`sessions_coalesced`). Resolvers
//! retransmit after tens of milliseconds (unbound: `infra-cache-min-rtt`, 50 ms), which
//! a SETUP under load can exceed; each retransmission would otherwise bind one more
//! address and, in general mode, put one more address in a wait state.
//!
//! Response rate limiting is applied to a query before any work on it (so a flood
//! from one network causes no SETUPs beyond its rate either), and only to UDP: TCP
//! needs a handshake, so its source is not spoofed, and it is where slipped clients go.
//! Queries hickory cannot parse never reach the handler: it answers FORMERR itself
//! when the 12-byte header parsed (an answer no larger than the query), nothing
//! otherwise.
//!
//! The question section of an answer is the parsed question encoded again, names
//! spelled out: hickory would echo the query's bytes, whose compressed names (pointers)
//! would then point into the answer's header (`spelled_out`).
//!
//! Invariants: no panics on any input (only parsed fields are read; indexes are
//! checked); every answer parses as a DNS message (the `dns_handler` fuzz target);
//! the state lock is never held across an `.await`; the wait for a binder
//! is bounded by `setup_timeout`, and so is a follower's wait for its leader; at most
//! one SETUP per (identity, host) is in flight, and its `inflight` entry goes when it
//! ends or its query is dropped.

use super::limits::{
    NxPenalty, Pending, PendingGuard, ResponseRateLimit, RrlVerdict, TokenBuckets,
};
use super::zone::{Identity, Lookup, Waypoints, Zone};
use super::{Binder, SetupOutcome, SetupRequest};
use crate::config::DnsSpec;
use aves_dataplane::addr::Ipv4Cidr;
use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, BinEncoder, NameEncoding};
use hickory_server::net::runtime::{Time, TokioTime};
use hickory_server::net::xfer::Protocol;
use hickory_server::net::NetError;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::{debug, warn};

/// Largest UDP payload the server answers with (the 2020 DNS flag day value).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// Query types counted by name in [`DnsCounters::by_type`]; others are `other`, a
/// query without exactly one question `none`. A fixed set, so the label cannot grow.
pub const QTYPES: [&str; 16] = [
    "A", "AAAA", "NS", "SOA", "CNAME", "MX", "TXT", "PTR", "SRV", "HTTPS", "SVCB", "ANY", "AXFR",
    "IXFR", "other", "none",
];

/// Response codes counted by name in [`DnsCounters::by_type`]; `dropped`: no answer sent
/// (a banned querier, a response, an answer that could not be sent).
pub const RCODES: [&str; 9] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other",
    "dropped",
];

/// Upper bounds of the SETUP round-trip histogram's buckets, s (0.5 ms to 5 s).
pub const SETUP_RTT_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The index in [`QTYPES`] of a query's type.
fn qtype_index(t: Option<RecordType>) -> usize {
    let name = match t {
        None => "none",
        Some(RecordType::A) => "A",
        Some(RecordType::AAAA) => "AAAA",
        Some(RecordType::NS) => "NS",
        Some(RecordType::SOA) => "SOA",
        Some(RecordType::CNAME) => "CNAME",
        Some(RecordType::MX) => "MX",
        Some(RecordType::TXT) => "TXT",
        Some(RecordType::PTR) => "PTR",
        Some(RecordType::SRV) => "SRV",
        Some(RecordType::HTTPS) => "HTTPS",
        Some(RecordType::SVCB) => "SVCB",
        Some(RecordType::ANY) => "ANY",
        Some(RecordType::AXFR) => "AXFR",
        Some(RecordType::IXFR) => "IXFR",
        Some(_) => "other",
    };
    QTYPES
        .iter()
        .position(|q| *q == name)
        .unwrap_or(QTYPES.len() - 2)
}

/// The index in [`RCODES`] of an answer's code (`None`: not answered).
fn rcode_index(c: Option<ResponseCode>) -> usize {
    let name = match c {
        None => "dropped",
        Some(ResponseCode::NoError) => "NOERROR",
        Some(ResponseCode::FormErr) => "FORMERR",
        Some(ResponseCode::ServFail) => "SERVFAIL",
        Some(ResponseCode::NXDomain) => "NXDOMAIN",
        Some(ResponseCode::NotImp) => "NOTIMP",
        Some(ResponseCode::Refused) => "REFUSED",
        Some(ResponseCode::BADVERS) => "BADVERS",
        Some(_) => "other",
    };
    RCODES
        .iter()
        .position(|r| *r == name)
        .unwrap_or(RCODES.len() - 2)
}

/// What the server did, by kind. Every query lands in exactly one `answer_*`/`drop_*`
/// counter except sessions, which also count their SETUP result.
#[derive(Debug)]
pub struct DnsCounters {
    /// Queries by type (index in [`QTYPES`]) and answer code (index in [`RCODES`]).
    pub by_type: [[AtomicU64; RCODES.len()]; QTYPES.len()],
    /// Time from sending a SETUP to its ACCEPT or REJECT, by `outcome` (`accept`,
    /// `reject`); timeouts are not observed (they count in `servfail_timeout`). `None`
    /// only if the histogram could not be made (it cannot with these constant options).
    pub setup_rtt: Option<prometheus::HistogramVec>,
    /// SETUPs in flight now (shared with the handler's cap).
    pub in_flight: Pending,
    /// Queries seen (parsed by hickory).
    pub queries: AtomicU64,
    /// Host A queries answered with a waypoint address.
    pub answer_session: AtomicU64,
    /// Answers with records from the zone (SOA, NS, name server addresses).
    pub answer_zone: AtomicU64,
    /// NOERROR/NODATA answers.
    pub answer_nodata: AtomicU64,
    /// NXDOMAIN answers.
    pub answer_nxdomain: AtomicU64,
    /// REFUSED for zone transfers (AXFR/IXFR).
    pub answer_refused_transfer: AtomicU64,
    /// REFUSED for other classes or names outside the zone.
    pub answer_refused: AtomicU64,
    /// FORMERR and BADVERS.
    pub answer_formerr: AtomicU64,
    /// NOTIMP.
    pub answer_notimp: AtomicU64,
    /// SERVFAIL after a REJECT.
    pub servfail_rejected: AtomicU64,
    /// SERVFAIL after no ACCEPT within the timeout.
    pub servfail_timeout: AtomicU64,
    /// SERVFAIL: the responder's session rate is spent.
    pub servfail_rate: AtomicU64,
    /// SERVFAIL: too many SETUPs in flight.
    pub servfail_busy: AtomicU64,
    /// SERVFAIL: the gateway's address is not known yet (no REGISTER).
    pub servfail_no_gateway: AtomicU64,
    /// Host A queries that found a SETUP for the same identity and host in flight and
    /// took its outcome instead of sending another (a resolver's retransmission, or the
    /// same question from another client of the resolver); also counted by outcome.
    pub sessions_coalesced: AtomicU64,
    /// Queries not answered: the querier is banned.
    pub drop_banned: AtomicU64,
    /// Queriers banned.
    pub bans: AtomicU64,
    /// UDP queries over their network's response rate answered empty with TC=1.
    pub rrl_slipped: AtomicU64,
    /// UDP queries over their network's response rate not answered.
    pub rrl_dropped: AtomicU64,
}

impl DnsCounters {
    /// Zeroed counters; `in_flight` reads the handler's cap on SETUPs in flight.
    pub fn new(in_flight: Pending) -> DnsCounters {
        let opts = prometheus::HistogramOpts::new(
            "aves_setup_rtt_seconds",
            "Time from sending a SETUP to the waypoint's ACCEPT or REJECT, by outcome (retries included; timeouts not observed).",
        )
        .buckets(SETUP_RTT_BUCKETS.to_vec());
        DnsCounters {
            by_type: Default::default(),
            setup_rtt: prometheus::HistogramVec::new(opts, &["outcome"]).ok(),
            in_flight,
            queries: AtomicU64::new(0),
            answer_session: AtomicU64::new(0),
            answer_zone: AtomicU64::new(0),
            answer_nodata: AtomicU64::new(0),
            answer_nxdomain: AtomicU64::new(0),
            answer_refused_transfer: AtomicU64::new(0),
            answer_refused: AtomicU64::new(0),
            answer_formerr: AtomicU64::new(0),
            answer_notimp: AtomicU64::new(0),
            servfail_rejected: AtomicU64::new(0),
            servfail_timeout: AtomicU64::new(0),
            servfail_rate: AtomicU64::new(0),
            servfail_busy: AtomicU64::new(0),
            servfail_no_gateway: AtomicU64::new(0),
            sessions_coalesced: AtomicU64::new(0),
            rrl_slipped: AtomicU64::new(0),
            rrl_dropped: AtomicU64::new(0),
            drop_banned: AtomicU64::new(0),
            bans: AtomicU64::new(0),
        }
    }

    /// Counts a query of type `qtype` answered with `rcode` (`None`: not answered).
    pub fn count_query(&self, qtype: Option<RecordType>, rcode: Option<ResponseCode>) {
        if let Some(c) = self
            .by_type
            .get(qtype_index(qtype))
            .and_then(|r| r.get(rcode_index(rcode)))
        {
            bump(c);
        }
    }

    /// Queries by `(qtype, rcode)` label, non-zero ones only.
    pub fn queries_by_type(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for (q, row) in QTYPES.iter().zip(&self.by_type) {
            for (r, c) in RCODES.iter().zip(row) {
                let v = c.load(Ordering::Relaxed);
                if v > 0 {
                    out.push((*q, *r, v));
                }
            }
        }
        out
    }

    /// Records one SETUP round trip.
    pub(crate) fn observe_setup(&self, outcome: &str, rtt: Duration) {
        if let Some(h) = &self.setup_rtt {
            if let Ok(h) = h.get_metric_with_label_values(&[outcome]) {
                h.observe(rtt.as_secs_f64());
            }
        }
    }

    /// `(name, value)` for every counter, in a fixed order.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("queries", g(&self.queries)),
            ("answer_session", g(&self.answer_session)),
            ("answer_zone", g(&self.answer_zone)),
            ("answer_nodata", g(&self.answer_nodata)),
            ("answer_nxdomain", g(&self.answer_nxdomain)),
            ("answer_refused_transfer", g(&self.answer_refused_transfer)),
            ("answer_refused", g(&self.answer_refused)),
            ("answer_formerr", g(&self.answer_formerr)),
            ("answer_notimp", g(&self.answer_notimp)),
            ("servfail_rejected", g(&self.servfail_rejected)),
            ("servfail_timeout", g(&self.servfail_timeout)),
            ("servfail_rate", g(&self.servfail_rate)),
            ("servfail_busy", g(&self.servfail_busy)),
            ("servfail_no_gateway", g(&self.servfail_no_gateway)),
            ("sessions_coalesced", g(&self.sessions_coalesced)),
            ("drop_banned", g(&self.drop_banned)),
            ("bans", g(&self.bans)),
            ("rrl_slipped", g(&self.rrl_slipped)),
            ("rrl_dropped", g(&self.rrl_dropped)),
        ]
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The outcome of a SETUP in flight, as its followers see it: `None` until it ends.
type Outcome = Option<(Ipv4Addr, SetupOutcome)>;

/// The mutable part, behind one lock held only between awaits.
#[derive(Debug)]
struct State {
    nx: NxPenalty,
    rate: TokenBuckets,
    waypoints: Waypoints,
    /// SETUPs in flight by (identity, host): at most `max_pending` (only a query holding
    /// a [`Pending`] slot adds one, and removes it when it ends or is dropped).
    inflight: HashMap<(Identity, usize), watch::Receiver<Outcome>>,
    /// Response rate limiting per client network (`[dns.rrl]`); `None`: off.
    rrl: Option<ResponseRateLimit>,
}

/// What a host A query does about its SETUP (decided under the state lock).
enum Role<'a> {
    /// Take the outcome of the SETUP in flight for the same identity and host.
    Follow(watch::Receiver<Outcome>),
    /// Send the SETUP for this waypoint address; followers wait on the sender.
    Lead(PendingGuard, Ipv4Addr, watch::Sender<Outcome>),
    /// SERVFAIL at once, counted here.
    Fail(&'a AtomicU64),
}

/// A query that sends a SETUP, as seen by the queries that follow it: it publishes the
/// outcome, and its entry in [`State::inflight`] goes when it ends, also when the query
/// is dropped half-way (its followers then see the channel closed: SERVFAIL).
struct Leader<'a> {
    dns: &'a AvesDns,
    key: (Identity, usize),
    tx: watch::Sender<Outcome>,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.dns.state().inflight.remove(&self.key);
    }
}

/// The AVES-aware DNS server's request handler.
pub struct AvesDns {
    zone: Arc<Zone>,
    binder: Arc<dyn Binder>,
    state: Mutex<State>,
    pending: Pending,
    intranet: Vec<Ipv4Cidr>,
    ecs: bool,
    setup_timeout: Duration,
    counters: Arc<DnsCounters>,
}

/// An answer ready to encode.
#[derive(Debug)]
struct Answer {
    metadata: Metadata,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
    edns: Option<Edns>,
}

/// The EDNS Client Subnet option of a query, if any (the first one).
fn client_subnet(edns: Option<&Edns>) -> Option<ClientSubnet> {
    match edns?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(s) => Some(*s),
        _ => None,
    }
}

/// RFC 7871 §7.1.1: ADDRESS bits past SOURCE PREFIX-LENGTH must be zero.
fn subnet_is_well_formed(s: &ClientSubnet) -> bool {
    let p = u32::from(s.source_prefix());
    match s.addr() {
        IpAddr::V4(a) => p <= 32 && (p == 32 || u32::from(a) & (u32::MAX >> p) == 0),
        IpAddr::V6(a) => p <= 128 && (p == 128 || u128::from(a) & (u128::MAX >> p) == 0),
    }
}

fn querier_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => a.to_ipv4_mapped(),
    }
}

impl AvesDns {
    /// A handler for the zone of `spec` that asks `binder` for bindings.
    pub fn new(spec: &DnsSpec, binder: Arc<dyn Binder>) -> Self {
        let zone = Arc::new(Zone::new(spec));
        let now = Instant::now();
        let state = State {
            nx: NxPenalty::new(spec.nx_penalty),
            rate: TokenBuckets::new(spec.rate, zone.hosts().len(), now),
            waypoints: Waypoints::new(&spec.waypoints, spec.grant_memory, spec.general_wait),
            inflight: HashMap::new(),
            rrl: spec.rrl.clone().map(ResponseRateLimit::new),
        };
        let pending = Pending::new(spec.max_pending);
        AvesDns {
            zone,
            binder,
            state: Mutex::new(state),
            pending: pending.clone(),
            intranet: spec.intranet.clone(),
            ecs: spec.ecs,
            setup_timeout: spec.setup_timeout,
            counters: Arc::new(DnsCounters::new(pending)),
        }
    }

    /// The zone (shared: REGISTER updates gateway addresses through it).
    pub fn zone(&self) -> Arc<Zone> {
        self.zone.clone()
    }

    /// The counters (shared).
    pub fn counters(&self) -> Arc<DnsCounters> {
        self.counters.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is not expected; if one happened, the state
        // is still consistent enough (counters and advice), so carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The initiator's identity and the ECS scope to answer with (see the module doc).
    fn identity(&self, querier: IpAddr, ecs: Option<&ClientSubnet>) -> (Identity, Option<u8>) {
        let no_scope = ecs.map(|_| 0);
        if let Some(q) = querier_v4(querier) {
            if self.intranet.iter().any(|c| c.contains(q)) {
                return (
                    Identity {
                        addr: q,
                        prefix: 32,
                    },
                    no_scope,
                );
            }
        }
        if self.ecs {
            if let Some(s) = ecs {
                if let IpAddr::V4(a) = s.addr() {
                    let p = s.source_prefix();
                    if (1..=32).contains(&p) {
                        let mask = u32::MAX << (32 - u32::from(p));
                        let net = Ipv4Addr::from(u32::from(a) & mask);
                        return (
                            Identity {
                                addr: net,
                                prefix: p,
                            },
                            Some(p),
                        );
                    }
                }
            }
        }
        let addr = querier_v4(querier).unwrap_or(Ipv4Addr::UNSPECIFIED);
        (Identity { addr, prefix: 0 }, no_scope)
    }

    /// Decides the answer to `request`; `None`: send nothing.
    async fn answer(&self, request: &Request) -> Option<Answer> {
        let now = Instant::now();
        let querier = request.src().ip();
        bump(&self.counters.queries);
        if self.state().nx.is_banned(querier, now) {
            bump(&self.counters.drop_banned);
            return None;
        }
        // hickory drops responses before they reach a handler; be sure anyway.
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut metadata = Metadata::response_from_request(&request.metadata);
        if request.protocol() == Protocol::Udp {
            let verdict = self
                .state()
                .rrl
                .as_mut()
                .map_or(RrlVerdict::Answer, |r| r.check(querier, now));
            match verdict {
                RrlVerdict::Answer => {}
                RrlVerdict::Drop => {
                    bump(&self.counters.rrl_dropped);
                    return None;
                }
                RrlVerdict::Slip => {
                    bump(&self.counters.rrl_slipped);
                    metadata.truncation = true;
                    return Some(Answer {
                        metadata,
                        answers: Vec::new(),
                        authorities: Vec::new(),
                        additionals: Vec::new(),
                        edns: None,
                    });
                }
            }
        }
        let ecs = client_subnet(request.edns.as_ref());
        let mut answer = Answer {
            metadata,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
            edns: request.edns.as_ref().map(|e| {
                let mut r = Edns::new();
                r.set_max_payload(e.max_payload().clamp(512, MAX_UDP_PAYLOAD));
                r
            }),
        };
        let fail = |mut a: Answer, code: ResponseCode, counter: &AtomicU64| {
            bump(counter);
            a.metadata.response_code = code;
            Some(a)
        };
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return fail(answer, ResponseCode::BADVERS, &self.counters.answer_formerr);
        }
        if request.metadata.op_code != OpCode::Query {
            return fail(answer, ResponseCode::NotImp, &self.counters.answer_notimp);
        }
        let [query] = request.queries.queries() else {
            return fail(answer, ResponseCode::FormErr, &self.counters.answer_formerr);
        };
        if ecs.as_ref().is_some_and(|s| !subnet_is_well_formed(s)) {
            return fail(answer, ResponseCode::FormErr, &self.counters.answer_formerr);
        }
        let qtype = query.query_type();
        if query.query_class() != DNSClass::IN {
            return fail(answer, ResponseCode::Refused, &self.counters.answer_refused);
        }
        // §6.2: no zone transfers, so host names cannot be listed.
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return fail(
                answer,
                ResponseCode::Refused,
                &self.counters.answer_refused_transfer,
            );
        }
        let lookup = self.zone.lookup(query.name());
        if lookup == Lookup::OutOfZone {
            return fail(answer, ResponseCode::Refused, &self.counters.answer_refused);
        }
        metadata.authoritative = true;
        answer.metadata = metadata;
        let owner = query.original().name().clone();
        let zone = &self.zone;
        let nodata = |mut a: Answer| {
            bump(&self.counters.answer_nodata);
            a.authorities.push(zone.negative_soa().clone());
            Some(a)
        };
        let with_ecs_scope = |a: &mut Answer, scope: Option<u8>| {
            if let (Some(e), Some(mut s), Some(scope)) = (a.edns.as_mut(), ecs, scope) {
                s.set_scope_prefix(scope);
                // hickory's OPT::insert appends: drop an earlier echo first.
                e.options_mut().remove(EdnsCode::Subnet);
                e.options_mut().insert(EdnsOption::Subnet(s));
            }
        };
        // Answers that do not depend on the client's subnet: scope 0 (RFC 7871 §7.2.1).
        with_ecs_scope(&mut answer, ecs.map(|_| 0));
        match lookup {
            Lookup::OutOfZone => None,
            Lookup::Apex => match qtype {
                RecordType::SOA => {
                    bump(&self.counters.answer_zone);
                    answer.answers.push(zone.soa().clone());
                    Some(answer)
                }
                RecordType::NS | RecordType::ANY => {
                    bump(&self.counters.answer_zone);
                    if qtype == RecordType::ANY {
                        answer.answers.push(zone.soa().clone());
                    }
                    answer.answers.extend(zone.ns().iter().cloned());
                    answer.additionals.extend(zone.glue().iter().cloned());
                    Some(answer)
                }
                _ => nodata(answer),
            },
            Lookup::NsAddress(a) => match qtype {
                RecordType::A | RecordType::ANY => {
                    bump(&self.counters.answer_zone);
                    answer
                        .answers
                        .push(Record::from_rdata(owner, zone.ttl(), RData::A(A(a))));
                    Some(answer)
                }
                _ => nodata(answer),
            },
            Lookup::EmptyNonTerminal => nodata(answer),
            Lookup::Host(_) if qtype != RecordType::A => nodata(answer),
            Lookup::Host(i) => {
                let (id, scope) = self.identity(querier, ecs.as_ref());
                with_ecs_scope(&mut answer, scope);
                self.session(answer, i, id, owner).await
            }
            Lookup::NotFound => {
                bump(&self.counters.answer_nxdomain);
                if self.state().nx.record_nx(querier, now) {
                    bump(&self.counters.bans);
                    warn!(%querier, "DNS: querier banned for asking for names that do not exist (AVES §6.2)");
                }
                answer.metadata.response_code = ResponseCode::NXDomain;
                answer.authorities.push(zone.negative_soa().clone());
                Some(answer)
            }
        }
    }

    /// A host A query: choose a waypoint address, SETUP, answer (§3.3, §5.1).
    async fn session(
        &self,
        mut answer: Answer,
        host_index: usize,
        id: Identity,
        owner: hickory_proto::rr::Name,
    ) -> Option<Answer> {
        let servfail = |mut a: Answer, counter: &AtomicU64| {
            bump(counter);
            a.metadata.response_code = ResponseCode::ServFail;
            a.metadata.authoritative = false;
            Some(a)
        };
        let host = self.zone.hosts().get(host_index)?;
        let Some(gateway) = self.zone.gateway_address(host.gateway) else {
            return servfail(answer, &self.counters.servfail_no_gateway);
        };
        let key = (id, host_index);
        // One decision under the lock: follow a SETUP in flight for the same identity
        // and host, or lead one (a slot, a token, an address, an entry in `inflight`).
        // Resolvers retransmit after their own timeout (unbound: from 50 ms once it
        // has seen fast answers), often before a SETUP ends; a second SETUP would bind
        // another address for nothing and, in general mode, put a second address in a
        // wait state (halving what the pool can take, §3.3.2: N / Twait).
        let role = {
            let now = Instant::now();
            let mut st = self.state();
            if let Some(rx) = st.inflight.get(&key) {
                Role::Follow(rx.clone())
            } else if let Some(slot) = self.pending.try_acquire() {
                if !st.rate.take(host_index, now) {
                    Role::Fail(&self.counters.servfail_rate)
                } else if let Some(w) = st.waypoints.choose(id, host_index, gateway, now) {
                    let (tx, rx) = watch::channel(None);
                    st.inflight.insert(key, rx);
                    Role::Lead(slot, w, tx)
                } else {
                    Role::Fail(&self.counters.servfail_busy)
                }
            } else {
                Role::Fail(&self.counters.servfail_busy)
            }
        };
        let (slot, waypoint, leader) = match role {
            Role::Fail(counter) => return servfail(answer, counter),
            Role::Follow(mut rx) => {
                bump(&self.counters.sessions_coalesced);
                let outcome =
                    tokio::time::timeout(self.setup_timeout, rx.wait_for(Option::is_some))
                        .await
                        .ok()
                        .and_then(|r| r.ok().and_then(|v| v.clone()));
                return match outcome {
                    Some((w, SetupOutcome::Accept)) => {
                        bump(&self.counters.answer_session);
                        answer
                            .answers
                            .push(Record::from_rdata(owner, 0, RData::A(A(w))));
                        Some(answer)
                    }
                    Some((_, SetupOutcome::Reject(_))) => {
                        servfail(answer, &self.counters.servfail_rejected)
                    }
                    _ => servfail(answer, &self.counters.servfail_timeout),
                };
            }
            Role::Lead(slot, w, tx) => (slot, w, Leader { dns: self, key, tx }),
        };
        let req = SetupRequest {
            initiator: id.addr,
            initiator_prefix: id.prefix,
            gateway,
            responder: host.responder,
            waypoint,
            mode: host.mode,
        };
        let sent = Instant::now();
        let outcome = tokio::time::timeout(self.setup_timeout, self.binder.setup(req))
            .await
            .unwrap_or(SetupOutcome::Timeout);
        drop(slot);
        match outcome {
            SetupOutcome::Accept => self.counters.observe_setup("accept", sent.elapsed()),
            SetupOutcome::Reject(_) => self.counters.observe_setup("reject", sent.elapsed()),
            SetupOutcome::Timeout => {}
        }
        self.state()
            .waypoints
            .record(id, host_index, gateway, waypoint, &outcome, Instant::now());
        leader.tx.send_replace(Some((waypoint, outcome.clone())));
        drop(leader);
        match outcome {
            SetupOutcome::Accept => {
                debug!(host = %host.name, ?req, "DNS: binding accepted");
                bump(&self.counters.answer_session);
                // TTL 0: the binding is for this initiator; nobody may cache it (§3.3.1).
                answer
                    .answers
                    .push(Record::from_rdata(owner, 0, RData::A(A(waypoint))));
                Some(answer)
            }
            SetupOutcome::Reject(reason) => {
                debug!(host = %host.name, ?req, %reason, "DNS: binding rejected");
                servfail(answer, &self.counters.servfail_rejected)
            }
            SetupOutcome::Timeout => {
                debug!(host = %host.name, ?req, "DNS: no answer to SETUP");
                servfail(answer, &self.counters.servfail_timeout)
            }
        }
    }
}

/// The question section to echo in an answer: the parsed questions encoded again,
/// names spelled out (no compression), case kept (0x20).
///
/// hickory's response builder copies the query's question bytes as they came and seeds
/// its compression table from them as if every name in them were spelled out. A name
/// that the query compressed (a pointer to an earlier offset, e.g. into the header)
/// would then point at the answer's bytes at that offset (the answer's flags, ...):
/// the answer would not parse, or its owner names would be other names. `None` only if
/// a parsed question cannot be encoded again (not expected: it was read from the wire).
fn spelled_out(queries: &Queries) -> Option<Queries> {
    let mut bytes = Vec::new();
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    for q in queries.queries() {
        q.emit(&mut encoder).ok()?;
    }
    Queries::read(&mut BinDecoder::new(&bytes), queries.len()).ok()
}

fn not_sent(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

#[async_trait::async_trait]
impl RequestHandler for AvesDns {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let qtype = match request.queries.queries() {
            [q] => Some(q.query_type()),
            _ => None,
        };
        let Some(answer) = self.answer(request).await else {
            self.counters.count_query(qtype, None);
            return not_sent(request);
        };
        let Some(queries) = spelled_out(&request.queries) else {
            self.counters.count_query(qtype, None);
            return not_sent(request);
        };
        let rcode = answer.metadata.response_code;
        let response = MessageResponseBuilder::new(&queries, answer.edns.as_ref()).build(
            answer.metadata,
            answer.answers.iter(),
            answer.authorities.iter(),
            std::iter::empty(),
            answer.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => {
                self.counters.count_query(qtype, Some(rcode));
                info
            }
            Err(error) => {
                debug!(%error, "DNS: cannot send the answer");
                self.counters.count_query(qtype, None);
                not_sent(request)
            }
        }
    }
}

/// A response handler that keeps the encoded answer instead of sending it.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Option<Vec<u8>>>>);

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let mut bytes = Vec::new();
        let info = response.destructive_emit(&mut BinEncoder::new(&mut bytes))?;
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes);
        Ok(info)
    }
}

impl AvesDns {
    /// One query through the handler without a socket: `bytes` as they came from `src`
    /// over `protocol`, parsed as hickory's server parses them
    /// ([`Request::from_bytes`]), answered by [`RequestHandler::handle_request`] (the
    /// server's path, counters included), and the answer encoded by hickory's encoder.
    ///
    /// `None`: nothing would be sent, because the handler dropped the query or because
    /// hickory could not parse it. Two things of the server's socket path are not
    /// made here: hickory's FORMERR for a query whose 12-byte header parses but whose
    /// body does not (sent without calling the handler), and its UDP size limit on the
    /// encoding (512 bytes without EDNS, else the size the answer's OPT advertises;
    /// over it, hickory sends an error header instead). Used by the unit tests and by
    /// the `dns_handler` fuzz target.
    pub async fn respond(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        protocol: Protocol,
    ) -> Option<Vec<u8>> {
        let request = Request::from_bytes(bytes.to_vec(), src, protocol).ok()?;
        let capture = Capture::default();
        self.handle_request::<_, TokioTime>(&request, capture.clone())
            .await;
        let answer = capture.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        answer
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::parse_dns;
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::Name;
    use std::future::Future;
    use std::path::Path;
    use std::pin::Pin;

    /// The zone of the handler tests.
    pub(crate) const SPEC: &str = r#"
[dns]
listen = "127.0.0.1:5353"
zone = "aves.example."
intranet = ["10.1.0.0/16"]
setup_timeout_ms = 300
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
[dns.nx_penalty]
threshold = 3
window_s = 60
ban_s = 600
"#;

    /// What the test binder answers.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Behaviour {
        Accept,
        Reject,
        /// Never answers (the handler's timeout decides).
        Silent,
        /// Accepts after this many milliseconds.
        Slow(u64),
        /// Rejects after this many milliseconds.
        SlowReject(u64),
    }

    /// A binder that records every SETUP and answers as told.
    #[derive(Debug)]
    pub(crate) struct TestBinder {
        pub(crate) behaviour: Mutex<Behaviour>,
        pub(crate) seen: Mutex<Vec<SetupRequest>>,
    }

    impl TestBinder {
        pub(crate) fn new(b: Behaviour) -> Arc<Self> {
            Arc::new(TestBinder {
                behaviour: Mutex::new(b),
                seen: Mutex::new(Vec::new()),
            })
        }
        pub(crate) fn seen(&self) -> Vec<SetupRequest> {
            self.seen.lock().unwrap().clone()
        }
        fn set(&self, b: Behaviour) {
            *self.behaviour.lock().unwrap() = b;
        }
    }

    impl Binder for TestBinder {
        fn setup(&self, req: SetupRequest) -> Pin<Box<dyn Future<Output = SetupOutcome> + Send>> {
            self.seen.lock().unwrap().push(req);
            match *self.behaviour.lock().unwrap() {
                Behaviour::Accept => Box::pin(async { SetupOutcome::Accept }),
                Behaviour::Reject => Box::pin(async {
                    SetupOutcome::Reject("initiator bound to another responder".into())
                }),
                Behaviour::Silent => Box::pin(std::future::pending()),
                Behaviour::Slow(ms) => Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    SetupOutcome::Accept
                }),
                Behaviour::SlowReject(ms) => Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    SetupOutcome::Reject("conflict".into())
                }),
            }
        }
    }

    fn server(text: &str, binder: Arc<TestBinder>) -> AvesDns {
        let spec = parse_dns(Path::new("t.toml"), text).unwrap();
        AvesDns::new(&spec, binder)
    }

    fn query(name: &str, t: RecordType) -> Message {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m
    }

    fn with_edns(mut m: Message, ecs: Option<ClientSubnet>) -> Message {
        let mut e = Edns::new();
        e.set_max_payload(4096);
        if let Some(s) = ecs {
            e.options_mut().insert(EdnsOption::Subnet(s));
        }
        m.set_edns(e);
        m
    }

    /// Sends `m` from `src` through the handler; the answer, or `None` if none was sent.
    async fn ask(s: &AvesDns, src: &str, m: &Message) -> Option<Message> {
        let src: SocketAddr = format!("{src}:5300").parse().unwrap();
        let bytes = s.respond(&m.to_vec().unwrap(), src, Protocol::Udp).await?;
        let r = Message::from_vec(&bytes).unwrap();
        assert_eq!(r.metadata.id, m.metadata.id);
        assert_eq!(r.metadata.message_type, MessageType::Response);
        Some(r)
    }

    fn a_of(r: &Message) -> Vec<(Ipv4Addr, u32)> {
        r.answers
            .iter()
            .filter_map(|rec| match &rec.data {
                RData::A(A(a)) => Some((*a, rec.ttl)),
                _ => None,
            })
            .collect()
    }

    fn ecs_of(r: &Message) -> Option<ClientSubnet> {
        client_subnet(r.edns.as_ref())
    }

    const HOST: &str = "b.home1.aves.example.";

    #[tokio::test]
    async fn intranet_querier_is_the_initiator_and_gets_a_waypoint_with_ttl_0() {
        let b = TestBinder::new(Behaviour::Accept);
        let s = server(SPEC, b.clone());
        let r = ask(&s, "10.1.0.5", &query(HOST, RecordType::A))
            .await
            .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.metadata.authoritative);
        assert!(r.metadata.recursion_desired && !r.metadata.recursion_available);
        let got = a_of(&r);
        assert_eq!(got.len(), 1);
        let (w, ttl) = got[0];
        assert_eq!(ttl, 0, "a binding is initiator-specific: never cached");
        assert_eq!(
            b.seen(),
            [SetupRequest {
                initiator: Ipv4Addr::new(10, 1, 0, 5),
                initiator_prefix: 32,
                gateway: Ipv4Addr::new(203, 0, 113, 7),
                responder: Ipv4Addr::new(192, 168, 1, 10),
                waypoint: w,
                mode: aves_dataplane::command::Mode::Plain,
            }]
        );
        assert!(r.edns.is_none(), "no OPT without one in the query");
        // The same initiator asking again gets the same address (its binding).
        let r = ask(&s, "10.1.0.5", &query(HOST, RecordType::A))
            .await
            .unwrap();
        assert_eq!(a_of(&r), [(w, 0)]);
        // A service name is the same host.
        let r = ask(
            &s,
            "10.1.0.5",
            &query("tcp22.B.home1.aves.example.", RecordType::A),
        )
        .await
        .unwrap();
        assert_eq!(a_of(&r), [(w, 0)]);
        assert_eq!(
            r.answers[0].name.to_string(),
            "tcp22.B.home1.aves.example.",
            "the owner name keeps the query's case (0x20)"
        );
        assert_eq!(b.seen().len(), 3);
        assert_eq!(s.counters().answer_session.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn another_responder_for_the_same_initiator_gets_another_waypoint_address() {
        let b = TestBinder::new(Behaviour::Accept);
        let s = server(SPEC, b.clone());
        s.zone()
            .set_gateway_address(2, Ipv4Addr::new(203, 0, 113, 9));
        let r1 = ask(&s, "10.1.0.5", &query(HOST, RecordType::A))
            .await
            .unwrap();
        let r2 = ask(
            &s,
            "10.1.0.5",
            &query("c.home2.aves.example.", RecordType::A),
        )
        .await
        .unwrap();
        assert_ne!(
            a_of(&r1)[0].0,
            a_of(&r2)[0].0,
            "§3.3.1: one responder per initiator and address"
        );
        let seen = b.seen();
        assert_eq!(seen[1].gateway, Ipv4Addr::new(203, 0, 113, 9));
        assert_eq!(seen[1].mode, aves_dataplane::command::Mode::MultiHoming);
    }

    #[tokio::test]
    async fn resolver_without_ecs_means_general_mode() {
        let b = TestBinder::new(Behaviour::Accept);
        let s = server(SPEC, b.clone());
        let r = ask(
            &s,
            "192.0.2.99",
            &with_edns(query(HOST, RecordType::A), None),
        )
        .await
        .unwrap();
        assert_eq!(a_of(&r).len(), 1);
        let seen = b.seen();
        assert_eq!(seen[0].initiator, Ipv4Addr::new(192, 0, 2, 99));
        assert_eq!(
            seen[0].initiator_prefix, 0,
            "initiator unknown: delayed binding"
        );
        let e = r.edns.as_ref().expect("OPT answered with OPT");
        assert_eq!(e.max_payload(), MAX_UDP_PAYLOAD);
        assert!(ecs_of(&r).is_none());
        // Twait: the next general-mode query gets another waypoint address.
        let r2 = ask(&s, "192.0.2.98", &query(HOST, RecordType::A))
            .await
            .unwrap();
        assert_ne!(a_of(&r2)[0].0, a_of(&r)[0].0);
    }

    #[tokio::test]
    async fn ecs_names_the_initiator_prefix_and_is_echoed_with_scope() {
        let b = TestBinder::new(Behaviour::Accept);
        let s = server(SPEC, b.clone());
        let ecs = ClientSubnet::new("198.18.5.0".parse().unwrap(), 24, 0);
        let r = ask(
            &s,
            "192.0.2.99",
            &with_edns(query(HOST, RecordType::A), Some(ecs)),
        )
        .await
        .unwrap();
        assert_eq!(a_of(&r)[0].1, 0);
        let seen = b.seen();
        assert_eq!(seen[0].initiator, Ipv4Addr::new(198, 18, 5, 0));
        assert_eq!(seen[0].initiator_prefix, 24);
        let echo = ecs_of(&r).expect("ECS echoed");
        assert_eq!(echo.addr(), ecs.addr());
        assert_eq!(echo.source_prefix(), 24);
        assert_eq!(echo.scope_prefix(), 24, "the answer is for this /24 only");

        // Non-session answers do not depend on the subnet: scope 0.
        let r = ask(
            &s,
            "192.0.2.99",
            &with_edns(query("aves.example.", RecordType::SOA), Some(ecs)),
        )
        .await
        .unwrap();
        assert_eq!(ecs_of(&r).unwrap().scope_prefix(), 0);

        // Source prefix 0: the client asked not to be identified (RFC 7871 §7.1.2).
        let zero = ClientSubnet::new("0.0.0.0".parse().unwrap(), 0, 0);
        let r = ask(
            &s,
            "192.0.2.99",
            &with_edns(query(HOST, RecordType::A), Some(zero)),
        )
        .await
        .unwrap();
        assert_eq!(b.seen()[1].initiator_prefix, 0);
        assert_eq!(ecs_of(&r).unwrap().scope_prefix(), 0);

        // IPv6 ECS cannot name an IPv4 initiator: general mode.
        let v6 = ClientSubnet::new("2001:db8::".parse().unwrap(), 56, 0);
        ask(
            &s,
            "192.0.2.99",
            &with_edns(query(HOST, RecordType::A), Some(v6)),
        )
        .await
        .unwrap();
        assert_eq!(b.seen()[2].initiator_prefix, 0);

        // An intranet querier is the initiator even with ECS.
        ask(
            &s,
            "10.1.2.3",
            &with_edns(query(HOST, RecordType::A), Some(ecs)),
        )
        .await
        .unwrap();
        assert_eq!(b.seen()[3].initiator, Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(b.seen()[3].initiator_prefix, 32);

        // Address bits past the source prefix: FORMERR (RFC 7871 §7.1.1).
        // (The wire carries whole octets: 198.18.5.0/20 has bits set past /20.)
        let bad = ClientSubnet::new("198.18.5.0".parse().unwrap(), 20, 0);
        let r = ask(
            &s,
            "192.0.2.99",
            &with_edns(query(HOST, RecordType::A), Some(bad)),
        )
        .await
        .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(b.seen().len(), 4, "no SETUP for a malformed query");
    }

    #[tokio::test]
    async fn ecs_can_be_turned_off() {
        let b = TestBinder::new(Behaviour::Accept);
        let s = server(
            &SPEC.replace("intranet =", "ecs = false\nintranet ="),
            b.clone(),
        );
        let ecs = ClientSubnet::new("198.18.5.0".parse().unwrap(), 24, 0);
        let r = ask(
            &s,
            "192.0.2.99",
            &with_edns(query(HOST, RecordType::A), Some(ecs)),
        )
        .await
        .unwrap();
        assert_eq!(b.seen()[0].initiator_prefix, 0);
        assert_eq!(ecs_of(&r).unwrap().scope_prefix(), 0);
    }

    #[tokio::test]
    async fn reject_and_timeout_answer_servfail_and_the_retry_gets_another_address() {
        let b = TestBinder::new(Behaviour::Reject);
        let s = server(SPEC, b.clone());
        let r = ask(&s, "10.1.0.5", &query(HOST, RecordType::A))
            .await
            .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        assert!(r.answers.is_empty());
        assert!(!r.metadata.authoritative);
        b.set(Behaviour::Accept);
        let r = ask(&s, "10.1.0.5", &query(HOST, RecordType::A))
            .await
            .unwrap();
        let seen = b.seen();
        assert_ne!(
            seen[1].waypoint, seen[0].waypoint,
            "the rejected address is avoided"
        );
        assert_eq!(a_of(&r), [(seen[1].waypoint, 0)]);

        b.set(Behaviour::Silent);
        let t = Instant::now();
        let r = ask(&s, "10.1.0.6", &query(HOST, RecordType::A))
            .await
            .unwrap();
        let waited = t.elapsed();
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
        let c = s.counters();
        assert_eq!(c.servfail_rejected.load(Ordering::Relaxed), 1);
        assert_eq!(c.servfail_timeout.load(Ordering::Relaxed), 1);
        assert_eq!(s.pending.in_flight(), 0, "slots given back");
    }

    #[tokio::test]
    async fn zone_records_and_negative_answers() {
        let b = TestBinder::new(Behaviour::Accept);
        let s = server(SPEC, b.clone());
        let r = ask(&s, "192.0.2.99", &query("aves.example.", RecordType::SOA))
            .await
            .unwrap();
        assert!(r.metadata.authoritative);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.answers[0].record_type(), RecordType::SOA);
        assert_eq!(r.answers[0].ttl, 3600, "SOA/NS are cacheable");

        let r = ask(&s, "192.0.2.99", &query("aves.example.", RecordType::NS))
            .await
            .unwrap();
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.answers[0].record_type(), RecordType::NS);
        let mut glue = r.clone();
        glue.answers = r.additionals.clone();
        assert_eq!(a_of(&glue), [(Ipv4Addr::new(192, 0, 2, 53), 3600)]);

        let r = ask(&s, "192.0.2.99", &query("ns1.aves.example.", RecordType::A))
            .await
            .unwrap();
        assert_eq!(a_of(&r), [(Ipv4Addr::new(192, 0, 2, 53), 3600)]);

        // AAAA for a host: NOERROR, no data, the SOA for negative caching; no SETUP.
        for t in [
            RecordType::AAAA,
            RecordType::MX,
            RecordType::TXT,
            RecordType::ANY,
        ] {
            let r = ask(&s, "10.1.0.5", &query(HOST, t)).await.unwrap();
            assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{t}");
            assert!(r.answers.is_empty(), "{t}");
            assert!(r.metadata.authoritative);
            assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
            assert_eq!(r.authorities[0].ttl, 60, "min(ttl, soa minimum)");
        }
        assert!(b.seen().is_empty());

        // An empty non-terminal exists (RFC 8020): NODATA, not NXDOMAIN.
        let r = ask(
            &s,
            "192.0.2.99",
            &query("home1.aves.example.", RecordType::A),
        )
        .await
        .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());

        let r = ask(
            &s,
            "192.0.2.99",
            &query("nope.aves.example.", RecordType::A),
        )
        .await
        .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert!(r.metadata.authoritative);
        assert_eq!(r.authorities[0].record_type(), RecordType::SOA);

        // Not ours: REFUSED (no recursion here), also for other classes.
        let r = ask(&s, "192.0.2.99", &query("example.org.", RecordType::A))
            .await
            .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        assert!(!r.metadata.authoritative);
        let mut ch = query("version.bind.", RecordType::TXT);
        ch.queries[0].set_query_class(DNSClass::CH);
        let r = ask(&s, "192.0.2.99", &ch).await.unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    }

    #[tokio::test]
    async fn zone_transfers_are_refused() {
        let b = TestBinder::new(Behaviour::Accept);
        let s = server(SPEC, b.clone());
        for t in [RecordType::AXFR, RecordType::IXFR] {
            for src in ["10.1.0.5", "192.0.2.99"] {
                let r = ask(&s, src, &query("aves.example.", t)).await.unwrap();
                assert_eq!(
                    r.metadata.response_code,
                    ResponseCode::Refused,
                    "{t} from {src}"
                );
                assert!(r.answers.is_empty());
            }
        }
        assert_eq!(
            s.counters().answer_refused_transfer.load(Ordering::Relaxed),
            4
        );
    }

    #[tokio::test]
    async fn name_scanner_is_ignored_for_the_ban_time() {
        let b = TestBinder::new(Behaviour::Accept);
        let s = server(SPEC, b.clone());
        let scanner = "192.0.2.66";
        for i in 0..4 {
            let r = ask(
                &s,
                scanner,
                &query(&format!("h{i}.aves.example."), RecordType::A),
            )
            .await
            .unwrap();
            assert_eq!(r.metadata.response_code, ResponseCode::NXDomain, "{i}");
        }
        // Over the threshold (3): no answers at all, even for names that exist.
        assert!(ask(&s, scanner, &query("h9.aves.example.", RecordType::A))
            .await
            .is_none());
        assert!(ask(&s, scanner, &query(HOST, RecordType::A))
            .await
            .is_none());
        assert!(ask(&s, scanner, &query("aves.example.", RecordType::SOA))
            .await
            .is_none());
        assert!(b.seen().is_empty());
        // Others are still answered.
        let r = ask(&s, "192.0.2.67", &query(HOST, RecordType::A))
            .await
            .unwrap();
        assert_eq!(a_of(&r).len(), 1);
        let c = s.counters();
        assert_eq!(c.bans.load(Ordering::Relaxed), 1);
        assert_eq!(c.drop_banned.load(Ordering::Relaxed), 3);
        // Existing names never count: an ENT or NODATA querier is not banned.
        for _ in 0..10 {
            ask(
                &s,
                "192.0.2.68",
                &query("home1.aves.example.", RecordType::A),
            )
            .await
            .unwrap();
            ask(&s, "192.0.2.68", &query(HOST, RecordType::AAAA))
                .await
                .unwrap();
        }
        assert!(ask(&s, "192.0.2.68", &query(HOST, RecordType::A))
            .await
            .is_some());
    }

    #[tokio::test]
    async fn session_rate_is_limited_per_responder() {
        let b = TestBinder::new(Behaviour::Accept);
        let s = server(
            &format!("{SPEC}\n[dns.rate]\nsessions_per_s = 1\nburst = 2\n"),
            b.clone(),
        );
        s.zone()
            .set_gateway_address(2, Ipv4Addr::new(203, 0, 113, 9));
        for i in 0..2 {
            let r = ask(
                &s,
                &format!("10.1.0.{}", 10 + i),
                &query(HOST, RecordType::A),
            )
            .await
            .unwrap();
            assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        }
        let r = ask(&s, "10.1.0.12", &query(HOST, RecordType::A))
            .await
            .unwrap();
        assert_eq!(
            r.metadata.response_code,
            ResponseCode::ServFail,
            "burst of 2 spent"
        );
        assert_eq!(b.seen().len(), 2, "no SETUP over the rate");
        // Another responder has its own bucket.
        let r = ask(
            &s,
            "10.1.0.12",
            &query("c.home2.aves.example.", RecordType::A),
        )
        .await
        .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(s.counters().servfail_rate.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn unknown_gateway_address_is_servfail_until_register() {
        let b = TestBinder::new(Behaviour::Accept);
        let s = server(SPEC, b.clone());
        let q = query("c.home2.aves.example.", RecordType::A);
        let r = ask(&s, "10.1.0.5", &q).await.unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        assert!(b.seen().is_empty());
        assert!(s
            .zone()
            .set_gateway_address(2, Ipv4Addr::new(203, 0, 113, 9)));
        let r = ask(&s, "10.1.0.5", &q).await.unwrap();
        assert_eq!(a_of(&r).len(), 1);
        assert_eq!(b.seen()[0].gateway, Ipv4Addr::new(203, 0, 113, 9));
        // A later REGISTER with a new address: new sessions use it.
        s.zone()
            .set_gateway_address(2, Ipv4Addr::new(203, 0, 113, 10));
        ask(&s, "10.1.0.6", &q).await.unwrap();
        assert_eq!(b.seen()[1].gateway, Ipv4Addr::new(203, 0, 113, 10));
    }

    #[tokio::test]
    async fn setups_in_flight_are_capped() {
        let b = TestBinder::new(Behaviour::Silent);
        let s = Arc::new(server(
            &SPEC.replace(
                "setup_timeout_ms = 300",
                "setup_timeout_ms = 2000\nmax_pending = 1",
            ),
            b.clone(),
        ));
        let s2 = s.clone();
        let first =
            tokio::spawn(async move { ask(&s2, "10.1.0.5", &query(HOST, RecordType::A)).await });
        while b.seen().is_empty() {
            tokio::task::yield_now().await;
        }
        let t = Instant::now();
        let r = ask(&s, "10.1.0.6", &query(HOST, RecordType::A))
            .await
            .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "at once, not after the timeout"
        );
        assert_eq!(s.counters().servfail_busy.load(Ordering::Relaxed), 1);
        assert_eq!(b.seen().len(), 1);
        first.abort();
        let _ = first.await;
        assert_eq!(
            s.pending.in_flight(),
            0,
            "a cancelled query gives its slot back"
        );
    }

    /// Runs `ask` for each source at once (spawned in this order), with query `q`.
    async fn ask_at_once(s: &Arc<AvesDns>, srcs: &[&str], q: &Message) -> Vec<Message> {
        let handles: Vec<_> = srcs
            .iter()
            .map(|src| {
                let (s, q, src) = (s.clone(), q.clone(), src.to_string());
                tokio::spawn(async move { ask(&s, &src, &q).await.unwrap() })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_query_while_its_setup_is_in_flight_takes_its_outcome() {
        let b = TestBinder::new(Behaviour::Slow(200));
        let s = Arc::new(server(SPEC, b.clone()));
        let q = query(HOST, RecordType::A);
        // A retransmission from an intranet initiator, the same question twice from
        // one resolver (general mode), another initiator: three SETUPs, five answers.
        let srcs = [
            "10.1.0.5",
            "10.1.0.5",
            "192.0.2.99",
            "192.0.2.99",
            "10.1.0.6",
        ];
        let r = ask_at_once(&s, &srcs, &q).await;
        let w: Vec<Ipv4Addr> = r
            .iter()
            .map(|m| {
                let a = a_of(m);
                assert_eq!(a.len(), 1, "{m:?}");
                assert_eq!(a[0].1, 0, "TTL 0 for followers too");
                a[0].0
            })
            .collect();
        assert_eq!(b.seen().len(), 3, "{:?}", b.seen());
        assert_eq!(w[0], w[1], "the retransmission gets the leader's address");
        assert_eq!(w[2], w[3], "general mode: one wait state, not two");
        assert_ne!(w[0], w[4]);
        assert_ne!(w[2], w[0]);
        let c = s.counters();
        assert_eq!(c.sessions_coalesced.load(Ordering::Relaxed), 2);
        assert_eq!(c.answer_session.load(Ordering::Relaxed), 5);
        assert!(s.state().inflight.is_empty(), "entries go with their SETUP");
        assert_eq!(s.pending.in_flight(), 0);
        // Once the SETUP has ended a query sends its own (the same binding again).
        let again = ask(&s, "10.1.0.5", &q).await.unwrap();
        assert_eq!(a_of(&again), [(w[0], 0)]);
        assert_eq!(b.seen().len(), 4);
    }

    #[tokio::test]
    async fn followers_share_a_reject_and_a_cancelled_leader_fails_them_at_once() {
        let b = TestBinder::new(Behaviour::SlowReject(100));
        let s = Arc::new(server(SPEC, b.clone()));
        let q = query(HOST, RecordType::A);
        let r = ask_at_once(&s, &["10.1.0.5", "10.1.0.5"], &q).await;
        for m in &r {
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        }
        assert_eq!(b.seen().len(), 1);
        assert_eq!(s.counters().servfail_rejected.load(Ordering::Relaxed), 2);
        // A leader dropped half-way (hickory gives up on the request): its follower is
        // answered SERVFAIL at once, not after the timeout, and nothing stays behind.
        b.set(Behaviour::Silent);
        let s = Arc::new(server(
            &SPEC.replace("setup_timeout_ms = 300", "setup_timeout_ms = 5000"),
            b.clone(),
        ));
        let s2 = s.clone();
        let q2 = q.clone();
        let leader = tokio::spawn(async move { ask(&s2, "10.1.0.7", &q2).await });
        while s.state().inflight.is_empty() {
            tokio::task::yield_now().await;
        }
        let (s3, q3) = (s.clone(), q.clone());
        let follower = tokio::spawn(async move { ask(&s3, "10.1.0.7", &q3).await });
        while s.counters().sessions_coalesced.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        let t = Instant::now();
        leader.abort();
        let _ = leader.await;
        let r = follower.await.unwrap().unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert!(s.state().inflight.is_empty());
        assert_eq!(s.pending.in_flight(), 0);
    }

    #[tokio::test]
    async fn odd_queries_get_the_right_error() {
        let b = TestBinder::new(Behaviour::Accept);
        let s = server(SPEC, b.clone());
        let mut m = query(HOST, RecordType::A);
        m.metadata.op_code = OpCode::Notify;
        let r = ask(&s, "10.1.0.5", &m).await.unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NotImp);

        let mut m = query(HOST, RecordType::A);
        m.add_query(Query::query(
            Name::from_ascii("aves.example.").unwrap(),
            RecordType::SOA,
        ));
        let r = ask(&s, "10.1.0.5", &m).await.unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);

        let mut m = Message::query();
        m.metadata.op_code = OpCode::Query;
        let r = ask(&s, "10.1.0.5", &m).await.unwrap();
        assert_eq!(
            r.metadata.response_code,
            ResponseCode::FormErr,
            "no question"
        );

        let mut m = with_edns(query(HOST, RecordType::A), None);
        m.edns.as_mut().unwrap().set_version(1);
        let r = ask(&s, "10.1.0.5", &m).await.unwrap();
        // 16 is BADVERS in a response's OPT context (hickory decodes it as BADSIG).
        assert_eq!(u16::from(r.metadata.response_code), 16, "BADVERS");
        assert_eq!(r.edns.as_ref().unwrap().version(), 0);
        assert!(b.seen().is_empty());
    }

    /// A UDP flood from one /24: the burst is answered, then every 2nd query gets an
    /// empty TC=1 answer and the rest nothing; no SETUP beyond the answered ones;
    /// another /24 and TCP are answered throughout.
    #[tokio::test]
    async fn udp_flood_from_one_network_is_rate_limited_with_slip() {
        let b = TestBinder::new(Behaviour::Accept);
        let s = server(
            &SPEC.replace(
                "[dns.nx_penalty]",
                "[dns.rrl]\nresponses_per_s = 1\nburst = 5\nslip = 2\n[dns.nx_penalty]",
            ),
            b.clone(),
        );
        let m = query("aves.example.", RecordType::SOA);
        let (mut answered, mut slipped, mut silent) = (0u64, 0u64, 0u64);
        for i in 0..100u32 {
            let src = format!("192.0.2.{}", 1 + i % 50);
            match ask(&s, &src, &m).await {
                Some(r) if r.metadata.truncation => {
                    assert!(r.answers.is_empty() && r.authorities.is_empty());
                    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
                    assert_eq!(r.queries.len(), 1, "the question is echoed");
                    slipped += 1;
                }
                Some(r) => {
                    assert_eq!(r.answers.len(), 1);
                    answered += 1;
                }
                None => silent += 1,
            }
        }
        // The test takes far less than a second: the burst and at most one more.
        assert!((5..=6).contains(&answered), "{answered}");
        assert!(slipped.abs_diff(silent) <= 1, "{slipped} vs {silent}");
        let c = s.counters();
        assert_eq!(c.rrl_slipped.load(Ordering::Relaxed), slipped);
        assert_eq!(c.rrl_dropped.load(Ordering::Relaxed), silent);
        // Host queries from the limited network cause no SETUP.
        for _ in 0..10 {
            let r = ask(&s, "192.0.2.9", &query(HOST, RecordType::A)).await;
            assert!(r.is_none_or(|r| r.metadata.truncation));
        }
        assert!(b.seen().is_empty());
        // Another /24: every query answered.
        for i in 0..5 {
            let r = ask(&s, &format!("192.0.3.{i}"), &m).await.unwrap();
            assert!(!r.metadata.truncation);
            assert_eq!(r.answers.len(), 1);
        }
        // TCP from the limited network: answered.
        let src: SocketAddr = "192.0.2.1:5300".parse().unwrap();
        let bytes = s.respond(&m.to_vec().unwrap(), src, Protocol::Tcp).await;
        let r = Message::from_vec(&bytes.unwrap()).unwrap();
        assert_eq!(r.answers.len(), 1);
        assert!(!r.metadata.truncation);
    }

    /// Found by the `dns_handler` fuzz target: hickory echoes the question section as
    /// the query's bytes, so a name compressed in the query (here a pointer to offset
    /// 2, the flags, 0 = the root in the query) pointed at the answer's flags (0x84:
    /// not a label) and the answer did not parse. The question is now encoded afresh.
    #[tokio::test]
    async fn a_question_compressed_into_the_header_is_echoed_spelled_out() {
        let b = TestBinder::new(Behaviour::Accept);
        let s = server(SPEC, b.clone());
        let src: SocketAddr = "10.1.0.5:5300".parse().unwrap();
        // id 0x4242, no flags, one question: "b.home1.aves.example" + pointer to 2.
        let mut q = vec![0x42, 0x42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["b", "home1", "aves", "example"] {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0xc0, 0x02, 0, 1, 0, 1]);
        for protocol in [Protocol::Udp, Protocol::Tcp] {
            let bytes = s.respond(&q, src, protocol).await.unwrap();
            let r = Message::from_vec(&bytes).expect("the answer parses");
            assert_eq!(r.metadata.id, 0x4242);
            assert_eq!(r.queries.len(), 1);
            assert_eq!(r.queries[0].name().to_string(), HOST);
            let got = a_of(&r);
            assert_eq!(got.len(), 1);
            assert_eq!(r.answers[0].name.to_string(), HOST);
        }
        // Out of the zone, pointing at the header: REFUSED, and the answer parses.
        let mut q = vec![0x42, 0x43, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3];
        q.extend_from_slice(b"www");
        q.extend_from_slice(&[0xc0, 0x02, 0, 1, 0, 1]);
        let bytes = s.respond(&q, src, Protocol::Udp).await.unwrap();
        let r = Message::from_vec(&bytes).expect("the answer parses");
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        assert_eq!(r.queries[0].name().to_string(), "www.");
    }
}
