#!/usr/bin/python3
"""SMTP servers that misbehave, for the could-not-check tests.

usage: smtp_misbehave.py MODE PORT
  dribble   greets one byte a second (a reply that never completes in time)
  hangup    greets and answers EHLO, then closes the connection at MAIL
  silent    accepts the connection and never says anything
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


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    handler = {"dribble": dribble, "hangup": hangup, "silent": silent}[mode]
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
