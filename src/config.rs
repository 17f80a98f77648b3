//! The TOML configuration file shared by a gate, a cron audit and the delegate commands.
//!
//! Flags override it. Unknown keys are an error, so a typo never silently falls back to a
//! default. Relative paths are resolved against the directory of the configuration file,
//! so one file works from any working directory. See `examples/imipsec.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Largest configuration file read: a configuration is a few hundred bytes, anything
/// beyond this is not one.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Trust anchors and revocation lists.
    #[serde(default)]
    pub trust: TrustConfig,
    /// Decryption identities.
    #[serde(default)]
    pub identities: Vec<IdentityConfig>,
    /// The policy store.
    #[serde(default)]
    pub store: StoreConfig,
    /// Limits on untrusted input; absent entries keep the built-in defaults.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Algorithm and acceptance policy.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Who the messages are delivered to.
    #[serde(default)]
    pub recipient: RecipientConfig,
    /// The security gate (`imipsec gate`): listeners, actions, limits.
    #[serde(default)]
    pub gate: imipsec_gate::GateConfig,
}

/// `[trust]`: what signatures are checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// CA certificates (PEM) trusted as anchors.
    #[serde(default)]
    pub anchors: Vec<PathBuf>,
    /// Certificate revocation lists (PEM or DER).
    #[serde(default)]
    pub crls: Vec<PathBuf>,
}

/// `[[identities]]`: one decryption (or signing) identity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// PEM key and certificate, or PKCS#12 file.
    pub path: PathBuf,
    /// Environment variable holding its password, if it has one.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// `[store]`: the SQLite delegation and event state store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Path of the store.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// `[limits]`: bounds on untrusted input. Each absent entry keeps the library default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest message, in bytes.
    #[serde(default)]
    pub message_bytes: Option<u64>,
    /// Deepest MIME nesting.
    #[serde(default)]
    pub mime_depth: Option<u32>,
    /// Most MIME parts in one message.
    #[serde(default)]
    pub parts: Option<u32>,
    /// Most certificates in one CMS structure.
    #[serde(default)]
    pub certificates: Option<u32>,
    /// Most iCalendar components in one object.
    #[serde(default)]
    pub components: Option<u32>,
    /// Most attendees in one component.
    #[serde(default)]
    pub attendees: Option<u32>,
}

/// `[policy]`: algorithm policy and escape hatches (each `danger_*` weakens security).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Smallest RSA key accepted, in bits; absent keeps the library default (2048).
    #[serde(default)]
    pub min_rsa_bits: Option<u32>,
    /// DANGER: accept SHA-1 signatures.
    #[serde(default)]
    pub danger_allow_sha1: bool,
    /// DANGER: evaluate unsigned messages as if signed by the address they name.
    #[serde(default)]
    pub danger_allow_unsigned: bool,
}

/// `[recipient]`: default recipient scope when `--recipient` is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientConfig {
    /// Address the messages are delivered to.
    #[serde(default)]
    pub default: Option<String>,
}

/// Why the configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("configuration {path} is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The file is not valid TOML for this schema (unknown keys included).
    #[error("invalid configuration {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause, with line and column.
        #[source]
        source: toml::de::Error,
    },
}

impl Config {
    /// Reads and parses `path`, resolving its relative paths against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let read_error = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read_error)?.len();
        if size > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_CONFIG_BYTES,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        let mut config = Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        config.resolve_relative_to(base);
        Ok(config)
    }

    /// Loads `path` if given, else the empty configuration (every default).
    pub fn load_optional(path: Option<&Path>) -> Result<Self, ConfigError> {
        path.map_or_else(|| Ok(Self::default()), Self::load)
    }

    /// Parses configuration text; paths stay as written.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    fn resolve_relative_to(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        self.trust.anchors.iter_mut().for_each(resolve);
        self.trust.crls.iter_mut().for_each(resolve);
        self.identities
            .iter_mut()
            .for_each(|identity| resolve(&mut identity.path));
        if let Some(store) = self.store.path.as_mut() {
            resolve(store);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_example_parses() {
        let text = include_str!("../examples/imipsec.toml");
        let config = Config::parse(text).unwrap();
        assert!(!config.trust.anchors.is_empty());
        assert!(!config.policy.danger_allow_sha1);
    }

    #[test]
    fn unknown_keys_are_an_error() {
        assert!(Config::parse("[trust]\nanchor = []\n").is_err());
        assert!(Config::parse("colour = 'blue'\n").is_err());
    }

    #[test]
    fn empty_file_is_every_default() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[trust]\nanchors = ['ca.pem', '/abs/ca.pem']\n[store]\npath = 's.db'\n",
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.trust.anchors[0], dir.path().join("ca.pem"));
        assert_eq!(config.trust.anchors[1], PathBuf::from("/abs/ca.pem"));
        assert_eq!(config.store.path, Some(dir.path().join("s.db")));
    }
}
