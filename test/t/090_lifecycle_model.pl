# The lifecycle property test (issue 13, acceptance): random sequences of request / cancel /
# retry / restore / place_hold / release_hold / drop table / kill -9 of a worker / window expiry,
# driven against a real cluster whose launcher runs the jobs. After every step it waits (with a
# deadline) until no job is left running without a runner, then checks:
#   - no job stays approved, processing or finalizing beyond the deadline (a runner ends or
#     resumes it: kill -9 included);
#   - job_errors holds at most one row per key, phase and attempt;
#   - rows of subjects no request touched are unchanged; a restored row is never finalized;
#   - the audit chain verifies.
# At the end every hold is released and every window closed: every erasure that marked rows is
# then finalized, and every row ever seen marked is either restored (present, unmarked),
# finalized (gone, or anonymized with the tenant's tombstone) or an open flagged item of its job
# (still marked), never both restored and finalized, never none of these.
#
# CI runs a fixed seed and PG_PRIVACY_LIFECYCLE_STEPS steps (default 40, two to three minutes);
# a longer run on demand: PG_PRIVACY_LIFECYCLE_STEPS=300 PG_PRIVACY_LIFECYCLE_SEED=7 make
# prove_installcheck PROVE_TESTS=test/t/090_lifecycle_model.pl.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $steps = $ENV{PG_PRIVACY_LIFECYCLE_STEPS} // 40;
my $seed = $ENV{PG_PRIVACY_LIFECYCLE_SEED} // 13;
srand($seed);
note("seed $seed, $steps steps");

my $node = privacy_node('lifecycle', database => 'app', wait_for_launcher => 1, conf => q{
privacy.naptime = 1
privacy.max_workers = 3
privacy.batch_size = 50
privacy.default_rows_per_second = 0
privacy.require_distinct_approver = off
privacy.max_attempts = 4
max_worker_processes = 16
restart_after_crash = on
});

my $subjects = 60;
my @extras = ('extra1', 'extra2');
$node->safe_psql('app', qq{
CREATE EXTENSION pg_privacy;
CREATE TABLE users (id bigint PRIMARY KEY, tenant text NOT NULL, name text);
CREATE TABLE orders (id bigint PRIMARY KEY, tenant text NOT NULL, user_id bigint NOT NULL REFERENCES users, code text);
CREATE TABLE events (id bigint PRIMARY KEY, tenant text NOT NULL, user_id bigint NOT NULL, what text);
CREATE INDEX ON orders (tenant, user_id, id);
CREATE INDEX ON events (tenant, user_id, id);
INSERT INTO users SELECT g, 'acme', 'user ' || g FROM generate_series(0, $subjects) g;   -- 0: the tombstone
INSERT INTO orders SELECT u * 100 + k, 'acme', u, 'code ' || k FROM generate_series(1, $subjects) u, generate_series(1, 10) k;
INSERT INTO events SELECT u * 10000 + k, 'acme', u, 'event ' || k FROM generate_series(1, $subjects) u, generate_series(1, 400) k;
SELECT privacy.register_table('users', 'id', 'tenant');
SELECT privacy.register_table('orders', 'user_id', 'tenant', 'anonymize');
SELECT privacy.set_column_rule('orders', 'user_id', 'tombstone');
SELECT privacy.set_column_rule('orders', 'code', 'null');
SELECT privacy.register_table('events', 'user_id', 'tenant');
SELECT privacy.configure_tenant('acme', tombstone_subject => '0', approval_required => '{}',
                                recovery_window => '1 day', rows_per_second => 4000);
});
for my $extra (@extras) {
	$node->safe_psql('app', qq{
CREATE TABLE $extra (id bigint PRIMARY KEY, tenant text NOT NULL, user_id bigint NOT NULL);
CREATE INDEX ON $extra (tenant, user_id, id);
INSERT INTO $extra SELECT u * 100 + k, 'acme', u FROM generate_series(1, $subjects) u, generate_series(1, 20) k;
SELECT privacy.register_table('$extra', 'user_id', 'tenant');
});
}

sub query { return $node->safe_psql('app', $_[0]); }
sub try_query {   # returns (ok, output or error)
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('app', $sql);
	return ($ret == 0, $ret == 0 ? $out : $err);
}
sub rows { my ($sql) = @_; my $out = query($sql); return $out eq '' ? () : split /\n/, $out; }
sub pick { my @list = @_; return @list ? $list[int(rand(@list))] : undef; }

# The model: what the test did and what it saw.
my %touched;        # subject => 1 once a request named it (its rows may change)
my %restored;       # "table:id" => 1, rows a restore brought back
my %ever_marked;    # "table:id" => job, rows seen marked
my %live_tables = map { $_ => 1 } ('users', 'orders', 'events', @extras);
my @holds;          # open hold ids
my @fresh = (1 .. $subjects);

sub row_tables { return grep { $live_tables{$_} } ('users', 'orders', 'events', @extras); }
sub key_column { return $_[0] eq 'users' ? 'id' : 'user_id'; }
# Per table and subject, a checksum of the subject's rows: "table subject" => md5.
sub subject_checksums {
	my @parts = map {
		my $key = key_column($_);
		"SELECT '$_ ' || $key || '|' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM $_ x
		 WHERE $key BETWEEN 1 AND $subjects GROUP BY $key"
	} row_tables();
	return map { split /\|/ } rows(join(' UNION ALL ', @parts));
}
my %initial = subject_checksums();
# The rows of subjects no request named, as they are now and as they were at the start.
sub untouched_rows {
	my %now = subject_checksums();
	my @keys = sort grep { my ($table, $subject) = split / /; $live_tables{$table} && !$touched{$subject} } keys %initial;
	return (join("\n", map { "$_ " . ($now{$_} // 'gone') } @keys), join("\n", map { "$_ $initial{$_}" } @keys));
}

# Records every marked row now visible.
sub observe_marks {
	my @parts = map { "SELECT '$_:' || id || '|' || privacy_erased_by FROM $_ WHERE privacy_erased_by IS NOT NULL" } row_tables();
	for my $row (rows(join(' UNION ALL ', @parts))) {
		my ($key, $job) = split /\|/, $row;
		$ever_marked{$key} = $job;
	}
}

# A new erase of a fresh subject; returns (job, subject) or () when refused.
sub new_erase {
	my ($reason) = @_;
	my $subject = shift @fresh;
	$touched{$subject} = 1;
	my ($ok, $job) = try_query("SELECT privacy.request_erase('acme', '$subject', '$reason')");
	return $ok ? ($job, $subject) : ();
}
sub wait_processing {
	my ($job) = @_;
	return $node->poll_query_until('app',
		"SELECT status <> 'approved' AND (status <> 'processing' OR processed_items > 0) FROM privacy.jobs WHERE id = $job");
}
sub jobs_where { my ($cond) = @_; return rows("SELECT id FROM privacy.jobs WHERE kind = 'erase' AND $cond ORDER BY id"); }

my %actions = (
	erase => sub { return undef unless @fresh; my ($job) = new_erase('erase'); return "erase -> job " . ($job // 'refused'); },
	erase_then_cancel => sub {
		return undef unless @fresh;
		my ($job) = new_erase('cancel') or return 'erase refused';
		wait_processing($job);
		try_query("SELECT privacy.cancel($job, 'changed our mind')");
		return "erase and cancel job $job";
	},
	erase_then_subject_hold => sub {
		return undef unless @fresh;
		my ($job, $subject) = new_erase('hold') or return 'erase refused';
		wait_processing($job);
		my ($ok, $hold) = try_query("SELECT privacy.place_hold('subject', '$subject', 'acme', 'case $subject')");
		push @holds, $hold if $ok;
		return "erase job $job, subject hold on $subject";
	},
	erase_then_kill => sub {
		return undef unless @fresh;
		query(q{SELECT privacy.configure_tenant('acme', rows_per_second => 300)});   # slow enough to be caught
		my ($job) = new_erase('kill');
		wait_processing($job) if $job;
		my $pid = $job ? query("SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_privacy worker job $job'") : '';
		query(q{SELECT privacy.configure_tenant('acme', rows_per_second => 4000)});
		return 'erase refused' unless $job;
		return "erase job $job ended before a kill" unless $pid =~ /^\d+$/;
		kill 'KILL', $pid;
		# The postmaster answers the kill -9 of a worker by restarting every process; until then the
		# killed worker's pg_stat_activity entry stays (it never cleared it), and the next step's query
		# could meet the restart. A worker that had ended by itself before the kill cleared its entry.
		$node->poll_query_until('app', qq{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_privacy launcher'
		                                   AND NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid)})
		  or die "worker $pid still listed, or no launcher, after its kill -9";
		return "erase job $job, kill -9 of its worker $pid";
	},
	retry => sub {
		my $job = pick(jobs_where("status IN ('failed', 'cancelled')")) // return undef;
		my ($ok) = try_query("SELECT privacy.retry($job)");
		return "retry job $job: " . ($ok ? 'accepted' : 'refused');
	},
	restore => sub {
		my $job = pick(jobs_where("finalization = 'awaiting_window'")) // return undef;
		my @tables = rand() < 0.5 ? row_tables() : (pick(row_tables()));
		my %keys = map { my $table = $_; ($table => [rows("SELECT id FROM $table WHERE privacy_erased_by = $job")]) } @tables;
		my $where = @tables == 1 ? $tables[0] : 'every table';
		my ($ok) = try_query(@tables == 1 ? "SELECT privacy.restore($job, '$tables[0]')" : "SELECT privacy.restore($job)");
		return "restore job $job in $where: refused" unless $ok;
		for my $table (@tables) { $restored{"$table:$_"} = 1 for @{ $keys{$table} }; }
		return "restore job $job in $where: " . scalar(map { @$_ } values %keys) . ' rows';
	},
	table_hold => sub {
		my $table = pick(grep { $_ ne 'users' } row_tables());
		my ($ok, $hold) = try_query("SELECT privacy.place_hold('table', 'public.$table', 'acme', 'audit of $table')");
		push @holds, $hold if $ok;
		return "table hold on $table: " . ($ok ? "hold $hold" : 'refused');
	},
	release_hold => sub {
		return undef unless @holds;
		my $hold = splice(@holds, int(rand(@holds)), 1);
		try_query("SELECT privacy.release_hold($hold, 'case closed')");
		return "release hold $hold";
	},
	expire => sub {
		my $job = pick(jobs_where("finalization = 'awaiting_window'")) // return undef;
		query("UPDATE privacy.jobs SET recoverable_until = now() WHERE id = $job");
		return "the window of job $job closes";
	},
	drop_table => sub {
		my $table = pick(grep { $live_tables{$_} } @extras) // return undef;
		my ($ok, $err) = try_query("DROP TABLE $table");
		return "drop $table refused: $err" unless $ok;
		delete $live_tables{$table};
		delete $ever_marked{$_} for grep { /^$table:/ } keys %ever_marked;
		delete $restored{$_} for grep { /^$table:/ } keys %restored;
		return "drop table $table";
	},
);
my @weighted = ((('erase') x 3), (('erase_then_cancel') x 2), 'erase_then_subject_hold', (('erase_then_kill') x 2),
	(('retry') x 2), (('restore') x 2), 'table_hold', (('release_hold') x 2), (('expire') x 3), 'drop_table');

# Jobs a runner has to move on: approved or processing, finalizing, or awaiting a window that has
# closed (the launcher claims those).
my $running = q{(status IN ('approved', 'processing') OR finalization = 'finalizing'
                 OR (finalization = 'awaiting_window' AND recoverable_until <= now()))};

# Waits until no job is left running: a runner ends or resumes each (kill -9 included) within
# the deadline; returns whether it got there.
sub quiescent { return $node->poll_query_until('app', "SELECT NOT EXISTS (SELECT FROM privacy.jobs WHERE $running)"); }

# The state of rows given as "table:id": marked, anonymized (orders pointing to the tombstone),
# present; rows that are gone are left out. One query per table.
sub row_states {
	my %ids;
	for my $key (@_) { my ($table, $id) = split /:/, $key; push @{ $ids{$table} }, $id if $live_tables{$table}; }
	my %state;
	for my $table (sort keys %ids) {
		my $anonymized = $table eq 'orders' ? 'user_id = 0' : 'false';
		for my $row (rows("SELECT id || ' ' || CASE WHEN privacy_erased_by IS NOT NULL THEN 'marked'
		                   WHEN $anonymized THEN 'anonymized' ELSE 'present' END
		                   FROM $table WHERE id = ANY ('{" . join(',', @{ $ids{$table} }) . "}'::bigint[])")) {
			my ($id, $what) = split / /, $row;
			$state{"$table:$id"} = $what;
		}
	}
	return %state;
}

sub check_invariants {
	my ($label) = @_;
	is(query(q{SELECT count(*) FROM (SELECT FROM privacy.job_errors GROUP BY job_id, relation, row_key, phase, attempt
	                                 HAVING count(*) > 1) d}), '0', "$label: job_errors holds one row per key and attempt");
	my ($now, $before) = untouched_rows();
	is($now, $before, "$label: rows of subjects no request named are unchanged");
	my %state = row_states(keys %restored);
	my @lost = grep { $live_tables{(split /:/)[0]} && ($state{$_} // 'gone') ne 'present' } sort keys %restored;
	is(join(',', @lost), '', "$label: every restored row is present and unmarked");
	is(query('SELECT ok FROM privacy.verify_audit_log()'), 't', "$label: the audit chain verifies");
}

for my $step (1 .. $steps) {
	my ($action, $what);
	until (defined $what) {   # an action that has nothing to act on now draws again
		$action = $weighted[int(rand(@weighted))];
		$what = $actions{$action}->();
	}
	note("step $step: $what");
	ok(quiescent(), "step $step ($what): no job left running without a runner beyond the deadline")
	  or diag(query("SELECT string_agg(id || ' ' || status || ' ' || coalesce(finalization::text, ''), '; ') FROM privacy.jobs WHERE $running"));
	observe_marks();
	check_invariants("step $step");
}

# The end: every hold released, every window closed. Every erasure that marked rows is finalized.
query("SELECT privacy.release_hold($_, 'the end')") for @holds;
@holds = ();
query(q{UPDATE privacy.jobs SET recoverable_until = now() WHERE finalization = 'awaiting_window'});
ok($node->poll_query_until('app', q{SELECT NOT EXISTS (SELECT FROM privacy.jobs
                                      WHERE finalization IN ('awaiting_window', 'finalizing', 'held'))}),
   'the end: every finalization ran once no window and no hold kept it');
observe_marks();
check_invariants('the end');
is(join(',', rows(q{SELECT id || ' ' || finalization FROM privacy.jobs
                    WHERE finalization NOT IN ('finalized', 'finalized_with_errors')})), '',
   'every erasure that reached processing ends finalized');
my %final = row_states(keys %ever_marked);
# Rows a finalization could not finish stay marked as open items of their job (a restored child
# row still references its parent, say): a person's decision now (docs/jobs.md, "Flagged items").
my %flagged = map { $_ => 1 } rows(q{SELECT relation::text || ':' || (row_key->>'id') FROM privacy.job_errors
                                      WHERE resolution IS NULL AND row_key IS NOT NULL});
my (@neither, @both);
for my $key (sort keys %ever_marked) {
	next unless $live_tables{(split /:/, $key)[0]};
	my $state = $final{$key} // 'gone';
	my $finalized = $state eq 'gone' || $state eq 'anonymized';
	push @neither, "$key ($state)" if !$finalized && !$restored{$key} && !($state eq 'marked' && $flagged{$key});
	push @both, $key if $finalized && $restored{$key};
}
is(join(',', @neither), '', sprintf('each of %d rows seen marked is restored, finalized or flagged', scalar(keys %ever_marked)));
is(join(',', @both), '', 'no row is both restored and finalized');
cmp_ok(scalar(keys %ever_marked), '>', 0, 'the run marked rows');

$node->stop;
done_testing();
