# Routing of the batch statements on distributed tables (issue 14 finding 5, docs/citus.md
# "Routing"): erase, finalization and restore send no statement to more than one shard, counted
# by citus_stat_counters. Run it alone with
#   make prove_installcheck PROVE_TESTS=test/citus/030_routing.pl
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use CitusCluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($cluster, $tenant_rows) = CitusCluster->with_application('routing');
my $coordinator = $cluster->coordinator;

# ---- Finding 5: every batch statement is routed to one shard ---------------------------------------
sub multi_shard_queries {
  return $coordinator->safe_psql('postgres',
    "SELECT query_execution_multi_shard FROM citus_stat_counters WHERE name = current_database()");
}
$coordinator->safe_psql('postgres', "SELECT privacy.configure_tenant('t6', recovery_window => '0 seconds')");
my $before = multi_shard_queries();
my $routed = $cluster->run_erase('t6', 's6');
ok($cluster->wait_until("SELECT finalized_at IS NOT NULL OR status = 'failed' FROM privacy.jobs WHERE id = $routed", 60),
   'the t6/s6 erase was finalized');
is(multi_shard_queries() - $before, 0, 'finding 5: erase and finalization sent no statement to more than one shard');

my $to_restore = $cluster->run_erase('t7', 's7');
ok($cluster->wait_until("SELECT status = 'completed' FROM privacy.jobs WHERE id = $to_restore", 60), 'the t7/s7 erase completed');
$before = multi_shard_queries();
my ($restored, $restore_out, $restore_error) = $coordinator->psql('postgres', "SELECT privacy.restore($to_restore)");
is($restored, 0, 'the t7/s7 erase was restored') or diag($restore_error);
is(multi_shard_queries() - $before, 0, 'finding 5: restore sent no statement to more than one shard');


$cluster->stop;
done_testing();
