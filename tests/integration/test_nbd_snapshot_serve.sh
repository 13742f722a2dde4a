#!/usr/bin/env bash
# `snapshot serve` read-only, against real clients: nbdinfo (--json, --can,
# --map, --list), nbdcopy and qemu-img compare byte-exact against
# `snapshot restore`, fio's nbd engine reading at depth 16, several clients
# at once; bad input is a one-line error naming the value (exit 2); SIGTERM
# stops it cleanly and removes its socket; the store is left untouched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nbd_snapshot.sh"
need nbdinfo nbdcopy qemu-img qemu-io fio cmp

make_volume "$WORK/vol.img" 40
make_snapshot "$WORK/vol.img"
expect_rc 0 "$CK" --store "$STORE" snapshot restore "$SNAP" --to "$WORK/restored.img"
cmp "$WORK/vol.img" "$WORK/restored.img" || fail "restore differs from the volume"
store_sum() { (cd "$STORE" && find chunks snapshots -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }
before=$(store_sum)

echo "== bad input: exit 2, one line naming the value"
expect_rc 2 "$CK" --store "$STORE" snapshot serve snap-nothex
expect_contains "$ERR" "snap-nothex"
expect_rc 2 "$CK" --store "$STORE" snapshot serve snap-0123456789abcdef0
expect_contains "$ERR" "unknown snapshot 'snap-0123456789abcdef0'"
expect_rc 2 "$CK" --store "$STORE" snapshot serve "$SNAP" --cache-size 1M
expect_contains "$ERR" "--cache-size '1M'"
expect_rc 2 "$CK" --store "$STORE" snapshot serve "$SNAP" --cache-size lots
expect_contains "$ERR" "'lots'"
expect_rc 2 "$CK" --store "$STORE" snapshot serve "$SNAP" --listen 127.0.0.1:99999
expect_contains "$ERR" "127.0.0.1:99999"
expect_rc 2 "$CK" --store "$STORE" snapshot serve "$SNAP" --overlay "$WORK/ov"
expect_contains "$ERR" "--overlay '$WORK/ov' needs --writable"
expect_rc 2 "$CK" --store "$STORE" --json snapshot serve "$SNAP" --hydrate-to "$WORK/restored.img"
expect_contains "$ERR" "not an unfinished hydrate"
expect_eq "$(json_get 'd["error"]["exit_code"]' <<<"$OUT")" 2
expect_eq "$(wc -l <<<"$ERR")" 1 "one line of error"
expect_rc 0 "$CK" snapshot serve --help
expect_contains "$OUT" "Examples:"

echo "== serve: the JSON document"
serve_snapshot srv "$SNAP"
doc="$(cat "$WORK/srv.out")"
expect_eq "$(json_get 'd["snapshot"]' <<<"$doc")" "$SNAP"
expect_eq "$(json_get 'd["size_bytes"]' <<<"$doc")" $((40 << 20))
expect_eq "$(json_get 'd["writable"]' <<<"$doc")" False
expect_eq "$(json_get 'd["exports"]' <<<"$doc")" "['', '$SNAP']"
expect_eq "$(json_get 'len(d["addresses"])' <<<"$doc")" 2
expect_eq "$(json_get 'd["pid"]' <<<"$doc")" "$SERVE_PID"

echo "== nbdinfo --json, --can, --list"
expect_rc 0 nbdinfo --json "$URI"
expect_eq "$(json_get 'd["exports"][0]["export-size"]' <<<"$OUT")" $((40 << 20))
expect_eq "$(json_get 'd["exports"][0]["is_read_only"]' <<<"$OUT")" True
expect_eq "$(json_get 'd["exports"][0]["can_multi_conn"]' <<<"$OUT")" True
expect_eq "$(json_get 'd["exports"][0]["can_cache"]' <<<"$OUT")" True
expect_contains "$(json_get 'd["exports"][0]["description"]' <<<"$OUT")" "snapshot $SNAP"
expect_rc 0 nbdinfo --can read "$TURI"
expect_rc 2 nbdinfo --can write "$URI"
expect_rc 2 nbdinfo --can trim "$URI"
expect_rc 0 nbdinfo --list --json "nbd+unix:///?socket=$WORK/srv.sock"
expect_contains "$OUT" "\"$SNAP\""
expect_rc 0 nbdinfo --size "nbd+unix:///?socket=$WORK/srv.sock"  # the default export
expect_eq "$OUT" $((40 << 20))

echo "== nbdinfo --map: zero chunks are holes, the rest data, as in the manifest"
expect_rc 0 nbdinfo --map --json "$URI"
/usr/bin/python3 - "$OUT" "$WORK/vol.img" <<'PY' || fail "map does not match the zero chunks"
import json, sys
m = json.loads(sys.argv[1])
img = open(sys.argv[2], "rb").read()
C = 512 * 1024
want = []
for i in range(0, len(img), C):
    zero = img[i:i + C].count(0) == len(img[i:i + C])
    want.append(3 if zero else 0)
got = []
for e in m:
    assert e["offset"] % C == 0 and e["length"] % C == 0, e
    got += [e["type"]] * (e["length"] // C)
assert got == want, (got, want)
PY

echo "== nbdcopy and qemu-img compare byte-exact against snapshot restore"
expect_rc 0 nbdcopy --connections=4 "$URI" "$WORK/copy.img"
cmp "$WORK/restored.img" "$WORK/copy.img" || fail "nbdcopy copy differs from snapshot restore"
expect_rc 0 qemu-img compare -f raw -F raw "$WORK/restored.img" "$TURI"
expect_rc 0 qemu-io -r -f raw -c "read -P 0 2M 1M" -c "read -v 4M 16" "$URI"
expect_contains "$OUT" "cloudkeep.nbd.li"

echo "== fio: random 4k reads at depth 16 from two clients, while nbdcopy runs"
nbdcopy "$TURI" null: &
copier=$!
expect_rc 0 fio --name=r --ioengine=nbd --uri="$URI" --rw=randread --bs=4k --iodepth=16 \
  --size=40M --numjobs=2 --time_based --runtime=2 --output-format=json --output="$WORK/fio.json"
wait "$copier" || fail "nbdcopy to null: failed while fio ran"
expect_eq "$(json_get 'd["jobs"][0]["error"]' <"$WORK/fio.json")" 0 "fio error"
[ "$(json_get 'd["jobs"][0]["read"]["io_bytes"]' <"$WORK/fio.json")" -gt 0 ] || fail "fio read nothing"

echo "== SIGTERM: clean exit, socket removed, store untouched"
stop_server "$SERVE_PID"
[ ! -e "$WORK/srv.sock" ] || fail "the Unix socket was left behind"
expect_contains "$(cat "$WORK/srv.err")" "SIGTERM: stopping"
expect_eq "$(store_sum)" "$before" "the store changed"
expect_rc 0 "$CK" --store "$STORE" snapshot verify
