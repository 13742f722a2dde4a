#!/usr/bin/python3
"""A local EC2 Query API + IMDSv2 emulator for cloudkeep's tests.

As strict as AWS where cloudkeep could get it wrong: every EC2 request's
SigV4 signature is verified by this file's own implementation (not the C++
one) and bad ones get AWS's error XML; responses use the EC2 XML shapes
(namespace http://ec2.amazonaws.com/doc/2016-11-15/); DescribeSnapshots and
DescribeVolumes paginate with MaxResults/NextToken; snapshots go pending ->
completed over time; a token bucket answers RequestLimitExceeded; snapshots
marked in use refuse deletion; latency and 5xx errors can be injected.
Network interfaces and Elastic IPs (the mirror's address takeover, and
reverse DNS for an EIP) follow EC2's rules: a secondary address moves to
another interface only with AllowReassignment (else InvalidIPAddress.InUse),
an address must lie inside the interface's subnet, less the five addresses
AWS reserves (InvalidParameterValue), an associated EIP moves only with
AllowReassociation (else Resource.AlreadyAssociated), an EIP follows its
private address when that moves, unknown ids get the *.NotFound codes.
IMDSv2 is served under /latest/ with the PUT token handshake (IMDSv1 GETs
without a token get 401, as on instances with IMDSv1 turned off).

Usage: ec2_emulator.py --port N --state FILE.json [options]; the state file
describes credentials, instance, volumes and snapshots (see load_state).
GET /_emu/stats returns counters as JSON for the tests.
"""
import argparse
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import random
import secrets
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
LOCK = threading.Lock()
STATE = {}
STATS = {"requests": 0, "throttled": 0, "injected_5xx": 0, "bad_signature": 0, "in_flight": 0,
         "max_in_flight": 0, "deleted": 0, "actions": {}, "imds_token_puts": 0, "imds_unauthorized": 0,
         "imds_requests": 0}
OPTS = None


# ---------- SigV4 verification (independent of the C++ signer) ----------

def _enc(s, safe=""):
    return urllib.parse.quote(s, safe="-_.~" + safe)


def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def expected_signature(secret, method, path, query_pairs, headers, signed, body, amz_date, scope):
    pairs = sorted((_enc(k), _enc(v)) for k, v in query_pairs)
    cq = "&".join(f"{k}={v}" for k, v in pairs)
    ch = ""
    for name in signed:
        vals = [" ".join(v.split()) for k, v in headers if k.lower() == name]
        ch += f"{name}:{','.join(vals)}\n"
    creq = "\n".join([method, _enc(path or "/", "/"), cq, ch, ";".join(signed), hashlib.sha256(body).hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    date, region, service, _ = scope.split("/")
    k = _sign(("AWS4" + secret).encode(), date)
    k = _sign(k, region)
    k = _sign(k, service)
    k = _sign(k, "aws4_request")
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


def find_key(access_key):
    for c in STATE["credentials"]:
        if c["access_key_id"] == access_key:
            return c
    return None


def verify(handler, body):
    """Returns None when the request is properly signed, else (status, code, message)."""
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return (401, "AuthFailure", "AWS was not able to validate the provided access credentials")
    fields = {}
    for part in auth[len("AWS4-HMAC-SHA256 "):].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    try:
        access_key, date, region, service, term = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        sig = fields["Signature"]
    except (KeyError, ValueError):
        return (400, "IncompleteSignature", "Authorization header requires Credential, SignedHeaders, Signature")
    cred = find_key(access_key)
    if cred is None:
        return (401, "AuthFailure", "AWS was not able to validate the provided access credentials")
    if service != "ec2" or term != "aws4_request":
        return (401, "AuthFailure", f"Credential should be scoped to correct service: 'ec2'.")
    if region != STATE["region"]:
        return (401, "AuthFailure", f"Credential should be scoped to a valid region. ")
    amz_date = handler.headers.get("X-Amz-Date", "")
    try:
        t = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return (400, "IncompleteSignature", "Request must contain a valid X-Amz-Date")
    if abs((dt.datetime.now(dt.timezone.utc) - t).total_seconds()) > 300 or amz_date[:8] != date:
        return (400, "RequestExpired", "Request has expired.")
    for must in ("host", "x-amz-date"):
        if must not in signed:
            return (403, "SignatureDoesNotMatch", f"'{must}' must be a signed header")
    token = handler.headers.get("X-Amz-Security-Token")
    if cred.get("token"):
        if token != cred["token"]:
            return (401, "AuthFailure", "AWS was not able to validate the provided access credentials")
        if "x-amz-security-token" not in signed:
            return (403, "SignatureDoesNotMatch", "x-amz-security-token must be signed")
        exp = cred.get("expires")
        if exp and time.time() > exp:
            return (400, "ExpiredToken", "The security token included in the request is expired")
    url = urllib.parse.urlsplit(handler.path)
    query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
    want = expected_signature(cred["secret_access_key"], handler.command, urllib.parse.unquote(url.path), query,
                              list(handler.headers.items()), signed, body, amz_date,
                              "/".join([date, region, service, term]))
    if not hmac.compare_digest(want, sig):
        return (403, "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.")
    return None


# ---------- state ----------

def now():
    return time.time()


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def load_state(path):
    """State file: {"region", "account", "credentials": [{access_key_id, secret_access_key, token?}],
    "role": {"name", "access_key_id", "secret_access_key", "token", "ttl"}?, "instance": {"id", "az"},
    "volumes": [{"id", "size_gib", "type", "device", "instance"?, "boot"?}],
    "snapshots": [{"id"?, "volume", "age_s", "tags"?, "description"?}] or
    "generate": [{"volume", "count", "interval_s", "oldest_age_s"}], "in_use": [snapshot ids],
    "deny": [actions]}"""
    with open(path) as f:
        st = json.load(f)
    st.setdefault("account", "111122223333")
    st.setdefault("in_use", [])
    st.setdefault("deny", [])
    snaps = {}
    t = now()
    for s in st.get("snapshots", []):
        sid = s.get("id") or new_snap_id()
        snaps[sid] = {"id": sid, "volume": s["volume"], "start": t - s.get("age_s", 0), "tags": s.get("tags", {}),
                      "description": s.get("description", ""), "size": vol_size(st, s["volume"]),
                      "complete_at": t - s.get("age_s", 0)}
    for g in st.get("generate", []):
        for i in range(g["count"]):
            sid = new_snap_id()
            start = t - g["oldest_age_s"] + i * g["interval_s"]
            snaps[sid] = {"id": sid, "volume": g["volume"], "start": start, "tags": {"created-by": "cloudkeep"},
                          "description": "", "size": vol_size(st, g["volume"]), "complete_at": start}
    st["snaps"] = snaps
    load_network(st)
    if "role" in st:
        r = st["role"]
        st["credentials"].append({"access_key_id": r["access_key_id"], "secret_access_key": r["secret_access_key"],
                                  "token": r["token"], "expires": t + r.get("ttl", 3600)})
    return st


def load_network(st):
    """Optional network part of the state file:
    "subnets": [{"id", "cidr", "az"?, "vpc"?}],
    "network_interfaces": [{"id", "subnet", "instance"?, "device_index"?, "private_ips": [primary, ...],
                            "mac"?}],
    "addresses": [{"allocation_id", "public_ip", "eni"?, "private_ip"?, "ptr"?}]  (Elastic IPs of this account),
    "auto_public_ips": {"PRIVATE_IP": "PUBLIC_IP"}  (auto-assigned public addresses, not EIPs),
    "instances": [ids of other instances], "ip_limit": addresses per interface (default 10)."""
    st["subnet_map"] = {}
    for sn in st.get("subnets", []):
        st["subnet_map"][sn["id"]] = {"id": sn["id"], "net": ipaddress.ip_network(sn["cidr"]),
                                      "az": sn.get("az", st["instance"]["az"]),
                                      "vpc": sn.get("vpc", "vpc-0a1b2c3d4e5f60718")}
    st["enis"] = {}
    for i, e in enumerate(st.get("network_interfaces", [])):
        if e["subnet"] not in st["subnet_map"]:
            raise SystemExit(f"state: interface {e['id']} names unknown subnet {e['subnet']}")
        st["enis"][e["id"]] = {"id": e["id"], "subnet": e["subnet"], "instance": e.get("instance"),
                               "device_index": e.get("device_index", 0), "ips": list(e["private_ips"]),
                               "mac": e.get("mac", "02:00:00:00:%02x:%02x" % (i // 256, i % 256))}
    st["eips"] = {}
    for a in st.get("addresses", []):
        st["eips"][a["allocation_id"]] = {"allocation_id": a["allocation_id"], "public_ip": a["public_ip"],
                                          "eni": a.get("eni"), "private_ip": a.get("private_ip"),
                                          "association_id": ("eipassoc-" + secrets.token_hex(9)[:17])
                                          if a.get("eni") else None,
                                          "ptr": a.get("ptr") or default_ptr(st, a["public_ip"]),
                                          "update": None}
    st.setdefault("auto_public_ips", {})
    st.setdefault("ip_limit", 10)
    st["instance_ids"] = {st["instance"]["id"]} | set(st.get("instances", [])) | \
        {e["instance"] for e in st["enis"].values() if e["instance"]}


def instance_public_ip():
    """The public address of this instance's primary interface: its EIP, else its auto-assigned one."""
    with LOCK:
        for e in STATE["enis"].values():
            if e["instance"] == STATE["instance"]["id"] and e["device_index"] == 0:
                a = eip_on(e["id"], e["ips"][0])
                return a["public_ip"] if a else STATE["auto_public_ips"].get(e["ips"][0])
    return None


def default_ptr(st, public_ip):
    return f"ec2-{public_ip.replace('.', '-')}.{st['region']}.compute.amazonaws.com."


def vol_size(st, vid):
    for v in st.get("volumes", []):
        if v["id"] == vid:
            return v.get("size_gib", 8)
    return 8


def new_snap_id():
    return "snap-" + secrets.token_hex(9)[:17]


# ---------- EC2 actions ----------

class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def indexed(params, prefix):
    """Values of Prefix.1, Prefix.2, … in order."""
    out, i = [], 1
    while f"{prefix}.{i}" in params:
        out.append(params[f"{prefix}.{i}"])
        i += 1
    return out


def filters(params):
    out, i = {}, 1
    while f"Filter.{i}.Name" in params:
        out[params[f"Filter.{i}.Name"]] = indexed(params, f"Filter.{i}.Value")
        i += 1
    return out


def tag_specs(params):
    tags, i = {}, 1
    while f"TagSpecification.{i}.ResourceType" in params:
        if params[f"TagSpecification.{i}.ResourceType"] != "snapshot":
            raise ApiError(400, "InvalidParameterValue", "TagSpecification resource type must be snapshot")
        j = 1
        while f"TagSpecification.{i}.Tag.{j}.Key" in params:
            tags[params[f"TagSpecification.{i}.Tag.{j}.Key"]] = params.get(f"TagSpecification.{i}.Tag.{j}.Value", "")
            j += 1
        i += 1
    return tags


def paginate(params, items):
    if "MaxResults" in params:
        mr = int(params["MaxResults"])
        if mr < 5 or mr > 1000:
            raise ApiError(400, "InvalidParameterValue", f"Value ( {mr} ) for parameter maxResults is invalid.")
    else:
        mr = len(items) or 1
    start = 0
    if params.get("NextToken"):
        try:
            start = int(params["NextToken"].split(":")[1])
        except (IndexError, ValueError):
            raise ApiError(400, "InvalidParameterValue", "The specified token is invalid")
    page = items[start:start + mr]
    nxt = f"tok:{start + mr}" if start + mr < len(items) else None
    return page, nxt


def paged_set(params, items, set_name, item_xml):
    """One page of `items` as <set_name><item>…</item></set_name>, and <nextToken> when more follow."""
    page, nxt = paginate(params, items)
    body = f"<{set_name}>" + "".join(f"<item>{item_xml(i)}</item>" for i in page) + f"</{set_name}>"
    if nxt:
        body += f"<nextToken>{nxt}</nextToken>"
    return body


def valid_snap(sid):
    h = sid[5:]
    return sid.startswith("snap-") and len(h) in (8, 17) and all(c in "0123456789abcdef" for c in h)


def valid_vol(vid):
    h = vid[4:]
    return vid.startswith("vol-") and len(h) in (8, 17) and all(c in "0123456789abcdef" for c in h)


def snap_state(s):
    if now() >= s["complete_at"]:
        return "completed", "100%"
    total = max(s["complete_at"] - s["start"], 0.001)
    return "pending", f"{int(99 * (now() - s['start']) / total)}%"


def tagset(tags):
    if not tags:
        return "<tagSet/>"
    return "<tagSet>" + "".join(f"<item><key>{escape(k)}</key><value>{escape(v)}</value></item>"
                                for k, v in tags.items()) + "</tagSet>"


def snap_xml(s, state_tag="status"):
    st, prog = snap_state(s)
    return (f"<snapshotId>{s['id']}</snapshotId><volumeId>{s['volume']}</volumeId><{state_tag}>{st}</{state_tag}>"
            f"<startTime>{iso(s['start'])}</startTime><progress>{prog}</progress>"
            f"<ownerId>{STATE['account']}</ownerId><volumeSize>{s['size']}</volumeSize>"
            f"<description>{escape(s['description'])}</description><encrypted>false</encrypted>"
            f"<storageTier>standard</storageTier>{tagset(s['tags'])}")


def do_describe_snapshots(p):
    owners = indexed(p, "Owner")
    ids = indexed(p, "SnapshotId")
    if ids and "MaxResults" in p:
        raise ApiError(400, "InvalidParameterCombination", "The parameter SnapshotIds cannot be used with MaxResults")
    for sid in ids:
        if not valid_snap(sid):
            raise ApiError(400, "InvalidSnapshotID.Malformed", f'Invalid id: "{sid}" (expecting "snap-...")')
    if owners and owners != ["self"] and owners != [STATE["account"]]:
        return []
    fl = filters(p)
    with LOCK:
        items = sorted(STATE["snaps"].values(), key=lambda s: (s["start"], s["id"]))
        if ids:
            missing = [i for i in ids if i not in STATE["snaps"]]
            if missing:
                raise ApiError(400, "InvalidSnapshot.NotFound", f"The snapshot '{missing[0]}' does not exist.")
            items = [STATE["snaps"][i] for i in ids]
    for name, vals in fl.items():
        if name == "volume-id":
            items = [s for s in items if s["volume"] in vals]
        elif name.startswith("tag:"):
            items = [s for s in items if s["tags"].get(name[4:]) in vals]
        elif name == "status":
            items = [s for s in items if snap_state(s)[0] in vals]
        else:
            raise ApiError(400, "InvalidParameterValue", f"The filter '{name}' is invalid")
    return paged_set(p, items, "snapshotSet", snap_xml)


def vol_xml(v):
    inst = v.get("instance")
    att = ""
    if inst:
        att = (f"<item><volumeId>{v['id']}</volumeId><instanceId>{inst}</instanceId><device>{v['device']}</device>"
               f"<status>attached</status><attachTime>2026-01-01T00:00:00.000Z</attachTime>"
               f"<deleteOnTermination>{'true' if v.get('boot') else 'false'}</deleteOnTermination></item>")
    return (f"<volumeId>{v['id']}</volumeId><size>{v.get('size_gib', 8)}</size><snapshotId/>"
            f"<availabilityZone>{STATE['instance']['az']}</availabilityZone>"
            f"<status>{'in-use' if inst else 'available'}</status><createTime>2026-01-01T00:00:00.000Z</createTime>"
            f"<attachmentSet>{att}</attachmentSet><volumeType>{v.get('type', 'gp3')}</volumeType>"
            f"<iops>3000</iops><encrypted>false</encrypted><multiAttachEnabled>false</multiAttachEnabled>")


def do_describe_volumes(p):
    ids = indexed(p, "VolumeId")
    for vid in ids:
        if not valid_vol(vid):
            raise ApiError(400, "InvalidVolumeID.Malformed", f'Invalid id: "{vid}" (expecting "vol-...")')
    vols = STATE.get("volumes", [])
    if ids:
        known = {v["id"]: v for v in vols}
        for vid in ids:
            if vid not in known:
                raise ApiError(400, "InvalidVolume.NotFound", f"The volume '{vid}' does not exist.")
        vols = [known[i] for i in ids]
    for name, vals in filters(p).items():
        if name == "attachment.instance-id":
            vols = [v for v in vols if v.get("instance") in vals]
        else:
            raise ApiError(400, "InvalidParameterValue", f"The filter '{name}' is invalid")
    return paged_set(p, vols, "volumeSet", vol_xml)


def check_dry_run(p):
    if p.get("DryRun") == "true":
        raise ApiError(412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")


def new_snapshot(vid, tags, description):
    t = now()
    s = {"id": new_snap_id(), "volume": vid, "start": t, "tags": tags, "description": description,
         "size": vol_size(STATE, vid), "complete_at": t + OPTS.complete_after}
    with LOCK:
        STATE["snaps"][s["id"]] = s
    return s


def do_create_snapshot(p):
    vid = p.get("VolumeId", "")
    if not valid_vol(vid):
        raise ApiError(400, "InvalidVolumeID.Malformed", f'Invalid id: "{vid}" (expecting "vol-...")')
    if vid not in {v["id"] for v in STATE.get("volumes", [])}:
        raise ApiError(400, "InvalidVolume.NotFound", f"The volume '{vid}' does not exist.")
    tags = tag_specs(p)
    check_dry_run(p)
    s = new_snapshot(vid, tags, p.get("Description", ""))
    return snap_xml(s)


def do_create_snapshots(p):
    inst = p.get("InstanceSpecification.InstanceId", "")
    if inst != STATE["instance"]["id"]:
        raise ApiError(400, "InvalidInstanceID.NotFound", f"The instance ID '{inst}' does not exist")
    exclude_boot = p.get("InstanceSpecification.ExcludeBootVolume") == "true"
    tags = tag_specs(p)
    check_dry_run(p)
    vols = [v for v in STATE.get("volumes", []) if v.get("instance") == inst and not (exclude_boot and v.get("boot"))]
    items = []
    for v in vols:
        s = new_snapshot(v["id"], dict(tags), p.get("Description", ""))
        items.append(f"<item>{snap_xml(s, 'state')}</item>")
    return "<snapshotSet>" + "".join(items) + "</snapshotSet>"


def do_delete_snapshot(p):
    sid = p.get("SnapshotId", "")
    if not valid_snap(sid):
        raise ApiError(400, "InvalidSnapshotID.Malformed", f'Invalid id: "{sid}" (expecting "snap-...")')
    with LOCK:
        if sid not in STATE["snaps"]:
            raise ApiError(400, "InvalidSnapshot.NotFound", f"The snapshot '{sid}' does not exist.")
        if sid in STATE["in_use"]:
            raise ApiError(400, "InvalidSnapshot.InUse",
                           f"The snapshot {sid} is currently in use by ami-0123456789abcdef0")
        check_dry_run(p)
        del STATE["snaps"][sid]
        STATS["deleted"] += 1
    return "<return>true</return>"


def do_create_tags(p):
    ids = indexed(p, "ResourceId")
    tags, j = {}, 1
    while f"Tag.{j}.Key" in p:
        tags[p[f"Tag.{j}.Key"]] = p.get(f"Tag.{j}.Value", "")
        j += 1
    check_dry_run(p)
    with LOCK:
        for rid in ids:
            if rid not in STATE["snaps"]:
                raise ApiError(400, "InvalidSnapshot.NotFound", f"The snapshot '{rid}' does not exist.")
        for rid in ids:
            STATE["snaps"][rid]["tags"].update(tags)
    return "<return>true</return>"


# ---------- network interfaces and Elastic IPs ----------

def valid_id(prefix, v):
    h = v[len(prefix):]
    return v.startswith(prefix) and len(h) in (8, 17) and all(c in "0123456789abcdef" for c in h)


def get_eni(eid):
    if not valid_id("eni-", eid):
        raise ApiError(400, "InvalidNetworkInterfaceID.Malformed", f'Invalid id: "{eid}" (expecting "eni-...")')
    e = STATE["enis"].get(eid)
    if e is None:
        raise ApiError(400, "InvalidNetworkInterfaceID.NotFound", f"The networkInterface ID '{eid}' does not exist")
    return e


def get_eip(aid):
    if not valid_id("eipalloc-", aid):
        raise ApiError(400, "InvalidAllocationID.Malformed", f'Invalid id: "{aid}" (expecting "eipalloc-...")')
    a = STATE["eips"].get(aid)
    if a is None:
        raise ApiError(400, "InvalidAllocationID.NotFound", f"The allocation ID '{aid}' does not exist")
    return a


def parse_ipv4(v):
    try:
        return ipaddress.IPv4Address(v)
    except ValueError:
        raise ApiError(400, "InvalidParameterValue", f"Invalid value '{v}' for PrivateIpAddress. "
                                                     "It must be a valid IPv4 address.")


def check_in_subnet(eni, ip):
    """AWS reserves the first four addresses and the last one of every subnet."""
    sn = STATE["subnet_map"][eni["subnet"]]
    net = sn["net"]
    a = parse_ipv4(ip)
    if a not in net:
        raise ApiError(400, "InvalidParameterValue",
                       f"Address {ip} does not fall within the subnet's address range")
    off = int(a) - int(net.network_address)
    if off < 4 or a == net.broadcast_address:
        raise ApiError(400, "InvalidParameterValue", f"Address {ip} is reserved by AWS in subnet {sn['id']}")


def holder(ip):
    for e in STATE["enis"].values():
        if ip in e["ips"]:
            return e
    return None


def bool_param(p, name):
    v = p.get(name)
    if v is None:
        return False
    if v not in ("true", "false"):
        raise ApiError(400, "InvalidParameterValue", f"Value ({v}) for parameter {name} is invalid. "
                                                     "Expected: 'true' or 'false'.")
    return v == "true"


def eip_on(eni_id, ip):
    for a in STATE["eips"].values():
        if a["eni"] == eni_id and a["private_ip"] == ip:
            return a
    return None


def eni_xml(e):
    sn = STATE["subnet_map"][e["subnet"]]
    att = ""
    if e["instance"]:
        att = (f"<attachment><attachmentId>eni-attach-{e['id'][4:]}</attachmentId>"
               f"<instanceId>{e['instance']}</instanceId><instanceOwnerId>{STATE['account']}</instanceOwnerId>"
               f"<deviceIndex>{e['device_index']}</deviceIndex><status>attached</status>"
               f"<attachTime>2026-01-01T00:00:00.000Z</attachTime>"
               f"<deleteOnTermination>{'true' if e['device_index'] == 0 else 'false'}</deleteOnTermination>"
               f"</attachment>")

    def assoc(ip):
        a = eip_on(e["id"], ip)
        if a:
            return (f"<association><publicIp>{a['public_ip']}</publicIp><publicDnsName/>"
                    f"<ipOwnerId>{STATE['account']}</ipOwnerId><allocationId>{a['allocation_id']}</allocationId>"
                    f"<associationId>{a['association_id']}</associationId></association>")
        pub = STATE["auto_public_ips"].get(ip)
        if pub and ip == e["ips"][0]:
            return f"<association><publicIp>{pub}</publicIp><publicDnsName/><ipOwnerId>amazon</ipOwnerId></association>"
        return ""
    ips = "".join(f"<item><privateIpAddress>{ip}</privateIpAddress><privateDnsName>ip-{ip.replace('.', '-')}"
                  f".{STATE['region']}.compute.internal</privateDnsName><primary>{'true' if i == 0 else 'false'}"
                  f"</primary>{assoc(ip)}</item>" for i, ip in enumerate(e["ips"]))
    return (f"<networkInterfaceId>{e['id']}</networkInterfaceId><subnetId>{e['subnet']}</subnetId>"
            f"<vpcId>{sn['vpc']}</vpcId><availabilityZone>{sn['az']}</availabilityZone><description/>"
            f"<ownerId>{STATE['account']}</ownerId><requesterManaged>false</requesterManaged>"
            f"<status>{'in-use' if e['instance'] else 'available'}</status><macAddress>{e['mac']}</macAddress>"
            f"<privateIpAddress>{e['ips'][0]}</privateIpAddress><sourceDestCheck>true</sourceDestCheck>"
            f"<groupSet/>{att}{assoc(e['ips'][0])}<tagSet/><privateIpAddressesSet>{ips}</privateIpAddressesSet>"
            f"<ipv6AddressesSet/><interfaceType>interface</interfaceType>")


def do_describe_network_interfaces(p):
    ids = indexed(p, "NetworkInterfaceId")
    if ids and "MaxResults" in p:
        raise ApiError(400, "InvalidParameterCombination",
                       "The parameter NetworkInterfaceIds cannot be used with the parameter MaxResults")
    with LOCK:
        if ids:
            items = [get_eni(i) for i in ids]
        else:
            items = sorted(STATE["enis"].values(), key=lambda e: e["id"])
        for name, vals in filters(p).items():
            if name == "attachment.instance-id":
                items = [e for e in items if e["instance"] in vals]
            elif name in ("addresses.private-ip-address", "private-ip-address"):
                items = [e for e in items if (set(e["ips"]) if name.startswith("addresses") else {e["ips"][0]})
                         & set(vals)]
            elif name == "subnet-id":
                items = [e for e in items if e["subnet"] in vals]
            elif name == "network-interface-id":
                items = [e for e in items if e["id"] in vals]
            else:
                raise ApiError(400, "InvalidParameterValue", f"The filter '{name}' is invalid")
        return paged_set(p, items, "networkInterfaceSet", eni_xml)


def do_assign_private_ip_addresses(p):
    eid = p.get("NetworkInterfaceId")
    if not eid:
        raise ApiError(400, "MissingParameter", "The request must contain the parameter NetworkInterfaceId")
    ips = indexed(p, "PrivateIpAddress")
    count = p.get("SecondaryPrivateIpAddressCount")
    if ips and count is not None:
        raise ApiError(400, "InvalidParameterCombination",
                       "PrivateIpAddresses and SecondaryPrivateIpAddressCount cannot both be specified")
    if not ips and count is None:
        raise ApiError(400, "MissingParameter",
                       "Either PrivateIpAddresses or SecondaryPrivateIpAddressCount must be specified")
    allow = bool_param(p, "AllowReassignment")
    with LOCK:
        e = get_eni(eid)
        if count is not None:
            if not count.isdigit() or int(count) < 1:
                raise ApiError(400, "InvalidParameterValue", f"Invalid value '{count}' for SecondaryPrivateIpAddressCount")
            net = STATE["subnet_map"][e["subnet"]]["net"]
            ips = []
            for a in list(net.hosts())[3:]:
                if holder(str(a)) is None and str(a) not in ips:
                    ips.append(str(a))
                if len(ips) == int(count):
                    break
        new = [ip for ip in ips if ip not in e["ips"]]
        for ip in ips:
            check_in_subnet(e, ip)
            h = holder(ip)
            if h is not None and h is not e:
                if h["ips"][0] == ip:
                    # A primary address never moves, AllowReassignment or not.
                    raise ApiError(400, "InvalidIPAddress.InUse", f"Address {ip} is in use.")
                if not allow:
                    raise ApiError(400, "InvalidIPAddress.InUse", f"Address {ip} is in use.")
        if len(e["ips"]) + len(new) > STATE["ip_limit"]:
            raise ApiError(400, "PrivateIpAddressLimitExceeded",
                           f"Number of private addresses will exceed limit for network interface {eid}")
        check_dry_run(p)
        for ip in new:
            h = holder(ip)
            if h is not None:
                h["ips"].remove(ip)
                # The documented side effect: an EIP on the moved address moves with it.
                a = eip_on(h["id"], ip)
                if a:
                    a["eni"] = e["id"]
            e["ips"].append(ip)
    items = "".join(f"<item><privateIpAddress>{ip}</privateIpAddress></item>" for ip in ips)
    return (f"<networkInterfaceId>{eid}</networkInterfaceId>"
            f"<assignedPrivateIpAddressesSet>{items}</assignedPrivateIpAddressesSet><return>true</return>")


def do_unassign_private_ip_addresses(p):
    eid = p.get("NetworkInterfaceId")
    if not eid:
        raise ApiError(400, "MissingParameter", "The request must contain the parameter NetworkInterfaceId")
    ips = indexed(p, "PrivateIpAddress")
    if not ips:
        raise ApiError(400, "MissingParameter", "The request must contain the parameter PrivateIpAddress")
    with LOCK:
        e = get_eni(eid)
        for ip in ips:
            parse_ipv4(ip)
            if ip not in e["ips"]:
                raise ApiError(400, "InvalidParameterValue",
                               f"Some of the specified addresses are not assigned to interface {eid}")
            if ip == e["ips"][0]:
                raise ApiError(400, "InvalidParameterValue",
                               f"The primary private IP address {ip} of {eid} cannot be unassigned")
        check_dry_run(p)
        for ip in ips:
            e["ips"].remove(ip)
            a = eip_on(eid, ip)
            if a:
                a["eni"] = a["private_ip"] = a["association_id"] = None
    return "<return>true</return>"


def do_associate_address(p):
    aid = p.get("AllocationId")
    if not aid:
        if p.get("PublicIp"):
            raise ApiError(400, "InvalidParameterCombination",
                           "The allowReassociation parameter is only supported when mapping to a VPC instance or "
                           "interface; in a VPC pass AllocationId")
        raise ApiError(400, "MissingParameter", "The request must contain the parameter AllocationId")
    eid, iid = p.get("NetworkInterfaceId"), p.get("InstanceId")
    if eid and iid:
        raise ApiError(400, "InvalidParameterCombination",
                       "Only one of InstanceId and NetworkInterfaceId may be specified")
    if not eid and not iid:
        raise ApiError(400, "MissingParameter", "Either InstanceId or NetworkInterfaceId must be specified")
    allow = bool_param(p, "AllowReassociation")
    with LOCK:
        a = get_eip(aid)
        if iid:
            if iid not in STATE["instance_ids"]:
                raise ApiError(400, "InvalidInstanceID.NotFound", f"The instance ID '{iid}' does not exist")
            prim = [e for e in STATE["enis"].values() if e["instance"] == iid and e["device_index"] == 0]
            if not prim:
                raise ApiError(400, "InvalidInstanceID", f"The instance '{iid}' has no primary network interface")
            e = prim[0]
        else:
            e = get_eni(eid)
        ip = p.get("PrivateIpAddress") or e["ips"][0]
        parse_ipv4(ip)
        if ip not in e["ips"]:
            raise ApiError(400, "InvalidParameterValue",
                           f"The private IP address {ip} is not assigned to network interface {e['id']}")
        if a["eni"] and (a["eni"], a["private_ip"]) != (e["id"], ip) and not allow:
            raise ApiError(400, "Resource.AlreadyAssociated",
                           f"resource {aid} is already associated with associate-id {a['association_id']}")
        other = eip_on(e["id"], ip)
        if other and other is not a and not allow:
            raise ApiError(400, "Resource.AlreadyAssociated",
                           f"resource {e['id']} is already associated with associate-id {other['association_id']}")
        check_dry_run(p)
        if other and other is not a:
            other["eni"] = other["private_ip"] = other["association_id"] = None
        a["eni"], a["private_ip"] = e["id"], ip
        a["association_id"] = "eipassoc-" + secrets.token_hex(9)[:17]
    return f"<return>true</return><associationId>{a['association_id']}</associationId>"


def addr_xml(a):
    body = f"<publicIp>{a['public_ip']}</publicIp><allocationId>{a['allocation_id']}</allocationId><domain>vpc</domain>"
    if a["eni"]:
        e = STATE["enis"][a["eni"]]
        if e["instance"]:
            body += f"<instanceId>{e['instance']}</instanceId>"
        body += (f"<associationId>{a['association_id']}</associationId><networkInterfaceId>{e['id']}"
                 f"</networkInterfaceId><networkInterfaceOwnerId>{STATE['account']}</networkInterfaceOwnerId>"
                 f"<privateIpAddress>{a['private_ip']}</privateIpAddress>")
    return body + f"<publicIpv4Pool>amazon</publicIpv4Pool><networkBorderGroup>{STATE['region']}</networkBorderGroup>"


def do_describe_addresses(p):
    pubs, aids = indexed(p, "PublicIp"), indexed(p, "AllocationId")
    with LOCK:
        items = sorted(STATE["eips"].values(), key=lambda a: a["allocation_id"])
        if pubs:
            by_ip = {a["public_ip"]: a for a in items}
            for ip in pubs:
                if ip not in by_ip:
                    # An auto-assigned address, or another account's EIP, is not found here: as on AWS.
                    raise ApiError(400, "InvalidAddress.NotFound", f"Address '{ip}' not found.")
            items = [by_ip[ip] for ip in pubs]
        if aids:
            for i in aids:
                get_eip(i)
            items = [a for a in items if a["allocation_id"] in aids]
        for name, vals in filters(p).items():
            if name == "instance-id":
                items = [a for a in items if a["eni"] and STATE["enis"][a["eni"]]["instance"] in vals]
            elif name == "network-interface-id":
                items = [a for a in items if a["eni"] in vals]
            elif name == "private-ip-address":
                items = [a for a in items if a["private_ip"] in vals]
            elif name == "public-ip":
                items = [a for a in items if a["public_ip"] in vals]
            elif name == "allocation-id":
                items = [a for a in items if a["allocation_id"] in vals]
            else:
                raise ApiError(400, "InvalidParameterValue", f"The filter '{name}' is invalid")
        return "<addressesSet>" + "".join(f"<item>{addr_xml(a)}</item>" for a in items) + "</addressesSet>"


# ---------- reverse DNS of an Elastic IP (the domain-name address attribute) ----------
#
# As on AWS: ModifyAddressAttribute checks that DomainName's A record is the
# address (asked of the --dns server, which plays the world's DNS), the update
# stays PENDING for --ptr-after seconds, and then AWS's reverse zone serves it:
# the emulator rewrites the in-addr.arpa zone file the test's NSD reads
# (--ptr-zone-dir, one <origin>.zone per /24 the test created), signals NSD
# (--dns-pid) and reports SUCCESSFUL only once that server answers with the new
# PTR, which is the order in which AWS's own reverse DNS changes.

def dns_server():
    host, _, port = OPTS.dns.rpartition(":")
    return host, int(port)


def forward_a(name):
    """The A records of `name` at the --dns server, or None when it has none."""
    import dns.message
    import dns.query
    import dns.rcode
    host, port = dns_server()
    q = dns.message.make_query(name, "A")
    r = dns.query.udp(q, host, port=port, timeout=2)
    if r.rcode() != dns.rcode.NOERROR:
        return None
    out = []
    for rrset in r.answer:
        if rrset.rdtype == 1:
            out.extend(str(x) for x in rrset)
    return out or None


def served_ptr(ip):
    import dns.message
    import dns.query
    import dns.reversename
    host, port = dns_server()
    q = dns.message.make_query(dns.reversename.from_address(ip), "PTR")
    try:
        r = dns.query.udp(q, host, port=port, timeout=2)
    except Exception:
        return None
    for rrset in r.answer:
        if rrset.rdtype == 12:
            return [str(x).lower() for x in rrset]
    return None


ZONE_SERIAL = [int(time.time())]


def write_reverse_zone(ip):
    """Rewrites the /24 zone holding `ip` with every EIP's current PTR; False when the test made no such zone."""
    import os
    a, b, c, _ = ip.split(".")
    origin = f"{c}.{b}.{a}.in-addr.arpa"
    path = os.path.join(OPTS.ptr_zone_dir, origin + ".zone")
    if not os.path.exists(path):
        return False
    ZONE_SERIAL[0] += 1
    lines = [f"$ORIGIN {origin}.", "$TTL 1",
             f"@ IN SOA ns.{origin}. hostmaster.{origin}. {ZONE_SERIAL[0]} 3600 600 86400 1", f"@ IN NS ns.{origin}."]
    for e in STATE["eips"].values():
        if e["public_ip"].rsplit(".", 1)[0] == f"{a}.{b}.{c}":
            lines.append(f"{e['public_ip'].rsplit('.', 1)[1]} IN PTR {e['ptr']}")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    # NSD reloads a zone whose mtime changed; two rewrites within one clock tick must still differ.
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, max(st.st_mtime_ns, int(time.time() * 1e9)) + ZONE_SERIAL[0]))
    return True


def finish_ptr_update(aid, token):
    with LOCK:
        a = STATE["eips"][aid]
        if a["update"] is None or a["update"]["token"] != token:
            return  # superseded by a later request
        a["ptr"] = a["update"]["value"]
        zoned = OPTS.ptr_zone_dir and write_reverse_zone(a["public_ip"])
    if zoned:
        import os
        import signal
        if OPTS.dns_pid:
            with open(OPTS.dns_pid) as f:
                os.kill(int(f.read().strip()), signal.SIGHUP)
        want = a["ptr"].lower()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and served_ptr(a["public_ip"]) != [want]:
            time.sleep(0.05)
    with LOCK:
        if a["update"] is not None and a["update"]["token"] == token:
            a["update"]["status"] = "SUCCESSFUL"


def start_ptr_update(a, value):
    """Called with LOCK held (threading.Lock is not reentrant)."""
    token = secrets.token_hex(4)
    a["update"] = {"value": value, "status": "PENDING", "token": token}
    STATS["ptr_updates"] = STATS.get("ptr_updates", 0) + 1
    t = threading.Timer(OPTS.ptr_after, finish_ptr_update, (a["allocation_id"], token))
    t.daemon = True
    t.start()


def addr_attr_xml(a):
    upd = ""
    if a["update"]:
        reason = "" if a["update"]["status"] != "PENDING" else "<reason>The PTR record update is in progress</reason>"
        upd = (f"<ptrRecordUpdate><value>{escape(a['update']['value'])}</value>"
               f"<status>{a['update']['status']}</status>{reason}</ptrRecordUpdate>")
    return (f"<publicIp>{a['public_ip']}</publicIp><allocationId>{a['allocation_id']}</allocationId>"
            f"<ptrRecord>{escape(a['ptr'])}</ptrRecord>{upd}")


def need_domain_name_attribute(p):
    attr = p.get("Attribute")
    if attr is None:
        raise ApiError(400, "MissingParameter", "The request must contain the parameter Attribute")
    if attr != "domain-name":
        raise ApiError(400, "InvalidParameterValue", f"Value ({attr}) for parameter attribute is invalid. "
                                                     "Valid values: domain-name")


def do_modify_address_attribute(p):
    aid = p.get("AllocationId")
    if not aid:
        raise ApiError(400, "MissingParameter", "The request must contain the parameter AllocationId")
    name = p.get("DomainName")
    if not name:
        raise ApiError(400, "MissingParameter", "The request must contain the parameter DomainName")
    with LOCK:
        a = get_eip(aid)
    check_dry_run(p)
    fqdn = name.rstrip(".").lower() + "."
    if not OPTS.dns:
        raise ApiError(500, "InternalError", "emulator started without --dns: cannot check the forward record")
    addrs = forward_a(fqdn)
    if addrs is None:
        raise ApiError(400, "InvalidParameterValue",
                       f"The forward DNS record for {name} could not be found. Create an A record for {name} "
                       f"pointing to {a['public_ip']} before setting reverse DNS.")
    if a["public_ip"] not in addrs:
        raise ApiError(400, "InvalidParameterValue",
                       f"The forward DNS record for {name} ({', '.join(addrs)}) does not point to "
                       f"{a['public_ip']}.")
    with LOCK:
        start_ptr_update(a, fqdn)
        return f"<address>{addr_attr_xml(a)}</address>"


def do_reset_address_attribute(p):
    aid = p.get("AllocationId")
    if not aid:
        raise ApiError(400, "MissingParameter", "The request must contain the parameter AllocationId")
    need_domain_name_attribute(p)
    with LOCK:
        a = get_eip(aid)
    check_dry_run(p)
    with LOCK:
        start_ptr_update(a, default_ptr(STATE, a["public_ip"]))
        return f"<address>{addr_attr_xml(a)}</address>"


def do_describe_addresses_attribute(p):
    need_domain_name_attribute(p)
    aids = indexed(p, "AllocationId")
    with LOCK:
        items = [get_eip(i) for i in aids] if aids else sorted(STATE["eips"].values(),
                                                               key=lambda a: a["allocation_id"])
        check_dry_run(p)
        return paged_set(p, items, "addressSet", addr_attr_xml)


ACTIONS = {"DescribeSnapshots": do_describe_snapshots, "DescribeVolumes": do_describe_volumes,
           "CreateSnapshot": do_create_snapshot, "CreateSnapshots": do_create_snapshots,
           "DeleteSnapshot": do_delete_snapshot, "CreateTags": do_create_tags,
           "DescribeNetworkInterfaces": do_describe_network_interfaces,
           "AssignPrivateIpAddresses": do_assign_private_ip_addresses,
           "UnassignPrivateIpAddresses": do_unassign_private_ip_addresses,
           "AssociateAddress": do_associate_address, "DescribeAddresses": do_describe_addresses,
           "ModifyAddressAttribute": do_modify_address_attribute,
           "ResetAddressAttribute": do_reset_address_attribute,
           "DescribeAddressesAttribute": do_describe_addresses_attribute}


class Bucket:
    """Token bucket: `rate` requests per second, bursts of `burst`."""

    def __init__(self, rate, burst):
        self.rate, self.burst, self.tokens, self.t = rate, burst, burst, time.monotonic()
        self.lock = threading.Lock()

    def take(self):
        if self.rate <= 0:
            return True
        with self.lock:
            t = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (t - self.t) * self.rate)
            self.t = t
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


BUCKET = None
IMDS_TOKENS = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if OPTS.verbose:
            super().log_message(fmt, *args)

    def send(self, status, body, ctype="text/xml;charset=UTF-8", extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error_xml(self, status, code, message):
        rid = str(uuid.uuid4())
        self.send(status, f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
                          f'<Message>{escape(message)}</Message></Error></Errors><RequestID>{rid}</RequestID>'
                          f'</Response>')

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # ----- IMDSv2 -----
    def imds(self, method):
        with LOCK:
            STATS["imds_requests"] += 1
        self.read_body()
        if method == "PUT":
            if self.path != "/latest/api/token":
                return self.send(404, "Not Found", "text/plain")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.send(400, "Bad Request", "text/plain")
            if self.headers.get("X-Forwarded-For"):
                return self.send(403, "Forbidden", "text/plain")
            tok = secrets.token_urlsafe(40)
            with LOCK:
                IMDS_TOKENS[tok] = time.time() + int(ttl)
                STATS["imds_token_puts"] += 1
            return self.send(200, tok, "text/plain", {"X-aws-ec2-metadata-token-ttl-seconds": ttl})
        tok = self.headers.get("X-aws-ec2-metadata-token")
        with LOCK:
            ok = tok in IMDS_TOKENS and IMDS_TOKENS[tok] > time.time()
            if not ok:
                STATS["imds_unauthorized"] += 1
        if not ok:
            return self.send(401, "Unauthorized", "text/plain")
        inst = STATE["instance"]
        md = {"/latest/meta-data/instance-id": inst["id"],
              "/latest/meta-data/placement/availability-zone": inst["az"],
              "/latest/meta-data/placement/region": STATE["region"]}
        pub = instance_public_ip()
        if pub:
            md["/latest/meta-data/public-ipv4"] = pub
        role = STATE.get("role")
        if role:
            md["/latest/meta-data/iam/security-credentials/"] = role["name"]
            with LOCK:
                cred = next(c for c in STATE["credentials"] if c["access_key_id"] == role["access_key_id"])
            md["/latest/meta-data/iam/security-credentials/" + role["name"]] = json.dumps({
                "Code": "Success", "LastUpdated": iso(time.time()), "Type": "AWS-HMAC",
                "AccessKeyId": role["access_key_id"], "SecretAccessKey": role["secret_access_key"],
                "Token": role["token"], "Expiration": iso(cred["expires"])})
        if self.path not in md:
            return self.send(404, "Not Found", "text/plain")
        return self.send(200, md[self.path], "text/plain")

    def do_PUT(self):
        if self.path.startswith("/latest/"):
            return self.imds("PUT")
        self.read_body()
        self.send(404, "Not Found", "text/plain")

    def do_GET(self):
        if self.path.startswith("/latest/"):
            return self.imds("GET")
        if self.path == "/_emu/stats":
            with LOCK:
                doc = dict(STATS, snapshots=len(STATE["snaps"]))
            return self.send(200, json.dumps(doc), "application/json")
        if self.path == "/_emu/network":
            with LOCK:
                doc = {"enis": {k: v["ips"] for k, v in STATE["enis"].items()},
                       "eips": {k: {"eni": v["eni"], "private_ip": v["private_ip"], "ptr": v["ptr"]}
                                for k, v in STATE["eips"].items()}}
            return self.send(200, json.dumps(doc), "application/json")
        self.read_body()
        self.error_xml(400, "InvalidAction", "GET is not used by this emulator: send a POST")

    def do_POST(self):
        body = self.read_body()
        with LOCK:
            STATS["requests"] += 1
            STATS["in_flight"] += 1
            STATS["max_in_flight"] = max(STATS["max_in_flight"], STATS["in_flight"])
        try:
            self.ec2(body)
        finally:
            with LOCK:
                STATS["in_flight"] -= 1

    def ec2(self, body):
        if OPTS.latency_ms:
            time.sleep(OPTS.latency_ms / 1000.0)
        bad = verify(self, body)
        if bad:
            with LOCK:
                STATS["bad_signature"] += 1
            return self.error_xml(*bad)
        if not BUCKET.take():
            with LOCK:
                STATS["throttled"] += 1
            return self.error_xml(503, "RequestLimitExceeded", "Request limit exceeded.")
        if OPTS.error_rate and random.random() < OPTS.error_rate:
            with LOCK:
                STATS["injected_5xx"] += 1
            return self.error_xml(500, "InternalError", "An internal error has occurred")
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith("application/x-www-form-urlencoded"):
            return self.error_xml(400, "MissingAction", "The request must contain the parameter Action")
        params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        action = params.get("Action", "")
        if params.get("Version") != "2016-11-15":
            return self.error_xml(400, "InvalidParameterValue", "Version must be 2016-11-15")
        if action not in ACTIONS:
            return self.error_xml(400, "InvalidAction", f"The action {action} is not valid for this web service.")
        with LOCK:
            STATS["actions"][action] = STATS["actions"].get(action, 0) + 1
        if action in STATE["deny"]:
            return self.error_xml(403, "UnauthorizedOperation",
                                  "You are not authorized to perform this operation.")
        try:
            inner = ACTIONS[action](params)
        except ApiError as e:
            return self.error_xml(e.status, e.code, e.message)
        rid = str(uuid.uuid4())
        self.send(200, f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{NS}">'
                       f'<requestId>{rid}</requestId>{inner}</{action}Response>')


def main():
    global OPTS, STATE, BUCKET
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="127.0.0.1", help="address to listen on (a test namespace's, for IMDS)")
    ap.add_argument("--state", required=True)
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--rate", type=float, default=0, help="token bucket refill per second; 0 = no limit")
    ap.add_argument("--burst", type=float, default=100)
    ap.add_argument("--error-rate", type=float, default=0, help="fraction of calls answered with a 500")
    ap.add_argument("--complete-after", type=float, default=2.0, help="seconds a new snapshot stays pending")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dns", help="ADDR:PORT of the DNS server ModifyAddressAttribute checks forward records against")
    ap.add_argument("--ptr-after", type=float, default=1.0, help="seconds a reverse DNS update stays PENDING")
    ap.add_argument("--ptr-zone-dir", help="directory of the in-addr.arpa zone files to rewrite when a PTR changes")
    ap.add_argument("--dns-pid", help="pid file of the NSD that reads --ptr-zone-dir (sent SIGHUP to reload)")
    ap.add_argument("--verbose", action="store_true")
    OPTS = ap.parse_args()
    random.seed(OPTS.seed)
    STATE = load_state(OPTS.state)
    BUCKET = Bucket(OPTS.rate, OPTS.burst)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    srv = ThreadingHTTPServer((OPTS.bind, OPTS.port), Handler)
    # --port 0 takes any free port; this line says which (tests wait for it).
    print(f"ec2-emulator listening on {OPTS.bind}:{srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
