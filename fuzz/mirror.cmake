# The mirror's replication link: frame headers and the BITMAP payload as a
# hostile or broken peer sends them (after TLS, which authenticates but does
# not make the peer's bytes well-formed).
ck_fuzz_target(fuzz_mirror_frame ck_mirror)
