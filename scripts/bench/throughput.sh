#!/usr/bin/env bash
# Throughput of `imipsec audit` against OpenSSL's in-process SMIME_read_CMS + CMS_verify
# (issue 17), in one run, on the same files and the same core. Usage, from anywhere:
#
#   scripts/bench/throughput.sh
#
# Needs bash, a C compiler, OpenSSL 3 headers (libssl-dev), taskset, GNU time (peak RSS), cargo.
# Environment (defaults in brackets):
#   BENCH_COUNT [3000]          messages per set
#   BENCH_ROUNDS [3]            alternating rounds of baseline / audit
#   BENCH_CORE [1]              the core of the one-core runs
#   BENCH_CORES [0,1]           the cores of the two-core run
#   BENCH_PER_PROCESS [200]     messages of the one-process-per-message comparison
#   BENCH_BIG [30000]           messages of the large set for peak memory (0: skip)
#   IMIPSEC                     an imipsec binary (default: cargo build --release)
#
# What it does (all files in a temporary folder, removed at the end):
#  1. builds scripts/bench/cmsbench.c with `cc -O2 ... -lcrypto` (the C baseline, and the
#     generator of the messages: CMS_sign in process, so 3,000 distinct messages take seconds);
#  2. set "1cert": BENCH_COUNT distinct detached-signed ~4 KB REQUESTs (RSA-2048, SHA-256)
#     from organizer@example.com carrying only the signer certificate; anchors = its issuer
#     and the root (imipsec builds paths up to a self-signed root, so the issuer alone is
#     not enough: both sides get both). Set "inter": the same with the intermediate in the
#     message; anchor = certs/root.cert.pem alone;
#  3. per set, BENCH_ROUNDS rounds of `cmsbench verify` then `imipsec audit --jsonl`, both
#     under `taskset -c BENCH_CORE`, wall and CPU (user + system) time of the whole process,
#     to the microsecond (`cmsbench time`);
#     prints messages/s (wall) and messages per CPU-second, the ratio audit/baseline of each
#     round and the median ratios (on a busy machine the CPU ratio is the steadier one);
#  4. audit of set 1cert on BENCH_CORES vs BENCH_CORE, alternating: the scaling ratio;
#  5. BENCH_PER_PROCESS messages, one process each, alternating per message: `imipsec
#     verify` vs `openssl cms -verify`, pinned to BENCH_CORE: the cost ratio (target <= 1);
#  6. peak RSS (GNU time %M) of audit over BENCH_COUNT and BENCH_BIG messages, as a folder
#     of .eml files and as one mbox.
# Every audit run must accept every message (checked): a faster audit that rejects is a bug.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
certs=$root/certs
count=${BENCH_COUNT:-3000}
rounds=${BENCH_ROUNDS:-3}
core=${BENCH_CORE:-1}
cores=${BENCH_CORES:-0,1}
per_process=${BENCH_PER_PROCESS:-200}
big=${BENCH_BIG:-30000}

if [ -z "${IMIPSEC:-}" ]; then
  (cd "$root" && cargo build --release --quiet --bin imipsec)
  IMIPSEC=${CARGO_TARGET_DIR:-$root/target}/release/imipsec
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cc -O2 -o "$work/cmsbench" "$here/cmsbench.c" -lcrypto
organizer=$certs/rsa2048/organizer
mkdir "$work/1cert" "$work/inter"
"$work/cmsbench" gen "$work/1cert" "$count" "$organizer.cert.pem" "$organizer.key.pem"
"$work/cmsbench" gen "$work/inter" "$count" "$organizer.cert.pem" "$organizer.key.pem" \
  "$certs/intermediate.cert.pem"
# The evaluation time: now (the messages' Date and signingTime), for both sides.
epoch=$(date -u +%s)
at=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
anchor_1cert=$work/anchors.pem
cat "$certs/intermediate.cert.pem" "$certs/root.cert.pem" >"$anchor_1cert"
anchor_inter=$certs/root.cert.pem

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# timed OUT COMMAND...: runs COMMAND (output discarded), writes "wall-seconds cpu-seconds"
# (user + system) to OUT, to the microsecond (cmsbench time).
timed() {
  local out=$1
  shift
  "$work/cmsbench" time "$out" "$@"
}
# rates COUNT TIMES-FILE: "wall-rate cpu-rate" in messages per second (per CPU-second).
rates() {
  awk -v n="$1" '{ printf "%.0f %.0f", n / $1, n / ($2 > 0 ? $2 : 0.001) }' "$2"
}

# baseline SET ANCHOR: "wall-rate cpu-rate" of the C program on $core.
baseline() {
  timed "$work/times" taskset -c "$core" "$work/cmsbench" verify "$2" "$epoch" "$work/$1" \
    >/dev/null
  rates "$count" "$work/times"
}

# audit CORES DIR ANCHOR EXPECTED: "wall-rate cpu-rate" of `imipsec audit --jsonl` on CORES;
# every message must be accepted.
audit() {
  local accepted
  timed "$work/times" taskset -c "$1" "$IMIPSEC" audit "$2" --trust "$3" --at "$at" \
    --jsonl "$work/out.jsonl" --no-progress >/dev/null
  accepted=$(grep -c '"verdict":"accept"' "$work/out.jsonl" || true)
  if [ "$accepted" != "$4" ]; then
    echo "audit accepted $accepted of $4 messages in $2; first other row:" >&2
    grep -v '"verdict":"accept"' "$work/out.jsonl" | sed -n 1p >&2
    exit 1
  fi
  rates "$4" "$work/times"
}

echo "imipsec throughput bench (issue 17): $count messages per set, $rounds rounds, core $core"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(openssl version)"
echo

for set in 1cert inter; do
  anchor_var=anchor_$set
  anchor=${!anchor_var}
  wall_ratios=""
  cpu_ratios=""
  echo "== set $set (anchor $(basename "$anchor")): one core ($core)"
  echo "   messages/s wall (messages per CPU-second)"
  for round in $(seq "$rounds"); do
    read -r bw bc <<<"$(baseline "$set" "$anchor")"
    read -r aw ac <<<"$(audit "$core" "$work/$set" "$anchor" "$count")"
    wall_ratios="$wall_ratios $(ratio "$aw" "$bw")"
    cpu_ratios="$cpu_ratios $(ratio "$ac" "$bc")"
    printf '  round %d: openssl CMS_verify %6d/s (%6d)   imipsec audit %6d/s (%6d)   ratio %s (%s)\n' \
      "$round" "$bw" "$bc" "$aw" "$ac" "$(ratio "$aw" "$bw")" "$(ratio "$ac" "$bc")"
  done
  echo "  ratio audit/openssl, median of $rounds rounds: wall $(echo "$wall_ratios" | median), CPU $(echo "$cpu_ratios" | median)"
  echo
done

echo "== two cores ($cores) vs one ($core): imipsec audit, set 1cert, messages/s wall"
ratios=""
for round in $(seq "$rounds"); do
  read -r one _ <<<"$(audit "$core" "$work/1cert" "$anchor_1cert" "$count")"
  read -r two _ <<<"$(audit "$cores" "$work/1cert" "$anchor_1cert" "$count")"
  r=$(ratio "$two" "$one")
  ratios="$ratios $r"
  printf '  round %d: one core %6d/s   two cores %6d/s   ratio %s\n' "$round" "$one" "$two" "$r"
done
echo "  scaling two/one (median of $rounds rounds): $(echo "$ratios" | median)"
echo

echo "== one process per message, $per_process messages, core $core, set 1cert"
files=$(find "$work/1cert" -name '*.eml' | sort | sed -n "1,${per_process}p") # not head: SIGPIPE + pipefail
ratios=""
for round in $(seq "$rounds"); do
  # Alternating per message (openssl, then imipsec, on the same file), so that a change in
  # the host's load falls on both sides alike; each process timed alone (cmsbench time).
  : >"$work/o.times"
  : >"$work/i.times"
  for f in $files; do
    timed "$work/t" taskset -c "$core" openssl cms -verify -in "$f" -CAfile "$anchor_1cert" \
      -attime "$epoch" -out /dev/null 2>/dev/null
    cat "$work/t" >>"$work/o.times"
    timed "$work/t" taskset -c "$core" "$IMIPSEC" verify "$f" --trust "$anchor_1cert" --at "$at"
    cat "$work/t" >>"$work/i.times"
  done
  o=$(awk -v n="$per_process" '{ w += $1 } END { printf "%.2f", w * 1000 / n }' "$work/o.times")
  i=$(awk -v n="$per_process" '{ w += $1 } END { printf "%.2f", w * 1000 / n }' "$work/i.times")
  r=$(ratio "$i" "$o")
  ratios="$ratios $r"
  printf '  round %d: openssl cms -verify %s ms/message   imipsec verify %s ms/message   cost ratio %s\n' \
    "$round" "$o" "$i" "$r"
done
echo "  cost ratio imipsec/openssl (median; target <= 1): $(echo "$ratios" | median)"
echo

# peak LABEL PATH EXPECTED: peak RSS of audit (one core).
peak() {
  /usr/bin/time -f %M -o "$work/rss" taskset -c "$core" "$IMIPSEC" audit "$2" \
    --trust "$anchor_1cert" --at "$at" --jsonl "$work/out.jsonl" --no-progress >/dev/null
  local accepted
  accepted=$(grep -c '"verdict":"accept"' "$work/out.jsonl" || true)
  printf '  %-28s %6d kB peak RSS (%s of %s accepted)\n' "$1" "$(cat "$work/rss")" "$accepted" "$3"
}
# mbox DIR > mbox: the folder's messages as one mbox (none has a line starting "From ").
mbox() {
  find "$1" -name '*.eml' | sort | while read -r f; do
    printf 'From bench@example.com Thu Jan  1 00:00:00 2026\n'
    cat "$f"
    printf '\n'
  done
}
echo "== peak memory of imipsec audit (flat in mailbox size)"
mbox "$work/1cert" >"$work/small.mbox"
peak "$count messages, folder" "$work/1cert" "$count"
peak "$count messages, mbox" "$work/small.mbox" "$count"
if [ "$big" -gt 0 ]; then
  rm -rf "$work/inter" "$work/small.mbox"
  mkdir "$work/big"
  "$work/cmsbench" gen "$work/big" "$big" "$organizer.cert.pem" "$organizer.key.pem"
  mbox "$work/big" >"$work/big.mbox"
  peak "$big messages, folder" "$work/big" "$big"
  peak "$big messages, mbox" "$work/big.mbox" "$big"
fi
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
