# Encrypted exports end to end (docs/exports.md): recipients with RSA and EC keys made by the
# openssl CLI, an export of two registered tables, download as PEM and DER, decryption with the
# stock `openssl cms -decrypt`, row-for-row comparison with the source tables, a flipped byte
# that must not decrypt, privileges, restart after an interrupted run, flat memory, expiry.
#
# The export runs through CALL privacy.run_job (the worker's own job loop, in the test's session)
# in database "exp", where no launcher runs until the expiry test at the end; the
# background-worker path is tested in 071_export_worker.pl.
use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $json = JSON::PP->new->canonical;

my $node = PostgreSQL::Test::Cluster->new('export');
$node->init(extra => ['--encoding=UTF8', '--locale=C']);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_privacy'
privacy.database = 'postgres'
privacy.naptime = 1
shared_buffers = 16MB
});
$node->start;

# --- keys and certificates, made with the openssl command line as docs/exports.md says
for my $recipient (['rsa', '-newkey', 'rsa:2048'],
                   ['ec', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']) {
	my ($name, @key) = @$recipient;
	my $ok = IPC::Run::run(['openssl', 'req', '-x509', @key, '-nodes', '-keyout', "$dir/$name.key",
	                        '-out', "$dir/$name.crt", '-days', '30', '-subj', "/CN=$name export admin"],
	                       '>', \my $out, '2>', \my $err);
	ok($ok, "openssl made the $name key and certificate") or diag($err);
}

sub slurp { my ($file) = @_; open my $fh, '<', $file or die "$file: $!"; local $/; my $text = <$fh>; return $text; }

$node->safe_psql('postgres', 'CREATE DATABASE exp');
$node->safe_psql('exp', 'CREATE EXTENSION pg_privacy');
for my $name ('rsa', 'ec') {
	my $pem = slurp("$dir/$name.crt");
	my $type = $node->safe_psql('exp',
		"SELECT key_type FROM privacy.add_export_recipient('$name', \$pem\$$pem\$pem\$)");
	is($type, uc($name), "$name certificate accepted as a recipient");
}

# --- two registered tables; subject 1 of tenant acme has rows in both, some soft-deleted
$node->safe_psql('exp', q{
CREATE SCHEMA app;
CREATE TABLE app.users (id int PRIMARY KEY, tenant text NOT NULL, email text, name text,
                        born date, prefs jsonb, privacy_erased_by bigint);
CREATE TABLE app.orders (tenant text, order_no int, user_id int, amount numeric(10,2), note text,
                         privacy_erased_by bigint, PRIMARY KEY (tenant, order_no));
CREATE INDEX ON app.orders (user_id, tenant, order_no);
INSERT INTO app.users VALUES
  (1, 'acme', 'ann@example.com', 'Ann "the first" \ ' || chr(233), '1990-02-03', '{"lang": "fr", "n": [1, 2]}', NULL),
  (2, 'acme', 'bob@example.com', 'Bob', NULL, NULL, NULL),
  (3, 'acme', 'big@example.com', 'Big', NULL, NULL, NULL),
  (4, 'other', 'four@example.com', 'Other tenant', NULL, NULL, NULL);
INSERT INTO app.orders SELECT 'acme', g, 1, g * 1.25, 'order ' || g || E'\n\t"quoted"',
                              CASE WHEN g % 10 = 0 THEN 99 END
  FROM generate_series(1, 57) g;
INSERT INTO app.orders VALUES ('other', 1, 1, 5, 'same user id, other tenant', NULL),
                              ('acme', 1000, 2, 7, 'bob', NULL);
INSERT INTO privacy.registered_tables (relation, subject_column, tenant_column, key_columns) VALUES
  ('app.users', 'id', 'tenant', '{id}'),
  ('app.orders', 'user_id', 'tenant', '{tenant,order_no}');
});

sub new_export_job {
	my ($subject) = @_;
	return $node->safe_psql('exp', qq{
INSERT INTO privacy.jobs (kind, target_type, target_id, tenant_id, reason, requires_approval, status, due_at)
VALUES ('export', 'subject', '$subject', 'acme', 'TAP export', false, 'approved', now() + interval '30 days')
RETURNING id});
}

# Runs a command, returns (exit code, stdout, stderr).
sub run_command_capture {
	my (@command) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(\@command, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

sub psql_to_file {
	my ($user, $sql, $file) = @_;
	my $ok = IPC::Run::run(['psql', '-X', '-Atc', $sql, '-d', $node->connstr('exp'), '-U', $user],
	                       '>', $file, '2>', \my $err);
	ok($ok, "psql as $user: $sql") or diag($err);
}

sub decrypt {
	my ($inform, $in, $key, $out) = @_;
	my ($code, undef, $err) = run_command_capture('openssl', 'cms', '-decrypt', '-inform', $inform, '-in', $in,
		'-inkey', "$dir/$key.key", '-recip', "$dir/$key.crt", '-out', $out);
	return ($code, $err);
}

# --- export subject 1 in small batches (7 rows), so pages cross batch and table boundaries
# Runs an export job to the end with CALL privacy.run_job and returns its result.
sub run_export {
	my ($export_job, $batch_size) = @_;
	return decode_json($node->safe_psql('exp', qq{
SET privacy.batch_size = $batch_size;
CALL privacy.run_job($export_job);
SELECT result FROM privacy.jobs WHERE id = $export_job}));
}

my $job = new_export_job(1);
my $result = run_export($job, 7);
is($result->{rows}, 58, 'result counts 57 orders and 1 user');
is_deeply($result->{tables}, [{table => 'app.orders', rows => 57}, {table => 'app.users', rows => 1}],
	'result lists the tables with their row counts');
like($result->{download}, qr/^psql -Atc "select privacy\.download_export\($job\)" > export-$job\.pem$/,
	'result has the download command');
like($result->{decrypt}, qr/^openssl cms -decrypt -inform PEM -in export-$job\.pem /, 'result has the decrypt command');
ok($result->{expires_at}, 'result has expires_at');
is($node->safe_psql('exp', "SELECT status FROM privacy.jobs WHERE id = $job"), 'completed', 'job completed');

$node->safe_psql('exp', q{
CREATE ROLE adm LOGIN IN ROLE privacy_admin;
CREATE ROLE req LOGIN IN ROLE privacy_requester;
CREATE ROLE aud LOGIN IN ROLE privacy_auditor;
CREATE ROLE plain LOGIN;
CREATE ROLE owner LOGIN;
ALTER TABLE app.orders OWNER TO owner;
GRANT USAGE ON SCHEMA app TO owner;   -- the export reads each table as its owner (docs/security.md)
});

psql_to_file('adm', "select privacy.download_export($job)", "$dir/export.pem");
like(slurp("$dir/export.pem"), qr/\A-----BEGIN CMS-----\n/, 'download_export returns PEM');

my %documents;
for my $key ('rsa', 'ec') {
	my ($code, $err) = decrypt('PEM', "$dir/export.pem", $key, "$dir/export-$key.json");
	is($code, 0, "openssl cms -decrypt succeeds with the $key key") or diag($err);
	$documents{$key} = decode_json(slurp("$dir/export-$key.json"));
}
is_deeply($documents{ec}, $documents{rsa}, 'both recipients read the same document');

my $doc = $documents{rsa};
is($doc->{format}, 'pg_privacy.export/1', 'format');
is($doc->{job}, $job, 'job id');
is($doc->{tenant}, 'acme', 'tenant');
is($doc->{subject}, '1', 'subject');
like($doc->{generated_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'generated_at');
is_deeply([map { $_->{table} } @{$doc->{tables}}], ['app.orders', 'app.users'], 'both tables, in name order');

# The source rows as the export must show them: every column but the internal one, plus _erased.
for my $table (['app.orders', 'user_id = 1', 'tenant, order_no'], ['app.users', 'id = 1', 'id']) {
	my ($name, $where, $order) = @$table;
	my $expected = decode_json($node->safe_psql('exp', qq{
SELECT coalesce(jsonb_agg(to_jsonb(t) - 'privacy_erased_by'
                          || jsonb_build_object('_erased', t.privacy_erased_by IS NOT NULL) ORDER BY $order), '[]')
  FROM $name t WHERE $where AND tenant = 'acme'}));
	my ($exported) = grep { $_->{table} eq $name } @{$doc->{tables}};
	is_deeply($exported->{rows}, $expected, "$name: exported rows equal the source rows, row for row");
}
my ($users) = grep { $_->{table} eq 'app.users' } @{$doc->{tables}};
is($users->{rows}[0]{name}, "Ann \"the first\" \\ \x{e9}", 'quotes, backslash and UTF-8 survive');
my ($orders) = grep { $_->{table} eq 'app.orders' } @{$doc->{tables}};
is(scalar(grep { $_->{_erased} } @{$orders->{rows}}), 5, 'soft-deleted rows are included and marked');
ok(!(grep { exists $_->{privacy_erased_by} } @{$orders->{rows}}), 'the internal column is not exported');

# --- DER through export_chunks: same bytes, the recorded SHA-256, and a flipped byte fails
psql_to_file('adm', "select encode(c, 'hex') from privacy.export_chunks($job) c", "$dir/export.hex");
my $der = pack('H*', join('', split(/\s+/, slurp("$dir/export.hex"))));
is(length($der), $node->safe_psql('exp', "SELECT size_bytes FROM privacy.export_files WHERE job_id = $job"),
	'export_chunks returns size_bytes bytes');
is(sha256_hex($der), $result->{sha256}, 'the DER matches the recorded SHA-256');
open my $fh, '>:raw', "$dir/export.der" or die; print $fh $der; close $fh;
my ($der_code) = decrypt('DER', "$dir/export.der", 'ec', "$dir/export-der.json");
is($der_code, 0, 'the DER decrypts');
is_deeply(decode_json(slurp("$dir/export-der.json")), $doc, 'DER and PEM hold the same document');

my $flipped = $der;
my $at = int(length($flipped) * 0.8);
substr($flipped, $at, 1) = chr(ord(substr($flipped, $at, 1)) ^ 0x01);
open $fh, '>:raw', "$dir/flipped.der" or die; print $fh $flipped; close $fh;
for my $key ('rsa', 'ec') {
	my ($code) = decrypt('DER', "$dir/flipped.der", $key, "$dir/flipped-$key.json");
	isnt($code, 0, "one flipped byte: openssl cms -decrypt exits non-zero ($key)");
}

# --- privileges: only privacy_admin; every download audited with the actor
for my $role ('req', 'aud', 'plain', 'owner') {
	for my $call ("select privacy.download_export($job)", "select count(*) from privacy.export_chunks($job)") {
		my ($ret, $out, $err) = $node->psql('exp', $call, extra_params => ['-U', $role, '-v', 'VERBOSITY=verbose']);
		like($err, qr/ERROR:  42501: permission denied/, "$role is refused: $call");
	}
}
is($node->safe_psql('exp', qq{
SELECT string_agg(actor || ':' || (detail->>'format'), ',' ORDER BY id) FROM privacy.audit_log
 WHERE action = 'export_downloaded' AND job_id = $job}), 'adm:pem,adm:der',
	'each download wrote one export_downloaded row naming the actor');

# --- an interrupted run leaves chunks but no file; the next run starts over and is whole
$node->safe_psql('exp', q{
INSERT INTO app.orders SELECT 'acme', 10000 + g, 3, g, repeat('x', 150) || g, NULL FROM generate_series(1, 20000) g;
});
my $job2 = new_export_job(3);
# A run throttled to 5,000 rows a second, cancelled (pg_cancel_backend) once it has committed
# 10,000 rows: the job stays processing, its chunks stay, no file.
$node->safe_psql('exp', q{SELECT privacy.configure_tenant('acme', rows_per_second => 5000)});
my $runner = $node->background_psql('exp');
$runner->query_until(qr/started/,
	"\\set ON_ERROR_STOP 0\nSET privacy.batch_size = 5000;\n\\echo started\nCALL privacy.run_job($job2);\n");
$node->poll_query_until('exp', "SELECT processed_items >= 10000 FROM privacy.jobs WHERE id = $job2")
  or die 'the export made no progress';
$node->safe_psql('exp', q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'CALL privacy.run_job%'});
$node->poll_query_until('exp', q{SELECT NOT EXISTS (SELECT FROM pg_stat_activity
                                   WHERE query LIKE 'CALL privacy.run_job%' AND state = 'active')})
  or die 'the cancelled run did not stop';
$runner->quit;
$node->safe_psql('exp', q{SELECT privacy.configure_tenant('acme', rows_per_second => 0)});
is($node->safe_psql('exp', "SELECT status || ' ' || last_error FROM privacy.jobs WHERE id = $job2"),
   'processing canceling statement due to user request', 'the cancelled run left the job processing, and said why');
my $partial = $node->safe_psql('exp', qq{
SELECT (SELECT count(*) FROM privacy.export_file_chunks WHERE job_id = $job2) || ',' ||
       (SELECT count(*) FROM privacy.export_files WHERE job_id = $job2)});
like($partial, qr/^[1-9]\d*,0$/, "interrupted run: chunks stored ($partial), no file offered");
my ($ret, $out, $err) = $node->psql('exp', "select privacy.download_export($job2)");
like($err, qr/export of job $job2 is not ready/, 'a half export cannot be downloaded');
my $result2 = run_export($job2, 5000);
is($result2->{rows}, 20001, 'the rerun exported every row once');
psql_to_file('postgres', "select privacy.download_export($job2)", "$dir/export2.pem");
my ($code2, $err2) = decrypt('PEM', "$dir/export2.pem", 'rsa', "$dir/export2.json");
is($code2, 0, 'the restarted export decrypts') or diag($err2);
my ($orders2) = grep { $_->{table} eq 'app.orders' } @{decode_json(slurp("$dir/export2.json"))->{tables}};
is_deeply([map { $_->{order_no} } @{$orders2->{rows}}], [map { 10000 + $_ } 1 .. 20000],
	'the restarted export has each row exactly once, in key order');
ok($result2->{chunks} >= 3, "a multi-chunk file ($result2->{chunks} chunks)");

# --- memory stays flat: peak backend memory of a large export is close to a small one's
$node->safe_psql('exp', q{
INSERT INTO app.users VALUES (5, 'acme', 'huge@example.com', 'Huge', NULL, NULL, NULL);
INSERT INTO app.orders SELECT 'acme', 100000 + g, 5, g, repeat('y', 200) || g, NULL FROM generate_series(1, 250000) g;
ANALYZE app.orders;
});
sub peak_kb_of_export {
	my ($export_job) = @_;
	return $node->safe_psql('exp', qq{
SET privacy.batch_size = 5000;
CALL privacy.run_job($export_job);
SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmHWM:\\s+(\\d+)'))[1]});
}
my $small_peak = (split /\n/, peak_kb_of_export(new_export_job(2)))[-1];
my $large_job = new_export_job(5);
my $large_peak = (split /\n/, peak_kb_of_export($large_job))[-1];
my $large_size = $node->safe_psql('exp', "SELECT size_bytes FROM privacy.export_files WHERE job_id = $large_job");
note("peak RSS: small export $small_peak kB, large export ($large_size bytes) $large_peak kB");
ok($large_size > 50_000_000, 'the large export is over 50 MB');
ok($large_peak - $small_peak < 32 * 1024, 'peak memory of the large export is within 32 MB of the small one');

# --- expiry: the launcher deletes an expired file, audits it, and the error says so (from now on
#     the launcher serves database exp)
$node->append_conf('postgresql.conf', "privacy.database = 'exp'");
$node->restart;
$node->safe_psql('exp', "UPDATE privacy.export_files SET expires_at = now() - interval '1 second' WHERE job_id = $job");
ok($node->poll_query_until('exp', qq{
SELECT NOT EXISTS (SELECT FROM privacy.export_files WHERE job_id = $job)
   AND NOT EXISTS (SELECT FROM privacy.export_file_chunks WHERE job_id = $job)
   AND EXISTS (SELECT FROM privacy.audit_log WHERE action = 'export_expired' AND job_id = $job)}),
	'the launcher deleted the expired file and audited export_expired');
($ret, $out, $err) = $node->psql('exp', "select privacy.download_export($job)",
	extra_params => ['-U', 'adm', '-v', 'VERBOSITY=verbose']);
like($err, qr/ERROR:  55000: export of job $job expired at \d{4}-/, 'downloading an expired export says when it expired');

$node->stop;
done_testing();
