# Legal holds on a logical replication subscriber. The apply worker fires row triggers only, never
# statement triggers; the hold triggers privacy_hold_guard_delete / _update are row triggers,
# ENABLE ALWAYS, so they check replicated changes as they check every session's
# (docs/legal-holds.md, "The triggers"). A replicated UPDATE or DELETE of a held row is refused on
# the subscriber (the subscription waits and retries; the refusal is audited as hold_blocked) and
# applied once the hold is released.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $table = q{CREATE TABLE public.orders (id int PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL,
                                          amount int);};

my $publisher = PostgreSQL::Test::Cluster->new('holds_publisher');
$publisher->init(allows_streaming => 'logical');
$publisher->start;
$publisher->safe_psql('postgres', $table . q{
  INSERT INTO public.orders SELECT g, 't1', 's' || (g % 2), g FROM generate_series(1, 10) g;
  CREATE PUBLICATION orders_publication FOR TABLE public.orders;
});

my $subscriber = privacy_node('holds_subscriber', conf => qq{
privacy.naptime = 1
wal_retrieve_retry_interval = '200ms'
});
$subscriber->safe_psql('postgres', $table . q{
  CREATE EXTENSION pg_privacy;
  CREATE INDEX ON public.orders (tenant, subject, id);
  SELECT privacy.register_table('public.orders', 'subject', 'tenant');
});
my $publisher_connstr = $publisher->connstr . ' dbname=postgres';
$subscriber->safe_psql('postgres',
  "CREATE SUBSCRIPTION orders_subscription CONNECTION '$publisher_connstr' PUBLICATION orders_publication");
$subscriber->wait_for_subscription_sync($publisher, 'orders_subscription');
is($subscriber->safe_psql('postgres', 'SELECT count(*) FROM public.orders'), '10', 'initial copy done');

my $s1_rows = q{SELECT count(*) || '/' || sum(amount) FROM public.orders WHERE subject = 's1'};
my $before = $subscriber->safe_psql('postgres', $s1_rows);

# A replicated UPDATE of held rows: refused by the apply worker, retried until the hold ends.
my $hold = $subscriber->safe_psql('postgres', "SELECT privacy.place_hold('subject', 's1', 't1', 'case 51')");
my $log_offset = -s $subscriber->logfile;
$publisher->safe_psql('postgres', "UPDATE public.orders SET amount = 0 WHERE subject = 's1'");
ok($subscriber->wait_for_log(
     qr/UPDATE of a row of subject s1 \(tenant t1\) in public\.orders is blocked by legal hold $hold/, $log_offset),
   'the apply worker is refused the UPDATE of held rows');
is($subscriber->safe_psql('postgres', $s1_rows), $before, 'the held rows are unchanged on the subscriber');
ok($subscriber->poll_query_until('postgres', qq{
     SELECT count(*) > 0 FROM privacy.audit_log
      WHERE action = 'hold_blocked' AND (detail->>'hold_id')::bigint = $hold AND detail->>'operation' = 'UPDATE'}),
   'the refusal is audited as hold_blocked');
$subscriber->safe_psql('postgres', "SELECT privacy.release_hold($hold, 'settled')");
ok($subscriber->poll_query_until('postgres', "SELECT sum(amount) = 0 FROM public.orders WHERE subject = 's1'"),
   'released: the UPDATE is applied');

# The same for a replicated DELETE.
$hold = $subscriber->safe_psql('postgres', "SELECT privacy.place_hold('tenant', 't1', NULL, 'case 52')");
$log_offset = -s $subscriber->logfile;
$publisher->safe_psql('postgres', "DELETE FROM public.orders WHERE subject = 's1'");
ok($subscriber->wait_for_log(
     qr/DELETE of a row of subject s1 \(tenant t1\) in public\.orders is blocked by legal hold $hold/, $log_offset),
   'the apply worker is refused the DELETE of held rows');
is($subscriber->safe_psql('postgres', "SELECT count(*) FROM public.orders WHERE subject = 's1'"), '5',
   'the held rows are still on the subscriber');
$subscriber->safe_psql('postgres', "SELECT privacy.release_hold($hold, 'settled')");
ok($subscriber->poll_query_until('postgres', "SELECT count(*) = 0 FROM public.orders WHERE subject = 's1'"),
   'released: the DELETE is applied');

$subscriber->stop;
$publisher->stop;
done_testing();
