#!/usr/bin/env bash
# End-to-end test of the imipsec gate between a real Postfix and a real Dovecot, all on
# loopback (issue 6, acceptance 1). Run as root on Debian/Ubuntu; installs postfix,
# dovecot-lmtpd and swaks when missing. Last line: "N passed, N failed"; exit 1 on failure.
#
#   client --SMTP--> Postfix "mx" :42525 --milter--> gate :48891
#                        \--LMTP--> Dovecot :44024
#   client --SMTP--> Postfix "front" :42526 --SMTP relay, retries--> Postfix "mx"
#   client --LMTP--> gate LMTP proxy :44025 --LMTP--> Dovecot :44024
#
# GATE_ENGINE=test (default) drives the gate with the TEST engine of the gate crate's
# tests (verdict taken from an X-Test-Verdict header); GATE_ENGINE=pipeline runs
# `imipsec gate` with the real verify-then-process pipeline and messages signed with
# the test PKI in certs/.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

GATE_ENGINE=${GATE_ENGINE:-pipeline}
SMTP=127.0.0.1:42525 FRONT=127.0.0.1:42526 MILTER=127.0.0.1:48891
LMTP=127.0.0.1:44024 PROXY=127.0.0.1:44025 METRICS=127.0.0.1:49466
W=$(mktemp -d "${TMPDIR:-/tmp}/imipsec-gate-e2e.XXXXXX"); chmod 755 "$W"
PASS=0 FAIL=0 GATE_PID= DOVECOT_PID= MX_PID= FRONT_PID=
MAILDIR="$W/dc/mail/example.org"

cleanup() {
  set +e
  for pf in mx front; do
    [ -f "$W/$pf/spool/pid/master.pid" ] && postfix -c "$W/$pf/etc" stop >/dev/null 2>&1
  done
  [ -n "$MX_PID" ] && wait "$MX_PID" 2>/dev/null
  [ -n "$FRONT_PID" ] && wait "$FRONT_PID" 2>/dev/null
  stop_gate
  [ -n "$DOVECOT_PID" ] && kill -TERM "$DOVECOT_PID" 2>/dev/null && wait "$DOVECOT_PID" 2>/dev/null
  echo "gate-e2e: logs kept in $W"
}
trap cleanup EXIT

check() { # NAME COMMAND...
  local name=$1; shift
  if "$@"; then PASS=$((PASS + 1)); echo "ok   - $name"
  else FAIL=$((FAIL + 1)); echo "FAIL - $name"; fi
}

ensure_packages
# shellcheck source=engine.sh
. "$HERE/engine.sh"
prepare_engine "$W"

# ------------------------------------------------------------------ the gate
start_gate() { # ON_REJECT
  write_gate_config "$W/gate-$1" "$1"
  gate_command "$W/gate-$1" >>"$W/gate.log" 2>&1 &
  GATE_PID=$!
  wait_port "$MILTER" && wait_port "$PROXY"
}
stop_gate() {
  if [ -n "$GATE_PID" ]; then
    kill -TERM "$GATE_PID" 2>/dev/null && wait "$GATE_PID" 2>/dev/null
    GATE_PID=
    wait_closed "$MILTER"
  fi
  return 0
}

# ------------------------------------------------------------------ services
write_dovecot "$W/dc" "${LMTP#*:}"
dovecot -F -c "$W/dc/dovecot.conf" >"$W/dovecot-fg.log" 2>&1 & DOVECOT_PID=$!
write_postfix "$W/mx" mx.gate.test "${SMTP#*:}" "lmtp:inet:$LMTP" "inet:$MILTER"
write_postfix "$W/front" front.gate.test "${FRONT#*:}" "smtp:[${SMTP%:*}]:${SMTP#*:}" ""
postfix -c "$W/mx/etc" start-fg >"$W/mx-fg.log" 2>&1 & MX_PID=$!
postfix -c "$W/front/etc" start-fg >"$W/front-fg.log" 2>&1 & FRONT_PID=$!
start_gate reject
wait_port "$LMTP"; wait_port "$SMTP"; wait_port "$FRONT"

# ------------------------------------------------------------------ helpers
send() { # SERVER KIND MARKER [swaks options...]
  local server=$1 kind=$2 marker=$3; shift 3
  make_message "$kind" "$marker" > "$W/msg-$marker.eml"
  timeout 60 swaks --server "$server" --from "$(sender_of "$kind")" --to bob@example.org \
    --data "$W/msg-$marker.eml" --hide-informational "$@" > "$W/swaks-$marker.log" 2>&1 || true
}
mailbox_file() { grep -rls --exclude-dir=tmp "X-E2E-Marker: $1" "$MAILDIR" 2>/dev/null | head -1; }
delivered() { # MARKER: wait up to 20 s for it in the mailbox
  for _ in $(seq 1 100); do [ -n "$(mailbox_file "$1")" ] && return 0; sleep 0.2; done; return 1; }
not_delivered() { sleep 1; [ -z "$(mailbox_file "$1")" ]; }
replied() { grep -q "$2" "$W/swaks-$1.log"; }
header_in_mailbox() { local f; f=$(mailbox_file "$1"); [ -n "$f" ] && grep -qE "$2" "$f"; }
no_header_in_mailbox() { local f; f=$(mailbox_file "$1"); [ -n "$f" ] && ! grep -qE "$2" "$f"; }
held_in_queue() { postqueue -c "$W/mx/etc" -p | grep -qE '^[0-9A-F]+!'; }
front_queue_has_mail() { postqueue -c "$W/front/etc" -p | grep -qE '^[0-9A-F]+\*? '; }

# ------------------------------------------------------------------ milter mode
send "$SMTP" valid-request ACCEPT
check "signed REQUEST accepted (250)"                replied ACCEPT "250 2.0.0 Ok: queued"
check "signed REQUEST delivered to Dovecot"          delivered ACCEPT
check "delivered with our Authentication-Results"    header_in_mailbox ACCEPT "^Authentication-Results: mx.gate.test; smime=pass body.smime-identifier=$(signer_of valid-request)"
check "A-R names method and role (x-imip=pass)"      header_in_mailbox ACCEPT "x-imip=pass policy.method=REQUEST policy.role=organizer"
check "A-R says the event state was checked"         header_in_mailbox ACCEPT "policy.event-state=checked"

send "$SMTP" forged-cancel FORGED-CANCEL
check "forged CANCEL rejected with 550 5.7.1"        replied FORGED-CANCEL "550 5.7.1 imipsec: calendar message rejected"
check "forged CANCEL never delivered"                not_delivered FORGED-CANCEL

send "$SMTP" valid-request-forged-ar FORGED-AR
check "message with forged A-R delivered"            delivered FORGED-AR
check "A-R claiming our authserv-id stripped"        no_header_in_mailbox FORGED-AR "\\(FORGED\\)"
check "A-R of other authserv-ids kept"               header_in_mailbox FORGED-AR "^Authentication-Results: other.example; dkim=pass"
check "our own A-R added instead"                    header_in_mailbox FORGED-AR "^Authentication-Results: mx.gate.test; smime=pass"

send "$SMTP" plain PLAIN
check "non-calendar mail delivered untouched"        delivered PLAIN
check "non-calendar mail gets no A-R from us"        no_header_in_mailbox PLAIN "mx.gate.test; smime"

stop_gate; start_gate quarantine
send "$SMTP" forged-cancel QUARANTINE
check "quarantine mode: 250 to the client"           replied QUARANTINE "250 2.0.0 Ok: queued"
check "quarantine mode: held in Postfix hold queue"  held_in_queue
check "quarantine mode: not delivered"               not_delivered QUARANTINE

stop_gate; start_gate defuse
send "$SMTP" forged-cancel DEFUSE
check "defuse mode: delivered"                       delivered DEFUSE
check "defuse mode: calendar part renamed"           header_in_mailbox DEFUSE "application/x-imipsec-defused-calendar"
check "defuse mode: no text/calendar left"           no_header_in_mailbox DEFUSE "[Tt]ext/[Cc]alendar"
check "defuse mode: x-imip=fail in A-R"              header_in_mailbox DEFUSE "x-imip=fail policy.reason="

# ------------------------------------------------------------------ per-recipient outcomes
# Issue #15: one recipient's reject (here carol's own event state: another message with the
# same SEQUENCE) removes that recipient (SMFIR_DELRCPT); the others still get the message.
send_to() { # SERVER KIND MARKER UID RCPT...: like send, about event UID, to these recipients
  local server=$1 kind=$2 marker=$3 uid=$4; shift 4
  E2E_UID=$uid make_message "$kind" "$marker" > "$W/msg-$marker.eml"
  timeout 60 swaks --server "$server" --from "$(sender_of "$kind")" --to "$(IFS=,; echo "$*")" \
    --data "$W/msg-$marker.eml" --hide-informational > "$W/swaks-$marker.log" 2>&1 || true
}
delivered_to() { # USER MARKER: wait up to 20 s for it in USER's mailbox
  for _ in $(seq 1 100); do
    grep -rlqs --exclude-dir=tmp "X-E2E-Marker: $2" "$MAILDIR/$1" && return 0; sleep 0.2
  done; return 1; }
not_delivered_to() { sleep 1; ! grep -rlqs --exclude-dir=tmp "X-E2E-Marker: $2" "$MAILDIR/$1"; }
if [ "$GATE_ENGINE" = pipeline ]; then
  stop_gate; start_gate reject   # per-recipient removal is what `reject` does
  send_to "$SMTP" valid-request SPLIT-FIRST split-rcpt carol@example.org
  check "per-recipient: first REQUEST delivered to carol" delivered_to carol SPLIT-FIRST
  send_to "$SMTP" valid-request SPLIT-SECOND split-rcpt bob@example.org carol@example.org
  check "per-recipient: 250 although carol's state rejects it" replied SPLIT-SECOND "250 2.0.0 Ok: queued"
  check "per-recipient: delivered to bob"            delivered_to bob SPLIT-SECOND
  check "per-recipient: carol removed (stale state)" not_delivered_to carol SPLIT-SECOND
  check "per-recipient: removal logged with reason"  grep -q "recipient rejected and removed" "$W/gate.log"
fi

# ------------------------------------------------------------------ gate down: fail closed, retried
stop_gate
send "$SMTP" valid-request GATE-DOWN-DIRECT
check "gate down: 451 to the SMTP client"            replied GATE-DOWN-DIRECT "451 4.7.1"
send "$FRONT" valid-request GATE-DOWN-RELAYED
check "gate down: relay hop accepted it (250)"       replied GATE-DOWN-RELAYED "250 2.0.0 Ok: queued"
sleep 3
check "gate down: relayed mail deferred, not delivered" not_delivered GATE-DOWN-RELAYED
check "gate down: still in the relay's queue"        front_queue_has_mail
start_gate reject
check "gate back: deferred mail retried and delivered" delivered GATE-DOWN-RELAYED
check "gate back: delivered with our A-R"            header_in_mailbox GATE-DOWN-RELAYED "^Authentication-Results: mx.gate.test; smime=pass"

# ------------------------------------------------------------------ LMTP proxy mode
send "$PROXY" valid-request LMTP-ACCEPT --protocol LMTP
check "LMTP proxy: accepted (250 from Dovecot)"      replied LMTP-ACCEPT "250 2.0.0 <bob@example.org>.*Saved"
check "LMTP proxy: delivered with our A-R"           header_in_mailbox LMTP-ACCEPT "^Authentication-Results: mx.gate.test; smime=pass"
send "$PROXY" forged-cancel LMTP-FORGED --protocol LMTP
check "LMTP proxy: forged CANCEL 550 5.7.1"          replied LMTP-FORGED "550 5.7.1 imipsec"
check "LMTP proxy: forged CANCEL not delivered"      not_delivered LMTP-FORGED
# Dovecot restarted while a client keeps its session to the proxy (Postfix's connection
# cache): between transactions the proxy connects again, and the next message, sent with
# MAIL straight away, is delivered, not deferred.
E2E_UID=lmtp-restart-1 make_message valid-request LMTP-RESTART-1 > "$W/msg-LMTP-RESTART-1.eml"
E2E_UID=lmtp-restart-2 make_message valid-request LMTP-RESTART-2 > "$W/msg-LMTP-RESTART-2.eml"
rm -f "$W/lmtp-first-done" "$W/lmtp-go"
timeout 120 python3 "$HERE/lmtp_session.py" "$PROXY" "$(sender_of valid-request)" bob@example.org \
  "$W/msg-LMTP-RESTART-1.eml" "$W/msg-LMTP-RESTART-2.eml" "$W/lmtp-first-done" "$W/lmtp-go" \
  "$W/lmtp-session.log" & SESSION_PID=$!
for _ in $(seq 1 300); do [ -e "$W/lmtp-first-done" ] && break; sleep 0.1; done
kill -TERM "$DOVECOT_PID"; wait "$DOVECOT_PID" 2>/dev/null || true
wait_closed "$LMTP"
dovecot -F -c "$W/dc/dovecot.conf" >>"$W/dovecot-fg.log" 2>&1 & DOVECOT_PID=$!
wait_port "$LMTP"
touch "$W/lmtp-go"
wait "$SESSION_PID" || true
check "LMTP proxy: first message of the session delivered" delivered LMTP-RESTART-1
check "LMTP proxy: after a Dovecot restart, the same session delivers the next" delivered LMTP-RESTART-2
check "LMTP proxy: no tempfail in that session"  bash -c "! grep -q '^4' '$W/lmtp-session.log'"

kill -TERM "$DOVECOT_PID"; wait "$DOVECOT_PID" 2>/dev/null || true; DOVECOT_PID=
wait_closed "$LMTP"
send "$PROXY" valid-request LMTP-DOWN --protocol LMTP
check "LMTP proxy: Dovecot down -> 421 4.4.0 tempfail" replied LMTP-DOWN "421 4.4.0"

curl_metrics() { exec 3<>"/dev/tcp/${METRICS%:*}/${METRICS#*:}" && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3; }
check "metrics endpoint counts accepted messages"   bash -c "$(declare -f curl_metrics); METRICS=$METRICS; curl_metrics | grep -qE 'imipsec_gate_messages_total\{action=\"accept\"\} [1-9]'"

# ------------------------------------------------------------------ contrib Sieve guards
# Issue #14: the guards must catch calendars nested in multiparts; run them in Pigeonhole.
check "contrib Sieve guards in Pigeonhole (nested calendars filed aside)" \
  bash -c "'$ROOT/contrib/test-sieve.sh' >'$W/sieve.log' 2>&1"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
