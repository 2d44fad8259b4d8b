#!/usr/bin/env python3
"""Sequence numbers of control messages at the e2e level, for tests/e2e/setup.sh (run
in the namespace the SETUP was sent from).

  control_seq.py CTL_ADDR:PORT KEY_HEX_FILE SAVED_SETUP SENDER_CANDIDATES...

Re-signs a SETUP that was just accepted (saved by `aves setup --save`) under other
sequence numbers (docs/protocol.md: tag = HMAC-MD5(key, sender ‖ header ‖ body)) and
sends each, printing `name answered|none`:
- reordered: 1 s before the original (within the replay window): answered (a retry);
- stale: 40 s before (outside the 30 s clock window): none;
- fill: 130 newer ones, each answered, which slide the 128-entry window past ...
- beyond: one 0.5 s before the original, never seen but now below the window: none.
The sender address is found among the candidates by checking the saved tag.
"""
import hashlib
import hmac
import ipaddress
import select
import socket
import sys

ctl, port = sys.argv[1].rsplit(":", 1)
key = bytes.fromhex(open(sys.argv[2]).read().strip())
saved = open(sys.argv[3], "rb").read()


def tag(sender, signed):
    mapped = ipaddress.IPv4Address(sender).packed
    return hmac.new(key, b"\0" * 10 + b"\xff\xff" + mapped + signed, hashlib.md5).digest()[:16]


sender = next(s for s in sys.argv[4:] if tag(s, saved[:-16]) == saved[-16:])
seq0 = int.from_bytes(saved[4:12], "big")
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sender, 0))


def send(seq, wait=0.7):
    signed = saved[:4] + seq.to_bytes(8, "big") + saved[12:-16]
    sock.sendto(signed + tag(sender, signed), (ctl, int(port)))
    r, _, _ = select.select([sock], [], [], wait)
    if not r:
        return "none"
    reply = sock.recv(512)
    return "answered" if len(reply) > 2 and reply[1] in (2, 3) else "other"


print("sender", sender)
print("reordered", send(seq0 - 1_000_000))
print("stale", send(seq0 - 40_000_000))
fill = sum(send(seq0 + i) == "answered" for i in range(1, 131))
print("fill_answered", fill)
print("beyond", send(seq0 - 500_000))
