# The latency wire format (probes, replies, control frames) and the mesh peers file.
ck_fuzz_target(fuzz_latency_wire ck_latency)
ck_fuzz_target(fuzz_latency_peers ck_latency)
