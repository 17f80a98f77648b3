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
/// about 0.2 ms (of 5) and doubled `audit`'s peak memory, for no measurable speed. Built from
/// mimalloc's v2 line (Cargo.toml says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cmd::run(cli.command).into()
}

#[cfg(test)]
mod tests {
    /// `build.rs` links GCC's static unwinder in place of `libgcc_s.so.1` (issue 17): a panic
    /// must still unwind to `catch_unwind`, on this thread and on another (the gate catches a
    /// panicking decision and defers the message rather than dying), and `libgcc_s.so.1` must
    /// not be loaded (it is when the static unwinder is not linked).
    #[test]
    fn panics_unwind_through_the_static_unwinder_and_libgcc_s_is_not_loaded() {
        let caught = std::panic::catch_unwind(|| panic!("a panic to catch"));
        assert!(caught.is_err());
        let joined = std::thread::spawn(|| panic!("a panic in a thread")).join();
        assert!(joined.is_err());
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            assert!(
                !maps.contains("libgcc_s"),
                "libgcc_s.so.1 is loaded: build.rs did not link the static unwinder"
            );
        }
    }
}
