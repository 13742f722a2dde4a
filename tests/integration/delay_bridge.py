#!/usr/bin/env python3
# usage: delay_bridge.py IFACE_A IFACE_B DELAY_SECONDS (run as root in the namespace holding both)
# (used by test_latency_netns.sh and the mirror tests and bench)
# Forwards every Ethernet frame between two interfaces after a fixed delay.
# veth leaves TCP/UDP checksums to "hardware" (CHECKSUM_PARTIAL), so frames
# the kernel marks TP_STATUS_CSUMNOTREADY get their checksum computed here.
import array, heapq, select, socket, struct, sys, time
ETH_P_ALL, PACKET_OUTGOING, PACKET_AUXDATA, CSUMNOTREADY = 3, 4, 8, 8
delay = float(sys.argv[3])

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(array.array("H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return (~s) & 0xFFFF

def fix(frame):
    f = bytearray(frame)
    et = struct.unpack_from("!H", f, 12)[0]
    if et == 0x0800:
        ihl = (f[14] & 15) * 4
        proto, total = f[23], struct.unpack_from("!H", f, 16)[0]
        l4 = 14 + ihl
        end = 14 + total
        pseudo = bytes(f[26:34]) + struct.pack("!BBH", 0, proto, end - l4)
    elif et == 0x86DD:
        proto, plen = f[20], struct.unpack_from("!H", f, 18)[0]
        l4 = 54
        end = l4 + plen
        pseudo = bytes(f[22:54]) + struct.pack("!IxxxB", plen, proto)
    else:
        return frame
    off = {6: 16, 17: 6}.get(proto)
    if off is None:
        return frame
    f[l4 + off:l4 + off + 2] = b"\0\0"
    c = csum(pseudo + bytes(f[l4:end]))
    struct.pack_into("H", f, l4 + off, c if c or proto == 6 else 0xFFFF)
    return bytes(f)

socks = []
for name in sys.argv[1:3]:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(263, PACKET_AUXDATA, 1)  # SOL_PACKET
    s.bind((name, 0))
    s.setblocking(False)
    socks.append(s)
peer = {socks[0]: socks[1], socks[1]: socks[0]}
queue, n = [], 0
while True:
    timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 1.0
    ready, _, _ = select.select(socks, [], [], timeout)
    for s in ready:
        while True:
            try:
                data, anc, _, addr = s.recvmsg(65536, 1024)
            except BlockingIOError:
                break
            if addr[2] == PACKET_OUTGOING:
                continue
            for level, typ, val in anc:
                if level == 263 and typ == PACKET_AUXDATA and struct.unpack_from("I", val)[0] & CSUMNOTREADY:
                    data = fix(data)
            n += 1
            heapq.heappush(queue, (time.monotonic() + delay, n, peer[s], data))
    now = time.monotonic()
    while queue and queue[0][0] <= now:
        _, _, s, data = heapq.heappop(queue)
        try:
            s.send(data)
        except OSError:
            pass  # a frame above the MTU: dropped, as a real link would
