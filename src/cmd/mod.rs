//! One module per command; [`run`] dispatches and turns errors into exit status 2.

pub mod audit;
pub mod delegate;
pub mod gate;
pub mod generate;
pub mod sign;
pub mod verify;

use std::error::Error;
use std::process::ExitCode;

use crate::cli::Command;

/// How a command ended; the process exit status documented in `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: accepted (verify), done (every other command).
    Success,
    /// 1: the message was rejected (verify).
    Rejected,
    /// 2: the command could not evaluate; the reason was printed on stderr.
    Error,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        match exit {
            Exit::Success => ExitCode::SUCCESS,
            Exit::Rejected => ExitCode::from(1),
            Exit::Error => ExitCode::from(2),
        }
    }
}

/// Runs `command`; an error is printed on stderr with its chain of causes.
pub fn run(command: Command) -> Exit {
    let result = match command {
        Command::Verify(args) => verify::run(&args).map_err(boxed),
        Command::Sign(args) => sign::run(&args).map_err(boxed),
        Command::Audit(args) => audit::run(&args).map_err(boxed),
        Command::Delegate(args) => delegate::run(&args).map_err(boxed),
        Command::Gate(args) => gate::run(&args).map_err(boxed),
        Command::Generate(args) => generate::run(&args).map_err(boxed),
    };
    result.unwrap_or_else(|error| {
        report(error.as_ref());
        Exit::Error
    })
}

fn boxed<E: Error + 'static>(error: E) -> Box<dyn Error> {
    Box::new(error)
}

/// Prints `error: <error>: <cause>: <cause>` on stderr.
pub fn report(error: &dyn Error) {
    let mut line = format!("imipsec: error: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    eprintln!("{line}");
}
