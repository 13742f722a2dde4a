#!/usr/bin/env bash
# The RFC 7208 and RFC 4408 SPF conformance suites end to end: every test
# case runs `cloudkeep mail spf` once against a real DNS server on loopback
# (dnslib, UDP and TCP) serving the scenario's zone data by the conventions
# of tests/conformance/spf/DRIVER.md. NSD is not used because the suite needs
# what it cannot serve: a TXT record with no strings (legal on the wire),
# queries that are never answered (TIMEOUT). The in-process run of the same
# suites is tests/unit/mail/spf_conformance_test.cpp; this one proves that
# the command line, libunbound and the wire agree with it.
. "$(dirname "$0")/lib.sh"
need /usr/bin/python3
/usr/bin/python3 -c 'import dnslib, yaml' 2>/dev/null || skip_or_fail "python3-dnslib and python3-yaml"

SUITES="${CK_SOURCE_DIR:-$(dirname "$0")/../..}/tests/conformance/spf"
[ -f "$SUITES/rfc7208-tests.yml" ] || fail "missing $SUITES/rfc7208-tests.yml (the suites belong to the repository)"

# Cases run concurrently; JOBS bounds the binaries in flight (about 25 s
# for both suites with 8 on 2 cores).
# null-text has a TXT record with no strings: libunbound answers SERVFAIL
# for it and cloudkeep reads the answer packet itself
# (src/mail/unbound_resolver.cpp, TxtFromPacket).
expect_rc 0 env JOBS="${JOBS:-8}" /usr/bin/python3 "$(dirname "$0")/spf_suites_e2e.py" "$CK" \
  "$SUITES/rfc7208-tests.yml" "$SUITES/rfc4408-tests.yml"
echo "$OUT"
expect_contains "$OUT" "rfc7208-tests.yml: 203 passed, 0 failed of 203"
expect_contains "$OUT" "rfc4408-tests.yml: 191 passed, 0 failed of 191"
