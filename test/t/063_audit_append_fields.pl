# What the append reads from the session itself, in C (src/audit/audit.cpp: the actor, the client
# address, the application name, the time, the canonical detail), is exactly what the chain hashes
# and what the row stores: rows appended over TCP with an application name, under odd DateStyle and
# TimeZone settings, with a detail given in a non-canonical form, with a toasted detail and with an
# on_behalf_of full of JSON escapes verify in the database and offline (issue 16, B9).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('audit_fields');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_privacy'\nlisten_addresses = '127.0.0.1'\n");
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION pg_privacy;
    CREATE ROLE fields_admin LOGIN IN ROLE privacy_admin;});

# A session over TCP with an application name and settings that change how times print.
sub psql_tcp {
	my ($sql) = @_;
	my $conn = 'host=127.0.0.1 port=' . $node->port
	  . ' dbname=postgres user=fields_admin application_name=fields_app';
	my ($out, $err);
	IPC::Run::run([ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $conn, '-c', $sql ],
		'>', \$out, '2>', \$err)
	  or die "psql over TCP failed: $err";
	return $out;
}
psql_tcp(q{SET TimeZone = 'Asia/Kathmandu'; SET DateStyle = 'SQL, DMY';
           SELECT tenant_id FROM privacy.configure_tenant('fields_a', display_name => 'A');});
psql_tcp(q{SET TimeZone = 'America/St_Johns'; SET DateStyle = 'German';
           SELECT tenant_id FROM privacy.configure_tenant('fields_a', rows_per_second => 7);});

is( $node->safe_psql('postgres', q{
        SELECT string_agg(concat_ws('|', actor, acting_role, client_addr, application_name,
                                    detail -> 'after' ->> 'rows_per_second'), ' ' ORDER BY id)
        FROM privacy.audit_log WHERE chain = 'fields_a'}),
	'fields_admin|postgres|127.0.0.1|fields_app fields_admin|postgres|127.0.0.1|fields_app|7',
	'a TCP session: actor, acting role (the definer), client address and application name recorded');
is( $node->safe_psql('postgres', q{
        SELECT bool_and(at BETWEEN now() - interval '1 hour' AND clock_timestamp())
               AND bool_and(at > lag_at OR lag_at IS NULL)
        FROM (SELECT at, lag(at) OVER (ORDER BY id) AS lag_at
              FROM privacy.audit_log WHERE chain = 'fields_a') t}),
	't', 'the time of each row is the time of its append, in chain order, whatever the session time zone');

# Detail given as any JSON text is stored and hashed in jsonb's canonical form; a toasted jsonb
# argument (from a table) is stored whole.
$node->safe_psql('postgres', q{
    SET TimeZone = 'Pacific/Chatham';
    SELECT privacy._audit('fields_detail', 'fields_a', 3, 'spacing', 'ok',
                          '{"b": 2,   "a" : [1,2], "b": "dup", "ü": "é\"q\\\\"}');
    CREATE TABLE big_detail AS
        SELECT jsonb_build_object('pad', string_agg(md5(i::text), '')) AS d FROM generate_series(1, 4000) i;
    SELECT privacy._audit('fields_detail', 'fields_a', NULL, 'toasted', 'ok', d) FROM big_detail;});
is( $node->safe_psql('postgres',
		q{SELECT detail::text FROM privacy.audit_log WHERE target = 'spacing'}),
	'{"a": [1, 2], "b": "dup", "ü": "é\"q\\\\"}',
	'a non-canonical detail is stored canonical (keys ordered, last duplicate wins)');
is( $node->safe_psql('postgres', q{
        SELECT length(l.detail ->> 'pad') = length(b.d ->> 'pad') AND l.detail = b.d
        FROM privacy.audit_log l, big_detail b WHERE l.target = 'toasted'}),
	't', 'a toasted detail argument is stored whole');

# on_behalf_of with quotes, a backslash, a newline and non-ASCII goes into detail as one JSON
# string, next to the detail the caller built (audit::Entry::on_behalf_of, merged in C).
$node->safe_psql('postgres', q{
    CREATE TABLE users (tenant text NOT NULL, id text NOT NULL, PRIMARY KEY (tenant, id));
    SELECT privacy.register_table('users', 'id', 'tenant');});
# (In q{}, \\ is one backslash: the SQL below holds a single one, in a standard string.)
my $on_behalf_of = q{'Jane "J" \\ Doe' || chr(10) || 'ü'};
my $job = $node->safe_psql('postgres',
	"SELECT privacy.request_erase('fields_a', '8', 'ticket 8', on_behalf_of => $on_behalf_of)");
is( $node->safe_psql('postgres',
		"SELECT detail ->> 'on_behalf_of' = $on_behalf_of FROM privacy.audit_log"
		  . " WHERE job_id = $job AND action = 'submitted'"),
	't', 'on_behalf_of is recorded verbatim in detail');

is( $node->safe_psql('postgres', 'SELECT ok, checked >= 6 FROM privacy.verify_audit_log()'),
	't|t', 'every row verifies in the database');

my ($ok, $out, $err) = verify_audit_csv(export_audit_csv($node));
ok($ok, 'the export verifies offline') or diag("$out\n$err");

$node->stop;
done_testing();
