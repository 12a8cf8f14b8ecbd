# Legal holds on distributed tables (issue 14 finding 2, docs/citus.md "Legal holds"): a hold
# placed on the coordinator is in force on the shards of every worker from its commit, also on
# shards moved while it is active; refusals are audited on the coordinator's chain naming the
# table; table holds on Citus tables are refused; the release reaches every node. Run it alone with
#   make prove_installcheck PROVE_TESTS=test/citus/020_holds.pl
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use CitusCluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($cluster, $tenant_rows) = CitusCluster->with_application('holds');
my $coordinator = $cluster->coordinator;

# ---- Finding 2: legal holds on distributed tables ------------------------------------------------
my ($placed, $hold, $place_error) = $coordinator->psql('postgres',
  "SELECT privacy.place_hold('subject', 's5', 't1', 'case 14')");
is($placed, 0, 'finding 2: place_hold works on a distributed table') or diag($place_error);
for my $worker ($cluster->workers) {
  is($worker->safe_psql('postgres', "SELECT count(*) FROM privacy.hold_replica WHERE id = $hold AND active"),
     '1', 'finding 2: the hold is on the worker node as soon as place_hold commits');
}
my $held_rows = $coordinator->safe_psql('postgres', "SELECT count(*) FROM people WHERE tenant_id = 't1' AND subject = 's5'");
cmp_ok($held_rows, '>', 0, 'the held subject has rows in the tenant');
my ($deleted, $out, $delete_error) = $cluster->as_app("DELETE FROM people WHERE subject = 's5'");
isnt($deleted, 0, 'finding 2: the application\'s DELETE of a held subject is refused');
like($delete_error, qr/blocked by legal hold $hold/, 'finding 2: the refusal names the hold');
is($coordinator->safe_psql('postgres', "SELECT count(*) FROM people WHERE tenant_id = 't1' AND subject = 's5'"),
   $held_rows, 'finding 2: the held rows are still there');
ok($cluster->wait_until(qq{SELECT count(*) > 0 FROM privacy.audit_log WHERE action = 'hold_blocked'
                  AND target = 'public.people' AND tenant_id = 't1' AND actor = 'app'}, 15),
   'finding 2: the refusal is audited on the coordinator\'s chain, naming the table (not a shard) and the app')
  or diag($coordinator->safe_psql('postgres', "SELECT actor, target, tenant_id FROM privacy.audit_log WHERE action = 'hold_blocked'"));

# A shard created while the hold is in force (a move) carries the hold's triggers.
$cluster->move_shard($cluster->shard_for('people', 't1'));
($deleted, $out, $delete_error) = $cluster->as_app("UPDATE people SET payload = 'changed' WHERE subject = 's5'");
like($delete_error, qr/blocked by legal hold $hold/, 'finding 2: after a shard move the held rows are still protected');
my ($ok, $o2, $unheld_error) = $cluster->as_app("UPDATE people SET payload = 'changed' WHERE subject = 's3'");
is($ok, 0, 'rows no hold covers can still be changed') or diag($unheld_error);

# A table hold cannot be enforced on the shards: refused, saying why.
my ($refused, $o3, $table_hold_error) = $coordinator->psql('postgres',
  "SELECT privacy.place_hold('table', 'public.people', NULL, 'whole table')");
like($table_hold_error, qr/a table hold on public.people is not supported: it is a Citus table/,
     'finding 2: a table hold on a distributed table is refused');

$coordinator->safe_psql('postgres', "SELECT privacy.release_hold($hold, 'case closed')");
for my $worker ($cluster->workers) {
  is($worker->safe_psql('postgres', "SELECT count(*) FROM privacy.hold_replica WHERE id = $hold AND active"),
     '0', 'the release reaches the worker node in the same transaction');
}
($deleted, $out, $delete_error) = $cluster->as_app("DELETE FROM people WHERE subject = 's5'");
is($deleted, 0, 'after the release the application may delete the rows again') or diag($delete_error);

$cluster->stop;
done_testing();
