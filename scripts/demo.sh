#!/usr/bin/env bash
# The pg_privacy demo (README's first command), as root on Debian 12:
#   bash scripts/demo.sh         install, build, start a demo server and tell the story
#   bash scripts/demo.sh stop    stop the demo server
# It installs what is missing, builds and installs pg_privacy, starts a PostgreSQL 15 cluster
# as user postgres in /var/tmp/pg_privacy-demo with pg_privacy preloaded, loads a small
# multi-tenant application (scripts/sample_schema.sql) into database privacy_demo and walks
# through what pg_privacy does. Running it again starts over from a fresh cluster.
#
# The story is a list of steps (one function each, run in order by main): register the tables,
# export a user's data encrypted and verify its signed receipt, erase a user with approval, watch
# a throttled erase, restore, and read the dashboard, the audit trail and the SLA report.
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
  # The application's role may file self-service requests for its logged-in user, nothing more.
  demo_sql "CREATE ROLE demo_dpo NOLOGIN IN ROLE privacy_admin;
            CREATE ROLE demo_support NOLOGIN IN ROLE privacy_requester;
            GRANT privacy_intake TO demo_app;"
  demo_sql "SELECT tenant_id, display_name FROM privacy.configure_tenant('acme', display_name => 'Acme Corporation');
            SELECT tenant_id, display_name FROM privacy.configure_tenant('globex', display_name => 'Globex Inc.');"
}

step_set_signing_key() {
  say "A signing key for receipts: every finished request gets a signed receipt (docs/compliance.md)"
  openssl req -x509 -newkey rsa:3072 -nodes -keyout "$DEMO_DIR/signing.key" -out "$DEMO_DIR/signing.crt" \
    -days 1095 -subj "/CN=pg_privacy demo receipts" -addext keyUsage=digitalSignature 2>/dev/null
  chmod 644 "$DEMO_DIR/signing.crt" "$DEMO_DIR/signing.key"
  demo_sql "SELECT subject, key_type, not_after FROM privacy.set_signing_key(pg_read_file('$DEMO_DIR/signing.crt'), pg_read_file('$DEMO_DIR/signing.key'))"
  rm -f "$DEMO_DIR/signing.key"   # the database keeps it where no role can read it
  demo_sql "SELECT tenant_id, regulation, privacy_contact FROM privacy.configure_tenant('acme', regulation => 'gdpr', privacy_contact => 'dpo@acme.example')"
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
  say "Registering the application's tables (soft-delete through row-level security)"
  local table
  for table in users profiles orders order_items comments; do
    demo_sql "SELECT privacy.register_table('app.$table', 'user_id', 'tenant_id')"
  done
  demo_sql "SELECT relation, subject_column, tenant_column, key_columns, on_erase FROM privacy.registered_tables"
}

# Waits (with a deadline) until a job reaches a final status, printing its progress.
wait_for_job() {
  local job=$1 deadline=$((SECONDS + WAIT_SECONDS)) status="" line=""
  while [ $SECONDS -lt $deadline ]; do
    line=$(demo_value "SELECT status || ' ' || processed_items || '/' || coalesce(total_items, 0) || ' rows, '
                              || progress_pct || '%, eta ' || coalesce(eta::text, '?')
                         FROM privacy.job_overview WHERE id = $job")
    status=${line%% *}
    echo "  job $job: $line"
    case $status in completed|failed|cancelled|rejected) return 0 ;; esac
    sleep 1
  done
  echo "job $job did not finish within ${WAIT_SECONDS}s: see $DEMO_DIR/server.log"
}

step_export_one_user() {
  say "Exporting everything about user 17 of acme (GDPR art. 15): an encrypted file"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DEMO_DIR/dpo.key" -out "$DEMO_DIR/dpo.crt" \
    -days 365 -subj "/CN=Demo DPO" 2>/dev/null
  chmod 644 "$DEMO_DIR/dpo.crt"
  demo_sql "SELECT recipient, key_type, not_after FROM privacy.add_export_recipient('dpo', pg_read_file('$DEMO_DIR/dpo.crt'))"
  local job
  # User 17 clicks "download my data" in the application, which files the request for its
  # logged-in user: tenant and subject come from the settings it already sets, not arguments.
  job=$(demo_value "SET SESSION AUTHORIZATION demo_app; SET app.tenant = 'acme'; SET app.user_id = '17';
                    SELECT privacy.submit_subject_request('export', 'download my data (account page)')" | tail -n 1)
  echo "export job $job filed by the application for its logged-in user (exports need no approval by default)"
  demo_sql "SELECT id, kind, tenant_id, target_id, requested_by, requested_on_behalf_of FROM privacy.jobs WHERE id = $job"
  wait_for_job "$job"
  demo_value "SELECT privacy.download_export($job)" >"$DEMO_DIR/export-$job.pem"
  if openssl cms -decrypt -inform PEM -in "$DEMO_DIR/export-$job.pem" -inkey "$DEMO_DIR/dpo.key" \
       -recip "$DEMO_DIR/dpo.crt" -out "$DEMO_DIR/export-$job.json"; then
    echo "decrypted $DEMO_DIR/export-$job.json: $(wc -c <"$DEMO_DIR/export-$job.json") bytes"
    head -c 400 "$DEMO_DIR/export-$job.json"; echo " ..."
  fi
  echo "$job" >"$DEMO_DIR/export-job"
}

step_verify_a_receipt() {
  say "The signed receipt of the export, checked with stock openssl and the certificate alone"
  local job
  job=$(cat "$DEMO_DIR/export-job")
  demo_value "SELECT privacy.receipt($job)" >"$DEMO_DIR/receipt-$job.pem"
  echo "\$ openssl cms -verify -inform PEM -in receipt-$job.pem -CAfile signing.crt -out receipt-$job.json"
  openssl cms -verify -inform PEM -in "$DEMO_DIR/receipt-$job.pem" -CAfile "$DEMO_DIR/signing.crt" \
    -out "$DEMO_DIR/receipt-$job.json"
  jq '{job, kind, tenant, regulation, requested_at, completed_at, answered_on_time, tables, export, audit: {chain: .audit.chain, head: .audit.head}}' \
    "$DEMO_DIR/receipt-$job.json"
  echo "\$ (the same receipt with one character of its content changed)"
  awk 'NR == 6 { $0 = substr($0, 1, 9) (substr($0, 10, 1) == "A" ? "B" : "A") substr($0, 11) } { print }' \
    "$DEMO_DIR/receipt-$job.pem" >"$DEMO_DIR/receipt-tampered.pem"
  openssl cms -verify -inform PEM -in "$DEMO_DIR/receipt-tampered.pem" -CAfile "$DEMO_DIR/signing.crt" \
    -out /dev/null 2>&1 | head -n 1 || true
}

step_erase_one_user() {
  say "Erasing user 17 of acme: requested by support, approved by the DPO, run by the worker"
  local job
  job=$(demo_value "SET SESSION AUTHORIZATION demo_support;
                    SELECT privacy.request_erase('acme', '17', 'customer asked to be forgotten (ticket 4711)')" | tail -n 1)
  echo "job $job requested by demo_support: $(demo_value "SELECT status FROM privacy.jobs WHERE id = $job")"
  demo_sql "SELECT * FROM privacy.preview($job)"
  demo_sql "SET SESSION AUTHORIZATION demo_dpo; SELECT privacy.approve($job, 'identity verified')"
  wait_for_job "$job"
  demo_sql "SET app.tenant = 'acme'; SET ROLE demo_app;
            SELECT count(*) AS rows_of_user_17_the_app_sees FROM app.comments WHERE user_id = 17"
  echo "$job" >"$DEMO_DIR/erase-job"
}

step_watch_a_big_erase() {
  say "A bigger erasure, throttled to 2,000 rows/s for tenant globex: watch progress and ETA"
  demo_sql "INSERT INTO app.comments (tenant_id, comment_id, user_id, body, posted_at)
            SELECT 'globex', 100000 + g, u.user_id, 'bulk comment ' || g, now()
              FROM (SELECT user_id FROM app.users WHERE tenant_id = 'globex' ORDER BY user_id LIMIT 1) u,
                   generate_series(1, 12000) g"
  demo_sql "SELECT tenant_id, rows_per_second FROM privacy.configure_tenant('globex', rows_per_second => 2000)"
  local user job
  user=$(demo_value "SELECT user_id FROM app.users WHERE tenant_id = 'globex' ORDER BY user_id LIMIT 1")
  job=$(demo_value "SET SESSION AUTHORIZATION demo_support;
                    SELECT privacy.request_erase('globex', '$user', 'account closure (ticket 4712)')" | tail -n 1)
  demo_value "SET SESSION AUTHORIZATION demo_dpo; SELECT privacy.approve($job, 'ok')" >/dev/null
  wait_for_job "$job"
}

step_restore() {
  say "Changed their mind within the recovery window: restore user 17"
  local job
  job=$(cat "$DEMO_DIR/erase-job")
  demo_sql "SELECT privacy.restore($job) AS rows_restored"
  demo_sql "SET app.tenant = 'acme'; SET ROLE demo_app;
            SELECT count(*) AS rows_of_user_17_the_app_sees FROM app.comments WHERE user_id = 17"
}

step_final_dashboard() {
  say "The dashboard and the audit trail"
  demo_sql "SELECT * FROM privacy.dashboard"
  demo_sql "SELECT id, kind, target_id, tenant_name, status, progress_pct, processed_items, failed_items FROM privacy.job_overview ORDER BY id"
  demo_sql "SELECT id, at, actor, action, job_id, target FROM privacy.audit_log ORDER BY id DESC LIMIT 12"
  demo_sql "SELECT * FROM privacy.verify_audit_log()"
  demo_sql "SELECT tenant_id, regulation, month, kind, requests, completed, open, on_time_share, median_time
              FROM privacy.sla_report(date_trunc('month', now()), now() + interval '1 day')"
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
  step_set_signing_key
  step_show_status
  step_register_tables
  step_export_one_user
  step_verify_a_receipt
  step_erase_one_user
  step_watch_a_big_erase
  step_restore
  step_final_dashboard
  step_print_how_to_connect
}

main "$@"
