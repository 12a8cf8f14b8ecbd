# pg_dump keeps the extension's configuration and state (docs/architecture.md, "Data model"): rows in tenants,
# jobs, legal_holds, audit_log and export_recipients survive a dump and a restore into a fresh
# database, and the sequences continue after the restored rows.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = privacy_node('dump', database => 'privacy_source');
$node->safe_psql('privacy_source', q{
CREATE EXTENSION pg_privacy;
SELECT privacy.configure_tenant('acme', display_name => 'Acme Corp', rows_per_second => 250);
SELECT privacy.configure_tenant('globex', recovery_window => '3 days');
INSERT INTO privacy.jobs (kind, target_type, target_id, tenant_id, reason, requires_approval,
                          status, due_at)
VALUES ('erase', 'subject', 'user-17', 'acme', 'customer asked', true, 'pending',
        '2030-01-01 00:00+00'),
       ('export', 'subject', 'user-42', 'globex', 'access request', false, 'approved',
        '2030-02-01 00:00+00');
INSERT INTO privacy.legal_holds (scope, scope_id, tenant_id, reason)
VALUES ('subject', 'user-17', 'acme', 'litigation 2024-117');
INSERT INTO privacy.export_recipients (name, certificate)
VALUES ('dpo', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----');
-- A registered partitioned table under a table hold, renamed after the hold was placed: the
-- registration, its partition and the hold name their tables by regclass, which pg_dump writes
-- as names and pg_restore reads back as the new OIDs.
CREATE TABLE public.events (tenant text NOT NULL, id int NOT NULL, subject text NOT NULL,
                            PRIMARY KEY (tenant, id)) PARTITION BY LIST (tenant);
CREATE TABLE public.events_acme PARTITION OF public.events FOR VALUES IN ('acme');
CREATE INDEX ON public.events (tenant, subject, id);
INSERT INTO public.events VALUES ('acme', 1, 'user-17'), ('acme', 2, 'user-18');
SELECT privacy.register_table('public.events', 'subject', 'tenant');
SELECT privacy.place_hold('table', 'public.events', NULL, 'regulator R-9');
ALTER TABLE public.events RENAME TO held_events;
});

# What the test compares: row counts and a few values of every table it filled.
my $snapshot_sql = q{
SELECT (SELECT count(*) FROM privacy.tenants) || ' tenants; '
    || (SELECT string_agg(tenant_id || '=' || coalesce(display_name, '-') || '/' || coalesce(rows_per_second::text, '-'), ',' ORDER BY tenant_id) FROM privacy.tenants) || '; '
    || (SELECT count(*) FROM privacy.jobs) || ' jobs; '
    || (SELECT string_agg(id || ':' || kind || ':' || target_id || ':' || status, ',' ORDER BY id) FROM privacy.jobs) || '; '
    || (SELECT count(*) FROM privacy.legal_holds) || ' holds; '
    || (SELECT string_agg(scope || ':' || scope_id || ':' || coalesce(relation::text, '-') || ':' || reason, ',' ORDER BY id) FROM privacy.legal_holds) || '; '
    || (SELECT string_agg(relation::text, ',' ORDER BY relation::text) FROM privacy.registered_tables) || ' registered; '
    || (SELECT string_agg(relation::text || '<' || registered_table::text, ',') FROM privacy.registered_partitions) || '; '
    || (SELECT count(*) FROM privacy.export_recipients) || ' recipients; '
    || (SELECT count(*) FROM privacy.audit_log) || ' audit rows; '
    || (SELECT string_agg(id || ':' || chain || ':' || action || ':' || left(hash, 12), ',' ORDER BY id) FROM privacy.audit_log) || '; '
    || (SELECT string_agg(chain || '@' || last_id, ',' ORDER BY chain) FROM privacy.audit_chains)
};
my $before = $node->safe_psql('privacy_source', $snapshot_sql);
like($before, qr/^2 tenants; .*2 jobs; .*2 holds; .*table:public.events:held_events:.*held_events registered; events_acme<held_events; 1 recipients; 4 audit rows;/,
	'source database holds the rows');

# Dump, restore into a fresh database.
my $dump = $node->basedir . '/privacy_source.dump';
$node->command_ok(
	[ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('privacy_source') ],
	'pg_dump of a database using pg_privacy');
$node->safe_psql('postgres', 'CREATE DATABASE privacy_restored');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('privacy_restored'), $dump ],
	'pg_restore into a fresh database');

my $after = $node->safe_psql('privacy_restored', $snapshot_sql);
is($after, $before, 'the restored database holds the same rows');
is( $node->safe_psql('privacy_restored',
		q{SELECT certificate FROM privacy.export_recipients WHERE name = 'dpo'}),
	$node->safe_psql('privacy_source',
		q{SELECT certificate FROM privacy.export_recipients WHERE name = 'dpo'}),
	'the recipient certificate survives byte for byte');

# The restored table hold still covers the renamed table and its partition; the DDL guard
# protects the restored registration.
my ($ret, $stdout, $stderr) = $node->psql('privacy_restored', 'DELETE FROM events_acme WHERE id = 2');
like($stderr, qr/blocked by legal hold 2 \(table public.events\)/, 'the restored table hold covers the renamed partitioned table');
($ret, $stdout, $stderr) = $node->psql('privacy_restored', 'ALTER TABLE events_acme NO FORCE ROW LEVEL SECURITY');
like($stderr, qr/refused: it removes FORCE ROW LEVEL SECURITY from public.events_acme, a partition of public.held_events/,
	'the DDL guard protects the restored registration');

# The sequences continue after the restored rows, and the audit chain after its head.
$node->safe_psql('privacy_restored', q{
INSERT INTO privacy.jobs (kind, target_type, target_id, tenant_id, reason, requires_approval,
                          status, due_at)
VALUES ('erase', 'subject', 'user-99', 'acme', 'after restore', true, 'pending', now());
INSERT INTO privacy.legal_holds (scope, scope_id, tenant_id, reason)
VALUES ('tenant', 'globex', 'globex', 'after restore');
SELECT privacy.configure_tenant('acme', rows_per_second => 300);
});
is( $node->safe_psql('privacy_restored', q{SELECT max(id) FROM privacy.jobs}),
	'3', 'jobs_id_seq continues after the restored jobs');
is( $node->safe_psql('privacy_restored', q{SELECT max(id) FROM privacy.legal_holds}),
	'3', 'legal_holds_id_seq continues after the restored holds');
is( $node->safe_psql('privacy_restored', q{
		SELECT a.id = 5 AND a.prev_hash = p.hash
		FROM privacy.audit_log a JOIN privacy.audit_log p ON p.chain = a.chain
		WHERE a.id = (SELECT max(id) FROM privacy.audit_log)
		  AND p.id = (SELECT max(id) FROM privacy.audit_log WHERE chain = a.chain AND id < a.id)}),
	't', 'the audit log continues its chain after the restore');

# The restored extension is whole: its API works, and DROP and CREATE work on it.
$node->safe_psql('privacy_restored', q{
SELECT privacy.release_hold(id, 'test done') FROM privacy.legal_holds WHERE active ORDER BY id;
SELECT privacy.unregister_table('held_events');
DROP EXTENSION pg_privacy; CREATE EXTENSION pg_privacy});
pass('the restored extension can be dropped and created again');

$node->stop;
done_testing();
