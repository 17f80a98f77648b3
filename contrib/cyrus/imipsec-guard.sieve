# Cyrus IMAP Sieve guard: only let `processcalendar` (RFC 9671, Sieve "processcalendar")
# act on calendar mail the imipsec gate verified. Replace mx.example.org with the gate's
# authserv_id. The gate deletes every incoming Authentication-Results claiming that id,
# so only the gate can write the header this rule trusts.
require ["processcalendar", "variables", "fileinto", "mailbox"];

if header :matches "Authentication-Results" "mx.example.org;*x-imip=pass*" {
  processcalendar :outcome "imip_outcome";
} elsif header :contains "Content-Type" "text/calendar" {
  # not verified: keep it for a human, do not touch the calendar
  fileinto :create "Calendar-Unverified";
}
