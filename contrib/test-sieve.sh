#!/usr/bin/env bash
# Runs the contrib Sieve guards in Dovecot Pigeonhole's `sieve-test` against messages that
# carry a calendar at the top level, nested in multiparts (as iMIP does), or not at all, with
# and without the gate's Authentication-Results. Issue #14: the guards looked at the
# top-level Content-Type only and let nested calendars through.
#
# Needs `sieve-test` (Debian: dovecot-sieve). Cyrus's guard uses `processcalendar`, which
# Pigeonhole lacks: its copy under test has that action replaced by `keep`, so what is tested
# is the guard's matching, the part that decides. Last line: "N passed, N failed".
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/imipsec-sieve.XXXXXX")
trap 'rm -rf "$W"' EXIT
PASS=0 FAIL=0

command -v sieve-test >/dev/null || { echo "test-sieve: sieve-test not found (dovecot-sieve)"; exit 2; }

# A private Dovecot configuration: nothing of /etc/dovecot is read. Dovecot refuses to
# handle mail as root, so as root it runs as nobody, and everything it reads or writes
# (scripts, their compiled .svbin, messages, the mail home) lives in the world-readable $W.
chmod 755 "$W"; mkdir -m 777 "$W/home"
if [ "$(id -u)" -eq 0 ]; then
  MAIL_UID=65534 MAIL_GID=65534
  chown "$MAIL_UID:$MAIL_GID" "$W" # where sieve-test writes the compiled .svbin
else
  MAIL_UID=$(id -u) MAIL_GID=$(id -g)
fi
cat >"$W/dovecot.conf" <<CONF
mail_uid = $MAIL_UID
mail_gid = $MAIL_GID
mail_home = $W/home
mail_location = maildir:$W/home/Maildir
CONF

AR_PASS='Authentication-Results: mx.example.org; smime=pass header.from=organizer@example.com; x-imip=pass'
AR_FAIL='Authentication-Results: mx.example.org; smime=fail; x-imip=fail (unsigned)'

calendar_part() {
  printf 'Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n'
}

message() { # NAME AR-HEADER(or empty) SHAPE
  local file="$W/$1.eml"
  {
    printf 'From: organizer@example.com\r\nTo: attendee@example.org\r\nSubject: %s\r\nMIME-Version: 1.0\r\n' "$1"
    [ -n "$2" ] && printf '%s\r\n' "$2"
    case $3 in
      top) calendar_part ;;
      nested)
        printf 'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n--outer\r\n'
        printf 'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n--inner\r\n'
        printf 'Content-Type: text/plain\r\n\r\nInvitation\r\n--inner\r\n'
        calendar_part
        printf '\r\n--inner--\r\n\r\n--outer--\r\n' ;;
      plain-decoy)
        # No calendar part; the words only appear in a boundary and a file name.
        printf 'Content-Type: multipart/mixed; boundary="text/calendar"\r\n\r\n--text/calendar\r\n'
        printf 'Content-Type: text/plain; name="text/calendar.txt"\r\n\r\nhello\r\n--text/calendar--\r\n' ;;
    esac
  } >"$file"
  echo "$file"
}

expect() { # NAME SCRIPT MESSAGE filed|kept
  local out
  chmod 644 "$3"
  out=$(sieve-test -c "$W/dovecot.conf" "$2" "$3" 2>&1) || { echo "FAIL - $1: sieve-test failed: $out"; FAIL=$((FAIL + 1)); return; }
  local filed=kept
  grep -q 'store message in folder: Calendar-Unverified' <<<"$out" && filed=filed
  if [ "$filed" = "$4" ]; then PASS=$((PASS + 1)); echo "ok   - $1"
  else FAIL=$((FAIL + 1)); echo "FAIL - $1: expected $4, got $filed"; echo "$out" | sed 's/^/    /'; fi
}

DOVECOT="$W/dovecot-guard.sieve"
cp "$HERE/dovecot/imipsec-calendar.sieve" "$DOVECOT"
CYRUS="$W/cyrus-guard-under-test.sieve"
sed -e 's/"processcalendar", //' -e 's/processcalendar :outcome "imip_outcome";/keep;/' \
  "$HERE/cyrus/imipsec-guard.sieve" >"$CYRUS"
chmod 644 "$DOVECOT" "$CYRUS"

for guard in dovecot cyrus; do
  script=$DOVECOT; [ "$guard" = cyrus ] && script=$CYRUS
  expect "$guard: top-level calendar, not verified, is filed aside" "$script" "$(message top-$guard "" top)" filed
  expect "$guard: calendar nested in multipart/mixed > alternative, not verified, is filed aside" "$script" "$(message nested-$guard "" nested)" filed
  expect "$guard: nested calendar with a failing verdict is filed aside" "$script" "$(message nested-fail-$guard "$AR_FAIL" nested)" filed
  expect "$guard: nested calendar the gate passed is kept" "$script" "$(message nested-pass-$guard "$AR_PASS" nested)" kept
  expect "$guard: mail without calendar (decoy boundary and name) is kept" "$script" "$(message decoy-$guard "" plain-decoy)" kept
done

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
