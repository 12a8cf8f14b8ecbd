# Load-aware pacing (issue 16, docs/performance.md "Pacing"): job workers accumulate a cost from
# the buffer pages they hit, read and dirty, and nap when it reaches privacy.cost_limit.
#  1. privacy.cost_limit and privacy.cost_delay refuse bad values with SQLSTATE 22023, and so do
#     the tenant overrides of privacy.configure_tenant, which then change nothing;
#  2. privacy.tenant_settings shows the server's defaults, and a tenant's override in their place;
#  3. a job of a tenant with a tiny cost limit naps after its batches (request and finalization)
#     and counts the naps in privacy.jobs (cost_naps, cost_napped); a tenant with cost_delay 0
#     (pacing off) never naps. Both through the background worker and CALL privacy.run_job.
# No test here depends on how long anything takes: it waits for conditions, with a deadline.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PrivacyTest;

my $node = PostgreSQL::Test::Cluster->new('pacing');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_privacy'
privacy.database = 'app'
privacy.naptime = 1
privacy.max_workers = 2
privacy.batch_size = 100
privacy.default_rows_per_second = 0
privacy.require_distinct_approver = off
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->poll_query_until('app', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_privacy launcher'})
  or die 'launcher did not start';
$node->safe_psql('app', q{
CREATE EXTENSION pg_privacy;
CREATE TABLE people (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL, payload text);
CREATE INDEX ON people (tenant, subject, id);
INSERT INTO people SELECT g, 'acme', 'paced', md5(g::text) FROM generate_series(1, 1000) g;
INSERT INTO people SELECT 1000 + g, 'quiet', 'unpaced', md5(g::text) FROM generate_series(1, 1000) g;
INSERT INTO people SELECT 2000 + g, 'acme', 'by_hand', md5(g::text) FROM generate_series(1, 500) g;
SELECT privacy.register_table('people', 'subject', 'tenant');
SELECT privacy.configure_tenant('acme', approval_required => '{}', recovery_window => '0');
SELECT privacy.configure_tenant('quiet', approval_required => '{}', recovery_window => '0');
-- The SQLSTATE and message of a statement that fails ('ok' if it does not).
CREATE FUNCTION outcome(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
});

sub query { return $node->safe_psql('app', $_[0]); }
sub wait_for {
	my ($sql, $what) = @_;
	return ok($node->poll_query_until('app', $sql), "reached: $what");
}

# ------------------------------------------------------------------------------------------------
# 1. Bad values: a clear error with SQLSTATE 22023, naming the setting, and nothing changes.
like(query(q{SELECT outcome('SET privacy.cost_limit = 0')}), qr/^22023: .*privacy\.cost_limit/,
     'privacy.cost_limit 0 is refused with 22023');
like(query(q{SELECT outcome('SET privacy.cost_limit = 1000001')}), qr/^22023: .*privacy\.cost_limit/,
     'privacy.cost_limit above 1,000,000 is refused with 22023');
like(query(q{SELECT outcome('SET privacy.cost_delay = ''-1ms''')}), qr/^22023: .*privacy\.cost_delay/,
     'a negative privacy.cost_delay is refused with 22023');
like(query(q{SELECT outcome('SET privacy.cost_delay = ''1s''')}), qr/^22023: .*privacy\.cost_delay/,
     'privacy.cost_delay above 100 ms is refused with 22023');
is(query(q{SELECT outcome('SET privacy.cost_limit = 500')}), 'ok', 'a valid privacy.cost_limit is taken');

my $before = query(q{SELECT cost_limit, cost_delay FROM privacy.tenants WHERE tenant_id = 'acme'});
like(query(q{SELECT outcome($$SELECT privacy.configure_tenant('acme', cost_limit => 0)$$)}),
     qr/^22023: cost_limit for tenant "acme" must be between 1 and 1000000, not 0/,
     'configure_tenant refuses cost_limit 0 with 22023, naming the tenant');
like(query(q{SELECT outcome($$SELECT privacy.configure_tenant('acme', cost_delay => '1 second')$$)}),
     qr/^22023: cost_delay for tenant "acme" must be between 0 and 100 ms/,
     'configure_tenant refuses a cost_delay above 100 ms with 22023');
like(query(q{SELECT outcome($$SELECT privacy.configure_tenant('acme', cost_delay => '-1 ms')$$)}),
     qr/^22023: cost_delay for tenant "acme"/, 'configure_tenant refuses a negative cost_delay with 22023');
is(query(q{SELECT cost_limit, cost_delay FROM privacy.tenants WHERE tenant_id = 'acme'}), $before,
   'the refused calls changed nothing');
like(query(q{SELECT outcome($$INSERT INTO privacy.tenants (tenant_id, cost_limit) VALUES ('direct', 0)$$)}),
     qr/^23514: /, 'the table refuses an out-of-range cost_limit written past configure_tenant');

# ------------------------------------------------------------------------------------------------
# 2. The effective settings: the server's defaults, or the tenant's own.
is(query(q{SELECT cost_limit = current_setting('privacy.cost_limit')::integer
                  AND cost_delay = current_setting('privacy.cost_delay')::interval
             FROM privacy.tenant_settings('acme')}), 't', 'without an override a tenant has the server defaults');
query(q{SELECT privacy.configure_tenant('acme', cost_limit => 1, cost_delay => '10 us')});
query(q{SELECT privacy.configure_tenant('quiet', cost_delay => '0')});
is(query(q{SELECT cost_limit || '/' || cost_delay FROM privacy.tenant_settings('acme')}), '1/00:00:00.00001',
   "acme's override is its effective setting");
is(query(q{SELECT (cost_limit = current_setting('privacy.cost_limit')::integer) || '/' || cost_delay
             FROM privacy.tenant_settings('quiet')}), 'true/00:00:00', "quiet keeps the default limit, pacing off");
is(query(q{SELECT detail -> 'after' ->> 'cost_limit' FROM privacy.audit_log
            WHERE action = 'settings_changed' AND tenant_id = 'acme' ORDER BY id DESC LIMIT 1}), '1',
   'the override is in the audit row of the change');

# ------------------------------------------------------------------------------------------------
# 3. Naps are taken and counted, per tenant.
my $paced = query(q{SELECT privacy.request_erase('acme', 'paced', 'pacing test')});
my $unpaced = query(q{SELECT privacy.request_erase('quiet', 'unpaced', 'pacing test')});
for my $job ($paced, $unpaced) {
	wait_for("SELECT status = 'completed' AND finalization = 'finalized' FROM privacy.jobs WHERE id = $job",
	         "job $job erased and finalized by the worker");
}
# 1,000 rows in batches of 100: each batch costs far more than 1 unit, so each but the last (which
# finds nothing more to do) is followed by a nap; the finalization's larger batches add theirs.
cmp_ok(query("SELECT cost_naps FROM privacy.jobs WHERE id = $paced"), '>=', 10,
       'a job of the tenant with cost_limit 1 napped after every batch of 100 rows');
is(query("SELECT cost_napped > interval '0' AND cost_naps > 0 FROM privacy.job_overview WHERE id = $paced"), 't',
   'and its naps add up, shown in privacy.job_overview');
is(query("SELECT cost_naps || '/' || cost_napped FROM privacy.jobs WHERE id = $unpaced"), '0/00:00:00',
   'a job of the tenant with cost_delay 0 never napped');
is(query(q{SELECT count(*) FROM people WHERE subject IN ('paced', 'unpaced')}), '0', 'both erased everything');

# CALL privacy.run_job paces the same way, from the session's settings for tenants without their
# own: in a database the launcher does not serve (privacy.database is 'app'), so nobody else runs it.
my $by_hand = manual_erase_job($node, 500, 'pacing test');
$node->safe_psql('manual', qq{SET privacy.cost_limit = 1; SET privacy.cost_delay = '10us'; CALL privacy.run_job($by_hand)});
is($node->safe_psql('manual', "SELECT status || '/' || finalization FROM privacy.jobs WHERE id = $by_hand"),
   'completed/finalized', "CALL privacy.run_job erased and finalized job $by_hand");
cmp_ok($node->safe_psql('manual', "SELECT cost_naps FROM privacy.jobs WHERE id = $by_hand"), '>=', 5,
       "CALL privacy.run_job napped after every batch with the session's cost_limit 1");

$node->stop;
done_testing();
