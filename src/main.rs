//! `imipsec`: verify-then-process security gate, audit and signer for iMIP calendar email.
//!
//! The binary is glue: argument parsing (`cli`), configuration (`config`), and one module per
//! command (`cmd`); the work lives in the workspace crates.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod cli;
mod cmd;
mod config;
mod logging;
mod setup;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cmd::run(cli.command).into()
}
