# Postfix on a loopback port, from a private configuration directory, for
# the mail audit tests. Source after lib.sh.
#
#   postfix_start NAME PORT MODE [CERT KEY]   (PORT from lib.sh free_port)
#     (POSTFIX_ADDR: listen address, default 127.0.0.1; POSTFIX_HOSTNAME: default mx.good.test)
#     MODE closed: relays for nobody (mynetworks excludes loopback)
#     MODE open:   an open relay (mynetworks = 0.0.0.0/0)
#   Sets POSTFIX_DIR and POSTFIX_LOG (the master's maillog on stdout).
#   With CERT/KEY the server offers STARTTLS with that certificate.
#
# Nothing can leave: every transport is `discard`, DNS lookups are off,
# and the only listener is 127.0.0.1:PORT. Stopped by `defer`.

postfix_start() {
  local name=$1 port=$2 mode=$3 cert=${4:-} key=${5:-}
  need postfix
  need_root
  local dir="$WORK/postfix-$name" addr=${POSTFIX_ADDR:-127.0.0.1}
  mkdir -p "$dir/conf" "$dir/queue" "$dir/data"
  chmod 755 "$WORK" "$dir"
  chown postfix "$dir/data"
  local networks="192.0.2.1/32"
  [ "$mode" = open ] && networks="0.0.0.0/0"
  cat >"$dir/conf/main.cf" <<MAIN
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = /dev/stdout
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = ${POSTFIX_HOSTNAME:-mx.good.test}
mydomain = good.test
myorigin = good.test
mydestination = mx.good.test, localhost
mynetworks = $networks
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
default_transport = discard
relay_transport = discard
local_transport = discard
alias_maps =
alias_database =
local_recipient_maps =
disable_dns_lookups = yes
smtp_dns_support_level = disabled
smtpd_banner = \$myhostname ESMTP
MAIN
  if [ -n "$cert" ]; then
    cat >>"$dir/conf/main.cf" <<TLS
smtpd_tls_security_level = may
smtpd_tls_cert_file = $cert
smtpd_tls_key_file = $key
TLS
  fi
  cat >"$dir/conf/master.cf" <<MASTER
$addr:$port inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
MASTER
  POSTFIX_DIR="$dir"
  POSTFIX_LOG="$dir/maillog"
  postfix -c "$dir/conf" start-fg >"$POSTFIX_LOG" 2>&1 &
  local pid=$!
  defer "postfix -c '$dir/conf' stop; kill $pid 2>/dev/null; wait $pid 2>/dev/null"
  wait_for _smtp_listening "$addr" "$port"
}

# postfix_disconnects: the "disconnect from" lines of the log, which count
# every SMTP command the client sent (ehlo=1 mail=3 rcpt=0/3 rset=3 quit=1 ...).
postfix_disconnects() { grep "disconnect from" "$POSTFIX_LOG" || true; }

# Fails the test if any session sent DATA/BDAT or any message was queued.
postfix_expect_no_data() {
  local d
  d="$(postfix_disconnects)"
  [ -n "$d" ] || fail "postfix logged no sessions"
  expect_not_contains "$d" " data=" "a DATA command reached postfix"
  expect_not_contains "$d" " bdat=" "a BDAT command reached postfix"
  expect_not_contains "$(cat "$POSTFIX_LOG")" "message-id=" "postfix queued a message"
}

_smtp_listening() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
ok = s.recv(512).startswith(b"220")
s.sendall(b"QUIT\r\n")
s.close()
sys.exit(0 if ok else 1)
PY
}

# trick_server_start ADDR PORT [broken-tls]: a small SMTP server (Python)
# that relays through exactly one trick, the percent hack (user%domain@host),
# a misconfiguration Postfix cannot be made to show. It refuses DATA and logs
# every command it receives to $TRICK_LOG. With broken-tls it also offers
# STARTTLS, answers 220, then sends bytes that are not a TLS handshake and
# hangs up. Stopped by `defer`.
trick_server_start() {
  local addr=$1 port=$2 mode=${3:-}
  need /usr/bin/python3
  TRICK_LOG="$WORK/trick-$port.log"
  : >"$TRICK_LOG"
  cat >"$WORK/smtp_trick_server.py" <<'PY'
import socketserver
import sys


class Handler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        log = self.server.log
        self.reply("220 trick.good.test ESMTP fixture")
        while True:
            line = self.rfile.readline(2048)
            if not line:
                return
            cmd = line.decode(errors="replace").rstrip("\r\n")
            log.write(cmd + "\n")
            log.flush()
            verb = cmd.split(" ", 1)[0].upper()
            arg = cmd[len(verb):].strip()
            if verb == "EHLO":
                tls = b"250-STARTTLS\r\n" if self.server.broken_tls else b""
                self.wfile.write(b"250-trick.good.test\r\n250-PIPELINING\r\n" + tls + b"250 8BITMIME\r\n")
                self.wfile.flush()
            elif verb == "STARTTLS" and self.server.broken_tls:
                self.reply("220 2.0.0 Ready to start TLS")
                self.reply("this is not a TLS handshake")
                return
            elif verb == "HELO":
                self.reply("250 trick.good.test")
            elif verb == "MAIL":
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                addr = arg[3:].strip() if arg.upper().startswith("TO:") else arg
                # The percent hack, unquoted: user%domain@host.
                if "%" in addr and not addr.startswith('<"'):
                    self.reply("250 2.1.5 Ok")
                else:
                    self.reply("554 5.7.1 Relay access denied")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("554 5.5.1 Error: command refused by the fixture")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


addr, port, logfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(logfile, "a") as log, Server((addr, port), Handler) as srv:
    srv.log = log
    srv.broken_tls = len(sys.argv) > 4 and sys.argv[4] == "broken-tls"
    srv.serve_forever()
PY
  /usr/bin/python3 "$WORK/smtp_trick_server.py" "$addr" "$port" "$TRICK_LOG" $mode 2>"$WORK/trick-$port.err" &
  local pid=$!
  defer "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
  wait_for _smtp_listening "$addr" "$port"
}
