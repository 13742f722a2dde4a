#!/usr/bin/env bash
# mail ptr --set / --reset on AWS: reverse DNS of an Elastic IP through EC2,
# then forward-confirmed reverse DNS verified through DNS.
#
# Who serves what, as in reality: NSD plays the world's DNS. The test owns
# the forward zone (the user's example.test, where the A records live); the
# reverse zone 113.0.203.in-addr.arpa belongs to "AWS": the EC2 emulator
# checks ModifyAddressAttribute's forward record against this NSD, and when
# the update completes it rewrites the reverse zone file and signals NSD, and
# reports SUCCESSFUL only once NSD serves the new PTR, the order in which
# AWS's own reverse DNS changes. The test never writes a PTR after the start.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_dns.sh"
. "$(dirname "$0")/../fakes/aws_emulator.sh"
need nsd /usr/bin/python3
/usr/bin/python3 -c 'import dns.message' 2>/dev/null || skip_or_fail "python3-dnspython"

Z="$WORK/zones"
dns_zone "$Z" example.test <<'ZONE'
mail    A  203.0.113.10
wrong   A  203.0.113.99
ZONE
# AWS's default names for its addresses, which resolve back as AWS's do.
dns_zone "$Z" 113.0.203.in-addr.arpa <<'ZONE'
10 PTR ec2-203-0-113-10.us-east-2.compute.amazonaws.com.
20 PTR ec2-203-0-113-20.us-east-2.compute.amazonaws.com.
ZONE
dns_zone "$Z" us-east-2.compute.amazonaws.com <<'ZONE'
ec2-203-0-113-10  A  203.0.113.10
ec2-203-0-113-20  A  203.0.113.20
ZONE
dns_start "$Z" "$(free_port)"
echo "$_DNS_PID" >"$WORK/nsd.pid"
R="127.0.0.1:$DNS_PORT"

INST=i-0aaaaaaaaaaaaaaa1
state() {  # state DENY_JSON_LIST [AUTO_ONLY]
  local addresses='[{"allocation_id": "eipalloc-0eeeeeeeeeeeeeee1", "public_ip": "203.0.113.10",
                     "eni": "eni-0aaaaaaaaaaaaaaa1", "private_ip": "10.0.1.10"},
                    {"allocation_id": "eipalloc-0fffffffffffffff2", "public_ip": "203.0.113.20"}]'
  [ -n "${2:-}" ] && addresses='[]'
  cat <<JSON
{"region": "us-east-2",
 "credentials": [{"access_key_id": "AKIDPTRTEST000000001", "secret_access_key": "ptr-secret"}],
 "instance": {"id": "$INST", "az": "us-east-2a"},
 "subnets": [{"id": "subnet-0aaaaaaaaaaaaaaa1", "cidr": "10.0.1.0/24"}],
 "network_interfaces": [{"id": "eni-0aaaaaaaaaaaaaaa1", "subnet": "subnet-0aaaaaaaaaaaaaaa1",
                         "instance": "$INST", "private_ips": ["10.0.1.10"]}],
 "addresses": $addresses,
 "auto_public_ips": {"10.0.1.10": "3.15.1.2"},
 "deny": $1}
JSON
}
emu() {
  state "$@" >"$WORK/state.json"
  start_emulator "$WORK/state.json" --dns "$R" --ptr-after 1 --ptr-zone-dir "$Z" --dns-pid "$WORK/nsd.pid"
  export AWS_ACCESS_KEY_ID=AKIDPTRTEST000000001 AWS_SECRET_ACCESS_KEY=ptr-secret
}
ck() { "$CK" --provider aws --region us-east-2 --endpoint-url "$EMU_URL" "$@"; }
emu '[]'

# Not on AWS: a usage error naming the provider.
expect_rc 2 "$CK" mail ptr mail.example.test --set --resolver "$R"
expect_contains "$ERR" "needs --provider aws"
expect_rc 2 ck mail ptr mail.example.test --set --address 2001:db8::1 --resolver "$R"
expect_contains "$ERR" "bad --address '2001:db8::1'"

# Forward record missing or elsewhere: said before EC2 is asked, with the record to publish.
expect_rc 1 ck mail ptr missing.example.test --set --resolver "$R"
expect_contains "$ERR" "missing.example.test has no A record"
expect_contains "$ERR" "missing.example.test. IN A 203.0.113.10"
expect_rc 1 ck mail ptr wrong.example.test --set --resolver "$R"
expect_contains "$ERR" "resolves to 203.0.113.99, not to 203.0.113.10"
expect_eq "$(emu_stat 'actions.get("ModifyAddressAttribute", 0)')" 0 "EC2 not asked for a doomed change"

# An address that is not an Elastic IP of this account.
expect_rc 1 ck mail ptr mail.example.test --set --address 198.51.100.7 --resolver "$R"
expect_contains "$ERR" "198.51.100.7 is not an Elastic IP of this account"

# --dry-run: permission and forward record checked, nothing changed.
expect_rc 0 ck mail ptr mail.example.test --set --dry-run --resolver "$R"
expect_contains "$OUT" "ec2:ModifyAddressAttribute allowed"
expect_eq "$(emu_stat 'actions.get("ModifyAddressAttribute", 0)')" 1 "one DryRun call"
expect_eq "$(emu_stat 'locals().get("ptr_updates", 0)')" 0 "the dry run started no update"

# Without --wait: requested, PENDING, and told how to follow it.
expect_rc 0 ck mail ptr mail.example.test --set --resolver "$R"
expect_contains "$ERR" "PENDING"
expect_contains "$OUT" "--set --wait"
# --wait follows it to SUCCESSFUL and verifies FCrDNS through DNS.
expect_rc 0 ck --json mail ptr mail.example.test --set --wait --timeout 60s --resolver "$R"
expect_eq "$(json_get 'd["verdict"]' <<<"$OUT")" "in order"
expect_eq "$(json_get 'd["ptr_record"]' <<<"$OUT")" "mail.example.test."
# The plain check, which knows nothing of AWS, agrees.
expect_rc 0 "$CK" mail ptr mail.example.test --resolver "$R"

# --reset gives the address back AWS's default name; the plain check then fails.
expect_rc 0 ck mail ptr mail.example.test --reset --wait --timeout 60s --resolver "$R"
expect_contains "$OUT" "ec2-203-0-113-10.us-east-2.compute.amazonaws.com."
expect_rc 1 "$CK" mail ptr mail.example.test --resolver "$R"
# mail check on AWS names the command that repairs rule 3, with the exact
# arguments; without the AWS provider it asks for the record as before.
fix3() { json_get '[f["fix"] for f in d["findings"] if f["group"] == "3 PTR" and f["level"] == "FAIL"][0]'; }
expect_rc 1 ck --json mail check example.test --host mail.example.test --no-smtp --rbl bl.example.test --resolver "$R"
expect_contains "$(fix3 <<<"$OUT")" "cloudkeep --provider aws mail ptr mail.example.test --set --address 203.0.113.10"
expect_rc 1 "$CK" --json mail check example.test --host mail.example.test --no-smtp --rbl bl.example.test --resolver "$R"
expect_eq "$(fix3 <<<"$OUT")" "set the PTR to the mail hostname: 10.113.0.203.in-addr.arpa. PTR mail.example.test."

# A missing permission: one line naming the IAM action.
emu '["ModifyAddressAttribute"]'
expect_rc 1 ck mail ptr mail.example.test --set --dry-run --resolver "$R"
expect_contains "$ERR" "not authorized to call ec2:ModifyAddressAttribute"
expect_rc 1 ck mail ptr mail.example.test --set --resolver "$R"
expect_contains "$ERR" "ec2:ModifyAddressAttribute"

# An instance with only an auto-assigned public address.
emu '[]' auto-only
expect_rc 1 ck mail ptr mail.example.test --set --resolver "$R"
expect_contains "$ERR" "has no Elastic IP: its public address 3.15.1.2 is auto-assigned"
expect_contains "$ERR" "aws ec2 allocate-address"
echo "PASS"
