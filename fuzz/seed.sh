#!/usr/bin/env bash
# Seed corpora for the fuzz targets, written into the ignored fuzz/corpus/TARGET/ (never
# checked in). Sources: testdata/seed/*.ics and messages signed and encrypted here with the
# test PKI in certs/ by the openssl CLI; plus, when ../shared/corpora exists beside the
# repository, a copy of its .eml files at run time (corpus data stays there).
# Needs bash, openssl and perl (perl-base, to pack milter packets).
set -euo pipefail
cd "$(dirname "$0")"
repo="$(cd .. && pwd)"
certs="$repo/certs"
out="$PWD/corpus"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in mime_walk cms_verify cms_structure openpgp itip itip_full_text pipeline sign_verify_roundtrip gate_mime gate_protocols; do
  mkdir -p "$out/$target"
done

headers=$'From: organizer@example.com\r\nTo: attendee@example.com\r\nSubject: Invitation\r\nDate: Mon, 01 Jun 2026 00:00:00 +0000\r\nMessage-ID: <seed@example.com>\r\n'

# Writes every seed derived from one calendar file.
seed_calendar() {
  local ics="$1" name="$2" method
  method="$(sed -n 's/^METHOD:\([A-Za-z]*\).*/\1/p' "$ics" | head -n 1 | tr -d '\r')"
  method="${method:-REQUEST}"
  # itip: selector byte 0x01 (method REQUEST, charset) and 0x00 (no method parameter).
  { printf '\001'; cat "$ics"; } >"$out/itip/seed-$name-1"
  { printf '\000'; cat "$ics"; } >"$out/itip/seed-$name-0"
  # itip_full_text: byte 0 chooses the method parameter (0 REQUEST, 1 REPLY, 2 CANCEL,
  # 3 PUBLISH, 4 COUNTER, 5 REFRESH, 6 DECLINECOUNTER, 7 ADD).
  for selector in 0 1 2 3 4 5 6 7; do
    { printf "\\00$selector"; cat "$ics"; } >"$out/itip_full_text/seed-$name-$selector"
  done

  # The calendar as a MIME entity with CRLF line ends.
  { printf 'Content-Type: text/calendar; method=%s; charset=utf-8\r\n' "$method"
    printf 'Content-Transfer-Encoding: 7bit\r\n\r\n'
    sed 's/\r$//; s/$/\r/' "$ics"; } >"$work/entity"
  { printf '%s' "$headers"; printf 'MIME-Version: 1.0\r\n'; cat "$work/entity"; } >"$work/plain.eml"

  local key="$certs/rsa2048/organizer"
  # Detached (multipart/signed), opaque, and detached with P-256.
  openssl cms -sign -binary -in "$work/entity" -signer "$key.cert.pem" -inkey "$key.key.pem" \
    -certfile "$certs/intermediate.cert.pem" -md sha256 -outform SMIME >"$work/detached.mime"
  openssl cms -sign -binary -nodetach -in "$work/entity" -signer "$key.cert.pem" \
    -inkey "$key.key.pem" -certfile "$certs/intermediate.cert.pem" -outform SMIME >"$work/opaque.mime"
  openssl cms -sign -binary -in "$work/entity" -signer "$certs/p256/organizer.cert.pem" \
    -inkey "$certs/p256/organizer.key.pem" -certfile "$certs/intermediate.cert.pem" \
    -outform SMIME >"$work/p256.mime"
  # Encrypted to the attendee (CBC and GCM), signed inside.
  openssl cms -encrypt -binary -aes-256-cbc -in "$work/detached.mime" \
    "$certs/rsa2048/attendee.cert.pem" >"$work/cbc.mime"
  openssl cms -encrypt -binary -aes-256-gcm -in "$work/opaque.mime" \
    "$certs/rsa2048/attendee.cert.pem" >"$work/gcm.mime" 2>/dev/null || true
  for kind in detached opaque p256 cbc gcm; do
    [ -s "$work/$kind.mime" ] || continue
    # openssl writes LF line ends in the headers it adds: make the whole message CRLF.
    { printf '%s' "$headers"; sed 's/\r$//; s/$/\r/' "$work/$kind.mime"; } >"$work/$kind.eml"
    for target in mime_walk pipeline gate_mime; do
      cp "$work/$kind.eml" "$out/$target/seed-$name-$kind"
    done
  done
  cp "$work/plain.eml" "$out/pipeline/seed-$name-plain"

  # cms_verify: attached (mode 0) and detached (mode 1, u16 length, content, DER).
  openssl cms -sign -binary -nodetach -in "$work/entity" -signer "$key.cert.pem" \
    -inkey "$key.key.pem" -certfile "$certs/intermediate.cert.pem" -outform DER >"$work/attached.der"
  openssl cms -sign -binary -in "$work/entity" -signer "$key.cert.pem" -inkey "$key.key.pem" \
    -certfile "$certs/intermediate.cert.pem" -outform DER >"$work/detached.der"
  { printf '\000'; cat "$work/attached.der"; } >"$out/cms_verify/seed-$name-attached"
  perl -e 'local $/; open my $f, "<", $ARGV[0] or die; my $c = <$f>; print "\x01", pack("n", length $c), $c' \
    "$work/entity" >"$out/cms_verify/seed-$name-detached"
  cat "$work/detached.der" >>"$out/cms_verify/seed-$name-detached"

  # gate_protocols: an LMTP session (selector 0x01) and a milter session (0x00).
  { printf '\001LHLO mta.example.net\r\nMAIL FROM:<organizer@example.com>\r\n'
    printf 'RCPT TO:<attendee@example.com>\r\nRCPT TO:<other@example.org>\r\nDATA\r\n'
    sed 's/^\./../' "$work/detached.eml"; printf '.\r\nQUIT\r\n'; } >"$out/gate_protocols/seed-$name-lmtp"
  perl -e '
    local $/; open my $f, "<", $ARGV[0] or die; my $m = <$f>;
    my ($head, $body) = split /\r\n\r\n/, $m, 2;
    sub packet { my ($c, $d) = @_; pack("N", 1 + length $d) . $c . $d }
    print "\x00";
    print packet("O", pack("NNN", 6, 0x1ff, 0));
    print packet("M", "<organizer\@example.com>\0");
    print packet("R", "<attendee\@example.com>\0");
    for my $line (split /\r\n(?![ \t])/, $head) {
      my ($n, $v) = split /:/, $line, 2; print packet("L", "$n\0$v\0");
    }
    print packet("N", "");
    print packet("B", $body);
    print packet("E", "");
    print packet("Q", "");
  ' "$work/detached.eml" >"$out/gate_protocols/seed-$name-milter"
}

for ics in "$repo"/testdata/seed/*.ics; do
  seed_calendar "$ics" "$(basename "$ics" .ics)"
done

# itip, the VTIMEZONE evaluator: Exchange's REQUEST (a Windows zone from 1601, as Outlook
# writes it) and the same as the update of one instance, RECURRENCE-ID relative to that zone.
exchange="$repo/testdata/clients/exchange-2010-request.ics"
if [ -f "$exchange" ]; then
  { printf '\001'; cat "$exchange"; } >"$out/itip/seed-exchange-zone"
  { printf '\001'; sed 's/^SUMMARY;LANGUAGE=fr-FR:Pommes/&\nRECURRENCE-ID;TZID=Romance Standard Time:20150227T093000/' "$exchange"; } \
    >"$out/itip/seed-exchange-zoned-exception"
fi

# gate_protocols, SMTP smuggling shapes (issue #11 item 9): `<LF>.<LF>` inside DATA followed
# by a second transaction, a bare CR in a command and in DATA, a bare-LF command.
printf '\001LHLO mta\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\nContent-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\n.\nMAIL FROM:<m@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nX: y\r\n\r\nsmuggled\r\n.\r\nQUIT\r\n' \
  >"$out/gate_protocols/seed-smuggle-lf-dot-lf"
printf '\001LHLO mta\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\rDATA\r\nQUIT\r\n' \
  >"$out/gate_protocols/seed-bare-cr-command"
printf '\001LHLO mta\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\n\r\nbare\rcr\r\n.\r\nNOOP\nQUIT\r\n' \
  >"$out/gate_protocols/seed-bare-cr-data"

# sign_verify_roundtrip: position, mask, key selector, text.
printf '\000\000\000\000\001\000Planning meeting' >"$out/sign_verify_roundtrip/seed-rsa"
printf '\000\000\001\000\200\001Budget review (Q3)' >"$out/sign_verify_roundtrip/seed-p256"

# openpgp and mime_walk: PGP/MIME made by GnuPG with the fuzz key (keys/generate.sh).
pgphome="$(mktemp -d /tmp/gpgseedXXXX)"
gpg=(gpg --homedir "$pgphome" --batch --yes --pinentry-mode loopback --passphrase '' --trust-model always --faked-system-time '20260531T235000!')
"${gpg[@]}" --import keys/openpgp.key 2>/dev/null
entity=$'Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n'
printf '%s' "$entity" >"$work/pgp-entity"
"${gpg[@]}" --armor --detach-sign -o "$work/pgp-sig" "$work/pgp-entity"
"${gpg[@]}" --armor -r fuzz@example.com --sign --encrypt -o "$work/pgp-enc" "$work/pgp-entity"
len=$(wc -c <"$work/pgp-entity")
{ printf "\\000\\$(printf '%03o' $((len / 256)))\\$(printf '%03o' $((len % 256)))"; cat "$work/pgp-entity" "$work/pgp-sig"; } >"$out/openpgp/seed-detached"
{ printf '\001'; cat "$work/pgp-enc"; } >"$out/openpgp/seed-encrypted"
{ printf '\002'; cat keys/openpgp.cert; } >"$out/openpgp/seed-certificate"
printf '\003Planning meeting' >"$out/openpgp/seed-roundtrip"
{ printf '%s' "$headers"; printf 'MIME-Version: 1.0\r\nContent-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary=s\r\n\r\n--s\r\n'
  cat "$work/pgp-entity"; printf '\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\n'
  sed 's/$/\r/' "$work/pgp-sig"; printf '\r\n--s--\r\n'; } >"$out/mime_walk/seed-pgp-signed"
{ printf '%s' "$headers"; printf 'MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=e\r\n\r\n--e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--e\r\nContent-Type: application/octet-stream\r\n\r\n'
  sed 's/$/\r/' "$work/pgp-enc"; printf '\r\n--e--\r\n'; } >"$out/mime_walk/seed-pgp-encrypted"
gpgconf --homedir "$pgphome" --kill gpg-agent || true
rm -rf "$pgphome"

shared="$repo/../shared/corpora"
if [ -d "$shared" ]; then
  count=0
  while IFS= read -r -d '' eml; do
    count=$((count + 1))
    for target in mime_walk pipeline gate_mime; do
      cp "$eml" "$out/$target/shared-$count"
    done
  done < <(find "$shared" -name '*.eml' -size -256k -print0 | sort -z | head -z -n 400)
  while IFS= read -r -d '' ics; do
    count=$((count + 1))
    { printf '\001'; cat "$ics"; } >"$out/itip/shared-$count"
    { printf '\000'; cat "$ics"; } >"$out/itip_full_text/shared-$count"
  done < <(find "$shared" -name '*.ics' -size -256k -print0 | sort -z | head -z -n 400)
  echo "seed: copied $count files from $shared" >&2
fi
echo "seed: $(find "$out" -type f | wc -l) seed inputs in $out" >&2
