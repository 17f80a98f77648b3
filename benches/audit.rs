//! `cargo bench --bench audit`: throughput and peak memory of `imipsec audit` over a large
//! generated mbox, compared with what an administrator would write today (a shell loop
//! over `openssl cms -verify`).
//!
//! The mailbox is generated at bench time in a temporary folder (never committed): the
//! signed messages of testdata/sample-mailbox replicated with distinct Message-IDs, by
//! default 100,000 of them (`IMIPSEC_BENCH_MESSAGES=N` to change). Peak memory is the
//! child's VmHWM from /proc, polled while it runs (Linux). The openssl loop runs on a
//! 1,000-message subset (`IMIPSEC_BENCH_OPENSSL_MESSAGES`) and is extrapolated: it checks
//! only the CMS signature and chain, not the iTIP roles, delegations or event state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const AT: &str = "2026-06-01T00:00:00Z";
const AT_EPOCH: &str = "1780272000";

fn count_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The sample mailbox's messages, each ending with a line end (no mbox quoting to undo:
/// none has a `From ` line).
fn sample_messages(root: &Path) -> Vec<Vec<u8>> {
    let mbox = std::fs::read(root.join("testdata/sample-mailbox/inbox.mbox")).unwrap();
    let text = String::from_utf8(mbox).unwrap();
    let mut messages = Vec::new();
    for chunk in text.split("\nFrom sample@imipsec.invalid ") {
        // Drop the rest of the separator line; the separator's blank line is already gone.
        let body = chunk.split_once('\n').unwrap().1;
        let mut message = body.trim_end_matches(['\r', '\n']).to_string();
        message.push_str("\r\n");
        messages.push(message.into_bytes());
    }
    messages
}

/// Rewrites the Message-ID so every copy is distinct (the header is outside the signature).
fn with_message_id(message: &[u8], index: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(message);
    text.replacen("Message-ID: <", &format!("Message-ID: <copy{index}-"), 1)
        .into_bytes()
}

fn write_mbox(path: &Path, messages: &[Vec<u8>], count: usize) -> u64 {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    for index in 0..count {
        let message = with_message_id(&messages[index % messages.len()], index);
        out.write_all(b"From bench@imipsec.invalid Mon Jun  1 00:00:00 2026\n")
            .unwrap();
        out.write_all(&message).unwrap();
        // The blank line that ends every mbox message.
        out.write_all(b"\n").unwrap();
    }
    out.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// Peak resident set size (VmHWM) of a running process, in kB.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Run {
    elapsed: Duration,
    peak_kb: u64,
    stdout: String,
}

fn run_audit(binary: &Path, root: &Path, mbox: &Path) -> Run {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .arg("audit")
        .arg(mbox)
        .arg("--trust")
        .arg(root.join("certs/root.cert.pem"))
        .arg("--crl")
        .arg(root.join("certs/intermediate.crl.pem"))
        .args(["--at", AT, "--no-progress"])
        .env_remove("IMIPSEC_STORE")
        .env_remove("IMIPSEC_CONFIG")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak_kb = 0;
    loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "audit failed: {output:?}");
    Run {
        elapsed: started.elapsed(),
        peak_kb,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

/// Runs the shell loop; returns its duration and how many messages openssl verified.
fn openssl_loop(root: &Path, folder: &Path) -> (Duration, usize) {
    // What an administrator would write today.
    let script = r#"verified=0
for f in "$1"/*.eml; do
  openssl cms -verify -in "$f" -CAfile "$2" -crl_check -attime "$3" -out /dev/null 2>/dev/null &&
    verified=$((verified + 1))
done
echo "$verified""#;
    // openssl cms takes CRLs only inside the -CAfile bundle.
    let bundle = folder.with_extension("ca-and-crl.pem");
    let mut pem = std::fs::read(root.join("certs/root.cert.pem")).unwrap();
    pem.extend(std::fs::read(root.join("certs/intermediate.crl.pem")).unwrap());
    std::fs::write(&bundle, pem).unwrap();
    let started = Instant::now();
    let output = Command::new("bash")
        .args(["-c", script, "loop"])
        .arg(folder)
        .arg(&bundle)
        .arg(AT_EPOCH)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let verified = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    (started.elapsed(), verified)
}

fn main() {
    // `cargo bench` passes --bench; any other argument filters benches we do not have.
    if std::env::args().skip(1).any(|arg| arg != "--bench") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_imipsec"));
    let count = count_from_env("IMIPSEC_BENCH_MESSAGES", 100_000);
    let openssl_count = count_from_env("IMIPSEC_BENCH_OPENSSL_MESSAGES", 1_000);
    let dir = tempfile::tempdir().unwrap();
    let messages = sample_messages(&root);

    let mbox = dir.path().join("big.mbox");
    let bytes = write_mbox(&mbox, &messages, count);
    println!(
        "audit: {count} messages ({:.0} MB mbox, {} distinct signed/forged/unsigned messages replicated)",
        bytes as f64 / 1e6,
        messages.len()
    );
    let run = run_audit(&binary, &root, &mbox);
    let seconds = run.elapsed.as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "imipsec audit: {seconds:.1} s wall, {:.0} messages/s, {:.1} MB/s, peak RSS {:.1} MB (VmHWM), {cores} cores",
        count as f64 / seconds,
        bytes as f64 / 1e6 / seconds,
        run.peak_kb as f64 / 1024.0
    );
    if let Some(line) = run.stdout.lines().next() {
        println!("  (its own summary: {line})");
    }
    assert!(
        run.stdout.contains(&format!("audited {count} messages")),
        "{}",
        run.stdout
    );

    // The administrator's loop, on a subset written as one file per message.
    let folder = dir.path().join("subset");
    std::fs::create_dir(&folder).unwrap();
    let subset = openssl_count.min(count);
    for index in 0..subset {
        let message = with_message_id(&messages[index % messages.len()], index);
        std::fs::write(folder.join(format!("{index:06}.eml")), message).unwrap();
    }
    let (loop_time, verified) = openssl_loop(&root, &folder);
    let per_message = loop_time.as_secs_f64() / subset as f64;
    println!(
        "openssl cms -verify shell loop: {subset} messages ({verified} verified) in {:.1} s ({:.0} messages/s); extrapolated to {count}: {:.0} s",
        loop_time.as_secs_f64(),
        1.0 / per_message,
        per_message * count as f64
    );
    let small = dir.path().join("subset.mbox");
    write_mbox(&small, &messages, subset);
    let subset_run = run_audit(&binary, &root, &small);
    println!(
        "imipsec audit on the same {subset}-message subset: {:.2} s; speed-up over the loop at {count}: {:.0}x",
        subset_run.elapsed.as_secs_f64(),
        per_message * count as f64 / seconds
    );
}
