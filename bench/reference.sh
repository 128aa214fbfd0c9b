#!/usr/bin/env bash
# Reference stack for the benchmarks: Postfix (smtpd on a loopback high port) -> queue ->
# Dovecot LMTP (unix socket) -> Maildir, and Dovecot IMAP on a loopback high port (plaintext
# or STARTTLS, like our `imap` listener) and IMAPS (implicit TLS), with a self-signed certificate.
# Throwaway state under /tmp/mssante-ref-XXXX; mail stored as user `mail`; passwords {ARGON2ID}.
#
#   bench/reference.sh install     install Debian's postfix, dovecot-imapd, dovecot-lmtpd (no service starts)
#   bench/reference.sh start       start the stack (prints the environment, see `env`)
#   bench/reference.sh env         shell variables for the generator (eval "$(bench/reference.sh env)")
#   bench/reference.sh status      processes, listeners, delivered count
#   bench/reference.sh count       number of delivered messages (files in Maildir new/ + cur/)
#   bench/reference.sh stop        stop both by PID and remove the state
#   bench/reference.sh fsync       measure the disk's write+fdatasync rate
#
# Settings (environment): REF_SMTP_PORT (2526), REF_IMAP_PORT (1144), REF_USERS (100),
# REF_DOMAIN (bench.test), REF_PASSWORD (bench-pass: our server requires 8 characters), REF_PROFILE (default | tuned: Dovecot
# high-performance login and IMAP hibernation), REF_MAX_CONN (2000: Dovecot process limits),
# REF_ARGON2 (ours: argon2id m=19456,t=2,p=1 like our server | dovecot: doveadm's default cost),
# REF_IMAPS_PORT (1995).
set -euo pipefail

SMTP_PORT=${REF_SMTP_PORT:-2526}
IMAP_PORT=${REF_IMAP_PORT:-1144}
IMAPS_PORT=${REF_IMAPS_PORT:-1995}
USERS=${REF_USERS:-100}
DOMAIN=${REF_DOMAIN:-bench.test}
PASSWORD=${REF_PASSWORD:-bench-pass}
PROFILE=${REF_PROFILE:-default}
ARGON2=${REF_ARGON2:-ours}
MAX_CONN=${REF_MAX_CONN:-2000}
STATE=/tmp/mssante-ref.current

die() { echo "reference.sh: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root (Postfix and Dovecot start as root, then drop privileges)"; }

install_packages() {
    need_root
    if command -v postfix >/dev/null && command -v argon2 >/dev/null && [ -x /usr/sbin/dovecot ] && [ -e /usr/lib/dovecot/lmtp ]; then
        return 0
    fi
    # No service may start during the install: policy-rc.d answers "forbidden" (101).
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix dovecot-imapd dovecot-lmtpd argon2 >/dev/null
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
    # Debian may have started nothing thanks to policy-rc.d; make sure of it.
    if pgrep -x master >/dev/null || pgrep -x dovecot >/dev/null; then
        echo "warning: a system postfix/dovecot is running; it is not ours and is left alone" >&2
    fi
}

base_dir() { [ -f "$STATE" ] && cat "$STATE"; }

write_postfix_config() {
    local b=$1 pf=$1/postfix
    mkdir -p "$pf/queue" "$pf/data"
    chown postfix "$pf/data"
    cat > "$pf/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
maillog_file = $pf/maillog
maillog_file_prefixes = /tmp
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = ref.$DOMAIN
mydomain = $DOMAIN
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
relay_domains = $DOMAIN
relay_recipient_maps =
relay_transport = lmtp:unix:$b/dovecot/run/lmtp
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
message_size_limit = 30000000
biff = no
smtputf8_enable = no
CONF
    # chroot off everywhere: the queue lives under /tmp. Only smtpd listens on the network.
    cat > "$pf/master.cf" <<CONF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
smtp      unix  - - n -    - smtp
relay     unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
lmtp      unix  - - n -    - lmtp
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
CONF
}

write_dovecot_config() {
    local b=$1 dv=$1/dovecot
    mkdir -p "$dv/run" "$dv/state" "$b/mail"
    chown mail:mail "$b/mail"
    local hash
    if [ "$ARGON2" = dovecot ]; then
        hash=$(doveadm pw -s ARGON2ID -p "$PASSWORD")
    else
        # Same cost as our server (the argon2 crate's default: m=19456 KiB, t=2, p=1).
        hash="{ARGON2ID}$(printf %s "$PASSWORD" | argon2 "$(head -c 12 /dev/urandom | base64)" -id -t 2 -k 19456 -p 1 -e)"
    fi
    : > "$dv/passwd"
    for n in $(seq 1 "$USERS"); do
        echo "user$n@$DOMAIN:$hash::::::" >> "$dv/passwd"
    done
    chown root:dovecot "$dv/passwd"
    chmod 640 "$dv/passwd"
    # Self-signed certificate (P-256, like the one our server generates) for STARTTLS and IMAPS.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj "/CN=ref.$DOMAIN" -keyout "$dv/key.pem" -out "$dv/cert.pem" >/dev/null 2>&1
    chmod 600 "$dv/key.pem"
    local dh=""
    [ ! -f /usr/share/dovecot/dh.pem ] || dh="ssl_dh = </usr/share/dovecot/dh.pem"
    local tuned=""
    if [ "$PROFILE" = tuned ]; then
        tuned="
service imap-login {
  service_count = 0
  process_min_avail = $(nproc)
  vsz_limit = 1G
}
imap_hibernate_timeout = 5s
service imap-hibernate {
  unix_listener imap-hibernate {
    mode = 0660
    group = \$default_internal_group
  }
}
service imap {
  extra_groups = \$default_internal_group
  unix_listener imap-master {
    user = \$default_internal_user
  }
}"
    fi
    cat > "$dv/dovecot.conf" <<CONF
# Reference Dovecot for mssante benchmarks (throwaway, loopback only).
instance_name = mssante-ref
base_dir = $dv/run
state_dir = $dv/state
log_path = $dv/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <$dv/cert.pem
ssl_key = <$dv/key.pem
$dh
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 10M
auth_cache_ttl = 1 hour
mail_location = maildir:$b/mail/%d/%n/Maildir
mail_uid = mail
mail_gid = mail
first_valid_uid = $(id -u mail)
last_valid_uid = $(id -u mail)
mail_max_userip_connections = $MAX_CONN
default_process_limit = $MAX_CONN
default_client_limit = $((MAX_CONN * 3 + 100))
passdb {
  driver = passwd-file
  args = scheme=ARGON2ID $dv/passwd
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$b/mail/%d/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
protocol lmtp {
  postmaster_address = postmaster@$DOMAIN
}
$tuned
CONF
}

# Aborts (after stopping) if any of our processes listens on a non-loopback address.
check_listeners() {
    local pids bad
    pids=$(our_pids | tr ' ' '|')
    [ -n "$pids" ] || return 0
    bad=$(ss -ltnpH 2>/dev/null | grep -E "pid=($pids)," | awk '{print $4}' | grep -vE '^(127\.[0-9.]+|\[::1\]):[0-9]+$' || true)
    if [ -n "$bad" ]; then
        echo "reference.sh: non-loopback listeners found: $bad" >&2
        stop_stack
        exit 1
    fi
    if ss -ltnH | awk '{print $4}' | grep -qE ':25$'; then
        echo "reference.sh: something listens on port 25" >&2
        ss -ltnp | grep -E ':25 ' >&2 || true
    fi
}

# Master PIDs and all their descendants.
postfix_pid() { local b; b=$(base_dir) || return 0; [ -n "$b" ] && head -1 "$b/postfix/queue/pid/master.pid" 2>/dev/null | tr -d ' ' || true; }
dovecot_pid() { local b; b=$(base_dir) || return 0; [ -n "$b" ] && cat "$b/dovecot/run/master.pid" 2>/dev/null || true; }
descendants() { local p; for p in $(pgrep -P "$1" || true); do echo "$p"; descendants "$p"; done; }
our_pids() {
    local p all=""
    for p in $(postfix_pid) $(dovecot_pid); do all="$all $p $(descendants "$p" | tr '\n' ' ')"; done
    echo $all
}

start_stack() {
    need_root
    install_packages
    [ -z "$(base_dir)" ] || die "already running in $(base_dir) (reference.sh stop first)"
    local b
    b=$(mktemp -d /tmp/mssante-ref-XXXX)
    chmod 755 "$b"
    echo "$b" > "$STATE"
    write_dovecot_config "$b"
    write_postfix_config "$b"
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    [ "$PROFILE" != tuned ] || raise_inotify "$b"
    # Daemons get no handle on our stdout/stderr (a caller piping us would wait forever).
    dovecot -c "$b/dovecot/dovecot.conf" </dev/null >>"$b/start.log" 2>&1 || { cat "$b/start.log" >&2; stop_stack; die "dovecot did not start"; }
    postfix -c "$b/postfix" check >/dev/null 2>&1 || true
    chgrp postdrop "$b/postfix/queue/maildrop" "$b/postfix/queue/public" 2>/dev/null || true
    postfix -c "$b/postfix" start </dev/null >>"$b/start.log" 2>&1 || { cat "$b/postfix/maillog" >&2; stop_stack; die "postfix did not start"; }
    wait_listening "$SMTP_PORT" && wait_listening "$IMAP_PORT" || { stop_stack; die "listeners did not come up"; }
    check_listeners
    print_env
}

# Hibernation needs inotify in every IMAP process; Debian's limit of 128 instances per user
# would disable it past ~120 sessions. The tuned profile raises it and `stop` restores it.
raise_inotify() {
    local f=/proc/sys/fs/inotify/max_user_instances old
    old=$(cat "$f")
    if [ "$old" -lt $((MAX_CONN * 2)) ] && echo $((MAX_CONN * 2)) > "$f" 2>/dev/null; then
        echo "$old" > "$1/inotify.old"
    fi
}

wait_listening() {
    local i
    for i in $(seq 1 50); do
        ss -ltnH "sport = :$1" | grep -q . && return 0
        sleep 0.1
    done
    return 1
}

stop_pid() {
    local p=$1 i
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p"
    for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
}

stop_stack() {
    local b pids
    b=$(base_dir) || true
    [ -n "$b" ] || { echo "not running"; return 0; }
    pids=$(our_pids)
    stop_pid "$(postfix_pid)"
    stop_pid "$(dovecot_pid)"
    for p in $pids; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true; done
    [ ! -f "$b/inotify.old" ] || cat "$b/inotify.old" > /proc/sys/fs/inotify/max_user_instances
    rm -f "$STATE"
    if [ "${REF_KEEP:-0}" = 1 ]; then echo "state kept in $b"; else rm -rf "$b"; fi
}

count_delivered() {
    local b
    b=$(base_dir) || true
    [ -n "$b" ] || die "not running"
    find "$b/mail" \( -path '*/new/*' -o -path '*/cur/*' \) -type f 2>/dev/null | wc -l
}

print_env() {
    local b
    b=$(base_dir)
    cat <<ENV
REF_DIR=$b
REF_SMTP=127.0.0.1:$SMTP_PORT
REF_IMAP=127.0.0.1:$IMAP_PORT
REF_IMAPS=127.0.0.1:$IMAPS_PORT
REF_MAILDIR=$b/mail
REF_USER_PATTERN='user{n}@$DOMAIN'
REF_USERS=$USERS
REF_PASSWORD=$PASSWORD
REF_PROFILE=$PROFILE
REF_POSTFIX_PID=$(postfix_pid)
REF_DOVECOT_PID=$(dovecot_pid)
BENCH_SERVER_PIDS=$(postfix_pid),$(dovecot_pid)
ENV
}

status() {
    local b
    b=$(base_dir) || true
    [ -n "$b" ] || { echo "not running"; return 1; }
    print_env
    echo "processes: $(our_pids | wc -w)"
    ss -ltnp | grep -E "pid=($(our_pids | tr ' ' '|'))," || true
    echo "delivered: $(count_delivered)"
    echo "queue: $(find "$b/postfix/queue"/{incoming,active,deferred} -type f 2>/dev/null | wc -l) files"
}

# write+fdatasync rate of the disk holding /tmp (the queue and the Maildirs live there).
fsync_rate() {
    local dir=${1:-/tmp}
    python3 - "$dir" <<'PY'
import os, sys, tempfile, time
d = sys.argv[1]
fd, path = tempfile.mkstemp(dir=d, prefix="fsync-probe-")
block = os.urandom(4096)
n, t0 = 0, time.monotonic()
try:
    while time.monotonic() - t0 < 3.0 and n < 20000:
        os.write(fd, block)
        os.fdatasync(fd)
        n += 1
    dt = time.monotonic() - t0
finally:
    os.close(fd)
    os.unlink(path)
print(f"fsync rate ({d}): {n / dt:.0f} write+fdatasync/s of 4 KiB ({n} in {dt:.2f} s)")
PY
}

case "${1:-}" in
    install) install_packages ;;
    start) start_stack ;;
    stop) stop_stack ;;
    status) status ;;
    env) [ -n "$(base_dir)" ] || die "not running"; print_env ;;
    count) count_delivered ;;
    fsync) fsync_rate "${2:-/tmp}" ;;
    *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
