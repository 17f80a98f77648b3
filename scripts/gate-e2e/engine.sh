#!/usr/bin/env bash
# The decision engine behind the gate in the end-to-end scripts, and the messages that
# exercise it. Sourced by run.sh and load.sh after ROOT and GATE_ENGINE are set.
#
#   GATE_ENGINE=test      the gate crate's TEST engine (verdict from X-Test-Verdict)
#   GATE_ENGINE=pipeline  `imipsec gate`: the real pipeline, messages signed with certs/

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
# debug reuses what `cargo test --workspace` built (CI); load.sh asks for release
GATE_PROFILE=${GATE_PROFILE:-debug}
profile_flag() { [ "$GATE_PROFILE" = release ] && echo --release; true; }

prepare_engine() { # WORKDIR
  case "$GATE_ENGINE" in
    test)
      (cd "$ROOT" && cargo build -q $(profile_flag) -p imipsec-gate --example test-engine-gate)
      GATE_BIN="$TARGET_DIR/$GATE_PROFILE/examples/test-engine-gate" ;;
    pipeline)
      # GATE_BINARY=path: that imipsec binary instead of this tree's (A/B runs of two builds)
      if [ -n "${GATE_BINARY:-}" ]; then
        GATE_BIN=$GATE_BINARY
      else
        (cd "$ROOT" && cargo build -q $(profile_flag) -p imipsec)
        GATE_BIN="$TARGET_DIR/$GATE_PROFILE/imipsec"
      fi
      STORE_PATH=${GATE_STORE:-$1/policy.sqlite} ;;
    *) echo "gate-e2e: unknown GATE_ENGINE=$GATE_ENGINE" >&2; return 1 ;;
  esac
}

# write_gate_config DIR ON_REJECT: the gate's configuration for this run.
write_gate_config() {
  mkdir -p "$1"
  if [ "$GATE_ENGINE" = pipeline ]; then
    {
      echo "[trust]"
      echo "anchors = [\"$ROOT/certs/root.cert.pem\"]"
      echo "crls = [\"$ROOT/certs/intermediate.crl.pem\"]"
      if [ "$STORE_PATH" != none ]; then echo "[store]"; echo "path = \"$STORE_PATH\""; fi
      echo "[gate]"
      # without a store the gate refuses to start unless told so explicitly
      if [ "$STORE_PATH" = none ]; then echo "danger_no_event_state = true"; fi
      cat <<TOML
authserv_id = "mx.gate.test"
on_reject = "$2"
metrics_listen = "${METRICS}"
[gate.milter]
listen = "${MILTER}"
[gate.lmtp]
listen = "${PROXY}"
backend = "${LMTP}"
quarantine_address = "quarantine@example.org"
hostname = "lmtp-gate.test"
[gate.limits]
connections = 512
TOML
    } > "$1/imipsec.toml"
    return
  fi
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
  if [ "$GATE_ENGINE" = pipeline ]; then
    exec "$GATE_BIN" gate --config "$1/imipsec.toml"
  fi
  exec "$GATE_BIN" "$1/gate.json"
}

# The organizer of every test event; in pipeline mode the test PKI's organizer identity.
ORGANIZER=organizer@example.net
[ "$GATE_ENGINE" = pipeline ] && ORGANIZER=organizer@example.com

sender_of() { # KIND
  case "$1" in
    forged-cancel) echo mallory@example.net ;;
    *) echo "$ORGANIZER" ;;
  esac
}
signer_of() { echo "$ORGANIZER"; }

# sign_entity ROLE: S/MIME multipart/signed (detached, SHA-256) of the MIME entity on
# stdin, made by openssl with the test PKI's RSA identity ROLE (organizer, stranger, ...).
sign_entity() {
  openssl cms -sign -binary -crlfeol -md sha256 \
    -signer "$ROOT/certs/rsa2048/$1.cert.pem" -inkey "$ROOT/certs/rsa2048/$1.key.pem" \
    -certfile "$ROOT/certs/intermediate.cert.pem"
}

# make_message KIND MARKER: one RFC 5322 message on stdout (CRLF line ends).
#   valid-request            REQUEST signed by its ORGANIZER
#   valid-request-forged-ar  the same, behind forged Authentication-Results fields
#   forged-cancel            CANCEL by someone who is not the ORGANIZER
#   plain                    no calendar data at all
make_message() {
  if [ "$GATE_ENGINE" = pipeline ]; then make_signed_message "$@"; return; fi
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
      # RFC 8601 section 2.2 lets the authserv-id be a quoted-string, behind comments
      echo "Authentication-Results: \"mx.gate.test\"; smime=pass (FORGED) body.smime-identifier=ceo@example.org"
      echo "Authentication-Results: (x) MX.Gate.Test; x-imip=pass (FORGED)"
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
UID:${3:-$2}@e2e.gate.test
DTSTAMP:20260601T100000Z
DTSTART:20260602T100000Z
DTEND:20260602T110000Z
SEQUENCE:0
SUMMARY:gate e2e ${3:-$2}
ORGANIZER:mailto:$ORGANIZER
ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@example.org
END:VEVENT
END:VCALENDAR
ICS
}

# make_signed_message KIND MARKER: like make_message, but the calendar is really signed:
# the valid REQUEST by the ORGANIZER, the forged CANCEL by Mallory (who is not the
# ORGANIZER). The marker is only in unsigned outer headers, so load.sh can substitute it;
# the UID is unique per message unless the marker is the literal MARKER template.
make_signed_message() {
  local kind=$1 marker=$2 method signer uid
  # E2E_UID: the event UID, when a case sends several messages about one event
  uid=${E2E_UID:-$marker}
  [ "$marker" = MARKER ] && uid="load-template-$kind"
  case "$kind" in
    valid-request|valid-request-forged-ar) method=REQUEST; signer=organizer ;;
    forged-cancel) method=CANCEL; signer=stranger ;;
  esac
  {
    if [ "$kind" = valid-request-forged-ar ]; then
      echo "Authentication-Results: mx.gate.test; smime=pass (FORGED) body.smime-identifier=ceo@example.org"
      # RFC 8601 section 2.2 lets the authserv-id be a quoted-string, behind comments
      echo "Authentication-Results: \"mx.gate.test\"; smime=pass (FORGED) body.smime-identifier=ceo@example.org"
      echo "Authentication-Results: (x) MX.Gate.Test; x-imip=pass (FORGED)"
      echo "Authentication-Results: other.example; dkim=pass header.d=example.net"
    fi
    echo "From: $(sender_of "$kind")"
    echo "To: bob@example.org"
    echo "Subject: gate e2e $marker"
    echo "Date: $(date -R)"
    echo "Message-ID: <$marker.$$@e2e.gate.test>"
    echo "X-E2E-Marker: $marker"
  } | sed 's/$/\r/'
  if [ "$kind" = plain ]; then
    printf 'MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nNo calendar here.\r\n'
    return
  fi
  {
    printf 'Content-Type: text/calendar; method=%s; charset=utf-8; component=VEVENT\r\n' "$method"
    printf 'Content-Transfer-Encoding: 7bit\r\n\r\n'
    calendar "$method" "$marker" "$uid" | sed 's/$/\r/'
  } | sign_entity "$signer"
}
