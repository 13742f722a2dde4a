#!/usr/bin/env python3
"""extract-vmlinux.py BZIMAGE OUT: writes the kernel ELF that a bzImage carries
(xz or gzip: what Python reads without extra modules), like the
kernel's scripts/extract-vmlinux. Exit 1 if no compressed ELF is found."""
import lzma, sys, zlib

data = open(sys.argv[1], "rb").read()


def try_xz(at):
    return lzma.LZMADecompressor().decompress(data[at:])


def try_gzip(at):
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[at:])


for magic, fn in ((b"\xfd7zXZ\x00", try_xz), (b"\x1f\x8b\x08", try_gzip)):
    at = data.find(magic)
    while at >= 0:
        try:
            out = fn(at)
        except (lzma.LZMAError, zlib.error, EOFError):
            out = b""
        if out[:4] == b"\x7fELF":
            open(sys.argv[2], "wb").write(out)
            sys.exit(0)
        at = data.find(magic, at + 1)
print("no compressed ELF found in " + sys.argv[1], file=sys.stderr)
sys.exit(1)
