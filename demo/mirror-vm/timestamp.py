#!/usr/bin/env python3
"""Copies stdin (the VM's serial console) to a file, one line at a time, each
prefixed with the host's wall-clock time (seconds, as bash's EPOCHREALTIME)
when it arrived, so that the demo can time guest events against host steps."""
import sys, time

out = open(sys.argv[1], "w", buffering=1)
for raw in sys.stdin.buffer:
    line = raw.decode("utf-8", "replace").rstrip("\r\n")
    out.write("%.6f %s\n" % (time.time(), line))
