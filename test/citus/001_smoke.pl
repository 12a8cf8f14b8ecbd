# pg_privacy on a three-node Citus cluster (docs/citus.md): a distributed table is registered on
# the coordinator, an erase and an export run to completion through the coordinator's job worker,
# and restore brings the erased rows back. On the worker nodes pg_privacy refuses requests with a
# clear message and its launcher stays idle.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use CitusCluster;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;

my $cluster = CitusCluster->new('smoke', coordinator_conf => "privacy.naptime = 1\n");
my $coordinator = $cluster->coordinator;
my ($worker) = $cluster->workers;

is($coordinator->safe_psql('postgres',
     "SELECT count(*) FROM pg_dist_node WHERE isactive AND noderole = 'primary'"),
   '3', 'a coordinator and two workers are active');
is($worker->safe_psql('postgres', "SELECT extversion IS NOT NULL FROM pg_extension WHERE extname = 'pg_privacy'"),
   't', 'Citus created pg_privacy on the workers too');

my $dir = PostgreSQL::Test::Utils::tempdir;
my $made = IPC::Run::run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$dir/admin.key",
                          '-out', "$dir/admin.crt", '-days', '30', '-subj', '/CN=export admin'],
                         '>', \my $out, '2>', \my $err);
ok($made, 'openssl made a key and certificate') or diag($err);
my $certificate = do { open my $fh, '<', "$dir/admin.crt" or die $!; local $/; <$fh> };

$coordinator->safe_psql('postgres', qq{
SELECT privacy.add_export_recipient('admin', \$pem\$$certificate\$pem\$);
CREATE TABLE accounts (tenant_id text NOT NULL, id bigint NOT NULL, subject text NOT NULL, note text,
                       PRIMARY KEY (tenant_id, id));
CREATE INDEX ON accounts (tenant_id, subject, id);
SELECT create_distributed_table('accounts', 'tenant_id');
INSERT INTO accounts SELECT 't' || (g % 4), g, 's' || (g % 10), 'note ' || g FROM generate_series(1, 2000) g;
SELECT privacy.register_table('accounts', 'subject', 'tenant_id');
});
is($coordinator->safe_psql('postgres', "SELECT count(*) FROM run_command_on_shards('accounts',
     \$\$SELECT count(*) FROM pg_attribute WHERE attrelid = '%s'::regclass AND attname = 'privacy_erased_by'\$\$)
     WHERE result = '1'"),
   $coordinator->safe_psql('postgres', "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'accounts'::regclass"),
   'registration added privacy_erased_by to every shard');

sub subject_rows {
  my ($tenant, $subject) = @_;
  return $coordinator->safe_psql('postgres',
    "SELECT count(*) FROM accounts WHERE tenant_id = '$tenant' AND subject = '$subject'");
}

sub wait_for_job {
  my ($job, $status) = @_;
  $coordinator->poll_query_until('postgres', "SELECT status = '$status' FROM privacy.jobs WHERE id = $job")
    or die "job $job did not become $status: "
      . $coordinator->safe_psql('postgres', "SELECT status || ' ' || coalesce(error, '') FROM privacy.jobs WHERE id = $job");
}

# Erase: approved on the coordinator, run by the coordinator's job worker.
my $subject_rows = subject_rows('t1', 's1');
my $erase = $coordinator->safe_psql('postgres', "SELECT privacy.request_erase('t1', 's1', 'smoke erase')");
$coordinator->safe_psql('postgres', "SELECT privacy.approve($erase)");
wait_for_job($erase, 'completed');
is($coordinator->safe_psql('postgres', "SELECT processed_items FROM privacy.jobs WHERE id = $erase"),
   $subject_rows, 'the erase processed every row of the subject');
is($coordinator->safe_psql('postgres', "SELECT count(*) FROM accounts WHERE privacy_erased_by = $erase"),
   $subject_rows, 'exactly the subject\'s rows are marked on the shards');

# Export: the same path, ending in an encrypted file that decrypts with the stock tools.
my $export = $coordinator->safe_psql('postgres', "SELECT privacy.request_export('t2', 's2', 'smoke export')");
$coordinator->safe_psql('postgres', "SELECT privacy.approve($export)")
  if $coordinator->safe_psql('postgres', "SELECT status FROM privacy.jobs WHERE id = $export") eq 'pending';
wait_for_job($export, 'completed');
my $pem = $coordinator->safe_psql('postgres', "SELECT privacy.download_export($export)");
open my $pem_file, '>', "$dir/export.pem" or die $!;
print $pem_file $pem, "\n";
close $pem_file;
my $decrypted = IPC::Run::run(['openssl', 'cms', '-decrypt', '-inform', 'PEM', '-in', "$dir/export.pem",
                               '-inkey', "$dir/admin.key", '-recip', "$dir/admin.crt", '-out', "$dir/export.json"],
                              '>', \my $o, '2>', \my $e);
ok($decrypted, 'the export decrypts with openssl cms -decrypt') or diag($e);
my $document = JSON::PP->new->decode(do { open my $fh, '<', "$dir/export.json" or die $!; local $/; <$fh> });
my ($exported) = grep { $_->{table} =~ /accounts/ } @{ $document->{tables} };
is(scalar @{ $exported->{rows} }, subject_rows('t2', 's2'), 'the export holds every row of the subject');

# Restore brings the erased rows back.
is($coordinator->safe_psql('postgres', "SELECT privacy.restore($erase)"), $subject_rows,
   'restore reports every erased row');
is($coordinator->safe_psql('postgres', "SELECT count(*) FROM accounts WHERE privacy_erased_by IS NOT NULL"),
   '0', 'no row is marked after the restore');

# On a worker node: requests are refused with a clear message and change nothing.
my ($ret, $stdout, $stderr) = $worker->psql('postgres',
  "\\set VERBOSITY verbose\nSELECT privacy.request_erase('t1', 's2', 'sent to the wrong node')");
isnt($ret, 0, 'request_erase on a worker node fails');
like($stderr, qr/0A000: privacy\.request_erase is not available on a Citus worker node: this node is worker group \d+/,
     'the error names the call, the node and SQLSTATE 0A000');
like($stderr, qr/HINT:  Connect to the coordinator \(127\.0\.0\.1:${\ $coordinator->port }\)/,
     'the hint names the coordinator');
($ret, $stdout, $stderr) = $worker->psql('postgres', "SELECT privacy.register_table('accounts', 'subject', 'tenant_id')");
like($stderr, qr/privacy\.register_table is not available on a Citus worker node/, 'register_table is refused');
($ret, $stdout, $stderr) = $worker->psql('postgres', "SELECT privacy.place_hold('tenant', 't1', NULL, 'wrong node')");
like($stderr, qr/is not available on a Citus worker node/, 'place_hold is refused');
is($worker->safe_psql('postgres', 'SELECT (SELECT count(*) FROM privacy.jobs) + (SELECT count(*) FROM privacy.legal_holds)'
                        . ' + (SELECT count(*) FROM privacy.audit_log)'),
   '0', 'nothing was recorded on the worker');

# The launcher runs on every node (shared_preload_libraries), but on a worker it does nothing.
ok($worker->poll_query_until('postgres',
     "SELECT state = 'idle: Citus worker node' FROM privacy.worker_status() WHERE process = 'launcher'"),
   'the worker\'s launcher is idle and says why');
isnt($coordinator->safe_psql('postgres', "SELECT state FROM privacy.worker_status() WHERE process = 'launcher'"),
     'idle: Citus worker node', 'the coordinator\'s launcher works');

$cluster->stop;
done_testing();
