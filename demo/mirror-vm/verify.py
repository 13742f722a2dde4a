#!/usr/bin/env python3
"""verify.py IMAGE SERIAL_LOG [--since T] [--env FILE]

Checks the demo VM's promise host-side: every record the guest writer
printed as acknowledged ("ACK seq=N off=O crc=C", guest_writer.c) is in
IMAGE (the surviving copy's backing file) at offset O, with a valid CRC-32,
this run's id, and sequence number N -- or, where the writer's ring wrapped,
a later record of this run in the same slot. With several writers (w=K in
their lines, each with its own START and region) each is checked on its own. SERIAL_LOG is timestamp.py's
output: "EPOCH_SECONDS line" per line.

Also counts I/O errors the guest reported (its own "EIO" lines and the
kernel's "I/O error" messages) and, with --since T (epoch seconds, e.g. when
the service address moved to the new primary), the acknowledgements after T
and the first of them. --env FILE writes the numbers as shell assignments.
Exit 0 when every acknowledged record is present and no I/O error was seen.
"""
import argparse, re, struct, sys, zlib

REC = 4096
ACK = re.compile(r"ACK seq=(\d+) off=(\d+) crc=([0-9a-f]{8}) us=(\d+)(?: w=(\d+))?")
START = re.compile(r"START run=([0-9a-f]{16}) .*base=(\d+) slots=(\d+)(?: interval_ms=\d+)?(?: w=(\d+))?")

ap = argparse.ArgumentParser()
ap.add_argument("image")
ap.add_argument("serial")
ap.add_argument("--since", type=float)
ap.add_argument("--env")
a = ap.parse_args()

writers = {}  # writer -> (run, base, slots)
acks = []  # (time, seq, off, crc, us, writer)
eio_lines = []
for line in open(a.serial, errors="replace"):
    ts, _, text = line.rstrip("\n").partition(" ")
    try:
        t = float(ts)
    except ValueError:
        continue
    m = START.search(text)
    if m:
        w = int(m.group(4) or 0)
        if w in writers:
            sys.exit("verify: guest writer %d started twice (the VM rebooted?): %s" % (w, text))
        writers[w] = (int(m.group(1), 16), int(m.group(2)), int(m.group(3)))
        continue
    m = ACK.search(text)
    if m:
        acks.append((t, int(m.group(1)), int(m.group(2)), int(m.group(3), 16), int(m.group(4)),
                     int(m.group(5) or 0)))
        continue
    if "EIO seq=" in text or "I/O error" in text:
        eio_lines.append(text)

if not writers:
    sys.exit("verify: no START line from the guest writer in " + a.serial)

img = open(a.image, "rb")
max_seq = {}
for _, seq, _, _, _, w in acks:
    max_seq[w] = max(seq, max_seq.get(w, 0))

present = superseded = 0
bad = []
for _, seq, off, crc, _, w in acks:
    if w not in writers:
        bad.append((seq, "writer %d acknowledged without a START line" % w))
        continue
    run, base, slots = writers[w]
    if off != base + ((seq - 1) % slots) * REC:
        bad.append((seq, "offset %d is not the slot of seq %d" % (off, seq)))
        continue
    img.seek(off)
    r = img.read(REC)
    if len(r) != REC:
        bad.append((seq, "short read at %d" % off))
        continue
    magic, rrun, rseq, roff = r[:8], *struct.unpack_from("<QQQ", r, 8)
    (rcrc,) = struct.unpack_from("<I", r, REC - 4)
    if magic != b"CKVMREC1" or rrun != run or roff != off or zlib.crc32(r[: REC - 4]) != rcrc:
        bad.append((seq, "no valid record of this run at offset %d" % off))
    elif rseq == seq:
        if rcrc != crc:
            bad.append((seq, "crc %08x on disk, %08x acknowledged" % (rcrc, crc)))
        else:
            present += 1
    elif rseq > seq and (rseq - seq) % slots == 0 and rseq <= max_seq[w] + 1:
        superseded += 1  # the ring wrapped: a later record of this run took the slot
    else:
        bad.append((seq, "offset %d holds seq %d" % (off, rseq)))

gaps = [(acks[i][0] - acks[i - 1][0], acks[i][1]) for i in range(1, len(acks))]
max_gap, gap_seq = max(gaps, default=(0.0, 0))
after = [x for x in acks if a.since is not None and x[0] > a.since]
first_after = after[0] if after else None

print("verify: %d records acknowledged by the VM (%d writer%s, seq up to %d), %d present on %s with "
      "the right checksum, %d superseded by later records (ring wrapped), %d missing or wrong"
      % (len(acks), len(writers), "" if len(writers) == 1 else "s", max(max_seq.values(), default=0),
         present, a.image, superseded, len(bad)))
for seq, why in bad[:10]:
    print("  MISSING seq=%d: %s" % (seq, why))
if eio_lines:
    print("verify: the VM reported %d I/O error line(s):" % len(eio_lines))
    for l in eio_lines[:10]:
        print("  " + l)
print("verify: longest pause between two acknowledgements: %.3f s (before seq=%d)" % (max_gap, gap_seq))
if a.since is not None:
    print("verify: %d acknowledged after the failover%s" % (
        len(after), "" if not first_after else ", the first seq=%d at +%.3f s (that write waited %.3f s in the guest)"
        % (first_after[1], first_after[0] - a.since, first_after[4] / 1e6)))

if a.env:
    with open(a.env, "w") as f:
        f.write("V_ACKED=%d\nV_PRESENT=%d\nV_SUPERSEDED=%d\nV_MISSING=%d\nV_EIO=%d\n"
                % (len(acks), present, superseded, len(bad), len(eio_lines)))
        f.write("V_MAX_GAP=%.3f\nV_AFTER=%d\nV_WRITERS=%d\n" % (max_gap, len(after), len(writers)))
        if first_after:
            f.write("V_FIRST_AFTER_T=%.6f\nV_FIRST_AFTER_SEQ=%d\nV_FIRST_AFTER_WAIT=%.3f\n"
                    % (first_after[0], first_after[1], first_after[4] / 1e6))
sys.exit(0 if not bad and not eio_lines and acks else 1)
