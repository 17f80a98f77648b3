//! Hidden `imipsec generate`: shell completions and man pages, from the same clap
//! definitions as the parser so they never drift (a test checks `doc/`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::{Cli, GenerateArgs, GenerateCommand};
use crate::cmd::Exit;

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
        pages.push((man.get_filename(), page));
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
        assert!(!names.iter().any(|name| name.contains("generate")));
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
