#!/usr/bin/env python3
"""Generates the AVES control-message test vectors of docs/protocol.md ("Control messages").

Independent of the Rust code (standard library only: hmac, hashlib, struct), written from
the text of docs/protocol.md. control/src/proto.rs checks that sealing each message gives
these bytes and that opening them gives the message back.
Run: python3 scripts/control_vectors.py
"""

import hashlib
import hmac
import ipaddress
import struct

TYPES = {"SETUP": 1, "ACCEPT": 2, "REJECT": 3, "REGISTER": 4}
KINDS = {"initiator": 0, "client-subnet": 1, "resolver": 2}
MODES = {"plain": 0, "multihoming": 1}
REASONS = {"conflict": 1, "table_full": 2, "not_ours": 3, "unknown_gateway": 4,
           "unavailable": 5, "unsupported": 6}


def ip4(a):
    return ipaddress.IPv4Address(a).packed


def sender16(a):
    ip = ipaddress.ip_address(a)
    if ip.version == 4:
        return b"\0" * 10 + b"\xff\xff" + ip.packed  # RFC 4291 2.5.5.2
    return ip.packed


def body(v):
    t = v["type"]
    if t == "SETUP":
        net = ipaddress.IPv4Network(v["initiator"])
        return (struct.pack("!I", v["serial"]) + net.network_address.packed
                + bytes([net.prefixlen, KINDS[v["initiator_kind"]], MODES[v["mode"]], 0])
                + ip4(v["waypoint"]) + ip4(v["gateway"]) + ip4(v["responder"]))
    if t == "ACCEPT":
        return struct.pack("!I", v["serial"]) + ip4(v["waypoint"])
    if t == "REJECT":
        return (struct.pack("!I", v["serial"]) + ip4(v["waypoint"])
                + bytes([REASONS[v["reason"]], 0, 0, 0]))
    if t == "REGISTER":
        return (struct.pack("!I", v["gateway_id"]) + ip4(v["address"])
                + struct.pack("!HH", v["interval_s"], 0))
    raise ValueError(t)


def tag(alg, secret, data):
    h = hmac.new(secret, data, hashlib.md5 if alg == "hmac-md5" else hashlib.sha256)
    return h.digest()[:16]


def wrap(label, hexs, width=64):
    lines = [hexs[i:i + width] for i in range(0, len(hexs), width)]
    return f"{label}: " + "\n  ".join(lines)


VECTORS = [
    dict(comment="intranet SETUP (paper 3.3.1): the DNS server knows the initiator",
         name="setup-intranet-md5", algorithm="hmac-md5", key_id=7,
         secret="000102030405060708090a0b0c0d0e0f", sender="192.0.2.53",
         sequence=1700000000000000, type="SETUP", serial=1,
         initiator="198.51.100.10/32", initiator_kind="initiator", mode="plain",
         waypoint="203.0.113.100", gateway="192.0.2.2", responder="10.0.0.2"),
    dict(comment="general-mode SETUP (paper 3.3.2) with an ECS /24, multi-homing, SHA-256",
         name="setup-ecs-sha256", algorithm="hmac-sha256-128", key_id=8,
         secret="a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
         sender="192.0.2.53", sequence=1700000000000123, type="SETUP",
         serial=4294967295, initiator="198.51.100.0/24", initiator_kind="client-subnet",
         mode="multihoming", waypoint="203.0.113.115", gateway="192.0.2.2",
         responder="10.0.0.3"),
    dict(comment="the waypoint's ACCEPT, signed with the requester's key",
         name="accept-md5", algorithm="hmac-md5", key_id=7,
         secret="000102030405060708090a0b0c0d0e0f", sender="203.0.113.2",
         sequence=1700000000000500, type="ACCEPT", serial=1, waypoint="203.0.113.100"),
    dict(comment="REJECT: the pair is bound to another responder",
         name="reject-conflict-md5", algorithm="hmac-md5", key_id=7,
         secret="000102030405060708090a0b0c0d0e0f", sender="203.0.113.2",
         sequence=1700000000000501, type="REJECT", serial=2, waypoint="203.0.113.100",
         reason="conflict"),
    dict(comment="a gateway registers its public address (paper 5.3)",
         name="register-sha256", algorithm="hmac-sha256-128", key_id=9,
         secret="6761746577617920726567697374726174696f6e206b6579",
         sender="192.0.2.2", sequence=1700000000999999, type="REGISTER",
         gateway_id=1, address="192.0.2.2", interval_s=60),
]


def main():
    for v in VECTORS:
        header = bytes([1, TYPES[v["type"]], v["key_id"], 0]) + struct.pack("!Q", v["sequence"])
        signed = header + body(v)
        tag_input = sender16(v["sender"]) + signed
        t = tag(v["algorithm"], bytes.fromhex(v["secret"]), tag_input)
        print("```aves-control-vector")
        print(f"# {v['comment']}")
        for k, val in v.items():
            if k != "comment":
                print(f"{k}: {val}")
        print(wrap("tag_input", tag_input.hex()))
        print(f"tag: {t.hex()}")
        print(wrap("message", (signed + t).hex()))
        print("```")
        print()


if __name__ == "__main__":
    main()
