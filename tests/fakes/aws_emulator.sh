# Starts tests/fakes/ec2_emulator.py for an integration test (source after lib.sh).
#
#   start_emulator STATE_JSON [emulator options...]
#
# picks a free port in 18000-18999 on 127.0.0.1, stops the emulator at exit,
# and sets EMU_URL, EMU_PORT and an environment in which cloudkeep talks only
# to the emulator: AWS_EC2_METADATA_SERVICE_ENDPOINT points IMDS at it, and
# HOME, AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE at the test's $WORK,
# so nothing of the machine's own AWS setup (or 169.254.169.254) is used.
EMULATOR="${CK_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/tests/fakes/ec2_emulator.py"

start_emulator() {
  local state=$1
  shift
  need /usr/bin/python3
  local try port
  for try in 1 2 3 4 5 6 7 8 9 10; do
    port=$((18000 + (RANDOM % 1000)))
    /usr/bin/python3 "$EMULATOR" --port "$port" --state "$state" "$@" >"$WORK/emulator.log" 2>&1 &
    EMU_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
      if ! kill -0 "$EMU_PID" 2>/dev/null; then break; fi
      if /usr/bin/python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/_emu/stats', timeout=1)" 2>/dev/null; then
        defer "kill $EMU_PID; wait $EMU_PID"
        EMU_PORT=$port
        EMU_URL="http://127.0.0.1:$port"
        export AWS_EC2_METADATA_SERVICE_ENDPOINT="$EMU_URL"
        export HOME="$WORK/home" AWS_CONFIG_FILE="$WORK/home/.aws/config"
        export AWS_SHARED_CREDENTIALS_FILE="$WORK/home/.aws/credentials"
        mkdir -p "$WORK/home/.aws"
        unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION
        unset AWS_EC2_METADATA_DISABLED AWS_ENDPOINT_URL AWS_ENDPOINT_URL_EC2
        return 0
      fi
      sleep 0.1
    done
    kill "$EMU_PID" 2>/dev/null || true
    wait "$EMU_PID" 2>/dev/null || true
  done
  cat "$WORK/emulator.log" >&2
  fail "the EC2 emulator did not start"
}

# emu_stat KEY: a counter from the emulator.
emu_stat() {
  /usr/bin/python3 -c "import json,urllib.request,sys; d=json.load(urllib.request.urlopen('$EMU_URL/_emu/stats')); print(eval(sys.argv[1], {}, d))" "$1"
}
