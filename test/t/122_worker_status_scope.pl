# privacy.worker_status() for a tenant-scoped role (docs/security.md, "Tenant scopes"): it lists
# the workers of its own tenants only, and the launcher; a platform-wide role sees every worker.
# Two jobs of two tenants run at once, slowed down by their tenants' rows_per_second.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = privacy_node('wscope', database => 'app', wait_for_launcher => 1, create_extension => 1,
	conf => $JOB_WORKER_CONF . "privacy.naptime = 1\n");

$node->safe_psql('app', q{
CREATE TABLE people (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
CREATE INDEX ON people (tenant, subject, id);
INSERT INTO people SELECT g, CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END, 's1' FROM generate_series(1, 20000) g;
SELECT privacy.register_table('people', 'subject', 'tenant');
SELECT privacy.configure_tenant('acme', rows_per_second => 20);
SELECT privacy.configure_tenant('globex', rows_per_second => 20);
CREATE ROLE acme_dpo LOGIN IN ROLE privacy_admin;
CREATE ROLE globex_audit LOGIN IN ROLE privacy_auditor;
SELECT privacy.grant_tenant('acme_dpo', 'acme', 'decide');
SELECT privacy.grant_tenant('globex_audit', 'globex', 'audit');
SELECT privacy.approve(privacy.request_erase('acme', 's1', 'slow acme job'));
SELECT privacy.approve(privacy.request_erase('globex', 's1', 'slow globex job'));
});

ok($node->poll_query_until('app', q{
	SELECT string_agg(DISTINCT tenant_id, ',' ORDER BY tenant_id) = 'acme,globex'
	  FROM privacy.worker_status() WHERE process = 'worker'}),
	'a platform-wide role sees the workers of both tenants');

# Rows of worker_status as `role` sees them: "process:tenant" sorted.
sub status_as {
	my ($role) = @_;
	return $node->safe_psql('app', qq{
		SET SESSION AUTHORIZATION $role;
		SELECT string_agg(process || ':' || coalesce(tenant_id, '-'), ' ' ORDER BY process, tenant_id)
		  FROM privacy.worker_status();});
}

my $acme = status_as('acme_dpo');
my $globex = status_as('globex_audit');
my $busy = $node->safe_psql('app',
	q{SELECT count(*) FROM privacy.worker_status() WHERE process = 'worker' AND tenant_id IN ('acme', 'globex')});
is($busy, '2', 'both workers were still busy while the scoped roles looked');
is($acme, 'launcher:- mailer:- worker:acme', "acme's admin sees acme's worker only (and the launcher, the mailer)");
is($globex, 'launcher:- mailer:- worker:globex', "globex's auditor sees globex's worker only");

$node->stop('immediate');
done_testing();
