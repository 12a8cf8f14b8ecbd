# How job workers stay out of the application's way (issue 16, B3; docs/performance.md "Pacing",
# docs/jobs.md "Sizing throttles"):
#  1. by default a background job worker keeps the normal scheduling class (SCHED_OTHER, 0 in
#     field 41 of /proc/PID/stat) at nice privacy.worker_nice (field 19);
#  2. with privacy.worker_sched_idle = on a new worker runs in Linux's SCHED_IDLE class (policy 5),
#     at nice privacy.worker_nice;
#  3. before a batch, a job creates the WAL segment after the one being written, so that an
#     application backend's commit does not have to (wal_recycle off and no checkpoint in the
#     test: nothing else creates it ahead);
#  4. CALL privacy.run_job never changes its session's scheduling: the backend that ran the job is
#     in SCHED_OTHER at nice 0 afterwards, whatever the two settings say.
# The workers' classes are read while their (slowly throttled) jobs run, waiting for the condition
# with a deadline; no test here depends on how long anything takes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PrivacyTest;

plan skip_all => 'SCHED_IDLE and /proc/PID/stat are Linux only' unless -r '/proc/self/stat';

my $node = privacy_node('interference', database => 'app', wait_for_launcher => 1, conf => q{
privacy.naptime = 1
privacy.max_workers = 2
privacy.batch_size = 10
privacy.require_distinct_approver = off
max_worker_processes = 16
wal_recycle = off
checkpoint_timeout = 1h
max_wal_size = 1GB
});
$node->safe_psql('app', q{
CREATE EXTENSION pg_privacy;
CREATE TABLE people (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
CREATE INDEX ON people (tenant, subject, id);
INSERT INTO people SELECT g, 'acme', 's' || (g % 3) FROM generate_series(1, 3000) g;
SELECT privacy.register_table('people', 'subject', 'tenant');
-- 20 rows/s: a job of 1,000 rows runs for 50 s, long enough to look at its worker; it is cancelled
-- once looked at.
SELECT privacy.configure_tenant('acme', approval_required => '{}', rows_per_second => 20);
-- The scheduling policy (field 41 of /proc/PID/stat: 0 SCHED_OTHER, 5 SCHED_IDLE) and the nice
-- value (field 19) of a process, as 'policy/nice'; the fields after the command's name, which is
-- in parentheses.
CREATE FUNCTION scheduling(pid integer) RETURNS text LANGUAGE sql AS $$
    SELECT f[39] || '/' || f[17]
      FROM pg_catalog.string_to_array(pg_catalog.split_part(
               pg_catalog.pg_read_file('/proc/' || pid || '/stat'), ') ', 2), ' ') AS f
$$;
});

sub query { return $node->safe_psql('app', $_[0]); }

# Starts an erase of one subject, waits (with a deadline) until its worker shows `expected`
# ('policy/nice'), then cancels the job and waits for the worker to end. Returns what was seen.
sub worker_scheduling {
	my ($subject, $expected) = @_;
	my $job = query("SELECT privacy.request_erase('acme', '$subject', 'scheduling test')");
	my $seen_sql = qq{SELECT scheduling(pid) FROM pg_stat_activity
	                   WHERE backend_type = 'pg_privacy worker'
	                     AND (SELECT status FROM privacy.jobs WHERE id = $job) = 'processing'};
	$node->poll_query_until('app', "SELECT coalesce(($seen_sql), '') = '$expected'");
	my $seen = query($seen_sql);
	query("SELECT privacy.cancel($job, 'scheduling test: looked at')");
	$node->poll_query_until('app', qq{SELECT status = 'cancelled' FROM privacy.jobs WHERE id = $job})
	  or die "job $job was not cancelled";
	$node->poll_query_until('app', q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_privacy worker'})
	  or die "the worker of job $job did not end";
	return $seen;
}

# ------------------------------------------------------------------------------------------------
# 1. The defaults: the normal class (SCHED_IDLE is opt-in, docs/jobs.md "Sizing throttles"), nice 10.
is(query(q{SELECT current_setting('privacy.worker_sched_idle') || '/' || current_setting('privacy.worker_nice')}),
   'off/10', 'by default workers keep the normal class, at nice 10');
is(worker_scheduling('s0', '0/10'), '0/10', 'a background job worker runs in SCHED_OTHER (policy 0) at nice 10');

# ------------------------------------------------------------------------------------------------
# 2. privacy.worker_sched_idle = on (reload): the next worker enters SCHED_IDLE, niced. The setting
# stays on for part 4.
query(q{ALTER SYSTEM SET privacy.worker_sched_idle = on});
query(q{SELECT pg_reload_conf()});
$node->poll_query_until('app', q{SELECT current_setting('privacy.worker_sched_idle') = 'on'})
  or die 'the reload was not seen';
is(worker_scheduling('s1', '5/10'), '5/10', 'with worker_sched_idle on a worker runs in SCHED_IDLE (policy 5), at nice 10');

# ------------------------------------------------------------------------------------------------
# 3. The next WAL segment is created before a batch. After a switch the insert position is at the
# start of a segment whose successor nobody has created.
my $next_segment_exists = q{SELECT count(*) = 1 FROM pg_ls_waldir()
  WHERE name = pg_walfile_name(pg_current_wal_insert_lsn() + pg_size_bytes(current_setting('wal_segment_size')))};
query(q{SELECT pg_switch_wal()});
is(query($next_segment_exists), 'f', 'after a WAL switch the next segment does not exist yet');
my $wal_job = query(q{SELECT privacy.request_erase('acme', 's2', 'scheduling test')});
ok($node->poll_query_until('app', $next_segment_exists), 'a job batch created the next WAL segment');
query("SELECT privacy.cancel($wal_job, 'scheduling test: looked at')");
$node->poll_query_until('app', qq{SELECT status = 'cancelled' FROM privacy.jobs WHERE id = $wal_job})
  or die "job $wal_job was not cancelled";

# ------------------------------------------------------------------------------------------------
# 4. CALL privacy.run_job: the session's backend keeps its class and priority. In a database the
# launcher does not serve (privacy.database is 'app'), so nobody else runs the job.
my $job = manual_erase_job($node, 50, 'scheduling test');
is($node->safe_psql('manual', q{SELECT current_setting('privacy.worker_sched_idle')}), 'on',
   'worker_sched_idle is on for the session');
my $after = $node->safe_psql('manual', qq{
CALL privacy.run_job($job);
SELECT f[39] || '/' || f[17] || '/' || (SELECT status FROM privacy.jobs WHERE id = $job)
  FROM pg_catalog.string_to_array(pg_catalog.split_part(pg_catalog.pg_read_file('/proc/self/stat'), ') ', 2), ' ') AS f;
});
is($after, '0/0/completed', 'CALL privacy.run_job ran the job and left its session in SCHED_OTHER at nice 0');

$node->stop;
done_testing();
