# verify_audit_log() under load (issue 12): while several sessions append to the trail through
# the API (privacy.configure_tenant on several tenants), verification runs again and again and
# must report ok every time. It reads the chain heads and the rows in one snapshot; reading
# them in two would see heads newer than the rows and report a "deleted newest row" that
# nobody deleted. Tampering is still found afterwards.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = privacy_node('audit_verify_load');
$node->safe_psql('postgres', q{
    CREATE EXTENSION pg_privacy;
    CREATE TABLE verify_results (run int, ok boolean, checked bigint, first_bad_id bigint);
});

# Writers: each changes the settings of its own and a shared tenant, one transaction per call.
# Each call appends one settings_changed row to that tenant's chain.
my $writers = 4;
my $calls = 2000;
my @sessions;
for my $w (1 .. $writers) {
	my $session = $node->background_psql('postgres');
	$session->query_until(qr/started_$w/, qq{
\\echo started_$w
DO \$\$
BEGIN
    FOR i IN 1..$calls LOOP
        PERFORM privacy.configure_tenant(CASE WHEN i % 2 = 0 THEN 'load_shared' ELSE 'load_$w' END,
                                         display_name => 'writer $w call ' || i);
        COMMIT;
    END LOOP;
END
\$\$;
\\echo done_$w
});
	push @sessions, $session;
}

# The verifier: one verification after the other, each in its own transaction, for as long as
# the writers append (bounded, should a writer die).
my $appends = $writers * $calls;
$node->safe_psql('postgres', qq{
DO \$\$
DECLARE
    run int := 0;
BEGIN
    WHILE run < 10000 AND (SELECT count(*) FROM privacy.audit_log WHERE action = 'settings_changed') < $appends LOOP
        run := run + 1;
        INSERT INTO verify_results SELECT run, v.* FROM privacy.verify_audit_log() v;
        COMMIT;
    END LOOP;
END
\$\$;
});
for my $w (1 .. $writers) {
	$sessions[$w - 1]->query_until(qr/done_$w/, '');
	$sessions[$w - 1]->quit;
}

is($node->safe_psql('postgres', q{SELECT count(*) FROM privacy.audit_log WHERE action = 'settings_changed'}),
	$appends, "the writers made their $appends appends");
my $runs = $node->safe_psql('postgres', 'SELECT count(DISTINCT checked) FROM verify_results');
note("verifications while the trail grew: $runs");
cmp_ok($runs, '>=', 5, 'verify_audit_log ran many times while the trail grew');
is($node->safe_psql('postgres', q{
    SELECT coalesce(string_agg(format('run %s: first_bad_id %s', run, first_bad_id), ', '), 'none')
    FROM (SELECT * FROM verify_results WHERE NOT ok ORDER BY run LIMIT 5) bad}),
	'none', 'every verification under load says ok (no false alarm)');
is($node->safe_psql('postgres', 'SELECT ok FROM privacy.verify_audit_log()'), 't',
	'the trail verifies once the writers are done');

# Tampering is still found: a changed row of a busy chain (the change is rolled back).
is($node->safe_psql('postgres', q{
    BEGIN;
    ALTER TABLE privacy.audit_log DISABLE TRIGGER ALL;
    UPDATE privacy.audit_log SET target = 'forged'
     WHERE id = (SELECT id FROM privacy.audit_log WHERE chain = 'load_shared'
                 ORDER BY id DESC OFFSET 1 LIMIT 1);
    SELECT ok, first_bad_id = (SELECT id FROM privacy.audit_log WHERE target = 'forged')
      FROM privacy.verify_audit_log();
    ROLLBACK;}),
	'f|t', 'a changed row is still reported');

$node->stop;
done_testing();
