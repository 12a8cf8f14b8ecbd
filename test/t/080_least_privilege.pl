# Least privilege of the code pg_privacy runs (docs/security.md, "Under which identity code runs").
# Each subtest is an attack that made someone superuser before the fix; each payload asks
# "am I a superuser?" and, if so, promotes its author, or writes a file only a superuser can
# write. After each attack its author must still be an ordinary role, and where the payload is
# harmless the job must still do its work.
#   1. CALL privacy.run_job with the caller's search_path (a schema of the caller's, and a
#      temporary domain named pg_temp.text);
#   2. the workers' search_path from the database (ALTER DATABASE SET by its owner), and an
#      overload in public;
#   3. a table owner's trigger, index expression and domain check during erase, finalize,
#      restore and export: they run as the table owner, never as a superuser;
#   4. the TRUNCATE hold guard with a temporary domain of the truncating role;
#   5. cancels (statement_timeout, pg_cancel_backend) end CALL privacy.run_job at once.
# Database 'app' is privacy.database (the launcher starts workers there); database 'calls' has no
# launcher, so CALL privacy.run_job, restore and TRUNCATE run there undisturbed.
use strict;
use warnings;
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = privacy_node('least_privilege', database => 'app', create_database => 0, conf => $JOB_WORKER_CONF . q{
privacy.naptime = 1
privacy.lock_timeout = '2s'
});

$node->safe_psql('postgres', q{
CREATE ROLE attacker LOGIN;
CREATE ROLE dbowner LOGIN;
CREATE ROLE tabowner LOGIN;
CREATE ROLE truncator LOGIN;
CREATE DATABASE app OWNER dbowner;
CREATE DATABASE calls;
});
for my $db ('app', 'calls') {
	$node->safe_psql($db, q{
CREATE EXTENSION pg_privacy;
SELECT privacy.configure_tenant('acme', approval_required => '{}'::privacy.job_kind[]);
CREATE SCHEMA plain AUTHORIZATION tabowner;
});
	$node->safe_psql($db, q{
CREATE TABLE plain.people (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL, payload text);
CREATE INDEX ON plain.people (tenant, subject, id);
INSERT INTO plain.people SELECT g, 'acme', 's' || (g % 10), md5(g::text) FROM generate_series(1, 500) g;
}, extra_params => ['-U', 'tabowner']);
	$node->safe_psql($db, q{SELECT privacy.register_table('plain.people', 'subject', 'tenant')});
}
$node->safe_psql('postgres', 'GRANT privacy_admin TO attacker');
$node->poll_query_until('app', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_privacy launcher'})
  or die 'launcher did not start';

sub superuser {
	my ($role) = @_;
	return $node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = '$role'") eq 't';
}

# After a subtest that failed, the next one starts from an ordinary role again.
sub demote { $node->safe_psql('postgres', "ALTER ROLE $_ NOSUPERUSER") for @_; }

sub job_field {
	my ($db, $job, $field) = @_;
	return $node->safe_psql($db, "SELECT $field FROM privacy.jobs WHERE id = $job");
}

sub wait_for_status {
	my ($db, $job, $status) = @_;
	$node->poll_query_until($db, "SELECT status = '$status' FROM privacy.jobs WHERE id = $job")
	  or die "job $job did not become $status: " . job_field($db, $job, q{status || ' ' || coalesce(error, '')});
}

sub marked_rows {
	my ($db, $job) = @_;
	return $node->safe_psql($db, "SELECT count(*) FROM plain.people WHERE privacy_erased_by = $job");
}

sub subject_rows {
	my ($db, $subject) = @_;
	return $node->safe_psql($db, "SELECT count(*) FROM plain.people WHERE subject = '$subject'");
}

# An erase of a subject of plain.people, queued (tenant acme needs no approval).
sub erase_job {
	my ($db, $subject) = @_;
	return $node->safe_psql($db, "SELECT privacy.request_erase('acme', '$subject', 'least privilege test')");
}

# A plpgsql body that promotes `role` when it runs as a superuser.
sub promote_if_superuser {
	my ($role) = @_;
	return qq{
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
    ALTER ROLE $role SUPERUSER;
  END IF;};
}

# ---------------------------------------------------------------------------------------------
subtest 'run_job does not run the caller\'s functions as the extension owner' => sub {
	$node->safe_psql('calls', 'CREATE SCHEMA evil AUTHORIZATION attacker');
	$node->safe_psql('calls', qq{
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS \$\$
BEGIN @{[promote_if_superuser('attacker')]}
  RETURN pg_catalog.now();
END \$\$;
}, extra_params => ['-U', 'attacker']);
	my $job = erase_job('calls', 's1');
	$node->safe_psql('calls', "SET search_path = evil, pg_catalog; CALL privacy.run_job($job);",
		extra_params => ['-U', 'attacker']);
	ok(!superuser('attacker'), 'the caller\'s evil.now() did not run as a superuser');
	is(job_field('calls', $job, 'status'), 'completed', 'the job completed');
	is(marked_rows('calls', $job), subject_rows('calls', 's1'), 'every row of the subject is marked');
	demote('attacker');
};

subtest 'run_job does not resolve types in the caller\'s pg_temp' => sub {
	my $job = erase_job('calls', 's2');
	$node->safe_psql('calls', qq{
CREATE FUNCTION pg_temp.escalate(pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS \$\$
BEGIN @{[promote_if_superuser('attacker')]}
  RETURN true;
END \$\$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.escalate(VALUE));
SET search_path = public;
CALL privacy.run_job($job);
}, extra_params => ['-U', 'attacker']);
	ok(!superuser('attacker'), 'the temporary domain pg_temp.text did not run its check as a superuser');
	is(job_field('calls', $job, 'status'), 'completed', 'the job completed');
	is(marked_rows('calls', $job), subject_rows('calls', 's2'), 'every row of the subject is marked');
	demote('attacker');
};

# ---------------------------------------------------------------------------------------------
subtest 'workers ignore the database\'s search_path' => sub {
	# The database owner (no superuser) plants evil.now() first on every new session's path.
	$node->safe_psql('app', qq{
CREATE SCHEMA evil;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS \$\$
BEGIN
  IF pg_catalog.current_setting('application_name') LIKE 'pg_privacy%' THEN @{[promote_if_superuser('dbowner')]}
  END IF;
  RETURN pg_catalog.now();
END \$\$;
ALTER DATABASE app SET search_path = evil, pg_catalog;
}, extra_params => ['-U', 'dbowner']);
	my $job = erase_job('app', 's3');
	wait_for_status('app', $job, 'completed');
	ok(!superuser('dbowner'), 'the worker did not run evil.now() as a superuser');
	is(marked_rows('app', $job), subject_rows('app', 's3'), 'every row of the subject is marked');
	$node->safe_psql('app', 'ALTER DATABASE app RESET search_path', extra_params => ['-U', 'dbowner']);
	demote('dbowner');
};

subtest 'workers ignore overloads in public' => sub {
	$node->safe_psql('app', 'GRANT CREATE ON SCHEMA public TO attacker');
	$node->safe_psql('app', qq{
CREATE FUNCTION public.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE plpgsql AS \$\$
BEGIN @{[promote_if_superuser('attacker')]}
  RETURN pg_catalog.jsonb_build_object(\$1, \$2);
END \$\$;
}, extra_params => ['-U', 'attacker']);
	my $job = erase_job('app', 's4');
	wait_for_status('app', $job, 'completed');
	ok(!superuser('attacker'), 'the worker did not call public.jsonb_build_object as a superuser');
	is(marked_rows('app', $job), subject_rows('app', 's4'), 'every row of the subject is marked');
	$node->safe_psql('app', 'DROP FUNCTION public.jsonb_build_object(text, text); REVOKE CREATE ON SCHEMA public FROM attacker');
	demote('attacker');
};

# ---------------------------------------------------------------------------------------------
# A table owner's code: a BEFORE UPDATE OR DELETE trigger, an index expression and a domain
# check on the subject column each call owned.payload(), which logs who runs it and promotes
# tabowner if that is a superuser. Everything is created by tabowner itself.
for my $db ('app', 'calls') {
	$node->safe_psql($db, 'CREATE SCHEMA owned AUTHORIZATION tabowner');
	$node->safe_psql($db, qq{
CREATE TABLE owned.payload_log (id bigserial PRIMARY KEY, what text, run_as text, was_superuser boolean);
CREATE FUNCTION owned.payload(what text) RETURNS boolean LANGUAGE plpgsql AS \$\$
BEGIN
  INSERT INTO owned.payload_log (what, run_as, was_superuser)
  VALUES (what, current_user, (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user));
  @{[promote_if_superuser('tabowner')]}
  RETURN true;
END \$\$;
CREATE FUNCTION owned.on_change() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  PERFORM owned.payload(TG_OP);
  RETURN CASE WHEN TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN OLD ELSE NEW END;
END \$\$;
CREATE FUNCTION owned.index_key(bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS \$\$
BEGIN
  PERFORM owned.payload('index');
  RETURN \$1;
END \$\$;
CREATE DOMAIN owned.subject_id AS text CHECK (owned.payload('domain'));
CREATE TABLE owned.accounts (id bigint PRIMARY KEY, tenant text NOT NULL, subject owned.subject_id NOT NULL, note text);
CREATE INDEX ON owned.accounts (tenant, subject);
CREATE INDEX ON owned.accounts (owned.index_key(id));
CREATE TRIGGER on_change BEFORE UPDATE OR DELETE ON owned.accounts FOR EACH ROW EXECUTE FUNCTION owned.on_change();
INSERT INTO owned.accounts
SELECT g, 'acme', (ARRAY['victim', 'restored', 'exported', 'bystander'])[g % 4 + 1], 'note ' || g
  FROM generate_series(1, 40) g;
}, extra_params => ['-U', 'tabowner']);
	$node->safe_psql($db, q{
SELECT privacy.register_table('owned.accounts', 'subject', 'tenant', 'anonymize');
SELECT privacy.set_column_rule('owned.accounts', 'note', 'hash');
});
}

# Who ran the owner's code since log id `since`, in database `db`: "what run_as superuser" rows.
sub payload_runs {
	my ($db, $since) = @_;
	return $node->safe_psql($db, qq{
SELECT string_agg(run, ', ' ORDER BY run) FROM (
  SELECT DISTINCT (what || ' ' || run_as || ' ' || was_superuser) COLLATE "C" AS run
    FROM owned.payload_log WHERE id > $since) runs});
}

sub last_log_id {
	my ($db) = @_;
	return $node->safe_psql($db, 'SELECT coalesce(max(id), 0) FROM owned.payload_log');
}

sub owned_rows {
	my ($db, $condition) = @_;
	return $node->safe_psql($db, "SELECT count(*) FROM owned.accounts WHERE $condition");
}

my $victim_job;
subtest 'a table owner\'s code runs as the owner while rows are erased' => sub {
	my $since = last_log_id('app');
	$victim_job = $node->safe_psql('app', q{SELECT privacy.request_erase('acme', 'victim', 'owner code test')});
	wait_for_status('app', $victim_job, 'completed');
	ok(!superuser('tabowner'), 'the table owner was not promoted');
	like(payload_runs('app', $since), qr/^UPDATE tabowner false, index tabowner false$/,
	     'the trigger and the index expression ran as tabowner, not as a superuser');
	is(owned_rows('app', "privacy_erased_by = $victim_job"), owned_rows('app', q{subject::text = 'victim'}),
	   'every row of the subject is marked');
	demote('tabowner');
};

# Row 4 is locked meanwhile: the batch is redone row by row, and that row is set aside.
subtest 'a table owner\'s code runs as the owner while rows are anonymized' => sub {
	my $since = last_log_id('app');
	my $locker = $node->background_psql('app');
	$locker->query_safe('BEGIN; SELECT id FROM owned.accounts WHERE id = 4 FOR UPDATE;');
	$node->safe_psql('app', "UPDATE privacy.jobs SET recoverable_until = now() WHERE id = $victim_job");
	$node->poll_query_until('app', "SELECT finalized_at IS NOT NULL FROM privacy.jobs WHERE id = $victim_job")
	  or die 'the erase was not finalized';
	$locker->query_safe('COMMIT');
	$locker->quit;
	ok(!superuser('tabowner'), 'the table owner was not promoted');
	like(payload_runs('app', $since), qr/^UPDATE tabowner false, domain tabowner false, index tabowner false$/,
	     'the trigger, the domain check and the index expression ran as tabowner');
	is(owned_rows('app', q{subject::text = privacy._pseudonym('victim') AND privacy_erased_by IS NULL
	                        AND note = privacy._pseudonym('note ' || id)}),
	   owned_rows('app', "id % 4 = 0 AND id <> 4"),
	   'every other row is anonymized: subject and note hashed, visible again');
	is($node->safe_psql('app', "SELECT row_key->>'id' || ' ' || sqlstate FROM privacy.job_errors WHERE job_id = $victim_job"),
	   '4 55P03', 'the locked row is set aside with its lock timeout');
	is(owned_rows('app', "id = 4 AND privacy_erased_by = $victim_job AND note = 'note 4'"), '1',
	   'the locked row stays hidden and unchanged');
	demote('tabowner');
};

subtest 'a table owner\'s code runs as the owner while rows are restored' => sub {
	my $job = $node->safe_psql('calls', q{SELECT privacy.request_erase('acme', 'restored', 'restore test')});
	$node->safe_psql('calls', "CALL privacy.run_job($job)");
	is(owned_rows('calls', "privacy_erased_by = $job"), owned_rows('calls', q{subject::text = 'restored'}),
	   'run_job marked the subject\'s rows');
	my $since = last_log_id('calls');
	is($node->safe_psql('calls', "SELECT privacy.restore($job)"), owned_rows('calls', q{subject::text = 'restored'}),
	   'restore brings every row back');
	ok(!superuser('tabowner'), 'the table owner was not promoted');
	like(payload_runs('calls', $since), qr/^UPDATE tabowner false, index tabowner false$/,
	     'the trigger and the index expression ran as tabowner during restore');
	demote('tabowner');
};

subtest 'a table owner\'s code runs as the owner while rows are exported' => sub {
	my $ok = IPC::Run::run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$dir/admin.key",
	                        '-out', "$dir/admin.crt", '-days', '30', '-subj', '/CN=least privilege test'],
	                       '>', \my $out, '2>', \my $err);
	ok($ok, 'openssl made a recipient certificate') or diag($err);
	open my $fh, '<', "$dir/admin.crt" or die $!;
	my $pem = do { local $/; <$fh> };
	$node->safe_psql('app', "SELECT privacy.add_export_recipient('admin', \$pem\$$pem\$pem\$)");
	my $since = last_log_id('app');
	my $job = $node->safe_psql('app', q{SELECT privacy.request_export('acme', 'exported', 'export test')});
	wait_for_status('app', $job, 'completed');
	ok(!superuser('tabowner'), 'the table owner was not promoted');
	# The export reads in the relation walk (data/walk.hpp), which compares the subject id in the
	# column's base type: the domain check need not run at all; if it does, then as tabowner.
	like(payload_runs('app', $since), qr/^(domain tabowner false)?$/,
	     'no owner code ran other than as tabowner when the export read the table');
	is(job_field('app', $job, q{result->>'rows'}),
	   owned_rows('app', q{subject::text = 'exported'}) + subject_rows('app', 'exported'),
	   'the export holds every row of the subject');
	demote('tabowner');
};

# ---------------------------------------------------------------------------------------------
subtest 'the TRUNCATE guard does not run the truncating role\'s code' => sub {
	my $pwned = "$dir/truncate_ran_as_superuser";
	$node->safe_psql('calls', q{
CREATE SCHEMA guard AUTHORIZATION tabowner;
CREATE TABLE guard.held (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
INSERT INTO guard.held SELECT g, 'acme', 'h' || (g % 3) FROM generate_series(1, 30) g;
ALTER TABLE guard.held OWNER TO tabowner;
SELECT privacy.register_table('guard.held', 'subject', 'tenant');
UPDATE guard.held SET privacy_erased_by = 1 WHERE subject = 'h1';   -- hidden, still held
SELECT privacy.place_hold('subject', 'h1', 'acme', 'litigation') > 0;
GRANT USAGE ON SCHEMA guard TO truncator;
GRANT TRUNCATE ON guard.held TO truncator;
});
	my ($ret, $stdout, $stderr) = $node->psql('calls', qq{
\\set VERBOSITY verbose
CREATE FUNCTION pg_temp.escalate(pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS \$\$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
    EXECUTE pg_catalog.format('COPY (SELECT current_user) TO PROGRAM %L', 'cat > $pwned');
  END IF;
  RETURN true;
END \$\$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.escalate(VALUE));
SET search_path = public;
TRUNCATE guard.held;
}, extra_params => ['-U', 'truncator']);
	like($stderr, qr/PV001/, 'TRUNCATE is refused: a held row is there, even though it is soft-deleted');
	ok(!-e $pwned, 'no command ran as a superuser during the TRUNCATE check');
	is($node->safe_psql('calls', 'SELECT count(*) FROM guard.held'), '30', 'no row was truncated');
	$node->safe_psql('calls', q{SELECT privacy.release_hold(id, 'done') FROM privacy.legal_holds WHERE active});
};

# ---------------------------------------------------------------------------------------------
# Five rows each of subjects s7 and s8 are locked by another session: the batch waits for them
# (privacy.lock_timeout = 2s per attempt), and a cancel must end the CALL instead of being taken
# for a locked row and retried row by row.
my $locker = $node->background_psql('calls');
$locker->query_safe(q{BEGIN; SELECT id FROM plain.people WHERE subject IN ('s7', 's8') AND id < 50 FOR UPDATE;});

subtest 'statement_timeout ends CALL privacy.run_job' => sub {
	my $job = erase_job('calls', 's7');
	my $start = time();
	my ($ret, $stdout, $stderr) = $node->psql('calls',
		"\\set VERBOSITY verbose\nSET statement_timeout = '500ms';\nCALL privacy.run_job($job);");
	my $elapsed = time() - $start;
	like($stderr, qr/57014/, 'the CALL fails with SQLSTATE 57014 (query_canceled)');
	cmp_ok($elapsed, '<', 5, "it ended after ${elapsed}s, not after a lock timeout per locked row");
	is(job_field('calls', $job, 'status'), 'processing', 'the job stays processing, to be resumed');
	is($node->safe_psql('calls', "SELECT count(*) FROM privacy.job_errors WHERE job_id = $job"), '0',
	   'no row was set aside as if it had failed');
};

subtest 'pg_cancel_backend ends CALL privacy.run_job' => sub {
	my $job = erase_job('calls', 's8');
	my $runner = $node->background_psql('calls', on_error_stop => 0);
	$runner->query_safe('\set VERBOSITY verbose');
	my $pid = $runner->query_safe('SELECT pg_backend_pid()');
	$runner->query_until(qr/calling/, "\\echo calling\nCALL privacy.run_job($job);\n");
	$node->poll_query_until('calls', "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $pid")
	  or die 'run_job did not wait for the locked rows';
	my $start = time();
	$node->safe_psql('calls', "SELECT pg_cancel_backend($pid)");
	$runner->query('SELECT 1');
	my $elapsed = time() - $start;
	like($runner->{stderr}, qr/57014/, 'the CALL fails with SQLSTATE 57014 (query_canceled)');
	cmp_ok($elapsed, '<', 5, "it ended ${elapsed}s after the cancel");
	is(job_field('calls', $job, 'status'), 'processing', 'the job stays processing, to be resumed');
	$runner->quit;
};

subtest 'cancelled jobs resume and complete once the rows are free' => sub {
	$locker->query_safe('COMMIT');
	for my $subject ('s7', 's8') {
		my $job = $node->safe_psql('calls', "SELECT id FROM privacy.jobs WHERE target_id = '$subject'");
		$node->safe_psql('calls', "CALL privacy.run_job($job)");
		is(job_field('calls', $job, 'status'), 'completed', "the erase of $subject completed");
		is(marked_rows('calls', $job), subject_rows('calls', $subject), "every row of $subject is marked");
	}
};
$locker->quit;

$node->stop;
done_testing();
