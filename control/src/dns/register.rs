//! The DNS server's REGISTER receiver (AVES paper §5.3): gateways report their current
//! public address, and host answers use it from the next query on.
//!
//! [`RegisterService`] is sans-IO (a datagram, its sender and the time in; an
//! [`Outcome`] out); [`serve`] runs it on a UDP socket (`[dns] register_listen`).
//! REGISTER is never answered: the gateway repeats it every interval (`docs/protocol.md`).
//!
//! Invariants:
//! - The zone's address of gateway G changes only for a REGISTER carrying G's id whose
//!   tag verifies (constant time, `auth::verify_tag`) under one of G's own keys
//!   (`[[dns.gateway.key]]`), whose sequence is within the clock window and new in G's
//!   replay window for that (key id, sender). One gateway's key cannot move another
//!   gateway, and a captured REGISTER cannot be replayed (nor one from before a restart).
//! - Every datagram is counted exactly once: accepted, or refused with one reason.
//! - Nothing is sent back, so the receiver cannot reflect or amplify traffic.
//! - State is bounded: one verifier per configured gateway, each with a bounded replay
//!   table (`proto::VerifierConfig::max_peers`).

use super::zone::Zone;
use crate::config::DnsSpec;
use crate::proto::{self, Message, ProtoError, Verifier, VerifierConfig};
use aves_dataplane::auth::Key;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::{debug, info};

/// Why a REGISTER was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Structure, key id, tag, clock or replay window ([`ProtoError`]).
    Proto(ProtoError),
    /// A well-formed message of another type (SETUP, ACCEPT, REJECT).
    UnexpectedType,
    /// The gateway id is not configured, or has no `[[dns.gateway.key]]`.
    UnknownGateway,
    /// Authentic, but the address cannot be a gateway's public address (0.0.0.0,
    /// loopback, multicast, broadcast).
    BadAddress,
}

/// What became of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Authentic: the gateway's address is now `address`.
    Accepted {
        /// The gateway id.
        gateway_id: u32,
        /// Its public address.
        address: Ipv4Addr,
        /// The address differs from the one the zone held.
        changed: bool,
    },
    /// Refused, and counted.
    Refused(Refusal),
}

/// Counters of the receiver, printed at SIGTERM with the other DNS counters.
#[derive(Debug, Default)]
pub struct RegisterCounters {
    /// Authentic REGISTERs.
    pub accepted: AtomicU64,
    /// Authentic REGISTERs that changed a gateway's address.
    pub changed: AtomicU64,
    /// Refused by [`ProtoError`].
    pub refused: [AtomicU64; ProtoError::COUNT],
    /// Refused: another message type.
    pub unexpected_type: AtomicU64,
    /// Refused: unknown gateway id (or one without keys).
    pub unknown_gateway: AtomicU64,
    /// Refused: an address no gateway can have.
    pub bad_address: AtomicU64,
}

impl RegisterCounters {
    /// `(name, value)` of every counter, zeros included, in a stable order.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = vec![
            ("register_accepted".to_string(), g(&self.accepted)),
            ("register_changed".to_string(), g(&self.changed)),
            (
                "register_refused_unknown_gateway".to_string(),
                g(&self.unknown_gateway),
            ),
            (
                "register_refused_unexpected_type".to_string(),
                g(&self.unexpected_type),
            ),
            (
                "register_refused_bad_address".to_string(),
                g(&self.bad_address),
            ),
        ];
        for e in ProtoError::ALL {
            out.push((
                format!("register_refused_{}", e.name()),
                g(&self.refused[e as usize]),
            ));
        }
        out
    }

    fn count(&self, o: &Outcome) {
        let c = match o {
            Outcome::Accepted { changed, .. } => {
                if *changed {
                    self.changed.fetch_add(1, Ordering::Relaxed);
                }
                &self.accepted
            }
            Outcome::Refused(Refusal::Proto(e)) => &self.refused[*e as usize],
            Outcome::Refused(Refusal::UnexpectedType) => &self.unexpected_type,
            Outcome::Refused(Refusal::UnknownGateway) => &self.unknown_gateway,
            Outcome::Refused(Refusal::BadAddress) => &self.bad_address,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Verifies REGISTERs and updates the zone.
#[derive(Debug)]
pub struct RegisterService {
    zone: Arc<Zone>,
    /// Per gateway id with keys: its verifier (its keys, its replay windows).
    gateways: HashMap<u32, Verifier>,
}

impl RegisterService {
    /// A receiver for `spec`'s gateways that updates `zone`, started at `start_us`
    /// (REGISTERs sequenced before it are `stale`).
    pub fn new(
        spec: &DnsSpec,
        zone: Arc<Zone>,
        cfg: VerifierConfig,
        start_us: u64,
    ) -> anyhow::Result<RegisterService> {
        let mut gateways = HashMap::new();
        for (i, g) in spec.gateways.iter().enumerate() {
            if g.keys.is_empty() {
                continue;
            }
            let keys = g
                .keys
                .iter()
                .map(|k| {
                    Key::new(k.id, k.algorithm, &k.secret)
                        .map_err(|e| anyhow::anyhow!("dns.gateway[{i}].key {}: {e:?}", k.id))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            gateways.insert(g.id, Verifier::new(keys, cfg, start_us));
        }
        Ok(RegisterService { zone, gateways })
    }

    /// Handles one datagram from `from` at `now_us` and counts it in `counters`.
    pub fn handle(
        &mut self,
        datagram: &[u8],
        from: IpAddr,
        now_us: u64,
        counters: &RegisterCounters,
    ) -> Outcome {
        let o = self.decide(datagram, from, now_us);
        counters.count(&o);
        o
    }

    fn decide(&mut self, datagram: &[u8], from: IpAddr, now_us: u64) -> Outcome {
        let refuse = Outcome::Refused;
        // Structure first (cheap, no key): it names the gateway whose keys apply.
        let r = match proto::parse(datagram) {
            Err(e) => return refuse(Refusal::Proto(e)),
            Ok((_, Message::Register(r))) => r,
            Ok(_) => return refuse(Refusal::UnexpectedType),
        };
        let Some(verifier) = self.gateways.get_mut(&r.gateway_id) else {
            return refuse(Refusal::UnknownGateway);
        };
        if let Err(e) = verifier.open(datagram, from, now_us) {
            return refuse(Refusal::Proto(e));
        }
        let a = r.address;
        if a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast() {
            return refuse(Refusal::BadAddress);
        }
        let before = self
            .zone
            .gateway_index(r.gateway_id)
            .and_then(|i| self.zone.gateway_address(i));
        if !self.zone.set_gateway_address(r.gateway_id, a) {
            return refuse(Refusal::UnknownGateway);
        }
        Outcome::Accepted {
            gateway_id: r.gateway_id,
            address: a,
            changed: before != Some(a),
        }
    }
}

/// Receives REGISTERs on `socket` until `shutdown` resolves.
pub async fn serve(
    socket: tokio::net::UdpSocket,
    mut service: RegisterService,
    counters: Arc<RegisterCounters>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut buf = [0u8; proto::MAX_LEN + 1];
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            r = socket.recv_from(&mut buf) => {
                let (n, from) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        debug!("REGISTER socket: {e}");
                        continue;
                    }
                };
                let bytes = buf.get(..n).unwrap_or(&[]);
                match service.handle(bytes, from.ip(), crate::setup::now_us(), &counters) {
                    Outcome::Accepted { gateway_id, address, changed: true } => {
                        info!(gateway_id, %address, %from, "DNS: REGISTER: gateway address changed");
                    }
                    Outcome::Accepted { gateway_id, address, .. } => {
                        debug!(gateway_id, %address, %from, "DNS: REGISTER: address confirmed");
                    }
                    Outcome::Refused(why) => debug!(%from, ?why, "DNS: REGISTER refused"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_dns;
    use crate::proto::{seal, Register};
    use aves_dataplane::auth::Algorithm;
    use std::path::Path;

    const NOW: u64 = 1_700_000_000_000_000;

    /// Gateway 1 (address configured) with keys 3 and 4, gateway 2 (unknown address)
    /// with key 3 (another secret), gateway 5 without keys.
    const SPEC: &str = r#"
[dns]
listen = "127.0.0.1:5353"
zone = "aves.example."
register_listen = "127.0.0.1:4799"
[[dns.ns]]
name = "ns1"
address = "192.0.2.53"
[[dns.gateway]]
id = 1
address = "203.0.113.7"
[[dns.gateway.key]]
id = 3
algorithm = "hmac-sha256-128"
secret = "01010101010101010101010101010101"
[[dns.gateway.key]]
id = 4
secret = "04040404040404040404040404040404"
[[dns.gateway]]
id = 2
[[dns.gateway.key]]
id = 3
algorithm = "hmac-sha256-128"
secret = "02020202020202020202020202020202"
[[dns.gateway]]
id = 5
"#;

    fn key(id: u8, alg: Algorithm, byte: u8) -> Key {
        Key::new(id, alg, &[byte; 16]).unwrap()
    }
    fn g1_key() -> Key {
        key(3, Algorithm::HmacSha256_128, 1)
    }
    fn g2_key() -> Key {
        key(3, Algorithm::HmacSha256_128, 2)
    }
    fn from() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(172, 16, 1, 2))
    }
    fn reg(id: u32, a: [u8; 4]) -> Message {
        Message::Register(Register {
            gateway_id: id,
            address: Ipv4Addr::from(a),
            interval_s: 60,
        })
    }

    fn service() -> (RegisterService, Arc<Zone>, RegisterCounters) {
        let spec = parse_dns(Path::new("t.toml"), SPEC).unwrap();
        let zone = Arc::new(Zone::new(&spec));
        let s = RegisterService::new(&spec, zone.clone(), VerifierConfig::default(), NOW - 1000)
            .unwrap();
        (s, zone, RegisterCounters::default())
    }

    fn get(c: &RegisterCounters, name: &str) -> u64 {
        c.snapshot()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no counter {name}"))
    }

    #[test]
    fn an_authentic_register_updates_the_zone() {
        let (mut s, zone, c) = service();
        assert_eq!(zone.gateway_address(1), None, "gateway 2: unknown");
        let m = seal(&reg(2, [198, 51, 100, 77]), &g2_key(), NOW, from());
        assert_eq!(
            s.handle(&m, from(), NOW, &c),
            Outcome::Accepted {
                gateway_id: 2,
                address: Ipv4Addr::new(198, 51, 100, 77),
                changed: true
            }
        );
        assert_eq!(
            zone.gateway_address(1),
            Some(Ipv4Addr::new(198, 51, 100, 77))
        );
        // The same address again (the periodic REGISTER): accepted, not a change.
        let m = seal(&reg(2, [198, 51, 100, 77]), &g2_key(), NOW + 1, from());
        assert!(matches!(
            s.handle(&m, from(), NOW, &c),
            Outcome::Accepted { changed: false, .. }
        ));
        // Gateway 1's second key (MD5) works too; its configured address is replaced.
        let m = seal(
            &reg(1, [192, 0, 2, 3]),
            &key(4, Algorithm::HmacMd5, 4),
            NOW + 2,
            from(),
        );
        assert!(matches!(
            s.handle(&m, from(), NOW, &c),
            Outcome::Accepted { changed: true, .. }
        ));
        assert_eq!(zone.gateway_address(0), Some(Ipv4Addr::new(192, 0, 2, 3)));
        assert_eq!(get(&c, "register_accepted"), 3);
        assert_eq!(get(&c, "register_changed"), 2);
        // The DNS server's /metrics shows the same (aves_dns_register*, gateways known).
        let dns = crate::dns::handler::DnsCounters::new(crate::dns::limits::Pending::new(4));
        let reg = crate::dns::metrics::Registration {
            zone: &zone,
            counters: Some(&c),
        };
        let text = crate::dns::metrics::render(&dns, 0.0, Some(reg)).unwrap();
        for line in [
            "aves_dns_registers_total{result=\"accepted\"} 3",
            "aves_dns_registers_total{result=\"refused_bad_tag\"} 0",
            "aves_dns_register_changes_total 2",
            "aves_dns_gateway_address_known{gateway=\"1\"} 1",
            "aves_dns_gateway_address_known{gateway=\"2\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn forged_replayed_stale_and_foreign_registers_are_refused_and_counted() {
        let (mut s, zone, c) = service();
        let was = zone.gateway_address(0);
        let refused =
            |s: &mut RegisterService, m: &[u8], from: IpAddr| match s.handle(m, from, NOW, &c) {
                Outcome::Refused(r) => r,
                o => panic!("accepted: {o:?}"),
            };
        let good = seal(&reg(1, [192, 0, 2, 9]), &g1_key(), NOW, from());
        // Forged: one changed address byte (the tag no longer matches).
        let mut forged = good.clone();
        forged[19] ^= 1;
        assert_eq!(
            refused(&mut s, &forged, from()),
            Refusal::Proto(ProtoError::BadTag)
        );
        // Signed with another gateway's key under the same key id: bad tag.
        let other = seal(&reg(1, [192, 0, 2, 9]), &g2_key(), NOW, from());
        assert_eq!(
            refused(&mut s, &other, from()),
            Refusal::Proto(ProtoError::BadTag)
        );
        // From another address than the one it was sealed for: bad tag.
        let elsewhere = IpAddr::V4(Ipv4Addr::new(172, 16, 1, 99));
        assert_eq!(
            refused(&mut s, &good, elsewhere),
            Refusal::Proto(ProtoError::BadTag)
        );
        // A key id gateway 1 does not have (retired or never configured).
        let retired = seal(
            &reg(1, [192, 0, 2, 9]),
            &key(7, Algorithm::HmacMd5, 1),
            NOW,
            from(),
        );
        assert_eq!(
            refused(&mut s, &retired, from()),
            Refusal::Proto(ProtoError::UnknownKey)
        );
        // Stale: from before the receiver started, or beyond the clock window.
        for seq in [NOW - 2000, NOW + 31_000_000] {
            let m = seal(&reg(1, [192, 0, 2, 9]), &g1_key(), seq, from());
            assert_eq!(
                refused(&mut s, &m, from()),
                Refusal::Proto(ProtoError::Stale)
            );
        }
        // Unknown gateway ids, and a gateway without keys.
        for id in [9, 5] {
            let m = seal(&reg(id, [192, 0, 2, 9]), &g1_key(), NOW, from());
            assert_eq!(refused(&mut s, &m, from()), Refusal::UnknownGateway);
        }
        // Another message type; junk.
        let accept = seal(
            &Message::Accept {
                serial: 1,
                waypoint: Ipv4Addr::new(203, 0, 113, 100),
            },
            &g1_key(),
            NOW,
            from(),
        );
        assert_eq!(refused(&mut s, &accept, from()), Refusal::UnexpectedType);
        assert_eq!(
            refused(&mut s, b"AVES?", from()),
            Refusal::Proto(ProtoError::BadLength)
        );
        // An authentic REGISTER for 0.0.0.0.
        let zero = seal(&reg(1, [0, 0, 0, 0]), &g1_key(), NOW + 5, from());
        assert_eq!(refused(&mut s, &zero, from()), Refusal::BadAddress);
        assert_eq!(zone.gateway_address(0), was, "nothing moved the gateway");
        // The good one is accepted once; its replay is refused.
        assert!(matches!(
            s.handle(&good, from(), NOW, &c),
            Outcome::Accepted { .. }
        ));
        assert_eq!(
            refused(&mut s, &good, from()),
            Refusal::Proto(ProtoError::Replay)
        );
        assert_eq!(zone.gateway_address(0), Some(Ipv4Addr::new(192, 0, 2, 9)));
        for (name, want) in [
            ("register_accepted", 1),
            ("register_refused_bad_tag", 3),
            ("register_refused_unknown_key", 1),
            ("register_refused_stale", 2),
            ("register_refused_unknown_gateway", 2),
            ("register_refused_unexpected_type", 1),
            ("register_refused_bad_length", 1),
            ("register_refused_bad_address", 1),
            ("register_refused_replay", 1),
        ] {
            assert_eq!(get(&c, name), want, "{name}");
        }
        let total: u64 = c
            .snapshot()
            .iter()
            .filter(|(n, _)| n != "register_changed")
            .map(|(_, v)| v)
            .sum();
        assert_eq!(total, 13, "every datagram counted once");
    }

    #[tokio::test]
    async fn serve_receives_over_udp() {
        let (s, zone, _) = service();
        let counters = Arc::new(RegisterCounters::default());
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = sock.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(sock, s, counters.clone(), async move {
            let _ = stop_rx.await;
        }));
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let now = crate::setup::now_us();
        let m = seal(
            &reg(2, [198, 51, 100, 5]),
            &g2_key(),
            now,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        );
        client.send_to(&m, to).unwrap();
        for _ in 0..200 {
            if zone.gateway_address(1).is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(
            zone.gateway_address(1),
            Some(Ipv4Addr::new(198, 51, 100, 5))
        );
        assert_eq!(counters.accepted.load(Ordering::Relaxed), 1);
        stop_tx.send(()).unwrap();
        task.await.unwrap();
    }
}
