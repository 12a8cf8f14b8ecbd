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
# Batches of 6 rows, so that each subject's 20 rows take several batches, each after a position
# (keyset on a key (tenant_id, id) of which the filter fixes the tenant); orders' note hashed, so
# that the anonymizing finalization picks its rows and rewrites them (two statements a batch);
# visits, a table without tenants distributed by its subject column (key (subject, seq)), 10 rows
# a subject.
$coordinator->safe_psql('postgres', q{
CREATE TABLE visits (subject text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (subject, seq));
SELECT create_distributed_table('visits', 'subject');
INSERT INTO visits SELECT 's' || (g % 10), g FROM generate_series(1, 100) g;
SELECT privacy.register_table('visits', 'subject');
ALTER SYSTEM SET privacy.batch_size = 6;
SELECT pg_reload_conf();
SELECT privacy.set_column_rule('orders', 'note', 'hash');
SELECT privacy.configure_tenant('t6', recovery_window => '0 seconds');
});
my $before = multi_shard_queries();
my $routed = $cluster->run_erase('t6', 's6');
ok($cluster->wait_until("SELECT finalized_at IS NOT NULL OR status = 'failed' FROM privacy.jobs WHERE id = $routed", 60),
   'the t6/s6 erase was finalized');
is(multi_shard_queries() - $before, 0, 'finding 5: erase and finalization sent no statement to more than one shard');
# Pseudonyms exist on the coordinator only: computed there first (row 6 is one of t6/s6's orders).
my ($customer, $note_6) = split /\|/,
  $coordinator->safe_psql('postgres', "SELECT privacy._pseudonym('s6'), privacy._pseudonym('note 6')");
is($coordinator->safe_psql('postgres', qq{
SELECT j.status, j.total_items, (SELECT count(*) FROM privacy.job_errors e WHERE e.job_id = j.id),
       (SELECT count(*) FROM people WHERE tenant_id = 't6' AND subject = 's6'),
       (SELECT count(*) FROM orders WHERE tenant_id = 't6' AND customer = 's6'),
       (SELECT count(*) FROM orders WHERE tenant_id = 't6' AND customer = '$customer' AND privacy_erased_by IS NULL
                                      AND note <> 'note ' || id),
       (SELECT note = '$note_6' FROM orders WHERE tenant_id = 't6' AND id = 6),
       (SELECT count(*) FROM visits WHERE subject = 's6')
  FROM privacy.jobs j WHERE j.id = $routed}),
   'completed|50|0|0|0|20|t|0',
   'every row of the subject finalized over several routed batches: people and visits deleted, orders anonymized');

# The restore in the application's tenant t1, so that it can see the rows come back.
my (undef, $visible) = $cluster->as_app("SELECT count(*) FROM people WHERE subject = 's7'");
is($visible, '20', 'the application sees the 20 rows of t1/s7');
my $to_restore = $cluster->run_erase('t1', 's7');
ok($cluster->wait_until("SELECT status = 'completed' FROM privacy.jobs WHERE id = $to_restore", 60), 'the t1/s7 erase completed');
(undef, $visible) = $cluster->as_app("SELECT count(*) FROM people WHERE subject = 's7'");
is($visible, '0', 'the application no longer sees them');
$before = multi_shard_queries();
my $one_key = $coordinator->safe_psql('postgres',
  "SELECT min(id) FROM people WHERE tenant_id = 't1' AND subject = 's7' AND privacy_erased_by = $to_restore");
my ($restored, $restore_out, $restore_error) = $coordinator->psql('postgres',
  "SELECT privacy.restore($to_restore, 'people', '[{\"tenant_id\": \"t1\", \"id\": $one_key}]')");
is("$restored|$restore_out", '0|1', 'one row of the t1/s7 erase restored by its key') or diag($restore_error);
($restored, $restore_out, $restore_error) = $coordinator->psql('postgres', "SELECT privacy.restore($to_restore)");
is("$restored|$restore_out", '0|49', 'the rest of the t1/s7 erase was restored (people, orders, visits)') or diag($restore_error);
is(multi_shard_queries() - $before, 0, 'finding 5: restore sent no statement to more than one shard');
(undef, $visible) = $cluster->as_app("SELECT count(*) FROM people WHERE subject = 's7'");
is($visible, '20', 'the application sees the restored rows again');


$cluster->stop;
done_testing();
