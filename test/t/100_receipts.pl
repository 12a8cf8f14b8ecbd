# Signed receipts end to end (docs/compliance.md, "Receipts"): requests run by the background
# worker get their receipt in the transaction that finishes them (an export or purge completed, an
# erase finalized); the receipt verifies with the stock `openssl cms -verify` and the certificate
# alone; a receipt changed by one byte, or checked against another certificate, is rejected;
# scripts/verify-receipt.sh checks it against an audit export; a receipt issued while no key was
# set waits, and set_signing_key signs it.
use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use IPC::Run;
use JSON::PP;
use MIME::Base64;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = privacy_node('receipts', conf => q{
privacy.naptime = 1
});

sub slurp { my ($file) = @_; open my $fh, '<', $file or die "$file: $!"; local $/; my $text = <$fh>; return $text; }
sub spew { my ($file, $text) = @_; open my $fh, '>', $file or die "$file: $!"; print $fh $text; close $fh; }

# Runs a command; returns its exit status and what it printed.
sub run_tool {
	my @command = @_;
	IPC::Run::run(\@command, '>', \my $out, '2>', \my $err);
	return ($? >> 8, ($out // '') . ($err // ''));
}

# Keys made with the openssl command line as docs/compliance.md and docs/exports.md say.
for my $key (['signing', 'rsa:3072', 'keyUsage=digitalSignature'], ['other', 'rsa:2048', 'keyUsage=digitalSignature'],
             ['dpo', 'rsa:2048', 'keyUsage=keyEncipherment']) {
	my ($name, $type, $usage) = @$key;
	my ($status, $output) = run_tool('openssl', 'req', '-x509', '-newkey', $type, '-nodes', '-keyout', "$dir/$name.key",
		'-out', "$dir/$name.crt", '-days', '30', '-subj', "/CN=$name", '-addext', $usage);
	is($status, 0, "openssl made the $name key") or diag($output);
}
my $signing_crt = slurp("$dir/signing.crt");
my $signing_key = slurp("$dir/signing.key");
my $dpo_crt = slurp("$dir/dpo.crt");

$node->safe_psql('postgres', qq{
CREATE EXTENSION pg_privacy;
CREATE ROLE rec_support LOGIN IN ROLE privacy_requester;
CREATE ROLE rec_dpo LOGIN IN ROLE privacy_admin;
CREATE ROLE rec_auditor LOGIN IN ROLE privacy_auditor;
SELECT privacy.add_export_recipient('dpo', \$pem\$$dpo_crt\$pem\$);
CREATE TABLE users (tenant text NOT NULL, id int NOT NULL, email text, PRIMARY KEY (tenant, id));
CREATE TABLE orders (tenant text NOT NULL, order_no int NOT NULL, user_id int NOT NULL, PRIMARY KEY (tenant, order_no));
CREATE INDEX ON orders (tenant, user_id, order_no);
INSERT INTO users SELECT 'acme', g, 'user' || g || '\@example.com' FROM generate_series(1, 5) g;
INSERT INTO orders SELECT 'acme', g, 1 + g % 5 FROM generate_series(1, 50) g;
SELECT privacy.register_table('users', 'id', 'tenant');
SELECT privacy.register_table('orders', 'user_id', 'tenant');
SELECT privacy.configure_tenant('acme', regulation => 'gdpr', recovery_window => '0');
});
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_privacy launcher'})
  or die 'launcher did not start';

sub wait_for { my ($sql, $what) = @_; $node->poll_query_until('postgres', $sql) or die "timed out waiting for $what"; }

# 1. Before any key is set: an export completes, its receipt is issued unsigned and waits.
my $export = $node->safe_psql('postgres', q{SET SESSION AUTHORIZATION rec_support;
	SELECT privacy.request_export('acme', '3', 'Art. 15 request #1')});
wait_for("SELECT EXISTS (SELECT FROM privacy.receipts WHERE job_id = $export)", 'the export receipt');
is($node->safe_psql('postgres', "SELECT signature IS NULL FROM privacy.receipts WHERE job_id = $export"), 't',
	'a receipt issued while no key is set is stored unsigned');
my ($ret, $stdout, $stderr) = $node->psql('postgres', "SET SESSION AUTHORIZATION rec_auditor; SELECT privacy.receipt($export)");
like($stderr, qr/the receipt of job $export is not signed: no signing key was set when it was issued/,
	'privacy.receipt says it waits for a key');

# 2. The DPO sets the key: the waiting receipt is signed.
my $signed = $node->safe_psql('postgres', qq{SET SESSION AUTHORIZATION rec_dpo;
	SELECT receipts_signed FROM privacy.set_signing_key(\$pem\$$signing_crt\$pem\$, \$pem\$$signing_key\$pem\$)});
is($signed, '1', 'set_signing_key signs the receipt that waited');
is($node->safe_psql('postgres', q{SELECT actor || ' ' || (detail->>'fingerprint' ~ '^[0-9a-f]{64}$')
                                    || ' ' || (detail::text LIKE '%PRIVATE%') FROM privacy.audit_log
                                   WHERE action = 'signing_key_set'}),
	'rec_dpo true false', 'setting the key is audited with its fingerprint, never the key');

# 3. An erase, approved by someone else, finalized at once (window 0): its receipt.
my $erase = $node->safe_psql('postgres', q{SET SESSION AUTHORIZATION rec_support;
	SELECT privacy.request_erase('acme', '2', 'Art. 17 request #2')});
$node->safe_psql('postgres', "SET SESSION AUTHORIZATION rec_dpo; SELECT privacy.approve($erase, 'identity checked')");
wait_for("SELECT EXISTS (SELECT FROM privacy.receipts WHERE job_id = $erase)", 'the erase receipt');
is($node->safe_psql('postgres', "SELECT finalized_at IS NOT NULL FROM privacy.jobs WHERE id = $erase"), 't',
	'the erase receipt comes with the finalization');

# Fetches a receipt as the auditor would, verifies it with stock openssl and returns the document.
sub fetch_and_verify {
	my ($job) = @_;
	my $pem = $node->safe_psql('postgres', "SET SESSION AUTHORIZATION rec_auditor; SELECT privacy.receipt($job)");
	spew("$dir/receipt-$job.pem", "$pem\n");
	my ($status, $output) = run_tool('openssl', 'cms', '-verify', '-inform', 'PEM', '-in', "$dir/receipt-$job.pem",
		'-CAfile', "$dir/signing.crt", '-out', "$dir/receipt-$job.json");
	is($status, 0, "receipt of job $job verifies with openssl cms -verify -CAfile signing.crt") or diag($output);
	like($output, qr/CMS Verification successful/, 'openssl says so');
	($status, $output) = run_tool('openssl', 'cms', '-verify', '-inform', 'PEM', '-in', "$dir/receipt-$job.pem",
		'-certfile', "$dir/signing.crt", '-nointern', '-noverify', '-out', '/dev/null');
	is($status, 0, 'and with -certfile signing.crt -nointern -noverify') or diag($output);
	my $text = slurp("$dir/receipt-$job.json");
	is(sha256_hex($text), $node->safe_psql('postgres', "SELECT sha256 FROM privacy.receipts WHERE job_id = $job"),
		'the signed content is the stored document, byte for byte');
	return JSON::PP->new->decode($text);
}

my $receipt = fetch_and_verify($erase);
is($receipt->{format}, 'pg_privacy.receipt/1', 'receipt format');
is_deeply([@$receipt{qw(job kind tenant target_type regulation status)}], [$erase, 'erase', 'acme', 'subject', 'gdpr', 'completed'],
	'job, kind, tenant, target type, regulation and status');
is($receipt->{subject}{sha256}, sha256_hex($receipt->{subject}{salt} . '2'), 'the subject is its salted SHA-256');
unlike(slurp("$dir/receipt-$erase.json"), qr/user2\@|"2"/, 'the subject id itself is not in the receipt');
ok(defined $receipt->{finalized_at} && defined $receipt->{completed_at} && defined $receipt->{decided_at},
	'requested, decided, completed and finalized times');
is($receipt->{answered_on_time}, JSON::PP::true, 'answered on time');
is_deeply([map { "$_->{table}=$_->{rows}" } @{ $receipt->{tables} }], ['public.orders=10', 'public.users=1'],
	'rows per table');
is($receipt->{installation}, $node->safe_psql('postgres', 'SELECT id FROM privacy.installation'), 'the installation');
my $audit_rows = $node->safe_psql('postgres',
	"SELECT string_agg(id || ':' || hash, ',' ORDER BY id) FROM privacy.audit_log WHERE job_id = $erase AND action <> 'receipt_issued'");
is(join(',', map { "$_->{id}:$_->{hash}" } @{ $receipt->{audit}{rows} }), $audit_rows,
	'every audit row of the job, with its hash');
is($receipt->{audit}{head}{id}, $receipt->{audit}{rows}[-1]{id}, 'the chain head when it was issued: the finalized row');
is($node->safe_psql('postgres', "SELECT hash FROM privacy.audit_log WHERE id = $receipt->{audit}{head}{id}"),
	$receipt->{audit}{head}{hash}, 'with its hash');
is($node->safe_psql('postgres', "SELECT seq || ':' || hash FROM privacy.erasure_ledger WHERE job_id = $erase"),
	"$receipt->{erasure_ledger}{seq}:$receipt->{erasure_ledger}{hash}", 'the erasure ledger entry');
is($node->safe_psql('postgres', "SELECT detail->>'sha256' FROM privacy.audit_log WHERE job_id = $erase AND action = 'receipt_issued'"),
	sha256_hex(slurp("$dir/receipt-$erase.json")), 'the issue is audited with the document\'s SHA-256');

my $export_receipt = fetch_and_verify($export);
is($export_receipt->{export}{sha256}, $node->safe_psql('postgres', "SELECT sha256 FROM privacy.export_files WHERE job_id = $export"),
	'an export receipt names the encrypted file');
is($export_receipt->{erasure_ledger}, undef, 'an export is no erasure');

# 4. A purge completes: its receipt and its ledger entry.
my $purge = $node->safe_psql('postgres', q{SET SESSION AUTHORIZATION rec_support;
	SELECT privacy.request_purge('acme', 'subject', '4', 'CCPA 1798.105 #3', regulation => 'ccpa')});
$node->safe_psql('postgres', "SET SESSION AUTHORIZATION rec_dpo; SELECT privacy.approve($purge)");
wait_for("SELECT EXISTS (SELECT FROM privacy.receipts WHERE job_id = $purge)", 'the purge receipt');
my $purge_receipt = fetch_and_verify($purge);
is_deeply([@$purge_receipt{qw(kind regulation)}, $purge_receipt->{erasure_ledger}{seq}], ['purge', 'ccpa', 2],
	'a purge receipt, with its ledger entry');

# 5. Tampering: one byte of the signed content, or another signer, is rejected.
my $pem = slurp("$dir/receipt-$erase.pem");
my $der = decode_base64(join('', grep { !/-----/ } split /\n/, $pem));
my $at = index($der, '"tenant": "acme"');
ok($at > 0, 'the receipt carries its document');
substr($der, $at + 12, 1) = 'A';
spew("$dir/tampered.pem", "-----BEGIN CMS-----\n" . encode_base64($der) . "-----END CMS-----\n");
my ($status, $output) = run_tool('openssl', 'cms', '-verify', '-inform', 'PEM', '-in', "$dir/tampered.pem",
	'-CAfile', "$dir/signing.crt", '-out', '/dev/null');
isnt($status, 0, 'a receipt changed by one byte does not verify');
like($output, qr/Verification failure/, 'openssl says why');
($status, $output) = run_tool('openssl', 'cms', '-verify', '-inform', 'PEM', '-in', "$dir/receipt-$erase.pem",
	'-CAfile', "$dir/other.crt", '-out', '/dev/null');
isnt($status, 0, 'a receipt checked against another certificate does not verify');

# 6. Against an audit export, with the documented script.
my $csv = "$dir/audit.csv";
{
	local $ENV{PGTZ} = 'UTC';
	$node->command_ok(['psql', '-X', '-d', $node->connstr('postgres'), '-c',
		"\\copy (SELECT * FROM privacy.audit_export('2000-01-01', now() + interval '1 hour')) TO '$csv' CSV HEADER"],
		'audit export to CSV');
}
($status, $output) = run_tool('scripts/verify-receipt.sh', "$dir/receipt-$erase.pem", "$dir/signing.crt", $csv);
is($status, 0, 'verify-receipt.sh accepts the receipt with the audit export') or diag($output);
like($output, qr/^OK: receipt of job $erase \(erase, tenant acme\): \d+ audit rows and the chain head/m, 'and says so');
($status, $output) = run_tool('scripts/verify-receipt.sh', "$dir/tampered.pem", "$dir/signing.crt", $csv);
is($status, 1, 'verify-receipt.sh rejects a tampered receipt');
like($output, qr/BAD: the receipt's signature does not verify/, 'naming the signature');
my $broken = join('', grep { !/^$receipt->{audit}{rows}[1]{id},/ } split /^/, slurp($csv));
spew("$dir/broken.csv", $broken);
($status, $output) = run_tool('scripts/verify-receipt.sh', "$dir/receipt-$erase.pem", "$dir/signing.crt", "$dir/broken.csv");
is($status, 1, 'an audit export with a row taken out is rejected');
like($output, qr/BAD: the audit export does not verify:\n.*BAD: row \d+: prev_hash does not link/s, 'naming the broken link');
{
	local $ENV{PGTZ} = 'UTC';
	$node->command_ok(['psql', '-X', '-d', $node->connstr('postgres'), '-c',
		"\\copy (SELECT * FROM privacy.audit_export((SELECT at FROM privacy.audit_log WHERE action = 'receipt_issued'"
		  . " AND job_id = $erase), now() + interval '1 hour')) TO '$dir/later.csv' CSV HEADER"],
		'audit export of a later period');
}
($status, $output) = run_tool('scripts/verify-receipt.sh', "$dir/receipt-$erase.pem", "$dir/signing.crt", "$dir/later.csv");
is($status, 1, 'an audit export that does not cover the receipt is rejected');
like($output, qr/BAD: audit row $receipt->{audit}{rows}[0]{id} named by the receipt is not in the export/,
	'naming the row it lacks');

# 7. Receipts are append-only, for superusers too.
($ret, $stdout, $stderr) = $node->psql('postgres', "UPDATE privacy.receipts SET document = '{}' WHERE job_id = $erase");
like($stderr, qr/UPDATE on privacy.receipts is not allowed: compliance evidence is append-only/, 'receipts cannot be changed');
($ret, $stdout, $stderr) = $node->psql('postgres', "DELETE FROM privacy.receipts WHERE job_id = $erase");
like($stderr, qr/DELETE on privacy.receipts is not allowed/, 'nor deleted');

$node->stop;
done_testing();
