//! Amplification: maximum key sizes and the per-message work budget (issue #11 item 7).
//!
//! Before the fix a message could make imipsec run public-key operations with keys of any
//! size and exponent (OpenSSL accepts an exponent as large as the modulus up to 3072 bits),
//! for every SignerInfo of every signed part, and every signer hashed its whole layer: 85
//! parts signed with RSA-3072 keys with 3,070-bit exponents cost 4 to 8 s of CPU for 2 to 3 MB,
//! 15 nested layers of 8 signers 5 to 6 s. Each test below is the shape of one mechanism,
//! with a control beside it that the same builder is accepted within the limits. The key
//! identities are in `certs/amplification/` (certs/README.md).

use super::*;

/// A whole message: `entity` signed (detached) by the RSA key of `certs/amplification/NAME`,
/// which is certified for the organizer by the test intermediate.
fn signed_by_amplification_key(name: &str) -> Vec<u8> {
    let content = invitation();
    let signer = format!("amplification/{name}");
    let info = signer_info(&signer, &honest_attributes(&content), false);
    let cms = signed_data(None, &[info], &[&signer]);
    hand_signed(&content, &cms)
}

#[test]
fn control_rsa_exponent_of_32_bits_is_accepted() {
    // e = 2^32 - 1, the largest exponent within `Limits::rsa_exponent_bits`.
    assert_accepted(&evaluate(&signed_by_amplification_key("exp32")));
}

/// The next valid exponent past the limit, 2^32 + 1 (33 bits), is refused before any
/// signature or chain operation with the key.
#[test]
fn rsa_exponent_of_33_bits_is_limit_exceeded() {
    assert_rejected(
        &evaluate(&signed_by_amplification_key("exp33")),
        Reason::LimitExceeded,
    );
}

/// The key: RSA-3072 with a 3,070-bit public exponent, certified by a trusted CA, so
/// the signature verifies (180x the work of e = 65537); refused on the exponent instead.
#[test]
fn rsa_key_with_a_3070_bit_exponent_is_limit_exceeded() {
    assert_rejected(
        &evaluate(&signed_by_amplification_key("bigexp")),
        Reason::LimitExceeded,
    );
}

#[test]
fn control_rsa_8192_bit_modulus_is_accepted() {
    assert_accepted(&evaluate(&signed_by_amplification_key("rsa8192")));
}

/// Past `Limits::rsa_modulus_bits` (8192, as webpki): 8194 bits, the next size OpenSSL
/// generates (8193 bits exactly is covered by the unit tests in crates/smime/src/cms/algorithm.rs).
#[test]
fn rsa_8194_bit_modulus_is_limit_exceeded() {
    assert_rejected(
        &evaluate(&signed_by_amplification_key("rsa8194")),
        Reason::LimitExceeded,
    );
}

/// The maxima apply to every certificate the message offers, not only the signer's: OpenSSL's
/// chain validation verifies certificates and CRLs with the keys of the offered certificates
/// too, so an extra certificate with a 3,070-bit exponent beside an honest signer is refused
/// before chain validation starts.
#[test]
fn oversized_key_in_the_certificate_bag_is_limit_exceeded() {
    let content = invitation();
    let info = signer_info("rsa2048/organizer", &honest_attributes(&content), false);
    let control = signed_data(None, std::slice::from_ref(&info), &["rsa2048/organizer"]);
    assert_accepted(&evaluate(&hand_signed(&content, &control)));
    let cms = signed_data(
        None,
        &[info],
        &["rsa2048/organizer", "amplification/bigexp"],
    );
    assert_rejected(
        &evaluate(&hand_signed(&content, &cms)),
        Reason::LimitExceeded,
    );
}

/// A multipart/mixed message of `parts` text parts, then the invitation, each signed
/// (detached) by `signer` with its certificate and the intermediate in the SignedData.
fn many_signed_parts(signer: &str, parts: usize) -> Vec<u8> {
    let sign = |content: &[u8]| {
        let info = signer_info(signer, &honest_attributes(content), false);
        multipart_signed(content, &signed_data(None, &[info], &[signer]))
    };
    let signed_text =
        sign(b"Content-Type: text/plain; charset=us-ascii\r\n\r\nSee the invitation.\r\n");
    let mut body = b"Content-Type: multipart/mixed; boundary=\"parts\"\r\n\r\n".to_vec();
    for _ in 0..parts {
        body.extend_from_slice(b"--parts\r\n");
        body.extend_from_slice(&signed_text);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--parts\r\n");
    body.extend_from_slice(&sign(&invitation()));
    body.extend_from_slice(b"\r\n--parts--\r\n");
    message(ORGANIZER, &body)
}

/// Parts signed with the largest modulus allowed (RSA-8192, weight 16): each layer costs
/// 16 + 3 (the RSA-2048 intermediate's key in its chain validation) = 19 units of
/// `Limits::signature_verifications`; 14 layers = 266, within the default 280.
#[test]
fn control_signed_parts_within_the_verification_budget_are_accepted() {
    assert_accepted(&evaluate(&many_signed_parts("amplification/rsa8192", 13)));
}

/// Issue #11: 85 parts signed with expensive keys. Every layer verifies, but the message as a
/// whole asks for more public-key work than `Limits::signature_verifications`: the 15th layer
/// (285 units) is refused before its operations, and with it the whole message.
#[test]
fn many_signed_parts_exceed_the_verification_budget() {
    for parts in [14, 84] {
        let verdict = evaluate(&many_signed_parts("amplification/rsa8192", parts));
        assert_rejected(&verdict, Reason::LimitExceeded);
        assert!(
            verdict.reasons()[0]
                .detail
                .contains("signature verifications"),
            "{verdict:?}"
        );
    }
}

/// RSA-2048 parts: 4 units and 2 certificates each, so 32 layers (128 units) meet
/// `Limits::certificates_per_message` (64) exactly.
#[test]
fn control_signed_parts_at_the_certificate_budget_are_accepted() {
    assert_accepted(&evaluate(&many_signed_parts("rsa2048/organizer", 31)));
}

/// One more layer: its certificates are refused before they are parsed (parsing a certificate
/// not seen before costs as much as hashing 20 KB, and an attacker's are always new).
#[test]
fn many_signed_parts_exceed_the_certificate_budget() {
    let verdict = evaluate(&many_signed_parts("rsa2048/organizer", 32));
    assert_rejected(&verdict, Reason::LimitExceeded);
    assert!(
        verdict.reasons()[0]
            .detail
            .contains("certificates per message"),
        "{verdict:?}"
    );
}

/// `layers` nested `multipart/signed` layers around the invitation, each with `signers`
/// SignerInfos of the organizer over the whole layer below (its first part). A layer adds
/// only its base64 signature, so the message grows linearly while the bytes to hash grow
/// with the square of the depth. (Opaque layers with `Content-Transfer-Encoding: binary`
/// would do the same, but binary CMS holds bare LFs, which the strict MIME walk refuses in
/// a CRLF message: `attacks::mime`.)
fn nested_signed_layers(layers: usize, signers: usize) -> Vec<u8> {
    let mut content = invitation();
    for layer in 0..layers {
        // Identical SignerInfos are refused as malformed (cms::duplicated_signer_info_is_rejected),
        // so each signer gets its own signingTime, in DER SET OF order.
        let infos: Vec<Vec<u8>> = (0..signers)
            .map(|second| {
                let signing_time = attribute(
                    "1.2.840.113549.1.9.5",
                    &[der(0x17, format!("2605312359{second:02}Z").as_bytes())],
                );
                let mut attributes = honest_attributes(&content);
                attributes.insert(1, signing_time);
                signer_info("rsa2048/organizer", &attributes, false)
            })
            .collect();
        let cms = signed_data(None, &infos, &["rsa2048/organizer"]);
        let boundary = format!("layer-{layer}");
        let mut entity = format!(
            "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n\
             \tmicalg=sha-256; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n"
        )
        .into_bytes();
        entity.extend_from_slice(&content);
        entity.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Type: application/pkcs7-signature; \
                 name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            )
            .as_bytes(),
        );
        entity.extend_from_slice(base64(&cms).as_bytes());
        entity.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        content = entity;
    }
    message(ORGANIZER, &content)
}

/// Four nested layers of eight signers: the signers of a layer share one digest of it (and
/// one chain validation), so this stays within the hash budget, and costs 4 x (8 + 3) = 44
/// units of public-key work.
#[test]
fn control_nested_signed_layers_within_the_hash_budget_are_accepted() {
    assert_accepted(&evaluate(&nested_signed_layers(4, 8)));
}

/// Issue #11: 15 nested layers of 8 signers, each hashing its whole layer (120 passes over
/// the layers before the fix). Now each layer is hashed once, and the 15 passes (about 8x
/// the message) exceed the hash budget (`Limits::hashed_bytes` + 4x the message), which is
/// checked before each pass.
#[test]
fn nested_signed_layers_with_many_signers_exceed_the_hash_budget() {
    let verdict = evaluate(&nested_signed_layers(15, 8));
    assert_rejected(&verdict, Reason::LimitExceeded);
    assert!(
        verdict.reasons()[0].detail.contains("bytes hashed"),
        "{verdict:?}"
    );
}
