//! The TOML configuration: parsing, validation and the typed result.
//!
//! Loading is two passes. `serde` reads the file into [`RawConfig`] (plain strings and
//! numbers; unknown keys are errors, with line and column). [`RawConfig::validate`] then
//! turns it into a [`Config`], checking every value and naming the key of the first bad
//! one as `port[1].addresses[0]`. Every error carries the file name. Nothing here
//! panics on any input; `aves check-config` prints the error and exits non-zero.
//!
//! The keys are documented in `docs/configuration.md`; keep the two in step.

use aves_dataplane::addr::{Ipv4Cidr, Ipv4Range, MacAddr};
use aves_dataplane::auth::{Algorithm, MAX_SECRET_LEN, MIN_SECRET_LEN};
use aves_dataplane::command::{Binding, Mode, Route};
use aves_dataplane::pipeline::flow::{Timeouts, SECOND_NS};
use aves_dataplane::pipeline::tunnel::AVES_UDP_PORT;
use serde::Deserialize;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

/// A configuration error: the file, the key (dotted path, empty for whole-file errors)
/// and what was wrong or expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the error is in.
    pub file: PathBuf,
    /// The key, e.g. `port[0].addresses[1]`.
    pub key: String,
    /// What is wrong, and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Which role the engine plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Plain IPv4 router.
    Router,
    /// AVES waypoint: pools of waypoint addresses, bindings, tunnel to gateways.
    Waypoint,
    /// AVES-aware NAT gateway: public + private port.
    Gateway,
}

/// A tunnel key from the config. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// Key id (carried in every tunnel packet).
    pub id: u8,
    /// HMAC algorithm.
    pub algorithm: Algorithm,
    /// The secret, 16..=64 bytes.
    pub secret: Vec<u8>,
    /// Waypoint role: the gateway this key signs for.
    pub gateway: Option<Ipv4Addr>,
}

impl fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySpec")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .field("gateway", &self.gateway)
            .finish()
    }
}

/// The `[tunnel]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelSpec {
    /// UDP port of the tunnel at the gateways.
    pub udp_port: u16,
    /// Authenticate headers only (AVES paper §5.4).
    pub headers_only: bool,
    /// Keys, in file order (per gateway, the last one signs).
    pub keys: Vec<KeySpec>,
}

/// The `[gateway]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewaySpec {
    /// Public port index.
    pub public: u16,
    /// Private port index.
    pub private: u16,
    /// Ports for multi-homing and NAT44, inclusive.
    pub nat_ports: (u16, u16),
}

/// What an lcore does when a poll returns nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Poll without pause (dedicated cores; bare metal).
    Busy,
    /// After `after_empty_polls` consecutive empty polls, sleep; the sleep starts at
    /// 1 µs and doubles up to `max_sleep_us` while the port stays idle.
    Sleep {
        /// Empty polls before the first sleep.
        after_empty_polls: u32,
        /// Longest sleep, µs.
        max_sleep_us: u32,
    },
}

/// One DPDK port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// Our name for the port (used by routes and the CLI).
    pub name: String,
    /// A PCI address (`0000:01:00.0`) or a virtual device spec (`net_tap0,iface=x`).
    pub device: String,
    /// Interface addresses.
    pub addresses: Vec<Ipv4Cidr>,
    /// Extra owned address ranges (answered to ARP and ping).
    pub pools: Vec<Ipv4Range>,
    /// IP MTU.
    pub mtu: u16,
    /// RX descriptors per queue.
    pub rx_desc: u16,
    /// TX descriptors per queue.
    pub tx_desc: u16,
    /// Put the NIC in promiscuous mode.
    pub promiscuous: bool,
}

impl PortSpec {
    /// True when `device` names a virtual device (`net_*`), false for a PCI address.
    pub fn is_vdev(&self) -> bool {
        self.device.starts_with("net_")
    }
    /// The DPDK device name: the vdev name before the first comma, or the PCI address.
    pub fn dpdk_name(&self) -> &str {
        self.device.split(',').next().unwrap_or(&self.device)
    }
}

/// A static neighbour from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighbourSpec {
    /// Port index.
    pub port: u16,
    /// Address.
    pub ip: Ipv4Addr,
    /// MAC.
    pub mac: MacAddr,
}

/// Table capacities and timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Route table capacity.
    pub routes: usize,
    /// Neighbour table capacity.
    pub neighbours: usize,
    /// Packets that may wait for ARP, per lcore.
    pub pending: usize,
    /// Learned neighbour lifetime, seconds.
    pub neighbour_ttl_s: u64,
    /// Waypoint bindings per lcore.
    pub bindings: usize,
    /// Waypoint TCP connections tracked per lcore.
    pub connections: usize,
    /// Gateway connection/NAT entries per lcore.
    pub flows: usize,
    /// Gateway reassembly: datagrams in progress per lcore.
    pub reassembly_contexts: usize,
    /// Gateway reassembly: fragments per datagram.
    pub reassembly_fragments: usize,
    /// Gateway reassembly: bytes held per lcore.
    pub reassembly_bytes: usize,
    /// Gateway reassembly timeout, ms.
    pub reassembly_timeout_ms: u64,
    /// Waypoint addresses in a delayed-binding wait state at once, per lcore.
    pub waits: usize,
    /// Rejected sources remembered per lcore (delayed binding).
    pub rejects: usize,
}

/// Delayed binding (`[delayed_binding]`, AVES paper §3.3.2, §5.2, §6.2), seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelayedBindingSpec {
    /// Serve SETUPs that need delayed binding (general mode, client subnets).
    pub enabled: bool,
    /// Twait.
    pub wait_s: u64,
    /// Treject: violators are rejected this long after the wait.
    pub reject_s: u64,
    /// Sources without state are rejected this long (0: never).
    pub reject_unknown_s: u64,
}

/// The control protocol settings of `[control]` (docs/protocol.md, "Control messages").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlSpec {
    /// UDP address the waypoint's SETUP service listens on (and signs replies with).
    pub listen: Option<SocketAddrV4>,
    /// Keys of the DNS servers, by id.
    pub keys: Vec<KeySpec>,
    /// Clock window for message sequences, seconds.
    pub max_skew_s: u64,
    /// Replay window per (key, sender), messages.
    pub replay_window: usize,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    /// The role.
    pub role: Role,
    /// EAL arguments (without the program name), before any from the command line.
    pub eal_args: Vec<String>,
    /// Mbufs in the pool.
    pub mbufs: u32,
    /// Per-lcore mempool cache.
    pub mbuf_cache: u32,
    /// Packet bytes per mbuf (after the 128-byte headroom): the largest frame or
    /// reassembled datagram a buffer holds.
    pub mbuf_data_room: u16,
    /// Idle behaviour of the lcores.
    pub idle: IdlePolicy,
    /// Control socket path.
    pub control_socket: PathBuf,
    /// CPU to pin the control thread to; `None` chooses one the lcores do not use.
    pub control_cpu: Option<usize>,
    /// Ports, in DPDK port-id order of our own (index = our port number).
    pub ports: Vec<PortSpec>,
    /// Static routes.
    pub routes: Vec<Route>,
    /// Static neighbours.
    pub neighbours: Vec<NeighbourSpec>,
    /// Capacities and timers.
    pub limits: Limits,
    /// Tunnel settings and keys (waypoint, gateway).
    pub tunnel: TunnelSpec,
    /// Pinned bindings (waypoint).
    pub bindings: Vec<Binding>,
    /// Gateway ports (gateway).
    pub gateway: Option<GatewaySpec>,
    /// Protocol timeouts (AVES §5.2 defaults).
    pub timeouts: Timeouts,
    /// The control protocol (SETUP service) settings.
    pub control: ControlSpec,
    /// Delayed binding timers (waypoint).
    pub delayed_binding: DelayedBindingSpec,
}

// ---- raw, as serde reads it ----

/// The file as read, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    engine: RawEngine,
    #[serde(default)]
    control: RawControl,
    #[serde(default, rename = "port")]
    ports: Vec<RawPort>,
    #[serde(default, rename = "route")]
    routes: Vec<RawRoute>,
    #[serde(default, rename = "neighbour")]
    neighbours: Vec<RawNeighbour>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    tunnel: RawTunnel,
    #[serde(default, rename = "binding")]
    bindings: Vec<RawBinding>,
    gateway: Option<RawGateway>,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    delayed_binding: RawDelayed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelayed {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_wait")]
    wait: u64,
    #[serde(default = "default_reject")]
    reject: u64,
    #[serde(default = "default_reject_unknown")]
    reject_unknown: u64,
}

impl Default for RawDelayed {
    fn default() -> Self {
        RawDelayed {
            enabled: true,
            wait: default_wait(),
            reject: default_reject(),
            reject_unknown: default_reject_unknown(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_wait() -> u64 {
    2
}
fn default_reject() -> u64 {
    180
}
fn default_reject_unknown() -> u64 {
    3 * 3600
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTunnel {
    udp_port: Option<u16>,
    #[serde(default)]
    headers_only: bool,
    #[serde(default, rename = "key")]
    keys: Vec<RawKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    id: i64,
    algorithm: Option<String>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    gateway: Option<String>,
}

impl fmt::Debug for RawKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawKey { .. }")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBinding {
    initiator: String,
    waypoint: String,
    gateway: String,
    responder: String,
    mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    public: String,
    private: String,
    nat_ports: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    icmp: Option<u64>,
    udp: Option<u64>,
    tcp: Option<u64>,
    other: Option<u64>,
    http: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    role: Role,
    #[serde(default)]
    eal_args: Vec<String>,
    #[serde(default = "default_mbufs")]
    mbufs: u32,
    #[serde(default = "default_mbuf_cache")]
    mbuf_cache: u32,
    #[serde(default = "default_mbuf_data_room")]
    mbuf_data_room: u16,
    #[serde(default)]
    idle: RawIdle,
}

fn default_mbufs() -> u32 {
    8191
}
fn default_mbuf_cache() -> u32 {
    256
}
fn default_mbuf_data_room() -> u16 {
    2048
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdle {
    #[serde(default = "default_idle_mode")]
    mode: String,
    #[serde(default = "default_after")]
    after_empty_polls: u32,
    #[serde(default = "default_max_sleep")]
    max_sleep_us: u32,
}

impl Default for RawIdle {
    fn default() -> Self {
        RawIdle {
            mode: default_idle_mode(),
            after_empty_polls: default_after(),
            max_sleep_us: default_max_sleep(),
        }
    }
}

fn default_idle_mode() -> String {
    "sleep".into()
}
fn default_after() -> u32 {
    128
}
fn default_max_sleep() -> u32 {
    500
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    #[serde(default = "default_socket")]
    socket: PathBuf,
    cpu: Option<usize>,
    listen: Option<String>,
    #[serde(default = "default_max_skew")]
    max_skew_s: u64,
    #[serde(default = "default_replay_window")]
    replay_window: usize,
    #[serde(default, rename = "key")]
    keys: Vec<RawKey>,
}

impl Default for RawControl {
    fn default() -> Self {
        RawControl {
            socket: default_socket(),
            cpu: None,
            listen: None,
            max_skew_s: default_max_skew(),
            replay_window: default_replay_window(),
            keys: Vec::new(),
        }
    }
}

fn default_max_skew() -> u64 {
    30
}
fn default_replay_window() -> usize {
    128
}

/// `"a.b.c.d:port"` or `"a.b.c.d"` (port [`crate::proto::DEFAULT_PORT`]); not 0.0.0.0.
fn parse_listen(s: &str) -> Option<SocketAddrV4> {
    let a = s.parse::<SocketAddrV4>().ok().or_else(|| {
        Some(SocketAddrV4::new(
            s.parse().ok()?,
            crate::proto::DEFAULT_PORT,
        ))
    })?;
    (!a.ip().is_unspecified() && a.port() != 0).then_some(a)
}

/// Where the control socket lives unless configured.
pub fn default_socket() -> PathBuf {
    PathBuf::from("/run/aves/aves.sock")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    name: String,
    device: String,
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    pools: Vec<String>,
    #[serde(default = "default_mtu")]
    mtu: u16,
    #[serde(default = "default_desc")]
    rx_desc: u16,
    #[serde(default = "default_desc")]
    tx_desc: u16,
    #[serde(default)]
    promiscuous: bool,
}

fn default_mtu() -> u16 {
    1500
}
fn default_desc() -> u16 {
    1024
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    via: Option<String>,
    port: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeighbour {
    port: String,
    ip: String,
    mac: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default = "default_routes")]
    routes: usize,
    #[serde(default = "default_neighbours")]
    neighbours: usize,
    #[serde(default = "default_pending")]
    pending: usize,
    #[serde(default = "default_neighbour_ttl")]
    neighbour_ttl_s: u64,
    #[serde(default = "default_bindings")]
    bindings: usize,
    #[serde(default = "default_connections")]
    connections: usize,
    #[serde(default = "default_connections")]
    flows: usize,
    #[serde(default = "default_reassembly_contexts")]
    reassembly_contexts: usize,
    #[serde(default = "default_reassembly_fragments")]
    reassembly_fragments: usize,
    #[serde(default = "default_reassembly_bytes")]
    reassembly_bytes: usize,
    #[serde(default = "default_reassembly_timeout")]
    reassembly_timeout_ms: u64,
    #[serde(default = "default_waits")]
    waits: usize,
    #[serde(default = "default_rejects")]
    rejects: usize,
}

fn default_waits() -> usize {
    1024
}
fn default_rejects() -> usize {
    65536
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            routes: default_routes(),
            neighbours: default_neighbours(),
            pending: default_pending(),
            neighbour_ttl_s: default_neighbour_ttl(),
            bindings: default_bindings(),
            connections: default_connections(),
            flows: default_connections(),
            reassembly_contexts: default_reassembly_contexts(),
            reassembly_fragments: default_reassembly_fragments(),
            reassembly_bytes: default_reassembly_bytes(),
            reassembly_timeout_ms: default_reassembly_timeout(),
            waits: default_waits(),
            rejects: default_rejects(),
        }
    }
}

fn default_bindings() -> usize {
    65536
}
fn default_connections() -> usize {
    262_144
}
fn default_reassembly_contexts() -> usize {
    1024
}
fn default_reassembly_fragments() -> usize {
    64
}
fn default_reassembly_bytes() -> usize {
    4 << 20
}
fn default_reassembly_timeout() -> u64 {
    5000
}

fn default_routes() -> usize {
    1024
}
fn default_neighbours() -> usize {
    4096
}
fn default_pending() -> usize {
    256
}
fn default_neighbour_ttl() -> u64 {
    300
}

/// Highest number of ports (the dataplane's per-core counters are sized for it).
pub const MAX_PORTS: usize = aves_dataplane::counters::MAX_PORTS;

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        key: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    parse(path, &text)
}

/// Parses and validates config text; `path` is used in error messages.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        key: String::new(),
        message: toml_message(text, &e),
    })?;
    raw.validate(path)
}

struct Ctx<'a> {
    file: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }
}

impl RawConfig {
    /// Checks every value and builds the typed [`Config`].
    pub fn validate(self, file: &Path) -> Result<Config, ConfigError> {
        let cx = Ctx { file };

        let idle = match self.engine.idle.mode.as_str() {
            "busy" => IdlePolicy::Busy,
            "sleep" => {
                if self.engine.idle.max_sleep_us == 0 || self.engine.idle.max_sleep_us > 100_000 {
                    return Err(cx.err(
                        "engine.idle.max_sleep_us",
                        format!(
                            "{} is out of range (expected 1..=100000 µs)",
                            self.engine.idle.max_sleep_us
                        ),
                    ));
                }
                IdlePolicy::Sleep {
                    after_empty_polls: self.engine.idle.after_empty_polls,
                    max_sleep_us: self.engine.idle.max_sleep_us,
                }
            }
            other => {
                return Err(cx.err(
                    "engine.idle.mode",
                    format!("`{other}` is not an idle mode (expected \"busy\" or \"sleep\")"),
                ))
            }
        };
        if self.engine.mbufs < 1023 {
            return Err(cx.err(
                "engine.mbufs",
                format!("{} is too few (expected at least 1023)", self.engine.mbufs),
            ));
        }
        if !(2048..=16384).contains(&self.engine.mbuf_data_room) {
            return Err(cx.err(
                "engine.mbuf_data_room",
                format!(
                    "{} is out of range (expected 2048..=16384 bytes)",
                    self.engine.mbuf_data_room
                ),
            ));
        }
        if self.engine.mbuf_cache > 512 {
            return Err(cx.err(
                "engine.mbuf_cache",
                format!(
                    "{} is too large (DPDK allows at most 512)",
                    self.engine.mbuf_cache
                ),
            ));
        }
        if self.engine.mbuf_cache as u64 * 3 / 2 > self.engine.mbufs as u64 {
            return Err(cx.err(
                "engine.mbuf_cache",
                "must be at most two thirds of engine.mbufs",
            ));
        }

        if self.ports.is_empty() {
            return Err(cx.err(
                "port",
                "no ports configured (expected at least one [[port]])",
            ));
        }
        if self.ports.len() > MAX_PORTS {
            return Err(cx.err(
                "port",
                format!(
                    "{} ports configured (at most {MAX_PORTS})",
                    self.ports.len()
                ),
            ));
        }

        let mut ports = Vec::with_capacity(self.ports.len());
        for (i, p) in self.ports.into_iter().enumerate() {
            let k = |f: &str| format!("port[{i}].{f}");
            if p.name.is_empty()
                || !p
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(cx.err(
                    k("name"),
                    format!(
                        "`{}` is not a port name (expected letters, digits, - or _)",
                        p.name
                    ),
                ));
            }
            if ports.iter().any(|q: &PortSpec| q.name == p.name) {
                return Err(cx.err(k("name"), format!("duplicate port name `{}`", p.name)));
            }
            if p.device.trim().is_empty() {
                return Err(cx.err(
                    k("device"),
                    "empty (expected a PCI address or a vdev like net_tap0,iface=x)",
                ));
            }
            if ports
                .iter()
                .any(|q: &PortSpec| q.dpdk_name() == p.device.split(',').next().unwrap_or(""))
            {
                return Err(cx.err(
                    k("device"),
                    format!("device `{}` used by two ports", p.device),
                ));
            }
            let mut addresses = Vec::new();
            for (j, a) in p.addresses.iter().enumerate() {
                let c: Ipv4Cidr = a
                    .parse()
                    .map_err(|e| cx.err(format!("port[{i}].addresses[{j}]"), format!("{e}")))?;
                if c.len() > 30 && c.len() != 32 {
                    return Err(cx.err(
                        format!("port[{i}].addresses[{j}]"),
                        format!(
                            "`{a}`: prefix length /{} leaves no hosts (use /1../30 or /32)",
                            c.len()
                        ),
                    ));
                }
                addresses.push(c);
            }
            let mut pools = Vec::new();
            for (j, a) in p.pools.iter().enumerate() {
                pools.push(
                    a.parse::<Ipv4Range>()
                        .map_err(|e| cx.err(format!("port[{i}].pools[{j}]"), format!("{e}")))?,
                );
            }
            if !(576..=9000).contains(&p.mtu) {
                return Err(cx.err(
                    k("mtu"),
                    format!("{} is out of range (expected 576..=9000)", p.mtu),
                ));
            }
            for (f, v) in [("rx_desc", p.rx_desc), ("tx_desc", p.tx_desc)] {
                if !(64..=16384).contains(&v) || !v.is_power_of_two() {
                    return Err(cx.err(
                        k(f),
                        format!("{v} is not allowed (expected a power of two in 64..=16384)"),
                    ));
                }
            }
            ports.push(PortSpec {
                name: p.name,
                device: p.device,
                addresses,
                pools,
                mtu: p.mtu,
                rx_desc: p.rx_desc,
                tx_desc: p.tx_desc,
                promiscuous: p.promiscuous,
            });
        }

        let port_index = |key: String, name: &str| -> Result<u16, ConfigError> {
            ports
                .iter()
                .position(|p| p.name == name)
                .map(|i| i as u16)
                .ok_or_else(|| {
                    let names: Vec<_> = ports.iter().map(|p| p.name.as_str()).collect();
                    cx.err(
                        key,
                        format!("no port named `{name}` (ports: {})", names.join(", ")),
                    )
                })
        };

        let mut routes = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            let prefix: Ipv4Cidr = r
                .prefix
                .parse()
                .map_err(|e| cx.err(format!("route[{i}].prefix"), format!("{e}")))?;
            let via = match &r.via {
                None => None,
                Some(v) => Some(v.parse::<Ipv4Addr>().map_err(|_| {
                    cx.err(
                        format!("route[{i}].via"),
                        format!("`{v}` is not an IPv4 address"),
                    )
                })?),
            };
            let port = port_index(format!("route[{i}].port"), &r.port)?;
            routes.push(Route {
                prefix: prefix.network(),
                via,
                port,
            });
        }

        let mut neighbours = Vec::new();
        for (i, n) in self.neighbours.iter().enumerate() {
            let port = port_index(format!("neighbour[{i}].port"), &n.port)?;
            let ip = n.ip.parse::<Ipv4Addr>().map_err(|_| {
                cx.err(
                    format!("neighbour[{i}].ip"),
                    format!("`{}` is not an IPv4 address", n.ip),
                )
            })?;
            let mac = n
                .mac
                .parse::<MacAddr>()
                .map_err(|e| cx.err(format!("neighbour[{i}].mac"), format!("{e}")))?;
            if mac.is_multicast() {
                return Err(cx.err(
                    format!("neighbour[{i}].mac"),
                    format!("`{}` is a multicast MAC (expected a unicast MAC)", n.mac),
                ));
            }
            neighbours.push(NeighbourSpec { port, ip, mac });
        }

        let l = &self.limits;
        for (f, v, lo, hi) in [
            ("limits.routes", l.routes, 1, 1 << 20),
            ("limits.neighbours", l.neighbours, 1, 1 << 20),
            ("limits.pending", l.pending, 1, 1 << 16),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err(cx.err(f, format!("{v} is out of range (expected {lo}..={hi})")));
            }
        }
        let connected: usize = ports.iter().map(|p| p.addresses.len()).sum();
        if connected + routes.len() > l.routes {
            return Err(cx.err(
                "limits.routes",
                format!(
                    "{} is smaller than the {} configured routes ({} connected + {} static)",
                    l.routes,
                    connected + routes.len(),
                    connected,
                    routes.len()
                ),
            ));
        }
        if neighbours.len() > l.neighbours {
            return Err(cx.err(
                "limits.neighbours",
                format!(
                    "{} is smaller than the {} static neighbours",
                    l.neighbours,
                    neighbours.len()
                ),
            ));
        }
        if !(1..=86_400).contains(&l.neighbour_ttl_s) {
            return Err(cx.err(
                "limits.neighbour_ttl_s",
                format!("{} is out of range (expected 1..=86400)", l.neighbour_ttl_s),
            ));
        }
        if self.control.socket.as_os_str().is_empty() {
            return Err(cx.err("control.socket", "empty (expected a path)"));
        }
        for (f, v, lo, hi) in [
            ("limits.bindings", l.bindings, 1, 1 << 24),
            ("limits.connections", l.connections, 1, 1 << 24),
            ("limits.flows", l.flows, 2, 1 << 24),
            (
                "limits.reassembly_contexts",
                l.reassembly_contexts,
                1,
                1 << 16,
            ),
            (
                "limits.reassembly_fragments",
                l.reassembly_fragments,
                2,
                1024,
            ),
            ("limits.reassembly_bytes", l.reassembly_bytes, 4096, 1 << 30),
            ("limits.waits", l.waits, 1, 1 << 20),
            ("limits.rejects", l.rejects, 1, 1 << 24),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err(cx.err(f, format!("{v} is out of range (expected {lo}..={hi})")));
            }
        }
        if !(100..=60_000).contains(&l.reassembly_timeout_ms) {
            return Err(cx.err(
                "limits.reassembly_timeout_ms",
                format!(
                    "{} is out of range (expected 100..=60000)",
                    l.reassembly_timeout_ms
                ),
            ));
        }

        // [tunnel] and its keys.
        let udp_port = self.tunnel.udp_port.unwrap_or(AVES_UDP_PORT);
        if udp_port == 0 {
            return Err(cx.err("tunnel.udp_port", "0 is not a port (expected 1..=65535)"));
        }
        let base = file.parent().unwrap_or(Path::new("."));
        let keys = parse_keys(&cx, base, "tunnel.key", &self.tunnel.keys, 2)?;
        let control_keys = parse_keys(&cx, base, "control.key", &self.control.keys, 256)?;
        if let Some(i) = control_keys.iter().position(|k| k.gateway.is_some()) {
            return Err(cx.err(
                format!("control.key[{i}].gateway"),
                "not allowed: a control key belongs to a DNS server, not to a gateway",
            ));
        }
        let listen = match &self.control.listen {
            None => None,
            Some(l) => Some(parse_listen(l).ok_or_else(|| {
                cx.err(
                    "control.listen",
                    format!("`{l}` is not an address to listen on (expected \"a.b.c.d:port\" or \"a.b.c.d\", not 0.0.0.0: replies are signed with it)"),
                )
            })?),
        };
        if listen.is_some() && control_keys.is_empty() {
            return Err(cx.err(
                "control.key",
                "control.listen needs at least one [[control.key]] (SETUP messages are authenticated)",
            ));
        }
        if !(1..=3600).contains(&self.control.max_skew_s) {
            return Err(cx.err(
                "control.max_skew_s",
                format!(
                    "{} is out of range (expected 1..=3600)",
                    self.control.max_skew_s
                ),
            ));
        }
        if !(crate::proto::MIN_WINDOW..=4096).contains(&self.control.replay_window) {
            return Err(cx.err(
                "control.replay_window",
                format!(
                    "{} is out of range (expected {}..=4096)",
                    self.control.replay_window,
                    crate::proto::MIN_WINDOW
                ),
            ));
        }

        // [[binding]]
        let mut bindings = Vec::new();
        for (i, b) in self.bindings.iter().enumerate() {
            let addr = |f: &str, v: &str| -> Result<Ipv4Addr, ConfigError> {
                v.parse::<Ipv4Addr>().map_err(|_| {
                    cx.err(
                        format!("binding[{i}].{f}"),
                        format!("`{v}` is not an IPv4 address"),
                    )
                })
            };
            let waypoint = addr("waypoint", &b.waypoint)?;
            let gateway = addr("gateway", &b.gateway)?;
            if !ports
                .iter()
                .any(|p| p.pools.iter().any(|r| r.contains(waypoint)))
            {
                return Err(cx.err(
                    format!("binding[{i}].waypoint"),
                    format!("{waypoint} is in no port's pools"),
                ));
            }
            if !keys.iter().any(|k| k.gateway == Some(gateway)) {
                return Err(cx.err(
                    format!("binding[{i}].gateway"),
                    format!("no [[tunnel.key]] for gateway {gateway}"),
                ));
            }
            let mode = match b.mode.as_deref() {
                None | Some("plain") => Mode::Plain,
                Some("multihoming") => Mode::MultiHoming,
                Some(m) => {
                    return Err(cx.err(
                        format!("binding[{i}].mode"),
                        format!("`{m}` is not a mode (expected \"plain\" or \"multihoming\")"),
                    ))
                }
            };
            bindings.push(Binding {
                initiator: addr("initiator", &b.initiator)?,
                waypoint,
                gateway,
                responder: addr("responder", &b.responder)?,
                mode,
                pinned: true,
            });
        }

        // [gateway]
        let gateway = match &self.gateway {
            None => None,
            Some(g) => {
                let public = port_index("gateway.public".into(), &g.public)?;
                let private = port_index("gateway.private".into(), &g.private)?;
                if public == private {
                    return Err(cx.err("gateway.private", "must differ from gateway.public"));
                }
                for (f, idx) in [("gateway.public", public), ("gateway.private", private)] {
                    if ports[usize::from(idx)].addresses.is_empty() {
                        return Err(cx.err(f, "that port has no address"));
                    }
                }
                let nat_ports = match &g.nat_ports {
                    None => (20000, 59999),
                    Some(r) => parse_port_range(r).ok_or_else(|| {
                        cx.err(
                            "gateway.nat_ports",
                            format!(
                                "`{r}` is not a port range (expected \"lo-hi\", 1024 <= lo <= hi)"
                            ),
                        )
                    })?,
                };
                Some(GatewaySpec {
                    public,
                    private,
                    nat_ports,
                })
            }
        };

        let d = &self.delayed_binding;
        for (f, v, lo, hi) in [
            ("delayed_binding.wait", d.wait, 1, 60),
            ("delayed_binding.reject", d.reject, 0, 86_400),
            (
                "delayed_binding.reject_unknown",
                d.reject_unknown,
                0,
                7 * 86_400,
            ),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err(cx.err(f, format!("{v} is out of range (expected {lo}..={hi} s)")));
            }
        }
        let delayed_binding = DelayedBindingSpec {
            enabled: d.enabled,
            wait_s: d.wait,
            reject_s: d.reject,
            reject_unknown_s: d.reject_unknown,
        };

        // Role rules.
        if listen.is_some() && self.engine.role != Role::Waypoint {
            return Err(cx.err(
                "control.listen",
                "only a waypoint serves SETUP messages (engine.role = \"waypoint\")",
            ));
        }
        match self.engine.role {
            Role::Router => {
                if !keys.is_empty() || !bindings.is_empty() || gateway.is_some() {
                    return Err(cx.err(
                        "engine.role",
                        "a router takes no [[tunnel.key]], [[binding]] or [gateway]",
                    ));
                }
            }
            Role::Waypoint => {
                if !ports.iter().any(|p| !p.pools.is_empty()) {
                    return Err(cx.err("port", "a waypoint needs at least one port with pools"));
                }
                if keys.is_empty() {
                    return Err(cx.err("tunnel.key", "a waypoint needs a key per gateway"));
                }
                if let Some(i) = keys.iter().position(|k| k.gateway.is_none()) {
                    return Err(cx.err(
                        format!("tunnel.key[{i}].gateway"),
                        "missing (a waypoint's key names the gateway it signs for)",
                    ));
                }
                if gateway.is_some() {
                    return Err(cx.err("gateway", "only for engine.role = \"gateway\""));
                }
            }
            Role::Gateway => {
                if gateway.is_none() {
                    return Err(cx.err(
                        "gateway",
                        "missing (a gateway needs [gateway] public/private)",
                    ));
                }
                if keys.is_empty() {
                    return Err(cx.err("tunnel.key", "a gateway needs its key"));
                }
                if let Some(i) = keys.iter().position(|k| k.gateway.is_some()) {
                    return Err(cx.err(
                        format!("tunnel.key[{i}].gateway"),
                        "not allowed for a gateway (its keys are its own)",
                    ));
                }
                if !bindings.is_empty() {
                    return Err(cx.err("binding", "bindings belong on a waypoint"));
                }
            }
        }

        let mut timeouts = Timeouts::aves();
        for (f, v, slot) in [
            ("timeouts.icmp", self.timeouts.icmp, &mut timeouts.icmp),
            ("timeouts.udp", self.timeouts.udp, &mut timeouts.udp),
            ("timeouts.tcp", self.timeouts.tcp, &mut timeouts.tcp),
            ("timeouts.other", self.timeouts.other, &mut timeouts.other),
        ] {
            if let Some(v) = v {
                if !(1..=86_400).contains(&v) {
                    return Err(cx.err(f, format!("{v} is out of range (expected 1..=86400 s)")));
                }
                *slot = v * SECOND_NS;
            }
        }
        if let Some(v) = self.timeouts.http {
            if !(1..=86_400).contains(&v) {
                return Err(cx.err(
                    "timeouts.http",
                    format!("{v} is out of range (expected 1..=86400 s)"),
                ));
            }
            timeouts.http = Some(v * SECOND_NS);
        }
        timeouts.tcp_transitory = timeouts.tcp;

        Ok(Config {
            file: file.to_path_buf(),
            role: self.engine.role,
            eal_args: self.engine.eal_args,
            mbufs: self.engine.mbufs,
            mbuf_cache: self.engine.mbuf_cache,
            mbuf_data_room: self.engine.mbuf_data_room,
            idle,
            control_socket: self.control.socket,
            control_cpu: self.control.cpu,
            ports,
            routes,
            neighbours,
            limits: Limits {
                routes: l.routes,
                neighbours: l.neighbours,
                pending: l.pending,
                neighbour_ttl_s: l.neighbour_ttl_s,
                bindings: l.bindings,
                connections: l.connections,
                flows: l.flows,
                reassembly_contexts: l.reassembly_contexts,
                reassembly_fragments: l.reassembly_fragments,
                reassembly_bytes: l.reassembly_bytes,
                reassembly_timeout_ms: l.reassembly_timeout_ms,
                waits: l.waits,
                rejects: l.rejects,
            },
            tunnel: TunnelSpec {
                udp_port,
                headers_only: self.tunnel.headers_only,
                keys,
            },
            bindings,
            gateway,
            timeouts,
            control: ControlSpec {
                listen,
                keys: control_keys,
                max_skew_s: self.control.max_skew_s,
                replay_window: self.control.replay_window,
            },
            delayed_binding,
        })
    }
}

/// The keys of a `[[tunnel.key]]` or `[[control.key]]` list (`section` names it in
/// errors): id, algorithm, hex secret (inline or from a file relative to `base`),
/// gateway. Ids are unique per gateway; at most `per_gateway` keys per gateway (or
/// without one).
fn parse_keys(
    cx: &Ctx<'_>,
    base: &Path,
    section: &str,
    raw: &[RawKey],
    per_gateway: usize,
) -> Result<Vec<KeySpec>, ConfigError> {
    let mut keys: Vec<KeySpec> = Vec::new();
    for (i, k) in raw.iter().enumerate() {
        let key = |f: &str| format!("{section}[{i}].{f}");
        let id = u8::try_from(k.id).map_err(|_| {
            cx.err(
                key("id"),
                format!("{} is out of range (expected 0..=255)", k.id),
            )
        })?;
        let algorithm = match k.algorithm.as_deref() {
            None => Algorithm::HmacMd5,
            Some(a) => Algorithm::from_name(a).ok_or_else(|| {
                cx.err(
                    key("algorithm"),
                    format!(
                        "`{a}` is not an algorithm (expected \"hmac-md5\" or \"hmac-sha256-128\")"
                    ),
                )
            })?,
        };
        let hex_text = match (&k.secret, &k.secret_file) {
            (Some(s), None) => s.clone(),
            (None, Some(f)) => {
                let path = base.join(f);
                std::fs::read_to_string(&path).map_err(|e| {
                    cx.err(
                        key("secret_file"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?
            }
            _ => {
                return Err(cx.err(
                    key("secret"),
                    "give exactly one of `secret` (hex) or `secret_file`",
                ))
            }
        };
        let secret = parse_hex(hex_text.trim()).ok_or_else(|| {
            cx.err(
                key("secret"),
                "not hex (expected an even number of hex digits)",
            )
        })?;
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()) {
            return Err(cx.err(
                key("secret"),
                format!(
                    "{} bytes (expected {MIN_SECRET_LEN}..={MAX_SECRET_LEN})",
                    secret.len()
                ),
            ));
        }
        let gateway = match &k.gateway {
            None => None,
            Some(g) => Some(
                g.parse::<Ipv4Addr>()
                    .map_err(|_| cx.err(key("gateway"), format!("`{g}` is not an IPv4 address")))?,
            ),
        };
        if keys.iter().any(|o| o.gateway == gateway && o.id == id) {
            return Err(cx.err(key("id"), format!("duplicate key id {id}")));
        }
        if keys.iter().filter(|o| o.gateway == gateway).count() >= per_gateway {
            return Err(cx.err(
                key("id"),
                "at most two keys per gateway (the current one and the previous one)",
            ));
        }
        keys.push(KeySpec {
            id,
            algorithm,
            secret,
            gateway,
        });
    }
    Ok(keys)
}

/// The message for a TOML error. toml's own message names the key and shows the line
/// with line and column. That is shown only when it cannot hold a secret: the lines
/// involved do not name `secret` and nothing shown looks like one (a run of 16 or more
/// hex digits, spaces allowed, e.g. under a misspelt key). Otherwise only the position
/// is given, with toml's short message unless the error is on (or just after) a
/// `secret` line, where that message may quote the value, or the message itself looks
/// like a secret.
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        let m = e.message().trim_end();
        return if looks_secret(m) {
            "TOML error (the details are not shown: they may quote a tunnel secret)".into()
        } else {
            m.to_string()
        };
    };
    let start = floor_boundary(text, span.start);
    let end = floor_boundary(text, span.end.max(span.start));
    let line_of = |at: usize| text.get(..at).map_or(0, |t| t.matches('\n').count());
    let (first, last) = (line_of(start), line_of(end));
    let lines: Vec<&str> = text.lines().collect();
    let names = |l: usize| lines.get(l).is_some_and(|t| names_secret(t));
    // An unterminated string may be reported on the line after the one it started on.
    let on_secret = names(first) || (first > 0 && names(first - 1));
    let full = e.to_string();
    if !on_secret && !(first..=last).any(names) && !looks_secret(&full) {
        return full.trim_end().replace('\n', "\n    ");
    }
    let column = start
        - text
            .get(..start)
            .and_then(|t| t.rfind('\n'))
            .map_or(0, |i| i + 1)
        + 1;
    let message = e.message().trim_end();
    if on_secret || looks_secret(message) {
        format!(
            "TOML error at line {} column {column}, on or after a line holding a tunnel secret (the details are not shown: they may quote it); expected e.g. secret = \"<hex digits>\" inside [[tunnel.key]]",
            first + 1
        )
    } else {
        format!(
            "TOML error at line {} column {column}: {message}",
            first + 1
        )
    }
}

/// True when `text` has a run of 16 or more hex digits, with only spaces between them:
/// something that may be (most of) a tunnel secret.
fn looks_secret(text: &str) -> bool {
    let mut digits = 0;
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            digits += 1;
            if digits >= 16 {
                return true;
            }
        } else if c != ' ' {
            digits = 0;
        }
    }
    false
}

/// The largest char boundary of `text` at or below `at`.
fn floor_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// True when a line mentions the key `secret` (not `secret_file`).
fn names_secret(line: &str) -> bool {
    line.match_indices("secret")
        .any(|(i, m)| !line[i + m.len()..].starts_with("_file"))
}

/// Hex digits to bytes (even length).
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// "lo-hi" with 1024 <= lo <= hi.
fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-')?;
    let (lo, hi) = (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?);
    (1024 <= lo && lo <= hi).then_some((lo, hi))
}

impl Config {
    /// The full EAL argument list: program name, config args, a `--vdev` for every
    /// virtual-device port the args do not already name, then `extra` (command line).
    pub fn eal_argv(&self, extra: &[String]) -> Vec<String> {
        let mut argv = vec!["aves".to_string()];
        argv.extend(self.eal_args.iter().cloned());
        argv.extend(extra.iter().cloned());
        for p in &self.ports {
            if p.is_vdev() && !argv.iter().any(|a| a.starts_with(p.dpdk_name())) {
                argv.push("--vdev".into());
                argv.push(p.device.clone());
            }
        }
        argv
    }

    /// Index of the port called `name`.
    pub fn port_index(&self, name: &str) -> Option<u16> {
        self.ports
            .iter()
            .position(|p| p.name == name)
            .map(|i| i as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[engine]
role = "router"
eal_args = ["--no-pci", "--no-huge", "--no-shconf", "-m", "512", "-l", "1"]
idle = { mode = "sleep", after_empty_polls = 64, max_sleep_us = 200 }

[control]
socket = "/tmp/aves-test.sock"

[[port]]
name = "a"
device = "net_af_packet0,iface=r-a"
addresses = ["10.1.0.1/24"]

[[port]]
name = "b"
device = "net_af_packet1,iface=r-b"
addresses = ["10.2.0.1/24"]
pools = ["192.0.2.10-192.0.2.17"]
mtu = 1500

[[route]]
prefix = "10.9.0.0/16"
via = "10.2.0.2"
port = "b"

[[neighbour]]
port = "a"
ip = "10.1.0.2"
mac = "02:00:00:00:00:02"
"#;

    fn p(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("t.toml"), text)
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let c = p(GOOD).unwrap();
        assert_eq!(c.role, Role::Router);
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.ports[1].pools[0].count(), 8);
        assert_eq!(c.routes[0].port, 1);
        assert_eq!(c.routes[0].via, Some(Ipv4Addr::new(10, 2, 0, 2)));
        assert_eq!(c.neighbours[0].port, 0);
        assert_eq!(c.limits.routes, 1024);
        assert_eq!(
            c.idle,
            IdlePolicy::Sleep {
                after_empty_polls: 64,
                max_sleep_us: 200
            }
        );
        let argv = c.eal_argv(&["--log-level=5".into()]);
        assert_eq!(argv[0], "aves");
        assert!(argv.contains(&"net_af_packet0,iface=r-a".to_string()));
        assert!(argv.contains(&"--log-level=5".to_string()));
    }

    #[test]
    fn eal_argv_does_not_duplicate_vdevs_named_in_args() {
        let text = GOOD.replace(
            r#""-l", "1"]"#,
            r#""-l", "1", "--vdev", "net_af_packet0,iface=r-a,qpairs=2"]"#,
        );
        let c = p(&text).unwrap();
        let argv = c.eal_argv(&[]);
        assert_eq!(
            argv.iter()
                .filter(|a| a.starts_with("net_af_packet0"))
                .count(),
            1
        );
    }

    /// Each bad config names the key that is wrong.
    #[test]
    fn bad_configs_name_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("10.1.0.1/24\"]", "10.1.0.1/33\"]", "port[0].addresses[0]"),
            ("10.1.0.1/24\"]", "banana\"]", "port[0].addresses[0]"),
            (
                "192.0.2.10-192.0.2.17",
                "192.0.2.17-192.0.2.10",
                "port[1].pools[0]",
            ),
            ("mtu = 1500", "mtu = 100", "port[1].mtu"),
            ("port = \"b\"", "port = \"c\"", "route[0].port"),
            ("via = \"10.2.0.2\"", "via = \"10.2.0\"", "route[0].via"),
            (
                "prefix = \"10.9.0.0/16\"",
                "prefix = \"10.9.0.0\"",
                "route[0].prefix",
            ),
            (
                "mac = \"02:00:00:00:00:02\"",
                "mac = \"01:00:00:00:00:02\"",
                "neighbour[0].mac",
            ),
            (
                "mac = \"02:00:00:00:00:02\"",
                "mac = \"zz\"",
                "neighbour[0].mac",
            ),
            (
                "ip = \"10.1.0.2\"",
                "ip = \"10.1.0.300\"",
                "neighbour[0].ip",
            ),
            ("name = \"b\"", "name = \"a\"", "port[1].name"),
            ("name = \"b\"", "name = \"b c\"", "port[1].name"),
            ("mode = \"sleep\"", "mode = \"nap\"", "engine.idle.mode"),
            (
                "max_sleep_us = 200",
                "max_sleep_us = 0",
                "engine.idle.max_sleep_us",
            ),
            (
                "iface=r-b\"",
                "iface=r-b\"\nrx_desc = 100",
                "port[1].rx_desc",
            ),
            (
                "[control]",
                "[limits]\nroutes = 2\n[control]",
                "limits.routes",
            ),
            (
                "[control]",
                "[limits]\npending = 0\n[control]",
                "limits.pending",
            ),
            (
                "[control]",
                "[limits]\nneighbour_ttl_s = 0\n[control]",
                "limits.neighbour_ttl_s",
            ),
            (
                "role = \"router\"",
                "role = \"router\"\nmbufs = 10",
                "engine.mbufs",
            ),
            (
                "role = \"router\"",
                "role = \"router\"\nmbuf_cache = 600",
                "engine.mbuf_cache",
            ),
            (
                "net_af_packet1,iface=r-b",
                "net_af_packet0,iface=r-b",
                "port[1].device",
            ),
        ];
        for (from, to, key) in cases {
            assert!(GOOD.contains(from), "case text `{from}` not in GOOD");
            let text = GOOD.replacen(from, to, 1);
            let e = p(&text).expect_err(&format!("`{to}` accepted"));
            assert_eq!(&e.key, key, "wrong key for `{to}`: {e}");
            assert!(e.to_string().starts_with("t.toml: "), "{e}");
        }
    }

    /// serde-level errors carry the key and a line number.
    #[test]
    fn syntax_and_unknown_keys_are_reported() {
        let e = p(&GOOD.replace("mtu = 1500", "mtu = 1500\ncolour = 3")).unwrap_err();
        assert!(e.message.contains("colour"), "{e}");
        assert!(e.message.contains("line"), "{e}");
        let e = p(&GOOD.replace("role = \"router\"", "role = \"toaster\"")).unwrap_err();
        assert!(e.message.contains("toaster"), "{e}");
        let e = p("[engine\n").unwrap_err();
        assert!(!e.message.is_empty());
        let e = p(&GOOD.replace("mtu = 1500", "mtu = 99999999")).unwrap_err();
        assert!(e.message.contains("mtu"), "{e}");
        let e = p("").unwrap_err();
        assert!(e.message.contains("engine"), "{e}");
    }

    #[test]
    fn no_ports_is_an_error() {
        let e = p("[engine]\nrole = \"router\"\n").unwrap_err();
        assert_eq!(e.key, "port");
    }

    #[test]
    fn missing_file_is_an_error() {
        let e = load(Path::new("/nonexistent/aves.toml")).unwrap_err();
        assert!(e.message.contains("cannot read"), "{e}");
    }

    #[test]
    fn every_example_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.extension().and_then(|x| x.to_str()) == Some("toml") {
                load(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 3, "router, waypoint and gateway examples");
        let w = load(&dir.join("waypoint.toml")).unwrap();
        assert_eq!(w.role, Role::Waypoint);
        assert_eq!(w.bindings.len(), 1);
        assert!(w.bindings[0].pinned);
        assert_eq!(w.tunnel.keys[0].secret.len(), 32);
        assert!(
            !format!("{w:?}").contains("4156455320"),
            "Debug hides secrets"
        );
        assert_eq!(w.control.listen, Some("172.16.0.2:4798".parse().unwrap()));
        assert_eq!(w.control.keys.len(), 1);
        assert_eq!(w.control.replay_window, 128);
        assert_eq!(
            w.delayed_binding,
            DelayedBindingSpec {
                enabled: true,
                wait_s: 2,
                reject_s: 180,
                reject_unknown_s: 10800
            }
        );
        assert!(
            !format!("{w:?}").contains("64657320444e"),
            "Debug hides secrets"
        );
        let g = load(&dir.join("gateway.toml")).unwrap();
        assert_eq!(g.gateway.unwrap().nat_ports, (20000, 59999));
        assert_eq!(g.control.listen, None);
        assert!(g.delayed_binding.enabled, "defaults");
    }

    #[test]
    fn bad_aves_configs_name_the_key() {
        let w = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/waypoint.toml"),
        )
        .unwrap();
        let g = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/gateway.toml"),
        )
        .unwrap();
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                &w,
                "gateway = \"192.0.2.2\"\nid = 1",
                "gateway = \"192.0.2.2\"\nid = 300",
                "tunnel.key[0].id",
            ),
            (
                &w,
                "algorithm = \"hmac-md5\"",
                "algorithm = \"md4\"",
                "tunnel.key[0].algorithm",
            ),
            (
                &w,
                "secret = \"4156455320653265207368617265642074657374206b65792c207075626c6963\"",
                "secret = \"abcd\"",
                "tunnel.key[0].secret",
            ),
            (
                &w,
                "secret = \"4156455320653265207368617265642074657374206b65792c207075626c6963\"",
                "secret = \"zz\"",
                "tunnel.key[0].secret",
            ),
            (
                &w,
                "gateway = \"192.0.2.2\"\nid",
                "gateway = \"192.0.2.x\"\nid",
                "tunnel.key[0].gateway",
            ),
            (
                &w,
                "waypoint = \"203.0.113.100\"",
                "waypoint = \"203.0.113.200\"",
                "binding[0].waypoint",
            ),
            (&w, "mode = \"plain\"", "mode = \"both\"", "binding[0].mode"),
            (&w, "icmp = 60", "icmp = 0", "timeouts.icmp"),
            (
                &w,
                "pools = [\"203.0.113.100-203.0.113.115\"]",
                "",
                "binding[0].waypoint",
            ),
            (
                &g,
                "nat_ports = \"20000-59999\"",
                "nat_ports = \"80-90\"",
                "gateway.nat_ports",
            ),
            (
                &g,
                "private = \"priv\"",
                "private = \"pub\"",
                "gateway.private",
            ),
            (
                &g,
                "private = \"priv\"",
                "private = \"lan\"",
                "gateway.private",
            ),
            (&g, "[gateway]", "[gateway_x]", ""),
            (
                &g,
                "id = 1\n",
                "id = 1\ngateway = \"192.0.2.9\"\n",
                "tunnel.key[0].gateway",
            ),
            (
                &g,
                "reassembly_fragments = 64",
                "reassembly_fragments = 1",
                "limits.reassembly_fragments",
            ),
            (&g, "role = \"gateway\"", "role = \"router\"", "engine.role"),
            (
                &w,
                "listen = \"172.16.0.2:4798\"",
                "listen = \"0.0.0.0:4798\"",
                "control.listen",
            ),
            (
                &w,
                "listen = \"172.16.0.2:4798\"",
                "listen = \"172.16.0.2:x\"",
                "control.listen",
            ),
            (
                &w,
                "replay_window = 128",
                "replay_window = 16",
                "control.replay_window",
            ),
            (
                &w,
                "max_skew_s = 30",
                "max_skew_s = 0",
                "control.max_skew_s",
            ),
            (
                &w,
                "id = 1\nalgorithm = \"hmac-sha256-128\"",
                "id = 1\ngateway = \"192.0.2.2\"\nalgorithm = \"hmac-sha256-128\"",
                "control.key[0].gateway",
            ),
            (
                &w,
                "secret = \"64657320",
                "secret = \"zz",
                "control.key[0].secret",
            ),
            (&w, "wait = 2 ", "wait = 0 ", "delayed_binding.wait"),
            (
                &w,
                "reject_unknown = 10800",
                "reject_unknown = 99999999",
                "delayed_binding.reject_unknown",
            ),
        ];
        for (base, from, to, key) in cases {
            assert!(
                base.contains(from),
                "case {key}: `{from}` not in the example"
            );
            let text = base.replacen(from, to, 1);
            let e = p(&text).expect_err(key);
            assert_eq!(&e.key, key, "{e}");
        }
    }

    #[test]
    fn control_listen_rules() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let w = std::fs::read_to_string(dir.join("waypoint.toml")).unwrap();
        let c = p(&w.replace("172.16.0.2:4798", "172.16.0.2")).unwrap();
        assert_eq!(c.control.listen.unwrap().port(), crate::proto::DEFAULT_PORT);
        // Keys are required: SETUPs are authenticated.
        let start = w.find("[[control.key]]").unwrap();
        let end = w[start..].find("\n\n").unwrap() + start;
        let e = p(&format!("{}{}", &w[..start], &w[end..])).unwrap_err();
        assert_eq!(e.key, "control.key", "{e}");
        // Only a waypoint listens.
        let g = std::fs::read_to_string(dir.join("gateway.toml")).unwrap();
        let g = g.replacen(
            "socket = \"/run/aves/gateway.sock\"",
            "socket = \"/run/aves/gateway.sock\"\nlisten = \"172.16.0.1\"",
            1,
        ) + "\n[[control.key]]\nid = 1\nsecret = \"00112233445566778899aabbccddeeff\"\n";
        let e = p(&g).unwrap_err();
        assert_eq!(e.key, "control.listen", "{e}");
    }

    #[test]
    fn toml_errors_never_show_a_secret() {
        let w = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/waypoint.toml"),
        )
        .unwrap();
        let hex = "4156455320653265207368617265642074657374206b65792c207075626c6963";
        for (from, to) in [
            ("secret = ", "ecret = "),            // misspelt key quoting the value
            ("secret = \"4156", "secret = 4156"), // unquoted value
            ("secret = \"4156", "secret = \"\"\"4156"), // unterminated string
        ] {
            let e = p(&w.replacen(from, to, 1)).expect_err(to);
            let shown = e.to_string();
            assert!(!shown.contains(&hex[..16]), "{shown}");
            assert!(!shown.contains("6b65792c"), "{shown}");
        }
    }
}
