# Starts tests/fakes/ec2_emulator.py for an integration test (source after lib.sh).
#
#   start_emulator STATE_JSON [emulator options...]
#
# starts it on a free port of 127.0.0.1 (port 0, the port it prints), stops it at exit,
# and sets EMU_URL, EMU_PORT and an environment in which cloudkeep talks only
# to the emulator: AWS_EC2_METADATA_SERVICE_ENDPOINT points IMDS at it, and
# HOME, AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE at the test's $WORK,
# so nothing of the machine's own AWS setup (or 169.254.169.254) is used.
EMULATOR="${CK_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/tests/fakes/ec2_emulator.py"

start_emulator() {
  local state=$1
  shift
  need /usr/bin/python3
  # Port 0: the emulator binds any free port and prints it (lib.sh start_daemon).
  start_daemon emulator '^ec2-emulator listening on' /usr/bin/python3 "$EMULATOR" --port 0 --state "$state" "$@"
  EMU_PID=$DAEMON_PID
  EMU_PORT=$DAEMON_PORT
  EMU_URL="http://127.0.0.1:$EMU_PORT"
  wait_for /usr/bin/python3 -c "import urllib.request; urllib.request.urlopen('$EMU_URL/_emu/stats', timeout=1)"
  export AWS_EC2_METADATA_SERVICE_ENDPOINT="$EMU_URL"
  export HOME="$WORK/home" AWS_CONFIG_FILE="$WORK/home/.aws/config"
  export AWS_SHARED_CREDENTIALS_FILE="$WORK/home/.aws/credentials"
  mkdir -p "$WORK/home/.aws"
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION
  unset AWS_EC2_METADATA_DISABLED AWS_ENDPOINT_URL AWS_ENDPOINT_URL_EC2
}

# emu_stat KEY: a counter from the emulator.
emu_stat() {
  /usr/bin/python3 -c "import json,urllib.request,sys; d=json.load(urllib.request.urlopen('$EMU_URL/_emu/stats')); print(eval(sys.argv[1], {}, d))" "$1"
}
