//! From a `postgresql://` URL to a connection: user, password, TLS, timeouts.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ::postgres::config::{Host, SslMode};
use ::postgres::{Client, Config, NoTls};
use openssl::ssl::{SslConnector, SslMethod};
use postgres_openssl::MakeTlsConnector;
use thiserror::Error;

use super::pg;
use crate::error::StoreError;

/// Largest password file read.
const MAX_PGPASS_BYTES: u64 = 1 << 20;

/// Why a PostgreSQL URL cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PostgresUrlError {
    /// The URL does not parse.
    #[error("invalid PostgreSQL URL: {0}")]
    Syntax(#[source] ::postgres::Error),
    /// No user in the URL, `PGUSER` or `USER`.
    #[error("no database user: give one in the URL (postgresql://USER@HOST/DB) or PGUSER")]
    NoUser,
    /// `sslrootcert` could not be loaded.
    #[error("cannot load sslrootcert {path}: {source}")]
    RootCert {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: openssl::error::ErrorStack,
    },
    /// The TLS context could not be built.
    #[error("cannot set up TLS: {0}")]
    Tls(#[source] openssl::error::ErrorStack),
}

/// Everything needed to connect again after a connection was lost.
pub(super) struct Connector {
    config: Config,
    tls: Option<MakeTlsConnector>,
    timeout: Duration,
}

impl Connector {
    pub(super) fn from_url(url: &str, timeout: Duration) -> Result<Self, PostgresUrlError> {
        let (url, root_cert) = take_parameter(url, "sslrootcert");
        let explicit_ssl_mode = url.contains("sslmode=");
        let mut config = Config::from_str(&url).map_err(PostgresUrlError::Syntax)?;
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .ok_or(PostgresUrlError::NoUser)?;
            config.user(&user);
        }
        if config.get_password().is_none()
            && let Some(password) = env("PGPASSWORD").or_else(|| pgpass(&config))
        {
            config.password(password);
        }
        if !explicit_ssl_mode {
            let mode = if is_local(&config) {
                SslMode::Disable
            } else {
                SslMode::Require
            };
            config.ssl_mode(mode);
        }
        config
            .connect_timeout(timeout)
            .tcp_user_timeout(timeout)
            .keepalives(true)
            .application_name("imipsec");
        let tls = match config.get_ssl_mode() {
            SslMode::Disable => None,
            _ => {
                let mut builder =
                    SslConnector::builder(SslMethod::tls()).map_err(PostgresUrlError::Tls)?;
                if let Some(path) = root_cert {
                    let path = PathBuf::from(path);
                    builder
                        .set_ca_file(&path)
                        .map_err(|source| PostgresUrlError::RootCert { path, source })?;
                }
                Some(MakeTlsConnector::new(builder.build()))
            }
        };
        Ok(Connector {
            config,
            tls,
            timeout,
        })
    }

    /// A new connection, with statement and lock timeouts equal to the busy timeout: a
    /// server that stops answering becomes [`StoreError::Busy`] or
    /// [`StoreError::Unavailable`], never a hung gate.
    pub(super) fn connect(&self) -> Result<Client, StoreError> {
        let mut client = match &self.tls {
            None => self.config.connect(NoTls),
            Some(tls) => self.config.connect(tls.clone()),
        }
        .map_err(pg)?;
        let millis = self.timeout.as_millis().max(1);
        client
            .batch_execute(&format!(
                "SET statement_timeout = {millis}; SET lock_timeout = {millis}"
            ))
            .map_err(pg)?;
        Ok(client)
    }

    /// `host:port/database` for logs (never the password).
    pub(super) fn describe(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let db = self.config.get_dbname().unwrap_or("");
        format!("{host}:{port}/{db}")
    }
}

/// The URL with any password replaced by `***` (for messages and logs).
pub(crate) fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    // scheme://[user[:password]@]host...
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &base[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &base[..scheme + 3], &base[at..]),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    match query {
        None => base,
        Some(query) => {
            let kept: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{base}?{}", kept.join("&"))
        }
    }
}

/// Whether the URL carries a password (the CLI refuses that on its command line).
pub(crate) fn url_has_password(url: &str) -> bool {
    let (url, _) = take_parameter(url, "sslrootcert");
    Config::from_str(&url).is_ok_and(|config| config.get_password().is_some())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// Removes `name=value` from the URL's query (a libpq parameter the client does not know)
/// and returns it.
fn take_parameter(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut value = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((key, v)) if key == name => {
                value = Some(v.to_owned());
                false
            }
            _ => true,
        })
        .collect();
    if kept.is_empty() {
        (base.to_owned(), value)
    } else {
        (format!("{base}?{}", kept.join("&")), value)
    }
}

fn is_local(config: &Config) -> bool {
    config.get_hosts().iter().all(|host| match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
    })
}

/// The password of the first `PGPASSFILE` (default `~/.pgpass`) line matching the
/// connection, as libpq reads it: `host:port:database:user:password`, `*` matches
/// anything, `\` escapes `:` and `\`; a file readable by group or others is ignored.
fn pgpass(config: &Config) -> Option<String> {
    let path = env("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".pgpass")))?;
    let text = read_private(&path)?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        _ => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let fields = split_pgpass(line);
            let [h, p, d, u, password] = fields.as_slice() else {
                return None;
            };
            let matches = |field: &str, value: &str| field == "*" || field == value;
            (matches(h, &host) && matches(p, &port) && matches(d, db) && matches(u, user))
                .then(|| password.clone())
        })
}

fn read_private(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let metadata = file.metadata().ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            return None;
        }
    }
    let mut text = String::new();
    file.take(MAX_PGPASS_BYTES).read_to_string(&mut text).ok()?;
    let _ = metadata;
    Some(text)
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(field)) = (chars.next(), fields.last_mut()) {
                    field.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(field) = fields.last_mut() {
                    field.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_lines_split_with_escapes() {
        assert_eq!(
            split_pgpass(r"db\:1:5432:*:me:pa\:ss"),
            ["db:1", "5432", "*", "me", "pa:ss"]
        );
    }

    #[test]
    fn sslrootcert_is_taken_out_of_the_url() {
        let (url, cert) = take_parameter(
            "postgresql://u@h/db?sslmode=require&sslrootcert=/ca.pem",
            "sslrootcert",
        );
        assert_eq!(url, "postgresql://u@h/db?sslmode=require");
        assert_eq!(cert.as_deref(), Some("/ca.pem"));
    }

    #[test]
    fn passwords_in_urls_are_seen() {
        assert!(url_has_password("postgresql://u:secret@h/db"));
        assert!(url_has_password("postgresql://u@h/db?password=secret"));
        assert!(!url_has_password("postgresql://u@h/db"));
    }

    #[test]
    fn remote_hosts_default_to_verified_tls() {
        let remote =
            Connector::from_url("postgresql://u@db.example.net/x", Duration::from_secs(1)).unwrap();
        assert_eq!(remote.config.get_ssl_mode(), SslMode::Require);
        assert!(remote.tls.is_some());
        let local =
            Connector::from_url("postgresql://u@127.0.0.1:5/x", Duration::from_secs(1)).unwrap();
        assert_eq!(local.config.get_ssl_mode(), SslMode::Disable);
    }
}
