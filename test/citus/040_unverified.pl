# Jobs refuse to write to a Citus table whose placements failed verification and could not be
# repaired (docs/citus.md, "What is refused"), instead of running with an unverified policy; they
# go on once the table verifies again. Run it alone with
#   make prove_installcheck PROVE_TESTS=test/citus/040_unverified.pl
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use CitusCluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($cluster, $tenant_rows) = CitusCluster->with_application('unverified');
my $coordinator = $cluster->coordinator;

# A placement the repair cannot fix: its column privacy_erased_by dropped by hand on the worker
# (the repair re-creates the policy, which needs the column).
my $shard = $cluster->shard_for('people', 't2');
my $worker = $cluster->node_of_shard($shard);
$worker->safe_psql('postgres', "ALTER TABLE people_$shard DROP COLUMN privacy_erased_by CASCADE");
like($coordinator->safe_psql('postgres', 'SELECT privacy.citus_verify()'), qr/shard $shard .*no column privacy_erased_by/,
     'privacy.citus_verify reports the placement it could not repair');
is($coordinator->safe_psql('postgres', 'SELECT relation::text FROM privacy.citus_unverified'), 'people',
   'people is listed as unverified');
is($coordinator->safe_psql('postgres',
     "SELECT outcome FROM privacy.audit_log WHERE action = 'citus_repaired' AND target = 'public.people' ORDER BY id DESC LIMIT 1"),
   'error', 'the failed repair is audited');

# An erase in the application's tenant t1 (another shard): refused on people, nothing marked.
my ($ret, $visible) = $cluster->as_app("SELECT count(*) FROM people WHERE subject = 's5'");
is($visible, '20', 'the application sees the 20 rows of t1/s5');
my $job = $cluster->run_erase('t1', 's5');
ok($cluster->wait_until("SELECT status = 'failed' FROM privacy.jobs WHERE id = $job", 60), 'the erase failed');
like($coordinator->safe_psql('postgres', "SELECT last_error FROM privacy.jobs WHERE id = $job"),
     qr/erase job $job cannot write to public\.people: its Citus placements failed verification and could not be repaired/,
     'the erase refused to write to people while its placements are unverified, saying why');
is($coordinator->safe_psql('postgres', "SELECT count(*) FROM orders WHERE privacy_erased_by = $job"), '0',
   'it marked no row, not even in orders (the batch that reached people rolled back)');

# The placement fixed: verified, no longer listed, and the job goes on.
$worker->safe_psql('postgres', "ALTER TABLE people_$shard ADD COLUMN privacy_erased_by bigint");
is($coordinator->safe_psql('postgres', 'SELECT privacy.citus_verify() IS NULL'), 't',
   'privacy.citus_verify repairs the placement once the column is back');
is($coordinator->safe_psql('postgres', 'SELECT count(*) FROM privacy.citus_unverified'), '0', 'nothing is listed any more');
$coordinator->safe_psql('postgres', "SELECT privacy.retry($job)");
ok($cluster->wait_until("SELECT status = 'completed' AND total_items = 40 FROM privacy.jobs WHERE id = $job", 60),
   'the erase, retried, completes once the table verifies again');
($ret, $visible) = $cluster->as_app("SELECT count(*) FROM people WHERE subject = 's5'");
is($visible, '0', 'the erased rows are hidden from the application');

$cluster->stop;
done_testing();
