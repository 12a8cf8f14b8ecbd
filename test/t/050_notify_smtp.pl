# Notifications end to end (docs/notifications.md): pg_notify payloads reach a listener, queued
# e-mails reach a small SMTP sink on loopback through the launcher's mailer step with the right
# headers and body, a dead mail server means retries with backoff, and once it is back the mail
# is delivered exactly once. TLS (issue 13): STARTTLS whenever the server offers it, with the
# server's certificate verified (privacy.smtp_ca_file trusts the test CA), and with
# privacy.smtp_require_tls nothing is sent to a server that does not offer it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PostgreSQL::Test::Cluster;
use PrivacyTest;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use IO::Socket::SSL;
use POSIX ();

my $node = privacy_node('notify', create_extension => 1, conf => qq{
privacy.naptime = 1
privacy.notify_min_items = 10
privacy.notify_retry_base = 1
});

# ---- A minimal SMTP sink: one child process, one connection at a time. Each message is written
# (undotted, as received) to $maildir/msg-N.eml, atomically, with its envelope in the first lines
# and, in X-Sink-TLS, the TLS version the client switched to with STARTTLS ("none" without).
# With %sink_tls (cert, key) set, the sink offers STARTTLS.
my $maildir = PostgreSQL::Test::Utils::tempdir();
my $smtp_port = PostgreSQL::Test::Cluster::get_free_port();
my $sink_pid;
my $sink_serial = 0;
my %sink_tls;

sub smtp_session {
  my ($client) = @_;
  my $reply = sub { print $client "$_[0]\r\n"; };
  $reply->('220 sink ESMTP');
  my ($from, @to);
  my $tls = 'none';
  while (defined(my $line = <$client>)) {
    $line =~ s/\r?\n\z//;
    my $can_starttls = %sink_tls && $tls eq 'none';
    if ($line =~ /^EHLO/i && $can_starttls) { $reply->('250-sink'); $reply->('250 STARTTLS') }
    elsif ($line =~ /^STARTTLS/i && $can_starttls) {
      $reply->('220 ready to start TLS');
      # A client that does not trust our certificate ends the handshake: end the session too.
      IO::Socket::SSL->start_SSL($client, SSL_server => 1, SSL_cert_file => $sink_tls{cert},
                                 SSL_key_file => $sink_tls{key}) or last;
      $tls = $client->get_sslversion;
      ($from, @to) = ();    # RFC 3207: everything before STARTTLS is forgotten
    }
    elsif ($line =~ /^(EHLO|HELO)/i) { $reply->('250 sink') }
    elsif ($line =~ /^MAIL FROM:\s*(.*)/i) { $from = $1; @to = (); $reply->('250 OK') }
    elsif ($line =~ /^RCPT TO:\s*(.*)/i) { push @to, $1; $reply->('250 OK') }
    elsif ($line =~ /^DATA/i) {
      $reply->('354 go ahead');
      my $data = '';
      while (defined(my $d = <$client>)) {
        last if $d eq ".\r\n";
        $d =~ s/^\.\./\./;    # undo dot-stuffing (RFC 5321 4.5.2)
        $data .= $d;
      }
      $sink_serial++;
      my $file = "$maildir/msg-$$-$sink_serial.eml";
      open(my $fh, '>', "$file.tmp") or die;
      binmode $fh;
      print $fh "X-Envelope-From: $from\r\nX-Envelope-To: @to\r\nX-Sink-TLS: $tls\r\n$data";
      close $fh;
      rename("$file.tmp", $file) or die;
      $reply->('250 queued');
    }
    elsif ($line =~ /^QUIT/i) { $reply->('221 bye'); last }
    elsif ($line =~ /^(RSET|NOOP)/i) { $reply->('250 OK') }
    else { $reply->('502 not implemented') }
  }
  close $client;
}

sub start_sink {
  my (%tls) = @_;    # cert => ..., key => ...: offer STARTTLS
  %sink_tls = %tls;
  my $server = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $smtp_port,
                                     Proto => 'tcp', Listen => 5, ReuseAddr => 1)
    or die "cannot listen on $smtp_port: $!";
  my $pid = fork();
  die "fork: $!" unless defined $pid;
  if ($pid == 0) {
    while (my $client = $server->accept) { smtp_session($client) }
    POSIX::_exit(0);    # never run the parent's END blocks (they stop the node)
  }
  close $server;
  $sink_pid = $pid;
}

sub stop_sink {
  kill 'KILL', $sink_pid;
  waitpid($sink_pid, 0);
  undef $sink_pid;
}

END { kill 'KILL', $sink_pid if $sink_pid; }

sub messages {
  opendir(my $dh, $maildir) or die;
  my @files = sort grep { /\.eml$/ } readdir $dh;
  closedir $dh;
  return map { local $/; open(my $fh, '<', "$maildir/$_") or die; binmode $fh; scalar <$fh> } @files;
}

sub messages_with_id {
  my ($message_id) = @_;
  return grep { /^Message-ID: <\Q$message_id\E>\r$/m } messages();
}

# ---- Jobs are inserted directly (superuser); the test-only hook privacy_test.notify_job_event
# (test/modules/privacy_test) sends the event for a status change.
$node->safe_psql('postgres', 'CREATE EXTENSION privacy_test');
sub insert_job {
  my (%job) = @_;
  my $email = defined $job{email} ? "'$job{email}'" : 'NULL';
  my $note = defined $job{note} ? $node->safe_psql('postgres', "SELECT quote_literal(\$q\$$job{note}\$q\$)") : 'NULL';
  my $error = defined $job{error} ? "'$job{error}'" : 'NULL';
  return $node->safe_psql('postgres', qq{
    INSERT INTO privacy.jobs (kind, target_type, target_id, tenant_id, reason, requires_approval,
                              status, due_at, total_items, processed_items, failed_items,
                              notify_email, decision_note, error, recoverable_until)
    VALUES ('$job{kind}', 'subject', 'user-17', 'acme', 'test', false, '$job{status}',
            now() + interval '30 days', $job{total}, coalesce($job{total}, 0), 0, $email, $note, $error,
            now() + interval '30 days')
    RETURNING id});
}

sub mailer_row {
  return $node->safe_psql('postgres',
    q{SELECT state || ' | ' || detail FROM privacy.worker_status() WHERE process = 'mailer'});
}

# ---- pg_notify: a listener gets the JSON payload at commit.
my $small_job = insert_job(kind => 'erase', status => 'pending', total => 3, email => 'dpo@example.com');
my ($ret, $stdout, $stderr) = $node->psql('postgres',
  "LISTEN privacy_events;\nSELECT privacy_test.notify_job_event($small_job, 'approved', 'processing');");
like($stdout, qr/Asynchronous notification "privacy_events" with payload "\{"job_id" : $small_job, "kind" : "erase", "tenant_id" : "acme", "target_type" : "subject", "old_status" : "approved", "new_status" : "processing", "processed_items" : 3, "failed_items" : 0, "total_items" : 3, "at" : "[^"]+"\}" received/,
     'a LISTEN session receives the event payload');
unlike($stdout, qr/user-17.*received/, 'the payload does not carry the subject id');
is($node->safe_psql('postgres', 'SELECT count(*) FROM privacy.notifications'), '0',
   'a status change that is not an outcome queues no e-mail');

# ---- No smtp_url: the mail stays queued and worker_status says so.
my $export_job = insert_job(kind => 'export', status => 'completed', total => 20, email => 'dpo@example.com');
$node->safe_psql('postgres', "SELECT privacy_test.notify_job_event($export_job, 'processing', 'completed')");
is($node->safe_psql('postgres', "SELECT count(*) FROM privacy.notifications WHERE job_id = $export_job"),
   '1', 'a completed job with total_items >= notify_min_items queues one e-mail');
is(mailer_row(), 'disabled | privacy.smtp_url is empty: 1 e-mails queued',
   'worker_status reports the disabled mailer and the queue');

# ---- With the sink up: delivered with the right envelope, headers and body.
start_sink();
$node->safe_psql('postgres', qq{
  ALTER SYSTEM SET privacy.smtp_url = 'smtp://127.0.0.1:$smtp_port';
  ALTER SYSTEM SET privacy.smtp_from = 'pg_privacy\@db.example.com';
  SELECT pg_reload_conf();});
ok($node->poll_query_until('postgres',
     "SELECT sent_at IS NOT NULL FROM privacy.notifications WHERE job_id = $export_job"),
   'the export e-mail is sent once smtp_url is set');
my $export_notification = $node->safe_psql('postgres',
  "SELECT id || '|' || attempts || '|' || coalesce(last_error, '') FROM privacy.notifications WHERE job_id = $export_job");
my ($export_nid, $export_attempts) = split /\|/, $export_notification;
is($export_attempts, '1', 'sent at the first attempt, no error kept');
my @export_mail = grep { /download_export\($export_job\)/ } messages();
is(scalar @export_mail, 1, 'the sink received the export e-mail once');
my $mail = $export_mail[0] // '';
like($mail, qr/^X-Envelope-From: <pg_privacy\@db\.example\.com>\r\nX-Envelope-To: <dpo\@example\.com>\r\n/,
     'SMTP envelope: MAIL FROM privacy.smtp_from, RCPT TO notify_email');
like($mail, qr/^From: pg_privacy\@db\.example\.com\r$/m, 'From header');
like($mail, qr/^To: dpo\@example\.com\r$/m, 'To header');
like($mail, qr/^Subject: \[pg_privacy\] export job $export_job completed \(tenant acme\)\r$/m, 'Subject header');
like($mail, qr/^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r$/m, 'Date header');
like($mail, qr/^Message-ID: <pg_privacy\.notification\.$export_nid\.\d+\@db\.example\.com>\r$/m, 'Message-ID header');
like($mail, qr/^Content-Type: text\/plain; charset=utf-8\r$/m, 'plain text UTF-8');
like($mail, qr/Target:  subject user-17\r\n/, 'body names the target');
like($mail, qr/20 of 20 items processed, 0 failed/, 'body gives the counts');
like($mail, qr/psql -Atc "select privacy\.download_export\($export_job\)" > export\.pem\r\n  openssl cms -decrypt -inform PEM -in export\.pem/,
     'body says how to download and decrypt');
is($node->safe_psql('postgres', qq{
  SELECT count(*) FROM privacy.audit_log WHERE action = 'notification_sent' AND job_id = $export_job
     AND tenant_id = 'acme' AND (detail->>'attempts')::int = 1 AND NOT detail ? 'body'}),
   '1', 'the delivery is audited on the tenant chain, without the body');

# ---- A rejection: the reason arrives intact, including a line that is a lone dot.
my $rejected_job = insert_job(kind => 'erase', status => 'rejected', total => 'NULL', email => 'dpo@example.com',
                              note => "duplicate request\n.\nsee job 1");
$node->safe_psql('postgres', "SELECT privacy_test.notify_job_event($rejected_job, 'pending', 'rejected')");
ok($node->poll_query_until('postgres',
     "SELECT sent_at IS NOT NULL FROM privacy.notifications WHERE job_id = $rejected_job"),
   'the rejection e-mail is sent');
my ($rejection) = grep { /erase job $rejected_job was rejected/ } messages();
like($rejection // '', qr/Reason given:\r\n  duplicate request\r\n\.\r\nsee job 1\r\n/,
     'the reason survives SMTP, a line with a lone dot included (libcurl dot-stuffs)');

# ---- The sink is down: the attempt fails, is recorded and retried with backoff.
stop_sink();
my $failed_job = insert_job(kind => 'purge', status => 'failed', total => 2, email => 'dpo@example.com',
                            error => 'relation public.orders does not exist');
$node->safe_psql('postgres', "SELECT privacy_test.notify_job_event($failed_job, 'processing', 'failed')");
ok($node->poll_query_until('postgres', qq{
     SELECT attempts >= 1 AND last_error IS NOT NULL AND sent_at IS NULL AND next_attempt_at > now()
       FROM privacy.notifications WHERE job_id = $failed_job}),
   'with the mail server down the attempt is counted, its error kept and a retry scheduled');
like($node->safe_psql('postgres', "SELECT last_error FROM privacy.notifications WHERE job_id = $failed_job"),
     qr/connect/i, 'last_error says the connection failed');
is($node->safe_psql('postgres', qq{
  SELECT count(*) > 0 FROM privacy.audit_log WHERE action = 'notification_failed' AND job_id = $failed_job
     AND outcome = 'error' AND (detail->>'will_retry')::bool}),
   't', 'the failed attempt is audited');
like(mailer_row(), qr/^ready \| 1 e-mails queued \(1 after a failed attempt\), 0 given up$/,
     'worker_status shows the mail waiting for a retry');

# ---- The sink is back: delivered, and exactly once.
start_sink();
ok($node->poll_query_until('postgres',
     "SELECT sent_at IS NOT NULL FROM privacy.notifications WHERE job_id = $failed_job"),
   'the mail is delivered once the server is back');
my $failed_nid = $node->safe_psql('postgres', "SELECT id FROM privacy.notifications WHERE job_id = $failed_job");
# A later mail proves the mailer ran again after the delivery without resending it.
my $sentinel_job = insert_job(kind => 'erase', status => 'failed', total => 1, email => 'dpo@example.com',
                              error => 'sentinel');
$node->safe_psql('postgres', "SELECT privacy_test.notify_job_event($sentinel_job, 'processing', 'failed')");
ok($node->poll_query_until('postgres',
     "SELECT sent_at IS NOT NULL FROM privacy.notifications WHERE job_id = $sentinel_job"),
   'a later mail is delivered too');
my @failure_mails = grep { /purge job $failed_job FAILED/ } messages();
is(scalar @failure_mails, 1, 'the retried mail arrived exactly once');
like($failure_mails[0] // '', qr/Error:\r\n  relation public\.orders does not exist\r\n.*privacy\.retry\($failed_job\)/s,
     'the failure mail quotes the error and says how to retry');
is(scalar(messages()), 4, 'the sink holds exactly the four mails sent');
my %ids = map { /^Message-ID: <([^>]+)>/m ? ($1 => 1) : () } messages();
is(scalar keys %ids, 4, 'every mail has its own Message-ID');
like(mailer_row(), qr/^ready \| 0 e-mails queued/, 'the queue is empty');

# ---- End to end through the real workflow: an erase with a notify_email, run by the worker;
#      its completion is e-mailed.
$node->safe_psql('postgres', q{
  CREATE TABLE e2e_accounts (id int PRIMARY KEY, tenant text NOT NULL, subject text NOT NULL);
  INSERT INTO e2e_accounts SELECT g, 'acme', 'user-99' FROM generate_series(1, 5) g;
  SELECT privacy.register_table('e2e_accounts', 'subject', 'tenant');
  ALTER SYSTEM SET privacy.notify_min_items = 1;
  SELECT pg_reload_conf();
});
my $e2e_job = $node->safe_psql('postgres',
  q{SELECT privacy.request_erase('acme', 'user-99', 'end to end', 'dpo@example.com')});
$node->safe_psql('postgres', "SET privacy.require_distinct_approver = off; SELECT privacy.approve($e2e_job)");
ok($node->poll_query_until('postgres',
     "SELECT sent_at IS NOT NULL FROM privacy.notifications WHERE job_id = $e2e_job"),
   'the worker completed the erase and its e-mail was sent');
my @e2e_mails = grep { /erase job $e2e_job/ } messages();
is(scalar @e2e_mails, 1, 'one completion mail for the real job');
like($e2e_mails[0] // '', qr/recoverable/i, 'it says until when the erasure can be undone');


# ---- TLS (issue 13). A test CA and a certificate for 127.0.0.1 signed by it.
my $tlsdir = PostgreSQL::Test::Utils::tempdir();
my $ec = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';
PostgreSQL::Test::Utils::system_or_bail('sh', '-c', qq{
  cd $tlsdir &&
  openssl req -x509 $ec -keyout ca.key -out ca.crt -days 2 -subj '/CN=pg_privacy test CA' 2>/dev/null &&
  openssl req $ec -keyout sink.key -out sink.csr -subj '/CN=127.0.0.1' 2>/dev/null &&
  printf 'subjectAltName = IP:127.0.0.1\n' > sink.ext &&
  openssl x509 -req -in sink.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile sink.ext -out sink.crt 2>/dev/null});

# The launcher has applied a configuration change once it logs the reload.
sub reload_and_wait {
  my ($settings) = @_;
  my $offset = -s $node->logfile;
  $node->safe_psql('postgres', "$settings\nSELECT pg_reload_conf();");
  $node->wait_for_log(qr/pg_privacy launcher reloaded its configuration/, $offset);
}

sub queue_failure_mail {
  my ($error) = @_;
  my $job = insert_job(kind => 'erase', status => 'failed', total => 1, email => 'dpo@example.com',
                       error => $error);
  $node->safe_psql('postgres', "SELECT privacy_test.notify_job_event($job, 'processing', 'failed')");
  return $job;
}

# A sink that offers STARTTLS: the mailer upgrades, and verifies the certificate. Without the
# test CA it does not trust the sink, so nothing is sent.
stop_sink();
start_sink(cert => "$tlsdir/sink.crt", key => "$tlsdir/sink.key");
my $tls_job = queue_failure_mail('tls run');
ok($node->poll_query_until('postgres', qq{
     SELECT attempts >= 1 AND sent_at IS NULL AND last_error ~* 'certificate'
       FROM privacy.notifications WHERE job_id = $tls_job}),
   'STARTTLS to a server whose certificate is not trusted fails, saying why');
note($node->safe_psql('postgres', "SELECT last_error FROM privacy.notifications WHERE job_id = $tls_job"));
is(scalar(grep { /erase job $tls_job FAILED/ } messages()), 0, 'and nothing was sent');

reload_and_wait("ALTER SYSTEM SET privacy.smtp_ca_file = '$tlsdir/ca.crt';");
ok($node->poll_query_until('postgres',
     "SELECT sent_at IS NOT NULL FROM privacy.notifications WHERE job_id = $tls_job"),
   'with privacy.smtp_ca_file naming the test CA, the mail is delivered');
my ($tls_mail) = grep { /erase job $tls_job FAILED/ } messages();
like($tls_mail // '', qr/^X-Sink-TLS: TLSv1_[23]\r$/m, 'the client issued STARTTLS and sent the mail over TLS');

# A sink without STARTTLS and privacy.smtp_require_tls on: nothing is sent, the error says why,
# and the mail is retried like any failure.
stop_sink();
start_sink();
reload_and_wait('ALTER SYSTEM SET privacy.smtp_require_tls = on;');
my $plain_job = queue_failure_mail('plain run');
ok($node->poll_query_until('postgres', qq{
     SELECT attempts >= 1 AND sent_at IS NULL AND next_attempt_at > now()
            AND last_error LIKE 'TLS is required (privacy.smtp_require_tls = on)%STARTTLS%'
       FROM privacy.notifications WHERE job_id = $plain_job}),
   'with smtp_require_tls on, a server without STARTTLS gets nothing; last_error says TLS was required');
note($node->safe_psql('postgres', "SELECT last_error FROM privacy.notifications WHERE job_id = $plain_job"));
is(scalar(grep { /erase job $plain_job FAILED/ } messages()), 0, 'the sink received nothing');

# require_tls off: STARTTLS is opportunistic, so the same server gets the mail in plain text.
reload_and_wait('ALTER SYSTEM SET privacy.smtp_require_tls = off;');
ok($node->poll_query_until('postgres',
     "SELECT sent_at IS NOT NULL FROM privacy.notifications WHERE job_id = $plain_job"),
   'with smtp_require_tls off, the retry delivers the mail');
my ($plain_mail) = grep { /erase job $plain_job FAILED/ } messages();
like($plain_mail // '', qr/^X-Sink-TLS: none\r$/m, 'in plain text: the server did not offer STARTTLS');

stop_sink();
$node->stop;
done_testing();
