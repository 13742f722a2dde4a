#!/usr/bin/python3
# Signs stdin with libopendkim itself (ctypes): opendkim-testmsg can only
# make rsa-sha1 signatures, which RFC 8301 forbids verifiers to accept.
# usage: odsign.py KEYFILE SELECTOR DOMAIN rsa-sha256|ed25519-sha256 HCANON BCANON
import ctypes, sys
from ctypes import c_void_p, c_char_p, c_int, c_ssize_t, c_size_t, POINTER, byref

key, selector, domain, alg, hcanon, bcanon = sys.argv[1:7]
ALG = {"rsa-sha256": 1, "ed25519-sha256": 2}      # DKIM_SIGN_* in dkim.h
CANON = {"simple": 0, "relaxed": 1}                # DKIM_CANON_*
lib = ctypes.CDLL("libopendkim.so.11")
lib.dkim_init.restype = c_void_p
lib.dkim_init.argtypes = [c_void_p, c_void_p]
lib.dkim_sign.restype = c_void_p
lib.dkim_sign.argtypes = [c_void_p, c_char_p, c_void_p, c_char_p, c_char_p, c_char_p, c_int, c_int, c_int,
                          c_ssize_t, POINTER(c_int)]
lib.dkim_chunk.argtypes = [c_void_p, c_char_p, c_size_t]
lib.dkim_eom.argtypes = [c_void_p, c_void_p]
lib.dkim_getsighdr.argtypes = [c_void_p, c_char_p, c_size_t, c_size_t]
lib.dkim_geterror.restype = c_char_p
lib.dkim_geterror.argtypes = [c_void_p]
msg = sys.stdin.buffer.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
dl = lib.dkim_init(None, None)
st = c_int(0)
d = lib.dkim_sign(dl, b"job", None, open(key, "rb").read(), selector.encode(), domain.encode(),
                  CANON[hcanon], CANON[bcanon], ALG[alg], -1, byref(st))
if not d or st.value != 0:
    sys.exit("dkim_sign failed: status %d" % st.value)
for step, rc in (("chunk", lib.dkim_chunk(d, msg, len(msg))), ("chunk end", lib.dkim_chunk(d, None, 0)),
                 ("eom", lib.dkim_eom(d, None))):
    if rc != 0:
        sys.exit("dkim_%s failed: %d %s" % (step, rc, lib.dkim_geterror(d)))
buf = ctypes.create_string_buffer(8192)
rc = lib.dkim_getsighdr(d, buf, len(buf), len("DKIM-Signature: "))
if rc != 0:
    sys.exit("dkim_getsighdr failed: %d" % rc)
sys.stdout.buffer.write(b"DKIM-Signature: " + buf.value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n" + msg)
