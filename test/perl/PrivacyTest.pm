# The cluster setup the Perl TAP tests of test/t share: a node with pg_privacy preloaded and its
# launcher connected to one database. Found through `PROVE_FLAGS += -I test/perl` (Makefile) and,
# when a file is run by hand, the file's own `use lib "$FindBin::Bin/../perl"`.
package PrivacyTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;

our @EXPORT = qw(privacy_node wait_for_launcher manual_erase_job export_audit_csv verify_audit_csv $JOB_WORKER_CONF);

# The settings of the tests that run jobs in background workers: two workers, batches of 100
# rows, no throttle, and a requester may approve alone.
our $JOB_WORKER_CONF = <<'EOC';
privacy.max_workers = 2
privacy.batch_size = 100
privacy.default_rows_per_second = 0
privacy.require_distinct_approver = off
max_worker_processes = 16
EOC

# A started node named $name with shared_preload_libraries = 'pg_privacy' and
# privacy.database = $opts{database} ('postgres' unless given), plus the postgresql.conf lines
# of $opts{conf}. Then, in this order: creates that database unless it is postgres or
# $opts{create_database} is 0; waits for the launcher when $opts{wait_for_launcher}; runs
# CREATE EXTENSION pg_privacy in it when $opts{create_extension}.
sub privacy_node {
	my ($name, %opts) = @_;
	my $database = $opts{database} // 'postgres';
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'pg_privacy'\nprivacy.database = '$database'\n" . ($opts{conf} // ''));
	$node->start;
	if ($database ne 'postgres' && ($opts{create_database} // 1)) {
		$node->safe_psql('postgres', qq{CREATE DATABASE "$database"});
	}
	wait_for_launcher($node, $database) if $opts{wait_for_launcher};
	$node->safe_psql($database, 'CREATE EXTENSION pg_privacy') if $opts{create_extension};
	return $node;
}

# Waits until the launcher runs (it connects to privacy.database); dies after the usual timeout.
sub wait_for_launcher {
	my ($node, $database) = @_;
	$node->poll_query_until($database // 'postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_privacy launcher'})
	  or die 'launcher did not start';
	return;
}

# An erase job for CALL privacy.run_job, in a new database 'manual' of $node that the launcher
# does not serve (privacy.database names another), so nobody else runs it: $rows rows of subject
# 'by_hand' of tenant 'acme' (no approval, recovery window 0) in a registered table people.
# Returns the job's id.
sub manual_erase_job {
	my ($node, $rows, $reason) = @_;
	$node->safe_psql('postgres', 'CREATE DATABASE manual');
	$node->safe_psql('manual', qq{
CREATE EXTENSION pg_privacy;
CREATE TABLE people (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
CREATE INDEX ON people (tenant, subject, id);
INSERT INTO people SELECT g, 'acme', 'by_hand' FROM generate_series(1, $rows) g;
SELECT privacy.register_table('people', 'subject', 'tenant');
SELECT privacy.configure_tenant('acme', approval_required => '{}', recovery_window => '0');
});
	return $node->safe_psql('manual', qq{SELECT privacy.request_erase('acme', 'by_hand', '$reason')});
}

# Exports the whole audit trail of $node's postgres database with \copy, as an auditor would
# (docs/audit.md), into a new temporary directory (one test: 'the trail is exported with \copy');
# returns the CSV file's path.
sub export_audit_csv {
	my ($node) = @_;
	my $csv = PostgreSQL::Test::Utils::tempdir . '/audit.csv';
	local $ENV{PGTZ} = 'UTC';
	$node->command_ok(
		[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
		  "\\copy (SELECT * FROM privacy.audit_export('2000-01-01', now() + interval '1 day')) TO '$csv' CSV HEADER" ],
		'the trail is exported with \copy');
	return $csv;
}

# Runs scripts/verify-audit-export.sh on a CSV export: (whether it succeeded, stdout, stderr).
sub verify_audit_csv {
	my ($csv) = @_;
	my ($out, $err);
	my $ok = IPC::Run::run([ 'bash', 'scripts/verify-audit-export.sh', $csv ], '>', \$out, '2>', \$err);
	return ($ok, $out, $err);
}

1;
