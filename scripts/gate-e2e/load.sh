#!/usr/bin/env bash
# Load test of the imipsec gate through a real Postfix (issue 6, acceptance 2; issue 17), loopback
# only, ends by itself. LOAD_COUNT messages (default 10000; 60 % valid calendar, 20 %
# forged calendar, 20 % plain) go through Postfix with the gate as milter, and the gate
# is restarted once in the middle; then BASELINE_COUNT messages (default 2000) of the same
# mix go through the same Postfix on a second port without milter. Every message must be
# accounted for: valid and plain delivered exactly once (possibly after a deferral), forged
# rejected with 5xx and never delivered. Prints throughput and latency p50/p99 for both.
# Last line: "N passed, N failed".
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

GATE_ENGINE=${GATE_ENGINE:-pipeline}
# LOAD_STORE=1 (issue 17): the gate runs with its event-state store (SQLite in the work
# folder) and every valid REQUEST is a distinct message with its own UID, signed before the
# run (a replayed template would be stale). LOAD_STORE=0: no store, replayed templates.
LOAD_STORE=${LOAD_STORE:-1}
# LOAD_MODE=milter (default): the gate is Postfix's milter, the baseline is a second smtpd
# without it. LOAD_MODE=lmtp: the gate is the LMTP proxy in front of Dovecot (Postfix
# delivers example.org through it) and the baseline goes to example.net, delivered by
# Postfix straight to Dovecot; a forged CANCEL is then held in the quarantine mailbox (or,
# with LOAD_ON_REJECT=reject, refused at delivery with 5.7.1), never delivered to bob, and
# throughput and latency are measured from SMTP submission to delivery in the mailbox
# (Dovecot's maildir file names carry the delivery time).
LOAD_MODE=${LOAD_MODE:-milter}
# LOAD_FORGED=0: plain mail in place of the forged calendars in both phases, to separate the
# gate's own cost from the cost of refusing (in LMTP mode each refusal after the queue makes
# Postfix send a bounce, one more message for the machine that the baseline does not send).
# LOAD_RESTART=0: no gate restart in the middle of the gated run (throughput alone; in LMTP
# mode a restart costs Postfix's retry backoff, seconds, in the gated figures).
LOAD_RESTART=${LOAD_RESTART:-1}
# LOAD_RATE=N: both phases offer N messages a second on a fixed schedule (load_client.py),
# for the latency the gate adds at a load the machine carries; unset: as fast as the 16
# sessions go, for throughput (in LMTP mode deliveries then trail submissions through either
# path and the latency is the queue's, growing with the run's length). With a rate, the
# throughput printed is the rate, and the summary counts messages sent late.
export LOAD_RATE=${LOAD_RATE:-}
# LOAD_ON_REJECT: the gate's on_reject. Default: reject in milter mode (refused in the SMTP
# dialogue), quarantine in LMTP mode, where a refusal comes after Postfix's queue and makes
# a bounce to the sender the forger chose (backscatter; `imipsec gate --check-config` warns
# about it): the forged CANCELs then go to quarantine@example.org. LOAD_ON_REJECT=reject in
# LMTP mode measures the bouncing configuration.
if [ "$LOAD_MODE" = lmtp ]; then LOAD_ON_REJECT=${LOAD_ON_REJECT:-quarantine}; else LOAD_ON_REJECT=${LOAD_ON_REJECT:-reject}; fi
case "$LOAD_MODE:$LOAD_ON_REJECT" in
  milter:reject | lmtp:reject | lmtp:quarantine) ;;
  *) echo "gate-load: LOAD_ON_REJECT=$LOAD_ON_REJECT is not measured in $LOAD_MODE mode (reject, or quarantine with lmtp)" >&2; exit 2 ;;
esac
if [ "$LOAD_STORE" = 1 ]; then unset GATE_STORE; else export GATE_STORE=none; fi
export GATE_PROFILE=${GATE_PROFILE:-release}
LOAD_COUNT=${LOAD_COUNT:-10000} BASELINE_COUNT=${BASELINE_COUNT:-2000}
CONCURRENCY=${CONCURRENCY:-16}
SMTP=127.0.0.1:42535 PLAIN_SMTP=127.0.0.1:42537 MILTER=127.0.0.1:48892
LMTP=127.0.0.1:44034 PROXY=127.0.0.1:44035 METRICS=127.0.0.1:49467
W=$(mktemp -d "${TMPDIR:-/tmp}/imipsec-gate-load.XXXXXX"); chmod 755 "$W"
PASS=0 FAIL=0 GATE_PID= DOVECOT_PID= MX_PID=

cleanup() {
  set +e
  [ -f "$W/mx/spool/pid/master.pid" ] && postfix -c "$W/mx/etc" stop >/dev/null 2>&1
  [ -n "$MX_PID" ] && wait "$MX_PID" 2>/dev/null
  stop_gate
  [ -n "$DOVECOT_PID" ] && kill -TERM "$DOVECOT_PID" 2>/dev/null && wait "$DOVECOT_PID" 2>/dev/null
  echo "gate-load: logs kept in $W"
}
trap cleanup EXIT
check() { local name=$1; shift
  if "$@"; then PASS=$((PASS + 1)); echo "ok   - $name"; else FAIL=$((FAIL + 1)); echo "FAIL - $name"; fi; }

ensure_packages
command -v python3 >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 >/dev/null; }
# shellcheck source=engine.sh
. "$HERE/engine.sh"
prepare_engine "$W"

start_gate() {
  write_gate_config "$W/gate" "$LOAD_ON_REJECT"
  gate_command "$W/gate" >>"$W/gate.log" 2>&1 &
  GATE_PID=$!
  wait_port "$MILTER"
}
stop_gate() {
  if [ -n "$GATE_PID" ]; then
    kill -TERM "$GATE_PID" 2>/dev/null && wait "$GATE_PID" 2>/dev/null
    GATE_PID=
  fi
  return 0
}

write_dovecot "$W/dc" "${LMTP#*:}"
dovecot -F -c "$W/dc/dovecot.conf" >"$W/dovecot-fg.log" 2>&1 & DOVECOT_PID=$!
if [ "$LOAD_MODE" = lmtp ]; then
  write_postfix "$W/mx" mx.gate.test "${SMTP#*:}" "lmtp:inet:$PROXY" "" \
    "127.0.0.1:${PLAIN_SMTP#*:} inet n - n - - smtpd -o smtpd_milters= -o non_smtpd_milters="
  postconf -c "$W/mx/etc" -e \
    "transport_maps = inline:{ example.org=lmtp:inet:$PROXY, example.net=lmtp:inet:$LMTP }"
  BASELINE_RECIPIENT=bob@example.net
else
  write_postfix "$W/mx" mx.gate.test "${SMTP#*:}" "lmtp:inet:$LMTP" "inet:$MILTER" \
    "127.0.0.1:${PLAIN_SMTP#*:} inet n - n - - smtpd -o smtpd_milters= -o non_smtpd_milters="
  BASELINE_RECIPIENT=bob@example.org
fi
postfix -c "$W/mx/etc" start-fg >"$W/mx-fg.log" 2>&1 & MX_PID=$!
start_gate
wait_port "$LMTP"; wait_port "$SMTP"; wait_port "$PLAIN_SMTP"

mkdir -p "$W/templates"
for kind in valid-request forged-cancel plain; do make_message "$kind" MARKER > "$W/templates/$kind.eml"; done
if [ "$LOAD_STORE" = 1 ]; then
  # One distinct signed REQUEST per valid message of both phases (load_client.py: index % 10
  # below 6 is a valid REQUEST), named by the marker the client gives it.
  mkdir -p "$W/templates/per-message"
  made=$(date +%s)
  make_valid() { make_message valid-request "$1" > "$W/templates/per-message/$1.eml"; }
  for phase_count in "G $LOAD_COUNT" "B $BASELINE_COUNT"; do
    read -r phase n <<<"$phase_count"
    for ((i = 0; i < n; i++)); do
      [ $((i % 10)) -lt 6 ] && printf 'L-%s-%06d\n' "$phase" "$i"
    done
  done > "$W/markers.txt"
  export -f make_valid make_message make_signed_message sender_of calendar sign_entity
  export W ORGANIZER GATE_ENGINE ROOT
  xargs -P 2 -I{} bash -c 'make_valid {}' < "$W/markers.txt"
  echo "gate-load: $(wc -l < "$W/markers.txt") distinct signed REQUESTs made in $(( $(date +%s) - made )) s"
fi

# ---- gated run, with one gate restart in the middle
python3 "$HERE/load_client.py" "$SMTP" "$LOAD_COUNT" "$CONCURRENCY" G "$W/templates" "$W/gated.jsonl" \
  > "$W/gated-summary.json" &
CLIENT=$!
half=$((LOAD_COUNT / 2))
[ "$LOAD_RESTART" = 1 ] || half=$((LOAD_COUNT * 2))
while kill -0 "$CLIENT" 2>/dev/null; do
  done_count=$(cat "$W/gated.jsonl.progress" 2>/dev/null || echo 0)
  [ "$done_count" -ge "$half" ] && break
  sleep 0.5
done
if [ "$LOAD_RESTART" = 1 ]; then
  echo "gate-load: restarting the gate after ~$(cat "$W/gated.jsonl.progress" 2>/dev/null || echo 0) messages"
  stop_gate; sleep 1; start_gate
fi
wait "$CLIENT"
if [ "$LOAD_MODE" = lmtp ]; then
  # deliveries of the gated run finish before the baseline starts
  for _ in $(seq 1 300); do
    postqueue -c "$W/mx/etc" -p | grep -q "Mail queue is empty" && break; sleep 0.2
  done
fi

# ---- baseline: same Postfix, same mix, no milter
LOAD_RECIPIENT=$BASELINE_RECIPIENT \
python3 "$HERE/load_client.py" "$PLAIN_SMTP" "$BASELINE_COUNT" "$CONCURRENCY" B "$W/templates" "$W/baseline.jsonl" \
  > "$W/baseline-summary.json"

# ---- let the queue drain, then account for every message
for _ in $(seq 1 300); do
  postqueue -c "$W/mx/etc" -p | grep -q "Mail queue is empty" && break; sleep 1
done
# bob's mailboxes only: a bounce to mallory quotes the refused message's marker
grep -rhoa "^X-E2E-Marker: L-[GB]-[0-9]*" "$W/dc/mail"/example.*/bob | sed 's/^X-E2E-Marker: //' | sort > "$W/delivered.txt"
# the quarantine mailbox (LMTP mode, on_reject = quarantine)
quarantine=$W/dc/mail/example.org/quarantine
{ [ -d "$quarantine" ] && grep -rhoa "^X-E2E-Marker: L-[GB]-[0-9]*" "$quarantine" | sed 's/^X-E2E-Marker: //' | sort; } > "$W/quarantined.txt" || true
# "MARKER DELIVERY-TIME" from the maildir file names (seconds.Mmicroseconds...); a
# quarantined message is delivered too (to the quarantine mailbox)
for f in "$W/dc/mail"/example.*/bob/Maildir/new/* "$quarantine"/Maildir/new/*; do
  [ -f "$f" ] || continue
  name=${f##*/}
  marker=$(grep -m1 -oa "^X-E2E-Marker: L-[GB]-[0-9]*" "$f" | sed 's/^X-E2E-Marker: //')
  [ -n "$marker" ] && echo "$marker ${name%%.*}.$(printf '%06d' "$(echo "$name" | sed 's/^[0-9]*\.M\([0-9]*\)P.*/\1/')")"
done > "$W/delivered-at.txt"
python3 - "$W" "$LOAD_MODE" "$LOAD_ON_REJECT" <<'PY' > "$W/accounting.json"
import json, sys, collections
w = sys.argv[1]
delivered = collections.Counter(open(w + "/delivered.txt").read().split())
quarantined = collections.Counter(open(w + "/quarantined.txt").read().split())
report = {}
for phase in ("gated", "baseline"):
    rows = [json.loads(l) for l in open("%s/%s.jsonl" % (w, phase))]
    gated = phase == "gated"
    bad = collections.Counter()
    lmtp = sys.argv[2] == "lmtp"
    for r in rows:
        n = delivered.get(r["marker"], 0)
        q = quarantined.get(r["marker"], 0)
        if r["kind"] == "forged-cancel" and gated and lmtp and sys.argv[3] == "quarantine":
            # accepted by Postfix, held in the quarantine mailbox by the gate, once
            ok = r["outcome"] == "accepted" and n == 0 and q == 1
        elif r["kind"] == "forged-cancel" and gated and lmtp:
            # accepted by Postfix, refused by the gate at delivery
            ok = r["outcome"] == "accepted" and n == 0 and q == 0
        elif r["kind"] == "forged-cancel" and gated:
            ok = r["outcome"] == "rejected" and n == 0
        else:
            ok = r["outcome"] == "accepted" and n == 1 and q == 0
        if not ok:
            bad["%s:%s:delivered=%d:quarantined=%d" % (r["kind"], r["outcome"], n, q)] += 1
    report[phase] = {"messages": len(rows), "unaccounted": sum(bad.values()), "problems": dict(bad)}
print(json.dumps(report))
PY
cat "$W/gated-summary.json" "$W/baseline-summary.json" "$W/accounting.json"
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }

check "gated run: all $LOAD_COUNT messages answered"    test "$(field "$W/gated-summary.json" "['messages']")" -eq "$LOAD_COUNT"
check "gated run: every message accounted for"          test "$(field "$W/accounting.json" "['gated']['unaccounted']")" -eq 0
if [ "$LOAD_MODE" = lmtp ]; then
  forged_delivered=$(python3 -c "
import json, sys
delivered = set(open(sys.argv[2]).read().split())
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)['kind'] == 'forged-cancel' and json.loads(l)['marker'] in delivered))" \
    "$W/gated.jsonl" "$W/delivered.txt")
  check "gated run: no forged message delivered"        test "$forged_delivered" -eq 0
else
  check "gated run: no forged message accepted"         test "$(field "$W/gated-summary.json" "['forged-cancel_accepted']")" -eq 0
fi
lost=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sum(v for k, v in d.items() if k.endswith('_lost')))" "$W/gated-summary.json")
check "gated run: no message lost (none given up after retries)" test "$lost" -eq 0
# (LMTP mode: Postfix, not the client, defers and retries during the restart; the
# accounting above shows that every message settled)
[ "$LOAD_MODE" = lmtp ] || [ "$LOAD_RESTART" != 1 ] ||
  check "gated run: the restart deferred messages, and they settled" test "$(field "$W/gated-summary.json" "['deferred_then_settled']")" -ge 1
check "baseline run: every message delivered once"      test "$(field "$W/accounting.json" "['baseline']['unaccounted']")" -eq 0

python3 - "$W" "$LOAD_MODE" "$LOAD_ON_REJECT" <<'PY'
import json, sys
w = sys.argv[1]
g = json.load(open(w + "/gated-summary.json")); b = json.load(open(w + "/baseline-summary.json"))
if sys.argv[2] == "lmtp":
    # submission to delivery: throughput is every message of the phase (the gated run's
    # forged CANCELs are handled too: quarantined, or refused at delivery, interleaved with
    # the others) over the phase's first submission to its last delivery; latency per
    # delivered message, a quarantined one included (first-try submissions only)
    at = dict(line.split() for line in open(w + "/delivered-at.txt"))
    for label, phase, summary in (("gated", "gated", g), ("no gate", "baseline", b)):
        rows = [json.loads(l) for l in open("%s/%s.jsonl" % (w, phase))]
        lat = sorted(float(at[r["marker"]]) - r["sent_at"] for r in rows
                     if r["marker"] in at and r["attempts"] == 1)
        first = min(r["sent_at"] for r in rows)
        last = max(float(at[r["marker"]]) for r in rows if r["marker"] in at)
        summary["seconds"] = last - first
        summary["per_second"] = len(rows) / (last - first)
        summary["p50_ms"] = lat[len(lat) // 2] * 1000
        summary["p99_ms"] = lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000
        summary["messages"] = len(rows)
    print("gate-load: LMTP mode, on_reject = %s, submission to delivery (throughput: every message of the phase; latency: delivered messages)" % sys.argv[3])
print("gate-load: gated   %d msgs in %.1f s = %.1f msg/s, p50 %.2f ms, p99 %.2f ms, deferred then settled %d"
      % (g["messages"], g["seconds"], g["per_second"], g["p50_ms"], g["p99_ms"], g["deferred_then_settled"]))
print("gate-load: no milter %d msgs in %.1f s = %.1f msg/s, p50 %.2f ms, p99 %.2f ms"
      % (b["messages"], b["seconds"], b["per_second"], b["p50_ms"], b["p99_ms"]))
print("gate-load: added latency p50 %.2f ms, p99 %.2f ms" % (g["p50_ms"] - b["p50_ms"], g["p99_ms"] - b["p99_ms"]))
if g.get("offered_per_second"):
    print("gate-load: offered %.1f msg/s in both phases; sent more than 50 ms late: gated %d, no gate %d"
          % (g["offered_per_second"], g["late_over_50ms"], b["late_over_50ms"]))
PY
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
