//! Hidden `imipsec generate`: shell completions and the man page, from the same clap
//! definitions as the parser so they never drift (a test checks `doc/imipsec.1`).

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, GenerateArgs, GenerateCommand};
use crate::cmd::Exit;

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// Standard output could not be written.
    #[error("cannot write to standard output")]
    Write(#[from] std::io::Error),
}

/// Runs `imipsec generate`.
pub fn run(args: &GenerateArgs) -> Result<Exit, GenerateError> {
    let mut out = std::io::stdout().lock();
    match args.what {
        GenerateCommand::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "imipsec", &mut out);
        }
        GenerateCommand::Man => out.write_all(&man_page()?)?,
    }
    out.flush()?;
    Ok(Exit::Success)
}

/// The man page: the top-level page followed by a section per visible command.
pub fn man_page() -> Result<Vec<u8>, std::io::Error> {
    let command = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    Ok(page)
}
