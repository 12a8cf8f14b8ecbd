# Deadline notices (docs/compliance.md, "Notices"): the launcher's "deadline notices" step tells
# the tenant's privacy contact (e-mail) and listeners (privacy_deadlines) when an open request
# comes within privacy.deadline_warning of its due date and when it becomes overdue, each once per
# due date; an extension lets the notices go out again; answered requests get none.
use strict;
use warnings;

use JSON::PP;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = privacy_node('deadlines', conf => q{
privacy.naptime = 1
privacy.deadline_warning = '2d'
});

$node->safe_psql('postgres', q{
CREATE EXTENSION pg_privacy;
CREATE TABLE people (tenant text NOT NULL, id text NOT NULL, PRIMARY KEY (tenant, id));
SELECT privacy.register_table('people', 'id', 'tenant');
SELECT privacy.configure_tenant('acme', regulation => 'gdpr', privacy_contact => 'dpo@acme.example');
SELECT privacy.configure_tenant('quiet', deadline => '10 days');
});
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_privacy launcher'})
  or die 'launcher did not start';

# Requests that need approval stay pending: the launcher leaves them alone but for the notices.
sub request {
	my ($tenant, $subject) = @_;
	return $node->safe_psql('postgres', "SELECT privacy.request_erase('$tenant', '$subject', 'ticket $subject')");
}
my %job = map { $_->[1] => request(@$_) }
  (['acme', 'soon'], ['acme', 'late'], ['acme', 'later'], ['quiet', 'quiet'], ['acme', 'answered'], ['quiet', 'extended']);

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN privacy_deadlines');

# The fixture: due dates put where the step must (or must not) act.
$node->safe_psql('postgres', qq{
SELECT privacy.reject($job{answered}, 'not a customer');
UPDATE privacy.jobs SET due_at = now() + interval '1 day'    WHERE id = $job{soon};
UPDATE privacy.jobs SET due_at = now() - interval '1 minute' WHERE id IN ($job{late}, $job{answered});
UPDATE privacy.jobs SET due_at = now() + interval '1 hour'   WHERE id IN ($job{quiet}, $job{extended});
});

sub notices {
	my ($job, $action) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM privacy.audit_log WHERE job_id = $job AND action = '$action'");
}
$node->poll_query_until('postgres', qq{
	SELECT count(*) = 4 FROM privacy.audit_log WHERE action IN ('deadline_warning', 'deadline_overdue')})
  or die 'the notices did not go out';

is(notices($job{soon}, 'deadline_warning'), '1', 'a request due within the margin is announced');
is(notices($job{late}, 'deadline_overdue') . notices($job{late}, 'deadline_warning'), '10',
	'an overdue request gets the overdue notice only');
is(notices($job{later}, 'deadline_warning'), '0', 'a request due later than the margin gets nothing yet');
is(notices($job{answered}, 'deadline_overdue'), '0', 'an answered (rejected) request gets nothing');
is($node->safe_psql('postgres', qq{SELECT string_agg(job_id || ':' || recipient || ':' || (subject LIKE '%is due soon%')
                                                     || ':' || (subject LIKE '%is OVERDUE%'), ',' ORDER BY job_id)
                                   FROM privacy.notifications}),
	"$job{soon}:dpo\@acme.example:true:false,$job{late}:dpo\@acme.example:false:true",
	'the tenant\'s privacy contact is e-mailed; a tenant without one is not');
is(notices($job{quiet}, 'deadline_warning'), '1', 'but its request is announced too');

# What listeners received: one event per notice, without the subject id.
my %events;
my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
while (keys(%events) < 4 && time() < $deadline) {
	my $output = $listener->query_safe('SELECT 1');
	while ($output =~ /Asynchronous notification "privacy_deadlines" with payload "(.*?)" received/g) {
		my $event = JSON::PP->new->decode($1);
		$events{"$event->{job_id}:$event->{event}"} = $event;
	}
}
is_deeply([sort keys %events],
	[sort("$job{soon}:deadline_warning", "$job{late}:deadline_overdue", "$job{quiet}:deadline_warning",
	      "$job{extended}:deadline_warning")],
	'listeners get every notice on privacy_deadlines');
my $event = $events{"$job{soon}:deadline_warning"};
is_deeply([sort keys %$event], [sort qw(event job_id kind tenant_id regulation status due_at at)],
	'the payload names the job, its regulation and due date, and no subject');
is($event->{regulation}, 'gdpr', 'with the job\'s regulation');

# An extension lets the warning go out again for the new due date; nothing is sent twice.
$node->safe_psql('postgres', "SELECT privacy.extend_deadline($job{extended}, '1 hour', 'waiting for the archive')");
$node->poll_query_until('postgres', "SELECT count(*) = 2 FROM privacy.audit_log WHERE job_id = $job{extended} AND action = 'deadline_warning'")
  or die 'the extended request was not announced again';
{
	# One more request that becomes overdue now: once its notice is out, the step has run again
	# for every other request.
	my $marker = request('acme', 'marker');
	$node->safe_psql('postgres', "UPDATE privacy.jobs SET due_at = now() - interval '1 second' WHERE id = $marker");
	$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM privacy.audit_log WHERE job_id = $marker AND action = 'deadline_overdue'")
	  or die 'the marker was not announced';
}
is($node->safe_psql('postgres', qq{SELECT string_agg(job_id || ':' || action, ',' ORDER BY job_id, action) FROM privacy.audit_log
                                   WHERE action IN ('deadline_warning', 'deadline_overdue') AND job_id <> ALL (ARRAY[$job{extended}])
                                     AND job_id <= $job{extended}}),
	"$job{soon}:deadline_warning,$job{late}:deadline_overdue,$job{quiet}:deadline_warning",
	'each notice went out once, however many cycles ran');
is($node->safe_psql('postgres', "SELECT deadline_warned_at IS NOT NULL AND overdue_notified_at IS NOT NULL FROM privacy.jobs WHERE id = $job{late}"),
	't', 'the job records the notices it got');

$listener->quit;
$node->stop;
done_testing();
