# Cyrus IMAP Sieve guard: only let `processcalendar` (RFC 9671, Sieve "processcalendar")
# act on calendar mail the imipsec gate verified. Replace mx.example.org with the gate's
# authserv_id. The gate deletes every incoming Authentication-Results claiming that id,
# so only the gate can write the header this rule trusts.
#
# `header :mime :anychild :contenttype` (RFC 5703 section 4) finds text/calendar in any
# part: iMIP nests it inside multipart/alternative (and multipart/mixed), where a test of
# the top-level Content-Type never looks.
require ["processcalendar", "variables", "fileinto", "mailbox", "mime"];

if header :matches "Authentication-Results" "mx.example.org;*x-imip=pass*" {
  processcalendar :outcome "imip_outcome";
} elsif header :mime :anychild :contenttype "Content-Type" "text/calendar" {
  # not verified: keep it for a human, do not touch the calendar
  fileinto :create "Calendar-Unverified";
}
