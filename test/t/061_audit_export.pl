# The CSV export of the audit trail verifies outside the database with
# scripts/verify-audit-export.sh (awk + openssl), and a tampered field is named by row (issue 6).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename ();

my $node = PostgreSQL::Test::Cluster->new('audit_export');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_privacy'\n");
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION pg_privacy;
    SELECT privacy.configure_tenant('exp_a', display_name => E'Comma, "quote"\nnew line ü');
    SELECT privacy._audit('export_test', 'exp_a', 7, E'a,b"c\nd', 'ok', '{"k": "v, \"w\"", "ü": null}');
    SELECT privacy._audit('export_test', NULL, NULL, '', 'ok');
    SELECT privacy._audit('export_test', 'exp_b', -3, NULL, 'error', '{}');
    SELECT privacy._audit('export_test', 'exp_a', NULL, 'last', 'ok');});

my $csv = export_audit_csv($node);
my $dir = File::Basename::dirname($csv);
my ($ok, $out, $err) = verify_audit_csv($csv);
ok($ok, 'the untouched export verifies offline') or diag("$out\n$err");
like($out, qr/^OK: 6 rows in 3 chains verified$/m, 'the script says OK and counts rows and chains');

# Tamper with one field of one row (the outcome of row exp_b).
my $bad_id = $node->safe_psql('postgres', q{SELECT id FROM privacy.audit_log WHERE chain = 'exp_b'});
my $text = slurp_file($csv);
$text =~ s/^($bad_id,exp_b,.*?),error,/$1,ok,/m or die "row $bad_id not found in the export";
open(my $fh, '>', "$dir/tampered.csv") or die;
print $fh $text;
close($fh);
($ok, $out, $err) = verify_audit_csv("$dir/tampered.csv");
ok(!$ok, 'a tampered export fails');
like($out, qr/^BAD: row $bad_id: hash does not match/m, 'the script names the tampered row');

# A deleted row breaks the link of the next row of its chain.
my ($first_a, $second_a) = split /\n/, $node->safe_psql('postgres',
	q{SELECT id FROM privacy.audit_log WHERE chain = 'exp_a' AND action = 'export_test' ORDER BY id});
$text = slurp_file($csv);
$text =~ s/^$first_a,exp_a,[^\n]*\n(?:[^\n]*\n)??(?=\d)//m;  # the row spans two lines (quoted newline)
open($fh, '>', "$dir/deleted.csv") or die;
print $fh $text;
close($fh);
($ok, $out, $err) = verify_audit_csv("$dir/deleted.csv");
ok(!$ok, 'an export with a deleted row fails');
like($out, qr/^BAD: row $second_a: prev_hash does not link/m, 'the script names the row after the deleted one');

$node->stop;
done_testing();
