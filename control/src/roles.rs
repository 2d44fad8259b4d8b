//! Turns the validated config into the dataplane's role configs.

use crate::config::{Config, KeySpec};
use anyhow::{anyhow, Context, Result};
use aves_dataplane::auth::{Key, Keyring};
use aves_dataplane::pipeline::flow::{Timeouts, SECOND_NS};
use aves_dataplane::pipeline::gateway::GatewayConfig;
use aves_dataplane::pipeline::router::RouterConfig;
use aves_dataplane::pipeline::waypoint::{DelayedTimers, GatewayKeys, WaypointConfig};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::Ipv4Addr;

/// A per-process random seed for table hashing (std's RandomState is seeded from the OS).
pub fn seed() -> u64 {
    RandomState::new().hash_one(0x5eed_u64)
}

/// A keyring from keys in file order: the last one signs, the one before stays valid.
fn keyring<'a>(keys: impl Iterator<Item = &'a KeySpec>) -> Result<Keyring> {
    let mut ring: Option<Keyring> = None;
    for k in keys {
        let key =
            Key::new(k.id, k.algorithm, &k.secret).map_err(|e| anyhow!("key {}: {e:?}", k.id))?;
        match &mut ring {
            None => ring = Some(Keyring::new(key)),
            Some(r) => r.rotate(key).map_err(|e| anyhow!("key {}: {e:?}", k.id))?,
        }
    }
    ring.context("no keys")
}

/// The waypoint role's config.
pub fn waypoint_config(cfg: &Config, router: RouterConfig) -> Result<WaypointConfig> {
    let mut gateways: Vec<Ipv4Addr> = cfg.tunnel.keys.iter().filter_map(|k| k.gateway).collect();
    gateways.sort();
    gateways.dedup();
    let gateways = gateways
        .into_iter()
        .map(|g| {
            Ok(GatewayKeys {
                address: g,
                keys: keyring(cfg.tunnel.keys.iter().filter(|k| k.gateway == Some(g)))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(WaypointConfig {
        router,
        gateways,
        bindings: cfg.bindings.clone(),
        binding_capacity: cfg.limits.bindings,
        connection_capacity: cfg.limits.connections,
        tunnel_port: cfg.tunnel.udp_port,
        headers_only: cfg.tunnel.headers_only,
        timeouts: cfg.timeouts,
        seed: seed(),
        delayed: DelayedTimers {
            reject_ns: cfg.delayed_binding.reject_s * SECOND_NS,
            reject_unknown_ns: cfg.delayed_binding.reject_unknown_s * SECOND_NS,
        },
        wait_capacity: cfg.limits.waits,
        reject_capacity: cfg.limits.rejects,
    })
}

/// The gateway role's config for lcore `index` of `count`.
pub fn gateway_config(
    cfg: &Config,
    router: RouterConfig,
    index: usize,
    count: usize,
) -> Result<GatewayConfig> {
    let g = cfg.gateway.context("[gateway] missing")?;
    Ok(GatewayConfig {
        router,
        public_port: g.public,
        private_port: g.private,
        keys: keyring(cfg.tunnel.keys.iter())?,
        tunnel_port: cfg.tunnel.udp_port,
        flow_capacity: cfg.limits.flows,
        nat_ports: g.nat_ports,
        timeouts: cfg.timeouts,
        nat_timeouts: Timeouts::nat44(),
        reassembly_contexts: cfg.limits.reassembly_contexts,
        reassembly_fragments: cfg.limits.reassembly_fragments,
        reassembly_bytes: cfg.limits.reassembly_bytes,
        reassembly_timeout_ns: cfg.limits.reassembly_timeout_ms * 1_000_000,
        seed: seed(),
        lcore_index: index,
        lcore_count: count,
    })
}
