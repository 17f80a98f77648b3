#!/usr/bin/env bash
# A fleet end to end (issue 16): two `imipsec gate` processes sharing one PostgreSQL, behind
# one real Postfix with two smtpd listeners (one per gate milter), Dovecot LMTP as the
# mailbox; loopback only; run as root on Debian/Ubuntu with postgresql-15 installed.
#
#   client --SMTP--> Postfix :42545 --milter--> gate A :48901 --\
#   client --SMTP--> Postfix :42546 --milter--> gate B :48902 ---> PostgreSQL (own cluster)
#                       \--LMTP--> Dovecot :44044
#
# FLEET_COUNT messages (default 10000) in blocks of 10: one conflicting pair (two organizers
# claiming one UID / the same REQUEST to both gates / a REPLY and a CANCEL of one event),
# the pair's partner messages go to the two gates at the same moment; REQUESTs with
# distinct UIDs, plain mail and forged CANCELs alternate between the gates. PostgreSQL is
# stopped and started again halfway. Then: nothing lost (every message answered 250 or
# 5xx, possibly after 4xx retries; the Postfix queue empty; each accepted message in the
# mailbox exactly once, no rejected one), no forged message accepted, every pair's
# outcomes those of one serial order (the serial outcomes are measured first, one message
# after the other), every conflict decided once. FLEET_BENCH_COUNT=N (default 0) also
# measures N distinct REQUESTs through one gate, then N through both.
# GATE_PROFILE=release uses a release build. .ci/run sends FLEET_COUNT=2000 (about 80 s
# with a warm debug build; 10,000 take about 6 minutes on 2 busy cores).
# Last line: "N passed, N failed".
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=lib-fleet.sh
. "$HERE/lib-fleet.sh"

FLEET_COUNT=${FLEET_COUNT:-10000} FLEET_BENCH_COUNT=${FLEET_BENCH_COUNT:-0}
CONCURRENCY=${CONCURRENCY:-16}
SMTP_A=127.0.0.1:42545 SMTP_B=127.0.0.1:42546 LMTP=127.0.0.1:44044
MILTER_A=127.0.0.1:48901 MILTER_B=127.0.0.1:48902
W=$(mktemp -d "${TMPDIR:-/tmp}/imipsec-gate-fleet.XXXXXX"); chmod 755 "$W"
PASS=0 FAIL=0 DOVECOT_PID= MX_PID= GATE_A_PID= GATE_B_PID=

cleanup() {
  set +e
  [ -f "$W/mx/spool/pid/master.pid" ] && postfix -c "$W/mx/etc" stop >/dev/null 2>&1
  [ -n "$MX_PID" ] && wait "$MX_PID" 2>/dev/null
  for pid in "$GATE_A_PID" "$GATE_B_PID"; do
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  [ -n "$DOVECOT_PID" ] && kill -TERM "$DOVECOT_PID" 2>/dev/null && wait "$DOVECOT_PID" 2>/dev/null
  pg_stop_by_pid "$W/pg"
  rm -rf "$W/pg/data" "$W/msgs" "$W/dc/mail"   # large; the logs stay
  echo "gate-fleet: logs kept in $W"
}
trap cleanup EXIT
check() { local name=$1; shift
  if "$@"; then PASS=$((PASS + 1)); echo "ok   - $name"; else FAIL=$((FAIL + 1)); echo "FAIL - $name"; fi; }
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }

ensure_packages
GATE_PROFILE=${GATE_PROFILE:-debug}
(cd "$ROOT" && cargo build -q $([ "$GATE_PROFILE" = release ] && echo --release) -p imipsec)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/$GATE_PROFILE/imipsec

# ---- PostgreSQL, the store, the gates, Postfix, Dovecot
pg_start "$W/pg"
URL="postgresql://postgres@127.0.0.1:$PG_PORT/imipsec"
"$BIN" store init --store "$URL" >"$W/store-init.log" 2>&1
write_dovecot "$W/dc" "${LMTP#*:}"
dovecot -F -c "$W/dc/dovecot.conf" >"$W/dovecot-fg.log" 2>&1 & DOVECOT_PID=$!
write_fleet_gate_config "$W/gate-a" "$URL" "$MILTER_A" 127.0.0.1:49476
write_fleet_gate_config "$W/gate-b" "$URL" "$MILTER_B" 127.0.0.1:49477
"$BIN" gate --config "$W/gate-a/imipsec.toml" >>"$W/gate-a.log" 2>&1 & GATE_A_PID=$!
"$BIN" gate --config "$W/gate-b/imipsec.toml" >>"$W/gate-b.log" 2>&1 & GATE_B_PID=$!
write_postfix "$W/mx" mx.gate.test "${SMTP_A#*:}" "lmtp:inet:$LMTP" "inet:$MILTER_A" \
  "127.0.0.1:${SMTP_B#*:} inet n - n - - smtpd -o smtpd_milters=inet:$MILTER_B"
postfix -c "$W/mx/etc" start-fg >"$W/mx-fg.log" 2>&1 & MX_PID=$!
wait_port "$MILTER_A"; wait_port "$MILTER_B"; wait_port "$LMTP"; wait_port "$SMTP_A"; wait_port "$SMTP_B"

# ---- the messages (signing takes a while: two openssl at a time)
started=$(date +%s)
python3 "$HERE/fleet_client.py" make "$ROOT" "$W/msgs" "$FLEET_COUNT" "$FLEET_BENCH_COUNT"
echo "gate-fleet: $(wc -l < "$W/msgs/manifest.jsonl") messages made in $(( $(date +%s) - started )) s"

# ---- the serial outcomes of each conflict kind, one message after the other
python3 "$HERE/fleet_client.py" calibrate "$W/msgs" "$SMTP_A" "$W/calibrate.jsonl"
# ---- setup REQUESTs of the REPLY/CANCEL pairs, then the race with a PostgreSQL restart
python3 "$HERE/fleet_client.py" send "$W/msgs" setup "$SMTP_A" "$SMTP_B" "$CONCURRENCY" \
  "$W/setup.jsonl" > "$W/setup-summary.json"
python3 "$HERE/fleet_client.py" send "$W/msgs" race "$SMTP_A" "$SMTP_B" "$CONCURRENCY" \
  "$W/race.jsonl" > "$W/race-summary.json" &
CLIENT=$!
race_total=$(grep -c '"phase": "race"' "$W/msgs/manifest.jsonl")
while kill -0 "$CLIENT" 2>/dev/null; do
  [ "$(cat "$W/race.jsonl.progress" 2>/dev/null || echo 0)" -ge $((race_total / 2)) ] && break
  sleep 0.2
done
echo "gate-fleet: restarting PostgreSQL after ~$(cat "$W/race.jsonl.progress" 2>/dev/null || echo 0) of $race_total messages"
pg_restart "$W/pg" 2
wait "$CLIENT"

# ---- throughput: one gate, then both (no restart)
if [ "$FLEET_BENCH_COUNT" -gt 0 ]; then
  python3 "$HERE/fleet_client.py" send "$W/msgs" bench1 "$SMTP_A" - "$CONCURRENCY" \
    "$W/bench1.jsonl" > "$W/bench1-summary.json"
  python3 "$HERE/fleet_client.py" send "$W/msgs" bench2 "$SMTP_A" "$SMTP_B" "$CONCURRENCY" \
    "$W/bench2.jsonl" > "$W/bench2-summary.json"
fi

# ---- drain, then account for every message
for _ in $(seq 1 300); do
  postqueue -c "$W/mx/etc" -p | grep -q "Mail queue is empty" && break; sleep 1
done
queue_empty() { postqueue -c "$W/mx/etc" -p | grep -q "Mail queue is empty"; }
grep -rhoa "^X-E2E-Marker: F-[0-9]*" "$W/dc/mail" | sed 's/^X-E2E-Marker: //' | sort > "$W/delivered.txt"
python3 "$HERE/fleet_account.py" "$W" > "$W/accounting.json"
cat "$W/race-summary.json" "$W/accounting.json"

check "PostgreSQL was restarted during the race (deferred then settled >= 1)" \
  test "$(field "$W/race-summary.json" "['deferred_then_settled']")" -ge 1
check "no message lost: every one answered 250 or 5xx in the end" \
  test "$(field "$W/accounting.json" "['lost']")" -eq 0
check "the Postfix queue is empty"                     queue_empty
check "every accepted message delivered exactly once, no rejected one delivered" \
  test "$(field "$W/accounting.json" "['delivery_mismatches']")" -eq 0
check "every REQUEST with a distinct UID accepted"     test "$(field "$W/accounting.json" "['single_requests_not_accepted']")" -eq 0
check "every plain message accepted"                   test "$(field "$W/accounting.json" "['plain_not_accepted']")" -eq 0
check "no forged CANCEL accepted"                      test "$(field "$W/accounting.json" "['forged_accepted']")" -eq 0
check "serial outcomes measured: each conflict kind decided as expected serially" \
  test "$(field "$W/accounting.json" "['calibration_problems']")" = "[]"
check "every conflicting pair ended as one serial order would (0 wrongly accepted)" \
  test "$(field "$W/accounting.json" "['pairs_not_serial']")" -eq 0
check "two organizers / one REQUEST twice: exactly one accepted per pair" \
  test "$(field "$W/accounting.json" "['pairs_not_decided_once']")" -eq 0
if [ "$FLEET_BENCH_COUNT" -gt 0 ]; then
  check "throughput phases: every REQUEST accepted" \
    test "$(field "$W/accounting.json" "['bench_not_accepted']")" -eq 0
fi

python3 - "$W" <<'PY'
import json, os, sys
w = sys.argv[1]
for name, label in (("race", "race (2 gates, PG restart)"), ("bench1", "1 gate"), ("bench2", "2 gates")):
    path = "%s/%s-summary.json" % (w, name)
    if os.path.exists(path):
        s = json.load(open(path))
        print("gate-fleet: %-27s %5d msgs in %6.1f s = %6.1f msg/s, p50 %.1f ms, p99 %.1f ms, deferred then settled %d"
              % (label, s["messages"], s["seconds"], s["per_second"], s["p50_ms"], s["p99_ms"], s["deferred_then_settled"]))
PY
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
