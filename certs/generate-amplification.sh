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
[ee_ec]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature, nonRepudiation
extendedKeyUsage       = emailProtection
subjectAltName         = email:organizer@example.com
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[ca_ext]
basicConstraints       = critical, CA:true
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[root_ext]
basicConstraints       = critical, CA:true
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
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

# A P-384 PKI as government and enterprise CAs run them (issue #11, real-PKI budget): its own
# P-384 root, two P-384 intermediates, a signer under each. The defaults of `Limits` must
# accept a P-384 signer under two P-384 intermediates; an RSA-4096 chain with two
# intermediates under the test root, and the RSA-8192 key above certified by the first of
# them, likewise. Serials from 0x4100.
# issue NAME SERIAL CN ISSUER EXTENSIONS KEYFILE [KEEP]: certificate NAME.cert.pem for
# KEYFILE (generated unless KEEP) by ISSUER (a NAME here, or "root" for certs/root).
want() { [ ${#ONLY[@]} -eq 0 ] || [[ " ${ONLY[*]} " =~ " $1 " ]]; }
issue() {
    local name=$1 serial=$2 cn=$3 issuer=$4 ext=$5 key=$6
    echo "$serial" >"$WORK/ca/serial"
    local cacert=amplification/$issuer.cert.pem cakey=amplification/$issuer.key.pem
    if [ "$issuer" = root ]; then cacert=root.cert.pem cakey=root.key.pem; fi
    openssl req -new -key "$key" -subj "/O=imipsec test PKI/CN=$cn" -out "$WORK/req.csr"
    openssl ca -batch -notext -config "$OPENSSL_CONF" -cert "$cacert" -keyfile "$cakey" \
        -extensions "$ext" -startdate "$START" -enddate "$END" -in "$WORK/req.csr" \
        -out "amplification/$name.cert.pem" 2>/dev/null
}
if want p384; then
    for name in p384-root p384-ca1 p384-ca2 p384-signer1 p384-signer2; do
        openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-384 \
            -pkeyopt ec_param_enc:named_curve -out "amplification/$name.key.pem"
    done
    echo 4100 >"$WORK/ca/serial"
    openssl req -new -key amplification/p384-root.key.pem \
        -subj "/O=imipsec test PKI/CN=P-384 Root CA" -out "$WORK/req.csr"
    openssl ca -batch -notext -selfsign -config "$OPENSSL_CONF" \
        -keyfile amplification/p384-root.key.pem -extensions root_ext -startdate "$START" \
        -enddate "$END" -in "$WORK/req.csr" -out amplification/p384-root.cert.pem 2>/dev/null
    issue p384-ca1 4101 "P-384 Intermediate CA 1" p384-root ca_ext amplification/p384-ca1.key.pem
    issue p384-ca2 4102 "P-384 Intermediate CA 2" p384-ca1 ca_ext amplification/p384-ca2.key.pem
    issue p384-signer1 4103 "Organizer (P-384, one intermediate)" p384-ca1 ee_ec \
        amplification/p384-signer1.key.pem
    issue p384-signer2 4104 "Organizer (P-384, two intermediates)" p384-ca2 ee_ec \
        amplification/p384-signer2.key.pem
    cat amplification/p384-signer1.cert.pem amplification/p384-ca1.cert.pem \
        >amplification/p384-signer1.chain.pem
    cat amplification/p384-signer2.cert.pem amplification/p384-ca2.cert.pem \
        amplification/p384-ca1.cert.pem >amplification/p384-signer2.chain.pem
    for n in 1 2; do
        openssl verify -purpose smimesign -attime "$EVAL_EPOCH" \
            -CAfile amplification/p384-root.cert.pem \
            -untrusted "amplification/p384-signer$n.chain.pem" \
            "amplification/p384-signer$n.cert.pem" >/dev/null
    done
fi
if want rsa4096; then
    for name in rsa4096-ca1 rsa4096-ca2 rsa4096-signer2; do
        openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:4096 \
            -out "amplification/$name.key.pem"
    done
    issue rsa4096-ca1 4110 "RSA-4096 Intermediate CA 1" root ca_ext \
        amplification/rsa4096-ca1.key.pem
    issue rsa4096-ca2 4111 "RSA-4096 Intermediate CA 2" rsa4096-ca1 ca_ext \
        amplification/rsa4096-ca2.key.pem
    issue rsa4096-signer2 4112 "Organizer (RSA-4096, two intermediates)" rsa4096-ca2 ee_rsa \
        amplification/rsa4096-signer2.key.pem
    cat amplification/rsa4096-signer2.cert.pem amplification/rsa4096-ca2.cert.pem \
        amplification/rsa4096-ca1.cert.pem >amplification/rsa4096-signer2.chain.pem
    # The RSA-8192 key of rsa8192 above, certified by the RSA-4096 intermediate.
    issue rsa8192-under4096 4113 "Organizer (RSA-8192 under RSA-4096)" rsa4096-ca1 ee_rsa \
        amplification/rsa8192.key.pem
    cat amplification/rsa8192-under4096.cert.pem amplification/rsa4096-ca1.cert.pem \
        >amplification/rsa8192-under4096.chain.pem
    for name in rsa4096-signer2 rsa8192-under4096; do
        openssl verify -purpose smimesign -attime "$EVAL_EPOCH" -CAfile root.cert.pem \
            -untrusted "amplification/$name.chain.pem" "amplification/$name.cert.pem" >/dev/null
    done
fi

echo "amplification identities issued in $(pwd)/amplification"
