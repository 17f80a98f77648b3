# Dovecot/Pigeonhole: file calendar mail the gate did not pass into a separate folder, so
# calendar clients that auto-import from INBOX never see it.
# The header is trusted only because the gate deletes every incoming
# Authentication-Results that claims its authserv-id (mx.example.org here).
#
# A calendar is usually not the top-level type: iMIP puts text/calendar inside
# multipart/alternative, often inside multipart/mixed. `header :mime :anychild` (RFC 5703
# section 4) looks at the Content-Type of every part, top level included; `:contenttype`
# compares the type/subtype only, so a boundary or name parameter that merely contains the
# words "text/calendar" does not count. Tested with Pigeonhole's sieve-test by
# contrib/test-sieve.sh.
require ["fileinto", "mailbox", "mime"];

if allof (header :mime :anychild :contenttype "Content-Type" "text/calendar",
          not header :matches "Authentication-Results" "mx.example.org;*x-imip=pass*") {
  fileinto :create "Calendar-Unverified";
  stop;
}
