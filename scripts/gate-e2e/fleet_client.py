#!/usr/bin/env python3
"""Messages and SMTP client for scripts/gate-e2e/fleet.sh (issue 16, loopback only).

  fleet_client.py make ROOT OUTDIR COUNT [BENCH_COUNT]
      Writes OUTDIR/manifest.jsonl and one signed .eml per message (openssl cms, test PKI
      in ROOT/certs, two signers at a time). Per block of 10 messages: one conflicting pair
      (kinds in turn: two organizers claiming one UID / the same REQUEST twice / a REPLY
      and a CANCEL on an event set up before), one more REQUEST (the REPLY/CANCEL pair's
      setup REQUEST in those blocks), 5 REQUESTs with distinct UIDs, one plain message,
      one forged CANCEL (signed by someone who is not the ORGANIZER). Also 2 calibration
      pairs per conflict kind, and BENCH_COUNT distinct REQUESTs for each of the
      one-gate and two-gate throughput phases.

  fleet_client.py send OUTDIR PHASE GATE_A GATE_B CONCURRENCY OUT
      Sends the messages of PHASE. A pair's two messages go at the same moment, one to
      each gate (a barrier between two threads); single messages alternate between the
      gates (GATE_B "-" sends everything to GATE_A). A 4xx answer or a dropped connection
      is a deferral: retried like a sending MTA, every second, up to RETRY_SECONDS.
      Writes one JSON line per message to OUT and prints a JSON summary.

  fleet_client.py calibrate OUTDIR GATE OUT
      Sends each calibration pair one message after the other (order 1-2 for the first
      pair of a kind, 2-1 for the second), to one gate: the outcomes of both serial orders.
"""
import json
import os
import smtplib
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

RETRY_SECONDS = float(os.environ.get("RETRY_SECONDS", "120"))
ADDRESS = {"organizer": "organizer@example.com", "stranger": "mallory@example.net",
           "attendee": "attendee@example.com"}
CONFLICTS = ["organizers", "replay", "reply-cancel"]


def calendar(method, uid, organizer, sequence, dtstamp, attendee_line):
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//imipsec//gate-fleet//EN",
             "METHOD:" + method, "BEGIN:VEVENT", "UID:%s@fleet.gate.test" % uid,
             "DTSTAMP:" + dtstamp, "DTSTART:20260602T100000Z", "DTEND:20260602T110000Z",
             "SEQUENCE:%d" % sequence, "SUMMARY:fleet " + uid,
             "ORGANIZER:mailto:" + organizer]
    lines += attendee_line
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def entity(kind, uid):
    """(signer role, METHOD, calendar text) of one calendar message kind."""
    both = ["ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@example.org",
            "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:attendee@example.com"]
    if kind == "request":
        return "organizer", "REQUEST", calendar("REQUEST", uid, ADDRESS["organizer"], 0,
                                                "20260601T100000Z", both)
    if kind == "mallory-request":  # a second organizer claiming the UID, validly signed
        return "stranger", "REQUEST", calendar("REQUEST", uid, ADDRESS["stranger"], 0,
                                               "20260601T100000Z", both)
    if kind == "reply":
        return "attendee", "REPLY", calendar(
            "REPLY", uid, ADDRESS["organizer"], 0, "20260601T110000Z",
            ["ATTENDEE;PARTSTAT=ACCEPTED:mailto:attendee@example.com"])
    if kind == "cancel":
        return "organizer", "CANCEL", calendar("CANCEL", uid, ADDRESS["organizer"], 1,
                                               "20260601T110000Z", both)
    if kind == "forged-cancel":
        return "stranger", "CANCEL", calendar("CANCEL", uid, ADDRESS["organizer"], 1,
                                              "20260601T110000Z", both)
    raise ValueError(kind)


def sign(root, role, method, ics):
    body = ("Content-Type: text/calendar; method=%s; charset=utf-8; component=VEVENT\r\n"
            "Content-Transfer-Encoding: 7bit\r\n\r\n" % method) + ics
    return subprocess.run(
        ["openssl", "cms", "-sign", "-binary", "-crlfeol", "-md", "sha256",
         "-signer", "%s/certs/rsa2048/%s.cert.pem" % (root, role),
         "-inkey", "%s/certs/rsa2048/%s.key.pem" % (root, role),
         "-certfile", "%s/certs/intermediate.cert.pem" % root],
        input=body.encode(), capture_output=True, check=True).stdout


def make(root, outdir, count, bench_count):
    os.makedirs(outdir, exist_ok=True)
    rows = []  # (phase, group, member, kind, uid)

    def add(phase, group, member, kind, uid):
        rows.append({"phase": phase, "group": group, "member": member, "kind": kind,
                     "uid": uid})

    for conflict in CONFLICTS:
        for n in (1, 2):
            group = "cal-%s-%d" % (conflict, n)
            add_pair(add, "calibrate", group, conflict)
    for block in range(count // 10):
        conflict = CONFLICTS[block % 3]
        group = "race-%d" % block
        add_pair(add, "race", group, conflict)
        if conflict != "reply-cancel":
            add("race", "", 0, "request", "single-%d-x" % block)
        for i in range(5):
            add("race", "", 0, "request", "single-%d-%d" % (block, i))
        add("race", "", 0, "plain", "")
        add("race", "", 0, "forged-cancel", "forged-%d" % block)
    for phase in ("bench1", "bench2"):
        for i in range(bench_count):
            add(phase, "", 0, "request", "%s-%d" % (phase, i))
    signed = {}

    def make_entity(key):
        kind, uid = key
        role, method, ics = entity(kind, uid)
        return key, sign(root, role, method, ics)

    keys = sorted({(r["kind"], r["uid"]) for r in rows if r["kind"] != "plain"})
    with ThreadPoolExecutor(max_workers=int(os.environ.get("SIGNERS", "2"))) as pool:
        for key, blob in pool.map(make_entity, keys):
            signed[key] = blob
    with open(os.path.join(outdir, "manifest.jsonl"), "w") as manifest:
        for index, row in enumerate(rows):
            marker = "F-%06d" % index
            row["marker"] = marker
            sender = {"mallory-request": "stranger", "forged-cancel": "stranger",
                      "reply": "attendee"}.get(row["kind"], "organizer")
            row["from"] = ADDRESS[sender]
            head = ("From: %s\r\nTo: bob@example.org\r\nSubject: fleet %s\r\n"
                    "Date: Thu, 03 Dec 2026 12:00:00 +0000\r\n"
                    "Message-ID: <%s@fleet.gate.test>\r\nX-E2E-Marker: %s\r\n"
                    % (row["from"], marker, marker, marker)).encode()
            if row["kind"] == "plain":
                body = b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nNo calendar.\r\n"
            else:
                body = signed[(row["kind"], row["uid"])]
            with open(os.path.join(outdir, marker + ".eml"), "wb") as handle:
                handle.write(head + body)
            manifest.write(json.dumps(row) + "\n")


def add_pair(add, phase, group, conflict):
    uid = group
    if conflict == "organizers":
        add(phase, group, 1, "request", uid)
        add(phase, group, 2, "mallory-request", uid)
    elif conflict == "replay":
        add(phase, group, 1, "request", uid)
        add(phase, group, 2, "request", uid)
    else:
        add("setup" if phase == "race" else phase, group, 0, "request", uid)
        add(phase, group, 1, "reply", uid)
        add(phase, group, 2, "cancel", uid)


def load(outdir, phase):
    rows = [json.loads(line) for line in open(os.path.join(outdir, "manifest.jsonl"))]
    for row in rows:
        with open(os.path.join(outdir, row["marker"] + ".eml"), "rb") as handle:
            row["data"] = handle.read()
    return [r for r in rows if r["phase"] == phase]


class Session:
    """One SMTP session to one gate's smtpd, reopened after a deferral."""

    def __init__(self, server):
        host, port = server.rsplit(":", 1)
        self.host, self.port, self.client = host, int(port), None

    def connect(self):
        while True:
            try:
                self.client = smtplib.SMTP(self.host, self.port, timeout=120)
                self.client.ehlo("fleet.gate.test")
                return
            except (OSError, smtplib.SMTPException):
                time.sleep(0.2)

    def reset(self):
        try:
            if self.client is not None:
                self.client.close()
        finally:
            self.client = None

    def send(self, row, gate):
        first, attempts = time.monotonic(), 0
        while True:
            attempts += 1
            if self.client is None:
                self.connect()
            started = time.monotonic()
            outcome, code = None, None
            try:
                self.client.sendmail(row["from"], ["bob@example.org"], row["data"])
                outcome, code = "accepted", 250
            except smtplib.SMTPResponseException as error:
                code = error.smtp_code
                if 500 <= code < 600:
                    outcome = "rejected"
                    try:
                        self.client.rset()
                    except (OSError, smtplib.SMTPException):
                        self.reset()
                else:  # a milter tempfail lasts for the whole session: start a new one
                    self.reset()
            except smtplib.SMTPRecipientsRefused as error:
                code = list(error.recipients.values())[0][0]
                outcome = "rejected" if code >= 500 else None
                self.reset()
            except (OSError, smtplib.SMTPException):
                code = "connection"
                self.reset()
            latency = time.monotonic() - started
            if outcome is None:
                if time.monotonic() - first > RETRY_SECONDS:
                    outcome = "lost"
                else:
                    time.sleep(1.0)
                    continue
            return {"marker": row["marker"], "kind": row["kind"], "group": row["group"],
                    "member": row["member"], "gate": gate, "outcome": outcome,
                    "code": code, "attempts": attempts, "latency": latency}


def send(outdir, phase, gate_a, gate_b, concurrency, out):
    rows = load(outdir, phase)
    items, pairs = [], {}
    for row in rows:
        if row["group"] and row["member"] > 0:
            pairs.setdefault(row["group"], []).append(row)
            if len(pairs[row["group"]]) == 2:
                items.append(("pair", pairs[row["group"]]))
        else:
            items.append(("single", row))
    lock, results, position = threading.Lock(), [], [0]
    progress = out + ".progress"

    def take():
        with lock:
            if position[0] >= len(items):
                return None, None
            position[0] += 1
            return position[0] - 1, items[position[0] - 1]

    def done(result):
        with lock:
            results.append(result)
            if len(results) % 200 == 0:
                with open(progress + ".tmp", "w") as handle:
                    handle.write(str(len(results)))
                os.replace(progress + ".tmp", progress)  # never seen half written

    def worker():
        sessions = {"A": Session(gate_a), "B": Session(gate_b if gate_b != "-" else gate_a)}
        while True:
            index, item = take()
            if item is None:
                break
            if item[0] == "single":
                gate = "A" if index % 2 == 0 or gate_b == "-" else "B"
                done(sessions[gate].send(item[1], gate))
                continue
            first, second = item[1]
            gates = ("A", "B") if index % 2 == 0 else ("B", "A")
            barrier, other = threading.Barrier(2), []

            def race(row=second, gate=gates[1]):
                barrier.wait()
                other.append(sessions[gate].send(row, gate))

            thread = threading.Thread(target=race)
            thread.start()
            barrier.wait()
            done(sessions[gates[0]].send(first, gates[0]))
            thread.join()
            done(other[0])
        for session in sessions.values():
            if session.client is not None:
                try:
                    session.client.quit()
                except (OSError, smtplib.SMTPException):
                    pass

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    with open(out, "w") as handle:
        for result in results:
            handle.write(json.dumps(result) + "\n")
    lat = sorted(r["latency"] for r in results if r["attempts"] == 1)

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

    summary = {"phase": phase, "messages": len(results), "seconds": round(elapsed, 2),
               "per_second": round(len(results) / elapsed, 1) if elapsed else 0,
               "p50_ms": round(pct(0.5), 2), "p99_ms": round(pct(0.99), 2),
               "deferred_then_settled": sum(1 for r in results
                                            if r["attempts"] > 1 and r["outcome"] != "lost"),
               "lost": sum(1 for r in results if r["outcome"] == "lost")}
    print(json.dumps(summary))


def calibrate(outdir, gate, out):
    rows = load(outdir, "calibrate")
    session = Session(gate)
    with open(out, "w") as handle:
        for row in rows:
            if row["member"] == 0:
                handle.write(json.dumps(session.send(row, "A")) + "\n")
        groups = {}
        for row in rows:
            if row["member"] > 0:
                groups.setdefault(row["group"], []).append(row)
        for group, members in groups.items():
            if group.endswith("-2"):
                members = members[::-1]
            for row in members:
                handle.write(json.dumps(session.send(row, "A")) + "\n")


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "make":
        make(sys.argv[2], sys.argv[3], int(sys.argv[4]),
             int(sys.argv[5]) if len(sys.argv) > 5 else 0)
    elif command == "send":
        send(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7])
    elif command == "calibrate":
        calibrate(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: see the docstring")
