# Encrypted stores (src/seal): the key file and sealed objects come back from
# an object store whose operator the encryption does not trust.
ck_fuzz_target(fuzz_seal_keyfile ck_seal)
ck_fuzz_target(fuzz_seal_open ck_seal)
