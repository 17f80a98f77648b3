#!/usr/bin/env bash
# The decision engine behind the gate in the end-to-end scripts, and the messages that
# exercise it. Sourced by run.sh and load.sh after ROOT and GATE_ENGINE are set.
#
#   GATE_ENGINE=test      the gate crate's TEST engine (verdict from X-Test-Verdict)
#   GATE_ENGINE=pipeline  `imipsec gate`: the real pipeline, messages signed with certs/

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

prepare_engine() { # WORKDIR
  case "$GATE_ENGINE" in
    test)
      (cd "$ROOT" && cargo build -q --release -p imipsec-gate --example test-engine-gate)
      GATE_BIN="$TARGET_DIR/release/examples/test-engine-gate" ;;
    *) echo "gate-e2e: unknown GATE_ENGINE=$GATE_ENGINE" >&2; return 1 ;;
  esac
}

# write_gate_config DIR ON_REJECT: the gate's configuration for this run.
write_gate_config() {
  mkdir -p "$1"
  cat > "$1/gate.json" <<JSON
{
  "authserv_id": "mx.gate.test",
  "milter": { "listen": "${MILTER}" },
  "lmtp": { "listen": "${PROXY}", "backend": "${LMTP}",
            "quarantine_address": "quarantine@example.org", "hostname": "lmtp-gate.test" },
  "on_reject": "$2",
  "metrics_listen": "${METRICS}",
  "limits": { "connections": 512 }
}
JSON
}

gate_command() { # DIR
  exec "$GATE_BIN" "$1/gate.json"
}

sender_of() { # KIND
  case "$1" in
    forged-cancel) echo mallory@example.net ;;
    *) echo organizer@example.net ;;
  esac
}
signer_of() { echo organizer@example.net; }

# make_message KIND MARKER: one RFC 5322 message on stdout (CRLF line ends).
#   valid-request            REQUEST signed by its ORGANIZER
#   valid-request-forged-ar  the same, behind forged Authentication-Results fields
#   forged-cancel            CANCEL by someone who is not the ORGANIZER
#   plain                    no calendar data at all
make_message() {
  local kind=$1 marker=$2 verdict method
  case "$kind" in
    valid-request|valid-request-forged-ar)
      verdict="accept signer=organizer@example.net method=REQUEST role=organizer"; method=REQUEST ;;
    forged-cancel) verdict="reject code=itip.organizer-mismatch"; method=CANCEL ;;
    plain) verdict="reject code=must-not-be-asked" ;;
  esac
  {
    if [ "$kind" = valid-request-forged-ar ]; then
      echo "Authentication-Results: mx.gate.test; smime=pass (FORGED) body.smime-identifier=ceo@example.org"
      echo "Authentication-Results: other.example; dkim=pass header.d=example.net"
    fi
    echo "From: $(sender_of "$kind")"
    echo "To: bob@example.org"
    echo "Subject: gate e2e $marker"
    echo "Message-ID: <$marker.$$@e2e.gate.test>"
    echo "X-E2E-Marker: $marker"
    echo "X-Test-Verdict: $verdict"
    echo "MIME-Version: 1.0"
    if [ "$kind" = plain ]; then
      echo "Content-Type: text/plain"
      echo
      echo "No calendar here; text/calendar is only mentioned."
    else
      echo "Content-Type: text/calendar; method=$method; charset=utf-8"
      echo
      calendar "$method" "$marker"
    fi
  } | sed 's/$/\r/'
}

calendar() { # METHOD MARKER
  cat <<ICS
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//imipsec//gate-e2e//EN
METHOD:$1
BEGIN:VEVENT
UID:$2@e2e.gate.test
DTSTAMP:20260601T100000Z
DTSTART:20260602T100000Z
DTEND:20260602T110000Z
SEQUENCE:0
SUMMARY:gate e2e $2
ORGANIZER:mailto:organizer@example.net
ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@example.org
END:VEVENT
END:VCALENDAR
ICS
}
