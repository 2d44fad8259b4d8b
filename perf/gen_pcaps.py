#!/usr/bin/env python3
"""Writes the benchmark workloads as pcap files (standard library only).

usage: gen_pcaps.py OUT.pcap --size N --flows F --dst-mac MAC --src IP --dst IP
                    [--proto udp|tcp] [--df] [--packets P]

Every frame is Ethernet/IPv4/(UDP|TCP) of exactly --size bytes (without FCS) with
valid checksums; flow i uses source port 1024 + i % 60000 and destination port
5001 + i // 60000 (one initiator address, so one waypoint binding serves every flow),
so up to 3.6 million distinct 5-tuples. --packets defaults to
max(F, 1024) (the pcap is replayed in a loop by DPDK's net_pcap infinite_rx).
"""
import argparse
import ipaddress
import struct


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def frame(size, dst_mac, src_mac, src, dst, sport, dport, proto, df):
    ip_len = size - 14
    l4_len = ip_len - 20
    if proto == "udp":
        payload = bytes(range(256)) * ((l4_len - 8) // 256 + 1)
        payload = payload[: l4_len - 8]
        l4 = struct.pack("!HHHH", sport, dport, l4_len, 0) + payload
        p = 17
    else:
        payload = b"\x5a" * (l4_len - 20)
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 5 << 4, 0x18, 65535, 0, 0) + payload
        p = 6
    pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, p, len(l4))
    c = csum(pseudo + l4) or 0xFFFF
    off = 6 if p == 17 else 16
    l4 = l4[:off] + struct.pack("!H", c) + l4[off + 2 :]
    flags = 0x4000 if df else 0
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 1, flags, 64, p, 0, src.packed, dst.packed)
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return dst_mac + src_mac + b"\x08\x00" + hdr + l4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--flows", type=int, default=1)
    ap.add_argument("--packets", type=int, default=0)
    ap.add_argument("--dst-mac", default="02:70:63:61:70:00")
    ap.add_argument("--src", default="198.51.100.10")
    ap.add_argument("--dst", default="198.19.0.2")
    ap.add_argument("--proto", default="udp", choices=["udp", "tcp"])
    ap.add_argument("--df", action="store_true")
    a = ap.parse_args()
    if a.size < 60 or a.size > 9000:
        raise SystemExit("--size must be 60..9000")
    if not 1 <= a.flows <= 60000 * 60:
        raise SystemExit("--flows must be 1..3600000")
    dst_mac = bytes(int(x, 16) for x in a.dst_mac.split(":"))
    src_mac = bytes([2, 0, 0, 0, 0xAA, 1])
    src0 = ipaddress.IPv4Address(a.src)
    dst = ipaddress.IPv4Address(a.dst)
    n = a.packets or max(a.flows, 1024)
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(n):
            k = i % a.flows
            fr = frame(a.size, dst_mac, src_mac, src0, dst, 1024 + k % 60000, 5001 + k // 60000, a.proto, a.df)
            f.write(struct.pack("<IIII", 0, 0, len(fr), len(fr)) + fr)


if __name__ == "__main__":
    main()
