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

1;
