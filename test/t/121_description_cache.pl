# The cached description of a registered table (issue 16, docs/architecture.md "Descriptions of
# registered tables"): a job's batches read it once, and read it again after any change that
# could make it stale. Each scenario runs a throttled job in the background worker (a batch per
# second or so), changes something once the first batches have committed, and checks that the
# following batches acted on the new description; each assertion fails when a batch keeps the
# description it read before the change:
#  1. ALTER SCHEMA ... RENAME (no relcache invalidation of the table: NAMESPACEOID callback): the
#     erase goes on and marks every row (a stale "s1"."people" fails the batch: relation does
#     not exist);
#  2. privacy.set_column_rule during the finalization (only the registry row changes: the
#     trigger of privacy.column_rules): the rows finalized after it take the new rule;
#  3. ALTER DOMAIN ... RENAME of an anonymized column's type (TYPEOID callback): the finalization
#     ends and redacts every row (a stale cast to the old name fails the batch);
#  4. privacy.unregister_table during a purge (registry row deleted): the purge stops deleting in
#     that table and completes;
#  5. the subject column renamed during an erase (relcache): the job fails with the
#     registration's own error (55000, "no longer exists"), not a batch's raw 42703.
# Waits on conditions with deadlines (poll_query_until), never fixed sleeps.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PrivacyTest;
use Test::More;

my $node = privacy_node('descriptions', database => 'app', wait_for_launcher => 1,
	create_extension => 1, conf => $JOB_WORKER_CONF . "privacy.naptime = 1\n");

sub query { return $node->safe_psql('app', $_[0]); }
sub wait_for {
	my ($sql, $what) = @_;
	return ok($node->poll_query_until('app', $sql), "reached: $what");
}
sub job_field { return query("SELECT $_[1] FROM privacy.jobs WHERE id = $_[0]"); }

# Every scenario has its own tenant, at 50 rows per second: batches of 50 rows, one a second.
query(q{
CREATE SCHEMA s1;
CREATE TABLE s1.people (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL, note text);
INSERT INTO s1.people SELECT g, 't1', 'p1', 'n' FROM generate_series(1, 400) g;
SELECT privacy.register_table('s1.people', 'subject', 'tenant');

CREATE SCHEMA dom;
CREATE DOMAIN dom.code AS text;
CREATE TABLE notes (id bigint PRIMARY KEY, tenant text NOT NULL, subject text, note text, code dom.code);
INSERT INTO notes SELECT g, 't2', 'p2', 'secret', 'c' FROM generate_series(1, 300) g;
INSERT INTO notes SELECT 1000 + g, 't3', 'p3', 'secret', 'c' FROM generate_series(1, 300) g;
SELECT privacy.register_table('notes', 'subject', 'tenant', 'anonymize');
SELECT privacy.set_column_rule('notes', 'note', 'redact');
SELECT privacy.set_column_rule('notes', 'code', 'redact');

CREATE TABLE visits (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
INSERT INTO visits SELECT g, 't4', 'p4' FROM generate_series(1, 400) g;
SELECT privacy.register_table('visits', 'subject', 'tenant');

CREATE TABLE orders (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
INSERT INTO orders SELECT g, 't5', 'p5' FROM generate_series(1, 400) g;
SELECT privacy.register_table('orders', 'subject', 'tenant');
});
for my $tenant (qw(t1 t2 t3 t4 t5)) {
	query("SELECT privacy.configure_tenant('$tenant', approval_required => '{}', rows_per_second => 50,"
		  . " recovery_window => '0')");
}

# ------------------------------------------------------------------------------------------------
# 1. Schema renamed between two batches of an erase.
my $job = query(q{SELECT privacy.request_erase('t1', 'p1', 'schema rename')});
wait_for("SELECT processed_items >= 50 FROM privacy.jobs WHERE id = $job", 'erase 1 has committed a batch');
query('ALTER SCHEMA s1 RENAME TO s2');
cmp_ok(job_field($job, 'processed_items'), '<', 400, 'the schema was renamed before the erase ended');
wait_for("SELECT status <> 'processing' FROM privacy.jobs WHERE id = $job", 'erase 1 ended');
is(job_field($job, 'status'), 'completed', 'the erase went on in the renamed schema')
  or diag(job_field($job, 'last_error'));
is(job_field($job, 'processed_items'), '400', 'it counted every row');
# Finalized in the same run (window 0): every row of the subject is gone.
wait_for("SELECT finalization = 'finalized' FROM privacy.jobs WHERE id = $job", 'erase 1 finalized');
is(query(q{SELECT count(*) FROM s2.people}), '0', 'the finalization deleted every row in the renamed schema');

# ------------------------------------------------------------------------------------------------
# 2. A column rule changed during the finalization (the registry alone changes).
$job = query(q{SELECT privacy.request_erase('t2', 'p2', 'rule change')});
wait_for("SELECT finalization = 'finalizing' FROM privacy.jobs WHERE id = $job", 'erase 2 is finalizing');
wait_for(q{SELECT count(*) >= 50 FROM notes WHERE tenant = 't2' AND note = '[redacted]'},
	'the finalization redacted a first batch');
query(q{SELECT privacy.set_column_rule('notes', 'note', 'null')});
my $redacted = query(q{SELECT count(*) FROM notes WHERE tenant = 't2' AND note = '[redacted]'});
cmp_ok($redacted, '<', 300, 'the rule changed before the finalization ended');
wait_for("SELECT finalization = 'finalized' FROM privacy.jobs WHERE id = $job", 'erase 2 finalized');
is(query(q{SELECT count(*) FROM notes WHERE tenant = 't2' AND note = 'secret'}), '0', 'every note was anonymized');
cmp_ok(query(q{SELECT count(*) FROM notes WHERE tenant = 't2' AND note IS NULL}), '>', 0,
	'rows finalized after the change took the new rule (null)');
is(query(q{SELECT count(*) FROM notes WHERE tenant = 't2' AND note IS NULL
            AND id < (SELECT max(id) FROM notes WHERE tenant = 't2' AND note = '[redacted]')}), '0',
	'and only rows after those the old rule redacted (key order)');

# ------------------------------------------------------------------------------------------------
# 3. The type of an anonymized column renamed during the finalization.
$job = query(q{SELECT privacy.request_erase('t3', 'p3', 'type rename')});
wait_for("SELECT finalization = 'finalizing' FROM privacy.jobs WHERE id = $job", 'erase 3 is finalizing');
wait_for(q{SELECT count(*) >= 50 FROM notes WHERE tenant = 't3' AND code = '[redacted]'},
	'the finalization redacted a first batch');
query(q{ALTER DOMAIN dom.code RENAME TO code_v2});
cmp_ok(query(q{SELECT count(*) FROM notes WHERE tenant = 't3' AND code = '[redacted]'}), '<', 300,
	'the type was renamed before the finalization ended');
wait_for("SELECT finalization IN ('finalized', 'finalized_with_errors') OR last_error NOT LIKE 'runner stopped%'"
	  . " FROM privacy.jobs WHERE id = $job", 'erase 3 finalized or stopped');
is(job_field($job, 'finalization'), 'finalized', 'the finalization went on with the renamed type')
  or diag(job_field($job, 'last_error'));
is(query(q{SELECT count(*) FROM notes WHERE tenant = 't3' AND code IS DISTINCT FROM '[redacted]'}), '0',
	'every code was redacted');

# ------------------------------------------------------------------------------------------------
# 4. A table unregistered between two batches of a purge.
$job = query(q{SELECT privacy.request_purge('t4', 'subject', 'p4', 'unregister')});
wait_for("SELECT processed_items >= 50 FROM privacy.jobs WHERE id = $job", 'purge 4 has committed a batch');
query(q{SELECT privacy.unregister_table('visits')});
my $left = query(q{SELECT count(*) FROM visits});
cmp_ok($left, '>', 0, 'the table was unregistered before the purge ended');
wait_for("SELECT status <> 'processing' FROM privacy.jobs WHERE id = $job", 'purge 4 ended');
is(job_field($job, 'status'), 'completed', 'the purge completed') or diag(job_field($job, 'last_error'));
is(query(q{SELECT count(*) FROM visits}), $left, 'and deleted nothing in the table once it was unregistered');

# ------------------------------------------------------------------------------------------------
# 5. The subject column renamed between two batches of an erase.
$job = query(q{SELECT privacy.request_erase('t5', 'p5', 'column rename')});
wait_for("SELECT processed_items >= 50 FROM privacy.jobs WHERE id = $job", 'erase 5 has committed a batch');
query(q{ALTER TABLE orders RENAME COLUMN subject TO person});
cmp_ok(job_field($job, 'processed_items'), '<', 400, 'the column was renamed before the erase ended');
wait_for("SELECT status <> 'processing' FROM privacy.jobs WHERE id = $job", 'erase 5 ended');
is(job_field($job, 'status'), 'failed', 'the erase failed');
like(job_field($job, 'error'),
	qr/column "subject" of registered table (public\.)?orders no longer exists/,
	'with the registration\'s error, read again after the rename');
is(job_field($job, 'attempts'), '1',
	'in the run that was going on (a stale description fails its batch, and only a new run reads it)');

$node->stop;
done_testing();
