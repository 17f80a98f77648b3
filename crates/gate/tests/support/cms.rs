//! A small DER writer to hand-build CMS SignedData (RFC 5652 section 5) with exactly the
//! defect a test needs (the same technique as `crates/pipeline/tests/attacks.rs`). Needs the
//! `openssl` CLI for digests, signatures and certificate DER.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const ID_DATA: &str = "1.2.840.113549.1.7.1";
const ID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const ID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const ID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const ID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

fn certs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../certs")
}

fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl CLI is installed");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

/// A DER SET OF: elements sorted by their encoding (X.690 section 11.6).
fn set(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut sorted = parts.to_vec();
    sorted.sort();
    der(0x31, &sorted.concat())
}

fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').map(|arc| arc.parse().unwrap()).collect();
    let mut content = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        groups.reverse();
        content.extend(groups);
    }
    der(0x06, &content)
}

fn algorithm(dotted: &str) -> Vec<u8> {
    seq(&[oid(dotted), der(0x05, &[])])
}

/// (tag, whole TLV length, content) of the TLV at the start of `bytes`.
fn tlv(bytes: &[u8]) -> (u8, usize, &[u8]) {
    let tag = bytes[0];
    let (header, len) = if bytes[1] < 0x80 {
        (2, usize::from(bytes[1]))
    } else {
        let n = usize::from(bytes[1] & 0x7f);
        let len = bytes[2..2 + n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (2 + n, len)
    };
    (tag, header + len, &bytes[header..header + len])
}

fn children(mut content: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (_, total, _) = tlv(content);
        out.push(&content[..total]);
        content = &content[total..];
    }
    out
}

fn certificate_der(name: &str) -> Vec<u8> {
    let path = certs().join(format!("{name}.cert.pem"));
    openssl(
        &["x509", "-in", &path.to_string_lossy(), "-outform", "DER"],
        b"",
    )
}

/// IssuerAndSerialNumber of a certificate (RFC 5652 section 10.2.4).
fn issuer_and_serial(certificate: &[u8]) -> Vec<u8> {
    let (_, _, cert) = tlv(certificate);
    let (_, _, tbs) = tlv(children(cert)[0]);
    let fields = children(tbs);
    let (serial, issuer) = if fields[0][0] == 0xa0 {
        (fields[1], fields[3])
    } else {
        (fields[0], fields[2])
    };
    seq(&[issuer.to_vec(), serial.to_vec()])
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (index, chunk) in bytes.chunks(3).enumerate() {
        if index > 0 && index % 19 == 0 {
            out.push_str("\r\n");
        }
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out.push_str("\r\n");
    out
}

/// A detached SignedData over `content` by the RSA identity `signer` (e.g.
/// `rsa2048/organizer`) whose messageDigest attribute is the SHA-256 of `content` cut to
/// `digest_len` bytes (32: an honest signature; 31: the length mismatch of issue #11 item 1,
/// which made `openssl::memcmp::eq` panic). The signature over the attributes is valid, so
/// the defect is the digest length alone.
pub fn detached_signed_data(content: &[u8], signer: &str, digest_len: usize) -> Vec<u8> {
    let mut digest = openssl(&["dgst", "-sha256", "-binary"], content);
    digest.truncate(digest_len);
    let attributes = set(&[
        seq(&[oid(ID_CONTENT_TYPE), set(&[oid(ID_DATA)])]),
        seq(&[oid(ID_MESSAGE_DIGEST), set(&[der(0x04, &digest)])]),
    ]);
    let key = certs().join(format!("{signer}.key.pem"));
    let signature = openssl(
        &["dgst", "-sha256", "-sign", &key.to_string_lossy()],
        &attributes,
    );
    let mut implicit = attributes;
    implicit[0] = 0xa0;
    let signer_info = seq(&[
        der(0x02, &[1]),
        issuer_and_serial(&certificate_der(signer)),
        algorithm(ID_SHA256),
        implicit,
        algorithm(RSA_ENCRYPTION),
        der(0x04, &signature),
    ]);
    let certificates = [certificate_der(signer), certificate_der("intermediate")].concat();
    let body = seq(&[
        der(0x02, &[1]),
        set(&[algorithm(ID_SHA256)]),
        seq(&[oid(ID_DATA)]),
        der(0xa0, &certificates),
        der(0x31, &signer_info),
    ]);
    seq(&[oid(ID_SIGNED_DATA), der(0xa0, &body)])
}

/// A whole iMIP message: `entity` (a MIME entity, CRLF) under `multipart/signed` with `cms`
/// as its detached signature.
pub fn multipart_signed_message(headers: &str, entity: &[u8], cms: &[u8]) -> String {
    let mut out = format!(
        "{headers}MIME-Version: 1.0\r\nContent-Type: multipart/signed; \
         protocol=\"application/pkcs7-signature\";\r\n\tmicalg=sha-256; \
         boundary=\"sig-boundary\"\r\n\r\n--sig-boundary\r\n"
    );
    out.push_str(std::str::from_utf8(entity).expect("a UTF-8 entity"));
    out.push_str(
        "\r\n--sig-boundary\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n",
    );
    out.push_str(&base64(cms));
    out.push_str("--sig-boundary--\r\n");
    out
}
