//! The `aves` binary: `aves run`, `aves check-config`, `aves ctl`, `aves status`,
//! `aves setup`, `aves dns`.
#![deny(unsafe_code)]

mod ctl;
#[cfg(feature = "dpdk")]
mod daemon;
mod registrar;
mod roles;

use aves::{config, dns, metrics, proto, setup, stats};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The version `--version` prints; a benchmark build says what it accepts.
#[cfg(not(feature = "bench-null-auth"))]
const VERSION: &str = env!("CARGO_PKG_VERSION");
#[cfg(feature = "bench-null-auth")]
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (benchmark build: tunnel algorithm `null` accepted, no authentication)"
);

/// aves: inbound reachability for hosts without a public IPv4 address, on DPDK.
#[derive(Parser, Debug)]
#[command(name = "aves", version = VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the engine with a config file. Arguments after `--` go to DPDK's EAL, after
    /// those from the config's `engine.eal_args`.
    Run {
        /// The TOML config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Extra EAL arguments.
        #[arg(last = true)]
        eal: Vec<String>,
    },
    /// Validate a config file and exit: 0 when valid, 1 with the error otherwise.
    CheckConfig {
        /// The TOML config file.
        file: PathBuf,
    },
    /// Run only the AVES-aware DNS server (the config's `[dns]` section): no DPDK, no
    /// EAL, one thread. Stops on SIGINT or SIGTERM and prints its counters.
    Dns {
        /// The TOML config file (only `[dns]`, or an engine config with `[dns]`).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Send one request to a running daemon's control socket, e.g.
    /// `aves ctl route add 10.9.0.0/16 via 10.2.0.2 port b` or `aves ctl stats`.
    Ctl {
        /// Control socket of the daemon.
        #[arg(long, short, default_value_os_t = config::default_socket())]
        socket: PathBuf,
        /// The request words.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        request: Vec<String>,
    },
    /// Show a running daemon's role, ports (engine and NIC counters, link), lcores (poll
    /// rounds), mempool and top drop reasons. Same as `aves ctl status`.
    Status {
        /// Control socket of the daemon.
        #[arg(long, short, default_value_os_t = config::default_socket())]
        socket: PathBuf,
    },
    /// Send a SETUP to a waypoint (as an AVES DNS server would, docs/protocol.md) and
    /// print the answer: `ACCEPT ...` (exit 0), `REJECT ... reason R` (exit 1), or no
    /// answer (exit 2). E.g. `aves setup --to 172.16.0.2:4798 --key-file dns.key
    /// 198.51.100.10 203.0.113.100 192.0.2.2 10.0.0.2`.
    Setup(SetupArgs),
}

/// `aves setup` arguments.
#[derive(clap::Args, Debug)]
struct SetupArgs {
    /// The waypoint's SETUP address (its `[control] listen`).
    #[arg(long)]
    to: std::net::SocketAddr,
    /// File with the key's secret in hex (as `secret_file` in the config).
    #[arg(long)]
    key_file: PathBuf,
    /// Key id.
    #[arg(long, default_value_t = 1)]
    key_id: u8,
    /// `hmac-md5` or `hmac-sha256-128`.
    #[arg(long, default_value = "hmac-md5")]
    algorithm: String,
    /// What INITIATOR is: `initiator` (intranet, §3.3.1), `client-subnet` (an ECS
    /// prefix) or `resolver` (general mode: delayed binding, §3.3.2).
    #[arg(long, default_value = "initiator")]
    kind: String,
    /// `plain` or `multihoming`.
    #[arg(long, default_value = "plain")]
    mode: String,
    /// The request's serial (default: from the clock).
    #[arg(long)]
    serial: Option<u32>,
    /// How long to wait for each answer, ms.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Tries (each a new message with the same serial).
    #[arg(long, default_value_t = 3)]
    tries: u32,
    /// Write the last datagram sent to this file (to replay it with --raw).
    #[arg(long)]
    save: Option<PathBuf>,
    /// Send the bytes of this file as they are, once, instead of building a SETUP.
    #[arg(long)]
    raw: Option<PathBuf>,
    /// The initiator (a.b.c.d or a.b.c.d/len), waypoint address, gateway, responder.
    #[arg(num_args = 4, value_names = ["INITIATOR", "W", "R", "B"], required_unless_present = "raw")]
    addresses: Vec<String>,
}

/// Sends `request` to the daemon at `socket`, prints the reply; fails when the daemon
/// answered `error:` or could not be reached.
fn ctl_command(socket: &std::path::Path, request: &str) -> ExitCode {
    match ctl::client(socket, request) {
        Ok(lines) => {
            use std::io::Write;
            let failed = lines.last().is_some_and(|l| l.starts_with("error:"));
            let mut out = std::io::stdout().lock();
            // A closed stdout (`aves status | head -1`) ends the output, not the process
            // with a panic.
            for l in lines {
                if writeln!(out, "{l}").is_err() {
                    break;
                }
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AVES_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,hickory_server=warn,hickory_net=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Cmd::CheckConfig { file } => match config::load(&file) {
            Ok(c) => {
                println!(
                    "{}: ok ({:?} role, {} ports, {} routes, {} neighbours{})",
                    file.display(),
                    c.role,
                    c.ports.len(),
                    c.routes.len(),
                    c.neighbours.len(),
                    c.dns
                        .as_ref()
                        .map_or(String::new(), |d| format!(", DNS {}", dns_summary(d)))
                );
                ExitCode::SUCCESS
            }
            // A file without [engine] may be a DNS-only config for `aves dns`.
            Err(e) if e.key == "engine" => match config::load_dns(&file) {
                Ok(d) => {
                    println!("{}: ok (DNS only: {})", file.display(), dns_summary(&d));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Ctl { socket, request } => ctl_command(&socket, &request.join(" ")),
        Cmd::Status { socket } => ctl_command(&socket, "status"),
        Cmd::Dns { config } => match config::load_dns(&config) {
            Ok(spec) => run_dns(spec),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Setup(args) => match setup_cmd(&args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Cmd::Run { config, eal } => {
            let cfg = match config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            run(cfg, eal)
        }
    }
}

/// `aves setup`: one SETUP exchange.
fn setup_cmd(a: &SetupArgs) -> anyhow::Result<ExitCode> {
    use anyhow::{anyhow, Context};
    use aves_dataplane::auth::{Algorithm, Key};
    use aves_dataplane::command::Mode;
    use proto::{InitiatorKind, Setup};
    use setup::{Answer, Client};
    let hex = std::fs::read_to_string(&a.key_file)
        .with_context(|| format!("reading {}", a.key_file.display()))?;
    let secret = config::parse_hex(hex.trim())
        .ok_or_else(|| anyhow!("{}: not hex", a.key_file.display()))?;
    let alg = Algorithm::from_name(&a.algorithm).ok_or_else(|| {
        anyhow!(
            "--algorithm: `{}` is not hmac-md5 or hmac-sha256-128",
            a.algorithm
        )
    })?;
    let key = Key::new(a.key_id, alg, &secret).map_err(|e| anyhow!("--key-file: {e}"))?;
    let timeout = std::time::Duration::from_millis(a.timeout_ms);
    let mut client = Client::new(a.to, key).with_context(|| format!("socket to {}", a.to))?;
    let (answer, serial, sent) = if let Some(raw) = &a.raw {
        let bytes = std::fs::read(raw).with_context(|| format!("reading {}", raw.display()))?;
        let serial = match proto::parse(&bytes) {
            Ok((_, proto::Message::Setup(s))) => s.serial,
            _ => 0,
        };
        (client.exchange(&bytes, serial, timeout)?, serial, bytes)
    } else {
        let [i, w, r, b] = a.addresses.as_slice() else {
            anyhow::bail!("expected INITIATOR W R B");
        };
        let addr = |what: &str, s: &str| {
            s.parse::<std::net::Ipv4Addr>()
                .map_err(|_| anyhow!("{what}: `{s}` is not an IPv4 address"))
        };
        let initiator = if i.contains('/') {
            i.parse().map_err(|e| anyhow!("INITIATOR: {e}"))?
        } else {
            aves_dataplane::addr::Ipv4Cidr::new(addr("INITIATOR", i)?, 32).expect("/32")
        };
        let kind = InitiatorKind::from_name(&a.kind).ok_or_else(|| {
            anyhow!(
                "--kind: `{}` is not initiator, client-subnet or resolver",
                a.kind
            )
        })?;
        let mode = match a.mode.as_str() {
            "plain" => Mode::Plain,
            "multihoming" => Mode::MultiHoming,
            m => anyhow::bail!("--mode: `{m}` is not plain or multihoming"),
        };
        let serial = a.serial.unwrap_or_else(|| (setup::now_us() / 1000) as u32);
        let s = Setup {
            serial,
            initiator,
            kind,
            mode,
            waypoint: addr("W", w)?,
            gateway: addr("R", r)?,
            responder: addr("B", b)?,
        };
        let (answer, sent) = client.request(&s, timeout, a.tries)?;
        (answer, serial, sent)
    };
    if let Some(path) = &a.save {
        std::fs::write(path, &sent).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(match answer {
        Answer::Accept => {
            println!("ACCEPT serial {serial} from {}", a.to);
            ExitCode::SUCCESS
        }
        Answer::Reject(reason) => {
            println!("REJECT serial {serial} from {} reason {reason}", a.to);
            ExitCode::from(1)
        }
        Answer::Silence => {
            println!("NOANSWER serial {serial} from {}", a.to);
            ExitCode::from(2)
        }
    })
}

/// "zone Z: H hosts, G gateways, W waypoint addresses" for check-config.
fn dns_summary(d: &config::DnsSpec) -> String {
    let addresses: u64 = d
        .waypoints
        .iter()
        .flat_map(|w| w.addresses.iter())
        .map(|r| r.count())
        .sum();
    format!(
        "zone {}: {} hosts, {} gateways, {} waypoint addresses",
        d.zone,
        d.hosts.len(),
        d.gateways.len(),
        addresses
    )
}

/// `aves dns`: the DNS server alone, on a current-thread tokio runtime.
fn run_dns(spec: config::DnsSpec) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let stop = stop_signal();
        let binder: std::sync::Arc<dyn dns::Binder> = match spec.keys.last() {
            Some(k) => {
                let key = aves_dataplane::auth::Key::new(k.id, k.algorithm, &k.secret)
                    .map_err(|e| anyhow::anyhow!("dns.key: {e:?}"))?;
                std::sync::Arc::new(dns::UdpBinder::new(&spec, key))
            }
            None => {
                tracing::warn!(
                    "no [[dns.key]]: host queries are answered SERVFAIL (no SETUP can be signed)"
                );
                std::sync::Arc::new(dns::StubBinder)
            }
        };
        let sockets = dns::Sockets::bind(&spec)?;
        dns::run(&spec, binder, sockets, stop).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A future that resolves on SIGINT or SIGTERM. The handlers are installed now (call
/// it inside the runtime, before serving), not when the future is first polled.
fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let signals = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        match signals {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                tracing::warn!("cannot watch SIGINT/SIGTERM; stop with SIGKILL");
                std::future::pending::<()>().await
            }
        }
    }
}

#[cfg(feature = "dpdk")]
fn run(cfg: config::Config, eal: Vec<String>) -> ExitCode {
    match daemon::run(cfg, &eal) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "dpdk"))]
fn run(_cfg: config::Config, _eal: Vec<String>) -> ExitCode {
    eprintln!("error: this aves was built without the `dpdk` feature and cannot run the engine");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_command_line() {
        let cli = Cli::try_parse_from(["aves", "status", "--socket", "/tmp/x.sock"]).unwrap();
        match cli.command {
            Cmd::Status { socket } => assert_eq!(socket, PathBuf::from("/tmp/x.sock")),
            c => panic!("{c:?}"),
        }
        let cli = Cli::try_parse_from(["aves", "status"]).unwrap();
        assert!(
            matches!(cli.command, Cmd::Status { socket } if socket == config::default_socket())
        );
        assert!(Cli::try_parse_from(["aves", "status", "extra"]).is_err());
    }
}
