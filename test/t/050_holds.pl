# Legal holds with the library preloaded: a refused DELETE rolls back its transaction, yet its
# hold_blocked audit row appears (through the shared-memory queue the launcher drains) with the
# refused session's identity; holds expire through the launcher (hold_expired). Without preload
# the refusal still happens and is logged to the server log instead.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $setup = q{
  CREATE EXTENSION pg_privacy;
  CREATE TABLE public.orders (id int PRIMARY KEY, tenant text, subject text);
  INSERT INTO public.orders SELECT g, 't1', 's' || (g % 3) FROM generate_series(1, 30) g;
  INSERT INTO privacy.registered_tables (relation, subject_column, tenant_column, key_columns)
  VALUES ('public.orders', 'subject', 'tenant', '{id}');
  SELECT privacy._attach_hold_triggers('public.orders', 'subject', 'tenant');
  CREATE ROLE alice LOGIN;
  GRANT SELECT, DELETE ON public.orders TO alice;
};

my $node = privacy_node('holds', conf => qq{
privacy.naptime = 1
});
$node->safe_psql('postgres', $setup);

my $hold = $node->safe_psql('postgres',
  "SELECT privacy.place_hold('subject', 's1', 't1', 'case 2026-17')");

my ($ret, $stdout, $stderr) = $node->psql('postgres',
  "SET application_name = 'holds_tap'; DELETE FROM public.orders WHERE subject = 's1'",
  extra_params => [ '-U', 'alice' ]);
isnt($ret, 0, 'DELETE of held rows fails');
like($stderr, qr/blocked by legal hold $hold \(subject s1\)/, 'the error names the hold');
like($stderr, qr/placed by postgres/, 'the error says who placed the hold');
is($node->safe_psql('postgres', "SELECT count(*) FROM public.orders WHERE subject = 's1'"),
  '10', 'held rows are still there');

ok($node->poll_query_until('postgres', qq{
  SELECT count(*) = 1 FROM privacy.audit_log
   WHERE action = 'hold_blocked' AND outcome = 'refused' AND tenant_id = 't1'
     AND actor = 'alice' AND acting_role = 'alice' AND application_name = 'holds_tap'
     AND target = 'public.orders' AND detail->>'operation' = 'DELETE'
     AND (detail->>'hold_id')::bigint = $hold}),
  'the launcher wrote the hold_blocked audit row with the refused session as actor');
is($node->safe_psql('postgres', 'SELECT ok FROM privacy.verify_audit_log()'), 't',
  'the audit chain stays valid')
  if $node->safe_psql('postgres', "SELECT count(*) FROM pg_proc WHERE proname = 'verify_audit_log'") ne '0';

# Expiry: the hold stops protecting at expires_at; the launcher marks it inactive and audits it.
my $expiring = $node->safe_psql('postgres',
  "SELECT privacy.place_hold('subject', 's2', 't1', 'short hold', now() + interval '2 seconds')");
ok($node->poll_query_until('postgres', qq{
  SELECT NOT active FROM privacy.legal_holds WHERE id = $expiring}), 'expired hold marked inactive');
is($node->safe_psql('postgres', qq{
  SELECT count(*) FROM privacy.audit_log WHERE action = 'hold_expired' AND target = 'hold $expiring'}),
  '1', 'hold_expired audited');
is($node->safe_psql('postgres', "DELETE FROM public.orders WHERE subject = 's2' RETURNING 1")
     =~ tr/1//, 10, 'rows of an expired hold can be deleted');

# A hold released in one session frees the rows for a session that cached it.
$node->safe_psql('postgres', "SELECT privacy.release_hold($hold, 'settled')");
is($node->safe_psql('postgres', "WITH d AS (DELETE FROM public.orders WHERE subject = 's1' RETURNING 1) SELECT count(*) FROM d"),
  '10', 'released: DELETE allowed');
$node->stop;

# Without preload: enforcement works, the refusal goes to the server log.
my $plain = PostgreSQL::Test::Cluster->new('holds_plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', $setup);
$hold = $plain->safe_psql('postgres', "SELECT privacy.place_hold('tenant', 't1', NULL, 'case 9')");
my $log_offset = -s $plain->logfile;
($ret, $stdout, $stderr) = $plain->psql('postgres', "DELETE FROM public.orders WHERE id = 1");
isnt($ret, 0, 'without preload: DELETE of held rows fails');
like($stderr, qr/blocked by legal hold $hold/, 'without preload: the error names the hold');
ok($plain->wait_for_log(qr/hold_blocked \(not audited: pg_privacy is not preloaded\): DELETE on public\.orders refused by legal hold $hold/,
  $log_offset), 'without preload: the refusal is logged');
$plain->stop;

done_testing();
