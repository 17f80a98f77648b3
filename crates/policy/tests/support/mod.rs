//! Test support: the same test on both engines, and a real PostgreSQL started by the tests.
//!
//! [`Engine::Postgres`] tests start one PostgreSQL cluster per test binary (PostgreSQL 15
//! server binaries from `pg_config --bindir`): `initdb` into a temporary folder, `pg_ctl`
//! on a free loopback port, as the `postgres` user when the tests run as root. Every
//! store gets a database of its own. A watcher process stops the server by its PID (from
//! `postmaster.pid`) and removes the folder as soon as the test process has exited, since
//! Rust runs no destructor for a static.
//!
//! These tests are `#[ignore]`d in the plain `cargo test` (a fresh machine need not have
//! PostgreSQL); `.ci/run` installs `postgresql-15` and runs them with `-- --ignored`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use imipsec_policy::{PostgresStore, SqliteStore, Store, StoreLocation, StoreOptions};

/// Which engine a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Engine {
    /// SQLite in memory.
    Sqlite,
    /// A fresh database on the test cluster.
    Postgres,
}

impl Engine {
    /// A new, empty store.
    pub fn store(self) -> Store {
        self.store_with(&StoreOptions::default())
    }

    /// A new, empty store with options.
    pub fn store_with(self, options: &StoreOptions) -> Store {
        match self {
            Engine::Sqlite => Store::Sqlite(SqliteStore::open_in_memory_with(options).unwrap()),
            Engine::Postgres => {
                let url = cluster().new_database();
                Store::Postgres(Box::new(PostgresStore::open(&url, options).unwrap()))
            }
        }
    }
}

impl Engine {
    /// Where a new, empty store that several connections share lives: a SQLite file in
    /// `dir`, or a new database on the test cluster. Each [`Store::open`] of it is a
    /// connection of its own (a stand-in for one gate).
    pub fn shared_location(self, dir: &Path) -> StoreLocation {
        static N: AtomicUsize = AtomicUsize::new(0);
        match self {
            Engine::Sqlite => StoreLocation::path(&dir.join(format!(
                "shared-{}-{}.sqlite",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ))),
            Engine::Postgres => StoreLocation::parse(&cluster().new_database()),
        }
    }
}

/// Runs a test body on both engines: `name::sqlite` always, `name::postgres` with the
/// PostgreSQL tests (`-- --ignored`).
#[macro_export]
macro_rules! both_engines {
    ($( $(#[$meta:meta])* fn $name:ident($engine:ident: Engine) $body:block )*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                $(#[$meta])*
                fn run($engine: Engine) $body
                #[test]
                fn sqlite() {
                    run(Engine::Sqlite)
                }
                #[test]
                #[ignore = "starts PostgreSQL 15 (pg_config --bindir); .ci/run runs it"]
                fn postgres() {
                    run(Engine::Postgres)
                }
            }
        )*
    };
}

/// A PostgreSQL server running for this test process.
pub struct Cluster {
    /// Its loopback port.
    pub port: u16,
    /// Its data directory.
    pub data: PathBuf,
    log: PathBuf,
    next: AtomicUsize,
}

/// The cluster of this test process, started on first use.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::start)
}

/// The server binaries: `pg_config --bindir`, or Debian's PostgreSQL 15 folder when that
/// names a folder without `initdb` (the `pg_config` of `libpq-dev` alone says `/usr/bin`).
fn bindir() -> PathBuf {
    let debian = PathBuf::from("/usr/lib/postgresql/15/bin");
    let configured = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    match configured {
        Some(dir) if dir.join("initdb").exists() => dir,
        _ if debian.join("initdb").exists() => debian,
        _ => panic!(
            "PostgreSQL server binaries not found (pg_config --bindir, {}): \
             apt-get install postgresql-15",
            debian.display()
        ),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a server binary, as `postgres` when we are root (initdb refuses root).
fn as_server_user(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl Cluster {
    /// `initdb` + `pg_ctl start` in a fresh temporary folder on a free port, without
    /// fsync (tests).
    pub fn start() -> Cluster {
        Cluster::start_with(false)
    }

    /// The same, with `fsync` as given (on: as a production server runs, for figures).
    pub fn start_with(fsync: bool) -> Cluster {
        let base =
            std::env::temp_dir().join(format!("imipsec-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&base).unwrap();
        if running_as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&base)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = base.join("data");
        let bin = bindir();
        let output = as_server_user(&bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .unwrap();
        assert!(output.status.success(), "initdb: {output:?}");
        let port = free_port();
        // In postgresql.conf, so that a restart keeps them.
        let settings = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\nfsync = {}\nmax_connections = 200\n",
            base.display(),
            if fsync { "on" } else { "off" }
        );
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        std::io::Write::write_all(&mut conf, settings.as_bytes()).unwrap();
        let cluster = Cluster {
            port,
            data,
            log: base.join("log"),
            next: AtomicUsize::new(0),
        };
        cluster.start_server();
        cluster.watch(&base);
        cluster
    }

    /// The server's PID (first line of `postmaster.pid`).
    pub fn pid(&self) -> u32 {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap();
        text.lines().next().unwrap().trim().parse().unwrap()
    }

    /// Stops the server (by PID) and removes the folder once this process has exited.
    /// The watcher must outlive this process, so it is never waited for.
    #[allow(clippy::zombie_processes)]
    fn watch(&self, base: &Path) {
        let script = format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 0.2; done; \
             pid=$(head -n 1 '{data}/postmaster.pid' 2>/dev/null); \
             if [ -n \"$pid\" ]; then kill -INT \"$pid\"; \
             while kill -0 \"$pid\" 2>/dev/null; do sleep 0.1; done; fi; rm -rf '{base}'",
            parent = std::process::id(),
            data = self.data.display(),
            base = base.display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    }

    /// A URL for database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// A new empty database; its URL.
    pub fn new_database(&self) -> String {
        let name = format!("t{}", self.next.fetch_add(1, Ordering::Relaxed));
        let mut admin = connect(&self.url("postgres"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        self.url(&name)
    }

    /// Stops the server now (fast shutdown) and waits until it has gone.
    pub fn stop(&self) {
        let status = as_server_user(&bindir().join("pg_ctl"))
            .args(["-D"])
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Starts the (stopped) server on its port.
    pub fn start_server(&self) {
        let status = as_server_user(&bindir().join("pg_ctl"))
            .args(["-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "pg_ctl start failed: see {}",
            self.log.display()
        );
    }
}

/// A plain client, retried while the server is starting.
pub fn connect(url: &str) -> postgres::Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match postgres::Client::connect(url, postgres::NoTls) {
            Ok(client) => return client,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("cannot connect to {url}: {e}"),
        }
    }
}
