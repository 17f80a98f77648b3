#!/bin/sh
# Build an S/MIME trust-anchor bundle (PEM) from Mozilla's root store as Debian ships it: the
# NSS builtins module (libnssckbi.so, package libnss3) carries Mozilla's per-purpose trust
# bits, and only roots whose S/MIME ("email") bit is set are written.
#
#   contrib/nss-email-anchors.sh [OUTPUT.pem]        (default: email-anchors.pem)
#
# Needs certutil and modutil (apt-get install libnss3-tools). Set NSSCKBI to the module's path
# if it is not in a standard place.
#
# Do NOT use Debian's system store (/etc/ssl/certs, the ca-certificates package) as S/MIME
# anchors: it holds Mozilla's roots trusted for TLS server authentication only, including
# many that Mozilla does not trust for email, and leaves out the roots trusted for email only.
#
# With NSS 3.87 (Debian 12) this writes 108 roots, 19 of them trusted for email only.
set -eu

out=${1:-email-anchors.pem}

for tool in certutil modutil; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "nss-email-anchors: $tool not found (apt-get install libnss3-tools)" >&2
    exit 1
  fi
done

lib=${NSSCKBI:-}
if [ -z "$lib" ]; then
  for candidate in \
    "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || uname -m)-linux-gnu/libnssckbi.so" \
    /usr/lib/*/libnssckbi.so /usr/lib/*/nss/libnssckbi.so /usr/lib64/libnssckbi.so \
    /usr/lib/libnssckbi.so; do
    if [ -f "$candidate" ]; then
      lib=$candidate
      break
    fi
  done
fi
if [ -z "$lib" ] || [ ! -f "$lib" ]; then
  echo "nss-email-anchors: libnssckbi.so not found (apt-get install libnss3, or set NSSCKBI)" >&2
  exit 1
fi

db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT INT TERM
certutil -N -d "sql:$db" --empty-password
modutil -dbdir "sql:$db" -add "Builtin Roots" -libfile "$lib" -force </dev/null >/dev/null

# certutil -L lines: "Builtin Object Token:<nickname>   <SSL>,<S/MIME>,<JAR/XPI>". The trust
# flags are the last field; "C" in the second one is "trusted CA for email".
certutil -L -d "sql:$db" -h "Builtin Object Token" | awk '
  /^Builtin Object Token:/ {
    flags = $NF
    name = $0
    sub(/[ \t]+$/, "", name)
    name = substr(name, 1, length(name) - length(flags))
    sub(/[ \t]+$/, "", name)
    sub(/^Builtin Object Token:/, "", name)
    n = split(flags, f, ",")
    email = (n >= 2 && f[2] ~ /C/) ? 1 : 0
    tls = (f[1] ~ /C/) ? 1 : 0
    print email "\t" tls "\t" name
  }' >"$db/trust"

# A nickname shared by certificates of different email trust cannot be exported safely by
# name: refuse rather than write a distrusted root.
conflicts=$(awk -F '\t' '{ seen[$3] = seen[$3] $1 } END { for (n in seen) if (seen[n] ~ /0/ && seen[n] ~ /1/) print n }' "$db/trust")
if [ -n "$conflicts" ]; then
  echo "nss-email-anchors: nicknames with mixed email trust, refusing: $conflicts" >&2
  exit 1
fi

: >"$db/bundle.pem"
awk -F '\t' '$1 == 1 { print $3 }' "$db/trust" | sort -u | while IFS= read -r name; do
  certutil -L -d "sql:$db" -n "Builtin Object Token:$name" -a >>"$db/bundle.pem"
done

total=$(grep -c -- '-----BEGIN CERTIFICATE-----' "$db/bundle.pem" || true)
email_only=$(awk -F '\t' '$1 == 1 && $2 == 0' "$db/trust" | wc -l | tr -d ' ')
if [ "$total" -eq 0 ]; then
  echo "nss-email-anchors: no email-trusted root found in $lib" >&2
  exit 1
fi
mv "$db/bundle.pem" "$out"
echo "nss-email-anchors: wrote $total email-trusted roots ($email_only email-only) from $lib to $out"
