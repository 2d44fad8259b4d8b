//! The `aves` binary: `aves run`, `aves check-config`, `aves ctl`, `aves status`.
#![deny(unsafe_code)]

mod config;
mod ctl;
#[cfg(feature = "dpdk")]
mod daemon;
mod dns;
mod metrics;
mod roles;
mod stats;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// aves: inbound reachability for hosts without a public IPv4 address, on DPDK.
#[derive(Parser, Debug)]
#[command(name = "aves", version, about)]
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
        // The SETUP wire protocol is not merged yet: the stub sends nothing, so host A
        // queries end in SERVFAIL after the setup timeout.
        let stop = stop_signal();
        let handler = dns::handler::AvesDns::new(&spec, std::sync::Arc::new(dns::StubBinder));
        let counters = handler.counters();
        let (udp, tcp) = dns::bind(spec.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", spec.listen))?;
        tracing::info!(
            zone = %spec.zone,
            listen = %udp.local_addr()?,
            hosts = spec.hosts.len(),
            "DNS: serving (UDP and TCP)"
        );
        dns::serve(handler, udp, tcp, stop).await?;
        for (name, n) in counters.snapshot() {
            println!("dns {name} {n}");
        }
        anyhow::Ok(())
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
