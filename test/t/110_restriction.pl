# Restriction of processing (GDPR Art. 18; issue 18, docs/jobs.md "Restriction of processing"):
# a restrict job, filed through the self-service call and run like any job, hides the subject's
# rows from the application through the policy that hides erased rows, without erasing them;
# holds and exports keep working on them, an erase is refused while the restriction lasts, the
# finalization of another subject's erasure leaves them alone, and privacy.lift_restriction shows
# them again. Everything is audited.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('restriction');
$node->init;
# No launcher for this database: the test runs each job itself with CALL privacy.run_job.
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_privacy'\nprivacy.database = 'postgres'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');

$node->safe_psql('app', q{
CREATE EXTENSION pg_privacy;
CREATE TABLE users (tenant text NOT NULL, id text NOT NULL, name text, PRIMARY KEY (tenant, id));
CREATE TABLE comments (id bigint PRIMARY KEY, tenant text NOT NULL, user_id text NOT NULL, body text,
                       FOREIGN KEY (tenant, user_id) REFERENCES users);
CREATE INDEX ON comments (tenant, user_id, id);
INSERT INTO users SELECT 'acme', 'u' || g, 'user ' || g FROM generate_series(1, 5) g;
INSERT INTO comments SELECT g, 'acme', 'u' || (1 + g % 5), 'comment ' || g FROM generate_series(1, 50) g;
SELECT privacy.register_table('users', 'id', 'tenant');
SELECT privacy.register_table('comments', 'user_id', 'tenant');
SELECT privacy.configure_tenant('acme', recovery_window => '0');
CREATE ROLE app_role LOGIN IN ROLE privacy_intake;
GRANT SELECT, UPDATE ON users, comments TO app_role;
CREATE POLICY tenant_isolation ON users USING (tenant = current_setting('app.tenant', true));
CREATE POLICY tenant_isolation ON comments USING (tenant = current_setting('app.tenant', true));
});

sub app_sees {
	my ($user) = @_;
	return $node->safe_psql('app', qq{
SET SESSION AUTHORIZATION app_role; SET app.tenant = 'acme';
SELECT (SELECT count(*) FROM users WHERE id = '$user') + (SELECT count(*) FROM comments WHERE user_id = '$user')});
}

is(app_sees('u2'), 11, 'the application sees user u2 and their 10 comments');

# The application files the restriction for its logged-in user.
my $job = $node->safe_psql('app', q{
SET SESSION AUTHORIZATION app_role; SET app.tenant = 'acme'; SET app.user_id = 'u2';
SELECT privacy.submit_subject_request('restrict', 'contests the accuracy of their data')});
is($node->safe_psql('app', "SELECT kind || ' ' || status || ' ' || target_id FROM privacy.jobs WHERE id = $job"),
	'restrict approved u2', 'a restrict job for the logged-in user, approved by the default policy');
$node->safe_psql('app', "CALL privacy.run_job($job)");
is($node->safe_psql('app', "SELECT status FROM privacy.jobs WHERE id = $job"), 'completed', 'the restriction ran');
is(app_sees('u2'), 0, 'the restricted subject is invisible to the application');
is(app_sees('u3'), 11, 'other subjects stay visible');
is($node->safe_psql('app', q{SELECT count(*) FROM users u WHERE id = 'u2'} . " AND privacy_erased_by = $job"), 1,
	'the rows are still there, marked with the restriction, not an erasure');
is($node->safe_psql('app', "SELECT finalization IS NULL AND recoverable_until IS NULL FROM privacy.jobs WHERE id = $job"),
	't', 'a restriction has no finalization and no recovery window');

# An erasure of another subject is finalized at once (window 0) and leaves the restricted rows alone.
my $other = $node->safe_psql('app', q{SELECT privacy.request_erase('acme', 'u3', 'asked to be forgotten')});
$node->safe_psql('app', "SET privacy.require_distinct_approver = off; SELECT privacy.approve($other)");
$node->safe_psql('app', "CALL privacy.run_job($other)");
is($node->safe_psql('app', "SELECT finalization FROM privacy.jobs WHERE id = $other"), 'finalized', 'u3 was erased and finalized');
is($node->safe_psql('app', q{SELECT count(*) FROM comments WHERE user_id = 'u2'}), 10,
	"the restricted subject's rows survive another job's finalization");

my ($rc, $out, $err) = $node->psql('app', q{SELECT privacy.request_erase('acme', 'u2', 'asked to be forgotten')});
like($err, qr/restriction job $job is in effect/, 'an erase of a restricted subject is refused while it lasts');

# Holds and exports keep working on restricted rows.
my $hold = $node->safe_psql('app', q{SELECT privacy.place_hold('subject', 'u2', 'acme', 'case 7')});
ok($hold > 0, 'a legal hold can be placed on a restricted subject');
my $dir = $node->basedir;
system_or_bail('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$dir/dpo.key",
	'-out', "$dir/dpo.crt", '-days', '30', '-subj', '/CN=Restriction DPO');
$node->safe_psql('app', qq{SELECT privacy.add_export_recipient('dpo', pg_read_file('$dir/dpo.crt'))});
my $export = $node->safe_psql('app', q{SELECT privacy.request_export('acme', 'u2', 'access request')});
$node->safe_psql('app', "CALL privacy.run_job($export)");
is($node->safe_psql('app', "SELECT status || ' ' || processed_items FROM privacy.jobs WHERE id = $export"),
	'completed 11', 'an export of the restricted subject reads all 11 rows');
is($node->safe_psql('app', "SELECT count(*) FROM privacy.export_files WHERE job_id = $export"), 1, 'and writes its file');

# Lifting: only an admin, only once; the rows come back, the hold stays.
($rc, $out, $err) = $node->psql('app', "SET SESSION AUTHORIZATION app_role; SELECT privacy.lift_restriction($job)");
like($err, qr/permission denied/, 'the application cannot lift the restriction');
is($node->safe_psql('app', "SELECT privacy.lift_restriction($job, 'dpo\@acme.example')"), 11, 'lifting shows 11 rows again');
is(app_sees('u2'), 11, 'the subject is visible to the application again');
($rc, $out, $err) = $node->psql('app', "SELECT privacy.lift_restriction($job)");
like($err, qr/already lifted/, 'a restriction is lifted once');
($rc, $out, $err) = $node->psql('app', "SELECT privacy.lift_restriction($other)");
like($err, qr/is a erase job, not a restriction|not a restriction/, 'lift_restriction refuses other jobs');
is($node->safe_psql('app', "SELECT active FROM privacy.legal_holds WHERE id = $hold"), 't', 'the hold is untouched');
is($node->safe_psql('app', qq{SELECT string_agg(action || ':' || actor || ':' || coalesce(detail->>'on_behalf_of', '-'), ' ' ORDER BY id)
  FROM privacy.audit_log WHERE job_id = $job AND action IN ('submitted', 'completed', 'restriction_lifted')}),
	'submitted:app_role:subject:u2 completed:postgres:- restriction_lifted:postgres:dpo@acme.example',
	'request, completion and lifting are audited, with the humans behind them');
is($node->safe_psql('app', "SELECT ok FROM privacy.verify_audit_log()"), 't', 'the trail verifies');

$node->stop;
done_testing();
