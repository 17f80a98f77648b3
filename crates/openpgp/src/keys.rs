//! Loading what the operator gives: certificates it vouches for (`--openpgp-certs`) and secret
//! keys to decrypt with (`--openpgp-identity`). Configuration input, still bounded.

use std::path::Path;

use pgp::composed::{Deserializable, SignedPublicKey, SignedSecretKey};
use pgp::types::{KeyDetails, Password};

use crate::certificate::hex;
use crate::error::{LoadError, contain_panic};

/// Largest key file read.
pub const KEY_FILE_BYTES_MAX: u64 = 8 * 1024 * 1024;
/// Most files read from one certificate directory.
pub const KEY_DIRECTORY_FILES_MAX: usize = 4096;
/// Most certificates in one [`Certificates`].
pub const CERTIFICATES_MAX: usize = 10_000;

/// OpenPGP certificates the operator vouches for: the OpenPGP counterpart of the S/MIME trust
/// anchors. A certificate here is trusted for the user IDs it self-signs, and nothing else:
/// certifications by third parties (the web of trust) are not evaluated, and whether a
/// certificate is usable is decided at each evaluation time (expiry, revocation, bindings).
#[derive(Debug, Clone, Default)]
pub struct Certificates {
    pub(crate) certificates: Vec<SignedPublicKey>,
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, LoadError> {
    let io = |source| LoadError::Io {
        path: path.display().to_string(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if metadata.len() > KEY_FILE_BYTES_MAX {
        return Err(LoadError::TooLarge {
            path: path.display().to_string(),
            what: "key file size",
        });
    }
    std::fs::read(path).map_err(io)
}

impl Certificates {
    /// Load certificates from files (ASCII-armored or binary, one or many keys each, as
    /// `gpg --export` writes them) or directories of such files (not recursive; every regular
    /// file is read, in name order).
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Certificates, LoadError> {
        let mut certificates = Certificates::default();
        for path in paths {
            let path = path.as_ref();
            let io = |source| LoadError::Io {
                path: path.display().to_string(),
                source,
            };
            if path.is_dir() {
                let mut files = Vec::new();
                for entry in std::fs::read_dir(path).map_err(io)? {
                    let entry = entry.map_err(io)?;
                    if entry.file_type().map_err(io)?.is_file() {
                        files.push(entry.path());
                    }
                    if files.len() > KEY_DIRECTORY_FILES_MAX {
                        return Err(LoadError::TooLarge {
                            path: path.display().to_string(),
                            what: "number of files",
                        });
                    }
                }
                files.sort();
                for file in files {
                    certificates.add_file(&file)?;
                }
            } else {
                certificates.add_file(path)?;
            }
        }
        Ok(certificates)
    }

    fn add_file(&mut self, path: &Path) -> Result<(), LoadError> {
        let bytes = read_bounded(path)?;
        self.add_bytes(&bytes).map_err(|(what, detail)| match what {
            Some(what) => LoadError::TooLarge {
                path: path.display().to_string(),
                what,
            },
            None => LoadError::Parse {
                path: path.display().to_string(),
                expected: "certificate",
                detail,
            },
        })
    }

    /// Add the certificates in `bytes` (armored or binary).
    pub fn from_bytes(bytes: &[u8]) -> Result<Certificates, LoadError> {
        let mut certificates = Certificates::default();
        certificates
            .add_bytes(bytes)
            .map_err(|(what, detail)| match what {
                Some(what) => LoadError::TooLarge {
                    path: "<bytes>".to_owned(),
                    what,
                },
                None => LoadError::Parse {
                    path: "<bytes>".to_owned(),
                    expected: "certificate",
                    detail,
                },
            })?;
        Ok(certificates)
    }

    fn add_bytes(&mut self, bytes: &[u8]) -> Result<(), (Option<&'static str>, String)> {
        let parsed = contain_panic(|| -> Result<Vec<SignedPublicKey>, String> {
            let (keys, _) =
                SignedPublicKey::from_reader_many(bytes).map_err(|error| error.to_string())?;
            let mut out = Vec::new();
            for key in keys {
                out.push(key.map_err(|error| error.to_string())?);
                if out.len() > CERTIFICATES_MAX {
                    return Err("too many certificates".to_owned());
                }
            }
            Ok(out)
        })
        .unwrap_or_else(|| Err("the OpenPGP parser panicked".to_owned()))
        .map_err(|detail| (None, detail))?;
        if parsed.is_empty() {
            return Err((None, "no certificate".to_owned()));
        }
        self.certificates.extend(parsed);
        if self.certificates.len() > CERTIFICATES_MAX {
            return Err((Some("number of certificates"), String::new()));
        }
        Ok(())
    }

    /// How many certificates.
    pub fn len(&self) -> usize {
        self.certificates.len()
    }

    /// No certificate at all.
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }

    /// The primary key fingerprints (hex), in load order.
    pub fn fingerprints(&self) -> Vec<String> {
        self.certificates
            .iter()
            .map(|certificate| hex(certificate.fingerprint().as_bytes()))
            .collect()
    }

    /// The first certificate (for `--encrypt-to-openpgp`, which takes one certificate per
    /// file).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &SignedPublicKey> {
        self.certificates.iter()
    }
}

/// An OpenPGP secret key (transferable secret key, as `gpg --export-secret-keys` writes it),
/// unlocked at load time with its password, to decrypt (`--openpgp-identity`) or sign
/// (`sign --openpgp-key`) with.
#[derive(Clone)]
pub struct Identity {
    pub(crate) key: SignedSecretKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Read a secret key file; `password` unlocks protected key material (every secret key
    /// packet of the key: primary and subkeys). A protected key without a password, or with a
    /// wrong one, is an error here, never a silent failure at decryption time.
    pub fn load(path: &Path, password: Option<&[u8]>) -> Result<Identity, LoadError> {
        let bytes = read_bounded(path)?;
        Identity::from_bytes(&bytes, password).map_err(|error| match error {
            LoadError::Parse {
                expected, detail, ..
            } => LoadError::Parse {
                path: path.display().to_string(),
                expected,
                detail,
            },
            LoadError::Password { .. } => LoadError::Password {
                path: path.display().to_string(),
            },
            other => other,
        })
    }

    /// [`Identity::load`] from bytes.
    pub fn from_bytes(bytes: &[u8], password: Option<&[u8]>) -> Result<Identity, LoadError> {
        let parse = |detail: String| LoadError::Parse {
            path: "<bytes>".to_owned(),
            expected: "secret key",
            detail,
        };
        let mut key = contain_panic(|| {
            SignedSecretKey::from_reader_single(bytes)
                .map(|(key, _)| key)
                .map_err(|error| error.to_string())
        })
        .unwrap_or_else(|| Err("the OpenPGP parser panicked".to_owned()))
        .map_err(parse)?;
        let password = Password::from(password.unwrap_or_default());
        let wrong = || LoadError::Password {
            path: "<bytes>".to_owned(),
        };
        key.primary_key
            .remove_password(&password)
            .map_err(|_| wrong())?;
        for subkey in &mut key.secret_subkeys {
            subkey.key.remove_password(&password).map_err(|_| wrong())?;
        }
        Ok(Identity { key })
    }

    /// The primary key fingerprint (hex).
    pub fn fingerprint(&self) -> String {
        hex(self.key.fingerprint().as_bytes())
    }
}
