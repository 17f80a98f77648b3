#!/usr/bin/env bash
# Helpers for scripts/gate-e2e/fleet.sh: a PostgreSQL 15 cluster of its own (as the store
# tests' harness starts one: initdb in a temporary folder as the `postgres` user, pg_ctl
# on a free loopback port, stopped by its PID) and a fleet member's configuration.
# Sourced, not run.

pg_bindir() {
  local dir
  dir=$(pg_config --bindir 2>/dev/null || true)
  [ -x "$dir/initdb" ] || dir=/usr/lib/postgresql/15/bin
  [ -x "$dir/initdb" ] || { echo "gate-fleet: PostgreSQL server binaries not found: apt-get install postgresql-15" >&2; return 1; }
  echo "$dir"
}
# as_pg COMMAND...: as the postgres user when root (initdb and the server refuse root)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# pg_start DIR: initdb into DIR/data and start on a free loopback port (sets PG_PORT); the
# database `imipsec` exists afterwards. fsync stays on, as on a server.
pg_start() {
  local dir=$1 bin
  bin=$(pg_bindir)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log"
  PG_PORT=$(free_port)
  printf "\nport = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nmax_connections = 200\n" \
    "$PG_PORT" "$dir" | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start >/dev/null
  as_pg "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres imipsec
}

# pg_restart DIR SECONDS: fast shutdown, SECONDS down, start again.
pg_restart() {
  local bin; bin=$(pg_bindir)
  as_pg "$bin/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null
  sleep "$2"
  as_pg "$bin/pg_ctl" -D "$1/data" -l "$1/log" -w start >/dev/null
}

# pg_stop_by_pid DIR: stop the server by the PID in postmaster.pid and wait for it.
pg_stop_by_pid() {
  local pid
  pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  kill -INT "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

# write_fleet_gate_config DIR URL MILTER METRICS: one fleet member, milter only, the
# store on PostgreSQL, the test PKI as trust anchor.
write_fleet_gate_config() {
  mkdir -p "$1"
  cat > "$1/imipsec.toml" <<TOML
[trust]
anchors = ["$ROOT/certs/root.cert.pem"]
crls = ["$ROOT/certs/intermediate.crl.pem"]
[store]
url = "$2"
[gate]
authserv_id = "mx.gate.test"
on_reject = "reject"
metrics_listen = "$4"
[gate.milter]
listen = "$3"
[gate.limits]
connections = 512
TOML
}
