#!/usr/bin/env bash
# The OpenPGP key of the fuzz targets (openpgp, mime_walk): ed25519 signing primary key and a
# cv25519 encryption subkey for fuzz@example.com, made 2026-01-01 by GnuPG 2.2, no password.
# Test material only: the secret key is public. Rerun to replace it.
set -euo pipefail
cd "$(dirname "$0")"
home="$(mktemp -d /tmp/gpgfuzzXXXX)"
trap 'gpgconf --homedir "$home" --kill gpg-agent; rm -rf "$home"' EXIT
gpg=(gpg --homedir "$home" --batch --pinentry-mode loopback --passphrase '' --faked-system-time '20260101T000000!')
"${gpg[@]}" --quick-gen-key 'Fuzz <fuzz@example.com>' ed25519 sign,cert never
fpr="$("${gpg[@]}" --with-colons --list-keys fuzz@example.com | sed -n 's/^fpr:*\([0-9A-F]*\):*$/\1/p' | head -n 1)"
"${gpg[@]}" --quick-add-key "$fpr" cv25519 encr never
"${gpg[@]}" --armor --export fuzz@example.com >openpgp.cert
"${gpg[@]}" --armor --export-secret-keys fuzz@example.com >openpgp.key
