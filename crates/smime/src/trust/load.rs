//! Loading trust material from files: PEM bundles, DER files and directories of anchors or
//! intermediates, PEM or DER CRLs, each bounded by named limits.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::path::Path;

use openssl::x509::{X509, X509Crl};

use super::{TRUST_DIRECTORY_FILES_MAX, TRUST_FILE_BYTES_MAX, TrustStoreError};

/// Certificates from a PEM bundle, a DER file, or a directory of them.
pub fn load_certificates(path: &Path) -> Result<Vec<X509>, TrustStoreError> {
    let metadata = std::fs::metadata(path).map_err(|source| TrustStoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !metadata.is_dir() {
        return certificates_of_file(path);
    }
    let entries = std::fs::read_dir(path).map_err(|source| TrustStoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| TrustStoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_certificate_file_name(&name) && file.is_file() {
            files.push(file);
        }
        if files.len() > TRUST_DIRECTORY_FILES_MAX {
            return Err(TrustStoreError::TooLarge {
                path: path.to_path_buf(),
                what: format!("more than {TRUST_DIRECTORY_FILES_MAX} certificate files"),
            });
        }
    }
    files.sort();
    let mut certificates = Vec::new();
    for file in files {
        certificates.extend(certificates_of_file(&file)?);
    }
    dedup_certificates(&mut certificates);
    if certificates.is_empty() {
        return Err(TrustStoreError::Pem {
            path: path.to_path_buf(),
            what: "certificate",
        });
    }
    Ok(certificates)
}

/// `.pem`, `.crt`, `.cer`, `.der`, or an OpenSSL hashed name (`9d6523ce.0`).
fn is_certificate_file_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if [".pem", ".crt", ".cer", ".der"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        return true;
    }
    match lower.split_once('.') {
        Some((hash, index)) => {
            hash.len() == 8
                && hash.bytes().all(|b| b.is_ascii_hexdigit())
                && !index.is_empty()
                && index.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

pub(super) fn dedup_certificates(certificates: &mut Vec<X509>) {
    let mut seen = std::collections::HashSet::new();
    certificates.retain(|cert| cert.to_der().is_ok_and(|der| seen.insert(der)));
}

/// PEM (one or more, a bundle) or DER: PEM when the file contains a PEM header.
fn certificates_of_file(path: &Path) -> Result<Vec<X509>, TrustStoreError> {
    let bytes = read(path)?;
    let bad = || TrustStoreError::Pem {
        path: path.to_path_buf(),
        what: "certificate",
    };
    let certs = if memchr::memmem::find(&bytes, b"-----BEGIN").is_some() {
        X509::stack_from_pem(&bytes).map_err(|_| bad())?
    } else {
        vec![X509::from_der(&bytes).map_err(|_| bad())?]
    };
    if certs.is_empty() {
        return Err(bad());
    }
    Ok(certs)
}

/// CRLs from a PEM file (one or more) or a DER file.
pub fn load_crls(path: &Path) -> Result<Vec<X509Crl>, TrustStoreError> {
    let bytes = read(path)?;
    let bad = || TrustStoreError::Pem {
        path: path.to_path_buf(),
        what: "CRL",
    };
    if memchr::memmem::find(&bytes, b"-----BEGIN").is_none() {
        return Ok(vec![X509Crl::from_der(&bytes).map_err(|_| bad())?]);
    }
    let mut crls = Vec::new();
    let marker = b"-----BEGIN X509 CRL-----";
    let mut rest: &[u8] = &bytes;
    while let Some(start) = memchr::memmem::find(rest, marker) {
        let (_, from_start) = rest.split_at_checked(start).ok_or_else(bad)?;
        let end_marker = b"-----END X509 CRL-----";
        let end = memchr::memmem::find(from_start, end_marker).ok_or_else(bad)?;
        let (block, after) = from_start
            .split_at_checked(end.saturating_add(end_marker.len()))
            .ok_or_else(bad)?;
        crls.push(X509Crl::from_pem(block).map_err(|_| bad())?);
        rest = after;
    }
    if crls.is_empty() {
        return Err(bad());
    }
    Ok(crls)
}

fn read(path: &Path) -> Result<Vec<u8>, TrustStoreError> {
    let size = std::fs::metadata(path)
        .map_err(|source| TrustStoreError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if size > TRUST_FILE_BYTES_MAX {
        return Err(TrustStoreError::TooLarge {
            path: path.to_path_buf(),
            what: format!("larger than {TRUST_FILE_BYTES_MAX} bytes"),
        });
    }
    std::fs::read(path).map_err(|source| TrustStoreError::Io {
        path: path.to_path_buf(),
        source,
    })
}
