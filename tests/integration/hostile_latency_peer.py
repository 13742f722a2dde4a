#!/usr/bin/env python3
"""A latency peer that speaks the wire format (docs/latency-wire-format.md)
but announces a hostile name and zone: escape sequences (clear screen, set
the window title, 8-bit CSI), a lone invalid UTF-8 byte, a bidi override.
Over UDP it answers PROBE with REPLY and HELLO with HELLO_REPLY; over TCP it
answers a CONTROL frame with a correctly MACed CONTROL_REPLY whose "error"
holds escape sequences too. For test_latency_hostile.sh.

    hostile_latency_peer.py PORT TOKEN

PORT 0 takes any free port (UDP, then TCP on the same number); the peer
prints "listening on 127.0.0.1:PORT" once both are bound.
"""
import hashlib
import hmac
import json
import socket
import struct
import sys
import threading
import time

MAGIC = b"CKLT\x01"
NAME = b"evil\x1b[2J\x1b]0;pwned\x07\xff"
ZONE = b"z\xc2\x9b31m\xe2\x80\xaeone"
ERROR = "no\x1b[31m red\x1b]0;title\x07 \u009b2J"


def udp(s):
    while True:
        msg, peer = s.recvfrom(65536)
        if len(msg) < 32 or msg[:5] != MAGIC or msg[5] not in (1, 3):
            continue
        if struct.unpack(">H", msg[6:8])[0] != len(msg):
            continue
        out = bytearray(msg)
        out[5] = 2 if msg[5] == 1 else 4
        out[24:32] = struct.pack(">Q", time.time_ns())
        if msg[5] == 3:
            pad = bytes([len(NAME)]) + NAME + bytes([len(ZONE)]) + ZONE
            out[32:] = (pad + bytes(len(out) - 32))[: len(out) - 32]
        s.sendto(bytes(out), peer)


def read_full(c, n):
    buf = b""
    while len(buf) < n:
        chunk = c.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def control(c, token):
    with c:
        head = read_full(c, 12)
        if head[:5] != MAGIC or head[5] != 5:
            return
        n = struct.unpack(">I", head[8:12])[0]
        payload = read_full(c, n)
        read_full(c, 32)
        req = json.loads(payload)
        body = json.dumps({"nonce": req.get("nonce", ""), "error": ERROR}).encode()
        frame = MAGIC + bytes([6, 0, 0]) + struct.pack(">I", len(body)) + body
        c.sendall(frame + hmac.new(token, frame, hashlib.sha256).digest())


def tcp(s, token):
    while True:
        c, _ = s.accept()
        threading.Thread(target=control, args=(c, token), daemon=True).start()


def main():
    port, token = int(sys.argv[1]), sys.argv[2].encode()
    for attempt in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", port))
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            t.bind(("127.0.0.1", u.getsockname()[1]))
            break
        except OSError:  # that TCP port is taken (port 0 only): another one
            u.close()
            t.close()
            if port or attempt == 49:
                raise
    port = u.getsockname()[1]
    t.listen()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    threading.Thread(target=udp, args=(u,), daemon=True).start()
    tcp(t, token)


if __name__ == "__main__":
    main()
