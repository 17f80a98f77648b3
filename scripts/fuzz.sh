#!/usr/bin/env bash
# Build imipsec's fuzz targets (fuzz/, libFuzzer through the libfuzzer-sys crate) and run
# each one for a bounded time. Fails on any crash, panic, failed invariant, timeout
# (-timeout=10 per input) or out-of-memory (-rss_limit_mb=2048).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     SECONDS per target, default 60; default all
#
# Needs nothing beyond the Rust 1.95 toolchain, a C++ compiler (libFuzzer is compiled by
# the libfuzzer-sys build script), the openssl CLI (seed messages) and network access to
# crates.io on the first build. It does not use cargo-fuzz: cargo-fuzz only wraps the same
# `cargo build` with these RUSTFLAGS, and installing it would cost CI a compile of its own.
# The sanitizer-coverage flags are unstable, so the fuzz build (and only it) runs with
# RUSTC_BOOTSTRAP=1. No AddressSanitizer: every imipsec crate forbids unsafe code, and the
# C code underneath (OpenSSL from the system, bundled SQLite) is not instrumented by
# RUSTFLAGS anyway, so ASan would slow every run without checking anything more.
#
# Crashing inputs land in fuzz/artifacts/TARGET/; replay one with
#   "$CARGO_TARGET_DIR/<host>/release/TARGET" fuzz/artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
shift || true
all=(mime_walk cms_verify cms_structure openpgp itip itip_full_text pipeline sign_verify_roundtrip gate_mime gate_protocols)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi

host="$(rustc -vV | sed -n 's/^host: //p')"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
bin_dir="$target_dir/$host/release"

echo "fuzz: building ${#targets[@]} targets (release, sanitizer coverage)" >&2
RUSTC_BOOTSTRAP=1 \
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing" \
  cargo build --release --target "$host" --target-dir "$target_dir" --bins >&2

./seed.sh >&2

passed=0
failed=0
mkdir -p logs
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  log="logs/$target.log"
  start=$SECONDS
  if "$bin_dir/$target" "corpus/$target" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
      -artifact_prefix="artifacts/$target/" -print_final_stats=1 >"$log" 2>&1; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)"
    echo "$target: ok ($((SECONDS - start)) s, ${runs:-?} runs, coverage ${cov:-?})"
    passed=$((passed + 1))
  else
    echo "$target: FAILED ($((SECONDS - start)) s) see fuzz/$log and fuzz/artifacts/$target/"
    grep -m 5 -E 'ERROR|panicked|deadly signal|timeout|out-of-memory' "$log" | sed 's/^/  /' || true
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
