# The launcher's life cycle (docs/jobs.md, "How a job runs"): it starts with the server in privacy.database,
# reports itself, reloads its configuration on SIGHUP, is restarted after SIGTERM and after a
# crash of any backend, and stops with the server. Without the preload, worker_status() says so.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = privacy_node('launcher', database => 'privacy_launcher', create_extension => 1, conf => qq{
privacy.naptime = 1
restart_after_crash = on
});

my $launcher_pid_sql = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_privacy launcher'};

# Waits until a launcher other than $old_pid runs in privacy_launcher; returns its pid.
sub wait_for_launcher
{
	my ($old_pid, $what) = @_;
	$old_pid //= 0;
	ok( $node->poll_query_until(
			'privacy_launcher', qq{
			SELECT count(*) = 1 FROM pg_stat_activity
			WHERE backend_type = 'pg_privacy launcher' AND datname = 'privacy_launcher'
			  AND pid <> $old_pid}),
		"launcher running $what");
	return $node->safe_psql('privacy_launcher', $launcher_pid_sql);
}

# Start: the launcher connects to privacy.database (it waits while that database is missing).
my $pid = wait_for_launcher(0, 'after start');
like($pid, qr/^\d+$/, 'launcher has a pid');
ok( $node->poll_query_until(
		'privacy_launcher', qq{
		SELECT pid = $pid AND state = 'idle' AND detail IS NULL
		FROM privacy.worker_status() WHERE process = 'launcher'}),
	'worker_status() reports the launcher idle with its pid');
is($node->safe_psql('privacy_launcher', q{SELECT count(*) FROM privacy.worker_status() WHERE process = 'worker'}),
	'0', 'no job workers yet');

# SIGHUP: a changed privacy.naptime is picked up.
my $log_offset = -s $node->logfile;
$node->safe_psql('privacy_launcher',
	q{ALTER SYSTEM SET privacy.naptime = 2; SELECT pg_reload_conf()});
$node->wait_for_log(qr/pg_privacy launcher reloaded its configuration/, $log_offset);
pass('SIGHUP: the launcher reloaded its configuration');
is($node->safe_psql('privacy_launcher', $launcher_pid_sql), $pid, 'same launcher after SIGHUP');

# SIGTERM: the launcher exits and the postmaster starts a new one.
$node->safe_psql('privacy_launcher', "SELECT pg_terminate_backend($pid)");
my $new_pid = wait_for_launcher($pid, 'again after SIGTERM');
isnt($new_pid, $pid, 'SIGTERM: a new launcher replaced the old one');
ok( $node->poll_query_until(
		'privacy_launcher',
		qq{SELECT pid = $new_pid FROM privacy.worker_status() WHERE process = 'launcher'}),
	'worker_status() reports the new launcher');

# Crash: kill -9 of the launcher makes the postmaster reinitialize; the launcher comes back.
$log_offset = -s $node->logfile;
kill 'KILL', $new_pid;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
pass('kill -9 of the launcher: the postmaster restarted the server');
my $after_crash_pid = wait_for_launcher($new_pid, 'again after the crash restart');
ok( $node->poll_query_until(
		'privacy_launcher',
		qq{SELECT pid = $after_crash_pid FROM privacy.worker_status() WHERE process = 'launcher'}),
	'worker_status() reports the launcher after the crash restart');

# A clean stop: the launcher exits with the server.
$log_offset = -s $node->logfile;
$node->stop('fast');
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/database system is shut down/, 'the server stopped cleanly');
unlike($log, qr/pg_privacy launcher.*(PANIC|exited with exit code [^01])/,
	'the launcher did not fail on shutdown');

# Without the preload: the SQL API works, worker_status() says plainly that nothing runs.
my $plain = PostgreSQL::Test::Cluster->new('no_preload');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION pg_privacy');
my $status = $plain->safe_psql('postgres',
	q{SELECT state || ' | ' || detail FROM privacy.worker_status() WHERE process = 'launcher'});
like($status, qr/^not running \| /, 'without preload: the launcher is not running');
like($status, qr/shared_preload_libraries/, 'without preload: the detail names shared_preload_libraries');
is($plain->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_privacy launcher'}),
	'0', 'without preload: no launcher process');
$plain->stop;

done_testing();
