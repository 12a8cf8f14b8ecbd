# Every job ends right (issue 13), with the launcher's naptime at 60 s so that nothing relies on it:
#  1. an error before the first batch fails the job, with its message and an audit row (finding 5;
#     test/sql/jobs_run_job.sql shows CALL privacy.run_job raising it);
#  2. a renamed registered table is followed, a dropped one passed over: later jobs complete and
#     preview works (finding 5);
#  3. a batch that kills its own backend: the launcher resumes the job after a growing pause and
#     fails it after privacy.max_attempts runs, naming why (finding 6);
#  4. the ETA never promises more than the tenant's rate allows; the first batch honours the
#     rate, and a cancel is seen within a second at any rate (finding 8);
#  5. a rejection wakes the launcher, which sends its e-mail at once (finding 10);
#  6. a finalization whose batch kills its own backend: resumed after a pause, and after
#     privacy.max_attempts runs the table it is stuck on is passed over, flagged as a whole, and
#     the pass ends finalized_with_errors (finding 6).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = privacy_node('failures', database => 'app', wait_for_launcher => 1, conf => $JOB_WORKER_CONF . q{
privacy.naptime = 60
privacy.max_attempts = 3
privacy.smtp_url = 'smtp://127.0.0.1:9'
});
$node->safe_psql('app', q{
CREATE EXTENSION pg_privacy;
CREATE TABLE people (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL, payload text);
CREATE INDEX ON people (tenant, subject, id);
INSERT INTO people SELECT g, 'acme', 's' || (g % 10), md5(g::text) FROM generate_series(1, 2000) g;
INSERT INTO people SELECT 10000 + g, 'acme', 'eta', 'eta' FROM generate_series(1, 12009) g;
INSERT INTO people SELECT 30000 + g, 'acme', 'crawl', 'crawl' FROM generate_series(1, 300) g;
SELECT privacy.register_table('people', 'subject', 'tenant');
SELECT privacy.configure_tenant('acme', approval_required => '{}');
});

sub query { return $node->safe_psql('app', $_[0]); }
sub job_field { my ($job, $field) = @_; return query("SELECT $field FROM privacy.jobs WHERE id = $job"); }
# Waits for a condition with a deadline; a timeout is a failed test, and the file goes on.
sub wait_for {
	my ($sql, $what) = @_;
	return ok($node->poll_query_until('app', $sql), "reached: $what");
}
sub audit_of {
	my ($job) = @_;
	return query("SELECT string_agg(action, ',' ORDER BY id) FROM privacy.audit_log WHERE job_id = $job");
}

# ------------------------------------------------------------------------------------------------
# 5. A rejection wakes the launcher: its e-mail is tried at once, not after the 60 s naptime.
query(q{SELECT privacy.configure_tenant('acme', approval_required => '{purge}')});
my $job = query(q{SELECT privacy.request_purge('acme', 'subject', 's9', 'mail test', 'dpo@example.com')});
my $rejected_at = time();
query("SELECT privacy.reject($job, 'not verified')");
wait_for("SELECT attempts > 0 OR sent_at IS NOT NULL FROM privacy.notifications WHERE job_id = $job",
	'the rejection e-mail to be tried');
my $mail_after = time() - $rejected_at;
cmp_ok($mail_after, '<', 20, sprintf('the rejection e-mail was tried after %.1f s, not after privacy.naptime (60 s)', $mail_after));
query(q{SELECT privacy.configure_tenant('acme', approval_required => '{}')});

# ------------------------------------------------------------------------------------------------
# 1. An error before the first batch fails the job with its message and an audit row.
query(q{
CREATE ROLE locked_owner;
CREATE TABLE locked_out (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
INSERT INTO locked_out SELECT g, 'acme', 's1' FROM generate_series(1, 10) g;
ALTER TABLE locked_out OWNER TO locked_owner;
SELECT privacy.register_table('locked_out', 'subject', 'tenant');
REVOKE SELECT ON locked_out FROM locked_owner;   -- the owner can no longer count its rows
});
$job = query(q{SELECT privacy.request_erase('acme', 's1', 'count fails')});
wait_for("SELECT status = 'failed' FROM privacy.jobs WHERE id = $job", "job $job failed");
like(job_field($job, 'error'), qr/permission denied for table locked_out/, 'the failure says why');
is(audit_of($job), 'submitted,started,failed', 'started and failed are audited');
is(job_field($job, 'attempts'), '1', 'the launcher did not start it again');
query(q{GRANT SELECT ON locked_out TO locked_owner});
query("SELECT privacy.retry($job)");
wait_for("SELECT status = 'completed' FROM privacy.jobs WHERE id = $job", "job $job completed after retry");
is(query(q{SELECT count(*) FROM locked_out WHERE privacy_erased_by IS NOT NULL}), '10', 'the retry marked the rows');

# ------------------------------------------------------------------------------------------------
# 2. A renamed table is followed by its OID; a dropped one (a registration left dangling, as if
#    the DDL guard had been off) is passed over.
query(q{
CREATE TABLE doomed (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
INSERT INTO doomed SELECT g, 'acme', 's3' FROM generate_series(1, 5) g;
SELECT privacy.register_table('doomed', 'subject', 'tenant');
});
my @guards = split /\n/, query(q{SELECT evtname FROM pg_event_trigger WHERE evtname LIKE 'privacy%'});
query("ALTER EVENT TRIGGER $_ DISABLE") for @guards;
query(q{DROP TABLE doomed});
query("ALTER EVENT TRIGGER $_ ENABLE ALWAYS") for @guards;
query(q{ALTER TABLE people RENAME TO persons});
$job = query(q{SELECT privacy.request_erase('acme', 's3', 'renamed and dropped')});
wait_for("SELECT status IN ('completed', 'failed') FROM privacy.jobs WHERE id = $job", "job $job ended");
is(job_field($job, "status || ' ' || coalesce(error, '')"), 'completed ', 'the job completes');
is(query(q{SELECT count(*) FROM persons WHERE privacy_erased_by IS NOT NULL AND subject = 's3'}),
   query(q{SELECT count(*) FROM persons WHERE subject = 's3'}), 'the renamed table is erased');
is(query("SELECT string_agg(relation::text, ',' ORDER BY relation::text) FROM privacy.preview($job)"),
   'locked_out,persons', 'preview lists the tables that exist');
query(q{ALTER TABLE persons RENAME TO people});

# ------------------------------------------------------------------------------------------------
# 3. A poison batch: the table owner's trigger kills the runner's backend on the subject's rows.
query(q{
CREATE TABLE poison (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
INSERT INTO poison SELECT g, 'acme', 'poison' FROM generate_series(1, 5) g;
CREATE FUNCTION kill_my_backend() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_catalog.pg_terminate_backend(pg_catalog.pg_backend_pid());
  PERFORM pg_catalog.pg_sleep(5);
  RETURN NEW;
END $$;
CREATE TRIGGER poison BEFORE UPDATE ON poison FOR EACH ROW EXECUTE FUNCTION kill_my_backend();
SELECT privacy.register_table('poison', 'subject', 'tenant');
});
my $started = time();
$job = query(q{SELECT privacy.request_erase('acme', 'poison', 'poison batch')});
wait_for("SELECT status = 'failed' FROM privacy.jobs WHERE id = $job", "poison job $job failed");
my $took = time() - $started;
is(job_field($job, 'attempts'), '3', 'it ran privacy.max_attempts (3) times');
like(job_field($job, 'error'), qr/^job $job gave up after 3 runs; the last one ended with: runner stopped unexpectedly \(attempt 3\)$/,
     'the error says why it gave up');
is(query("SELECT count(*) FROM privacy.audit_log WHERE job_id = $job AND action IN ('started', 'resumed')"), '3',
   'three runs, no more');
cmp_ok($took, '>=', 3, sprintf('the runs were paused between (%.1f s for three runs: 1 s, then 2 s)', $took));
cmp_ok($took, '<', 40, 'and resumed without waiting for privacy.naptime');
is(query(q{SELECT count(*) FROM poison WHERE privacy_erased_by IS NOT NULL}), '0', 'nothing was marked');
query(q{DROP TRIGGER poison ON poison});

# ------------------------------------------------------------------------------------------------
# 4. Honest progress under a throttle.
query(q{SELECT privacy.configure_tenant('acme', rows_per_second => 2000)});
$job = query(q{SELECT privacy.request_erase('acme', 'eta', 'eta test')});
wait_for("SELECT processed_items >= 2500 FROM privacy.jobs WHERE id = $job", "progress of job $job");
my ($eta, $remaining) = split /\|/, query(qq{
SELECT extract(epoch FROM eta), total_items - processed_items - failed_items FROM privacy.jobs WHERE id = $job});
my $floor = $remaining / 2000;
cmp_ok($eta, '>=', 0.9 * $floor,
       sprintf('ETA %.2f s for %d rows left at 2,000 rows/s: never more optimistic than the rate (%.2f s)', $eta, $remaining, $floor));
wait_for("SELECT status = 'completed' FROM privacy.jobs WHERE id = $job", "job $job completed");

# At 2 rows/s the first batch takes 2 rows (not privacy.batch_size = 100), and a cancel is seen
# within a second or two, during the throttle's wait.
query(q{SELECT privacy.configure_tenant('acme', rows_per_second => 2)});
$job = query(q{SELECT privacy.request_erase('acme', 'crawl', 'crawl test')});
wait_for("SELECT processed_items >= 1 FROM privacy.jobs WHERE id = $job", "first batch of job $job");
cmp_ok(job_field($job, 'processed_items'), '<=', 4, 'the first batch honoured the rate');
my $cancelled_at = time();
query("SELECT privacy.cancel($job, 'too slow')");
wait_for("SELECT status = 'cancelled' FROM privacy.jobs WHERE id = $job", "job $job cancelled");
my $cancel_took = time() - $cancelled_at;
cmp_ok($cancel_took, '<', 5, sprintf('the cancel was seen after %.1f s at 2 rows/s', $cancel_took));
cmp_ok(job_field($job, 'processed_items'), '<', 20, 'few rows were done meanwhile');

# ------------------------------------------------------------------------------------------------
# 6. A poison finalization: the table owner's trigger kills the runner's backend on DELETE.
query(q{
SELECT privacy.configure_tenant('acme', rows_per_second => 0, recovery_window => '0');  -- finalized in the same run
CREATE TABLE poison_fin (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
INSERT INTO poison_fin SELECT g, 'acme', 'poison2' FROM generate_series(1, 5) g;
CREATE TRIGGER poison_fin BEFORE DELETE ON poison_fin FOR EACH ROW EXECUTE FUNCTION kill_my_backend();
SELECT privacy.register_table('poison_fin', 'subject', 'tenant');
});
$job = query(q{SELECT privacy.request_erase('acme', 'poison2', 'poison finalization')});
wait_for("SELECT finalization IN ('finalized', 'finalized_with_errors') FROM privacy.jobs WHERE id = $job",
	"the finalization of job $job ended");
is(job_field($job, 'finalization'), 'finalized_with_errors', 'the pass ends finalized_with_errors');
is(query("SELECT count(*) FROM privacy.audit_log WHERE job_id = $job AND action IN ('finalization_started', 'finalization_resumed')")
	 . ',' . query("SELECT count(*) FROM privacy.audit_log WHERE job_id = $job AND action = 'finalized_with_errors'"),
   '1,1', 'started once, ended once');
is(query("SELECT string_agg(relation::text || ' ' || coalesce(row_key::text, 'as a whole') || ': ' || message, '; ')
            FROM privacy.job_errors WHERE job_id = $job"),
   'poison_fin as a whole: runner stopped unexpectedly (finalization attempt 3)',
   'after privacy.max_attempts (3) runs the table is flagged once, as a whole, saying why; '
   . 'no table the dying batches went through before it is blamed');
is(query(q{SELECT count(*) FROM poison_fin WHERE privacy_erased_by IS NOT NULL}), '5', 'its rows stay marked (hidden)');
is(query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_privacy worker job $job'"), '0',
   'no worker runs the job any more');
query(q{DROP TRIGGER poison_fin ON poison_fin});
is(query("SELECT items || ',' || succeeded FROM privacy.retry_items($job)"), '1,1',
   'with the trigger gone, retry_items hands the table back to the finalization');
wait_for("SELECT finalization = 'finalized' FROM privacy.jobs WHERE id = $job", "job $job finalized");
is(query(q{SELECT count(*) FROM poison_fin}), '0', 'the table is finalized');

$node->stop;
done_testing();
