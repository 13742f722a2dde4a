#!/usr/bin/python3
"""Computes the expected values of tests/unit/seal/kat_test.cpp with
implementations independent of the code under test, so that the test compares
cloudkeep's key derivation and formats against someone else's arithmetic:

  - Argon2id (crypto_pwhash): argon2-cffi over the Argon2 reference C library
    (Debian's python3-argon2, linked to libargon2-1), not libsodium's copy;
  - BLAKE2b (crypto_kdf subkeys, keyed chunk ids): CPython's hashlib, built on
    the BLAKE2 reference implementation;
  - the golden key file and sealed object: the layout of docs/store-format.md
    ("Encryption") assembled here by hand, the AEAD from PyNaCl (python3-nacl).

Not run by the tests (the constants are in kat_test.cpp); to regenerate:
  apt-get install python3-argon2 python3-nacl
  /usr/bin/python3 tests/unit/seal/kat_vectors.py
"""
import hashlib
import json
import struct

from argon2.low_level import Type, hash_secret_raw
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt as xchacha_encrypt

SALT = bytes(range(16))


def argon2id(password, opslimit, memlimit):
    # libsodium's memlimit is in bytes, Argon2's m_cost in KiB; parallelism 1, v1.3.
    return hash_secret_raw(password, SALT, time_cost=opslimit, memory_cost=memlimit // 1024,
                           parallelism=1, hash_len=32, type=Type.ID, version=19)


def kdf_subkey(master, subkey_id, context):
    # crypto_kdf_derive_from_key (libsodium 1.0.18): BLAKE2b-256 keyed with the
    # master key, salt = le64(id) || 8 zero bytes, personal = context || 8 zero bytes.
    return hashlib.blake2b(b"", digest_size=32, key=master,
                           salt=struct.pack("<Q", subkey_id) + bytes(8),
                           person=context + bytes(8)).digest()


print("# Argon2id (password, opslimit, memlimit) -> 32 bytes, salt 000102..0f")
for password, ops, mem in [(b"correct horse battery staple", 1, 8192),
                           (b"correct horse battery staple", 3, 65536),
                           ("p\u00e4ssw\u00f6rd".encode(), 2, 67108864)]:
    print(password, ops, mem, argon2id(password, ops, mem).hex())

master = bytes(range(32))
data_key = kdf_subkey(master, 1, b"ckdata01")
chunk_key = kdf_subkey(master, 1, b"ckchnkid")
print("# subkeys of master 000102..1f")
print("data", data_key.hex())
print("chunk_id", chunk_key.hex())
print("# ChunkId = BLAKE2b-256 keyed with the chunk-id key")
print("abc", hashlib.blake2b(b"abc", digest_size=32, key=chunk_key).hexdigest())
print("empty", hashlib.blake2b(b"", digest_size=32, key=chunk_key).hexdigest())
chunk = bytes((i * 7 + 3) & 0xFF for i in range(524288))
print("512KiB (i*7+3)&255", hashlib.blake2b(chunk, digest_size=32, key=chunk_key).hexdigest())

print("# golden key file: password 'correct horse battery staple', opslimit 1, memlimit 8192")
password = b"correct horse battery staple"
nonce = bytes(range(0x40, 0x58))
wrapped = xchacha_encrypt(master, b"cloudkeep-keys-1", nonce, argon2id(password, 1, 8192))
print(json.dumps({"format": "cloudkeep-keys-1", "kdf": "argon2id", "opslimit": 1,
                  "memlimit": 8192, "salt": SALT.hex(), "cipher": "xchacha20-poly1305",
                  "nonce": nonce.hex(), "wrapped_key": wrapped.hex()}))

print("# golden sealed object: magic CKSL, version 1, nonce 808182..97, AD = header[0:5] || name")
name = b"snapshots/snap-0123456789abcdef0.json"
header = b"CKSL\x01"
nonce = bytes(range(0x80, 0x98))
plain = b'{"format": "cloudkeep-manifest-1"}'
print((header + nonce + xchacha_encrypt(plain, header + name, nonce, data_key)).hex())
