#!/usr/bin/env python3
"""Generates the AVES data-tunnel test vectors of docs/protocol.md ("Data tunnel").

An implementation independent of the Rust code (standard library only: hmac, hashlib),
written from the text of docs/protocol.md. `dataplane/tests/protocol_vectors.rs` checks
the Rust encapsulation against what this prints. Run: python3 scripts/tunnel_vectors.py
"""

import hashlib
import hmac
import ipaddress
import struct

OUTER_TTL = 64
UDP, TCP, ICMP = 17, 6, 1


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(a: str) -> bytes:
    return ipaddress.IPv4Address(a).packed


def ipv4(src, dst, proto, payload, ttl, ident, df, tos=0) -> bytes:
    h = struct.pack(
        "!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), ident, 0x4000 if df else 0,
        ttl, proto, 0, ip4(src), ip4(dst),
    )
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def pseudo(src, dst, proto, length) -> bytes:
    return ip4(src) + ip4(dst) + struct.pack("!BBH", 0, proto, length)


def udp(src, dst, sport, dport, data) -> bytes:
    h = struct.pack("!HHHH", sport, dport, 8 + len(data), 0)
    c = csum(pseudo(src, dst, UDP, 8 + len(data)) + h + data) or 0xFFFF
    return h[:6] + struct.pack("!H", c) + data


def tcp(src, dst, sport, dport, seq, ack, flags, window, data) -> bytes:
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, window, 0, 0)
    c = csum(pseudo(src, dst, TCP, 20 + len(data)) + h + data)
    return h[:16] + struct.pack("!H", c) + h[18:] + data


def icmp_echo(ident, seq, data) -> bytes:
    h = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    c = csum(h + data)
    return h[:2] + struct.pack("!H", c) + h[4:] + data


def fnv1a(b: bytes) -> int:
    h = 0x811C9DC5
    for x in b:
        h = ((h ^ x) * 0x01000193) & 0xFFFFFFFF
    return h


def source_port(inner: bytes) -> int:
    proto = inner[9]
    ihl = (inner[0] & 0x0F) * 4
    frag = struct.unpack("!H", inner[6:8])[0] & 0x3FFF
    ports = b"\0\0\0\0"
    if proto in (TCP, UDP, 132) and not frag and len(inner) >= ihl + 4:
        ports = inner[ihl:ihl + 4]
    return 49152 + fnv1a(inner[12:20] + bytes([proto]) + ports) % 16384


def covered(inner: bytes, headers_only: bool) -> bytes:
    if not headers_only:
        return inner
    ihl = (inner[0] & 0x0F) * 4
    return inner[: min(len(inner), ihl + 20)]


def encapsulate(v):
    inner = v["inner"]
    flags, key_id = v["flags"], v["key_id"]
    aves_head = bytes([0x10 | flags, key_id, 0, 0])
    tag_input = (
        ip4(v["outer_src"]) + ip4(v["outer_dst"]) + struct.pack("!H", v["port"])
        + aves_head + covered(inner, bool(flags & 1))
    )
    digest = hashlib.md5 if v["algorithm"] == "hmac-md5" else hashlib.sha256
    tag = hmac.new(v["secret"], tag_input, digest).digest()[:16]
    sport = source_port(inner)
    udp_len = 8 + 20 + len(inner)
    body = struct.pack("!HHHH", sport, v["port"], udp_len, 0) + aves_head + tag + inner
    df = bool(struct.unpack("!H", inner[6:8])[0] & 0x4000)
    outer = ipv4(v["outer_src"], v["outer_dst"], UDP, body, OUTER_TTL, v["ident"], df,
                 tos=inner[1])
    return tag_input, tag, sport, outer


def wrap(hexstr: str, width: int = 64) -> str:
    return "\n  ".join(hexstr[i:i + width] for i in range(0, len(hexstr), width))


A, B = "198.51.100.7", "10.0.0.5"
W, R = "203.0.113.10", "192.0.2.1"
DNS_QUERY = bytes.fromhex("abcd01000001000000000000076578616d706c650363" "6f6d0000010001")

VECTORS = [
    dict(
        name="md5-full", algorithm="hmac-md5", key_id=1,
        secret=bytes(range(0x00, 0x10)), flags=0,
        outer_src=W, outer_dst=R, port=4797, ident=0x0001,
        inner=ipv4(A, B, UDP, udp(A, B, 40000, 53, DNS_QUERY), 63, 0x1c46, True),
        comment="UDP DNS query A:40000 -> B:53, DF set, whole datagram authenticated",
    ),
    dict(
        name="md5-headers-only", algorithm="hmac-md5", key_id=2,
        secret=b"aves tunnel secret #2", flags=0x1,
        outer_src=W, outer_dst=R, port=4797, ident=0x0002,
        inner=ipv4(A, B, TCP, tcp(A, B, 51000, 22, 0x01020304, 0x0A0B0C0D, 0x18, 64240,
                                  b"hello, aves!"), 63, 0x0100, True),
        comment="TCP PSH|ACK with 12 data bytes, flag H: the data bytes are not covered",
    ),
    dict(
        name="sha256-full-multihoming", algorithm="hmac-sha256-128", key_id=3,
        secret=bytes(range(0x20, 0x40)), flags=0x2,
        outer_src=W, outer_dst=R, port=4797, ident=0xFFFF,
        inner=ipv4(A, B, ICMP, icmp_echo(0x0d2f, 1, bytes(range(16))), 63, 0x2000, False),
        comment="ICMP echo request, flag M, DF clear",
    ),
    dict(
        name="sha256-headers-only-ecn", algorithm="hmac-sha256-128", key_id=200,
        secret=bytes([0xA5] * 64), flags=0x3,
        outer_src="203.0.113.77", outer_dst="192.0.2.200", port=5000, ident=0x8000,
        inner=ipv4(A, B, UDP, udp(A, B, 5004, 5004, bytes(range(0x40, 0x68))), 63, 0x0042,
                   False, tos=0x8A),
        comment="UDP with DSCP AF41 + ECT(0) (copied outward), flags H|M, port 5000",
    ),
]


def main():
    for v in VECTORS:
        tag_input, tag, sport, outer = encapsulate(v)
        print("```aves-vector")
        print(f"# {v['comment']}")
        print(f"name: {v['name']}")
        print(f"algorithm: {v['algorithm']}")
        print(f"key_id: {v['key_id']}")
        print(f"secret: {wrap(v['secret'].hex())}")
        print(f"flags: {v['flags']}")
        print(f"outer_src: {v['outer_src']}")
        print(f"outer_dst: {v['outer_dst']}")
        print(f"port: {v['port']}")
        print(f"ident: {v['ident']}")
        print(f"inner: {wrap(v['inner'].hex())}")
        print(f"source_port: {sport}")
        print(f"tag_input: {wrap(tag_input.hex())}")
        print(f"tag: {tag.hex()}")
        print(f"encapsulated: {wrap(outer.hex())}")
        print("```")
        print()


if __name__ == "__main__":
    main()
