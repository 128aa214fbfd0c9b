#!/usr/bin/env bash
# Our server for the benchmarks, with throwaway state under /tmp/mssante-ours-XXXX:
# plaintext MX listener on a loopback high port (the same shape as the reference's smtpd),
# IMAP (STARTTLS before LOGIN) and IMAPS (implicit TLS) on loopback high ports with the
# self-signed certificate `serve` generates, SQLite store, the same users and password as
# bench/reference.sh (userN@bench.test, `bench`, argon2id).
#
#   bench/ours.sh start     start `mssante serve` (binary: $MSSANTE_BIN, default target/release/mssante)
#   bench/ours.sh env       shell variables for the generator (eval "$(bench/ours.sh env)")
#   bench/ours.sh count     delivered copies (rows of mailbox_messages)
#   bench/ours.sh settle    PostgreSQL: VACUUM ANALYZE and CHECKPOINT after a fill, as after an import
#   bench/ours.sh status    process and listeners
#   bench/ours.sh stop      stop it by PID and remove the state (OURS_KEEP=1 keeps it)
#
# OURS_ENGINE=postgres runs the store on a throwaway PostgreSQL cluster (initdb + pg_ctl as
# user postgres, fsync on, default settings, loopback port OURS_PG_PORT, 5499) instead of SQLite;
# OURS_PG_OPTS adds server options for an experiment (e.g. "-c log_checkpoints=on
# -c shared_preload_libraries=pg_stat_statements"). OURS_STATE (/tmp/mssante-ours.current)
# is the file naming the running instance: two runs at once need their own, and their own ports.
# OURS_PG_SOCKET=1 connects the server through the cluster's Unix socket instead of loopback
# TCP (how a PostgreSQL on the same host is usually reached; several nodes need TCP).
# With it, OURS_NODES=N (1) starts N nodes on that one database (docs/cluster.md), node i with
# its own data dir and the ports above plus 10 × (i - 1); OURS_SMTP then lists them all.
# OURS_DELEGATES=1 also creates sec.userN@bench.test (same password) and delegates userN's
# BAL to it with the *secretary* rights (issue 14): `mssante-bench imap --delegate-prefix sec.`
# then works in each BAL as its delegate.
#
# The HTTP API (issue 13) listens on OURS_HTTP_PORT (8480, plaintext on loopback), without
# its per-client rate limit; the ORG BAL lab@bench.test sends, and `env` prints OURS_HTTP and
# OURS_API_KEY (a key with the send and status scopes on it). OURS_SEED_TRACKED=N (0) inserts
# N tracked messages sent by lab@bench.test before the server starts (`mssante bench-seed`,
# large transactions) and prints their ids as OURS_SEED_IDS="FIRST LAST".
# OURS_IDLE_REPORT_DELAY_MS (100): [imap] idle_report_delay_ms (ADR 0058).
# Settings: OURS_SMTP_PORT (2535), OURS_IMAP_PORT (1153), OURS_IMAPS_PORT (1994), REF_USERS (100),
# REF_DOMAIN (bench.test), REF_PASSWORD (bench-pass: our server requires 8 characters), OURS_NOFILE (65536: open-files limit of the
# server, 10,000 idle sessions need 10,000 descriptors).
set -euo pipefail

BIN=${MSSANTE_BIN:-target/release/mssante}
SMTP_PORT=${OURS_SMTP_PORT:-2535}
IMAP_PORT=${OURS_IMAP_PORT:-1153}
IMAPS_PORT=${OURS_IMAPS_PORT:-1994}
HTTP_PORT=${OURS_HTTP_PORT:-8480}
SEED_TRACKED=${OURS_SEED_TRACKED:-0}
PASSWORD=${REF_PASSWORD:-bench-pass}
NOFILE=${OURS_NOFILE:-65536}
USERS=${REF_USERS:-100}
DOMAIN=${REF_DOMAIN:-bench.test}
STATE=${OURS_STATE:-/tmp/mssante-ours.current}
ENGINE=${OURS_ENGINE:-sqlite}
NODES=${OURS_NODES:-1}
PG_PORT=${OURS_PG_PORT:-5499}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

die() { echo "ours.sh: $*" >&2; exit 1; }
base_dir() { [ -f "$STATE" ] && cat "$STATE"; }
server_pid() { local b; b=$(base_dir) || return 0; [ -n "$b" ] && cat "$b/pid" 2>/dev/null || true; }

start() {
    [ -x "$BIN" ] || die "no binary at $BIN (cargo build --release, or set MSSANTE_BIN)"
    [ -z "$(base_dir)" ] || die "already running in $(base_dir) (ours.sh stop first)"
    local b
    b=$(mktemp -d /tmp/mssante-ours-XXXX)
    echo "$b" > "$STATE"
    local url="sqlite://$b/data/mssante.db"
    if [ "$ENGINE" = postgres ]; then
        pg_start "$b"
        url="postgres://postgres@127.0.0.1:$PG_PORT/mssante"
        [ -z "${OURS_PG_SOCKET:-}" ] || url="postgres://postgres@localhost/mssante?host=$b/pg&port=$PG_PORT"
    fi
    cat > "$b/mssante.toml" <<CONF
hostname = "ours.$DOMAIN"
data_dir = "$b/data"
database_url = "$url"

# The reference is a plaintext Postfix without client certificates: compare like with like.
# (The MSSanté trust-space checks cost one certificate validation per TLS session.)
[trust]
enforce = false

[listen]
smtp = "127.0.0.1:$SMTP_PORT"
submission = "off"
submissions = "off"
imap = "127.0.0.1:$IMAP_PORT"
imaps = "127.0.0.1:$IMAPS_PORT"
http = "127.0.0.1:$HTTP_PORT"

# Every benchmark client connects from 127.0.0.1: no per-address connection cap (the
# reference has none), or the mix beside its 50 watchers (ours-watched) would be turned away.
[imap]
max_connections_per_address = 1000000
idle_report_delay_ms = ${OURS_IDLE_REPORT_DELAY_MS:-100}

# The benchmark's clients are few and fast: no per-client rate limit.
[api]
rate_per_sec = 1000000000
burst = 1000000000

[log]
level = "warn"
CONF
    # Pro Santé Connect login for the `login` workload: the JWKS of `mssante-bench psc-issuer`.
    if [ -n "${OURS_PSC_JWKS_URL:-}" ]; then
        printf '\n[psc]\njwks_url = "%s"\nissuers = ["%s"]\n' "$OURS_PSC_JWKS_URL" "$OURS_PSC_ISSUER" \
            >> "$b/mssante.toml"
    fi
    "$BIN" --config "$b/mssante.toml" init >/dev/null
    "$BIN" --config "$b/mssante.toml" domain add "$DOMAIN" >/dev/null
    local n
    for n in $(seq 1 "$USERS"); do
        printf '%s\n' "$PASSWORD" | "$BIN" --config "$b/mssante.toml" bal create "user$n@$DOMAIN" \
            --type PER --rpps "$((10000000000 + n))" --password-stdin >/dev/null
        [ "${OURS_DELEGATES:-0}" = 1 ] || continue
        printf '%s\n' "$PASSWORD" | "$BIN" --config "$b/mssante.toml" bal create "sec.user$n@$DOMAIN" \
            --type PER --rpps "$((20000000000 + n))" --password-stdin >/dev/null
        "$BIN" --config "$b/mssante.toml" delegation grant "user$n@$DOMAIN" --to "sec.user$n@$DOMAIN" \
            --rights secretary >/dev/null
    done
    "$BIN" --config "$b/mssante.toml" bal create "lab@$DOMAIN" --type ORG --finess 750712186 >/dev/null
    "$BIN" --config "$b/mssante.toml" apikey create --name bench-lab --scope send,status \
        --bal "lab@$DOMAIN" 2>/dev/null > "$b/api-key"
    if [ "$SEED_TRACKED" -gt 0 ]; then
        "$BIN" --config "$b/mssante.toml" bench-seed --from "lab@$DOMAIN" --count "$SEED_TRACKED" \
            --ids-file "$b/seed-ids" > "$b/seed-plans.txt"
    fi
    # Raise the open-files limit of the server only (a subshell): idle-session runs need it.
    ( ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
      exec "$BIN" --config "$b/mssante.toml" serve ) </dev/null >"$b/serve.log" 2>&1 &
    echo $! > "$b/pid"
    local i
    for i in $(seq 1 100); do
        ss -ltnH "sport = :$SMTP_PORT" | grep -q . && ss -ltnH "sport = :$IMAP_PORT" | grep -q . \
            && ss -ltnH "sport = :$HTTP_PORT" | grep -q . && break
        kill -0 "$(server_pid)" 2>/dev/null || { cat "$b/serve.log" >&2; stop; die "server exited"; }
        sleep 0.1
    done
    check_listeners
    local i
    for i in $(seq 2 "$NODES"); do start_node "$b" "$i"; done
    print_env
}

# Node $2 (2, 3…) on the same PostgreSQL database: its own data dir and ports.
start_node() {
    local b=$1 i=$2 shift=$(( ($2 - 1) * 10 ))
    [ "$ENGINE" = postgres ] || die "OURS_NODES needs OURS_ENGINE=postgres"
    sed -e "s|^data_dir = .*|data_dir = \"$b/data$i\"|" \
        -e "s|127.0.0.1:$SMTP_PORT|127.0.0.1:$((SMTP_PORT + shift))|" \
        -e "s|127.0.0.1:$IMAP_PORT|127.0.0.1:$((IMAP_PORT + shift))|" \
        -e "s|127.0.0.1:$IMAPS_PORT|127.0.0.1:$((IMAPS_PORT + shift))|" \
        -e "s|127.0.0.1:$HTTP_PORT|127.0.0.1:$((HTTP_PORT + shift))|" \
        "$b/mssante.toml" > "$b/node$i.toml"
    "$BIN" --config "$b/node$i.toml" init >/dev/null
    ( ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
      exec "$BIN" --config "$b/node$i.toml" serve ) </dev/null >"$b/serve$i.log" 2>&1 &
    echo $! > "$b/pid$i"
    local k
    for k in $(seq 1 100); do
        ss -ltnH "sport = :$((SMTP_PORT + shift))" | grep -q . && return 0
        kill -0 "$(cat "$b/pid$i")" 2>/dev/null || { cat "$b/serve$i.log" >&2; stop; die "node $i exited"; }
        sleep 0.1
    done
    die "node $i does not listen"
}

# ",pid" of every node after the first.
node_pids() {
    local b f
    b=$(base_dir) || return 0
    for f in "$b"/pid[0-9]*; do [ -f "$f" ] && printf ',%s' "$(cat "$f")"; done
    return 0
}

# The MX addresses of every node, comma-separated (mssante-bench spreads its connections).
smtp_addrs() {
    local i out=127.0.0.1:$SMTP_PORT
    for i in $(seq 2 "$NODES"); do out="$out,127.0.0.1:$((SMTP_PORT + (i - 1) * 10))"; done
    echo "$out"
}

check_listeners() {
    local bad
    bad=$(ss -ltnpH | grep -E "pid=$(server_pid)," | awk '{print $4}' | grep -vE '^(127\.[0-9.]+|\[::1\]):[0-9]+$' || true)
    [ -z "$bad" ] || { echo "ours.sh: non-loopback listeners: $bad" >&2; stop; exit 1; }
}

# A throwaway PostgreSQL cluster in $1/pg, owned by postgres (initdb refuses root).
pg_start() {
    local b=$1
    [ -n "$PG_BIN" ] || die "OURS_ENGINE=postgres needs Debian's postgresql package"
    mkdir -p "$b/pg" && chown postgres "$b/pg" && chmod 755 "$b"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$b/pg/data" -A trust -U postgres >/dev/null
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$b/pg/data" -l "$b/pg/log" -w \
        -o "-p $PG_PORT -k $b/pg -c listen_addresses=127.0.0.1 -c max_connections=200 ${OURS_PG_OPTS:-}" start >/dev/null
    runuser -u postgres -- "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" mssante
}

# ",<postmaster pid>" when the store runs on the throwaway cluster: its CPU is server CPU.
pg_pid() {
    local b
    b=$(base_dir) || return 0
    [ -f "$b/pg/data/postmaster.pid" ] && printf ',%s' "$(head -1 "$b/pg/data/postmaster.pid")"
    return 0
}

pg_stop() {
    local b=$1
    [ -d "$b/pg/data" ] || return 0
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$b/pg/data" -m fast -w stop >/dev/null || true
}

stop() {
    local b p i
    b=$(base_dir) || true
    [ -n "$b" ] || { echo "not running"; return 0; }
    for p in $(server_pid) $(node_pids | tr ',' ' '); do
        kill -0 "$p" 2>/dev/null || continue
        kill -TERM "$p"
        for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    pg_stop "$b"
    rm -f "$STATE"
    if [ "${OURS_KEEP:-0}" = 1 ]; then echo "state kept in $b"; else rm -rf "$b"; fi
}

count() {
    local b
    b=$(base_dir) || true
    [ -n "$b" ] || die "not running"
    local q="SELECT count(*) FROM mailbox_messages"
    if [ -d "$b/pg/data" ]; then
        psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d mssante -tAc "$q"
    elif command -v sqlite3 >/dev/null; then
        sqlite3 -readonly -cmd ".timeout 10000" "$b/data/mssante.db" "$q"
    else
        python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1], timeout=10).execute(sys.argv[2]).fetchone()[0])" "$b/data/mssante.db" "$q"
    fi
}

# After a bulk fill, what an operator runs after an import: statistics for the planner, the
# visibility map, and the fill's dirty pages written out, so that a run measured next does
# not meet autovacuum's first pass over the fresh tables (about a minute after the database
# was created, 80 MB of bodies for imap-issue11) or the fill's checkpoint. SQLite: nothing.
settle() {
    local b
    b=$(base_dir) || true
    [ -n "$b" ] || die "not running"
    [ -d "$b/pg/data" ] || return 0
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d mssante -qX -c "VACUUM ANALYZE" -c "CHECKPOINT"
}

print_env() {
    cat <<ENV
OURS_DIR=$(base_dir)
OURS_SMTP=$(smtp_addrs)
OURS_IMAP=127.0.0.1:$IMAP_PORT
OURS_IMAPS=127.0.0.1:$IMAPS_PORT
OURS_PASSWORD=$PASSWORD
OURS_HTTP=127.0.0.1:$HTTP_PORT
OURS_API_KEY=$(cat "$(base_dir)/api-key" 2>/dev/null)
OURS_SEED_IDS="$(cat "$(base_dir)/seed-ids" 2>/dev/null)"
OURS_PID=$(server_pid)
OURS_PIDS=$(server_pid)$(node_pids)$(pg_pid)
ENV
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    env) [ -n "$(base_dir)" ] || die "not running"; print_env ;;
    count) count ;;
    settle) settle ;;
    status) [ -n "$(base_dir)" ] || { echo "not running"; exit 1; }; print_env; ss -ltnp | grep -E "pid=$(server_pid)," || true; echo "delivered: $(count)" ;;
    *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
