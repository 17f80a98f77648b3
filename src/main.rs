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

/// mimalloc rather than glibc's allocator: the pipeline makes hundreds of small short-lived
/// allocations per message, and glibc's malloc and free were about a tenth of `audit`'s time
/// (BENCHMARKS.md, issue 17). The binary's choice; the library crates do not set one.
/// Built with `no_thp`: otherwise mimalloc asks for transparent huge pages on its arena, and
/// the kernel's zeroing and later splitting of 2 MiB pages cost a one-message `verify`
/// about 0.2 ms (of 5) and doubled `audit`'s peak memory, for no measurable speed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cmd::run(cli.command).into()
}
