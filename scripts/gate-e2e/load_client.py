#!/usr/bin/env python3
"""Bounded SMTP load client for scripts/gate-e2e/load.sh (loopback only).

Sends COUNT messages over CONCURRENCY persistent SMTP sessions. Each message is one of
three kinds, by index: 60 % valid calendar, 20 % forged calendar, 20 % plain mail (with
LOAD_FORGED=0: no forged calendar, 40 % plain); the
message text comes from `engine.sh make_message` templates passed in TEMPLATES_DIR.
When TEMPLATES_DIR/per-message/MARKER.eml exists for a message's marker, that file is sent
instead of the template (load.sh writes one distinct signed REQUEST per message, with its
own UID, when the gate has an event-state store: a replayed template would be stale).
A 4xx answer (or a dropped connection) is a deferral: the client retries the message
like a sending MTA would, every second, for up to RETRY_SECONDS. Writes one JSON line
per message to OUT and prints a JSON summary.

LOAD_RATE=N (messages a second; unset or 0: as fast as the sessions go): message i is
offered at the run's start + i / N, whether or not earlier ones are done (an open load, as
mail arrives at a server), so latency is measured at a load below the machine's capacity
instead of on a queue that grows for as long as the run lasts. A message whose session was
still busy at its time is sent late: the summary counts those more than 50 ms late
("late_over_50ms"; many of them mean the rate is above what the sessions can carry, and
its latencies do not describe that rate).
"""
import json
import os
import smtplib
import sys
import threading
import time

server, count, concurrency, phase, templates, out = sys.argv[1:7]
count, concurrency = int(count), int(concurrency)
retry_seconds = float(os.environ.get("RETRY_SECONDS", "120"))
rate = float(os.environ.get("LOAD_RATE", "0") or 0)
host, port = server.rsplit(":", 1)
port = int(port)

KINDS = ["valid-request"] * 6 + ["forged-cancel"] * 2 + ["plain"] * 2
# LOAD_FORGED=0: plain mail in place of the forged calendars (60 % valid, 40 % plain), to
# measure the gate without the cost of refusing: after the queue (LMTP mode) every refusal
# makes Postfix send a delivery status notification, one more message for the machine.
if os.environ.get("LOAD_FORGED", "1") == "0":
    KINDS = ["valid-request"] * 6 + ["plain"] * 4
template = {}
for kind in set(KINDS):
    with open(os.path.join(templates, kind + ".eml"), "rb") as handle:
        template[kind] = handle.read()
SENDER = {"forged-cancel": "mallory@example.net"}
# load.sh's LMTP mode sends the ungated baseline to another domain (routed past the gate).
RECIPIENT = os.environ.get("LOAD_RECIPIENT", "bob@example.org")

lock = threading.Lock()
next_index = [0]
results = []
progress_path = out + ".progress"


def take():
    with lock:
        if next_index[0] >= count:
            return None
        next_index[0] += 1
        return next_index[0] - 1


def connect():
    while True:
        try:
            client = smtplib.SMTP(host, port, timeout=120)
            client.ehlo("load.gate.test")
            return client
        except (OSError, smtplib.SMTPException):
            time.sleep(0.2)


def worker():
    client = connect()
    while True:
        index = take()
        if index is None:
            break
        kind = KINDS[index % len(KINDS)]
        marker = "L-%s-%06d" % (phase, index)
        own = os.path.join(templates, "per-message", marker + ".eml")
        if os.path.exists(own):
            with open(own, "rb") as handle:
                body = handle.read()
        else:
            body = template[kind].replace(b"MARKER", marker.encode())
        sender = SENDER.get(kind, "organizer@example.net")
        late = 0.0
        if rate > 0:
            due = run_started + index / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            else:
                late = now - due
        first_try = time.monotonic()
        attempts, outcome, code, latency = 0, None, None, None
        while outcome is None:
            attempts += 1
            started = time.monotonic()
            wall_started = time.time()
            try:
                client.sendmail(sender, [RECIPIENT], body)
                latency = time.monotonic() - started
                outcome, code = "accepted", 250
            except smtplib.SMTPResponseException as error:
                latency = time.monotonic() - started
                code = error.smtp_code
                if 500 <= code < 600:
                    outcome = "rejected"
                    try:
                        client.rset()
                    except (OSError, smtplib.SMTPException):
                        client = connect()
                else:
                    # a milter tempfail lasts for the whole SMTP session: start a new one
                    try:
                        client.close()
                    finally:
                        client = connect()
            except smtplib.SMTPRecipientsRefused as error:
                code = list(error.recipients.values())[0][0]
                outcome = "rejected" if code >= 500 else None
                client = connect()
            except (OSError, smtplib.SMTPException):
                code = "connection"
                client = connect()
            if outcome is None:
                if time.monotonic() - first_try > retry_seconds:
                    outcome = "lost"
                else:
                    time.sleep(1.0)
        with lock:
            results.append({"marker": marker, "kind": kind, "outcome": outcome,
                            "code": code, "attempts": attempts, "latency": latency,
                            "sent_at": wall_started, "late": late})
            if len(results) % 500 == 0:
                with open(progress_path, "w") as handle:
                    handle.write(str(len(results)))
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        pass


started = time.monotonic()
run_started = started + 0.5  # the sessions connect first; the schedule starts after
threads = [threading.Thread(target=worker) for _ in range(concurrency)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
# paced: from the first message's time (the sessions connect before it)
elapsed = time.monotonic() - (run_started if rate > 0 else started)

with open(out, "w") as handle:
    for result in results:
        handle.write(json.dumps(result) + "\n")

# latency of first-try successes/rejections only: retries measure the outage, not the gate
lat = sorted(r["latency"] for r in results if r["attempts"] == 1 and r["latency"] is not None)


def pct(p):
    return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")


summary = {
    "phase": phase, "messages": len(results), "seconds": round(elapsed, 2),
    "per_second": round(len(results) / elapsed, 1),
    "p50_ms": round(pct(0.50), 2), "p99_ms": round(pct(0.99), 2),
    "deferred_then_settled": sum(1 for r in results if r["attempts"] > 1),
    "offered_per_second": rate or None,
    "late_over_50ms": sum(1 for r in results if r["late"] > 0.05),
}
for kind in ("forged-cancel", "plain", "valid-request"):
    for outcome in ("accepted", "rejected", "lost"):
        summary["%s_%s" % (kind, outcome)] = sum(
            1 for r in results if r["kind"] == kind and r["outcome"] == outcome)
print(json.dumps(summary))
