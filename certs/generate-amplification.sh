#!/usr/bin/env bash
# Issues the key-size test identities of certs/amplification/ (issue #11 item 7: maximum RSA
# modulus and public exponent) from the existing test intermediate CA. Run by generate.sh at
# its end (after a full regeneration the intermediate is new, so these must be reissued), or
# alone to reissue these (`generate-amplification.sh NAME...` reissues only the named ones).
# Needs bash and the OpenSSL 3.0+ CLI; RSA-8192 and RSA-8194 key generation takes minutes.
#
# Every identity claims organizer@example.com with the extensions of the regular RSA
# identities (certs/README.md), each with its own fixed serial from 0x4000 (the main script
# uses 0x1000-0x3fff), so reissuing one never reuses another's issuer and serial.
set -euo pipefail

cd "$(dirname "$0")"
START=20250101000000Z
END=20450101000000Z
EVAL_EPOCH=1780272000 # 2026-06-01T00:00:00Z
PASSWORD=imipsec

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/ca/new"
: >"$WORK/ca/index.txt"
cat >"$WORK/ca.cnf" <<CNF
[ca]
default_ca = ca_default
[ca_default]
dir              = $WORK/ca
database         = \$dir/index.txt
serial           = \$dir/serial
new_certs_dir    = \$dir/new
default_md       = sha256
policy           = policy_anything
unique_subject   = no
copy_extensions  = none
[policy_anything]
organizationName = optional
commonName       = supplied
[req]
distinguished_name = req_dn
prompt             = no
[req_dn]
CN = placeholder
[ee_rsa]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature, nonRepudiation, keyEncipherment
extendedKeyUsage       = emailProtection
subjectAltName         = email:organizer@example.com
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
CNF
export OPENSSL_CONF="$WORK/ca.cnf"

mkdir -p amplification
ONLY=("$@")

# identity NAME SERIAL CN [genpkey -pkeyopt ...]
identity() {
    local name=$1 serial=$2 cn=$3
    shift 3
    if [ ${#ONLY[@]} -gt 0 ] && [[ ! " ${ONLY[*]} " =~ " $name " ]]; then return; fi
    echo "$serial" >"$WORK/ca/serial"
    local key=amplification/$name.key.pem cert=amplification/$name.cert.pem
    local opts=()
    for opt in "$@"; do opts+=(-pkeyopt "$opt"); done
    openssl genpkey -quiet -algorithm RSA "${opts[@]}" -out "$key"
    openssl req -new -key "$key" -subj "/O=imipsec test PKI/CN=$cn" -out "$WORK/req.csr"
    openssl ca -batch -notext -config "$OPENSSL_CONF" -cert intermediate.cert.pem \
        -keyfile intermediate.key.pem -extensions ee_rsa -startdate "$START" -enddate "$END" \
        -in "$WORK/req.csr" -out "$cert" 2>/dev/null
    cat "$cert" intermediate.cert.pem >"amplification/$name.chain.pem"
    openssl pkcs12 -export -inkey "$key" -in "$cert" -certfile intermediate.cert.pem \
        -name "$name" -passout "pass:$PASSWORD" -out "amplification/$name.p12"
    openssl verify -purpose smimesign -attime "$EVAL_EPOCH" -CAfile root.cert.pem \
        -untrusted intermediate.cert.pem "$cert" >/dev/null
}

# The largest accepted exponent, 2^32 - 1 (32 bits), and the next valid one, 2^32 + 1.
identity exp32 4000 "Organizer (RSA-2048 exponent 2^32-1)" rsa_keygen_bits:2048 \
    rsa_keygen_pubexp:4294967295
identity exp33 4001 "Organizer (RSA-2048 exponent 2^32 plus 1)" rsa_keygen_bits:2048 \
    rsa_keygen_pubexp:4294967297
# The issue's key: RSA-3072 (OpenSSL allows any exponent up to 3072 bits) with a random
# 3,070-bit odd exponent.
hex=$(openssl rand -hex 384)
identity bigexp 4002 "Organizer (RSA-3072 3070-bit exponent)" rsa_keygen_bits:3072 \
    "rsa_keygen_pubexp:0x3${hex:1:766}f"
# The largest accepted modulus, and the next size OpenSSL generates (it rounds an odd size
# down; the unit tests of crates/smime/src/cms.rs cover 8193 bits with a public key alone).
identity rsa8192 4003 "Organizer (RSA-8192)" rsa_keygen_bits:8192
identity rsa8194 4004 "Organizer (RSA-8194)" rsa_keygen_bits:8194

echo "amplification identities issued in $(pwd)/amplification"
