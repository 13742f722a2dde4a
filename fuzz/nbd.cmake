# The NBD server core: the handshake (option haggling) and the transmission
# phase (request headers, payloads, flags) as a hostile client sends them.
ck_fuzz_target(fuzz_nbd_handshake ck_nbd)
ck_fuzz_target(fuzz_nbd_request ck_nbd)
