# Scratch PostgreSQL clusters run as the postgres user (PostgreSQL refuses to run as root).
# Source this file; it defines:
#   PG_BIN                 the PostgreSQL 15 binaries (from PG_CONFIG)
#   free_port              prints a TCP port nobody listens on
#   cluster_start DIR PORT [extra postgresql.conf lines...]   initdb + start, pg_privacy preloaded
#   cluster_stop DIR       immediate stop, never fails
#   as_postgres CMD...     runs a command as postgres with PATH/PGHOST/PGPORT set
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
# pg_config lives in the bindir; fall back to that before PostgreSQL is installed
# (scripts/install-deps.sh runs after this file is sourced).
PG_BIN=$("$PG_CONFIG" --bindir 2>/dev/null || dirname "$PG_CONFIG")

free_port() {
  local port
  for port in $(seq 54330 54999); do
    if ! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "$port"; return 0; fi
  done
  return 1
}

as_postgres() {
  runuser -u postgres -- env PATH="$PG_BIN:$PATH" PGHOST="${PGHOST:-}" PGPORT="${PGPORT:-}" \
    PGUSER=postgres PG_CONFIG="$PG_CONFIG" "$@"
}

cluster_start() {
  local dir=$1 port=$2; shift 2
  rm -rf "$dir"; mkdir -p "$dir"; chown postgres: "$dir"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log"
  {
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$dir'"
    echo "shared_preload_libraries = 'pg_privacy'"
    echo "max_worker_processes = 16"
    echo "fsync = off"
    echo "log_line_prefix = '%m [%p] %b '"
    for line in "$@"; do echo "$line"; done
  } >>"$dir/data/postgresql.conf"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
}

cluster_stop() {
  local dir=$1
  [ -f "$dir/data/postmaster.pid" ] || return 0
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
}
