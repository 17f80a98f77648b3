#!/usr/bin/env bash
# Regenerates the imipsec test PKI in the directory holding this script.
#
# Requirements: bash and the OpenSSL 3.0 (or later) command line tool.
# Usage:        certs/generate.sh          (from anywhere; rewrites certs/ in place)
#
# The layout, names, subjects, serial numbers and validity periods are fixed, so
# tests that pin an evaluation time (2026-06-01T00:00:00Z) never rot. Only the key
# material and signatures change from one run to the next. Every file is described
# in certs/README.md. These keys are TEST keys: never trust this PKI anywhere.
set -euo pipefail

cd "$(dirname "$0")"
OUT=$(pwd)

# Validity used everywhere unless a special certificate says otherwise.
START=20250101000000Z
END=20450101000000Z
# The evaluation time the tests use, as seconds since the epoch for `openssl verify -attime`.
EVAL_EPOCH=1780272000 # 2026-06-01T00:00:00Z
PASSWORD=imipsec

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

rm -rf rsa2048 p256 special
rm -f root.* intermediate.* untrusted-root.*
mkdir -p rsa2048 p256 special

# One minimal `openssl ca` configuration. `openssl ca` is used (rather than
# `x509 -req`) because OpenSSL 3.0 can only set explicit notBefore/notAfter
# dates there (-startdate/-enddate). Extension sections are picked per call.
cat >"$WORK/ca.cnf" <<'EOF'
[ca]
default_ca = ca_default

[ca_default]
dir              = $ENV::CA_DIR
database         = $dir/index.txt
serial           = $dir/serial
crlnumber        = $dir/crlnumber
new_certs_dir    = $dir/new
default_md       = sha256
policy           = policy_anything
unique_subject   = no
email_in_dn      = yes
copy_extensions  = none
default_crl_days = 7300

[policy_anything]
organizationName       = optional
organizationalUnitName = optional
commonName             = supplied
emailAddress           = optional

[req]
distinguished_name = req_dn
prompt             = no
[req_dn]
CN = placeholder

[v3_root]
basicConstraints       = critical, CA:true
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[v3_intermediate]
basicConstraints       = critical, CA:true, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ee_rsa]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature, nonRepudiation, keyEncipherment
extendedKeyUsage       = emailProtection
subjectAltName         = email:$ENV::EMAIL
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ee_ec]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature, keyAgreement
extendedKeyUsage       = emailProtection
subjectAltName         = email:$ENV::EMAIL
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ee_wrong_eku]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature, nonRepudiation, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = email:$ENV::EMAIL
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ee_no_san]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature, nonRepudiation, keyEncipherment
extendedKeyUsage       = emailProtection
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[crl_ext]
authorityKeyIdentifier = keyid:always
EOF
export OPENSSL_CONF="$WORK/ca.cnf"
# The configuration references these; every call that matters overrides them.
export CA_DIR="$WORK/root" EMAIL=unused@invalid

# new_ca NAME FIRST_SERIAL: an empty CA database under $WORK/NAME.
new_ca() {
    mkdir -p "$WORK/$1/new"
    : >"$WORK/$1/index.txt"
    echo "$2" >"$WORK/$1/serial"
    echo 1000 >"$WORK/$1/crlnumber"
}

genkey() { # genkey ALG OUT
    case "$1" in
        rsa2048) openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$2" ;;
        rsa1024) openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$2" ;;
        p256) openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
            -pkeyopt ec_param_enc:named_curve -out "$2" ;;
        *) echo "unknown key type $1" >&2; exit 1 ;;
    esac
}

# issue CA_NAME CA_CERT CA_KEY SUBJECT EXT KEY OUT_CERT [START END]
issue() {
    local csr="$WORK/req.csr"
    openssl req -new -key "$6" -subj "$4" -out "$csr"
    CA_DIR="$WORK/$1" openssl ca -batch -notext -config "$OPENSSL_CONF" \
        -cert "$2" -keyfile "$3" -extensions "$5" \
        -startdate "${8:-$START}" -enddate "${9:-$END}" \
        -in "$csr" -out "$7" 2>/dev/null
}

# self_signed CA_NAME SUBJECT KEY OUT_CERT
self_signed() {
    local csr="$WORK/req.csr"
    openssl req -new -key "$3" -subj "$2" -out "$csr"
    CA_DIR="$WORK/$1" openssl ca -batch -notext -selfsign -config "$OPENSSL_CONF" \
        -keyfile "$3" -extensions v3_root -startdate "$START" -enddate "$END" \
        -in "$csr" -out "$4" 2>/dev/null
}

ORG="/O=imipsec test PKI"

# --- Trusted hierarchy: root -> intermediate -> end entities --------------------------------
new_ca root 1000
genkey rsa2048 root.key.pem
self_signed root "$ORG/CN=imipsec Test Root CA" root.key.pem root.cert.pem

genkey rsa2048 intermediate.key.pem
issue root root.cert.pem root.key.pem "$ORG/CN=imipsec Test Intermediate CA" v3_intermediate \
    intermediate.key.pem intermediate.cert.pem

new_ca intermediate 2000

# end_entity DIR ROLE EMAIL COMMON_NAME KEYTYPE EXT [START END]
end_entity() {
    local dir=$1 role=$2 email=$3 cn=$4 keytype=$5 ext=$6
    local subject="$ORG/CN=$cn"
    if [ "$ext" = ee_no_san ]; then subject="$subject/emailAddress=$email"; fi
    genkey "$keytype" "$dir/$role.key.pem"
    EMAIL="$email" issue intermediate intermediate.cert.pem intermediate.key.pem \
        "$subject" "$ext" "$dir/$role.key.pem" "$dir/$role.cert.pem" "${7:-$START}" "${8:-$END}"
    cat "$dir/$role.cert.pem" intermediate.cert.pem >"$dir/$role.chain.pem"
    p12 "$dir" "$role" intermediate.cert.pem
}

# p12 DIR ROLE EXTRA_CERTS: PKCS#12 with key, certificate and the chain, password $PASSWORD.
p12() {
    openssl pkcs12 -export -inkey "$1/$2.key.pem" -in "$1/$2.cert.pem" -certfile "$3" \
        -name "$2" -passout "pass:$PASSWORD" -out "$1/$2.p12"
}

for alg in rsa2048 p256; do
    if [ $alg = rsa2048 ]; then ext=ee_rsa; else ext=ee_ec; fi
    end_entity $alg organizer organizer@example.com Organizer $alg $ext
    end_entity $alg attendee attendee@example.com Attendee $alg $ext
    end_entity $alg delegate delegate@example.com Delegate $alg $ext
    end_entity $alg stranger mallory@example.net Mallory $alg $ext
done

# --- Special certificates: all claim organizer@example.com, so a test can swap one in for ---
# --- the real organizer and expect exactly one failure reason.                            ---
O=organizer@example.com
end_entity special expired $O "Organizer (expired)" rsa2048 ee_rsa 20230101000000Z 20240101000000Z
end_entity special wrong-eku $O "Organizer (wrong EKU)" rsa2048 ee_wrong_eku
end_entity special subject-email-only $O "Organizer (subject email only)" rsa2048 ee_no_san
end_entity special revoked $O "Organizer (revoked)" rsa2048 ee_rsa
end_entity special weak-rsa1024 $O "Organizer (RSA-1024)" rsa1024 ee_rsa

# Revoke `revoked` with a fixed revocation date (2025-06-01) so the CRL is reproducible
# in content, then issue the intermediate's CRL with fixed lastUpdate/nextUpdate.
CA_DIR="$WORK/intermediate" openssl ca -batch -config "$OPENSSL_CONF" \
    -cert intermediate.cert.pem -keyfile intermediate.key.pem \
    -revoke special/revoked.cert.pem -crl_reason keyCompromise 2>/dev/null
sed -i -E 's/^R\t([0-9Z]+)\t[0-9]+Z,/R\t\1\t250601000000Z,/' "$WORK/intermediate/index.txt"
CA_DIR="$WORK/intermediate" openssl ca -batch -gencrl -config "$OPENSSL_CONF" \
    -cert intermediate.cert.pem -keyfile intermediate.key.pem -crlexts crl_ext \
    -crl_lastupdate "$START" -crl_nextupdate "$END" -out intermediate.crl.pem 2>/dev/null

# --- Untrusted hierarchy: a separate root issuing an organizer look-alike directly ----------
new_ca untrusted 3000
genkey rsa2048 untrusted-root.key.pem
self_signed untrusted "/O=Not the imipsec test PKI/CN=Untrusted Root CA" \
    untrusted-root.key.pem untrusted-root.cert.pem
genkey rsa2048 special/untrusted.key.pem
EMAIL=$O issue untrusted untrusted-root.cert.pem untrusted-root.key.pem \
    "/O=Not the imipsec test PKI/CN=Organizer (untrusted root)" ee_rsa \
    special/untrusted.key.pem special/untrusted.cert.pem
cat special/untrusted.cert.pem untrusted-root.cert.pem >special/untrusted.chain.pem
p12 special untrusted untrusted-root.cert.pem

# --- Self-check: every certificate verifies (or fails) as documented -----------------------
check() { # check EXPECT CERT [extra verify args]; EXPECT is `ok` or the expected error text
    local expect=$1 cert=$2
    shift 2
    if openssl verify -purpose smimesign -attime "$EVAL_EPOCH" -CAfile root.cert.pem \
        -untrusted intermediate.cert.pem "$@" "$cert" >"$WORK/verify.out" 2>&1; then
        got=ok
    else
        got=fail
    fi
    if { [ "$expect" = ok ] && [ $got != ok ]; } ||
        { [ "$expect" != ok ] && { [ $got = ok ] || ! grep -qF "$expect" "$WORK/verify.out"; }; }; then
        echo "UNEXPECTED: $cert $* expected '$expect', got:" >&2
        cat "$WORK/verify.out" >&2
        exit 1
    fi
    echo "verify as expected ($expect): $cert $*"
}

for alg in rsa2048 p256; do
    for role in organizer attendee delegate stranger; do
        check ok $alg/$role.cert.pem
        check ok $alg/$role.cert.pem -crl_check -CRLfile intermediate.crl.pem
    done
done
check "certificate has expired" special/expired.cert.pem
check "unsuitable certificate purpose" special/wrong-eku.cert.pem
check ok special/subject-email-only.cert.pem # chain-valid; the missing SAN is the point
check ok special/revoked.cert.pem            # valid without the CRL ...
check "certificate revoked" special/revoked.cert.pem -crl_check -CRLfile intermediate.crl.pem
check "unable to get local issuer certificate" special/untrusted.cert.pem
# RSA-1024 is chain-valid at OpenSSL's default security level 1 and rejected at level 2+.
check ok special/weak-rsa1024.cert.pem
check "EE certificate key too weak" special/weak-rsa1024.cert.pem -auth_level 2

# --- Key-size identities (issue #11 item 7), issued by the new intermediate ----------------
"$OUT/generate-amplification.sh"

echo "test PKI regenerated in $OUT"
