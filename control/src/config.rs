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
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
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

impl Role {
    /// The name as written in the config (`router`, `waypoint`, `gateway`); also the
    /// `role` label of `aves_build_info`.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Router => "router",
            Role::Waypoint => "waypoint",
            Role::Gateway => "gateway",
        }
    }
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

/// A gateway's registration with the AVES-aware DNS servers (`[gateway]` `id`,
/// `register`, `register_interval_s`; AVES paper §5.3). REGISTER is signed with the last
/// `[[control.key]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterSpec {
    /// The id the DNS servers know this gateway by (`[[dns.gateway]] id`).
    pub id: u32,
    /// The DNS servers' REGISTER addresses (`[dns] register_listen`).
    pub servers: Vec<SocketAddrV4>,
    /// Seconds between periodic REGISTERs.
    pub interval_s: u16,
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
    /// Where to serve Prometheus metrics over HTTP (`GET /metrics`); `None`: no listener.
    pub metrics: Option<SocketAddr>,
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
    /// Registration with DNS servers (gateway, when `[gateway] register` is set).
    pub register: Option<RegisterSpec>,
    /// Protocol timeouts (AVES §5.2 defaults).
    pub timeouts: Timeouts,
    /// The AVES-aware DNS server, when configured (`[dns]`).
    pub dns: Option<DnsSpec>,
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
    engine: Option<RawEngine>,
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
    dns: Option<RawDns>,
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
    id: Option<i64>,
    #[serde(default)]
    register: Vec<String>,
    register_interval_s: Option<i64>,
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
    metrics: Option<String>,
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
            metrics: None,
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
        let Some(engine) = self.engine else {
            return Err(cx.err(
                "engine",
                "missing (expected [engine] with a role; a file with only [dns] is for `aves dns`)",
            ));
        };

        let idle = match engine.idle.mode.as_str() {
            "busy" => IdlePolicy::Busy,
            "sleep" => {
                if engine.idle.max_sleep_us == 0 || engine.idle.max_sleep_us > 100_000 {
                    return Err(cx.err(
                        "engine.idle.max_sleep_us",
                        format!(
                            "{} is out of range (expected 1..=100000 µs)",
                            engine.idle.max_sleep_us
                        ),
                    ));
                }
                IdlePolicy::Sleep {
                    after_empty_polls: engine.idle.after_empty_polls,
                    max_sleep_us: engine.idle.max_sleep_us,
                }
            }
            other => {
                return Err(cx.err(
                    "engine.idle.mode",
                    format!("`{other}` is not an idle mode (expected \"busy\" or \"sleep\")"),
                ))
            }
        };
        if engine.mbufs < 1023 {
            return Err(cx.err(
                "engine.mbufs",
                format!("{} is too few (expected at least 1023)", engine.mbufs),
            ));
        }
        if !(2048..=16384).contains(&engine.mbuf_data_room) {
            return Err(cx.err(
                "engine.mbuf_data_room",
                format!(
                    "{} is out of range (expected 2048..=16384 bytes)",
                    engine.mbuf_data_room
                ),
            ));
        }
        if engine.mbuf_cache > 512 {
            return Err(cx.err(
                "engine.mbuf_cache",
                format!(
                    "{} is too large (DPDK allows at most 512)",
                    engine.mbuf_cache
                ),
            ));
        }
        if engine.mbuf_cache as u64 * 3 / 2 > engine.mbufs as u64 {
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
        let metrics = match &self.control.metrics {
            None => None,
            Some(m) => Some(m.parse::<SocketAddr>().map_err(|_| {
                cx.err(
                    "control.metrics",
                    format!("`{m}` is not an address and port (expected e.g. \"127.0.0.1:9797\")"),
                )
            })?),
        };
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
        let register = match &self.gateway {
            None => None,
            Some(g) => {
                let id = match g.id {
                    None => None,
                    Some(v) => Some(u32::try_from(v).map_err(|_| {
                        cx.err(
                            "gateway.id",
                            format!("{v} is out of range (expected 0..=4294967295)"),
                        )
                    })?),
                };
                let interval_s = match g.register_interval_s {
                    None => 60,
                    Some(v) => u16::try_from(v)
                        .ok()
                        .filter(|v| (1..=3600).contains(v))
                        .ok_or_else(|| {
                            cx.err(
                                "gateway.register_interval_s",
                                format!("{v} is out of range (expected 1..=3600 s)"),
                            )
                        })?,
                };
                let mut servers = Vec::new();
                for (i, r) in g.register.iter().enumerate() {
                    let a = r
                        .parse::<SocketAddrV4>()
                        .ok()
                        .filter(|a| !a.ip().is_unspecified() && a.port() != 0)
                        .ok_or_else(|| {
                            cx.err(
                                format!("gateway.register[{i}]"),
                                format!("`{r}` is not a DNS server's REGISTER address (expected \"a.b.c.d:port\")"),
                            )
                        })?;
                    if servers.contains(&a) {
                        return Err(cx.err(
                            format!("gateway.register[{i}]"),
                            format!("{a} is listed twice"),
                        ));
                    }
                    servers.push(a);
                }
                match (id, servers.is_empty()) {
                    (_, true) => None,
                    (None, false) => {
                        return Err(cx.err(
                            "gateway.id",
                            "missing: gateway.register needs the id the DNS servers know this gateway by ([[dns.gateway]] id)",
                        ))
                    }
                    (Some(id), false) => {
                        if control_keys.is_empty() {
                            return Err(cx.err(
                                "control.key",
                                "gateway.register needs at least one [[control.key]] (the last one signs REGISTER messages)",
                            ));
                        }
                        Some(RegisterSpec {
                            id,
                            servers,
                            interval_s,
                        })
                    }
                }
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
        if listen.is_some() && engine.role != Role::Waypoint {
            return Err(cx.err(
                "control.listen",
                "only a waypoint serves SETUP messages (engine.role = \"waypoint\")",
            ));
        }
        match engine.role {
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

        let dns = match self.dns {
            None => None,
            Some(d) => {
                // On a waypoint, [dns] is a DNS server co-located with it (`aves run`).
                let colocated = (engine.role == Role::Waypoint).then(|| Colocated {
                    pools: ports.iter().flat_map(|p| p.pools.clone()).collect(),
                    listen: listen.map(std::net::SocketAddr::V4),
                    metrics,
                });
                Some(d.validate(&cx, colocated.as_ref())?)
            }
        };

        Ok(Config {
            file: file.to_path_buf(),
            role: engine.role,
            eal_args: engine.eal_args,
            mbufs: engine.mbufs,
            mbuf_cache: engine.mbuf_cache,
            mbuf_data_room: engine.mbuf_data_room,
            idle,
            control_socket: self.control.socket,
            control_cpu: self.control.cpu,
            metrics,
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
            register,
            timeouts,
            dns,
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

// ---- [dns]: the AVES-aware DNS server ----

/// A DNS name as the config uses it: absolute, lower case.
pub type DnsName = hickory_proto::rr::Name;

/// `[dns.soa]`: the zone's SOA record (RFC 1035 §3.3.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoaSpec {
    /// Primary name server (default: the first `[[dns.ns]]`).
    pub mname: DnsName,
    /// Mailbox of the person responsible, as a name (default `hostmaster.<zone>`).
    pub rname: DnsName,
    /// Zone serial.
    pub serial: u32,
    /// Refresh interval, s.
    pub refresh: u32,
    /// Retry interval, s.
    pub retry: u32,
    /// Expiry, s.
    pub expire: u32,
    /// Negative-caching TTL, s (RFC 2308 §4).
    pub minimum: u32,
}

/// `[[dns.ns]]`: a name server of the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsSpec {
    /// Its name.
    pub name: DnsName,
    /// Its address; required when the name is inside the zone (the zone then answers
    /// A queries for it and adds it as glue to NS answers).
    pub address: Option<Ipv4Addr>,
}

/// `[[dns.waypoint]]`: a waypoint the server may hand out, and where to send SETUPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsWaypointSpec {
    /// The waypoint's control address (SETUP/ACCEPT/REJECT over UDP); `None`: the
    /// waypoint this DNS server is co-located with (`[dns]` in its config), reached
    /// in-process.
    pub control: Option<std::net::SocketAddr>,
    /// Its waypoint addresses (the pools it answers for).
    pub addresses: Vec<Ipv4Range>,
}

/// `[[dns.gateway]]`: an AVES-aware NAT gateway R.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsGatewaySpec {
    /// The id the gateway's REGISTER messages carry.
    pub id: u32,
    /// Its public address until a REGISTER says otherwise; `None`: unknown until then
    /// (its hosts answer SERVFAIL).
    pub address: Option<Ipv4Addr>,
    /// The keys its REGISTER messages may be signed with (`[[dns.gateway.key]]`, at
    /// most two: current and previous). None: its REGISTERs are refused.
    pub keys: Vec<KeySpec>,
}

/// `[[dns.host]]`: a responder B behind a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsHostSpec {
    /// Its name (absolute, strictly inside the zone).
    pub name: DnsName,
    /// The gateway it is behind.
    pub gateway_id: u32,
    /// Its private (reusable-IP) address.
    pub address: Ipv4Addr,
    /// How the gateway presents initiators to it.
    pub mode: Mode,
    /// Service names (`<label>.<name>`) that stand for the same host.
    pub services: Vec<DnsName>,
}

/// `[dns.nx_penalty]`: queriers that ask for names that do not exist are ignored for a
/// while (AVES paper §6.2: no scanning for host names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NxPenaltySpec {
    /// NXDOMAIN answers a querier may get within `window` before it is banned.
    pub threshold: u32,
    /// The counting window.
    pub window: std::time::Duration,
    /// How long a banned querier gets no answers at all.
    pub ban: std::time::Duration,
    /// Queriers tracked at once (a hard memory bound; when full, new queriers are not
    /// counted until old entries expire).
    pub max_tracked: usize,
}

/// `[dns.rrl]`: response rate limiting over UDP per client network, with slip (after
/// BIND's RRL; see `dns::limits::ResponseRateLimit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlSpec {
    /// Sustained answers per second to one client network.
    pub responses_per_s: u32,
    /// Bucket size: answers one network may get back to back.
    pub burst: u32,
    /// Over the rate, every `slip`-th answer is sent empty with TC=1 (0: none is).
    pub slip: u32,
    /// IPv4 client network prefix length.
    pub ipv4_prefix: u8,
    /// IPv6 client network prefix length.
    pub ipv6_prefix: u8,
    /// Client networks tracked at once (a hard memory bound; when full, the oldest is
    /// forgotten).
    pub max_tracked: usize,
    /// IPv4 networks never rate limited: the recursive resolvers the server expects
    /// (each speaks for many initiators), monitoring.
    pub exempt: Vec<Ipv4Cidr>,
}

/// `[dns.rate]`: session creation limit per responder (§6.2), a token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    /// Sustained sessions per second per responder.
    pub sessions_per_s: u32,
    /// Bucket size: sessions that may be created back to back.
    pub burst: u32,
}

/// The validated `[dns]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSpec {
    /// Where the server listens, UDP and TCP.
    pub listen: std::net::SocketAddr,
    /// The zone apex (absolute, lower case).
    pub zone: DnsName,
    /// TTL of the SOA, NS and glue records, s.
    pub ttl: u32,
    /// The SOA record.
    pub soa: SoaSpec,
    /// Name servers (at least one).
    pub ns: Vec<NsSpec>,
    /// Networks whose queriers are initiators themselves (intranet mode, §3.3.1).
    pub intranet: Vec<Ipv4Cidr>,
    /// Use EDNS Client Subnet (RFC 7871) as the initiator's identity when present.
    pub ecs: bool,
    /// Waypoints.
    pub waypoints: Vec<DnsWaypointSpec>,
    /// Gateways.
    pub gateways: Vec<DnsGatewaySpec>,
    /// Hosts (responders).
    pub hosts: Vec<DnsHostSpec>,
    /// Longest wait for a waypoint's ACCEPT before answering SERVFAIL (§5.1: 3 s).
    pub setup_timeout: std::time::Duration,
    /// A waypoint address given out in general mode is in its wait state this long
    /// (Twait, §3.3.2); the server gives it to no one else meanwhile.
    pub general_wait: std::time::Duration,
    /// How long the server remembers which waypoint address it bound for which
    /// initiator (to reuse it for the same responder and avoid it for others).
    pub grant_memory: std::time::Duration,
    /// SETUPs in flight at once; beyond it, host queries get SERVFAIL at once.
    pub max_pending: usize,
    /// The NXDOMAIN penalty.
    pub nx_penalty: NxPenaltySpec,
    /// The per-responder session rate.
    pub rate: RateSpec,
    /// Response rate limiting over UDP (None: `[dns.rrl] enabled = false`).
    pub rrl: Option<RrlSpec>,
    /// Keys to sign SETUP messages with (`[[dns.key]]`; the last one listed signs).
    /// None: the server answers host queries SERVFAIL (nothing to sign with).
    pub keys: Vec<KeySpec>,
    /// Where gateways' REGISTER messages are received (UDP); `None`: not at all.
    pub register_listen: Option<SocketAddrV4>,
    /// Where to serve Prometheus metrics over HTTP (`GET /metrics`); `None`: no listener.
    pub metrics: Option<std::net::SocketAddr>,
}

impl DnsSpec {
    /// The control address of the waypoint that owns waypoint address `w`.
    // The UDP binder of the control protocol (merged later) sends SETUPs there.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn waypoint_control(&self, w: Ipv4Addr) -> Option<std::net::SocketAddr> {
        self.waypoints
            .iter()
            .find(|p| p.addresses.iter().any(|r| r.contains(w)))
            .and_then(|p| p.control)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDns {
    listen: String,
    zone: String,
    ttl: Option<u32>,
    soa: Option<RawSoa>,
    #[serde(default)]
    ns: Vec<RawNs>,
    #[serde(default)]
    intranet: Vec<String>,
    ecs: Option<bool>,
    #[serde(default, rename = "waypoint")]
    waypoints: Vec<RawDnsWaypoint>,
    #[serde(default, rename = "gateway")]
    gateways: Vec<RawDnsGateway>,
    #[serde(default, rename = "host")]
    hosts: Vec<RawDnsHost>,
    setup_timeout_ms: Option<u64>,
    general_wait_ms: Option<u64>,
    grant_memory_s: Option<u64>,
    max_pending: Option<usize>,
    nx_penalty: Option<RawNxPenalty>,
    rate: Option<RawRate>,
    rrl: Option<RawRrl>,
    #[serde(default, rename = "key")]
    keys: Vec<RawKey>,
    register_listen: Option<String>,
    metrics: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSoa {
    mname: Option<String>,
    rname: Option<String>,
    serial: Option<u32>,
    refresh: Option<u32>,
    retry: Option<u32>,
    expire: Option<u32>,
    minimum: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNs {
    name: String,
    address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDnsWaypoint {
    control: Option<String>,
    addresses: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDnsGateway {
    id: i64,
    address: Option<String>,
    #[serde(default, rename = "key")]
    keys: Vec<RawKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDnsHost {
    name: String,
    gateway_id: i64,
    address: String,
    mode: Option<String>,
    #[serde(default)]
    services: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNxPenalty {
    threshold: Option<u32>,
    window_s: Option<u64>,
    ban_s: Option<u64>,
    max_tracked: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRrl {
    enabled: Option<bool>,
    responses_per_s: Option<u32>,
    burst: Option<u32>,
    slip: Option<u32>,
    ipv4_prefix: Option<u8>,
    ipv6_prefix: Option<u8>,
    max_tracked: Option<usize>,
    #[serde(default)]
    exempt: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    sessions_per_s: Option<u32>,
    burst: Option<u32>,
}

/// An optional address for an error message.
fn listen_text(a: Option<std::net::SocketAddr>) -> String {
    a.map_or_else(|| "not set".to_string(), |a| a.to_string())
}

/// Most waypoint addresses one DNS server hands out.
pub const MAX_DNS_WAYPOINT_ADDRESSES: u64 = 1 << 20;

/// Parses a DNS name; relative names are taken inside `origin` (when given).
fn dns_name(
    cx: &Ctx<'_>,
    key: &str,
    text: &str,
    origin: Option<&DnsName>,
) -> Result<DnsName, ConfigError> {
    let bad = |why: &str| cx.err(key, format!("`{text}` is not a DNS name ({why})"));
    if text.is_empty() || text == "." {
        return Err(bad("empty"));
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(bad("expected letters, digits, '-', '_' and dots"));
    }
    let name = DnsName::from_ascii(text).map_err(|e| bad(&e.to_string()))?;
    let name = if name.is_fqdn() {
        name
    } else {
        match origin {
            Some(o) => name
                .append_domain(o)
                .map_err(|e| bad(&format!("too long inside {o}: {e}")))?,
            None => {
                return Err(bad(
                    "expected an absolute name ending with '.', e.g. \"aves.example.\"",
                ))
            }
        }
    };
    Ok(name.to_lowercase())
}

fn dns_ipv4(cx: &Ctx<'_>, key: &str, text: &str) -> Result<Ipv4Addr, ConfigError> {
    text.parse::<Ipv4Addr>()
        .map_err(|_| cx.err(key, format!("`{text}` is not an IPv4 address")))
}

fn in_range<T: PartialOrd + fmt::Display + Copy>(
    cx: &Ctx<'_>,
    key: &str,
    v: T,
    lo: T,
    hi: T,
    unit: &str,
) -> Result<T, ConfigError> {
    if lo <= v && v <= hi {
        Ok(v)
    } else {
        Err(cx.err(
            key,
            format!("{v} is out of range (expected {lo}..={hi}{unit})"),
        ))
    }
}

/// What `[dns]` in a waypoint's config must agree with: the DNS server runs inside
/// `aves run` with this waypoint and hands out only its addresses.
struct Colocated {
    /// The waypoint's pools (every port's).
    pools: Vec<Ipv4Range>,
    /// `[control] listen`: the waypoint's SETUP service over UDP, if any.
    listen: Option<std::net::SocketAddr>,
    /// `[control] metrics`.
    metrics: Option<std::net::SocketAddr>,
}

impl RawDns {
    /// Checks every value; `colocated`: the waypoint this DNS server runs with, when
    /// `[dns]` is in a waypoint's config.
    fn validate(self, cx: &Ctx<'_>, colocated: Option<&Colocated>) -> Result<DnsSpec, ConfigError> {
        use std::time::Duration;
        let keys = parse_keys(
            cx,
            cx.file.parent().unwrap_or(Path::new(".")),
            "dns.key",
            &self.keys,
            2,
        )?;
        if let Some(i) = keys.iter().position(|k| k.gateway.is_some()) {
            return Err(cx.err(
                format!("dns.key[{i}].gateway"),
                "not allowed (the DNS server's keys sign its SETUP messages)",
            ));
        }
        let listen: std::net::SocketAddr = self.listen.parse().map_err(|_| {
            cx.err(
                "dns.listen",
                format!(
                    "`{}` is not an address and port (expected e.g. \"0.0.0.0:53\")",
                    self.listen
                ),
            )
        })?;
        if listen.port() == 0 {
            return Err(cx.err("dns.listen", "port 0 (expected 1..=65535)"));
        }
        let metrics = match &self.metrics {
            None => None,
            Some(m) => Some(m.parse::<std::net::SocketAddr>().map_err(|_| {
                cx.err(
                    "dns.metrics",
                    format!("`{m}` is not an address and port (expected e.g. \"127.0.0.1:9798\")"),
                )
            })?),
        };
        if let Some(c) = colocated {
            if c.listen == Some(listen) {
                return Err(cx.err(
                    "dns.listen",
                    format!("{listen} is also control.listen (the SETUP service's UDP socket); use another port"),
                ));
            }
            if metrics.is_some() && c.metrics == metrics {
                return Err(cx.err(
                    "dns.metrics",
                    format!(
                        "{} is also control.metrics (the waypoint's /metrics); use another port",
                        listen_text(metrics)
                    ),
                ));
            }
        }
        let zone = dns_name(cx, "dns.zone", &self.zone, None)?;
        let ttl = in_range(cx, "dns.ttl", self.ttl.unwrap_or(3600), 1, 604_800, " s")?;

        // Every name the zone answers for, to find duplicates.
        let mut names: Vec<(DnsName, String)> = Vec::new();
        let mut claim = |name: &DnsName, key: String| -> Result<(), ConfigError> {
            if name == &zone {
                return Err(cx.err(
                    key,
                    format!("{name} is the zone apex (expected a name below it)"),
                ));
            }
            if let Some((_, other)) = names.iter().find(|(n, _)| n == name) {
                return Err(cx.err(key, format!("{name} is already defined by {other}")));
            }
            names.push((name.clone(), key));
            Ok(())
        };

        if self.ns.is_empty() {
            return Err(cx.err(
                "dns.ns",
                "no name servers (expected at least one [[dns.ns]] with a name)",
            ));
        }
        let mut ns = Vec::new();
        for (i, n) in self.ns.iter().enumerate() {
            let key = |f: &str| format!("dns.ns[{i}].{f}");
            let name = dns_name(cx, &key("name"), &n.name, Some(&zone))?;
            let inside = zone.zone_of(&name);
            let address = match &n.address {
                Some(a) => Some(dns_ipv4(cx, &key("address"), a)?),
                None if inside => {
                    return Err(cx.err(
                        key("address"),
                        format!(
                            "missing ({name} is inside the zone, so the zone needs its address)"
                        ),
                    ))
                }
                None => None,
            };
            if inside {
                claim(&name, key("name"))?;
            } else if address.is_some() {
                return Err(cx.err(
                    key("address"),
                    format!("{name} is outside the zone; its address is not ours to give"),
                ));
            }
            ns.push(NsSpec { name, address });
        }

        let raw_soa = self.soa.unwrap_or_default();
        let soa = SoaSpec {
            mname: match &raw_soa.mname {
                Some(m) => dns_name(cx, "dns.soa.mname", m, Some(&zone))?,
                None => ns[0].name.clone(),
            },
            rname: match &raw_soa.rname {
                Some(r) => dns_name(cx, "dns.soa.rname", r, Some(&zone))?,
                None => dns_name(cx, "dns.soa.rname", "hostmaster", Some(&zone))?,
            },
            serial: raw_soa.serial.unwrap_or(1),
            refresh: in_range(
                cx,
                "dns.soa.refresh",
                raw_soa.refresh.unwrap_or(3600),
                1,
                i32::MAX as u32,
                " s",
            )?,
            retry: in_range(
                cx,
                "dns.soa.retry",
                raw_soa.retry.unwrap_or(600),
                1,
                i32::MAX as u32,
                " s",
            )?,
            expire: in_range(
                cx,
                "dns.soa.expire",
                raw_soa.expire.unwrap_or(604_800),
                1,
                i32::MAX as u32,
                " s",
            )?,
            minimum: in_range(
                cx,
                "dns.soa.minimum",
                raw_soa.minimum.unwrap_or(60),
                0,
                86_400,
                " s",
            )?,
        };

        let mut intranet = Vec::new();
        for (i, c) in self.intranet.iter().enumerate() {
            let c: Ipv4Cidr = c
                .parse()
                .map_err(|e| cx.err(format!("dns.intranet[{i}]"), format!("{e}")))?;
            intranet.push(c.network());
        }

        let mut waypoints: Vec<DnsWaypointSpec> = Vec::new();
        let mut total: u64 = 0;
        for (i, w) in self.waypoints.iter().enumerate() {
            let key = |f: &str| format!("dns.waypoint[{i}].{f}");
            let control = match &w.control {
                None if colocated.is_some() => None,
                None => {
                    return Err(cx.err(
                        key("control"),
                        "missing (expected the waypoint's SETUP address, its control.listen, e.g. \"192.0.2.1:4798\")",
                    ))
                }
                Some(text) => {
                    let control: std::net::SocketAddr = text.parse().map_err(|_| {
                        cx.err(
                            key("control"),
                            format!(
                                "`{text}` is not an address and port (expected e.g. \"192.0.2.1:4500\")"
                            ),
                        )
                    })?;
                    if control.port() == 0 {
                        return Err(cx.err(key("control"), "port 0 (expected 1..=65535)"));
                    }
                    if let Some(c) = colocated {
                        if c.listen != Some(control) {
                            return Err(cx.err(
                                key("control"),
                                format!(
                                    "{control} is not this waypoint (its control.listen is {}): a DNS server in a waypoint's config runs with that waypoint and hands out only its addresses; leave control out, or run a separate `aves dns` for other waypoints",
                                    listen_text(c.listen)
                                ),
                            ));
                        }
                    }
                    Some(control)
                }
            };
            if w.addresses.is_empty() {
                return Err(cx.err(
                    key("addresses"),
                    "empty (expected waypoint addresses or ranges)",
                ));
            }
            let mut addresses: Vec<Ipv4Range> = Vec::new();
            for (j, a) in w.addresses.iter().enumerate() {
                let k = format!("dns.waypoint[{i}].addresses[{j}]");
                let r: Ipv4Range = match a.parse::<Ipv4Addr>() {
                    Ok(ip) => Ipv4Range {
                        first: ip,
                        last: ip,
                    },
                    Err(_) => a.parse().map_err(|e| cx.err(&k, format!("{e}")))?,
                };
                let overlaps = |o: &Ipv4Range| {
                    o.contains(r.first) || o.contains(r.last) || r.contains(o.first)
                };
                if addresses.iter().any(overlaps)
                    || waypoints.iter().any(|p| p.addresses.iter().any(overlaps))
                {
                    return Err(cx.err(k, format!("`{a}` overlaps addresses given before")));
                }
                if let Some(c) = colocated {
                    if !c
                        .pools
                        .iter()
                        .any(|p| p.contains(r.first) && p.contains(r.last))
                    {
                        return Err(cx.err(
                            k,
                            format!(
                                "`{a}` is not in this waypoint's pools ({}): a DNS server in a waypoint's config hands out only its addresses",
                                c.pools.iter().map(|p| format!("{}-{}", p.first, p.last)).collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                }
                total += r.count();
                addresses.push(r);
            }
            waypoints.push(DnsWaypointSpec { control, addresses });
        }
        if let (Some(c), true) = (colocated, waypoints.is_empty()) {
            // Co-located and no [[dns.waypoint]]: every address of this waypoint.
            total = c.pools.iter().map(Ipv4Range::count).sum();
            if !c.pools.is_empty() {
                waypoints.push(DnsWaypointSpec {
                    control: None,
                    addresses: c.pools.clone(),
                });
            }
        }
        if total > MAX_DNS_WAYPOINT_ADDRESSES {
            return Err(cx.err(
                "dns.waypoint",
                format!("{total} waypoint addresses (at most {MAX_DNS_WAYPOINT_ADDRESSES})"),
            ));
        }

        let mut gateways: Vec<DnsGatewaySpec> = Vec::new();
        for (i, g) in self.gateways.iter().enumerate() {
            let key = |f: &str| format!("dns.gateway[{i}].{f}");
            let id = u32::try_from(g.id).map_err(|_| {
                cx.err(
                    key("id"),
                    format!("{} is out of range (expected 0..=4294967295)", g.id),
                )
            })?;
            if gateways.iter().any(|o| o.id == id) {
                return Err(cx.err(key("id"), format!("duplicate gateway id {id}")));
            }
            let address = match &g.address {
                None => None,
                Some(a) => Some(dns_ipv4(cx, &key("address"), a)?),
            };
            let gkeys = parse_keys(
                cx,
                cx.file.parent().unwrap_or(Path::new(".")),
                &format!("dns.gateway[{i}].key"),
                &g.keys,
                2,
            )?;
            if let Some(j) = gkeys.iter().position(|k| k.gateway.is_some()) {
                return Err(cx.err(
                    format!("dns.gateway[{i}].key[{j}].gateway"),
                    "not allowed (the key belongs to this [[dns.gateway]])",
                ));
            }
            gateways.push(DnsGatewaySpec {
                id,
                address,
                keys: gkeys,
            });
        }
        let register_listen = match &self.register_listen {
            None => None,
            Some(l) => Some(parse_listen(l).ok_or_else(|| {
                cx.err(
                    "dns.register_listen",
                    format!("`{l}` is not an address to listen on (expected \"a.b.c.d:port\" or \"a.b.c.d\", not 0.0.0.0)"),
                )
            })?),
        };
        if register_listen.is_some() && gateways.iter().all(|g| g.keys.is_empty()) {
            return Err(cx.err(
                "dns.register_listen",
                "no [[dns.gateway]] has a [[dns.gateway.key]]: every REGISTER would be refused",
            ));
        }

        let mut hosts = Vec::new();
        for (i, h) in self.hosts.iter().enumerate() {
            let key = |f: &str| format!("dns.host[{i}].{f}");
            let name = dns_name(cx, &key("name"), &h.name, Some(&zone))?;
            if !zone.zone_of(&name) {
                return Err(cx.err(key("name"), format!("{name} is outside the zone {zone}")));
            }
            claim(&name, key("name"))?;
            let gateway_id = u32::try_from(h.gateway_id)
                .ok()
                .filter(|id| gateways.iter().any(|g| g.id == *id))
                .ok_or_else(|| {
                    let ids: Vec<String> = gateways.iter().map(|g| g.id.to_string()).collect();
                    cx.err(
                        key("gateway_id"),
                        format!(
                            "no [[dns.gateway]] with id {} (ids: {})",
                            h.gateway_id,
                            ids.join(", ")
                        ),
                    )
                })?;
            let address = dns_ipv4(cx, &key("address"), &h.address)?;
            let mode = match h.mode.as_deref() {
                None | Some("plain") => Mode::Plain,
                Some("multihoming") => Mode::MultiHoming,
                Some(m) => {
                    return Err(cx.err(
                        key("mode"),
                        format!("`{m}` is not a mode (expected \"plain\" or \"multihoming\")"),
                    ))
                }
            };
            let mut services = Vec::new();
            for (j, s) in h.services.iter().enumerate() {
                let k = format!("dns.host[{i}].services[{j}]");
                if s.is_empty() || s.contains('.') {
                    return Err(cx.err(
                        k,
                        format!("`{s}` is not one label (expected e.g. \"tcp22\")"),
                    ));
                }
                let full = dns_name(cx, &k, s, Some(&name))?;
                claim(&full, k)?;
                services.push(full);
            }
            hosts.push(DnsHostSpec {
                name,
                gateway_id,
                address,
                mode,
                services,
            });
        }
        if !hosts.is_empty() && waypoints.is_empty() {
            return Err(cx.err(
                "dns.waypoint",
                "hosts are configured but no [[dns.waypoint]] (expected at least one)",
            ));
        }

        let ms = |k: &str, v: Option<u64>, d: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(in_range(
                cx,
                k,
                v.unwrap_or(d),
                1,
                60_000,
                " ms",
            )?))
        };
        let setup_timeout = ms("dns.setup_timeout_ms", self.setup_timeout_ms, 3000)?;
        let general_wait = ms("dns.general_wait_ms", self.general_wait_ms, 2000)?;
        let grant_memory = Duration::from_secs(in_range(
            cx,
            "dns.grant_memory_s",
            self.grant_memory_s.unwrap_or(120),
            1,
            86_400,
            " s",
        )?);
        let max_pending = in_range(
            cx,
            "dns.max_pending",
            self.max_pending.unwrap_or(1024),
            1,
            1 << 16,
            "",
        )?;

        let nx = self.nx_penalty.unwrap_or_default();
        let nx_penalty = NxPenaltySpec {
            threshold: in_range(
                cx,
                "dns.nx_penalty.threshold",
                nx.threshold.unwrap_or(20),
                1,
                1 << 20,
                "",
            )?,
            window: Duration::from_secs(in_range(
                cx,
                "dns.nx_penalty.window_s",
                nx.window_s.unwrap_or(60),
                1,
                86_400,
                " s",
            )?),
            ban: Duration::from_secs(in_range(
                cx,
                "dns.nx_penalty.ban_s",
                nx.ban_s.unwrap_or(600),
                1,
                7 * 86_400,
                " s",
            )?),
            max_tracked: in_range(
                cx,
                "dns.nx_penalty.max_tracked",
                nx.max_tracked.unwrap_or(65_536),
                1,
                1 << 24,
                "",
            )?,
        };
        let r = self.rate.unwrap_or_default();
        let sessions_per_s = in_range(
            cx,
            "dns.rate.sessions_per_s",
            r.sessions_per_s.unwrap_or(50),
            1,
            1_000_000,
            "",
        )?;
        let rate = RateSpec {
            sessions_per_s,
            burst: in_range(
                cx,
                "dns.rate.burst",
                r.burst.unwrap_or(sessions_per_s.saturating_mul(2)),
                1,
                10_000_000,
                "",
            )?,
        };
        let q = self.rrl.unwrap_or_default();
        let mut exempt = Vec::new();
        for (i, c) in q.exempt.iter().enumerate() {
            let c: Ipv4Cidr = c
                .parse()
                .map_err(|e| cx.err(format!("dns.rrl.exempt[{i}]"), format!("{e}")))?;
            exempt.push(c.network());
        }
        let responses_per_s = in_range(
            cx,
            "dns.rrl.responses_per_s",
            q.responses_per_s.unwrap_or(20),
            1,
            1_000_000,
            "",
        )?;
        let rrl = RrlSpec {
            responses_per_s,
            burst: in_range(
                cx,
                "dns.rrl.burst",
                q.burst.unwrap_or(responses_per_s.saturating_mul(2)),
                1,
                10_000_000,
                "",
            )?,
            slip: in_range(cx, "dns.rrl.slip", q.slip.unwrap_or(2), 0, 10, "")?,
            ipv4_prefix: in_range(
                cx,
                "dns.rrl.ipv4_prefix",
                q.ipv4_prefix.unwrap_or(24),
                8,
                32,
                "",
            )?,
            ipv6_prefix: in_range(
                cx,
                "dns.rrl.ipv6_prefix",
                q.ipv6_prefix.unwrap_or(56),
                16,
                128,
                "",
            )?,
            max_tracked: in_range(
                cx,
                "dns.rrl.max_tracked",
                q.max_tracked.unwrap_or(65_536),
                1,
                1 << 24,
                "",
            )?,
            exempt,
        };
        let rrl = q.enabled.unwrap_or(true).then_some(rrl);

        Ok(DnsSpec {
            listen,
            zone,
            ttl,
            soa,
            ns,
            intranet,
            ecs: self.ecs.unwrap_or(true),
            waypoints,
            gateways,
            hosts,
            setup_timeout,
            general_wait,
            grant_memory,
            max_pending,
            nx_penalty,
            rate,
            rrl,
            keys,
            register_listen,
            metrics,
        })
    }
}

/// Reads the `[dns]` section of a file for `aves dns`. The file may be a full engine
/// config with a `[dns]` section (validated whole) or hold only `[dns]`.
pub fn load_dns(path: &Path) -> Result<DnsSpec, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        key: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    parse_dns(path, &text)
}

/// Parses config text for `aves dns` (see [`load_dns`]); `path` is used in errors.
pub fn parse_dns(path: &Path, text: &str) -> Result<DnsSpec, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        key: String::new(),
        message: toml_message(text, &e),
    })?;
    let cx = Ctx { file: path };
    if raw.engine.is_some() {
        let given = raw.dns.as_ref().map_or(0, |d| d.waypoints.len());
        let dns = raw
            .validate(path)?
            .dns
            .ok_or_else(|| cx.err("dns", "missing (expected a [dns] section)"))?;
        if let Some(i) = dns.waypoints.iter().position(|w| w.control.is_none()) {
            let key = if given == 0 {
                "dns.waypoint".to_string()
            } else {
                format!("dns.waypoint[{i}].control")
            };
            return Err(cx.err(
                key,
                "no control address: this [dns] is co-located with the waypoint and reaches it in-process; run it with `aves run`, or give `aves dns` a [[dns.waypoint]] with control = the waypoint's control.listen",
            ));
        }
        return Ok(dns);
    }
    let engine_only = [
        ("port", !raw.ports.is_empty()),
        ("route", !raw.routes.is_empty()),
        ("neighbour", !raw.neighbours.is_empty()),
        ("binding", !raw.bindings.is_empty()),
        ("gateway", raw.gateway.is_some()),
        ("tunnel.key", !raw.tunnel.keys.is_empty()),
    ];
    if let Some((key, _)) = engine_only.iter().find(|(_, present)| *present) {
        return Err(cx.err(
            *key,
            "belongs to an engine config, which needs [engine] (a DNS-only file holds [dns])",
        ));
    }
    match raw.dns {
        Some(d) => d.validate(&cx, None),
        None => Err(cx.err("dns", "missing (expected a [dns] section)")),
    }
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
            (
                "socket = \"/tmp/aves-test.sock\"",
                "socket = \"/tmp/aves-test.sock\"\nmetrics = \"localhost\"",
                "control.metrics",
            ),
            (
                "socket = \"/tmp/aves-test.sock\"",
                "socket = \"/tmp/aves-test.sock\"\nmetrics = \"127.0.0.1:99999\"",
                "control.metrics",
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
    fn metrics_address_is_optional() {
        assert_eq!(p(GOOD).unwrap().metrics, None, "absent: no listener");
        let c = p(&GOOD.replace(
            "socket = \"/tmp/aves-test.sock\"",
            "socket = \"/tmp/aves-test.sock\"\nmetrics = \"127.0.0.1:9797\"",
        ))
        .unwrap();
        assert_eq!(c.metrics, Some("127.0.0.1:9797".parse().unwrap()));
        let c = p(&GOOD.replace(
            "socket = \"/tmp/aves-test.sock\"",
            "socket = \"/tmp/aves-test.sock\"\nmetrics = \"[::1]:9100\"",
        ))
        .unwrap();
        assert_eq!(c.metrics, Some("[::1]:9100".parse().unwrap()));
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
                // waypoint-dns.toml is for `aves run` (co-located); dns.toml for `aves dns`.
                if path.file_name().and_then(|x| x.to_str()) == Some("dns.toml") {
                    load_dns(&path).unwrap_or_else(|e| panic!("{e}"));
                } else {
                    load(&path).unwrap_or_else(|e| panic!("{e}"));
                }
                n += 1;
            }
        }
        assert!(n >= 4, "router, waypoint, gateway and dns examples");
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
    fn gateway_registration_rules() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let g = std::fs::read_to_string(dir.join("gateway.toml")).unwrap();
        let c = p(&g).unwrap();
        let r = c.register.clone().unwrap();
        assert_eq!(
            (r.id, r.servers.clone(), r.interval_s),
            (1, vec!["172.16.1.1:4799".parse().unwrap()], 60)
        );
        assert_eq!(c.control.keys.last().unwrap().id, 9);
        // Without register: no registration, whatever else is there.
        let c = p(&g.replace("register = [\"172.16.1.1:4799\"]", "")).unwrap();
        assert_eq!(c.register, None);
        let cases: &[(&str, &str, &str)] = &[
            ("id = 1\nregister", "id = -1\nregister", "gateway.id"),
            (
                "id = 1\nregister",
                "id = 4294967296\nregister",
                "gateway.id",
            ),
            ("id = 1\nregister", "register", "gateway.id"),
            (
                "\"172.16.1.1:4799\"",
                "\"172.16.1.1\"",
                "gateway.register[0]",
            ),
            (
                "\"172.16.1.1:4799\"",
                "\"172.16.1.1:4799\", \"172.16.1.1:4799\"",
                "gateway.register[1]",
            ),
            (
                "\"172.16.1.1:4799\"",
                "\"0.0.0.0:4799\"",
                "gateway.register[0]",
            ),
            (
                "register_interval_s = 60",
                "register_interval_s = 0",
                "gateway.register_interval_s",
            ),
            (
                "register_interval_s = 60",
                "register_interval_s = 3601",
                "gateway.register_interval_s",
            ),
            (
                "[[control.key]]\nid = 9",
                "[[control.key]]\nid = 900",
                "control.key[0].id",
            ),
        ];
        for (from, to, key) in cases {
            assert!(g.contains(from), "{from}");
            let e = p(&g.replacen(from, to, 1)).unwrap_err();
            assert_eq!(e.key, *key, "{from} -> {to}: {e}");
        }
        // No key to sign with.
        let start = g.find("\n[[control.key]]").unwrap();
        let e = p(&g[..start]).unwrap_err();
        assert_eq!(e.key, "control.key", "{e}");
        assert!(e.message.contains("REGISTER"), "{e}");
    }

    #[test]
    fn dns_register_keys_and_listen() {
        let key = "\n[[dns.gateway.key]]\nid = 3\nalgorithm = \"hmac-sha256-128\"\nsecret = \"00112233445566778899aabbccddeeff\"\n";
        let with_key = DNS.replacen(
            "address = \"203.0.113.7\"\n",
            &format!("address = \"203.0.113.7\"\n{key}"),
            1,
        );
        let d = pd(&with_key.replacen(
            "intranet",
            "register_listen = \"127.0.0.1:4799\"\nintranet",
            1,
        ))
        .unwrap();
        assert_eq!(d.register_listen, Some("127.0.0.1:4799".parse().unwrap()));
        assert_eq!(d.gateways[0].keys.len(), 1);
        assert_eq!(d.gateways[0].keys[0].id, 3);
        assert!(d.gateways[1].keys.is_empty());
        assert_eq!(pd(&with_key).unwrap().register_listen, None);
        // A listener without any gateway key would refuse everything.
        let e = pd(&DNS.replacen(
            "intranet",
            "register_listen = \"127.0.0.1:4799\"\nintranet",
            1,
        ))
        .unwrap_err();
        assert_eq!(e.key, "dns.register_listen", "{e}");
        let e = pd(&with_key.replacen("intranet", "register_listen = \"0.0.0.0:1\"\nintranet", 1))
            .unwrap_err();
        assert_eq!(e.key, "dns.register_listen", "{e}");
        let e = pd(&with_key.replacen("id = 3", "id = 256", 1)).unwrap_err();
        assert_eq!(e.key, "dns.gateway[0].key[0].id", "{e}");
        let e = pd(&with_key.replacen("secret = \"0011", "secret = \"zz11", 1)).unwrap_err();
        assert_eq!(e.key, "dns.gateway[0].key[0].secret", "{e}");
        let e = pd(&with_key.replacen("id = 3", "id = 3\ngateway = \"192.0.2.1\"", 1)).unwrap_err();
        assert_eq!(e.key, "dns.gateway[0].key[0].gateway", "{e}");
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

    const DNS: &str = r#"
[dns]
listen = "127.0.0.1:5353"
zone = "Aves.Example."
intranet = ["10.1.0.7/16"]

[[dns.ns]]
name = "ns1"
address = "192.0.2.53"

[[dns.ns]]
name = "ns.elsewhere.example."

[[dns.waypoint]]
control = "192.0.2.10:4500"
addresses = ["198.51.100.10-198.51.100.17", "198.51.100.30"]

[[dns.gateway]]
id = 7
address = "203.0.113.7"

[[dns.gateway]]
id = 8

[[dns.host]]
name = "b.home1"
gateway_id = 7
address = "192.168.1.10"
services = ["tcp22"]

[[dns.host]]
name = "c.home2.aves.example."
gateway_id = 8
address = "192.168.2.10"
mode = "multihoming"
"#;

    fn pd(text: &str) -> Result<DnsSpec, ConfigError> {
        parse_dns(Path::new("d.toml"), text)
    }

    #[test]
    fn dns_only_file_parses_with_defaults() {
        let d = pd(DNS).unwrap();
        assert_eq!(d.listen, "127.0.0.1:5353".parse().unwrap());
        assert_eq!(d.zone.to_string(), "aves.example.", "lower case, absolute");
        assert_eq!(d.ttl, 3600);
        assert_eq!(d.ns[0].name.to_string(), "ns1.aves.example.");
        assert_eq!(d.ns[1].address, None);
        assert_eq!(d.soa.mname.to_string(), "ns1.aves.example.");
        assert_eq!(d.soa.rname.to_string(), "hostmaster.aves.example.");
        assert_eq!((d.soa.serial, d.soa.minimum), (1, 60));
        assert_eq!(d.intranet[0].to_string(), "10.1.0.0/16");
        assert!(d.ecs);
        assert_eq!(d.waypoints[0].addresses.len(), 2);
        assert_eq!(d.waypoints[0].addresses[1].count(), 1);
        assert_eq!(
            d.waypoint_control(Ipv4Addr::new(198, 51, 100, 30)),
            Some("192.0.2.10:4500".parse().unwrap())
        );
        assert_eq!(d.waypoint_control(Ipv4Addr::new(198, 51, 100, 20)), None);
        assert_eq!(d.gateways[1].address, None);
        assert_eq!(d.hosts[0].name.to_string(), "b.home1.aves.example.");
        assert_eq!(d.hosts[0].mode, Mode::Plain);
        assert_eq!(
            d.hosts[0].services[0].to_string(),
            "tcp22.b.home1.aves.example."
        );
        assert_eq!(d.hosts[1].mode, Mode::MultiHoming);
        assert_eq!(d.setup_timeout, std::time::Duration::from_secs(3));
        assert_eq!(d.general_wait, std::time::Duration::from_secs(2));
        assert_eq!(d.nx_penalty.threshold, 20);
        assert_eq!(d.nx_penalty.ban, std::time::Duration::from_secs(600));
        assert_eq!((d.rate.sessions_per_s, d.rate.burst), (50, 100));
        assert_eq!(d.metrics, None);
        let m = pd(&DNS.replace(
            "listen = \"127.0.0.1:5353\"",
            "listen = \"127.0.0.1:5353\"\nmetrics = \"127.0.0.1:9798\"",
        ))
        .unwrap();
        assert_eq!(m.metrics, Some("127.0.0.1:9798".parse().unwrap()));
        let rrl = d.rrl.unwrap();
        assert_eq!((rrl.responses_per_s, rrl.burst, rrl.slip), (20, 40, 2));
        assert_eq!((rrl.ipv4_prefix, rrl.ipv6_prefix), (24, 56));
        assert!(rrl.exempt.is_empty());
        let ex = pd(&DNS.replace(
            "[dns]\n",
            "[dns]\nrrl = { exempt = [\"192.0.2.53/32\", \"10.9.8.7/16\"] }\n",
        ))
        .unwrap();
        assert_eq!(
            ex.rrl.unwrap().exempt,
            vec![
                "192.0.2.53/32".parse().unwrap(),
                "10.9.0.0/16".parse().unwrap()
            ]
        );
        let off = pd(&DNS.replace("[dns]\n", "[dns]\nrrl = { enabled = false }\n")).unwrap();
        assert_eq!(off.rrl, None);
    }

    #[test]
    fn dns_section_in_an_engine_config() {
        let text = format!("{GOOD}\n{DNS}");
        let c = p(&text).unwrap();
        assert_eq!(c.dns.as_ref().unwrap().hosts.len(), 2);
        assert_eq!(pd(&text).unwrap(), c.dns.unwrap());
        assert!(p(GOOD).unwrap().dns.is_none());
        assert_eq!(pd(GOOD).unwrap_err().key, "dns");
        // An engine-only file without [engine] is refused by both loaders.
        assert_eq!(p(DNS).unwrap_err().key, "engine");
        let e = pd(&format!(
            "{DNS}\n[[port]]\nname = \"a\"\ndevice = \"net_null0\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "port");
        assert_eq!(pd("").unwrap_err().key, "dns");
    }

    /// `[dns]` in a waypoint's config: the co-located DNS server (decision 0012).
    #[test]
    fn dns_co_located_with_a_waypoint() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let text = std::fs::read_to_string(dir.join("waypoint-dns.toml")).unwrap();
        let c = p(&text).unwrap();
        let d = c.dns.as_ref().unwrap();
        // No [[dns.waypoint]]: this waypoint's pools, reached in-process.
        assert_eq!(d.waypoints.len(), 1);
        assert_eq!(d.waypoints[0].control, None);
        assert_eq!(
            d.waypoints[0].addresses,
            vec!["203.0.113.100-203.0.113.115".parse().unwrap()]
        );
        // `aves dns` cannot serve it: it has no way to the waypoint but in-process.
        assert_eq!(pd(&text).unwrap_err().key, "dns.waypoint");
        // A [[dns.waypoint]] with part of the pool, no control: fine.
        let part = text.replace(
            "[[dns.gateway]]",
            "[[dns.waypoint]]\naddresses = [\"203.0.113.108-203.0.113.115\"]\n\n[[dns.gateway]]",
        );
        let d = p(&part).unwrap().dns.unwrap();
        assert_eq!(d.waypoints[0].control, None);
        assert_eq!(
            d.waypoints[0].addresses[0].first,
            Ipv4Addr::new(203, 0, 113, 108)
        );
        // Addresses outside the pools are another waypoint's.
        let e = p(&part.replace("203.0.113.108-203.0.113.115", "203.0.113.110-203.0.113.120"))
            .unwrap_err();
        assert_eq!(e.key, "dns.waypoint[0].addresses[0]", "{e}");
        assert!(e.message.contains("not in this waypoint's pools"), "{e}");
        // A control address is another waypoint's unless it is this one's listen.
        let other = part.replace(
            "[[dns.waypoint]]\n",
            "[[dns.waypoint]]\ncontrol = \"172.16.0.9:4798\"\n",
        );
        let e = p(&other).unwrap_err();
        assert_eq!(e.key, "dns.waypoint[0].control", "{e}");
        assert!(e.message.contains("not this waypoint"), "{e}");
        let listening = other.replace(
            "socket = \"/run/aves/waypoint-dns.sock\"",
            "socket = \"/run/aves/waypoint-dns.sock\"\nlisten = \"172.16.0.9:4798\"\nmetrics = \"172.16.0.2:9797\"\n\n[[control.key]]\nid = 1\nsecret = \"00112233445566778899aabbccddeeff\"\n",
        );
        let c = p(&listening).unwrap();
        let d = c.dns.as_ref().unwrap();
        assert_eq!(
            d.waypoints[0].control,
            c.control.listen.map(std::net::SocketAddr::V4)
        );
        // With a control address `aves dns` could serve it too.
        assert!(pd(&listening).is_ok());
        // The DNS server and the SETUP service cannot share a socket, nor the two
        // metrics servers one.
        let e = p(&listening.replace("listen = \"172.16.0.2:53\"", "listen = \"172.16.0.9:4798\""))
            .unwrap_err();
        assert_eq!(e.key, "dns.listen", "{e}");
        let e = p(&listening.replace(
            "# metrics = \"172.16.0.2:9798\"",
            "metrics = \"172.16.0.2:9797\"",
        ))
        .unwrap_err();
        assert_eq!(e.key, "dns.metrics", "{e}");
        // Elsewhere (not co-located) a [[dns.waypoint]] needs its control address.
        let e = pd(&DNS.replace("control = \"192.0.2.10:4500\"\n", "")).unwrap_err();
        assert_eq!(e.key, "dns.waypoint[0].control", "{e}");
    }

    /// Each bad `[dns]` value is reported with its key.
    #[test]
    fn bad_dns_configs_name_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("\"127.0.0.1:5353\"", "\"127.0.0.1\"", "dns.listen"),
            ("\"127.0.0.1:5353\"", "\"127.0.0.1:0\"", "dns.listen"),
            (
                "listen = \"127.0.0.1:5353\"",
                "listen = \"127.0.0.1:5353\"\nmetrics = \"localhost\"",
                "dns.metrics",
            ),
            (
                "zone = \"Aves.Example.\"",
                "zone = \"aves.example\"",
                "dns.zone",
            ),
            (
                "zone = \"Aves.Example.\"",
                "zone = \"a b.example.\"",
                "dns.zone",
            ),
            ("zone = \"Aves.Example.\"", "zone = \".\"", "dns.zone"),
            ("\"10.1.0.7/16\"", "\"10.1.0.7/40\"", "dns.intranet[0]"),
            (
                "address = \"192.0.2.53\"",
                "address = \"192.0.2\"",
                "dns.ns[0].address",
            ),
            ("address = \"192.0.2.53\"\n", "\n", "dns.ns[0].address"),
            ("name = \"ns1\"", "name = \"b.home1\"", "dns.host[0].name"),
            (
                "name = \"ns1\"",
                "name = \"aves.example.\"",
                "dns.ns[0].name",
            ),
            (
                "\"192.0.2.10:4500\"",
                "\"192.0.2.10\"",
                "dns.waypoint[0].control",
            ),
            (
                "\"198.51.100.30\"",
                "\"198.51.100.17\"",
                "dns.waypoint[0].addresses[1]",
            ),
            (
                "\"198.51.100.30\"",
                "\"198.51.100.300\"",
                "dns.waypoint[0].addresses[1]",
            ),
            (
                "addresses = [\"198.51.100.10-198.51.100.17\", \"198.51.100.30\"]",
                "addresses = []",
                "dns.waypoint[0].addresses",
            ),
            ("id = 8", "id = 7", "dns.gateway[1].id"),
            ("id = 8", "id = -1", "dns.gateway[1].id"),
            (
                "address = \"203.0.113.7\"",
                "address = \"x\"",
                "dns.gateway[0].address",
            ),
            ("gateway_id = 8", "gateway_id = 9", "dns.host[1].gateway_id"),
            (
                "address = \"192.168.2.10\"",
                "address = \"192.168.2\"",
                "dns.host[1].address",
            ),
            (
                "mode = \"multihoming\"",
                "mode = \"nat\"",
                "dns.host[1].mode",
            ),
            (
                "name = \"c.home2.aves.example.\"",
                "name = \"c.other.example.\"",
                "dns.host[1].name",
            ),
            (
                "name = \"c.home2.aves.example.\"",
                "name = \"tcp22.b.home1\"",
                "dns.host[1].name",
            ),
            (
                "services = [\"tcp22\"]",
                "services = [\"tcp.22\"]",
                "dns.host[0].services[0]",
            ),
            (
                "services = [\"tcp22\"]",
                "services = [\"tcp22\", \"tcp22\"]",
                "dns.host[0].services[1]",
            ),
            ("[dns]\n", "[dns]\nttl = 0\n", "dns.ttl"),
            (
                "[dns]\n",
                "[dns]\nsetup_timeout_ms = 0\n",
                "dns.setup_timeout_ms",
            ),
            (
                "[dns]\n",
                "[dns]\nsetup_timeout_ms = 600000\n",
                "dns.setup_timeout_ms",
            ),
            ("[dns]\n", "[dns]\nmax_pending = 0\n", "dns.max_pending"),
            (
                "[dns]\n",
                "[dns]\nnx_penalty = { threshold = 0 }\n",
                "dns.nx_penalty.threshold",
            ),
            (
                "[dns]\n",
                "[dns]\nnx_penalty = { ban_s = 0 }\n",
                "dns.nx_penalty.ban_s",
            ),
            (
                "[dns]\n",
                "[dns]\nrate = { sessions_per_s = 0 }\n",
                "dns.rate.sessions_per_s",
            ),
            (
                "[dns]\n",
                "[dns]\nrrl = { responses_per_s = 0 }\n",
                "dns.rrl.responses_per_s",
            ),
            ("[dns]\n", "[dns]\nrrl = { burst = 0 }\n", "dns.rrl.burst"),
            ("[dns]\n", "[dns]\nrrl = { slip = 11 }\n", "dns.rrl.slip"),
            (
                "[dns]\n",
                "[dns]\nrrl = { ipv4_prefix = 33 }\n",
                "dns.rrl.ipv4_prefix",
            ),
            (
                "[dns]\n",
                "[dns]\nrrl = { ipv6_prefix = 8 }\n",
                "dns.rrl.ipv6_prefix",
            ),
            (
                "[dns]\n",
                "[dns]\nrrl = { max_tracked = 0 }\n",
                "dns.rrl.max_tracked",
            ),
            (
                "[dns]\n",
                "[dns]\nsoa = { rname = \"a..b\" }\n",
                "dns.soa.rname",
            ),
            (
                "[dns]\n",
                "[dns]\nsoa = { minimum = 100000 }\n",
                "dns.soa.minimum",
            ),
        ];
        for (from, to, key) in cases {
            assert!(DNS.contains(from), "case {from} -> {to}");
            let e = pd(&DNS.replacen(from, to, 1)).unwrap_err();
            assert_eq!(&e.key, key, "{from} -> {to}: {e}");
            assert!(!e.message.is_empty());
        }
        // Hosts need a waypoint; no name servers is an error.
        let no_w = DNS.replace(
            "[[dns.waypoint]]\ncontrol = \"192.0.2.10:4500\"\naddresses = [\"198.51.100.10-198.51.100.17\", \"198.51.100.30\"]\n",
            "",
        );
        assert_ne!(no_w, DNS);
        assert_eq!(pd(&no_w).unwrap_err().key, "dns.waypoint");
        let no_ns = DNS
            .replace("[[dns.ns]]\nname = \"ns1\"\naddress = \"192.0.2.53\"\n", "")
            .replace("[[dns.ns]]\nname = \"ns.elsewhere.example.\"\n", "");
        assert_eq!(pd(&no_ns).unwrap_err().key, "dns.ns");
        // Unknown keys are TOML errors that name the key.
        let e = pd(&DNS.replace("[dns]\n", "[dns]\ncolour = 1\n")).unwrap_err();
        assert!(e.message.contains("colour"), "{e}");
    }
}
