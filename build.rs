//! Build script of the `imipsec` binary: one link decision, for start-up cost (issue 17).
//!
//! On Linux with glibc, the standard library takes its unwinder from `libgcc_s.so.1`. Loading
//! that library runs its constructor `__cpu_indicator_init` (GCC's CPU model detection for
//! `__builtin_cpu_supports`), which executes the CPUID instruction about a dozen times. In a
//! virtual machine every CPUID traps to the hypervisor: 6.6 µs each on the benchmark host, about
//! 90 µs of the 4.8 ms a one-message `imipsec verify` process costs (BENCHMARKS.md, "Eleventh
//! round"), for a library whose CPU detection the binary never uses.
//!
//! GCC's static unwinder, `libgcc_eh.a` (what `-static-libgcc` and Rust's own `crt-static`
//! builds link), is linked whole into the binary instead: it defines every `_Unwind_*` symbol
//! the standard library needs, so the linker, which rustc runs with `--as-needed`, leaves
//! `libgcc_s.so.1` out. Unwinding itself is the same code: the gate's `catch_unwind` around a
//! decision and a panicking thread still unwind (test in `src/main.rs`, which also fails if
//! `libgcc_s.so.1` is loaded again).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let crt_static = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|feature| feature == "crt-static");
    // With crt-static the standard library links libgcc_eh itself.
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" && !crt_static
    {
        println!("cargo:rustc-link-lib=static:+whole-archive=gcc_eh");
    }
}
