//! The `aves` binary: `aves run`, `aves check-config`, `aves ctl`.
#![deny(unsafe_code)]

mod ctl;
#[cfg(feature = "dpdk")]
mod daemon;
mod roles;
mod stats;

use aves::config;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AVES_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Cmd::CheckConfig { file } => match config::load(&file) {
            Ok(c) => {
                println!(
                    "{}: ok ({:?} role, {} ports, {} routes, {} neighbours)",
                    file.display(),
                    c.role,
                    c.ports.len(),
                    c.routes.len(),
                    c.neighbours.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Ctl { socket, request } => match ctl::client(&socket, &request.join(" ")) {
            Ok(lines) => {
                let failed = lines.last().is_some_and(|l| l.starts_with("error:"));
                for l in lines {
                    println!("{l}");
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
