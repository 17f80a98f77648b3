# Dovecot/Pigeonhole: file calendar mail the gate did not pass into a separate folder, so
# calendar clients that auto-import from INBOX never see it.
# The header is trusted only because the gate deletes every incoming
# Authentication-Results that claims its authserv-id (mx.example.org here).
require ["fileinto", "mailbox"];

if allof (header :contains "Content-Type" "text/calendar",
          not header :matches "Authentication-Results" "mx.example.org;*x-imip=pass*") {
  fileinto :create "Calendar-Unverified";
  stop;
}
