#!/usr/bin/env bash
# The pg_privacy demo (README's first command), as root on Debian 12:
#   bash scripts/demo.sh         install, build, start a demo server and tell the story
#   bash scripts/demo.sh stop    stop the demo server
# It installs what is missing, builds and installs pg_privacy, starts a PostgreSQL 15 cluster
# as user postgres in /var/tmp/pg_privacy-demo with pg_privacy preloaded, loads a small
# multi-tenant application (scripts/sample_schema.sql) into database privacy_demo and walks
# through what pg_privacy does. Running it again starts over from a fresh cluster.
#
# The story is a list of steps (one function each, run in order by main). To extend the demo,
# write a step_* function and add it to the list in main; a step that needs API functions
# not built yet checks for them with have_functions and says it is skipped.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/scripts/cluster.sh"   # PG_CONFIG, PG_BIN, free_port, cluster_start, as_postgres
export PG_CONFIG

DEMO_DIR=${PRIVACY_DEMO_DIR:-/var/tmp/pg_privacy-demo}
DEMO_DB=privacy_demo
WAIT_SECONDS=60

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Runs SQL in the demo database as postgres and shows it, the way a DBA would in psql.
demo_sql() {
  as_postgres psql -X -d "$DEMO_DB" -v ON_ERROR_STOP=1 --echo-queries -P pager=off -c "$1"
}

# Prints the first column of the first row of a query.
demo_value() {
  as_postgres psql -X -d "$DEMO_DB" -v ON_ERROR_STOP=1 -Atc "$1"
}

# True when every named function exists in schema privacy (later issues add them).
have_functions() {
  local name
  for name in "$@"; do
    [ "$(demo_value "SELECT count(*) FROM pg_proc WHERE proname = '$name'
                       AND pronamespace = 'privacy'::regnamespace")" != 0 ] || return 1
  done
}

stop_previous_demo() {
  if [ -f "$DEMO_DIR/data/postmaster.pid" ]; then
    echo "stopping the previous demo server"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$DEMO_DIR/data" -m fast -w stop >/dev/null 2>&1 ||
      cluster_stop "$DEMO_DIR"
  fi
}

step_install_dependencies() {
  say "Installing what is missing (Debian 12 packages)"
  bash "$repo/scripts/install-deps.sh"
}

step_build_and_install() {
  say "Building and installing pg_privacy ($PG_CONFIG)"
  make -C "$repo" PG_CONFIG="$PG_CONFIG" -j2 >/dev/null
  make -C "$repo" PG_CONFIG="$PG_CONFIG" install >/dev/null
  echo "installed into $("$PG_CONFIG" --pkglibdir)"
}

step_start_server() {
  say "Starting a demo PostgreSQL 15 server with pg_privacy preloaded"
  stop_previous_demo
  local port=5433
  (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && port=$(free_port)
  cluster_start "$DEMO_DIR" "$port" "privacy.database = '$DEMO_DB'" "privacy.naptime = 1"
  echo "$port" >"$DEMO_DIR/port"
  export PGHOST="$DEMO_DIR" PGPORT="$port"
  echo "server running in $DEMO_DIR/data on port $port (log: $DEMO_DIR/server.log)"
}

step_load_sample_application() {
  say "Loading a sample multi-tenant application (tenants acme and globex)"
  as_postgres createdb "$DEMO_DB"
  as_postgres psql -X -q -d "$DEMO_DB" -v ON_ERROR_STOP=1 -f "$repo/scripts/sample_schema.sql"
  demo_sql "SELECT tenant_id, count(*) AS users FROM app.users GROUP BY tenant_id ORDER BY 1"
}

step_create_extension() {
  say "Creating the extension and the people who use it"
  demo_sql "CREATE EXTENSION pg_privacy"
  # A data-protection officer (administers and approves) and a support agent (files requests).
  demo_sql "CREATE ROLE demo_dpo NOLOGIN IN ROLE privacy_admin;
            CREATE ROLE demo_support NOLOGIN IN ROLE privacy_requester;"
  demo_sql "SELECT tenant_id, display_name FROM privacy.configure_tenant('acme', display_name => 'Acme Corporation');
            SELECT tenant_id, display_name FROM privacy.configure_tenant('globex', display_name => 'Globex Inc.');"
}

step_show_status() {
  say "The background launcher and the dashboard"
  local deadline=$((SECONDS + WAIT_SECONDS))
  until [ "$(demo_value "SELECT count(*) FROM privacy.worker_status()
                         WHERE process = 'launcher' AND pid IS NOT NULL")" = 1 ]; do
    [ $SECONDS -lt $deadline ] || { echo "the launcher did not start: see $DEMO_DIR/server.log"; break; }
    sleep 0.2
  done
  demo_sql "SELECT process, pid, state, since FROM privacy.worker_status()"
  demo_sql "SELECT * FROM privacy.dashboard"
}

step_register_tables() {
  say "Registering the application's tables"
  if ! have_functions register_table; then
    echo "skipped: privacy.register_table is not built yet"; return 0
  fi
  local table
  for table in users profiles orders order_items comments; do
    demo_sql "SELECT privacy.register_table('app.$table', 'user_id', 'tenant_id')"
  done
}

step_erase_one_user() {
  say "Erasing user 17 of acme: requested by support, approved by the DPO"
  if ! have_functions register_table request_erase approve; then
    echo "skipped: privacy.request_erase / privacy.approve are not built yet"; return 0
  fi
  local job
  job=$(demo_value "SET SESSION AUTHORIZATION demo_support;
                    SELECT privacy.request_erase('acme', '17', 'customer asked to be forgotten (ticket 4711)')")
  job=$(tail -n 1 <<<"$job")
  echo "job $job requested by demo_support"
  demo_sql "SET SESSION AUTHORIZATION demo_dpo; SELECT privacy.approve($job, 'identity verified')"
  local deadline=$((SECONDS + WAIT_SECONDS)) status=""
  while [ $SECONDS -lt $deadline ]; do
    status=$(demo_value "SELECT status FROM privacy.jobs WHERE id = $job")
    case $status in completed|failed|cancelled|rejected) break ;; esac
    sleep 0.2
  done
  echo "job $job: ${status:-unknown}"
  if [ "$(demo_value "SELECT to_regclass('privacy.job_overview') IS NOT NULL")" = t ]; then
    demo_sql "SELECT * FROM privacy.job_overview WHERE id = $job"
  fi
  demo_sql "SET app.tenant = 'acme'; SET ROLE demo_app;
            SELECT count(*) AS acme_rows_of_user_17_the_app_sees FROM app.users WHERE user_id = 17"
}

step_print_how_to_connect() {
  say "Your turn"
  cat <<EOF
Connect:   runuser -u postgres -- $PG_BIN/psql -h $DEMO_DIR -p $PGPORT $DEMO_DB
Try:       SELECT * FROM privacy.worker_status();  SELECT * FROM privacy.dashboard;
Stop:      bash $repo/scripts/demo.sh stop
EOF
}

main() {
  if [ "$(id -u)" -ne 0 ]; then echo "run as root: sudo bash scripts/demo.sh" >&2; exit 1; fi
  if [ "${1:-}" = stop ]; then stop_previous_demo; echo "demo server stopped"; return 0; fi
  step_install_dependencies
  step_build_and_install
  step_start_server
  step_load_sample_application
  step_create_extension
  step_show_status
  step_register_tables
  step_erase_one_user
  step_print_how_to_connect
}

main "$@"
