//! The DNS server's safeguards (AVES paper §6.2): the NXDOMAIN penalty that silences
//! name scanners, the per-responder session rate, the cap on SETUPs in flight, and
//! response rate limiting per client network with slip ([`ResponseRateLimit`], after
//! BIND's RRL).
//!
//! Sans-IO: every method takes `now`, so tests run on virtual time.
//!
//! Invariants:
//! - Memory is bounded: [`NxPenalty`] tracks at most `max_tracked` queriers (when full,
//!   expired entries are dropped first; queriers that still do not fit are not
//!   counted, so a flood of sources cannot grow the table); [`TokenBuckets`] has one
//!   bucket per configured responder, fixed at start; [`ResponseRateLimit`] tracks at
//!   most `max_tracked` client networks, allocated at start (when full, the oldest
//!   tracked network is forgotten, so a flood of sources cannot grow it either).
//! - A ban lasts exactly `ban` from the NXDOMAIN that crossed the threshold; a querier
//!   is banned only after more than `threshold` NXDOMAIN answers within one `window`.
//! - [`Pending`] never counts more than its capacity; a [`PendingGuard`] gives its slot
//!   back when dropped, whatever path the query took (answer, timeout, cancellation).

use crate::config::{NxPenaltySpec, RateSpec, RrlSpec};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct NxEntry {
    window_start: Instant,
    count: u32,
    banned_until: Option<Instant>,
}

/// Counts NXDOMAIN answers per querier and bans the ones that scan.
///
/// Keyed by the querier's address (the source of the packets), not by an ECS prefix,
/// which the querier chooses freely. In general mode that is a recursive resolver, so a
/// scanner behind a shared resolver silences the resolver: the paper's choice (§6.2),
/// and the reason the default threshold is generous.
#[derive(Debug)]
pub struct NxPenalty {
    spec: NxPenaltySpec,
    queriers: HashMap<IpAddr, NxEntry>,
}

impl NxPenalty {
    /// An empty table.
    pub fn new(spec: NxPenaltySpec) -> Self {
        NxPenalty {
            spec,
            queriers: HashMap::new(),
        }
    }

    /// True while `querier` is banned: it gets no answer at all.
    pub fn is_banned(&self, querier: IpAddr, now: Instant) -> bool {
        self.queriers
            .get(&querier)
            .and_then(|e| e.banned_until)
            .is_some_and(|until| now < until)
    }

    /// Records one NXDOMAIN answer to `querier`; true when this one starts a ban.
    pub fn record_nx(&mut self, querier: IpAddr, now: Instant) -> bool {
        if !self.queriers.contains_key(&querier) && self.queriers.len() >= self.spec.max_tracked {
            self.expire(now);
            if self.queriers.len() >= self.spec.max_tracked {
                return false;
            }
        }
        let e = self.queriers.entry(querier).or_insert(NxEntry {
            window_start: now,
            count: 0,
            banned_until: None,
        });
        if e.banned_until.is_some_and(|until| now < until) {
            return false;
        }
        if now.saturating_duration_since(e.window_start) >= self.spec.window {
            e.window_start = now;
            e.count = 0;
            e.banned_until = None;
        }
        e.count = e.count.saturating_add(1);
        if e.count > self.spec.threshold {
            e.banned_until = Some(now + self.spec.ban);
            e.count = 0;
            e.window_start = now;
            return true;
        }
        false
    }

    /// Queriers tracked now.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.queriers.len()
    }

    /// Drops entries whose window and ban are both over.
    fn expire(&mut self, now: Instant) {
        let window = self.spec.window;
        self.queriers.retain(|_, e| {
            e.banned_until.is_some_and(|until| now < until)
                || now.saturating_duration_since(e.window_start) < window
        });
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// One token bucket per responder: sessions created per second (§6.2: "limits the peak
/// rate at which sessions can be opened to each responder").
#[derive(Debug)]
pub struct TokenBuckets {
    rate: f64,
    burst: f64,
    buckets: Vec<Bucket>,
}

impl TokenBuckets {
    /// `n` full buckets.
    pub fn new(spec: RateSpec, n: usize, now: Instant) -> Self {
        let burst = f64::from(spec.burst);
        TokenBuckets {
            rate: f64::from(spec.sessions_per_s),
            burst,
            buckets: vec![
                Bucket {
                    tokens: burst,
                    last: now,
                };
                n
            ],
        }
    }

    /// Takes a token from bucket `i`; false when it is empty (or `i` is out of range).
    pub fn take(&mut self, i: usize, now: Instant) -> bool {
        let (rate, burst) = (self.rate, self.burst);
        let Some(b) = self.buckets.get_mut(i) else {
            return false;
        };
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.last = now.max(b.last);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What to do with an answer to a UDP query under response rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RrlVerdict {
    /// Within the rate: send the answer.
    Answer,
    /// Over the rate, and this one slips: send an empty truncated answer (TC=1), so a
    /// real client retries over TCP, which is not rate limited.
    Slip,
    /// Over the rate: send nothing.
    Drop,
}

#[derive(Debug, Clone, Copy)]
struct RrlEntry {
    tokens: f64,
    last: Instant,
    /// Limited answers so far (for the slip count).
    limited: u32,
}

/// Response rate limiting (after BIND's RRL): one token bucket per client network
/// (IPv4 /`ipv4_prefix`, IPv6 /`ipv6_prefix`, of the packets' source) bounds the
/// answers sent over UDP; over the rate, every `slip`-th answer goes out as an empty
/// truncated answer and the others are dropped.
///
/// It blunts the server as a reflector (answers to spoofed sources are bounded per
/// victim network) and bounds the work one network can cause. A real client behind a
/// limited network loses at most a retry: the slipped TC answer sends it to TCP.
/// The table holds at most `max_tracked` networks and never allocates after
/// [`ResponseRateLimit::new`]; when full, the network tracked longest is forgotten (it
/// starts again with a full bucket: with a table much larger than the number of
/// networks that send at once, only a flood from more networks than that evicts an
/// active one).
#[derive(Debug)]
pub struct ResponseRateLimit {
    rate: f64,
    burst: f64,
    slip: u32,
    v4_mask: u32,
    v6_mask: u128,
    max_tracked: usize,
    table: HashMap<IpAddr, RrlEntry>,
    /// Tracked networks, oldest first.
    order: VecDeque<IpAddr>,
    /// Networks never limited (`[dns.rrl] exempt`).
    exempt: Vec<aves_dataplane::addr::Ipv4Cidr>,
}

impl ResponseRateLimit {
    /// An empty table for `spec` (its memory is allocated here, all of it).
    pub fn new(spec: RrlSpec) -> Self {
        let mask = |bits: u8, width: u32| -> u128 {
            let bits = u32::from(bits).min(width);
            if bits == 0 {
                0
            } else {
                (u128::MAX << (128 - bits)) >> (128 - width)
            }
        };
        ResponseRateLimit {
            rate: f64::from(spec.responses_per_s),
            burst: f64::from(spec.burst),
            slip: spec.slip,
            v4_mask: mask(spec.ipv4_prefix, 32) as u32,
            v6_mask: mask(spec.ipv6_prefix, 128),
            max_tracked: spec.max_tracked,
            table: HashMap::with_capacity(spec.max_tracked),
            order: VecDeque::with_capacity(spec.max_tracked),
            exempt: spec.exempt,
        }
    }

    /// The network `client` is counted in (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn network(&self, client: IpAddr) -> IpAddr {
        let v4 = match client {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(a) => a.to_ipv4_mapped(),
        };
        match (v4, client) {
            (Some(a), _) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & self.v4_mask)),
            (None, IpAddr::V6(a)) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & self.v6_mask)),
            (None, IpAddr::V4(a)) => IpAddr::V4(a),
        }
    }

    /// Counts one answer to `client` at `now` and says what to do with it.
    pub fn check(&mut self, client: IpAddr, now: Instant) -> RrlVerdict {
        let v4 = match client {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(a) => a.to_ipv4_mapped(),
        };
        if v4.is_some_and(|a| self.exempt.iter().any(|c| c.contains(a))) {
            return RrlVerdict::Answer;
        }
        let net = self.network(client);
        if !self.table.contains_key(&net) {
            if self.table.len() >= self.max_tracked {
                if let Some(old) = self.order.pop_front() {
                    self.table.remove(&old);
                }
            }
            if self.table.len() >= self.max_tracked {
                // max_tracked is at least 1 (config), so this is not reached; answer
                // rather than grow.
                return RrlVerdict::Answer;
            }
            self.order.push_back(net);
            self.table.insert(
                net,
                RrlEntry {
                    tokens: self.burst,
                    last: now,
                    limited: 0,
                },
            );
        }
        let (rate, burst, slip) = (self.rate, self.burst, self.slip);
        let Some(e) = self.table.get_mut(&net) else {
            return RrlVerdict::Answer;
        };
        let elapsed = now.saturating_duration_since(e.last).as_secs_f64();
        e.tokens = (e.tokens + elapsed * rate).min(burst);
        e.last = now.max(e.last);
        if e.tokens >= 1.0 {
            e.tokens -= 1.0;
            return RrlVerdict::Answer;
        }
        e.limited = e.limited.wrapping_add(1);
        if slip > 0 && e.limited % slip == 0 {
            RrlVerdict::Slip
        } else {
            RrlVerdict::Drop
        }
    }

    /// Networks tracked now.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.table.len()
    }
}

/// A cap on SETUPs in flight (§6.2: hard limits on resource use during a flood).
#[derive(Debug, Clone)]
pub struct Pending {
    in_flight: Arc<AtomicUsize>,
    capacity: usize,
}

/// A slot of [`Pending`], given back on drop.
#[derive(Debug)]
pub struct PendingGuard {
    in_flight: Arc<AtomicUsize>,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Pending {
    /// A cap of `capacity` slots.
    pub fn new(capacity: usize) -> Self {
        Pending {
            in_flight: Arc::new(AtomicUsize::new(0)),
            capacity,
        }
    }

    /// A slot, or `None` when all are taken.
    pub fn try_acquire(&self) -> Option<PendingGuard> {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .ok()
            .map(|_| PendingGuard {
                in_flight: self.in_flight.clone(),
            })
    }

    /// Slots taken now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Slots in all.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn nx(threshold: u32, window: u64, ban: u64, max: usize) -> NxPenalty {
        NxPenalty::new(NxPenaltySpec {
            threshold,
            window: secs(window),
            ban: secs(ban),
            max_tracked: max,
        })
    }

    #[test]
    fn scanner_is_banned_after_threshold_and_released_after_ban() {
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let mut p = nx(3, 10, 60, 100);
        for i in 0..3 {
            assert!(!p.record_nx(a, t0 + secs(i)), "{i} within threshold");
            assert!(!p.is_banned(a, t0 + secs(i)));
        }
        assert!(p.record_nx(a, t0 + secs(3)), "the 4th in the window bans");
        assert!(p.is_banned(a, t0 + secs(3)));
        assert!(!p.is_banned(b, t0 + secs(3)), "only the scanner");
        assert!(p.is_banned(a, t0 + secs(62)));
        assert!(!p.is_banned(a, t0 + secs(63)), "ban is 60 s from the 4th");
        // After the ban the count starts again.
        for i in 0..3 {
            assert!(!p.record_nx(a, t0 + secs(64 + i)));
        }
        assert!(p.record_nx(a, t0 + secs(67)));
    }

    #[test]
    fn slow_misses_never_ban() {
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mut p = nx(3, 10, 60, 100);
        for i in 0..100 {
            // 3 per 10 s window: never more than the threshold in one window.
            assert!(!p.record_nx(a, t0 + Duration::from_millis(i * 3400)));
        }
        assert!(!p.is_banned(a, t0 + secs(340)));
    }

    #[test]
    fn table_is_bounded_and_expired_entries_make_room() {
        let t0 = Instant::now();
        let mut p = nx(1, 10, 60, 4);
        for i in 0..4u8 {
            p.record_nx(IpAddr::from([10, 0, 0, i]), t0);
        }
        assert_eq!(p.tracked(), 4);
        // Full: a fifth querier is not counted (and so never banned) ...
        let e: IpAddr = "10.0.0.9".parse().unwrap();
        for _ in 0..5 {
            assert!(!p.record_nx(e, t0 + secs(1)));
        }
        assert_eq!(p.tracked(), 4);
        assert!(!p.is_banned(e, t0 + secs(1)));
        // ... until the others' windows are over.
        p.record_nx(e, t0 + secs(11));
        assert_eq!(p.tracked(), 1);
        assert!(
            p.record_nx(e, t0 + secs(11)),
            "counted now: 2 > threshold 1"
        );
    }

    #[test]
    fn token_bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBuckets::new(
            RateSpec {
                sessions_per_s: 2,
                burst: 4,
            },
            2,
            t0,
        );
        for _ in 0..4 {
            assert!(b.take(0, t0));
        }
        assert!(!b.take(0, t0), "burst spent");
        assert!(b.take(1, t0), "other responders have their own bucket");
        assert!(!b.take(0, t0 + Duration::from_millis(400)));
        assert!(
            b.take(0, t0 + Duration::from_millis(500)),
            "2/s refills one in 0.5 s"
        );
        assert!(!b.take(0, t0 + Duration::from_millis(500)));
        // A long idle period refills to the burst, not beyond.
        let later = t0 + secs(100);
        for _ in 0..4 {
            assert!(b.take(0, later));
        }
        assert!(!b.take(0, later));
        assert!(!b.take(7, later), "unknown responder index");
    }

    fn rrl(rate: u32, burst: u32, slip: u32, max: usize) -> ResponseRateLimit {
        ResponseRateLimit::new(RrlSpec {
            responses_per_s: rate,
            burst,
            slip,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            max_tracked: max,
            exempt: Vec::new(),
        })
    }

    #[test]
    fn rrl_exempt_networks_are_never_limited() {
        let mut r = ResponseRateLimit::new(RrlSpec {
            exempt: vec!["192.0.2.53/32".parse().unwrap()],
            ..rrl_spec(1, 1, 2, 10)
        });
        let t = Instant::now();
        let resolver: IpAddr = "192.0.2.53".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.53".parse().unwrap();
        for _ in 0..1000 {
            assert_eq!(r.check(resolver, t), RrlVerdict::Answer);
            assert_eq!(r.check(mapped, t), RrlVerdict::Answer);
        }
        // Its /24 neighbours are not exempt.
        let other: IpAddr = "192.0.2.54".parse().unwrap();
        assert_eq!(r.check(other, t), RrlVerdict::Answer);
        assert_ne!(r.check(other, t), RrlVerdict::Answer);
    }

    fn rrl_spec(rate: u32, burst: u32, slip: u32, max: usize) -> RrlSpec {
        RrlSpec {
            responses_per_s: rate,
            burst,
            slip,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            max_tracked: max,
            exempt: Vec::new(),
        }
    }

    #[test]
    fn rrl_limits_a_network_and_slips_every_nth() {
        let t0 = Instant::now();
        let mut r = rrl(10, 20, 2, 100);
        let ip = |h: u8| IpAddr::from([192, 0, 2, h]);
        let (mut answered, mut slipped, mut dropped) = (0u32, 0u32, 0u32);
        // 1000 answers within one second from ten addresses of 192.0.2.0/24.
        for i in 0..1000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 1000);
            match r.check(ip((i % 10) as u8), now) {
                RrlVerdict::Answer => answered += 1,
                RrlVerdict::Slip => slipped += 1,
                RrlVerdict::Drop => dropped += 1,
            }
        }
        // The burst (20) and ~10/s over one second; half the rest slips.
        assert!((29..=31).contains(&answered), "{answered}");
        assert_eq!(slipped + dropped, 1000 - answered);
        assert!(slipped.abs_diff(dropped) <= 1, "{slipped} {dropped}");
        assert_eq!(r.tracked(), 1, "one /24");
        // Another /24 is not affected.
        assert_eq!(
            r.check(IpAddr::from([192, 0, 3, 1]), t0 + secs(1)),
            RrlVerdict::Answer
        );
        // The limited network recovers at the rate.
        let later = t0 + secs(10);
        for _ in 0..20 {
            assert_eq!(r.check(ip(1), later), RrlVerdict::Answer);
        }
        assert_ne!(r.check(ip(1), later), RrlVerdict::Answer);
    }

    #[test]
    fn rrl_slip_0_drops_all_and_slip_1_slips_all() {
        let t0 = Instant::now();
        let a = IpAddr::from([198, 51, 100, 7]);
        for (slip, want) in [(0, RrlVerdict::Drop), (1, RrlVerdict::Slip)] {
            let mut r = rrl(1, 1, slip, 10);
            assert_eq!(r.check(a, t0), RrlVerdict::Answer);
            for _ in 0..10 {
                assert_eq!(r.check(a, t0), want, "slip {slip}");
            }
        }
    }

    #[test]
    fn rrl_networks_by_prefix() {
        let r = rrl(1, 1, 2, 10);
        let n = |s: &str| r.network(s.parse().unwrap()).to_string();
        assert_eq!(n("192.0.2.200"), "192.0.2.0");
        assert_eq!(n("::ffff:192.0.2.200"), "192.0.2.0");
        assert_eq!(n("2001:db8:1:2ff:1::9"), "2001:db8:1:200::");
        let r = ResponseRateLimit::new(RrlSpec {
            responses_per_s: 1,
            burst: 1,
            slip: 2,
            ipv4_prefix: 32,
            ipv6_prefix: 128,
            max_tracked: 1,
            exempt: Vec::new(),
        });
        assert_eq!(
            r.network("192.0.2.200".parse().unwrap()).to_string(),
            "192.0.2.200"
        );
        assert_eq!(
            r.network("2001:db8::9".parse().unwrap()).to_string(),
            "2001:db8::9"
        );
    }

    #[test]
    fn rrl_table_is_bounded_and_forgets_the_oldest() {
        let t0 = Instant::now();
        let mut r = rrl(1, 1, 0, 4);
        let net = |i: u32| IpAddr::V4(Ipv4Addr::from((10 << 24) | (i << 8) | 1));
        // Network 0 spends its bucket.
        assert_eq!(r.check(net(0), t0), RrlVerdict::Answer);
        assert_eq!(r.check(net(0), t0), RrlVerdict::Drop);
        let cap = r.table.capacity();
        // A flood from 10,000 networks: the table stays at 4 and never reallocates.
        for i in 1..10_000 {
            assert_eq!(r.check(net(i), t0), RrlVerdict::Answer, "{i}: first answer");
            assert!(r.tracked() <= 4);
        }
        assert_eq!(r.table.capacity(), cap);
        assert_eq!(r.order.len(), 4);
        // Network 0 was evicted long ago: a full bucket again.
        assert_eq!(r.check(net(0), t0), RrlVerdict::Answer);
        // The newest networks are still tracked (and limited).
        assert_eq!(r.check(net(9_999), t0), RrlVerdict::Drop);
    }

    #[test]
    fn pending_caps_and_releases() {
        let p = Pending::new(2);
        let g1 = p.try_acquire().unwrap();
        let g2 = p.try_acquire().unwrap();
        assert!(p.try_acquire().is_none());
        assert_eq!(p.in_flight(), 2);
        drop(g1);
        let g3 = p.try_acquire().unwrap();
        drop((g2, g3));
        assert_eq!(p.in_flight(), 0);
    }
}
