# An error raised by pg_privacy's C++ code reports where it was thrown (issue 15): the LOCATION
# line of a verbose error, and the server log, name the file and line of the throw, not the
# boundary (src/pg/boundary.cpp) that re-raised the exception in PostgreSQL.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = privacy_node('error_location', create_extension => 1, conf => q{
privacy.naptime = 60
log_error_verbosity = verbose
});

# Registering a system catalog is refused by src/data/registration_checks.cpp.
my ($stdout, $stderr);
$node->psql('postgres', "\\set VERBOSITY verbose\nSELECT privacy.register_table('pg_catalog.pg_class', 'relname')",
	stdout => \$stdout, stderr => \$stderr);
like($stderr, qr/ERROR:  42501: /, 'the refusal keeps its SQLSTATE');
like($stderr, qr/LOCATION:  \S+, registration_checks\.cpp:\d+/, 'LOCATION names the file that threw');
unlike($stderr, qr/boundary\.cpp/, 'LOCATION does not name the boundary');

my $log = slurp_file($node->logfile);
like($log, qr/LOCATION:  \S+, registration_checks\.cpp:\d+/, 'the server log names it too');

$node->stop;
done_testing();
