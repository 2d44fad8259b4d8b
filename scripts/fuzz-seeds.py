#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/seed-*.

Sources (standard library only):
- every `const NAME: [u8; N] = [...]` byte array in dataplane/src (the unit tests'
  captured packets), as is and, for IPv4/IPv6/ARP ones, behind an Ethernet header;
- the tunnel test vectors of docs/protocol.md (`aves-vector` blocks);
- examples/*.toml for the config parser;
- hand-built frame sequences for the role targets, in the record format of
  fuzz/src/records.rs, with the addresses of fuzz/src/setup.rs. Checksums are left
  zero: the records ask the harness to repair them;
- DNS queries for dns_handler (the handler unit tests' queries: host A, service name,
  ECS, AXFR, NOTIFY, EDNS version 1, ...), in the record format of
  fuzz/fuzz_targets/dns_handler.rs, for the zone of that file.

Only the seed-* files of the targets listed in GENERATED are rewritten; other files
(regression-*, crash inputs kept after a fix) and other targets' seeds
(control_messages: made by hand from the docs/protocol.md vectors) are left alone.
Run from anywhere: python3 scripts/fuzz-seeds.py
"""

import ipaddress
import pathlib
import re
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"

# fuzz/src/records.rs flags
FIX_IP, FIX_L4, SET_MAC, TUNNEL, FRAGMENT, COMMAND, TICK, NO_POOL = (
    1, 2, 4, 8, 16, 32, 64, 128)
FIX = FIX_IP | FIX_L4 | SET_MAC

PEER_MAC = bytes([2, 0, 0, 0, 0x11, 1])
BCAST = b"\xff" * 6
ZERO_MAC = b"\x00" * 6


def ip4(a):
    return ipaddress.IPv4Address(a).packed


def eth(dst, ethertype, payload, src=PEER_MAC):
    return dst + src + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, payload, ttl=64, df=False, ident=0x1234, frag=0, more=False):
    fo = (0x4000 if df else 0) | (0x2000 if more else 0) | (frag // 8)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, fo, ttl,
                       proto, 0, ip4(src), ip4(dst)) + payload


def udp(sport, dport, data=b""):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def tcp(sport, dport, flags, data=b"", mss=None):
    opts = struct.pack("!BBH", 2, 4, mss) if mss else b""
    off = (20 + len(opts)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, off << 4, flags, 65535, 0,
                       0) + opts + data


def icmp(ty, code=0, rest=b"\x00\x07\x00\x01", data=b"ping"):
    return struct.pack("!BBH", ty, code, 0) + rest + data


def arp(op, sha, spa, tha, tpa):
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, ip4(spa), tha, ip4(tpa))


def record(flags, port, body, dt=0, aux=0):
    return bytes([flags, port, dt, aux]) + struct.pack("<H", len(body)) + body


def command(kind, b=b""):
    return bytes([kind]) + b


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data)


def rust_arrays():
    """(file stem, name, bytes) of every constant byte array in dataplane/src."""
    pat = re.compile(r"const ([A-Z0-9_]+): \[u8; (\d+)\] = \[(.*?)\];", re.S)
    out = []
    for f in sorted((ROOT / "dataplane" / "src").rglob("*.rs")):
        text = f.read_text()
        for m in pat.finditer(text):
            body = re.sub(r"//[^\n]*", "", m.group(3))
            items = [t.strip() for t in body.split(",") if t.strip()]
            try:
                vals = [ord(t[2]) if t.startswith("b'") else int(t, 0) for t in items]
            except ValueError:
                continue
            if len(vals) == int(m.group(2)):
                out.append((f.stem, m.group(1), bytes(vals)))
    return out


WIRE_SELECTOR = {"ethernet": 0, "arp": 1, "icmpv4": 2, "udp": 3, "tcp": 4, "ipv6": 5,
                 "ipv6ext": 6, "icmpv6": 7, "aves": 8}


def wire_seeds(arrays):
    by_name = {(s, n): b for s, n, b in arrays}
    for stem, name, b in arrays:
        tag = f"{stem}-{name.lower()}"
        write("wire_parsers", tag, b)
        write("roundtrip_wire", f"{tag}-all", bytes([9]) + b)
        if stem in WIRE_SELECTOR:
            write("roundtrip_wire", tag, bytes([WIRE_SELECTOR[stem]]) + b)
        if b[:1] and b[0] >> 4 == 4:
            write("wire_parsers", f"{tag}-eth", eth(ZERO_MAC, 0x0800, b))
            write("roundtrip_ipv4", tag, ip4("10.0.0.9") + b)
            write("roundtrip_ipv4", f"{tag}-src", bytes([0xc0, 0, 2, 0x65]) + b)
        if b[:1] and b[0] >> 4 == 6:
            write("wire_parsers", f"{tag}-eth", eth(ZERO_MAC, 0x86DD, b))
        if stem == "arp":
            write("wire_parsers", f"{tag}-eth", eth(BCAST, 0x0806, b))
    # flow.rs keeps headers and transport parts apart: join them.
    for p in ("PING", "SYN", "DNS"):
        l4 = {"PING": "PING_ICMP", "SYN": "SYN_TCP", "DNS": "DNS_UDP"}[p]
        ip, t = by_name.get(("flow", f"{p}_IP")), by_name.get(("flow", l4))
        if ip and t:
            d = ip + t
            write("wire_parsers", f"flow-{p.lower()}", eth(ZERO_MAC, 0x0800, d))
            write("roundtrip_ipv4", f"flow-{p.lower()}", ip4("203.0.113.7") + d)
            write("roundtrip_ipv4", f"flow-{p.lower()}-src", bytes([0x0b, 0, 0x4e, 0x21]) + d)


def vectors():
    """The aves-vector blocks of docs/protocol.md as dicts."""
    out, cur, last = [], None, None
    for line in (ROOT / "docs" / "protocol.md").read_text().splitlines():
        if cur is None:
            if line.strip() == "```aves-vector":
                cur = {}
            continue
        if line.strip() == "```":
            out.append(cur)
            cur = None
        elif line.lstrip().startswith("#") or not line.strip():
            continue
        elif line[:1] in (" ", "\t"):
            cur[last] += line.strip()
        else:
            k, v = line.split(":", 1)
            last = k.strip()
            cur[last] = v.strip()
    return out


def tunnel_seeds():
    eth_hdr = bytes([2, 0, 0, 0, 0, 0xbb, 2, 0, 0, 0, 0, 0xaa, 0x08, 0x00])
    key_ix = {"1": 0, "2": 1, "3": 2, "200": 3}
    for v in vectors():
        ix = key_ix[v["key_id"]]
        port_bit = 4 if v["port"] == "5000" else 0
        flags = int(v["flags"]) << 3
        ctl = bytes([0, ix | port_bit | flags, 10, 0, 1, 0x40, 3])[:6]
        write("tunnel_decap", f"{v['name']}-decap",
              ctl + eth_hdr + bytes.fromhex(v["encapsulated"]))
        write("tunnel_decap", f"{v['name']}-encap", ctl + bytes.fromhex(v["inner"]))
        # Repaired inner datagram, a tampered tag position.
        write("tunnel_decap", f"{v['name']}-encap-fixed",
              bytes([3, ix | port_bit | flags, 99, 0, 0x2a, 5]) + bytes.fromhex(v["inner"]))


def reassembly_seeds(arrays):
    by_name = {(s, n): b for s, n, b in arrays}
    e = by_name.get(("fragment", "ETH"), eth(ZERO_MAC, 0x0800, b"")[:14])
    f0, f1 = by_name.get(("fragment", "FRAG0")), by_name.get(("fragment", "FRAG1"))
    whole = by_name.get(("fragment", "DATAGRAM"))

    def rec(flags, dt, frame):
        return bytes([flags, dt]) + struct.pack("<H", len(frame)) + frame

    if f0 and f1 and whole:
        write("reassembly", "fragment-pair", b"\x00" + rec(0, 0, e + f0) + rec(0, 1, e + f1))
        write("reassembly", "fragment-pair-reversed",
              b"\x02" + rec(0, 0, e + f1) + rec(2, 1, e + f0))
        write("reassembly", "fragment-dup",
              b"\x04" + rec(0, 0, e + f0) + rec(0, 0, e + f0) + rec(0, 1, e + f1))
        write("reassembly", "whole", b"\x00" + rec(0, 0, e + whole))
    # Hand-made fragments of a UDP datagram, repaired by the harness.
    payload = udp(5000, 53, bytes(range(40)))
    a = ipv4("198.51.100.10", "192.0.2.2", 17, payload[:24], more=True, ident=77)
    b = ipv4("198.51.100.10", "192.0.2.2", 17, payload[24:], frag=24, ident=77)
    write("reassembly", "udp-two", b"\x06" + rec(1, 0, eth(ZERO_MAC, 0x0800, a))
          + rec(1, 3, eth(ZERO_MAC, 0x0800, b)))
    write("reassembly", "udp-timeout", b"\x08" + rec(1, 0, eth(ZERO_MAC, 0x0800, a))
          + rec(3, 80, eth(ZERO_MAC, 0x0800, b)))
    # Differential mode: [1|sel][proto/options][len][ident][order][unit][rotate][pattern]
    for i, (sel, ln, unit) in enumerate([(0x00, 1400, 60), (0x05, 3000, 180), (0x01, 100, 1),
                                         (0x1d, 9000, 183), (0x02, 64000, 0)]):
        write("reassembly", f"differential-{i}",
              bytes([1 | (i << 1), sel]) + struct.pack("!HH", ln, 0x4242)
              + bytes([i, unit, i * 3]) + b"aves reassembly pattern")


def config_seeds():
    for f in sorted((ROOT / "examples").glob("*.toml")):
        write("config", f.stem, f.read_bytes())
    write("config", "secret-file",
          (ROOT / "examples" / "gateway.toml").read_text()
          .replace('secret = "4156455320653265207368617265642074657374206b65792c207075626c6963"',
                   'secret_file = "key.hex"').encode())
    write("config", "bad-secret", b'[[tunnel.key]]\nid = 1\nsecret = "0123456789abcdef0123456789abcdeg"\n')


def router_seeds():
    r0 = bytes([2, 0, 0, 0, 1, 1])
    pinger = "192.0.2.50"
    frames = [
        ("arp-request", record(0, 0, eth(BCAST, 0x0806, arp(1, PEER_MAC, pinger, ZERO_MAC, "192.0.2.1")))),
        ("arp-pool", record(0, 0, eth(BCAST, 0x0806, arp(1, PEER_MAC, pinger, ZERO_MAC, "192.0.2.101")))),
        ("arp-reply", record(0, 0, eth(r0, 0x0806, arp(2, PEER_MAC, "192.0.2.254", r0, "192.0.2.1")))),
        ("ping", record(FIX, 0, eth(r0, 0x0800, ipv4(pinger, "192.0.2.1", 1, icmp(8))))),
        ("ping-pool", record(FIX, 0, eth(r0, 0x0800, ipv4(pinger, "192.0.2.100", 1, icmp(8))))),
        ("forward", record(FIX, 0, eth(r0, 0x0800, ipv4(pinger, "10.9.1.1", 17, udp(1, 2, b"x"))))),
        ("ttl1", record(FIX, 0, eth(r0, 0x0800, ipv4(pinger, "10.9.1.1", 6, tcp(1, 2, 2), ttl=1)))),
        ("small-mtu-df", record(FIX, 0, eth(r0, 0x0800, ipv4(pinger, "198.18.0.1", 17, udp(1, 2, bytes(900)), df=True)))),
        ("small-mtu", record(FIX, 1, eth(bytes([2, 0, 0, 0, 1, 2]), 0x0800, ipv4("10.0.0.5", "198.18.0.1", 17, udp(1, 2, bytes(900)))))),
        ("unresolved", record(FIX, 0, eth(r0, 0x0800, ipv4(pinger, "10.0.0.77", 17, udp(1, 2))))),
        ("no-route-cmd", record(COMMAND, 0, command(1, b"\x00\x0b\x00\x00\x00\x00")) +
         record(FIX, 0, eth(r0, 0x0800, ipv4(pinger, "8.8.8.8", 17, udp(1, 2))))),
        ("add-neighbour", record(COMMAND, 0, command(2, b"\x01\x0d\x00\x00\x00\x00\x02\x00\x00\x00\x22\x01")) +
         record(FIX | TICK, 0, eth(r0, 0x0800, ipv4(pinger, "198.18.0.1", 17, udp(1, 2))), dt=50)),
    ]
    for name, data in frames:
        write("router", name, b"\x00" + data)
        write("router", f"{name}-mtu68", b"\x01" + data)
    write("router", "all", b"\x00" + b"".join(d for _, d in frames))


def waypoint_seeds():
    w = bytes([2, 0, 0, 0, 0x77, 1])
    a, a2, wp, wp2 = "198.51.100.10", "198.51.100.11", "203.0.113.100", "203.0.113.101"
    frames = [
        ("syn", record(FIX, 0, eth(w, 0x0800, ipv4(a, wp, 6, tcp(40000, 80, 2, mss=1460), df=True)))),
        ("data", record(FIX, 0, eth(w, 0x0800, ipv4(a, wp, 6, tcp(40000, 80, 0x18, b"GET / HTTP/1.0\r\n\r\n"))))),
        ("fin", record(FIX, 0, eth(w, 0x0800, ipv4(a, wp, 6, tcp(40000, 80, 0x11))), dt=5)),
        ("udp-mh", record(FIX, 0, eth(w, 0x0800, ipv4(a2, wp2, 17, udp(5353, 53, b"query"))))),
        ("ping", record(FIX, 0, eth(w, 0x0800, ipv4(a, wp, 1, icmp(8))))),
        ("no-binding", record(FIX, 0, eth(w, 0x0800, ipv4("198.51.100.77", wp, 6, tcp(1, 2, 2))))),
        ("big-df", record(FIX, 0, eth(w, 0x0800, ipv4(a, wp, 17, udp(1, 2, bytes(1460)), df=True)))),
        ("big", record(FIX, 0, eth(w, 0x0800, ipv4(a, wp, 17, udp(1, 2, bytes(1460)))))),
        ("arp", record(0, 0, eth(BCAST, 0x0806, arp(1, PEER_MAC, "203.0.113.1", ZERO_MAC, wp)))),
        ("bind", record(COMMAND, 0, command(4, b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x06\x00\x00\x00\x08\x00\x00\x00")) +
         record(FIX, 0, eth(w, 0x0800, ipv4(a, "203.0.113.115", 6, tcp(1, 2, 2))))),
        ("unbind", record(COMMAND, 0, command(5, b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00")) +
         record(FIX, 0, eth(w, 0x0800, ipv4(a, wp, 6, tcp(1, 2, 2))))),
        ("expire", record(FIX, 0, eth(w, 0x0800, ipv4(a2, wp2, 1, icmp(8)))) +
         record(FIX | TICK, 0, eth(w, 0x0800, ipv4(a2, wp2, 1, icmp(8))), dt=200)),
    ]
    for name, data in frames:
        write("waypoint", name, b"\x00" + data)
        write("waypoint", f"{name}-h", b"\x01" + data)
    write("waypoint", "all", b"\x00" + b"".join(d for _, d in frames))


def gateway_seeds():
    pub, priv = bytes([2, 0, 0, 0, 0x88, 1]), bytes([2, 0, 0, 0, 0x88, 2])
    a, b, r = "198.51.100.10", "10.0.0.2", "192.0.2.2"
    inner = lambda proto, l4, src=a, dst=b, **kw: eth(pub, 0x0800, ipv4(src, dst, proto, l4, **kw))
    frames = [
        ("tunnel-syn", record(FIX | TUNNEL, 0, inner(6, tcp(40000, 80, 2, mss=1460)))),
        ("tunnel-udp-mh", record(FIX | TUNNEL, 0, inner(17, udp(5353, 53, b"q")), aux=0x21)),
        ("tunnel-ping-h", record(FIX | TUNNEL, 0, inner(1, icmp(8)), aux=0x12)),
        ("reply-synack", record(FIX, 1, eth(priv, 0x0800, ipv4(b, a, 6, tcp(80, 40000, 0x12))))),
        ("reply-udp", record(FIX, 1, eth(priv, 0x0800, ipv4(b, a, 17, udp(53, 5353, b"a"))))),
        ("icmp-error", record(FIX, 1, eth(priv, 0x0800, ipv4(b, a, 1, icmp(3, 3, b"\0\0\0\0",
                                                                          ipv4(a, b, 17, udp(5353, 53)))[:64])))),
        ("tunnel-fragments", record(FIX | TUNNEL | FRAGMENT, 0, inner(17, udp(1, 2, bytes(600))), aux=40)),
        ("tunnel-fragments-rev", record(FIX | TUNNEL | FRAGMENT, 0, inner(17, udp(1, 2, bytes(600))), aux=0x80 | 30)),
        ("nat44-out", record(FIX, 1, eth(priv, 0x0800, ipv4(b, "198.51.100.99", 17, udp(5353, 53, b"q"))))),
        ("nat44-in", record(FIX, 0, eth(pub, 0x0800, ipv4("198.51.100.99", r, 17, udp(53, 20000, b"a"))))),
        ("nat44-syn", record(FIX, 1, eth(priv, 0x0800, ipv4(b, "198.51.100.99", 6, tcp(3333, 443, 2))))),
        ("ping-gateway", record(FIX, 0, eth(pub, 0x0800, ipv4(a, r, 1, icmp(8))))),
        ("arp", record(0, 0, eth(BCAST, 0x0806, arp(1, PEER_MAC, "192.0.2.1", ZERO_MAC, r)))),
        ("forged", record(FIX, 0, eth(pub, 0x0800, ipv4("203.0.113.100", r, 17, udp(50000, 4797, bytes([0x10, 1, 0, 0]) + bytes(16) + ipv4(a, b, 17, udp(1, 2))))))),
        ("expire", record(FIX | TUNNEL, 0, inner(17, udp(7, 7))) + record(FIX | TICK, 1, eth(priv, 0x0800, ipv4(b, a, 17, udp(7, 7))), dt=255)),
    ]
    for name, data in frames:
        write("gateway", name, b"\x00" + data)
        write("gateway", f"{name}-2lcores", b"\x01" + data)
    write("gateway", "all", b"\x00" + b"".join(d for _, d in frames))
    write("gateway", "all-rotated", b"\x0c" + b"".join(d for _, d in frames))


def dns_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


QTYPE = {"A": 1, "NS": 2, "SOA": 6, "AAAA": 28, "ANY": 255, "AXFR": 252, "IXFR": 251}


def dns_query(name, qtype="A", ident=0x1234, opcode=0, qr=False, qclass=1, edns=None,
              ecs=None, questions=1):
    """A DNS query; edns: the OPT version (None: no OPT); ecs: (address, prefix)."""
    flags = (0x8000 if qr else 0) | (opcode << 11) | 0x0100
    q = (dns_name(name) + struct.pack("!HH", QTYPE.get(qtype, qtype), qclass)) * questions
    opt = b""
    if edns is not None or ecs is not None:
        data = b""
        if ecs is not None:
            addr, prefix = ecs
            a = ip4(addr)[:(prefix + 7) // 8]
            data = struct.pack("!HHHBB", 8, 4 + len(a), 1, prefix, 0) + a
        opt = b"\x00" + struct.pack("!HHBBHH", 41, 4096, 0, edns or 0, 0, len(data)) + data
    return struct.pack("!HHHHHH", ident, flags, questions, 0, 0, 1 if opt else 0) + q + opt


def dns_rec(msg, src="10.1.0.5", tcp=False):
    """A dns_handler record: flags, source address, length, message."""
    addr = ipaddress.ip_address(src).packed
    flags = (1 if tcp else 0) | (2 if len(addr) == 16 else 0)
    return bytes([flags]) + addr + struct.pack("<H", len(msg)) + msg


def dns_seeds():
    # [mode][four binder outcomes: 0 accept, 1 reject, 2 timeout, 3 silent, 4 slow]
    seq, conc = b"\x00", b"\x01"
    accept, mixed, slow = b"\x00\x00\x00\x00", b"\x00\x01\x02\x03", b"\x04\x09\x0e\x13"
    host, zone = "b.home1.aves.example.", "aves.example."
    single = {
        "host-a-intranet": dns_rec(dns_query(host)),
        "service-a": dns_rec(dns_query("tcp22.B.home1.aves.example.")),
        "host-a-ecs": dns_rec(dns_query(host, ecs=("203.0.113.0", 24)), src="192.0.2.1"),
        "host-a-ecs-bad": dns_rec(dns_query(host, ecs=("203.0.113.1", 24)), src="192.0.2.1"),
        "host-a-resolver": dns_rec(dns_query("c.home2.aves.example.", edns=0), src="192.0.2.1"),
        "host-no-gateway": dns_rec(dns_query("d.home3.aves.example.")),
        "host-aaaa": dns_rec(dns_query(host, "AAAA")),
        "axfr-tcp": dns_rec(dns_query(zone, "AXFR"), tcp=True),
        "axfr-udp": dns_rec(dns_query(zone, "AXFR")),
        "ixfr-udp": dns_rec(dns_query(zone, "IXFR")),
        "notify": dns_rec(dns_query(zone, "SOA", opcode=4)),
        "edns-v1": dns_rec(dns_query(zone, "SOA", edns=1)),
        "soa": dns_rec(dns_query(zone, "SOA", edns=0)),
        "ns": dns_rec(dns_query(zone, "NS")),
        "any": dns_rec(dns_query(zone, "ANY"), tcp=True),
        "ns1-a": dns_rec(dns_query("ns1.aves.example.")),
        "out-of-zone": dns_rec(dns_query("example.com.")),
        "class-ch": dns_rec(dns_query(host, qclass=3)),
        "two-questions": dns_rec(dns_query(host, questions=2)),
        "response": dns_rec(dns_query(host, qr=True)),
        "v6-source": dns_rec(dns_query(zone, "SOA"), src="2001:db8::1"),
        "v4-mapped-intranet": dns_rec(dns_query(host), src="::ffff:10.1.0.7"),
    }
    for name, rec in single.items():
        write("dns_handler", name, seq + accept + rec)
    write("dns_handler", "host-a-reject-timeout", seq + b"\x01\x02\x03\x04" + single["host-a-intranet"] * 4)
    nx = b"".join(dns_rec(dns_query(f"x{i}.aves.example.", ident=i), src="192.0.2.7")
                  for i in range(5))
    write("dns_handler", "nxdomain-ban", seq + accept + nx + single["soa"])
    flood = b"".join(dns_rec(dns_query(zone, "SOA", ident=i), src=f"192.0.2.{i}")
                     for i in range(10))
    write("dns_handler", "rrl-flood", seq + accept + flood)
    write("dns_handler", "rrl-flood-v6", seq + accept + b"".join(
        dns_rec(dns_query(zone, "SOA", ident=i), src=f"2001:db8:0:1::{i}") for i in range(10)))
    write("dns_handler", "rrl-exempt", seq + accept + b"".join(
        dns_rec(dns_query(zone, "SOA", ident=i), src=f"10.1.9.{i}") for i in range(8)))
    same = b"".join(dns_rec(dns_query(host, ident=i)) for i in range(4))
    write("dns_handler", "coalesced", conc + slow + same)
    write("dns_handler", "coalesced-silent", conc + b"\x03\x03\x03\x03" + same)
    write("dns_handler", "concurrent-mixed", conc + mixed + b"".join(single.values())[:4000])
    write("dns_handler", "all", seq + mixed + b"".join(single.values()))


GENERATED = ["wire_parsers", "roundtrip_ipv4", "roundtrip_wire", "tunnel_decap", "reassembly",
             "config", "router", "waypoint", "gateway", "dns_handler"]


def main():
    for t in GENERATED:
        for d in (CORPUS / t).glob("seed-*"):
            d.unlink()
    arrays = rust_arrays()
    wire_seeds(arrays)
    tunnel_seeds()
    reassembly_seeds(arrays)
    config_seeds()
    router_seeds()
    waypoint_seeds()
    gateway_seeds()
    dns_seeds()
    for d in sorted(CORPUS.iterdir()):
        n = len(list(d.iterdir()))
        size = sum(f.stat().st_size for f in d.iterdir())
        print(f"{d.name}: {n} files, {size} bytes")


if __name__ == "__main__":
    main()
