#!/usr/bin/env bash
# mirror init/status/run on one machine: bad configuration is one line and
# exit 2 with nothing written; init refuses to overwrite; a peer with the
# wrong key is refused and logged; two nodes on loopback sync.
. "$(dirname "$0")/lib.sh"
need openssl /usr/bin/python3 md5sum
PA=$(free_port)
PB=$(free_port)
openssl rand -hex 32 >"$WORK/web.psk"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$WORK/a.img"
truncate -s $((8 * 1024 * 1024)) "$WORK/b.img"
truncate -s $((9 * 1024 * 1024)) "$WORK/big.img"
write_cfg() {  # write_cfg FILE DEV_B [PSK_FILE] [META_B]
  cat >"$1" <<EOT
[resource.web]
protocol = "sync"
psk_file = "${3:-$WORK/web.psk}"
connect_interval = "200ms"
[[resource.web.node]]
name = "a"
address = "127.0.0.1:$PA"
device = "$WORK/a.img"
meta = "$WORK/web-a.meta"
[[resource.web.node]]
name = "b"
address = "127.0.0.1:$PB"
device = "$2"
meta = "${4:-$WORK/web-b.meta}"
EOT
}
write_cfg "$WORK/m.toml" "$WORK/b.img"
m() { "$CK" mirror "$@" --config "$WORK/m.toml" --run-dir "$WORK/run"; }

# Bad configuration: one line naming the value, exit 2, nothing written.
expect_rc 2 m init web --node c
expect_contains "$ERR" "unknown node 'c'"
expect_eq "$(echo "$ERR" | wc -l)" 1 "one line"
expect_rc 2 m init db --node a
expect_contains "$ERR" "unknown resource 'db'"
write_cfg "$WORK/size.toml" "$WORK/big.img"
expect_rc 2 "$CK" mirror init web --config "$WORK/size.toml" --node a
expect_contains "$ERR" "sizes differ"
expect_contains "$ERR" "big.img"
[ ! -e "$WORK/web-a.meta" ] || fail "a rejected init wrote metadata"
# A granularity whose bitmap would not fit one BITMAP frame (2 TiB at 4 KiB: 64 MiB).
truncate -s 2T "$WORK/huge-a.img" "$WORK/huge-b.img"
sed -e "s|$WORK/a.img|$WORK/huge-a.img|; s|$WORK/b.img|$WORK/huge-b.img|" \
  -e 's|^protocol = "sync"|protocol = "sync"\nbitmap_granularity = "4KiB"|' "$WORK/m.toml" >"$WORK/huge.toml"
expect_rc 2 "$CK" mirror init web --config "$WORK/huge.toml" --node a --uptodate
expect_contains "$ERR" "bitmap_granularity 4.00 KiB is too fine"
expect_contains "$ERR" "use at least 8.00 KiB"
[ ! -e "$WORK/web-a.meta" ] || fail "a rejected init wrote metadata"
write_cfg "$WORK/nokey.toml" "$WORK/b.img" "$WORK/missing.psk"
sed -i '/psk_file/d' "$WORK/nokey.toml"
expect_rc 2 "$CK" mirror init web --config "$WORK/nokey.toml" --node a
expect_contains "$ERR" "psk_file"

# init, refuse to overwrite, --force; metadata of another resource.
expect_rc 0 m init web --node a --uptodate
expect_contains "$OUT" UpToDate
expect_rc 2 m init web --node a
expect_contains "$ERR" "exists"
expect_rc 0 "$CK" --json mirror --config "$WORK/m.toml" init web --node a --uptodate --force
expect_eq "$(json_get 'd["disk_state"]' <<<"$OUT")" UpToDate "init --json"
sed 's/resource.web/resource.db/' "$WORK/m.toml" >"$WORK/db.toml"
expect_rc 2 "$CK" mirror init db --config "$WORK/db.toml" --node a --force
expect_contains "$ERR" "belongs to resource web"
expect_rc 0 m init web --node b
expect_rc 0 "$CK" --json mirror status web --config "$WORK/m.toml" --run-dir "$WORK/run" --node b
expect_eq "$(json_get 'd["role"] + " " + d["disk_state"]' <<<"$OUT")" "Stopped Inconsistent" "offline status"
expect_rc 1 m promote web --node a
expect_contains "$ERR" "no mirror daemon"

# A daemon on a; the device is then in use.
"$CK" mirror run web --node a --config "$WORK/m.toml" --run-dir "$WORK/run" >"$WORK/a.log" 2>&1 &
PA_PID=$!
defer "kill -9 $PA_PID"
wait_for test -S "$WORK/run/web-a.sock"
expect_rc 2 m init web --node a --force
expect_contains "$ERR" "in use"
expect_rc 2 m run web --node a
expect_contains "$ERR" "in use"

# A peer with the wrong key is refused and logged on both sides.
openssl rand -hex 32 >"$WORK/wrong.psk"
write_cfg "$WORK/wrong.toml" "$WORK/b.img" "$WORK/wrong.psk"
"$CK" mirror run web --config "$WORK/wrong.toml" --run-dir "$WORK/run" --node b >"$WORK/b-wrong.log" 2>&1 &
PB_PID=$!
defer "kill -9 $PB_PID"
wait_for grep -q "refused a peer" "$WORK/b-wrong.log"
expect_eq "$("$CK" --json mirror status web --config "$WORK/m.toml" --run-dir "$WORK/run" --node a | json_get 'd["connection"]')" Connecting "not connected"
kill -TERM $PB_PID
wait $PB_PID || true
grep -q "could not authenticate" "$WORK/a.log" || fail "a did not log the refused peer: $(cat "$WORK/a.log")"

# The right key: full sync to b, identical copies.
"$CK" mirror run web --node b --config "$WORK/m.toml" --run-dir "$WORK/run" >"$WORK/b.log" 2>&1 &
PB_PID=$!
defer "kill -9 $PB_PID"
for ((i = 0; i < 200; i++)); do
  "$CK" --json mirror status web --config "$WORK/m.toml" --run-dir "$WORK/run" --node b 2>/dev/null |
    json_get 'd["disk_state"] == "UpToDate" and d["connection"] == "Connected"' 2>/dev/null | grep -q True && break
  sleep 0.1
done
expect_eq "$(md5sum <"$WORK/a.img")" "$(md5sum <"$WORK/b.img")" "full sync over loopback"
expect_rc 0 "$CK" --json mirror status web --config "$WORK/m.toml" --run-dir "$WORK/run"
expect_eq "$(json_get '[(n["node"], n["role"], n["disk_state"]) for n in d["nodes"]]' <<<"$OUT")" \
  "[('a', 'Secondary', 'UpToDate'), ('b', 'Secondary', 'UpToDate')]" "status of both nodes"
expect_contains "$(cat "$WORK/a.log")" "connection Connecting -> Connected"
kill -TERM $PA_PID $PB_PID
wait $PA_PID $PB_PID
expect_rc 0 "$CK" --json mirror status web --config "$WORK/m.toml" --run-dir "$WORK/run" --node a
expect_eq "$(json_get 'd["disk_state"]' <<<"$OUT")" UpToDate "after a clean stop"
