#!/usr/bin/python3
"""The RFC 7208 and RFC 4408 SPF suites end to end through `cloudkeep mail spf`.

Each scenario's zone data is served by a real DNS server on loopback (dnslib,
UDP and TCP, one port per scenario) following tests/conformance/spf/DRIVER.md:
SPF records copied to TXT unless the name has TXT of its own, NONE is NODATA,
TIMEOUT (and names under error.) are never answered, a TXT given as a list is
one record of several strings, `SPF: []` a TXT record with no strings at all
(legal on the wire; NSD cannot serve it, which is why this is not NSD).
Every test case runs the binary once (--json, --no-lint), concurrently.

usage: spf_suites_e2e.py CLOUDKEEP SUITE.yml... [--known FILE:NAME=REASON ...]
Prints one line per failure and "SUITE: N passed, M failed of T"; exits 1 when
any case that is not a listed known difference fails.
"""
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import threading
import time

import yaml
from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, SOA, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSServer

DROP = object()  # never answer


def key(name):
    return name.rstrip(".").lower()


class ScenarioResolver(BaseResolver):
    def __init__(self, zonedata):
        self.zone = {}
        for name, entries in (zonedata or {}).items():
            self.zone.setdefault(key(name), []).extend(entries or [])

    def lookup(self, name, qtype, depth=0):
        """(rcode, [(type, value)]) or DROP."""
        entries = self.zone.get(name)
        if entries is None:
            return DROP if name.startswith("error.") else ("NXDOMAIN", [])
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        records = []
        for e in entries:
            if isinstance(e, str):
                if e == "TIMEOUT" and not records:
                    return DROP
                continue
            for t, v in e.items():
                rt = "TXT" if (t == "SPF" and not has_txt) else t
                if rt != qtype:
                    continue
                if v == "TIMEOUT":
                    return DROP
                if v == "NONE":
                    continue
                records.append((rt, v))
        if not records and qtype != "CNAME" and depth < 8:
            alias = self.lookup(name, "CNAME", depth + 1)
            if alias is not DROP and alias[1]:
                target = key(alias[1][0][1])
                rest = self.lookup(target, qtype, depth + 1)
                if rest is DROP:
                    return DROP
                return (rest[0], [("CNAME@" + name, target)] + rest[1])
        return ("NOERROR", records)

    def resolve(self, request, handler):
        q = request.q
        # The labels as bytes: names made by macros hold spaces and '%',
        # which str() would print as escapes.
        name = key(".".join(l.decode("latin-1") for l in q.qname.label))
        qname = q.qname
        qtype = QTYPE[q.qtype]
        reply = request.reply()
        reply.header.aa = 1
        reply.header.ra = 1
        res = self.lookup(name, qtype)
        if res is DROP:
            return None
        rcode, records = res
        owner = qname
        for t, v in records:
            if t.startswith("CNAME@"):
                reply.add_answer(RR(owner, QTYPE.CNAME, rdata=CNAME(v + "."), ttl=60))
                owner = v + "."
                continue
            if t == "A":
                rd = A(v)
            elif t == "AAAA":
                rd = AAAA(v)
            elif t == "MX":
                rd = MX(v[1].rstrip(".") + ".", int(v[0]))
            elif t == "PTR":
                rd = PTR(v.rstrip(".") + ".")
            elif t == "CNAME":
                rd = CNAME(v.rstrip(".") + ".")
            elif t == "TXT":
                strings = v if isinstance(v, list) else [v]
                rd = TXT([s.encode() if isinstance(s, str) else bytes(s) for s in strings])
            else:
                continue
            reply.add_answer(RR(owner, getattr(QTYPE, t), rdata=rd, ttl=60))
        if not reply.rr:
            if rcode == "NXDOMAIN":
                reply.header.rcode = RCODE.NXDOMAIN
            # A negative answer carries the SOA so that resolvers take it as final.
            apex = ".".join(name.split(".")[-2:]) + "."
            reply.add_auth(
                RR(apex, QTYPE.SOA, rdata=SOA("ns." + apex, "hostmaster." + apex,
                                              (1, 3600, 600, 86400, 60)), ttl=60))
        return reply


class QuietLogger:
    def log_recv(self, *a): pass
    def log_send(self, *a): pass
    def log_request(self, *a): pass
    def log_reply(self, *a): pass
    def log_truncated(self, *a): pass
    def log_error(self, handler, e): print("dns error:", e, file=sys.stderr)
    def log_data(self, *a): pass


class Server:
    """dnslib's server, except that a None reply (TIMEOUT) is dropped."""

    def __init__(self, resolver):
        self.resolver = resolver
        outer = self

        class Drop(BaseResolver):
            def resolve(self, request, handler):
                r = outer.resolver.resolve(request, handler)
                if r is None:
                    raise _Drop()
                return r

        # UDP takes any free port and TCP the same number, which a TCP
        # socket elsewhere (another test's connection) may hold: then again.
        for attempt in range(50):
            self.udp = DNSServer(Drop(), address="127.0.0.1", port=0, logger=QuietLogger())
            self.port = self.udp.server.server_address[1]
            try:
                self.tcp = DNSServer(Drop(), address="127.0.0.1", port=self.port, tcp=True,
                                     logger=QuietLogger())
                break
            except OSError:
                self.udp.server.server_close()
                if attempt == 49:
                    raise
        self.udp.start_thread()
        self.tcp.start_thread()

    def stop(self):
        self.udp.stop()
        self.tcp.stop()


class _Drop(Exception):
    pass


# dnslib's handler catches resolver exceptions and answers SERVFAIL; a
# dropped query must get no answer at all, so its handle() is wrapped.
import dnslib.server as _srv  # noqa: E402

_orig_handle = _srv.DNSHandler.handle


def _handle(self):
    orig_get_reply = self.get_reply

    def get_reply(data):
        request = DNSRecord.parse(data)
        try:
            reply = self.server.resolver.resolve(request, self)
        except _Drop:
            return None
        return reply.pack()

    self.get_reply = get_reply
    try:
        if self.server.socket_type == socket.SOCK_STREAM:
            import struct
            data = self.request.recv(8192)
            if len(data) < 2:
                return
            length = struct.unpack("!H", data[:2])[0]
            while len(data) - 2 < length:
                more = self.request.recv(8192)
                if not more:
                    return
                data += more
            rep = get_reply(data[2:])
            if rep is not None:
                self.request.sendall(struct.pack("!H", len(rep)) + rep)
        else:
            data, connection = self.request
            rep = get_reply(data)
            if rep is not None:
                if len(rep) > 1232:  # larger than unbound's EDNS buffer: truncate
                    r = DNSRecord.parse(rep)
                    r.rr = []
                    r.header.tc = 1
                    rep = r.pack()
                connection.sendto(rep, self.client_address)
    finally:
        self.get_reply = orig_get_reply


_srv.DNSHandler.handle = _handle


def run_case(ck, port, t):
    # A bound, not a measurement: only the few TIMEOUT cases wait it out, and
    # 1 s was too short for an answer at load 16 with other tests running.
    args = [ck, "--json", "mail", "spf", "--resolver", f"127.0.0.1:{port}", "--timeout",
            os.environ.get("SPF_TIMEOUT", "3s"),
            "--no-lint", "--ip", t["host"]]
    if t.get("mailfrom"):
        args += ["--sender", t["mailfrom"]]
    if t.get("helo"):
        args += ["--helo", t["helo"]]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    try:
        return p.returncode, json.loads(p.stdout), p.stderr
    except ValueError:
        return p.returncode, None, p.stderr + p.stdout


def main():
    ck = sys.argv[1]
    suites, known = [], {}
    args = sys.argv[2:]
    while args:
        a = args.pop(0)
        if a == "--known":
            spec = args.pop(0)
            name, _, reason = spec.partition("=")
            known[name] = reason
        else:
            suites.append(a)
    bad = 0
    t0 = time.monotonic()
    for suite in suites:
        servers, cases = [], []
        for scenario in yaml.safe_load_all(open(suite)):
            if not scenario or "tests" not in scenario:
                continue
            srv = Server(ScenarioResolver(scenario.get("zonedata")))
            servers.append(srv)
            for name, t in scenario["tests"].items():
                cases.append((name, srv.port, t))
        passed, failed, knownfail = 0, [], []
        with concurrent.futures.ThreadPoolExecutor(max_workers=int(os.environ.get("JOBS", "8"))) as ex:
            futs = {ex.submit(run_case, ck, port, t): (name, t) for name, port, t in cases}
            for fut in concurrent.futures.as_completed(futs):
                name, t = futs[fut]
                rc, doc, err = fut.result()
                want = t["result"] if isinstance(t["result"], list) else [t["result"]]
                why = ""
                if doc is None:
                    why = f"exit {rc}, no JSON: {err.strip()[:200]}"
                elif doc.get("result") not in want:
                    why = f"result {doc.get('result')} ({doc.get('problem')})"
                elif "explanation" in t and doc["result"] == "fail":
                    exp = t["explanation"]
                    got = doc.get("explanation", "")
                    # DRIVER.md: DEFAULT stands for the receiver's own default text.
                    if exp == "DEFAULT":
                        if not got.endswith("as a permitted sender"):
                            why = f"explanation '{got}', want the default"
                    elif got != exp:
                        why = f"explanation '{got}', want '{exp}'"
                elif doc.get("result") == "pass" and rc != 0:
                    why = f"pass but exit {rc}"
                if not why:
                    passed += 1
                elif name in known:
                    knownfail.append(name)
                    print(f"  known difference {name}: {known[name]} ({why})")
                else:
                    failed.append(name)
                    print(f"  FAIL {os.path.basename(suite)} {name}: want {want}, got {why}")
        for s in servers:
            s.stop()
        bad += len(failed)
        print(f"{os.path.basename(suite)}: {passed} passed, {len(failed)} failed"
              f"{f', {len(knownfail)} known differences' if knownfail else ''} of {len(cases)}")
    print(f"run time {time.monotonic() - t0:.1f}s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
