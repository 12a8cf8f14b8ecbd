# Version upgrades (issue 15, docs/upgrading.md): an installation made at every earlier version
# and brought up with ALTER EXTENSION pg_privacy UPDATE has the same catalog as a fresh install
# of the current version, keeps its data, and works (an erase processed by the worker).
#
# "The same catalog" is pg_dump --schema-only of the database in binary-upgrade mode: that mode
# dumps every member of the extension one by one (a plain dump shows only CREATE EXTENSION).
# What cannot match between two databases is taken out before comparing (normalize below):
# the OIDs, relfilenodes and frozen xids binary upgrade pins, the stored default of a column
# added with ADD COLUMN ... DEFAULT (how existing rows read it, not a definition), the \restrict keys, and the OIDs of the
# configuration tables (compared by name instead). The order of columns in a table is not
# compared: an update script can only add a column at the end (docs/upgrading.md); nor is the
# order in which the privileges on one object were granted.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_privacy'
privacy.database = 'updated'
privacy.naptime = 1
privacy.require_distinct_approver = off
privacy.default_rows_per_second = 0
});
$node->start;

my $current = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_catalog.pg_available_extensions WHERE name = 'pg_privacy'});
my @earlier = split /\n/, $node->safe_psql('postgres', q{
	SELECT version FROM pg_catalog.pg_available_extension_versions
	 WHERE name = 'pg_privacy' AND version <> (SELECT default_version FROM pg_catalog.pg_available_extensions
	                                           WHERE name = 'pg_privacy')
	 ORDER BY string_to_array(version, '.')::int[]});
ok(scalar(@earlier) >= 1, "earlier versions are installable beside $current: @earlier");

# Each normalized line of a binary-upgrade schema dump, with the column lines of each CREATE
# TABLE sorted (see the header for why and what else is left out).
sub normalized_dump {
	my ($dbname) = @_;
	my ($dump, $err);
	IPC::Run::run([ 'pg_dump', '--binary-upgrade', '--schema-only',
			'-h', $node->host, '-p', $node->port, $dbname ], '>', \$dump, '2>', \$err)
	  or die "pg_dump $dbname failed: $err";
	my @lines;
	my @columns;
	my $in_table = 0;
	for my $line (split /\n/, $dump) {
		next if $line =~ /^\s*$|binary_upgrade_set_next_|binary_upgrade_set_missing_value|^-- set missing value\.|^\\(un)?restrict /;
		$line =~ s/relfrozenxid = '\d+', relminmxid = '\d+'/relfrozenxid = N, relminmxid = N/;
		$line =~ s/^WHERE oid = '\d+';/WHERE oid = N;/;
		$line =~ s/(binary_upgrade_create_empty_extension\('pg_privacy', [^,]+, [^,]+, [^,]+), '\{[0-9,]*\}'/$1, '{config oids}'/;
		if ($line =~ /^CREATE TABLE /) { $in_table = 1; push @lines, $line; next; }
		if ($in_table && $line =~ /^\)/) {
			push @lines, sort map { (my $c = $_) =~ s/,$//; $c } @columns;
			@columns = ();
			$in_table = 0;
		}
		if ($in_table) { push @columns, $line; next; }
		push @lines, $line;
	}
	# The order of the privileges on one object is not compared either: sort each run of GRANTs.
	my @sorted;
	while (@lines) {
		my @grants;
		push @grants, shift @lines while @lines && $lines[0] =~ /^GRANT /;
		if (@grants) { push @sorted, sort @grants; } else { push @sorted, shift @lines; }
	}
	return join("\n", @sorted) . "\n";
}

sub configuration_tables {
	my ($dbname) = @_;
	return $node->safe_psql($dbname, q{
		SELECT c::regclass::text || ' ' || coalesce(extcondition[i], '')
		  FROM pg_catalog.pg_extension, unnest(extconfig) WITH ORDINALITY AS t(c, i)
		 WHERE extname = 'pg_privacy' ORDER BY 1});
}

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION pg_privacy');
my $fresh_dump = normalized_dump('fresh');
like($fresh_dump, qr/CREATE TABLE privacy\.jobs/, 'the binary-upgrade dump lists the extension\'s members');

for my $from (@earlier) {
	my $db = "from_" . ($from =~ s/\./_/gr);
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION pg_privacy VERSION '$from'");
	# Data written at the old version survives the update.
	$node->safe_psql($db, q{INSERT INTO privacy.tenants (tenant_id, display_name) VALUES ('acme', 'Acme before the update')});
	# 0.1.0's audit purge "as of" any time, still declared until the update, is refused by the
	# current library rather than run (as of the time asked or of now).
	if ($node->safe_psql($db, q{SELECT to_regprocedure('privacy._purge_audit(timestamptz)') IS NOT NULL}) eq 't') {
		my ($rc, $out, $err) = $node->psql($db, q{SELECT privacy._purge_audit(now() + interval '10 years')});
		like($err, qr/ERROR:  privacy\._purge_audit\(timestamptz\) was removed in pg_privacy 0\.2\.0/,
			"$from: before the update, the purge as of a chosen time is refused");
	}
	$node->safe_psql($db, 'ALTER EXTENSION pg_privacy UPDATE');
	is($node->safe_psql($db, q{SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_privacy'}),
		$current, "$from updates to $current");
	is($node->safe_psql($db, q{SELECT display_name FROM privacy.tenants WHERE tenant_id = 'acme'}),
		'Acme before the update', "$from: rows written before the update are kept");
	my $updated_dump = normalized_dump($db);
	if ($updated_dump eq $fresh_dump) {
		pass("$from updated to $current: same catalog as a fresh install");
	} else {
		my ($diff) = diff_of($fresh_dump, $updated_dump);
		fail("$from updated to $current: same catalog as a fresh install");
		diag("fresh (-) vs updated from $from (+):\n$diff");
	}
	is(configuration_tables($db), configuration_tables('fresh'),
		"$from: the same configuration tables (dumped data) as a fresh install");
}

# The updated installation works: the worker processes an erase in it.
my $newest_from = $earlier[-1];
$node->safe_psql('postgres', "CREATE DATABASE updated");
$node->safe_psql('updated', "CREATE EXTENSION pg_privacy VERSION '$newest_from'");
$node->safe_psql('updated', 'ALTER EXTENSION pg_privacy UPDATE');
$node->restart;   # the launcher picks up the database's extension
$node->safe_psql('updated', q{
	CREATE TABLE public.people (id bigint PRIMARY KEY, tenant_id text NOT NULL, user_id text NOT NULL);
	INSERT INTO public.people SELECT g, 'acme', 'u' || (g % 3) FROM generate_series(1, 30) g;
	SELECT privacy.register_table('public.people', 'user_id', 'tenant_id');
	CREATE ROLE application;
	GRANT SELECT ON public.people TO application;
});
my $job = $node->safe_psql('updated', q{SELECT privacy.request_erase('acme', 'u1', 'upgrade test')});
$node->safe_psql('updated', "SELECT privacy.approve($job)");
ok($node->poll_query_until('updated', "SELECT status = 'completed' FROM privacy.jobs WHERE id = $job"),
	'an erase requested after the update is processed by the worker');
is($node->safe_psql('updated', q{SET ROLE application; SELECT count(*) FROM public.people WHERE user_id = 'u1'}),
	'0', 'the erased rows are hidden from the application');
is($node->safe_psql('updated', q{SET ROLE application; SELECT count(*) FROM public.people}),
	'20', 'the other subjects\' rows are not');

$node->stop;
done_testing();

# A unified diff of two texts (diff(1) on temporary files), for the failure message.
sub diff_of {
	my ($left, $right) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	open my $l, '>', "$dir/fresh.sql" or die; print $l $left; close $l;
	open my $r, '>', "$dir/updated.sql" or die; print $r $right; close $r;
	my ($out, $err);
	IPC::Run::run([ 'diff', '-u', "$dir/fresh.sql", "$dir/updated.sql" ], '>', \$out, '2>', \$err);
	return $out;
}
