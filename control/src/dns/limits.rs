//! The DNS server's safeguards (AVES paper §6.2): the NXDOMAIN penalty that silences
//! name scanners, the per-responder session rate, and the cap on SETUPs in flight.
//!
//! Sans-IO: every method takes `now`, so tests run on virtual time.
//!
//! Invariants:
//! - Memory is bounded: [`NxPenalty`] tracks at most `max_tracked` queriers (when full,
//!   expired entries are dropped first; queriers that still do not fit are not
//!   counted, so a flood of sources cannot grow the table); [`TokenBuckets`] has one
//!   bucket per configured responder, fixed at start.
//! - A ban lasts exactly `ban` from the NXDOMAIN that crossed the threshold; a querier
//!   is banned only after more than `threshold` NXDOMAIN answers within one `window`.
//! - [`Pending`] never counts more than its capacity; a [`PendingGuard`] gives its slot
//!   back when dropped, whatever path the query took (answer, timeout, cancellation).

use crate::config::{NxPenaltySpec, RateSpec};
use std::collections::HashMap;
use std::net::IpAddr;
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
