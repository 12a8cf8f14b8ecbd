# Finalization as a phase of the one job loop (issue 13), run by the launcher's workers:
#  1. a row that cannot be finalized (a table pg_privacy does not know references it; a CHECK
#     refuses its anonymized value) is flagged once and passed over; the pass ends
#     finalized_with_errors and the job stays quiet; retry_items finalizes the rows once the
#     cause is fixed, resolve_item records a decision (findings 1 and 10);
#  2. a cancelled or failed erase is restorable and finalized like a completed one, after which
#     its table can be unregistered (finding 2);
#  3. a table hold skips that table and the tables it references, the rest is finalized, the
#     pass ends held, no worker is started for it while the hold lasts, its rows stay restorable
#     after the window, and the release resumes it (findings 4 and 10);
#  4. kill -9 of a finalization worker, an immediate shutdown while finalizing and a restart
#     while held: every marked row is finalized exactly once, other rows untouched.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = privacy_node('finalization', database => 'app', wait_for_launcher => 1, conf => $JOB_WORKER_CONF . q{
privacy.naptime = 1
restart_after_crash = on
});

$node->safe_psql('app', q{
CREATE EXTENSION pg_privacy;
CREATE TABLE users (id bigint PRIMARY KEY, tenant text NOT NULL, name text);
CREATE TABLE orders (id bigint PRIMARY KEY, tenant text NOT NULL, user_id bigint NOT NULL REFERENCES users,
                     code text, kind text NOT NULL DEFAULT 'retail',
                     CONSTRAINT code_needed CHECK (code IS NOT NULL OR kind = 'internal'));
CREATE TABLE comments (id bigint PRIMARY KEY, tenant text NOT NULL, user_id bigint NOT NULL REFERENCES users, body text);
CREATE TABLE events (id bigint PRIMARY KEY, tenant text NOT NULL, user_id bigint NOT NULL, what text);
CREATE TABLE visits (id bigint PRIMARY KEY, tenant text NOT NULL, user_id bigint NOT NULL, page text);
-- A table pg_privacy does not know, referencing users.
CREATE TABLE notes (user_id bigint REFERENCES users, note text);
CREATE INDEX ON orders (tenant, user_id, id);
CREATE INDEX ON comments (tenant, user_id, id);
CREATE INDEX ON events (tenant, user_id, id);
CREATE INDEX ON visits (tenant, user_id, id);
INSERT INTO users SELECT g, 'acme', 'user ' || g FROM generate_series(0, 20) g;   -- 0: the tombstone
INSERT INTO orders SELECT u * 100 + k, 'acme', u, 'code ' || k, CASE WHEN k % 3 = 0 THEN 'internal' ELSE 'retail' END
  FROM generate_series(1, 20) u, generate_series(1, 12) k;
INSERT INTO comments SELECT u * 100 + k, 'acme', u, 'comment ' || k FROM generate_series(1, 20) u, generate_series(1, 20) k;
INSERT INTO events SELECT u * 10000 + k, 'acme', u, 'event ' || k FROM generate_series(1, 20) u, generate_series(1, 30) k;
INSERT INTO events SELECT 600000 + k, 'acme', 6, 'many events ' || k FROM generate_series(1, 1500) k;
INSERT INTO events SELECT 700000 + k, 'acme', 7, 'many events ' || k FROM generate_series(1, 1500) k;
INSERT INTO visits SELECT u * 10000 + k, 'acme', u, 'page ' || k FROM generate_series(1, 20) u, generate_series(1, 500) k;
SELECT privacy.register_table('users', 'id', 'tenant');
SELECT privacy.register_table('orders', 'user_id', 'tenant', 'anonymize');
SELECT privacy.set_column_rule('orders', 'user_id', 'tombstone');
SELECT privacy.set_column_rule('orders', 'code', 'null');
SELECT privacy.register_table('comments', 'user_id', 'tenant');
SELECT privacy.register_table('events', 'user_id', 'tenant');
SELECT privacy.register_table('visits', 'user_id', 'tenant');
SELECT privacy.configure_tenant('acme', tombstone_subject => '0', approval_required => '{}');
});

sub query { return $node->safe_psql('app', $_[0]); }
sub job_field { my ($job, $field) = @_; return query("SELECT $field FROM privacy.jobs WHERE id = $job"); }

# Waits for a condition with a deadline; a timeout is a failed test, and the file goes on.
sub wait_for {
	my ($sql, $what) = @_;
	return ok($node->poll_query_until('app', $sql), "reached: $what");
}

sub wait_for_finalization {
	my ($job, $states) = @_;
	ok($node->poll_query_until('app', "SELECT finalization::text IN ($states) FROM privacy.jobs WHERE id = $job"),
	   "reached: job $job finalization in ($states)")
	  or diag('it is ' . job_field($job, "coalesce(finalization::text, 'null')"));
}

# A fingerprint of every row of the users that are not `subject`, all tables.
sub others_checksum {
	my ($subject) = @_;
	return query(qq{
SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
  SELECT 'u' || (id, name, privacy_erased_by)::text x FROM users WHERE id <> $subject
  UNION ALL SELECT 'o' || (id, user_id, code, privacy_erased_by)::text FROM orders WHERE user_id <> $subject AND id / 100 <> $subject
  UNION ALL SELECT 'c' || (id, user_id, privacy_erased_by)::text FROM comments WHERE user_id <> $subject
  UNION ALL SELECT 'e' || (id, user_id, privacy_erased_by)::text FROM events WHERE user_id <> $subject) all_rows});
}

# Proves that the launcher ran dispatch cycles: a small job of another subject is run to its end.
my $probe_subject = 10;
sub launcher_cycles {
	my ($cycles) = @_;
	for (1 .. $cycles) {
		my $probe = query("SELECT privacy.request_export('acme', '$probe_subject', 'probe')");
		$probe_subject++;
		wait_for("SELECT status IN ('completed', 'failed') FROM privacy.jobs WHERE id = $probe", "probe job $probe");
	}
}
query(q{SELECT privacy.add_export_recipient('probe', $pem$} . slurp_cert() . q{$pem$)});

sub slurp_cert {
	my $dir = PostgreSQL::Test::Utils::tempdir;
	system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$dir/k.pem", '-out', "$dir/c.pem",
	       '-days', '30', '-subj', '/CN=probe') == 0 or die 'openssl failed';
	open my $fh, '<', "$dir/c.pem" or die; local $/; return <$fh>;
}

# ------------------------------------------------------------------------------------------------
# 1. Rows that cannot be finalized are flagged once and passed over (findings 1 and 10).
query(q{INSERT INTO notes VALUES (1, 'kept by another system')});
query(q{SELECT privacy.configure_tenant('acme', recovery_window => '0')});
my $before = others_checksum(1);
my $job = query(q{SELECT privacy.request_erase('acme', '1', 'finding 1')});
wait_for_finalization($job, "'finalized', 'finalized_with_errors'");
is(job_field($job, 'finalization'), 'finalized_with_errors', 'the pass ends: finalized_with_errors');
my $retail = query(q{SELECT count(*) FROM orders WHERE user_id = 1 AND kind = 'retail'});
is(query("SELECT count(*) FROM privacy.job_errors WHERE job_id = $job"), $retail + 1,
   "each row that cannot be finalized is flagged once: $retail orders (CHECK) and the user (foreign key)");
is(query("SELECT string_agg(DISTINCT sqlstate, ',' ORDER BY sqlstate) FROM privacy.job_errors WHERE job_id = $job"),
   '23503,23514', 'the flags name the foreign key and the CHECK');
is(query(qq{SELECT count(*) FROM (SELECT relation, row_key FROM privacy.job_errors WHERE job_id = $job
                               GROUP BY 1, 2 HAVING count(*) > 1) d}), '0', 'no row is flagged twice');
is(query("SELECT count(*) FROM comments WHERE user_id = 1") . ',' . query("SELECT count(*) FROM events WHERE user_id = 1"),
   '0,0', 'the rest is deleted');
is(query("SELECT count(*) FROM orders WHERE id / 100 = 1 AND user_id = 0 AND code IS NULL AND privacy_erased_by IS NULL"),
   query("SELECT count(*) FROM orders WHERE id / 100 = 1 AND kind = 'internal'"),
   'the orders whose CHECK allows it are anonymized with the tenant tombstone');
ok(job_field($job, 'finalized_at IS NOT NULL') eq 't', 'finalized_at is set');
is(others_checksum(1), $before, 'other users untouched');
my $flags = query("SELECT count(*) FROM privacy.job_errors WHERE job_id = $job");
launcher_cycles(3);
is(query("SELECT count(*) FROM privacy.job_errors WHERE job_id = $job"), $flags, 'no flag added while the launcher cycles');
is(query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_privacy worker job $job'"), '0',
   'no worker runs the job');
is(job_field($job, 'finalization'), 'finalized_with_errors', 'it stays finalized_with_errors');
like(query("SELECT with_open_items FROM privacy.dashboard"), qr/^[1-9]/, 'the dashboard counts the job with open items');
is(query("SELECT open_items FROM privacy.job_overview WHERE id = $job"), $flags, 'job_overview shows its open items');

# The cause fixed, retry_items finalizes the flagged rows, and the job is finalized.
my ($ret, $out, $err);
is(query("SELECT items || ',' || succeeded || ',' || failed_again FROM privacy.retry_items($job)"), "$flags,0,$flags",
   'retry_items before the fix: every item fails again');
is(query("SELECT count(*) FROM privacy.job_errors WHERE job_id = $job AND resolution IS NULL"), $flags,
   'retried without the fix: still one open item per row');
is(query("SELECT max(attempt) FROM privacy.job_errors WHERE job_id = $job"), '2', 'the second attempt is recorded');
query(q{DELETE FROM notes; ALTER TABLE orders DROP CONSTRAINT code_needed});
is(query("SELECT items || ',' || succeeded || ',' || failed_again FROM privacy.retry_items($job)"), "$flags,$flags,0",
   'retry_items after the fix: every item succeeds');
is(job_field($job, 'finalization'), 'finalized', 'the last item retried: finalized');
is(query("SELECT count(*) FROM users WHERE id = 1") . ',' . query("SELECT count(*) FROM orders WHERE user_id = 1"), '0,0',
   'the user is deleted, its orders anonymized');
is(query("SELECT string_agg(action, ',' ORDER BY id) FROM privacy.audit_log WHERE job_id = $job AND action IN
      ('finalization_started', 'finalized_with_errors', 'items_retried', 'finalized')"),
   'finalization_started,finalized_with_errors,items_retried,items_retried,finalized', 'every step is audited');

# resolve_item: a person's decision, with a note.
query(q{INSERT INTO notes VALUES (2, 'kept on purpose')});
my $job2 = query(q{SELECT privacy.request_erase('acme', '2', 'resolve test')});
wait_for_finalization($job2, "'finalized_with_errors'");
my $item = query("SELECT id FROM privacy.job_errors WHERE job_id = $job2");
($ret, $out, $err) = $node->psql('app', "SELECT privacy.resolve_item($item, ' ')", extra_params => ['-v', 'VERBOSITY=verbose']);
like($err, qr/22023: resolving flagged item $item needs a note/, 'a blank note is refused (22023)');
query("SELECT privacy.resolve_item($item, 'the user stays: ticket 77')");
is(query("SELECT resolution || ' ' || (resolved_by = session_user) || ' ' || note FROM privacy.job_errors WHERE id = $item"),
   'resolved true the user stays: ticket 77', 'the decision is recorded with who and why');
is(job_field($job2, 'finalization'), 'finalized', 'the last item resolved: finalized');
is(query("SELECT detail->>'note' FROM privacy.audit_log WHERE job_id = $job2 AND action = 'item_resolved'"),
   'the user stays: ticket 77', 'item_resolved is audited');
($ret, $out, $err) = $node->psql('app', "SELECT privacy.resolve_item($item, 'again')", extra_params => ['-v', 'VERBOSITY=verbose']);
like($err, qr/55000: flagged item $item was already closed \(resolved\)/, 'resolving twice is refused (55000)');
query(q{DELETE FROM notes});

# ------------------------------------------------------------------------------------------------
# 2. A cancelled or failed erase is restorable and finalized like a completed one (finding 2).
query(q{SELECT privacy.configure_tenant('acme', recovery_window => '1 day', rows_per_second => 200)});
$job = query(q{SELECT privacy.request_erase('acme', '3', 'cancel test')});
wait_for("SELECT processed_items >= 200 FROM privacy.jobs WHERE id = $job", "progress of job $job");
query("SELECT privacy.cancel($job, 'changed our mind')");
wait_for("SELECT status = 'cancelled' FROM privacy.jobs WHERE id = $job", "job $job cancelled");
is(job_field($job, "finalization || ' ' || (recoverable_until > now() + interval '23 hours')"), 'awaiting_window true',
   'a cancelled erase awaits its recovery window');
my $marked = query("SELECT count(*) FROM visits WHERE privacy_erased_by = $job");
cmp_ok($marked, '>', 0, "it marked $marked visits before the cancel");
my $restore_key = query("SELECT id FROM visits WHERE privacy_erased_by = $job ORDER BY id LIMIT 1");
is(query("SELECT privacy.restore($job, 'visits', '[{\"id\": $restore_key}]')"), '1', 'a cancelled erase is restorable');
query("UPDATE privacy.jobs SET recoverable_until = now() WHERE id = $job");   # the window closes
wait_for_finalization($job, "'finalized'");
is(query("SELECT count(*) FROM visits WHERE privacy_erased_by IS NOT NULL"), '0', 'its marked rows are finalized');
is(query("SELECT count(*) FROM visits WHERE user_id = 3"), query("SELECT 500 - $marked + 1"),
   'exactly the marked rows are gone; the restored one and the unmarked ones stay');
($ret, $out, $err) = $node->psql('app', "SELECT privacy.retry($job)", extra_params => ['-v', 'VERBOSITY=verbose']);
like($err, qr/55000: job $job is cancelled and cannot be retried: its finalization has begun/,
     'a finalized erase is not retried');

# A failed erase (a hold placed mid-run) too.
$job = query(q{SELECT privacy.request_erase('acme', '4', 'hold test')});
wait_for("SELECT processed_items >= 200 FROM privacy.jobs WHERE id = $job", "progress of job $job");
my $hold = query(q{SELECT privacy.place_hold('subject', '4', 'acme', 'case 4')});
wait_for("SELECT status = 'failed' FROM privacy.jobs WHERE id = $job", "job $job failed");
is(job_field($job, 'finalization'), 'awaiting_window', 'a failed erase awaits its recovery window');
query("SELECT privacy.release_hold($hold, 'case closed')");
query("UPDATE privacy.jobs SET recoverable_until = now() WHERE id = $job");
wait_for_finalization($job, "'finalized'");
is(query("SELECT count(*) FROM visits WHERE privacy_erased_by IS NOT NULL"), '0', 'a failed erase is finalized');
is(query("SELECT privacy.unregister_table('visits')"), '', 'the table is no longer blocked: unregister_table succeeds');
query(q{SELECT privacy.configure_tenant('acme', rows_per_second => 0)});

# ------------------------------------------------------------------------------------------------
# 3. A table hold skips that table and the tables it references (findings 4 and 10).
$job = query(q{SELECT privacy.request_erase('acme', '5', 'table hold test')});
wait_for("SELECT status = 'completed' FROM privacy.jobs WHERE id = $job", "job $job completed");
$hold = query(q{SELECT privacy.place_hold('table', 'public.orders', NULL, 'regulator R-9')});
query("UPDATE privacy.jobs SET recoverable_until = now() WHERE id = $job");
wait_for_finalization($job, "'held'");
is(query("SELECT count(*) FROM comments WHERE user_id = 5") . ',' . query("SELECT count(*) FROM events WHERE user_id = 5"), '0,0',
   'the tables no hold keeps are finalized');
is(query("SELECT count(*) FROM orders WHERE privacy_erased_by = $job") . ',' .
   query("SELECT count(*) FROM users WHERE privacy_erased_by = $job"), '12,1',
   'the held table and the table it references keep their marked rows');
# The launcher starts no worker for the held job while the hold lasts.
$node->append_conf('postgresql.conf', 'log_min_messages = debug1');
$node->reload;
my $log_offset = -s $node->logfile;
launcher_cycles(3);
my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile, $log_offset);
my $starts = () = $log =~ /starting background worker process "pg_privacy worker for job $job"/g;
is($starts, 0, 'no worker is started for the held job during three launcher cycles');
$node->append_conf('postgresql.conf', 'log_min_messages = warning');
$node->reload;
# Held rows stay restorable after the window, other rows do not (docs/legal-holds.md).
is(query("SELECT privacy.restore($job, 'users', '[{\"id\": 5}]')"), '1', 'a held row is restorable after the window');
($ret, $out, $err) = $node->psql('app', "SELECT privacy.restore($job, 'comments')", extra_params => ['-v', 'VERBOSITY=verbose']);
like($err, qr/55000: job $job can no longer be restored in public\.comments/, 'a table no hold keeps is not');
query("SELECT privacy.release_hold($hold, 'done')");
wait_for_finalization($job, "'finalized'");
is(query("SELECT count(*) FROM orders WHERE id / 100 = 5 AND user_id = 0 AND privacy_erased_by IS NULL"), '12',
   'after the release the orders are anonymized');
is(query("SELECT count(*) FROM users WHERE id = 5 AND privacy_erased_by IS NULL"), '1', 'the restored user stays');
is(query("SELECT string_agg(action, ',' ORDER BY id) FROM privacy.audit_log WHERE job_id = $job AND action LIKE 'finaliz%'"),
   'finalization_started,finalization_held,finalization_resumed,finalized', 'the pass, the hold and the resumption are audited');

# ------------------------------------------------------------------------------------------------
# 4. Crash points of the finalization.
query(q{SELECT privacy.configure_tenant('acme', recovery_window => '0', rows_per_second => 300)});
for my $crash (['6', 'kill -9 of the finalization worker'], ['7', 'immediate shutdown while finalizing']) {
	my ($subject, $what) = @$crash;
	$before = others_checksum($subject);
	my $rows = query("SELECT count(*) FROM events WHERE user_id = $subject");
	$job = query("SELECT privacy.request_erase('acme', '$subject', '$what')");
	wait_for("SELECT finalization = 'finalizing' AND (cursor->>'rows')::int >= 200 FROM privacy.jobs WHERE id = $job",
		"job $job finalizing");
	if ($subject eq '6') {
		my $pid = query("SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_privacy worker job $job'");
		like($pid, qr/^\d+$/, "a worker finalizes job $job");
		kill 'KILL', $pid;
	} else {
		$node->stop('immediate');
		$node->start;
	}
	wait_for_finalization($job, "'finalized'");
	is(query("SELECT count(*) FROM events WHERE user_id = $subject") . ',' .
	   query("SELECT count(*) FROM users WHERE id = $subject"), '0,0', "after $what: every marked row is finalized");
	is(query("SELECT (cursor IS NULL) || ' ' || finalization_attempts FROM privacy.jobs WHERE id = $job"), 'true 2',
	   "after $what: one more attempt, resumed from its cursor");
	is(query("SELECT count(*) FILTER (WHERE action = 'finalization_started') || ',' || count(*) FILTER (WHERE action = 'finalized')
	      FROM privacy.audit_log WHERE job_id = $job"), '1,1', "after $what: started and finalized once");
	is(others_checksum($subject), $before, "after $what: other rows untouched");
}

# A restart while a finalization is held: it stays held, and the release resumes it.
query(q{SELECT privacy.configure_tenant('acme', recovery_window => '1 day', rows_per_second => 0)});
$job = query(q{SELECT privacy.request_erase('acme', '8', 'restart while held')});
wait_for("SELECT status = 'completed' FROM privacy.jobs WHERE id = $job", "job $job completed");
$hold = query(q{SELECT privacy.place_hold('table', 'public.comments', 'acme', 'comments of acme')});
query("UPDATE privacy.jobs SET recoverable_until = now() WHERE id = $job");
wait_for_finalization($job, "'held'");
$node->stop('immediate');
$node->start;
is(job_field($job, 'finalization'), 'held', 'after an immediate shutdown the finalization is still held');
query("SELECT privacy.release_hold($hold, 'released')");
wait_for_finalization($job, "'finalized'");
is(query("SELECT count(*) FROM comments WHERE user_id = 8") . ',' . query("SELECT count(*) FROM users WHERE id = 8"), '0,0',
   'released after the restart: finalized');
is(query("SELECT ok FROM privacy.verify_audit_log()"), 't', 'the audit chains verify');

$node->stop;
done_testing();
