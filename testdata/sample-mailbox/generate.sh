#!/usr/bin/env bash
# Regenerates the bundled sample mailbox that `imipsec audit` is demonstrated on:
#   inbox.mbox          signed, forged and unsigned invitations over three months (mboxrd)
#   archive/{cur,new}/  a Maildir with a few more
# Usage: testdata/sample-mailbox/generate.sh   (from anywhere; needs bash and OpenSSL 3)
#
# The legitimate messages are signed by `imipsec sign` (built here with cargo unless IMIPSEC
# names a binary), with a signing time equal to their Date; the forged ones by `openssl cms`.
# Both use the test PKI in certs/ (see certs/README.md): rerun this after certs/generate.sh.
# Expected verdicts at 2026-06-01T00:00:00Z with
# `--trust certs/root.cert.pem --crl certs/intermediate.crl.pem`, by Subject prefix:
#   [ok]        signed by the ORGANIZER (REQUEST) or the ATTENDEE (REPLY): accept
#   [forged]    signed by mallory@example.net, naming organizer@example.com: reject
#   [cancel]    CANCEL signed by an attendee (only the organizer may cancel): reject
#   [unsigned]  a plain REQUEST: reject
#   [beside]    a signed text part with an unsigned calendar beside it: reject
#   [tampered]  signed by the organizer, then the calendar was edited: reject
#   [revoked]   signed with a revoked certificate: reject
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
certs=$root/certs
if [ -z "${IMIPSEC:-}" ]; then
  (cd "$root" && cargo build --release --quiet --bin imipsec)
  IMIPSEC=${CARGO_TARGET_DIR:-$root/target}/release/imipsec
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

crlf() { sed 's/\r*$/\r/'; }

# calendar METHOD UID ORGANIZER ATTENDEE PARTSTAT DTSTAMP SEQUENCE
calendar() {
  local method=$1 uid=$2 organizer=$3 attendee=$4 partstat=$5 stamp=$6 sequence=$7
  cat <<ICS | crlf
BEGIN:VCALENDAR
PRODID:-//imipsec//sample mailbox//EN
VERSION:2.0
METHOD:$method
BEGIN:VEVENT
UID:$uid
DTSTAMP:$stamp
DTSTART:20260710T090000Z
DTEND:20260710T100000Z
SEQUENCE:$sequence
SUMMARY:Quarterly planning
ORGANIZER:mailto:$organizer
ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=$partstat;RSVP=TRUE:mailto:$attendee
END:VEVENT
END:VCALENDAR
ICS
}

# calendar_part METHOD ...calendar args: a text/calendar MIME entity
calendar_part() {
  local method=$1
  printf 'Content-Type: text/calendar; method=%s; charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n' "$method"
  calendar "$@"
}

# sign IDENTITY-DIR/NAME < entity > multipart/signed entity (headers MIME-Version, Content-Type)
sign() {
  openssl cms -sign -md sha256 -crlfeol \
    -signer "$certs/$1.cert.pem" -inkey "$certs/$1.key.pem" \
    -certfile "$certs/intermediate.cert.pem" | crlf
}

# imipsec_sign IDENTITY-DIR/NAME DATE MESSAGE-ID < message > signed message: `imipsec sign` with
# the message's Date as signing time; the Message-ID it assigns is replaced by a stable one
# (the header is outside the signature).
imipsec_sign() {
  local at
  at=$(date -u -d "$2" '+%Y-%m-%dT%H:%M:%SZ')
  SAMPLE_PASSWORD=imipsec "$IMIPSEC" sign --identity "$certs/$1.p12" \
    --identity-password-env SAMPLE_PASSWORD --at "$at" |
    sed "1,/^\r\?\$/ s/^Message-ID: .*/Message-ID: <$3>\r/"
}

# envelope FROM TO SUBJECT DATE MESSAGE-ID < MIME entity (with its own headers) > message
envelope() {
  printf 'From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n' "$1" "$2" "$3" "$4" "$5"
  cat
}

messages=$work/messages
mkdir -p "$messages"
# emit NAME < message: collect in reading order (numbered by what is already there, as emit
# runs in a pipeline's subshell)
emit() {
  local n
  n=$(find "$messages" -name '*.eml' | wc -l)
  cat > "$messages/$(printf '%03d' $((n + 1)))-$1.eml"
}

org=organizer@example.com
att=attendee@example.com
days=(2026-03-02 2026-03-09 2026-03-17 2026-03-24 2026-04-01 2026-04-08 2026-04-15 2026-04-22 2026-05-04 2026-05-12 2026-05-19 2026-05-26)
for i in "${!days[@]}"; do
  day=${days[$i]}
  stamp=$(echo "$day" | tr -d -)T090000Z
  date=$(date -u -d "$day 09:00" '+%a, %d %b %Y %H:%M:%S +0000')
  uid="plan-$i@example.com"
  # The organizer invites, the attendee accepts: both accepted.
  { printf 'MIME-Version: 1.0\r\n'; calendar_part REQUEST "$uid" $org $att NEEDS-ACTION "$stamp" 0; } |
    envelope $org $att "[ok] Quarterly planning $i" "$date" "req-$i@example.com" |
    imipsec_sign rsa2048/organizer "$date" "req-$i@example.com" | emit ok-request
  { printf 'MIME-Version: 1.0\r\n'; calendar_part REPLY "$uid" $org $att ACCEPTED "$stamp" 0; } |
    envelope $att $org "[ok] Accepted: Quarterly planning $i" "$date" "reply-$i@example.com" |
    imipsec_sign rsa2048/attendee "$date" "reply-$i@example.com" | emit ok-reply
  case $((i % 6)) in
    0) calendar_part REQUEST "forged-$i@example.com" $org $att NEEDS-ACTION "$stamp" 0 |
         sign rsa2048/stranger |
         envelope $org $att "[forged] Board meeting moved" "$date" "forged-$i@example.net" | emit forged ;;
    1) calendar_part CANCEL "$uid" $org $att NEEDS-ACTION "$stamp" 1 | sign rsa2048/attendee |
         envelope $att $org "[cancel] Cancelled: Quarterly planning $i" "$date" "cancel-$i@example.com" | emit cancel ;;
    2) calendar_part REQUEST "unsigned-$i@example.com" $org $att NEEDS-ACTION "$stamp" 0 |
         envelope $org $att "[unsigned] Lunch" "$date" "unsigned-$i@example.com" | emit unsigned ;;
    3) boundary="beside-$i"
       { printf 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="%s"\r\n\r\n--%s\r\n' "$boundary" "$boundary"
         printf 'Content-Type: text/plain; charset=UTF-8\r\n\r\nPlease see the invitation.\r\n' | sign rsa2048/organizer
         printf '\r\n--%s\r\n' "$boundary"
         calendar_part REQUEST "beside-$i@example.com" $org $att NEEDS-ACTION "$stamp" 0
         printf '\r\n--%s--\r\n' "$boundary"
       } | envelope $org $att "[beside] Offsite" "$date" "beside-$i@example.com" | emit beside ;;
    4) calendar_part REQUEST "$uid" $org $att NEEDS-ACTION "$stamp" 0 | sign rsa2048/organizer |
         sed 's/DTSTART:20260710T090000Z/DTSTART:20260710T060000Z/' |
         envelope $org $att "[tampered] Quarterly planning $i" "$date" "tampered-$i@example.com" | emit tampered ;;
    5) calendar_part REQUEST "revoked-$i@example.com" $org $att NEEDS-ACTION "$stamp" 0 |
         sign special/revoked |
         envelope $org $att "[revoked] Workshop" "$date" "revoked-$i@example.com" | emit revoked ;;
  esac
done

# The last few messages go to a Maildir, the rest to an mbox.
rm -rf "$here/archive" "$here/inbox.mbox"
mkdir -p "$here/archive/cur" "$here/archive/new" "$here/archive/tmp"
touch "$here/archive/tmp/.keep"
files=("$messages"/*.eml)
split=$(( ${#files[@]} - 6 ))
for file in "${files[@]:0:$split}"; do
  printf 'From sample@imipsec.invalid Mon Jun  1 00:00:00 2026\n'
  # mboxrd quoting: a body line starting with (>*)From gains one more >.
  sed 's/^\(>*From \)/>\1/' "$file"
  printf '\n'
done > "$here/inbox.mbox"
n=0
for file in "${files[@]:$split}"; do
  n=$((n + 1))
  if [ $((n % 2)) -eq 0 ]; then dir=new; else dir=cur; fi
  cp "$file" "$here/archive/$dir/17800000$n.M$n.sample:2,$(basename "$file" .eml)"
done
echo "wrote $split messages to inbox.mbox and $((${#files[@]} - split)) to archive/"
