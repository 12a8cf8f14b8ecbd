# Replay after a backup restore (docs/compliance.md, "The erasure ledger and replay after a
# restore"): dump a database, erase and purge subjects and finalize, export the erasure ledger,
# restore the dump into a new database (the subjects' rows are back), replay the ledger: the rows
# are gone again and every other row of every table is exactly as in the original. Subject ids
# are sealed under the signing key: the restored database must get the key again. On the way: a
# ledger that was edited, cut short, unsigned or of another installation is refused and changes
# nothing; a held subject is skipped until its hold is released; a second replay does nothing.
use strict;
use warnings;

use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = privacy_node('replay', database => 'source', create_database => 0, conf => q{
privacy.naptime = 1
});

sub slurp { my ($file) = @_; open my $fh, '<', $file or die "$file: $!"; local $/; my $text = <$fh>; return $text; }
sub spew { my ($file, $text) = @_; open my $fh, '>', $file or die "$file: $!"; print $fh $text; close $fh; }

# Two signing keys: the first one, and the one it is replaced with after the backup.
for my $name ('signing', 'current') {
	my ($openssl_out, $openssl_err);
	IPC::Run::run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
	               '-keyout', "$dir/$name.key", '-out', "$dir/$name.crt", '-days', '30', '-subj', "/CN=$name"],
	              '>', \$openssl_out, '2>', \$openssl_err) or die "openssl: $openssl_err";
}
my $certificate = slurp("$dir/signing.crt");
my $key = slurp("$dir/signing.key");

# Sets the key `name` (signing or current) in `database`.
sub set_key {
	my ($database, $name) = @_;
	my ($crt, $private_key) = (slurp("$dir/$name.crt"), slurp("$dir/$name.key"));
	$node->safe_psql($database, qq{SELECT * FROM privacy.set_signing_key(\$pem\$$crt\$pem\$, \$pem\$$private_key\$pem\$)});
}

$node->safe_psql('postgres', 'CREATE DATABASE source');
$node->safe_psql('source', qq{
CREATE EXTENSION pg_privacy;
CREATE ROLE replay_support LOGIN IN ROLE privacy_requester;
CREATE ROLE replay_dpo LOGIN IN ROLE privacy_admin;
SELECT * FROM privacy.set_signing_key(\$pem\$$certificate\$pem\$, \$pem\$$key\$pem\$);
CREATE TABLE users (tenant text NOT NULL, id int NOT NULL, name text, PRIMARY KEY (tenant, id));
CREATE TABLE orders (tenant text NOT NULL, order_no int NOT NULL, user_id int NOT NULL, note text,
                     PRIMARY KEY (tenant, order_no), FOREIGN KEY (tenant, user_id) REFERENCES users);
CREATE INDEX ON orders (tenant, user_id, order_no);
INSERT INTO users SELECT t, g, t || ' user ' || g FROM unnest(ARRAY['acme', 'globex']) t, generate_series(1, 6) g;
INSERT INTO orders SELECT t, g, 1 + g % 6, 'order ' || g FROM unnest(ARRAY['acme', 'globex']) t, generate_series(1, 60) g;
SELECT privacy.register_table('users', 'id', 'tenant');
SELECT privacy.register_table('orders', 'user_id', 'tenant');
SELECT privacy.configure_tenant('acme', regulation => 'gdpr', recovery_window => '0');
SELECT privacy.configure_tenant('globex', regulation => 'ccpa', recovery_window => '0');
});

# Files a request as support, approves it as the DPO and waits until it is finished: a receipt.
sub erase_and_wait {
	my ($sql) = @_;
	my $job = $node->safe_psql('source', "SET SESSION AUTHORIZATION replay_support; SELECT $sql");
	$node->safe_psql('source', "SET SESSION AUTHORIZATION replay_dpo; SELECT privacy.approve($job)");
	$node->poll_query_until('source', "SELECT EXISTS (SELECT FROM privacy.receipts WHERE job_id = $job)")
	  or die "job $job did not finish";
	return $job;
}

# Every row of the application, as text.
my $snapshot_sql = q{
SELECT (SELECT string_agg(format('%s/%s/%s', tenant, id, name), ',' ORDER BY tenant, id) FROM users) || ' | '
    || (SELECT string_agg(format('%s/%s/%s/%s', tenant, order_no, user_id, note), ',' ORDER BY tenant, order_no) FROM orders)};

# 1. Subject acme/1 is erased before the backup; acme/2 (erase) and globex/3 (purge) after it.
erase_and_wait(q{privacy.request_erase('acme', '1', 'before the backup')});
my $dump = "$dir/source.dump";
$node->command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('source')], 'pg_dump of the source');
my $erase = erase_and_wait(q{privacy.request_erase('acme', '2', 'after the backup')});
set_key('source', 'current');   # the key is replaced: the purge is sealed and the ledger signed with the new one
my $first_key = $node->safe_psql('source', q{SELECT fingerprint FROM privacy.signing_certificates WHERE NOT active});
my $purge = erase_and_wait(q{privacy.request_purge('globex', 'subject', '3', 'after the backup')});
is($node->safe_psql('source', q{SELECT string_agg(seq || ':' || kind || ':' || tenant_id || ':'
                                   || (SELECT c.subject FROM privacy.signing_certificates c WHERE c.fingerprint = l.sealed_by), ',' ORDER BY seq)
                                 FROM privacy.erasure_ledger l}),
	'1:erase:acme:CN=signing,2:erase:acme:CN=signing,3:purge:globex:CN=current',
	'the source\'s ledger has the three erasures, their subjects sealed under the signing key of the time');
my $ledger = $node->safe_psql('source', 'SELECT privacy.erasure_ledger_export()') . "\n";
my @lines = split /\n/, $ledger;
unlike($ledger, qr/"target": "[123]"/, 'the exported ledger names no subject in clear');
is(scalar(@lines), 4, 'the exported ledger: three entries and a head');
like($lines[-1], qr/^\{"head": \{"format": "pg_privacy.erasure_ledger\/1", .*"entries": 3, .*"signature": "[A-Za-z0-9+\/=]+"\}$/,
	'the head names three entries and is signed');
my $source_rows = $node->safe_psql('source', $snapshot_sql);
my $subjects_rows = q{SELECT (SELECT count(*) FROM users WHERE (tenant, id) IN (('acme', 1), ('acme', 2), ('globex', 3)))
                           + (SELECT count(*) FROM orders WHERE (tenant, user_id) IN (('acme', 1), ('acme', 2), ('globex', 3)))};
is($node->safe_psql('source', $subjects_rows), '0', 'the source holds none of the subjects\' rows');

# 2. Restore the dump: acme/2 and globex/3 are back, acme/1 is not.
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(['pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump], 'pg_restore into a new database');
is($node->safe_psql('restored', q{SELECT string_agg(tenant || '/' || id, ',' ORDER BY tenant, id) FROM users
                                  WHERE (tenant, id) IN (('acme', 1), ('acme', 2), ('globex', 3))}),
	'acme/2,globex/3', 'the restored database holds the subjects erased after the backup');
is($node->safe_psql('restored', 'SELECT count(*) FROM privacy.signing_key'), '0', 'the signing key is not in the dump');

# Runs replay_erasures on `text` in the restored database; returns (stdout, stderr).
sub replay {
	my ($text, $database, $options) = @_;
	spew("$dir/ledger.jsonl", $text);
	my ($ret, $stdout, $stderr) = $node->psql($database // 'restored',
		"\\set ledger `cat $dir/ledger.jsonl`\nSELECT seq, outcome, kind, tenant_id, original_job FROM privacy.replay_erasures(:'ledger'"
		  . ($options // '') . ') ORDER BY seq');
	return ($stdout, $stderr);
}
my $jobs_before = $node->safe_psql('restored', 'SELECT count(*) FROM privacy.jobs');
set_key('restored', 'current');   # after a restore, the current key is set again (docs/compliance.md)

# 3. A ledger that is not intact is refused, and nothing happens.
my @edited = @lines;
$edited[1] =~ s/"regulation": "gdpr"/"regulation": "ccpa"/;
my ($stdout, $stderr) = replay(join("\n", @edited) . "\n");
like($stderr, qr/erasure ledger line 2 does not match its hash: the entry was changed/, 'an edited entry is refused');
($stdout, $stderr) = replay(join("\n", @lines[0, 1, 3]) . "\n");
like($stderr, qr/erasure ledger does not end where its head says: the head names 3 entries, the file has 2/,
	'a ledger cut short before its head is refused');
($stdout, $stderr) = replay(join("\n", @lines[0 .. 2]) . "\n");
like($stderr, qr/erasure ledger has no head line at its end: it was cut short/, 'a ledger without its head is refused');
($stdout, $stderr) = replay(join("\n", @lines[1 .. 3]) . "\n");
like($stderr, qr/erasure ledger line 1 has seq 2 where 1 was expected/, 'a ledger without its first entry is refused');
my @forged = @lines;
$forged[3] =~ s/"at": "[^"]+"/"at": "2099-01-01T00:00:00.000000Z"/;
($stdout, $stderr) = replay(join("\n", @forged) . "\n");
like($stderr, qr/erasure ledger head signature covers another head/, 'a changed head is refused');
my @unsigned = @lines;
$unsigned[3] =~ s/"signature": "[^"]+"/"signature": null/;
($stdout, $stderr) = replay(join("\n", @unsigned) . "\n");
like($stderr, qr/erasure ledger is not signed/, 'an unsigned ledger is refused');
($stdout, $stderr) = replay(join("\n", $lines[0], '{"seq": 2, "kind": ', @lines[2, 3]) . "\n");
like($stderr, qr/erasure ledger line 2 is not a ledger line/, 'a line that is not JSON is named');
is($node->safe_psql('restored', 'SELECT count(*) FROM privacy.jobs'), $jobs_before, 'the refusals created no job');

# Entry 2 was sealed with the first key, which the restored database does not hold (pg_dump
# leaves keys out): it names the key, and nothing is replayed until that key is set too.
($stdout, $stderr) = replay($ledger);
like($stderr, qr/erasure ledger line 2 names a subject sealed with signing key $first_key, which this database does not hold/,
	'without the key that sealed a subject, the ledger is refused naming that key');
is($node->safe_psql('restored', 'SELECT count(*) FROM privacy.jobs'), $jobs_before, 'and nothing was replayed');
set_key('restored', 'signing');
set_key('restored', 'current');   # the current key signs again; the first one stays to open its entries
my @swapped = @lines;
my ($sealed_3) = $lines[2] =~ /"target": ("[^"]+")/;
$swapped[1] =~ s/"target": "[^"]+"/"target": $sealed_3/;
($stdout, $stderr) = replay(join("\n", @swapped) . "\n", undef, ', allow_unsigned => true');
like($stderr, qr/erasure ledger line 2 does not match its hash/, 'a sealed subject moved to another entry is refused');
is($node->safe_psql('restored', q{BEGIN;
	SELECT count(*) FROM privacy.replay_erasures($ledger$} . join("\n", @unsigned) . q{$ledger$, allow_unsigned => true);
	ROLLBACK;}), '2', 'allow_unsigned => true accepts an unsigned ledger');

# 4. A ledger of another installation is refused.
$node->safe_psql('postgres', 'CREATE DATABASE stranger');
$node->safe_psql('stranger', 'CREATE EXTENSION pg_privacy');
set_key('stranger', 'current');
($stdout, $stderr) = replay($ledger, 'stranger');
like($stderr, qr/erasure ledger belongs to installation [0-9a-f-]+, and this database is installation/,
	'a ledger of another installation is refused, even signed with the same key');

# 5. The replay: the subject under a legal hold is skipped, the other one replayed.
my $hold = $node->safe_psql('restored', q{SELECT privacy.place_hold('subject', '2', 'acme', 'litigation L-1')});
($stdout, $stderr) = replay($ledger);
is($stdout, "2|held|erase|acme|$erase\n3|replayed|purge|globex|$purge", 'entry 2 is held, entry 3 replayed');
like($stderr, qr/NOTICE:  3 ledger entries: 1 known here, 1 replayed, 1 held/, 'entry 1 was known: it is older than the backup');
$node->safe_psql('restored', "SELECT privacy.release_hold($hold, 'settled')");
($stdout, $stderr) = replay($ledger);
is($stdout, "2|replayed|erase|acme|$erase", 'after the hold is released, entry 2 is replayed');
is($node->safe_psql('restored', q{SELECT string_agg(kind || ':' || status || ':' || requires_approval, ',' ORDER BY id)
                                  FROM privacy.jobs WHERE replay_of IS NOT NULL}),
	'purge:pending:true,erase:pending:true', 'each replay is a new request, waiting for approval like any other');
my ($approve_ret, $approve_out, $approve_err) = $node->psql('restored',
	q{SELECT privacy.approve(min(id), 'replay checked') FROM privacy.jobs WHERE replay_of IS NOT NULL});
like($approve_err, qr/was requested by postgres, who may not approve it/, 'the admin who replayed cannot approve the replay');
for my $job (split /\n/, $node->safe_psql('restored', 'SELECT id FROM privacy.jobs WHERE replay_of IS NOT NULL ORDER BY id')) {
	$node->safe_psql('restored', "SET SESSION AUTHORIZATION replay_dpo; SELECT privacy.approve($job, 'matches the original job')");
}
is($node->safe_psql('restored', q{SELECT string_agg(detail->>'ledger_seq' || ':' || (detail->>'original_job'), ',' ORDER BY id)
                                  FROM privacy.audit_log WHERE action = 'erasure_replayed'}),
	"3:$purge,2:$erase", 'audited as erasure_replayed, naming the entry and the original job');

# 6. The replay jobs run (the restored database is not privacy.database: CALL privacy.run_job).
for my $job (split /\n/, $node->safe_psql('restored', 'SELECT id FROM privacy.jobs WHERE replay_of IS NOT NULL ORDER BY id')) {
	$node->safe_psql('restored', "CALL privacy.run_job($job)");
}
is($node->safe_psql('restored', q{SELECT string_agg(status || ':' || (finalized_at IS NOT NULL OR kind = 'purge'), ',' ORDER BY id)
                                  FROM privacy.jobs WHERE replay_of IS NOT NULL}),
	'completed:true,completed:true', 'the replayed erasures are finalized at once (window zero)');
is($node->safe_psql('restored', $snapshot_sql), $source_rows,
	'every row of every table is as in the original: the subjects are gone again, nothing else changed');

# 7. Replaying again does nothing; the restored ledger records the replays.
($stdout, $stderr) = replay($ledger);
is($stdout, '', 'a second replay applies nothing');
like($stderr, qr/3 ledger entries: 3 known here, 0 replayed, 0 held/, 'every entry is known now');
is($node->safe_psql('restored', q{SELECT string_agg(seq || ':' || kind || ':' || (replay_of IS NOT NULL) || ':' || (sealed_by IS NOT NULL), ',' ORDER BY seq)
                                  FROM privacy.erasure_ledger}),
	'1:erase:false:true,2:purge:true:true,3:erase:true:true', 'the restored ledger records the replayed erasures, sealed');
is($node->safe_psql('restored', q{SELECT count(*) FROM privacy.receipts r JOIN privacy.jobs j ON j.id = r.job_id
                                  WHERE j.replay_of IS NOT NULL AND r.signature IS NOT NULL}),
	'2', 'the replays have signed receipts');

$node->stop;
done_testing();
