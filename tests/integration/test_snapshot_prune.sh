#!/usr/bin/env bash
# snapshot prune end to end: the original tool's "-o 7" over several volumes,
# restic-style --keep-* rules with the rule that kept each snapshot,
# --dry-run changing nothing, --max-count, and --allow-empty protection.
. "$(dirname "$0")/lib.sh"
need /usr/bin/python3

S="$WORK/store"
ck() { "$CK" --store "$S" "$@"; }
a="$WORK/a.img"
b="$WORK/b.img"
head -c 1M /dev/urandom >"$a"
head -c 1M /dev/urandom >"$b"

# 30 daily snapshots of each volume, backdated by rewriting their manifests'
# creation time (the store's own format; docs/store-format.md).
for i in $(seq 1 30); do
  dd if=/dev/urandom of="$a" bs=4k count=1 seek="$i" conv=notrunc status=none
  ck snapshot create "$a" >/dev/null 2>&1
  ck snapshot create "$b" >/dev/null 2>&1
done
/usr/bin/python3 - "$S" <<'PY'
import json, os, sys, datetime
root = sys.argv[1] + "/snapshots"
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
by_volume = {}
for name in sorted(os.listdir(root)):
    m = json.load(open(os.path.join(root, name)))
    by_volume.setdefault(m["volume_id"], []).append((m["created"], m["id"], name, m))
for vol, snaps in by_volume.items():
    snaps.sort()
    for age, (_, _, name, m) in enumerate(reversed(snaps)):
        # newest: 1 hour ago; then one per day, at noon-ish
        m["created"] = (now - datetime.timedelta(days=age, hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        with open(os.path.join(root, name), "w") as f:
            json.dump(m, f, indent=1)
PY
count() { ck --json snapshot list -v "$1" | json_get 'len(d["snapshots"])'; }
expect_eq "$(count "$a")" 30
expect_eq "$(count "$b")" 30

# --dry-run: a plan, nothing deleted.
expect_rc 0 ck --json snapshot prune -v "$a" -v "$b" -o 7 --dry-run
expect_eq "$(json_get 'd["removed"]' <<<"$OUT")" 46
expect_eq "$(json_get 'd["kept"]' <<<"$OUT")" 14
expect_eq "$(json_get 'd["volumes"][0]["snapshots"][-1]["result"]' <<<"$OUT")" "would-delete"
expect_eq "$(count "$a")" 30

# The original tool: -o 7 deletes every snapshot older than 7 days, per volume.
expect_rc 0 ck snapshot prune -v "$a" -v "$b" -o 7
expect_contains "$OUT" "newer than 7d"
expect_contains "$OUT" "46 removed"
expect_eq "$(count "$a")" 7
expect_eq "$(count "$b")" 7
expect_rc 0 ck snapshot verify

# restic rules: keep-last 2 + keep-daily 4 over 7 daily snapshots keeps 4,
# and says which rule kept each one.
expect_rc 0 ck --json snapshot prune -v "$a" --keep-last 2 --keep-daily 4
expect_eq "$(json_get 'd["kept"]' <<<"$OUT")" 4
expect_eq "$(json_get 'd["volumes"][0]["snapshots"][0]["reasons"]' <<<"$OUT")" "['last snapshot', 'daily snapshot']"
expect_eq "$(json_get 'd["volumes"][0]["snapshots"][2]["reasons"]' <<<"$OUT")" "['daily snapshot']"
expect_eq "$(json_get 'd["volumes"][0]["snapshots"][4]["action"]' <<<"$OUT")" "remove"
expect_eq "$(count "$a")" 4

# --max-count caps what the rules keep.
expect_rc 0 ck --json snapshot prune -v "$b" --keep-daily 10 --max-count 3
expect_eq "$(count "$b")" 3
expect_contains "$OUT" "over --max-count 3"

# Removing a volume's newest snapshot, or all of them, needs --allow-empty.
expect_rc 2 ck snapshot prune -v "$b" -o 1s
expect_contains "$ERR" "--allow-empty"
expect_eq "$(count "$b")" 3
expect_rc 0 ck snapshot prune -v "$b" -o 1s --allow-empty
expect_eq "$(count "$b")" 0
expect_rc 0 ck --json snapshot verify
expect_eq "$(json_get 'd["unreferenced_chunks"]' <<<"$OUT")" "0"

# A volume without snapshots is fine; a bad keep count is not.
expect_rc 0 ck snapshot prune -v "$WORK/none.img" -o 7
expect_rc 2 ck snapshot prune -v "$a" --keep-daily lots
