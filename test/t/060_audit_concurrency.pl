# Audit chains stay linear with 8 concurrent writers (issue 6), and the launcher's
# "audit retention" step purges a tenant's expired prefix while the trail still verifies. The
# retention floor (issue 12) starts at 0 here, so that a one-second retention can be purged
# within the test; raised back, it keeps what the stored retentions no longer would.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = privacy_node('audit_concurrency', create_extension => 1, conf => qq{
privacy.naptime = 1
privacy.audit_retention_floor = 0
});

# Each writer appends 100 rows, one transaction each: tenant conc_a, tenant conc_b or the
# platform chain in turn, so all 8 sessions contend for the same three chain heads.
my $writers = 8;
my @sessions;
for my $w (1 .. $writers) {
	my $session = $node->background_psql('postgres');
	$session->query_until(qr/started_$w/, qq{
\\echo started_$w
DO \$\$
BEGIN
    FOR i IN 1..100 LOOP
        CASE i % 3
            WHEN 0 THEN PERFORM privacy.configure_tenant('conc_a', display_name => 'writer $w row ' || i);
            WHEN 1 THEN PERFORM privacy.configure_tenant('conc_b', display_name => 'writer $w row ' || i);
            ELSE PERFORM privacy._audit('concurrency_test', NULL, i, 'writer $w');
        END CASE;
        COMMIT;
    END LOOP;
END
\$\$;
\\echo done_$w
});
	push @sessions, $session;
}
for my $w (1 .. $writers) {
	$sessions[$w - 1]->query_until(qr/done_$w/, '');
	$sessions[$w - 1]->quit;
}

is($node->safe_psql('postgres', q{
    SELECT string_agg(chain || '=' || n, ' ' ORDER BY chain) FROM (
        SELECT chain, count(*) AS n FROM privacy.audit_log
        WHERE chain IN ('conc_a', 'conc_b') OR action = 'concurrency_test' GROUP BY chain) c}),
	'=264 conc_a=264 conc_b=272', 'every one of the 800 appends is in the trail');
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM (
        SELECT prev_hash, lag(hash) OVER (PARTITION BY chain ORDER BY id) AS previous
        FROM privacy.audit_log) l
    WHERE previous IS NOT NULL AND previous <> prev_hash}),
	'0', 'each chain is linear: every row links to the row before it in id order');
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM (SELECT chain, prev_hash FROM privacy.audit_log
                          GROUP BY chain, prev_hash HAVING count(*) > 1) forks}),
	'0', 'no chain forks (no two rows link to the same hash)');
is($node->safe_psql('postgres', 'SELECT ok, checked, first_bad_id FROM privacy.verify_audit_log()'),
	't|' . $node->safe_psql('postgres', 'SELECT count(*) FROM privacy.audit_log') . '|',
	'verify_audit_log: ok after concurrent writers');

# The launcher purges a tenant whose retention is one second, and only that tenant.
my $others_before = $node->safe_psql('postgres',
	q{SELECT count(*) FROM privacy.audit_log WHERE chain <> 'conc_short'});
$node->safe_psql('postgres', q{
    SELECT privacy.configure_tenant('conc_short', audit_retention => '1 second');
    SELECT privacy._audit('retention_test', 'conc_short', NULL, 'old row');});
ok($node->poll_query_until('postgres', q{
    SELECT count(*) = 1 AND bool_and(action = 'audit_purged')
    FROM privacy.audit_log WHERE chain = 'conc_short'}),
	'the launcher step "audit retention" purged the expired rows and audited it');
is($node->safe_psql('postgres', q{SELECT detail->>'deleted' FROM privacy.audit_log WHERE chain = 'conc_short'}),
	'2', 'the purge row counts the two rows deleted');
is($node->safe_psql('postgres', q{SELECT count(*) FROM privacy.audit_log WHERE chain <> 'conc_short'}),
	$others_before, 'other chains are untouched by the launcher purge');
is($node->safe_psql('postgres', 'SELECT ok FROM privacy.verify_audit_log()'),
	't', 'the trail verifies after the launcher purge');

# ---- The floor: a year again, and a platform retention (GUC default) below it.
# The launcher reloads its configuration at the top of a cycle, so once a second reload is
# logged, the cycle that began with the first one is over: every step has seen what was
# committed before.
sub wait_for_launcher_cycle {
	for (1 .. 2) {
		my $offset = -s $node->logfile;
		$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
		$node->wait_for_log(qr/pg_privacy launcher reloaded its configuration/, $offset);
	}
}
$node->safe_psql('postgres', q{
    ALTER SYSTEM SET privacy.audit_retention_floor = '365d';
    ALTER SYSTEM SET privacy.audit_retention = '60min';});
wait_for_launcher_cycle();
my ($status, $out, $err) = $node->psql('postgres',
	q{SELECT privacy.configure_tenant('conc_floor', audit_retention => '1 second')});
like($err, qr/audit_retention for tenant "conc_floor" must be at least privacy.audit_retention_floor \(365 days\), not 00:00:01/,
	'with the floor back at a year, a one-second retention is refused');

# A retention stored before the floor was raised, and rows on that chain and the platform's.
$node->safe_psql('postgres', q{
    SELECT privacy.configure_tenant('conc_floor', display_name => 'kept');
    UPDATE privacy.tenants SET audit_retention = '1 second' WHERE tenant_id = 'conc_floor';
    SELECT privacy._audit('retention_test', 'conc_floor', NULL, 'kept row');
    SELECT privacy._audit('retention_test', NULL, NULL, 'kept platform row');});
my $kept = q{SELECT string_agg(id::text, ',' ORDER BY id) FROM privacy.audit_log
             WHERE chain IN ('conc_floor', '') AND at > now() - interval '1 hour'};
my $kept_before = $node->safe_psql('postgres', $kept);
wait_for_launcher_cycle();
is($node->safe_psql('postgres', $kept), $kept_before,
	'the launcher keeps the floor period of a chain whose stored retention is one second');
$node->safe_psql('postgres', 'CREATE EXTENSION privacy_test');  # its purge as of a later time
is($node->safe_psql('postgres', q{SELECT privacy_test.purge_audit_as_of(now() + interval '2 hours')}), '0',
	'a purge as of two hours from now keeps the platform rows although privacy.audit_retention is 60min');
is($node->safe_psql('postgres', $kept), $kept_before, 'every row of the floor period is still there');
is($node->safe_psql('postgres', 'SELECT ok FROM privacy.verify_audit_log()'), 't', 'the trail verifies');

$node->stop;
done_testing();
