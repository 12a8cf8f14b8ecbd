# The plans of the batch statements (issue 16, "Scale curve"): every batch of an erase and of its
# finalization reads only its own rows and keeps nothing in memory on the way, whatever else the
# table holds. auto_explain (EXPLAIN ANALYZE of every nested statement, sent to the session as
# NOTICEs in JSON) records each batch statement that CALL privacy.run_job runs; for each one:
#  1. no Sort and no Seq Scan node: the batch's bound is found by walking the index in key order,
#     not by keeping the batch's keys and sorting them (a tenth of a finalization batch's time);
#  2. no scan node of the table returns or filters out more than one batch of rows per loop: the
#     walk never passes over rows of other tenants or subjects, nor over rows it handled already.
# The table interleaves the subject's rows with the rows of 49 other tenants and of another
# subject, the layout of the multi-tenant case of bench/run --scale (1,000 tenants there).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $batch = 200;         # privacy.batch_size: an erase batch; a finalization batch is 10 times it
my $rows = 3000;         # rows of the subject: every 50th id
my $node = privacy_node('batch_plans', database => 'postgres', conf => $JOB_WORKER_CONF);
# A database the launcher does not serve: CALL privacy.run_job runs every batch in the session.
$node->safe_psql('postgres', 'CREATE DATABASE plans');
$node->safe_psql('plans', qq{
CREATE EXTENSION pg_privacy;
CREATE TABLE people (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL, payload text);
CREATE INDEX ON people (tenant, subject, id);
INSERT INTO people
  SELECT g, CASE WHEN g % 50 IN (0, 1) THEN 'acme' ELSE 't' || (g % 50) END,
         CASE WHEN g % 50 = 0 THEN 's1' ELSE 'o' || (g % 7) END, md5(g::text)
    FROM generate_series(1, 50 * $rows) g;
SELECT privacy.register_table('people', 'subject', 'tenant');
SELECT privacy.configure_tenant('acme', approval_required => '{}', recovery_window => '0');
VACUUM ANALYZE people;
});
my $job = $node->safe_psql('plans', q{SELECT privacy.request_erase('acme', 's1', 'plan test')});

my ($out, $err) = ('', '');
$node->psql('plans', qq{
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_analyze = on;
SET auto_explain.log_timing = off;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_format = json;
SET auto_explain.log_level = notice;
SET privacy.batch_size = $batch;
CALL privacy.run_job($job);
}, stdout => \$out, stderr => \$err, on_error_die => 1);
is($node->safe_psql('plans', "SELECT status || '/' || finalization FROM privacy.jobs WHERE id = $job"),
   'completed/finalized', "job $job erased and finalized the subject's rows in the session");
is($node->safe_psql('plans', q{SELECT count(*) FILTER (WHERE subject = 's1') || '/' || count(*) FROM people}),
   '0/' . (49 * $rows), "the subject's $rows rows are gone, the other rows are all there");

# The plans: each NOTICE "duration: ... plan:" is followed by one JSON object.
my @plans;
for my $chunk (split /NOTICE:\s+duration: [0-9.]+ ms\s+plan:\n/, $err) {
	next unless $chunk =~ /\A(\{.*?\n\})/s;
	push @plans, decode_json($1);
}
# The batch statements: those acting on the rows (UPDATE, DELETE) and those finding a batch's end.
my @batches = grep {
	my $text = $_->{'Query Text'} // '';
	$text =~ /\bpeople AS t\b/ && $text =~ /\b(?:DELETE FROM|UPDATE|privacy_batch_ends)\b/
} @plans;
my @marks = grep { $_->{'Query Text'} =~ /\bUPDATE\b/ } @batches;
my @finalizations = grep { $_->{'Query Text'} =~ /\bDELETE FROM\b/ } @batches;
# A finalization's statements address the rows the job marked; a mark's, the unmarked ones.
sub finalizes { return $_[0]->{'Query Text'} =~ /t\.privacy_erased_by OPERATOR\(pg_catalog\.=\) \$1/; }
cmp_ok(scalar(@marks), '>=', $rows / $batch, 'auto_explain recorded every mark batch (' . scalar(@marks) . ')');
cmp_ok(scalar(@finalizations), '>=', $rows / (10 * $batch), 'and every finalization batch (' . scalar(@finalizations) . ')');

# Every node of a plan, depth first.
sub nodes {
	my ($node) = @_;
	return ($node, map { nodes($_) } @{ $node->{Plans} // [] });
}

my (@sorts, @seq_scans, @wide_scans);
for my $plan (@batches) {
	my $limit = finalizes($plan) ? 10 * $batch : $batch;
	for my $n (nodes($plan->{Plan})) {
		my $type = $n->{'Node Type'};
		push @sorts, $plan->{'Query Text'} if $type eq 'Sort';
		next unless ($n->{'Relation Name'} // '') eq 'people';
		push @seq_scans, $plan->{'Query Text'} if $type eq 'Seq Scan';
		next unless $type =~ /Scan/;
		my $loops = $n->{'Actual Loops'} || 1;
		my $read = ($n->{'Actual Rows'} + ($n->{'Rows Removed by Filter'} // 0)) / $loops;
		push @wide_scans, "$type read $read rows per loop (batch of $limit)" if $read > $limit;
	}
}
is(scalar(@sorts), 0, 'no batch statement sorts anything') or diag($sorts[0]);
is(scalar(@seq_scans), 0, 'no batch statement scans the whole table') or diag($seq_scans[0]);
is(scalar(@wide_scans), 0, 'no scan of a batch reads more than one batch of rows') or diag(join("\n", @wide_scans[0 .. 4]));

$node->stop;
done_testing();
