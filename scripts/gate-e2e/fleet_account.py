#!/usr/bin/env python3
"""Accounting for scripts/gate-e2e/fleet.sh: every message of WORKDIR's run, against the
mailbox (WORKDIR/delivered.txt, one marker per delivered copy) and against the outcomes of
the serial orders measured in WORKDIR/calibrate.jsonl. Prints one JSON object."""
import collections
import json
import os
import sys

w = sys.argv[1]


def rows(name):
    path = os.path.join(w, name + ".jsonl")
    return [json.loads(line) for line in open(path)] if os.path.exists(path) else []


delivered = collections.Counter(open(os.path.join(w, "delivered.txt")).read().split())
calibration = rows("calibrate")
sent = calibration + rows("setup") + rows("race") + rows("bench1") + rows("bench2")
report = {"messages": len(sent), "lost": 0, "delivery_mismatches": 0,
          "single_requests_not_accepted": 0, "plain_not_accepted": 0, "forged_accepted": 0,
          "bench_not_accepted": 0, "problems": []}
for r in sent:
    n = delivered.get(r["marker"], 0)
    if r["outcome"] == "lost":
        report["lost"] += 1
    if n != (1 if r["outcome"] == "accepted" else 0):
        report["delivery_mismatches"] += 1
        report["problems"].append("%s %s %s delivered %d" % (r["marker"], r["kind"], r["outcome"], n))
    if r["kind"] == "forged-cancel" and r["outcome"] == "accepted":
        report["forged_accepted"] += 1
    if r["kind"] == "plain" and r["outcome"] != "accepted":
        report["plain_not_accepted"] += 1
    if r["kind"] == "request" and not r["group"] and r["outcome"] != "accepted":
        report["single_requests_not_accepted"] += 1
    if r["group"] and r["member"] == 0 and r["outcome"] != "accepted":  # setup REQUESTs
        report["single_requests_not_accepted"] += 1
        report["problems"].append("setup %s %s" % (r["marker"], r["outcome"]))

def conflict_of(group):
    kinds = {"cal-organizers": "organizers", "cal-replay": "replay", "cal-reply-cancel": "reply-cancel"}
    return next((v for k, v in kinds.items() if group.startswith(k)), None)


def vectors(result_rows):
    """group -> (kinds of members 1 and 2, outcomes of members 1 and 2)."""
    groups = collections.defaultdict(dict)
    for r in result_rows:
        if r["group"] and r["member"] > 0:
            groups[r["group"]][r["member"]] = r
    return {g: (tuple(m[i]["kind"] for i in (1, 2)), tuple(m[i]["outcome"][0].upper() for i in (1, 2)))
            for g, m in groups.items() if len(m) == 2}


# the serial outcomes per pair shape (the kinds of its two messages)
serial = collections.defaultdict(set)
problems = []
for group, (kinds, outcome) in vectors(calibration).items():
    serial[kinds].add(outcome)
    conflict = conflict_of(group)
    if conflict in ("organizers", "replay") and sorted(outcome) != ["A", "R"]:
        problems.append("%s serially gave %s" % (group, outcome))
    if conflict == "reply-cancel" and outcome[1] != "A":
        problems.append("%s serially rejected the CANCEL: %s" % (group, outcome))
report["calibration_problems"] = problems
report["serial_outcomes"] = {"%s+%s" % k: sorted("".join(o) for o in v) for k, v in serial.items()}
race = vectors(rows("race"))
seen = collections.Counter()
not_serial = not_once = 0
for group, (kinds, outcome) in race.items():
    seen["%s+%s:%s" % (kinds[0], kinds[1], "".join(outcome))] += 1
    if outcome not in serial[kinds]:
        not_serial += 1
        report["problems"].append("%s %s gave %s" % (group, kinds, outcome))
    if kinds[0] != "reply" and outcome.count("A") != 1:
        not_once += 1
report["pairs"] = len(race)
report["pairs_not_serial"] = not_serial
report["pairs_not_decided_once"] = not_once
report["pair_outcomes_seen"] = dict(seen)
report["bench_not_accepted"] = sum(1 for r in rows("bench1") + rows("bench2") if r["outcome"] != "accepted")
report["problems"] = report["problems"][:20]
print(json.dumps(report, indent=1))
