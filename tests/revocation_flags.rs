//! `--fetch-revocation`, `--revocation-cache` and their `[trust]` keys (issue #13) at the
//! command line: what is refused before anything runs, and what `--check-config` leaves
//! untouched. The fetching itself is tested against real servers in `revocation_fetch.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;

fn gate_config(dir: &std::path::Path, trust_extra: &str) -> std::path::PathBuf {
    let config = dir.join("imipsec.toml");
    std::fs::write(
        &config,
        format!(
            "[trust]\nanchors = [{:?}]\n{trust_extra}[store]\npath = \"state/policy.db\"\n\
             [gate]\nauthserv_id = \"mx.gate.test\"\n[gate.milter]\nlisten = \"127.0.0.1:8891\"\n",
            root_ca()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.join("state")).unwrap();
    config
}

/// `--check-config` with fetching on creates nothing: not the store, not the default
/// revocation cache beside it (the gate creates both when it starts).
#[test]
fn check_config_with_fetch_revocation_creates_no_cache_folder() {
    let dir = tempfile::tempdir().unwrap();
    let config = gate_config(dir.path(), "fetch_revocation = true\n");
    let run = check_config(&config);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(!dir.path().join("state/revocation-cache").exists());
    assert!(!dir.path().join("state/policy.db").exists());
}

/// A revocation cache that is a file, or whose folder does not exist, is refused before the
/// gate listens (exit 2, one line naming it), by `--check-config` too.
#[test]
fn unusable_revocation_cache_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-file"), b"").unwrap();
    for cache in ["a-file", "missing/cache"] {
        let sub = dir.path().join(cache.replace('/', "-") + "-case");
        std::fs::create_dir(&sub).unwrap();
        let path = dir.path().join(cache);
        let config = gate_config(
            &sub,
            &format!(
                "fetch_revocation = true\nrevocation_cache = {:?}\n",
                path.display().to_string()
            ),
        );
        for extra in [&["--check-config"][..], &[][..]] {
            let mut args = vec!["gate", "--config", config.to_str().unwrap()];
            args.extend_from_slice(extra);
            let run = imipsec(args, b"");
            assert_eq!(run.status, 2, "{cache} {extra:?}: {}", run.stderr);
            assert!(run.stderr.contains(cache), "{}", run.stderr);
            assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
        }
    }
}

/// `verify --revocation-cache FILE` with fetching on cannot evaluate (exit 2): the cache is
/// checked when the fetcher is built, before the message is read.
#[test]
fn verify_refuses_a_revocation_cache_that_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cache");
    std::fs::write(&file, b"").unwrap();
    let run = verify(
        b"",
        &[
            "--fetch-revocation",
            "--revocation-cache",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("revocation cache"), "{}", run.stderr);
}
