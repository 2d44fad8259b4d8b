//! The AVES-aware DNS server (AVES paper §3.3, §5.1, §6.2) on hickory-server 0.26.
//!
//! An A query for a responder's name makes the server choose a waypoint address, ask the
//! waypoint to install the binding (a SETUP, through a [`Binder`]) and, on ACCEPT, answer
//! with the waypoint address and TTL 0. Everything else (SOA, NS, negative answers) is an
//! ordinary authoritative zone.
//!
//! Files: [`zone`] (names, records, gateway addresses, waypoint choice), [`handler`] (the
//! `RequestHandler`: one decision per query), [`limits`] (§6.2 safeguards: the NXDOMAIN
//! penalty, the per-responder session rate, the cap on SETUPs in flight).
//!
//! Invariants:
//! - The wire format of SETUP/ACCEPT/REJECT is not here: the handler only sees the
//!   [`Binder`] trait. Whatever a binder does, the handler waits at most
//!   `setup_timeout` for it.
//! - An answer that names a waypoint address always has TTL 0 and only follows an
//!   `Accept`; a `Reject` or a timeout gives SERVFAIL (the resolver or stub retries,
//!   and nothing is cached: RFC 2308 §7.1 lets a resolver cache SERVFAIL for at most
//!   five minutes, and resolvers in practice retry the next query).
//! - The handler never panics on any query: hickory parses, the handler only reads
//!   parsed fields, and every failure path answers with an rcode or not at all.
//! - All state the handler keeps is bounded (see [`limits`] and [`zone::Waypoints`]).

pub mod handler;
pub mod limits;
pub mod zone;

use aves_dataplane::command::Mode;
use handler::AvesDns;
use hickory_server::Server;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

/// What the DNS server asks a waypoint to install: the binding of §3.3, for the
/// initiator (or initiator prefix) the query came from.
///
/// `initiator_prefix` says which initiators may use the binding:
/// - 32: exactly `initiator` (intranet mode, §3.3.1: the querier is the initiator);
/// - 1..=31: any address in `initiator/initiator_prefix`, from EDNS Client Subnet
///   (RFC 7871) — the waypoint can bind without the delayed-binding wait;
/// - 0: unknown initiator (general mode, §3.3.2): `initiator` is the querying
///   resolver's address, for the waypoint's information only, and the waypoint uses
///   delayed binding (a wait state, Figure 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupRequest {
    /// The initiator A, the network address of its ECS prefix, or the resolver's address
    /// (prefix 0).
    pub initiator: Ipv4Addr,
    /// 32, the ECS source prefix, or 0 (see the type's doc).
    pub initiator_prefix: u8,
    /// The responder's AVES-aware NAT gateway R (its current public address).
    pub gateway: Ipv4Addr,
    /// The responder B (its private address behind R).
    pub responder: Ipv4Addr,
    /// The waypoint address W that will stand for B.
    pub waypoint: Ipv4Addr,
    /// How R presents the initiator to B (§3.2).
    pub mode: Mode,
}

/// A waypoint's answer to a SETUP.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "the control protocol's binder answers Accept/Reject (merge)"
    )
)]
pub enum SetupOutcome {
    /// ACCEPT: the binding is installed (or, for prefix 0, the wait state has begun).
    Accept,
    /// REJECT, with the waypoint's reason (admission control, §3.3.1).
    Reject(String),
    /// No answer in time (the binder's own retries, if any, are spent).
    Timeout,
}

/// Asks a waypoint to install a binding; resolves to Accept or Reject(reason).
///
/// Implementations: the UDP control protocol (`proto.rs`, at merge), a ring message when
/// co-located with a waypoint, [`StubBinder`], and test doubles. The handler bounds the
/// wait with its own timeout, so a future that never resolves is allowed.
pub trait Binder: Send + Sync + 'static {
    /// Sends the SETUP and resolves with the waypoint's answer.
    fn setup(&self, req: SetupRequest) -> Pin<Box<dyn Future<Output = SetupOutcome> + Send>>;
}

/// A binder that sends nothing and so never hears back: every SETUP ends in the
/// handler's timeout (SERVFAIL). It stands in until the control protocol is merged;
/// everything but host A answers works with it.
#[derive(Debug, Default, Clone, Copy)]
pub struct StubBinder;

impl Binder for StubBinder {
    fn setup(&self, _req: SetupRequest) -> Pin<Box<dyn Future<Output = SetupOutcome> + Send>> {
        Box::pin(std::future::pending())
    }
}

/// A TCP connection that sends no query for this long is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;

/// Binds the UDP socket and the TCP listener of `listen` (the same port for both).
pub async fn bind(listen: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let udp = UdpSocket::bind(listen).await?;
    let tcp = TcpListener::bind(udp.local_addr()?).await?;
    Ok((udp, tcp))
}

/// Serves DNS on `udp` and `tcp` with `handler` until `shutdown` resolves, then stops
/// gracefully (queries in progress are finished).
pub async fn serve(
    handler: AvesDns,
    udp: UdpSocket,
    tcp: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut server = Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
    let token = server.shutdown_token().clone();
    tokio::spawn(async move {
        shutdown.await;
        token.cancel();
    });
    server
        .block_until_done()
        .await
        .map_err(|e| anyhow::anyhow!("the DNS server stopped: {e}"))
}
