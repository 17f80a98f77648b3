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
    /// OpenPGP (PGP/MIME, RFC 3156): certificates the operator vouches for, decryption keys.
    #[serde(default)]
    pub openpgp: OpenPgpConfig,
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
    /// Trust anchors: PEM bundles, DER certificates or directories of them.
    #[serde(default)]
    pub anchors: Vec<PathBuf>,
    /// Untrusted intermediate CA certificates used for path building (PEM, DER or
    /// directories); never anchors.
    #[serde(default)]
    pub intermediates: Vec<PathBuf>,
    /// Certificate revocation lists (PEM or DER).
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// Revocation checking: `off`, `if-available` (default) or `require`.
    #[serde(default)]
    pub revocation: Option<String>,
    /// Initial certificate policy set (dotted OIDs, RFC 5280 §6.1.1); empty: anyPolicy.
    /// When given, a chain must be valid for one of them.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Fetch revocation status over http for every certificate of a signer's chain: OCSP
    /// from its AIA first, then its CRL distribution points (default false).
    #[serde(default)]
    pub fetch_revocation: bool,
    /// Folder caching fetched OCSP answers and CRLs until their nextUpdate. Default: none
    /// for `verify` and `audit`; `revocation-cache` beside `[store] path` for the gate.
    #[serde(default)]
    pub revocation_cache: Option<PathBuf>,
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
    /// File whose first line is its password (instead of `password_env`).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// `[openpgp]`: OpenPGP certificates the operator vouches for (the OpenPGP counterpart of
/// `[trust] anchors`) and secret keys to decrypt PGP/MIME with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenPgpConfig {
    /// Certificate files (armored or binary, as `gpg --export` writes them) or directories
    /// of them.
    #[serde(default)]
    pub certs: Vec<PathBuf>,
    /// Secret keys to decrypt with (`gpg --export-secret-keys`), with their passwords as for
    /// `[[identities]]`.
    #[serde(default)]
    pub identities: Vec<IdentityConfig>,
}

/// `[store]`: the delegation and event state store: a SQLite file (`path`) or a PostgreSQL
/// database shared by several gates (`url`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Path of the store.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// A `postgresql://USER@HOST:PORT/DB` URL (password from `PGPASSWORD` or `PGPASSFILE`).
    /// Loading moves it into `path`, where every command looks for the store; empty means
    /// none, and giving both `path` and `url` is an error.
    #[serde(default)]
    pub url: Option<String>,
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

/// `[policy]`: algorithm policy, iCalendar strictness and escape hatches (each `danger_*`
/// weakens security).
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
    /// Reject the deviations of the iTIP interoperability profile (crates/itip/README.md)
    /// and the other tolerated iCalendar defects (missing charset or method parameter,
    /// blank lines, bare LF) instead of accepting them with a warning.
    #[serde(default)]
    pub strict_icalendar: bool,
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
    /// `[store]` names both a file and a database.
    #[error("{}: [store] has both path and url; give one", .path.display())]
    StorePathAndUrl {
        /// The configuration file.
        path: PathBuf,
    },
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
    /// The file is not valid TOML for this schema (unknown keys included), shown as one
    /// `file:line:column: message` line like a compiler's.
    #[error("invalid configuration {}:{line}:{column}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column (in characters) of the problem.
        column: usize,
        /// What is wrong, with the allowed keys for an unknown one.
        message: String,
    },
}

/// Whether a store location is a PostgreSQL URL rather than a SQLite path.
pub fn is_store_url(text: &str) -> bool {
    matches!(
        imipsec_pipeline::policy::StoreLocation::parse(text),
        imipsec_pipeline::policy::StoreLocation::Postgres(_)
    )
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
        let mut config = Self::parse(&text).map_err(|error| {
            let start = error.span().map_or(0, |span| span.start);
            let before = text.get(..start).unwrap_or("");
            let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
            ConfigError::Parse {
                path: path.to_path_buf(),
                line: before.matches('\n').count() + 1,
                column: before
                    .get(line_start..)
                    .map_or(0, |line| line.chars().count())
                    + 1,
                message: error.message().trim().to_owned(),
            }
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        config.resolve_relative_to(base);
        if let Some(url) = config.store.url.take().filter(|url| !url.is_empty()) {
            if config.store.path.is_some() {
                return Err(ConfigError::StorePathAndUrl {
                    path: path.to_path_buf(),
                });
            }
            config.store.path = Some(PathBuf::from(url));
        }
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

    /// Every key the configuration accepts, as dotted paths (`trust.anchors`,
    /// `identities[].path`, `gate.limits.connections`), in declaration order.
    ///
    /// Read from the deserialiser itself rather than kept as a list: each table rejects an
    /// unknown key naming the keys it expects (`deny_unknown_fields`), so probing every table
    /// with one unknown key enumerates the schema. The man page and the test of
    /// `examples/imipsec.toml` use it, so neither can fall behind the code.
    pub fn known_keys() -> Vec<String> {
        let mut keys = Vec::new();
        collect_keys(&mut Vec::new(), &mut keys);
        keys
    }

    fn resolve_relative_to(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        self.trust.anchors.iter_mut().for_each(resolve);
        self.trust.crls.iter_mut().for_each(resolve);
        self.trust.intermediates.iter_mut().for_each(resolve);
        if let Some(cache) = self.trust.revocation_cache.as_mut() {
            resolve(cache);
        }
        self.openpgp.certs.iter_mut().for_each(resolve);
        for identity in self
            .identities
            .iter_mut()
            .chain(self.openpgp.identities.iter_mut())
        {
            resolve(&mut identity.path);
            if let Some(file) = identity.password_file.as_mut() {
                resolve(file);
            }
        }
        // A URL written as `path` is not a relative path.
        if let Some(store) = self.store.path.as_mut()
            && !store.to_str().is_some_and(is_store_url)
        {
            resolve(store);
        }
    }
}

/// The unknown key used to probe the schema.
const PROBE: &str = "imipsec_schema_probe";

/// The keys the table at `path` (key, is-array-of-tables) expects, or `None` when `path` does
/// not name a table.
fn table_keys(path: &[(String, bool)]) -> Option<Vec<String>> {
    let mut value = format!("{{ {PROBE} = 1 }}");
    let text = match path.split_first() {
        None => format!("{PROBE} = 1"),
        Some(((first, first_array), rest)) => {
            for (key, array) in rest.iter().rev() {
                value = if *array {
                    format!("{{ {key} = [{value}] }}")
                } else {
                    format!("{{ {key} = {value} }}")
                };
            }
            if *first_array {
                format!("{first} = [{value}]")
            } else {
                format!("{first} = {value}")
            }
        }
    };
    let message = Config::parse(&text).err()?.message().to_owned();
    let expected = message
        .strip_prefix(&format!("unknown field `{PROBE}`, expected "))?
        .to_owned();
    Some(
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

fn collect_keys(path: &mut Vec<(String, bool)>, keys: &mut Vec<String>) {
    let Some(fields) = table_keys(path) else {
        return;
    };
    for field in fields {
        let mut found_table = false;
        for array in [false, true] {
            path.push((field.clone(), array));
            if table_keys(path).is_some() {
                collect_keys(path, keys);
                found_table = true;
            }
            path.pop();
            if found_table {
                break;
            }
        }
        if !found_table {
            let mut name: Vec<String> = path
                .iter()
                .map(|(key, array)| {
                    if *array {
                        format!("{key}[]")
                    } else {
                        key.clone()
                    }
                })
                .collect();
            name.push(field);
            keys.push(name.join("."));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Issue #16: `[store] url` selects PostgreSQL; it is never resolved as a relative path,
    // and naming both a file and a database is an error rather than a silent choice.
    #[test]
    fn store_url_is_kept_as_written_and_excludes_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        let url = "postgresql://gate@db.example.net/imipsec";
        std::fs::write(&file, format!("[store]\nurl = '{url}'\n")).unwrap();
        let config = Config::load(&file).unwrap();
        assert_eq!(config.store.path, Some(PathBuf::from(url)));
        std::fs::write(&file, format!("[store]\npath = '{url}'\n")).unwrap();
        assert_eq!(
            Config::load(&file).unwrap().store.path,
            Some(PathBuf::from(url))
        );
        std::fs::write(&file, format!("[store]\npath = 'p.db'\nurl = '{url}'\n")).unwrap();
        assert!(matches!(
            Config::load(&file),
            Err(ConfigError::StorePathAndUrl { .. })
        ));
    }

    #[test]
    fn shipped_example_parses() {
        let text = include_str!("../examples/imipsec.toml");
        let config = Config::parse(text).unwrap();
        assert!(!config.trust.anchors.is_empty());
        assert!(!config.policy.danger_allow_sha1);
    }

    /// Issue #14: the two example configurations each covered part of the keys. The one
    /// shipped example must set every key the program accepts (a new key fails this test
    /// until it is documented there).
    #[test]
    fn shipped_example_sets_every_known_key() {
        let keys = Config::known_keys();
        // The probe finds the schema: a few keys of each level, as a sanity check.
        for expected in [
            "trust.anchors",
            "identities[].password_env",
            "store.path",
            "gate.authserv_id",
            "gate.lmtp.backend",
            "gate.limits.drain_timeout_secs",
        ] {
            assert!(
                keys.iter().any(|key| key == expected),
                "{expected}: {keys:?}"
            );
        }
        let example: toml::Table =
            toml::from_str(include_str!("../examples/imipsec.toml")).unwrap();
        fn present(value: &toml::Value, path: &[&str]) -> bool {
            let Some((first, rest)) = path.split_first() else {
                return true;
            };
            let (key, array) = match first.strip_suffix("[]") {
                Some(key) => (key, true),
                None => (*first, false),
            };
            let Some(next) = value.get(key) else {
                return false;
            };
            if array {
                next.as_array()
                    .is_some_and(|items| items.iter().any(|item| present(item, rest)))
            } else {
                present(next, rest)
            }
        }
        let example = toml::Value::Table(example);
        let missing: Vec<&String> = keys
            .iter()
            .filter(|key| !present(&example, &key.split('.').collect::<Vec<_>>()))
            .collect();
        assert!(
            missing.is_empty(),
            "examples/imipsec.toml does not set {missing:?}"
        );
    }

    #[test]
    fn unknown_keys_are_an_error() {
        assert!(Config::parse("[trust]\nanchor = []\n").is_err());
        assert!(Config::parse("colour = 'blue'\n").is_err());
    }

    // Issue #14 (messages): one line with file, line and column, and the allowed keys.
    #[test]
    fn a_config_error_is_one_line_with_position_and_allowed_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[trust]\nanchors = []\nanchor = []\n").unwrap();
        let text = Config::load(&path).unwrap_err().to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.contains("c.toml:3:1: unknown field `anchor`"),
            "{text}"
        );
        assert!(text.contains("`anchors`"), "{text}");
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
