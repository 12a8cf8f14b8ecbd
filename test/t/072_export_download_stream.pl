# Downloads stream (docs/exports.md, "Download"): privacy.download_export returns the PEM file
# one stored chunk per row, so that
#   psql -Atc "select privacy.download_export(N)" > export.pem
# writes a file `openssl cms -decrypt` reads, and the downloading backend's memory stays the same
# for a 1,000-row export and a ~30 MB one. Also: the FROM form gives the same bytes, each call is
# audited once however many rows it returns, and a download reads one consistent file even if
# the file is deleted while it runs.
use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use IPC::Run;
use MIME::Base64 qw(decode_base64);
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir;

# Small shared_buffers: the peak memory compared below (VmHWM) also counts the shared buffers a
# backend touched, which a bigger download touches more of; 16 MB bounds that part.
my $node = privacy_node('export_stream', conf => q{
privacy.naptime = 60
privacy.default_rows_per_second = 0
shared_buffers = 16MB
});

my $ok = IPC::Run::run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$dir/admin.key",
                        '-out', "$dir/admin.crt", '-days', '30', '-subj', '/CN=export admin'],
                       '>', \my $out, '2>', \my $err);
ok($ok, 'openssl made a key and certificate') or diag($err);

sub slurp { my ($file) = @_; open my $fh, '<:raw', $file or die "$file: $!"; local $/; my $text = <$fh>; return $text; }
sub spew { my ($file, $text) = @_; open my $fh, '>:raw', $file or die "$file: $!"; print $fh $text; close $fh; }

# Subject 'big': 20,000 rows of 1.5 kB (an export of about 30 MB); subject 'small': 1,000 short rows.
my $certificate = slurp("$dir/admin.crt");
$node->safe_psql('postgres', qq{
CREATE EXTENSION pg_privacy;
SELECT privacy.add_export_recipient('admin', \$pem\$$certificate\$pem\$);
CREATE TABLE accounts (id bigint PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL, note text);
CREATE INDEX ON accounts (tenant, subject, id);
INSERT INTO accounts SELECT g, 'acme', 'big', repeat(md5(g::text), 48) FROM generate_series(1, 20000) g;
INSERT INTO accounts SELECT g, 'acme', 'small', 'note ' || g FROM generate_series(20001, 21000) g;
SELECT privacy.register_table('accounts', 'subject', 'tenant');
});
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_privacy launcher'})
  or die 'launcher did not start';

my %job;
for my $subject ('small', 'big') {
	$job{$subject} = $node->safe_psql('postgres', "SELECT privacy.request_export('acme', '$subject', 'TAP stream')");
	$node->poll_query_until('postgres', "SELECT status = 'completed' FROM privacy.jobs WHERE id = $job{$subject}")
	  or die "export of $subject did not complete";
}
my ($size, $sha256, $chunks) = split /\|/, $node->safe_psql('postgres',
	"SELECT size_bytes, sha256, chunks FROM privacy.export_files WHERE job_id = $job{big}");
ok($size > 25_000_000, "the big export is tens of MB ($size bytes, $chunks chunks)");

# Runs `query` in a psql -At session of its own and writes what it prints to `file`. The same
# session then reads its backend's peak memory (VmHWM, kB), which is returned.
my $peak_query = q{SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmHWM:\s+(\d+)'))[1]};
sub download {
	my ($query, $file) = @_;
	my $ok = IPC::Run::run(['psql', '-X', '-At', '-d', $node->connstr('postgres'), '-c', $query, '-c', $peak_query], '>', "$file.out", '2>', \my $err);
	ok($ok, "psql -Atc \"$query\"") or diag($err);
	my $output = slurp("$file.out");
	$output =~ s/(\d+)\n\z// or die "no peak memory after the download in $file.out";
	my $peak_kb = $1;
	spew($file, $output);
	return $peak_kb;
}

# The DER inside a PEM file, checked for the layout openssl expects.
sub der_of_pem {
	my ($pem) = @_;
	ok($pem =~ /\A-----BEGIN CMS-----\n(?:[A-Za-z0-9+\/]{64}\n)*[A-Za-z0-9+\/=]{0,64}\n-----END CMS-----\n\z/,
		'a PEM file: BEGIN line, 64-column base64 lines, END line, nothing else');
	return decode_base64(join('', grep { !/^-----/ } split /\n/, $pem));
}

sub decrypts {
	my ($file, $json) = @_;
	my $ok = IPC::Run::run(['openssl', 'cms', '-decrypt', '-inform', 'PEM', '-in', $file, '-inkey', "$dir/admin.key",
	                        '-recip', "$dir/admin.crt", '-out', $json], '>', \my $o, '2>', \my $e);
	ok($ok, "openssl cms -decrypt reads $file") or diag($e);
}

my $downloads_before = $node->safe_psql('postgres', "SELECT count(*) FROM privacy.audit_log WHERE action = 'export_downloaded'");

# --- the big export, as docs/exports.md says to download it
my $big_peak = download("select privacy.download_export($job{big})", "$dir/big.pem");
my $big_pem = slurp("$dir/big.pem");
my $der = der_of_pem($big_pem);
is(length($der), $size, 'the PEM holds size_bytes bytes');
is(sha256_hex($der), $sha256, 'the PEM holds the recorded SHA-256');
decrypts("$dir/big.pem", "$dir/big.json");
my $rows = () = slurp("$dir/big.json") =~ /"_erased"/g;
is($rows, 20000, 'the decrypted document has every row of the subject');
is($node->safe_psql('postgres', "SELECT count(*) FROM privacy.download_export($job{big})"), $chunks,
	'one row per stored chunk');

# --- the same file through the FROM form and through psql's cursor (FETCH_COUNT)
my $from_peak = download("select * from privacy.download_export($job{big})", "$dir/from.pem");
ok(slurp("$dir/from.pem") eq $big_pem, 'SELECT * FROM privacy.download_export(...) gives the same file');
$ok = IPC::Run::run(['psql', '-X', '-At', '-v', 'FETCH_COUNT=1', '-d', $node->connstr('postgres'), '-c', "select privacy.download_export($job{big})"], '>', "$dir/fetch.pem", '2>', \$err);
ok($ok && slurp("$dir/fetch.pem") eq $big_pem, 'psql -v FETCH_COUNT=1 gives the same file') or diag($err);

# --- the small export
my $small_peak = download("select privacy.download_export($job{small})", "$dir/small.pem");
decrypts("$dir/small.pem", "$dir/small.json");

# --- every call audited once, whatever the number of rows it returned
is($node->safe_psql('postgres', "SELECT count(*) FROM privacy.audit_log WHERE action = 'export_downloaded'")
	- $downloads_before, 5, 'five downloads, five export_downloaded rows');

# --- memory: the downloading backend's peak is flat. Streaming holds about one chunk (1 MB) in
# a few forms; the big download also touches up to all 16 MB of shared buffers, which VmHWM
# counts. The whole file in memory would be twice its PEM size, about 80 MB here.
note("downloading backend peak (VmHWM): small export $small_peak kB, big export $big_peak kB, FROM form $from_peak kB");
cmp_ok($big_peak - $small_peak, '<', 32 * 1024,
	'peak memory downloading the big export is within 32 MB of the small one');
cmp_ok($from_peak - $small_peak, '<', 32 * 1024, 'the same for the FROM form');

# --- one consistent file: chunks deleted (as when the file expires) while a download is under
# way are still read, in the snapshot of the statement that started it. (In the select list a
# value-per-call function runs as the cursor fetches; in FROM it would run to the end at once.)
for my $function ('download_export', 'export_chunks') {
	my $read = $function eq 'download_export' ? "privacy.$function($job{big})" : "encode(privacy.$function($job{big}), 'hex')";
	my ($ret, $fetched, $err) = $node->psql('postgres', qq{
BEGIN;
DECLARE download NO SCROLL CURSOR FOR SELECT $read;
FETCH 2 FROM download;
DELETE FROM privacy.export_file_chunks WHERE job_id = $job{big};
DELETE FROM privacy.export_files WHERE job_id = $job{big};
FETCH ALL FROM download;
ROLLBACK;
});
	is($ret, 0, "$function: no error when the file is deleted mid-download") or diag($err);
	if ($function eq 'download_export') {
		ok("$fetched\n" eq $big_pem, 'download_export: the file deleted mid-download is read whole');
	} else {
		is(sha256_hex(pack('H*', join('', split /\n/, $fetched))), $sha256, 'export_chunks: the file deleted mid-download is read whole');
	}
}

$node->stop;
done_testing();
