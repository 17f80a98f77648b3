#!/usr/bin/env bash
# Shared helpers for the gate end-to-end and load scripts: a loopback-only Postfix
# instance with its own configuration directory, an LMTP-only Dovecot, port waiting.
# Sourced, not run. Everything listens on 127.0.0.1 only.

# ensure_packages: install Postfix, Dovecot LMTP, Pigeonhole (sieve-test) and swaks when
# missing (Debian/Ubuntu).
ensure_packages() {
  if ! command -v postfix >/dev/null || ! command -v swaks >/dev/null \
     || [ ! -x /usr/lib/dovecot/lmtp ] || ! command -v dovecot >/dev/null \
     || ! command -v sieve-test >/dev/null; then
    echo "gate-e2e: installing postfix, dovecot-lmtpd, dovecot-sieve, swaks"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postfix dovecot-lmtpd dovecot-sieve swaks >/dev/null
  fi
}

# wait_port HOST:PORT [TENTHS]: wait until something accepts connections (default 15 s).
wait_port() {
  local address=$1 tries=${2:-150}
  for _ in $(seq 1 "$tries"); do
    (exec 3<>"/dev/tcp/${address%:*}/${address#*:}") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "gate-e2e: nothing listening on $address" >&2
  return 1
}

# wait_closed HOST:PORT: wait until nothing accepts connections any more (max 15 s).
wait_closed() {
  local address=$1
  for _ in $(seq 1 150); do
    (exec 3<>"/dev/tcp/${address%:*}/${address#*:}") 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# write_postfix BASE NAME SMTP_PORT ROUTE MILTER [EXTRA_MASTER_LINES]
#   ROUTE: the transport for the test domains, e.g. lmtp:inet:127.0.0.1:44024 or
#          smtp:[127.0.0.1]:42525 (a relay hop). MILTER: inet:HOST:PORT or empty.
#   Short queue and backoff times so deferred mail is retried within seconds.
write_postfix() {
  local base=$1 name=$2 port=$3 route=$4 milter=$5 extra=${6:-}
  mkdir -p "$base/etc" "$base/spool" "$base/data"
  chown postfix:postfix "$base/data"
  cp /etc/postfix/dynamicmaps.cf "$base/etc/" 2>/dev/null || true
  cat > "$base/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $base/spool
data_directory = $base/data
myhostname = $name
mydomain = gate.test
myorigin = \$myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = \$myhostname ESMTP gate-e2e
maillog_file = $base/maillog
maillog_file_prefixes = /var, /dev/stdout, $base
relay_domains = example.org, example.net
transport_maps = inline:{ example.org=$route, example.net=$route }
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtpd_milters = $milter
non_smtpd_milters = \$smtpd_milters
# fail closed: a gate that does not answer means "try again later", never "pass"
milter_default_action = tempfail
milter_protocol = 6
milter_connect_timeout = 5s
milter_content_timeout = 60s
# retry deferred mail within seconds (test only; production keeps the defaults)
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 200
smtp_destination_concurrency_limit = 40
lmtp_destination_concurrency_limit = 40
CF
  cat > "$base/etc/master.cf" <<CF
127.0.0.1:$port inet n - n - - smtpd
$extra
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
  postfix -c "$base/etc" check
}

# write_dovecot BASE PORT: an LMTP-only Dovecot delivering every address to a maildir
# under BASE/mail/DOMAIN/USER.
write_dovecot() {
  local base=$1 port=$2
  mkdir -p "$base/run" "$base/mail" "$base/state"
  chown nobody:nogroup "$base/mail"
  cat > "$base/dovecot.conf" <<CF
protocols = lmtp
listen = 127.0.0.1
base_dir = $base/run
state_dir = $base/state
instance_name = imipsec-gate-e2e-$port
log_path = $base/dovecot.log
info_log_path = $base/dovecot.log
ssl = no
mail_location = maildir:~/Maildir
first_valid_uid = 1
lmtp_rcpt_check_quota = no
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$base/mail/%d/%n allow_all_users=yes
}
service lmtp {
  process_limit = 64
  inet_listener lmtp {
    address = 127.0.0.1
    port = $port
  }
}
CF
  dovecot -c "$base/dovecot.conf" -n >/dev/null
}
