//! Every invalid config fails `aves check-config` with a message naming the key, and
//! none panics (tracker issue 7, "Config").
//!
//! One row per validation rule: a valid example from `examples/`, a text edit that breaks
//! exactly one key, and the key the error must name. Each row runs the real binary on
//! the edited file and asserts: exit code 1 (a panic exits 101), `error: FILE: KEY: …`
//! on stderr, nothing on stdout. TOML-level errors (syntax, unknown keys, a value of the
//! wrong type or variant) come from the toml crate: their message quotes the line and
//! names the key as written there (`role`, not `engine.role`), which the row states.
//! One rule cannot be reached and has no row: `engine.mbuf_cache` at most two thirds of
//! `engine.mbufs` (the cache is at most 512 and `mbufs` at least 1023). [`every_key_the_validator_names_has_a_row`] keeps the
//! table complete: every key literal the validator in `control/src/config.rs` can name
//! (indexes written as `[0]`) must have a row.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn example(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(name),
    )
    .unwrap()
}

/// (example file, text to replace, replacement, key named in the error).
type Row = (&'static str, &'static str, &'static str, &'static str);

const R: &str = "router.toml";
const W: &str = "waypoint.toml";
const G: &str = "gateway.toml";
const D: &str = "dns.toml";

#[rustfmt::skip]
const ROWS: &[Row] = &[
    // [engine]
    (R, "role = \"router\"", "role = \"toaster\"", "role"),
    (W, "[[binding]]", "[gateway]\npublic = \"wan\"\nprivate = \"wan\"\n[[binding]]", "gateway"),
    (R, "mbufs = 8191", "mbufs = 10", "engine.mbufs"),
    (R, "mbuf_cache = 256", "mbuf_cache = 600", "engine.mbuf_cache"),
    (R, "mbufs = 8191", "mbufs = 8191\nmbuf_data_room = 100", "engine.mbuf_data_room"),
    (R, "mode = \"sleep\"", "mode = \"nap\"", "engine.idle.mode"),
    (R, "max_sleep_us = 500", "max_sleep_us = 0", "engine.idle.max_sleep_us"),
    (R, "[[port]]\nname = \"inside\"", "[gateway]\npublic = \"inside\"\nprivate = \"outside\"\n[[port]]\nname = \"inside\"", "engine.role"),
    // [control]
    (R, "socket = \"/run/aves/aves.sock\"", "socket = \"\"", "control.socket"),
    (R, "socket = \"/run/aves/aves.sock\"", "socket = \"/run/aves/aves.sock\"\nmetrics = \"localhost\"", "control.metrics"),
    (R, "socket = \"/run/aves/aves.sock\"", "socket = \"/run/aves/aves.sock\"\nlisten = \"127.0.0.1:4798\"", "control.listen"),
    (W, "listen = \"172.16.0.2:4798\"", "listen = \"0.0.0.0:4798\"", "control.listen"),
    (W, "listen = \"172.16.0.2:4798\"", "listen = \"172.16.0.2:x\"", "control.listen"),
    (W, "max_skew_s = 30", "max_skew_s = 0", "control.max_skew_s"),
    (W, "replay_window = 128", "replay_window = 16", "control.replay_window"),
    (W, "[[control.key]]\nid = 1\nalgorithm = \"hmac-sha256-128\"\nsecret = \"64657320444e532d5365727665722d4b6579202331203a20414145532d435446\"", "", "control.key"),
    (W, "id = 1\nalgorithm = \"hmac-sha256-128\"", "id = 1\ngateway = \"192.0.2.2\"\nalgorithm = \"hmac-sha256-128\"", "control.key[0].gateway"),
    (W, "secret = \"64657320", "secret = \"zz", "control.key[0].secret"),
    (W, "id = 1\nalgorithm = \"hmac-sha256-128\"", "id = 1000\nalgorithm = \"hmac-sha256-128\"", "control.key[0].id"),
    // [[port]]
    (R, "name = \"outside\"", "name = \"inside\"", "port[1].name"),
    (R, "name = \"outside\"", "name = \"out side\"", "port[1].name"),
    (R, "net_tap1,iface=aves-out", "net_tap0,iface=aves-out", "port[1].device"),
    (R, "device = \"net_tap1,iface=aves-out\"", "device = \"\"", "port[1].device"),
    (R, "mtu = 1500", "mtu = 100", "port[0].mtu"),
    (R, "mtu = 1500", "mtu = 1500\nrx_desc = 100", "port[0].rx_desc"),
    (R, "mtu = 1500", "mtu = 1500\ntx_desc = 100", "port[0].tx_desc"),
    (R, "\"10.1.0.1/24\"", "\"10.1.0.1/33\"", "port[0].addresses[0]"),
    (R, "\"192.0.2.100-192.0.2.107\"", "\"192.0.2.107-192.0.2.100\"", "port[1].pools[0]"),
    // [[route]]
    (R, "prefix = \"0.0.0.0/0\"", "prefix = \"0.0.0.0\"", "route[0].prefix"),
    (R, "via = \"192.0.2.254\"", "via = \"192.0.2\"", "route[0].via"),
    (R, "port = \"outside\"\n\n[[neighbour]]", "port = \"nowhere\"\n\n[[neighbour]]", "route[0].port"),
    // [[neighbour]]
    (R, "port = \"outside\"\nip", "port = \"nowhere\"\nip", "neighbour[0].port"),
    (R, "ip = \"192.0.2.254\"", "ip = \"192.0.2.300\"", "neighbour[0].ip"),
    (R, "mac = \"02:00:5e:00:02:fe\"", "mac = \"01:00:5e:00:02:fe\"", "neighbour[0].mac"),
    // [limits]
    (R, "routes = 1024", "routes = 0", "limits.routes"),
    (R, "routes = 1024", "routes = 2", "limits.routes"),
    (R, "neighbours = 4096", "neighbours = 0", "limits.neighbours"),
    (R, "pending = 256", "pending = 0", "limits.pending"),
    (R, "neighbour_ttl_s = 300", "neighbour_ttl_s = 0", "limits.neighbour_ttl_s"),
    (G, "flows = 262144", "flows = 1", "limits.flows"),
    (G, "flows = 262144", "flows = 262144\nbindings = 0", "limits.bindings"),
    (G, "flows = 262144", "flows = 262144\nconnections = 0", "limits.connections"),
    (G, "flows = 262144", "flows = 262144\nwaits = 0", "limits.waits"),
    (G, "flows = 262144", "flows = 262144\nrejects = 0", "limits.rejects"),
    (G, "reassembly_contexts = 1024", "reassembly_contexts = 0", "limits.reassembly_contexts"),
    (G, "reassembly_fragments = 64", "reassembly_fragments = 1", "limits.reassembly_fragments"),
    (G, "reassembly_bytes = 4194304", "reassembly_bytes = 100", "limits.reassembly_bytes"),
    (G, "reassembly_timeout_ms = 5000", "reassembly_timeout_ms = 10", "limits.reassembly_timeout_ms"),
    // [tunnel]
    (G, "udp_port = 4797", "udp_port = 0", "tunnel.udp_port"),
    (G, "[[tunnel.key]]\nid = 1", "[[tunnel.key_x]]\nid = 1", "tunnel"),
    (G, "id = 1\nalgorithm", "id = 300\nalgorithm", "tunnel.key[0].id"),
    (G, "algorithm = \"hmac-md5\"", "algorithm = \"md4\"", "tunnel.key[0].algorithm"),
    (G, "secret = \"4156455320653265207368617265642074657374206b65792c207075626c6963\"", "secret = \"abcd\"", "tunnel.key[0].secret"),
    (G, "secret = \"4156455320653265207368617265642074657374206b65792c207075626c6963\"", "secret_file = \"/nonexistent/aves-key\"", "tunnel.key[0].secret_file"),
    (G, "id = 1\nalgorithm", "id = 1\ngateway = \"192.0.2.9\"\nalgorithm", "tunnel.key[0].gateway"),
    (W, "gateway = \"192.0.2.2\"\nid = 1", "gateway = \"192.0.2.x\"\nid = 1", "tunnel.key[0].gateway"),
    (W, "[[tunnel.key]]\ngateway = \"192.0.2.2\"\nid = 1\nalgorithm = \"hmac-md5\"   # or \"hmac-sha256-128\"\nsecret = \"4156455320653265207368617265642074657374206b65792c207075626c6963\"", "", "tunnel.key"),
    (G, "[[tunnel.key]]\nid = 1\nalgorithm = \"hmac-md5\"\nsecret = \"4156455320653265207368617265642074657374206b65792c207075626c6963\"", "", "tunnel.key"),
    // [[binding]]
    (W, "waypoint = \"203.0.113.100\"", "waypoint = \"203.0.113.200\"", "binding[0].waypoint"),
    (W, "gateway = \"192.0.2.2\"\nresponder", "gateway = \"192.0.2.99\"\nresponder", "binding[0].gateway"),
    (W, "mode = \"plain\"", "mode = \"both\"", "binding[0].mode"),
    (G, "[gateway]", "[[binding]]\ninitiator = \"1.2.3.4\"\nwaypoint = \"192.0.2.100\"\ngateway = \"192.0.2.2\"\nresponder = \"10.0.0.2\"\n[gateway]", "binding"),
    (W, "pools = [\"203.0.113.100-203.0.113.115\"]", "", "port"),
    // [timeouts], [delayed_binding]
    (W, "icmp = 60", "icmp = 0", "timeouts.icmp"),
    (W, "udp = 900", "udp = 0", "timeouts.udp"),
    (W, "tcp = 1800", "tcp = 0", "timeouts.tcp"),
    (W, "other = 900", "other = 0", "timeouts.other"),
    (W, "http = 1200", "http = 0", "timeouts.http"),
    (W, "wait = 2 ", "wait = 0 ", "delayed_binding.wait"),
    (W, "reject = 180", "reject = 100000", "delayed_binding.reject"),
    (W, "reject_unknown = 10800", "reject_unknown = 99999999", "delayed_binding.reject_unknown"),
    // [gateway]
    (G, "public = \"pub\"", "public = \"nowhere\"", "gateway.public"),
    (G, "private = \"priv\"", "private = \"pub\"", "gateway.private"),
    (G, "nat_ports = \"20000-59999\"", "nat_ports = \"80-90\"", "gateway.nat_ports"),
    (G, "[gateway]\npublic = \"pub\"\nprivate = \"priv\"", "[gateway_x]\npublic = \"pub\"\nprivate = \"priv\"", "gateway_x"),
    (G, "[gateway]\npublic = \"pub\"\nprivate = \"priv\"\nnat_ports = \"20000-59999\"   # multi-homing and NAT44 ports\n# Registration (AVES paper §5.3): tell these AVES DNS servers ([dns] register_listen)\n# this gateway's public address, every register_interval_s and at once when it changes\n# (`aves ctl set-address pub ...`). Signed with the last [[control.key]] below; the\n# DNS servers hold it as [[dns.gateway.key]] of [[dns.gateway]] id 1.\nid = 1\nregister = [\"172.16.1.1:4799\"]\nregister_interval_s = 60", "", "gateway"),
    // [gateway] registration (AVES §5.3)
    (G, "id = 1\nregister", "id = -1\nregister", "gateway.id"),
    (G, "\"172.16.1.1:4799\"", "\"172.16.1.1\"", "gateway.register[0]"),
    (G, "register_interval_s = 60", "register_interval_s = 0", "gateway.register_interval_s"),
    // [dns] (a DNS-only file)
    (D, "listen = \"127.0.0.1:5353\"", "listen = \"127.0.0.1\"", "dns.listen"),
    (D, "zone = \"aves.example.\"", "zone = \"a b.example.\"", "dns.zone"),
    (D, "ttl = 3600", "ttl = 0", "dns.ttl"),
    (D, "metrics = \"127.0.0.1:9798\"", "metrics = \"localhost\"", "dns.metrics"),
    (D, "register_listen = \"172.16.1.1:4799\"", "register_listen = \"0.0.0.0:4799\"", "dns.register_listen"),
    (D, "[[dns.gateway.key]]                  # the key gateway 1 signs its REGISTERs with\nid = 9", "[[dns.gateway.key]]\ngateway = \"192.0.2.1\"\nid = 9", "dns.gateway[0].key[0].gateway"),
    (D, "intranet = [\"10.1.0.0/16\"]", "intranet = [\"10.1.0.0/40\"]", "dns.intranet[0]"),
    (D, "setup_timeout_ms = 3000", "setup_timeout_ms = 0", "dns.setup_timeout_ms"),
    (D, "setup_timeout_ms = 3000", "setup_timeout_ms = 3000\ngeneral_wait_ms = 0", "dns.general_wait_ms"),
    (D, "setup_timeout_ms = 3000", "setup_timeout_ms = 3000\ngrant_memory_s = 0", "dns.grant_memory_s"),
    (D, "setup_timeout_ms = 3000", "setup_timeout_ms = 3000\nmax_pending = 0", "dns.max_pending"),
    (D, "rname = \"hostmaster.aves.example.\"", "rname = \"a..b\"", "dns.soa.rname"),
    (D, "rname = \"hostmaster.aves.example.\"", "mname = \"a..b\"", "dns.soa.mname"),
    (D, "minimum = 60", "minimum = 100000", "dns.soa.minimum"),
    (D, "minimum = 60", "minimum = 60\nrefresh = 0", "dns.soa.refresh"),
    (D, "minimum = 60", "minimum = 60\nretry = 0", "dns.soa.retry"),
    (D, "minimum = 60", "minimum = 60\nexpire = 0", "dns.soa.expire"),
    (D, "[[dns.ns]]\nname = \"ns1\"                         # relative names are inside the zone\naddress = \"192.0.2.53\"", "", "dns.ns"),
    (D, "name = \"ns1\"", "name = \"aves.example.\"", "dns.ns[0].name"),
    (D, "address = \"192.0.2.53\"", "address = \"192.0.2\"", "dns.ns[0].address"),
    (D, "[[dns.waypoint]]\ncontrol = \"192.0.2.10:4500\"          # where SETUPs go\naddresses = [\"198.51.100.10-198.51.100.17\"]", "", "dns.waypoint"),
    (D, "control = \"192.0.2.10:4500\"", "control = \"192.0.2.10\"", "dns.waypoint[0].control"),
    (D, "addresses = [\"198.51.100.10-198.51.100.17\"]", "addresses = []", "dns.waypoint[0].addresses"),
    (D, "addresses = [\"198.51.100.10-198.51.100.17\"]", "addresses = [\"198.51.100.300\"]", "dns.waypoint[0].addresses[0]"),
    (D, "id = 1 ", "id = -1 ", "dns.gateway[0].id"),
    (D, "address = \"203.0.113.7\"", "address = \"x\"", "dns.gateway[0].address"),
    (D, "name = \"b.home1\"", "name = \"b.other.example.\"", "dns.host[0].name"),
    (D, "gateway_id = 1", "gateway_id = 9", "dns.host[0].gateway_id"),
    (D, "address = \"192.168.1.10\"", "address = \"192.168.1\"", "dns.host[0].address"),
    (D, "mode = \"plain\"", "mode = \"nat\"", "dns.host[0].mode"),
    (D, "services = [\"tcp22\", \"tcp80\"]", "services = [\"tcp.22\"]", "dns.host[0].services[0]"),
    (D, "threshold = 20", "threshold = 0", "dns.nx_penalty.threshold"),
    (D, "window_s = 60", "window_s = 0", "dns.nx_penalty.window_s"),
    (D, "ban_s = 600", "ban_s = 0", "dns.nx_penalty.ban_s"),
    (D, "ban_s = 600", "ban_s = 600\nmax_tracked = 0", "dns.nx_penalty.max_tracked"),
    (D, "sessions_per_s = 50", "sessions_per_s = 0", "dns.rate.sessions_per_s"),
    (D, "burst = 100", "burst = 0", "dns.rate.burst"),
    (D, "[dns.rate]", "[dns.rrl]\nresponses_per_s = 0\n[dns.rate]", "dns.rrl.responses_per_s"),
    (D, "[dns.rate]", "[dns.rrl]\nburst = 0\n[dns.rate]", "dns.rrl.burst"),
    (D, "[dns.rate]", "[dns.rrl]\nslip = 11\n[dns.rate]", "dns.rrl.slip"),
    (D, "[dns.rate]", "[dns.rrl]\nexempt = [\"192.0.2.53/33\"]\n[dns.rate]", "dns.rrl.exempt[0]"),
    (D, "[dns.rate]", "[dns.rrl]\nipv4_prefix = 33\n[dns.rate]", "dns.rrl.ipv4_prefix"),
    (D, "[dns.rate]", "[dns.rrl]\nipv6_prefix = 8\n[dns.rate]", "dns.rrl.ipv6_prefix"),
    (D, "[dns.rate]", "[dns.rrl]\nmax_tracked = 0\n[dns.rate]", "dns.rrl.max_tracked"),
    (D, "[dns.rate]", "[[dns.key]]\nid = 1\ngateway = \"192.0.2.2\"\nsecret = \"00112233445566778899aabbccddeeff\"\n[dns.rate]", "dns.key[0].gateway"),
    (D, "[dns.rate]", "[[dns.key]]\nid = 1\nsecret = \"0011\"\n[dns.rate]", "dns.key[0].secret"),
    (D, "[dns.rate]", "[[dns.key]]\nid = 1\nalgorithm = \"md4\"\nsecret = \"00112233445566778899aabbccddeeff\"\n[dns.rate]", "dns.key[0].algorithm"),
    (D, "[dns.rate]", "[[dns.key]]\nid = 256\nsecret = \"00112233445566778899aabbccddeeff\"\n[dns.rate]", "dns.key[0].id"),
    (D, "[dns.rate]", "[[dns.key]]\nid = 1\nsecret = \"00112233445566778899aabbccddeeff\"\n[[dns.key]]\nid = 1\nsecret = \"00112233445566778899aabbccddeeff\"\n[dns.rate]", "dns.key[1].id"),
    (D, "[dns]\nlisten", "[dns]\ncolour = 1\nlisten", "colour"),
    (D, "[dns]\nlisten", "[dns\nlisten", "[dns"),
];

struct Tmp(PathBuf);
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn every_invalid_config_fails_check_config_naming_the_key() {
    let dir = Tmp(std::env::temp_dir().join(format!("aves-check-config-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let bin = env!("CARGO_BIN_EXE_aves");
    // The examples themselves pass.
    for f in [R, W, G, D] {
        let path = dir.0.join(f);
        std::fs::write(&path, example(f)).unwrap();
        let out = Command::new(bin)
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut failures = Vec::new();
    for (i, (file, from, to, key)) in ROWS.iter().enumerate() {
        let base = example(file);
        assert!(
            base.contains(from),
            "row {i} ({key}): `{from}` not in {file}"
        );
        let path = dir.0.join(format!("case-{i}.toml"));
        std::fs::write(&path, base.replacen(from, to, 1)).unwrap();
        let out = Command::new(bin)
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let ok = out.status.code() == Some(1)
            && !err.contains("panicked")
            && stdout.is_empty()
            && err.starts_with(&format!("error: {}: ", path.display()))
            && err.contains(key);
        if !ok {
            failures.push(format!(
                "row {i} {file} `{to}` (want {key}): {:?} {err}",
                out.status.code()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The validator's key literals, with `{i}`/`{j}` written as `0`.
fn validator_keys() -> BTreeSet<String> {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config.rs"))
        .unwrap();
    let src = &src[..src.find("#[cfg(test)]").unwrap()];
    let mut keys = BTreeSet::new();
    for lit in src.split('"').skip(1).step_by(2) {
        let k = lit.replace("{i}", "0").replace("{j}", "0");
        let is_key = k.contains('.')
            && k.split('.').all(|p| {
                !p.is_empty()
                    && p.chars().all(|c| {
                        c.is_ascii_lowercase()
                            || c == '_'
                            || c.is_ascii_digit()
                            || c == '['
                            || c == ']'
                    })
                    && p.starts_with(|c: char| c.is_ascii_lowercase())
            });
        // Not keys: an example in a message, the section name handed to parse_keys.
        if is_key && k != "a.b.c.d" && k != "dns.key" && k != "dns.gateway[0].key" {
            keys.insert(k);
        }
    }
    // Keys built from a section and a field (`port[{i}].{f}`, `{section}[{i}].{f}`, ...).
    for k in [
        "port[0].name",
        "port[0].device",
        "port[0].mtu",
        "port[0].rx_desc",
        "port[0].tx_desc",
        "tunnel.key[0].id",
        "tunnel.key[0].algorithm",
        "tunnel.key[0].secret",
        "tunnel.key[0].secret_file",
        "control.key[0].id",
        "control.key[0].secret",
        "dns.key[0].id",
        "dns.key[0].algorithm",
        "dns.key[0].secret",
        "dns.ns[0].name",
        "dns.ns[0].address",
        "dns.waypoint[0].control",
        "dns.waypoint[0].addresses",
        "dns.gateway[0].id",
        "dns.gateway[0].address",
        "dns.host[0].name",
        "dns.host[0].gateway_id",
        "dns.host[0].address",
        "dns.host[0].mode",
        "neighbour[0].port",
        "route[0].port",
    ] {
        keys.insert(k.to_string());
    }
    keys
}

#[test]
fn every_key_the_validator_names_has_a_row() {
    let norm = |k: &str| {
        // Rows name concrete indexes; the validator's literals use 0.
        let mut s = String::new();
        let mut in_idx = false;
        for c in k.chars() {
            match c {
                '[' => {
                    in_idx = true;
                    s.push_str("[0]");
                }
                ']' => in_idx = false,
                _ if in_idx => {}
                _ => s.push(c),
            }
        }
        s
    };
    let covered: BTreeSet<String> = ROWS.iter().map(|r| norm(r.3)).collect();
    let missing: Vec<String> = validator_keys()
        .into_iter()
        .filter(|k| !covered.contains(k))
        .collect();
    assert!(missing.is_empty(), "keys without a row: {missing:?}");
}
