#!/usr/bin/env bash
# Usage errors a careful operator can rely on: an unknown group or command is
# named as typed; a config file is validated (FILE:LINE and the key for a
# typo, a syntax error, a wrong kind of value); an empty value where one is
# needed is an error, never a silent default; --json always prints the error
# document; every one is exit 2 with one line.
. "$(dirname "$0")/lib.sh"

one_line() { [ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] || fail "expected one line on stderr: $ERR"; }

expect_rc 2 "$CK" snapshto list
expect_contains "$ERR" "unknown command 'snapshto'"
one_line
expect_rc 2 "$CK" --store /nonexistent snapshot lst
expect_contains "$ERR" "unknown snapshot command 'lst'"
expect_rc 2 "$CK" --json mail spff
expect_contains "$OUT" '"exit_code": 2'
expect_contains "$OUT" "unknown mail command 'spff'"
# Option values are not command words.
expect_rc 2 "$CK" --store "$WORK/none" --provider local snapshot list
expect_contains "$ERR" "store '$WORK/none' does not exist"

cfg="$WORK/c.toml"
printf 'store = "%s"\nstroe = "/tmp/x"\n' "$WORK/s" >"$cfg"
expect_rc 2 "$CK" --config "$cfg" snapshot list
expect_eq "$ERR" "cloudkeep: error: $cfg:2: unknown key 'stroe'" "typo in a key"
printf 'store = [1, 2\n' >"$cfg"
expect_rc 2 "$CK" --config "$cfg" snapshot list
expect_contains "$ERR" "$cfg:1:"
one_line
printf '\n\njson = "yes"\n' >"$cfg"
expect_rc 2 "$CK" --config "$cfg" volumes
expect_contains "$ERR" "$cfg:3: 'json' is a flag"
printf 'endpoint_url = "http://127.0.0.1:1"\n' >"$cfg"
expect_rc 2 "$CK" --config "$cfg" volumes
expect_contains "$ERR" "did you mean 'endpoint-url'"
printf 'store = ""\n' >"$cfg"
expect_rc 2 "$CK" --config "$cfg" snapshot list
expect_contains "$ERR" "'store' is empty"
printf '[snapshto]\nx = 1\n' >"$cfg"
expect_rc 2 "$CK" --config "$cfg" snapshot list
expect_contains "$ERR" "[snapshto] names no command"
expect_rc 2 "$CK" --config "$WORK/missing.toml" volumes
expect_contains "$ERR" "missing.toml"
# A good one is used, flags override it.
printf 'store = "%s"\n' "$WORK/from-config" >"$cfg"
head -c 1048576 /dev/urandom >"$WORK/v.img"
expect_rc 0 "$CK" --config "$cfg" snapshot create "$WORK/v.img"
[ -d "$WORK/from-config/snapshots" ] || fail "the config's store was not used"
expect_rc 0 "$CK" --config "$cfg" --store "$WORK/from-flag" snapshot create "$WORK/v.img"
[ -d "$WORK/from-flag/snapshots" ] || fail "--store did not override the config"

# Empty values: an unset variable under cron.
expect_rc 2 "$CK" --store "" snapshot list
expect_contains "$ERR" "--store is empty"
expect_rc 2 "$CK" --store "$WORK/from-flag" snapshot restore snap-00000000000000000 --to ""
expect_contains "$ERR" "--to is empty"
expect_rc 2 "$CK" --json --store "" snapshot list
expect_contains "$OUT" '"exit_code": 2'
# A store that does not exist is an error for a command that reads one.
for cmd in "snapshot verify" "snapshot list" "snapshot show snap-00000000000000000"; do
  expect_rc 2 "$CK" --store "$WORK/nope" $cmd
  expect_contains "$ERR" "store '$WORK/nope' does not exist"
done
