# A Citus cluster for the TAP tests of test/citus: one coordinator and two workers on this
# machine (PostgreSQL::Test::Cluster nodes on free ports), each preloading citus and pg_privacy,
# with both extensions created in database "postgres" and the workers added to the coordinator.
# Memory is kept small (two helpers may run clusters side by side on a 2-core machine).
#
#   use FindBin; use lib $FindBin::Bin; use CitusCluster;
#   my $cluster = CitusCluster->new('smoke', coordinator_conf => 'privacy.naptime = 1');
#   $cluster->coordinator->safe_psql('postgres', ...);
#   $cluster->stop;     # also done at exit by PostgreSQL::Test::Cluster's END block
#
# Citus connects between nodes over TCP, so every node listens on 127.0.0.1 and trusts it.
package CitusCluster;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes ();

# Settings every node gets. citus before pg_privacy: Citus insists on being first.
my $common_conf = q{
shared_preload_libraries = 'citus,pg_privacy'
listen_addresses = '127.0.0.1'
shared_buffers = 16MB
max_connections = 60
max_worker_processes = 16
wal_level = logical
max_wal_senders = 8
max_replication_slots = 8
fsync = off
citus.shard_count = 32
privacy.database = 'postgres'
privacy.require_distinct_approver = off
privacy.default_rows_per_second = 0
};

# new(NAME, coordinator_conf => '...', worker_conf => '...'): starts the three nodes and joins
# them. Dies (ending the test) if any step fails.
sub new {
	my ($class, $name, %options) = @_;
	my $self = bless { name => $name }, $class;
	$self->{coordinator} = _start_node("${name}_coordinator", $options{coordinator_conf});
	$self->{workers} = [
		map { _start_node("${name}_worker$_", $options{worker_conf}) } (1, 2)
	];
	for my $node ($self->nodes) {
		$node->safe_psql('postgres', 'CREATE EXTENSION citus');
	}
	my $coordinator = $self->{coordinator};
	$coordinator->safe_psql('postgres',
		"SELECT citus_set_coordinator_host('127.0.0.1', " . $coordinator->port . ')');
	for my $worker (@{ $self->{workers} }) {
		$coordinator->safe_psql('postgres',
			"SELECT citus_add_node('127.0.0.1', " . $worker->port . ')');
	}
	# Created on the coordinator only: Citus propagates CREATE EXTENSION to the workers.
	$coordinator->safe_psql('postgres', 'CREATE EXTENSION pg_privacy');
	return $self;
}

sub _start_node {
	my ($node_name, $extra_conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($node_name);
	$node->init;
	$node->append_conf('postgresql.conf', $common_conf . ($extra_conf // ''));
	$node->append_conf('pg_hba.conf', "host all all 127.0.0.1/32 trust\n");
	$node->start;
	return $node;
}

sub coordinator { return $_[0]->{coordinator}; }
sub workers     { return @{ $_[0]->{workers} }; }
sub nodes       { my $self = shift; return ($self->{coordinator}, @{ $self->{workers} }); }

# The worker node (PostgreSQL::Test::Cluster) that holds the placement of a shard.
sub node_of_shard {
	my ($self, $shard_id) = @_;
	my $port = $self->{coordinator}->safe_psql('postgres',
		"SELECT nodeport FROM pg_catalog.pg_dist_placement p"
		  . " JOIN pg_catalog.pg_dist_node n USING (groupid) WHERE p.shardid = $shard_id");
	for my $node ($self->nodes) {
		return $node if $node->port == $port;
	}
	die "no node of this cluster holds shard $shard_id (port '$port')";
}

# The shard of a distributed table that holds the rows of one distribution column value.
sub shard_for {
	my ($self, $table, $value) = @_;
	return $self->{coordinator}->safe_psql('postgres',
		"SELECT pg_catalog.get_shard_id_for_distribution_column('$table', '$value')");
}

# Moves a shard to the other worker (block_writes: no logical replication needed).
sub move_shard {
	my ($self, $shard_id) = @_;
	my $from = $self->node_of_shard($shard_id);
	my ($to) = grep { $_->port != $from->port } $self->workers;
	$self->{coordinator}->safe_psql('postgres',
		"SELECT pg_catalog.citus_move_shard_placement($shard_id, '127.0.0.1', "
		  . $from->port . ", '127.0.0.1', " . $to->port . ", shard_transfer_mode => 'block_writes')");
	return $to;
}

# Immediate stop of every node (the END block of PostgreSQL::Test::Cluster would do it too).
sub stop {
	my $self = shift;
	$_->stop('immediate') for grep { defined $_->{_pid} } $self->nodes;
	return;
}

# ----- the application of the guarantee tests (010, 020, 030) ------------------------------------

# Waits up to `seconds` for `sql` (on the coordinator) to return 't'; a deadline, never a fixed
# sleep. Returns whether it did.
sub wait_until {
	my ($self, $sql, $seconds) = @_;
	my $deadline = Time::HiRes::time() + $seconds;
	while (Time::HiRes::time() < $deadline) {
		return 1 if $self->{coordinator}->safe_psql('postgres', $sql) eq 't';
		Time::HiRes::sleep(0.2);
	}
	return 0;
}

# Runs `sql` on the coordinator as the application role app: (exit code, stdout, stderr).
sub as_app {
	my ($self, $sql) = @_;
	return $self->{coordinator}->psql('postgres', $sql, extra_params => ['-U', 'app']);
}

# How many shards of `table` lack a RESTRICTIVE privacy_hide_erased policy.
sub shards_without_restrictive_hide {
	my ($self, $table) = @_;
	return $self->{coordinator}->safe_psql('postgres', qq{
    SELECT count(*) FROM run_command_on_shards('$table',
      \$\$SELECT count(*) FROM pg_policy WHERE polrelid = '%s'::regclass
          AND polname = 'privacy_hide_erased' AND NOT polpermissive\$\$)
     WHERE result <> '1'});
}

# Requests and approves the erasure of a subject; returns the job id.
sub run_erase {
	my ($self, $tenant, $subject) = @_;
	my $coordinator = $self->{coordinator};
	my $job = $coordinator->safe_psql('postgres', "SELECT privacy.request_erase('$tenant', '$subject', 'issue 14')");
	$coordinator->safe_psql('postgres', "SELECT privacy.approve($job)");
	return $job;
}

# A cluster for the guarantee tests: the launcher every second, privacy.lock_timeout 1 s, batches
# of 50, Citus's statement counters on, and the application below. Returns (cluster, rows of t1).
sub with_application {
	my ($class, $name) = @_;
	my $self = $class->new($name, coordinator_conf => q{
privacy.naptime = 1
privacy.lock_timeout = 1000
privacy.batch_size = 50
citus.enable_stat_counters = on
});
	return ($self, $self->create_application);
}

# The application: one role, tenant isolation by a policy of its own (the usual Citus pattern:
# the tenant comes from a setting; ALTER ROLE ... SET reaches every node); two colocated tables
# distributed by tenant_id, 800 rows each over tenants t0..t7 and subjects s0..s9 (row g has
# tenant t(g % 8) and subject s(g % 10)), registered (orders anonymized). Returns how many rows
# of people the application's tenant t1 has.
sub create_application {
	my ($self) = @_;
	my $coordinator = $self->{coordinator};
	$coordinator->safe_psql('postgres', q{
CREATE ROLE app LOGIN;
ALTER ROLE app SET app.tenant = 't1';
CREATE TABLE people (tenant_id text NOT NULL, id bigint NOT NULL, subject text NOT NULL, payload text,
                     PRIMARY KEY (tenant_id, id));
CREATE INDEX ON people (tenant_id, subject, id);
SELECT create_distributed_table('people', 'tenant_id');
INSERT INTO people SELECT 't' || (g % 8), g, 's' || (g % 10), md5(g::text) FROM generate_series(1, 800) g;
ALTER TABLE people ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON people TO app USING (tenant_id = current_setting('app.tenant'));
GRANT SELECT, UPDATE, DELETE ON people TO app;
CREATE TABLE orders (tenant_id text NOT NULL, id bigint NOT NULL, customer text NOT NULL, note text,
                     PRIMARY KEY (tenant_id, id));
CREATE INDEX ON orders (tenant_id, customer, id);
SELECT create_distributed_table('orders', 'tenant_id', colocate_with => 'people');
INSERT INTO orders SELECT 't' || (g % 8), g, 's' || (g % 10), 'note ' || g FROM generate_series(1, 800) g;
SELECT privacy.register_table('people', 'subject', 'tenant_id');
SELECT privacy.register_table('orders', 'customer', 'tenant_id', 'anonymize');
SELECT privacy.set_column_rule('orders', 'note', 'redact');
SELECT privacy.configure_tenant('t3', recovery_window => '0 seconds');
});
	return $coordinator->safe_psql('postgres', "SELECT count(*) FROM people WHERE tenant_id = 't1'");
}

1;
