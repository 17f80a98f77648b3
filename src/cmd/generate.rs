//! `imipsec generate`: shell completions and man pages, from the same clap definitions as the
//! parser so they never drift (a test checks `doc/`). The pages add the sections clap does
//! not know (EXIT STATUS, ENVIRONMENT, FILES, CONFIGURATION, SEE ALSO); CONFIGURATION lists
//! the keys read from the configuration's own deserialiser ([`Config::known_keys`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::{Cli, GenerateArgs, GenerateCommand};
use crate::cmd::Exit;
use crate::config::Config;

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// Standard output could not be written.
    #[error("cannot write to standard output")]
    Stdout(#[source] std::io::Error),
    /// A man page file could not be written.
    #[error("cannot write {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Runs `imipsec generate`.
pub fn run(args: &GenerateArgs) -> Result<Exit, GenerateError> {
    let mut out = std::io::stdout().lock();
    match &args.what {
        GenerateCommand::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "imipsec", &mut out);
        }
        GenerateCommand::Man { dir: Some(dir) } => write_man_pages(dir)?,
        GenerateCommand::Man { dir: None } => {
            let pages = man_pages().map_err(GenerateError::Stdout)?;
            if let Some((_, page)) = pages.first() {
                out.write_all(page).map_err(GenerateError::Stdout)?;
            }
        }
    }
    out.flush().map_err(GenerateError::Stdout)?;
    Ok(Exit::Success)
}

fn write_man_pages(dir: &Path) -> Result<(), GenerateError> {
    let pages = man_pages().map_err(GenerateError::Stdout)?;
    for (name, page) in pages {
        let path = dir.join(name);
        std::fs::write(&path, page).map_err(|source| GenerateError::File { path, source })?;
    }
    Ok(())
}

/// Every man page: `imipsec.1` first, then one per visible command (`imipsec-audit.1`,
/// `imipsec-delegate-grant.1`, ...), as (file name, roff).
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>, std::io::Error> {
    fn add(command: clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        let man = clap_mangen::Man::new(command.clone());
        let mut page = Vec::new();
        man.render(&mut page)?;
        let name = man.get_filename();
        page.extend_from_slice(extra_sections(&name).as_bytes());
        pages.push((name, page));
        for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
            add(sub.clone(), pages)?;
        }
        Ok(())
    }
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    add(command, &mut pages)?;
    Ok(pages)
}

/// Escapes text for roff: backslashes, hyphens (so they stay ASCII hyphens when copied) and
/// a leading control character.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// A section of tagged paragraphs (`.TP`): (tag, text) pairs.
fn tagged(title: &str, items: &[(&str, &str)]) -> String {
    let mut out = format!(".SH \"{title}\"\n");
    for (tag, text) in items {
        out.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(tag), roff(text)));
    }
    out
}

/// The exit statuses of the command a page is for (`imipsec-delegate-grant.1` → delegate).
fn exit_statuses(page: &str) -> Vec<(&'static str, &'static str)> {
    let command = page
        .trim_end_matches(".1")
        .strip_prefix("imipsec-")
        .unwrap_or("");
    let group = command.split('-').next().unwrap_or("");
    match group {
        "" => vec![
            ("0", "accepted (verify); done (every other command)"),
            (
                "1",
                "rejected (verify); refused because a gate would reject it (sign)",
            ),
            (
                "2",
                "could not evaluate or run: bad arguments, unreadable input, configuration or store error",
            ),
        ],
        "verify" => vec![
            ("0", "accepted"),
            (
                "1",
                "rejected; the reasons are printed (--json gives them as codes)",
            ),
            (
                "2",
                "could not evaluate: bad arguments, unreadable input, configuration or store error",
            ),
        ],
        "sign" => vec![
            ("0", "the signed message was written to standard output"),
            (
                "1",
                "refused: a gate would reject the message or the identity; the reason code is printed on standard error",
            ),
            (
                "2",
                "could not sign: bad arguments (no --identity), unreadable identity or input; nothing is written to standard output",
            ),
        ],
        "audit" => vec![
            ("0", "the audit ran, whatever the verdicts"),
            (
                "2",
                "the audit could not run: bad arguments, unreadable path, configuration or store error",
            ),
        ],
        "gate" => vec![
            (
                "0",
                "stopped by SIGTERM or SIGINT after draining the transactions in flight",
            ),
            (
                "2",
                "could not start: configuration, trust anchors, store or listener error",
            ),
        ],
        _ => vec![
            ("0", "done"),
            (
                "2",
                "error: bad arguments, unreadable or invalid store, configuration or file",
            ),
        ],
    }
}

const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "IMIPSEC_CONFIG",
        "Configuration file, when --config is absent.",
    ),
    (
        "IMIPSEC_STORE",
        "Policy store, when --store is absent (overrides [store] path).",
    ),
    (
        "the variable named by --identity-password-env or password_env",
        "Password of a PKCS#12 identity or an encrypted PEM key. --password-file FILE (or password_file) reads it from the first line of a file instead.",
    ),
    (
        "RUST_LOG",
        "Log filter of the gate (default info), e.g. imipsec_gate=debug.",
    ),
    (
        "NO_COLOR",
        "When set, the gate's text logs carry no colour even on a terminal (they never do when standard error is not a terminal).",
    ),
];

const FILES: &[(&str, &str)] = &[
    (
        "/etc/imipsec/imipsec.toml",
        "Conventional place of the configuration (there is no built-in default; give --config or IMIPSEC_CONFIG). examples/imipsec.toml in the source tree sets every key.",
    ),
    (
        "/var/lib/imipsec/policy.db",
        "Conventional place of the policy store (SQLite, with -wal and -shm files beside it). Create it with imipsec store init --store PATH.",
    ),
    (
        "/usr/share/doc/imipsec/contrib/",
        "Deployment snippets: systemd units, Postfix, Dovecot and Cyrus settings (contrib/ in the source tree).",
    ),
];

/// The CONFIGURATION section: the file's format and every key, read from the deserialiser.
fn configuration(full: bool) -> String {
    let mut out = String::from(".SH CONFIGURATION\n");
    out.push_str(&roff(
        "A TOML file shared by every command (--config FILE or IMIPSEC_CONFIG); flags override it. Unknown keys are an error that names the allowed keys; relative paths are resolved against the directory of the file.",
    ));
    out.push('\n');
    if !full {
        out.push_str(".PP\n");
        out.push_str(&roff("Every key is listed in imipsec(1); examples/imipsec.toml sets each one with a comment."));
        out.push('\n');
        return out;
    }
    out.push_str(".PP\n");
    out.push_str(&roff("The keys of each table ([[identities]] is an array of tables, one per identity); examples/imipsec.toml sets each one with a comment:"));
    out.push('\n');
    // Grouped by table, in the order the tables first appear.
    let mut tables: Vec<(String, Vec<String>)> = Vec::new();
    for key in Config::known_keys() {
        let (table, leaf) = key.rsplit_once('.').unwrap_or(("", key.as_str()));
        match tables.iter_mut().find(|(name, _)| name == table) {
            Some((_, leaves)) => leaves.push(leaf.to_owned()),
            None => tables.push((table.to_owned(), vec![leaf.to_owned()])),
        }
    }
    for (table, leaves) in tables {
        let heading = if table.is_empty() {
            "(top level)".to_owned()
        } else if let Some(array) = table.strip_suffix("[]") {
            format!("[[{array}]]")
        } else {
            format!("[{table}]")
        };
        out.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            roff(&heading),
            roff(&leaves.join(", "))
        ));
    }
    out
}

/// SEE ALSO: the parent page, the pages of the subcommands' group, and the tools imipsec
/// works with.
fn see_also(page: &str) -> String {
    let mut references: Vec<String> = Vec::new();
    let stem = page.trim_end_matches(".1");
    if stem != "imipsec" {
        references.push("imipsec(1)".to_owned());
    }
    if let Some((parent, _)) = stem.rsplit_once('-')
        && parent != "imipsec"
    {
        references.push(format!("{parent}(1)"));
    }
    if stem == "imipsec" {
        for command in [
            "verify", "sign", "audit", "delegate", "store", "gate", "generate",
        ] {
            references.push(format!("imipsec-{command}(1)"));
        }
    }
    for tool in ["openssl-cms(1)", "gpgsm(1)"] {
        references.push(tool.to_owned());
    }
    if stem.starts_with("imipsec-gate") || stem == "imipsec" {
        references.push("postconf(5)".to_owned());
    }
    format!(
        ".SH \"SEE ALSO\"\n{}\n.PP\n{}\n",
        roff(&references.join(", ")),
        roff(
            "RFC 6047 (iMIP), RFC 5546 (iTIP), RFC 8551 (S/MIME 4.0), RFC 8550 (certificates), RFC 8601 (Authentication-Results)."
        )
    )
}

/// The sections appended to the clap-generated page `page`.
fn extra_sections(page: &str) -> String {
    let mut out = tagged("EXIT STATUS", &exit_statuses(page));
    out.push_str(&tagged("ENVIRONMENT", ENVIRONMENT));
    out.push_str(&tagged("FILES", FILES));
    out.push_str(&configuration(
        page == "imipsec.1" || page == "imipsec-gate.1",
    ));
    out.push_str(&see_also(page));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `doc/` must match the clap definitions: regenerate with
    /// `cargo run -- generate man --dir doc` after changing `src/cli.rs`.
    #[test]
    fn checked_in_man_pages_are_up_to_date() {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("doc");
        let pages = man_pages().unwrap();
        for (name, page) in &pages {
            let checked_in = std::fs::read(doc.join(name)).unwrap_or_default();
            assert!(
                checked_in == *page,
                "doc/{name} is stale or missing: run `cargo run -- generate man --dir doc`"
            );
        }
        let mut stale: Vec<String> = std::fs::read_dir(&doc)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".1") && !pages.iter().any(|(page, _)| page == name))
            .collect();
        stale.sort();
        assert!(stale.is_empty(), "doc/ has pages for no command: {stale:?}");
    }

    // Issue #14: the man pages lacked FILES, ENVIRONMENT, configuration and SEE ALSO.
    #[test]
    fn every_page_has_the_unix_sections_and_the_top_page_lists_every_key() {
        let pages = man_pages().unwrap();
        for (name, page) in &pages {
            let page = String::from_utf8_lossy(page);
            for section in [
                ".SH \"EXIT STATUS\"",
                ".SH \"ENVIRONMENT\"",
                ".SH \"FILES\"",
                ".SH CONFIGURATION",
                ".SH \"SEE ALSO\"",
            ] {
                assert!(page.contains(section), "{name} lacks {section}");
            }
        }
        let top = String::from_utf8_lossy(&pages[0].1).into_owned();
        assert!(
            top.contains("imipsec\\-generate(1)"),
            "generate missing from imipsec.1"
        );
        for key in Config::known_keys() {
            let leaf = key.rsplit('.').next().unwrap_or(&key);
            assert!(top.contains(&roff(leaf)), "imipsec.1 lacks {key}");
        }
    }

    #[test]
    fn every_command_has_a_page_and_completions_generate() {
        let names: Vec<String> = man_pages().unwrap().into_iter().map(|(n, _)| n).collect();
        for expected in [
            "imipsec.1",
            "imipsec-verify.1",
            "imipsec-sign.1",
            "imipsec-audit.1",
            "imipsec-delegate-grant.1",
            "imipsec-delegate-export.1",
        ] {
            assert!(names.iter().any(|name| name == expected), "{expected}");
        }
        // Issue #14: `generate` was hidden from --help and imipsec.1.
        assert!(names.iter().any(|name| name == "imipsec-generate.1"));
        assert!(names.iter().any(|name| name == "imipsec-store-init.1"));
        let mut bash = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "imipsec",
            &mut bash,
        );
        assert!(
            String::from_utf8(bash)
                .unwrap()
                .contains("--danger-allow-unsigned")
        );
    }
}
