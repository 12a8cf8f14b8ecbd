# Exports through the real job workflow: request_export -> the background worker -> download ->
# openssl cms -decrypt, and a worker killed with SIGKILL mid-export: after the crash restart the
# export starts over cleanly and the file holds every row exactly once.
use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = privacy_node('export_worker', conf => q{
privacy.naptime = 60
privacy.batch_size = 500
privacy.default_rows_per_second = 0
restart_after_crash = on
});

my $ok = IPC::Run::run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$dir/admin.key",
                        '-out', "$dir/admin.crt", '-days', '30', '-subj', '/CN=export admin'],
                       '>', \my $out, '2>', \my $err);
ok($ok, 'openssl made a key and certificate') or diag($err);
open my $fh, '<', "$dir/admin.crt" or die $!;
my $certificate = do { local $/; <$fh> };
close $fh;

$node->safe_psql('postgres', qq{
CREATE EXTENSION pg_privacy;
SELECT privacy.add_export_recipient('admin', \$pem\$$certificate\$pem\$);
CREATE TABLE accounts (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL, note text);
CREATE INDEX ON accounts (tenant, subject, id);
INSERT INTO accounts SELECT g, 'acme', CASE WHEN g <= 20000 THEN 'big' ELSE 'small' END, 'note ' || g
  FROM generate_series(1, 20100) g;
SELECT privacy.register_table('accounts', 'subject', 'tenant');
});
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_privacy launcher'})
  or die 'launcher did not start';

# Downloads a job's file with psql -Atc, decrypts it with the stock command line and returns the
# parsed document.
sub download_and_decrypt {
  my ($job) = @_;
  my $pem = $node->safe_psql('postgres', "SELECT privacy.download_export($job)");
  open my $out, '>', "$dir/export-$job.pem" or die $!;
  print $out $pem, "\n";
  close $out;
  my $decrypted = IPC::Run::run(['openssl', 'cms', '-decrypt', '-inform', 'PEM', '-in', "$dir/export-$job.pem",
                                 '-inkey', "$dir/admin.key", '-recip', "$dir/admin.crt", '-out', "$dir/export-$job.json"],
                                '>', \my $o, '2>', \my $e);
  ok($decrypted, "export of job $job decrypts with openssl cms -decrypt") or diag($e);
  open my $in, '<', "$dir/export-$job.json" or die $!;
  my $text = do { local $/; <$in> };
  close $in;
  return JSON::PP->new->decode($text);
}

sub exported_ids {
  my ($document) = @_;
  my ($table) = grep { $_->{table} =~ /accounts/ } @{ $document->{tables} };
  return map { $_->{id} } @{ $table->{rows} };
}

# 1. A small export: auto-approved (exports need no approval by default), run by the worker.
my $job = $node->safe_psql('postgres', q{SELECT privacy.request_export('acme', 'small', 'GDPR art. 15 #77')});
is($node->safe_psql('postgres', "SELECT requires_approval FROM privacy.jobs WHERE id = $job"), 'f',
   'an export needs no approval by default: queued at once');
$node->poll_query_until('postgres', "SELECT status = 'completed' FROM privacy.jobs WHERE id = $job")
  or die 'export did not complete';
my $document = download_and_decrypt($job);
is($document->{format}, 'pg_privacy.export/1', 'the document format');
is($document->{subject}, 'small', 'the subject');
is_deeply([sort { $a <=> $b } exported_ids($document)], [20001 .. 20100], 'exactly the subject\'s rows, row for row');
like($node->safe_psql('postgres', "SELECT result->>'sha256' FROM privacy.jobs WHERE id = $job"), qr/^[0-9a-f]{64}$/,
     'the job result carries the SHA-256');

# 2. kill -9 of the worker mid-export: the export restarts from scratch and completes; no half
#    file is ever offered.
$node->safe_psql('postgres', q{SELECT privacy.configure_tenant('acme', rows_per_second => 2000)});
$job = $node->safe_psql('postgres', q{SELECT privacy.request_export('acme', 'big', 'GDPR art. 20 #78')});
$node->poll_query_until('postgres', "SELECT processed_items >= 3000 FROM privacy.jobs WHERE id = $job")
  or die 'export made no progress';
is($node->safe_psql('postgres', "SELECT count(*) FROM privacy.export_files WHERE job_id = $job"), '0',
   'no file is offered while the export runs');
my $worker = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_privacy worker'});
like($worker, qr/^\d+$/, 'the worker runs the export');
kill 'KILL', $worker;
$node->poll_query_until('postgres', "SELECT status = 'completed' FROM privacy.jobs WHERE id = $job")
  or die 'export did not complete after the crash';
$document = download_and_decrypt($job);
my @ids = exported_ids($document);
is(scalar(@ids), 20000, 'after the crash the file has all 20,000 rows');
my %seen;
$seen{$_}++ for @ids;
is(scalar(grep { $seen{$_} > 1 } keys %seen), 0, 'and each row exactly once');
is($node->safe_psql('postgres', "SELECT processed_items FROM privacy.jobs WHERE id = $job"), '20000',
   'progress counts each row once');
like($node->safe_psql('postgres', "SELECT string_agg(action, ',' ORDER BY id) FROM privacy.audit_log WHERE job_id = $job"),
     qr/started,resumed,.*completed/, 'the resumed run is audited');

$node->stop;
done_testing();
