//! The local control socket: a line protocol over a Unix stream socket.
//!
//! One request per line, one reply per request; the reply is one or more lines, the last
//! of which starts with `ok` or `error:`. Requests:
//!
//! ```text
//! route add PREFIX [via ADDR] port NAME     add or replace a route
//! route del PREFIX                          remove a route
//! neigh add NAME ADDR MAC                   add or replace a static neighbour on port NAME
//! neigh del NAME ADDR                       remove a neighbour
//! binding add A W via R to B [mode plain|multihoming] [dynamic]
//!                                           waypoint: bind initiator A at waypoint
//!                                           address W to responder B behind gateway R;
//!                                           pinned (until `binding del`) unless
//!                                           `dynamic`: then the AVES timers apply and
//!                                           it goes when its TCP connections close
//! binding del A W                           waypoint: remove that binding
//! set-address NAME ADDR/LEN                 replace port NAME's primary address (a
//!                                           new DHCP lease); on a gateway's public
//!                                           port it also triggers a REGISTER at once
//! stats                                     per-port and per-reason totals, summed over lcores
//! status                                    role, ports (engine and NIC counters, link),
//!                                           lcores (poll rounds), mempool, top drop reasons
//! ping                                      liveness
//! ```
//!
//! Parsing is pure ([`parse_request`]) so it is tested without a daemon. The socket is
//! created with mode 0600: whoever can write to it controls the router.

use crate::config::Config;
use aves_dataplane::addr::{Ipv4Cidr, MacAddr};
use aves_dataplane::command::{Binding, Command, Mode, Route};
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Longest request line accepted; longer lines get an error and the connection closes.
pub const MAX_LINE: usize = 1024;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A table change for every lcore.
    Apply(Command),
    /// Counter totals.
    Stats,
    /// Role, ports, lcores and the top drop reasons (`aves status`).
    Status,
    /// Liveness.
    Ping,
}

/// Parses one request line against the running config (for port names).
pub fn parse_request(line: &str, cfg: &Config) -> Result<Request, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let port = |name: &str| -> Result<u16, String> {
        cfg.port_index(name).ok_or_else(|| {
            let names: Vec<_> = cfg.ports.iter().map(|p| p.name.as_str()).collect();
            format!("no port named `{name}` (ports: {})", names.join(", "))
        })
    };
    let prefix = |s: &str| s.parse::<Ipv4Cidr>().map_err(|e| e.to_string());
    let addr = |s: &str| {
        s.parse::<Ipv4Addr>()
            .map_err(|_| format!("`{s}` is not an IPv4 address"))
    };
    match words.as_slice() {
        ["ping"] => Ok(Request::Ping),
        ["stats"] => Ok(Request::Stats),
        ["status"] => Ok(Request::Status),
        ["route", "add", p, "port", name] => Ok(Request::Apply(Command::AddRoute(Route {
            prefix: prefix(p)?.network(),
            via: None,
            port: port(name)?,
        }))),
        ["route", "add", p, "via", v, "port", name] => {
            Ok(Request::Apply(Command::AddRoute(Route {
                prefix: prefix(p)?.network(),
                via: Some(addr(v)?),
                port: port(name)?,
            })))
        }
        ["route", "del", p] => Ok(Request::Apply(Command::DelRoute {
            prefix: prefix(p)?.network(),
        })),
        ["neigh", "add", name, ip, mac] => {
            let mac: MacAddr = mac.parse().map_err(|e: aves_dataplane::addr::AddrParseError| e.to_string())?;
            if mac.is_multicast() {
                return Err(format!("{mac} is not a unicast MAC"));
            }
            Ok(Request::Apply(Command::AddNeighbour {
                port: port(name)?,
                ip: addr(ip)?,
                mac,
            }))
        }
        ["neigh", "del", name, ip] => Ok(Request::Apply(Command::DelNeighbour {
            port: port(name)?,
            ip: addr(ip)?,
        })),
        ["binding", "add", a, w, "via", r, "to", b, rest @ ..] => {
            let (rest, pinned) = match rest {
                [head @ .., "dynamic"] => (head, false),
                _ => (rest, true),
            };
            let mode = match rest {
                [] | ["mode", "plain"] => Mode::Plain,
                ["mode", "multihoming"] => Mode::MultiHoming,
                _ => {
                    return Err(
                        "expected `mode plain` or `mode multihoming` (then optionally `dynamic`) after the responder"
                            .into(),
                    )
                }
            };
            Ok(Request::Apply(Command::AddBinding(Binding {
                initiator: addr(a)?,
                waypoint: addr(w)?,
                gateway: addr(r)?,
                responder: addr(b)?,
                mode,
                pinned,
            })))
        }
        ["set-address", name, a] => {
            if !a.contains('/') {
                return Err(format!(
                    "`{a}`: give the prefix length too (ADDR/LEN, e.g. 192.0.2.3/24)"
                ));
            }
            Ok(Request::Apply(Command::SetAddress {
                port: port(name)?,
                addr: prefix(a)?,
            }))
        }
        ["binding", "del", a, w] => Ok(Request::Apply(Command::DelBinding {
            initiator: addr(a)?,
            waypoint: addr(w)?,
            responder: None,
        })),
        [] => Err("empty request".into()),
        _ => Err(format!(
            "unknown request `{}` (expected: route add PREFIX [via ADDR] port NAME | route del PREFIX | neigh add PORT ADDR MAC | neigh del PORT ADDR | binding add A W via R to B [mode plain|multihoming] | binding del A W | set-address PORT ADDR/LEN | stats | status | ping)",
            line.trim()
        )),
    }
}

/// Client side: sends `request` to the daemon at `socket` and returns its reply lines.
/// The last line starts with `ok` or `error:`.
pub fn client(socket: &Path, request: &str) -> anyhow::Result<Vec<String>> {
    use anyhow::Context;
    let mut s = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot connect to the aves control socket {}",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request.trim().as_bytes())?;
    s.write_all(b"\n")?;
    let mut lines = Vec::new();
    for line in BufReader::new(s).lines() {
        let line = line.context("reading the daemon's reply")?;
        let last = line.starts_with("ok") || line.starts_with("error:");
        lines.push(line);
        if last {
            return Ok(lines);
        }
    }
    anyhow::bail!("the daemon closed the connection without a final ok/error line")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg() -> Config {
        crate::config::parse(
            Path::new("t.toml"),
            r#"
[engine]
role = "router"
[[port]]
name = "a"
device = "net_null0"
addresses = ["10.1.0.1/24"]
[[port]]
name = "b"
device = "net_null1"
addresses = ["10.2.0.1/24"]
"#,
        )
        .unwrap()
    }

    #[test]
    fn parses_every_request() {
        let c = cfg();
        assert_eq!(parse_request("ping", &c), Ok(Request::Ping));
        assert_eq!(parse_request("  stats \n", &c), Ok(Request::Stats));
        assert_eq!(parse_request("status\n", &c), Ok(Request::Status));
        assert!(parse_request("status now", &c).is_err());
        assert_eq!(
            parse_request("set-address a 10.1.0.9/24", &c),
            Ok(Request::Apply(Command::SetAddress {
                port: 0,
                addr: "10.1.0.9/24".parse().unwrap(),
            }))
        );
        for bad in [
            "set-address a 10.1.0.9",
            "set-address a 10.1.0.9/33",
            "set-address x 10.1.0.9/24",
            "set-address a",
        ] {
            assert!(parse_request(bad, &c).is_err(), "{bad}");
        }
        assert_eq!(
            parse_request("route add 10.9.1.7/16 via 10.2.0.2 port b", &c),
            Ok(Request::Apply(Command::AddRoute(Route {
                prefix: "10.9.0.0/16".parse().unwrap(),
                via: Some(Ipv4Addr::new(10, 2, 0, 2)),
                port: 1
            })))
        );
        assert_eq!(
            parse_request("route add 10.9.0.0/16 port a", &c),
            Ok(Request::Apply(Command::AddRoute(Route {
                prefix: "10.9.0.0/16".parse().unwrap(),
                via: None,
                port: 0
            })))
        );
        assert_eq!(
            parse_request("route del 10.9.0.0/16", &c),
            Ok(Request::Apply(Command::DelRoute {
                prefix: "10.9.0.0/16".parse().unwrap()
            }))
        );
        assert_eq!(
            parse_request("neigh add b 10.2.0.9 02:00:00:00:00:09", &c),
            Ok(Request::Apply(Command::AddNeighbour {
                port: 1,
                ip: Ipv4Addr::new(10, 2, 0, 9),
                mac: "02:00:00:00:00:09".parse().unwrap()
            }))
        );
        assert_eq!(
            parse_request("neigh del a 10.1.0.9", &c),
            Ok(Request::Apply(Command::DelNeighbour {
                port: 0,
                ip: Ipv4Addr::new(10, 1, 0, 9)
            }))
        );
    }

    #[test]
    fn rejects_bad_requests_with_a_reason() {
        let c = cfg();
        for (line, needle) in [
            ("", "empty"),
            ("route add 10.9.0.0/16 port z", "no port named `z`"),
            ("route add 10.9.0.0/40 port a", "not an IPv4 prefix"),
            ("route add 10.9.0.0/16 via x port a", "not an IPv4 address"),
            ("neigh add a 10.1.0.9 ff:ff:ff:ff:ff:ff", "unicast"),
            ("neigh add a 10.1.0.9 nope", "MAC"),
            ("reboot", "unknown request"),
        ] {
            let e = parse_request(line, &c).expect_err(line);
            assert!(e.contains(needle), "`{line}` gave `{e}`");
        }
    }

    #[test]
    fn binding_requests() {
        let cfg = cfg();
        let r = parse_request(
            "binding add 198.51.100.10 203.0.113.100 via 192.0.2.2 to 10.0.0.2",
            &cfg,
        )
        .unwrap();
        let Request::Apply(Command::AddBinding(b)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(b.mode, Mode::Plain);
        assert_eq!(b.responder, "10.0.0.2".parse::<Ipv4Addr>().unwrap());
        assert!(b.pinned, "operator bindings are pinned by default");
        let r = parse_request(
            "binding add 1.2.3.4 203.0.113.100 via 192.0.2.2 to 10.0.0.2 mode plain dynamic",
            &cfg,
        )
        .unwrap();
        assert!(matches!(
            r,
            Request::Apply(Command::AddBinding(Binding { pinned: false, .. }))
        ));
        let r = parse_request(
            "binding add 1.2.3.4 203.0.113.100 via 192.0.2.2 to 10.0.0.2 dynamic",
            &cfg,
        )
        .unwrap();
        assert!(matches!(
            r,
            Request::Apply(Command::AddBinding(Binding {
                pinned: false,
                mode: Mode::Plain,
                ..
            }))
        ));
        let r = parse_request(
            "binding add 1.2.3.4 203.0.113.100 via 192.0.2.2 to 10.0.0.2 mode multihoming",
            &cfg,
        )
        .unwrap();
        assert!(matches!(
            r,
            Request::Apply(Command::AddBinding(Binding {
                mode: Mode::MultiHoming,
                ..
            }))
        ));
        assert!(parse_request(
            "binding add 1.2.3.4 203.0.113.100 via 192.0.2.2 to 10.0.0.2 mode x",
            &cfg
        )
        .is_err());
        assert!(parse_request(
            "binding add 1.2.3 203.0.113.100 via 192.0.2.2 to 10.0.0.2",
            &cfg
        )
        .is_err());
        assert_eq!(
            parse_request("binding del 1.2.3.4 203.0.113.100", &cfg).unwrap(),
            Request::Apply(Command::DelBinding {
                initiator: "1.2.3.4".parse().unwrap(),
                waypoint: "203.0.113.100".parse().unwrap(),
                responder: None,
            })
        );
    }
}
