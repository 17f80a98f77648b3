#!/usr/bin/env python3
"""One LMTP session to the gate's proxy held across a backend restart (run.sh).

Usage: lmtp_session.py HOST:PORT SENDER RCPT FIRST.eml SECOND.eml DONE_FLAG GO_FLAG LOG

Delivers FIRST.eml, creates DONE_FLAG, waits (up to 60 s) for GO_FLAG (run.sh restarts
Dovecot in between), then delivers SECOND.eml on the same session with MAIL straight
away, as a client may after a completed transaction. Every reply goes to LOG.
"""
import os
import socket
import sys
import time


def main():
    address, sender, rcpt, first, second, done_flag, go_flag, log_path = sys.argv[1:9]
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock, open(
        log_path, "w"
    ) as log:
        stream = sock.makefile("rb")

        def reply():
            while True:
                line = stream.readline().decode("utf-8", "replace")
                log.write(line)
                log.flush()
                if len(line) < 4 or line[3] != "-":
                    return line

        def command(line):
            sock.sendall(line.encode() + b"\r\n")
            return reply()

        def deliver(path):
            command(f"MAIL FROM:<{sender}>")
            command(f"RCPT TO:<{rcpt}>")
            if not command("DATA").startswith("354"):
                return
            with open(path, "rb") as message:
                data = message.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            lines = [b"." + line if line.startswith(b".") else line for line in data.split(b"\r\n")]
            body = b"\r\n".join(lines)
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            sock.sendall(body + b".\r\n")
            reply()

        reply()
        command("LHLO e2e.test")
        deliver(first)
        open(done_flag, "w").close()
        deadline = time.time() + 60
        while not os.path.exists(go_flag) and time.time() < deadline:
            time.sleep(0.1)
        deliver(second)
        command("QUIT")


if __name__ == "__main__":
    main()
