# The background worker (docs/jobs.md, "How a job runs"): latch wake-up, throttling, cancel within one batch,
# crash resume (kill -9 of a worker, immediate shutdown), failure and retry, fair dispatch.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = privacy_node('jobs', database => 'app', wait_for_launcher => 1, conf => $JOB_WORKER_CONF . q{
privacy.naptime = 60
restart_after_crash = on
});

$node->safe_psql('app', q{
CREATE EXTENSION pg_privacy;
CREATE TABLE people (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL, payload text);
CREATE INDEX ON people (tenant, subject);
INSERT INTO people SELECT g, 't' || (g % 4), 's' || (g % 10), md5(g::text) FROM generate_series(1, 40000) g;
SELECT privacy.register_table('people', 'subject', 'tenant');
});

# A fingerprint of every row that is not the target's.
sub others_checksum {
  my ($tenant, $subject) = @_;
  return $node->safe_psql('app', qq{
    SELECT md5(string_agg(id || ':' || payload || ':' || coalesce(privacy_erased_by::text, '-'), ',' ORDER BY id))
      FROM people WHERE NOT (tenant = '$tenant' AND subject = '$subject')});
}

# How many rows a subject has: every check compares with the data, not with a constant.
sub target_count {
  my ($tenant, $subject) = @_;
  return $node->safe_psql('app', "SELECT count(*) FROM people WHERE tenant = '$tenant' AND subject = '$subject'");
}

sub job_field {
  my ($job, $field) = @_;
  return $node->safe_psql('app', "SELECT $field FROM privacy.jobs WHERE id = $job");
}

sub wait_for_status {
  my ($job, $status) = @_;
  $node->poll_query_until('app', "SELECT status = '$status' FROM privacy.jobs WHERE id = $job")
    or die "job $job did not become $status: " . job_field($job, 'status || coalesce(error, \'\')');
}

sub wait_for_progress {
  my ($job, $rows) = @_;
  $node->poll_query_until('app', "SELECT processed_items >= $rows FROM privacy.jobs WHERE id = $job")
    or die "job $job made no progress";
}

# 1. Approval wakes the launcher through its latch: the job runs long before naptime (60 s).
my $before = others_checksum('t1', 's1');
my $job = $node->safe_psql('app', q{SELECT privacy.request_erase('t1', 's1', 'latency test')});
my $approved_at = time();
$node->safe_psql('app', "SELECT privacy.approve($job)");
wait_for_status($job, 'completed');
my $elapsed = time() - $approved_at;
cmp_ok($elapsed, '<', 30, "approved job completed in ${elapsed}s, before the 60 s naptime could have started it");
is(job_field($job, 'processed_items'), target_count('t1', 's1'), 'every target row processed');
is($node->safe_psql('app', "SELECT count(*) FROM people WHERE privacy_erased_by = $job"),
   target_count('t1', 's1'), 'every target row marked by the job, and nothing else');
is(others_checksum('t1', 's1'), $before, 'rows of other subjects and tenants unchanged');
is($node->safe_psql('app', "SELECT string_agg(action, ',' ORDER BY id) FROM privacy.audit_log WHERE job_id = $job"),
   'submitted,approved,started,completed', 'the job history is audited');
isnt(job_field($job, 'recoverable_until'), '', 'recoverable_until set at completion');
like($node->safe_psql('app', "SELECT application_name FROM privacy.audit_log WHERE job_id = $job AND action = 'started'"),
     qr/^pg_privacy worker job $job$/, 'the worker is named in pg_stat_activity and the audit trail');

# 2. Throttling: 500 rows/s for a 2,000-row job. The bucket starts with one second of burst,
#    so the job takes at least about three seconds.
$node->safe_psql('app', q{SELECT privacy.configure_tenant('t2', rows_per_second => 500)});
$job = $node->safe_psql('app', q{SELECT privacy.request_erase('t2', 's2', 'throttle test')});
my $start = time();
$node->safe_psql('app', "SELECT privacy.approve($job)");
wait_for_status($job, 'completed');
my $throttled = time() - $start;
cmp_ok($throttled, '>=', 2.5, "2,000 rows at 500 rows/s took ${throttled}s (at least 2.5 s)");

# 3. Cancel a running job: it stops after the batch in flight; no rows are marked afterwards.
$node->safe_psql('app', q{SELECT privacy.configure_tenant('t3', rows_per_second => 200)});
$job = $node->safe_psql('app', q{SELECT privacy.request_erase('t3', 's3', 'cancel test')});
$node->safe_psql('app', "SELECT privacy.approve($job)");
wait_for_progress($job, 200);
$node->safe_psql('app', "SELECT privacy.cancel($job, 'stop it')");
wait_for_status($job, 'cancelled');
my $processed = job_field($job, 'processed_items');
cmp_ok($processed, '<', target_count('t3', 's3'), "cancelled after $processed rows");
my $marked = $node->safe_psql('app', "SELECT count(*) FROM people WHERE privacy_erased_by = $job");
is($marked, $processed, 'marked rows equal the committed progress');
$node->poll_query_until('app', q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_privacy worker'})
  or die 'worker did not exit';
is($node->safe_psql('app', "SELECT count(*) FROM people WHERE privacy_erased_by = $job"), $marked,
   'no rows marked after the cancel');

# 4. kill -9 of a worker mid-job: the server restarts, the job resumes and completes exactly once.
$node->safe_psql('app', q{SELECT privacy.configure_tenant('t0', rows_per_second => 300)});
$before = others_checksum('t0', 's0');
$job = $node->safe_psql('app', q{SELECT privacy.request_erase('t0', 's0', 'crash test')});
$node->safe_psql('app', "SELECT privacy.approve($job)");
wait_for_progress($job, 200);
my $worker_pid = $node->safe_psql('app', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_privacy worker'});
like($worker_pid, qr/^\d+$/, "a worker runs the job (pid $worker_pid)");
kill 'KILL', $worker_pid;
wait_for_status($job, 'completed');
is($node->safe_psql('app', "SELECT count(*) FROM people WHERE privacy_erased_by = $job"),
   target_count('t0', 's0'), 'after kill -9: every target row marked, nothing else');
is(job_field($job, 'processed_items'), target_count('t0', 's0'), 'after kill -9: each row processed exactly once');
is(others_checksum('t0', 's0'), $before, 'after kill -9: other rows byte-for-byte unchanged');
like($node->safe_psql('app', "SELECT string_agg(action, ',' ORDER BY id) FROM privacy.audit_log WHERE job_id = $job"),
     qr/started,resumed,completed$/, 'the resume is audited');

# 5. Immediate shutdown mid-job: after restart the job resumes and completes.
$before = others_checksum('t0', 's4');
$job = $node->safe_psql('app', q{SELECT privacy.request_erase('t0', 's4', 'immediate stop test')});
$node->safe_psql('app', "SELECT privacy.approve($job)");
wait_for_progress($job, 200);
$node->stop('immediate');
$node->start;
wait_for_status($job, 'completed');
is($node->safe_psql('app', "SELECT count(*) FROM people WHERE privacy_erased_by = $job"),
   target_count('t0', 's4'), 'after immediate stop: every target row marked, nothing else');
is(job_field($job, 'processed_items'), target_count('t0', 's4'), 'after immediate stop: each row processed exactly once');
is(others_checksum('t0', 's4'), $before, 'after immediate stop: other rows unchanged');

# 6. A job-level failure (a legal hold placed mid-run) fails the job naming the hold; retry
#    resumes it from where it stopped once the hold is released.
$job = $node->safe_psql('app', q{SELECT privacy.request_erase('t0', 's6', 'hold test', 'dpo@example.com')});
$node->safe_psql('app', "SELECT privacy.approve($job)");
wait_for_progress($job, 100);
my $hold = $node->safe_psql('app', q{
  SELECT privacy.place_hold('subject', 's6', 't0', 'litigation 2026-17')});
wait_for_status($job, 'failed');
like(job_field($job, 'error'), qr/legal hold $hold/, 'the failure names the hold');
like($node->safe_psql('app', "SELECT recipient || ' / ' || subject FROM privacy.notifications WHERE job_id = $job"),
     qr{^dpo\@example.com / .*failed}i, 'the failure queues an e-mail to notify_email');
my $done_before_retry = job_field($job, 'processed_items');
cmp_ok($done_before_retry, '<', target_count('t0', 's6'), "failed after $done_before_retry rows");
$node->safe_psql('app', "SELECT privacy.release_hold($hold, 'case settled')");
$node->safe_psql('app', "SELECT privacy.retry($job)");
wait_for_status($job, 'completed');
is(job_field($job, 'processed_items'), target_count('t0', 's6'), 'retry resumed and processed each row once');
is($node->safe_psql('app', "SELECT count(*) FROM people WHERE privacy_erased_by = $job"), target_count('t0', 's6'),
   'after retry every target row is marked');

# 7. Fairness and per-tenant limits: a big tenant limited to one job at a time cannot take both
#    workers; a small tenant's job runs meanwhile.
$node->safe_psql('app', q{SELECT privacy.configure_tenant('t1', rows_per_second => 100, max_concurrent_jobs => 1)});
my $big1 = $node->safe_psql('app', q{SELECT privacy.request_erase('t1', 's3', 'big 1')});
my $big2 = $node->safe_psql('app', q{SELECT privacy.request_erase('t1', 's5', 'big 2')});
my $small = $node->safe_psql('app', q{SELECT privacy.request_erase('t2', 's4', 'small')});
$node->safe_psql('app', "SELECT privacy.approve($big1)");
wait_for_progress($big1, 100);
$node->safe_psql('app', "SELECT privacy.approve($big2); SELECT privacy.approve($small);");
wait_for_status($small, 'completed');
is(job_field($big2, 'status'), 'approved', 'max_concurrent_jobs = 1 holds the second big job back');
$node->safe_psql('app', "SELECT privacy.cancel($big1, 'done testing'); SELECT privacy.cancel($big2, 'done testing');");
wait_for_status($big1, 'cancelled');
wait_for_status($big2, 'cancelled');

# 8. A row locked by an application transaction: the batch waits at most privacy.lock_timeout,
#    retries the row alone, flags it in privacy.job_errors (55P03) and goes on; the job completes
#    with failed_items = 1.
$node->safe_psql('postgres', q{ALTER SYSTEM SET privacy.lock_timeout = '200ms'});
$node->reload;
my $locked_id = $node->safe_psql('app', q{SELECT min(id) + 40 FROM people WHERE tenant = 't3' AND subject = 's7'});
my $locker = $node->background_psql('app');
$locker->query_safe("BEGIN; SELECT id FROM people WHERE id = $locked_id FOR UPDATE;");
$job = $node->safe_psql('app', q{SELECT privacy.request_erase('t3', 's7', 'locked row test')});
$node->safe_psql('app', "SELECT privacy.approve($job)");
wait_for_status($job, 'completed');
is(job_field($job, 'failed_items'), '1', 'the locked row is flagged, the job completes');
is(job_field($job, 'processed_items'), target_count('t3', 's7') - 1, 'every other row processed');
is($node->safe_psql('app', "SELECT sqlstate || ' ' || (row_key->>'id') FROM privacy.job_errors WHERE job_id = $job"),
   "55P03 $locked_id", 'job_errors names the row and the lock timeout');
is($node->safe_psql('app', "SELECT count(*) FROM privacy.audit_log WHERE job_id = $job AND action = 'items_flagged'"),
   '1', 'flagged items are audited');
is($node->safe_psql('app', "SELECT privacy_erased_by IS NULL FROM people WHERE id = $locked_id"), 't',
   'the locked row itself was not marked');
$locker->query_safe('COMMIT');
$locker->quit;

# 9. Finalization after the recovery window, by the launcher: the rows are deleted for good.
$node->safe_psql('app', q{SELECT privacy.configure_tenant('t2', recovery_window => '2 seconds', rows_per_second => 0)});
$job = $node->safe_psql('app', q{SELECT privacy.request_erase('t2', 's8', 'finalize test')});
$node->safe_psql('app', "SELECT privacy.approve($job)");
wait_for_status($job, 'completed');
is($node->safe_psql('app', "SELECT count(*) FROM people WHERE privacy_erased_by = $job"), target_count('t2', 's8'),
   'rows hidden, still stored during the window');
$node->safe_psql('postgres', q{ALTER SYSTEM SET privacy.naptime = 1});
$node->reload;
$node->poll_query_until('app', "SELECT finalized_at IS NOT NULL FROM privacy.jobs WHERE id = $job")
  or die 'job was not finalized after its window';
is(target_count('t2', 's8'), '0', 'after the window the rows are deleted');
is($node->safe_psql('app', "SELECT count(*) FROM privacy.audit_log WHERE job_id = $job AND action = 'finalized'"), '1',
   'finalization is audited');

$node->stop;
done_testing();
