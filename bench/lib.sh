# Helpers of bench/run: SQL calls, timing, statistics, pgbench logs, the result table.
# Sourced by bench/run after scripts/cluster.sh; expects PGHOST, PGPORT, WORK, REPS set.

# SQL as postgres in the bench database; stdin or -c.
sql() { as_postgres psql -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"; }
q() { sql -c "$1"; }

# Seconds one SQL script takes, measured in the server (clock_timestamp before and after);
# "$1" runs between the two clock readings, "$2" (optional) after them (e.g. ROLLBACK).
timed() {
  sql <<EOF
SELECT extract(epoch FROM clock_timestamp()) AS bench_t0 \gset
$1
SELECT extract(epoch FROM clock_timestamp()) - :bench_t0;
${2:-}
EOF
}

# Median of the numbers given as arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# calc EXPR: floating point arithmetic (awk).
calc() { awk "BEGIN {printf \"%.15g\", $1}"; }
fmt() { awk -v v="$1" -v d="${2:-2}" 'BEGIN {printf "%.*f", d, v}'; }
fmt_int() { awk -v v="$1" 'BEGIN {printf "%d", v + 0.5}' | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
# yes/no: does the awk condition hold?
holds() { awk "BEGIN {exit !($1)}" && echo yes || echo no; }

# Does a function privacy.NAME exist in the installed build?
has_function() { [ "$(q "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'privacy' AND p.proname = '$1'")" != 0 ]; }

# ----- the result table ------------------------------------------------------------------
# Rows go to a file: each figure runs in a subshell (so that `set -e` stops the figure, not the
# suite, at its first failing command).
# result FIGURE PG_PRIVACY BASELINE RATIO TARGET MEETS
result() {
  local row="| $1 | $2 | $3 | $4 | $5 | $6 |"
  echo "$row" >>"$WORK/results.md"
  echo "  $row" >&2
}
not_measured() { result "$1" "not measured: $2" "" "" "$3" "n/a"; }
print_results() {
  echo "| figure | pg_privacy | baseline | ratio | target | meets target |"
  echo "|---|---|---|---|---|---|"
  cat "$WORK/results.md"
}
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# ----- jobs ------------------------------------------------------------------------------
# An erase job of TENANT/SUBJECT, approved at once; prints its id.
erase_job() { q "SELECT bench.erase_job('$1', '$2')"; }
# Waits for a job to end; prints its final status (or timeout:...).
wait_job() { q "SELECT bench.wait_job($1, ${2:-900})"; }
# Rate of a finished job in rows/s from its own row: total_items / (finished_at - started_at).
job_rate() { q "SELECT total_items / extract(epoch FROM finished_at - started_at) FROM privacy.jobs WHERE id = $1"; }

# ----- pgbench ---------------------------------------------------------------------------
# pgbench_run PREFIX SCRIPT CLIENTS SECONDS [extra pgbench args...]: per-transaction log in
# $WORK/log_PREFIX.<pid>[.<thread>], summary in $WORK/log_PREFIX.out; prints nothing. As the non-superuser role bench_app, so RLS applies.
pgbench_run() {
  local prefix=$1 script=$2 clients=$3 seconds=$4; shift 4
  rm -f "$WORK/log_$prefix".*
  as_postgres pgbench -n -U "${BENCH_USER:-bench_app}" -d postgres -c "$clients" -j "$(( clients < 2 ? clients : 2 ))" \
    -T "$seconds" -f "$script" -l --log-prefix="$WORK/log_$prefix" "$@" >"$WORK/log_$prefix.out" 2>&1 \
    || { cat "$WORK/log_$prefix.out" >&2; return 1; }
}
# First and last transaction completion time (epoch seconds) of a pgbench log.
pgbench_span() { cat "$WORK/log_$1".[0-9]* | awk 'NR==1 {lo=hi=$5+$6/1e6} {t=$5+$6/1e6; if (t<lo) lo=t; if (t>hi) hi=t} END {printf "%.6f %.6f\n", lo, hi}'; }
# pgbench_stats PREFIX FROM TO: "tps p99_ms" of the transactions that completed in [FROM, TO].
pgbench_stats() {
  cat "$WORK/log_$1".[0-9]* | awk -v w0="$2" -v w1="$3" '{t=$5+$6/1e6; if (t>=w0 && t<=w1) print $3}' | sort -n |
    awk -v span="$(calc "$3 - $2")" '{v[NR]=$1} END {
      if (NR == 0 || span <= 0) {print "0 nan"; exit}
      i = int(NR * 0.99); if (i < NR * 0.99) i++; if (i < 1) i = 1
      printf "%.2f %.3f\n", NR / span, v[i] / 1000 }'
}

# wait_sample LABEL JOB SECONDS: while job JOB is processing (at most SECONDS), samples every 10 ms what
# bench_app's busy backends wait for (pg_stat_activity), and logs each wait event's share of
# the samples ("CPU" = no wait event: on a CPU or in its run queue). How B3's 2026-12-02 runs
# found what an erase costs pgbench (docs/performance.md). Only with B3_WAIT_SAMPLES=1: the
# sampling backend takes CPU inside B3's measured window (and not in pgbench's run alone). It
# keeps its samples in a variable and writes them once at the end, so that it holds no
# transaction id while pgbench runs (which would keep pgbench's dead rows from being pruned).
wait_sample() {
  local label=$1 job=$2 seconds=$3
  [ "${B3_WAIT_SAMPLES:-0}" = 1 ] || return 0
  sql >/dev/null <<EOSQL
SET client_min_messages = warning;
CREATE UNLOGGED TABLE IF NOT EXISTS bench.wait_samples (label text, wait text);
DO \$\$
DECLARE
  t0 timestamptz := clock_timestamp();
  seen text[] := '{}';
BEGIN
  LOOP
    PERFORM pg_catalog.pg_stat_clear_snapshot();
    seen := seen || ARRAY(SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity
                           WHERE usename = 'bench_app' AND state = 'active');
    EXIT WHEN clock_timestamp() - t0 > interval '$seconds s'
           OR (SELECT status FROM privacy.jobs WHERE id = $job) <> 'processing';
    PERFORM pg_sleep(0.01);
  END LOOP;
  INSERT INTO bench.wait_samples SELECT '$label', w FROM unnest(seen) w;
END \$\$;
EOSQL
  log "$label: pgbench's busy backends waited for: $(q "SELECT string_agg(wait || ' ' || round(100.0 * n / total) || '%', ', ' ORDER BY n DESC)
      FROM (SELECT wait, count(*) n, sum(count(*)) OVER () total FROM bench.wait_samples
             WHERE label = '$label' GROUP BY wait) x")"
}
