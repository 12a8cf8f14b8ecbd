-- Export recipients: certificate validation and the add/remove life cycle (docs/exports.md).
-- The certificates below are fixed test fixtures (self-signed EC / Ed25519 / RSA, no private
-- keys), so fingerprints and dates in the expected output are stable. The weak ones (issue 13)
-- were made with the openssl command of docs/exports.md and -newkey rsa:1024, -pkeyopt
-- ec_paramgen_curve:secp224r1, or -addext keyUsage=digitalSignature.
-- Every suite starts from a fresh extension: job ids and chains do not depend on test order.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pg_privacy CASCADE;
CREATE EXTENSION pg_privacy;
RESET client_min_messages;
CREATE TEMP TABLE recipient_certs (label text PRIMARY KEY, pem text NOT NULL);
INSERT INTO recipient_certs VALUES
('expired', $pem$-----BEGIN CERTIFICATE-----
MIIBIzCBy6ADAgECAgEBMAoGCCqGSM49BAMCMBwxGjAYBgNVBAMMEWV4cGlyZWQg
cmVjaXBpZW50MB4XDTAwMDEwMTAwMDAwMFoXDTAxMDEwMTAwMDAwMFowHDEaMBgG
A1UEAwwRZXhwaXJlZCByZWNpcGllbnQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AAQOzCekfIv6pUX5oLss/jM8TuG+9H828mGGZx5Ys0LSrCeVjbEIuRA0UTuVFjXG
HM++CA9Ebb7RMMHd4C1+lKcfMAoGCCqGSM49BAMCA0cAMEQCIFBrBg2jqEkEnAOJ
HLQh+9Zm4G+jyatNUCgjsWYpcFYlAiB5YvPPJq68WBHCv28AZcvB8N0K2lbsJ4xX
yf+A1GiDig==
-----END CERTIFICATE-----
$pem$),
('future', $pem$-----BEGIN CERTIFICATE-----
MIIBJTCBzaADAgECAgEBMAoGCCqGSM49BAMCMBsxGTAXBgNVBAMMEGZ1dHVyZSBy
ZWNpcGllbnQwIhgPMjEwMDAxMDEwMDAwMDBaGA8yMjAwMDEwMTAwMDAwMFowGzEZ
MBcGA1UEAwwQZnV0dXJlIHJlY2lwaWVudDBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABA7MJ6R8i/qlRfmguyz+MzxO4b70fzbyYYZnHlizQtKsJ5WNsQi5EDRRO5UW
NcYcz74ID0RtvtEwwd3gLX6Upx8wCgYIKoZIzj0EAwIDRwAwRAIgIa/+iOZeAmn9
LGu7UADZf4i5Yd4n2QQ54taU4VRhqwoCIE9EdmtD9UaUJg6HZOFZsMh2xZPofZfL
WQA9HRfFEJOw
-----END CERTIFICATE-----
$pem$),
('ed', $pem$-----BEGIN CERTIFICATE-----
MIHmMIGZoAMCAQICAQEwBQYDK2VwMBwxGjAYBgNVBAMMEWVkMjU1MTkgcmVjaXBp
ZW50MCAXDTAwMDEwMTAwMDAwMFoYDzIxMDAwMTAxMDAwMDAwWjAcMRowGAYDVQQD
DBFlZDI1NTE5IHJlY2lwaWVudDAqMAUGAytlcAMhAFMBGIEMzbfNgruurTCf1m1c
BDAlCopIDZmPOIRjYnQnMAUGAytlcANBAEkOeCXnVuKzSzuQS9qgRaIT9b+CCaRn
+X/zz3lrCPdHXYxHtFxomuzsN/BzfR1kfV/2H570Uq42fMiIPqkAMQ4=
-----END CERTIFICATE-----
$pem$),
('valid', $pem$-----BEGIN CERTIFICATE-----
MIIBJzCBzaADAgECAgEBMAoGCCqGSM49BAMCMBwxGjAYBgNVBAMMEXJlZ3Jlc3Mg
cmVjaXBpZW50MCAXDTAwMDEwMTAwMDAwMFoYDzIxMDAwMTAxMDAwMDAwWjAcMRow
GAYDVQQDDBFyZWdyZXNzIHJlY2lwaWVudDBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABA7MJ6R8i/qlRfmguyz+MzxO4b70fzbyYYZnHlizQtKsJ5WNsQi5EDRRO5UW
NcYcz74ID0RtvtEwwd3gLX6Upx8wCgYIKoZIzj0EAwIDSQAwRgIhAOzH1sfJPxEG
L9csEKGrq70fSaPybBDEFi2PSlO7iJa/AiEAgVMuDPRi3lm9p4QB2WAVFJbEHAnI
MaWJF82UVWZUf1k=
-----END CERTIFICATE-----
$pem$),
('valid2', $pem$-----BEGIN CERTIFICATE-----
MIIBJDCBy6ADAgECAgEBMAoGCCqGSM49BAMCMBsxGTAXBgNVBAMMEHNlY29uZCBy
ZWNpcGllbnQwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBsxGTAX
BgNVBAMMEHNlY29uZCByZWNpcGllbnQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AARhxEL5Jsdnkb6TytjZHjPe0mjFmrhmdIXFbMFh8xuV8AwPIyrOZFYIPcvM9H8j
2OmyjLdb4y4yMaCfYf2M2XHcMAoGCCqGSM49BAMCA0gAMEUCIQCzYJcCI6j8ImyJ
YnVfYrKts/HV3WTtIUFZse8bvMMUfAIgdfGYLocZgsVf1uR2X222hljaQ1uHgzTI
d8tls6uXw90=
-----END CERTIFICATE-----
$pem$),
('rsa1024', $pem$-----BEGIN CERTIFICATE-----
MIICGDCCAYGgAwIBAgIUEUwStW2OeT4RssYZQv4pOlf6hvswDQYJKoZIhvcNAQEL
BQAwHTEbMBkGA1UEAwwSd2VhayByc2EgcmVjaXBpZW50MCAXDTI2MTIwMjAzNDQz
MVoYDzIxMDAxMTA0MDM0NDMxWjAdMRswGQYDVQQDDBJ3ZWFrIHJzYSByZWNpcGll
bnQwgZ8wDQYJKoZIhvcNAQEBBQADgY0AMIGJAoGBALotGSU/zxMfWVLa2kCP+02h
xyoLft2qVSMnsZAkxFSb/uCiFkCLS3nzdyMFLAgnE0/LobkNFGxVTZimUDqVK4sM
DjxoQM7wqXu//fryBmbIUYkoR9k4mNiX5FLgicMD4EH17k1ndV7B+adnQ0x1RVN1
+0VShYhTSGSB6caK2zf7AgMBAAGjUzBRMB0GA1UdDgQWBBRf4C77m8AI+rAho2au
KuzxBkNFJzAfBgNVHSMEGDAWgBRf4C77m8AI+rAho2auKuzxBkNFJzAPBgNVHRMB
Af8EBTADAQH/MA0GCSqGSIb3DQEBCwUAA4GBAFxinmhp040qTz3MZoTThHu3HmnO
/kuzSfpobVumlKXbt3TO2PKRrWfh6D0el0hpSbn2C8vGDOR0dqFq/77uWDEGyk8u
AphXrM5kbofvxydzO3UCJWM9f6/RXS7CxXxQPIF+oRMaU5TASizKFNKnHagt0YsJ
4Rg0KNVWGDhTZazW
-----END CERTIFICATE-----
$pem$),
('ec224', $pem$-----BEGIN CERTIFICATE-----
MIIBhTCCATKgAwIBAgIUe3A0kqcdCK+4ex/Pg7Z6MrePvTgwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVc21hbGwgY3VydmUgcmVjaXBpZW50MCAXDTI2MTIwMjAzNDQz
MVoYDzIxMDAxMTA0MDM0NDMxWjAgMR4wHAYDVQQDDBVzbWFsbCBjdXJ2ZSByZWNp
cGllbnQwTjAQBgcqhkjOPQIBBgUrgQQAIQM6AARF2slIVzE6lPVibrBfz5p1/IyL
YrvxnA8JRVA/M3HfiQiJMI8B/sZWJfk6JslWLcvTypRrE4RJuqNTMFEwHQYDVR0O
BBYEFLhhVkoceuo3ALEESEiPXmGEW1TqMB8GA1UdIwQYMBaAFLhhVkoceuo3ALEE
SEiPXmGEW1TqMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDQQAwPgIdAOCA
kSXoU2CqBm7WVB+ZyPKz07+BYZwja6fYTr4CHQC3T1oW2FAO4ZxSLMeTVI+futKE
PgtiYFu+LDRe
-----END CERTIFICATE-----
$pem$),
('sign_only', $pem$-----BEGIN CERTIFICATE-----
MIIBpzCCAUygAwIBAgIUURnP1INBBYlKFrJVC6xkTTTe+e4wCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWc2lnbmluZyBvbmx5IHJlY2lwaWVudDAgFw0yNjEyMDIwMzQ0
MzFaGA8yMTAwMTEwNDAzNDQzMVowITEfMB0GA1UEAwwWc2lnbmluZyBvbmx5IHJl
Y2lwaWVudDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOKSBL4/8/OYnrRAfher
LjzOed6pa+ierS5dNiqvm9NmxKSrN7I9p7FZ8SARtVGIwsh4P1iEmSuycqheWhNx
H5ajYDBeMB0GA1UdDgQWBBS83NCXX5WZUJAPGpR0Tky73b/r9jAfBgNVHSMEGDAW
gBS83NCXX5WZUJAPGpR0Tky73b/r9jAPBgNVHRMBAf8EBTADAQH/MAsGA1UdDwQE
AwIHgDAKBggqhkjOPQQDAgNJADBGAiEA0BbzC6P9zrAYdnJX8RbFF3kBORHRfChh
Cuya+GfZuXECIQDBfGXH15Yc36G9kVBTAT+db99TJ0jVPaIdOMvqCFwoww==
-----END CERTIFICATE-----
$pem$);
SET client_min_messages = notice;
-- Reports an error's SQLSTATE and message with the job id replaced by N.
CREATE FUNCTION pg_temp.error_of(statement text, job bigint DEFAULT 0) RETURNS text
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || replace(SQLERRM, 'job ' || job, 'job N');
END
$fn$;

-- Bad arguments: 22023, nothing stored.
SELECT * FROM privacy.add_export_recipient('', (SELECT pem FROM recipient_certs WHERE label = 'valid'));
SELECT * FROM privacy.add_export_recipient(NULL, (SELECT pem FROM recipient_certs WHERE label = 'valid'));
SELECT * FROM privacy.add_export_recipient('regress', NULL);
\set VERBOSITY terse
-- (terse: OpenSSL's own error text in DETAIL differs between versions)
SELECT * FROM privacy.add_export_recipient('regress', 'not a certificate');
\set VERBOSITY default
SELECT * FROM privacy.add_export_recipient('regress', (SELECT pem FROM recipient_certs WHERE label = 'ed'));
SELECT * FROM privacy.add_export_recipient('regress', (SELECT pem FROM recipient_certs WHERE label = 'expired'));
SELECT * FROM privacy.add_export_recipient('regress', (SELECT pem FROM recipient_certs WHERE label = 'future'));
-- Weak keys and keys not meant for encryption (issue 13).
SELECT * FROM privacy.add_export_recipient('regress', (SELECT pem FROM recipient_certs WHERE label = 'rsa1024'));
SELECT * FROM privacy.add_export_recipient('regress', (SELECT pem FROM recipient_certs WHERE label = 'ec224'));
SELECT * FROM privacy.add_export_recipient('regress', (SELECT pem FROM recipient_certs WHERE label = 'sign_only'));
SELECT count(*) AS stored FROM privacy.export_recipients WHERE name = 'regress';

-- A valid certificate is stored with its fingerprint and audited.
SELECT * FROM privacy.add_export_recipient('regress', (SELECT pem FROM recipient_certs WHERE label = 'valid'));
SELECT name, fingerprint, active, added_by = session_user AS by_me FROM privacy.export_recipients WHERE name = 'regress';
SELECT action, target, outcome, detail->>'key_type' AS key_type, detail->>'fingerprint' AS fingerprint
  FROM privacy.audit_log WHERE action = 'recipient_added' AND target = 'regress' ORDER BY id DESC LIMIT 1;

-- Duplicates: the same name, or the same certificate under another name: 42710.
\set VERBOSITY terse
-- (terse: the detail says when it was added)
SELECT * FROM privacy.add_export_recipient('regress', (SELECT pem FROM recipient_certs WHERE label = 'valid2'));
\set VERBOSITY default
SELECT * FROM privacy.add_export_recipient('regress-twin', (SELECT pem FROM recipient_certs WHERE label = 'valid'));

-- Removing: unknown name 22023; removal audited; removing twice 55000 (the detail has a time).
SELECT privacy.remove_export_recipient('nobody');
SELECT privacy.remove_export_recipient('regress');
SELECT name, active, removed_by = session_user AS by_me, removed_at IS NOT NULL AS removed
  FROM privacy.export_recipients WHERE name = 'regress';
SELECT action, target, detail->>'fingerprint' AS fingerprint
  FROM privacy.audit_log WHERE action = 'recipient_removed' AND target = 'regress' ORDER BY id DESC LIMIT 1;
\set VERBOSITY terse
SELECT privacy.remove_export_recipient('regress');
\set VERBOSITY default

-- A removed recipient's name may be reused, with a new certificate.
SELECT recipient, subject, key_type FROM privacy.add_export_recipient('regress', (SELECT pem FROM recipient_certs WHERE label = 'valid2'));
SELECT name, active, removed_at IS NULL AS not_removed FROM privacy.export_recipients WHERE name = 'regress';

-- An export job cannot start without an active, valid recipient (55000), nor with one whose
-- certificate has expired since it was added: it fails, and CALL privacy.run_job raises the
-- job's error once the failure is committed.
INSERT INTO privacy.jobs (kind, target_type, target_id, tenant_id, reason, requires_approval, status, due_at, queued_at)
VALUES ('export', 'subject', 's1', 't1', 'regress', false, 'approved', now() + interval '30 days', now())
RETURNING id AS export_job \gset
CREATE TEMP TABLE saved_recipients AS SELECT name, certificate, active FROM privacy.export_recipients;
UPDATE privacy.export_recipients SET active = false WHERE active;
\set VERBOSITY terse
CALL privacy.run_job(:export_job);
SELECT status, error FROM privacy.jobs WHERE id = :export_job;
UPDATE privacy.export_recipients r SET active = s.active FROM saved_recipients s WHERE s.name = r.name;
SELECT privacy.retry(:export_job);
UPDATE privacy.export_recipients SET certificate = (SELECT pem FROM recipient_certs WHERE label = 'expired')
 WHERE name = 'regress';
CALL privacy.run_job(:export_job);
SELECT privacy.retry(:export_job);
-- A weak certificate stored before the check existed is refused when an export starts.
UPDATE privacy.export_recipients SET certificate = (SELECT pem FROM recipient_certs WHERE label = 'rsa1024')
 WHERE name = 'regress';
CALL privacy.run_job(:export_job);
\set VERBOSITY default
UPDATE privacy.export_recipients r SET certificate = s.certificate FROM saved_recipients s WHERE s.name = r.name;
SELECT action, outcome FROM privacy.audit_log WHERE job_id = :export_job ORDER BY id;

-- download_export: unknown job 22023, not an export 22023, not finished 55000.
SELECT privacy.download_export(-1);
INSERT INTO privacy.jobs (kind, target_type, target_id, tenant_id, reason, requires_approval, status, due_at)
VALUES ('erase', 'subject', 's1', 't1', 'regress', true, 'pending', now() + interval '30 days')
RETURNING id AS erase_job \gset
SELECT pg_temp.error_of(format('SELECT privacy.download_export(%s)', :erase_job), :erase_job);
SELECT pg_temp.error_of(format('SELECT privacy.download_export(%s)', :export_job), :export_job);
SELECT pg_temp.error_of(format('SELECT count(*) FROM privacy.export_chunks(%s)', :export_job), :export_job);

-- Only privacy_admin may call the export functions.
SELECT p.proname, has_function_privilege('privacy_admin', p.oid, 'EXECUTE') AS admin,
       has_function_privilege('privacy_requester', p.oid, 'EXECUTE') AS requester,
       has_function_privilege('privacy_auditor', p.oid, 'EXECUTE') AS auditor,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public
  FROM pg_proc p
 WHERE p.pronamespace = 'privacy'::regnamespace
   AND p.proname IN ('add_export_recipient', 'remove_export_recipient', 'download_export',
                     'export_chunks', '_inspect_certificate')
 ORDER BY p.proname;

-- Clean up what this test made.
DELETE FROM privacy.jobs WHERE id IN (:export_job, :erase_job);
SELECT privacy.remove_export_recipient('regress');
