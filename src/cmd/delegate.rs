//! `imipsec delegate`: manage SENT-BY delegations (RFC 5545 section 3.2.18) in the policy
//! store: who may sign iTIP messages on behalf of an ORGANIZER or ATTENDEE.
//!
//! Exit status 0 when done, 2 on any error (with a message on stderr). The clock is read
//! here, never in the store: `--at`/`--from` default to now.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use imipsec_policy::{
    DelegationStore, Grant, GrantFilter, GrantId, GrantScope, HistoryEntry, Method, NewGrant, Side,
    Store, StoreError, Timestamp,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::cli::{
    DelegateArgs, DelegateCommand, ExportArgs, GrantArgs, HistoryArgs, ImportArgs, ListArgs,
    RevokeArgs, StoreArgs,
};
use crate::cmd::Exit;
use crate::config::{Config, ConfigError};
use crate::setup::{SetupError, open_store};

/// Largest file `delegate import` reads: an export of many thousand grants fits.
pub const MAX_IMPORT_BYTES: u64 = 16 << 20;

/// Why a delegate command failed (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum DelegateError {
    /// The configuration file could not be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Neither `--store`, `IMIPSEC_STORE` nor the configuration names a store.
    #[error(
        "no policy store: give --store PATH, set IMIPSEC_STORE, or set [store] path in --config"
    )]
    NoStore,
    /// The store is missing (for a command that only reads it) or could not be opened.
    #[error(transparent)]
    Open(#[from] SetupError),
    /// The store refused or failed the operation.
    #[error("policy store {path}")]
    Store {
        /// The store file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// `--methods` names something that is neither a method, `all`, nor a side.
    #[error("--methods: {item:?} is not an iTIP method, `all`, `organizer` or `attendee`")]
    UnknownMethod {
        /// The offending item.
        item: String,
    },
    /// `--methods all` was combined with other items.
    #[error("--methods: `all` cannot be combined with other items")]
    AllCombined,
    /// `--methods` names both sides.
    #[error("--methods: give at most one of `organizer` and `attendee`")]
    TwoSides,
    /// `revoke` was given neither `--id` nor both `--principal` and `--delegate`.
    #[error("revoke needs --id ID, or --principal ADDR and --delegate ADDR")]
    RevokeTarget,
    /// `revoke --id` named a grant that does not exist.
    #[error("no grant with id {id}")]
    NoSuchGrant {
        /// The id asked for.
        id: i64,
    },
    /// The import file could not be read.
    #[error("cannot read import file {path}")]
    ReadImport {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The import file is larger than [`MAX_IMPORT_BYTES`].
    #[error("import file {path} is larger than {limit} bytes")]
    ImportTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// Output could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file, or `-` for standard output.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Runs `imipsec delegate`.
pub fn run(args: &DelegateArgs) -> Result<Exit, DelegateError> {
    match &args.command {
        DelegateCommand::Grant(args) => grant(args),
        DelegateCommand::Revoke(args) => revoke(args),
        DelegateCommand::List(args) => list(args),
        DelegateCommand::History(args) => history(args),
        DelegateCommand::Import(args) => import(args),
        DelegateCommand::Export(args) => export(args),
    }?;
    Ok(Exit::Success)
}

/// An open store and its path, for error messages.
struct Opened {
    path: PathBuf,
    store: Store,
}

impl Opened {
    /// Opens the store named by the flags or the configuration. `create`: make the file
    /// when missing (commands that write); otherwise a missing store is an error.
    fn open(args: &StoreArgs, create: bool) -> Result<Self, DelegateError> {
        let config = Config::load_optional(args.config.as_deref())?;
        let path = args
            .store
            .clone()
            .or(config.store.path)
            .ok_or(DelegateError::NoStore)?;
        let store = open_store(&path, create)?;
        // Shown in messages: a URL without its password.
        let path = PathBuf::from(crate::setup::store_location(&path)?.to_string());
        Ok(Opened { path, store })
    }

    fn failed(&self) -> impl Fn(StoreError) -> DelegateError + '_ {
        |source| DelegateError::Store {
            path: self.path.clone(),
            source,
        }
    }
}

fn timestamp(time: OffsetDateTime) -> Timestamp {
    Timestamp::from_unix_seconds(time.unix_timestamp())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// `--by` or the user name of the invoking account.
fn recorder(by: Option<&str>) -> String {
    by.map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Parses `--methods`: `all`, a side (`organizer`/`attendee`), methods, or methods and a
/// side (the methods of that side among them).
pub fn scope(items: &[String]) -> Result<GrantScope, DelegateError> {
    let items: Vec<&str> = items
        .iter()
        .map(|item| item.trim())
        .filter(|item| !item.is_empty())
        .collect();
    if items.iter().any(|item| item.eq_ignore_ascii_case("all")) {
        return if items.len() == 1 {
            Ok(GrantScope::all())
        } else {
            Err(DelegateError::AllCombined)
        };
    }
    let mut scope = GrantScope::default();
    let mut methods = Vec::new();
    for item in items {
        if let Ok(side) = item.parse::<Side>() {
            if scope.side.replace(side).is_some() {
                return Err(DelegateError::TwoSides);
            }
        } else if let Ok(method) = item.parse::<Method>() {
            methods.push(method);
        } else {
            return Err(DelegateError::UnknownMethod {
                item: item.to_string(),
            });
        }
    }
    if !methods.is_empty() {
        scope.methods = Some(methods);
    }
    Ok(scope)
}

fn scope_text(scope: &GrantScope) -> String {
    let methods = scope.methods.as_ref().map(|methods| {
        methods
            .iter()
            .map(|method| method.as_str())
            .collect::<Vec<_>>()
            .join(",")
    });
    match (methods, scope.side) {
        (None, None) => "all".to_string(),
        (None, Some(side)) => format!("{side} methods"),
        (Some(methods), None) => methods,
        (Some(methods), Some(side)) => format!("{methods} ({side} methods only)"),
    }
}

fn time_text(time: Option<Timestamp>) -> String {
    time.and_then(|time| time.to_rfc3339().ok())
        .unwrap_or_else(|| "-".to_string())
}

fn grant(args: &GrantArgs) -> Result<(), DelegateError> {
    let scope = scope(&args.methods)?;
    let opened = Opened::open(&args.store, true)?;
    let recorded_at = now();
    let new = NewGrant {
        principal: args.principal.clone(),
        delegate: args.delegate.clone(),
        scope,
        not_before: Some(timestamp(args.from.unwrap_or(recorded_at))),
        until: args.until.map(timestamp),
        note: args.note.clone(),
        recorded_by: recorder(args.by.as_deref()),
        recorded_at: timestamp(recorded_at),
    };
    let id = opened.store.grant(&new).map_err(opened.failed())?;
    println!(
        "granted {id}: {} may act for {} ({}; from {} until {})",
        args.delegate,
        args.principal,
        scope_text(&new.scope),
        time_text(new.not_before),
        time_text(new.until)
    );
    Ok(())
}

fn revoke(args: &RevokeArgs) -> Result<(), DelegateError> {
    let opened = Opened::open(&args.store, false)?;
    let at = timestamp(args.at.unwrap_or_else(now));
    let by = recorder(args.by.as_deref());
    match (args.id, &args.principal, &args.delegate) {
        (Some(id), _, _) => {
            // The store revokes only what exists; check first for a clear message.
            let all = GrantFilter {
                include_revoked: true,
                ..GrantFilter::default()
            };
            let known = opened
                .store
                .list(&all, None)
                .map_err(opened.failed())?
                .iter()
                .any(|grant| grant.id == GrantId(id));
            if !known {
                return Err(DelegateError::NoSuchGrant { id });
            }
            opened
                .store
                .revoke(GrantId(id), at, &by, args.note.as_deref())
                .map_err(opened.failed())?;
            println!("revoked {}", GrantId(id));
        }
        (None, Some(principal), Some(delegate)) => {
            let count = opened
                .store
                .revoke_matching(principal, delegate, at, &by)
                .map_err(opened.failed())?;
            println!("revoked {count} grant(s) from {principal} to {delegate}");
        }
        _ => return Err(DelegateError::RevokeTarget),
    }
    Ok(())
}

/// A grant as `delegate list --json` prints it.
#[derive(Debug, Serialize)]
struct GrantJson {
    id: i64,
    principal: String,
    delegate: String,
    /// `null` for every method, else the list.
    methods: Option<Vec<&'static str>>,
    /// `organizer`, `attendee` or `null`.
    side: Option<&'static str>,
    not_before: Option<String>,
    until: Option<String>,
    note: Option<String>,
    recorded_by: String,
    recorded_at: Option<String>,
    revoked_at: Option<String>,
    revoked_by: Option<String>,
    revoke_reason: Option<String>,
    /// Whether the grant is in force at the listing time.
    in_force: bool,
}

fn grant_json(grant: &Grant, at: Timestamp) -> GrantJson {
    let text = |time: Option<Timestamp>| time.and_then(|time| time.to_rfc3339().ok());
    GrantJson {
        id: grant.id.0,
        principal: grant.principal.clone(),
        delegate: grant.delegate.clone(),
        methods: grant
            .scope
            .methods
            .as_ref()
            .map(|methods| methods.iter().map(|method| method.as_str()).collect()),
        side: grant.scope.side.map(Side::as_str),
        not_before: text(grant.not_before),
        until: text(grant.until),
        note: grant.note.clone(),
        recorded_by: grant.recorded_by.clone(),
        recorded_at: text(Some(grant.recorded_at)),
        revoked_at: text(grant.revocation.as_ref().map(|revocation| revocation.at)),
        revoked_by: grant.revocation.as_ref().map(|r| r.by.clone()),
        revoke_reason: grant.revocation.as_ref().and_then(|r| r.reason.clone()),
        in_force: grant.is_valid_at(at),
    }
}

fn list(args: &ListArgs) -> Result<(), DelegateError> {
    let opened = Opened::open(&args.store, false)?;
    let at = timestamp(args.at.unwrap_or_else(now));
    let filter = GrantFilter {
        principal: args.principal.clone(),
        delegate: args.delegate.clone(),
        include_revoked: args.all,
    };
    let grants = opened
        .store
        .list(&filter, if args.all { None } else { Some(at) })
        .map_err(opened.failed())?;
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let rows: Vec<GrantJson> = grants.iter().map(|grant| grant_json(grant, at)).collect();
        serde_json::to_writer_pretty(&mut out, &rows)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        let rows: Vec<Vec<String>> = grants
            .iter()
            .map(|grant| {
                let status = if grant.revocation.as_ref().is_some_and(|r| r.at <= at) {
                    "revoked"
                } else if grant.is_valid_at(at) {
                    "in force"
                } else if grant.until.is_some_and(|until| until <= at) {
                    "expired"
                } else {
                    "not yet"
                };
                vec![
                    grant.id.0.to_string(),
                    grant.principal.clone(),
                    grant.delegate.clone(),
                    scope_text(&grant.scope),
                    time_text(grant.not_before),
                    time_text(grant.until),
                    status.to_string(),
                    grant.note.clone().unwrap_or_default(),
                ]
            })
            .collect();
        print_table(
            &mut out,
            &[
                "id",
                "principal",
                "delegate",
                "methods",
                "from",
                "until",
                "status",
                "note",
            ],
            &rows,
        )
    };
    written.map_err(|source| DelegateError::Write {
        path: PathBuf::from("-"),
        source,
    })
}

/// A history line as `delegate history --json` prints it.
#[derive(Debug, Serialize)]
struct HistoryJson {
    sequence: i64,
    grant: i64,
    action: &'static str,
    at: Option<String>,
    by: String,
    principal: String,
    delegate: String,
    detail: Option<String>,
}

fn action_text(entry: &HistoryEntry) -> &'static str {
    match entry.action {
        imipsec_policy::HistoryAction::Granted => "granted",
        imipsec_policy::HistoryAction::Imported => "imported",
        imipsec_policy::HistoryAction::Revoked => "revoked",
    }
}

fn history(args: &HistoryArgs) -> Result<(), DelegateError> {
    let opened = Opened::open(&args.store, false)?;
    let entries = opened
        .store
        .history(Some(&args.principal))
        .map_err(opened.failed())?;
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let rows: Vec<HistoryJson> = entries
            .iter()
            .map(|entry| HistoryJson {
                sequence: entry.sequence,
                grant: entry.grant_id.0,
                action: action_text(entry),
                at: entry.at.to_rfc3339().ok(),
                by: entry.by.clone(),
                principal: entry.principal.clone(),
                delegate: entry.delegate.clone(),
                detail: entry.detail.clone(),
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &rows)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|entry| {
                vec![
                    time_text(Some(entry.at)),
                    action_text(entry).to_string(),
                    entry.grant_id.0.to_string(),
                    entry.principal.clone(),
                    entry.delegate.clone(),
                    entry.by.clone(),
                    entry.detail.clone().unwrap_or_default(),
                ]
            })
            .collect();
        print_table(
            &mut out,
            &[
                "at",
                "action",
                "grant",
                "principal",
                "delegate",
                "by",
                "detail",
            ],
            &rows,
        )
    };
    written.map_err(|source| DelegateError::Write {
        path: PathBuf::from("-"),
        source,
    })
}

fn import(args: &ImportArgs) -> Result<(), DelegateError> {
    let json = read_bounded(&args.file)?;
    let opened = Opened::open(&args.store, true)?;
    let at = timestamp(args.at.unwrap_or_else(now));
    let count = opened
        .store
        .import_json(&json, &recorder(args.by.as_deref()), at)
        .map_err(opened.failed())?;
    println!("imported {count} grant(s) from {}", args.file.display());
    Ok(())
}

fn read_bounded(path: &Path) -> Result<String, DelegateError> {
    let failed = |source| DelegateError::ReadImport {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(failed)?;
    let mut text = String::new();
    file.take(MAX_IMPORT_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(failed)?;
    if text.len() as u64 > MAX_IMPORT_BYTES {
        return Err(DelegateError::ImportTooLarge {
            path: path.to_path_buf(),
            limit: MAX_IMPORT_BYTES,
        });
    }
    Ok(text)
}

fn export(args: &ExportArgs) -> Result<(), DelegateError> {
    let opened = Opened::open(&args.store, false)?;
    let json = opened.store.export_json().map_err(opened.failed())?;
    match args.file.as_deref().filter(|path| *path != Path::new("-")) {
        Some(path) => {
            std::fs::write(path, format!("{json}\n")).map_err(|source| DelegateError::Write {
                path: path.to_path_buf(),
                source,
            })
        }
        None => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{json}").map_err(|source| DelegateError::Write {
                path: PathBuf::from("-"),
                source,
            })
        }
    }
}

fn print_table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|title| title.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| {
        let text: Vec<String> = cells
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", text.join("  ").trim_end())
    };
    line(out, &mut header.iter().copied())?;
    for row in rows {
        line(out, &mut row.iter().map(String::as_str))?;
    }
    if rows.is_empty() {
        writeln!(out, "(none)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &str) -> Vec<String> {
        text.split(',').map(str::to_string).collect()
    }

    #[test]
    fn methods_parse_into_scopes() {
        assert_eq!(scope(&items("all")).unwrap(), GrantScope::all());
        assert_eq!(
            scope(&items("organizer")).unwrap(),
            GrantScope::side(Side::Organizer)
        );
        assert_eq!(
            scope(&items("request,CANCEL")).unwrap(),
            GrantScope::methods(&[Method::Request, Method::Cancel])
        );
        assert!(matches!(
            scope(&items("all,REQUEST")),
            Err(DelegateError::AllCombined)
        ));
        assert!(matches!(
            scope(&items("organizer,attendee")),
            Err(DelegateError::TwoSides)
        ));
        assert!(matches!(
            scope(&items("INVITE")),
            Err(DelegateError::UnknownMethod { .. })
        ));
    }
}
