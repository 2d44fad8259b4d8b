#!/usr/bin/env python3
"""Hostile DNS queries for tests/e2e/dns.sh (run inside the server's namespace).

  dns_flood.py SERVER FLOOD_NET OTHER_NET SECONDS QPS

- A flood of SOA queries over UDP from 10 addresses of FLOOD_NET (x.y.z.1-10, which
  must be local addresses) at QPS queries per second for SECONDS, while one address of
  OTHER_NET (x.y.z.1) asks 10 queries per second; every answer is read and classified.
- Malformed queries from OTHER_NET: a question cut short (header parsed: FORMERR
  expected), a 5-byte packet (no answer expected), AXFR over UDP (REFUSED expected).

Prints one `key value` line per count; dns.sh checks them.
"""
import select
import socket
import struct
import sys
import time


def query(qid, name, qtype):
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.strip(".").split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", qtype, 1)


def sock(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    s.setblocking(False)
    return s


def drain(socks, counts, key_of):
    while True:
        r, _, _ = select.select(socks, [], [], 0)
        if not r:
            return
        for s in r:
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            k = key_of[s]
            if len(data) < 12:
                counts[k + "_short"] += 1
                continue
            flags, an = struct.unpack(">H", data[2:4])[0], struct.unpack(">H", data[6:8])[0]
            if flags & 0x0200:
                counts[k + "_tc"] += 1
            elif an > 0:
                counts[k + "_answered"] += 1
            else:
                counts[k + "_empty"] += 1


def one(s, pkt, server, wait=1.0):
    s.sendto(pkt, server)
    r, _, _ = select.select([s], [], [], wait)
    return s.recv(4096) if r else None


def main():
    server = (sys.argv[1], 53)
    flood_net, other_net = sys.argv[2], sys.argv[3]
    seconds, qps = float(sys.argv[4]), int(sys.argv[5])
    base = lambda net, h: ".".join(net.split(".")[:3] + [str(h)])
    flood = [sock(base(flood_net, h)) for h in range(1, 11)]
    other = sock(base(other_net, 1))
    key_of = {s: "flood" for s in flood}
    key_of[other] = "other"
    counts = {f"{k}_{v}": 0 for k in ("flood", "other") for v in ("sent", "answered", "tc", "empty", "short")}
    pkt = query(0x4242, "aves.example.", 6)
    t0 = time.monotonic()
    n = 0
    next_other = t0
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            break
        # Keep to QPS: send what is due, then sleep a little.
        due = int((now - t0) * qps)
        while n < due:
            try:
                flood[n % len(flood)].sendto(pkt, server)
                counts["flood_sent"] += 1
            except BlockingIOError:
                pass
            n += 1
        if now >= next_other:
            other.sendto(pkt, server)
            counts["other_sent"] += 1
            next_other += 0.1
        drain(flood + [other], counts, key_of)
        time.sleep(0.001)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        drain(flood + [other], counts, key_of)
        time.sleep(0.01)
    counts["elapsed_ms"] = int((time.monotonic() - t0) * 1000)

    # Malformed queries, from the other network (not limited).
    s = sock(base(other_net, 2))
    cut = query(0x1111, "b.home1.aves.example.", 1)[:20]
    r = one(s, cut, server)
    counts["cut_rcode"] = (r[3] & 0x0F) if r and len(r) >= 12 and r[:2] == b"\x11\x11" else -1
    r = one(s, b"\x22\x22\x01\x00\x00", server, 0.5)
    counts["tiny_answered"] = 0 if r is None else 1
    r = one(s, query(0x3333, "aves.example.", 252), server)
    counts["axfr_udp_rcode"] = (r[3] & 0x0F) if r and len(r) >= 12 and r[:2] == b"\x33\x33" else -1
    counts["axfr_udp_answers"] = struct.unpack(">H", r[6:8])[0] if r and len(r) >= 12 else -1
    for k, v in counts.items():
        print(k, v)


if __name__ == "__main__":
    main()
