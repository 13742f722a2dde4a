#!/usr/bin/python3
"""SMTP servers that misbehave, for the could-not-check tests.

usage: smtp_misbehave.py MODE PORT
  dribble   greets one byte a second (a reply that never completes in time)
  hangup    greets and answers EHLO, then closes the connection at MAIL
  silent    accepts the connection and never says anything
  slow      answers every command correctly, each reply after 0.7 s (within a
            1 s timeout, but a whole relay probe takes a minute); refuses relaying
  slow-open the same, but relays: RCPT TO gets 250
Prints "ready PORT" once listening (PORT 0: any); serves until killed.
"""
import socket
import sys
import threading
import time


def dribble(c):
    for b in b"220 mx.slow.test ESMTP slowly\r\n" * 10:
        c.sendall(bytes([b]))
        time.sleep(1)


def hangup(c):
    c.sendall(b"220 mx.hangup.test ESMTP\r\n")
    f = c.makefile("rb")
    for line in f:
        verb = line.split(b" ")[0].strip().upper()
        if verb in (b"EHLO", b"HELO"):
            c.sendall(b"250-mx.hangup.test\r\n250 8BITMIME\r\n")
        elif verb == b"QUIT":
            c.sendall(b"221 bye\r\n")
            return
        else:
            return  # hang up before the test could run


def silent(c):
    time.sleep(600)


SLOW_REPLY_S = 0.7


def slow(c, relays=False):
    def reply(text):
        time.sleep(SLOW_REPLY_S)
        c.sendall(text)

    reply(b"220 mx.slow.test ESMTP\r\n")
    for line in c.makefile("rb"):
        verb = line.split(b" ")[0].strip().upper()
        if verb in (b"EHLO", b"HELO"):
            reply(b"250-mx.slow.test\r\n250 8BITMIME\r\n")
        elif verb in (b"MAIL", b"RSET", b"NOOP"):
            reply(b"250 2.0.0 Ok\r\n")
        elif verb == b"RCPT":
            reply(b"250 2.1.5 Ok\r\n" if relays else b"554 5.7.1 Relay access denied\r\n")
        elif verb == b"QUIT":
            reply(b"221 2.0.0 Bye\r\n")
            return
        else:
            reply(b"502 5.5.2 Error: command not recognized\r\n")


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    handler = {
        "dribble": dribble,
        "hangup": hangup,
        "silent": silent,
        "slow": slow,
        "slow-open": lambda c: slow(c, relays=True),
    }[mode]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    print("ready", s.getsockname()[1], flush=True)

    def serve(c):
        try:
            handler(c)
        except OSError:
            pass
        finally:
            c.close()

    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
